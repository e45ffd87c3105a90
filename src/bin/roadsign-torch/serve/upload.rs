//! What a request carries: the body read under a size limit, the `file`
//! field of a multipart form or a raw body, its declared type checked, and
//! images decoded under a pixel limit (a small file may declare a huge image:
//! a decompression bomb is refused from its header, before any allocation).

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Request, StatusCode};
use image::{ImageDecoder, ImageFormat, ImageReader, Limits, RgbImage};

/// An error answer: its status and message (`{"error": "..."}`), and for a
/// 405 the methods the route allows (its `Allow` header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub allow: Option<&'static str>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.status, self.message)
    }
}

/// An error, so that it can travel through the multipart parser's stream.
impl std::error::Error for ApiError {}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            allow: None,
        }
    }
    pub fn method_not_allowed(method: &str, path: &str, allow: &'static str) -> ApiError {
        ApiError {
            allow: Some(allow),
            ..ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("{method} is not allowed on {path} (allowed: {allow})"),
            )
        }
    }
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }
    pub fn too_large(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, message)
    }
    pub fn unsupported(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, message)
    }
}

/// The uploaded file.
#[derive(Debug)]
pub struct Upload {
    pub bytes: Bytes,
    /// The type the client declared for it, if any.
    pub content_type: Option<String>,
}

fn essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// What a route takes, checked from the request's headers before its body
/// is read (or any admission permit taken).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accepts {
    /// An image, raw or as a form's `file`.
    Image,
    /// A video, raw or as a form's `file`.
    Video,
    /// An Open Inference Protocol request: JSON, or JSON and binary data.
    Inference,
}

/// Refuses (415) a declared type the route cannot take; no type is taken
/// (the bytes decide).
pub fn check_declared_type(request: &Request<Incoming>, accepts: Accepts) -> Result<(), ApiError> {
    let Some(declared) = request
        .headers()
        .get(CONTENT_TYPE)
        .map(|v| essence(v.to_str().unwrap_or("?")))
    else {
        return Ok(());
    };
    let generic = GENERIC_TYPES.contains(&declared.as_str());
    let fits = match accepts {
        Accepts::Image => {
            declared == "multipart/form-data" || IMAGE_TYPES.iter().any(|(t, _)| *t == declared)
        }
        Accepts::Video => {
            declared == "multipart/form-data" || VIDEO_TYPES.contains(&declared.as_str())
        }
        Accepts::Inference => declared == "application/json",
    };
    if fits || generic {
        return Ok(());
    }
    Err(ApiError::unsupported(match accepts {
        Accepts::Image => format!("unsupported type {declared}: send JPEG, PNG or WebP"),
        Accepts::Video => format!("unsupported type {declared}: send MP4, WebM or AVI"),
        Accepts::Inference => format!("unsupported type {declared}: send application/json"),
    }))
}

/// How fast a body must arrive: after `grace`, at least `bytes_per_s` on
/// average, or the upload is cut (408) and its admission permit freed.
#[derive(Clone, Copy, Debug)]
pub struct MinimumRate {
    pub bytes_per_s: f64,
    pub grace: std::time::Duration,
}

/// A request's body as it arrives: 413 once past `max_bytes`, 408 once it
/// falls below `rate`.
struct BodyAtRate {
    body: Incoming,
    received: usize,
    started: tokio::time::Instant,
    max_bytes: usize,
    rate: MinimumRate,
}

impl BodyAtRate {
    fn new(body: Incoming, max_bytes: usize, rate: MinimumRate) -> BodyAtRate {
        BodyAtRate {
            body,
            received: 0,
            started: tokio::time::Instant::now(),
            max_bytes,
            rate,
        }
    }

