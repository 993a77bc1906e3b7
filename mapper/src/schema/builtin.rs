//! The built-in tables (`schemas/*.toml`), embedded by `build.rs`.
include!(concat!(env!("OUT_DIR"), "/builtin_tables.rs"));
