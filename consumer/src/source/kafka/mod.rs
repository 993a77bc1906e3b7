//! Kafka as a pipeline [`Source`] (crate `rdkafka`, bundled librdkafka): any Kafka endpoint,
//! including the Event Hubs Kafka endpoint.
//!
//! * One `BaseConsumer` is polled by a dedicated thread (the dispatcher), which hands each
//!   record to the bounded queue of its partition (`<topic>/<partition>`); the pipeline's
//!   partition readers read those queues. A full queue holds the dispatcher back (backpressure).
//! * **Live run (group mode):** the consumer subscribes to the topics (or the pattern) with
//!   `enable.auto.offset.store=false` and `enable.auto.commit=true`. [`KafkaOffsets`] is the
//!   run's [`CheckpointStore`]: when the pipeline writes a partition's checkpoint (every record
//!   at or before it acknowledged by every sink or dead-lettered, sinks flushed, dead letters
//!   synced), it stores `offset + 1`, and librdkafka commits stored offsets periodically.
//!   On a rebalance, before partitions are revoked, the dispatcher waits (up to
//!   `rebalance_drain_timeout_ms`) until everything it handed on for them is stored, then
//!   commits synchronously. Where a partition starts comes from the group's committed offset
//!   (`start_position` without one).
//! * **Replay (assign mode):** no subscription; each partition is assigned at the replay's
//!   start (offset, earliest/latest, or `offsets_for_times`), and checkpoints are committed to
//!   the group only with `--commit`.
//!
//! * **New partitions (group mode):** partitions added to a topic, a new topic matching the
//!   pattern, or a partition a rebalance assigns that the running pipeline has no reader for:
//!   the dispatcher holds the records it polled for it, pauses the partition (librdkafka then
//!   fetches it again after the last record returned, so nothing is skipped) and signals
//!   [`run_kafka`], which stops the pipeline gracefully (readers stop, sinks drain, final
//!   checkpoints stored and committed) and starts it again on the new partition set
//!   ([`live`]). The held records go first into the new reader's queue, then the partition is
//!   resumed. Records a reader returned stay kept until a checkpoint covers them: what the
//!   stopped pipeline had taken but not handed to the sinks is read again by the next one. librdkafka notices new partitions and topics at its metadata refresh
//!   (`topic.metadata.refresh.interval.ms`, 5 s by default here, see
//!   [`crate::config::kafka::KafkaConfig::client_settings`]).
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, RebalanceProtocol,
};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::mpsc;

use super::{PartitionInfo, PartitionReader, RawEvent, Source, SourceError, StartFrom};
use crate::checkpoint::{Checkpoint, CheckpointError, CheckpointKey, CheckpointStore};
use crate::config::kafka::{KafkaConfig, KafkaTopics};

/// Records buffered per partition between the dispatcher and the partition's reader.
const QUEUE: usize = 1024;
/// Timeout of metadata, watermark and offset look-ups.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(10);

/// How the source reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KafkaMode {
    /// Consumer group subscription; offsets stored after acknowledgement, committed by the group.
    Group,
    /// Explicit assignment at each reader's start position (replay); commits only on request.
    Assign,
}

/// `<topic>/<partition>`.
pub fn partition_id(topic: &str, partition: i32) -> String {
    format!("{topic}/{partition}")
}

/// Splits `<topic>/<partition>`.
pub fn split_id(id: &str) -> Option<(&str, i32)> {
    let (t, p) = id.rsplit_once('/')?;
    Some((t, p.parse().ok()?))
}

#[derive(Debug, Default, Clone, Copy)]
struct Progress {
    /// Next offset after the last record handed to the reader.
    delivered: Option<i64>,
    /// Next offset after the last record stored (acknowledged).
    stored: Option<i64>,
}

/// State shared by the source, the dispatcher thread, the consumer context and the store.
struct Shared {
    senders: Mutex<HashMap<String, mpsc::Sender<RawEvent>>>,
    receivers: Mutex<HashMap<String, mpsc::Receiver<RawEvent>>>,
    progress: Mutex<HashMap<String, Progress>>,
    progress_changed: Condvar,
    /// Latest client-level error (for messages), and whether it is one reconnecting won't fix.
    last_error: Mutex<Option<(String, bool)>>,
    fatal: tokio::sync::watch::Sender<Option<String>>,
    drain_timeout: Duration,
    unknown_warned: Mutex<HashSet<String>>,
    /// Group mode: records polled for partitions the running pipeline has no reader for (the
    /// partition is paused meanwhile), in offset order; handed on once a queue exists for them.
    held: Mutex<BTreeMap<String, Vec<RawEvent>>>,
    /// Bumped when a partition is held: the run restarts the pipeline on the new partition set.
    changes: tokio::sync::watch::Sender<u64>,
    /// Group mode: the records each partition's reader returned that no stored offset covers
    /// yet (trimmed at each checkpoint). A pipeline that stops may drop records it had taken but
    /// not handed to the sinks; the next pipeline of the run reads these again first, so a
    /// restart on new partitions loses nothing.
    returned: Mutex<HashMap<String, std::collections::VecDeque<RawEvent>>>,
    counters: KafkaCounters,
}

/// Counters of the consumer, for `/metrics`.
#[derive(Default)]
struct KafkaCounters {
    /// Rebalances that assigned partitions to this consumer.
    assigns: AtomicU64,
    /// Rebalances that revoked partitions from it.
    revokes: AtomicU64,
    /// Revokes whose records were not all acknowledged within the drain timeout.
    drain_timeouts: AtomicU64,
    /// Offset commits the group coordinator confirmed (periodic, rebalance and final ones).
    commits: AtomicU64,
    /// Offset commits that failed.
    commit_errors: AtomicU64,
    /// Client-level errors librdkafka reported (connections, brokers, authentication).
    client_errors: AtomicU64,
    /// Partitions currently assigned (group mode).
    assigned: AtomicI64,
    /// Partitions found while running (no reader yet): each restarts the pipeline.
    new_partitions: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    fn set_progress(&self, id: &str, f: impl FnOnce(&mut Progress)) {
        let mut p = lock(&self.progress);
        f(p.entry(id.to_owned()).or_default());
        drop(p);
        self.progress_changed.notify_all();
    }

