//! YOLOv10 as Ultralytics defines it (`yolov10{n,s,m,b,l,x}.yaml`): YOLOv8's
//! stem and C2f, spatial-channel decoupled downsampling (SCDown), compact
//! inverted blocks (C2fCIB, with the large-kernel branch at n and s), partial
//! self-attention (PSA) after SPPF, and `v10Detect`: a one-to-many head
//! (trained with the task-aligned top-10, decoded then suppressed) and a
//! one-to-one head (top-1, read without NMS) on the same features. Names are
//! those of an Ultralytics `state_dict`.

use tch::nn::{self, ModuleT};
use tch::{Device, Tensor};

use super::blocks::{C2f, Conv, CspBlock, Psa, ScDown, Sppf, Stem};
use super::head::{decode, dfl_projection, ClassBranch, Decoded, DetectHead};
use super::{upsample2, Scale};

/// Where a scale's yaml puts compact inverted blocks instead of bottlenecks.
#[derive(Clone, Copy, Debug)]
struct Layout {
    /// Layer 6 (x only).
    b6: Option<CspBlock>,
    /// Layer 8 (all but n).
    b8: Option<CspBlock>,
    /// Layer 13 (b, l, x).
    n13: Option<CspBlock>,
    /// Layer 19 (m, b, l, x).
    n19: Option<CspBlock>,
    /// Layer 22 (every scale): with the large-kernel branch at n and s.
    n22: CspBlock,
}

impl Layout {
    fn of(scale: Scale) -> Layout {
        let cib = CspBlock::Cib {
            large_kernel: false,
        };
        let large = CspBlock::Cib { large_kernel: true };
        match scale {
            Scale::N => Layout {
                b6: None,
                b8: None,
                n13: None,
                n19: None,
                n22: large,
            },
            Scale::S => Layout {
                b6: None,
                b8: Some(large),
                n13: None,
                n19: None,
                n22: large,
            },
            Scale::M => Layout {
                b6: None,
                b8: Some(cib),
                n13: None,
                n19: Some(cib),
                n22: cib,
            },
            Scale::B | Scale::L => Layout {
                b6: None,
                b8: Some(cib),
                n13: Some(cib),
                n19: Some(cib),
                n22: cib,
            },
            Scale::X => Layout {
                b6: Some(cib),
                b8: Some(cib),
                n13: Some(cib),
                n19: Some(cib),
                n22: cib,
            },
        }
    }
}

/// A C2f with the layout's block; the yaml's C2fCIB layers all take `shortcut: True`.
fn csp(p: nn::Path, c1: i64, c2: i64, n: i64, shortcut: bool, block: Option<CspBlock>) -> C2f {
    match block {
        Some(block) => C2f::with_block(p, c1, c2, n, true, block),
        None => C2f::new(p, c1, c2, n, shortcut),
    }
}

/// A YOLOv10 detector.
#[derive(Debug)]
pub struct YoloV10 {
    nc: i64,
    stem: Stem,
    b5: ScDown,
    b6: C2f,
    b7: ScDown,
    b8: C2f,
    b9: Sppf,
    b10: Psa,
    n13: C2f,
    n16: C2f,
    n17: Conv,
    n19: C2f,
    n20: ScDown,
    n22: C2f,
    one2many: DetectHead,
    one2one: DetectHead,
    dfl: Tensor,
}

/// The raw maps of both heads.
#[derive(Debug)]
pub struct DualMaps {
    pub one2many: Vec<Tensor>,
    pub one2one: Vec<Tensor>,
}

