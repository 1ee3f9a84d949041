//! Scores a history offline through the sidecar's own feature, model and policy code:
//! one JSON line per transaction (`transaction_id`, `score`, `anomaly_score` when the
//! model has a forest, `decision`, `reasons`, and the history's `label` and `scenario`
//! when present). The basis of backtests.

use std::io::{BufReader, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use risk_sidecar::decision::explain;
use risk_sidecar::decision::policy::Policy;
use risk_sidecar::model::OnnxModel;
use risk_sidecar::replay::Replayer;
use risk_sidecar::settings::Settings;
use serde_json::json;

#[derive(Parser)]
struct Args {
    /// The history, in time order.
    #[arg(long)]
    history: PathBuf,
    /// The model directory (model.onnx + model.json).
    #[arg(long)]
    model: PathBuf,
    /// The policy file; default: the sidecar's setting (RISK__POLICY__PATH).
    #[arg(long)]
    policy: Option<PathBuf>,
    /// Where to write the scores (JSON lines).
    #[arg(long)]
    out: PathBuf,
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("risk-score: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    let settings = Settings::load()?;
    let model = OnnxModel::load(&args.model, 1, &settings.model.ort_library)?;
    let policy_path = args.policy.unwrap_or_else(|| settings.policy.path.clone());
    let policy_text =
        std::fs::read_to_string(&policy_path).with_context(|| format!("Failed to read {}", policy_path.display()))?;
    let policy = Policy::from_yaml(&policy_text)?;
    let input = BufReader::new(std::fs::File::open(&args.history).context("Failed to open the history")?);
    let mut out = BufWriter::new(std::fs::File::create(&args.out).context("Failed to create the output")?);
    let mut replayer = Replayer::new(&settings);
    let mut n = 0;
    for item in replayer.replay(input) {
        let (record, row) = item?;
        let assessment = model.assess(&row.features)?;
        let score = assessment.fraud;
        let mut verdict = policy.decide(score, &row.features, true, model.card.thresholds);
        // The same explanations a live decision carries.
        explain(&model, &row.features, assessment.anomaly, &mut verdict.reasons);
        let scored = json!({
            "transaction_id": row.transaction_id,
            "score": score,
            "anomaly_score": assessment.anomaly,
            "decision": verdict.decision,
            "reasons": verdict.reasons,
            "label": record.label,
            "scenario": record.scenario,
        });
        serde_json::to_writer(&mut out, &scored)?;
        out.write_all(b"\n")?;
        n += 1;
    }
    out.flush()?;
    eprintln!(
        "risk-score: {n} transactions scored with {} and policy {}",
        model.version(),
        policy.version
    );
    Ok(())
}
