//! SIEM wire formats as pure functions over the canonical record, separate from transport,
//! so plugins, `azlog-hub map --format ...` and the Kafka bridge share them.
pub mod cef;
pub mod hec;
pub mod leef;
