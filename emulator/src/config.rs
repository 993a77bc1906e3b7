//! Emulator configuration: the library-level [`EmulatorConfig`] and the clap [`EmulatorArgs`]
//! that `azlog-hub emulator` and the `azlog-emulator` binary flatten into their command lines.

use std::{net::SocketAddr, path::PathBuf, str::FromStr};

use anyhow::{bail, Context};

/// Default AMQP listen address (the port Microsoft's emulator uses).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:5672";
/// Default hub created when none is configured (same as Microsoft's emulator default config).
pub const DEFAULT_HUB: &str = "eh1";
/// Default partition count of a hub given without `:PARTITIONS`.
pub const DEFAULT_PARTITIONS: u32 = 2;
/// The consumer group every hub has.
pub const DEFAULT_CONSUMER_GROUP: &str = "$Default";
/// Largest message (event or batch) accepted, as Event Hubs Standard: 1 MiB.
pub const MAX_MESSAGE_SIZE: u64 = 1024 * 1024;
/// Maximum number of partitions a hub may have (Event Hubs Dedicated allows 1024).
pub const MAX_PARTITIONS: u32 = 1024;

/// One event hub and its partition count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubSpec {
    /// Hub (entity) name, e.g. `insights-logs-signinlogs`.
    pub name: String,
    /// Number of partitions, ids `"0"..partitions-1`.
    pub partitions: u32,
}

impl HubSpec {
    /// Creates a hub spec.
    pub fn new(name: impl Into<String>, partitions: u32) -> Self {
        Self {
            name: name.into(),
            partitions,
        }
    }
}

impl FromStr for HubSpec {
    type Err = anyhow::Error;

    /// Parses `NAME` or `NAME:PARTITIONS`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, partitions) = match s.rsplit_once(':') {
            Some((name, count)) => {
                let count: u32 = count
                    .parse()
                    .with_context(|| format!("bad partition count in hub spec {s:?}"))?;
                (name, count)
            }
            None => (s, DEFAULT_PARTITIONS),
        };
        validate_entity_name(name)?;
        if partitions == 0 || partitions > MAX_PARTITIONS {
            bail!("hub {name:?}: partition count must be 1..={MAX_PARTITIONS}, got {partitions}");
        }
        Ok(Self::new(name, partitions))
    }
}

fn validate_entity_name(name: &str) -> anyhow::Result<()> {
    if name.is_empty() || name.len() > 256 {
        bail!("entity name must be 1..=256 characters, got {name:?}");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '$'))
    {
        bail!("entity name {name:?} may only contain letters, digits, '-', '_', '.', '$'");
    }
    Ok(())
}

/// Retention limits applied per partition; the oldest events are evicted first and the partition's
/// begin sequence number moves forward. The newest event of a partition is never evicted, so
/// sequence numbers and offsets continue across restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Keep at most this many events per partition.
    pub max_events: u64,
    /// Keep at most this many bytes (encoded event size) per partition.
    pub max_bytes: u64,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            max_events: 1_000_000,
            max_bytes: 256 * 1024 * 1024,
        }
    }
}

/// Everything [`crate::start`] needs.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// TCP address to listen on (port 0 picks an ephemeral port; see
    /// [`crate::EmulatorHandle::local_addr`]).
    pub listen: SocketAddr,
    /// Hubs served. Empty means one hub [`DEFAULT_HUB`] with [`DEFAULT_PARTITIONS`] partitions.
    pub hubs: Vec<HubSpec>,
    /// Consumer groups besides `$Default` (which always exists), valid on every hub. Matched
    /// case-insensitively.
    pub consumer_groups: Vec<String>,
    /// Directory for the event log; `None` keeps everything in memory.
    pub data_dir: Option<PathBuf>,
    /// Per-partition retention.
    pub retention: Retention,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 5672)),
            hubs: Vec::new(),
            consumer_groups: Vec::new(),
            data_dir: None,
            retention: Retention::default(),
        }
    }
}

