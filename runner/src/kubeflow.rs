//! A pipeline as a Kubeflow Pipelines v2 pipeline spec (the IR YAML that the
//! KFP UI and SDK load): one container step per node, or per group of nodes
//! joined by in-memory datasets (those cannot cross containers), each running
//! `roadsign run --nodes ...` in the image; the steps' DAG is the runner's.
//!
//! Persisted datasets move between steps through storage every step sees:
//! a volume claim mounted over the project's `data/` (the Kubernetes
//! platform spec, a second YAML document), or object stores named by the
//! catalog of `--env` (no volume).

use std::collections::{BTreeMap, BTreeSet};

use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};
use serde_json::{json, Map, Value};

use crate::catalog::Catalog;
use crate::pipeline::{is_parameter, Pipeline};

/// How the steps run.
#[derive(Clone, Debug)]
pub struct KubeflowOptions {
    /// The name in `pipelineInfo` (and the `--pipeline` each step runs).
    pub pipeline: String,
    pub image: String,
    /// The program and its leading arguments (`["roadsign"]`).
    pub command: Vec<String>,
    /// `--env` of every step, if any.
    pub env: Option<String>,
    /// The volume claim mounted over `data_path` in every step; `None`:
    /// datasets cross steps through the catalog (object stores).
    pub volume_claim: Option<String>,
    pub data_path: String,
}

/// Nodes that must share one container: groups joined by in-memory datasets,
/// merged further where groups would depend on each other in a cycle.
/// Groups come in execution order, their nodes too.
pub fn step_groups(pipeline: &Pipeline, catalog: &Catalog) -> Vec<Vec<usize>> {
    let n = pipeline.len();
    let mut parent: Vec<usize> = (0..n).collect();
    fn find(parent: &mut [usize], i: usize) -> usize {
        let mut root = i;
        while parent[root] != root {
            root = parent[root];
        }
        parent[i] = root;
        root
    }
    fn union(parent: &mut [usize], a: usize, b: usize) {
        let (ra, rb) = (find(parent, a), find(parent, b));
        if ra != rb {
            parent[ra.max(rb)] = ra.min(rb);
        }
    }
    for (i, node) in pipeline.nodes().iter().enumerate() {
        for input in &node.inputs {
            if is_parameter(input) || !catalog.is_ephemeral(input) {
                continue;
            }
            if let Some(p) = pipeline.producer_of(input) {
                union(&mut parent, i, p);
            }
        }
    }
    loop {
        let group_of: Vec<usize> = (0..n).map(|i| find(&mut parent, i)).collect();
        let mut graph: DiGraph<usize, ()> = DiGraph::new();
        let mut index: BTreeMap<usize, NodeIndex> = BTreeMap::new();
        for &g in &group_of {
            index.entry(g).or_insert_with(|| graph.add_node(g));
        }
        for (i, g) in group_of.iter().enumerate() {
            for &p in pipeline.parents(i) {
                if group_of[p] != *g {
                    graph.update_edge(index[&group_of[p]], index[g], ());
                }
            }
        }
        let cycles: Vec<Vec<usize>> = tarjan_scc(&graph)
            .into_iter()
            .filter(|c| c.len() > 1)
            .map(|c| c.into_iter().map(|ix| graph[ix]).collect())
            .collect();
        if cycles.is_empty() {
            break;
        }
        for cycle in cycles {
            for pair in cycle.windows(2) {
                union(&mut parent, pair[0], pair[1]);
            }
        }
    }
    let position: BTreeMap<usize, usize> = pipeline
        .layers()
        .iter()
        .flatten()
        .enumerate()
        .map(|(pos, &i)| (i, pos))
        .collect();
    let mut members: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for i in pipeline.layers().iter().flatten().copied() {
        members.entry(find(&mut parent, i)).or_default().push(i);
    }
    // Topological order of the groups (Kahn), earliest first node first.
    let mut waits: BTreeMap<usize, BTreeSet<usize>> = BTreeMap::new();
    for (&g, nodes) in &members {
        let deps = waits.entry(g).or_default();
        for &i in nodes {
            for &p in pipeline.parents(i) {
                let pg = find(&mut parent, p);
                if pg != g {
                    deps.insert(pg);
                }
            }
        }
    }
    let mut done = BTreeSet::new();
    let mut ordered = Vec::with_capacity(members.len());
    while ordered.len() < members.len() {
        let next = members
            .iter()
            .filter(|(g, _)| !done.contains(*g) && waits[*g].is_subset(&done))
            .min_by_key(|(_, nodes)| position[&nodes[0]])
            .map(|(g, _)| *g)
            .expect("the merged groups form no cycle");
        done.insert(next);
        ordered.push(members[&next].clone());
    }
    ordered
}

