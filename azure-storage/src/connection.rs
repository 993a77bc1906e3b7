//! Azure Storage connection strings.
//!
//! Supported forms (keys are case-insensitive, values may contain `=`):
//! * `DefaultEndpointsProtocol=https;AccountName=a;AccountKey=k;EndpointSuffix=core.windows.net`
//! * explicit endpoints: `BlobEndpoint=...;TableEndpoint=...` with `AccountName`/`AccountKey` or
//!   `SharedAccessSignature=...`
//! * `UseDevelopmentStorage=true` (optionally `DevelopmentStorageProxyUri=http://host`): the Azurite
//!   well-known account `devstoreaccount1` on ports 10000 (blob) and 10002 (table).

use super::auth::{AuthError, StorageCredential};
use reqwest::Url;

/// Account name of the storage emulator (Azurite).
pub const DEV_ACCOUNT_NAME: &str = "devstoreaccount1";
/// Well-known, public account key of the storage emulator (Azurite); not a secret.
pub const DEV_ACCOUNT_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// Errors parsing a storage connection string.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionStringError {
    /// A `key=value` segment had no `=`.
    #[error("connection string segment without '=' (segment #{0})")]
    MalformedSegment(usize),
    /// Not enough information to build an endpoint or a credential.
    #[error("connection string is missing {0}")]
    Missing(&'static str),
    /// An endpoint is not a valid absolute URL.
    #[error("connection string has an invalid {key}: {reason}")]
    InvalidEndpoint {
        /// Which key held the endpoint.
        key: &'static str,
        /// Parser message (contains no secrets: endpoints are not secret).
        reason: String,
    },
    /// The account key is not valid base64.
    #[error(transparent)]
    Auth(#[from] AuthError),
}

/// A parsed storage connection: account, credential and service endpoints.
#[derive(Debug, Clone)]
pub struct StorageConnection {
    /// Account name (best effort when only a SAS and endpoints are given).
    pub account_name: String,
    /// How to authorize requests.
    pub credential: StorageCredential,
    /// Blob service endpoint, e.g. `https://a.blob.core.windows.net` or
    /// `http://127.0.0.1:10000/devstoreaccount1`; `None` when the string names neither an
    /// account nor a `BlobEndpoint`.
    pub blob_endpoint: Option<Url>,
    /// Table service endpoint; `None` when the string names neither an account nor a
    /// `TableEndpoint`.
    pub table_endpoint: Option<Url>,
}

impl StorageConnection {
    /// Parses a connection string. Never includes secrets in errors.
    pub fn parse(conn: &str) -> Result<Self, ConnectionStringError> {
        let mut fields: Vec<(String, String)> = Vec::new();
        for (i, seg) in conn.split(';').enumerate() {
            let seg = seg.trim();
            if seg.is_empty() {
                continue;
            }
            let (k, v) = seg
                .split_once('=')
                .ok_or(ConnectionStringError::MalformedSegment(i))?;
            fields.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
        let get = |key: &str| -> Option<&str> {
            fields
                .iter()
                .rev()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
                .filter(|v| !v.is_empty())
        };

        if get("usedevelopmentstorage").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            let proxy = get("developmentstorageproxyuri").unwrap_or("http://127.0.0.1");
            let base = parse_endpoint("DevelopmentStorageProxyUri", proxy)?;
            let host = base.host_str().unwrap_or("127.0.0.1").to_owned();
            let scheme = base.scheme().to_owned();
            let blob = parse_endpoint(
                "DevelopmentStorageProxyUri",
                &format!("{scheme}://{host}:10000/{DEV_ACCOUNT_NAME}"),
            )?;
            let table = parse_endpoint(
                "DevelopmentStorageProxyUri",
                &format!("{scheme}://{host}:10002/{DEV_ACCOUNT_NAME}"),
            )?;
            return Ok(Self {
                account_name: DEV_ACCOUNT_NAME.to_owned(),
                credential: StorageCredential::shared_key(DEV_ACCOUNT_NAME, DEV_ACCOUNT_KEY)?,
                blob_endpoint: Some(blob),
                table_endpoint: Some(table),
            });
        }

        let protocol = get("defaultendpointsprotocol").unwrap_or("https");
        let suffix = get("endpointsuffix").unwrap_or("core.windows.net");
        let account = get("accountname").map(str::to_owned);
        let endpoint = |key: &'static str,
                        service: &str|
         -> Result<Option<Url>, ConnectionStringError> {
            let lower = key.to_ascii_lowercase();
            match (get(&lower), &account) {
                (Some(v), _) => parse_endpoint(key, v).map(Some),
                (None, Some(a)) => {
                    parse_endpoint(key, &format!("{protocol}://{a}.{service}.{suffix}")).map(Some)
                }
                (None, None) => Ok(None),
            }
        };
        let blob_endpoint = endpoint("BlobEndpoint", "blob")?;
        let table_endpoint = endpoint("TableEndpoint", "table")?;
        let account_name = match account {
            Some(a) => a,
            None => blob_endpoint
                .iter()
                .chain(table_endpoint.iter())
                .find_map(account_from_endpoint)
                .ok_or(ConnectionStringError::Missing(
                    "AccountName, BlobEndpoint or TableEndpoint",
                ))?,
        };
        let credential = match (get("accountkey"), get("sharedaccesssignature")) {
            (Some(key), _) => StorageCredential::shared_key(account_name.clone(), key)?,
            (None, Some(sas)) => StorageCredential::sas(sas),
            (None, None) => {
                return Err(ConnectionStringError::Missing(
                    "AccountKey or SharedAccessSignature",
                ))
            }
        };
        Ok(Self {
            account_name,
            credential,
            blob_endpoint,
            table_endpoint,
        })
    }

    /// The connection string of the local Azurite account with a given blob endpoint
    /// (e.g. `http://127.0.0.1:10000/devstoreaccount1`).
    pub fn azurite(blob_endpoint: &str) -> Result<Self, ConnectionStringError> {
        Self::parse(&format!(
            "DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT_NAME};AccountKey={DEV_ACCOUNT_KEY};BlobEndpoint={blob_endpoint};"
        ))
    }
}

fn parse_endpoint(key: &'static str, value: &str) -> Result<Url, ConnectionStringError> {
    let trimmed = value.trim_end_matches('/');
    let url = Url::parse(trimmed).map_err(|e| ConnectionStringError::InvalidEndpoint {
        key,
        reason: e.to_string(),
    })?;
    if url.cannot_be_a_base() || !matches!(url.scheme(), "http" | "https") {
        return Err(ConnectionStringError::InvalidEndpoint {
            key,
            reason: "expected an http(s) URL".into(),
        });
    }
    Ok(url)
}

/// `https://acc.blob.core.windows.net` → `acc`; `http://127.0.0.1:10000/acc` → `acc`.
fn account_from_endpoint(url: &Url) -> Option<String> {
    let host = url.host_str()?;
    let is_ip = host.parse::<std::net::IpAddr>().is_ok() || host == "localhost";
    if is_ip {
        url.path_segments()?
            .find(|s| !s.is_empty())
            .map(str::to_owned)
    } else {
        host.split('.').next().map(str::to_owned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn development_storage() {
        let c = StorageConnection::parse("UseDevelopmentStorage=true").unwrap();
        assert_eq!(c.account_name, "devstoreaccount1");
        assert_eq!(
            c.blob_endpoint.unwrap().as_str(),
            "http://127.0.0.1:10000/devstoreaccount1"
        );
        assert_eq!(
            c.table_endpoint.unwrap().as_str(),
            "http://127.0.0.1:10002/devstoreaccount1"
        );
        match &c.credential {
            StorageCredential::SharedKey { account, key } => {
                assert_eq!(account, "devstoreaccount1");
                assert_eq!(key.len(), 64);
            }
            other => panic!("unexpected {other:?}"),
        }
        let p = StorageConnection::parse(
            "UseDevelopmentStorage=true;DevelopmentStorageProxyUri=http://azurite.local",
        )
        .unwrap();
        assert_eq!(
            p.blob_endpoint.unwrap().as_str(),
            "http://azurite.local:10000/devstoreaccount1"
        );
    }

    #[test]
    fn account_key_with_suffix() {
        let c = StorageConnection::parse(
            "DefaultEndpointsProtocol=https;AccountName=myacc;AccountKey=a2V5PT0=;EndpointSuffix=core.usgovcloudapi.net",
        )
        .unwrap();
        assert_eq!(
            c.blob_endpoint.as_ref().unwrap().as_str(),
            "https://myacc.blob.core.usgovcloudapi.net/"
        );
        assert_eq!(
            c.table_endpoint.as_ref().unwrap().host_str(),
            Some("myacc.table.core.usgovcloudapi.net")
        );
        assert!(
            matches!(c.credential, StorageCredential::SharedKey { ref key, .. } if key == b"key==")
        );
        assert!(!format!("{c:?}").contains("a2V5"));
    }

    #[test]
    fn explicit_endpoints_and_sas() {
        let c = StorageConnection::parse(
            "BlobEndpoint=https://acc.blob.core.windows.net/;SharedAccessSignature=sv=2022-11-02&sig=abc%3D",
        )
        .unwrap();
        assert_eq!(c.account_name, "acc");
        assert!(
            matches!(c.credential, StorageCredential::Sas { ref token } if token == "sv=2022-11-02&sig=abc%3D")
        );
        assert!(
            c.table_endpoint.is_none(),
            "no TableEndpoint and no AccountName"
        );
        let t = StorageConnection::parse(
            "TableEndpoint=http://127.0.0.1:10002/devstoreaccount1;SharedAccessSignature=s=1",
        )
        .unwrap();
        assert_eq!(t.account_name, "devstoreaccount1");
        assert!(t.blob_endpoint.is_none());
        assert!(matches!(
            StorageConnection::parse("SharedAccessSignature=s=1"),
            Err(ConnectionStringError::Missing(_))
        ));
    }

    #[test]
    fn azurite_style_explicit_endpoint() {
        let c = StorageConnection::azurite("http://127.0.0.1:10999/devstoreaccount1/").unwrap();
        assert_eq!(
            c.blob_endpoint.unwrap().as_str(),
            "http://127.0.0.1:10999/devstoreaccount1"
        );
        assert_eq!(c.account_name, DEV_ACCOUNT_NAME);
    }

    #[test]
    fn errors() {
        assert!(matches!(
            StorageConnection::parse("AccountName=a;garbage"),
            Err(ConnectionStringError::MalformedSegment(1))
        ));
        assert!(matches!(
            StorageConnection::parse("AccountName=a"),
            Err(ConnectionStringError::Missing(_))
        ));
        assert!(matches!(
            StorageConnection::parse("AccountName=a;AccountKey=!!"),
            Err(ConnectionStringError::Auth(_))
        ));
        assert!(matches!(
            StorageConnection::parse("BlobEndpoint=ftp://x;AccountName=a;AccountKey=a2V5"),
            Err(ConnectionStringError::InvalidEndpoint { .. })
        ));
    }
}
