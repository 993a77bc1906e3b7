//! Source paths: the borrowed document tree a record is parsed into ([`tree`]), the path
//! syntax of the schema tables (`a.b[0]["k.with.dots"].$json.c`, see docs/schema-tables.md)
//! and its compiled form ([`syntax`]).
mod fast;
pub mod syntax;
pub mod tree;

pub use syntax::{parse_path, PathError, Seg};
pub use tree::Node;