/// The step of each node, from the steps' node lists.
fn group_of(groups: &[Vec<usize>], nodes: usize) -> Vec<usize> {
    let mut group_of = vec![0; nodes];
    for (g, members) in groups.iter().enumerate() {
        for &i in members {
            group_of[i] = g;
        }
    }
    group_of
}

/// A name as KFP wants it: lowercase letters, digits and dashes.
pub fn kfp_name(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_string()
}

/// Datasets that one step writes and another reads, which therefore must be
/// where every step sees them.
pub fn crossing_datasets(pipeline: &Pipeline, catalog: &Catalog) -> BTreeSet<String> {
    let groups = step_groups(pipeline, catalog);
    let group_of = group_of(&groups, pipeline.len());
    let mut out = BTreeSet::new();
    for (i, node) in pipeline.nodes().iter().enumerate() {
        for input in node.inputs.iter().filter(|d| !is_parameter(d)) {
            if let Some(p) = pipeline.producer_of(input) {
                if group_of[p] != group_of[i] {
                    out.insert(input.clone());
                }
            }
        }
    }
    out
}

/// The pipeline spec and, with a volume, the Kubernetes platform spec.
pub fn compile(
    pipeline: &Pipeline,
    catalog: &Catalog,
    options: &KubeflowOptions,
) -> (Value, Option<Value>) {
    let groups = step_groups(pipeline, catalog);
    let group_of = group_of(&groups, pipeline.len());
    let nodes = pipeline.nodes();
    let mut used = BTreeSet::new();
    let task_names: Vec<String> = groups
        .iter()
        .map(|members| {
            let base = match members.len() {
                1 => kfp_name(&nodes[members[0]].name),
                k => format!("{}-and-{}-more", kfp_name(&nodes[members[0]].name), k - 1),
            };
            let mut name = base.clone();
            let mut suffix = 2;
            while !used.insert(name.clone()) {
                name = format!("{base}-{suffix}");
                suffix += 1;
            }
            name
        })
        .collect();

    let params_input = json!({"parameters": {"params": {"parameterType": "STRING"}}});
    let (mut components, mut executors, mut tasks, mut platform) =
        (Map::new(), Map::new(), Map::new(), Map::new());
    for (g, members) in groups.iter().enumerate() {
        let task = &task_names[g];
        let (component, executor) = (format!("comp-{task}"), format!("exec-{task}"));
        let node_list: Vec<String> = members.iter().map(|&i| nodes[i].name.clone()).collect();
        let mut args = step_args(options, &node_list);
        args.extend([
            "--params".into(),
            "{{$.inputs.parameters['params']}}".into(),
        ]);
        components.insert(
            component.clone(),
            json!({"executorLabel": executor, "inputDefinitions": params_input}),
        );
        executors.insert(
            executor.clone(),
            json!({"container": {"image": options.image, "command": options.command, "args": args}}),
        );
        let depends: BTreeSet<&str> = members
            .iter()
            .flat_map(|&i| pipeline.parents(i).iter().map(|&p| group_of[p]))
            .filter(|&p| p != g)
            .map(|p| task_names[p].as_str())
            .collect();
        let mut spec = json!({
            "taskInfo": {"name": task},
            "componentRef": {"name": component},
            "inputs": {"parameters": {"params": {"componentInputParameter": "params"}}},
            "cachingOptions": {"enableCache": false},
        });
        if !depends.is_empty() {
            spec["dependentTasks"] = json!(depends);
        }
        tasks.insert(task.clone(), spec);
        if let Some(claim) = &options.volume_claim {
            platform.insert(
                executor,
                json!({"pvcMount": [{"constant": claim, "mountPath": options.data_path}]}),
            );
        }
    }
    let spec = json!({
        "pipelineInfo": {
            "name": kfp_name(&options.pipeline),
            "description": format!("roadsign pipeline '{}': {} node(s) in {} step(s)", options.pipeline, nodes.len(), groups.len()),
        },
        "sdkVersion": concat!("roadsign-", env!("CARGO_PKG_VERSION")),
        "schemaVersion": "2.1.0",
        "components": components,
        "deploymentSpec": {"executors": executors},
        "root": {
            "dag": {"tasks": tasks},
            "inputDefinitions": {"parameters": {"params": {
                "parameterType": "STRING",
                "defaultValue": "",
                "isOptional": true,
                "description": "--params overrides for every step, k=v,k2=v2",
            }}},
        },
    });
    let platform = options
        .volume_claim
        .as_ref()
        .map(|_| json!({"platforms": {"kubernetes": {"deploymentSpec": {"executors": platform}}}}));
    (spec, platform)
}

