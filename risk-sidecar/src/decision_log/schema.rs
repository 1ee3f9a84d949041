//! Schema `risk`: its migrations (`migrations/risk/`, with a history table of their
//! own) and the day partitions of `risk.decisions`.

use std::collections::BTreeSet;

use time::{Date, Duration, OffsetDateTime};

mod embedded {
    refinery::embed_migrations!("../migrations/risk");
}

/// The sidecar's own history table: the shop's `refinery_schema_history` is beside it.
const HISTORY_TABLE: &str = "risk_schema_history";
/// Replicas starting together take turns (the lock is released with the session).
const MIGRATION_LOCK: i64 = 0x7269_736b_6d69_6772; // "riskmigr"
const DAY_MS: i64 = 86_400_000;

#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("failed to apply the risk migrations")]
    Migrate(#[source] refinery::Error),
    #[error("PostgreSQL refused a schema statement")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("migrations or partition upkeep took too long")]
    Timeout,
}

/// Applies every risk migration not yet applied.
pub async fn migrate(client: &mut tokio_postgres::Client) -> Result<(), SchemaError> {
    client
        .execute("select pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    let mut runner = embedded::migrations::runner();
    let result = runner.set_migration_table_name(HISTORY_TABLE).run_async(client).await;
    client
        .execute("select pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await?;
    let report = result.map_err(SchemaError::Migrate)?;
    for m in report.applied_migrations() {
        tracing::info!(migration = %m, "Applied risk migration.");
    }
    Ok(())
}

/// The UTC day of a Unix millisecond time.
pub fn day_of(ms: i64) -> Date {
    let t = OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000)).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    t.date()
}

fn partition_name(day: Date) -> String {
    format!(
        "decisions_{:04}{:02}{:02}",
        day.year(),
        u8::from(day.month()),
        day.day()
    )
}

/// Creates the day partitions that do not exist yet.
pub async fn ensure_partitions(
    client: &impl tokio_postgres::GenericClient,
    days: impl IntoIterator<Item = Date>,
) -> Result<(), tokio_postgres::Error> {
    for day in days {
        let next = day.next_day().unwrap_or(day);
        // Names and bounds come from a Date, never from input.
        // Bounds in UTC whatever the session's time zone: `day_of` is UTC.
        let sql = format!(
            "create table if not exists risk.{} partition of risk.decisions \
             for values from ('{day} 00:00:00+00') to ('{next} 00:00:00+00')",
            partition_name(day)
        );
        if let Err(e) = client.batch_execute(&sql).await {
            // Two replicas creating the same partition at once: one wins, which is fine.
            let raced = e.code().is_some_and(|c| {
                *c == tokio_postgres::error::SqlState::DUPLICATE_TABLE
                    || *c == tokio_postgres::error::SqlState::UNIQUE_VIOLATION
            });
            if !raced {
                return Err(e);
            }
        }
    }
    Ok(())
}

/// Today and `ahead` days on, created; partitions wholly older than `retention_days`
/// dropped. Returns the dropped partitions' names.
pub async fn maintain_partitions(
    client: &impl tokio_postgres::GenericClient,
    now_ms: i64,
    ahead: u32,
    retention_days: u32,
) -> Result<Vec<String>, tokio_postgres::Error> {
    let today = day_of(now_ms);
    let days: BTreeSet<Date> = (0..=i64::from(ahead)).map(|d| today + Duration::days(d)).collect();
    ensure_partitions(client, days).await?;
    let cutoff = day_of(now_ms - i64::from(retention_days) * DAY_MS);
    let rows = client
        .query(
            "select c.relname from pg_inherits i \
               join pg_class c on c.oid = i.inhrelid \
               join pg_class p on p.oid = i.inhparent \
               join pg_namespace n on n.oid = p.relnamespace \
              where n.nspname = 'risk' and p.relname = 'decisions'",
            &[],
        )
        .await?;
    let mut dropped = Vec::new();
    for row in rows {
        let name: String = row.get(0);
        let Some(day) = parse_partition_day(&name) else {
            continue;
        };
        // A partition holds day .. day+1; it is wholly past retention when day+1 <= cutoff.
        if day.next_day().is_some_and(|end| end <= cutoff) {
            client
                .batch_execute(&format!("drop table if exists risk.{name}"))
                .await?;
            tracing::info!(partition = %name, "Dropped a decision-log partition past retention.");
            dropped.push(name);
        }
    }
    Ok(dropped)
}

fn parse_partition_day(name: &str) -> Option<Date> {
    let digits = name.strip_prefix("decisions_")?;
    if digits.len() != 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let year: i32 = digits[..4].parse().ok()?;
    let month: u8 = digits[4..6].parse().ok()?;
    let day: u8 = digits[6..].parse().ok()?;
    Date::from_calendar_date(year, time::Month::try_from(month).ok()?, day).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_names_round_trip() {
        let day = day_of(1_764_547_200_123); // 2025-12-01
        assert_eq!(partition_name(day), "decisions_20251201");
        assert_eq!(parse_partition_day("decisions_20251201"), Some(day));
        assert_eq!(parse_partition_day("decisions_default"), None);
        assert_eq!(
            day_of(-1),
            Date::from_calendar_date(1969, time::Month::December, 31).expect("date")
        );
    }
}
