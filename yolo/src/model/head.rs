//! The detection heads: YOLOv8's decoupled `Detect` and YOLOv10's
//! `v10Detect` (a lighter class branch, and a one-to-one copy of both
//! branches), the fixed DFL projection, and decoding the raw maps.

use tch::nn::{self, ModuleT};
use tch::{Kind, Tensor};

use super::blocks::{default_init, weight_like, Conv};
use super::{GROUP_BIAS, GROUP_WEIGHT, REG_MAX};
use crate::anchors::{dist2bbox, make_anchors, STRIDES};

/// One branch of a head at one level: Convs in order, then a plain 1×1 Conv2d
/// with bias (named `2`).
#[derive(Debug)]
struct HeadBranch {
    convs: Vec<Conv>,
    weight: Tensor,
    bias: Tensor,
}

impl HeadBranch {
    fn new(p: &nn::Path, convs: Vec<Conv>, c_mid: i64, c_out: i64, bias: f64) -> HeadBranch {
        let out = p / "2";
        HeadBranch {
            convs,
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

    /// YOLOv8's branch (and every box branch): two 3×3 Convs.
    fn dense(p: nn::Path, c_in: i64, c_mid: i64, c_out: i64, bias: f64) -> HeadBranch {
        let convs = vec![
            Conv::new(&p / "0", c_in, c_mid, 3, 1),
            Conv::new(&p / "1", c_mid, c_mid, 3, 1),
        ];
        HeadBranch::new(&p, convs, c_mid, c_out, bias)
    }

    /// YOLOv10's light class branch: twice a 3×3 depthwise then a 1×1 Conv.
    fn light(p: nn::Path, c_in: i64, c_mid: i64, c_out: i64, bias: f64) -> HeadBranch {
        let convs = vec![
            Conv::depthwise(&p / "0" / "0", c_in, 3, 1, true),
            Conv::new(&p / "0" / "1", c_in, c_mid, 1, 1),
            Conv::depthwise(&p / "1" / "0", c_mid, 3, 1, true),
            Conv::new(&p / "1" / "1", c_mid, c_mid, 1, 1),
        ];
        HeadBranch::new(&p, convs, c_mid, c_out, bias)
    }
}

impl HeadBranch {
    fn copy_from(&mut self, other: &HeadBranch) {
        for (to, from) in self.convs.iter_mut().zip(&other.convs) {
            to.copy_from(from);
        }
        self.weight.copy_(&other.weight);
        self.bias.copy_(&other.bias);
    }
}

impl ModuleT for HeadBranch {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let x = self
            .convs
            .iter()
            .fold(xs.shallow_clone(), |x, conv| conv.forward_t(&x, train));
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

/// How a head's class branch is built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ClassBranch {
    Dense,
    Light,
}

/// A decoupled head: per level a box branch (`cv2`, 4·16 DFL logits) and a
/// class branch (`cv3`, nc logits).
#[derive(Debug)]
pub(crate) struct DetectHead {
    cv2: Vec<HeadBranch>,
    cv3: Vec<HeadBranch>,
}

impl DetectHead {
    /// `box_name`/`class_name`: `cv2`/`cv3`, or YOLOv10's `one2one_cv2`/`one2one_cv3`.
    /// `box_bias`: the box logits' initial bias (Ultralytics' `bias_init`).
    pub(crate) fn new(
        p: &nn::Path,
        (box_name, class_name): (&str, &str),
        nc: i64,
        ch: [i64; 3],
        class_branch: ClassBranch,
        box_bias: f64,
    ) -> DetectHead {
        let c2 = 16.max(ch[0] / 4).max(4 * REG_MAX);
        let c3 = ch[0].max(nc.min(100));
        let cv2 = (0..3)
            .map(|l| HeadBranch::dense(p / box_name / l, ch[l as usize], c2, 4 * REG_MAX, box_bias))
            .collect();
        // Ultralytics' bias_init: a prior of about 5 objects per 640² image.
        let cv3 = (0..3)
            .map(|l| {
                let stride = STRIDES[l as usize] as f64;
                let prior = (5.0 / nc as f64 / (640.0 / stride).powi(2)).ln();
                let path = p / class_name / l;
                match class_branch {
                    ClassBranch::Dense => HeadBranch::dense(path, ch[l as usize], c3, nc, prior),
                    ClassBranch::Light => HeadBranch::light(path, ch[l as usize], c3, nc, prior),
                }
            })
            .collect();
        DetectHead { cv2, cv3 }
    }

    /// Takes `other`'s values: YOLOv10's one-to-one head starts as a deep copy
    /// of the one-to-many head.
    pub(crate) fn copy_from(&mut self, other: &DetectHead) {
        tch::no_grad(|| {
            let branches = self.cv2.iter_mut().chain(self.cv3.iter_mut());
            for (to, from) in branches.zip(other.cv2.iter().chain(&other.cv3)) {
                to.copy_from(from);
            }
        });
    }

    /// Raw maps per level, `(B, 64 + nc, H, W)`: box logits before class logits.
    pub(crate) fn forward_t(&self, features: &[Tensor; 3], train: bool) -> Vec<Tensor> {
        (0..3)
            .map(|l| {
                Tensor::cat(
                    &[
                        self.cv2[l].forward_t(&features[l], train),
                        self.cv3[l].forward_t(&features[l], train),
                    ],
                    1,
                )
            })
            .collect()
    }
}

/// The fixed DFL projection `dfl.conv.weight` (bin indices 0..16): a variable
/// so that it is saved and loaded, never trained.
pub(crate) fn dfl_projection(p: &nn::Path) -> Tensor {
    let bins = Tensor::arange(REG_MAX, (Kind::Float, p.device())).view([1, REG_MAX, 1, 1]);
    (p / "dfl" / "conv").add("weight", bins, false)
}

/// What a head's maps decode to at inference.
#[derive(Debug)]
pub struct Decoded {
    /// `(B, 4 + nc, A)`: boxes in input pixels — centre x, y, width, height, or
    /// corners x1, y1, x2, y2 when decoded for the top-k — then sigmoid class
    /// scores.
    pub y: Tensor,
    /// `(B, 64, A)` raw box logits, channel = side·16 + bin (sides l, t, r, b).
    pub box_logits: Tensor,
    /// `(B, nc, A)` raw class logits.
    pub cls_logits: Tensor,
}

/// Flattens the maps over all levels and decodes them: DFL expectation of
/// each side, boxes around the anchor points, scaled by the level's stride.
pub(crate) fn decode(maps: &[Tensor], nc: i64, dfl: &Tensor, xywh: bool) -> Decoded {
    let b = maps[0].size()[0];
    let sizes: Vec<(i64, i64)> = maps.iter().map(|m| (m.size()[2], m.size()[3])).collect();
    let flat: Vec<Tensor> = maps
        .iter()
        .map(|m| m.view([b, 4 * REG_MAX + nc, -1]))
        .collect();
    let all = Tensor::cat(&flat, 2);
    let parts = all.split_with_sizes([4 * REG_MAX, nc], 1);
    let (box_logits, cls_logits) = (parts[0].shallow_clone(), parts[1].shallow_clone());
    let (anchors, strides) = make_anchors(&sizes, &STRIDES, all.device());
    let distances = dfl_expectation(&box_logits, dfl);
    let boxes = dist2bbox(&distances, &anchors.transpose(0, 1).unsqueeze(0), xywh, 1)
        * strides.transpose(0, 1);
    let y = Tensor::cat(&[boxes, cls_logits.sigmoid()], 1);
    Decoded {
        y,
        box_logits,
        cls_logits,
    }
}

/// `(B, 64, A)` logits to `(B, 4, A)` expected distances in grid units.
fn dfl_expectation(box_logits: &Tensor, dfl: &Tensor) -> Tensor {
    let (b, _, a) = box_logits.size3().expect("box logits are (B, 64, A)");
    let probabilities = box_logits.view([b, 4, REG_MAX, a]).softmax(2, Kind::Float);
    (probabilities * dfl.view([1, 1, REG_MAX, 1])).sum_dim_intlist(2, false, Kind::Float)
}

/// The NMS-free output (Ultralytics' end-to-end `postprocess`): from `y`
/// decoded with corners, the `k` anchors of highest best-class score, then
/// the `k` best (anchor, class) pairs among them, best first: `(B, k, 6)`
/// rows of x1, y1, x2, y2, score, class.
pub fn top_k(y: &Tensor, k: i64) -> Tensor {
    let (b, rows, a) = y.size3().expect("predictions are (B, 4 + nc, A)");
    let nc = rows - 4;
    let k = k.min(a);
    let y = y.permute([0, 2, 1]);
    let parts = y.split_with_sizes([4, nc], -1);
    let (boxes, scores) = (&parts[0], &parts[1]);
    let anchors = scores
        .amax(-1, false)
        .topk(k, -1, true, true)
        .1
        .unsqueeze(-1);
    let candidate_scores = scores.gather(1, &anchors.repeat([1, 1, nc]), false);
    let (best, flat_index) = candidate_scores.flatten(1, -1).topk(k, -1, true, true);
    let picked = anchors.gather(
        1,
        &flat_index.divide_scalar_mode(nc, "floor").unsqueeze(-1),
        false,
    );
    let picked_boxes = boxes.gather(1, &picked.repeat([1, 1, 4]), false);
    let classes = flat_index.remainder(nc).to_kind(Kind::Float).unsqueeze(-1);
    debug_assert_eq!(picked_boxes.size(), [b, k, 4]);
    Tensor::cat(&[picked_boxes, best.unsqueeze(-1), classes], -1)
}
