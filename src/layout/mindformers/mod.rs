//! The MindFormers legacy layout: `rank_R/` folders, `meta.json`, `<prefix>_rank_R[_k]-E_S.<fmt>`.
pub(crate) mod classify;
pub mod names;
