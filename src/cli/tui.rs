//! Starting the TUI: terminal setup and restore (also on error and on panic, via ratatui's
//! hook), the input thread, the watcher, and the event loop.

use crate::job::JobContext;
use crate::session::{DiskChecks, Session};
use crate::ui::run::{event_loop, forward_watch, spawn_input};
use crate::ui::state::State;
use crate::ui::theme::Theme;
use crate::watch::{spawn_many, WatchConfig, WatchMsg};
use std::io::Write;

#[derive(clap::Args, Debug, Clone)]
pub struct UiArgs {
    /// Colour: auto (off when NO_COLOR is set), always, never.
    #[arg(long, value_name = "WHEN", default_value = "auto")]
    pub color: String,
    /// Colours for a light terminal background.
    #[arg(long)]
    pub light: bool,
    /// Mouse wheel scrolls the grid (off by default, so the terminal's own selection works).
    #[arg(long)]
    pub mouse: bool,
    /// Draw with ASCII only (the default when the locale is not UTF-8, or is Chinese,
    /// Japanese or Korean, whose terminals draw `● · ─ →` two columns wide).
    #[arg(long, conflicts_with = "unicode")]
    pub ascii: bool,
    /// Draw with Unicode glyphs and box lines even where `--ascii` would be the default.
    #[arg(long)]
    pub unicode: bool,
}

/// Whether the locale in `env` calls for ASCII: not UTF-8 (the C locale included), or a CJK
/// language (ambiguous-width symbols are drawn wide there). The first of `LC_ALL`,
/// `LC_CTYPE`, `LANG` that is set and not empty decides, as in the C library.
pub fn ascii_locale(env: &crate::job::Environment) -> bool {
    let locale = ["LC_ALL", "LC_CTYPE", "LANG"]
        .iter()
        .find_map(|k| env.get(k).filter(|v| !v.is_empty()))
        .unwrap_or("C")
        .to_ascii_lowercase();
    let utf8 = locale.contains("utf-8") || locale.contains("utf8");
    let cjk = ["zh", "ja", "ko"].iter().any(|l| locale.starts_with(l));
    !utf8 || cjk
}

impl UiArgs {
    /// The theme for `env` (NO_COLOR, when set and not empty, turns colour off in `auto`).
    pub fn theme(&self, env: &crate::job::Environment) -> Result<Theme, String> {
        let color = match self.color.as_str() {
            "auto" => env.get("NO_COLOR").is_none_or(|v| v.is_empty()),
            "always" => true,
            "never" => false,
            other => return Err(format!("--color {other}: expected auto, always or never")),
        };
        Ok(Theme {
            color,
            light: self.light,
            ascii: self.ascii || (!self.unicode && ascii_locale(env)),
        })
    }
}

/// Start watching and build the TUI's state on the watcher's first scan: the session the
/// screen shows (what [`run`] draws; tests read it without a terminal).
pub fn start(
    ctx: JobContext,
    cfg: WatchConfig,
    color: bool,
) -> Result<(State, crate::watch::WatchHandle), String> {
    let fs = cfg.fs.clone();
    let verifying = cfg.verify;
    let cfgs = cfg.for_roots(&ctx).map_err(|e| e.to_string())?;
    let handle = spawn_many(cfgs, ctx.node_block());
    let (tree, mode) = match handle.events.recv() {
        Ok(WatchMsg::Started { tree, mode }) => (tree, mode),
        Ok(WatchMsg::Failed(e)) => return Err(e.to_string()),
        _ => {
            return Err(format!(
                "{}: the watcher stopped before its first scan",
                ctx.root
            ))
        }
    };
    // the screen never waits on a disk: shards the answer needs go to the verifier
    let session = Session::from_tree(fs, ctx, *tree).with_disk_checks(DiskChecks::Deferred);
    let mut state = State::new(session, color);
    let wanted = state.session.take_wanted();
    if !wanted.is_empty() {
        handle.verify_now(wanted);
    }
    state.verifying = verifying;
    state.mode = Some(mode);
    Ok((state, handle))
}

/// The TUI on a live session of `ctx`, watched as `cfg` says; `demo` brings the demo's cues
/// (narration, where to look, simulated variations) and takes the presenter's Space.
pub fn run(
    ctx: JobContext,
    cfg: WatchConfig,
    ui: &UiArgs,
    env: &crate::job::Environment,
    demo: Option<(
        crossbeam_channel::Receiver<crate::demo::Cue>,
        crossbeam_channel::Sender<()>,
    )>,
    err: &mut dyn Write,
) -> i32 {
    let theme = match ui.theme(env) {
        Ok(t) => t,
        Err(m) => return super::fail(err, &m),
    };
    let (mut state, handle) = match start(ctx, cfg, theme.color) {
        Ok(x) => x,
        Err(m) => return super::fail(err, &m),
    };
    let (tx, rx) = crossbeam_channel::unbounded();
    spawn_input(tx.clone());
    // killed (SIGTERM, SIGHUP, or SIGINT from outside: in raw mode Ctrl-c is a key): quit
    // through the loop, so the terminal is restored and temporary files are removed
    let on_signal = tx.clone();
    let _ = ctrlc::set_handler(move || {
        let _ = on_signal.send(crate::ui::run::Msg::Signal);
    });
    if let Some((cues, next)) = demo {
        state.presenter = Some(next);
        let tx = tx.clone();
        std::thread::spawn(move || {
            for cue in cues.iter() {
                if tx.send(crate::ui::run::Msg::Cue(cue)).is_err() {
                    return;
                }
            }
        });
    }
    forward_watch(handle.events.clone(), tx);
    let mut term = match ratatui::try_init() {
        Ok(t) => t,
        Err(e) => return super::fail(err, &format!("cannot set up the terminal: {e}")),
    };
    quiet_panic_hook();
    if ui.mouse {
        let _ = ratatui::crossterm::execute!(
            std::io::stdout(),
            ratatui::crossterm::event::EnableMouseCapture
        );
    }
    let result = event_loop(&mut term, &mut state, theme, &rx, Some(&handle));
    if ui.mouse {
        let _ = ratatui::crossterm::execute!(
            std::io::stdout(),
            ratatui::crossterm::event::DisableMouseCapture
        );
    }
    // try_restore, not restore: when the terminal is gone (a dropped SSH session, a closed
    // window) restore's own error message cannot be written, and `eprintln!` would panic
    let _ = ratatui::try_restore();
    let code = match result {
        // ended by a signal: 130, as the headless demo and shells report an interrupted job
        Ok(()) if state.killed => 130,
        Ok(()) => 0,
        Err(e) => super::fail(err, &format!("terminal error: {e}")),
    };
    // The prompt comes back now: the watcher is told to stop but not waited for (it may be
    // in the middle of a listing), and the model — hundreds of thousands of records on a big
    // tree, a few hundred milliseconds to free one by one — is left to the process's end,
    // which returns all of it at once.
    drop(handle);
    std::mem::forget(state);
    code
}

/// Replace ratatui's panic hook (restore, then `eprintln!`, which itself panics — and so
/// aborts — when stderr is a terminal that has gone away) with one that restores the terminal
/// and reports the panic, ignoring write errors.
fn quiet_panic_hook() {
    let _ = std::panic::take_hook();
    std::panic::set_hook(Box::new(|info| {
        let _ = ratatui::try_restore();
        let _ = writeln!(std::io::stderr(), "ckptscope: internal error: {info}");
    }));
}
