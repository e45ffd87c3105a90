//! The training losses. YOLOv8's (Ultralytics `v8DetectionLoss`): BCE on soft
//! class targets from the task-aligned assigner, CIoU and distribution focal
//! loss on the foreground boxes, weighted box 7.5 / cls 0.5 / dfl 1.5.
//! YOLOv10's (`E2ELoss`): that loss on each head, the one-to-many head's with
//! topk 10 and the one-to-one head's with topk 7 then 1, weighted `o2m` and
//! `1 - o2m`, `o2m` going from 0.8 to 0.1 over the epochs.

use tch::{Kind, Reduction, Tensor};

use crate::anchors::{bbox2dist, dist2bbox, make_anchors, STRIDES};
use crate::assigner::TaskAlignedAssigner;
use crate::iou::bbox_iou;
use crate::model::{Architecture, DualMaps, HeadMaps, REG_MAX};

/// Loss gains.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LossGains {
    pub box_gain: f64,
    pub cls_gain: f64,
    pub dfl_gain: f64,
}

impl Default for LossGains {
    fn default() -> Self {
        LossGains {
            box_gain: 7.5,
            cls_gain: 0.5,
            dfl_gain: 1.5,
        }
    }
}

/// One batch's ground truth: `(N, 6)` rows of (image index in batch, class,
/// cx, cy, w, h) with the box normalised to the batch's image size.
#[derive(Debug)]
pub struct Targets {
    pub rows: Tensor,
}

/// The three loss components, each already weighted by its gain.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LossParts {
    pub box_loss: f64,
    pub cls_loss: f64,
    pub dfl_loss: f64,
}

#[derive(Debug)]
pub struct DetectionLoss {
    assigner: TaskAlignedAssigner,
    num_classes: i64,
    gains: LossGains,
}

impl DetectionLoss {
    pub fn new(num_classes: i64, gains: LossGains) -> Self {
        DetectionLoss::with_assigner(TaskAlignedAssigner::new(num_classes), gains)
    }

    pub fn with_assigner(assigner: TaskAlignedAssigner, gains: LossGains) -> Self {
        DetectionLoss {
            num_classes: assigner.num_classes,
            assigner,
            gains,
        }
    }

    /// The loss to back-propagate (sum of the weighted parts × batch size), and
    /// the detached parts for logging.
    pub fn compute(&self, maps: &[Tensor], targets: &Targets) -> (Tensor, LossParts) {
        let b = maps[0].size()[0];
        let no = 4 * REG_MAX + self.num_classes;
        let device = maps[0].device();
        let flat: Vec<Tensor> = maps.iter().map(|m| m.view([b, no, -1])).collect();
        let all = Tensor::cat(&flat, 2);
        let parts = all.split_with_sizes([4 * REG_MAX, self.num_classes], 1);
        let pred_distri = parts[0].permute([0, 2, 1]).contiguous();
        let pred_scores = parts[1].permute([0, 2, 1]).contiguous();
        let sizes: Vec<(i64, i64)> = maps.iter().map(|m| (m.size()[2], m.size()[3])).collect();
        let (anchors, strides) = make_anchors(&sizes, &STRIDES, device);
        let (img_h, img_w) = (sizes[0].0 * STRIDES[0], sizes[0].1 * STRIDES[0]);

        let (gt_labels, gt_bboxes) = batch_targets(&targets.rows, b, img_w as f64, img_h as f64);
        let mask_gt = gt_bboxes.sum_dim_intlist(2, true, Kind::Float).gt(0.0);

        let pred_bboxes = decode_boxes(&anchors, &pred_distri);
        let assignment = self.assigner.assign(
            &pred_scores.detach().sigmoid(),
            &(pred_bboxes.detach() * &strides),
            &(&anchors * &strides),
            &gt_labels,
            &gt_bboxes,
            &mask_gt,
        );
        let target_scores_sum = assignment.scores.sum(Kind::Float).clamp_min(1.0);
        let cls = pred_scores
            .binary_cross_entropy_with_logits::<Tensor>(
                &assignment.scores,
                None,
                None,
                Reduction::None,
            )
            .sum(Kind::Float)
            / &target_scores_sum;

        let zero = Tensor::zeros([], (Kind::Float, device));
        let (box_loss, dfl) = if assignment.foreground.any().int64_value(&[]) != 0 {
            let fg = &assignment.foreground;
            let target_bboxes = &assignment.bboxes / &strides;
            let weight = assignment
                .scores
                .sum_dim_intlist(-1, false, Kind::Float)
                .masked_select(fg)
                .unsqueeze(-1);
            let pred_fg = pred_bboxes.masked_select(&fg.unsqueeze(-1)).view([-1, 4]);
            let target_fg = target_bboxes.masked_select(&fg.unsqueeze(-1)).view([-1, 4]);
            let iou = bbox_iou(&pred_fg, &target_fg, true);
            let box_loss = ((-iou + 1.0) * &weight).sum(Kind::Float) / &target_scores_sum;

            let target_ltrb = bbox2dist(
                &anchors.unsqueeze(0),
                &target_bboxes,
                (REG_MAX - 1) as f64 - 0.01,
            );
            let ltrb_fg = target_ltrb.masked_select(&fg.unsqueeze(-1)).view([-1, 4]);
            let distri_fg = pred_distri
                .masked_select(&fg.unsqueeze(-1))
                .view([-1, REG_MAX]);
            let dfl = (distribution_focal_loss(&distri_fg, &ltrb_fg) * weight).sum(Kind::Float)
                / &target_scores_sum;
            (box_loss, dfl)
        } else {
            (zero.shallow_clone(), zero)
        };
        let box_loss = box_loss * self.gains.box_gain;
        let cls = cls * self.gains.cls_gain;
        let dfl = dfl * self.gains.dfl_gain;
        let parts = LossParts {
            box_loss: box_loss.double_value(&[]),
            cls_loss: cls.double_value(&[]),
            dfl_loss: dfl.double_value(&[]),
        };
        ((box_loss + cls + dfl) * b as f64, parts)
    }
}

