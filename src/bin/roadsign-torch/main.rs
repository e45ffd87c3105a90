//! `roadsign-torch`: `roadsign` with libtorch and Tesseract loaded — the
//! bodies of the nodes that run the network (`torch-nodes`) and read texts
//! (`tesseract-nodes`), `serve` and `predict`. Users do not call it:
//! `roadsign` hands over to it when a command needs libtorch (see
//! `roadsign::engine`); it takes the same arguments.

mod predict;
mod predictor;
mod serve;
mod video_node;

use nodes::signatures::{TESSERACT, TORCH};
use roadsign::Engines;

fn implement(registry: &mut runner::FunctionRegistry) {
    tesseract_nodes::implement(registry);
    torch_nodes::implement(registry);
    registry.implement(
        "annotate_video",
        video_node::annotate_video_node as nodes::signatures::AnnotateVideoFn,
    );
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

#[cfg(test)]
mod tests {
    #[test]
    fn every_declared_function_gets_its_body() {
        let mut registry = runner::FunctionRegistry::new();
        nodes::register(&mut registry);
        let declared: Vec<String> = registry
            .names()
            .filter(|name| !registry.get(name).unwrap().missing_engines().is_empty())
            .map(str::to_string)
            .collect();
        assert!(declared.contains(&"annotate_video".to_string()));
        super::implement(&mut registry);
        for name in &declared {
            let function = registry.get(name).unwrap();
            assert!(function.missing_engines().is_empty(), "{name}");
        }
    }
}