    /// Waits until every record handed on for `ids` is stored, up to the drain timeout.
    /// Returns the partitions still pending.
    fn wait_drained(&self, ids: &[String]) -> Vec<String> {
        let deadline = Instant::now() + self.drain_timeout;
        let mut p = lock(&self.progress);
        loop {
            let pending: Vec<String> = ids
                .iter()
                .filter(|id| {
                    p.get(*id)
                        .is_some_and(|pr| match (pr.delivered, pr.stored) {
                            (Some(d), Some(s)) => s < d,
                            (Some(_), None) => true,
                            _ => false,
                        })
                })
                .cloned()
                .collect();
            let now = Instant::now();
            if pending.is_empty() || now >= deadline {
                return pending;
            }
            p = self
                .progress_changed
                .wait_timeout(p, deadline - now)
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
    }

    fn error_text(&self) -> Option<(String, bool)> {
        lock(&self.last_error).clone()
    }

    /// Revoked partitions: their held records are dropped (nothing of them was committed, so
    /// their next owner reads them) and the pause is lifted (librdkafka keeps an application
    /// pause across a re-assignment).
    fn release_held(&self, consumer: &HubConsumer, ids: &[String]) {
        let mut held = lock(&self.held);
        for id in ids {
            let Some(records) = held.remove(id) else {
                continue;
            };
            tracing::info!(partition = %id, held = records.len(), "partition revoked before the pipeline read it; its records are left to its next owner");
            if let Some((topic, p)) = split_id(id) {
                resume(consumer, topic, p);
            }
        }
    }

    /// Drops the kept records of `id` before offset `next` (a checkpoint covers them).
    fn forget_returned(&self, id: &str, next: i64) {
        let mut returned = lock(&self.returned);
        if let Some(kept) = returned.get_mut(id) {
            while kept.front().is_some_and(|e| e.sequence < next) {
                kept.pop_front();
            }
        }
    }

    /// The partitions held for the next pipeline.
    fn held_ids(&self) -> Vec<String> {
        lock(&self.held).keys().cloned().collect()
    }
}

fn one_partition(topic: &str, p: i32) -> TopicPartitionList {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, p);
    tpl
}

fn pause(consumer: &HubConsumer, topic: &str, p: i32) {
    if let Err(e) = consumer.pause(&one_partition(topic, p)) {
        // Not fatal: the held records keep growing in offset order until the pipeline reads
        // the partition.
        tracing::warn!(partition = %partition_id(topic, p), error = %e, "pausing a new partition failed");
    }
}

fn resume(consumer: &HubConsumer, topic: &str, p: i32) {
    if let Err(e) = consumer.resume(&one_partition(topic, p)) {
        tracing::debug!(partition = %partition_id(topic, p), error = %e, "resuming a partition failed (no longer assigned)");
    }
}

/// The consumer context: logs through `tracing`, keeps the last error, drains on revoke.
pub struct HubContext {
    shared: Arc<Shared>,
    mode: KafkaMode,
    /// Group mode with `start_position = "latest"`: a partition created while running (no
    /// queue yet) and without a committed offset starts at its beginning, not at its end
    /// (records written to it before the group noticed it are new to this run too).
    new_from_beginning: bool,
}

impl HubContext {
    /// Sets the start of the partitions of `tpl` this run did not list and the group has no
    /// committed offset for to their beginning (see [`HubContext::new_from_beginning`]).
    fn start_new_partitions_at_beginning(
        &self,
        consumer: &BaseConsumer<Self>,
        tpl: &mut TopicPartitionList,
    ) {
        let mut unknown = TopicPartitionList::new();
        {
            let senders = lock(&self.shared.senders);
            for e in tpl.elements() {
                if !senders.contains_key(&partition_id(e.topic(), e.partition())) {
                    unknown.add_partition(e.topic(), e.partition());
                }
            }
        }
        if unknown.count() == 0 {
            return;
        }
        let committed = match consumer.committed_offsets(unknown, LOOKUP_TIMEOUT) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "rebalance: committed offsets of new partitions unknown; they start at start_position");
                return;
            }
        };
        for e in committed.elements() {
            if matches!(e.offset(), Offset::Offset(_)) {
                continue;
            }
            match tpl.set_partition_offset(e.topic(), e.partition(), Offset::Beginning) {
                Ok(()) => {
                    tracing::info!(partition = %partition_id(e.topic(), e.partition()), "rebalance: a partition created while running, without a committed offset: read from its beginning")
                }
                Err(err) => {
                    tracing::warn!(partition = %partition_id(e.topic(), e.partition()), error = %err, "rebalance: could not set the start of a new partition")
                }
            }
        }
    }
}

/// Errors reconnecting will not fix: authentication and TLS set-up/verification.
fn is_fatal_reason(reason: &str) -> bool {
    let r = reason.to_ascii_lowercase();
    r.contains("sasl authentication")
        || r.contains("authentication failed")
        || r.contains("ssl handshake failed")
        || r.contains("certificate verify failed")
        || r.contains("ssl.ca.location")
        || r.contains("invalid sasl")
}

