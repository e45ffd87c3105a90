//! YOLOv8 as Ultralytics defines it (`yolov8.yaml`): Conv-BN-SiLU, C2f, SPPF, a
//! PAN-FPN neck and the anchor-free decoupled Detect head with DFL. Variables are
//! created under `model.<layer>.…` so the var store's names are exactly those of
//! an Ultralytics `state_dict`, and its weights load as they are.

use tch::nn::{self, ModuleT};
use tch::{Device, Kind, Tensor};

use crate::anchors::{dist2bbox, make_anchors, STRIDES};

/// Bins of the distribution focal loss: each box side is a distribution over 0..16.
pub const REG_MAX: i64 = 16;

/// Ultralytics' BatchNorm settings (`initialize_weights`), not PyTorch's defaults.
const BN_EPS: f64 = 1e-3;
const BN_MOMENTUM: f64 = 0.03;

/// Optimiser parameter groups, in Ultralytics' order: biases (no decay, own
/// warm-up), weights of convolutions (decayed), weights of norm layers (no decay).
pub const GROUP_BIAS: usize = 0;
pub const GROUP_WEIGHT: usize = 1;
pub const GROUP_NORM: usize = 2;

pub use yolo_core::model_file::Scale;

/// PyTorch's default Conv2d initialisation (kaiming-uniform with a = √5), which
/// Ultralytics keeps: uniform in ±1/√fan_in.
fn default_init(fan_in: i64) -> nn::Init {
    let bound = 1.0 / (fan_in as f64).sqrt();
    nn::Init::Uniform {
        lo: -bound,
        up: bound,
    }
}

/// BatchNorm2d with Ultralytics' eps and momentum, its weight and bias in their
/// optimiser groups.
#[derive(Debug)]
struct BatchNorm {
    weight: Tensor,
    bias: Tensor,
    running_mean: Tensor,
    running_var: Tensor,
}

impl BatchNorm {
    fn new(p: nn::Path, c: i64) -> BatchNorm {
        BatchNorm {
            weight: p
                .set_group(GROUP_NORM)
                .var("weight", &[c], nn::Init::Const(1.0)),
            bias: p
                .set_group(GROUP_BIAS)
                .var("bias", &[c], nn::Init::Const(0.0)),
            running_mean: p.zeros_no_train("running_mean", &[c]),
            running_var: p.ones_no_train("running_var", &[c]),
        }
    }
}

impl ModuleT for BatchNorm {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        Tensor::batch_norm(
            xs,
            Some(&self.weight),
            Some(&self.bias),
            Some(&self.running_mean),
            Some(&self.running_var),
            train,
            BN_MOMENTUM,
            BN_EPS,
            true,
        )
    }
}

/// Conv2d (no bias, "same" padding) → BatchNorm → SiLU; names `conv`, `bn`.
#[derive(Debug)]
struct Conv {
    conv: nn::Conv2D,
    bn: BatchNorm,
    stride: i64,
    padding: i64,
}

impl Conv {
    fn new(p: nn::Path, c1: i64, c2: i64, k: i64, s: i64) -> Conv {
        let config = nn::ConvConfig {
            stride: s,
            padding: k / 2,
            bias: false,
            ws_init: default_init(c1 * k * k),
            ..Default::default()
        };
        Conv {
            conv: nn::conv2d((&p / "conv").set_group(GROUP_WEIGHT), c1, c2, k, config),
            bn: BatchNorm::new(&p / "bn", c2),
            stride: s,
            padding: k / 2,
        }
    }
}

/// The weight in the input's precision: with a bfloat16 input (mixed
/// precision) the float32 master weight is cast on the way, and its gradient
/// flows back to it in float32.
fn weight_like(weight: &Tensor, xs: &Tensor) -> Tensor {
    if weight.kind() == xs.kind() {
        weight.shallow_clone()
    } else {
        weight.to_kind(xs.kind())
    }
}

