//! YOLOv8 detection on libtorch (tch), faithful to Ultralytics: the model with
//! Ultralytics' `state_dict` names, its weights file, decoding and NMS, the
//! training loss with its task-aligned assigner, and the evaluation metrics.
//!
//! Nothing here knows about road signs: the class count and names come from the
//! data, as they do in Ultralytics.

pub use yolo_core::{augment, metrics};

pub mod anchors;
pub mod assigner;
pub mod error;
pub mod iou;
pub mod loss;
pub mod model;
pub mod nms;
pub mod predict;
pub mod train;
pub mod weights;

pub use error::{WeightsError, YoloError};
pub use model::{Scale, YoloV8};
pub use weights::{Detector, ModelInfo};
