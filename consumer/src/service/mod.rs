//! The service around the pipeline: `run` (live, checkpointed), `replay` (a range into chosen
//! sinks) and the dead-letter replay, assembled from a [`HubConfig`].
pub mod assemble;
pub mod balance;
pub mod dead_letter_replay;
pub mod http;
pub mod progress;
pub mod signals;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use azlog_mapper::Mapper;
use tokio::sync::watch;

use crate::checkpoint::{CheckpointKey, CheckpointStore, OwnershipStore};
use crate::config::{HubConfig, SourceConfig};
use crate::pipeline::{CheckpointTarget, DeadLetters, Pipeline, RunOptions, RunSummary};
use crate::source::{Source, StartFrom, Until};

/// How often the partition ends are polled for the lag gauges.
const LAG_POLL: Duration = Duration::from_secs(15);

/// `azlog-hub run`: reads the configured source (Event Hubs, or the WAD tables through
/// [`crate::source::wad::run_wad`]) until `stop`.
pub async fn run(config: &HubConfig, mut stop: watch::Receiver<bool>) -> Result<RunSummary> {
    let eh = match &config.source {
        SourceConfig::EventHubs(eh) => eh,
        SourceConfig::Wad(wad) => return crate::source::wad::run_wad(config, wad, stop).await,
        #[cfg(feature = "kafka")]
        SourceConfig::Kafka(k) => return crate::source::kafka::run_kafka(config, k, stop).await,
        #[cfg(not(feature = "kafka"))]
        SourceConfig::Kafka(_) => {
            anyhow::bail!("[source.kafka]: this azlog-hub was built without the `kafka` feature")
        }
    };
    let Some(source) = assemble::eventhubs_source(eh, None, &mut stop).await? else {
        return Ok(RunSummary::stopped());
    };
    tracing::info!(source = %source.describe(), "connected");
    run_with_source(config, Arc::new(source), stop).await
}

/// `run` with a given source (tests use the in-memory source).
pub async fn run_with_source(
    config: &HubConfig,
    source: Arc<dyn Source>,
    stop: watch::Receiver<bool>,
) -> Result<RunSummary> {
    run_with_source_and_claims(config, source, None, stop).await
}

/// [`run_with_source`] with the store of the ownership claims for `load_balancing` (`None`: the
/// blob checkpoint store, which keeps them next to the checkpoints).
pub async fn run_with_source_and_claims(
    config: &HubConfig,
    source: Arc<dyn Source>,
    claims: Option<Arc<dyn OwnershipStore>>,
    stop: watch::Receiver<bool>,
) -> Result<RunSummary> {
    let eh = config.eventhubs()?;
    let (store, blob_claims) = assemble::checkpoint_stores(&config.checkpoint).await?;
    let key = assemble::checkpoint_key(eh);
    tracing::info!(store = %store.describe(), hub = %key.hub, consumer_group = %key.consumer_group, "checkpoint store");
    let opts = RunOptions {
        settings: config.pipeline.clone(),
        envelope: config.envelope.clone(),
        partitions: eh.partitions.clone(),
        default_start: eh.start.clone(),
        start_override: None,
        resume_from: Some((store.clone(), key.clone())),
        checkpoints: Some(CheckpointTarget {
            store,
            key,
            cadence: config.checkpoint.cadence,
            flush_sinks: config.checkpoint.flush_sinks,
        }),
        stop_at_end: false,
        until: None,
        idle_timeout: None,
        connect_attempts: None,
    };
    match &eh.balance {
        None => run_live(config, source, opts, stop).await,
        Some(settings) => {
            let claims = claims.or(blob_claims).context(
                "[source.eventhubs] load_balancing needs [checkpoint] store = \"blob\" (the ownership claims live next to the checkpoints)",
            )?;
            let key = assemble::checkpoint_key(eh);
            balance::run_balanced(config, source, opts, claims, key, settings.clone(), stop).await
        }
    }
}

