//! The release: `roadsign run --pipeline release` rebuilds the shipped model
//! from the synthetic scenes and the public photos, and the committed model
//! meets its goals on data no choice was made on (the photos' test half,
//! synthetic scenes of another seed). Both read the public photos beside the
//! repository: they belong to the `real_photos` suite, which fails where the
//! photos are absent and is left out by name elsewhere, never passed.

mod common;

use std::path::{Path, PathBuf};

use common::Project;

const SHIPPED: &str = "models/yolov8n-roadsign.safetensors";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn real_data() -> PathBuf {
    let root = repo().join("../shared/datasets/road-sign-detection");
    assert!(
        root.is_dir(),
        "{} is absent: put the public road-sign photos there, or leave this suite out with --skip real_photos",
        root.display()
    );
    root
}

/// The repository's project as a user clones it: the YAML files, the fixed
/// split of the photos' dev/, the models.
fn release_project() -> Project {
    let p = Project::new(&[]);
    for file in [
        "pipelines.yml",
        "catalog.yml",
        "parameters.yml",
        "conf/real_dev_split.csv",
        SHIPPED,
        "models/yolov8n-roadsign.history.csv",
        "models/yolov8n-roadsign-synthetic.safetensors",
    ] {
        let to = p.file(file);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(repo().join(file), to).unwrap();
    }
    p
}

fn run(p: &Project, args: &[&str]) -> String {
    let out = p
        .command(args)
        .env("ROADSIGN_REAL_DATA", real_data())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "roadsign {args:?}:\n{stderr}");
    stderr
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn class_ap50(metrics: &serde_json::Value, class: &str) -> f64 {
    metrics["per_class"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == class)
        .unwrap_or_else(|| panic!("no {class} in {metrics}"))["ap50"]
        .as_f64()
        .unwrap()
}

/// The committed model, evaluated here on the held-out sets: the goals of
/// the release, and the figures committed beside the model are the ones this
/// evaluation gives.
#[test]
fn real_photos_the_shipped_model_meets_its_goals_on_held_out_data() {
    let p = release_project();
    run(
        &p,
        &[
            "run",
            "--pipeline",
            "release",
            "--nodes",
            "generate_synthetic_test,load_synthetic_test,split_synthetic_test,\
             load_real_signs,split_real_signs,evaluate_release_synthetic,evaluate_release_real",
        ],
    );
    let real = json(&p.file("models/yolov8n-roadsign.real-test.json"));
    let synthetic = json(&p.file("models/yolov8n-roadsign.synthetic-test.json"));
    assert_eq!(real["images"], 71, "the photos' test half");
    assert_eq!(synthetic["images"], 200, "the held-out synthetic scenes");
    let map50_95 = real["map50_95"].as_f64().unwrap();
    assert!(map50_95 >= 0.60, "real test half mAP50-95 {map50_95}");
    let lights = class_ap50(&real, "traffic_light");
    assert!(lights >= 0.50, "traffic lights AP50 {lights}");
    let map50 = synthetic["map50"].as_f64().unwrap();
    assert!(map50 >= 0.95, "synthetic test mAP50 {map50}");
    for (name, measured) in [("real-test", &real), ("synthetic-test", &synthetic)] {
        let committed = json(&repo().join(format!("models/yolov8n-roadsign.{name}.json")));
        for key in ["map50", "map50_95"] {
            let (now, then) = (
                measured[key].as_f64().unwrap(),
                committed[key].as_f64().unwrap(),
            );
            assert!(
                (now - then).abs() < 1e-3,
                "{name} {key}: {now} here, {then} committed"
            );
        }
    }
}

/// The pipeline that made the shipped model, with tiny parameters: every
/// node runs, the model and its record land in models/, and a second run
/// finds everything up to date.
#[test]
fn real_photos_the_release_pipeline_rebuilds_the_model() {
    let p = release_project();
    let committed = std::fs::read(p.file(SHIPPED)).unwrap();
    let tiny = "data_generation.scenes=8,data_generation.width=256,data_generation.height=256,\
                release.synthetic_test.scenes=4,release.synthetic_test.width=256,\
                release.synthetic_test.height=256,release.train.epochs=1,release.train.imgsz=64,\
                release.train.batch=8,release.evaluate.grid_images=2";
    run(&p, &["run", "--pipeline", "release", "--params", tiny]);
    let rebuilt = std::fs::read(p.file(SHIPPED)).unwrap();
    assert_ne!(rebuilt, committed, "the model was retrained");
    let history = p.read("models/yolov8n-roadsign.history.csv");
    assert_eq!(
        history.lines().count(),
        2,
        "a header and one epoch:\n{history}"
    );
    let real = json(&p.file("models/yolov8n-roadsign.real-test.json"));
    assert_eq!(real["images"], 71);
    let synthetic = json(&p.file("models/yolov8n-roadsign.synthetic-test.json"));
    assert_eq!(synthetic["images"], 4);
    for report in ["real_test_per_class.csv", "training_curves.png"] {
        assert!(
            p.file("data/08_reporting/release").join(report).is_file(),
            "{report}"
        );
    }
    // The training set is both sources merged: the photos' train split and
    // the synthetic train split.
    let train = std::fs::read_dir(p.file("data/05_model_input/yolo_release/images/train"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect::<Vec<_>>();
    assert!(train.iter().any(|f| f.starts_with("road")), "{train:?}");
    assert!(train.iter().any(|f| f.starts_with("scene")), "{train:?}");
    assert_eq!(train.iter().filter(|f| f.starts_with("road")).count(), 537);
    let again = run(&p, &["run", "--pipeline", "release", "--params", tiny]);
    assert!(again.contains(" 0 node(s) completed"), "{again}");
}
