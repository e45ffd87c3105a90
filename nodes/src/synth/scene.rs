//! Road scenes: procedural background (sky, buildings or trees, road,
//! verges), signs on poles, and the degradations of real photos.

use image::imageops::{resize, FilterType};
use image::{Rgb, RgbImage, Rgba, RgbaImage};
use imageproc::drawing::{draw_filled_circle_mut, draw_filled_rect_mut, draw_polygon_mut};
use imageproc::filter::gaussian_blur_f32;
use imageproc::geometric_transformations::{warp, Interpolation, Projection};
use imageproc::point::Point;
use imageproc::rect::Rect;
use rand::Rng;

use super::signs::{render, Vocabulary};
use crate::annotations::{BoundingBox, Legibility, SignObject};

/// How a scene is made (one per image).
#[derive(Clone, Debug)]
pub struct SceneSpec<'a> {
    pub width: u32,
    pub height: u32,
    pub classes: &'a [(String, f64)],
    pub max_signs: usize,
    pub empty_fraction: f64,
    pub min_sign_px: u32,
    pub max_sign_fraction: f64,
    pub vocabulary: Vocabulary<'a>,
}

fn jitter(rng: &mut impl Rng, base: [u8; 3], amount: i32) -> Rgb<u8> {
    let mut c = [0u8; 3];
    for i in 0..3 {
        c[i] = (base[i] as i32 + rng.gen_range(-amount..=amount)).clamp(0, 255) as u8;
    }
    Rgb(c)
}

fn background(rng: &mut impl Rng, w: u32, h: u32) -> (RgbImage, u32) {
    let mut img = RgbImage::new(w, h);
    let horizon = (h as f64 * rng.gen_range(0.35..0.55)) as u32;
    let top = jitter(rng, [90, 140, 210], 30);
    let low = jitter(rng, [200, 215, 230], 20);
    for y in 0..horizon {
        let t = y as f32 / horizon.max(1) as f32;
        let c = Rgb([0, 1, 2].map(|i| (top[i] as f32 * (1.0 - t) + low[i] as f32 * t) as u8));
        for x in 0..w {
            img.put_pixel(x, y, c);
        }
    }
    // buildings or trees along the horizon
    let mut x = 0i32;
    let urban = rng.gen_bool(0.5);
    while x < w as i32 {
        if urban {
            let bw = rng.gen_range(w / 12..w / 4).max(4) as i32;
            let bh = rng.gen_range(h / 12..h / 3).max(4) as i32;
            let colour = jitter(rng, [150, 135, 120], 40);
            draw_filled_rect_mut(
                &mut img,
                Rect::at(x, horizon as i32 - bh).of_size(bw as u32, bh as u32),
                colour,
            );
            let win = jitter(rng, [60, 70, 90], 20);
            let step = (bw / 5).max(4);
            let mut wy = horizon as i32 - bh + step / 2;
            while wy < horizon as i32 - step {
                let mut wx = x + step / 2;
                while wx < x + bw - step / 2 {
                    draw_filled_rect_mut(
                        &mut img,
                        Rect::at(wx, wy)
                            .of_size((step / 2).max(1) as u32, (step / 2).max(1) as u32),
                        win,
                    );
                    wx += step;
                }
                wy += step;
            }
            x += bw + rng.gen_range(0..(w / 20).max(1)) as i32;
        } else {
            let r = rng.gen_range(h / 30..h / 8).max(3) as i32;
            let green = jitter(rng, [50, 110, 45], 25);
            draw_filled_rect_mut(
                &mut img,
                Rect::at(x + r - 2, horizon as i32 - r).of_size(4, r as u32),
                Rgb([80, 60, 40]),
            );
            draw_filled_circle_mut(&mut img, (x + r, horizon as i32 - r - r / 2), r, green);
            x += r + rng.gen_range(r..r * 3);
        }
    }
    // verges and road
    let verge = jitter(rng, [95, 130, 60], 25);
    draw_filled_rect_mut(
        &mut img,
        Rect::at(0, horizon as i32).of_size(w, h - horizon),
        verge,
    );
    let vx = w as f32 * rng.gen_range(0.35..0.65);
    let road = jitter(rng, [90, 90, 95], 15);
    let (bl, br) = (
        w as f32 * rng.gen_range(-0.3..0.15),
        w as f32 * rng.gen_range(0.85..1.3),
    );
    let pts = [
        Point::new(vx as i32 - 2, horizon as i32),
        Point::new(vx as i32 + 2, horizon as i32),
        Point::new(br as i32, h as i32 - 1),
        Point::new(bl as i32, h as i32 - 1),
    ];
    draw_polygon_mut(&mut img, &pts, road);
    // dashed centre line, perspective-scaled
    let mut t = 0.05f32;
    while t < 1.0 {
        let y0 = horizon as f32 + (h - horizon) as f32 * t;
        let y1 = horizon as f32 + (h - horizon) as f32 * (t + 0.04 * t.max(0.2));
        let xm = vx + ((bl + br) / 2.0 - vx) * t;
        let half = (1.0 + 6.0 * t) * w as f32 / 640.0;
        let dash = [
            Point::new((xm - half) as i32, y0 as i32),
            Point::new((xm + half) as i32, y0 as i32),
            Point::new((xm + half * 1.2) as i32, y1 as i32),
            Point::new((xm - half * 1.2) as i32, y1 as i32),
        ];
        if dash[0] != dash[3] {
            draw_polygon_mut(&mut img, &dash, Rgb([235, 235, 225]));
        }
        t += 0.09 * t.max(0.3);
    }
    (img, horizon)
}