/// The one-to-many weight at the start of training, and where it ends.
const O2M_START: f64 = 0.8;
const O2M_END: f64 = 0.1;

/// YOLOv10's loss (Ultralytics 8.4 `E2ELoss`): both heads, weighted.
#[derive(Debug)]
pub struct EndToEndLoss {
    one2many: DetectionLoss,
    one2one: DetectionLoss,
    epochs: usize,
    /// The one-to-many head's weight this epoch.
    o2m: f64,
}

/// Both heads' losses for one batch.
#[derive(Debug)]
pub struct EndToEndParts {
    /// What is back-propagated: `B · (o2m · L_one2many + (1 - o2m) · L_one2one)`.
    pub total: Tensor,
    /// Each head's weighted parts (box, cls, dfl), not times the batch size.
    pub one2many: LossParts,
    pub one2one: LossParts,
    pub o2m: f64,
}

impl EndToEndLoss {
    pub fn new(num_classes: i64, gains: LossGains, epochs: usize) -> Self {
        // Ultralytics 8.4's assigner widens small boxes (under the middle
        // stride) when looking for candidate anchors.
        let base = TaskAlignedAssigner {
            min_candidate_side: Some(STRIDES[1] as f64),
            ..TaskAlignedAssigner::new(num_classes)
        };
        EndToEndLoss {
            one2many: DetectionLoss::with_assigner(base, gains),
            one2one: DetectionLoss::with_assigner(
                TaskAlignedAssigner {
                    topk: 7,
                    topk2: Some(1),
                    ..base
                },
                gains,
            ),
            epochs,
            o2m: O2M_START,
        }
    }

    /// Sets the weights for `epoch` (from 0): `o2m` falls linearly from 0.8
    /// at the first epoch to 0.1 at the last (Ultralytics calls `update()`
    /// after each epoch, and as many times on resuming).
    pub fn set_epoch(&mut self, epoch: usize) {
        let span = (self.epochs.saturating_sub(1)).max(1) as f64;
        let remaining = (1.0 - epoch as f64 / span).max(0.0);
        self.o2m = remaining * (O2M_START - O2M_END) + O2M_END;
    }

    pub fn compute(&self, maps: &DualMaps, targets: &Targets) -> EndToEndParts {
        let (many, one2many) = self.one2many.compute(&maps.one2many, targets);
        let (one, one2one) = self.one2one.compute(&maps.one2one, targets);
        let o2o = (1.0 - self.o2m).max(0.0);
        EndToEndParts {
            total: many * self.o2m + one * o2o,
            one2many,
            one2one,
            o2m: self.o2m,
        }
    }
}

/// The loss of either architecture.
#[derive(Debug)]
pub enum Criterion {
    OneToMany(DetectionLoss),
    EndToEnd(EndToEndLoss),
}

impl Criterion {
    pub fn new(arch: Architecture, num_classes: i64, gains: LossGains, epochs: usize) -> Self {
        match arch {
            Architecture::V8 => Criterion::OneToMany(DetectionLoss::new(num_classes, gains)),
            Architecture::V10 => Criterion::EndToEnd(EndToEndLoss::new(num_classes, gains, epochs)),
        }
    }

