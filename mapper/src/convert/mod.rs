//! Value conversions named by schema tables (see docs/schema-tables.md).
