//! `roadsign kubeflow compile`: the project's pipelines as Kubeflow specs in
//! which every node runs exactly once, in the runner's order. The specs are
//! also written to target/kubeflow/ for scripts/validate-deploy.sh, which
//! loads them with the real kfp SDK.

mod common;

use std::collections::BTreeSet;

#[test]
fn every_node_runs_in_exactly_one_step_after_its_producers() {
    let p = common::repo_project();
    let out_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/kubeflow");
    std::fs::create_dir_all(&out_dir).unwrap();
    for name in ["__default__", "detection", "predict"] {
        let file = out_dir.join(format!("{}.yaml", name.trim_matches('_')));
        p.ok(&[
            "kubeflow",
            "compile",
            "--pipeline",
            name,
            "-o",
            file.to_str().unwrap(),
        ]);
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.starts_with("# PIPELINE DEFINITION"));
        let docs: Vec<serde_yaml::Value> = serde_yaml::Deserializer::from_str(&text)
            .map(|d| serde::Deserialize::deserialize(d).unwrap())
            .collect();
        assert_eq!(docs.len(), 2, "pipeline spec and platform spec");
        let spec = &docs[0];
        let tasks = spec["root"]["dag"]["tasks"].as_mapping().unwrap();
        let executors = &spec["deploymentSpec"]["executors"];
        // The pipeline's nodes, as viz lists them (a dry run would stop on
        // inputs that no run has written yet in this fresh project).
        let viz: serde_json::Value =
            serde_json::from_str(&p.ok(&["viz", "--format", "json", "--pipeline", name])).unwrap();
        let order: Vec<String> = viz["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["name"].as_str().unwrap().to_string())
            .collect();
        let mut covered = Vec::new();
        let mut done_tasks: BTreeSet<String> = BTreeSet::new();
        // Tasks appear in execution order; each depends only on earlier ones.
        for (task, body) in tasks {
            let task = task.as_str().unwrap();
            for dep in body["dependentTasks"].as_sequence().into_iter().flatten() {
                assert!(
                    done_tasks.contains(dep.as_str().unwrap()),
                    "{task} waits on a later task"
                );
            }
            let executor = &executors[format!("exec-{task}").as_str()]["container"];
            assert_eq!(executor["image"], "docker.io/roadsign/roadsign:0.1.0");
            let args: Vec<&str> = executor["args"]
                .as_sequence()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap())
                .collect();
            assert_eq!(&args[..3], ["run", "--pipeline", name]);
            let nodes = args[args.iter().position(|a| *a == "--nodes").unwrap() + 1];
            covered.extend(nodes.split(',').map(String::from));
            done_tasks.insert(task.to_string());
        }
        let mut sorted_covered = covered.clone();
        sorted_covered.sort();
        let mut sorted_order = order.clone();
        sorted_order.sort();
        assert_eq!(
            sorted_covered, sorted_order,
            "{name}: every node exactly once"
        );
    }
    // The predict pipeline keeps its in-memory chain in one step.
    let predict = std::fs::read_to_string(out_dir.join("predict.yaml")).unwrap();
    let spec: serde_yaml::Value = serde::Deserialize::deserialize(
        serde_yaml::Deserializer::from_str(&predict).next().unwrap(),
    )
    .unwrap();
    assert_eq!(spec["root"]["dag"]["tasks"].as_mapping().unwrap().len(), 1);
}

#[test]
fn unknown_pipelines_are_refused() {
    let p = common::repo_project();
    let stderr = p.fails(&["kubeflow", "compile", "--pipeline", "nope"], 2);
    assert!(stderr.contains("nope"), "{stderr}");
}

/// With `--env kubeflow` every dataset lives in S3, so steps need no shared
/// volume; without such a catalog, `--no-volume` names what would be lost.
#[test]
fn steps_can_exchange_data_through_object_storage_instead_of_a_volume() {
    let p = common::repo_project();
    let root = env!("CARGO_MANIFEST_DIR");
    p.write(
        "conf/kubeflow/catalog.yml",
        &std::fs::read_to_string(format!("{root}/conf/kubeflow/catalog.yml")).unwrap(),
    );
    let out_dir = std::path::Path::new(root).join("target/kubeflow");
    std::fs::create_dir_all(&out_dir).unwrap();
    let file = out_dir.join("default-s3.yaml");
    p.ok(&[
        "kubeflow",
        "compile",
        "--pipeline",
        "__default__",
        "--env",
        "kubeflow",
        "--no-volume",
        "-o",
        file.to_str().unwrap(),
    ]);
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(
        serde_yaml::Deserializer::from_str(&text).count(),
        1,
        "no platform spec"
    );
    assert!(!text.contains("pvcMount"));
    assert!(text.contains("- --env\n        - kubeflow"), "{text}");

    let stderr = p.fails(
        &[
            "kubeflow",
            "compile",
            "--pipeline",
            "detection",
            "--no-volume",
        ],
        2,
    );
    assert!(
        stderr.contains("cross steps but are not in an object store"),
        "{stderr}"
    );
    assert!(stderr.contains("model_input"), "{stderr}");
}

