//! The deployment files agree with each other and with the server: the
//! Service selects the Deployment's pods, the HPA scales that Deployment,
//! probe paths are routes that the real server answers, the container port
//! is the port the server listens on and the Dockerfile exposes, and the
//! image is the one the workflow pushes. (Syntax and schemas are checked by
//! the validators in scripts/validate-deploy.sh.)

mod common;

use common::http::get;
use common::server::{project_with_model, Server};
use serde_yaml::Value;

fn load(name: &str) -> Value {
    let path = format!("{}/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn text(name: &str) -> String {
    std::fs::read_to_string(format!("{}/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

#[test]
fn manifests_agree_with_each_other_and_with_the_server() {
    let deployment = load("k8s/deployment.yaml");
    let service = load("k8s/service.yaml");
    let hpa = load("k8s/hpa.yaml");

    let pod_labels = &deployment["spec"]["template"]["metadata"]["labels"];
    let selector = &deployment["spec"]["selector"]["matchLabels"];
    for (k, v) in selector.as_mapping().unwrap() {
        assert_eq!(&pod_labels[k], v, "deployment selector {k:?}");
    }
    for (k, v) in service["spec"]["selector"].as_mapping().unwrap() {
        assert_eq!(&pod_labels[k], v, "service selector {k:?}");
    }
    let target = &hpa["spec"]["scaleTargetRef"];
    assert_eq!(target["kind"], "Deployment");
    assert_eq!(target["name"], deployment["metadata"]["name"]);
    assert_eq!(hpa["apiVersion"], "autoscaling/v2");
    assert_eq!(hpa["spec"]["minReplicas"], 1);
    assert_eq!(hpa["spec"]["maxReplicas"], 5);

    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    let port = container["ports"][0]["containerPort"].as_u64().unwrap();
    let port_name = container["ports"][0]["name"].as_str().unwrap();
    assert_eq!(service["spec"]["ports"][0]["targetPort"], port_name);
    assert_eq!(service["spec"]["ports"][0]["port"], 80);
    let args: Vec<&str> = container["args"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    let listen = args
        .iter()
        .position(|a| *a == "--port")
        .map(|i| args[i + 1]);
    assert_eq!(listen, Some(port.to_string().as_str()));
    assert!(text("Dockerfile").contains(&format!("EXPOSE {port}")));
    // The server's own default is the same port.
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_roadsign"))
        .args(["serve", "--help"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&help.stdout).contains(&format!("[default: {port}]")));

    // The image is the workflow's, with a fixed tag.
    let workflow = load(".github/workflows/ci.yml");
    let image_name = workflow["env"]["IMAGE_NAME"].as_str().unwrap();
    let image = container["image"].as_str().unwrap();
    let (name, tag) = image.rsplit_once(':').unwrap();
    assert_eq!(name, image_name);
    assert_ne!(tag, "latest");
    assert!(text(".github/workflows/ci.yml").contains(&format!("${{{{ env.IMAGE_NAME }}}}:{tag}")));

    // The drain time fits in the grace period.
    let grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        .as_f64()
        .unwrap();
    let params: Value = serde_yaml::from_str(&text("parameters.yml")).unwrap();
    let drain = params["serve"]["drain_s"].as_f64().unwrap();
    assert!(
        drain < grace,
        "drain {drain} s must end before the kill at {grace} s"
    );

    // Probe paths are real routes: the running server answers them with 200.
    let project = project_with_model();
    let server = Server::ready(&project, &[]);
    for probe in ["startupProbe", "readinessProbe", "livenessProbe"] {
        let probe_spec = &container[probe]["httpGet"];
        assert_eq!(probe_spec["port"], port_name, "{probe}");
        let path = probe_spec["path"].as_str().unwrap();
        assert_eq!(get(&server.address, path).status, 200, "{probe} {path}");
    }
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/ready");
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/health");

    // KServe: the same image, command, port, resources, grace period and
    // scaling as the Deployment and its HPA, probes on the protocol's health
    // routes, and the runtime it names.
    let isvc = load("k8s/inferenceservice.yaml");
    let runtime = load("k8s/servingruntime.yaml");
    let predictor = &isvc["spec"]["predictor"];
    let model = &predictor["model"];
    assert_eq!(isvc["apiVersion"], "serving.kserve.io/v1beta1");
    assert_eq!(model["protocolVersion"], "v2");
    for key in ["image", "args", "resources", "env"] {
        assert_eq!(model[key], container[key], "InferenceService {key}");
    }
    assert_eq!(model["ports"][0]["containerPort"].as_u64(), Some(port));
    assert_eq!(predictor["minReplicas"], hpa["spec"]["minReplicas"]);
    assert_eq!(predictor["maxReplicas"], hpa["spec"]["maxReplicas"]);
    assert_eq!(predictor["scaleMetric"], "cpu");
    assert_eq!(
        predictor["scaleTarget"],
        hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"]
    );
    assert_eq!(
        predictor["terminationGracePeriodSeconds"].as_f64(),
        Some(grace)
    );
    for (probe, path) in [
        ("startupProbe", "/v2/health/ready"),
        ("readinessProbe", "/v2/health/ready"),
        ("livenessProbe", "/v2/health/live"),
    ] {
        let probe_spec = &model[probe]["httpGet"];
        assert_eq!(probe_spec["path"], path, "{probe}");
        assert_eq!(probe_spec["port"].as_u64(), Some(port), "{probe}");
        assert_eq!(get(&server.address, path).status, 200, "{probe} {path}");
    }
    assert_eq!(runtime["metadata"]["name"], model["runtime"]);
    assert_eq!(
        runtime["spec"]["supportedModelFormats"][0]["name"],
        model["modelFormat"]["name"]
    );
    assert_eq!(runtime["spec"]["protocolVersions"][0], "v2");
    let runtime_container = &runtime["spec"]["containers"][0];
    for key in ["image", "args", "resources"] {
        assert_eq!(
            runtime_container[key], container[key],
            "ServingRuntime {key}"
        );
    }
    let healthcheck = text("Dockerfile");
    assert!(healthcheck.contains("HEALTHCHECK") && healthcheck.contains(":5000/health"));
}
