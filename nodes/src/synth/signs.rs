//! French road signs drawn procedurally, each as an RGBA image (alpha = the
//! sign's silhouette) with the text it carries.
//!
//! Shapes are drawn at 3× and downscaled, which anti-aliases their edges.

use ab_glyph::PxScale;
use image::imageops::{resize, FilterType};
use image::{Rgba, RgbaImage};
use imageproc::drawing::{draw_filled_circle_mut, draw_filled_rect_mut, draw_polygon_mut};
use imageproc::point::Point;
use imageproc::rect::Rect;
use rand::Rng;

use super::text::{cap_height, draw_centered, fit_scale, measure};

pub const SUPERSAMPLE: u32 = 3;

const RED: Rgba<u8> = Rgba([200, 16, 30, 255]);
const WHITE: Rgba<u8> = Rgba([245, 245, 240, 255]);
const BLACK: Rgba<u8> = Rgba([20, 20, 22, 255]);
const BLUE: Rgba<u8> = Rgba([22, 72, 160, 255]);
const GREEN: Rgba<u8> = Rgba([18, 118, 60, 255]);
const DARK: Rgba<u8> = Rgba([38, 40, 44, 255]);

/// Every class the generator draws. The first four are those of the public
/// Kaggle road-sign set.
pub const CLASSES: [&str; 9] = [
    "speed_limit",
    "stop",
    "crosswalk",
    "traffic_light",
    "yield",
    "no_entry",
    "direction",
    "street_name",
    "zone_30",
];

pub const SPEED_VALUES: [&str; 7] = ["30", "50", "70", "80", "90", "110", "130"];

/// A drawn sign, at its final size.
pub struct SignImage {
    pub image: RgbaImage,
    pub text: Option<String>,
    /// How tall the text's smallest capitals are in `image`, in pixels.
    pub letter_px: Option<f32>,
}

/// What text-bearing panels may say.
#[derive(Clone, Debug)]
pub struct Vocabulary<'a> {
    pub towns: &'a [String],
    pub streets: &'a [String],
}

fn poly(points: &[(f32, f32)]) -> Vec<Point<i32>> {
    let mut out: Vec<Point<i32>> = points
        .iter()
        .map(|&(x, y)| Point::new(x.round() as i32, y.round() as i32))
        .collect();
    out.dedup();
    if out.len() > 1 && out.first() == out.last() {
        out.pop();
    }
    out
}

fn regular_polygon(cx: f32, cy: f32, r: f32, sides: usize, rotation: f32) -> Vec<Point<i32>> {
    let pts: Vec<(f32, f32)> = (0..sides)
        .map(|i| {
            let a = rotation + i as f32 * std::f32::consts::TAU / sides as f32;
            (cx + r * a.cos(), cy + r * a.sin())
        })
        .collect();
    poly(&pts)
}

fn circle(canvas: &mut RgbaImage, cx: f32, cy: f32, r: f32, color: Rgba<u8>) {
    draw_filled_circle_mut(
        canvas,
        (cx.round() as i32, cy.round() as i32),
        r.round().max(1.0) as i32,
        color,
    );
}

fn rect(canvas: &mut RgbaImage, x: f32, y: f32, w: f32, h: f32, color: Rgba<u8>) {
    if w >= 1.0 && h >= 1.0 {
        draw_filled_rect_mut(
            canvas,
            Rect::at(x.round() as i32, y.round() as i32)
                .of_size(w.round() as u32, h.round() as u32),
            color,
        );
    }
}

/// A `w` × `h` canvas painted with one colour.
fn filled(w: f32, h: f32, color: Rgba<u8>) -> RgbaImage {
    RgbaImage::from_pixel(w.max(1.0) as u32, h.max(1.0) as u32, color)
}

