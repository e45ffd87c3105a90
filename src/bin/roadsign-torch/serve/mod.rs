//! `roadsign serve`: the predict pipeline over HTTP on hyper 1.x.
//!
//! The listener opens at once (`/health` answers, `/ready` says 503); the
//! pipeline starts on a plain thread (model checked, Tesseract configured),
//! every worker runs one warm-up inference, and only then `/ready` answers
//! 200. Requests are read on the async executor; everything CPU-bound runs on
//! the bounded [`pool::WorkerPool`]. SIGTERM (or Ctrl-C) turns `/ready` to 503,
//! stops accepting, lets in-flight requests finish for `serve.drain_s`, exits.
//!
//! `settings` (`params:serve`), `state` (what lives between requests),
//! `routes` (the one route table and dispatch), `server` (start-up, accept
//! loop, drain); this module holds the handlers and how errors are answered.

mod metrics;
mod pool;
mod routes;
mod server;
mod settings;
mod state;
mod upload;
mod v2;
mod write_timeout;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Incoming;
use hyper::header::CONTENT_TYPE;
use hyper::{Request, Response, StatusCode};
use nodes::predict::video::{VideoJob, VideoLimits};
use nodes::NodesError;
use rayon::prelude::*;

use crate::predictor::PredictError;
use routes::allowed_methods;
pub use server::serve_command;
use state::{AppState, Running};
use upload::{check_video_type, decode_image, storage_error, ApiError};

/// An answer's body: bytes in memory, or a file streamed as it is read.
type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, std::io::Error>;

fn respond(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    let body = Full::new(body.into()).map_err(|never| match never {});
    let mut response = Response::new(body.boxed_unsync());
    *response.status_mut() = status;
    if let Ok(value) = content_type.parse() {
        response.headers_mut().insert(CONTENT_TYPE, value);
    }
    response
}

fn json(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    respond(status, "application/json", value.to_string())
}

impl ApiError {
    fn into_response(self) -> Response<Body> {
        let mut response = json(self.status, &serde_json::json!({ "error": self.message }));
        if let Some(allow) = self.allow {
            response.headers_mut().insert(
                hyper::header::ALLOW,
                hyper::header::HeaderValue::from_static(allow),
            );
        }
        response
    }
}

/// What a client is told of a node failure: what was wrong with its input,
/// without server paths or tool output (those go to the log); for our own
/// faults only that the server failed.
fn client_error(error: &NodesError) -> ApiError {
    let status = failure_status(error);
    tracing::warn!(status = status.as_u16(), "request failed: {error}");
    let message = match error {
        NodesError::Limit(limit) | NodesError::Cancelled(limit) => limit.clone(),
        NodesError::Video(_) => "the upload is not a video ffmpeg can read".to_string(),
        NodesError::Image(_) => "the image cannot be read".to_string(),
        _ => "the server failed on this request (see its log)".to_string(),
    };
    ApiError::new(status, message)
}

/// What a client is told of a failed prediction: a node's own error says
/// whose fault it was (see [`client_error`]); the rest is ours.
fn predict_error(error: &PredictError) -> ApiError {
    match error.nodes_error() {
        Some(nodes_error) => client_error(nodes_error),
        None => {
            tracing::warn!("request failed: {error}");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the server failed on this request (see its log)",
            )
        }
    }
}

/// The status of a node failure: bad input the nodes found is the client's
/// fault; anything else is ours.
fn failure_status(error: &NodesError) -> StatusCode {
    match error {
        NodesError::Limit(_) => StatusCode::PAYLOAD_TOO_LARGE,
        NodesError::Cancelled(_) => StatusCode::GATEWAY_TIMEOUT,
        NodesError::Video(_) | NodesError::Image(_) => StatusCode::BAD_REQUEST,
        // ffmpeg missing or failing on input it accepted: our fault.
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Runs `job` on the worker pool under the timeout; a full queue is 503.
async fn on_worker<R, F>(state: &AppState, timeout_s: f64, job: F) -> Result<R, ApiError>
where
    R: Send + 'static,
    F: FnOnce() -> Result<R, ApiError> + Send + 'static,
{
    let engine = state.engine()?;
    let receiver = engine
        .pool
        .try_run(move || {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).unwrap_or_else(|_| {
                Err(ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the request made a worker panic",
                ))
            })
        })
        .map_err(|_| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "overloaded: every worker and every place in the queue is taken; try again shortly",
            )
        })?;
    match tokio::time::timeout(Duration::from_secs_f64(timeout_s), receiver).await {
        Ok(Ok(result)) => result,
        Ok(Err(_)) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the worker stopped",
        )),
        // The job is told to stop by whoever gave it a cancel flag (videos):
        // the answer does not wait for it.
        Err(_) => Err(ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            format!("timed out after {timeout_s} s"),
        )),
    }
}

