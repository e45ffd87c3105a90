//! Object stores behind `filepath` URLs, through the `object_store` crate:
//! `s3://` (credentials from `AWS_*` variables or the entry's `credentials`,
//! any S3-compatible server through `endpoint`), `gs://`, `az://`,
//! `http(s)://` (read-only) and `memory://` (one store per process, shared
//! by every dataset that names it: handy in tests and for scratch data).
//!
//! The runner is synchronous; each call blocks on a small shared runtime.
//! Object stores write whole objects atomically, so a save is one `put`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use object_store::memory::InMemory;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde_json::Value;

/// One object store, and the path of a dataset in it.
#[derive(Clone)]
pub struct Remote {
    store: Arc<dyn ObjectStore>,
    /// The dataset's object (or, when versioned, the prefix of its versions).
    pub path: ObjectPath,
    /// `http(s)://` stores are read-only.
    pub read_only: bool,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Remote({}, {})", self.store, self.path)
    }
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("roadsign-object-store")
            .enable_all()
            .build()
            .expect("a tokio runtime for object stores")
    })
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    runtime().block_on(future)
}

/// `memory://NAME/...`: one in-memory store per NAME for the process.
fn memory_store(name: &str) -> Arc<dyn ObjectStore> {
    static STORES: OnceLock<Mutex<HashMap<String, Arc<InMemory>>>> = OnceLock::new();
    let mut stores = STORES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    stores
        .entry(name.to_string())
        .or_insert_with(|| Arc::new(InMemory::new()))
        .clone()
}

/// The options of a credentials entry, as `object_store` config keys.
/// Kedro-style names are accepted too (`key`, `secret`, `client_kwargs`...).
fn credential_options(credentials: Option<&Value>) -> Vec<(String, String)> {
    let Some(Value::Object(map)) = credentials else {
        return Vec::new();
    };
    map.iter()
        .filter_map(|(k, v)| {
            let value = match v {
                Value::String(s) => s.clone(),
                Value::Bool(b) => b.to_string(),
                Value::Number(n) => n.to_string(),
                _ => return None,
            };
            let key = match k.as_str() {
                "key" | "access_key_id" | "aws_access_key_id" => "aws_access_key_id",
                "secret" | "secret_access_key" | "aws_secret_access_key" => "aws_secret_access_key",
                "token" | "session_token" | "aws_session_token" => "aws_session_token",
                "endpoint" | "endpoint_url" | "aws_endpoint" => "aws_endpoint",
                "region" | "aws_region" => "aws_region",
                other => other,
            };
            Some((key.to_string(), value))
        })
        .collect()
}

