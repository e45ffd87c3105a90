//! The data catalog: named datasets built from `catalog.yml` through a
//! registry of dataset types, plus parameters (`params:x`, `parameters`) and
//! in-memory datasets for every name the catalog does not declare.

pub mod dataset;
pub mod factory;
pub mod files;
pub mod memory;
pub mod options;
pub mod partitions;
pub mod remote;
pub mod storage;
pub mod tables;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value;

pub use dataset::{Dataset, Description};
pub use memory::MemoryDataset;
pub use options::EntryOptions;

use crate::config::{params, CatalogEntry, ProjectConfig};
use crate::data::{Data, TypeDesc};
use crate::error::{Error, Location};
use crate::pipeline::{is_parameter, node::strip_transcoding};
use files::{TextFileDataset, TextFormat};
use tables::TableDataset;

/// Builds a dataset from its catalog entry.
pub type DatasetFactory =
    Arc<dyn Fn(EntryOptions<'_>) -> Result<Arc<dyn Dataset>, Error> + Send + Sync>;

/// Dataset types by the name written in `type:`.
#[derive(Clone)]
pub struct DatasetTypes {
    factories: BTreeMap<String, DatasetFactory>,
}

impl Default for DatasetTypes {
    fn default() -> Self {
        Self::builtin()
    }
}

impl DatasetTypes {
    /// The types every project has.
    pub fn builtin() -> Self {
        let mut types = DatasetTypes {
            factories: BTreeMap::new(),
        };
        types.register("memory.MemoryDataset", |o| {
            let name = o.entry.name.clone();
            o.finish(&[])?;
            Ok(Arc::new(MemoryDataset::new(&name)) as Arc<dyn Dataset>)
        });
        for format in [TextFormat::Json, TextFormat::Yaml, TextFormat::Text] {
            types.register(format.type_name(), move |o| {
                Ok(Arc::new(TextFileDataset::from_options(format, o)?) as Arc<dyn Dataset>)
            });
        }
        types.register("partitions.PartitionedDataset", |o| {
            Ok(Arc::new(partitions::PartitionedDataset::from_options(o)?) as Arc<dyn Dataset>)
        });
        types.register("polars.CSVDataset", |o| {
            Ok(Arc::new(TableDataset::csv(o)?) as Arc<dyn Dataset>)
        });
        types.register("polars.ParquetDataset", |o| {
            Ok(Arc::new(TableDataset::parquet(o)?) as Arc<dyn Dataset>)
        });
        types
    }

    /// Builds a dataset of a registered type from an entry.
    pub fn build(&self, options: EntryOptions<'_>) -> Result<Arc<dyn Dataset>, Error> {
        let factory = self
            .factories
            .get(&options.entry.type_name)
            .ok_or_else(|| {
                Error::config(
                    options.entry.option_location("type"),
                    format!(
                        "dataset '{}': unknown type '{}' (known types: {})",
                        options.entry.name,
                        options.entry.type_name,
                        self.names().collect::<Vec<_>>().join(", ")
                    ),
                )
            })?;
        factory(options)
    }

    /// Adds a dataset type.
    ///
    /// # Panics
    /// When `name` is already registered, as a function registered twice
    /// does: a bug in the program that wires the types, not a user error.
    pub fn register(
        &mut self,
        name: &str,
        factory: impl Fn(EntryOptions<'_>) -> Result<Arc<dyn Dataset>, Error> + Send + Sync + 'static,
    ) {
        assert!(
            !self.factories.contains_key(name),
            "dataset type '{name}' registered twice"
        );
        self.factories.insert(name.to_string(), Arc::new(factory));
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.factories.keys().map(String::as_str)
    }
}

/// The datasets of one run.
pub struct Catalog {
    datasets: BTreeMap<String, Arc<dyn Dataset>>,
    /// Declared names, and the factory pattern a name was resolved from.
    declared: BTreeMap<String, Option<String>>,
    parameters: Arc<Value>,
    parameter_sources: Arc<crate::config::ParameterSources>,
    /// Dataset factories, most specific first.
    patterns: Vec<(factory::Pattern, CatalogEntry)>,
    types: DatasetTypes,
    root: PathBuf,
    versions: storage::Versions,
    /// `credentials.yml`: object-store entries name theirs.
    credentials: Arc<Value>,
}

impl Catalog {
    /// Builds every declared dataset, validating its options. Keys with
    /// `{placeholders}` are dataset factories, resolved by [`Catalog::resolve`].
    pub fn from_config(config: &ProjectConfig, types: &DatasetTypes) -> Result<Self, Error> {
        Self::with_versions(config, types, storage::Versions::default())
    }

    /// As [`Catalog::from_config`], with the run's save version and the
    /// versions pinned by `--load-versions`.
    pub fn with_versions(
        config: &ProjectConfig,
        types: &DatasetTypes,
        versions: storage::Versions,
    ) -> Result<Self, Error> {
        let mut catalog = Catalog {
            versions,
            datasets: BTreeMap::new(),
            declared: BTreeMap::new(),
            parameters: Arc::new(config.parameters.clone()),
            parameter_sources: Arc::new(config.parameter_sources.clone()),
            patterns: Vec::new(),
            types: types.clone(),
            root: config.root.clone(),
            credentials: Arc::new(config.credentials.clone()),
        };
        let mut patterns = Vec::new();
        for (name, entry) in &config.catalog {
            match factory::Pattern::parse(name) {
                Some(pattern) => patterns.push((pattern, entry.clone())),
                None => {
                    let dataset = catalog.build(entry)?;
                    catalog.insert(name, dataset);
                }
            }
        }
        factory::rank(&mut patterns, |(pattern, _)| pattern);
        catalog.patterns = patterns;
        Ok(catalog)
    }

    fn build(&self, entry: &CatalogEntry) -> Result<Arc<dyn Dataset>, Error> {
        self.types.build(EntryOptions::new(
            entry,
            &self.root,
            &self.versions,
            &self.types,
            &self.credentials,
        ))
    }

    /// Declares every undeclared name that a dataset factory matches, using
    /// the most specific matching pattern.
    pub fn resolve<'a>(
        &mut self,
        names: impl IntoIterator<Item = &'a String>,
    ) -> Result<(), Error> {
        for name in names {
            if is_parameter(name) || self.declared.contains_key(name.as_str()) {
                continue;
            }
            let found = self
                .patterns
                .iter()
                .find_map(|(pattern, entry)| pattern.matches(name).map(|c| (pattern, entry, c)));
            let Some((pattern, entry, captures)) = found else {
                continue;
            };
            let filled = |s: &str| match factory::fill(&Value::String(s.to_string()), &captures) {
                Value::String(s) => s,
                _ => s.to_string(),
            };
            let options = match factory::fill(&Value::Object(entry.options.clone()), &captures) {
                Value::Object(map) => map,
                _ => entry.options.clone(),
            };
            let resolved = CatalogEntry {
                name: name.clone(),
                type_name: filled(&entry.type_name),
                options,
                file: Arc::clone(&entry.file),
                location: entry.location.clone(),
            };
            let dataset = self.build(&resolved)?;
            self.datasets.insert(name.clone(), dataset);
            self.declared
                .insert(name.clone(), Some(pattern.text.clone()));
        }
        Ok(())
    }

    /// The version every versioned save of this run writes; also the run id.
    pub fn save_version(&self) -> &str {
        &self.versions.save_version
    }

    /// The factory pattern a declared dataset came from, if any.
    pub fn pattern_of(&self, name: &str) -> Option<&str> {
        self.declared.get(name).and_then(|p| p.as_deref())
    }

    /// The dataset factories, most specific first, with their entry.
    pub fn patterns(&self) -> impl Iterator<Item = (&str, &CatalogEntry)> {
        self.patterns.iter().map(|(p, e)| (p.text.as_str(), e))
    }

    /// An empty catalog holding only parameters (tests, embedding).
    pub fn with_parameters(parameters: Value) -> Self {
        Catalog {
            datasets: BTreeMap::new(),
            declared: BTreeMap::new(),
            parameters: Arc::new(parameters),
            parameter_sources: Arc::default(),
            patterns: Vec::new(),
            types: DatasetTypes::builtin(),
            root: PathBuf::from("."),
            versions: storage::Versions::default(),
            credentials: Arc::new(Value::Object(Default::default())),
        }
    }

    /// Adds an already-built dataset under a name.
    pub fn insert(&mut self, name: &str, dataset: Arc<dyn Dataset>) {
        self.declared.insert(name.to_string(), None);
        self.datasets.insert(name.to_string(), dataset);
    }

    /// Gives every undeclared, non-parameter name an in-memory dataset.
    pub fn add_memory_datasets<'a>(&mut self, names: impl IntoIterator<Item = &'a String>) {
        for name in names {
            let key = self.storage_name(name).to_string();
            if !is_parameter(name) && !self.datasets.contains_key(&key) {
                self.datasets
                    .insert(key.clone(), Arc::new(MemoryDataset::new(&key)));
            }
        }
    }

    /// The name data is kept under: a declared name as it is; an undeclared
    /// transcoded name (`d@fmt`) shares the memory of its base dataset `d`.
    pub fn storage_name<'a>(&self, name: &'a str) -> &'a str {
        if self.declared.contains_key(name) {
            name
        } else {
            strip_transcoding(name)
        }
    }

    pub fn is_declared(&self, name: &str) -> bool {
        self.declared.contains_key(name)
    }

    /// Where the parameter `params:a.b` (or `parameters`) is written.
    pub fn parameter_location(&self, name: &str) -> Location {
        self.parameter_sources.location(name)
    }

    /// The parameter value behind `params:a.b` or `parameters`.
    pub fn parameter(&self, name: &str) -> Option<Value> {
        if name == "parameters" {
            return Some((*self.parameters).clone());
        }
        let key = name.strip_prefix("params:")?;
        params::lookup(&self.parameters, key).cloned()
    }

    /// Whether a free input can be served: a declared dataset or an existing parameter.
    pub fn can_provide(&self, name: &str) -> bool {
        if is_parameter(name) {
            self.parameter(name).is_some()
        } else {
            self.is_declared(name)
        }
    }

    pub fn get(&self, name: &str) -> Option<&Arc<dyn Dataset>> {
        self.datasets.get(self.storage_name(name))
    }

    fn dataset(&self, name: &str) -> Result<&Arc<dyn Dataset>, Error> {
        self.get(name)
            .ok_or_else(|| Error::dataset(name, "not in the catalog"))
    }

    pub fn load(&self, name: &str) -> Result<Data, Error> {
        if is_parameter(name) {
            return self
                .parameter(name)
                .map(Data::new)
                .ok_or_else(|| Error::dataset(name, "no such parameter in parameters.yml"));
        }
        self.dataset(name)?.load()
    }

    pub fn save(&self, name: &str, data: &Data) -> Result<(), Error> {
        if is_parameter(name) {
            return Err(Error::dataset(name, "parameters are read-only"));
        }
        self.dataset(name)?.save(data)
    }

    pub fn exists(&self, name: &str) -> Result<bool, Error> {
        if is_parameter(name) {
            return Ok(self.parameter(name).is_some());
        }
        self.dataset(name)?.exists()
    }

    /// The type a dataset yields: parameters are JSON values; memory data
    /// has no type of its own (it takes the producer's).
    pub fn value_type(&self, name: &str) -> Option<TypeDesc> {
        if is_parameter(name) {
            return Some(TypeDesc::of::<Value>());
        }
        self.get(name).and_then(|d| d.value_type())
    }

    /// In-memory (or undeclared) data does not survive the run.
    pub fn is_ephemeral(&self, name: &str) -> bool {
        !is_parameter(name) && self.get(name).is_none_or(|d| d.is_ephemeral())
    }

    pub fn release(&self, name: &str) {
        if let Some(d) = self.get(name) {
            d.release();
        }
    }

    /// Checks `--load-versions`: each names a versioned dataset that the
    /// run does not also save (loading one version while saving another in
    /// the same run is refused, as in Kedro).
    pub fn check_load_versions(
        &self,
        saved_by_run: &std::collections::BTreeSet<String>,
    ) -> Result<(), Error> {
        for (name, version) in &self.versions.load_versions {
            match self.get(name) {
                None => return Err(Error::invalid(format!("--load-versions {name}:{version}: no dataset '{name}' in the catalog"))),
                Some(d) if !d.is_versioned() => {
                    return Err(Error::invalid(format!("--load-versions {name}:{version}: dataset '{name}' is not versioned")))
                }
                Some(_) if saved_by_run.contains(name) => {
                    return Err(Error::invalid(format!(
                        "--load-versions {name}:{version}: this run also saves '{name}'; a versioned dataset cannot be loaded at one version and saved at another in one run"
                    )))
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// Declared datasets and their descriptions, sorted by name.
    pub fn describe(&self) -> Vec<(String, Description)> {
        self.declared
            .keys()
            .filter_map(|name| Some((name.clone(), self.datasets.get(name)?.describe())))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LoadOptions;
    use polars::prelude::*;
    use serde_json::json;
    use std::fs;

    fn project(catalog: &str) -> (tempfile::TempDir, Result<Catalog, Error>) {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join("pipelines.yml"),
            "pipelines:\n  p:\n    nodes: [{func: noop}]\n",
        )
        .unwrap();
        fs::write(dir.path().join("parameters.yml"), "a: {b: 2}\n").unwrap();
        fs::write(dir.path().join("catalog.yml"), catalog).unwrap();
        let config = ProjectConfig::load(dir.path(), &LoadOptions::default()).unwrap();
        let catalog = Catalog::from_config(&config, &DatasetTypes::builtin());
        (dir, catalog)
    }

    const ALL: &str = "\
j: {type: json.JSONDataset, filepath: data/j.json, save_args: {pretty: false}}
y: {type: yaml.YAMLDataset, filepath: data/y.yml}
t: {type: text.TextDataset, filepath: data/t.txt}
c: {type: polars.CSVDataset, filepath: data/c.csv, save_args: {separator: ';'}}
p: {type: polars.ParquetDataset, filepath: data/p.parquet, save_args: {compression: zstd}}
m: {type: memory.MemoryDataset}
";

    #[test]
    #[should_panic(expected = "dataset type 'json.JSONDataset' registered twice")]
    fn registering_a_dataset_type_twice_is_a_bug() {
        let mut types = DatasetTypes::builtin();
        types.register("json.JSONDataset", |_| Err(Error::invalid("never")));
    }

    #[test]
    fn every_builtin_type_round_trips() {
        let (dir, catalog) = project(ALL);
        let catalog = catalog.unwrap();
        let value = json!({"k": [1, 2, "x"]});
        for name in ["j", "y"] {
            catalog.save(name, &Data::new(value.clone())).unwrap();
            assert_eq!(
                catalog.load(name).unwrap().downcast_ref::<Value>(),
                Some(&value)
            );
        }
        assert_eq!(
            fs::read_to_string(dir.path().join("data/j.json")).unwrap(),
            r#"{"k":[1,2,"x"]}"#
        );
        catalog.save("t", &Data::new("hello".to_string())).unwrap();
        assert_eq!(
            catalog.load("t").unwrap().downcast_ref::<String>().unwrap(),
            "hello"
        );

        let frame = df!("a" => [1i64, 2, 3], "b" => ["x", "y", "z"]).unwrap();
        for name in ["c", "p"] {
            catalog.save(name, &Data::new(frame.clone())).unwrap();
            let loaded = catalog.load(name).unwrap();
            assert!(
                loaded.downcast_ref::<DataFrame>().unwrap().equals(&frame),
                "{name}"
            );
        }
        assert!(fs::read_to_string(dir.path().join("data/c.csv"))
            .unwrap()
            .starts_with("a;b\n"));
        catalog.save("m", &Data::new(1_i64)).unwrap();
        assert!(catalog.exists("m").unwrap());

        // noop's empty values save as the empty value of each format
        for name in ["j", "y", "t", "c", "p"] {
            catalog.save(name, &Data::empty()).unwrap();
            assert!(catalog.exists(name).unwrap());
        }
        assert_eq!(
            catalog
                .load("c")
                .unwrap()
                .downcast_ref::<DataFrame>()
                .unwrap()
                .height(),
            0
        );

        let described = catalog.describe();
        assert_eq!(described.len(), 6);
        assert_eq!(described[0].1.type_name, "polars.CSVDataset");
        assert_eq!(described[0].1.location.as_deref(), Some("data/c.csv"));
        assert_eq!(catalog.value_type("p"), Some(TypeDesc::of::<DataFrame>()));
        assert_eq!(
            catalog.value_type("params:a"),
            Some(TypeDesc::of::<Value>())
        );
        assert!(catalog.is_ephemeral("m") && catalog.is_ephemeral("undeclared"));
        assert!(!catalog.is_ephemeral("j") && !catalog.is_ephemeral("params:a"));
    }

    #[test]
    fn factories_resolve_the_most_specific_pattern() {
        let (dir, catalog) = project(
            "\"{name}_csv\": {type: polars.CSVDataset, filepath: \"data/{name}.csv\"}\n\
             \"raw_{name}_csv\": {type: polars.CSVDataset, filepath: \"raw/{name}.csv\", save_args: {separator: ';'}}\n\
             \"{any}\": {type: text.TextDataset, filepath: \"text/{any}.txt\"}\n\
             plain: {type: json.JSONDataset, filepath: p.json}\n",
        );
        let mut catalog = catalog.unwrap();
        let names: Vec<String> = ["cars_csv", "raw_trips_csv", "notes", "plain", "params:a"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        catalog.resolve(&names).unwrap();
        assert_eq!(catalog.pattern_of("cars_csv"), Some("{name}_csv"));
        assert_eq!(catalog.pattern_of("raw_trips_csv"), Some("raw_{name}_csv"));
        assert_eq!(catalog.pattern_of("notes"), Some("{any}"));
        assert_eq!(catalog.pattern_of("plain"), None);
        let location = |n: &str| catalog.get(n).unwrap().describe().location.unwrap();
        assert_eq!(location("cars_csv"), "data/cars.csv");
        assert_eq!(location("raw_trips_csv"), "raw/trips.csv");
        catalog.save("notes", &Data::new("hi".to_string())).unwrap();
        assert!(dir.path().join("text/notes.txt").is_file());
        assert_eq!(catalog.patterns().count(), 3);
        assert!(
            catalog.can_provide("cars_csv"),
            "a factory dataset is persisted"
        );
    }

    #[test]
    fn partitioned_datasets_save_maps_and_load_lazily() {
        let (dir, catalog) = project(
            "parts:\n  type: partitions.PartitionedDataset\n  path: data/parts\n  dataset: {type: polars.CSVDataset, save_args: {separator: ';'}}\n  filename_suffix: .csv\n\
             fresh:\n  type: partitions.PartitionedDataset\n  path: data/parts\n  dataset: polars.CSVDataset\n  filename_suffix: .csv\n  overwrite: true\n",
        );
        let catalog = catalog.unwrap();
        let frame = |n: i64| Data::new(df!("n" => [n, n + 1]).unwrap());
        let values = [
            ("2024/jan".to_string(), frame(1)),
            ("2024/feb".to_string(), frame(5)),
        ];
        catalog
            .save(
                "parts",
                &Data::new(partitions::Partitions::from_values(values)),
            )
            .unwrap();
        assert!(dir.path().join("data/parts/2024/jan.csv").is_file());
        std::fs::write(
            dir.path().join("data/parts/2024/notes.txt"),
            "not a partition",
        )
        .unwrap();
        let loaded = catalog.load("parts").unwrap();
        let parts = loaded.downcast_ref::<partitions::Partitions>().unwrap();
        assert_eq!(parts.ids().collect::<Vec<_>>(), ["2024/feb", "2024/jan"]);
        let feb = parts.load("2024/feb").unwrap();
        assert_eq!(
            feb.downcast_ref::<DataFrame>()
                .unwrap()
                .column("n")
                .unwrap()
                .i64()
                .unwrap()
                .get(0),
            Some(5)
        );
        assert!(parts.load("2023/dec").is_err());
        assert_eq!(format!("{parts:?}"), "[\"2024/feb\", \"2024/jan\"]");
        // saving again adds partitions; `overwrite: true` replaces the folder
        catalog
            .save(
                "parts",
                &Data::new(partitions::Partitions::from_values([(
                    "mar".to_string(),
                    frame(9),
                )])),
            )
            .unwrap();
        assert_eq!(
            catalog
                .load("parts")
                .unwrap()
                .downcast_ref::<partitions::Partitions>()
                .unwrap()
                .len(),
            3
        );
        catalog
            .save(
                "fresh",
                &Data::new(partitions::Partitions::from_values([(
                    "only".to_string(),
                    frame(0),
                )])),
            )
            .unwrap();
        let after = catalog.load("fresh").unwrap();
        assert_eq!(
            after
                .downcast_ref::<partitions::Partitions>()
                .unwrap()
                .ids()
                .collect::<Vec<_>>(),
            ["only"]
        );
        assert!(catalog
            .save("parts", &Data::new(1_i64))
            .unwrap_err()
            .to_string()
            .contains("saves Partitions"));
        assert!(catalog
            .get("parts")
            .unwrap()
            .describe()
            .location
            .unwrap()
            .contains("polars.CSVDataset, *.csv"));
        assert!(catalog
            .get("parts")
            .unwrap()
            .fingerprint()
            .unwrap()
            .is_some());
    }

    #[test]
    fn parameters_and_memory_datasets() {
        let (_dir, catalog) = project("");
        let mut catalog = catalog.unwrap();
        assert_eq!(
            catalog.load("params:a.b").unwrap().downcast_ref::<Value>(),
            Some(&json!(2))
        );
        assert_eq!(
            catalog.parameter("parameters"),
            Some(json!({"a": {"b": 2}}))
        );
        assert!(catalog.can_provide("params:a") && !catalog.can_provide("params:zz"));
        assert!(catalog.load("params:zz").is_err());
        assert!(catalog.save("params:a", &Data::empty()).is_err());
        assert!(catalog.exists("params:a").unwrap());
        catalog.add_memory_datasets(&[
            "x".to_string(),
            "params:a".to_string(),
            "t@fmt".to_string(),
        ]);
        catalog.save("t@fmt", &Data::new(2_i64)).unwrap();
        assert_eq!(
            catalog.load("t@other").unwrap().downcast_ref::<i64>(),
            Some(&2),
            "transcodings share memory"
        );
        assert!(!catalog.can_provide("x"), "memory data is not a free input");
        catalog.save("x", &Data::new(1_i64)).unwrap();
        catalog.release("x");
        assert!(!catalog.exists("x").unwrap());
        assert!(catalog
            .load("nope")
            .unwrap_err()
            .to_string()
            .contains("not in the catalog"));
        let empty = Catalog::with_parameters(json!({}));
        assert!(empty.describe().is_empty());
    }

    #[test]
    fn bad_entries_are_config_errors_with_lines() {
        let cases = [
            ("x: {type: nope.Dataset}\n", "catalog.yml:1: dataset 'x': unknown type 'nope.Dataset'"),
            ("x:\n  type: json.JSONDataset\n", "catalog.yml:1: dataset 'x' (json.JSONDataset) needs `filepath:`"),
            ("x:\n  type: json.JSONDataset\n  filepath: a\n  colour: red\n", "catalog.yml:4: dataset 'x': unknown key `colour`"),
            ("x:\n  type: polars.CSVDataset\n  filepath: a\n  load_args: {sep: x}\n", "catalog.yml:4: dataset 'x': load_args.sep is not a supported argument"),
            ("x:\n  type: polars.CSVDataset\n  filepath: a\n  load_args: {separator: ab}\n", "one ASCII character"),
            ("x:\n  type: polars.ParquetDataset\n  filepath: a\n  save_args: {compression: foo}\n", "unknown parquet compression"),
            ("x:\n  type: text.TextDataset\n  filepath: 3\n", "`filepath` must be a string"),
            ("x:\n  type: text.TextDataset\n  filepath: a\n  versioned: maybe\n", "`versioned` must be true or false"),
            ("x:\n  type: text.TextDataset\n  filepath: a\n  save_args: 1\n", "must be a mapping"),
            ("x:\n  type: memory.MemoryDataset\n  filepath: a\n", "unknown key `filepath`"),
            ("x:\n  type: partitions.PartitionedDataset\n  dataset: text.TextDataset\n", "needs `path:`"),
            ("x:\n  type: partitions.PartitionedDataset\n  path: p\n", "needs `dataset:`"),
            ("x:\n  type: partitions.PartitionedDataset\n  path: p\n  dataset: {type: nope.X}\n", "unknown type 'nope.X'"),
            ("x:\n  type: partitions.PartitionedDataset\n  path: p\n  dataset: {type: text.TextDataset, filepath: a}\n", "takes no filepath"),
        ];
        for (text, expected) in cases {
            let (_dir, catalog) = project(text);
            let err = catalog.err().unwrap_or_else(|| panic!("accepted: {text}"));
            assert!(err.to_string().contains(expected), "{text}\n=> {err}");
            assert_eq!(err.exit_code(), 2);
        }
    }

    #[test]
    fn corrupt_files_name_the_dataset_and_file() {
        let (dir, catalog) = project(ALL);
        let catalog = catalog.unwrap();
        fs::create_dir_all(dir.path().join("data")).unwrap();
        fs::write(dir.path().join("data/j.json"), "{oops").unwrap();
        fs::write(dir.path().join("data/p.parquet"), "not parquet").unwrap();
        for name in ["j", "p"] {
            let err = catalog.load(name).unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("dataset '{name}': cannot parse")),
                "{err}"
            );
        }
        assert!(catalog
            .load("t")
            .unwrap_err()
            .to_string()
            .contains("cannot read"));
        let err = catalog.save("t", &Data::new(1_i64)).unwrap_err();
        assert!(err.to_string().contains("saves String, got i64"), "{err}");
        let err = catalog.save("c", &Data::new(1_i64)).unwrap_err();
        assert!(err.to_string().contains("saves a DataFrame"), "{err}");
        let err = catalog.save("j", &Data::new(1_i64)).unwrap_err();
        assert!(err.to_string().contains("saves Value"), "{err}");
    }
}
