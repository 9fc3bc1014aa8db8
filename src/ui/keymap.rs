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
        "zoom out (one cell = more ranks, worst state wins)",
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
        "resume_training: true → file under cursor → false",
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
        "copy the safe config to the clipboard (OSC 52)",
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

/// The help text: one line per binding, grouped.
pub fn help_lines() -> Vec<String> {
    let mut out = Vec::new();
    let mut group = "";
    for b in KEYMAP {
        if b.group != group {
            group = b.group;
            out.push(format!("— {group} —"));
        }
        let keys: Vec<String> = b.keys.iter().map(|k| key_name(k, b.ctrl)).collect();
        out.push(format!("{:<12} {}", keys.join(" "), b.help));
    }
    out
}

/// The one-line key bar.
pub fn bar() -> String {
    KEYMAP
        .iter()
        .filter_map(|b| b.bar)
        .collect::<Vec<_>>()
        .join("  ")
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
        assert_eq!(
            help_lines().iter().filter(|l| !l.starts_with('—')).count(),
            KEYMAP.len()
        );
    }
}
