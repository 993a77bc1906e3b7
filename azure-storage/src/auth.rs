//! Azure Storage request authorization: SharedKey (Blob), SharedKey / SharedKeyLite (Table) and
//! SAS pass-through.
//!
//! The string-to-sign rules follow "Authorize with Shared Key" (Azure Storage REST docs, version
//! 2015-02-21 and later). Pitfalls handled here, all seen against Azurite:
//! * the canonicalized resource uses the **percent-encoded** path, exactly as sent in the URL;
//! * an empty PUT needs an explicit `Content-Length: 0` header (reqwest does not send one and
//!   Azurite answers 400), while the string-to-sign carries an empty Content-Length line for 0;
//! * header names are matched case-insensitively; `x-ms-*` headers are signed lowercase.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, CONTENT_LENGTH};
use reqwest::{Method, Request, Url};
use sha2::Sha256;
use std::fmt;
use std::time::SystemTime;

/// The `x-ms-version` sent when a request does not set one.
pub const STORAGE_API_VERSION: &str = "2021-12-02";

/// Errors while building credentials or signing a request.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The account key is not valid base64.
    #[error("storage account key is not valid base64")]
    InvalidKey,
    /// A header value could not be built (e.g. a non-ASCII character).
    #[error("invalid header value for {0}")]
    InvalidHeader(&'static str),
}

/// Which storage service (and, for Table, which SharedKey flavour) a request goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageService {
    /// Blob service: SharedKey with full header canonicalization.
    Blob,
    /// Table service with the given scheme.
    Table(TableScheme),
}

/// The two SharedKey schemes the Table service accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableScheme {
    /// `VERB\nContent-MD5\nContent-Type\nDate\nCanonicalizedResource`.
    SharedKey,
    /// `Date\nCanonicalizedResource`.
    SharedKeyLite,
}

/// How requests to a storage account are authorized.
#[derive(Clone)]
pub enum StorageCredential {
    /// Account name + decoded account key: requests get an `Authorization: SharedKey ...` header.
    SharedKey {
        /// Storage account name (used in the canonicalized resource).
        account: String,
        /// Decoded account key bytes.
        key: Vec<u8>,
    },
    /// A SAS token (account or service SAS), appended to every request's query string as is.
    Sas {
        /// The token without a leading `?`.
        token: String,
    },
    /// No authorization (public containers only).
    Anonymous,
}

impl fmt::Debug for StorageCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print key material or SAS signatures.
        match self {
            Self::SharedKey { account, .. } => f
                .debug_struct("SharedKey")
                .field("account", account)
                .field("key", &"<redacted>")
                .finish(),
            Self::Sas { .. } => f.debug_struct("Sas").field("token", &"<redacted>").finish(),
            Self::Anonymous => f.write_str("Anonymous"),
        }
    }
}

impl StorageCredential {
    /// Builds a SharedKey credential from an account name and its base64 account key.
    pub fn shared_key(account: impl Into<String>, key_base64: &str) -> Result<Self, AuthError> {
        let key = base64::engine::general_purpose::STANDARD
            .decode(key_base64.trim())
            .map_err(|_| AuthError::InvalidKey)?;
        Ok(Self::SharedKey {
            account: account.into(),
            key,
        })
    }

    /// Builds a SAS credential; a leading `?` is stripped.
    pub fn sas(token: &str) -> Self {
        Self::Sas {
            token: token.trim().trim_start_matches('?').to_owned(),
        }
    }

