//! Loading the three project files (`catalog.yml`, `parameters.yml`,
//! `pipelines.yml`) and the `conf/<env>/` overlays into one [`ProjectConfig`].
//!
//! Every error names the file, and the line where the YAML parser or a key
//! search can tell it.

pub mod params;
pub mod yaml;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

use crate::error::{Error, Location};
use crate::pipeline::spec::{PipelineSpec, PipelinesFile};

/// The text of one configuration file, after `${env:...}` interpolation.
#[derive(Debug)]
pub struct SourceFile {
    pub path: PathBuf,
    pub text: String,
}

impl SourceFile {
    pub fn location(&self, line: Option<usize>) -> Location {
        Location::new(&self.path, line)
    }
}

/// One entry of `catalog.yml`: its `type:` and the remaining options.
#[derive(Clone, Debug)]
pub struct CatalogEntry {
    pub name: String,
    pub type_name: String,
    pub options: serde_json::Map<String, Value>,
    pub file: Arc<SourceFile>,
    pub location: Location,
}

impl CatalogEntry {
    /// Location of one option of this entry, for errors about it.
    pub fn option_location(&self, key: &str) -> Location {
        let line = yaml::key_line(&self.file.text, &[&self.name, key]).or(self.location.line);
        Location::new(&self.file.path, line)
    }
}

/// A pipeline definition together with the file it came from.
#[derive(Debug)]
pub struct PipelineDef {
    pub spec: PipelineSpec,
    pub file: Arc<SourceFile>,
}

/// Everything read from a project directory for one `--env`.
#[derive(Debug)]
pub struct ProjectConfig {
    pub root: PathBuf,
    pub env: Option<String>,
    pub parameters: Value,
    /// Where the parameters came from, to say where one is written.
    pub parameter_sources: ParameterSources,
    pub catalog: BTreeMap<String, CatalogEntry>,
    pub pipelines: BTreeMap<String, PipelineDef>,
    pub credentials: Value,
}

/// The files the parameters came from, in merge order (a later one wins),
/// and the `--params` items, which win over every file.
#[derive(Clone, Debug, Default)]
pub struct ParameterSources {
    pub files: Vec<Arc<SourceFile>>,
    pub overrides: Vec<String>,
    /// Named when no file holds the parameters.
    pub default_file: PathBuf,
}

impl ParameterSources {
    /// Where the parameter `params:a.b` (or `parameters`) is written: `--params`
    /// when given there, else the last parameter file holding it, with its line.
    pub fn location(&self, name: &str) -> Location {
        let key = name.strip_prefix("params:").unwrap_or("");
        let given = |item: &str| {
            item.split(',')
                .filter_map(|kv| kv.split_once('=').map(|(k, _)| k.trim()))
                .any(|k| {
                    // the parameter itself, a part of it, or a whole it is part of
                    !key.is_empty()
                        && (k == key
                            || k.starts_with(&format!("{key}."))
                            || key.starts_with(&format!("{k}.")))
                })
        };
        if self.overrides.iter().any(|item| given(item)) {
            return Location::new("--params", None);
        }
        let path: Vec<&str> = key.split('.').filter(|p| !p.is_empty()).collect();
        for file in self.files.iter().rev() {
            if path.is_empty() {
                return file.location(None);
            }
            if let Some(line) = yaml::key_line(&file.text, &path) {
                return file.location(Some(line));
            }
        }
        match self.files.last() {
            Some(file) => file.location(None),
            None => Location::new(&self.default_file, None),
        }
    }
}

/// How to load a project.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    pub env: Option<String>,
    /// `--params` items, `a.b=3,c=x`.
    pub param_overrides: Vec<String>,
}

