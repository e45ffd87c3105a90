//! Text-based file datasets: `json.JSONDataset`, `yaml.YAMLDataset`, `text.TextDataset`.

use serde_json::Value;

use super::dataset::{Dataset, Description};
use super::options::EntryOptions;
use super::storage::FileLocation;
use crate::data::{Data, TypeDesc};
use crate::error::Error;

/// Which text format a [`TextFileDataset`] reads and writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextFormat {
    Json,
    Yaml,
    Text,
}

impl TextFormat {
    pub fn type_name(self) -> &'static str {
        match self {
            TextFormat::Json => "json.JSONDataset",
            TextFormat::Yaml => "yaml.YAMLDataset",
            TextFormat::Text => "text.TextDataset",
        }
    }
}

pub struct TextFileDataset {
    format: TextFormat,
    location: FileLocation,
    /// JSON only: indent the output (`save_args: {pretty: true}`, the default).
    pretty: bool,
}

impl TextFileDataset {
    pub fn from_options(format: TextFormat, mut options: EntryOptions<'_>) -> Result<Self, Error> {
        let location = options.file_location()?;
        let mut save_args = options.map("save_args")?;
        let pretty = match format {
            TextFormat::Json => save_args.bool("pretty")?.unwrap_or(true),
            _ => true,
        };
        save_args.finish()?;
        options.map("load_args")?.finish()?;
        options.finish(&["filepath", "load_args", "save_args", "versioned"])?;
        Ok(TextFileDataset {
            format,
            location,
            pretty,
        })
    }
}

impl Dataset for TextFileDataset {
    fn load(&self) -> Result<Data, Error> {
        let text = self.location.read_string()?;
        Ok(match self.format {
            TextFormat::Json => Data::new(
                serde_json::from_str::<Value>(&text).map_err(|e| self.location.parse_error(e))?,
            ),
            TextFormat::Yaml => {
                let yaml: serde_yaml::Value =
                    serde_yaml::from_str(&text).map_err(|e| self.location.parse_error(e))?;
                Data::new(serde_json::to_value(yaml).map_err(|e| self.location.parse_error(e))?)
            }
            TextFormat::Text => Data::new(text),
        })
    }

    fn save(&self, data: &Data) -> Result<(), Error> {
        let bytes: Vec<u8> = match self.format {
            TextFormat::Text => match data.downcast_ref::<String>() {
                Some(s) => s.clone().into_bytes(),
                None if data.is_empty_value() => Vec::new(),
                None => return Err(self.wrong_type(data)),
            },
            TextFormat::Json | TextFormat::Yaml => {
                let null = Value::Null;
                let value = match data.downcast_ref::<Value>() {
                    Some(v) => v,
                    None if data.is_empty_value() => &null,
                    None => return Err(self.wrong_type(data)),
                };
                let text = match (self.format, self.pretty) {
                    (TextFormat::Yaml, _) => {
                        serde_yaml::to_string(value).map_err(|e| e.to_string())
                    }
                    (_, true) => serde_json::to_string_pretty(value).map_err(|e| e.to_string()),
                    (_, false) => serde_json::to_string(value).map_err(|e| e.to_string()),
                }
                .map_err(|e| Error::dataset(&self.location.display(), e))?;
                text.into_bytes()
            }
        };
        self.location.write_atomic(|w| w.write_all(&bytes))
    }

    fn file_location(&self) -> Option<&FileLocation> {
        Some(&self.location)
    }

    fn describe(&self) -> Description {
        Description {
            type_name: self.format.type_name().to_string(),
            location: Some(self.location.display()),
        }
    }

    fn value_type(&self) -> Option<TypeDesc> {
        Some(match self.format {
            TextFormat::Text => TypeDesc::of::<String>(),
            _ => TypeDesc::of::<Value>(),
        })
    }
}

impl TextFileDataset {
    fn wrong_type(&self, data: &Data) -> Error {
        Error::dataset(
            &self.location.display(),
            format!(
                "{} saves {}, got {}",
                self.format.type_name(),
                self.value_type().map(|t| t.name()).unwrap_or_default(),
                data.type_desc()
            ),
        )
    }
}
