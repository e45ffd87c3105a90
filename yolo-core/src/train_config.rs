//! Training's configuration (Ultralytics' names and defaults) and the record
//! each epoch leaves: plain data, so that parameters are checked and
//! histories plotted without libtorch.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::augment::AugmentConfig;
use crate::distributed::DistributedConfig;
use crate::model_file::{Architecture, ModelSpec, Scale, UnknownModel, UnknownScale};

/// Every training hyper-parameter (Ultralytics' names and defaults).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// The network: `yolov8n` … `yolov8x`, `yolov10n` … `yolov10x`. When
    /// unset, YOLOv8 at `scale`.
    pub model: Option<ModelSpec>,
    /// YOLOv8's scale, when `model` is unset (kept for configurations that
    /// predate `model`). With `model` set, it is ignored when it is the
    /// default `n` (a file that names a model may keep `scale: n`) and
    /// refused when it names another scale than the model's.
    pub scale: String,
    pub epochs: usize,
    pub batch: usize,
    pub imgsz: u32,
    /// `auto`, `SGD` or `AdamW`.
    pub optimizer: String,
    pub lr0: f64,
    pub lrf: f64,
    pub momentum: f64,
    pub weight_decay: f64,
    pub warmup_epochs: f64,
    pub warmup_momentum: f64,
    pub warmup_bias_lr: f64,
    /// Nominal batch size: gradients are accumulated up to it.
    pub nbs: usize,
    pub cos_lr: bool,
    pub close_mosaic: usize,
    pub seed: u64,
    /// `auto`, `cpu` or `cuda`.
    pub device: String,
    /// Mixed precision: activations in bfloat16 where the hardware computes
    /// it natively (CUDA; CPUs with AVX512-BF16), float32 master weights,
    /// loss and optimiser. Elsewhere, or when false, float32 throughout.
    pub amp: bool,
    /// Continue from the checkpoint in the checkpoint folder.
    pub resume: bool,
    /// Loss gains (Ultralytics' `box`, `cls`, `dfl`).
    #[serde(rename = "box")]
    pub box_gain: f64,
    #[serde(rename = "cls")]
    pub cls_gain: f64,
    #[serde(rename = "dfl")]
    pub dfl_gain: f64,
    /// Start from these weights (a model file): every tensor whose name and
    /// shape match is copied, as Ultralytics' `intersect_dicts` does.
    pub pretrained: Option<PathBuf>,
    /// Where checkpoints go each epoch (and `resume` reads them); none keeps
    /// nothing on disk.
    pub checkpoints: Option<PathBuf>,
    pub augment: AugmentConfig,
    /// Data-parallel training over several processes (see
    /// [`crate::distributed`]); the launchers' environment fills what is
    /// left out, and nothing at all trains alone.
    pub distributed: Option<DistributedConfig>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            model: None,
            scale: "n".into(),
            epochs: 100,
            batch: 16,
            imgsz: 640,
            optimizer: "auto".into(),
            lr0: 0.01,
            lrf: 0.01,
            momentum: 0.937,
            weight_decay: 0.0005,
            warmup_epochs: 3.0,
            warmup_momentum: 0.8,
            warmup_bias_lr: 0.1,
            nbs: 64,
            cos_lr: false,
            close_mosaic: 10,
            seed: 0,
            device: "auto".into(),
            amp: true,
            resume: false,
            box_gain: 7.5,
            cls_gain: 0.5,
            dfl_gain: 1.5,
            pretrained: None,
            checkpoints: None,
            augment: AugmentConfig::default(),
            distributed: None,
        }
    }
}

/// `model` and `scale` name different networks.
#[derive(Debug, thiserror::Error)]
pub enum ModelChoiceError {
    #[error(transparent)]
    Unknown(#[from] UnknownModel),
    #[error(transparent)]
    Scale(#[from] UnknownScale),
    #[error(
        "train.model is {model} but train.scale is {scale}: leave scale out, the model names it"
    )]
    Conflict { model: String, scale: String },
}

impl TrainConfig {
    /// The network to train: `model`, or YOLOv8 at `scale`.
    pub fn model_spec(&self) -> Result<ModelSpec, ModelChoiceError> {
        match self.model {
            Some(spec) => {
                let default_scale = TrainConfig::default().scale;
                if self.scale != default_scale && self.scale != spec.scale.name() {
                    return Err(ModelChoiceError::Conflict {
                        model: spec.to_string(),
                        scale: self.scale.clone(),
                    });
                }
                Ok(spec)
            }
            None => Ok(ModelSpec::new(
                Architecture::V8,
                self.scale.parse::<Scale>()?,
            )?),
        }
    }
}

/// One epoch's record: mean loss parts, speed, learning rate, validation.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: usize,
    pub box_loss: f64,
    pub cls_loss: f64,
    pub dfl_loss: f64,
    pub images_per_s: f64,
    /// Seconds the model waited for augmented batches during the epoch.
    #[serde(default)]
    pub data_wait_s: f64,
    /// Seconds this rank waited for collectives outside the backward pass
    /// during the epoch (buffers broadcast; gradients averaged, where they
    /// are averaged after backward, `overlap: false`): 0 training alone.
    #[serde(default)]
    pub sync_s: f64,
    pub lr: f64,
    pub map50: f64,
    pub map50_95: f64,
    pub precision: f64,
    pub recall: f64,
}

#[cfg(test)]
mod model_choice_tests {
    use super::*;

    #[test]
    fn model_names_the_network_and_scale_stays_an_alias() {
        let mut config = TrainConfig::default();
        assert_eq!(config.model_spec().unwrap().to_string(), "yolov8n");
        config.scale = "s".into();
        assert_eq!(config.model_spec().unwrap().to_string(), "yolov8s");
        config.model = Some("yolov10s".parse().unwrap());
        assert_eq!(config.model_spec().unwrap().arch, Architecture::V10);
        config.scale = "m".into();
        let err = config.model_spec().unwrap_err().to_string();
        assert!(
            err.contains("train.model is yolov10s but train.scale is m"),
            "{err}"
        );
        // Read from YAML, a model name is checked as it is read.
        let read: TrainConfig = serde_yaml::from_str("model: yolov10b\nepochs: 3").unwrap();
        assert_eq!(read.model_spec().unwrap().to_string(), "yolov10b");
        let err = serde_yaml::from_str::<TrainConfig>("model: yolov10z").unwrap_err();
        assert!(
            err.to_string().contains("unknown model \"yolov10z\""),
            "{err}"
        );
    }
}
