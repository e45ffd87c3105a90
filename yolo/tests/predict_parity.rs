//! Ultralytics' detections from the same files. `tests/fixtures/predict_parity/`
//! holds image files of several formats, sizes and aspect ratios and what
//! Ultralytics 8.4.190's predictor made of them (made once by
//! `scripts/oracle/predict_parity.py`): the pixels its `imread` gives (as a
//! digest), the letterboxed input, and the detections at imgsz 320 of the
//! shipped YOLOv8n and of a YOLOv10n (trained by roadsign on synthetic
//! scenes, stored here in float16: exact for both sides), each loaded into
//! Ultralytics' own model, the YOLOv10n both end to end and with NMS.
//! roadsign must read the same pixels, build the same input byte for byte,
//! and find the same boxes (within 0.1 px) with the same scores (within
//! 1e-3).

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use common::read;
use image::RgbImage;
use sha2::{Digest, Sha256};
use tch::{Device, Tensor};
use yolo::imread::imread;
use yolo::metrics::Detection;
use yolo::nms::NmsConfig;
use yolo::predict_input::PredictLetterbox;
use yolo::Detector;

const IMGSZ: u32 = 320;

fn fixtures() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/predict_parity");
    assert!(
        dir.join("ultralytics.safetensors").is_file(),
        "the predict-parity fixtures are missing from {}",
        dir.display()
    );
    dir
}

/// The image files and what Ultralytics made of them.
fn oracle() -> (Vec<String>, HashMap<String, Tensor>) {
    let expected = read(fixtures().join("ultralytics.safetensors"));
    let mut files: Vec<String> = expected
        .keys()
        .filter_map(|k| k.strip_suffix(".pixels_sha256").map(str::to_string))
        .collect();
    files.sort();
    assert_eq!(files.len(), 8, "{files:?}");
    (files, expected)
}

fn bytes_of(t: &Tensor) -> Vec<u8> {
    Vec::try_from(t.flatten(0, -1)).unwrap()
}

#[test]
fn files_read_and_letterbox_byte_for_byte_as_ultralytics() {
    let (files, expected) = oracle();
    for name in &files {
        let image = imread(&std::fs::read(fixtures().join(name)).unwrap()).unwrap();
        let shape: Vec<i64> = Vec::try_from(&expected[&format!("{name}.pixels_shape")]).unwrap();
        assert_eq!(
            [image.height() as i64, image.width() as i64, 3],
            shape.as_slice(),
            "{name}: size"
        );
        let digest = Sha256::digest(image.as_raw());
        assert_eq!(
            digest.as_slice(),
            bytes_of(&expected[&format!("{name}.pixels_sha256")]),
            "{name}: pixels"
        );
        let lb = PredictLetterbox::new(image.width(), image.height(), IMGSZ, 32, true);
        let input = lb.apply(&image);
        let theirs = &expected[&format!("{name}.input")];
        assert_eq!(
            [input.height() as i64, input.width() as i64, 3],
            theirs.size().as_slice(),
            "{name}: input size"
        );
        let theirs = bytes_of(theirs);
        let differing = input
            .as_raw()
            .iter()
            .zip(&theirs)
            .filter(|(a, b)| a != b)
            .count();
        assert_eq!(differing, 0, "{name}: {differing} input bytes differ");
    }
}

/// Ultralytics' detections of one file by one model.
fn theirs(expected: &HashMap<String, Tensor>, key: &str) -> Vec<Detection> {
    let boxes: Vec<f32> = Vec::try_from(expected[&format!("{key}.boxes")].flatten(0, -1)).unwrap();
    let scores: Vec<f32> = Vec::try_from(&expected[&format!("{key}.scores")]).unwrap();
    let classes: Vec<f32> = Vec::try_from(&expected[&format!("{key}.classes")]).unwrap();
    scores
        .iter()
        .enumerate()
        .map(|(i, &score)| Detection {
            bbox: [
                boxes[4 * i],
                boxes[4 * i + 1],
                boxes[4 * i + 2],
                boxes[4 * i + 3],
            ],
            score,
            class: classes[i] as usize,
        })
        // roadsign drops boxes clipped to nothing; so does this comparison.
        .filter(|d| d.bbox[2] > d.bbox[0] && d.bbox[3] > d.bbox[1])
        .collect()
}

