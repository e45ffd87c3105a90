//! Many tensors through few collectives: packed into flat buckets, as
//! PyTorch's DDP packs gradients (`bucket_cap_mb`, 25 MiB by default).

use std::ops::Range;

use tch::{Kind, Tensor};

use crate::{C10dError, ProcessGroup};

/// DDP's default bucket size.
pub const DEFAULT_BUCKET_BYTES: usize = 25 << 20;

/// Consecutive runs of tensors of one kind and device, each run at most
/// `bucket_bytes` (a single larger tensor gets a bucket of its own).
fn plan(tensors: &[Tensor], bucket_bytes: usize) -> Vec<Range<usize>> {
    let mut buckets = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (i, t) in tensors.iter().enumerate() {
        let size = t.numel() * t.kind().elt_size_in_bytes();
        let breaks_run = i > start
            && (bytes + size > bucket_bytes
                || t.kind() != tensors[start].kind()
                || t.device() != tensors[start].device());
        if breaks_run {
            buckets.push(start..i);
            start = i;
            bytes = 0;
        }
        bytes += size;
    }
    if start < tensors.len() {
        buckets.push(start..tensors.len());
    }
    buckets
}

fn pack(tensors: &[Tensor]) -> Tensor {
    let flat: Vec<Tensor> = tensors.iter().map(|t| t.reshape([-1])).collect();
    Tensor::cat(&flat, 0)
}

fn unpack(flat: &Tensor, tensors: &[Tensor]) {
    let mut offset = 0;
    for t in tensors {
        let n = t.numel() as i64;
        t.shallow_clone()
            .copy_(&flat.narrow(0, offset, n).view_as(t));
        offset += n;
    }
}

/// Starts `start`'s collective on every bucket (all before the first is
/// waited for, so that they pipeline), then runs `finish` on each flat bucket
/// and copies it back into its tensors. Alone in the group, nothing to do.
fn bucketed<'g>(
    group: &ProcessGroup,
    tensors: &[Tensor],
    bucket_bytes: usize,
    start: impl Fn(&Tensor) -> Result<crate::PendingWork<'g>, C10dError>,
    finish: impl Fn(&mut Tensor),
) -> Result<(), C10dError> {
    if group.world_size() == 1 || tensors.is_empty() {
        return Ok(());
    }
    let _no_grad = tch::no_grad_guard();
    let buckets = plan(tensors, bucket_bytes);
    let mut flats: Vec<Tensor> = buckets.iter().map(|r| pack(&tensors[r.clone()])).collect();
    let pending = flats.iter().map(&start).collect::<Result<Vec<_>, _>>()?;
    for work in pending {
        work.wait()?;
    }
    for (range, flat) in buckets.into_iter().zip(flats.iter_mut()) {
        finish(flat);
        unpack(flat, &tensors[range]);
    }
    Ok(())
}

/// Averages `tensors` over the ranks, in place (gradients: c10d has no
/// mean for Gloo, so a sum divided by the world size, as DDP does).
pub fn all_reduce_mean(
    group: &ProcessGroup,
    tensors: &[Tensor],
    bucket_bytes: usize,
) -> Result<(), C10dError> {
    let scale = 1.0 / group.world_size() as f64;
    bucketed(
        group,
        tensors,
        bucket_bytes,
        |flat| group.start_all_reduce_sum(flat),
        |flat| {
            if matches!(
                flat.kind(),
                Kind::Float | Kind::Double | Kind::Half | Kind::BFloat16
            ) {
                let _ = flat.g_mul_scalar_(scale);
            }
        },
    )
}

/// Overwrites `tensors` with rank `root`'s, in place (parameters at the
/// start, BatchNorm's running statistics before each step).
pub fn broadcast_all(
    group: &ProcessGroup,
    tensors: &[Tensor],
    root: usize,
) -> Result<(), C10dError> {
    bucketed(
        group,
        tensors,
        DEFAULT_BUCKET_BYTES,
        |flat| group.start_broadcast(flat, root),
        |_| {},
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_break_at_the_size_and_at_a_change_of_kind() {
        let f = |n: i64| Tensor::zeros([n], (Kind::Float, tch::Device::Cpu));
        let l = |n: i64| Tensor::zeros([n], (Kind::Int64, tch::Device::Cpu));
        // 40 bytes each: two fit in 100 bytes, the third starts a bucket.
        let tensors = [f(10), f(10), f(10), l(2), l(2), f(100)];
        assert_eq!(plan(&tensors, 100), vec![0..2, 2..3, 3..5, 5..6]);
        assert_eq!(plan(&[], 100), Vec::<Range<usize>>::new());
    }

    #[test]
    fn packing_and_unpacking_round_trip_shapes() {
        let a = Tensor::from_slice(&[1.0f32, 2.0, 3.0, 4.0]).reshape([2, 2]);
        let b = Tensor::from_slice(&[5.0f32]);
        let flat = pack(&[a.shallow_clone(), b.shallow_clone()]);
        let flat = flat * 2.0;
        unpack(&flat, &[a.shallow_clone(), b.shallow_clone()]);
        assert_eq!(
            Vec::<f32>::try_from(&a.reshape([-1])).unwrap(),
            vec![2.0, 4.0, 6.0, 8.0]
        );
        assert_eq!(Vec::<f32>::try_from(&b).unwrap(), vec![10.0]);
    }
}
