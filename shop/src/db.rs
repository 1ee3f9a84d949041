//! The PostgreSQL pool and the schema migrations (`migrations/` at the repository root).

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;
use tokio_postgres::config::SslMode;

use crate::settings::{DatabaseSettings, SettingsError};

mod embedded {
    refinery::embed_migrations!("../migrations");
}

/// Builds the pool without connecting: the shop starts (and says "not ready") while
/// PostgreSQL is down, and serves as soon as it is back. TLS (rustls, the system's
/// roots, or `SSL_CERT_FILE`) when the URL asks for it with `sslmode=require`.
pub fn pool(settings: &DatabaseSettings) -> Result<Pool, SettingsError> {
    let config = settings.pg_config()?;
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
        .max_size(settings.pool_size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(settings.connect_timeout()))
        .create_timeout(Some(settings.connect_timeout()))
        .recycle_timeout(Some(settings.connect_timeout()))
        .build()
        .map_err(|e| SettingsError::Invalid {
            key: "database.pool_size",
            problem: e.to_string(),
        })
}

/// Verifies the server against the system's certificate roots (a private CA: point
/// `SSL_CERT_FILE` at its bundle).
fn tls_connector() -> Result<tokio_postgres_rustls::MakeRustlsConnect, SettingsError> {
    let invalid = |problem: String| SettingsError::Invalid {
        key: "database.url",
        problem,
    };
    let mut roots = rustls::RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    let (added, _ignored) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        return Err(invalid(
            "sslmode=require, but no CA certificates were found (set SSL_CERT_FILE)".to_owned(),
        ));
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// Applies every migration not yet applied (refinery keeps its own history table and
/// refuses an applied file that changed).
#[tracing::instrument(name = "Run migrations", skip(pool))]
pub async fn migrate(pool: &Pool) -> anyhow::Result<()> {
    use anyhow::Context;
    let mut client = pool.get().await.context("failed to connect to run migrations")?;
    let client: &mut tokio_postgres::Client = &mut client;
    let report = embedded::migrations::runner()
        .run_async(client)
        .await
        .context("failed to apply migrations")?;
    for migration in report.applied_migrations() {
        tracing::info!(migration = %migration, "Applied migration.");
    }
    Ok(())
}

/// The newest migration this build knows.
pub fn latest_migration() -> i64 {
    embedded::migrations::runner()
        .get_migrations()
        .iter()
        .map(|m| i64::from(m.version()))
        .max()
        .unwrap_or(0)
}

/// Why the shop is not ready: a fixed word for `/readyz`; the cause goes to the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotReady {
    Unreachable,
    NotMigrated,
    MigrationsBehind,
}

impl NotReady {
    pub fn as_str(self) -> &'static str {
        match self {
            NotReady::Unreachable => "unreachable",
            NotReady::NotMigrated => "not_migrated",
            NotReady::MigrationsBehind => "migrations_behind",
        }
    }
}

/// Readiness: the database answers and holds this build's newest migration.
pub async fn check_ready(pool: &Pool) -> Result<(), NotReady> {
    let client = pool.get().await.map_err(|e| {
        tracing::debug!(error = %e, "Not ready: database unreachable.");
        NotReady::Unreachable
    })?;
    let row = client
        .query_one(
            "select coalesce(max(version), 0)::bigint from refinery_schema_history",
            &[],
        )
        .await
        .map_err(|e| {
            tracing::debug!(error = %e, "Not ready: the database did not answer the migration check.");
            // An answer from the server (no history table) means not migrated; no
            // answer (the connection broke) means unreachable.
            if e.as_db_error().is_some() {
                NotReady::NotMigrated
            } else {
                NotReady::Unreachable
            }
        })?;
    let applied: i64 = row.get(0);
    if applied < latest_migration() {
        tracing::debug!(applied, latest = latest_migration(), "Not ready: migrations behind.");
        return Err(NotReady::MigrationsBehind);
    }
    Ok(())
}
