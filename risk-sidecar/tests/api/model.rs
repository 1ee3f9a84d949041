//! The shipped model scores in the sidecar (ort) as it did in Python (onnxruntime) at
//! training: `make train` writes rows and their scores to `parity.json`.

use risk_sidecar::decision::features::FeatureVector;
use risk_sidecar::model::OnnxModel;
use serde_json::Value;

use crate::helpers::repo_path;

#[test]
fn ort_scores_the_shipped_model_as_python_onnxruntime_did() {
    let dir = repo_path("models/lgbm");
    let model = OnnxModel::load(&dir, 1, "").expect("the shipped model loads");
    let thresholds = model.card.thresholds.expect("the card names its thresholds");
    assert!(thresholds.challenge <= thresholds.block);

    let parity: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("parity.json")).expect("parity.json")).expect("json");
    let rows = parity["rows"].as_array().expect("rows");
    let scores = parity["scores"].as_array().expect("scores");
    assert!(rows.len() >= 20 && rows.len() == scores.len());
    for (row, expected) in rows.iter().zip(scores) {
        let mut v = FeatureVector([0.0; shared::N_FEATURES]);
        for (slot, x) in v.0.iter_mut().zip(row.as_array().expect("row")) {
            *slot = x.as_f64().map_or(f32::NAN, |x| x as f32);
        }
        let got = f64::from(model.score(&v).expect("scores"));
        let want = expected.as_f64().expect("score");
        assert!((got - want).abs() <= 1e-5, "ort {got} vs onnxruntime {want}");
    }
}

#[test]
fn treeshap_in_rust_matches_lightgbms_own_contributions() {
    let dir = repo_path("models/lgbm");
    let explainer = risk_sidecar::explain::TreeExplainer::load(&dir)
        .expect("reads")
        .expect("the model ships its trees");
    let parity: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("parity.json")).expect("parity.json")).expect("json");
    let rows = parity["rows"].as_array().expect("rows");
    let expected = parity["contributions"].as_array().expect("contributions");
    for (n, (row, want)) in rows.iter().zip(expected).enumerate() {
        let mut v = FeatureVector([0.0; shared::N_FEATURES]);
        for (slot, x) in v.0.iter_mut().zip(row.as_array().expect("row")) {
            *slot = x.as_f64().map_or(f32::NAN, |x| x as f32);
        }
        let got = explainer.contributions(&v);
        let want: Vec<f64> = want
            .as_array()
            .expect("row")
            .iter()
            .map(|c| c.as_f64().expect("number"))
            .collect();
        assert_eq!(got.len(), want.len());
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!((g - w).abs() <= 1e-6, "row {n}, column {i}: ours {g}, LightGBM's {w}");
        }
    }
}
