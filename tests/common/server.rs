//! `roadsign serve` as a child process on 127.0.0.1 and a free port.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::http;
use super::Project;

/// The shipped model (trained on the synthetic scenes by the default pipeline).
pub fn shipped_model() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/yolov8n-roadsign.safetensors")
}

/// The repository's project with the shipped model in place.
pub fn project_with_model() -> Project {
    let p = super::repo_project();
    let target = p.file("data/06_models/yolov8.safetensors");
    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
    std::fs::copy(shipped_model(), target).unwrap();
    p
}

pub struct Server {
    pub child: Child,
    pub address: String,
    /// Lines the server printed on stderr after "listening".
    pub log: mpsc::Receiver<String>,
}

impl Server {
    /// Starts the server and waits for its listening line (not for /ready).
    pub fn start(project: &Project, params: &[&str]) -> Server {
        Server::start_with_env(project, params, &[])
    }

    /// As [`Server::start`], with extra environment variables.
    pub fn start_with_env(
        project: &Project,
        params: &[&str],
        env: &[(&str, &std::path::Path)],
    ) -> Server {
        let mut command = Command::new(env!("CARGO_BIN_EXE_roadsign"));
        for (name, value) in env {
            command.env(name, value);
        }
        command
            .args(["serve", "--port", "0", "--project-dir"])
            .arg(project.path())
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if !params.is_empty() {
            command.args(["--params", &params.join(",")]);
        }
        let mut child = command.spawn().expect("roadsign serve starts");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        let address = loop {
            let line = rx
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .expect("the server prints where it listens");
            if let Some(rest) = line.split("listening on http://").nth(1) {
                break rest.split_whitespace().next().unwrap().to_string();
            }
        };
        Server {
            child,
            address,
            log: rx,
        }
    }

    /// Starts the server and waits until /ready answers 200.
    pub fn ready(project: &Project, params: &[&str]) -> Server {
        let server = Server::start(project, params);
        server.wait_ready();
        server
    }

    pub fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while Instant::now() < deadline {
            if http::get(&self.address, "/ready").status == 200 {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the server never became ready");
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        assert!(self.send_term(), "kill -TERM failed");
    }

    fn send_term(&self) -> bool {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Waits for the process to end, at most `seconds`.
    pub fn wait_exit(&mut self, seconds: u64) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "the server did not exit");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    /// SIGTERM first, so that the process exits normally (and an
    /// instrumented build writes its coverage); SIGKILL if it lingers.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.send_term();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
