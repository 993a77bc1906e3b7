//! Partition ownership claims on Azure Blob, in the official Event Hubs SDK layout (see
//! [`super::ownership`]); the same protocol as Python `azure-eventhub-checkpointstoreblob`
//! (`list_ownership`, `_claim_one_partition`, `_upload_ownership`) and .NET.
//!
//! * Blob `<fqns>/<hub>/<consumer group>/ownership/<partition>`, **lowercase**; an empty block
//!   blob with metadata `ownerid` (empty: released). The record's version is the blob's ETag, its
//!   claim time the blob's Last-Modified (one-second resolution).
//! * List: List Blobs with that prefix and `include=metadata`. Partition = last name segment,
//!   owner = `ownerid` (a blob without it reads as released, where Python raises `KeyError`),
//!   ETag = `Properties/Etag`. Storage lists ETags unquoted (`0x8D…`) but answers writes with
//!   quoted ones (`"0x8D…"`); both are accepted in `If-Match`, and the Python SDK hands either
//!   back as it got it. Here listed ETags are quoted, so a record has one ETag whether it was
//!   listed or just written (the load balancer may compare them).
//! * Claim with an ETag: `Set Blob Metadata` with `If-Match: <etag>`. A 404 (the record was
//!   deleted) is a lost claim; Python then sends `Put Blob` with the same `If-Match`, which
//!   cannot succeed either.
//! * First claim (no ETag): `Put Blob` with `If-None-Match: *` directly. Python first sends
//!   `Set Blob Metadata` with `If-None-Match: *`, which can never succeed (404 without a blob,
//!   412 with one), except that Azurite ignores that condition on Set Blob Metadata and lets the
//!   claim overwrite an existing owner; Put Blob's condition Azurite does honour.
//! * The new ETag and Last-Modified come from the answer's headers. 412 `ConditionNotMet` /
//!   409 `BlobAlreadyExists`: another writer won, the claim is left out.
//! * Any other failure of one claim is logged (warning) and that claim is left out: the Python
//!   SDK instead *keeps* such a claim as if it had succeeded (with its old ETag; seen even for a
//!   missing container), which makes its processor read a partition it may not own; leaving it
//!   out only delays a claim to the next round. When **every** claim failed at the store level
//!   (transport, authorization, throttling, a 5xx answer or a missing container), the storage
//!   account is unusable rather than the claims contested, so the first error is returned for
//!   the caller to back off instead of concluding it lost every partition.
//! * Claims run concurrently, at most [`CLAIM_CONCURRENCY`] at a time.
//! * The Go, Java and Rust SDK processors write ownership blobs under the names in the case
//!   they were given (`$Default`, not `$default`): they cannot see our claims nor we theirs, so
//!   both would read every partition. When the names are not all lowercase, each listing also
//!   lists the verbatim-case prefix; live claims there (written within
//!   [`FOREIGN_CLAIM_MAX_AGE_SECS`]) are logged as a warning, once per change of their owners,
//!   telling the operator to give each kind of processor its own consumer group. They are not
//!   merged into the balance: claims we cannot write to the same blobs would not exclude anyone.

use super::blob::{status_error, BlobCheckpointStore, ListedBlob};
use super::ownership::{Ownership, OwnershipStore};
use super::{CheckpointError, CheckpointKey};
use async_trait::async_trait;
use futures::StreamExt;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, Response, StatusCode};
use std::time::UNIX_EPOCH;

/// Metadata key of the owner id (the SDKs' `ownerid`).
const META_OWNER: &str = "ownerid";
/// Claims in flight at once (a hub has up to 32 partitions, usually claimed a few at a time).
pub const CLAIM_CONCURRENCY: usize = 8;
/// A verbatim-case claim modified within this many seconds counts as live (the SDKs renew
/// every 10 s by default and expire claims after 30 s–2 min).
pub const FOREIGN_CLAIM_MAX_AGE_SECS: i64 = 300;

/// What became of one claim.
#[derive(Debug)]
enum ClaimOutcome {
    Won(Ownership),
    /// Another writer changed (or created) the record first.
    Lost,
    Failed(CheckpointError),
}

impl BlobCheckpointStore {
    /// The (lowercase) ownership blob name of a partition.
    pub fn ownership_blob_name(key: &CheckpointKey, partition: &str) -> String {
        format!("{}{}", key.ownership_prefix(), partition.to_lowercase())
    }