impl ProjectConfig {
    pub fn load(root: &Path, options: &LoadOptions) -> Result<Self, Error> {
        if !root.is_dir() {
            return Err(Error::config(
                Location::new(root, None),
                "project directory not found",
            ));
        }
        let mut layers = vec![root.to_path_buf()];
        if let Some(env) = &options.env {
            let dir = root.join("conf").join(env);
            if !dir.is_dir() {
                return Err(Error::config(
                    Location::new(&dir, None),
                    format!("environment '{env}' not found (expected the folder conf/{env}/)"),
                ));
            }
            layers.push(dir);
        }

        let mut config = ProjectConfig {
            root: root.to_path_buf(),
            env: options.env.clone(),
            parameters: Value::Object(Default::default()),
            parameter_sources: ParameterSources {
                default_file: root.join("parameters.yml"),
                ..ParameterSources::default()
            },
            catalog: BTreeMap::new(),
            pipelines: BTreeMap::new(),
            credentials: Value::Object(Default::default()),
        };
        let mut found_pipelines = false;
        for (depth, dir) in layers.iter().enumerate() {
            // The root holds exactly the three files; an environment folder may
            // split them (`catalog_models.yml`), as Kedro's `catalog*` patterns allow.
            let overlay = depth > 0;
            for file in config_files(dir, "parameters", overlay)? {
                let value = parse_tree(&file)?;
                params::deep_merge(&mut config.parameters, value);
                config.parameter_sources.files.push(file);
            }
            for file in config_files(dir, "catalog", overlay)? {
                config.add_catalog(file)?;
            }
            for file in config_files(dir, "pipelines", overlay)? {
                found_pipelines = true;
                config.add_pipelines(file)?;
            }
            if overlay {
                for file in config_files(dir, "credentials", overlay)? {
                    let value = parse_tree(&file)?;
                    params::deep_merge(&mut config.credentials, value);
                }
            }
        }
        if !found_pipelines {
            return Err(Error::config(
                Location::new(display_path(&root.join("pipelines.yml")), None),
                "no pipelines.yml in the project directory (use --project-dir to point at a project)",
            ));
        }
        for (key, value) in params::parse_overrides(&options.param_overrides)? {
            params::set(&mut config.parameters, &key, value);
        }
        config.parameter_sources.overrides = options.param_overrides.clone();
        Ok(config)
    }

    fn add_catalog(&mut self, file: Arc<SourceFile>) -> Result<(), Error> {
        let mapping: serde_yaml::Mapping = match serde_yaml::from_str(&file.text) {
            Ok(serde_yaml::Value::Null) => return Ok(()),
            Err(_) if file.text.trim().is_empty() => return Ok(()),
            Ok(serde_yaml::Value::Mapping(m)) => m,
            Ok(_) => {
                return Err(Error::config(
                    file.location(Some(1)),
                    "the catalog must be a mapping of dataset names to entries",
                ))
            }
            Err(e) => return Err(yaml::yaml_error(&file.path, &e)),
        };
        for (key, value) in mapping {
            let name = yaml_key(&key, &file)?;
            if name.starts_with('_') {
                continue; // YAML anchors live under `_name` keys, as in Kedro.
            }
            let location = file.location(yaml::key_line(&file.text, &[&name]));
            let options = match serde_json::to_value(&value) {
                Ok(Value::Object(map)) => map,
                _ => {
                    return Err(Error::config(
                        location,
                        format!("catalog entry '{name}' must be a mapping with a `type:`"),
                    ))
                }
            };
            let mut options = options;
            let type_name = match options.remove("type") {
                Some(Value::String(t)) => t,
                _ => {
                    return Err(Error::config(
                        location,
                        format!("catalog entry '{name}' has no `type:` (for example `type: json.JSONDataset`)"),
                    ))
                }
            };
            self.catalog.insert(
                name.clone(),
                CatalogEntry {
                    name,
                    type_name,
                    options,
                    file: Arc::clone(&file),
                    location,
                },
            );
        }
        Ok(())
    }

    fn add_pipelines(&mut self, file: Arc<SourceFile>) -> Result<(), Error> {
        if file.text.trim().is_empty() {
            return Ok(());
        }
        // Deserialised while it is parsed: a document of thousands of nodes
        // never exists as a whole tree or event list. The file is the
        // project's own, so no budget caps its size. YAML 1.2's core schema,
        // as serde_yaml reads the other files: `y`, `no`, `0755` are names.
        let options = serde_saphyr::options! {
            budget: None,
            with_snippet: false,
            strict_booleans: true,
            legacy_octal_numbers: false,
            angle_conversions: false,
        };
        let parsed: PipelinesFile = serde_saphyr::from_str_with_options(&file.text, options)
            .map_err(|e| yaml::saphyr_error(&file.path, &e))?;
        for (name, spec) in parsed.pipelines {
            self.pipelines.insert(
                name,
                PipelineDef {
                    spec,
                    file: Arc::clone(&file),
                },
            );
        }
        Ok(())
    }
}

