//! How every picture the project draws looks: the bundled font, one colour
//! per class (the same in plots, annotated images and videos) and the ink
//! that reads on it.

use std::sync::OnceLock;

use ab_glyph::FontRef;
use image::Rgb;

/// DejaVu Sans Condensed Bold (licence in `assets/fonts/LICENSE-DejaVu.txt`),
/// embedded once; plotters needs the raw bytes (`register_font` takes
/// `&'static [u8]`), imageproc a parsed font.
pub(crate) const FONT_BYTES: &[u8] = include_bytes!("../assets/fonts/DejaVuSansCondensed-Bold.ttf");

pub fn font() -> &'static FontRef<'static> {
    static FONT: OnceLock<FontRef<'static>> = OnceLock::new();
    FONT.get_or_init(|| FontRef::try_from_slice(FONT_BYTES).expect("the bundled font parses"))
}

/// Ultralytics' `Colors` palette (`ultralytics/utils/plotting.py`), so boxes
/// and curves have the colours people know from its plots.
const PALETTE: [[u8; 3]; 20] = [
    [0xFF, 0x38, 0x38],
    [0xFF, 0x9D, 0x97],
    [0xFF, 0x70, 0x1F],
    [0xFF, 0xB2, 0x1D],
    [0xCF, 0xD2, 0x31],
    [0x48, 0xF9, 0x0A],
    [0x92, 0xCC, 0x17],
    [0x3D, 0xDB, 0x86],
    [0x1A, 0x93, 0x34],
    [0x00, 0xD4, 0xBB],
    [0x2C, 0x99, 0xA8],
    [0x00, 0xC2, 0xFF],
    [0x34, 0x45, 0x93],
    [0x64, 0x73, 0xFF],
    [0x00, 0x18, 0xEC],
    [0x84, 0x38, 0xFF],
    [0x52, 0x00, 0x85],
    [0xCB, 0x38, 0xFF],
    [0xFF, 0x95, 0xC8],
    [0xFF, 0x37, 0xC7],
];

/// The colour of a class by its index, in every figure, image and frame: a
/// fixed palette, cycled.
pub fn class_colour(class: usize) -> Rgb<u8> {
    Rgb(PALETTE[class % PALETTE.len()])
}

/// Black or white, whichever reads better on `background`.
pub fn ink_for(background: Rgb<u8>) -> Rgb<u8> {
    let [r, g, b] = background.0.map(f32::from);
    if 0.299 * r + 0.587 * g + 0.114 * b > 150.0 {
        Rgb([0, 0, 0])
    } else {
        Rgb([255, 255, 255])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_keep_distinct_colours_and_readable_ink() {
        assert_eq!(class_colour(0), Rgb([255, 56, 56]));
        assert_eq!(class_colour(20), class_colour(0));
        let distinct: std::collections::HashSet<_> = (0..20).map(class_colour).collect();
        assert_eq!(distinct.len(), 20);
        assert_eq!(ink_for(Rgb([255, 255, 0])), Rgb([0, 0, 0]));
        assert_eq!(ink_for(Rgb([0, 24, 236])), Rgb([255, 255, 255]));
        assert_ne!(ab_glyph::Font::glyph_id(font(), '8').0, 0);
    }
}
