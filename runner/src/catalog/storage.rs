//! Where file-backed datasets live, and how they are written safely.
//!
//! Today: local paths and `file://` URLs. This is the seam where object
//! stores (`s3://`, `gs://`, `memory://`...) plug in: every file dataset reads
//! and writes bytes through a [`FileLocation`] and nothing else.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Location};

#[derive(Clone, Debug)]
pub struct FileLocation {
    /// The catalog name, for error messages.
    dataset: String,
    path: PathBuf,
    /// As written in the catalog, for display.
    written: String,
}

impl FileLocation {
    /// Resolves a catalog `filepath` against the project root.
    pub fn resolve(
        dataset: &str,
        filepath: &str,
        root: &Path,
        at: &Location,
    ) -> Result<Self, Error> {
        let local = match filepath.split_once("://") {
            None => filepath,
            Some(("file", rest)) => rest,
            Some((scheme, _)) => {
                return Err(Error::config(
                    at.clone(),
                    format!("dataset '{dataset}': the '{scheme}://' store is not supported by this build; use a local path or file://"),
                ))
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
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn display(&self) -> String {
        self.written.clone()
    }

    pub fn exists(&self) -> bool {
        self.path.exists()
    }

    fn error(&self, what: &str, err: impl std::fmt::Display) -> Error {
        Error::dataset(
            &self.dataset,
            format!("{what} {}: {err}", self.path.display()),
        )
    }

    pub fn read(&self) -> Result<Vec<u8>, Error> {
        std::fs::read(&self.path).map_err(|e| self.error("cannot read", e))
    }

    pub fn read_string(&self) -> Result<String, Error> {
        std::fs::read_to_string(&self.path).map_err(|e| self.error("cannot read", e))
    }

    /// Writes the file atomically: a temporary file in the same folder, then a
    /// rename, so a crash never leaves a half-written dataset behind.
    pub fn write_atomic(
        &self,
        write: impl FnOnce(&mut dyn Write) -> Result<(), String>,
    ) -> Result<(), Error> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| self.error("cannot create the folder of", e))?;
        let mut tmp = tempfile::Builder::new()
            .prefix(".tmp-")
            .tempfile_in(dir)
            .map_err(|e| self.error("cannot create a temporary file for", e))?;
        {
            let mut writer = std::io::BufWriter::new(tmp.as_file_mut());
            write(&mut writer).map_err(|e| self.error("cannot write", e))?;
            writer.flush().map_err(|e| self.error("cannot write", e))?;
        }
        tmp.as_file()
            .sync_all()
            .map_err(|e| self.error("cannot sync", e))?;
        tmp.persist(&self.path)
            .map_err(|e| self.error("cannot move into place", e.error))?;
        Ok(())
    }

    /// Writes a whole folder atomically: `fill` populates a temporary folder
    /// beside the target, which then replaces the target in two renames.
    pub fn write_dir_atomic(
        &self,
        fill: impl FnOnce(&Path) -> Result<(), String>,
    ) -> Result<(), Error> {
        let parent = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent)
            .map_err(|e| self.error("cannot create the folder of", e))?;
        let tmp = tempfile::Builder::new()
            .prefix(".tmp-")
            .tempdir_in(parent)
            .map_err(|e| self.error("cannot create a temporary folder for", e))?;
        fill(tmp.path()).map_err(|e| self.error("cannot write", e))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_paths_and_rejects_unknown_stores() {
        let at = Location::new("catalog.yml", Some(3));
        let root = Path::new("/proj");
        let loc = FileLocation::resolve("d", "data/a.json", root, &at).unwrap();
        assert_eq!(loc.path(), Path::new("/proj/data/a.json"));
        let loc = FileLocation::resolve("d", "file:///tmp/a.json", root, &at).unwrap();
        assert_eq!(loc.path(), Path::new("/tmp/a.json"));
        assert_eq!(loc.display(), "file:///tmp/a.json");
        let err = FileLocation::resolve("d", "s3://b/k", root, &at).unwrap_err();
        assert!(err
            .to_string()
            .starts_with("catalog.yml:3: dataset 'd': the 's3://' store"));
        assert!(FileLocation::resolve("d", "", root, &at).is_err());
    }

    #[test]
    fn writes_atomically_and_keeps_the_old_file_on_failure() {
        let dir = tempfile::tempdir().unwrap();
        let at = Location::default();
        let loc = FileLocation::resolve("d", "sub/x.txt", dir.path(), &at).unwrap();
        loc.write_atomic(|w| w.write_all(b"first").map_err(|e| e.to_string()))
            .unwrap();
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
