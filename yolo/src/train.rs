//! Training as Ultralytics' trainer does it: SGD or AdamW over three parameter
//! groups, warm-up of learning rates, momentum and gradient accumulation, linear
//! or cosine decay to lr0·lrf, gradient clipping at 10, an EMA of the weights
//! that is validated and kept, mosaic closed for the last epochs. Batches are
//! augmented in parallel on rayon and prepared while the model trains.
//!
//! Data parallel over a c10d process group ([`train_data_parallel`]) as
//! Ultralytics trains under DDP: the global batch split between the ranks,
//! each epoch's shared seeded order sharded as DistributedSampler shards it,
//! the loss scaled by the world size and the gradients averaged (PyTorch's
//! all-reduce, in buckets) before each optimiser step, so that every rank
//! steps to the same weights; BatchNorm's running statistics broadcast from
//! rank 0 before each forward (DDP's default); rank 0 alone validates and
//! writes checkpoints.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Instant;

use c10d::{GradientReducer, ProcessGroup};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use tch::nn::OptimizerConfig;
use tch::{nn, Device, Kind, Tensor};
use yolo_core::distributed::{rank_batch, shard, DistributedConfig};

use crate::augment::{resize_long_side, train_sample, Labeled};
use crate::error::{Result, WeightsError, YoloError};
use crate::loss::{Criterion, LossGains, LossParts, Targets};
use crate::metrics::DetectionMetrics;
use crate::model::{GROUP_BIAS, GROUP_NORM, GROUP_WEIGHT};
use crate::predict::{evaluate, images_to_tensor};
use crate::weights::{Detector, ModelInfo};

pub use yolo_core::train_config::{EpochRecord, TrainConfig};

/// The activations' precision for training on `device`: bfloat16 under
/// `amp` where the hardware has it (CUDA; x86 CPUs with AVX512-BF16, where
/// oneDNN runs bfloat16 convolutions natively: 1.5x the float32 speed and
/// 0.6x its memory for YOLOv8n here), float32 otherwise.
pub fn activation_kind(device: Device, amp: bool) -> Kind {
    if !amp {
        return Kind::Float;
    }
    let native = match device {
        Device::Cuda(_) => true,
        _ => cpu_has_bf16(),
    };
    if native {
        Kind::BFloat16
    } else {
        Kind::Float
    }
}

#[cfg(target_arch = "x86_64")]
fn cpu_has_bf16() -> bool {
    std::arch::is_x86_feature_detected!("avx512bf16")
}

#[cfg(not(target_arch = "x86_64"))]
fn cpu_has_bf16() -> bool {
    false
}

/// `auto` → CUDA when libtorch and a GPU provide it.
pub fn parse_device(name: &str) -> Result<Device> {
    match name {
        "auto" => Ok(Device::cuda_if_available()),
        "cpu" => Ok(Device::Cpu),
        "cuda" if tch::Cuda::is_available() => Ok(Device::Cuda(0)),
        "cuda" => Err(YoloError::Config(
            "device cuda asked for, but libtorch sees no CUDA GPU".into(),
        )),
        other => Err(YoloError::Config(format!(
            "unknown device {other:?} (auto, cpu or cuda)"
        ))),
    }
}

/// What training leaves: the best and the last EMA models, the history, the
/// best epoch's metrics.
pub struct TrainOutcome {
    pub best: Detector,
    pub last_epoch: usize,
    pub best_epoch: usize,
    pub history: Vec<EpochRecord>,
    pub best_metrics: DetectionMetrics,
}

/// The optimiser chosen, with its base learning rate.
#[derive(Clone, Copy, Debug, PartialEq)]
enum OptimizerKind {
    Sgd,
    AdamW,
}

/// Ultralytics' `auto` rule: SGD for long schedules, AdamW with a learning rate
/// from the class count otherwise (and no bias warm-up).
fn choose_optimizer(
    config: &TrainConfig,
    iterations: usize,
    nc: usize,
) -> Result<(OptimizerKind, f64, f64, f64)> {
    match config.optimizer.to_ascii_lowercase().as_str() {
        "auto" if iterations > 10_000 => Ok((OptimizerKind::Sgd, 0.01, 0.9, config.warmup_bias_lr)),
        "auto" => {
            let lr = (0.002 * 5.0 / (4.0 + nc as f64) * 1e6).round() / 1e6;
            Ok((OptimizerKind::AdamW, lr, 0.9, 0.0))
        }
        "sgd" => Ok((
            OptimizerKind::Sgd,
            config.lr0,
            config.momentum,
            config.warmup_bias_lr,
        )),
        "adamw" => Ok((
            OptimizerKind::AdamW,
            config.lr0,
            config.momentum,
            config.warmup_bias_lr,
        )),
        other => Err(YoloError::Config(format!(
            "unknown optimizer {other:?} (auto, SGD or AdamW)"
        ))),
    }
}

fn interp(x: f64, x0: f64, x1: f64, y0: f64, y1: f64) -> f64 {
    if x1 <= x0 {
        return y1;
    }
    y0 + (y1 - y0) * ((x - x0) / (x1 - x0)).clamp(0.0, 1.0)
}