    /// Before each epoch (from 0).
    pub fn set_epoch(&mut self, epoch: usize) {
        if let Criterion::EndToEnd(loss) = self {
            loss.set_epoch(epoch);
        }
    }

    /// The loss to back-propagate and the parts to log: for YOLOv10 the
    /// one-to-one head's, as Ultralytics logs.
    pub fn compute(&self, maps: &HeadMaps, targets: &Targets) -> (Tensor, LossParts) {
        match (self, maps) {
            (Criterion::EndToEnd(loss), HeadMaps::Dual(dual)) => {
                let parts = loss.compute(dual, targets);
                (parts.total, parts.one2one)
            }
            (Criterion::OneToMany(loss), maps) => loss.compute(maps.one2many(), targets),
            (Criterion::EndToEnd(_), HeadMaps::Single(maps)) => {
                unreachable!("a YOLOv10 loss given one head ({} maps)", maps.len())
            }
        }
    }
}

/// Padded per-image ground truth: `(B, M, 1)` labels and `(B, M, 4)` `xyxy` pixel
/// boxes, zero rows where an image has fewer than M boxes.
fn batch_targets(rows: &Tensor, b: i64, img_w: f64, img_h: f64) -> (Tensor, Tensor) {
    let device = rows.device();
    // Built on the host in one pass: the rows are few, tensor ops per row are not.
    let values: Vec<f32> = if rows.numel() == 0 {
        Vec::new()
    } else {
        Vec::try_from(
            rows.to_device(tch::Device::Cpu)
                .to_kind(Kind::Float)
                .flatten(0, -1),
        )
        .unwrap_or_default()
    };
    let mut per_image: Vec<Vec<&[f32]>> = vec![Vec::new(); b as usize];
    for row in values.chunks_exact(6) {
        if let Some(list) = per_image.get_mut(row[0] as usize) {
            list.push(row);
        }
    }
    let m = per_image.iter().map(Vec::len).max().unwrap_or(0);
    let mut labels = vec![0f32; b as usize * m];
    let mut boxes = vec![0f32; b as usize * m * 4];
    let (w, h) = (img_w as f32, img_h as f32);
    for (i, list) in per_image.iter().enumerate() {
        for (j, row) in list.iter().enumerate() {
            let k = i * m + j;
            labels[k] = row[1];
            let (cx, cy, bw, bh) = (row[2] * w, row[3] * h, row[4] * w, row[5] * h);
            boxes[4 * k..4 * k + 4].copy_from_slice(&[
                cx - bw / 2.0,
                cy - bh / 2.0,
                cx + bw / 2.0,
                cy + bh / 2.0,
            ]);
        }
    }
    let m = m as i64;
    (
        Tensor::from_slice(&labels)
            .view([b, m, 1])
            .to_device(device),
        Tensor::from_slice(&boxes).view([b, m, 4]).to_device(device),
    )
}

/// `(B, A, 64)` DFL logits to `(B, A, 4)` `xyxy` boxes in grid units.
fn decode_boxes(anchors: &Tensor, pred_distri: &Tensor) -> Tensor {
    let (b, a, _) = pred_distri.size3().expect("(B, A, 64)");
    let project = Tensor::arange(REG_MAX, (Kind::Float, pred_distri.device()));
    let distances = pred_distri
        .view([b, a, 4, REG_MAX])
        .softmax(3, Kind::Float)
        .matmul(&project);
    dist2bbox(&distances, anchors, false, -1)
}

