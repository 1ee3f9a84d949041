//! The shipped model scores in the sidecar (ort) as it did in Python (onnxruntime) at
//! training: `make train` writes rows, their anomaly and fraud scores, and LightGBM's
//! SHAP contributions to `parity.json`. And a model that does not fit is refused.
//!
//! `models/fixture-anomaly` (`make model-fixture`) is a model whose classifier takes the
//! forest's score as its 50th input: tested beside the shipped model whichever way the
//! shipped model uses its forest.

use std::path::Path;

use risk_sidecar::decision::features::FeatureVector;
use risk_sidecar::model::{ModelError, OnnxModel};
use serde_json::Value;

use crate::helpers::repo_path;

struct Parity {
    rows: Vec<FeatureVector>,
    anomaly_scores: Vec<f64>,
    scores: Vec<f64>,
    contributions: Vec<Vec<f64>>,
}

fn parity(dir: &Path) -> Parity {
    let text = std::fs::read_to_string(dir.join("parity.json")).expect("parity.json");
    let parity: Value = serde_json::from_str(&text).expect("json");
    let numbers = |v: &Value| -> Vec<f64> {
        v.as_array()
            .expect("array")
            .iter()
            .map(|x| x.as_f64().expect("number"))
            .collect()
    };
    let rows = parity["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|row| {
            let mut v = FeatureVector([0.0; shared::N_FEATURES]);
            for (slot, x) in v.0.iter_mut().zip(row.as_array().expect("row")) {
                *slot = x.as_f64().map_or(f32::NAN, |x| x as f32);
            }
            v
        })
        .collect();
    Parity {
        rows,
        anomaly_scores: numbers(&parity["anomaly_scores"]),
        scores: numbers(&parity["scores"]),
        contributions: parity["contributions"]
            .as_array()
            .expect("contributions")
            .iter()
            .map(numbers)
            .collect(),
    }
}

#[test]
fn ort_scores_the_shipped_model_as_python_onnxruntime_did() {
    let dir = repo_path("models/lgbm");
    let model = OnnxModel::load(&dir, 1, "").expect("the shipped model loads");
    let thresholds = model.card.thresholds.expect("the card names its thresholds");
    assert!(thresholds.challenge <= thresholds.block);

    let p = parity(&dir);
    assert!(p.rows.len() >= 20 && p.rows.len() == p.scores.len());
    for (row, want) in p.rows.iter().zip(&p.scores) {
        let got = f64::from(model.score(row).expect("scores"));
        assert!((got - want).abs() <= 1e-5, "ort {got} vs onnxruntime {want}");
    }
}

const WITH_FOREST: [&str; 2] = ["models/lgbm", "models/fixture-anomaly"];

#[test]
fn ort_scores_isolation_forests_and_their_classifiers_as_python_onnxruntime_did() {
    for rel in WITH_FOREST {
        let dir = repo_path(rel);
        let model = OnnxModel::load(&dir, 1, "").expect("the model loads");
        let forest = model.card.anomaly.as_ref().expect("the model has a forest");
        assert_eq!(forest.trees, Some(100), "{rel}");

        let p = parity(&dir);
        assert!(p.rows.len() >= 20 && p.rows.len() == p.anomaly_scores.len(), "{rel}");
        for ((row, want), want_fraud) in p.rows.iter().zip(&p.anomaly_scores).zip(&p.scores) {
            let assessment = model.assess(row).expect("scores");
            let got = f64::from(assessment.anomaly.expect("an anomaly score"));
            assert!((got - want).abs() <= 1e-5, "{rel}: ort {got} vs onnxruntime {want}");
            assert!(got > 0.0 && got <= 1.0, "{rel}: 2^(-E[h]/c) lies in (0, 1]: {got}");
            let fraud = f64::from(assessment.fraud);
            assert!(
                (fraud - want_fraud).abs() <= 1e-5,
                "{rel}: ort {fraud} vs onnxruntime {want_fraud}"
            );
            assert_eq!(model.anomaly_score(row).expect("scores"), assessment.anomaly);
        }
    }
}

#[test]
fn treeshap_in_rust_matches_lightgbms_own_contributions() {
    for rel in WITH_FOREST {
        let dir = repo_path(rel);
        let model = OnnxModel::load(&dir, 1, "").expect("the model loads");
        let explainer = model.explainer.as_ref().expect("the model ships its trees");
        let p = parity(&dir);
        for (n, ((row, anomaly), want)) in p.rows.iter().zip(&p.anomaly_scores).zip(&p.contributions).enumerate() {
            // The classifier's input as Python built it: the row, then the anomaly score
            // when the classifier takes it.
            let input = model.input_row(row, Some(*anomaly as f32));
            let got = explainer.contributions(input.as_slice());
            assert_eq!(got.len(), want.len(), "{rel}");
            assert_eq!(got.len(), model.card.n_inputs() + 1, "{rel}");
            for (i, (g, w)) in got.iter().zip(want).enumerate() {
                assert!(
                    (g - w).abs() <= 1e-6,
                    "{rel}, row {n}, column {i}: ours {g}, LightGBM's {w}"
                );
            }
        }
    }
}

