//! `params:serve`: the server's settings, their defaults and their checks.

use serde::Deserialize;

use super::upload;

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
    pub(super) fn image_limits(&self) -> upload::ImageLimits {
        upload::ImageLimits {
            max_pixels: self.max_pixels,
            max_decode_bytes: megabytes(self.max_decode_mb) as u64,
        }
    }

    /// Settings that would break the server or refuse every upload.
    pub(super) fn check(&self) -> Result<(), runner::Error> {
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

    pub(super) fn workers(&self) -> usize {
        match self.workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }
}

pub(super) fn megabytes(mb: f64) -> usize {
    (mb * 1024.0 * 1024.0) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
