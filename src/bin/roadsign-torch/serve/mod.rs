//! `roadsign serve`: the predict pipeline over HTTP on hyper 1.x.
//!
//! The listener opens at once (`/health` answers, `/ready` says 503); the
//! pipeline starts on a plain thread (model checked, Tesseract configured),
//! every worker runs one warm-up inference, and only then `/ready` answers
//! 200. Requests are read on the async executor; everything CPU-bound runs on
//! the bounded [`pool::WorkerPool`]. SIGTERM (or Ctrl-C) turns `/ready` to 503,
//! stops accepting, lets in-flight requests finish for `serve.drain_s`, exits.

mod metrics;
mod pool;
mod upload;
mod v2;
mod write_timeout;

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Incoming;
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use nodes::predict::video::{VideoJob, VideoLimits};
use nodes::NodesError;
use rayon::prelude::*;
use serde::Deserialize;
use tokio::net::TcpListener;

use crate::predictor::{self, PredictError, Predictor};
use metrics::Metrics;
use pool::WorkerPool;
use roadsign::cli::{Cli, ServeArgs};
use upload::{
    check_video_type, decode_image, read_upload, save_upload, storage_error, ApiError, SavedUpload,
};

/// `params:serve`.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Worker threads; 0: one per core.
    pub workers: usize,
    /// Requests waiting for a worker beyond which 503 answers at once.
    pub queue: usize,
    pub timeout_s: f64,
    pub video_timeout_s: f64,
    pub max_upload_mb: f64,
    pub max_video_mb: f64,
    pub max_video_s: f64,
    /// Frames counted per second of `max_video_s`, whatever rate a video declares.
    pub max_video_fps: f64,
    pub max_pixels: u64,
    /// Memory one image's decoding may take (16-bit and alpha counted).
    pub max_decode_mb: f64,
    pub max_video_pixels: u64,
    pub drain_s: f64,
    /// libtorch threads per inference (0: libtorch's default, one per core).
    pub torch_threads: usize,
    /// The model's name on the Open Inference Protocol routes (default: the
    /// model file's `name` metadata, else its file stem).
    pub model_name: Option<String>,
    /// Images one `/v2/.../infer` request may carry.
    pub max_batch: usize,
    /// A body must arrive at this rate on average (after a second): slower
    /// senders are cut with 408, so that they cannot hold every upload slot.
    pub min_upload_kib_s: f64,
    /// A write of an answer may wait this long for the client to read:
    /// beyond, the connection is closed and what the answer held is freed.
    pub write_timeout_s: f64,
    /// Memory the image and inference bodies held in memory may take
    /// together: beyond, 503 at once (from the declared length). With the
    /// workers' decoding (`max_decode_mb` each) and the videos' ffmpeg, it
    /// keeps the server under the Deployment's memory limit.
    pub upload_memory_mb: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            workers: 0,
            queue: 32,
            timeout_s: 60.0,
            video_timeout_s: 600.0,
            max_upload_mb: 20.0,
            max_video_mb: 200.0,
            max_video_s: 120.0,
            max_video_fps: 60.0,
            max_pixels: 40_000_000,
            max_decode_mb: 256.0,
            max_video_pixels: 1920 * 1080,
            drain_s: 25.0,
            torch_threads: 1,
            model_name: None,
            max_batch: 8,
            min_upload_kib_s: 64.0,
            write_timeout_s: 30.0,
            upload_memory_mb: 256.0,
        }
    }
}

impl Settings {
    fn image_limits(&self) -> upload::ImageLimits {
        upload::ImageLimits {
            max_pixels: self.max_pixels,
            max_decode_bytes: megabytes(self.max_decode_mb) as u64,
        }
    }

