use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;

/// Writes a labelled traffic history (JSON lines, time order) for training and backtests.
#[derive(Parser)]
struct Args {
    /// The parameter file.
    #[arg(long, default_value = "simulator/params.yaml")]
    params: PathBuf,
    /// The same seed and parameters give the same history, byte for byte.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Where to write; `-` for standard output.
    #[arg(long, default_value = "-")]
    out: String,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let text =
        std::fs::read_to_string(&args.params).with_context(|| format!("Failed to read {}", args.params.display()))?;
    let params = simulator::Params::from_yaml(&text).context("Invalid parameter file")?;
    let history = simulator::simulate(&params, args.seed)?;
    let sink: Box<dyn Write> = match args.out.as_str() {
        "-" => Box::new(std::io::stdout().lock()),
        path => Box::new(std::fs::File::create(path).with_context(|| format!("Failed to create {path}"))?),
    };
    let mut out = std::io::BufWriter::new(sink);
    for record in &history {
        serde_json::to_writer(&mut out, record)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    let fraud = history.iter().filter(|r| r.label == Some(shared::Label::Fraud)).count();
    eprintln!(
        "simulator: {} transactions, {fraud} fraud ({:.2} %)",
        history.len(),
        100.0 * fraud as f64 / history.len().max(1) as f64
    );
    Ok(())
}