/// A step run on several ranks, one pod each, every pod running the same
/// `run --nodes ...` command; the launcher tells each process its rank.
#[derive(Clone, Debug)]
pub struct DistributedStep {
    /// The jobs' name (a Kubernetes name).
    pub name: String,
    /// The nodes the step runs.
    pub nodes: Vec<String>,
    /// How many ranks (pods).
    pub ranks: usize,
}

/// The step's command line in the image.
fn step_args(options: &KubeflowOptions, nodes: &[String]) -> Vec<String> {
    let mut args = vec![
        "run".to_string(),
        "--pipeline".into(),
        options.pipeline.clone(),
        "--nodes".into(),
        nodes.join(","),
    ];
    if let Some(env) = &options.env {
        args.extend(["--env".into(), env.clone()]);
    }
    args
}

/// `step` as the two kinds of job Kubeflow's training operators run: a
/// Trainer v2 `TrainJob` on the `torch-distributed` runtime (one process
/// per pod: the runtime's `PET_*` variables give the node rank) and a v1
/// `PyTorchJob` (one master and `ranks - 1` workers: `MASTER_ADDR`, `RANK`,
/// `WORLD_SIZE`). Both mount the steps' volume claim over the data folder,
/// or, without one, reach the object stores of `--env` as the steps do.
pub fn distributed_jobs(options: &KubeflowOptions, step: &DistributedStep) -> (Value, Value) {
    let args = step_args(options, &step.nodes);
    let name = kfp_name(&step.name);
    let mount = options.volume_claim.as_ref().map(|claim| {
        (
            json!([{"name": "data", "mountPath": options.data_path}]),
            json!([{"name": "data", "persistentVolumeClaim": {"claimName": claim}}]),
        )
    });
    let mut train_job = json!({
        "apiVersion": "trainer.kubeflow.org/v1alpha1",
        "kind": "TrainJob",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/part-of": "roadsign"}},
        "spec": {
            "runtimeRef": {"name": "torch-distributed", "kind": "ClusterTrainingRuntime", "apiGroup": "trainer.kubeflow.org"},
            "trainer": {
                "image": options.image,
                "command": options.command,
                "args": args,
                "numNodes": step.ranks,
                "numProcPerNode": 1,
            },
        },
    });
    if let Some((mounts, volumes)) = &mount {
        train_job["spec"]["podSpecOverrides"] = json!([{
            "targetJobs": [{"name": "node"}],
            "containers": [{"name": "node", "volumeMounts": mounts}],
            "volumes": volumes,
        }]);
    }
    let mut container = json!({
        "name": "pytorch",
        "image": options.image,
        "command": options.command,
        "args": args,
    });
    if let Some((mounts, _)) = &mount {
        container["volumeMounts"] = mounts.clone();
    }
    let mut pod = json!({"containers": [container]});
    if let Some((_, volumes)) = &mount {
        pod["volumes"] = volumes.clone();
    }
    let replica = |replicas: usize| json!({"replicas": replicas, "restartPolicy": "OnFailure", "template": {"spec": pod}});
    let mut replicas = json!({"Master": replica(1)});
    if step.ranks > 1 {
        replicas["Worker"] = replica(step.ranks - 1);
    }
    let pytorch_job = json!({
        "apiVersion": "kubeflow.org/v1",
        "kind": "PyTorchJob",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/part-of": "roadsign"}},
        "spec": {"pytorchReplicaSpecs": replicas},
    });
    (train_job, pytorch_job)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::DatasetTypes;
    use crate::config::{LoadOptions, ProjectConfig};
    use crate::pipeline::PipelineBuilder;

    fn project(nodes: &str, persisted: &[&str]) -> (Pipeline, Catalog) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("pipelines.yml"),
            format!("pipelines:\n  p:\n    nodes:\n{nodes}"),
        )
        .unwrap();
        std::fs::write(dir.path().join("parameters.yml"), "x: 1\n").unwrap();
        let catalog: String = persisted
            .iter()
            .map(|d| format!("{d}:\n  type: json.JSONDataset\n  filepath: data/{d}.json\n"))
            .collect();
        std::fs::write(dir.path().join("catalog.yml"), catalog).unwrap();
        let config = ProjectConfig::load(dir.path(), &LoadOptions::default()).unwrap();
        let pipeline = PipelineBuilder::new(&config)
            .build(&["p".to_string()])
            .unwrap();
        let catalog = Catalog::from_config(&config, &DatasetTypes::builtin()).unwrap();
        (pipeline, catalog)
    }

    fn names(pipeline: &Pipeline, groups: &[Vec<usize>]) -> Vec<Vec<String>> {
        groups
            .iter()
            .map(|g| {
                g.iter()
                    .map(|&i| pipeline.nodes()[i].name.clone())
                    .collect()
            })
            .collect()
    }

    const CHAIN: &str = "      - {func: noop, name: a, inputs: 'params:x', outputs: mem1}
      - {func: noop, name: b, inputs: mem1, outputs: saved1}
      - {func: noop, name: c, inputs: saved1, outputs: saved2}
      - {func: noop, name: d, inputs: saved1, outputs: mem2}
      - {func: noop, name: e, inputs: [mem2, saved2], outputs: saved3}
