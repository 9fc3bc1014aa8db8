//! What happens after the resolver (pure): each rank loads the file MindFormers resolved for it
//! — the named file, or for `True` the newest by mtime in its own folder (spec §5.12) — and
//! MindSpore's loader raises, or silently loads the wrong thing, when that file is missing or
//! damaged (§9.7). The resolver's answer is the contract's `per_rank`; these predictions are
//! what makes "every rank would resume" true or not, so the exit status, the warnings and the
//! safe pick's reasons all read them from here.

use super::mindformers::{MfResolution, RankResult};
use super::no_meta::last_checkpoint;
use super::view::View;
use crate::layout::mindformers::names::Fmt;
use crate::model::{RootState, ShardCheck, Tree, Verdict};
use serde::Serialize;

/// How a rank's load goes wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LoadKind {
    /// MindSpore or MindFormers raises: that rank does not resume.
    Fails,
    /// It loads, but not what was saved (the step counter restarts, other data is loaded).
    Silent,
    /// The file changed while it was read: nothing can be said until it is read again.
    Unknown,
}

/// One rank whose load would not go as the resolver's answer suggests.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LoadProblem {
    pub rank: u64,
    /// The file that rank loads (its base name), when there is one.
    pub file: Option<String>,
    pub kind: LoadKind,
    /// Short code for grouping: `resolved_file_missing`, `rank_folder_missing`,
    /// `no_file_to_load`, `resolved_file_damaged`, `resolved_file_changed`.
    pub code: &'static str,
    /// One sentence: what that rank hits, with MindFormers' or MindSpore's message.
    pub why: String,
}

/// The file each rank loads under MindFormers' own decision (`True` → newest by mtime), or
/// the problem that stops it finding one. `None` for a rank that does not load (`False`, an
/// error already in the resolver's answer) or when the root is a single file.
pub fn loaded_file(
    v: &View,
    mf: &MfResolution,
    rank: u64,
    fmt: Fmt,
) -> Option<Result<String, LoadProblem>> {
    if !matches!(v.tree.state, RootState::Dir(_)) {
        return None;
    }
    let dir = format!("rank_{rank}");
    let fails = |code, file: Option<String>, why: String| LoadProblem {
        rank,
        file,
        kind: LoadKind::Fails,
        code,
        why,
    };
    match mf.per_rank.get(rank as usize)? {
        RankResult::File(f) => Some(Ok(f.clone())),
        RankResult::Newest => Some(match last_checkpoint(v, &dir, fmt) {
            Ok(Some(path)) => Ok(crate::py::text::basename(&path).to_owned()),
            Ok(None) => Err(fails("no_file_to_load", None, format!("{} holds no .{} file: that rank fails when it loads (TypeError: For 'load_checkpoint', the argument 'ckpt_file_name' must be string, but got <class 'NoneType'>.)", v.dir_path(&dir), fmt.ext()))),
            // the class only: M14's message is 300 characters, and a world size far above the
            // folders on disk would repeat it for every missing rank
            Err(e) if e.class == "NotADirectoryError" => Err(fails("rank_folder_missing", None, format!("{} is not a folder: that rank fails when it loads (NotADirectoryError, M14)", v.dir_path(&dir)))),
            Err(e) => Err(fails("resolved_file_missing", None, format!("{}: that rank fails when it looks for its newest file ({}: {})", v.dir_path(&dir), e.class, e.first_line()))),
        }),
        RankResult::Off | RankResult::Error(_) | RankResult::Unknown(_) => None,
    }
}

/// Every rank's load, checked: missing files, missing folders, damaged files. `facts(dir,
/// name)` verifies one shard (`None`: not examined yet — no prediction is made for it);
/// `prefetch` is told every resolved file first, so a source reading the disk can check them
/// all at once.
pub fn predict(
    tree: &Tree,
    mf: &MfResolution,
    fmt: Fmt,
    facts: &mut dyn FnMut(&str, &str) -> Option<ShardCheck>,
    prefetch: &dyn Fn(&super::Batch),
) -> Vec<LoadProblem> {
    if let RootState::File(_) = tree.state {
        return single_file(tree, mf, facts);
    }
    let v = View::new(tree);
    let loads: Vec<(u64, Result<String, LoadProblem>)> = (0..mf.per_rank.len() as u64)
        .filter_map(|rank| Some((rank, loaded_file(&v, mf, rank, fmt)?)))
        .collect();
    let batch: Vec<(String, String)> = loads
        .iter()
        .filter_map(|(rank, l)| Some((format!("rank_{rank}"), l.as_ref().ok()?.clone())))
        .collect();
    prefetch(&batch);
    let mut out = Vec::new();
    for (rank, load) in loads {
        match load {
            Err(p) => out.push(p),
            Ok(file) => out.extend(check_file(tree, rank, &file, facts)),
        }
    }
    out
}

