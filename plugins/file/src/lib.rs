//! azlog-sink-file: writes records as NDJSON files for SIEM file forwarders (one JSON object
//! per line), rotating by size and time.
//!
//! Settings (the `[[sink]]` table's own keys):
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `path` | required | the file written to; rotated files sit next to it |
//! | `format` | `"ecs"` | `"ecs"`: ECS JSON; `"raw"`: the original Azure record JSON |
//! | `include_original` | `true` | ECS only: include `event.original` |
//! | `rotate_bytes` | `104857600` | rotate before a line would take the file past this size (0 = never) |
//! | `rotate_interval_secs` | `0` | rotate a file once it is this old (0 = never) |
//! | `fsync` | `"flush"` | `"flush"`: fsync on flush/close/rotation; `"batch"`: also after every batch |
//!
//! A rotated file is renamed to `<stem>.<UTC yyyymmddThhmmssZ>[-n].<ext>` (e.g.
//! `azure.20240501T120000Z.ndjson`). A batch is written with one `write_all`; if that
//! fails, the file is cut back to its previous length (no half line) and the batch is
//! reported retryable.
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use azlog_plugin_api::ecs::{civil_from_days, write_ecs_json, EcsOptions};
use azlog_plugin_api::{export_sink_plugin, BatchReport, Health, Record, Sink, SinkError};
use serde::Deserialize;

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Format {
    Ecs,
    Raw,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Fsync {
    Flush,
    Batch,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    path: PathBuf,
    #[serde(default = "default_format")]
    format: Format,
    #[serde(default = "default_true")]
    include_original: bool,
    #[serde(default = "default_rotate_bytes")]
    rotate_bytes: u64,
    #[serde(default)]
    rotate_interval_secs: u64,
    #[serde(default = "default_fsync")]
    fsync: Fsync,
}

fn default_format() -> Format {
    Format::Ecs
}
fn default_true() -> bool {
    true
}
fn default_rotate_bytes() -> u64 {
    100 * 1024 * 1024
}
fn default_fsync() -> Fsync {
    Fsync::Flush
}

struct FileSink {
    settings: Settings,
    file: File,
    size: u64,
    opened_at: SystemTime,
    last_error: Option<String>,
    line: Vec<u8>,
    buf: Vec<u8>,
}

fn open_append(path: &Path) -> Result<(File, u64), SinkError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| {
            SinkError::permanent(format!("file sink: cannot create {}: {e}", dir.display()))
        })?;
    }
    repair_torn_tail(path)?;
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| {
            SinkError::permanent(format!("file sink: cannot open {}: {e}", path.display()))
        })?;
    let size = file
        .metadata()
        .map_err(|e| SinkError::retryable(format!("file sink: stat {}: {e}", path.display())))?
        .len();
    Ok((file, size))
}

/// Cuts a partial last line off an existing file. A line without its `\n` can only come from a
/// process killed in the middle of a write, and the records in it were never acknowledged, so
/// the host sends them again after restart; keeping the fragment would glue it to the next line
/// and leave one line that is not JSON.
fn repair_torn_tail(path: &Path) -> Result<(), SinkError> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = match OpenOptions::new().read(true).write(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(SinkError::permanent(format!(
                "file sink: cannot open {}: {e}",
                path.display()
            )))
        }
    };
    let io = |what: &str, e: std::io::Error| {
        SinkError::retryable(format!("file sink: {what} {}: {e}", path.display()))
    };
    let len = file.metadata().map_err(|e| io("stat", e))?.len();
    let mut end = len;
    let mut chunk = vec![0u8; 64 * 1024];
    while end > 0 {
        let start = end.saturating_sub(chunk.len() as u64);
        let n = (end - start) as usize;
        file.seek(SeekFrom::Start(start))
            .map_err(|e| io("seek", e))?;
        file.read_exact(&mut chunk[..n])
            .map_err(|e| io("read", e))?;
        if let Some(i) = memrchr_newline(&chunk[..n]) {
            let keep = start + i as u64 + 1;
            if keep < len {
                truncate(&file, path, keep, len)?;
            }
            return Ok(());
        }
        end = start;
    }
    // Not a single complete line: the whole file is a fragment.
    if len > 0 {
        truncate(&file, path, 0, len)?;
    }
    Ok(())
}

fn memrchr_newline(bytes: &[u8]) -> Option<usize> {
    bytes.iter().rposition(|&b| b == b'\n')
}

fn truncate(file: &File, path: &Path, keep: u64, len: u64) -> Result<(), SinkError> {
    file.set_len(keep).map_err(|e| {
        SinkError::retryable(format!("file sink: truncate {}: {e}", path.display()))
    })?;
    file.sync_all()
        .map_err(|e| SinkError::retryable(format!("file sink: fsync {}: {e}", path.display())))?;
    tracing::warn!(
        path = %path.display(),
        dropped_bytes = len - keep,
        "file sink: cut a partial last line left by an interrupted write (its records are re-sent)"
    );
    Ok(())
}

