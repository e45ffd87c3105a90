//! The image side of YOLOv8 training and inference data, after Ultralytics
//! (`ultralytics/data/augment.py`, `data/base.py`, 8.3.x): `LetterBox`,
//! `load_image`, `Mosaic._mosaic4`, `RandomPerspective`, `RandomHSV`,
//! `RandomFlip`, and a small blur standing in for the optional Albumentations
//! step, composed as `v8_transforms` composes them.
//!
//! Boxes are `xyxy` in pixels of the image they travel with. Images are RGB
//! (Ultralytics works in BGR; every step here is channel-order agnostic except
//! the HSV conversion, which is the RGB form of OpenCV's BGR one).
//!
//! Everything is pure Rust on `image` and `imageproc`; the per-pixel work uses
//! flat buffers and lookup tables and allocates nothing per pixel.

use std::borrow::Cow;

use image::imageops::{self, FilterType};
use image::{Rgb, RgbImage};
use imageproc::geometric_transformations::{warp_into, Interpolation, Projection};
use rand::Rng;

/// A box as `[x1, y1, x2, y2]` in pixels.
pub type Xyxy = [f32; 4];

/// Ultralytics' padding grey.
pub const FILL: u8 = 114;

/// An image with its boxes and their class indices (`boxes.len() == classes.len()`).
#[derive(Clone, Debug)]
pub struct Labeled {
    pub image: image::RgbImage,
    pub boxes: Vec<Xyxy>,
    pub classes: Vec<usize>,
}

/// Training augmentation hyperparameters, named as in Ultralytics `default.yaml`.
#[derive(Clone, Debug, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AugmentConfig {
    /// Probability of a 4-image mosaic.
    pub mosaic: f32,
    /// Rotation range, ± degrees.
    pub degrees: f32,
    /// Translation range, ± fraction of the output size.
    pub translate: f32,
    /// Scale gain range, 1 ± scale.
    pub scale: f32,
    /// Shear range, ± degrees.
    pub shear: f32,
    /// Hue gain (fraction of the hue circle).
    pub hsv_h: f32,
    /// Saturation gain (fraction).
    pub hsv_s: f32,
    /// Value gain (fraction).
    pub hsv_v: f32,
    /// Probability of a small box blur (kernel 3, 5 or 7), like Albumentations' `Blur(p=0.01)`.
    pub blur: f32,
    /// Probability of a left-right flip.
    pub fliplr: f32,
    /// Probability of an up-down flip.
    pub flipud: f32,
}

impl Default for AugmentConfig {
    /// Ultralytics' defaults, except `fliplr` 0 (mirrored text is not a road
    /// sign) and `blur` 0.01 (Albumentations' `Blur` probability).
    fn default() -> Self {
        Self {
            mosaic: 1.0,
            degrees: 0.0,
            translate: 0.1,
            scale: 0.5,
            shear: 0.0,
            hsv_h: 0.015,
            hsv_s: 0.7,
            hsv_v: 0.4,
            blur: 0.01,
            fliplr: 0.0,
            flipud: 0.0,
        }
    }
}

impl AugmentConfig {
    /// No augmentation at all: every probability and range is zero, so
    /// `train_sample` reduces to a letterbox to `s x s`.
    pub fn none() -> Self {
        Self {
            mosaic: 0.0,
            degrees: 0.0,
            translate: 0.0,
            scale: 0.0,
            shear: 0.0,
            hsv_h: 0.0,
            hsv_s: 0.0,
            hsv_v: 0.0,
            blur: 0.0,
            fliplr: 0.0,
            flipud: 0.0,
        }
    }
}

/// How `letterbox` mapped the original image: `letterboxed = original * ratio + pad`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LetterboxInfo {
    pub ratio: f32,
    pub pad_x: f32,
    pub pad_y: f32,
}

impl LetterboxInfo {
    /// Ultralytics `scale_boxes`: a box on the letterboxed image back to the
    /// original image (subtract the padding, divide by the ratio, clip to
    /// `orig_w x orig_h`).
    pub fn to_original(&self, b: Xyxy, orig_w: u32, orig_h: u32) -> Xyxy {
        let (w, h) = (orig_w as f32, orig_h as f32);
        [
            ((b[0] - self.pad_x) / self.ratio).clamp(0.0, w),
            ((b[1] - self.pad_y) / self.ratio).clamp(0.0, h),
            ((b[2] - self.pad_x) / self.ratio).clamp(0.0, w),
            ((b[3] - self.pad_y) / self.ratio).clamp(0.0, h),
        ]
    }

    /// A box on the original image onto the letterboxed one.
    pub fn to_letterboxed(&self, b: Xyxy) -> Xyxy {
        [
            b[0] * self.ratio + self.pad_x,
            b[1] * self.ratio + self.pad_y,
            b[2] * self.ratio + self.pad_x,
            b[3] * self.ratio + self.pad_y,
        ]
    }
}

// ---------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------

/// Python's `random.uniform(a, b)`: `a + (b - a) * U[0, 1)`; never panics on `a == b`.
fn uniform(rng: &mut impl Rng, a: f64, b: f64) -> f64 {
    a + (b - a) * rng.gen::<f64>()
}

/// An image of `w x h` filled with the padding grey (one memset, no per-pixel loop).
fn filled(w: u32, h: u32) -> RgbImage {
    RgbImage::from_raw(w, h, vec![FILL; w as usize * h as usize * 3])
        .expect("buffer length matches the dimensions")
}

/// Copy the `w x h` region of `src` at `(sx, sy)` into `dst` at `(dx, dy)`, row by row.
#[allow(clippy::too_many_arguments)]
fn blit(dst: &mut RgbImage, dx: u32, dy: u32, src: &RgbImage, sx: u32, sy: u32, w: u32, h: u32) {
    if w == 0 || h == 0 {
        return;
    }
    debug_assert!(dx + w <= dst.width() && dy + h <= dst.height());
    debug_assert!(sx + w <= src.width() && sy + h <= src.height());
    let dst_stride = dst.width() as usize * 3;
    let src_stride = src.width() as usize * 3;
    let n = w as usize * 3;
    let src_raw = src.as_raw();
    let dst_raw: &mut [u8] = dst;
    for row in 0..h as usize {
        let s0 = (sy as usize + row) * src_stride + sx as usize * 3;
        let d0 = (dy as usize + row) * dst_stride + dx as usize * 3;
        dst_raw[d0..d0 + n].copy_from_slice(&src_raw[s0..s0 + n]);
    }
}

/// 3x3 row-major matrix product `a @ b`.
fn matmul3(a: &[f64; 9], b: &[f64; 9]) -> [f64; 9] {
    let mut out = [0.0; 9];
    for i in 0..3 {
        for j in 0..3 {
            out[i * 3 + j] = (0..3).map(|k| a[i * 3 + k] * b[k * 3 + j]).sum();
        }
    }
    out
}