impl ClientContext for HubContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        // Consumer poll errors carry only a code; the reason (e.g. "SASL authentication error:
        // bad credentials", "SSL handshake failed: ... certificate verify failed") is logged.
        let serious = matches!(
            level,
            RDKafkaLogLevel::Emerg
                | RDKafkaLogLevel::Alert
                | RDKafkaLogLevel::Critical
                | RDKafkaLogLevel::Error
                | RDKafkaLogLevel::Warning
        );
        if serious && is_fatal_reason(log_message) {
            *lock(&self.shared.last_error) = Some((log_message.to_owned(), true));
            let _ = self.shared.fatal.send_replace(Some(log_message.to_owned()));
        }
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => {
                tracing::error!(target: "librdkafka", facility = fac, "{log_message}")
            }
            RDKafkaLogLevel::Warning => {
                tracing::warn!(target: "librdkafka", facility = fac, "{log_message}")
            }
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::info!(target: "librdkafka", facility = fac, "{log_message}")
            }
            RDKafkaLogLevel::Debug => {
                tracing::debug!(target: "librdkafka", facility = fac, "{log_message}")
            }
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.shared
            .counters
            .client_errors
            .fetch_add(1, Ordering::Relaxed);
        let fatal = is_fatal_reason(reason) || is_fatal_reason(&error.to_string());
        tracing::warn!(target: "librdkafka", error = %error, reason, fatal, "Kafka client error");
        *lock(&self.shared.last_error) = Some((reason.to_owned(), fatal));
        if fatal {
            let _ = self.shared.fatal.send_replace(Some(reason.to_owned()));
        }
    }
}

impl ConsumerContext for HubContext {
    /// rdkafka's default rebalance (pre-rebalance, assign/unassign, post-rebalance), with the
    /// start of new partitions set first (see [`HubContext::new_from_beginning`]).
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let assign = err == RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS;
        if assign && self.new_from_beginning {
            self.start_new_partitions_at_beginning(consumer, tpl);
        }
        let tpl: &TopicPartitionList = tpl;
        let rebalance = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => Rebalance::Assign(tpl),
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => Rebalance::Revoke(tpl),
            _ => Rebalance::Error(KafkaError::Rebalance(err.into())),
        };
        self.pre_rebalance(consumer, &rebalance);
        let cooperative = matches!(
            consumer.rebalance_protocol(),
            RebalanceProtocol::Cooperative
        );
        let result = match (assign, cooperative) {
            (true, true) => consumer.incremental_assign(tpl),
            (true, false) => consumer.assign(tpl),
            (false, true) => consumer.incremental_unassign(tpl),
            (false, false) => consumer.unassign(),
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, assign, "rebalance: (un)assigning failed");
        }
        self.post_rebalance(consumer, &rebalance);
    }

    fn commit_callback(&self, result: KafkaResult<()>, _offsets: &TopicPartitionList) {
        let counters = &self.shared.counters;
        match result {
            Ok(()) => {
                counters.commits.fetch_add(1, Ordering::Relaxed);
            }
            // Nothing was stored since the last commit: not an error.
            Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
            Err(e) => {
                counters.commit_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "Kafka offset commit failed (retried at the next commit; records after the last committed offset are read again after a restart)");
            }
        }
    }

    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let counters = &self.shared.counters;
        match rebalance {
            Rebalance::Assign(tpl) => {
                counters.assigns.fetch_add(1, Ordering::Relaxed);
                counters
                    .assigned
                    .fetch_add(tpl.count() as i64, Ordering::Relaxed);
            }
            Rebalance::Revoke(tpl) => {
                counters.revokes.fetch_add(1, Ordering::Relaxed);
                counters
                    .assigned
                    .fetch_sub(tpl.count() as i64, Ordering::Relaxed);
            }
            Rebalance::Error(_) => {}
        }
        match rebalance {
            Rebalance::Revoke(tpl) if self.mode == KafkaMode::Group => {
                let ids: Vec<String> = tpl
                    .elements()
                    .iter()
                    .map(|e| partition_id(e.topic(), e.partition()))
                    .collect();
                self.shared.release_held(consumer, &ids);
                let started = Instant::now();
                let pending = self.shared.wait_drained(&ids);
                if pending.is_empty() {
                    tracing::info!(partitions = ?ids, waited_ms = started.elapsed().as_millis() as u64, "rebalance: revoked partitions drained");
                } else {
                    counters.drain_timeouts.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(partitions = ?pending, timeout_ms = self.shared.drain_timeout.as_millis() as u64, "rebalance: records of revoked partitions still unacknowledged at the drain timeout; their next owner reads them again (duplicates, no loss)");
                }
                match consumer.commit_consumer_state(CommitMode::Sync) {
                    Ok(()) => tracing::info!("rebalance: stored offsets committed"),
                    Err(e) => {
                        tracing::debug!(error = %e, "rebalance: nothing committed")
                    }
                }
                // What was read past the commit is fetched again from the committed offset
                // (by this consumer if re-assigned, else by the next owner).
                let mut returned = lock(&self.shared.returned);
                for id in &ids {
                    returned.remove(id);
                }
            }
            Rebalance::Assign(tpl) => {
                let ids: Vec<String> = tpl
                    .elements()
                    .iter()
                    .map(|e| partition_id(e.topic(), e.partition()))
                    .collect();
                tracing::info!(partitions = ?ids, "rebalance: partitions assigned");
            }
            Rebalance::Error(e) => tracing::warn!(error = %e, "rebalance error"),
            Rebalance::Revoke(_) => {}
        }
    }
}

type HubConsumer = BaseConsumer<HubContext>;

