//! The `resolve --json` document (resolve-contract.md): the contract's keys exactly, plus the
//! documented additions (`data_skip`, `warnings`, `safe`, the decision's details). The same
//! typed pieces make up the `resolution` event of `watch --ndjson`, so the two cannot drift.

use super::group::{group_warnings, WarningGroup};
use crate::model::ShardResult;
use crate::py::PyException;
use crate::resolve::by_meta::MinMeta;
use crate::resolve::data_skip::DataSkip;
use crate::resolve::mindformers::{Branch, MfResolution, RankResult};
use crate::resolve::safe::{RankFile, SafeConfig, SafeOutcome};
use crate::resolve::shared::SharedDecision;
use crate::resolve::{Analysis, Context};
use serde::Serialize;

/// `resume_training` as MindFormers would hold it on one rank.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ResumeValue {
    Name(String),
    Bool(bool),
}

/// The exception a rank raises: class and the first line of its message.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ErrorDoc {
    #[serde(rename = "type")]
    pub class: String,
    pub message: String,
}

/// One `per_rank` entry: `{"rank": R, "resume_training": …}`, `{"rank": R, "error": …}`, or
/// — when ckptscope could not read an input MindFormers reads — `{"rank": R, "unknown":
/// "why"}` (never passed off as MindFormers' answer).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RankDoc {
    pub rank: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resume_training: Option<ResumeValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorDoc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unknown: Option<String>,
}

impl RankDoc {
    fn new(rank: usize, r: &RankResult) -> Self {
        let mut doc = RankDoc {
            rank,
            resume_training: None,
            error: None,
            unknown: None,
        };
        match r {
            RankResult::File(name) => doc.resume_training = Some(ResumeValue::Name(name.clone())),
            RankResult::Newest => doc.resume_training = Some(ResumeValue::Bool(true)),
            RankResult::Off => doc.resume_training = Some(ResumeValue::Bool(false)),
            RankResult::Error(e) => {
                doc.error = Some(ErrorDoc {
                    class: e.class.clone(),
                    message: e.first_line().to_owned(),
                })
            }
            RankResult::Unknown(why) => doc.unknown = Some(why.clone()),
        }
        doc
    }
}

/// The contract's `mindformers` object plus the decision's details.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MindformersDoc {
    pub per_rank: Vec<RankDoc>,
    pub record: Option<String>,
    pub branch: Branch,
    pub rank_entries: Option<usize>,
    pub shared: Option<SharedDecision>,
    pub min_meta: Option<MinMeta>,
    pub candidates: Vec<String>,
    pub rank0_error: Option<PyException>,
    pub log: Vec<String>,
    /// Why ckptscope cannot tell MindFormers' answer (an input it did not read).
    pub unknown: Option<String>,
}

impl MindformersDoc {
    pub fn new(mf: &MfResolution) -> Self {
        MindformersDoc {
            per_rank: mf
                .per_rank
                .iter()
                .enumerate()
                .map(|(r, x)| RankDoc::new(r, x))
                .collect(),
            record: mf.record.clone(),
            branch: mf.branch.clone(),
            rank_entries: mf.rank_entries,
            shared: mf.shared.clone(),
            min_meta: mf.min_meta.clone(),
            candidates: mf.candidates.clone(),
            rank0_error: mf.rank0_error.clone(),
            log: mf.log.clone(),
            unknown: mf.unknown.clone(),
        }
    }
}

/// The safe pick (`null` in the document when no step is intact everywhere).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SafeDoc {
    pub epoch: u64,
    pub step: u64,
    pub restart: u64,
    pub per_rank: Vec<RankFile>,
    pub config: SafeConfig,
    pub same_as_mindformers: bool,
    pub reasons: Vec<String>,
    pub data_skip: Option<DataSkip>,
    pub passed_over: Vec<String>,
}

impl SafeDoc {
    pub fn new(outcome: &SafeOutcome, data_skip: Option<&DataSkip>) -> Option<Self> {
        let p = outcome.pick.as_ref()?;
        Some(SafeDoc {
            epoch: p.epoch,
            step: p.step,
            restart: p.restart,
            per_rank: p.per_rank.clone(),
            config: p.config.clone(),
            same_as_mindformers: p.same_as_mindformers,
            reasons: p.reasons.clone(),
            data_skip: data_skip.cloned(),
            passed_over: outcome.skipped.clone(),
        })
    }
}

