//! Which records a sink wants.
use azlog_plugin_api::{Record, Value};

use super::config::FilterConfig;

/// A compiled [`FilterConfig`].
#[derive(Clone, Debug, Default)]
pub struct RecordFilter {
    datasets_exact: Vec<String>,
    datasets_prefix: Vec<String>,
    categories: Vec<String>,
    min_severity: Option<i64>,
}

impl RecordFilter {
    /// Compiles a filter.
    pub fn new(cfg: &FilterConfig) -> Self {
        let mut f = RecordFilter {
            min_severity: cfg.min_severity,
            categories: cfg.categories.clone(),
            ..RecordFilter::default()
        };
        for d in &cfg.datasets {
            match d.strip_suffix('*') {
                Some(prefix) => f.datasets_prefix.push(prefix.to_string()),
                None => f.datasets_exact.push(d.clone()),
            }
        }
        f
    }

    /// True when the record passes every configured condition.
    pub fn matches(&self, r: &Record) -> bool {
        if !(self.datasets_exact.is_empty() && self.datasets_prefix.is_empty()) {
            let Some(ds) = r.get_str("event.dataset") else {
                return false;
            };
            let ok = self.datasets_exact.iter().any(|d| d == ds)
                || self
                    .datasets_prefix
                    .iter()
                    .any(|p| ds.starts_with(p.as_str()));
            if !ok {
                return false;
            }
        }
        if !self.categories.is_empty() {
            let want = |c: &str| self.categories.iter().any(|w| w.eq_ignore_ascii_case(c));
            let ecs = match r.get("event.category") {
                Some(Value::List(items)) => items.iter().any(|c| want(c)),
                Some(Value::Str(c)) => want(c),
                _ => false,
            };
            let azure = r.get_str("azure.category").is_some_and(want);
            if !(ecs || azure) {
                return false;
            }
        }
        if let Some(min) = self.min_severity {
            match r.get_i64("event.severity") {
                Some(s) if s >= min => {}
                _ => return false,
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use abi_stable::std_types::{RString, RVec};
    use azlog_plugin_api::{Field, Position, Text};

    fn rec(fields: Vec<(&str, Value)>) -> Record {
        let fields = fields
            .into_iter()
            .map(|(k, v)| Field {
                key: Text::from(k),
                value: v,
            })
            .collect();
        Record::from_fields(0, fields, RString::new(), Position::default())
    }

    #[test]
    fn datasets_categories_and_severity() {
        let f = RecordFilter::new(&FilterConfig {
            datasets: vec!["azure.signinlogs".into(), "azure.activity*".into()],
            categories: vec!["authentication".into(), "Administrative".into()],
            min_severity: Some(3),
        });
        let cat = |c: &str| Value::List(RVec::from(vec![Text::from(c)]));
        let ok = rec(vec![
            ("event.dataset", "azure.signinlogs".into()),
            ("event.category", cat("authentication")),
            ("event.severity", Value::Int(3)),
        ]);
        assert!(f.matches(&ok));
        let by_prefix_and_azure_category = rec(vec![
            ("event.dataset", "azure.activitylogs".into()),
            ("azure.category", "administrative".into()),
            ("event.severity", Value::Int(9)),
        ]);
        assert!(f.matches(&by_prefix_and_azure_category));
        let low = rec(vec![
            ("event.dataset", "azure.signinlogs".into()),
            ("event.category", cat("authentication")),
            ("event.severity", Value::Int(2)),
        ]);
        assert!(!f.matches(&low));
        let no_sev = rec(vec![
            ("event.dataset", "azure.signinlogs".into()),
            ("event.category", cat("authentication")),
        ]);
        assert!(!f.matches(&no_sev));
        let other_ds = rec(vec![
            ("event.dataset", "azure.auditlogs".into()),
            ("event.category", cat("authentication")),
            ("event.severity", Value::Int(5)),
        ]);
        assert!(!f.matches(&other_ds));
        let other_cat = rec(vec![
            ("event.dataset", "azure.signinlogs".into()),
            ("event.category", cat("network")),
            ("event.severity", Value::Int(5)),
        ]);
        assert!(!f.matches(&other_cat));
        assert!(RecordFilter::new(&FilterConfig::default()).matches(&rec(vec![])));
    }
}
