//! The live Kafka run (group mode) as a series of pipelines ("epochs") over one consumer, like
//! the Event Hubs load balancing ([`crate::service::balance`]): when the dispatcher finds a
//! partition the running pipeline has no reader for, it holds that partition's records and
//! signals here; the pipeline then stops gracefully (readers stop, sinks drain, final
//! checkpoints are stored, the stored offsets committed) and a new one starts on the partition
//! set listed again, which includes the new partition. The consumer, its group membership, its
//! assignment and the records queued for the existing partitions stay across the restart; the
//! plugins, schema tables, dead-letter store and counters too ([`LiveParts`]).
use std::sync::Arc;

use anyhow::Result;
use async_trait::async_trait;
use tokio::sync::watch;

use super::{KafkaSource, PartitionInfo, PartitionReader, Source, SourceError, StartFrom};
use crate::config::HubConfig;
use crate::pipeline::{RunOptions, RunSummary};
use crate::service::LiveParts;

/// The source as one pipeline sees it: closing it at the pipeline's end commits the stored
/// offsets but keeps the consumer (the run closes it once, at its end).
struct Epoch(Arc<KafkaSource>);

#[async_trait]
impl Source for Epoch {
    fn describe(&self) -> String {
        self.0.describe()
    }

    async fn partitions(&self) -> Result<Vec<String>, SourceError> {
        self.0.partitions().await
    }

    async fn partition_info(&self, partition: &str) -> Result<PartitionInfo, SourceError> {
        self.0.partition_info(partition).await
    }

    async fn open(
        &self,
        partition: &str,
        start: &StartFrom,
    ) -> Result<Box<dyn PartitionReader>, SourceError> {
        self.0.open(partition, start).await
    }

    async fn close(&self) {
        self.0.commit_stored().await;
    }

    fn write_metrics(&self, out: &mut String) {
        self.0.write_metrics(out)
    }
}

/// Runs pipelines on `source` until `stop` (or a pipeline error), restarting on new partitions.
pub(super) async fn run_epochs(
    config: &HubConfig,
    source: Arc<KafkaSource>,
    opts: RunOptions,
    mut stop: watch::Receiver<bool>,
) -> Result<RunSummary> {
    let result = epochs(config, source.clone(), opts, &mut stop).await;
    // Stops the dispatcher and commits the final offsets.
    source.close().await;
    result
}

async fn epochs(
    config: &HubConfig,
    source: Arc<KafkaSource>,
    opts: RunOptions,
    stop: &mut watch::Receiver<bool>,
) -> Result<RunSummary> {
    let parts = LiveParts::load(config)?;
    let epoch_source: Arc<dyn Source> = Arc::new(Epoch(source.clone()));
    let aux_tx =
        crate::service::start_reporting(config, parts.metrics(), epoch_source.clone()).await?;
    let mut changes = source.partition_changes();
    let mut total: Option<RunSummary> = None;
    let mut epoch = 0u64;
    let result = loop {
        epoch += 1;
        // Partitions held before this point are listed by the pipeline below; any held later
        // restart it again.
        changes.borrow_and_update();
        if epoch > 1 {
            tracing::info!(
                epoch,
                "Kafka: starting the pipeline on the new partition set"
            );
        }
        let (epoch_tx, epoch_rx) = watch::channel(false);
        let run = parts.run(config, epoch_source.clone(), opts.clone(), epoch_rx);
        tokio::pin!(run);
        let mut restart = false;
        let summary = tokio::select! {
            s = &mut run => s,
            () = stopped(stop) => {
                let _ = epoch_tx.send(true);
                run.await
            }
            changed = changes.changed() => {
                restart = changed.is_ok();
                if restart {
                    tracing::info!(epoch, "Kafka: new partitions; stopping the pipeline (drain, final checkpoints) to restart it on them");
                }
                let _ = epoch_tx.send(true);
                run.await
            }
        };
        let summary = match summary {
            Ok(s) => s,
            Err(e) => break Err(e),
        };
        let failed = summary.error.is_some();
        merge(&mut total, summary);
        if failed || !restart || *stop.borrow() {
            break Ok(());
        }
    };
    let _ = aux_tx.send(true);
    result.map(|()| total.unwrap_or_else(RunSummary::stopped))
}

/// Returns when `stop` turns true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Folds one pipeline's summary into the run's: totals are cumulative already (the pipelines
/// share their counters); each partition keeps the figures of the last pipeline that read it.
fn merge(total: &mut Option<RunSummary>, s: RunSummary) {
    let Some(t) = total.take() else {
        *total = Some(s);
        return;
    };
    let mut partitions = t.partitions;
    partitions.extend(s.partitions.clone());
    let mut stuck = t.stuck_sinks;
    stuck.extend(s.stuck_sinks.iter().cloned());
    *total = Some(RunSummary {
        partitions,
        stuck_sinks: stuck,
        ..s
    });
}
