//! Golden tests: every `tests/fixtures/records/<family>.json` maps to the ECS lines of
//! `<family>.ecs.ndjson` (regenerate with `UPDATE_GOLDEN=1`, then read the diff), every
//! record is detected as the family its file is named after, and the key ECS fields hold
//! what the source records say.
mod common;

use std::collections::BTreeMap;
use std::fs;

use azlog_mapper::{Record, Value};
use common::{ecs_line, envelope_records, fixtures_dir, map_fixture, mapper};

/// Every fixture file: (family = file stem, raw records).
fn fixtures() -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    let dir = fixtures_dir();
    let entries = fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let Some(family) = name.strip_suffix(".json") else {
            continue;
        };
        let text = fs::read_to_string(&path).unwrap();
        out.insert(family.to_string(), envelope_records(&text));
    }
    assert!(out.len() >= 30, "only {} fixture files", out.len());
    out
}

/// Maps every record of one family's fixture.
fn mapped(family: &str) -> Vec<Record> {
    let path = fixtures_dir().join(format!("{family}.json"));
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let m = mapper();
    envelope_records(&text)
        .iter()
        .enumerate()
        .map(|(i, json)| map_fixture(&m, family, i, json))
        .collect()
}

/// Records whose payload keys come in a sequence seen before are laid out from a per-thread
/// table: three rounds over every fixture with one mapper, on one thread, give the lines of
/// a fresh mapper (one per family, nothing remembered) every time.
#[test]
fn repeated_key_sequences_map_as_the_first_time() {
    let m = mapper();
    let all = fixtures();
    let fresh: Vec<Vec<String>> = all
        .iter()
        .map(|(family, records)| {
            let cold = mapper();
            records
                .iter()
                .enumerate()
                .map(|(i, json)| ecs_line(&map_fixture(&cold, family, i, json)))
                .collect()
        })
        .collect();
    for round in 0..3 {
        for ((family, records), want) in all.iter().zip(&fresh) {
            for (i, json) in records.iter().enumerate() {
                let got = ecs_line(&map_fixture(&m, family, i, json));
                assert_eq!(got, want[i], "round {round}: {family} record {i}");
            }
        }
    }
}

#[test]
fn golden_files_match() {
    let m = mapper();
    let update = std::env::var("UPDATE_GOLDEN").is_ok_and(|v| v == "1");
    let mut mismatches = Vec::new();
    for (family, records) in fixtures() {
        let lines: Vec<String> = records
            .iter()
            .enumerate()
            .map(|(i, json)| ecs_line(&map_fixture(&m, &family, i, json)))
            .collect();
        let golden = fixtures_dir().join(format!("{family}.ecs.ndjson"));
        let mut text = lines.join("\n");
        text.push('\n');
        if update {
            fs::write(&golden, &text).unwrap();
            continue;
        }
        let expected = fs::read_to_string(&golden)
            .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_GOLDEN=1)", golden.display()));
        let expected: Vec<&str> = expected.lines().collect();
        assert_eq!(expected.len(), lines.len(), "{family}: record count");
        for (i, (want, got)) in expected.iter().zip(&lines).enumerate() {
            if want != got {
                mismatches.push(format!("{family}[{i}]\n  want {want}\n  got  {got}"));
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "golden mismatches:\n{}",
        mismatches.join("\n")
    );
}

#[test]
fn every_fixture_is_detected_as_its_family() {
    let m = mapper();
    for (family, records) in fixtures() {
        for (i, json) in records.iter().enumerate() {
            let r = map_fixture(&m, &family, i, json);
            assert_eq!(
                r.get_str("azlog.family"),
                Some(family.as_str()),
                "{family}[{i}]"
            );
        }
    }
}

#[test]
fn ecs_invariants_hold_for_every_fixture() {
    let m = mapper();
    for (family, records) in fixtures() {
        for (i, json) in records.iter().enumerate() {
            let r = map_fixture(&m, &family, i, json);
            let at = format!("{family}[{i}]");
            let outcome = r.get_str("event.outcome");
            assert!(
                matches!(outcome, Some("success" | "failure" | "unknown")),
                "{at}: event.outcome {outcome:?}"
            );
            for key in ["event.category", "event.type"] {
                if let Some(v) = r.get(key) {
                    assert!(matches!(v, Value::List(_)), "{at}: {key} is {v:?}");
                }
            }
            for key in ["source.ip", "destination.ip"] {
                if let Some(v) = r.get(key) {
                    let text = v.as_str().unwrap_or_else(|| panic!("{at}: {key} {v:?}"));
                    assert!(
                        text.parse::<std::net::IpAddr>().is_ok(),
                        "{at}: {key} {text}"
                    );
                }
            }
            if let Some(d) = r.get("event.duration") {
                assert!(
                    d.as_i64().is_some_and(|n| n >= 0),
                    "{at}: event.duration {d:?}"
                );
            }
            if let Some(s) = r.get("event.severity") {
                assert!(
                    s.as_i64().is_some_and(|n| (0..=10).contains(&n)),
                    "{at}: severity {s:?}"
                );
            }
            assert_eq!(r.get_str("cloud.provider"), Some("azure"), "{at}");
            assert!(
                r.get_str("event.dataset").is_some(),
                "{at}: no event.dataset"
            );
        }
    }
}

// ---- key fields per family -------------------------------------------------------------

/// The expected text of a field (lists joined with `,`); `None` = must be absent.
fn check(r: &Record, at: &str, expected: &[(&str, Option<&str>)]) {
    for (key, want) in expected {
        let got = if *key == "@timestamp" {
            Some(rfc3339(r.timestamp_ns))
        } else {
            r.get(key).map(Value::to_text)
        };
        assert_eq!(got.as_deref(), *want, "{at}: {key}");
    }
}

fn rfc3339(ns: i64) -> String {
    let mut out = Vec::new();
    azlog_plugin_api::ecs::write_rfc3339_ns(ns, &mut out);
    String::from_utf8(out).unwrap()
}

/// Expected key fields of one record: (record index, [(key, expected text)]).
type Cases<'a> = [(usize, &'a [(&'a str, Option<&'a str>)])];

