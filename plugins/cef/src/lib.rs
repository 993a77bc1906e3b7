//! azlog-sink-cef
