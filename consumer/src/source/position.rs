//! Where reading starts ([`StartFrom`]) and where a replay stops ([`Until`]), and their text
//! forms: `earliest`, `latest`, `offset:X`, `sequence:N`, `time:RFC3339`.
use std::fmt;

use crate::checkpoint::Checkpoint;

use super::RawEvent;

/// Start position of a partition reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartFrom {
    /// The oldest retained event.
    Earliest,
    /// Only events enqueued after the reader attaches.
    Latest,
    /// At (`inclusive`) or after an offset.
    Offset {
        /// Event Hubs offset (opaque string; numeric on the emulator and classic namespaces).
        offset: String,
        /// Include the event at `offset`.
        inclusive: bool,
    },
    /// At (`inclusive`) or after a sequence number.
    Sequence {
        /// Sequence number.
        sequence: i64,
        /// Include the event with this sequence number.
        inclusive: bool,
    },
    /// Events enqueued at or after this time (ns since the Unix epoch).
    EnqueuedTime(i64),
}

/// Inclusive upper bound of a replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Until {
    /// Up to and including this offset (offsets compared as integers).
    Offset(i64),
    /// Up to and including this sequence number.
    Sequence(i64),
    /// Events enqueued at or before this time (ns since the Unix epoch).
    EnqueuedTime(i64),
}

/// A position string that could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid position `{input}`: {reason} (use earliest, latest, offset:X, sequence:N or time:RFC3339, e.g. time:2024-05-01T10:00:00Z)")]
pub struct PositionError {
    /// What was given.
    pub input: String,
    /// Why it is wrong.
    pub reason: String,
}

fn err(input: &str, reason: impl Into<String>) -> PositionError {
    PositionError {
        input: input.to_owned(),
        reason: reason.into(),
    }
}

/// Parses an RFC 3339 time (or any timestamp form the mapper accepts) to ns since the epoch.
pub fn parse_time(input: &str, text: &str) -> Result<i64, PositionError> {
    azlog_mapper::convert::time::parse_timestamp(text.trim())
        .ok_or_else(|| err(input, format!("`{text}` is not an RFC 3339 time")))
}

/// Formats ns since the epoch as RFC 3339 UTC.
pub fn format_time(ns: i64) -> String {
    let mut out = Vec::with_capacity(32);
    azlog_plugin_api::ecs::write_rfc3339_ns(ns, &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

impl StartFrom {
    /// Parses `earliest`, `latest`, `offset:X`, `sequence:N` or `time:RFC3339` (positions given
    /// by value are inclusive).
    pub fn parse(input: &str) -> Result<StartFrom, PositionError> {
        let s = input.trim();
        match s.to_ascii_lowercase().as_str() {
            "earliest" | "beginning" | "start" => return Ok(StartFrom::Earliest),
            "latest" | "end" => return Ok(StartFrom::Latest),
            _ => {}
        }
        let Some((kind, value)) = s.split_once(':') else {
            return Err(err(input, "unknown position"));
        };
        match kind.trim().to_ascii_lowercase().as_str() {
            "offset" => {
                let offset = value.trim();
                if offset.is_empty() {
                    return Err(err(input, "empty offset"));
                }
                Ok(StartFrom::Offset {
                    offset: offset.to_owned(),
                    inclusive: true,
                })
            }
            "sequence" | "seq" => value
                .trim()
                .parse::<i64>()
                .map(|sequence| StartFrom::Sequence {
                    sequence,
                    inclusive: true,
                })
                .map_err(|_| err(input, "the sequence number is not an integer")),
            "time" | "enqueued" => Ok(StartFrom::EnqueuedTime(parse_time(input, value)?)),
            other => Err(err(input, format!("unknown position kind `{other}`"))),
        }
    }

    /// Resume position after a checkpoint: exclusive, by offset when known (as the official
    /// SDK processors do), else by sequence number.
    pub fn after(checkpoint: &Checkpoint) -> StartFrom {
        match &checkpoint.offset {
            Some(offset) if !offset.is_empty() => StartFrom::Offset {
                offset: offset.clone(),
                inclusive: false,
            },
            _ => StartFrom::Sequence {
                sequence: checkpoint.sequence,
                inclusive: false,
            },
        }
    }

    /// Whether an event at this position is at or after the start (for sources that filter
    /// themselves, e.g. the in-memory source). `Latest` admits nothing already stored.
    pub fn admits(&self, event: &RawEvent) -> bool {
        match self {
            StartFrom::Earliest => true,
            StartFrom::Latest => false,
            StartFrom::Offset { offset, inclusive } => {
                match compare_offsets(&event.offset, offset) {
                    Some(std::cmp::Ordering::Greater) => true,
                    Some(std::cmp::Ordering::Equal) => *inclusive,
                    _ => false,
                }
            }
            StartFrom::Sequence {
                sequence,
                inclusive,
            } => event.sequence > *sequence || (*inclusive && event.sequence == *sequence),
            StartFrom::EnqueuedTime(ns) => event.enqueued_ns.is_some_and(|t| t >= *ns),
        }
    }
}

impl fmt::Display for StartFrom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartFrom::Earliest => f.write_str("earliest"),
            StartFrom::Latest => f.write_str("latest"),
            StartFrom::Offset { offset, inclusive } => {
                write!(f, "offset {}{offset}", if *inclusive { ">=" } else { ">" })
            }
            StartFrom::Sequence {
                sequence,
                inclusive,
            } => write!(
                f,
                "sequence {}{sequence}",
                if *inclusive { ">=" } else { ">" }
            ),
            StartFrom::EnqueuedTime(ns) => write!(f, "enqueued >= {}", format_time(*ns)),
        }
    }
}