/// The Kafka source.
pub struct KafkaSource {
    consumer: Arc<HubConsumer>,
    shared: Arc<Shared>,
    mode: KafkaMode,
    topics: KafkaTopics,
    name: String,
    subscribed: AtomicBool,
    stop: Arc<AtomicBool>,
    dispatcher: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl KafkaSource {
    /// Creates the consumer (no connection is made yet) and starts its dispatcher thread.
    pub fn new(config: &KafkaConfig, mode: KafkaMode) -> Result<Self, SourceError> {
        let mut cc = ClientConfig::new();
        for (k, v, _secret) in config.client_settings() {
            // A producer setting in librdkafka (part of Microsoft's Event Hubs list, which
            // covers producers too); a consumer only warns about it.
            if k == "request.timeout.ms" {
                continue;
            }
            cc.set(k, v);
        }
        cc.set("enable.auto.offset.store", "false");
        cc.set("enable.partition.eof", "false");
        match mode {
            KafkaMode::Group => cc.set("enable.auto.commit", "true"),
            KafkaMode::Assign => cc.set("enable.auto.commit", "false"),
        };
        let (fatal, _) = tokio::sync::watch::channel(None);
        let (changes, _) = tokio::sync::watch::channel(0u64);
        let shared = Arc::new(Shared {
            senders: Mutex::default(),
            receivers: Mutex::default(),
            progress: Mutex::default(),
            progress_changed: Condvar::new(),
            last_error: Mutex::default(),
            fatal,
            drain_timeout: config.rebalance_drain_timeout,
            unknown_warned: Mutex::default(),
            held: Mutex::default(),
            changes,
            returned: Mutex::default(),
            counters: KafkaCounters::default(),
        });
        let context = HubContext {
            shared: shared.clone(),
            mode,
            new_from_beginning: mode == KafkaMode::Group
                && config.start == crate::config::kafka::KafkaStart::Latest,
        };
        let consumer: HubConsumer = cc.create_with_context(context).map_err(|e| {
            // librdkafka's configuration errors name the key, never the value.
            SourceError::fatal(format!("Kafka client configuration: {e}"))
        })?;
        let consumer = Arc::new(consumer);
        let stop = Arc::new(AtomicBool::new(false));
        let handle = {
            let consumer = consumer.clone();
            let shared = shared.clone();
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("kafka-dispatch".into())
                .spawn(move || dispatch(&consumer, &shared, mode, &stop))
                .map_err(|e| SourceError::fatal(format!("starting the Kafka thread: {e}")))?
        };
        Ok(KafkaSource {
            consumer,
            shared,
            mode,
            topics: config.topics.clone(),
            name: config.describe(),
            subscribed: AtomicBool::new(false),
            stop,
            dispatcher: Mutex::new(Some(handle)),
        })
    }

    /// The checkpoint store of this source: stores (group mode) or commits (assign mode) offsets.
    pub fn offsets(&self) -> Arc<KafkaOffsets> {
        Arc::new(KafkaOffsets {
            consumer: self.consumer.clone(),
            shared: self.shared.clone(),
            mode: self.mode,
        })
    }

    /// Changes whenever a partition without a reader is found (group mode): the pipeline
    /// must restart to read it.
    pub fn partition_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.shared.changes.subscribe()
    }

    /// Commits the stored offsets now (group mode), between two pipelines of a run.
    pub async fn commit_stored(&self) {
        if self.mode != KafkaMode::Group {
            return;
        }
        let consumer = self.consumer.clone();
        let _ = blocking(
            move || match consumer.commit_consumer_state(CommitMode::Sync) {
                Ok(()) => tracing::info!("stored Kafka offsets committed"),
                Err(e) => tracing::debug!(error = %e, "nothing committed"),
            },
        )
        .await;
    }

    fn error_with_context(&self, what: &str, e: &KafkaError) -> SourceError {
        let (reason, fatal) = match self.shared.error_text() {
            Some((r, f)) => (format!("{e} (last client error: {r})"), f),
            None => (e.to_string(), false),
        };
        let message = format!("{what}: {reason}");
        if fatal {
            SourceError::fatal(message)
        } else {
            SourceError::retryable(message)
        }
    }
}

/// The dispatcher: polls the consumer and hands records to their partition queues.
fn dispatch(consumer: &HubConsumer, shared: &Shared, mode: KafkaMode, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        if !hand_on_held(consumer, shared, stop) {
            return;
        }
        let event = match consumer.poll(Duration::from_millis(100)) {
            None => continue,
            Some(Err(e)) => {
                // The client error callback already logged it with its reason.
                tracing::debug!(error = %e, "Kafka consumer error");
                if let Some(reason) = is_fatal_kafka_error(&e) {
                    let reason = match shared.error_text() {
                        Some((r, true)) => r,
                        _ => reason,
                    };
                    let _ = shared.fatal.send_replace(Some(reason));
                }
                continue;
            }
            Some(Ok(m)) => RawEvent {
                body: m.payload().map(<[u8]>::to_vec).unwrap_or_default(),
                partition: partition_id(m.topic(), m.partition()),
                offset: m.offset().to_string(),
                sequence: m.offset(),
                enqueued_ns: m
                    .timestamp()
                    .to_millis()
                    .and_then(|ms| ms.checked_mul(1_000_000)),
            },
        };
        let id = event.partition.clone();
        if let Some(records) = lock(&shared.held).get_mut(&id) {
            // Fetched before the pause took effect: kept in order behind the others.
            records.push(event);
            continue;
        }
        let Some(tx) = lock(&shared.senders).get(&id).cloned() else {
            if mode == KafkaMode::Group {
                hold(consumer, shared, event);
            } else if lock(&shared.unknown_warned).insert(id.clone()) {
                tracing::warn!(partition = %id, "records of a partition that is not part of this replay: not read");
            }
            continue;
        };
        if !send(&tx, shared, event, stop) {
            return;
        }
    }
}

