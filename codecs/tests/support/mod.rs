//! Test support shared by the codec tests, the codec benchmark and the syslog integration tests
//! (included with `#[path]`): realistic and hostile records, strict CEF and LEEF parsers, and
//! runners for the external validators (lognormalizer, PyPI cefp).
#![allow(dead_code)]
pub mod parsers;
pub mod records;
pub mod validators;
