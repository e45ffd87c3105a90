//! The detectors, as Ultralytics defines them: YOLOv8 (`v8`) and YOLOv10
//! (`v10`), built from the same layers (`blocks`) and heads (`head`), with
//! Ultralytics' `state_dict` names. [`Network`] is whichever a model file
//! holds, and how it answers at inference.

mod blocks;
mod head;
mod v10;
mod v8;

use tch::{Device, Tensor};

pub use head::{top_k, Decoded};
pub use v10::{DualMaps, YoloV10};
pub use v8::YoloV8;
pub use yolo_core::model_file::{Architecture, ModelSpec, Scale};

/// Bins of the distribution focal loss: each box side is a distribution over 0..16.
pub const REG_MAX: i64 = 16;

/// Optimiser parameter groups, in Ultralytics' order: biases (no decay, own
/// warm-up), weights of convolutions (decayed), weights of norm layers (no decay).
pub const GROUP_BIAS: usize = 0;
pub const GROUP_WEIGHT: usize = 1;
pub const GROUP_NORM: usize = 2;

/// Nearest-neighbour upsampling by 2 (`nn.Upsample(None, 2, "nearest")`).
fn upsample2(t: &Tensor) -> Tensor {
    let (_, _, h, w) = t.size4().expect("feature maps are 4-D");
    t.upsample_nearest2d([2 * h, 2 * w], 2.0, 2.0)
}

/// Which head answers at inference, and how its output is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inference {
    /// The one-to-many head, decoded, then non-maximum suppression: YOLOv8,
    /// and YOLOv10 as Ultralytics runs a model built from its yaml.
    Nms,
    /// YOLOv10's one-to-one head, its top-k read as they come: no NMS
    /// (Ultralytics' `end2end`).
    EndToEnd,
}

/// The head's raw maps in training: YOLOv8 has one head, YOLOv10 two.
#[derive(Debug)]
pub enum HeadMaps {
    Single(Vec<Tensor>),
    Dual(DualMaps),
}

impl HeadMaps {
    /// Every map in `kind` (the loss runs in float32 whatever the activations').
    pub fn to_kind(&self, kind: tch::Kind) -> HeadMaps {
        let convert = |maps: &[Tensor]| maps.iter().map(|m| m.to_kind(kind)).collect();
        match self {
            HeadMaps::Single(maps) => HeadMaps::Single(convert(maps)),
            HeadMaps::Dual(dual) => HeadMaps::Dual(DualMaps {
                one2many: convert(&dual.one2many),
                one2one: convert(&dual.one2one),
            }),
        }
    }

    /// The one-to-many maps (the only ones of YOLOv8).
    pub fn one2many(&self) -> &[Tensor] {
        match self {
            HeadMaps::Single(maps) => maps,
            HeadMaps::Dual(dual) => &dual.one2many,
        }
    }
}

/// What inference gives, before it becomes detections.
#[derive(Debug)]
pub enum Predicted {
    /// `(B, 4 + nc, A)` centre-size boxes and class probabilities, to suppress.
    Dense(Decoded),
    /// `(B, k, 6)`: x1, y1, x2, y2, score, class, best first, to threshold.
    TopK(Tensor),
}

/// A detection network of either architecture.
#[derive(Debug)]
pub enum Network {
    V8(Box<YoloV8>),
    V10(Box<YoloV10>),
}

impl Network {
    /// Builds the variables of `spec` under `root` (normally `vs.root()`).
    pub fn new(root: &tch::nn::Path, spec: ModelSpec, nc: i64) -> Network {
        match spec.arch {
            Architecture::V8 => Network::V8(Box::new(YoloV8::new(root, spec.scale, nc))),
            Architecture::V10 => Network::V10(Box::new(YoloV10::new(root, spec.scale, nc))),
        }
    }

    pub fn arch(&self) -> Architecture {
        match self {
            Network::V8(_) => Architecture::V8,
            Network::V10(_) => Architecture::V10,
        }
    }

    /// How this architecture answers unless told otherwise: YOLOv10 without NMS.
    pub fn default_inference(&self) -> Inference {
        match self {
            Network::V8(_) => Inference::Nms,
            Network::V10(_) => Inference::EndToEnd,
        }
    }

    /// The head inputs (three feature maps, P3 to P5).
    pub fn features(&self, xs: &Tensor, train: bool) -> [Tensor; 3] {
        match self {
            Network::V8(m) => m.features(xs, train),
            Network::V10(m) => m.features(xs, train),
        }
    }

    /// Every head's raw maps — what the loss consumes.
    pub fn forward_t(&self, xs: &Tensor, train: bool) -> HeadMaps {
        match self {
            Network::V8(m) => HeadMaps::Single(m.forward_t(xs, train)),
            Network::V10(m) => HeadMaps::Dual(m.forward_t(xs, train)),
        }
    }

    /// The one-to-many head decoded (centre-size boxes), in eval mode without
    /// gradients: what NMS reads, for either architecture.
    pub fn predict(&self, xs: &Tensor) -> Decoded {
        tch::no_grad(|| match self {
            Network::V8(m) => m.decode(&m.forward_t(xs, false)),
            Network::V10(m) => m.decode(&m.head_maps(xs, false), true),
        })
    }

    /// Inference in eval mode, without gradients, read as `mode` says; the
    /// end-to-end top-k keeps `max_det` rows (Ultralytics' `max_det`, 300 by
    /// default). A YOLOv8 has no one-to-one head and always answers for NMS.
    pub fn infer(&self, xs: &Tensor, mode: Inference, max_det: usize) -> Predicted {
        match (self, mode) {
            (Network::V10(m), Inference::EndToEnd) => tch::no_grad(|| {
                let decoded = m.decode(&m.head_maps(xs, true), false);
                Predicted::TopK(top_k(&decoded.y, max_det as i64))
            }),
            _ => Predicted::Dense(self.predict(xs)),
        }
    }

    /// The device the variables live on.
    pub fn device(&self) -> Device {
        match self {
            Network::V8(m) => m.device(),
            Network::V10(m) => m.device(),
        }
    }
}
