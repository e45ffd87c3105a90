//! DDP's gradient Reducer (`c10d::Reducer`, the C++ engine behind
//! `torch.nn.parallel.DistributedDataParallel`): autograd hooks on every
//! parameter hand its gradient to a bucket as soon as backward produces it,
//! and a full bucket's all-reduce starts while backward carries on through
//! the earlier layers, so that communication overlaps computation.

use std::ffi::{c_char, c_int};
use std::ptr::NonNull;

use tch::Tensor;

use crate::{take_message, C10dError, ProcessGroup, RawGroup, RawTensor};

/// DDP's default size of the first bucket (the last layers' gradients,
/// ready first): small, so that communication starts early.
pub const DEFAULT_FIRST_BUCKET_BYTES: usize = 1 << 20;

#[repr(C)]
struct RawReducer {
    _private: [u8; 0],
}

extern "C" {
    fn rs_c10d_reducer_new(
        group: *mut RawGroup,
        params: *const *mut RawTensor,
        count: usize,
        bucket_bytes: i64,
        first_bucket_bytes: i64,
        err: *mut *mut c_char,
    ) -> *mut RawReducer;
    fn rs_c10d_reducer_free(reducer: *mut RawReducer);
    fn rs_c10d_reducer_backward(
        reducer: *mut RawReducer,
        loss: *mut RawTensor,
        synchronize: c_int,
        err: *mut *mut c_char,
    ) -> c_int;
}

/// The parameters of one model replica, their gradients averaged over the
/// group during backward.
pub struct GradientReducer {
    raw: NonNull<RawReducer>,
    rank: usize,
    world_size: usize,
}

impl GradientReducer {
    /// Hooks `parameters` (leaf tensors requiring grad, in the same order
    /// on every rank, each reached by every synchronised backward) as
    /// `DistributedDataParallel` does: after the first synchronised backward
    /// the buckets follow the order gradients became ready in, of at most
    /// `bucket_bytes` (DDP's `bucket_cap_mb`), the first of
    /// [`DEFAULT_FIRST_BUCKET_BYTES`].
    pub fn new(
        group: &ProcessGroup,
        parameters: &[Tensor],
        bucket_bytes: usize,
    ) -> Result<GradientReducer, C10dError> {
        let raw_params: Vec<*mut RawTensor> = parameters
            .iter()
            .map(|t| t.as_ptr() as *mut RawTensor)
            .collect();
        let mut err = std::ptr::null_mut();
        // SAFETY: live tensor handles for the call; the Reducer keeps its own
        // references to them and to the group's c10d ProcessGroup.
        let raw = unsafe {
            rs_c10d_reducer_new(
                group.raw.as_ptr(),
                raw_params.as_ptr(),
                raw_params.len(),
                bucket_bytes.min(i64::MAX as usize) as i64,
                DEFAULT_FIRST_BUCKET_BYTES.min(bucket_bytes) as i64,
                &mut err,
            )
        };
        NonNull::new(raw)
            .map(|raw| GradientReducer {
                raw,
                rank: group.rank(),
                world_size: group.world_size(),
            })
            .ok_or_else(|| group.collective_error("gradient reducer setup", take_message(err)))
    }

    /// Backward from `loss`. With `synchronize`, every parameter's `.grad`
    /// ends as the mean over the ranks of what it accumulated (DDP outside
    /// `no_sync()`); without, the gradients only accumulate on this rank (as
    /// under `no_sync()`, between optimiser steps). Every rank must make the
    /// same sequence of calls.
    pub fn backward(&mut self, loss: &Tensor, synchronize: bool) -> Result<(), C10dError> {
        let mut err = std::ptr::null_mut();
        // SAFETY: a live reducer and tensor; the shim catches every C++
        // exception, including a collective's failure inside backward.
        let status = unsafe {
            rs_c10d_reducer_backward(
                self.raw.as_ptr(),
                loss.as_ptr() as *mut RawTensor,
                synchronize as c_int,
                &mut err,
            )
        };
        if status == 0 {
            Ok(())
        } else {
            Err(C10dError::Collective {
                op: "backward with gradient all-reduce",
                rank: self.rank,
                world_size: self.world_size,
                message: take_message(err),
            })
        }
    }
}

impl Drop for GradientReducer {
    fn drop(&mut self) {
        // SAFETY: created by rs_c10d_reducer_new, freed once.
        unsafe { rs_c10d_reducer_free(self.raw.as_ptr()) }
    }
}

impl std::fmt::Debug for GradientReducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GradientReducer")
            .field("rank", &self.rank)
            .field("world_size", &self.world_size)
            .finish()
    }
}
