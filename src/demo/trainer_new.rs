//! The simulated trainer in MindFormers' new checkpoint format: saves written by
//! [`crate::writer::newfmt`] (the measured protocol), faults as a killed job leaves them — mid
//! save, before the tracker write, an asynchronous save lagging —, resumes from where
//! MindFormers would (its `common.json` arithmetic in f64), and the same narration and checks
//! as the legacy trainer.

use super::scenario::{Event, Expect};
use super::trainer::{Narrate, Play};
use crate::job::JobFlags;
use crate::layout::mindformers_new::analysis::{NewAnalysis, RankAnswer, UNREAD};
use crate::layout::mindformers_new::tracker::iteration_dir;
use crate::py::int::PyInt;
use crate::writer::newfmt::{save, Fault, NewJob};
use std::io;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Where the run is: the last iteration saved and the batch size in force.
struct RunState {
    last: u64,
    gbs: i64,
    /// This launch's saves (rotation deletes only these: a resume starts a new list).
    launch: Vec<u64>,
}

/// The folder name of iteration `n`.
pub fn folder(n: u64) -> String {
    iteration_dir(&PyInt::from_i64(n as i64))
}

/// MindFormers' answer for rank 0 in words: the folder and step, or the stage's error.
pub fn pick_text(n: &NewAnalysis) -> String {
    match n.per_rank.first() {
        Some(RankAnswer::Loads {
            load_path: None, ..
        }) => "nothing (a fresh start)".into(),
        Some(RankAnswer::Loads {
            load_path: Some(p),
            initial_step,
            ..
        }) => format!(
            "{} (step {initial_step})",
            p.trim_end_matches('/').rsplit('/').next().unwrap_or(p)
        ),
        // an input ckptscope did not read: no answer, not MindFormers' error
        Some(RankAnswer::Raises { error, .. }) if error.class == UNREAD => {
            format!("UNKNOWN ({})", error.message)
        }
        Some(RankAnswer::Raises { error, .. }) => format!(
            "{}: {} (at the {} stage)",
            error.class, error.message, error.stage
        ),
        None => "-".into(),
    }
}

