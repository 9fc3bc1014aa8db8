//! The by-meta path of MindFormers' resolver (`tools/resume_ckpt.py`, spec §5.6–§5.8, §5.10):
//! the minimal `meta.json`, the candidate groups, the per-rank completeness check and the
//! health filter, with every quirk kept.

use super::by_meta_memo;
use super::view::{read_failure, View};
use crate::layout::mindformers::names::{
    check_ckpt_file_name, epoch_and_step, rank_id, replace_rank_id, times_epoch_and_step, Fmt,
};
use crate::model::FileRead;
use crate::py::int::PyInt;
use crate::py::json::{self, PyValue};
use crate::py::text::{basename, join, slice_before_last};
use crate::py::PyException;
use serde::Serialize;

/// The minimal valid `meta.json`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MinMeta {
    pub rank: u64,
    /// `str(last_epoch)` / `str(last_step)` (a bool prints as `True`).
    pub epoch: String,
    pub step: String,
    pub file: String,
    #[serde(skip)]
    pub e: PyInt,
    #[serde(skip)]
    pub s: PyInt,
}

/// `get_info_from_meta`: `Ok(None)` when no rank has a usable `meta.json`.
pub fn info_from_meta(
    v: &View,
    n: usize,
    fmt: Fmt,
    log: &mut Vec<String>,
) -> Result<Option<MinMeta>, PyException> {
    let mut best: Option<MinMeta> = None;
    for r in 0..n {
        let dir = format!("rank_{r}");
        let m = join(&v.dir_path(&dir), "meta.json");
        let Some(read) = v.meta(&dir) else {
            log.push(format!("{m} is not found."));
            continue;
        };
        if let Some(e) = read_failure(read, &m) {
            return Err(e);
        }
        let FileRead::Bytes(bytes) = read else {
            continue;
        };
        // parsed once per listing (the folder's memo): a live view recomputes on every change
        let parsed = match v.tree.dirs.get(&dir) {
            Some(node) => node.memo.get_or("by_meta\0meta_json", || json::load(bytes)),
            None => std::sync::Arc::new(json::load(bytes)),
        };
        let d = match &*parsed {
            Ok(d) => d,
            Err(e) => {
                log.push(format!("load {m} failed due to: {}", e.message));
                continue;
            }
        };
        if !d.truthy() {
            log.push(format!("Get nothing from {m}."));
            continue;
        }
        if !matches!(d, PyValue::Dict(_)) {
            return Err(PyException::new(
                "AttributeError",
                format!("'{}' object has no attribute 'get'", d.type_name()),
            ));
        }
        let Some(cand) = check_meta_info(d, r as u64, &m, fmt, log) else {
            continue;
        };
        let better = match &best {
            None => true,
            Some(b) => cand.e < b.e || (cand.e == b.e && cand.s < b.s),
        };
        if better {
            best = Some(cand);
        }
    }
    Ok(best)
}

/// `check_meta_info`: ints (bools count) for epoch and step, a conforming file name.
fn check_meta_info(
    d: &PyValue,
    rank: u64,
    m: &str,
    fmt: Fmt,
    log: &mut Vec<String>,
) -> Option<MinMeta> {
    let none = PyValue::None;
    let ev = d.get("last_epoch").unwrap_or(&none);
    let sv = d.get("last_step").unwrap_or(&none);
    let fv = d.get("last_ckpt_file").unwrap_or(&none);
    let (Some(e), Some(s)) = (ev.as_int(), sv.as_int()) else {
        log.push(format!(
            "The last_epoch and last_step load from {m} should be int, but get last_epoch: {} and last_step: {}.",
            ev.py_str(),
            sv.py_str()
        ));
        return None;
    };
    let PyValue::Str(f) = fv else {
        log.push(format!(
            "The last_ckpt_file load from {m} should be str, but get last_ckpt_file: {}.",
            fv.py_str()
        ));
        return None;
    };
    if !check_ckpt_file_name(f, fmt) {
        log.push(format!(
            "The last_ckpt_file load from {m} should in the format of {{prefix}}-{{epoch}}_{{step}}.{}, and '/' shouldn't be in prefix. But get last_ckpt_file: {f}.",
            fmt.ext()
        ));
        return None;
    }
    Some(MinMeta {
        rank,
        epoch: ev.py_str(),
        step: sv.py_str(),
        // checked raw (Python's regex), matched against the listing in its form
        file: crate::model::shown_name(f).into_owned(),
        e,
        s,
    })
}

/// The name MindFormers rebuilds from the minimal meta: `F[:F.rfind("-")]-E_S.fmt`.
pub fn base_name(meta: &MinMeta, fmt: Fmt) -> String {
    format!(
        "{}-{}_{}.{}",
        slice_before_last(&meta.file, '-'),
        meta.epoch,
        meta.step,
        fmt.ext()
    )
}

