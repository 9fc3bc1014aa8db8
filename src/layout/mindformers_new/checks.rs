//! `verify`'s folder-level checks of a new-format tree, beside each shard's own verdict: what
//! MindFormers' `verify_ckpt_valid` says of each `iteration_*` folder (every file
//! `metadata.json` lists exists), whether `common.json` gives the context the resume needs,
//! and whether the tracker parses as Python's `int()` would and names an existing folder.

use super::context::load_common;
use super::tracker::{iteration_dir, parse, TRACKER};
use super::valid::{verify_ckpt_valid, Folder};
use crate::model::{FileRead, Tree};

/// One finding: the folder (or the tracker's name), a verdict name and why.
#[derive(Clone, Debug, PartialEq)]
pub struct Finding {
    pub dir: String,
    pub verdict: &'static str,
    pub detail: String,
}

fn finding(dir: &str, verdict: &'static str, detail: String) -> Finding {
    Finding {
        dir: dir.to_owned(),
        verdict,
        detail,
    }
}

/// Every finding of `tree` (whose root MindFormers would print as `root`).
pub fn findings(tree: &Tree, root: &str) -> Vec<Finding> {
    let mut out = Vec::new();
    // (a folder that could not be listed is reported as unreadable, not as one that lacks
    // every file)
    for (dir, node) in tree.dirs.iter().filter(|(d, n)| {
        d.starts_with("iteration_") && !matches!(n.listing, crate::model::Listing::Error(_))
    }) {
        let path = crate::py::text::join(root, dir);
        let metadata = node
            .control
            .iter()
            .find(|(n, _)| n == "metadata.json")
            .map(|(_, r)| r);
        let folder = Folder {
            path: &path,
            entries: node.listing.entries(),
            metadata,
        };
        // a folder still being written is reported by its `.tmp` shards
        let writing = node
            .listing
            .entries()
            .iter()
            .any(|e| e.name.ends_with(".tmp"));
        match verify_ckpt_valid(&folder, true) {
            Err(e) if e.class == super::analysis::UNREAD => out.push(finding(dir, "unreadable", format!("not checked: {}", e.first_line()))),
            Err(e) if !writing => out.push(finding(dir, "incomplete", format!("MindFormers' verification fails: {}: {}", e.class, e.first_line()))),
            Ok(()) if metadata.is_none() && super::names::model_writers(node.listing.entries().iter().map(|e| e.name)) > 1 => out.push(finding(dir, "incomplete", "no metadata.json in a multi-rank folder: MindFormers' verification passes, then loading fails (\"Duplicate parameter_name found\")".into())),
            _ => {}
        }
        match node.control.iter().find(|(n, _)| n == "common.json") {
            None if !writing => out.push(finding(dir, "incomplete", "no common.json: a resume from this folder fails (\"No common.json found in directory …\")".into())),
            Some((_, FileRead::Bytes(b))) => {
                if let Err(e) = load_common(b) {
                    out.push(finding(dir, "corrupt", format!("common.json: {}: {}", e.class, e.first_line())));
                }
            }
            Some((_, other)) => out.push(finding(dir, "unreadable", format!("common.json not read: {other:?}"))),
            None => {}
        }
    }
    match tree.root_files.get(TRACKER) {
        Some(FileRead::Bytes(b)) => match parse(&crate::py::text::join(root, TRACKER), b) {
            Err(e) => out.push(finding(
                TRACKER,
                "corrupt",
                format!(
                    "{}: {} (MindFormers fails on every rank)",
                    e.class,
                    e.first_line()
                ),
            )),
            Ok(n) => {
                let d = iteration_dir(&n);
                if tree.root_entry(&d).is_none_or(|e| !e.is_dir()) {
                    out.push(finding(TRACKER, "incomplete", format!("names {d}, which does not exist: MindFormers fails on every rank and never falls back")));
                }
            }
        },
        Some(other) => out.push(finding(
            TRACKER,
            "unreadable",
            format!("not read: {other:?}"),
        )),
        None => {}
    }
    out
}
