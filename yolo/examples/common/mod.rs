//! What the training probes share: YOLOv8n at batch 16 with a fixed set of
//! targets, one AdamW step at a time, timed.
use std::time::Instant;
use tch::{nn, Device, Kind, Tensor};
use yolo::loss::{DetectionLoss, LossGains, Targets};

/// The same tensor stored channels-last (NHWC) under its NCHW shape.
pub fn nhwc(t: &Tensor) -> Tensor {
    t.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2])
}

pub struct Probe {
    _vs: nn::VarStore,
    model: yolo::YoloV8,
    loss: DetectionLoss,
    opt: nn::Optimizer,
    targets: Targets,
}

impl Probe {
    /// A fresh YOLOv8n (seed 0), its convolution weights channels-last or not.
    pub fn new(channels_last: bool) -> Probe {
        tch::set_num_threads(2);
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
        let opt = nn::OptimizerConfig::build(nn::AdamW::default(), &vs, 1e-3).unwrap();
        let rows: Vec<f32> = (0..16)
            .flat_map(|i| [i as f32, 1.0, 0.5, 0.5, 0.2, 0.2])
            .collect();
        Probe {
            _vs: vs,
            model,
            loss: DetectionLoss::new(9, LossGains::default()),
            opt,
            targets: Targets {
                rows: Tensor::from_slice(&rows).view([-1, 6]),
            },
        }
    }

    /// A batch of 16 random 320×320 images.
    pub fn batch(channels_last: bool) -> Tensor {
        let x = Tensor::rand([16, 3, 320, 320], (Kind::Float, Device::Cpu));
        if channels_last {
            nhwc(&x)
        } else {
            x
        }
    }

    /// `steps` forward+backward+AdamW steps on `x` (the loss in float32
    /// whatever `x`'s precision); the median seconds of all but the first,
    /// and the last loss.
    pub fn run(&mut self, x: &Tensor, steps: usize) -> (f64, f64) {
        let mut times = vec![];
        let mut last = 0.0;
        for i in 0..steps {
            let t = Instant::now();
            let maps: Vec<Tensor> = self
                .model
                .forward_t(x, true)
                .iter()
                .map(|m| m.to_kind(Kind::Float))
                .collect();
            let (l, _) = self.loss.compute(&maps, &self.targets);
            self.opt.backward_step(&l);
            if i > 0 {
                times.push(t.elapsed().as_secs_f64());
            }
            last = l.double_value(&[]);
        }
        times.sort_by(f64::total_cmp);
        (times[times.len() / 2], last)
    }
}
