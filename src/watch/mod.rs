//! Live watching: a changing checkpoint tree streamed into the model (see [`run`]), on local
//! filesystems with inotify hints and everywhere with a reconcile poll.
pub mod diff;
pub mod event;
pub mod mounts;
pub mod run;

pub use event::{Mode, WatchEvent};
pub use run::{spawn, WatchConfig, WatchHandle};