    /// Live claims under the verbatim-case ownership prefix `<fqns>/<hub>/<cg>/ownership/`
    /// (as the Go, Java and Rust SDK processors write them), sorted by partition; empty when
    /// that prefix is the lowercase one. A released claim (empty owner) or one not modified
    /// within [`FOREIGN_CLAIM_MAX_AGE_SECS`] of `now_ns` is left out.
    pub async fn verbatim_case_claims(
        &self,
        key: &CheckpointKey,
        now_ns: i64,
    ) -> Result<Vec<Ownership>, CheckpointError> {
        let verbatim = key.verbatim_prefix("ownership");
        if verbatim == key.ownership_prefix() {
            return Ok(Vec::new());
        }
        let mut live: Vec<Ownership> = self
            .list_blobs(&verbatim)
            .await?
            .into_iter()
            .filter_map(|b| ownership_from_listing(b).ok())
            .filter(|o| is_live(o, now_ns))
            .collect();
        live.sort_by(|a, b| a.partition.cmp(&b.partition));
        Ok(live)
    }

    /// Warns when the owners of verbatim-case claims changed since the last listing.
    async fn warn_about_verbatim_case_claims(&self, key: &CheckpointKey) {
        let now_ns = azlog_mapper::deadletter::now_ns();
        let claims = match self.verbatim_case_claims(key, now_ns).await {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(error = %e, "listing verbatim-case ownership blobs failed");
                return;
            }
        };
        let mut owners: Vec<String> = claims.iter().map(|o| o.owner_id.clone()).collect();
        owners.sort();
        owners.dedup();
        let changed = {
            let mut seen = self
                .foreign_owners
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let changed = *seen != owners;
            *seen = owners.clone();
            changed
        };
        if changed && !owners.is_empty() {
            tracing::warn!(
                prefix = %key.verbatim_prefix("ownership"),
                owners = ?owners,
                partitions = ?claims.iter().map(|o| o.partition.as_str()).collect::<Vec<_>>(),
                "another event processor (Go, Java or Rust SDK, which do not lowercase blob names) claims partitions of this consumer group under the verbatim-case ownership prefix; it cannot see our claims, so both read every partition: give each kind of processor its own consumer group"
            );
        }
    }

    async fn claim_one(&self, key: &CheckpointKey, claim: Ownership) -> ClaimOutcome {
        match self.try_claim(key, &claim).await {
            Ok(Some((etag, last_modified_ns))) => ClaimOutcome::Won(Ownership {
                etag: Some(etag),
                last_modified_ns,
                ..claim
            }),
            Ok(None) => {
                tracing::debug!(
                    partition = %claim.partition,
                    owner = %claim.owner_id,
                    "ownership claim lost to another writer"
                );
                ClaimOutcome::Lost
            }
            Err(e) => ClaimOutcome::Failed(e),
        }
    }

    /// `Ok(Some((etag, last_modified_ns)))` when written, `Ok(None)` when the condition failed.
    async fn try_claim(
        &self,
        key: &CheckpointKey,
        claim: &Ownership,
    ) -> Result<Option<(String, i64)>, CheckpointError> {
        let name = Self::ownership_blob_name(key, &claim.partition);
        let mut headers = HeaderMap::new();
        headers.insert(
            HeaderName::from_static("x-ms-meta-ownerid"),
            HeaderValue::from_str(&claim.owner_id).map_err(|_| CheckpointError::Invalid {
                what: name.clone(),
                reason: format!(
                    "owner id {:?} is not a valid metadata value",
                    claim.owner_id
                ),
            })?,
        );
        // As Python: an empty ETag counts as none.
        if let Some(etag) = claim.etag.as_deref().filter(|e| !e.is_empty()) {
            let value = HeaderValue::from_str(etag).map_err(|_| CheckpointError::Invalid {
                what: name.clone(),
                reason: format!("etag {etag:?} is not a valid header value"),
            })?;
            headers.insert(reqwest::header::IF_MATCH, value);
            let mut url = self.blob_url(&name)?;
            url.set_query(Some("comp=metadata"));
            let resp = self
                .send("set ownership metadata", &name, Method::PUT, url, headers)
                .await?;
            return match resp.status() {
                StatusCode::OK => written(&name, &resp).map(Some),
                // 404: the record read is gone (deleted), so it cannot match. Python then
                // tries Put Blob with the same If-Match, which fails as well.
                StatusCode::PRECONDITION_FAILED | StatusCode::CONFLICT | StatusCode::NOT_FOUND => {
                    Ok(None)
                }
                _ => Err(status_error("set ownership metadata", &name, &resp)),
            };
        }
        // First claim: create the empty blob with the metadata only if none exists (409
        // `BlobAlreadyExists`, or 412, when another writer created it first).
        headers.insert(
            reqwest::header::IF_NONE_MATCH,
            HeaderValue::from_static("*"),
        );
        headers.insert(
            HeaderName::from_static("x-ms-blob-type"),
            HeaderValue::from_static("BlockBlob"),
        );
        let url = self.blob_url(&name)?;
        let resp = self
            .send("put ownership blob", &name, Method::PUT, url, headers)
            .await?;
        match resp.status() {
            StatusCode::CREATED => written(&name, &resp).map(Some),
            StatusCode::PRECONDITION_FAILED | StatusCode::CONFLICT => Ok(None),
            _ => Err(status_error("put ownership blob", &name, &resp)),
        }
    }
}

