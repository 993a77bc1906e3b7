//! Parsing of link addresses. Clients send full URLs (`amqps://host/eh1/Partitions/0`) or bare
//! paths; only the path counts, segment names are case-insensitive.

/// What a link address designates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// `$cbs` claims-based-security node.
    Cbs,
    /// `$management` node.
    Management,
    /// `<hub>`: send to the hub (partition chosen by key or round robin).
    Hub { hub: String },
    /// `<hub>/Partitions/<id>`: send to one partition.
    Partition { hub: String, partition: String },
    /// `<hub>/ConsumerGroups/<cg>/Partitions/<id>`: receive from one partition.
    Consumer {
        hub: String,
        consumer_group: String,
        partition: String,
    },
}

/// Strips scheme and host from a URL; returns the path without leading `/`.
fn path_of(address: &str) -> &str {
    let rest = match address.find("://") {
        Some(i) => {
            let after = &address[i + 3..];
            after.find('/').map_or("", |j| &after[j..])
        }
        None => address,
    };
    rest.trim_start_matches('/').trim_end_matches('/')
}

/// Parses an address; `None` when it matches no known shape.
pub fn parse(address: &str) -> Option<Address> {
    let path = path_of(address);
    let segments: Vec<&str> = path.split('/').collect();
    let eq = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
    match segments.as_slice() {
        [.., last] if eq(last, "$cbs") => Some(Address::Cbs),
        [.., last] if eq(last, "$management") => Some(Address::Management),
        [hub] if !hub.is_empty() => Some(Address::Hub {
            hub: hub.to_string(),
        }),
        [hub, p, id] if eq(p, "partitions") => Some(Address::Partition {
            hub: hub.to_string(),
            partition: id.to_string(),
        }),
        [hub, c, cg, p, id] if eq(c, "consumergroups") && eq(p, "partitions") => {
            Some(Address::Consumer {
                hub: hub.to_string(),
                consumer_group: cg.to_string(),
                partition: id.to_string(),
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_addresses() {
        assert_eq!(parse("$cbs"), Some(Address::Cbs));
        assert_eq!(parse("$management"), Some(Address::Management));
        assert_eq!(
            parse("amqps://localhost/eh1"),
            Some(Address::Hub { hub: "eh1".into() })
        );
        assert_eq!(parse("eh1"), Some(Address::Hub { hub: "eh1".into() }));
        assert_eq!(
            parse("amqps://localhost:5672/eh1/Partitions/1"),
            Some(Address::Partition {
                hub: "eh1".into(),
                partition: "1".into()
            })
        );
        assert_eq!(
            parse("amqps://localhost/eh1/ConsumerGroups/$default/Partitions/0"),
            Some(Address::Consumer {
                hub: "eh1".into(),
                consumer_group: "$default".into(),
                partition: "0".into()
            })
        );
        assert_eq!(parse("amqps://localhost/"), None);
        assert_eq!(parse("a/b"), None);
    }
}
