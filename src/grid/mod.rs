//! The step × rank grid: what each cell shows ([`cell`]), the grid built from a (possibly
//! simulated) view ([`model`]), and its plain-text rendering for non-terminal output ([`text`]).
//! The grid of a job is built by its [`crate::session::Session`].
pub mod cell;
pub mod model;
pub mod newfmt;
pub(crate) mod text;