impl Play<'_> {
    fn new_job(&self, gbs: i64) -> NewJob {
        let r = &self.scenario.run;
        NewJob {
            ranks: r.ranks,
            prefix: r.prefix.clone(),
            global_batch_size: gbs,
            save_max: r.keep_max,
            steps_per_epoch: 5,
        }
    }

    fn new_answer(&self, flags: &JobFlags) -> io::Result<NewAnalysis> {
        let a = super::answer(&self.root, flags).map_err(|e| io::Error::other(e.to_string()))?;
        a.newfmt
            .map(|n| *n)
            .ok_or_else(|| io::Error::other("the demo folder is not read as the new format"))
    }

    /// Play the timeline of a new-format scenario.
    pub(super) fn play_new(&self, narrate: Narrate) -> io::Result<()> {
        let mut st = RunState {
            last: 0,
            gbs: self.scenario.run.global_batch_size,
            launch: Vec::new(),
        };
        self.drive(narrate, &mut |ev, narrate| {
            self.new_event(ev, &mut st, narrate)?;
            Ok(self.new_focus(ev, &st))
        })
    }

    fn new_event(&self, ev: &Event, st: &mut RunState, narrate: Narrate) -> io::Result<()> {
        match ev {
            Event::Train { steps, .. } => self.train_new(0, *steps, st, narrate),
            Event::Resume {
                steps,
                global_batch_size,
                ..
            } => {
                let gbs = global_batch_size.unwrap_or(st.gbs);
                let n = self.new_answer(&JobFlags {
                    global_batch_size: Some(gbs),
                    ..self.flags()
                })?;
                match n.per_rank.first() {
                    Some(RankAnswer::Loads {
                        load_path: Some(_),
                        initial_step,
                        ..
                    }) => {
                        let from: u64 = initial_step.parse().unwrap_or(0);
                        narrate(&format!(
                            "  resuming at step {from}, global batch size {gbs}"
                        ));
                        st.gbs = gbs;
                        st.launch.clear(); // a new launch: its own rotation list
                        self.train_new(from, *steps, st, narrate)
                    }
                    _ => {
                        narrate(&format!("  MindFormers cannot resume: {}", pick_text(&n)));
                        Ok(())
                    }
                }
            }
            Event::Pause { seconds, .. } => {
                if !self.pace.is_zero() {
                    self.pause(Duration::from_secs_f64(seconds.max(0.0)));
                }
                Ok(())
            }
            Event::Kill { ranks, .. } => {
                let rank = ranks.as_ref().and_then(|r| r.first().copied()).unwrap_or(0);
                self.faulty_save(st, Fault::MidSave { rank })
            }
            Event::KillBeforeTracker { .. } => self.faulty_save(st, Fault::BeforeTracker),
            Event::AsyncLag { .. } => {
                let previous = (st.last > 0).then_some(st.last);
                self.faulty_save(st, Fault::AsyncLag { previous })
            }
            Event::Delete { rank, step, .. } => std::fs::remove_file(self.new_shard(*rank, step)?),
            Event::Truncate {
                rank, step, bytes, ..
            } => super::trainer::with_write(&self.new_shard(*rank, step)?, |f| {
                let len = f.metadata()?.len();
                if *bytes >= len {
                    return Err(io::Error::other(format!(
                        "truncate to {bytes} bytes: the shard has only {len}; choose a smaller length"
                    )));
                }
                f.set_len(*bytes)
            }),
            Event::Corrupt {
                rank, step, offset, ..
            } => super::trainer::with_write(&self.new_shard(*rank, step)?, |f| {
                super::trainer::flip(f, *offset)
            }),
            Event::RemoveMeta { .. } | Event::Breakpoint { .. } => Err(io::Error::other(
                "not an event of the new format (no meta.json, no exception saves)",
            )),
        }
    }

    /// The next save (one `save_steps` on), stopped where `fault` says.
    fn faulty_save(&self, st: &mut RunState, fault: Fault) -> io::Result<()> {
        st.last += self.scenario.run.save_steps.max(1) as u64;
        save(
            &self.root,
            &self.new_job(st.gbs),
            st.last,
            fault,
            &mut st.launch,
        )?;
        Ok(())
    }

    /// Train `steps` steps from step `from`, saving every `save_steps` (the iteration is the
    /// step), narrating MindFormers' answer after each save.
    fn train_new(
        &self,
        from: u64,
        steps: i64,
        st: &mut RunState,
        narrate: Narrate,
    ) -> io::Result<()> {
        let r = &self.scenario.run;
        let every = r.save_steps.max(1) as u64;
        let job = self.new_job(st.gbs);
        let sinks = (every / r.sink_size.max(1) as u64).max(1) as u32;
        for k in 1..=(steps.max(0) as u64 / every) {
            if self.stop.load(Ordering::Relaxed) {
                break;
            }
            if !self.pace.is_zero() {
                self.pause(self.pace * sinks);
            }
            let it = from + k * every;
            save(&self.root, &job, it, Fault::None, &mut st.launch)?;
            st.last = it;
            let n = self.new_answer(&self.flags())?;
            narrate(&format!(
                "  step {it:>4}: saved {} on every rank → {}",
                folder(it),
                new_summary(&n)
            ));
        }
        Ok(())
    }

    /// Rank `rank`'s model shard of iteration `step` (a number, as events name it).
    fn new_shard(&self, rank: u64, step: &str) -> io::Result<PathBuf> {
        let n: u64 = step.parse().map_err(|_| {
            io::Error::other(format!(
                "step {step:?}: a new-format event names an iteration number, e.g. \"30\""
            ))
        })?;
        let p = self
            .root
            .join(folder(n))
            .join(self.new_job(0).shard("model", rank));
        match p.exists() {
            true => Ok(p),
            false => Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{}: no such shard", p.display()),
            )),
        }
    }

    fn new_focus(&self, ev: &Event, st: &RunState) -> Option<super::Cue> {
        let (rank, step) = match ev {
            Event::Delete { rank, step, .. }
            | Event::Truncate { rank, step, .. }
            | Event::Corrupt { rank, step, .. } => (*rank, step.clone()),
            Event::Kill { ranks, .. } => (
                ranks.as_ref().and_then(|r| r.first().copied()).unwrap_or(0),
                st.last.to_string(),
            ),
            Event::KillBeforeTracker { .. } | Event::AsyncLag { .. } => (0, st.last.to_string()),
            _ => return None,
        };
        Some(super::Cue::Focus {
            rank,
            step: Some(step),
        })
    }

    /// One new-format expectation: MindFormers' folder (or `error: …`), the safe folder, the
    /// data skip.
    pub(super) fn check_new(
        &self,
        label: String,
        x: &Expect,
        flags: &JobFlags,
    ) -> (String, bool, String) {
        let n = match self.new_answer(flags) {
            Ok(n) => n,
            Err(e) => return (label, false, format!("no answer: {e}")),
        };
        let mf = match n.per_rank.first() {
            Some(RankAnswer::Loads {
                load_path: Some(p), ..
            }) => p
                .trim_end_matches('/')
                .rsplit('/')
                .next()
                .unwrap_or(p)
                .to_owned(),
            Some(RankAnswer::Loads {
                load_path: None, ..
            }) => "off".into(),
            Some(RankAnswer::Raises { error, .. }) if error.class == UNREAD => {
                format!("unknown: {}", error.message)
            }
            Some(RankAnswer::Raises { error, .. }) => {
                format!("error: {}: {}", error.class, error.message)
            }
            None => "-".into(),
        };
        let safe = n
            .safe
            .as_ref()
            .map_or("none".to_owned(), |s| s.folder.clone());
        let skip: Option<i64> = n.skip.as_deref().and_then(|s| s.parse().ok());
        let mf_ok = match x.mindformers.strip_prefix("error: ") {
            Some(text) => mf.starts_with("error:") && mf.contains(text),
            None => mf == x.mindformers,
        };
        let ok = mf_ok
            && x.safe.as_ref().is_none_or(|s| *s == safe)
            && x.skip.is_none_or(|v| skip == Some(v));
        let got = format!(
            "MindFormers {mf}; safe {safe}; skip {}",
            skip.map_or("-".to_owned(), |v| v.to_string())
        );
        (label, ok, got)
    }
}

