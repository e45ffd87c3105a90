//! The half of YOLO that needs no libtorch: box maths and Ultralytics'
//! validation metrics, augmentation on images, the training and NMS
//! configurations, what a model file says of itself, and the predictor's
//! input exactly as Ultralytics builds it (`imread`, `predict_input`).
//!
//! It exists so that everything that only describes, checks or measures
//! detections (plans, parameter checks, catalogs, reports) builds and runs
//! without loading libtorch; `yolo` re-exports it under its old paths.

pub mod augment;
pub mod distributed;
pub mod imread;
pub mod metrics;
pub mod model_file;
pub mod nms_config;
mod numpy;
pub mod predict_input;
pub mod train_config;

pub use model_file::{ModelInfo, Scale};
