//! YOLOv10 against Ultralytics itself. `tests/fixtures/oracle/yolov10n/`
//! holds Ultralytics' own YOLOv10n (nc 4, BatchNorm statistics randomised),
//! its eval outputs for both heads, its NMS-free top-300 and its training
//! loss on a fixed batch (copied from the project's shared oracle, README
//! beside them); `yolov10_scales.json` every scale's tensor names, shapes
//! and parameter counts as Ultralytics builds them from its yaml (made by
//! `scripts/oracle/yolov10_scales.py`). The fixtures are committed, so every
//! CI runs these tests.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use common::{max_diff, oracle_dir, read};
use tch::{nn, Device, Kind, Tensor};
use yolo::loss::{EndToEndLoss, LossGains, Targets};
use yolo::model::{HeadMaps, Predicted};
use yolo::{Architecture, Detector, Inference, ModelSpec, Network, Scale};

fn fixtures() -> PathBuf {
    oracle_dir("yolov10n/yolov10n_nc4.safetensors")
}

fn meta() -> serde_json::Value {
    let text = std::fs::read_to_string(fixtures().join("yolov10n/meta.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The oracle's two inputs: the random one, and the road scene in [0, 1].
fn inputs() -> [(Tensor, &'static str, f64); 2] {
    let inputs = read(fixtures().join("inputs.safetensors"));
    let scene = inputs["val00000_lb320_u8_hwc_rgb"]
        .permute([2, 0, 1])
        .unsqueeze(0)
        .to_kind(Kind::Float)
        / 255.0;
    // (input, name, box tolerance in px)
    [
        (inputs["randn_seed0"].shallow_clone(), "randn_seed0", 5e-3),
        (scene, "val00000_lb320", 1e-3),
    ]
}

fn load() -> Detector {
    tch::set_num_threads(1);
    let detector = Detector::load(
        &fixtures().join("yolov10n/yolov10n_nc4.safetensors"),
        Device::Cpu,
    )
    .unwrap();
    // An Ultralytics file without metadata: architecture and scale from its tensors.
    assert_eq!(detector.info.spec().to_string(), "yolov10n");
    assert_eq!(detector.inference, Inference::EndToEnd);
    detector
}

#[test]
fn both_heads_match_ultralytics_in_eval_mode() {
    let detector = load();
    let Network::V10(model) = &detector.model else {
        panic!("a YOLOv10 file builds a YOLOv10");
    };
    let outputs = read(fixtures().join("yolov10n/outputs.safetensors"));
    for (input, name, box_tol) in inputs() {
        for (head, one2one) in [("one2many", false), ("one2one", true)] {
            let decoded = tch::no_grad(|| model.decode(&model.head_maps(&input, one2one), true));
            let boxes = max_diff(
                &decoded.box_logits,
                &outputs[&format!("{name}.{head}.boxes")],
            );
            let scores = max_diff(
                &decoded.cls_logits,
                &outputs[&format!("{name}.{head}.scores")],
            );
            eprintln!("{name} {head}: max |Δ box logit| {boxes:.2e}, |Δ class logit| {scores:.2e}");
            assert!(boxes <= 1e-3, "{name} {head}: box logits differ by {boxes}");
            assert!(
                scores <= 1e-3,
                "{name} {head}: class logits differ by {scores}"
            );
        }
        // The default eval output of this Ultralytics version: one-to-many, decoded.
        let y = detector.model.predict(&input).y;
        let expected = &outputs[&format!("{name}.y_one2many")];
        let boxes = max_diff(&y.narrow(1, 0, 4), &expected.narrow(1, 0, 4));
        let scores = max_diff(&y.narrow(1, 4, 4), &expected.narrow(1, 4, 4));
        eprintln!("{name} y_one2many: max |Δbox| {boxes:.2e} px, |Δscore| {scores:.2e}");
        assert!(boxes <= box_tol, "{name}: boxes differ by {boxes} px");
        assert!(scores <= 1e-4, "{name}: scores differ by {scores}");
    }
    let (scene, ..) = &inputs()[1];
    let features = tch::no_grad(|| detector.model.features(scene, false));
    for (feature, key) in features.iter().zip(["feat_p3", "feat_p4", "feat_p5"]) {
        let expected = &outputs[&format!("val00000_lb320.{key}")];
        let diff = max_diff(feature, expected);
        // This model's features are small (std about 0.05): judge them relative to it.
        let spread = expected.std(true).double_value(&[]);
        eprintln!("{key}: max |Δ| {diff:.2e} (std {spread:.2e})");
        assert!(diff <= 1e-3 * spread, "{key} differs by {diff}");
    }
}

#[test]
fn the_nms_free_top_300_matches_ultralytics_end2end() {
    let detector = load();
    let outputs = read(fixtures().join("yolov10n/outputs.safetensors"));
    for (input, name, box_tol) in inputs() {
        let Predicted::TopK(rows) = detector.model.infer(&input, Inference::EndToEnd, 300) else {
            panic!("end to end gives the top-k");
        };
        let expected = &outputs[&format!("{name}.y_end2end")];
        assert_eq!(rows.size(), [1, 300, 6]);
        let ours: Vec<f32> = Vec::try_from(rows.flatten(0, -1)).unwrap();
        let theirs: Vec<f32> = Vec::try_from(expected.flatten(0, -1)).unwrap();
        let (ours, theirs): (Vec<&[f32]>, Vec<&[f32]>) =
            (ours.chunks(6).collect(), theirs.chunks(6).collect());
        let same_detection = |a: &[f32], b: &[f32]| {
            a[5] == b[5]
                && (0..4).all(|k| ((a[k] - b[k]).abs() as f64) <= box_tol)
                && (a[4] - b[4]).abs() <= 1e-5
        };
        // Where Ultralytics' scores are apart by more than 1e-6, the same
        // detection at the same rank.
        let mut ranked = 0;
        for i in 0..300 {
            let tied = (i > 0 && (theirs[i][4] - theirs[i - 1][4]).abs() <= 1e-6)
                || (i < 299 && (theirs[i][4] - theirs[i + 1][4]).abs() <= 1e-6);
            if !tied {
                assert!(
                    same_detection(ours[i], theirs[i]),
                    "{name} rank {i}: {:?} vs {:?}",
                    ours[i],
                    theirs[i]
                );
                ranked += 1;
            }
        }
        // Ties may come in another order (this random-BatchNorm model scores
        // nearly every anchor alike): then the same detections, each with its
        // score, except those tied with the 300th, which may be cut either way.
        let cut = theirs[299][4];
        let mut unused: Vec<&[f32]> = theirs.clone();
        for row in &ours {
            match unused.iter().position(|t| same_detection(row, t)) {
                Some(k) => {
                    unused.swap_remove(k);
                }
                None => assert!(
                    row[4] - cut <= 1e-6,
                    "{name}: {row:?} is not among Ultralytics' top 300"
                ),
            }
        }
        assert!(
            unused.iter().all(|t| t[4] - cut <= 1e-6),
            "{name}: Ultralytics' {:?} missing",
            unused.iter().find(|t| t[4] - cut > 1e-6)
        );
        eprintln!(
            "{name}: {ranked} ranks untied and equal; {} of 300 detections shared (the rest tie at the cut)",
            300 - unused.len()
        );
        assert!(
            300 - unused.len() >= 280,
            "{name}: {} unmatched",
            unused.len()
        );
    }
}

#[test]
fn the_training_loss_matches_ultralytics_e2e_loss() {
    let detector = load();
    let meta = meta();
    let batch = &meta["loss_batch"];
    let (scene, random) = {
        let [(random, ..), (scene, ..)] = inputs();
        (scene, random)
    };
    let images = Tensor::cat(&[scene, random.clamp(-2.0, 2.0) * 0.25 + 0.5], 0);
    let numbers = |key: &str| -> Vec<f32> {
        batch[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect()
    };
    let (index, class) = (numbers("batch_idx"), numbers("cls"));
    let boxes = batch["bboxes_xywh_normalised"].as_array().unwrap();
    let mut rows = Vec::new();
    for (i, xywh) in boxes.iter().enumerate() {
        rows.extend([index[i], class[i]]);
        rows.extend(
            xywh.as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap() as f32),
        );
    }
    let targets = Targets {
        rows: Tensor::from_slice(&rows).view([-1, 6]),
    };
    // Ultralytics computed it in train mode (batch statistics), at the first epoch.
    let HeadMaps::Dual(maps) = detector.model.forward_t(&images, true) else {
        panic!("YOLOv10 has two heads");
    };
    let mut loss = EndToEndLoss::new(4, LossGains::default(), 100);
    loss.set_epoch(0);
    let parts = loss.compute(&maps, &targets);
    assert_eq!(parts.o2m, 0.8);
    let b = 2.0;
    let o2o = 1.0 - parts.o2m;
    let combined = [
        b * (parts.o2m * parts.one2many.box_loss + o2o * parts.one2one.box_loss),
        b * (parts.o2m * parts.one2many.cls_loss + o2o * parts.one2one.cls_loss),
        b * (parts.o2m * parts.one2many.dfl_loss + o2o * parts.one2one.dfl_loss),
    ];
    let expected: Vec<f64> = meta["loss_sum_times_batch"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let items = &meta["loss_items"];
    let item = |key: &str| items[key][0].as_f64().unwrap();
    let logged = [
        parts.one2one.box_loss,
        parts.one2one.cls_loss,
        parts.one2one.dfl_loss,
    ];
    let logged_expected = [item("box_loss"), item("cls_loss"), item("dfl_loss")];
    eprintln!("loss ×B: {combined:?} vs {expected:?}; logged {logged:?} vs {logged_expected:?}");
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-4 * b.abs();
    for k in 0..3 {
        assert!(
            close(combined[k], expected[k]),
            "part {k}: {} vs {}",
            combined[k],
            expected[k]
        );
        assert!(
            close(logged[k], logged_expected[k]),
            "logged {k}: {} vs {}",
            logged[k],
            logged_expected[k]
        );
    }
    let total = parts.total.double_value(&[]);
    assert!(close(total, expected.iter().sum()), "total {total}");
    // And the weights move as Ultralytics' update() moves them.
    loss.set_epoch(99);
    let last = loss.compute(&maps, &targets);
    assert!((last.o2m - 0.1).abs() < 1e-12, "{}", last.o2m);
    loss.set_epoch(33);
    let third = loss.compute(&maps, &targets);
    assert!((third.o2m - (0.8 - 0.7 * 33.0 / 99.0)).abs() < 1e-12);
}

#[test]
fn every_scale_has_ultralytics_names_shapes_and_parameter_counts() {
    let text = std::fs::read_to_string(fixtures().join("yolov10_scales.json")).unwrap();
    let fixture: serde_json::Value = serde_json::from_str(&text).unwrap();
    for scale in Architecture::V10.scales() {
        let expected = &fixture["scales"][scale.name()];
        let spec = ModelSpec::new(Architecture::V10, *scale).unwrap();
        let count = |nc: i64| -> (BTreeMap<String, Vec<i64>>, i64) {
            let vs = nn::VarStore::new(Device::Cpu);
            let _model = tch::no_grad(|| Network::new(&vs.root(), spec, nc));
            let shapes: BTreeMap<String, Vec<i64>> = vs
                .variables()
                .into_iter()
                .map(|(name, t)| (name, t.size()))
                .collect();
            let parameters = shapes
                .iter()
                .filter(|(name, _)| !name.contains("running_"))
                .map(|(_, s)| s.iter().product::<i64>())
                .sum();
            (shapes, parameters)
        };
        let (shapes, parameters) = count(4);
        let theirs: BTreeMap<String, Vec<i64>> =
            serde_json::from_value(expected["shapes_nc4"].clone()).unwrap();
        assert_eq!(shapes, theirs, "yolov10{scale}: tensor names and shapes");
        assert_eq!(
            parameters,
            expected["parameters_nc4"].as_i64().unwrap(),
            "yolov10{scale}"
        );
        if *scale == Scale::N || *scale == Scale::B {
            let (_, at80) = count(80);
            assert_eq!(
                at80,
                expected["parameters_nc80"].as_i64().unwrap(),
                "yolov10{scale} nc 80"
            );
        }
    }
}

#[test]
fn the_one_to_one_head_starts_as_a_copy_of_the_one_to_many_head() {
    let vs = nn::VarStore::new(Device::Cpu);
    let spec = ModelSpec::new(Architecture::V10, Scale::N).unwrap();
    let _model = Network::new(&vs.root(), spec, 3);
    let variables = vs.variables();
    let mut copies = 0;
    for (name, tensor) in &variables {
        if let Some(rest) = name.strip_prefix("model.23.one2one_") {
            let original = &variables[&format!("model.23.{rest}")];
            assert!(
                tensor.equal(original),
                "{name} differs from its one-to-many twin"
            );
            copies += 1;
        }
    }
    assert!(copies > 50, "{copies}");
}
