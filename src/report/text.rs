//! The human report of `ckptscope resolve`: the decision first, then why, the per-rank files,
//! the data skip, and the warnings.

use super::group::{group_warnings, in_ranges, ranges_text, rank_runs};
use crate::resolve::mindformers::{Branch, RankResult};
use crate::resolve::shared::SharedDecision;
use crate::resolve::Analysis;

/// One report line: formatted, then everything dangerous in it escaped — a newline from a
/// name, a path or a `meta.json` value included — so data never starts a line of its own.
macro_rules! emit {
    ($s:expr, $($arg:tt)*) => {{
        let text = format!($($arg)*);
        $s.push_str(&crate::report::terminal::safe(&text));
        $s.push('\n');
    }};
}

/// What the text report shows: grouped by default (a healthy 16,384-rank tree fits on a
/// screen), everything with `all`, narrowed to some ranks or one step.
#[derive(Clone, Debug, Default)]
pub struct TextOptions {
    pub all: bool,
    pub ranks: Option<Vec<(u64, u64)>>,
    /// `(epoch, step)`: warnings about other steps' files are left out.
    pub step: Option<(u64, u64)>,
}

pub fn render(a: &Analysis, o: &TextOptions) -> String {
    if let Some(n) = &a.newfmt {
        return super::text_new::render(a, n, o);
    }
    let mut s = String::new();
    let mf = &a.mindformers;
    emit!(
        s,
        "ckptscope resolve — {} ({}, world size {})",
        a.load_checkpoint,
        a.layout.name(),
        a.world_size
    );
    s.push('\n');
    emit!(s, "MindFormers 2.1.0 would: {}", headline(a));
    emit!(s, "  why: {}", why(a));
    if let Some(sd) = &mf.shared {
        emit!(s, "  shared-path check: {}", shared_text(sd));
    }
    load_line(&mut s, a);
    if let Some(e) = &mf.rank0_error {
        emit!(s, "  rank 0 failed with {}: {}", e.class, e.message);
    }
    s.push('\n');
    per_rank(&mut s, a, o);
    nodes(&mut s, a);
    if !mf.candidates.is_empty() {
        s.push('\n');
        emit!(s, "candidates complete on every rank (oldest first):");
        // MindFormers takes the newest; a folder of 100,000 checkpoints lists 100,000 here
        let older = match o.all {
            true => 0,
            false => mf.candidates.len().saturating_sub(CANDIDATES_SHOWN),
        };
        if older > 0 {
            emit!(
                s,
                "  … {} older (--all lists them)",
                crate::verify::verdict::thousands(older as u64)
            );
        }
        for c in &mf.candidates[older..] {
            emit!(s, "  {c}");
        }
    }
    data_skip(&mut s, a);
    safe(&mut s, a);
    log(&mut s, &mf.log, o.all);
    warnings(&mut s, a, o);
    s
}

/// How many of the newest complete candidates the report lists without `--all`.
const CANDIDATES_SHOWN: usize = 5;

/// "then: ranks 900, 4000 fail when they load …": what happens after the resolver, grouped by
/// how it goes wrong (the warnings say why, rank by rank).
fn load_line(s: &mut String, a: &Analysis) {
    use crate::resolve::load::LoadKind;
    for (kind, what) in [
        (LoadKind::Fails, "fail when loading what it picked"),
        (LoadKind::Silent, "load a damaged file silently"),
        (
            LoadKind::Unknown,
            "cannot be judged (a file changed while read)",
        ),
    ] {
        let ranks: Vec<u64> = a
            .load
            .iter()
            .filter(|p| p.kind == kind)
            .map(|p| p.rank)
            .collect();
        if ranks.is_empty() {
            continue;
        }
        let n = ranks.len();
        let which = crate::report::group::ranges_text(&crate::report::group::ranges(ranks));
        emit!(
            s,
            "  then: {n} rank{} ({which}) would {what} — see the warnings",
            if n == 1 { "" } else { "s" }
        );
    }
}

