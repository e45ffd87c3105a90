//! Who this process is in a data-parallel run: `train.distributed` and the
//! launchers' environment, resolved into one [`Launch`] (or none: training
//! alone). The launchers' contract, as `torch.distributed` reads it:
//!
//! - torchrun and Kubeflow's `PyTorchJob` (training operator v1):
//!   `MASTER_ADDR`, `MASTER_PORT`, `WORLD_SIZE`, `RANK`, `LOCAL_RANK`;
//! - Kubeflow Trainer v2 (`TrainJob`, torch runtime), which sets torchrun's
//!   `PET_NNODES`, `PET_NPROC_PER_NODE`, `PET_NODE_RANK`, `PET_MASTER_ADDR`,
//!   `PET_MASTER_PORT`: with one process per pod the rank is the node rank.
//!
//! A value in `train.distributed` wins over the environment; the variables
//! of one launcher are read together, never mixed with another's.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// PyTorch's default for Gloo's and the store's timeouts (30 minutes).
pub const DEFAULT_TIMEOUT_S: f64 = 1800.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum BackendName {
    #[default]
    Gloo,
    Nccl,
}

/// `train.distributed`: every field optional, the environment fills the rest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct DistributedConfig {
    pub world_size: Option<usize>,
    pub rank: Option<usize>,
    pub master_addr: Option<String>,
    pub master_port: Option<u16>,
    pub backend: BackendName,
    /// Bounds joining and every collective: a rank that died or never came
    /// makes the others fail after at most this long.
    pub timeout_s: Option<f64>,
    /// Average the gradients during the backward pass, bucket by bucket as
    /// backward produces them (DDP's Reducer; the default, as under DDP), or
    /// `false`: in one bucketed all-reduce after the backward pass.
    pub overlap: Option<bool>,
    /// DDP's `bucket_cap_mb`: the most gradient bytes one all-reduce carries
    /// (25 MiB by default).
    pub bucket_cap_mb: Option<f64>,
}

/// DDP's default `bucket_cap_mb`.
pub const DEFAULT_BUCKET_CAP_MB: f64 = 25.0;

impl DistributedConfig {
    /// Whether gradients are averaged during the backward pass.
    pub fn overlaps(&self) -> bool {
        self.overlap.unwrap_or(true)
    }

    /// The bucket size in bytes (checked by [`resolve`]).
    pub fn bucket_bytes(&self) -> usize {
        (self.bucket_cap_mb.unwrap_or(DEFAULT_BUCKET_CAP_MB) * (1 << 20) as f64) as usize
    }
}

/// This process's place in the run.
#[derive(Debug, Clone, PartialEq)]
pub struct Launch {
    pub world_size: usize,
    pub rank: usize,
    pub local_rank: usize,
    pub master_addr: String,
    pub master_port: u16,
    pub backend: BackendName,
    pub timeout: Duration,
    /// Which launcher's variables said so (for the log).
    pub source: &'static str,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LaunchError {
    #[error("{name}={value:?} is not {expected}")]
    Invalid {
        name: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("a distributed run of {world_size} ranks needs {missing} (train.distributed.{field} or the launcher's {variable})")]
    Missing {
        world_size: usize,
        missing: &'static str,
        field: &'static str,
        variable: &'static str,
    },
    #[error("rank {rank} is not below the world size {world_size}")]
    RankOutOfRange { rank: usize, world_size: usize },
    #[error(
        "PET_NPROC_PER_NODE={0}: roadsign trains one process per pod; set the TrainJob's \
         numProcPerNode to 1 and scale with numNodes"
    )]
    SeveralProcessesPerPod(usize),
    #[error("train.distributed.timeout_s must be a positive number of seconds (got {0})")]
    Timeout(f64),
    #[error("train.distributed.bucket_cap_mb must be a positive number of MiB (got {0})")]
    BucketCap(f64),
}

fn parse<T: std::str::FromStr>(
    name: &'static str,
    value: Option<String>,
    expected: &'static str,
) -> Result<Option<T>, LaunchError> {
    value
        .map(|v| {
            v.trim().parse::<T>().map_err(|_| LaunchError::Invalid {
                name,
                value: v,
                expected,
            })
        })
        .transpose()
}

/// What the environment says, launcher by launcher.
#[derive(Debug, Default)]
struct FromEnv {
    world_size: Option<usize>,
    rank: Option<usize>,
    local_rank: Option<usize>,
    master_addr: Option<String>,
    master_port: Option<u16>,
    source: &'static str,
}

fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<FromEnv, LaunchError> {
    if env("WORLD_SIZE").is_some() || env("RANK").is_some() {
        return Ok(FromEnv {
            world_size: parse("WORLD_SIZE", env("WORLD_SIZE"), "a positive integer")?,
            rank: parse("RANK", env("RANK"), "a rank (0, 1, ...)")?,
            local_rank: parse("LOCAL_RANK", env("LOCAL_RANK"), "a rank (0, 1, ...)")?,
            master_addr: env("MASTER_ADDR"),
            master_port: parse("MASTER_PORT", env("MASTER_PORT"), "a TCP port")?,
            source: "torchrun/PyTorchJob environment",
        });
    }
    if env("PET_NNODES").is_some() {
        let per_node: usize = parse(
            "PET_NPROC_PER_NODE",
            env("PET_NPROC_PER_NODE"),
            "a positive integer",
        )?
        .unwrap_or(1);
        if per_node != 1 {
            return Err(LaunchError::SeveralProcessesPerPod(per_node));
        }
        // torchrun's PET_NNODES may be a range ("2:4"): elastic sizes are not
        // supported, a fixed count is.
        return Ok(FromEnv {
            world_size: parse("PET_NNODES", env("PET_NNODES"), "a fixed number of nodes")?,
            rank: parse("PET_NODE_RANK", env("PET_NODE_RANK"), "a rank (0, 1, ...)")?,
            local_rank: Some(0),
            master_addr: env("PET_MASTER_ADDR"),
            master_port: parse("PET_MASTER_PORT", env("PET_MASTER_PORT"), "a TCP port")?,
            source: "Kubeflow Trainer environment (PET_*)",
        });
    }
    Ok(FromEnv {
        source: "train.distributed",
        ..FromEnv::default()
    })
}