/// `get_resume_ckpt_list(D, base, 0, N, fmt, health)`: rank-0 paths, oldest first.
pub fn resume_ckpt_list(
    v: &View,
    base: &str,
    n: usize,
    fmt: Fmt,
    health: bool,
    log: &mut Vec<String>,
) -> Result<Vec<String>, PyException> {
    let (prefix, last_e, last_s, original) = base_parts(base, fmt)?;
    let last = (&last_e, &last_s);
    let mut list = Vec::new();
    match by_meta_memo::groups(v, prefix, &original, last, n, fmt, health) {
        Some(groups) => {
            for mut files in groups? {
                if by_meta_memo::check_by_rank(&mut files, n, log) {
                    list.push(rank0_path(v, &by_meta_memo::name_of(&files[0]))?);
                }
            }
        }
        None => return resume_ckpt_list_reference(v, base, n, fmt, health, log),
    }
    finish_list(list, fmt, health)
}

/// What `get_resume_ckpt_list` reads from the base name: the prefix up to its last `-`, the
/// epoch and step, and rank 0's id in it.
fn base_parts(base: &str, fmt: Fmt) -> Result<(&str, PyInt, PyInt, PyInt), PyException> {
    let prefix = &base[..base.rfind('-').map_or(0, |i| i + 1)];
    let (e, s) = epoch_and_step(base, fmt)?;
    Ok((prefix, e, s, rank_id(base)?))
}

/// The path of the rank-0 file of a complete group whose first file is `first`.
fn rank0_path(v: &View, first: &str) -> Result<String, PyException> {
    let name = replace_rank_id(first, &PyInt::from_i64(0))?;
    let p = join(&v.dir_path("rank_0"), &name);
    if !v.exists_in("rank_0", &name) {
        return Err(PyException::new(
            "FileNotFoundError",
            format!("{p} is not found!"),
        ));
    }
    Ok(p)
}

/// [`resume_ckpt_list`] by the reference path alone: every name parsed into Python integers
/// (what the memoised path falls back to, and what tests hold it to).
pub fn resume_ckpt_list_reference(
    v: &View,
    base: &str,
    n: usize,
    fmt: Fmt,
    health: bool,
    log: &mut Vec<String>,
) -> Result<Vec<String>, PyException> {
    let (prefix, last_e, last_s, original) = base_parts(base, fmt)?;
    let groups = collect_groups(v, prefix, &original, (&last_e, &last_s), n, fmt, health)?;
    let mut list = Vec::new();
    for mut files in groups {
        if check_checkpoints_by_rank(&mut files, n, log)? {
            list.push(rank0_path(v, &files[0])?);
        }
    }
    finish_list(list, fmt, health)
}

fn finish_list(list: Vec<String>, fmt: Fmt, health: bool) -> Result<Vec<String>, PyException> {
    if list.is_empty() {
        return Err(PyException::new(
            "RuntimeError",
            "No checkpoint could be resumed.",
        ));
    }
    sort_candidates(list, fmt, health)
}

/// Rank `r`'s folder as `get_resume_ckpt_list` opens it: the name prefix its files must carry
/// (rank 0's with `rank_{original}` replaced), its name and its listing — or the error
/// MindFormers raises (the folder is missing, or cannot be listed).
pub(super) struct RankFolder<'a> {
    pub prefix: String,
    pub dir: String,
    pub entries: &'a crate::model::Entries,
}

pub(super) fn rank_folder<'a>(
    v: &View<'a>,
    prefix: &str,
    original: &PyInt,
    r: usize,
) -> Result<RankFolder<'a>, PyException> {
    let pr = prefix.replace(&format!("rank_{original}"), &format!("rank_{r}"));
    let dir = format!("rank_{r}");
    if !v.exists(&dir) {
        return Err(PyException::new(
            "FileNotFoundError",
            format!("{} is not found!", v.dir_path(&dir)),
        ));
    }
    let entries = v.listdir(&dir)?;
    Ok(RankFolder {
        prefix: pr,
        dir,
        entries,
    })
}

/// Groups of candidate names, in first-seen order of their `(epoch, step)` key (Python builds
/// the key as `f"{epoch}_{step}"`, which is one-to-one with the pair).
type Groups = Vec<Vec<crate::model::Name>>;

