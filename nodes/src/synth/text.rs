//! The font shipped with the project, and fitting text into a box.

use ab_glyph::{Font, PxScale};
use image::{Rgba, RgbaImage};
use imageproc::drawing::{draw_text_mut, text_size};

use crate::style::font;

/// The largest scale at which `text` fits in `max_w` × `max_h` pixels.
pub fn fit_scale(text: &str, max_w: f32, max_h: f32) -> PxScale {
    let mut scale = max_h.max(1.0);
    for _ in 0..4 {
        let (w, h) = text_size(PxScale::from(scale), font(), text);
        let (w, h) = (w.max(1) as f32, h.max(1) as f32);
        let factor = (max_w / w).min(max_h / h);
        if (factor - 1.0).abs() < 0.02 {
            break;
        }
        scale *= factor;
    }
    PxScale::from(scale.max(1.0))
}

/// Draws `text` centred on (cx, cy) at the given scale.
pub fn draw_centered(
    canvas: &mut RgbaImage,
    text: &str,
    cx: f32,
    cy: f32,
    scale: PxScale,
    color: Rgba<u8>,
) {
    let (w, h) = text_size(scale, font(), text);
    // text_size measures ink; draw_text places the top of the line box, so
    // shift by the ascent gap to centre the ink itself.
    let ascent_gap = scale.y * 0.2;
    let x = cx - w as f32 / 2.0;
    let y = cy - h as f32 / 2.0 - ascent_gap;
    draw_text_mut(
        canvas,
        color,
        x.round() as i32,
        y.round() as i32,
        scale,
        font(),
        text,
    );
}

pub fn measure(text: &str, scale: PxScale) -> (u32, u32) {
    text_size(scale, font(), text)
}

/// How tall capital letters (and digits) are at `scale`, in pixels: what
/// decides whether text can be read.
pub fn cap_height(scale: PxScale) -> f32 {
    let glyph = font().glyph_id('H').with_scale(scale);
    font()
        .outline_glyph(glyph)
        .expect("the bundled font draws H")
        .px_bounds()
        .height()
}
