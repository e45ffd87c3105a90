//! The model file: one safetensors file with Ultralytics' `state_dict`
//! names, float32, and header metadata `names`, `arch`, `scale` and `imgsz`.
//! A file exported from Ultralytics without metadata loads too: architecture,
//! scale and class count are read off the tensor names and shapes.

use std::collections::HashMap;
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors, View};
use tch::{nn, Device, Kind, Tensor};

use crate::error::{Result, WeightsError, YoloError};
use crate::model::{Inference, Network};
pub use yolo_core::model_file::{read_info, ModelInfo};

/// A detector ready to use: its variables, the network, its description, and
/// how it answers at inference (the architecture's default unless changed).
pub struct Detector {
    pub vs: nn::VarStore,
    pub model: Network,
    pub info: ModelInfo,
    pub inference: Inference,
}

impl std::fmt::Debug for Detector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Detector")
            .field("info", &self.info)
            .field("inference", &self.inference)
            .finish_non_exhaustive()
    }
}

impl Detector {
    /// A freshly initialised detector for these classes.
    pub fn new(info: ModelInfo, device: Device) -> Detector {
        let vs = nn::VarStore::new(device);
        let model = Network::new(&vs.root(), info.spec(), info.names.len() as i64);
        to_channels_last(&vs);
        let inference = model.default_inference();
        Detector {
            vs,
            model,
            info,
            inference,
        }
    }

    /// Answers without NMS when the network can (YOLOv10's one-to-one head),
    /// or with its one-to-many head and NMS.
    pub fn set_end_to_end(&mut self, end_to_end: bool) {
        self.inference = match (end_to_end, self.model.default_inference()) {
            (true, Inference::EndToEnd) => Inference::EndToEnd,
            _ => Inference::Nms,
        };
    }

    /// Loads a model file onto `device`.
    pub fn load(path: &Path, device: Device) -> Result<Detector> {
        let bytes = std::fs::read(path).map_err(|source| YoloError::Io {
            path: path.into(),
            source,
        })?;
        Detector::from_bytes(&bytes, device).map_err(|e| match e {
            YoloError::Weights { source, .. } => YoloError::Weights {
                path: path.into(),
                source,
            },
            other => other,
        })
    }

    /// Reads a model file's bytes onto `device`.
    pub fn from_bytes(bytes: &[u8], device: Device) -> Result<Detector> {
        let invalid = |source: WeightsError| YoloError::Weights {
            path: "<model bytes>".into(),
            source,
        };
        let info = read_info(bytes).map_err(|e| invalid(e.into()))?;
        let file = SafeTensors::deserialize(bytes).map_err(|e| {
            invalid(yolo_core::model_file::ModelFileError::NotSafetensors(e).into())
        })?;
        let detector = Detector::new(info, device);
        detector.copy_from(&file).map_err(invalid)?;
        Ok(detector)
    }

    /// Copies every variable from the file, checking shapes; extra entries
    /// (`num_batches_tracked`) are ignored.
    fn copy_from(&self, file: &SafeTensors) -> std::result::Result<(), WeightsError> {
        let mut variables = self.vs.variables();
        let mut names: Vec<&String> = variables.keys().collect();
        names.sort();
        let names: Vec<String> = names.into_iter().cloned().collect();
        for name in names {
            let view = file
                .tensor(&name)
                .map_err(|_| WeightsError::MissingTensor { name: name.clone() })?;
            let source = tensor_from_view(&name, &view)?;
            let target = variables.get_mut(&name).expect("name comes from the store");
            if source.size() != target.size() {
                return Err(WeightsError::Shape {
                    name,
                    found: source.size(),
                    expected: target.size(),
                });
            }
            tch::no_grad(|| target.copy_(&source.to_device(target.device())));
        }
        Ok(())
    }

    /// Copies every variable of `source` whose name and shape match; returns
    /// how many were copied.
    pub fn copy_matching(&mut self, source: &Detector) -> usize {
        let from = source.vs.variables();
        let mut copied = 0;
        for (name, mut target) in self.vs.variables() {
            if let Some(tensor) = from.get(&name).filter(|t| t.size() == target.size()) {
                tch::no_grad(|| target.copy_(&tensor.to_device(target.device())));
                copied += 1;
            }
        }
        copied
    }

    /// Writes the model file: float32 tensors sorted by name, and the metadata.
    pub fn save(&self, path: &Path) -> Result<()> {
        let bytes = self.to_bytes()?;
        std::fs::write(path, bytes).map_err(|source| YoloError::Io {
            path: path.into(),
            source,
        })
    }

