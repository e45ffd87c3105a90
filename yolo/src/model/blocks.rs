//! The layers both architectures are built from, as Ultralytics defines them
//! (`ultralytics/nn/modules/{conv,block}.py`), with its parameter names.

use tch::nn::{self, ModuleT};
use tch::Tensor;

use super::{Scale, GROUP_BIAS, GROUP_NORM, GROUP_WEIGHT};

/// Ultralytics' BatchNorm settings (`initialize_weights`), not PyTorch's defaults.
const BN_EPS: f64 = 1e-3;
const BN_MOMENTUM: f64 = 0.03;

/// PyTorch's default Conv2d initialisation (kaiming-uniform with a = √5), which
/// Ultralytics keeps: uniform in ±1/√fan_in.
pub(crate) fn default_init(fan_in: i64) -> nn::Init {
    let bound = 1.0 / (fan_in as f64).sqrt();
    nn::Init::Uniform {
        lo: -bound,
        up: bound,
    }
}

/// The weight in the input's precision: with a bfloat16 input (mixed
/// precision) the float32 master weight is cast on the way, and its gradient
/// flows back to it in float32.
pub(crate) fn weight_like(weight: &Tensor, xs: &Tensor) -> Tensor {
    if weight.kind() == xs.kind() {
        weight.shallow_clone()
    } else {
        weight.to_kind(xs.kind())
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

impl BatchNorm {
    fn copy_from(&mut self, other: &BatchNorm) {
        for (to, from) in [
            (&mut self.weight, &other.weight),
            (&mut self.bias, &other.bias),
            (&mut self.running_mean, &other.running_mean),
            (&mut self.running_var, &other.running_var),
        ] {
            to.copy_(from);
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

/// Conv2d (no bias, "same" padding, optionally grouped) → BatchNorm → SiLU
/// (or nothing); names `conv`, `bn`.
#[derive(Debug)]
pub(crate) struct Conv {
    weight: Tensor,
    bn: BatchNorm,
    stride: i64,
    padding: i64,
    groups: i64,
    activation: bool,
}

impl Conv {
    /// A dense convolution with SiLU.
    pub(crate) fn new(p: nn::Path, c1: i64, c2: i64, k: i64, s: i64) -> Conv {
        Conv::grouped(p, c1, c2, k, s, 1, true)
    }

    /// A depthwise convolution (one group per channel), with or without SiLU.
    pub(crate) fn depthwise(p: nn::Path, c: i64, k: i64, s: i64, activation: bool) -> Conv {
        Conv::grouped(p, c, c, k, s, c, activation)
    }

    /// A dense convolution without activation.
    pub(crate) fn linear(p: nn::Path, c1: i64, c2: i64, k: i64) -> Conv {
        Conv::grouped(p, c1, c2, k, 1, 1, false)
    }

    fn grouped(
        p: nn::Path,
        c1: i64,
        c2: i64,
        k: i64,
        s: i64,
        groups: i64,
        activation: bool,
    ) -> Conv {
        let conv = &p / "conv";
        Conv {
            weight: conv.set_group(GROUP_WEIGHT).var(
                "weight",
                &[c2, c1 / groups, k, k],
                default_init(c1 / groups * k * k),
            ),
            bn: BatchNorm::new(&p / "bn", c2),
            stride: s,
            padding: k / 2,
            groups,
            activation,
        }
    }
}

impl Conv {
    /// Takes `other`'s values (same shapes), as a deep copy of the module would
    /// start with. Call without gradients.
    pub(crate) fn copy_from(&mut self, other: &Conv) {
        self.weight.copy_(&other.weight);
        self.bn.copy_from(&other.bn);
    }
}

impl ModuleT for Conv {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let y = xs.conv2d(
            &weight_like(&self.weight, xs),
            None::<Tensor>,
            [self.stride, self.stride],
            [self.padding, self.padding],
            [1, 1],
            self.groups,
        );
        let y = self.bn.forward_t(&y, train);
        if self.activation {
            y.silu()
        } else {
            y
        }
    }
}

/// Convolutions applied in order (an `nn.Sequential` of them).
fn chain(convs: &[Conv], xs: &Tensor, train: bool) -> Tensor {
    convs
        .iter()
        .fold(xs.shallow_clone(), |x, conv| conv.forward_t(&x, train))
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

/// YOLOv10's large-kernel depthwise branch: a 7×7 and a 3×3 depthwise
/// Conv-BN in parallel, summed, then SiLU (`RepVGGDW`, unfused).
#[derive(Debug)]
struct RepVggDw {
    conv: Conv,
    conv1: Conv,
}

impl RepVggDw {
    fn new(p: nn::Path, c: i64) -> RepVggDw {
        RepVggDw {
            conv: Conv::depthwise(&p / "conv", c, 7, 1, false),
            conv1: Conv::depthwise(&p / "conv1", c, 3, 1, false),
        }
    }
}

impl ModuleT for RepVggDw {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        (self.conv.forward_t(xs, train) + self.conv1.forward_t(xs, train)).silu()
    }
}

/// The middle of a compact inverted block: a 3×3 depthwise Conv, or the
/// large-kernel branch.
#[derive(Debug)]
enum CibMiddle {
    Depthwise(Conv),
    LargeKernel(RepVggDw),
}

/// YOLOv10's compact inverted block (`CIB`): depthwise 3×3, pointwise up to
/// 2·c2, depthwise (or large-kernel), pointwise down, depthwise 3×3; a
/// residual when shapes allow. Names `cv1.0` … `cv1.4`.
#[derive(Debug)]
struct Cib {
    first: [Conv; 2],
    middle: CibMiddle,
    last: [Conv; 2],
    residual: bool,
}

impl Cib {
    fn new(p: nn::Path, c1: i64, c2: i64, shortcut: bool, large_kernel: bool) -> Cib {
        let p = &p / "cv1";
        let hidden = 2 * c2;
        Cib {
            first: [
                Conv::depthwise(&p / 0, c1, 3, 1, true),
                Conv::new(&p / 1, c1, hidden, 1, 1),
            ],
            middle: if large_kernel {
                CibMiddle::LargeKernel(RepVggDw::new(&p / 2, hidden))
            } else {
                CibMiddle::Depthwise(Conv::depthwise(&p / 2, hidden, 3, 1, true))
            },
            last: [
                Conv::new(&p / 3, hidden, c2, 1, 1),
                Conv::depthwise(&p / 4, c2, 3, 1, true),
            ],
            residual: shortcut && c1 == c2,
        }
    }
}

impl ModuleT for Cib {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let x = chain(&self.first, xs, train);
        let x = match &self.middle {
            CibMiddle::Depthwise(conv) => conv.forward_t(&x, train),
            CibMiddle::LargeKernel(branch) => branch.forward_t(&x, train),
        };
        let ys = chain(&self.last, &x, train);
        if self.residual {
            ys + xs
        } else {
            ys
        }
    }
}

/// The block a C2f repeats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CspBlock {
    /// YOLOv8's (`C2f`).
    Bottleneck,
    /// YOLOv10's compact inverted block (`C2fCIB`), with the large-kernel
    /// branch or not.
    Cib { large_kernel: bool },
}

#[derive(Debug)]
enum Block {
    Bottleneck(Bottleneck),
    Cib(Box<Cib>),
}

impl ModuleT for Block {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        match self {
            Block::Bottleneck(b) => b.forward_t(xs, train),
            Block::Cib(b) => b.forward_t(xs, train),
        }
    }
}

/// CSP bottleneck with two convolutions: split, n blocks each on the last
/// output, concatenate every intermediate, fuse with a 1×1 Conv.
#[derive(Debug)]
pub(crate) struct C2f {
    cv1: Conv,
    cv2: Conv,
    m: Vec<Block>,
}

impl C2f {
    pub(crate) fn new(p: nn::Path, c1: i64, c2: i64, n: i64, shortcut: bool) -> C2f {
        C2f::with_block(p, c1, c2, n, shortcut, CspBlock::Bottleneck)
    }

    pub(crate) fn with_block(
        p: nn::Path,
        c1: i64,
        c2: i64,
        n: i64,
        shortcut: bool,
        block: CspBlock,
    ) -> C2f {
        let c = c2 / 2;
        let m = (0..n)
            .map(|j| match block {
                CspBlock::Bottleneck => {
                    Block::Bottleneck(Bottleneck::new(&p / "m" / j, c, c, shortcut))
                }
                CspBlock::Cib { large_kernel } => Block::Cib(Box::new(Cib::new(
                    &p / "m" / j,
                    c,
                    c,
                    shortcut,
                    large_kernel,
                ))),
            })
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

/// Layers 0 to 4, the same in YOLOv8 and YOLOv10: two strided Convs, a C2f,
/// a strided Conv, a C2f; gives P3.
#[derive(Debug)]
pub(crate) struct Stem {
    layers: (Conv, Conv, C2f, Conv, C2f),
}

impl Stem {
    pub(crate) fn new(p: &nn::Path, scale: Scale) -> Stem {
        let ch = |c| scale.channels(c);
        let n = |r| scale.repeats(r);
        let (c64, c128, c256) = (ch(64), ch(128), ch(256));
        Stem {
            layers: (
                Conv::new(p / 0, 3, c64, 3, 2),
                Conv::new(p / 1, c64, c128, 3, 2),
                C2f::new(p / 2, c128, c128, n(3), true),
                Conv::new(p / 3, c128, c256, 3, 2),
                C2f::new(p / 4, c256, c256, n(6), true),
            ),
        }
    }
}

impl ModuleT for Stem {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let (b0, b1, b2, b3, b4) = &self.layers;
        let x = b1.forward_t(&b0.forward_t(xs, train), train);
        let x = b3.forward_t(&b2.forward_t(&x, train), train);
        b4.forward_t(&x, train)
    }
}

/// Spatial pyramid pooling, fast: three chained 5×5 max-pools.
#[derive(Debug)]
pub(crate) struct Sppf {
    cv1: Conv,
    cv2: Conv,
}

impl Sppf {
    pub(crate) fn new(p: nn::Path, c1: i64, c2: i64) -> Sppf {
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

/// YOLOv10's spatial-channel decoupled downsampling (`SCDown`): a pointwise
/// Conv to the new width, then a strided depthwise Conv-BN.
#[derive(Debug)]
pub(crate) struct ScDown {
    cv1: Conv,
    cv2: Conv,
}

impl ScDown {
    pub(crate) fn new(p: nn::Path, c1: i64, c2: i64, k: i64, s: i64) -> ScDown {
        ScDown {
            cv1: Conv::new(&p / "cv1", c1, c2, 1, 1),
            cv2: Conv::depthwise(&p / "cv2", c2, k, s, false),
        }
    }
}

impl ModuleT for ScDown {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.cv2.forward_t(&self.cv1.forward_t(xs, train), train)
    }
}

/// Multi-head self-attention over the pixels of a feature map, with a
/// depthwise positional encoding of the values (`Attention`).
#[derive(Debug)]
struct Attention {
    heads: i64,
    key_dim: i64,
    head_dim: i64,
    qkv: Conv,
    proj: Conv,
    pe: Conv,
}

impl Attention {
    fn new(p: nn::Path, dim: i64, heads: i64) -> Attention {
        let head_dim = dim / heads;
        // attn_ratio 0.5
        let key_dim = head_dim / 2;
        Attention {
            heads,
            key_dim,
            head_dim,
            qkv: Conv::linear(&p / "qkv", dim, dim + 2 * key_dim * heads, 1),
            proj: Conv::linear(&p / "proj", dim, dim, 1),
            pe: Conv::depthwise(&p / "pe", dim, 3, 1, false),
        }
    }
}

impl ModuleT for Attention {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let (b, c, h, w) = xs.size4().expect("feature maps are 4-D");
        let qkv = self.qkv.forward_t(xs, train).view([
            b,
            self.heads,
            2 * self.key_dim + self.head_dim,
            h * w,
        ]);
        let parts = qkv.split_with_sizes([self.key_dim, self.key_dim, self.head_dim], 2);
        let (q, k, v) = (&parts[0], &parts[1], &parts[2]);
        let scale = (self.key_dim as f64).powf(-0.5);
        let attn = (q.transpose(-2, -1).matmul(k) * scale).softmax(-1, v.kind());
        let x = v.matmul(&attn.transpose(-2, -1)).view([b, c, h, w])
            + self.pe.forward_t(&v.reshape([b, c, h, w]), train);
        self.proj.forward_t(&x, train)
    }
}

/// YOLOv10's partial self-attention (`PSA`): half the channels pass, the other
/// half go through attention and a feed-forward pair, each with a residual.
#[derive(Debug)]
pub(crate) struct Psa {
    c: i64,
    cv1: Conv,
    cv2: Conv,
    attn: Attention,
    ffn: [Conv; 2],
}

impl Psa {
    pub(crate) fn new(p: nn::Path, c1: i64) -> Psa {
        let c = c1 / 2;
        Psa {
            c,
            cv1: Conv::new(&p / "cv1", c1, 2 * c, 1, 1),
            cv2: Conv::new(&p / "cv2", 2 * c, c1, 1, 1),
            attn: Attention::new(&p / "attn", c, c / 64),
            ffn: [
                Conv::new(&p / "ffn" / 0, c, 2 * c, 1, 1),
                Conv::linear(&p / "ffn" / 1, 2 * c, c, 1),
            ],
        }
    }
}

impl ModuleT for Psa {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let halves = self.cv1.forward_t(xs, train).split(self.c, 1);
        let b = &halves[1] + self.attn.forward_t(&halves[1], train);
        let b = &b + chain(&self.ffn, &b, train);
        self.cv2
            .forward_t(&Tensor::cat(&[&halves[0], &b], 1), train)
    }
}
