//! Output formats. Every one is built from the same [`crate::resolve::Analysis`].
pub mod json;
pub mod terminal;
pub mod text;
