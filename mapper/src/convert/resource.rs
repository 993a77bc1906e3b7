//! Azure resource ids, split case-insensitively:
//! `/subscriptions/{sub}/resourceGroups/{rg}/providers/{Namespace}/{type}/{name}[/{subtype}/{subname}...]`.
//! Azure often upper-cases the whole id; parts come out as written except the provider and
//! type, which are lower-cased (`microsoft.keyvault`, `microsoft.keyvault/vaults`).
//! For nested or extension resources the last `providers` segment wins (the most specific
//! resource) and the name is the last name segment.
use azlog_plugin_api::byte_search::find_byte;

/// The parts of a resource id; each may be missing.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ResourceParts<'a> {
    /// Subscription id, as written (the `resource_subscription` conversion lower-cases it).
    pub subscription: Option<&'a str>,
    /// Resource group, as written.
    pub group: Option<&'a str>,
    /// The (last) resource name, as written.
    pub name: Option<&'a str>,
    /// `<namespace>[/<type>[/<subtype>...]]`, lower-cased, in one buffer: the provider is
    /// its first `provider_len` bytes (0: no provider), the type all of it when `has_type`.
    lower: String,
    provider_len: usize,
    has_type: bool,
}

impl ResourceParts<'_> {
    /// Provider namespace, lower-cased.
    pub fn provider(&self) -> Option<&str> {
        (self.provider_len > 0)
            .then(|| self.lower.get(..self.provider_len))
            .flatten()
    }

    /// `<namespace>/<type>[/<subtype>...]`, lower-cased.
    pub fn type_(&self) -> Option<&str> {
        (self.provider_len > 0 && self.has_type).then_some(self.lower.as_str())
    }

    /// The subscription id in its canonical lower-case form (ids are GUIDs, which Azure
    /// compares case-insensitively and writes in lower case in `subscriptionId` fields;
    /// resource ids often arrive upper-cased).
    pub fn subscription_lower(&self) -> Option<String> {
        self.subscription.map(str::to_ascii_lowercase)
    }

    /// The resource name; for an id that names a subscription only (`/subscriptions/{id}`)
    /// that is the subscription id, lower-cased like [`ResourceParts::subscription_lower`].
    pub fn name_text(&self) -> Option<std::borrow::Cow<'_, str>> {
        use std::borrow::Cow;
        let name = self.name?;
        let is_subscription = self.group.is_none()
            && self.provider_len == 0
            && self.subscription.is_some_and(|s| std::ptr::eq(s, name));
        Some(if is_subscription {
            Cow::Owned(name.to_ascii_lowercase())
        } else {
            Cow::Borrowed(name)
        })
    }
}

