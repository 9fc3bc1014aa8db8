//! A training launch in graph sink mode, as MindSpore drives `CheckpointMonitor` (spec §2.3,
//! §4.4): one `step_end` per sink, `cur_epoch_num = initial_epoch + k`, a save whenever
//! `cur_step_num >= last_saved + save_checkpoint_steps`, and a forced save at `end()` when the
//! last step was not saved. All ranks advance in lockstep.

use super::tree::{RankWriter, SaveConfig};
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

/// One launch of a run.
#[derive(Clone, Debug)]
pub struct Launch {
    pub ranks: u64,
    pub prefix: String,
    pub sink_size: i64,
    pub save_steps: i64,
    pub keep_max: usize,
    /// Steps of this launch (a multiple of the sink size).
    pub steps: i64,
    pub initial_step: i64,
    pub initial_epoch: i64,
    pub global_batch_size: Option<i64>,
    pub async_save: bool,
    pub width: u64,
    /// Wall time per sink (0: as fast as possible). Saves then run on all ranks at once, each
    /// starting after a random delay of up to half a sink, like real ranks.
    pub pace: std::time::Duration,
}

impl Launch {
    /// The spec's seed walkthrough: 4 ranks, sink 2, save every 10 steps, keep 3, 40 steps.
    pub fn seed() -> Self {
        Launch {
            ranks: 4,
            prefix: "llama3_1_8b".into(),
            sink_size: 2,
            save_steps: 10,
            keep_max: 3,
            steps: 40,
            initial_step: 0,
            initial_epoch: 0,
            global_batch_size: Some(8),
            async_save: false,
            width: 1,
            pace: std::time::Duration::ZERO,
        }
    }
}

/// What was just saved (on every rank).
#[derive(Clone, Debug, PartialEq)]
pub struct Saved {
    pub epoch: i64,
    pub step_in_epoch: i64,
    pub step_num: i64,
    pub local_step: i64,
    /// Rank 0's file name.
    pub file: String,
}

/// Run `launch` into `root` (the `checkpoint/` folder), calling `on_save` after each save.
/// `on_save` returning `false` kills the launch right there (no `end()`).
pub fn run(root: &Path, launch: &Launch, on_save: impl FnMut(&Saved) -> bool) -> io::Result<()> {
    run_until(root, launch, &AtomicBool::new(false), on_save)
}

/// [`run`], stopping at the next sink once `stop` is set (a paced launch sleeps a sink at a
/// time, so Ctrl-c or SIGTERM is honoured within one sink, not at the next save).
pub fn run_until(
    root: &Path,
    launch: &Launch,
    stop: &AtomicBool,
    mut on_save: impl FnMut(&Saved) -> bool,
) -> io::Result<()> {
    let cfg = SaveConfig {
        prefix: launch.prefix.clone(),
        keep_max: launch.keep_max,
        async_meta: launch.async_save,
        global_batch_size: launch.global_batch_size,
        width: launch.width,
    };
    let resumed = launch.initial_step > 0;
    let mut writers = (0..launch.ranks)
        .map(|r| {
            let mut w = RankWriter::new(root, r, cfg.clone())?;
            w.set_resumed(w.resumed || resumed);
            Ok(w)
        })
        .collect::<io::Result<Vec<_>>>()?;
    let s = launch.sink_size.max(1);
    let mut last_saved = 0;
    let mut local = 0;
    for k in 1..=(launch.steps / s) {
        std::thread::sleep(launch.pace);
        if stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        local = k * s;
        let epoch = launch.initial_epoch + k;
        for w in writers.iter_mut() {
            w.step_end()?;
        }
        if local >= last_saved + launch.save_steps {
            last_saved = local;
            if !save_all(
                &mut writers,
                epoch,
                s,
                launch.initial_step + local,
                local,
                launch.pace,
                &mut on_save,
            )? {
                return Ok(());
            }
        }
    }
    if local > last_saved {
        let epoch = launch.initial_epoch + local / s;
        save_all(
            &mut writers,
            epoch,
            s,
            launch.initial_step + local,
            local,
            launch.pace,
            &mut on_save,
        )?;
    }
    Ok(())
}

fn save_all(
    writers: &mut [RankWriter],
    epoch: i64,
    s: i64,
    step_num: i64,
    local: i64,
    pace: std::time::Duration,
    on_save: &mut impl FnMut(&Saved) -> bool,
) -> io::Result<bool> {
    if pace.is_zero() {
        for w in writers.iter_mut() {
            w.save(epoch, s, step_num)?;
        }
    } else {
        // every rank saves on its own thread after its own small delay
        let results: Vec<io::Result<std::path::PathBuf>> = std::thread::scope(|sc| {
            let handles: Vec<_> = writers
                .iter_mut()
                .map(|w| {
                    let delay = pace.mul_f64(jitter(w.rank, step_num) * 0.5);
                    sc.spawn(move || {
                        std::thread::sleep(delay);
                        w.save(epoch, s, step_num)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(io::Error::other("a rank's writer panicked")))
                })
                .collect()
        });
        for r in results {
            r?;
        }
    }
    let file = writers
        .first()
        .map(|w| w.file_name(epoch, s))
        .unwrap_or_default();
    Ok(on_save(&Saved {
        epoch,
        step_in_epoch: s,
        step_num,
        local_step: local,
        file,
    }))
}

/// A deterministic pseudo-random fraction in [0, 1) per rank and step.
fn jitter(rank: u64, step: i64) -> f64 {
    let mut x = rank.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (step as u64).wrapping_mul(0xD1B5_4A32_D192_ED03)
        | 1;
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    (x >> 11) as f64 / (1u64 << 53) as f64
}
