//! One `write_batch`: encode, cut into requests, send, handle partial acceptance (code 6),
//! wait for indexer acks (resending on ack timeout), and report.
use std::time::{Duration, Instant};

use azlog_codecs::hec::{Encoded, HecEncoder};
use azlog_plugin_api::{BatchReport, Health, Record, Rejection, Sink, SinkError};

use crate::client::{HecClient, Reply};
use crate::settings::Checked;

/// The Splunk HEC sink.
pub struct HecSink {
    pub(crate) encoder: HecEncoder,
    pub(crate) client: HecClient,
    max_request_bytes: usize,
    max_events: usize,
    ack: bool,
    ack_timeout: Duration,
    ack_poll: Duration,
    ack_resends: u32,
    last_error: Option<String>,
}

/// The encoded batch: one body buffer, event boundaries and the record of each event.
struct EncodedBatch {
    buf: Vec<u8>,
    ends: Vec<usize>,
    record_of: Vec<usize>,
    /// Per record: index of its first event and number of events (0 = rejected by encoder).
    span: Vec<(usize, usize)>,
}

impl EncodedBatch {
    fn start(&self, e: usize) -> usize {
        if e == 0 {
            0
        } else {
            self.ends[e - 1]
        }
    }
}

/// A request in flight whose ackId has not come back true yet.
struct PendingAck {
    ack_id: u64,
    first: usize,
    end: usize,
    resends: u32,
}

impl HecSink {
    /// Opens the sink from checked settings ([`crate::settings::Settings::check`]: token resolved, encoder and
    /// TLS configuration built). Connects nothing yet: the first batch does.
    pub fn open(checked: Checked) -> Result<HecSink, SinkError> {
        let Checked {
            settings,
            token,
            encoder,
            tls,
        } = checked;
        let channel = settings
            .channel
            .clone()
            .unwrap_or_else(crate::settings::new_guid);
        let client = HecClient::new(&settings, &token, channel, tls)?;
        tracing::info!(url = %settings.url, channel = %client.channel(), ack = settings.ack, gzip = settings.gzip, "splunk-hec sink opened");
        Ok(HecSink {
            encoder,
            client,
            max_request_bytes: settings.max_request_bytes,
            max_events: settings.max_events_per_request,
            ack: settings.ack,
            ack_timeout: Duration::from_millis(settings.ack_timeout_ms),
            ack_poll: Duration::from_millis(settings.ack_poll_interval_ms.max(1)),
            ack_resends: settings.ack_resends,
            last_error: None,
        })
    }

    fn encode(&self, records: &[Record], rejected: &mut Vec<Rejection>) -> EncodedBatch {
        let mut enc = EncodedBatch {
            buf: Vec::with_capacity(records.len() * 1024),
            ends: Vec::with_capacity(records.len()),
            record_of: Vec::with_capacity(records.len()),
            span: Vec::with_capacity(records.len()),
        };
        for (i, r) in records.iter().enumerate() {
            let first = enc.ends.len();
            match self.encoder.encode(r, &mut enc.buf, &mut enc.ends) {
                Ok(Encoded::Whole) => {}
                Ok(Encoded::Truncated {
                    original_bytes,
                    kept_bytes,
                }) => tracing::warn!(
                    record = i,
                    original_bytes,
                    kept_bytes,
                    "oversize event truncated (marked azlog_truncated=true)"
                ),
                Ok(Encoded::Split { parts }) => tracing::warn!(
                    record = i,
                    parts,
                    "oversize event split (marked azlog_part/azlog_split_id)"
                ),
                Err(reason) => {
                    tracing::warn!(record = i, %reason, "oversize event rejected");
                    rejected.push(Rejection::new(i, reason));
                }
            }
            let n = enc.ends.len() - first;
            enc.record_of.extend(std::iter::repeat_n(i, n));
            enc.span.push((first, n));
        }
        enc
    }

    /// The end (exclusive) of the request starting at event `first`.
    fn request_end(&self, enc: &EncodedBatch, first: usize) -> usize {
        let base = enc.start(first);
        let mut end = first + 1;
        while end < enc.ends.len()
            && end - first < self.max_events
            && enc.ends[end] - base <= self.max_request_bytes
        {
            end += 1;
        }
        end
    }

    fn send(&self, enc: &EncodedBatch, first: usize, end: usize) -> Result<Reply, SinkError> {
        self.client
            .post_events(&enc.buf[enc.start(first)..enc.ends[end - 1]])
    }

