//! `ckptscope demo`: scenarios ([`scenario`]) played by a simulated trainer ([`trainer`]) into a
//! fresh folder, with MindFormers' answer after every save and the outcome each scenario
//! states checked at the end. Also the helpers the tests use to resolve a folder.

pub mod scenario;
pub mod trainer;

use crate::fsys::RealFs;
use crate::layout::mindformers::names::Fmt;
use crate::resolve::config::{EnvFacts, PathFacts, ResumeConfig};
use crate::resolve::context::RunSettings;
use crate::resolve::mindformers::RankResult;
use crate::resolve::{analyze, Analysis};
use crate::scan::scan;
use std::path::Path;

/// Resolve `root` as a single-node job with default settings (`.ckpt` files).
pub fn resolve_dir(root: &Path) -> Analysis {
    resolve_dir_as(root, Fmt::Ckpt)
}

/// Resolve `root` as a single-node job whose `load_ckpt_format` is `fmt`, world size = the
/// number of `rank_*` entries, output_dir = the root's parent.
pub fn resolve_dir_as(root: &Path, fmt: Fmt) -> Analysis {
    resolve_with(root, fmt, &Settings::default())
}

/// What a demo check may change about the job.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    /// Default: the number of `rank_*` entries.
    pub world_size: Option<u64>,
    /// Default: 8.
    pub device_num_per_node: Option<i64>,
    pub run: RunSettings,
}

/// Resolve `root` with these job settings (MindFormers, data skip, safe pick from the disk).
pub fn resolve_with(root: &Path, fmt: Fmt, settings: &Settings) -> Analysis {
    let root_s = root.to_string_lossy().into_owned();
    let tree = scan(&RealFs, &root_s);
    let n = tree.rank_entry_count();
    let cfg = ResumeConfig {
        load_checkpoint: Some(root_s.clone()),
        fmt,
        output_dir: root
            .parent()
            .map_or(".".into(), |p| p.to_string_lossy().into_owned()),
        ..Default::default()
    };
    let env = EnvFacts {
        world_size: settings.world_size.unwrap_or(n as u64),
        device_num_per_node: settings.device_num_per_node.unwrap_or(8),
        ..Default::default()
    };
    let paths = PathFacts {
        abspath: root_s.clone(),
        realpath: root_s,
        ..Default::default()
    };
    let read = |file: &str| crate::verify::read_append(&root.join("rank_0").join(file), fmt);
    let checker = crate::verify::disk_checker(root);
    analyze(
        &tree,
        &cfg,
        &env,
        &paths,
        &settings.run,
        &read,
        Some(&checker),
    )
}

/// One line: rank 0's pick, data skip and first printed step.
pub fn summary(a: &Analysis) -> String {
    let pick = match a.mindformers.per_rank.first() {
        Some(RankResult::File(f)) => f.clone(),
        Some(RankResult::Newest) => "newest by mtime".into(),
        Some(RankResult::Off) => "no resume".into(),
        Some(RankResult::Error(e)) => format!("{}: {}", e.class, e.first_line()),
        None => "-".into(),
    };
    let d = a.data_skip.as_ref();
    let o = |v: Option<i64>| v.map_or("?".into(), |v| v.to_string());
    format!(
        "resume from {pick}; data skip {}; first printed step {}",
        o(d.and_then(|d| d.skip_batches)),
        o(d.and_then(|d| d.first_printed_step))
    )
}
