//! CEF codec: dictionary checks, escaping, truncation, IPv6 special mappings, and every line
//! accepted by the strict test parser, lognormalizer (liblognorm) and PyPI cefp with every
//! field intact.
mod support;

use azlog_codecs::cef::{encode, CefConfig, CefOptions, MapError};
use azlog_plugin_api::{Record, Value};
use support::parsers::parse_cef;
use support::records::{hostile_values, realistic, rec, s, T0_NS};
use support::validators::{cefp, lognormalize};

fn line(r: &Record, cfg: &CefConfig) -> String {
    let mut out = String::new();
    encode(r, cfg, &mut out);
    out
}

/// What an extension value decodes to: trimmed, C0 controls other than TAB/CR/LF → U+FFFD,
/// cut to `max` characters with `…` when longer.
fn ext_expect(v: &str, max: usize) -> String {
    let t: String = v
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_control() && !matches!(c, '\t' | '\r' | '\n') {
                '\u{FFFD}'
            } else {
                c
            }
        })
        .collect();
    cut(t, max)
}

/// What a header field decodes to: trimmed, every control character → space, cut to `max`.
fn header_expect(v: &str, max: usize) -> String {
    let t: String = v
        .trim()
        .chars()
        .map(|c| if c.is_ascii_control() { ' ' } else { c })
        .collect();
    cut(t, max)
}

fn cut(t: String, max: usize) -> String {
    if t.chars().count() <= max {
        t
    } else {
        let mut c: String = t.chars().take(max - 1).collect();
        c.push('…');
        c
    }
}

#[test]
fn golden_sign_in_line() {
    let cfg = CefConfig::builtin().expect("built-in map");
    let got = line(&realistic()[0], &cfg);
    assert_eq!(
        got,
        "CEF:0|Microsoft|Microsoft Entra ID Sign-in Logs|1.0|Sign-in activity|Sign-in activity|2|\
         rt=1714558830123 act=Sign-in activity outcome=success cat=SignInLogs \
         externalId=3c1d5a2e-8f34-4a61-9a4f-0d5f2b7e1c00 \
         deviceExternalId=72f988bf-86f1-41af-91ab-2d7cd011db47 deviceFacility=azure.signinlogs \
         src=203.0.113.42 suser=alice@contoso.com suid=4f2a9c1e-7b3d-4e8a-9c61-2d8f0e5b7a10 \
         sntdom=contoso.com requestClientApplication=Mozilla/5.0 (Windows NT 10.0; Win64; x64) \
         AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.0.0 \
         cs2Label=Correlation ID cs2=b2f4c6d8-1a3b-4c5d-8e9f-0a1b2c3d4e5f \
         cs5Label=Azure Region cs5=westeurope deviceCustomDate1Label=Event Created \
         deviceCustomDate1=1714558831500"
    );
}

#[test]
fn ipv6_source_goes_to_c6a2_with_its_label_and_mapped_v4_stays_v4() {
    let cfg = CefConfig::builtin().expect("map");
    let r = rec(
        T0_NS,
        vec![
            ("event.action", s("x")),
            ("source.ip", s("2001:db8::1")),
            ("destination.ip", s("::ffff:192.0.2.1")),
        ],
    );
    let p = parse_cef(&line(&r, &cfg)).expect("parse");
    assert_eq!(p.ext.get("c6a2").map(String::as_str), Some("2001:db8::1"));
    assert_eq!(
        p.ext.get("c6a2Label").map(String::as_str),
        Some("Source IPv6 Address")
    );
    assert!(!p.ext.contains_key("src"));
    assert_eq!(p.ext.get("dst").map(String::as_str), Some("192.0.2.1"));

    let r = rec(
        T0_NS,
        vec![
            ("destination.ip", s("fe80::1")),
            ("source.ip", s("not-an-ip")),
        ],
    );
    let mut out = String::new();
    let stats = encode(&r, &cfg, &mut out);
    let p = parse_cef(&out).expect("parse");
    assert_eq!(p.ext.get("c6a3").map(String::as_str), Some("fe80::1"));
    assert_eq!(
        p.ext.get("c6a3Label").map(String::as_str),
        Some("Destination IPv6 Address")
    );
    assert!(!p.ext.contains_key("src") && !p.ext.contains_key("c6a2"));
    assert_eq!(
        stats.skipped, 1,
        "garbage in source.ip is skipped and counted"
    );
    assert_eq!(p.signature, "unknown");
    assert_eq!(p.severity, "Unknown");
}

