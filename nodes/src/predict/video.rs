//! Dashcam videos: every frame decoded by ffmpeg, its signs detected, each
//! sign followed across frames by an IoU tracker so that Tesseract reads a
//! sign once per track (again only when its box has grown a lot, i.e. the
//! camera came closer), every frame drawn, and the result re-encoded as H.264
//! MP4 that browsers play (yuv420p, faststart), with the original audio.
//!
//! Frames stream through pipes: one frame in memory at a time.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use image::RgbImage;
use serde::Serialize;

use super::{draw_predictions, SignDetection};
use crate::synth::clip::ffmpeg_missing;
use crate::NodesError;

/// What a video may be, and how long its job may take.
#[derive(Clone, Debug)]
pub struct VideoLimits {
    pub max_seconds: f64,
    pub max_pixels: u64,
    /// Frames counted per second of the limit, whatever rate the file
    /// declares (a file may declare 1000 fps to pass off thousands of frames
    /// as a second): at most `max_seconds` × this many frames are decoded.
    pub max_fps: f64,
    /// The job stops when this passes (checked at every frame).
    pub deadline: Option<Instant>,
    /// The job stops when this is cancelled (the client left, the server
    /// drains).
    pub cancel: Option<runner::Cancellation>,
}

/// One video to annotate, as a request brings it to the `predict`
/// pipeline: the file, where its annotated copy goes, and what the video
/// may be. The node sets the limits' `cancel` to the run's cancellation (a
/// caller cancels through its call's options), whatever the job held.
#[derive(Clone, Debug)]
pub struct VideoJob {
    pub input: PathBuf,
    pub output: PathBuf,
    pub limits: VideoLimits,
}

runner::data_value!(VideoJob, VideoSummary);

impl Default for VideoLimits {
    fn default() -> Self {
        VideoLimits {
            max_seconds: 120.0,
            max_pixels: 1920 * 1080,
            max_fps: 60.0,
            deadline: None,
            cancel: None,
        }
    }
}

impl VideoLimits {
    /// No limit at all (`roadsign predict` on the user's own files).
    pub fn none() -> VideoLimits {
        VideoLimits {
            max_seconds: f64::INFINITY,
            max_pixels: u64::MAX,
            max_fps: f64::INFINITY,
            deadline: None,
            cancel: None,
        }
    }

    /// Why the job must stop now, if it must.
    fn stop_reason(&self) -> Option<String> {
        if self
            .cancel
            .as_ref()
            .is_some_and(runner::Cancellation::is_cancelled)
        {
            return Some("the request was cancelled".into());
        }
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            return Some("the video took longer than the time allowed".into());
        }
        None
    }
}

/// A video file's first video stream, as ffprobe sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct VideoInfo {
    pub width: u32,
    pub height: u32,
    /// The frame rate as ffmpeg writes it (`30000/1001`).
    pub rate: String,
    pub fps: f64,
    pub seconds: f64,
    /// Frames, as declared or estimated from the duration.
    pub frames: usize,
    pub has_audio: bool,
}

/// Input options for uploaded files: local files of the container formats
/// we accept only. Without them a playlist (HLS, concat) in an upload would
/// make ffmpeg fetch URLs or read other files.
const SAFE_INPUT: [&str; 4] = [
    "-protocol_whitelist",
    "file",
    "-format_whitelist",
    "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,avi",
];

/// ffmpeg's messages go to a file: a pipe nobody reads until the end would
/// fill up and stall ffmpeg (and the worker with it) on a noisy input.
fn stderr_file() -> Result<(Stdio, std::fs::File), NodesError> {
    let file =
        tempfile::tempfile().map_err(|e| NodesError::Tool(format!("no temporary file: {e}")))?;
    let copy = file
        .try_clone()
        .map_err(|e| NodesError::Tool(format!("no temporary file: {e}")))?;
    Ok((Stdio::from(copy), file))
}

fn read_back(mut file: std::fs::File) -> String {
    use std::io::Seek;
    let mut text = String::new();
    let _ = file.seek(std::io::SeekFrom::Start(0));
    let _ = file.take(4096).read_to_string(&mut text);
    text.trim().to_string()
}

fn not_a_video(path: &Path, why: &str) -> NodesError {
    NodesError::Video(format!(
        "{}: not a video ffmpeg can read ({why})",
        path.display()
    ))
}