/// One line: rank 0's pick, the data skip and the safe folder.
pub fn new_summary(n: &NewAnalysis) -> String {
    let skip = n.skip.as_deref().unwrap_or("-");
    let safe = n
        .safe
        .as_ref()
        .map_or("none".to_owned(), |s| s.folder.clone());
    format!(
        "resume from {}; data skip {skip}; safe {safe}",
        pick_text(n)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::mindformers_new::analysis::StageError;

    fn answer(first: RankAnswer) -> NewAnalysis {
        NewAnalysis {
            load_path: "ckpt".into(),
            world_size: 1,
            load_ckpt_format: "safetensors".into(),
            no_load_optim: false,
            health: false,
            tracker: None,
            per_rank: vec![first],
            skip: None,
            iterations: Vec::new(),
            safe: None,
            warnings: Vec::new(),
            notes: Vec::new(),
            unknown: None,
        }
    }

    /// The demo's line for an unread rank says UNKNOWN, not an error of class "ckptscope".
    #[test]
    fn an_unread_rank_is_unknown_in_the_demos_words() {
        let raises = |class: &str| RankAnswer::Raises {
            rank: 0,
            error: StageError {
                stage: "weights",
                class: class.into(),
                message: "iteration_8/model.safetensors was not read".into(),
            },
        };
        assert_eq!(
            pick_text(&answer(raises(UNREAD))),
            "UNKNOWN (iteration_8/model.safetensors was not read)"
        );
        assert!(pick_text(&answer(raises("ValueError"))).starts_with("ValueError: "));
    }
}
