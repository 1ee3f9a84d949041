//! The PostgreSQL pool and the schema migrations (`migrations/` at the repository root).

use deadpool_postgres::Pool;

use crate::settings::{DatabaseSettings, SettingsError};

mod embedded {
    refinery::embed_migrations!("../migrations");
}

/// The risk sidecar's migrations live in `migrations/risk/`, numbered from this version
/// up; refinery's embedding walks that folder too, but the sidecar applies them, with a
/// history table of its own.
const FIRST_RISK_VERSION: u32 = 100;

fn runner() -> refinery::Runner {
    let all = embedded::migrations::runner();
    let shop: Vec<refinery::Migration> = all
        .get_migrations()
        .iter()
        .filter(|m| m.version() < FIRST_RISK_VERSION)
        .cloned()
        .collect();
    refinery::Runner::new(&shop)
}

/// Builds the pool without connecting: the shop starts (and says "not ready") while
/// PostgreSQL is down, and serves as soon as it is back.
pub fn pool(settings: &DatabaseSettings) -> Result<Pool, SettingsError> {
    servicekit::postgres::pool(settings.pg_config()?, settings.pool_size, settings.connect_timeout()).map_err(|e| {
        SettingsError::Invalid {
            key: "database.url",
            problem: e.to_string(),
        }
    })
}

/// Applies every migration not yet applied (refinery keeps its own history table and
/// refuses an applied file that changed).
#[tracing::instrument(name = "Run migrations", skip(pool))]
pub async fn migrate(pool: &Pool) -> anyhow::Result<()> {
    use anyhow::Context;
    let mut client = pool.get().await.context("failed to connect to run migrations")?;
    let client: &mut tokio_postgres::Client = &mut client;
    let report = runner().run_async(client).await.context("failed to apply migrations")?;
    for migration in report.applied_migrations() {
        tracing::info!(migration = %migration, "Applied migration.");
    }
    Ok(())
}

/// The newest migration this build knows.
pub fn latest_migration() -> i64 {
    runner()
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

#[cfg(test)]
mod tests {
    /// The version boundary keeps exactly the files beside `risk/`: a shop migration
    /// numbered into the risk range, or a risk one below it, fails here.
    #[test]
    fn the_shop_runs_its_own_migrations_and_none_of_the_sidecars() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations");
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .expect("migrations dir")
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "sql"))
            .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
            .collect();
        files.sort();
        let mut ours: Vec<String> = super::runner()
            .get_migrations()
            .iter()
            .map(|m| format!("V{}__{}", m.version(), m.name()))
            .collect();
        ours.sort();
        assert_eq!(ours, files);
        assert!(!files.is_empty());
    }
}
