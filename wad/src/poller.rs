//! The poll loop: one task per (account, table), all feeding one bounded channel of batches.
//!
//! ```text
//!  table task ──query pages──▶ dedup (PollState) ──WadBatch──▶ channel ──▶ consumer
//!      ▲                                                                    │ maps, sends to sinks
//!      └──────────────── BatchAck::ack() after every sink acknowledged ◀────┘
//!  acknowledged cycles move the watermark; it is saved through the WatermarkStore
//! ```
//!
//! Backpressure: the channel is bounded and each table keeps at most
//! `max_in_flight_batches` batches unacknowledged. Failures of a cycle (after the client's
//! own retries) are logged and the cycle is tried again with backoff; rows already delivered
//! in the failed cycle are not delivered twice.
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use azlog_mapper::deadletter::DeadLetter;
use azlog_mapper::{Mapper, Record};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::error::TableError;
use crate::records::{map_rows, RecordExtras};
use crate::retry::RetryPolicy;
use crate::row::{parse_page, WadRow};
use crate::state::{PollState, Window, WindowTicks};
use crate::table::{Query, TableClient};
use crate::ticks::ticks_from_unix_ns;
use crate::watermark::{Watermark, WatermarkStore};

/// Poll loop settings (see docs/configuration.md, `[source.wad]`).
#[derive(Debug, Clone)]
pub struct PollOptions {
    /// Pause between cycles once caught up.
    pub poll_interval: Duration,
    /// The newest partition read is the minute of `now - lag`.
    pub lag: Duration,
    /// Each cycle reads again this far below the watermark, for rows written late (at least
    /// one minute).
    pub overlap: Duration,
    /// The widest range one cycle reads; a source far behind catches up in such steps.
    pub max_window: Duration,
    /// Where a table without a watermark starts: this long before now (plus the overlap).
    pub initial_lookback: Duration,
    /// Rows per page (`$top`, at most 1000).
    pub page_size: u32,
    /// Batches per table sent and not yet acknowledged, at most.
    pub max_in_flight_batches: usize,
    /// Batches waiting in the channel, at most.
    pub channel_capacity: usize,
    /// How often a changed watermark is saved (zero: at every change).
    pub checkpoint_interval: Duration,
    /// Backoff between failed cycles.
    pub error_backoff: RetryPolicy,
}

impl Default for PollOptions {
    fn default() -> Self {
        PollOptions {
            poll_interval: Duration::from_secs(30),
            lag: Duration::ZERO,
            overlap: Duration::from_secs(600),
            max_window: Duration::from_secs(3600),
            initial_lookback: Duration::from_secs(3600),
            page_size: 1000,
            max_in_flight_batches: 16,
            channel_capacity: 8,
            checkpoint_interval: Duration::from_secs(5),
            error_backoff: RetryPolicy {
                max_attempts: u32::MAX,
                initial_delay: Duration::from_secs(1),
                max_delay: Duration::from_secs(60),
            },
        }
    }
}

fn ticks_of(d: Duration) -> i64 {
    i64::try_from(d.as_nanos() / 100).unwrap_or(i64::MAX / 4)
}

impl PollOptions {
    fn window(&self) -> WindowTicks {
        WindowTicks {
            lag: ticks_of(self.lag),
            overlap: ticks_of(self.overlap),
            max_window: ticks_of(self.max_window),
        }
    }
}

/// One table to poll.
#[derive(Debug, Clone)]
pub struct TableSpec {
    /// The account's client.
    pub client: TableClient,
    /// Table name (usually `WADWindowsEventLogsTable`).
    pub table: String,
    /// What the table's records get in addition.
    pub extras: RecordExtras,
}

impl TableSpec {
    /// `wad:<account>/<table>`: the records' position source and the watermark key.
    pub fn source_id(&self) -> String {
        format!("wad:{}/{}", self.client.account(), self.table)
    }
}

/// Counters of one table (shared with its task).
#[derive(Debug, Default)]
pub struct TableStats {
    /// Cycles completed.
    pub cycles: AtomicU64,
    /// Pages read.
    pub pages: AtomicU64,
    /// Rows read (including re-reads).
    pub rows_read: AtomicU64,
    /// Rows delivered in batches.
    pub rows_delivered: AtomicU64,
    /// Re-read rows skipped because they were delivered before.
    pub duplicates_skipped: AtomicU64,
    /// Batches acknowledged.
    pub batches_acked: AtomicU64,
    /// Batches released without acknowledgement (rewinds).
    pub batches_released: AtomicU64,
    /// Failed cycles and store errors.
    pub errors: AtomicU64,
    /// Watermarks saved.
    pub watermark_saves: AtomicU64,
    /// The saved watermark (ticks; 0 before the first save).
    pub committed_ticks: AtomicI64,
    /// Time spent in HTTP (request to body read), µs.
    pub http_us: AtomicU64,
    /// Time spent splitting pages into rows, µs.
    pub parse_us: AtomicU64,
}

