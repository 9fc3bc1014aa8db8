//! The keymap as data: key → action, with the text the key bar and the help popup show. Both are
//! generated from this one table, so they cannot drift from what the keys do.

use super::action::Action;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// One binding.
pub struct Binding {
    pub keys: &'static [KeyCode],
    pub ctrl: bool,
    pub action: Action,
    /// Shown in the help popup.
    pub help: &'static str,
    /// Shown in the one-line key bar when set.
    pub bar: Option<&'static str>,
    pub group: &'static str,
}

use KeyCode::*;

macro_rules! b {
    ($keys:expr, $action:ident, $group:expr, $help:expr, $bar:expr) => {
        Binding {
            keys: $keys,
            ctrl: false,
            action: Action::$action,
            help: $help,
            bar: $bar,
            group: $group,
        }
    };
}

pub const KEYMAP: &[Binding] = &[
    b!(&[Char('q')], Quit, "general", "quit", Some("q quit")),
    Binding {
        keys: &[Char('c')],
        ctrl: true,
        action: Action::Quit,
        help: "quit",
        bar: None,
        group: "general",
    },
    b!(
        &[Esc],
        CloseMost,
        "general",
        "close the innermost popup",
        None
    ),
    b!(&[Char('?')], Help, "general", "this help", Some("? help")),
    b!(
        &[Char(' ')],
        NextBeat,
        "general",
        "demo: the next beat (presenter mode)",
        None
    ),
    b!(
        &[Char('L')],
        Legend,
        "general",
        "legend of cell glyphs and colours",
        None
    ),
    b!(
        &[Char('f')],
        Freeze,
        "general",
        "freeze / resume live updates",
        Some("f freeze")
    ),
    b!(&[Up, Char('k')], Up, "move", "previous rank", None),
    b!(&[Down, Char('j')], Down, "move", "next rank", None),
    b!(&[Left, Char('h')], Left, "move", "previous step", None),
    b!(&[Right, Char('l')], Right, "move", "next step", None),
    b!(&[PageUp], PageUp, "move", "a page of ranks up", None),
    b!(&[PageDown], PageDown, "move", "a page of ranks down", None),
    b!(&[Char('g')], FirstRank, "move", "first rank", None),
    b!(&[Char('G')], LastRank, "move", "last rank", None),
    b!(&[Home], FirstStep, "move", "oldest step", None),
    b!(&[End], LastStep, "move", "newest step", None),
    b!(
        &[Char('n')],
        NextProblem,
        "move",
        "next problem",
        Some("n/N problem")
    ),
    b!(&[Char('N')], PrevProblem, "move", "previous problem", None),
    b!(
        &[Char(':')],
        Jump,
        "move",
        "jump to a rank (number) or a step (E_S)",
        None
    ),
    b!(
        &[Char('z')],
        ZoomOut,
        "view",
        "zoom out (more ranks per cell, worst wins)",
        Some("z/Z zoom")
    ),
    b!(&[Char('Z')], ZoomIn, "view", "zoom in", None),
    b!(
        &[Char('p')],
        ProblemsOnly,
        "view",
        "only steps with a problem",
        None
    ),
    b!(
        &[Char('[')],
        LogUp,
        "view",
        "scroll the event log back",
        None
    ),
    b!(
        &[Char(']')],
        LogDown,
        "view",
        "scroll the event log forward",
        None
    ),
    b!(
        &[Char('x')],
        DeleteShard,
        "simulate",
        "delete the shard under the cursor",
        Some("x del")
    ),
    b!(
        &[Char('X')],
        DeleteRank,
        "simulate",
        "delete the whole rank folder",
        None
    ),
    b!(
        &[Char('c')],
        DeleteStep,
        "simulate",
        "delete the step on every rank",
        None
    ),
    b!(
        &[Char('m')],
        DeleteMeta,
        "simulate",
        "delete the rank's meta.json",
        None
    ),
    b!(
        &[Char('t')],
        MarkTruncated,
        "simulate",
        "mark the shard truncated",
        None
    ),
    b!(
        &[Char('T')],
        MarkCorrupt,
        "simulate",
        "mark the shard corrupt",
        None
    ),
    b!(
        &[Char('b')],
        SetBatchSize,
        "simulate",
        "set the new global batch size",
        Some("b/</> batch")
    ),
    b!(
        &[Char('>')],
        DoubleBatchSize,
        "simulate",
        "double the global batch size",
        None
    ),
    b!(
        &[Char('<')],
        HalveBatchSize,
        "simulate",
        "halve the global batch size",
        None
    ),
    b!(
        &[Char('i')],
        ToggleIgnoreDataSkip,
        "simulate",
        "toggle ignore_data_skip",
        None
    ),
    b!(
        &[Char('s')],
        SetDataSkipSteps,
        "simulate",
        "set data_skip_steps",
        None
    ),
    b!(
        &[Char('r')],
        CycleResumeTraining,
        "simulate",
        "resume_training: true → this file → false",
        None
    ),
    b!(
        &[Char('H')],
        ToggleHealth,
        "simulate",
        "toggle health mode",
        None
    ),
    b!(
        &[Char('o')],
        ToggleNoLoadOptim,
        "simulate",
        "toggle no_load_optim (new format)",
        None
    ),
    b!(
        &[Char('K')],
        DeleteTracker,
        "simulate",
        "delete the tracker (new format)",
        None
    ),
    b!(
        &[Char('w')],
        SetTrackerHere,
        "simulate",
        "tracker names this folder (new format)",
        None
    ),
    b!(
        &[Char('u')],
        Undo,
        "simulate",
        "undo the last edit",
        Some("u undo")
    ),
    Binding {
        keys: &[Char('r')],
        ctrl: true,
        action: Action::Redo,
        help: "redo",
        bar: None,
        group: "simulate",
    },
    b!(
        &[Char('R')],
        Reset,
        "simulate",
        "reset the simulation",
        None
    ),
    b!(
        &[Char('y')],
        Yank,
        "simulate",
        "copy the safe config (OSC 52 clipboard)",
        None
    ),
];

