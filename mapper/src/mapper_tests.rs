//! End-to-end tests of the mapper over small inline tables.
use super::*;
use crate::test_fixtures::fixture_records;

const COMMON: &str = r#"
[family]
name = "azure.common"
abstract = true
dataset = "azure.platformlogs"

[[field]]
to = "@timestamp"
from = ["time", "timeStamp", "timestamp", "TimeGenerated", "EventTimeString", "createdDateTime", "activityDateTime"]
convert = "timestamp"

[[field]]
to = "cloud.provider"
value = "azure"

[[field]]
to = "azure.resource.id"
from = "resourceId"
convert = "resource_id"

[[field]]
to = "azure.resource.group"
from = "resourceId"
convert = "resource_group"

[[field]]
to = "azure.resource.provider"
from = "resourceId"
convert = "resource_provider"

[[field]]
to = "azure.subscription_id"
from = "resourceId"
convert = "resource_subscription"

[[field]]
to = "event.action"
from = ["operationName.value", "operationName"]

[[field]]
to = "event.outcome"
from = ["resultType", "properties.status"]
map = { succeeded = "success", success = "success", failed = "failure", failure = "failure" }
map_default = "unknown"
default = "unknown"

[[field]]
to = "event.severity"
from = ["level", "Level"]
convert = "severity"

[[field]]
to = "source.ip"
from = ["callerIpAddress", "properties.clientIP"]
convert = "ip"

[[field]]
to = "azure.category"
from = ["category.value", "category"]
"#;

const GENERIC: &str = r#"
[family]
name = "generic"
extends = "azure.common"
fallback = true

[payload]
to = "azure.platformlogs"
copy = ["properties"]
depth = 2
"#;

const KEYVAULT: &str = r#"
[family]
name = "keyvault.audit"
extends = "azure.common"
dataset = "azure.keyvault"
priority = 50

[[detect]]
when = [
  { path = "category", equals = ["AuditEvent"] },
  { path = "resourceId", contains = "/PROVIDERS/MICROSOFT.KEYVAULT/" },
]

[[field]]
to = "event.duration"
from = "durationMs"
convert = "duration_ms"

[[field]]
to = "user.id"
from = ['identity.claim["http://schemas.microsoft.com/identity/claims/objectidentifier"]']

[[field]]
to = "user.name"
from = "identity.claim.upn"
convert = "upn_user"

[[field]]
to = "user.domain"
from = "identity.claim.upn"
convert = "upn_domain"

[[field]]
to = "http.response.status_code"
from = "properties.httpStatusCode"
convert = "int"

[[field]]
to = "event.category"
value = ["iam"]

[payload]
to = "azure.keyvault"
copy = ["properties", "identity"]
"#;

const AKS: &str = r#"
[family]
name = "aks.kube_audit"
extends = "azure.common"
dataset = "azure.aks"
priority = 40

[[detect]]
when = [{ path = "category", equals = "kube-audit" }]

[[field]]
to = "user.name"
from = "properties.log.$json.user.username"

[[field]]
to = "event.action"
from = "properties.log.$json.verb"

[[field]]
to = "kubernetes.groups"
from = "properties.log.$json.user.groups"
convert = "list"

[[field]]
to = "url.original"
from = "properties.log.$json.requestURI"

[payload]
to = "azure.aks"
copy = ["properties.log.$json"]
depth = 1
"#;

fn mapper() -> Mapper {
    match Mapper::from_tables(&[
        ("common.toml", COMMON),
        ("generic.toml", GENERIC),
        ("keyvault.toml", KEYVAULT),
        ("aks.toml", AKS),
    ]) {
        Ok(m) => m,
        Err(e) => panic!("{e}"),
    }
}

const ENQ: i64 = 1_700_000_000_000_000_000;
const ING: i64 = 1_700_000_100_000_000_000;

fn map(m: &Mapper, json: &str) -> Record {
    m.map(
        MapInput {
            json,
            position: Position::default(),
            enqueued_ns: Some(ENQ),
        },
        ING,
    )
    .unwrap_or_else(|e| panic!("{e}: {json}"))
}

fn s(r: &Record, k: &str) -> Option<String> {
    r.get(k).map(Value::to_text)
}

