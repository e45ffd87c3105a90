//! Engines: the heavy native libraries some nodes run on, and the
//! executables that load them.
//!
//! Loading libtorch costs a process about 0.2 s and 115 MiB before `main`
//! (its static initialisers register every operator), Tesseract with its
//! 50-odd libraries 13 MiB, so `roadsign` links neither. It knows the nodes
//! that need them by their signatures (`nodes::signatures`), which is all
//! that planning, checks, dry runs, `viz`, `catalog`, `pipeline` and
//! `kubeflow compile` need. A command that needs an engine (`serve`,
//! `predict`, a run whose selected nodes include such a node) replaces the
//! process with the smallest executable installed beside it that loads
//! those engines, with the same arguments: same process id, signals,
//! standard streams and exit code. Those executables are the same program
//! with the bodies of those nodes linked in.

use std::collections::BTreeSet;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::sync::OnceLock;

use anyhow::Result;
use nodes::signatures::{TESSERACT, TORCH};
use runner::FunctionRegistry;

use crate::cli::{Cli, PredictArgs, ServeArgs};

/// The executables that load engines, smallest first, and what each loads.
pub const EXECUTABLES: &[(&str, &[&str])] = &[
    ("roadsign-ocr", &[TESSERACT]),
    ("roadsign-torch", &[TESSERACT, TORCH]),
];

/// What `serve` and `predict` run on: the detector and the reader.
const SERVING: &[&str] = &[TESSERACT, TORCH];

/// What an executable that loads engines adds to the program.
pub struct Engines {
    /// The engines it loads, as functions declare them.
    pub names: &'static [&'static str],
    /// Gives the functions declared on those engines their bodies.
    pub implement: fn(&mut FunctionRegistry),
    /// `roadsign serve` and `roadsign predict`, where it loads what they need.
    pub serve: Option<fn(&Cli, &ServeArgs) -> Result<()>>,
    pub predict: Option<fn(&Cli, &PredictArgs) -> Result<()>>,
}

static LOADED: OnceLock<Option<&'static Engines>> = OnceLock::new();

/// Records the engines this executable loads (once, at the start of `main`).
pub(crate) fn install(engines: Option<&'static Engines>) {
    let _ = LOADED.set(engines);
}

/// The engines this executable loads, if any.
pub fn loaded() -> Option<&'static Engines> {
    LOADED.get().copied().flatten()
}

/// Why the process could not continue in an engine's executable.
#[derive(Debug, thiserror::Error)]
pub enum HandOverError {
    #[error("{what} needs {engines}, which runs in {}, and that could not be started: {source} (is roadsign fully installed? `cargo install --path .` installs every executable)", exe.display())]
    Start {
        what: String,
        engines: String,
        exe: PathBuf,
        source: std::io::Error,
    },
    #[error("{what} needs engines {0:?} that no roadsign executable loads", .engines)]
    NoExecutable { what: String, engines: Vec<String> },
}

/// The smallest executable that loads every one of `engines`.
pub fn executable_for(engines: &BTreeSet<String>) -> Option<&'static str> {
    EXECUTABLES
        .iter()
        .find(|(_, loads)| engines.iter().all(|e| loads.contains(&e.as_str())))
        .map(|(name, _)| *name)
}

/// Replaces this process with the executable that loads `engines`, same
/// arguments; returns only when that fails. `what` says what needed them.
pub fn hand_over(engines: &BTreeSet<String>, what: &str) -> anyhow::Error {
    let Some(name) = executable_for(engines) else {
        return HandOverError::NoExecutable {
            what: what.to_string(),
            engines: engines.iter().cloned().collect(),
        }
        .into();
    };
    let names = engines.iter().cloned().collect::<Vec<_>>().join(" and ");
    let exe = match std::env::current_exe() {
        Ok(me) => me.with_file_name(name),
        Err(source) => {
            return HandOverError::Start {
                what: what.to_string(),
                engines: names,
                exe: PathBuf::from(name),
                source,
            }
            .into()
        }
    };
    tracing::info!("{what} needs {names}: continuing in {}", exe.display());
    let mut args = std::env::args_os();
    let arg0 = args.next().unwrap_or_else(|| "roadsign".into());
    // Usage messages keep saying `roadsign`: clap names the program after argv[0].
    let source = std::process::Command::new(&exe)
        .arg0(arg0)
        .args(args)
        .exec();
    HandOverError::Start {
        what: what.to_string(),
        engines: names,
        exe,
        source,
    }
    .into()
}

fn serving() -> BTreeSet<String> {
    SERVING.iter().map(|e| e.to_string()).collect()
}

/// `roadsign serve`: here when this executable loads the detector and the
/// reader, else in the one that does.
pub fn serve(cli: &Cli, args: &ServeArgs) -> Result<()> {
    match loaded().and_then(|e| e.serve) {
        Some(serve) => serve(cli, args),
        None => Err(hand_over(&serving(), "`roadsign serve`")),
    }
}

/// `roadsign predict`: as `serve`.
pub fn predict(cli: &Cli, args: &PredictArgs) -> Result<()> {
    match loaded().and_then(|e| e.predict) {
        Some(predict) => predict(cli, args),
        None => Err(hand_over(&serving(), "`roadsign predict`")),
    }
}

/// Hands a run over when some of `functions` need an engine this executable
/// does not load; returns when every one can run here.
pub fn run_here_or_hand_over<'a>(
    registry: &FunctionRegistry,
    functions: impl IntoIterator<Item = &'a str>,
) -> Result<()> {
    let functions: BTreeSet<&str> = functions.into_iter().collect();
    let missing = registry.missing_engines(functions.iter().copied());
    if missing.is_empty() {
        return Ok(());
    }
    let needing: Vec<&str> = functions
        .iter()
        .copied()
        .filter(|f| {
            registry
                .get(f)
                .is_some_and(|r| !r.missing_engines().is_empty())
        })
        .collect();
    Err(hand_over(
        &missing,
        &format!("this run ({})", needing.join(", ")),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(engines: &[&str]) -> BTreeSet<String> {
        engines.iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn the_smallest_executable_that_loads_every_engine_is_chosen() {
        assert_eq!(executable_for(&set(&[TESSERACT])), Some("roadsign-ocr"));
        assert_eq!(executable_for(&set(&[TORCH])), Some("roadsign-torch"));
        assert_eq!(
            executable_for(&set(&[TORCH, TESSERACT])),
            Some("roadsign-torch")
        );
        assert_eq!(executable_for(&set(&["cuda-graphs"])), None);
    }

    #[test]
    fn runs_of_light_nodes_stay_here() {
        let mut registry = FunctionRegistry::new();
        nodes::register(&mut registry);
        assert!(run_here_or_hand_over(&registry, ["noop", "build_class_table"]).is_ok());
    }

    #[test]
    fn engines_no_executable_loads_are_a_clear_error() {
        let err = hand_over(&set(&["cuda-graphs"]), "this run (x)");
        assert_eq!(
            err.to_string(),
            "this run (x) needs engines [\"cuda-graphs\"] that no roadsign executable loads"
        );
    }
}