fn check_all(family: &str, cases: &Cases<'_>) {
    let records = mapped(family);
    for (i, expected) in cases {
        check(&records[*i], &format!("{family}[{i}]"), expected);
    }
}

const SUB: &str = "6d3b9f2a-1c4e-4b8a-9f0e-2a7c5d8e1b34";

#[test]
fn activity_log_key_fields() {
    check_all(
        "activity.administrative",
        &[
            (
                0,
                &[
                    ("@timestamp", Some("2024-05-14T09:12:31.481726300Z")),
                    (
                        "event.action",
                        Some("MICROSOFT.NETWORK/NETWORKSECURITYGROUPS/SECURITYRULES/WRITE"),
                    ),
                    ("event.outcome", Some("success")),
                    ("event.category", Some("configuration")),
                    ("event.type", Some("change")),
                    ("user.name", Some("alice@contoso.com")),
                    ("source.ip", Some("203.0.113.45")),
                    ("azure.resource.group", Some("rg-prod-web")),
                    ("azure.resource.provider", Some("microsoft.network")),
                    ("azure.resource.name", Some("nsg-web")),
                    ("azure.subscription_id", Some(SUB)),
                    ("event.duration", Some("1543000000")),
                    ("event.dataset", Some("azure.activitylogs")),
                ],
            ),
            (
                1,
                &[
                    // no `time`, only `timeStamp`; UPPER-CASE resourceId; legacy Delete category
                    ("@timestamp", Some("2018-03-07T14:23:51.991Z")),
                    ("azlog.timestamp_fallback", None),
                    ("event.type", Some("deletion")),
                    ("event.outcome", Some("unknown")),
                    ("azure.resource.group", Some("RG-TEST")),
                    ("azure.resource.provider", Some("microsoft.compute")),
                    ("azure.resource.name", Some("VM-OLD01")),
                    ("user.name", Some("bob@contoso.com")),
                ],
            ),
            (
                2,
                &[
                    ("event.outcome", Some("failure")),
                    ("source.ip", Some("2001:db8::5")),
                    ("user.name", None),
                    ("user.id", Some("22222222-3333-4444-5555-666666666666")),
                    ("event.severity", Some("7")),
                    ("log.level", Some("error")),
                ],
            ),
        ],
    );
    check_all(
        "activity.security",
        &[(
            1,
            &[
                ("event.action", Some("Microsoft.Security/pricings/write")),
                ("azure.category", Some("Security")),
                ("event.outcome", Some("success")),
                ("source.ip", None), // "<null>"
            ],
        )],
    );
    check_all(
        "defender.activity_alert",
        &[(
            0,
            &[
                ("event.kind", Some("alert")),
                (
                    "rule.name",
                    Some("Suspicious double extension file executed"),
                ),
                ("host.name", Some("vm-fin-02")),
                ("user.name", Some("carol")),
                ("process.pid", Some("6988")),
                ("event.severity", Some("8")),
                ("event.dataset", Some("azure.alerts")),
            ],
        )],
    );
    check_all(
        "activity.servicehealth",
        &[(
            1,
            &[
                ("event.severity", Some("2")),
                // Upper-cased resource id: the subscription in its canonical lower case.
                (
                    "azure.subscription_id",
                    Some("6d3b9f2a-1c4e-4b8a-9f0e-2a7c5d8e1b34"),
                ),
                (
                    "cloud.account.id",
                    Some("6d3b9f2a-1c4e-4b8a-9f0e-2a7c5d8e1b34"),
                ),
            ],
        )],
    );
    check_all(
        "activity.resourcehealth",
        &[(
            0,
            &[
                ("azure.activitylogs.health.current", Some("Unavailable")),
                ("event.severity", Some("10")),
            ],
        )],
    );
    check_all(
        "activity.alert",
        &[(
            0,
            &[
                ("event.kind", Some("alert")),
                ("rule.name", Some("cpu-high")),
            ],
        )],
    );
    check_all(
        "activity.autoscale",
        &[(
            1,
            &[
                ("event.outcome", Some("failure")),
                ("azure.activitylogs.autoscale.new_instances", Some("3")),
            ],
        )],
    );
    check_all(
        "activity.recommendation",
        &[(
            0,
            &[
                ("event.reason", Some("Security")),
                ("message", Some("Enable auditing on SQL servers")),
            ],
        )],
    );
    check_all(
        "activity.policy",
        &[(
            0,
            &[
                (
                    "event.action",
                    Some("Microsoft.Authorization/policies/deny/action"),
                ),
                ("event.outcome", Some("failure")),
                ("event.reason", Some("Deny")),
                ("rule.ruleset", Some("deny-public-storage")),
                ("user.name", Some("dave@contoso.com")),
            ],
        )],
    );
}