/// The live run every source shares: loads the plugins and schema tables, starts `/metrics`
/// and progress reporting, opens the sinks, then runs the pipeline with `opts` until `stop`.
pub async fn run_live(
    config: &HubConfig,
    source: Arc<dyn Source>,
    opts: RunOptions,
    stop: watch::Receiver<bool>,
) -> Result<RunSummary> {
    let parts = LiveParts::load(config)?;
    let aux_tx = start_reporting(config, parts.metrics(), source.clone()).await?;
    let summary = parts.run(config, source, opts, stop).await;
    let _ = aux_tx.send(true);
    summary
}

/// What a live run loads once and keeps across pipelines: the sink plugins, the compiled
/// schema tables, the dead-letter store and the counters behind `/metrics`.
pub struct LiveParts {
    registry: crate::sink_host::PluginRegistry,
    mapper: Arc<Mapper>,
    dead: Arc<DeadLetters>,
    metrics: Arc<crate::pipeline::Metrics>,
}

impl LiveParts {
    /// Loads the plugins and the schema tables of `config`.
    pub fn load(config: &HubConfig) -> Result<Self> {
        let registry = assemble::plugins(&config.plugin_dir)?;
        let mapper =
            Arc::new(Mapper::load(config.schemas.as_deref()).context("loading the schema tables")?);
        let dead = Arc::new(DeadLetters::new(&config.dead_letter));
        let names: Vec<String> = config.sinks.iter().map(|s| s.name.clone()).collect();
        let metrics = Arc::new(crate::pipeline::Metrics::new(&names, dead.clone()));
        Ok(LiveParts {
            registry,
            mapper,
            dead,
            metrics,
        })
    }

    /// The counters every pipeline of these parts counts into.
    pub fn metrics(&self) -> Arc<crate::pipeline::Metrics> {
        self.metrics.clone()
    }

    /// Opens the sinks and runs one pipeline until `stop`; the sinks are closed at its end. The
    /// summary's totals are cumulative over every pipeline these parts ran.
    pub async fn run(
        &self,
        config: &HubConfig,
        source: Arc<dyn Source>,
        opts: RunOptions,
        mut stop: watch::Receiver<bool>,
    ) -> Result<RunSummary> {
        let Some(hosts) = assemble::open_sinks(&config.sinks, &self.registry, &mut stop).await?
        else {
            source.close().await;
            return Ok(RunSummary::stopped());
        };
        let pipeline = Pipeline::new(
            source,
            self.mapper.clone(),
            &config.sinks,
            boxed(hosts),
            self.dead.clone(),
        )
        .with_metrics(self.metrics.clone());
        pipeline.run(opts, stop).await
    }
}

/// Options of a live run whose positions are kept by the source itself (`store` under `key`: the
/// Kafka group, the WAD watermarks): it resumes from there and checkpoints there. Acknowledgements
/// reach the source only through checkpoints, so a cadence without a time bound gets `every`.
pub fn source_checkpointed(
    config: &HubConfig,
    store: Arc<dyn CheckpointStore>,
    key: CheckpointKey,
    every: Duration,
) -> RunOptions {
    let mut cadence = config.checkpoint.cadence;
    if cadence.every.is_zero() {
        cadence.every = every;
    }
    RunOptions {
        resume_from: Some((store.clone(), key.clone())),
        checkpoints: Some(CheckpointTarget {
            store,
            key,
            cadence,
            flush_sinks: config.checkpoint.flush_sinks,
        }),
        settings: config.pipeline.clone(),
        envelope: config.envelope.clone(),
        ..RunOptions::live(StartFrom::Earliest)
    }
}

/// The `[metrics]` endpoint, the progress log lines and the partition-end polling of a live
/// run; they stop when the returned sender sends `true`.
pub async fn start_reporting(
    config: &HubConfig,
    metrics: Arc<crate::pipeline::metrics::Metrics>,
    source: Arc<dyn Source>,
) -> Result<watch::Sender<bool>> {
    let (aux_tx, aux_rx) = watch::channel(false);
    if let Some(addr) = config.metrics.listen {
        http::serve(addr, metrics.clone(), source.clone(), aux_rx.clone())
            .await
            .with_context(|| format!("binding the metrics endpoint {addr}"))?;
    }
    if let Some(every) = config.metrics.log_interval {
        tokio::spawn(progress::log_progress(
            metrics.clone(),
            every,
            aux_rx.clone(),
        ));
    }
    tokio::spawn(progress::poll_partition_ends(
        source, metrics, LAG_POLL, aux_rx,
    ));
    Ok(aux_tx)
}

