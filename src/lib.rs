//! ckptscope: see, verify and predict how a distributed training job resumes from its
//! checkpoints. The library holds everything; the binary is a thin command-line adapter.
//!
//! Data flow: [`scan`] builds a [`model::Tree`] through the [`fsys::Fs`] seam; the pure
//! [`resolve`] functions turn it (plus configuration) into an [`resolve::Analysis`]; [`report`]
//! renders that as text or JSON. [`writer`] produces real-format trees for the demo, tests and
//! benchmarks.

pub mod cli;
pub mod demo;
pub mod fsys;
pub mod grid;
pub mod layout;
pub mod model;
pub mod py;
pub mod report;
pub mod resolve;
pub mod scan;
pub mod sim;
pub mod ui;
pub mod verify;
pub mod watch;
pub mod writer;
