//! `azlog-hub replay --dead-letter FILE`: re-maps dead-lettered records (e.g. after a schema
//! fix) and re-sends them. A record a sink rejected goes back only to that sink; records that
//! failed to split or map go to every selected sink whose filter wants them. Entries that fail
//! again are written to a rejects file (never back into the file being read).
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use azlog_mapper::deadletter::{now_ns, read_dead_letters, DeadLetter, DeadLetterStore};
use azlog_mapper::envelope::{split_body, EnvelopeStats};
use azlog_mapper::{MapInput, Mapper};
use azlog_plugin_api::{Position, Record};

use crate::config::HubConfig;
use crate::sink_host::{BatchOutcome, Offered, SinkHost};

/// What a dead-letter replay did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DeadLetterReplaySummary {
    /// Entries read.
    pub entries: u64,
    /// Records mapped.
    pub mapped: u64,
    /// Deliveries accepted (a record sent to two sinks counts twice).
    pub delivered: u64,
    /// Records no selected sink wanted.
    pub filtered: u64,
    /// Entries/records that failed again (written to the rejects file).
    pub failed: u64,
    /// The rejects file (written only when something failed).
    pub rejects: PathBuf,
}

/// Default rejects file for `input`: `<input stem>.rejects.ndjson` next to it.
pub fn default_rejects_path(input: &Path) -> PathBuf {
    let stem = input
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "dead-letter".into());
    input.with_file_name(format!("{stem}.rejects.ndjson"))
}

struct Target {
    host: SinkHost,
}

/// Replays `input` into the selected sinks (blocking; run it off the async runtime).
pub fn replay_dead_letters(
    config: &HubConfig,
    input: &Path,
    sinks: Option<&[String]>,
    rejects: &Path,
) -> Result<DeadLetterReplaySummary> {
    anyhow::ensure!(
        std::fs::canonicalize(input).ok() != std::fs::canonicalize(rejects).ok()
            || !rejects.exists(),
        "the rejects file must differ from the dead-letter file being replayed"
    );
    let selected = super::select_sinks(config, sinks)?;
    let registry = super::assemble::plugins(&config.plugin_dir)?;
    let mapper = Mapper::load(config.schemas.as_deref()).context("loading the schema tables")?;
    let mut targets = Vec::new();
    for cfg in &selected {
        targets.push(Target {
            host: SinkHost::new(cfg, &registry)?,
        });
    }
    let mut out = DeadLetterStore::new(rejects);
    let mut summary = DeadLetterReplaySummary {
        rejects: rejects.to_path_buf(),
        ..Default::default()
    };
    let stats = Arc::new(EnvelopeStats::default());
    let entries = read_dead_letters(input)?;
    for entry in entries {
        let entry = entry?;
        summary.entries += 1;
        let raw = match entry.raw_bytes() {
            Ok(r) => r,
            Err(e) => {
                reject(
                    &mut out,
                    &mut summary,
                    &entry,
                    "replay",
                    &e.to_string(),
                    &[],
                )?;
                continue;
            }
        };
        // A sink rejection goes back to that sink only.
        let only = entry.stage.strip_prefix("sink:").map(str::to_owned);
        if let Some(name) = &only {
            if !targets.iter().any(|t| t.host.name() == name) {
                reject(
                    &mut out,
                    &mut summary,
                    &entry,
                    &entry.stage,
                    &format!("sink `{name}` is not selected or not configured"),
                    &raw,
                )?;
                continue;
            }
        }
        let base = entry.position();
        for piece in split_body(&raw, &config.envelope, stats.clone()) {
            let position = Position {
                index: if piece.index == 0 {
                    base.index
                } else {
                    piece.index
                },
                ..base.clone()
            };
            let mapped = match (&piece.error, std::str::from_utf8(&piece.json)) {
                (Some(reason), _) => Err(("envelope", reason.clone())),
                (None, Err(e)) => Err(("envelope", format!("record is not valid UTF-8: {e}"))),
                (None, Ok(json)) => mapper
                    .map(
                        MapInput {
                            json,
                            position: position.clone(),
                            enqueued_ns: None,
                        },
                        now_ns(),
                    )
                    .map_err(|e| ("map", e.to_string())),
            };
            let record = match mapped {
                Ok(r) => r,
                Err((stage, reason)) => {
                    let e = DeadLetter::new(stage, &reason, &position, &piece.json);
                    write(&mut out, &e)?;
                    summary.failed += 1;
                    continue;
                }
            };
            summary.mapped += 1;
            let wanted: Vec<usize> = targets
                .iter()
                .enumerate()
                .filter(|(_, t)| only.as_deref().is_none_or(|n| t.host.name() == n))
                .filter(|(_, t)| t.host.wants(&record))
                .map(|(i, _)| i)
                .collect();
            if wanted.is_empty() {
                summary.filtered += 1;
                continue;
            }
            for i in wanted {
                offer(&mut targets[i], record.clone(), &mut out, &mut summary)?;
            }
        }
    }
    for t in targets {
        let (outcome, closed) = t.host.close();
        if let Some(o) = outcome {
            settle(o, &mut out, &mut summary)?;
        }
        if let Err(e) = closed {
            tracing::warn!(error = %e, "closing a sink reported an error");
        }
    }
    out.sync()
        .with_context(|| format!("writing {}", rejects.display()))?;
    Ok(summary)
}

fn offer(
    t: &mut Target,
    record: Record,
    out: &mut DeadLetterStore,
    summary: &mut DeadLetterReplaySummary,
) -> Result<()> {
    match t.host.offer(record) {
        Offered::Filtered(_) => summary.filtered += 1,
        Offered::Queued => {}
        Offered::Delivered(o) => settle(o, out, summary)?,
    }
    Ok(())
}

/// Counts a delivered batch; rejected and undelivered records go to the rejects file.
fn settle(
    o: BatchOutcome,
    out: &mut DeadLetterStore,
    summary: &mut DeadLetterReplaySummary,
) -> Result<()> {
    let n = o.records.len();
    let stage = format!("sink:{}", o.sink);
    summary.delivered += o.accepted_indices().len() as u64;
    for r in &o.rejected {
        let rec = &o.records[r.index];
        write(
            out,
            &DeadLetter::new(&stage, &r.reason, &rec.position, rec.original.as_bytes()),
        )?;
        summary.failed += 1;
    }
    if let Some(u) = &o.undelivered {
        for rec in &o.records[u.from.min(n)..] {
            write(
                out,
                &DeadLetter::new(
                    &stage,
                    &format!("undelivered: {}", u.reason),
                    &rec.position,
                    rec.original.as_bytes(),
                ),
            )?;
            summary.failed += 1;
        }
    }
    Ok(())
}

fn reject(
    out: &mut DeadLetterStore,
    summary: &mut DeadLetterReplaySummary,
    entry: &DeadLetter,
    stage: &str,
    reason: &str,
    raw: &[u8],
) -> Result<()> {
    let mut e = DeadLetter::new(stage, reason, &entry.position(), raw);
    if raw.is_empty() {
        e.raw = entry.raw.clone();
        e.raw_base64 = entry.raw_base64.clone();
    }
    write(out, &e)?;
    summary.failed += 1;
    Ok(())
}

fn write(out: &mut DeadLetterStore, e: &DeadLetter) -> Result<()> {
    out.write(e)
        .with_context(|| format!("writing {}", out.path().display()))
}
