//! The terminal UI: state ([`state`]), actions and the keymap ([`action`], [`keymap`]),
//! transitions ([`update`]), one render function per screen region ([`render`]), colours
//! ([`theme`]) and the event loop ([`run`]).
pub(crate) mod action;
pub mod help;
pub(crate) mod keymap;
pub mod render;
pub mod run;
pub mod state;
pub mod theme;
pub(crate) mod update;
pub use update::{apply_deltas, on_cue};
