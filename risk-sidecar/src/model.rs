//! The fraud model: an ONNX graph held in memory and scored inline on the request path.
//!
//! A few hundred small trees score one row in microseconds, less than a hop to the
//! blocking pool would cost, so inference runs on the actix worker. `Session::run`
//! needs `&mut self`: a small pool of sessions (one per worker by default), each
//! single-threaded, avoids one global lock.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use ort::environment::Environment;
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::TensorRef;
use parking_lot::Mutex;
use serde::Deserialize;
use shared::N_FEATURES;

use crate::decision::features::FeatureVector;
use crate::decision::policy::Bands;
use crate::explain::TreeExplainer;

pub const MODEL_FILE: &str = "model.onnx";
pub const CARD_FILE: &str = "model.json";

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("failed to load the ONNX Runtime library ({0}); run `make ort` or set ORT_DYLIB_PATH")]
    Runtime(String),
    #[error("failed to read model card {path}: {problem}")]
    Card { path: PathBuf, problem: String },
    #[error("model {version} was trained on feature list {found}, this sidecar computes {expected}")]
    FeatureMismatch {
        version: String,
        found: String,
        expected: String,
    },
    #[error("failed to load model {path}: {problem}")]
    Load { path: PathBuf, problem: String },
    #[error("inference failed: {0}")]
    Inference(String),
}

/// The JSON card beside each model: what it is and what it was trained on.
#[derive(Debug, Clone, Deserialize)]
pub struct ModelCard {
    pub version: String,
    pub feature_list_hash: String,
    /// The output holding `[N, 2]` class probabilities; fraud is column 1.
    #[serde(default = "default_output")]
    pub output: String,
    /// Score bands chosen on validation data at training; a policy may override them.
    #[serde(default)]
    pub thresholds: Option<Bands>,
}

fn default_output() -> String {
    "probabilities".to_owned()
}

/// Where the model comes from, for loading at start and again on reload.
#[derive(Debug, Clone)]
pub struct ModelSource {
    pub dir: PathBuf,
    pub sessions: usize,
    pub library: String,
}

impl ModelSource {
    pub fn load(&self) -> Result<OnnxModel, ModelError> {
        OnnxModel::load(&self.dir, self.sessions, &self.library)
    }
}

pub struct OnnxModel {
    pub card: ModelCard,
    /// TreeSHAP over the model's tree dump, when the model ships one.
    pub explainer: Option<TreeExplainer>,
    sessions: Vec<Mutex<Session>>,
    next: AtomicUsize,
}

/// ONNX Runtime allows one environment per process; every model shares it.
static ENVIRONMENT: OnceLock<Result<Environment, String>> = OnceLock::new();

/// Where the Makefile puts the library, relative to the repository root.
const FETCHED_LIBRARY: &str = ".tools/onnxruntime/libonnxruntime.so";

fn environment(library: &str) -> Result<&'static Environment, ModelError> {
    ENVIRONMENT
        .get_or_init(|| {
            let path = find_library(library)?;
            // init_from reports a missing or wrong library as an error; plain init() panics.
            ort::init_from(&path)
                .map_err(|e| format!("{}: {e}", path.display()))?
                .with_name("risk-sidecar")
                .with_telemetry(false)
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| ModelError::Runtime(e.clone()))
}

/// The configured path, else `ORT_DYLIB_PATH`, else the Makefile's download, else a
/// library beside the executable.
fn find_library(configured: &str) -> Result<PathBuf, String> {
    if !configured.is_empty() {
        return Ok(PathBuf::from(configured));
    }
    if let Some(path) = std::env::var_os("ORT_DYLIB_PATH").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    let beside_exe = std::env::current_exe()
        .ok()
        .and_then(|e| Some(e.parent()?.join("libonnxruntime.so")));
    [Some(PathBuf::from(FETCHED_LIBRARY)), beside_exe]
        .into_iter()
        .flatten()
        .find(|p| p.exists())
        .ok_or_else(|| "no library found".to_owned())
}

/// One single-threaded session: parallelism comes from the pool, not from inside a row.
fn open_session(env: &Environment, path: &Path) -> ort::Result<Session> {
    let builder = Session::builder(env)?;
    let builder = builder
        .with_optimization_level(GraphOptimizationLevel::Level3)
        .map_err(ort::Error::<()>::from)?;
    let builder = builder.with_intra_threads(1).map_err(ort::Error::<()>::from)?;
    let mut builder = builder.with_inter_threads(1).map_err(ort::Error::<()>::from)?;
    builder.commit_from_file(path)
}

// === impl OnnxModel ===

impl OnnxModel {
    /// Loads `dir/model.onnx` after checking `dir/model.json` against our feature list.
    #[tracing::instrument(name = "Load model", skip(library))]
    pub fn load(dir: &Path, sessions: usize, library: &str) -> Result<OnnxModel, ModelError> {
        let card_path = dir.join(CARD_FILE);
        let card_err = |problem: String| ModelError::Card {
            path: card_path.clone(),
            problem,
        };
        let text = std::fs::read_to_string(&card_path).map_err(|e| card_err(e.to_string()))?;
        let card: ModelCard = serde_json::from_str(&text).map_err(|e| card_err(e.to_string()))?;
        let expected = shared::features::feature_list_hash_hex();
        if card.thresholds.is_some_and(|b| !b.is_valid()) {
            return Err(card_err("thresholds must satisfy 0 <= challenge <= block <= 1".into()));
        }
        if card.feature_list_hash != expected {
            return Err(ModelError::FeatureMismatch {
                version: card.version,
                found: card.feature_list_hash,
                expected,
            });
        }
        let env = environment(library)?;
        let path = dir.join(MODEL_FILE);
        let load_err = |problem: String| ModelError::Load {
            path: path.clone(),
            problem,
        };
        let sessions = (0..sessions.max(1))
            .map(|_| {
                open_session(env, &path)
                    .map(Mutex::new)
                    .map_err(|e| load_err(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let explainer = TreeExplainer::load(dir).map_err(|e| load_err(e.to_string()))?;
        let model = OnnxModel {
            card,
            explainer,
            sessions,
            next: AtomicUsize::new(0),
        };
        // Score one row now: a model with the wrong input width or output fails here, not per request.
        model
            .score(&FeatureVector([0.0; N_FEATURES]))
            .map_err(|e| load_err(e.to_string()))?;
        Ok(model)
    }

    /// The fraud probability of one row.
    pub fn score(&self, row: &FeatureVector) -> Result<f32, ModelError> {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let n = self.sessions.len();
        // A free session if there is one; else wait for this request's own.
        let mut session = (0..n)
            .find_map(|i| self.sessions[(start + i) % n].try_lock())
            .unwrap_or_else(|| self.sessions[start % n].lock());
        let err = |e: ort::Error| ModelError::Inference(e.to_string());
        let input = TensorRef::from_array_view(([1usize, N_FEATURES], &row.0[..])).map_err(err)?;
        let outputs = session.run(ort::inputs![input]).map_err(err)?;
        let output = outputs
            .get(self.card.output.as_str())
            .ok_or_else(|| ModelError::Inference(format!("model has no output {}", self.card.output)))?;
        let (_, probabilities) = output.try_extract_tensor::<f32>().map_err(err)?;
        match probabilities {
            [_, fraud] => Ok(fraud.clamp(0.0, 1.0)),
            other => Err(ModelError::Inference(format!(
                "expected 2 probabilities, got {}",
                other.len()
            ))),
        }
    }

    pub fn version(&self) -> &str {
        &self.card.version
    }
}
