//! Simulation: hypothetical edits laid over the real model ("what if rank 3 lost this shard?",
//! "what if the global batch size doubles?"). Nothing touches the disk: [`Overlay::apply`] builds
//! a simulated view, the resolvers run on it exactly as on the real one, and every edit can be
//! undone, redone or reset. An edit whose target vanished from the real tree says so instead of
//! silently doing nothing.

use crate::layout::mindformers::names::parse_ckpt_name;
use crate::model::{FileId, Listing, RootState, Tree, VerdictEntry};
use crate::model::{ShardCheck, Verdict};
use crate::resolve::config::{ResumeConfig, ResumeTraining};
use crate::resolve::context::RunSettings;
use serde::Serialize;
use std::collections::HashSet;

/// One hypothetical change.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "edit", rename_all = "snake_case")]
pub enum Edit {
    DeleteShard {
        dir: String,
        file: String,
    },
    DeleteRank {
        dir: String,
    },
    /// Every rank's shard of one step (one restart prefix).
    DeleteStep {
        stem: String,
        restart: u64,
        epoch: u64,
        step: u64,
    },
    DeleteMeta {
        dir: String,
    },
    /// Treat a shard as damaged (`truncated` or `corrupt`) without changing it.
    MarkDamaged {
        dir: String,
        file: String,
        verdict: Verdict,
    },
    SetGlobalBatchSize {
        value: i64,
    },
    SetIgnoreDataSkip {
        value: bool,
    },
    SetDataSkipSteps {
        value: Option<i64>,
    },
    SetResumeTraining {
        value: ResumeTraining,
    },
    /// Health mode (`use_checkpoint_health_monitor`; the new format's health checkpoint).
    SetHealth {
        value: bool,
    },
    /// New format: `checkpoint.no_load_optim` (load the weights only).
    SetNoLoadOptim {
        value: bool,
    },
    /// New format: the tracker `latest_checkpointed_iteration.txt` gone.
    DeleteTracker,
    /// New format: the tracker naming `iteration` (what writing it by hand would do).
    SetTracker {
        iteration: u64,
    },
}

impl Edit {
    /// A change to the tree (a deletion or a damage mark), not a setting.
    pub fn changes_tree(&self) -> bool {
        setting(self).is_none()
    }

    /// A short description for the status line and the event log.
    pub fn describe(&self) -> String {
        match self {
            Edit::DeleteShard { dir, file } => format!("delete {dir}/{file}"),
            Edit::DeleteRank { dir } => format!("delete folder {dir}/"),
            Edit::DeleteStep {
                epoch,
                step,
                restart,
                ..
            } => format!(
                "delete step {epoch}_{step}{} on every rank",
                if *restart > 0 {
                    format!(" (restart _{restart})")
                } else {
                    String::new()
                }
            ),
            Edit::DeleteMeta { dir } => format!("delete {dir}/meta.json"),
            Edit::MarkDamaged { dir, file, verdict } => {
                format!("mark {dir}/{file} {}", verdict.name())
            }
            Edit::SetGlobalBatchSize { value } => format!("global batch size {value}"),
            Edit::SetIgnoreDataSkip { value } => format!("ignore_data_skip: {value}"),
            Edit::SetDataSkipSteps { value } => format!(
                "data_skip_steps: {}",
                value.map_or("unset".into(), |v| v.to_string())
            ),
            Edit::SetHealth { value } => format!("health mode: {}", on_off(*value)),
            Edit::SetNoLoadOptim { value } => format!("no_load_optim: {value}"),
            Edit::DeleteTracker => "delete the tracker".into(),
            Edit::SetTracker { iteration } => format!("tracker says {iteration}"),
            Edit::SetResumeTraining { value } => format!(
                "resume_training: {}",
                match value {
                    ResumeTraining::Bool(b) => b.to_string(),
                    ResumeTraining::Name(n) => format!("\"{n}\""),
                    ResumeTraining::Unset => "null".into(),
                    ResumeTraining::Invalid(v) => v.clone(),
                }
            ),
        }
    }
}

/// The edits in force, and the history that undo and redo walk: each step is the whole list
/// of edits before it, with what it did, so a reset or a replaced setting is undone like any
/// other step.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Overlay {
    edits: Vec<Edit>,
    past: Vec<(Vec<Edit>, String)>,
    future: Vec<(Vec<Edit>, String)>,
}

/// Which setting an edit sets (`None`: not a setting, a change to the tree).
fn setting(e: &Edit) -> Option<u8> {
    match e {
        Edit::SetGlobalBatchSize { .. } => Some(0),
        Edit::SetIgnoreDataSkip { .. } => Some(1),
        Edit::SetDataSkipSteps { .. } => Some(2),
        Edit::SetResumeTraining { .. } => Some(3),
        Edit::SetHealth { .. } => Some(4),
        Edit::SetNoLoadOptim { .. } => Some(5),
        _ => None,
    }
}