/// A record of a partition the pipeline has no reader for: keep it, pause the partition and
/// ask for a restart of the pipeline.
fn hold(consumer: &HubConsumer, shared: &Shared, event: RawEvent) {
    let id = event.partition.clone();
    let offset = event.sequence;
    lock(&shared.held).insert(id.clone(), vec![event]);
    if let Some((topic, p)) = split_id(&id) {
        pause(consumer, topic, p);
    }
    shared
        .counters
        .new_partitions
        .fetch_add(1, Ordering::Relaxed);
    tracing::info!(partition = %id, offset, "records of a partition this pipeline does not read yet: partition paused, restarting the pipeline to read it");
    shared.changes.send_modify(|n| *n += 1);
}

/// Hands the held records of partitions that have a queue now (the new pipeline listed them)
/// to it, then resumes those partitions. False when stopped meanwhile.
fn hand_on_held(consumer: &HubConsumer, shared: &Shared, stop: &AtomicBool) -> bool {
    let ready: Vec<(String, Vec<RawEvent>, mpsc::Sender<RawEvent>)> = {
        let mut held = lock(&shared.held);
        if held.is_empty() {
            return true;
        }
        let senders = lock(&shared.senders);
        let ids: Vec<String> = held
            .keys()
            .filter(|id| senders.contains_key(*id))
            .cloned()
            .collect();
        ids.into_iter()
            .filter_map(|id| {
                let tx = senders.get(&id)?.clone();
                let records = held.remove(&id)?;
                Some((id, records, tx))
            })
            .collect()
    };
    for (id, records, tx) in ready {
        let n = records.len();
        for event in records {
            if !send(&tx, shared, event, stop) {
                return false;
            }
        }
        if let Some((topic, p)) = split_id(&id) {
            resume(consumer, topic, p);
        }
        tracing::info!(partition = %id, records = n, "new partition: held records handed to its reader, partition resumed");
    }
    true
}

/// Puts `event` into its partition queue, waiting while it is full. False when stopped.
fn send(tx: &mpsc::Sender<RawEvent>, shared: &Shared, event: RawEvent, stop: &AtomicBool) -> bool {
    let id = event.partition.clone();
    let next = event.sequence + 1;
    let mut item = event;
    loop {
        match tx.try_send(item) {
            Ok(()) => {
                shared.set_progress(&id, |p| p.delivered = Some(next));
                return true;
            }
            Err(mpsc::error::TrySendError::Full(back)) => {
                if stop.load(Ordering::Relaxed) {
                    return false;
                }
                item = back;
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(mpsc::error::TrySendError::Closed(_)) => return true,
        }
    }
}

fn is_fatal_kafka_error(e: &KafkaError) -> Option<String> {
    use rdkafka::types::RDKafkaErrorCode as C;
    let text = e.to_string();
    let by_code = matches!(
        e.rdkafka_error_code(),
        Some(C::Authentication | C::SaslAuthenticationFailed | C::SSL)
    );
    (by_code || is_fatal_reason(&text)).then_some(text)
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, SourceError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| SourceError::retryable(format!("Kafka look-up task: {e}")))
}

#[async_trait]
impl Source for KafkaSource {
    fn describe(&self) -> String {
        self.name.clone()
    }

    fn write_metrics(&self, out: &mut String) {
        use crate::pipeline::metrics::write_family;
        use std::fmt::Write as _;
        let c = &self.shared.counters;
        let r = Ordering::Relaxed;
        let counters = [
            ("azlog_kafka_rebalance_assigns_total", "Rebalances that assigned partitions to this consumer.", &c.assigns),
            ("azlog_kafka_rebalance_revokes_total", "Rebalances that revoked partitions from this consumer.", &c.revokes),
            ("azlog_kafka_rebalance_drain_timeouts_total", "Revokes whose records were not all acknowledged within rebalance_drain_timeout_ms (read again by the next owner).", &c.drain_timeouts),
            ("azlog_kafka_commits_total", "Offset commits confirmed by the group coordinator.", &c.commits),
            ("azlog_kafka_commit_errors_total", "Offset commits that failed.", &c.commit_errors),
            ("azlog_kafka_client_errors_total", "Client-level errors reported by librdkafka (brokers, connections, authentication).", &c.client_errors),
            ("azlog_kafka_new_partitions_total", "Partitions found while running (new partitions or topics, or assigned without a reader); each restarted the pipeline to read them.", &c.new_partitions),
        ];
        for (name, help, v) in counters {
            write_family(out, name, "counter", help);
            let _ = writeln!(out, "{name} {}", v.load(r));
        }
        if self.mode == KafkaMode::Group {
            let name = "azlog_kafka_assigned_partitions";
            write_family(
                out,
                name,
                "gauge",
                "Partitions the consumer group currently assigns to this consumer.",
            );
            let _ = writeln!(out, "{name} {}", c.assigned.load(r).max(0));
        }
    }

