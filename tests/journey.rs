//! The journeys the README documents, run as a user runs them from a fresh
//! project folder, in and out of the README's order: each pipeline on its
//! own once what it reads exists, `--env real` and back without retraining,
//! viz, catalog and pipeline listings, predict on an image and a clip,
//! serve, and a Kubeflow compile. Small data and few epochs come through
//! `--params`; the commands are otherwise the README's.

mod common;

use std::path::Path;
use std::process::Output;

use common::server::{shipped_model, Server};
use common::{http, Project};

/// Six 256 px scenes, one epoch at 64 px: the default pipeline in seconds.
const SMALL: &str =
    "data_generation.scenes=6,data_generation.width=256,data_generation.height=256,\
train.epochs=1,train.imgsz=64,train.batch=4,evaluate.grid_images=2,split.val_fraction=0.5";

/// The repository's project as a user clones it: the three YAML files, the
/// `real` environment and the shipped model.
fn fresh_project() -> Project {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let p = Project::new(&[]);
    for file in [
        "pipelines.yml",
        "catalog.yml",
        "parameters.yml",
        "conf/real/catalog.yml",
        "conf/real/parameters.yml",
        "conf/real/pipelines.yml",
    ] {
        p.write(file, &std::fs::read_to_string(root.join(file)).unwrap());
    }
    let shipped = p.file("models/yolov8n-roadsign.safetensors");
    std::fs::create_dir_all(shipped.parent().unwrap()).unwrap();
    std::fs::copy(shipped_model(), shipped).unwrap();
    p
}

/// `roadsign ARGS` in the project, with extra environment variables.
fn roadsign(p: &Project, args: &[&str], env: &[(&str, &Path)]) -> Output {
    let mut command = p.command(args);
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().unwrap()
}

/// Runs and expects exit 0; returns stderr's summary line of a run, or all of stderr.
fn succeeds(p: &Project, args: &[&str], env: &[(&str, &Path)]) -> String {
    let out = roadsign(p, args, env);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{args:?}: {stderr}");
    stderr
        .lines()
        .find(|l| l.starts_with("pipeline '"))
        .map_or(stderr.clone(), str::to_string)
}

