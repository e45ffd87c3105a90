//! The task-aligned assigner (Ultralytics `TaskAlignedAssigner`, alpha 0.5,
//! beta 6.0): which anchors learn which ground-truth box, and with what soft
//! class target. YOLOv8 uses it with topk 10; YOLOv10's one-to-one branch
//! with topk 7 then 1 per box, and both YOLOv10 branches with Ultralytics
//! 8.4's widening of small boxes when picking candidates. (Ultralytics 8.4
//! widens for YOLOv8 too; roadsign's YOLOv8 keeps the assigner every one of
//! its figures was trained with, without it.)

use tch::{Kind, Tensor};

use crate::iou::bbox_iou;

const EPS: f64 = 1e-9;

/// Assigner settings.
#[derive(Clone, Copy, Debug)]
pub struct TaskAlignedAssigner {
    pub topk: i64,
    pub num_classes: i64,
    pub alpha: f64,
    pub beta: f64,
    /// After the top-k and the resolution of shared anchors, keep only each
    /// box's best `topk2` anchors by alignment (`tal_topk2`; YOLOv10's
    /// one-to-one branch: 1).
    pub topk2: Option<i64>,
    /// Boxes narrower or lower than this many pixels count as this wide (or
    /// high), about their centre, when anchors inside them are looked for
    /// (Ultralytics 8.4: the middle stride, 16); targets keep the true box.
    pub min_candidate_side: Option<f64>,
}

/// What each anchor is assigned.
#[derive(Debug)]
pub struct Assignment {
    /// `(B, A)` class of the assigned ground truth (0 for background).
    pub labels: Tensor,
    /// `(B, A, 4)` box of the assigned ground truth, `xyxy` pixels.
    pub bboxes: Tensor,
    /// `(B, A, nc)` soft one-hot targets; zero rows for background.
    pub scores: Tensor,
    /// `(B, A)` true where the anchor is foreground.
    pub foreground: Tensor,
    /// `(B, A)` index of the assigned ground truth.
    pub gt_index: Tensor,
}

impl TaskAlignedAssigner {
    pub fn new(num_classes: i64) -> Self {
        TaskAlignedAssigner {
            topk: 10,
            num_classes,
            alpha: 0.5,
            beta: 6.0,
            topk2: None,
            min_candidate_side: None,
        }
    }

    /// `pd_scores` `(B, A, nc)` probabilities and `pd_bboxes` `(B, A, 4)` `xyxy`
    /// pixels (both detached), `anchors` `(A, 2)` pixels, `gt_labels` `(B, M, 1)`,
    /// `gt_bboxes` `(B, M, 4)` pixels and `mask_gt` `(B, M, 1)` marking real rows
    /// of the padded ground truth.
    pub fn assign(
        &self,
        pd_scores: &Tensor,
        pd_bboxes: &Tensor,
        anchors: &Tensor,
        gt_labels: &Tensor,
        gt_bboxes: &Tensor,
        mask_gt: &Tensor,
    ) -> Assignment {
        let (b, a, _) = pd_scores.size3().expect("scores are (B, A, nc)");
        let m = gt_bboxes.size()[1];
        let device = pd_scores.device();
        if m == 0 {
            return Assignment {
                labels: Tensor::zeros([b, a], (Kind::Int64, device)),
                bboxes: Tensor::zeros([b, a, 4], (Kind::Float, device)),
                scores: pd_scores.zeros_like(),
                foreground: Tensor::zeros([b, a], (Kind::Bool, device)),
                gt_index: Tensor::zeros([b, a], (Kind::Int64, device)),
            };
        }
        let mask_gt = mask_gt.to_kind(Kind::Float);
        let candidate_boxes = match self.min_candidate_side {
            Some(side) => widen_small_boxes(gt_bboxes, &mask_gt, side),
            None => gt_bboxes.shallow_clone(),
        };
        let in_gts = candidates_in_gts(anchors, &candidate_boxes);
        let (align_metric, overlaps) = self.box_metrics(
            pd_scores,
            pd_bboxes,
            gt_labels,
            gt_bboxes,
            &(&in_gts * &mask_gt),
        );
        let topk = self.topk_candidates(
            &align_metric,
            &mask_gt
                .expand([-1, -1, self.topk], false)
                .to_kind(Kind::Bool),
        );
        let mask_pos = topk * in_gts * &mask_gt;
        let mut mask_pos = resolve_shared_anchors(mask_pos, &overlaps, m);
        if let Some(k2) = self.topk2.filter(|&k2| k2 != self.topk) {
            let k2 = k2.min(a);
            let (_, best) = (&align_metric * &mask_pos).topk(k2, -1, true, true);
            let keep = mask_pos.zeros_like().scatter_value(-1, &best, 1.0);
            mask_pos *= keep;
        }
        let foreground = mask_pos.sum_dim_intlist(-2, false, Kind::Float).gt(0.0);
        let gt_index = mask_pos.argmax(-2, false);

        // Targets of the assigned ground truth for every anchor.
        let batch_offset = (Tensor::arange(b, (Kind::Int64, device)) * m).unsqueeze(-1);
        let flat_index = &gt_index + batch_offset;
        let labels = gt_labels
            .to_kind(Kind::Int64)
            .flatten(0, -1)
            .index_select(0, &flat_index.flatten(0, -1))
            .view([b, a])
            .clamp_min(0);
        let bboxes = gt_bboxes
            .view([-1, 4])
            .index_select(0, &flat_index.flatten(0, -1))
            .view([b, a, 4]);
        let one_hot = labels.one_hot(self.num_classes).to_kind(Kind::Float);
        let fg = foreground
            .unsqueeze(-1)
            .expand([-1, -1, self.num_classes], false);
        let scores = one_hot.where_self(&fg, &Tensor::zeros_like(&one_hot));

        // Soft targets: each gt's alignment rescaled so its best anchor gets the
        // best IoU among its positives.
        let align_metric = align_metric * &mask_pos;
        let pos_align = align_metric.amax(-1, true);
        let pos_overlaps = (&overlaps * &mask_pos).amax(-1, true);
        let norm = (align_metric * pos_overlaps / (pos_align + EPS))
            .amax(-2, false)
            .unsqueeze(-1);
        Assignment {
            labels,
            bboxes,
            scores: scores * norm,
            foreground,
            gt_index,
        }
    }