/// Every detection of one side has its twin on the other (same class, box
/// within 0.1 px, score within 1e-3), except those within 1e-3 of the
/// threshold, which either side may keep.
fn assert_same_detections(
    label: &str,
    ours: &[Detection],
    theirs: &[Detection],
    conf: f32,
) -> usize {
    let twin = |a: &Detection, b: &Detection| {
        a.class == b.class
            && (a.score - b.score).abs() <= 1e-3
            && (0..4).all(|k| (a.bbox[k] - b.bbox[k]).abs() <= 0.1)
    };
    for (side, these, others) in [("ours", ours, theirs), ("Ultralytics'", theirs, ours)] {
        for d in these {
            assert!(
                others.iter().any(|o| twin(d, o)) || d.score - conf <= 1e-3,
                "{label}: {side} {d:?} has no twin among {others:?}"
            );
        }
    }
    let mut matched = 0;
    for d in ours {
        if let Some(t) = theirs.iter().find(|t| twin(d, t)) {
            matched += 1;
            let box_diff = (0..4)
                .map(|k| (d.bbox[k] - t.bbox[k]).abs())
                .fold(0.0, f32::max);
            eprintln!(
                "{label}: class {} score {:.4} (Δ {:.1e}), box Δ {:.1e} px",
                d.class,
                d.score,
                (d.score - t.score).abs(),
                box_diff
            );
        }
    }
    matched
}

fn detect(detector: &Detector, image: &RgbImage, conf: f32) -> Vec<Detection> {
    let nms = NmsConfig {
        conf,
        ..NmsConfig::predict()
    };
    detector.detect(&[image], &nms).pop().unwrap()
}

fn shipped_model() -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/yolov8n-roadsign.safetensors");
    assert!(
        path.is_file(),
        "the shipped model is missing: {}",
        path.display()
    );
    path
}

/// Every file through `detector`, against Ultralytics' `key` detections at
/// conf 0.25 and, as `key_low`, 0.05; returns how many matched.
fn compare_all(detector: &Detector, key: &str) -> usize {
    let (files, expected) = oracle();
    let mut matched = 0;
    for name in &files {
        let image = imread(&std::fs::read(fixtures().join(name)).unwrap()).unwrap();
        for (suffix, conf) in [(key.to_string(), 0.25), (format!("{key}_low"), 0.05)] {
            let label = format!("{name}.{suffix}");
            let want = theirs(&expected, &label);
            matched += assert_same_detections(&label, &detect(detector, &image, conf), &want, conf);
        }
    }
    eprintln!("{key}: {matched} detections matched Ultralytics'");
    matched
}

#[test]
fn the_shipped_yolov8_finds_ultralytics_boxes_in_the_same_files() {
    tch::set_num_threads(1);
    let detector = Detector::load(&shipped_model(), Device::Cpu).unwrap();
    let matched = compare_all(&detector, "yolov8");
    assert!(matched >= 30, "only {matched} detections to compare");
}

#[test]
fn a_yolov10_finds_ultralytics_boxes_end_to_end_and_with_nms() {
    tch::set_num_threads(1);
    let path = fixtures().join("yolov10n_synthetic_f16.safetensors");
    let mut detector = Detector::load(&path, Device::Cpu).unwrap();
    assert_eq!(detector.inference, yolo::Inference::EndToEnd);
    let end_to_end = compare_all(&detector, "yolov10");
    detector.set_end_to_end(false);
    let nms = compare_all(&detector, "yolov10nms");
    assert!(
        end_to_end >= 40 && nms >= 40,
        "{end_to_end} and {nms} detections to compare"
    );
}
