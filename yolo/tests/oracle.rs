//! Exactness against Ultralytics itself: `tests/fixtures/oracle/` holds a
//! fresh Ultralytics YOLOv8n (nc 4) as safetensors, two inputs, and what
//! Ultralytics outputs for them (copied from the project's shared oracle,
//! whose README is beside them). Loading the file and running the inputs must
//! give the same head outputs within the tolerances its README states. The
//! fixtures are committed, so every CI runs this test.

mod common;

use common::{max_diff, oracle_dir, read};
use tch::{Device, Kind};
use yolo::Detector;

#[test]
fn yolov8n_matches_ultralytics_outputs() {
    let dir = oracle_dir("yolov8n_init_nc4.safetensors");
    tch::set_num_threads(1);
    let detector = Detector::load(&dir.join("yolov8n_init_nc4.safetensors"), Device::Cpu).unwrap();
    assert_eq!(detector.info.scale, yolo::Scale::N);
    assert_eq!(detector.info.names.len(), 4);
    let inputs = read(dir.join("inputs.safetensors"));
    let outputs = read(dir.join("outputs_init_nc4.safetensors"));

    let image = inputs["val00000_lb320_u8_hwc_rgb"]
        .permute([2, 0, 1])
        .unsqueeze(0)
        .to_kind(Kind::Float)
        / 255.0;
    // (input, name, box tolerance in px, score tolerance)
    let cases = [
        (
            inputs["randn_seed0"].shallow_clone(),
            "randn_seed0",
            5e-3,
            1e-4,
        ),
        (image.shallow_clone(), "val00000_lb320", 1e-3, 1e-4),
    ];
    for (input, name, box_tol, score_tol) in cases {
        let decoded = detector.model.predict(&input);
        let expected = &outputs[&format!("{name}.y")];
        assert_eq!(decoded.y.size(), [1, 8, 2100]);
        let boxes = max_diff(&decoded.y.narrow(1, 0, 4), &expected.narrow(1, 0, 4));
        let scores = max_diff(&decoded.y.narrow(1, 4, 4), &expected.narrow(1, 4, 4));
        eprintln!("{name}: max |Δbox| = {boxes:.2e} px, max |Δscore| = {scores:.2e}");
        assert!(boxes <= box_tol, "{name}: boxes differ by {boxes} px");
        assert!(scores <= score_tol, "{name}: scores differ by {scores}");
        let logits = max_diff(
            &decoded.box_logits,
            &outputs[&format!("{name}.boxes_dfl_logits")],
        );
        assert!(logits <= 1e-3, "{name}: box logits differ by {logits}");
        let cls = max_diff(&decoded.cls_logits, &outputs[&format!("{name}.cls_logits")]);
        assert!(cls <= 1e-3, "{name}: class logits differ by {cls}");
    }

    // The Detect inputs of the real image, layer by layer.
    let features = tch::no_grad(|| detector.model.features(&image, false));
    for (feature, key) in features.iter().zip(["feat_p3", "feat_p4", "feat_p5"]) {
        let diff = max_diff(feature, &outputs[&format!("val00000_lb320.{key}")]);
        assert!(diff <= 1e-3, "{key} differs by {diff}");
    }
}
