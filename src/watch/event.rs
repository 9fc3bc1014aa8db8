//! The watcher's output: one event per observed change, plus mode, rescans, verdicts and
//! resolutions. `ckptscope watch --ndjson` prints them one JSON object per line.

use crate::verify::verdict::Verdict;
use serde::Serialize;

/// How the tree is being watched.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Mode {
    /// inotify hints plus a slower reconcile poll as the truth.
    Inotify { poll_secs: f64 },
    /// Polling only (network filesystem, `--no-inotify`, or the watch limit was hit).
    Poll { interval_secs: f64, reason: String },
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum WatchEvent {
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
    /// MindFormers' pick and the safe pick, in `resolve --json`'s shapes, whenever they change.
    Resolution {
        mindformers: serde_json::Value,
        safe: serde_json::Value,
    },
}

impl WatchEvent {
    /// One NDJSON line: the event's fields plus `ts` (Unix seconds).
    pub fn to_ndjson(&self, ts: f64) -> String {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            o.insert("ts".into(), serde_json::json!(ts));
        }
        v.to_string()
    }

    /// One line for people.
    pub fn human(&self) -> String {
        let at = |rank: &Option<u64>, dir: &str| {
            rank.map_or_else(|| dir.to_owned(), |r| format!("rank {r}"))
        };
        match self {
            WatchEvent::Snapshot {
                root,
                ranks,
                files,
                mode,
            } => format!("watching {root}: {ranks} rank folders, {files} files ({mode:?})"),
            WatchEvent::ShardAdded {
                rank, dir, file, ..
            } => format!("{}: + {file}", at(rank, dir)),
            WatchEvent::ShardRemoved {
                rank, dir, file, ..
            } => format!("{}: - {file}", at(rank, dir)),
            WatchEvent::ShardChanged {
                rank,
                dir,
                file,
                size,
                ..
            } => format!("{}: ~ {file} ({} bytes)", at(rank, dir), size.unwrap_or(0)),
            WatchEvent::MetaChanged { rank, dir, content } => format!(
                "{}: meta.json {}",
                at(rank, dir),
                content.as_deref().unwrap_or("removed")
            ),
            WatchEvent::RankAdded { dir, .. } => format!("+ folder {dir}"),
            WatchEvent::RankRemoved { dir, .. } => format!("- folder {dir}"),
            WatchEvent::Rescan { reason } => format!("full rescan: {reason}"),
            WatchEvent::Mode { mode, reason } => format!("mode {mode:?}: {reason}"),
            WatchEvent::Verdict {
                rank,
                dir,
                file,
                verdict,
                detail,
            } => format!("{}: {file} is {} ({detail})", at(rank, dir), verdict.name()),
            WatchEvent::Resolution { mindformers, safe } => format!(
                "resume: MindFormers {}; safe {}",
                mindformers["per_rank"]
                    .get(0)
                    .map_or("-".into(), |r| r.to_string()),
                safe
            ),
        }
    }
}
