//! A tiny YOLOv8n, and a YOLOv10n, learn a handful of generated images: the
//! training loss falls and mAP50 on the same images reaches 0.9 within a
//! bounded number of epochs (YOLOv10 read end to end, without NMS).

use image::{Rgb, RgbImage};
use yolo::augment::{AugmentConfig, Labeled};
use yolo::train::{train, Progress, TrainConfig};

// 16 images in batches of 4: enough optimiser steps for BatchNorm's running
// statistics (momentum 0.03) to settle, since evaluation runs in eval mode.

/// Red squares (class 0) and blue wide bars (class 1) on grey, at varied places.
fn scenes(n: usize) -> Vec<Labeled> {
    (0..n)
        .map(|i| {
            let mut image = RgbImage::from_pixel(128, 128, Rgb([120, 120, 120]));
            let mut boxes = Vec::new();
            let mut classes = Vec::new();
            let (x, y) = (8 + (i as u32 * 37) % 64, 8 + (i as u32 * 23) % 64);
            for (class, (w, h), colour, (dx, dy)) in [
                (0usize, (32u32, 32u32), [220u8, 30, 30], (0u32, 0u32)),
                (1, (48, 16), [30, 60, 220], (20, 80)),
            ] {
                let (x0, y0) = ((x + dx) % 72, (y + dy) % 100);
                for py in y0..y0 + h {
                    for px in x0..x0 + w {
                        image.put_pixel(px, py, Rgb(colour));
                    }
                }
                boxes.push([x0 as f32, y0 as f32, (x0 + w) as f32, (y0 + h) as f32]);
                classes.push(class);
            }
            Labeled {
                image,
                boxes,
                classes,
            }
        })
        .collect()
}

#[test]
fn a_tiny_model_overfits_a_few_images() {
    overfits(None);
}

#[test]
fn a_tiny_yolov10_overfits_a_few_images_and_answers_without_nms() {
    let outcome = overfits(Some("yolov10n"));
    assert_eq!(outcome.best.inference, yolo::Inference::EndToEnd);
    assert_eq!(outcome.best.info.spec().to_string(), "yolov10n");
}

fn overfits(model: Option<&str>) -> yolo::train::TrainOutcome {
    tch::set_num_threads(2);
    let data = scenes(16);
    let config = TrainConfig {
        model: model.map(|name| name.parse().unwrap()),
        epochs: 50,
        batch: 4,
        imgsz: 128,
        optimizer: "AdamW".into(),
        lr0: 0.01,
        nbs: 4,
        warmup_epochs: 0.0,
        close_mosaic: 0,
        device: "cpu".into(),
        augment: AugmentConfig::none(),
        ..TrainConfig::default()
    };
    let mut losses = Vec::new();
    let outcome = train(
        &data,
        &data,
        vec!["square".into(), "bar".into()],
        &config,
        &mut |event| {
            if let Progress::EpochEnd(record) = event {
                eprintln!(
                    "epoch {} loss {:.3}/{:.3}/{:.3} mAP50 {:.3}",
                    record.epoch, record.box_loss, record.cls_loss, record.dfl_loss, record.map50
                );
                losses.push(record.box_loss + record.cls_loss + record.dfl_loss);
            }
        },
    )
    .unwrap();
    let first = losses[..3].iter().sum::<f64>() / 3.0;
    let last = losses[losses.len() - 3..].iter().sum::<f64>() / 3.0;
    assert!(last < first * 0.7, "loss {first} → {last}");
    assert!(
        outcome.best_metrics.map50 >= 0.9,
        "mAP50 {}",
        outcome.best_metrics.map50
    );
    outcome
}
