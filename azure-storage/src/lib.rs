//! Minimal Azure Storage REST plumbing shared by the Blob checkpoint store and the WAD
//! Table poller: connection strings, SharedKey / SharedKeyLite signing, SAS pass-through and URL
//! building. HTTP is done with `reqwest` (rustls, no default features) by the callers.

pub mod auth;
pub mod connection;

pub use auth::{AuthError, StorageCredential, StorageService, TableScheme, STORAGE_API_VERSION};
pub use connection::{ConnectionStringError, StorageConnection, DEV_ACCOUNT_KEY, DEV_ACCOUNT_NAME};

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use reqwest::Url;

/// Everything but RFC 3986 unreserved characters is percent-encoded in a path segment.
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes a blob name segment by segment, keeping the `/` separators
/// (`ns/hub/$default/checkpoint/0` → `ns/hub/%24default/checkpoint/0`).
pub fn encode_blob_path(name: &str) -> String {
    name.split('/')
        .map(|seg| utf8_percent_encode(seg, PATH_SEGMENT).to_string())
        .collect::<Vec<_>>()
        .join("/")
}

/// Appends already-encoded path text to an endpoint, with exactly one `/` between them.
pub fn join_url(endpoint: &Url, encoded_path: &str) -> Result<Url, url_error::JoinError> {
    let base = endpoint.as_str().trim_end_matches('/');
    let path = encoded_path.trim_start_matches('/');
    Url::parse(&format!("{base}/{path}")).map_err(|e| url_error::JoinError(e.to_string()))
}

/// Error type for [`join_url`].
pub mod url_error {
    /// The endpoint plus path did not form a valid URL.
    #[derive(Debug, thiserror::Error)]
    #[error("invalid storage URL: {0}")]
    pub struct JoinError(pub String);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_segments() {
        assert_eq!(
            encode_blob_path("localhost:5672/hub/$default/checkpoint/0"),
            "localhost%3A5672/hub/%24default/checkpoint/0"
        );
        assert_eq!(encode_blob_path("a b/c"), "a%20b/c");
    }

    #[test]
    fn joins() {
        let e = Url::parse("http://127.0.0.1:10000/devstoreaccount1").unwrap();
        assert_eq!(
            join_url(&e, "c/x%24").unwrap().as_str(),
            "http://127.0.0.1:10000/devstoreaccount1/c/x%24"
        );
        let e = Url::parse("https://a.blob.core.windows.net/").unwrap();
        assert_eq!(
            join_url(&e, "/c").unwrap().as_str(),
            "https://a.blob.core.windows.net/c"
        );
    }
}
