//! Where file-backed datasets live, and how they are written safely.
//!
//! Local paths and `file://` URLs (atomic writes: temporary file + rename),
//! and object stores (`s3://`, `gs://`, `az://`, `http(s)://` read-only,
//! `memory://`; see [`super::remote`]), all optionally versioned. Every file
//! dataset reads and writes bytes through a [`FileLocation`] and nothing
//! else. Folder datasets (image sets) are local only.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{Error, Location};
use crate::function::BoxError;

/// The versions of one run: the version every versioned save of the run
/// writes, and the versions pinned with `--load-versions`.
#[derive(Clone, Debug)]
pub struct Versions {
    pub save_version: String,
    pub load_versions: BTreeMap<String, String>,
}

impl Default for Versions {
    fn default() -> Self {
        Versions {
            save_version: timestamp_version(SystemTime::now()),
            load_versions: BTreeMap::new(),
        }
    }
}

/// A sortable UTC timestamp in Kedro's format: `2026-11-28T23.59.59.123Z`.
pub fn timestamp_version(at: SystemTime) -> String {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}.{:02}.{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_millis()
    )
}

/// `versioned: true`: saves go to `<filepath>/<version>/<file name>`.
#[derive(Debug)]
struct Versioning {
    file_name: std::ffi::OsString,
    save_version: String,
    load_version: Option<String>,
    /// Set once this run saved a version: later loads read that one.
    saved: AtomicBool,
}

/// What an object store holds at a dataset's path.
enum Stored {
    Object(super::remote::ObjectInfo),
    Folder(Vec<(String, super::remote::ObjectInfo, object_store::path::Path)>),
    Nothing,
}

