//! The resolvers: pure functions of a scanned tree plus configuration.
//!
//! * [`mindformers`] — what MindFormers 2.1.0 would do, bug for bug;
//! * [`data_skip`] — the resume arithmetic (float32 rules);
//! * [`warnings`] — the hazards the tree and the decision show.
//!
//! [`analyze`] runs them together. Reading the chosen file's append entries is the only I/O the
//! analysis needs; the caller supplies it as a function, so tests run without a filesystem.

pub mod by_meta;
pub mod config;
pub mod context;
pub mod data_skip;
pub mod mindformers;
pub mod no_meta;
pub mod safe;
pub mod shared;
pub mod view;
pub mod warnings;
pub mod yaml;

use crate::layout::mindformers::names::{parse_ckpt_name, CkptName};
use crate::layout::LayoutId;
use crate::model::Tree;
use crate::verify::ckpt::AppendValues;
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

/// A shard that was verified while deciding, for the per-shard details.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CheckedShard {
    pub rank: Option<u64>,
    pub file: String,
    #[serde(flatten)]
    pub facts: safe::ShardFacts,
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
    /// `None` when no shard checker was given.
    pub safe: Option<Safe>,
    pub shards: Vec<CheckedShard>,
}

/// Verifies one shard `(rank folder, file name)`; `None` when it cannot be examined.
pub type ShardChecker<'a> = &'a dyn Fn(&str, &str) -> Option<safe::ShardFacts>;

/// Run the MindFormers resolver, the data-skip arithmetic and the hazard checks.
/// `read_append(file)` returns the append entries of `rank_0/<file>`, or why MindSpore could
/// not load that file.
pub fn analyze(
    tree: &Tree,
    config: &ResumeConfig,
    env: &EnvFacts,
    paths: &PathFacts,
    run: &RunSettings,
    read_append: &dyn Fn(&str) -> Result<AppendValues, String>,
    checker: Option<ShardChecker>,
) -> Analysis {
    let mf = mindformers::resolve(&Inputs {
        tree,
        config,
        env,
        paths,
    });
    let file = context::context_file(tree, &mf, config);
    let context = file.map(|file| {
        let (append, unusable) = match read_append(&file) {
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
        let inputs = context::skip_inputs(tree, &c.file, append, config, run, &mut notes);
        Some((data_skip::compute(&inputs), inputs.new_global_batch_size))
    });
    let context = context.map(|c| Context { notes, ..c });
    let warnings = warnings::collect(&warnings::Facts {
        tree,
        mf: &mf,
        config,
        env,
        paths,
        context: context
            .as_ref()
            .map(|c| (c.file.as_str(), c.append.as_ref())),
        new_global_batch_size: data_skip.as_ref().and_then(|d| d.1),
    });
    let (safe, shards) = match checker {
        Some(check) => safe_analysis(tree, &mf, config, env, run, check),
        None => (None, Vec::new()),
    };
    Analysis {
        load_checkpoint: tree.root.clone(),
        layout: LayoutId::MindformersLegacy,
        world_size: env.world_size,
        mindformers: mf,
        context,
        data_skip: data_skip.map(|d| d.0),
        warnings,
        safe,
        shards,
    }
}

/// The safe pick, its data skip, and every shard verified on the way (each checked once).
fn safe_analysis(
    tree: &Tree,
    mf: &MfResolution,
    config: &ResumeConfig,
    env: &EnvFacts,
    run: &RunSettings,
    check: ShardChecker,
) -> (Option<Safe>, Vec<CheckedShard>) {
    let mut seen: std::collections::BTreeMap<(String, String), Option<safe::ShardFacts>> =
        Default::default();
    let mut cached = |dir: &str, name: &str| {
        seen.entry((dir.to_owned(), name.to_owned()))
            .or_insert_with(|| check(dir, name))
            .clone()
    };
    let outcome = safe::resolve(tree, mf, env.world_size, config.fmt, &mut cached);
    let data_skip = outcome.pick.as_ref().and_then(|p| {
        let file = &p.per_rank.first()?.file;
        let append = cached("rank_0", file)?.append?;
        let inputs = context::skip_inputs(tree, file, &append, config, run, &mut Vec::new());
        Some(data_skip::compute(&inputs))
    });
    let shards = seen
        .into_iter()
        .filter_map(|((dir, file), f)| {
            Some(CheckedShard {
                rank: crate::layout::rank_dir_number(&dir),
                file,
                facts: f?,
            })
        })
        .collect();
    (Some(Safe { outcome, data_skip }), shards)
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