#[test]
fn documented_lengths_are_enforced_with_a_visible_marker() {
    let cfg = CefConfig::builtin().expect("map");
    let long = "é".repeat(3000);
    let r = rec(
        T0_NS,
        vec![
            ("event.action", s(&"A".repeat(2000))),
            ("message", s(&long)),
            ("event.id", s(&"1".repeat(41))),
            ("azure.resource.id", s(&"r".repeat(4000))),
        ],
    );
    let mut out = String::new();
    let stats = encode(&r, &cfg, &mut out);
    let p = parse_cef(&out).expect("parse");
    assert_eq!(p.signature, format!("{}…", "A".repeat(1022)));
    assert_eq!(p.name, format!("{}…", "A".repeat(511)));
    assert_eq!(p.ext["act"], format!("{}…", "A".repeat(62)));
    assert_eq!(p.ext["msg"], format!("{}…", "é".repeat(1022)));
    assert_eq!(p.ext["externalId"], format!("{}…", "1".repeat(39)));
    assert_eq!(
        p.ext["cs1"],
        "r".repeat(4000),
        "exactly the maximum is not cut"
    );
    assert_eq!(stats.truncated, 5);

    let cfg = CefConfig::load(&CefOptions {
        truncation_marker: Some("[cut]".into()),
        ..Default::default()
    })
    .expect("map");
    let p = parse_cef(&line(&r, &cfg)).expect("parse");
    assert_eq!(p.ext["act"], format!("{}[cut]", "A".repeat(58)));
}

#[test]
fn severity_is_clamped_or_passes_words() {
    let cfg = CefConfig::builtin().expect("map");
    for (v, want) in [
        (Value::Int(42), "10"),
        (Value::Int(-3), "0"),
        (Value::Int(7), "7"),
        (s("high"), "High"),
        (s("9"), "9"),
        (s("bogus"), "Unknown"),
    ] {
        let r = rec(T0_NS, vec![("event.severity", v)]);
        assert_eq!(parse_cef(&line(&r, &cfg)).expect("parse").severity, want);
    }
}

