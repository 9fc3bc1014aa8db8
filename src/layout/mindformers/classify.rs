//! What each name in a `rank_R/` folder is (spec §2.5, §4.6): the one classifier the grid, the
//! verifier, the watcher's change events and the hazard warnings all use. Nothing is guessed: a
//! name that is not one of the known kinds is `Other` and shown as such.

use super::names::{parse_ckpt_name, CkptName, Fmt};
use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EntryKind {
    /// A canonical `<prefix>_rank_R[_k]-E_S.<fmt>` file.
    Checkpoint { name: CkptName },
    /// `<stem>.tmp`: a save in progress (or abandoned).
    Tmp { stem: String },
    /// `meta.json`.
    Meta,
    /// `tmpXXXXXXXX`: `meta.json` being replaced.
    MetaTmp,
    /// `…-E_S_breakpoint.ckpt` from `exception_save`.
    Breakpoint,
    /// Any other `.ckpt` / `.safetensors` name: a weights file MindFormers never resumes from.
    Weights,
    /// Anything else: kept and shown, never interpreted.
    Other,
}

pub fn classify(name: &str) -> EntryKind {
    if name == "meta.json" {
        return EntryKind::Meta;
    }
    if let Some(n) = parse_ckpt_name(name) {
        return EntryKind::Checkpoint { name: n };
    }
    if name.ends_with("_breakpoint.ckpt") {
        return EntryKind::Breakpoint;
    }
    if name.ends_with(".ckpt") || name.ends_with(".safetensors") {
        return EntryKind::Weights;
    }
    if let Some(stem) = name.strip_suffix(".tmp") {
        if !stem.is_empty() {
            return EntryKind::Tmp {
                stem: stem.to_owned(),
            };
        }
    }
    if is_meta_tmp(name) {
        return EntryKind::MetaTmp;
    }
    EntryKind::Other
}

impl EntryKind {
    /// A file whose content is a checkpoint (the verifier checks it), whatever its name says.
    pub fn is_weights(&self) -> bool {
        matches!(
            self,
            EntryKind::Checkpoint { .. } | EntryKind::Breakpoint | EntryKind::Weights
        )
    }

    /// The canonical shard this entry is or will become (a `.tmp` becomes `<stem>.<fmt>`),
    /// for the grid column and `verify --step`.
    pub fn shard(&self, fmt: Fmt) -> Option<CkptName> {
        match self {
            EntryKind::Checkpoint { name } if name.fmt == fmt => Some(name.clone()),
            EntryKind::Tmp { stem } => parse_ckpt_name(&format!("{stem}.{}", fmt.ext())),
            _ => None,
        }
    }

    /// The `kind` of `watch --ndjson`'s shard events.
    pub fn label(&self) -> &'static str {
        match self {
            EntryKind::Checkpoint { .. } => "checkpoint",
            EntryKind::Breakpoint => "breakpoint",
            EntryKind::Weights => "weights",
            EntryKind::Tmp { .. } => "tmp",
            EntryKind::Meta => "meta",
            EntryKind::MetaTmp => "meta_tmp",
            EntryKind::Other => "other",
        }
    }
}

/// `tempfile.NamedTemporaryFile` names: `tmp` + 8 characters of `[a-z0-9_]`.
pub fn is_meta_tmp(name: &str) -> bool {
    name.len() == 11
        && name.starts_with("tmp")
        && name[3..]
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        assert!(matches!(
            classify("a_rank_0-1_1.ckpt"),
            EntryKind::Checkpoint { .. }
        ));
        assert_eq!(
            classify("a_rank_0-1_1.tmp"),
            EntryKind::Tmp {
                stem: "a_rank_0-1_1".into()
            }
        );
        assert_eq!(classify("tmpab_9xyzq"), EntryKind::MetaTmp);
        assert_eq!(
            classify("a_rank_0-1_1_breakpoint.ckpt"),
            EntryKind::Breakpoint
        );
        assert_eq!(classify("notes.txt"), EntryKind::Other);
        assert_eq!(classify("model.safetensors"), EntryKind::Weights);
        assert!(classify("a_rank_0-1_1_breakpoint.ckpt").is_weights());
        assert!(!classify("a_rank_0-1_1.tmp").is_weights());
        assert_eq!(classify("meta.json"), EntryKind::Meta);
    }
}