async fn predict(
    state: &Arc<AppState>,
    request: Request<Incoming>,
    annotated: bool,
) -> Result<Response<Body>, ApiError> {
    let predictor = Arc::clone(&state.engine()?.predictor);
    upload::check_declared_type(&request, upload::Accepts::Image)?;
    let _permit = state.upload_permit()?;
    let upload::Buffered { upload, memory } = state
        .read_body(request, state.settings.max_upload_mb)
        .await?;
    let image_limits = state.settings.image_limits();
    on_worker(state, state.settings.timeout_s, move || {
        // The bytes and their share of the memory budget go together, when
        // the job ends (if the request timed out, later than its answer).
        let _memory = memory;
        let image = decode_image(&upload, &image_limits)?;
        if annotated && image.width().max(image.height()) > JPEG_MAX_SIDE {
            return Err(ApiError::too_large(format!(
                "a {}x{} image cannot be drawn as a JPEG (at most {JPEG_MAX_SIDE} pixels a side)",
                image.width(),
                image.height()
            )));
        }
        if annotated {
            let (prediction, jpeg) = predictor
                .predict_annotated(image)
                .map_err(|e| predict_error(&e))?;
            let mut response = respond(StatusCode::OK, "image/jpeg", jpeg.0);
            // The detections ride along for the GUI: one request, not two.
            let header = ascii_json(&serde_json::to_value(&prediction).unwrap_or_default());
            if let Ok(value) = header.parse() {
                response
                    .headers_mut()
                    .insert("x-roadsign-prediction", value);
            }
            Ok(response)
        } else {
            let prediction = predictor.predict(image).map_err(|e| predict_error(&e))?;
            let body = serde_json::to_vec(&prediction)
                .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
            Ok(respond(StatusCode::OK, "application/json", body))
        }
    })
    .await
}

/// The Open Inference Protocol's routes (see [`v2`]).
async fn v2_request(
    state: &Arc<AppState>,
    path: &str,
    request: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let Some(route) = v2::route(path) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no route {path}"),
        ));
    };
    let method = request.method().clone();
    let allowed = allowed_methods(route.label());
    if !allowed.split(", ").any(|m| m == method.as_str()) {
        return Err(ApiError::method_not_allowed(method.as_str(), path, allowed));
    }
    match route {
        v2::Route::Server => Ok(json(StatusCode::OK, &v2::server_metadata())),
        v2::Route::Live => Ok(json(StatusCode::OK, &serde_json::json!({"live": true}))),
        v2::Route::Ready => {
            state.engine()?;
            Ok(json(StatusCode::OK, &serde_json::json!({"ready": true})))
        }
        v2::Route::Model(model) => {
            let engine = state.engine()?;
            engine.identity.check(&model)?;
            Ok(json(StatusCode::OK, &engine.identity.metadata()))
        }
        v2::Route::ModelReady(model) => {
            let engine = state.engine()?;
            engine.identity.check(&model)?;
            Ok(json(
                StatusCode::OK,
                &serde_json::json!({"name": engine.identity.name, "ready": true}),
            ))
        }
        v2::Route::Infer(model) => {
            let engine = state.engine()?;
            engine.identity.check(&model)?;
            infer(state, request).await
        }
    }
}