";

    fn options() -> KubeflowOptions {
        KubeflowOptions {
            pipeline: "p".into(),
            image: "example.org/roadsign:1".into(),
            command: vec!["roadsign".into()],
            env: Some("kubeflow".into()),
            volume_claim: Some("roadsign-data".into()),
            data_path: "/app/data".into(),
        }
    }

    #[test]
    fn memory_datasets_keep_their_nodes_in_one_step() {
        let (pipeline, catalog) = project(CHAIN, &["saved1", "saved2", "saved3"]);
        let groups = step_groups(&pipeline, &catalog);
        assert_eq!(
            names(&pipeline, &groups),
            [vec!["a", "b"], vec!["c"], vec!["d", "e"]]
        );
    }

    #[test]
    fn groups_that_would_wait_on_each_other_are_merged() {
        let nodes = "      - {func: noop, name: x, inputs: 'params:x', outputs: [m, s]}
      - {func: noop, name: y, inputs: s, outputs: t}
      - {func: noop, name: z, inputs: [m, t], outputs: u}
";
        let (pipeline, catalog) = project(nodes, &["s", "t", "u"]);
        let groups = step_groups(&pipeline, &catalog);
        assert_eq!(names(&pipeline, &groups), [vec!["x", "y", "z"]]);
    }

    #[test]
    fn the_spec_has_a_step_per_group_and_the_runner_dag() {
        let (pipeline, catalog) = project(CHAIN, &["saved1", "saved2", "saved3"]);
        let (spec, platform) = compile(&pipeline, &catalog, &options());
        let platform = platform.unwrap();
        let tasks = spec["root"]["dag"]["tasks"].as_object().unwrap();
        let keys: Vec<&str> = tasks.keys().map(String::as_str).collect();
        assert_eq!(keys, ["a-and-1-more", "c", "d-and-1-more"]);
        assert!(tasks["a-and-1-more"].get("dependentTasks").is_none());
        assert_eq!(tasks["c"]["dependentTasks"], json!(["a-and-1-more"]));
        assert_eq!(
            tasks["d-and-1-more"]["dependentTasks"],
            json!(["a-and-1-more", "c"])
        );
        let executor = &spec["deploymentSpec"]["executors"]["exec-d-and-1-more"]["container"];
        assert_eq!(executor["image"], "example.org/roadsign:1");
        assert_eq!(
            executor["args"],
            json!([
                "run",
                "--pipeline",
                "p",
                "--nodes",
                "d,e",
                "--env",
                "kubeflow",
                "--params",
                "{{$.inputs.parameters['params']}}"
            ])
        );
        assert_eq!(spec["components"]["comp-c"]["executorLabel"], "exec-c");
        assert_eq!(spec["schemaVersion"], "2.1.0");
        let mount = &platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]["exec-c"]
            ["pvcMount"][0];
        assert_eq!(mount["constant"], "roadsign-data");
        assert_eq!(mount["mountPath"], "/app/data");
    }

    #[test]
    fn without_a_volume_there_is_no_platform_spec_and_crossings_are_known() {
        let (pipeline, catalog) = project(CHAIN, &["saved1", "saved2", "saved3"]);
        let options = KubeflowOptions {
            volume_claim: None,
            ..options()
        };
        let (_, platform) = compile(&pipeline, &catalog, &options);
        assert!(platform.is_none());
        let crossing: Vec<String> = crossing_datasets(&pipeline, &catalog).into_iter().collect();
        assert_eq!(crossing, ["saved1", "saved2"]);
    }

    #[test]
    fn names_are_kfp_names() {
        assert_eq!(kfp_name("eu.train_yolo"), "eu-train-yolo");
        assert_eq!(kfp_name("__Default__"), "default");
    }

    #[test]
    fn a_distributed_step_runs_the_same_command_on_every_rank() {
        let step = DistributedStep {
            name: "train_yolo".into(),
            nodes: vec!["train_yolo".into()],
            ranks: 4,
        };
        let (train_job, pytorch_job) = distributed_jobs(&options(), &step);
        let trainer = &train_job["spec"]["trainer"];
        assert_eq!(trainer["numNodes"], 4);
        assert_eq!(trainer["numProcPerNode"], 1);
        assert_eq!(
            trainer["args"],
            json!([
                "run",
                "--pipeline",
                "p",
                "--nodes",
                "train_yolo",
                "--env",
                "kubeflow"
            ])
        );
        let overrides = &train_job["spec"]["podSpecOverrides"][0];
        assert_eq!(
            overrides["volumes"][0]["persistentVolumeClaim"]["claimName"],
            "roadsign-data"
        );
        let specs = &pytorch_job["spec"]["pytorchReplicaSpecs"];
        assert_eq!(specs["Master"]["replicas"], 1);
        assert_eq!(specs["Worker"]["replicas"], 3);
        let container = &specs["Worker"]["template"]["spec"]["containers"][0];
        assert_eq!(container["name"], "pytorch");
        assert_eq!(container["args"], trainer["args"]);
        assert_eq!(container["volumeMounts"][0]["mountPath"], "/app/data");

        let mut no_volume = options();
        no_volume.volume_claim = None;
        let (train_job, pytorch_job) = distributed_jobs(&no_volume, &step);
        assert!(train_job["spec"].get("podSpecOverrides").is_none());
        assert!(
            pytorch_job["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]
                .get("volumes")
                .is_none()
        );
    }
}