    async fn partitions(&self) -> Result<Vec<String>, SourceError> {
        if let Some(reason) = self.shared.fatal.borrow().clone() {
            return Err(SourceError::fatal(reason));
        }
        let consumer = self.consumer.clone();
        // An authentication or TLS failure ends the wait at once (it is logged by librdkafka
        // before the metadata request times out).
        let metadata = tokio::select! {
            r = blocking(move || consumer.fetch_metadata(None, LOOKUP_TIMEOUT)) => r?,
            reason = wait_fatal(self.shared.fatal.subscribe()) => {
                return Err(SourceError::fatal(reason));
            }
        }
        .map_err(|e| self.error_with_context("fetching metadata", &e))?;
        let pattern = match &self.topics {
            KafkaTopics::Pattern(p) => Some(
                regex::Regex::new(p)
                    .map_err(|e| SourceError::fatal(format!("topic_pattern: {e}")))?,
            ),
            KafkaTopics::List(_) => None,
        };
        let mut ids = Vec::new();
        let mut found = HashSet::new();
        for t in metadata.topics() {
            let wanted = match (&self.topics, &pattern) {
                (KafkaTopics::List(l), _) => l.iter().any(|n| n == t.name()),
                (_, Some(re)) => !t.name().starts_with("__") && re.is_match(t.name()),
                _ => false,
            };
            if !wanted || t.error().is_some() {
                continue;
            }
            found.insert(t.name().to_owned());
            let mut parts: Vec<i32> = t.partitions().iter().map(|p| p.id()).collect();
            parts.sort_unstable();
            ids.extend(parts.into_iter().map(|p| partition_id(t.name(), p)));
        }
        if let KafkaTopics::List(l) = &self.topics {
            let missing: Vec<&String> = l.iter().filter(|t| !found.contains(*t)).collect();
            if !missing.is_empty() {
                return Err(SourceError::retryable(format!(
                    "topics {missing:?} do not exist (yet)"
                )));
            }
        }
        // Partitions held for this pipeline (found while the previous one ran) are read even
        // if this metadata answer does not list them yet.
        for id in self.shared.held_ids() {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        if ids.is_empty() {
            return Err(SourceError::retryable(
                "no topic matches the pattern (yet)".to_owned(),
            ));
        }
        {
            let mut senders = lock(&self.shared.senders);
            let mut receivers = lock(&self.shared.receivers);
            for id in &ids {
                if !senders.contains_key(id) {
                    let (tx, rx) = mpsc::channel(QUEUE);
                    senders.insert(id.clone(), tx);
                    receivers.insert(id.clone(), rx);
                }
            }
        }
        if self.mode == KafkaMode::Group && !self.subscribed.swap(true, Ordering::SeqCst) {
            let subscription: Vec<&str> = match &self.topics {
                KafkaTopics::List(l) => l.iter().map(String::as_str).collect(),
                KafkaTopics::Pattern(p) => vec![p.as_str()],
            };
            self.consumer.subscribe(&subscription).map_err(|e| {
                self.subscribed.store(false, Ordering::SeqCst);
                self.error_with_context("subscribing", &e)
            })?;
            tracing::info!(source = %self.name, partitions = ids.len(), "subscribed");
        }
        Ok(ids)
    }

    async fn partition_info(&self, partition: &str) -> Result<PartitionInfo, SourceError> {
        let (topic, p) = split_id(partition).ok_or_else(|| {
            SourceError::fatal(format!("`{partition}` is not <topic>/<partition>"))
        })?;
        let topic = topic.to_owned();
        let consumer = self.consumer.clone();
        let (low, high) = blocking(move || consumer.fetch_watermarks(&topic, p, LOOKUP_TIMEOUT))
            .await?
            .map_err(|e| self.error_with_context("fetching watermarks", &e))?;
        Ok(PartitionInfo {
            id: partition.to_owned(),
            is_empty: high <= low,
            beginning_sequence: low,
            last_sequence: high - 1,
            last_offset: (high - 1).to_string(),
            last_enqueued_ns: None,
        })
    }

    async fn open(
        &self,
        partition: &str,
        start: &StartFrom,
    ) -> Result<Box<dyn PartitionReader>, SourceError> {
        let (topic, p) = split_id(partition).ok_or_else(|| {
            SourceError::fatal(format!("`{partition}` is not <topic>/<partition>"))
        })?;
        if self.mode == KafkaMode::Assign {
            let offset = self.resolve_start(topic, p, start).await?;
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition_offset(topic, p, offset)
                .map_err(|e| SourceError::fatal(format!("{partition}: {e}")))?;
            self.consumer
                .incremental_assign(&tpl)
                .map_err(|e| self.error_with_context("assigning", &e))?;
            tracing::info!(partition, ?offset, "partition assigned");
        }
        let rx = lock(&self.shared.receivers)
            .remove(partition)
            .ok_or_else(|| {
                SourceError::fatal(format!(
                    "{partition}: not a partition of this run (or already open)"
                ))
            })?;
        // Group mode: what the previous pipeline of this run read but did not checkpoint.
        let again = match self.mode {
            KafkaMode::Group => lock(&self.shared.returned)
                .remove(partition)
                .unwrap_or_default(),
            KafkaMode::Assign => Default::default(),
        };
        if !again.is_empty() {
            tracing::info!(
                partition,
                records = again.len(),
                from = again.front().map(|e| e.sequence),
                "reading again the records the previous pipeline did not checkpoint"
            );
        }
        Ok(Box::new(KafkaReader {
            id: partition.to_owned(),
            again,
            keep: self.mode == KafkaMode::Group,
            rx: Some(rx),
            shared: self.shared.clone(),
            fatal: self.shared.fatal.subscribe(),
            admit: (self.mode == KafkaMode::Assign
                && !matches!(start, StartFrom::Earliest | StartFrom::Latest))
            .then(|| start.clone()),
        }))
    }

    async fn close(&self) {
        let consumer = self.consumer.clone();
        let mode = self.mode;
        let stop = self.stop.clone();
        let handle = lock(&self.dispatcher).take();
        let _ = tokio::task::spawn_blocking(move || {
            stop.store(true, Ordering::Relaxed);
            if let Some(h) = handle {
                let _ = h.join();
            }
            if mode == KafkaMode::Group {
                match consumer.commit_consumer_state(CommitMode::Sync) {
                    Ok(()) => tracing::info!("final Kafka offsets committed"),
                    Err(e) => tracing::debug!(error = %e, "no final Kafka commit"),
                }
            }
        })
        .await;
    }
}

impl KafkaSource {
    /// The assignment offset of a replay start.
    async fn resolve_start(
        &self,
        topic: &str,
        p: i32,
        start: &StartFrom,
    ) -> Result<Offset, SourceError> {
        Ok(match start {
            StartFrom::Earliest => Offset::Beginning,
            StartFrom::Latest => Offset::End,
            StartFrom::Offset { offset, inclusive } => {
                let o: i64 = offset.trim().parse().map_err(|_| {
                    SourceError::fatal(format!("Kafka offsets are numbers; `{offset}` is not"))
                })?;
                Offset::Offset(if *inclusive { o } else { o + 1 })
            }
            StartFrom::Sequence {
                sequence,
                inclusive,
            } => Offset::Offset(if *inclusive { *sequence } else { sequence + 1 }),
            StartFrom::EnqueuedTime(ns) => {
                let mut tpl = TopicPartitionList::new();
                tpl.add_partition_offset(topic, p, Offset::Offset(ns.div_euclid(1_000_000)))
                    .map_err(|e| SourceError::fatal(format!("{topic}/{p}: {e}")))?;
                let consumer = self.consumer.clone();
                let found = blocking(move || consumer.offsets_for_times(tpl, LOOKUP_TIMEOUT))
                    .await?
                    .map_err(|e| self.error_with_context("looking up offsets by time", &e))?;
                found
                    .elements()
                    .first()
                    .map(|e| e.offset())
                    .filter(|o| *o != Offset::Invalid)
                    .unwrap_or(Offset::End)
            }
        })
    }
}

struct KafkaReader {
    id: String,
    /// Group mode: records to return before the queue's (see [`Shared::returned`]).
    again: std::collections::VecDeque<RawEvent>,
    /// Group mode: keep what is returned until a checkpoint covers it.
    keep: bool,
    rx: Option<mpsc::Receiver<RawEvent>>,
    shared: Arc<Shared>,
    fatal: tokio::sync::watch::Receiver<Option<String>>,
    /// Replay: drop records before the start (a broker may return a batch from its start, or
    /// answer a time look-up with an earlier offset).
    admit: Option<StartFrom>,
}

#[async_trait]
impl PartitionReader for KafkaReader {
    async fn next(&mut self) -> Option<Result<RawEvent, SourceError>> {
        loop {
            let ev = match self.again.pop_front() {
                Some(ev) => ev,
                None => {
                    let rx = self.rx.as_mut()?;
                    let fatal = self.fatal.clone();
                    let item = tokio::select! {
                        item = rx.recv() => item,
                        r = wait_fatal(fatal) => return Some(Err(SourceError::fatal(r))),
                    };
                    item?
                }
            };
            if let Some(ev) = self.hand_out(ev) {
                return Some(Ok(ev));
            }
        }
    }