fn rate_of(text: &str) -> Option<f64> {
    let (num, den) = text.split_once('/').unwrap_or((text, "1"));
    let (num, den) = (num.parse::<f64>().ok()?, den.parse::<f64>().ok()?);
    (num > 0.0 && den > 0.0).then(|| num / den)
}

/// Reads the size, rate, duration and streams of a video with ffprobe.
pub fn probe_video(path: &Path) -> Result<VideoInfo, NodesError> {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-of",
            "json",
            "-show_streams",
            "-show_format",
        ])
        .args(SAFE_INPUT)
        .arg(path)
        .output()
        .map_err(ffmpeg_missing)?;
    if !out.status.success() {
        let why = String::from_utf8_lossy(&out.stderr);
        return Err(not_a_video(path, why.trim()));
    }
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| not_a_video(path, &format!("ffprobe output: {e}")))?;
    let streams = json["streams"].as_array().cloned().unwrap_or_default();
    let video = streams
        .iter()
        .find(|s| s["codec_type"] == "video")
        .ok_or_else(|| not_a_video(path, "no video stream"))?;
    let has_audio = streams.iter().any(|s| s["codec_type"] == "audio");
    let number = |v: &serde_json::Value| {
        v.as_f64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
    };
    let (width, height) = (
        number(&video["width"]).unwrap_or(0.0) as u32,
        number(&video["height"]).unwrap_or(0.0) as u32,
    );
    let rate = ["avg_frame_rate", "r_frame_rate"]
        .iter()
        .filter_map(|k| video[*k].as_str())
        .find(|r| rate_of(r).is_some())
        .ok_or_else(|| not_a_video(path, "no frame rate"))?
        .to_string();
    let fps = rate_of(&rate).unwrap_or(0.0);
    let seconds = number(&video["duration"])
        .or_else(|| number(&json["format"]["duration"]))
        .unwrap_or(0.0);
    if width == 0 || height == 0 {
        return Err(not_a_video(path, "no frame size"));
    }
    let frames = number(&video["nb_frames"])
        .map(|n| n as usize)
        .unwrap_or_else(|| (seconds * fps).round() as usize);
    Ok(VideoInfo {
        width,
        height,
        rate,
        fps,
        seconds,
        frames,
        has_audio,
    })
}

/// Checks a probed video against the limits (`NodesError::Limit` when over).
pub fn check_limits(info: &VideoInfo, limits: &VideoLimits) -> Result<(), NodesError> {
    if info.seconds > limits.max_seconds {
        return Err(NodesError::Limit(format!(
            "the video lasts {:.1} s, over the limit of {:.0} s",
            info.seconds, limits.max_seconds
        )));
    }
    let pixels = info.width as u64 * info.height as u64;
    if pixels > limits.max_pixels {
        return Err(NodesError::Limit(format!(
            "the video is {}x{}, over the limit of {} pixels a frame",
            info.width, info.height, limits.max_pixels
        )));
    }
    Ok(())
}

/// One sign followed across frames.
#[derive(Clone, Debug)]
struct Track {
    class: String,
    bbox: [f32; 4],
    text: Option<(String, f32)>,
    /// Box area when the text was last read.
    read_area: f32,
    last_seen: usize,
}

fn area(b: &[f32; 4]) -> f32 {
    (b[2] - b[0]).max(0.0) * (b[3] - b[1]).max(0.0)
}

/// Follows signs across frames by IoU, and decides when to read them.
#[derive(Debug)]
pub struct Tracker {
    tracks: Vec<Track>,
    /// Least IoU between a track's last box and a detection to continue it.
    pub min_iou: f32,
    /// Frames a track survives without a detection.
    pub max_missing: usize,
    /// Re-read a sign when its box area has grown by this factor since the
    /// last read (closer means more pixels for Tesseract).
    pub regrow: f32,
    pub started: usize,
    pub reads: usize,
}

impl Tracker {
    pub fn new(max_missing: usize) -> Tracker {
        Tracker {
            tracks: Vec::new(),
            min_iou: 0.3,
            max_missing,
            regrow: 2.0,
            started: 0,
            reads: 0,
        }
    }