#[test]
fn entra_key_fields() {
    check_all(
        "entra.signin",
        &[
            (
                0,
                &[
                    ("@timestamp", Some("2024-05-21T08:15:02.441377100Z")),
                    ("event.outcome", Some("success")),
                    ("event.category", Some("authentication")),
                    ("user.name", Some("alice@contoso.com")),
                    ("source.ip", Some("203.0.113.45")),
                    ("source.geo.country_iso_code", Some("NL")),
                    ("cloud.region", None),
                    ("event.dataset", Some("azure.signinlogs")),
                ],
            ),
            (
                1,
                &[
                    ("event.outcome", Some("failure")),
                    ("azure.result_type", Some("50126")),
                ],
            ),
            // placeholders "<IP ADDRESS>" / "<CALLER IP ADDRESS>" are not IPs; no `time`
            (
                2,
                &[
                    ("source.ip", None),
                    ("@timestamp", Some("2024-05-21T08:17:00.000Z")),
                    ("azlog.timestamp_fallback", None),
                ],
            ),
            // Log Analytics SigninLogs row
            (
                3,
                &[
                    ("user.name", Some("peggy@contoso.com")),
                    ("source.ip", Some("192.0.2.10")),
                    ("event.outcome", Some("failure")),
                    ("source.geo.city_name", Some("Seattle")),
                ],
            ),
        ],
    );
    check_all(
        "entra.noninteractive_signin",
        &[(
            1,
            &[
                ("source.ip", Some("2001:db8:abcd::17")),
                ("event.outcome", Some("failure")),
            ],
        )],
    );
    check_all(
        "entra.serviceprincipal_signin",
        &[(
            0,
            &[
                ("user.name", Some("build-pipeline")),
                ("event.outcome", Some("success")),
            ],
        )],
    );
    check_all(
        "entra.managedidentity_signin",
        &[(0, &[("user.name", Some("vm-web-01")), ("source.ip", None)])],
    );
    check_all(
        "entra.msserviceprincipal_signin",
        &[(0, &[("source.ip", Some("40.90.1.2"))])],
    );
    check_all(
        "entra.adfs_signin",
        &[(
            1,
            &[
                ("event.outcome", Some("failure")),
                ("user.name", Some("carol@contoso.com")),
            ],
        )],
    );
    check_all(
        "entra.audit",
        &[
            (
                0,
                &[
                    ("event.action", Some("Add member to group")),
                    ("event.outcome", Some("success")),
                    ("event.type", Some("change")),
                    ("user.name", Some("alice@contoso.com")),
                    ("source.ip", Some("203.0.113.45")),
                    ("user.target.name", Some("peggy@contoso.com")),
                    ("event.dataset", Some("azure.auditlogs")),
                ],
            ),
            (
                1,
                &[
                    ("event.outcome", Some("failure")),
                    (
                        "user.name",
                        Some("Microsoft Azure AD Internal - Jit Provisioning"),
                    ),
                ],
            ),
            (2, &[("event.type", Some("deletion"))]),
        ],
    );
    check_all(
        "entra.provisioning",
        &[
            (
                0,
                &[
                    ("event.outcome", Some("success")),
                    ("event.type", Some("creation")),
                    ("event.duration", Some("1200000000")),
                ],
            ),
            (
                1,
                &[
                    ("event.outcome", Some("failure")),
                    ("event.reason", Some("Duplicate username in target")),
                ],
            ),
        ],
    );
    check_all(
        "entra.risky_users",
        &[(
            1,
            &[
                ("@timestamp", Some("2024-05-22T10:15:00.000Z")),
                ("user.risk.calculated_level", Some("none")),
            ],
        )],
    );
    check_all(
        "entra.user_risk_events",
        &[(
            0,
            &[
                ("event.kind", Some("alert")),
                ("rule.name", Some("anonymizedIPAddress")),
                ("source.ip", Some("185.220.101.4")),
            ],
        )],
    );
    check_all(
        "entra.graph_activity",
        &[
            (
                0,
                &[
                    ("http.response.status_code", Some("200")),
                    ("event.outcome", Some("success")),
                    ("event.action", Some("GET")),
                ],
            ),
            (
                1,
                &[
                    ("event.outcome", Some("failure")),
                    ("http.request.method", Some("POST")),
                ],
            ),
        ],
    );
}