    fn deliver(&mut self, records: &[Record]) -> BatchReport {
        let mut rejected = Vec::new();
        let enc = self.encode(records, &mut rejected);
        let n_events = enc.ends.len();
        let mut done = vec![false; n_events];
        let mut pending: Vec<PendingAck> = Vec::new();
        let mut failure: Option<SinkError> = None;
        let mut e = 0;
        while e < n_events {
            let end = self.request_end(&enc, e);
            match self.send(&enc, e, end) {
                Ok(Reply::Accepted { ack_id }) => {
                    match (self.ack, ack_id) {
                        (true, Some(ack_id)) => pending.push(PendingAck {
                            ack_id,
                            first: e,
                            end,
                            resends: 0,
                        }),
                        (true, None) => {
                            failure = Some(SinkError::permanent(
                                "`ack = true` but Splunk HEC answered without an ackId: \
                                 enable indexer acknowledgement on the token or set ack = false",
                            ));
                            break;
                        }
                        (false, _) => done[e..end].iter_mut().for_each(|d| *d = true),
                    }
                    e = end;
                }
                Ok(Reply::InvalidEvent { index, code, text }) => {
                    let bad = e + index;
                    if bad >= end {
                        failure = Some(SinkError::retryable(format!(
                            "HEC reported invalid-event-number {index} for a {}-event request",
                            end - e
                        )));
                        break;
                    }
                    // Splunk kept the events before the bad one (no ackId for them).
                    done[e..bad].iter_mut().for_each(|d| *d = true);
                    let rec = enc.record_of[bad];
                    tracing::warn!(record = rec, code, %text, "Splunk HEC refused an event; resending the rest");
                    rejected.push(Rejection::new(
                        rec,
                        format!("Splunk HEC refused the event: {text} (code {code})"),
                    ));
                    // Skip the rest of that record (its other split parts, if any).
                    let (first, n) = enc.span[rec];
                    done[bad..first + n].iter_mut().for_each(|d| *d = true);
                    e = first + n;
                }
                Err(err) => {
                    failure = Some(err);
                    break;
                }
            }
        }
        if let Err(err) = self.await_acks(&enc, &mut pending, &mut done) {
            failure.get_or_insert(err);
        }
        // Handled prefix: leading records all of whose events are done.
        let handled = enc
            .span
            .iter()
            .take_while(|(first, n)| done[*first..first + n].iter().all(|d| *d))
            .count();
        rejected.retain(|r| (r.index as usize) < handled);
        rejected.sort_by_key(|r| r.index);
        rejected.dedup_by_key(|r| r.index);
        match failure {
            None if handled == records.len() => {
                self.last_error = None;
                BatchReport::with_rejections(records.len(), rejected)
            }
            other => {
                let err = other.unwrap_or_else(|| {
                    SinkError::retryable("Splunk HEC did not confirm every event")
                });
                self.last_error = Some(err.message.to_string());
                BatchReport::partial(handled, rejected, err)
            }
        }
    }

    /// Polls acks until all pending requests are indexed; a request not acked within
    /// `ack_timeout` is resent (up to `ack_resends` times).
    fn await_acks(
        &self,
        enc: &EncodedBatch,
        pending: &mut Vec<PendingAck>,
        done: &mut [bool],
    ) -> Result<(), SinkError> {
        let mut deadline = Instant::now() + self.ack_timeout;
        while !pending.is_empty() {
            std::thread::sleep(self.ack_poll.min(self.ack_timeout));
            let ids: Vec<u64> = pending.iter().map(|p| p.ack_id).collect();
            match self.client.poll_acks(&ids) {
                Ok(acked) => pending.retain(|p| {
                    let ok = acked.contains(&p.ack_id);
                    if ok {
                        done[p.first..p.end].iter_mut().for_each(|d| *d = true);
                    }
                    !ok
                }),
                Err(e) if e.is_retryable() => {
                    tracing::warn!(error = %e.message, "HEC ack poll failed; polling again")
                }
                Err(e) => return Err(e),
            }
            if pending.is_empty() || Instant::now() < deadline {
                continue;
            }
            // Ack timeout: resend what is still unacknowledged (new ackIds).
            if pending.iter().any(|p| p.resends >= self.ack_resends) {
                return Err(SinkError::retryable(format!(
                    "Splunk HEC indexer acknowledgement timed out for {} request(s) after {} resend(s)",
                    pending.len(),
                    self.ack_resends
                )));
            }
            for p in pending.iter_mut() {
                tracing::warn!(
                    ack_id = p.ack_id,
                    events = p.end - p.first,
                    "HEC ack timed out; resending"
                );
                match self.send(enc, p.first, p.end)? {
                    Reply::Accepted { ack_id: Some(id) } => {
                        p.ack_id = id;
                        p.resends += 1;
                    }
                    Reply::Accepted { ack_id: None } => {
                        return Err(SinkError::permanent(
                            "Splunk HEC stopped returning ackIds on resend",
                        ))
                    }
                    Reply::InvalidEvent { code, text, .. } => {
                        return Err(SinkError::retryable(format!(
                            "resend after ack timeout was refused: {text} (code {code})"
                        )))
                    }
                }
            }
            deadline = Instant::now() + self.ack_timeout;
        }
        Ok(())
    }
}

impl Sink for HecSink {
    fn write_batch(&mut self, records: &[Record]) -> Result<BatchReport, SinkError> {
        if self.last_error.is_some() {
            // Retrying after a failure: ask /services/collector/health first, so an
            // unhealthy HEC costs one small request instead of a whole batch upload.
            if let Err(e) = self.client.health() {
                self.last_error = Some(e.message.to_string());
                return Err(e);
            }
        }
        Ok(self.deliver(records))
    }

    fn health(&self) -> Health {
        match &self.last_error {
            None => Health::healthy(),
            Some(e) => Health::degraded(e.clone()),
        }
    }
}
