//! The Open Inference Protocol (KServe's "v2" REST protocol)
//! beside the other routes: what any v2 client or gateway (tritonclient,
//! KServe's InferenceService) can call.
//!
//! This module is the protocol's wire format only: routes, the request
//! (JSON, or a JSON header followed by the binary tensor data extension's
//! bytes), the input tensors as images, and the response tensors. Running the
//! detector and the OCR stays with the server's workers and [`Predictor`].
//!
//! [`Predictor`]: crate::predictor::Predictor

use base64::Engine as _;
use bytes::Bytes;
use hyper::StatusCode;
use image::RgbImage;
use serde::de::{DeserializeSeed, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{json, Value};

use nodes::predict::Prediction;

use super::upload::{decode_image, ApiError, ImageLimits, Upload};
use crate::predictor::DetectSettings;

/// The binary tensor data extension's header: the JSON part's length.
pub const HEADER_LENGTH: &str = "inference-header-content-length";

/// What the server calls its model: `name` and `version` from the model
/// file's metadata, else the file's stem and `1`; `serve.model_name`
/// overrides the name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelIdentity {
    pub name: String,
    pub version: String,
}

/// A v2 route, parsed from the path.
#[derive(Debug, PartialEq, Eq)]
pub enum Route<'a> {
    Server,
    Live,
    Ready,
    Model(ModelRef<'a>),
    ModelReady(ModelRef<'a>),
    Infer(ModelRef<'a>),
}

/// `/v2/models/{name}[/versions/{version}]`.
#[derive(Debug, PartialEq, Eq)]
pub struct ModelRef<'a> {
    pub name: &'a str,
    pub version: Option<&'a str>,
}

impl Route<'_> {
    /// The metric label of the route (a fixed set: no model names).
    pub fn label(&self) -> &'static str {
        match self {
            Route::Server => "/v2",
            Route::Live => "/v2/health/live",
            Route::Ready => "/v2/health/ready",
            Route::Model(_) => "/v2/models",
            Route::ModelReady(_) => "/v2/models/ready",
            Route::Infer(_) => "/v2/models/infer",
        }
    }
}

/// The v2 route of a path, if it is one.
pub fn route(path: &str) -> Option<Route<'_>> {
    match path.trim_end_matches('/') {
        "/v2" => return Some(Route::Server),
        "/v2/health/live" => return Some(Route::Live),
        "/v2/health/ready" => return Some(Route::Ready),
        _ => {}
    }
    let rest = path.strip_prefix("/v2/models/")?;
    let parts: Vec<&str> = rest.split('/').collect();
    let (model, tail) = match parts.as_slice() {
        [name, "versions", version, tail @ ..] if !version.is_empty() => (
            ModelRef {
                name,
                version: Some(version),
            },
            tail,
        ),
        [name, tail @ ..] => (
            ModelRef {
                name,
                version: None,
            },
            tail,
        ),
        [] => return None,
    };
    if model.name.is_empty() {
        return None;
    }
    match tail {
        [] => Some(Route::Model(model)),
        ["ready"] => Some(Route::ModelReady(model)),
        ["infer"] => Some(Route::Infer(model)),
        _ => None,
    }
}

impl ModelIdentity {
    /// Whether a route names this model (and, when it names one, its version).
    pub fn check(&self, model: &ModelRef<'_>) -> Result<(), ApiError> {
        if model.name != self.name {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                format!(
                    "unknown model '{}': this server serves '{}'",
                    model.name, self.name
                ),
            ));
        }
        match model.version {
            Some(v) if v != self.version => Err(ApiError::new(
                StatusCode::NOT_FOUND,
                format!(
                    "model '{}' has no version '{v}' (served: '{}')",
                    self.name, self.version
                ),
            )),
            _ => Ok(()),
        }
    }

    /// The model metadata response: every input and output with its
    /// datatype and shape (-1 where it varies).
    pub fn metadata(&self) -> Value {
        json!({
            "name": self.name,
            "versions": [self.version],
            "platform": "roadsign_libtorch",
            "inputs": [
                {"name": "image", "datatype": "BYTES", "shape": [-1]},
                {"name": "pixels", "datatype": "UINT8", "shape": [-1, -1, -1, 3]},
            ],
            "outputs": [
                {"name": "boxes", "datatype": "FP32", "shape": [-1, 4]},
                {"name": "scores", "datatype": "FP32", "shape": [-1]},
                {"name": "classes", "datatype": "BYTES", "shape": [-1]},
                {"name": "texts", "datatype": "BYTES", "shape": [-1]},
            ],
        })
    }
}

