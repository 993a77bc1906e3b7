//! The quick route of [`crate::envelope::split_body`] for the usual event body: one
//! `{"records":[{...},{...}]}` envelope (whitespace between tokens allowed), whose records are objects with
//! no raw control character inside a string and no single quote outside one (nothing for the
//! sanitizers to do). Such a body is split with a scanner that finds each record's end 64
//! bytes at a time ([`crate::object_end`]) and copies each record once, instead of feeding
//! every byte through the streaming splitter's state machine. Anything else (another shape, a sanitizer case,
//! a truncated or oversize record, trailing data) is declined, and the streaming splitter
//! reads the body as before; for a body it accepts, the records are the ones the streaming
//! splitter gives (the tests compare the two).
use crate::envelope::{compact_multiline, RawRecord};
use crate::object_end::object_end;

/// The records of `body` when it is a plain envelope (see the module), else `None`.
pub(crate) fn plain_envelope(body: &[u8], max_record_bytes: usize) -> Option<Vec<RawRecord>> {
    // `{ "records" : [`, whitespace between the tokens only.
    let mut i = 0;
    for token in [&b"{"[..], b"\"records\"", b":", b"["] {
        i = skip_ws(body, i);
        if !body.get(i..)?.starts_with(token) {
            return None;
        }
        i += token.len();
    }
    let mut records = Vec::new();
    let (mut line, mut counted) = (1u64, 0usize);
    let mut index = 0u32;
    loop {
        match *body.get(i)? {
            b' ' | b'\t' | b'\r' | b'\n' | b',' => i += 1,
            b']' => {
                i += 1;
                break;
            }
            b'{' => {
                let end = object_end(body, i)?;
                let json = body.get(i..=end)?;
                if json.len() > max_record_bytes {
                    return None;
                }
                // The line the record starts on, as the streaming splitter counts it.
                line += memchr::memchr_iter(b'\n', body.get(counted..i)?).count() as u64;
                counted = i;
                records.push(RawRecord {
                    json: compact_multiline(json.to_vec()),
                    line,
                    index,
                    error: None,
                });
                index = index.checked_add(1)?;
                i = end + 1;
            }
            _ => return None,
        }
    }
    i = skip_ws(body, i);
    if body.get(i) != Some(&b'}') {
        return None;
    }
    (skip_ws(body, i + 1) == body.len()).then_some(records)
}

/// The index of the first byte at or after `i` that is not JSON whitespace.
fn skip_ws(body: &[u8], mut i: usize) -> usize {
    while body
        .get(i)
        .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
    {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::{EnvelopeConfig, RecordReader};
    use crate::test_fixtures::fixture_records;

    /// What the streaming splitter gives for `body`.
    fn streamed(body: &[u8]) -> Vec<RawRecord> {
        RecordReader::new(body, EnvelopeConfig::default())
            .filter_map(Result::ok)
            .collect()
    }

    /// Whenever the quick route accepts a body, its records are the streaming splitter's.
    fn agrees(body: &[u8]) -> bool {
        match plain_envelope(body, EnvelopeConfig::default().max_record_bytes) {
            Some(quick) => {
                assert_eq!(quick, streamed(body), "{}", String::from_utf8_lossy(body));
                true
            }
            None => false,
        }
    }

    #[test]
    fn plain_envelopes_split_as_the_streaming_splitter_does() {
        let records = fixture_records();
        assert!(records.len() > 50, "{} fixture records", records.len());
        let compact = format!("{{\"records\":[{}]}}", records.join(","));
        assert!(agrees(compact.as_bytes()));
        // Pretty-printed, with lines between and inside the records.
        let pretty = serde_json::to_string_pretty(&serde_json::json!({
            "records": records
                .iter()
                .map(|r| serde_json::from_str::<serde_json::Value>(r).expect("json"))
                .collect::<Vec<_>>()
        }))
        .expect("pretty");
        assert!(agrees(pretty.as_bytes()));
        assert!(agrees(format!("\n\n{pretty}\r\n").as_bytes()));
        assert!(agrees(b"{ \"records\" :\n[{\"a\":1}]}"));
        for body in [
            &b"{\"records\":[]}"[..],
            b"{\"records\":[ {} , {\"a\":[1,{\"b\":\"]}\"}]} ,{\"c\":\"\\\\\"} ]}",
            b"{\"records\":[{\"q\":\"it's \\\"x\\\" \\u0041\"}]}  ",
            "{\"records\":[{\"\u{e9}\":\"\u{1F600}\"}]}".as_bytes(),
        ] {
            assert!(agrees(body), "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn other_bodies_are_declined() {
        for body in [
            &b""[..],
            b"{\"a\":1}",
            b"{\"records\":[{\"a\":1}],\"more\":2}",
            b"{\"records\":[{\"a\":1}]}{\"records\":[]}",
            b"{\"records\":[{\"a\":1}]",
            b"{\"records\":[{\"a\":1}",
            b"{\"records\":[1,2]}",
            b"{\"records\":[{'a':'b'}]}",
            b"{\"records\":[{\"a\":\"raw\nline\"}]}",
            b"{\"records\":[{\"a\":\"tab\there\"}]}",
            b"{\"Records\":[{\"a\":1}]}",
            b"\xef\xbb\xbf{\"records\":[{\"a\":1}]}",
            b"[{\"a\":1}]",
            b"{\"records\":[{\"a\":1}}]}",
        ] {
            assert!(!agrees(body), "{}", String::from_utf8_lossy(body));
        }
        // Oversize records go the streaming way (cut and dead-lettered there).
        assert!(plain_envelope(b"{\"records\":[{\"a\":1}]}", 6).is_none());
        assert!(plain_envelope(b"{\"records\":[{\"a\":1}]}", 7).is_some());
    }

    /// Every single-byte replacement at every position of a compact envelope: accepted or
    /// not, never a different split.
    #[test]
    fn edited_bodies_never_split_differently() {
        let records = fixture_records();
        let body = format!("{{\"records\":[{}]}}", records[..12].join(","));
        let bytes = body.as_bytes();
        let mut accepted = 0;
        for at in 0..bytes.len() {
            for b in [
                b'"', b'\\', b'{', b'}', b'[', b']', b',', b'\'', b'\n', b' ', b'a', 0x01,
            ] {
                let mut edited = bytes.to_vec();
                edited[at] = b;
                accepted += usize::from(agrees(&edited));
            }
            accepted += usize::from(agrees(&bytes[..at]));
        }
        assert!(accepted > bytes.len(), "accepted {accepted} edits");
    }
}
