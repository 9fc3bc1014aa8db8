//! The step × rank grid: what each cell shows ([`cell`]), the grid built from a (possibly
//! simulated) view ([`model`]), and its plain-text rendering for non-terminal output ([`text`]).
pub mod cell;
pub mod model;
pub mod text;

use crate::layout::mindformers::names::Fmt;
use crate::model::{Delta, FileId, Tree, VerdictEntry};
use crate::resolve::safe::ShardFacts;
use crate::verify::verdict::ShardCheck;
use std::path::Path;

/// Verify every shard of a scanned tree (cheap pass) and record the verdicts in it.
pub fn verify_into(tree: &mut Tree) {
    let opts = crate::verify::tree::TreeOptions {
        deep: false,
        step: None,
        now: std::time::SystemTime::now(),
        workers: 0,
    };
    let reports = crate::verify::tree::verify_tree(
        tree,
        &opts,
        &Default::default(),
        &|_, _| 0,
        &mut |_, _| {},
    );
    for r in reports {
        let Some(st) = tree
            .dirs
            .get(&r.dir)
            .and_then(|d| d.listing.find(&r.file))
            .and_then(|e| e.stat().ok())
        else {
            continue;
        };
        let check = ShardCheck {
            verdict: r.verdict,
            detail: r.detail,
            size: r.size,
            append: r.append,
            sha256: r.sha256,
            deep: false,
        };
        tree.apply(Delta::Verdict(
            r.dir.clone(),
            r.file.clone(),
            VerdictEntry {
                id: FileId::from(st),
                check,
            },
        ));
    }
}

/// Shard facts from the verdicts recorded in the tree (for the safe resolver).
pub fn facts_from(tree: &Tree) -> impl Fn(&str, &str) -> Option<ShardFacts> + '_ {
    move |d: &str, f: &str| {
        tree.verdict(d, f).map(|c| ShardFacts {
            verdict: c.verdict,
            detail: c.detail.clone(),
            size: c.size,
            append: c.append.clone(),
        })
    }
}

/// The plain-text grid of a checkpoint folder, resolved as a single-node job.
pub fn text_for(root: &Path, fmt: Fmt, world: Option<u64>) -> String {
    let analysis = crate::demo::resolve_dir_as(root, fmt);
    let mut tree = crate::scan::scan(&crate::fsys::RealFs, &root.to_string_lossy());
    verify_into(&mut tree);
    let facts = facts_from(&tree);
    let w = world.unwrap_or(analysis.world_size);
    let safe = crate::resolve::safe::resolve(&tree, &analysis.mindformers, w, fmt, &mut |d, f| {
        facts(d, f)
    });
    let g = model::GridModel::build(
        &tree,
        fmt,
        w,
        Some(&analysis.mindformers),
        safe.pick.as_ref(),
        &Default::default(),
    );
    let title = format!(
        "ckptscope grid — {} ({} ranks × {} steps)",
        root.display(),
        g.ranks.len(),
        g.columns.len()
    );
    text::render(&g, &title)
}
