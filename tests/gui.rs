//! The mini-GUI in real headless Chromium, driven over WebDriver
//! (chromedriver): an image chosen in the page comes back annotated, with
//! the table of detections filled in; a video comes back as an MP4 that the
//! page's player loads.

mod common;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::http::request;
use common::server::{project_with_model, Server};
use serde_json::{json, Value};

struct Driver {
    child: Child,
    address: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Driver {
    fn start() -> Driver {
        let port = free_port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (make test installs chromium-driver)");
        let driver = Driver {
            child,
            address: format!("127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(reply) = request(&driver.address, "GET", "/status", &[], &[]) {
                if reply.json()["value"]["ready"] == true {
                    return driver;
                }
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Runs `script` in the page until it returns something other than
    /// null, and returns that.
    fn wait_for(&self, session: &str, script: &str, seconds: u64, what: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        loop {
            let value = self.call(
                "POST",
                &format!("{session}/execute/sync"),
                json!({"script": script, "args": []}),
            );
            if !value.is_null() {
                return value;
            }
            assert!(Instant::now() < deadline, "{what}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let bytes = if method == "GET" {
            Vec::new()
        } else {
            body.to_string().into_bytes()
        };
        let reply = request(
            &self.address,
            method,
            path,
            &[("Content-Type", "application/json")],
            &bytes,
        )
        .unwrap();
        let value = reply.json();
        assert_eq!(reply.status, 200, "{method} {path}: {value}");
        value["value"].clone()
    }
}

#[test]
fn images_and_videos_chosen_in_the_page_come_back_annotated() {
    let project = project_with_model();
    let server = Server::ready(&project, &[]);
    let (scene, _) = nodes::synth::sample_scene(640, 640, 1, &["stop"], 11);
    let image_path = project.file("stop.png");
    scene.save(&image_path).unwrap();

    let driver = Driver::start();
    let session = driver.call(
        "POST",
        "/session",
        json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1280,900"]
            }
        }}}),
    );
    let id = session["sessionId"].as_str().unwrap().to_string();
    let base = format!("/session/{id}");
    driver.call(
        "POST",
        &format!("{base}/url"),
        json!({"url": format!("http://{}/", server.address)}),
    );
    let title = driver.call("GET", &format!("{base}/title"), json!({}));
    assert!(title.as_str().unwrap().contains("roadsign"), "{title}");
    let input = driver.call(
        "POST",
        &format!("{base}/element"),
        json!({"using": "css selector", "value": "#file"}),
    );
    let element = input
        .as_object()
        .and_then(|o| o.values().next())
        .and_then(Value::as_str)
        .unwrap()
        .to_string();
    driver.call(
        "POST",
        &format!("{base}/element/{element}/value"),
        json!({"text": image_path.to_str().unwrap()}),
    );

    // Wait for the annotated image to load and the table to fill.
    let probe = "const img = document.getElementById('annotated');\
        const rows = [...document.querySelectorAll('#detections tbody tr')]\
          .map(r => [...r.cells].map(c => c.textContent));\
        return img && img.complete && img.naturalWidth > 0\
          ? {width: img.naturalWidth, height: img.naturalHeight, rows: rows,\
             status: document.getElementById('status').textContent}\
          : null;";
    let seen = driver.wait_for(&base, probe, 60, "the annotated image never appeared");
    assert_eq!(
        (seen["width"].as_u64(), seen["height"].as_u64()),
        (Some(640), Some(640))
    );
    let rows = seen["rows"].as_array().unwrap();
    assert!(
        rows.iter().any(|r| r[0] == "stop" && r[2] == "STOP"),
        "the table shows the stop sign and its text: {seen}"
    );
    assert!(
        seen["status"].as_str().unwrap().starts_with("Done"),
        "{seen}"
    );

    // A video through the same page: the annotated MP4 plays in the page.
    let clip = project.file("clip.mp4");
    common::make_clip(&clip, 10, 1, false);
    driver.call(
        "POST",
        &format!("{base}/element/{element}/value"),
        json!({"text": clip.to_str().unwrap()}),
    );
    let probe = "const v = document.getElementById('annotated');\
        return v && v.tagName === 'VIDEO' && v.readyState >= 1\
          ? {duration: v.duration, width: v.videoWidth,\
             summary: document.getElementById('summary').textContent}\
          : null;";
    let video = driver.wait_for(
        &base,
        probe,
        120,
        "the annotated video never loaded in the page",
    );
    assert_eq!(video["width"].as_u64(), Some(320), "{video}");
    let duration = video["duration"].as_f64().unwrap();
    assert!((duration - 1.0).abs() < 0.2, "{video}");
    assert!(
        video["summary"]
            .as_str()
            .unwrap()
            .starts_with("10 frame(s)"),
        "{video}"
    );

    if let Ok(path) = std::env::var("ROADSIGN_GUI_SCREENSHOT") {
        use base64::Engine;
        let shot = driver.call("GET", &format!("{base}/screenshot"), json!({}));
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot.as_str().unwrap())
            .unwrap();
        std::fs::write(path, png).unwrap();
    }
    let reply = request(&driver.address, "DELETE", &base, &[], &[]).unwrap();
    assert_eq!(reply.status, 200);
}
