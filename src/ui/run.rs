//! The event loop: one message channel fed by an input thread, the watcher and a clock; the
//! state changes only through `update`; the screen is redrawn only when something visible
//! changed, at most ~30 times a second, so an idle screen costs nothing. Generic over the
//! ratatui backend, so tests drive the real loop on a `TestBackend`.

use super::action::Action;
use super::keymap::action_for;
use super::render::draw;
use super::state::{Popup, State};
use super::theme::Theme;
use super::update::{apply_deltas, submit_prompt, update};
use crate::session::events::Event as SessionEvent;
use crate::watch::{WatchHandle, WatchMsg};
use crossbeam_channel::{Receiver, RecvTimeoutError};
use ratatui::backend::Backend;
use ratatui::crossterm::event::{
    self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseEventKind,
};
use ratatui::Terminal;
use std::time::{Duration, Instant};

/// The least time between two recomputations while changes stream in (re-resolving a huge
/// tree costs up to a second).
const REFRESH_EVERY: Duration = Duration::from_millis(500);

/// One input to the loop.
#[derive(Debug)]
pub enum Msg {
    Key(KeyEvent),
    Scroll(bool),
    /// A left click at a screen position.
    Click(u16, u16),
    /// The demo's cue: narration, where to look, a simulated variation.
    Cue(crate::demo::Cue),
    Resize,
    Watch(WatchMsg),
    /// SIGINT, SIGTERM or SIGHUP: leave as on `q`, restoring the terminal.
    Signal,
}

/// Apply a key. An open popup takes every key (a key meant for it never also acts on the
/// grid): a prompt takes text, the help scrolls and filters, the legend closes. Ctrl-C quits
/// from anywhere.
pub fn on_key(s: &mut State, k: KeyEvent) {
    if k.code == KeyCode::Char('c') && k.modifiers.contains(KeyModifiers::CONTROL) {
        s.quit = true;
        return;
    }
    match &mut s.popup {
        Some(Popup::Prompt(kind, text)) => match k.code {
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
        },
        Some(Popup::Help(h)) => {
            if !super::help::key(h, k, s.screen) {
                s.popup = None;
            }
        }
        Some(Popup::Legend) => {
            if matches!(
                k.code,
                KeyCode::Esc | KeyCode::Enter | KeyCode::Char('q' | 'L' | '?')
            ) {
                s.popup = None;
            }
        }
        None => {
            if let Some(a) = action_for(k) {
                update(s, a);
            }
        }
    }
}

/// Log an event the session reported (verdicts that are fine are not news).
fn log_event(s: &mut State, e: &SessionEvent) {
    match e {
        SessionEvent::Verdict { verdict, .. } if !verdict.is_damaged() => {}
        SessionEvent::Resolution(_) | SessionEvent::Snapshot { .. } => {}
        other => s.log(other.human()),
    }
}

/// Take a watcher message into the state; `true` when the model changed.
fn on_watch(s: &mut State, m: WatchMsg, pending: &mut Vec<crate::model::Delta>) {
    s.last_event = Instant::now();
    match m {
        WatchMsg::Deltas(d) => pending.extend(d),
        WatchMsg::Mode { mode, reason } => {
            s.log(format!("watch: {reason}"));
            s.mode = Some(mode);
        }
        WatchMsg::Rescan { reason } => s.log(format!("full rescan: {reason}")),
        WatchMsg::Failed(e) => {
            s.log(e.to_string());
            s.watch_failed = Some(e.to_string());
        }
        WatchMsg::Started { .. } => {}
    }
}

/// Run until quit. `watch`, when given, is asked for a resync when the view is unfrozen.
pub fn event_loop<B: Backend>(
    term: &mut Terminal<B>,
    s: &mut State,
    theme: Theme,
    rx: &Receiver<Msg>,
    watch: Option<&WatchHandle>,
) -> Result<(), B::Error> {
    let frame = Duration::from_millis(33);
    let (mut dirty, mut last_draw) = (true, Instant::now() - frame);
    let mut shown_age = u64::MAX;
    let mut pending: Vec<crate::model::Delta> = Vec::new();
    let mut last_refresh = Instant::now() - REFRESH_EVERY;
    while !s.quit {
        let age = s.last_event.elapsed().as_secs();
        if dirty || age != shown_age {
            if last_draw.elapsed() < frame {
                std::thread::sleep(frame - last_draw.elapsed());
            }
            s.refresh(); // cheap when nothing changed: the session caches its answers
            let size = term.size()?;
            s.screen = ratatui::layout::Rect::new(0, 0, size.width, size.height);
            s.fit(s.screen); // once: zoom and cursor for the first frame
            term.draw(|f| draw(f, s, &theme))?;
            write_clipboard(s);
            (dirty, shown_age, last_draw) = (false, age, Instant::now());
        }
        let timeout = if pending.is_empty() {
            Duration::from_secs(1)
        } else {
            REFRESH_EVERY.saturating_sub(last_refresh.elapsed())
        };
        let first = match rx.recv_timeout(timeout) {
            Ok(m) => Some(m),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        for m in first.into_iter().chain(rx.try_iter()) {
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
                Msg::Cue(c) => super::update::on_cue(s, c),
                Msg::Watch(m) => on_watch(s, m, &mut pending),
                Msg::Signal => {
                    s.quit = true;
                    s.killed = true;
                }
            }
            dirty = true;
        }
        let unfrozen = std::mem::take(&mut s.resync_wanted);
        if unfrozen {
            if let Some(w) = watch {
                w.resync();
            }
        }
        // re-resolving a huge tree costs time: a few times a second, and at once when the view
        // is unfrozen (it must show every change the live model has)
        if !pending.is_empty() && (unfrozen || last_refresh.elapsed() >= REFRESH_EVERY) {
            last_refresh = Instant::now();
            apply_deltas(s, std::mem::take(&mut pending));
            for e in s.session.drain_events() {
                log_event(s, &e);
            }
            dirty = true;
        }
        // shards the answer on screen needs: the watcher's verifier checks them first
        let wanted = s.session.take_wanted();
        if let (false, Some(w)) = (wanted.is_empty(), watch) {
            w.verify_now(wanted);
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

/// Forward watcher messages into the loop's channel.
pub fn forward_watch(events: Receiver<WatchMsg>, tx: crossbeam_channel::Sender<Msg>) {
    std::thread::spawn(move || {
        for e in events.iter() {
            if tx.send(Msg::Watch(e)).is_err() {
                return;
            }
        }
        // the watcher's channel closed: say so instead of showing a silently stale view
        let _ = tx.send(Msg::Watch(WatchMsg::Failed(
            crate::watch::WatchError::Died {
                why: "its channel closed".into(),
            },
        )));
    });
}
