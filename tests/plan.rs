//! `roadsign run --dry-run`: plan JSON, filters, namespaces, and the errors
//! that stop a run before anything starts (exit 2, nothing on stdout).

mod common;
use common::{plan_names, Project};
use serde_json::json;

const PIPELINES: &str = r#"
pipelines:
  detection:
    nodes:
      - func: noop
        name: preprocess
        inputs: [raw_signs, params:preprocess]
        outputs: [train_set, val_set]
        tags: [data]
      - func: noop
        name: train
        inputs: {data: train_set, cfg: params:train}
        outputs: model
        tags: [model]
      - func: noop
        name: evaluate
        inputs: [model, val_set]
        outputs: metrics
        tags: [model, report]
  ocr:
    nodes:
      - {func: noop, name: crop, inputs: [raw_signs, model], outputs: crops}
      - {func: noop, name: read, inputs: crops, outputs: texts, tags: report}
  __default__:
    pipelines: [detection, ocr]
  eu_detection:
    pipeline: detection
    namespace: eu
    tags: [eu]
    inputs: {raw_signs: eu_raw_signs}
    outputs: {val_set: eu_val_set}
    parameters: {params:preprocess: params:eu_preprocess}
"#;

/// Every dataset of PIPELINES is a stored JSON file, written up front: a
/// selection's free inputs then exist, as a real run needs them to.
const DATASETS: [&str; 12] = [
    "raw_signs",
    "train_set",
    "val_set",
    "model",
    "metrics",
    "crops",
    "texts",
    "eu_raw_signs",
    "eu.train_set",
    "eu_val_set",
    "eu.model",
    "eu.metrics",
];

fn project() -> Project {
    let catalog: String = DATASETS
        .iter()
        .map(|d| format!("{d}:\n  type: json.JSONDataset\n  filepath: data/{d}.json\n"))
        .collect();
    let p = Project::new(&[
        ("pipelines.yml", PIPELINES),
        ("catalog.yml", &catalog),
        (
            "parameters.yml",
            "preprocess: {}\ntrain: {}\neu_preprocess: {}\neu: {train: {}}\n",
        ),
    ]);
    for d in DATASETS {
        p.write(&format!("data/{d}.json"), "{}");
    }
    p
}

#[test]
fn plan_json_follows_the_spec() {
    let p = project();
    let plan = p.plan(&["--pipeline", "detection"]);
    assert_eq!(
        plan,
        json!({
            "pipeline": "detection",
            "nodes": [
                {"name": "preprocess", "func": "noop", "inputs": ["raw_signs", "params:preprocess"],
                 "outputs": ["train_set", "val_set"], "tags": ["data"]},
                {"name": "train", "func": "noop", "inputs": ["train_set", "params:train"],
                 "outputs": ["model"], "tags": ["model"]},
                {"name": "evaluate", "func": "noop", "inputs": ["model", "val_set"],
                 "outputs": ["metrics"], "tags": ["model", "report"]},
            ],
            "free_inputs": ["params:preprocess", "params:train", "raw_signs"],
            "outputs": ["metrics"],
        })
    );
}

#[test]
fn default_pipeline_is_the_union_in_layer_order() {
    let p = project();
    let plan = p.plan(&[]);
    assert_eq!(plan["pipeline"], "__default__");
    // layers: [preprocess], [train], [crop, evaluate], [read]
    assert_eq!(
        plan_names(&plan),
        ["preprocess", "train", "crop", "evaluate", "read"]
    );
    let both = p.plan(&["--pipelines", "ocr,detection"]);
    assert_eq!(plan_names(&both), plan_names(&plan));
    assert_eq!(both["pipeline"], "ocr,detection");
}

#[test]
fn filters_combine_as_an_intersection() {
    let p = project();
    let names = |args: &[&str]| plan_names(&p.plan(args));
    assert_eq!(
        names(&["--from-nodes", "train"]),
        ["train", "crop", "evaluate", "read"]
    );
    assert_eq!(
        names(&["--to-nodes", "crop"]),
        ["preprocess", "train", "crop"]
    );
    assert_eq!(
        names(&["--nodes", "read,preprocess"]),
        ["preprocess", "read"]
    );
    assert_eq!(names(&["--from-inputs", "val_set"]), ["evaluate"]);
    assert_eq!(names(&["--to-outputs", "model"]), ["preprocess", "train"]);
    assert_eq!(names(&["--tags", "report"]), ["evaluate", "read"]);
    assert_eq!(
        names(&[
            "--tags",
            "model",
            "--from-nodes",
            "train",
            "--to-nodes",
            "evaluate"
        ]),
        ["train", "evaluate"]
    );
    let plan = p.plan(&["--from-nodes", "crop"]);
    assert_eq!(plan["free_inputs"], json!(["model", "raw_signs"]));
    assert_eq!(plan["outputs"], json!(["texts"]));
}

