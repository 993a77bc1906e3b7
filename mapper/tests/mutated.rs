//! Broken and hostile input: every fixture record, mutated (cut short, bytes deleted, quotes,
//! escapes, brackets, XML, resource-id pieces, huge numbers and non-ASCII text inserted at
//! random places), either maps or is refused with an error for the dead-letter store. It
//! never panics, and what maps renders as one line of valid ECS JSON.
mod common;

use std::fs;

use azlog_mapper::{MapInput, Position};
use common::{ecs_line, envelope_records, fixtures_dir, mapper, ENQUEUED_NS, INGESTED_NS};

/// What gets inserted: JSON structure and escapes, text that conversions parse (XML,
/// resource ids, numbers, times), and multi-byte characters.
const SNIPPETS: &[&str] = &[
    "\"",
    "\\",
    "\\\"",
    "\\n",
    "\\u0000",
    "\\ud800",
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "'",
    "\n",
    "\u{e9}",
    "\u{1F600}",
    "1e999",
    "-",
    "null",
    "99999999999999999999999999",
    "<",
    "&amp;",
    "&#x",
    "</Event>",
    "<Data Name=\\\"x\\\">",
    "/subscriptions/",
    "PROVIDERS/",
    "2024-02-30T25:61:61Z",
    "8/22/2022 6:07:16 PM",
    "10.0.0.1:99999",
];

/// A small deterministic generator (the test must fail the same way every time).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) as usize) % n.max(1)
    }

    /// A char boundary of `s`.
    fn boundary(&mut self, s: &str) -> usize {
        let mut at = self.below(s.len() + 1);
        while !s.is_char_boundary(at) {
            at -= 1;
        }
        at
    }
}

fn mutate(record: &str, rng: &mut Lcg) -> String {
    let mut s = record.to_owned();
    for _ in 0..=rng.below(3) {
        let at = rng.boundary(&s);
        match rng.below(10) {
            0..=5 => s.insert_str(at, SNIPPETS[rng.below(SNIPPETS.len())]),
            6..=8 => {
                let mut end = (at + 1 + rng.below(8)).min(s.len());
                while !s.is_char_boundary(end) {
                    end += 1;
                }
                s.replace_range(at..end, "");
            }
            _ => s.truncate(at),
        }
    }
    s
}

#[test]
fn mutated_records_map_or_are_refused_and_never_panic() {
    let mapper = mapper();
    let mut rng = Lcg(0x5eed_2026);
    let (mut mapped, mut refused) = (0usize, 0usize);
    let mut files: Vec<_> = fs::read_dir(fixtures_dir())
        .expect("fixtures folder")
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let name = p.to_string_lossy();
            name.ends_with(".json") && !name.ends_with(".ecs.ndjson")
        })
        .collect();
    files.sort();
    assert!(files.len() > 10, "fixtures found: {}", files.len());
    for path in &files {
        let text = fs::read_to_string(path).expect("fixture text");
        for (index, record) in envelope_records(&text).iter().enumerate() {
            for round in 0..60 {
                let json = mutate(record, &mut rng);
                let input = MapInput {
                    json: &json,
                    position: Position::default(),
                    enqueued_ns: Some(ENQUEUED_NS),
                };
                let at = format!("{} record {index} mutation {round}: {json}", path.display());
                match mapper.map(input, INGESTED_NS) {
                    Ok(r) => {
                        let line = ecs_line(&r);
                        assert!(!line.contains('\n'), "{at}: the ECS line breaks");
                        let doc: serde_json::Value =
                            serde_json::from_str(&line).unwrap_or_else(|e| {
                                panic!("{at}: ECS output is not JSON ({e}): {line}")
                            });
                        assert!(doc.get("@timestamp").is_some(), "{at}: no @timestamp");
                        mapped += 1;
                    }
                    Err(e) => {
                        assert!(!e.to_string().is_empty(), "{at}: an empty reason");
                        refused += 1;
                    }
                }
            }
        }
    }
    eprintln!("{mapped} mutated records mapped, {refused} refused");
    // Both outcomes occur, so the mutations reach the mapper's conversions and its error path.
    assert!(
        mapped > 1000 && refused > 1000,
        "mapped {mapped}, refused {refused}"
    );
}
