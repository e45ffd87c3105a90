//! Single-image inference latency (batch 1), the figure Ultralytics reports
//! as "inference": median over repeated runs after a warm-up. A YOLOv10 is
//! timed in both modes, end to end (no NMS) and with NMS.
//!
//! `cargo bench -p yolo --bench inference [-- MODEL.safetensors]`
//! Environment: `BENCH_RUNS` (default 50), `BENCH_THREADS` (default 2),
//! `BENCH_IMGSZ` (default `320,640`), `BENCH_IMAGE` (an image file; default a
//! 640x640 pattern). Without a model file a freshly initialised YOLOv8n with
//! 9 classes is timed (the forward pass does not depend on the weights; NMS
//! does, through how many boxes pass the threshold).

use std::time::Instant;

use image::{Rgb, RgbImage};
use tch::Device;
use yolo::nms::NmsConfig;
use yolo::{Detector, ModelInfo, Scale};

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let runs: usize = env_or("BENCH_RUNS", 50);
    let threads: i32 = env_or("BENCH_THREADS", 2);
    let sizes: Vec<u32> = std::env::var("BENCH_IMGSZ")
        .unwrap_or_else(|_| "320,640".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    tch::set_num_threads(threads);
    let model_path = std::env::args()
        .skip(1)
        .find(|a| a.ends_with(".safetensors"));
    let detector = match &model_path {
        Some(path) => Detector::load(std::path::Path::new(path), Device::Cpu).expect("model file"),
        None => Detector::new(
            ModelInfo {
                names: (0..9).map(|i| format!("c{i}")).collect(),
                arch: yolo::Architecture::V8,
                scale: Scale::N,
                imgsz: 640,
                name: None,
                version: None,
            },
            Device::Cpu,
        ),
    };
    // The letterbox work is part of the latency.
    let image = match std::env::var("BENCH_IMAGE") {
        Ok(path) => {
            yolo::imread::imread(&std::fs::read(path).expect("BENCH_IMAGE")).expect("an image")
        }
        Err(_) => RgbImage::from_fn(640, 640, |x, y| {
            Rgb([(x % 251) as u8, (y % 241) as u8, ((x + y) % 239) as u8])
        }),
    };
    let nms = NmsConfig::predict();
    let modes = match detector.model.default_inference() {
        yolo::Inference::EndToEnd => vec![yolo::Inference::EndToEnd, yolo::Inference::Nms],
        yolo::Inference::Nms => vec![yolo::Inference::Nms],
    };
    for (imgsz, mode) in sizes
        .iter()
        .flat_map(|&s| modes.iter().map(move |&m| (s, m)))
    {
        let mut forward = Vec::with_capacity(runs);
        let mut end_to_end = Vec::with_capacity(runs);
        let input = tch::Tensor::rand(
            [1, 3, imgsz as i64, imgsz as i64],
            (tch::Kind::Float, Device::Cpu),
        );
        for i in 0..runs + 5 {
            let t = Instant::now();
            let _ = detector.model.infer(&input, mode, nms.max_det);
            let f = t.elapsed().as_secs_f64() * 1000.0;
            let t = Instant::now();
            let _ = yolo::predict::detect(&detector.model, &[&image], imgsz, 1, &nms, mode);
            let e = t.elapsed().as_secs_f64() * 1000.0;
            if i >= 5 {
                forward.push(f);
                end_to_end.push(e);
            }
        }
        println!(
            "{{\"model\": \"{}\", \"mode\": \"{mode:?}\", \"imgsz\": {imgsz}, \"threads\": {threads}, \"runs\": {runs}, \"forward_ms_median\": {:.2}, \"letterbox_forward_nms_ms_median\": {:.2}}}",
            detector.info.spec(),
            median(forward),
            median(end_to_end)
        );
    }
}
