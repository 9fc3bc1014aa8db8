//! Producing real-format checkpoint trees (for the demo, tests and benchmarks).
pub mod ckpt;
pub mod newfmt;
pub mod run;
pub(crate) mod tree;
