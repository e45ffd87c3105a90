//! Non-maximum suppression of decoded predictions (Ultralytics
//! `non_max_suppression`): confidence filter, optional one row per (box, class)
//! above the threshold, class-aware greedy suppression, at most `max_det` boxes.

use tch::{Kind, Tensor};

use crate::metrics::{box_iou, Detection};

pub use yolo_core::nms_config::NmsConfig;

/// At most this many candidates enter the suppression, best scores first.
const MAX_NMS: usize = 30_000;

/// `y` is `(B, 4 + nc, A)` (centre-size boxes, class probabilities); returns the
/// detections of each image, best first, boxes `xyxy` in `y`'s pixels.
pub fn non_max_suppression(y: &Tensor, config: &NmsConfig) -> Vec<Vec<Detection>> {
    let y = y.to_device(tch::Device::Cpu).to_kind(Kind::Float);
    let (b, rows, _) = y.size3().expect("predictions are (B, 4 + nc, A)");
    let nc = (rows - 4) as usize;
    (0..b)
        .map(|i| {
            let image = y.get(i);
            // Keep anchors whose best class passes, before copying to host memory.
            let keep = image
                .narrow(0, 4, nc as i64)
                .amax(0, false)
                .gt(config.conf as f64)
                .nonzero()
                .squeeze_dim(1);
            let kept = image.index_select(1, &keep).transpose(0, 1).contiguous();
            let n = kept.size()[0] as usize;
            let values: Vec<f32> = if n == 0 {
                Vec::new()
            } else {
                Vec::try_from(kept.flatten(0, -1)).unwrap_or_default()
            };
            let mut candidates = Vec::new();
            for row in values.chunks_exact(4 + nc) {
                let (cx, cy, w, h) = (row[0], row[1], row[2], row[3]);
                let bbox = [cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0];
                let scores = &row[4..];
                if config.multi_label {
                    candidates.extend(
                        scores
                            .iter()
                            .enumerate()
                            .filter(|(_, &s)| s > config.conf)
                            .map(|(class, &score)| Detection { bbox, score, class }),
                    );
                } else if let Some((class, &score)) =
                    scores.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1))
                {
                    candidates.push(Detection { bbox, score, class });
                }
            }
            suppress(candidates, config)
        })
        .collect()
}

/// YOLOv10's end-to-end output, `(B, k, 6)` rows of x1, y1, x2, y2, score,
/// class best first, read as Ultralytics does with `end2end`: rows above
/// `conf`, at most `max_det`, no suppression.
pub fn top_k_detections(rows: &Tensor, config: &NmsConfig) -> Vec<Vec<Detection>> {
    let rows = rows
        .to_device(tch::Device::Cpu)
        .to_kind(Kind::Float)
        .contiguous();
    let (b, k, _) = rows.size3().expect("top-k rows are (B, k, 6)");
    let values: Vec<f32> = Vec::try_from(rows.flatten(0, -1)).unwrap_or_default();
    values
        .chunks_exact((k * 6) as usize)
        .take(b as usize)
        .map(|image| {
            image
                .chunks_exact(6)
                .filter(|row| row[4] > config.conf)
                .take(config.max_det)
                .map(|row| Detection {
                    bbox: [row[0], row[1], row[2], row[3]],
                    score: row[4],
                    class: row[5] as usize,
                })
                .collect()
        })
        .collect()
}

