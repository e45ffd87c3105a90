//! Fixture projects in temporary folders, and a way to run the binary on them.

#![allow(dead_code)]

pub mod bomb;
pub mod http;
pub mod moto;
pub mod server;

use std::path::{Path, PathBuf};
use std::process::Output;

pub struct Project {
    pub dir: tempfile::TempDir,
}

impl Project {
    pub fn new(files: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let project = Project { dir };
        for (name, text) in files {
            project.write(name, text);
        }
        project
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write(&self, name: &str, text: &str) {
        let path = self.file(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.file(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    /// `roadsign ARGS --project-dir DIR`, to add environment variables to.
    pub fn command(&self, args: &[&str]) -> assert_cmd::Command {
        let mut command = assert_cmd::Command::cargo_bin("roadsign").unwrap();
        command
            .args(args)
            .arg("--project-dir")
            .arg(self.path())
            .env_remove("RUST_LOG");
        command
    }

    /// Runs `roadsign ARGS --project-dir DIR`.
    pub fn roadsign(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Runs and expects success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.roadsign(args);
        assert!(
            out.status.success(),
            "roadsign {args:?} failed ({:?}):\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs and expects the given exit code; returns stderr.
    pub fn fails(&self, args: &[&str], code: i32) -> String {
        let out = self.roadsign(args);
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(
            out.status.code(),
            Some(code),
            "roadsign {args:?}:\n{stderr}"
        );
        if code == 2 {
            assert!(
                out.stdout.is_empty(),
                "nothing on stdout on a config error, got:\n{}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
        stderr
    }

    /// The plan of a dry run, parsed.
    pub fn plan(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["run", "--dry-run", "--format", "json"];
        all.extend_from_slice(args);
        serde_json::from_str(&self.ok(&all)).expect("plan JSON")
    }
}

/// Node names of a plan, in order.
pub fn plan_names(plan: &serde_json::Value) -> Vec<String> {
    plan["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap().to_string())
        .collect()
}

/// A copy of the repository's own project files in a temporary folder.
pub fn repo_project() -> Project {
    let root = env!("CARGO_MANIFEST_DIR");
    let read = |name: &str| std::fs::read_to_string(format!("{root}/{name}")).unwrap();
    Project::new(&[
        ("pipelines.yml", &read("pipelines.yml")),
        ("catalog.yml", &read("catalog.yml")),
        ("parameters.yml", &read("parameters.yml")),
    ])
}

/// Writes a generated H.264 clip (320×240, yuv420p, `fps` frames a second
/// for `seconds`; with `sound`, a 440 Hz AAC tone) at `path`.
pub fn make_clip(path: &Path, fps: u32, seconds: u32, sound: bool) {
    let mut ffmpeg = std::process::Command::new("ffmpeg");
    ffmpeg
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!(
            "testsrc=size=320x240:rate={fps}:duration={seconds}"
        ));
    if sound {
        ffmpeg
            .args(["-f", "lavfi", "-i"])
            .arg(format!("sine=frequency=440:duration={seconds}"));
    }
    ffmpeg.args(["-c:v", "libx264", "-pix_fmt", "yuv420p"]);
    if sound {
        ffmpeg.args(["-c:a", "aac", "-shortest"]);
    }
    let made = ffmpeg
        .arg(path)
        .status()
        .expect("ffmpeg (make test installs it)");
    assert!(made.success(), "ffmpeg could not write {}", path.display());
}