    /// The next bytes of the body; `None` at its end.
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, ApiError> {
        loop {
            // By when the next bytes are due for the average to hold.
            let due = self.started
                + self.rate.grace
                + std::time::Duration::from_secs_f64(
                    self.received as f64 / self.rate.bytes_per_s.max(1.0),
                );
            let frame = match tokio::time::timeout_at(due, self.body.frame()).await {
                Err(_) => {
                    return Err(ApiError::new(
                        StatusCode::REQUEST_TIMEOUT,
                        format!(
                            "the upload arrives slower than {:.0} KiB/s",
                            self.rate.bytes_per_s / 1024.0
                        ),
                    ))
                }
                Ok(None) => return Ok(None),
                Ok(Some(Err(e))) => {
                    return Err(ApiError::bad_request(format!(
                        "the upload could not be read: {e}"
                    )))
                }
                Ok(Some(Ok(frame))) => frame,
            };
            // Trailers carry no data: wait for the next frame.
            if let Ok(data) = frame.into_data() {
                self.received += data.len();
                if self.received > self.max_bytes {
                    return Err(too_large(self.max_bytes));
                }
                return Ok(Some(data));
            }
        }
    }

    /// The body as a stream, for the multipart parser.
    fn into_stream(self) -> impl futures_util::Stream<Item = Result<Bytes, ApiError>> + Send {
        futures_util::stream::unfold(Some(self), |body| async move {
            let mut body = body?;
            match body.next_chunk().await {
                Ok(Some(chunk)) => Some((Ok(chunk), Some(body))),
                Ok(None) => None,
                // Nothing is read after an error.
                Err(e) => Some((Err(e), None)),
            }
        })
    }
}

fn too_large(max_bytes: usize) -> ApiError {
    ApiError::too_large(format!(
        "the upload is over the limit of {} MiB",
        max_bytes / (1024 * 1024)
    ))
}

/// The uploaded file's bytes as they arrive: the multipart field `file`, or
/// the whole body when it is not a form.
enum FileBytes {
    Field(multer::Field<'static>),
    Raw(BodyAtRate),
}

impl FileBytes {
    /// Finds the file in a request whose declared length was checked
    /// ([`checked_length`]). Returns it with the type the client declared
    /// for it.
    async fn open(
        request: Request<Incoming>,
        max_bytes: usize,
        rate: MinimumRate,
    ) -> Result<(FileBytes, Option<String>), ApiError> {
        let content_type = request
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(String::from);
        let body = BodyAtRate::new(request.into_body(), max_bytes, rate);
        if content_type.as_deref().map(essence).as_deref() != Some("multipart/form-data") {
            return Ok((FileBytes::Raw(body), content_type.map(|c| essence(&c))));
        }
        let boundary = multer::parse_boundary(content_type.as_deref().unwrap_or(""))
            .map_err(|e| ApiError::bad_request(format!("bad multipart form: {e}")))?;
        let mut form = multer::Multipart::new(body.into_stream(), boundary);
        loop {
            let Some(field) = form.next_field().await.map_err(form_error)? else {
                return Err(ApiError::bad_request(
                    "the multipart form has no field named 'file'",
                ));
            };
            if field.name() == Some("file") {
                let content_type = field
                    .content_type()
                    .map(|m| m.essence_str().to_ascii_lowercase());
                return Ok((FileBytes::Field(field), content_type));
            }
        }
    }

