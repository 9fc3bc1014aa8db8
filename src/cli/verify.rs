//! `ckptscope verify PATH`: a tree, a rank folder or one file; every shard's verdict, a summary,
//! optional SHA-256 (against manifests, or written to a manifest outside the tree).

use super::fail;
use crate::fsys::RealFs;
use crate::model::{DirNode, RootState, Tree};
use crate::scan::{scan, scan_dir};
use crate::verify::digest::{check_outside, read_manifests, render_sums, Manifest};
use crate::verify::tree::{summary, verify_tree, ShardReport, TreeOptions};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    /// A checkpoint folder (holding rank_*), one rank folder, or one file.
    pub path: PathBuf,
    /// Also read every byte: CRC trailers and SHA-256 (checked against SHA256SUMS / *.sha256).
    #[arg(long)]
    pub hash: bool,
    /// Only the shards of one step, e.g. 20_2.
    #[arg(long, value_name = "E_S")]
    pub step: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Write a SHA-256 manifest (sha256sum -c format) to FILE, which must be outside the tree.
    #[arg(long, value_name = "FILE")]
    pub write_manifest: Option<PathBuf>,
    /// Worker threads (default: one per core).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub jobs: usize,
}

/// What PATH is, as a tree to verify (a single folder or file becomes a one-folder tree).
fn target(path: &Path) -> Result<Tree, String> {
    let p = path.to_string_lossy().into_owned();
    let tree = scan(&RealFs, &p);
    match &tree.state {
        RootState::Missing => Err(format!("{p}: no such file or directory")),
        RootState::Error(e) => Err(format!("{p}: {}", e.text)),
        RootState::Other(k) => Err(format!("{p} is a {k:?}: not a checkpoint")),
        RootState::File(_) | RootState::Dir(_) if !tree.dirs.is_empty() => Ok(tree),
        RootState::File(_) | RootState::Dir(_) => Ok(single(path, &tree.state)),
    }
}

/// A rank folder or a single file, wrapped so the tree verifier can handle it.
fn single(path: &Path, state: &RootState) -> Tree {
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map_or_else(|| ".".into(), |n| n.to_string_lossy().into_owned());
    let mut tree = Tree {
        root: parent.to_string_lossy().into_owned(),
        state: state.clone(),
        dirs: Default::default(),
        verdicts: Default::default(),
    };
    match state {
        RootState::Dir(_) => {
            tree.dirs.insert(name, scan_dir(&RealFs, path));
        }
        _ => {
            let listing = crate::scan::scan_dir(&RealFs, parent).listing;
            let only: Vec<_> = listing
                .entries()
                .iter()
                .filter(|e| e.name == name)
                .cloned()
                .collect();
            let dir = parent
                .file_name()
                .map_or_else(|| ".".into(), |n| n.to_string_lossy().into_owned());
            tree.root = parent
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."))
                .to_string_lossy()
                .into_owned();
            tree.dirs.insert(
                dir,
                DirNode {
                    stat: None,
                    listing: crate::model::Listing::Entries(only),
                    meta: None,
                },
            );
        }
    }
    tree
}

/// MindFormers' pick with default settings (single node, by meta.json): verified first.
fn mindformers_view(tree: &Tree) -> crate::resolve::mindformers::MfResolution {
    use crate::resolve::config::{EnvFacts, PathFacts, ResumeConfig};
    let n = tree.dirs.len() as u64;
    let fmt = if tree
        .dirs
        .values()
        .flat_map(|d| d.listing.entries())
        .any(|e| e.name.ends_with(".safetensors"))
    {
        crate::layout::mindformers::names::Fmt::Safetensors
    } else {
        crate::layout::mindformers::names::Fmt::Ckpt
    };
    let config = ResumeConfig {
        load_checkpoint: Some(tree.root.clone()),
        fmt,
        ..Default::default()
    };
    let env = EnvFacts {
        world_size: n,
        device_num_per_node: n.max(8) as i64,
        ..Default::default()
    };
    let paths = PathFacts {
        abspath: tree.root.clone(),
        realpath: tree.root.clone(),
        ..Default::default()
    };
    crate::resolve::mindformers::resolve(&crate::resolve::mindformers::Inputs {
        tree,
        config: &config,
        env: &env,
        paths: &paths,
    })
}