    /// `(B, M, A)` alignment metric s^α·u^β and CIoU overlaps, where `mask` allows.
    fn box_metrics(
        &self,
        pd_scores: &Tensor,
        pd_bboxes: &Tensor,
        gt_labels: &Tensor,
        gt_bboxes: &Tensor,
        mask: &Tensor,
    ) -> (Tensor, Tensor) {
        let (b, a, nc) = pd_scores.size3().expect("scores are (B, A, nc)");
        let m = gt_bboxes.size()[1];
        let mask = mask.to_kind(Kind::Bool);
        // Score of each gt's class at every anchor: gather along the class axis.
        let labels = gt_labels
            .to_kind(Kind::Int64)
            .clamp(0, nc - 1)
            .view([b, m, 1])
            .expand([b, m, a], false);
        let scores = pd_scores.permute([0, 2, 1]).gather(1, &labels, false);
        let ious = bbox_iou(&gt_bboxes.unsqueeze(2), &pd_bboxes.unsqueeze(1), true)
            .squeeze_dim(-1)
            .clamp_min(0.0);
        let zeros = Tensor::zeros([b, m, a], (Kind::Float, pd_scores.device()));
        let scores = scores.where_self(&mask, &zeros);
        let overlaps = ious.where_self(&mask, &zeros);
        let metric = scores.pow_tensor_scalar(self.alpha) * overlaps.pow_tensor_scalar(self.beta);
        (metric, overlaps)
    }

    /// `(B, M, A)` one-hot of each real gt's top-k anchors by metric.
    fn topk_candidates(&self, metric: &Tensor, topk_mask: &Tensor) -> Tensor {
        let k = self.topk.min(metric.size()[2]);
        let (_, indices) = metric.topk(k, -1, true, true);
        let indices = indices.masked_fill(&topk_mask.narrow(2, 0, k).logical_not(), 0);
        let mut count = Tensor::zeros(metric.size(), (Kind::Float, metric.device()));
        let ones = Tensor::ones(
            [metric.size()[0], metric.size()[1], 1],
            (Kind::Float, metric.device()),
        );
        for j in 0..k {
            count = count.scatter_add(-1, &indices.narrow(2, j, 1), &ones);
        }
        // Padding rows pointed k times at anchor 0: they count for nothing.
        count.masked_fill(&count.gt(1.0), 0.0)
    }
}

/// The boxes with each side shorter than `side` widened to `side` about the
/// box's centre, on real rows only; every box goes through the centre-size
/// round trip, as Ultralytics' does.
fn widen_small_boxes(gt_bboxes: &Tensor, mask_gt: &Tensor, side: f64) -> Tensor {
    let corners = gt_bboxes.chunk(2, -1);
    let centre = (&corners[0] + &corners[1]) / 2.0;
    let size = &corners[1] - &corners[0];
    let small = size.lt(side).logical_and(&mask_gt.to_kind(Kind::Bool));
    let size = size.masked_fill(&small, side);
    let half = size / 2.0;
    Tensor::cat(&[&centre - &half, &centre + &half], -1)
}

