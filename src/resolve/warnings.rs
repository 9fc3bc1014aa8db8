//! Hazard warnings (spec §11): what the tree and the decision show that an operator should know,
//! each with a stable code for scripts and a message that names the files and the fix.

use super::config::{EnvFacts, PathFacts, ResumeConfig};
use super::mindformers::{Branch, MfResolution, RankResult};
use crate::layout::mindformers::classify::{classify, EntryKind};
use crate::layout::mindformers::names::{parse_ckpt_name, CkptName, Fmt};
use crate::layout::rank_dir_number;
use crate::model::AppendValues;
use crate::model::{FileRead, Tree};
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Warning {
    pub code: &'static str,
    pub message: String,
    /// The rank the warning is about, when it is about one.
    pub rank: Option<u64>,
    /// The entry it is about, relative to the checkpoint folder (`rank_3/x.ckpt`), if any.
    pub path: Option<String>,
}

fn w(code: &'static str, message: String) -> Warning {
    Warning {
        code,
        message,
        rank: None,
        path: None,
    }
}

/// A warning about one entry `dir/name` (`dir` empty: the root itself).
fn at(code: &'static str, dir: &str, name: Option<&str>, message: String) -> Warning {
    let path = match (dir, name) {
        ("", Some(n)) => Some(n.to_owned()),
        (d, Some(n)) => Some(format!("{d}/{n}")),
        (d, None) => Some(d.to_owned()),
    };
    Warning {
        code,
        message,
        rank: rank_dir_number(if dir.is_empty() {
            name.unwrap_or("")
        } else {
            dir
        }),
        path,
    }
}

/// Everything the checks look at.
pub struct Facts<'a> {
    pub tree: &'a Tree,
    pub mf: &'a MfResolution,
    pub config: &'a ResumeConfig,
    pub env: &'a EnvFacts,
    pub paths: &'a PathFacts,
    /// Append values of the context file, when it was read.
    pub context: Option<(&'a str, Option<&'a AppendValues>)>,
    pub new_global_batch_size: Option<i64>,
}

/// Every hazard warning of an analysed tree, in report order (root, folders, decision, context
/// file). `folder_hazards` are [`folder_hazards`]' findings for the same tree and format: they need
/// nothing the resolver decides, so [`super::analyze`] finds them beside it on another core.
pub fn collect(f: &Facts, folder_hazards: Vec<Warning>) -> Vec<Warning> {
    let mut out = Vec::new();
    root_checks(f, &mut out);
    out.extend(folder_hazards);
    decision_checks(f, &mut out);
    context_checks(f, &mut out);
    out
}

fn root_checks(f: &Facts, out: &mut Vec<Warning>) {
    let Some(listing) = f.tree.root_listing() else {
        return;
    };
    for e in listing.entries() {
        // (a rank folder of a job given as several roots is named under its own root)
        let d = f.tree.label_of(&e.name);
        if e.non_utf8() {
            out.push(at("non_utf8_name", "", Some(&e.name), format!("{d}/{}: the name is not valid UTF-8 (shown with \\xNN for its invalid bytes); MindFormers' name patterns treat those bytes as Python does with surrogate escapes — rename it", e.name)));
        }
        if e.shown_escaped() {
            out.push(at("escaped_name", "", Some(&e.name), format!("{d}/{}: the name holds control characters or a backslash (shown as \\xNN); ckptscope matches it in that form — rename it", e.name)));
        }
        if e.name.starts_with("rank_") && (rank_dir_number(&e.name).is_none() || !e.is_dir()) {
            out.push(at("stray_rank_entry", "", Some(&e.name), format!("{d}/{}: counts towards MindFormers' rank-folder count N although it is not a rank folder; move it out of the checkpoint folder", e.name)));
        }
        if f.config.fmt == Fmt::Ckpt && e.name.ends_with(".ckpt") {
            out.push(at("root_ckpt_hijacks_weights", "", Some(&e.name), format!("{d}/{}: a .ckpt directly in the checkpoint folder makes every rank load the root-level .ckpt files as its weights, while the step still comes from rank_R/; move it out", e.name)));
        }
    }
    let n = listing
        .entries()
        .iter()
        .filter(|e| e.name.starts_with("rank_"))
        .count() as u64;
    new_format(f, listing.entries(), n > 0, out);
    let world = f.env.world_size_for(f.tree);
    if n != world && n > 0 {
        // a job given as several roots: what they hold together
        let (held, then) = match f.tree.roots().len() {
            0 | 1 => (format!("{} holds", f.tree.root), "ranks without a folder fail when they load"),
            k => (
                format!("the {k} roots hold"),
                "ranks without a folder fail when they load, or start afresh on a node whose folder is empty (see the per-node answers)",
            ),
        };
        out.push(w("rank_count_mismatch", format!("{held} {n} rank_* entries but the world size is {world}: MindFormers never compares them; {then}")));
    }
}

