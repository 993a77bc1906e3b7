//! Byte-stream adapter between fe2o3-amqp and the socket that makes the emulator's frames
//! readable by every client.
//!
//! AMQP 1.0 (§1.4, composite types) lets an encoder omit trailing null fields of a
//! performative list, and fe2o3 also writes fields equal to their default as null. That is
//! valid AMQP, but the Python SDK's pyamqp decodes performatives by *position*
//! (`decode_frame` builds a list of exactly `count` fields, appends a transfer's payload at
//! index `count`, then reads `frame[11]` for the payload, `frame[4]` of begin for handle-max,
//! and so on), so a short list makes it fail with `IndexError`/`TypeError`. Event Hubs itself
//! always sends every field. Performatives are produced deep inside fe2o3, so the emulator
//! normalises them on the way out instead:
//!
//! * **Write side:** every outgoing performative list (AMQP frames `open`..`close`, SASL frames)
//!   is re-encoded with all its fields, nulls that have a default in the spec replaced by that
//!   default (e.g. begin `handle-max` = 4294967295, transfer `batchable` = false), and `list0`
//!   turned into a real list. Payloads (transfer message bytes) are copied unchanged.
//! * **Read side:** normalising makes a frame a few bytes longer, and fe2o3 cuts multi-frame
//!   transfers to exactly the peer's `max-frame-size`. So the client's `open` is rewritten on
//!   the way in to advertise [`FRAME_HEADROOM`] bytes less, which keeps every normalised frame
//!   within the size the client really accepts (the fe2o3-based Rust SDK enforces it).
//!
//! Anything the adapter does not recognise passes through unchanged.

use std::{
    borrow::Cow,
    io,
    pin::Pin,
    task::{ready, Context, Poll},
};

use bytes::{Buf, BufMut, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Bytes subtracted from the client's `max-frame-size` (normalising adds at most ~20).
pub const FRAME_HEADROOM: u32 = 64;
/// Smallest `max-frame-size` AMQP allows.
const MIN_MAX_FRAME_SIZE: u32 = 512;
/// Normalised bytes buffered before `poll_write` applies backpressure.
const OUT_HIGH_WATER: usize = 1 << 20;
/// Bytes read from the socket at a time while looking for the client's `open`.
const READ_CHUNK: usize = 8 * 1024;

const FRAME_TYPE_AMQP: u8 = 0x00;
const FRAME_TYPE_SASL: u8 = 0x01;
const OPEN: u64 = 0x10;

const NULL: u8 = 0x40;
const FALSE: &[u8] = &[0x42];
const UINT_MAX: &[u8] = &[0x70, 0xff, 0xff, 0xff, 0xff];
const USHORT_MAX: &[u8] = &[0x60, 0xff, 0xff];
/// `sender-settle-mode` mixed.
const SND_SETTLE_MIXED: &[u8] = &[0x50, 0x02];
/// `receiver-settle-mode` first.
const RCV_SETTLE_FIRST: &[u8] = &[0x50, 0x00];

/// Number of fields of a performative and the encoding of each field's spec default (`None`:
/// no default, stays null).
fn layout(frame_type: u8, code: u64) -> Option<&'static [Option<&'static [u8]>]> {
    const F: Option<&[u8]> = Some(FALSE);
    let fields: &'static [Option<&'static [u8]>] = match (frame_type, code) {
        // open: container-id, hostname, max-frame-size, channel-max, idle-time-out,
        // outgoing-locales, incoming-locales, offered-, desired-capabilities, properties
        (FRAME_TYPE_AMQP, 0x10) => &[
            None,
            None,
            Some(UINT_MAX),
            Some(USHORT_MAX),
            None,
            None,
            None,
            None,
            None,
            None,
        ],
        // begin: remote-channel, next-outgoing-id, incoming-window, outgoing-window,
        // handle-max, offered-, desired-capabilities, properties
        (FRAME_TYPE_AMQP, 0x11) => &[None, None, None, None, Some(UINT_MAX), None, None, None],
        // attach: name, handle, role, snd-settle-mode, rcv-settle-mode, source, target,
        // unsettled, incomplete-unsettled, initial-delivery-count, max-message-size,
        // offered-, desired-capabilities, properties
        (FRAME_TYPE_AMQP, 0x12) => &[
            None,
            None,
            None,
            Some(SND_SETTLE_MIXED),
            Some(RCV_SETTLE_FIRST),
            None,
            None,
            None,
            F,
            None,
            None,
            None,
            None,
            None,
        ],
        // flow: next-incoming-id, incoming-window, next-outgoing-id, outgoing-window, handle,
        // delivery-count, link-credit, available, drain, echo, properties
        (FRAME_TYPE_AMQP, 0x13) => &[None, None, None, None, None, None, None, None, F, F, None],
        // transfer: handle, delivery-id, delivery-tag, message-format, settled, more,
        // rcv-settle-mode, state, resume, aborted, batchable
        (FRAME_TYPE_AMQP, 0x14) => &[None, None, None, None, None, F, None, None, F, F, F],
        // disposition: role, first, last, settled, state, batchable
        (FRAME_TYPE_AMQP, 0x15) => &[None, None, None, F, None, F],
        // detach: handle, closed, error
        (FRAME_TYPE_AMQP, 0x16) => &[None, F, None],
        // end, close: error
        (FRAME_TYPE_AMQP, 0x17) | (FRAME_TYPE_AMQP, 0x18) => &[None],
        // sasl-mechanisms, sasl-challenge, sasl-response
        (FRAME_TYPE_SASL, 0x40) | (FRAME_TYPE_SASL, 0x42) | (FRAME_TYPE_SASL, 0x43) => &[None],
        // sasl-init: mechanism, initial-response, hostname
        (FRAME_TYPE_SASL, 0x41) => &[None, None, None],
        // sasl-outcome: code, additional-data
        (FRAME_TYPE_SASL, 0x44) => &[None, None],
        _ => return None,
    };
    Some(fields)
}

