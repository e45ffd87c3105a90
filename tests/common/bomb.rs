//! A decompression bomb: a valid 1x1 PNG whose header declares another size
//! (with the header's checksum fixed), so decoders believe it up front.
//! Shared by the server's unit tests (through `#[path]`) and end-to-end tests.

pub fn png_declaring(width: u32, height: u32) -> Vec<u8> {
    let mut png = Vec::new();
    image::RgbImage::new(1, 1)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .expect("a 1x1 PNG encodes");
    // Bytes 16..24: IHDR width and height; 29..33: the CRC of type + data.
    png[16..20].copy_from_slice(&width.to_be_bytes());
    png[20..24].copy_from_slice(&height.to_be_bytes());
    let crc = crc32fast::hash(&png[12..29]);
    png[29..33].copy_from_slice(&crc.to_be_bytes());
    png
}