    /// The model file's bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut tensors: Vec<(String, HostTensor)> = self
            .vs
            .variables()
            .into_iter()
            .map(|(name, tensor)| HostTensor::new(&tensor).map(|t| (name, t)))
            .collect::<Result<_>>()?;
        tensors.sort_by(|a, b| a.0.cmp(&b.0));
        let mut metadata = HashMap::from([
            (
                "names".to_string(),
                serde_json::to_string(&self.info.names).expect("strings serialise"),
            ),
            ("arch".to_string(), self.info.arch.to_string()),
            ("scale".to_string(), self.info.scale.to_string()),
            ("imgsz".to_string(), self.info.imgsz.to_string()),
            ("format".to_string(), "pt".to_string()),
        ]);
        let identity = [("name", &self.info.name), ("version", &self.info.version)];
        for (key, value) in identity {
            if let Some(value) = value {
                metadata.insert(key.to_string(), value.clone());
            }
        }
        safetensors::tensor::serialize(tensors, &Some(metadata))
            .map_err(|e| YoloError::Config(format!("serialising the model: {e:?}")))
    }
}

/// Stores every 4-D variable (convolution weights) channels-last (NHWC
/// strides, same logical shape): libtorch's CPU convolutions then run about
/// 20% faster for training and inference (measured: BENCHMARKS.md). Names,
/// shapes and the saved file are unchanged.
fn to_channels_last(vs: &nn::VarStore) {
    tch::no_grad(|| {
        for (_, mut variable) in vs.variables() {
            if variable.dim() == 4 {
                let nhwc = variable
                    .permute([0, 2, 3, 1])
                    .contiguous()
                    .permute([0, 3, 1, 2]);
                variable.set_data(&nhwc);
            }
        }
    });
}

fn tensor_from_view(
    name: &str,
    view: &safetensors::tensor::TensorView<'_>,
) -> std::result::Result<Tensor, WeightsError> {
    let kind = match view.dtype() {
        Dtype::F32 => Kind::Float,
        Dtype::F16 => Kind::Half,
        Dtype::BF16 => Kind::BFloat16,
        Dtype::F64 => Kind::Double,
        other => {
            return Err(WeightsError::Dtype {
                name: name.to_string(),
                dtype: format!("{other:?}"),
            })
        }
    };
    let shape: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
    Ok(Tensor::from_data_size(view.data(), &shape, kind).to_kind(Kind::Float))
}

/// A tensor copied to host memory as float32 bytes, for serialising.
struct HostTensor {
    shape: Vec<usize>,
    data: Vec<u8>,
}

impl HostTensor {
    fn new(tensor: &Tensor) -> Result<HostTensor> {
        let host = tensor
            .detach()
            .to_device(Device::Cpu)
            .to_kind(Kind::Float)
            .contiguous();
        let values: Vec<f32> = Vec::try_from(host.flatten(0, -1))?;
        let data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        Ok(HostTensor {
            shape: host.size().iter().map(|&d| d as usize).collect(),
            data,
        })
    }
}

impl View for HostTensor {
    fn dtype(&self) -> Dtype {
        Dtype::F32
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> std::borrow::Cow<'_, [u8]> {
        std::borrow::Cow::Borrowed(&self.data)
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Architecture;
    use crate::Scale;

    #[test]
    fn a_saved_model_loads_back_identically() {
        let dir = tempfile::tempdir().unwrap();
        for (arch, scale) in [(Architecture::V8, Scale::N), (Architecture::V10, Scale::N)] {
            let info = ModelInfo {
                names: vec!["stop".into(), "yield".into()],
                arch,
                scale,
                imgsz: 320,
                name: Some("signs".into()),
                version: Some("2026-12-03T06.52.35.000Z".into()),
            };
            let detector = Detector::new(info.clone(), Device::Cpu);
            let path = dir.path().join(format!("{arch}.safetensors"));
            detector.save(&path).unwrap();
            let loaded = Detector::load(&path, Device::Cpu).unwrap();
            assert_eq!(loaded.info, info);
            assert_eq!(loaded.model.arch(), arch);
            let original = detector.vs.variables();
            for (name, tensor) in loaded.vs.variables() {
                assert!(tensor.equal(&original[&name]), "{name} differs");
            }
            let x = Tensor::rand([1, 3, 64, 64], (Kind::Float, Device::Cpu));
            assert!(detector.model.predict(&x).y.allclose(
                &loaded.model.predict(&x).y,
                1e-6,
                1e-6,
                false
            ));
        }
    }

    #[test]
    fn bad_files_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let garbage = dir.path().join("g.safetensors");
        std::fs::write(&garbage, b"not a model").unwrap();
        let err = Detector::load(&garbage, Device::Cpu)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("g.safetensors") && err.contains("not a safetensors file"),
            "{err}"
        );
        let missing = Detector::load(&dir.path().join("none.safetensors"), Device::Cpu)
            .unwrap_err()
            .to_string();
        assert!(missing.contains("none.safetensors"), "{missing}");
        // A safetensors file of something else names what is missing.
        let other = dir.path().join("o.safetensors");
        let t = Tensor::zeros([2], (Kind::Float, Device::Cpu));
        Tensor::write_safetensors(&[("x", &t)], &other).unwrap();
        let err = Detector::load(&other, Device::Cpu).unwrap_err().to_string();
        assert!(
            err.contains("missing tensor model.22.cv3.0.2.bias"),
            "{err}"
        );
    }
}