    /// Authorizes a built request in place.
    ///
    /// Sets `x-ms-date` and `x-ms-version` when absent, sets an explicit `Content-Length` from the
    /// body for PUT/POST/MERGE/PATCH (0 when there is no body), then adds the `Authorization`
    /// header (SharedKey) or appends the SAS token to the query (SAS).
    pub fn authorize(&self, req: &mut Request, service: StorageService) -> Result<(), AuthError> {
        prepare_headers(req)?;
        match self {
            Self::SharedKey { account, key } => {
                let (scheme, to_sign) = match service {
                    StorageService::Blob => (
                        "SharedKey",
                        blob_string_to_sign(req.method(), req.url(), req.headers(), account),
                    ),
                    StorageService::Table(TableScheme::SharedKey) => (
                        "SharedKey",
                        table_string_to_sign(req.method(), req.url(), req.headers(), account),
                    ),
                    StorageService::Table(TableScheme::SharedKeyLite) => (
                        "SharedKeyLite",
                        table_lite_string_to_sign(req.url(), req.headers(), account),
                    ),
                };
                let signature = hmac_sha256_base64(key, &to_sign);
                let value = HeaderValue::from_str(&format!("{scheme} {account}:{signature}"))
                    .map_err(|_| AuthError::InvalidHeader("authorization"))?;
                req.headers_mut().insert(AUTHORIZATION, value);
            }
            Self::Sas { token } => {
                let url = req.url_mut();
                let joined = match url.query() {
                    Some(q) if !q.is_empty() => format!("{q}&{token}"),
                    _ => token.clone(),
                };
                url.set_query(Some(&joined));
            }
            Self::Anonymous => {}
        }
        Ok(())
    }
}

fn prepare_headers(req: &mut Request) -> Result<(), AuthError> {
    let date_name = HeaderName::from_static("x-ms-date");
    if !req.headers().contains_key(&date_name) {
        let now = httpdate::fmt_http_date(SystemTime::now());
        let value =
            HeaderValue::from_str(&now).map_err(|_| AuthError::InvalidHeader("x-ms-date"))?;
        req.headers_mut().insert(date_name, value);
    }
    let version_name = HeaderName::from_static("x-ms-version");
    if !req.headers().contains_key(&version_name) {
        req.headers_mut()
            .insert(version_name, HeaderValue::from_static(STORAGE_API_VERSION));
    }
    let needs_length = matches!(req.method().as_str(), "PUT" | "POST" | "MERGE" | "PATCH");
    if needs_length && !req.headers().contains_key(CONTENT_LENGTH) {
        let len = req
            .body()
            .and_then(|b| b.as_bytes())
            .map(|b| b.len())
            .unwrap_or(0);
        req.headers_mut()
            .insert(CONTENT_LENGTH, HeaderValue::from(len as u64));
    }
    Ok(())
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// Blob SharedKey string-to-sign (Blob, Queue and File services, version 2015-02-21+).
pub fn blob_string_to_sign(
    method: &Method,
    url: &Url,
    headers: &HeaderMap,
    account: &str,
) -> String {
    let content_length = match header(headers, "content-length") {
        "0" => "",
        other => other,
    };
    // Date is empty when x-ms-date is present (we always set it).
    let date = if headers.contains_key("x-ms-date") {
        ""
    } else {
        header(headers, "date")
    };
    let mut out = String::with_capacity(256);
    for part in [
        method.as_str(),
        header(headers, "content-encoding"),
        header(headers, "content-language"),
        content_length,
        header(headers, "content-md5"),
        header(headers, "content-type"),
        date,
        header(headers, "if-modified-since"),
        header(headers, "if-match"),
        header(headers, "if-none-match"),
        header(headers, "if-unmodified-since"),
        header(headers, "range"),
    ] {
        out.push_str(part);
        out.push('\n');
    }
    out.push_str(&canonicalized_ms_headers(headers));
    out.push_str(&blob_canonicalized_resource(url, account));
    out
}

/// `x-ms-*` headers, lowercase, sorted by name, `name:value\n` each, values with whitespace folded.
fn canonicalized_ms_headers(headers: &HeaderMap) -> String {
    let mut pairs: Vec<(String, String)> = headers
        .iter()
        .filter(|(name, _)| name.as_str().starts_with("x-ms-"))
        .map(|(name, value)| {
            let v = value.to_str().unwrap_or("");
            let folded = v.split_whitespace().collect::<Vec<_>>().join(" ");
            (name.as_str().to_owned(), folded)
        })
        .collect();
    pairs.sort();
    let mut out = String::new();
    let mut i = 0;
    while i < pairs.len() {
        let name = &pairs[i].0;
        let mut values = vec![pairs[i].1.clone()];
        let mut j = i + 1;
        while j < pairs.len() && &pairs[j].0 == name {
            values.push(pairs[j].1.clone());
            j += 1;
        }
        out.push_str(name);
        out.push(':');
        out.push_str(&values.join(","));
        out.push('\n');
        i = j;
    }
    out
}

/// `/<account><encoded path>` then `\n<name>:<v1,v2>` per query parameter (names lowercase,
/// sorted; values decoded and sorted).
fn blob_canonicalized_resource(url: &Url, account: &str) -> String {
    let mut out = format!("/{account}{}", url.path());
    let mut params: Vec<(String, Vec<String>)> = Vec::new();
    for (name, value) in url.query_pairs() {
        let name = name.to_lowercase();
        match params.iter_mut().find(|(n, _)| *n == name) {
            Some((_, values)) => values.push(value.into_owned()),
            None => params.push((name, vec![value.into_owned()])),
        }
    }
    params.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, mut values) in params {
        values.sort();
        out.push('\n');
        out.push_str(&name);
        out.push(':');
        out.push_str(&values.join(","));
    }
    out
}

