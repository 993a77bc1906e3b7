//! Value conversions named by schema tables (`convert = "..."`, see docs/schema-tables.md).
//!
//! Each conversion takes a source value ([`Node`]) and gives a canonical [`Value`] or
//! nothing (a value that cannot be converted is treated as absent, so the next `from` path
//! is tried). The parsing primitives live in the submodules and are tested there.
pub mod duration;
pub mod ip;
pub mod level;
pub mod resource;
pub mod text;
pub mod time;

use abi_stable::std_types::RVec;
use azlog_plugin_api::{Text, Value};

use crate::path::Node;
use duration::Unit;

/// A conversion, resolved from its name at load time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conversion {
    /// Strings as they are; numbers and bools as text; objects and arrays as JSON text.
    String,
    /// String, lower-cased.
    Lowercase,
    /// String, upper-cased.
    Uppercase,
    /// Integer from a number or numeric string.
    Int,
    /// Float from a number or numeric string.
    Float,
    /// Bool from a bool, `true/false/1/0/yes/no`.
    Bool,
    /// Any Azure time form; RFC 3339 UTC text (sets the record time for `@timestamp`).
    Timestamp,
    /// A strictly parsed IP address.
    Ip,
    /// A port 0–65535.
    Port,
    /// `event.severity` 0–10.
    Severity,
    /// `log.level` word.
    LogLevel,
    /// A duration number in the given unit → ns.
    Duration(Unit),
    /// A .NET TimeSpan → ns.
    DurationTimespan,
    /// The resource id as written.
    ResourceId,
    /// Resource group.
    ResourceGroup,
    /// Provider namespace, lower-cased.
    ResourceProvider,
    /// Resource name.
    ResourceName,
    /// `<namespace>/<type>`, lower-cased.
    ResourceType,
    /// Subscription id.
    ResourceSubscription,
    /// Domain of `user@domain` / `DOMAIN\user`.
    UpnDomain,
    /// User of `user@domain` / `DOMAIN\user`.
    UpnUser,
    /// List from a string split on whitespace and `,`.
    Split,
    /// List from a JSON array of scalars (or one scalar).
    List,
    /// JSON text (a JSON-in-string is parsed first).
    Json,
}

/// Every conversion name, for error messages.
pub const NAMES: &[&str] = &[
    "string",
    "lowercase",
    "uppercase",
    "int",
    "float",
    "bool",
    "timestamp",
    "ip",
    "port",
    "severity",
    "log_level",
    "duration_ms",
    "duration_s",
    "duration_us",
    "duration_ns",
    "duration_ticks",
    "duration_timespan",
    "resource_id",
    "resource_group",
    "resource_provider",
    "resource_name",
    "resource_type",
    "resource_subscription",
    "upn_domain",
    "upn_user",
    "split",
    "list",
    "json",
];

impl Conversion {
    /// Resolves a conversion name.
    pub fn from_name(name: &str) -> Option<Conversion> {
        use Conversion::*;
        Some(match name {
            "string" => String,
            "lowercase" => Lowercase,
            "uppercase" => Uppercase,
            "int" => Int,
            "float" => Float,
            "bool" => Bool,
            "timestamp" => Timestamp,
            "ip" => Ip,
            "port" => Port,
            "severity" => Severity,
            "log_level" => LogLevel,
            "duration_ms" => Duration(Unit::Ms),
            "duration_s" => Duration(Unit::S),
            "duration_us" => Duration(Unit::Us),
            "duration_ns" => Duration(Unit::Ns),
            "duration_ticks" => Duration(Unit::Ticks),
            "duration_timespan" => DurationTimespan,
            "resource_id" => ResourceId,
            "resource_group" => ResourceGroup,
            "resource_provider" => ResourceProvider,
            "resource_name" => ResourceName,
            "resource_type" => ResourceType,
            "resource_subscription" => ResourceSubscription,
            "upn_domain" => UpnDomain,
            "upn_user" => UpnUser,
            "split" => Split,
            "list" => List,
            "json" => Json,
            _ => return None,
        })
    }

