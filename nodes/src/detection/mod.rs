//! Road-sign detection's data: the `torch.ModelDataset` that persists a
//! detector, the labelled splits, training histories and
//! evaluation reports. The nodes that run the network (`train_yolo`,
//! `evaluate_yolo`) live in the `torch-nodes` crate, the model in `yolo`.

pub mod dataset;
pub mod evaluation;
pub mod training;

use std::sync::Arc;

use rayon::prelude::*;
use yolo_core::augment::Labeled;
use yolo_core::ModelInfo;

use crate::annotations::{SignDataset, Split};
use crate::NodesError;

/// A trained detector as a pipeline value: the model file's bytes (cheap to
/// share between threads, unlike libtorch tensors) and what they describe.
#[derive(Clone, Debug)]
pub struct ModelFile {
    pub bytes: Arc<Vec<u8>>,
    pub info: ModelInfo,
}

runner::data_value!(ModelFile);

impl ModelFile {
    pub fn from_bytes(bytes: Vec<u8>) -> Result<ModelFile, NodesError> {
        let info = yolo_core::model_file::read_info(&bytes)?;
        Ok(ModelFile {
            bytes: Arc::new(bytes),
            info,
        })
    }
}

/// The images of one split, decoded in parallel, with boxes and class ids in
/// the order of `data.classes`; with `long_side`, each is resized at once so
/// that its longer side is that many pixels (as Ultralytics loads images), so
/// full-size pixels never pile up in memory.
pub fn labeled_split(
    data: &SignDataset,
    split: Split,
    long_side: Option<u32>,
) -> Result<Vec<Labeled>, NodesError> {
    data.records
        .par_iter()
        .filter(|r| r.split == Some(split))
        .map(|record| {
            let image = crate::images::decode_record(record)?;
            let mut boxes = Vec::with_capacity(record.objects.len());
            let mut classes = Vec::with_capacity(record.objects.len());
            for object in &record.objects {
                let class = data
                    .classes
                    .iter()
                    .position(|c| *c == object.class)
                    .ok_or_else(|| {
                        NodesError::Data(format!(
                            "{}: class {} is not one of {:?}",
                            record.id, object.class, data.classes
                        ))
                    })?;
                let b = object.bbox;
                boxes.push([b.xmin as f32, b.ymin as f32, b.xmax as f32, b.ymax as f32]);
                classes.push(class);
            }
            let labeled = Labeled {
                image,
                boxes,
                classes,
            };
            Ok(match long_side {
                Some(side) => yolo_core::augment::resize_long_side(&labeled, side),
                None => labeled,
            })
        })
        .collect()
}