/// ETag and Last-Modified of a successful write.
fn written(name: &str, resp: &Response) -> Result<(String, i64), CheckpointError> {
    let header = |h: reqwest::header::HeaderName| {
        resp.headers()
            .get(&h)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .ok_or_else(|| CheckpointError::Invalid {
                what: name.to_owned(),
                reason: format!("storage answered without a valid {h} header"),
            })
    };
    let etag = header(reqwest::header::ETAG)?;
    let last_modified = header(reqwest::header::LAST_MODIFIED)?;
    Ok((etag, http_date_ns(name, &last_modified)?))
}

/// An RFC 1123 date (`Sun, 29 Nov 2026 22:41:03 GMT`) as ns since the Unix epoch.
fn http_date_ns(name: &str, date: &str) -> Result<i64, CheckpointError> {
    let invalid = |reason: String| CheckpointError::Invalid {
        what: name.to_owned(),
        reason,
    };
    let t = httpdate::parse_http_date(date)
        .map_err(|e| invalid(format!("Last-Modified {date:?}: {e}")))?;
    let since = t
        .duration_since(UNIX_EPOCH)
        .map_err(|_| invalid(format!("Last-Modified {date:?} is before 1970")))?;
    i64::try_from(since.as_nanos())
        .map_err(|_| invalid(format!("Last-Modified {date:?} overflows")))
}

/// An ownership record from a listed blob.
fn ownership_from_listing(blob: ListedBlob) -> Result<Ownership, CheckpointError> {
    let partition = blob
        .name
        .rsplit('/')
        .next()
        .unwrap_or(&blob.name)
        .to_owned();
    let last_modified = blob
        .last_modified
        .as_deref()
        .ok_or_else(|| CheckpointError::Invalid {
            what: blob.name.clone(),
            reason: "listing has no Last-Modified".into(),
        })?;
    let last_modified_ns = http_date_ns(&blob.name, last_modified)?;
    Ok(Ownership {
        partition,
        owner_id: blob.metadata.get(META_OWNER).cloned().unwrap_or_default(),
        etag: blob.etag.filter(|e| !e.is_empty()).map(quoted),
        last_modified_ns,
    })
}

/// A claim with an owner, modified within [`FOREIGN_CLAIM_MAX_AGE_SECS`] of `now_ns`.
fn is_live(o: &Ownership, now_ns: i64) -> bool {
    !o.owner_id.is_empty()
        && now_ns.saturating_sub(o.last_modified_ns) <= FOREIGN_CLAIM_MAX_AGE_SECS * 1_000_000_000
}

/// An ETag in its header form: quoted (`"0x8D…"`); weak or already quoted ones unchanged.
fn quoted(etag: String) -> String {
    if etag.starts_with('"') || etag.starts_with("W/") {
        etag
    } else {
        format!("\"{etag}\"")
    }
}

/// Failures that say the store is unusable (not that a claim is contested or malformed).
fn is_store_level(e: &CheckpointError) -> bool {
    match e {
        CheckpointError::Http { .. } | CheckpointError::Config(_) => true,
        CheckpointError::Status { status, code, .. } => {
            matches!(status, 401 | 403 | 408 | 429) || *status >= 500 || code == "ContainerNotFound"
        }
        CheckpointError::Io { .. } | CheckpointError::Invalid { .. } => false,
    }
}

#[async_trait]
impl OwnershipStore for BlobCheckpointStore {
    async fn list_ownership(&self, key: &CheckpointKey) -> Result<Vec<Ownership>, CheckpointError> {
        let mut out = self
            .list_blobs(&key.ownership_prefix())
            .await?
            .into_iter()
            .map(ownership_from_listing)
            .collect::<Result<Vec<_>, _>>()?;
        out.sort_by(|a, b| a.partition.cmp(&b.partition));
        self.warn_about_verbatim_case_claims(key).await;
        Ok(out)
    }