/// MindFormers' new checkpoint format in the folder (`iteration_*` folders, the tracker):
/// MindFormers resumes from it when the YAML has a `checkpoint:` section: a tree read as the
/// legacy layout (`--layout legacy`, a YAML without the section, or a root holding both) says
/// so rather than answer for an empty legacy tree.
fn new_format(f: &Facts, entries: &crate::model::Entries, legacy: bool, out: &mut Vec<Warning>) {
    use crate::layout::mindformers_new::tracker::TRACKER;
    let iterations = entries
        .iter()
        .filter(|e| e.name.starts_with("iteration_") && e.is_dir())
        .count();
    let tracker = entries.iter().any(|e| *e.name == *TRACKER);
    if iterations == 0 && !tracker {
        return;
    }
    let d = &f.tree.root;
    let what = format!(
        "{iterations} iteration_* folder(s){}",
        if tracker {
            format!(" and {TRACKER}")
        } else {
            String::new()
        }
    );
    let message = match legacy {
        true => format!("{d} also holds MindFormers' new checkpoint format ({what}): MindFormers resumes from that one when the YAML has a checkpoint: section (or use_legacy_format: False); the answer here is the legacy layout's — pass --layout new (or --config with the run's YAML) for the other"),
        false => format!("{d} holds MindFormers' new checkpoint format ({what}), read here as the legacy rank_* layout (--layout legacy, or a --config without a checkpoint: section: MindFormers itself would then look for rank_* folders); drop --layout legacy, or pass the run's YAML, for the new format's answer"),
    };
    out.push(w("new_format", message));
}

/// The hazards of every rank folder, in folder order: what each folder's listing, name and
/// root show alone (no resolver decision needed).
pub fn folder_hazards(tree: &Tree, fmt: Fmt) -> Vec<Warning> {
    let mut out = Vec::new();
    let other = if fmt == Fmt::Ckpt {
        "safetensors"
    } else {
        "ckpt"
    };
    // (built once: a tree of 8,192 × 200 has 1.6 M names to test)
    let (mine_ext, other_ext) = (format!(".{}", fmt.ext()), format!(".{other}"));
    for (name, node) in &tree.dirs {
        if !name.starts_with("rank_") {
            continue; // a new-format iteration_* folder: not the legacy layout's
        }
        // a folder's hazards depend on its listing, its name, the root and the format alone:
        // kept in its memo, a live view re-reads only the folders that changed
        // (named under the root that holds it, for a job given as several)
        let key = format!("warnings\0{}\0{name}\0{}", tree.label_of(name), fmt.ext());
        let found = node.memo.get_or(&key, || {
            let mut out = Vec::new();
            folder_checks(
                tree.label_of(name),
                name,
                node,
                fmt,
                other,
                (&mine_ext, &other_ext),
                &mut out,
            );
            out
        });
        out.extend(found.iter().cloned());
    }
    out
}

/// A shard name whose epoch or step MindFormers parses (Python ints) but ckptscope's model
/// cannot hold: only names with a run of 20 or more digits are parsed to find out.
fn beyond_range(name: &str, fmt: Fmt) -> bool {
    let longest = name
        .split(|c: char| !c.is_ascii_digit())
        .map(str::len)
        .max()
        .unwrap_or(0);
    longest >= 20
        && crate::layout::mindformers::names::parse_ckpt_name(name).is_none()
        && crate::layout::mindformers::names::epoch_and_step(name, fmt)
            .is_ok_and(|(e, s)| [e, s].iter().any(|v| v.to_i64().is_none_or(|v| v < 0)))
}

