//! Replays a history (JSON lines) through the sidecar's feature code and writes the
//! training table (CSV). Settings (currency table, bounds) as for the sidecar: RISK__… .

use std::io::{BufReader, BufWriter};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use risk_sidecar::replay::Replayer;
use risk_sidecar::settings::Settings;

#[derive(Parser)]
struct Args {
    /// The history, in time order.
    #[arg(long)]
    history: PathBuf,
    /// The feature table to write.
    #[arg(long)]
    out: PathBuf,
    /// Days after its transaction that a label without `labelled_at` becomes known.
    #[arg(long, default_value_t = 7.0)]
    label_delay_days: f64,
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("risk-replay: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    let settings = Settings::load()?;
    let input =
        std::fs::File::open(&args.history).with_context(|| format!("Failed to open {}", args.history.display()))?;
    let output =
        std::fs::File::create(&args.out).with_context(|| format!("Failed to create {}", args.out.display()))?;
    anyhow::ensure!(
        args.label_delay_days.is_finite() && args.label_delay_days >= 0.0,
        "--label-delay-days must be a number of days, 0 or more"
    );
    let delay_ms = (args.label_delay_days * 86_400_000.0).round() as i64;
    let rows = Replayer::new(&settings)
        .with_label_delay(delay_ms)
        .run(BufReader::new(input), BufWriter::new(output))?;
    eprintln!("risk-replay: {rows} rows written to {}", args.out.display());
    Ok(())
}
