//! One verdict per shard, with a detail line that names the cause. The cheap pass walks the
//! structure (headers only); the deep pass reads every byte once for the CRC trailer and
//! SHA-256. Nothing here decides about resuming: the safe resolver reads these verdicts.

use super::ckpt::{self, CkptWalk, StreamEnd};
use super::safetensors;
use super::safetensors_crc::SafetensorsCrc;
use crate::fsys::Fs;
use crate::model::{FileKind, ShardCheck, Stat, Verdict};
use sha2::{Digest, Sha256};
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

/// What to check.
#[derive(Clone, Debug, Default)]
pub struct CheckOptions {
    /// Read the whole file: CRC trailer and SHA-256.
    pub deep: bool,
    /// A manifest's SHA-256 for this file (makes the deep pass run).
    pub expected_sha256: Option<String>,
    /// Set by the verifier pool when the file changed: the deep pass stops early.
    pub cancel: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

/// Check a `.ckpt` or `.safetensors` file through `fs`. `stat` is what the scan saw (following
/// links).
pub fn check_file(fs: &dyn Fs, path: &Path, stat: &Stat, opts: &CheckOptions) -> ShardCheck {
    if stat.kind != FileKind::File {
        return ShardCheck::new(
            Verdict::NotRegular,
            format!("{}, not a regular file: never opened", stat.kind),
            0,
        );
    }
    if stat.size == 0 {
        return ShardCheck::new(
            Verdict::ZeroByte,
            "0 bytes: MindSpore loads an empty parameter dict and fails",
            0,
        );
    }
    let is_st = path.extension().is_some_and(|e| e == "safetensors");
    // a new-format shard carries no resume context (common.json does): no epoch_num to miss
    let context_in_file = path
        .file_name()
        .and_then(|n| n.to_str())
        .is_none_or(|n| crate::layout::mindformers_new::names::parse_shard_name(n).is_none());
    let (mut file, opened) = match fs.open(path) {
        Ok(f) => f,
        Err(e) => {
            return ShardCheck::new(
                Verdict::Unreadable,
                format!("cannot be opened: {e}"),
                stat.size,
            )
        }
    };
    if !same_version(stat, &opened) {
        return changed(stat, &opened, "since it was listed");
    }
    let len = opened.size;
    let check = if len <= WHOLE_READ {
        // a small file is read in one call and walked in memory: no seeks, no re-reads
        let mut bytes = Vec::with_capacity(len as usize);
        match Read::by_ref(&mut file).take(len).read_to_end(&mut bytes) {
            Ok(_) => check_reader(
                &mut std::io::Cursor::new(bytes),
                len,
                (is_st, context_in_file),
                opts,
            ),
            Err(e) => ShardCheck::new(Verdict::Unreadable, format!("read error: {e}"), len),
        }
    } else {
        check_reader(
            &mut BufReader::with_capacity(64 * 1024, &mut file),
            len,
            (is_st, context_in_file),
            opts,
        )
    };
    // What was read must be one version of the file: a save rewriting it or a truncation while
    // it was read makes every byte-level conclusion void. The open file itself is asked: a
    // rename over its name leaves what was read intact (and the listing's next version gets
    // its own check).
    match file.restat().unwrap_or_else(|| fs.stat(path)) {
        Ok(after) if same_version(&opened, &after) => check,
        Ok(after) => changed(&opened, &after, "while it was read"),
        Err(e) => ShardCheck::new(
            Verdict::Changed,
            format!("vanished while it was read ({e}); it is checked again if it comes back"),
            opened.size,
        ),
    }
}

/// Files up to this size are read whole before the walk (most of a small file's cost is
/// system calls; a seek per record and a re-read for the trailer would double them).
const WHOLE_READ: u64 = 256 * 1024;

/// The cheap pass, then the deep pass when asked and the cheap one found nothing. `kind`:
/// whether the file is safetensors, and whether it should carry the resume context itself
/// (every legacy shard; not a new-format one, whose context is `common.json`'s).
fn check_reader<R: Read + Seek>(
    r: &mut R,
    len: u64,
    kind: (bool, bool),
    opts: &CheckOptions,
) -> ShardCheck {
    let (is_st, context_in_file) = kind;
    let (mut check, crc) = if is_st {
        (
            check_safetensors(&mut *r, len, context_in_file),
            Crc::Safetensors,
        )
    } else {
        check_ckpt(&mut *r, len)
    };
    if check.verdict == Verdict::Ok && (opts.deep || opts.expected_sha256.is_some()) {
        deep_pass(&mut *r, len, crc, opts, &mut check);
    }
    check
}

/// Same device, inode, size, modification and status-change time.
fn same_version(a: &Stat, b: &Stat) -> bool {
    crate::model::FileId::from(a) == crate::model::FileId::from(b)
}

fn changed(before: &Stat, after: &Stat, when: &str) -> ShardCheck {
    let what = if before.ino != after.ino || before.dev != after.dev {
        "replaced by another file".to_owned()
    } else if before.size != after.size {
        format!(
            "{} → {} bytes",
            thousands(before.size),
            thousands(after.size)
        )
    } else {
        "rewritten (new modification time)".to_owned()
    };
    ShardCheck::new(
        Verdict::Changed,
        format!("changed {when} ({what}): nothing can be said of it until it is checked again"),
        after.size,
    )
}

/// Which CRC the deep pass has to verify.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Crc {
    None,
    /// The 17-byte `.ckpt` trailer.
    Trailer,
    /// `crc_num` in a safetensors `__metadata__`.
    Safetensors,
}