/// End (exclusive) of the AMQP-encoded value starting at `pos`, if it lies within `data`.
fn skip_value(data: &[u8], pos: usize) -> Option<usize> {
    let constructor = *data.get(pos)?;
    let end = match constructor {
        // Described: descriptor, then value.
        0x00 => {
            let descriptor_end = skip_value(data, pos + 1)?;
            return skip_value(data, descriptor_end);
        }
        0x40..=0x4f => pos + 1,
        0x50..=0x5f => pos + 2,
        0x60..=0x6f => pos + 3,
        0x70..=0x7f => pos + 5,
        0x80..=0x8f => pos + 9,
        0x90..=0x9f => pos + 17,
        0xa0..=0xaf | 0xc0..=0xcf | 0xe0..=0xef => pos + 2 + usize::from(*data.get(pos + 1)?),
        0xb0..=0xbf | 0xd0..=0xdf | 0xf0..=0xff => {
            let len = data.get(pos + 1..pos + 5)?;
            pos + 5 + u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize
        }
        _ => return None,
    };
    (end <= data.len()).then_some(end)
}

/// A performative frame split into its parts.
struct Performative<'a> {
    /// Frame type (AMQP or SASL).
    frame_type: u8,
    /// Bytes 4.. of the frame up to the body: doff, type, channel, extended header.
    header: &'a [u8],
    /// Descriptor code.
    code: u64,
    /// Encoded fields, in order.
    fields: Vec<Cow<'a, [u8]>>,
    /// What follows the performative (a transfer's payload).
    rest: &'a [u8],
}

