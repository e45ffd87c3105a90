//! Image conversions every stage needs.

use image::{DynamicImage, RgbImage};

/// 8-bit RGB from anything `image` decodes: 16-bit channels are scaled down,
/// alpha is flattened over white (the public sets ship RGBA PNGs whose XML
/// claims 3 channels). An 8-bit RGB image is moved, not copied: a server
/// decoding a 40-megapixel upload holds it once.
pub fn into_rgb8(img: DynamicImage) -> RgbImage {
    if !img.color().has_alpha() {
        return img.into_rgb8();
    }
    let rgba = img.into_rgba8();
    let mut out = RgbImage::new(rgba.width(), rgba.height());
    for (o, p) in out.pixels_mut().zip(rgba.pixels()) {
        let a = p[3] as u32;
        for i in 0..3 {
            o[i] = ((p[i] as u32 * a + 255 * (255 - a) + 127) / 255) as u8;
        }
    }
    out
}

/// The pixels of an annotated image as 8-bit RGB; errors name the image.
pub fn decode_record(
    record: &crate::annotations::ImageRecord,
) -> Result<RgbImage, crate::NodesError> {
    let failed =
        |e: &dyn std::fmt::Display| crate::NodesError::Image(format!("{}: {e}", record.id));
    let bytes = record.source.bytes().map_err(|e| failed(&e))?;
    let image = image::load_from_memory(&bytes).map_err(|e| failed(&e))?;
    Ok(into_rgb8(image))
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageBuffer, Rgba};

    #[test]
    fn flattens_alpha_and_sixteen_bits() {
        let rgba16: ImageBuffer<Rgba<u16>, Vec<u16>> =
            ImageBuffer::from_pixel(2, 1, Rgba([65535, 0, 32896, 65535]));
        let rgb = into_rgb8(DynamicImage::ImageRgba16(rgba16));
        assert_eq!(rgb.get_pixel(0, 0).0, [255, 0, 128]);
        let clear = ImageBuffer::from_pixel(1, 1, Rgba([0u8, 0, 0, 0]));
        assert_eq!(
            into_rgb8(DynamicImage::ImageRgba8(clear)).get_pixel(0, 0).0,
            [255, 255, 255]
        );
        let rgb8 = DynamicImage::ImageRgb8(RgbImage::from_pixel(1, 1, image::Rgb([1, 2, 3])));
        assert_eq!(into_rgb8(rgb8).get_pixel(0, 0).0, [1, 2, 3]);
    }
}
