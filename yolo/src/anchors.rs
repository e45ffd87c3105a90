//! Anchor points and the box encodings of the YOLOv8 head (Ultralytics `tal.py`).

use tch::{Device, Kind, Tensor};

/// The strides of the three detection levels P3, P4, P5.
pub const STRIDES: [i64; 3] = [8, 16, 32];

/// Grid-cell centres (x + 0.5, y + 0.5) of every level in that level's grid
/// units, row-major (y outer), levels in P3, P4, P5 order: `(A, 2)` points and
/// `(A, 1)` strides. `sizes` are the (height, width) of each level's map.
pub fn make_anchors(sizes: &[(i64, i64)], strides: &[i64], device: Device) -> (Tensor, Tensor) {
    let mut points = Vec::with_capacity(sizes.len());
    let mut stride_column = Vec::with_capacity(sizes.len());
    for (&(h, w), &stride) in sizes.iter().zip(strides) {
        let options = (Kind::Float, device);
        let sx = Tensor::arange(w, options) + 0.5;
        let sy = Tensor::arange(h, options) + 0.5;
        let grid = Tensor::meshgrid_indexing(&[&sy, &sx], "ij");
        let xy = Tensor::stack(&[grid[1].flatten(0, -1), grid[0].flatten(0, -1)], -1);
        points.push(xy);
        stride_column.push(Tensor::full([h * w, 1], stride as f64, options));
    }
    (Tensor::cat(&points, 0), Tensor::cat(&stride_column, 0))
}

/// Distances (left, top, right, bottom) from anchor points to boxes, along `dim`
/// = the axis of size 4, into boxes: `xywh` (centre and size) or `xyxy`.
pub fn dist2bbox(distance: &Tensor, anchor_points: &Tensor, xywh: bool, dim: i64) -> Tensor {
    let parts = distance.chunk(2, dim);
    let x1y1 = anchor_points - &parts[0];
    let x2y2 = anchor_points + &parts[1];
    if xywh {
        let centre = (&x1y1 + &x2y2) / 2.0;
        let size = &x2y2 - &x1y1;
        Tensor::cat(&[centre, size], dim)
    } else {
        Tensor::cat(&[x1y1, x2y2], dim)
    }
}

/// Boxes (`xyxy`, last axis) into distances from anchor points, clamped to
/// `[0, max]` as the DFL target needs.
pub fn bbox2dist(anchor_points: &Tensor, bbox: &Tensor, max: f64) -> Tensor {
    let parts = bbox.chunk(2, -1);
    Tensor::cat(&[anchor_points - &parts[0], &parts[1] - anchor_points], -1).clamp(0.0, max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchors_are_cell_centres_level_by_level() {
        let (points, strides) = make_anchors(&[(2, 3), (1, 1)], &[8, 16], Device::Cpu);
        assert_eq!(points.size(), [7, 2]);
        let flat: Vec<f32> = Vec::try_from(points.flatten(0, -1)).unwrap();
        assert_eq!(&flat[..6], &[0.5, 0.5, 1.5, 0.5, 2.5, 0.5]);
        assert_eq!(&flat[6..8], &[0.5, 1.5]);
        assert_eq!(&flat[12..14], &[0.5, 0.5]);
        let s: Vec<f32> = Vec::try_from(strides.flatten(0, -1)).unwrap();
        assert_eq!(s, [8., 8., 8., 8., 8., 8., 16.]);
    }

    #[test]
    fn distances_and_boxes_round_trip() {
        let anchors = Tensor::from_slice(&[4.0f32, 5.0]).view([1, 2]);
        let boxes = Tensor::from_slice(&[1.0f32, 2.0, 6.0, 9.0]).view([1, 4]);
        let dist = bbox2dist(&anchors, &boxes, 15.0);
        let d: Vec<f32> = Vec::try_from(dist.flatten(0, -1)).unwrap();
        assert_eq!(d, [3.0, 3.0, 2.0, 4.0]);
        let back: Vec<f32> =
            Vec::try_from(dist2bbox(&dist, &anchors, false, -1).flatten(0, -1)).unwrap();
        assert_eq!(back, [1.0, 2.0, 6.0, 9.0]);
        let xywh: Vec<f32> =
            Vec::try_from(dist2bbox(&dist, &anchors, true, -1).flatten(0, -1)).unwrap();
        assert_eq!(xywh, [3.5, 5.5, 5.0, 7.0]);
    }
}