    /// Converts one source value. `None` means "no value" (the next source is tried).
    pub fn apply(self, node: &Node<'_>) -> Option<Value> {
        use Conversion as C;
        match self {
            C::String => node.text().map(|t| str_value(&t)),
            C::Lowercase => node
                .text()
                .map(|t| Value::Str(Text::from(t.to_lowercase()))),
            C::Uppercase => node
                .text()
                .map(|t| Value::Str(Text::from(t.to_uppercase()))),
            C::Int => match node {
                Node::Int(i) => Some(Value::Int(*i)),
                Node::UInt(_) => None,
                Node::Float(f) => text::float_to_int(*f).map(Value::Int),
                Node::Str(s) => text::parse_int(s).map(Value::Int),
                _ => None,
            },
            C::Float => match node {
                Node::Int(i) => Some(Value::Float(*i as f64)),
                Node::UInt(u) => Some(Value::Float(*u as f64)),
                Node::Float(f) => Some(Value::Float(*f)),
                Node::Str(s) => text::parse_float(s).map(Value::Float),
                _ => None,
            },
            C::Bool => match node {
                Node::Bool(b) => Some(Value::Bool(*b)),
                Node::Int(0) => Some(Value::Bool(false)),
                Node::Int(1) => Some(Value::Bool(true)),
                Node::Str(s) => text::parse_bool(s).map(Value::Bool),
                _ => None,
            },
            C::Timestamp => timestamp_ns(node).map(|ns| Value::Str(Text::from(rfc3339(ns)))),
            C::Ip => node
                .as_str()
                .and_then(ip::parse_ip)
                .map(|a| Value::Str(Text::from(ip::ip_text(a)))),
            C::Port => match node {
                Node::Int(i) if (0..=65_535).contains(i) => Some(Value::Int(*i)),
                Node::Str(s) => ip::parse_port_str(s).map(Value::Int),
                _ => None,
            },
            C::Severity => match node {
                Node::Int(i) => level::severity_from_number(*i).map(Value::Int),
                Node::Str(s) => level::severity_from_word(s).map(Value::Int),
                _ => None,
            },
            C::LogLevel => match node {
                Node::Int(i) => level::log_level_from_number(*i).map(Value::from_static),
                Node::Str(s) => level::log_level(s).map(|w| match w {
                    std::borrow::Cow::Borrowed(w) => Value::from_static(w),
                    std::borrow::Cow::Owned(w) => Value::from(w),
                }),
                _ => None,
            },
            C::Duration(unit) => match node {
                Node::Int(i) => duration::from_int(*i, unit),
                Node::UInt(u) => duration::from_uint(*u, unit),
                Node::Float(f) => duration::from_float(*f, unit),
                Node::Str(s) => duration::from_str(s, unit),
                _ => None,
            }
            .map(Value::Int),
            C::DurationTimespan => match node {
                Node::Str(s) => duration::from_timespan(s),
                _ => None,
            }
            .map(Value::Int),
            C::ResourceId => node
                .as_str()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(Value::from),
            C::ResourceGroup => resource_part(node, |p| p.group.map(str::to_owned)),
            C::ResourceProvider => resource_part(node, |p| p.provider().map(str::to_owned)),
            C::ResourceName => resource_part(node, |p| p.name_text().map(|n| n.into_owned())),
            C::ResourceType => resource_part(node, |p| p.type_().map(str::to_owned)),
            C::ResourceSubscription => resource_part(node, |p| p.subscription_lower()),
            C::UpnDomain => node
                .as_str()
                .and_then(|s| text::split_upn(s).1)
                .map(Value::from),
            C::UpnUser => node
                .as_str()
                .and_then(|s| text::split_upn(s).0)
                .map(Value::from),
            C::Split => match node {
                Node::Str(s) => non_empty_list(text::split_list(s)),
                Node::Array(_) => list_of(node),
                _ => node.scalar_text().map(|t| list_value(vec![t.into_owned()])),
            },
            C::List => list_of(node),
            C::Json => Some(Value::Json(Text::from(match node {
                Node::Str(s) => match Node::parse(s) {
                    Ok(inner) => inner.to_json(),
                    Err(_) => node.to_json(),
                },
                _ => node.to_json(),
            }))),
        }
    }
}