/// Where a replay starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplayFrom {
    /// After each partition's live checkpoint (the configured start position without one).
    Checkpoint,
    /// At this position in every partition.
    Position(StartFrom),
}

impl ReplayFrom {
    /// Parses `checkpoint` or a [`StartFrom`] text.
    pub fn parse(s: &str) -> Result<ReplayFrom, crate::source::position::PositionError> {
        if s.trim().eq_ignore_ascii_case("checkpoint") {
            Ok(ReplayFrom::Checkpoint)
        } else {
            StartFrom::parse(s).map(ReplayFrom::Position)
        }
    }
}

/// What to replay.
#[derive(Debug, Clone)]
pub struct ReplayRequest {
    /// Start.
    pub from: ReplayFrom,
    /// Inclusive end (otherwise: each partition's newest event when the replay starts).
    pub until: Option<Until>,
    /// Partitions (`None`: the configured ones).
    pub partitions: Option<Vec<String>>,
    /// Sink names (`None`: all configured sinks).
    pub sinks: Option<Vec<String>>,
    /// Move the live checkpoint to where the replay ended.
    pub commit: bool,
    /// End a partition when no event arrives for this long.
    pub idle_timeout: Duration,
    /// Print a progress line to stderr every second.
    pub progress: bool,
    /// Dead letters of the replay go here instead of the configured file.
    pub dead_letter: Option<PathBuf>,
}

/// `azlog-hub replay`: connects to Event Hubs and replays.
pub async fn replay(
    config: &HubConfig,
    req: &ReplayRequest,
    mut stop: watch::Receiver<bool>,
) -> Result<RunSummary> {
    #[cfg(feature = "kafka")]
    if let Some(k) = config.kafka() {
        use crate::source::kafka::{checkpoint_key, KafkaMode, KafkaSource};
        let source =
            KafkaSource::new(k, KafkaMode::Assign).map_err(|e| anyhow::anyhow!(e.message))?;
        let offsets: Arc<dyn crate::checkpoint::CheckpointStore> = source.offsets();
        let default_start = match k.start {
            crate::config::kafka::KafkaStart::Earliest => StartFrom::Earliest,
            crate::config::kafka::KafkaStart::Latest => StartFrom::Latest,
        };
        let target = ReplayTarget {
            store: offsets,
            key: checkpoint_key(k),
            partitions: None,
            default_start,
        };
        return replay_into(config, Arc::new(source), req, target, stop).await;
    }
    let Some(source) =
        assemble::eventhubs_source(config.eventhubs_for("replay")?, Some(3), &mut stop).await?
    else {
        return Ok(RunSummary::stopped());
    };
    replay_with_source(config, Arc::new(source), req, stop).await
}

/// Where a replay keeps its checkpoints and what it reads by default.
pub struct ReplayTarget {
    /// Checkpoint store (read for `--from checkpoint`, written with `--commit`).
    pub store: Arc<dyn crate::checkpoint::CheckpointStore>,
    /// Its key.
    pub key: crate::checkpoint::CheckpointKey,
    /// Partitions read without `--partition` (`None`: all).
    pub partitions: Option<Vec<String>>,
    /// Start of a partition without a checkpoint.
    pub default_start: StartFrom,
}

/// `replay` with a given source.
pub async fn replay_with_source(
    config: &HubConfig,
    source: Arc<dyn Source>,
    req: &ReplayRequest,
    stop: watch::Receiver<bool>,
) -> Result<RunSummary> {
    let eh = config.eventhubs_for("replay")?;
    let target = ReplayTarget {
        store: assemble::checkpoint_store(&config.checkpoint).await?,
        key: assemble::checkpoint_key(eh),
        partitions: eh.partitions.clone(),
        default_start: eh.start.clone(),
    };
    replay_into(config, source, req, target, stop).await
}