/// A slight rotation and perspective tilt of the sign; returns the warped
/// sign on a transparent canvas big enough to hold it.
fn tilt(sign: &RgbaImage, rng: &mut impl Rng) -> RgbaImage {
    let (w, h) = (sign.width() as f32, sign.height() as f32);
    let pad = (w.max(h) * 0.25).ceil();
    let (cw, ch) = (w + 2.0 * pad, h + 2.0 * pad);
    let mut canvas = RgbaImage::new(cw as u32, ch as u32);
    image::imageops::overlay(&mut canvas, sign, pad as i64, pad as i64);
    let angle: f32 = rng.gen_range(-8.0f32..8.0).to_radians();
    let squeeze = rng.gen_range(0.0f32..0.22);
    let left = rng.gen_bool(0.5);
    let (cx, cy) = (cw / 2.0, ch / 2.0);
    let rot = |x: f32, y: f32| {
        let (dx, dy) = (x - cx, y - cy);
        (
            cx + dx * angle.cos() - dy * angle.sin(),
            cy + dx * angle.sin() + dy * angle.cos(),
        )
    };
    let src = [
        (pad, pad),
        (pad + w, pad),
        (pad + w, pad + h),
        (pad, pad + h),
    ];
    let mut dst = src;
    // squeeze one vertical edge: the sign turns away from the camera
    let (a, b) = if left { (0, 3) } else { (1, 2) };
    dst[a].1 += h * squeeze / 2.0;
    dst[b].1 -= h * squeeze / 2.0;
    let shift = w * squeeze * 0.4;
    if left {
        dst[0].0 += shift;
        dst[3].0 += shift;
    } else {
        dst[1].0 -= shift;
        dst[2].0 -= shift;
    }
    let dst = dst.map(|(x, y)| rot(x, y));
    match Projection::from_control_points(src, dst) {
        Some(projection) => warp(
            &canvas,
            &projection,
            Interpolation::Bilinear,
            Rgba([0, 0, 0, 0]),
        ),
        None => canvas,
    }
}

/// The tight box of the opaque pixels of an RGBA image.
fn alpha_bounds(img: &RgbaImage) -> Option<(u32, u32, u32, u32)> {
    let (mut x0, mut y0, mut x1, mut y1) = (u32::MAX, u32::MAX, 0, 0);
    for (x, y, p) in img.enumerate_pixels() {
        if p[3] >= 128 {
            x0 = x0.min(x);
            y0 = y0.min(y);
            x1 = x1.max(x);
            y1 = y1.max(y);
        }
    }
    (x0 <= x1 && y0 <= y1).then_some((x0, y0, x1 + 1, y1 + 1))
}