/// The data-skip arithmetic's results (every key present, `null` when unknown).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct DataSkipDoc {
    pub scale: Option<f64>,
    pub initial_step: Option<i64>,
    pub initial_epoch: Option<i64>,
    pub skip_batches: Option<i64>,
    pub first_printed_step: Option<i64>,
}

impl DataSkipDoc {
    pub fn new(d: Option<&DataSkip>) -> Self {
        DataSkipDoc {
            scale: d.and_then(|d| d.scale),
            initial_step: d.and_then(|d| d.initial_step),
            initial_epoch: d.and_then(|d| d.initial_epoch),
            skip_batches: d.and_then(|d| d.skip_batches),
            first_printed_step: d.and_then(|d| d.first_printed_step),
        }
    }
}

/// The answer in short: what `watch --ndjson` emits as `resolution` whenever it changes.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Resolution {
    pub world_size: u64,
    /// The answer in one word, as the exit status gives it, with why when it is not "resumes".
    pub outcome: OutcomeDoc,
    /// A legacy tree's answer: `mindformers`, `data_skip`, `safe` (absent for a new-format
    /// tree, whose legacy reading — "FOUND NO META.JSON", a null safe step — would mislead).
    #[serde(flatten)]
    pub legacy: Option<LegacyResolution>,
    /// A new-format tree's answer: per rank the folder (or the stage's error), the data skip
    /// and the safe folder with the change that reaches it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_format: Option<NewResolution>,
    /// Each root's answer, for a job given as several roots (what each node's ranks load).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<crate::resolve::nodes::NodeAnswer>,
}

/// The legacy layout's part of a [`Resolution`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LegacyResolution {
    pub mindformers: MindformersDoc,
    pub data_skip: DataSkipDoc,
    pub safe: Option<SafeDoc>,
}

/// The new format's part of a [`Resolution`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NewResolution {
    pub per_rank: Vec<serde_json::Value>,
    pub skip_batches: Option<serde_json::Value>,
    pub safe: Option<crate::layout::mindformers_new::analysis::SafePick>,
}

impl NewResolution {
    fn summary(&self) -> String {
        let pick = match self.per_rank.first() {
            Some(r) if r["error"].is_object() => format!(
                "FAILS ({} stage, {}: {})",
                r["error"]["stage"].as_str().unwrap_or("?"),
                r["error"]["type"].as_str().unwrap_or("?"),
                r["error"]["message"].as_str().unwrap_or("?")
            ),
            // an input ckptscope did not read: no answer, not a fresh start
            Some(r) if r.get("unknown").is_some() => format!(
                "UNKNOWN ({})",
                r["unknown"].as_str().unwrap_or("an input was not read")
            ),
            Some(r) => r["load_path"]
                .as_str()
                .unwrap_or("nothing (fresh start)")
                .to_owned(),
            None => "-".into(),
        };
        let skip = self
            .skip_batches
            .as_ref()
            .map_or("-".to_owned(), |v| v.to_string());
        let safe = self
            .safe
            .as_ref()
            .map_or("none intact".to_owned(), |s| s.folder.clone());
        format!("MindFormers {pick}; data skip {skip}; safe {safe}")
    }
}