/// The candidate names of every rank, grouped by `"{epoch}_{step}"` in first-seen order.
fn collect_groups(
    v: &View<'_>,
    prefix: &str,
    original: &PyInt,
    last: (&PyInt, &PyInt),
    n: usize,
    fmt: Fmt,
    health: bool,
) -> Result<Groups, PyException> {
    let suffix = format!(".{}", fmt.ext());
    let mut groups: Groups = Vec::new();
    let mut index: std::collections::HashMap<(PyInt, PyInt), usize> =
        std::collections::HashMap::new();
    for r in 0..n {
        let f = rank_folder(v, prefix, original, r)?;
        let (pr, wide) = (f.prefix.as_str(), slice_before_last(&f.prefix, '_'));
        for entry in f.entries.names() {
            let name = &*entry;
            let matches = name.starts_with(pr) || (health && name.starts_with(wide));
            if !(matches && name.ends_with(&suffix)) {
                continue;
            }
            let (e, s) = epoch_and_step(name, fmt)?;
            if e < *last.0 || (e == *last.0 && s <= *last.1) {
                match index.get(&(e.clone(), s.clone())) {
                    Some(&i) => groups[i].push(entry),
                    None => {
                        index.insert((e, s), groups.len());
                        groups.push(vec![entry]);
                    }
                }
            }
        }
    }
    Ok(groups)
}

/// `check_checkpoints_by_rank`: sorts `files` by rank id (stable) and checks ids = {0 … n−1}.
pub fn check_checkpoints_by_rank<S: AsRef<str>>(
    files: &mut Vec<S>,
    n: usize,
    log: &mut Vec<String>,
) -> Result<bool, PyException> {
    if files.is_empty() {
        return Ok(false);
    }
    let mut keyed = Vec::with_capacity(files.len());
    for f in std::mem::take(files) {
        let id = rank_id(f.as_ref())?;
        keyed.push((id, f));
    }
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    let mut ids: Vec<PyInt> = keyed.iter().map(|(id, _)| id.clone()).collect();
    ids.dedup();
    *files = keyed.into_iter().map(|(_, f)| f).collect();
    if ids.len() == n && ids.last() == Some(&PyInt::from_i64(n as i64 - 1)) {
        return Ok(true);
    }
    let (id0, first) = (&ids[0], &files[0]);
    for i in 0..n {
        if !ids.contains(&PyInt::from_i64(i as i64)) {
            log.push(format!(
                "{} is not found.",
                first
                    .as_ref()
                    .replace(&format!("rank_{id0}"), &format!("rank_{i}"))
            ));
        }
    }
    Ok(false)
}

/// The final stable sort, by (epoch, step) or, in health mode, by (times, epoch, step).
fn sort_candidates(list: Vec<String>, fmt: Fmt, health: bool) -> Result<Vec<String>, PyException> {
    let mut keyed = Vec::with_capacity(list.len());
    for p in list {
        let key = if health {
            times_epoch_and_step(basename(&p), fmt)?
        } else {
            let (e, s) = epoch_and_step(basename(&p), fmt)?;
            (PyInt::from_i64(0), e, s)
        };
        keyed.push((key, p));
    }
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(keyed.into_iter().map(|(_, p)| p).collect())
}

/// `checkpoint_health_monitor`: aborts when no entry is healthy; never filters anything (its
/// filter runs only when there are no unhealthy entries, and then removes nothing).
pub fn health_monitor(
    record: Option<&FileRead>,
    path: &str,
    list: Vec<String>,
    log: &mut Vec<String>,
) -> Result<Vec<String>, PyException> {
    let mut healthy = 0usize;
    if let Some(read) = record {
        if let Some(e) = read_failure(read, path) {
            return Err(e);
        }
        if let FileRead::Bytes(bytes) = read {
            let data = json::load(bytes).map_err(|e| PyException::new(e.class, e.message))?;
            if !data.truthy() {
                log.push(format!("Get nothing from {path}."));
            } else {
                healthy = count_healthy(&data)?;
            }
        }
    }
    if healthy == 0 {
        return Err(PyException::new(
            "ValueError",
            "The training has no healthy checkpoints yet, please start training again.",
        ));
    }
    Ok(list)
}

/// `for item in json_data: item.get("is_health", -1) != 0`, with Python's iteration rules.
fn count_healthy(data: &PyValue) -> Result<usize, PyException> {
    let no_get = |t: &str| {
        PyException::new(
            "AttributeError",
            format!("'{t}' object has no attribute 'get'"),
        )
    };
    let items: &[PyValue] = match data {
        PyValue::List(items) => items,
        // iterating a dict or a str yields str items
        PyValue::Dict(_) | PyValue::Str(_) => return Err(no_get("str")),
        other => {
            return Err(PyException::new(
                "TypeError",
                format!("'{}' object is not iterable", other.type_name()),
            ))
        }
    };
    let mut healthy = 0;
    for item in items {
        if !matches!(item, PyValue::Dict(_)) {
            return Err(no_get(item.type_name()));
        }
        if item.get("is_health").is_some_and(PyValue::equals_zero) {
            healthy += 1;
        }
    }
    Ok(healthy)
}
