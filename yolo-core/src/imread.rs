//! Reading an image file as Ultralytics' predictor reads it (`imread`, which
//! is `cv2.imdecode(bytes, IMREAD_COLOR)`), so that a file gives the pixels
//! Ultralytics sees: JPEG decoded by libjpeg-turbo (the library OpenCV
//! bundles; Debian's build decodes byte for byte alike, default settings:
//! accurate integer IDCT, fancy upsampling), PNG and BMP by `image` (lossless:
//! any decoder gives the same values), then OpenCV's conversions to 8-bit
//! colour: alpha dropped (not blended), 16-bit channels keep their high
//! byte, grey replicated; and the EXIF orientation applied, as OpenCV does
//! for JPEG and PNG.
//!
//! Not byte for byte with OpenCV: lossy WebP (`image`'s decoder is not
//! libwebp), and JPEGs libjpeg-turbo reads only with a warning (corrupt or
//! truncated data; OpenCV shows what it decoded, the binding here cannot
//! tell a warning from a failure) or cannot convert (CMYK): those are read
//! by `image` instead.
//!
//! Training reads its data through its own loaders (alpha flattened over
//! white, `image`'s JPEG decoder); only prediction reads through here.

use std::io::Cursor;

use image::metadata::Orientation;
use image::{DynamicImage, ImageFormat, ImageReader, Limits, RgbImage};