impl YoloV10 {
    /// Builds the model's variables under `root`, named `model.<layer>.…` as in
    /// Ultralytics, in its module order.
    pub fn new(root: &nn::Path, scale: Scale, nc: i64) -> YoloV10 {
        let p = root / "model";
        let ch = |c| scale.channels(c);
        let n = |r| scale.repeats(r);
        let (c256, c512, c1024) = (ch(256), ch(512), ch(1024));
        let layout = Layout::of(scale);
        let head = &p / 23;
        let levels = [c256, c512, c1024];
        let mut model = YoloV10 {
            nc,
            stem: Stem::new(&p, scale),
            b5: ScDown::new(&p / 5, c256, c512, 3, 2),
            b6: csp(&p / 6, c512, c512, n(6), true, layout.b6),
            b7: ScDown::new(&p / 7, c512, c1024, 3, 2),
            b8: csp(&p / 8, c1024, c1024, n(3), true, layout.b8),
            b9: Sppf::new(&p / 9, c1024, c1024),
            b10: Psa::new(&p / 10, c1024),
            n13: csp(&p / 13, c1024 + c512, c512, n(3), false, layout.n13),
            n16: C2f::new(&p / 16, c512 + c256, c256, n(3), false),
            n17: Conv::new(&p / 17, c256, c256, 3, 2),
            n19: csp(&p / 19, c256 + c512, c512, n(3), false, layout.n19),
            n20: ScDown::new(&p / 20, c512, c512, 3, 2),
            n22: csp(&p / 22, c512 + c1024, c1024, n(3), true, Some(layout.n22)),
            // Ultralytics 8.4's bias_init: box logits start at 2.0.
            one2many: DetectHead::new(&head, ("cv2", "cv3"), nc, levels, ClassBranch::Light, 2.0),
            dfl: dfl_projection(&head),
            one2one: DetectHead::new(
                &head,
                ("one2one_cv2", "one2one_cv3"),
                nc,
                levels,
                ClassBranch::Light,
                2.0,
            ),
        };
        // Ultralytics deep-copies the one-to-many head: both start the same.
        let YoloV10 {
            one2one, one2many, ..
        } = &mut model;
        one2one.copy_from(one2many);
        model
    }

    /// The three head inputs (outputs of layers 16, 19 and 22).
    pub fn features(&self, xs: &Tensor, train: bool) -> [Tensor; 3] {
        let p3 = self.stem.forward_t(xs, train);
        let p4 = self.b6.forward_t(&self.b5.forward_t(&p3, train), train);
        let x = self.b8.forward_t(&self.b7.forward_t(&p4, train), train);
        let p5 = self.b10.forward_t(&self.b9.forward_t(&x, train), train);
        let x13 = self
            .n13
            .forward_t(&Tensor::cat(&[upsample2(&p5), p4], 1), train);
        let x16 = self
            .n16
            .forward_t(&Tensor::cat(&[upsample2(&x13), p3], 1), train);
        let x19 = self.n19.forward_t(
            &Tensor::cat(&[self.n17.forward_t(&x16, train), x13], 1),
            train,
        );
        let x22 = self.n22.forward_t(
            &Tensor::cat(&[self.n20.forward_t(&x19, train), p5], 1),
            train,
        );
        [x16, x19, x22]
    }

    /// Both heads' raw maps, `(B, 64 + nc, H, W)` per level — what the loss
    /// consumes. In training the one-to-one head sees the features detached,
    /// as Ultralytics does: its loss trains that head alone.
    pub fn forward_t(&self, xs: &Tensor, train: bool) -> DualMaps {
        let features = self.features(xs, train);
        let one2many = self.one2many.forward_t(&features, train);
        let one2one = if train {
            let detached = features.each_ref().map(|f| f.detach());
            self.one2one.forward_t(&detached, train)
        } else {
            self.one2one.forward_t(&features, train)
        };
        DualMaps { one2many, one2one }
    }

    /// One head's maps in eval mode, without computing the other.
    pub fn head_maps(&self, xs: &Tensor, one2one: bool) -> Vec<Tensor> {
        let features = self.features(xs, false);
        if one2one {
            self.one2one.forward_t(&features, false)
        } else {
            self.one2many.forward_t(&features, false)
        }
    }

    /// Flattens a head's maps and decodes them; `xywh` false gives corners, as
    /// the top-k reads them.
    pub fn decode(&self, maps: &[Tensor], xywh: bool) -> Decoded {
        decode(maps, self.nc, &self.dfl, xywh)
    }

    /// The device the variables live on.
    pub fn device(&self) -> Device {
        self.dfl.device()
    }
}
