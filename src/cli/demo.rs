//! `ckptscope demo [SCENARIO]`: a simulated trainer writes real checkpoints into a fresh folder
//! (or `--out DIR`, empty or absent) while the TUI watches it with a caption narrating each
//! event; `--no-tui` / `--ndjson` print the timeline and the resolver's answers instead, then
//! check the outcome the scenario states. The demo never writes anywhere else; Ctrl-c stops it
//! and removes the temporary folder unless `--keep`.

use super::fail;
use crate::demo::scenario::{load, BUILTIN};
use crate::demo::trainer::Play;
use serde_json::json;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// A scenario name (see --list) or a scenario .toml file.
    #[arg(default_value = "fault-recovery")]
    pub scenario: String,
    /// List the scenarios.
    #[arg(long)]
    pub list: bool,
    /// Print the timeline and the resolver's answers instead of opening the TUI.
    #[arg(long)]
    pub no_tui: bool,
    /// Like --no-tui, one JSON object per line.
    #[arg(long)]
    pub ndjson: bool,
    /// Time compression: 1 = a quarter second per sink, 10 = ten times faster.
    #[arg(long, default_value_t = 1.0)]
    pub speed: f64,
    /// Write into this folder (must be empty or absent) instead of a temporary one.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Keep the written files (a temporary folder is removed otherwise).
    #[arg(long)]
    pub keep: bool,
    /// In the TUI, go on after SECS seconds per beat instead of waiting for Space.
    #[arg(long, value_name = "SECS", num_args = 0..=1, default_missing_value = "4")]
    pub auto: Option<f64>,
    #[command(flatten)]
    pub ui: super::tui::UiArgs,
}

pub fn demo_cmd(
    a: &DemoArgs,
    env: &crate::job::Environment,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    if a.list {
        for (name, text) in BUILTIN {
            let desc = crate::demo::scenario::parse(text)
                .map(|s| s.outcome)
                .unwrap_or_default();
            let _ = writeln!(out, "{name:<22} {desc}");
        }
        return 0;
    }
    let sc = match load(&a.scenario) {
        Ok(s) => s,
        Err(e) => return fail(err, &e.to_string()),
    };
    if !(a.speed.is_finite() && (0.001..=1e6).contains(&a.speed)) {
        return fail(
            err,
            &format!(
                "--speed {}: expected a number from 0.001 (slower) to 1000000 (faster)",
                a.speed
            ),
        );
    }
    if let Some(secs) = a
        .auto
        .filter(|s| !(s.is_finite() && (0.0..=3600.0).contains(s)))
    {
        return fail(
            err,
            &format!("--auto {secs}: expected seconds per beat, from 0 to 3600"),
        );
    }
    let (dir, guard) = match folder(a) {
        Ok(x) => x,
        Err(m) => return fail(err, &m),
    };
    let stop = Arc::new(AtomicBool::new(false));
    let pace = Duration::from_secs_f64(0.25 / a.speed);
    let headless = a.no_tui || a.ndjson || !std::io::stdout().is_terminal();
    let code = if headless {
        headless_run(a, &sc, &dir, pace, &stop, out, err)
    } else {
        tui_run(a, env, &sc, &dir, pace, &stop, err)
    };
    if a.keep || a.out.is_some() {
        let line = format!("files kept in {}", dir.display());
        let _ = if headless {
            writeln!(out, "{line}")
        } else {
            writeln!(err, "{line}")
        };
        if let Some(g) = guard {
            let _ = g.keep();
        }
    }
    code
}

/// The demo's folder: `--out` (empty or absent) or a fresh temporary one (removed on drop).
fn folder(a: &DemoArgs) -> Result<(PathBuf, Option<tempfile::TempDir>), String> {
    match &a.out {
        Some(dir) => {
            let shown = dir.display();
            match std::fs::symlink_metadata(dir) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(format!("--out {shown}: {e}; choose a new or empty folder")),
                Ok(m) if !m.is_dir() => {
                    let kind = crate::fsys::stat_of(&m).kind;
                    return Err(format!("--out {shown} is {kind}, not a folder; the demo writes only into a new or empty folder"));
                }
                Ok(_) => {
                    let empty = std::fs::read_dir(dir).map(|mut d| d.next().is_none());
                    match empty {
                        Ok(true) => {}
                        Ok(false) => return Err(format!("--out {shown}: not empty; the demo writes only into a new or empty folder")),
                        Err(e) => return Err(format!("--out {shown}: cannot list it ({e}); choose a new or empty folder")),
                    }
                }
            }
            // absolute: the demo's job context reads the tree from the folder's parent
            let dir = std::path::absolute(dir)
                .map_err(|e| format!("--out {shown}: {e}; choose a new or empty folder"))?;
            Ok((dir, None))
        }
        None => {
            let t = tempfile::Builder::new()
                .prefix("ckptscope-demo-")
                .tempdir()
                .map_err(|e| format!("cannot create a temporary folder: {e}"))?;
            Ok((t.path().to_path_buf(), Some(t)))
        }
    }
}

