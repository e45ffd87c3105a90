//! Turning a sign's box into an image Tesseract reads well: the text area of
//! the sign (per class), grayscale from the channel that separates text from
//! paint best, upscaled to a target text height, contrast-stretched,
//! binarised (Otsu or adaptive), dark text on white, straightened.

use image::imageops::FilterType;
use image::{GrayImage, Luma, RgbImage};
use imageproc::contrast::{
    adaptive_threshold, otsu_level, stretch_contrast, threshold, ThresholdType,
};
use imageproc::geometric_transformations::{rotate_about_center, Interpolation};
use serde::Deserialize;

/// How colour becomes gray (see [`ClassPreprocess::channel`]).
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Luma,
    Min,
    Max,
}

/// How to prepare the crops of one class.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ClassPreprocess {
    /// The text area inside the box, as fractions of its width and height,
    /// centred (a speed-limit number sits inside the red ring).
    pub inner: [f32; 2],
    /// Height in pixels the text area is scaled to.
    pub height: u32,
    /// `otsu`, `adaptive` or `none`.
    pub binarize: String,
    /// Whiten dark regions touching the crop's edge (rims, arrow tips).
    pub clear_border: bool,
    /// Turn red paint white first (the ring around a number), where the
    /// text is not itself on red.
    pub drop_red: bool,
    /// How colour becomes gray: `luma`; `min` (the darkest channel: coloured
    /// paint turns dark, white text stays white, for white on red, blue or
    /// green); `max` (the brightest: coloured paint turns light, black text
    /// stays black, for black on white inside a red ring).
    pub channel: Channel,
    /// Moves Otsu's threshold this fraction of the way towards the text's
    /// mean intensity: thinner strokes, so blurred bold letters stop merging.
    pub stroke_thinning: f32,
    /// Round signs: only the ellipse inscribed in the text area is read,
    /// the rest is painted in the plate's colour (the ring around a speed limit's number,
    /// which a rectangle wide enough for three digits would cut into).
    pub round: bool,
    /// Largest tilt in degrees to straighten (0: none): plates and panels
    /// photographed at an angle read better level.
    pub deskew_degrees: f32,
}

impl Default for ClassPreprocess {
    fn default() -> Self {
        ClassPreprocess {
            inner: [1.0, 1.0],
            height: 64,
            binarize: "otsu".into(),
            clear_border: false,
            drop_red: false,
            channel: Channel::Luma,
            stroke_thinning: 0.0,
            deskew_degrees: 0.0,
            round: false,
        }
    }
}

/// Below this many pixels a side there is nothing to read.
pub const MIN_SIDE: u32 = 4;

/// The box grown by `margin` (a fraction of its size), then the centred inner
/// part, clipped to the image; `None` when what is left is degenerate.
pub fn crop(image: &RgbImage, bbox: [f32; 4], margin: f32, inner: [f32; 2]) -> Option<RgbImage> {
    let [x1, y1, x2, y2] = bbox;
    if !(x2 > x1 && y2 > y1) || [x1, y1, x2, y2].iter().any(|v| !v.is_finite()) {
        return None;
    }
    let (w, h) = (x2 - x1, y2 - y1);
    let (cx, cy) = ((x1 + x2) / 2.0, (y1 + y2) / 2.0);
    let half_w = w * (inner[0] + margin) / 2.0;
    let half_h = h * (inner[1] + margin) / 2.0;
    let left = (cx - half_w).floor().max(0.0) as u32;
    let top = (cy - half_h).floor().max(0.0) as u32;
    let right = ((cx + half_w).ceil() as u32).min(image.width());
    let bottom = ((cy + half_h).ceil() as u32).min(image.height());
    if right <= left + MIN_SIDE || bottom <= top + MIN_SIDE {
        return None;
    }
    Some(image::imageops::crop_imm(image, left, top, right - left, bottom - top).to_image())
}

