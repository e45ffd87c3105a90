//! `roadsign predict FILE...`: the predict pipeline on image files (the JSON
//! of `POST /predict`, one object per line with the file name) and on videos
//! (the annotated copy written beside them).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nodes::predict::video::{VideoJob, VideoLimits};
use nodes::predict::Prediction;

use crate::predictor::{self, Predictor};
use roadsign::cli::{Cli, PlanFormat, PredictArgs};

const VIDEO_EXTENSIONS: [&str; 6] = ["mp4", "webm", "avi", "mov", "mkv", "m4v"];

fn is_video(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| VIDEO_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// `clip.mp4` → `clip.annotated.mp4`.
fn annotated_path(path: &Path) -> PathBuf {
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("video");
    path.with_file_name(format!("{stem}.annotated.mp4"))
}

/// The flags, as parameter overrides of the predict pipeline.
fn overrides(args: &PredictArgs) -> Vec<String> {
    let mut params = Vec::new();
    if let Some(conf) = args.conf {
        params.push(format!("predict.conf={conf}"));
    }
    if let Some(iou) = args.iou {
        params.push(format!("predict.iou={iou}"));
    }
    if let Some(imgsz) = args.imgsz {
        params.push(format!("predict.imgsz={imgsz}"));
    }
    if let Some(device) = &args.device {
        params.push(format!("predict.device={device}"));
    }
    if args.nms {
        params.push("predict.end2end=false".into());
    }
    params
}

pub fn predict_command(cli: &Cli, args: &PredictArgs) -> Result<()> {
    let config = roadsign::project::load_config(cli, &args.env, &overrides(args))?;
    let predictor = predictor::start(&config, args.model.as_deref())?;
    let mut failed = 0;
    for file in &args.files {
        let done = if is_video(file) {
            predict_video(&predictor, file, args.format)
        } else {
            predict_file(&predictor, file, args.format)
        };
        if let Err(err) = done {
            eprintln!("{}: {err:#}", file.display());
            failed += 1;
        }
    }
    if failed > 0 {
        bail!("{failed} of {} file(s) could not be read", args.files.len());
    }
    Ok(())
}

fn predict_file(predictor: &Predictor, file: &Path, format: PlanFormat) -> Result<()> {
    // Read as Ultralytics' predictor reads a file (libjpeg-turbo, OpenCV's
    // conversions, the EXIF orientation): the same file, the same pixels.
    let bytes = std::fs::read(file).context("cannot read the image")?;
    let image = yolo::imread::imread(&bytes).context("cannot read the image")?;
    let prediction = predictor
        .predict(image)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    print_prediction(file, &prediction, format)
}

fn print_prediction(file: &Path, prediction: &Prediction, format: PlanFormat) -> Result<()> {
    match format {
        PlanFormat::Json => {
            let mut value = serde_json::to_value(prediction)?;
            value["file"] = serde_json::Value::String(file.display().to_string());
            println!("{value}");
        }
        PlanFormat::Text => {
            println!(
                "{}: {} sign(s)",
                file.display(),
                prediction.detections.len()
            );
            for d in &prediction.detections {
                let [x1, y1, x2, y2] = d.bbox;
                let text = d
                    .text
                    .as_deref()
                    .map(|t| format!("  \"{t}\""))
                    .unwrap_or_default();
                println!(
                    "  {:<14} {:.2}  [{x1:.0}, {y1:.0}, {x2:.0}, {y2:.0}]{text}",
                    d.class, d.confidence
                );
            }
        }
    }
    Ok(())
}

fn predict_video(predictor: &Predictor, file: &Path, format: PlanFormat) -> Result<()> {
    let output = annotated_path(file);
    let job = VideoJob {
        input: file.to_path_buf(),
        output: output.clone(),
        limits: VideoLimits::none(),
    };
    let summary = predictor
        .annotate_video(job, &runner::CallOptions::default())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    match format {
        PlanFormat::Json => {
            let mut value = serde_json::to_value(&summary)?;
            value["file"] = serde_json::Value::String(file.display().to_string());
            value["annotated"] = serde_json::Value::String(output.display().to_string());
            println!("{value}");
        }
        PlanFormat::Text => println!(
            "{}: {} frame(s), {} sign track(s), {} OCR read(s) → {}",
            file.display(),
            summary.frames,
            summary.tracks,
            summary.ocr_reads,
            output.display()
        ),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn videos_are_told_by_extension_and_annotated_beside_them() {
        assert!(is_video(Path::new("a/clip.MP4")));
        assert!(!is_video(Path::new("a/photo.jpg")));
        assert_eq!(
            annotated_path(Path::new("a/clip.webm")),
            PathBuf::from("a/clip.annotated.mp4")
        );
    }
}
