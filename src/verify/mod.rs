//! Reading shards without loading them: the streaming `.ckpt` walker and safetensors headers.
pub mod ckpt;
pub mod digest;
pub mod pool;
pub mod proto;
pub mod safetensors;
pub mod safetensors_crc;
pub mod tree;
pub mod verdict;

use crate::layout::mindformers::names::Fmt;
use ckpt::{AppendValues, StreamEnd};
use std::path::Path;

/// The append entries of a checkpoint file as MindSpore's loader would see them, or why the
/// loader would fail on the file (so there is no resume context to compute with).
pub fn read_append(path: &Path, fmt: Fmt) -> Result<AppendValues, String> {
    match fmt {
        Fmt::Ckpt => {
            let w = ckpt::walk_path(path).map_err(|e| format!("cannot be read: {e}"))?;
            match w.end {
                StreamEnd::Complete => Ok(w.append),
                StreamEnd::Empty => Err("is 0 bytes".into()),
                StreamEnd::Truncated { record_offset } => Err(format!(
                    "is truncated: the record at byte {record_offset} runs past the end ({} bytes)",
                    w.size
                )),
                StreamEnd::Malformed { offset, why } => Err(format!(
                    "is not a valid checkpoint at byte {offset} ({why})"
                )),
                StreamEnd::Encrypted { algorithm } => Err(format!(
                    "is encrypted ({algorithm}); its content cannot be inspected"
                )),
                StreamEnd::Io { error } => Err(format!("cannot be read: {error}")),
            }
        }
        Fmt::Safetensors => {
            let f = crate::fsys::open_regular(path).map_err(|e| format!("cannot be read: {e}"))?;
            let len = f
                .metadata()
                .map_err(|e| format!("cannot be read: {e}"))?
                .len();
            let mut r = std::io::BufReader::new(f);
            let h = safetensors::read_header(&mut r, len)
                .map_err(|e| format!("has an unusable safetensors header ({e:?})"))?;
            if h.expected_size != len {
                return Err(format!(
                    "is {len} bytes but its header describes {} bytes",
                    h.expected_size
                ));
            }
            Ok(safetensors::append_values(&mut r, &h, len))
        }
    }
}

/// A shard checker over the real disk (cheap pass) for [`crate::resolve::analyze`]: stat the
/// file under `root/<dir>/<name>` and walk its structure.
pub fn disk_checker(
    root: &Path,
) -> impl Fn(&str, &str) -> Option<crate::resolve::safe::ShardFacts> + '_ {
    move |dir: &str, name: &str| {
        let path = root.join(dir).join(name);
        let st = crate::fsys::stat_of(&std::fs::metadata(&path).ok()?);
        let c = verdict::check_file(&path, &st, &verdict::CheckOptions::default());
        Some(crate::resolve::safe::ShardFacts {
            verdict: c.verdict,
            detail: c.detail,
            size: c.size,
            append: c.append,
        })
    }
}
