//! `[source.eventhubs]`: resolved and checked.
use std::path::Path;

use azure_messaging_eventhubs::ConnectionString;

use crate::source::eventhubs::{Endpoint, ReaderOptions};
use crate::source::StartFrom;

use super::raw::{RawEventHubs, RawPartitions};
use super::secret::Secret;

/// The Event Hubs source, ready to connect.
#[derive(Debug, Clone)]
pub struct EventHubsConfig {
    /// Connection string (redacted in `Debug`), hub, consumer group, custom endpoint.
    pub endpoint: Endpoint,
    /// Namespace host, e.g. `ns.servicebus.windows.net` (checkpoint names use it).
    pub fully_qualified_namespace: String,
    /// Partitions to read; `None` = all of the hub's.
    pub partitions: Option<Vec<String>>,
    /// Where a partition without a checkpoint starts.
    pub start: StartFrom,
    /// Prefetch and owner level.
    pub reader: ReaderOptions,
    /// Share the partitions with the group's other consumers (`load_balancing = true`).
    pub balance: Option<crate::service::balance::BalanceSettings>,
}

const SECTION: &str = "[source.eventhubs]";

/// Key/value pairs of a connection string (keys lowercased), without validation.
fn pairs(cs: &str) -> Vec<(String, String)> {
    cs.split(';')
        .filter_map(|p| p.trim().split_once('='))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect()
}

fn get<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// Host and port of `Endpoint=sb://host[:port]/`.
fn endpoint_host_port(endpoint: &str) -> Option<(String, Option<u16>)> {
    let url = reqwest::Url::parse(endpoint).ok()?;
    Some((url.host_str()?.to_owned(), url.port()))
}

/// Resolves the section; every problem found is pushed to `problems`.
pub fn resolve(
    raw: &RawEventHubs,
    base: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<String>,
) -> Option<EventHubsConfig> {
    let start_len = problems.len();
    let connection_string = resolve_credential(raw, base, env, problems);

    let consumer_group = raw
        .consumer_group
        .clone()
        .unwrap_or_else(|| "$Default".to_owned());
    if consumer_group.trim().is_empty() {
        problems.push(format!(
            "{SECTION} consumer_group: empty; leave it out for `$Default` or name the group"
        ));
    }

    let partitions = match &raw.partitions {
        None => None,
        Some(RawPartitions::Word(w)) if w.trim().eq_ignore_ascii_case("all") => None,
        Some(RawPartitions::Word(w)) => Some(
            w.split(',')
                .map(|p| p.trim().to_owned())
                .filter(|p| !p.is_empty())
                .collect::<Vec<_>>(),
        ),
        Some(RawPartitions::List(l)) => Some(l.iter().map(|p| p.trim().to_owned()).collect()),
    };
    if let Some(list) = &partitions {
        let mut seen = std::collections::HashSet::new();
        if list.is_empty() || list.iter().any(String::is_empty) {
            problems.push(format!(
                "{SECTION} partitions: give \"all\" or a non-empty list of partition ids such as [\"0\", \"1\"]"
            ));
        }
        for p in list {
            if !seen.insert(p) {
                problems.push(format!("{SECTION} partitions: `{p}` is listed twice"));
            }
        }
    }

    let start = match raw.start_position.as_deref() {
        None => StartFrom::Earliest,
        Some(s) => match StartFrom::parse(s) {
            Ok(p) => p,
            Err(e) => {
                problems.push(format!("{SECTION} start_position: {e}"));
                StartFrom::Earliest
            }
        },
    };
    let prefetch = raw.prefetch.unwrap_or(300);
    if prefetch == 0 || prefetch > 10_000 {
        problems.push(format!(
            "{SECTION} prefetch: {prefetch} is out of range; use 1..=10000 (default 300)"
        ));
    }
    if let Some(level) = raw.owner_level {
        if level < 0 {
            problems.push(format!(
                "{SECTION} owner_level: {level} is negative; use 0 or more, or leave it out"
            ));
        }
    }

    let balance = resolve_balance(raw, partitions.is_some(), problems);

    let cs = connection_string?;
    let parsed: ConnectionString = match cs.expose().parse() {
        Ok(p) => p,
        Err(e) => {
            problems.push(format!(
                "{SECTION} connection string: {e}; copy it from the portal (Event Hubs namespace → Shared access policies), it looks like Endpoint=sb://<namespace>.servicebus.windows.net/;SharedAccessKeyName=<policy>;SharedAccessKey=<key>"
            ));
            return None;
        }
    };
    let kv = pairs(cs.expose());
    let endpoint_text = get(&kv, "endpoint").unwrap_or_default();
    if !endpoint_text.to_ascii_lowercase().starts_with("sb://") {
        problems.push(format!(
            "{SECTION} connection string: Endpoint must start with sb:// (found a different scheme)"
        ));
    }
    let hub = match (&raw.hub, &parsed.entity_path) {
        (Some(h), Some(e)) if h != e => {
            problems.push(format!(
                "{SECTION} hub: `{h}` conflicts with EntityPath `{e}` in the connection string; remove one"
            ));
            h.clone()
        }
        (Some(h), _) => h.clone(),
        (None, Some(e)) => e.clone(),
        (None, None) => {
            problems.push(format!(
                "{SECTION} hub: missing; set `hub = \"<event hub name>\"` or use a connection string with EntityPath"
            ));
            String::new()
        }
    };
    if raw.hub.as_deref().is_some_and(|h| h.trim().is_empty()) {
        problems.push(format!("{SECTION} hub: empty"));
    }
    let emulator =
        get(&kv, "usedevelopmentemulator").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let custom_endpoint = match &raw.custom_endpoint {
        Some(url) => {
            match reqwest::Url::parse(url) {
                Ok(u) if matches!(u.scheme(), "amqp" | "amqps") && u.host_str().is_some() => {}
                _ => problems.push(format!(
                    "{SECTION} custom_endpoint: `{url}` is not an amqp://host:port or amqps://host:port URL"
                )),
            }
            Some(url.clone())
        }
        None if emulator => endpoint_host_port(endpoint_text)
            .map(|(host, port)| format!("amqp://{host}:{}", port.unwrap_or(5672))),
        None => None,
    };
    if problems.len() > start_len {
        return None;
    }
    Some(EventHubsConfig {
        fully_qualified_namespace: parsed.fully_qualified_namespace.clone(),
        endpoint: Endpoint {
            connection_string: cs.expose().to_owned(),
            hub,
            consumer_group,
            custom_endpoint,
        },
        partitions,
        start,
        reader: ReaderOptions {
            prefetch,
            owner_level: raw.owner_level,
        },
        balance,
    })
}

