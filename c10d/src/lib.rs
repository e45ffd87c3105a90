//! PyTorch's own collectives for tch tensors: c10d's `TCPStore` rendezvous
//! and `ProcessGroupGloo` (`ProcessGroupNCCL` behind the `nccl` feature),
//! the engine `torch.distributed` runs, reached through a thin C++ shim
//! (`src/shim.cpp`) rather than re-implemented.
//!
//! Every call is bounded: joining waits at most the rendezvous timeout for
//! the other ranks, and a collective whose peer died or stopped answering
//! fails with an error within that timeout instead of hanging.

mod buckets;
mod reducer;

use std::ffi::{c_char, c_int, CStr, CString};
use std::ptr::NonNull;
use std::time::Duration;

use tch::Tensor;

pub use buckets::{all_reduce_mean, broadcast_all, DEFAULT_BUCKET_BYTES};
pub use reducer::{GradientReducer, DEFAULT_FIRST_BUCKET_BYTES};

#[repr(C)]
struct RawGroup {
    _private: [u8; 0],
}

#[repr(C)]
struct RawWork {
    _private: [u8; 0],
}

type RawTensor = torch_sys::C_tensor;

extern "C" {
    fn rs_c10d_free_string(s: *mut c_char);
    #[allow(clippy::too_many_arguments)]
    fn rs_c10d_connect(
        master_addr: *const c_char,
        master_port: u16,
        rank: c_int,
        world: c_int,
        timeout_ms: i64,
        backend: c_int,
        device_kind: c_int,
        device_name: *const c_char,
        err: *mut *mut c_char,
    ) -> *mut RawGroup;
    fn rs_c10d_group_free(group: *mut RawGroup);
    fn rs_c10d_start(
        group: *mut RawGroup,
        op: c_int,
        tensors: *const *mut RawTensor,
        count: usize,
        root: c_int,
        err: *mut *mut c_char,
    ) -> *mut RawWork;
    fn rs_c10d_wait(work: *mut RawWork, err: *mut *mut c_char) -> c_int;
    fn rs_c10d_barrier(group: *mut RawGroup, err: *mut *mut c_char) -> c_int;
}

/// The collectives the shim starts (`rs_c10d_start`'s `op`).
#[derive(Debug, Clone, Copy)]
enum Collective {
    AllReduceSum = 0,
    Broadcast = 1,
}

impl Collective {
    fn name(self) -> &'static str {
        match self {
            Collective::AllReduceSum => "all-reduce",
            Collective::Broadcast => "broadcast",
        }
    }
}

/// Which c10d backend carries the collectives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// CPU tensors, TCP between ranks.
    Gloo,
    /// CUDA tensors (a build with the `nccl` feature and a CUDA libtorch).
    Nccl,
}

/// The network device Gloo binds to, as `torch.distributed` chooses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GlooDevice {
    /// The address the host name resolves to, else loopback.
    Default,
    /// This address or host name.
    Host(String),
    /// This interface (`GLOO_SOCKET_IFNAME`).
    Interface(String),
}

/// Where and how the ranks meet: rank 0 serves the store at
/// `master_addr:master_port`, the others connect to it.
#[derive(Debug, Clone)]
pub struct Rendezvous {
    pub master_addr: String,
    pub master_port: u16,
    pub rank: usize,
    pub world_size: usize,
    /// Bounds joining and every collective.
    pub timeout: Duration,
    pub device: GlooDevice,
}

#[derive(Debug, thiserror::Error)]
pub enum C10dError {
    #[error("rank {rank} is not below the world size {world_size}")]
    RankOutOfRange { rank: usize, world_size: usize },
    #[error("`{0}` contains a NUL byte")]
    NulByte(String),
    #[error("rank {rank} of {world_size} could not join the group at {addr}:{port} (timeout {timeout:?}): {message}")]
    Join {
        rank: usize,
        world_size: usize,
        addr: String,
        port: u16,
        timeout: Duration,
        message: String,
    },
    #[error("{op} failed on rank {rank} of {world_size}: {message}")]
    Collective {
        op: &'static str,
        rank: usize,
        world_size: usize,
        message: String,
    },
}