/// The server metadata response.
pub fn server_metadata() -> Value {
    json!({
        "name": "roadsign",
        "version": env!("CARGO_PKG_VERSION"),
        "extensions": ["binary_tensor_data"],
    })
}

/// The four outputs, in the order they are answered.
const OUTPUTS: [&str; 4] = ["boxes", "scores", "classes", "texts"];

#[derive(Debug, Deserialize)]
struct RequestJson {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    parameters: RequestParameters,
    inputs: Vec<InputJson>,
    #[serde(default)]
    outputs: Option<Vec<OutputJson>>,
}

/// The request parameters roadsign reads. Others are skipped as they are
/// parsed, never kept: a parameter may be as large as the body.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RequestParameters {
    conf: Option<f64>,
    iou: Option<f64>,
    imgsz: Option<u64>,
    binary_data_output: Option<bool>,
}

#[derive(Debug, Deserialize)]
struct InputJson {
    name: String,
    shape: Vec<i64>,
    datatype: String,
    #[serde(default)]
    parameters: InputParameters,
    #[serde(default)]
    data: Option<FlatData>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct InputParameters {
    binary_data_size: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct OutputJson {
    name: String,
    #[serde(default)]
    parameters: OutputParameters,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct OutputParameters {
    binary_data: Option<bool>,
}

/// Strings a request's tensor data may hold (encoded images, one each): far
/// more than any batch, few enough that their bookkeeping stays small.
const MAX_STRINGS: usize = 1024;

/// Tensor data as JSON gives it (nested or flat, row-major), flattened as it
/// is read: bytes for numbers (only UINT8 tensors are numeric here), strings
/// otherwise. A decoded image in JSON is millions of numbers: one byte each,
/// never a JSON value each.
#[derive(Debug, Default, PartialEq)]
struct FlatData {
    numbers: Vec<u8>,
    strings: Vec<String>,
}

impl<'de> Deserialize<'de> for FlatData {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut data = FlatData::default();
        Flatten(&mut data).deserialize(d)?;
        Ok(data)
    }
}

/// Appends one JSON value (a number, a string, or an array of them) to the data.
struct Flatten<'a>(&'a mut FlatData);

impl<'de> DeserializeSeed<'de> for Flatten<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Flatten<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("tensor data: numbers from 0 to 255 or strings, in (nested) arrays")
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<(), E> {
        let byte = u8::try_from(v).map_err(|_| E::custom(format!("{v} is not a UINT8")))?;
        self.0.numbers.push(byte);
        Ok(())
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<(), E> {
        let byte = u8::try_from(v).map_err(|_| E::custom(format!("{v} is not a UINT8")))?;
        self.0.numbers.push(byte);
        Ok(())
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<(), E> {
        if v.fract() != 0.0 || !(0.0..=255.0).contains(&v) {
            return Err(E::custom(format!("{v} is not a UINT8")));
        }
        self.0.numbers.push(v as u8);
        Ok(())
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<(), E> {
        if self.0.strings.len() >= MAX_STRINGS {
            return Err(E::custom(format!("more than {MAX_STRINGS} strings")));
        }
        self.0.strings.push(v.to_string());
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Flatten(self.0))?.is_some() {}
        Ok(())
    }
}

/// One image of a request: encoded bytes (decoded on a worker, under the
/// server's limits) or pixels already.
#[derive(Debug)]
pub enum ImageInput {
    Encoded(Bytes),
    Pixels(RgbImage),
}

impl ImageInput {
    /// The image as RGB pixels; an encoded one is checked as an upload is.
    pub fn decode(self, limits: &ImageLimits) -> Result<RgbImage, ApiError> {
        match self {
            ImageInput::Pixels(image) => Ok(image),
            ImageInput::Encoded(bytes) => decode_image(
                &Upload {
                    bytes,
                    content_type: None,
                },
                limits,
            ),
        }
    }
}

/// An output the client asked for, and whether as binary data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WantedOutput {
    pub name: &'static str,
    pub binary: bool,
}

/// A parsed inference request.
#[derive(Debug)]
pub struct InferRequest {
    pub id: Option<String>,
    pub images: Vec<ImageInput>,
    /// Whether the request carries several images: outputs then have a
    /// leading image dimension (one image answers `[K, 4]`, `[K]`).
    pub batched: bool,
    pub outputs: Vec<WantedOutput>,
    pub settings: DetectSettings,
}

/// What a request may ask of the server.
#[derive(Clone, Copy, Debug)]
pub struct RequestLimits {
    pub max_batch: usize,
    pub max_pixels: u64,
}

impl RequestLimits {
    /// Refuses (413) more images than a request may carry, from the
    /// input's shape, before any element is built.
    fn check_batch(&self, images: usize) -> Result<(), ApiError> {
        if images > self.max_batch {
            return Err(ApiError::too_large(format!(
                "{images} images in one request, over the limit of {}",
                self.max_batch
            )));
        }
        Ok(())
    }
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::bad_request(message)
}

/// Parses an inference request: `body` is JSON, or with `header_length` a
/// JSON header followed by the binary data of the inputs that say
/// `binary_data_size`, in their order.
pub fn parse_request(
    body: &Bytes,
    header_length: Option<usize>,
    limits: &RequestLimits,
) -> Result<InferRequest, ApiError> {
    let json_length = header_length.unwrap_or(body.len());
    if json_length > body.len() {
        return Err(bad(format!(
            "Inference-Header-Content-Length is {json_length} but the body has {} bytes",
            body.len()
        )));
    }
    let request: RequestJson = serde_json::from_slice(&body[..json_length])
        .map_err(|e| bad(format!("the inference request is not valid JSON: {e}")))?;
    let mut binary = body.slice(json_length..);
    let [input] = <[InputJson; 1]>::try_from(request.inputs).map_err(|inputs| {
        bad(format!(
            "expected one input ('image' BYTES or 'pixels' UINT8), got {}",
            inputs.len()
        ))
    })?;
    let raw = match input.parameters.binary_data_size {
        Some(size) => {
            let size = usize::try_from(size).unwrap_or(usize::MAX);
            if size > binary.len() {
                return Err(bad(format!(
                    "input '{}' has {size} bytes of binary data, the body only {}",
                    input.name,
                    binary.len()
                )));
            }
            Some(binary.split_to(size))
        }
        None => None,
    };
    if !binary.is_empty() {
        return Err(bad(format!(
            "{} bytes after the inputs' binary data",
            binary.len()
        )));
    }
    let images = match input.datatype.as_str() {
        "BYTES" => encoded_images(&input, raw, limits)?,
        "UINT8" => pixel_images(&input, raw, limits)?,
        other => {
            return Err(bad(format!(
                "input '{}' is {other}: send encoded images as BYTES or pixels as UINT8",
                input.name
            )))
        }
    };
    if images.is_empty() {
        return Err(bad("the request has no image"));
    }
    Ok(InferRequest {
        id: request.id,
        batched: images.len() > 1,
        images,
        outputs: wanted_outputs(request.outputs, &request.parameters)?,
        settings: settings(&request.parameters)?,
    })
}

/// Shape dimensions as sizes (none negative), and their product.
fn dimensions(input: &InputJson) -> Result<(Vec<usize>, usize), ApiError> {
    let dims: Vec<usize> = input
        .shape
        .iter()
        .map(|&d| usize::try_from(d))
        .collect::<Result<_, _>>()
        .map_err(|_| bad(format!("input '{}' has a negative dimension", input.name)))?;
    let count = dims
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .ok_or_else(|| bad(format!("input '{}' has an impossible shape", input.name)))?;
    Ok((dims, count))
}

/// Encoded images of a BYTES input: base64 strings in JSON, or the binary
/// extension's elements (a 4-byte little-endian length, then the bytes).
fn encoded_images(
    input: &InputJson,
    raw: Option<Bytes>,
    limits: &RequestLimits,
) -> Result<Vec<ImageInput>, ApiError> {
    let (dims, count) = dimensions(input)?;
    if dims.len() != 1 {
        return Err(bad(format!(
            "input '{}' (BYTES) must have shape [N]: one encoded image per element",
            input.name
        )));
    }
    limits.check_batch(count)?;
    let elements: Vec<Bytes> = match (raw, &input.data) {
        (Some(mut raw), _) => {
            let mut out = Vec::new();
            while !raw.is_empty() {
                if out.len() == count {
                    return Err(bad(format!(
                        "input '{}' has shape [{count}] but more elements",
                        input.name
                    )));
                }
                if raw.len() < 4 {
                    return Err(bad("BYTES binary data ends inside an element's length"));
                }
                let length = u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]) as usize;
                let _ = raw.split_to(4);
                if length > raw.len() {
                    return Err(bad("BYTES binary data ends inside an element"));
                }
                out.push(raw.split_to(length));
            }
            out
        }
        (None, Some(data)) => {
            if !data.numbers.is_empty() {
                return Err(bad(format!(
                    "input '{}' (BYTES) holds numbers: send base64 strings",
                    input.name
                )));
            }
            data.strings
                .iter()
                .map(|s| {
                    base64::engine::general_purpose::STANDARD
                        .decode(s.trim())
                        .map(Bytes::from)
                        .map_err(|e| {
                            bad(format!(
                                "input '{}': an element is not base64 ({e})",
                                input.name
                            ))
                        })
                })
                .collect::<Result<_, _>>()?
        }
        (None, None) => return Err(bad(format!("input '{}' has no data", input.name))),
    };
    if elements.len() != count {
        return Err(bad(format!(
            "input '{}' has shape [{count}] but {} elements",
            input.name,
            elements.len()
        )));
    }
    Ok(elements.into_iter().map(ImageInput::Encoded).collect())
}

