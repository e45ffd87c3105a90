//! Drawing what was found: every box in its class colour, with a label
//! "class · text · confidence" in the bundled DejaVu font, and JPEG out.

use std::sync::Arc;

use ab_glyph::PxScale;
use image::RgbImage;
use imageproc::drawing::{draw_filled_rect_mut, draw_hollow_rect_mut, draw_text_mut};
use imageproc::rect::Rect;

use super::{Prediction, SignDetection};
use crate::detection::dataset::Picture;
use crate::style::{class_colour, ink_for};
use crate::NodesError;

/// An encoded JPEG image.
#[derive(Clone, Debug)]
pub struct Jpeg(pub Vec<u8>);

runner::data_value!(Jpeg);

/// "stop · STOP · 0.93"; the text part only when one was read.
pub fn label(sign: &SignDetection) -> String {
    match sign.text.as_deref().filter(|t| !t.is_empty()) {
        Some(text) => format!("{} · {text} · {:.2}", sign.class, sign.confidence),
        None => format!("{} · {:.2}", sign.class, sign.confidence),
    }
}

/// Draws every sign onto `image`.
pub fn draw_predictions(image: &mut RgbImage, signs: &[SignDetection]) {
    let (w, h) = image.dimensions();
    if w == 0 || h == 0 {
        return;
    }
    let thickness = ((w.max(h) as f32 / 320.0).round() as i32).max(1);
    let text_px = (w.max(h) as f32 / 40.0).clamp(11.0, 40.0);
    let scale = PxScale::from(text_px);
    let font = crate::style::font();
    for sign in signs {
        let colour = class_colour(sign.class_id);
        let [x1, y1, x2, y2] = sign.bbox.map(|v| v.round() as i32);
        let (x1, y1) = (x1.clamp(0, w as i32 - 1), y1.clamp(0, h as i32 - 1));
        let (x2, y2) = (x2.clamp(x1 + 1, w as i32), y2.clamp(y1 + 1, h as i32));
        for t in 0..thickness {
            let (bw, bh) = ((x2 - x1 - 2 * t).max(1), (y2 - y1 - 2 * t).max(1));
            draw_hollow_rect_mut(
                image,
                Rect::at(x1 + t, y1 + t).of_size(bw as u32, bh as u32),
                colour,
            );
        }
        let text = label(sign);
        let (tw, _) = crate::synth::text::measure(&text, scale);
        let pad = (text_px / 5.0).round() as i32;
        let box_h = text_px.round() as i32 + 2 * pad;
        let box_w = tw as i32 + 2 * pad;
        // Above the box when there is room, inside it otherwise.
        let top = if y1 >= box_h { y1 - box_h } else { y1 };
        let left = x1.min(w as i32 - box_w).max(0);
        draw_filled_rect_mut(
            image,
            Rect::at(left, top).of_size(box_w.max(1) as u32, box_h.max(1) as u32),
            colour,
        );
        draw_text_mut(
            image,
            ink_for(colour),
            left + pad,
            top + pad / 2,
            scale,
            font,
            &text,
        );
    }
}

pub fn encode_jpeg(image: &RgbImage, quality: u8) -> Result<Vec<u8>, NodesError> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality)
        .encode_image(image)
        .map_err(|e| NodesError::Image(format!("cannot encode JPEG: {e}")))?;
    Ok(out)
}

/// The image with every sign drawn, as JPEG.
pub fn annotate_image(image: Arc<Picture>, prediction: Prediction) -> Result<Jpeg, NodesError> {
    let mut canvas = image.0.clone();
    draw_predictions(&mut canvas, &prediction.detections);
    Ok(Jpeg(encode_jpeg(&canvas, 90)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    fn sign(class: &str, text: Option<&str>, bbox: [f32; 4]) -> SignDetection {
        SignDetection {
            class: class.into(),
            class_id: 3,
            confidence: 0.875,
            bbox,
            text: text.map(String::from),
            text_confidence: text.map(|_| 0.9),
        }
    }

    #[test]
    fn labels_name_class_text_and_confidence() {
        assert_eq!(
            label(&sign("stop", Some("STOP"), [0.0; 4])),
            "stop · STOP · 0.88"
        );
        assert_eq!(label(&sign("yield", None, [0.0; 4])), "yield · 0.88");
        assert_eq!(label(&sign("yield", Some(""), [0.0; 4])), "yield · 0.88");
    }

    #[test]
    fn boxes_are_drawn_in_the_class_colour_and_nowhere_else() {
        let mut image = RgbImage::from_pixel(200, 160, Rgb([128, 128, 128]));
        let signs = [sign("stop", Some("STOP"), [60.0, 70.0, 140.0, 150.0])];
        draw_predictions(&mut image, &signs);
        let colour = class_colour(3);
        // The box's left edge, below the label.
        assert_eq!(*image.get_pixel(60, 120), colour);
        // Inside the box and far from it: untouched.
        assert_eq!(*image.get_pixel(100, 120), Rgb([128, 128, 128]));
        assert_eq!(*image.get_pixel(5, 155), Rgb([128, 128, 128]));
        // The label sits above the box and carries ink of another colour.
        let label_pixels: Vec<Rgb<u8>> = (60..140)
            .flat_map(|x| (50..70).map(move |y| (x, y)))
            .map(|(x, y)| *image.get_pixel(x, y))
            .collect();
        assert!(label_pixels.contains(&colour));
        assert!(label_pixels
            .iter()
            .any(|p| *p != colour && *p != Rgb([128, 128, 128])));
    }

    #[test]
    fn boxes_off_the_edges_are_clamped() {
        let mut image = RgbImage::new(50, 40);
        draw_predictions(&mut image, &[sign("stop", None, [-20.0, -5.0, 80.0, 60.0])]);
        let colour = class_colour(3);
        // The box is cut to the image: its edges run along the borders.
        assert_eq!(*image.get_pixel(0, 30), colour);
        assert_eq!(*image.get_pixel(49, 30), colour);
        assert_eq!(*image.get_pixel(25, 39), colour);
        assert_eq!(*image.get_pixel(25, 30), Rgb([0, 0, 0]));
        let mut empty = RgbImage::new(0, 0);
        draw_predictions(&mut empty, &[sign("stop", None, [0.0; 4])]);
        assert_eq!(empty.dimensions(), (0, 0));
    }

    #[test]
    fn annotated_images_are_jpeg() {
        let picture = Arc::new(Picture(RgbImage::from_pixel(64, 48, Rgb([10, 200, 30]))));
        let prediction = Prediction {
            detections: vec![sign("stop", Some("STOP"), [8.0, 8.0, 40.0, 40.0])],
            image: super::super::ImageSize {
                width: 64,
                height: 48,
            },
            timings_ms: Default::default(),
        };
        let jpeg = annotate_image(picture, prediction).unwrap();
        let decoded = image::load_from_memory(&jpeg.0).unwrap();
        assert_eq!((decoded.width(), decoded.height()), (64, 48));
        assert_eq!(
            image::guess_format(&jpeg.0).unwrap(),
            image::ImageFormat::Jpeg
        );
    }
}