impl FileSink {
    fn open(settings: Settings) -> Result<FileSink, SinkError> {
        let (file, size) = open_append(&settings.path)?;
        Ok(FileSink {
            settings,
            file,
            size,
            opened_at: SystemTime::now(),
            last_error: None,
            line: Vec::with_capacity(4096),
            buf: Vec::with_capacity(1 << 16),
        })
    }

    /// Renders one record as a line (with `\n`) into `self.line`.
    fn render(&mut self, r: &Record) {
        self.line.clear();
        let raw = r.original.trim();
        if self.settings.format == Format::Raw && !raw.is_empty() {
            // Raw CR/LF can only be whitespace between JSON tokens (inside strings they are
            // escaped), so turning them into spaces keeps the JSON and the one-line framing.
            self.line.extend(raw.bytes().map(|b| match b {
                b'\n' | b'\r' => b' ',
                other => other,
            }));
        } else {
            let opts = EcsOptions {
                include_original: self.settings.include_original,
            };
            write_ecs_json(r, opts, &mut self.line);
        }
        self.line.push(b'\n');
    }

    fn rotation_due_by_time(&self) -> bool {
        let secs = self.settings.rotate_interval_secs;
        secs > 0
            && self
                .opened_at
                .elapsed()
                .is_ok_and(|age| age >= Duration::from_secs(secs))
    }

    /// Writes `self.buf` to the file; on failure cuts the file back.
    fn write_buf(&mut self) -> Result<(), SinkError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        if let Err(e) = self.file.write_all(&self.buf) {
            let _ = self.file.set_len(self.size);
            self.buf.clear();
            return Err(SinkError::retryable(format!(
                "file sink: write to {}: {e}",
                self.settings.path.display()
            )));
        }
        self.size += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }

    /// Closes the current file under a timestamped name and starts a new one.
    fn rotate(&mut self) -> Result<(), SinkError> {
        self.write_buf()?;
        self.file.sync_all().map_err(|e| {
            SinkError::retryable(format!(
                "file sink: fsync {}: {e}",
                self.settings.path.display()
            ))
        })?;
        let target = rotated_name(&self.settings.path, SystemTime::now());
        std::fs::rename(&self.settings.path, &target).map_err(|e| {
            SinkError::retryable(format!(
                "file sink: rotate {} -> {}: {e}",
                self.settings.path.display(),
                target.display()
            ))
        })?;
        let (file, size) = open_append(&self.settings.path)?;
        self.file = file;
        self.size = size;
        self.opened_at = SystemTime::now();
        tracing::info!(file = %target.display(), "file sink rotated");
        Ok(())
    }

    fn write_records(&mut self, records: &[Record]) -> Result<(), SinkError> {
        if self.size > 0 && self.rotation_due_by_time() {
            self.rotate()?;
        }
        let limit = self.settings.rotate_bytes;
        for r in records {
            self.render(r);
            let projected = self.size + (self.buf.len() + self.line.len()) as u64;
            if limit > 0 && projected > limit && self.size + self.buf.len() as u64 > 0 {
                self.rotate()?;
            }
            self.buf.extend_from_slice(&self.line);
        }
        self.write_buf()?;
        if self.settings.fsync == Fsync::Batch {
            self.sync()?;
        }
        Ok(())
    }

    fn sync(&mut self) -> Result<(), SinkError> {
        self.file.sync_data().map_err(|e| {
            SinkError::retryable(format!(
                "file sink: fsync {}: {e}",
                self.settings.path.display()
            ))
        })
    }
}

/// `dir/azure.ndjson` → `dir/azure.<ts>.ndjson` (or `-n` suffixed when taken).
fn rotated_name(path: &Path, now: SystemTime) -> PathBuf {
    let secs = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    let ts = format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    );
    let stem = path
        .file_stem()
        .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
    let ext = path.extension().map(|e| e.to_string_lossy().into_owned());
    let name = |n: u32| {
        let suffix = if n == 0 {
            String::new()
        } else {
            format!("-{n}")
        };
        match &ext {
            Some(ext) => format!("{stem}.{ts}{suffix}.{ext}"),
            None => format!("{stem}.{ts}{suffix}"),
        }
    };
    let mut n = 0;
    loop {
        let candidate = path.with_file_name(name(n));
        if !candidate.exists() {
            return candidate;
        }
        n += 1;
    }
}