impl ModuleT for Conv {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let s = [self.stride, self.stride];
        let p = [self.padding, self.padding];
        let y = xs.conv2d(
            &weight_like(&self.conv.ws, xs),
            None::<Tensor>,
            s,
            p,
            [1, 1],
            1,
        );
        self.bn.forward_t(&y, train).silu()
    }
}

/// Two 3×3 Convs with an optional residual (only when shapes allow it).
#[derive(Debug)]
struct Bottleneck {
    cv1: Conv,
    cv2: Conv,
    residual: bool,
}

impl Bottleneck {
    fn new(p: nn::Path, c1: i64, c2: i64, shortcut: bool) -> Bottleneck {
        Bottleneck {
            cv1: Conv::new(&p / "cv1", c1, c2, 3, 1),
            cv2: Conv::new(&p / "cv2", c2, c2, 3, 1),
            residual: shortcut && c1 == c2,
        }
    }
}

impl ModuleT for Bottleneck {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let ys = self.cv2.forward_t(&self.cv1.forward_t(xs, train), train);
        if self.residual {
            ys + xs
        } else {
            ys
        }
    }
}

/// CSP bottleneck with two convolutions: split, n bottlenecks each on the last
/// output, concatenate every intermediate, fuse with a 1×1 Conv.
#[derive(Debug)]
struct C2f {
    cv1: Conv,
    cv2: Conv,
    m: Vec<Bottleneck>,
}

impl C2f {
    fn new(p: nn::Path, c1: i64, c2: i64, n: i64, shortcut: bool) -> C2f {
        let c = c2 / 2;
        let m = (0..n)
            .map(|j| Bottleneck::new(&p / "m" / j, c, c, shortcut))
            .collect();
        C2f {
            cv1: Conv::new(&p / "cv1", c1, 2 * c, 1, 1),
            cv2: Conv::new(&p / "cv2", (2 + n) * c, c2, 1, 1),
            m,
        }
    }
}

impl ModuleT for C2f {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let mut ys = self.cv1.forward_t(xs, train).chunk(2, 1);
        for block in &self.m {
            let next = block.forward_t(&ys[ys.len() - 1], train);
            ys.push(next);
        }
        self.cv2.forward_t(&Tensor::cat(&ys, 1), train)
    }
}

/// Spatial pyramid pooling, fast: three chained 5×5 max-pools.
#[derive(Debug)]
struct Sppf {
    cv1: Conv,
    cv2: Conv,
}

impl Sppf {
    fn new(p: nn::Path, c1: i64, c2: i64) -> Sppf {
        let c = c1 / 2;
        Sppf {
            cv1: Conv::new(&p / "cv1", c1, c, 1, 1),
            cv2: Conv::new(&p / "cv2", 4 * c, c2, 1, 1),
        }
    }
}

impl ModuleT for Sppf {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let x = self.cv1.forward_t(xs, train);
        let pool = |t: &Tensor| t.max_pool2d([5, 5], [1, 1], [2, 2], [1, 1], false);
        let y1 = pool(&x);
        let y2 = pool(&y1);
        let y3 = pool(&y2);
        self.cv2.forward_t(&Tensor::cat(&[x, y1, y2, y3], 1), train)
    }
}

/// One branch of the head at one level: two 3×3 Convs, then a plain 1×1 Conv2d
/// with bias.
#[derive(Debug)]
struct HeadBranch {
    first: Conv,
    second: Conv,
    weight: Tensor,
    bias: Tensor,
}

impl HeadBranch {
    fn new(p: nn::Path, c_in: i64, c_mid: i64, c_out: i64, bias: f64) -> HeadBranch {
        let out = &p / "2";
        HeadBranch {
            first: Conv::new(&p / "0", c_in, c_mid, 3, 1),
            second: Conv::new(&p / "1", c_mid, c_mid, 3, 1),
            weight: out.set_group(GROUP_WEIGHT).var(
                "weight",
                &[c_out, c_mid, 1, 1],
                default_init(c_mid),
            ),
            bias: out
                .set_group(GROUP_BIAS)
                .var("bias", &[c_out], nn::Init::Const(bias)),
        }
    }
}