impl Resolution {
    /// One line: rank 0's pick, the data skip, the first printed step and the safe pick.
    pub fn summary(&self) -> String {
        if let Some(n) = &self.new_format {
            return n.summary();
        }
        let Some(l) = &self.legacy else {
            return "-".into();
        };
        if let (Some(why), true) = (&self.outcome.why, l.mindformers.per_rank.is_empty()) {
            return format!("no answer: {why}");
        }
        let pick = match l.mindformers.per_rank.first() {
            Some(RankDoc {
                resume_training: Some(ResumeValue::Name(n)),
                ..
            }) => n.clone(),
            Some(RankDoc {
                resume_training: Some(ResumeValue::Bool(true)),
                ..
            }) => "newest by mtime".into(),
            Some(RankDoc {
                resume_training: Some(ResumeValue::Bool(false)),
                ..
            }) => "no resume".into(),
            Some(RankDoc { error: Some(e), .. }) => format!("FAILS ({}: {})", e.class, e.message),
            Some(RankDoc {
                unknown: Some(why), ..
            }) => format!("unknown ({why})"),
            _ => "-".into(),
        };
        let o = |v: Option<i64>| v.map_or("?".to_owned(), |v| v.to_string());
        let safe = l.safe.as_ref().map_or("none intact".to_owned(), |s| {
            s.config.resume_training.clone()
        });
        format!(
            "MindFormers {pick}; data skip {}; first printed step {}; safe {safe}",
            o(l.data_skip.skip_batches),
            o(l.data_skip.first_printed_step)
        )
    }

    pub fn new(a: &Analysis) -> Self {
        Resolution {
            world_size: a.world_size,
            outcome: OutcomeDoc::new(a),
            legacy: a.newfmt.is_none().then(|| LegacyResolution {
                mindformers: MindformersDoc::new(&a.mindformers),
                data_skip: DataSkipDoc::new(a.data_skip.as_ref()),
                safe: SafeDoc::new(&a.safe.outcome, a.safe.data_skip.as_ref()),
            }),
            new_format: a.newfmt.as_deref().map(|n| NewResolution {
                per_rank: n.per_rank.iter().map(new_rank_doc).collect(),
                skip_batches: n.skip.as_deref().map(int_value),
                safe: n.safe.clone(),
            }),
            nodes: a.nodes.clone(),
        }
    }
}

/// `{"status": "resumes" | "fails" | "unknown", "why": …}`: what the exit status (0, 1, 2) of
/// `resolve` says, for scripts that read a `watch --ndjson` stream instead of an exit status.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OutcomeDoc {
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

impl OutcomeDoc {
    pub fn new(a: &Analysis) -> Self {
        use crate::resolve::Outcome;
        match a.outcome() {
            Outcome::Resumes => OutcomeDoc {
                status: "resumes",
                why: None,
            },
            Outcome::Fails => OutcomeDoc {
                status: "fails",
                why: None,
            },
            Outcome::Unknown(why) => OutcomeDoc {
                status: "unknown",
                why: Some(why),
            },
        }
    }
}

/// The whole `resolve --json` document.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ResolveDoc<'a> {
    pub load_checkpoint: &'a str,
    pub layout: &'static str,
    pub world_size: u64,
    pub outcome: OutcomeDoc,
    pub mindformers: MindformersDoc,
    pub context: &'a Option<Context>,
    pub data_skip: DataSkipDoc,
    /// Warnings grouped by code (count, rank ranges, the first few paths; all with `--all`).
    pub warnings: Vec<WarningGroup>,
    pub safe: Option<SafeDoc>,
    pub safe_passed_over: &'a [String],
    pub shards: &'a [ShardResult],
    /// Each root's answer, for a job whose rank folders are spread over several roots.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub nodes: &'a [crate::resolve::nodes::NodeAnswer],
}

/// The document for a new-format tree (`resolve-contract.md`'s keys, with `per_rank` in the
/// new format's shape: `{"rank", "load_path", "initial_step", "initial_epoch"}` or
/// `{"rank", "error": {"stage", "type", "message"}}`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NewFormatDoc<'a> {
    pub load_checkpoint: &'a str,
    pub layout: &'static str,
    pub world_size: u64,
    pub outcome: OutcomeDoc,
    pub mindformers: NewMindformersDoc<'a>,
    pub data_skip: NewSkipDoc,
    pub warnings: Vec<WarningGroup>,
    pub safe: &'a Option<crate::layout::mindformers_new::analysis::SafePick>,
    pub iterations: &'a [crate::layout::mindformers_new::analysis::Iteration],
    pub notes: &'a [String],
}

