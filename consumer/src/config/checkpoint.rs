//! `[checkpoint]`: which store, where, and how often.
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::azure_storage::StorageConnection;
use crate::checkpoint::CheckpointCadence;

use super::raw::RawCheckpoint;
use super::secret::Secret;

/// Where checkpoints are kept.
#[derive(Debug, Clone)]
pub enum CheckpointStoreConfig {
    /// JSON files under `dir/checkpoints/...` (the embedded default).
    File {
        /// Root directory (the state dir unless `[checkpoint] dir` is set).
        dir: PathBuf,
    },
    /// Azure Blob Storage in the official SDK layout.
    Blob {
        /// Storage connection string (redacted in `Debug`).
        connection_string: Secret,
        /// Container name.
        container: String,
        /// Create the container when it is missing.
        create_container: bool,
    },
}

/// The resolved `[checkpoint]` section.
#[derive(Debug, Clone)]
pub struct CheckpointConfig {
    /// The store.
    pub store: CheckpointStoreConfig,
    /// When to write.
    pub cadence: CheckpointCadence,
    /// Flush every sink (make accepted records durable) before writing a checkpoint.
    pub flush_sinks: bool,
}

const SECTION: &str = "[checkpoint]";

/// Checks an Azure container name (3–63 chars, lowercase letters, digits, single hyphens).
pub fn container_name_problem(name: &str) -> Option<String> {
    let ok_chars = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !(3..=63).contains(&name.len())
        || !ok_chars
        || name.starts_with('-')
        || name.ends_with('-')
        || name.contains("--")
    {
        Some(format!(
            "{SECTION} container: `{name}` is not a valid container name (3-63 lowercase letters, digits and single hyphens, starting and ending with a letter or digit)"
        ))
    } else {
        None
    }
}

/// Resolves the section. `state_dir` is the default file store root.
pub fn resolve(
    raw: &RawCheckpoint,
    state_dir: &Path,
    base: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<String>,
) -> Option<CheckpointConfig> {
    let start_len = problems.len();
    let cadence = CheckpointCadence {
        every_events: raw.every_events.unwrap_or(1000),
        every: Duration::from_millis(raw.every_ms.unwrap_or(5000)),
    };
    let kind = raw
        .store
        .as_deref()
        .unwrap_or("file")
        .trim()
        .to_ascii_lowercase();
    let store = match kind.as_str() {
        "file" => {
            if !raw.connection_string_spec().is_empty() || raw.container.is_some() {
                problems.push(format!(
                    "{SECTION}: connection_string/container only apply to store = \"blob\"; set store = \"blob\" or remove them"
                ));
            }
            let dir = match &raw.dir {
                Some(d) if d.is_absolute() => d.clone(),
                Some(d) => base.join(d),
                None => state_dir.to_path_buf(),
            };
            Some(CheckpointStoreConfig::File { dir })
        }
        "blob" => {
            if raw.dir.is_some() {
                problems.push(format!(
                    "{SECTION} dir: only applies to store = \"file\"; remove it"
                ));
            }
            let cs = match raw.connection_string_spec().resolve(
                &format!("{SECTION} connection_string"),
                base,
                env,
            ) {
                Ok(Some(cs)) => Some(cs),
                Ok(None) => {
                    problems.push(format!(
                        "{SECTION} connection_string: store = \"blob\" needs a storage connection string; set connection_string_env = \"VAR\" (or _file, or AZLOG_CHECKPOINT_CONNECTION_STRING); for Azurite use UseDevelopmentStorage=true"
                    ));
                    None
                }
                Err(e) => {
                    problems.push(e);
                    None
                }
            };
            if let Some(cs) = &cs {
                match StorageConnection::parse(cs.expose()) {
                    Ok(conn) if conn.blob_endpoint.is_none() => problems.push(format!(
                        "{SECTION} connection_string: it names no blob endpoint; add AccountName/AccountKey or BlobEndpoint"
                    )),
                    Ok(_) => {}
                    Err(e) => problems.push(format!(
                        "{SECTION} connection_string: {e}; copy it from the portal (Storage account → Access keys)"
                    )),
                }
            }
            let container = raw.container.clone().unwrap_or_default();
            if container.is_empty() {
                problems.push(format!(
                    "{SECTION} container: missing; name the blob container that holds the checkpoints"
                ));
            } else if let Some(p) = container_name_problem(&container) {
                problems.push(p);
            }
            cs.map(|connection_string| CheckpointStoreConfig::Blob {
                connection_string,
                container,
                create_container: raw.create_container.unwrap_or(true),
            })
        }
        other => {
            problems.push(format!(
                "{SECTION} store: `{other}` is unknown; use \"file\" (default) or \"blob\""
            ));
            None
        }
    };
    if problems.len() > start_len {
        return None;
    }
    Some(CheckpointConfig {
        store: store?,
        cadence,
        flush_sinks: raw.flush_sinks.unwrap_or(true),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn defaults_to_the_file_store_under_the_state_dir() {
        let mut p = Vec::new();
        let c = resolve(
            &RawCheckpoint::default(),
            Path::new("/var/lib/azlog"),
            Path::new("/etc"),
            &no_env,
            &mut p,
        )
        .unwrap();
        assert!(
            matches!(c.store, CheckpointStoreConfig::File { ref dir } if dir == Path::new("/var/lib/azlog"))
        );
        assert_eq!(c.cadence, CheckpointCadence::default());
        assert!(c.flush_sinks);
    }

    #[test]
    fn blob_store_needs_a_connection_string_and_a_valid_container() {
        let mut p = Vec::new();
        let raw = RawCheckpoint {
            store: Some("blob".into()),
            container: Some("Bad_Name".into()),
            ..Default::default()
        };
        assert!(resolve(&raw, Path::new("/s"), Path::new("/"), &no_env, &mut p).is_none());
        let all = p.join("\n");
        assert!(all.contains("needs a storage connection string"), "{all}");
        assert!(all.contains("not a valid container name"), "{all}");
        let mut p = Vec::new();
        let raw = RawCheckpoint {
            store: Some("blob".into()),
            connection_string: Some(Secret::new("UseDevelopmentStorage=true")),
            container: Some("checkpoints".into()),
            every_events: Some(10),
            every_ms: Some(0),
            ..Default::default()
        };
        let c = resolve(&raw, Path::new("/s"), Path::new("/"), &no_env, &mut p).unwrap();
        assert!(matches!(c.store, CheckpointStoreConfig::Blob { .. }));
        assert_eq!(c.cadence.every_events, 10);
        assert!(c.cadence.every.is_zero());
        let mut p = Vec::new();
        let raw = RawCheckpoint {
            store: Some("redis".into()),
            ..Default::default()
        };
        assert!(resolve(&raw, Path::new("/s"), Path::new("/"), &no_env, &mut p).is_none());
        assert!(p[0].contains("use \"file\""), "{p:?}");
    }
}
