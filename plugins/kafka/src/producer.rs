//! The Kafka sink: an idempotent librdkafka producer whose delivery reports decide what the
//! host may acknowledge.
//!
//! `write_batch` enqueues every record, then polls the producer until librdkafka has reported
//! on each one (delivered, or failed), which it does within `message.timeout.ms`. The report
//! says which records are delivered: records before the first undelivered one are handled;
//! from that record on the batch is the host's to retry (records after it that did get through
//! are sent again: duplicates, never losses).
use std::sync::Mutex;
use std::time::{Duration, Instant};

use azlog_plugin_api::ecs::{write_ecs_json, EcsOptions};
use azlog_plugin_api::{BatchReport, Health, Record, Rejection, Sink, SinkError, Value};
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::util::Timeout;

use crate::settings::{Format, KeyFallback, Settings};
use crate::topic::TopicTemplate;

/// What became of one record of the current batch.
#[derive(Clone, Debug, PartialEq)]
enum Outcome {
    /// Enqueued, no delivery report yet (or never enqueued).
    Pending,
    /// The broker acknowledged it (acks=all).
    Delivered,
    /// The destination refuses this record for good (too large, invalid): dead-letter it.
    Rejected(String),
    /// Not delivered; retrying the batch from here may help.
    Retry(String),
    /// Not delivered; the sink is refused (authorization): park it.
    Fatal(String),
}

#[derive(Default)]
struct BatchState {
    generation: u64,
    outcomes: Vec<Outcome>,
    pending: usize,
}

/// The producer context: receives delivery reports (on the thread calling `poll`) and
/// librdkafka's logs and client errors.
pub struct Ctx {
    state: Mutex<BatchState>,
    last_error: Mutex<Option<String>>,
    /// The last client error that says the brokers refuse this client (SASL authentication,
    /// TLS verification); cleared by a delivered batch.
    refused: Mutex<Option<String>>,
}

impl Ctx {
    fn note_error(&self, msg: String) {
        if let Ok(mut e) = self.last_error.lock() {
            *e = Some(msg);
        }
    }
}

impl ClientContext for Ctx {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        // librdkafka's own log lines carry no credentials (it never logs sasl.password).
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => {
                tracing::error!(target: "azlog_sink_kafka::librdkafka", fac, "{log_message}")
            }
            RDKafkaLogLevel::Warning => {
                tracing::warn!(target: "azlog_sink_kafka::librdkafka", fac, "{log_message}")
            }
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::info!(target: "azlog_sink_kafka::librdkafka", fac, "{log_message}")
            }
            RDKafkaLogLevel::Debug => {
                tracing::debug!(target: "azlog_sink_kafka::librdkafka", fac, "{log_message}")
            }
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(%error, reason, "kafka sink: client error");
        let msg = format!("{error}: {reason}");
        if matches!(
            error.rdkafka_error_code(),
            Some(
                RDKafkaErrorCode::Authentication
                    | RDKafkaErrorCode::SaslAuthenticationFailed
                    | RDKafkaErrorCode::SSL
            )
        ) {
            if let Ok(mut r) = self.refused.lock() {
                *r = Some(msg.clone());
            }
        }
        self.note_error(msg);
    }
}

/// How long one `poll` call blocks. rdkafka's `BaseProducer::poll` keeps polling until its
/// timeout even after it handled events, so a long slice would add its length to every batch.
const POLL_SLICE: Duration = Duration::from_millis(1);

/// The delivery opaque: which batch and which record of it.
type Tag = Box<(u64, usize)>;

impl ProducerContext for Ctx {
    type DeliveryOpaque = Tag;

    fn delivery(&self, result: &DeliveryResult<'_>, tag: Tag) {
        let (generation, index) = *tag;
        let Ok(mut st) = self.state.lock() else {
            return;
        };
        if st.generation != generation || index >= st.outcomes.len() {
            // A report for an abandoned batch (already answered to the host): ignore.
            return;
        }
        if st.outcomes[index] != Outcome::Pending {
            return;
        }
        st.outcomes[index] = match result {
            Ok(_) => Outcome::Delivered,
            Err((e, _)) => classify(e),
        };
        st.pending = st.pending.saturating_sub(1);
    }
}