/// Why a file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ImreadError {
    #[error("not an image this program reads: {0}")]
    Format(#[source] image::ImageError),
    #[error("the image cannot be decoded: {0}")]
    Decode(#[source] image::ImageError),
    #[error("the JPEG cannot be decoded: {0}")]
    Jpeg(#[source] turbojpeg::Error),
}

/// The image in `bytes` as 8-bit RGB, read as OpenCV reads it, under
/// `image`'s default limits (512 MiB of pixels).
pub fn imread(bytes: &[u8]) -> Result<RgbImage, ImreadError> {
    imread_limited(bytes, Limits::default())
}

/// [`imread`] under `limits`: the size and the memory the pixels take
/// (decoded, and their 8-bit RGB copy) are checked before any is decoded.
pub fn imread_limited(bytes: &[u8], limits: Limits) -> Result<RgbImage, ImreadError> {
    let format = image::guess_format(bytes).map_err(ImreadError::Format)?;
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    reader.limits(limits.clone());
    let mut decoder = reader.into_decoder().map_err(ImreadError::Decode)?;
    let (w, h) = image::ImageDecoder::dimensions(&decoder);
    let mut budget = limits;
    budget
        .reserve(image::ImageDecoder::total_bytes(&decoder))
        .and_then(|_| budget.reserve(w as u64 * h as u64 * 3))
        .map_err(ImreadError::Decode)?;
    let orientation =
        image::ImageDecoder::orientation(&mut decoder).map_err(ImreadError::Decode)?;
    let rgb = match format {
        ImageFormat::Jpeg => match decode_jpeg(bytes) {
            Ok(rgb) => rgb,
            // A warning (corrupt data) or a conversion libturbojpeg 2 lacks
            // (CMYK): `image` reads what it can, or the JPEG error says why not.
            Err(jpeg) => opencv_rgb(DynamicImage::from_decoder(decoder).map_err(|_| jpeg)?),
        },
        _ => opencv_rgb(DynamicImage::from_decoder(decoder).map_err(ImreadError::Decode)?),
    };
    Ok(oriented(rgb, orientation))
}

/// libjpeg-turbo with its default settings, straight to RGB.
fn decode_jpeg(bytes: &[u8]) -> Result<RgbImage, ImreadError> {
    let image =
        turbojpeg::decompress(bytes, turbojpeg::PixelFormat::RGB).map_err(ImreadError::Jpeg)?;
    Ok(
        RgbImage::from_raw(image.width as u32, image.height as u32, image.pixels)
            .expect("libturbojpeg fills width x height x 3 bytes"),
    )
}

/// OpenCV's `IMREAD_COLOR` conversions: alpha dropped, 16-bit to its high
/// byte, grey replicated.
fn opencv_rgb(image: DynamicImage) -> RgbImage {
    let (w, h) = (image.width(), image.height());
    let high_byte = |v: u16| (v >> 8) as u8;
    match image {
        DynamicImage::ImageRgb8(rgb) => rgb,
        DynamicImage::ImageRgba8(p) => first_three(w, h, p.as_raw(), 4, |v| v),
        DynamicImage::ImageLuma8(p) => first_three(w, h, p.as_raw(), 1, |v| v),
        DynamicImage::ImageLumaA8(p) => first_three(w, h, p.as_raw(), 2, |v| v),
        DynamicImage::ImageRgb16(p) => first_three(w, h, p.as_raw(), 3, high_byte),
        DynamicImage::ImageRgba16(p) => first_three(w, h, p.as_raw(), 4, high_byte),
        DynamicImage::ImageLuma16(p) => first_three(w, h, p.as_raw(), 1, high_byte),
        DynamicImage::ImageLumaA16(p) => first_three(w, h, p.as_raw(), 2, high_byte),
        // Floating-point formats (HDR, EXR), which OpenCV tone-maps its own way.
        other => other.into_rgb8(),
    }
}

/// RGB from pixels of `channels` samples: the first three (colour) or the
/// first one three times (grey), each through `to_u8`; the rest (alpha) dropped.
fn first_three<T: Copy>(
    w: u32,
    h: u32,
    samples: &[T],
    channels: usize,
    to_u8: impl Fn(T) -> u8,
) -> RgbImage {
    let colour = if channels >= 3 { [0, 1, 2] } else { [0, 0, 0] };
    let rgb = samples
        .chunks_exact(channels)
        .flat_map(|p| colour.map(|c| to_u8(p[c])))
        .collect();
    RgbImage::from_raw(w, h, rgb).expect("w x h pixels of 3 samples")
}

/// The EXIF orientation applied: the pixels as the camera meant them.
fn oriented(rgb: RgbImage, orientation: Orientation) -> RgbImage {
    if orientation == Orientation::NoTransforms {
        return rgb;
    }
    let mut image = DynamicImage::ImageRgb8(rgb);
    image.apply_orientation(orientation);
    image.into_rgb8()
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageBuffer, Luma, Rgba};

    fn png<P: image::PixelWithColorType>(image: &ImageBuffer<P, Vec<P::Subpixel>>) -> Vec<u8>
    where
        [P::Subpixel]: image::EncodableLayout,
    {
        let mut bytes = Vec::new();
        image
            .write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png)
            .unwrap();
        bytes
    }

    #[test]
    fn alpha_is_dropped_and_sixteen_bits_keep_their_high_byte() {
        let rgba = ImageBuffer::from_pixel(2, 1, Rgba([200u8, 100, 50, 0]));
        assert_eq!(
            imread(&png(&rgba)).unwrap().get_pixel(1, 0).0,
            [200, 100, 50]
        );
        // 0x01FF is 1 in its high byte (`image` alone would round it to 2).
        let grey16 =
            ImageBuffer::from_fn(3, 1, |x, _| Luma([[0x01FFu16, 0xFF00, 0x00FF][x as usize]]));
        let read = imread(&png(&grey16)).unwrap();
        let values: Vec<u8> = read.pixels().map(|p| p.0[0]).collect();
        assert_eq!(values, [1, 255, 0]);
        assert_eq!(read.get_pixel(0, 0).0, [1, 1, 1]);
    }

    #[test]
    fn a_jpeg_reads_through_libjpeg_turbo_and_garbage_is_an_error() {
        let image = RgbImage::from_fn(33, 17, |x, y| {
            image::Rgb([(x * 7) as u8, (y * 13) as u8, 90])
        });
        let mut jpeg = Vec::new();
        image
            .write_to(&mut Cursor::new(&mut jpeg), ImageFormat::Jpeg)
            .unwrap();
        let read = imread(&jpeg).unwrap();
        assert_eq!(read.dimensions(), (33, 17));
        let close = read
            .pixels()
            .zip(image.pixels())
            .all(|(a, b)| (0..3).all(|i| (a.0[i] as i32 - b.0[i] as i32).abs() < 24));
        assert!(close, "a JPEG reads back near its pixels");
        assert!(matches!(
            imread(b"not an image"),
            Err(ImreadError::Format(_))
        ));
    }
}
