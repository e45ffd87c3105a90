//! What the server holds between requests: the started pipeline and its
//! workers, the admission places and memory budget, the video jobs and the
//! progress ids.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper::{Request, StatusCode};

use super::metrics::Metrics;
use super::pool::WorkerPool;
use super::settings::{megabytes, Settings};
use super::upload::{self, read_upload, save_upload, ApiError, SavedUpload};
use super::v2;
use crate::predictor::Predictor;

/// The started pipeline and its workers.
pub(super) struct Engine {
    pub(super) predictor: Arc<Predictor>,
    pub(super) pool: WorkerPool,
    /// The model's name and version on the v2 routes.
    pub(super) identity: v2::ModelIdentity,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub(super) struct Progress {
    pub(super) done: usize,
    pub(super) total: usize,
    pub(super) finished: bool,
}

pub(super) struct AppState {
    pub(super) settings: Settings,
    /// Image uploads being read or processed: bodies are held in memory, so
    /// their number is bounded (workers + queue); beyond it, 503 at once.
    uploads: tokio::sync::Semaphore,
    /// What those bodies may hold together (KiB).
    upload_memory: upload::MemoryBudget,
    /// Video uploads being read or processed: at most one per worker (a
    /// video is long work and a large body), in a pool of their own so that
    /// videos never take the images' places.
    video_uploads: Arc<tokio::sync::Semaphore>,
    pub(super) engine: OnceLock<Engine>,
    pub(super) draining: AtomicBool,
    pub(super) metrics: Metrics,
    /// Video progress by id; ids are issued by `POST /progress` only.
    progress: Mutex<HashMap<String, Tracked>>,
    /// The cancellations of video jobs that may still run (a finished
    /// request cancels its own), and how many run.
    jobs: Mutex<Vec<runner::Cancellation>>,
    pub(super) running_jobs: AtomicUsize,
}

/// Counts a video job as running on its worker until it returns.
pub(super) struct Running<'a>(&'a AtomicUsize);

impl<'a> Running<'a> {
    pub(super) fn start(count: &'a AtomicUsize) -> Running<'a> {
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
    /// Nothing started yet: `workers` workers, `settings.queue` more image
    /// places, one video place per worker.
    pub(super) fn new(settings: Settings, workers: usize) -> AppState {
        AppState {
            uploads: tokio::sync::Semaphore::new(workers + settings.queue),
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
        }
    }

    /// A place for one more upload, or 503.
    pub(super) fn upload_permit(&self) -> Result<tokio::sync::SemaphorePermit<'_>, ApiError> {
        self.uploads.try_acquire().map_err(|_| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "overloaded: too many uploads in progress; try again shortly",
            )
        })
    }

    /// A place for one more video, or 503. It is held until the annotated
    /// copy is sent: the place bounds the videos' disk use too.
    pub(super) fn video_permit(&self) -> Result<tokio::sync::OwnedSemaphorePermit, ApiError> {
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
    pub(super) async fn read_body(
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
    pub(super) async fn save_body(
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

    pub(super) fn is_ready(&self) -> bool {
        self.engine.get().is_some() && !self.draining.load(Ordering::SeqCst)
    }

    pub(super) fn engine(&self) -> Result<&Engine, ApiError> {
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
    pub(super) fn register_job(&self, cancel: &runner::Cancellation) {
        let mut jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        jobs.retain(|j| !j.is_cancelled());
        jobs.push(cancel.clone());
    }

    /// Stops every video job (each at its next frame, killing its ffmpeg
    /// children and removing its files), and waits up to `wait` for them.
    pub(super) fn cancel_jobs(&self, wait: Duration) {
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
    pub(super) fn set_progress(&self, id: &str, update: impl FnOnce(&mut Progress)) {
        let mut map = self.progress.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tracked) = map.get_mut(id) {
            update(&mut tracked.progress);
        }
    }

    /// Takes an issued id for one video: false when it was not issued or
    /// another video has it.
    pub(super) fn claim_progress_id(&self, id: &str) -> bool {
        let mut map = self.progress.lock().unwrap_or_else(|p| p.into_inner());
        match map.get_mut(id) {
            Some(tracked) if !tracked.claimed => {
                tracked.claimed = true;
                true
            }
            _ => false,
        }
    }

    pub(super) fn progress_of(&self, id: &str) -> Option<Progress> {
        let map = self.progress.lock().unwrap_or_else(|p| p.into_inner());
        map.get(id).map(|t| t.progress)
    }

    /// A new unguessable progress id (128 random bits). When the table is
    /// full, finished videos go first, then ids whose video never came;
    /// videos being processed are never dropped.
    pub(super) fn issue_progress_id(&self) -> Result<String, ApiError> {
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
