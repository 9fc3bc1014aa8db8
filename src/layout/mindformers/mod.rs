//! The MindFormers legacy layout: `rank_R/` folders, `meta.json`, `<prefix>_rank_R[_k]-E_S.<fmt>`.
pub mod classify;
pub mod names;
