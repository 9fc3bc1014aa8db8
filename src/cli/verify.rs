//! `ckptscope verify PATH`: a tree, a rank folder or one file; every shard's verdict, a summary,
//! optional SHA-256 (against manifests, or written to a manifest outside the tree).

use super::fail;
use crate::fsys::Fs;
use crate::job::{Environment, JobFlags};
use crate::model::ShardResult;
use crate::model::{DirNode, Listing, RootState, Tree, Verdict};
use crate::report::terminal::safe;
use crate::scan::{scan_dir, scan_root};
use crate::session::Session;
use crate::verify::digest::{check_target, read_manifests, render_sums, write_manifest, Manifest};
use crate::verify::tree::priorities;
use crate::verify::tree::{plan, rows, TreeOptions};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    /// A checkpoint folder (holding rank_*), one rank folder, or one file.
    pub path: PathBuf,
    /// Further roots: the same checkpoint folder on the job's other nodes (not shared); their
    /// rank folders are verified where they are, in one report.
    #[arg(value_name = "MORE_ROOTS")]
    pub more_roots: Vec<std::ffi::OsString>,
    /// Also read every byte: CRC trailers and SHA-256 (checked against SHA256SUMS / *.sha256).
    #[arg(long)]
    pub hash: bool,
    /// Only the shards of one step, e.g. 20_2.
    #[arg(long, value_name = "E_S")]
    pub step: Option<String>,
    /// Print JSON instead of text (compact: one document).
    #[arg(long)]
    pub json: bool,
    /// One JSON object per line: every shard, then a summary line (streams at any size).
    #[arg(long, conflicts_with = "json")]
    pub ndjson: bool,
    /// List every shard, healthy ones included (the text report lists damaged shards, grouped).
    #[arg(long)]
    pub all: bool,
    /// Only the shards of these ranks, e.g. 3,900-910.
    #[arg(long, value_name = "LIST")]
    pub ranks: Option<String>,
    /// Write a SHA-256 manifest (sha256sum -c format) to FILE, which must be outside the tree.
    #[arg(long, value_name = "FILE")]
    pub write_manifest: Option<PathBuf>,
    /// Worker threads (default: one per core).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub jobs: usize,
    #[command(flatten)]
    pub job: JobFlags,
}

/// A rank folder or a single file, wrapped as a one-folder tree so the tree verifier can
/// handle it (no job around it: nothing is resolved). Returns the tree and the folder it is
/// read from.
fn single(fs: &dyn Fs, path: &Path, state: &RootState) -> (Tree, PathBuf) {
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let os_name = path
        .file_name()
        .unwrap_or(std::ffi::OsStr::new("."))
        .to_owned();
    let name = crate::model::Entry::named(&os_name, Err(crate::model::OsErr::errno(2)), None).name;
    // the one folder as the root's only entry: paths are built from its bytes as listed
    let as_root = |os: &std::ffi::OsStr, at: &Path| {
        let st = fs.stat(at).map_err(|e| crate::model::OsErr::from_io(&e));
        let only = crate::model::Entry::named(os, st, None);
        RootState::Dir(Listing::Entries(vec![only].into()))
    };
    let mut tree = Tree {
        root: parent.to_string_lossy().into_owned(),
        state: as_root(&os_name, path),
        dirs: Default::default(),
        root_files: Default::default(),
        verdicts: Default::default(),
        multi: None,
        host_paths: None,
    };
    if let RootState::Dir(_) = state {
        tree.dirs.insert(name.into(), scan_dir(fs, path).into());
        return (tree, parent.to_path_buf());
    }
    let listing = scan_dir(fs, parent).listing;
    let only: Vec<_> = listing
        .entries()
        .iter()
        .filter(|e| e.os_name() == os_name)
        .collect();
    let dir = parent.file_name().map_or_else(
        || ".".into(),
        |n| crate::model::Entry::named(n, Err(crate::model::OsErr::errno(2)), None).name,
    );
    let grand = parent
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    tree.root = grand.to_string_lossy().into_owned();
    tree.state = as_root(
        parent.file_name().unwrap_or(std::ffi::OsStr::new(".")),
        parent,
    );
    tree.dirs.insert(
        dir.into(),
        DirNode {
            stat: None,
            listing: crate::model::Listing::Entries(only.into()),
            meta: None,
            probed: Vec::new(),
            control: Vec::new(),
            memo: Default::default(),
            origin: 0,
        }
        .into(),
    );
    (tree, grand)
}

