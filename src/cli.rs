//! The command line.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "roadsign",
    version,
    about = "A declarative DAG pipeline runner, and a road-sign reader built on it"
)]
pub struct Cli {
    /// The project folder (holding catalog.yml, parameters.yml, pipelines.yml).
    #[arg(long, global = true, default_value = ".")]
    pub project_dir: PathBuf,
    /// More logging: -v info, -vv debug (RUST_LOG overrides).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a pipeline (or show its plan with --dry-run).
    Run(RunArgs),
    /// Draw the DAG of nodes and datasets.
    Viz(VizArgs),
    /// Inspect the data catalog.
    Catalog {
        #[command(subcommand)]
        command: CatalogCommand,
    },
    /// Inspect pipelines.
    Pipeline {
        #[command(subcommand)]
        command: PipelineCommand,
    },
    /// Read the road signs in image files (and videos).
    Predict(PredictArgs),
    /// Serve the predict pipeline over HTTP.
    Serve(ServeArgs),
    /// Load a running server with concurrent requests and report latencies.
    Stress(StressArgs),
    /// Kubeflow Pipelines: compile a pipeline to a KFP v2 pipeline spec.
    Kubeflow {
        #[command(subcommand)]
        command: KubeflowCommand,
    },
}

#[derive(Subcommand, Debug)]
pub enum KubeflowCommand {
    /// Write the pipeline spec (YAML) that the KFP UI and SDK upload.
    Compile(KubeflowArgs),
}