    /// Settings that would break the server or refuse every upload.
    fn check(&self) -> Result<(), runner::Error> {
        let invalid = |message: String| {
            Err(runner::Error::invalid(format!(
                "parameters 'serve': {message}"
            )))
        };
        for (name, value) in [
            ("timeout_s", self.timeout_s),
            ("video_timeout_s", self.video_timeout_s),
            ("write_timeout_s", self.write_timeout_s),
        ] {
            // Durations are built from these: a day is the most that makes sense.
            if !(value > 0.0 && value <= 86_400.0) {
                return invalid(format!(
                    "{name} must be a number of seconds in (0, 86400], not {value}"
                ));
            }
        }
        if !(0.0..=86_400.0).contains(&self.drain_s) {
            return invalid(format!(
                "drain_s must be a number of seconds in [0, 86400], not {}",
                self.drain_s
            ));
        }
        if self.upload_memory_mb.is_nan() || self.upload_memory_mb < self.max_upload_mb {
            return invalid(format!(
                "upload_memory_mb ({}) is below max_upload_mb ({}): uploads in between would always be refused",
                self.upload_memory_mb, self.max_upload_mb
            ));
        }
        Ok(())
    }

    fn workers(&self) -> usize {
        match self.workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }
}

fn megabytes(mb: f64) -> usize {
    (mb * 1024.0 * 1024.0) as usize
}

/// The started pipeline and its workers.
struct Engine {
    predictor: Arc<Predictor>,
    pool: WorkerPool,
    /// The model's name and version on the v2 routes.
    identity: v2::ModelIdentity,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
struct Progress {
    done: usize,
    total: usize,
    finished: bool,
}

struct AppState {
    settings: Settings,
    /// Image uploads being read or processed: bodies are held in memory, so
    /// their number is bounded (workers + queue); beyond it, 503 at once.
    uploads: tokio::sync::Semaphore,
    /// What those bodies may hold together (KiB).
    upload_memory: upload::MemoryBudget,
    /// Video uploads being read or processed: at most one per worker (a
    /// video is long work and a large body), in a pool of their own so that
    /// videos never take the images' places.
    video_uploads: Arc<tokio::sync::Semaphore>,
    engine: OnceLock<Engine>,
    draining: AtomicBool,
    metrics: Metrics,
    /// Video progress by id; ids are issued by `POST /progress` only.
    progress: Mutex<HashMap<String, Tracked>>,
    /// The cancellations of video jobs that may still run (a finished
    /// request cancels its own), and how many run.
    jobs: Mutex<Vec<runner::Cancellation>>,
    running_jobs: AtomicUsize,
}

/// Counts a video job as running on its worker until it returns.
struct Running<'a>(&'a AtomicUsize);

impl<'a> Running<'a> {
    fn start(count: &'a AtomicUsize) -> Running<'a> {
        count.fetch_add(1, Ordering::SeqCst);
        Running(count)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A video's progress, when its id was issued, and whether a video took it.
#[derive(Clone, Copy, Debug)]
struct Tracked {
    progress: Progress,
    issued: Instant,
    claimed: bool,
}

/// How many video progress ids are kept at most.
const PROGRESS_IDS: usize = 1000;
/// An issued id whose video never came may be dropped after this long.
const UNUSED_ID_S: u64 = 60;

impl AppState {
    /// A place for one more upload, or 503.
    fn upload_permit(&self) -> Result<tokio::sync::SemaphorePermit<'_>, ApiError> {
        self.uploads.try_acquire().map_err(|_| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "overloaded: too many uploads in progress; try again shortly",
            )
        })
    }

