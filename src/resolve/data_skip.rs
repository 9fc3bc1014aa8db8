//! Data skipping and the first printed step after a resume (spec §8), with MindSpore's float32
//! arithmetic: `initial_step = trunc(f32(step_num) × f32(old_gbs / new_gbs))`, so steps above
//! 2^24 are rounded even when the batch size is unchanged.

use serde::Serialize;

/// Everything the arithmetic needs; `None` means "unknown".
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SkipInputs {
    /// Stored in the resumed checkpoint.
    pub step_num: Option<i64>,
    pub epoch_num: Option<i64>,
    pub stored_global_batch_size: Option<i64>,
    /// The new run's global batch size.
    pub new_global_batch_size: Option<i64>,
    /// `Some(s)` in sink mode with sink size `s`; `Some(0)` means non-sink.
    pub sink_size: Option<i64>,
    pub dataset_size: Option<i64>,
    pub ignore_data_skip: bool,
    /// `data_skip_steps` (0 or absent: use the initial step).
    pub data_skip_steps: Option<i64>,
}

/// The result; fields are `None` when an input they need is unknown.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct DataSkip {
    pub scale: Option<f64>,
    pub initial_step: Option<i64>,
    pub initial_epoch: Option<i64>,
    /// Batches (of the new size) the dataset skips.
    pub skip_batches: Option<i64>,
    pub first_printed_step: Option<i64>,
}

/// `float(old) / new` in f64, the way Python computes the scale (1.0 without a stored size).
pub fn scale(stored: Option<i64>, new: Option<i64>) -> Option<f64> {
    match (stored, new) {
        (None, _) => Some(1.0),
        (Some(_), None) => None,
        (Some(_), Some(0)) => None,
        (Some(old), Some(new)) => Some(old as f64 / new as f64),
    }
}

/// `int(Tensor(v, int64) * scale)` in MindSpore: both operands rounded to f32, product in f32,
/// truncated toward zero.
pub fn f32_scaled(v: i64, scale: f64) -> i64 {
    ((v as f32) * (scale as f32)) as i64
}

pub fn compute(i: &SkipInputs) -> DataSkip {
    let scale = scale(i.stored_global_batch_size, i.new_global_batch_size);
    let initial_step = match (i.step_num, scale) {
        (Some(s), Some(k)) => Some(f32_scaled(s, k)),
        (None, _) => Some(0),
        _ => None,
    };
    let initial_epoch = initial_epoch(i, scale, initial_step);
    let manual = i.data_skip_steps.filter(|n| *n != 0);
    let skip_batches = if i.ignore_data_skip {
        Some(0)
    } else {
        match manual {
            Some(n) => Some(n.max(0)),
            None => initial_step.map(|s| s.max(0)),
        }
    };
    let first_printed_step = first_printed(i, initial_step);
    DataSkip {
        scale,
        initial_step,
        initial_epoch,
        skip_batches,
        first_printed_step,
    }
}

fn initial_epoch(i: &SkipInputs, scale: Option<f64>, initial_step: Option<i64>) -> Option<i64> {
    let Some(epoch) = i.epoch_num else {
        return Some(0);
    };
    match i.sink_size? {
        0 => {
            let (step, ds) = (initial_step?, i.dataset_size?);
            if ds <= 0 {
                return None;
            }
            Some(epoch - i64::from(step.rem_euclid(ds) != 0))
        }
        _ => Some(f32_scaled(epoch, scale?)),
    }
}

/// The first step `MFLossMonitor` prints: `((local + initial_step − 1) mod dataset_size) + 1` at
/// the first `step_end` (`local` = sink size in sink mode, 1 otherwise). An unknown dataset size
/// is taken as larger than the step (the usual case for a resume within the first epoch).
fn first_printed(i: &SkipInputs, initial_step: Option<i64>) -> Option<i64> {
    let local = match i.sink_size? {
        0 => 1,
        s => s,
    };
    let n = local + initial_step? - 1;
    Some(match i.dataset_size {
        Some(ds) if ds > 0 => n.rem_euclid(ds) + 1,
        _ => n + 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float32_table_from_the_spec() {
        let rows = [
            (80, 8, 3, 213),
            (100000003, 8, 3, 266666672),
            (16777217, 8, 8, 16777216),
            (40, 8, 16, 20),
            (33, 8, 16, 16),
            (7, 3, 2, 10),
            (1000001, 7, 3, 2333335),
        ];
        for (step, old, new, want) in rows {
            assert_eq!(
                f32_scaled(step, scale(Some(old), Some(new)).unwrap()),
                want,
                "{step} {old}->{new}"
            );
        }
    }

    fn seed(step: i64, epoch: i64) -> SkipInputs {
        SkipInputs {
            step_num: Some(step),
            epoch_num: Some(epoch),
            stored_global_batch_size: Some(8),
            new_global_batch_size: Some(8),
            sink_size: Some(2),
            ..Default::default()
        }
    }

    #[test]
    fn seed_examples() {
        let d = compute(&seed(40, 20));
        assert_eq!(
            (
                d.initial_step,
                d.initial_epoch,
                d.skip_batches,
                d.first_printed_step
            ),
            (Some(40), Some(20), Some(40), Some(42))
        );
        let d = compute(&seed(30, 15));
        assert_eq!((d.skip_batches, d.first_printed_step), (Some(30), Some(32)));
        let d = compute(&SkipInputs {
            new_global_batch_size: Some(16),
            ..seed(40, 20)
        });
        assert_eq!(
            (
                d.initial_step,
                d.initial_epoch,
                d.skip_batches,
                d.first_printed_step
            ),
            (Some(20), Some(10), Some(20), Some(22))
        );
        let d = compute(&SkipInputs {
            ignore_data_skip: true,
            ..seed(40, 20)
        });
        assert_eq!((d.skip_batches, d.first_printed_step), (Some(0), Some(42)));
        let d = compute(&SkipInputs {
            data_skip_steps: Some(2),
            ..seed(40, 20)
        });
        assert_eq!((d.skip_batches, d.first_printed_step), (Some(2), Some(42)));
        let d = compute(&SkipInputs {
            new_global_batch_size: Some(3),
            ..seed(80, 40)
        });
        assert_eq!((d.initial_step, d.initial_epoch), (Some(213), Some(106)));
    }

    #[test]
    fn non_sink_mid_epoch() {
        let d = compute(&SkipInputs {
            step_num: Some(25),
            epoch_num: Some(2),
            sink_size: Some(0),
            dataset_size: Some(20),
            ..Default::default()
        });
        assert_eq!(
            (d.initial_step, d.initial_epoch, d.first_printed_step),
            (Some(25), Some(1), Some(6))
        );
    }
}