/// Per-rank results: runs of ranks with the same pattern, or one line per rank with `--all`.
fn per_rank(s: &mut String, a: &Analysis, o: &TextOptions) {
    let single = a.mindformers.branch == Branch::SingleFile;
    let texts = a.mindformers.per_rank.iter().map(|r| match r {
        RankResult::Newest if single => "that file (resume_training: True)".to_owned(),
        r => rank_text(r),
    });
    let shown = |r: u64| o.ranks.as_ref().is_none_or(|rs| in_ranges(rs, r));
    emit!(s, "per rank:");
    if o.all {
        for (r, t) in texts.enumerate().filter(|(r, _)| shown(*r as u64)) {
            emit!(s, "  rank {r:>5}: {t}");
        }
        return;
    }
    let mut lines = 0;
    for ((lo, hi), pattern) in rank_runs(texts) {
        let (Some(first), Some(last)) = (
            (lo..=hi).find(|r| shown(*r)),
            (lo..=hi).rev().find(|r| shown(*r)),
        ) else {
            continue;
        };
        let label = if first == last {
            format!("rank {first}")
        } else {
            format!("ranks {first}–{last}")
        };
        lines += 1;
        if lines > 40 {
            emit!(
                s,
                "  … more groups (--all lists every rank, --ranks narrows)"
            );
            return;
        }
        emit!(s, "  {label}: {pattern}");
    }
}

/// Per root, for a job spread over several: which ranks it answers for, how its node decides,
/// and the answers its ranks get (the hazard of a non-shared job: nodes resuming from
/// different steps).
fn nodes(s: &mut String, a: &Analysis) {
    if a.nodes.is_empty() {
        return;
    }
    s.push('\n');
    emit!(
        s,
        "per node (each root as the node that writes it sees it):"
    );
    for n in &a.nodes {
        let ranks = crate::report::group::ranges_text(&crate::report::group::ranges(
            n.ranks.iter().copied(),
        ));
        let how = match &n.follows {
            Some(root) => format!("follows rank 0's decision, made from {root}"),
            None => node_branch(&n.branch),
        };
        emit!(
            s,
            "  {}: ranks {} ({} rank folders) — {how}",
            n.root,
            if ranks.is_empty() {
                "none".into()
            } else {
                ranks
            },
            n.rank_folders
        );
        for l in n.loads.iter().take(4) {
            let which = crate::report::group::ranges_text(&crate::report::group::ranges(
                l.ranks.iter().copied(),
            ));
            let who = if l.ranks.len() == 1 { "rank" } else { "ranks" };
            emit!(s, "      {who} {which}: {}", l.what);
        }
        if n.loads.len() > 4 {
            emit!(
                s,
                "      … {} more (resolve --json lists them)",
                n.loads.len() - 4
            );
        }
    }
}

/// How one node's resolution decided, in a few words.
fn node_branch(b: &Branch) -> String {
    match b {
        Branch::NotShared => "not shared: each rank takes its own newest file by mtime".into(),
        Branch::ByMeta => "by meta.json, decided by rank 0 on this node".into(),
        Branch::NoMeta => "no usable meta.json: newest-by-mtime names must agree".into(),
        Branch::ByTimestamp => "resume_by_last_timestamp_ckpt: each rank its newest file".into(),
        Branch::NotResuming { why } => format!("not resuming: {why}"),
        Branch::ExplicitName => "resume_training names the file".into(),
        Branch::HyperParam => "hyper_param.safetensors: each rank its newest file".into(),
        Branch::SingleFile => "load_checkpoint is a file".into(),
        Branch::TrainerError => "the trainer rejects the configuration".into(),
        Branch::Skipped => "not a folder on this node (missing, a file, a FIFO …)".into(),
        Branch::Unsupported { what } => format!("not modelled: {what}"),
    }
}

/// MindFormers' log lines, the same line for many ranks said once with a count.
fn log(s: &mut String, lines: &[String], all: bool) {
    if lines.is_empty() {
        return;
    }
    s.push('\n');
    emit!(s, "MindFormers would log:");
    if all {
        for l in lines {
            emit!(s, "  {l}");
        }
        return;
    }
    let mut groups: Vec<(String, usize, String)> = Vec::new();
    let mut index: std::collections::HashMap<String, usize> = Default::default();
    for l in lines {
        let key = rank_numbers_generalised(l);
        match index.get(&key) {
            Some(&i) => groups[i].1 += 1,
            None => {
                index.insert(key.clone(), groups.len());
                groups.push((key, 1, l.clone()));
            }
        }
    }
    for (key, n, first) in groups {
        if n == 1 {
            emit!(s, "  {first}");
        } else {
            emit!(s, "  {key}  (×{n}; e.g. {first})");
        }
    }
}

