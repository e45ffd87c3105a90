//! The one error type of the runner crate.

use std::fmt;
use std::path::PathBuf;

/// Where a piece of configuration came from: a file, and a 1-based line when known.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Location {
    pub file: PathBuf,
    pub line: Option<usize>,
}

impl Location {
    pub fn new(file: impl Into<PathBuf>, line: Option<usize>) -> Self {
        Location {
            file: file.into(),
            line,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}", self.file.display(), line),
            None => write!(f, "{}", self.file.display()),
        }
    }
}

/// Everything that can go wrong in the runner.
///
/// The variants split along the exit codes of the CLI: configuration and
/// selection problems are found before anything runs (exit 2); dataset and node
/// failures happen while running (exit 1).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration file is unreadable, malformed or inconsistent.
    #[error("{location}: {message}")]
    Config { location: Location, message: String },

    /// The pipeline or the selection is invalid (cycle, duplicate output,
    /// unknown node in a filter, empty selection, type mismatch...).
    #[error("{0}")]
    Invalid(String),

    /// A dataset could not be loaded or saved.
    #[error("dataset '{dataset}': {message}")]
    Dataset { dataset: String, message: String },

    /// One or more nodes failed while running; completed outputs were saved.
    #[error("{0}")]
    Run(crate::run::RunFailure),
}

impl Error {
    pub fn config(location: Location, message: impl Into<String>) -> Self {
        Error::Config {
            location,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Error::Invalid(message.into())
    }

    pub fn dataset(dataset: &str, message: impl fmt::Display) -> Self {
        Error::Dataset {
            dataset: dataset.to_string(),
            message: message.to_string(),
        }
    }

    /// The process exit status this error maps to: 2 when nothing ran
    /// because of configuration or usage, 1 when something failed at run time.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Config { .. } | Error::Invalid(_) => 2,
            Error::Dataset { .. } | Error::Run(_) => 1,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