/// The learning-rate factor of an epoch: linear or cosine from 1 to lrf.
fn lr_factor(config: &TrainConfig, epoch: usize) -> f64 {
    let e = epoch as f64 / config.epochs as f64;
    if config.cos_lr {
        ((1.0 - (std::f64::consts::PI * e).cos()) / 2.0) * (config.lrf - 1.0) + 1.0
    } else {
        (1.0 - e) * (1.0 - config.lrf) + config.lrf
    }
}

/// An exponential moving average of every floating-point variable (weights and
/// BatchNorm statistics), decay ramping up as 0.9999·(1 − e^(−updates/2000)).
struct Ema {
    pairs: Vec<(Tensor, Tensor)>,
    updates: f64,
}

impl Ema {
    fn new(model: &nn::VarStore, ema: &nn::VarStore) -> Ema {
        let source = model.variables();
        let target = ema.variables();
        let mut names: Vec<&String> = source.keys().collect();
        names.sort();
        let pairs = names
            .into_iter()
            .map(|n| (source[n].shallow_clone(), target[n].shallow_clone()))
            .collect();
        Ema {
            pairs,
            updates: 0.0,
        }
    }

    fn update(&mut self) {
        self.updates += 1.0;
        let d = 0.9999 * (1.0 - (-self.updates / 2000.0).exp());
        tch::no_grad(|| {
            for (source, target) in &mut self.pairs {
                let _ = target.g_mul_scalar_(d);
                let _ = target.g_add_(&(source.detach() * (1.0 - d)));
            }
        });
    }
}

/// Saved after every epoch beside the weights, to resume.
#[derive(Serialize, Deserialize)]
struct Checkpoint {
    epoch: usize,
    best_epoch: usize,
    best_fitness: f64,
    ema_updates: f64,
    history: Vec<EpochRecord>,
}

/// Progress events for the caller's display.
pub enum Progress<'a> {
    EpochStart {
        epoch: usize,
        epochs: usize,
        batches: usize,
    },
    Batch {
        parts: &'a LossParts,
        images_per_s: f64,
    },
    EpochEnd(&'a EpochRecord),
}