/// Sorts a delivery error into: this record is bad / the sink is refused / try again.
fn classify(e: &KafkaError) -> Outcome {
    use RDKafkaErrorCode as C;
    let msg = e.to_string();
    match e.rdkafka_error_code() {
        Some(
            C::MessageSizeTooLarge
            | C::InvalidMessageSize
            | C::InvalidRecord
            | C::InvalidMessage
            | C::InvalidTimestamp
            | C::InvalidTopic
            | C::InvalidArgument
            | C::BadMessage,
        ) => Outcome::Rejected(format!("kafka refused the record: {msg}")),
        Some(
            C::TopicAuthorizationFailed
            | C::ClusterAuthorizationFailed
            | C::SaslAuthenticationFailed
            | C::Authentication
            | C::UnsupportedSASLMechanism
            | C::IllegalSASLState
            | C::PolicyViolation,
        ) => Outcome::Fatal(format!("kafka refused the producer: {msg}")),
        Some(C::UnknownTopicOrPartition | C::UnknownTopic) => Outcome::Retry(format!(
            "{msg} (create the topic, or let the broker auto-create topics)"
        )),
        _ => Outcome::Retry(msg),
    }
}

/// The sink plugin instance.
pub struct KafkaSink {
    settings: Settings,
    topic: TopicTemplate,
    producer: BaseProducer<Ctx>,
    /// Replace the producer before the next batch (after a batch that was not delivered).
    renew: bool,
    generation: u64,
    value: Vec<u8>,
    topic_buf: String,
    key_buf: String,
}

impl KafkaSink {
    /// Checks the settings and creates the producer (connecting happens in the background).
    pub fn open(settings: Settings) -> Result<KafkaSink, SinkError> {
        let topic = TopicTemplate::parse(&settings.topic)?;
        let producer = create_producer(&settings)?;
        tracing::info!(
            brokers = ?settings.brokers,
            topic = %settings.topic,
            security_protocol = %settings.security_protocol,
            "kafka sink: producer created (idempotent, acks=all)"
        );
        Ok(KafkaSink {
            settings,
            topic,
            producer,
            renew: false,
            generation: 0,
            value: Vec::with_capacity(4096),
            topic_buf: String::new(),
            key_buf: String::new(),
        })
    }

    fn ctx(&self) -> &Ctx {
        self.producer.context()
    }

    /// Replaces the producer when it hit a fatal idempotence error, or when the last batch was
    /// not delivered. The second matters after a broker restart: an idempotent producer whose
    /// records timed out must bump its epoch with the broker, and against a broker that lost
    /// its producer state (restarted, failed over) it can stall there; seen with tansu, where
    /// the old producer sometimes never delivered again while a new one did at once. A new
    /// producer gets a new producer id; nothing of the failed batch is in flight any more
    /// (every record was reported or purged), so only duplicates can come of it, never losses.
    fn renew_if_needed(&mut self) -> Result<(), SinkError> {
        let fatal = self.producer.client().fatal_error();
        if let Some((code, reason)) = &fatal {
            tracing::warn!(
                ?code,
                reason,
                "kafka sink: fatal producer error; creating a new producer"
            );
        }
        if fatal.is_some() || self.renew {
            let fresh = create_producer(&self.settings)?;
            if let Some(e) = self.ctx().last_error.lock().ok().and_then(|e| e.clone()) {
                fresh.context().note_error(e);
            }
            // Dropping the old one purges and drains whatever it still holds (within 500 ms).
            drop(std::mem::replace(&mut self.producer, fresh));
            self.renew = false;
        }
        Ok(())
    }

    /// Renders the message value of `r` into `self.value`.
    fn render_value(&mut self, r: &Record) {
        self.value.clear();
        let raw = r.original.trim();
        if self.settings.format == Format::Raw && !raw.is_empty() {
            self.value.extend_from_slice(raw.as_bytes());
        } else {
            let opts = EcsOptions {
                include_original: self.settings.include_original,
            };
            write_ecs_json(r, opts, &mut self.value);
        }
    }

    /// Renders the key of `r` into `self.key_buf`; false for no key.
    fn render_key(&mut self, r: &Record) -> bool {
        self.key_buf.clear();
        match r.get(&self.settings.key_field) {
            Some(Value::Str(s)) => self.key_buf.push_str(s),
            Some(Value::Null) | None => {}
            Some(v) => v.write_text(&mut self.key_buf),
        }
        if self.key_buf.is_empty() && self.settings.key_fallback == KeyFallback::Partition {
            self.key_buf.push_str(&r.position.partition);
        }
        !self.key_buf.is_empty()
    }

