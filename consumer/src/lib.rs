//! azlog-hub: sources, router, sink host, checkpoints, CLI.
pub mod cli;
pub mod render;
pub mod sink_host;
pub mod source;
pub mod ack;
pub mod azure_storage;
pub mod checkpoint;
