//! The simulated trainer: plays a scenario's timeline into `<out>/checkpoint` with the
//! checkpoint writer (MindFormers' save protocol, real `.ckpt` files), narrating each event and
//! each save with MindFormers' answer at that moment, and checks the scenario's expectations.

use super::scenario::{Event, Expect, Scenario};
use super::{answer, summary};
use crate::job::JobFlags;
use crate::layout::mindformers::names::parse_ckpt_name;
use crate::resolve::mindformers::RankResult;
use crate::resolve::Analysis;
use crate::writer::run::{run_until, Launch};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How to play.
pub struct Play<'a> {
    pub root: PathBuf,
    pub scenario: &'a Scenario,
    /// Wall time per sink (0: as fast as possible).
    pub pace: Duration,
    /// Set (e.g. by Ctrl-c) to stop after the current save.
    pub stop: &'a AtomicBool,
    /// Presenter mode (the TUI demo): hold after each beat, cue the screen.
    pub presenter: Option<&'a super::Presenter>,
}

/// Where an event happened, for the screen to look: its rank and step.
fn focus_of(ev: &Event) -> Option<super::Cue> {
    let (rank, step) = match ev {
        Event::Delete { rank, step, .. }
        | Event::Truncate { rank, step, .. }
        | Event::Corrupt { rank, step, .. } => (*rank, Some(step.clone())),
        Event::RemoveMeta { rank, .. } => (*rank, None),
        Event::Kill { ranks, .. } => (
            ranks.as_ref().and_then(|r| r.first().copied()).unwrap_or(0),
            None,
        ),
        Event::Breakpoint { ranks, step, .. } => (
            ranks.as_ref().and_then(|r| r.first().copied()).unwrap_or(0),
            Some(step.clone()),
        ),
        _ => return None,
    };
    Some(super::Cue::Focus { rank, step })
}

/// One narrated line: what happened, and MindFormers' answer right after.
pub type Narrate<'a> = &'a mut dyn FnMut(&str);