impl Stored {
    /// Store metadata (e-tag, size, modification time) as a fingerprint.
    fn fingerprint(&self) -> Option<String> {
        let line = |i: &super::remote::ObjectInfo| {
            format!(
                "{}:{}:{}",
                i.e_tag.clone().unwrap_or_default(),
                i.size,
                i.last_modified
            )
        };
        match self {
            Stored::Object(info) => Some(line(info)),
            Stored::Folder(files) => {
                let lines: Vec<String> = files
                    .iter()
                    .map(|(n, i, _)| format!("{n}:{}", line(i)))
                    .collect();
                Some(crate::fingerprint::of_parts(
                    lines.iter().map(String::as_str),
                ))
            }
            Stored::Nothing => None,
        }
    }
}

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
        let Some(remote) = &self.remote else {
            return self.read_path();
        };
        let (version, object) = self.load_object(remote)?;
        let stored = self.stored(remote, &object)?;
        let fail = |what: &str, e: &dyn std::fmt::Display| self.remote_error(what, e);
        // The copy is keyed by the stored content's metadata: a copy that
        // exists is complete (renamed into place whole) and never rewritten,
        // so loads running at the same time never see it change.
        let Some(fingerprint) = stored.fingerprint() else {
            return Err(self.remote_error("nothing stored at", "no object"));
        };
        let key = crate::fingerprint::of_bytes(
            format!("{}|{version:?}|{fingerprint}", self.written).as_bytes(),
        );
        let cache = std::env::temp_dir().join("roadsign-mirror");
        let name = object.filename().unwrap_or("data").to_string();
        let done = cache.join(&key);
        if done.join(&name).exists() {
            return Ok(done.join(name));
        }
        std::fs::create_dir_all(&cache).map_err(|e| fail("cannot copy", &e))?;
        let staging = tempfile::Builder::new()
            .prefix(".staging-")
            .tempdir_in(&cache)
            .map_err(|e| fail("cannot copy", &e))?;
        let write = |path: PathBuf, bytes: Vec<u8>| -> Result<(), Error> {
            std::fs::create_dir_all(path.parent().unwrap_or(Path::new(".")))
                .map_err(|e| fail("cannot copy", &e))?;
            std::fs::write(&path, bytes).map_err(|e| fail("cannot copy", &e))
        };
        let target = staging.path().join(&name);
        match stored {
            Stored::Object(_) => write(
                target,
                remote.get(&object).map_err(|e| fail("cannot read", &e))?,
            )?,
            Stored::Folder(files) => {
                for (rel, _, full) in files {
                    let bytes = remote.get(&full).map_err(|e| fail("cannot read", &e))?;
                    write(target.join(super::remote::decode_path(&rel)), bytes)?;
                }
            }
            Stored::Nothing => unreachable!("nothing stored has no fingerprint"),
        }
        let staged = staging.keep();
        if std::fs::rename(&staged, &done).is_err() {
            // Another load finished the same copy first: use that one.
            let _ = std::fs::remove_dir_all(&staged);
        }
        Ok(done.join(name))
    }

    /// For an object-store folder: every object under it (relative paths).
    /// `None` for a local location.
    pub fn remote_files(&self) -> Option<Result<Vec<String>, Error>> {
        let remote = self.remote.as_ref()?;
        Some(
            remote
                .list_files(&remote.path)
                .map(|files| {
                    files
                        .into_iter()
                        .map(|(name, _, _)| super::remote::decode_path(&name))
                        .collect()
                })
                .map_err(|e| self.remote_error("cannot list", e)),
        )
    }

    /// Refuses folder writes at a bucket's root: they would replace (and
    /// delete) everything in the bucket.
    fn check_folder_prefix(&self, remote: &super::remote::Remote) -> Result<(), Error> {
        if remote.path.as_ref().is_empty() {
            return Err(self.remote_error(
                "refusing to write a folder at the root of",
                "give the dataset a prefix (s3://bucket/some/folder)",
            ));
        }
        Ok(())
    }

    /// For an object-store folder: deletes every object under it.
    pub fn remote_clear(&self) -> Option<Result<(), Error>> {
        let remote = self.remote.as_ref()?;
        if let Err(e) = self.check_folder_prefix(remote) {
            return Some(Err(e));
        }
        let result = (|| {
            for (_, _, full) in remote.list_files(&remote.path)? {
                remote.delete(&full)?;
            }
            Ok::<(), super::remote::RemoteError>(())
        })();
        Some(result.map_err(|e| self.remote_error("cannot clear", e)))
    }

    /// The version a load reads and its object.
    fn load_object(
        &self,
        remote: &super::remote::Remote,
    ) -> Result<(Option<String>, object_store::path::Path), Error> {
        let version = self.load_version()?;
        let object = self.object(remote, version.as_deref());
        Ok((version, object))
    }

    /// What is stored at `object`: one object, a folder of objects under it
    /// (image sets, partitions), or nothing. One metadata request, and a
    /// listing only when there is no object.
    fn stored(
        &self,
        remote: &super::remote::Remote,
        object: &object_store::path::Path,
    ) -> Result<Stored, Error> {
        if let Some(info) = remote
            .head(object)
            .map_err(|e| self.remote_error("cannot read the metadata of", e))?
        {
            return Ok(Stored::Object(info));
        }
        let files = remote
            .list_files(object)
            .map_err(|e| self.remote_error("cannot list", e))?;
        Ok(match files.is_empty() {
            true => Stored::Nothing,
            false => Stored::Folder(files),
        })
    }

    /// The object of a version (or the object itself when unversioned).
    fn object(
        &self,
        remote: &super::remote::Remote,
        version: Option<&str>,
    ) -> object_store::path::Path {
        match (&self.versioning, version) {
            (Some(v), Some(version)) => remote.child(&[version, &v.file_name.to_string_lossy()]),
            _ => remote.path.clone(),
        }
    }

    /// The version a load reads: pinned, saved by this run, or the latest.
    fn load_version(&self) -> Result<Option<String>, Error> {
        let Some(v) = &self.versioning else {
            return Ok(None);
        };
        if let Some(pinned) = &v.load_version {
            return Ok(Some(pinned.clone()));
        }
        if v.saved.load(Ordering::SeqCst) {
            return Ok(Some(v.save_version.clone()));
        }
        self.versions().pop().map(Some).ok_or_else(|| {
            Error::dataset(
                &self.dataset,
                format!("no saved version in {}", self.written),
            )
        })
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
        self.versioning = Some(Arc::new(Versioning {
            file_name,
            save_version: versions.save_version.clone(),
            load_version: versions.load_versions.get(&self.dataset).cloned(),
            saved: AtomicBool::new(false),
        }));
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
        if let Some(remote) = &self.remote {
            return remote
                .list_folders(&remote.path)
                .unwrap_or_default()
                .into_iter()
                .filter(|n| !n.starts_with('.'))
                .collect();
        }
        let mut found: Vec<String> = std::fs::read_dir(&self.path)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok())
                    .filter(|e| e.path().join(&v.file_name).exists())
                    .filter_map(|e| e.file_name().to_str().map(String::from))
                    .filter(|n| !n.starts_with('.'))
                    .collect()
            })
            .unwrap_or_default();
        found.sort();
        found
    }

    /// Where a load reads: the pinned version, the version this run saved,
    /// or the latest one.
    pub fn read_path(&self) -> Result<PathBuf, Error> {
        let Some(v) = &self.versioning else {
            return Ok(self.path.clone());
        };
        let version = if let Some(pinned) = &v.load_version {
            pinned.clone()
        } else if v.saved.load(Ordering::SeqCst) {
            v.save_version.clone()
        } else {
            self.versions().pop().ok_or_else(|| {
                Error::dataset(
                    &self.dataset,
                    format!("no saved version in {}", self.path.display()),
                )
            })?
        };
        let path = self.path.join(&version).join(&v.file_name);
        if !path.exists() {
            return Err(Error::dataset(
                &self.dataset,
                format!(
                    "version '{version}' not found (saved versions: {})",
                    self.versions().join(", ")
                ),
            ));
        }
        Ok(path)
    }

    fn write_path(&self) -> Result<PathBuf, Error> {
        let Some(v) = &self.versioning else {
            return Ok(self.path.clone());
        };
        let path = self.path.join(&v.save_version).join(&v.file_name);
        if path.exists() {
            return Err(Error::dataset(
                &self.dataset,
                format!(
                    "version '{}' already exists: versions are never overwritten",
                    v.save_version
                ),
            ));
        }
        Ok(path)
    }

    pub fn exists(&self) -> bool {
        if let Some(remote) = &self.remote {
            return self
                .load_object(remote)
                .and_then(|(_, object)| self.stored(remote, &object))
                .is_ok_and(|stored| !matches!(stored, Stored::Nothing));
        }
        match self.versioning {
            Some(_) => self.read_path().is_ok(),
            None => self.path.exists(),
        }
    }

    fn error(&self, what: &str, err: impl std::fmt::Display) -> Error {
        let path = self.read_path().unwrap_or_else(|_| self.path.clone());
        Error::dataset(&self.dataset, format!("{what} {}: {err}", path.display()))
    }

    /// The fingerprint of what a load would read (file or folder); `None`
    /// when nothing is stored yet.
    pub fn fingerprint(&self) -> Result<Option<String>, Error> {
        if let Some(remote) = &self.remote {
            // Store metadata: no need to download the object.
            let Ok((_, object)) = self.load_object(remote) else {
                return Ok(None);
            };
            return Ok(self.stored(remote, &object)?.fingerprint());
        }
        let Ok(path) = self.read_path() else {
            return Ok(None);
        };
        crate::fingerprint::of_path(&path).map_err(|e| self.error("cannot fingerprint", e))
    }

    /// The size of the file a load would read.
    pub fn size_bytes(&self) -> Option<u64> {
        if let Some(remote) = &self.remote {
            let (_, object) = self.load_object(remote).ok()?;
            return remote.head(&object).ok().flatten().map(|i| i.size);
        }
        let path = self.read_path().ok()?;
        std::fs::metadata(path).ok().map(|m| m.len())
    }

    pub fn read(&self) -> Result<Vec<u8>, Error> {
        if let Some(remote) = &self.remote {
            let (_, object) = self.load_object(remote)?;
            return remote
                .get(&object)
                .map_err(|e| self.remote_error("cannot read", e));
        }
        let path = self.read_path()?;
        std::fs::read(&path).map_err(|e| self.error("cannot read", e))
    }

    pub fn read_string(&self) -> Result<String, Error> {
        if self.remote.is_some() {
            let bytes = self.read()?;
            return String::from_utf8(bytes).map_err(|e| self.remote_error("cannot read", e));
        }
        let path = self.read_path()?;
        std::fs::read_to_string(&path).map_err(|e| self.error("cannot read", e))
    }

    /// Writes the file atomically: a temporary file in the same folder, then a
    /// rename, so a crash never leaves a half-written dataset behind.
    pub fn write_atomic<E: Into<BoxError>>(
        &self,
        write: impl FnOnce(&mut dyn Write) -> Result<(), E>,
    ) -> Result<(), Error> {
        if let Some(remote) = &self.remote {
            // An object store writes whole objects atomically.
            let mut bytes = Vec::new();
            write(&mut bytes).map_err(|e| self.remote_error("cannot write", e.into()))?;
            let version = self.versioning.as_ref().map(|v| v.save_version.clone());
            let object = self.object(remote, version.as_deref());
            remote
                .put(&object, bytes, version.is_some())
                .map_err(|e| match version {
                    Some(v) if matches!(e, super::remote::RemoteError::AlreadyExists) => {
                        Error::dataset(
                            &self.dataset,
                            format!("version '{v}' already exists: versions are never overwritten"),
                        )
                    }
                    _ => self.remote_error("cannot write", e),
                })?;
            if let Some(v) = &self.versioning {
                v.saved.store(true, Ordering::SeqCst);
            }
            return Ok(());
        }
        let (target, mut tmp) = self.stage_beside("")?;
        {
            let mut writer = std::io::BufWriter::new(tmp.as_file_mut());
            write(&mut writer).map_err(|e| self.error("cannot write", e.into()))?;
            writer.flush().map_err(|e| self.error("cannot write", e))?;
        }
        tmp.as_file()
            .sync_all()
            .map_err(|e| self.error("cannot sync", e))?;
        self.commit(tmp, &target)
    }

    /// A staged file in the folder a local write lands in, and that place.
    fn stage_beside(&self, suffix: &str) -> Result<(PathBuf, tempfile::NamedTempFile), Error> {
        let target = self.write_path()?;
        let dir = target.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| self.error("cannot create the folder of", e))?;
        let tmp = staging(Staged::File)
            .suffix(suffix)
            .tempfile_in(dir)
            .map_err(|e| self.error("cannot create a temporary file for", e))?;
        Ok((target, tmp))
    }

    /// Renames a staged file into place (one rename: readers see the old
    /// file or the new one, never a part).
    fn commit(&self, tmp: tempfile::NamedTempFile, target: &Path) -> Result<(), Error> {
        // persist_noclobber: two savers of one version cannot both win.
        let persisted = match &self.versioning {
            Some(_) => tmp.persist_noclobber(target),
            None => tmp.persist(target),
        };
        persisted.map_err(|e| self.error("cannot move into place", e.error))?;
        if let Some(v) = &self.versioning {
            v.saved.store(true, Ordering::SeqCst);
        }
        Ok(())
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
        if self.remote.is_some() {
            let tmp = staging(Staged::File)
                .suffix(suffix)
                .tempfile()
                .map_err(|e| self.remote_error("cannot stage", e))?;
            fill(tmp.path()).map_err(|e| self.remote_error("cannot write", e.into()))?;
            let bytes =
                std::fs::read(tmp.path()).map_err(|e| self.remote_error("cannot stage", e))?;
            return self.write_atomic(move |w| w.write_all(&bytes));
        }
        let (target, tmp) = self.stage_beside(suffix)?;
        fill(tmp.path()).map_err(|e| self.error("cannot write", e.into()))?;
        // What the tool wrote is on disk before the rename makes it visible.
        tmp.as_file()
            .sync_all()
            .map_err(|e| self.error("cannot sync", e))?;
        self.commit(tmp, &target)
    }

    /// Writes a whole folder atomically: `fill` populates a temporary folder
    /// beside the target, which then replaces the target in two renames.
    pub fn write_dir_atomic<E: Into<BoxError>>(
        &self,
        fill: impl FnOnce(&Path) -> Result<(), E>,
    ) -> Result<(), Error> {
        if let Some(remote) = &self.remote {
            // Filled locally, then uploaded object by object; objects of the
            // previous contents that the new one lacks are removed last.
            self.check_folder_prefix(remote)?;
            let tmp = tempfile::tempdir().map_err(|e| self.remote_error("cannot stage", e))?;
            fill(tmp.path()).map_err(|e| self.remote_error("cannot write", e.into()))?;
            let before: Vec<object_store::path::Path> = remote
                .list_files(&remote.path)
                .map_err(|e| self.remote_error("cannot list", e))?
                .into_iter()
                .map(|(_, _, full)| full)
                .collect();
            let mut written = std::collections::BTreeSet::new();
            let mut stack = vec![tmp.path().to_path_buf()];
            while let Some(dir) = stack.pop() {
                let entries =
                    std::fs::read_dir(&dir).map_err(|e| self.remote_error("cannot stage", e))?;
                for entry in entries.flatten() {
                    let path = entry.path();
                    if path.is_dir() {
                        stack.push(path);
                        continue;
                    }
                    let rel = path
                        .strip_prefix(tmp.path())
                        .map_err(|e| self.remote_error("cannot stage", e))?
                        .to_string_lossy()
                        .replace('\\', "/");
                    let bytes =
                        std::fs::read(&path).map_err(|e| self.remote_error("cannot stage", e))?;
                    let parts: Vec<&str> = rel.split('/').collect();
                    let target = remote.child(&parts);
                    remote
                        .put(&target, bytes, false)
                        .map_err(|e| self.remote_error("cannot write", e))?;
                    written.insert(target);
                }
            }
            for stale in before.iter().filter(|f| !written.contains(*f)) {
                remote
                    .delete(stale)
                    .map_err(|e| self.remote_error("cannot remove", e))?;
            }
            return Ok(());
        }
        let parent = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent)
            .map_err(|e| self.error("cannot create the folder of", e))?;
        let tmp = staging(Staged::Folder)
            .tempdir_in(parent)
            .map_err(|e| self.error("cannot create a temporary folder for", e))?;
        fill(tmp.path()).map_err(|e| self.error("cannot write", e.into()))?;
        let tmp = tmp.keep();
        let old = parent.join(format!(
            ".old-{}-{}",
            self.path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("dataset"),
            std::process::id()
        ));
        let had_old = self.path.exists();
        if had_old {
            std::fs::rename(&self.path, &old).map_err(|e| self.error("cannot move aside", e))?;
        }
        if let Err(e) = std::fs::rename(&tmp, &self.path) {
            if had_old {
                let _ = std::fs::rename(&old, &self.path);
            }
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(self.error("cannot move into place", e));
        }
        if had_old {
            let _ = std::fs::remove_dir_all(&old);
        }
        Ok(())
    }

    /// A parse error that names the dataset and the file.
    pub fn parse_error(&self, err: impl std::fmt::Display) -> Error {
        self.error("cannot parse", err)
    }
}

/// What a staged write creates beside its target.
#[derive(Clone, Copy)]
enum Staged {
    File,
    Folder,
}

/// A temporary file or folder with the permissions a plain create would get:
/// rw-rw-rw- or rwxrwxrwx less the process's umask (0644 and 0755 under the
/// usual 022). A temporary file's own default, 0600, would make every output
/// private to the user who ran the pipeline.
fn staging(kind: Staged) -> tempfile::Builder<'static, 'static> {
    let mut builder = tempfile::Builder::new();
    builder.prefix(".tmp-");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = match kind {
            Staged::File => 0o666,
            Staged::Folder => 0o777,
        };
        builder.permissions(std::fs::Permissions::from_mode(mode));
    }
    #[cfg(not(unix))]
    let _ = kind;
    builder
}

#[cfg(test)]
mod tests {
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