/// `(B, M, A)` 1 where the anchor centre lies strictly inside the gt box.
fn candidates_in_gts(anchors: &Tensor, gt_bboxes: &Tensor) -> Tensor {
    let (b, m, _) = gt_bboxes.size3().expect("gt boxes are (B, M, 4)");
    let a = anchors.size()[0];
    let corners = gt_bboxes.view([-1, 1, 4]).chunk(2, 2);
    let anchors = anchors.unsqueeze(0);
    let deltas =
        Tensor::cat(&[&anchors - &corners[0], &corners[1] - &anchors], 2).view([b, m, a, 4]);
    deltas.amin(3, false).gt(EPS).to_kind(Kind::Float)
}

/// Resolves anchors claimed by several gts (keep the gt of highest IoU);
/// returns the positive mask `(B, M, A)`.
fn resolve_shared_anchors(mask_pos: Tensor, overlaps: &Tensor, m: i64) -> Tensor {
    let mut mask_pos = mask_pos;
    let fg_count = mask_pos.sum_dim_intlist(-2, false, Kind::Float);
    if fg_count.max().double_value(&[]) > 1.0 {
        let multi = fg_count.gt(1.0).unsqueeze(1).expand([-1, m, -1], false);
        let best = overlaps
            .argmax(1, false)
            .one_hot(m)
            .permute([0, 2, 1])
            .to_kind(Kind::Float);
        mask_pos = best.where_self(&multi, &mask_pos);
    }
    mask_pos
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    /// Four anchors (pixels) and their predictions: anchor 0 predicts the box
    /// (0, 0, 16, 8) exactly with class-1 probability 0.9, anchor 1 a shifted
    /// box, the others boxes elsewhere. With one class-1 gt's label and mask.
    struct Scene {
        anchors: Tensor,
        pd_boxes: Tensor,
        pd_scores: Tensor,
        gt_labels: Tensor,
        mask_gt: Tensor,
    }

    fn scene() -> Scene {
        Scene {
            anchors: Tensor::from_slice(&[4.0f32, 4.0, 12.0, 4.0, 40.0, 40.0, 60.0, 60.0])
                .view([4, 2]),
            pd_boxes: Tensor::from_slice(&[
                0.0f32, 0.0, 16.0, 8.0, 4.0, 0.0, 20.0, 8.0, 30.0, 30.0, 50.0, 50.0, 50.0, 50.0,
                70.0, 70.0,
            ])
            .view([1, 4, 4]),
            pd_scores: Tensor::from_slice(&[0.1f32, 0.9, 0.1, 0.6, 0.5, 0.5, 0.5, 0.5])
                .view([1, 4, 2]),
            gt_labels: Tensor::from_slice(&[1.0f32]).view([1, 1, 1]),
            mask_gt: Tensor::ones([1, 1, 1], (Kind::Float, Device::Cpu)),
        }
    }

    impl Scene {
        fn assign(&self, assigner: &TaskAlignedAssigner, gt: &[f32]) -> Assignment {
            let gt_boxes = Tensor::from_slice(gt).view([1, 1, 4]);
            assigner.assign(
                &self.pd_scores,
                &self.pd_boxes,
                &self.anchors,
                &self.gt_labels,
                &gt_boxes,
                &self.mask_gt,
            )
        }
    }

    #[test]
    fn anchors_inside_a_box_with_good_predictions_are_assigned() {
        // One gt box covering the first two anchors.
        let assigner = TaskAlignedAssigner::new(2);
        let out = scene().assign(&assigner, &[0.0, 0.0, 16.0, 8.0]);
        let fg: Vec<bool> = Vec::try_from(out.foreground.flatten(0, -1)).unwrap();
        assert_eq!(fg, [true, true, false, false]);
        let labels: Vec<i64> = Vec::try_from(out.labels.flatten(0, -1)).unwrap();
        assert_eq!(&labels[..2], &[1, 1]);
        // The best-aligned anchor gets the best IoU (1.0) as its class-1 target;
        // background rows are zero; class 0 is never a target.
        let scores: Vec<f32> = Vec::try_from(out.scores.flatten(0, -1)).unwrap();
        assert!((scores[1] - 1.0).abs() < 1e-4, "{scores:?}");
        assert!(scores[3] > 0.0 && scores[3] < scores[1]);
        assert_eq!(scores[0], 0.0);
        assert!(scores[4..].iter().all(|&s| s == 0.0));
        let boxes: Vec<f32> = Vec::try_from(out.bboxes.narrow(1, 0, 1).flatten(0, -1)).unwrap();
        assert_eq!(boxes, [0.0, 0.0, 16.0, 8.0]);
    }

    #[test]
    fn an_anchor_claimed_twice_goes_to_the_gt_it_overlaps_most() {
        let anchors = Tensor::from_slice(&[8.0f32, 8.0]).view([1, 2]);
        let gt_boxes =
            Tensor::from_slice(&[0.0f32, 0.0, 16.0, 16.0, 2.0, 2.0, 30.0, 30.0]).view([1, 2, 4]);
        let gt_labels = Tensor::from_slice(&[0.0f32, 1.0]).view([1, 2, 1]);
        let mask_gt = Tensor::ones([1, 2, 1], (Kind::Float, Device::Cpu));
        let pd_boxes = Tensor::from_slice(&[1.0f32, 1.0, 15.0, 15.0]).view([1, 1, 4]);
        let pd_scores = Tensor::from_slice(&[0.5f32, 0.5]).view([1, 1, 2]);
        let out = TaskAlignedAssigner::new(2).assign(
            &pd_scores, &pd_boxes, &anchors, &gt_labels, &gt_boxes, &mask_gt,
        );
        assert_eq!(out.gt_index.int64_value(&[0, 0]), 0);
        assert_eq!(out.labels.int64_value(&[0, 0]), 0);
    }

    #[test]
    fn padding_rows_and_empty_batches_assign_nothing() {
        let anchors = Tensor::from_slice(&[4.0f32, 4.0]).view([1, 2]);
        let pd_boxes = Tensor::from_slice(&[0.0f32, 0.0, 8.0, 8.0]).view([1, 1, 4]);
        let pd_scores = Tensor::from_slice(&[0.5f32]).view([1, 1, 1]);
        let assigner = TaskAlignedAssigner::new(1);
        let zeros = Tensor::zeros([1, 1, 4], (Kind::Float, Device::Cpu));
        let out = assigner.assign(
            &pd_scores,
            &pd_boxes,
            &anchors,
            &Tensor::zeros([1, 1, 1], (Kind::Float, Device::Cpu)),
            &zeros,
            &Tensor::zeros([1, 1, 1], (Kind::Float, Device::Cpu)),
        );
        // A padding row (all-zero box, mask 0) makes no anchor foreground.
        assert_eq!(out.foreground.any().int64_value(&[]), 0);
        assert_eq!(out.scores.sum(Kind::Float).double_value(&[]), 0.0);
        let empty = Tensor::zeros([1, 0, 4], (Kind::Float, Device::Cpu));
        let out = assigner.assign(
            &pd_scores,
            &pd_boxes,
            &anchors,
            &Tensor::zeros([1, 0, 1], (Kind::Float, Device::Cpu)),
            &empty,
            &Tensor::zeros([1, 0, 1], (Kind::Float, Device::Cpu)),
        );
        assert_eq!(out.scores.sum(Kind::Float).double_value(&[]), 0.0);
    }

    #[test]
    fn one_to_one_keeps_each_boxs_best_anchor_and_small_boxes_widen_for_candidates() {
        let scene = scene();
        let foreground = |assigner: &TaskAlignedAssigner, gt: &[f32]| -> Vec<bool> {
            Vec::try_from(scene.assign(assigner, gt).foreground.flatten(0, -1)).unwrap()
        };
        let one_to_one = TaskAlignedAssigner {
            topk: 7,
            topk2: Some(1),
            ..TaskAlignedAssigner::new(2)
        };
        // Both anchors lie in the box; only the better aligned one stays.
        let box_over_two = [0.0f32, 0.0, 16.0, 8.0];
        assert_eq!(
            foreground(&TaskAlignedAssigner::new(2), &box_over_two),
            [true, true, false, false]
        );
        assert_eq!(
            foreground(&one_to_one, &box_over_two),
            [true, false, false, false]
        );
        // A 2-px-high box between anchor rows holds no anchor centre, unless it
        // counts as 16 px high for the search.
        let thin = [0.0f32, 5.0, 16.0, 7.0];
        assert_eq!(foreground(&TaskAlignedAssigner::new(2), &thin), [false; 4]);
        let widening = TaskAlignedAssigner {
            min_candidate_side: Some(16.0),
            ..TaskAlignedAssigner::new(2)
        };
        assert_eq!(foreground(&widening, &thin), [true, true, false, false]);
    }
}