fn check_ckpt<R: Read + Seek>(r: &mut R, len: u64) -> (ShardCheck, Crc) {
    let w = ckpt::walk(&mut *r, len);
    let crc = if w.crc_trailer.is_some() {
        Crc::Trailer
    } else {
        Crc::None
    };
    (check_walk(r, len, w), crc)
}

fn check_walk<R: Read + Seek>(r: &mut R, len: u64, w: CkptWalk) -> ShardCheck {
    let mut c = ShardCheck::new(Verdict::Ok, "", len);
    match &w.end {
        StreamEnd::Complete => {}
        StreamEnd::Empty => return ShardCheck::new(Verdict::ZeroByte, "0 bytes", 0),
        StreamEnd::Encrypted { algorithm } => {
            return ShardCheck::new(Verdict::Encrypted, format!("{algorithm} encrypted: present, structure not checkable without the key (MindFormers needs dec_key to load it)"), len)
        }
        StreamEnd::Truncated { record_offset } => {
            return ShardCheck::new(Verdict::Truncated, format!("truncated at byte {} of {}: the record starting there runs past the end of the file, so MindSpore fails to parse it", thousands(*record_offset), thousands(len)), len)
        }
        StreamEnd::Malformed { offset, why } => return malformed(r, len, *offset, why, w.records),
        StreamEnd::Io { error } => return ShardCheck::new(Verdict::Unreadable, format!("read error: {error}"), len),
    }
    if let Some(t) = w.tensor_issues.first() {
        c.verdict = Verdict::Corrupt;
        let count = w.tensor_issues.len() + w.more_tensor_issues as usize;
        c.detail = tensor_issue_text(t, count).into();
    } else if let Some(missing) = missing_context(&w) {
        c.verdict = Verdict::Incomplete;
        c.detail = format!("parses ({} records) but lacks {missing}: the stream ends at a record boundary (byte {}); MindFormers would silently restart the step counter", w.records, thousands(len)).into();
    } else {
        c.detail = crate::model::intern_text(&format!(
            "{} records, append entries present{}",
            w.records,
            if w.crc_trailer.is_some() {
                ", CRC trailer (checked with --hash)"
            } else {
                ""
            }
        ));
    }
    c.append = Some(crate::model::intern(w.append));
    c
}

