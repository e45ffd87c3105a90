//! The model file's description: what a safetensors model says of
//! itself (classes, architecture, scale, image size, name, version), read from its header
//! without libtorch, so that catalogs and plans can check models cheaply.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use safetensors::SafeTensors;

/// A scale name that is none of the architecture's.
#[derive(Debug, thiserror::Error)]
#[error("unknown scale {0:?} (expected n, s, m, l or x; b for YOLOv10)")]
pub struct UnknownScale(pub String);

/// A model name that is not `yolov8<scale>` or `yolov10<scale>`.
#[derive(Debug, thiserror::Error)]
pub enum UnknownModel {
    #[error("unknown model {0:?} (expected yolov8n/s/m/l/x or yolov10n/s/m/b/l/x)")]
    Name(String),
    #[error("{arch} has no scale {scale} (its scales: {known})")]
    Scale {
        arch: Architecture,
        scale: Scale,
        known: String,
    },
}

/// The network family: which layers, which head. Both are Ultralytics' own
/// (`yolov8.yaml`, `yolov10{n,s,m,b,l,x}.yaml`) with their `state_dict` names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Architecture {
    /// Detect head with DFL, NMS at inference.
    V8,
    /// SCDown, C2fCIB and PSA layers; a one-to-many and a one-to-one head
    /// (`v10Detect`): NMS-free inference by default.
    V10,
}

impl Architecture {
    pub fn name(self) -> &'static str {
        match self {
            Architecture::V8 => "yolov8",
            Architecture::V10 => "yolov10",
        }
    }

    /// The scales Ultralytics defines for it.
    pub fn scales(self) -> &'static [Scale] {
        match self {
            Architecture::V8 => &[Scale::N, Scale::S, Scale::M, Scale::L, Scale::X],
            Architecture::V10 => &[Scale::N, Scale::S, Scale::M, Scale::B, Scale::L, Scale::X],
        }
    }

    /// Index of the detection head among `model.<i>` layers.
    pub fn head_layer(self) -> usize {
        match self {
            Architecture::V8 => 22,
            Architecture::V10 => 23,
        }
    }
}

impl fmt::Display for Architecture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Architecture {
    type Err = UnknownModel;

    fn from_str(s: &str) -> Result<Self, UnknownModel> {
        match s {
            "yolov8" => Ok(Architecture::V8),
            "yolov10" => Ok(Architecture::V10),
            _ => Err(UnknownModel::Name(s.to_string())),
        }
    }
}

/// A model scale: depth and width multipliers and the channel cap.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scale {
    N,
    S,
    M,
    /// YOLOv10 only: m's depth at l's width.
    B,
    L,
    X,
}

impl Scale {
    pub const ALL: [Scale; 6] = [Scale::N, Scale::S, Scale::M, Scale::B, Scale::L, Scale::X];

