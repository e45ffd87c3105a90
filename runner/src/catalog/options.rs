//! Reading the options of a catalog entry, with errors that point into the file.

use std::path::Path;

use serde_json::{Map, Value};

use super::storage::{FileLocation, Versions};
use super::DatasetTypes;
use crate::config::CatalogEntry;
use crate::error::Error;

/// The options of one catalog entry, consumed key by key; whatever is left
/// at the end is an unknown key and an error.
pub struct EntryOptions<'a> {
    pub entry: &'a CatalogEntry,
    pub root: &'a Path,
    pub versions: &'a Versions,
    /// Every registered type, for datasets made of other datasets.
    pub types: &'a DatasetTypes,
    /// `credentials.yml` of the project and its environment.
    pub credentials: &'a Value,
    rest: Map<String, Value>,
}

impl<'a> EntryOptions<'a> {
    pub fn new(
        entry: &'a CatalogEntry,
        root: &'a Path,
        versions: &'a Versions,
        types: &'a DatasetTypes,
        credentials: &'a Value,
    ) -> Self {
        EntryOptions {
            entry,
            root,
            versions,
            types,
            credentials,
            rest: entry.options.clone(),
        }
    }

    /// An option's value without taking it.
    pub fn rest_value(&self, key: &str) -> Option<Value> {
        self.rest.get(key).cloned()
    }

    /// The entry's `credentials: NAME`, looked up in `credentials.yml`.
    pub fn credentials(&mut self) -> Result<Option<Value>, Error> {
        let Some(name) = self.take("credentials") else {
            return Ok(None);
        };
        let Some(name) = name.as_str().map(String::from) else {
            return Err(self.error(
                "credentials",
                "credentials must name an entry of credentials.yml",
            ));
        };
        match self.credentials.get(&name) {
            Some(value) => Ok(Some(value.clone())),
            None => Err(self.error(
                "credentials",
                format!("no '{name}' in credentials.yml (conf/<env>/credentials.yml or conf/local/credentials.yml)"),
            )),
        }
    }

    /// Takes an option as it is (any YAML value).
    pub fn take(&mut self, key: &str) -> Option<Value> {
        self.rest.remove(key)
    }

    /// Reads `filepath` and `versioned` into a location (for dataset types
    /// that support versioning).
    pub fn file_location(&mut self) -> Result<FileLocation, Error> {
        let filepath = self.required_str("filepath")?;
        let credentials = self.credentials()?;
        let location = FileLocation::resolve_with(
            &self.entry.name,
            &filepath,
            self.root,
            &self.entry.location,
            credentials.as_ref(),
        )?;
        Ok(match self.bool_or("versioned", false)? {
            true => location.versioned(self.versions),
            false => location,
        })
    }

    /// Reads `filepath` (and `credentials`) without versioning: folder
    /// datasets and files read by other programs, which work on a local copy
    /// ([`FileLocation::local_copy`]) when the data is in an object store.
    pub fn unversioned_location(&mut self) -> Result<FileLocation, Error> {
        let filepath = self.required_str("filepath")?;
        let credentials = self.credentials()?;
        FileLocation::resolve_with(
            &self.entry.name,
            &filepath,
            self.root,
            &self.entry.location,
            credentials.as_ref(),
        )
    }

    /// Reads `filepath` as a local path only.
    pub fn local_location(&mut self) -> Result<FileLocation, Error> {
        let filepath = self.required_str("filepath")?;
        let location =
            FileLocation::resolve(&self.entry.name, &filepath, self.root, &self.entry.location)?;
        if location.is_remote() {
            return Err(self.error(
                "filepath",
                format!(
                    "{} needs a local path or file:// (object stores hold single files)",
                    self.entry.type_name
                ),
            ));
        }
        Ok(location)
    }

    pub fn error(&self, key: &str, message: impl Into<String>) -> Error {
        Error::config(
            self.entry.option_location(key),
            format!("dataset '{}': {}", self.entry.name, message.into()),
        )
    }

    pub fn required_str(&mut self, key: &str) -> Result<String, Error> {
        match self.rest.remove(key) {
            Some(Value::String(s)) => Ok(s),
            Some(_) => Err(self.error(key, format!("`{key}` must be a string"))),
            None => Err(Error::config(
                self.entry.location.clone(),
                format!(
                    "dataset '{}' ({}) needs `{key}:`",
                    self.entry.name, self.entry.type_name
                ),
            )),
        }
    }

    /// A string option; `None` when absent.
    pub fn optional_str(&mut self, key: &str) -> Result<Option<String>, Error> {
        match self.rest.remove(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(self.error(key, format!("`{key}` must be a string"))),
        }
    }

    pub fn bool_or(&mut self, key: &str, default: bool) -> Result<bool, Error> {
        match self.rest.remove(key) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::Bool(b)) => Ok(b),
            Some(_) => Err(self.error(key, format!("`{key}` must be true or false"))),
        }
    }

    /// A mapping option such as `load_args`; empty when absent.
    pub fn map(&mut self, key: &str) -> Result<Args<'a>, Error> {
        let map = match self.rest.remove(key) {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) => m,
            Some(_) => return Err(self.error(key, format!("`{key}` must be a mapping"))),
        };
        Ok(Args {
            entry: self.entry,
            key: key.to_string(),
            rest: map,
        })
    }

    /// Ends reading: `metadata` is free-form; anything else unread is unknown.
    pub fn finish(mut self, allowed: &[&str]) -> Result<(), Error> {
        self.rest.remove("metadata");
        if let Some(key) = self.rest.keys().next().cloned() {
            let mut known: Vec<&str> = allowed.to_vec();
            known.push("metadata");
            return Err(self.error(
                &key,
                format!(
                    "unknown key `{key}` for {} (known keys: type, {})",
                    self.entry.type_name,
                    known.join(", ")
                ),
            ));
        }
        Ok(())
    }
}

/// `load_args` / `save_args`: options handed to the underlying reader or writer.
pub struct Args<'a> {
    entry: &'a CatalogEntry,
    key: String,
    rest: Map<String, Value>,
}

impl Args<'_> {
    fn error(&self, message: String) -> Error {
        Error::config(
            self.entry.option_location(&self.key),
            format!("dataset '{}': {}.{message}", self.entry.name, self.key),
        )
    }

    pub fn bool(&mut self, key: &str) -> Result<Option<bool>, Error> {
        match self.rest.remove(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(_) => Err(self.error(format!("{key} must be true or false"))),
        }
    }

    pub fn string(&mut self, key: &str) -> Result<Option<String>, Error> {
        match self.rest.remove(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(self.error(format!("{key} must be a string"))),
        }
    }

    pub fn byte(&mut self, key: &str) -> Result<Option<u8>, Error> {
        match self.string(key)? {
            None => Ok(None),
            Some(s) if s.len() == 1 => Ok(Some(s.as_bytes()[0])),
            Some(s) => Err(self.error(format!("{key} must be one ASCII character, not '{s}'"))),
        }
    }

    pub fn finish(self) -> Result<(), Error> {
        match self.rest.keys().next() {
            Some(key) => Err(self.error(format!("{key} is not a supported argument"))),
            None => Ok(()),
        }
    }
}