#[test]
fn namespaces_prefix_unmapped_names_like_kedro() {
    let p = project();
    let plan = p.plan(&["--pipeline", "eu_detection"]);
    assert_eq!(
        plan_names(&plan),
        ["eu.preprocess", "eu.train", "eu.evaluate"]
    );
    let first = &plan["nodes"][0];
    assert_eq!(
        first["inputs"],
        json!(["eu_raw_signs", "params:eu_preprocess"])
    );
    assert_eq!(first["outputs"], json!(["eu.train_set", "eu_val_set"]));
    assert_eq!(first["tags"], json!(["data", "eu"]));
    // parameters not in the mapping are namespaced too (Kedro 1.x)
    assert_eq!(
        plan["nodes"][1]["inputs"],
        json!(["eu.train_set", "params:eu.train"])
    );
    let ns = p.plan(&[
        "--pipeline",
        "eu_detection",
        "--namespaces",
        "eu",
        "--tags",
        "report",
    ]);
    assert_eq!(plan_names(&ns), ["eu.evaluate"]);
}

#[test]
fn comma_lists_are_read_like_kedros_cli() {
    let p = project();
    let names = |args: &[&str]| plan_names(&p.plan(args));
    assert_eq!(
        names(&["--nodes", "read, preprocess,"]),
        ["preprocess", "read"]
    );
    assert_eq!(
        names(&["--tags", ""]).len(),
        5,
        "an empty list is no filter"
    );
    let stderr = p.fails(&["run", "--dry-run", "--nodes", "read,read"], 2);
    assert!(
        stderr.contains("appear more than once: ['read']"),
        "{stderr}"
    );
}

#[test]
fn transcoded_datasets_link_their_writer_and_readers() {
    let p = Project::new(&[
        (
            "pipelines.yml",
            "pipelines:\n  __default__:\n    nodes:\n      - {func: noop, name: w, inputs: in, outputs: d@pandas}\n      - {func: noop, name: r, inputs: d@spark, outputs: out}\n",
        ),
        (
            "catalog.yml",
            "in:\n  type: text.TextDataset\n  filepath: data/in.txt\nd@pandas:\n  type: text.TextDataset\n  filepath: data/d.txt\nd@spark:\n  type: text.TextDataset\n  filepath: data/d.txt\n",
        ),
    ]);
    p.write("data/in.txt", "in");
    p.write("data/d.txt", "d");
    let plan = p.plan(&[]);
    assert_eq!(plan_names(&plan), ["w", "r"]);
    assert_eq!(plan["free_inputs"], json!(["in"]));
    assert_eq!(plan_names(&p.plan(&["--to-outputs", "d"])), ["w"]);
    assert_eq!(plan_names(&p.plan(&["--from-inputs", "d@spark"])), ["r"]);
}

#[test]
fn text_plan_lists_inputs_nodes_and_outputs() {
    let p = project();
    let text = p.ok(&["run", "--dry-run", "--pipeline", "ocr"]);
    assert!(
        text.starts_with("Pipeline: ocr\nInputs: model, raw_signs\n"),
        "{text}"
    );
    assert!(
        text.contains("   2. read = noop([crops]) -> [texts]  #report"),
        "{text}"
    );
    assert!(text.ends_with("Outputs: texts\n"), "{text}");
}

