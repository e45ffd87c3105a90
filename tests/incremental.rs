//! Incremental runs: unchanged nodes are skipped, changes rerun exactly what
//! they touch, `--force` reruns everything, and a killed run resumes.

mod common;
use common::{repo_project, Project};

fn summary(p: &Project, args: &[&str]) -> String {
    let out = p.roadsign(args);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{args:?}: {stderr}");
    stderr
        .lines()
        .find(|l| l.starts_with("pipeline '"))
        .unwrap_or_default()
        .to_string()
}

#[test]
fn unchanged_nodes_are_skipped_and_changes_rerun_what_they_touch() {
    let p = repo_project();
    let run = ["run", "--pipeline", "classes"];
    assert!(summary(&p, &run).contains("2 node(s) completed in"));
    assert!(summary(&p, &run).contains("0 node(s) completed, 2 up to date"));
    let plan = p.plan(&["--pipeline", "classes"]);
    assert_eq!(
        plan["up_to_date"],
        serde_json::json!(["build_class_table", "summarize_classes"])
    );
    let forced = p.plan(&["--pipeline", "classes", "--force"]);
    assert!(forced.get("up_to_date").is_none());

    // a parameter change reruns the node that reads it, and what it changes
    let changed = [
        "run",
        "--pipeline",
        "classes",
        "--params",
        "classes.8.description=x",
    ];
    assert!(summary(&p, &changed).contains("2 node(s) completed in"));
    // a description does not change the summary's input content? It does (CSV holds it).
    assert!(summary(&p, &changed).contains("0 node(s) completed, 2 up to date"));

    // a deleted or edited output makes its producer run again
    std::fs::remove_file(p.file("data/08_reporting/classes.json")).unwrap();
    assert!(summary(&p, &changed).contains("1 node(s) completed, 1 up to date"));
    p.write("data/08_reporting/classes.json", "{}");
    assert!(summary(&p, &changed).contains("1 node(s) completed, 1 up to date"));

    assert!(summary(
        &p,
        &[
            "run",
            "--pipeline",
            "classes",
            "--force",
            "--params",
            "classes.8.description=x"
        ]
    )
    .contains("2 node(s) completed in"));
}

#[test]
fn up_to_date_producers_of_memory_data_run_only_for_a_reader() {
    let p = repo_project();
    let small = "data_generation.scenes=4,data_generation.width=192,data_generation.height=192";
    let run = [
        "run",
        "--pipelines",
        "data_generation,detection",
        "--to-nodes",
        "preprocess_data",
        "--params",
        small,
    ];
    assert!(summary(&p, &run).contains("3 node(s) completed in"));
    assert!(summary(&p, &run).contains("0 node(s) completed, 3 up to date"));
    // preprocess_data must rerun: its in-memory input comes from load_data,
    // which reruns for it although it is itself up to date
    std::fs::remove_dir_all(p.file("data/05_model_input/yolo")).unwrap();
    let line = summary(&p, &run);
    assert!(line.contains("2 node(s) completed, 1 up to date"), "{line}");
    assert!(p.file("data/05_model_input/yolo/data.yaml").is_file());
}

#[test]
fn a_killed_run_leaves_no_partial_dataset_and_resumes_the_rest() {
    let p = repo_project();
    let args = [
        "run",
        "--pipelines",
        "classes,data_generation",
        "--params",
        "data_generation.scenes=400",
    ];
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("roadsign"))
        .args(args)
        .arg("--project-dir")
        .arg(p.path())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // build_class_table runs first (layer 0, by name); kill during generation
    let state = p.file("data/09_tracking/state.jsonl");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !std::fs::read_to_string(&state)
        .unwrap_or_default()
        .contains("build_class_table")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the first nodes never completed"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        !p.file("data/01_raw/road_signs").exists(),
        "no half-written dataset"
    );
    let line = summary(
        &p,
        &[
            "run",
            "--pipelines",
            "classes,data_generation",
            "--params",
            "data_generation.scenes=3",
        ],
    );
    assert!(line.contains("2 node(s) completed, 1 up to date"), "{line}");
    assert_eq!(
        std::fs::read_dir(p.file("data/01_raw/road_signs/images"))
            .unwrap()
            .count(),
        3
    );
}

