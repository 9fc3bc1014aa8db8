//! Recognising checkpoint layouts. Each framework's layout names its parts (ranks, steps,
//! shards, markers) so that the grid and the resolvers do not care which framework wrote them.
//! Only the MindFormers legacy layout exists so far; Megatron, DeepSpeed, DCP, Hugging Face and
//! Orbax layouts will sit beside it behind the same [`LayoutId`].
pub mod mindformers;
pub mod mindformers_new;

use serde::Serialize;

/// A known layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum LayoutId {
    #[serde(rename = "mindformers-legacy")]
    MindformersLegacy,
}

impl LayoutId {
    pub fn name(self) -> &'static str {
        match self {
            LayoutId::MindformersLegacy => "mindformers-legacy",
        }
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