/// A batch of new rows of one table. Map it, deliver it, then [`WadBatch::ack`] it (or its
/// [`BatchAck`]) once every sink acknowledged; dropping it unacknowledged has them read and
/// delivered again.
#[derive(Debug)]
pub struct WadBatch {
    /// `wad:<account>/<table>`.
    pub source: Arc<str>,
    /// What the table's records get in addition.
    pub extras: Arc<RecordExtras>,
    /// The rows, in table order.
    pub rows: Vec<WadRow>,
    ack: BatchAck,
}

impl WadBatch {
    /// Maps the rows: records in row order, dead letters (with reason and raw row) aside.
    pub fn map(&self, mapper: &Mapper, ingested_ns: i64) -> (Vec<Record>, Vec<DeadLetter>) {
        map_rows(mapper, &self.source, &self.rows, &self.extras, ingested_ns)
    }

    /// Rows and the acknowledgement handle, separately.
    pub fn into_parts(self) -> (Vec<WadRow>, BatchAck) {
        (self.rows, self.ack)
    }

    /// Acknowledges the batch: the sinks have every record (and the dead-letter store every
    /// dead letter) of it.
    pub fn ack(self) {
        self.ack.ack();
    }
}

enum AckMsg {
    Ack { epoch: u64, seq: u64 },
    Release { epoch: u64, seq: u64 },
}

/// Acknowledges one batch. Dropping it without [`BatchAck::ack`] releases the batch: its rows
/// are read and delivered again.
#[derive(Debug)]
pub struct BatchAck {
    tx: mpsc::UnboundedSender<AckMsg>,
    epoch: u64,
    seq: u64,
    done: bool,
}

impl BatchAck {
    /// Acknowledges the batch.
    pub fn ack(mut self) {
        self.done = true;
        // A closed channel means the table task ended; nothing left to commit.
        let _ = self.tx.send(AckMsg::Ack {
            epoch: self.epoch,
            seq: self.seq,
        });
    }
}

impl Drop for BatchAck {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.tx.send(AckMsg::Release {
                epoch: self.epoch,
                seq: self.seq,
            });
        }
    }
}

/// The running pollers of several tables (and accounts), feeding one channel.
pub struct WadSource {
    rx: mpsc::Receiver<WadBatch>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    tables: Vec<(Arc<str>, Arc<TableStats>)>,
}

impl WadSource {
    /// Starts one poller task per table on the current tokio runtime.
    pub fn start(
        tables: Vec<TableSpec>,
        store: Arc<dyn WatermarkStore>,
        options: PollOptions,
    ) -> WadSource {
        let tables = tables.into_iter().map(|t| (t, Arc::default())).collect();
        WadSource::start_with_stats(tables, store, options)
    }

    /// [`WadSource::start`] counting into the given per-table counters (so that counters
    /// outlive a poller that is stopped and started again).
    pub fn start_with_stats(
        tables: Vec<(TableSpec, Arc<TableStats>)>,
        store: Arc<dyn WatermarkStore>,
        options: PollOptions,
    ) -> WadSource {
        let (tx, rx) = mpsc::channel(options.channel_capacity.max(1));
        let (shutdown, shutdown_rx) = watch::channel(false);
        let mut tasks = Vec::new();
        let mut stats = Vec::new();
        for (spec, table_stats) in tables {
            let source: Arc<str> = Arc::from(spec.source_id());
            stats.push((source.clone(), table_stats.clone()));
            let (ack_tx, ack_rx) = mpsc::unbounded_channel();
            let task = TableTask {
                extras: Arc::new(spec.extras.clone()),
                spec,
                source,
                options: options.clone(),
                store: store.clone(),
                tx: tx.clone(),
                ack_tx,
                ack_rx,
                shutdown: shutdown_rx.clone(),
                stats: table_stats,
                last_save: Instant::now(),
            };
            tasks.push(tokio::spawn(task.run()));
        }
        WadSource {
            rx,
            shutdown,
            tasks,
            tables: stats,
        }
    }

    /// The next batch of any table; `None` once every poller has stopped.
    pub async fn next_batch(&mut self) -> Option<WadBatch> {
        self.rx.recv().await
    }

