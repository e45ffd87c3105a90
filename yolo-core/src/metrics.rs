//! Detection evaluation, computed the way Ultralytics 8.3 computes it
//! (`DetectionValidator.match_predictions`, `ap_per_class`, `compute_ap`,
//! `smooth`, `Metric`, `ConfusionMatrix` in `ultralytics/utils/metrics.py`),
//! so that numbers can be compared with Ultralytics' validation output.
//!
//! Parity goes down to the floating-point operation order where that is
//! knowable: IoU in f32 with torch's operation order and `eps = 1e-7`,
//! `np.interp` and `np.linspace` as numpy implements them, and numpy's pairwise
//! summation for `sum`/`mean`/`trapezoid`. Two places cannot be bit-exact:
//! numpy's default `argsort` is not stable, so equal keys (tied IoUs, tied
//! confidences) may come out in another order there; and `np.convolve` in
//! `smooth` goes through BLAS, whose summation order depends on the CPU. Both
//! only matter for exact ties.

use serde::Serialize;

use crate::numpy::{
    linspace01, np_argmax, np_cmp, np_interp, np_mean, smooth, sort_desc_numpy, trapezoid,
    unique_first,
};

/// Box corners `[x1, y1, x2, y2]`.
pub type Xyxy = [f32; 4];

/// One detection, as NMS outputs it (in image coordinates).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Detection {
    pub bbox: Xyxy,
    pub score: f32,
    pub class: usize,
}

/// One labelled object (in the same coordinates as the detections).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GroundTruth {
    pub bbox: Xyxy,
    pub class: usize,
}

/// `torch.linspace(0.5, 0.95, 10)` in float32. These literals are bit-identical
/// to what torch's linspace kernel produces (checked with and without FMA).
pub const IOU_THRESHOLDS: [f32; 10] = [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95];

/// Points of the confidence grid `px = linspace(0, 1, 1000)` for the curves.
pub const CURVE_POINTS: usize = 1000;

/// Ultralytics' confusion matrix: predictions with confidence > 0.25 (it swaps
/// val's default conf 0.001 for 0.25) matched class-agnostically at IoU > 0.45.
pub const CONFUSION_CONF: f32 = 0.25;
pub const CONFUSION_IOU: f32 = 0.45;

/// `eps` of `ap_per_class` (recall denominator, F1 denominator).
const EPS: f64 = 1e-16;

/// IoU exactly as Ultralytics' `box_iou` computes it in float32:
/// `inter / (area_a + area_b - inter + 1e-7)`, widths clamped at 0 only for
/// the intersection. Ultralytics calls it with labels as `a`, detections as `b`.
pub fn box_iou(a: &Xyxy, b: &Xyxy) -> f32 {
    let iw = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let ih = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = iw * ih;
    let area_a = (a[2] - a[0]) * (a[3] - a[1]);
    let area_b = (b[2] - b[0]) * (b[3] - b[1]);
    inter / (area_a + area_b - inter + 1e-7)
}