fn yaml_key(key: &serde_yaml::Value, file: &SourceFile) -> Result<String, Error> {
    match key {
        serde_yaml::Value::String(s) => Ok(s.clone()),
        other => Err(Error::config(
            file.location(None),
            format!("keys must be strings, found {other:?}"),
        )),
    }
}

/// Parses a file into a JSON tree (parameters, credentials).
fn parse_tree(file: &SourceFile) -> Result<Value, Error> {
    let yaml: serde_yaml::Value =
        serde_yaml::from_str(&file.text).map_err(|e| yaml::yaml_error(&file.path, &e))?;
    let value = serde_json::to_value(yaml)
        .map_err(|e| Error::config(file.location(None), e.to_string()))?;
    match value {
        Value::Null => Ok(Value::Object(Default::default())),
        Value::Object(_) => Ok(value),
        _ => Err(Error::config(
            file.location(Some(1)),
            "the file must hold a mapping at its top level",
        )),
    }
}

/// `./catalog.yml` reads better as `catalog.yml` in messages.
fn display_path(path: &Path) -> PathBuf {
    path.strip_prefix(".").unwrap_or(path).to_path_buf()
}

/// The files of one kind in a folder: `<stem>.yml` at the root; `<stem>*.yml`
/// (and `.yaml`) in an environment folder, sorted by name.
fn config_files(dir: &Path, stem: &str, overlay: bool) -> Result<Vec<Arc<SourceFile>>, Error> {
    let mut paths: Vec<PathBuf> = if overlay {
        let entries = std::fs::read_dir(dir)
            .map_err(|e| Error::config(Location::new(dir, None), e.to_string()))?;
        entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                name.starts_with(stem) && (name.ends_with(".yml") || name.ends_with(".yaml"))
            })
            .collect()
    } else {
        [format!("{stem}.yml"), format!("{stem}.yaml")]
            .iter()
            .map(|n| dir.join(n))
            .filter(|p| p.is_file())
            .take(1)
            .collect()
    };
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let shown = display_path(&path);
            let raw = std::fs::read_to_string(&path)
                .map_err(|e| Error::config(Location::new(&shown, None), e.to_string()))?;
            let text = yaml::interpolate_env(&raw, &shown)?;
            Ok(Arc::new(SourceFile { path: shown, text }))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn project(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            let path = dir.path().join(name);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, text).unwrap();
        }
        dir
    }

    const PIPES: &str = "pipelines:\n  p:\n    nodes:\n      - func: noop\n";

    #[test]
    fn loads_and_overlays_an_environment() {
        let dir = project(&[
            ("pipelines.yml", PIPES),
            ("parameters.yml", "a: {b: 1, c: 2}\n"),
            (
                "catalog.yml",
                "x:\n  type: json.JSONDataset\n  filepath: a.json\n_anchor: 1\n",
            ),
            ("conf/prod/parameters.yml", "a: {c: 3}\n"),
            (
                "conf/prod/catalog_extra.yml",
                "y:\n  type: text.TextDataset\n  filepath: y.txt\n",
            ),
            ("conf/prod/credentials.yml", "s3: {key: k}\n"),
        ]);
        let options = LoadOptions {
            env: Some("prod".into()),
            param_overrides: vec!["a.b=5".into()],
        };
        let config = ProjectConfig::load(dir.path(), &options).unwrap();
        assert_eq!(
            config.parameters,
            serde_json::json!({"a": {"b": 5, "c": 3}})
        );
        assert_eq!(
            config.catalog.keys().collect::<Vec<_>>(),
            vec!["x", "y"],
            "anchors are skipped"
        );
        assert_eq!(config.catalog["x"].type_name, "json.JSONDataset");
        assert_eq!(config.catalog["x"].location.line, Some(1));
        assert_eq!(
            config.catalog["x"].option_location("filepath").line,
            Some(3)
        );
        assert_eq!(config.credentials["s3"]["key"], "k");
        assert!(config.pipelines.contains_key("p"));
    }

    #[test]
    fn parameters_are_located_in_the_last_file_or_on_the_command_line() {
        let dir = project(&[
            ("pipelines.yml", PIPES),
            ("parameters.yml", "a:\n  b: 1\nc: 2\n"),
            ("conf/dev/parameters.yml", "x: 0\nc: 3\n"),
        ]);
        let options = LoadOptions {
            env: Some("dev".into()),
            param_overrides: vec!["a.b=5".into()],
        };
        let config = ProjectConfig::load(dir.path(), &options).unwrap();
        let at = |name: &str| config.parameter_sources.location(name).to_string();
        assert!(
            at("params:c").ends_with("conf/dev/parameters.yml:2"),
            "{}",
            at("params:c")
        );
        assert_eq!(at("params:a.b"), "--params");
        assert_eq!(at("params:a"), "--params");
        assert!(
            at("params:x").ends_with("conf/dev/parameters.yml:1"),
            "{}",
            at("params:x")
        );
        let no_override = ProjectConfig::load(dir.path(), &LoadOptions::default()).unwrap();
        let at = |name: &str| no_override.parameter_sources.location(name).to_string();
        assert!(
            at("params:a.b").ends_with("parameters.yml:2"),
            "{}",
            at("params:a.b")
        );
        assert!(
            at("parameters").ends_with("parameters.yml"),
            "{}",
            at("parameters")
        );
    }

    #[test]
    fn pipeline_names_that_yaml_1_1_would_read_as_other_types_stay_names() {
        let dir = project(&[(
            "pipelines.yml",
            "pipelines:\n  p:\n    nodes:\n      - {func: noop, inputs: y, outputs: [no, on, '0755']}\n",
        )]);
        let config = ProjectConfig::load(dir.path(), &LoadOptions::default()).unwrap();
        let node = &config.pipelines["p"].spec.nodes[0];
        assert_eq!(node.inputs.datasets(), ["y"]);
        assert_eq!(node.outputs.datasets(), ["no", "on", "0755"]);
    }

    #[test]
    fn errors_name_file_and_line() {
        let dir = project(&[(
            "pipelines.yml",
            "pipelines:\n  p:\n    nodes:\n      - fnc: noop\n",
        )]);
        let err = ProjectConfig::load(dir.path(), &LoadOptions::default()).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("pipelines.yml:4"), "{text}");
        assert!(text.contains("unknown field `fnc`"), "{text}");

        let dir = project(&[
            ("pipelines.yml", PIPES),
            ("catalog.yml", "x:\n  filepath: a\n"),
        ]);
        let err = ProjectConfig::load(dir.path(), &LoadOptions::default()).unwrap_err();
        assert!(err
            .to_string()
            .contains("catalog.yml:1: catalog entry 'x' has no `type:`"));

        let dir = project(&[("pipelines.yml", PIPES), ("catalog.yml", "x: 3\n")]);
        let err = ProjectConfig::load(dir.path(), &LoadOptions::default()).unwrap_err();
        assert!(err.to_string().contains("must be a mapping"), "{err}");

        let dir = project(&[("pipelines.yml", PIPES), ("parameters.yml", "- 1\n")]);
        let err = ProjectConfig::load(dir.path(), &LoadOptions::default()).unwrap_err();
        assert!(
            err.to_string().contains("mapping at its top level"),
            "{err}"
        );

        let dir = project(&[("catalog.yml", "")]);
        let err = ProjectConfig::load(dir.path(), &LoadOptions::default()).unwrap_err();
        assert!(err.to_string().contains("no pipelines.yml"), "{err}");

        let dir = project(&[("pipelines.yml", PIPES)]);
        let options = LoadOptions {
            env: Some("nope".into()),
            ..Default::default()
        };
        let err = ProjectConfig::load(dir.path(), &options).unwrap_err();
        assert!(
            err.to_string().contains("environment 'nope' not found"),
            "{err}"
        );
        let err =
            ProjectConfig::load(&dir.path().join("missing"), &LoadOptions::default()).unwrap_err();
        assert_eq!(err.exit_code(), 2);
    }
}
