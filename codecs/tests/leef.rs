//! LEEF codec: header forms (2.0 with tab / `^` / hex delimiters, 1.0), option checks,
//! sanitizing, devTime, and the injection corpus read back intact by a strict parser written
//! from the IBM LEEF guide.
mod support;

use azlog_codecs::leef::{encode, LeefConfig, LeefOptions, LeefVersion};
use azlog_plugin_api::{Record, Value};
use support::parsers::parse_leef;
use support::records::{hostile_values, realistic, rec, s, T0_NS};

fn line(r: &Record, cfg: &LeefConfig) -> String {
    let mut out = String::new();
    encode(r, cfg, &mut out);
    out
}

fn cfg(version: Option<&str>, delimiter: Option<&str>) -> LeefConfig {
    LeefConfig::load(&LeefOptions {
        version: version.map(Into::into),
        delimiter: delimiter.map(Into::into),
        ..Default::default()
    })
    .expect("leef config")
}

/// What a value reads back as: trimmed; the delimiter, CR and LF → space; TAB kept unless it is
/// the delimiter; other C0 controls → U+FFFD; cut to `max` characters with `…`.
fn expect(v: &str, delim: char, max: Option<usize>) -> String {
    let t: String = v
        .trim()
        .chars()
        .map(|c| {
            if c == delim || c == '\r' || c == '\n' {
                ' '
            } else if c == '\t' {
                '\t'
            } else if c.is_ascii_control() {
                '\u{FFFD}'
            } else {
                c
            }
        })
        .collect();
    match max {
        Some(m) if t.chars().count() > m => {
            let mut c: String = t.chars().take(m - 1).collect();
            c.push('…');
            c
        }
        _ => t,
    }
}

#[test]
fn leef2_tab_default_header_and_attributes() {
    let c = LeefConfig::builtin().expect("builtin");
    assert_eq!(c.version(), LeefVersion::V2);
    let l = line(&realistic()[0], &c);
    assert!(
        l.starts_with("LEEF:2.0|Microsoft|Microsoft Entra ID Sign-in Logs|1.0|Sign-in activity|x09|devTime=1714558830123\tcat=SignInLogs\tsev=2\tsrc=203.0.113.42\t"),
        "{l}"
    );
    let p = parse_leef(&l).expect("strict parse");
    assert_eq!(p.delimiter, '\t');
    assert_eq!(p.attrs["usrName"], "alice@contoso.com");
    assert_eq!(p.attrs["identSrc"], "203.0.113.42");
    assert_eq!(p.attrs["realm"], "72f988bf-86f1-41af-91ab-2d7cd011db47");
    assert_eq!(p.attrs["outcome"], "success");
    assert!(!p.attrs.contains_key("devTimeFormat"));
}

#[test]
fn leef1_has_no_delimiter_field_and_caret_and_hex_forms_work() {
    let r = &realistic()[5];
    let l1 = line(r, &cfg(Some("1.0"), None));
    assert!(
        l1.starts_with("LEEF:1.0|Microsoft|Azure Activity Log|1.0|")
            || l1.starts_with("LEEF:1.0|Microsoft|Azure Resource Manager|1.0|"),
        "{l1}"
    );
    let p = parse_leef(&l1).expect("1.0 parse");
    assert_eq!(p.version, "1.0");
    assert_eq!(p.event_id, "MICROSOFT.NETWORK/NETWORKSECURITYGROUPS/DELETE");
    assert_eq!(p.attrs["sev"], "2");

    for d in ["^", "x5E", "0x5e"] {
        let l = line(r, &cfg(None, Some(d)));
        assert!(
            l.contains("|MICROSOFT.NETWORK/NETWORKSECURITYGROUPS/DELETE|^|devTime="),
            "{d}: {l}"
        );
        let p = parse_leef(&l).expect("parse");
        assert_eq!(p.delimiter, '^');
        assert_eq!(p.attrs["resourceGroup"], "rg-app");
    }
    let l = line(r, &cfg(None, Some("x1F")));
    assert!(l.contains("|x1F|devTime="), "{l}");
    assert_eq!(parse_leef(&l).expect("parse").attrs["httpStatus"], "202");
}

#[test]
fn bad_options_are_refused() {
    for (v, d) in [
        (Some("1.0"), Some("^")),
        (None, Some("=")),
        (None, Some("|")),
        (None, Some("x7C")),
        (None, Some("ab")),
        (Some("3.0"), None),
        (None, Some("a")),
    ] {
        let r = LeefConfig::load(&LeefOptions {
            version: v.map(Into::into),
            delimiter: d.map(Into::into),
            ..Default::default()
        });
        assert!(r.is_err(), "{v:?} {d:?} accepted");
    }
    let r = LeefConfig::load(&LeefOptions {
        delimiter: Some("^".into()),
        replacement: Some("^".into()),
        ..Default::default()
    });
    assert!(r.is_err(), "replacement equal to the delimiter accepted");
    let base = "[header]\nvendor='V'\nproduct='P'\nversion='1'\nevent_id=['event.action']\n";
    for (ext, why) in [
        ("[[attribute]]\nkey='usrname'\nfrom=['x']\n", "predefined"),
        (
            "[[attribute]]\nkey='isLoginEvent'\nfrom=['x']\n",
            "reserved",
        ),
        (
            "[[attribute]]\nkey='sev'\ncustom=true\nfrom=['x']\n",
            "predefined",
        ),
        (
            "[[attribute]]\nkey='a b'\ncustom=true\nfrom=['x']\n",
            "alphanumeric",
        ),
    ] {
        let e =
            LeefConfig::from_toml_str(&format!("{base}{ext}"), "t.toml", &LeefOptions::default())
                .expect_err(ext)
                .to_string();
        assert!(e.contains(why) && e.contains("t.toml"), "{e}");
    }
}