    /// Matches the frame's detections to tracks (greedy by IoU, same class),
    /// reads text where `read` is due, and fills each detection's text from
    /// its track.
    pub fn update<F>(
        &mut self,
        frame: usize,
        detections: &mut [SignDetection],
        mut read: F,
    ) -> Result<(), NodesError>
    where
        F: FnMut(&SignDetection) -> Result<Option<(String, f32)>, NodesError>,
    {
        self.tracks
            .retain(|t| frame.saturating_sub(t.last_seen) <= self.max_missing);
        let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
        for (d, det) in detections.iter().enumerate() {
            for (t, track) in self.tracks.iter().enumerate() {
                if track.class == det.class {
                    let iou = yolo_core::metrics::box_iou(&track.bbox, &det.bbox);
                    if iou >= self.min_iou {
                        pairs.push((iou, d, t));
                    }
                }
            }
        }
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut track_of = vec![None; detections.len()];
        let mut taken = vec![false; self.tracks.len()];
        for (_, d, t) in pairs {
            if track_of[d].is_none() && !taken[t] {
                track_of[d] = Some(t);
                taken[t] = true;
            }
        }
        for (d, det) in detections.iter_mut().enumerate() {
            let t = match track_of[d] {
                Some(t) => t,
                None => {
                    self.started += 1;
                    self.tracks.push(Track {
                        class: det.class.clone(),
                        bbox: det.bbox,
                        text: None,
                        read_area: 0.0,
                        last_seen: frame,
                    });
                    self.tracks.len() - 1
                }
            };
            let track = &mut self.tracks[t];
            track.bbox = det.bbox;
            track.last_seen = frame;
            let due = track.read_area == 0.0 || area(&det.bbox) >= track.read_area * self.regrow;
            if due {
                track.read_area = area(&det.bbox).max(f32::MIN_POSITIVE);
                if let Some(read) = read(det)? {
                    self.reads += 1;
                    track.text = Some(read);
                }
            }
            if let Some((text, confidence)) = &track.text {
                det.text = Some(text.clone());
                det.text_confidence = Some(*confidence);
            }
        }
        Ok(())
    }
}

/// What annotating a video did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct VideoSummary {
    pub frames: usize,
    pub width: u32,
    pub height: u32,
    pub fps: f64,
    pub tracks: usize,
    /// Tesseract reads (one per track, plus re-reads).
    pub ocr_reads: usize,
    pub detect_ms: f64,
    pub ocr_ms: f64,
    pub total_ms: f64,
}

fn video_error(what: &str, e: impl std::fmt::Display) -> NodesError {
    NodesError::Video(format!("{what}: {e}"))
}

/// Reads the text of one sign of a frame: its text and confidence, `None`
/// when nothing legible came out.
pub type ReadSign<'a> =
    dyn Fn(&RgbImage, &SignDetection) -> Result<Option<(String, f32)>, NodesError> + 'a;

