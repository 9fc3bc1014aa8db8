//! The event loop: one message channel fed by an input thread, the watcher and a clock; the
//! state changes only through `update`; the screen is redrawn only when something visible
//! changed, at most ~30 times a second, so an idle screen costs nothing. Generic over the
//! ratatui backend, so tests drive the real loop on a `TestBackend`.

use super::action::Action;
use super::keymap::action_for;
use super::render::draw;
use super::state::{Popup, State};
use super::theme::Theme;
use super::update::{new_model, submit_prompt, update};
use crate::watch::{Mode, WatchEvent, WatchHandle};
use crossbeam_channel::{Receiver, RecvTimeoutError};
use ratatui::backend::Backend;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, MouseEventKind};
use ratatui::Terminal;
use std::time::{Duration, Instant};

/// The least time between two model snapshots taken from the watcher.
const SNAPSHOT_EVERY: Duration = Duration::from_millis(500);

/// One input to the loop.
#[derive(Debug)]
pub enum Msg {
    Key(KeyEvent),
    Scroll(bool),
    /// A left click at a screen position.
    Click(u16, u16),
    /// A narration line (the demo's current event).
    Caption(String),
    Resize,
    Watch(WatchEvent),
}

/// Apply a key: prompts take text; everything else goes through the keymap.
pub fn on_key(s: &mut State, k: KeyEvent) {
    if let Some(Popup::Prompt(kind, text)) = &mut s.popup {
        match k.code {
            KeyCode::Char(c) => text.push(c),
            KeyCode::Backspace => {
                text.pop();
            }
            KeyCode::Enter => {
                let (kind, text) = (kind.clone(), text.clone());
                s.popup = None;
                submit_prompt(s, kind, &text);
            }
            KeyCode::Esc => s.popup = None,
            _ => {}
        }
        return;
    }
    if let Some(a) = action_for(k) {
        if s.popup.is_some()
            && !matches!(
                a,
                Action::Quit | Action::CloseMost | Action::Help | Action::Legend
            )
        {
            s.popup = None;
        }
        update(s, a);
    }
}

/// Log what the watcher saw (the model itself is refreshed from snapshots).
fn on_watch(s: &mut State, e: &WatchEvent) -> bool {
    match e {
        WatchEvent::Mode { mode, reason } => {
            s.mode = mode_text(mode);
            s.log(format!("watch: {reason}"));
        }
        WatchEvent::Verdict { verdict, .. } if !verdict.is_damaged() => return true,
        WatchEvent::Resolution { .. } | WatchEvent::Snapshot { .. } => return false,
        other => s.log(other.human()),
    }
    true
}

pub fn mode_text(m: &Mode) -> String {
    match m {
        Mode::Inotify { poll_secs } => format!("inotify + poll {poll_secs:.0}s"),
        Mode::Poll { interval_secs, .. } => format!("poll {interval_secs:.0}s"),
    }
}

/// Run until quit. `watch` supplies model snapshots after watcher events.
pub fn event_loop<B: Backend>(
    term: &mut Terminal<B>,
    s: &mut State,
    theme: Theme,
    rx: &Receiver<Msg>,
    watch: Option<&WatchHandle>,
) -> Result<(), B::Error> {
    let frame = Duration::from_millis(33);
    let (mut dirty, mut changes, mut last_draw) = (true, 0usize, Instant::now() - frame);
    let mut shown_age = u64::MAX;
    let mut last_snapshot = Instant::now() - SNAPSHOT_EVERY;
    while !s.quit {
        let age = s.last_change.elapsed().as_secs();
        if dirty || age != shown_age {
            if last_draw.elapsed() < frame {
                std::thread::sleep(frame - last_draw.elapsed());
            }
            term.draw(|f| draw(f, s, &theme))?;
            write_clipboard(s);
            (dirty, shown_age, last_draw) = (false, age, Instant::now());
        }
        let timeout = if changes > 0 {
            SNAPSHOT_EVERY.saturating_sub(last_snapshot.elapsed())
        } else {
            Duration::from_secs(1)
        };
        let first = match rx.recv_timeout(timeout) {
            Ok(m) => m,
            Err(RecvTimeoutError::Timeout) if changes == 0 => continue,
            Err(RecvTimeoutError::Timeout) => Msg::Resize, // time to take the pending snapshot
            Err(RecvTimeoutError::Disconnected) => break,
        };
        for m in std::iter::once(first).chain(rx.try_iter()) {
            match m {
                Msg::Key(k) => on_key(s, k),
                Msg::Scroll(down) => update(s, if down { Action::Down } else { Action::Up }),
                Msg::Click(x, y) => {
                    let size = term.size()?;
                    if let Some((row, col)) = super::render::cell_at(
                        s,
                        ratatui::layout::Rect::new(0, 0, size.width, size.height),
                        x,
                        y,
                    ) {
                        (s.row, s.col) = (row, col);
                    }
                }
                Msg::Resize => {}
                Msg::Caption(c) => {
                    s.log(format!("demo: {c}"));
                    s.caption = Some(c);
                }
                Msg::Watch(e) => changes += usize::from(on_watch(s, &e)),
            }
            dirty = true;
        }
        // a snapshot copies the model and re-runs the resolvers: at most a few per second
        if changes > 0 && last_snapshot.elapsed() >= SNAPSHOT_EVERY {
            last_snapshot = Instant::now();
            if let Some(tree) = watch.and_then(WatchHandle::snapshot) {
                let mode = watch
                    .and_then(WatchHandle::mode)
                    .map_or_else(|| s.mode.clone(), |m| mode_text(&m));
                new_model(s, tree, changes, mode);
            }
            changes = 0;
        }
    }
    Ok(())
}

/// OSC 52: ask the terminal to put text on the clipboard.
fn write_clipboard(s: &mut State) {
    use base64::Engine;
    use std::io::Write;
    if let Some(text) = s.clipboard.take() {
        let b64 = base64::engine::general_purpose::STANDARD.encode(text);
        let _ = write!(std::io::stdout(), "\x1b]52;c;{b64}\x07");
        let _ = std::io::stdout().flush();
    }
}

/// Read terminal input on a thread: key presses only (not releases or repeats of a release),
/// coalesced resizes, and mouse wheel when enabled.
pub fn spawn_input(tx: crossbeam_channel::Sender<Msg>) {
    std::thread::spawn(move || loop {
        let msg = match event::read() {
            Ok(Event::Key(k)) if k.kind == KeyEventKind::Press => Msg::Key(k),
            Ok(Event::Resize(..)) => Msg::Resize,
            Ok(Event::Mouse(m)) => match m.kind {
                MouseEventKind::ScrollDown => Msg::Scroll(true),
                MouseEventKind::ScrollUp => Msg::Scroll(false),
                MouseEventKind::Down(event::MouseButton::Left) => Msg::Click(m.column, m.row),
                _ => continue,
            },
            Ok(_) => continue,
            Err(_) => return,
        };
        if tx.send(msg).is_err() {
            return;
        }
    });
}

/// Forward watcher events into the loop's channel.
pub fn forward_watch(events: Receiver<WatchEvent>, tx: crossbeam_channel::Sender<Msg>) {
    std::thread::spawn(move || {
        for e in events.iter() {
            if tx.send(Msg::Watch(e)).is_err() {
                return;
            }
        }
    });
}
