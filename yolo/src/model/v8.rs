//! YOLOv8 as Ultralytics defines it (`yolov8.yaml`): Conv-BN-SiLU, C2f, SPPF, a
//! PAN-FPN neck and the anchor-free decoupled Detect head with DFL. Variables are
//! created under `model.<layer>.…` so the var store's names are exactly those of
//! an Ultralytics `state_dict`, and its weights load as they are.

use tch::nn::{self, ModuleT};
use tch::{Device, Tensor};

use super::blocks::{C2f, Conv, Sppf, Stem};
use super::head::{decode, dfl_projection, ClassBranch, Decoded, DetectHead};
use super::{upsample2, Scale};

/// A YOLOv8 detector.
#[derive(Debug)]
pub struct YoloV8 {
    scale: Scale,
    nc: i64,
    stem: Stem,
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
    detect: DetectHead,
    dfl: Tensor,
}

impl YoloV8 {
    /// Builds the model's variables under `root` (normally `vs.root()`), named
    /// `model.<layer>.…` as in Ultralytics.
    pub fn new(root: &nn::Path, scale: Scale, nc: i64) -> YoloV8 {
        let p = root / "model";
        let ch = |c| scale.channels(c);
        let n = |r| scale.repeats(r);
        let (c256, c512, c1024) = (ch(256), ch(512), ch(1024));
        YoloV8 {
            scale,
            nc,
            stem: Stem::new(&p, scale),
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
            detect: DetectHead::new(
                &(&p / 22),
                ("cv2", "cv3"),
                nc,
                [c256, c512, c1024],
                ClassBranch::Dense,
                // Ultralytics 8.3's bias_init, which every YOLOv8 figure of
                // this project was trained with (8.4 starts box logits at 2.0).
                1.0,
            ),
            dfl: dfl_projection(&(&p / 22)),
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
        let p3 = self.stem.forward_t(xs, train);
        let p4 = self.b6.forward_t(&self.b5.forward_t(&p3, train), train);
        let p5 = self.b9.forward_t(
            &self.b8.forward_t(&self.b7.forward_t(&p4, train), train),
            train,
        );
        let up = upsample2;
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
        self.detect.forward_t(&self.features(xs, train), train)
    }

    /// Flattens the maps over all levels and decodes them (centre-size boxes).
    pub fn decode(&self, maps: &[Tensor]) -> Decoded {
        decode(maps, self.nc, &self.dfl, true)
    }

    /// Inference in eval mode, without gradients: `(B, 4 + nc, A)`.
    pub fn predict(&self, xs: &Tensor) -> Decoded {
        tch::no_grad(|| self.decode(&self.forward_t(xs, false)))
    }

    /// The device the variables live on.
    pub fn device(&self) -> Device {
        self.dfl.device()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Kind;

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
