//! azlog-sink-leef
