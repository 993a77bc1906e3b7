//! Hand-built records: a realistic Azure mix (sign-ins, activity, Key Vault, firewall, Windows
//! 4624/4625, audit, alerts) and an injection corpus of hostile values.
use abi_stable::std_types::{RString, RVec};
use azlog_plugin_api::{Field, Position, Record, Text, Value};

/// 2024-05-01T10:20:30.123Z
pub const T0_NS: i64 = 1_714_558_830_123_000_000;

pub fn s(v: &str) -> Value {
    Value::Str(Text::from(v))
}

pub fn list(v: &[&str]) -> Value {
    Value::List(RVec::from(
        v.iter().map(|x| Text::from(*x)).collect::<Vec<_>>(),
    ))
}

pub fn rec(ts_ns: i64, fields: Vec<(&str, Value)>) -> Record {
    let fields = fields
        .into_iter()
        .map(|(k, v)| Field {
            key: Text::from(k),
            value: v,
        })
        .collect();
    Record::from_fields(ts_ns, fields, RString::from("{}"), Position::default())
}

fn common(dataset: &str, category: &str) -> Vec<(&'static str, Value)> {
    vec![
        ("cloud.provider", s("azure")),
        ("azure.tenant_id", s("72f988bf-86f1-41af-91ab-2d7cd011db47")),
        ("event.kind", s("event")),
        ("event.dataset", s(dataset)),
        ("azure.category", s(category)),
        ("event.created", s("2024-05-01T10:20:31.5Z")),
    ]
}