/// Takes the shim's message (malloc'd) and frees it.
fn take_message(raw: *mut c_char) -> String {
    if raw.is_null() {
        return "no message".to_string();
    }
    // SAFETY: the shim hands a NUL-terminated malloc'd string, ours to free.
    let message = unsafe { CStr::from_ptr(raw) }
        .to_string_lossy()
        .into_owned();
    unsafe { rs_c10d_free_string(raw) };
    message
}

/// One member of a process group.
pub struct ProcessGroup {
    raw: NonNull<RawGroup>,
    rank: usize,
    world_size: usize,
}

// SAFETY: c10d's process groups are used from any thread in PyTorch; the
// handle is only freed in Drop.
unsafe impl Send for ProcessGroup {}
unsafe impl Sync for ProcessGroup {}

impl std::fmt::Debug for ProcessGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessGroup")
            .field("rank", &self.rank)
            .field("world_size", &self.world_size)
            .finish()
    }
}

/// A collective in flight; [`PendingWork::wait`] finishes it.
#[must_use = "a started collective must be waited for"]
pub struct PendingWork<'g> {
    raw: *mut RawWork,
    group: &'g ProcessGroup,
    op: &'static str,
}

impl PendingWork<'_> {
    pub fn wait(mut self) -> Result<(), C10dError> {
        let raw = std::mem::replace(&mut self.raw, std::ptr::null_mut());
        let mut err = std::ptr::null_mut();
        // SAFETY: `raw` came from rs_c10d_start and is waited for once.
        let status = unsafe { rs_c10d_wait(raw, &mut err) };
        if status == 0 {
            Ok(())
        } else {
            Err(self.group.collective_error(self.op, take_message(err)))
        }
    }
}

impl Drop for PendingWork<'_> {
    fn drop(&mut self) {
        if !self.raw.is_null() {
            // Waiting is the only way to release it safely: the collective
            // writes into tensors it holds.
            let mut err = std::ptr::null_mut();
            // SAFETY: as in wait.
            unsafe { rs_c10d_wait(self.raw, &mut err) };
            take_message(err);
        }
    }
}

impl ProcessGroup {
    /// Joins the group: blocks until every rank has arrived or the
    /// rendezvous timeout passed.
    pub fn connect(rendezvous: &Rendezvous, backend: Backend) -> Result<ProcessGroup, C10dError> {
        let Rendezvous {
            master_addr,
            master_port,
            rank,
            world_size,
            timeout,
            device,
        } = rendezvous;
        if rank >= world_size {
            return Err(C10dError::RankOutOfRange {
                rank: *rank,
                world_size: *world_size,
            });
        }
        let addr = CString::new(master_addr.as_str())
            .map_err(|_| C10dError::NulByte(master_addr.clone()))?;
        let (device_kind, device_name) = match device {
            GlooDevice::Default => (0, String::new()),
            GlooDevice::Host(name) => (1, name.clone()),
            GlooDevice::Interface(name) => (2, name.clone()),
        };
        let device_name =
            CString::new(device_name.as_str()).map_err(|_| C10dError::NulByte(device_name))?;
        let mut err = std::ptr::null_mut();
        // SAFETY: valid C strings for the call's duration; the shim catches
        // every C++ exception.
        let raw = unsafe {
            rs_c10d_connect(
                addr.as_ptr(),
                *master_port,
                *rank as c_int,
                *world_size as c_int,
                timeout.as_millis().min(i64::MAX as u128) as i64,
                matches!(backend, Backend::Nccl) as c_int,
                device_kind,
                device_name.as_ptr(),
                &mut err,
            )
        };
        NonNull::new(raw)
            .map(|raw| ProcessGroup {
                raw,
                rank: *rank,
                world_size: *world_size,
            })
            .ok_or_else(|| C10dError::Join {
                rank: *rank,
                world_size: *world_size,
                addr: master_addr.clone(),
                port: *master_port,
                timeout: *timeout,
                message: take_message(err),
            })
    }

    pub fn rank(&self) -> usize {
        self.rank
    }

    pub fn world_size(&self) -> usize {
        self.world_size
    }

