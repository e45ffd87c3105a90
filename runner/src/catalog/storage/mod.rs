//! Where file-backed datasets live, and how they are written safely.
//!
//! Every file dataset reads and writes bytes through a [`FileLocation`] and
//! nothing else. Its methods choose the backend, once each: `local` (paths
//! and `file://` URLs; atomic writes: temporary file + rename) or `object`
//! (object stores: `s3://`, `gs://`, `az://`, `http(s)://` read-only,
//! `memory://`; see [`super::remote`]); `version` is the policy of
//! versioned datasets, the same for both. A folder (image set, partitions)
//! is replaced atomically only locally; an object store gets it object by
//! object.

mod local;
mod object;
mod version;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Location};
use crate::function::BoxError;
use version::Versioning;
pub use version::{timestamp_version, Versions};

#[derive(Clone, Debug)]
pub struct FileLocation {
    /// The catalog name, for error messages.
    dataset: String,
    /// The file; for a versioned dataset, the folder of its versions.
    path: PathBuf,
    /// As written in the catalog, for display.
    written: String,
    versioning: Option<Arc<Versioning>>,
    /// The object store, for a URL that names one.
    remote: Option<super::remote::Remote>,
}

impl FileLocation {
    /// Resolves a catalog `filepath` against the project root.
    pub fn resolve(
        dataset: &str,
        filepath: &str,
        root: &Path,
        at: &Location,
    ) -> Result<Self, Error> {
        Self::resolve_with(dataset, filepath, root, at, None)
    }

    /// As [`FileLocation::resolve`], with the entry's credentials for
    /// object stores.
    pub fn resolve_with(
        dataset: &str,
        filepath: &str,
        root: &Path,
        at: &Location,
        credentials: Option<&serde_json::Value>,
    ) -> Result<Self, Error> {
        let local = match filepath.split_once("://") {
            None => filepath,
            Some(("file", rest)) => rest,
            Some((scheme, _)) => {
                const STORES: [&str; 8] =
                    ["s3", "s3a", "gs", "az", "abfs", "http", "https", "memory"];
                if !STORES.contains(&scheme) {
                    return Err(Error::config(
                        at.clone(),
                        format!("dataset '{dataset}': unknown store '{scheme}://' (known: file, s3, gs, az, http, https, memory)"),
                    ));
                }
                let remote = super::remote::open(filepath, credentials).map_err(|e| {
                    Error::config(at.clone(), format!("dataset '{dataset}': {filepath}: {e}"))
                })?;
                return Ok(FileLocation {
                    dataset: dataset.to_string(),
                    path: PathBuf::from(filepath),
                    written: filepath.to_string(),
                    versioning: None,
                    remote: Some(remote),
                });
            }
        };
        if local.is_empty() {
            return Err(Error::config(
                at.clone(),
                format!("dataset '{dataset}': empty filepath"),
            ));
        }
        let path = Path::new(local);
        let path = if path.is_absolute() {
            path.to_path_buf()
        } else {
            root.join(path)
        };
        Ok(FileLocation {
            dataset: dataset.to_string(),
            path,
            written: filepath.to_string(),
            versioning: None,
            remote: None,
        })
    }

    /// Whether the data lives in an object store.
    pub fn is_remote(&self) -> bool {
        self.remote.is_some()
    }

    /// Whether saves are impossible (`http(s)://`).
    pub fn is_read_only(&self) -> bool {
        self.remote.as_ref().is_some_and(|r| r.read_only)
    }

    /// A local path holding what a load reads: the path itself for local
    /// data; for an object store, the object, or every object under the
    /// prefix, downloaded into a cache folder (under the system's temporary
    /// folder, one per URL and version) that outlives the load, since some
    /// datasets read their files lazily.
    pub fn local_copy(&self) -> Result<PathBuf, Error> {
        match &self.remote {
            Some(remote) => self.object_copy(remote),
            None => self.read_path(),
        }
    }

    fn remote_error(&self, what: &str, err: impl std::fmt::Display) -> Error {
        Error::dataset(&self.dataset, format!("{what} {}: {err}", self.written))
    }

    /// Makes the location versioned with the run's versions.
    pub fn versioned(mut self, versions: &Versions) -> Self {
        let file_name = self
            .path
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_default();
        self.versioning = Some(Arc::new(Versioning::new(
            &self.dataset,
            file_name,
            versions,
        )));
        self
    }

    pub fn is_versioned(&self) -> bool {
        self.versioning.is_some()
    }

