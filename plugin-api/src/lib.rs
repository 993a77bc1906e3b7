//! The stable ABI between the azlog-hub host and its sink plugins.
//!
//! `record` holds the canonical record every stage speaks; the sink trait and the
//! root module that plugins export live beside it.
pub mod ecs;
pub mod record;

pub use record::{Field, Position, Record, Value};