impl ModuleT for HeadBranch {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let x = self
            .second
            .forward_t(&self.first.forward_t(xs, train), train);
        x.conv2d(
            &weight_like(&self.weight, &x),
            Some(&weight_like(&self.bias, &x)),
            [1, 1],
            [0, 0],
            [1, 1],
            1,
        )
    }
}

/// The decoupled head: per level a box branch (`cv2`, 4·16 DFL logits) and a
/// class branch (`cv3`, nc logits), plus the fixed DFL projection `dfl.conv`.
#[derive(Debug)]
struct Detect {
    cv2: Vec<HeadBranch>,
    cv3: Vec<HeadBranch>,
    dfl: Tensor,
}

impl Detect {
    fn new(p: nn::Path, nc: i64, ch: [i64; 3]) -> Detect {
        let c2 = 16.max(ch[0] / 4).max(4 * REG_MAX);
        let c3 = ch[0].max(nc.min(100));
        let cv2 = (0..3)
            .map(|l| HeadBranch::new(&p / "cv2" / l, ch[l as usize], c2, 4 * REG_MAX, 1.0))
            .collect();
        // Ultralytics' bias_init: a prior of about 5 objects per 640² image.
        let cv3 = (0..3)
            .map(|l| {
                let stride = STRIDES[l as usize] as f64;
                let prior = (5.0 / nc as f64 / (640.0 / stride).powi(2)).ln();
                HeadBranch::new(&p / "cv3" / l, ch[l as usize], c3, nc, prior)
            })
            .collect();
        let dfl_path = &p / "dfl" / "conv";
        // Fixed bin indices: a variable so that it is saved and loaded, never trained.
        let bins = Tensor::arange(REG_MAX, (Kind::Float, p.device())).view([1, REG_MAX, 1, 1]);
        let dfl = dfl_path.add("weight", bins, false);
        Detect { cv2, cv3, dfl }
    }

    /// Raw maps per level, `(B, 64 + nc, H, W)`: box logits before class logits.
    fn forward_t(&self, features: [&Tensor; 3], train: bool) -> Vec<Tensor> {
        (0..3)
            .map(|l| {
                Tensor::cat(
                    &[
                        self.cv2[l].forward_t(features[l], train),
                        self.cv3[l].forward_t(features[l], train),
                    ],
                    1,
                )
            })
            .collect()
    }
}

/// What the head's maps decode to at inference.
#[derive(Debug)]
pub struct Decoded {
    /// `(B, 4 + nc, A)`: box centre x, y, width, height in input pixels, then
    /// sigmoid class scores.
    pub y: Tensor,
    /// `(B, 64, A)` raw box logits, channel = side·16 + bin (sides l, t, r, b).
    pub box_logits: Tensor,
    /// `(B, nc, A)` raw class logits.
    pub cls_logits: Tensor,
}

/// A YOLOv8 detector.
#[derive(Debug)]
pub struct YoloV8 {
    scale: Scale,
    nc: i64,
    b0: Conv,
    b1: Conv,
    b2: C2f,
    b3: Conv,
    b4: C2f,
    b5: Conv,
    b6: C2f,
    b7: Conv,
    b8: C2f,
    b9: Sppf,
    n12: C2f,
    n15: C2f,
    n16: Conv,
    n18: C2f,
    n19: Conv,
    n21: C2f,
    detect: Detect,
}

