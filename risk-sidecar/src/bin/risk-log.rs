//! The decision log offline: `export` writes it as a history (`make export-history`,
//! for `make train HISTORY=…`), `rebuild-counters` replays it into Redis after Redis
//! lost its data (`make rebuild-counters`). Settings as for the sidecar: the log's
//! database is RISK__DECISION_LOG__URL, Redis RISK__REDIS__URL.

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use futures::TryStreamExt;
use risk_sidecar::decision::features::{EmailKeying, FeatureContext};
use risk_sidecar::decision_log::export;
use risk_sidecar::settings::Settings;
use risk_sidecar::store::{RedisStore, VelocityStore};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Writes the decisions of [since, until) with their labels and outcomes as a history.
    Export {
        /// A date (2026-11-01, UTC midnight) or an RFC 3339 time.
        #[arg(long)]
        since: String,
        /// Default: now.
        #[arg(long)]
        until: Option<String>,
        #[arg(long)]
        out: PathBuf,
    },
    /// Counts the decisions since `since` into Redis, as they were counted live.
    RebuildCounters {
        #[arg(long)]
        since: String,
        #[arg(long)]
        until: Option<String>,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("risk-log: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let settings = Settings::load()?;
    let Some(url) = settings.decision_log.url() else {
        bail!("RISK__DECISION_LOG__URL is not set: no decision log to read");
    };
    // The services' pool: TLS when the URL says `sslmode=require`, as for the sidecar.
    let config: tokio_postgres::Config = url.parse().context("RISK__DECISION_LOG__URL is not a PostgreSQL URL")?;
    let pool = servicekit::postgres::pool(config, 1, settings.decision_log.connect_timeout())?;
    let connection = pool.get().await.context("Failed to connect to the decision log")?;
    let client: &tokio_postgres::Client = &connection;
    match args.command {
        Command::Export { since, until, out } => {
            let (since, until) = (
                time_ms(&since)?,
                until.as_deref().map(time_ms).transpose()?.unwrap_or_else(now_ms),
            );
            let file = std::fs::File::create(&out).with_context(|| format!("Failed to create {}", out.display()))?;
            let mut writer = BufWriter::new(file);
            let records = export::history(client, since, until).await?;
            futures::pin_mut!(records);
            let mut n = 0usize;
            while let Some(record) = records.try_next().await? {
                serde_json::to_writer(&mut writer, &record)?;
                writer.write_all(b"\n")?;
                n += 1;
                if n.is_multiple_of(100_000) {
                    eprintln!("risk-log: {n} records exported");
                }
            }
            writer.flush()?;
            eprintln!("risk-log: {n} records written to {}", out.display());
        }
        Command::RebuildCounters { since, until } => {
            let Some(redis) = settings.redis_url() else {
                bail!("RISK__REDIS__URL is not set: no Redis to rebuild");
            };
            let (since, until) = (
                time_ms(&since)?,
                until.as_deref().map(time_ms).transpose()?.unwrap_or_else(now_ms),
            );
            let store = VelocityStore::Redis(RedisStore::connect(redis, &settings.redis).await?);
            let features = FeatureContext::new(&settings.currency.rates, &settings.currency.reference)
                .with_labels(true, EmailKeying::Exported);
            let records = export::history(client, since, until).await?;
            let n = risk_sidecar::replay::rebuild_counters(&store, &features, records, |n| {
                if n.is_multiple_of(100_000) {
                    eprintln!("risk-log: {n} decisions counted");
                }
            })
            .await?;
            eprintln!("risk-log: {n} decisions counted into Redis");
        }
    }
    Ok(())
}

/// `2026-11-01` (UTC midnight) or an RFC 3339 time, as Unix milliseconds.
fn time_ms(s: &str) -> anyhow::Result<i64> {
    let text = if s.len() == 10 {
        format!("{s}T00:00:00Z")
    } else {
        s.to_owned()
    };
    let t =
        OffsetDateTime::parse(&text, &Rfc3339).with_context(|| format!("{s:?} is not a date or an RFC 3339 time"))?;
    Ok((t.unix_timestamp_nanos() / 1_000_000) as i64)
}

fn now_ms() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}
