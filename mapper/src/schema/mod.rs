//! Loading, checking and compiling schema tables into a plan (see docs/schema-tables.md).
//!
//! - [`file`]: the TOML shape (serde, spans kept for error lines);
//! - [`load`]: built-in and `--schemas DIR` sources, the load-time checks, compilation;
//! - [`plan`]: the compiled plan the mapper runs;
//! - [`detect_index`]: the pre-filter of detection by `equals` values;
//! - [`fxhash`]: the hasher of the plan's lookup tables;
//! - [`error`]: errors naming file, line and problem.
pub mod builtin;
pub mod detect_index;
pub mod error;
pub mod file;
pub mod fxhash;
pub mod load;
pub mod plan;

pub use error::{Issue, SchemaError};
pub use load::{builtin_sources, compile, overlay_sources, TableSource};
pub use plan::Plan;

#[cfg(test)]
mod tests;
