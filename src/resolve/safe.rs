//! The safe resume step (pure): the newest checkpoint whose shard is present and `ok` on every
//! rank `0 … W−1`, candidates across restart prefixes ordered by restart index, then epoch,
//! then step — and the configuration that makes MindFormers resume from it
//! (`resume_training: "<rank-0 file name>"`, which MindFormers maps to each rank's own file).
//! Verdicts come from a caller-supplied function, so only the files that matter are read.

use super::mindformers::{MfResolution, RankResult};
use super::no_meta::last_checkpoint;
use super::view::View;
use crate::layout::mindformers::names::{parse_ckpt_name, replace_rank_id, CkptName, Fmt};
use crate::model::Verdict;
use crate::model::{ShardCheck, Tree};
use crate::py::int::PyInt;
use serde::Serialize;

/// The configuration that reaches the safe pick.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SafeConfig {
    pub load_checkpoint: String,
    pub resume_training: String,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RankFile {
    pub rank: u64,
    pub file: String,
}

/// The recommendation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SafePick {
    pub epoch: u64,
    pub step: u64,
    pub restart: u64,
    pub per_rank: Vec<RankFile>,
    pub config: SafeConfig,
    pub same_as_mindformers: bool,
    /// One sentence per rank (or per cause) when MindFormers' own pick differs.
    pub reasons: Vec<String>,
}

/// The outcome: a pick, or why there is none.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SafeOutcome {
    pub pick: Option<SafePick>,
    /// Why newer candidates were passed over, newest first (one line per candidate step).
    pub skipped: Vec<String>,
}

/// Candidate steps: canonical names in `rank_0/`, newest first.
fn candidates(tree: &Tree, fmt: Fmt) -> Vec<CkptName> {
    let mut c: Vec<CkptName> = super::rank0_names(tree)
        .filter(|n| n.fmt == fmt && n.rank == 0)
        .collect();
    c.sort_by(|a, b| {
        (b.restart, b.epoch, b.step, &b.stem).cmp(&(a.restart, a.epoch, a.step, &a.stem))
    });
    c
}

/// The first rank at which candidate `c` is not usable, with why.
fn blocker(
    tree: &Tree,
    c: &CkptName,
    world: u64,
    facts: &mut dyn FnMut(&str, &str) -> Option<ShardCheck>,
) -> Option<String> {
    let rank0 = c.file_name();
    for r in 0..world {
        let name = CkptName {
            rank: r,
            ..c.clone()
        }
        .file_name();
        if replace_rank_id(&rank0, &PyInt::from_i64(r as i64))
            .ok()
            .as_deref()
            != Some(name.as_str())
        {
            return Some(format!("rank {r}: {name} cannot be named through resume_training (MindFormers would derive another name from {rank0})"));
        }
        let dir = format!("rank_{r}");
        let present = tree
            .dirs
            .get(&dir)
            .is_some_and(|d| d.listing.find(&name).is_some_and(|e| e.exists()));
        if !present {
            return Some(format!("rank {r}: {name} is missing"));
        }
        match facts(&dir, &name) {
            Some(f) if f.verdict == Verdict::Ok => {}
            Some(f) => return Some(format!("rank {r}: {name} is {}", damage_text(&f))),
            None => return Some(format!("rank {r}: {name} could not be verified")),
        }
    }
    None
}

/// Find the safe pick. `facts(dir, name)` verifies one shard (the caller caches).
pub fn resolve(
    tree: &Tree,
    mf: &MfResolution,
    world: u64,
    fmt: Fmt,
    facts: &mut dyn FnMut(&str, &str) -> Option<ShardCheck>,
) -> SafeOutcome {
    let mut skipped = Vec::new();
    for c in candidates(tree, fmt) {
        if let Some(why) = blocker(tree, &c, world, facts) {
            skipped.push(format!(
                "{}_{}{}: {why}",
                c.epoch,
                c.step,
                restart_label(c.restart)
            ));
            continue;
        }
        let per_rank: Vec<RankFile> = (0..world)
            .map(|r| RankFile {
                rank: r,
                file: CkptName {
                    rank: r,
                    ..c.clone()
                }
                .file_name(),
            })
            .collect();
        let same = mf_files(tree, mf, fmt).is_some_and(|m| {
            m.iter()
                .zip(&per_rank)
                .all(|(a, b)| a.as_deref() == Some(b.file.as_str()))
        });
        let reasons = if same {
            Vec::new()
        } else {
            differences(tree, mf, fmt, &c, facts)
        };
        let pick = SafePick {
            epoch: c.epoch,
            step: c.step,
            restart: c.restart,
            config: SafeConfig {
                load_checkpoint: tree.root.clone(),
                resume_training: per_rank[0].file.clone(),
            },
            per_rank,
            same_as_mindformers: same,
            reasons,
        };
        return SafeOutcome {
            pick: Some(pick),
            skipped,
        };
    }
    SafeOutcome {
        pick: None,
        skipped,
    }
}

