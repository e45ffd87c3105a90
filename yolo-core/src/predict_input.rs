//! The predictor's input as Ultralytics builds it, byte for byte: its
//! `LetterBox` (scale to fit, the minimum rectangle of stride multiples when
//! every image of the batch has one shape, padding split with
//! `round(d ∓ 0.1)`, grey 114) with OpenCV's `INTER_LINEAR` resize, and
//! `scale_boxes` back to the image. Training keeps its own augmentation
//! (`augment`); this is the path of `predict` and `serve`.

use image::RgbImage;

use crate::metrics::Xyxy;

/// The padding grey.
const FILL: u8 = 114;
/// OpenCV's fixed-point weights: 11 fractional bits.
const COEF_SCALE: f32 = 2048.0;

/// Where an image goes in the model's input, and back.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PredictLetterbox {
    /// The original image.
    pub orig_w: u32,
    pub orig_h: u32,
    /// The resized image inside the input.
    pub new_w: u32,
    pub new_h: u32,
    /// The model's input.
    pub input_w: u32,
    pub input_h: u32,
    pub left: u32,
    pub top: u32,
}

impl PredictLetterbox {
    /// Ultralytics' `LetterBox(imgsz, auto, stride)` (scale-up allowed,
    /// centred) for a `w x h` image: with `auto` (one image, or a batch of
    /// one shape) the input is the smallest rectangle of multiples of
    /// `stride` that holds the fitted image, else `imgsz x imgsz`.
    pub fn new(w: u32, h: u32, imgsz: u32, stride: u32, auto: bool) -> PredictLetterbox {
        assert!(
            w > 0 && h > 0 && imgsz > 0,
            "letterbox of an empty image or to size 0"
        );
        let r = (imgsz as f64 / h as f64).min(imgsz as f64 / w as f64);
        // Python's round() is half-to-even; thin images keep one pixel.
        let new_w = ((w as f64 * r).round_ties_even() as u32).max(1);
        let new_h = ((h as f64 * r).round_ties_even() as u32).max(1);
        let (mut dw, mut dh) = (imgsz.saturating_sub(new_w), imgsz.saturating_sub(new_h));
        if auto {
            dw %= stride;
            dh %= stride;
        }
        let (half_w, half_h) = (dw as f64 / 2.0, dh as f64 / 2.0);
        let side = |d: f64, shift: f64| (d + shift).round_ties_even() as u32;
        let (left, right) = (side(half_w, -0.1), side(half_w, 0.1));
        let (top, bottom) = (side(half_h, -0.1), side(half_h, 0.1));
        PredictLetterbox {
            orig_w: w,
            orig_h: h,
            new_w,
            new_h,
            input_w: new_w + left + right,
            input_h: new_h + top + bottom,
            left,
            top,
        }
    }

    /// The model's input: the image resized as OpenCV's `INTER_LINEAR` does
    /// (not at all when the size is kept), padded with grey.
    pub fn apply(&self, image: &RgbImage) -> RgbImage {
        assert_eq!(image.dimensions(), (self.orig_w, self.orig_h));
        let resized;
        let inner = if (self.new_w, self.new_h) == (self.orig_w, self.orig_h) {
            image
        } else {
            resized = resize_linear(image, self.new_w, self.new_h);
            &resized
        };
        let mut out = RgbImage::from_pixel(self.input_w, self.input_h, image::Rgb([FILL; 3]));
        let row = self.new_w as usize * 3;
        let out_stride = self.input_w as usize * 3;
        let out_raw: &mut [u8] = &mut out;
        for (y, src) in inner.as_raw().chunks_exact(row).enumerate() {
            let start = (self.top as usize + y) * out_stride + self.left as usize * 3;
            out_raw[start..start + row].copy_from_slice(src);
        }
        out
    }

