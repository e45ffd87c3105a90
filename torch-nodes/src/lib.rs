//! # torch-nodes — the road-sign nodes that run libtorch
//!
//! The bodies of the functions `nodes` declares on the `torch` engine
//! (`nodes::signatures`): training, evaluation, detection. Only the
//! executable that loads libtorch (`roadsign-torch`) links this crate; the
//! `roadsign` command plans, checks and runs everything else without it and
//! hands runs that need these functions over (see `ARCHITECTURE.md`).

pub mod detect;
pub mod evaluation;
pub mod ocr_regions;
pub mod training;

use nodes::detection::ModelFile;
#[cfg(test)]
use nodes::signatures::TORCH;
use nodes::signatures::{
    DetectSignsFn, DetectTextRegionsFn, EvaluateYoloFn, LoadDetectorFn, TrainYoloFn,
};
use nodes::NodesError;
use runner::FunctionRegistry;

pub use detect::DetectSigns;

/// Gives every function `nodes` declares on the `torch` engine its body.
pub fn implement(registry: &mut FunctionRegistry) {
    registry.implement("train_yolo", training::train_yolo as TrainYoloFn);
    registry.implement("evaluate_yolo", evaluation::evaluate_yolo as EvaluateYoloFn);
    registry.implement(
        "detect_text_regions",
        ocr_regions::detect_text_regions as DetectTextRegionsFn,
    );
    registry.implement("load_detector", detect::load_detector as LoadDetectorFn);
    registry.implement("detect_signs", detect::detect_signs as DetectSignsFn);
}

/// A device parameter (`auto`, `cpu`, `cuda`) as libtorch's device.
pub fn device(name: &str) -> Result<tch::Device, NodesError> {
    yolo::train::parse_device(name).map_err(|e| NodesError::Params(e.to_string()))
}

/// The model's network on `device`.
pub fn detector(model: &ModelFile, device: tch::Device) -> Result<yolo::Detector, NodesError> {
    yolo::Detector::from_bytes(&model.bytes, device).map_err(|e| NodesError::Model(e.into()))
}

/// libtorch's intra-op threads for the process (0 keeps its default, one
/// per core). A server running several inferences at once on its worker
/// threads is faster with 1: the cores are not fought over twice.
pub fn set_torch_threads(threads: usize) {
    if threads > 0 {
        tch::set_num_threads(threads as i32);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_declared_torch_function_gets_its_body() {
        let mut registry = FunctionRegistry::new();
        nodes::register(&mut registry);
        let declared: Vec<String> = registry
            .names()
            .filter(|name| registry.get(name).unwrap().missing_engines() == [TORCH])
            .map(str::to_string)
            .collect();
        assert!(declared.contains(&"train_yolo".to_string()));
        implement(&mut registry);
        for name in &declared {
            assert!(
                registry.get(name).unwrap().missing_engines().is_empty(),
                "{name}"
            );
        }
    }

    #[test]
    fn device_names_are_checked() {
        assert_eq!(device("cpu").unwrap(), tch::Device::Cpu);
        let err = device("tpu").unwrap_err();
        assert!(err.to_string().contains("unknown device"), "{err}");
    }
}
