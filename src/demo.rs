//! `ckptscope demo` (headless first version): the spec's seed walkthrough written live into a
//! fresh folder by the checkpoint writer, with MindFormers' answer printed after every save,
//! then the seed's fault (rank 3 loses its newest file) and the new answer.

use crate::fsys::RealFs;
use crate::layout::mindformers::names::Fmt;
use crate::resolve::config::{EnvFacts, PathFacts, ResumeConfig};
use crate::resolve::context::RunSettings;
use crate::resolve::mindformers::RankResult;
use crate::resolve::{analyze, Analysis};
use crate::scan::scan;
use crate::writer::run::{run, Launch};
use std::io::{self, Write};
use std::path::Path;

/// Resolve `root` as a single-node job with default settings (`.ckpt` files).
pub fn resolve_dir(root: &Path) -> Analysis {
    resolve_dir_as(root, Fmt::Ckpt)
}

/// Resolve `root` as a single-node job whose `load_ckpt_format` is `fmt`, world size = the
/// number of `rank_*` entries, output_dir = the root's parent.
pub fn resolve_dir_as(root: &Path, fmt: Fmt) -> Analysis {
    let root_s = root.to_string_lossy().into_owned();
    let tree = scan(&RealFs, &root_s);
    let n = tree.root_listing().map_or(0, |l| {
        l.entries()
            .iter()
            .filter(|e| e.name.starts_with("rank_"))
            .count()
    });
    let cfg = ResumeConfig {
        load_checkpoint: Some(root_s.clone()),
        fmt,
        output_dir: root
            .parent()
            .map_or(".".into(), |p| p.to_string_lossy().into_owned()),
        ..Default::default()
    };
    let env = EnvFacts {
        world_size: n as u64,
        device_num_per_node: 8,
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
        &RunSettings::default(),
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

/// Run the seed walkthrough into `out` (its `checkpoint/` sub-folder), narrating to `w`.
pub fn seed_walkthrough(out: &Path, w: &mut dyn Write) -> io::Result<(Analysis, Analysis)> {
    let root = out.join("checkpoint");
    std::fs::create_dir_all(&root)?;
    let launch = Launch::seed();
    writeln!(
        w,
        "seed walkthrough: {} ranks, sink size {}, save every {} steps, keep {}, writing into {}",
        launch.ranks,
        launch.sink_size,
        launch.save_steps,
        launch.keep_max,
        root.display()
    )?;
    let mut saves = 0;
    let mut err = Ok(());
    run(&root, &launch, |s| {
        saves += 1;
        let a = resolve_dir(&root);
        err = writeln!(
            w,
            "step {:>3}: saved {} on every rank → {}",
            s.step_num,
            s.file,
            summary(&a)
        );
        saves < 4 && err.is_ok()
    })?;
    err?;
    writeln!(w, "training killed after the fourth save.")?;
    let before = resolve_dir(&root);
    writeln!(w, "resume now: {}", summary(&before))?;
    let victim = root
        .join("rank_3")
        .join(format!("{}_rank_3-20_2.ckpt", launch.prefix));
    std::fs::remove_file(&victim)?;
    writeln!(w, "fault: {} deleted", victim.display())?;
    let after = resolve_dir(&root);
    writeln!(w, "resume now: {}", summary(&after))?;
    Ok((before, after))
}