    /// Ultralytics 8.4's `scale_boxes`: a box on the input back onto the
    /// image (the padding taken off, each axis divided by its own gain from
    /// the rounded size), clipped to it.
    pub fn to_original(&self, b: Xyxy) -> Xyxy {
        let (w, h) = (self.orig_w as f32, self.orig_h as f32);
        let gain_x = self.new_w as f32 / w;
        let gain_y = self.new_h as f32 / h;
        let (pad_x, pad_y) = (self.left as f32, self.top as f32);
        [
            ((b[0] - pad_x) / gain_x).clamp(0.0, w),
            ((b[1] - pad_y) / gain_y).clamp(0.0, h),
            ((b[2] - pad_x) / gain_x).clamp(0.0, w),
            ((b[3] - pad_y) / gain_y).clamp(0.0, h),
        ]
    }
}

/// One axis of OpenCV's bilinear map: for each destination index the first
/// source index and the two 11-bit weights.
struct Taps {
    first: Vec<usize>,
    second: Vec<usize>,
    weights: Vec<[i32; 2]>,
}

/// Half-pixel centres (`(d + 0.5)·scale − 0.5`, in float as OpenCV computes
/// it), weights rounded to 11 bits. Along x OpenCV clamps the position at the
/// edges (weight 1 on the edge pixel); along y it keeps the fraction and
/// repeats the edge row instead (`clamp_fraction` false).
fn taps(src: u32, dst: u32, clamp_fraction: bool) -> Taps {
    let scale = src as f64 / dst as f64;
    let last = src as i64 - 1;
    let mut taps = Taps {
        first: Vec::with_capacity(dst as usize),
        second: Vec::with_capacity(dst as usize),
        weights: Vec::with_capacity(dst as usize),
    };
    for d in 0..dst {
        let position = ((d as f64 + 0.5) * scale - 0.5) as f32;
        let mut s = position.floor() as i64;
        let mut f = position - s as f32;
        if clamp_fraction {
            if s < 0 {
                (s, f) = (0, 0.0);
            }
            if s >= last {
                (s, f) = (last, 0.0);
            }
        }
        taps.first.push(s.clamp(0, last) as usize);
        taps.second.push((s + 1).clamp(0, last) as usize);
        // OpenCV's saturate_cast<short>: round half to even.
        let w0 = ((1.0 - f) * COEF_SCALE).round_ties_even() as i32;
        let w1 = (f * COEF_SCALE).round_ties_even() as i32;
        taps.weights.push([w0, w1]);
    }
    taps
}

