//! Box overlap on tensors: IoU and Complete-IoU (Ultralytics `bbox_iou`, eps 1e-7).

use std::f64::consts::PI;

use tch::Tensor;

const EPS: f64 = 1e-7;

/// IoU, or with `complete` the CIoU (IoU minus the normalised centre distance and
/// the aspect-ratio consistency term), of `xyxy` boxes broadcast along the
/// leading axes; the last axis holds the 4 coordinates. Result has a trailing
/// axis of 1.
pub fn bbox_iou(box1: &Tensor, box2: &Tensor, complete: bool) -> Tensor {
    let a = box1.chunk(4, -1);
    let b = box2.chunk(4, -1);
    let (a_x1, a_y1, a_x2, a_y2) = (&a[0], &a[1], &a[2], &a[3]);
    let (b_x1, b_y1, b_x2, b_y2) = (&b[0], &b[1], &b[2], &b[3]);
    let w1 = a_x2 - a_x1;
    let h1 = (a_y2 - a_y1).clamp_min(EPS);
    let w2 = b_x2 - b_x1;
    let h2 = (b_y2 - b_y1).clamp_min(EPS);
    let inter = (a_x2.minimum(b_x2) - a_x1.maximum(b_x1)).clamp_min(0.0)
        * (a_y2.minimum(b_y2) - a_y1.maximum(b_y1)).clamp_min(0.0);
    let union = &w1 * &h1 + &w2 * &h2 - &inter + EPS;
    let iou = inter / union;
    if !complete {
        return iou;
    }
    let cw = a_x2.maximum(b_x2) - a_x1.minimum(b_x1);
    let ch = a_y2.maximum(b_y2) - a_y1.minimum(b_y1);
    let c2 = cw.square() + ch.square() + EPS;
    let rho2 = ((b_x1 + b_x2 - a_x1 - a_x2).square() + (b_y1 + b_y2 - a_y1 - a_y2).square()) / 4.0;
    let v = ((&w2 / &h2).atan() - (&w1 / &h1).atan()).square() * (4.0 / (PI * PI));
    // The trade-off weight is a constant for the gradient, as in the CIoU paper.
    let alpha = tch::no_grad(|| &v / (&v - &iou + (1.0 + EPS)));
    iou - (rho2 / c2 + v * alpha)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(v: &[f32]) -> Tensor {
        Tensor::from_slice(v).view([-1, 4])
    }

    #[test]
    fn identical_boxes_have_ciou_one() {
        let b = t(&[0., 0., 10., 20.]);
        assert!((bbox_iou(&b, &b, true).double_value(&[0, 0]) - 1.0).abs() < 1e-6);
    }

    #[test]
    fn known_values() {
        // Two 10x10 boxes offset by 5 in x: IoU = 50 / 150.
        let a = t(&[0., 0., 10., 10.]);
        let b = t(&[5., 0., 15., 10.]);
        let iou = bbox_iou(&a, &b, false).double_value(&[0, 0]);
        assert!((iou - 1.0 / 3.0).abs() < 1e-6);
        // Same shape (v = 0): CIoU = IoU - ρ²/c² = 1/3 - 25/(15² + 10²).
        let ciou = bbox_iou(&a, &b, true).double_value(&[0, 0]);
        assert!((ciou - (1.0 / 3.0 - 25.0 / 325.0)).abs() < 1e-6, "{ciou}");
        // Disjoint boxes: negative CIoU, zero IoU.
        let c = t(&[20., 20., 30., 30.]);
        assert_eq!(bbox_iou(&a, &c, false).double_value(&[0, 0]), 0.0);
        assert!(bbox_iou(&a, &c, true).double_value(&[0, 0]) < 0.0);
    }
}
