//! The [`Dataset`] trait: how the runner loads and saves one named dataset.

use super::storage::FileLocation;
use crate::data::{Data, TypeDesc};
use crate::error::Error;

/// One dataset of the catalog. Implementations are shared between worker
/// threads, so they use interior mutability where they hold state.
pub trait Dataset: Send + Sync {
    fn load(&self) -> Result<Data, Error>;
    fn save(&self, data: &Data) -> Result<(), Error>;
    /// Where a file-backed dataset lives; the defaults below use it.
    fn file_location(&self) -> Option<&FileLocation> {
        None
    }
    fn exists(&self) -> Result<bool, Error> {
        Ok(self.file_location().is_some_and(FileLocation::exists))
    }
    /// The registered type name (`json.JSONDataset`) and where the data lives.
    fn describe(&self) -> Description;
    /// The Rust type `load` yields and `save` accepts; `None` for anything.
    fn value_type(&self) -> Option<TypeDesc> {
        None
    }
    /// Ephemeral datasets live in memory only: a resumed run cannot start after them.
    fn is_ephemeral(&self) -> bool {
        false
    }
    /// Drops the held value once no node needs it any more.
    fn release(&self) {}
    /// A fingerprint of the stored content (incremental runs); `None` when
    /// nothing is stored or the type cannot tell, which makes readers rerun.
    fn fingerprint(&self) -> Result<Option<String>, Error> {
        self.file_location()
            .map_or(Ok(None), FileLocation::fingerprint)
    }
    /// Bytes on disk, for run records; `None` when unknown or not a file.
    fn size_bytes(&self) -> Option<u64> {
        self.file_location()?.size_bytes()
    }
    /// Versioned datasets save each run to a new version folder.
    fn is_versioned(&self) -> bool {
        self.file_location().is_some_and(FileLocation::is_versioned)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Description {
    pub type_name: String,
    /// The file path or URL; `None` for in-memory data.
    pub location: Option<String>,
}