/// OpenCV's `cv::resize(.., INTER_LINEAR)` of 8-bit RGB, bit for bit: a
/// horizontal pass into 11-bit fixed point, then the vertical blend as its
/// SIMD kernel computes it, `((w0·(a>>4))>>16 + (w1·(b>>4))>>16 + 2) >> 2`.
/// (Exact halving, which OpenCV hands to its area resize, gives the same
/// values: each output is the rounded mean of four pixels either way.)
pub fn resize_linear(src: &RgbImage, w: u32, h: u32) -> RgbImage {
    let (sw, sh) = src.dimensions();
    assert!(
        sw > 0 && sh > 0 && w > 0 && h > 0,
        "resize of or to an empty image"
    );
    let xs = taps(sw, w, true);
    let ys = taps(sh, h, false);
    let raw = src.as_raw();
    let row_len = w as usize * 3;
    // Each source row resized horizontally, computed once.
    let horizontal = |sy: usize| -> Vec<i32> {
        let row = &raw[sy * sw as usize * 3..(sy + 1) * sw as usize * 3];
        let mut out = Vec::with_capacity(row_len);
        for dx in 0..w as usize {
            let (a, b) = (xs.first[dx] * 3, xs.second[dx] * 3);
            let [w0, w1] = xs.weights[dx];
            for c in 0..3 {
                out.push(row[a + c] as i32 * w0 + row[b + c] as i32 * w1);
            }
        }
        out
    };
    let mut rows: Vec<Option<Vec<i32>>> = vec![None; sh as usize];
    let mut out = Vec::with_capacity(row_len * h as usize);
    for dy in 0..h as usize {
        let (a, b) = (ys.first[dy], ys.second[dy]);
        for index in [a, b] {
            if rows[index].is_none() {
                rows[index] = Some(horizontal(index));
            }
        }
        let [w0, w1] = ys.weights[dy];
        let (r0, r1) = (
            rows[a].as_ref().expect("row computed"),
            rows[b].as_ref().expect("row computed"),
        );
        for (p, q) in r0.iter().zip(r1) {
            let v = (((w0 * (p >> 4)) >> 16) + ((w1 * (q >> 4)) >> 16) + 2) >> 2;
            out.push(v.clamp(0, 255) as u8);
        }
        // Rows above the ones still needed are dropped.
        for stale in rows.iter_mut().take(a) {
            *stale = None;
        }
    }
    RgbImage::from_raw(w, h, out).expect("w x h x 3 values")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_minimum_rectangle_and_its_padding_follow_ultralytics() {
        // 640x480 at 320: fitted to 320x240, rect mode pads 16 rows (8 + 8).
        let lb = PredictLetterbox::new(640, 480, 320, 32, true);
        assert_eq!(
            (lb.new_w, lb.new_h, lb.input_w, lb.input_h),
            (320, 240, 320, 256)
        );
        assert_eq!((lb.left, lb.top), (0, 8));
        // Square mode pads to 320x320.
        let square = PredictLetterbox::new(640, 480, 320, 32, false);
        assert_eq!((square.input_w, square.input_h, square.top), (320, 320, 40));
        // An odd padding splits round(d - 0.1) / round(d + 0.1): 333x500 at 320
        // is 213x320, dw 107 mod 32 = 11: 5 left, 6 right.
        let odd = PredictLetterbox::new(333, 500, 320, 32, true);
        assert_eq!((odd.new_w, odd.left, odd.input_w), (213, 5, 224));
        // Boxes go back through each axis's own gain, clipped.
        let back = odd.to_original([5.0, 0.0, 218.0, 330.0]);
        assert_eq!(back, [0.0, 0.0, 333.0, 500.0]);
    }

    #[test]
    fn halving_is_the_rounded_mean_of_four_and_a_kept_size_is_a_copy() {
        let src = RgbImage::from_fn(4, 2, |x, y| image::Rgb([(x * 60 + y) as u8, 10, 255]));
        let half = resize_linear(&src, 2, 1);
        // (0 + 60 + 1 + 61 + 2) >> 2 = 31; (120 + 180 + 121 + 181 + 2) >> 2 = 151.
        assert_eq!(half.get_pixel(0, 0).0, [31, 10, 255]);
        assert_eq!(half.get_pixel(1, 0).0, [151, 10, 255]);
        let lb = PredictLetterbox::new(4, 2, 4, 32, false);
        let input = lb.apply(&src);
        assert_eq!(input.dimensions(), (4, 4));
        assert_eq!(input.get_pixel(0, 0).0, [FILL; 3]);
        assert_eq!(input.get_pixel(3, 2).0, src.get_pixel(3, 1).0);
    }

    #[test]
    fn upscaling_blends_neighbours_and_repeats_the_edges() {
        let src = RgbImage::from_fn(2, 2, |x, y| image::Rgb([(x * 100 + y * 50) as u8; 3]));
        let big = resize_linear(&src, 4, 4);
        let column: Vec<u8> = (0..4).map(|x| big.get_pixel(x, 0).0[0]).collect();
        // Positions -0.25, 0.25, 0.75, 1.25: clamped, 25 %, 75 %, clamped.
        assert_eq!(column, [0, 25, 75, 100]);
        let rows: Vec<u8> = (0..4).map(|y| big.get_pixel(0, y).0[0]).collect();
        // Vertically the edge rows repeat (fractions kept), and the fixed-point
        // blend rounds 12.5 and 37.5 up: what cv2.resize gives.
        assert_eq!(rows, [0, 13, 38, 50]);
    }
}