const IDENTITY3: [f64; 9] = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0];

// ---------------------------------------------------------------------------
// Letterbox and load-time resize
// ---------------------------------------------------------------------------

/// Ultralytics `LetterBox` (auto=False, center=True) to exactly `new_w x new_h`:
/// `r = min(new_h/h, new_w/w)` (at most 1 when `scaleup` is false), the image
/// resized to `round(w r) x round(h r)` (Triangle filter, the INTER_LINEAR
/// stand-in; skipped when the size is unchanged), padding split with
/// `round(d - 0.1)` before and `round(d + 0.1)` after, filled with grey 114.
pub fn letterbox(
    img: &image::RgbImage,
    new_w: u32,
    new_h: u32,
    scaleup: bool,
) -> (image::RgbImage, LetterboxInfo) {
    let (w, h) = img.dimensions();
    assert!(w > 0 && h > 0, "letterbox of an empty image");
    assert!(new_w > 0 && new_h > 0, "letterbox to an empty size");
    let mut r = (new_h as f64 / h as f64).min(new_w as f64 / w as f64);
    if !scaleup {
        r = r.min(1.0);
    }
    // Python's round() is round-half-even.
    let uw = ((w as f64 * r).round_ties_even() as u32).clamp(1, new_w);
    let uh = ((h as f64 * r).round_ties_even() as u32).clamp(1, new_h);
    let dw = (new_w - uw) as f64 / 2.0;
    let dh = (new_h - uh) as f64 / 2.0;
    let left = (dw - 0.1).round_ties_even().max(0.0) as u32;
    let top = (dh - 0.1).round_ties_even().max(0.0) as u32;
    let resized: Cow<RgbImage> = if (uw, uh) != (w, h) {
        Cow::Owned(imageops::resize(img, uw, uh, FilterType::Triangle))
    } else {
        Cow::Borrowed(img)
    };
    let mut out = filled(new_w, new_h);
    blit(&mut out, left, top, &resized, 0, 0, uw, uh);
    let info = LetterboxInfo {
        ratio: r as f32,
        pad_x: left as f32,
        pad_y: top as f32,
    };
    (out, info)
}

/// Ultralytics `load_image` (rect mode): resize so the long side is `imgsz`,
/// aspect kept, the other side `min(ceil(side * r), imgsz)`; boxes scaled
/// along. Unchanged (a clone) when the long side already is `imgsz`.
pub fn resize_long_side(l: &Labeled, imgsz: u32) -> Labeled {
    let (w0, h0) = l.image.dimensions();
    assert!(
        w0 > 0 && h0 > 0 && imgsz > 0,
        "resize of an empty image or to size 0"
    );
    let r = imgsz as f64 / w0.max(h0) as f64;
    if r == 1.0 {
        return l.clone();
    }
    let w = ((w0 as f64 * r).ceil() as u32).clamp(1, imgsz);
    let h = ((h0 as f64 * r).ceil() as u32).clamp(1, imgsz);
    let image = imageops::resize(&l.image, w, h, FilterType::Triangle);
    let sx = w as f32 / w0 as f32;
    let sy = h as f32 / h0 as f32;
    let boxes = l
        .boxes
        .iter()
        .map(|b| [b[0] * sx, b[1] * sy, b[2] * sx, b[3] * sy])
        .collect();
    Labeled {
        image,
        boxes,
        classes: l.classes.clone(),
    }
}

// ---------------------------------------------------------------------------
// Mosaic
// ---------------------------------------------------------------------------

/// Ultralytics `Mosaic._mosaic4`: four samples (each already resized to long
/// side `s`) around a centre `(xc, yc)` uniform in `[s/2, 3s/2)` on a `2s x 2s`
/// canvas of grey 114 — sample 0 top-left of the centre, 1 top-right, 2
/// bottom-left, 3 bottom-right, each cut where it leaves the canvas. Boxes are
/// shifted with their sample, clipped to the canvas, and those left with zero
/// area dropped.
pub fn mosaic4(samples: [&Labeled; 4], s: u32, rng: &mut impl rand::Rng) -> Labeled {
    assert!(s > 0, "mosaic of size 0");
    let s2 = 2 * s as i64;
    // Ultralytics: border = -imgsz // 2; centre = int(uniform(-border, 2s + border)).
    let b = (s as f64 / 2.0).ceil();
    let yc = uniform(rng, b, s2 as f64 - b) as i64;
    let xc = uniform(rng, b, s2 as f64 - b) as i64;

    let mut canvas = filled(s2 as u32, s2 as u32);
    let n_boxes: usize = samples.iter().map(|l| l.boxes.len()).sum();
    let mut boxes = Vec::with_capacity(n_boxes);
    let mut classes = Vec::with_capacity(n_boxes);
    let lim = s2 as f32;
    for (i, l) in samples.iter().enumerate() {
        let (w, h) = (l.image.width() as i64, l.image.height() as i64);
        // (x1a, y1a, x2a, y2a) on the canvas, (x1b, y1b) on the sample.
        let (x1a, y1a, x2a, y2a, x1b, y1b) = match i {
            0 => {
                let (x1a, y1a, x2a, y2a) = ((xc - w).max(0), (yc - h).max(0), xc, yc);
                (x1a, y1a, x2a, y2a, w - (x2a - x1a), h - (y2a - y1a))
            }
            1 => {
                let (x1a, y1a, x2a, y2a) = (xc, (yc - h).max(0), (xc + w).min(s2), yc);
                (x1a, y1a, x2a, y2a, 0, h - (y2a - y1a))
            }
            2 => {
                let (x1a, y1a, x2a, y2a) = ((xc - w).max(0), yc, xc, (yc + h).min(s2));
                (x1a, y1a, x2a, y2a, w - (x2a - x1a), 0)
            }
            _ => (xc, yc, (xc + w).min(s2), (yc + h).min(s2), 0, 0),
        };
        let (cw, ch) = ((x2a - x1a).max(0), (y2a - y1a).max(0));
        blit(
            &mut canvas,
            x1a as u32,
            y1a as u32,
            &l.image,
            x1b as u32,
            y1b as u32,
            cw as u32,
            ch as u32,
        );
        let padw = (x1a - x1b) as f32;
        let padh = (y1a - y1b) as f32;
        for (bx, &c) in l.boxes.iter().zip(&l.classes) {
            let nb = [
                (bx[0] + padw).clamp(0.0, lim),
                (bx[1] + padh).clamp(0.0, lim),
                (bx[2] + padw).clamp(0.0, lim),
                (bx[3] + padh).clamp(0.0, lim),
            ];
            if (nb[2] - nb[0]) * (nb[3] - nb[1]) > 0.0 {
                boxes.push(nb);
                classes.push(c);
            }
        }
    }
    Labeled {
        image: canvas,
        boxes,
        classes,
    }
}

// ---------------------------------------------------------------------------
// Random affine
// ---------------------------------------------------------------------------

