//! Writing a checkpoint tree the way MindFormers' `CheckpointMonitor` and MindSpore's
//! `_exec_save` do (spec §2.2, §3.2, §4): lazy `rank_R/` creation (0750), the restart suffix,
//! rotation of the oldest file *before* each save, `.tmp` → rename → chmod 0400, and `meta.json`
//! replaced through a `tmpXXXXXXXX` file (chmod 0640) — immediately, or one step late in async
//! mode. Used by the demo, the tests and the benchmarks; it only ever writes below its own root.

use super::ckpt::{checkpoint_bytes, AppendEntries};
use crate::py::text::splitext_ext;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// How one rank saves.
#[derive(Clone, Debug)]
pub struct SaveConfig {
    /// The YAML prefix (`llama3_1_8b`); `_rank_R` is appended.
    pub prefix: String,
    /// `keep_checkpoint_max` (0: no rotation).
    pub keep_max: usize,
    /// `async_save`: `meta.json` is written at the next `step_end`, never for the final save.
    pub async_meta: bool,
    pub global_batch_size: Option<i64>,
    /// Hidden-size multiplier of the generated network (file size).
    pub width: u64,
}

/// One rank's `CheckpointMonitor` for one launch.
pub struct RankWriter {
    pub dir: PathBuf,
    pub rank: u64,
    /// The per-rank prefix including the restart suffix, e.g. `llama_rank_3_1`.
    pub prefix: String,
    pub resumed: bool,
    cfg: SaveConfig,
    pending_meta: Option<(i64, i64, String)>,
}

impl RankWriter {
    /// Start a launch for `rank` under `root` (`checkpoint/`). A launch into a folder that
    /// already holds this prefix's files gets the next restart suffix.
    pub fn new(root: &Path, rank: u64, cfg: SaveConfig) -> io::Result<Self> {
        let dir = root.join(format!("rank_{rank}"));
        let base = format!("{}_rank_{rank}", cfg.prefix);
        let suffix = restart_suffix(&dir, &base)?;
        let prefix = if suffix > 0 {
            format!("{base}_{suffix}")
        } else {
            base
        };
        Ok(RankWriter {
            dir,
            rank,
            prefix,
            resumed: suffix > 0,
            cfg,
            pending_meta: None,
        })
    }

    /// Mark this launch as a resume (append entries in resumed order) even without a suffix.
    pub fn set_resumed(&mut self, resumed: bool) {
        self.resumed = resumed;
    }

    pub fn file_name(&self, epoch: i64, step_in_epoch: i64) -> String {
        format!("{}-{epoch}_{step_in_epoch}.ckpt", self.prefix)
    }

    /// One save: rotate, write through `.tmp`, then record it in `meta.json` (sync) or remember
    /// it for the next `step_end` (async). Returns the final path.
    pub fn save(&mut self, epoch: i64, step_in_epoch: i64, step_num: i64) -> io::Result<PathBuf> {
        self.step_end()?;
        create_rank_dir(&self.dir)?;
        self.rotate()?;
        let name = self.file_name(epoch, step_in_epoch);
        let append = AppendEntries {
            epoch_num: epoch,
            step_num,
            loss_scale: 4096.0,
            global_batch_size: self.cfg.global_batch_size,
            resumed: self.resumed,
        };
        let bytes = checkpoint_bytes(self.rank, self.cfg.width, &append);
        let path = write_protocol(&self.dir, &name, &bytes)?;
        if self.cfg.async_meta {
            self.pending_meta = Some((epoch, step_in_epoch, name));
        } else {
            write_meta(&self.dir, epoch, step_in_epoch, &name)?;
        }
        Ok(path)
    }

    /// A later `step_end`: in async mode, record the previous save now.
    pub fn step_end(&mut self) -> io::Result<()> {
        if let Some((e, s, name)) = self.pending_meta.take() {
            write_meta(&self.dir, e, s, &name)?;
        }
        Ok(())
    }

    /// `update_ckpoint_filelist` + `remove_oldest_ckpoint_file`: only this launch's prefix counts.
    fn rotate(&self) -> io::Result<()> {
        if self.cfg.keep_max == 0 {
            return Ok(());
        }
        let start = format!("{}-", self.prefix);
        let mut files = Vec::new();
        for e in fs::read_dir(&self.dir)? {
            let e = e?;
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(middle) = name
                .strip_prefix(&start)
                .and_then(|r| r.strip_suffix(".ckpt"))
            else {
                continue;
            };
            if middle.chars().any(char::is_alphabetic) {
                continue;
            }
            files.push((e.metadata()?.modified()?, e.path()));
        }
        if self.cfg.keep_max <= files.len() {
            if let Some((_, oldest)) = files.iter().min_by_key(|(t, _)| *t) {
                make_writable(oldest)?;
                fs::remove_file(oldest)?;
            }
        }
        Ok(())
    }
}