impl<'a> Performative<'a> {
    /// Parses a complete frame (size prefix included). `None` for heartbeats and anything not
    /// shaped like a described-list performative.
    fn parse(frame: &'a [u8]) -> Option<Self> {
        let doff = usize::from(*frame.get(4)?);
        let frame_type = *frame.get(5)?;
        let body_start = doff * 4;
        if body_start < 8 || body_start >= frame.len() {
            return None;
        }
        let body = &frame[body_start..];
        if body[0] != 0x00 {
            return None;
        }
        let (code, list_pos) = match *body.get(1)? {
            0x53 => (u64::from(*body.get(2)?), 3),
            0x80 => {
                let b = body.get(2..10)?;
                (u64::from_be_bytes(b.try_into().ok()?), 10)
            }
            0x44 => (0, 2),
            _ => return None,
        };
        let (items_start, items_end, count) = match *body.get(list_pos)? {
            0x45 => (list_pos + 1, list_pos + 1, 0),
            0xc0 => {
                let size = usize::from(*body.get(list_pos + 1)?);
                let count = usize::from(*body.get(list_pos + 2)?);
                (list_pos + 3, list_pos + 2 + size, count)
            }
            0xd0 => {
                let size = body.get(list_pos + 1..list_pos + 5)?;
                let size = u32::from_be_bytes(size.try_into().ok()?) as usize;
                let count = body.get(list_pos + 5..list_pos + 9)?;
                let count = u32::from_be_bytes(count.try_into().ok()?) as usize;
                (list_pos + 9, list_pos + 5 + size, count)
            }
            _ => return None,
        };
        if items_end > body.len() || items_start > items_end {
            return None;
        }
        let mut fields = Vec::with_capacity(count);
        let mut pos = items_start;
        for _ in 0..count {
            let end = skip_value(&body[..items_end], pos)?;
            fields.push(Cow::Borrowed(&body[pos..end]));
            pos = end;
        }
        if pos != items_end {
            return None;
        }
        Some(Self {
            frame_type,
            header: &frame[4..body_start],
            code,
            fields,
            rest: &body[items_end..],
        })
    }

    /// Index of the field holding an `error` (directly or inside a `rejected` delivery state).
    fn error_field(&self) -> Option<usize> {
        match (self.frame_type, self.code) {
            // transfer state, disposition state, detach error, end / close error
            (FRAME_TYPE_AMQP, 0x14) => Some(7),
            (FRAME_TYPE_AMQP, 0x15) => Some(4),
            (FRAME_TYPE_AMQP, 0x16) => Some(2),
            (FRAME_TYPE_AMQP, 0x17) | (FRAME_TYPE_AMQP, 0x18) => Some(0),
            _ => None,
        }
    }

    /// Appends the frame to `out` with every field present and defaults filled in. `false`
    /// (nothing written) when the performative is unknown or has more fields than expected.
    fn write_normalised(&mut self, out: &mut BytesMut) -> bool {
        let Some(layout) = layout(self.frame_type, self.code) else {
            return false;
        };
        if self.fields.len() > layout.len() {
            return false;
        }
        for (i, default) in layout.iter().enumerate() {
            let replacement: &'static [u8] = match default {
                Some(d) => d,
                None => &[NULL],
            };
            match self.fields.get_mut(i) {
                Some(field) if field.as_ref() == [NULL] => *field = Cow::Borrowed(replacement),
                Some(_) => {}
                None => self.fields.push(Cow::Borrowed(replacement)),
            }
        }
        if let Some(i) = self.error_field() {
            if let Some(full) = full_error(&self.fields[i]) {
                self.fields[i] = Cow::Owned(full);
            }
        }
        self.write(out);
        true
    }

    /// Appends the frame as it is now.
    fn write(&self, out: &mut BytesMut) {
        let items: usize = self.fields.iter().map(|f| f.len()).sum();
        let count = self.fields.len();
        let small = items < 255 && count < 256;
        let list_header = if small { 3 } else { 9 };
        // described constructor + smallulong code, or ulong code
        let descriptor = if self.code < 256 { 3 } else { 10 };
        let frame_size = 4 + self.header.len() + descriptor + list_header + items + self.rest.len();
        out.reserve(frame_size);
        out.put_u32(frame_size as u32);
        out.put_slice(self.header);
        out.put_u8(0x00);
        if self.code < 256 {
            out.put_u8(0x53);
            out.put_u8(self.code as u8);
        } else {
            out.put_u8(0x80);
            out.put_u64(self.code);
        }
        if small {
            out.put_u8(0xc0);
            out.put_u8((items + 1) as u8);
            out.put_u8(count as u8);
        } else {
            out.put_u8(0xd0);
            out.put_u32((items + 4) as u32);
            out.put_u32(count as u32);
        }
        for field in &self.fields {
            out.put_slice(field);
        }
        out.put_slice(self.rest);
    }
}