#[test]
fn field_map_errors_name_the_problem() {
    let base = "[header]\nvendor='V'\nproduct='P'\nversion='1'\nsignature=['event.action']\nname=['event.action']\nseverity=['event.severity']\n";
    let err = |ext: &str| match CefConfig::from_toml_str(
        &format!("{base}{ext}"),
        "test.toml",
        &CefOptions::default(),
    ) {
        Err(MapError::Invalid { origin, message }) => {
            assert_eq!(origin, "test.toml");
            message
        }
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("accepted invalid map: {ext}"),
    };
    assert!(err("[[extension]]\nkey='art'\nfrom=['x']\n").contains("set by ArcSight"));
    assert!(err("[[extension]]\nkey='eventId'\nfrom=['x']\n").contains("set by ArcSight"));
    assert!(err("[[extension]]\nkey='sourceUser'\nfrom=['x']\n").contains("not in the CEF v27"));
    assert!(err("[[extension]]\nkey='cs1'\nfrom=['x']\n").contains("needs a `label`"));
    assert!(
        err("[[extension]]\nkey='suser'\nlabel='x'\nfrom=['x']\n").contains("no label companion")
    );
    assert!(err(
        "[[extension]]\nkey='src'\nfrom=['a']\n[[extension]]\nkey='c6a2'\nlabel='l'\nfrom=['b']\n"
    )
    .contains("more than one"));
    assert!(err("[[extension]]\nkey='suser'\nfrom=[]\n").contains("at least one"));
    assert!(err("[[extension]]\nkey='bad-key'\nfrom=['x']\n").contains("alphanumeric"));
    // A user-defined key is fine when declared.
    CefConfig::from_toml_str(
        &format!("{base}[[extension]]\nkey='ContosoAzlogTenant'\ncustom=true\nfrom=['azure.tenant_id']\n"),
        "t",
        &CefOptions::default(),
    )
    .expect("custom key");
    match CefConfig::from_toml_str("[header]\nvendor=1", "bad.toml", &CefOptions::default()) {
        Err(MapError::Toml { origin, source }) => {
            assert_eq!(origin, "bad.toml");
            assert!(source.to_string().contains("line"), "{source}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn user_field_map_file_replaces_the_builtin() {
    let dir = std::env::temp_dir().join(format!("azlog-cef-map-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("cef.toml");
    std::fs::write(
        &path,
        "[header]\nvendor='Contoso'\nproduct='Hub'\nversion='2'\nsignature=['event.code']\nname=['event.code']\nseverity=['event.severity']\n[[extension]]\nkey='duser'\nfrom=['user.name']\n",
    )
    .expect("write");
    let cfg = CefConfig::load(&CefOptions {
        field_map: Some(path.display().to_string()),
        ..Default::default()
    })
    .expect("load");
    let r = rec(
        T0_NS,
        vec![("event.code", s("4624")), ("user.name", s("bob"))],
    );
    assert_eq!(
        line(&r, &cfg),
        "CEF:0|Contoso|Hub|2|4624|4624|Unknown|duser=bob"
    );
    let missing = CefConfig::load(&CefOptions {
        field_map: Some("/nonexistent/cef.toml".into()),
        ..Default::default()
    });
    assert!(matches!(missing, Err(MapError::Io { .. })));
}

/// Records carrying one hostile value in every mapped text field, plus long non-Latin names and
/// long URLs.
fn hostile_records() -> Vec<(Record, String)> {
    let mut v: Vec<(Record, String)> = hostile_values()
        .into_iter()
        .map(|h| {
            (
                rec(
                    T0_NS,
                    vec![
                        ("event.action", s(h)),
                        ("rule.name", s(h)),
                        ("user.name", s(h)),
                        ("message", s(h)),
                        ("url.original", s(h)),
                        ("azure.resource.id", s(h)),
                        ("user_agent.original", s(h)),
                        ("event.reason", s(h)),
                        ("event.dataset", s(h)),
                    ],
                ),
                h.to_string(),
            )
        })
        .collect();
    let long_name = "Đặng Thị Hương 李小龍 Владимир ".repeat(60);
    let long_url = format!(
        "https://example.com/search?q={}&x=1|2",
        "%E6%97%A5本=\\".repeat(900)
    );
    for h in [long_name, long_url] {
        v.push((
            rec(
                T0_NS,
                vec![
                    ("event.action", s(&h)),
                    ("rule.name", s(&h)),
                    ("user.name", s(&h)),
                    ("message", s(&h)),
                    ("url.original", s(&h)),
                    ("azure.resource.id", s(&h)),
                    ("user_agent.original", s(&h)),
                    ("event.reason", s(&h)),
                    ("event.dataset", s(&h)),
                ],
            ),
            h,
        ));
    }
    v
}

fn check_hostile(p: &support::parsers::Cef, h: &str) {
    assert_eq!(p.signature, header_expect(h, 1023), "signature");
    assert_eq!(p.name, header_expect(h, 512), "name");
    for (key, max) in [
        ("act", 63),
        ("suser", 1023),
        ("msg", 1023),
        ("request", 1023),
        ("cs1", 4000),
        ("cs6", 4000),
        ("requestClientApplication", 1023),
        ("reason", 1023),
        ("deviceFacility", 1023),
    ] {
        assert_eq!(p.ext.get(key), Some(&ext_expect(h, max)), "{key} for {h:?}");
    }
    assert_eq!(
        p.ext.get("cs1Label").map(String::as_str),
        Some("Azure Resource ID")
    );
    assert_eq!(
        p.ext.len(),
        12,
        "no forged or lost keys: {:?}",
        p.ext.keys().collect::<Vec<_>>()
    );
}

#[test]
fn injection_corpus_yields_one_intact_event_per_record() {
    let cfg = CefConfig::builtin().expect("map");
    for (r, h) in hostile_records() {
        let l = line(&r, &cfg);
        assert!(
            !l.contains('\n') && !l.contains('\r'),
            "raw line break in {l:?}"
        );
        let p = parse_cef(&l).unwrap_or_else(|e| panic!("strict parse of {l:?}: {e}"));
        check_hostile(&p, &h);
    }
}

fn all_lines() -> Vec<String> {
    let cfg = CefConfig::builtin().expect("map");
    realistic()
        .iter()
        .chain(hostile_records().iter().map(|(r, _)| r))
        .map(|r| line(r, &cfg))
        .collect()
}

#[test]
fn every_line_is_accepted_by_lognormalizer_with_the_same_values() {
    let lines = all_lines();
    let Some(results) = lognormalize(&lines) else {
        return;
    };
    for (l, res) in lines.iter().zip(results) {
        let ln = res.unwrap_or_else(|e| panic!("lognormalizer rejected {l:?}: {e}"));
        let p = parse_cef(l).expect("strict parse");
        assert_eq!(ln["DeviceVendor"], p.vendor.as_str());
        assert_eq!(ln["DeviceProduct"], p.product.as_str());
        assert_eq!(ln["SignatureID"], p.signature.as_str());
        assert_eq!(ln["Name"], p.name.as_str());
        assert_eq!(ln["Severity"], p.severity.as_str());
        let ext = ln["Extensions"].as_object().expect("Extensions object");
        assert_eq!(ext.len(), p.ext.len(), "key count for {l:?}");
        for (k, v) in &p.ext {
            assert_eq!(
                ext.get(k).and_then(|x| x.as_str()),
                Some(v.as_str()),
                "{k} in {l:?}"
            );
        }
    }
}

#[test]
fn every_line_round_trips_through_cefp() {
    let lines = all_lines();
    let Some(results) = cefp(&lines) else { return };
    for (l, res) in lines.iter().zip(results) {
        let c = res.unwrap_or_else(|e| panic!("cefp rejected {l:?}: {e}"));
        let p = parse_cef(l).expect("strict parse");
        assert_eq!(c["version"], "0");
        assert_eq!(c["device"]["vendor"], p.vendor.as_str());
        assert_eq!(c["device"]["product"], p.product.as_str());
        assert_eq!(c["device"]["version"], p.device_version.as_str());
        assert_eq!(c["device"]["event_class_id"], p.signature.as_str());
        assert_eq!(c["name"], p.name.as_str());
        assert_eq!(c["severity"], p.severity.as_str());
        let ext = c["extension"].as_object().expect("extension");
        assert_eq!(ext.len(), p.ext.len(), "key count for {l:?}: {ext:?}");
        for (k, v) in &p.ext {
            assert_eq!(
                ext.get(k).and_then(|x| x.as_str()),
                Some(v.as_str()),
                "{k} in {l:?}"
            );
        }
    }
}

#[test]
#[ignore = "prints sample lines; run with --ignored --nocapture"]
fn print_samples() {
    let cfg = CefConfig::builtin().expect("map");
    for (r, _) in hostile_records().iter().take(12) {
        println!("{}", line(r, &cfg));
    }
}
