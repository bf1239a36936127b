//! TLS settings for both sides: the run's one shared rustls `ClientConfig` (roots, `--cacert`, `--insecure`, mTLS,
//! per-user session resumption), the server's `ServerConfig`, and the failure class of each rustls error. The
//! client's bytes go through `wire`.

use std::cell::Cell;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ClientSessionStore, Resumption, Tls12ClientSessionValue, Tls13ClientSessionValue};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, Error, NamedGroup, RootCertStore, ServerConfig,
    SignatureScheme,
};

use crate::recorder::Failure;

/// ALPN: ssebench speaks HTTP/1.1 only, so a server that would pick h2 must not.
const ALPN_HTTP1: &[u8] = b"http/1.1";

/// Where system CA bundles live: Debian/Ubuntu, Fedora/RHEL, openSUSE, Alpine/macOS.
const SYSTEM_BUNDLES: [&str; 4] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// What the client side of a run was told: the flags, before any file is read.
#[derive(Debug, Clone, Default)]
pub struct ClientOptions {
    pub cacert: Option<std::path::PathBuf>,
    pub insecure: bool,
    pub cert: Option<std::path::PathBuf>,
    pub key: Option<std::path::PathBuf>,
    /// `--tls-resume on`: a user's reconnect resumes its last session.
    pub resume: bool,
}

/// The run's client TLS: one config, built once at start-up and shared read-only by every core.
#[derive(Debug, Clone)]
pub struct TlsClient {
    pub config: Arc<ClientConfig>,
    /// Certificates are checked (false with `--insecure`).
    pub verify: bool,
    pub resume: bool,
    /// A client certificate is presented (`--cert`/`--key`).
    pub client_cert: bool,
    /// Where the trusted roots came from, for the report.
    pub roots: String,
}

impl TlsClient {
    pub fn new(opts: &ClientOptions) -> Result<TlsClient, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let versions = ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(rustls::ALL_VERSIONS)
            .map_err(|e| format!("TLS: {e}"))?;
        let (builder, roots) = if opts.insecure {
            let verifier = Arc::new(NoVerification(provider));
            (versions.dangerous().with_custom_certificate_verifier(verifier), "none: --insecure".to_string())
        } else {
            let (mut store, mut described) = system_roots();
            if let Some(path) = &opts.cacert {
                let certs = load_certs(path, "--cacert")?;
                let (added, _) = store.add_parsable_certificates(certs);
                if added == 0 {
                    return Err(format!("--cacert {}: no usable CA certificate in the file", path.display()));
                }
                described = format!("{described} + {added} from {}", path.display());
            }
            (versions.with_root_certificates(store), described)
        };
        let mut config = match (&opts.cert, &opts.key) {
            (None, None) => builder.with_no_client_auth(),
            (Some(cert), Some(key)) => builder
                .with_client_auth_cert(load_certs(cert, "--cert")?, load_key(key, "--key")?)
                .map_err(|e| format!("--cert/--key: {e}"))?,
            _ => return Err("--cert and --key go together: give both, or neither".into()),
        };
        config.alpn_protocols = vec![ALPN_HTTP1.to_vec()];
        // After a TLS 1.3 stream's first answer its record keys move out of rustls (`wire::Tls`), so that a held
        // stream keeps a few hundred bytes of TLS state rather than kilobytes. The keys stay in this process.
        config.enable_secret_extraction = true;
        config.resumption =
            if opts.resume { Resumption::store(Arc::new(UserSessions::default())) } else { Resumption::disabled() };
        Ok(TlsClient {
            config: Arc::new(config),
            verify: !opts.insecure,
            resume: opts.resume,
            client_cert: opts.cert.is_some(),
            roots,
        })
    }

    /// A new client connection to `name` (the URL's host) for run-wide user `user` (`None`: a user with no
    /// session to resume or keep, such as an open-model arrival).
    pub fn connect(&self, name: &ServerName<'static>, user: Option<u64>) -> Result<rustls::ClientConnection, Error> {
        as_user(user, || rustls::ClientConnection::new(self.config.clone(), name.clone()))
    }
}