fn blend(dst: &mut RgbImage, src: &RgbaImage, ox: i64, oy: i64) {
    for (x, y, p) in src.enumerate_pixels() {
        let (tx, ty) = (ox + x as i64, oy + y as i64);
        if p[3] == 0 || tx < 0 || ty < 0 || tx >= dst.width() as i64 || ty >= dst.height() as i64 {
            continue;
        }
        let a = p[3] as f32 / 255.0;
        let d = dst.get_pixel_mut(tx as u32, ty as u32);
        for i in 0..3 {
            d[i] = (p[i] as f32 * a + d[i] as f32 * (1.0 - a)).round() as u8;
        }
    }
}

fn iou(a: &BoundingBox, b: &BoundingBox) -> f64 {
    let iw = (a.xmax.min(b.xmax) - a.xmin.max(b.xmin)).max(0.0);
    let ih = (a.ymax.min(b.ymax) - a.ymin.max(b.ymin)).max(0.0);
    let inter = iw * ih;
    inter / (a.area() + b.area() - inter).max(1e-9)
}

fn pick_class<'a>(classes: &'a [(String, f64)], rng: &mut impl Rng) -> &'a str {
    let total: f64 = classes.iter().map(|(_, w)| w).sum();
    let mut x = rng.gen_range(0.0..total.max(1e-9));
    for (name, w) in classes {
        if x < *w {
            return name;
        }
        x -= w;
    }
    &classes[classes.len() - 1].0
}

/// Makes one scene: its pixels and its annotated signs.
pub fn make_scene(spec: &SceneSpec<'_>, rng: &mut impl Rng) -> (RgbImage, Vec<SignObject>) {
    let (w, h) = (spec.width, spec.height);
    let (mut img, horizon) = background(rng, w, h);
    let count = if rng.gen_bool(spec.empty_fraction.clamp(0.0, 1.0)) {
        0
    } else {
        rng.gen_range(1..=spec.max_signs.max(1))
    };
    let mut objects: Vec<SignObject> = Vec::new();
    let mut letter_heights: Vec<Option<f32>> = Vec::new();
    let max_px = (h as f64 * spec.max_sign_fraction).max(spec.min_sign_px as f64 + 1.0);
    let mut attempts = 0;
    while objects.len() < count && attempts < count * 12 {
        attempts += 1;
        let class = pick_class(spec.classes, rng);
        // log-uniform sizes: as many small signs as large ones
        let size = (spec.min_sign_px as f64 * 1.15).ln()..max_px.ln();
        let size = rng.gen_range(size).exp() as u32;
        let sign = render(class, size, &spec.vocabulary, rng);
        let warped = tilt(&sign.image, rng);
        let Some((bx0, by0, bx1, by1)) = alpha_bounds(&warped) else {
            continue;
        };
        let (bw, bh) = (bx1 - bx0, by1 - by0);
        if bw.min(bh) < spec.min_sign_px || bw >= w || bh >= h {
            continue;
        }
        let x = rng.gen_range(0..=(w - bw)) as i64;
        // signs stand above the ground line; bigger ones are nearer, lower
        let lowest = (h - bh) as i64;
        let highest = ((horizon as f64 - bh as f64 * 1.3).max(0.0) as i64).min(lowest);
        let y = rng.gen_range(highest..=lowest);
        let bbox = BoundingBox {
            xmin: x as f64,
            ymin: y as f64,
            xmax: (x + bw as i64) as f64,
            ymax: (y + bh as i64) as f64,
        };
        if objects.iter().any(|o| iou(&o.bbox, &bbox) > 0.02) {
            continue;
        }
        // the pole, from the sign down to the ground
        let pole_w = (bw / 12).clamp(2, 14);
        let ground = (y + bh as i64 + (bh as i64) * 2).min(h as i64);
        let px = x + bw as i64 / 2 - pole_w as i64 / 2;
        if ground > y + bh as i64 {
            draw_filled_rect_mut(
                &mut img,
                Rect::at(px as i32, (y + bh as i64 / 2) as i32)
                    .of_size(pole_w, (ground - y - bh as i64 / 2) as u32),
                jitter(rng, [130, 130, 135], 20),
            );
        }
        blend(&mut img, &warped, x - bx0 as i64, y - by0 as i64);
        // partial occlusion by foliage on one side
        if rng.gen_bool(0.12) {
            let r = (bw.min(bh) as f32 * rng.gen_range(0.2..0.35)) as i32;
            let cx = if rng.gen_bool(0.5) {
                x as i32
            } else {
                (x + bw as i64) as i32
            };
            let cy = (y + rng.gen_range(0..bh as i64)) as i32;
            draw_filled_circle_mut(&mut img, (cx, cy), r.max(2), jitter(rng, [45, 95, 40], 20));
        }
        objects.push(SignObject {
            class: class.to_string(),
            bbox,
            text: sign.text,
            legibility: None, // graded below, once the blur is known
        });
        letter_heights.push(sign.letter_px);
    }
    let blur = degrade(&mut img, rng);
    for (object, letters) in objects.iter_mut().zip(letter_heights) {
        object.legibility = letters.map(|px| blur.legibility(px));
    }
    (img, objects)
}