/// Trains a detector on `train`, validating on `val` each epoch. Checkpoints
/// (`last.safetensors`, `ema.safetensors`, `best.safetensors`, `state.json`) go
/// to `config.checkpoints` when set.
pub fn train(
    train_set: &[Labeled],
    val_set: &[Labeled],
    names: Vec<String>,
    config: &TrainConfig,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<TrainOutcome> {
    train_data_parallel(train_set, val_set, names, config, None, progress)
}

/// [`train`] as one rank of `group` (alone when `None`). Every rank passes
/// the same data and configuration; each trains on its shard of every
/// epoch. Rank 0's outcome is the run's: the other ranks neither validate
/// nor write checkpoints, and their outcome has no metrics of its own.
pub fn train_data_parallel(
    train_set: &[Labeled],
    val_set: &[Labeled],
    names: Vec<String>,
    config: &TrainConfig,
    group: Option<&ProcessGroup>,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<TrainOutcome> {
    if train_set.is_empty() {
        return Err(YoloError::Config("no training images".into()));
    }
    if config.epochs == 0 || config.batch == 0 || !config.imgsz.is_multiple_of(32) {
        return Err(YoloError::Config(format!(
            "epochs and batch must be positive and imgsz a multiple of 32 (got {}, {}, {})",
            config.epochs, config.batch, config.imgsz
        )));
    }
    // The settings are checked and the models built before the set is resized.
    let (mut trainer, start_epoch) = Trainer::new(config, names, train_set.len(), group)?;
    let s = config.imgsz;
    // Images already at the training size (the detection node decodes them
    // so) are borrowed, not copied: a second copy of the training set cost
    // about 100 MiB of the peak.
    let cache: Vec<Cow<'_, Labeled>> = train_set
        .par_iter()
        .map(|l| {
            let (w, h) = l.image.dimensions();
            if w.max(h) == s {
                Cow::Borrowed(l)
            } else {
                Cow::Owned(resize_long_side(l, s))
            }
        })
        .collect();
    for epoch in start_epoch..config.epochs {
        trainer.run_epoch(epoch, &cache, val_set, progress)?;
    }
    trainer.finish(val_set)
}

/// How the learning rate, momentum and gradient accumulation move over the
/// optimiser's steps: a warm-up, then the epoch's factor of `lr0`.
struct Schedule {
    kind: OptimizerKind,
    lr0: f64,
    warmup_bias_lr: f64,
    batches_per_epoch: usize,
    /// Batches per optimiser step after the warm-up (`nbs / batch`).
    accumulate_target: f64,
    warmup_iterations: usize,
}

/// The best epoch so far: Ultralytics 8.3 ranks checkpoints by mAP50-95
/// alone.
struct Best {
    epoch: usize,
    fitness: f64,
    metrics: Option<DetectionMetrics>,
}

/// One training run: the model and its EMA, the optimiser and its schedule,
/// the loss, and the record so far. [`train`] drives it epoch by epoch.
struct Trainer<'c> {
    config: &'c TrainConfig,
    /// The process group of a data-parallel run, with the tensors it keeps
    /// in step.
    parallel: Option<Parallel<'c>>,
    names: Vec<String>,
    device: Device,
    activations: Kind,
    model: Detector,
    ema: Detector,
    averager: Ema,
    optimizer: nn::Optimizer,
    schedule: Schedule,
    loss: Criterion,
    /// The step the optimiser last took; Ultralytics starts at -1 so that
    /// the very first batch steps.
    last_step: i64,
    history: Vec<EpochRecord>,
    best: Best,
}

impl<'c> Trainer<'c> {
    /// The models (seeded, from `config.pretrained` when set), the
    /// optimiser for `train_len` images, and the state of a checkpoint to
    /// resume when `config.resume` finds one; with the first epoch to run.
    fn new(
        config: &'c TrainConfig,
        names: Vec<String>,
        train_len: usize,
        group: Option<&'c ProcessGroup>,
    ) -> Result<(Trainer<'c>, usize)> {
        let device = parse_device(&config.device)?;
        let activations = activation_kind(device, config.amp);
        let spec = config.model_spec()?;
        let nc = names.len();
        let info = ModelInfo {
            names: names.clone(),
            arch: spec.arch,
            scale: spec.scale,
            imgsz: config.imgsz as i64,
            name: None,
            version: None,
        };
        tch::manual_seed(config.seed as i64);
        let mut model = Detector::new(info.clone(), device);
        if let Some(path) = &config.pretrained {
            let source = Detector::load(path, device)?;
            let copied = model.copy_matching(&source);
            if copied == 0 {
                return Err(YoloError::Weights {
                    path: path.clone(),
                    source: WeightsError::NoMatchingTensor,
                });
            }
        }
        let mut ema = Detector::new(info.clone(), device);
        ema.vs.copy(&model.vs)?;

        // Ultralytics under DDP: each rank loads batch / world images per
        // step, its epoch is its shard; accumulation, weight decay and the
        // iteration count follow the global batch, the warm-up this rank's
        // batches.
        let world = group.map_or(1, ProcessGroup::world_size);
        let rank_batch = rank_batch(config.batch, world);
        let batches_per_epoch = train_len.div_ceil(world).div_ceil(rank_batch);
        let accumulate_target = (config.nbs as f64 / config.batch as f64).round().max(1.0);
        let weight_decay =
            config.weight_decay * config.batch as f64 * accumulate_target / config.nbs as f64;
        let iterations = train_len.div_ceil(config.batch.max(config.nbs)) * config.epochs;
        let (kind, lr0, momentum, warmup_bias_lr) = choose_optimizer(config, iterations, nc)?;
        let mut optimizer = match kind {
            OptimizerKind::Sgd => nn::Sgd {
                momentum,
                dampening: 0.0,
                wd: 0.0,
                nesterov: true,
            }
            .build(&model.vs, lr0)?,
            OptimizerKind::AdamW => nn::AdamW {
                beta1: momentum,
                beta2: 0.999,
                wd: 0.0,
                eps: 1e-8,
                amsgrad: false,
            }
            .build(&model.vs, lr0)?,
        };
        optimizer.set_weight_decay_group(GROUP_WEIGHT, weight_decay);
        optimizer.set_weight_decay_group(GROUP_BIAS, 0.0);
        optimizer.set_weight_decay_group(GROUP_NORM, 0.0);
        let warmup_iterations =
            ((config.warmup_epochs * batches_per_epoch as f64).round() as usize).max(100);
        let gains = LossGains {
            box_gain: config.box_gain,
            cls_gain: config.cls_gain,
            dfl_gain: config.dfl_gain,
        };
        let loss = Criterion::new(spec.arch, nc as i64, gains, config.epochs);

        let mut start_epoch = 0;
        let mut best = Best {
            epoch: 0,
            fitness: f64::NEG_INFINITY,
            metrics: None,
        };
        let mut history = Vec::new();
        let mut ema_updates = 0.0;
        if let Some(checkpoint) = Self::checkpoint_to_resume(config, &mut model, &mut ema, device)?
        {
            start_epoch = checkpoint.epoch + 1;
            best.epoch = checkpoint.best_epoch;
            best.fitness = checkpoint.best_fitness;
            history = checkpoint.history;
            ema_updates = checkpoint.ema_updates;
        }
        let parallel = match group {
            Some(group) => {
                let settings = config.distributed.clone().unwrap_or_default();
                let parallel = Parallel::new(group, &model.vs, &settings)?;
                // Every rank starts where rank 0 starts: its weights, EMA,
                // epoch (a resumed rank 0 may be the only one to see the
                // checkpoints) and EMA count.
                parallel.broadcast_from_rank0(&sorted_variables(&model.vs))?;
                parallel.broadcast_from_rank0(&sorted_variables(&ema.vs))?;
                let progress = Tensor::from_slice(&[start_epoch as f64, ema_updates]);
                parallel.broadcast_from_rank0(std::slice::from_ref(&progress))?;
                let agreed = Vec::<f64>::try_from(&progress)?;
                start_epoch = agreed[0] as usize;
                ema_updates = agreed[1];
                Some(parallel)
            }
            None => None,
        };
        let mut averager = Ema::new(&model.vs, &ema.vs);
        averager.updates = ema_updates;
        let trainer = Trainer {
            config,
            parallel,
            names,
            device,
            activations,
            model,
            ema,
            averager,
            optimizer,
            schedule: Schedule {
                kind,
                lr0,
                warmup_bias_lr,
                batches_per_epoch,
                accumulate_target,
                warmup_iterations,
            },
            loss,
            last_step: -1,
            history,
            best,
        };
        Ok((trainer, start_epoch))
    }

    /// How many ranks train together (1 alone).
    fn world_size(&self) -> usize {
        self.parallel.as_ref().map_or(1, |p| p.group.world_size())
    }

    /// Images per forward on this rank: the global batch over the ranks.
    fn rank_batch(&self) -> usize {
        rank_batch(self.config.batch, self.world_size())
    }

    /// A rank other than 0 of a data-parallel run: it neither validates nor
    /// writes.
    fn is_follower(&self) -> bool {
        self.parallel.as_ref().is_some_and(|p| p.group.rank() != 0)
    }

    /// With `config.resume` and a checkpoint in `config.checkpoints`: its
    /// state, the model and its EMA loaded back into `model` and `ema`.
    fn checkpoint_to_resume(
        config: &TrainConfig,
        model: &mut Detector,
        ema: &mut Detector,
        device: Device,
    ) -> Result<Option<Checkpoint>> {
        let (true, Some(dir)) = (config.resume, config.checkpoints.as_deref()) else {
            return Ok(None);
        };
        let state = dir.join("state.json");
        if !state.exists() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&state).map_err(|source| YoloError::Io {
            path: state.clone(),
            source,
        })?;
        let checkpoint: Checkpoint =
            serde_json::from_str(&text).map_err(|e| YoloError::Weights {
                path: state.clone(),
                source: e.into(),
            })?;
        model
            .vs
            .copy(&Detector::load(&dir.join("last.safetensors"), device)?.vs)?;
        ema.vs
            .copy(&Detector::load(&dir.join("ema.safetensors"), device)?.vs)?;
        Ok(Some(checkpoint))
    }

    /// One epoch: batches augmented on rayon one step ahead of the model,
    /// each a step of the schedule; then the EMA validated on `val_set`,
    /// the epoch recorded, the best kept and the checkpoint written.
    fn run_epoch(
        &mut self,
        epoch: usize,
        cache: &[Cow<'_, Labeled>],
        val_set: &[Labeled],
        progress: &mut dyn FnMut(Progress<'_>),
    ) -> Result<()> {
        let config = self.config;
        let s = config.imgsz;
        let factor = lr_factor(config, epoch);
        self.loss.set_epoch(epoch);
        let mut augment = config.augment.clone();
        if epoch + config.close_mosaic >= config.epochs {
            augment.mosaic = 0.0;
        }
        let mut order: Vec<usize> = (0..cache.len()).collect();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(
            config.seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9),
        ));
        if let Some(parallel) = &self.parallel {
            order = shard(&order, parallel.group.rank(), parallel.group.world_size());
        }
        let world = self.world_size();
        let rank_batch = self.rank_batch();
        let batches_per_epoch = self.schedule.batches_per_epoch;
        progress(Progress::EpochStart {
            epoch,
            epochs: config.epochs,
            batches: batches_per_epoch,
        });

        let started = Instant::now();
        let mut sums = LossParts::default();
        let mut seen = 0usize;
        let mut lr_now = self.schedule.lr0 * factor;
        let mut data_wait = 0.0;
        if let Some(parallel) = &mut self.parallel {
            parallel.seconds = 0.0;
        }
        std::thread::scope(|scope| -> Result<()> {
            // Batches are augmented on rayon one step ahead of the model.
            let (sender, receiver) = mpsc::sync_channel::<(Vec<image::RgbImage>, Vec<f32>)>(2);
            let order = &order;
            let augment = &augment;
            scope.spawn(move || {
                for (b, indices) in order.chunks(rank_batch).enumerate() {
                    let samples: Vec<Labeled> = indices
                        .par_iter()
                        .map(|&i| {
                            let mut rng = ChaCha8Rng::seed_from_u64(
                                config.seed ^ ((epoch * 1_000_003 + b * 7919 + i) as u64),
                            );
                            train_sample(
                                &|j| cache[j].as_ref().clone(),
                                i,
                                cache.len(),
                                s,
                                augment,
                                &mut rng,
                            )
                        })
                        .collect();
                    let mut rows = Vec::new();
                    for (k, sample) in samples.iter().enumerate() {
                        for (bbox, &class) in sample.boxes.iter().zip(&sample.classes) {
                            let (w, h) = (bbox[2] - bbox[0], bbox[3] - bbox[1]);
                            rows.extend_from_slice(&[
                                k as f32,
                                class as f32,
                                (bbox[0] + w / 2.0) / s as f32,
                                (bbox[1] + h / 2.0) / s as f32,
                                w / s as f32,
                                h / s as f32,
                            ]);
                        }
                    }
                    let images = samples.into_iter().map(|sample| sample.image).collect();
                    if sender.send((images, rows)).is_err() {
                        return;
                    }
                }
            });
            let mut waited = std::time::Duration::ZERO;
            let mut b = 0;
            loop {
                let wait_started = Instant::now();
                let Ok((batch, rows)) = receiver.recv() else {
                    break;
                };
                waited += wait_started.elapsed();
                let step = b + batches_per_epoch * epoch;
                b += 1;
                let (parts, lr) = self.train_step(step, factor, &batch, &rows)?;
                lr_now = lr;
                let n = batch.len();
                sums.box_loss += parts.box_loss * n as f64;
                sums.cls_loss += parts.cls_loss * n as f64;
                sums.dfl_loss += parts.dfl_loss * n as f64;
                seen += n;
                let mean = LossParts {
                    box_loss: sums.box_loss / seen as f64,
                    cls_loss: sums.cls_loss / seen as f64,
                    dfl_loss: sums.dfl_loss / seen as f64,
                };
                progress(Progress::Batch {
                    parts: &mean,
                    // All ranks together: each trains as fast as the slowest.
                    images_per_s: (seen * world) as f64 / started.elapsed().as_secs_f64(),
                });
            }
            // Time the model waited for augmented batches: the data side's
            // share of the epoch.
            data_wait = waited.as_secs_f64();
            Ok(())
        })?;
        let images_per_s = (seen * world) as f64 / started.elapsed().as_secs_f64();
        let sync_s = self.parallel.as_ref().map_or(0.0, |p| p.seconds);
        let mut record = EpochRecord {
            epoch,
            box_loss: sums.box_loss / seen.max(1) as f64,
            cls_loss: sums.cls_loss / seen.max(1) as f64,
            dfl_loss: sums.dfl_loss / seen.max(1) as f64,
            images_per_s,
            data_wait_s: data_wait,
            sync_s,
            lr: lr_now,
            map50: f64::NAN,
            map50_95: f64::NAN,
            precision: f64::NAN,
            recall: f64::NAN,
        };
        if self.is_follower() {
            // Rank 0 validates and keeps the record; this rank goes on to
            // the next epoch (its next collective waits for rank 0).
            progress(Progress::EpochEnd(&record));
            return Ok(());
        }
        let (metrics, _) = evaluate(
            &self.ema.model,
            self.ema.inference,
            &self.names,
            val_set,
            s,
            config.batch,
        );
        record.map50 = metrics.map50;
        record.map50_95 = metrics.map50_95;
        record.precision = metrics.precision;
        record.recall = metrics.recall;
        progress(Progress::EpochEnd(&record));
        self.history.push(record);
        let improved = metrics.map50_95 > self.best.fitness;
        if improved {
            self.best.fitness = metrics.map50_95;
            self.best.epoch = epoch;
            self.best.metrics = Some(metrics);
        }
        if let Some(dir) = config.checkpoints.as_deref() {
            save_checkpoint(
                dir,
                &self.model,
                &self.ema,
                improved,
                &Checkpoint {
                    epoch,
                    best_epoch: self.best.epoch,
                    best_fitness: self.best.fitness,
                    ema_updates: self.averager.updates,
                    history: self.history.clone(),
                },
            )?;
        }
        Ok(())
    }

    /// One batch at global step `step`: the schedule's learning rates (and
    /// momentum, accumulation) set, forward and backward, and an optimiser
    /// step with the EMA's update once enough batches accumulated. Returns
    /// the batch's losses and the learning rate it ran at.
    fn train_step(
        &mut self,
        step: usize,
        factor: f64,
        batch: &[image::RgbImage],
        rows: &[f32],
    ) -> Result<(LossParts, f64)> {
        let config = self.config;
        let schedule = &self.schedule;
        let lr0 = schedule.lr0;
        let mut accumulate = schedule.accumulate_target;
        let lr_now;
        if step <= schedule.warmup_iterations {
            let w = schedule.warmup_iterations as f64;
            accumulate = interp(step as f64, 0.0, w, 1.0, schedule.accumulate_target)
                .round()
                .max(1.0);
            for group in [GROUP_BIAS, GROUP_WEIGHT, GROUP_NORM] {
                let start = if group == GROUP_BIAS {
                    schedule.warmup_bias_lr
                } else {
                    0.0
                };
                self.optimizer
                    .set_lr_group(group, interp(step as f64, 0.0, w, start, lr0 * factor));
                if schedule.kind == OptimizerKind::Sgd {
                    self.optimizer.set_momentum_group(
                        group,
                        interp(step as f64, 0.0, w, config.warmup_momentum, config.momentum),
                    );
                }
            }
            lr_now = interp(step as f64, 0.0, w, 0.0, lr0 * factor);
        } else {
            self.optimizer.set_lr(lr0 * factor);
            lr_now = lr0 * factor;
        }
        let steps_now = step as i64 - self.last_step >= accumulate as i64;
        let parts = self.forward_backward(batch, rows, steps_now)?;
        if steps_now {
            self.optimizer_step()?;
            self.last_step = step as i64;
        }
        Ok((parts, lr_now))
    }

    /// Forward and backward on one batch, the gradients accumulated; in a
    /// data-parallel run after taking rank 0's BatchNorm statistics, and
    /// with `last_of_step` (an optimiser step follows) the accumulated
    /// gradients averaged over the ranks during this backward pass.
    fn forward_backward(
        &mut self,
        batch: &[image::RgbImage],
        rows: &[f32],
        last_of_step: bool,
    ) -> Result<LossParts> {
        if let Some(parallel) = &mut self.parallel {
            parallel.sync_buffers()?;
        }
        let images = images_to_tensor(&batch.iter().collect::<Vec<_>>(), self.device)
            .to_kind(self.activations);
        let targets = Targets {
            rows: Tensor::from_slice(rows)
                .view([-1, 6])
                .to_device(self.device),
        };
        // The loss (and the assigner inside it) in float32 whatever the
        // activations' precision.
        let maps = self
            .model
            .model
            .forward_t(&images, true)
            .to_kind(Kind::Float);
        let (total, parts) = self.loss.compute(&maps, &targets);
        match &mut self.parallel {
            None => total.backward(),
            // Ultralytics scales the loss by the world size under DDP: the
            // averaged gradient is then the sum of the ranks', as one
            // process's on the global batch.
            Some(parallel) => {
                let world = parallel.group.world_size() as f64;
                parallel.backward(&(total * world), last_of_step)?;
            }
        }
        Ok(parts)
    }

    /// The accumulated gradients (averaged over the ranks) clipped and
    /// stepped, then the EMA updated.
    fn optimizer_step(&mut self) -> Result<()> {
        if let Some(parallel) = &mut self.parallel {
            parallel.average_gradients()?;
        }
        self.optimizer.clip_grad_norm(10.0);
        self.optimizer.step();
        self.optimizer.zero_grad();
        self.averager.update();
        Ok(())
    }

    /// The best model (the best checkpoint when one was written, else the
    /// EMA) with its metrics on `val_set`.
    fn finish(self, val_set: &[Labeled]) -> Result<TrainOutcome> {
        let config = self.config;
        let s = config.imgsz;
        if self.is_follower() {
            // Not this rank's to judge: its EMA, no figures.
            return Ok(TrainOutcome {
                best: self.ema,
                last_epoch: config.epochs.saturating_sub(1),
                best_epoch: self.best.epoch,
                history: self.history,
                best_metrics: DetectionMetrics::empty(self.names.len()),
            });
        }
        let (best, best_metrics) = match (config.checkpoints.as_deref(), self.best.metrics) {
            (Some(dir), _) if dir.join("best.safetensors").exists() => {
                let best = Detector::load(&dir.join("best.safetensors"), self.device)?;
                let metrics = evaluate(
                    &best.model,
                    best.inference,
                    &self.names,
                    val_set,
                    s,
                    config.batch,
                )
                .0;
                (best, metrics)
            }
            (_, Some(metrics)) => (self.ema, metrics),
            (_, None) => {
                let metrics = evaluate(
                    &self.ema.model,
                    self.ema.inference,
                    &self.names,
                    val_set,
                    s,
                    config.batch,
                )
                .0;
                (self.ema, metrics)
            }
        };
        Ok(TrainOutcome {
            best,
            last_epoch: config.epochs.saturating_sub(1),
            best_epoch: self.best.epoch,
            history: self.history,
            best_metrics,
        })
    }
}

