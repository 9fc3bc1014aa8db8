//! Output formats. Every one is built from the same [`crate::resolve::Analysis`].
pub mod group;
pub mod json;
pub(crate) mod terminal;
pub mod text;
pub mod text_new;
