//! The dead-letter store: a record that cannot be split, parsed, mapped or delivered goes here
//! as one NDJSON line with its reason, where it came from and its raw bytes (as text when they
//! are UTF-8, base64 otherwise). Nothing is silently lost: every entry is counted, and
//! `azlog-hub replay --dead-letter FILE` can send the entries again after a fix.
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use azlog_plugin_api::Position;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// One dead-letter line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// When it was dead-lettered (RFC 3339 UTC).
    pub time: String,
    /// Why.
    pub reason: String,
    /// Which stage gave up: `envelope`, `map`, or `sink:<name>`.
    pub stage: String,
    /// Source position (see [`Position`]).
    pub source: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub partition: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub offset: String,
    pub sequence: i64,
    pub index: u32,
    /// The raw record, when it is valid UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<String>,
    /// The raw record, base64, when it is not UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_base64: Option<String>,
}

impl DeadLetter {
    /// Builds an entry stamped with the current time.
    pub fn new(stage: &str, reason: &str, position: &Position, raw: &[u8]) -> Self {
        let (raw, raw_base64) = match std::str::from_utf8(raw) {
            Ok(s) => (Some(s.to_owned()), None),
            Err(_) => (
                None,
                Some(base64::engine::general_purpose::STANDARD.encode(raw)),
            ),
        };
        DeadLetter {
            time: now_rfc3339(),
            reason: reason.to_owned(),
            stage: stage.to_owned(),
            source: position.source.to_string(),
            partition: position.partition.to_string(),
            offset: position.offset.to_string(),
            sequence: position.sequence,
            index: position.index,
            raw,
            raw_base64,
        }
    }

    /// The raw bytes back.
    pub fn raw_bytes(&self) -> io::Result<Vec<u8>> {
        match (&self.raw, &self.raw_base64) {
            (Some(s), _) => Ok(s.as_bytes().to_vec()),
            (None, Some(b)) => base64::engine::general_purpose::STANDARD
                .decode(b)
                .map_err(|e| {
                    io::Error::new(io::ErrorKind::InvalidData, format!("raw_base64: {e}"))
                }),
            (None, None) => Ok(Vec::new()),
        }
    }

    /// The position back.
    pub fn position(&self) -> Position {
        Position {
            source: self.source.as_str().into(),
            partition: self.partition.as_str().into(),
            offset: self.offset.as_str().into(),
            sequence: self.sequence,
            index: self.index,
        }
    }
}

/// Appends dead letters to an NDJSON file, created (with its folder) on the first entry.
pub struct DeadLetterStore {
    path: PathBuf,
    out: Option<BufWriter<File>>,
    count: u64,
}

impl DeadLetterStore {
    /// A store writing to `path`; nothing is created until the first entry.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        DeadLetterStore {
            path: path.into(),
            out: None,
            count: 0,
        }
    }

    /// The file this store writes.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Entries written by this store.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Appends one entry.
    pub fn write(&mut self, entry: &DeadLetter) -> io::Result<()> {
        if self.out.is_none() {
            if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| {
                    io::Error::new(e.kind(), format!("creating {}: {e}", dir.display()))
                })?;
            }
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .map_err(|e| {
                    io::Error::new(
                        e.kind(),
                        format!("opening dead-letter file {}: {e}", self.path.display()),
                    )
                })?;
            self.out = Some(BufWriter::new(f));
        }
        if let Some(out) = self.out.as_mut() {
            serde_json::to_writer(&mut *out, entry)?;
            out.write_all(b"\n")?;
        }
        self.count += 1;
        Ok(())
    }

    /// Flushes and fsyncs what was written.
    pub fn sync(&mut self) -> io::Result<()> {
        if let Some(out) = self.out.as_mut() {
            out.flush()?;
            out.get_ref().sync_data()?;
        }
        Ok(())
    }
}

impl Drop for DeadLetterStore {
    fn drop(&mut self) {
        if let Some(out) = self.out.as_mut() {
            if let Err(e) = out.flush() {
                tracing::error!(path = %self.path.display(), error = %e, "flushing the dead-letter file failed");
            }
        }
    }
}

/// Reads a dead-letter file back, one entry per line (for replay).
pub fn read_dead_letters(path: &Path) -> io::Result<impl Iterator<Item = io::Result<DeadLetter>>> {
    let f = File::open(path)
        .map_err(|e| io::Error::new(e.kind(), format!("opening {}: {e}", path.display())))?;
    let shown = path.display().to_string();
    Ok(BufReader::new(f)
        .lines()
        .enumerate()
        .filter(|(_, l)| l.as_ref().map_or(true, |l| !l.trim().is_empty()))
        .map(move |(i, line)| {
            let line = line?;
            serde_json::from_str(&line).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{shown}:{}: not a dead-letter entry: {e}", i + 1),
                )
            })
        }))
}

/// Now as RFC 3339 UTC with milliseconds.
pub fn now_rfc3339() -> String {
    let ns = now_ns();
    crate::convert::rfc3339(ns - ns.rem_euclid(1_000_000))
}

/// Now in nanoseconds since the Unix epoch.
pub fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_with_text_and_binary_raw() {
        let dir = std::env::temp_dir().join(format!("azlog-dl-{}", std::process::id()));
        let path = dir.join("sub/dead.ndjson");
        let _ = std::fs::remove_dir_all(&dir);
        let pos = Position {
            source: "file:in.json".into(),
            partition: "".into(),
            offset: "7".into(),
            sequence: 7,
            index: 2,
        };
        {
            let mut store = DeadLetterStore::new(&path);
            assert!(!path.exists(), "created lazily");
            store
                .write(&DeadLetter::new("map", "invalid JSON: x", &pos, b"{bad"))
                .unwrap();
            store
                .write(&DeadLetter::new(
                    "envelope",
                    "not UTF-8",
                    &pos,
                    &[0xff, 0x00, 0x41],
                ))
                .unwrap();
            store.sync().unwrap();
            assert_eq!(store.count(), 2);
        }
        let back: Vec<DeadLetter> = read_dead_letters(&path)
            .unwrap()
            .map(|e| e.unwrap())
            .collect();
        assert_eq!(back.len(), 2);
        assert_eq!(back[0].reason, "invalid JSON: x");
        assert_eq!(back[0].raw.as_deref(), Some("{bad"));
        assert_eq!(back[0].position(), pos);
        assert_eq!(back[1].raw, None);
        assert_eq!(back[1].raw_bytes().unwrap(), vec![0xff, 0x00, 0x41]);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 2);
        assert!(text.contains("\"offset\":\"7\""));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