/// The hazards of one rank folder (see [`folder_hazards`]).
fn folder_checks(
    root: &str,
    name: &str,
    node: &crate::model::DirNode,
    fmt: Fmt,
    other: &str,
    (mine_ext, other_ext): (&str, &str),
    out: &mut Vec<Warning>,
) {
    {
        let dir = format!("{root}/{name}");
        if let crate::model::Listing::Error(e) = &node.listing {
            out.push(at("unreadable_folder", name, None, format!("{dir}: cannot be listed ({}); run ckptscope as a user who can read the checkpoint tree", e.text)));
            return;
        }
        let entries = node.listing.entries();
        let (mut mine, mut theirs) = (0, 0);
        for e in entries {
            if e.non_utf8() {
                out.push(at(
                    "non_utf8_name",
                    name,
                    Some(&e.name),
                    format!("{dir}/{}: the name is not valid UTF-8", e.name),
                ));
            }
            if e.shown_escaped() {
                out.push(at(
                    "escaped_name",
                    name,
                    Some(&e.name),
                    format!("{dir}/{}: the name holds control characters or a backslash (shown as \\xNN); rename it", e.name),
                ));
            }
            if crate::layout::mindformers::names::has_non_ascii_digit(&e.name) {
                out.push(at("unsupported_digits", name, Some(&e.name), format!("{dir}/{}: the name contains non-ASCII digits, which Python's \\d accepts; ckptscope follows Python but such names are a likely mistake", e.name)));
            }
            // a weights name is a checkpoint, an exception save or other weights: only the
            // exception save is a hazard, and only a name that ends like one can be one (the
            // full parse of every checkpoint name is the costly part of this pass)
            let weights_ext = e.name.ends_with(".ckpt") || e.name.ends_with(".safetensors");
            let kind = match weights_ext && !e.name.ends_with("_breakpoint.ckpt") {
                true => EntryKind::Weights,
                false => classify(&e.name),
            };
            match kind {
                EntryKind::Breakpoint => out.push(at("breakpoint_file", name, Some(&e.name), format!("{dir}/{}: an exception-save file; if it carries the latest run's prefix, resolution fails with \"Can't match epoch and step\"; move it out of the folder", e.name))),
                EntryKind::Tmp { .. } => out.push(at("save_in_progress", name, Some(&e.name), format!("{dir}/{}: a save in progress or an aborted one (never a resume candidate)", e.name))),
                EntryKind::MetaTmp => out.push(at("meta_replace_in_progress", name, Some(&e.name), format!("{dir}/{}: meta.json is being replaced, or a writer died before replacing it", e.name))),
                _ => {}
            }
            if weights_ext && beyond_range(&e.name, fmt) {
                out.push(at("step_out_of_range", name, Some(&e.name), format!("{dir}/{}: its epoch or step does not fit in 64 bits, so ckptscope leaves it out of the grid and the safe pick; MindFormers reads it as a Python int and may resume from it — rename or remove it", e.name)));
            }
            let is_mine = e.name.ends_with(mine_ext);
            if is_mine {
                mine += 1;
            } else if e.name.ends_with(other_ext) {
                theirs += 1;
            }
            if is_mine
                && matches!(e.stat(), Ok(st) if st.kind == crate::model::FileKind::File && st.size == 0)
            {
                out.push(at("zero_byte_shard", name, Some(&e.name), format!("{dir}/{}: 0 bytes; MindFormers still counts it as present and fails loading it", e.name)));
            }
        }
        if mine == 0 && theirs > 0 {
            out.push(at("format_mismatch", name, None, format!("{dir} holds .{other} files but load_ckpt_format is {}: set load_ckpt_format: {other} (or --format {other})", fmt.ext())));
        }
        if let Some(FileRead::NotRegular(k)) = &node.meta {
            out.push(at(
                "meta_not_regular",
                name,
                Some("meta.json"),
                format!("{dir}/meta.json is {k}: MindFormers would block or fail opening it"),
            ));
        }
    }
}