/// Ultralytics' `match_predictions`: which detections are true positives at
/// each of the 10 IoU thresholds.
///
/// Detections are assumed sorted by score descending, as NMS outputs them.
/// IoU is zeroed where classes differ; per threshold, all (label, detection)
/// pairs with IoU >= threshold are sorted by IoU descending, reduced to one
/// pair per detection (its best IoU), then to one pair per label -- but that
/// second `np.unique` sees the rows re-sorted by detection index, so a label
/// goes to its *lowest-index* (highest-score) detection, not its best-IoU one.
/// Greedy, not Hungarian; reproduced for parity.
pub fn match_predictions(dets: &[Detection], gts: &[GroundTruth]) -> Vec<[bool; 10]> {
    let mut correct = vec![[false; 10]; dets.len()];
    if dets.is_empty() || gts.is_empty() {
        return correct;
    }
    // iou[label][det], as Ultralytics' (L, D) matrix.
    let iou: Vec<Vec<f32>> = gts
        .iter()
        .map(|g| {
            dets.iter()
                .map(|d| {
                    if d.class == g.class {
                        box_iou(&g.bbox, &d.bbox)
                    } else {
                        0.0
                    }
                })
                .collect()
        })
        .collect();
    for (t, &thr) in IOU_THRESHOLDS.iter().enumerate() {
        // (label, det, iou) in np.nonzero's row-major order.
        let mut pairs: Vec<(usize, usize, f32)> = Vec::new();
        for (l, row) in iou.iter().enumerate() {
            for (d, &v) in row.iter().enumerate() {
                if v >= thr {
                    pairs.push((l, d, v));
                }
            }
        }
        if pairs.len() > 1 {
            sort_desc_numpy(&mut pairs, |p| p.2);
            pairs = unique_first(&pairs, |p| p.1);
            pairs = unique_first(&pairs, |p| p.0);
        }
        for &(_, d, _) in &pairs {
            correct[d][t] = true;
        }
    }
    correct
}

/// The confidence grid `px` the per-class curves are sampled on.
pub fn curve_grid() -> Vec<f64> {
    linspace01(CURVE_POINTS)
}

/// AP curve pieces: `(ap, mrec, mpre)` as Ultralytics' `compute_ap` returns.
fn compute_ap_curve(recall: &[f64], precision: &[f64]) -> (f64, Vec<f64>, Vec<f64>) {
    // Sentinels: the curve starts at (recall 0, precision 1), ends at (1, 0).
    let mut mrec = Vec::with_capacity(recall.len() + 2);
    mrec.push(0.0);
    mrec.extend_from_slice(recall);
    mrec.push(1.0);
    let mut mpre = Vec::with_capacity(precision.len() + 2);
    mpre.push(1.0);
    mpre.extend_from_slice(precision);
    mpre.push(0.0);
    // Precision envelope: running maximum from the right (np.maximum
    // propagates NaN, hence no f64::max).
    for i in (0..mpre.len() - 1).rev() {
        let (a, b) = (mpre[i], mpre[i + 1]);
        mpre[i] = if a.is_nan() || b.is_nan() {
            f64::NAN
        } else if b > a {
            b
        } else {
            a
        };
    }
    // 101-point linear interpolation of the envelope, trapezoid integral.
    let x = linspace01(101);
    let (first, last) = (mpre[0], mpre[mpre.len() - 1]);
    let y: Vec<f64> = x
        .iter()
        .map(|&v| np_interp(v, &mrec, &mpre, first, last))
        .collect();
    (trapezoid(&y, &x), mrec, mpre)
}

/// Ultralytics' `compute_ap`: sentinels (recall 0 / precision 1 in front,
/// recall 1 / precision 0 at the end), precision envelope, 101-point linear
/// interpolation, trapezoid rule. Note the recall-1 sentinel: even a perfect
/// curve interpolates to precision 0 at recall 1, so its AP is 0.995.
/// (Empty curves give 0.5, the sentinel line; `ap_per_class` never asks.)
pub fn compute_ap(recall: &[f64], precision: &[f64]) -> f64 {
    compute_ap_curve(recall, precision).0
}

/// Ultralytics' detection `ConfusionMatrix`: `(nc + 1) x (nc + 1)`, rows =
/// predicted class, columns = true class, background last. Predictions with
/// confidence > [`CONFUSION_CONF`] are matched to labels class-agnostically at
/// IoU > [`CONFUSION_IOU`], one-to-one by highest IoU.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ConfusionMatrix {
    pub nc: usize,
    pub matrix: Vec<Vec<u64>>,
}

impl ConfusionMatrix {
    pub fn new(nc: usize) -> Self {
        Self {
            nc,
            matrix: vec![vec![0; nc + 1]; nc + 1],
        }
    }