#[test]
fn resource_log_key_fields() {
    check_all(
        "keyvault.audit",
        &[
            (
                0,
                &[
                    ("user.name", Some("alice@contoso.com")),
                    ("event.outcome", Some("success")),
                    ("azure.resource.name", Some("KV-PROD-01")),
                ],
            ),
            (
                1,
                &[
                    ("event.outcome", Some("failure")),
                    ("source.ip", Some("203.0.113.250")),
                    ("http.response.status_code", Some("403")),
                ],
            ),
        ],
    );
    check_all(
        "network.nsg_flow",
        &[(
            0,
            &[
                ("source.ip", Some("185.220.101.4")),
                ("destination.port", Some("3389")),
                ("network.transport", Some("tcp")),
                ("network.direction", Some("inbound")),
                ("rule.name", Some("DefaultRule_DenyAllInBound")),
                ("azure.nsg_flow.version", Some("2")),
            ],
        )],
    );
    check_all(
        "appgw.access",
        &[
            (
                0,
                &[
                    ("http.response.status_code", Some("200")),
                    ("event.duration", Some("47000000")),
                    ("source.port", Some("50123")),
                ],
            ),
            (
                1,
                &[("source.ip", None), ("event.outcome", Some("failure"))],
            ),
        ],
    );
    check_all(
        "appgw.firewall",
        &[(
            0,
            &[
                ("rule.id", Some("942100")),
                ("event.type", Some("denied")),
                ("event.action", Some("blocked")),
            ],
        )],
    );
    check_all(
        "firewall.classic",
        &[
            (
                0,
                &[
                    ("source.ip", Some("10.0.2.4")),
                    ("source.port", Some("51990")),
                    ("destination.ip", Some("13.69.65.17")),
                    ("destination.port", Some("443")),
                    ("event.action", Some("allow")),
                    ("rule.name", Some("allow-https")),
                    ("rule.ruleset", Some("rc-egress")),
                ],
            ),
            (
                1,
                &[
                    ("destination.domain", Some("www.badsite.example")),
                    ("destination.ip", None),
                    ("event.action", Some("deny")),
                ],
            ),
            (
                2,
                &[
                    ("event.action", Some("dnat")),
                    ("destination.nat.ip", Some("10.0.0.4")),
                ],
            ),
            (
                3,
                &[
                    ("event.kind", Some("alert")),
                    ("threat.indicator.description", Some("Bot Networks")),
                ],
            ),
            (
                4,
                &[
                    ("dns.question.name", Some("md-abc.blob.core.windows.net")),
                    ("dns.response_code", Some("NOERROR")),
                    ("source.port", Some("48197")),
                ],
            ),
        ],
    );
    check_all(
        "firewall.structured",
        &[
            (
                0,
                &[
                    ("source.ip", Some("10.0.2.4")),
                    ("event.action", Some("allow")),
                    ("network.transport", Some("tcp")),
                ],
            ),
            (
                2,
                &[
                    ("event.kind", Some("alert")),
                    ("event.severity", Some("8")),
                    ("rule.id", Some("2024897")),
                ],
            ),
            (
                3,
                &[
                    ("dns.question.name", Some("www.contoso.com.")),
                    ("dns.response_code", Some("NOERROR")),
                ],
            ),
        ],
    );
    check_all(
        "aks.kube_audit",
        &[
            (
                0,
                &[
                    ("event.action", Some("create")),
                    ("user.name", Some("alice@contoso.com")),
                    ("source.ip", Some("203.0.113.45")),
                ],
            ),
            // no `time`: the audit event's stageTimestamp inside properties.log
            (
                1,
                &[
                    ("@timestamp", Some("2024-05-23T13:01:02.000001Z")),
                    ("event.outcome", Some("failure")),
                    ("orchestrator.resource.type", Some("secrets")),
                ],
            ),
        ],
    );
    check_all(
        "storage.access",
        &[
            (
                0,
                &[
                    ("source.ip", Some("203.0.113.45")),
                    ("user.name", Some("alice@contoso.com")),
                    ("event.outcome", Some("success")),
                ],
            ),
            (
                1,
                &[
                    ("source.ip", Some("2001:db8::77")),
                    ("event.type", Some("change")),
                ],
            ),
            (
                2,
                &[
                    ("event.outcome", Some("failure")),
                    ("event.type", Some("deletion")),
                ],
            ),
        ],
    );
    check_all(
        "sql.security_audit",
        &[
            (
                0,
                &[
                    ("user.name", Some("app_user")),
                    ("event.outcome", Some("success")),
                ],
            ),
            (
                1,
                &[
                    ("event.outcome", Some("failure")),
                    ("event.category", Some("authentication,database")),
                ],
            ),
        ],
    );
    check_all(
        "resource.generic",
        &[
            (
                0,
                &[
                    ("@timestamp", Some("2022-08-22T18:07:16.000Z")),
                    ("source.ip", None),
                    ("event.outcome", Some("success")),
                ],
            ),
            (
                1,
                &[
                    ("@timestamp", Some("2024-05-23T14:00:00.000Z")),
                    ("event.duration", None),
                    ("source.ip", None),
                    ("event.severity", Some("7")),
                ],
            ),
            // no time at all: enqueued time + flag
            (
                2,
                &[
                    ("@timestamp", Some("2024-06-01T00:00:00.000Z")),
                    ("azlog.timestamp_fallback", Some("true")),
                ],
            ),
        ],
    );
}

