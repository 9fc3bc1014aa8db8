//! The resolvers: pure functions of a scanned tree plus configuration.
//!
//! * [`mindformers`] — what MindFormers 2.1.0 would do, bug for bug;
//! * [`data_skip`] — the resume arithmetic (float32 rules);
//! * [`load`] — what each rank hits when it loads the file it resolved;
//! * [`warnings`] — the hazards the tree and the decision show.
//!
//! [`analyze`] runs them together. Everything it knows about a shard's content (its verdict and
//! append entries) comes from one caller-supplied function, so the analysis itself does no I/O
//! and tests run without a filesystem. [`crate::session`] is the only caller in the program.

pub(crate) mod by_meta;
pub(crate) mod by_meta_memo;
pub mod config;
pub mod context;
pub(crate) mod data_skip;
pub mod load;
pub mod mindformers;
pub(crate) mod no_meta;
pub mod nodes;
pub(crate) mod safe;
pub(crate) mod shared;
pub(crate) mod view;
pub(crate) mod warnings;
pub(crate) mod yaml;

use crate::layout::mindformers::names::{parse_ckpt_name, CkptName};
use crate::layout::LayoutId;
use crate::model::{AppendValues, FileRead, Listing, RootState, ShardCheck, ShardResult, Tree};
use config::{EnvFacts, PathFacts, ResumeConfig};
use context::RunSettings;
use data_skip::DataSkip;
use mindformers::{Inputs, MfResolution};
use serde::Serialize;
use warnings::Warning;

/// The resume context the data skip was computed from.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Context {
    /// File name in `rank_0/`.
    pub file: String,
    /// Its append entries, or `None` when MindSpore could not load the file.
    pub append: Option<AppendValues>,
    /// Why the file cannot be loaded (damaged, unreadable …), when it cannot.
    pub unusable: Option<String>,
    /// Inferences and assumptions made for the arithmetic.
    pub notes: Vec<String>,
}

/// The integrity-aware recommendation and the data skip it would give.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Safe {
    pub outcome: safe::SafeOutcome,
    pub data_skip: Option<DataSkip>,
}

/// Everything `ckptscope resolve` reports.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Analysis {
    pub load_checkpoint: String,
    pub layout: LayoutId,
    pub world_size: u64,
    pub mindformers: MfResolution,
    pub context: Option<Context>,
    pub data_skip: Option<DataSkip>,
    pub warnings: Vec<Warning>,
    pub safe: Safe,
    /// Ranks whose load of the resolved file would fail, go silently wrong, or cannot be
    /// judged (only ranks with a problem: empty on a healthy tree).
    pub load: Vec<load::LoadProblem>,
    /// The first input ckptscope could not read (the root, a rank folder, a `meta.json`), as
    /// "path: cause; fix": the answer is then unknown.
    pub unreadable: Option<String>,
    /// Every shard examined on the way, each once.
    pub shards: Vec<ShardResult>,
    /// The answer for a new-format tree (`layout` is then `mindformers-new`, and the legacy
    /// fields above describe nothing MindFormers does).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub newfmt: Option<Box<crate::layout::mindformers_new::analysis::NewAnalysis>>,
    /// Each root's answer, for a job whose rank folders are spread over several.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<nodes::NodeAnswer>,
}

/// The answer in one word, as the exit status gives it (`resolve-contract.md`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every rank would resume (or start fresh on purpose): exit 0.
    Resumes,
    /// MindFormers raises on some rank — resolving, or loading the file it picked — or a rank
    /// would load a damaged file silently: exit 1.
    Fails,
    /// ckptscope cannot tell (an input it cannot read, a file that changed while read): exit 2,
    /// with this one-line reason.
    Unknown(String),
}

impl Analysis {
    /// The outcome every command's exit status and summary line read.
    pub fn outcome(&self) -> Outcome {
        if let Some(n) = &self.newfmt {
            return n.outcome();
        }
        if let Some(why) = &self.unreadable {
            return Outcome::Unknown(why.clone());
        }
        if let Some(why) = &self.mindformers.unknown {
            return Outcome::Unknown(why.clone());
        }
        if self.mindformers.branch == mindformers::Branch::Skipped {
            return Outcome::Unknown(format!("{} does not exist, or is neither a folder nor a file: there is nothing to resolve; pass the checkpoint folder that holds rank_0/ …", self.load_checkpoint));
        }
        let not_resuming = matches!(
            self.mindformers.branch,
            mindformers::Branch::NotResuming { .. }
        );
        if self.world_size == 0 && self.mindformers.per_rank.is_empty() && !not_resuming {
            // a new-format tree: say what it is, not only that it has no rank folder
            if let Some(w) = self.warnings.iter().find(|w| w.code == "new_format") {
                return Outcome::Unknown(w.message.clone());
            }
            return Outcome::Unknown(format!("{} holds no rank_* folder and no world size was given (--world-size, RANK_SIZE): there is no rank to resolve for; pass the checkpoint folder that holds rank_0/ …", self.load_checkpoint));
        }
        let raises = self
            .mindformers
            .per_rank
            .iter()
            .any(|r| matches!(r, mindformers::RankResult::Error(_)));
        if raises || self.load.iter().any(|p| p.kind != load::LoadKind::Unknown) {
            return Outcome::Fails;
        }
        match self.load.first() {
            Some(p) => Outcome::Unknown(format!("rank {}: {}", p.rank, p.why)),
            None => Outcome::Resumes,
        }
    }
}