    /// Adds one image.
    pub fn process(&mut self, dets: &[Detection], gts: &[GroundTruth]) {
        let bg = self.nc;
        let dets: Vec<&Detection> = dets.iter().filter(|d| d.score > CONFUSION_CONF).collect();
        // (label, det, iou) for IoU > threshold, row-major as torch.where.
        let mut m: Vec<(usize, usize, f32)> = Vec::new();
        for (l, g) in gts.iter().enumerate() {
            for (d, det) in dets.iter().enumerate() {
                let v = box_iou(&g.bbox, &det.bbox);
                if v > CONFUSION_IOU {
                    m.push((l, d, v));
                }
            }
        }
        if m.len() > 1 {
            // Unlike match_predictions, it re-sorts by IoU before the
            // per-label unique, so each label keeps its best-IoU detection.
            sort_desc_numpy(&mut m, |p| p.2);
            m = unique_first(&m, |p| p.1);
            sort_desc_numpy(&mut m, |p| p.2);
            m = unique_first(&m, |p| p.0);
        }
        for (l, g) in gts.iter().enumerate() {
            match m.iter().find(|p| p.0 == l) {
                // Right class: a hit; wrong class: both an FP and an FN.
                Some(&(_, d, _)) => self.matrix[dets[d].class][g.class] += 1,
                None => self.matrix[bg][g.class] += 1, // missed label
            }
        }
        for (d, det) in dets.iter().enumerate() {
            if !m.iter().any(|p| p.1 == d) {
                self.matrix[det.class][bg] += 1; // prediction on background
            }
        }
    }
}

/// Per-class results, only for classes with at least one label.
#[derive(Clone, Debug, Serialize)]
pub struct ClassMetrics {
    pub class: usize,
    pub name: String,
    /// Images containing the class (Ultralytics' per-class "Images" column).
    pub images: usize,
    pub labels: usize,
    /// Precision and recall at the confidence of best mean F1.
    pub precision: f64,
    pub recall: f64,
    pub ap50: f64,
    pub ap50_95: f64,
}

