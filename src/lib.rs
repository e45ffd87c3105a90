//! `roadsign`'s command line, shared by its executables: `roadsign`, which
//! loads neither libtorch nor Tesseract, and the engine executables that do
//! and run the nodes needing them (`roadsign-ocr`: Tesseract;
//! `roadsign-torch`: both, and `serve`, `predict`). The user types
//! `roadsign`; it hands over only when a command needs an engine
//! ([`engine`]). Errors become exit codes here: 0 success, 2 usage or
//! configuration (nothing ran), 1 a node failed.

pub mod cli;
pub mod commands;
pub mod engine;
pub mod project;
pub mod run_hooks;
pub mod stress;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

pub use engine::Engines;

/// A command that cannot be carried out as typed (a malformed URL, an
/// unreadable input file named on the command line): nothing ran, exit 2,
/// wherever it is found.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

/// The program: `engines` is what this executable loads (`None` in `roadsign`).
pub fn main(engines: Option<&'static Engines>) -> ExitCode {
    engine::install(engines);
    let cli = cli::Cli::parse();
    init_logging(cli.verbose);
    match commands::dispatch(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("{}", commands::describe_error(&err, &cli));
            ExitCode::from(commands::exit_code(&err) as u8)
        }
    }
}