/// Images of a UINT8 input, `[H, W, 3]` (one) or `[N, H, W, 3]`.
fn pixel_images(
    input: &InputJson,
    raw: Option<Bytes>,
    limits: &RequestLimits,
) -> Result<Vec<ImageInput>, ApiError> {
    let (dims, count) = dimensions(input)?;
    let (n, h, w) = match dims.as_slice() {
        [h, w, 3] => (1, *h, *w),
        [n, h, w, 3] => (*n, *h, *w),
        _ => {
            return Err(bad(format!(
                "input '{}' (UINT8) must have shape [H, W, 3] or [N, H, W, 3]",
                input.name
            )))
        }
    };
    if h == 0 || w == 0 {
        return Err(bad(format!("input '{}' has an empty image", input.name)));
    }
    if (h as u64).saturating_mul(w as u64) > limits.max_pixels {
        return Err(ApiError::too_large(format!(
            "{w}x{h} pixels, over the limit of {}",
            limits.max_pixels
        )));
    }
    limits.check_batch(n)?;
    // The pixels as they came (binary data, or the numbers parsed from
    // JSON): each image copies its own part out once.
    let bytes: &[u8] = match (&raw, &input.data) {
        (Some(raw), _) => raw,
        (None, Some(data)) if data.strings.is_empty() => &data.numbers,
        (None, Some(_)) => {
            return Err(bad(format!("input '{}' (UINT8) holds strings", input.name)))
        }
        (None, None) => return Err(bad(format!("input '{}' has no data", input.name))),
    };
    if bytes.len() != count {
        return Err(bad(format!(
            "input '{}' has shape {:?} ({count} values) but {} values",
            input.name,
            input.shape,
            bytes.len()
        )));
    }
    bytes
        .chunks_exact(h * w * 3)
        .map(|pixels| {
            RgbImage::from_raw(w as u32, h as u32, pixels.to_vec())
                .map(ImageInput::Pixels)
                .ok_or_else(|| bad("the pixels do not fill the image"))
        })
        .collect()
}

