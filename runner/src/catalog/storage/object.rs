//! Object-store locations (`s3://`, `gs://`, `az://`, `http(s)://`
//! read-only, `memory://`; see [`super::super::remote`]): whole objects put
//! at once, folders uploaded object by object (not atomic as a whole),
//! loads of folders copied into a local cache.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::FileLocation;
use crate::catalog::remote::{self, ObjectInfo, Remote, RemoteError};
use crate::error::Error;
use crate::function::BoxError;

/// What an object store holds at a dataset's path.
enum Stored {
    Object(ObjectInfo),
    Folder(Vec<(String, ObjectInfo, object_store::path::Path)>),
    Nothing,
}

impl Stored {
    /// Store metadata (e-tag, size, modification time) as a fingerprint.
    fn fingerprint(&self) -> Option<String> {
        let line = |i: &ObjectInfo| {
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

impl FileLocation {
    /// The object, or every object under the prefix, downloaded into a
    /// cache folder (see [`FileLocation::local_copy`]).
    pub(super) fn object_copy(&self, remote: &Remote) -> Result<PathBuf, Error> {
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
                    write(target.join(remote::decode_path(&rel)), bytes)?;
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
                        .map(|(name, _, _)| remote::decode_path(&name))
                        .collect()
                })
                .map_err(|e| self.remote_error("cannot list", e)),
        )
    }

    /// Refuses folder writes at a bucket's root: they would replace (and
    /// delete) everything in the bucket.
    fn check_folder_prefix(&self, remote: &Remote) -> Result<(), Error> {
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
            Ok::<(), RemoteError>(())
        })();
        Some(result.map_err(|e| self.remote_error("cannot clear", e)))
    }

    /// The version a load reads and its object.
    fn load_object(
        &self,
        remote: &Remote,
    ) -> Result<(Option<String>, object_store::path::Path), Error> {
        let version = self.load_version()?;
        let object = self.object(remote, version.as_deref());
        Ok((version, object))
    }

    /// What is stored at `object`: one object, a folder of objects under it
    /// (image sets, partitions), or nothing. One metadata request, and a
    /// listing only when there is no object.
    fn stored(&self, remote: &Remote, object: &object_store::path::Path) -> Result<Stored, Error> {
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
    fn object(&self, remote: &Remote, version: Option<&str>) -> object_store::path::Path {
        match (&self.versioning, version) {
            (Some(v), Some(version)) => remote.child(&[version, &v.file_name.to_string_lossy()]),
            _ => remote.path.clone(),
        }
    }

    /// The version a load reads (see [`super::version::Versioning::load_version`]).
    fn load_version(&self) -> Result<Option<String>, Error> {
        let Some(v) = &self.versioning else {
            return Ok(None);
        };
        v.load_version(|| self.versions()).map(Some).ok_or_else(|| {
            Error::dataset(
                &self.dataset,
                format!("no saved version in {}", self.written),
            )
        })
    }

    /// Saved versions: the folders under the prefix, oldest first.
    pub(super) fn object_versions(remote: &Remote) -> Vec<String> {
        remote
            .list_folders(&remote.path)
            .unwrap_or_default()
            .into_iter()
            .filter(|n| !n.starts_with('.'))
            .collect()
    }

    pub(super) fn object_exists(&self, remote: &Remote) -> bool {
        self.load_object(remote)
            .and_then(|(_, object)| self.stored(remote, &object))
            .is_ok_and(|stored| !matches!(stored, Stored::Nothing))
    }

    /// Store metadata as the fingerprint: no need to download the object.
    pub(super) fn object_fingerprint(&self, remote: &Remote) -> Result<Option<String>, Error> {
        let Ok((_, object)) = self.load_object(remote) else {
            return Ok(None);
        };
        Ok(self.stored(remote, &object)?.fingerprint())
    }

    pub(super) fn object_size(&self, remote: &Remote) -> Option<u64> {
        let (_, object) = self.load_object(remote).ok()?;
        remote.head(&object).ok().flatten().map(|i| i.size)
    }

    pub(super) fn read_object(&self, remote: &Remote) -> Result<Vec<u8>, Error> {
        let (_, object) = self.load_object(remote)?;
        remote
            .get(&object)
            .map_err(|e| self.remote_error("cannot read", e))
    }

    pub(super) fn read_object_string(&self, remote: &Remote) -> Result<String, Error> {
        let bytes = self.read_object(remote)?;
        String::from_utf8(bytes).map_err(|e| self.remote_error("cannot read", e))
    }

    /// Puts the whole object at once (an object store writes whole objects
    /// atomically); a version is never overwritten.
    pub(super) fn write_object<E: Into<BoxError>>(
        &self,
        remote: &Remote,
        write: impl FnOnce(&mut dyn Write) -> Result<(), E>,
    ) -> Result<(), Error> {
        let mut bytes = Vec::new();
        write(&mut bytes).map_err(|e| self.remote_error("cannot write", e.into()))?;
        let version = self.versioning.as_ref().map(|v| v.save_version.clone());
        let object = self.object(remote, version.as_deref());
        remote
            .put(&object, bytes, version.is_some())
            .map_err(|e| match &self.versioning {
                Some(v) if matches!(e, RemoteError::AlreadyExists) => {
                    v.already_exists(&self.dataset)
                }
                _ => self.remote_error("cannot write", e),
            })?;
        if let Some(v) = &self.versioning {
            v.mark_saved();
        }
        Ok(())
    }

    /// A tool's file staged in the temporary folder, then put whole.
    pub(super) fn write_object_via_path<E: Into<BoxError>>(
        &self,
        remote: &Remote,
        suffix: &str,
        fill: impl FnOnce(&Path) -> Result<(), E>,
    ) -> Result<(), Error> {
        let tmp = super::local::staging(super::local::Staged::File)
            .suffix(suffix)
            .tempfile()
            .map_err(|e| self.remote_error("cannot stage", e))?;
        fill(tmp.path()).map_err(|e| self.remote_error("cannot write", e.into()))?;
        let bytes = std::fs::read(tmp.path()).map_err(|e| self.remote_error("cannot stage", e))?;
        self.write_object(remote, move |w| w.write_all(&bytes))
    }

    /// A folder filled locally, then uploaded object by object; objects of
    /// the previous contents that the new one lacks are removed last.
    pub(super) fn write_object_folder<E: Into<BoxError>>(
        &self,
        remote: &Remote,
        fill: impl FnOnce(&Path) -> Result<(), E>,
    ) -> Result<(), Error> {
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
        Ok(())
    }
}