/// Splits a resource id. Returns `None` for text that is not a resource id.
///
/// Scope segments (`subscriptions/{id}`, `resourceGroups/{name}`, others skipped) come
/// first; after `providers/{Namespace}` the rest is read positionally as `type/name` pairs,
/// so a resource named like a keyword (`providers`, `subscriptions`) stays a name, and a
/// `providers` segment in a type position starts an extension resource (the last one wins).
pub fn split_resource_id(id: &str) -> Option<ResourceParts<'_>> {
    let id = id.trim();
    if !id.starts_with('/')
        && !id
            .get(..14)
            .is_some_and(|p| p.eq_ignore_ascii_case("subscriptions/"))
    {
        return None;
    }
    let mut segs = Segments::new(id);
    let mut next = segs.next();
    next?;
    let mut parts = ResourceParts::default();
    let mut saw_providers = false;
    // Scope part.
    while let Some(s) = next {
        next = segs.next();
        if s.eq_ignore_ascii_case("providers") {
            saw_providers = true;
            break;
        }
        if s.eq_ignore_ascii_case("subscriptions") && parts.subscription.is_none() {
            parts.subscription = next;
            next = segs.next();
        } else if s.eq_ignore_ascii_case("resourceGroups") && parts.group.is_none() {
            parts.group = next;
            next = segs.next();
        }
    }
    let any_providers = saw_providers;
    // Provider part: `{Namespace}` then type/name pairs; `providers` in a type position
    // starts over with the extension resource.
    while saw_providers {
        saw_providers = false;
        let Some(ns) = next else {
            parts.lower.clear();
            parts.provider_len = 0;
            parts.has_type = false;
            parts.name = None;
            break;
        };
        // One buffer for the provider and the whole type (no regrowth while the segments are
        // appended: they are no longer than the id).
        let ty = &mut parts.lower;
        ty.clear();
        ty.reserve(id.len());
        push_lower(ty, ns);
        parts.provider_len = ty.len();
        parts.name = None;
        let mut has_type = false;
        next = segs.next();
        while let Some(t) = next {
            if t.eq_ignore_ascii_case("providers") {
                saw_providers = true;
                next = segs.next();
                break;
            }
            ty.push('/');
            push_lower(ty, t);
            has_type = true;
            match segs.next() {
                Some(n) => parts.name = Some(n),
                None => {
                    next = None;
                    break;
                }
            }
            next = segs.next();
        }
        parts.has_type = has_type;
    }
    if !any_providers {
        parts.name = parts.group.or(parts.subscription);
    }
    Some(parts)
}

/// Appends `s` ASCII-lower-cased.
fn push_lower(out: &mut String, s: &str) {
    let from = out.len();
    out.push_str(s);
    if let Some(tail) = out.get_mut(from..) {
        tail.make_ascii_lowercase();
    }
}

/// The non-empty `/`-separated segments of a text (as `split('/')` without the empty ones,
/// on bytes: `/` is ASCII, so every cut is on a character boundary).
struct Segments<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Segments<'a> {
    fn new(s: &'a str) -> Self {
        Segments { s, pos: 0 }
    }
}