/// The action bound to a key press, if any.
pub fn action_for(k: KeyEvent) -> Option<Action> {
    let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
    KEYMAP
        .iter()
        .find(|b| b.ctrl == ctrl && b.keys.contains(&k.code))
        .map(|b| b.action)
}

/// A key's name as the help shows it.
pub fn key_name(k: &KeyCode, ctrl: bool) -> String {
    let base = match k {
        Char(' ') => "Space".into(),
        Char(c) => c.to_string(),
        Up => "↑".into(),
        Down => "↓".into(),
        Left => "←".into(),
        Right => "→".into(),
        PageUp => "PgUp".into(),
        PageDown => "PgDn".into(),
        Home => "Home".into(),
        End => "End".into(),
        Esc => "Esc".into(),
        other => format!("{other:?}"),
    };
    if ctrl {
        format!("Ctrl-{base}")
    } else {
        base
    }
}

/// One line of the help popup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HelpLine {
    Group(&'static str),
    Key { keys: String, help: &'static str },
}

/// The help text: one line per binding, grouped; with `filter`, only the bindings whose keys,
/// text or group contain it (ignoring case), under their groups.
pub fn help_lines(filter: &str) -> Vec<HelpLine> {
    let f = filter.to_lowercase();
    let mut out = Vec::new();
    let mut group = "";
    for b in KEYMAP {
        let keys: Vec<String> = b.keys.iter().map(|k| key_name(k, b.ctrl)).collect();
        let keys = keys.join(" ");
        let hit = [keys.as_str(), b.help, b.group]
            .iter()
            .any(|t| t.to_lowercase().contains(&f));
        if !hit {
            continue;
        }
        if b.group != group {
            group = b.group;
            out.push(HelpLine::Group(group));
        }
        out.push(HelpLine::Key { keys, help: b.help });
    }
    out
}

/// What the screen is doing, for the key bar.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BarMode {
    Normal,
    Simulating,
    Frozen,
    Help,
    Legend,
    Prompt,
}

/// The first key bound to `a`, as the help names it.
fn key_of(a: Action) -> String {
    KEYMAP
        .iter()
        .find(|b| b.action == a)
        .and_then(|b| b.keys.first().map(|k| key_name(k, b.ctrl)))
        .unwrap_or_default()
}

/// The one-line key bar for what the screen is doing: the keys that matter now, their names
/// taken from the keymap (so the bar cannot name a key that does something else).
pub fn bar(mode: BarMode) -> String {
    let with = |list: &[(Action, &str)]| {
        list.iter()
            .map(|(a, what)| format!("{} {what}", key_of(*a)))
            .collect::<Vec<_>>()
            .join("  ")
    };
    match mode {
        BarMode::Normal => KEYMAP
            .iter()
            .filter_map(|b| b.bar)
            .collect::<Vec<_>>()
            .join("  "),
        BarMode::Simulating => with(&[
            (Action::Undo, "undo"),
            (Action::Redo, "redo"),
            (Action::Reset, "reset"),
            (Action::Yank, "copy (sim)"),
            (Action::DeleteShard, "del"),
            (Action::SetBatchSize, "batch"),
            (Action::Help, "help"),
            (Action::Quit, "quit"),
        ]),
        BarMode::Frozen => with(&[
            (Action::Freeze, "resume live updates"),
            (Action::NextProblem, "problem"),
            (Action::Help, "help"),
            (Action::Quit, "quit"),
        ]),
        BarMode::Help => "↑↓ PgUp PgDn scroll  / filter  ? or Esc close".into(),
        BarMode::Legend => "Esc close".into(),
        BarMode::Prompt => "Enter apply  Esc cancel".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_has_a_key_and_keys_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for b in KEYMAP {
            for k in b.keys {
                assert!(seen.insert((format!("{k:?}"), b.ctrl)), "{k:?} bound twice");
            }
        }
        let keys = |f: &str| {
            help_lines(f)
                .iter()
                .filter(|l| matches!(l, HelpLine::Key { .. }))
                .count()
        };
        assert_eq!(keys(""), KEYMAP.len());
        // a filter keeps matching bindings under their group headers
        let batch = help_lines("BATCH");
        assert_eq!(batch.first(), Some(&HelpLine::Group("simulate")));
        assert_eq!(keys("batch"), 3);
        assert_eq!(keys("no binding says this"), 0);
    }
}