/// The outputs asked for (all four when the request names none, each at
/// most once), each as binary data when its `binary_data` parameter or the
/// request's `binary_data_output` says so.
fn wanted_outputs(
    outputs: Option<Vec<OutputJson>>,
    parameters: &RequestParameters,
) -> Result<Vec<WantedOutput>, ApiError> {
    let all_binary = parameters.binary_data_output.unwrap_or(false);
    let Some(outputs) = outputs else {
        return Ok(OUTPUTS
            .into_iter()
            .map(|name| WantedOutput {
                name,
                binary: all_binary,
            })
            .collect());
    };
    let mut wanted: Vec<WantedOutput> = Vec::new();
    for o in &outputs {
        let name = OUTPUTS.into_iter().find(|n| *n == o.name).ok_or_else(|| {
            bad(format!(
                "unknown output '{}' (the model has boxes, scores, classes, texts)",
                o.name
            ))
        })?;
        if wanted.iter().any(|w| w.name == name) {
            return Err(bad(format!("output '{name}' is asked for twice")));
        }
        wanted.push(WantedOutput {
            name,
            binary: o.parameters.binary_data.unwrap_or(all_binary),
        });
    }
    Ok(wanted)
}

/// The detector settings a request may give: `conf` and `iou` in [0, 1],
/// `imgsz` a multiple of 32 up to 1920.
fn settings(parameters: &RequestParameters) -> Result<DetectSettings, ApiError> {
    let fraction = |key: &str, value: Option<f64>| match value {
        Some(x) if !(0.0..=1.0).contains(&x) => Err(bad(format!(
            "parameter {key} must be a number in [0, 1], not {x}"
        ))),
        other => Ok(other.map(|x| x as f32)),
    };
    let imgsz = match parameters.imgsz {
        Some(s) if !((32..=1920).contains(&s) && s % 32 == 0) => {
            return Err(bad(format!(
                "parameter imgsz must be a multiple of 32 from 32 to 1920, not {s}"
            )))
        }
        other => other.map(|s| s as u32),
    };
    Ok(DetectSettings {
        conf: fraction("conf", parameters.conf)?,
        iou: fraction("iou", parameters.iou)?,
        imgsz,
    })
}