const KV_RECORD: &str = r#"{"time":"2022-08-22T18:07:16.1234567Z","resourceId":"/SUBSCRIPTIONS/S1/RESOURCEGROUPS/RG1/PROVIDERS/MICROSOFT.KEYVAULT/VAULTS/KV1","operationName":"SecretGet","category":"AuditEvent","resultType":"Success","durationMs":"12","callerIpAddress":"10.0.0.4:51234","identity":{"claim":{"http://schemas.microsoft.com/identity/claims/objectidentifier":"oid-1","upn":"alice@contoso.com"}},"properties":{"id":"https://kv1/secrets/s1","httpStatusCode":200,"requestUri":"x","isAccessPolicyMatch":true,"nested":{"a":{"b":{"c":{"d":1}}}},"list":["a","b"],"objs":[{"x":1}],"empty":null},"level":"Informational"}"#;

/// Schema keys, constants and payload keys cost no allocation: they are emitted as
/// `'static` text; values built from data are owned.
#[test]
fn schema_keys_constants_and_payload_keys_are_static_data_is_owned() {
    let m = mapper();
    let r = map(&m, KV_RECORD);
    let field = |k: &str| {
        r.fields
            .iter()
            .find(|f| f.key == k)
            .unwrap_or_else(|| panic!("no {k}"))
    };
    let text = |k: &str| match &field(k).value {
        Value::Str(t) => t.clone(),
        other => panic!("{k}: {other:?}"),
    };
    // Table keys and fixed keys.
    for k in [
        "event.action",
        "event.outcome",
        "event.kind",
        "event.dataset",
        "azlog.family",
        "event.created",
        "cloud.provider",
    ] {
        assert!(field(k).key.is_static(), "{k}");
    }
    // Constants: fixed, table `value`, `map` result, list constant.
    for k in [
        "event.kind",
        "event.dataset",
        "azlog.family",
        "cloud.provider",
        "event.outcome",
    ] {
        assert!(text(k).is_static(), "{k}");
    }
    match &field("event.category").value {
        Value::List(items) => assert!(items.iter().all(|t| t.is_static())),
        other => panic!("{other:?}"),
    }
    // Payload keys are kept as static text (within a budget, see `payload_keys`).
    let payload = field("azure.keyvault.properties.requestUri");
    assert!(payload.key.is_static());
    // Data: values read from the record, times.
    assert!(!text("azure.keyvault.properties.requestUri").is_static());
    assert!(!text("event.action").is_static());
    assert!(!text("event.created").is_static());
    // Interning is per distinct text: a second mapper shares the first one's strings.
    let again = map(&mapper(), KV_RECORD);
    let ptr = |r: &Record, k: &str| r.fields.iter().find(|f| f.key == k).map(|f| f.key.as_ptr());
    assert_eq!(ptr(&r, "event.action"), ptr(&again, "event.action"));
}

