//! A PostgreSQL pool built the same way by both services: no connection at build time
//! (a service starts while PostgreSQL is down), TLS when the URL asks for it.

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;
use tokio_postgres::config::SslMode;

/// Why a pool could not be built; the caller names its setting.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    #[error("sslmode=require, but no CA certificates were found (set SSL_CERT_FILE)")]
    NoRoots,
    #[error("TLS configuration failed")]
    Tls(#[source] rustls::Error),
    #[error("pool configuration failed")]
    Build(#[source] deadpool_postgres::BuildError),
}

/// TLS (rustls, the system's roots or `SSL_CERT_FILE`) when `sslmode=require`. Every
/// wait (for a free connection, a new one, a recycle) is bounded by `timeout`.
pub fn pool(config: tokio_postgres::Config, max_size: usize, timeout: std::time::Duration) -> Result<Pool, PoolError> {
    let manager_config = ManagerConfig {
        // Fast: a broken connection shows on its first query, which maps to a 503 and
        // is dropped; checking every checkout with a round trip would cost more.
        recycling_method: RecyclingMethod::Fast,
    };
    let manager = if config.get_ssl_mode() == SslMode::Require {
        Manager::from_config(config, tls_connector()?, manager_config)
    } else {
        Manager::from_config(config, NoTls, manager_config)
    };
    Pool::builder(manager)
        .max_size(max_size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(timeout))
        .create_timeout(Some(timeout))
        .recycle_timeout(Some(timeout))
        .build()
        .map_err(PoolError::Build)
}

/// Verifies the server against the system's certificate roots (a private CA: point
/// `SSL_CERT_FILE` at its bundle).
fn tls_connector() -> Result<tokio_postgres_rustls::MakeRustlsConnect, PoolError> {
    let mut roots = rustls::RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    let (added, _ignored) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        return Err(PoolError::NoRoots);
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(PoolError::Tls)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}
