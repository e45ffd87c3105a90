//! `roadsign run` for real: datasets written, failures saved and resumable,
//! parallel equal to sequential, environments and type checks.

mod common;
use common::{repo_project, Project};

/// A small but complete default run: classes, generated scenes, YOLO layout,
/// one epoch of training at 64 px and the evaluation reports.
const SMALL: &str =
    "data_generation.scenes=6,data_generation.width=256,data_generation.height=256,\
train.epochs=1,train.imgsz=64,train.batch=4,evaluate.grid_images=2,split.val_fraction=0.5";

#[test]
fn the_default_pipeline_writes_its_datasets() {
    let p = repo_project();
    let out = p.roadsign(&["run", "--params", SMALL]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("13 node(s) completed"), "{stderr}");
    let csv = p.read("data/03_primary/classes.csv");
    assert!(
        csv.starts_with("id,name,has_text,description\n0,speed_limit,true,"),
        "{csv}"
    );
    let summary: serde_json::Value =
        serde_json::from_str(&p.read("data/08_reporting/classes.json")).unwrap();
    assert_eq!(summary["classes"], 9);
    assert_eq!(summary["classes_with_text"], 5);
    assert!(p
        .file("data/01_raw/road_signs/annotations/scene_00005.xml")
        .is_file());
    assert!(stderr.contains("slowest nodes (of 13 run"), "{stderr}");
    let runs: Vec<_> = std::fs::read_dir(p.file("data/09_tracking/runs"))
        .unwrap()
        .collect();
    assert_eq!(runs.len(), 1);
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(runs[0].as_ref().unwrap().path()).unwrap())
            .unwrap();
    assert_eq!(record["status"], "completed");
    assert_eq!(record["nodes"].as_array().unwrap().len(), 13);
    assert_eq!(record["parameters"]["data_generation"]["scenes"], 6);
    assert!(
        record["dataset_bytes"]["class_table"].as_u64().unwrap() > 100,
        "{record}"
    );
    assert!(record["command"].as_str().unwrap().contains("run --params"));
    let yaml = p.read("data/05_model_input/yolo/data.yaml");
    assert!(yaml.contains("nc: 9"), "{yaml}");
    let labels = std::fs::read_dir(p.file("data/05_model_input/yolo/labels/train"))
        .unwrap()
        .count()
        + std::fs::read_dir(p.file("data/05_model_input/yolo/labels/val"))
            .unwrap()
            .count();
    assert_eq!(labels, 6);

    // The detector and its reports.
    let model = std::fs::read(p.file("data/06_models/yolov8.safetensors")).unwrap();
    assert!(model.len() > 1_000_000, "a YOLOv8n is about 12 MB");
    let metrics: serde_json::Value =
        serde_json::from_str(&p.read("data/08_reporting/detection_metrics.json")).unwrap();
    assert_eq!(metrics["model"]["scale"], "n");
    assert_eq!(metrics["model"]["imgsz"], 64);
    // mAP is the mean of the per-class APs (classes with labels), and the
    // strict IoU range never scores above IoU 0.5.
    let per_class = metrics["per_class"].as_array().unwrap();
    assert!(!per_class.is_empty(), "{metrics}");
    let mean = |key: &str| {
        per_class
            .iter()
            .map(|c| c[key].as_f64().unwrap())
            .sum::<f64>()
            / per_class.len() as f64
    };
    let (map50, map) = (
        metrics["map50"].as_f64().unwrap(),
        metrics["map50_95"].as_f64().unwrap(),
    );
    assert!((map50 - mean("ap50")).abs() < 1e-9, "{metrics}");
    assert!((map - mean("ap50_95")).abs() < 1e-9, "{metrics}");
    assert!(map <= map50, "{metrics}");
    assert_eq!(
        metrics["labels"].as_u64().unwrap(),
        per_class
            .iter()
            .map(|c| c["labels"].as_u64().unwrap())
            .sum::<u64>()
    );
    let history = p.read("data/08_reporting/training_history.csv");
    assert!(
        history.starts_with("epoch,box_loss,cls_loss,dfl_loss,"),
        "{history}"
    );
    assert_eq!(history.lines().count(), 2);
    for figure in [
        "pr_curves",
        "confusion_matrix",
        "training_curves",
        "val_predictions",
    ] {
        let png = image::open(p.file(&format!("data/08_reporting/{figure}.png"))).unwrap();
        assert!(png.width() >= 320, "{figure}");
    }
    assert!(p.file("data/06_models/checkpoints/state.json").is_file());

    // OCR read the text signs of the val split, and wrote its reports.
    let ocr: serde_json::Value =
        serde_json::from_str(&p.read("data/08_reporting/ocr_metrics.json")).unwrap();
    let regions = ocr["ground_truth_regions"]["raw"]["regions"]
        .as_u64()
        .unwrap();
    assert!(regions > 0, "{ocr}");
    let reads = p.read("data/08_reporting/ocr_reads.csv");
    assert!(
        reads.starts_with(
            "image,class,xmin,ymin,xmax,ymax,source,truth,legibility,read,corrected,confidence,cer,cer_corrected\n"
        ),
        "{reads}"
    );
    assert!(p.file("data/08_reporting/ocr_worst_reads.png").is_file());

    // `roadsign predict` reads images with that model, as POST /predict answers.
    let scene = p.file("data/01_raw/road_signs/images/scene_00000.jpg");
    let json = p.ok(&[
        "predict",
        scene.to_str().unwrap(),
        "--format",
        "json",
        "--conf",
        "0.001",
    ]);
    let first: serde_json::Value = serde_json::from_str(json.lines().next().unwrap()).unwrap();
    assert_eq!(
        first["image"],
        serde_json::json!({"width": 256, "height": 256})
    );
    assert_eq!(first["file"], scene.to_str().unwrap());
    for d in first["detections"].as_array().unwrap() {
        assert!(d["confidence"].as_f64().unwrap() >= 0.001);
        assert_eq!(d["box"].as_array().unwrap().len(), 4);
    }
    let text = p.ok(&["predict", scene.to_str().unwrap()]);
    assert!(
        text.starts_with(&format!("{}: ", scene.display())),
        "{text}"
    );
    // A file that is not an image is named, the others still answered.
    p.write("notes.txt", "not an image");
    let out = p.roadsign(&[
        "predict",
        p.file("notes.txt").to_str().unwrap(),
        scene.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("notes.txt: cannot read the image"),
        "{stderr}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("scene_00000.jpg: "));
}

#[test]
fn predict_without_a_trained_model_uses_the_shipped_one_and_bad_models_exit_2() {
    let p = repo_project();
    let image = p.file("scene.png");
    image::RgbImage::from_pixel(96, 64, image::Rgb([90, 120, 160]))
        .save(&image)
        .unwrap();
    // Neither a trained model nor a shipped one: what to do, exit 2.
    let stderr = p.fails(&["predict", image.to_str().unwrap()], 2);
    assert!(
        stderr.contains("no model")
            && stderr.contains("roadsign run")
            && stderr.contains("--model"),
        "{stderr}"
    );
    // The shipped model, said so in the log.
    let shipped = p.file("models/yolov8n-roadsign.safetensors");
    std::fs::create_dir_all(shipped.parent().unwrap()).unwrap();
    std::fs::copy(common::server::shipped_model(), &shipped).unwrap();
    let out = p.roadsign(&["predict", image.to_str().unwrap(), "--format", "json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(
            "no trained model at data/06_models/yolov8.safetensors: using the shipped model"
        ),
        "{stderr}"
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        json["image"],
        serde_json::json!({"width": 96, "height": 64})
    );
    // A model file it was pointed at that is missing or corrupt: exit 2, named.
    let stderr = p.fails(
        &[
            "predict",
            image.to_str().unwrap(),
            "--model",
            "nope.safetensors",
        ],
        2,
    );
    assert!(
        stderr.contains("cannot read the model nope.safetensors"),
        "{stderr}"
    );
    p.write("broken.safetensors", "not a model");
    let broken = p.file("broken.safetensors");
    let stderr = p.fails(
        &[
            "predict",
            image.to_str().unwrap(),
            "--model",
            broken.to_str().unwrap(),
        ],
        2,
    );
    assert!(stderr.contains("is not a model file"), "{stderr}");
    // A corrupt trained model in the catalog's place is refused the same way.
    p.write("data/06_models/yolov8.safetensors", "truncated");
    let stderr = p.fails(&["predict", image.to_str().unwrap()], 2);
    assert!(stderr.contains("yolov8.safetensors"), "{stderr}");
    let out = p.roadsign(&["serve", "--port", "0"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn yolov10_trains_through_the_pipeline_and_predicts_without_nms() {
    let p = repo_project();
    // A model name that is none of Ultralytics' stops the run before its first node.
    let bad = format!("{SMALL},train.model=yolov10q");
    let stderr = p.fails(&["run", "--params", &bad], 2);
    assert!(
        stderr.contains("--params: node 'train_yolo': 'params:train'")
            && stderr.contains("unknown model \"yolov10q\""),
        "{stderr}"
    );
    assert!(!p.file("data/03_primary/classes.csv").exists());
    let small = format!("{SMALL},train.model=yolov10n");
    let out = p.roadsign(&["run", "--params", &small]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let metrics: serde_json::Value =
        serde_json::from_str(&p.read("data/08_reporting/detection_metrics.json")).unwrap();
    assert_eq!(metrics["model"]["arch"], "yolov10");
    assert_eq!(metrics["model"]["scale"], "n");
    // The model file says what it is; predict and its JSON need nothing more.
    let model = std::fs::read(p.file("data/06_models/yolov8.safetensors")).unwrap();
    let header_len = u64::from_le_bytes(model[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&model[8..8 + header_len]).unwrap();
    assert_eq!(
        header["__metadata__"]["arch"], "yolov10",
        "{}",
        header["__metadata__"]
    );
    assert!(header["model.23.one2one_cv3.0.2.bias"].is_object());
    let image = p.file("scene.png");
    image::RgbImage::from_pixel(96, 64, image::Rgb([90, 120, 160]))
        .save(&image)
        .unwrap();
    // The switch reaches the detector (what each mode gives is checked
    // against Ultralytics in yolo's tests): the two heads answer differently.
    let mut answers = Vec::new();
    for end2end in [true, false] {
        let mut args = vec![
            "predict",
            image.to_str().unwrap(),
            "--format",
            "json",
            "--conf",
            "0",
        ];
        if !end2end {
            args.push("--nms");
        }
        let out = p.roadsign(&args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let found = json["detections"].as_array().unwrap().clone();
        assert!(!found.is_empty() && found.len() <= 300, "{}", found.len());
        answers.push(found);
    }
    assert_ne!(answers[0], answers[1]);
}

#[test]
fn params_overrides_and_env_overlays_reach_the_nodes() {
    let p = repo_project();
    p.write(
        "conf/small/parameters.yml",
        "classes:\n  - {name: stop, has_text: true}\n",
    );
    p.write(
        "conf/small/catalog.yml",
        "class_summary:\n  type: json.JSONDataset\n  filepath: ${env:SUMMARY_DIR,data/custom}/summary.json\n",
    );
    p.ok(&["run", "--env", "small", "--pipeline", "classes"]);
    let summary: serde_json::Value =
        serde_json::from_str(&p.read("data/custom/summary.json")).unwrap();
    assert_eq!(summary["names"], serde_json::json!(["stop"]));
}

const FAILING: &str = r#"
pipelines:
  __default__:
    nodes:
      - {func: noop, name: make_table, outputs: table}
      - {func: summarize_classes, name: summarize, inputs: table, outputs: summary}
      - {func: noop, name: publish, inputs: summary, outputs: published}
      - {func: noop, name: side, outputs: side_out}
"#;

#[test]
fn a_failed_node_keeps_completed_outputs_and_says_how_to_resume() {
    // `table` is persisted: resume from the failed node itself.
    let p = Project::new(&[
        ("pipelines.yml", FAILING),
        (
            "catalog.yml",
            "table: {type: polars.CSVDataset, filepath: data/table.csv}\nside_out: {type: text.TextDataset, filepath: data/side.txt}\n",
        ),
    ]);
    let stderr = p.fails(&["run"], 1);
    assert!(stderr.contains("node 'summarize' failed:"), "{stderr}");
    let runs: Vec<_> = std::fs::read_dir(p.file("data/09_tracking/runs"))
        .unwrap()
        .collect();
    let record = std::fs::read_to_string(runs[0].as_ref().unwrap().path()).unwrap();
    assert!(record.contains("\"status\": \"failed\""), "{record}");
    assert!(stderr.contains("2 node(s) have not run"), "{stderr}");
    assert!(stderr.contains("  roadsign run --project-dir "), "{stderr}");
    assert!(
        stderr.trim_end().ends_with(" --from-nodes \"summarize\""),
        "{stderr}"
    );
    assert!(p.file("data/table.csv").exists(), "completed output saved");
    assert!(
        p.file("data/side.txt").exists(),
        "independent node ran first"
    );

    // `table` only in memory: the resume must start at its producer.
    let p = Project::new(&[("pipelines.yml", FAILING)]);
    let stderr = p.fails(&["run", "--runner", "parallel", "--params", "x=1"], 1);
    assert!(stderr.contains("expected DataFrame, got Empty"), "{stderr}");
    assert!(
        stderr
            .trim_end()
            .ends_with(" --params x=1 --runner parallel --from-nodes \"make_table\""),
        "{stderr}"
    );
}

#[test]
fn nothing_completed_means_repeat_the_command() {
    let p = Project::new(&[(
        "pipelines.yml",
        "pipelines:\n  __default__:\n    nodes: [{func: build_class_table, inputs: params:classes, outputs: t}]\n",
    ), ("parameters.yml", "classes: []\n")]);
    let stderr = p.fails(&["run"], 1);
    assert!(stderr.contains("no sign classes configured"), "{stderr}");
    assert!(stderr.contains("No node completed"), "{stderr}");
}

#[test]
fn parallel_and_sequential_give_the_same_files() {
    let pipelines = r#"
pipelines:
  __default__:
    nodes:
      - {func: build_class_table, name: t1, inputs: params:classes, outputs: table}
      - {func: summarize_classes, name: s1, inputs: table, outputs: summary_a}
      - {func: summarize_classes, name: s2, inputs: table, outputs: summary_b}
      - {func: build_class_table, name: t2, inputs: params:classes, outputs: table_copy}
"#;
    let catalog = "summary_a: {type: json.JSONDataset, filepath: data/a.json}\nsummary_b: {type: yaml.YAMLDataset, filepath: data/b.yml}\ntable_copy: {type: polars.ParquetDataset, filepath: data/t.parquet}\n";
    let params =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/parameters.yml")).unwrap();
    let seq = Project::new(&[
        ("pipelines.yml", pipelines),
        ("catalog.yml", catalog),
        ("parameters.yml", &params),
    ]);
    let par = Project::new(&[
        ("pipelines.yml", pipelines),
        ("catalog.yml", catalog),
        ("parameters.yml", &params),
    ]);
    seq.ok(&["run", "--runner", "sequential"]);
    par.ok(&["run", "--runner", "parallel"]);
    for file in ["data/a.json", "data/b.yml"] {
        assert_eq!(seq.read(file), par.read(file), "{file}");
    }
    assert_eq!(
        std::fs::read(seq.file("data/t.parquet")).unwrap(),
        std::fs::read(par.file("data/t.parquet")).unwrap()
    );
}

#[test]
fn type_mismatches_and_missing_inputs_stop_before_running() {
    let p = Project::new(&[
        (
            "pipelines.yml",
            "pipelines:\n  __default__:\n    nodes:\n      - {func: noop, name: first, outputs: out}\n      - {func: summarize_classes, name: sum, inputs: report, outputs: s}\n",
        ),
        ("catalog.yml", "report: {type: json.JSONDataset, filepath: r.json}\nout: {type: text.TextDataset, filepath: out.txt}\n"),
    ]);
    let stderr = p.fails(&["run"], 2);
    assert!(
        stderr.contains("pipelines.yml:5: type mismatch in node 'sum': 'table' of 'summarize_classes' wants DataFrame, but dataset 'report' holds Value"),
        "{stderr}"
    );
    assert!(!p.file("out.txt").exists(), "nothing ran");

    let p = Project::new(&[(
        "pipelines.yml",
        "pipelines:\n  __default__:\n    nodes: [{func: noop, inputs: [a, params:x]}]\n",
    )]);
    let stderr = p.fails(&["run"], 2);
    assert!(
        stderr.contains("Pipeline input(s) ['a', 'params:x'] not found"),
        "{stderr}"
    );
    // a dry run checks what the run checks: same error, same exit status
    let stderr = p.fails(&["run", "--dry-run"], 2);
    assert!(
        stderr.contains("Pipeline input(s) ['a', 'params:x'] not found"),
        "{stderr}"
    );

    let p = Project::new(&[("pipelines.yml", "pipelines:\n  __default__:\n    nodes: [{func: build_class_table, inputs: [a, b], outputs: x}]\n")]);
    let stderr = p.fails(&["run", "--dry-run"], 2);
    assert!(
        stderr.contains("the function has 1 inputs, the node gives 2"),
        "{stderr}"
    );
    let p = Project::new(&[("pipelines.yml", "pipelines:\n  __default__:\n    nodes: [{func: build_class_table, inputs: {nope: a}, outputs: x}]\n")]);
    let stderr = p.fails(&["run", "--dry-run"], 2);
    assert!(
        stderr.contains("unknown inputs name 'nope' (the function has: classes)"),
        "{stderr}"
    );
    let stderr = repo_project().fails(&["run", "--load-versions", "class_table:2024"], 2);
    assert!(stderr.contains("is not versioned"), "{stderr}");
}

#[test]
fn a_bad_parameter_of_the_last_node_stops_the_run_before_the_first() {
    let p = Project::new(&[
        (
            "pipelines.yml",
            "pipelines:\n  __default__:\n    nodes:\n      - {func: build_class_table, name: first, inputs: params:classes, outputs: table}\n      - {func: generate_synthetic_data, name: last, inputs: params:scenes, outputs: raw}\n",
        ),
        ("catalog.yml", "table: {type: polars.CSVDataset, filepath: table.csv}\n"),
        (
            "parameters.yml",
            "classes:\n  - {name: stop, has_text: true}\nscenes:\n  scenes: many\n",
        ),
    ]);
    for args in [&["run"][..], &["run", "--dry-run"]] {
        let stderr = p.fails(args, 2);
        assert!(
            stderr
                .contains("parameters.yml:3: node 'last': 'params:scenes': parameters do not fit")
                && stderr.contains("many"),
            "{stderr}"
        );
    }
    assert!(!p.file("table.csv").exists(), "the first node did not run");
    // Given on the command line, the parameter is said to come from there.
    let stderr = p.fails(&["run", "--params", "scenes.scenes=lots"], 2);
    assert!(
        stderr.contains("--params: node 'last': 'params:scenes'"),
        "{stderr}"
    );
    // Fixed, the run goes through.
    p.ok(&[
        "run",
        "--params",
        "scenes.seed=0,scenes.scenes=1,scenes.width=64,scenes.height=64",
    ]);
    assert!(p.file("table.csv").exists());
}

#[test]
fn catalog_and_pipeline_lists() {
    let p = repo_project();
    let text = p.ok(&["catalog", "list"]);
    let row = text
        .lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .find(|cells| cells.first() == Some(&"class_table"));
    assert_eq!(
        row,
        Some(vec![
            "class_table",
            "polars.CSVDataset",
            "data/03_primary/classes.csv"
        ]),
        "{text}"
    );
    let text = p.ok(&[
        "catalog",
        "list",
        "--pipeline",
        "classes",
        "--format",
        "json",
    ]);
    let rows: serde_json::Value = serde_json::from_str(&text).unwrap();
    let names: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["class_summary", "class_table", "params:classes"]);
    let text = p.ok(&["pipeline", "list"]);
    assert!(
        text.starts_with("pipeline         nodes  description\n__default__      13\n"),
        "{text}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&p.ok(&["pipeline", "list", "--format", "json"])).unwrap();
    assert_eq!(json[1]["name"], "classes");
}

#[test]
fn viz_renders_every_format() {
    let p = repo_project();
    let mermaid = p.ok(&["viz", "--pipeline", "classes"]);
    assert!(mermaid.starts_with("flowchart LR\n"), "{mermaid}");
    assert!(mermaid.contains("build_class_table()"));
    assert!(p
        .ok(&["viz", "--format", "dot"])
        .starts_with("digraph pipeline {"));
    let json: serde_json::Value =
        serde_json::from_str(&p.ok(&["viz", "--format", "json", "--pipeline", "classes"])).unwrap();
    assert_eq!(json["nodes"].as_array().unwrap().len(), 2);
    assert_eq!(json["edges"].as_array().unwrap().len(), 4);
    let out = p.file("dag.html");
    p.ok(&[
        "viz",
        "--format",
        "html",
        "-o",
        out.to_str().unwrap(),
        "--pipeline",
        "classes",
    ]);
    let html = p.read("dag.html");
    assert!(
        html.contains("<svg") && html.contains("polars.CSVDataset") && html.contains("#reporting")
    );
    assert!(
        !html.contains("src=\"http") && !html.contains("href=\"http"),
        "self-contained"
    );
}

#[test]
fn versioned_datasets_keep_every_run() {
    let p = repo_project();
    p.write(
        "conf/v/catalog.yml",
        "class_table:\n  type: polars.CSVDataset\n  filepath: data/03_primary/classes.csv\n  versioned: true\n",
    );
    fn classes<'a>(extra: &[&'a str]) -> Vec<&'a str> {
        let mut args = vec!["run", "--pipeline", "classes", "--env", "v"];
        args.extend_from_slice(extra);
        args
    }
    p.ok(&classes(&[]));
    std::thread::sleep(std::time::Duration::from_millis(5));
    // a node failure (a class named twice) in the middle of the run
    p.fails(&classes(&["--params", "classes.1.name=speed_limit"]), 1);
    let mut versions: Vec<String> = std::fs::read_dir(p.file("data/03_primary/classes.csv"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    versions.sort();
    assert_eq!(
        versions.len(),
        1,
        "the failed second run saved nothing: {versions:?}"
    );
    // a second successful run adds a version next to the first
    p.ok(&classes(&["--params", "classes.0.name=speed"]));
    let count = std::fs::read_dir(p.file("data/03_primary/classes.csv"))
        .unwrap()
        .count();
    assert_eq!(count, 2);
    // the summary can be recomputed from the first version only
    let first = &versions[0];
    let pinned = format!("class_table:{first}");
    p.ok(&classes(&[
        "--nodes",
        "summarize_classes",
        "--load-versions",
        &pinned,
    ]));
    let stderr = p.fails(&classes(&["--load-versions", &pinned]), 2);
    assert!(
        stderr.contains("this run also saves 'class_table'"),
        "{stderr}"
    );
    let listed = p.ok(&["catalog", "list", "--env", "v"]);
    assert!(
        listed.contains("data/03_primary/classes.csv (versioned)"),
        "{listed}"
    );
}
