//! Azure Blob checkpoint store in the official Event Hubs SDK layout.
//!
//! * Blob `<fqns>/<hub>/<consumer group>/checkpoint/<partition>`, **lowercase** (Python, .NET and JS
//!   lowercase; Go/Java/Rust write verbatim case, so reads fall back to the verbatim-case name).
//! * Empty block blob; state in metadata `offset` (string) and `sequencenumber` (decimal), both
//!   **always written** (Python's `list_checkpoints` crashes without either). An unknown offset
//!   is written as `"-1"` (start of stream: an SDK processor then re-reads from the beginning,
//!   duplicates but no loss). Never `""`: the Python SDK reads an empty metadata value back as
//!   `None`, stringifies it to `"None"` and resumes from the invalid offset `'None'` (seen in
//!   tests/checkpoint_python_interop.rs). Stored `""`/`"-1"` offsets (.NET writes `""`) read as
//!   `None`. azlog-hub also writes `azlogenqueuedns` when known; the SDKs ignore it (and drop it
//!   when they overwrite).
//! * Update = `Set Blob Metadata`; on 404 `Put Blob` with the metadata (same as the SDKs).
//!
//! Requests are plain REST via `reqwest` and signed with SharedKey (or a SAS) by
//! [`crate::azure_storage`].

use super::{Checkpoint, CheckpointError, CheckpointKey, CheckpointStore};
use crate::azure_storage::{encode_blob_path, join_url, StorageConnection, StorageService};
use async_trait::async_trait;
use quick_xml::events::Event;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, Response, StatusCode, Url};
use std::collections::BTreeMap;
use std::time::Duration;

const META_OFFSET: &str = "offset";
const META_SEQUENCE: &str = "sequencenumber";
const META_ENQUEUED: &str = "azlogenqueuedns";
/// Offset written when the real one is unknown: "start of stream" for every SDK.
const UNKNOWN_OFFSET: &str = "-1";

/// Checkpoints as metadata on empty blobs in one container.
#[derive(Debug)]
pub struct BlobCheckpointStore {
    http: reqwest::Client,
    conn: StorageConnection,
    container: String,
    container_url: Url,
    /// Owners of live claims last seen under the verbatim-case ownership prefix (warned
    /// about once per change; see `blob_ownership`).
    pub(super) foreign_owners: std::sync::Mutex<Vec<String>>,
}

