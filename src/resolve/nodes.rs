//! Per-node answers for a job whose rank folders are spread over several roots (a multi-node
//! job whose output folder is not shared: each node keeps its own ranks' folders). MindFormers
//! on a node sees only that node's folder: its listing, its rank count, its path in messages.
//! So each root is resolved as its node sees it ([`Tree::node_view`]) and each rank takes the
//! answer of the root that holds its folder. Where the node believes the folder shared
//! (`SHARED_PATHS`, an NFS mount …), rank 0 decides for everyone from its own node's folders
//! and the others follow the record it writes (§5.5, §5.13), so those ranks take the answer
//! of rank 0's root.

use super::config::{EnvFacts, PathFacts, ResumeConfig};
use super::mindformers::{resolve, Branch, Inputs, MfResolution};
use super::shared::SharedDecision;
use super::warnings::Warning;
use crate::model::Tree;
use serde::Serialize;

/// What one root's node resolves to.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NodeAnswer {
    /// The root as given.
    pub root: String,
    /// The ranks whose answer is this root's (their folder is there, or — for a rank with no
    /// folder anywhere — other ranks of its node, by `DEVICE_NUM_PER_NODE`, are).
    pub ranks: Vec<u64>,
    /// How many `rank_*` folders the root holds.
    pub rank_folders: usize,
    /// Whether the node believes the folder shared, and why.
    pub shared: Option<SharedDecision>,
    /// The path the node's resolution took.
    pub branch: Branch,
    /// Whose decision the ranks follow: this root's, or rank 0's root (a shared folder).
    pub follows: Option<String>,
    /// What its ranks load, grouped: a step (`20_2`), or why nothing (`not resuming`, a
    /// problem code such as `rank_folder_missing`, an error class) — the hazard of a
    /// non-shared job is nodes resuming from different steps.
    pub loads: Vec<NodeLoad>,
}

/// Ranks of one node that load the same step (or fail the same way).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NodeLoad {
    pub what: String,
    pub ranks: Vec<u64>,
}

/// Resolve each root of a merged `tree` as its node sees it and give each rank of `mf` (the
/// merged tree's resolution) its node's answer. Every node checks the job's own path
/// (`paths`: `load_checkpoint` is one string on every node). Returns the per-root answers
/// (empty for a tree of one root).
pub fn per_node(
    tree: &Tree,
    config: &ResumeConfig,
    env: &EnvFacts,
    paths: &PathFacts,
    mf: &mut MfResolution,
) -> Vec<NodeAnswer> {
    let roots = tree.roots();
    if roots.len() < 2 {
        return Vec::new();
    }
    // every node runs with the job's world size, not its own folder count
    let env = EnvFacts {
        world_size: Some(env.world_size_for(tree)),
        ..env.clone()
    };
    let views: Vec<Tree> = (0..roots.len())
        .map(|k| tree.node_view(k as u16).unwrap_or_default())
        .collect();
    let answers: Vec<MfResolution> = views
        .iter()
        .map(|sub| {
            resolve(&Inputs {
                tree: sub,
                config,
                env: &env,
                paths,
            })
        })
        .collect();
    let per_node = usize::try_from(env.device_num_per_node.max(1)).unwrap_or(usize::MAX);
    let w = mf.per_rank.len();
    let blocks = node_blocks(tree, w, per_node);
    let root_of = |r: usize| -> Option<usize> {
        let dir = format!("rank_{r}");
        match tree.dirs.contains_key(&dir) {
            true => Some(usize::from(tree.origin(&dir))),
            false => blocks.get(r / per_node).copied().flatten(),
        }
    };
    let decider = root_of(0).unwrap_or(0);
    let mut out: Vec<NodeAnswer> = roots
        .iter()
        .zip(&answers)
        .enumerate()
        .map(|(k, (r, a))| {
            let shared = a.shared.as_ref().is_some_and(SharedDecision::is_shared);
            NodeAnswer {
                root: r.label.clone(),
                ranks: Vec::new(),
                rank_folders: tree
                    .dirs
                    .keys()
                    .filter(|d| d.starts_with("rank_") && usize::from(tree.origin(d)) == k)
                    .count(),
                shared: a.shared.clone(),
                branch: a.branch.clone(),
                follows: (shared && k != decider).then(|| roots[decider].label.clone()),
                loads: Vec::new(),
            }
        })
        .collect();
    for r in 0..w {
        let Some(k) = root_of(r) else { continue };
        let from = match out[k].follows {
            Some(_) => decider,
            None => k,
        };
        if let Some(v) = answers[from].per_rank.get(r) {
            mf.per_rank[r] = v.clone();
            out[k].ranks.push(r as u64);
        }
    }
    // the headline (branch, candidates, log, record) is rank 0's node's: what rank 0 decides
    // and logs from its own folder
    let per_rank = std::mem::take(&mut mf.per_rank);
    *mf = answers[decider].clone();
    mf.per_rank = per_rank;
    for (k, n) in out.iter_mut().enumerate() {
        let view = super::view::View::new(&views[k]);
        for &r in &n.ranks {
            let what = load_of(&view, mf, r, config.fmt);
            match n.loads.iter_mut().find(|l| l.what == what) {
                Some(l) => l.ranks.push(r),
                None => n.loads.push(NodeLoad {
                    what,
                    ranks: vec![r],
                }),
            }
        }
    }
    out
}