/// Distribution focal loss: cross-entropy towards the two bins around each
/// continuous target, weighted by proximity; mean over the 4 sides, `(N, 1)`.
fn distribution_focal_loss(logits: &Tensor, target: &Tensor) -> Tensor {
    let left = target.to_kind(Kind::Int64);
    let right = &left + 1;
    let weight_left = right.to_kind(Kind::Float) - target;
    let weight_right = -&weight_left + 1.0;
    let ce = |bins: &Tensor| {
        logits
            .cross_entropy_loss::<Tensor>(&bins.view([-1]), None, Reduction::None, -100, 0.0)
            .view(bins.size().as_slice())
    };
    (ce(&left) * weight_left + ce(&right) * weight_right).mean_dim(
        Some([-1i64].as_slice()),
        true,
        Kind::Float,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{nn, Device};

    #[test]
    fn dfl_is_smallest_at_the_target_bins() {
        // A target of 2.25 sits between bins 2 (weight 0.75) and 3 (weight 0.25).
        let target = Tensor::from_slice(&[2.25f32, 2.25, 2.25, 2.25]).view([1, 4]);
        let mut sharp = vec![-20.0f32; 64];
        for side in 0..4 {
            sharp[side * 16 + 2] = 20.0;
        }
        let sharp = Tensor::from_slice(&sharp).view([4, 16]);
        let flat = Tensor::zeros([4, 16], (Kind::Float, Device::Cpu));
        let good = distribution_focal_loss(&sharp, &target).double_value(&[0, 0]);
        let uniform = distribution_focal_loss(&flat, &target).double_value(&[0, 0]);
        // Uniform logits: cross-entropy ln(16) for both bins.
        assert!((uniform - 16f64.ln()).abs() < 1e-5, "{uniform}");
        // All mass on bin 2: CE 0 towards bin 2, 40 towards bin 3 → 0.25 · 40.
        assert!((good - 10.0).abs() < 1e-3, "{good}");
    }

    #[test]
    fn targets_are_padded_per_image() {
        let rows = Tensor::from_slice(&[
            0.0f32, 2.0, 0.5, 0.5, 0.5, 0.5, 1.0, 1.0, 0.25, 0.25, 0.5, 0.5, 1.0, 0.0, 0.5, 0.5,
            0.2, 0.2,
        ])
        .view([3, 6]);
        let (labels, boxes) = batch_targets(&rows, 2, 100.0, 200.0);
        assert_eq!(labels.size(), [2, 2, 1]);
        let b: Vec<f32> = Vec::try_from(boxes.flatten(0, -1)).unwrap();
        assert_eq!(&b[..8], &[25.0, 50.0, 75.0, 150.0, 0.0, 0.0, 0.0, 0.0]);
        assert_eq!(&b[8..12], &[0.0, 0.0, 50.0, 100.0]);
        let l: Vec<f32> = Vec::try_from(labels.flatten(0, -1)).unwrap();
        assert_eq!(l, [2.0, 0.0, 1.0, 0.0]);
    }

    #[test]
    fn loss_is_finite_decreases_with_training_and_handles_empty_targets() {
        tch::manual_seed(0);
        let vs = nn::VarStore::new(Device::Cpu);
        let model = crate::YoloV8::new(&vs.root(), crate::Scale::N, 2);
        let loss = DetectionLoss::new(2, LossGains::default());
        let images = Tensor::rand([2, 3, 64, 64], (Kind::Float, Device::Cpu));
        let targets = Targets {
            rows: Tensor::from_slice(&[
                0.0f32, 1.0, 0.5, 0.5, 0.4, 0.3, 1.0, 0.0, 0.3, 0.6, 0.2, 0.2,
            ])
            .view([2, 6]),
        };
        let mut opt = nn::OptimizerConfig::build(nn::Adam::default(), &vs, 2e-3).unwrap();
        let (_, parts) = loss.compute(&model.forward_t(&images, true), &targets);
        assert!(
            parts.box_loss > 0.0 && parts.cls_loss > 0.0 && parts.dfl_loss > 0.0,
            "{parts:?}"
        );
        // The task-aligned loss rises at first (targets grow with the IoU of the
        // predictions), so judge training by what the model predicts: after some
        // steps, image 0's most confident class-1 anchor lies on its box.
        for _ in 0..60 {
            let (l, _) = loss.compute(&model.forward_t(&images, true), &targets);
            assert!(l.double_value(&[]).is_finite());
            opt.backward_step(&l);
        }
        let y = tch::no_grad(|| model.decode(&model.forward_t(&images, true)).y);
        let best = y.get(0).get(5).argmax(0, false).int64_value(&[]);
        let xywh: Vec<f32> = Vec::try_from(y.get(0).narrow(0, 0, 4).select(1, best)).unwrap();
        let predicted = Tensor::from_slice(&[
            xywh[0] - xywh[2] / 2.0,
            xywh[1] - xywh[3] / 2.0,
            xywh[0] + xywh[2] / 2.0,
            xywh[1] + xywh[3] / 2.0,
        ]);
        let truth = Tensor::from_slice(&[19.2f32, 22.4, 44.8, 41.6]);
        let iou = bbox_iou(&predicted, &truth, false).double_value(&[0]);
        assert!(
            iou > 0.5,
            "IoU of the best anchor after training: {iou} ({xywh:?})"
        );
        let empty = Targets {
            rows: Tensor::zeros([0, 6], (Kind::Float, Device::Cpu)),
        };
        let (l, parts) = loss.compute(&model.forward_t(&images, true), &empty);
        assert!(l.double_value(&[]).is_finite());
        assert_eq!((parts.box_loss, parts.dfl_loss), (0.0, 0.0));
    }
}