impl Play<'_> {
    fn launch(&self, steps: i64, initial_step: i64, initial_epoch: i64, gbs: i64) -> Launch {
        let r = &self.scenario.run;
        Launch {
            ranks: r.ranks,
            prefix: r.prefix.clone(),
            sink_size: r.sink_size,
            save_steps: r.save_steps,
            keep_max: r.keep_max,
            steps,
            initial_step,
            initial_epoch,
            global_batch_size: Some(gbs),
            async_save: r.async_save,
            width: 1,
            pace: self.pace,
        }
    }

    /// The job's shape as flags (the scenario's world size and devices per node; a
    /// new-format run read as one from its first moment, when the folder is still empty).
    pub fn flags(&self) -> JobFlags {
        let new = self.scenario.run.layout == super::scenario::Layout::New;
        JobFlags {
            world_size: self.scenario.run.world_size,
            device_num_per_node: self.scenario.run.device_num_per_node,
            layout: new.then_some(crate::job::LayoutArg::New),
            ..Default::default()
        }
    }

    fn answer(&self, flags: &JobFlags) -> io::Result<Analysis> {
        answer(&self.root, flags).map_err(|e| io::Error::other(e.to_string()))
    }

    /// Play the timeline.
    pub fn play(&self, narrate: Narrate) -> io::Result<()> {
        if self.scenario.run.layout == super::scenario::Layout::New {
            return self.play_new(narrate);
        }
        let mut gbs = self.scenario.run.global_batch_size;
        self.drive(narrate, &mut |ev, narrate| {
            match ev {
                Event::Train { steps, .. } => {
                    self.train(&self.launch(*steps, 0, 0, gbs), narrate)?
                }
                Event::Resume {
                    steps,
                    global_batch_size,
                    ..
                } => {
                    let new_gbs = global_batch_size.unwrap_or(gbs);
                    self.resume(*steps, new_gbs, narrate)?;
                    gbs = new_gbs;
                }
                Event::Pause { seconds, .. } => {
                    if !self.pace.is_zero() {
                        self.pause(Duration::from_secs_f64(seconds.max(0.0)));
                    }
                }
                other => self.fault(other)?,
            }
            Ok(focus_of(ev))
        })
    }

    /// The timeline, whatever the layout: each event narrated and handed to `handle` (which
    /// returns where the screen should look), MindFormers' answer said after each fault, the
    /// beat held for the presenter; then the variations.
    pub(super) fn drive(
        &self,
        narrate: Narrate,
        handle: &mut dyn FnMut(&Event, Narrate) -> io::Result<Option<super::Cue>>,
    ) -> io::Result<()> {
        std::fs::create_dir_all(&self.root)?;
        for (i, ev) in self.scenario.timeline.iter().enumerate() {
            if self.stop.load(Ordering::Relaxed) {
                break;
            }
            narrate(&format!("▶ {}", ev.say().unwrap_or("next event")));
            let focus = handle(ev, &mut *narrate).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("timeline event {} ({}): {e}", i + 1, ev.kind()),
                )
            })?;
            if let Some(focus) = focus {
                self.cue(focus);
            }
            if !matches!(
                ev,
                Event::Train { .. } | Event::Resume { .. } | Event::Pause { .. }
            ) {
                narrate(&format!("  → {}", summary(&self.answer(&self.flags())?)));
            }
            self.hold();
        }
        self.variations(narrate);
        Ok(())
    }

    pub(super) fn cue(&self, c: super::Cue) {
        if let Some(p) = self.presenter {
            let _ = p.cues.send(c);
        }
    }

    /// In presenter mode, wait for the presenter's Space (or the `--auto` dwell) before the
    /// next beat, so each moment stays on screen as long as the story needs.
    pub(super) fn hold(&self) {
        let Some(p) = self.presenter else { return };
        self.cue(super::Cue::Waiting(true));
        match p.dwell {
            Some(d) => self.pause(d),
            None => {
                while !self.stop.load(Ordering::Relaxed) {
                    match p.next.recv_timeout(Duration::from_millis(50)) {
                        Ok(()) => break,
                        Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
                        Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return,
                    }
                }
            }
        }
        self.cue(super::Cue::Waiting(false));
    }

    /// In presenter mode, after the timeline: each `[[expect]]` that changes a setting, as
    /// simulated settings on the finished run, one beat each (the headless demo checks them).
    pub(super) fn variations(&self, narrate: Narrate) {
        if self.presenter.is_none() {
            return;
        }
        for x in self.scenario.expect.iter().filter(|x| {
            x.global_batch_size.is_some() || x.ignore_data_skip || x.data_skip_steps.is_some()
        }) {
            if self.stop.load(Ordering::Relaxed) {
                return;
            }
            use crate::sim::Edit;
            let mut edits = Vec::new();
            edits.extend(
                x.global_batch_size
                    .map(|value| Edit::SetGlobalBatchSize { value }),
            );
            if x.ignore_data_skip {
                edits.push(Edit::SetIgnoreDataSkip { value: true });
            }
            edits.extend(
                x.data_skip_steps
                    .map(|v| Edit::SetDataSkipSteps { value: Some(v) }),
            );
            let label = x.label.clone().unwrap_or_else(|| "a variation".into());
            narrate(&format!(
                "▶ what if: {label} (simulated: the files are unchanged)"
            ));
            self.cue(super::Cue::Simulate { label, edits });
            self.hold();
        }
    }

    /// Sleep `d`, waking every 50 ms to honour the stop flag.
    pub(super) fn pause(&self, d: Duration) {
        let end = std::time::Instant::now() + d;
        while !self.stop.load(Ordering::Relaxed) {
            let left = end.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                break;
            }
            std::thread::sleep(left.min(Duration::from_millis(50)));
        }
    }

    fn train(&self, launch: &Launch, narrate: Narrate) -> io::Result<()> {
        let mut failed = None;
        run_until(&self.root, launch, self.stop, |s| {
            let text = match self.answer(&self.flags()) {
                Ok(a) => summary(&a),
                Err(e) => {
                    failed = Some(e);
                    return false;
                }
            };
            narrate(&format!(
                "  step {:>4}: saved {} on every rank → {text}",
                s.step_num, s.file
            ));
            !self.stop.load(Ordering::Relaxed)
        })?;
        failed.map_or(Ok(()), Err)
    }

    /// A new launch from where MindFormers would resume (its pick and its data-skip arithmetic).
    fn resume(&self, steps: i64, gbs: i64, narrate: Narrate) -> io::Result<()> {
        let a = self.answer(&JobFlags {
            global_batch_size: Some(gbs),
            ..self.flags()
        })?;
        match (a.mindformers.per_rank.first(), &a.data_skip) {
            (Some(RankResult::File(_)), Some(d)) => {
                let (step, epoch) = (d.initial_step.unwrap_or(0), d.initial_epoch.unwrap_or(0));
                narrate(&format!(
                    "  resuming at step {step} (epoch {epoch}), global batch size {gbs}"
                ));
                self.train(&self.launch(steps, step, epoch, gbs), narrate)
            }
            _ => {
                narrate(&format!("  MindFormers cannot resume: {}", summary(&a)));
                Ok(())
            }
        }
    }

    fn fault(&self, ev: &Event) -> io::Result<()> {
        let ranks = |sel: &Option<Vec<u64>>| {
            sel.clone()
                .unwrap_or_else(|| (0..self.scenario.run.ranks).collect())
        };
        match ev {
            Event::Kill { ranks: sel, .. } => {
                for r in ranks(sel) {
                    if let Some((prefix, e, s)) = newest(&self.rank_dir(r)) {
                        let next = e
                            + (self.scenario.run.save_steps / self.scenario.run.sink_size.max(1))
                                .max(1) as u64;
                        std::fs::write(
                            self.rank_dir(r).join(format!("{prefix}-{next}_{s}.tmp")),
                            vec![0x0a; 4096],
                        )?;
                    }
                }
            }
            Event::Delete { rank, step, .. } => std::fs::remove_file(self.shard(*rank, step)?)?,
            Event::Truncate {
                rank, step, bytes, ..
            } => with_write(&self.shard(*rank, step)?, |f| {
                // a truncation only shortens: a length past the end would grow the file
                let len = f.metadata()?.len();
                if *bytes >= len {
                    return Err(io::Error::other(format!(
                        "truncate to {bytes} bytes: the shard has only {len}; choose a smaller length"
                    )));
                }
                f.set_len(*bytes)
            })?,
            Event::Corrupt {
                rank, step, offset, ..
            } => with_write(&self.shard(*rank, step)?, |f| flip(f, *offset))?,
            Event::RemoveMeta { rank, .. } => {
                std::fs::remove_file(self.rank_dir(*rank).join("meta.json"))?
            }
            Event::Breakpoint {
                ranks: sel, step, ..
            } => {
                for r in ranks(sel) {
                    let src = self.shard(r, step)?;
                    let name = src
                        .file_name()
                        .map(|n| n.to_string_lossy().replace(".ckpt", "_breakpoint.ckpt"))
                        .unwrap_or_default();
                    std::fs::copy(&src, self.rank_dir(r).join(name))?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn rank_dir(&self, r: u64) -> PathBuf {
        self.root.join(format!("rank_{r}"))
    }

    /// Rank `r`'s file of step `E_S` (the newest restart that has it).
    fn shard(&self, r: u64, step: &str) -> io::Result<PathBuf> {
        let dir = self.rank_dir(r);
        let mut best: Option<(u64, String)> = None;
        for e in std::fs::read_dir(&dir)? {
            let name = e?.file_name().to_string_lossy().into_owned();
            if let Some(n) =
                parse_ckpt_name(&name).filter(|n| format!("{}_{}", n.epoch, n.step) == step)
            {
                if best.as_ref().is_none_or(|b| n.restart >= b.0) {
                    best = Some((n.restart, name));
                }
            }
        }
        best.map(|(_, n)| dir.join(n)).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("{}: no shard of step {step}", dir.display()),
            )
        })
    }

    /// Check every expectation; returns `(label, passed, explanation)`.
    pub fn check(&self) -> Vec<(String, bool, String)> {
        self.scenario
            .expect
            .iter()
            .enumerate()
            .map(|(i, x)| self.check_one(i, x))
            .collect()
    }

    fn check_one(&self, i: usize, x: &Expect) -> (String, bool, String) {
        let label = x
            .label
            .clone()
            .unwrap_or_else(|| format!("check {}", i + 1));
        let flags = JobFlags {
            global_batch_size: x.global_batch_size,
            ignore_data_skip: x.ignore_data_skip,
            data_skip_steps: x.data_skip_steps,
            ..self.flags()
        };
        if self.scenario.run.layout == super::scenario::Layout::New {
            return self.check_new(label, x, &flags);
        }
        let a = match self.answer(&flags) {
            Ok(a) => a,
            Err(e) => return (label, false, format!("no answer: {e}")),
        };
        let mf = match a.mindformers.per_rank.first() {
            Some(RankResult::File(f)) => f.clone(),
            Some(RankResult::Newest) => "newest".into(),
            Some(RankResult::Off) => "off".into(),
            Some(RankResult::Error(e)) => format!("error: {}", e.first_line()),
            Some(RankResult::Unknown(why)) => format!("unknown: {why}"),
            None => "-".into(),
        };
        let safe = a
            .safe
            .outcome
            .pick
            .as_ref()
            .map_or("none".to_owned(), |p| p.config.resume_training.clone());
        let d = a.data_skip.as_ref();
        let mf_ok = if let Some(text) = x.mindformers.strip_prefix("error: ") {
            mf.starts_with("error:") && mf.contains(text)
        } else {
            mf == x.mindformers
        };
        let ok = mf_ok
            && x.safe.as_ref().is_none_or(|s| *s == safe)
            && x.skip
                .is_none_or(|v| d.and_then(|d| d.skip_batches) == Some(v))
            && x.first_printed
                .is_none_or(|v| d.and_then(|d| d.first_printed_step) == Some(v));
        let o = |v: Option<i64>| v.map_or("?".to_owned(), |v| v.to_string());
        let got = format!(
            "MindFormers {mf}; safe {safe}; skip {}; first printed {}",
            o(d.and_then(|d| d.skip_batches)),
            o(d.and_then(|d| d.first_printed_step))
        );
        (label, ok, got)
    }
}

/// `(per-rank prefix, epoch, step)` of the newest canonical file in a folder.
fn newest(dir: &Path) -> Option<(String, u64, u64)> {
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter_map(|e| parse_ckpt_name(&e.file_name().to_string_lossy()))
        .max_by_key(|n| (n.restart, n.epoch, n.step))
        .map(|n| (n.prefix(), n.epoch, n.step))
}

/// Open a read-only (0400) checkpoint for writing just long enough to damage it.
pub(super) fn with_write(
    p: &Path,
    f: impl FnOnce(&std::fs::File) -> io::Result<()>,
) -> io::Result<()> {
    let mode = std::fs::metadata(p)?.permissions().mode();
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode | 0o200))?;
    let r = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(p)
        .and_then(|file| f(&file));
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))?;
    r
}

pub(super) fn flip(f: &std::fs::File, offset: u64) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, offset)?;
    f.write_all_at(&[b[0] ^ 0x55], offset)
}
