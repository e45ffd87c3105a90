//! The [`Dataset`] trait: how the runner loads and saves one named dataset.

use crate::data::{Data, TypeDesc};
use crate::error::Error;

/// One dataset of the catalog. Implementations are shared between worker
/// threads, so they use interior mutability where they hold state.
pub trait Dataset: Send + Sync {
    fn load(&self) -> Result<Data, Error>;
    fn save(&self, data: &Data) -> Result<(), Error>;
    fn exists(&self) -> Result<bool, Error>;
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
        Ok(None)
    }
    /// Bytes on disk, for run records; `None` when unknown or not a file.
    fn size_bytes(&self) -> Option<u64> {
        None
    }
    /// Versioned datasets save each run to a new version folder.
    fn is_versioned(&self) -> bool {
        false
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Description {
    pub type_name: String,
    /// The file path or URL; `None` for in-memory data.
    pub location: Option<String>,
}
