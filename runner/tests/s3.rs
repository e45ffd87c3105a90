//! `s3://` datasets against a real S3-compatible server on 127.0.0.1
//! (moto's server, installed by `make test` into .deps/moto): save, load,
//! versioned saves, partitions listed, incremental fingerprints from the
//! store's metadata, and a wrong credential giving a clear error.

use std::collections::BTreeMap;
use std::path::Path;

use polars::prelude::*;
use runner::catalog::partitions::Partitions;
use runner::catalog::storage::Versions;
use runner::config::{LoadOptions, ProjectConfig};
use runner::{Catalog, Data, DatasetTypes};
use serde_json::json;

#[path = "../../tests/common/moto.rs"]
mod moto;
use moto::Moto;

const NOOP: &str =
    "pipelines:\n  p:\n    nodes:\n      - {func: noop, inputs: numbers, outputs: other}\n";

fn project(dir: &Path, endpoint: &str, key: &str, pipelines: &str) -> ProjectConfig {
    std::fs::write(dir.join("pipelines.yml"), pipelines).unwrap();
    std::fs::write(dir.join("parameters.yml"), "{}\n").unwrap();
    std::fs::write(dir.join("catalog.yml"), "{}\n").unwrap();
    std::fs::create_dir_all(dir.join("conf/s3")).unwrap();
    std::fs::write(
        dir.join("conf/s3/catalog.yml"),
        "numbers:\n  type: json.JSONDataset\n  filepath: s3://roadsign-test/data/numbers.json\n  credentials: store\n\
table:\n  type: polars.CSVDataset\n  filepath: s3://roadsign-test/data/table.csv\n  versioned: true\n  credentials: store\n\
parts:\n  type: partitions.PartitionedDataset\n  path: s3://roadsign-test/parts\n  dataset: json.JSONDataset\n  filename_suffix: .json\n  credentials: store\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("conf/s3/credentials.yml"),
        format!(
            "store:\n  key: {key}\n  secret: testing-secret\n  endpoint: http://{endpoint}\n  region: us-east-1\n"
        ),
    )
    .unwrap();
    ProjectConfig::load(
        dir,
        &LoadOptions {
            env: Some("s3".into()),
            param_overrides: Vec::new(),
        },
    )
    .unwrap()
}