#[test]
fn keyvault_record_maps_end_to_end() {
    let m = mapper();
    let r = map(&m, KV_RECORD);
    assert_eq!(r.timestamp_ns, 1_661_191_636_123_456_700);
    assert_eq!(s(&r, "azlog.family").as_deref(), Some("keyvault.audit"));
    assert_eq!(s(&r, "event.dataset").as_deref(), Some("azure.keyvault"));
    assert_eq!(s(&r, "event.kind").as_deref(), Some("event"));
    assert_eq!(s(&r, "event.action").as_deref(), Some("SecretGet"));
    assert_eq!(s(&r, "event.outcome").as_deref(), Some("success"));
    assert_eq!(r.get("event.severity"), Some(&Value::Int(2)));
    assert_eq!(r.get("event.duration"), Some(&Value::Int(12_000_000)));
    assert_eq!(s(&r, "source.ip").as_deref(), Some("10.0.0.4"));
    assert_eq!(s(&r, "user.id").as_deref(), Some("oid-1"));
    assert_eq!(s(&r, "user.name").as_deref(), Some("alice"));
    assert_eq!(s(&r, "user.domain").as_deref(), Some("contoso.com"));
    assert_eq!(r.get("http.response.status_code"), Some(&Value::Int(200)));
    assert_eq!(s(&r, "azure.resource.group").as_deref(), Some("RG1"));
    assert_eq!(
        s(&r, "azure.resource.provider").as_deref(),
        Some("microsoft.keyvault")
    );
    assert_eq!(s(&r, "azure.subscription_id").as_deref(), Some("s1"));
    assert_eq!(s(&r, "cloud.provider").as_deref(), Some("azure"));
    assert_eq!(
        r.get("event.category"),
        Some(&Value::List(RVec::from(vec![Text::from("iam")])))
    );
    assert_eq!(
        s(&r, "event.created").as_deref(),
        Some("2023-11-14T22:13:20.000Z")
    );
    assert_eq!(
        s(&r, "event.ingested").as_deref(),
        Some("2023-11-14T22:15:00.000Z")
    );
    assert_eq!(r.get("azlog.timestamp_fallback"), None);
    assert_eq!(r.original.as_str(), KV_RECORD);
    // Payload: flattened to depth 3, dots in keys replaced, arrays, nulls skipped.
    assert_eq!(
        r.get("azure.keyvault.properties.httpStatusCode"),
        Some(&Value::Int(200))
    );
    assert_eq!(
        r.get("azure.keyvault.properties.isAccessPolicyMatch"),
        Some(&Value::Bool(true))
    );
    assert_eq!(
        r.get("azure.keyvault.properties.nested.a.b"),
        Some(&Value::Json(Text::from(r#"{"c":{"d":1}}"#)))
    );
    assert_eq!(
        r.get("azure.keyvault.properties.list"),
        Some(&Value::List(RVec::from(vec![
            Text::from("a"),
            Text::from("b")
        ])))
    );
    assert_eq!(
        r.get("azure.keyvault.properties.objs"),
        Some(&Value::Json(Text::from(r#"[{"x":1}]"#)))
    );
    assert_eq!(r.get("azure.keyvault.properties.empty"), None);
    assert_eq!(
        s(&r, "azure.keyvault.identity.claim.http://schemas_microsoft_com/identity/claims/objectidentifier")
            .as_deref(),
        Some("oid-1")
    );
}

#[test]
fn unmatched_records_take_the_fallback_family() {
    let m = mapper();
    let r = map(
        &m,
        r#"{"timeStamp":"8/22/2022 6:07:16 PM","category":"SomethingNew","resultType":"Failed","properties":{"a":{"b":{"c":1}}},"callerIpAddress":"<CALLER IP ADDRESS>"}"#,
    );
    assert_eq!(s(&r, "azlog.family").as_deref(), Some("generic"));
    assert_eq!(
        s(&r, "event.dataset").as_deref(),
        Some("azure.platformlogs")
    );
    assert_eq!(r.timestamp_ns, 1_661_191_636_000_000_000);
    assert_eq!(s(&r, "event.outcome").as_deref(), Some("failure"));
    assert_eq!(r.get("source.ip"), None);
    assert_eq!(s(&r, "azure.category").as_deref(), Some("SomethingNew"));
    // depth = 2: properties.a.b is an object at the depth limit → JSON text.
    assert_eq!(
        r.get("azure.platformlogs.properties.a.b"),
        Some(&Value::Json(Text::from(r#"{"c":1}"#)))
    );
}

#[test]
fn unreadable_time_falls_back_to_enqueued_and_is_flagged() {
    let m = mapper();
    let r = map(&m, r#"{"time":"yesterday-ish","category":"X"}"#);
    assert_eq!(r.timestamp_ns, ENQ);
    assert_eq!(r.get("azlog.timestamp_fallback"), Some(&Value::Bool(true)));
    assert_eq!(
        s(&r, "azlog.timestamp_raw").as_deref(),
        Some("yesterday-ish")
    );

    // No time at all and no enqueued time: ingest time, no raw text.
    let r = m
        .map(
            MapInput {
                json: r#"{"category":"X"}"#,
                position: Position::default(),
                enqueued_ns: None,
            },
            ING,
        )
        .unwrap();
    assert_eq!(r.timestamp_ns, ING);
    assert_eq!(r.get("azlog.timestamp_fallback"), Some(&Value::Bool(true)));
    assert_eq!(r.get("azlog.timestamp_raw"), None);
    assert_eq!(r.get("event.created"), None);
}

#[test]
fn bad_first_time_source_tries_the_next() {
    let m = mapper();
    let r = map(
        &m,
        r#"{"time":"garbage","timeStamp":"2022-08-22T18:07:16Z"}"#,
    );
    assert_eq!(r.timestamp_ns, 1_661_191_636_000_000_000);
    assert_eq!(r.get("azlog.timestamp_fallback"), None);
}

#[test]
fn embedded_json_is_parsed_once_and_addressable() {
    let m = mapper();
    let log = r#"{\"verb\":\"get\",\"requestURI\":\"/api/v1/pods\",\"user\":{\"username\":\"system:admin\",\"groups\":[\"system:masters\",\"system:authenticated\"]}}"#;
    let json = format!(
        r#"{{"time":"2022-08-22T18:07:16Z","category":"kube-audit","properties":{{"log":"{log}"}}}}"#
    );
    let r = map(&m, &json);
    assert_eq!(s(&r, "azlog.family").as_deref(), Some("aks.kube_audit"));
    assert_eq!(s(&r, "user.name").as_deref(), Some("system:admin"));
    assert_eq!(s(&r, "event.action").as_deref(), Some("get"));
    assert_eq!(s(&r, "url.original").as_deref(), Some("/api/v1/pods"));
    assert_eq!(
        s(&r, "kubernetes.groups").as_deref(),
        Some("system:masters,system:authenticated")
    );
    // Payload of an embedded document, named after the key before `$json`.
    assert_eq!(s(&r, "azure.aks.log.verb").as_deref(), Some("get"));
    assert_eq!(
        r.get("azure.aks.log.user"),
        Some(&Value::Json(Text::from(
            r#"{"username":"system:admin","groups":["system:masters","system:authenticated"]}"#
        )))
    );
    assert_eq!(m.plan().embeds.len(), 1, "one interned $json prefix");

    // Broken embedded JSON: record kept, note added.
    let r = map(
        &m,
        r#"{"category":"kube-audit","properties":{"log":"{not json"}}"#,
    );
    assert_eq!(s(&r, "azlog.family").as_deref(), Some("aks.kube_audit"));
    assert_eq!(r.get("user.name"), None);
    let notes = s(&r, "azlog.parse_errors").unwrap_or_default();
    assert!(notes.contains("properties.log"), "{notes}");
}

#[test]
fn invalid_json_and_non_objects_are_errors() {
    let m = mapper();
    let e = |json: &str| {
        m.map(
            MapInput {
                json,
                position: Position::default(),
                enqueued_ns: None,
            },
            ING,
        )
        .unwrap_err()
        .to_string()
    };
    assert!(e("{not json").starts_with("invalid JSON"));
    assert!(e("").starts_with("invalid JSON"));
    assert_eq!(e("[1,2]"), "record is not a JSON object (found an array)");
    assert_eq!(e("\"x\""), "record is not a JSON object (found a string)");
}

#[test]
fn family_names_in_detection_order_with_fallback_last() {
    let m = mapper();
    assert_eq!(
        m.family_names(),
        ["keyvault.audit", "aks.kube_audit", "generic"]
    );
    assert_eq!(m.fallback_name(), "generic");
}

#[test]
fn without_a_fallback_table_a_minimal_record_is_still_produced() {
    let m = Mapper::from_tables(&[("common.toml", COMMON), ("aks.toml", AKS)]).unwrap();
    let r = map(
        &m,
        r#"{"time":"2022-08-22T18:07:16Z","category":"Other","x":1}"#,
    );
    assert_eq!(s(&r, "azlog.family").as_deref(), Some("unmatched"));
    assert_eq!(r.timestamp_ns, 1_661_191_636_000_000_000);
    assert_eq!(s(&r, "azure.category").as_deref(), Some("Other"));
}

#[test]
fn builtin_tables_load_and_every_fixture_maps() {
    let m = Mapper::builtin().unwrap_or_else(|e| panic!("{e}"));
    assert!(!m.family_names().is_empty());
    // Every JSON object in the record fixtures maps (never dropped), when they exist.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/records");
    let records = fixture_records();
    for rec in &records {
        let r = map(&m, rec);
        assert!(r.get("azlog.family").is_some(), "{rec}");
        assert!(r.timestamp_ns != 0, "{rec}");
    }
    assert!(
        !dir.exists() || !records.is_empty(),
        "fixtures folder exists but holds no records"
    );
}

/// `parse` then `map_parsed`, with the records of a batch held and mapped family by family
/// (as `azlog-hub map` does), gives every record exactly as `map_with` does; `family()` is
/// the same for records of one family and differs between families.
#[test]
fn records_parsed_first_and_mapped_by_family_are_the_records_map_gives() {
    let m = Mapper::builtin().unwrap_or_else(|e| panic!("{e}"));
    let mut records = fixture_records();
    // Without the fixtures: a few built-in records of different families.
    if records.is_empty() {
        records = [
            r#"{"time":"2022-08-22T18:07:16Z","category":"AuditEvent","operationName":"SecretGet","resourceId":"/SUBSCRIPTIONS/S1/RESOURCEGROUPS/RG/PROVIDERS/MICROSOFT.KEYVAULT/VAULTS/KV1","properties":{"id":"x"}}"#,
            r#"{"time":"2022-08-22T18:07:16Z","category":"SignInLogs","operationName":"Sign-in activity","properties":{"userPrincipalName":"a@b.c"}}"#,
            r#"{"category":"SomethingNew","operationName":"Unknown/op"}"#,
        ]
        .map(str::to_owned)
        .to_vec();
    }
    let input = |json| MapInput {
        json,
        position: Position::default(),
        enqueued_ns: Some(1_661_191_700_000_000_000),
    };
    let now = 1_661_191_800_000_000_000;
    let options = MapOptions::default();
    let parsed: Vec<_> = records
        .iter()
        .map(|r| m.parse(r).unwrap_or_else(|e| panic!("{e}: {r}")))
        .collect();
    let mut order: Vec<usize> = (0..records.len()).collect();
    order.sort_by_key(|&i| (std::cmp::Reverse(parsed[i].family()), i));
    let mut by_family: std::collections::HashMap<String, usize> = Default::default();
    for i in order {
        let rec = records[i].as_str();
        let got = m.map_parsed(&parsed[i], input(rec), now, options);
        let want = m.map_with(input(rec), now, options).unwrap();
        assert_eq!(got, want, "{rec}");
        let family = s(&got, "azlog.family").unwrap_or_default();
        let id = *by_family
            .entry(family.clone())
            .or_insert(parsed[i].family());
        assert_eq!(id, parsed[i].family(), "{family}: {rec}");
    }
    let ids: std::collections::HashSet<usize> = by_family.values().copied().collect();
    assert_eq!(ids.len(), by_family.len(), "{by_family:?}");
    assert!(by_family.len() >= 3, "{by_family:?}");
    // What `map` refuses, `parse` refuses with the same error.
    for bad in ["{\"time\": 1,,}", "[1]", "nope"] {
        let want = m.map(input(bad), now).unwrap_err().to_string();
        assert_eq!(m.parse(bad).unwrap_err().to_string(), want);
    }
}

#[test]
fn contains_ci_matches_the_naive_search() {
    let naive = |h: &str, n: &str| {
        n.is_empty()
            || (h.len() >= n.len()
                && h.as_bytes()
                    .windows(n.len())
                    .any(|w| w.eq_ignore_ascii_case(n.as_bytes())))
    };
    let hays = [
        "",
        "a",
        "TCP request from 10.0.2.4:51990 to 13.69.65.17:443. Action: Deny. Rule: x",
        "action: deny",
        "AaAaAaB",
        "ünï Action: DENY",
        "x.x.x",
    ];
    let needles = [
        "",
        "a",
        "action: deny",
        "aab",
        "aaaab",
        "deny",
        ".x",
        "x.x.x.x",
        "ü",
    ];
    for h in hays {
        for n in needles {
            assert_eq!(contains_ci(h, n), naive(h, n), "{h:?} / {n:?}");
        }
    }
}

/// The head of a one-family test table (a fallback, so it takes every record).
const TEST_FAMILY: &str = r#"
[family]
name = "t"
dataset = "d"
fallback = true
"#;

/// Records with the same payload keys but different table fields present: a key that both
/// the payload and a table field give (merged, the table wins) must not be taken for a
/// strictly ordered output because another record of that key sequence was one. Each
/// record maps as a fresh mapper (nothing remembered) maps it.
#[test]
fn equal_payload_keys_with_other_fields_present_map_as_fresh() {
    let table = format!(
        r#"{TEST_FAMILY}
[[field]]
to = "t.props.a"
from = ["a2"]

[[field]]
to = "t.props.b.c"
from = ["bc"]

[payload]
to = "t"
copy = ["props"]
"#
    );
    let tables = [("t.toml", table.as_str())];
    let records = [
        r#"{"props":{"b":1,"a":2}}"#,
        r#"{"props":{"b":1,"a":2},"a2":"table"}"#,
        r#"{"props":{"b":1,"a":2},"bc":"dotted"}"#,
        r#"{"props":{"b":1,"a":2},"a2":"table","bc":"dotted"}"#,
        r#"{"props":{"a":2,"b":1},"bc":"dotted"}"#,
    ];
    let m = Mapper::from_tables(&tables).unwrap();
    for round in 0..3 {
        for json in records.iter().chain(records.iter().rev()) {
            let fresh = map(&Mapper::from_tables(&tables).unwrap(), json);
            let got = map(&m, json);
            assert_eq!(got.fields, fresh.fields, "round {round}: {json}");
        }
    }
    let r = map(&m, records[1]);
    assert_eq!(r.get_str("t.props.a"), Some("table"));
    assert_eq!(r.fields.iter().filter(|f| f.key == "t.props.a").count(), 1);
    let r = map(&m, records[2]);
    assert_eq!(r.get_str("t.props.b.c"), Some("dotted"));
}

/// A table's `event.kind` replaces the built-in `event` when it gives a value (its own or
/// its default); otherwise the built-in stays.
#[test]
fn table_event_kind_overrides_the_default_only_with_a_value() {
    let table = |extra: &str| {
        format!(
            r#"{TEST_FAMILY}
[[field]]
to = "event.kind"
from = ["k"]
when = [{{ path = "on", equals = ["yes"] }}]
{extra}
"#
        )
    };
    for (extra, json, want) in [
        ("", r#"{"on":"yes","k":"alert"}"#, "alert"),
        ("", r#"{"on":"yes"}"#, "event"),
        ("", r#"{"on":"no","k":"alert"}"#, "event"),
        ("default = \"signal\"", r#"{"on":"yes"}"#, "signal"),
        (
            "default = \"signal\"",
            r#"{"on":"yes","k":"alert"}"#,
            "alert",
        ),
        ("default = \"signal\"", r#"{"on":"no"}"#, "event"),
    ] {
        let m = Mapper::from_tables(&[("t.toml", table(extra).as_str())]).unwrap();
        let r = map(&m, json);
        assert_eq!(r.get_str("event.kind"), Some(want), "{extra} {json}");
        let kinds = r.fields.iter().filter(|f| f.key == "event.kind").count();
        assert_eq!(kinds, 1, "{extra} {json}");
    }
}

#[test]
fn integer_nodes_compare_as_their_text() {
    let table = format!(
        r#"{TEST_FAMILY}
[[field]]
to = "a.eq"
value = "yes"
when = [{{ path = "EventID", equals = ["4624", "04625", "-1"] }}]

[[field]]
to = "a.ne"
value = "yes"
when = [{{ path = "EventID", not_equals = ["4624"] }}]
"#
    );
    let m = Mapper::from_tables(&[("t.toml", table.as_str())]).unwrap();
    let map = |json: &str| {
        m.map(
            MapInput {
                json,
                position: Position::default(),
                enqueued_ns: None,
            },
            0,
        )
        .unwrap()
    };
    for (json, eq, ne) in [
        (r#"{"EventID":4624}"#, true, false),
        (r#"{"EventID":"4624"}"#, true, false),
        (r#"{"EventID":4625}"#, false, true),
        (r#"{"EventID":"04625"}"#, true, true),
        (r#"{"EventID":-1}"#, true, true),
        (r#"{"EventID":[1,4624]}"#, true, false),
        (r#"{"EventID":4624.0}"#, false, true),
        (r#"{}"#, false, true),
    ] {
        let r = map(json);
        assert_eq!(r.get_str("a.eq").is_some(), eq, "{json}");
        assert_eq!(r.get_str("a.ne").is_some(), ne, "{json}");
    }
}

#[test]
fn created_and_ingested_follow_each_record() {
    // The texts are reused from record to record while the times stay the same.
    let m = mapper();
    let at = |enq: Option<i64>, ing: i64| {
        let input = MapInput {
            json: KV_RECORD,
            position: Position::default(),
            enqueued_ns: enq,
        };
        let r = m.map(input, ing).expect("maps");
        (s(&r, "event.created"), s(&r, "event.ingested"))
    };
    let a = at(Some(1_000_000_000), 2_000_000_000);
    assert_eq!(a, at(Some(1_000_000_000), 2_000_000_000));
    assert_eq!(a.0.as_deref(), Some("1970-01-01T00:00:01.000Z"));
    assert_eq!(a.1.as_deref(), Some("1970-01-01T00:00:02.000Z"));
    let b = at(Some(3_000_000_000), 4_000_000_000);
    assert_eq!(b.0.as_deref(), Some("1970-01-01T00:00:03.000Z"));
    assert_eq!(b.1.as_deref(), Some("1970-01-01T00:00:04.000Z"));
    assert_eq!(at(None, 4_000_000_000).0, None);
}

/// `normalized` agrees with a brute-force check of the record invariant (keys strictly
/// increasing once equal neighbours are merged, the later value winning; no key a dotted
/// prefix of another) on every list of up to three keys from a set of tricky ones: plain
/// and dotted prefixes, keys that sort between a key and its dotted extension (`a-x`
/// between `a` and `a.b`), equal keys, keys longer than one 8-byte word.
#[test]
fn normalized_agrees_with_the_invariant() {
    let keys = [
        "",
        "a",
        "a-x",
        "a.b",
        "a.b-c",
        "a.b.c",
        "ab",
        "Rule",
        "RuleCollection",
        "RuleCollection.x",
        "\u{e9}",
        "0123456789abcdef",
        "0123456789abcdef0",
        "0123456789abcdef.x",
    ];
    let invariant = |ks: &[&str]| {
        ks.windows(2).all(|w| w[0] < w[1])
            && (0..ks.len()).all(|i| {
                ks[i + 1..].iter().all(|k| {
                    !(k.starts_with(ks[i]) && k.as_bytes().get(ks[i].len()) == Some(&b'.'))
                })
            })
    };
    let mut lists: Vec<Vec<&str>> = vec![vec![]];
    for _ in 0..3 {
        let longer: Vec<Vec<&str>> = lists
            .iter()
            .filter(|l| l.len() == lists.last().map_or(0, Vec::len))
            .flat_map(|l| {
                keys.iter().map(move |k| {
                    let mut l = l.clone();
                    l.push(*k);
                    l
                })
            })
            .collect();
        lists.extend(longer);
    }
    let mut fast_rule = false;
    for list in &lists {
        let mut fields: Vec<Field> = list
            .iter()
            .enumerate()
            .map(|(i, k)| Field {
                key: Text::from(*k),
                value: Value::Int(i as i64),
            })
            .collect();
        // The expected outcome: unsorted lists are not normalized; sorted ones are once
        // equal neighbours are merged (the last value kept), if the invariant then holds.
        let sorted = list.windows(2).all(|w| w[0] <= w[1]);
        let mut merged: Vec<(&str, i64)> = Vec::new();
        for (i, k) in list.iter().enumerate() {
            match merged.last_mut() {
                Some(last) if last.0 == *k => last.1 = i as i64,
                _ => merged.push((k, i as i64)),
            }
        }
        let merged_keys: Vec<&str> = merged.iter().map(|m| m.0).collect();
        let want = sorted && invariant(&merged_keys);
        assert_eq!(normalized(&mut fields), want, "{list:?}");
        if want {
            let got: Vec<(&str, i64)> = fields
                .iter()
                .map(|f| (f.key.as_str(), f.value.as_i64().unwrap_or(-1)))
                .collect();
            assert_eq!(got, merged, "{list:?}");
        }
        fast_rule |= list == &["Rule", "RuleCollection"] && want;
    }
    assert!(fast_rule);
    assert!(lists.len() > 2000);
}

/// Root members resolve exactly first, then ignoring case, absent ones to nothing, matched
/// through the root index filled per record, across records.
#[test]
fn root_members_resolve_per_record() {
    let m = Mapper::from_tables(&[(
        "t.toml",
        r#"
[family]
name = "t"
dataset = "t.logs"
fallback = true

[[field]]
to = "a.exact"
from = "Level"

[[field]]
to = "a.folded"
from = "CATEGORY"

[[field]]
to = "a.absent"
from = ["nothere", "NoThere"]
default = "none"
"#,
    )])
    .unwrap_or_else(|e| panic!("{e}"));
    for (json, exact, folded) in [
        (r#"{"level":"1","Level":"2","category":"c"}"#, "2", "c"),
        (r#"{"LEVEL":"3","Category":"d","CATEGORY":"e"}"#, "3", "e"),
        (r#"{"level":"4","category":"f","Category":"g"}"#, "4", "f"),
    ] {
        let r = map(&m, json);
        assert_eq!(s(&r, "a.exact").as_deref(), Some(exact), "{json}");
        assert_eq!(s(&r, "a.folded").as_deref(), Some(folded), "{json}");
        assert_eq!(s(&r, "a.absent").as_deref(), Some("none"), "{json}");
    }
}

#[test]
fn map_with_can_leave_the_original_out_and_changes_nothing_else() {
    let m = Mapper::builtin().unwrap_or_else(|e| panic!("{e}"));
    let json = r#"{"time":"2022-08-22T18:07:16Z","resourceId":"/SUBSCRIPTIONS/S1/RESOURCEGROUPS/RG/PROVIDERS/MICROSOFT.KEYVAULT/VAULTS/KV1","operationName":"SecretGet","category":"AuditEvent","callerIpAddress":"10.0.0.4:51234","properties":{"id":"x","httpStatusCode":200}}"#;
    let input = || MapInput {
        json,
        position: Position::default(),
        enqueued_ns: Some(1_661_191_700_000_000_000),
    };
    let full = m.map(input(), 1_661_191_800_000_000_000).unwrap();
    let kept = m
        .map_with(input(), 1_661_191_800_000_000_000, MapOptions::default())
        .unwrap();
    let lean = m
        .map_with(
            input(),
            1_661_191_800_000_000_000,
            MapOptions {
                keep_original: false,
            },
        )
        .unwrap();
    assert_eq!(full.original.as_str(), json);
    assert_eq!(kept.original.as_str(), json);
    assert_eq!(lean.original.as_str(), "");
    assert_eq!(lean.timestamp_ns, full.timestamp_ns);
    assert_eq!(lean.fields, full.fields);
    assert_eq!(kept.fields, full.fields);
    assert!(full.fields.len() > 5);
}

/// A record handed back with `Mapper::recycle` lends its fields vector to the next record
/// mapped on the thread, and the records are the same as without recycling.
#[test]
fn recycled_fields_are_reused_and_change_nothing() {
    let m = mapper();
    let first = map(&m, KV_RECORD);
    let fresh = map(&m, KV_RECORD);
    let buffer = first.fields.as_ptr() as usize;
    // Nothing handed back yet: the fields are allocated at their exact length.
    assert_eq!(fresh.fields.capacity(), fresh.fields.len());
    m.recycle(first);
    let reused = map(&m, KV_RECORD);
    assert_eq!(reused.fields.as_ptr() as usize, buffer);
    assert_eq!(reused.fields.as_slice(), fresh.fields.as_slice());
    // A different, smaller record after it: still equal to mapping it without recycling.
    let small = r#"{"time":"2022-08-22T18:07:16Z","category":"Other","x":1}"#;
    let want = map(&m, small);
    m.recycle(reused);
    let again = map(&m, small);
    assert_eq!(again.fields.as_slice(), want.fields.as_slice());
    // The handed-back vector was large enough to be used without counting first.
    assert_eq!(again.fields.as_ptr() as usize, buffer);
}

/// `event.created` / `event.ingested` texts: the same as formatting each time, whether the
/// next time is in the same second (only the fraction is rewritten), another one, or before
/// 1970.
#[test]
fn time_texts_match_a_fresh_format() {
    let mut t = TimeText::default();
    let base = 1_700_000_000_000_000_000i64;
    let mut times = vec![
        base,
        base + 1,
        base + 1_000,
        base + 1_000_000,
        base + 999_999_999,
    ];
    times.extend([
        base + 1_000_000_000,
        base + 1_000_000_007,
        base,
        -1,
        -1_000_000_001,
    ]);
    times.extend([
        i64::MIN,
        i64::MAX,
        0,
        0,
        123_000_000,
        123_456_000,
        123_456_789,
    ]);
    for ns in times {
        assert_eq!(t.text(ns), convert::rfc3339(ns), "{ns}");
    }
}

/// Field conditions that several fields of a family test share one memo slot; a condition
/// tested once has none; slots are dense.
#[test]
fn shared_field_conditions_share_a_memo_slot() {
    use crate::schema::plan::NONE;
    let m = Mapper::builtin().unwrap();
    let wad = m
        .plan()
        .families
        .iter()
        .find(|f| f.name == "windows.wad")
        .expect("windows.wad");
    assert!(wad.cond_slots > 0);
    let mut used = vec![false; wad.cond_slots as usize];
    for c in &wad.when {
        let twins: Vec<_> = wad
            .when
            .iter()
            .filter(|d| d.path == c.path && d.test == c.test)
            .collect();
        if twins.len() > 1 {
            assert_ne!(c.memo, NONE);
            assert!(twins.iter().all(|d| d.memo == c.memo));
            used[c.memo as usize] = true;
        } else {
            assert_eq!(c.memo, NONE);
        }
    }
    assert!(used.iter().all(|&u| u));
}

/// A source key becomes one dotted-key segment: each `.` an `_` (also leading, trailing and
/// doubled ones), the empty key `_`, any other text as it is.
#[test]
fn key_segments_replace_every_dot() {
    for (seg, want) in [
        ("", "_"),
        ("plain", "plain"),
        (
            "http://schemas.microsoft.com/identity/claims/name",
            "http://schemas_microsoft_com/identity/claims/name",
        ),
        (".a..b.", "_a__b_"),
        ("é.ü", "é_ü"),
        (".", "_"),
    ] {
        let mut key = String::from("azure.x");
        push_key_segment(&mut key, seg);
        assert_eq!(key, format!("azure.x{want}"), "{seg:?}");
    }
}