/// Garbage at offset 0 is not a checkpoint; a partial CRC trailer is a truncation; anything
/// else is corruption inside the stream.
fn malformed<R: Read + Seek>(
    r: &mut R,
    len: u64,
    offset: u64,
    why: &str,
    records: u64,
) -> ShardCheck {
    let mut head = [0u8; 7];
    let n = r
        .seek(SeekFrom::Start(offset))
        .ok()
        .and_then(|_| r.read(&mut head).ok())
        .unwrap_or(0);
    if n > 0 && len - offset < 17 && b"crc_num"[..n.min(7)] == head[..n.min(7)] {
        return ShardCheck::new(Verdict::Truncated, format!("truncated inside the 17-byte CRC trailer (it starts at byte {}, the file ends at {}); MindSpore no longer recognises the trailer and fails to parse", thousands(offset), thousands(len)), len);
    }
    if records == 0 {
        return ShardCheck::new(
            Verdict::NotACheckpoint,
            format!("not a MindSpore checkpoint: {why} at byte 0"),
            len,
        );
    }
    ShardCheck::new(
        Verdict::Corrupt,
        format!(
            "corrupt after {records} good records: {why} at byte {}",
            thousands(offset)
        ),
        len,
    )
}

fn missing_context(w: &CkptWalk) -> Option<String> {
    let missing: Vec<&str> = [
        ("epoch_num", w.append.epoch_num),
        ("step_num", w.append.step_num),
    ]
    .iter()
    .filter(|(_, v)| v.is_none())
    .map(|(k, _)| *k)
    .collect();
    (!missing.is_empty()).then(|| missing.join(" and "))
}

fn tensor_issue_text(t: &ckpt::TensorIssue, count: usize) -> String {
    let more = if count > 1 {
        format!(" (and {} more tensors)", count - 1)
    } else {
        String::new()
    };
    match t.expected_bytes {
        None if ckpt::element_size(&t.tensor_type).is_none() => format!("tensor {} has unknown type '{}': MindSpore fails to load it{more}", t.tag, t.tensor_type),
        None => format!("tensor {} has dims {:?} too large to check{more}", t.tag, t.dims),
        Some(want) if t.content_bytes < want => format!("tensor {} ({} {:?}) has {} content bytes, needs {}: MindSpore silently zero-fills the rest{more}", t.tag, t.tensor_type, t.dims, t.content_bytes, want),
        Some(want) => format!("tensor {} ({} {:?}) has {} content bytes, needs {}: MindSpore silently ignores the extra bytes{more}", t.tag, t.tensor_type, t.dims, t.content_bytes, want),
    }
}

fn check_safetensors<R: Read + Seek>(r: &mut R, len: u64, context_in_file: bool) -> ShardCheck {
    let h = match safetensors::read_header(&mut *r, len) {
        Ok(h) => h,
        Err(e @ safetensors::HeaderError::TooShort(_)) => {
            return ShardCheck::new(Verdict::Truncated, format!("truncated: {e}"), len)
        }
        Err(safetensors::HeaderError::Io(e)) => {
            return ShardCheck::new(Verdict::Unreadable, format!("read error: {e}"), len)
        }
        Err(e) => {
            return ShardCheck::new(
                Verdict::NotACheckpoint,
                format!("not a valid safetensors file: {e}; MindSpore fails to parse it"),
                len,
            )
        }
    };
    if h.expected_size > len {
        return ShardCheck::new(
            Verdict::Truncated,
            format!(
                "truncated: {} bytes, the header describes {}",
                thousands(len),
                thousands(h.expected_size)
            ),
            len,
        );
    }
    if h.expected_size < len {
        return ShardCheck::new(
            Verdict::Corrupt,
            format!(
                "{} bytes, {} more than the header describes",
                thousands(len),
                thousands(len - h.expected_size)
            ),
            len,
        );
    }
    let append = safetensors::append_values(&mut *r, &h, len);
    let mut c = ShardCheck::new(Verdict::Ok, "", len);
    let missing: Vec<&str> = [
        ("epoch_num", append.epoch_num),
        ("step_num", append.step_num),
    ]
    .iter()
    .filter(|(_, v)| v.is_none())
    .map(|(k, _)| *k)
    .collect();
    let format = h
        .metadata
        .metadata()
        .as_ref()
        .and_then(|m| m.get("format").cloned());
    if !missing.is_empty() && context_in_file {
        c.verdict = Verdict::Incomplete;
        c.detail = format!(
            "header valid but lacks {}: MindFormers would silently restart the step counter",
            missing.join(" and ")
        )
        .into();
    } else {
        c.detail = format!(
            "{} tensors, header and data offsets consistent, __metadata__ format {}{}",
            h.metadata.offset_keys().len(),
            format.as_deref().unwrap_or("absent"),
            match context_in_file {
                true => "",
                false => " (new format: the resume context is in common.json)",
            }
        )
        .into();
    }
    c.append = Some(crate::model::intern(append));
    c
}