/// The sign at its final size; `text` with the scale its smallest letters
/// were drawn at on the supersampled canvas.
fn finish(canvas: RgbaImage, text: Option<(String, PxScale)>) -> SignImage {
    let w = (canvas.width() / SUPERSAMPLE).max(1);
    let h = (canvas.height() / SUPERSAMPLE).max(1);
    SignImage {
        image: resize(&canvas, w, h, FilterType::Triangle),
        letter_px: text
            .as_ref()
            .map(|(_, scale)| cap_height(*scale) / SUPERSAMPLE as f32),
        text: text.map(|(text, _)| text),
    }
}

/// The smaller of two scales.
fn smaller(a: PxScale, b: PxScale) -> PxScale {
    if a.y <= b.y {
        a
    } else {
        b
    }
}

/// A speed-limit disc; returns the scale its value was drawn at.
fn speed_disc(canvas: &mut RgbaImage, cx: f32, cy: f32, r: f32, value: &str) -> PxScale {
    circle(canvas, cx, cy, r, RED);
    circle(canvas, cx, cy, r * 0.78, WHITE);
    let scale = fit_scale(value, r * 1.25, r * 0.95);
    draw_centered(canvas, value, cx, cy, scale, BLACK);
    scale
}

/// Draws one sign of `class`, about `size` pixels tall.
pub fn render(
    class: &str,
    size: u32,
    vocabulary: &Vocabulary<'_>,
    rng: &mut impl Rng,
) -> SignImage {
    let s = (size.max(8) * SUPERSAMPLE) as f32;
    let square = || RgbaImage::new(s as u32, s as u32);
    let (c, r) = (s / 2.0, s / 2.0 - 1.0);
    match class {
        "speed_limit" => {
            let mut canvas = square();
            let value = SPEED_VALUES[rng.gen_range(0..SPEED_VALUES.len())];
            let scale = speed_disc(&mut canvas, c, c, r, value);
            finish(canvas, Some((value.to_string(), scale)))
        }
        "stop" => {
            let mut canvas = square();
            let rot = std::f32::consts::PI / 8.0;
            draw_polygon_mut(&mut canvas, &regular_polygon(c, c, r, 8, rot), WHITE);
            draw_polygon_mut(&mut canvas, &regular_polygon(c, c, r * 0.9, 8, rot), RED);
            let scale = fit_scale("STOP", r * 1.45, r * 0.62);
            draw_centered(&mut canvas, "STOP", c, c, scale, WHITE);
            finish(canvas, Some(("STOP".to_string(), scale)))
        }
        "no_entry" => {
            let mut canvas = square();
            circle(&mut canvas, c, c, r, WHITE);
            circle(&mut canvas, c, c, r * 0.94, RED);
            rect(
                &mut canvas,
                c - r * 0.72,
                c - r * 0.18,
                r * 1.44,
                r * 0.36,
                WHITE,
            );
            finish(canvas, None)
        }
        "yield" => {
            let mut canvas = square();
            let top = s * 0.08;
            let outer = [(1.0, top), (s - 1.0, top), (c, s - 1.0)];
            let inner = [
                (s * 0.2, top + s * 0.1),
                (s * 0.8, top + s * 0.1),
                (c, s * 0.72),
            ];
            draw_polygon_mut(&mut canvas, &poly(&outer), RED);
            draw_polygon_mut(&mut canvas, &poly(&inner), WHITE);
            finish(canvas, None)
        }
        "crosswalk" => {
            let mut canvas = filled(s, s, BLUE);
            let m = s * 0.1;
            let tri = [(c, m), (s - m, s - m * 1.3), (m, s - m * 1.3)];
            draw_polygon_mut(&mut canvas, &poly(&tri), WHITE);
            // pedestrian: head, body, legs, on zebra stripes
            let u = s / 20.0;
            circle(&mut canvas, c, s * 0.36, u * 1.3, BLACK);
            draw_polygon_mut(
                &mut canvas,
                &poly(&[
                    (c - u, s * 0.42),
                    (c + u, s * 0.42),
                    (c + u * 0.8, s * 0.6),
                    (c - u * 0.8, s * 0.6),
                ]),
                BLACK,
            );
            draw_polygon_mut(
                &mut canvas,
                &poly(&[
                    (c - u * 0.8, s * 0.58),
                    (c, s * 0.6),
                    (c - u * 2.6, s * 0.74),
                    (c - u * 3.6, s * 0.72),
                ]),
                BLACK,
            );
            draw_polygon_mut(
                &mut canvas,
                &poly(&[
                    (c, s * 0.58),
                    (c + u * 0.8, s * 0.6),
                    (c + u * 3.4, s * 0.74),
                    (c + u * 2.4, s * 0.75),
                ]),
                BLACK,
            );
            for i in 0..4 {
                let x = s * 0.3 + i as f32 * s * 0.11;
                rect(&mut canvas, x, s * 0.77, s * 0.06, s * 0.04, BLACK);
            }
            finish(canvas, None)
        }
        "traffic_light" => {
            let (w, h) = (s * 0.42, s);
            let mut canvas = filled(w, h, DARK);
            let lit = rng.gen_range(0..3);
            let colours = [
                (Rgba([230, 30, 30, 255]), Rgba([90, 20, 20, 255])),
                (Rgba([245, 170, 20, 255]), Rgba([95, 70, 15, 255])),
                (Rgba([40, 210, 90, 255]), Rgba([20, 80, 40, 255])),
            ];
            for (i, (on, off)) in colours.iter().enumerate() {
                let colour = if i == lit { *on } else { *off };
                circle(
                    &mut canvas,
                    w / 2.0,
                    h * (0.18 + 0.32 * i as f32),
                    w * 0.33,
                    colour,
                );
            }
            finish(canvas, None)
        }
        "zone_30" => {
            let (w, h) = (s * 0.8, s);
            let mut canvas = filled(w, h, BLACK);
            rect(
                &mut canvas,
                s * 0.03,
                s * 0.03,
                w - s * 0.06,
                h - s * 0.06,
                WHITE,
            );
            let scale = fit_scale("ZONE", w * 0.8, h * 0.22);
            draw_centered(&mut canvas, "ZONE", w / 2.0, h * 0.2, scale, BLACK);
            let digits = speed_disc(&mut canvas, w / 2.0, h * 0.62, w * 0.36, "30");
            finish(
                canvas,
                Some(("ZONE 30".to_string(), smaller(scale, digits))),
            )
        }
        "street_name" => {
            let name = &vocabulary.streets[rng.gen_range(0..vocabulary.streets.len())];
            let h = s * 0.42;
            let scale = fit_scale(name, s * 20.0, h * 0.55);
            let (tw, _) = measure(name, scale);
            let w = tw as f32 + h * 0.9;
            let mut canvas = filled(w, h, BLUE);
            let b = h * 0.08;
            rect(&mut canvas, b, b, w - 2.0 * b, b * 0.7, WHITE);
            rect(&mut canvas, b, h - b * 1.7, w - 2.0 * b, b * 0.7, WHITE);
            rect(&mut canvas, b, b, b * 0.7, h - 2.0 * b, WHITE);
            rect(&mut canvas, w - b * 1.7, b, b * 0.7, h - 2.0 * b, WHITE);
            draw_centered(&mut canvas, name, w / 2.0, h / 2.0, scale, WHITE);
            finish(canvas, Some((name.clone(), scale)))
        }
        _ => direction(s, vocabulary, rng),
    }
}