/// Two steps as Kubeflow runs them with `--env kubeflow`: separate processes
/// that share nothing but an S3 bucket (moto's server here). The first
/// writes the generated image set (a folder dataset), the second reads it
/// back and writes the YOLO layout.
#[test]
fn steps_hand_image_sets_over_through_s3() {
    let moto = common::moto::Moto::start();
    moto.create_bucket("roadsign-steps");
    let root = env!("CARGO_MANIFEST_DIR");
    let step = |args: &[&str]| {
        // A fresh project folder per step: nothing shared on disk.
        let p = common::repo_project();
        p.write(
            "conf/kubeflow/catalog.yml",
            &std::fs::read_to_string(format!("{root}/conf/kubeflow/catalog.yml")).unwrap(),
        );
        let mut command = p.command(args);
        for (k, v) in moto.env("roadsign-steps") {
            command.env(k, v);
        }
        let out = command.output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    let params = "data_generation.scenes=4,data_generation.width=128,data_generation.height=128,split.val_fraction=0.5";
    step(&[
        "run",
        "--env",
        "kubeflow",
        "--pipeline",
        "data_generation",
        "--params",
        params,
    ]);
    let second = step(&[
        "run",
        "--env",
        "kubeflow",
        "--pipeline",
        "detection",
        "--nodes",
        "load_data,preprocess_data",
        "--params",
        params,
    ]);
    assert!(second.contains("2 node(s) completed"), "{second}");
}

#[test]
fn the_training_step_compiles_to_a_train_job_and_a_pytorch_job() {
    let p = common::repo_project();
    let text = p.ok(&["kubeflow", "compile", "--distributed", "4"]);
    let docs: Vec<serde_yaml::Value> = serde_yaml::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect();
    assert_eq!(docs.len(), 2, "a TrainJob and a PyTorchJob");
    let (train_job, pytorch_job) = (&docs[0], &docs[1]);
    assert_eq!(train_job["kind"], "TrainJob");
    assert_eq!(train_job["spec"]["trainer"]["numNodes"], 4);
    assert_eq!(train_job["spec"]["trainer"]["numProcPerNode"], 1);
    let args = &train_job["spec"]["trainer"]["args"];
    assert_eq!(
        args,
        &serde_yaml::to_value(["run", "--pipeline", "__default__", "--nodes", "train_yolo"])
            .unwrap()
    );
    assert_eq!(pytorch_job["kind"], "PyTorchJob");
    let specs = &pytorch_job["spec"]["pytorchReplicaSpecs"];
    assert_eq!(specs["Worker"]["replicas"], 3);
    for role in ["Master", "Worker"] {
        let pod = &specs[role]["template"]["spec"];
        assert_eq!(
            &pod["containers"][0]["args"], args,
            "{role} runs the same command"
        );
        assert_eq!(
            pod["volumes"][0]["persistentVolumeClaim"]["claimName"],
            "roadsign-data"
        );
    }
    // k8s/ holds this rendering (scripts/validate-deploy.sh checks it
    // against the CRDs).
    let rendered = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("k8s/distributed-training.yaml"),
    )
    .unwrap();
    assert_eq!(
        rendered, text,
        "k8s/distributed-training.yaml is stale: roadsign kubeflow compile --distributed 4 -o k8s/distributed-training.yaml"
    );

    let stderr = p.fails(&["kubeflow", "compile", "--distributed", "1"], 1);
    assert!(stderr.contains("at least 2 ranks"), "{stderr}");
    let stderr = p.fails(
        &[
            "kubeflow",
            "compile",
            "--pipeline",
            "predict",
            "--distributed",
            "2",
        ],
        1,
    );
    assert!(stderr.contains("no train_yolo node"), "{stderr}");
}