/// The server's TLS: `serve --tls-cert --tls-key`, and with `--tls-client-ca` a client certificate signed by that
/// CA is required (mTLS).
pub fn server_config(cert: &Path, key: &Path, client_ca: Option<&Path>) -> Result<Arc<ServerConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(rustls::ALL_VERSIONS)
        .map_err(|e| format!("TLS: {e}"))?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let mut roots = RootCertStore::empty();
            let (added, _) = roots.add_parsable_certificates(load_certs(path, "--tls-client-ca")?);
            if added == 0 {
                return Err(format!("--tls-client-ca {}: no usable CA certificate in the file", path.display()));
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| format!("--tls-client-ca: {e}"))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(load_certs(cert, "--tls-cert")?, load_key(key, "--tls-key")?)
        .map_err(|e| format!("--tls-cert/--tls-key: {e}"))?;
    config.alpn_protocols = vec![ALPN_HTTP1.to_vec()];
    // Stateless tickets: any number of clients can resume, with no session cache to outgrow. One ticket per
    // handshake is all a client keeps.
    config.ticketer = rustls::crypto::ring::Ticketer::new().map_err(|e| format!("TLS tickets: {e}"))?;
    config.send_tls13_tickets = 1;
    Ok(Arc::new(config))
}

/// The failure class of a TLS error, as the report counts it.
pub fn failure(err: &Error) -> Failure {
    match err {
        Error::InvalidCertificate(cert) => match cert {
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                Failure::TlsNameMismatch
            }
            CertificateError::Expired
            | CertificateError::ExpiredContext { .. }
            | CertificateError::NotValidYet
            | CertificateError::NotValidYetContext { .. } => Failure::TlsExpired,
            _ => Failure::TlsUntrusted,
        },
        Error::AlertReceived(_) => Failure::TlsAlert,
        _ => Failure::TlsError,
    }
}

/// The system's CA bundle (`$SSL_CERT_FILE` first), or the bundled Mozilla roots where the system has none.
fn system_roots() -> (RootCertStore, String) {
    let mut store = RootCertStore::empty();
    let from_env = std::env::var_os("SSL_CERT_FILE").map(std::path::PathBuf::from);
    let candidates = from_env.into_iter().chain(SYSTEM_BUNDLES.iter().map(std::path::PathBuf::from));
    for path in candidates {
        let Ok(iter) = CertificateDer::pem_file_iter(&path) else { continue };
        let (added, _) = store.add_parsable_certificates(iter.filter_map(Result::ok));
        if added > 0 {
            return (store, format!("system: {} ({added} certificates)", path.display()));
        }
    }
    store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let described = format!("bundled Mozilla roots ({} certificates; no system bundle found)", store.len());
    (store, described)
}

fn load_certs(path: &Path, flag: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("{flag} {}: {e}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{flag} {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{flag} {}: no PEM certificate in the file", path.display()));
    }
    Ok(certs)
}

fn load_key(path: &Path, flag: &str) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| format!("{flag} {}: no usable PEM private key: {e}", path.display()))
}

/// `--insecure`: any certificate is accepted, but the handshake's signatures are still checked against it, so
/// the connection is at least the one the certificate's key made.
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

thread_local! {
    /// The user whose connection rustls is working on, for `UserSessions`: rustls asks its session store by
    /// server name only, and every user of a run shares the server name.
    static SESSION_USER: Cell<Option<u64>> = const { Cell::new(None) };
}

/// Runs `f` (a rustls call that may read or store a session) on behalf of `user`.
pub fn as_user<R>(user: Option<u64>, f: impl FnOnce() -> R) -> R {
    SESSION_USER.with(|cell| cell.set(user));
    let out = f();
    SESSION_USER.with(|cell| cell.set(None));
    out
}

/// Sessions kept per user, so a reconnecting user resumes its own session: a shared pool of tickets (rustls's own
/// cache keeps 8 per server name) would run dry in a reconnect storm and turn returning users into new ones.
/// Touched once or twice per handshake, never per event; sharded so cores rarely meet on one lock.
#[derive(Debug, Default)]
struct UserSessions {
    shards: [Mutex<HashMap<u64, UserSession>>; 16],
}

