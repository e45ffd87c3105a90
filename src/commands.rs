//! What each sub-command does, on top of the runner's API and the project
//! it is given ([`crate::project`]).

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Instant;

use anyhow::{Context, Result};

use runner::run::{self, Plan, RunOptions, RunnerKind};
use runner::viz::{self, VizFormat};
use runner::{Catalog, Filters, Pipeline, PipelineBuilder};

use crate::cli::{
    CatalogCommand, Cli, Command, KubeflowArgs, KubeflowCommand, PipelineCommand, PlanFormat,
    RunArgs, RunnerChoice, Selection, VizChoice,
};
use crate::project::{
    build_pipeline, dataset_types, load_config, registry, run_hooks, tracking_dir,
};

pub fn dispatch(cli: &Cli) -> Result<()> {
    match &cli.command {
        Command::Run(args) => run_command(cli, args),
        Command::Viz(args) => {
            let config = load_config(cli, &args.selection.env, &args.selection.params)?;
            let pipeline = build_pipeline(&config, &args.selection)?;
            let mut catalog = Catalog::from_config(&config, &dataset_types())?;
            catalog.resolve(&pipeline.datasets())?;
            let format = match args.format {
                VizChoice::Mermaid => VizFormat::Mermaid,
                VizChoice::Dot => VizFormat::Dot,
                VizChoice::Json => VizFormat::Json,
                VizChoice::Html => VizFormat::Html,
            };
            let title = args.selection.pipeline_names().join(", ");
            let text = viz::render(
                format,
                &title,
                &pipeline,
                &dataset_kinds(&pipeline, &catalog),
            );
            write_output(args.output.as_deref(), &text)
        }
        Command::Catalog {
            command: CatalogCommand::List { selection, format },
        } => catalog_list(cli, selection, *format),
        Command::Pipeline {
            command: PipelineCommand::List { env, format },
        } => pipeline_list(cli, env, *format),
        Command::Predict(args) => crate::engine::predict(cli, args),
        Command::Serve(args) => crate::engine::serve(cli, args),
        Command::Stress(args) => crate::stress::stress_command(args),
        Command::Kubeflow {
            command: KubeflowCommand::Compile(args),
        } => kubeflow_compile(cli, args),
    }
}

/// `roadsign kubeflow compile`: the pipeline spec and, as a second YAML
/// document, the Kubernetes platform spec (the data volume of every step).
fn kubeflow_compile(cli: &Cli, args: &KubeflowArgs) -> Result<()> {
    let config = load_config(cli, &args.env, &[])?;
    let pipeline = PipelineBuilder::new(&config).build(std::slice::from_ref(&args.pipeline))?;
    let mut catalog = Catalog::from_config(&config, &dataset_types())?;
    catalog.resolve(&pipeline.datasets())?;
    // What `roadsign run` would check first: every function exists and fits.
    run::bind(&pipeline, &registry(), &catalog)?;
    let options = runner::kubeflow::KubeflowOptions {
        pipeline: args.pipeline.clone(),
        image: args.image.clone(),
        command: vec!["roadsign".into()],
        env: args.env.clone(),
        volume_claim: (!args.no_volume).then(|| args.volume_claim.clone()),
        data_path: args.data_path.clone(),
    };
    if args.no_volume {
        // Without a shared volume, what one step writes and another reads
        // must live in an object store.
        let local: Vec<String> = runner::kubeflow::crossing_datasets(&pipeline, &catalog)
            .into_iter()
            .filter(|d| {
                catalog
                    .get(d)
                    .and_then(|ds| ds.file_location())
                    .is_none_or(|l| !l.is_remote())
            })
            .collect();
        if !local.is_empty() {
            return Err(runner::Error::invalid(format!(
                "--no-volume: dataset(s) {} cross steps but are not in an object store; point them at s3:// (an --env catalog such as conf/kubeflow/) or mount a volume",
                local.join(", ")
            ))
            .into());
        }
    }
    if let Some(ranks) = args.distributed {
        return distributed_training_jobs(&pipeline, &options, ranks, args.output.as_deref());
    }
    let (spec, platform) = runner::kubeflow::compile(&pipeline, &catalog, &options);
    let mut text = format!(
        "# PIPELINE DEFINITION (Kubeflow Pipelines v2), compiled by roadsign\n# Name: {}\n{}",
        args.pipeline,
        serde_yaml::to_string(&spec)?
    );
    if let Some(platform) = platform {
        text.push_str("---\n");
        text.push_str(&serde_yaml::to_string(&platform)?);
    }
    write_output(args.output.as_deref(), &text)
}

/// The node function a data-parallel run distributes (`train.distributed`,
/// `kubeflow compile --distributed`).
const TRAINING_FUNCTION: &str = "train_yolo";