/// Ultralytics `box_candidates`: `before` already multiplied by the scale gain.
fn box_candidate(before: &Xyxy, after: &Xyxy) -> bool {
    const EPS: f32 = 1e-16;
    let (w1, h1) = (before[2] - before[0], before[3] - before[1]);
    let (w2, h2) = (after[2] - after[0], after[3] - after[1]);
    let ar = (w2 / (h2 + EPS)).max(h2 / (w2 + EPS));
    w2 > 2.0 && h2 > 2.0 && w2 * h2 / (w1 * h1 + EPS) > 0.1 && ar < 100.0
}

/// Ultralytics `RandomPerspective` (perspective 0, i.e. affine):
/// `M = T @ S @ R @ C` with C moving the input centre to the origin, R a
/// rotation of `uniform(±degrees)` with scale `uniform(1 ± scale)`, S shears of
/// `uniform(±shear)` degrees, T moving the origin to
/// `uniform(0.5 ± translate) * (out_w, out_h)`. The image is warped bilinearly
/// to `out_w x out_h` with grey 114 outside; it is copied untouched when
/// `M` is the identity, the border is `(0, 0)` and the size is unchanged.
/// Boxes: the four corners through `M`, their min/max, clipped to the output,
/// then kept only if `w, h > 2` px, area over (original area × scale²) > 0.1
/// and aspect < 100.
///
/// `border_x`, `border_y` are Ultralytics' border (−s/2 after a mosaic, 0
/// otherwise); the output size is `out_w x out_h` (Ultralytics derives it as
/// input + 2·border).
pub fn random_perspective(
    l: &Labeled,
    cfg: &AugmentConfig,
    out_w: u32,
    out_h: u32,
    border_x: i32,
    border_y: i32,
    rng: &mut impl rand::Rng,
) -> Labeled {
    let (w, h) = l.image.dimensions();
    let c = [
        1.0,
        0.0,
        -(w as f64) / 2.0,
        0.0,
        1.0,
        -(h as f64) / 2.0,
        0.0,
        0.0,
        1.0,
    ];

    let degrees = cfg.degrees as f64;
    let a = uniform(rng, -degrees, degrees).to_radians();
    let sc = uniform(rng, 1.0 - cfg.scale as f64, 1.0 + cfg.scale as f64);
    // cv2.getRotationMatrix2D(angle=a, center=(0, 0), scale=sc)
    let (alpha, beta) = (sc * a.cos(), sc * a.sin());
    let r = [alpha, beta, 0.0, -beta, alpha, 0.0, 0.0, 0.0, 1.0];

    let shear = cfg.shear as f64;
    let shx = uniform(rng, -shear, shear).to_radians().tan();
    let shy = uniform(rng, -shear, shear).to_radians().tan();
    let sm = [1.0, shx, 0.0, shy, 1.0, 0.0, 0.0, 0.0, 1.0];

    let t = cfg.translate as f64;
    let tx = uniform(rng, 0.5 - t, 0.5 + t) * out_w as f64;
    let ty = uniform(rng, 0.5 - t, 0.5 + t) * out_h as f64;
    let tm = [1.0, 0.0, tx, 0.0, 1.0, ty, 0.0, 0.0, 1.0];

    let m = matmul3(&tm, &matmul3(&sm, &matmul3(&r, &c)));

    let unchanged = border_x == 0 && border_y == 0 && m == IDENTITY3 && (out_w, out_h) == (w, h);
    let image = if unchanged {
        l.image.clone()
    } else {
        let m32 = m.map(|v| v as f32);
        match Projection::from_matrix(m32) {
            Some(p) => {
                let mut out = RgbImage::new(out_w, out_h);
                warp_into(
                    &l.image,
                    &p,
                    Interpolation::Bilinear,
                    Rgb([FILL; 3]),
                    &mut out,
                );
                out
            }
            // A degenerate scale (scale gain 0): nothing survives.
            None => {
                return Labeled {
                    image: filled(out_w, out_h),
                    boxes: Vec::new(),
                    classes: Vec::new(),
                }
            }
        }
    };

    let (ow, oh) = (out_w as f32, out_h as f32);
    let sc32 = sc as f32;
    let apply = |x: f32, y: f32| -> (f32, f32) {
        let (x, y) = (x as f64, y as f64);
        (
            (m[0] * x + m[1] * y + m[2]) as f32,
            (m[3] * x + m[4] * y + m[5]) as f32,
        )
    };
    let mut boxes = Vec::with_capacity(l.boxes.len());
    let mut classes = Vec::with_capacity(l.boxes.len());
    for (b, &cls) in l.boxes.iter().zip(&l.classes) {
        let corners = [
            apply(b[0], b[1]),
            apply(b[2], b[3]),
            apply(b[0], b[3]),
            apply(b[2], b[1]),
        ];
        let mut nb = [
            f32::INFINITY,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NEG_INFINITY,
        ];
        for (x, y) in corners {
            nb[0] = nb[0].min(x);
            nb[1] = nb[1].min(y);
            nb[2] = nb[2].max(x);
            nb[3] = nb[3].max(y);
        }
        let nb = [
            nb[0].clamp(0.0, ow),
            nb[1].clamp(0.0, oh),
            nb[2].clamp(0.0, ow),
            nb[3].clamp(0.0, oh),
        ];
        let before = [b[0] * sc32, b[1] * sc32, b[2] * sc32, b[3] * sc32];
        if box_candidate(&before, &nb) {
            boxes.push(nb);
            classes.push(cls);
        }
    }
    Labeled {
        image,
        boxes,
        classes,
    }
}

// ---------------------------------------------------------------------------
// HSV
// ---------------------------------------------------------------------------

const HSV_SHIFT: u32 = 12;

/// OpenCV's fixed-point division tables for 8-bit RGB→HSV (hue range 180).
struct HsvDivTables {
    sdiv: [i32; 256],
    hdiv: [i32; 256],
}

impl HsvDivTables {
    fn new() -> Self {
        let mut sdiv = [0i32; 256];
        let mut hdiv = [0i32; 256];
        for i in 1..256 {
            // saturate_cast<int>(double) rounds half to even.
            sdiv[i] = ((255u32 << HSV_SHIFT) as f64 / i as f64).round_ties_even() as i32;
            hdiv[i] = ((180u32 << HSV_SHIFT) as f64 / (6.0 * i as f64)).round_ties_even() as i32;
        }
        Self { sdiv, hdiv }
    }