impl Until {
    /// Parses `offset:X`, `sequence:N` or `time:RFC3339` (inclusive bounds).
    pub fn parse(input: &str) -> Result<Until, PositionError> {
        let s = input.trim();
        let Some((kind, value)) = s.split_once(':') else {
            return Err(err(input, "an --until bound needs a kind"));
        };
        match kind.trim().to_ascii_lowercase().as_str() {
            "offset" => value
                .trim()
                .parse::<i64>()
                .map(Until::Offset)
                .map_err(|_| err(input, "--until offset must be numeric")),
            "sequence" | "seq" => value
                .trim()
                .parse::<i64>()
                .map(Until::Sequence)
                .map_err(|_| err(input, "the sequence number is not an integer")),
            "time" | "enqueued" => Ok(Until::EnqueuedTime(parse_time(input, value)?)),
            other => Err(err(input, format!("unknown bound kind `{other}`"))),
        }
    }

    /// True when `event` lies beyond the bound (the replay of its partition is over).
    pub fn is_past(&self, event: &RawEvent) -> bool {
        match self {
            Until::Offset(o) => event.offset.trim().parse::<i64>().is_ok_and(|e| e > *o),
            Until::Sequence(s) => event.sequence > *s,
            Until::EnqueuedTime(t) => event.enqueued_ns.is_some_and(|e| e > *t),
        }
    }
}

impl fmt::Display for Until {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Until::Offset(o) => write!(f, "offset <= {o}"),
            Until::Sequence(s) => write!(f, "sequence <= {s}"),
            Until::EnqueuedTime(t) => write!(f, "enqueued <= {}", format_time(*t)),
        }
    }
}

/// Compares two offsets: numerically when both are integers, else `None` unless equal.
pub fn compare_offsets(a: &str, b: &str) -> Option<std::cmp::Ordering> {
    match (a.trim().parse::<i128>(), b.trim().parse::<i128>()) {
        (Ok(x), Ok(y)) => Some(x.cmp(&y)),
        _ if a == b => Some(std::cmp::Ordering::Equal),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(offset: &str, sequence: i64, t: i64) -> RawEvent {
        RawEvent {
            body: vec![],
            partition: "0".into(),
            offset: offset.into(),
            sequence,
            enqueued_ns: Some(t),
        }
    }

    #[test]
    fn parses_start_positions() {
        assert_eq!(StartFrom::parse("earliest").unwrap(), StartFrom::Earliest);
        assert_eq!(StartFrom::parse(" Latest ").unwrap(), StartFrom::Latest);
        assert_eq!(
            StartFrom::parse("offset:4096").unwrap(),
            StartFrom::Offset {
                offset: "4096".into(),
                inclusive: true
            }
        );
        assert_eq!(
            StartFrom::parse("sequence:42").unwrap(),
            StartFrom::Sequence {
                sequence: 42,
                inclusive: true
            }
        );
        assert_eq!(
            StartFrom::parse("time:2024-05-01T10:00:00Z").unwrap(),
            StartFrom::EnqueuedTime(1_714_557_600_000_000_000)
        );
        for bad in ["", "sequence:x", "time:yesterday", "offset:", "middle"] {
            let e = StartFrom::parse(bad).unwrap_err();
            assert!(e.to_string().contains("earliest, latest"), "{e}");
        }
    }

    #[test]
    fn parses_until_bounds_and_checks_them() {
        let u = Until::parse("sequence:5").unwrap();
        assert!(!u.is_past(&ev("0", 5, 0)));
        assert!(u.is_past(&ev("0", 6, 0)));
        let t = Until::parse("time:2024-05-01T10:00:00Z").unwrap();
        assert!(!t.is_past(&ev("0", 0, 1_714_557_600_000_000_000)));
        assert!(t.is_past(&ev("0", 0, 1_714_557_600_000_000_001)));
        let o = Until::parse("offset:100").unwrap();
        assert!(!o.is_past(&ev("100", 0, 0)));
        assert!(o.is_past(&ev("101", 0, 0)));
        assert!(Until::parse("latest").is_err());
        assert!(Until::parse("offset:abc").is_err());
    }

    #[test]
    fn admits_and_resumes_after_checkpoints() {
        let cp = Checkpoint {
            partition: "0".into(),
            offset: Some("200".into()),
            sequence: 2,
            enqueued_ns: None,
        };
        let start = StartFrom::after(&cp);
        assert!(!start.admits(&ev("200", 2, 0)));
        assert!(start.admits(&ev("300", 3, 0)));
        let no_offset = Checkpoint { offset: None, ..cp };
        assert_eq!(
            StartFrom::after(&no_offset),
            StartFrom::Sequence {
                sequence: 2,
                inclusive: false
            }
        );
        assert!(StartFrom::EnqueuedTime(10).admits(&ev("1", 1, 10)));
        assert!(!StartFrom::EnqueuedTime(10).admits(&ev("1", 1, 9)));
        assert!(!StartFrom::Latest.admits(&ev("1", 1, 9)));
    }
}
