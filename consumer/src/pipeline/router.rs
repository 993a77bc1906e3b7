//! The router: which sinks a record goes to (each sink's `[sink.filter]`).
use azlog_plugin_api::Record;

use crate::sink_host::{RecordFilter, SinkConfig};

/// Compiled filters of the pipeline's sinks, in sink order.
#[derive(Debug, Clone, Default)]
pub struct Router {
    filters: Vec<RecordFilter>,
}

impl Router {
    /// A router for these sinks.
    pub fn new(sinks: &[SinkConfig]) -> Self {
        Router {
            filters: sinks.iter().map(|s| RecordFilter::new(&s.filter)).collect(),
        }
    }

    /// Number of sinks.
    pub fn len(&self) -> usize {
        self.filters.len()
    }

    /// True without sinks.
    pub fn is_empty(&self) -> bool {
        self.filters.is_empty()
    }

    /// Appends `record` to `out[i]` for every sink `i` that wants it (cloning for all but the
    /// last). Returns how many sinks took it.
    pub fn route(&self, record: Record, out: &mut [Vec<Record>]) -> u64 {
        // Each filter is evaluated once; no allocation per record.
        let Some(last) = self.filters.iter().rposition(|f| f.matches(&record)) else {
            return 0;
        };
        let mut n = 1;
        for (i, f) in self.filters[..last].iter().enumerate() {
            if f.matches(&record) {
                out[i].push(record.clone());
                n += 1;
            }
        }
        out[last].push(record);
        n
    }
}