/// The new format's `mindformers` object.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NewMindformersDoc<'a> {
    pub per_rank: Vec<serde_json::Value>,
    pub tracker: &'a Option<String>,
    pub load_ckpt_format: &'a str,
    pub no_load_optim: bool,
    pub health: bool,
    pub unknown: &'a Option<String>,
}

/// `dataset.set_init_step(n)`: the batches skipped (`null`: none).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NewSkipDoc {
    pub skip_batches: Option<serde_json::Value>,
}

/// A Python integer as a JSON number when it fits, else as its decimal text.
fn int_value(s: &str) -> serde_json::Value {
    s.parse::<i64>()
        .map(serde_json::Value::from)
        .unwrap_or_else(|_| serde_json::Value::from(s))
}

fn new_rank_doc(r: &crate::layout::mindformers_new::analysis::RankAnswer) -> serde_json::Value {
    use crate::layout::mindformers_new::analysis::RankAnswer;
    match r {
        RankAnswer::Loads {
            rank,
            load_path,
            initial_step,
            initial_epoch,
        } => serde_json::json!({
            "rank": rank,
            "load_path": load_path,
            "initial_step": int_value(initial_step),
            "initial_epoch": int_value(initial_epoch),
        }),
        RankAnswer::Raises { rank, error }
            if error.class == crate::layout::mindformers_new::analysis::UNREAD =>
        {
            serde_json::json!({"rank": rank, "unknown": error.message})
        }
        RankAnswer::Raises { rank, error } => serde_json::json!({
            "rank": rank,
            "error": {"stage": error.stage, "type": error.class, "message": error.message},
        }),
    }
}

/// The new-format document, when the tree was read as the new format.
pub fn new_format_document(a: &Analysis, all: bool) -> Option<NewFormatDoc<'_>> {
    let n = a.newfmt.as_deref()?;
    Some(NewFormatDoc {
        load_checkpoint: &n.load_path,
        layout: a.layout.name(),
        world_size: n.world_size,
        outcome: OutcomeDoc::new(a),
        mindformers: NewMindformersDoc {
            per_rank: n.per_rank.iter().map(new_rank_doc).collect(),
            tracker: &n.tracker,
            load_ckpt_format: &n.load_ckpt_format,
            no_load_optim: n.no_load_optim,
            health: n.health,
            unknown: &n.unknown,
        },
        data_skip: NewSkipDoc {
            skip_batches: n.skip.as_deref().map(int_value),
        },
        warnings: group_warnings(&n.warnings, all),
        safe: &n.safe,
        iterations: &n.iterations,
        notes: &n.notes,
    })
}

/// The document; `all` lists every path of every warning group.
pub fn document(a: &Analysis, all: bool) -> ResolveDoc<'_> {
    ResolveDoc {
        load_checkpoint: &a.load_checkpoint,
        layout: a.layout.name(),
        world_size: a.world_size,
        outcome: OutcomeDoc::new(a),
        mindformers: MindformersDoc::new(&a.mindformers),
        context: &a.context,
        data_skip: DataSkipDoc::new(a.data_skip.as_ref()),
        warnings: group_warnings(&a.warnings, all),
        safe: SafeDoc::new(&a.safe.outcome, a.safe.data_skip.as_ref()),
        safe_passed_over: &a.safe.outcome.skipped,
        shards: &a.shards,
        nodes: &a.nodes,
    }
}

#[cfg(test)]
mod tests {
    use super::NewResolution;
    use serde_json::json;

    /// A rank whose answer is unknown is said so in the event log, not called a fresh start.
    #[test]
    fn the_summary_tells_unknown_from_fresh_start() {
        let of = |r: serde_json::Value| NewResolution {
            per_rank: vec![r],
            skip_batches: None,
            safe: None,
        };
        let unknown =
            of(json!({"rank": 0, "unknown": "iteration_8/model.safetensors not checked"}));
        assert!(
            unknown
                .summary()
                .starts_with("MindFormers UNKNOWN (iteration_8/model"),
            "{}",
            unknown.summary()
        );
        let fresh = of(json!({"rank": 0, "load_path": null, "initial_step": 0}));
        assert!(fresh
            .summary()
            .starts_with("MindFormers nothing (fresh start)"));
    }
}
