//! The TUI on ratatui's TestBackend: states on fixtures with fixed clocks and mtimes, frames,
//! keys.

use super as common;
use ckptscope::model::Tree;
use ckptscope::ui::render::draw;
use ckptscope::ui::run::on_key;
use ckptscope::ui::state::State;
use ckptscope::ui::theme::Theme;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use std::time::{Duration, SystemTime};

/// A state on an in-memory tree (nothing behind it on disk).
pub fn state_for(tree: Tree, color: bool) -> State {
    let root = std::path::PathBuf::from(&tree.root);
    let env = ckptscope::Environment::with(&[], "/");
    let ctx = ckptscope::JobContext::gather(
        &ckptscope::fsys::RealFs,
        &env,
        &tree.root,
        &Default::default(),
    )
    .unwrap();
    assert_eq!(ctx.canonical, root);
    let session =
        ckptscope::Session::from_tree(std::sync::Arc::new(ckptscope::fsys::RealFs), ctx, tree)
            .without_disk_checks();
    fixed(State::new(session, color))
}

/// Fixed watch mode and clock, so frames are the same on every machine; zoom and cursor
/// fitted to a 120×40 screen, as the event loop fits them before its first frame.
pub fn fixed(mut s: State) -> State {
    s.mode = Some(ckptscope::watch::Mode::Inotify { poll_secs: 30.0 });
    s.now = Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_900_000_000));
    s.fit(ratatui::layout::Rect::new(0, 0, 120, 40));
    s
}

/// A copy of `tree-seed-run1` with fixed mtimes (file ages appear on screen), shown under a
/// fixed name so that frames are the same on every machine.
pub fn seed_state(color: bool) -> (State, tempfile::TempDir) {
    fixture_state("tree-seed-run1", color)
}

pub fn fixture_state(name: &str, color: bool) -> (State, tempfile::TempDir) {
    let (mut s, tmp) = fixture_state_with(name, &Default::default(), |_| {});
    s.color = color;
    (s, tmp)
}

pub fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v.into_iter()
        .flat_map(|p| if p.is_dir() { walk(&p) } else { vec![p] })
        .collect()
}

pub fn frame(s: &mut State, w: u16, h: u16, theme: Theme) -> Terminal<TestBackend> {
    // "last event 0 s ago" however slowly a loaded machine got here
    s.last_change = std::time::Instant::now();
    s.last_event = std::time::Instant::now();
    s.screen = ratatui::layout::Rect::new(0, 0, w, h);
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| draw(f, s, &theme)).unwrap();
    t
}

pub fn text(t: &Terminal<TestBackend>) -> String {
    t.backend().to_string()
}

pub fn keys(s: &mut State, keys: &str) {
    for c in keys.chars() {
        on_key(s, KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE));
    }
}

pub const COLOR: Theme = Theme {
    color: true,
    light: false,
    ascii: false,
};

pub fn find(buf: &ratatui::buffer::Buffer, needle: &str) -> Option<(u16, u16)> {
    for y in 0..buf.area.height {
        let line: String = (0..buf.area.width)
            .map(|x| buf[(x, y)].symbol().to_owned())
            .collect();
        if let Some(i) = line.find(needle) {
            return Some((line[..i].chars().count() as u16, y));
        }
    }
    None
}

/// Press a special key.
pub fn press(s: &mut State, code: KeyCode) {
    on_key(s, KeyEvent::new(code, KeyModifiers::NONE));
}

/// A state on a copy of fixture `name` whose files `edit` changed first (mtimes fixed as in
/// [`fixture_state`] before the edit), with job `flags`; every shard verified.
pub fn fixture_state_with(
    name: &str,
    flags: &ckptscope::JobFlags,
    edit: impl FnOnce(&std::path::Path),
) -> (State, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    common::copy_fixture(name, tmp.path());
    let root = tmp.path().join("checkpoint");
    for (i, e) in walk(&root).iter().enumerate() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + i as u64 * 60);
        std::fs::File::options()
            .write(true)
            .open(e)
            .unwrap()
            .set_modified(t)
            .unwrap();
    }
    edit(&root);
    let mut session = common::session_with(&root, flags);
    common::verify_all(&mut session);
    let mut s = fixed(State::new(session, true));
    s.root = format!("{name}/checkpoint");
    s.now = Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_003_600));
    (s, tmp)
}