/// Greedy NMS: best score first, drop what overlaps a kept box of the same
/// class (any class when agnostic) by more than `iou`.
pub fn suppress(mut candidates: Vec<Detection>, config: &NmsConfig) -> Vec<Detection> {
    candidates.sort_by(|a, b| b.score.total_cmp(&a.score));
    candidates.truncate(MAX_NMS);
    let mut kept: Vec<Detection> = Vec::new();
    for candidate in candidates {
        let overlaps = kept.iter().any(|k| {
            (config.agnostic || k.class == candidate.class)
                && box_iou(&k.bbox, &candidate.bbox) > config.iou
        });
        if !overlaps {
            kept.push(candidate);
            if kept.len() == config.max_det {
                break;
            }
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(1, 4 + 2, A)` predictions from (cx, cy, w, h, p0, p1) rows.
    fn predictions(rows: &[[f32; 6]]) -> Tensor {
        let flat: Vec<f32> = rows.iter().flatten().copied().collect();
        Tensor::from_slice(&flat)
            .view([rows.len() as i64, 6])
            .transpose(0, 1)
            .unsqueeze(0)
    }

    #[test]
    fn overlapping_boxes_of_one_class_collapse_to_the_best() {
        let y = predictions(&[
            [50., 50., 20., 20., 0.9, 0.0],
            [51., 50., 20., 20., 0.8, 0.0], // same object, lower score
            [51., 50., 20., 20., 0.0, 0.7], // same place, other class: kept
            [150., 50., 20., 20., 0.6, 0.0], // elsewhere: kept
            [10., 10., 4., 4., 0.1, 0.2],   // under conf
        ]);
        let dets = &non_max_suppression(&y, &NmsConfig::predict())[0];
        let got: Vec<(usize, f32)> = dets.iter().map(|d| (d.class, d.score)).collect();
        assert_eq!(got, [(0, 0.9), (1, 0.7), (0, 0.6)]);
        assert_eq!(dets[0].bbox, [40., 40., 60., 60.]);
        let agnostic = NmsConfig {
            agnostic: true,
            ..NmsConfig::predict()
        };
        assert_eq!(non_max_suppression(&y, &agnostic)[0].len(), 2);
    }

    #[test]
    fn multi_label_emits_every_class_above_conf() {
        let y = predictions(&[[50., 50., 20., 20., 0.5, 0.4]]);
        let single = &non_max_suppression(&y, &NmsConfig::predict())[0];
        assert_eq!(single.len(), 1);
        let multi = &non_max_suppression(&y, &NmsConfig::validate())[0];
        assert_eq!(multi.iter().map(|d| d.class).collect::<Vec<_>>(), [0, 1]);
        let capped = NmsConfig {
            max_det: 1,
            ..NmsConfig::validate()
        };
        assert_eq!(non_max_suppression(&y, &capped)[0].len(), 1);
        let nothing = predictions(&[[50., 50., 20., 20., 0.0001, 0.0]]);
        assert!(non_max_suppression(&nothing, &NmsConfig::predict())[0].is_empty());
    }

    #[test]
    fn the_top_k_keeps_every_class_of_the_best_anchors_without_suppression() {
        // Corners this time (x1, y1, x2, y2): the end-to-end head's decoding.
        let y = predictions(&[
            [40., 40., 60., 60., 0.9, 0.5], // an anchor good for both classes
            [41., 40., 61., 60., 0.8, 0.0], // overlaps the first: not suppressed
            [0., 0., 5., 5., 0.1, 0.2],     // under conf 0.25
        ]);
        let rows = crate::model::top_k(&y, 300);
        // k is capped at the anchor count.
        assert_eq!(rows.size(), [1, 3, 6]);
        let dets = &top_k_detections(&rows, &NmsConfig::predict())[0];
        let got: Vec<(usize, f32)> = dets.iter().map(|d| (d.class, d.score)).collect();
        assert_eq!(got, [(0, 0.9), (0, 0.8), (1, 0.5)]);
        assert_eq!(dets[2].bbox, [40., 40., 60., 60.]);
        // Among the 3 best anchors, the 3 best (anchor, class) pairs: the third
        // anchor's 0.2 loses to the first anchor's 0.5.
        let all = &top_k_detections(&rows, &NmsConfig::validate())[0];
        assert_eq!(all.len(), 3);
        let capped = NmsConfig {
            max_det: 2,
            ..NmsConfig::validate()
        };
        assert_eq!(top_k_detections(&rows, &capped)[0].len(), 2);
    }
}
