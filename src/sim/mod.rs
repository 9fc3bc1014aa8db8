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
}

impl Edit {
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

/// The edits and the undo/redo stacks.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Overlay {
    edits: Vec<Edit>,
    undone: Vec<Edit>,
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
    pub fn push(&mut self, e: Edit) {
        self.edits.push(e);
        self.undone.clear();
    }

    pub fn undo(&mut self) -> Option<&Edit> {
        let e = self.edits.pop()?;
        self.undone.push(e);
        self.undone.last()
    }

    pub fn redo(&mut self) -> Option<&Edit> {
        let e = self.undone.pop()?;
        self.edits.push(e);
        self.edits.last()
    }

    pub fn reset(&mut self) {
        self.edits.clear();
        self.undone.clear();
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
    }
    Ok(())
}