    async fn next_chunk(&mut self) -> Result<Option<Bytes>, ApiError> {
        match self {
            FileBytes::Field(field) => field.chunk().await.map_err(form_error),
            FileBytes::Raw(body) => body.next_chunk().await,
        }
    }
}

/// A form's error: the body's own (413, 408) when reading it failed.
fn form_error(error: multer::Error) -> ApiError {
    match error {
        multer::Error::StreamReadFailed(inner) => match inner.downcast::<ApiError>() {
            Ok(api) => *api,
            Err(other) => ApiError::bad_request(format!("the upload could not be read: {other}")),
        },
        other => ApiError::bad_request(format!("bad multipart form: {other}")),
    }
}

/// The memory uploads held in memory may take together, in KiB permits.
pub type MemoryBudget = Arc<tokio::sync::Semaphore>;

/// An upload's share of the [`MemoryBudget`], taken as its bytes arrive
/// and given back when it is dropped (with the bytes, by whoever has them).
#[derive(Debug)]
pub struct MemoryShare {
    budget: MemoryBudget,
    held: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl MemoryShare {
    fn new(budget: &MemoryBudget) -> MemoryShare {
        MemoryShare {
            budget: Arc::clone(budget),
            held: None,
        }
    }

    /// Holds at least `bytes`, or answers 503: the budget is spent.
    fn hold(&mut self, bytes: usize) -> Result<(), ApiError> {
        let wanted = bytes.div_ceil(1024);
        let held = self.held.as_ref().map_or(0, |p| p.num_permits());
        if wanted <= held {
            return Ok(());
        }
        let more = u32::try_from(wanted - held)
            .ok()
            .and_then(|n| Arc::clone(&self.budget).try_acquire_many_owned(n).ok())
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "overloaded: the uploads in progress hold all the memory the server gives them; try again shortly",
                )
            })?;
        match &mut self.held {
            Some(permit) => permit.merge(more),
            None => self.held = Some(more),
        }
        Ok(())
    }
}

/// An upload read into memory, and its share of the memory budget: drop
/// the share only with the bytes.
#[derive(Debug)]
pub struct Buffered {
    pub upload: Upload,
    pub memory: MemoryShare,
}

/// Reads the uploaded file of a request into memory: the multipart field
/// `file`, or the whole body when it is not a form. Bodies over `max_bytes`
/// get 413, bodies arriving slower than `rate` 408, bodies that would pass
/// what is left of `budget` 503 (from their declared length when they
/// declare one, before reading it).
pub async fn read_upload(
    request: Request<Incoming>,
    max_bytes: usize,
    rate: MinimumRate,
    budget: &MemoryBudget,
) -> Result<Buffered, ApiError> {
    let declared = checked_length(&request, max_bytes)?;
    let mut memory = MemoryShare::new(budget);
    if let Some(length) = declared {
        memory.hold(length as usize)?;
    }
    let (mut file, content_type) = FileBytes::open(request, max_bytes, rate).await?;
    // What is charged is what the buffer holds, its spare capacity too: a
    // declared length is allocated once; a body of unknown length grows.
    let mut bytes = bytes::BytesMut::with_capacity(declared.unwrap_or(0) as usize);
    while let Some(chunk) = file.next_chunk().await? {
        bytes.reserve(chunk.len());
        memory.hold(bytes.capacity())?;
        bytes.extend_from_slice(&chunk);
    }
    Ok(Buffered {
        upload: Upload {
            bytes: bytes.freeze(),
            content_type,
        },
        memory,
    })
}

/// The length a request declares, 413 when it is over `max_bytes`: checked
/// from the headers, before any of the body is read.
fn checked_length(request: &Request<Incoming>, max_bytes: usize) -> Result<Option<u64>, ApiError> {
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    match declared {
        Some(length) if length > max_bytes as u64 => Err(too_large(max_bytes)),
        _ => Ok(declared),
    }
}

/// The server failed on its own storage: the details go to the log, the
/// client is told only that.
pub fn storage_error(error: std::io::Error) -> ApiError {
    tracing::warn!("storing an upload failed: {error}");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "the server cannot store the upload (see its log)",
    )
}

/// An uploaded file written to disk.
#[derive(Debug)]
pub struct SavedUpload {
    pub size: u64,
    /// The type the client declared for it, if any.
    pub content_type: Option<String>,
}

/// Writes the uploaded file of a request to `path` as it arrives (a video
/// may be 200 MiB: it is never held in memory), under the same limits as
/// [`read_upload`].
pub async fn save_upload(
    request: Request<Incoming>,
    max_bytes: usize,
    rate: MinimumRate,
    path: &std::path::Path,
) -> Result<SavedUpload, ApiError> {
    use tokio::io::AsyncWriteExt;
    checked_length(&request, max_bytes)?;
    // Created here, before anything is awaited: a request dropped at an
    // await (its client gone) must not have a file created in the
    // background after its folder was removed, which would leave both.
    let mut out = tokio::fs::File::from_std(std::fs::File::create(path).map_err(storage_error)?);
    let (mut file, content_type) = FileBytes::open(request, max_bytes, rate).await?;
    let mut size = 0u64;
    while let Some(chunk) = file.next_chunk().await? {
        out.write_all(&chunk).await.map_err(storage_error)?;
        size += chunk.len() as u64;
    }
    out.flush().await.map_err(storage_error)?;
    Ok(SavedUpload { size, content_type })
}