/// The launch this process is part of, or `None` to train alone (no
/// setting and no launcher, or a world of one).
pub fn resolve(
    config: Option<&DistributedConfig>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Launch>, LaunchError> {
    let default = DistributedConfig::default();
    let config = config.unwrap_or(&default);
    let found = from_env(env)?;
    let world_size = config.world_size.or(found.world_size).unwrap_or(1);
    if world_size == 0 {
        return Err(LaunchError::Invalid {
            name: "world_size",
            value: "0".into(),
            expected: "a positive integer",
        });
    }
    if world_size == 1 {
        return Ok(None);
    }
    let missing = |missing, field, variable| LaunchError::Missing {
        world_size,
        missing,
        field,
        variable,
    };
    let rank = config
        .rank
        .or(found.rank)
        .ok_or_else(|| missing("its rank", "rank", "RANK / PET_NODE_RANK"))?;
    if rank >= world_size {
        return Err(LaunchError::RankOutOfRange { rank, world_size });
    }
    let master_addr = config
        .master_addr
        .clone()
        .or(found.master_addr)
        .ok_or_else(|| {
            missing(
                "rank 0's address",
                "master_addr",
                "MASTER_ADDR / PET_MASTER_ADDR",
            )
        })?;
    let master_port = config.master_port.or(found.master_port).ok_or_else(|| {
        missing(
            "rank 0's port",
            "master_port",
            "MASTER_PORT / PET_MASTER_PORT",
        )
    })?;
    let timeout_s = config.timeout_s.unwrap_or(DEFAULT_TIMEOUT_S);
    if !(timeout_s.is_finite() && timeout_s > 0.0) {
        return Err(LaunchError::Timeout(timeout_s));
    }
    if let Some(cap) = config.bucket_cap_mb {
        if !(cap.is_finite() && cap > 0.0 && cap < 1e6) {
            return Err(LaunchError::BucketCap(cap));
        }
    }
    let from_config = config.world_size.is_some() && config.rank.is_some();
    Ok(Some(Launch {
        world_size,
        rank,
        local_rank: found.local_rank.unwrap_or(0),
        master_addr,
        master_port,
        backend: config.backend,
        timeout: Duration::from_secs_f64(timeout_s),
        source: if from_config {
            "train.distributed"
        } else {
            found.source
        },
    }))
}

/// The per-rank share of the global batch, as Ultralytics divides it
/// (`batch // world_size`, at least one image).
pub fn rank_batch(global_batch: usize, world_size: usize) -> usize {
    (global_batch / world_size.max(1)).max(1)
}

/// The images rank `rank` trains on in an epoch whose order (a seeded
/// permutation shared by all ranks) is `order`: as PyTorch's
/// DistributedSampler, the order padded from its start to a multiple of the
/// world size, then every `world_size`-th entry from `rank`.
pub fn shard(order: &[usize], rank: usize, world_size: usize) -> Vec<usize> {
    if order.is_empty() {
        return Vec::new();
    }
    let total = order.len().div_ceil(world_size) * world_size;
    (rank..total)
        .step_by(world_size)
        .map(|i| order[i % order.len()])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn nothing_set_trains_alone() {
        assert_eq!(resolve(None, &env_of(&[])).unwrap(), None);
        let one = env_of(&[("WORLD_SIZE", "1"), ("RANK", "0")]);
        assert_eq!(resolve(None, &one).unwrap(), None);
    }

    #[test]
    fn torchrun_variables_make_a_launch() {
        let env = env_of(&[
            ("WORLD_SIZE", "4"),
            ("RANK", "3"),
            ("LOCAL_RANK", "1"),
            ("MASTER_ADDR", "trainer-master-0"),
            ("MASTER_PORT", "23456"),
        ]);
        let launch = resolve(None, &env).unwrap().unwrap();
        assert_eq!(
            (launch.world_size, launch.rank, launch.local_rank),
            (4, 3, 1)
        );
        assert_eq!(
            (launch.master_addr.as_str(), launch.master_port),
            ("trainer-master-0", 23456)
        );
        assert_eq!(launch.timeout, Duration::from_secs(1800));
        assert_eq!(launch.backend, BackendName::Gloo);
    }

    #[test]
    fn kubeflow_trainer_v2_node_rank_is_the_rank() {
        let env = env_of(&[
            ("PET_NNODES", "2"),
            ("PET_NPROC_PER_NODE", "1"),
            ("PET_NODE_RANK", "1"),
            ("PET_MASTER_ADDR", "job-node-0-0.job"),
            ("PET_MASTER_PORT", "29400"),
        ]);
        let launch = resolve(None, &env).unwrap().unwrap();
        assert_eq!(
            (launch.world_size, launch.rank, launch.master_port),
            (2, 1, 29400)
        );
        assert!(launch.source.contains("PET_"));
    }

    #[test]
    fn several_processes_per_pod_are_refused_clearly() {
        let env = env_of(&[("PET_NNODES", "2"), ("PET_NPROC_PER_NODE", "4")]);
        let err = resolve(None, &env).unwrap_err();
        assert_eq!(err, LaunchError::SeveralProcessesPerPod(4));
        assert!(err.to_string().contains("numProcPerNode to 1"));
        let elastic = env_of(&[("PET_NNODES", "2:4"), ("PET_NPROC_PER_NODE", "1")]);
        assert!(matches!(
            resolve(None, &elastic).unwrap_err(),
            LaunchError::Invalid {
                name: "PET_NNODES",
                ..
            }
        ));
    }

    #[test]
    fn parameters_win_over_the_environment_and_missing_pieces_are_named() {
        let env = env_of(&[
            ("WORLD_SIZE", "2"),
            ("RANK", "1"),
            ("MASTER_ADDR", "a"),
            ("MASTER_PORT", "1"),
        ]);
        let config = DistributedConfig {
            master_port: Some(4000),
            timeout_s: Some(5.0),
            ..DistributedConfig::default()
        };
        let launch = resolve(Some(&config), &env).unwrap().unwrap();
        assert_eq!((launch.rank, launch.master_port), (1, 4000));
        assert_eq!(launch.timeout, Duration::from_secs(5));

        let only_size = DistributedConfig {
            world_size: Some(2),
            rank: Some(0),
            ..DistributedConfig::default()
        };
        let err = resolve(Some(&only_size), &env_of(&[])).unwrap_err();
        assert!(err.to_string().contains("master_addr"), "{err}");
        let out = DistributedConfig {
            world_size: Some(2),
            rank: Some(2),
            ..DistributedConfig::default()
        };
        assert_eq!(
            resolve(Some(&out), &env_of(&[])).unwrap_err(),
            LaunchError::RankOutOfRange {
                rank: 2,
                world_size: 2
            }
        );
        let bad = env_of(&[("WORLD_SIZE", "two"), ("RANK", "0")]);
        assert!(resolve(None, &bad)
            .unwrap_err()
            .to_string()
            .contains("WORLD_SIZE=\"two\""));
        let zero_timeout = DistributedConfig {
            timeout_s: Some(0.0),
            ..config
        };
        assert_eq!(
            resolve(Some(&zero_timeout), &env).unwrap_err(),
            LaunchError::Timeout(0.0)
        );
        let no_buckets = DistributedConfig {
            bucket_cap_mb: Some(-1.0),
            ..DistributedConfig::default()
        };
        assert_eq!(
            resolve(Some(&no_buckets), &env).unwrap_err(),
            LaunchError::BucketCap(-1.0)
        );
    }

    #[test]
    fn gradients_are_averaged_during_backward_in_ddps_buckets_by_default() {
        let default = DistributedConfig::default();
        assert!(default.overlaps());
        assert_eq!(default.bucket_bytes(), 25 << 20);
        let after = DistributedConfig {
            overlap: Some(false),
            bucket_cap_mb: Some(0.5),
            ..default
        };
        assert!(!after.overlaps());
        assert_eq!(after.bucket_bytes(), 1 << 19);
    }

    #[test]
    fn shards_cover_the_epoch_once_padded_like_distributed_sampler() {
        let order = vec![4, 0, 3, 1, 2];
        assert_eq!(shard(&order, 0, 2), vec![4, 3, 2]);
        assert_eq!(shard(&order, 1, 2), vec![0, 1, 4]);
        assert_eq!(shard(&order, 0, 1), order);
        assert!(shard(&[], 0, 2).is_empty());
        assert_eq!(rank_batch(16, 2), 8);
        assert_eq!(rank_batch(3, 4), 1);
    }
}
