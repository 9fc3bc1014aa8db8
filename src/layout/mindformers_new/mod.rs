//! MindFormers 2.1.0's new checkpoint format (`iteration_{N:08d}/` folders, the tracker
//! `latest_checkpointed_iteration.txt`, `common.json`, `metadata.json`): the spec is
//! `mindformers-new-format.md`. The pieces: the tracker (§6.2, [`tracker`]), shard names
//! (§2.3, [`names`]), the config stage (§1, [`config`]), `get_checkpoint_path` (§6.1,
//! [`resolve`]) and `verify_ckpt_valid` (§6.3, [`valid`]), the resume context from
//! `common.json` with health mode and the `load_ckpt_format` trap (§7, §8, [`context`],
//! [`answer`]), the weights stage per reading rank (§7.5, §9, [`weights`]); [`analysis`] puts
//! them together with the safe pick, [`hazards`] the warnings, [`checks`] `verify`'s folder
//! findings. All read the model through [`crate::model::TreeFs`], never the disk.

pub mod analysis;
pub mod answer;
pub mod checks;
pub mod config;
pub mod context;
pub mod hazards;
pub mod names;
pub mod resolve;
pub mod safe;
pub mod tracker;
pub mod valid;
pub mod weights;