fn with(
    mut base: Vec<(&'static str, Value)>,
    more: Vec<(&'static str, Value)>,
) -> Vec<(&'static str, Value)> {
    base.extend(more);
    base
}

const SUB: &str = "0b1f6471-1bf0-4dda-aec3-cb9272f09590";

/// About twenty realistic records, as the mapper would produce them.
pub fn realistic() -> Vec<Record> {
    let kv_id = "/SUBSCRIPTIONS/0B1F6471-1BF0-4DDA-AEC3-CB9272F09590/RESOURCEGROUPS/RG-SECURITY/PROVIDERS/MICROSOFT.KEYVAULT/VAULTS/KV-PROD-WEU-01";
    let fw_id = "/SUBSCRIPTIONS/0B1F6471-1BF0-4DDA-AEC3-CB9272F09590/RESOURCEGROUPS/RG-HUB/PROVIDERS/MICROSOFT.NETWORK/AZUREFIREWALLS/AFW-HUB-WEU";
    let vm_id = "/subscriptions/0b1f6471-1bf0-4dda-aec3-cb9272f09590/resourceGroups/rg-app/providers/Microsoft.Compute/virtualMachines/vm-web-01";
    let mut v = Vec::new();
    let signin = |user: &str, ip: &str, outcome: &str, reason: Option<&str>, sev: i64| {
        let mut f = with(
            common("azure.signinlogs", "SignInLogs"),
            vec![
                ("event.action", s("Sign-in activity")),
                ("event.category", list(&["authentication"])),
                ("event.type", list(&["start"])),
                ("event.outcome", s(outcome)),
                ("event.severity", Value::Int(sev)),
                ("event.id", s("3c1d5a2e-8f34-4a61-9a4f-0d5f2b7e1c00")),
                ("user.name", s(user)),
                ("user.id", s("4f2a9c1e-7b3d-4e8a-9c61-2d8f0e5b7a10")),
                ("user.domain", s("contoso.com")),
                ("source.ip", s(ip)),
                ("user_agent.original", s("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.0.0")),
                ("azure.correlation_id", s("b2f4c6d8-1a3b-4c5d-8e9f-0a1b2c3d4e5f")),
                ("azure.signinlogs.properties.app_display_name", s("Microsoft Teams")),
                ("cloud.region", s("westeurope")),
            ],
        );
        if let Some(r) = reason {
            f.push(("event.reason", s(r)));
        }
        rec(T0_NS, f)
    };
    v.push(signin(
        "alice@contoso.com",
        "203.0.113.42",
        "success",
        None,
        2,
    ));
    v.push(signin(
        "bob@contoso.com",
        "2001:db8:85a3::8a2e:370:7334",
        "failure",
        Some("50126: Error validating credentials due to invalid username or password."),
        5,
    ));
    v.push(signin("svc-backup@contoso.onmicrosoft.com", "198.51.100.7", "failure", Some("50053: Account is locked because user tried to sign in too many times with an incorrect user ID or password."), 7));
    v.push(signin(
        "jürgen.müller@contoso.de",
        "192.0.2.10",
        "success",
        None,
        2,
    ));
    for (op, outcome, status) in [
        ("MICROSOFT.COMPUTE/VIRTUALMACHINES/WRITE", "success", 200),
        (
            "MICROSOFT.NETWORK/NETWORKSECURITYGROUPS/DELETE",
            "success",
            202,
        ),
        (
            "MICROSOFT.AUTHORIZATION/ROLEASSIGNMENTS/WRITE",
            "failure",
            403,
        ),
    ] {
        v.push(rec(
            T0_NS + 1_000_000,
            with(
                common("azure.activitylogs", "Administrative"),
                vec![
                    ("event.action", s(op)),
                    ("event.outcome", s(outcome)),
                    (
                        "event.severity",
                        Value::Int(if outcome == "failure" { 7 } else { 2 }),
                    ),
                    ("event.id", s("9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d")),
                    ("user.name", s("carol@contoso.com")),
                    ("source.ip", s("40.74.28.9")),
                    ("azure.resource.id", s(vm_id)),
                    ("azure.resource.group", s("rg-app")),
                    ("azure.resource.name", s("vm-web-01")),
                    ("azure.resource.provider", s("microsoft.compute")),
                    ("azure.subscription_id", s(SUB)),
                    (
                        "azure.correlation_id",
                        s("7e6d5c4b-3a29-4817-a6b5-c4d3e2f1a0b9"),
                    ),
                    ("http.response.status_code", Value::Int(status)),
                    ("azure.activitylogs.properties.status_code", s("Accepted")),
                ],
            ),
        ));
    }
    v.push(rec(T0_NS, with(
        common("azure.activitylogs", "Policy"),
        vec![
            ("event.action", s("MICROSOFT.AUTHORIZATION/POLICIES/AUDIT/ACTION")),
            ("event.outcome", s("success")),
            ("event.severity", Value::Int(5)),
            ("message", s("Audit policy 'Storage accounts should restrict network access' evaluated as NonCompliant")),
            ("azure.resource.id", s(vm_id)),
            ("azure.subscription_id", s(SUB)),
        ],
    )));
    for (op, status, ip, dur) in [
        ("SecretGet", 200, "10.1.2.3", 31_000_000i64),
        ("KeyList", 200, "10.1.2.4", 12_000_000),
        ("VaultPatch", 403, "52.174.1.1", 250_000_000),
    ] {
        v.push(rec(T0_NS + 2_000_000, with(
            common("azure.platformlogs", "AuditEvent"),
            vec![
                ("event.action", s(op)),
                ("event.outcome", s(if status == 200 { "success" } else { "failure" })),
                ("event.severity", Value::Int(if status == 200 { 2 } else { 7 })),
                ("event.duration", Value::Int(dur)),
                ("source.ip", s(ip)),
                ("http.response.status_code", Value::Int(status)),
                ("http.request.method", s("GET")),
                ("url.original", s("https://kv-prod-weu-01.vault.azure.net/secrets/db-password/?api-version=7.4")),
                ("user.id", s("b1e2c3d4-0000-4000-8000-123456789abc")),
                ("user_agent.original", s("azsdk-net-Security.KeyVault.Secrets/4.5.0 (.NET 6.0.25; Linux)")),
                ("azure.resource.id", s(kv_id)),
                ("azure.resource.group", s("RG-SECURITY")),
                ("azure.resource.name", s("KV-PROD-WEU-01")),
                ("azure.subscription_id", s(SUB)),
                ("azure.correlation_id", s("e1d2c3b4-a596-4788-9aab-bccddeeff001")),
                ("cloud.region", s("westeurope")),
            ],
        )));
    }
    for (action, src, sp, dst, dp, proto, url) in [
        (
            "Deny",
            "10.0.1.4",
            51234,
            "198.51.100.200",
            3389,
            "TCP",
            None,
        ),
        (
            "Allow",
            "10.0.2.5",
            44321,
            "13.107.42.14",
            443,
            "TCP",
            Some("https://login.microsoftonline.com/common/oauth2/v2.0/token"),
        ),
        ("Deny", "fd00:10::5", 5353, "2001:db8::53", 53, "UDP", None),
    ] {
        let mut f = with(
            common("azure.platformlogs", "AzureFirewallNetworkRule"),
            vec![
                ("event.action", s(action)),
                (
                    "event.severity",
                    Value::Int(if action == "Deny" { 5 } else { 2 }),
                ),
                ("source.ip", s(src)),
                ("source.port", Value::Int(sp)),
                ("destination.ip", s(dst)),
                ("destination.port", Value::Int(dp)),
                ("network.transport", s(proto)),
                ("azure.resource.id", s(fw_id)),
                ("azure.resource.name", s("AFW-HUB-WEU")),
                ("azure.subscription_id", s(SUB)),
                (
                    "message",
                    s(&format!(
                        "{proto} request from {src}:{sp} to {dst}:{dp}. Action: {action}"
                    )),
                ),
            ],
        );
        if let Some(u) = url {
            f.push(("url.original", s(u)));
        }
        v.push(rec(T0_NS + 3_000_000, f));
    }
    for (code, outcome, user, ip, sev) in [
        ("4624", "success", "CONTOSO\\svc-sql", "10.20.30.40", 2),
        ("4624", "success", "administrator", "::1", 2),
        ("4625", "failure", "admin", "185.220.101.4", 5),
    ] {
        v.push(rec(T0_NS + 4_000_000, vec![
            ("event.dataset", s("windows.wad")),
            ("event.code", s(code)),
            ("event.action", s(if outcome == "success" { "logged-in" } else { "logon-failed" })),
            ("event.category", list(&["authentication"])),
            ("event.outcome", s(outcome)),
            ("event.severity", Value::Int(sev)),
            ("user.name", s(user)),
            ("user.domain", s("CONTOSO")),
            ("source.ip", s(ip)),
            ("source.port", Value::Int(49_832)),
            ("host.name", s("vm-dc-01.contoso.local")),
            ("message", s("An account was successfully logged on.\r\n\r\nSubject:\r\n\tSecurity ID:\t\tS-1-5-18\r\n\tAccount Name:\t\tVM-DC-01$\r\n\tLogon Type:\t\t3")),
        ]));
    }
    v.push(rec(
        T0_NS,
        with(
            common("azure.auditlogs", "AuditLogs"),
            vec![
                ("event.action", s("Add member to group")),
                ("event.outcome", s("success")),
                ("event.severity", Value::Int(3)),
                ("user.name", s("dave@contoso.com")),
                ("user.target.name", s("Global Administrators")),
                ("user.target.id", s("62e90394-69f5-4237-9190-012177145e10")),
                (
                    "azure.correlation_id",
                    s("0f1e2d3c-4b5a-4697-8877-665544332211"),
                ),
            ],
        ),
    ));
    v.push(rec(
        T0_NS,
        with(
            common("azure.alerts", "Security"),
            vec![
                ("event.kind", s("alert")),
                ("event.action", s("Suspicious authentication activity")),
                ("rule.name", s("VM_SuspiciousAuthentication")),
                ("event.severity", Value::Int(8)),
                ("source.ip", s("185.220.101.4")),
                ("host.name", s("vm-web-01")),
                (
                    "message",
                    s(
                        &"Multiple failed sign-in attempts followed by a success were observed. "
                            .repeat(20),
                    ),
                ),
                ("azure.resource.id", s(vm_id)),
            ],
        ),
    ));
    v.push(rec(T0_NS, with(
        common("azure.platformlogs", "kube-audit"),
        vec![
            ("event.action", s("create")),
            ("event.severity", Value::Int(2)),
            ("user.name", s("system:serviceaccount:kube-system:replicaset-controller")),
            ("url.original", s("/api/v1/namespaces/default/pods?fieldManager=kube-controller-manager&labelSelector=app%3Dweb")),
            ("http.request.method", s("POST")),
            ("http.response.status_code", Value::Int(201)),
            ("source.ip", s("172.16.0.4")),
        ],
    )));
    v.push(signin(
        "田中太郎@contoso.co.jp",
        "203.0.113.99",
        "success",
        None,
        2,
    ));
    v
}

/// Values that try to break line formats: newlines, pipes, equals, backslashes, tabs, control
/// characters, long and non-Latin user names and URLs.
pub fn hostile_values() -> Vec<&'static str> {
    vec![
        "line1\nline2",
        "cr\rlf\r\nend",
        "pipe|in|value",
        "equals=in=value suser=forged",
        "back\\slash\\",
        "\\=\\|\\n literal escapes",
        "tab\tseparated\tvalue",
        "ctrl\u{0}nul\u{1}soh\u{7}bel\u{1b}[31mesc\u{7f}del",
        " leading and trailing spaces ",
        "cs1=forged rt=0 act=forged",
        "CEF:0|fake|header|1|x|y|10|",
        "LEEF:2.0|fake|header|1|x|^|",
        "Ĳsselmeer Ærøskøbing Ωμέγα Дмитрий 王小明 محمد עברית",
        "emoji 🧨💥 and ZWJ 👩‍💻",
        "https://evil.example/a?b=c&d=e|f#g\\h\ti\nj",
        "caret^delimiter^value",
        "x09 x5E 0x7C",
    ]
}
