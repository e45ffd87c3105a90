//! `train_yolo`: YOLOv8 trained on the train split, validated on val each epoch.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use polars::prelude::*;
use runner::{NodeContext, Params};
use yolo::train::{train_data_parallel, Progress, TrainConfig};
use yolo_core::distributed::{rank_batch, BackendName, DistributedConfig, Launch};

use nodes::annotations::{SignDataset, Split};
use nodes::detection::training::history_table;
use nodes::detection::ModelFile;
use nodes::NodesError;

/// Joins the data-parallel run `launch` describes, saying what it does
/// with the batch (Ultralytics' rules: the global batch split between the
/// ranks, learning rate, accumulation and weight decay as for one process
/// on the global batch) and how gradients are averaged.
fn join(
    launch: &Launch,
    global_batch: usize,
    settings: &DistributedConfig,
) -> Result<c10d::ProcessGroup, NodesError> {
    let averaging = if settings.overlaps() {
        "during backward (DDP's Reducer)"
    } else {
        "after backward"
    };
    // Printed, not logged at info: what a rank does with the batch is part
    // of the run's record in every pod's log.
    eprintln!(
        "data-parallel training ({}): rank {} of {}, master {}:{}, {:?}, timeout {:?}; global batch {} = {} per rank; learning rate, nominal batch, accumulation and weight decay as for one process on the global batch; gradients averaged {averaging} in buckets of {:.0} MiB",
        launch.source,
        launch.rank,
        launch.world_size,
        launch.master_addr,
        launch.master_port,
        launch.backend,
        launch.timeout,
        global_batch,
        rank_batch(global_batch, launch.world_size),
        settings.bucket_bytes() as f64 / f64::from(1 << 20),
    );
    let device = match std::env::var("GLOO_SOCKET_IFNAME") {
        Ok(interface) if !interface.is_empty() => c10d::GlooDevice::Interface(interface),
        // On one machine (tests, a single pod) the loopback address.
        _ if ["127.0.0.1", "localhost", "::1"].contains(&launch.master_addr.as_str()) => {
            c10d::GlooDevice::Host("127.0.0.1".into())
        }
        _ => c10d::GlooDevice::Default,
    };
    let backend = match launch.backend {
        BackendName::Gloo => c10d::Backend::Gloo,
        BackendName::Nccl => c10d::Backend::Nccl,
    };
    c10d::ProcessGroup::connect(
        &c10d::Rendezvous {
            master_addr: launch.master_addr.clone(),
            master_port: launch.master_port,
            rank: launch.rank,
            world_size: launch.world_size,
            timeout: launch.timeout,
            device,
        },
        backend,
    )
    .map_err(|e| NodesError::Model(e.into()))
}

/// Trains on the `train` split of the model input and keeps the best epoch by
/// validation mAP50-95; returns the model and the per-epoch history.
///
/// Relative checkpoint and pretrained paths are the project's, whatever the
/// working directory.
pub fn train_yolo(
    data: SignDataset,
    params: Params<TrainConfig>,
    context: NodeContext,
) -> Result<(ModelFile, DataFrame), NodesError> {
    let mut config = params.0;
    let spec = config
        .model_spec()
        .map_err(|e| NodesError::Params(e.to_string()))?;
    config.checkpoints = config.checkpoints.as_deref().map(|p| context.resolve(p));
    config.pretrained = config.pretrained.as_deref().map(|p| context.resolve(p));
    let train_set = nodes::detection::labeled_split(&data, Split::Train, Some(config.imgsz))?;
    let val_set = nodes::detection::labeled_split(&data, Split::Val, Some(config.imgsz))?;
    if train_set.is_empty() {
        return Err(NodesError::Data(
            "the model input has no `train` images (run preprocess_data first)".into(),
        ));
    }
    tracing::info!(
        train = train_set.len(),
        val = val_set.len(),
        classes = data.classes.len(),
        "training {} at {} px for {} epochs, {} activations",
        spec,
        config.imgsz,
        config.epochs,
        match yolo::train::parse_device(&config.device)
            .map(|device| yolo::train::activation_kind(device, config.amp))
        {
            Ok(tch::Kind::BFloat16) => "bfloat16",
            _ => "float32",
        }
    );
    let bar = if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr())
    } else {
        ProgressBar::hidden()
    };
    let style = ProgressStyle::with_template("epoch {prefix} {bar:25} {pos}/{len} {msg}")
        .expect("static template");
    bar.set_style(style);
    // The model's version: when its training started, as run ids are written.
    let started = runner::catalog::storage::timestamp_version(std::time::SystemTime::now());
    let launch =
        yolo_core::distributed::resolve(config.distributed.as_ref(), &|k| std::env::var(k).ok())
            .map_err(|e| NodesError::Params(e.to_string()))?;
    let settings = config.distributed.clone().unwrap_or_default();
    let group = launch
        .as_ref()
        .map(|l| join(l, config.batch, &settings))
        .transpose()?;
    let outcome = train_data_parallel(
        &train_set,
        &val_set,
        data.classes.clone(),
        &config,
        group.as_ref(),
        &mut |event| match event {
            Progress::EpochStart {
                epoch,
                epochs,
                batches,
            } => {
                bar.reset();
                bar.set_length(batches as u64);
                bar.set_prefix(format!("{}/{}", epoch + 1, epochs));
            }
            Progress::Batch {
                parts,
                images_per_s,
            } => {
                bar.inc(1);
                bar.set_message(format!(
                    "box {:.3} cls {:.3} dfl {:.3} · {images_per_s:.1} img/s",
                    parts.box_loss, parts.cls_loss, parts.dfl_loss
                ));
            }
            Progress::EpochEnd(record) => {
                let losses = format!(
                    "epoch {:>3}: box {:.3} cls {:.3} dfl {:.3} · {:.1} img/s",
                    record.epoch + 1,
                    record.box_loss,
                    record.cls_loss,
                    record.dfl_loss,
                    record.images_per_s,
                );
                let line = if record.map50.is_nan() {
                    // A rank other than 0: no validation of its own.
                    format!(
                        "{losses} (all ranks) · {:.1}s in collectives outside backward",
                        record.sync_s
                    )
                } else {
                    format!(
                        "{losses} (waited {:.1}s for data) · val mAP50 {:.3} mAP50-95 {:.3}",
                        record.data_wait_s, record.map50, record.map50_95
                    )
                };
                // A hidden bar (no terminal: CI, logs) prints nothing, so print directly.
                if bar.is_hidden() {
                    eprintln!("{line}");
                } else {
                    bar.println(line);
                }
            }
        },
    )
    .map_err(|e| NodesError::Model(e.into()))?;
    bar.finish_and_clear();
    let mut best = outcome.best;
    best.info.version = Some(started);
    let bytes = best.to_bytes().map_err(|e| NodesError::Model(e.into()))?;
    Ok((
        ModelFile::from_bytes(bytes)?,
        history_table(&outcome.history)?,
    ))
}
