//! azlog-syslog
