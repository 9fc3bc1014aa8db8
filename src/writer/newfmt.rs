//! Saves in MindFormers' new checkpoint format, in the order and with the intermediate names
//! `mindformers-new-format.md` §5.2–§5.3 measured: the folder made, each rank's model then
//! optimizer shard as `<name>.tmp` renamed to `.safetensors` (chmod 0400), `common.json` and
//! (more than one rank) `metadata.json` through a `tmpXXXXXXXX` file replaced into place, then
//! the tracker rewritten in place (truncated first, so it is briefly empty), then the rotation
//! (`rmtree` of the oldest folders beyond `save_max`). The demo's trainer and the watch tests
//! replay it; a [`Fault`] stops it where a killed job stops.

use crate::layout::mindformers_new::tracker::{iteration_dir, TRACKER};
use crate::py::int::PyInt;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// One new-format job's saving settings.
#[derive(Clone, Debug, PartialEq)]
pub struct NewJob {
    pub ranks: u64,
    pub prefix: String,
    pub global_batch_size: i64,
    /// Folders kept (`save_max`); older ones are deleted after each save.
    pub save_max: usize,
    /// Steps per epoch (for `epoch_num`).
    pub steps_per_epoch: u64,
}

impl NewJob {
    pub fn demo(ranks: u64) -> NewJob {
        NewJob {
            ranks,
            prefix: "llama".into(),
            global_batch_size: 8,
            save_max: 3,
            steps_per_epoch: 5,
        }
    }

    /// Rank `rank`'s shard name of kind `model` or `opt`.
    pub fn shard(&self, kind: &str, rank: u64) -> String {
        format!(
            "{}-{kind}-{rank:07}-{:07}.safetensors",
            self.prefix, self.ranks
        )
    }
}

/// Where a save stops (a job killed there).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    None,
    /// Rank `rank` is killed while writing its optimizer shard: a half-written `.tmp` stays
    /// (and, unless it is rank 0, `common.json` and `metadata.json` are written meanwhile).
    MidSave {
        rank: u64,
    },
    /// Rank 0 is killed just before writing the tracker: the folder is complete, the tracker
    /// still names the previous save.
    BeforeTracker,
    /// An asynchronous save: the tracker is written with the *previous* iteration (the
    /// finaliser of the last save runs at the next one) and this save's optimizer shards are
    /// still `.tmp` when the job dies.
    AsyncLag {
        previous: Option<u64>,
    },
}

/// The tensors of rank `rank`'s model shard: a replicated `lm_head.weight` and the rank's own
/// slice of one layer (names sorted, as safetensors stores them).
fn model_tensors(rank: u64) -> Vec<(String, Vec<f32>)> {
    vec![
        ("lm_head.weight".into(), vec![0.5; 16]),
        (
            format!("model.layers.{rank}.attention.wq.weight"),
            vec![rank as f32; 8],
        ),
    ]
}

fn opt_tensors(rank: u64) -> Vec<(String, Vec<f32>)> {
    model_tensors(rank)
        .into_iter()
        .flat_map(|(n, v)| {
            [
                (format!("adam_m.{n}"), v.clone()),
                (format!("adam_v.{n}"), v),
            ]
        })
        .collect()
}

/// A safetensors file of f32 tensors with `__metadata__` `{"format": "ms"}`.
fn safetensors_bytes(tensors: &[(String, Vec<f32>)]) -> io::Result<Vec<u8>> {
    let bytes: Vec<(String, Vec<u8>, usize)> = tensors
        .iter()
        .map(|(n, v)| {
            (
                n.clone(),
                v.iter().flat_map(|x| x.to_le_bytes()).collect(),
                v.len(),
            )
        })
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView)> = bytes
        .iter()
        .map(|(n, b, len)| {
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![*len], b)
                .map(|t| (n.clone(), t))
                .map_err(io::Error::other)
        })
        .collect::<io::Result<_>>()?;
    let info = std::collections::HashMap::from([("format".to_owned(), "ms".to_owned())]);
    safetensors::serialize(views, Some(info)).map_err(io::Error::other)
}

/// `metadata.json` (compact, as MindFormers writes it): each parameter described (one chunk:
/// nothing is sharded here) and its copies by file and storing rank, ranks in turn.
fn metadata_text(job: &NewJob) -> String {
    let all: Vec<u64> = (0..job.ranks).collect();
    let mut storage = serde_json::Map::new();
    let mut state = serde_json::Map::new();
    for (kind, tensors) in [
        ("model", model_tensors as fn(u64) -> _),
        ("opt", opt_tensors),
    ] {
        for r in 0..job.ranks {
            for (name, v) in tensors(r) {
                let replicated = name.contains("lm_head");
                let entry = serde_json::json!({
                    "file_name": job.shard(kind, r),
                    "storage_rank": r,
                    "rank_group": if replicated { all.clone() } else { vec![r] },
                });
                let key = format!("('{name}', (0,))");
                match storage.get_mut(&key) {
                    Some(serde_json::Value::Array(list)) => list.push(entry),
                    _ => {
                        storage.insert(key, serde_json::json!([entry]));
                    }
                }
                // the real structure: MindFormers' loader reads every field of it
                state.insert(
                    name,
                    serde_json::json!({
                        "properties": {"dtype": "Float32", "replica_id": [0, 0], "allow_shape_mismatch": false, "allow_to_save": true},
                        "global_shape": [v.len()],
                        "axis_fragmentations": [1],
                        "layout": null,
                        "chunk": [{"global_offset": [0], "local_shape": [v.len()]}],
                    }),
                );
            }
        }
    }
    serde_json::json!({"state_dict_metadata": state, "storage_data": storage}).to_string()
}

