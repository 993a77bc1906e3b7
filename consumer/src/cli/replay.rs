//! `azlog-hub replay`: re-reads a range of the hub into chosen sinks, or re-sends a dead-letter
//! file.
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;

use crate::config::HubConfig;
use crate::service::{self, dead_letter_replay, ReplayFrom, ReplayRequest};
use crate::source::Until;

/// Arguments of `azlog-hub replay`.
#[derive(Args, Debug)]
pub struct ReplayArgs {
    /// The configuration file (source, sinks, checkpoint store).
    #[arg(
        long,
        short,
        value_name = "FILE",
        env = "AZLOG_CONFIG",
        default_value = "azlog-hub.toml"
    )]
    pub config: PathBuf,
    /// Start: `checkpoint` (after the live checkpoint), `earliest`, `offset:X`, `sequence:N`
    /// or `time:RFC3339` (inclusive).
    #[arg(long, value_name = "POSITION", default_value = "checkpoint")]
    pub from: String,
    /// Inclusive end: `offset:X`, `sequence:N` or `time:RFC3339`; default: each partition's
    /// newest event when the replay starts.
    #[arg(long, value_name = "POSITION")]
    pub until: Option<String>,
    /// Only these partitions (repeatable; default: the configured ones). Kafka: `<topic>/<partition>`.
    #[arg(long = "partition", value_name = "ID")]
    pub partitions: Vec<String>,
    /// Only these sinks (repeatable; default: all configured sinks).
    #[arg(long = "sink", value_name = "NAME")]
    pub sinks: Vec<String>,
    /// Move the live checkpoint to where the replay ended (default: leave it alone).
    #[arg(long)]
    pub commit: bool,
    /// Read with this consumer group instead of the configured one (use one the live service
    /// does not hold with an owner level).
    #[arg(long, value_name = "NAME")]
    pub consumer_group: Option<String>,
    /// End a partition's replay when no event arrives for this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub idle_timeout: u64,
    /// No progress line on stderr.
    #[arg(long)]
    pub quiet: bool,
    /// Re-map and re-send the entries of this dead-letter file instead of reading the hub.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["until", "partitions", "commit", "consumer_group"])]
    pub dead_letter: Option<PathBuf>,
    /// With --dead-letter: where entries that fail again go (default `<FILE stem>.rejects.ndjson`).
    #[arg(long, value_name = "FILE", requires = "dead_letter")]
    pub rejects: Option<PathBuf>,
}

/// Runs `azlog-hub replay`.
pub fn run(args: ReplayArgs) -> Result<ExitCode> {
    let mut config = HubConfig::load(&args.config)?;
    let sinks = (!args.sinks.is_empty()).then(|| args.sinks.clone());
    if let Some(input) = &args.dead_letter {
        let rejects = args
            .rejects
            .clone()
            .unwrap_or_else(|| dead_letter_replay::default_rejects_path(input));
        let s =
            dead_letter_replay::replay_dead_letters(&config, input, sinks.as_deref(), &rejects)?;
        println!(
            "azlog-hub replay: {} dead-letter entries, {} records mapped, {} deliveries accepted, {} wanted by no selected sink, {} failed again{}",
            s.entries,
            s.mapped,
            s.delivered,
            s.filtered,
            s.failed,
            if s.failed > 0 {
                format!(" → {}", s.rejects.display())
            } else {
                String::new()
            }
        );
        return Ok(if s.failed > 0 {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        });
    }
    if let Some(cg) = &args.consumer_group {
        match &mut config.source {
            crate::config::SourceConfig::Kafka(k) => k.group_id = cg.clone(),
            _ => config.eventhubs_mut()?.endpoint.consumer_group = cg.clone(),
        }
    }
    let req = ReplayRequest {
        from: ReplayFrom::parse(&args.from).context("--from")?,
        until: args
            .until
            .as_deref()
            .map(Until::parse)
            .transpose()
            .context("--until")?,
        partitions: (!args.partitions.is_empty()).then(|| args.partitions.clone()),
        sinks,
        commit: args.commit,
        idle_timeout: Duration::from_secs(args.idle_timeout.max(1)),
        progress: !args.quiet,
        dead_letter: None,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let summary = rt.block_on(async {
        let stop = service::signals::shutdown_signal().context("installing signal handlers")?;
        service::replay(&config, &req, stop).await
    })?;
    rt.shutdown_timeout(Duration::from_secs(1));
    let per_sink: Vec<String> = summary
        .sinks
        .iter()
        .map(|(n, s)| {
            format!(
                "{n}: {} sent, {} rejected, {} undelivered",
                s.accepted, s.rejected, s.undelivered
            )
        })
        .collect();
    let per_partition: Vec<String> = summary
        .partitions
        .iter()
        .map(|(id, p)| {
            format!(
                "{id}: {} events, last sequence {}",
                p.events, p.last_sequence
            )
        })
        .collect();
    println!(
        "azlog-hub replay: {} events, {} records, {} dead-lettered; {}; partitions {}{}",
        summary.events,
        summary.records,
        summary.dead_lettered,
        per_sink.join("; "),
        per_partition.join(", "),
        if args.commit {
            format!("; {} checkpoints committed", summary.checkpoints)
        } else {
            "; live checkpoint untouched".to_owned()
        }
    );
    Ok(super::run::report(&summary))
}
