//! Load balancing: several consumers of one hub and consumer group share its partitions
//! through ownership claims ([`crate::checkpoint::ownership`]), the official SDKs' protocol, so
//! azlog-hub instances and SDK processors (Python, .NET, Java, JS) can run side by side.
//!
//! Every `interval`, a round lists the claims, renews this instance's own, and claims at most
//! one more partition, exactly as the SDKs' "balanced" strategy does:
//! * a claim older than `expiry`, or with an empty owner, is released;
//! * with `n` active owners (this one included) and `p` partitions, each owner should hold
//!   `p / n` partitions, at most `ceil(p / n)`;
//! * below the maximum, an instance claims a random unclaimed or released partition; if there is
//!   none and it holds fewer than `p / n`, it steals a random partition from the owner holding
//!   the most.
//!
//! The pipeline reads the partitions this instance owns. When a round changes that set (a
//! partition was claimed, or lost to a steal), the pipeline is stopped gracefully (sinks drained,
//! final checkpoints written) and started again on the new set, like Kafka's eager rebalance.
//! A stolen partition may be read by both owners until the old one's next round: records are
//! then delivered twice, never lost. On shutdown every claim is released, so the other
//! instances take the partitions over at their next round instead of after the expiry.
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use tokio::sync::watch;

use crate::checkpoint::{CheckpointKey, Ownership, OwnershipStore};
use crate::config::HubConfig;
use crate::pipeline::{RunOptions, RunSummary};
use crate::source::Source;

/// Load-balancing settings (`[source.eventhubs] load_balancing…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BalanceSettings {
    /// This instance's owner id in the claims.
    pub owner_id: String,
    /// Time between two rounds.
    pub interval: Duration,
    /// A claim not renewed for this long is released.
    pub expiry: Duration,
}

/// The claims one round writes: this owner's active claims (renewed) plus at most one more
/// partition. `pick(n)` chooses an index below `n` (random in the service, fixed in tests).
pub fn plan_claims(
    partitions: &[String],
    records: &[Ownership],
    me: &str,
    now_ns: i64,
    expiry: Duration,
    pick: &mut dyn FnMut(usize) -> usize,
) -> Vec<Ownership> {
    let expiry_ns = i64::try_from(expiry.as_nanos()).unwrap_or(i64::MAX);
    let known: BTreeSet<&str> = partitions.iter().map(String::as_str).collect();
    let by_partition: HashMap<&str, &Ownership> = records
        .iter()
        .filter(|o| known.contains(o.partition.as_str()))
        .map(|o| (o.partition.as_str(), o))
        .collect();
    let released = |o: &Ownership| {
        o.owner_id.is_empty() || o.last_modified_ns.saturating_add(expiry_ns) < now_ns
    };
    let claimable: Vec<&str> = partitions
        .iter()
        .map(String::as_str)
        .filter(|p| by_partition.get(p).is_none_or(|o| released(o)))
        .collect();
    let mut active: BTreeMap<&str, Vec<&Ownership>> = BTreeMap::new();
    for o in by_partition.values().filter(|o| !released(o)) {
        active.entry(o.owner_id.as_str()).or_default().push(o);
    }
    for owned in active.values_mut() {
        owned.sort_by(|a, b| a.partition.cmp(&b.partition));
    }
    let mine: Vec<&Ownership> = active.get(me).cloned().unwrap_or_default();
    let owners = active.len() + usize::from(!active.contains_key(me));
    let expected = partitions.len() / owners;
    let max = partitions.len().div_ceil(owners);

    let claim = |o: Option<&Ownership>, partition: &str| Ownership {
        partition: partition.to_owned(),
        owner_id: me.to_owned(),
        etag: o.and_then(|o| o.etag.clone()),
        last_modified_ns: o.map_or(0, |o| o.last_modified_ns),
    };
    let mut out: Vec<Ownership> = mine.iter().map(|o| claim(Some(o), &o.partition)).collect();
    if mine.len() < max {
        if !claimable.is_empty() {
            let p = claimable[pick(claimable.len()) % claimable.len()];
            out.push(claim(by_partition.get(p).copied(), p));
        } else if mine.len() < expected {
            // Steal from the owner holding the most (ties: the smallest owner id).
            let victim = active
                .iter()
                .filter(|(owner, _)| **owner != me)
                .max_by(|a, b| a.1.len().cmp(&b.1.len()).then(b.0.cmp(a.0)));
            if let Some((_, theirs)) = victim {
                let o = theirs[pick(theirs.len()) % theirs.len()];
                out.push(claim(Some(o), &o.partition));
            }
        }
    }
    out
}

/// One instance's view of its claims.
struct Claims {
    store: Arc<dyn OwnershipStore>,
    key: CheckpointKey,
    settings: BalanceSettings,
    partitions: Vec<String>,
    /// The claims this instance holds (as last written).
    mine: Vec<Ownership>,
}