impl Conversion {
    /// True for the conversions that pick a part of a split resource id (the mapper splits
    /// each resource id once per record and reuses the parts, see [`Conversion::resource_part`]).
    pub fn is_resource_part(self) -> bool {
        matches!(
            self,
            Conversion::ResourceGroup
                | Conversion::ResourceProvider
                | Conversion::ResourceName
                | Conversion::ResourceType
                | Conversion::ResourceSubscription
        )
    }

    /// The result of [`Conversion::apply`] for a resource-part conversion, from the parts of
    /// an already split id (`None` when the text was not a resource id). Other conversions
    /// give `None`.
    pub fn resource_part(self, parts: Option<&resource::ResourceParts<'_>>) -> Option<Value> {
        let parts = parts?;
        let part: Option<std::borrow::Cow<'_, str>> = match self {
            Conversion::ResourceGroup => parts.group.map(Into::into),
            Conversion::ResourceProvider => parts.provider().map(Into::into),
            Conversion::ResourceName => parts.name_text(),
            Conversion::ResourceType => parts.type_().map(Into::into),
            Conversion::ResourceSubscription => parts.subscription_lower().map(Into::into),
            _ => None,
        };
        part.filter(|s| !s.is_empty()).map(|s| match s {
            // Already an owned copy (lower-cased): no second copy.
            std::borrow::Cow::Owned(s) => Value::from(s),
            std::borrow::Cow::Borrowed(s) => Value::from(s),
        })
    }
}

/// Timestamp of a node: strings in any supported form, epoch numbers.
pub fn timestamp_ns(node: &Node<'_>) -> Option<i64> {
    match node {
        Node::Str(s) => time::parse_timestamp(s),
        Node::Int(i) => time::from_epoch_int(*i),
        Node::Float(f) => time::from_epoch_float(*f),
        _ => None,
    }
}

/// RFC 3339 UTC text of a nanosecond timestamp: `azlog_plugin_api::ecs::write_rfc3339_ns`
/// (ms, µs or ns, the shortest exact one) as a `String`.
pub fn rfc3339(ns: i64) -> String {
    let mut out = Vec::with_capacity(32);
    azlog_plugin_api::ecs::write_rfc3339_ns(ns, &mut out);
    // The writer emits ASCII only.
    String::from_utf8(out).unwrap_or_default()
}

fn str_value(s: &str) -> Value {
    Value::Str(Text::from(s))
}

fn list_value(items: Vec<String>) -> Value {
    Value::List(items.into_iter().map(Text::from).collect::<RVec<_>>())
}

fn non_empty_list(items: Vec<String>) -> Option<Value> {
    (!items.is_empty()).then(|| list_value(items))
}

fn list_of(node: &Node<'_>) -> Option<Value> {
    match node {
        Node::Array(items) => non_empty_list(
            items
                .iter()
                .filter_map(|i| i.text().map(|t| t.into_owned()))
                .collect(),
        ),
        Node::Null => None,
        _ => node.text().map(|t| list_value(vec![t.into_owned()])),
    }
}

