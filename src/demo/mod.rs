//! `ckptscope demo`: scenarios ([`scenario`]) played by a simulated trainer ([`trainer`]) into a
//! fresh folder, with MindFormers' answer after every save and the outcome each scenario
//! states checked at the end. The answers come from a session, as in every command.

pub mod scenario;
pub mod trainer;
pub mod trainer_new;

/// What the demo's trainer tells the TUI besides its narration lines.
#[derive(Clone, Debug, PartialEq)]
pub enum Cue {
    /// A narration line (a beat's title starts with `▶`).
    Say(String),
    /// Look here: the rank (and step `E_S`) an event just changed.
    Focus { rank: u64, step: Option<String> },
    /// The trainer waits for the presenter (Space), or goes on.
    Waiting(bool),
    /// A variation of the finished run, shown as simulated settings.
    Simulate {
        label: String,
        edits: Vec<crate::sim::Edit>,
    },
}

/// Presenter mode: the trainer holds after each beat until the presenter presses Space
/// (`next`), or for `dwell` with `--auto`, and cues the screen.
pub struct Presenter {
    pub next: crossbeam_channel::Receiver<()>,
    pub dwell: Option<std::time::Duration>,
    pub cues: crossbeam_channel::Sender<Cue>,
}

use crate::fsys::RealFs;
use crate::job::{Environment, JobContext, JobError, JobFlags};
use crate::resolve::mindformers::RankResult;
use crate::resolve::Analysis;
use crate::session::Session;
use std::path::Path;
use std::sync::Arc;

/// The demo job's context: the scenario's shape given as flags, and an empty environment (so
/// that the user's `RANK_SIZE` or `SHARED_PATHS` cannot change what the demo shows), gathered
/// the same way as every command's.
pub fn job_context(root: &Path, flags: &JobFlags) -> Result<JobContext, JobError> {
    let cwd = root.parent().unwrap_or(Path::new("/"));
    JobContext::gather(
        &RealFs,
        &Environment::with(&[], cwd),
        root.as_os_str(),
        flags,
    )
}

/// MindFormers' answer, the data skip and the safe pick for the demo folder `root`.
pub fn answer(root: &Path, flags: &JobFlags) -> Result<Analysis, JobError> {
    let ctx = job_context(root, flags)?;
    Ok(Session::open(Arc::new(RealFs), ctx).analysis().clone())
}

/// One line: rank 0's pick, data skip and first printed step.
pub fn summary(a: &Analysis) -> String {
    if let Some(n) = &a.newfmt {
        return trainer_new::new_summary(n);
    }
    let pick = match a.mindformers.per_rank.first() {
        Some(RankResult::File(f)) => f.clone(),
        Some(RankResult::Newest) => "newest by mtime".into(),
        Some(RankResult::Off) => "no resume".into(),
        Some(RankResult::Error(e)) => format!("{}: {}", e.class, e.first_line()),
        Some(RankResult::Unknown(why)) => format!("ckptscope cannot tell ({why})"),
        None => "-".into(),
    };
    let d = a.data_skip.as_ref();
    let o = |v: Option<i64>| v.map_or("?".into(), |v| v.to_string());
    format!(
        "resume from {pick}; data skip {}; first printed step {}",
        o(d.and_then(|d| d.skip_batches)),
        o(d.and_then(|d| d.first_printed_step))
    )
}