/// Splits a described list (`0x00 0x53 code list`) into its code and encoded items.
fn described_list(value: &[u8]) -> Option<(u8, Vec<&[u8]>)> {
    if value.len() < 4 || value[0] != 0x00 || value[1] != 0x53 {
        return None;
    }
    let code = value[2];
    let (items_start, count) = match value[3] {
        0x45 => (4, 0),
        0xc0 => (6, usize::from(*value.get(5)?)),
        0xd0 => {
            let count = value.get(8..12)?;
            (12, u32::from_be_bytes(count.try_into().ok()?) as usize)
        }
        _ => return None,
    };
    let mut items = Vec::with_capacity(count);
    let mut pos = items_start;
    for _ in 0..count {
        let end = skip_value(value, pos)?;
        items.push(&value[pos..end]);
        pos = end;
    }
    (pos == value.len()).then_some((code, items))
}

/// Encodes a described list with a smallulong descriptor.
fn encode_described_list(code: u8, items: &[&[u8]]) -> Vec<u8> {
    let len: usize = items.iter().map(|i| i.len()).sum();
    let mut out = Vec::with_capacity(len + 12);
    out.extend_from_slice(&[0x00, 0x53, code]);
    if len < 255 && items.len() < 256 {
        out.extend_from_slice(&[0xc0, (len + 1) as u8, items.len() as u8]);
    } else {
        out.push(0xd0);
        out.extend_from_slice(&((len + 4) as u32).to_be_bytes());
        out.extend_from_slice(&(items.len() as u32).to_be_bytes());
    }
    for item in items {
        out.extend_from_slice(item);
    }
    out
}

/// `error` (0x1d) with all three fields (condition, description, info), also inside a
/// `rejected` delivery state (0x25). pyamqp reads `error[2]` unconditionally when it turns a
/// rejected outcome or a close/end error into an exception. `None`: nothing to change.
fn full_error(value: &[u8]) -> Option<Vec<u8>> {
    const ERROR: u8 = 0x1d;
    const REJECTED: u8 = 0x25;
    let (code, items) = described_list(value)?;
    match code {
        ERROR if items.len() < 3 => {
            let mut items = items;
            items.resize(3, &[NULL]);
            Some(encode_described_list(ERROR, &items))
        }
        REJECTED => {
            let inner = full_error(items.first()?)?;
            let mut items = items;
            items[0] = &inner;
            Some(encode_described_list(REJECTED, &items))
        }
        _ => None,
    }
}

/// Normalises the complete frames / protocol headers at the start of `src` into `out`.
/// Returns how many bytes were consumed and whether the stream still looks like frames (when
/// not, the caller passes everything from the returned position on through unchanged).
fn normalise_frames(src: &[u8], out: &mut BytesMut) -> (usize, bool) {
    let mut pos = 0;
    while src.len() - pos >= 8 {
        let unit = &src[pos..];
        if &unit[..4] == b"AMQP" {
            out.put_slice(&unit[..8]);
            pos += 8;
            continue;
        }
        let size = u32::from_be_bytes([unit[0], unit[1], unit[2], unit[3]]) as usize;
        if size < 8 {
            return (pos, false);
        }
        if unit.len() < size {
            break;
        }
        let frame = &unit[..size];
        let normalised = Performative::parse(frame).is_some_and(|mut p| {
            tracing::trace!(frame_type = p.frame_type, code = p.code, fields = ?p.fields.iter().map(|f| f.len()).collect::<Vec<_>>(), "outgoing performative");
            p.write_normalised(out)
        });
        if !normalised {
            out.put_slice(frame);
        }
        pos += size;
    }
    (pos, true)
}

/// Rewrites the client's `open` so it advertises [`FRAME_HEADROOM`] bytes less
/// `max-frame-size`. `None` when `frame` is not an `open` or has no explicit size (the
/// default is unlimited, which needs no headroom).
fn shrink_open(frame: &[u8], out: &mut BytesMut) -> Option<()> {
    let mut open = Performative::parse(frame)?;
    if open.frame_type != FRAME_TYPE_AMQP || open.code != OPEN {
        return None;
    }
    let field = open.fields.get(2)?;
    let size = match field.as_ref() {
        [0x70, a, b, c, d] => u32::from_be_bytes([*a, *b, *c, *d]),
        [0x52, v] => u32::from(*v),
        [0x43] => 0,
        _ => return None,
    };
    let shrunk = size.saturating_sub(FRAME_HEADROOM).max(MIN_MAX_FRAME_SIZE);
    let mut encoded = vec![0x70];
    encoded.extend_from_slice(&shrunk.to_be_bytes());
    open.fields[2] = Cow::Owned(encoded);
    open.write(out);
    Some(())
}

