//! azlog-sink-file
