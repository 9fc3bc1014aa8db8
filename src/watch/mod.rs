//! Live watching: a changing checkpoint tree kept current as model deltas (see [`run`]), on
//! local filesystems with inotify hints and everywhere with a reconcile poll. The watcher
//! decides nothing about resuming: it pushes deltas to whoever listens (a [`crate::session`]).
pub(crate) mod backlog;
pub(crate) mod many;
pub(crate) mod mode;
pub(crate) mod remote;
pub(crate) mod run;

pub use many::spawn_many;
pub use mode::Mode;
pub use remote::RemoteSource;
pub use run::{spawn, WatchConfig, WatchError, WatchHandle, WatchMsg};