/// The adapter; see the module docs.
pub struct FullFrames<S> {
    inner: S,
    /// Outgoing bytes not yet forming a complete frame.
    staged: BytesMut,
    /// Normalised outgoing bytes waiting for the socket.
    out: BytesMut,
    /// Outgoing stream not parsable: pass through unchanged.
    write_raw: bool,
    /// Incoming bytes not yet scanned (until the client's `open` was seen).
    read_raw: BytesMut,
    /// Scanned incoming bytes ready for fe2o3.
    read_ready: BytesMut,
    /// The client's `open` was handled: incoming bytes pass through.
    read_through: bool,
}

impl<S> std::fmt::Debug for FullFrames<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FullFrames")
            .field("staged", &self.staged.len())
            .field("out", &self.out.len())
            .field("read_through", &self.read_through)
            .finish_non_exhaustive()
    }
}

impl<S> FullFrames<S> {
    /// Wraps a connected socket.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            staged: BytesMut::new(),
            out: BytesMut::with_capacity(64 * 1024),
            write_raw: false,
            read_raw: BytesMut::new(),
            read_ready: BytesMut::new(),
            read_through: false,
        }
    }

    /// The wrapped socket.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    fn stage(&mut self, buf: &[u8]) {
        if self.write_raw {
            self.out.put_slice(buf);
            return;
        }
        let parsable = if self.staged.is_empty() {
            let (consumed, parsable) = normalise_frames(buf, &mut self.out);
            self.staged.put_slice(&buf[consumed..]);
            parsable
        } else {
            self.staged.put_slice(buf);
            let (consumed, parsable) = normalise_frames(&self.staged, &mut self.out);
            self.staged.advance(consumed);
            parsable
        };
        if !parsable {
            tracing::warn!("outgoing AMQP stream not parsable as frames; passing it through");
            self.write_raw = true;
            let rest = self.staged.split();
            self.out.put_slice(&rest);
        }
    }

    /// Scans `read_raw` up to and including the client's `open`.
    fn scan_incoming(&mut self) {
        while !self.read_through && self.read_raw.len() >= 8 {
            if &self.read_raw[..4] == b"AMQP" {
                let header = self.read_raw.split_to(8);
                self.read_ready.put_slice(&header);
                continue;
            }
            let r = &self.read_raw;
            let size = u32::from_be_bytes([r[0], r[1], r[2], r[3]]) as usize;
            if size < 8 {
                self.read_through = true;
                break;
            }
            if self.read_raw.len() < size {
                return;
            }
            let frame = self.read_raw.split_to(size);
            if frame[5] == FRAME_TYPE_AMQP && frame.len() > 8 {
                // The first AMQP frame of a connection is the open.
                if shrink_open(&frame, &mut self.read_ready).is_none() {
                    self.read_ready.put_slice(&frame);
                }
                self.read_through = true;
            } else {
                self.read_ready.put_slice(&frame);
            }
        }
        if self.read_through {
            let rest = self.read_raw.split();
            self.read_ready.put_slice(&rest);
        }
    }
}

