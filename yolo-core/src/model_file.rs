//! The model file's description: what a safetensors model says of
//! itself (classes, scale, image size, name, version), read from its header
//! without libtorch, so that catalogs and plans can check models cheaply.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use safetensors::SafeTensors;

/// A scale name that is none of YOLOv8's.
#[derive(Debug, thiserror::Error)]
#[error("unknown YOLOv8 scale {0:?} (expected n, s, m, l or x)")]
pub struct UnknownScale(pub String);

/// A model scale: depth and width multipliers and the channel cap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scale {
    N,
    S,
    M,
    L,
    X,
}

impl Scale {
    pub const ALL: [Scale; 5] = [Scale::N, Scale::S, Scale::M, Scale::L, Scale::X];

    fn multipliers(self) -> (f64, f64, i64) {
        match self {
            Scale::N => (0.33, 0.25, 1024),
            Scale::S => (0.33, 0.50, 1024),
            Scale::M => (0.67, 0.75, 768),
            Scale::L => (1.00, 1.00, 512),
            Scale::X => (1.00, 1.25, 512),
        }
    }

    /// Output channels of a layer whose yaml asks for `c`: capped, scaled and
    /// rounded up to a multiple of 8 (`make_divisible`).
    pub fn channels(self, c: i64) -> i64 {
        let (_, width, max) = self.multipliers();
        let scaled = (c.min(max) as f64) * width;
        ((scaled / 8.0).ceil() as i64) * 8
    }

    /// Repeats of a C2f whose yaml asks for `n`.
    pub fn repeats(self, n: i64) -> i64 {
        let (depth, _, _) = self.multipliers();
        if n > 1 {
            ((n as f64 * depth).round() as i64).max(1)
        } else {
            n
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Scale::N => "n",
            Scale::S => "s",
            Scale::M => "m",
            Scale::L => "l",
            Scale::X => "x",
        }
    }
}

impl fmt::Display for Scale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Scale {
    type Err = UnknownScale;

    fn from_str(s: &str) -> Result<Self, UnknownScale> {
        Scale::ALL
            .into_iter()
            .find(|scale| scale.name() == s.trim_start_matches("yolov8"))
            .ok_or_else(|| UnknownScale(s.to_string()))
    }
}

/// What the header says about a model, besides its tensors.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelInfo {
    pub names: Vec<String>,
    pub scale: Scale,
    /// The image size it was trained at.
    pub imgsz: i64,
    /// What a server calls the model (`name` metadata), when the file says.
    pub name: Option<String>,
    /// Its version (`version` metadata), when the file says.
    pub version: Option<String>,
}

/// Why bytes are not a YOLOv8 model file.
#[derive(Debug, thiserror::Error)]
pub enum ModelFileError {
    #[error("not a safetensors file: {0:?}")]
    NotSafetensors(safetensors::SafeTensorError),
    #[error("missing tensor {name} (not a YOLOv8 detection model?)")]
    MissingTensor { name: String },
    #[error("metadata `names` is not a JSON list of strings: {0}")]
    Names(serde_json::Error),
    #[error("metadata names {names} classes but the head predicts {head}")]
    ClassCount { names: usize, head: usize },
    #[error(transparent)]
    Scale(#[from] UnknownScale),
    #[error("no YOLOv8 scale has a {0}-channel stem")]
    Stem(i64),
    #[error("metadata imgsz {0:?} is not an integer")]
    ImageSize(String),
}

/// What a model file describes (classes, scale, image size), from its header
/// or, without metadata, from the tensor shapes.
pub fn read_info(bytes: &[u8]) -> std::result::Result<ModelInfo, ModelFileError> {
    let file = SafeTensors::deserialize(bytes).map_err(ModelFileError::NotSafetensors)?;
    let (_, header) = SafeTensors::read_metadata(bytes).map_err(ModelFileError::NotSafetensors)?;
    infer_info(&file, &header.metadata().clone().unwrap_or_default())
}

/// Scale, classes and image size from the metadata, or from the shapes.
fn infer_info(
    file: &SafeTensors,
    metadata: &HashMap<String, String>,
) -> std::result::Result<ModelInfo, ModelFileError> {
    let shape = |name: &str| {
        file.tensor(name)
            .map(|t| t.shape().to_vec())
            .map_err(|_| ModelFileError::MissingTensor {
                name: name.to_string(),
            })
    };
    let nc = shape("model.22.cv3.0.2.bias")?[0];
    let names = match metadata.get("names") {
        Some(json) => serde_json::from_str::<Vec<String>>(json).map_err(ModelFileError::Names)?,
        None => (0..nc).map(|i| format!("class{i}")).collect(),
    };
    if names.len() != nc {
        return Err(ModelFileError::ClassCount {
            names: names.len(),
            head: nc,
        });
    }
    let scale = match metadata.get("scale") {
        Some(s) => s.parse::<Scale>()?,
        None => {
            let stem = shape("model.0.conv.weight")?[0] as i64;
            Scale::ALL
                .into_iter()
                .find(|s| s.channels(64) == stem)
                .ok_or(ModelFileError::Stem(stem))?
        }
    };
    let imgsz = match metadata.get("imgsz") {
        Some(s) => s
            .parse::<i64>()
            .map_err(|_| ModelFileError::ImageSize(s.clone()))?,
        None => 640,
    };
    Ok(ModelInfo {
        names,
        scale,
        imgsz,
        name: metadata.get("name").cloned(),
        version: metadata.get("version").cloned(),
    })
}
