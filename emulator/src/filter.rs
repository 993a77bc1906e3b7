//! Parsing of the `apache.org:selector-filter:string` expressions Event Hubs clients send to pick
//! the start position of a receiver.
//!
//! Accepted spellings (whitespace-tolerant, value quoted with `'`, or unquoted):
//! `amqp.annotation.x-opt-offset > '-1'`, `... > '@latest'`, `... >= '1234'`, `...>'1234'`,
//! `amqp.annotation.x-opt-sequence-number > 5`, `amqp.annotation.x-opt-enqueued-time >= '<ms>'`.

use thiserror::Error;

/// Where a receiver starts reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartPosition {
    /// The oldest retained event (`x-opt-offset > -1`).
    Earliest,
    /// Only events enqueued after the receiver attached (`x-opt-offset > @latest`).
    Latest,
    /// First event whose offset is greater than (or equal to, if inclusive) the value.
    Offset { offset: i64, inclusive: bool },
    /// First event whose sequence number is greater than (or equal to) the value.
    SequenceNumber { seq: i64, inclusive: bool },
    /// First event enqueued after (or at) the given time, milliseconds since the Unix epoch.
    EnqueuedTime { millis: i64, inclusive: bool },
}

impl StartPosition {
    /// Whether an event with these coordinates satisfies the position (is at or after it).
    /// `Earliest` matches everything; `Latest` is resolved by the caller.
    pub fn matches(&self, seq: i64, offset: i64, enqueued_ms: i64) -> bool {
        fn cmp(value: i64, bound: i64, inclusive: bool) -> bool {
            if inclusive {
                value >= bound
            } else {
                value > bound
            }
        }
        match *self {
            StartPosition::Earliest | StartPosition::Latest => true,
            StartPosition::Offset {
                offset: o,
                inclusive,
            } => cmp(offset, o, inclusive),
            StartPosition::SequenceNumber { seq: s, inclusive } => cmp(seq, s, inclusive),
            StartPosition::EnqueuedTime { millis, inclusive } => {
                cmp(enqueued_ms, millis, inclusive)
            }
        }
    }
}

/// A selector expression the emulator does not understand.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("invalid selector filter {expression:?}: {reason}")]
pub struct FilterError {
    /// The expression as received.
    pub expression: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

const OFFSET: &str = "amqp.annotation.x-opt-offset";
const SEQUENCE: &str = "amqp.annotation.x-opt-sequence-number";
const ENQUEUED: &str = "amqp.annotation.x-opt-enqueued-time";

/// Parses one selector expression.
pub fn parse_selector(expression: &str) -> Result<StartPosition, FilterError> {
    let err = |reason| FilterError {
        expression: expression.to_string(),
        reason,
    };
    let text = expression.trim();
    let op_at = text
        .find(['>', '<', '='])
        .ok_or_else(|| err("no comparison operator"))?;
    let field = text[..op_at].trim();
    let rest = &text[op_at..];
    let (inclusive, value) = if let Some(v) = rest.strip_prefix(">=") {
        (true, v)
    } else if let Some(v) = rest.strip_prefix('>') {
        (false, v)
    } else {
        return Err(err("only '>' and '>=' are supported"));
    };
    let value = value.trim();
    let value = match value.strip_prefix('\'') {
        Some(v) => v
            .strip_suffix('\'')
            .ok_or_else(|| err("unterminated quote"))?,
        None => value,
    }
    .trim();
    if value.is_empty() {
        return Err(err("empty value"));
    }
    if field.eq_ignore_ascii_case(OFFSET) {
        if value == "@latest" {
            return Ok(StartPosition::Latest);
        }
        let offset: i64 = value.parse().map_err(|_| err("offset is not an integer"))?;
        if offset == -1 && !inclusive {
            return Ok(StartPosition::Earliest);
        }
        if offset < -1 {
            return Err(err("offset must be >= -1"));
        }
        Ok(StartPosition::Offset { offset, inclusive })
    } else if field.eq_ignore_ascii_case(SEQUENCE) {
        let seq: i64 = value
            .parse()
            .map_err(|_| err("sequence number is not an integer"))?;
        if seq < -1 {
            return Err(err("sequence number must be >= -1"));
        }
        Ok(StartPosition::SequenceNumber { seq, inclusive })
    } else if field.eq_ignore_ascii_case(ENQUEUED) {
        let millis: i64 = value
            .parse()
            .map_err(|_| err("enqueued time is not milliseconds since the epoch"))?;
        Ok(StartPosition::EnqueuedTime { millis, inclusive })
    } else {
        Err(err(
            "unknown field (expected x-opt-offset, x-opt-sequence-number or x-opt-enqueued-time)",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_spellings() {
        assert_eq!(
            parse_selector("amqp.annotation.x-opt-offset > '-1'"),
            Ok(StartPosition::Earliest)
        );
        assert_eq!(
            parse_selector("amqp.annotation.x-opt-offset > '@latest'"),
            Ok(StartPosition::Latest)
        );
        assert_eq!(
            parse_selector("amqp.annotation.x-opt-offset >= '1200'"),
            Ok(StartPosition::Offset {
                offset: 1200,
                inclusive: true
            })
        );
        assert_eq!(
            parse_selector("amqp.annotation.x-opt-sequence-number > '7'"),
            Ok(StartPosition::SequenceNumber {
                seq: 7,
                inclusive: false
            })
        );
        assert_eq!(
            parse_selector("amqp.annotation.x-opt-enqueued-time > '1700000000000'"),
            Ok(StartPosition::EnqueuedTime {
                millis: 1_700_000_000_000,
                inclusive: false
            })
        );
    }

    #[test]
    fn rust_official_spelling_without_space() {
        assert_eq!(
            parse_selector("amqp.annotation.x-opt-offset >'55'"),
            Ok(StartPosition::Offset {
                offset: 55,
                inclusive: false
            })
        );
        assert_eq!(
            parse_selector("amqp.annotation.x-opt-enqueued-time >='10'"),
            Ok(StartPosition::EnqueuedTime {
                millis: 10,
                inclusive: true
            })
        );
    }

    #[test]
    fn unquoted_spelling() {
        assert_eq!(
            parse_selector("amqp.annotation.x-opt-offset > -1"),
            Ok(StartPosition::Earliest)
        );
        assert_eq!(
            parse_selector("amqp.annotation.x-opt-offset > @latest"),
            Ok(StartPosition::Latest)
        );
        assert_eq!(
            parse_selector("amqp.annotation.x-opt-sequence-number >= 5"),
            Ok(StartPosition::SequenceNumber {
                seq: 5,
                inclusive: true
            })
        );
    }

    #[test]
    fn bad_expressions_are_errors() {
        for bad in [
            "",
            "amqp.annotation.x-opt-offset",
            "amqp.annotation.x-opt-offset < '5'",
            "amqp.annotation.x-opt-offset = '5'",
            "amqp.annotation.x-opt-offset > 'abc'",
            "amqp.annotation.x-opt-offset > '5",
            "amqp.annotation.x-opt-foo > '5'",
            "amqp.annotation.x-opt-sequence-number > '-9'",
        ] {
            assert!(parse_selector(bad).is_err(), "{bad:?} should fail");
        }
    }

    #[test]
    fn matching_is_inclusive_or_exclusive() {
        let p = StartPosition::SequenceNumber {
            seq: 3,
            inclusive: true,
        };
        assert!(p.matches(3, 0, 0) && !p.matches(2, 0, 0));
        let p = StartPosition::Offset {
            offset: 100,
            inclusive: false,
        };
        assert!(!p.matches(0, 100, 0) && p.matches(0, 101, 0));
    }
}
