//! Dashcam-style clips: a road scene approached over a few seconds, signs
//! growing as the camera closes in; encoded to H.264 MP4 with ffmpeg.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use image::RgbImage;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Deserialize;

use super::scene::{make_scene, shrink, SceneSpec};
use super::signs::Vocabulary;
use crate::NodesError;

/// `params:clip`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClipParams {
    pub seed: u64,
    pub seconds: f64,
    pub fps: u32,
    pub width: u32,
    pub height: u32,
}

/// Decoded video frames at a constant frame rate.
#[derive(Clone, Debug, PartialEq)]
pub struct VideoClip {
    pub fps: u32,
    pub frames: Vec<RgbImage>,
}

runner::data_value!(VideoClip);

/// Draws the frames of a clip. Deterministic in its parameters.
pub fn generate_clip(p: &ClipParams) -> Result<VideoClip, NodesError> {
    if p.fps == 0
        || p.seconds <= 0.0
        || p.width < 64
        || p.height < 64
        || p.width % 2 == 1
        || p.height % 2 == 1
    {
        return Err(NodesError::Params(
            "clip needs fps > 0, seconds > 0 and an even size of at least 64x64".into(),
        ));
    }
    let (towns, streets) = (
        vec!["LYON".to_string(), "ORLÉANS".to_string()],
        vec!["RUE PASTEUR".to_string()],
    );
    let classes: Vec<(String, f64)> = super::CLASSES
        .iter()
        .map(|c| (c.to_string(), 1.0))
        .collect();
    let (bw, bh) = (p.width * 2, p.height * 2);
    let spec = SceneSpec {
        width: bw,
        height: bh,
        classes: &classes,
        max_signs: 4,
        empty_fraction: 0.0,
        min_sign_px: 24,
        max_sign_fraction: 0.2,
        vocabulary: Vocabulary {
            towns: &towns,
            streets: &streets,
        },
    };
    let mut rng = ChaCha8Rng::seed_from_u64(p.seed);
    let (scene, _) = make_scene(&spec, &mut rng);
    let n = (p.seconds * p.fps as f64).round().max(1.0) as usize;
    let frames = (0..n)
        .map(|i| {
            // zoom from the whole scene to its central 45%: signs approach and grow
            let t = i as f64 / n.max(2).saturating_sub(1) as f64;
            let zoom = 1.0 + 1.2 * t;
            let (cw, ch) = ((bw as f64 / zoom) as u32, (bh as f64 / zoom) as u32);
            let (x, y) = ((bw - cw) / 2, (bh - ch) / 2);
            let crop = image::imageops::crop_imm(&scene, x, y, cw, ch).to_image();
            shrink(&crop, p.width, p.height)
        })
        .collect();
    Ok(VideoClip { fps: p.fps, frames })
}

pub(crate) fn ffmpeg_missing(e: std::io::Error) -> NodesError {
    NodesError::Tool(format!(
        "cannot start ffmpeg ({e}); install it (Debian: apt-get install ffmpeg)"
    ))
}

/// Encodes frames to H.264 MP4 (yuv420p, faststart: plays in browsers).
pub fn encode_mp4(clip: &VideoClip, path: &Path) -> Result<(), NodesError> {
    let first = clip
        .frames
        .first()
        .ok_or_else(|| NodesError::Video("a clip needs at least one frame".into()))?;
    let (w, h) = first.dimensions();
    let mut child = Command::new("ffmpeg")
        .args([
            "-y",
            "-loglevel",
            "error",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
        ])
        .args([
            "-s",
            &format!("{w}x{h}"),
            "-r",
            &clip.fps.to_string(),
            "-i",
            "-",
        ])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-pix_fmt",
            "yuv420p",
            "-movflags",
            "+faststart",
            "-f",
            "mp4",
        ])
        .arg(path)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(ffmpeg_missing)?;
    let mut stdin = child.stdin.take().expect("piped");
    for frame in &clip.frames {
        if frame.dimensions() != (w, h) {
            return Err(NodesError::Video(
                "all frames of a clip must have one size".into(),
            ));
        }
        stdin
            .write_all(frame.as_raw())
            .map_err(|e| NodesError::Video(format!("ffmpeg stopped reading: {e}")))?;
    }
    drop(stdin);
    let out = child
        .wait_with_output()
        .map_err(|e| NodesError::Video(e.to_string()))?;
    if !out.status.success() {
        return Err(NodesError::Video(format!(
            "ffmpeg failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// Reads a video file's frame rate and size with ffprobe.
fn probe(path: &Path) -> Result<(u32, u32, u32), NodesError> {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=width,height,r_frame_rate",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .map_err(ffmpeg_missing)?;
    let text = String::from_utf8_lossy(&out.stdout);
    let fields: Vec<&str> = text.trim().split(',').collect();
    let parse = |s: &str| s.parse::<u32>().ok();
    match fields.as_slice() {
        [w, h, rate] => {
            let (num, den) = rate.split_once('/').unwrap_or((rate, "1"));
            let fps = match (parse(num), parse(den)) {
                (Some(n), Some(d)) if d > 0 => (n as f64 / d as f64).round() as u32,
                _ => 0,
            };
            match (parse(w), parse(h)) {
                (Some(w), Some(h)) if w > 0 && h > 0 && fps > 0 => Ok((w, h, fps)),
                _ => Err(NodesError::Video(format!(
                    "{}: not a video ffprobe can read",
                    path.display()
                ))),
            }
        }
        _ => Err(NodesError::Video(format!(
            "{}: not a video ffprobe can read",
            path.display()
        ))),
    }
}

/// Decodes every frame of a video file.
pub fn decode(path: &Path) -> Result<VideoClip, NodesError> {
    let (w, h, fps) = probe(path)?;
    let mut child = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(ffmpeg_missing)?;
    let mut raw = Vec::new();
    child
        .stdout
        .take()
        .expect("piped")
        .read_to_end(&mut raw)
        .map_err(|e| NodesError::Video(e.to_string()))?;
    child.wait().map_err(|e| NodesError::Video(e.to_string()))?;
    let size = (w * h * 3) as usize;
    let frames = raw
        .chunks_exact(size)
        .filter_map(|c| RgbImage::from_raw(w, h, c.to_vec()))
        .collect();
    Ok(VideoClip { fps, frames })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clip_round_trips_through_mp4_with_its_frame_count() {
        if Command::new("ffmpeg").arg("-version").output().is_err() {
            panic!("ffmpeg is required (make test installs it)");
        }
        let p = ClipParams {
            seed: 3,
            seconds: 1.0,
            fps: 12,
            width: 160,
            height: 96,
        };
        let clip = generate_clip(&p).unwrap();
        assert_eq!(clip.frames.len(), 12);
        assert_ne!(clip.frames[0], clip.frames[11], "the camera moves");
        assert_eq!(generate_clip(&p).unwrap(), clip, "deterministic");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clip.mp4");
        encode_mp4(&clip, &path).unwrap();
        let back = decode(&path).unwrap();
        assert_eq!(back.frames.len(), 12);
        assert_eq!(back.fps, 12);
        assert_eq!(back.frames[0].dimensions(), (160, 96));
        assert!(decode(&dir.path().join("missing.mp4")).is_err());
        assert!(generate_clip(&ClipParams { width: 63, ..p }).is_err());
    }
}
