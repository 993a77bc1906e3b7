//! Optional on-disk event log (`--data-dir`): one directory per partition holding segment files
//! `<first-seq>.seg`. A record is a fixed header (`len u32`, `seq i64`, `offset i64`,
//! `enqueued-ms i64`, `size u64`, little endian) followed by the AMQP-encoded message with its
//! broker annotations. Whole segments are deleted once retention evicted all their events.
//! Writes go through a buffer flushed after every append call (no fsync: an emulator).

use std::{
    collections::VecDeque,
    fs::{self, File, OpenOptions},
    io::{BufWriter, Read, Write},
    path::{Path, PathBuf},
};

use anyhow::Context;

use crate::event::{self, StoredEvent};

/// A new segment is started once the current one exceeds this size.
const SEGMENT_BYTES: u64 = 64 * 1024 * 1024;
const HEADER_LEN: usize = 4 + 8 + 8 + 8 + 8;

/// The segment files of one partition.
#[derive(Debug)]
pub struct PartitionDisk {
    dir: PathBuf,
    /// `(first sequence number, path)`, oldest first.
    segments: VecDeque<(i64, PathBuf)>,
    writer: Option<BufWriter<File>>,
    current_size: u64,
}

impl PartitionDisk {
    /// Opens (creating if needed) a partition directory and reads back every intact record.
    /// A torn record at the end of the last segment (crash mid-write) is cut off.
    pub fn open(dir: &Path) -> anyhow::Result<(Self, Vec<StoredEvent>)> {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut segments = Vec::new();
        for entry in fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
            let path = entry?.path();
            if path.extension().and_then(|e| e.to_str()) != Some("seg") {
                continue;
            }
            let Some(first) = path
                .file_stem()
                .and_then(|s| s.to_str())
                .and_then(|s| s.parse::<i64>().ok())
            else {
                continue;
            };
            segments.push((first, path));
        }
        segments.sort();
        let mut events = Vec::new();
        let mut current_size = 0;
        for (_, path) in &segments {
            let (mut segment_events, good_len, file_len) = read_segment(path)?;
            if good_len < file_len {
                tracing::warn!(
                    path = %path.display(),
                    good_len,
                    file_len,
                    "truncating torn record at the end of a segment"
                );
                let file = OpenOptions::new()
                    .write(true)
                    .open(path)
                    .with_context(|| format!("opening {}", path.display()))?;
                file.set_len(good_len)
                    .with_context(|| format!("truncating {}", path.display()))?;
            }
            current_size = good_len;
            events.append(&mut segment_events);
        }
        let mut disk = Self {
            dir: dir.to_path_buf(),
            segments: segments.into(),
            writer: None,
            current_size,
        };
        if let Some((_, path)) = disk.segments.back() {
            let file = OpenOptions::new()
                .append(true)
                .open(path)
                .with_context(|| format!("opening {}", path.display()))?;
            disk.writer = Some(BufWriter::with_capacity(256 * 1024, file));
        }
        Ok((disk, events))
    }

    /// Appends one event (buffered; call [`PartitionDisk::flush`] after a batch).
    pub fn append(&mut self, event: &StoredEvent) -> anyhow::Result<()> {
        let bytes = event::encode(&event.message).context("encoding event for the data dir")?;
        if self.writer.is_none() || self.current_size >= SEGMENT_BYTES {
            self.roll(event.seq)?;
        }
        let len = u32::try_from(bytes.len()).context("event too large to persist")?;
        let mut header = [0u8; HEADER_LEN];
        header[0..4].copy_from_slice(&len.to_le_bytes());
        header[4..12].copy_from_slice(&event.seq.to_le_bytes());
        header[12..20].copy_from_slice(&event.offset.to_le_bytes());
        header[20..28].copy_from_slice(&event.enqueued_ms.to_le_bytes());
        header[28..36].copy_from_slice(&event.size.to_le_bytes());
        let writer = self
            .writer
            .as_mut()
            .context("segment writer missing after roll")?;
        writer.write_all(&header).context("writing event header")?;
        writer.write_all(&bytes).context("writing event")?;
        self.current_size += (HEADER_LEN + bytes.len()) as u64;
        Ok(())
    }

    /// Flushes buffered records to the file.
    pub fn flush(&mut self) -> anyhow::Result<()> {
        if let Some(writer) = self.writer.as_mut() {
            writer.flush().context("flushing segment")?;
        }
        Ok(())
    }

    /// Deletes segments holding only events below `begin_seq`.
    pub fn evict_before(&mut self, begin_seq: i64) -> anyhow::Result<()> {
        while self.segments.len() > 1 && self.segments[1].0 <= begin_seq {
            if let Some((_, path)) = self.segments.pop_front() {
                fs::remove_file(&path)
                    .with_context(|| format!("removing evicted segment {}", path.display()))?;
            }
        }
        Ok(())
    }

    fn roll(&mut self, first_seq: i64) -> anyhow::Result<()> {
        self.flush()?;
        let path = self.dir.join(format!("{first_seq:020}.seg"));
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("creating segment {}", path.display()))?;
        self.writer = Some(BufWriter::with_capacity(256 * 1024, file));
        self.segments.push_back((first_seq, path));
        self.current_size = 0;
        Ok(())
    }
}

/// Reads a segment; returns the events, the length of the intact prefix and the file length.
fn read_segment(path: &Path) -> anyhow::Result<(Vec<StoredEvent>, u64, u64)> {
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .with_context(|| format!("reading segment {}", path.display()))?;
    let mut events = Vec::new();
    let mut pos = 0usize;
    while bytes.len() - pos >= HEADER_LEN {
        let header = &bytes[pos..pos + HEADER_LEN];
        let le8 = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&header[at..at + 8]);
            b
        };
        let mut len4 = [0u8; 4];
        len4.copy_from_slice(&header[0..4]);
        let len = u32::from_le_bytes(len4) as usize;
        let body_start = pos + HEADER_LEN;
        if bytes.len() - body_start < len {
            break;
        }
        let message = match event::decode(&bytes[body_start..body_start + len]) {
            Ok(m) => m,
            Err(err) => {
                tracing::warn!(path = %path.display(), pos, %err, "undecodable record; stopping");
                break;
            }
        };
        events.push(StoredEvent {
            seq: i64::from_le_bytes(le8(4)),
            offset: i64::from_le_bytes(le8(12)),
            enqueued_ms: i64::from_le_bytes(le8(20)),
            size: u64::from_le_bytes(le8(28)),
            message,
        });
        pos = body_start + len;
    }
    Ok((events, pos as u64, bytes.len() as u64))
}