impl YoloV8 {
    /// Builds the model's variables under `root` (normally `vs.root()`), named
    /// `model.<layer>.…` as in Ultralytics.
    pub fn new(root: &nn::Path, scale: Scale, nc: i64) -> YoloV8 {
        let p = root / "model";
        let ch = |c| scale.channels(c);
        let n = |r| scale.repeats(r);
        let (c64, c128, c256, c512, c1024) = (ch(64), ch(128), ch(256), ch(512), ch(1024));
        YoloV8 {
            scale,
            nc,
            b0: Conv::new(&p / 0, 3, c64, 3, 2),
            b1: Conv::new(&p / 1, c64, c128, 3, 2),
            b2: C2f::new(&p / 2, c128, c128, n(3), true),
            b3: Conv::new(&p / 3, c128, c256, 3, 2),
            b4: C2f::new(&p / 4, c256, c256, n(6), true),
            b5: Conv::new(&p / 5, c256, c512, 3, 2),
            b6: C2f::new(&p / 6, c512, c512, n(6), true),
            b7: Conv::new(&p / 7, c512, c1024, 3, 2),
            b8: C2f::new(&p / 8, c1024, c1024, n(3), true),
            b9: Sppf::new(&p / 9, c1024, c1024),
            n12: C2f::new(&p / 12, c1024 + c512, c512, n(3), false),
            n15: C2f::new(&p / 15, c512 + c256, c256, n(3), false),
            n16: Conv::new(&p / 16, c256, c256, 3, 2),
            n18: C2f::new(&p / 18, c256 + c512, c512, n(3), false),
            n19: Conv::new(&p / 19, c512, c512, 3, 2),
            n21: C2f::new(&p / 21, c512 + c1024, c1024, n(3), false),
            detect: Detect::new(&p / 22, nc, [c256, c512, c1024]),
        }
    }

    pub fn scale(&self) -> Scale {
        self.scale
    }

    pub fn num_classes(&self) -> i64 {
        self.nc
    }

    /// The three Detect inputs (outputs of layers 15, 18 and 21).
    pub fn features(&self, xs: &Tensor, train: bool) -> [Tensor; 3] {
        let x = self.b1.forward_t(&self.b0.forward_t(xs, train), train);
        let x = self.b3.forward_t(&self.b2.forward_t(&x, train), train);
        let p3 = self.b4.forward_t(&x, train);
        let p4 = self.b6.forward_t(&self.b5.forward_t(&p3, train), train);
        let p5 = self.b9.forward_t(
            &self.b8.forward_t(&self.b7.forward_t(&p4, train), train),
            train,
        );
        let up = |t: &Tensor| {
            let (_, _, h, w) = t.size4().expect("feature maps are 4-D");
            t.upsample_nearest2d([2 * h, 2 * w], 2.0, 2.0)
        };
        let x12 = self.n12.forward_t(&Tensor::cat(&[up(&p5), p4], 1), train);
        let x15 = self.n15.forward_t(&Tensor::cat(&[up(&x12), p3], 1), train);
        let x18 = self.n18.forward_t(
            &Tensor::cat(&[self.n16.forward_t(&x15, train), x12], 1),
            train,
        );
        let x21 = self.n21.forward_t(
            &Tensor::cat(&[self.n19.forward_t(&x18, train), p5], 1),
            train,
        );
        [x15, x18, x21]
    }

    /// The head's raw maps, one per level, `(B, 64 + nc, H, W)` — what the loss
    /// consumes.
    pub fn forward_t(&self, xs: &Tensor, train: bool) -> Vec<Tensor> {
        let [p3, p4, p5] = self.features(xs, train);
        self.detect.forward_t([&p3, &p4, &p5], train)
    }