/// What rank `r` loads on its node: the step of its file, or why it loads nothing.
fn load_of(
    view: &super::view::View,
    mf: &MfResolution,
    r: u64,
    fmt: crate::layout::mindformers::names::Fmt,
) -> String {
    use super::mindformers::RankResult;
    match super::load::loaded_file(view, mf, r, fmt) {
        Some(Ok(file)) => match crate::layout::mindformers::names::parse_ckpt_name(&file) {
            Some(n) => format!("step {}_{}", n.epoch, n.step),
            None => file,
        },
        Some(Err(p)) => format!("fails: {}", p.code),
        None => match mf.per_rank.get(r as usize) {
            Some(RankResult::Off) => "not resuming".into(),
            Some(RankResult::Error(e)) => format!("fails: {}", e.class),
            Some(RankResult::Unknown(_)) => "unknown".into(),
            _ => "nothing".into(),
        },
    }
}

/// The root each node's block of ranks (`DEVICE_NUM_PER_NODE` consecutive ranks) runs
/// against: the root holding the block's folders; for a block with no folder anywhere (a node
/// whose disk was wiped or replaced: its root is empty), the next root, in the order given,
/// that holds no rank folder at all — roots are given in node order.
fn node_blocks(tree: &Tree, w: usize, per_node: usize) -> Vec<Option<usize>> {
    let held = |b: usize| {
        (b * per_node..(b * per_node).saturating_add(per_node).min(w)).find_map(|r| {
            let dir = format!("rank_{r}");
            tree.dirs
                .contains_key(&dir)
                .then(|| usize::from(tree.origin(&dir)))
        })
    };
    let mut blocks: Vec<Option<usize>> = (0..w.div_ceil(per_node)).map(held).collect();
    let holding: std::collections::BTreeSet<usize> = tree
        .dirs
        .iter()
        .filter(|(d, _)| d.starts_with("rank_"))
        .map(|(_, n)| usize::from(n.origin))
        .collect();
    let mut empty = (0..tree.roots().len()).filter(|k| !holding.contains(k));
    for b in blocks.iter_mut().filter(|b| b.is_none()) {
        *b = empty.next();
    }
    blocks
}

/// The hazards of a job spread over several roots: a rank folder under two roots (only the
/// first is read), and a node that believes its folder shared although it is not.
pub fn warnings(tree: &Tree, nodes: &[NodeAnswer]) -> Vec<Warning> {
    let roots = tree.roots();
    let mut out: Vec<Warning> = tree
        .conflicts()
        .iter()
        .map(|c| {
            let names: Vec<&str> = c
                .roots
                .iter()
                .filter_map(|&k| roots.get(usize::from(k)).map(|r| r.label.as_str()))
                .collect();
            Warning {
                code: "rank_folder_conflict",
                message: format!(
                    "{} is under {} roots ({}): ckptscope reads {}'s (the root holding most of that rank's node, else the first given); a rank runs on one node — remove the stale copy, or give only the roots of this job's nodes",
                    c.dir,
                    names.len(),
                    names.join(", "),
                    names.first().copied().unwrap_or("?")
                ),
                rank: crate::layout::rank_dir_number(&c.dir),
                path: Some(c.dir.clone()),
            }
        })
        .collect();
    let mut whats: Vec<(&str, &str, usize)> = Vec::new();
    for n in nodes {
        for l in &n.loads {
            whats.push((&l.what, &n.root, l.ranks.len()));
        }
    }
    let mut distinct: Vec<&str> = whats.iter().map(|w| w.0).collect();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() > 1 {
        let parts: Vec<String> = whats
            .iter()
            .map(|(what, root, n)| {
                format!(
                    "{n} rank{} under {root}: {what}",
                    if *n == 1 { "" } else { "s" }
                )
            })
            .collect();
        out.push(Warning {
            code: "nodes_differ",
            message: format!(
                "the nodes do not resume alike — {}; ranks that load different steps (or none) train on from different states: make every node's folder hold the same step, then resume",
                parts.join("; ")
            ),
            rank: None,
            path: None,
        });
    }
    for n in nodes.iter().filter(|n| n.follows.is_some()) {
        let decider = n.follows.as_deref().unwrap_or_default();
        out.push(Warning {
            code: "roots_treated_as_shared",
            message: format!(
                "the node of {} believes the checkpoint folder shared ({}), but its ranks' folders are not where rank 0's are: rank 0 decides from the {} rank folders under {decider} alone, and the other nodes follow the resume record it writes only if output_dir is shared too; set SHARED_PATHS only for a folder every node really sees",
                n.root,
                n.shared.as_ref().map_or("?".into(), shared_why),
                nodes.iter().find(|m| m.root == decider).map_or(0, |m| m.rank_folders),
            ),
            rank: None,
            path: None,
        });
    }
    out
}

fn shared_why(s: &SharedDecision) -> String {
    match s {
        SharedDecision::SingleNode { .. } => "a single node".into(),
        SharedDecision::ModelArts => "ModelArts".into(),
        SharedDecision::Mount { mountpoint, fstype } => format!("{fstype} mount {mountpoint}"),
        SharedDecision::SharedPaths { element } => format!("SHARED_PATHS element {element}"),
        SharedDecision::NotShared => "not shared".into(),
    }
}