/// A direction panel: one to three lines `TOWN 12` or `TOWN 12 km`, on blue,
/// green or white, pointed on one side.
fn direction(s: f32, vocabulary: &Vocabulary<'_>, rng: &mut impl Rng) -> SignImage {
    let lines: Vec<String> = (0..rng.gen_range(1..=3))
        .map(|_| {
            let town = &vocabulary.towns[rng.gen_range(0..vocabulary.towns.len())];
            let km = rng.gen_range(1..=120);
            if rng.gen_bool(0.5) {
                format!("{town} {km} km")
            } else {
                format!("{town} {km}")
            }
        })
        .collect();
    let line_h = s * 0.3;
    let scale = fit_scale("ÉLÉVATION", s * 20.0, line_h * 0.62);
    let text_w = lines.iter().map(|l| measure(l, scale).0).max().unwrap_or(1) as f32;
    let pad = line_h * 0.45;
    let point = line_h * 0.9;
    let (w, h) = (
        text_w + 2.0 * pad + point,
        lines.len() as f32 * line_h + pad,
    );
    let (bg, fg) = match rng.gen_range(0..3) {
        0 => (BLUE, WHITE),
        1 => (GREEN, WHITE),
        _ => (WHITE, BLACK),
    };
    let mut canvas = RgbaImage::new(w as u32, h as u32);
    let points_right = rng.gen_bool(0.5);
    let body = if points_right {
        [
            (0.0, 0.0),
            (w - point, 0.0),
            (w - 1.0, h / 2.0),
            (w - point, h - 1.0),
            (0.0, h - 1.0),
        ]
    } else {
        [
            (point, 0.0),
            (w - 1.0, 0.0),
            (w - 1.0, h - 1.0),
            (point, h - 1.0),
            (0.0, h / 2.0),
        ]
    };
    draw_polygon_mut(&mut canvas, &poly(&body), fg);
    let inset = line_h * 0.07;
    let inner: Vec<(f32, f32)> = body
        .iter()
        .map(|&(x, y)| {
            let dx = if x < w / 2.0 {
                inset * 1.5
            } else {
                -inset * 1.5
            };
            let dy = if y < h / 2.0 - 1.0 {
                inset
            } else if y > h / 2.0 + 1.0 {
                -inset
            } else {
                0.0
            };
            (x + dx, y + dy)
        })
        .collect();
    draw_polygon_mut(&mut canvas, &poly(&inner), bg);
    let x0 = if points_right { pad } else { pad + point };
    for (i, line) in lines.iter().enumerate() {
        let (lw, _) = measure(line, scale);
        let cy = pad / 2.0 + line_h * (i as f32 + 0.5);
        draw_centered(&mut canvas, line, x0 + lw as f32 / 2.0, cy, scale, fg);
    }
    finish(canvas, Some((lines.join("\n"), scale)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn vocabulary() -> (Vec<String>, Vec<String>) {
        (
            crate::synth::default_towns(),
            crate::synth::default_streets(),
        )
    }

    /// Rows of the sign's middle holding white ink (clear of the white
    /// border): the STOP letters' height, measured on the pixels.
    fn stop_ink_rows(sign: &RgbaImage) -> u32 {
        let (w, h) = (sign.width() as f32, sign.height() as f32);
        let (x0, x1) = ((w * 0.3) as u32, (w * 0.7) as u32);
        let (y0, y1) = ((h * 0.15) as u32, (h * 0.85) as u32);
        (y0..y1)
            .filter(|&y| (x0..x1).any(|x| sign.get_pixel(x, y)[1] > 160))
            .count() as u32
    }

    #[test]
    fn letter_height_is_that_of_the_drawn_letters() {
        let (towns, streets) = vocabulary();
        let words = Vocabulary {
            towns: &towns,
            streets: &streets,
        };
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        for size in [60, 120, 240] {
            let sign = render("stop", size, &words, &mut rng);
            let letters = sign.letter_px.unwrap();
            let ink = stop_ink_rows(&sign.image) as f32;
            assert!((letters - ink).abs() <= 2.0, "{size}: {letters} vs {ink}");
        }
        assert_eq!(render("yield", 60, &words, &mut rng).letter_px, None);
        // A direction panel drawn for 18 px: its lines of town names have
        // letters of about 0.12 of that, whatever their number.
        for _ in 0..5 {
            let letters = render("direction", 18, &words, &mut rng).letter_px.unwrap();
            assert!((1.5..3.5).contains(&letters), "{letters}");
        }
    }
}