/// `_chg_ckpt_file_name_if_same_exist`: the restart suffix for `prefix` in `dir`.
pub fn restart_suffix(dir: &Path, prefix: &str) -> io::Result<u64> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut suffix = 0u64;
    for e in entries {
        let name = e?.file_name().to_string_lossy().into_owned();
        let ext = splitext_ext(&name);
        if !(ext == ".ckpt" || ext == ".safetensors") || name.ends_with("_breakpoint.ckpt") {
            continue;
        }
        let Some(rest) = name.strip_prefix(prefix) else {
            continue;
        };
        if rest.chars().next().is_some_and(char::is_alphabetic) {
            continue;
        }
        match rest.find('-') {
            Some(0) => suffix = suffix.max(1),
            Some(i) => {
                let t = &rest[rest.chars().next().map_or(0, char::len_utf8)..i];
                if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
                    if let Ok(v) = t.parse::<u64>() {
                        suffix = suffix.max(v + 1);
                    }
                }
            }
            None => {}
        }
    }
    Ok(suffix)
}

fn create_rank_dir(dir: &Path) -> io::Result<()> {
    if !dir.is_dir() {
        fs::create_dir_all(dir)?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o750))?;
    }
    Ok(())
}

fn make_writable(p: &Path) -> io::Result<()> {
    let mode = fs::metadata(p)?.permissions().mode();
    fs::set_permissions(p, fs::Permissions::from_mode(mode | 0o200))
}

/// `_exec_save`: swap the extension for `.tmp`, remove a stale final or temp file, write,
/// rename, chmod 0400. The final mtime is kept strictly after every other file in the folder so
/// that "newest by mtime" is the write order even on coarse-timestamp filesystems.
pub fn write_protocol(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<PathBuf> {
    let final_path = dir.join(name);
    let stem = name.rsplit_once('.').map_or(name, |(s, _)| s);
    let tmp = dir.join(format!("{stem}.tmp"));
    for p in [&final_path, &tmp] {
        if p.exists() {
            make_writable(p)?;
            fs::remove_file(p)?;
        }
    }
    let newest = newest_mtime(dir)?;
    {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
    }
    fs::rename(&tmp, &final_path)?;
    let written = fs::metadata(&final_path)?.modified()?;
    if let Some(n) = newest.filter(|n| *n >= written) {
        fs::File::options()
            .write(true)
            .open(&final_path)?
            .set_modified(n + Duration::from_micros(1))?;
    }
    fs::set_permissions(&final_path, fs::Permissions::from_mode(0o400))?;
    Ok(final_path)
}

fn newest_mtime(dir: &Path) -> io::Result<Option<SystemTime>> {
    let mut newest = None;
    for e in fs::read_dir(dir)? {
        let m = e?.metadata()?.modified()?;
        newest = newest.max(Some(m));
    }
    Ok(newest)
}

/// `record_last_ckpt_to_json`: Python `json.dump` defaults, no trailing newline, written to a
/// `tmpXXXXXXXX` file and `os.replace`d over `meta.json`, then chmod 0640.
pub fn write_meta(dir: &Path, epoch: i64, step: i64, file: &str) -> io::Result<()> {
    let text = meta_text(epoch, step, file);
    let (tmp_path, mut f) = meta_tmp_file(dir)?;
    f.write_all(text.as_bytes())?;
    drop(f);
    fs::rename(&tmp_path, dir.join("meta.json"))?;
    fs::set_permissions(dir.join("meta.json"), fs::Permissions::from_mode(0o640))
}

/// Create `tmp` + 8 characters of `[a-z0-9_]` exclusively, as Python's `tempfile` names it.
fn meta_tmp_file(dir: &Path) -> io::Result<(PathBuf, fs::File)> {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789_";
    let mut seed = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        | 1;
    loop {
        let name: String = (0..8)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                ALPHABET[(seed % ALPHABET.len() as u64) as usize] as char
            })
            .collect();
        let p = dir.join(format!("tmp{name}"));
        match fs::File::options().write(true).create_new(true).open(&p) {
            Ok(f) => return Ok((p, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

/// The exact bytes MindFormers writes (ASCII-escaped like `json.dump`).
pub fn meta_text(epoch: i64, step: i64, file: &str) -> String {
    let mut escaped = String::new();
    for c in file.chars() {
        match c {
            '"' => escaped.push_str("\\\""),
            '\\' => escaped.push_str("\\\\"),
            '\n' => escaped.push_str("\\n"),
            '\r' => escaped.push_str("\\r"),
            '\t' => escaped.push_str("\\t"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut buf = [0u16; 2];
                for u in c.encode_utf16(&mut buf) {
                    escaped.push_str(&format!("\\u{u:04x}"));
                }
            }
            c => escaped.push(c),
        }
    }
    format!("{{\"last_epoch\": {epoch}, \"last_step\": {step}, \"last_ckpt_file\": \"{escaped}\"}}")
}
