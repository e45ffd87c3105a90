//! The crate's one error type.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum YoloError {
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
    #[error("{path}: {source}")]
    Weights { path: PathBuf, source: WeightsError },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("invalid configuration: {0}")]
    Scale(#[from] yolo_core::model_file::UnknownScale),
    #[error("invalid configuration: {0}")]
    Model(#[from] yolo_core::train_config::ModelChoiceError),
    /// A collective of data-parallel training failed: a rank died, left or
    /// stopped answering within the timeout.
    #[error("data-parallel training: {0}")]
    Collective(#[from] c10d::C10dError),
}

/// Why a model file's tensors do not fit the model.
#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    #[error(transparent)]
    File(#[from] yolo_core::model_file::ModelFileError),
    #[error("missing tensor {name}")]
    MissingTensor { name: String },
    #[error("tensor {name}: unsupported dtype {dtype}")]
    Dtype { name: String, dtype: String },
    #[error("tensor {name} has shape {found:?}, the model expects {expected:?}")]
    Shape {
        name: String,
        found: Vec<i64>,
        expected: Vec<i64>,
    },
    /// A checkpoint's training state is unreadable.
    #[error(transparent)]
    State(#[from] serde_json::Error),
    /// A pretrained model shares no tensor with the model trained.
    #[error("no tensor matches this model (another architecture?)")]
    NoMatchingTensor,
}

pub type Result<T, E = YoloError> = std::result::Result<T, E>;