fn decision_checks(f: &Facts, out: &mut Vec<Warning>) {
    let mf = f.mf;
    if mf.branch == Branch::NotShared {
        out.push(w("not_shared_multinode", format!(
            "world size {} > DEVICE_NUM_PER_NODE {} and {} is not recognised as shared: every rank loads its own newest file by mtime, with no cross-rank check (set SHARED_PATHS if the folder is shared)",
            f.env.world_size_for(f.tree), f.env.device_num_per_node, f.tree.root)));
        unrecognised_shared_fs(f, out);
    }
    if mf.branch == Branch::NoMeta && f.config.fmt == Fmt::Safetensors && mf.rank0_error.is_some() {
        out.push(w("safetensors_no_meta_bug", "no usable meta.json on any rank: with safetensors MindFormers' NO_META check looks for .ckpt files and always fails; restore a meta.json or set resume_training to a file name".into()));
    }
    if mf.branch == Branch::NoMeta && mf.rank0_error.is_none() {
        out.push(w("no_meta", "no usable meta.json on any rank: every rank loads its newest file by mtime (names were checked to agree; contents and mtimes were not)".into()));
    }
    async_lag(f, out);
    sink_size_changed(f, out);
    older_prefix_fallback(f, out);
    stale_record(f, out);
}

/// Lustre, GPFS, CephFS, BeeGFS, SSHFS are shared but MindFormers does not recognise them.
fn unrecognised_shared_fs(f: &Facts, out: &mut Vec<Warning>) {
    for m in &f.env.mounts {
        let t = m.fstype.to_lowercase();
        let shared = [
            "lustre",
            "gpfs",
            "ceph",
            "beegfs",
            "fuse.sshfs",
            "cifs",
            "smb3",
            "9p",
        ]
        .iter()
        .any(|k| t.contains(k));
        if shared && m.mountpoint != "/" && f.paths.abspath.starts_with(&m.mountpoint) {
            out.push(w("shared_fs_not_recognised", format!("{} is on {} ({}), which MindFormers does not recognise as shared: set SHARED_PATHS={}", f.tree.root, m.mountpoint, m.fstype, m.mountpoint)));
        }
    }
}

/// Groups of canonical names per (prefix without rank, epoch, step) → ranks holding them.
fn complete_steps(tree: &Tree, fmt: Fmt, n: u64) -> BTreeMap<(String, u64, u64, u64), u64> {
    let mut count: BTreeMap<(String, u64, u64, u64), u64> = BTreeMap::new();
    for (name, node) in &tree.dirs {
        let Some(r) = rank_dir_number(name) else {
            continue;
        };
        for e in node.listing.entries() {
            if let Some(c) = parse_ckpt_name(&e.name).filter(|c| c.fmt == fmt && c.rank == r) {
                *count
                    .entry((c.stem.clone(), c.restart, c.epoch, c.step))
                    .or_default() += 1;
            }
        }
    }
    count.retain(|_, c| *c == n);
    count
}

/// A step newer than the chosen one that every rank holds under the chosen prefix. Only rank 0's
/// newer names are candidates, so the common case (nothing newer) costs one folder.
fn async_lag(f: &Facts, out: &mut Vec<Warning>) {
    let (Some(meta), Some(RankResult::File(chosen))) = (&f.mf.min_meta, f.mf.per_rank.first())
    else {
        return;
    };
    let Some(chosen) = parse_ckpt_name(chosen) else {
        return;
    };
    let n = f.mf.rank_entries.unwrap_or(0) as u64;
    let mut newer: Vec<_> = super::rank0_names(f.tree)
        .filter(|c| {
            c.fmt == f.config.fmt
                && c.stem == chosen.stem
                && c.restart == chosen.restart
                && c.rank == 0
        })
        .filter(|c| (c.epoch, c.step) > (chosen.epoch, chosen.step))
        .collect();
    newer.sort_by_key(|c| std::cmp::Reverse((c.epoch, c.step)));
    let complete = |c: &CkptName| {
        (0..n).all(|r| {
            let name = CkptName {
                rank: r,
                ..c.clone()
            }
            .file_name();
            f.tree
                .dirs
                .get(&format!("rank_{r}"))
                .is_some_and(|d| d.listing.find(&name).is_some_and(|e| e.is_file()))
        })
    };
    if let Some(c) = newer.iter().find(|c| complete(c)) {
        let (e, s) = (c.epoch, c.step);
        out.push(w("meta_lags_files", format!(
            "every rank has a newer checkpoint ({e}_{s}) than the minimal meta.json ({}_{}) allows: typical of async_save (meta.json is written one save late and never for the last save); MindFormers resumes from {}_{}. To resume from {e}_{s} instead (after verifying its files), set resume_training: \"{}\"",
            meta.epoch, meta.step, chosen.epoch, chosen.step, c.file_name())));
    }
}