/// Image types `POST /predict` takes.
const IMAGE_TYPES: [(&str, ImageFormat); 4] = [
    ("image/jpeg", ImageFormat::Jpeg),
    ("image/jpg", ImageFormat::Jpeg),
    ("image/png", ImageFormat::Png),
    ("image/webp", ImageFormat::WebP),
];

/// Types that say nothing of the content (the bytes decide).
const GENERIC_TYPES: [&str; 2] = ["application/octet-stream", "binary/octet-stream"];

/// What decoding one image may take.
#[derive(Clone, Copy, Debug)]
pub struct ImageLimits {
    /// Pixels the image may declare.
    pub max_pixels: u64,
    /// Memory its decoding may take: the decoded pixels at the file's own
    /// depth and channels (16-bit and alpha counted) and their 8-bit copy. A
    /// small PNG may declare 6000x6000 16-bit RGBA: 432 MB to decode.
    pub max_decode_bytes: u64,
}

/// Checks the declared type and the bytes of an image upload, and decodes it
/// to RGB unless it declares more than `max_pixels` pixels or would take
/// more than `max_decode_bytes` to decode.
pub fn decode_image(upload: &Upload, limits: &ImageLimits) -> Result<RgbImage, ApiError> {
    let max_pixels = limits.max_pixels;
    let declared = upload.content_type.as_deref();
    if let Some(declared) = declared {
        let known = IMAGE_TYPES.iter().any(|(t, _)| *t == declared);
        if !known && !GENERIC_TYPES.contains(&declared) {
            return Err(ApiError::unsupported(format!(
                "unsupported type {declared}: send JPEG, PNG or WebP"
            )));
        }
    }
    if upload.bytes.is_empty() {
        return Err(ApiError::bad_request("the upload is empty"));
    }
    let format = image::guess_format(&upload.bytes).map_err(|_| {
        ApiError::bad_request("the upload is not an image (no JPEG, PNG or WebP signature)")
    })?;
    if !IMAGE_TYPES.iter().any(|(_, f)| *f == format) {
        return Err(ApiError::unsupported(format!(
            "unsupported image format {format:?}: send JPEG, PNG or WebP"
        )));
    }
    if format == ImageFormat::Jpeg && !jpeg_is_complete(&upload.bytes) {
        // The decoder would fill the missing rows with grey and carry on.
        return Err(ApiError::bad_request(
            "the JPEG is truncated (no end-of-image marker after its last scan)",
        ));
    }
    let reader = || ImageReader::with_format(std::io::Cursor::new(&upload.bytes[..]), format);
    let (w, h) = reader()
        .into_dimensions()
        .map_err(|e| ApiError::bad_request(format!("the image cannot be read: {e}")))?;
    if w as u64 * h as u64 > max_pixels {
        return Err(ApiError::too_large(format!(
            "the image declares {w}x{h} pixels, over the limit of {max_pixels}"
        )));
    }
    let color = reader()
        .into_decoder()
        .map(|d| d.color_type())
        .map_err(|e| ApiError::bad_request(format!("the image cannot be read: {e}")))?;
    let depth = color.bytes_per_pixel() as u64;
    // The decoded pixels (a JPEG, grey or not, decodes straight to 3 bytes
    // a pixel) and their 8-bit RGB copy; an EXIF rotation copies the RGB
    // image once more, after the decoded pixels are gone.
    let per_pixel = depth.max(3) + 3;
    let needed = w as u64 * h as u64 * per_pixel;
    if needed > limits.max_decode_bytes {
        return Err(ApiError::too_large(format!(
            "decoding this {w}x{h} image at {depth} bytes a pixel takes {} MiB, over the limit of {} MiB",
            needed >> 20,
            limits.max_decode_bytes >> 20
        )));
    }
    let mut decoder_limits = Limits::default();
    decoder_limits.max_image_width = Some(w);
    decoder_limits.max_image_height = Some(h);
    decoder_limits.max_alloc = Some(max_pixels.saturating_mul(8).max(64 << 20));
    // Read as `roadsign predict` reads a file (as Ultralytics does): the
    // same pixels from the same upload.
    yolo::imread::imread_limited(&upload.bytes, decoder_limits)
        .map_err(|e| ApiError::bad_request(format!("the image cannot be decoded: {e}")))
}