/// A VarStore's variables in name order: the order every rank agrees on.
fn sorted_variables(vs: &nn::VarStore) -> Vec<Tensor> {
    let mut variables: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    variables.sort_by(|a, b| a.0.cmp(&b.0));
    variables.into_iter().map(|(_, t)| t).collect()
}

/// One rank's side of data-parallel training: the group, the parameters
/// whose gradients are averaged and the buffers (BatchNorm's running
/// statistics) kept as rank 0's, both in name order.
struct Parallel<'g> {
    group: &'g ProcessGroup,
    parameters: Vec<Tensor>,
    buffers: Vec<Tensor>,
    averaging: Averaging,
    /// Seconds spent waiting for collectives outside the backward pass
    /// since the epoch started (the Reducer's all-reduces run inside it).
    seconds: f64,
}

/// When a rank's gradients are averaged over the group.
enum Averaging {
    /// By DDP's Reducer, during the backward pass of an optimiser step's
    /// last batch (`overlap: true`).
    DuringBackward(GradientReducer),
    /// In one bucketed all-reduce after it, in
    /// [`Parallel::average_gradients`] (`overlap: false`).
    AfterBackward { bucket_bytes: usize },
}

impl<'g> Parallel<'g> {
    fn new(
        group: &'g ProcessGroup,
        vs: &nn::VarStore,
        settings: &DistributedConfig,
    ) -> Result<Parallel<'g>> {
        let (parameters, buffers): (Vec<Tensor>, Vec<Tensor>) = sorted_variables(vs)
            .into_iter()
            .partition(Tensor::requires_grad);
        let bucket_bytes = settings.bucket_bytes();
        let averaging = if settings.overlaps() {
            Averaging::DuringBackward(GradientReducer::new(group, &parameters, bucket_bytes)?)
        } else {
            Averaging::AfterBackward { bucket_bytes }
        };
        Ok(Parallel {
            group,
            parameters,
            buffers,
            averaging,
            seconds: 0.0,
        })
    }

    /// Backward from this rank's `loss`; with `last_of_step` and the
    /// Reducer, the accumulated gradients come out averaged over the ranks.
    fn backward(&mut self, loss: &Tensor, last_of_step: bool) -> Result<()> {
        match &mut self.averaging {
            Averaging::DuringBackward(reducer) => reducer.backward(loss, last_of_step)?,
            Averaging::AfterBackward { .. } => loss.backward(),
        }
        Ok(())
    }

    fn broadcast_from_rank0(&self, tensors: &[Tensor]) -> Result<()> {
        Ok(c10d::broadcast_all(self.group, tensors, 0)?)
    }

    fn sync_buffers(&mut self) -> Result<()> {
        let started = Instant::now();
        c10d::broadcast_all(self.group, &self.buffers, 0)?;
        self.seconds += started.elapsed().as_secs_f64();
        Ok(())
    }

    /// Every parameter's gradient replaced by the mean over the ranks (a
    /// parameter without one this step counts as zero on this rank, so
    /// that the ranks' buckets agree). With the Reducer, backward did it.
    fn average_gradients(&mut self) -> Result<()> {
        let Averaging::AfterBackward { bucket_bytes } = self.averaging else {
            return Ok(());
        };
        let started = Instant::now();
        for p in &self.parameters {
            if !p.grad().defined() {
                // A zero gradient, accumulated through autograd (tch has no
                // setter for it).
                (p * 0.0).sum(Kind::Float).backward();
            }
        }
        let grads: Vec<Tensor> = self.parameters.iter().map(Tensor::grad).collect();
        c10d::all_reduce_mean(self.group, &grads, bucket_bytes)?;
        self.seconds += started.elapsed().as_secs_f64();
        Ok(())
    }
}