fn parse_step(s: &str) -> Option<(u64, u64)> {
    let (e, st) = s.split_once('_')?;
    Some((e.parse().ok()?, st.parse().ok()?))
}

pub fn verify_cmd(a: &VerifyArgs, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let step = match a.step.as_deref().map(|s| parse_step(s).ok_or(s)) {
        Some(Err(s)) => return fail(err, &format!("--step {s}: expected EPOCH_STEP, e.g. 20_2")),
        Some(Ok(s)) => Some(s),
        None => None,
    };
    let tree = match target(&a.path) {
        Ok(t) => t,
        Err(m) => {
            return fail(
                err,
                &format!("{m}; pass a checkpoint folder, a rank folder or a shard"),
            )
        }
    };
    if let Some(dest) = &a.write_manifest {
        if let Err(m) = check_outside(&a.path, dest) {
            return fail(err, &m);
        }
    }
    let root = PathBuf::from(&tree.root);
    let dirs: Vec<PathBuf> = tree.dirs.keys().map(|d| root.join(d)).collect();
    let manifest = if a.hash || a.write_manifest.is_some() {
        read_manifests(&root, &dirs)
    } else {
        Manifest::default()
    };
    let opts = TreeOptions {
        deep: a.hash || a.write_manifest.is_some(),
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
    let order = crate::verify::tree::priorities(&tree, Some(&mindformers_view(&tree)));
    let priority = |d: &str, n: &str| {
        order
            .get(&(d.to_owned(), n.to_owned()))
            .copied()
            .unwrap_or(u32::MAX)
    };
    let shards = verify_tree(&tree, &opts, &manifest, &priority, &mut progress);
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    if let Some(dest) = &a.write_manifest {
        let hashes: Vec<(PathBuf, String)> = shards
            .iter()
            .filter_map(|s| Some((root.join(&s.dir).join(&s.file), s.sha256.clone()?)))
            .collect();
        if let Err(e) = std::fs::write(dest, render_sums(&root, &hashes)) {
            return fail(err, &format!("{}: {e}", dest.display()));
        }
    }
    let text = if a.json {
        json_text(&shards, &manifest)
    } else {
        human(&shards, &manifest)
    };
    if out.write_all(text.as_bytes()).is_err() {
        return 2;
    }
    i32::from(shards.iter().any(|s| s.verdict.is_damaged()))
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

fn json_text(shards: &[ShardReport], manifest: &Manifest) -> String {
    let counts = summary(shards);
    let damaged = shards.iter().filter(|s| s.verdict.is_damaged()).count();
    let doc = json!({
        "shards": shards,
        "summary": {"total": shards.len(), "damaged": damaged, "by_verdict": counts, "manifests": manifest.sources},
    });
    serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n"
}

fn human(shards: &[ShardReport], manifest: &Manifest) -> String {
    let mut s = String::new();
    for r in shards {
        let rank = r
            .rank
            .map_or_else(|| r.dir.clone(), |n| format!("rank {n}"));
        s.push_str(&format!(
            "{:<11} {:<16} {}  {}\n",
            rank,
            r.verdict.name(),
            r.file,
            r.detail
        ));
        if let Some(h) = &r.sha256 {
            s.push_str(&format!("{:<28} sha256 {h}\n", ""));
        }
    }
    let counts: Vec<String> = summary(shards)
        .iter()
        .map(|(k, v)| format!("{v} {k}"))
        .collect();
    s.push_str(&format!(
        "\n{} shards: {}\n",
        shards.len(),
        counts.join(", ")
    ));
    for m in &manifest.sources {
        s.push_str(&format!("checked against {}\n", m.display()));
    }
    s
}