/// The response: its JSON header, and the binary data of the outputs sent
/// as binary (empty when none is).
pub fn response(
    model: &ModelIdentity,
    request_id: Option<&str>,
    predictions: &[Prediction],
    batched: bool,
    outputs: &[WantedOutput],
) -> (Value, Vec<u8>) {
    // Rows per image: images of one batch are padded to the longest, with
    // score 0 and empty class and text.
    let rows = predictions
        .iter()
        .map(|p| p.detections.len())
        .max()
        .unwrap_or(0);
    let prefix: Vec<usize> = if batched {
        vec![predictions.len(), rows]
    } else {
        vec![rows]
    };
    let shape = |tail: &[usize]| -> Vec<usize> { prefix.iter().chain(tail).copied().collect() };
    let mut binary = Vec::new();
    let mut tensors = Vec::new();
    for output in outputs {
        let (datatype, shape, tensor) = match output.name {
            "boxes" => (
                "FP32",
                shape(&[4]),
                Tensor::floats(predictions, rows, |d| d.bbox.to_vec(), 4),
            ),
            "scores" => (
                "FP32",
                shape(&[]),
                Tensor::floats(predictions, rows, |d| vec![d.confidence], 1),
            ),
            "classes" => (
                "BYTES",
                shape(&[]),
                Tensor::strings(predictions, rows, |d| d.class.clone()),
            ),
            _ => (
                "BYTES",
                shape(&[]),
                Tensor::strings(predictions, rows, |d| d.text.clone().unwrap_or_default()),
            ),
        };
        let mut entry = json!({"name": output.name, "datatype": datatype, "shape": shape});
        if output.binary {
            let bytes = tensor.to_binary();
            entry["parameters"] = json!({"binary_data_size": bytes.len()});
            binary.extend(bytes);
        } else {
            entry["data"] = tensor.to_json();
        }
        tensors.push(entry);
    }
    let mut header = json!({
        "model_name": model.name,
        "model_version": model.version,
        "outputs": tensors,
    });
    if let Some(id) = request_id {
        header["id"] = json!(id);
    }
    (header, binary)
}

