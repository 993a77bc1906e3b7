//! Azure resource ids, split case-insensitively:
//! `/subscriptions/{sub}/resourceGroups/{rg}/providers/{Namespace}/{type}/{name}[/{subtype}/{subname}...]`.
//! Azure often upper-cases the whole id; parts come out as written except the provider and
//! type, which are lower-cased (`microsoft.keyvault`, `microsoft.keyvault/vaults`).
//! For nested or extension resources the last `providers` segment wins (the most specific
//! resource) and the name is the last name segment.

/// The parts of a resource id; each may be missing.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ResourceParts<'a> {
    /// Subscription id.
    pub subscription: Option<&'a str>,
    /// Resource group, as written.
    pub group: Option<&'a str>,
    /// Provider namespace, lower-cased.
    pub provider: Option<String>,
    /// `<namespace>/<type>[/<subtype>...]`, lower-cased.
    pub type_: Option<String>,
    /// The (last) resource name, as written.
    pub name: Option<&'a str>,
}

/// Splits a resource id. Returns `None` for text that is not a resource id.
pub fn split_resource_id(id: &str) -> Option<ResourceParts<'_>> {
    let id = id.trim();
    if !id.starts_with('/')
        && !id
            .get(..14)
            .is_some_and(|p| p.eq_ignore_ascii_case("subscriptions/"))
    {
        return None;
    }
    let segs: Vec<&str> = id.split('/').filter(|s| !s.is_empty()).collect();
    if segs.is_empty() {
        return None;
    }
    let mut parts = ResourceParts::default();
    let mut i = 0;
    let mut last_provider: Option<usize> = None;
    while i < segs.len() {
        let s = segs[i];
        if s.eq_ignore_ascii_case("subscriptions") && parts.subscription.is_none() {
            parts.subscription = segs.get(i + 1).copied();
            i += 2;
        } else if s.eq_ignore_ascii_case("resourceGroups") && parts.group.is_none() {
            parts.group = segs.get(i + 1).copied();
            i += 2;
        } else if s.eq_ignore_ascii_case("providers") {
            last_provider = Some(i);
            i += 2;
        } else {
            i += 1;
        }
    }
    if let Some(p) = last_provider {
        if let Some(ns) = segs.get(p + 1) {
            parts.provider = Some(ns.to_ascii_lowercase());
            // After the namespace: type/name pairs.
            let rest = &segs[p + 2..];
            if !rest.is_empty() {
                let mut ty = ns.to_ascii_lowercase();
                for (j, seg) in rest.iter().enumerate() {
                    if j % 2 == 0 {
                        ty.push('/');
                        ty.push_str(&seg.to_ascii_lowercase());
                    } else {
                        parts.name = Some(seg);
                    }
                }
                parts.type_ = Some(ty);
            }
        }
    } else if parts.group.is_some() {
        parts.name = parts.group;
    } else if parts.subscription.is_some() {
        parts.name = parts.subscription;
    }
    Some(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_form() {
        let p = split_resource_id(
            "/subscriptions/1111-2222/resourceGroups/rg-prod/providers/Microsoft.KeyVault/vaults/kv-01",
        )
        .unwrap();
        assert_eq!(p.subscription, Some("1111-2222"));
        assert_eq!(p.group, Some("rg-prod"));
        assert_eq!(p.provider.as_deref(), Some("microsoft.keyvault"));
        assert_eq!(p.type_.as_deref(), Some("microsoft.keyvault/vaults"));
        assert_eq!(p.name, Some("kv-01"));
    }

    #[test]
    fn upper_case_id() {
        let p = split_resource_id(
            "/SUBSCRIPTIONS/1111-2222/RESOURCEGROUPS/RG-PROD/PROVIDERS/MICROSOFT.NETWORK/NETWORKSECURITYGROUPS/NSG-WEB",
        )
        .unwrap();
        assert_eq!(p.subscription, Some("1111-2222"));
        assert_eq!(p.group, Some("RG-PROD"));
        assert_eq!(p.provider.as_deref(), Some("microsoft.network"));
        assert_eq!(
            p.type_.as_deref(),
            Some("microsoft.network/networksecuritygroups")
        );
        assert_eq!(p.name, Some("NSG-WEB"));
    }

    #[test]
    fn nested_extension_and_partial_forms() {
        let p = split_resource_id(
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Sql/servers/srv/databases/db1",
        )
        .unwrap();
        assert_eq!(p.type_.as_deref(), Some("microsoft.sql/servers/databases"));
        assert_eq!(p.name, Some("db1"));

        let p = split_resource_id(
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm/providers/Microsoft.Insights/diagnosticSettings/ds",
        )
        .unwrap();
        assert_eq!(p.provider.as_deref(), Some("microsoft.insights"));
        assert_eq!(p.name, Some("ds"));

        let p =
            split_resource_id("/subscriptions/s/providers/Microsoft.Security/alerts/a1/").unwrap();
        assert_eq!(p.subscription, Some("s"));
        assert_eq!(p.group, None);
        assert_eq!(p.provider.as_deref(), Some("microsoft.security"));
        assert_eq!(p.name, Some("a1"));

        let p = split_resource_id("/tenants/t/providers/Microsoft.aadiam").unwrap();
        assert_eq!(p.subscription, None);
        assert_eq!(p.provider.as_deref(), Some("microsoft.aadiam"));
        assert_eq!(p.type_, None);

        let p = split_resource_id("/subscriptions/s/resourcegroups/rg").unwrap();
        assert_eq!(p.group, Some("rg"));
        assert_eq!(p.name, Some("rg"));

        let p = split_resource_id("subscriptions/s").unwrap();
        assert_eq!(p.subscription, Some("s"));

        assert_eq!(split_resource_id("not-a-resource-id"), None);
        assert_eq!(split_resource_id(""), None);
        assert_eq!(split_resource_id("/"), None);
    }
}