/// Read the whole file once: SHA-256, and the CRC (`.ckpt` trailer or safetensors `crc_num`).
fn deep_pass<R: Read + Seek>(
    r: &mut R,
    len: u64,
    crc: Crc,
    opts: &CheckOptions,
    c: &mut ShardCheck,
) {
    c.deep = true;
    match hash_and_crc(r, len, crc, opts.cancel.as_deref()) {
        Err(e) => {
            c.verdict = Verdict::Unreadable;
            c.detail = format!("read error during the deep check: {e}").into();
        }
        Ok((sha, crc_problem)) => {
            if let Some(p) = crc_problem {
                c.verdict = Verdict::CrcMismatch;
                c.detail = p.into();
            } else if let Some(want) = &opts.expected_sha256 {
                if !want.eq_ignore_ascii_case(&sha) {
                    c.verdict = Verdict::HashMismatch;
                    c.detail = format!("SHA-256 {sha} differs from the manifest's {want}").into();
                }
            }
            c.sha256 = Some(std::sync::Arc::new(sha));
        }
    }
}

/// SHA-256 of the whole file and, when the file carries one, a CRC mismatch description.
/// One sequential read serves both: the safetensors CRC is assembled from per-tensor CRCs.
fn hash_and_crc<R: Read + Seek>(
    r: &mut R,
    len: u64,
    kind: Crc,
    cancel: Option<&std::sync::atomic::AtomicBool>,
) -> std::io::Result<(String, Option<String>)> {
    let mut st_crc = None;
    if kind == Crc::Safetensors {
        r.seek(SeekFrom::Start(0))?;
        st_crc = safetensors::read_header(&mut *r, len)
            .ok()
            .and_then(|h| SafetensorsCrc::new(&h));
    }
    r.seek(SeekFrom::Start(0))?;
    let mut sha = Sha256::new();
    let mut crc = crc32fast::Hasher::new();
    let crc_end = len.saturating_sub(17);
    let mut buf = vec![0u8; 4 << 20];
    let mut pos = 0u64;
    let mut tail = Vec::with_capacity(17);
    loop {
        if cancel.is_some_and(|c| c.load(std::sync::atomic::Ordering::Relaxed)) {
            return Err(std::io::Error::other("cancelled: the file changed"));
        }
        // never past the size the file had when it was opened: a file growing while it is
        // hashed would otherwise be read for ever (the stat afterwards reports the change)
        let want = (len - pos).min(buf.len() as u64) as usize;
        if want == 0 {
            break;
        }
        let n = r.read(&mut buf[..want])?;
        if n == 0 {
            break;
        }
        let chunk = &buf[..n];
        sha.update(chunk);
        if kind == Crc::Trailer {
            let crc_part = (crc_end.saturating_sub(pos) as usize).min(n);
            crc.update(&chunk[..crc_part]);
            tail.extend_from_slice(&chunk[crc_part..]);
        }
        if let Some(c) = st_crc.as_mut() {
            c.update(pos, chunk);
        }
        pos += n as u64;
    }
    let hex = sha
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>();
    let problem = if let Some(c) = st_crc {
        c.problem()
    } else if tail.len() == 17 && &tail[..7] == b"crc_num" {
        let stored = tail[7..].iter().fold(0u64, |a, b| (a << 8) | *b as u64);
        let actual = crc.finalize() as u64;
        (stored != actual).then(|| format!("CRC trailer says {stored}, the records give {actual}: the data changed after it was written (MindSpore loads it silently unless crc_check is on)"))
    } else {
        None
    };
    Ok((hex, problem))
}

/// `18224` → `18,224` (offsets in messages are read by people).
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
