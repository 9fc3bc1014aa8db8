//! Recognising checkpoint layouts. Each framework's layout names its parts (ranks, steps,
//! shards, markers) so that the grid and the resolvers do not care which framework wrote them.
//! MindFormers' two layouts exist — the legacy `rank_*` one ([`mindformers`]) and the new
//! `iteration_*` one ([`mindformers_new`]), told apart by [`detect`]; Megatron, DeepSpeed,
//! DCP, Hugging Face and Orbax layouts will sit beside them behind the same [`LayoutId`].
pub mod mindformers;
pub mod mindformers_new;

use serde::Serialize;

/// A known layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum LayoutId {
    #[serde(rename = "mindformers-legacy")]
    MindformersLegacy,
    #[serde(rename = "mindformers-new")]
    MindformersNew,
}

impl LayoutId {
    pub fn name(self) -> &'static str {
        match self {
            LayoutId::MindformersLegacy => "mindformers-legacy",
            LayoutId::MindformersNew => "mindformers-new",
        }
    }
}

/// Which layout a root is read as: `--layout`; else a `--config` that selects one (a
/// `checkpoint:` section or `use_legacy_format: False` selects the new format, any other
/// YAML the legacy one); else what the root holds — `iteration_*` folders or the tracker
/// and no `rank_*` folder make it the new format. A root holding both is read as the legacy
/// format, with a warning (the legacy analysis names the new-format folders).
pub fn detect(tree: &crate::model::Tree, job: &crate::job::NewJob) -> LayoutId {
    use crate::job::LayoutArg;
    match job.layout {
        Some(LayoutArg::New) => return LayoutId::MindformersNew,
        Some(LayoutArg::Legacy) => return LayoutId::MindformersLegacy,
        None => {}
    }
    if job.has_config {
        return match job.selected_by_config {
            true => LayoutId::MindformersNew,
            false => LayoutId::MindformersLegacy,
        };
    }
    if let crate::model::RootState::File(_) = tree.state {
        // one file: a new-format shard by its name
        let name = tree.root.rsplit('/').next().unwrap_or_default();
        if mindformers_new::names::parse_shard_name(name).is_some() {
            return LayoutId::MindformersNew;
        }
    }
    let names = || {
        tree.root_listing()
            .into_iter()
            .flat_map(|l| l.entries().iter())
    };
    let legacy = names().any(|e| e.name.starts_with("rank_"));
    let new = names()
        .any(|e| e.name.starts_with("iteration_") || &*e.name == mindformers_new::tracker::TRACKER);
    match new && !legacy {
        true => LayoutId::MindformersNew,
        false => LayoutId::MindformersLegacy,
    }
}

/// The rank number of a `rank_<digits>` folder name (exactly that form), for display.
pub fn rank_dir_number(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("rank_")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}
