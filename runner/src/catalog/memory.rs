//! `memory.MemoryDataset`: the default for names the catalog does not declare.

use std::sync::Mutex;

use super::dataset::{Dataset, Description};
use crate::data::Data;
use crate::error::Error;

pub struct MemoryDataset {
    name: String,
    value: Mutex<Option<Data>>,
}

impl MemoryDataset {
    pub fn new(name: &str) -> Self {
        MemoryDataset {
            name: name.to_string(),
            value: Mutex::new(None),
        }
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Option<Data>> {
        // A panic elsewhere cannot leave an Option half-written: ignore poisoning.
        self.value.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Dataset for MemoryDataset {
    fn load(&self) -> Result<Data, Error> {
        self.slot().clone().ok_or_else(|| {
            Error::dataset(
                &self.name,
                "no data in memory: nothing has saved it in this run",
            )
        })
    }
    fn save(&self, data: &Data) -> Result<(), Error> {
        *self.slot() = Some(data.clone());
        Ok(())
    }
    fn exists(&self) -> Result<bool, Error> {
        Ok(self.slot().is_some())
    }
    fn describe(&self) -> Description {
        Description {
            type_name: "memory.MemoryDataset".to_string(),
            location: None,
        }
    }
    fn is_ephemeral(&self) -> bool {
        true
    }
    fn release(&self) {
        *self.slot() = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_and_releases_a_value() {
        let ds = MemoryDataset::new("m");
        assert!(!ds.exists().unwrap());
        assert!(ds.load().unwrap_err().to_string().contains("dataset 'm'"));
        ds.save(&Data::new(3_i64)).unwrap();
        assert_eq!(ds.load().unwrap().downcast_ref::<i64>(), Some(&3));
        assert!(ds.is_ephemeral());
        ds.release();
        assert!(!ds.exists().unwrap());
        assert_eq!(ds.describe().type_name, "memory.MemoryDataset");
    }
}