    /// Like `next`, from the records already received (never waits; a fatal error is left for
    /// `next` to report).
    fn try_next(&mut self) -> Option<Option<Result<RawEvent, SourceError>>> {
        loop {
            let ev = match self.again.pop_front() {
                Some(ev) => ev,
                None => {
                    if self.fatal.borrow().is_some() {
                        return None;
                    }
                    let Some(rx) = self.rx.as_mut() else {
                        return Some(None);
                    };
                    match rx.try_recv() {
                        Ok(ev) => ev,
                        Err(mpsc::error::TryRecvError::Empty) => return None,
                        Err(mpsc::error::TryRecvError::Disconnected) => return Some(None),
                    }
                }
            };
            if let Some(ev) = self.hand_out(ev) {
                return Some(Some(Ok(ev)));
            }
        }
    }

    async fn close(mut self: Box<Self>) {
        if let Some(rx) = self.rx.take() {
            lock(&self.shared.receivers).insert(self.id.clone(), rx);
        }
        // Not returned yet: first in line for the next reader.
        if !self.again.is_empty() {
            let mut returned = lock(&self.shared.returned);
            let kept = returned.entry(self.id.clone()).or_default();
            kept.extend(std::mem::take(&mut self.again));
        }
    }
}

impl KafkaReader {
    /// A record about to be returned: kept (group mode) until a checkpoint covers it, then
    /// filtered by the replay start; `None` when the start does not admit it.
    fn hand_out(&mut self, ev: RawEvent) -> Option<RawEvent> {
        if self.keep {
            lock(&self.shared.returned)
                .entry(self.id.clone())
                .or_default()
                .push_back(ev.clone());
        }
        if let Some(start) = &self.admit {
            if !start.admits(&ev) {
                return None;
            }
            if matches!(start, StartFrom::EnqueuedTime(_)) {
                // Kafka semantics: from the first record at or after the time, everything.
                self.admit = None;
            }
        }
        Some(ev)
    }
}

async fn wait_fatal(mut rx: tokio::sync::watch::Receiver<Option<String>>) -> String {
    loop {
        if let Some(r) = rx.borrow_and_update().clone() {
            return r;
        }
        if rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// The [`CheckpointStore`] of a Kafka run: a checkpoint at offset N stores (group mode) or
/// commits (assign mode, replay `--commit`) N + 1 for its partition in the consumer group.
pub struct KafkaOffsets {
    consumer: Arc<HubConsumer>,
    shared: Arc<Shared>,
    mode: KafkaMode,
}

impl std::fmt::Debug for KafkaOffsets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KafkaOffsets({:?})", self.mode)
    }
}

fn invalid(cp: &Checkpoint, reason: &str) -> CheckpointError {
    CheckpointError::Invalid {
        what: cp.partition.clone(),
        reason: reason.to_owned(),
    }
}

impl KafkaOffsets {
    /// Stores `next` (the offset the group resumes at) for the next commit.
    fn store(&self, topic: &str, p: i32, next: i64) -> Result<(), KafkaError> {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, p, Offset::Offset(next))?;
        self.consumer.store_offsets(&tpl)
    }
}