#[derive(Debug, Default)]
struct UserSession {
    kx_hint: Option<NamedGroup>,
    tls12: Option<Tls12ClientSessionValue>,
    tls13: Option<Tls13ClientSessionValue>,
}

impl UserSessions {
    fn with<R>(&self, f: impl FnOnce(&mut UserSession) -> R) -> Option<R> {
        let user = SESSION_USER.with(Cell::get)?;
        let mut shard = self.shards[(user % 16) as usize].lock().unwrap_or_else(|e| e.into_inner());
        Some(f(shard.entry(user).or_default()))
    }
}

// Every user of a target sends one server name, so the name is not part of the key. A user whose target changes
// (it never does within a run) would offer a ticket the new server refuses, and fall back to a full handshake.
impl ClientSessionStore for UserSessions {
    fn set_kx_hint(&self, _: ServerName<'static>, group: NamedGroup) {
        self.with(|s| s.kx_hint = Some(group));
    }

    fn kx_hint(&self, _: &ServerName<'_>) -> Option<NamedGroup> {
        self.with(|s| s.kx_hint).flatten()
    }

    fn set_tls12_session(&self, _: ServerName<'static>, value: Tls12ClientSessionValue) {
        self.with(|s| s.tls12 = Some(value));
    }

    fn tls12_session(&self, _: &ServerName<'_>) -> Option<Tls12ClientSessionValue> {
        self.with(|s| s.tls12.clone()).flatten()
    }

    fn remove_tls12_session(&self, _: &ServerName<'static>) {
        self.with(|s| s.tls12 = None);
    }

    fn insert_tls13_ticket(&self, _: ServerName<'static>, value: Tls13ClientSessionValue) {
        // The newest ticket only: each is good for one resumption, and each resumption brings a new one.
        self.with(|s| s.tls13 = Some(value));
    }

    fn take_tls13_ticket(&self, _: &ServerName<'static>) -> Option<Tls13ClientSessionValue> {
        self.with(|s| s.tls13.take()).flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_errors_map_to_their_classes() {
        let cert = |e| failure(&Error::InvalidCertificate(e));
        assert_eq!(cert(CertificateError::UnknownIssuer), Failure::TlsUntrusted);
        assert_eq!(cert(CertificateError::BadSignature), Failure::TlsUntrusted);
        assert_eq!(cert(CertificateError::NotValidForName), Failure::TlsNameMismatch);
        assert_eq!(cert(CertificateError::Expired), Failure::TlsExpired);
        assert_eq!(cert(CertificateError::NotValidYet), Failure::TlsExpired);
        assert_eq!(failure(&Error::AlertReceived(rustls::AlertDescription::HandshakeFailure)), Failure::TlsAlert);
        assert_eq!(failure(&Error::DecryptError), Failure::TlsError);
    }

    #[test]
    fn sessions_belong_to_the_user_they_were_stored_for() {
        let store = UserSessions::default();
        let name = ServerName::try_from("example.test").unwrap();
        as_user(Some(1), || store.set_kx_hint(name.clone(), NamedGroup::X25519));
        assert_eq!(as_user(Some(1), || store.kx_hint(&name)), Some(NamedGroup::X25519));
        assert_eq!(as_user(Some(2), || store.kx_hint(&name)), None);
        // No user (an open-model arrival): nothing kept, nothing found.
        store.set_kx_hint(name.clone(), NamedGroup::secp256r1);
        assert_eq!(store.kx_hint(&name), None);
        assert_eq!(as_user(Some(1), || store.kx_hint(&name)), Some(NamedGroup::X25519));
    }

    #[test]
    fn bad_files_are_named_with_their_flag() {
        let missing = Path::new("/nonexistent/ca.pem");
        let opts = ClientOptions { cacert: Some(missing.into()), ..ClientOptions::default() };
        let err = TlsClient::new(&opts).unwrap_err();
        assert!(err.starts_with("--cacert /nonexistent/ca.pem"), "{err}");
        let opts = ClientOptions { cert: Some(missing.into()), ..ClientOptions::default() };
        assert!(TlsClient::new(&opts).unwrap_err().contains("--cert and --key go together"));
    }
}