fn parse_step(s: &str) -> Option<(u64, u64)> {
    let (e, st) = s.split_once('_')?;
    Some((e.parse().ok()?, st.parse().ok()?))
}

pub fn verify_cmd(
    a: &VerifyArgs,
    mut fs: Arc<dyn Fs>,
    env: &Environment,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let step = match a.step.as_deref().map(|s| parse_step(s).ok_or(s)) {
        Some(Err(s)) => return fail(err, &format!("--step {s}: expected EPOCH_STEP, e.g. 20_2")),
        Some(Ok(s)) => Some(s),
        None => None,
    };
    let ranks = match a
        .ranks
        .as_deref()
        .map(|r| crate::report::group::parse_ranks(r).ok_or(r))
    {
        Some(Err(r)) => {
            return fail(
                err,
                &format!("--ranks {r}: expected ranks and ranges, e.g. 3,900-910"),
            )
        }
        Some(Ok(r)) => Some(r),
        None => None,
    };
    if a.jobs > MAX_JOBS {
        return fail(
            err,
            &format!(
                "--jobs {}: expected at most {MAX_JOBS} worker threads",
                a.jobs
            ),
        );
    }
    // the path as given, a name that is not UTF-8 shown escaped (and read as it is)
    let shown = crate::model::name_of(a.path.as_os_str());
    // a folder on another host (ssh://) is a checkpoint root, read there; one in object
    // storage (s3://) too, read through the job's filesystem once its context is gathered
    let in_store = a.path.to_str().is_some_and(crate::objstore::is_url);
    if in_store && a.write_manifest.is_some() {
        return fail(
            err,
            "--write-manifest: nothing is written next to an s3:// root; give --hash to check the shards against the SHA256SUMS already there",
        );
    }
    let remote = in_store
        || a.path
            .to_str()
            .and_then(crate::remote::SshRoot::parse)
            .is_some();
    let state = match remote {
        true => RootState::Missing,
        false => scan_root(&*fs, &a.path),
    };
    match &state {
        _ if remote => {}
        RootState::Missing => return fail(err, &format!("{shown}: no such file or directory; pass a checkpoint folder, a rank folder or a shard")),
        RootState::Error(e) => return fail(err, &format!("{shown}: {}; pass a checkpoint folder, a rank folder or a shard", e.text)),
        RootState::Other(k) => return fail(err, &format!("{shown} is {k}: not a checkpoint; pass a checkpoint folder, a rank folder or a shard")),
        _ => {}
    }
    let deep = a.hash || a.write_manifest.is_some();
    let opts = TreeOptions {
        deep,
        step,
        now: std::time::SystemTime::now(),
        workers: a.jobs,
    };
    let bar = progress_bar(a.json);
    let mut last_line = std::time::Instant::now();
    let mut progress = |done: usize, total: usize| match &bar {
        Some(b) => {
            b.set_length(total as u64);
            b.set_position(done as u64);
        }
        None if !a.json && (done == total || last_line.elapsed().as_secs() >= 5) => {
            let _ = writeln!(std::io::stderr(), "verified {done}/{total}");
            last_line = std::time::Instant::now();
        }
        None => {}
    };
    if let RootState::Dir(Listing::Error(e)) = &state {
        return fail(
            err,
            &format!(
                "{shown}: cannot list the folder ({}); run ckptscope as a user who can read it",
                e.text
            ),
        );
    }
    // a checkpoint root of either layout (rank_* or iteration_* folders)
    let is_tree = remote
        || matches!(&state, RootState::Dir(l) if l.entries().iter().any(|e| crate::scan::is_layout_dir(&e.name) && e.is_dir()));
    if a.write_manifest.is_some() && !a.more_roots.is_empty() {
        // one SHA256SUMS names files relative to one folder, and each root is a node's own
        return fail(
            err,
            "--write-manifest takes one checkpoint folder: write each node's manifest on its own root (`ckptscope verify ROOT --write-manifest ROOT/../SHA256SUMS`)",
        );
    }
    if !is_tree && !a.more_roots.is_empty() {
        return fail(
            err,
            &format!("{shown}: holds no rank_* or iteration_* folder; further roots go with checkpoint folders (pass each node's folder that holds rank_*)"),
        );
    }
    let (manifest, root, tree) = if is_tree {
        let ctx = match super::gather(&mut fs, env, a.path.as_os_str(), &a.more_roots, &a.job) {
            Ok(c) => c,
            Err(e) => return fail(err, &e.to_string()),
        };
        if ctx.has_remote() && a.write_manifest.is_some() {
            return fail(
                err,
                "--write-manifest writes a file next to the folder: run it on each host (`ckptscope verify ROOT --write-manifest ROOT/../SHA256SUMS` there); over ssh:// roots --hash checks against the hosts' manifests",
            );
        }
        let every = match deep {
            true => crate::session::Every::Hashed,
            false => crate::session::Every::Checked,
        };
        let mut session = match Session::open_job(fs.clone(), ctx, every) {
            Ok(s) => s.without_events(),
            Err(e) => return fail(err, &e),
        };
        let root = session.ctx().canonical.clone();
        if let Some(dest) = &a.write_manifest {
            if let Err(e) = check_target(&root, session.tree(), dest) {
                return fail(err, &e.to_string());
            }
        }
        // (a remote root's SHA256SUMS is on its host: read there by `verify --hash`)
        let manifest = match session.ctx().has_remote() {
            true => Default::default(),
            false => manifests(&*fs, &root, session.tree(), deep),
        };
        session.verify_all(&opts, &manifest, &mut progress);
        (manifest, root, session.into_tree())
    } else {
        let (mut tree, root) = single(&*fs, &a.path, &state);
        if let Some(dest) = &a.write_manifest {
            if let Err(e) = check_target(&protected(&a.path, &state), &tree, dest) {
                return fail(err, &e.to_string());
            }
        }
        let manifest = manifests(&*fs, &root, &tree, deep);
        let order = priorities(&tree, None);
        let priority = |d: &str, n: &str| order.of(d, n);
        let plan = plan(&root, &tree, &opts, &manifest, &priority);
        plan.run(&*fs, &opts, &manifest, &mut progress, &mut |d, e, st, c| {
            crate::session::record(&mut tree, d, e, st, c)
        });
        (manifest, root, tree)
    };
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    super::say_costs(&*fs, err);
    // every shard of the run, read back from the model one folder at a time
    let in_ranks = |r: Option<u64>| {
        ranks
            .as_ref()
            .is_none_or(|rs| r.is_some_and(|r| crate::report::group::in_ranges(rs, r)))
    };
    let shards = || -> Box<dyn Iterator<Item = ShardResult> + '_> {
        Box::new(rows(&tree, &opts).filter(|s| in_ranks(s.rank)))
    };
    if let Some(dest) = &a.write_manifest {
        let hashes: Vec<(PathBuf, String)> = rows(&tree, &opts)
            .filter_map(|s| {
                let path = tree.path_of(&root, &s.dir, Some(&s.file));
                Some((path, s.check.sha256.as_deref()?.clone()))
            })
            .collect();
        let guard = if is_tree {
            root.clone()
        } else {
            protected(&a.path, &state)
        };
        if let Err(e) = write_manifest(&guard, &tree, dest, &render_sums(&root, &hashes)) {
            return fail(err, &e.to_string());
        }
    }
    let mut folders = unreadable_folders(&tree);
    // a new-format tree: MindFormers' own folder checks, common.json and the tracker
    folders.extend(
        crate::layout::mindformers_new::checks::findings(&tree, &tree.root)
            .into_iter()
            .map(|f| Folder {
                rank: None,
                dir: f.dir,
                verdict: f.verdict,
                detail: f.detail,
            }),
    );
    folders.retain(|f| in_ranks(f.rank));
    // one shard verified: its manifest's other lines are not this command's business
    let mut missing = match is_tree || matches!(state, RootState::Dir(_)) {
        true => missing_from_tree(&root, &tree, &manifest, step),
        false => Vec::new(),
    };
    missing.retain(|m| in_ranks(m.rank));
    let tally = Tally::of(shards());
    if tally.total == 0 && folders.is_empty() && missing.is_empty() {
        if let Some(spec) = a.ranks.as_deref() {
            let have = crate::report::group::ranges(
                tree.dirs
                    .keys()
                    .filter_map(|d| crate::layout::rank_dir_number(d)),
            );
            return fail(
                err,
                &format!(
                    "{}: no shard of ranks {spec}; the tree has ranks {}",
                    crate::report::terminal::safe(&shown),
                    crate::report::group::ranges_text(&have)
                ),
            );
        }
        return fail(err, &nothing_found(&*fs, &a.path, a.step.as_deref()));
    }
    let report = Report {
        shards: &shards,
        tally: &tally,
        folders: &folders,
        missing: &missing,
        manifest: &manifest,
    };
    let written = if a.json || a.ndjson {
        write_json(&mut *out, &report, a.ndjson)
    } else {
        let text = crate::report::terminal::safe_text(&human(&report, a.all));
        out.write_all(text.as_bytes())
    };
    if let Err(e) = written {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            return fail(err, &format!("cannot write the report: {e}"));
        }
    }
    if let Some(msg) = crate::resolve::unreadable_input(&tree) {
        return fail(err, &msg);
    }
    // a rank entry that is not a folder, or a new-format folder or tracker MindFormers rejects
    // (1); a folder of either layout that could not be listed leaves the answer open (2)
    let unread = |f: &&Folder| f.verdict == Verdict::Unreadable.name();
    let broken_rank = folders
        .iter()
        .filter(|f| !unread(f))
        .any(|f| f.verdict == "not_a_folder" || !f.dir.starts_with("rank_"));
    let code = match (
        broken_rank || !missing.is_empty() || tally.damaged > 0,
        folders.iter().any(|f| unread(&f)),
    ) {
        (true, _) => 1,
        (false, true) => 2,
        (false, false) => 0,
    };
    crate::session::dispose(tree);
    code
}