    async fn claim_ownership(
        &self,
        key: &CheckpointKey,
        claims: Vec<Ownership>,
    ) -> Result<Vec<Ownership>, CheckpointError> {
        let total = claims.len();
        let outcomes: Vec<(String, ClaimOutcome)> = futures::stream::iter(claims)
            .map(|claim| async move {
                let partition = claim.partition.clone();
                (partition, self.claim_one(key, claim).await)
            })
            .buffer_unordered(CLAIM_CONCURRENCY)
            .collect()
            .await;
        let mut won = Vec::new();
        let mut failed = Vec::new();
        for (partition, outcome) in outcomes {
            match outcome {
                ClaimOutcome::Won(o) => won.push(o),
                ClaimOutcome::Lost => {}
                ClaimOutcome::Failed(e) => failed.push((partition, e)),
            }
        }
        if total > 0 && failed.len() == total && failed.iter().all(|(_, e)| is_store_level(e)) {
            let (_, first) = failed.swap_remove(0);
            return Err(first);
        }
        for (partition, e) in &failed {
            tracing::warn!(
                store = %self.describe(),
                partition = %partition,
                error = %e,
                "ownership claim failed; left out of this round"
            );
        }
        won.sort_by(|a, b| a.partition.cmp(&b.partition));
        Ok(won)
    }

    fn describe(&self) -> String {
        super::CheckpointStore::describe(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn listed(name: &str, owner: Option<&str>, etag: Option<&str>, lm: Option<&str>) -> ListedBlob {
        let mut metadata = BTreeMap::new();
        if let Some(o) = owner {
            metadata.insert(META_OWNER.to_owned(), o.to_owned());
        }
        ListedBlob {
            name: name.into(),
            metadata,
            etag: etag.map(str::to_owned),
            last_modified: lm.map(str::to_owned),
        }
    }

    #[test]
    fn ownership_from_listed_blob() {
        let o = ownership_from_listing(listed(
            "ns/hub/$default/ownership/7",
            Some("abc"),
            Some("0x8D"),
            Some("Sun, 29 Nov 2026 22:41:03 GMT"),
        ))
        .unwrap();
        assert_eq!(o.partition, "7");
        assert_eq!(o.owner_id, "abc");
        assert_eq!(o.etag.as_deref(), Some("\"0x8D\""));
        // 2026-11-29T22:41:03Z
        assert_eq!(o.last_modified_ns, 1_795_992_063_000_000_000);
        // No ownerid metadata: released.
        let o = ownership_from_listing(listed(
            "a/0",
            None,
            Some("e"),
            Some("Thu, 01 Jan 1970 00:00:01 GMT"),
        ))
        .unwrap();
        assert_eq!(o.owner_id, "");
        assert_eq!(o.last_modified_ns, 1_000_000_000);
        assert_eq!(quoted("\"x\"".into()), "\"x\"");
        assert!(ownership_from_listing(listed("a/0", None, None, None)).is_err());
        assert!(ownership_from_listing(listed("a/0", None, None, Some("yesterday"))).is_err());
    }

    #[test]
    fn ownership_blob_name_is_lowercase() {
        let key = CheckpointKey::new("MyNs.servicebus.windows.net", "Hub", "$Default");
        assert_eq!(
            BlobCheckpointStore::ownership_blob_name(&key, "AB"),
            "myns.servicebus.windows.net/hub/$default/ownership/ab"
        );
    }

    #[test]
    fn live_foreign_claims_have_an_owner_and_are_recent() {
        let at = |owner: &str, lm: i64| Ownership {
            partition: "0".into(),
            owner_id: owner.into(),
            etag: None,
            last_modified_ns: lm,
        };
        let now = 1_000 * 1_000_000_000;
        let max = FOREIGN_CLAIM_MAX_AGE_SECS * 1_000_000_000;
        assert!(is_live(&at("go", now), now));
        assert!(is_live(&at("go", now - max), now));
        assert!(!is_live(&at("go", now - max - 1), now), "expired long ago");
        assert!(!is_live(&at("", now), now), "released");
        assert!(is_live(&at("go", now + 5_000_000_000), now), "clock skew");
    }

    #[test]
    fn store_level_errors() {
        let status = |status| CheckpointError::Status {
            op: "x",
            blob: "b".into(),
            status,
            code: String::new(),
        };
        assert!(is_store_level(&status(403)));
        assert!(is_store_level(&status(503)));
        assert!(!is_store_level(&status(400)));
        assert!(is_store_level(&CheckpointError::Status {
            op: "x",
            blob: "b".into(),
            status: 404,
            code: "ContainerNotFound".into(),
        }));
        assert!(!is_store_level(&CheckpointError::Invalid {
            what: "b".into(),
            reason: "r".into()
        }));
    }
}
