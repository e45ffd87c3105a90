//! `roadsign-torch`: `roadsign` with libtorch and Tesseract loaded — the
//! bodies of the nodes that run the network (`torch-nodes`) and read texts
//! (`tesseract-nodes`), `serve` and `predict`. Users do not call it:
//! `roadsign` hands over to it when a command needs libtorch (see
//! `roadsign::engine`); it takes the same arguments.

mod predict;
mod predictor;
mod serve;

use nodes::signatures::{TESSERACT, TORCH};
use roadsign::Engines;

fn implement(registry: &mut runner::FunctionRegistry) {
    tesseract_nodes::implement(registry);
    torch_nodes::implement(registry);
}

static ENGINES: Engines = Engines {
    names: &[TESSERACT, TORCH],
    implement,
    serve: Some(serve::serve_command),
    predict: Some(predict::predict_command),
};

fn main() -> std::process::ExitCode {
    roadsign::main(Some(&ENGINES))
}
