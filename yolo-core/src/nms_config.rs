//! Non-maximum suppression settings (the suppression itself runs on tensors, in `yolo`).

/// NMS settings. `predict()` and `validate()` give Ultralytics' defaults.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NmsConfig {
    pub conf: f32,
    pub iou: f32,
    pub max_det: usize,
    /// One detection per class above `conf` for a box, instead of its best class.
    pub multi_label: bool,
    /// Suppress across classes too.
    pub agnostic: bool,
}

impl NmsConfig {
    pub fn predict() -> Self {
        NmsConfig {
            conf: 0.25,
            iou: 0.7,
            max_det: 300,
            multi_label: false,
            agnostic: false,
        }
    }

    pub fn validate() -> Self {
        NmsConfig {
            conf: 0.001,
            iou: 0.7,
            max_det: 300,
            multi_label: true,
            agnostic: false,
        }
    }
}
