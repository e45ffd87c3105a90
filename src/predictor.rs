//! The `predict` pipeline as a service: built once from the project's files,
//! then called per image (by `roadsign predict` and `roadsign serve`).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::{anyhow, Result};
use nodes::detection::dataset::Picture;
use nodes::detection::ModelFile;
use nodes::predict::{Jpeg, Prediction, SignDetector, SignReader};
use runner::{Catalog, Data, Dataset, PipelineBuilder, PipelineService, ProjectConfig, TypeDesc};

use crate::commands::{dataset_types, registry};

/// The pipeline `roadsign serve` and `roadsign predict` run.
pub const PIPELINE: &str = "predict";
/// The dataset each request provides.
pub const IMAGE: &str = "image";

/// The started predict pipeline, and the start-up values videos need.
pub struct Predictor {
    pub service: PipelineService,
    pub detector: Arc<SignDetector>,
    pub reader: Arc<SignReader>,
}

/// The model shipped with the project (and the image), relative to the
/// project folder: what serving and predicting use until a run trains one.
pub const SHIPPED_MODEL: &str = "models/yolov8n-roadsign-synthetic.safetensors";

/// Reads a model file; a missing, unreadable or malformed one is a
/// configuration error (exit 2) that names the file.
fn read_model(path: &Path) -> Result<ModelFile, runner::Error> {
    let bytes = std::fs::read(path).map_err(|e| {
        runner::Error::invalid(format!("cannot read the model {}: {e}", path.display()))
    })?;
    ModelFile::from_bytes(bytes)
        .map_err(|e| runner::Error::invalid(format!("{} is not a model file: {e}", path.display())))
}

/// The model to serve: the file given (`--model`), else the catalog's
/// `model` once a run has written it, else the shipped model, said so in
/// the log.
fn choose_model(
    config: &ProjectConfig,
    catalog: &Catalog,
    model: Option<&Path>,
) -> Result<ModelFile, runner::Error> {
    if let Some(path) = model {
        return read_model(path);
    }
    let trained = catalog.get("model").and_then(|d| d.file_location());
    match trained {
        Some(location) if location.exists() => {
            let data = catalog.load("model").map_err(|e| {
                runner::Error::invalid(format!("the model {}: {e}", location.display()))
            })?;
            data.downcast_ref::<ModelFile>().cloned().ok_or_else(|| {
                runner::Error::invalid(format!(
                    "dataset 'model' ({}) does not hold a model file",
                    location.display()
                ))
            })
        }
        _ => {
            let shipped = config.root.join(SHIPPED_MODEL);
            if !shipped.is_file() {
                return Err(runner::Error::invalid(format!(
                    "no model: nothing at {} (train one with `roadsign run`) and no shipped model at {}; or pass --model FILE",
                    trained.map_or_else(|| "the catalog's 'model'".to_string(), |l| l.display()),
                    shipped.display()
                )));
            }
            tracing::warn!(
                "no trained model at {}: using the shipped model {}",
                trained.map_or_else(|| "the catalog's 'model'".to_string(), |l| l.display()),
                shipped.display()
            );
            read_model(&shipped)
        }
    }
}

/// Builds the predict pipeline of the project and runs its start-up nodes
/// (model checked, Tesseract configured). `model` replaces the catalog's.
pub fn start(config: &ProjectConfig, model: Option<&Path>) -> Result<Predictor> {
    let pipeline = PipelineBuilder::new(config).build(&[PIPELINE.to_string()])?;
    let mut catalog = Catalog::from_config(config, &dataset_types())?;
    let file = choose_model(config, &catalog, model)?;
    let dataset = runner::catalog::MemoryDataset::new("model");
    dataset.save(&Data::new(file))?;
    catalog.insert("model", Arc::new(dataset));
    let service = PipelineService::start(
        &pipeline,
        &mut catalog,
        &registry(),
        &[(IMAGE, TypeDesc::of::<Picture>())],
    )?;
    let detector = resident::<SignDetector>(&service, "sign_detector")?;
    let reader = resident::<SignReader>(&service, "sign_reader")?;
    Ok(Predictor {
        service,
        detector,
        reader,
    })
}

fn resident<T: Send + Sync + 'static>(service: &PipelineService, name: &str) -> Result<Arc<T>> {
    service
        .resident(name)
        .and_then(|d| d.downcast_arc::<T>())
        .ok_or_else(|| anyhow!("the predict pipeline must produce '{name}' at start-up"))
}

fn take<T: Clone + 'static>(
    out: &HashMap<String, Data>,
    name: &str,
) -> Result<T, runner::CallFailure> {
    out.get(name)
        .and_then(|d| d.downcast_ref::<T>())
        .cloned()
        .ok_or_else(|| runner::CallFailure::Request(format!("the pipeline gave no '{name}'")))
}

impl Predictor {
    fn call(
        &self,
        image: image::RgbImage,
        wanted: &[&str],
    ) -> Result<HashMap<String, Data>, runner::CallFailure> {
        let inputs = [(IMAGE.to_string(), Data::new(Picture(image)))].into();
        self.service.call(inputs, wanted)
    }

    /// The signs of one image, read.
    pub fn predict(&self, image: image::RgbImage) -> Result<Prediction, runner::CallFailure> {
        take(&self.call(image, &["prediction"])?, "prediction")
    }

    /// The signs of one image, and the annotated image.
    pub fn predict_annotated(
        &self,
        image: image::RgbImage,
    ) -> Result<(Prediction, Jpeg), runner::CallFailure> {
        let out = self.call(image, &["prediction", "annotated_image"])?;
        Ok((take(&out, "prediction")?, take(&out, "annotated_image")?))
    }
}