    /// OpenCV `COLOR_RGB2HSV` for 8-bit: H in 0..180, S and V in 0..=255.
    #[inline]
    fn rgb_to_hsv(&self, r: u8, g: u8, b: u8) -> (u8, u8, u8) {
        let (r, g, b) = (r as i32, g as i32, b as i32);
        let v = r.max(g).max(b);
        let vmin = r.min(g).min(b);
        let diff = v - vmin;
        let half = 1 << (HSV_SHIFT - 1);
        let s = (diff * self.sdiv[v as usize] + half) >> HSV_SHIFT;
        let h = if v == r {
            g - b
        } else if v == g {
            b - r + 2 * diff
        } else {
            r - g + 4 * diff
        };
        let mut h = (h * self.hdiv[diff as usize] + half) >> HSV_SHIFT;
        if h < 0 {
            h += 180;
        }
        (h.clamp(0, 255) as u8, s as u8, v as u8)
    }
}

/// Round half to even for `0 <= x < 2^22` without a libm call (baseline x86-64
/// has no `roundss`): adding 1.5 * 2^23 leaves no fractional bits.
#[inline(always)]
fn rint_small(x: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0;
    (x + MAGIC) - MAGIC
}

/// OpenCV `COLOR_HSV2RGB` for 8-bit (hue range 180), via its float path
/// (`HSV2RGB_native`, then `saturate_cast<uchar>(x * 255)`).
#[inline]
fn hsv_to_rgb(h: u8, s: u8, v: u8) -> (u8, u8, u8) {
    let s = s as f32 * (1.0 / 255.0);
    let v = v as f32 * (1.0 / 255.0);
    let (r, g, b) = if s == 0.0 {
        (v, v, v)
    } else {
        // h in [0, 255] * 6/180 = [0, 8.5]: fmod(h, 6) is one exact subtraction.
        let mut h = h as f32 * (6.0 / 180.0);
        if h >= 6.0 {
            h -= 6.0;
        }
        let sector = h as usize; // h >= 0: truncation is floor
        h -= sector as f32;
        let (sector, h) = if sector < 6 { (sector, h) } else { (0, 0.0) };
        let tab = [
            v,
            v * (1.0 - s),
            v * (1.0 - s * h),
            v * (1.0 - s * (1.0 - h)),
        ];
        // OpenCV's sector_data gives (b, g, r) indices into tab.
        const SECTOR: [[usize; 3]; 6] = [
            [1, 3, 0],
            [1, 0, 2],
            [3, 0, 1],
            [0, 2, 1],
            [0, 1, 3],
            [2, 1, 0],
        ];
        let [bi, gi, ri] = SECTOR[sector];
        (tab[ri], tab[gi], tab[bi])
    };
    let q = |x: f32| rint_small((x * 255.0).clamp(0.0, 255.0)) as u8;
    (q(r), q(g), q(b))
}

/// Ultralytics `RandomHSV` (8.3.x): gains `r = uniform(-1, 1, 3) * (hsv_h, hsv_s, hsv_v)`;
/// lookup tables hue `(x + r_h * 180) mod 180`, saturation `clip(x (1 + r_s))`
/// with 0 kept at 0 (greys stay grey), value `clip(x (1 + r_v))`, applied in
/// OpenCV's 8-bit HSV (hue 0..180). A no-op when all three gains are zero.
///
/// (Ultralytics ≤ 8.3.78 scaled hue multiplicatively, `x (1 + r_h) mod 180`;
/// 8.3.79 on, which the notes pin, shifts it.)
pub fn random_hsv(img: &mut image::RgbImage, cfg: &AugmentConfig, rng: &mut impl rand::Rng) {
    if cfg.hsv_h == 0.0 && cfg.hsv_s == 0.0 && cfg.hsv_v == 0.0 {
        return;
    }
    let rh = uniform(rng, -1.0, 1.0) * cfg.hsv_h as f64;
    let rs = uniform(rng, -1.0, 1.0) * cfg.hsv_s as f64;
    let rv = uniform(rng, -1.0, 1.0) * cfg.hsv_v as f64;
    let mut lut_h = [0u8; 256];
    let mut lut_s = [0u8; 256];
    let mut lut_v = [0u8; 256];
    for x in 0..256usize {
        let xf = x as f64;
        lut_h[x] = (xf + rh * 180.0).rem_euclid(180.0) as u8;
        lut_s[x] = (xf * (rs + 1.0)).clamp(0.0, 255.0) as u8;
        lut_v[x] = (xf * (rv + 1.0)).clamp(0.0, 255.0) as u8;
    }
    lut_s[0] = 0;
    apply_hsv_luts(img, &lut_h, &lut_s, &lut_v);
}

/// RGB → HSV → (LUTs) → RGB over every pixel, in place.
fn apply_hsv_luts(img: &mut RgbImage, lut_h: &[u8; 256], lut_s: &[u8; 256], lut_v: &[u8; 256]) {
    let t = HsvDivTables::new();
    let raw: &mut [u8] = img;
    for px in raw.chunks_exact_mut(3) {
        let (h, s, v) = t.rgb_to_hsv(px[0], px[1], px[2]);
        let (r, g, b) = hsv_to_rgb(lut_h[h as usize], lut_s[s as usize], lut_v[v as usize]);
        px[0] = r;
        px[1] = g;
        px[2] = b;
    }
}

// ---------------------------------------------------------------------------
// Blur and flips
// ---------------------------------------------------------------------------

/// With probability `p`, a normalized box blur with a kernel of 3, 5 or 7
/// (uniform, as Albumentations' `Blur(blur_limit=(3, 7))`), border reflect-101
/// like `cv2.blur`.
pub fn maybe_blur(img: &mut image::RgbImage, p: f32, rng: &mut impl rand::Rng) {
    if p <= 0.0 || rng.gen::<f32>() >= p {
        return;
    }
    let k = [3usize, 5, 7][rng.gen_range(0..3)];
    box_blur(img, k);
}

/// Reflect-101 index (`dcb|abcd|cba`), clamped for images narrower than the radius.
#[inline]
fn reflect101(i: isize, n: isize) -> usize {
    let j = if i < 0 {
        -i
    } else if i >= n {
        2 * n - 2 - i
    } else {
        i
    };
    j.clamp(0, n - 1) as usize
}

/// Separable box blur with exact integer sums and round-to-nearest at the end.
fn box_blur(img: &mut RgbImage, k: usize) {
    let (w, h) = (img.width() as usize, img.height() as usize);
    if w == 0 || h == 0 || k < 2 {
        return;
    }
    let r = (k / 2) as isize;
    let raw: &mut [u8] = img;
    // Horizontal pass: sums of k pixels (≤ 7 * 255) per channel.
    let mut hsum = vec![0u16; w * h * 3];
    for y in 0..h {
        let row = &raw[y * w * 3..(y + 1) * w * 3];
        let out = &mut hsum[y * w * 3..(y + 1) * w * 3];
        for x in 0..w {
            let mut acc = [0u16; 3];
            for d in -r..=r {
                let xi = reflect101(x as isize + d, w as isize) * 3;
                acc[0] += row[xi] as u16;
                acc[1] += row[xi + 1] as u16;
                acc[2] += row[xi + 2] as u16;
            }
            out[x * 3..x * 3 + 3].copy_from_slice(&acc);
        }
    }
    // Vertical pass back into the image.
    let area = (k * k) as u32;
    for y in 0..h {
        let out = &mut raw[y * w * 3..(y + 1) * w * 3];
        for (i, o) in out.iter_mut().enumerate() {
            let mut acc = 0u32;
            for d in -r..=r {
                let yi = reflect101(y as isize + d, h as isize);
                acc += hsum[yi * w * 3 + i] as u32;
            }
            *o = ((acc + area / 2) / area) as u8;
        }
    }
}