#[derive(Args, Debug, Clone)]
pub struct KubeflowArgs {
    /// The pipeline to compile (default: __default__).
    #[arg(long, default_value = "__default__")]
    pub pipeline: String,
    /// Configuration environment of every step (`roadsign run --env`).
    #[arg(long)]
    pub env: Option<String>,
    /// The container image the steps run.
    #[arg(long, default_value = "docker.io/roadsign/roadsign:0.1.0")]
    pub image: String,
    /// The PersistentVolumeClaim mounted over the project's data/ in every step.
    #[arg(long, default_value = "roadsign-data")]
    pub volume_claim: String,
    /// No volume: steps exchange datasets through the catalog of --env,
    /// which must keep every dataset that crosses steps in an object store.
    #[arg(long)]
    pub no_volume: bool,
    /// Where data/ is in the image.
    #[arg(long, default_value = "/app/data")]
    pub data_path: String,
    /// Instead of the pipeline spec, the pipeline's training step as a
    /// distributed job of this many ranks (one pod each): a Kubeflow
    /// Trainer v2 TrainJob and a training-operator v1 PyTorchJob.
    #[arg(long, value_name = "RANKS")]
    pub distributed: Option<usize>,
    /// Write to this file instead of stdout.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// 0 picks a free port (printed on start).
    #[arg(long, default_value_t = 5000)]
    pub port: u16,
    /// Configuration environment: conf/NAME/*.yml merged over the root files.
    #[arg(long)]
    pub env: Option<String>,
    /// Parameter overrides, `serve.workers=4,predict.conf=0.3`.
    #[arg(long)]
    pub params: Vec<String>,
    /// The model file (default: the catalog's `model` once a run trained
    /// it, else the shipped models/yolov8n-roadsign.safetensors).
    #[arg(long)]
    pub model: Option<PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub struct StressArgs {
    /// The server (`http://127.0.0.1:5000`) or the route to load (`.../predict`).
    #[arg(long)]
    pub url: String,
    #[arg(long, default_value_t = 100)]
    pub requests: usize,
    /// Concurrent clients.
    #[arg(long, default_value_t = 10)]
    pub workers: usize,
    /// The image to post (default: a generated 640x640 scene with 3 signs).
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// Also write the posted image here (to load another server with it).
    #[arg(long)]
    pub save_file: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
    pub format: PlanFormat,
    /// `predict`: multipart `file` to /predict (or the URL's route); `v2`:
    /// the Open Inference Protocol's infer route of `--model`, the image as a
    /// BYTES tensor with the binary data extension, outputs binary too.
    #[arg(long, value_enum, default_value_t = Protocol::Predict)]
    pub protocol: Protocol,
    /// The model name on the v2 routes (`GET /v2/models/NAME` answers 200);
    /// needed with `--protocol v2`.
    #[arg(long, required_if_eq("protocol", "v2"))]
    pub model: Option<String>,
    /// Images per v2 request (one BYTES tensor of this many copies).
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Predict,
    V2,
}

#[derive(Args, Debug, Clone)]
pub struct PredictArgs {
    /// Image files (JPEG, PNG, WebP, BMP) and videos (MP4, WebM, AVI, MOV,
    /// MKV: the annotated copy is written beside them as NAME.annotated.mp4).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Configuration environment: conf/NAME/*.yml merged over the root files.
    #[arg(long)]
    pub env: Option<String>,
    /// The model file (default: the catalog's `model` once a run trained
    /// it, else the shipped models/yolov8n-roadsign.safetensors).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Minimum confidence of a detection (default: params predict.conf).
    #[arg(long)]
    pub conf: Option<f32>,
    /// IoU above which overlapping boxes of one class are suppressed.
    #[arg(long)]
    pub iou: Option<f32>,
    /// Input size (default: the size the model was trained at).
    #[arg(long)]
    pub imgsz: Option<u32>,
    /// `cpu`, `cuda` or `auto`.
    #[arg(long)]
    pub device: Option<String>,
    /// A YOLOv10 answers with its one-to-many head and NMS instead of its
    /// one-to-one head's top-k (params predict.end2end: false). YOLOv8
    /// always uses NMS.
    #[arg(long)]
    pub nms: bool,
    #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
    pub format: PlanFormat,
}

#[derive(Args, Debug, Clone, Default)]
pub struct Selection {
    /// The pipeline to use (default: __default__).
    #[arg(long, conflicts_with = "pipelines")]
    pub pipeline: Option<String>,
    /// Several pipelines, run as their union (Kedro 1.x spelling).
    #[arg(long, value_delimiter = ',')]
    pub pipelines: Vec<String>,
    /// Configuration environment: conf/NAME/*.yml merged over the root files.
    #[arg(long)]
    pub env: Option<String>,
    /// Parameter overrides, `a.b=3,c=x` (values are YAML scalars).
    #[arg(long)]
    pub params: Vec<String>,
}

impl Selection {
    pub fn pipeline_names(&self) -> Vec<String> {
        match (&self.pipeline, self.pipelines.is_empty()) {
            (Some(p), _) => vec![p.clone()],
            (None, false) => crate::commands::clean(&self.pipelines),
            (None, true) => vec!["__default__".to_string()],
        }
    }
}

#[derive(Args, Debug, Clone, Default)]
pub struct RunArgs {
    #[command(flatten)]
    pub selection: Selection,
    #[arg(long, value_enum, default_value_t = RunnerChoice::Sequential)]
    pub runner: RunnerChoice,
    /// Only these nodes.
    #[arg(long, value_delimiter = ',')]
    pub nodes: Vec<String>,
    /// These nodes and everything downstream.
    #[arg(long, value_delimiter = ',')]
    pub from_nodes: Vec<String>,
    /// These nodes and everything upstream.
    #[arg(long, value_delimiter = ',')]
    pub to_nodes: Vec<String>,
    /// Nodes depending on these datasets.
    #[arg(long, value_delimiter = ',')]
    pub from_inputs: Vec<String>,
    /// Nodes needed to produce these datasets.
    #[arg(long, value_delimiter = ',')]
    pub to_outputs: Vec<String>,
    /// Nodes with any of these tags.
    #[arg(long, value_delimiter = ',')]
    pub tags: Vec<String>,
    /// Nodes in these namespaces (or nested under them).
    #[arg(long, value_delimiter = ',')]
    pub namespaces: Vec<String>,
    /// Load a given version of a versioned dataset: `ds:VERSION`.
    #[arg(long, value_delimiter = ',')]
    pub load_versions: Vec<String>,
    /// Print the execution plan and run nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Plan format for --dry-run.
    #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
    pub format: PlanFormat,
    /// Run every selected node, even those that are up to date.
    #[arg(long)]
    pub force: bool,
}

#[derive(ValueEnum, Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RunnerChoice {
    #[default]
    Sequential,
    Parallel,
}

#[derive(ValueEnum, Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PlanFormat {
    #[default]
    Text,
    Json,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum VizChoice {
    Mermaid,
    Dot,
    Json,
    Html,
}

#[derive(Args, Debug)]
pub struct VizArgs {
    #[command(flatten)]
    pub selection: Selection,
    #[arg(long, value_enum, default_value_t = VizChoice::Mermaid)]
    pub format: VizChoice,
    /// Write to this file instead of stdout.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum CatalogCommand {
    /// Datasets, their type and where they live.
    List {
        #[command(flatten)]
        selection: Selection,
        #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
        format: PlanFormat,
    },
}

#[derive(Subcommand, Debug)]
pub enum PipelineCommand {
    /// Pipelines and their node counts.
    List {
        #[arg(long)]
        env: Option<String>,
        #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
        format: PlanFormat,
    },
}