fn catalog(config: &ProjectConfig, version: &str, pinned: &[(&str, &str)]) -> Catalog {
    let versions = Versions {
        save_version: version.into(),
        load_versions: pinned
            .iter()
            .map(|(d, v)| (d.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
    };
    Catalog::with_versions(config, &DatasetTypes::builtin(), versions).unwrap()
}

/// The fingerprint the store's metadata gives `dataset` (no download).
fn stored_fingerprint(catalog: &Catalog, dataset: &str) -> Option<String> {
    catalog
        .get(dataset)
        .unwrap()
        .file_location()
        .unwrap()
        .fingerprint()
        .unwrap()
}

fn frame(values: &[i64]) -> DataFrame {
    df!("n" => values).unwrap()
}

#[test]
fn datasets_save_load_version_and_partition_on_s3() {
    let moto = Moto::start();
    moto.create_bucket("roadsign-test");
    let dir = tempfile::tempdir().unwrap();
    let config = project(dir.path(), &moto.endpoint, "testing", NOOP);

    let first = catalog(&config, "2026-11-29T10.00.00.000Z", &[]);
    assert!(!first.exists("numbers").unwrap());
    first
        .save("numbers", &Data::new(json!({"a": [1, 2, 3]})))
        .unwrap();
    assert!(first.exists("numbers").unwrap());
    let loaded = first.load("numbers").unwrap();
    assert_eq!(
        loaded.downcast_ref::<serde_json::Value>(),
        Some(&json!({"a": [1, 2, 3]}))
    );
    let fingerprint = stored_fingerprint(&first, "numbers");
    assert!(
        fingerprint.is_some(),
        "store metadata fingerprints the object"
    );

    // Versioned: each run saves a new version; loads take the latest or the pinned one.
    first.save("table", &Data::new(frame(&[1, 2]))).unwrap();
    let second = catalog(&config, "2026-11-29T11.00.00.000Z", &[]);
    second.save("table", &Data::new(frame(&[3, 4, 5]))).unwrap();
    let location = second.get("table").unwrap().file_location().unwrap();
    assert_eq!(
        location.versions(),
        ["2026-11-29T10.00.00.000Z", "2026-11-29T11.00.00.000Z"]
    );
    let latest = catalog(&config, "2026-11-29T12.00.00.000Z", &[]);
    assert_eq!(
        latest
            .load("table")
            .unwrap()
            .downcast_ref::<DataFrame>()
            .unwrap()
            .height(),
        3
    );
    let pinned = catalog(
        &config,
        "2026-11-29T12.00.00.000Z",
        &[("table", "2026-11-29T10.00.00.000Z")],
    );
    assert_eq!(
        pinned
            .load("table")
            .unwrap()
            .downcast_ref::<DataFrame>()
            .unwrap()
            .height(),
        2
    );
    // A version is never overwritten.
    let again = catalog(&config, "2026-11-29T11.00.00.000Z", &[]);
    let err = again.save("table", &Data::new(frame(&[9]))).unwrap_err();
    assert!(err.to_string().contains("never overwritten"), "{err}");

    // Partitions: saved from a map, listed back by id.
    let parts = Partitions::from_values([
        ("a".to_string(), Data::new(json!(1))),
        ("b/c".to_string(), Data::new(json!({"x": 2}))),
    ]);
    latest.save("parts", &Data::new(parts)).unwrap();
    let listed = latest.load("parts").unwrap();
    let listed = listed.downcast_ref::<Partitions>().unwrap();
    assert_eq!(listed.ids().collect::<Vec<_>>(), ["a", "b/c"]);
    let c = listed.load("b/c").unwrap();
    assert_eq!(
        c.downcast_ref::<serde_json::Value>(),
        Some(&json!({"x": 2}))
    );
    let folder = stored_fingerprint(&latest, "parts");
    assert!(
        folder.is_some(),
        "a folder of objects has a fingerprint too"
    );
}

#[test]
fn a_wrong_credential_gives_a_clear_error() {
    // Only the bucket's creation goes unauthenticated.
    let moto = Moto::start_with_auth_after(Some(1));
    moto.create_bucket("roadsign-test");
    let dir = tempfile::tempdir().unwrap();
    let config = project(dir.path(), &moto.endpoint, "AKIAWRONGKEY", NOOP);
    let catalog = catalog(&config, "2026-11-29T10.00.00.000Z", &[]);
    let err = catalog
        .save("numbers", &Data::new(json!({"a": 1})))
        .unwrap_err()
        .to_string();
    assert!(err.contains("dataset 'numbers'"), "{err}");
    assert!(
        err.contains("s3://roadsign-test/data/numbers.json"),
        "{err}"
    );
    assert!(
        err.contains("403") || err.to_lowercase().contains("access key"),
        "{err}"
    );
}

#[test]
fn http_stores_cannot_be_written_and_a_run_says_so_before_starting() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("pipelines.yml"),
        "pipelines:\n  p:\n    nodes:\n      - {func: noop, inputs: 'params:x', outputs: remote}\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("parameters.yml"), "x: 1\n").unwrap();
    std::fs::write(
        dir.path().join("catalog.yml"),
        "remote:\n  type: json.JSONDataset\n  filepath: https://example.org/data/remote.json\n",
    )
    .unwrap();
    let config = ProjectConfig::load(dir.path(), &LoadOptions::default()).unwrap();
    let pipeline = runner::PipelineBuilder::new(&config)
        .build(&["p".to_string()])
        .unwrap();
    let mut catalog = Catalog::from_config(&config, &DatasetTypes::builtin()).unwrap();
    let registry = runner::FunctionRegistry::new();
    let err = runner::run::run(&pipeline, &mut catalog, &registry, &Default::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("dataset 'remote' is written by the pipeline"),
        "{err}"
    );
    assert!(err.contains("read-only"), "{err}");
}

fn numbers() -> serde_json::Value {
    json!({"n": [1, 2, 3]})
}

#[test]
fn a_second_run_skips_nodes_whose_s3_outputs_are_unchanged() {
    let moto = Moto::start();
    moto.create_bucket("roadsign-test");
    let dir = tempfile::tempdir().unwrap();
    let config = project(
        dir.path(),
        &moto.endpoint,
        "testing",
        "pipelines:\n  p:\n    nodes:\n      - {func: numbers, outputs: numbers}\n",
    );
    let pipeline = runner::PipelineBuilder::new(&config)
        .build(&["p".to_string()])
        .unwrap();
    let mut registry = runner::FunctionRegistry::new();
    registry.register("numbers", numbers);
    let options = runner::RunOptions {
        state_dir: Some(dir.path().join("data/09_tracking")),
        ..Default::default()
    };
    let run = |options: &runner::RunOptions| {
        let mut catalog = Catalog::from_config(&config, &DatasetTypes::builtin()).unwrap();
        runner::run::run(&pipeline, &mut catalog, &registry, options).unwrap()
    };
    let first = run(&options);
    assert_eq!(first.completed.len(), 1);
    let second = run(&options);
    assert_eq!(second.skipped, ["numbers"]);
    assert!(second.completed.is_empty());
    // The object changes behind the runner's back: the node runs again.
    let catalog = Catalog::from_config(&config, &DatasetTypes::builtin()).unwrap();
    catalog
        .save("numbers", &Data::new(json!({"n": []})))
        .unwrap();
    let third = run(&options);
    assert_eq!(third.completed.len(), 1, "{:?}", third.skipped);
}

#[test]
fn folders_round_trip_through_s3_as_local_copies() {
    use runner::catalog::storage::FileLocation;
    let moto = Moto::start();
    moto.create_bucket("roadsign-test");
    let creds = json!({"key": "testing", "secret": "testing", "region": "us-east-1",
                       "endpoint": format!("http://{}", moto.endpoint)});
    let at = runner::Location::default();
    let folder = FileLocation::resolve_with(
        "images",
        "s3://roadsign-test/sets/yolo",
        Path::new("."),
        &at,
        Some(&creds),
    )
    .unwrap();
    assert!(!folder.exists());
    folder
        .write_dir_atomic(|dir| {
            std::fs::create_dir_all(dir.join("labels/train")).map_err(|e| e.to_string())?;
            std::fs::write(dir.join("labels/train/a.txt"), "0 0.5 0.5 0.1 0.1\n")
                .map_err(|e| e.to_string())?;
            std::fs::write(dir.join("data.yaml"), "nc: 1\n").map_err(|e| e.to_string())
        })
        .unwrap();
    assert!(folder.exists());
    let copy = folder.local_copy().unwrap();
    assert_eq!(
        std::fs::read_to_string(copy.join("data.yaml")).unwrap(),
        "nc: 1\n"
    );
    assert!(copy.join("labels/train/a.txt").is_file());
    assert!(folder.fingerprint().unwrap().is_some());
}