impl BlobCheckpointStore {
    /// A store on `container` of the account described by `conn`.
    pub fn new(conn: StorageConnection, container: &str) -> Result<Self, CheckpointError> {
        if container.is_empty() {
            return Err(CheckpointError::Config(
                "blob container name is empty".into(),
            ));
        }
        let endpoint = conn.blob_endpoint.as_ref().ok_or_else(|| {
            CheckpointError::Config("storage connection has no blob endpoint".into())
        })?;
        let container_url = join_url(endpoint, &encode_blob_path(container))
            .map_err(|e| CheckpointError::Config(e.to_string()))?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| CheckpointError::Config(format!("http client: {}", e.without_url())))?;
        Ok(Self {
            http,
            conn,
            container: container.to_owned(),
            container_url,
            foreign_owners: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// A store from an Azure Storage connection string (see [`StorageConnection::parse`]).
    pub fn from_connection_string(conn: &str, container: &str) -> Result<Self, CheckpointError> {
        let conn =
            StorageConnection::parse(conn).map_err(|e| CheckpointError::Config(e.to_string()))?;
        Self::new(conn, container)
    }

    /// The (lowercase) checkpoint blob name of a partition.
    pub fn blob_name(key: &CheckpointKey, partition: &str) -> String {
        format!("{}{}", key.checkpoint_prefix(), partition.to_lowercase())
    }

    /// Creates the container if it does not exist (201 or 409 `ContainerAlreadyExists`).
    pub async fn ensure_container(&self) -> Result<(), CheckpointError> {
        let mut url = self.container_url.clone();
        url.set_query(Some("restype=container"));
        let resp = self
            .send(
                "create container",
                &self.container,
                Method::PUT,
                url,
                HeaderMap::new(),
            )
            .await?;
        match resp.status() {
            StatusCode::CREATED | StatusCode::CONFLICT => Ok(()),
            _ => Err(status_error("create container", &self.container, &resp)),
        }
    }

    pub(super) fn blob_url(&self, name: &str) -> Result<Url, CheckpointError> {
        join_url(&self.container_url, &encode_blob_path(name))
            .map_err(|e| CheckpointError::Config(e.to_string()))
    }

    pub(super) async fn send(
        &self,
        op: &'static str,
        blob: &str,
        method: Method,
        url: Url,
        headers: HeaderMap,
    ) -> Result<Response, CheckpointError> {
        let http_err = |source: reqwest::Error| CheckpointError::Http {
            op,
            blob: blob.to_owned(),
            source: source.without_url(),
        };
        let mut req = self
            .http
            .request(method, url)
            .headers(headers)
            .build()
            .map_err(http_err)?;
        self.conn
            .credential
            .authorize(&mut req, StorageService::Blob)
            .map_err(|e| CheckpointError::Config(e.to_string()))?;
        self.http.execute(req).await.map_err(http_err)
    }

    async fn head(&self, name: &str) -> Result<Option<Checkpoint>, CheckpointError> {
        let url = self.blob_url(name)?;
        let resp = self
            .send("get properties", name, Method::HEAD, url, HeaderMap::new())
            .await?;
        match resp.status() {
            StatusCode::OK => {
                let mut meta = BTreeMap::new();
                for (k, v) in resp.headers() {
                    if let Some(key) = k.as_str().strip_prefix("x-ms-meta-") {
                        meta.insert(
                            key.to_ascii_lowercase(),
                            v.to_str().unwrap_or_default().to_owned(),
                        );
                    }
                }
                checkpoint_from_metadata(name, &meta).map(Some)
            }
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(status_error("get properties", name, &resp)),
        }
    }

    async fn list_prefix(&self, prefix: &str) -> Result<Vec<Checkpoint>, CheckpointError> {
        let mut out = Vec::new();
        for blob in self.list_blobs(prefix).await? {
            out.push(checkpoint_from_metadata(&blob.name, &blob.metadata)?);
        }
        out.sort_by(|a, b| a.partition.cmp(&b.partition));
        Ok(out)
    }

    /// Every blob whose name starts with `prefix`, with its metadata (all pages).
    pub(super) async fn list_blobs(
        &self,
        prefix: &str,
    ) -> Result<Vec<ListedBlob>, CheckpointError> {
        let mut out = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let mut url = self.container_url.clone();
            {
                let mut q = url.query_pairs_mut();
                q.append_pair("restype", "container")
                    .append_pair("comp", "list")
                    .append_pair("prefix", prefix)
                    .append_pair("include", "metadata");
                if let Some(m) = &marker {
                    q.append_pair("marker", m);
                }
            }
            let resp = self
                .send("list blobs", prefix, Method::GET, url, HeaderMap::new())
                .await?;
            if resp.status() != StatusCode::OK {
                return Err(status_error("list blobs", prefix, &resp));
            }
            let body = resp.text().await.map_err(|e| CheckpointError::Http {
                op: "list blobs",
                blob: prefix.to_owned(),
                source: e.without_url(),
            })?;
            let page = parse_list_blobs(&body).map_err(|reason| CheckpointError::Invalid {
                what: format!("blob listing of {prefix}"),
                reason,
            })?;
            out.extend(page.blobs);
            match page.next_marker {
                Some(m) if !m.is_empty() => marker = Some(m),
                _ => break,
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl CheckpointStore for BlobCheckpointStore {
    async fn list(&self, key: &CheckpointKey) -> Result<Vec<Checkpoint>, CheckpointError> {
        let lower = key.checkpoint_prefix();
        let found = self.list_prefix(&lower).await?;
        let verbatim = key.verbatim_prefix("checkpoint");
        if found.is_empty() && verbatim != lower {
            // Written by a Go/Java/Rust SDK processor that does not lowercase.
            return self.list_prefix(&verbatim).await;
        }
        Ok(found)
    }

    async fn load(
        &self,
        key: &CheckpointKey,
        partition: &str,
    ) -> Result<Option<Checkpoint>, CheckpointError> {
        let name = Self::blob_name(key, partition);
        if let Some(cp) = self.head(&name).await? {
            return Ok(Some(cp));
        }
        let verbatim = format!("{}{partition}", key.verbatim_prefix("checkpoint"));
        if verbatim != name {
            return self.head(&verbatim).await;
        }
        Ok(None)
    }

    async fn save(
        &self,
        key: &CheckpointKey,
        checkpoint: &Checkpoint,
    ) -> Result<(), CheckpointError> {
        let name = Self::blob_name(key, &checkpoint.partition);
        let meta_headers = metadata_headers(&name, checkpoint)?;
        let mut url = self.blob_url(&name)?;
        url.set_query(Some("comp=metadata"));
        let resp = self
            .send(
                "set metadata",
                &name,
                Method::PUT,
                url,
                meta_headers.clone(),
            )
            .await?;
        match resp.status() {
            StatusCode::OK => return Ok(()),
            StatusCode::NOT_FOUND => {}
            _ => return Err(status_error("set metadata", &name, &resp)),
        }
        // First checkpoint of this partition: create the empty blob with the metadata.
        let mut headers = meta_headers;
        headers.insert(
            HeaderName::from_static("x-ms-blob-type"),
            HeaderValue::from_static("BlockBlob"),
        );
        let url = self.blob_url(&name)?;
        let resp = self
            .send("put blob", &name, Method::PUT, url, headers)
            .await?;
        if resp.status() == StatusCode::CREATED {
            tracing::debug!(blob = %name, "created checkpoint blob");
            Ok(())
        } else {
            Err(status_error("put blob", &name, &resp))
        }
    }

    fn describe(&self) -> String {
        format!(
            "blob:{}/{} (account {})",
            self.container_url.host_str().unwrap_or("?"),
            self.container,
            self.conn.account_name
        )
    }
}

pub(super) fn status_error(op: &'static str, blob: &str, resp: &Response) -> CheckpointError {
    CheckpointError::Status {
        op,
        blob: blob.to_owned(),
        status: resp.status().as_u16(),
        code: resp
            .headers()
            .get("x-ms-error-code")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned(),
    }
}

fn metadata_headers(name: &str, cp: &Checkpoint) -> Result<HeaderMap, CheckpointError> {
    let invalid = |field: &str| CheckpointError::Invalid {
        what: name.to_owned(),
        reason: format!("{field} is not a valid metadata value"),
    };
    let mut h = HeaderMap::new();
    let offset = match cp.offset.as_deref() {
        None | Some("") => UNKNOWN_OFFSET,
        Some(o) => o,
    };
    h.insert(
        HeaderName::from_static("x-ms-meta-offset"),
        HeaderValue::from_str(offset).map_err(|_| invalid("offset"))?,
    );
    h.insert(
        HeaderName::from_static("x-ms-meta-sequencenumber"),
        HeaderValue::from(cp.sequence),
    );
    if let Some(ns) = cp.enqueued_ns {
        h.insert(
            HeaderName::from_static("x-ms-meta-azlogenqueuedns"),
            HeaderValue::from(ns),
        );
    }
    Ok(h)
}

/// Builds a checkpoint from blob metadata (keys lowercase). The partition is the last segment
/// of the blob name, as in the Python SDK.
fn checkpoint_from_metadata(
    name: &str,
    meta: &BTreeMap<String, String>,
) -> Result<Checkpoint, CheckpointError> {
    let partition = name.rsplit('/').next().unwrap_or(name).to_owned();
    let invalid = |reason: String| CheckpointError::Invalid {
        what: name.to_owned(),
        reason,
    };
    let sequence = match meta.get(META_SEQUENCE).map(|s| s.trim()) {
        Some(s) if !s.is_empty() => s
            .parse::<i64>()
            .map_err(|e| invalid(format!("sequencenumber {s:?}: {e}")))?,
        _ => return Err(invalid("no sequencenumber metadata".into())),
    };
    let offset = meta
        .get(META_OFFSET)
        .map(|s| s.trim())
        .filter(|s| !s.is_empty() && *s != UNKNOWN_OFFSET)
        .map(str::to_owned);
    let enqueued_ns = meta
        .get(META_ENQUEUED)
        .and_then(|s| s.trim().parse::<i64>().ok());
    Ok(Checkpoint {
        partition,
        offset,
        sequence,
        enqueued_ns,
    })
}

/// One blob of a List Blobs answer.
#[derive(Debug, Default, PartialEq)]
pub(super) struct ListedBlob {
    /// Blob name.
    pub(super) name: String,
    /// Metadata, keys lowercase.
    pub(super) metadata: BTreeMap<String, String>,
    /// `Properties/Etag`, verbatim.
    pub(super) etag: Option<String>,
    /// `Properties/Last-Modified` (RFC 1123), verbatim.
    pub(super) last_modified: Option<String>,
}

/// One page of a List Blobs answer.
#[derive(Debug, Default, PartialEq)]
struct ListPage {
    blobs: Vec<ListedBlob>,
    next_marker: Option<String>,
}

/// Parses `<EnumerationResults>` (only Blob/Name, Blob/Metadata/*, Blob/Properties/Etag and
/// Last-Modified, and NextMarker).
fn parse_list_blobs(xml: &str) -> Result<ListPage, String> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut path: Vec<String> = Vec::new();
    let mut page = ListPage::default();
    let mut blob = ListedBlob::default();
    let mut text = String::new();
    loop {
        match reader.read_event().map_err(|e| e.to_string())? {
            Event::Start(e) => {
                let tag = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                if tag == "Blob" && path.last().is_some_and(|p| p == "Blobs") {
                    blob = ListedBlob::default();
                }
                path.push(tag);
                text.clear();
            }
            // e.g. `<offset />` for an empty metadata value.
            Event::Empty(e) if path.last().is_some_and(|p| p == "Metadata") => {
                let tag = String::from_utf8_lossy(e.name().as_ref()).to_ascii_lowercase();
                blob.metadata.insert(tag, String::new());
            }
            Event::Text(t) => {
                text.push_str(&t.unescape().map_err(|e| e.to_string())?);
            }
            Event::CData(t) => text.push_str(&String::from_utf8_lossy(&t)),
            Event::End(_) => {
                let tag = path.pop().unwrap_or_default();
                let parent = path.last().map(String::as_str).unwrap_or("");
                match (parent, tag.as_str()) {
                    ("Blob", "Name") => blob.name = text.clone(),
                    ("Metadata", key) => {
                        blob.metadata.insert(key.to_ascii_lowercase(), text.clone());
                    }
                    ("Properties", "Etag") => blob.etag = Some(text.clone()),
                    ("Properties", "Last-Modified") => blob.last_modified = Some(text.clone()),
                    ("Blobs", "Blob") => page.blobs.push(std::mem::take(&mut blob)),
                    ("EnumerationResults", "NextMarker") => page.next_marker = Some(text.clone()),
                    _ => {}
                }
                text.clear();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_listing() {
        let xml = r#"<?xml version="1.0" encoding="utf-8"?><EnumerationResults ServiceEndpoint="http://127.0.0.1:10000/devstoreaccount1" ContainerName="c"><Prefix>ns/hub/$default/checkpoint/</Prefix><Blobs><Blob><Name>ns/hub/$default/checkpoint/0</Name><Properties><Last-Modified>Sun, 29 Nov 2026 22:41:03 GMT</Last-Modified><Etag>0x1</Etag></Properties><Metadata><offset>20</offset><sequencenumber>7</sequencenumber></Metadata></Blob><Blob><Name>ns/hub/$default/checkpoint/1</Name><Metadata><offset /><sequencenumber>3</sequencenumber><azlogenqueuedns>5</azlogenqueuedns></Metadata></Blob></Blobs><NextMarker>m&amp;1</NextMarker></EnumerationResults>"#;
        let page = parse_list_blobs(xml).unwrap();
        assert_eq!(page.blobs.len(), 2);
        assert_eq!(page.next_marker.as_deref(), Some("m&1"));
        let c0 = checkpoint_from_metadata(&page.blobs[0].name, &page.blobs[0].metadata).unwrap();
        assert_eq!(
            c0,
            Checkpoint {
                partition: "0".into(),
                offset: Some("20".into()),
                sequence: 7,
                enqueued_ns: None
            }
        );
        let c1 = checkpoint_from_metadata(&page.blobs[1].name, &page.blobs[1].metadata).unwrap();
        assert_eq!(c1.offset, None);
        assert_eq!(page.blobs[0].etag.as_deref(), Some("0x1"));
        assert_eq!(page.blobs[1].etag, None);
        assert_eq!(
            page.blobs[0].last_modified.as_deref(),
            Some("Sun, 29 Nov 2026 22:41:03 GMT")
        );
        let mut m = page.blobs[0].metadata.clone();
        m.insert("offset".into(), "-1".into());
        assert_eq!(checkpoint_from_metadata("x/0", &m).unwrap().offset, None);
        assert_eq!(c1.sequence, 3);
        assert_eq!(c1.enqueued_ns, Some(5));
    }

    #[test]
    fn missing_sequence_is_an_error() {
        let mut meta = BTreeMap::new();
        meta.insert("offset".to_owned(), "5".to_owned());
        assert!(checkpoint_from_metadata("a/0", &meta).is_err());
        meta.insert("sequencenumber".to_owned(), "".to_owned());
        assert!(checkpoint_from_metadata("a/0", &meta).is_err());
        meta.insert("sequencenumber".to_owned(), "x".to_owned());
        assert!(checkpoint_from_metadata("a/0", &meta).is_err());
    }

    #[test]
    fn both_keys_always_written() {
        let cp = Checkpoint {
            partition: "0".into(),
            offset: None,
            sequence: 9,
            enqueued_ns: None,
        };
        let h = metadata_headers("x", &cp).unwrap();
        assert_eq!(h["x-ms-meta-offset"], "-1");
        assert_eq!(h["x-ms-meta-sequencenumber"], "9");
        assert!(!h.contains_key("x-ms-meta-azlogenqueuedns"));
    }

    #[test]
    fn blob_name_is_lowercase() {
        let key = CheckpointKey::new("MyNs.servicebus.windows.net", "Hub", "$Default");
        assert_eq!(
            BlobCheckpointStore::blob_name(&key, "0"),
            "myns.servicebus.windows.net/hub/$default/checkpoint/0"
        );
    }
}
