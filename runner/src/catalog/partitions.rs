//! `partitions.PartitionedDataset`: a folder of files of one underlying
//! dataset type. Loading gives a [`Partitions`] map from partition id (the
//! file's path below the folder, without the suffix) to a lazy loader;
//! saving writes each partition through the underlying type.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Map, Value};

use super::dataset::{Dataset, Description};
use super::options::EntryOptions;
use super::storage::{FileLocation, Versions};
use super::DatasetTypes;
use crate::config::CatalogEntry;
use crate::data::{Data, TypeDesc};
use crate::error::Error;

/// One partition: stored (loaded when asked) or a value to save.
#[derive(Clone)]
enum Partition {
    Stored(Arc<dyn Dataset>),
    Value(Data),
}

/// Partition id → data, loaded lazily.
#[derive(Clone, Default)]
pub struct Partitions {
    items: BTreeMap<String, Partition>,
}

crate::data_value!(Partitions);

impl std::fmt::Debug for Partitions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.items.keys()).finish()
    }
}

impl Partitions {
    /// Partitions to save, from values.
    pub fn from_values(values: impl IntoIterator<Item = (String, Data)>) -> Self {
        Partitions {
            items: values
                .into_iter()
                .map(|(id, d)| (id, Partition::Value(d)))
                .collect(),
        }
    }

    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.items.keys().map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Loads one partition (reads its file now, for stored partitions).
    pub fn load(&self, id: &str) -> Result<Data, Error> {
        match self.items.get(id) {
            Some(Partition::Stored(dataset)) => dataset.load(),
            Some(Partition::Value(data)) => Ok(data.clone()),
            None => Err(Error::dataset(id, "no such partition")),
        }
    }
}

pub struct PartitionedDataset {
    name: String,
    location: FileLocation,
    /// The folder as written in the catalog (partition paths build on it).
    path: String,
    underlying: CatalogEntry,
    suffix: String,
    overwrite: bool,
    root: PathBuf,
    types: DatasetTypes,
    /// `credentials.yml`, for the partitions' own entries.
    credentials: Arc<Value>,
}

impl PartitionedDataset {
    pub fn from_options(mut o: EntryOptions<'_>) -> Result<Self, Error> {
        let path = o
            .take("path")
            .or_else(|| o.take("filepath"))
            .and_then(|v| v.as_str().map(String::from))
            .ok_or_else(|| o.error("path", "needs `path:` (the folder of the partitions)"))?;
        let credentials_name = o.rest_value("credentials");
        let credentials = o.credentials()?;
        let location = FileLocation::resolve_with(
            &o.entry.name,
            &path,
            o.root,
            &o.entry.location,
            credentials.as_ref(),
        )?;
        let (type_name, mut options) = match o.take("dataset") {
            Some(Value::String(t)) => (t, Map::new()),
            Some(Value::Object(mut m)) => match m.remove("type") {
                Some(Value::String(t)) => (t, m),
                _ => return Err(o.error("dataset", "`dataset:` needs a `type:`")),
            },
            _ => {
                return Err(o.error(
                    "dataset",
                    "needs `dataset:`, the type of each partition (e.g. polars.CSVDataset)",
                ))
            }
        };
        if options.contains_key("filepath") || type_name == "partitions.PartitionedDataset" {
            return Err(o.error(
                "dataset",
                "the partition type takes no filepath and cannot be partitioned itself",
            ));
        }
        let suffix = o.optional_str("filename_suffix")?.unwrap_or_default();
        let overwrite = o.bool_or("overwrite", false)?;
        if let Some(name) = credentials_name {
            options.insert("credentials".into(), name);
        }
        let underlying = CatalogEntry {
            name: o.entry.name.clone(),
            type_name,
            options,
            file: Arc::clone(&o.entry.file),
            location: o.entry.location.clone(),
        };
        let (name, root, types) = (o.entry.name.clone(), o.root.to_path_buf(), o.types.clone());
        let credentials_map = Arc::new(o.credentials.clone());
        o.finish(&["path", "dataset", "filename_suffix", "overwrite"])?;
        let this = PartitionedDataset {
            name,
            location,
            path,
            underlying,
            suffix,
            overwrite,
            root,
            types,
            credentials: credentials_map,
        };
        // Build one partition now so that a bad underlying entry is a config error.
        this.partition("check")?;
        Ok(this)
    }

    fn partition(&self, id: &str) -> Result<Arc<dyn Dataset>, Error> {
        let mut entry = self.underlying.clone();
        entry.name = format!("{}/{id}", self.name);
        let file = Path::new(&self.path).join(format!("{id}{}", self.suffix));
        entry.options.insert(
            "filepath".into(),
            Value::String(file.to_string_lossy().into()),
        );
        self.types.build(EntryOptions::new(
            &entry,
            &self.root,
            &Versions::default(),
            &self.types,
            &self.credentials,
        ))
    }

    fn list(&self, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().to_string();
            if name.starts_with('.') {
                continue; // temporary files of atomic writes
            }
            if path.is_dir() {
                self.list(&path, out);
            } else if let Ok(rel) = path.strip_prefix(self.location.path()) {
                let rel = rel.to_string_lossy().to_string();
                if let Some(id) = rel.strip_suffix(self.suffix.as_str()) {
                    out.push(id.to_string());
                }
            }
        }
    }
}

impl Dataset for PartitionedDataset {
    fn load(&self) -> Result<Data, Error> {
        if let Some(files) = self.location.remote_files() {
            let mut items = BTreeMap::new();
            for file in files? {
                if let Some(id) = file.strip_suffix(self.suffix.as_str()) {
                    items.insert(id.to_string(), Partition::Stored(self.partition(id)?));
                }
            }
            return Ok(Data::new(Partitions { items }));
        }
        if !self.location.path().is_dir() {
            return Err(Error::dataset(
                &self.name,
                format!("folder {} not found", self.location.path().display()),
            ));
        }
        let mut ids = Vec::new();
        self.list(self.location.path(), &mut ids);
        let mut items = BTreeMap::new();
        for id in ids {
            items.insert(id.clone(), Partition::Stored(self.partition(&id)?));
        }
        Ok(Data::new(Partitions { items }))
    }

    fn save(&self, data: &Data) -> Result<(), Error> {
        let partitions = data.downcast_ref::<Partitions>().ok_or_else(|| {
            Error::dataset(
                &self.name,
                format!("saves Partitions, got {}", data.type_desc()),
            )
        })?;
        if self.overwrite {
            if let Some(cleared) = self.location.remote_clear() {
                cleared?;
            }
        }
        if self.overwrite && !self.location.is_remote() && self.location.path().is_dir() {
            std::fs::remove_dir_all(self.location.path())
                .map_err(|e| Error::dataset(&self.name, e))?;
        }
        for (id, partition) in &partitions.items {
            let value = match partition {
                Partition::Value(d) => d.clone(),
                Partition::Stored(d) => d.load()?,
            };
            self.partition(id)?.save(&value)?;
        }
        Ok(())
    }

    fn file_location(&self) -> Option<&FileLocation> {
        Some(&self.location)
    }

    fn describe(&self) -> Description {
        Description {
            type_name: "partitions.PartitionedDataset".into(),
            location: Some(format!(
                "{} ({}{})",
                self.location.display(),
                self.underlying.type_name,
                if self.suffix.is_empty() {
                    String::new()
                } else {
                    format!(", *{}", self.suffix)
                }
            )),
        }
    }

    fn value_type(&self) -> Option<TypeDesc> {
        Some(TypeDesc::of::<Partitions>())
    }
}