    /// The tables' source ids and counters.
    pub fn stats(&self) -> &[(Arc<str>, Arc<TableStats>)] {
        &self.tables
    }

    /// Stops the pollers: each saves its acknowledged watermark and ends. Batches not yet
    /// acknowledged are read again by the next start.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        drop(self.rx);
        for t in self.tasks {
            if let Err(e) = t.await {
                tracing::error!(error = %e, "a WAD poller task failed");
            }
        }
    }
}

struct TableTask {
    spec: TableSpec,
    source: Arc<str>,
    extras: Arc<RecordExtras>,
    options: PollOptions,
    store: Arc<dyn WatermarkStore>,
    tx: mpsc::Sender<WadBatch>,
    ack_tx: mpsc::UnboundedSender<AckMsg>,
    ack_rx: mpsc::UnboundedReceiver<AckMsg>,
    shutdown: watch::Receiver<bool>,
    stats: Arc<TableStats>,
    last_save: Instant,
}

/// Why a cycle stopped early.
enum Stop {
    Shutdown,
    Failed(TableError),
}

fn now_ticks() -> i64 {
    ticks_from_unix_ns(azlog_mapper::deadletter::now_ns())
}

impl TableTask {
    fn stopping(&self) -> bool {
        *self.shutdown.borrow()
    }

    async fn run(mut self) {
        let Some(watermark) = self.load_watermark().await else {
            return;
        };
        let initial = ticks_of(self.options.initial_lookback);
        let mut state = PollState::new(watermark, now_ticks(), self.options.window(), initial);
        tracing::info!(source = %self.source, cursor = %crate::ticks::rfc3339_of_ticks(state.cursor()), "WAD poller started");
        let mut failures = 0u32;
        let mut next_poll = Instant::now();
        loop {
            // Wait for the next cycle, handling acknowledgements and saving meanwhile.
            while Instant::now() < next_poll && !self.stopping() {
                self.save_if_due(&mut state, false).await;
                let wake = self.next_wake(&state, next_poll);
                tokio::select! {
                    _ = tokio::time::sleep_until(wake.into()) => {}
                    msg = self.ack_rx.recv() => if let Some(m) = msg { self.handle(&mut state, m) },
                    _ = self.shutdown.changed() => {}
                }
            }
            if self.stopping() {
                break;
            }
            let window = state.plan(now_ticks());
            match self.cycle(&mut state, window).await {
                Ok(finished) => {
                    failures = 0;
                    self.stats.cycles.fetch_add(1, Ordering::Relaxed);
                    next_poll = if finished && window.caught_up {
                        Instant::now() + self.options.poll_interval
                    } else {
                        Instant::now()
                    };
                }
                Err(Stop::Shutdown) => break,
                Err(Stop::Failed(e)) => {
                    failures += 1;
                    self.stats.errors.fetch_add(1, Ordering::Relaxed);
                    let delay = self.options.error_backoff.delay(failures);
                    tracing::warn!(source = %self.source, error = %e, failures, retry_in_ms = delay.as_millis() as u64, "WAD poll cycle failed");
                    next_poll = Instant::now() + delay;
                }
            }
            self.save_if_due(&mut state, false).await;
        }
        // Take the acknowledgements that already arrived, then save what is acknowledged.
        while let Ok(m) = self.ack_rx.try_recv() {
            self.handle(&mut state, m);
        }
        self.save_if_due(&mut state, true).await;
        tracing::info!(source = %self.source, watermark = %crate::ticks::rfc3339_of_ticks(state.committed()), in_flight = state.in_flight(), "WAD poller stopped");
    }