/// Table canonicalized resource: `/<account><encoded path>` plus `?comp=<v>` when present.
fn table_canonicalized_resource(url: &Url, account: &str) -> String {
    let mut out = format!("/{account}{}", url.path());
    if let Some((_, comp)) = url.query_pairs().find(|(n, _)| n == "comp") {
        out.push_str("?comp=");
        out.push_str(&comp);
    }
    out
}

fn table_date(headers: &HeaderMap) -> &str {
    match header(headers, "x-ms-date") {
        "" => header(headers, "date"),
        d => d,
    }
}

/// Table SharedKey string-to-sign: `VERB\nContent-MD5\nContent-Type\nDate\nCanonicalizedResource`.
pub fn table_string_to_sign(
    method: &Method,
    url: &Url,
    headers: &HeaderMap,
    account: &str,
) -> String {
    format!(
        "{}\n{}\n{}\n{}\n{}",
        method.as_str(),
        header(headers, "content-md5"),
        header(headers, "content-type"),
        table_date(headers),
        table_canonicalized_resource(url, account)
    )
}

/// Table SharedKeyLite string-to-sign: `Date\nCanonicalizedResource`.
pub fn table_lite_string_to_sign(url: &Url, headers: &HeaderMap, account: &str) -> String {
    format!(
        "{}\n{}",
        table_date(headers),
        table_canonicalized_resource(url, account)
    )
}