    /// A place for one more video, or 503. It is held until the annotated
    /// copy is sent: the place bounds the videos' disk use too.
    fn video_permit(&self) -> Result<tokio::sync::OwnedSemaphorePermit, ApiError> {
        Arc::clone(&self.video_uploads)
            .try_acquire_owned()
            .map_err(|_| {
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "overloaded: every worker has a video; try again shortly",
                )
            })
    }

    /// How fast a body must arrive.
    fn minimum_rate(&self) -> upload::MinimumRate {
        upload::MinimumRate {
            bytes_per_s: self.settings.min_upload_kib_s * 1024.0,
            grace: Duration::from_secs(1),
        }
    }

    /// Reads the upload at the minimum rate and within the request timeout
    /// (a client trickling its body would otherwise hold the permit).
    async fn read_body(
        &self,
        request: Request<Incoming>,
        max_mb: f64,
    ) -> Result<upload::Buffered, ApiError> {
        let reading = read_upload(
            request,
            megabytes(max_mb),
            self.minimum_rate(),
            &self.upload_memory,
        );
        self.within_upload_time(reading).await
    }

    /// Writes the upload to `path` as it arrives, under the same limits.
    async fn save_body(
        &self,
        request: Request<Incoming>,
        max_mb: f64,
        path: &std::path::Path,
    ) -> Result<SavedUpload, ApiError> {
        let saving = save_upload(request, megabytes(max_mb), self.minimum_rate(), path);
        self.within_upload_time(saving).await
    }

    async fn within_upload_time<T>(
        &self,
        upload: impl std::future::Future<Output = Result<T, ApiError>>,
    ) -> Result<T, ApiError> {
        let limit = Duration::from_secs_f64(self.settings.timeout_s);
        match tokio::time::timeout(limit, upload).await {
            Ok(upload) => upload,
            Err(_) => Err(ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "the upload did not arrive in time",
            )),
        }
    }

    fn is_ready(&self) -> bool {
        self.engine.get().is_some() && !self.draining.load(Ordering::SeqCst)
    }

    fn engine(&self) -> Result<&Engine, ApiError> {
        match self.engine.get() {
            Some(engine) if !self.draining.load(Ordering::SeqCst) => Ok(engine),
            Some(_) => Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting down",
            )),
            None => Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "not ready: the model is loading",
            )),
        }
    }

    /// Keeps a video job's cancellation, to stop it if the server shuts
    /// down.
    fn register_job(&self, cancel: &runner::Cancellation) {
        let mut jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        jobs.retain(|j| !j.is_cancelled());
        jobs.push(cancel.clone());
    }

    /// Stops every video job (each at its next frame, killing its ffmpeg
    /// children and removing its files), and waits up to `wait` for them.
    fn cancel_jobs(&self, wait: Duration) {
        let jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        for cancel in jobs.iter() {
            cancel.cancel();
        }
        drop(jobs);
        let deadline = Instant::now() + wait;
        while self.running_jobs.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Updates an issued id's progress (an id not issued is ignored).
    fn set_progress(&self, id: &str, update: impl FnOnce(&mut Progress)) {
        let mut map = self.progress.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tracked) = map.get_mut(id) {
            update(&mut tracked.progress);
        }
    }

    /// Takes an issued id for one video: false when it was not issued or
    /// another video has it.
    fn claim_progress_id(&self, id: &str) -> bool {
        let mut map = self.progress.lock().unwrap_or_else(|p| p.into_inner());
        match map.get_mut(id) {
            Some(tracked) if !tracked.claimed => {
                tracked.claimed = true;
                true
            }
            _ => false,
        }
    }

    fn progress_of(&self, id: &str) -> Option<Progress> {
        let map = self.progress.lock().unwrap_or_else(|p| p.into_inner());
        map.get(id).map(|t| t.progress)
    }

    /// A new unguessable progress id (128 random bits). When the table is
    /// full, finished videos go first, then ids whose video never came;
    /// videos being processed are never dropped.
    fn issue_progress_id(&self) -> Result<String, ApiError> {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("no randomness: {e}"),
            )
        })?;
        let id: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let mut map = self.progress.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= PROGRESS_IDS {
            map.retain(|_, t| !t.progress.finished);
        }
        if map.len() >= PROGRESS_IDS {
            let stale = Duration::from_secs(UNUSED_ID_S);
            map.retain(|_, t| t.claimed || t.issued.elapsed() < stale);
        }
        if map.len() >= PROGRESS_IDS {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "too many videos are being followed; try again shortly",
            ));
        }
        map.insert(
            id.clone(),
            Tracked {
                progress: Progress::default(),
                issued: Instant::now(),
                claimed: false,
            },
        );
        Ok(id)
    }
}

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

const GUI: &str = include_str!("gui.html");

/// The GUI's Content-Security-Policy: its own inline script and style only
/// (by their SHA-256), fetches to this server, images and videos it made
/// into blobs, and no framing (clickjacking).
fn gui_policy() -> &'static str {
    static POLICY: OnceLock<String> = OnceLock::new();
    POLICY.get_or_init(|| {
        use base64::Engine as _;
        use sha2::Digest as _;
        let hash = |open: &str, close: &str| {
            let body = GUI
                .split_once(open)
                .and_then(|(_, rest)| rest.split_once(close))
                .map_or("", |(body, _)| body);
            let digest = sha2::Sha256::digest(body.as_bytes());
            format!("'sha256-{}'", base64::engine::general_purpose::STANDARD.encode(digest))
        };
        format!(
            "default-src 'none'; script-src {}; style-src {}; img-src blob: data:; media-src blob:; \
             connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
            hash("<script>", "</script>"),
            hash("<style>", "</style>")
        )
    })
}