impl Sink for FileSink {
    fn write_batch(&mut self, records: &[Record]) -> Result<BatchReport, SinkError> {
        match self.write_records(records) {
            Ok(()) => {
                self.last_error = None;
                Ok(BatchReport::all_accepted(records.len()))
            }
            Err(e) => {
                // Lines written before a failed mid-batch rotation are on disk; resending
                // them duplicates (at-least-once), which is allowed.
                self.last_error = Some(e.message.to_string());
                Err(e)
            }
        }
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.write_buf()?;
        self.sync()
    }

    fn health(&self) -> Health {
        match &self.last_error {
            None => Health::healthy(),
            Some(e) => Health::degraded(e.clone()),
        }
    }
}

/// Parses and checks the settings (as `check` and `open` both see them), without creating or
/// opening anything: `path` must not be a directory, and its folder must exist or be
/// creatable (its nearest existing ancestor is a directory).
fn settings(config: serde_json::Value) -> Result<Settings, SinkError> {
    let settings: Settings = azlog_plugin_api::settings::parse(config)
        .map_err(|e| SinkError::permanent(format!("file sink settings: {e}")))?;
    let path = &settings.path;
    if path.as_os_str().is_empty() {
        return Err(SinkError::permanent("file sink settings: `path` is empty"));
    }
    if path.is_dir() {
        return Err(SinkError::permanent(format!(
            "file sink settings: `path` {} is a directory; name a file",
            path.display()
        )));
    }
    let mut ancestor = path.parent().filter(|d| !d.as_os_str().is_empty());
    while let Some(a) = ancestor {
        if a.exists() {
            if !a.is_dir() {
                return Err(SinkError::permanent(format!(
                    "file sink settings: `path` {}: {} is not a directory",
                    path.display(),
                    a.display()
                )));
            }
            break;
        }
        ancestor = a.parent().filter(|d| !d.as_os_str().is_empty());
    }
    Ok(settings)
}

fn open(settings: Settings) -> Result<FileSink, SinkError> {
    FileSink::open(settings)
}

export_sink_plugin!(
    name: "file",
    version: env!("CARGO_PKG_VERSION"),
    settings: settings,
    open: open,
    paths: ["path"],
);

#[cfg(test)]
mod tests {
    use super::*;
    use abi_stable::std_types::RString;
    use azlog_plugin_api::{Field, Position, Text, Value};

    fn rec(i: usize, original: &str) -> Record {
        Record::from_fields(
            1_700_000_000_000_000_000 + i as i64,
            vec![
                Field {
                    key: Text::from("event.id"),
                    value: Value::from(format!("id-{i}")),
                },
                Field {
                    key: Text::from("message"),
                    value: Value::from("line\nbreak \"q\""),
                },
            ],
            RString::from(original),
            Position::default(),
        )
    }

    fn sink(dir: &Path, extra: serde_json::Value) -> FileSink {
        let mut cfg = serde_json::json!({"path": dir.join("out.ndjson")});
        if let (Some(c), Some(e)) = (cfg.as_object_mut(), extra.as_object()) {
            c.extend(e.clone());
        }
        open(settings(cfg).expect("settings")).expect("open")
    }

    fn lines(path: &Path) -> Vec<serde_json::Value> {
        std::fs::read_to_string(path)
            .expect("read")
            .lines()
            .map(|l| serde_json::from_str(l).expect("each line is JSON"))
            .collect()
    }

    #[test]
    fn a_torn_last_line_is_cut_before_appending() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("out.ndjson");
        std::fs::write(&path, b"{\"a\":1}\n{\"b\":2}\n{\"c\":").expect("write");
        let mut s = sink(dir.path(), serde_json::json!({"format": "raw"}));
        s.write_batch(&[rec(7, r#"{"d":4}"#)]).expect("write");
        s.flush().expect("flush");
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(text, "{\"a\":1}\n{\"b\":2}\n{\"d\":4}\n");
    }

    #[test]
    fn a_file_that_is_only_a_fragment_is_emptied_and_complete_files_are_kept() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("out.ndjson");
        std::fs::write(&path, vec![b'x'; 200_000]).expect("write");
        drop(sink(dir.path(), serde_json::json!({"format": "raw"})));
        assert_eq!(std::fs::metadata(&path).expect("stat").len(), 0);
        std::fs::write(&path, b"{\"a\":1}\n").expect("write");
        drop(sink(dir.path(), serde_json::json!({"format": "raw"})));
        assert_eq!(std::fs::read(&path).expect("read"), b"{\"a\":1}\n");
    }

    #[test]
    fn ecs_lines_one_per_record() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut s = sink(dir.path(), serde_json::json!({}));
        let recs: Vec<Record> = (0..3).map(|i| rec(i, "{\"a\":1}")).collect();
        let rep = s.write_batch(&recs).expect("write");
        assert_eq!(rep.accepted(), 3);
        s.flush().expect("flush");
        let got = lines(&dir.path().join("out.ndjson"));
        assert_eq!(got.len(), 3);
        assert_eq!(got[1]["event"]["id"], "id-1");
        assert_eq!(got[1]["message"], "line\nbreak \"q\"");
        assert_eq!(got[1]["event"]["original"], "{\"a\":1}");
        assert_eq!(got[0]["@timestamp"], "2023-11-14T22:13:20.000Z");
    }

