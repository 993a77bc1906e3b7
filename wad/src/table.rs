//! A small Azure Table storage REST client: what the WAD poller needs and what its tests need
//! to fill a table. OData JSON (`application/json;odata=nometadata`), `$filter`/`$select`/`$top`,
//! continuation via `x-ms-continuation-NextPartitionKey` / `NextRowKey`, SharedKey,
//! SharedKeyLite or SAS authorization (signing is `azlog-azure-storage`'s), and retries with
//! backoff for throttling (503 `ServerBusy`), server timeouts (500 `OperationTimedOut`) and
//! transport errors.
//!
//! Why not a crate: the official Rust SDK has no Table crate, and the legacy `azure_data_tables`
//! 0.21 is unmaintained (see ../shared/reference/infra.md §4); the surface needed here is four
//! operations.
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use azlog_azure_storage::{
    join_url, StorageConnection, StorageCredential, StorageService, TableScheme,
};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, CONTENT_TYPE};
use reqwest::{Method, Request, Response, Url};

use crate::error::TableError;
use crate::retry::RetryPolicy;

/// The `x-ms-version` sent to the Table service (the version the Azure Tables SDKs use).
pub const TABLE_API_VERSION: &str = "2019-02-02";
/// OData JSON without metadata annotations: rows come back as plain objects whose Int32 and
/// Double properties are JSON numbers and whose Int64 / DateTime / Guid properties are
/// strings, the same shape as the WAD fixtures the mapper expects.
pub const ACCEPT_NOMETADATA: &str = "application/json;odata=nometadata";

/// Query-string encoding: everything but unreserved characters (spaces become `%20`, not `+`).
const QUERY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Options of a [`TableClient`].
#[derive(Debug, Clone)]
pub struct TableClientOptions {
    /// Retry policy for retryable errors.
    pub retry: RetryPolicy,
    /// Timeout of one HTTP request (the service allows a query 30 s in total).
    pub request_timeout: Duration,
    /// Which SharedKey flavour signs requests (ignored for SAS).
    pub scheme: TableScheme,
}

impl Default for TableClientOptions {
    fn default() -> Self {
        TableClientOptions {
            retry: RetryPolicy::default(),
            request_timeout: Duration::from_secs(45),
            scheme: TableScheme::SharedKey,
        }
    }
}

/// Counters of one client (shared by its clones).
#[derive(Debug, Default)]
pub struct ClientStats {
    /// HTTP requests sent (each attempt counts).
    pub requests: AtomicU64,
    /// Retries after a retryable error.
    pub retries: AtomicU64,
    /// Responses 503 `ServerBusy` (throttling).
    pub throttled: AtomicU64,
}

/// A query: `$filter`, `$select`, `$top` (the page size; the service caps pages at 1000).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    /// OData filter expression, e.g. `PartitionKey ge '0638...' and PartitionKey lt '0638...'`.
    pub filter: Option<String>,
    /// Comma-separated property names.
    pub select: Option<String>,
    /// Rows per page.
    pub top: Option<u32>,
}

/// Where the next page of a query starts (opaque tokens from the response headers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Continuation {
    /// `x-ms-continuation-NextPartitionKey`.
    pub next_partition_key: String,
    /// `x-ms-continuation-NextRowKey` (may be absent).
    pub next_row_key: Option<String>,
}

/// One page of a query: the raw response body and the continuation, if any.
#[derive(Debug)]
pub struct Page {
    /// The response body: `{"value":[{...},...]}`.
    pub body: String,
    /// Where the next page starts; `None` on the last page. A page may be empty and still
    /// carry a continuation.
    pub continuation: Option<Continuation>,
    /// Time from sending the request to having read the whole body (last attempt).
    pub http_time: Duration,
}

/// An Azure Table service client for one storage account. Cheap to clone.
#[derive(Clone)]
pub struct TableClient {
    http: reqwest::Client,
    endpoint: Url,
    account: String,
    credential: StorageCredential,
    options: TableClientOptions,
    stats: Arc<ClientStats>,
}

