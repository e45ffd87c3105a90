//! `roadsign-ocr`: `roadsign` with Tesseract loaded — the bodies of the
//! nodes that read texts (`tesseract-nodes`), without libtorch. Users do not
//! call it: `roadsign` hands over to it when a run's nodes need Tesseract and
//! not libtorch (see `roadsign::engine`); it takes the same arguments.

use nodes::signatures::TESSERACT;
use roadsign::Engines;

static ENGINES: Engines = Engines {
    names: &[TESSERACT],
    implement: tesseract_nodes::implement,
    serve: None,
    predict: None,
};

fn main() -> std::process::ExitCode {
    roadsign::main(Some(&ENGINES))
}