/// Runs (restart prefixes) in rank 0 whose names use different, each constant, step-in-epoch
/// values: the sink size changed between runs and `E × s` no longer maps names to steps.
fn sink_size_changed(f: &Facts, out: &mut Vec<Warning>) {
    let mut runs: BTreeMap<(String, u64), std::collections::BTreeSet<u64>> = BTreeMap::new();
    for c in super::rank0_names(f.tree) {
        runs.entry((c.stem, c.restart)).or_default().insert(c.step);
    }
    let sinks: std::collections::BTreeSet<u64> = runs
        .values()
        .filter(|s| s.len() == 1)
        .flatten()
        .copied()
        .collect();
    if sinks.len() > 1 {
        out.push(w("sink_size_changed", format!(
            "runs in {}/rank_0 were saved with different sink sizes ({}): file names no longer map to global steps by epoch × sink size, and MindFormers warns that resuming after a sink-size change may misbehave",
            f.tree.label_of("rank_0"), sinks.iter().map(u64::to_string).collect::<Vec<_>>().join(", "))));
    }
}

fn older_prefix_fallback(f: &Facts, out: &mut Vec<Warning>) {
    let Some(err) = &f.mf.rank0_error else { return };
    if err.message != "No checkpoint could be resumed." {
        return;
    }
    let n = f.mf.rank_entries.unwrap_or(0) as u64;
    if let Some((stem, restart, e, s)) = complete_steps(f.tree, f.config.fmt, n)
        .into_keys()
        .max_by_key(|k| (k.1, k.2, k.3))
    {
        let pfx = if restart == 0 {
            format!("{stem}_rank_0")
        } else {
            format!("{stem}_rank_0_{restart}")
        };
        out.push(w("older_prefix_ignored", format!("an earlier run's checkpoint {pfx}-{e}_{s}.{} is complete on every rank, but MindFormers only searches the latest run's prefix: set resume_training: \"{pfx}-{e}_{s}.{}\" to resume from it", f.config.fmt.ext(), f.config.fmt.ext())));
    }
}

fn stale_record(f: &Facts, out: &mut Vec<Warning>) {
    if let Some(FileRead::NotRegular(k)) = &f.paths.existing_record {
        // rank 0 replaces it on its node; a rank reading its own node's copy opens this
        out.push(w("resume_record_not_regular", format!("{} is {k}, not a file: rank 0 replaces it with the record on its own node, but a rank on a node where output_dir is not shared would open it and block or fail; remove it", f.paths.record_path)));
        return;
    }
    let (Some(sim), Some(FileRead::Bytes(old))) = (&f.mf.record, &f.paths.existing_record) else {
        return;
    };
    if old.as_slice() != sim.as_bytes() {
        out.push(w("stale_resume_record", format!("{} exists with other content than rank 0 would now write: if output_dir is not shared, other nodes read the stale record and may resume a different step", f.paths.record_path)));
    }
}

fn context_checks(f: &Facts, out: &mut Vec<Warning>) {
    let Some((file, vals)) = f.context else {
        return;
    };
    let Some(a) = vals else { return };
    if a.step_num.is_none() || a.epoch_num.is_none() {
        out.push(w("context_entries_missing", format!("{file} lacks step_num or epoch_num: MindFormers would silently restart the step counter (and data position) at 0; the file is damaged")));
    }
    if let Some(s) = a.step_num.and_then(|n| n.as_i64()) {
        if s > 1 << 24 {
            out.push(w("f32_step_rounding", format!("step_num {s} exceeds 2^24: MindSpore computes the initial step in float32 and rounds it")));
        }
    }
    if let (Some(old), Some(new)) = (
        a.global_batch_size.and_then(|n| n.as_i64()),
        f.new_global_batch_size,
    ) {
        if old != new {
            out.push(w("global_batch_size_changed", format!("global batch size {old} → {new}: the step counter and data position are rescaled (float32); later file names repeat earlier E_S values and only the restart suffix tells runs apart")));
        }
    }
}