/// `rgb` with the ellipse inscribed in it kept and the rest painted in the
/// ellipse's median colour (the plate's): neutral for the threshold and for
/// telling light text from dark.
fn outside_ellipse_filled(rgb: &RgbImage) -> RgbImage {
    let (w, h) = (rgb.width() as f32, rgb.height() as f32);
    let outside = |x: u32, y: u32| {
        let dx = (x as f32 + 0.5 - w / 2.0) / (w / 2.0);
        let dy = (y as f32 + 0.5 - h / 2.0) / (h / 2.0);
        dx * dx + dy * dy > 1.0
    };
    let mut channels: [Vec<u8>; 3] = Default::default();
    for (x, y, p) in rgb.enumerate_pixels() {
        if !outside(x, y) {
            for (c, v) in channels.iter_mut().zip(p.0) {
                c.push(v);
            }
        }
    }
    let plate = channels.map(|mut c| {
        c.sort_unstable();
        c.get(c.len() / 2).copied().unwrap_or(255)
    });
    let mut out = rgb.clone();
    for (x, y, p) in out.enumerate_pixels_mut() {
        if outside(x, y) {
            p.0 = plate;
        }
    }
    out
}

/// The gray image of `rgb` by `channel`.
fn gray_of(rgb: &RgbImage, channel: Channel) -> GrayImage {
    let pick: fn([u8; 3]) -> u8 = match channel {
        Channel::Min => |[r, g, b]| r.min(g).min(b),
        Channel::Max => |[r, g, b]| r.max(g).max(b),
        Channel::Luma => return image::imageops::grayscale(rgb),
    };
    GrayImage::from_fn(rgb.width(), rgb.height(), |x, y| {
        Luma([pick(rgb.get_pixel(x, y).0)])
    })
}

/// Otsu's level moved `thinning` of the way towards the mean of the text,
/// the minority side of Otsu's split.
fn thinned_level(gray: &GrayImage, thinning: f32) -> u8 {
    let level = otsu_level(gray);
    if thinning == 0.0 {
        return level;
    }
    let (mut light, mut light_sum, mut dark_sum) = (0u64, 0u64, 0u64);
    for p in gray.pixels() {
        if p[0] > level {
            light += 1;
            light_sum += u64::from(p[0]);
        } else {
            dark_sum += u64::from(p[0]);
        }
    }
    let dark = gray.len() as u64 - light;
    let text_mean = if light * 2 <= gray.len() as u64 {
        light_sum as f32 / light.max(1) as f32
    } else {
        dark_sum as f32 / dark.max(1) as f32
    };
    let moved = f32::from(level) + thinning.clamp(0.0, 1.0) * (text_mean - f32::from(level));
    moved.round().clamp(0.0, 255.0) as u8
}

/// The 2nd and 98th percentiles of the intensities.
fn percentiles(gray: &GrayImage) -> (u8, u8) {
    let mut histogram = [0usize; 256];
    for p in gray.pixels() {
        histogram[p[0] as usize] += 1;
    }
    let total = gray.len().max(1);
    let find = |fraction: f64| {
        let target = (total as f64 * fraction) as usize;
        let mut seen = 0;
        for (value, &count) in histogram.iter().enumerate() {
            seen += count;
            if seen > target {
                return value as u8;
            }
        }
        255
    };
    (find(0.02), find(0.98))
}

/// Grayscale, upscale, stretch, binarise, and make the text dark on white.
pub fn prepare(crop: &RgbImage, config: &ClassPreprocess) -> GrayImage {
    let masked;
    let crop = if config.round {
        masked = outside_ellipse_filled(crop);
        &masked
    } else {
        crop
    };
    let gray = if config.drop_red {
        let mut whitened = crop.clone();
        for p in whitened.pixels_mut() {
            let [r, g, b] = p.0.map(u32::from);
            if r > 90 && r * 10 > g * 14 && r * 10 > b * 14 {
                p.0 = [255, 255, 255];
            }
        }
        gray_of(&whitened, config.channel)
    } else {
        gray_of(crop, config.channel)
    };
    let scale = config.height as f32 / gray.height().max(1) as f32;
    let width = ((gray.width() as f32 * scale).round() as u32).max(1);
    let resized =
        image::imageops::resize(&gray, width, config.height.max(1), FilterType::CatmullRom);
    let (low, high) = percentiles(&resized);
    let stretched = if high > low {
        stretch_contrast(&resized, low, high, 0, 255)
    } else {
        resized
    };
    let mut binary = match config.binarize.as_str() {
        "adaptive" => adaptive_threshold(&stretched, (config.height / 4).max(3)),
        "none" => stretched,
        _ => {
            let level = thinned_level(&stretched, config.stroke_thinning);
            threshold(&stretched, level, ThresholdType::Binary)
        }
    };
    // Text is the minority: if most of the crop is dark, the sign is light text
    // on a dark plate (blue street plates, red STOP), so invert it.
    let dark = binary.pixels().filter(|p| p[0] < 128).count();
    if dark * 2 > binary.len() {
        image::imageops::invert(&mut binary);
    }
    if config.clear_border {
        clear_border(&mut binary);
    }
    if config.deskew_degrees > 0.0 {
        binary = deskew(&binary, config.deskew_degrees);
    }
    // A white border helps Tesseract find the text line.
    let pad = (config.height / 8).max(4);
    let mut framed = GrayImage::from_pixel(
        binary.width() + 2 * pad,
        binary.height() + 2 * pad,
        Luma([255]),
    );
    image::imageops::overlay(&mut framed, &binary, pad as i64, pad as i64);
    framed
}