/// Why an object store refused.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error("not a URL: {0}")]
    Url(#[from] url::ParseError),
    #[error(transparent)]
    Path(#[from] object_store::path::Error),
    #[error(transparent)]
    Store(#[from] object_store::Error),
    #[error("{store} is a read-only store")]
    ReadOnly { store: String },
    /// A `create_only` put found the object there (versions are never
    /// overwritten).
    #[error("the object already exists")]
    AlreadyExists,
}

/// The store behind a URL. Options: the process's `AWS_*`, `GOOGLE_*` and
/// `AZURE_*` variables, overridden by the entry's credentials; an `http://`
/// endpoint is allowed (S3-compatible servers on loopback or a LAN).
pub fn open(url: &str, credentials: Option<&Value>) -> Result<Remote, RemoteError> {
    let parsed = url::Url::parse(url)?;
    if parsed.scheme() == "memory" {
        let name = parsed.host_str().unwrap_or("").to_string();
        let path = ObjectPath::from_url_path(parsed.path())?;
        return Ok(Remote {
            store: memory_store(&name),
            path,
            read_only: false,
        });
    }
    let mut options: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| {
            k.starts_with("AWS_") || k.starts_with("GOOGLE_") || k.starts_with("AZURE_")
        })
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect();
    options.extend(credential_options(credentials));
    let endpoint_is_http = options
        .iter()
        .any(|(k, v)| k.starts_with("aws_endpoint") && v.starts_with("http://"));
    if endpoint_is_http && !options.iter().any(|(k, _)| k == "aws_allow_http") {
        options.push(("aws_allow_http".into(), "true".into()));
    }
    let read_only = matches!(parsed.scheme(), "http" | "https");
    let (store, path) = object_store::parse_url_opts(&parsed, options)?;
    Ok(Remote {
        store: Arc::from(store),
        path,
        read_only,
    })
}

/// A listed object path (percent-encoded by `object_store`) as file names.
pub fn decode_path(encoded: &str) -> String {
    percent_encoding::percent_decode_str(encoded)
        .decode_utf8_lossy()
        .into_owned()
}

/// What is known of a stored object.
#[derive(Clone, Debug, PartialEq)]
pub struct ObjectInfo {
    pub size: u64,
    pub e_tag: Option<String>,
    pub last_modified: String,
}

fn is_not_found(e: &object_store::Error) -> bool {
    matches!(e, object_store::Error::NotFound { .. })
}

impl Remote {
    /// The object at `suffix` under this location (`""`: the location itself).
    pub fn child(&self, parts: &[&str]) -> ObjectPath {
        parts
            .iter()
            .fold(self.path.clone(), |p, part| p.clone().join(*part))
    }

    pub fn get(&self, path: &ObjectPath) -> Result<Vec<u8>, RemoteError> {
        block_on(async {
            let result = self.store.get(path).await?;
            let bytes = result.bytes().await?;
            Ok(bytes.to_vec())
        })
    }

    fn refuse_if_read_only(&self) -> Result<(), RemoteError> {
        match self.read_only {
            true => Err(RemoteError::ReadOnly {
                store: self.store.to_string(),
            }),
            false => Ok(()),
        }
    }

    /// Writes the whole object at once; with `create_only`, refuses to
    /// replace an existing one (versions are never overwritten).
    pub fn put(
        &self,
        path: &ObjectPath,
        bytes: Vec<u8>,
        create_only: bool,
    ) -> Result<(), RemoteError> {
        self.refuse_if_read_only()?;
        let options = PutOptions {
            mode: if create_only {
                PutMode::Create
            } else {
                PutMode::Overwrite
            },
            ..PutOptions::default()
        };
        match block_on(self.store.put_opts(path, PutPayload::from(bytes), options)) {
            Ok(_) => Ok(()),
            Err(object_store::Error::AlreadyExists { .. }) => Err(RemoteError::AlreadyExists),
            Err(e) => Err(e.into()),
        }
    }

    /// The object's metadata, `None` when there is none.
    pub fn head(&self, path: &ObjectPath) -> Result<Option<ObjectInfo>, RemoteError> {
        match block_on(self.store.head(path)) {
            Ok(meta) => Ok(Some(ObjectInfo {
                size: meta.size,
                e_tag: meta.e_tag,
                last_modified: meta.last_modified.to_rfc3339(),
            })),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Every object under `prefix`, as paths relative to it, sorted.
    pub fn list_files(
        &self,
        prefix: &ObjectPath,
    ) -> Result<Vec<(String, ObjectInfo, ObjectPath)>, RemoteError> {
        let mut out = Vec::new();
        let mut pending = vec![prefix.clone()];
        while let Some(dir) = pending.pop() {
            let listed = block_on(self.store.list_with_delimiter(Some(&dir)))?;
            pending.extend(listed.common_prefixes);
            for meta in listed.objects {
                let rel: Vec<String> = meta
                    .location
                    .prefix_match(prefix)
                    .map(|parts| parts.map(|p| p.as_ref().to_string()).collect())
                    .unwrap_or_default();
                out.push((
                    rel.join("/"),
                    ObjectInfo {
                        size: meta.size,
                        e_tag: meta.e_tag,
                        last_modified: meta.last_modified.to_rfc3339(),
                    },
                    meta.location,
                ));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    pub fn delete(&self, path: &ObjectPath) -> Result<(), RemoteError> {
        self.refuse_if_read_only()?;
        match block_on(self.store.delete(path)) {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The names of the "folders" right under `prefix`.
    pub fn list_folders(&self, prefix: &ObjectPath) -> Result<Vec<String>, RemoteError> {
        let listed = block_on(self.store.list_with_delimiter(Some(prefix)))?;
        let mut names: Vec<String> = listed
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(String::from))
            .collect();
        names.sort();
        Ok(names)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_stores_are_shared_by_name_and_hold_objects() {
        let a = open("memory://unit-a/x/data.json", None).unwrap();
        let b = open("memory://unit-a/x/data.json", None).unwrap();
        let other = open("memory://unit-b/x/data.json", None).unwrap();
        assert_eq!(a.head(&a.path).unwrap(), None);
        a.put(&a.path, b"{}".to_vec(), false).unwrap();
        assert_eq!(b.get(&b.path).unwrap(), b"{}");
        assert_eq!(b.head(&b.path).unwrap().unwrap().size, 2);
        assert_eq!(other.head(&other.path).unwrap(), None);
        // create_only refuses to replace.
        assert!(matches!(
            a.put(&a.path, b"[]".to_vec(), true),
            Err(RemoteError::AlreadyExists)
        ));
        let v = a.child(&["2026-01-01T00.00.00.000Z", "f.json"]);
        a.put(&v, b"1".to_vec(), true).unwrap();
        assert_eq!(
            a.list_folders(&a.path).unwrap(),
            ["2026-01-01T00.00.00.000Z"]
        );
        let files: Vec<String> = a
            .list_files(&a.path)
            .unwrap()
            .into_iter()
            .map(|f| f.0)
            .collect();
        assert_eq!(files, ["2026-01-01T00.00.00.000Z/f.json"]);
        a.delete(&v).unwrap();
        assert!(a.list_files(&a.path).unwrap().is_empty());
    }

    #[test]
    fn http_stores_are_read_only_and_credentials_map_to_store_keys() {
        let r = open("https://example.org/data/a.csv", None).unwrap();
        assert!(r.read_only);
        let refused = r.put(&r.path, vec![1], false).unwrap_err();
        assert!(matches!(refused, RemoteError::ReadOnly { .. }), "{refused}");
        assert!(refused.to_string().contains("read-only"));
        let creds =
            serde_json::json!({"key": "k", "secret": "s", "endpoint": "http://127.0.0.1:9"});
        let options = credential_options(Some(&creds));
        assert!(options.contains(&("aws_access_key_id".into(), "k".into())));
        assert!(options.contains(&("aws_secret_access_key".into(), "s".into())));
        assert!(options.contains(&("aws_endpoint".into(), "http://127.0.0.1:9".into())));
        assert!(open("not a url", None).is_err());
    }
}