/// The blur a scene went through: what, with the letters' size, decides
/// whether its signs' text can be read.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Blur {
    /// Standard deviation of the Gaussian blur, in pixels (0: none).
    pub sigma: f32,
    /// Length of the horizontal motion blur, in pixels (0: none).
    pub motion: usize,
}

impl Blur {
    /// The legibility of text whose capitals are drawn `letter_px` tall.
    /// The tilt that follows (up to 8° and one edge squeezed by up to a
    /// fifth) is left out: the grade is that of the letters as drawn.
    /// Blur spreads each point over a few pixels; the letters are graded by
    /// their height in units of that spread: the pixel itself combined with
    /// the blur's standard deviation (a box of length L has L/√12).
    pub fn legibility(&self, letter_px: f32) -> Legibility {
        let motion = self.motion as f32;
        let spread = (1.0 + self.sigma.powi(2) + motion.powi(2) / 12.0).sqrt();
        Legibility::of_letter_height(letter_px / spread)
    }
}

/// Lighting, blur and noise, as in dashcam photos; returns the blur.
fn degrade(img: &mut RgbImage, rng: &mut impl Rng) -> Blur {
    let gain: f32 = rng.gen_range(0.6..1.3);
    let bias: f32 = rng.gen_range(-20.0..20.0);
    let cast = [
        rng.gen_range(0.92..1.08f32),
        1.0,
        rng.gen_range(0.92..1.08f32),
    ];
    let noise = if rng.gen_bool(0.5) {
        rng.gen_range(0.0..8.0f32)
    } else {
        0.0
    };
    for p in img.pixels_mut() {
        for i in 0..3 {
            let n = if noise > 0.0 {
                (rng.gen::<f32>() - 0.5) * 2.0 * noise
            } else {
                0.0
            };
            p[i] = (p[i] as f32 * gain * cast[i] + bias + n).clamp(0.0, 255.0) as u8;
        }
    }
    let mut blur = Blur::default();
    if rng.gen_bool(0.2) {
        blur.sigma = rng.gen_range(0.5..1.4);
        *img = gaussian_blur_f32(img, blur.sigma);
    }
    if rng.gen_bool(0.2) {
        blur.motion = rng.gen_range(3..8usize);
        let kernel = vec![1.0f32 / blur.motion as f32; blur.motion];
        *img = imageproc::filter::horizontal_filter(img, &kernel);
    }
    blur
}

/// Downscale helper used by the dashcam clip: a scene drawn once, viewed
/// from further away in each frame.
pub fn shrink(img: &RgbImage, w: u32, h: u32) -> RgbImage {
    resize(img, w, h, FilterType::Triangle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blur_lowers_the_legibility_of_letters_of_one_size() {
        let sharp = Blur::default();
        assert_eq!(sharp.legibility(10.0), Legibility::High);
        assert_eq!(sharp.legibility(5.0), Legibility::Low);
        assert_eq!(sharp.legibility(3.0), Legibility::Illegible);
        // A 7 px motion blur spreads a point over sqrt(1 + 49/12) ≈ 2.25 px.
        let shaken = Blur {
            sigma: 0.0,
            motion: 7,
        };
        assert_eq!(shaken.legibility(10.0), Legibility::Low);
        assert_eq!(shaken.legibility(20.0), Legibility::High);
        let soft = Blur {
            sigma: 1.4,
            motion: 7,
        };
        assert_eq!(soft.legibility(8.0), Legibility::Illegible);
    }
}