/// The pipeline's training nodes as a TrainJob and a PyTorchJob of `ranks`
/// pods each.
fn distributed_training_jobs(
    pipeline: &Pipeline,
    options: &runner::kubeflow::KubeflowOptions,
    ranks: usize,
    output: Option<&std::path::Path>,
) -> Result<()> {
    if ranks < 2 {
        anyhow::bail!("--distributed {ranks}: a distributed job has at least 2 ranks (one trains as a plain step)");
    }
    let nodes: Vec<String> = pipeline
        .nodes()
        .iter()
        .filter(|n| n.func == TRAINING_FUNCTION)
        .map(|n| n.name.clone())
        .collect();
    let Some(first) = nodes.first() else {
        anyhow::bail!(
            "--distributed: pipeline '{}' has no train_yolo node to distribute",
            options.pipeline
        );
    };
    let step = runner::kubeflow::DistributedStep {
        name: format!("roadsign-{}", first.replace(['_', '.'], "-")),
        nodes: nodes.clone(),
        ranks,
    };
    let (train_job, pytorch_job) = runner::kubeflow::distributed_jobs(options, &step);
    let text = format!(
        "# Distributed training (roadsign kubeflow compile --distributed {ranks}): nodes {nodes}\n\
         # of pipeline '{pipeline}' on {ranks} pods. Apply ONE of the two documents: the\n\
         # TrainJob on Kubeflow Trainer v2, the PyTorchJob on the training operator v1.\n{}---\n{}",
        serde_yaml::to_string(&train_job)?,
        serde_yaml::to_string(&pytorch_job)?,
        nodes = nodes.join(","),
        pipeline = options.pipeline,
    );
    write_output(output, &text)
}

fn write_output(path: Option<&std::path::Path>, text: &str) -> Result<()> {
    match path {
        Some(path) => {
            std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
        }
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())?;
            if !text.ends_with('\n') {
                out.write_all(b"\n")?;
            }
            Ok(())
        }
    }
}

/// The catalog type of every dataset a pipeline touches.
fn dataset_kinds(pipeline: &Pipeline, catalog: &Catalog) -> viz::DatasetTypesByName {
    pipeline
        .datasets()
        .into_iter()
        .map(|d| {
            let kind = if runner::pipeline::is_parameter(&d) {
                "parameters".to_string()
            } else {
                catalog
                    .get(&d)
                    .map(|ds| ds.describe().type_name)
                    .unwrap_or_else(|| "memory".to_string())
            };
            (d, kind)
        })
        .collect()
}

