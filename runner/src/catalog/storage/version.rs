//! Versioned datasets (`versioned: true`): the version a run's saves write
//! (one timestamp per run, Kedro's format) and the version a load reads —
//! pinned with `--load-versions`, the one this run saved, or the latest.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::Error;

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
pub(super) struct Versioning {
    pub(super) file_name: std::ffi::OsString,
    pub(super) save_version: String,
    load_version: Option<String>,
    /// Set once this run saved a version: later loads read that one.
    saved: AtomicBool,
}

impl Versioning {
    pub(super) fn new(dataset: &str, file_name: std::ffi::OsString, versions: &Versions) -> Self {
        Versioning {
            file_name,
            save_version: versions.save_version.clone(),
            load_version: versions.load_versions.get(dataset).cloned(),
            saved: AtomicBool::new(false),
        }
    }

    /// The version a load reads: pinned, saved by this run, or the latest
    /// of `saved_versions` (oldest first); `None` when there is none.
    pub(super) fn load_version(
        &self,
        saved_versions: impl FnOnce() -> Vec<String>,
    ) -> Option<String> {
        if let Some(pinned) = &self.load_version {
            return Some(pinned.clone());
        }
        if self.saved.load(Ordering::SeqCst) {
            return Some(self.save_version.clone());
        }
        saved_versions().pop()
    }

    /// Records that this run saved its version.
    pub(super) fn mark_saved(&self) {
        self.saved.store(true, Ordering::SeqCst);
    }

    /// A save of a version that exists: versions are never overwritten.
    pub(super) fn already_exists(&self, dataset: &str) -> Error {
        Error::dataset(
            dataset,
            format!(
                "version '{}' already exists: versions are never overwritten",
                self.save_version
            ),
        )
    }
}