/// `POST /v2/models/{name}/infer`: the body is read on the executor, then
/// parsed, decoded, detected and read on a worker, as `/predict` is.
async fn infer(
    state: &Arc<AppState>,
    request: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let engine = state.engine()?;
    let predictor = Arc::clone(&engine.predictor);
    let identity = engine.identity.clone();
    let header_length = match request.headers().get(v2::HEADER_LENGTH) {
        None => None,
        Some(value) => Some(
            value
                .to_str()
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok())
                .ok_or_else(|| {
                    ApiError::bad_request("Inference-Header-Content-Length is not a length")
                })?,
        ),
    };
    upload::check_declared_type(&request, upload::Accepts::Inference)?;
    let _permit = state.upload_permit()?;
    let upload::Buffered { upload, memory } = state
        .read_body(request, state.settings.max_upload_mb)
        .await?;
    let limits = v2::RequestLimits {
        max_batch: state.settings.max_batch.max(1),
        max_pixels: state.settings.max_pixels,
    };
    let image_limits = state.settings.image_limits();
    on_worker(state, state.settings.timeout_s, move || {
        let _memory = memory;
        let parsed = v2::parse_request(&upload.bytes, header_length, &limits)?;
        // The decode budget is the request's: its images share it.
        let image_limits = upload::ImageLimits {
            max_decode_bytes: image_limits.max_decode_bytes / parsed.images.len().max(1) as u64,
            ..image_limits
        };
        let decode = |image: v2::ImageInput| image.decode(&image_limits);
        let images: Vec<_> = match parsed.images.len() {
            1 => parsed
                .images
                .into_iter()
                .map(decode)
                .collect::<Result<_, _>>(),
            _ => parsed.images.into_par_iter().map(decode).collect(),
        }?;
        let predictions = predictor
            .predict_batch(images, parsed.settings)
            .map_err(|e| client_error(&e))?;
        let (header, binary) = v2::response(
            &identity,
            parsed.id.as_deref(),
            &predictions,
            parsed.batched,
            &parsed.outputs,
        );
        let header = header.to_string();
        if !parsed.outputs.iter().any(|o| o.binary) {
            return Ok(respond(StatusCode::OK, "application/json", header));
        }
        let length = header.len();
        let mut body = header.into_bytes();
        body.extend(binary);
        let mut response = respond(StatusCode::OK, "application/octet-stream", body);
        response
            .headers_mut()
            .insert(v2::HEADER_LENGTH, hyper::header::HeaderValue::from(length));
        Ok(response)
    })
    .await
}

/// Cancels a job when the request that started it is over.
struct CancelOnDrop(runner::Cancellation);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// Marks a video's progress id finished when its request ends, however it
/// ends (answered, refused, or dropped when the client left): only finished
/// ids can be evicted from the table.
struct FinishProgressOnDrop {
    state: Arc<AppState>,
    id: Option<String>,
}

impl Drop for FinishProgressOnDrop {
    fn drop(&mut self) {
        if let Some(id) = &self.id {
            self.state.set_progress(id, |p| p.finished = true);
        }
    }
}

/// Reports a video request's frames to its progress id.
struct VideoProgress {
    state: Arc<AppState>,
    id: String,
}

impl runner::hooks::Hook for VideoProgress {
    fn on_node_progress(&self, _node: &runner::pipeline::Node, done: u64, total: u64) {
        self.state.set_progress(&self.id, |p| {
            p.done = done as usize;
            p.total = total as usize;
        });
    }
}

/// The largest side a JPEG can have: the annotated image is one.
const JPEG_MAX_SIDE: u32 = 65_535;

