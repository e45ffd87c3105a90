//! Two ranks as two processes on loopback: this test binary runs itself
//! once per rank (the rank's part selected by `C10D_TEST_ROLE`), as
//! torchrun would start two workers.

use std::net::TcpListener;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use c10d::{
    all_reduce_mean, broadcast_all, Backend, GlooDevice, GradientReducer, ProcessGroup, Rendezvous,
};
use tch::{Kind, Tensor};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn rendezvous(rank: usize, port: u16, timeout: Duration) -> Rendezvous {
    Rendezvous {
        master_addr: "127.0.0.1".into(),
        master_port: port,
        rank,
        world_size: 2,
        timeout,
        device: GlooDevice::Host("127.0.0.1".into()),
    }
}

/// Runs `test` of this binary as rank 0 and rank 1 with `role`; their outputs.
fn two_processes(test: &str, role: &str) -> Vec<Output> {
    let port = free_port().to_string();
    let children: Vec<_> = (0..2)
        .map(|rank| {
            Command::new(std::env::current_exe().unwrap())
                .args(["--exact", test, "--nocapture", "--test-threads=1"])
                .env("C10D_TEST_ROLE", role)
                .env("C10D_TEST_RANK", rank.to_string())
                .env("C10D_TEST_PORT", &port)
                .spawn()
                .expect("the test binary starts again")
        })
        .collect();
    children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect()
}

/// Runs `test` as two ranks with `role`; both must succeed.
fn both_ranks_succeed(test: &str, role: &str) {
    for (rank, out) in two_processes(test, role).iter().enumerate() {
        assert!(out.status.success(), "rank {rank} failed: {out:?}");
    }
}

/// This process's part when it is one of the ranks: (role, rank, port).
fn my_part() -> Option<(String, usize, u16)> {
    let role = std::env::var("C10D_TEST_ROLE").ok()?;
    let rank = std::env::var("C10D_TEST_RANK").ok()?.parse().ok()?;
    let port = std::env::var("C10D_TEST_PORT").ok()?.parse().ok()?;
    Some((role, rank, port))
}

#[test]
fn two_ranks_average_and_broadcast_in_buckets() {
    if let Some((_, rank, port)) = my_part() {
        let group = ProcessGroup::connect(
            &rendezvous(rank, port, Duration::from_secs(60)),
            Backend::Gloo,
        )
        .expect("both ranks join");
        assert_eq!((group.rank(), group.world_size()), (rank, 2));
        let r = rank as f32;
        // Three tensors of different shapes, buckets of 64 bytes: several
        // collectives in flight at once.
        let tensors = [
            Tensor::from_slice(&[r, 10.0 * r, 1.0]),
            Tensor::from_slice(&(0..20).map(|i| i as f32 + r).collect::<Vec<_>>()).reshape([4, 5]),
            Tensor::from_slice(&[100.0 + r]),
        ];
        all_reduce_mean(&group, &tensors, 64).unwrap();
        assert_eq!(
            Vec::<f32>::try_from(&tensors[0]).unwrap(),
            vec![0.5, 5.0, 1.0]
        );
        assert_eq!(
            Vec::<f32>::try_from(&tensors[1].reshape([-1])).unwrap(),
            (0..20).map(|i| i as f32 + 0.5).collect::<Vec<_>>()
        );
        assert_eq!(Vec::<f32>::try_from(&tensors[2]).unwrap(), vec![100.5]);
        let mine = [
            Tensor::from_slice(&[r + 7.0, r]),
            Tensor::from_slice(&[rank as i64 * 3]),
        ];
        broadcast_all(&group, &mine, 0).unwrap();
        assert_eq!(Vec::<f32>::try_from(&mine[0]).unwrap(), vec![7.0, 0.0]);
        assert_eq!(Vec::<i64>::try_from(&mine[1]).unwrap(), vec![0]);
        group.barrier().unwrap();
        return;
    }
    both_ranks_succeed("two_ranks_average_and_broadcast_in_buckets", "agree");
}

/// Rank `rank`'s loss on `w` (a weight used twice) and `b`: the rank's data
/// is its number, so the two ranks' gradients differ.
fn rank_loss(w: &Tensor, b: &Tensor, rank: usize, step: usize) -> Tensor {
    let x = Tensor::from_slice(&[1.0f32 + rank as f32, 2.0, -1.0 + step as f32]);
    ((w * &x).sum(Kind::Float) + b).pow_tensor_scalar(2) + (w * w).sum(Kind::Float)
}

