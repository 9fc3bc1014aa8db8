//! MindFormers 2.1.0's new checkpoint format (`iteration_{N:08d}/` folders, the tracker
//! `latest_checkpointed_iteration.txt`, `common.json`, `metadata.json`): the spec is
//! `mindformers-new-format.md`. Built piece by piece (issue 13); so far the tracker (§6.2) and
//! the shard names (§2.3), `get_checkpoint_path` (§6.1), `verify_ckpt_valid` (§6.3), the resume context from `common.json`
//! (§3.1, §7.2, §7.4, §8).

pub mod analysis;
pub mod answer;
pub mod checks;
pub mod config;
pub mod context;
pub mod hazards;
pub mod names;
pub mod resolve;
pub mod tracker;
pub mod valid;
pub mod weights;
