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
pub mod stress;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

pub use engine::Engines;

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
    // Nodes never see paths, but a few parameters name folders (training
    // checkpoints): they are relative to the project, not to the shell.
    if let Ok(dir) = std::path::absolute(&cli.project_dir) {
        std::env::set_var("ROADSIGN_PROJECT_DIR", dir);
    }
    match commands::dispatch(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("{}", commands::describe_error(&err, &cli));
            ExitCode::from(commands::exit_code(&err) as u8)
        }
    }
}