/// Every shard of a report, in order: each call walks the model afresh (a report is read in
/// a few passes rather than held as a list).
type Rows<'a> = dyn Fn() -> Box<dyn Iterator<Item = ShardResult> + 'a> + 'a;

/// Counts of a report's shards, per verdict.
struct Tally {
    total: usize,
    damaged: usize,
    by_verdict: std::collections::BTreeMap<Verdict, usize>,
}

impl Tally {
    fn of(rows: impl Iterator<Item = ShardResult>) -> Tally {
        let mut t = Tally {
            total: 0,
            damaged: 0,
            by_verdict: Default::default(),
        };
        for r in rows {
            t.total += 1;
            t.damaged += usize::from(r.check.verdict.is_damaged());
            *t.by_verdict.entry(r.check.verdict).or_default() += 1;
        }
        t
    }

    /// By verdict name (the JSON summary's `by_verdict`).
    fn named(&self) -> std::collections::BTreeMap<&'static str, usize> {
        self.by_verdict
            .iter()
            .map(|(v, n)| (v.name(), *n))
            .collect()
    }
}

/// What `verify` reports.
struct Report<'a> {
    shards: &'a Rows<'a>,
    tally: &'a Tally,
    folders: &'a [Folder],
    /// Files a manifest names that are not in the tree (`sha256sum -c` fails on them too).
    missing: &'a [Missing],
    manifest: &'a Manifest,
}