    fn multipliers(self) -> (f64, f64, i64) {
        match self {
            Scale::N => (0.33, 0.25, 1024),
            Scale::S => (0.33, 0.50, 1024),
            Scale::M => (0.67, 0.75, 768),
            Scale::B => (0.67, 1.00, 512),
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
            Scale::B => "b",
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

/// Which network at which scale: `yolov8n`, `yolov10s`, …
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ModelSpec {
    pub arch: Architecture,
    pub scale: Scale,
}

impl ModelSpec {
    /// Checks that the architecture defines this scale.
    pub fn new(arch: Architecture, scale: Scale) -> Result<ModelSpec, UnknownModel> {
        if arch.scales().contains(&scale) {
            Ok(ModelSpec { arch, scale })
        } else {
            Err(UnknownModel::Scale {
                arch,
                scale,
                known: arch
                    .scales()
                    .iter()
                    .map(|s| s.name())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
        }
    }
}

impl fmt::Display for ModelSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.arch, self.scale)
    }
}

/// Written and read as its name (`yolov10n`), so that a configuration
/// naming no model is refused when it is read, with its file and line.
impl serde::Serialize for ModelSpec {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for ModelSpec {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

impl FromStr for ModelSpec {
    type Err = UnknownModel;

    /// `yolov10n`, `yolov8s`; a bare scale (`n`) is YOLOv8's.
    fn from_str(s: &str) -> Result<Self, UnknownModel> {
        let unknown = || UnknownModel::Name(s.to_string());
        let (arch, scale) = match s.strip_prefix("yolov10") {
            Some(scale) => (Architecture::V10, scale),
            None => (Architecture::V8, s.strip_prefix("yolov8").unwrap_or(s)),
        };
        let scale = Scale::ALL
            .into_iter()
            .find(|candidate| candidate.name() == scale)
            .ok_or_else(unknown)?;
        ModelSpec::new(arch, scale)
    }
}

/// What the header says about a model, besides its tensors.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelInfo {
    pub names: Vec<String>,
    pub arch: Architecture,
    pub scale: Scale,
    /// The image size it was trained at.
    pub imgsz: i64,
    /// What a server calls the model (`name` metadata), when the file says.
    pub name: Option<String>,
    /// Its version (`version` metadata), when the file says.
    pub version: Option<String>,
}

impl ModelInfo {
    /// The network this file holds.
    pub fn spec(&self) -> ModelSpec {
        ModelSpec {
            arch: self.arch,
            scale: self.scale,
        }
    }
}

/// Why bytes are not a YOLO model file.
#[derive(Debug, thiserror::Error)]
pub enum ModelFileError {
    #[error("not a safetensors file: {0:?}")]
    NotSafetensors(safetensors::SafeTensorError),
    #[error("missing tensor {name} (not a YOLOv8 or YOLOv10 detection model?)")]
    MissingTensor { name: String },
    #[error("metadata `names` is not a JSON list of strings: {0}")]
    Names(serde_json::Error),
    #[error("metadata names {names} classes but the head predicts {head}")]
    ClassCount { names: usize, head: usize },
    #[error(transparent)]
    Scale(#[from] UnknownScale),
    #[error(transparent)]
    Model(#[from] UnknownModel),
    #[error("no {arch} scale has a {stem}-channel stem and {repeats} blocks in layer 2")]
    Stem {
        arch: Architecture,
        stem: i64,
        repeats: i64,
    },
    #[error("metadata imgsz {0:?} is not a multiple of 32 from 32 to 8192")]
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
    // The first dimension of a tensor (a scalar counts as missing it).
    let first_dim = |name: &str| {
        file.tensor(name)
            .ok()
            .and_then(|t| t.shape().first().copied())
            .ok_or_else(|| ModelFileError::MissingTensor {
                name: name.to_string(),
            })
    };
    let arch = match metadata.get("arch") {
        Some(name) => name.parse::<Architecture>()?,
        // Only YOLOv10's head has one-to-one branches.
        None if file.tensor("model.23.one2one_cv2.0.0.conv.weight").is_ok() => Architecture::V10,
        None => Architecture::V8,
    };
    let nc = first_dim(&format!("model.{}.cv3.0.2.bias", arch.head_layer()))?;
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
        Some(s) => ModelSpec::new(arch, s.parse::<Scale>()?)?.scale,
        None => {
            // The stem's width tells most scales apart; YOLOv10's b and l
            // share it and differ in depth (layer 2 repeats its block 2 or 3 times).
            let stem = first_dim("model.0.conv.weight")? as i64;
            let repeats = (0..)
                .take_while(|i| {
                    file.tensor(&format!("model.2.m.{i}.cv1.conv.weight"))
                        .is_ok()
                })
                .count() as i64;
            arch.scales()
                .iter()
                .copied()
                .find(|s| s.channels(64) == stem && s.repeats(3) == repeats)
                .ok_or(ModelFileError::Stem {
                    arch,
                    stem,
                    repeats,
                })?
        }
    };
    let imgsz = match metadata.get("imgsz") {
        Some(s) => s
            .parse::<i64>()
            .ok()
            .filter(|size| (32..=8192).contains(size) && size % 32 == 0)
            .ok_or_else(|| ModelFileError::ImageSize(s.clone()))?,
        None => 640,
    };
    Ok(ModelInfo {
        names,
        arch,
        scale,
        imgsz,
        name: metadata.get("name").cloned(),
        version: metadata.get("version").cloned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_names_pick_architecture_and_scale() {
        let spec: ModelSpec = "yolov10b".parse().unwrap();
        assert_eq!((spec.arch, spec.scale), (Architecture::V10, Scale::B));
        assert_eq!(spec.to_string(), "yolov10b");
        let spec: ModelSpec = "yolov8s".parse().unwrap();
        assert_eq!((spec.arch, spec.scale), (Architecture::V8, Scale::S));
        // A bare scale is YOLOv8's, as before architectures existed.
        assert_eq!("x".parse::<ModelSpec>().unwrap().arch, Architecture::V8);
        let err = "yolov8b".parse::<ModelSpec>().unwrap_err().to_string();
        assert_eq!(err, "yolov8 has no scale b (its scales: n, s, m, l, x)");
        assert!("yolov9n".parse::<ModelSpec>().is_err());
        assert!("yolov10q".parse::<ModelSpec>().is_err());
    }

    #[test]
    fn scales_follow_the_yaml_multipliers() {
        // yolov10b: m's depth, l's width.
        assert_eq!(Scale::B.channels(1024), 512);
        assert_eq!(Scale::B.repeats(6), 4);
        assert_eq!(Scale::L.repeats(6), 6);
        assert_eq!(Scale::M.channels(1024), 576);
        assert_eq!(Scale::N.channels(64), 16);
    }

    fn file_with(
        names: &[(&str, Vec<usize>)],
        metadata: Option<HashMap<String, String>>,
    ) -> Vec<u8> {
        let data: Vec<(String, Vec<usize>, Vec<u8>)> = names
            .iter()
            .map(|(n, shape)| {
                (
                    n.to_string(),
                    shape.clone(),
                    vec![0u8; 4 * shape.iter().product::<usize>()],
                )
            })
            .collect();
        let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = data
            .iter()
            .map(|(n, shape, bytes)| {
                (
                    n.clone(),
                    safetensors::tensor::TensorView::new(
                        safetensors::Dtype::F32,
                        shape.clone(),
                        bytes,
                    )
                    .unwrap(),
                )
            })
            .collect();
        safetensors::tensor::serialize(views, &metadata).unwrap()
    }

    #[test]
    fn architecture_and_scale_are_read_off_the_tensors_without_metadata() {
        // YOLOv10b and l share a 64-channel stem; layer 2 repeats 2 or 3 times.
        let mut tensors = vec![
            ("model.0.conv.weight", vec![64, 3, 3, 3]),
            ("model.23.cv3.0.2.bias", vec![4]),
            ("model.23.one2one_cv2.0.0.conv.weight", vec![64, 64, 3, 3]),
            ("model.2.m.0.cv1.conv.weight", vec![1]),
            ("model.2.m.1.cv1.conv.weight", vec![1]),
        ];
        let info = read_info(&file_with(&tensors, None)).unwrap();
        assert_eq!(
            (info.arch, info.scale, info.names.len()),
            (Architecture::V10, Scale::B, 4)
        );
        tensors.push(("model.2.m.2.cv1.conv.weight", vec![1]));
        let info = read_info(&file_with(&tensors, None)).unwrap();
        assert_eq!(info.spec().to_string(), "yolov10l");
        // Metadata wins, and is checked against the architecture.
        let metadata = HashMap::from([("arch".to_string(), "yolov8".to_string())]);
        let err = read_info(&file_with(&tensors, Some(metadata))).unwrap_err();
        assert!(
            err.to_string()
                .contains("missing tensor model.22.cv3.0.2.bias"),
            "{err}"
        );
        let metadata = HashMap::from([
            ("arch".to_string(), "yolov10".to_string()),
            ("scale".to_string(), "q".to_string()),
        ]);
        assert!(read_info(&file_with(&tensors, Some(metadata))).is_err());
        // An image size no model is trained at, and a head reduced to a scalar.
        let metadata = HashMap::from([("imgsz".to_string(), "-32".to_string())]);
        let err = read_info(&file_with(&tensors, Some(metadata))).unwrap_err();
        assert!(err.to_string().contains("imgsz \"-32\""), "{err}");
        let mut scalar_head = tensors.clone();
        scalar_head[1].1 = vec![];
        let err = read_info(&file_with(&scalar_head, None)).unwrap_err();
        assert!(
            err.to_string()
                .contains("missing tensor model.23.cv3.0.2.bias"),
            "{err}"
        );
        // A stem no scale has.
        tensors[0].1 = vec![40, 3, 3, 3];
        let err = read_info(&file_with(&tensors, None))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "no yolov10 scale has a 40-channel stem and 3 blocks in layer 2"
        );
    }
}
