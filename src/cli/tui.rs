//! Starting the TUI: terminal setup and restore (also on error and on panic, via ratatui's
//! hook), the input thread, the watcher, and the event loop.

use crate::ui::run::{event_loop, forward_watch, mode_text, spawn_input};
use crate::ui::state::{Inputs, State};
use crate::ui::theme::Theme;
use crate::watch::{spawn, WatchConfig, WatchEvent};
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
}

impl UiArgs {
    pub fn theme(&self) -> Result<Theme, String> {
        let color = match self.color.as_str() {
            "auto" => std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
            "always" => true,
            "never" => false,
            other => return Err(format!("--color {other}: expected auto, always or never")),
        };
        Ok(Theme {
            color,
            light: self.light,
        })
    }
}

pub fn run(cfg: WatchConfig, ui: &UiArgs, err: &mut dyn Write) -> i32 {
    run_with_captions(cfg, ui, None, err)
}

/// The TUI with a caption line fed by `captions` (the demo narrates its timeline there).
pub fn run_with_captions(
    cfg: WatchConfig,
    ui: &UiArgs,
    captions: Option<crossbeam_channel::Receiver<String>>,
    err: &mut dyn Write,
) -> i32 {
    let theme = match ui.theme() {
        Ok(t) => t,
        Err(m) => return super::fail(err, &m),
    };
    let inputs = Inputs {
        fmt: cfg.config.fmt,
        config: cfg.config.clone(),
        env: cfg.env.clone(),
        paths: cfg.paths.clone(),
        run: Default::default(),
    };
    let root = cfg.root.clone();
    let verifying = cfg.verify;
    let handle = spawn(cfg);
    if !matches!(handle.events.recv(), Ok(WatchEvent::Snapshot { .. })) {
        return super::fail(err, &format!("{root}: the watcher did not start"));
    }
    let tree = handle.snapshot().unwrap_or_default();
    let mut state = State::new(root, inputs, tree, theme.color);
    state.verifying = verifying;
    state.mode = handle.mode().map_or_else(String::new, |m| mode_text(&m));
    let (tx, rx) = crossbeam_channel::unbounded();
    spawn_input(tx.clone());
    if let Some(c) = captions {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in c.iter() {
                if tx.send(crate::ui::run::Msg::Caption(line)).is_err() {
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
    ratatui::restore();
    handle.stop();
    match result {
        Ok(()) => 0,
        Err(e) => super::fail(err, &format!("terminal error: {e}")),
    }
}