    /// Flattens the maps over all levels and decodes them: DFL expectation of
    /// each side, boxes around the anchor points, scaled by the level's stride.
    pub fn decode(&self, maps: &[Tensor]) -> Decoded {
        let b = maps[0].size()[0];
        let sizes: Vec<(i64, i64)> = maps.iter().map(|m| (m.size()[2], m.size()[3])).collect();
        let flat: Vec<Tensor> = maps
            .iter()
            .map(|m| m.view([b, 4 * REG_MAX + self.nc, -1]))
            .collect();
        let all = Tensor::cat(&flat, 2);
        let parts = all.split_with_sizes([4 * REG_MAX, self.nc], 1);
        let (box_logits, cls_logits) = (parts[0].shallow_clone(), parts[1].shallow_clone());
        let (anchors, strides) = make_anchors(&sizes, &STRIDES, all.device());
        let distances = self.dfl_expectation(&box_logits);
        let boxes = dist2bbox(&distances, &anchors.transpose(0, 1).unsqueeze(0), true, 1)
            * strides.transpose(0, 1);
        let y = Tensor::cat(&[boxes, cls_logits.sigmoid()], 1);
        Decoded {
            y,
            box_logits,
            cls_logits,
        }
    }

    /// `(B, 64, A)` logits to `(B, 4, A)` expected distances in grid units.
    fn dfl_expectation(&self, box_logits: &Tensor) -> Tensor {
        let (b, _, a) = box_logits.size3().expect("box logits are (B, 64, A)");
        let probabilities = box_logits.view([b, 4, REG_MAX, a]).softmax(2, Kind::Float);
        (probabilities * self.detect.dfl.view([1, 1, REG_MAX, 1])).sum_dim_intlist(
            2,
            false,
            Kind::Float,
        )
    }

    /// Inference in eval mode, without gradients: `(B, 4 + nc, A)`.
    pub fn predict(&self, xs: &Tensor) -> Decoded {
        tch::no_grad(|| self.decode(&self.forward_t(xs, false)))
    }

    /// The device the variables live on.
    pub fn device(&self) -> Device {
        self.detect.dfl.device()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parameter_count(scale: Scale, nc: i64) -> (i64, usize) {
        let vs = nn::VarStore::new(Device::Cpu);
        let _model = YoloV8::new(&vs.root(), scale, nc);
        let variables = vs.variables();
        let params = variables
            .iter()
            .filter(|(name, _)| !name.contains("running_"))
            .map(|(_, t)| t.numel() as i64)
            .sum();
        (params, variables.len())
    }

    #[test]
    fn parameter_counts_match_the_yaml() {
        // yolov8.yaml's printed totals for nc = 80 (frozen DFL weights included),
        // and the 298 float tensors of an n/s state_dict.
        assert_eq!(parameter_count(Scale::N, 80), (3_157_200, 298));
        assert_eq!(parameter_count(Scale::N, 4).0, 3_011_628);
        assert_eq!(parameter_count(Scale::S, 4).0, 11_137_148);
    }

    #[test]
    fn head_shapes_per_scale() {
        for (scale, c3) in [(Scale::N, 64), (Scale::S, 128)] {
            let vs = nn::VarStore::new(Device::Cpu);
            let model = YoloV8::new(&vs.root(), scale, 4);
            let maps = tch::no_grad(|| {
                model.forward_t(
                    &Tensor::zeros([2, 3, 64, 96], (Kind::Float, Device::Cpu)),
                    false,
                )
            });
            let sizes: Vec<Vec<i64>> = maps.iter().map(|m| m.size()).collect();
            assert_eq!(
                sizes,
                [vec![2, 68, 8, 12], vec![2, 68, 4, 6], vec![2, 68, 2, 3]]
            );
            let decoded = model.decode(&maps);
            assert_eq!(decoded.y.size(), [2, 8, 96 + 24 + 6]);
            assert_eq!(vs.variables()["model.22.cv3.0.0.conv.weight"].size()[0], c3);
        }
        assert_eq!(Scale::M.channels(1024), 576);
        assert_eq!(Scale::M.repeats(6), 4);
        assert_eq!("yolov8s".parse::<Scale>().unwrap(), Scale::S);
        assert!("q".parse::<Scale>().is_err());
    }
}