/// Copies the generated VOC scenes into the public set's layout (`train/`
/// and `dev/`, each with `images/` and `annotations/`), as `--env real` reads it.
fn real_layout(from: &Path, to: &Path) {
    let mut scenes: Vec<_> = std::fs::read_dir(from.join("images"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    scenes.sort();
    for (i, image) in scenes.iter().enumerate() {
        let split = if i % 2 == 0 { "train" } else { "dev" };
        let stem = image.file_stem().unwrap().to_str().unwrap();
        for (folder, file) in [
            ("images", image.clone()),
            ("annotations", from.join(format!("annotations/{stem}.xml"))),
        ] {
            let target = to.join(split).join(folder);
            std::fs::create_dir_all(&target).unwrap();
            std::fs::copy(&file, target.join(file.file_name().unwrap())).unwrap();
        }
    }
}

#[test]
fn the_documented_commands_work_in_any_order() {
    let p = fresh_project();
    let params = ["--params", SMALL];
    let with =
        |args: &[&'static str]| -> Vec<&str> { args.iter().copied().chain(params).collect() };

    // Before any run: a pipeline whose inputs nothing wrote yet stops before
    // its first node, and its dry run says the same (exit 2).
    for args in [
        with(&["run", "--pipeline", "ocr"]),
        with(&["run", "--pipeline", "ocr", "--dry-run"]),
        with(&["run", "--pipeline", "detection", "--dry-run"]),
    ] {
        let out = roadsign(&p, &args, &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains("do not exist yet") && stderr.contains("'raw_signs'"),
            "{stderr}"
        );
        assert!(out.stdout.is_empty(), "{args:?}: nothing on stdout");
    }
    assert!(!p.file("data/08_reporting").exists(), "nothing ran");

    // predict before any training: the shipped model, said so.
    let image = p.file("photo.png");
    image::RgbImage::from_pixel(160, 120, image::Rgb([120, 130, 140]))
        .save(&image)
        .unwrap();
    let log = succeeds(&p, &["predict", image.to_str().unwrap()], &[]);
    assert!(log.contains("using the shipped model"), "{log}");

    // The default pipeline (`make run`), then each pipeline on its own:
    // nothing reruns, and a forced standalone OCR run reads what is persisted.
    let line = succeeds(&p, &with(&["run"]), &[]);
    assert!(line.contains("13 node(s) completed in"), "{line}");
    let line = succeeds(&p, &with(&["run", "--pipeline", "detection"]), &[]);
    assert!(line.contains("0 node(s) completed, 4 up to date"), "{line}");
    let line = succeeds(&p, &with(&["run", "--pipeline", "ocr"]), &[]);
    assert!(line.contains("0 node(s) completed, 6 up to date"), "{line}");
    let line = succeeds(&p, &with(&["run", "--pipeline", "ocr", "--force"]), &[]);
    assert!(line.contains("6 node(s) completed in"), "{line}");
    assert!(p.file("data/08_reporting/ocr_metrics.json").is_file());
    // Every named pipeline's dry run now passes the checks a run makes.
    for pipeline in [
        "classes",
        "data_generation",
        "dashcam",
        "detection",
        "ocr",
        "__default__",
    ] {
        let out = roadsign(
            &p,
            &with(&[
                "run",
                "--dry-run",
                "--format",
                "json",
                "--pipeline",
                pipeline,
            ]),
            &[],
        );
        assert!(
            out.status.success(),
            "{pipeline}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(plan["pipeline"], pipeline);
    }

    // `--env real` on photos in the public set's layout, and back: neither
    // environment retrains what the other left unchanged.
    let real = p.file("real-photos");
    real_layout(&p.file("data/01_raw/road_signs"), &real);
    let env: [(&str, &Path); 1] = [("ROADSIGN_REAL_DATA", &real)];
    let line = succeeds(&p, &with(&["run", "--env", "real"]), &env);
    // The class table is the same file with the same inputs in both: kept.
    assert!(
        line.contains("10 node(s) completed, 2 up to date"),
        "{line}"
    );
    assert!(p.file("data/06_models/yolov8_real.safetensors").is_file());
    for _ in 0..2 {
        let line = succeeds(&p, &with(&["run"]), &[]);
        assert!(
            line.contains("0 node(s) completed, 13 up to date"),
            "{line}"
        );
        let line = succeeds(&p, &with(&["run", "--env", "real"]), &env);
        assert!(
            line.contains("0 node(s) completed, 12 up to date"),
            "{line}"
        );
    }

    // viz in every format, catalog and pipeline listings.
    for (format, expected) in [
        ("mermaid", "flowchart"),
        ("dot", "digraph"),
        ("json", "\"nodes\""),
        ("html", "<html"),
    ] {
        let out = succeeds_stdout(&p, &["viz", "--format", format]);
        assert!(
            out.contains(expected),
            "viz {format}: {}",
            &out[..out.len().min(200)]
        );
        assert!(out.contains("load_ocr_signs"), "viz {format}");
    }
    let catalog = succeeds_stdout(&p, &["catalog", "list"]);
    assert!(
        catalog.contains("torch.ModelDataset")
            && catalog.contains("data/06_models/yolov8.safetensors"),
        "{catalog}"
    );
    let pipelines = succeeds_stdout(&p, &["pipeline", "list"]);
    for name in ["__default__", "classes", "detection", "ocr", "predict"] {
        assert!(pipelines.contains(name), "{pipelines}");
    }

    // predict on an image and a clip, with the model the run trained.
    let out = roadsign(
        &p,
        &["predict", image.to_str().unwrap(), "--format", "json"],
        &[],
    );
    assert!(out.status.success());
    assert!(!String::from_utf8_lossy(&out.stderr).contains("shipped model"));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        json["image"],
        serde_json::json!({"width": 160, "height": 120})
    );
    let clip = p.file("clip.mp4");
    common::make_clip(&clip, 5, 1, false);
    succeeds(&p, &["predict", clip.to_str().unwrap()], &[]);
    assert!(p.file("clip.annotated.mp4").is_file());

    // serve and POST /predict.
    let server = Server::ready(&p, &[]);
    let reply = http::post_file(
        &server.address,
        "/predict",
        "image/png",
        &std::fs::read(&image).unwrap(),
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["image"]["width"], 160);
    drop(server);

    // The Kubeflow spec of the default pipeline.
    let spec = succeeds_stdout(&p, &["kubeflow", "compile", "--pipeline", "__default__"]);
    assert!(spec.starts_with("# PIPELINE DEFINITION"), "{spec}");
    assert!(
        spec.contains("load_ocr_signs"),
        "the OCR steps read persisted data"
    );
}

/// Runs and expects exit 0; returns stdout.
fn succeeds_stdout(p: &Project, args: &[&str]) -> String {
    let out = roadsign(p, args, &[]);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}