/// Comma lists as Kedro's CLI reads them: items trimmed, empty items dropped.
pub fn clean(items: &[String]) -> Vec<String> {
    items
        .iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

fn filters(args: &RunArgs) -> Filters {
    Filters {
        tags: clean(&args.tags),
        from_nodes: clean(&args.from_nodes),
        to_nodes: clean(&args.to_nodes),
        node_names: clean(&args.nodes),
        from_inputs: clean(&args.from_inputs),
        to_outputs: clean(&args.to_outputs),
        namespaces: clean(&args.namespaces),
    }
}

fn run_command(cli: &Cli, args: &RunArgs) -> Result<()> {
    let config = load_config(cli, &args.selection.env, &args.selection.params)?;
    let full = build_pipeline(&config, &args.selection)?;
    let pipeline = full.filter(&filters(args))?;
    let mut versions = runner::catalog::storage::Versions::default();
    for spec in clean(&args.load_versions) {
        let (dataset, version) = spec.split_once(':').ok_or_else(|| {
            runner::Error::invalid(format!(
                "--load-versions '{spec}': expected dataset:VERSION"
            ))
        })?;
        versions
            .load_versions
            .insert(dataset.to_string(), version.to_string());
    }
    let registry = registry();
    if !args.dry_run {
        // Plans need only the functions' types; running needs their bodies.
        crate::engine::run_here_or_hand_over(
            &registry,
            pipeline.nodes().iter().map(|n| n.func.as_str()),
        )?;
    }
    let mut catalog = Catalog::with_versions(&config, &dataset_types(), versions)?;
    // The YAML's nodes and the unfiltered pipeline are not needed any more:
    // their memory serves the run (a tenth of a 10,000-node run's peak).
    drop(full);
    drop(config);
    let name = args.selection.pipeline_names().join(",");

    let tracking = tracking_dir(&cli.project_dir);
    if args.dry_run {
        // The same checks as a real run: what would stop it stops the plan.
        let bound = run::prepare(&pipeline, &mut catalog, &registry)?;
        let mut plan = Plan::new(&name, &pipeline);
        if !args.force {
            plan.up_to_date = run::predict_up_to_date(&pipeline, &bound, &catalog, &tracking);
        }
        let text = match args.format {
            PlanFormat::Json => plan.to_json(),
            PlanFormat::Text => plan.to_text(),
        };
        return write_output(None, &text);
    }

    let follower = follower_rank(&pipeline, &catalog)?;
    if let Some(rank) = follower {
        // Rank 0 writes the model, history, reports and the run's record;
        // this rank's copies stay in memory.
        for output in pipeline.all_outputs() {
            catalog.insert(
                &output,
                std::sync::Arc::new(runner::catalog::MemoryDataset::new(&output)),
            );
        }
        eprintln!(
            "rank {rank} of a data-parallel run: outputs are rank 0's to write, this process keeps its own in memory"
        );
    }
    let command: Vec<String> = std::env::args().map(|a| quote(&a)).collect();
    let options = RunOptions {
        runner: match args.runner {
            RunnerChoice::Sequential => RunnerKind::Sequential,
            RunnerChoice::Parallel => RunnerKind::Parallel,
        },
        hooks: match follower {
            None => run_hooks(&cli.project_dir, &tracking, command.join(" ")),
            Some(_) => Default::default(),
        },
        state_dir: follower.is_none().then_some(tracking),
        force: args.force,
        // A few parameters name folders (training checkpoints): they are
        // relative to the project, not to the shell.
        project_dir: std::path::absolute(&cli.project_dir)
            .unwrap_or_else(|_| cli.project_dir.clone()),
        ..Default::default()
    };
    let start = Instant::now();
    let report = run::run(&pipeline, &mut catalog, &registry, &options)?;
    let skipped = match report.skipped.len() {
        0 => String::new(),
        n => format!(", {n} up to date (--force reruns them)"),
    };
    eprintln!(
        "pipeline '{name}': {} node(s) completed{skipped} in {:.2?}",
        report.completed.len(),
        start.elapsed()
    );
    Ok(())
}

/// This process's rank when it is a rank other than 0 of a data-parallel
/// training (`train.distributed` of a selected `train_yolo` node, or the
/// launcher's environment): such a rank trains but writes nothing.
fn follower_rank(pipeline: &Pipeline, catalog: &Catalog) -> Result<Option<usize>> {
    let env = |k: &str| std::env::var(k).ok();
    for node in pipeline
        .nodes()
        .iter()
        .filter(|n| n.func == TRAINING_FUNCTION)
    {
        for input in node
            .inputs
            .iter()
            .filter(|i| runner::pipeline::is_parameter(i))
        {
            let distributed = match catalog
                .parameter(input)
                .and_then(|v| v.get("distributed").cloned())
            {
                Some(value) => serde_json::from_value(value)
                    .map_err(|e| anyhow::anyhow!("{input}.distributed: {e}"))?,
                None => None,
            };
            if let Some(launch) = yolo_core::distributed::resolve(distributed.as_ref(), &env)? {
                if launch.rank != 0 {
                    return Ok(Some(launch.rank));
                }
            }
        }
    }
    Ok(None)
}

fn catalog_list(cli: &Cli, selection: &Selection, format: PlanFormat) -> Result<()> {
    let config = load_config(cli, &selection.env, &selection.params)?;
    let mut catalog = Catalog::from_config(&config, &dataset_types())?;
    let pipeline = match selection.pipeline.is_some() || !selection.pipelines.is_empty() {
        true => Some(build_pipeline(&config, selection)?),
        false => None,
    };
    if let Some(pipeline) = &pipeline {
        catalog.resolve(&pipeline.datasets())?;
    }
    // name -> (type, location, factory pattern it came from)
    let mut rows: BTreeMap<String, (String, String, String)> = catalog
        .describe()
        .into_iter()
        .map(|(name, d)| {
            let pattern = catalog.pattern_of(&name).unwrap_or_default().to_string();
            (name, (d.type_name, d.location.unwrap_or_default(), pattern))
        })
        .collect();
    match &pipeline {
        Some(pipeline) => {
            let used = dataset_kinds(pipeline, &catalog);
            rows.retain(|name, _| used.contains_key(name));
            for (name, kind) in used {
                rows.entry(name)
                    .or_insert((kind, String::new(), String::new()));
            }
        }
        None => {
            for (pattern, entry) in catalog.patterns() {
                let filepath = entry
                    .options
                    .get("filepath")
                    .and_then(|v| v.as_str())
                    .unwrap_or_default();
                rows.insert(
                    pattern.to_string(),
                    (
                        entry.type_name.clone(),
                        filepath.to_string(),
                        "(factory)".to_string(),
                    ),
                );
            }
        }
    }
    let text = match format {
        PlanFormat::Json => serde_json::to_string_pretty(
            &rows
                .iter()
                .map(|(n, (t, l, f))| serde_json::json!({"name": n, "type": t, "location": l, "factory": f}))
                .collect::<Vec<_>>(),
        )?,
        PlanFormat::Text => table(
            &["dataset", "type", "location", "factory"],
            rows.iter()
                .map(|(n, (t, l, f))| vec![n.clone(), t.clone(), l.clone(), f.clone()]),
        ),
    };
    write_output(None, &text)
}

fn pipeline_list(cli: &Cli, env: &Option<String>, format: PlanFormat) -> Result<()> {
    let config = load_config(cli, env, &[])?;
    let mut builder = PipelineBuilder::new(&config);
    let mut rows = Vec::new();
    for (name, def) in &config.pipelines {
        let pipeline = builder.build(std::slice::from_ref(name))?;
        rows.push((
            name.clone(),
            pipeline.len(),
            def.spec.description.clone().unwrap_or_default(),
        ));
    }
    let text = match format {
        PlanFormat::Json => serde_json::to_string_pretty(
            &rows
                .iter()
                .map(|(n, c, d)| serde_json::json!({"name": n, "nodes": c, "description": d}))
                .collect::<Vec<_>>(),
        )?,
        PlanFormat::Text => table(
            &["pipeline", "nodes", "description"],
            rows.iter()
                .map(|(n, c, d)| vec![n.clone(), c.to_string(), d.clone()]),
        ),
    };
    write_output(None, &text)
}

/// A plain aligned text table.
fn table(header: &[&str], rows: impl Iterator<Item = Vec<String>>) -> String {
    let rows: Vec<Vec<String>> = rows.collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| -> String {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        padded.join("  ").trim_end().to_string()
    };
    let mut out = line(header.iter().map(|h| h.to_string()).collect());
    out.push('\n');
    for row in rows {
        out.push_str(&line(row));
        out.push('\n');
    }
    out
}

/// The one exit-code policy: 2 when nothing ran (usage, configuration,
/// installation), 1 when something failed while running.
pub fn exit_code(err: &anyhow::Error) -> i32 {
    if err.is::<crate::engine::HandOverError>() || err.is::<crate::UsageError>() {
        return 2;
    }
    match err.downcast_ref::<runner::Error>() {
        Some(e) => e.exit_code(),
        None => 1,
    }
}

/// Shell-quotes one argument when it needs it.
fn quote(arg: &str) -> String {
    if !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.,:/=@%+".contains(c))
    {
        arg.to_string()
    } else {
        format!("\"{}\"", arg.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

/// The command that resumes a failed run: the same selection, starting
/// from the given nodes.
fn resume_command(cli: &Cli, args: &RunArgs, from: &[String]) -> String {
    let mut parts = vec!["roadsign".to_string(), "run".to_string()];
    let mut push = |flag: &str, values: &[String]| {
        if !values.is_empty() {
            parts.push(flag.to_string());
            parts.push(quote(&values.join(",")));
        }
    };
    if cli.project_dir != std::path::Path::new(".") {
        push("--project-dir", &[cli.project_dir.display().to_string()]);
    }
    let sel = &args.selection;
    push("--pipeline", sel.pipeline.as_slice());
    push("--pipelines", &sel.pipelines);
    push("--env", sel.env.as_slice());
    for p in &sel.params {
        push("--params", std::slice::from_ref(p));
    }
    if args.runner == RunnerChoice::Parallel {
        push("--runner", &["parallel".to_string()]);
    }
    push("--nodes", &args.nodes);
    push("--to-nodes", &args.to_nodes);
    push("--from-inputs", &args.from_inputs);
    push("--to-outputs", &args.to_outputs);
    push("--tags", &args.tags);
    push("--namespaces", &args.namespaces);
    parts.push(format!("--from-nodes \"{}\"", from.join(",")));
    parts.join(" ")
}

pub fn describe_error(err: &anyhow::Error, cli: &Cli) -> String {
    let Some(runner::Error::Run(failure)) = err.downcast_ref::<runner::Error>() else {
        return format!("error: {err:#}");
    };
    let mut text = format!("error: {failure}\n");
    let Command::Run(args) = &cli.command else {
        return text;
    };
    if failure.resume_from.is_empty() {
        text.push_str("No node completed: repeat the previous command to try again.");
    } else {
        text.push_str(&format!(
            "{} node(s) have not run. Completed outputs are saved; resume from the nearest nodes with persisted inputs:\n  {}",
            failure.total - failure.completed,
            resume_command(cli, args, &failure.resume_from)
        ));
    }
    text
}
