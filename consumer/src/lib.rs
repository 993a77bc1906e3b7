//! azlog-hub: sources, router, sink host, checkpoints, CLI.
pub mod ack;
pub mod azure_storage;
pub mod checkpoint;
pub mod cli;
pub mod config;
pub mod pipeline;
pub mod render;
pub mod service;
pub mod sink_host;
pub mod source;