impl Claims {
    /// Lists, plans and claims; on a storage error the current claims are kept (they expire
    /// if the store stays unreachable, and the other owners take them over).
    async fn round(&mut self) {
        let listed = match self.store.list_ownership(&self.key).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, store = %self.store.describe(), "load balancing: listing the ownership claims failed; keeping the current partitions");
                return;
            }
        };
        let now = azlog_mapper::deadletter::now_ns();
        let plan = plan_claims(
            &self.partitions,
            &listed,
            &self.settings.owner_id,
            now,
            self.settings.expiry,
            &mut |n| fastrand::usize(..n.max(1)),
        );
        if plan.is_empty() {
            self.mine.clear();
            return;
        }
        match self.store.claim_ownership(&self.key, plan).await {
            Ok(won) => self.mine = won,
            Err(e) => {
                tracing::warn!(error = %e, store = %self.store.describe(), "load balancing: claiming failed; keeping the current partitions");
            }
        }
    }

    fn owned(&self) -> BTreeSet<String> {
        self.mine.iter().map(|o| o.partition.clone()).collect()
    }

    /// Releases every claim (empty owner id), so others take the partitions at once.
    async fn release(&mut self) {
        if self.mine.is_empty() {
            return;
        }
        let releases: Vec<Ownership> = std::mem::take(&mut self.mine)
            .into_iter()
            .map(|o| Ownership {
                owner_id: String::new(),
                ..o
            })
            .collect();
        let n = releases.len();
        match self.store.claim_ownership(&self.key, releases).await {
            Ok(done) => {
                tracing::info!(
                    released = done.len(),
                    of = n,
                    "load balancing: ownership released"
                )
            }
            Err(e) => {
                tracing::warn!(error = %e, "load balancing: releasing the ownership failed; the claims expire instead")
            }
        }
    }
}

/// A live run that reads only the partitions this instance owns, rebalancing every
/// `settings.interval` (see the module docs). `opts` are the run's options for all partitions.
pub async fn run_balanced(
    config: &HubConfig,
    source: Arc<dyn Source>,
    opts: RunOptions,
    store: Arc<dyn OwnershipStore>,
    key: CheckpointKey,
    settings: BalanceSettings,
    mut stop: watch::Receiver<bool>,
) -> Result<RunSummary> {
    let Some(partitions) = list_partitions(source.as_ref(), settings.interval, &mut stop).await
    else {
        return Ok(RunSummary::stopped());
    };
    tracing::info!(owner_id = %settings.owner_id, partitions = partitions.len(), store = %store.describe(), interval_ms = settings.interval.as_millis() as u64, expiry_ms = settings.expiry.as_millis() as u64, "load balancing");
    let mut claims = Claims {
        store,
        key,
        settings,
        partitions,
        mine: Vec::new(),
    };
    let parts = super::LiveParts::load(config)?;
    let aux_tx = super::start_reporting(config, parts.metrics(), source.clone()).await?;
    let mut total = RunSummary::stopped();
    let mut epochs = 0u64;
    while !*stop.borrow() {
        claims.round().await;
        let owned = claims.owned();
        if owned.is_empty() {
            tracing::debug!("load balancing: no partition owned");
            if wait_or_stop(claims.settings.interval, &mut stop).await {
                break;
            }
            continue;
        }
        epochs += 1;
        tracing::info!(partitions = ?owned, epoch = epochs, "load balancing: reading the owned partitions");
        let (epoch_tx, epoch_rx) = watch::channel(false);
        let run_opts = RunOptions {
            partitions: Some(owned.iter().cloned().collect()),
            ..opts.clone()
        };
        let run = parts.run(config, source.clone(), run_opts, epoch_rx);
        tokio::pin!(run);
        // Rounds during the epoch: renew; a changed set (or stop) ends the epoch, and the
        // pipeline then drains and writes its final checkpoints.
        let summary = loop {
            tokio::select! {
                s = &mut run => break s,
                stopped = wait_or_stop(claims.settings.interval, &mut stop) => {
                    if !stopped {
                        claims.round().await;
                        let now = claims.owned();
                        if now == owned {
                            continue;
                        }
                        tracing::info!(from = ?owned, to = ?now, "load balancing: owned partitions changed; restarting the pipeline on the new set");
                    }
                    let _ = epoch_tx.send(true);
                    break run.await;
                }
            }
        };
        let summary = match summary {
            Ok(s) => s,
            Err(e) => {
                // The pipeline could not run (e.g. its sinks failed to open): the claims go
                // back to the group at once instead of expiring.
                claims.release().await;
                let _ = aux_tx.send(true);
                return Err(e);
            }
        };
        let failed = summary.error.is_some();
        merge(&mut total, summary);
        if failed {
            break;
        }
    }
    claims.release().await;
    let _ = aux_tx.send(true);
    Ok(total)
}

/// The source's partitions, retried every `every` until listed or stopped.
async fn list_partitions(
    source: &dyn Source,
    every: Duration,
    stop: &mut watch::Receiver<bool>,
) -> Option<Vec<String>> {
    loop {
        match source.partitions().await {
            Ok(p) => return Some(p),
            Err(e) if e.retryable => {
                tracing::warn!(error = %e.message, "listing the partitions failed; retrying")
            }
            Err(e) => {
                tracing::error!(error = %e.message, "listing the partitions failed");
                return None;
            }
        }
        if wait_or_stop(every, stop).await {
            return None;
        }
    }
}

/// Sleeps `d`; true if `stop` was signalled first (or already).
async fn wait_or_stop(d: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    if *stop.borrow() {
        return true;
    }
    let signalled = tokio::select! {
        _ = tokio::time::sleep(d) => false,
        _ = stop.wait_for(|s| *s) => true,
    };
    signalled || *stop.borrow()
}

/// Folds one pipeline's summary into the run's: totals are cumulative already (the pipelines
/// share their counters); each partition keeps the figures of the last pipeline that read it.
fn merge(total: &mut RunSummary, s: RunSummary) {
    let mut partitions = std::mem::take(&mut total.partitions);
    partitions.extend(s.partitions.clone());
    let mut stuck = std::mem::take(&mut total.stuck_sinks);
    stuck.extend(s.stuck_sinks.iter().cloned());
    *total = RunSummary {
        partitions,
        stuck_sinks: stuck,
        ..s
    };
}

#[cfg(test)]
#[path = "balance_tests.rs"]
mod tests;