/// The edit that sets `e`'s setting to its real value, when the real job has one.
fn real_setting(e: &Edit, config: &ResumeConfig, run: &RunSettings) -> Option<Edit> {
    Some(match e {
        Edit::SetGlobalBatchSize { .. } => Edit::SetGlobalBatchSize {
            value: run.new_global_batch_size?,
        },
        Edit::SetIgnoreDataSkip { .. } => Edit::SetIgnoreDataSkip {
            value: run.ignore_data_skip,
        },
        Edit::SetDataSkipSteps { .. } => Edit::SetDataSkipSteps {
            value: run.data_skip_steps,
        },
        Edit::SetResumeTraining { .. } => Edit::SetResumeTraining {
            value: config.resume_training.clone(),
        },
        Edit::SetHealth { .. } => Edit::SetHealth {
            value: matches!(
                config.health,
                crate::resolve::config::HealthSetting::Bool(true)
            ),
        },
        _ => return None,
    })
}

/// The simulated world.
#[derive(Clone, Debug, PartialEq)]
pub struct SimView {
    pub tree: Tree,
    pub config: ResumeConfig,
    pub run: RunSettings,
    /// `(dir, file)` of shards deleted in the simulation (shown as such in the grid).
    pub deleted: HashSet<(String, String)>,
    /// `(dir, file)` of shards marked damaged in the simulation.
    pub marked: HashSet<(String, String)>,
    /// Edits that no longer apply, with why (their target vanished from the real tree).
    pub stale: Vec<String>,
}

impl Overlay {
    /// Add `e` with nothing known of the real job (see [`Overlay::push_over`]).
    pub fn push(&mut self, e: Edit) -> bool {
        self.push_over(e, None)
    }

    /// Add `e` as one history step, over the real job's `(config, run)`: a setting replaces
    /// that setting's earlier edit, and a setting back at its real value is dropped (the
    /// simulation then holds one edit fewer). An edit that changes nothing — the same deletion
    /// twice, a setting to the value already in force — is not recorded: `false`.
    pub fn push_over(&mut self, e: Edit, real: Option<(&ResumeConfig, &RunSettings)>) -> bool {
        let mut next = self.edits.clone();
        match setting(&e) {
            Some(k) => {
                let real = real.and_then(|(c, r)| real_setting(&e, c, r));
                let in_force = next.iter().rev().find(|x| setting(x) == Some(k)).cloned();
                if in_force.as_ref().or(real.as_ref()) == Some(&e) {
                    return false;
                }
                next.retain(|x| setting(x) != Some(k));
                if real.as_ref() != Some(&e) {
                    next.push(e.clone());
                }
            }
            None if next.contains(&e) => return false,
            None => next.push(e.clone()),
        }
        self.step(next, e.describe());
        true
    }

    fn step(&mut self, next: Vec<Edit>, what: String) {
        let before = std::mem::replace(&mut self.edits, next);
        self.past.push((before, what));
        self.future.clear();
    }

    /// Undo the last step; what it was.
    pub fn undo(&mut self) -> Option<String> {
        let (before, what) = self.past.pop()?;
        let after = std::mem::replace(&mut self.edits, before);
        self.future.push((after, what.clone()));
        Some(what)
    }

    /// Redo the last undone step; what it was.
    pub fn redo(&mut self) -> Option<String> {
        let (after, what) = self.future.pop()?;
        let before = std::mem::replace(&mut self.edits, after);
        self.past.push((before, what.clone()));
        Some(what)
    }

    /// Drop every edit, as one step that undo brings back; `false` when there was none.
    pub fn reset(&mut self) -> bool {
        if self.edits.is_empty() {
            return false;
        }
        let n = self.edits.len();
        self.step(Vec::new(), format!("reset ({n} edit(s))"));
        true
    }

    pub fn edits(&self) -> &[Edit] {
        &self.edits
    }

    pub fn is_empty(&self) -> bool {
        self.edits.is_empty()
    }

    /// Lay the edits over the real tree and configuration.
    pub fn apply(&self, real: &Tree, config: &ResumeConfig, run: &RunSettings) -> SimView {
        let mut v = SimView {
            tree: real.clone(),
            config: config.clone(),
            run: run.clone(),
            deleted: HashSet::new(),
            marked: HashSet::new(),
            stale: Vec::new(),
        };
        for e in &self.edits {
            if let Err(why) = apply_one(&mut v, e) {
                v.stale.push(format!("{}: {why}", e.describe()));
            }
        }
        v
    }
}

fn remove_entry(tree: &mut Tree, dir: &str, file: &str) -> bool {
    let Some(node) = tree.dirs.get_mut(dir) else {
        return false;
    };
    // the simulated tree's own copy of this folder (the real model's stays as it is)
    let node = std::sync::Arc::make_mut(node);
    node.memo.clear(); // edited in place below
    let Listing::Entries(entries) = &mut node.listing else {
        return false;
    };
    let before = entries.len();
    entries.retain(|e| &*e.name != file);
    if file == "meta.json" {
        node.meta = None;
    }
    node.control.retain(|(n, _)| n != file);
    tree.verdicts.remove(dir, file);
    entries.len() != before
}

