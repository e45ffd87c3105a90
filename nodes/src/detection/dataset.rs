//! `torch.ModelDataset`: a detector as one safetensors file.

use std::sync::Arc;

use runner::catalog::storage::FileLocation;
use runner::catalog::{Dataset, Description};
use runner::{Data, Error, TypeDesc};

use super::ModelFile;

pub struct ModelDataset {
    pub(crate) name: String,
    pub(crate) location: FileLocation,
}

impl Dataset for ModelDataset {
    fn load(&self) -> Result<Data, Error> {
        let bytes = self.location.read()?;
        let model = ModelFile::from_bytes(bytes).map_err(|e| self.location.parse_error(e))?;
        Ok(Data::new(model))
    }

    fn save(&self, data: &Data) -> Result<(), Error> {
        let model = data.downcast_ref::<ModelFile>().ok_or_else(|| {
            Error::dataset(
                &self.name,
                format!("saves a ModelFile, got {}", data.type_desc()),
            )
        })?;
        let bytes = Arc::clone(&model.bytes);
        self.location.write_atomic(move |w| w.write_all(&bytes))
    }

    fn file_location(&self) -> Option<&FileLocation> {
        Some(&self.location)
    }

    fn describe(&self) -> Description {
        Description {
            type_name: "torch.ModelDataset".into(),
            location: Some(self.location.display()),
        }
    }

    fn value_type(&self) -> Option<TypeDesc> {
        Some(TypeDesc::of::<ModelFile>())
    }
}

/// A report figure as a pipeline value.
#[derive(Clone, Debug)]
pub struct Picture(pub image::RgbImage);

runner::data_value!(Picture);

/// `image.PNGDataset`: a figure saved as PNG.
pub struct PngDataset {
    pub(crate) name: String,
    pub(crate) location: FileLocation,
}

impl Dataset for PngDataset {
    fn load(&self) -> Result<Data, Error> {
        let bytes = self.location.read()?;
        let decoded = image::load_from_memory(&bytes).map_err(|e| self.location.parse_error(e))?;
        Ok(Data::new(Picture(decoded.to_rgb8())))
    }

    fn save(&self, data: &Data) -> Result<(), Error> {
        let picture = data.downcast_ref::<Picture>().ok_or_else(|| {
            Error::dataset(
                &self.name,
                format!("saves a Picture, got {}", data.type_desc()),
            )
        })?;
        let png =
            crate::plots::encode_png(&picture.0).map_err(|e| Error::dataset(&self.name, e))?;
        self.location.write_atomic(move |w| w.write_all(&png))
    }

    fn file_location(&self) -> Option<&FileLocation> {
        Some(&self.location)
    }

    fn describe(&self) -> Description {
        Description {
            type_name: "image.PNGDataset".into(),
            location: Some(self.location.display()),
        }
    }

    fn value_type(&self) -> Option<TypeDesc> {
        Some(TypeDesc::of::<Picture>())
    }
}