/// Whether a JPEG has an end-of-image marker (FF D9) after the start of its
/// last scan (FF DA). Inside scans FF is always stuffed (FF 00), so the
/// marker cannot appear by chance; a thumbnail's end marker comes before.
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    let last_scan = bytes.windows(2).rposition(|w| w == [0xFF, 0xDA]);
    match last_scan {
        Some(at) => bytes[at..].windows(2).any(|w| w == [0xFF, 0xD9]),
        None => false,
    }
}

/// Video types `POST /predict/video` takes (the bytes are then probed).
const VIDEO_TYPES: [&str; 7] = [
    "video/mp4",
    "video/webm",
    "video/x-msvideo",
    "video/avi",
    "video/msvideo",
    "video/quicktime",
    "video/x-matroska",
];

pub fn check_video_type(upload: &SavedUpload) -> Result<(), ApiError> {
    match upload.content_type.as_deref() {
        Some(t) if !VIDEO_TYPES.contains(&t) && !GENERIC_TYPES.contains(&t) => Err(
            ApiError::unsupported(format!("unsupported type {t}: send MP4, WebM or AVI")),
        ),
        _ if upload.size == 0 => Err(ApiError::bad_request("the upload is empty")),
        _ => Ok(()),
    }
}

#[cfg(test)]
#[path = "../../../../tests/common/bomb.rs"]
mod bomb_png;

#[cfg(test)]
mod tests {
    use super::*;

    use bomb_png as bomb;

    fn upload(bytes: Vec<u8>, content_type: Option<&str>) -> Upload {
        Upload {
            bytes: Bytes::from(bytes),
            content_type: content_type.map(String::from),
        }
    }

    fn pixels(max_pixels: u64) -> ImageLimits {
        ImageLimits {
            max_pixels,
            max_decode_bytes: u64::MAX,
        }
    }

    #[test]
    fn images_that_take_too_much_memory_to_decode_are_refused_from_their_header() {
        // 1000x1000 16-bit RGBA: 8 bytes a pixel, and 3 for the 8-bit RGB copy
        // (alpha dropped): 11,000,000 bytes, over 10 MiB, under 11 MiB.
        let rgba16 = image::ImageBuffer::<image::Rgba<u16>, _>::new(1000, 1000);
        let mut png16 = Vec::new();
        rgba16
            .write_to(&mut std::io::Cursor::new(&mut png16), ImageFormat::Png)
            .unwrap();
        let budget = |mb: u64| ImageLimits {
            max_pixels: 40_000_000,
            max_decode_bytes: mb << 20,
        };
        let err = decode_image(&upload(png16.clone(), None), &budget(10)).unwrap_err();
        assert_eq!(err.status, 413, "{}", err.message);
        assert!(err.message.contains("8 bytes a pixel"), "{}", err.message);
        assert!(decode_image(&upload(png16, None), &budget(11)).is_ok());
        // The same size in 8-bit RGB fits the budget the 16-bit one did not.
        assert!(decode_image(&upload(png(1000, 1000), None), &budget(6)).is_ok());
    }

    fn png(w: u32, h: u32) -> Vec<u8> {
        let mut out = Vec::new();
        RgbImage::new(w, h)
            .write_to(&mut std::io::Cursor::new(&mut out), ImageFormat::Png)
            .unwrap();
        out
    }