impl EmulatorConfig {
    /// A config listening on `127.0.0.1:0` (ephemeral port) with the given hubs; handy in tests.
    pub fn ephemeral(hubs: Vec<HubSpec>) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            hubs,
            ..Self::default()
        }
    }

    /// The hubs actually served (applies the default hub when none is configured).
    pub fn effective_hubs(&self) -> Vec<HubSpec> {
        if self.hubs.is_empty() {
            vec![HubSpec::new(DEFAULT_HUB, DEFAULT_PARTITIONS)]
        } else {
            self.hubs.clone()
        }
    }

    /// Checks names and limits; [`crate::start`] calls it.
    pub fn validate(&self) -> anyhow::Result<()> {
        let hubs = self.effective_hubs();
        for (i, hub) in hubs.iter().enumerate() {
            validate_entity_name(&hub.name)?;
            if hub.partitions == 0 || hub.partitions > MAX_PARTITIONS {
                bail!(
                    "hub {:?}: partition count must be 1..={MAX_PARTITIONS}",
                    hub.name
                );
            }
            if hubs[..i]
                .iter()
                .any(|h| h.name.eq_ignore_ascii_case(&hub.name))
            {
                bail!("hub {:?} configured twice", hub.name);
            }
        }
        for cg in &self.consumer_groups {
            validate_entity_name(cg)?;
        }
        if self.retention.max_events == 0 || self.retention.max_bytes == 0 {
            bail!("retention limits must be at least 1");
        }
        Ok(())
    }
}

/// Command-line flags of the emulator (`azlog-hub emulator` flattens this struct).
#[derive(Debug, Clone, clap::Args)]
pub struct EmulatorArgs {
    /// Address to listen on for AMQP (plain, no TLS).
    #[arg(long, default_value = DEFAULT_LISTEN, env = "AZLOG_EMULATOR_LISTEN")]
    pub listen: SocketAddr,

    /// Event hub to serve, `NAME[:PARTITIONS]` (default partitions: 2). Repeatable.
    /// Without any, one hub `eh1:2` is served.
    #[arg(long = "hub", value_name = "NAME[:PARTITIONS]")]
    pub hubs: Vec<HubSpec>,

    /// Extra consumer group available on every hub (`$Default` always exists). Repeatable.
    #[arg(long = "consumer-group", value_name = "NAME")]
    pub consumer_groups: Vec<String>,

    /// Persist events under this directory (survives restarts); in memory when absent.
    #[arg(long, value_name = "DIR", env = "AZLOG_EMULATOR_DATA_DIR")]
    pub data_dir: Option<PathBuf>,

    /// Keep at most this many events per partition (oldest evicted first).
    #[arg(long, default_value_t = Retention::default().max_events)]
    pub retention_max_events: u64,

    /// Keep at most this many bytes of events per partition (oldest evicted first).
    #[arg(long, default_value_t = Retention::default().max_bytes)]
    pub retention_max_bytes: u64,
}

impl From<EmulatorArgs> for EmulatorConfig {
    fn from(args: EmulatorArgs) -> Self {
        Self {
            listen: args.listen,
            hubs: args.hubs,
            consumer_groups: args.consumer_groups,
            data_dir: args.data_dir,
            retention: Retention {
                max_events: args.retention_max_events,
                max_bytes: args.retention_max_bytes,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_spec_parses_name_and_partitions() {
        assert_eq!("eh1:4".parse::<HubSpec>().unwrap(), HubSpec::new("eh1", 4));
        assert_eq!("logs".parse::<HubSpec>().unwrap(), HubSpec::new("logs", 2));
        assert!("bad:0".parse::<HubSpec>().is_err());
        assert!("bad:x".parse::<HubSpec>().is_err());
        assert!("sp ace".parse::<HubSpec>().is_err());
    }

    #[test]
    fn duplicate_hubs_are_rejected() {
        let cfg = EmulatorConfig::ephemeral(vec![HubSpec::new("a", 1), HubSpec::new("A", 2)]);
        assert!(cfg.validate().is_err());
    }
}