#[test]
fn selection_errors_exit_2_with_nothing_on_stdout() {
    let p = project();
    let cases: &[(&[&str], &str)] = &[
        (
            &["--nodes", "nope"],
            "Pipeline does not contain nodes named ['nope'].",
        ),
        (
            &["--pipeline", "eu_detection", "--nodes", "train"],
            "Did you mean: eu.train?",
        ),
        (
            &["--from-inputs", "ghost"],
            "Pipeline does not contain datasets named ['ghost']",
        ),
        (&["--to-outputs", "ghost"], "datasets named ['ghost']"),
        (
            &["--tags", "nothing"],
            "no nodes after applying all provided filters",
        ),
        (&["--namespaces", "us"], "namespaces: ['us']"),
        (&["--pipeline", "missing"], "unknown pipeline 'missing'"),
        (&["--params", "oops"], "is not key=value"),
        (&["--env", "staging"], "environment 'staging' not found"),
    ];
    for (args, expected) in cases {
        let mut all = vec!["run", "--dry-run", "--format", "json"];
        all.extend_from_slice(args);
        let stderr = p.fails(&all, 2);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

fn pipelines_error(pipelines: &str, expected: &[&str]) {
    let p = Project::new(&[("pipelines.yml", pipelines)]);
    let stderr = p.fails(&["run", "--dry-run", "--format", "json"], 2);
    for e in expected {
        assert!(stderr.contains(e), "expected {e:?} in:\n{stderr}");
    }
}

#[test]
fn invalid_pipelines_are_reported_with_file_and_line() {
    pipelines_error(
        "pipelines:\n  __default__:\n    nodes:\n      - {func: noop, name: a, inputs: y, outputs: x}\n      - {func: noop, name: b, inputs: x, outputs: y}\n",
        &["pipelines.yml:2", "Circular dependencies exist among the following 2 node(s): a, b"],
    );
    pipelines_error(
        "pipelines:\n  __default__:\n    nodes:\n      - {func: noop, name: a, outputs: x}\n      - {func: noop, name: b, outputs: x}\n",
        &["Output(s) ['x'] are returned by more than one node", "pipelines.yml:4", "pipelines.yml:5"],
    );
    pipelines_error(
        "pipelines:\n  __default__:\n    nodes:\n      - {func: noop, name: a, outputs: x}\n      - {func: nosuch, name: b, inputs: x}\n",
        &["pipelines.yml:5: node 'b': unknown function 'nosuch'"],
    );
    pipelines_error(
        "pipelines:\n  __default__:\n    nodes:\n      - func: noop\n        colour: red\n",
        &["pipelines.yml:5", "unknown field `colour`"],
    );
    pipelines_error(
        "pipelines:\n  __default__:\n    nodes: [\n",
        &["pipelines.yml:"],
    );
    pipelines_error(
        "pipelines:\n  a: {pipelines: [b]}\n  b: {pipelines: [a]}\n  __default__: {pipelines: [a]}\n",
        &["pipelines include each other: a -> b -> a"],
    );
    pipelines_error(
        "pipelines:\n  a:\n    nodes: [{func: noop, inputs: x, outputs: y}]\n  __default__:\n    pipeline: a\n    namespace: n\n    inputs: {y: z}\n",
        &["pipelines.yml:7", "Inputs must not be outputs from another node"],
    );
    pipelines_error(
        "pipelines:\n  a:\n    nodes: [{func: noop, inputs: x, outputs: y}]\n  __default__:\n    pipeline: a\n    outputs: {q: z}\n",
        &["Failed to map datasets and/or parameters onto the nodes provided: ['q']"],
    );
    pipelines_error("pipelines:\n  __default__: {}\n", &["has no nodes"]);
    pipelines_error(
        "pipelines:\n  __default__:\n    nodes: [{func: noop, name: lonely}]\n",
        &[
            "Invalid Node definition: node 'lonely'",
            "must have some inputs or outputs",
        ],
    );
}

/// A small deterministic generator (xorshift), for reproducible random pipelines.
struct Random(u64);

impl Random {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Random pipelines of noop nodes over in-memory datasets, some reading a
/// dataset nothing produces: the dry run stops exactly where the run stops,
/// with the same error and exit status, and passes exactly when it passes.
#[test]
fn dry_runs_fail_exactly_as_runs_on_random_pipelines() {
    let mut random = Random(0x5eed_cafe);
    let mut failing = 0;
    for case in 0..12 {
        let nodes = 2 + random.below(5);
        let mut yaml = String::from("pipelines:\n  __default__:\n    nodes:\n");
        for i in 0..nodes {
            // each input: an earlier node's output, or (sometimes) a
            // dataset nothing produces and the catalog does not declare
            let inputs: Vec<String> = (0..1 + random.below(2))
                .map(|_| match random.below(6) {
                    0 => format!("missing_{case}_{i}"),
                    _ if i > 0 => format!("d{}", random.below(i)),
                    _ => format!("params:p{}", random.below(2)),
                })
                .collect();
            yaml.push_str(&format!(
                "      - {{func: noop, name: n{i}, inputs: [{}], outputs: d{i}}}\n",
                inputs.join(", ")
            ));
        }
        let p = Project::new(&[
            ("pipelines.yml", &yaml),
            ("parameters.yml", "p0: 1\np1: 2\n"),
        ]);
        let run = p.roadsign(&["run"]);
        let dry = p.roadsign(&["run", "--dry-run"]);
        assert_eq!(run.status.code(), dry.status.code(), "{yaml}");
        if run.status.success() {
            continue;
        }
        failing += 1;
        assert_eq!(run.status.code(), Some(2), "{yaml}");
        let first_line = |out: &std::process::Output| {
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .next()
                .unwrap_or_default()
                .to_string()
        };
        assert_eq!(first_line(&run), first_line(&dry), "{yaml}");
        assert!(
            first_line(&dry).contains("not found in the catalog"),
            "{yaml}"
        );
        assert!(dry.stdout.is_empty(), "no plan after a failed check");
    }
    assert!(
        failing > 0 && failing < 12,
        "both kinds of pipeline drawn: {failing} failing"
    );
}