/// What is known about shards, for the analysis: one at a time, and — where the analysis knows
/// a batch it asks for next (every rank's resolved file) — the batch first, so that a source
/// reading the disk can read it on all cores (16,384 shard checks in a row are a fifth of a
/// big tree's `resolve`).
pub trait ShardFacts {
    /// What is known about shard `(rank folder, file name)`; `None` when it is not in the
    /// tree or cannot be examined.
    fn check(&self, dir: &str, file: &str) -> Option<ShardCheck>;
    /// Shards the analysis asks [`ShardFacts::check`] for next.
    fn prefetch(&self, _batch: &Batch) {}
}

/// `(rank folder, file name)` pairs.
pub type Batch = [(String, String)];

impl<F: Fn(&str, &str) -> Option<ShardCheck>> ShardFacts for F {
    fn check(&self, dir: &str, file: &str) -> Option<ShardCheck> {
        self(dir, file)
    }
}

pub type ShardSource<'a> = &'a dyn ShardFacts;

/// The append entries MindSpore's loader would read from a checked shard, or why it could not
/// load it (the stream does not parse, the file is encrypted, missing …).
pub fn loadable_append(check: Option<ShardCheck>) -> Result<AppendValues, String> {
    match check {
        Some(ShardCheck {
            append: Some(a), ..
        }) => Ok((*a).clone()),
        Some(c) => Err(format!("is {}: {}", c.verdict.name(), c.detail)),
        None => Err("could not be examined".into()),
    }
}

/// Run the MindFormers resolver, the data-skip arithmetic, the hazard checks and the safe
/// resolver. `shards` tells what each shard holds (the context file's append entries included).
pub fn analyze(
    tree: &Tree,
    config: &ResumeConfig,
    env: &EnvFacts,
    paths: &PathFacts,
    run: &RunSettings,
    shards: ShardSource,
) -> Analysis {
    let (mut mf, hazards) = beside(
        || warnings::folder_hazards(tree, config.fmt),
        || {
            mindformers::resolve(&Inputs {
                tree,
                config,
                env,
                paths,
            })
        },
    );
    let nodes = nodes::per_node(tree, config, env, paths, &mut mf);
    let file = context::context_file(tree, &mf, config);
    let context = file.map(|file| {
        let (append, unusable) = match loadable_append(shards.check("rank_0", &file)) {
            Ok(a) => (Some(a), None),
            Err(why) => (None, Some(why)),
        };
        Context {
            file,
            append,
            unusable,
            notes: Vec::new(),
        }
    });
    let mut notes = Vec::new();
    let data_skip = context.as_ref().and_then(|c| {
        let append = c.append.as_ref()?;
        let inputs = context::skip_inputs(
            tree,
            env.world_size,
            &c.file,
            append,
            config,
            run,
            &mut notes,
        );
        Some((data_skip::compute(&inputs), inputs.new_global_batch_size))
    });
    let context = context.map(|c| Context { notes, ..c });
    let mut warnings = warnings::collect(
        &warnings::Facts {
            tree,
            mf: &mf,
            config,
            env,
            paths,
            context: context
                .as_ref()
                .map(|c| (c.file.as_str(), c.append.as_ref())),
            new_global_batch_size: data_skip.as_ref().and_then(|d| d.1),
        },
        hazards,
    );
    warnings.extend(nodes::warnings(tree, &nodes));
    let (safe, load, shards) = safe_analysis(tree, &mf, config, env, run, shards);
    warnings.extend(
        load.iter()
            .filter(|p| p.kind != load::LoadKind::Unknown)
            .map(|p| Warning {
                code: p.code,
                message: format!("rank {}: {}", p.rank, p.why),
                rank: Some(p.rank),
                path: p.file.as_ref().map(|f| format!("rank_{}/{f}", p.rank)),
            }),
    );
    Analysis {
        load_checkpoint: tree.root.clone(),
        layout: LayoutId::MindformersLegacy,
        world_size: env.world_size_for(tree),
        mindformers: mf,
        context,
        data_skip: data_skip.map(|d| d.0),
        warnings,
        safe,
        load,
        unreadable: unreadable_input(tree),
        shards,
        newfmt: None,
        nodes,
    }
}

