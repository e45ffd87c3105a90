//! The `predict` pipeline as a service: built once from the project's files,
//! then called per image (by `roadsign predict` and `roadsign serve`).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::{anyhow, Result};
use nodes::detection::dataset::Picture;
use nodes::detection::ModelFile;
use nodes::predict::video::{VideoJob, VideoSummary};
use nodes::predict::{
    prepare_rois, Detections, ImageSize, Jpeg, Prediction, SignDetector, SignReader,
};
use nodes::NodesError;
use rayon::prelude::*;
use runner::{Catalog, Data, Dataset, PipelineBuilder, PipelineService, ProjectConfig, TypeDesc};
use tesseract_nodes::{read_sign_texts, ReadSigns};
use torch_nodes::DetectSigns;

use roadsign::project::{dataset_types, registry};

/// The pipeline `roadsign serve` and `roadsign predict` run.
pub const PIPELINE: &str = "predict";
/// The dataset an image request provides.
pub const IMAGE: &str = "image";
/// The dataset a video request provides (a [`VideoJob`]).
pub const VIDEO: &str = "video";

/// The started predict pipeline, with the start-up values batches need.
pub struct Predictor {
    service: PipelineService,
    detector: Arc<SignDetector>,
    reader: Arc<SignReader>,
    /// What the model is called: its file's `name` metadata, else the file's stem.
    pub model_name: String,
    /// Its `version` metadata (the training's start), else `1`.
    pub model_version: String,
}

/// The model shipped with the project (and the image), relative to the
/// project folder: what serving and predicting use until a run trains one.
pub const SHIPPED_MODEL: &str = "models/yolov8n-roadsign.safetensors";

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
) -> Result<(ModelFile, String), runner::Error> {
    let stem = |path: &Path| {
        path.file_stem()
            .map_or_else(|| "model".to_string(), |s| s.to_string_lossy().into_owned())
    };
    if let Some(path) = model {
        return Ok((read_model(path)?, stem(path)));
    }
    let trained = catalog.get("model").and_then(|d| d.file_location());
    match trained {
        Some(location) if location.exists() => {
            let data = catalog.load("model").map_err(|e| {
                runner::Error::invalid(format!("the model {}: {e}", location.display()))
            })?;
            let file = data.downcast_ref::<ModelFile>().cloned().ok_or_else(|| {
                runner::Error::invalid(format!(
                    "dataset 'model' ({}) does not hold a model file",
                    location.display()
                ))
            })?;
            Ok((file, stem(location.path())))
        }
        _ => {
            let shipped = config.root.join(SHIPPED_MODEL);
            let trained =
                trained.map_or_else(|| "the catalog's 'model'".to_string(), |l| l.display());
            if !shipped.is_file() {
                return Err(runner::Error::invalid(format!(
                    "no model: nothing at {trained} (train one with `roadsign run`) and no shipped model at {}; or pass --model FILE",
                    shipped.display()
                )));
            }
            tracing::warn!(
                "no trained model at {trained}: using the shipped model {}",
                shipped.display()
            );
            Ok((read_model(&shipped)?, stem(&shipped)))
        }
    }
}

/// Builds the predict pipeline of the project and runs its start-up nodes
/// (model checked, Tesseract configured). `model` replaces the catalog's.
pub fn start(config: &ProjectConfig, model: Option<&Path>) -> Result<Predictor> {
    let pipeline = PipelineBuilder::new(config).build(&[PIPELINE.to_string()])?;
    let mut catalog = Catalog::from_config(config, &dataset_types())?;
    let (file, stem) = choose_model(config, &catalog, model)?;
    let model_name = file.info.name.clone().unwrap_or(stem);
    let model_version = file.info.version.clone().unwrap_or_else(|| "1".to_string());
    let dataset = runner::catalog::MemoryDataset::new("model");
    dataset.save(&Data::new(file))?;
    catalog.insert("model", Arc::new(dataset));
    let service = PipelineService::start(
        &pipeline,
        &mut catalog,
        &registry(),
        &[
            (IMAGE, TypeDesc::of::<Picture>()),
            (VIDEO, TypeDesc::of::<VideoJob>()),
        ],
        runner::ServiceOptions {
            project_dir: config.root.clone(),
            ..Default::default()
        },
    )?;
    let detector = resident::<SignDetector>(&service, "sign_detector")?;
    let reader = resident::<SignReader>(&service, "sign_reader")?;
    Ok(Predictor {
        service,
        detector,
        reader,
        model_name,
        model_version,
    })
}

fn resident<T: Send + Sync + 'static>(service: &PipelineService, name: &str) -> Result<Arc<T>> {
    service
        .resident(name)
        .and_then(|d| d.downcast_arc::<T>())
        .ok_or_else(|| anyhow!("the predict pipeline must produce '{name}' at start-up"))
}