fn save_checkpoint(
    dir: &Path,
    model: &Detector,
    ema: &Detector,
    improved: bool,
    state: &Checkpoint,
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|source| YoloError::Io {
        path: dir.into(),
        source,
    })?;
    let write = |name: &str, bytes: &[u8]| -> Result<()> {
        let path: PathBuf = dir.join(name);
        let tmp = dir.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, bytes)
            .and_then(|_| std::fs::rename(&tmp, &path))
            .map_err(|source| YoloError::Io { path, source })
    };
    write("last.safetensors", &model.to_bytes()?)?;
    let ema_bytes = ema.to_bytes()?;
    write("ema.safetensors", &ema_bytes)?;
    if improved {
        write("best.safetensors", &ema_bytes)?;
    }
    // The state goes last: a checkpoint is complete once it names this epoch.
    write(
        "state.json",
        serde_json::to_string_pretty(state)
            .expect("checkpoint serialises")
            .as_bytes(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Scale;

    #[test]
    fn amp_picks_bfloat16_only_where_it_is_native() {
        assert_eq!(activation_kind(Device::Cpu, false), Kind::Float);
        let expected = if cpu_has_bf16() {
            Kind::BFloat16
        } else {
            Kind::Float
        };
        assert_eq!(activation_kind(Device::Cpu, true), expected);
    }

    #[test]
    fn bfloat16_activations_train_float32_weights() {
        tch::manual_seed(0);
        let vs = nn::VarStore::new(Device::Cpu);
        let model = crate::YoloV8::new(&vs.root(), Scale::N, 2);
        let x = Tensor::rand([1, 3, 64, 64], (Kind::Float, Device::Cpu));
        // Eval mode first (batch statistics of a 2x2 map would magnify any
        // difference): the same maps within bfloat16's precision.
        let (half, full) = tch::no_grad(|| {
            (
                model.forward_t(&x.to_kind(Kind::BFloat16), false),
                model.forward_t(&x, false),
            )
        });
        assert!(half.iter().all(|m| m.kind() == Kind::BFloat16));
        assert!(full.iter().all(|m| m.kind() == Kind::Float));
        for (h, f) in half.iter().zip(&full) {
            let diff = (h.to_kind(Kind::Float) - f).norm().double_value(&[]);
            let norm = f.norm().double_value(&[]);
            assert!(diff < 0.03 * norm, "{diff} vs {norm}");
        }
        let maps = model.forward_t(&x.to_kind(Kind::BFloat16), true);
        let loss = maps
            .iter()
            .map(|m| m.to_kind(Kind::Float).square().mean(Kind::Float))
            .fold(Tensor::from(0f32), |a, b| a + b);
        loss.backward();
        for (name, v) in vs.trainable_variables().iter().enumerate().take(3) {
            let grad = v.grad();
            assert!(grad.defined(), "variable {name} has a gradient");
            assert_eq!(grad.kind(), Kind::Float, "master weights stay float32");
            assert!(grad.abs().sum(Kind::Float).double_value(&[]) > 0.0);
        }
    }

    /// Two ranks as two processes (this test binary started again once per
    /// rank, the rank's part chosen by `YOLO_DP_TEST_RANK`).
    mod data_parallel {
        use super::*;
        use std::process::Command;
        use std::time::Duration;

        const MODULE: &str = "train::tests::data_parallel::";

        /// With `overlap`, gradients averaged by DDP's Reducer during
        /// backward; without, by one bucketed all-reduce after it.
        fn config(overlap: bool) -> TrainConfig {
            TrainConfig {
                distributed: Some(DistributedConfig {
                    overlap: Some(overlap),
                    ..DistributedConfig::default()
                }),
                epochs: 1,
                batch: 4,
                nbs: 4,
                imgsz: 64,
                // SGD: linear in the gradient, so that the sums' rounding
                // stays at rounding (Adam's first step is about its sign).
                optimizer: "SGD".into(),
                lr0: 0.01,
                amp: false,
                device: "cpu".into(),
                ..TrainConfig::default()
            }
        }

        /// Rank `rank`'s two images: a bright box on grey, its label.
        fn shard(rank: usize) -> (Vec<image::RgbImage>, Vec<f32>) {
            let mut images = Vec::new();
            let mut rows = Vec::new();
            for k in 0..2u32 {
                let mut img = image::RgbImage::from_pixel(64, 64, image::Rgb([90, 90, 90]));
                let (x0, y0, w, h) = (8 + 10 * rank as u32 + 4 * k, 12 + 6 * k, 24u32, 20u32);
                for y in y0..y0 + h {
                    for x in x0..x0 + w {
                        img.put_pixel(x, y, image::Rgb([200, 60 * (rank as u8 + 1), 30]));
                    }
                }
                images.push(img);
                rows.extend_from_slice(&[
                    k as f32,
                    (rank % 2) as f32,
                    (x0 + w / 2) as f32 / 64.0,
                    (y0 + h / 2) as f32 / 64.0,
                    w as f32 / 64.0,
                    h as f32 / 64.0,
                ]);
            }
            (images, rows)
        }

        fn names() -> Vec<String> {
            vec!["a".into(), "b".into()]
        }

        fn rank_part(rank: usize, port: u16, out: &Path, overlap: bool) {
            let group = ProcessGroup::connect(
                &c10d::Rendezvous {
                    master_addr: "127.0.0.1".into(),
                    master_port: port,
                    rank,
                    world_size: 2,
                    timeout: Duration::from_secs(120),
                    device: c10d::GlooDevice::Host("127.0.0.1".into()),
                },
                c10d::Backend::Gloo,
            )
            .expect("both ranks join");
            let config = config(overlap);
            let (mut trainer, _) = Trainer::new(&config, names(), 4, Some(&group)).unwrap();
            assert_eq!(
                matches!(
                    trainer.parallel.as_ref().unwrap().averaging,
                    Averaging::DuringBackward(_)
                ),
                overlap
            );
            assert_eq!(
                trainer.rank_batch(),
                2,
                "the global batch of 4 split in two"
            );
            let (images, rows) = shard(rank);
            trainer.forward_backward(&images, &rows, true).unwrap();
            trainer.optimizer_step().unwrap();
            // As before the next forward: rank 0's running statistics.
            trainer.parallel.as_mut().unwrap().sync_buffers().unwrap();
            std::fs::write(
                out.join(format!("rank{rank}.safetensors")),
                trainer.model.to_bytes().unwrap(),
            )
            .unwrap();
        }

        #[test]
        fn one_step_of_two_ranks_is_one_step_on_both_shards() {
            two_ranks_step_as_one_process("one_step_of_two_ranks_is_one_step_on_both_shards", true);
        }

        #[test]
        fn one_step_averaged_after_backward_is_the_same_step() {
            two_ranks_step_as_one_process(
                "one_step_averaged_after_backward_is_the_same_step",
                false,
            );
        }

        fn two_ranks_step_as_one_process(test: &str, overlap: bool) {
            if let (Ok(rank), Ok(port), Ok(out)) = (
                std::env::var("YOLO_DP_TEST_RANK"),
                std::env::var("YOLO_DP_TEST_PORT"),
                std::env::var("YOLO_DP_TEST_OUT"),
            ) {
                rank_part(
                    rank.parse().unwrap(),
                    port.parse().unwrap(),
                    Path::new(&out),
                    overlap,
                );
                return;
            }
            let out = tempfile::tempdir().unwrap();
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .unwrap()
                .port();
            let children: Vec<_> = (0..2)
                .map(|rank| {
                    Command::new(std::env::current_exe().unwrap())
                        .args(["--exact", &format!("{MODULE}{test}"), "--test-threads=1"])
                        .env("YOLO_DP_TEST_RANK", rank.to_string())
                        .env("YOLO_DP_TEST_PORT", port.to_string())
                        .env("YOLO_DP_TEST_OUT", out.path())
                        .spawn()
                        .unwrap()
                })
                .collect();
            for (rank, child) in children.into_iter().enumerate() {
                let status = child.wait_with_output().unwrap().status;
                assert!(status.success(), "rank {rank}: {status}");
            }
            // Both ranks: the same parameters and buffers, bit for bit.
            let rank0 = std::fs::read(out.path().join("rank0.safetensors")).unwrap();
            let rank1 = std::fs::read(out.path().join("rank1.safetensors")).unwrap();
            let (zero, one) = (
                Detector::from_bytes(&rank0, Device::Cpu)
                    .unwrap()
                    .vs
                    .variables(),
                Detector::from_bytes(&rank1, Device::Cpu)
                    .unwrap()
                    .vs
                    .variables(),
            );
            assert_eq!(zero.len(), one.len());
            for (name, t) in &zero {
                assert!(t.equal(&one[name]), "{name} differs between the ranks");
            }

            // One process, one step on the union of the shards: the sum of
            // the two shards' gradients, as the ranks' mean of their
            // world-scaled ones. (Each shard's forward normalises by its own
            // batch statistics, as each rank's does.)
            let config = config(overlap);
            let (mut alone, _) = Trainer::new(&config, names(), 4, None).unwrap();
            let before: Vec<(String, Tensor)> = alone
                .model
                .vs
                .variables()
                .into_iter()
                .filter(|(_, t)| t.requires_grad())
                .map(|(n, t)| (n, t.detach().copy()))
                .collect();
            for rank in 0..2 {
                let (images, rows) = shard(rank);
                alone.forward_backward(&images, &rows, rank == 1).unwrap();
            }
            alone.optimizer_step().unwrap();
            let theirs = Detector::from_bytes(&rank0, Device::Cpu)
                .unwrap()
                .vs
                .variables();
            let mut moved = 0.0f64;
            for (name, start) in before {
                let mine = &alone.model.vs.variables()[&name];
                let diff = (mine - &theirs[&name]).abs().max().double_value(&[]);
                assert!(diff < 1e-5, "{name}: {diff}");
                moved += (mine - start).abs().sum(Kind::Double).double_value(&[]);
            }
            assert!(moved > 1e-3, "the step changed the weights ({moved})");
        }
    }
}