    /// The file, or for a versioned dataset the folder of its versions.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn display(&self) -> String {
        match self.versioning {
            Some(_) => format!("{} (versioned)", self.written),
            None => self.written.clone(),
        }
    }

    /// Saved versions that hold the file, oldest first.
    pub fn versions(&self) -> Vec<String> {
        let Some(v) = &self.versioning else {
            return Vec::new();
        };
        match &self.remote {
            Some(remote) => Self::object_versions(remote),
            None => self.local_versions(v),
        }
    }

    pub fn exists(&self) -> bool {
        match &self.remote {
            Some(remote) => self.object_exists(remote),
            None => self.local_exists(),
        }
    }

    fn error(&self, what: &str, err: impl std::fmt::Display) -> Error {
        let path = self.read_path().unwrap_or_else(|_| self.path.clone());
        Error::dataset(&self.dataset, format!("{what} {}: {err}", path.display()))
    }

    /// The fingerprint of what a load would read (file or folder); `None`
    /// when nothing is stored yet.
    pub fn fingerprint(&self) -> Result<Option<String>, Error> {
        match &self.remote {
            Some(remote) => self.object_fingerprint(remote),
            None => self.local_fingerprint(),
        }
    }

    /// The size of the file a load would read.
    pub fn size_bytes(&self) -> Option<u64> {
        match &self.remote {
            Some(remote) => self.object_size(remote),
            None => self.local_size(),
        }
    }

    pub fn read(&self) -> Result<Vec<u8>, Error> {
        match &self.remote {
            Some(remote) => self.read_object(remote),
            None => self.read_local(),
        }
    }

    pub fn read_string(&self) -> Result<String, Error> {
        match &self.remote {
            Some(remote) => self.read_object_string(remote),
            None => self.read_local_string(),
        }
    }

    /// Writes the file atomically: a temporary file in the same folder, then a
    /// rename, so a crash never leaves a half-written dataset behind (an
    /// object store puts the whole object at once).
    pub fn write_atomic<E: Into<BoxError>>(
        &self,
        write: impl FnOnce(&mut dyn Write) -> Result<(), E>,
    ) -> Result<(), Error> {
        match &self.remote {
            Some(remote) => self.write_object(remote, write),
            None => self.write_local(write),
        }
    }

    /// Lets a writer that needs a file name (a tool such as ffmpeg) fill a
    /// staged file, then commits it as [`FileLocation::write_atomic`] does:
    /// renamed into place, or uploaded whole to an object store. `suffix`
    /// keeps the extension tools read the format from.
    pub fn write_via_path<E: Into<BoxError>>(
        &self,
        suffix: &str,
        fill: impl FnOnce(&Path) -> Result<(), E>,
    ) -> Result<(), Error> {
        match &self.remote {
            Some(remote) => self.write_object_via_path(remote, suffix, fill),
            None => self.write_local_via_path(suffix, fill),
        }
    }

    /// Writes a whole folder: `fill` populates a temporary folder, which then
    /// replaces the target in two renames (atomic), or is uploaded object by
    /// object to an object store (not atomic as a whole).
    pub fn write_dir_atomic<E: Into<BoxError>>(
        &self,
        fill: impl FnOnce(&Path) -> Result<(), E>,
    ) -> Result<(), Error> {
        match &self.remote {
            Some(remote) => self.write_object_folder(remote, fill),
            None => self.write_local_folder(fill),
        }
    }

    /// A parse error that names the dataset and the file.
    pub fn parse_error(&self, err: impl std::fmt::Display) -> Error {
        self.error("cannot parse", err)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::UNIX_EPOCH;

    use super::*;

    #[test]
    fn tools_write_through_a_staged_path_locally_and_to_object_stores() {
        let dir = tempfile::tempdir().unwrap();
        let at = Location::default();
        let tool = |path: &Path| std::fs::write(path, b"clip").map_err(|e| e.to_string());
        let local = FileLocation::resolve("clip", "out/clip.mp4", dir.path(), &at).unwrap();
        local.write_via_path(".mp4", tool).unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("out/clip.mp4")).unwrap(),
            b"clip"
        );
        // nothing staged is left beside the target
        assert_eq!(
            std::fs::read_dir(dir.path().join("out")).unwrap().count(),
            1
        );
        // a failing tool leaves the previous file as it was
        let failed = local.write_via_path(".mp4", |_| Err("ffmpeg failed".to_string()));
        assert!(failed.unwrap_err().to_string().contains("ffmpeg failed"));
        assert_eq!(
            std::fs::read(dir.path().join("out/clip.mp4")).unwrap(),
            b"clip"
        );
        let remote =
            FileLocation::resolve("clip", "memory://unit-tool/clip.mp4", dir.path(), &at).unwrap();
        remote.write_via_path(".mp4", tool).unwrap();
        assert_eq!(remote.read().unwrap(), b"clip");
    }

    #[test]
    fn object_store_locations_save_load_version_and_fingerprint() {
        let at = Location::default();
        let root = Path::new("/proj");
        let versions = Versions {
            save_version: "2026-11-29T00.00.00.000Z".into(),
            load_versions: BTreeMap::new(),
        };
        let plain = FileLocation::resolve("d", "memory://unit-loc/p/a.txt", root, &at).unwrap();
        assert!(!plain.exists());
        assert_eq!(plain.fingerprint().unwrap(), None);
        plain.write_atomic(|w| w.write_all(b"hello")).unwrap();
        assert!(plain.exists());
        assert_eq!(plain.read_string().unwrap(), "hello");
        assert_eq!(plain.size_bytes(), Some(5));
        let first = plain.fingerprint().unwrap().unwrap();
        plain.write_atomic(|w| w.write_all(b"hello!")).unwrap();
        assert_ne!(plain.fingerprint().unwrap().unwrap(), first);

        let versioned = FileLocation::resolve("d", "memory://unit-loc/v/a.txt", root, &at)
            .unwrap()
            .versioned(&versions);
        assert!(versioned
            .read()
            .unwrap_err()
            .to_string()
            .contains("no saved version"));
        versioned.write_atomic(|w| w.write_all(b"v1")).unwrap();
        assert_eq!(versioned.versions(), ["2026-11-29T00.00.00.000Z"]);
        assert_eq!(versioned.read().unwrap(), b"v1");
        // The same version again: refused, never overwritten.
        let again = FileLocation::resolve("d", "memory://unit-loc/v/a.txt", root, &at)
            .unwrap()
            .versioned(&versions);
        let err = again.write_atomic(|w| w.write_all(b"v2")).unwrap_err();
        assert!(err.to_string().contains("never overwritten"), "{err}");
        // A folder: written through a staging folder, read back as a local copy.
        let folder = FileLocation::resolve("f", "memory://unit-loc/set", root, &at).unwrap();
        assert!(!folder.exists());
        let fill = |files: &'static [&'static str]| {
            move |dir: &Path| {
                for f in files {
                    let path = dir.join(f);
                    std::fs::create_dir_all(path.parent().unwrap())?;
                    std::fs::write(path, f.as_bytes())?;
                }
                Ok::<(), std::io::Error>(())
            }
        };
        folder
            .write_dir_atomic(fill(&["images/a.jpg", "data.yaml"]))
            .unwrap();
        assert!(folder.exists());
        folder
            .write_dir_atomic(fill(&["images/b.jpg", "data.yaml"]))
            .unwrap();
        let copy = folder.local_copy().unwrap();
        assert_eq!(
            std::fs::read_to_string(copy.join("images/b.jpg")).unwrap(),
            "images/b.jpg"
        );
        assert!(
            !copy.join("images/a.jpg").exists(),
            "stale objects are removed"
        );
        assert!(folder.fingerprint().unwrap().is_some());
        // Names that object_store percent-encodes survive a round trip and
        // a rewrite (the stale-object sweep compares stored paths).
        let odd = FileLocation::resolve("o", "memory://unit-loc/odd", root, &at).unwrap();
        odd.write_dir_atomic(fill(&["a~b #1.jpg"])).unwrap();
        odd.write_dir_atomic(fill(&["a~b #1.jpg"])).unwrap();
        assert!(odd.local_copy().unwrap().join("a~b #1.jpg").is_file());
        assert_eq!(odd.remote_files().unwrap().unwrap(), ["a~b #1.jpg"]);
        // A folder at a store's root would replace the whole store.
        let bare = FileLocation::resolve("b", "memory://unit-bare", root, &at).unwrap();
        let err = bare.write_dir_atomic(fill(&["x"])).unwrap_err();
        assert!(err.to_string().contains("root"), "{err}");
        let single = plain.local_copy().unwrap();
        assert_eq!(std::fs::read_to_string(single).unwrap(), "hello!");
    }

    #[test]
    fn resolves_paths_and_rejects_unknown_stores() {
        let at = Location::new("catalog.yml", Some(3));
        let root = Path::new("/proj");
        let loc = FileLocation::resolve("d", "data/a.json", root, &at).unwrap();
        assert_eq!(loc.path(), Path::new("/proj/data/a.json"));
        let loc = FileLocation::resolve("d", "file:///tmp/a.json", root, &at).unwrap();
        assert_eq!(loc.path(), Path::new("/tmp/a.json"));
        assert_eq!(loc.display(), "file:///tmp/a.json");
        let err = FileLocation::resolve("d", "ftp://b/k", root, &at).unwrap_err();
        assert!(err
            .to_string()
            .starts_with("catalog.yml:3: dataset 'd': unknown store 'ftp://'"));
        let remote = FileLocation::resolve("d", "memory://unit-storage/a.json", root, &at).unwrap();
        assert!(remote.is_remote() && !remote.is_read_only());
        assert!(FileLocation::resolve("d", "", root, &at).is_err());
    }

    #[test]
    fn writes_atomically_and_keeps_the_old_file_on_failure() {
        let dir = tempfile::tempdir().unwrap();
        let at = Location::default();
        let loc = FileLocation::resolve("d", "sub/x.txt", dir.path(), &at).unwrap();
        loc.write_atomic(|w| w.write_all(b"first")).unwrap();
        assert_eq!(loc.read_string().unwrap(), "first");
        let err = loc
            .write_atomic(|w| {
                w.write_all(b"partial").unwrap();
                Err("boom".to_string())
            })
            .unwrap_err();
        assert!(err.to_string().contains("cannot write"));
        assert_eq!(loc.read_string().unwrap(), "first", "old content kept");
        let leftovers = std::fs::read_dir(dir.path().join("sub")).unwrap().count();
        assert_eq!(leftovers, 1, "no temporary file left behind");
        assert!(loc.exists());
    }

    #[test]
    fn timestamps_sort_and_read_as_dates() {
        let at = UNIX_EPOCH + std::time::Duration::from_millis(1_764_374_399_123);
        assert_eq!(timestamp_version(at), "2025-11-28T23.59.59.123Z");
        assert_eq!(timestamp_version(UNIX_EPOCH), "1970-01-01T00.00.00.000Z");
        let leap = UNIX_EPOCH + std::time::Duration::from_secs(951_782_400);
        assert_eq!(timestamp_version(leap), "2000-02-29T00.00.00.000Z");
    }

    #[test]
    fn versioned_saves_never_overwrite_and_loads_take_the_latest() {
        let dir = tempfile::tempdir().unwrap();
        let at = Location::default();
        let run = |version: &str, pinned: Option<&str>| {
            let versions = Versions {
                save_version: version.to_string(),
                load_versions: pinned
                    .map(|p| ("d".to_string(), p.to_string()))
                    .into_iter()
                    .collect(),
            };
            FileLocation::resolve("d", "m/model.txt", dir.path(), &at)
                .unwrap()
                .versioned(&versions)
        };
        let write = |loc: &FileLocation, text: &'static str| {
            loc.write_atomic(move |w| w.write_all(text.as_bytes()))
        };
        let first = run("2026-01-01T00.00.00.000Z", None);
        assert!(!first.exists());
        assert!(first
            .read()
            .unwrap_err()
            .to_string()
            .contains("no saved version"));
        write(&first, "one").unwrap();
        assert_eq!(
            first.read_string().unwrap(),
            "one",
            "a run reads what it saved"
        );
        assert!(write(&first, "again")
            .unwrap_err()
            .to_string()
            .contains("never overwritten"));
        let second = run("2026-02-01T00.00.00.000Z", None);
        assert_eq!(second.read_string().unwrap(), "one", "latest before saving");
        write(&second, "two").unwrap();
        assert_eq!(
            run("2027-01-01T00.00.00.000Z", None).read_string().unwrap(),
            "two"
        );
        assert_eq!(
            run("x", Some("2026-01-01T00.00.00.000Z"))
                .read_string()
                .unwrap(),
            "one"
        );
        let err = run("x", Some("1999")).read().unwrap_err().to_string();
        assert!(err.contains("version '1999' not found (saved versions: 2026-01-01T00.00.00.000Z, 2026-02-01T00.00.00.000Z)"), "{err}");
        assert!(dir
            .path()
            .join("m/model.txt/2026-02-01T00.00.00.000Z/model.txt")
            .is_file());
        assert_eq!(second.display(), "m/model.txt (versioned)");
        assert!(second.is_versioned());
    }

    #[test]
    fn replaces_folders_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let loc = FileLocation::resolve("d", "out/set", dir.path(), &Location::default()).unwrap();
        let write = |name: &'static str| {
            move |p: &Path| std::fs::write(p.join(name), "x").map_err(|e| e.to_string())
        };
        loc.write_dir_atomic(write("a.txt")).unwrap();
        loc.write_dir_atomic(write("b.txt")).unwrap();
        assert!(!loc.path().join("a.txt").exists(), "old content replaced");
        assert!(loc.path().join("b.txt").exists());
        let err = loc.write_dir_atomic(|_| Err("no".to_string())).unwrap_err();
        assert!(err.to_string().contains("cannot write"));
        assert!(loc.path().join("b.txt").exists(), "kept on failure");
        let entries = std::fs::read_dir(dir.path().join("out")).unwrap().count();
        assert_eq!(entries, 1, "no temporary folder left behind");
    }
}
