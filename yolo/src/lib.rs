//! YOLOv8 and YOLOv10 detection on libtorch (tch), faithful to Ultralytics:
//! the models with Ultralytics' `state_dict` names, their weights file,
//! decoding, NMS and YOLOv10's NMS-free top-k, the training losses with their
//! task-aligned assigners, and the evaluation metrics.
//!
//! Nothing here knows about road signs: the class count and names come from the
//! data, as they do in Ultralytics.

pub use yolo_core::{augment, imread, metrics, predict_input};

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
pub use model::{Architecture, Inference, ModelSpec, Network, Scale, YoloV10, YoloV8};
pub use weights::{Detector, ModelInfo};