/// HMAC-SHA256 of `data` with `key`, base64 encoded.
pub fn hmac_sha256_base64(key: &[u8], data: &str) -> String {
    // HMAC accepts keys of any length, so new_from_slice cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(data.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn blob_string_to_sign_layout() {
        let url = Url::parse(
            "http://127.0.0.1:10000/devstoreaccount1/c/ns/hub/%24default/checkpoint/0?comp=metadata",
        )
        .unwrap();
        let h = headers(&[
            ("x-ms-date", "Sun, 22 Nov 2026 04:00:00 GMT"),
            ("x-ms-version", "2021-12-02"),
            ("x-ms-meta-offset", "  12  "),
            ("x-ms-meta-sequencenumber", "3"),
            ("content-length", "0"),
            ("if-match", "\"etag\""),
        ]);
        let s = blob_string_to_sign(&Method::PUT, &url, &h, "devstoreaccount1");
        let expected = "PUT\n\n\n\n\n\n\n\n\"etag\"\n\n\n\n\
x-ms-date:Sun, 22 Nov 2026 04:00:00 GMT\n\
x-ms-meta-offset:12\n\
x-ms-meta-sequencenumber:3\n\
x-ms-version:2021-12-02\n\
/devstoreaccount1/devstoreaccount1/c/ns/hub/%24default/checkpoint/0\ncomp:metadata";
        assert_eq!(s, expected);
    }

    #[test]
    fn blob_query_params_sorted_lowercased_and_decoded() {
        let url = Url::parse(
            "http://h/acc/c?restype=container&comp=list&prefix=a%2Fb%2F%24default%2F&include=metadata",
        )
        .unwrap();
        let r = blob_canonicalized_resource(&url, "acc");
        assert_eq!(
            r,
            "/acc/acc/c\ncomp:list\ninclude:metadata\nprefix:a/b/$default/\nrestype:container"
        );
    }

    #[test]
    fn content_length_nonzero_is_signed() {
        let url = Url::parse("http://h/acc/c/b").unwrap();
        let h = headers(&[("content-length", "5"), ("x-ms-date", "d")]);
        let s = blob_string_to_sign(&Method::PUT, &url, &h, "acc");
        assert!(s.starts_with("PUT\n\n\n5\n"), "{s:?}");
    }

    #[test]
    fn table_strings_to_sign() {
        let url = Url::parse("http://127.0.0.1:10002/devstoreaccount1/Tables?$top=2").unwrap();
        let h = headers(&[
            ("x-ms-date", "Sun, 22 Nov 2026 04:00:00 GMT"),
            ("content-type", "application/json"),
        ]);
        assert_eq!(
            table_lite_string_to_sign(&url, &h, "devstoreaccount1"),
            "Sun, 22 Nov 2026 04:00:00 GMT\n/devstoreaccount1/devstoreaccount1/Tables"
        );
        assert_eq!(
            table_string_to_sign(&Method::POST, &url, &h, "devstoreaccount1"),
            "POST\n\napplication/json\nSun, 22 Nov 2026 04:00:00 GMT\n/devstoreaccount1/devstoreaccount1/Tables"
        );
        let with_comp = Url::parse("http://h/acc/t?comp=acl&x=1").unwrap();
        assert_eq!(
            table_lite_string_to_sign(&with_comp, &h, "acc"),
            "Sun, 22 Nov 2026 04:00:00 GMT\n/acc/acc/t?comp=acl"
        );
    }

    #[test]
    fn hmac_known_vector() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let sig = hmac_sha256_base64(b"Jefe", "what do ya want for nothing?");
        assert_eq!(sig, "W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM=");
    }

    #[test]
    fn authorize_sets_headers_and_signature() {
        let cred = StorageCredential::shared_key("acc", "a2V5").unwrap();
        let mut req = Request::new(Method::PUT, Url::parse("http://h/acc/c/b").unwrap());
        cred.authorize(&mut req, StorageService::Blob).unwrap();
        assert_eq!(req.headers()["content-length"], "0");
        assert_eq!(req.headers()["x-ms-version"], STORAGE_API_VERSION);
        let auth = req.headers()["authorization"].to_str().unwrap().to_owned();
        let to_sign = blob_string_to_sign(req.method(), req.url(), req.headers(), "acc");
        assert_eq!(
            auth,
            format!("SharedKey acc:{}", hmac_sha256_base64(b"key", &to_sign))
        );
    }

    #[test]
    fn sas_is_appended_and_redacted() {
        let cred = StorageCredential::sas("?sv=2022&sig=SECRET");
        assert!(!format!("{cred:?}").contains("SECRET"));
        let mut req = Request::new(Method::GET, Url::parse("http://h/acc/c?comp=list").unwrap());
        cred.authorize(&mut req, StorageService::Blob).unwrap();
        assert_eq!(req.url().query(), Some("comp=list&sv=2022&sig=SECRET"));
        assert!(!req.headers().contains_key("authorization"));
        let key = StorageCredential::shared_key("acc", "c2VjcmV0a2V5").unwrap();
        assert!(!format!("{key:?}").contains("secretkey"));
    }

    #[test]
    fn bad_key_is_rejected() {
        assert!(matches!(
            StorageCredential::shared_key("a", "not base64!"),
            Err(AuthError::InvalidKey)
        ));
    }
}