/// A route: its label (its path, or its pattern for routes with
/// parameters; the metric label too) and the methods it answers (its 405's
/// `Allow` header). GET routes answer HEAD too.
struct Route {
    label: &'static str,
    methods: &'static str,
}

const READ: &str = "GET, HEAD";

/// The one table of routes: labels, methods, and the 404's list. The v2
/// routes' labels come from [`v2::Route::label`]; anything else is "other".
const ROUTES: [Route; 15] = [
    Route {
        label: "/",
        methods: READ,
    },
    Route {
        label: "/predict",
        methods: "POST",
    },
    Route {
        label: "/predict/image",
        methods: "POST",
    },
    Route {
        label: "/predict/video",
        methods: "POST",
    },
    Route {
        label: "/health",
        methods: READ,
    },
    Route {
        label: "/ready",
        methods: READ,
    },
    Route {
        label: "/metrics",
        methods: READ,
    },
    Route {
        label: "/progress",
        methods: "POST",
    },
    Route {
        label: "/progress/{id}",
        methods: READ,
    },
    Route {
        label: "/v2",
        methods: READ,
    },
    Route {
        label: "/v2/health/live",
        methods: READ,
    },
    Route {
        label: "/v2/health/ready",
        methods: READ,
    },
    Route {
        label: "/v2/models",
        methods: READ,
    },
    Route {
        label: "/v2/models/ready",
        methods: READ,
    },
    Route {
        label: "/v2/models/infer",
        methods: "POST",
    },
];

/// The label of the route a path is on, "other" when none.
fn route_label(path: &str) -> &'static str {
    if path.starts_with("/progress/") {
        return "/progress/{id}";
    }
    if let Some(v2_route) = v2::route(path) {
        return v2_route.label();
    }
    ROUTES
        .iter()
        .find(|r| r.label == path)
        .map_or("other", |r| r.label)
}

async fn handle(
    state: Arc<AppState>,
    request: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let started = Instant::now();
    let in_flight = state.metrics.start();
    let path = request.uri().path().to_string();
    let route = route_label(&path);
    let mut response = route_request(&state, route, &path, request)
        .await
        .unwrap_or_else(ApiError::into_response);
    // No response is to be read as another type than it says.
    response.headers_mut().insert(
        "x-content-type-options",
        hyper::header::HeaderValue::from_static("nosniff"),
    );
    drop(in_flight);
    state
        .metrics
        .record(route, response.status().as_u16(), started.elapsed());
    Ok(response)
}

async fn route_request(
    state: &Arc<AppState>,
    route: &'static str,
    path: &str,
    request: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let method = request.method().clone();
    // HEAD wherever GET is (hyper sends the headers, not the body).
    let read = method == Method::GET || method == Method::HEAD;
    match (route, read, &method) {
        ("/", true, _) => {
            let mut page = respond(StatusCode::OK, "text/html; charset=utf-8", GUI);
            let headers = page.headers_mut();
            headers.insert(
                CACHE_CONTROL,
                hyper::header::HeaderValue::from_static("no-cache"),
            );
            if let Ok(policy) = gui_policy().parse() {
                headers.insert("content-security-policy", policy);
            }
            headers.insert(
                "x-frame-options",
                hyper::header::HeaderValue::from_static("DENY"),
            );
            Ok(page)
        }
        ("/health", true, _) => Ok(json(StatusCode::OK, &serde_json::json!({"status": "ok"}))),
        ("/ready", true, _) => {
            if state.is_ready() {
                Ok(json(
                    StatusCode::OK,
                    &serde_json::json!({"status": "ready"}),
                ))
            } else {
                Err(state
                    .engine()
                    .err()
                    .unwrap_or_else(|| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "not ready")))
            }
        }
        ("/metrics", true, _) => Ok(respond(
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            state.metrics.render(state.is_ready()),
        )),
        ("/progress", _, &Method::POST) => Ok(json(
            StatusCode::CREATED,
            &serde_json::json!({"id": state.issue_progress_id()?}),
        )),
        ("/progress/{id}", true, _) => {
            let id = path.trim_start_matches("/progress/");
            match state.progress_of(id) {
                Some(p) => Ok(json(
                    StatusCode::OK,
                    &serde_json::to_value(p).unwrap_or_default(),
                )),
                None => Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    "no video followed with this id",
                )),
            }
        }
        ("/predict", _, &Method::POST) => predict(state, request, false).await,
        ("/predict/image", _, &Method::POST) => predict(state, request, true).await,
        ("/predict/video", _, &Method::POST) => video(state, request).await,
        (label, _, _) if label.starts_with("/v2") => v2_request(state, path, request).await,
        ("other", _, _) => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!(
                "no route {path} (the routes: {})",
                ROUTES.map(|r| r.label).join(", ")
            ),
        )),
        _ => Err(ApiError::method_not_allowed(
            method.as_str(),
            path,
            allowed_methods(route),
        )),
    }
}