/// Why a prediction (an image, a batch, a video) or the warm-up failed.
#[derive(Debug, thiserror::Error)]
pub enum PredictError {
    /// The pipeline failed (a node's own error stays typed inside).
    #[error(transparent)]
    Call(#[from] runner::CallFailure),
    /// The pipeline ran but gave no value of the expected type for `name`.
    #[error("the predict pipeline gave no '{name}'")]
    NoOutput { name: String },
    /// Tesseract could not start on this thread.
    #[error("Tesseract did not start: {0}")]
    WarmUp(NodesError),
}

impl PredictError {
    /// The road-sign error a node returned, when the failure is one.
    pub fn nodes_error(&self) -> Option<&NodesError> {
        match self {
            PredictError::Call(runner::CallFailure::Node(failure)) => failure.error.find(),
            _ => None,
        }
    }
}

fn take<T: Clone + 'static>(out: &HashMap<String, Data>, name: &str) -> Result<T, PredictError> {
    out.get(name)
        .and_then(|d| d.downcast_ref::<T>())
        .cloned()
        .ok_or_else(|| PredictError::NoOutput {
            name: name.to_string(),
        })
}

/// How one request wants the detector run (Open Inference Protocol
/// parameters); `None` keeps the served setting.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct DetectSettings {
    pub conf: Option<f32>,
    pub iou: Option<f32>,
    pub imgsz: Option<u32>,
}

impl Predictor {
    /// The signs of several images, read. The batch is cut into one part
    /// per core, each part one forward pass of the detector on its own
    /// thread (each thread keeps its own libtorch module: a server runs
    /// libtorch one thread per inference), then every image's regions are
    /// prepared and read by the predict pipeline's own node functions. One
    /// image stays on the calling worker.
    pub fn predict_batch(
        &self,
        images: Vec<image::RgbImage>,
        settings: DetectSettings,
    ) -> Result<Vec<Prediction>, NodesError> {
        let detector = &self.detector;
        let nms = yolo::nms::NmsConfig {
            conf: settings.conf.unwrap_or(detector.nms.conf),
            iou: settings.iou.unwrap_or(detector.nms.iou),
            ..detector.nms
        };
        let imgsz = settings.imgsz.unwrap_or(detector.imgsz);
        let part = images.len().div_ceil(rayon::current_num_threads()).max(1);
        let detect = |part: &[image::RgbImage]| {
            let started = std::time::Instant::now();
            let refs: Vec<&image::RgbImage> = part.iter().collect();
            let found = detector.detect_batch(&refs, imgsz, &nms)?;
            let ms = started.elapsed().as_secs_f64() * 1000.0 / part.len() as f64;
            Ok::<_, NodesError>(found.into_iter().map(move |signs| (signs, ms)))
        };
        let read = |(image, (signs, detect_ms)): (image::RgbImage, (Vec<_>, f64))| {
            let detections = Detections {
                image: ImageSize {
                    width: image.width(),
                    height: image.height(),
                },
                signs,
                detect_ms,
            };
            let regions = prepare_rois(
                Arc::clone(&self.reader),
                Arc::new(Picture(image)),
                detections,
            );
            read_sign_texts(Arc::clone(&self.reader), regions)
        };
        if images.len() == 1 {
            let found: Vec<_> = detect(&images)?.collect();
            return images.into_iter().zip(found).map(read).collect();
        }
        let parts: Vec<_> = images
            .par_chunks(part)
            .map(detect)
            .collect::<Result<_, _>>()?;
        let found: Vec<_> = parts.into_iter().flatten().collect();
        images.into_par_iter().zip(found).map(read).collect()
    }

    fn call(
        &self,
        image: image::RgbImage,
        wanted: &[&str],
    ) -> Result<HashMap<String, Data>, runner::CallFailure> {
        let inputs = [(IMAGE.to_string(), Data::new(Picture(image)))].into();
        self.service.call(inputs, wanted)
    }

    /// The signs of one image, read.
    pub fn predict(&self, image: image::RgbImage) -> Result<Prediction, PredictError> {
        take(&self.call(image, &["prediction"])?, "prediction")
    }

    /// Prepares the calling thread for requests: one image through the
    /// pipeline (its libtorch module built) and one Tesseract read (its
    /// engine started).
    pub fn warm_up(&self) -> Result<(), PredictError> {
        let image = image::RgbImage::from_pixel(320, 320, image::Rgb([120, 130, 140]));
        self.predict_annotated(image)?;
        self.reader.warm_up().map_err(PredictError::WarmUp)
    }

    /// A video annotated into `job.output` by the pipeline's
    /// `annotate_video`; `options` bring the request's cancellation and
    /// hooks (its progress).
    pub fn annotate_video(
        &self,
        job: VideoJob,
        options: &runner::CallOptions,
    ) -> Result<VideoSummary, PredictError> {
        let inputs = [(VIDEO.to_string(), Data::new(job))].into();
        let out = self
            .service
            .call_with(inputs, &["video_summary"], options)?;
        take(&out, "video_summary")
    }

    /// The signs of one image, and the annotated image.
    pub fn predict_annotated(
        &self,
        image: image::RgbImage,
    ) -> Result<(Prediction, Jpeg), PredictError> {
        let out = self.call(image, &["prediction", "annotated_image"])?;
        Ok((take(&out, "prediction")?, take(&out, "annotated_image")?))
    }
}