    fn headers(&self, r: &Record) -> Option<OwnedHeaders> {
        if !self.settings.headers {
            return None;
        }
        let p = &r.position;
        let seq = p.sequence.to_string();
        let index = p.index.to_string();
        let h = OwnedHeaders::new_with_capacity(6)
            .insert(Header {
                key: "azlog.source",
                value: Some(p.source.as_str()),
            })
            .insert(Header {
                key: "azlog.partition",
                value: Some(p.partition.as_str()),
            })
            .insert(Header {
                key: "azlog.offset",
                value: Some(p.offset.as_str()),
            })
            .insert(Header {
                key: "azlog.sequence",
                value: Some(seq.as_str()),
            })
            .insert(Header {
                key: "azlog.index",
                value: Some(index.as_str()),
            })
            .insert(Header {
                key: "azlog.dataset",
                value: Some(r.get_str("event.dataset").unwrap_or("")),
            });
        Some(h)
    }

    /// Enqueues record `i`; waits (polling) while librdkafka's queue is full.
    fn enqueue(&mut self, i: usize, r: &Record, deadline: Instant) -> Result<(), Outcome> {
        self.render_value(r);
        self.topic.render(r, &mut self.topic_buf);
        let has_key = self.render_key(r);
        let headers = self.headers(r);
        let mut rec: BaseRecord<'_, str, [u8], Tag> =
            BaseRecord::with_opaque_to(&self.topic_buf, Box::new((self.generation, i)))
                .payload(&self.value[..]);
        if has_key {
            rec = rec.key(self.key_buf.as_str());
        }
        if let Some(h) = headers {
            rec = rec.headers(h);
        }
        loop {
            match self.producer.send(rec) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    if Instant::now() >= deadline {
                        return Err(Outcome::Retry(
                            "kafka producer queue stayed full (brokers unreachable or slow)".into(),
                        ));
                    }
                    self.producer.poll(POLL_SLICE);
                    rec = back;
                }
                Err((e, _)) => return Err(classify(&e)),
            }
        }
    }

    fn deliver(&mut self, records: &[Record]) -> Vec<Outcome> {
        self.generation += 1;
        if let Ok(mut st) = self.ctx().state.lock() {
            st.generation = self.generation;
            st.outcomes = vec![Outcome::Pending; records.len()];
            st.pending = 0;
        }
        let timeout = Duration::from_millis(self.settings.message_timeout_ms);
        let deadline = Instant::now() + timeout;
        let mut stop: Option<(usize, Outcome)> = None;
        for (i, r) in records.iter().enumerate() {
            match self.enqueue(i, r, deadline) {
                Ok(()) => {
                    if let Ok(mut st) = self.ctx().state.lock() {
                        st.pending += 1;
                    }
                }
                Err(o @ Outcome::Rejected(_)) => {
                    if let Ok(mut st) = self.ctx().state.lock() {
                        st.outcomes[i] = o;
                    }
                }
                Err(o) => {
                    // Nothing after a record that could not be enqueued is sent: it is retried
                    // as a whole by the host.
                    stop = Some((i, o));
                    break;
                }
            }
        }
        // Every enqueued record gets a report within message.timeout.ms (+ a margin for the
        // last in-flight request).
        let wait_until = Instant::now() + timeout + Duration::from_secs(5);
        loop {
            let pending = self.ctx().state.lock().map_or(0, |s| s.pending);
            if pending == 0 {
                break;
            }
            if Instant::now() >= wait_until {
                tracing::warn!(pending, "kafka sink: delivery reports overdue; purging");
                self.producer
                    .purge(rdkafka::producer::PurgeConfig::default().queue().inflight());
                self.producer.poll(Duration::from_millis(500));
                break;
            }
            self.producer.poll(POLL_SLICE);
        }
        let mut outcomes = self
            .ctx()
            .state
            .lock()
            .map(|mut s| {
                s.generation = 0;
                std::mem::take(&mut s.outcomes)
            })
            .unwrap_or_else(|_| {
                vec![Outcome::Retry("kafka sink state poisoned".into()); records.len()]
            });
        if let Some((i, o)) = stop {
            outcomes[i] = o;
        }
        outcomes
    }
}

fn create_producer(settings: &Settings) -> Result<BaseProducer<Ctx>, SinkError> {
    let ctx = Ctx {
        state: Mutex::new(BatchState::default()),
        last_error: Mutex::new(None),
        refused: Mutex::new(None),
    };
    settings
        .client_config()?
        .create_with_context(ctx)
        .map_err(|e| crate::settings::bad(format!("cannot create the Kafka producer: {e}")))
}