/// The methods a route answers (its 405's `Allow` header).
fn allowed_methods(label: &str) -> &'static str {
    ROUTES
        .iter()
        .find(|r| r.label == label)
        .map_or(READ, |r| r.methods)
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
    if let Some(id) = &id {
        state.set_progress(id, |p| p.finished = true);
    }
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

/// Warm-up on every worker (see [`Predictor::warm_up`]), so the first
/// request pays for neither libtorch's module nor Tesseract's engine.
fn warm_up(engine: &Engine) -> Result<()> {
    let predictor = Arc::clone(&engine.predictor);
    let results = engine
        .pool
        .on_every_worker(move || predictor.warm_up().map_err(|e| e.to_string()));
    for result in results {
        result.map_err(|e| anyhow::anyhow!("warm-up failed: {e}"))?;
    }
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

pub fn serve_command(cli: &Cli, args: &ServeArgs) -> Result<()> {
    let config = roadsign::commands::load_config(cli, &args.env, &args.params)?;
    let settings: Settings = match config.parameters.get("serve") {
        Some(value) => serde_json::from_value(value.clone())
            .map_err(|e| runner::Error::invalid(format!("parameters 'serve': {e}")))?,
        None => Settings::default(),
    };
    settings.check()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(
        config,
        settings,
        args.model.clone(),
        &args.host,
        args.port,
    ))?;
    // Jobs abandoned by timed-out requests may still run on the workers:
    // joining them could outlast the grace period, so exit here, once the
    // drain is over (exit still runs the process's exit handlers).
    std::process::exit(0)
}

