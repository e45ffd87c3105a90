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
        let plan = p.plan(&["--pipeline", name]);
        let order = common::plan_names(&plan);
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