    #[test]
    fn images_decode_and_bad_ones_get_their_status() {
        let ok = decode_image(&upload(png(8, 6), Some("image/png")), &pixels(1000)).unwrap();
        assert_eq!(ok.dimensions(), (8, 6));
        let raw = decode_image(&upload(png(8, 6), None), &pixels(1000)).unwrap();
        assert_eq!(raw.dimensions(), (8, 6));
        let status = |u: Upload, max| decode_image(&u, &pixels(max)).unwrap_err().status;
        assert_eq!(status(upload(png(8, 6), Some("text/plain")), 1000), 415);
        assert_eq!(status(upload(b"GIF89a......".to_vec(), None), 1000), 415);
        assert_eq!(status(upload(b"garbage bytes".to_vec(), None), 1000), 400);
        assert_eq!(status(upload(Vec::new(), Some("image/png")), 1000), 400);
        let mut truncated = png(64, 64);
        truncated.truncate(truncated.len() / 2);
        assert_eq!(status(upload(truncated, Some("image/png")), 100_000), 400);
        assert_eq!(status(upload(png(100, 100), Some("image/png")), 1000), 413);
    }

    #[test]
    fn a_png_declaring_a_huge_size_is_refused_from_its_header() {
        // A valid PNG header declaring 100000 x 100000 pixels, and no data.
        let bomb = bomb::png_declaring(100_000, 100_000);
        let err = decode_image(&upload(bomb, Some("image/png")), &pixels(40_000_000)).unwrap_err();
        assert_eq!(err.status, 413, "{}", err.message);
        assert!(err.message.contains("100000x100000"));
    }

    #[test]
    fn truncated_jpegs_are_caught() {
        let mut jpeg = Vec::new();
        RgbImage::from_fn(64, 64, |x, y| image::Rgb([x as u8 * 4, y as u8 * 4, 90]))
            .write_to(&mut std::io::Cursor::new(&mut jpeg), ImageFormat::Jpeg)
            .unwrap();
        assert!(jpeg_is_complete(&jpeg));
        assert!(decode_image(&upload(jpeg.clone(), Some("image/jpeg")), &pixels(10_000)).is_ok());
        let cut = jpeg[..jpeg.len() * 2 / 3].to_vec();
        assert!(!jpeg_is_complete(&cut));
        let err = decode_image(&upload(cut, Some("image/jpeg")), &pixels(10_000)).unwrap_err();
        assert_eq!(err.status, 400);
        assert!(err.message.contains("truncated"));
        assert!(!jpeg_is_complete(&[0xFF, 0xD8, 0xFF, 0xD9]));
    }

    #[test]
    fn memory_shares_come_out_of_one_budget_and_go_back_with_their_bytes() {
        let budget: MemoryBudget = Arc::new(tokio::sync::Semaphore::new(10));
        let mut first = MemoryShare::new(&budget);
        first.hold(4000).unwrap();
        first.hold(6 * 1024).unwrap();
        first.hold(100).unwrap();
        assert_eq!(budget.available_permits(), 4);
        let mut second = MemoryShare::new(&budget);
        assert_eq!(second.hold(5 * 1024).unwrap_err().status, 503);
        second.hold(4 * 1024).unwrap();
        drop(first);
        assert_eq!(budget.available_permits(), 6);
    }

    #[test]
    fn video_types_are_checked() {
        let saved = |size, content_type: Option<&str>| SavedUpload {
            size,
            content_type: content_type.map(String::from),
        };
        assert!(check_video_type(&saved(1, Some("video/mp4"))).is_ok());
        assert!(check_video_type(&saved(1, None)).is_ok());
        assert_eq!(
            check_video_type(&saved(1, Some("image/png")))
                .unwrap_err()
                .status,
            415
        );
        assert_eq!(check_video_type(&saved(0, None)).unwrap_err().status, 400);
        assert_eq!(
            essence("Multipart/Form-Data; boundary=x"),
            "multipart/form-data"
        );
    }
}