/// `load_checkpoint` is one weights file: every rank that resumes loads it (`("", "")` in
/// `facts`), so a damaged file is every such rank's problem.
fn single_file(
    tree: &Tree,
    mf: &MfResolution,
    facts: &mut dyn FnMut(&str, &str) -> Option<ShardCheck>,
) -> Vec<LoadProblem> {
    let loads = |r: &RankResult| matches!(r, RankResult::Newest | RankResult::File(_));
    if !mf.per_rank.iter().any(loads) {
        return Vec::new();
    }
    let Some(f) = facts("", "") else {
        return Vec::new();
    };
    let file = crate::py::text::basename(&tree.root).to_owned();
    let kind = match f.verdict {
        Verdict::Ok => return Vec::new(),
        Verdict::Changed | Verdict::InProgress => LoadKind::Unknown,
        Verdict::Incomplete | Verdict::CrcMismatch | Verdict::HashMismatch => LoadKind::Silent,
        _ => LoadKind::Fails,
    };
    let why = format!(
        "{} is {} — every rank loads it and would {}",
        tree.root,
        damage_text(&f),
        consequence(&f, &tree.root)
    );
    mf.per_rank
        .iter()
        .enumerate()
        .filter(|(_, r)| loads(r))
        .map(|(r, _)| LoadProblem {
            rank: r as u64,
            file: Some(file.clone()),
            kind,
            code: if kind == LoadKind::Unknown {
                "resolved_file_changed"
            } else {
                "resolved_file_damaged"
            },
            why: why.clone(),
        })
        .collect()
}

/// The problem with rank `rank` loading `file` from its own folder, if any.
fn check_file(
    tree: &Tree,
    rank: u64,
    file: &str,
    facts: &mut dyn FnMut(&str, &str) -> Option<ShardCheck>,
) -> Option<LoadProblem> {
    let dir = format!("rank_{rank}");
    let problem = |kind, code, why| {
        Some(LoadProblem {
            rank,
            file: Some(file.to_owned()),
            kind,
            code,
            why,
        })
    };
    let present = tree
        .dirs
        .get(&dir)
        .is_some_and(|d| d.listing.entries().exists(file));
    if !present {
        return problem(LoadKind::Fails, "resolved_file_missing", format!("{d}/{file} is not found: that rank fails when it loads (FileNotFoundError: {d}/{file} is not found!)", d = format!("{}/{dir}", tree.label_of(&dir))));
    }
    let f = facts(&dir, file)?;
    let kind = match f.verdict {
        Verdict::Ok => return None,
        Verdict::Changed | Verdict::InProgress => {
            return problem(LoadKind::Unknown, "resolved_file_changed", format!("{dir}/{file} changed while ckptscope read it: run again when the save has finished"));
        }
        Verdict::Incomplete | Verdict::CrcMismatch | Verdict::HashMismatch => LoadKind::Silent,
        _ => LoadKind::Fails,
    };
    problem(
        kind,
        "resolved_file_damaged",
        format!(
            "{file} is {} — MindFormers would pick it and {}",
            damage_text(&f),
            consequence(&f, &format!("{}/{dir}/{file}", tree.label_of(&dir)))
        ),
    )
}

/// "truncated at byte 7,642 of 8,000 …" or "corrupt (…)": reads after "<file> is".
pub(super) fn damage_text(f: &ShardCheck) -> String {
    let name = f.verdict.name().replace('_', " ");
    if f.detail.starts_with(&name) {
        f.detail.to_string()
    } else {
        format!("{name} ({})", f.detail)
    }
}

/// What MindSpore's loader does with a damaged file (spec §9.7).
fn consequence(f: &ShardCheck, p: &str) -> String {
    let file = crate::py::text::basename(p);
    let counter_kept = f
        .append
        .as_ref()
        .is_some_and(|a| a.step_num.is_some() && a.epoch_num.is_some());
    match f.verdict {
        Verdict::Incomplete if counter_kept => "resume at the right step but silently ignore a batch-size change (and not restore the loss scale)".into(),
        Verdict::ZeroByte if file.ends_with(".safetensors") => "fail with 'cannot mmap an empty file'".into(),
        Verdict::ZeroByte => "fail with 'The loaded parameter dict is empty after filter or specify …'".into(),
        Verdict::Incomplete => "silently restart the step counter (and data position) at 0".into(),
        Verdict::CrcMismatch | Verdict::HashMismatch => "load different data than was saved, silently".into(),
        Verdict::Corrupt => "fail to load it, or silently zero-fill or ignore tensor bytes".into(),
        Verdict::Encrypted => "fail without the decryption key".into(),
        Verdict::NotRegular => "block or fail opening it (it is not a regular file)".into(),
        Verdict::Unreadable => "fail to open it".into(),
        _ if file.ends_with(".safetensors") => format!("fail with 'Fail to parse the input safetensors: '{p}'. …'"),
        _ => format!("fail with 'Failed to read the checkpoint file {p}. The file may be corrupted, and the content cannot be parsed.'"),
    }
}