fn restart_label(k: u64) -> String {
    if k == 0 {
        String::new()
    } else {
        format!(" (restart _{k})")
    }
}

/// The file each rank loads under MindFormers' own decision (`True` → newest by mtime).
fn mf_files(tree: &Tree, mf: &MfResolution, fmt: Fmt) -> Option<Vec<Option<String>>> {
    let v = View::new(tree);
    mf.per_rank
        .iter()
        .enumerate()
        .map(|(r, x)| match x {
            RankResult::File(f) => Some(Some(f.clone())),
            RankResult::Newest => Some(
                last_checkpoint(&v, &format!("rank_{r}"), fmt)
                    .ok()
                    .flatten()
                    .map(|p| crate::py::text::basename(&p).to_owned()),
            ),
            _ => None,
        })
        .collect()
}

/// One sentence per rank whose MindFormers file is not the safe one, saying what would happen.
fn differences(
    tree: &Tree,
    mf: &MfResolution,
    fmt: Fmt,
    safe: &CkptName,
    facts: &mut dyn FnMut(&str, &str) -> Option<ShardCheck>,
) -> Vec<String> {
    let Some(files) = mf_files(tree, mf, fmt) else {
        let err = mf.per_rank.iter().find_map(|r| match r {
            RankResult::Error(e) => Some(format!("{}: {}", e.class, e.first_line())),
            _ => None,
        });
        return vec![match err {
            Some(e) => format!(
                "MindFormers fails ({e}); {} is intact on every rank",
                safe.file_name()
            ),
            None => format!(
                "MindFormers does not resume; {} is intact on every rank",
                safe.file_name()
            ),
        }];
    };
    let mut out = Vec::new();
    let mut older = false;
    for (r, file) in files.iter().enumerate() {
        let dir = format!("rank_{r}");
        let Some(file) = file else {
            out.push(format!(
                "rank {r}: MindFormers finds no file to load in {dir}/"
            ));
            continue;
        };
        let present = tree
            .dirs
            .get(&dir)
            .is_some_and(|d| d.listing.find(file).is_some_and(|e| e.exists()));
        if !present {
            out.push(format!("rank {r}: {file} does not exist — MindFormers would pick it and fail with '{}/{dir}/{file} is not found!'", tree.root));
            continue;
        }
        match facts(&dir, file) {
            Some(f) if f.verdict != Verdict::Ok => out.push(format!(
                "rank {r}: {file} is {} — MindFormers would pick it and {}",
                damage_text(&f),
                consequence(f.verdict, &tree.root, &dir, file)
            )),
            _ => {
                if parse_ckpt_name(file).is_some_and(|n| {
                    (n.restart, n.epoch, n.step) < (safe.restart, safe.epoch, safe.step)
                }) {
                    older = true;
                }
            }
        }
    }
    if older && out.is_empty() {
        let why = match &mf.min_meta {
            Some(m) => format!(
                "the minimal meta.json (rank {}) says {}_{}",
                m.rank, m.epoch, m.step
            ),
            None => "of its by-mtime rule".into(),
        };
        out.push(format!("MindFormers resumes from an older step because {why}; {} is newer and intact on every rank (typical of async_save, whose meta.json lags one save)", safe.file_name()));
    }
    out
}

/// "truncated at byte 7,642 of 8,000 …" or "corrupt (…)": reads after "<file> is".
fn damage_text(f: &ShardCheck) -> String {
    let name = f.verdict.name().replace('_', " ");
    if f.detail.starts_with(&name) {
        f.detail.clone()
    } else {
        format!("{name} ({})", f.detail)
    }
}

/// What MindSpore's loader does with a damaged file (spec §9.7).
fn consequence(v: Verdict, root: &str, dir: &str, file: &str) -> String {
    let p = format!("{root}/{dir}/{file}");
    match v {
        Verdict::ZeroByte => "fail with 'The loaded parameter dict is empty after filter or specify …'".into(),
        Verdict::Incomplete => "silently restart the step counter (and data position) at 0".into(),
        Verdict::CrcMismatch | Verdict::HashMismatch => "load different data than was saved, silently".into(),
        Verdict::Corrupt => "fail to load it, or silently zero-fill or ignore tensor bytes".into(),
        Verdict::Encrypted => "fail without the decryption key".into(),
        _ if file.ends_with(".safetensors") => format!("fail with 'Fail to parse the input safetensors: '{p}'. …'"),
        _ => format!("fail with 'Failed to read the checkpoint file {p}. The file may be corrupted, and the content cannot be parsed.'"),
    }
}