/// JSON with every non-ASCII character escaped (header values are ASCII).
fn ascii_json(value: &serde_json::Value) -> String {
    let mut out = String::new();
    for c in value.to_string().chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

/// The id to follow a video's progress by (`x-progress-id`), which must be
/// one `POST /progress` issued and no other video uses yet.
fn progress_id(state: &AppState, request: &Request<Incoming>) -> Result<Option<String>, ApiError> {
    let Some(value) = request.headers().get("x-progress-id") else {
        return Ok(None);
    };
    let id = value.to_str().unwrap_or_default();
    if state.claim_progress_id(id) {
        return Ok(Some(id.to_string()));
    }
    Err(ApiError::bad_request(
        "unknown or used x-progress-id: POST /progress issues one per video",
    ))
}

const UPLOADED_VIDEO: &str = "upload";
const ANNOTATED_VIDEO: &str = "annotated.mp4";

/// A file as an answer's body, read as the client takes it; `kept` (the
/// file's folder, its admission place) is dropped once the body is sent or
/// dropped (client gone, write timeout).
fn file_body(path: &std::path::Path, kept: impl Send + 'static) -> std::io::Result<(Body, u64)> {
    use tokio::io::AsyncReadExt;
    let file = std::fs::File::open(path)?;
    let length = file.metadata()?.len();
    let file = tokio::fs::File::from_std(file);
    let chunks = futures_util::stream::unfold(Some((file, kept)), |state| async move {
        let (mut file, kept) = state?;
        let mut chunk = bytes::BytesMut::with_capacity(64 * 1024);
        match file.read_buf(&mut chunk).await {
            Ok(0) => None,
            Ok(_) => Some((
                Ok(hyper::body::Frame::data(chunk.freeze())),
                Some((file, kept)),
            )),
            Err(e) => Some((Err(e), None)),
        }
    });
    Ok((StreamBody::new(chunks).boxed_unsync(), length))
}

async fn video(
    state: &Arc<AppState>,
    request: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let predictor = Arc::clone(&state.engine()?.predictor);
    let id = progress_id(state, &request)?;
    let _finish_progress = FinishProgressOnDrop {
        state: Arc::clone(state),
        id: id.clone(),
    };
    upload::check_declared_type(&request, upload::Accepts::Video)?;
    let permit = state.video_permit()?;
    // The upload and the annotated copy live on disk, never in memory; the
    // folder goes when both this request and its job are over.
    let dir = Arc::new(
        tempfile::Builder::new()
            .prefix("roadsign-video-")
            .tempdir()
            .map_err(storage_error)?,
    );
    let upload = state
        .save_body(
            request,
            state.settings.max_video_mb,
            &dir.path().join(UPLOADED_VIDEO),
        )
        .await?;
    check_video_type(&upload)?;
    // Stops the job at its deadline, and when this request ends before it
    // (timed out, or the client left and hyper dropped this future).
    let cancellation = runner::Cancellation::new();
    let _cancel_on_drop = CancelOnDrop(cancellation.clone());
    state.register_job(&cancellation);
    let job = VideoJob {
        input: dir.path().join(UPLOADED_VIDEO),
        output: dir.path().join(ANNOTATED_VIDEO),
        limits: VideoLimits {
            max_seconds: state.settings.max_video_s,
            max_pixels: state.settings.max_video_pixels,
            max_fps: state.settings.max_video_fps,
            deadline: Some(
                Instant::now() + Duration::from_secs_f64(state.settings.video_timeout_s),
            ),
            cancel: None,
        },
    };
    let progress: Vec<Arc<dyn runner::hooks::Hook>> = match &id {
        Some(id) => vec![Arc::new(VideoProgress {
            state: Arc::clone(state),
            id: id.clone(),
        })],
        None => Vec::new(),
    };
    let options = runner::CallOptions {
        cancellation,
        hooks: runner::hooks::Hooks(progress),
    };
    let running = Arc::clone(state);
    let job_dir = Arc::clone(&dir);
    let result = on_worker(state, state.settings.video_timeout_s, move || {
        let _running = Running::start(&running.running_jobs);
        // The folder stays while the job runs, even if the request is over.
        let _job_dir = job_dir;
        let upload = job.input.clone();
        let summary = predictor
            .annotate_video(job, &options)
            .map_err(|e| predict_error(&e));
        // Only the annotated copy is left to send.
        let _ = std::fs::remove_file(upload);
        summary.map(|s| serde_json::to_string(&s).unwrap_or_default())
    })
    .await;
    let summary = result?;
    let annotated = dir.path().join(ANNOTATED_VIDEO);
    let (body, length) = file_body(&annotated, (dir, permit)).map_err(storage_error)?;
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("video/mp4"),
    );
    headers.insert(hyper::header::CONTENT_LENGTH, length.into());
    if let Ok(value) = summary.parse() {
        headers.insert("x-roadsign-summary", value);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node_failure(error: NodesError) -> PredictError {
        use runner::function::CallError;
        use runner::run::{NodeError, NodeFailure};
        PredictError::Call(runner::CallFailure::Node(NodeFailure {
            node: "annotate_image".into(),
            error: Arc::new(NodeError::Call(CallError::Failed(Box::new(error)))),
        }))
    }

    #[test]
    fn a_failed_prediction_answers_by_the_type_of_its_error() {
        let status = |e: PredictError| predict_error(&e).status;
        assert_eq!(
            status(node_failure(NodesError::Limit("too big".into()))),
            StatusCode::PAYLOAD_TOO_LARGE
        );
        assert_eq!(
            status(node_failure(NodesError::Image("bad".into()))),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            status(node_failure(NodesError::Data("ours".into()))),
            StatusCode::INTERNAL_SERVER_ERROR
        );
        let missing = PredictError::NoOutput {
            name: "prediction".into(),
        };
        assert_eq!(status(missing), StatusCode::INTERNAL_SERVER_ERROR);
        // The text of an error never decides: a message that looks like a
        // limit is still our fault when its type says so.
        assert_eq!(
            status(node_failure(NodesError::Data("over the limit".into()))),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }

    #[test]
    fn header_json_is_ascii_and_parses_back() {
        let value = serde_json::json!({"text": "ORLÉANS 🚗"});
        let text = ascii_json(&value);
        assert!(text.is_ascii(), "{text}");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&text).unwrap(),
            value
        );
    }

    #[test]
    fn node_errors_map_to_statuses() {
        assert_eq!(failure_status(&NodesError::Limit("x".into())), 413);
        assert_eq!(failure_status(&NodesError::Video("x".into())), 400);
        assert_eq!(failure_status(&NodesError::Ocr("x".into())), 500);
        assert_eq!(failure_status(&NodesError::Tool("no ffmpeg".into())), 500);
    }
}