/// Per-class curves for plotting. `precision`, `recall` and `f1` are over the
/// confidence grid [`curve_grid`]; `pr` is precision (envelope) at recall =
/// the same grid, at IoU 0.5 (Ultralytics' `prec_values`, the PR curve).
/// A class with labels but no detections has all-zero curves.
#[derive(Clone, Debug, Serialize)]
pub struct ClassCurve {
    pub class: usize,
    pub precision: Vec<f64>,
    pub recall: Vec<f64>,
    pub f1: Vec<f64>,
    pub pr: Vec<f64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct DetectionMetrics {
    pub map50: f64,
    pub map50_95: f64,
    /// Mean over classes of precision / recall at `best_conf`.
    pub precision: f64,
    pub recall: f64,
    /// Mean over classes of F1 at `best_conf` (unsmoothed).
    pub f1: f64,
    /// Confidence of the maximum of the smoothed mean-F1 curve.
    pub best_conf: f64,
    pub per_class: Vec<ClassMetrics>,
    pub curves: Vec<ClassCurve>,
    pub confusion: Vec<Vec<u64>>,
    pub images: usize,
    pub labels: usize,
}

impl DetectionMetrics {
    /// No figures: what a rank that did not validate reports (data-parallel
    /// training validates on rank 0 alone).
    pub fn empty(classes: usize) -> DetectionMetrics {
        DetectionMetrics {
            map50: 0.0,
            map50_95: 0.0,
            precision: 0.0,
            recall: 0.0,
            f1: 0.0,
            best_conf: 0.0,
            per_class: Vec::new(),
            curves: Vec::new(),
            confusion: vec![vec![0; classes + 1]; classes + 1],
            images: 0,
            labels: 0,
        }
    }
}

/// One detection's contribution to `ap_per_class`.
#[derive(Clone, Debug)]
struct PredStat {
    conf: f32,
    class: usize,
    tp: [bool; 10],
}

/// Curves and APs of one class, as the loop body of `ap_per_class`.
struct ClassResult {
    ap: [f64; 10],
    p_curve: Vec<f64>,
    r_curve: Vec<f64>,
    pr: Vec<f64>,
}

/// `ap_per_class` for one class: `preds` are that class's detections in
/// descending confidence, `n_labels > 0`.
fn class_result(preds: &[&PredStat], n_labels: usize, px: &[f64]) -> ClassResult {
    let zeros = || vec![0.0; px.len()];
    if preds.is_empty() {
        return ClassResult {
            ap: [0.0; 10],
            p_curve: zeros(),
            r_curve: zeros(),
            pr: zeros(),
        };
    }
    let n = preds.len();
    // recall[t][k], precision[t][k] after the k-th detection, per threshold t.
    let mut recall = vec![vec![0.0; n]; 10];
    let mut precision = vec![vec![0.0; n]; 10];
    for t in 0..10 {
        let mut tpc = 0u64;
        for (k, p) in preds.iter().enumerate() {
            tpc += u64::from(p.tp[t]);
            let fpc = (k + 1) as u64 - tpc;
            recall[t][k] = tpc as f64 / (n_labels as f64 + EPS);
            precision[t][k] = tpc as f64 / (tpc + fpc) as f64;
        }
    }
    // Interpolated over confidence: xp = -conf increases as conf decreases.
    let neg_conf: Vec<f64> = preds.iter().map(|p| -(p.conf as f64)).collect();
    let r_curve = px
        .iter()
        .map(|&x| np_interp(-x, &neg_conf, &recall[0], 0.0, recall[0][n - 1]))
        .collect();
    let p_curve = px
        .iter()
        .map(|&x| np_interp(-x, &neg_conf, &precision[0], 1.0, precision[0][n - 1]))
        .collect();
    let mut ap = [0.0; 10];
    let mut pr = Vec::new();
    for t in 0..10 {
        let (a, mrec, mpre) = compute_ap_curve(&recall[t], &precision[t]);
        ap[t] = a;
        if t == 0 {
            let (first, last) = (mpre[0], mpre[mpre.len() - 1]);
            pr = px
                .iter()
                .map(|&x| np_interp(x, &mrec, &mpre, first, last))
                .collect();
        }
    }
    ClassResult {
        ap,
        p_curve,
        r_curve,
        pr,
    }
}

/// Accumulates images, then computes the metrics as Ultralytics' validator.
#[derive(Clone, Debug)]
pub struct Evaluator {
    names: Vec<String>,
    preds: Vec<PredStat>,
    labels_per_class: Vec<usize>,
    images_per_class: Vec<usize>,
    images: usize,
    confusion: ConfusionMatrix,
}

impl Evaluator {
    pub fn new(class_names: Vec<String>) -> Self {
        let nc = class_names.len();
        Self {
            names: class_names,
            preds: Vec::new(),
            labels_per_class: vec![0; nc],
            images_per_class: vec![0; nc],
            images: 0,
            confusion: ConfusionMatrix::new(nc),
        }
    }

    pub fn num_classes(&self) -> usize {
        self.names.len()
    }

    /// Adds one image: its detections (NMS output, score-descending) and
    /// labels. Images without labels still count their detections as false
    /// positives; images without detections still count their labels.
    ///
    /// Panics if a class index is out of range (a caller bug).
    pub fn add_image(&mut self, dets: &[Detection], gts: &[GroundTruth]) {
        let nc = self.num_classes();
        let bad = dets
            .iter()
            .map(|d| d.class)
            .chain(gts.iter().map(|g| g.class))
            .find(|&c| c >= nc);
        assert!(
            bad.is_none(),
            "class index {bad:?} out of range for {nc} classes"
        );

        self.images += 1;
        let tp = match_predictions(dets, gts);
        self.preds
            .extend(dets.iter().zip(tp).map(|(d, tp)| PredStat {
                conf: d.score,
                class: d.class,
                tp,
            }));
        let mut present = vec![false; nc];
        for g in gts {
            self.labels_per_class[g.class] += 1;
            present[g.class] = true;
        }
        for (count, here) in self.images_per_class.iter_mut().zip(present) {
            *count += usize::from(here);
        }
        self.confusion.process(dets, gts);
    }