impl std::fmt::Debug for TableClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableClient")
            .field("endpoint", &self.endpoint.as_str())
            .field("account", &self.account)
            .field("credential", &self.credential)
            .finish()
    }
}

impl TableClient {
    /// A client for the Table endpoint `endpoint` (e.g. `https://acc.table.core.windows.net`
    /// or `http://127.0.0.1:10002/devstoreaccount1`).
    pub fn new(
        endpoint: Url,
        account: impl Into<String>,
        credential: StorageCredential,
        options: TableClientOptions,
    ) -> Result<TableClient, TableError> {
        let http = reqwest::Client::builder()
            .timeout(options.request_timeout)
            .connect_timeout(Duration::from_secs(10))
            .pool_idle_timeout(Duration::from_secs(50))
            .build()
            .map_err(|e| TableError::Request {
                operation: "building the HTTP client".into(),
                reason: e.to_string(),
            })?;
        Ok(TableClient {
            http,
            endpoint,
            account: account.into(),
            credential,
            options,
            stats: Arc::new(ClientStats::default()),
        })
    }

    /// A client from a parsed connection string (its Table endpoint).
    pub fn from_connection(
        conn: &StorageConnection,
        options: TableClientOptions,
    ) -> Result<TableClient, TableError> {
        let endpoint = conn
            .table_endpoint
            .clone()
            .ok_or_else(|| TableError::Request {
                operation: "building the table client".into(),
                reason: "the connection string names no TableEndpoint and no AccountName".into(),
            })?;
        TableClient::new(
            endpoint,
            conn.account_name.clone(),
            conn.credential.clone(),
            options,
        )
    }

    /// The storage account name.
    pub fn account(&self) -> &str {
        &self.account
    }

    /// The Table endpoint.
    pub fn endpoint(&self) -> &Url {
        &self.endpoint
    }

    /// Request / retry counters.
    pub fn stats(&self) -> &ClientStats {
        &self.stats
    }