impl<'a> Iterator for Segments<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let b = self.s.as_bytes();
        while self.pos < b.len() {
            let start = self.pos;
            let end = find_byte(b, start, b'/').unwrap_or(b.len());
            self.pos = end + 1;
            if end > start {
                return self.s.get(start..end);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_the_non_empty_split() {
        for t in [
            "",
            "/",
            "//a",
            "a",
            "/a/b/",
            "a//b",
            "/\u{e9}/x\u{e9}//",
            "///",
            "/s/ab/c",
        ] {
            let want: Vec<&str> = t.split('/').filter(|s| !s.is_empty()).collect();
            let got: Vec<&str> = Segments::new(t).collect();
            assert_eq!(got, want, "{t:?}");
        }
    }

    #[test]
    fn standard_form() {
        let p = split_resource_id(
            "/subscriptions/1111-2222/resourceGroups/rg-prod/providers/Microsoft.KeyVault/vaults/kv-01",
        )
        .unwrap();
        assert_eq!(p.subscription, Some("1111-2222"));
        assert_eq!(p.group, Some("rg-prod"));
        assert_eq!(p.provider(), Some("microsoft.keyvault"));
        assert_eq!(p.type_(), Some("microsoft.keyvault/vaults"));
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
        assert_eq!(p.provider(), Some("microsoft.network"));
        assert_eq!(p.type_(), Some("microsoft.network/networksecuritygroups"));
        assert_eq!(p.name, Some("NSG-WEB"));
    }

    #[test]
    fn nested_extension_and_partial_forms() {
        let p = split_resource_id(
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Sql/servers/srv/databases/db1",
        )
        .unwrap();
        assert_eq!(p.type_(), Some("microsoft.sql/servers/databases"));
        assert_eq!(p.name, Some("db1"));

        let p = split_resource_id(
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm/providers/Microsoft.Insights/diagnosticSettings/ds",
        )
        .unwrap();
        assert_eq!(p.provider(), Some("microsoft.insights"));
        assert_eq!(p.name, Some("ds"));

        let p =
            split_resource_id("/subscriptions/s/providers/Microsoft.Security/alerts/a1/").unwrap();
        assert_eq!(p.subscription, Some("s"));
        assert_eq!(p.group, None);
        assert_eq!(p.provider(), Some("microsoft.security"));
        assert_eq!(p.name, Some("a1"));

        let p = split_resource_id("/tenants/t/providers/Microsoft.aadiam").unwrap();
        assert_eq!(p.subscription, None);
        assert_eq!(p.provider(), Some("microsoft.aadiam"));
        assert_eq!(p.type_(), None);

        let p = split_resource_id("/subscriptions/s/resourcegroups/rg").unwrap();
        assert_eq!(p.group, Some("rg"));
        assert_eq!(p.name, Some("rg"));

        let p = split_resource_id("subscriptions/s").unwrap();
        assert_eq!(p.subscription, Some("s"));

        assert_eq!(split_resource_id("not-a-resource-id"), None);
        assert_eq!(split_resource_id(""), None);
        assert_eq!(split_resource_id("/"), None);
    }

    #[test]
    fn nested_names_are_the_last_name() {
        let p = split_resource_id(
            "/subscriptions/s/resourceGroups/rg/providers/A.B/type1/name1/type2/name2",
        )
        .unwrap();
        assert_eq!(p.provider(), Some("a.b"));
        assert_eq!(p.type_(), Some("a.b/type1/type2"));
        assert_eq!(p.name, Some("name2"));
        // A collection path (type without a name) keeps the parent's name.
        let p = split_resource_id(
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/st1/blobServices",
        )
        .unwrap();
        assert_eq!(
            p.type_(),
            Some("microsoft.storage/storageaccounts/blobservices")
        );
        assert_eq!(p.name, Some("st1"));
    }

    #[test]
    fn names_that_look_like_keywords_stay_names() {
        let p = split_resource_id(
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/providers",
        )
        .unwrap();
        assert_eq!(p.provider(), Some("microsoft.compute"));
        assert_eq!(p.type_(), Some("microsoft.compute/virtualmachines"));
        assert_eq!(p.name, Some("providers"));
        let p = split_resource_id(
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Web/sites/subscriptions",
        )
        .unwrap();
        assert_eq!(p.subscription, Some("s"));
        assert_eq!(p.name, Some("subscriptions"));
        // `providers` with nothing after it names no provider and no resource.
        let p = split_resource_id("/subscriptions/s/resourceGroups/rg/providers").unwrap();
        assert_eq!(p.group, Some("rg"));
        assert_eq!((p.provider(), p.type_(), p.name), (None, None, None));
    }

    #[test]
    fn subscription_only_ids_and_canonical_case() {
        let p = split_resource_id("/SUBSCRIPTIONS/6D3B9F2A-1C4E-4B8A-9F0E-2A7C5D8E1B34").unwrap();
        assert_eq!(p.subscription, Some("6D3B9F2A-1C4E-4B8A-9F0E-2A7C5D8E1B34"));
        assert_eq!(
            p.subscription_lower().as_deref(),
            Some("6d3b9f2a-1c4e-4b8a-9f0e-2a7c5d8e1b34")
        );
        // The resource a subscription-scope id names is the subscription itself (as in
        // the Azure SDKs' ResourceIdentifier); its name is the id, in its canonical case.
        assert_eq!(
            p.name_text().as_deref(),
            Some("6d3b9f2a-1c4e-4b8a-9f0e-2a7c5d8e1b34")
        );
        assert_eq!((p.group, p.provider(), p.type_()), (None, None, None));
        let p = split_resource_id("/SUBSCRIPTIONS/S1/RESOURCEGROUPS/RG-A").unwrap();
        assert_eq!(p.name_text().as_deref(), Some("RG-A"));
        let p = split_resource_id("/subscriptions/S1/providers/Microsoft.Security/pricings/S1")
            .unwrap();
        assert_eq!(p.name_text().as_deref(), Some("S1"));
    }
}