#[test]
fn two_ranks_average_gradients_during_backward_with_ddps_reducer() {
    if let Some((_, rank, port)) = my_part() {
        let group = ProcessGroup::connect(
            &rendezvous(rank, port, Duration::from_secs(60)),
            Backend::Gloo,
        )
        .expect("both ranks join");
        let w = Tensor::from_slice(&[0.5f32, -0.25, 1.0]).set_requires_grad(true);
        let b = Tensor::from_slice(&[0.1f32]).set_requires_grad(true);
        // 8-byte buckets: `b` and `w` in buckets of their own, both in flight.
        let mut reducer = GradientReducer::new(&group, &[w.shallow_clone(), b.shallow_clone()], 8)
            .expect("the reducer hooks both parameters");
        // Two micro-batches: the first accumulates locally (no_sync), the
        // second synchronises the sum.
        reducer
            .backward(&rank_loss(&w, &b, rank, 0), false)
            .unwrap();
        let local = w.grad().copy();
        reducer.backward(&rank_loss(&w, &b, rank, 1), true).unwrap();
        // The expected mean, worked out without any collective: both ranks'
        // losses on detached copies.
        let (w2, b2) = (
            w.detach().copy().set_requires_grad(true),
            b.detach().copy().set_requires_grad(true),
        );
        let mut total = Tensor::zeros([1], (Kind::Float, tch::Device::Cpu));
        for r in 0..2 {
            for step in 0..2 {
                total += rank_loss(&w2, &b2, r, step);
            }
        }
        (total / 2.0).backward();
        let (want_w, want_b) = (w2.grad(), b2.grad());
        assert!(
            w.grad().allclose(&want_w, 1e-6, 1e-6, false),
            "rank {rank}: w.grad {:?} against the mean {:?} (local only {:?})",
            Vec::<f32>::try_from(&w.grad()).unwrap(),
            Vec::<f32>::try_from(&want_w).unwrap(),
            Vec::<f32>::try_from(&local).unwrap()
        );
        assert!(b.grad().allclose(&want_b, 1e-6, 1e-6, false));
        // And the accumulation before it was this rank's alone.
        assert!(!local.allclose(&want_w, 1e-3, 1e-3, false));
        // A second step, in the buckets rebuilt from the first one's order
        // (`b` then `w`, 8 bytes at most: two all-reduces in flight).
        let _ = w.grad().zero_();
        let _ = b.grad().zero_();
        reducer.backward(&rank_loss(&w, &b, rank, 2), true).unwrap();
        let _ = w2.grad().zero_();
        let _ = b2.grad().zero_();
        ((rank_loss(&w2, &b2, 0, 2) + rank_loss(&w2, &b2, 1, 2)) / 2.0).backward();
        assert!(w.grad().allclose(&w2.grad(), 1e-6, 1e-6, false));
        assert!(b.grad().allclose(&b2.grad(), 1e-6, 1e-6, false));
        group.barrier().unwrap();
        return;
    }
    both_ranks_succeed(
        "two_ranks_average_gradients_during_backward_with_ddps_reducer",
        "reduce",
    );
}

#[test]
fn a_rank_that_dies_fails_the_other_within_the_timeout() {
    if let Some((_, rank, port)) = my_part() {
        let group = ProcessGroup::connect(
            &rendezvous(rank, port, Duration::from_secs(20)),
            Backend::Gloo,
        )
        .expect("both ranks join");
        if rank == 1 {
            // Dies without a word, as a killed pod does.
            std::process::exit(0);
        }
        std::thread::sleep(Duration::from_millis(500));
        let started = Instant::now();
        let t = Tensor::ones([1000], (tch::Kind::Float, tch::Device::Cpu));
        let err = group.all_reduce_sum(&t).unwrap_err();
        let took = started.elapsed();
        eprintln!("rank 0 saw, after {took:?}: {err}");
        assert!(took < Duration::from_secs(20), "{took:?}");
        assert!(
            err.to_string().contains("all-reduce failed on rank 0 of 2"),
            "{err}"
        );
        std::process::exit(3);
    }
    let outputs = two_processes("a_rank_that_dies_fails_the_other_within_the_timeout", "die");
    assert_eq!(
        outputs[0].status.code(),
        Some(3),
        "rank 0 reported the dead peer: {:?}",
        outputs[0]
    );
}

#[test]
fn a_rank_that_never_comes_fails_the_join_after_the_timeout() {
    let started = Instant::now();
    let err = ProcessGroup::connect(
        &rendezvous(0, free_port(), Duration::from_secs(2)),
        Backend::Gloo,
    )
    .unwrap_err();
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(30),
        "{took:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("rank 0 of 2 could not join the group at 127.0.0.1"),
        "{text}"
    );
}