/// Every `rank_<digits>` written `rank_R`.
fn rank_numbers_generalised(l: &str) -> String {
    let mut out = String::with_capacity(l.len());
    let mut rest = l;
    while let Some(i) = rest.find("rank_") {
        out.push_str(&rest[..i + 5]);
        let after = &rest[i + 5..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 {
            out.push('R');
        }
        rest = &after[digits..];
    }
    out.push_str(rest);
    out
}

/// Warnings grouped by code: a count, the ranks, an example, the first few entries.
fn warnings(s: &mut String, a: &Analysis, o: &TextOptions) {
    s.push_str(&warnings_section(&a.warnings, o));
}

/// The warnings section (grouped by code; narrowed by `--ranks` and `--step`).
pub(super) fn warnings_section(
    ws: &[crate::resolve::warnings::Warning],
    o: &TextOptions,
) -> String {
    let mut out = String::new();
    let s = &mut out;
    let kept: Vec<_> = ws
        .iter()
        .filter(|w| match (&o.ranks, w.rank) {
            (Some(rs), Some(r)) => in_ranges(rs, r),
            _ => true,
        })
        .filter(|w| match (o.step, &w.path) {
            (Some(step), Some(p)) => step_of(p).is_none_or(|x| x == step),
            _ => true,
        })
        .cloned()
        .collect();
    if kept.is_empty() {
        return out;
    }
    s.push('\n');
    emit!(s, "warnings:");
    for g in group_warnings(&kept, o.all) {
        if g.count == 1 {
            emit!(s, "  [{}] {}", g.code, g.message);
            continue;
        }
        let on = if g.ranks.is_empty() {
            String::new()
        } else {
            format!(" on ranks {}", ranges_text(&g.ranks))
        };
        emit!(s, "  [{}] ×{}{on}; e.g. {}", g.code, g.count, g.message);
        for p in &g.paths {
            emit!(s, "      {p}");
        }
        if g.paths_omitted > 0 {
            emit!(s, "      … and {} more (--all lists them)", g.paths_omitted);
        }
    }
    out
}

/// `(epoch, step)` a path's file name is about (a shard or a `.tmp` of one).
fn step_of(path: &str) -> Option<(u64, u64)> {
    use crate::layout::mindformers::classify::classify;
    use crate::layout::mindformers::names::Fmt;
    let name = path.rsplit('/').next()?;
    let k = classify(name);
    let n = k.shard(Fmt::Ckpt).or_else(|| k.shard(Fmt::Safetensors))?;
    Some((n.epoch, n.step))
}

fn headline(a: &Analysis) -> String {
    let pr = &a.mindformers.per_rank;
    let errors = pr
        .iter()
        .filter(|r| matches!(r, RankResult::Error(_)))
        .count();
    if let Some(why) = &a.mindformers.unknown {
        return format!("?  ckptscope cannot tell: {why}");
    }
    if errors > 0 {
        return format!("FAIL on {errors} of {} ranks", pr.len());
    }
    if matches!(a.mindformers.branch, Branch::NotResuming { .. }) {
        return "not resume (start without the training state)".into();
    }
    match pr.first() {
        Some(RankResult::File(f)) => {
            format!("resume from {f} (rank 0; each rank its own rank_R file)")
        }
        Some(RankResult::Newest) if a.mindformers.branch == Branch::SingleFile => {
            "resume every rank from that file (resume_training: True)".into()
        }
        Some(RankResult::Newest) => "resume every rank from its own newest file by mtime".into(),
        Some(RankResult::Off) => "not resume (start without the training state)".into(),
        Some(RankResult::Error(e)) => e.to_string(),
        Some(RankResult::Unknown(why)) => format!("? ({why})"),
        None => "nothing: world size 0".into(),
    }
}

pub(crate) fn why(a: &Analysis) -> String {
    let mf = &a.mindformers;
    match &mf.branch {
        Branch::NotResuming { why } => why.clone(),
        Branch::SingleFile => "load_checkpoint is a single file: every rank loads it".into(),
        Branch::TrainerError => "the trainer rejects the configuration before resolving".into(),
        Branch::ExplicitName => "resume_training names a file: MindFormers substitutes each rank's id and checks nothing".into(),
        Branch::NotShared => "multi-node and the folder is not recognised as shared: each rank takes its newest file by mtime".into(),
        Branch::HyperParam => "safetensors with hyper_param.safetensors in the folder".into(),
        Branch::ByTimestamp => "resume_by_last_timestamp_ckpt is on: each rank takes its newest file by mtime".into(),
        Branch::ByMeta => match &mf.min_meta {
            Some(m) => format!(
                "minimal meta.json is rank {}'s ({}_{} in {}); the newest step at or below it present on all {} rank folders",
                m.rank,
                m.epoch,
                m.step,
                m.file,
                mf.rank_entries.unwrap_or(0)
            ),
            None => "by meta.json".into(),
        },
        Branch::NoMeta => "no usable meta.json on any rank: newest-by-mtime names must agree across ranks".into(),
        Branch::Skipped => "load_checkpoint is neither a folder nor a file".into(),
        Branch::Unsupported { what } => format!("not modelled by ckptscope: {what}"),
    }
}

fn shared_text(sd: &SharedDecision) -> String {
    match sd {
        SharedDecision::SingleNode {
            world_size,
            device_num_per_node,
        } => {
            format!(
                "single node (world size {world_size} ≤ DEVICE_NUM_PER_NODE {device_num_per_node})"
            )
        }
        SharedDecision::ModelArts => "ModelArts environment".into(),
        SharedDecision::Mount { mountpoint, fstype } => {
            format!("on a {fstype} mount at {mountpoint} (this machine's mount table)")
        }
        SharedDecision::SharedPaths { element } => format!("under SHARED_PATHS element {element}"),
        SharedDecision::NotShared => {
            "not shared (no single node, ModelArts, nfs/nfs4/dpc mount or SHARED_PATHS match)"
                .into()
        }
    }
}

fn rank_text(r: &RankResult) -> String {
    match r {
        RankResult::File(f) => f.clone(),
        RankResult::Newest => "newest file by mtime in its folder (resume_training: True)".into(),
        RankResult::Off => "not resuming (resume_training: False)".into(),
        RankResult::Error(e) => format!("{}: {}", e.class, e.first_line()),
        RankResult::Unknown(_) => "unknown (see above: ckptscope could not read an input)".into(),
    }
}

fn data_skip(s: &mut String, a: &Analysis) {
    let (Some(c), Some(d)) = (&a.context, &a.data_skip) else {
        return;
    };
    let opt = |v: Option<i64>| v.map_or("unknown".to_owned(), |v| v.to_string());
    s.push('\n');
    emit!(s, "resume context (rank_0/{}):", c.file);
    if let Some(ap) = &c.append {
        emit!(
            s,
            "  stored: epoch_num {}, step_num {}, global_step {}, loss_scale {}, global_batch_size {}",
            num(ap.epoch_num),
            num(ap.step_num),
            num(ap.global_step),
            num(ap.loss_scale),
            num(ap.global_batch_size)
        );
    }
    emit!(
        s,
        "  scale {}, initial step {}, initial epoch {}",
        d.scale.map_or("unknown".into(), |x| format!("{x}")),
        opt(d.initial_step),
        opt(d.initial_epoch)
    );
    emit!(
        s,
        "  data skip: {} batches; first printed step: {}",
        opt(d.skip_batches),
        opt(d.first_printed_step)
    );
    for n in &c.notes {
        emit!(s, "  note: {n}");
    }
}

fn num(n: Option<crate::model::Num>) -> String {
    match n {
        None => "absent".into(),
        Some(crate::model::Num::Int(i)) => i.to_string(),
        Some(crate::model::Num::Float(f)) => format!("{f}"),
    }
}

fn safe(s: &mut String, a: &Analysis) {
    let safe = &a.safe;
    s.push('\n');
    if a.mindformers.branch == Branch::SingleFile {
        emit!(
            s,
            "safe resume step: not applicable — load_checkpoint is one file, which every rank loads{}",
            if a.load.is_empty() { " (it is intact)" } else { " (see the warnings)" }
        );
        return;
    }
    match &safe.outcome.pick {
        None => {
            emit!(
                s,
                "safe resume step: NONE — no step is present and intact on every rank"
            );
        }
        Some(p) if p.same_as_mindformers => {
            emit!(s, "safe resume step: {}_{} — the same as MindFormers' pick; every rank's file is intact", p.epoch, p.step);
        }
        Some(p) => {
            emit!(
                s,
                "safe resume step: {}_{} (differs from MindFormers' pick)",
                p.epoch,
                p.step
            );
            for r in &p.reasons {
                emit!(s, "  why: {r}");
            }
            emit!(s, "  to resume there, set in the YAML:");
            emit!(s, "    load_checkpoint: {}", p.config.load_checkpoint);
            emit!(s, "    resume_training: \"{}\"", p.config.resume_training);
            if let Some(d) = &safe.data_skip {
                let o = |v: Option<i64>| v.map_or("unknown".to_owned(), |v| v.to_string());
                emit!(
                    s,
                    "  then: data skip {} batches, first printed step {}",
                    o(d.skip_batches),
                    o(d.first_printed_step)
                );
            }
        }
    }
    for k in safe.outcome.skipped.iter().take(5) {
        emit!(s, "  passed over {k}");
    }
    if safe.outcome.skipped.len() > 5 {
        emit!(
            s,
            "  … and {} more steps passed over",
            safe.outcome.skipped.len() - 5
        );
    }
}
