//! Topic templates: `azure.{dataset}`-style names resolved per record, sanitized to the
//! characters Kafka allows in a topic name (`[A-Za-z0-9._-]`, at most 249).
use azlog_plugin_api::{Record, SinkError};

use crate::settings::bad;

/// Kafka's longest topic name.
const MAX_TOPIC_LEN: usize = 249;

#[derive(Clone, Debug, PartialEq)]
enum Part {
    Lit(String),
    /// `event.dataset`, `unknown` when missing.
    Dataset,
    /// `azure.category`, `unknown` when missing.
    Category,
}

/// A parsed topic template.
#[derive(Clone, Debug, PartialEq)]
pub struct TopicTemplate {
    parts: Vec<Part>,
}

impl TopicTemplate {
    /// Parses `text`: literal characters plus `{dataset}` and `{category}`.
    pub fn parse(text: &str) -> Result<TopicTemplate, SinkError> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Lit(rest[..open].to_string()));
            }
            let close = rest[open..]
                .find('}')
                .ok_or_else(|| bad(format!("`topic` {text:?}: unclosed `{{`")))?;
            let name = &rest[open..open + close + 1];
            parts.push(match name {
                "{dataset}" => Part::Dataset,
                "{category}" => Part::Category,
                other => {
                    return Err(bad(format!(
                        "`topic` {text:?}: unknown placeholder {other} (use {{dataset}} or {{category}})"
                    )))
                }
            });
            rest = &rest[open + close + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Lit(rest.to_string()));
        }
        if parts.is_empty() {
            return Err(bad("`topic` is empty"));
        }
        for p in &parts {
            if let Part::Lit(l) = p {
                if l.bytes().any(|b| !is_topic_byte(b)) {
                    return Err(bad(format!(
                        "`topic` {text:?}: Kafka topic names allow only letters, digits, `.`, `_` and `-`"
                    )));
                }
            }
        }
        Ok(TopicTemplate { parts })
    }

    /// Renders the topic of `r` into `out` (cleared first).
    pub fn render(&self, r: &Record, out: &mut String) {
        out.clear();
        for p in &self.parts {
            match p {
                Part::Lit(l) => out.push_str(l),
                Part::Dataset => push_sanitized(out, r.get_str("event.dataset")),
                Part::Category => push_sanitized(out, r.get_str("azure.category")),
            }
        }
        if out.len() > MAX_TOPIC_LEN {
            out.truncate(MAX_TOPIC_LEN);
        }
        if out == "." || out == ".." {
            out.clear();
            out.push_str("unknown");
        }
    }
}

fn is_topic_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')
}

/// Appends `value` lower-cased with every byte Kafka refuses replaced by `_`.
fn push_sanitized(out: &mut String, value: Option<&str>) {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => out.push_str("unknown"),
        Some(v) => out.extend(v.chars().map(|c| {
            if c.is_ascii() && is_topic_byte(c as u8) {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use abi_stable::std_types::RString;
    use azlog_plugin_api::{Field, Position, Text, Value};

    fn rec(fields: &[(&str, &str)]) -> Record {
        Record::from_fields(
            0,
            fields
                .iter()
                .map(|(k, v)| Field {
                    key: Text::from(*k),
                    value: Value::from(*v),
                })
                .collect(),
            RString::new(),
            Position::default(),
        )
    }

    fn topic(t: &str, r: &Record) -> String {
        let mut s = String::new();
        TopicTemplate::parse(t).expect("parse").render(r, &mut s);
        s
    }

    #[test]
    fn placeholders_are_sanitized() {
        let r = rec(&[
            ("event.dataset", "azure.SignInLogs"),
            ("azure.category", "Service Health/ä"),
        ]);
        assert_eq!(topic("{dataset}", &r), "azure.signinlogs");
        assert_eq!(topic("siem.{dataset}", &r), "siem.azure.signinlogs");
        assert_eq!(topic("logs-{category}", &r), "logs-service_health__");
        assert_eq!(topic("{dataset}", &rec(&[])), "unknown");
        assert_eq!(topic("fixed", &r), "fixed");
        let long = "x".repeat(300);
        assert_eq!(
            topic("{dataset}", &rec(&[("event.dataset", long.as_str())])).len(),
            249
        );
        assert_eq!(
            topic("{dataset}", &rec(&[("event.dataset", ".")])),
            "unknown"
        );
    }

    #[test]
    fn bad_templates_are_refused() {
        for t in ["", "a{b}", "a{dataset", "with space", "a/b"] {
            assert!(TopicTemplate::parse(t).is_err(), "{t:?}");
        }
    }
}