/// An output tensor's values, row-major.
enum Tensor {
    Floats(Vec<f32>),
    Strings(Vec<String>),
}

impl Tensor {
    fn floats(
        predictions: &[Prediction],
        rows: usize,
        values: impl Fn(&nodes::predict::SignDetection) -> Vec<f32>,
        width: usize,
    ) -> Tensor {
        let mut out = Vec::new();
        for p in predictions {
            for d in &p.detections {
                out.extend(values(d));
            }
            out.extend(std::iter::repeat_n(
                0.0,
                (rows - p.detections.len()) * width,
            ));
        }
        Tensor::Floats(out)
    }

    fn strings(
        predictions: &[Prediction],
        rows: usize,
        value: impl Fn(&nodes::predict::SignDetection) -> String,
    ) -> Tensor {
        let mut out = Vec::new();
        for p in predictions {
            out.extend(p.detections.iter().map(&value));
            out.extend(std::iter::repeat_n(
                String::new(),
                rows - p.detections.len(),
            ));
        }
        Tensor::Strings(out)
    }

    fn to_json(&self) -> Value {
        match self {
            Tensor::Floats(v) => json!(v),
            Tensor::Strings(v) => json!(v),
        }
    }

    /// The binary extension's layout: little-endian floats; strings as a
    /// 4-byte little-endian length and their UTF-8 bytes.
    fn to_binary(&self) -> Vec<u8> {
        match self {
            Tensor::Floats(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Tensor::Strings(v) => v
                .iter()
                .flat_map(|s| {
                    let mut element = (s.len() as u32).to_le_bytes().to_vec();
                    element.extend(s.as_bytes());
                    element
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: RequestLimits = RequestLimits {
        max_batch: 4,
        max_pixels: 10_000,
    };

    fn png(w: u32, h: u32) -> Vec<u8> {
        let mut out = Vec::new();
        RgbImage::from_pixel(w, h, image::Rgb([10, 20, 30]))
            .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
            .unwrap();
        out
    }

    fn parse(body: Value) -> Result<InferRequest, ApiError> {
        parse_request(&Bytes::from(body.to_string()), None, &LIMITS)
    }

    #[test]
    fn routes_with_and_without_versions() {
        let m = |name, version| ModelRef { name, version };
        assert_eq!(route("/v2"), Some(Route::Server));
        assert_eq!(route("/v2/"), Some(Route::Server));
        assert_eq!(route("/v2/health/live"), Some(Route::Live));
        assert_eq!(route("/v2/health/ready"), Some(Route::Ready));
        let cases = [
            ("/v2/models/signs", Route::Model(m("signs", None))),
            (
                "/v2/models/signs/versions/3/infer",
                Route::Infer(m("signs", Some("3"))),
            ),
            (
                "/v2/models/signs/ready",
                Route::ModelReady(m("signs", None)),
            ),
            (
                "/v2/models/signs/versions/3",
                Route::Model(m("signs", Some("3"))),
            ),
        ];
        for (path, expected) in cases {
            assert_eq!(route(path), Some(expected), "{path}");
        }
        assert_eq!(route("/v2/models/signs/predict"), None);
        assert_eq!(route("/v2/models/"), None);
        assert_eq!(route("/v1/models/signs"), None);
        let identity = ModelIdentity {
            name: "signs".into(),
            version: "3".into(),
        };
        assert!(identity.check(&m("signs", None)).is_ok());
        assert!(identity.check(&m("signs", Some("3"))).is_ok());
        assert_eq!(identity.check(&m("other", None)).unwrap_err().status, 404);
        assert_eq!(
            identity.check(&m("signs", Some("4"))).unwrap_err().status,
            404
        );
    }

    #[test]
    fn encoded_images_as_base64_json_and_as_binary_data() {
        let image = png(4, 3);
        let b64 = base64::engine::general_purpose::STANDARD.encode(&image);
        let request = parse(json!({"id": "7", "inputs": [
            {"name": "image", "shape": [2], "datatype": "BYTES", "data": [b64, b64]}]}))
        .unwrap();
        assert_eq!(request.id.as_deref(), Some("7"));
        assert!(request.batched);
        assert_eq!(request.images.len(), 2);
        let decoded = request
            .images
            .into_iter()
            .next()
            .unwrap()
            .decode(&ImageLimits {
                max_pixels: 100,
                max_decode_bytes: u64::MAX,
            })
            .unwrap();
        assert_eq!(decoded.dimensions(), (4, 3));
        assert_eq!(request.outputs.len(), 4);
        assert!(request.outputs.iter().all(|o| !o.binary));

        // the same as the binary tensor data extension sends it
        let mut data = (image.len() as u32).to_le_bytes().to_vec();
        data.extend(&image);
        let header = json!({"inputs": [{"name": "image", "shape": [1], "datatype": "BYTES",
            "parameters": {"binary_data_size": data.len()}}],
            "outputs": [{"name": "scores", "parameters": {"binary_data": true}}, {"name": "texts"}]})
        .to_string();
        let mut body = header.clone().into_bytes();
        body.extend(&data);
        let request = parse_request(&Bytes::from(body), Some(header.len()), &LIMITS).unwrap();
        assert_eq!(request.images.len(), 1);
        assert_eq!(
            request.outputs,
            [
                WantedOutput {
                    name: "scores",
                    binary: true
                },
                WantedOutput {
                    name: "texts",
                    binary: false
                }
            ]
        );
    }

    #[test]
    fn pixels_of_one_image_and_of_a_batch() {
        let pixels: Vec<u8> = (0..2 * 2 * 3).map(|i| i as u8).collect();
        let request = parse(json!({"inputs": [{"name": "pixels", "shape": [2, 2, 3],
            "datatype": "UINT8", "data": [[[0, 1, 2], [3, 4, 5]], [[6, 7, 8], [9, 10, 11]]]}],
            "parameters": {"conf": 0.5, "imgsz": 320, "binary_data_output": true}}))
        .unwrap();
        assert!(!request.batched);
        assert_eq!(
            request.settings,
            DetectSettings {
                conf: Some(0.5),
                iou: None,
                imgsz: Some(320)
            }
        );
        assert!(request.outputs.iter().all(|o| o.binary));
        let ImageInput::Pixels(image) = request.images.into_iter().next().unwrap() else {
            panic!("pixels")
        };
        assert_eq!(image.into_raw(), pixels);
        let header =
            json!({"inputs": [{"name": "pixels", "shape": [2, 1, 2, 3], "datatype": "UINT8",
            "parameters": {"binary_data_size": 12}}]})
            .to_string();
        let mut body = header.clone().into_bytes();
        body.extend(&pixels);
        let request = parse_request(&Bytes::from(body), Some(header.len()), &LIMITS).unwrap();
        assert!(request.batched);
        assert_eq!(request.images.len(), 2);
    }

    #[test]
    fn bad_requests_get_their_status() {
        let status = |body: Value| parse(body).unwrap_err().status.as_u16();
        let input = |shape: Value, datatype: &str, data: Value| json!({"inputs": [{"name": "x", "shape": shape, "datatype": datatype, "data": data}]});
        assert_eq!(status(json!({"inputs": []})), 400);
        assert_eq!(status(input(json!([1]), "FP32", json!([1.0]))), 400);
        assert_eq!(status(input(json!([1]), "BYTES", json!(["%%%"]))), 400);
        assert_eq!(status(input(json!([2]), "BYTES", json!(["AAAA"]))), 400);
        assert_eq!(
            status(input(json!([1, 1, 3]), "UINT8", json!([1, 2, 300]))),
            400
        );
        assert_eq!(status(input(json!([1, 1, 3]), "UINT8", json!([1, 2]))), 400);
        assert_eq!(
            status(input(json!([1, 1, 4]), "UINT8", json!([1, 2, 3, 4]))),
            400
        );
        assert_eq!(status(input(json!([-1, 1, 3]), "UINT8", json!([]))), 400);
        assert_eq!(status(input(json!([200, 200, 3]), "UINT8", json!([]))), 413);
        assert_eq!(
            status(input(json!([5]), "BYTES", json!(["", "", "", "", ""]))),
            413
        );
        let ok = input(json!([1]), "BYTES", json!(["AAAA"]));
        let with = |key: &str, value: Value| {
            let mut body = ok.clone();
            body[key] = value;
            status(body)
        };
        assert_eq!(with("parameters", json!({"conf": 2})), 400);
        assert_eq!(with("parameters", json!({"imgsz": 100})), 400);
        assert_eq!(
            with("parameters", json!({"binary_data_output": "yes"})),
            400
        );
        assert_eq!(with("outputs", json!([{"name": "masks"}])), 400);
        assert_eq!(
            with("outputs", json!([{"name": "boxes"}, {"name": "boxes"}])),
            400
        );
        // unknown parameters are skipped, whatever their size
        assert!(parse({
            let mut body = ok.clone();
            body["parameters"] = json!({"sequence_id": [1, 2, 3], "priority": 1});
            body
        })
        .is_ok());
        assert_eq!(
            parse_request(&Bytes::from_static(b"{}"), Some(10), &LIMITS)
                .unwrap_err()
                .status,
            400
        );
        assert_eq!(
            parse_request(&Bytes::from_static(b"not json"), None, &LIMITS)
                .unwrap_err()
                .status,
            400
        );
    }

    #[test]
    fn responses_in_json_and_binary_with_padding_for_batches() {
        let detection = |class: &str, text: Option<&str>| nodes::predict::SignDetection {
            class: class.into(),
            class_id: 0,
            confidence: 0.5,
            bbox: [1.0, 2.0, 3.0, 4.0],
            text: text.map(String::from),
            text_confidence: None,
        };
        let prediction = |detections| Prediction {
            detections,
            image: nodes::predict::ImageSize {
                width: 8,
                height: 8,
            },
            timings_ms: Default::default(),
        };
        let predictions = [
            prediction(vec![
                detection("stop", Some("STOP")),
                detection("yield", None),
            ]),
            prediction(vec![]),
        ];
        let model = ModelIdentity {
            name: "signs".into(),
            version: "1".into(),
        };
        let outputs = [
            WantedOutput {
                name: "boxes",
                binary: false,
            },
            WantedOutput {
                name: "texts",
                binary: true,
            },
        ];
        let (header, binary) = response(&model, Some("9"), &predictions, true, &outputs);
        assert_eq!(header["id"], "9");
        assert_eq!(header["model_name"], "signs");
        assert_eq!(header["outputs"][0]["shape"], json!([2, 2, 4]));
        assert_eq!(
            header["outputs"][0]["data"],
            json!([1.0, 2.0, 3.0, 4.0, 1.0, 2.0, 3.0, 4.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
        );
        assert_eq!(header["outputs"][1]["shape"], json!([2, 2]));
        assert_eq!(header["outputs"][1]["parameters"]["binary_data_size"], 20);
        assert_eq!(binary, b"\x04\0\0\0STOP\0\0\0\0\0\0\0\0\0\0\0\0");
        let (header, binary) = response(&model, None, &predictions[..1], false, &outputs[..1]);
        assert_eq!(header["outputs"][0]["shape"], json!([2, 4]));
        assert!(header.get("id").is_none());
        assert!(binary.is_empty());
    }
}