/// Turns per-record outcomes into the host's report.
fn report(outcomes: &[Outcome]) -> Result<BatchReport, SinkError> {
    let mut rejected = Vec::new();
    for (i, o) in outcomes.iter().enumerate() {
        let err = match o {
            Outcome::Delivered => continue,
            Outcome::Rejected(reason) => {
                rejected.push(Rejection::new(i, reason.clone()));
                continue;
            }
            Outcome::Pending => SinkError::retryable(
                "kafka sink: no delivery report before the timeout (brokers unreachable?)",
            ),
            Outcome::Retry(m) => SinkError::retryable(format!("kafka sink: {m}")),
            Outcome::Fatal(m) => SinkError::permanent(format!("kafka sink: {m}")),
        };
        if i == 0 {
            return Err(err);
        }
        return Ok(BatchReport::partial(i, rejected, err));
    }
    Ok(BatchReport::with_rejections(outcomes.len(), rejected))
}

impl Sink for KafkaSink {
    fn write_batch(&mut self, records: &[Record]) -> Result<BatchReport, SinkError> {
        self.renew_if_needed()?;
        if records.is_empty() {
            return Ok(BatchReport::all_accepted(0));
        }
        let mut outcomes = self.deliver(records);
        let refused = self.ctx().refused.lock().ok().and_then(|mut r| r.take());
        if let Some(why) = refused {
            // Undelivered because the brokers refuse this client (wrong password, unknown CA):
            // retrying will not help, so the sink is reported refused (permanent).
            for o in outcomes.iter_mut() {
                if matches!(o, Outcome::Pending | Outcome::Retry(_)) {
                    *o = Outcome::Fatal(format!("the brokers refuse the connection: {why}"));
                }
            }
        }
        let rep = report(&outcomes);
        match &rep {
            Ok(r) if r.tail_error.is_none() => {
                if let Ok(mut e) = self.ctx().last_error.lock() {
                    *e = None;
                }
            }
            Ok(r) => {
                if let abi_stable::std_types::ROption::RSome(e) = &r.tail_error {
                    self.ctx().note_error(e.message.to_string());
                    self.renew = true;
                }
            }
            Err(e) => {
                self.ctx().note_error(e.message.to_string());
                self.renew = true;
            }
        }
        rep
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        // Every accepted record was already acknowledged by the brokers; this only drains
        // anything a failed batch left in the queue.
        self.producer
            .flush(Timeout::After(Duration::from_millis(
                self.settings.message_timeout_ms,
            )))
            .map_err(|e| SinkError::retryable(format!("kafka sink: flush: {e}")))
    }

    fn health(&self) -> Health {
        match self.ctx().last_error.lock().ok().and_then(|e| e.clone()) {
            None => Health::healthy(),
            Some(e) => Health::degraded(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_stops_at_the_first_undelivered_record() {
        use Outcome::*;
        let r = report(&[Delivered, Rejected("big".into()), Delivered]).expect("ok");
        assert_eq!(r.handled, 3);
        assert_eq!(r.accepted(), 2);
        assert_eq!(r.rejected[0].index, 1);
        let r = report(&[Delivered, Retry("down".into()), Delivered]).expect("ok");
        assert_eq!(r.handled, 1);
        assert!(r
            .tail_error
            .clone()
            .into_option()
            .expect("tail")
            .is_retryable());
        let e = report(&[Pending, Delivered]).expect_err("err");
        assert!(e.is_retryable());
        let e = report(&[Fatal("auth".into())]).expect_err("err");
        assert_eq!(e.kind, azlog_plugin_api::ErrorKind::Permanent);
    }

    #[test]
    fn delivery_errors_are_classified() {
        let e = |c| KafkaError::MessageProduction(c);
        assert!(matches!(
            classify(&e(RDKafkaErrorCode::MessageSizeTooLarge)),
            Outcome::Rejected(_)
        ));
        assert!(matches!(
            classify(&e(RDKafkaErrorCode::MessageTimedOut)),
            Outcome::Retry(_)
        ));
        assert!(matches!(
            classify(&e(RDKafkaErrorCode::AllBrokersDown)),
            Outcome::Retry(_)
        ));
        assert!(matches!(
            classify(&e(RDKafkaErrorCode::TopicAuthorizationFailed)),
            Outcome::Fatal(_)
        ));
    }
}