    /// Ultralytics' `ap_per_class` and `Metric` means over everything added.
    pub fn finish(&self) -> DetectionMetrics {
        let px = curve_grid();
        // np.argsort(-conf), made stable.
        let mut order: Vec<&PredStat> = self.preds.iter().collect();
        order.sort_by(|a, b| np_cmp(-(a.conf as f64), -(b.conf as f64)));

        let classes: Vec<usize> = (0..self.num_classes())
            .filter(|&c| self.labels_per_class[c] > 0)
            .collect();
        let results: Vec<ClassResult> = classes
            .iter()
            .map(|&c| {
                let preds: Vec<&PredStat> =
                    order.iter().copied().filter(|p| p.class == c).collect();
                class_result(&preds, self.labels_per_class[c], &px)
            })
            .collect();

        let f1_curves: Vec<Vec<f64>> = results
            .iter()
            .map(|r| {
                r.p_curve
                    .iter()
                    .zip(&r.r_curve)
                    .map(|(&p, &r)| 2.0 * p * r / (p + r + EPS))
                    .collect()
            })
            .collect();
        // f1_curve.mean(0): numpy reduces over the class axis row by row.
        let best = if f1_curves.is_empty() {
            0 // Ultralytics: mean of nothing is NaN, argmax of NaNs is 0
        } else {
            let mut mean_f1 = vec![0.0; px.len()];
            for row in &f1_curves {
                for (m, &v) in mean_f1.iter_mut().zip(row) {
                    *m += v;
                }
            }
            let nc = f1_curves.len() as f64;
            mean_f1.iter_mut().for_each(|m| *m /= nc);
            np_argmax(&smooth(&mean_f1, 0.1))
        };

        let p: Vec<f64> = results.iter().map(|r| r.p_curve[best]).collect();
        let r: Vec<f64> = results.iter().map(|r| r.r_curve[best]).collect();
        let f1: Vec<f64> = f1_curves.iter().map(|f| f[best]).collect();
        let ap50: Vec<f64> = results.iter().map(|r| r.ap[0]).collect();
        let all_ap: Vec<f64> = results.iter().flat_map(|r| r.ap).collect();

        let per_class = classes
            .iter()
            .zip(&results)
            .enumerate()
            .map(|(i, (&c, res))| ClassMetrics {
                class: c,
                name: self.names[c].clone(),
                images: self.images_per_class[c],
                labels: self.labels_per_class[c],
                precision: p[i],
                recall: r[i],
                ap50: res.ap[0],
                ap50_95: np_mean(&res.ap),
            })
            .collect();
        let curves = classes
            .iter()
            .zip(results)
            .zip(f1_curves)
            .map(|((&c, res), f1)| ClassCurve {
                class: c,
                precision: res.p_curve,
                recall: res.r_curve,
                f1,
                pr: res.pr,
            })
            .collect();

        DetectionMetrics {
            map50: np_mean(&ap50),
            map50_95: np_mean(&all_ap),
            precision: np_mean(&p),
            recall: np_mean(&r),
            f1: np_mean(&f1),
            best_conf: px[best],
            per_class,
            curves,
            confusion: self.confusion.matrix.clone(),
            images: self.images,
            labels: self.labels_per_class.iter().sum(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(bbox: Xyxy, score: f32, class: usize) -> Detection {
        Detection { bbox, score, class }
    }
    fn gt(bbox: Xyxy, class: usize) -> GroundTruth {
        GroundTruth { bbox, class }
    }
    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("c{i}")).collect()
    }
    const T: bool = true;
    const F: bool = false;

    // AP of a perfect class. The recall-1 sentinel sits on top of the last
    // real point (recall 1), and np.interp takes the *last* of duplicate x, so
    // the envelope is sampled as 1 at the first 100 grid points and 0 at
    // recall 1: trapezoid = 0.99 * 1 + 0.01 * (1 + 0) / 2 = 0.995. This is the
    // f64 numpy 2.4 prints for np.trapezoid of that curve.
    const AP_PERFECT: f64 = 0.995;

    #[test]
    fn box_iou_basics() {
        let a = [0.0, 0.0, 10.0, 10.0];
        // 100 / (100 + 1e-7) rounds to exactly 1 in f32.
        assert_eq!(box_iou(&a, &a), 1.0);
        assert_eq!(box_iou(&a, &[5.0, 0.0, 15.0, 10.0]), 50.0f32 / 150.0);
        assert_eq!(box_iou(&a, &[0.0, 0.0, 5.0, 5.0]), 0.25);
        assert_eq!(box_iou(&a, &[10.0, 0.0, 20.0, 10.0]), 0.0); // touching
        assert_eq!(box_iou(&a, &[20.0, 20.0, 30.0, 30.0]), 0.0);
        // Degenerate boxes: eps keeps it finite.
        assert_eq!(box_iou(&[1.0, 1.0, 1.0, 1.0], &[1.0, 1.0, 1.0, 1.0]), 0.0);
    }

    #[test]
    fn iou_thresholds_are_linspace() {
        for (i, &t) in IOU_THRESHOLDS.iter().enumerate() {
            assert!((t as f64 - (0.5 + 0.05 * i as f64)).abs() < 1e-6);
        }
    }

    #[test]
    fn compute_ap_perfect() {
        assert_eq!(compute_ap(&[1.0], &[1.0]), AP_PERFECT);
        // More points on the perfect curve change nothing.
        assert_eq!(compute_ap(&[0.5, 1.0], &[1.0, 1.0]), AP_PERFECT);
    }

    #[test]
    fn compute_ap_half_recall() {
        // 1 of 2 labels found at precision 1: envelope 1 up to recall 0.5, then
        // the straight line to the (1, 0) sentinel: 0.5 + 0.25.
        assert_eq!(compute_ap(&[0.5], &[1.0]), 0.75);
    }

    #[test]
    fn compute_ap_envelope_and_duplicate_recall() {
        // TP, FP, TP over 2 labels: recall .5 .5 1, precision 1 .5 2/3.
        // Envelope: 1 below recall .5, 2/3 from recall .5 (np.interp takes the
        // last of the duplicated .5 points) to just before 1, 0 at 1:
        // .49 + .01 * (1 + 2/3) / 2 + .49 * 2/3 + .01 * (2/3) / 2. numpy value:
        let ap = compute_ap(&[0.5, 0.5, 1.0], &[1.0, 0.5, 2.0 / 3.0]);
        assert_eq!(ap, 0.8283333333333331);
    }

    #[test]
    fn match_predictions_prefers_higher_score_over_higher_iou() {
        let g = [gt([0.0, 0.0, 10.0, 10.0], 0)];
        // det0 scores higher but overlaps less (IoU .62) than det1 (IoU .92).
        let d = [
            det([0.0, 0.0, 10.0, 6.2], 0.9, 0),
            det([0.0, 0.0, 10.0, 9.2], 0.8, 0),
        ];
        let m = match_predictions(&d, &g);
        // Wherever both qualify (thresholds .50-.60) det0 takes the label,
        // although det1's IoU is higher; above .62 only det1 qualifies;
        // at .95 neither.
        assert_eq!(m[0], [T, T, T, F, F, F, F, F, F, F]);
        assert_eq!(m[1], [F, F, F, T, T, T, T, T, T, F]);
    }

    #[test]
    fn match_predictions_classes_and_uniqueness() {
        let g = [
            gt([0.0, 0.0, 10.0, 10.0], 0),
            gt([20.0, 0.0, 30.0, 10.0], 0),
        ];
        let d = [
            det([0.0, 0.0, 10.0, 10.0], 0.9, 1),  // right box, wrong class
            det([0.0, 0.0, 10.0, 10.0], 0.8, 0),  // exact
            det([0.0, 0.0, 10.0, 10.0], 0.7, 0),  // duplicate of an exact hit
            det([20.0, 0.0, 29.0, 10.0], 0.6, 0), // IoU .9 with the second label
        ];
        let m = match_predictions(&d, &g);
        assert_eq!(m[0], [F; 10]);
        assert_eq!(m[1], [T; 10]);
        assert_eq!(m[2], [F; 10]);
        assert_eq!(m[3], [T, T, T, T, T, T, T, T, T, F]);
        assert_eq!(match_predictions(&d, &[]), vec![[F; 10]; 4]);
        assert!(match_predictions(&[], &g).is_empty());
    }

    #[test]
    fn evaluator_perfect_predictions() {
        let mut ev = Evaluator::new(names(2));
        for k in 0..3 {
            let o = 20.0 * k as f32;
            let gts = [
                gt([o, 0.0, o + 10.0, 10.0], 0),
                gt([o, 20.0, o + 10.0, 35.0], 1),
            ];
            let dets: Vec<Detection> = gts.iter().map(|g| det(g.bbox, 0.9, g.class)).collect();
            ev.add_image(&dets, &gts);
        }
        let m = ev.finish();
        // Every class's AP is AP_PERFECT at all 10 thresholds. mAP50 is the
        // mean of two equal values; mAP50-95, numpy's pairwise mean of 20 of
        // them, rounds one ulp up (numpy: 0.9950000000000001).
        assert_eq!(m.map50, AP_PERFECT);
        assert_eq!(m.map50_95, 0.9950000000000001);
        // F1 = 1 for every confidence below 0.9, so the first grid point wins.
        assert_eq!(
            (m.precision, m.recall, m.f1, m.best_conf),
            (1.0, 1.0, 1.0, 0.0)
        );
        assert_eq!((m.images, m.labels), (3, 6));
        assert_eq!(m.per_class.len(), 2);
        for (c, pc) in m.per_class.iter().enumerate() {
            assert_eq!((pc.class, pc.images, pc.labels), (c, 3, 3));
            // ap50_95 is numpy's pairwise mean of ten AP_PERFECT values,
            // which rounds one ulp down (numpy: 0.9949999999999999).
            assert_eq!(
                (pc.precision, pc.recall, pc.ap50, pc.ap50_95),
                (1.0, 1.0, AP_PERFECT, 0.9949999999999999)
            );
        }
        assert_eq!(
            m.confusion,
            vec![vec![3, 0, 0], vec![0, 3, 0], vec![0, 0, 0]]
        );
        assert_eq!(m.curves.len(), 2);
        assert!(m
            .curves
            .iter()
            .all(|c| c.precision.len() == CURVE_POINTS && c.pr.len() == CURVE_POINTS));
        // PR curve: precision 1 up to (not including) recall 1.
        assert_eq!(m.curves[0].pr[998], 1.0);
        assert_eq!(m.curves[0].pr[999], 0.0);
    }

    #[test]
    fn evaluator_tp_fp_tp() {
        // One class, 2 labels; detections TP (.9), FP (.8), TP (.7).
        let mut ev = Evaluator::new(names(1));
        let gts = [
            gt([0.0, 0.0, 10.0, 10.0], 0),
            gt([20.0, 0.0, 30.0, 10.0], 0),
        ];
        let dets = [
            det([0.0, 0.0, 10.0, 10.0], 0.9, 0),
            det([50.0, 0.0, 60.0, 10.0], 0.8, 0),
            det([20.0, 0.0, 30.0, 10.0], 0.7, 0),
        ];
        ev.add_image(&dets, &gts);
        let m = ev.finish();
        assert_eq!(m.map50, 0.8283333333333331); // as compute_ap_envelope_and_duplicate_recall
                                                 // Below conf .7 all detections count: P 2/3, R 1, F1 0.8 -- the
                                                 // plateau that the smoothed mean F1 peaks on, first at conf 0.
        assert_eq!(m.best_conf, 0.0);
        assert_eq!((m.precision, m.recall), (2.0 / 3.0, 1.0));
        assert!((m.f1 - 0.8).abs() < 1e-15);
        assert_eq!(m.confusion, vec![vec![2, 1], vec![0, 0]]);
    }

    #[test]
    fn evaluator_missed_class() {
        let mut ev = Evaluator::new(names(3));
        let gts = [
            gt([0.0, 0.0, 10.0, 10.0], 0),
            gt([20.0, 0.0, 30.0, 10.0], 2),
        ];
        ev.add_image(&[det(gts[0].bbox, 0.9, 0)], &gts);
        let m = ev.finish();
        // Class 1 has no labels and is not reported; class 2 has AP 0.
        let classes: Vec<usize> = m.per_class.iter().map(|c| c.class).collect();
        assert_eq!(classes, vec![0, 2]);
        assert_eq!(m.per_class[1].ap50, 0.0);
        assert_eq!(m.per_class[1].recall, 0.0);
        assert_eq!(m.map50, AP_PERFECT / 2.0);
        assert_eq!(m.map50_95, 0.49749999999999994); // numpy's pairwise mean
        assert_eq!((m.precision, m.recall), (0.5, 0.5));
        // The missed label is a background FN in column 2.
        assert_eq!(m.confusion[3][2], 1);
        assert_eq!(m.confusion[0][0], 1);
    }

    #[test]
    fn evaluator_wrong_class_lands_in_confusion() {
        let mut ev = Evaluator::new(names(2));
        let b = [0.0, 0.0, 10.0, 10.0];
        // A low-confidence detection counts for AP but not in the matrix.
        ev.add_image(
            &[det(b, 0.9, 1), det([50.0, 50.0, 60.0, 60.0], 0.1, 0)],
            &[gt(b, 0)],
        );
        let m = ev.finish();
        // Predicted 1, true 0: row 1, column 0; no background entries.
        assert_eq!(
            m.confusion,
            vec![vec![0, 0, 0], vec![1, 0, 0], vec![0, 0, 0]]
        );
        assert_eq!(m.map50, 0.0);
        assert_eq!(m.per_class.len(), 1);
        assert_eq!(m.per_class[0].class, 0);
    }

    #[test]
    fn evaluator_empty_inputs() {
        let m = Evaluator::new(names(2)).finish();
        assert_eq!(
            (m.map50, m.map50_95, m.precision, m.recall, m.f1),
            (0.0, 0.0, 0.0, 0.0, 0.0)
        );
        assert!(m.per_class.is_empty() && m.curves.is_empty());
        assert_eq!((m.images, m.labels), (0, 0));

        let mut ev = Evaluator::new(names(2));
        ev.add_image(&[], &[]);
        // Detections without labels: no AP to compute, FPs on background.
        ev.add_image(&[det([0.0, 0.0, 1.0, 1.0], 0.5, 1)], &[]);
        let m = ev.finish();
        assert_eq!((m.map50, m.images, m.labels), (0.0, 2, 0));
        assert_eq!(m.confusion[1][2], 1);

        // Labels without detections.
        ev.add_image(&[], &[gt([0.0, 0.0, 1.0, 1.0], 0)]);
        let m = ev.finish();
        assert_eq!((m.map50, m.labels, m.per_class.len()), (0.0, 1, 1));
        assert_eq!(m.confusion[2][0], 1);

        let m = Evaluator::new(Vec::new()).finish();
        assert_eq!(m.confusion, vec![vec![0]]);
    }

    #[test]
    #[should_panic(expected = "out of range")]
    fn evaluator_rejects_unknown_class() {
        Evaluator::new(names(1)).add_image(&[], &[gt([0.0, 0.0, 1.0, 1.0], 1)]);
    }
}