/// Ultralytics `RandomFlip`: up-down with probability `cfg.flipud`, then
/// left-right with probability `cfg.fliplr`; boxes mirrored with the image.
pub fn maybe_flip(l: &mut Labeled, cfg: &AugmentConfig, rng: &mut impl rand::Rng) {
    let (w, h) = (l.image.width() as f32, l.image.height() as f32);
    if cfg.flipud > 0.0 && rng.gen::<f32>() < cfg.flipud {
        flip_vertical(&mut l.image);
        for b in &mut l.boxes {
            *b = [b[0], h - b[3], b[2], h - b[1]];
        }
    }
    if cfg.fliplr > 0.0 && rng.gen::<f32>() < cfg.fliplr {
        flip_horizontal(&mut l.image);
        for b in &mut l.boxes {
            *b = [w - b[2], b[1], w - b[0], b[3]];
        }
    }
}

fn flip_horizontal(img: &mut RgbImage) {
    let w = img.width() as usize;
    if w < 2 {
        return;
    }
    let raw: &mut [u8] = img;
    for row in raw.chunks_exact_mut(w * 3) {
        for x in 0..w / 2 {
            let (a, b) = (x * 3, (w - 1 - x) * 3);
            for c in 0..3 {
                row.swap(a + c, b + c);
            }
        }
    }
}

fn flip_vertical(img: &mut RgbImage) {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let stride = w * 3;
    let raw: &mut [u8] = img;
    for y in 0..h / 2 {
        let (top, bottom) = raw.split_at_mut((h - 1 - y) * stride);
        top[y * stride..(y + 1) * stride].swap_with_slice(&mut bottom[..stride]);
    }
}

// ---------------------------------------------------------------------------
// The training pipeline
// ---------------------------------------------------------------------------

