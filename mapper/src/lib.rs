//! Envelope decoding, schema tables and the mapper: raw bytes in, canonical records out.
//!
//! - [`envelope`]: splits event bodies and files (`{"records":[...]}`, NDJSON, arrays, bare
//!   objects, BOM) into single raw records, streaming; sanitizers for known-bad JSON.
//! - [`schema`]: loads and checks the schema tables (`schemas/*.toml`, see docs/schema-tables.md)
//!   and compiles them into a plan.
//! - [`convert`]: the value conversions the tables name (timestamps, IPs, resource ids, ...).
//! - [`extract`]: the tables' `extract` regexes, with a direct matcher for simple ones.
//! - [`winxml`]: Windows event XML (`<Event>`) into a tree the tables can address with `$xml`.
//! - [`mapper`]: runs the plan over one raw record and builds the canonical [`Record`].
//! - [`payload_keys`]: the keys built from records' member names, kept as `'static` text
//!   within a fixed budget.
//! - [`deadletter`]: the dead-letter store (NDJSON, reason + position + raw bytes).
pub use azlog_plugin_api::{Field, Position, Record, Value};

mod body_split;
pub mod convert;
pub mod deadletter;
pub mod envelope;
pub mod extract;
mod layout;
pub mod mapper;
mod object_end;
pub mod path;
pub mod payload_keys;
mod root_index;
pub mod schema;
mod scratch;
#[cfg(test)]
mod test_fixtures;
pub mod winxml;

pub use mapper::{MapError, MapInput, Mapper};