fn resource_part(
    node: &Node<'_>,
    pick: impl FnOnce(resource::ResourceParts<'_>) -> Option<String>,
) -> Option<Value> {
    node.as_str()
        .and_then(resource::split_resource_id)
        .and_then(pick)
        .filter(|s| !s.is_empty())
        .map(Value::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    fn s(v: &str) -> Node<'_> {
        Node::Str(Cow::Borrowed(v))
    }
    fn conv(name: &str, n: &Node<'_>) -> Option<Value> {
        Conversion::from_name(name).unwrap().apply(n)
    }
    fn list(items: &[&str]) -> Value {
        Value::List(items.iter().map(|i| Text::from(*i)).collect())
    }

    #[test]
    fn rfc3339_uses_the_shortest_exact_precision() {
        for (ns, text) in [
            (0i64, "1970-01-01T00:00:00.000Z"),
            (-1, "1969-12-31T23:59:59.999999999Z"),
            (1_661_191_636_123_000_000, "2022-08-22T18:07:16.123Z"),
            (1_661_191_636_123_456_000, "2022-08-22T18:07:16.123456Z"),
            (1_661_191_636_123_456_789, "2022-08-22T18:07:16.123456789Z"),
            (951_782_400_000_001_000, "2000-02-29T00:00:00.000001Z"),
        ] {
            assert_eq!(rfc3339(ns), text, "{ns}");
        }
    }

    #[test]
    fn resource_part_matches_apply() {
        let ids = [
            "/SUBSCRIPTIONS/S1/RESOURCEGROUPS/RG/PROVIDERS/MICROSOFT.KEYVAULT/VAULTS/KV1",
            "/subscriptions/s/resourcegroups/rg",
            "/tenants/t/providers/Microsoft.aadiam",
            "subscriptions//resourceGroups/",
            "not-an-id",
        ];
        for id in ids {
            let parts = resource::split_resource_id(id);
            for name in NAMES {
                let c = Conversion::from_name(name).unwrap();
                if c.is_resource_part() {
                    assert_eq!(
                        c.resource_part(parts.as_ref()),
                        c.apply(&s(id)),
                        "{name} {id}"
                    );
                }
            }
        }
    }

    #[test]
    fn every_name_resolves() {
        for n in NAMES {
            assert!(Conversion::from_name(n).is_some(), "{n}");
        }
        assert!(Conversion::from_name("timestmap").is_none());
    }

    #[test]
    fn strings_and_cases() {
        assert_eq!(conv("string", &Node::Int(5)), Some("5".into()));
        assert_eq!(conv("string", &Node::Bool(false)), Some("false".into()));
        assert_eq!(
            conv("string", &Node::parse(r#"{"a":[1]}"#).unwrap()),
            Some(r#"{"a":[1]}"#.into())
        );
        assert_eq!(conv("lowercase", &s("MiXeD")), Some("mixed".into()));
        assert_eq!(conv("uppercase", &s("MiXeD")), Some("MIXED".into()));
    }

    #[test]
    fn numbers_and_bools() {
        assert_eq!(conv("int", &s("200")), Some(Value::Int(200)));
        assert_eq!(conv("int", &Node::Float(3.0)), Some(Value::Int(3)));
        assert_eq!(conv("int", &Node::Float(3.5)), None);
        assert_eq!(conv("int", &s("abc")), None);
        assert_eq!(conv("float", &s("1.25")), Some(Value::Float(1.25)));
        assert_eq!(conv("float", &Node::Int(2)), Some(Value::Float(2.0)));
        assert_eq!(conv("bool", &s("Yes")), Some(Value::Bool(true)));
        assert_eq!(conv("bool", &Node::Int(0)), Some(Value::Bool(false)));
        assert_eq!(conv("bool", &s("perhaps")), None);
    }

    #[test]
    fn timestamps_ips_ports() {
        assert_eq!(
            conv("timestamp", &s("8/22/2022 6:07:16 PM")),
            Some("2022-08-22T18:07:16.000Z".into())
        );
        assert_eq!(
            conv("timestamp", &Node::Int(1_661_191_636_123)),
            Some("2022-08-22T18:07:16.123Z".into())
        );
        assert_eq!(
            timestamp_ns(&Node::Float(1_661_191_636.5)),
            Some(1_661_191_636_500_000_000)
        );
        assert_eq!(conv("timestamp", &s("yesterday")), None);
        assert_eq!(conv("ip", &s("10.1.2.3:443")), Some("10.1.2.3".into()));
        assert_eq!(conv("ip", &s("<CALLER IP ADDRESS>")), None);
        assert_eq!(conv("ip", &s("10.0.0.0/8")), None);
        assert_eq!(conv("ip", &Node::Int(167_772_161)), None);
        assert_eq!(conv("port", &s("8080")), Some(Value::Int(8080)));
        assert_eq!(conv("port", &Node::Int(70_000)), None);
    }

    #[test]
    fn severity_levels_durations() {
        assert_eq!(conv("severity", &s("Warning")), Some(Value::Int(5)));
        assert_eq!(conv("severity", &Node::Int(2)), Some(Value::Int(7)));
        assert_eq!(conv("log_level", &Node::Int(4)), Some("information".into()));
        assert_eq!(
            conv("log_level", &s("Informational")),
            Some("information".into())
        );
        assert_eq!(
            conv("duration_ms", &Node::Int(1500)),
            Some(Value::Int(1_500_000_000))
        );
        assert_eq!(conv("duration_ms", &Node::Int(i64::MAX)), None);
        assert_eq!(conv("duration_ticks", &s("10")), Some(Value::Int(1000)));
        assert_eq!(
            conv("duration_s", &Node::Float(0.5)),
            Some(Value::Int(500_000_000))
        );
        assert_eq!(conv("duration_us", &Node::UInt(u64::MAX)), None);
        assert_eq!(conv("duration_ns", &Node::Int(-1)), None);
        assert_eq!(
            conv("duration_timespan", &s("00:00:02.5")),
            Some(Value::Int(2_500_000_000))
        );
    }

    #[test]
    fn resource_ids() {
        let id = s("/SUBSCRIPTIONS/S1/RESOURCEGROUPS/RG1/PROVIDERS/MICROSOFT.KEYVAULT/VAULTS/KV1");
        assert_eq!(
            conv("resource_id", &id),
            Some(Value::from(id.as_str().unwrap()))
        );
        assert_eq!(conv("resource_group", &id), Some("RG1".into()));
        assert_eq!(
            conv("resource_provider", &id),
            Some("microsoft.keyvault".into())
        );
        assert_eq!(conv("resource_name", &id), Some("KV1".into()));
        assert_eq!(
            conv("resource_type", &id),
            Some("microsoft.keyvault/vaults".into())
        );
        assert_eq!(conv("resource_subscription", &id), Some("s1".into()));
        assert_eq!(conv("resource_group", &s("nonsense")), None);
        assert_eq!(conv("resource_id", &s("  ")), None);
    }

    #[test]
    fn upns_lists_json() {
        assert_eq!(conv("upn_user", &s("bob@contoso.com")), Some("bob".into()));
        assert_eq!(
            conv("upn_domain", &s("CONTOSO\\bob")),
            Some("CONTOSO".into())
        );
        assert_eq!(conv("upn_domain", &s("bob")), None);
        assert_eq!(
            conv("split", &s("openid profile,email")),
            Some(list(&["openid", "profile", "email"]))
        );
        assert_eq!(conv("split", &s("   ")), None);
        assert_eq!(
            conv("list", &Node::parse(r#"["a", 1, true]"#).unwrap()),
            Some(list(&["a", "1", "true"]))
        );
        assert_eq!(conv("list", &s("one")), Some(list(&["one"])));
        assert_eq!(
            conv("json", &s(r#"{ "a" : [1, 2] }"#)),
            Some(Value::Json(Text::from(r#"{"a":[1,2]}"#)))
        );
        assert_eq!(
            conv("json", &s("not json")),
            Some(Value::Json(Text::from("\"not json\"")))
        );
        assert_eq!(
            conv("json", &Node::parse(r#"{"b":null}"#).unwrap()),
            Some(Value::Json(Text::from(r#"{"b":null}"#)))
        );
    }
}