impl<S: AsyncWrite + Unpin> FullFrames<S> {
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.out.is_empty() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.out))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.out.advance(n);
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for FullFrames<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.out.len() >= OUT_HIGH_WATER {
            ready!(this.poll_drain(cx))?;
        }
        this.stage(buf);
        // Push what we can now; the rest goes on the next write or flush.
        if let Poll::Ready(Err(e)) = this.poll_drain(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for FullFrames<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if !this.read_ready.is_empty() {
                let n = this.read_ready.len().min(buf.remaining());
                buf.put_slice(&this.read_ready[..n]);
                this.read_ready.advance(n);
                return Poll::Ready(Ok(()));
            }
            if this.read_through {
                return Pin::new(&mut this.inner).poll_read(cx, buf);
            }
            let mut chunk = [0u8; READ_CHUNK];
            let mut chunk_buf = ReadBuf::new(&mut chunk);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut chunk_buf))?;
            if chunk_buf.filled().is_empty() {
                // End of stream: hand over whatever is left, then report EOF.
                this.read_through = true;
                let rest = this.read_raw.split();
                this.read_ready.put_slice(&rest);
                if this.read_ready.is_empty() {
                    return Poll::Ready(Ok(()));
                }
                continue;
            }
            this.read_raw.put_slice(chunk_buf.filled());
            this.scan_incoming();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(frame_type: u8, code: u8, list: &[u8], rest: &[u8]) -> Vec<u8> {
        let mut body = vec![0x00, 0x53, code];
        body.extend_from_slice(list);
        body.extend_from_slice(rest);
        let mut f = ((8 + body.len()) as u32).to_be_bytes().to_vec();
        f.extend_from_slice(&[2, frame_type, 0, 1]);
        f.extend_from_slice(&body);
        f
    }

    fn normalise(input: &[u8]) -> Vec<u8> {
        let mut out = BytesMut::new();
        assert_eq!(normalise_frames(input, &mut out), (input.len(), true));
        out.to_vec()
    }

    #[test]
    fn transfer_gets_all_fields_and_keeps_payload() {
        // handle 0, delivery-id 5, delivery-tag bin8 [1], message-format 0, settled false
        let list = [0xc0, 9, 5, 0x43, 0x52, 5, 0xa0, 1, 1, 0x43, 0x42];
        let f = frame(0, 0x14, &list, b"PAYLOAD");
        let out = normalise(&f);
        let p = Performative::parse(&out).expect("parses");
        assert_eq!(p.code, 0x14);
        assert_eq!(p.fields.len(), 11);
        assert_eq!(p.fields[4].as_ref(), &[0x42]);
        assert_eq!(p.fields[5].as_ref(), &[0x42], "more defaults to false");
        assert_eq!(p.fields[6].as_ref(), &[0x40], "rcv-settle-mode stays null");
        assert_eq!(p.fields[10].as_ref(), &[0x42]);
        assert_eq!(p.rest, b"PAYLOAD");
        assert_eq!(
            u32::from_be_bytes(out[..4].try_into().unwrap()) as usize,
            out.len()
        );
    }

    #[test]
    fn list0_and_nulls_with_defaults() {
        // close with list0
        let out = normalise(&frame(0, 0x18, &[0x45], b""));
        let p = Performative::parse(&out).unwrap();
        assert_eq!(p.fields.len(), 1);
        assert_eq!(p.fields[0].as_ref(), &[0x40]);
        // begin: remote-channel 0, next-outgoing-id 1, windows, handle-max null
        let list = [0xc0, 9, 5, 0x60, 0, 0, 0x52, 1, 0x43, 0x43, 0x40];
        let out = normalise(&frame(0, 0x11, &list, b""));
        let p = Performative::parse(&out).unwrap();
        assert_eq!(p.fields.len(), 8);
        assert_eq!(p.fields[4].as_ref(), UINT_MAX);
    }

    #[test]
    fn headers_partial_frames_and_unknown_frames() {
        let mut input = b"AMQP\x00\x01\x00\x00".to_vec();
        input.extend(frame(0, 0x16, &[0xc0, 2, 1, 0x43], b""));
        // heartbeat (empty frame)
        input.extend_from_slice(&[0, 0, 0, 8, 2, 0, 0, 0]);
        // unknown descriptor: passes through
        let unknown = frame(0, 0x70, &[0xc0, 2, 1, 0x43], b"");
        input.extend(&unknown);
        let mut out = BytesMut::new();
        let (consumed, ok) = normalise_frames(&input[..input.len() - 3], &mut out);
        assert!(ok);
        assert_eq!(
            consumed,
            input.len() - unknown.len(),
            "partial frame kept back"
        );
        assert_eq!(&out[..8], b"AMQP\x00\x01\x00\x00");
        let detach = Performative::parse(&out[8..]).unwrap();
        assert_eq!(detach.fields.len(), 3);
        assert_eq!(detach.fields[1].as_ref(), &[0x42]);
        let mut all = BytesMut::new();
        assert!(normalise_frames(&input, &mut all).1);
        assert!(all.ends_with(&unknown));
    }

    #[test]
    fn errors_get_all_three_fields() {
        // detach: handle 0, closed true, error(condition symbol "x")
        let error = [0x00, 0x53, 0x1d, 0xc0, 4, 1, 0xa3, 1, b'x'];
        let mut list = vec![0xc0, (3 + error.len()) as u8, 3, 0x43, 0x41];
        list.extend_from_slice(&error);
        let out = normalise(&frame(0, 0x16, &list, b""));
        let p = Performative::parse(&out).unwrap();
        let (code, items) = described_list(&p.fields[2]).unwrap();
        assert_eq!((code, items.len()), (0x1d, 3));
        // disposition with rejected(error)
        let mut rejected = vec![0x00, 0x53, 0x25, 0xc0, (1 + error.len()) as u8, 1];
        rejected.extend_from_slice(&error);
        let mut list = vec![0xc0, (5 + rejected.len()) as u8, 5, 0x41, 0x43, 0x40, 0x41];
        list.extend_from_slice(&rejected);
        let out = normalise(&frame(0, 0x15, &list, b""));
        let p = Performative::parse(&out).unwrap();
        let (code, items) = described_list(&p.fields[4]).unwrap();
        assert_eq!(code, 0x25);
        let (code, inner) = described_list(items[0]).unwrap();
        assert_eq!((code, inner.len()), (0x1d, 3));
        assert_eq!(inner[0], &[0xa3, 1, b'x']);
    }

    #[test]
    fn open_max_frame_size_is_shrunk() {
        // container-id "c", hostname null, max-frame-size 65536
        let list = [0xc0, 10, 3, 0xa1, 1, b'c', 0x40, 0x70, 0, 1, 0, 0];
        let f = frame(0, 0x10, &list, b"");
        let mut out = BytesMut::new();
        shrink_open(&f, &mut out).unwrap();
        let p = Performative::parse(&out).unwrap();
        let expected = (65536 - FRAME_HEADROOM).to_be_bytes();
        assert_eq!(
            p.fields[2].as_ref(),
            &[0x70, expected[0], expected[1], expected[2], expected[3]]
        );
        assert_eq!(p.fields[0].as_ref(), &[0xa1, 1, b'c']);
    }

    #[tokio::test]
    async fn adapter_round_trip_over_a_pipe() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (client, server) = tokio::io::duplex(1 << 16);
        let mut server = FullFrames::new(server);
        let (mut client_read, mut client_write) = tokio::io::split(client);
        // Client sends header + open; the server side sees a shrunk open.
        let list = [0xc0, 10, 3, 0xa1, 1, b'c', 0x40, 0x70, 0, 1, 0, 0];
        let mut hello = b"AMQP\x00\x01\x00\x00".to_vec();
        hello.extend(frame(0, 0x10, &list, b""));
        client_write.write_all(&hello).await.unwrap();
        let mut got = vec![0u8; 8];
        server.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"AMQP\x00\x01\x00\x00");
        let mut size = [0u8; 4];
        server.read_exact(&mut size).await.unwrap();
        let mut rest = vec![0u8; u32::from_be_bytes(size) as usize - 4];
        server.read_exact(&mut rest).await.unwrap();
        let mut open = size.to_vec();
        open.extend(rest);
        let p = Performative::parse(&open).unwrap();
        assert_eq!(p.fields[2].as_ref()[0], 0x70);
        // Server writes a close split over two writes; the client sees a full list.
        let close = frame(0, 0x18, &[0x45], b"");
        server.write_all(&close[..5]).await.unwrap();
        server.write_all(&close[5..]).await.unwrap();
        server.flush().await.unwrap();
        let mut size = [0u8; 4];
        client_read.read_exact(&mut size).await.unwrap();
        let mut out = vec![0u8; u32::from_be_bytes(size) as usize - 4];
        client_read.read_exact(&mut out).await.unwrap();
        out.splice(0..0, size);
        let p = Performative::parse(&out).unwrap();
        assert_eq!(p.fields.len(), 1);
    }
}