/// `binary` (dark text on white) turned by the whole degree within
/// `±max_degrees` whose rows of text pixels are sharpest: the row sums vary
/// most when the lines of text are level.
pub fn deskew(binary: &GrayImage, max_degrees: f32) -> GrayImage {
    let row_variance = |image: &GrayImage| {
        let rows: Vec<f64> = image
            .rows()
            .map(|row| row.filter(|p| p[0] < 128).count() as f64)
            .collect();
        let mean = rows.iter().sum::<f64>() / rows.len().max(1) as f64;
        rows.iter().map(|r| (r - mean).powi(2)).sum::<f64>()
    };
    let turn = |degrees: f32| {
        rotate_about_center(
            binary,
            degrees.to_radians(),
            Interpolation::Nearest,
            Luma([255]),
        )
    };
    let steps = max_degrees.floor() as i32;
    let mut best = (0, row_variance(binary));
    for step in (-steps..=steps).filter(|s| *s != 0) {
        let score = row_variance(&turn(step as f32));
        if score > best.1 {
            best = (step, score);
        }
    }
    if best.0 == 0 {
        binary.clone()
    } else {
        turn(best.0 as f32)
    }
}

/// Whitens the dark regions that touch the edge of the crop: the sign's rim,
/// the background around it, an arrow's tip. Text sits inside and stays.
pub fn clear_border(binary: &mut GrayImage) {
    let (w, h) = binary.dimensions();
    let mut stack: Vec<(u32, u32)> = Vec::new();
    for x in 0..w {
        stack.push((x, 0));
        stack.push((x, h - 1));
    }
    for y in 0..h {
        stack.push((0, y));
        stack.push((w - 1, y));
    }
    while let Some((x, y)) = stack.pop() {
        if binary.get_pixel(x, y)[0] >= 128 {
            continue;
        }
        binary.put_pixel(x, y, Luma([255]));
        if x > 0 {
            stack.push((x - 1, y));
        }
        if x + 1 < w {
            stack.push((x + 1, y));
        }
        if y > 0 {
            stack.push((x, y - 1));
        }
        if y + 1 < h {
            stack.push((x, y + 1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    #[test]
    fn crops_clip_and_refuse_degenerate_boxes() {
        let image = RgbImage::new(100, 50);
        let c = crop(&image, [10.0, 10.0, 50.0, 30.0], 0.0, [1.0, 1.0]).unwrap();
        assert_eq!(c.dimensions(), (40, 20));
        let inner = crop(&image, [10.0, 10.0, 50.0, 30.0], 0.0, [0.5, 0.5]).unwrap();
        assert_eq!(inner.dimensions(), (20, 10));
        let clipped = crop(&image, [90.0, 40.0, 130.0, 80.0], 0.0, [1.0, 1.0]).unwrap();
        assert_eq!(clipped.dimensions(), (10, 10));
        assert!(crop(&image, [10.0, 10.0, 12.0, 30.0], 0.0, [1.0, 1.0]).is_none());
        assert!(crop(&image, [10.0, 10.0, 5.0, 30.0], 0.0, [1.0, 1.0]).is_none());
        assert!(crop(&image, [f32::NAN, 10.0, 50.0, 30.0], 0.0, [1.0, 1.0]).is_none());
    }

    #[test]
    fn regions_touching_the_edge_are_cleared() {
        let mut img = GrayImage::from_pixel(10, 10, Luma([255]));
        for y in 0..10 {
            img.put_pixel(0, y, Luma([0]));
        }
        img.put_pixel(5, 5, Luma([0]));
        clear_border(&mut img);
        assert_eq!(img.get_pixel(0, 3)[0], 255);
        assert_eq!(img.get_pixel(5, 5)[0], 0);
    }

    #[test]
    fn light_text_on_dark_becomes_dark_on_white() {
        // A blue plate with a white bar of "text".
        let mut plate = RgbImage::from_pixel(60, 20, Rgb([20, 40, 160]));
        for x in 10..50 {
            for y in 8..12 {
                plate.put_pixel(x, y, Rgb([250, 250, 250]));
            }
        }
        let out = prepare(&plate, &ClassPreprocess::default());
        let pad = 8;
        assert_eq!(out.height(), 64 + 2 * pad);
        assert_eq!(
            out.get_pixel(out.width() / 2, out.height() / 2)[0],
            0,
            "text is dark"
        );
        assert_eq!(out.get_pixel(pad + 2, pad + 2)[0], 255, "plate is white");
        assert_eq!(out.get_pixel(1, 1)[0], 255, "frame is white");
    }

    #[test]
    fn channels_choose_what_stays_dark() {
        let red = RgbImage::from_pixel(1, 1, Rgb([220, 30, 40]));
        assert_eq!(gray_of(&red, Channel::Min).get_pixel(0, 0)[0], 30);
        assert_eq!(gray_of(&red, Channel::Max).get_pixel(0, 0)[0], 220);
        let luma = gray_of(&red, Channel::Luma).get_pixel(0, 0)[0];
        assert!(luma > 30 && luma < 220, "{luma}");
    }

    #[test]
    fn thinning_moves_the_threshold_towards_the_text() {
        // A dark background (40) with a light minority (200) and a blurred
        // edge between them (120).
        let gray = GrayImage::from_fn(100, 10, |x, _| {
            Luma([match x {
                0..=69 => 40,
                70..=79 => 120,
                _ => 200,
            }])
        });
        let otsu = thinned_level(&gray, 0.0);
        let thinned = thinned_level(&gray, 0.5);
        assert_eq!(otsu, otsu_level(&gray));
        assert!(
            thinned > otsu,
            "{thinned} vs {otsu}: towards the light text"
        );
        assert!(thinned < 200);
    }

    #[test]
    fn tilted_lines_are_levelled() {
        // A thin dark line across white, tilted by 4 degrees.
        let level = GrayImage::from_fn(120, 60, |_, y| Luma([if y == 30 { 0 } else { 255 }]));
        let tilted = rotate_about_center(
            &level,
            4f32.to_radians(),
            Interpolation::Nearest,
            Luma([255]),
        );
        let dark_rows = |image: &GrayImage| {
            image
                .rows()
                .filter(|row| row.clone().any(|p| p[0] < 128))
                .count()
        };
        assert!(dark_rows(&tilted) > 5);
        let straight = deskew(&tilted, 8.0);
        assert!(dark_rows(&straight) <= 2, "{}", dark_rows(&straight));
        // Nothing to straighten: the image comes back as it was.
        assert_eq!(deskew(&level, 8.0), level);
    }

    #[test]
    fn unknown_channels_are_refused() {
        let parsed: Result<ClassPreprocess, _> = serde_json::from_str(r#"{"channel": "hue"}"#);
        assert!(parsed.is_err());
        let parsed: ClassPreprocess = serde_json::from_str(r#"{"channel": "min"}"#).unwrap();
        assert_eq!(parsed.channel, Channel::Min);
    }

    #[test]
    fn round_signs_keep_only_the_inscribed_ellipse() {
        // A light plate with a dark ring in its corners and a dark digit.
        let mut sign = RgbImage::from_pixel(40, 20, Rgb([200, 200, 200]));
        for (x, y) in [(0, 0), (39, 19), (0, 19), (39, 0)] {
            sign.put_pixel(x, y, Rgb([150, 20, 20]));
        }
        sign.put_pixel(20, 10, Rgb([10, 10, 10]));
        let masked = outside_ellipse_filled(&sign);
        assert_eq!(
            masked.get_pixel(0, 0).0,
            [200, 200, 200],
            "ring painted as the plate"
        );
        assert_eq!(masked.get_pixel(39, 19).0, [200, 200, 200]);
        assert_eq!(masked.get_pixel(20, 10).0, [10, 10, 10], "digit kept");
    }
}
