//! What a live session reports: one event per confirmed change (from the model's own diff, not
//! from filesystem events), the watcher's mode changes and rescans, verdicts, and the resolution
//! whenever the answer changes. `ckptscope watch --ndjson` prints them one JSON object per line;
//! the TUI logs them.

use crate::model::Verdict;
use crate::report::json::Resolution;
use crate::report::terminal::safe as esc;
use crate::watch::Mode;
use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// After the initial scan.
    Snapshot {
        root: String,
        ranks: usize,
        files: usize,
        mode: Mode,
    },
    ShardAdded {
        rank: Option<u64>,
        dir: String,
        file: String,
        kind: &'static str,
        size: Option<u64>,
    },
    ShardRemoved {
        rank: Option<u64>,
        dir: String,
        file: String,
        kind: &'static str,
    },
    ShardChanged {
        rank: Option<u64>,
        dir: String,
        file: String,
        kind: &'static str,
        size: Option<u64>,
    },
    /// `meta.json` appeared, vanished or was replaced; `content` is its text now.
    MetaChanged {
        rank: Option<u64>,
        dir: String,
        content: Option<String>,
    },
    /// A control file appeared, vanished or was replaced: the new format's tracker (`dir`
    /// empty), `common.json` or `metadata.json`; `content` is its text now (a file over 4 KiB
    /// is given by its size).
    ControlChanged {
        dir: String,
        file: String,
        content: Option<String>,
    },
    RankAdded {
        rank: Option<u64>,
        dir: String,
    },
    RankRemoved {
        rank: Option<u64>,
        dir: String,
    },
    /// A full rescan and why (overflow, watcher error, root recreated …).
    Rescan {
        reason: String,
    },
    Mode {
        mode: Mode,
        reason: String,
    },
    Verdict {
        rank: Option<u64>,
        dir: String,
        file: String,
        verdict: Verdict,
        detail: String,
    },
    /// MindFormers' pick, the data skip and the safe pick — `resolve --json`'s own types.
    Resolution(Box<Resolution>),
}

impl Event {
    /// One NDJSON line: the event's fields plus `ts` (Unix seconds).
    pub fn to_ndjson(&self, ts: f64) -> Result<String, serde_json::Error> {
        let mut v = serde_json::to_value(self)?;
        if let Some(o) = v.as_object_mut() {
            o.insert("ts".into(), serde_json::json!(ts));
        }
        Ok(v.to_string())
    }

    /// One line for people; names from the tree are escaped (they may hold control bytes).
    pub fn human(&self) -> String {
        let at = |rank: &Option<u64>, dir: &str| {
            rank.map_or_else(|| esc(dir).into_owned(), |r| format!("rank {r}"))
        };
        match self {
            Event::Snapshot {
                root,
                ranks,
                files,
                mode,
            } => format!(
                "watching {}: {ranks} rank folders, {files} files ({})",
                esc(root),
                mode.describe()
            ),
            Event::ShardAdded {
                rank, dir, file, ..
            } => format!("{}: + {}", at(rank, dir), esc(file)),
            Event::ShardRemoved {
                rank, dir, file, ..
            } => format!("{}: - {}", at(rank, dir), esc(file)),
            Event::ShardChanged {
                rank,
                dir,
                file,
                size,
                ..
            } => format!(
                "{}: ~ {} ({} bytes)",
                at(rank, dir),
                esc(file),
                size.unwrap_or(0)
            ),
            Event::MetaChanged { rank, dir, content } => format!(
                "{}: meta.json {}",
                at(rank, dir),
                content.as_deref().map_or("removed".into(), esc)
            ),
            Event::ControlChanged { dir, file, content } => {
                let at = match dir.is_empty() {
                    true => esc(file).into_owned(),
                    false => format!("{}/{}", esc(dir), esc(file)),
                };
                let content = content
                    .as_deref()
                    .map_or("removed".into(), |c| esc(c.trim()));
                format!("{at}: {content}")
            }
            Event::RankAdded { dir, .. } => format!("+ folder {}", esc(dir)),
            Event::RankRemoved { dir, .. } => format!("- folder {}", esc(dir)),
            Event::Rescan { reason } => format!("full rescan: {}", esc(reason)),
            Event::Mode { mode, reason } => {
                format!("now {}: {}", mode.describe(), esc(reason))
            }
            Event::Verdict {
                rank,
                dir,
                file,
                verdict,
                detail,
            } => format!(
                "{}: {} is {} ({})",
                at(rank, dir),
                esc(file),
                verdict.name(),
                esc(detail)
            ),
            Event::Resolution(r) => format!("resume: {}", esc(&r.summary())),
        }
    }
}