async fn serve(
    config: runner::ProjectConfig,
    settings: Settings,
    model: Option<std::path::PathBuf>,
    host: &str,
    port: u16,
) -> Result<()> {
    let listener = TcpListener::bind((host, port))
        .await
        .map_err(|e| runner::Error::invalid(format!("cannot listen on {host}:{port}: {e}")))?;
    let address = listener.local_addr()?;
    eprintln!("roadsign serve: listening on http://{address} (ready once the model is warm)");
    let workers = settings.workers();
    let queue = settings.queue;
    let model_name = settings.model_name.clone();
    torch_nodes::set_torch_threads(settings.torch_threads);
    let drain = Duration::from_secs_f64(settings.drain_s.max(0.0));
    let state = Arc::new(AppState {
        uploads: tokio::sync::Semaphore::new(workers + queue),
        upload_memory: Arc::new(tokio::sync::Semaphore::new(
            megabytes(settings.upload_memory_mb) / 1024,
        )),
        video_uploads: Arc::new(tokio::sync::Semaphore::new(workers)),
        settings,
        engine: OnceLock::new(),
        draining: AtomicBool::new(false),
        metrics: Metrics::default(),
        progress: Mutex::new(HashMap::new()),
        jobs: Mutex::new(Vec::new()),
        running_jobs: AtomicUsize::new(0),
    });

    // Start-up off the executor: a failure ends the process (a supervisor
    // restarts it), since a server that can never be ready serves nothing.
    let (started_tx, mut started_rx) = tokio::sync::oneshot::channel::<Result<()>>();
    let start_state = Arc::clone(&state);
    std::thread::Builder::new()
        .name("roadsign-startup".into())
        .spawn(move || {
            let started = Instant::now();
            let result = (|| -> Result<()> {
                let predictor = Arc::new(predictor::start(&config, model.as_deref())?);
                // Room for every request admitted, images (workers + queue)
                // and videos (one per worker): an admitted request is not
                // refused after its upload (unless jobs whose requests
                // timed out still wait for a worker).
                let pool = WorkerPool::new(workers, queue + workers)?;
                let identity = v2::ModelIdentity {
                    name: model_name.unwrap_or_else(|| predictor.model_name.clone()),
                    version: predictor.model_version.clone(),
                };
                let engine = Engine {
                    predictor,
                    pool,
                    identity,
                };
                warm_up(&engine)?;
                let _ = start_state.engine.set(engine);
                eprintln!(
                    "roadsign serve: ready in {:.1} s ({workers} worker(s), queue {queue})",
                    started.elapsed().as_secs_f64()
                );
                Ok(())
            })();
            let _ = started_tx.send(result);
        })?;

    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown_signal());
    let mut startup_done = false;
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        // Out of file descriptors, say: back off, don't spin.
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let state = Arc::clone(&state);
                let write_limit = Duration::from_secs_f64(state.settings.write_timeout_s);
                let service = service_fn(move |request| handle(Arc::clone(&state), request));
                let stream = write_timeout::WriteTimeout::new(stream, write_limit);
                let connection = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(Duration::from_secs(30))
                    .serve_connection(TokioIo::new(stream), service);
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    if let Err(e) = connection.await {
                        tracing::debug!("connection ended: {e}");
                    }
                });
            }
            started = &mut started_rx, if !startup_done => {
                startup_done = true;
                match started {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => return Err(e.context("the predict pipeline did not start")),
                    Err(_) => anyhow::bail!("the start-up thread stopped"),
                }
            }
            _ = &mut shutdown => break,
        }
    }
    state.draining.store(true, Ordering::SeqCst);
    drop(listener);
    eprintln!(
        "roadsign serve: shutting down, draining requests for up to {} s",
        drain.as_secs_f64()
    );
    match tokio::time::timeout(drain, graceful.shutdown()).await {
        Ok(()) => eprintln!("roadsign serve: drained, bye"),
        Err(_) => {
            eprintln!("roadsign serve: drain time over, stopping video jobs and closing the remaining connections");
            // Jobs stop at their next frame: a second or two at most.
            let state = Arc::clone(&state);
            let _ = tokio::task::spawn_blocking(move || state.cancel_jobs(Duration::from_secs(3)))
                .await;
        }
    }
    Ok(())
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
    fn one_route_table_gives_labels_and_methods() {
        assert_eq!(route_label("/predict"), "/predict");
        assert_eq!(route_label("/progress/abc"), "/progress/{id}");
        assert_eq!(route_label("/v2/models/m/infer"), "/v2/models/infer");
        assert_eq!(route_label("/nothing"), "other");
        assert_eq!(allowed_methods("/progress"), "POST");
        assert_eq!(allowed_methods("/progress/{id}"), "GET, HEAD");
        assert_eq!(allowed_methods("/v2/models/infer"), "POST");
        for route in ROUTES {
            assert!(
                route.methods == READ || route.methods == "POST",
                "{}",
                route.label
            );
        }
    }

    #[test]
    fn settings_read_from_parameters_and_default() {
        let s: Settings =
            serde_json::from_value(serde_json::json!({"workers": 3, "queue": 1})).unwrap();
        assert_eq!((s.workers(), s.queue), (3, 1));
        assert!(Settings::default().workers() >= 1);
        assert!(serde_json::from_value::<Settings>(serde_json::json!({"wrokers": 3})).is_err());
        assert_eq!(megabytes(1.5), 1_572_864);
        assert!(Settings::default().check().is_ok());
        let bad = |json| serde_json::from_value::<Settings>(json).unwrap().check();
        assert!(bad(serde_json::json!({"write_timeout_s": 0})).is_err());
        assert!(bad(serde_json::json!({"write_timeout_s": 1e300})).is_err());
        assert!(bad(serde_json::json!({"timeout_s": -1})).is_err());
        assert!(bad(serde_json::json!({"upload_memory_mb": 10, "max_upload_mb": 20})).is_err());
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