    fn collective_error(&self, op: &'static str, message: String) -> C10dError {
        C10dError::Collective {
            op,
            rank: self.rank,
            world_size: self.world_size,
            message,
        }
    }

    fn start(
        &self,
        op: Collective,
        tensor: &Tensor,
        root: usize,
    ) -> Result<PendingWork<'_>, C10dError> {
        let tensors = [tensor.as_ptr() as *mut RawTensor];
        let mut err = std::ptr::null_mut();
        // SAFETY: the tensor handle is valid for the call; the shim keeps its
        // own reference to the storage until the work is waited for.
        let raw = unsafe {
            rs_c10d_start(
                self.raw.as_ptr(),
                op as c_int,
                tensors.as_ptr(),
                tensors.len(),
                root as c_int,
                &mut err,
            )
        };
        if raw.is_null() {
            return Err(self.collective_error(op.name(), take_message(err)));
        }
        Ok(PendingWork {
            raw,
            group: self,
            op: op.name(),
        })
    }

    /// Starts summing `tensor` over the ranks, in place.
    pub fn start_all_reduce_sum(&self, tensor: &Tensor) -> Result<PendingWork<'_>, C10dError> {
        self.start(Collective::AllReduceSum, tensor, 0)
    }

    /// Sums `tensor` over the ranks, in place.
    pub fn all_reduce_sum(&self, tensor: &Tensor) -> Result<(), C10dError> {
        self.start_all_reduce_sum(tensor)?.wait()
    }

    /// Starts overwriting `tensor` with rank `root`'s, in place.
    pub fn start_broadcast(
        &self,
        tensor: &Tensor,
        root: usize,
    ) -> Result<PendingWork<'_>, C10dError> {
        self.start(Collective::Broadcast, tensor, root)
    }

    /// Overwrites `tensor` with rank `root`'s, in place.
    pub fn broadcast(&self, tensor: &Tensor, root: usize) -> Result<(), C10dError> {
        self.start_broadcast(tensor, root)?.wait()
    }

    /// Returns once every rank has called it.
    pub fn barrier(&self) -> Result<(), C10dError> {
        let mut err = std::ptr::null_mut();
        // SAFETY: a live group.
        if unsafe { rs_c10d_barrier(self.raw.as_ptr(), &mut err) } == 0 {
            Ok(())
        } else {
            Err(self.collective_error("barrier", take_message(err)))
        }
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        // SAFETY: created by rs_c10d_connect, freed once.
        unsafe { rs_c10d_group_free(self.raw.as_ptr()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A rendezvous on loopback (port 0: any free one, for a world of one).
    fn loopback(rank: usize, world_size: usize) -> Rendezvous {
        Rendezvous {
            master_addr: "127.0.0.1".into(),
            master_port: 0,
            rank,
            world_size,
            timeout: Duration::from_secs(10),
            device: GlooDevice::Host("127.0.0.1".into()),
        }
    }

    #[test]
    fn a_rank_outside_the_world_is_refused_before_any_network() {
        let err = ProcessGroup::connect(&loopback(2, 2), Backend::Gloo).unwrap_err();
        assert!(
            matches!(
                err,
                C10dError::RankOutOfRange {
                    rank: 2,
                    world_size: 2
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn a_single_rank_group_reduces_to_itself() {
        let group = ProcessGroup::connect(&loopback(0, 1), Backend::Gloo)
            .expect("a world of one joins at once");
        let t = Tensor::from_slice(&[1.0f32, 2.0, 3.0]);
        group.all_reduce_sum(&t).unwrap();
        group.broadcast(&t, 0).unwrap();
        group.barrier().unwrap();
        assert_eq!(Vec::<f32>::try_from(&t).unwrap(), vec![1.0, 2.0, 3.0]);
    }

    #[cfg(not(feature = "nccl"))]
    #[test]
    fn nccl_is_refused_with_a_clear_error_where_not_built() {
        let err = ProcessGroup::connect(&loopback(0, 1), Backend::Nccl).unwrap_err();
        assert!(err.to_string().contains("no NCCL"), "{err}");
    }
}
