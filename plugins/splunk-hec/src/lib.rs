//! azlog-sink-splunk-hec