fn apply_one(v: &mut SimView, e: &Edit) -> Result<(), String> {
    match e {
        Edit::DeleteShard { dir, file } => {
            if !remove_entry(&mut v.tree, dir, file) {
                return Err("the file is gone".into());
            }
            v.deleted.insert((dir.clone(), file.clone()));
        }
        Edit::DeleteRank { dir } => {
            let node = v.tree.dirs.remove(dir).ok_or("the folder is gone")?;
            for en in node.listing.entries() {
                v.deleted.insert((dir.clone(), en.name.to_string()));
            }
            if let RootState::Dir(Listing::Entries(entries)) = &mut v.tree.state {
                entries.retain(|en| *en.name != **dir);
            }
        }
        Edit::DeleteStep {
            stem,
            restart,
            epoch,
            step,
        } => {
            let mut any = false;
            let dirs: Vec<String> = v.tree.dirs.keys().cloned().collect();
            for d in dirs {
                let names: Vec<String> = v.tree.dirs[&d]
                    .listing
                    .entries()
                    .iter()
                    .filter(|en| {
                        parse_ckpt_name(&en.name).is_some_and(|n| {
                            n.stem == *stem
                                && n.restart == *restart
                                && n.epoch == *epoch
                                && n.step == *step
                        })
                    })
                    .map(|en| en.name.to_string())
                    .collect();
                for n in names {
                    any |= remove_entry(&mut v.tree, &d, &n);
                    v.deleted.insert((d.clone(), n));
                }
            }
            if !any {
                return Err("no rank has that step any more".into());
            }
        }
        Edit::DeleteMeta { dir } => {
            if !remove_entry(&mut v.tree, dir, "meta.json") {
                return Err("meta.json is gone".into());
            }
        }
        Edit::MarkDamaged { dir, file, verdict } => {
            let st = v
                .tree
                .dirs
                .get(dir)
                .and_then(|d| d.listing.find(file))
                .and_then(|en| en.stat().ok().cloned())
                .ok_or("the file is gone")?;
            let check = ShardCheck {
                verdict: *verdict,
                detail: format!(
                    "marked {} in the simulation (the file on disk is unchanged)",
                    verdict.name()
                )
                .into(),
                size: st.size,
                append: None,
                sha256: None,
                deep: false,
            };
            v.tree.verdicts.insert(
                dir.clone(),
                file.clone(),
                VerdictEntry {
                    id: FileId::from(&st),
                    check,
                },
            );
            v.marked.insert((dir.clone(), file.clone()));
        }
        Edit::SetGlobalBatchSize { value } => v.run.new_global_batch_size = Some(*value),
        Edit::SetIgnoreDataSkip { value } => v.run.ignore_data_skip = *value,
        Edit::SetDataSkipSteps { value } => v.run.data_skip_steps = *value,
        Edit::SetResumeTraining { value } => v.config.resume_training = value.clone(),
        Edit::SetHealth { value } => {
            v.config.health = crate::resolve::config::HealthSetting::Bool(*value)
        }
        Edit::SetNoLoadOptim { value } => v.run.no_load_optim = Some(*value),
        Edit::DeleteTracker => {
            let name = crate::layout::mindformers_new::tracker::TRACKER;
            if v.tree.root_files.remove(name).is_none() {
                return Err("there is no tracker".into());
            }
            if let RootState::Dir(Listing::Entries(entries)) = &mut v.tree.state {
                entries.retain(|e| &*e.name != name);
            }
            v.deleted.insert((String::new(), name.to_owned()));
        }
        Edit::SetTracker { iteration } => set_tracker(&mut v.tree, *iteration)?,
    }
    Ok(())
}

fn on_off(b: bool) -> &'static str {
    if b {
        "on"
    } else {
        "off"
    }
}

/// The tracker with `iteration` as its text: its content in the model and, when it was not
/// there, its root entry (a small regular file).
fn set_tracker(tree: &mut Tree, iteration: u64) -> Result<(), String> {
    let name = crate::layout::mindformers_new::tracker::TRACKER;
    let text = iteration.to_string().into_bytes();
    let RootState::Dir(Listing::Entries(entries)) = &mut tree.state else {
        return Err("the root is not a listed folder".into());
    };
    if entries.find(name).is_none() {
        let st = crate::model::Stat {
            kind: crate::model::FileKind::File,
            size: text.len() as u64,
            mtime_sec: 0,
            mtime_nsec: 0,
            ino: 0,
            dev: 0,
            mode: 0o100640,
            ctime_ns: 0,
        };
        let mut list: Vec<_> = entries.iter().collect();
        list.push(crate::model::Entry::named(
            std::ffi::OsStr::new(name),
            Ok(st),
            None,
        ));
        *entries = list.into();
    }
    tree.root_files
        .insert(name.to_owned(), crate::model::FileRead::Bytes(text));
    Ok(())
}