fn headless_run(
    a: &DemoArgs,
    sc: &crate::demo::scenario::Scenario,
    dir: &std::path::Path,
    pace: Duration,
    stop: &Arc<AtomicBool>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let flag = stop.clone();
    let _ = ctrlc::set_handler(move || flag.store(true, Ordering::Relaxed));
    let ts = || {
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64())
    };
    let write_error: std::cell::RefCell<Option<std::io::Error>> = Default::default();
    let mut say = |line: &str| {
        let text = if a.ndjson {
            json!({"ts": ts(), "kind": "narration", "text": line.trim()}).to_string()
        } else {
            // one narration line is one line: a newline in a scenario's text or a path is
            // escaped like any other control character
            crate::report::terminal::safe(line).into_owned()
        };
        let written = writeln!(out, "{text}").and_then(|_| out.flush());
        if let Err(e) = written {
            // nobody reads the narration any more (or it cannot be stored): stop the trainer
            stop.store(true, Ordering::Relaxed);
            write_error.borrow_mut().get_or_insert(e);
        }
    };
    say(&format!("scenario {}: {}", sc.name, sc.description));
    say(&format!(
        "writing into {}",
        dir.join("checkpoint").display()
    ));
    let play = Play {
        root: dir.join("checkpoint"),
        scenario: sc,
        pace,
        stop,
        presenter: None,
    };
    if let Err(e) = play.play(&mut say) {
        say(&format!("the trainer failed: {e}"));
        return 2;
    }
    if let Some(e) = write_error.take() {
        return match e.kind() {
            std::io::ErrorKind::BrokenPipe => 0,
            _ => super::fail(
                err,
                &format!("cannot write the narration: {e}; free space or choose another output"),
            ),
        };
    }
    if stop.load(Ordering::Relaxed) {
        say("stopped (Ctrl-c)");
        return 130;
    }
    say(&format!("outcome: {}", sc.outcome));
    let mut all = true;
    for (label, ok, got) in play.check() {
        all &= ok;
        if a.ndjson {
            let _ = writeln!(
                out,
                "{}",
                json!({"ts": ts(), "kind": "check", "label": label, "ok": ok, "got": got})
            );
        } else {
            let _ = writeln!(
                out,
                "{} {}: {}",
                if ok { "✓" } else { "✗" },
                crate::report::terminal::safe(&label),
                crate::report::terminal::safe(&got)
            );
        }
    }
    i32::from(!all)
}

#[allow(clippy::too_many_arguments)]
fn tui_run(
    a: &DemoArgs,
    env: &crate::job::Environment,
    sc: &crate::demo::scenario::Scenario,
    dir: &std::path::Path,
    pace: Duration,
    stop: &Arc<AtomicBool>,
    err: &mut dyn Write,
) -> i32 {
    let root = dir.join("checkpoint");
    if let Err(e) = std::fs::create_dir_all(&root) {
        return fail(err, &format!("{}: {e}", root.display()));
    }
    let play = Play {
        root: root.clone(),
        scenario: sc,
        pace,
        stop,
        presenter: None,
    };
    // the very context the headless demo and its checks use
    let (ctx, cfg) = match crate::demo::job_context(&root, &play.flags())
        .map_err(|e| e.to_string())
        .and_then(|ctx| {
            let fs: std::sync::Arc<dyn crate::fsys::Fs> = std::sync::Arc::new(crate::fsys::RealFs);
            let cfg = crate::watch::WatchConfig::for_job(&ctx, fs, Some(2.0), false)
                .map_err(|e| e.to_string())?;
            Ok((ctx, cfg))
        }) {
        Ok(x) => x,
        Err(m) => return fail(err, &m),
    };
    // presenter mode: the trainer holds after each beat until Space (or --auto's dwell)
    let (tx, cues) = crossbeam_channel::unbounded();
    let (next_tx, next_rx) = crossbeam_channel::unbounded();
    let presenter = crate::demo::Presenter {
        next: next_rx,
        dwell: a
            .auto
            .map(|s| Duration::from_secs_f64(s.clamp(0.0, 3600.0))),
        cues: tx.clone(),
    };
    let (sc2, root2, stop2) = (sc.clone(), root.clone(), stop.clone());
    let trainer = std::thread::spawn(move || {
        let play = Play {
            root: root2,
            scenario: &sc2,
            pace,
            stop: &stop2,
            presenter: Some(&presenter),
        };
        let mut say = |l: &str| {
            let _ = tx.send(crate::demo::Cue::Say(l.trim().to_owned()));
        };
        say(&format!("scenario {}: {}", sc2.name, sc2.description));
        match play.play(&mut say) {
            Err(e) => say(&format!("the trainer FAILED: {e}")),
            Ok(()) if !stop2.load(Ordering::Relaxed) => say(&format!("done — {}", sc2.outcome)),
            Ok(()) => {}
        }
    });
    let code = super::tui::run(ctx, cfg, &a.ui, env, Some((cues, next_tx)), err);
    stop.store(true, Ordering::Relaxed);
    let _ = trainer.join();
    code
}