    async fn load_watermark(&mut self) -> Option<Option<Watermark>> {
        let mut attempt = 0u32;
        loop {
            match self.store.load(&self.source).await {
                Ok(w) => return Some(w),
                Err(e) => {
                    attempt += 1;
                    self.stats.errors.fetch_add(1, Ordering::Relaxed);
                    let delay = self.options.error_backoff.delay(attempt);
                    tracing::error!(source = %self.source, error = %e, retry_in_ms = delay.as_millis() as u64, "cannot load the WAD watermark; not polling until it can be read");
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = self.shutdown.changed() => {}
                    }
                    if self.stopping() {
                        return None;
                    }
                }
            }
        }
    }

    /// The next poll, or earlier when a changed watermark becomes due for saving.
    fn next_wake(&self, state: &PollState, next_poll: Instant) -> Instant {
        if state.is_dirty() {
            let due = self.last_save + self.options.checkpoint_interval;
            return next_poll.min(due.max(Instant::now() + Duration::from_millis(1)));
        }
        next_poll
    }

    fn handle(&mut self, state: &mut PollState, msg: AckMsg) {
        match msg {
            AckMsg::Ack { epoch, seq } => {
                self.stats.batches_acked.fetch_add(1, Ordering::Relaxed);
                state.ack(epoch, seq);
            }
            AckMsg::Release { epoch, seq } => {
                self.stats.batches_released.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(source = %self.source, "a WAD batch was released unacknowledged; reading again from the watermark");
                state.nack(epoch, seq);
            }
        }
    }

    async fn save_if_due(&mut self, state: &mut PollState, force: bool) {
        let due = force || self.last_save.elapsed() >= self.options.checkpoint_interval;
        if !due || !state.take_dirty() {
            return;
        }
        let wm = state.watermark();
        match self.store.save(&self.source, &wm).await {
            Ok(()) => {
                self.last_save = Instant::now();
                self.stats.watermark_saves.fetch_add(1, Ordering::Relaxed);
                self.stats
                    .committed_ticks
                    .store(wm.cursor_ticks, Ordering::Relaxed);
                tracing::debug!(source = %self.source, watermark = %wm.cursor, seen = wm.seen_rows(), "WAD watermark saved");
            }
            Err(e) => {
                state.set_dirty();
                self.stats.errors.fetch_add(1, Ordering::Relaxed);
                tracing::error!(source = %self.source, error = %e, "saving the WAD watermark failed; will retry");
            }
        }
    }

    /// Reads one window page by page, sending the new rows of each page as a batch.
    /// `Ok(false)` when a released batch rewound the state mid-cycle.
    async fn cycle(&mut self, state: &mut PollState, window: Window) -> Result<bool, Stop> {
        let query = Query {
            filter: Some(window.filter()),
            select: None,
            top: Some(self.options.page_size.clamp(1, 1000)),
        };
        tracing::debug!(source = %self.source, filter = ?query.filter, "WAD poll cycle");
        let mut continuation = None;
        let epoch = state.epoch();
        loop {
            // Backpressure: at most max_in_flight_batches unacknowledged.
            while state.in_flight() >= self.options.max_in_flight_batches.max(1) {
                tokio::select! {
                    msg = self.ack_rx.recv() => if let Some(m) = msg { self.handle(state, m) },
                    _ = self.shutdown.changed() => {}
                }
                if self.stopping() {
                    return Err(Stop::Shutdown);
                }
                if state.epoch() != epoch {
                    return Ok(false);
                }
            }
            let page = tokio::select! {
                p = self.spec.client.query_page(&self.spec.table, &query, continuation.as_ref()) => p.map_err(Stop::Failed)?,
                _ = self.shutdown.changed() => return Err(Stop::Shutdown),
            };
            self.stats
                .http_us
                .fetch_add(page.http_time.as_micros() as u64, Ordering::Relaxed);
            self.stats.pages.fetch_add(1, Ordering::Relaxed);
            let started = Instant::now();
            let rows = parse_page(&page.body).map_err(|reason| {
                Stop::Failed(TableError::Protocol {
                    operation: format!("query {}", self.spec.table),
                    reason,
                })
            })?;
            self.stats
                .parse_us
                .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
            self.stats
                .rows_read
                .fetch_add(rows.len() as u64, Ordering::Relaxed);
            let (fresh, skipped) = state.accept(rows);
            self.stats
                .duplicates_skipped
                .fetch_add(skipped as u64, Ordering::Relaxed);
            if !fresh.is_empty() {
                let (epoch, seq) = state.register(&fresh);
                let n = fresh.len() as u64;
                let batch = WadBatch {
                    source: self.source.clone(),
                    extras: self.extras.clone(),
                    rows: fresh,
                    ack: BatchAck {
                        tx: self.ack_tx.clone(),
                        epoch,
                        seq,
                        done: false,
                    },
                };
                tokio::select! {
                    r = self.tx.send(batch) => if r.is_err() { return Err(Stop::Shutdown) },
                    _ = self.shutdown.changed() => return Err(Stop::Shutdown),
                }
                self.stats.rows_delivered.fetch_add(n, Ordering::Relaxed);
            }
            // Acknowledgements that arrived meanwhile.
            while let Ok(m) = self.ack_rx.try_recv() {
                self.handle(state, m);
            }
            if state.epoch() != epoch {
                // A batch was released: the state rewound to the watermark; start over there.
                return Ok(false);
            }
            match page.continuation {
                Some(c) => continuation = Some(c),
                None => break,
            }
        }
        state.finish_cycle(window.hi);
        Ok(true)
    }
}
