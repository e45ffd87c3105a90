//! Probe for mixed precision on CPU: forward+backward time of YOLOv8n at
//! batch 16, imgsz 320, channels-last, with float32 or bfloat16 activations
//! (float32 master weights, loss in float32). One precision per process so
//! that peak RSS (`/usr/bin/time -v`) tells their memory apart:
//! `cargo run --release -p yolo --example precision_probe -- bf16|f32`
use std::time::Instant;
use tch::{nn, Device, Kind, Tensor};
use yolo::loss::{DetectionLoss, LossGains, Targets};

fn nhwc(t: &Tensor) -> Tensor {
    t.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2])
}

fn main() {
    let bf16 = std::env::args().nth(1).as_deref() == Some("bf16");
    tch::set_num_threads(2);
    tch::manual_seed(0);
    let vs = nn::VarStore::new(Device::Cpu);
    let model = yolo::YoloV8::new(&vs.root(), yolo::Scale::N, 9);
    tch::no_grad(|| {
        for (_, mut v) in vs.variables() {
            if v.dim() == 4 {
                let w = nhwc(&v);
                v.set_data(&w);
            }
        }
    });
    let loss = DetectionLoss::new(9, LossGains::default());
    let mut opt = nn::OptimizerConfig::build(nn::AdamW::default(), &vs, 1e-3).unwrap();
    let mut x = nhwc(&Tensor::rand([16, 3, 320, 320], (Kind::Float, Device::Cpu)));
    if bf16 {
        x = x.to_kind(Kind::BFloat16);
    }
    let rows: Vec<f32> = (0..16)
        .flat_map(|i| [i as f32, 1.0, 0.5, 0.5, 0.2, 0.2])
        .collect();
    let targets = Targets {
        rows: Tensor::from_slice(&rows).view([-1, 6]),
    };
    let mut times = vec![];
    for i in 0..8 {
        let t = Instant::now();
        let maps: Vec<Tensor> = model
            .forward_t(&x, true)
            .iter()
            .map(|m| m.to_kind(Kind::Float))
            .collect();
        let (l, _) = loss.compute(&maps, &targets);
        opt.backward_step(&l);
        if i > 0 {
            times.push(t.elapsed().as_secs_f64());
        }
        if i == 7 {
            println!("loss {:.4}", l.double_value(&[]));
        }
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    println!(
        "bf16={bf16}: median {median:.3}s/batch = {:.1} img/s",
        16.0 / median
    );
}