/// A shard as MindSpore's `_exec_save` writes it: `<stem>.tmp` written whole, renamed to
/// `<name>`, chmod 0400 (no fsync). The new format needs no mtime order, so unlike the legacy
/// writer nothing is listed per file (a save of 8,192 ranks stays linear).
fn write_shard(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    let stem = name.rsplit_once('.').map_or(name, |(s, _)| s);
    let tmp = dir.join(format!("{stem}.tmp"));
    fs::write(&tmp, bytes)?;
    let dst = dir.join(name);
    fs::rename(&tmp, &dst)?;
    fs::set_permissions(&dst, fs::Permissions::from_mode(0o400))
}

/// Write `text` to `dir/name` the way `common.json` and `metadata.json` are: a `tmpXXXXXXXX`
/// file written and synced, replaced into place, chmod 0640.
fn replace_into(dir: &Path, name: &str, text: &str, n: u64) -> io::Result<()> {
    let tmp = dir.join(format!("tmp{n:08x}"));
    {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
    }
    let dst = dir.join(name);
    fs::rename(&tmp, &dst)?;
    fs::set_permissions(&dst, fs::Permissions::from_mode(0o640))
}

/// `common.json` for a save at `step` (global step and batch size as the job has them).
pub fn common_text(job: &NewJob, step: u64, ckpt_status: Option<i64>) -> String {
    let epoch = step.div_ceil(job.steps_per_epoch.max(1));
    serde_json::json!({
        "epoch_num": epoch,
        "step_num": step,
        "global_step": step,
        "loss_scale": 4096.0,
        "global_batch_size": job.global_batch_size,
        "consumed_samples": null,
        "ckpt_status": ckpt_status,
    })
    .to_string()
}

/// The tracker rewritten in place: opened for writing (truncated: empty for a moment), then
/// the number written.
fn write_tracker(root: &Path, iteration: u64) -> io::Result<()> {
    let p = root.join(TRACKER);
    let mut f = fs::File::create(&p)?;
    f.write_all(iteration.to_string().as_bytes())?;
    drop(f);
    fs::set_permissions(&p, fs::Permissions::from_mode(0o640))
}

/// One save of iteration `iteration` (also its step) by the launch whose saves so far are
/// `launch` (the in-memory list rotation works from: folders of earlier launches are never
/// deleted, §5.6), stopping where `fault` says; returns the folder written.
pub fn save(
    root: &Path,
    job: &NewJob,
    iteration: u64,
    fault: Fault,
    launch: &mut Vec<u64>,
) -> io::Result<PathBuf> {
    let d = root.join(iteration_dir(&PyInt::from_i64(iteration as i64)));
    if d.exists() {
        make_tree_writable(&d)?;
        fs::remove_dir_all(&d)?; // "already exists. It will be overwritten"
    }
    fs::create_dir_all(&d)?;
    fs::set_permissions(&d, fs::Permissions::from_mode(0o750))?;
    for r in 0..job.ranks {
        write_shard(
            &d,
            &job.shard("model", r),
            &safetensors_bytes(&model_tensors(r))?,
        )?;
    }
    for r in 0..job.ranks {
        let bytes = safetensors_bytes(&opt_tensors(r))?;
        let cut = match fault {
            Fault::MidSave { rank } => rank == r,
            Fault::AsyncLag { .. } => true,
            _ => false,
        };
        if cut {
            // the writer died inside `safetensors.save_file`: half a `.tmp`
            let name = job.shard("opt", r).replace(".safetensors", ".tmp");
            fs::write(d.join(name), &bytes[..bytes.len() / 2])?;
            continue;
        }
        write_shard(&d, &job.shard("opt", r), &bytes)?;
    }
    // rank 0 writes common.json and metadata.json while a slow rank may still be writing its
    // shards (§5.2: only the later barriers wait for them) — unless rank 0 is the one killed
    if fault == (Fault::MidSave { rank: 0 }) {
        return Ok(d);
    }
    replace_into(
        &d,
        "common.json",
        &common_text(job, iteration, None),
        iteration * 2,
    )?;
    if job.ranks > 1 {
        replace_into(&d, "metadata.json", &metadata_text(job), iteration * 2 + 1)?;
    }
    if let Fault::MidSave { .. } = fault {
        return Ok(d);
    }
    match fault {
        Fault::BeforeTracker => return Ok(d),
        Fault::AsyncLag { previous } => {
            if let Some(p) = previous {
                write_tracker(root, p)?;
            }
            return Ok(d);
        }
        _ => write_tracker(root, iteration)?,
    }
    launch.push(iteration);
    rotate(root, job.save_max, launch)?;
    Ok(d)
}

/// After a save: with more than `keep` saves in this launch's list, remove one folder, the
/// oldest of the launch (a plain `rmtree`: files first, the folder last, so a watcher may
/// see it half-deleted). Earlier launches' folders are never touched.
fn rotate(root: &Path, keep: usize, launch: &mut Vec<u64>) -> io::Result<()> {
    if launch.len() <= keep.max(1) {
        return Ok(());
    }
    let oldest = launch.remove(0);
    let p = root.join(iteration_dir(&PyInt::from_i64(oldest as i64)));
    if p.exists() {
        make_tree_writable(&p)?;
        fs::remove_dir_all(&p)?;
    }
    Ok(())
}

/// Shards are 0400: make them removable (root ignores modes, other users do not).
fn make_tree_writable(d: &Path) -> io::Result<()> {
    for e in fs::read_dir(d)? {
        let p = e?.path();
        let mode = fs::metadata(&p)?.permissions().mode();
        fs::set_permissions(&p, fs::Permissions::from_mode(mode | 0o200))?;
    }
    fs::set_permissions(d, fs::Permissions::from_mode(0o750))
}