/// A random (version 4) UUID, the owner id the SDKs use.
fn random_uuid() -> String {
    let mut b = fastrand::u128(..).to_be_bytes();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// `load_balancing`, its interval, expiry and owner id (defaults as the .NET processor: a
/// round every 10 s, claims expire after 30 s).
fn resolve_balance(
    raw: &RawEventHubs,
    has_partition_list: bool,
    problems: &mut Vec<String>,
) -> Option<crate::service::balance::BalanceSettings> {
    let on = raw.load_balancing.unwrap_or(false);
    let tuned = raw.load_balancing_interval_secs.is_some()
        || raw.ownership_expiration_secs.is_some()
        || raw.owner_id.is_some();
    if !on {
        if tuned {
            problems.push(format!(
                "{SECTION} load_balancing_interval_secs / ownership_expiration_secs / owner_id apply only with `load_balancing = true`"
            ));
        }
        return None;
    }
    if has_partition_list {
        problems.push(format!(
            "{SECTION} partitions: with `load_balancing = true` the instances claim the partitions themselves; remove `partitions` (or turn load balancing off to read a fixed list)"
        ));
    }
    let secs = |key: &str, v: Option<f64>, default: f64, problems: &mut Vec<String>| {
        let v = v.unwrap_or(default);
        if !(v.is_finite() && (0.1..=3600.0).contains(&v)) {
            problems.push(format!(
                "{SECTION} {key}: {v} is out of range; use 0.1..=3600 seconds"
            ));
            return std::time::Duration::from_secs_f64(default);
        }
        std::time::Duration::from_secs_f64(v)
    };
    let interval = secs(
        "load_balancing_interval_secs",
        raw.load_balancing_interval_secs,
        10.0,
        problems,
    );
    let expiry = secs(
        "ownership_expiration_secs",
        raw.ownership_expiration_secs,
        30.0,
        problems,
    );
    if expiry <= interval {
        problems.push(format!(
            "{SECTION} ownership_expiration_secs: must be longer than load_balancing_interval_secs (claims are renewed once per interval); the SDKs use 3 to 6 intervals"
        ));
    }
    let owner_id = match &raw.owner_id {
        Some(id) => {
            if id.is_empty() || id.len() > 128 || !id.bytes().all(|b| b.is_ascii_graphic()) {
                problems.push(format!(
                    "{SECTION} owner_id: use 1 to 128 printable ASCII characters without spaces (it is stored as blob metadata)"
                ));
            }
            id.clone()
        }
        None => random_uuid(),
    };
    Some(crate::service::balance::BalanceSettings {
        owner_id,
        interval,
        expiry,
    })
}

/// The connection string from `connection_string[_env|_file]` or namespace + SAS key.
fn resolve_credential(
    raw: &RawEventHubs,
    base: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<String>,
) -> Option<Secret> {
    let cs_spec = raw.connection_string_spec();
    let key_spec = raw.key_spec();
    let by_namespace = raw.namespace.is_some();
    if !cs_spec.is_empty() && (by_namespace || !key_spec.is_empty()) {
        problems.push(format!(
            "{SECTION}: give either a connection string or namespace + shared_access_key_name + shared_access_key, not both"
        ));
        return None;
    }
    if !cs_spec.is_empty() {
        return match cs_spec.resolve(&format!("{SECTION} connection_string"), base, env) {
            Ok(cs) => cs,
            Err(e) => {
                problems.push(e);
                None
            }
        };
    }
    let Some(namespace) = raw.namespace.as_deref().map(str::trim) else {
        problems.push(format!(
            "{SECTION}: no credentials; set connection_string_env = \"VAR\" (or connection_string_file, connection_string, AZLOG_EVENTHUBS_CONNECTION_STRING) or namespace + shared_access_key_name + shared_access_key_env"
        ));
        return None;
    };
    let mut ok = true;
    if namespace.is_empty() || namespace.contains('/') || namespace.contains(':') {
        problems.push(format!(
            "{SECTION} namespace: `{namespace}` is not a namespace name or host (e.g. `mynamespace` or `mynamespace.servicebus.windows.net`)"
        ));
        ok = false;
    }
    let key_name = raw.shared_access_key_name.as_deref().unwrap_or_default();
    if key_name.trim().is_empty() {
        problems.push(format!(
            "{SECTION} shared_access_key_name: missing; name the shared access policy (e.g. RootManageSharedAccessKey)"
        ));
        ok = false;
    }
    let key = match key_spec.resolve(&format!("{SECTION} shared_access_key"), base, env) {
        Ok(Some(k)) => Some(k),
        Ok(None) => {
            problems.push(format!(
                "{SECTION} shared_access_key: missing; set shared_access_key_env = \"VAR\" or shared_access_key_file"
            ));
            None
        }
        Err(e) => {
            problems.push(e);
            None
        }
    };
    let key = key?;
    if !ok {
        return None;
    }
    let host = if namespace.contains('.') {
        namespace.to_owned()
    } else {
        format!("{namespace}.servicebus.windows.net")
    };
    Some(Secret::new(format!(
        "Endpoint=sb://{host}/;SharedAccessKeyName={key_name};SharedAccessKey={}",
        key.expose()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(cs: &str) -> RawEventHubs {
        RawEventHubs {
            connection_string: Some(Secret::new(cs)),
            ..Default::default()
        }
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn portal_connection_string_with_entity_path() {
        let mut problems = Vec::new();
        let c = resolve(
            &raw("Endpoint=sb://myns.servicebus.windows.net/;SharedAccessKeyName=listen;SharedAccessKey=abc=;EntityPath=logs"),
            Path::new("."),
            &no_env,
            &mut problems,
        )
        .expect("valid");
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(c.endpoint.hub, "logs");
        assert_eq!(c.endpoint.consumer_group, "$Default");
        assert_eq!(c.fully_qualified_namespace, "myns.servicebus.windows.net");
        assert_eq!(c.endpoint.custom_endpoint, None);
        assert_eq!(c.start, StartFrom::Earliest);
        assert!(!format!("{c:?}").contains("abc="), "secret in Debug");
    }

    #[test]
    fn load_balancing_defaults_limits_and_conflicts() {
        const CS: &str = "Endpoint=sb://myns.servicebus.windows.net/;SharedAccessKeyName=listen;SharedAccessKey=abc=;EntityPath=logs";
        let run = |r: RawEventHubs| {
            let mut problems = Vec::new();
            let c = resolve(&r, Path::new("."), &no_env, &mut problems);
            (c, problems)
        };
        // Off by default.
        let (c, p) = run(raw(CS));
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(c.expect("valid").balance, None);
        // On: .NET defaults and a random UUID owner id per resolution.
        let on = || RawEventHubs {
            load_balancing: Some(true),
            ..raw(CS)
        };
        let (c, p) = run(on());
        assert!(p.is_empty(), "{p:?}");
        let b = c.expect("valid").balance.expect("balancing");
        assert_eq!(b.interval, std::time::Duration::from_secs(10));
        assert_eq!(b.expiry, std::time::Duration::from_secs(30));
        assert_eq!(b.owner_id.len(), 36);
        assert_eq!(b.owner_id.as_bytes()[14], b'4', "version 4: {}", b.owner_id);
        let (c2, _) = run(on());
        assert_ne!(c2.unwrap().balance.unwrap().owner_id, b.owner_id);
        // A fixed partition list and balancing exclude each other.
        let (c, p) = run(RawEventHubs {
            partitions: Some(RawPartitions::List(vec!["0".into()])),
            ..on()
        });
        assert!(c.is_none());
        assert!(p.iter().any(|m| m.contains("remove `partitions`")), "{p:?}");
        // The expiry must outlast a round; owner ids are metadata-safe.
        let (_, p) = run(RawEventHubs {
            load_balancing_interval_secs: Some(10.0),
            ownership_expiration_secs: Some(5.0),
            owner_id: Some("has space".into()),
            ..on()
        });
        assert!(p.iter().any(|m| m.contains("must be longer")), "{p:?}");
        assert!(p.iter().any(|m| m.contains("owner_id")), "{p:?}");
        // Tuning without switching it on is a mistake worth naming.
        let (_, p) = run(RawEventHubs {
            owner_id: Some("a".into()),
            ..raw(CS)
        });
        assert!(
            p.iter()
                .any(|m| m.contains("only with `load_balancing = true`")),
            "{p:?}"
        );
    }

    #[test]
    fn emulator_connection_string_derives_the_custom_endpoint() {
        let mut problems = Vec::new();
        let c = resolve(
            &raw("Endpoint=sb://localhost:5673;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=SAS_KEY_VALUE;UseDevelopmentEmulator=true;EntityPath=eh1"),
            Path::new("."),
            &no_env,
            &mut problems,
        )
        .expect("valid");
        assert_eq!(
            c.endpoint.custom_endpoint.as_deref(),
            Some("amqp://localhost:5673")
        );
        assert_eq!(c.fully_qualified_namespace, "localhost");
    }

    #[test]
    fn namespace_and_key() {
        let mut problems = Vec::new();
        let r = RawEventHubs {
            namespace: Some("myns".into()),
            shared_access_key_name: Some("listen".into()),
            shared_access_key_env: Some("KEY".into()),
            hub: Some("h".into()),
            partitions: Some(RawPartitions::List(vec!["0".into(), "3".into()])),
            start_position: Some("sequence:10".into()),
            owner_level: Some(0),
            ..Default::default()
        };
        let env = |k: &str| (k == "KEY").then(|| "c2VjcmV0".to_owned());
        let c = resolve(&r, Path::new("."), &env, &mut problems).expect("valid");
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(c.fully_qualified_namespace, "myns.servicebus.windows.net");
        assert_eq!(c.partitions, Some(vec!["0".into(), "3".into()]));
        assert_eq!(c.reader.owner_level, Some(0));
    }

    #[test]
    fn problems_say_what_to_fix() {
        let mut problems = Vec::new();
        let r = RawEventHubs {
            connection_string: Some(Secret::new(
                "Endpoint=sb://x.servicebus.windows.net/;SharedAccessKeyName=n;SharedAccessKey=k;EntityPath=a",
            )),
            hub: Some("b".into()),
            partitions: Some(RawPartitions::List(vec!["0".into(), "0".into()])),
            start_position: Some("sequence:abc".into()),
            prefetch: Some(0),
            custom_endpoint: Some("http://x".into()),
            ..Default::default()
        };
        assert!(resolve(&r, Path::new("."), &no_env, &mut problems).is_none());
        let all = problems.join("\n");
        for want in [
            "conflicts with EntityPath",
            "listed twice",
            "start_position",
            "prefetch",
            "custom_endpoint",
        ] {
            assert!(all.contains(want), "missing {want:?} in\n{all}");
        }
        assert!(!all.contains("SharedAccessKey=k"), "secret leaked: {all}");
        let mut problems = Vec::new();
        assert!(resolve(
            &RawEventHubs::default(),
            Path::new("."),
            &no_env,
            &mut problems
        )
        .is_none());
        assert!(problems[0].contains("no credentials"), "{problems:?}");
        let mut problems = Vec::new();
        assert!(resolve(
            &raw("Endpoint=sb://x/;SharedAccessKeyName=n"),
            Path::new("."),
            &no_env,
            &mut problems
        )
        .is_none());
        assert!(
            problems[0].contains("copy it from the portal"),
            "{problems:?}"
        );
    }
}
