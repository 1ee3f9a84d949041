//! The fraud model: ONNX graphs held in memory and scored inline on the request path.
//!
//! A few hundred small trees score one row in microseconds, less than a hop to the
//! blocking pool would cost, so inference runs on the actix worker. `Session::run`
//! needs `&mut self`: a small pool of sessions (one per worker by default), each
//! single-threaded, avoids one global lock.
//!
//! A model may ship an isolation forest (`iforest.onnx`, named by the card) beside the
//! LightGBM classifier: it scores the same row first, and its anomaly score is the
//! classifier's last input column when the card says so.

mod card;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use ort::environment::Environment;
use ort::memory::Allocator;
use ort::session::builder::GraphOptimizationLevel;
use ort::session::{HasSelectedOutputs, OutputSelector, RunOptions, Session};
use ort::value::{Tensor, TensorRef};
use parking_lot::Mutex;
use shared::N_FEATURES;

pub use self::card::{ANOMALY_FEATURE, AnomalyCard, ModelCard, input_name};
use crate::decision::features::FeatureVector;
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
    sessions: Vec<Mutex<Sessions>>,
    next: AtomicUsize,
}

/// One pool slot: a row is scored by both graphs under one lock.
struct Sessions {
    classifier: Runner,
    forest: Option<Runner>,
}

/// A session and its run options: only the output we read is fetched, into a tensor
/// allocated once (ONNX Runtime otherwise allocates and returns every output per run).
struct Runner {
    session: Session,
    options: RunOptions<HasSelectedOutputs>,
    width: usize,
}

/// What the model says about one row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Assessment {
    /// The fraud probability.
    pub fraud: f32,
    /// The isolation forest's anomaly score, when the model has a forest.
    pub anomaly: Option<f32>,
}

/// The classifier's input row: the features, then the anomaly score when it is a
/// feature. Explanations index into it.
#[derive(Debug, Clone, Copy)]
pub struct ModelRow {
    values: [f32; N_FEATURES + 1],
    len: usize,
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
        if card.feature_list_hash != expected {
            return Err(ModelError::FeatureMismatch {
                version: card.version,
                found: card.feature_list_hash,
                expected,
            });
        }
        card.check().map_err(card_err)?;
        let env = environment(library)?;
        let path = dir.join(MODEL_FILE);
        let forest_path = card.anomaly.as_ref().map(|a| dir.join(&a.file));
        let load_err = |path: &Path, problem: String| ModelError::Load {
            path: path.to_owned(),
            problem,
        };
        let open = |path: &Path, output: &str, width: usize| {
            Runner::open(env, path, output, width).map_err(|e| load_err(path, e.to_string()))
        };
        let anomaly_output = card.anomaly.as_ref().map(|a| a.output.clone());
        let sessions = (0..sessions.max(1))
            .map(|_| {
                let forest = match (&forest_path, &anomaly_output) {
                    (Some(p), Some(o)) => Some(open(p, o, 1)?),
                    _ => None,
                };
                Ok(Mutex::new(Sessions {
                    classifier: open(&path, &card.output, 2)?,
                    forest,
                }))
            })
            .collect::<Result<Vec<_>, ModelError>>()?;
        let explainer = TreeExplainer::load(dir, card.n_inputs()).map_err(|e| load_err(&path, e.to_string()))?;
        let model = OnnxModel {
            card,
            explainer,
            sessions,
            next: AtomicUsize::new(0),
        };
        // Score one row now: a model with the wrong input width or output fails here, not
        // per request (a classifier that wants the anomaly score the card does not give it,
        // or the reverse, included).
        model
            .assess(&FeatureVector([0.0; N_FEATURES]))
            .map_err(|e| load_err(&path, e.to_string()))?;
        Ok(model)
    }

    /// The fraud probability of one row.
    pub fn score(&self, row: &FeatureVector) -> Result<f32, ModelError> {
        self.assess(row).map(|a| a.fraud)
    }

    /// The fraud probability and the anomaly score of one row: the forest first (its
    /// score may be the classifier's last input), then the classifier.
    pub fn assess(&self, row: &FeatureVector) -> Result<Assessment, ModelError> {
        let mut sessions = self.checkout();
        let sessions = &mut *sessions;
        let anomaly = self.forest_score(sessions, row)?;
        let input = self.input_row(row, anomaly);
        let probabilities = sessions.classifier.run(input.as_slice())?;
        Ok(Assessment {
            fraud: probabilities[1].clamp(0.0, 1.0),
            anomaly,
        })
    }

    /// The isolation forest's score alone (`None` without a forest): for benchmarks.
    pub fn anomaly_score(&self, row: &FeatureVector) -> Result<Option<f32>, ModelError> {
        self.forest_score(&mut self.checkout(), row)
    }

    fn forest_score(&self, sessions: &mut Sessions, row: &FeatureVector) -> Result<Option<f32>, ModelError> {
        match (&mut sessions.forest, &self.card.anomaly) {
            (Some(forest), Some(_)) => Ok(Some(forest.run(&row.0)?[0])),
            _ => Ok(None),
        }
    }

    /// The classifier's input for a row and its anomaly score.
    pub fn input_row(&self, row: &FeatureVector, anomaly: Option<f32>) -> ModelRow {
        let mut values = [f32::NAN; N_FEATURES + 1];
        values[..N_FEATURES].copy_from_slice(&row.0);
        let mut len = N_FEATURES;
        if self.card.anomaly_is_feature() {
            values[N_FEATURES] = anomaly.unwrap_or(f32::NAN);
            len += 1;
        }
        ModelRow { values, len }
    }

    /// A free session if there is one; else wait for this request's own.
    fn checkout(&self) -> parking_lot::MutexGuard<'_, Sessions> {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let n = self.sessions.len();
        (0..n)
            .find_map(|i| self.sessions[(start + i) % n].try_lock())
            .unwrap_or_else(|| self.sessions[start % n].lock())
    }

    pub fn version(&self) -> &str {
        &self.card.version
    }
}

// === impl ModelRow ===

impl ModelRow {
    pub fn as_slice(&self) -> &[f32] {
        &self.values[..self.len]
    }
}

// === impl Runner ===

impl Runner {
    fn open(env: &Environment, path: &Path, output: &str, width: usize) -> ort::Result<Runner> {
        let session = open_session(env, path)?;
        if !session.outputs().iter().any(|o| o.name() == output) {
            return Err(ort::Error::new(format!("model has no output {output}")));
        }
        let buffer = Tensor::<f32>::new(&Allocator::default(), [1usize, width])?;
        let options =
            RunOptions::new()?.with_outputs(OutputSelector::no_default().with(output).preallocate(output, buffer));
        Ok(Runner {
            session,
            options,
            width,
        })
    }

    /// Runs the graph on one row; its output must hold `width` values.
    fn run(&mut self, row: &[f32]) -> Result<[f32; 2], ModelError> {
        let err = |e: ort::Error| ModelError::Inference(e.to_string());
        let input = TensorRef::from_array_view(([1usize, row.len()], row)).map_err(err)?;
        let outputs = self
            .session
            .run_with_options(ort::inputs![input], &self.options)
            .map_err(err)?;
        let (_, values) = outputs[0].try_extract_tensor::<f32>().map_err(err)?;
        if values.len() != self.width {
            return Err(ModelError::Inference(format!(
                "expected {} values, got {}",
                self.width,
                values.len()
            )));
        }
        let mut out = [0.0; 2];
        out[..self.width].copy_from_slice(values);
        Ok(out)
    }
}