/// A file a manifest names that the tree does not hold.
#[derive(serde::Serialize)]
struct Missing {
    rank: Option<u64>,
    path: String,
    verdict: &'static str,
    detail: String,
}

/// The manifest's files that no verified shard is (sorted by path).
fn missing_from_tree(
    root: &Path,
    tree: &Tree,
    manifest: &Manifest,
    step: Option<(u64, u64)>,
) -> Vec<Missing> {
    if manifest.expected.is_empty() {
        return Vec::new();
    }
    // present: listed in the tree (whether or not this run verified it)
    let present: std::collections::HashSet<PathBuf> = tree
        .dirs
        .iter()
        .flat_map(|(d, n)| {
            n.listing
                .entries()
                .iter()
                .map(move |e| tree.path_of(root, d, Some(&e.name)))
        })
        .collect();
    let of_step = |p: &Path| {
        step.is_none_or(|s| {
            p.file_name()
                .and_then(|n| n.to_str())
                .and_then(crate::layout::mindformers::names::parse_ckpt_name)
                .is_some_and(|n| (n.epoch, n.step) == s)
        })
    };
    let mut out: Vec<Missing> = manifest
        .expected
        .keys()
        .filter(|p| !present.contains(*p) && of_step(p))
        .map(|p| {
            let rel = p.strip_prefix(root).unwrap_or(p);
            let rank = rel
                .components()
                .next()
                .and_then(|c| c.as_os_str().to_str())
                .and_then(crate::layout::rank_dir_number);
            Missing {
                rank,
                path: rel.display().to_string(),
                verdict: "missing",
                detail: "named in a manifest but not in the tree: sha256sum -c fails on it too"
                    .into(),
            }
        })
        .collect();
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// The folder a manifest must stay out of when `path` is a rank folder or a shard: the
/// checkpoint folder it belongs to (the parent of `rank_N/`), else the folder itself.
fn protected(path: &Path, state: &RootState) -> PathBuf {
    let dir = match state {
        RootState::File(_) => path.parent().unwrap_or(Path::new(".")),
        _ => path,
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let canon = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let is_rank = canon
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(crate::layout::rank_dir_number)
        .is_some();
    match canon.parent() {
        Some(p) if is_rank => p.to_path_buf(),
        _ => canon,
    }
}

/// A folder-level finding: a rank folder that could not be listed (its shards could not be
/// verified), or a new-format folder or tracker that MindFormers' own checks reject.
#[derive(serde::Serialize)]
struct Folder {
    rank: Option<u64>,
    dir: String,
    verdict: &'static str,
    detail: String,
}

fn unreadable_folders(tree: &Tree) -> Vec<Folder> {
    tree.dirs
        .iter()
        .filter_map(|(dir, node)| match &node.listing {
            Listing::Error(e) => Some(Folder {
                rank: crate::layout::rank_dir_number(dir),
                dir: dir.clone(),
                verdict: Verdict::Unreadable.name(),
                detail: format!(
                    "cannot list the folder ({}): its shards could not be verified; run ckptscope as a user who can read it",
                    e.text
                ),
            }),
            Listing::Entries(_) => None,
        })
        .chain(not_folders(tree))
        .collect()
}

/// `rank_N` entries of the root that are not folders (a file, a dangling or looping link):
/// MindFormers counts them as rank folders and that rank fails; no shard of it can be checked.
fn not_folders(tree: &Tree) -> impl Iterator<Item = Folder> + '_ {
    tree.root_listing()
        .map(|l| l.entries())
        .unwrap_or_default()
        .iter()
        .filter(|e| crate::layout::rank_dir_number(&e.name).is_some() && !e.is_dir())
        .map(|e| {
            let what = match (&e.lstat, e.stat()) {
                (Ok(l), Err(err)) if l.kind == crate::model::FileKind::Symlink => {
                    format!("a symbolic link that leads to no folder ({})", err.text)
                }
                (_, Ok(st)) => format!("{}, not a folder", st.kind),
                (_, Err(err)) => format!("cannot be examined ({})", err.text),
            };
            Folder {
                rank: crate::layout::rank_dir_number(&e.name),
                dir: e.name.to_string(),
                verdict: "not_a_folder",
                detail: format!("{what}: MindFormers counts it as a rank folder, and that rank fails to load; no shard of it can be verified"),
            }
        })
}

/// Why `verify` found nothing, with the likely fix.
fn nothing_found(fs: &dyn Fs, path: &Path, step: Option<&str>) -> String {
    let shown = path.display();
    if let Some(s) = step {
        return format!("{shown}: no shard of step {s} (or .tmp file for it); check the step with `ckptscope grid`");
    }
    let is_dir = fs
        .stat(path)
        .is_ok_and(|s| s.kind == crate::model::FileKind::Dir);
    if !is_dir {
        return format!("{shown}: not named *.ckpt or *.safetensors, so it is not a shard (MindSpore loads only those names); rename it, or pass the folder holding rank_0/ …");
    }
    let sub = path.join("checkpoint");
    let holds_ranks = |p: &Path| {
        fs.read_dir(p).is_ok_and(|es| {
            es.iter()
                .any(|e| e.name.to_string_lossy().starts_with("rank_"))
        })
    };
    if holds_ranks(&sub) {
        return format!(
            "no shards found under {shown}; did you mean {}?",
            sub.display()
        );
    }
    format!("no shards found under {shown}: pass the checkpoint folder that holds rank_0/ … (by default <output_dir>/checkpoint), a rank folder, or a shard")
}

/// The most worker threads `--jobs` accepts (more only thrash the disk).
const MAX_JOBS: usize = 1024;

/// The SHA-256 manifests beside the tree and its folders (read only for a deep check).
fn manifests(fs: &dyn Fs, root: &Path, tree: &Tree, deep: bool) -> Manifest {
    if !deep {
        return Manifest::default();
    }
    read_manifests(fs, root, tree)
}

fn progress_bar(json: bool) -> Option<ProgressBar> {
    if json || !std::io::stderr().is_terminal() {
        return None;
    }
    let b = ProgressBar::new(0);
    b.set_style(
        ProgressStyle::with_template("{spinner} verifying {pos}/{len} shards [{bar:30}] {eta}")
            .ok()?
            .progress_chars("=> "),
    );
    Some(b)
}

/// Compact JSON (`{"shards": […], …}`), or NDJSON: one shard per line, then the folders and
/// a summary line — a 327,680-shard tree streams instead of becoming 3 M pretty-printed lines.
/// The JSON report, serialized straight to `out` (a 300,000-shard report is never built as a
/// value in memory): one compact document, or with `ndjson` one object per line.
fn write_json(out: &mut dyn Write, r: &Report, ndjson: bool) -> std::io::Result<()> {
    #[derive(serde::Serialize)]
    struct Summary<'a> {
        total: usize,
        damaged: usize,
        by_verdict: std::collections::BTreeMap<&'static str, usize>,
        unreadable_folders: usize,
        missing: usize,
        manifests: &'a [PathBuf],
        manifest_problems: &'a [String],
    }
    /// The shards as a JSON array, serialized as the model is walked.
    struct Shards<'a>(&'a Rows<'a>);
    impl serde::Serialize for Shards<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_seq((self.0)())
        }
    }
    #[derive(serde::Serialize)]
    struct Doc<'a> {
        shards: Shards<'a>,
        unreadable_folders: &'a [Folder],
        missing: &'a [Missing],
        summary: Summary<'a>,
    }
    #[derive(serde::Serialize)]
    #[serde(tag = "kind", rename_all = "snake_case")]
    enum Line<'a> {
        Shard { shard: &'a ShardResult },
        UnreadableFolder { folder: &'a Folder },
        Missing { missing: &'a Missing },
        Summary { summary: &'a Summary<'a> },
    }
    let summary = Summary {
        total: r.tally.total,
        damaged: r.tally.damaged,
        by_verdict: r.tally.named(),
        unreadable_folders: r.folders.len(),
        missing: r.missing.len(),
        manifests: &r.manifest.sources,
        manifest_problems: &r.manifest.problems,
    };
    let mut w = std::io::BufWriter::with_capacity(1 << 16, out);
    if ndjson {
        let mut line = |l: Line| -> std::io::Result<()> {
            serde_json::to_writer(&mut w, &l)?;
            w.write_all(b"\n")
        };
        (r.shards)().try_for_each(|shard| line(Line::Shard { shard: &shard }))?;
        r.folders
            .iter()
            .try_for_each(|folder| line(Line::UnreadableFolder { folder }))?;
        r.missing
            .iter()
            .try_for_each(|missing| line(Line::Missing { missing }))?;
        line(Line::Summary { summary: &summary })?;
    } else {
        let doc = Doc {
            shards: Shards(r.shards),
            unreadable_folders: r.folders,
            missing: r.missing,
            summary,
        };
        serde_json::to_writer(&mut w, &doc)?;
        w.write_all(b"\n")?;
    }
    w.flush()
}

/// Shards shown per verdict group unless `--all`.
const SHOWN_PER_VERDICT: usize = 20;

fn human(r: &Report, all: bool) -> String {
    let (folders, manifest) = (r.folders, r.manifest);
    let mut s = String::new();
    // a rank folder by its rank; a new-format folder by its name (its shards name the rank)
    let at = |rank: Option<u64>, dir: &str| match rank {
        Some(n) if dir.starts_with("rank_") || dir.is_empty() => format!("rank {n}"),
        _ => safe(dir).into_owned(),
    };
    for f in folders {
        s.push_str(&format!(
            "{:<11} {:<16} {}/  {}\n",
            at(f.rank, &f.dir),
            f.verdict,
            safe(&f.dir),
            f.detail
        ));
    }
    let line = |s: &mut String, r: &ShardResult| {
        s.push_str(&format!(
            "{:<11} {:<16} {}  {}\n",
            at(r.rank, &r.dir),
            r.check.verdict.name(),
            safe(&r.file),
            safe(&r.check.detail)
        ));
        if let Some(h) = &r.check.sha256 {
            s.push_str(&format!("{:<28} sha256 {h}\n", ""));
        }
    };
    if all {
        for r in (r.shards)() {
            line(&mut s, &r);
        }
    } else {
        // healthy shards are counted, not listed; each other verdict is a group: its ranks,
        // the first shards, and how many more (one pass, keeping only those first shards)
        let mut groups: std::collections::BTreeMap<Verdict, (Vec<u64>, Vec<ShardResult>)> =
            Default::default();
        for row in (r.shards)().filter(|r| r.check.verdict != Verdict::Ok) {
            let (ranks, first) = groups.entry(row.check.verdict).or_default();
            ranks.extend(row.rank);
            if first.len() < SHOWN_PER_VERDICT {
                first.push(row);
            }
        }
        for (v, (ranks, first)) in groups {
            let n = r.tally.by_verdict.get(&v).copied().unwrap_or_default();
            let ranks = crate::report::group::ranges(ranks);
            s.push_str(&format!(
                "{} ×{}{}:\n",
                v.name(),
                n,
                if ranks.is_empty() {
                    String::new()
                } else {
                    format!(" on ranks {}", crate::report::group::ranges_text(&ranks))
                }
            ));
            for r in &first {
                line(&mut s, r);
            }
            if n > SHOWN_PER_VERDICT {
                s.push_str(&format!(
                    "  … and {} more (--all lists every shard)\n",
                    n - SHOWN_PER_VERDICT
                ));
            }
        }
    }
    let counts: Vec<String> = r
        .tally
        .named()
        .iter()
        .map(|(k, v)| format!("{v} {k}"))
        .collect();
    // rank folders that could not be listed, and new-format folders or trackers rejected
    let unlisted = folders
        .iter()
        .filter(|f| f.verdict == Verdict::Unreadable.name())
        .count();
    let rejected = folders.len() - unlisted;
    let mut tail = String::new();
    if unlisted > 0 {
        tail.push_str(&format!("; {unlisted} folder(s) could not be checked"));
    }
    if rejected > 0 {
        tail.push_str(&format!(
            "; {rejected} folder or tracker problem(s) (listed above)"
        ));
    }
    s.push_str(&format!(
        "\n{} shards: {}{tail}\n",
        r.tally.total,
        counts.join(", "),
    ));
    if !r.missing.is_empty() {
        s.push_str(&format!(
            "missing ×{}: named in a manifest but not in the tree\n",
            r.missing.len()
        ));
        let shown = if all {
            r.missing.len()
        } else {
            SHOWN_PER_VERDICT
        };
        for m in r.missing.iter().take(shown) {
            s.push_str(&format!("  {}\n", safe(&m.path)));
        }
        if r.missing.len() > shown {
            s.push_str(&format!(
                "  … and {} more (--all lists them)\n",
                r.missing.len() - shown
            ));
        }
    }
    for p in &manifest.problems {
        s.push_str(&format!("manifest problem: {}\n", safe(p)));
    }
    for m in &manifest.sources {
        s.push_str(&format!(
            "checked against {}\n",
            safe(&m.display().to_string())
        ));
    }
    s
}
