//! `roadsign predict FILE...`: the signs of each image, as text or as the JSON
//! of `POST /predict` (one object per line, with the file name).

use anyhow::{bail, Context, Result};
use nodes::detection::inference::predict_image;
use yolo::nms::NmsConfig;

use crate::cli::{Cli, PlanFormat, PredictArgs};

pub fn predict_command(cli: &Cli, args: &PredictArgs) -> Result<()> {
    let model = args
        .model
        .clone()
        .unwrap_or_else(|| cli.project_dir.join("data/06_models/yolov8.safetensors"));
    if !model.exists() {
        bail!(
            "no model at {}: train one with `roadsign run` or pass --model FILE",
            model.display()
        );
    }
    let device = yolo::train::parse_device(&args.device)?;
    let detector = yolo::Detector::load(&model, device)?;
    let imgsz = args.imgsz.unwrap_or(detector.info.imgsz as u32);
    if imgsz == 0 || !imgsz.is_multiple_of(32) {
        bail!("--imgsz must be a positive multiple of 32, not {imgsz}");
    }
    let nms = NmsConfig {
        conf: args.conf,
        iou: args.iou,
        ..NmsConfig::predict()
    };
    let mut failed = 0;
    for file in &args.files {
        let image = match image::open(file)
            .with_context(|| format!("{}: cannot read the image", file.display()))
        {
            Ok(image) => nodes::images::to_rgb8(&image),
            Err(err) => {
                eprintln!("{err:#}");
                failed += 1;
                continue;
            }
        };
        let prediction = predict_image(&detector, &image, imgsz, &nms);
        match args.format {
            PlanFormat::Json => {
                let mut value = serde_json::to_value(&prediction)?;
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
                    println!(
                        "  {:<14} {:.2}  [{x1:.0}, {y1:.0}, {x2:.0}, {y2:.0}]",
                        d.class, d.confidence
                    );
                }
            }
        }
    }
    if failed > 0 {
        bail!("{failed} of {} file(s) could not be read", args.files.len());
    }
    Ok(())
}
