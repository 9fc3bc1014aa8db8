//! The safe resume step (pure): the newest checkpoint whose shard is present and `ok` on every
//! rank `0 … W−1`, candidates across restart prefixes ordered by restart index, then epoch,
//! then step — and the configuration that makes MindFormers resume from it
//! (`resume_training: "<rank-0 file name>"`, which MindFormers maps to each rank's own file).
//! Verdicts come from a caller-supplied function, so only the files that matter are read.

use super::load::{damage_text, loaded_file, LoadProblem};
use super::mindformers::{Branch, MfResolution, RankResult};
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
        let Some(node) = tree.dirs.get(&dir) else {
            return Some(format!("rank {r}: the folder {dir}/ is missing"));
        };
        if let crate::model::Listing::Error(e) = &node.listing {
            // nothing in it can be known: not the same as a file found missing
            return Some(format!(
                "rank {r}: {dir}/ cannot be listed ({}), so {name} cannot be checked",
                e.text
            ));
        }
        if !node.listing.entries().exists(&name) {
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
    problems: &[LoadProblem],
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
            differences(tree, mf, fmt, &c, problems)
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

/// The file each rank loads under MindFormers' own decision (`True` → newest by mtime; `None`
/// where it finds none); `None` when some rank does not load at all.
pub fn mf_files(tree: &Tree, mf: &MfResolution, fmt: Fmt) -> Option<Vec<Option<String>>> {
    let v = View::new(tree);
    (0..mf.per_rank.len() as u64)
        .map(|r| match loaded_file(&v, mf, r, fmt)? {
            Ok(f) => Some(Some(f)),
            Err(_) => Some(None),
        })
        .collect()
}

/// One sentence per rank (or per cause) saying why MindFormers' own pick is not the safe one:
/// the load problems first; else that MindFormers resumes from an older intact step.
fn differences(
    tree: &Tree,
    mf: &MfResolution,
    fmt: Fmt,
    safe: &CkptName,
    problems: &[LoadProblem],
) -> Vec<String> {
    if let Some(why) = &mf.unknown {
        return vec![format!(
            "ckptscope cannot tell what MindFormers does ({why}); {} is intact on every rank",
            safe.file_name()
        )];
    }
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
    let out: Vec<String> = problems
        .iter()
        .map(|p| format!("rank {}: {}", p.rank, p.why))
        .collect();
    let older = files.iter().flatten().any(|file| {
        parse_ckpt_name(file)
            .is_some_and(|n| (n.restart, n.epoch, n.step) < (safe.restart, safe.epoch, safe.step))
    });
    if older && out.is_empty() {
        let newer = safe.file_name();
        // the reason is the branch MindFormers took: only a lagging meta.json is async_save's
        return vec![match (&mf.branch, &mf.min_meta) {
            (Branch::ByMeta, Some(m)) => format!(
                "MindFormers resumes from an older step because the minimal meta.json (rank {}) says {}_{}; {newer} is newer and intact on every rank (typical of async_save, whose meta.json lags one save)",
                m.rank, m.epoch, m.step
            ),
            (Branch::ExplicitName, _) => format!(
                "resume_training names an older file, and MindFormers loads what it names; {newer} is newer and intact on every rank"
            ),
            _ => format!(
                "MindFormers resumes from an older step (each rank's newest file by modification time); {newer} is newer and intact on every rank"
            ),
        }];
    }
    out
}