/// One training sample as Ultralytics `v8_transforms` builds it (mixup,
/// cutmix and copy-paste being 0 by default): with probability `cfg.mosaic`,
/// a mosaic of `index` and three uniformly drawn indices (Ultralytics draws
/// them from a buffer of recent images) then `random_perspective` with border
/// −s/2 down to `s x s`; otherwise the sample letterboxed to `s x s` (scaleup
/// true) then `random_perspective` with border 0. Then HSV, blur, flips.
///
/// `load(i)` returns sample `i` already resized to long side `s` (see
/// [`resize_long_side`]; the caller caches). `len` is the dataset size (> 0).
pub fn train_sample(
    load: &dyn Fn(usize) -> Labeled,
    index: usize,
    len: usize,
    s: u32,
    cfg: &AugmentConfig,
    rng: &mut impl rand::Rng,
) -> Labeled {
    assert!(len > 0, "train_sample on an empty dataset");
    let mut out = if cfg.mosaic > 0.0 && rng.gen::<f32>() < cfg.mosaic {
        let a = load(index);
        let b = load(rng.gen_range(0..len));
        let c = load(rng.gen_range(0..len));
        let d = load(rng.gen_range(0..len));
        let m = mosaic4([&a, &b, &c, &d], s, rng);
        let border = -((s / 2) as i32);
        random_perspective(&m, cfg, s, s, border, border, rng)
    } else {
        let a = load(index);
        let (image, info) = letterbox(&a.image, s, s, true);
        let boxes = a.boxes.iter().map(|b| info.to_letterboxed(*b)).collect();
        let lb = Labeled {
            image,
            boxes,
            classes: a.classes,
        };
        random_perspective(&lb, cfg, s, s, 0, 0, rng)
    };
    random_hsv(&mut out.image, cfg, rng);
    maybe_blur(&mut out.image, cfg.blur, rng);
    maybe_flip(&mut out, cfg, rng);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn solid(w: u32, h: u32, c: [u8; 3]) -> RgbImage {
        RgbImage::from_pixel(w, h, Rgb(c))
    }

    fn gradient(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            Rgb([(x % 256) as u8, (y % 256) as u8, ((x + 2 * y) % 251) as u8])
        })
    }

    fn close(a: Xyxy, b: Xyxy, tol: f32) -> bool {
        a.iter().zip(&b).all(|(x, y)| (x - y).abs() <= tol)
    }

    #[test]
    fn letterbox_640x480_to_320() {
        let img = solid(640, 480, [10, 200, 30]);
        let (out, info) = letterbox(&img, 320, 320, true);
        assert_eq!(out.dimensions(), (320, 320));
        assert_eq!(
            info,
            LetterboxInfo {
                ratio: 0.5,
                pad_x: 0.0,
                pad_y: 40.0
            }
        );
        assert_eq!(out.get_pixel(0, 0).0, [114, 114, 114]);
        assert_eq!(out.get_pixel(319, 39).0, [114, 114, 114]);
        assert_eq!(out.get_pixel(0, 40).0, [10, 200, 30]);
        assert_eq!(out.get_pixel(160, 160).0, [10, 200, 30]);
        assert_eq!(out.get_pixel(319, 279).0, [10, 200, 30]);
        assert_eq!(out.get_pixel(0, 280).0, [114, 114, 114]);
        assert_eq!(out.get_pixel(319, 319).0, [114, 114, 114]);
    }

    #[test]
    fn letterbox_box_round_trip() {
        let img = solid(640, 480, [1, 2, 3]);
        let (_, info) = letterbox(&img, 320, 320, true);
        let b = [100.0, 50.0, 300.0, 250.0];
        let lb = info.to_letterboxed(b);
        assert!(close(lb, [50.0, 65.0, 150.0, 165.0], 1e-4), "{lb:?}");
        let back = info.to_original(lb, 640, 480);
        assert!(close(back, b, 1e-3), "{back:?}");
        // to_original clips to the original image.
        let clipped = info.to_original([-10.0, 0.0, 330.0, 320.0], 640, 480);
        assert!(
            close(clipped, [0.0, 0.0, 640.0, 480.0], 1e-4),
            "{clipped:?}"
        );
    }

    #[test]
    fn letterbox_no_scaleup_keeps_ratio_one() {
        let img = gradient(100, 50);
        let (out, info) = letterbox(&img, 320, 320, false);
        assert_eq!(out.dimensions(), (320, 320));
        assert_eq!(
            info,
            LetterboxInfo {
                ratio: 1.0,
                pad_x: 110.0,
                pad_y: 135.0
            }
        );
        // Pixels copied verbatim at the padding offset.
        assert_eq!(out.get_pixel(110, 135), img.get_pixel(0, 0));
        assert_eq!(out.get_pixel(209, 184), img.get_pixel(99, 49));
        assert_eq!(out.get_pixel(109, 135).0, [114; 3]);
        // With scaleup the same image is enlarged.
        let (out, info) = letterbox(&img, 320, 320, true);
        assert_eq!(out.dimensions(), (320, 320));
        assert_eq!(
            info,
            LetterboxInfo {
                ratio: 3.2,
                pad_x: 0.0,
                pad_y: 80.0
            }
        );
    }

    #[test]
    fn letterbox_odd_padding_split() {
        // dh = 0.5: top = round(0.4) = 0, bottom = round(0.6) = 1.
        let img = solid(100, 99, [7, 7, 7]);
        let (out, info) = letterbox(&img, 100, 100, false);
        assert_eq!(
            info,
            LetterboxInfo {
                ratio: 1.0,
                pad_x: 0.0,
                pad_y: 0.0
            }
        );
        assert_eq!(out.get_pixel(50, 0).0, [7; 3]);
        assert_eq!(out.get_pixel(50, 99).0, [114; 3]);
        // dw = 1.5: left = round(1.4) = 1, right = round(1.6) = 2.
        let img = solid(97, 100, [7, 7, 7]);
        let (out, info) = letterbox(&img, 100, 100, false);
        assert_eq!(info.pad_x, 1.0);
        assert_eq!(out.get_pixel(0, 50).0, [114; 3]);
        assert_eq!(out.get_pixel(1, 50).0, [7; 3]);
        assert_eq!(out.get_pixel(97, 50).0, [7; 3]);
        assert_eq!(out.get_pixel(98, 50).0, [114; 3]);
    }

    #[test]
    fn resize_long_side_scales_boxes() {
        let l = Labeled {
            image: solid(200, 100, [5, 6, 7]),
            boxes: vec![[20.0, 10.0, 100.0, 60.0]],
            classes: vec![3],
        };
        let r = resize_long_side(&l, 100);
        assert_eq!(r.image.dimensions(), (100, 50));
        assert!(
            close(r.boxes[0], [10.0, 5.0, 50.0, 30.0], 1e-4),
            "{:?}",
            r.boxes
        );
        assert_eq!(r.classes, vec![3]);
        assert_eq!(r.image.get_pixel(50, 25).0, [5, 6, 7]);
        // The short side is rounded up: 200 * 64/300 = 42.67 -> 43.
        let l = Labeled {
            image: solid(300, 200, [0; 3]),
            boxes: vec![[0.0, 0.0, 300.0, 200.0]],
            classes: vec![0],
        };
        let r = resize_long_side(&l, 64);
        assert_eq!(r.image.dimensions(), (64, 43));
        assert!(
            close(r.boxes[0], [0.0, 0.0, 64.0, 43.0], 1e-4),
            "{:?}",
            r.boxes
        );
        // Upscaling too (Ultralytics resizes whenever r != 1).
        let l = Labeled {
            image: solid(50, 40, [0; 3]),
            boxes: vec![[5.0, 4.0, 10.0, 8.0]],
            classes: vec![0],
        };
        let r = resize_long_side(&l, 100);
        assert_eq!(r.image.dimensions(), (100, 80));
        assert!(
            close(r.boxes[0], [10.0, 8.0, 20.0, 16.0], 1e-4),
            "{:?}",
            r.boxes
        );
    }

    #[test]
    fn mosaic4_places_samples_and_boxes() {
        let s = 64;
        let colours = [[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0]];
        let samples: Vec<Labeled> = colours
            .iter()
            .enumerate()
            .map(|(i, &c)| {
                let (w, h) = if i % 2 == 0 { (64, 48) } else { (40, 64) };
                Labeled {
                    image: solid(w, h, c),
                    boxes: vec![[0.0, 0.0, w as f32, h as f32]],
                    classes: vec![i],
                }
            })
            .collect();
        for seed in 0..20 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let m = mosaic4(
                [&samples[0], &samples[1], &samples[2], &samples[3]],
                s,
                &mut rng,
            );
            assert_eq!(m.image.dimensions(), (128, 128));
            assert_eq!(m.boxes.len(), m.classes.len());
            // The centre is in [32, 96), so each sample keeps a piece.
            assert_eq!(m.classes, vec![0, 1, 2, 3], "seed {seed}");
            for (b, &c) in m.boxes.iter().zip(&m.classes) {
                assert!(b.iter().all(|v| (0.0..=128.0).contains(v)), "{b:?}");
                assert!(b[2] > b[0] && b[3] > b[1]);
                // Every pixel just inside the box corners has the sample's colour.
                for (x, y) in [
                    (b[0], b[1]),
                    (b[2] - 1.0, b[1]),
                    (b[0], b[3] - 1.0),
                    (b[2] - 1.0, b[3] - 1.0),
                ] {
                    let px = m.image.get_pixel(x as u32, y as u32).0;
                    assert_eq!(
                        px, colours[c],
                        "seed {seed} class {c} box {b:?} at ({x}, {y})"
                    );
                }
                let (cx, cy) = ((b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0);
                assert_eq!(m.image.get_pixel(cx as u32, cy as u32).0, colours[c]);
            }
            // Top-left sample ends at the centre: the box of sample 0 ends at (xc, yc), and
            // sample 3 starts there.
            assert_eq!(m.boxes[0][2], m.boxes[3][0]);
            assert_eq!(m.boxes[0][3], m.boxes[3][1]);
        }
    }

    #[test]
    fn random_perspective_zero_config_is_identity() {
        let cfg = AugmentConfig::none();
        let img = gradient(120, 80);
        let l = Labeled {
            image: img.clone(),
            boxes: vec![[10.0, 5.0, 50.0, 70.0], [60.5, 20.25, 119.0, 79.0]],
            classes: vec![1, 2],
        };
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let out = random_perspective(&l, &cfg, 120, 80, 0, 0, &mut rng);
        assert_eq!(out.image, img);
        assert_eq!(out.classes, vec![1, 2]);
        for (a, b) in out.boxes.iter().zip(&l.boxes) {
            assert!(close(*a, *b, 0.5), "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn random_perspective_crop_shifts_and_drops() {
        // Zero config, 200x200 in, 100x100 out (border -50): a pure shift by -50.
        let cfg = AugmentConfig::none();
        let img = gradient(200, 200);
        let l = Labeled {
            image: img.clone(),
            boxes: vec![
                [0.0, 0.0, 30.0, 30.0],
                [80.0, 80.0, 120.0, 120.0],
                [140.0, 60.0, 160.0, 80.0],
            ],
            classes: vec![0, 1, 2],
        };
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let out = random_perspective(&l, &cfg, 100, 100, -50, -50, &mut rng);
        assert_eq!(out.image.dimensions(), (100, 100));
        // Box 0 falls entirely outside and is dropped; box 2 is clipped to 10x20 and kept.
        assert_eq!(out.classes, vec![1, 2]);
        assert!(
            close(out.boxes[0], [30.0, 30.0, 70.0, 70.0], 1e-3),
            "{:?}",
            out.boxes
        );
        assert!(
            close(out.boxes[1], [90.0, 10.0, 100.0, 30.0], 1e-3),
            "{:?}",
            out.boxes
        );
        for (x, y) in [(0, 0), (37, 91), (99, 99), (50, 3)] {
            assert_eq!(
                out.image.get_pixel(x, y),
                img.get_pixel(x + 50, y + 50),
                "({x}, {y})"
            );
        }
    }

    #[test]
    fn random_perspective_box_follows_content() {
        let cfg = AugmentConfig {
            degrees: 10.0,
            translate: 0.1,
            scale: 0.3,
            shear: 2.0,
            ..AugmentConfig::none()
        };
        let mut img = solid(160, 160, [40, 40, 40]);
        let rect = [50.0f32, 60.0, 110.0, 100.0];
        for y in 60..100 {
            for x in 50..110 {
                img.put_pixel(x, y, Rgb([250, 10, 10]));
            }
        }
        let l = Labeled {
            image: img,
            boxes: vec![rect],
            classes: vec![4],
        };
        for seed in 0..20 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let out = random_perspective(&l, &cfg, 160, 160, 0, 0, &mut rng);
            assert_eq!(out.image.dimensions(), (160, 160));
            assert_eq!(out.boxes.len(), 1, "seed {seed}");
            let b = out.boxes[0];
            let (cx, cy) = ((b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0);
            assert_eq!(
                out.image.get_pixel(cx as u32, cy as u32).0,
                [250, 10, 10],
                "seed {seed} {b:?}"
            );
            // Just outside the box on each side is background.
            for (x, y) in [
                (b[0] - 2.0, cy),
                (b[2] + 2.0, cy),
                (cx, b[1] - 2.0),
                (cx, b[3] + 2.0),
            ] {
                let px = out.image.get_pixel(x as u32, y as u32).0;
                assert!(
                    px == [40, 40, 40] || px == [114; 3],
                    "seed {seed} ({x}, {y}) {px:?}"
                );
            }
            // The box is no smaller than the scaled rectangle could be (scale ≥ 0.7).
            assert!(
                b[2] - b[0] > 60.0 * 0.69 && b[3] - b[1] > 40.0 * 0.69,
                "{b:?}"
            );
        }
    }

    #[test]
    fn box_candidate_rules() {
        let before = [0.0, 0.0, 10.0, 10.0];
        assert!(box_candidate(&before, &[0.0, 0.0, 10.0, 10.0]));
        assert!(!box_candidate(&before, &[0.0, 0.0, 2.0, 10.0])); // w not > 2
        assert!(!box_candidate(&before, &[0.0, 0.0, 10.0, 2.0])); // h not > 2
        assert!(!box_candidate(&before, &[0.0, 0.0, 3.0, 3.0])); // area 0.09 of before
        assert!(box_candidate(&before, &[0.0, 0.0, 3.2, 3.2])); // area 0.1024
        let long = [0.0, 0.0, 1000.0, 10.0];
        assert!(!box_candidate(&long, &[0.0, 0.0, 1000.0, 9.99])); // aspect > 100
    }

    #[test]
    fn random_hsv_zero_gains_is_noop() {
        let mut img = gradient(64, 48);
        let orig = img.clone();
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        random_hsv(&mut img, &AugmentConfig::none(), &mut rng);
        assert_eq!(img, orig);
    }

    #[test]
    fn hsv_conversion_matches_opencv() {
        let t = HsvDivTables::new();
        assert_eq!(t.rgb_to_hsv(255, 0, 0), (0, 255, 255));
        assert_eq!(t.rgb_to_hsv(0, 255, 0), (60, 255, 255));
        assert_eq!(t.rgb_to_hsv(0, 0, 255), (120, 255, 255));
        assert_eq!(t.rgb_to_hsv(255, 255, 0), (30, 255, 255));
        assert_eq!(t.rgb_to_hsv(255, 0, 255), (150, 255, 255));
        assert_eq!(t.rgb_to_hsv(128, 128, 128), (0, 0, 128));
        assert_eq!(t.rgb_to_hsv(0, 0, 0), (0, 0, 0));
        // (200, 100, 50): v 200, diff 150, s = round(150 * 255 / 200) = 191,
        // h = round((100 - 50) * 30 / 150) = 10.
        assert_eq!(t.rgb_to_hsv(200, 100, 50), (10, 191, 200));
        assert_eq!(hsv_to_rgb(0, 255, 255), (255, 0, 0));
        assert_eq!(hsv_to_rgb(60, 255, 255), (0, 255, 0));
        assert_eq!(hsv_to_rgb(120, 255, 255), (0, 0, 255));
        assert_eq!(hsv_to_rgb(180, 255, 255), (255, 0, 0));
        // Round trip of every grey is exact; of colours within the hue quantization.
        for g in 0..=255u8 {
            let (h, s, v) = t.rgb_to_hsv(g, g, g);
            assert_eq!(hsv_to_rgb(h, s, v), (g, g, g));
        }
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        for _ in 0..2000 {
            let (r, g, b) = (rng.gen::<u8>(), rng.gen::<u8>(), rng.gen::<u8>());
            let (h, s, v) = t.rgb_to_hsv(r, g, b);
            let (r2, g2, b2) = hsv_to_rgb(h, s, v);
            for (a, c) in [(r, r2), (g, g2), (b, b2)] {
                assert!(
                    (a as i32 - c as i32).abs() <= 5,
                    "({r},{g},{b}) -> ({r2},{g2},{b2})"
                );
            }
        }
    }

    #[test]
    fn rint_small_is_round_half_even() {
        for (x, want) in [
            (0.0, 0.0),
            (0.5, 0.0),
            (1.5, 2.0),
            (2.5, 2.0),
            (2.4999, 2.0),
            (254.5, 254.0),
            (255.0, 255.0),
        ] {
            assert_eq!(rint_small(x), want, "{x}");
        }
        for i in 0..=25500 {
            let x = i as f32 * 0.01;
            assert_eq!(rint_small(x), x.round_ties_even(), "{x}");
        }
    }

    #[test]
    fn random_hsv_keeps_greys_grey_and_changes_colours() {
        let cfg = AugmentConfig::default();
        let mut changed = 0;
        for seed in 0..10 {
            let mut img = RgbImage::from_fn(32, 8, |x, y| {
                if y < 4 {
                    Rgb([(x * 8) as u8; 3])
                } else {
                    Rgb([200, 100, 50])
                }
            });
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            random_hsv(&mut img, &cfg, &mut rng);
            for y in 0..4 {
                for x in 0..32 {
                    let p = img.get_pixel(x, y).0;
                    assert!(p[0] == p[1] && p[1] == p[2], "grey became {p:?}");
                }
            }
            if img.get_pixel(0, 7).0 != [200, 100, 50] {
                changed += 1;
            }
        }
        assert!(
            changed >= 8,
            "HSV jitter changed a colour only {changed}/10 times"
        );
    }

    #[test]
    fn flips_mirror_image_and_boxes() {
        let img = gradient(10, 6);
        let mut l = Labeled {
            image: img.clone(),
            boxes: vec![[1.0, 2.0, 4.0, 5.0]],
            classes: vec![0],
        };
        let cfg = AugmentConfig {
            fliplr: 1.0,
            ..AugmentConfig::none()
        };
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        maybe_flip(&mut l, &cfg, &mut rng);
        assert_eq!(l.boxes[0], [6.0, 2.0, 9.0, 5.0]);
        assert_eq!(l.image.get_pixel(0, 3), img.get_pixel(9, 3));
        assert_eq!(l.image.get_pixel(7, 1), img.get_pixel(2, 1));
        let mut l = Labeled {
            image: img.clone(),
            boxes: vec![[1.0, 2.0, 4.0, 5.0]],
            classes: vec![0],
        };
        let cfg = AugmentConfig {
            flipud: 1.0,
            ..AugmentConfig::none()
        };
        maybe_flip(&mut l, &cfg, &mut rng);
        assert_eq!(l.boxes[0], [1.0, 1.0, 4.0, 4.0]);
        assert_eq!(l.image.get_pixel(3, 0), img.get_pixel(3, 5));
        assert_eq!(l.image.get_pixel(8, 2), img.get_pixel(8, 3));
        // Probability zero: untouched.
        let mut l = Labeled {
            image: img.clone(),
            boxes: vec![[1.0, 2.0, 4.0, 5.0]],
            classes: vec![0],
        };
        maybe_flip(&mut l, &AugmentConfig::none(), &mut rng);
        assert_eq!(l.image, img);
        assert_eq!(l.boxes[0], [1.0, 2.0, 4.0, 5.0]);
    }

    #[test]
    fn blur_averages_and_respects_probability() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut img = solid(20, 20, [90, 30, 200]);
        maybe_blur(&mut img, 1.0, &mut rng);
        assert_eq!(img, solid(20, 20, [90, 30, 200]));
        let checker = RgbImage::from_fn(20, 20, |x, y| {
            if (x + y) % 2 == 0 {
                Rgb([0; 3])
            } else {
                Rgb([255; 3])
            }
        });
        let mut img = checker.clone();
        maybe_blur(&mut img, 0.0, &mut rng);
        assert_eq!(img, checker);
        // 3x3 box on a checkerboard: 4 or 5 of 9 white -> 113 or 142 inside.
        let mut img = checker.clone();
        box_blur(&mut img, 3);
        assert_eq!(img.get_pixel(5, 5).0, [113; 3]); // (5+5) even: centre black, 4 white
        assert_eq!(img.get_pixel(5, 6).0, [142; 3]); // centre white, 5 white
                                                     // Reflect-101 at the corner (0,0) black: neighbours mirror to the same pattern.
        assert_eq!(img.get_pixel(0, 0).0, [113; 3]);
    }

    fn dataset(s: u32) -> Vec<Labeled> {
        let raw = [
            (
                300u32,
                200u32,
                vec![[20.0f32, 30.0, 120.0, 150.0], [200.0, 10.0, 290.0, 190.0]],
            ),
            (150, 220, vec![[10.0, 10.0, 140.0, 60.0]]),
            (90, 90, vec![]),
            (
                400,
                120,
                vec![[0.0, 0.0, 400.0, 120.0], [350.0, 100.0, 390.0, 119.0]],
            ),
        ];
        raw.into_iter()
            .enumerate()
            .map(|(i, (w, h, boxes))| {
                let classes = (0..boxes.len()).map(|k| i + k).collect();
                resize_long_side(
                    &Labeled {
                        image: gradient(w, h),
                        boxes,
                        classes,
                    },
                    s,
                )
            })
            .collect()
    }

    #[test]
    fn train_sample_shapes_and_box_bounds() {
        let s = 96;
        let data = dataset(s);
        let load = |i: usize| data[i].clone();
        for (cfg, name) in [
            (AugmentConfig::default(), "default"),
            (
                AugmentConfig {
                    mosaic: 0.0,
                    ..AugmentConfig::default()
                },
                "no mosaic",
            ),
            (
                AugmentConfig {
                    degrees: 10.0,
                    shear: 2.0,
                    fliplr: 0.5,
                    flipud: 0.5,
                    blur: 0.5,
                    ..AugmentConfig::default()
                },
                "heavy",
            ),
        ] {
            let mut total = 0;
            for seed in 0..25u64 {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                let out = train_sample(
                    &load,
                    seed as usize % data.len(),
                    data.len(),
                    s,
                    &cfg,
                    &mut rng,
                );
                assert_eq!(out.image.dimensions(), (s, s), "{name}");
                assert_eq!(out.boxes.len(), out.classes.len());
                for b in &out.boxes {
                    assert!(
                        b.iter().all(|v| (0.0..=s as f32).contains(v)),
                        "{name}: {b:?}"
                    );
                    assert!(b[2] - b[0] > 2.0 && b[3] - b[1] > 2.0, "{name}: {b:?}");
                }
                total += out.boxes.len();
            }
            assert!(
                total > 10,
                "{name}: only {total} boxes survived in 25 samples"
            );
        }
    }

    #[test]
    fn train_sample_without_augmentation_is_a_letterbox() {
        let s = 96;
        let data = dataset(s);
        let load = |i: usize| data[i].clone();
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let out = train_sample(&load, 0, data.len(), s, &AugmentConfig::none(), &mut rng);
        let (img, info) = letterbox(&data[0].image, s, s, true);
        assert_eq!(out.image, img);
        let want: Vec<Xyxy> = data[0]
            .boxes
            .iter()
            .map(|b| info.to_letterboxed(*b))
            .collect();
        assert_eq!(out.boxes.len(), want.len());
        for (a, b) in out.boxes.iter().zip(&want) {
            assert!(close(*a, *b, 0.5), "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn config_serde_defaults_and_unknown_fields() {
        let c: AugmentConfig = serde_json::from_str(r#"{"mosaic": 0.5}"#).unwrap();
        assert_eq!(c.mosaic, 0.5);
        assert_eq!(c.scale, 0.5);
        assert_eq!(c.translate, 0.1);
        assert_eq!(c.hsv_h, 0.015);
        assert_eq!(c.fliplr, 0.0);
        assert_eq!(c.blur, 0.01);
        assert!(serde_json::from_str::<AugmentConfig>(r#"{"mixup": 0.1}"#).is_err());
    }
}