/// `replay` with a given source and checkpoint target.
pub async fn replay_into(
    config: &HubConfig,
    source: Arc<dyn Source>,
    req: &ReplayRequest,
    target: ReplayTarget,
    mut stop: watch::Receiver<bool>,
) -> Result<RunSummary> {
    let ReplayTarget {
        store,
        key,
        partitions,
        default_start,
    } = target;
    let sink_configs = select_sinks(config, req.sinks.as_deref())?;
    let registry = assemble::plugins(&config.plugin_dir)?;
    let mapper =
        Arc::new(Mapper::load(config.schemas.as_deref()).context("loading the schema tables")?);
    let dead = Arc::new(DeadLetters::new(
        req.dead_letter.as_deref().unwrap_or(&config.dead_letter),
    ));
    let Some(hosts) = assemble::open_sinks(&sink_configs, &registry, &mut stop).await? else {
        return Ok(RunSummary::stopped());
    };
    let pipeline = Pipeline::new(source.clone(), mapper, &sink_configs, boxed(hosts), dead);
    let metrics = pipeline.metrics();
    let (aux_tx, aux_rx) = watch::channel(false);
    let progress_task = req.progress.then(|| {
        tokio::spawn(progress::replay_progress(
            metrics.clone(),
            Duration::from_secs(1),
            aux_rx.clone(),
        ))
    });
    let (start_override, resume_from) = match &req.from {
        ReplayFrom::Checkpoint => (None, Some((store.clone(), key.clone()))),
        ReplayFrom::Position(p) => (Some(p.clone()), None),
    };
    let opts = RunOptions {
        settings: config.pipeline.clone(),
        envelope: config.envelope.clone(),
        partitions: req.partitions.clone().or(partitions),
        default_start,
        start_override,
        resume_from,
        checkpoints: req.commit.then(|| CheckpointTarget {
            store,
            key,
            cadence: config.checkpoint.cadence,
            flush_sinks: config.checkpoint.flush_sinks,
        }),
        stop_at_end: true,
        until: req.until.clone(),
        idle_timeout: Some(req.idle_timeout),
        connect_attempts: Some(3),
    };
    let summary = pipeline.run(opts, stop).await;
    let _ = aux_tx.send(true);
    if let Some(t) = progress_task {
        let _ = t.await;
    }
    summary
}

fn boxed(hosts: Vec<crate::sink_host::SinkHost>) -> Vec<Box<dyn crate::pipeline::DeliverySink>> {
    hosts
        .into_iter()
        .map(|h| Box::new(h) as Box<dyn crate::pipeline::DeliverySink>)
        .collect()
}

/// The configured sinks named in `names` (all when `None`), in configuration order.
pub fn select_sinks(
    config: &HubConfig,
    names: Option<&[String]>,
) -> Result<Vec<crate::sink_host::SinkConfig>> {
    let Some(names) = names else {
        return Ok(config.sinks.clone());
    };
    let configured: Vec<&str> = config.sinks.iter().map(|s| s.name.as_str()).collect();
    for n in names {
        anyhow::ensure!(
            configured.contains(&n.as_str()),
            "--sink {n}: no sink of that name in {} (configured: {})",
            config.file.display(),
            configured.join(", ")
        );
    }
    Ok(config
        .sinks
        .iter()
        .filter(|s| names.contains(&s.name))
        .cloned()
        .collect())
}

impl RunSummary {
    /// The summary of a run stopped before it started.
    pub fn stopped() -> Self {
        RunSummary {
            events: 0,
            records: 0,
            map_jobs: 0,
            dead_lettered: 0,
            checkpoints: 0,
            partitions: Default::default(),
            sinks: Default::default(),
            error: None,
            stuck_sinks: Vec::new(),
        }
    }
}