/// `other()` on a second thread while `main()` runs on this one: the folders' hazards need
/// nothing MindFormers' resolution decides, and the resolution runs on one core (a fresh scan
/// of 4,096 × 50 spends ≈ 20 ms on each). Without a thread to spare, one after the other.
fn beside<A: Send, B>(other: impl FnOnce() -> A + Send, main: impl FnOnce() -> B) -> (B, A) {
    // (shared so that it is still here to run when no thread could be started)
    let other = std::sync::Mutex::new(Some(other));
    let take = || other.lock().unwrap_or_else(|p| p.into_inner()).take();
    std::thread::scope(|s| {
        let handle = std::thread::Builder::new()
            .name("ckptscope-hazards".into())
            .spawn_scoped(s, || take().map(|f| f()));
        let b = main();
        let a = match handle.map(|h| h.join()) {
            Ok(Ok(Some(a))) => a,
            Ok(Err(panic)) => std::panic::resume_unwind(panic),
            // no thread: run it here (the thread, when it ran, took it: `Some` above)
            Ok(Ok(None)) | Err(_) => take().map(|f| f()).expect("no thread ran `other`"),
        };
        (b, a)
    })
}

/// The load predictions, the safe pick and its data skip, and every shard verified on the way
/// (each checked once).
fn safe_analysis(
    tree: &Tree,
    mf: &MfResolution,
    config: &ResumeConfig,
    env: &EnvFacts,
    run: &RunSettings,
    check: ShardSource,
) -> (Safe, Vec<load::LoadProblem>, Vec<ShardResult>) {
    let mut seen: std::collections::BTreeMap<(String, String), Option<ShardCheck>> =
        Default::default();
    let mut cached = |dir: &str, name: &str| {
        seen.entry((dir.to_owned(), name.to_owned()))
            .or_insert_with(|| check.check(dir, name))
            .clone()
    };
    let prefetch = |batch: &Batch| check.prefetch(batch);
    let problems = load::predict(tree, mf, config.fmt, &mut cached, &prefetch);
    let outcome = safe::resolve(
        tree,
        mf,
        env.world_size_for(tree),
        config.fmt,
        &mut cached,
        &problems,
    );
    let data_skip = outcome.pick.as_ref().and_then(|p| {
        let file = &p.per_rank.first()?.file;
        let append = cached("rank_0", file)?.append?;
        let inputs = context::skip_inputs(
            tree,
            env.world_size,
            file,
            &append,
            config,
            run,
            &mut Vec::new(),
        );
        Some(data_skip::compute(&inputs))
    });
    let shards = seen
        .into_iter()
        .filter_map(|((dir, file), f)| {
            Some(ShardResult {
                rank: crate::layout::rank_dir_number(&dir),
                dir,
                file,
                check: f?,
            })
        })
        .collect();
    (Safe { outcome, data_skip }, problems, shards)
}

/// The canonical checkpoint names in `rank_0/` (any format, any run), in listing order: the
/// candidates every analysis that reasons from rank 0's files starts with.
pub(crate) fn rank0_names(tree: &Tree) -> impl Iterator<Item = CkptName> + '_ {
    tree.dirs
        .get("rank_0")
        .into_iter()
        .flat_map(|d| d.listing.entries())
        .filter_map(|e| parse_ckpt_name(&e.name))
}

/// The first input ckptscope could not read, as "path: cause; fix".
pub fn unreadable_input(tree: &Tree) -> Option<String> {
    let d = &tree.root;
    match &tree.state {
        RootState::Missing => return Some(format!("{d}: no such file or directory; pass the checkpoint folder (the one holding rank_0/ …) as LOAD_CHECKPOINT")),
        RootState::Error(e) => return Some(format!("{d}: {}; check the path and its permissions", e.text)),
        RootState::Dir(Listing::Error(e)) => return Some(format!("{d}: cannot list the folder ({}); run ckptscope as a user who can read it", e.text)),
        RootState::Other(k) => return Some(format!("{d} is {k}, not a folder or file; pass the checkpoint folder (the one holding rank_0/ …) as LOAD_CHECKPOINT")),
        _ => {}
    }
    for (name, node) in tree.dirs.iter().filter(|(n, _)| n.starts_with("rank_")) {
        if let Listing::Error(e) = &node.listing {
            let d = tree.label_of(name);
            return Some(format!("{d}/{name}: cannot list the folder ({}); ckptscope cannot tell what is in it (MindFormers, run as another user, may see it) — run ckptscope as the training user", e.text));
        }
        if let Some(FileRead::Error(e)) = &node.meta {
            if e.errno != 21 {
                return Some(format!(
                    "{}/{name}/meta.json: {}; run ckptscope as a user who can read it",
                    tree.label_of(name),
                    e.text
                ));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::beside;

    #[test]
    fn beside_gives_both_answers_and_passes_a_panic_on() {
        let here = std::thread::current().id();
        let (b, a) = beside(
            || std::thread::current().id(),
            || (7, std::thread::current().id()),
        );
        assert_eq!(b, (7, here));
        assert_ne!(a, here, "the other work ran on a thread of its own");
        let caught = std::panic::catch_unwind(|| beside(|| panic!("hazards failed"), || 1));
        assert!(caught.is_err(), "a panic beside is not swallowed");
    }
}