/// Annotates every frame of `input` into the MP4 `output`, the signs of each
/// frame found by `detect` and their texts read by `read` (libtorch and
/// Tesseract, which this crate does not link); `progress` is called after
/// each frame with (frames done, frames expected).
pub fn annotate_video(
    input: &Path,
    output: &Path,
    detect: &dyn Fn(&RgbImage) -> Result<Vec<SignDetection>, NodesError>,
    read: &ReadSign<'_>,
    limits: &VideoLimits,
    progress: &dyn Fn(usize, usize),
) -> Result<VideoSummary, NodesError> {
    let started = Instant::now();
    let info = probe_video(input)?;
    check_limits(&info, limits)?;
    let (w, h) = (info.width, info.height);
    let (decoder_log, decoder_messages) = stderr_file()?;
    let (encoder_log, encoder_messages) = stderr_file()?;
    // The declared duration and rate may be missing or forged: frames are
    // counted as they are decoded, and a video with more than the limit's
    // seconds at the declared rate or at `max_fps`, whichever is lower, is
    // refused (never cut short in silence); the output's streams (audio too)
    // end with the pictures, within the limit. No limit (`roadsign
    // predict`): no cap.
    let max_frames = limits
        .max_seconds
        .is_finite()
        .then(|| (limits.max_seconds * info.fps.max(1.0).min(limits.max_fps)).ceil() as usize + 1);
    let frame_cap: Vec<String> = match max_frames {
        Some(n) => vec!["-frames:v".into(), (n + 1).to_string()],
        None => Vec::new(),
    };
    let time_cap: Vec<String> = match limits.max_seconds.is_finite() {
        true => vec!["-t".into(), format!("{}", limits.max_seconds)],
        false => Vec::new(),
    };
    // ffmpeg sizes its threads, and their frame buffers, by the host's
    // cores, not by a container's CPU limit: x264 on a 64-core node would
    // take gigabytes. Two threads each keep a job's memory the same
    // everywhere (a 1080p job: about 110 MiB decoding, 310 MiB encoding).
    let mut decoder = Command::new("ffmpeg")
        .args(["-v", "error", "-nostdin", "-noautorotate", "-threads", "2"])
        .args(SAFE_INPUT)
        .arg("-i")
        .arg(input)
        .args(["-map", "0:v:0", "-fps_mode", "passthrough"])
        .args(&frame_cap)
        .args(["-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(decoder_log)
        .spawn()
        .map_err(ffmpeg_missing)?;
    let mut encoder = Command::new("ffmpeg")
        .args([
            "-y", "-v", "error", "-nostdin", "-f", "rawvideo", "-pix_fmt", "rgb24",
        ])
        .args([
            "-s",
            &format!("{w}x{h}"),
            "-framerate",
            &info.rate,
            "-i",
            "-",
        ])
        .args(SAFE_INPUT)
        .arg("-i")
        .arg(input)
        .args(["-map", "0:v:0", "-map", "1:a?"])
        .args(["-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2"])
        .args([
            "-c:v", "libx264", "-preset", "veryfast", "-threads", "2", "-pix_fmt", "yuv420p",
        ])
        .args(["-c:a", "aac", "-movflags", "+faststart", "-f", "mp4"])
        // The sound ends with the pictures, and within the limit.
        .arg("-shortest")
        .args(&time_cap)
        .arg(output)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(encoder_log)
        .spawn()
        .map_err(ffmpeg_missing)?;
    let mut frames_in = decoder.stdout.take().expect("piped");
    let mut frames_out = encoder.stdin.take().expect("piped");
    let mut tracker = Tracker::new((info.fps / 2.0).ceil().max(1.0) as usize);
    let mut summary = VideoSummary {
        width: w,
        height: h,
        fps: info.fps,
        ..VideoSummary::default()
    };
    let mut buffer = vec![0u8; w as usize * h as usize * 3];
    let result = (|| -> Result<(), NodesError> {
        loop {
            match frames_in.read_exact(&mut buffer) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
                Err(e) => return Err(video_error("reading frames", e)),
            }
            if let Some(reason) = limits.stop_reason() {
                return Err(NodesError::Cancelled(reason));
            }
            if let Some(n) = max_frames.filter(|n| summary.frames >= *n) {
                return Err(NodesError::Limit(format!(
                    "the video runs past the limit of {:.0} s ({} frames at {:.0} frames a second at most)",
                    limits.max_seconds,
                    n - 1,
                    info.fps.max(1.0).min(limits.max_fps)
                )));
            }
            let mut frame = RgbImage::from_raw(w, h, std::mem::take(&mut buffer))
                .expect("buffer holds one frame");
            let t = Instant::now();
            let mut signs = detect(&frame)?;
            summary.detect_ms += t.elapsed().as_secs_f64() * 1000.0;
            let t = Instant::now();
            tracker.update(summary.frames, &mut signs, |sign| read(&frame, sign))?;
            summary.ocr_ms += t.elapsed().as_secs_f64() * 1000.0;
            draw_predictions(&mut frame, &signs);
            frames_out
                .write_all(frame.as_raw())
                .map_err(|e| video_error("the encoder stopped reading", e))?;
            buffer = frame.into_raw();
            summary.frames += 1;
            progress(summary.frames, info.frames.max(summary.frames));
        }
    })();
    drop(frames_out);
    drop(frames_in);
    if result.is_err() {
        // Stop both at once rather than wait for a stalled stream.
        let _ = decoder.kill();
        let _ = encoder.kill();
    }
    let tool = |e: std::io::Error| NodesError::Tool(format!("ffmpeg: {e}"));
    let decoded = decoder.wait().map_err(tool)?;
    let encoded = encoder.wait().map_err(tool)?;
    result?;
    if !decoded.success() || summary.frames == 0 {
        return Err(not_a_video(input, &read_back(decoder_messages)));
    }
    if !encoded.success() {
        return Err(NodesError::Tool(format!(
            "encoding failed: {}",
            read_back(encoder_messages)
        )));
    }
    summary.tracks = tracker.started;
    summary.ocr_reads = tracker.reads;
    summary.total_ms = started.elapsed().as_secs_f64() * 1000.0;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(class: &str, bbox: [f32; 4]) -> SignDetection {
        SignDetection {
            class: class.into(),
            class_id: 0,
            confidence: 0.9,
            bbox,
            text: None,
            text_confidence: None,
        }
    }

    #[test]
    fn a_sign_is_read_once_per_track_and_again_when_it_grows() {
        let mut tracker = Tracker::new(2);
        let mut reads = Vec::new();
        let mut read = |d: &SignDetection| {
            reads.push(d.bbox);
            Ok(Some((format!("read {}", reads.len()), 0.8)))
        };
        // The same sign drifting slowly for three frames: one read.
        for (frame, x) in [0.0f32, 2.0, 4.0].iter().enumerate() {
            let mut dets = [det("stop", [10.0 + x, 10.0, 50.0 + x, 50.0])];
            tracker.update(frame, &mut dets, &mut read).unwrap();
            assert_eq!(dets[0].text.as_deref(), Some("read 1"));
            assert_eq!(dets[0].text_confidence, Some(0.8));
        }
        // It grows past twice its area: read again.
        let mut dets = [det("stop", [4.0, 4.0, 64.0, 64.0])];
        tracker.update(3, &mut dets, &mut read).unwrap();
        assert_eq!(dets[0].text.as_deref(), Some("read 2"));
        // Another class at the same place is another track.
        let mut dets = [det("yield", [4.0, 4.0, 64.0, 64.0])];
        tracker.update(4, &mut dets, &mut read).unwrap();
        assert_eq!(dets[0].text.as_deref(), Some("read 3"));
        assert_eq!((tracker.started, tracker.reads), (2, 3));
    }

    #[test]
    fn lost_tracks_expire_and_far_boxes_start_new_ones() {
        let mut tracker = Tracker::new(1);
        let mut count = 0;
        let mut read = |_: &SignDetection| {
            count += 1;
            Ok(None)
        };
        let mut a = [det("stop", [0.0, 0.0, 10.0, 10.0])];
        tracker.update(0, &mut a, &mut read).unwrap();
        let mut far = [det("stop", [100.0, 100.0, 110.0, 110.0])];
        tracker.update(1, &mut far, &mut read).unwrap();
        // Frame 5: the first track has been missing too long.
        let mut again = [det("stop", [0.0, 0.0, 10.0, 10.0])];
        tracker.update(5, &mut again, &mut read).unwrap();
        assert_eq!(tracker.started, 3);
        assert_eq!(count, 3);
        assert_eq!(again[0].text, None);
    }

    #[test]
    fn limits_are_checked() {
        let info = VideoInfo {
            width: 640,
            height: 360,
            rate: "25/1".into(),
            fps: 25.0,
            seconds: 10.0,
            frames: 250,
            has_audio: false,
        };
        assert!(check_limits(&info, &VideoLimits::default()).is_ok());
        let short = VideoLimits {
            max_seconds: 5.0,
            ..VideoLimits::default()
        };
        let err = check_limits(&info, &short).unwrap_err();
        assert!(matches!(err, NodesError::Limit(_)), "{err}");
        let small = VideoLimits {
            max_pixels: 1000,
            ..VideoLimits::default()
        };
        assert!(check_limits(&info, &small)
            .unwrap_err()
            .to_string()
            .contains("640x360"));
        assert_eq!(
            rate_of("30000/1001").map(|r| (r * 100.0).round()),
            Some(2997.0)
        );
        assert_eq!(rate_of("0/0"), None);
    }

    #[test]
    fn garbage_is_not_a_video() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.mp4");
        std::fs::write(&path, b"not a video at all").unwrap();
        let err = probe_video(&path).unwrap_err();
        assert!(matches!(err, NodesError::Video(_)), "{err}");
    }
}