#[async_trait]
impl CheckpointStore for KafkaOffsets {
    async fn list(&self, _key: &CheckpointKey) -> Result<Vec<Checkpoint>, CheckpointError> {
        Ok(Vec::new())
    }

    /// Group mode: `None` (the group's committed offset decides where reading starts).
    /// Assign mode: the committed offset, as the checkpoint "last processed = committed - 1".
    async fn load(
        &self,
        _key: &CheckpointKey,
        partition: &str,
    ) -> Result<Option<Checkpoint>, CheckpointError> {
        if self.mode == KafkaMode::Group {
            return Ok(None);
        }
        let (topic, p) = split_id(partition).ok_or_else(|| CheckpointError::Invalid {
            what: partition.to_owned(),
            reason: "not <topic>/<partition>".into(),
        })?;
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(topic, p);
        let consumer = self.consumer.clone();
        let got =
            tokio::task::spawn_blocking(move || consumer.committed_offsets(tpl, LOOKUP_TIMEOUT))
                .await
                .map_err(|e| CheckpointError::Config(format!("committed offsets: {e}")))?
                .map_err(|e| {
                    CheckpointError::Config(format!("committed offsets of {partition}: {e}"))
                })?;
        Ok(got.elements().first().and_then(|e| match e.offset() {
            Offset::Offset(n) if n > 0 => Some(Checkpoint {
                partition: partition.to_owned(),
                offset: Some((n - 1).to_string()),
                sequence: n - 1,
                enqueued_ns: None,
            }),
            _ => None,
        }))
    }

    async fn save(&self, _key: &CheckpointKey, cp: &Checkpoint) -> Result<(), CheckpointError> {
        let (topic, p) =
            split_id(&cp.partition).ok_or_else(|| invalid(cp, "not <topic>/<partition>"))?;
        let next = cp.sequence + 1;
        if self.mode == KafkaMode::Group {
            self.shared.forget_returned(&cp.partition, next);
        }
        match self.mode {
            KafkaMode::Group => match self.store(topic, p, next) {
                Ok(()) => {
                    self.shared
                        .set_progress(&cp.partition, |pr| pr.stored = Some(next));
                    Ok(())
                }
                Err(e) => {
                    // Revoked meanwhile: its next owner reads from the committed offset.
                    tracing::debug!(partition = %cp.partition, offset = next, error = %e, "offset not stored (partition no longer assigned)");
                    self.shared
                        .set_progress(&cp.partition, |pr| pr.stored = Some(next));
                    Ok(())
                }
            },
            KafkaMode::Assign => {
                let mut tpl = TopicPartitionList::new();
                tpl.add_partition_offset(topic, p, Offset::Offset(next))
                    .map_err(|e| invalid(cp, &e.to_string()))?;
                let consumer = self.consumer.clone();
                tokio::task::spawn_blocking(move || consumer.commit(&tpl, CommitMode::Sync))
                    .await
                    .map_err(|e| CheckpointError::Config(format!("commit task: {e}")))?
                    .map_err(|e| {
                        CheckpointError::Config(format!("committing {}: {e}", cp.partition))
                    })
            }
        }
    }

    fn describe(&self) -> String {
        match self.mode {
            KafkaMode::Group => "kafka consumer group offsets".into(),
            KafkaMode::Assign => "kafka consumer group offsets (commit)".into(),
        }
    }
}

/// The checkpoint key of a Kafka run (for logs; offsets live in the consumer group).
pub fn checkpoint_key(config: &KafkaConfig) -> CheckpointKey {
    let topics = match &config.topics {
        KafkaTopics::List(l) => l.join(","),
        KafkaTopics::Pattern(p) => p.clone(),
    };
    CheckpointKey::new(
        config.bootstrap_servers.clone(),
        topics,
        config.group_id.clone(),
    )
}

/// `azlog-hub run` with `[source.kafka]`: the group consumer through the pipeline into the
/// configured sinks until `stop`; the pipeline restarts when partitions appear ([`live`]).
pub async fn run_kafka(
    config: &crate::config::HubConfig,
    kafka: &KafkaConfig,
    stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<crate::pipeline::RunSummary> {
    let source =
        KafkaSource::new(kafka, KafkaMode::Group).map_err(|e| anyhow::anyhow!(e.message))?;
    let offsets: Arc<dyn CheckpointStore> = source.offsets();
    let source = Arc::new(source);
    tracing::info!(source = %source.describe(), "Kafka source");
    // Offsets reach the group only through checkpoints: keep a time cadence.
    let opts = crate::service::source_checkpointed(
        config,
        offsets,
        checkpoint_key(kafka),
        Duration::from_secs(1),
    );
    live::run_epochs(config, source, opts, stop).await
}

mod live;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_ids_round_trip() {
        assert_eq!(partition_id("a/b", 3), "a/b/3");
        assert_eq!(split_id("a/b/3"), Some(("a/b", 3)));
        assert_eq!(split_id("logs"), None);
        assert_eq!(split_id("logs/x"), None);
    }

    #[test]
    fn fatal_reasons() {
        assert!(is_fatal_reason(
            "SASL authentication error: bad credentials (after 3ms in state AUTH_REQ)"
        ));
        assert!(is_fatal_reason("ssl://127.0.0.1:9/bootstrap: SSL handshake failed: error:0A000086:SSL routines::certificate verify failed"));
        assert!(!is_fatal_reason(
            "Connect to ipv4#127.0.0.1:9 failed: Connection refused"
        ));
    }
}
