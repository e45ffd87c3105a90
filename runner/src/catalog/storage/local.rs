//! Local paths and `file://` URLs: a file is written to a temporary file
//! beside it and renamed into place (readers see the old file or the new
//! one, never a part); a folder is filled beside its target and replaces it
//! in two renames.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::version::Versioning;
use super::FileLocation;
use crate::error::Error;
use crate::function::BoxError;

impl FileLocation {
    /// Saved versions that hold the file, oldest first.
    pub(super) fn local_versions(&self, v: &Versioning) -> Vec<String> {
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

    /// Where a load reads: the file, or the version a load reads (see
    /// [`Versioning::load_version`]).
    pub fn read_path(&self) -> Result<PathBuf, Error> {
        let Some(v) = &self.versioning else {
            return Ok(self.path.clone());
        };
        let version = v.load_version(|| self.local_versions(v)).ok_or_else(|| {
            Error::dataset(
                &self.dataset,
                format!("no saved version in {}", self.path.display()),
            )
        })?;
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
            return Err(v.already_exists(&self.dataset));
        }
        Ok(path)
    }

    pub(super) fn local_exists(&self) -> bool {
        match self.versioning {
            Some(_) => self.read_path().is_ok(),
            None => self.path.exists(),
        }
    }

    pub(super) fn local_fingerprint(&self) -> Result<Option<String>, Error> {
        let Ok(path) = self.read_path() else {
            return Ok(None);
        };
        crate::fingerprint::of_path(&path).map_err(|e| self.error("cannot fingerprint", e))
    }

    pub(super) fn local_size(&self) -> Option<u64> {
        let path = self.read_path().ok()?;
        std::fs::metadata(path).ok().map(|m| m.len())
    }

    pub(super) fn read_local(&self) -> Result<Vec<u8>, Error> {
        let path = self.read_path()?;
        std::fs::read(&path).map_err(|e| self.error("cannot read", e))
    }

    pub(super) fn read_local_string(&self) -> Result<String, Error> {
        let path = self.read_path()?;
        std::fs::read_to_string(&path).map_err(|e| self.error("cannot read", e))
    }

    pub(super) fn write_local<E: Into<BoxError>>(
        &self,
        write: impl FnOnce(&mut dyn Write) -> Result<(), E>,
    ) -> Result<(), Error> {
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
            v.mark_saved();
        }
        Ok(())
    }

    pub(super) fn write_local_via_path<E: Into<BoxError>>(
        &self,
        suffix: &str,
        fill: impl FnOnce(&Path) -> Result<(), E>,
    ) -> Result<(), Error> {
        let (target, tmp) = self.stage_beside(suffix)?;
        fill(tmp.path()).map_err(|e| self.error("cannot write", e.into()))?;
        // What the tool wrote is on disk before the rename makes it visible.
        tmp.as_file()
            .sync_all()
            .map_err(|e| self.error("cannot sync", e))?;
        self.commit(tmp, &target)
    }

    pub(super) fn write_local_folder<E: Into<BoxError>>(
        &self,
        fill: impl FnOnce(&Path) -> Result<(), E>,
    ) -> Result<(), Error> {
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
}

/// What a staged write creates beside its target.
#[derive(Clone, Copy)]
pub(super) enum Staged {
    File,
    Folder,
}

/// A temporary file or folder with the permissions a plain create would get:
/// rw-rw-rw- or rwxrwxrwx less the process's umask (0644 and 0755 under the
/// usual 022). A temporary file's own default, 0600, would make every output
/// private to the user who ran the pipeline.
pub(super) fn staging(kind: Staged) -> tempfile::Builder<'static, 'static> {
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