#[test]
fn an_explanation_names_the_anomaly_score_when_it_raised_the_score() {
    // Arrange: the fixture's first parity row is a fraud its forest finds unusual.
    let dir = repo_path("models/fixture-anomaly");
    let model = OnnxModel::load(&dir, 1, "").expect("the model loads");
    assert!(model.card.anomaly_is_feature());
    let row = parity(&dir).rows[0];
    let assessment = model.assess(&row).expect("scores");
    let high = shared::ReasonCode::ModelHighRisk;
    let mut reasons = vec![shared::Reason {
        code: high.as_str().to_owned(),
        message: "model score".to_owned(),
        source: high.source(),
    }];

    // Act
    risk_sidecar::decision::explain(&model, &row, assessment.anomaly, &mut reasons);

    // Assert: three factors follow the model's reason, one of them the anomaly score.
    assert_eq!(reasons.len(), 4, "{reasons:?}");
    assert!(
        reasons[1..]
            .iter()
            .all(|r| r.code == "MODEL_FACTOR" && r.message.contains("raised the score by")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.message.starts_with("anomaly_score = 0.") && r.message.contains("isolation forest")),
        "{reasons:?}"
    );
}

/// A copy of a model whose card is edited by `edit`, or a file removed.
fn model_with(rel: &str, edit: impl FnOnce(&mut Value), remove: Option<&str>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("dir");
    for entry in std::fs::read_dir(repo_path(rel)).expect("model dir") {
        let path = entry.expect("entry").path();
        std::fs::copy(&path, dir.path().join(path.file_name().expect("name"))).expect("copy");
    }
    let card_path = dir.path().join("model.json");
    let mut card: Value = serde_json::from_str(&std::fs::read_to_string(&card_path).expect("card")).expect("json");
    edit(&mut card);
    std::fs::write(&card_path, card.to_string()).expect("card");
    if let Some(file) = remove {
        std::fs::remove_file(dir.path().join(file)).expect("remove");
    }
    dir
}

#[test]
fn a_model_that_does_not_fit_this_sidecar_is_refused() {
    let cases: Vec<(&str, tempfile::TempDir, &str)> = vec![
        (
            "another feature list",
            model_with(
                "models/lgbm",
                |c| c["feature_list_hash"] = "0000000000000000".into(),
                None,
            ),
            "trained on feature list 0000000000000000",
        ),
        (
            "inputs that are not the feature list",
            model_with("models/lgbm", |c| c["inputs"][0] = "amount".into(), None),
            "inputs must be the feature list",
        ),
        (
            "the forest's file missing",
            model_with("models/lgbm", |_| {}, Some("iforest.onnx")),
            "iforest.onnx",
        ),
        (
            "a forest outside the model directory",
            model_with(
                "models/lgbm",
                |c| c["anomaly"]["file"] = "../lgbm/iforest.onnx".into(),
                None,
            ),
            "must be a file name",
        ),
        (
            // The classifier wants 50 columns (or 49); the card says the other.
            "the anomaly score's role flipped",
            model_with(
                "models/lgbm",
                |c| {
                    let flipped = !c["anomaly"]["as_feature"].as_bool().expect("as_feature");
                    c["anomaly"]["as_feature"] = flipped.into();
                    c.as_object_mut().expect("card").remove("inputs");
                },
                None,
            ),
            "",
        ),
        (
            "no forest while the classifier needs its score",
            model_with(
                "models/fixture-anomaly",
                |c| {
                    let card = c.as_object_mut().expect("card");
                    card.remove("anomaly");
                    card.remove("inputs");
                },
                None,
            ),
            "",
        ),
    ];
    for (case, dir, says) in cases {
        match OnnxModel::load(dir.path(), 1, "") {
            Ok(_) => panic!("{case}: loaded"),
            Err(e @ (ModelError::FeatureMismatch { .. } | ModelError::Card { .. } | ModelError::Load { .. })) => {
                assert!(e.to_string().contains(says), "{case}: {e}");
            }
            Err(e) => panic!("{case}: refused for another reason: {e}"),
        }
    }
}
