//! Probe behind the channels-last choice in `yolo::weights`: forward+backward
//! time of YOLOv8n at batch 16, imgsz 320, with NCHW vs NHWC (channels-last)
//! weights and input, twice each. `cargo run --release -p yolo --example layout_probe`
use std::time::Instant;
use tch::{nn, Device, Kind, Tensor};
use yolo::loss::{DetectionLoss, LossGains, Targets};

fn nhwc(t: &Tensor) -> Tensor {
    t.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2])
}

fn main() {
    tch::set_num_threads(2);
    for channels_last in [false, true, false, true] {
        tch::manual_seed(0);
        let vs = nn::VarStore::new(Device::Cpu);
        let model = yolo::YoloV8::new(&vs.root(), yolo::Scale::N, 9);
        if channels_last {
            tch::no_grad(|| {
                for (_, mut v) in vs.variables() {
                    if v.dim() == 4 {
                        let w = nhwc(&v);
                        v.set_data(&w);
                    }
                }
            });
        }
        let loss = DetectionLoss::new(9, LossGains::default());
        let mut opt = nn::OptimizerConfig::build(nn::AdamW::default(), &vs, 1e-3).unwrap();
        let mut x = Tensor::rand([16, 3, 320, 320], (Kind::Float, Device::Cpu));
        if channels_last {
            x = nhwc(&x);
        }
        let rows: Vec<f32> = (0..16)
            .flat_map(|i| [i as f32, 1.0, 0.5, 0.5, 0.2, 0.2])
            .collect();
        let targets = Targets {
            rows: Tensor::from_slice(&rows).view([-1, 6]),
        };
        let mut times = vec![];
        for i in 0..6 {
            let t = Instant::now();
            let (l, _) = loss.compute(&model.forward_t(&x, true), &targets);
            opt.backward_step(&l);
            if i > 0 {
                times.push(t.elapsed().as_secs_f64());
            }
        }
        times.sort_by(f64::total_cmp);
        println!(
            "channels_last={channels_last}: median {:.3}s/batch = {:.1} img/s",
            times[2],
            16.0 / times[2]
        );
    }
}