#[test]
fn severity_ports_and_old_timestamps() {
    let c = LeefConfig::builtin().expect("builtin");
    let r = rec(
        951_782_400_000_000_000,
        vec![
            ("event.severity", Value::Int(0)),
            ("source.port", Value::Int(70_000)),
            ("destination.port", Value::Int(443)),
            ("source.ip", s("garbage")),
            ("destination.ip", s("2001:db8::2")),
        ],
    );
    let mut out = String::new();
    let stats = encode(&r, &c, &mut out);
    let p = parse_leef(&out).expect("parse");
    assert_eq!(p.attrs["sev"], "1", "0 is clamped into LEEF's 1-10");
    assert!(!p.attrs.contains_key("srcPort") && !p.attrs.contains_key("src"));
    assert_eq!(
        stats.skipped, 3,
        "port out of range, garbage IP twice (src, identSrc)"
    );
    assert_eq!(p.attrs["dstPort"], "443");
    assert_eq!(p.attrs["dst"], "2001:db8::2");
    assert_eq!(p.attrs["devTime"], "2000-02-29T00:00:00.000+0000");
    assert_eq!(p.attrs["devTimeFormat"], "yyyy-MM-dd'T'HH:mm:ss.SSSZ");
    let r = rec(T0_NS, vec![("event.severity", Value::Int(99))]);
    assert_eq!(parse_leef(&line(&r, &c)).expect("parse").attrs["sev"], "10");
}

#[test]
fn injection_corpus_yields_one_intact_event_per_record() {
    let long_name = "Đặng Thị Hương 李小龍 Владимир ".repeat(20);
    let long_url = format!("https://example.com/q?x={}", "%E6%97%A5本=|\\^".repeat(900));
    let mut values: Vec<String> = hostile_values().into_iter().map(String::from).collect();
    values.push(long_name);
    values.push(long_url);
    for (version, delim) in [
        (None, None),
        (Some("1.0"), None),
        (None, Some("^")),
        (None, Some("x1F")),
        (None, Some("¦")),
    ] {
        let c = cfg(version, delim);
        for h in &values {
            let r = rec(
                T0_NS,
                vec![
                    ("event.action", s(h)),
                    ("user.name", s(h)),
                    ("message", s(h)),
                    ("url.original", s(h)),
                    ("azure.resource.id", s(h)),
                    ("user_agent.original", s(h)),
                    ("event.dataset", s(h)),
                ],
            );
            let l = line(&r, &c);
            assert!(
                !l.contains('\n') && !l.contains('\r'),
                "line break in {l:?}"
            );
            let p = parse_leef(&l).unwrap_or_else(|e| panic!("strict parse of {l:?}: {e}"));
            let d = c.delimiter();
            let header: String = h
                .trim()
                .chars()
                .map(|c| {
                    if c == '|' || c.is_ascii_control() {
                        ' '
                    } else {
                        c
                    }
                })
                .collect();
            let header = if header.chars().count() > 255 {
                format!("{}…", header.chars().take(254).collect::<String>())
            } else {
                header
            };
            assert_eq!(p.event_id, header);
            assert_eq!(
                p.attrs["usrName"],
                expect(h, d, Some(255)),
                "usrName {delim:?}"
            );
            for k in [
                "description",
                "url",
                "resourceId",
                "userAgent",
                "cat",
                "dataset",
            ] {
                assert_eq!(
                    p.attrs[k],
                    expect(h, d, None),
                    "{k} with delimiter {delim:?}"
                );
            }
            assert_eq!(
                p.attrs.len(),
                8,
                "devTime + 7 mapped, no forged keys: {:?}",
                p.attrs.keys().collect::<Vec<_>>()
            );
        }
    }
}

#[test]
fn realistic_records_parse_strictly() {
    for c in [
        LeefConfig::builtin().expect("b"),
        cfg(Some("1.0"), None),
        cfg(None, Some("^")),
    ] {
        for r in realistic() {
            let l = line(&r, &c);
            let p = parse_leef(&l).unwrap_or_else(|e| panic!("{l}: {e}"));
            assert!(
                p.attrs.contains_key("devTime") && p.attrs.contains_key("sev"),
                "{l}"
            );
        }
    }
}