#[test]
fn switching_environments_back_and_forth_reruns_nothing_unchanged() {
    let p = repo_project();
    // A second environment that writes the class table and its summary
    // elsewhere, as `--env real` writes its model and reports.
    p.write(
        "conf/other/catalog.yml",
        "class_table:\n  type: polars.CSVDataset\n  filepath: data/03_primary/other/classes.csv\n\
         class_summary:\n  type: json.JSONDataset\n  filepath: data/08_reporting/other/classes.json\n",
    );
    let base = ["run", "--pipeline", "classes"];
    let other = ["run", "--pipeline", "classes", "--env", "other"];
    assert!(summary(&p, &base).contains("2 node(s) completed in"));
    assert!(summary(&p, &other).contains("2 node(s) completed in"));
    assert!(p.file("data/08_reporting/other/classes.json").is_file());
    for _ in 0..2 {
        let line = summary(&p, &base);
        assert!(line.contains("0 node(s) completed, 2 up to date"), "{line}");
        let line = summary(&p, &other);
        assert!(line.contains("0 node(s) completed, 2 up to date"), "{line}");
    }
    // a selection of one node, then the whole pipeline again
    let one = [
        "run",
        "--pipeline",
        "classes",
        "--nodes",
        "summarize_classes",
    ];
    assert!(summary(&p, &one).contains("0 node(s) completed, 1 up to date"));
    assert!(summary(&p, &base).contains("0 node(s) completed, 2 up to date"));
    // what one environment changes reruns there only, and a change of a file
    // the other environment wrote is still seen
    std::fs::remove_file(p.file("data/08_reporting/other/classes.json")).unwrap();
    assert!(summary(&p, &base).contains("0 node(s) completed, 2 up to date"));
    assert!(summary(&p, &other).contains("1 node(s) completed, 1 up to date"));
    p.write("data/08_reporting/classes.json", "{}");
    assert!(summary(&p, &base).contains("1 node(s) completed, 1 up to date"));
    assert!(summary(&p, &other).contains("0 node(s) completed, 2 up to date"));
}

/// Runs roadsign in the project under a given umask, as a shell would.
fn run_with_umask(p: &Project, mask: &str, args: &[&str]) {
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("umask {mask} && exec \"$0\" \"$@\""))
        .arg(assert_cmd::cargo::cargo_bin("roadsign"))
        .args(args)
        .arg("--project-dir")
        .arg(p.path())
        .status()
        .unwrap();
    assert!(status.success(), "{args:?} under umask {mask}");
}

#[test]
fn outputs_are_written_with_the_permissions_the_umask_gives() {
    use std::os::unix::fs::PermissionsExt;
    let p = repo_project();
    let small = "data_generation.scenes=2,data_generation.width=128,data_generation.height=128";
    let args = [
        "run",
        "--force",
        "--pipelines",
        "classes,data_generation",
        "--params",
        small,
    ];
    let mode =
        |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    for (mask, file, folder) in [("022", 0o644, 0o755), ("027", 0o640, 0o750)] {
        run_with_umask(&p, mask, &args);
        // files written through a temporary file, and whole folders
        assert_eq!(
            mode(&p.file("data/03_primary/classes.csv")),
            file,
            "umask {mask}"
        );
        assert_eq!(
            mode(&p.file("data/08_reporting/classes.json")),
            file,
            "umask {mask}"
        );
        assert_eq!(
            mode(&p.file("data/01_raw/road_signs")),
            folder,
            "umask {mask}"
        );
        let image = std::fs::read_dir(p.file("data/01_raw/road_signs/images"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        assert_eq!(mode(&image), file, "umask {mask}");
    }
}
