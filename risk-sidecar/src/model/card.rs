//! The JSON card beside each model (`model.json`): what the model is, what it was
//! trained on, and what it takes as input. The sidecar refuses a card that does not
//! describe its own feature list.

use serde::Deserialize;
use shared::{FEATURE_NAMES, N_FEATURES};

use crate::decision::policy::Bands;

/// The input column the anomaly score takes when the classifier uses it: after the
/// request's features.
pub const ANOMALY_FEATURE: &str = "anomaly_score";

#[derive(Debug, Clone, Deserialize)]
pub struct ModelCard {
    pub version: String,
    pub feature_list_hash: String,
    /// The output holding `[N, 2]` class probabilities; fraud is column 1.
    #[serde(default = "default_output")]
    pub output: String,
    /// The classifier's input columns by name, when the card lists them: the feature list,
    /// then `anomaly_score` if the forest's score is a feature. Checked at load.
    #[serde(default)]
    pub inputs: Option<Vec<String>>,
    /// An isolation forest scored on the same row, when the model has one.
    #[serde(default)]
    pub anomaly: Option<AnomalyCard>,
    /// Score bands chosen on validation data at training; a policy may override them.
    #[serde(default)]
    pub thresholds: Option<Bands>,
}

/// The isolation forest beside the classifier (`ml/iforest.py`).
#[derive(Debug, Clone, Deserialize)]
pub struct AnomalyCard {
    /// Its ONNX graph: a file name in the model directory.
    pub file: String,
    /// The output holding `[N, 1]` anomaly scores, 2^(-E[h(x)]/c(ψ)): higher is more
    /// unusual, about 0.5 ordinary (scikit-learn's `-score_samples`).
    #[serde(default = "default_anomaly_output")]
    pub output: String,
    /// Whether the classifier takes the score as its last input column. When it does
    /// not, the score is still computed and returned beside the fraud probability.
    pub as_feature: bool,
    /// Informational, from training: trees, samples per tree, and scikit-learn's
    /// `offset_` (`decision_function = -anomaly_score - offset`).
    #[serde(default)]
    pub trees: Option<u32>,
    #[serde(default)]
    pub max_samples: Option<u32>,
    #[serde(default)]
    pub offset: Option<f64>,
}

fn default_output() -> String {
    "probabilities".to_owned()
}

fn default_anomaly_output() -> String {
    "anomaly_score".to_owned()
}

// === impl ModelCard ===

impl ModelCard {
    /// Whether the classifier's input has the anomaly score as its last column.
    pub fn anomaly_is_feature(&self) -> bool {
        self.anomaly.as_ref().is_some_and(|a| a.as_feature)
    }

    /// The classifier's input width.
    pub fn n_inputs(&self) -> usize {
        N_FEATURES + usize::from(self.anomaly_is_feature())
    }

    /// What the card must satisfy beyond the feature-list hash: valid bands, a forest
    /// named by a plain file name, and listed inputs that are this sidecar's.
    pub fn check(&self) -> Result<(), String> {
        if self.thresholds.is_some_and(|b| !b.is_valid()) {
            return Err("thresholds must satisfy 0 <= challenge <= block <= 1".into());
        }
        if let Some(a) = &self.anomaly
            && (a.file.is_empty() || a.file.contains(['/', '\\']) || a.file.starts_with('.'))
        {
            return Err(format!(
                "anomaly.file must be a file name in the model directory, not {:?}",
                a.file
            ));
        }
        if let Some(inputs) = &self.inputs {
            let expected: Vec<&str> = FEATURE_NAMES
                .iter()
                .copied()
                .chain(self.anomaly_is_feature().then_some(ANOMALY_FEATURE))
                .collect();
            if inputs.iter().map(String::as_str).ne(expected.iter().copied()) {
                return Err(format!(
                    "inputs must be the feature list{}, in order",
                    if self.anomaly_is_feature() {
                        " then anomaly_score"
                    } else {
                        ""
                    }
                ));
            }
        }
        Ok(())
    }
}

/// The name of input column `i` of the classifier.
pub fn input_name(i: usize) -> &'static str {
    FEATURE_NAMES.get(i).copied().unwrap_or(ANOMALY_FEATURE)
}