#[test]
fn alert_and_windows_key_fields() {
    check_all(
        "defender.alert",
        &[
            (
                0,
                &[
                    ("event.kind", Some("alert")),
                    ("rule.name", Some("Suspicious command line detected")),
                    ("host.name", Some("vm-fin-02")),
                    ("user.name", Some("carol")),
                    ("source.ip", Some("10.0.5.6")),
                    ("threat.technique.id", Some("T1059,T1027")),
                    ("azure.resource.name", Some("vm-fin-02")),
                ],
            ),
            // SecurityAlert row: Entities is a JSON string, entity order differs
            (
                1,
                &[
                    ("host.name", Some("linux-jump-01")),
                    ("user.name", Some("root")),
                    ("source.ip", Some("198.51.100.23")),
                ],
            ),
        ],
    );
    check_all(
        "windows.wad",
        &[
            (
                0,
                &[
                    ("@timestamp", Some("2024-05-25T07:30:01.123456700Z")),
                    ("event.action", Some("logged-in")),
                    ("event.outcome", Some("success")),
                    ("event.category", Some("authentication")),
                    ("user.name", Some("alice")),
                    ("source.ip", Some("203.0.113.45")),
                    ("source.port", Some("50123")),
                    ("winlog.logon.type", Some("RemoteInteractive")),
                    ("host.name", Some("DC01.contoso.local")),
                ],
            ),
            (
                1,
                &[
                    ("event.outcome", Some("failure")),
                    ("user.name", Some("administrator")),
                    ("source.ip", Some("185.220.101.4")),
                    ("winlog.logon.failure.sub_status", Some("0xc000006a")),
                    ("process.executable", None), // "-"
                ],
            ),
            (2, &[("event.type", Some("end")), ("user.name", Some("alice"))]),
            (3, &[("user.name", Some("alice")), ("user.target.name", Some("svc_backup")), ("source.ip", None)]),
            (4, &[("event.category", Some("iam")), ("user.name", Some("Administrator")), ("winlog.privileges", Some("SeSecurityPrivilege,SeBackupPrivilege,SeDebugPrivilege"))]),
            // truncated RawXml: what was read is mapped, the parse error is noted
            (
                5,
                &[
                    ("event.action", Some("created-process")),
                    ("process.name", Some("powershell.exe")),
                    // NewProcessId="0x1a2c", ProcessId="0x1f40": hexadecimal in the XML
                    ("process.pid", Some("6700")),
                    ("process.parent.pid", Some("8000")),
                    ("process.command_line", Some("powershell.exe -nop -w hidden -enc SQBFAFgAIAAoAE4AZQB3AC0ATwBiAGoAZQBjAHQAIAA=&&whoami")),
                ],
            ),
        ],
    );
    let wad = mapped("windows.wad");
    assert!(
        wad[5].get("azlog.parse_errors").is_some(),
        "truncated XML must leave a parse note"
    );
    check_all(
        "windows.security",
        &[
            (
                0,
                &[
                    ("process.parent.name", Some("WINWORD.EXE")),
                    ("process.pid", Some("740")),
                    ("process.parent.pid", Some("7180")),
                    ("user.name", Some("bob")),
                    ("event.category", Some("process")),
                ],
            ),
            (
                1,
                &[
                    ("user.name", Some("bob")),
                    ("user.target.name", Some("backdoor")),
                    ("event.type", Some("user,creation")),
                ],
            ),
            (
                2,
                &[
                    ("event.outcome", Some("failure")),
                    ("user.name", Some("svc_sql")),
                    ("source.domain", Some("WS042")),
                ],
            ),
            (
                3,
                &[
                    ("user.name", Some("carol")),
                    ("source.ip", Some("10.0.5.6")),
                    ("winlog.logon.type", Some("Network")),
                    ("event.dataset", Some("windows.security")),
                ],
            ),
        ],
    );
}

/// The bundled example (`examples/records/azure-sample.json`, the README's first command)
/// holds a record of every specific family and each maps to a distinct family.
#[test]
fn bundled_example_covers_every_family() {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/records/azure-sample.json");
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let m = mapper();
    let mut seen = std::collections::BTreeSet::new();
    for (i, json) in envelope_records(&text).iter().enumerate() {
        let r = map_fixture(&m, "azure-sample", i, json);
        seen.insert(r.get_str("azlog.family").unwrap_or_default().to_string());
    }
    let fixtures: std::collections::BTreeSet<String> = fixtures().into_keys().collect();
    assert_eq!(seen, fixtures);
}