    #[test]
    fn raw_format_writes_the_original_on_one_line() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut s = sink(dir.path(), serde_json::json!({"format": "raw"}));
        let pretty = "{\n  \"category\": \"SignInLogs\",\r\n  \"x\": \"a\\nb\"\n}";
        s.write_batch(&[rec(0, pretty), rec(1, "")]).expect("write");
        let got = lines(&dir.path().join("out.ndjson"));
        assert_eq!(got.len(), 2);
        assert_eq!(
            got[0],
            serde_json::json!({"category": "SignInLogs", "x": "a\nb"})
        );
        assert_eq!(got[1]["event"]["id"], "id-1", "no original → ECS fallback");
    }

    #[test]
    fn rotates_by_size_without_losing_or_splitting_lines() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut s = sink(
            dir.path(),
            serde_json::json!({"rotate_bytes": 1000, "include_original": false}),
        );
        let recs: Vec<Record> = (0..40).map(|i| rec(i, "{}")).collect();
        s.write_batch(&recs[..25]).expect("write");
        s.write_batch(&recs[25..]).expect("write");
        s.flush().expect("flush");
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir.path())
            .expect("ls")
            .map(|e| e.expect("entry").path())
            .collect();
        files.sort();
        assert!(files.len() >= 3, "expected rotations, got {files:?}");
        let mut ids = Vec::new();
        for f in &files {
            let size = std::fs::metadata(f).expect("stat").len();
            assert!(size <= 1000, "{} is {size} bytes", f.display());
            let name = f.file_name().expect("name").to_string_lossy().into_owned();
            assert!(name.ends_with(".ndjson"), "{name}");
            for l in lines(f) {
                ids.push(l["event"]["id"].as_str().expect("id").to_string());
            }
        }
        ids.sort_by_key(|s| s[3..].parse::<u32>().expect("n"));
        let want: Vec<String> = (0..40).map(|i| format!("id-{i}")).collect();
        assert_eq!(ids, want);
    }

    #[test]
    fn rotates_by_time() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut s = sink(dir.path(), serde_json::json!({"rotate_interval_secs": 1}));
        s.write_batch(&[rec(0, "{}")]).expect("write");
        s.opened_at = SystemTime::now() - Duration::from_secs(5);
        s.write_batch(&[rec(1, "{}")]).expect("write");
        let n = std::fs::read_dir(dir.path()).expect("ls").count();
        assert_eq!(n, 2);
        let current = lines(&dir.path().join("out.ndjson"));
        assert_eq!(current.len(), 1);
        assert_eq!(current[0]["event"]["id"], "id-1");
    }

    #[test]
    fn rotated_names_are_unique_and_keep_the_extension() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("azure.ndjson");
        let t = UNIX_EPOCH + Duration::from_secs(1_714_564_800); // 2024-05-01T12:00:00Z
        let a = rotated_name(&p, t);
        assert_eq!(a.file_name().expect("n"), "azure.20240501T120000Z.ndjson");
        std::fs::write(&a, b"").expect("touch");
        let b = rotated_name(&p, t);
        assert_eq!(b.file_name().expect("n"), "azure.20240501T120000Z-1.ndjson");
    }

    #[test]
    fn bad_settings_are_permanent_errors() {
        let err =
            settings(serde_json::json!({"path": "/tmp/x", "format": "xml"})).expect_err("error");
        assert_eq!(err.kind, azlog_plugin_api::ErrorKind::Permanent);
        assert!(settings(serde_json::json!({})).is_err());
        assert!(settings(serde_json::json!({"path": "/tmp/x", "bogus": 1})).is_err());
        let dir = tempfile::tempdir().expect("tempdir");
        let err = settings(serde_json::json!({"path": dir.path()}))
            .expect_err("a directory is not a file");
        assert!(err.message.contains("is a directory"), "{}", err.message);
        let file = dir.path().join("plain");
        std::fs::write(&file, b"x").expect("write");
        let err = settings(serde_json::json!({"path": file.join("sub/out.ndjson")}))
            .expect_err("a file is not a folder");
        assert!(
            err.message.contains("is not a directory"),
            "{}",
            err.message
        );
        // Checking creates nothing.
        let later = dir.path().join("later/deeper/out.ndjson");
        settings(serde_json::json!({"path": later})).expect("creatable");
        assert!(!dir.path().join("later").exists());
    }
}