    /// Creates a table; `Ok(false)` when it already exists.
    pub async fn create_table(&self, table: &str) -> Result<bool, TableError> {
        check_table_name(table)?;
        let op = format!("create table {table}");
        let url = self.url("Tables", &op)?;
        let body = serde_json::json!({ "TableName": table }).to_string();
        let result = self
            .send(&op, || {
                let mut req = Request::new(Method::POST, url.clone());
                set_json_body(&mut req, body.clone());
                req.headers_mut()
                    .insert("prefer", HeaderValue::from_static("return-no-content"));
                Ok(req)
            })
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(TableError::Service { status: 409, .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Deletes a table; `Ok(false)` when it did not exist.
    pub async fn delete_table(&self, table: &str) -> Result<bool, TableError> {
        check_table_name(table)?;
        let op = format!("delete table {table}");
        let url = self.url(&format!("Tables('{table}')"), &op)?;
        match self
            .send(&op, || Ok(Request::new(Method::DELETE, url.clone())))
            .await
        {
            Ok(_) => Ok(true),
            Err(TableError::Service { status: 404, .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Inserts one entity given as a JSON object (with `PartitionKey` and `RowKey`).
    pub async fn insert_entity(&self, table: &str, entity_json: &str) -> Result<(), TableError> {
        check_table_name(table)?;
        let op = format!("insert into {table}");
        let url = self.url(table, &op)?;
        self.send(&op, || {
            let mut req = Request::new(Method::POST, url.clone());
            set_json_body(&mut req, entity_json.to_owned());
            req.headers_mut()
                .insert("prefer", HeaderValue::from_static("return-no-content"));
            Ok(req)
        })
        .await
        .map(drop)
    }

    /// Inserts up to 100 entities of one PartitionKey in one entity group transaction
    /// (`$batch`). All succeed or none.
    pub async fn insert_batch(&self, table: &str, entities: &[String]) -> Result<(), TableError> {
        check_table_name(table)?;
        let op = format!("batch insert into {table}");
        if entities.is_empty() {
            return Ok(());
        }
        if entities.len() > 100 {
            return Err(TableError::Request {
                operation: op,
                reason: format!("{} entities; a batch holds at most 100", entities.len()),
            });
        }
        let url = self.url("$batch", &op)?;
        let entity_url = self.url(table, &op)?;
        let batch = format!("batch_{:016x}", fastrand::u64(..));
        let changeset = format!("changeset_{:016x}", fastrand::u64(..));
        let mut body = String::with_capacity(entities.iter().map(|e| e.len() + 400).sum());
        body.push_str(&format!(
            "--{batch}\r\nContent-Type: multipart/mixed; boundary={changeset}\r\n\r\n"
        ));
        for (i, entity) in entities.iter().enumerate() {
            body.push_str(&format!(
                "--{changeset}\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n\
POST {entity_url} HTTP/1.1\r\nContent-ID: {}\r\nContent-Type: application/json\r\nAccept: {ACCEPT_NOMETADATA}\r\n\
Prefer: return-no-content\r\nDataServiceVersion: 3.0\r\n\r\n{entity}\r\n",
                i + 1
            ));
        }
        body.push_str(&format!("--{changeset}--\r\n--{batch}--\r\n"));
        let content_type = format!("multipart/mixed; boundary={batch}");
        let resp = self
            .send(&op, || {
                let mut req = Request::new(Method::POST, url.clone());
                let ct = HeaderValue::from_str(&content_type).map_err(|_| TableError::Request {
                    operation: op.clone(),
                    reason: "invalid content type".into(),
                })?;
                req.headers_mut().insert(CONTENT_TYPE, ct);
                *req.body_mut() = Some(body.clone().into());
                Ok(req)
            })
            .await?;
        let text = resp.text().await.map_err(|e| TableError::Transport {
            operation: op.clone(),
            source: e,
        })?;
        // Each operation answers with its own status line; a failed changeset answers with one
        // error response (and nothing was inserted).
        for line in text.lines() {
            let line = line.trim();
            if let Some(rest) = line.strip_prefix("HTTP/1.1 ") {
                let status: u16 = rest
                    .split_whitespace()
                    .next()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                if !(200..300).contains(&status) {
                    let (code, message) = error_code_and_message(&text);
                    return Err(TableError::Service {
                        operation: op,
                        status,
                        code,
                        message,
                    });
                }
            }
        }
        Ok(())
    }

    /// Runs one page of a query. Pass the previous page's continuation to get the next one
    /// (the filter, select and top must stay the same).
    pub async fn query_page(
        &self,
        table: &str,
        query: &Query,
        continuation: Option<&Continuation>,
    ) -> Result<Page, TableError> {
        check_table_name(table)?;
        let op = format!("query {table}");
        let mut url = self.url(&format!("{table}()"), &op)?;
        let mut qs = String::new();
        let mut add = |name: &str, value: &str| {
            if !qs.is_empty() {
                qs.push('&');
            }
            qs.push_str(name);
            qs.push('=');
            qs.extend(utf8_percent_encode(value, QUERY));
        };
        if let Some(f) = &query.filter {
            add("$filter", f);
        }
        if let Some(s) = &query.select {
            add("$select", s);
        }
        if let Some(t) = query.top {
            add("$top", &t.to_string());
        }
        if let Some(c) = continuation {
            add("NextPartitionKey", &c.next_partition_key);
            if let Some(rk) = &c.next_row_key {
                add("NextRowKey", rk);
            }
        }
        if !qs.is_empty() {
            url.set_query(Some(&qs));
        }
        let started = Instant::now();
        let resp = self
            .send(&op, || Ok(Request::new(Method::GET, url.clone())))
            .await?;
        let continuation = continuation_of(resp.headers());
        let body = resp.text().await.map_err(|e| TableError::Transport {
            operation: op,
            source: e,
        })?;
        Ok(Page {
            body,
            continuation,
            http_time: started.elapsed(),
        })
    }

    fn url(&self, path: &str, op: &str) -> Result<Url, TableError> {
        join_url(&self.endpoint, path).map_err(|e| TableError::Request {
            operation: op.to_owned(),
            reason: e.to_string(),
        })
    }

    /// Sends a request built by `build` (called again for each attempt, so each attempt is
    /// freshly dated and signed), retrying retryable failures with backoff.
    async fn send(
        &self,
        op: &str,
        build: impl Fn() -> Result<Request, TableError>,
    ) -> Result<Response, TableError> {
        let policy = self.options.retry;
        let mut attempt = 1u32;
        loop {
            let mut req = build()?;
            let h = req.headers_mut();
            h.entry(ACCEPT)
                .or_insert(HeaderValue::from_static(ACCEPT_NOMETADATA));
            h.insert("x-ms-version", HeaderValue::from_static(TABLE_API_VERSION));
            h.insert("dataserviceversion", HeaderValue::from_static("3.0"));
            h.insert(
                "maxdataserviceversion",
                HeaderValue::from_static("3.0;NetFx"),
            );
            self.credential
                .authorize(&mut req, StorageService::Table(self.options.scheme))
                .map_err(|e| TableError::Request {
                    operation: op.to_owned(),
                    reason: e.to_string(),
                })?;
            self.stats.requests.fetch_add(1, Ordering::Relaxed);
            let (err, retry_after) = match self.http.execute(req).await {
                Ok(resp) if resp.status().is_success() => return Ok(resp),
                Ok(resp) => {
                    let retry_after = retry_after(resp.headers());
                    (service_error(op, resp).await, retry_after)
                }
                Err(e) => (
                    TableError::Transport {
                        operation: op.to_owned(),
                        source: e,
                    },
                    None,
                ),
            };
            if err.code() == Some("ServerBusy") {
                self.stats.throttled.fetch_add(1, Ordering::Relaxed);
            }
            if !err.is_retryable() || attempt >= policy.max_attempts {
                return Err(err);
            }
            let delay = retry_after
                .map(|d| d.min(policy.max_delay))
                .unwrap_or_else(|| policy.delay(attempt));
            tracing::warn!(operation = op, attempt, delay_ms = delay.as_millis() as u64, error = %err, "table request failed; retrying");
            self.stats.retries.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }
}

/// Table names: 3-63 alphanumeric characters, starting with a letter (also keeps the name
/// from altering the request path).
pub fn check_table_name(table: &str) -> Result<(), TableError> {
    let ok = (3..=63).contains(&table.len())
        && table.as_bytes()[0].is_ascii_alphabetic()
        && table.bytes().all(|b| b.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(TableError::Request {
            operation: format!("table {table:?}"),
            reason: "a table name has 3 to 63 letters and digits and starts with a letter".into(),
        })
    }
}

fn set_json_body(req: &mut Request, body: String) {
    req.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    *req.body_mut() = Some(body.into());
}

fn continuation_of(headers: &HeaderMap) -> Option<Continuation> {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    get("x-ms-continuation-nextpartitionkey").map(|pk| Continuation {
        next_partition_key: pk,
        next_row_key: get("x-ms-continuation-nextrowkey"),
    })
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

async fn service_error(op: &str, resp: Response) -> TableError {
    let status = resp.status().as_u16();
    let header_code = resp
        .headers()
        .get("x-ms-error-code")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = resp.text().await.unwrap_or_default();
    let (body_code, message) = error_code_and_message(&body);
    let code = match header_code {
        Some(c) if !c.is_empty() => c,
        _ => body_code,
    };
    TableError::Service {
        operation: op.to_owned(),
        status,
        code,
        message,
    }
}

/// The error code and message of an error body: OData JSON
/// (`{"odata.error":{"code":..,"message":{"value":..}}}`), XML (`<Code>`/`<Message>`, or
/// `<code>`/`<message>` in Atom errors), or nothing.
pub fn error_code_and_message(body: &str) -> (String, String) {
    let first_line = |s: &str| s.lines().next().unwrap_or("").trim().to_owned();
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(body.trim()) {
        let err = v.get("odata.error").or_else(|| v.get("error"));
        if let Some(err) = err {
            let code = err.get("code").and_then(|c| c.as_str()).unwrap_or("");
            let message = err
                .get("message")
                .and_then(|m| m.get("value").and_then(|x| x.as_str()).or(m.as_str()))
                .unwrap_or("");
            return (code.to_owned(), first_line(message));
        }
    }
    // A multipart ($batch) answer embeds the JSON error of the failed operation.
    if let Some(start) = body.find("{\"odata.error\"") {
        if let Some(end) = body[start..].find("\r\n") {
            return error_code_and_message(&body[start..start + end]);
        }
    }
    let tag = |names: [&str; 2]| {
        names.iter().find_map(|n| {
            let open = format!("<{n}>");
            let close = format!("</{n}>");
            let s = body.find(&open)? + open.len();
            let e = body[s..].find(&close)? + s;
            Some(first_line(&body[s..e]))
        })
    };
    (
        tag(["Code", "code"]).unwrap_or_default(),
        tag(["Message", "message"]).unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names() {
        assert!(check_table_name("WADWindowsEventLogsTable").is_ok());
        for bad in ["ab", "1abc", "a-b-c", "abc()", "a/b/c", &"a".repeat(64)] {
            assert!(check_table_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn error_bodies() {
        let json = r#"{"odata.error":{"code":"ServerBusy","message":{"lang":"en-US","value":"The server is busy.\nRequestId:1"}}}"#;
        assert_eq!(
            error_code_and_message(json),
            ("ServerBusy".into(), "The server is busy.".into())
        );
        let xml = "<?xml version=\"1.0\"?><Error><Code>OperationTimedOut</Code><Message>Operation could not be completed within the specified time.\nRequestId:x</Message></Error>";
        assert_eq!(
            error_code_and_message(xml),
            (
                "OperationTimedOut".into(),
                "Operation could not be completed within the specified time.".into()
            )
        );
        assert_eq!(error_code_and_message(""), (String::new(), String::new()));
    }

    #[test]
    fn retryable_classification() {
        let e = |status: u16, code: &str| TableError::Service {
            operation: "q".into(),
            status,
            code: code.into(),
            message: String::new(),
        };
        assert!(e(503, "ServerBusy").is_retryable());
        assert!(e(500, "OperationTimedOut").is_retryable());
        assert!(e(500, "InternalError").is_retryable());
        assert!(!e(403, "AuthenticationFailed").is_retryable());
        assert!(!e(404, "TableNotFound").is_retryable());
        assert!(!e(400, "InvalidInput").is_retryable());
    }

    #[test]
    fn continuation_headers_are_case_insensitive_and_optional() {
        let mut h = HeaderMap::new();
        assert_eq!(continuation_of(&h), None);
        h.insert(
            "x-ms-continuation-NextPartitionKey",
            HeaderValue::from_static("1!8!cDE-"),
        );
        assert_eq!(
            continuation_of(&h),
            Some(Continuation {
                next_partition_key: "1!8!cDE-".into(),
                next_row_key: None
            })
        );
        h.insert(
            "X-MS-CONTINUATION-NEXTROWKEY",
            HeaderValue::from_static("MDEw"),
        );
        assert_eq!(
            continuation_of(&h).and_then(|c| c.next_row_key),
            Some("MDEw".into())
        );
    }
}
