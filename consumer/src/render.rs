//! Offline rendering of canonical records through the same codecs the sink plugins use:
//! ECS JSON, CEF, LEEF and Splunk HEC JSON, one event per line.
use std::io::{self, Write};
use std::ops::Range;

use anyhow::{Context, Result};
use azlog_codecs::{cef, hec, leef};
use azlog_plugin_api::ecs::{write_ecs_json, EcsOptions};
use azlog_plugin_api::Record;
use clap::ValueEnum;

/// Output formats.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// ECS JSON, one document per line.
    Ecs,
    /// ArcSight CEF lines (no syslog header).
    Cef,
    /// QRadar LEEF 2.0 lines (no syslog header).
    Leef,
    /// Splunk HEC event JSON, one event per line.
    Splunk,
}

impl Format {
    /// File name used for this format in `demo-out/`.
    pub fn file_name(self) -> &'static str {
        match self {
            Format::Ecs => "ecs.ndjson",
            Format::Cef => "arcsight.cef",
            Format::Leef => "qradar.leef",
            Format::Splunk => "splunk-hec.json",
        }
    }
}

enum Codec {
    Ecs(EcsOptions),
    Cef(Box<cef::CefConfig>),
    Leef(Box<leef::LeefConfig>),
    Splunk(Box<hec::HecEncoder>),
}

/// Renders records in one format, reusing its buffers.
pub struct Renderer {
    codec: Codec,
    bytes: Vec<u8>,
    text: String,
    ends: Vec<usize>,
}

impl Renderer {
    /// A renderer with the built-in codec tables.
    pub fn new(format: Format, include_original: bool) -> Result<Self> {
        let codec = match format {
            Format::Ecs => Codec::Ecs(EcsOptions { include_original }),
            Format::Cef => Codec::Cef(Box::new(
                cef::CefConfig::builtin().context("loading the built-in CEF map")?,
            )),
            Format::Leef => Codec::Leef(Box::new(
                leef::LeefConfig::builtin().context("loading the built-in LEEF map")?,
            )),
            Format::Splunk => Codec::Splunk(Box::new(
                hec::HecEncoder::with_defaults()
                    .context("loading the built-in Splunk sourcetype table")?,
            )),
        };
        Ok(Renderer {
            codec,
            bytes: Vec::with_capacity(4096),
            text: String::with_capacity(4096),
            ends: Vec::new(),
        })
    }

    /// Writes the record's line(s) to `out`.
    pub fn write(&mut self, record: &Record, out: &mut impl Write) -> io::Result<()> {
        self.bytes.clear();
        self.render(record)?;
        out.write_all(&self.bytes)
    }

    /// Renders the record's line(s) into the renderer, where they are held until
    /// [`Renderer::write_held`]; returns where they are. A record that fails to render leaves
    /// nothing behind.
    pub fn hold(&mut self, record: &Record) -> io::Result<Range<usize>> {
        let start = self.bytes.len();
        match self.render(record) {
            Ok(()) => Ok(start..self.bytes.len()),
            Err(e) => {
                self.bytes.truncate(start);
                Err(e)
            }
        }
    }

    /// Writes the held lines at `spans` ([`Renderer::hold`]'s ranges), in that order, to
    /// `out`, and forgets every held line.
    pub fn write_held<'a>(
        &mut self,
        spans: impl IntoIterator<Item = &'a Range<usize>>,
        out: &mut impl Write,
    ) -> io::Result<()> {
        let result = spans
            .into_iter()
            .try_for_each(|span| out.write_all(self.bytes.get(span.clone()).unwrap_or_default()));
        self.bytes.clear();
        result
    }

    /// Appends the record's line(s) to `self.bytes`.
    fn render(&mut self, record: &Record) -> io::Result<()> {
        match &self.codec {
            Codec::Ecs(opts) => {
                write_ecs_json(record, *opts, &mut self.bytes);
                self.bytes.push(b'\n');
            }
            Codec::Cef(cfg) => {
                self.text.clear();
                cef::encode(record, cfg, &mut self.text);
                self.bytes.extend_from_slice(self.text.as_bytes());
                self.bytes.push(b'\n');
            }
            Codec::Leef(cfg) => {
                self.text.clear();
                leef::encode(record, cfg, &mut self.text);
                self.bytes.extend_from_slice(self.text.as_bytes());
                self.bytes.push(b'\n');
            }
            Codec::Splunk(enc) => {
                self.ends.clear();
                enc.encode(record, &mut self.bytes, &mut self.ends)
                    .map_err(|reason| io::Error::new(io::ErrorKind::InvalidData, reason))?;
            }
        }
        Ok(())
    }
}
