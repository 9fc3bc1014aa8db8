//! Cell states of the step × rank grid, each with its own glyph (so the grid reads without
//! colour: NO_COLOR users and colour-blind users see the same information).

use crate::model::Verdict;
use serde::Serialize;

/// What one cell (one rank's shard of one step) shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CellState {
    Ok,
    /// Present; not checked yet.
    Unverified,
    /// Present and queued for the background verifier.
    Verifying,
    /// A `.tmp` for this step: being written (or abandoned).
    InProgress,
    /// Verdicts that mean damage, worst last.
    Incomplete,
    Encrypted,
    Other,
    Missing,
    CrcMismatch,
    HashMismatch,
    Corrupt,
    Truncated,
    ZeroByte,
    Unreadable,
    /// Deleted in the simulation (the disk is untouched).
    SimDeleted,
    /// Marked truncated/corrupt in the simulation.
    SimCorrupt,
}

impl CellState {
    pub fn from_verdict(v: Verdict) -> Self {
        match v {
            Verdict::Ok => CellState::Ok,
            Verdict::InProgress | Verdict::Changed => CellState::InProgress,
            Verdict::ZeroByte => CellState::ZeroByte,
            Verdict::Truncated => CellState::Truncated,
            Verdict::Incomplete => CellState::Incomplete,
            Verdict::Corrupt | Verdict::NotACheckpoint => CellState::Corrupt,
            Verdict::CrcMismatch => CellState::CrcMismatch,
            Verdict::HashMismatch => CellState::HashMismatch,
            Verdict::Encrypted => CellState::Encrypted,
            Verdict::Unreadable | Verdict::NotRegular => CellState::Unreadable,
        }
    }

    /// One display column.
    pub fn glyph(self) -> char {
        match self {
            CellState::Ok => '●',
            CellState::Unverified => '○',
            CellState::Verifying => '◌',
            CellState::InProgress => '◐',
            CellState::Incomplete => '◔',
            CellState::Encrypted => '⊘',
            CellState::Other => '?',
            CellState::Missing => '·',
            CellState::CrcMismatch => '≠',
            CellState::HashMismatch => '#',
            CellState::Corrupt => '✗',
            CellState::Truncated => '~',
            CellState::ZeroByte => '0',
            CellState::Unreadable => '!',
            CellState::SimDeleted => '-',
            CellState::SimCorrupt => '※',
        }
    }

    /// The glyph where only ASCII can be drawn (`--ascii`).
    pub fn ascii_glyph(self) -> char {
        match self {
            CellState::Ok => 'o',
            CellState::Unverified => ':',
            CellState::Verifying => 'v',
            CellState::InProgress => 'w',
            CellState::Incomplete => 'i',
            CellState::Encrypted => 'e',
            CellState::Other => '?',
            CellState::Missing => '.',
            CellState::CrcMismatch => 'c',
            CellState::HashMismatch => '#',
            CellState::Corrupt => 'X',
            CellState::Truncated => '~',
            CellState::ZeroByte => '0',
            CellState::Unreadable => '!',
            CellState::SimDeleted => '-',
            CellState::SimCorrupt => '%',
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            CellState::Ok => "ok",
            CellState::Unverified => "present, not verified",
            CellState::Verifying => "present, being verified",
            CellState::InProgress => "being written (.tmp)",
            CellState::Incomplete => "incomplete (resume context missing)",
            CellState::Encrypted => "encrypted",
            CellState::Other => "another file for this step (breakpoint, odd name): not this shard",
            CellState::Missing => "missing",
            CellState::CrcMismatch => "CRC mismatch",
            CellState::HashMismatch => "SHA-256 mismatch",
            CellState::Corrupt => "corrupt / not a checkpoint",
            CellState::Truncated => "truncated",
            CellState::ZeroByte => "zero bytes",
            CellState::Unreadable => "unreadable / not a regular file",
            CellState::SimDeleted => "deleted (simulation)",
            CellState::SimCorrupt => "marked damaged (simulation)",
        }
    }

    /// Damage that makes the step unusable on that rank.
    pub fn is_problem(self) -> bool {
        !matches!(
            self,
            CellState::Ok
                | CellState::Unverified
                | CellState::InProgress
                | CellState::Encrypted
                | CellState::Other
        )
    }

    /// For zoomed-out cells standing for many ranks: the worst state wins.
    pub fn severity(self) -> u8 {
        match self {
            CellState::Ok => 0,
            CellState::Unverified | CellState::Verifying => 1,
            CellState::Other => 2,
            CellState::InProgress => 3,
            CellState::Encrypted => 4,
            CellState::Incomplete => 6,
            CellState::SimCorrupt | CellState::SimDeleted => 7,
            CellState::Missing => 8,
            CellState::CrcMismatch | CellState::HashMismatch => 9,
            CellState::Corrupt
            | CellState::Truncated
            | CellState::ZeroByte
            | CellState::Unreadable => 10,
        }
    }

    pub const ALL: [CellState; 16] = [
        CellState::Ok,
        CellState::Unverified,
        CellState::Verifying,
        CellState::InProgress,
        CellState::Incomplete,
        CellState::Encrypted,
        CellState::Other,
        CellState::Missing,
        CellState::CrcMismatch,
        CellState::HashMismatch,
        CellState::Corrupt,
        CellState::Truncated,
        CellState::ZeroByte,
        CellState::Unreadable,
        CellState::SimDeleted,
        CellState::SimCorrupt,
    ];
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_has_its_own_glyph() {
        let mut a: Vec<char> = CellState::ALL.iter().map(|s| s.ascii_glyph()).collect();
        a.sort_unstable();
        a.dedup();
        assert_eq!(a.len(), CellState::ALL.len(), "ASCII glyphs too");
        assert!(a.iter().all(char::is_ascii));
        let mut g: Vec<char> = CellState::ALL.iter().map(|s| s.glyph()).collect();
        g.sort_unstable();
        g.dedup();
        assert_eq!(g.len(), CellState::ALL.len());
    }
}
