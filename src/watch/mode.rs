//! How a tree is being watched.

use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Mode {
    /// inotify hints plus a slower reconcile poll as the truth.
    Inotify { poll_secs: f64 },
    /// Polling only (network filesystem, `--no-inotify`, or inotify could not be armed);
    /// `degraded` when inotify was wanted but failed.
    Poll {
        interval_secs: f64,
        reason: String,
        degraded: bool,
    },
    /// A remote root's connection is down (`root` names it): what is shown of it is the last
    /// state it sent, until it reconnects.
    Disconnected { root: String, reason: String },
}

impl Mode {
    /// Human words: `inotify + poll every 30 s`, `polling every 10 s (NFS …)`.
    pub fn describe(&self) -> String {
        match self {
            Mode::Inotify { poll_secs } => format!("inotify + poll every {}", secs(*poll_secs)),
            Mode::Poll {
                interval_secs,
                reason,
                degraded,
            } => format!(
                "{}polling every {}{}",
                if *degraded { "degraded: " } else { "" },
                secs(*interval_secs),
                if reason.is_empty() {
                    String::new()
                } else {
                    format!(" ({reason})")
                }
            ),
            Mode::Disconnected { root, reason } => {
                format!("degraded: {root} disconnected ({reason}); its last known state is shown, stale")
            }
        }
    }

    /// A few words for a status line: `inotify + poll 30s`, `poll 10s`, `DEGRADED poll 30s`.
    pub fn short(&self) -> String {
        match self {
            Mode::Inotify { poll_secs } => format!("inotify + poll {poll_secs:.0}s"),
            Mode::Poll {
                interval_secs,
                degraded,
                ..
            } => format!(
                "{}poll {interval_secs:.0}s",
                if *degraded { "DEGRADED " } else { "" }
            ),
            Mode::Disconnected { .. } => "DEGRADED: a root is disconnected (stale)".into(),
        }
    }

    pub fn is_degraded(&self) -> bool {
        matches!(
            self,
            Mode::Poll { degraded: true, .. } | Mode::Disconnected { .. }
        )
    }
}

fn secs(s: f64) -> String {
    if s >= 1.0 && s.fract() == 0.0 {
        format!("{s:.0} s")
    } else {
        format!("{s} s")
    }
}
