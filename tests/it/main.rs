//! Every integration test in one binary: the library is linked once, not once per file.

mod agreement;
mod cli;
mod common;
mod demo;
mod demo_scenarios;
mod fixtures;
mod fuzz_inputs;
mod hostile;
mod incremental;
mod integrity;
mod live_view;
mod load_outcome;
mod properties;
mod pyjson_vectors;
mod readonly;
mod safe;
mod scan;
mod sim_grid;
mod spec_vectors;
mod tui;
mod tui_keys;
mod tui_pty;
mod tui_view;
mod verdicts;
mod verify_cli;
mod watch;
