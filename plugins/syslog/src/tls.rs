//! rustls client setup for RFC 5425: the server certificate must chain to the configured CA
//! (or, without `tls.ca_file`, to the system bundle) and match the server name; an optional
//! client certificate authenticates us to servers that require it.
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};

use crate::config::TlsSettings;
use crate::error::SyslogError;

/// Debian/Ubuntu and most distributions keep the system CA bundle here.
const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

fn load_certs(path: &str, what: &str) -> Result<Vec<CertificateDer<'static>>, SyslogError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| SyslogError::Tls(format!("cannot read {what} {path}: {e}")))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| SyslogError::Tls(format!("bad PEM in {what} {path}: {e}")))?;
    if certs.is_empty() {
        return Err(SyslogError::Tls(format!(
            "{what} {path} holds no certificate"
        )));
    }
    Ok(certs)
}

/// Builds the client configuration.
pub(crate) fn client_config(t: &TlsSettings) -> Result<Arc<ClientConfig>, SyslogError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    let (ca_path, ca_what) = match t.ca_file.as_deref() {
        Some(path) => (path, "`tls.ca_file`"),
        None => (
            SYSTEM_CA_BUNDLE,
            "the system CA bundle (no `tls.ca_file` set)",
        ),
    };
    let (added, _ignored) = roots.add_parsable_certificates(load_certs(ca_path, ca_what)?);
    if added == 0 {
        return Err(SyslogError::Tls(format!(
            "no usable CA certificate in {ca_what} {ca_path}"
        )));
    }
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| SyslogError::Tls(format!("protocol versions: {e}")))?
        .with_root_certificates(roots);
    let config = match (&t.client_cert, &t.client_key) {
        (Some(cert), Some(key)) => {
            let chain = load_certs(cert, "`tls.client_cert`")?;
            let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
                SyslogError::Tls(format!("cannot read `tls.client_key` {key}: {e}"))
            })?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| SyslogError::Tls(format!("client certificate/key: {e}")))?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// The name the server certificate must carry.
pub(crate) fn server_name(t: &TlsSettings, host: &str) -> Result<ServerName<'static>, SyslogError> {
    let name = t.server_name.as_deref().unwrap_or(host);
    ServerName::try_from(name.to_string())
        .map_err(|e| SyslogError::Tls(format!("invalid TLS server name `{name}`: {e}")))
}
