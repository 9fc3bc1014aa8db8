//! ckptscope: see, verify and predict how a distributed training job resumes from its
//! checkpoints. The library holds everything; the binary is a thin command-line adapter.
//!
//! Data flow: [`job::JobContext::gather`] collects the job's facts once (flags, environment,
//! YAML, mount table, resume record) through the [`fsys::Fs`] seam; [`scan`] builds a
//! [`model::Tree`]; a [`session::Session`] owns both (plus the simulation overlay) and is the
//! only place the pure [`resolve`] functions run, producing the [`resolve::Analysis`] and the
//! grid. [`watch`] keeps a session's model current with deltas; [`report`] renders answers as
//! text or JSON. [`writer`] produces real-format trees for the demo, tests and benchmarks.

pub mod cli;
pub mod demo;
pub mod fsys;
pub mod grid;
pub mod job;
pub mod layout;
pub mod model;
pub mod objstore;
pub mod py;
pub mod remote;
pub mod report;
pub mod resolve;
pub mod scan;
pub mod session;
pub mod sim;
pub mod ui;
pub mod verify;
pub mod watch;
pub mod writer;

pub use job::{Environment, JobContext, JobError, JobFlags};
pub use model::{Delta, ShardCheck, ShardResult, Tree, Verdict};
pub use resolve::Analysis;
pub use session::{events::Event, Session};
