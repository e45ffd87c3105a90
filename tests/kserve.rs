//! The Open Inference Protocol (KServe "v2") on a real server, called by a
//! client nobody here wrote: NVIDIA's tritonclient[http] from PyPI, run by
//! `tests/kserve_client.py` (encoded and decoded images, binary data on and
//! off, a batch, the answers checked against the protocol's OpenAPI file,
//! committed in `tests/fixtures/schemas/`).

mod common;

use std::path::Path;

use common::http::{get, request};
use common::server::{project_with_model, Server};

/// The Python with tritonclient, jsonschema and PyYAML that `make test`
/// installs (scripts/install.sh).
fn client_python() -> std::path::PathBuf {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join(".deps/v2client/bin/python");
    assert!(
        python.is_file(),
        "{} is missing: run `make test` (scripts/install.sh installs tritonclient)",
        python.display()
    );
    python
}

#[test]
fn tritonclient_talks_to_the_server() {
    let project = project_with_model();
    let server = Server::ready(&project, &[]);
    let address = server.address.as_str();

    // A scene with a stop sign at a known box: as PNG, and as raw pixels.
    let (scene, objects) = nodes::synth::sample_scene(640, 480, 1, &["stop"], 11);
    let b = objects[0].bbox;
    let scene_path = project.file("scene.png");
    scene.save(&scene_path).unwrap();
    std::fs::write(project.file("scene.png.rgb"), scene.as_raw()).unwrap();
    std::fs::write(project.file("scene.png.shape"), "480 640").unwrap();

    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = std::process::Command::new(client_python())
        .arg(root.join("tests/kserve_client.py"))
        .arg(address)
        // The served file is data/06_models/yolov8.safetensors: its stem.
        .arg("yolov8")
        .arg(&scene_path)
        .arg(format!("[{}, {}, {}, {}]", b.xmin, b.ymin, b.xmax, b.ymax))
        .arg(root.join("tests/fixtures/schemas/open-inference-protocol-rest-v2.yaml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("all checks passed"));

    // What the client does not try: methods, versions, readiness per model.
    // The shipped model records when its training started as its version.
    let versions = get(address, "/v2/models/yolov8").json()["versions"].clone();
    let version = versions[0].as_str().unwrap().to_string();
    let meta = get(address, &format!("/v2/models/yolov8/versions/{version}"));
    assert_eq!(meta.status, 200, "{}", meta.text());
    assert_eq!(meta.json()["versions"], serde_json::json!([version]));
    let missing = get(address, "/v2/models/yolov8/versions/2");
    assert_eq!(missing.status, 404);
    assert!(missing.json()["error"]
        .as_str()
        .unwrap()
        .contains("no version '2'"));
    let wrong = request(address, "GET", "/v2/models/yolov8/infer", &[], b"").unwrap();
    assert_eq!(wrong.status, 405);
    assert_eq!(
        get(address, "/v2/models/yolov8/ready").json()["ready"],
        true
    );
    let huge = request(
        address,
        "POST",
        "/v2/models/yolov8/infer",
        &[("Content-Type", "application/json")],
        br#"{"inputs": [{"name": "pixels", "shape": [9000, 9000, 3], "datatype": "UINT8", "data": []}]}"#,
    )
    .unwrap();
    assert_eq!(huge.status, 413, "{}", huge.text());
    // `roadsign stress --protocol v2`: batches of two, all answered.
    let stress = project.ok(&[
        "stress",
        "--url",
        &format!("http://{address}"),
        "--protocol",
        "v2",
        "--model",
        "yolov8",
        "--batch",
        "2",
        "--requests",
        "4",
        "--workers",
        "2",
        "--format",
        "json",
    ]);
    let report: serde_json::Value = serde_json::from_str(&stress).unwrap();
    assert_eq!(
        report["statuses"],
        serde_json::json!({"200": 4}),
        "{report}"
    );
    let (rps, ips) = (
        report["requests_per_s"].as_f64().unwrap(),
        report["images_per_s"].as_f64().unwrap(),
    );
    assert!((ips - 2.0 * rps).abs() < 1e-6, "{report}");
    let usage = project.fails(
        &[
            "stress",
            "--url",
            &format!("http://{address}"),
            "--batch",
            "2",
        ],
        2,
    );
    assert!(usage.contains("--batch needs --protocol v2"), "{usage}");
    // The metrics count v2 routes under fixed labels, not model names.
    let metrics = get(address, "/metrics").text();
    assert!(metrics.contains(r#"route="/v2/models/infer""#), "{metrics}");
    drop(server);

    // serve.model_name renames the model on the v2 routes.
    let server = Server::ready(&project, &["serve.model_name=road-signs"]);
    assert_eq!(get(&server.address, "/v2/models/road-signs").status, 200);
    assert_eq!(get(&server.address, "/v2/models/yolov8").status, 404);
}
