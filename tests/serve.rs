//! `roadsign serve` for real: a server on 127.0.0.1 and a random port, with
//! the shipped model, answering every route — and bad input with
//! the right 4xx while it goes on serving.

mod common;

use std::time::Duration;

use common::http::{self, form, form_type, get, post_file, request};
use common::server::{project_with_model, Server};
use image::{ImageFormat, RgbImage};

fn encode(image: &RgbImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Vec::new();
    image
        .write_to(&mut std::io::Cursor::new(&mut out), format)
        .unwrap();
    out
}

fn iou(a: [f64; 4], b: [f64; 4]) -> f64 {
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = w * h;
    let area = |r: [f64; 4]| (r[2] - r[0]) * (r[3] - r[1]);
    inter / (area(a) + area(b) - inter)
}

fn box_of(value: &serde_json::Value) -> [f64; 4] {
    let v: Vec<f64> = value
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    [v[0], v[1], v[2], v[3]]
}

fn assert_healthy(address: &str) {
    let health = get(address, "/health");
    assert_eq!(health.status, 200);
    assert_eq!(health.json(), serde_json::json!({"status": "ok"}));
}

/// The JSON of a stop sign scene finds the sign where it is and reads STOP;
/// the annotated image differs from the input inside the box only.
#[test]
fn predictions_find_and_read_signs_and_draw_them() {
    let project = project_with_model();
    let server = Server::ready(&project, &[]);
    let address = server.address.as_str();

    let (scene, objects) = nodes::synth::sample_scene(640, 640, 1, &["stop"], 11);
    let truth = &objects[0];
    let truth_box = [
        truth.bbox.xmin,
        truth.bbox.ymin,
        truth.bbox.xmax,
        truth.bbox.ymax,
    ];
    let jpeg = encode(&scene, ImageFormat::Jpeg);
    let reply = post_file(address, "/predict", "image/jpeg", &jpeg);
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let json = reply.json();
    assert_eq!(
        json["image"],
        serde_json::json!({"width": 640, "height": 640})
    );
    assert!(json["timings_ms"]["detect"].as_f64().unwrap() > 0.0);
    assert!(json["timings_ms"]["ocr"].as_f64().unwrap() > 0.0);
    let found = json["detections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["class"] == "stop" && iou(box_of(&d["box"]), truth_box) > 0.5)
        .unwrap_or_else(|| panic!("no stop sign near {truth_box:?}: {json}"));
    assert_eq!(found["text"], "STOP", "{json}");
    let confidence = found["text_confidence"].as_f64().unwrap();
    // A clean STOP read right is a confident read.
    assert!(confidence > 0.5 && confidence <= 1.0, "{confidence}");

    // The same image as a raw PNG body.
    let png = encode(&scene, ImageFormat::Png);
    let raw = request(
        address,
        "POST",
        "/predict",
        &[("Content-Type", "image/png")],
        &png,
    )
    .unwrap();
    assert_eq!(raw.status, 200, "{}", raw.text());
    assert_eq!(raw.json()["detections"][0]["class"], "stop");

    // The annotated image: a JPEG of the same size, changed where the box is.
    let drawn = post_file(address, "/predict/image", "image/jpeg", &jpeg);
    assert_eq!(drawn.status, 200, "{}", drawn.text());
    assert_eq!(drawn.header("content-type"), Some("image/jpeg"));
    let header: serde_json::Value =
        serde_json::from_str(drawn.header("x-roadsign-prediction").unwrap()).unwrap();
    assert_eq!(header["detections"][0]["text"], "STOP");
    let annotated = image::load_from_memory_with_format(&drawn.body, ImageFormat::Jpeg)
        .unwrap()
        .to_rgb8();
    assert_eq!(annotated.dimensions(), scene.dimensions());
    let original = image::load_from_memory(&jpeg).unwrap().to_rgb8();
    let diff = |x0: f64, y0: f64, x1: f64, y1: f64| {
        let (mut sum, mut n) = (0.0f64, 0.0f64);
        for y in (y0.max(0.0) as u32)..(y1.min(639.0) as u32) {
            for x in (x0.max(0.0) as u32)..(x1.min(639.0) as u32) {
                let (a, b) = (annotated.get_pixel(x, y), original.get_pixel(x, y));
                sum += (0..3)
                    .map(|c| (a[c] as f64 - b[c] as f64).abs())
                    .sum::<f64>();
                n += 3.0;
            }
        }
        sum / n.max(1.0)
    };
    let [x1, _, _, y2] = box_of(&found["box"]);
    // The box's outline (its left edge, 2 px wide at 640 px) changed a lot...
    let x1 = x1.round();
    let edge = diff(x1, y2 - 60.0, x1 + 2.0, y2 - 10.0);
    assert!(edge > 25.0, "box edge barely changed: {edge}");
    // ...while a band far from the sign stayed as it was (JPEG noise only).
    let far = if y2 < 500.0 {
        diff(0.0, 600.0, 640.0, 639.0)
    } else {
        diff(0.0, 0.0, 640.0, 40.0)
    };
    assert!(far < 6.0, "pixels far from the box changed: {far}");

    // The GUI page is served, self-contained.
    let page = get(address, "/");
    assert_eq!(page.status, 200);
    assert!(page
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    let html = page.text();
    assert!(html.contains("predict/image") && html.contains("predict/video"));
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no CDN"
    );

    // /metrics counted what was answered.
    let metrics = get(address, "/metrics").text();
    assert!(
        metrics.contains("roadsign_http_requests_total{route=\"/predict\",status=\"200\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("roadsign_http_requests_total{route=\"/predict/image\",status=\"200\"} 1")
    );
    assert!(metrics.contains("roadsign_http_request_duration_seconds_count{route=\"/predict\"} 2"));
    assert!(
        metrics.contains("roadsign_http_requests_in_flight 1"),
        "this request itself"
    );
    assert!(metrics.contains("roadsign_ready 1"));
}

#[test]
fn bad_input_gets_its_status_and_the_server_goes_on() {
    let project = project_with_model();
    let server = Server::ready(
        &project,
        &["serve.max_upload_mb=1", "serve.max_pixels=4000000"],
    );
    let address = server.address.as_str();
    let (scene, _) = nodes::synth::sample_scene(320, 320, 1, &[], 3);
    let jpeg = encode(&scene, ImageFormat::Jpeg);

    let mut truncated = jpeg.clone();
    truncated.truncate(jpeg.len() / 3);
    // A PNG header declaring 30000 x 30000 pixels (900 MP), with no pixels.
    let bomb = common::bomb::png_declaring(30_000, 30_000);
    let oversized = vec![0u8; 2 * 1024 * 1024];
    let gif = b"GIF89a\x01\x00\x01\x00\x00\x00\x00;".to_vec();

    let cases: Vec<(&str, http::Reply, u16)> = vec![
        (
            "garbage",
            post_file(address, "/predict", "image/jpeg", b"this is not an image"),
            400,
        ),
        (
            "truncated",
            post_file(address, "/predict", "image/jpeg", &truncated),
            400,
        ),
        (
            "empty",
            post_file(address, "/predict/image", "image/png", b""),
            400,
        ),
        (
            "text type",
            post_file(address, "/predict", "text/plain", &jpeg),
            415,
        ),
        (
            "raw text",
            request(
                address,
                "POST",
                "/predict",
                &[("Content-Type", "application/json")],
                b"{}",
            )
            .unwrap(),
            415,
        ),
        (
            "gif",
            post_file(address, "/predict", "image/gif", &gif),
            415,
        ),
        (
            "bomb",
            post_file(address, "/predict", "image/png", &bomb),
            413,
        ),
        (
            "oversized",
            post_file(address, "/predict", "image/jpeg", &oversized),
            413,
        ),
        (
            "no file field",
            request(
                address,
                "POST",
                "/predict",
                &[("Content-Type", &form_type())],
                &form("picture", "a.jpg", "image/jpeg", &jpeg),
            )
            .unwrap(),
            400,
        ),
        (
            "video type on /predict/video",
            post_file(address, "/predict/video", "image/png", &jpeg),
            415,
        ),
        (
            "garbage video",
            post_file(address, "/predict/video", "video/mp4", b"not a video"),
            400,
        ),
        ("unknown route", get(address, "/nothing"), 404),
        ("wrong method", get(address, "/predict"), 405),
    ];
    for (name, reply, status) in &cases {
        assert_eq!(reply.status, *status, "{name}: {}", reply.text());
        let error = reply.json()["error"].as_str().map(String::from);
        assert!(
            error.is_some_and(|e| !e.is_empty()),
            "{name}: {}",
            reply.text()
        );
        assert_healthy(address);
    }
    // Still predicting after all that.
    let ok = post_file(address, "/predict", "image/jpeg", &jpeg);
    assert_eq!(ok.status, 200, "{}", ok.text());
    let metrics = get(address, "/metrics").text();
    assert!(
        metrics.contains("roadsign_http_requests_total{route=\"/predict\",status=\"415\"} 3"),
        "{metrics}"
    );
}

/// Before the model is loaded /ready is 503 and /predict refuses; /health
/// answers throughout. The model file is a FIFO that the test fills when it
/// has seen the 503s, so the order is certain.
#[test]
fn not_ready_until_the_model_is_loaded_and_warm() {
    let project = common::repo_project();
    let model = project.file("data/06_models/yolov8.safetensors");
    std::fs::create_dir_all(model.parent().unwrap()).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(&model)
        .status()
        .unwrap();
    assert!(made.success());
    let server = Server::start(&project, &[]);
    let address = server.address.as_str();
    assert_healthy(address);
    let ready = get(address, "/ready");
    assert_eq!(ready.status, 503);
    assert!(ready.json()["error"].as_str().unwrap().contains("loading"));
    let (scene, _) = nodes::synth::sample_scene(320, 320, 1, &[], 3);
    let early = post_file(
        address,
        "/predict",
        "image/jpeg",
        &encode(&scene, ImageFormat::Jpeg),
    );
    assert_eq!(early.status, 503);
    assert!(get(address, "/metrics").text().contains("roadsign_ready 0"));
    // Now the model arrives.
    let bytes = std::fs::read(common::server::shipped_model()).unwrap();
    std::fs::write(&model, bytes).unwrap();
    server.wait_ready();
    let late = post_file(
        address,
        "/predict",
        "image/jpeg",
        &encode(&scene, ImageFormat::Jpeg),
    );
    assert_eq!(late.status, 200, "{}", late.text());
}

/// One worker and no queue: concurrent requests beyond it get 503 at once,
/// the others 200; SIGTERM lets the request in flight finish, then exits 0.
#[test]
fn overload_is_refused_and_sigterm_drains() {
    let project = project_with_model();
    let mut server = Server::ready(&project, &["serve.workers=1", "serve.queue=0"]);
    let address = server.address.clone();
    let (scene, _) = nodes::synth::sample_scene(640, 640, 3, &[], 5);
    let jpeg = std::sync::Arc::new(encode(&scene, ImageFormat::Jpeg));
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..6)
            .map(|_| {
                let (address, jpeg) = (address.clone(), std::sync::Arc::clone(&jpeg));
                s.spawn(move || post_file(&address, "/predict/image", "image/jpeg", &jpeg).status)
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(statuses.contains(&200), "{statuses:?}");
    assert!(statuses.contains(&503), "{statuses:?}");
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 503),
        "{statuses:?}"
    );

    // A request in flight when SIGTERM arrives still gets its answer.
    let in_flight = {
        let (address, jpeg) = (address.clone(), std::sync::Arc::clone(&jpeg));
        std::thread::spawn(move || post_file(&address, "/predict/image", "image/jpeg", &jpeg))
    };
    std::thread::sleep(Duration::from_millis(60));
    server.terminate();
    let reply = in_flight.join().unwrap();
    assert_eq!(reply.status, 200, "{}", reply.text());
    let status = server.wait_exit(30);
    assert!(status.success(), "{status:?}");
    let log: Vec<String> = server.log.try_iter().collect();
    assert!(log.iter().any(|l| l.contains("shutting down")), "{log:?}");
}

/// A generated clip with sound round-trips through /predict/video with the
/// same frame count, duration and audio, as browser-playable H.264; a clip
/// over the duration limit gets 413.
#[test]
fn videos_round_trip_with_their_frames_and_sound() {
    let dir = tempfile::tempdir().unwrap();
    let clip = |name: &str, seconds: u32| {
        let path = dir.path().join(name);
        common::make_clip(&path, 20, seconds, true);
        std::fs::read(path).unwrap()
    };
    let short = clip("short.mp4", 2);
    let long = clip("long.mp4", 5);

    let project = project_with_model();
    let server = Server::ready(&project, &["serve.max_video_s=4"]);
    let address = server.address.as_str();
    // The server issues progress ids; one it did not issue is refused.
    let issued = request(address, "POST", "/progress", &[], b"").unwrap();
    assert_eq!(issued.status, 201, "{}", issued.text());
    let id = issued.json()["id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 32, "128 random bits: {id}");
    let other = request(address, "POST", "/progress", &[], b"")
        .unwrap()
        .json();
    assert_ne!(other["id"].as_str().unwrap(), id);
    let chosen = request(
        address,
        "POST",
        "/predict/video",
        &[("Content-Type", &form_type()), ("X-Progress-Id", "clip-1")],
        &form("file", "short.mp4", "video/mp4", &short),
    )
    .unwrap();
    assert_eq!(chosen.status, 400, "{}", chosen.text());
    assert_eq!(get(address, "/progress/clip-1").status, 404);
    // A video refused after its id was claimed still finishes that id (an
    // id left unfinished could never be evicted from the table).
    let other_id = other["id"].as_str().unwrap();
    let refused = request(
        address,
        "POST",
        "/predict/video",
        &[("Content-Type", "image/png"), ("X-Progress-Id", other_id)],
        b"not a video",
    )
    .unwrap();
    assert_eq!(refused.status, 415, "{}", refused.text());
    assert_eq!(
        get(address, &format!("/progress/{other_id}")).json()["finished"],
        true
    );
    let reply = request(
        address,
        "POST",
        "/predict/video",
        &[("Content-Type", &form_type()), ("X-Progress-Id", &id)],
        &form("file", "short.mp4", "video/mp4", &short),
    )
    .unwrap();
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.header("content-type"), Some("video/mp4"));
    let summary: serde_json::Value =
        serde_json::from_str(reply.header("x-roadsign-summary").unwrap()).unwrap();
    assert_eq!(summary["frames"], 40);
    let progress = get(address, &format!("/progress/{id}")).json();
    assert_eq!(
        progress,
        serde_json::json!({"done": 40, "total": 40, "finished": true})
    );

    let out = dir.path().join("annotated.mp4");
    std::fs::write(&out, &reply.body).unwrap();
    let probe = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_frames",
            "-of",
            "json",
            "-show_streams",
            "-show_format",
        ])
        .arg(&out)
        .output()
        .unwrap();
    let probe: serde_json::Value = serde_json::from_slice(&probe.stdout).unwrap();
    let streams = probe["streams"].as_array().unwrap();
    let video = streams.iter().find(|s| s["codec_type"] == "video").unwrap();
    assert_eq!(video["codec_name"], "h264");
    assert_eq!(video["pix_fmt"], "yuv420p");
    assert_eq!(video["nb_read_frames"], "40");
    assert!(
        streams.iter().any(|s| s["codec_type"] == "audio"),
        "the sound is kept"
    );
    let duration: f64 = probe["format"]["duration"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((duration - 2.0).abs() < 0.15, "duration {duration}");
    // faststart: the index (moov) comes before the media data (mdat).
    let find = |tag: &[u8]| reply.body.windows(4).position(|w| w == tag).unwrap();
    assert!(find(b"moov") < find(b"mdat"));

    let too_long = post_file(address, "/predict/video", "video/mp4", &long);
    assert_eq!(too_long.status, 413, "{}", too_long.text());
    assert_healthy(address);
}

/// `roadsign stress` loads the server and reports; a route that fails makes
/// it fail.
#[test]
fn stress_reports_latencies_and_fails_on_errors() {
    let project = project_with_model();
    let server = Server::ready(&project, &[]);
    let url = format!("http://{}", server.address);
    let out = project.roadsign(&[
        "stress",
        "--url",
        &url,
        "--requests",
        "6",
        "--workers",
        "2",
        "--format",
        "json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["requests"], 6);
    assert_eq!(report["statuses"], serde_json::json!({"200": 6}));
    assert_eq!(report["failed"], 0);
    let (p50, p95, p99) = (
        report["p50_ms"].as_f64().unwrap(),
        report["p95_ms"].as_f64().unwrap(),
        report["p99_ms"].as_f64().unwrap(),
    );
    assert!(0.0 < p50 && p50 <= p95 && p95 <= p99, "{report}");
    assert!(report["requests_per_s"].as_f64().unwrap() > 0.0);

    let text = project.roadsign(&[
        "stress",
        "--url",
        &format!("{url}/nothing"),
        "--requests",
        "3",
        "--workers",
        "3",
    ]);
    assert_eq!(text.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&text.stdout);
    assert!(stdout.contains("status      404: 3"), "{stdout}");
    assert!(String::from_utf8_lossy(&text.stderr).contains("3 of 3 requests failed"));
    // A command that cannot be carried out as typed ran nothing: exit 2.
    for bad in [
        vec!["stress", "--url", "https://127.0.0.1:1"],
        vec!["stress", "--url", &url, "--file", "/nonexistent/image.jpg"],
    ] {
        let out = project.roadsign(&bad);
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
    }
}

/// `roadsign predict` on a video writes the annotated copy beside it, with
/// every frame (no duration limit applies on the command line).
#[test]
fn predict_writes_an_annotated_copy_of_a_video() {
    let project = project_with_model();
    let clip = project.file("clip.mp4");
    common::make_clip(&clip, 10, 1, false);
    let out = project.ok(&["predict", clip.to_str().unwrap(), "--format", "json"]);
    let summary: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(summary["frames"], 10, "{summary}");
    let annotated = project.file("clip.annotated.mp4");
    assert_eq!(summary["annotated"], annotated.to_str().unwrap());
    assert!(annotated.metadata().unwrap().len() > 1000);
}

/// HTTP manners: HEAD wherever GET is, `Allow` on every 405, `nosniff` on
/// every answer, a CSP without framing on the GUI, error bodies without
/// server paths or tool output, and input the server cannot draw answered 4xx.
#[test]
fn http_manners() {
    let project = project_with_model();
    let server = Server::ready(&project, &[]);
    let address = server.address.as_str();
    for path in [
        "/",
        "/health",
        "/ready",
        "/metrics",
        "/v2",
        "/v2/health/live",
    ] {
        let get_reply = get(address, path);
        let head = request(address, "HEAD", path, &[], b"").unwrap();
        assert_eq!(head.status, 200, "HEAD {path}");
        assert!(head.body.is_empty(), "HEAD {path} has no body");
        assert_eq!(
            head.header("content-type"),
            get_reply.header("content-type"),
            "{path}"
        );
        assert_eq!(
            get_reply.header("x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
    }
    for (method, path, allow) in [
        ("GET", "/predict", "POST"),
        ("DELETE", "/", "GET, HEAD"),
        ("POST", "/health", "GET, HEAD"),
        ("GET", "/progress", "POST"),
        ("POST", "/progress/some-id", "GET, HEAD"),
        ("PUT", "/v2/models/yolov8/infer", "POST"),
        ("POST", "/v2/health/ready", "GET, HEAD"),
    ] {
        let reply = request(address, method, path, &[], b"").unwrap();
        assert_eq!(reply.status, 405, "{method} {path}");
        assert_eq!(reply.header("allow"), Some(allow), "{method} {path}");
        assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
    }
    let gui = get(address, "/");
    let policy = gui.header("content-security-policy").unwrap();
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
    assert!(
        policy.contains("script-src 'sha256-") && !policy.contains("unsafe-inline"),
        "{policy}"
    );
    assert_eq!(gui.header("x-frame-options"), Some("DENY"));

    // A video ffmpeg cannot read: said so, without the upload's temporary
    // path or ffprobe's own words.
    let reply = post_file(
        address,
        "/predict/video",
        "video/mp4",
        b"not a video at all",
    );
    assert_eq!(reply.status, 400);
    let error = reply.json()["error"].as_str().unwrap().to_string();
    assert_eq!(error, "the upload is not a video ffmpeg can read");
    // 70000x1 pixels decode, but no JPEG can hold them: the input's fault.
    let mut png = Vec::new();
    RgbImage::new(70_000, 1)
        .write_to(&mut std::io::Cursor::new(&mut png), ImageFormat::Png)
        .unwrap();
    let reply = post_file(address, "/predict/image", "image/png", &png);
    assert_eq!(reply.status, 413, "{}", reply.text());
    assert!(reply.json()["error"].as_str().unwrap().contains("JPEG"));
    assert_healthy(address);
}

/// The server's ffmpeg children, now.
fn ffmpeg_children(server: &Server) -> usize {
    let out = std::process::Command::new("pgrep")
        .args(["-P", &server.child.id().to_string(), "ffmpeg"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).lines().count()
}

/// Waits until the server has no ffmpeg child left, at most `seconds`.
fn no_ffmpeg_left(server: &Server, seconds: u64) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(seconds);
    while std::time::Instant::now() < deadline {
        if ffmpeg_children(server) == 0 {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// Video work is bounded by what is decoded, not by what the file claims:
/// a clip declaring 1000 fps is cut at `max_video_s` × `max_video_fps`
/// frames; sound longer than the pictures ends with them; a job past its
/// deadline is cancelled (504, its ffmpeg children killed), and so is one
/// whose client left.
#[test]
fn video_jobs_are_bounded_and_cancelled() {
    let dir = tempfile::tempdir().unwrap();
    let fast = dir.path().join("fast.mp4");
    common::make_clip(&fast, 1000, 1, false);
    let long_sound = dir.path().join("long-sound.mp4");
    let made = std::process::Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=160x120:rate=10:duration=1",
        ])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:duration=8"])
        .args(["-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac"])
        .arg(&long_sound)
        .status()
        .unwrap();
    assert!(made.success());
    let slow = dir.path().join("slow.mp4");
    common::make_clip(&slow, 25, 8, false);

    let project = project_with_model();
    let post = |address: &str, path: &std::path::Path| {
        let started = std::time::Instant::now();
        let reply = request(
            address,
            "POST",
            "/predict/video",
            &[("Content-Type", &form_type())],
            &form(
                "file",
                "clip.mp4",
                "video/mp4",
                &std::fs::read(path).unwrap(),
            ),
        )
        .unwrap();
        (reply, started.elapsed())
    };
    let server = Server::ready(&project, &["serve.max_video_s=2", "serve.max_video_fps=10"]);
    // 1000 frames declared as one second: over 2 s × 10 frames, refused
    // once 21 are decoded, not after all of them.
    let (reply, _) = post(&server.address, &fast);
    assert_eq!(reply.status, 413, "{}", reply.text());
    assert!(reply.json()["error"]
        .as_str()
        .unwrap()
        .contains("limit of 2 s"));
    // One second of pictures and eight of sound: one second back.
    let (reply, _) = post(&server.address, &long_sound);
    assert_eq!(reply.status, 200, "{}", reply.text());
    let out = dir.path().join("back.mp4");
    std::fs::write(&out, &reply.body).unwrap();
    let probe = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "csv=p=0",
        ])
        .arg(&out)
        .output()
        .unwrap();
    let seconds: f64 = String::from_utf8_lossy(&probe.stdout)
        .trim()
        .parse()
        .unwrap();
    assert!(
        seconds < 1.6,
        "the sound was cut with the pictures: {seconds} s"
    );
    // 200 frames do not fit in a second: 504 at the deadline, children killed.
    let server = Server::ready(&project, &["serve.video_timeout_s=1"]);
    let (reply, took) = post(&server.address, &slow);
    assert_eq!(reply.status, 504, "{}", reply.text());
    assert!(
        took < Duration::from_secs(4),
        "answered at the deadline: {took:?}"
    );
    assert!(
        no_ffmpeg_left(&server, 5),
        "ffmpeg children left after the deadline"
    );
    // A client that leaves: its job is cancelled too.
    let server = Server::ready(&project, &["serve.video_timeout_s=60"]);
    let body = form(
        "file",
        "clip.mp4",
        "video/mp4",
        &std::fs::read(&slow).unwrap(),
    );
    {
        use std::io::Write;
        let mut stream = std::net::TcpStream::connect(&server.address).unwrap();
        write!(
            stream,
            "POST /predict/video HTTP/1.1\r\nHost: x\r\nContent-Type: {}\r\nContent-Length: {}\r\n\r\n",
            form_type(),
            body.len()
        )
        .unwrap();
        stream.write_all(&body).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while ffmpeg_children(&server) == 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(ffmpeg_children(&server) > 0, "the job started");
    } // the client leaves here
    assert!(
        no_ffmpeg_left(&server, 5),
        "ffmpeg children left after the client left"
    );
    assert_healthy(&server.address);
    // Nothing is in flight but this request.
    let metrics = get(&server.address, "/metrics").text();
    assert!(
        metrics.contains("roadsign_http_requests_in_flight 1\n"),
        "{metrics}"
    );
}

/// SIGTERM while a video is being processed: the drain ends at `drain_s`,
/// the job is stopped, the process exits 0 well inside the Deployment's
/// grace period, and neither an ffmpeg process nor a temporary file of the
/// server is left.
#[test]
fn sigterm_stops_video_jobs_and_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let slow = dir.path().join("slow.mp4");
    common::make_clip(&slow, 25, 8, false);
    let tmp = tempfile::tempdir().unwrap();
    let project = project_with_model();
    let mut server =
        Server::start_with_env(&project, &["serve.drain_s=1"], &[("TMPDIR", tmp.path())]);
    server.wait_ready();
    let address = server.address.clone();
    let body = form(
        "file",
        "clip.mp4",
        "video/mp4",
        &std::fs::read(&slow).unwrap(),
    );
    let upload = std::thread::spawn(move || {
        request(
            &address,
            "POST",
            "/predict/video",
            &[("Content-Type", &form_type())],
            &body,
        )
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while ffmpeg_children(&server) == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(ffmpeg_children(&server) > 0, "the job started");
    let started = std::time::Instant::now();
    server.terminate();
    let status = server.wait_exit(10);
    assert!(status.success(), "{status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "exited {:?} after SIGTERM (grace period 30 s, drain 1 s)",
        started.elapsed()
    );
    // The client got an answer or a closed connection, never a hang.
    let _ = upload.join().unwrap();
    let leftover = std::process::Command::new("pgrep")
        .args(["-f", &tmp.path().display().to_string()])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&leftover.stdout).trim().is_empty(),
        "processes still use the server's temporary folder"
    );
    let files: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert!(files.is_empty(), "temporary files left: {files:?}");
}

/// Sends a request head declaring `length` bytes, then trickles the body at
/// about 1 KiB/s until the server answers; returns the status line.
fn trickle(address: &str, path: &str, content_type: &str, length: usize) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\nContent-Length: {length}\r\n\r\n"
    )
    .unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut answer = Vec::new();
    while std::time::Instant::now() < deadline {
        let _ = stream.write_all(&[0u8; 200]);
        let mut chunk = [0u8; 4096];
        if let Ok(n) = stream.read(&mut chunk) {
            answer.extend_from_slice(&chunk[..n]);
            if n == 0 || answer.windows(2).any(|w| w == b"\r\n") {
                break;
            }
        }
    }
    String::from_utf8_lossy(&answer)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// Admission: the declared type is checked from the headers before any
/// body is read; slow senders are cut with 408 and cannot starve others;
/// videos have a pool of their own (one per worker) that images never wait on.
#[test]
fn uploads_are_admitted_fairly() {
    let project = project_with_model();
    let server = Server::ready(
        &project,
        &[
            "serve.workers=1",
            "serve.queue=1",
            "serve.min_upload_kib_s=16",
        ],
    );
    let address = server.address.clone();
    // A declared type the route cannot take: 415 before the (huge) body.
    let reply = request(
        &address,
        "POST",
        "/predict",
        &[("Content-Type", "text/plain")],
        b"",
    )
    .unwrap();
    assert_eq!(reply.status, 415, "{}", reply.text());
    // Two slow senders take both image places; both are cut with 408 ...
    let slow: Vec<_> = (0..2)
        .map(|_| {
            let address = address.clone();
            std::thread::spawn(move || trickle(&address, "/predict", "image/jpeg", 1 << 20))
        })
        .collect();
    let started = std::time::Instant::now();
    for sender in slow {
        let status = sender.join().unwrap();
        assert!(status.contains(" 408 "), "{status}");
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    // ... and a real upload then gets through.
    let (scene, _) = nodes::synth::sample_scene(320, 320, 1, &["stop"], 3);
    let jpeg = encode(&scene, ImageFormat::Jpeg);
    let ok = post_file(&address, "/predict", "image/jpeg", &jpeg);
    assert_eq!(ok.status, 200, "{}", ok.text());

    // One worker, one video at a time: a second video gets 503 at once, an
    // image still gets through meanwhile.
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("clip.mp4");
    common::make_clip(&clip, 25, 3, false);
    let bytes = std::fs::read(&clip).unwrap();
    let first = {
        let (address, bytes) = (address.clone(), bytes.clone());
        std::thread::spawn(move || post_file(&address, "/predict/video", "video/mp4", &bytes))
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while ffmpeg_children(&server) == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let second = post_file(&address, "/predict/video", "video/mp4", &bytes);
    assert_eq!(second.status, 503, "{}", second.text());
    assert!(second.json()["error"].as_str().unwrap().contains("video"));
    // The image waits for the worker in the queue, not for a video place.
    let image = post_file(&address, "/predict", "image/jpeg", &jpeg);
    assert_eq!(image.status, 200, "{}", image.text());
    assert_eq!(first.join().unwrap().status, 200);
}

fn declared_length(reply: &http::Reply) -> usize {
    reply
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .expect("the answer declares its length")
}

/// Uploads and answers stream: a video is on disk as it arrives (never
/// whole in memory) and its annotated copy is read from disk as the client
/// takes it, with its length declared; the files go with the request. A
/// client that stops reading its answer is cut after serve.write_timeout_s.
#[test]
fn uploads_and_answers_stream_and_stalled_readers_are_cut() {
    use std::io::Write;
    let tmp = tempfile::tempdir().unwrap();
    let project = project_with_model();
    let server = Server::start_with_env(
        &project,
        &["serve.write_timeout_s=1"],
        &[("TMPDIR", tmp.path())],
    );
    server.wait_ready();
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("clip.mp4");
    common::make_clip(&clip, 25, 2, false);
    let video = std::fs::read(&clip).unwrap();
    let half = video.len() / 2;
    let mut stream = std::net::TcpStream::connect(&server.address).unwrap();
    write!(
        stream,
        "POST /predict/video HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: video/mp4\r\nContent-Length: {}\r\n\r\n",
        video.len()
    )
    .unwrap();
    stream.write_all(&video[..half]).unwrap();
    let saved_so_far = || -> Option<u64> {
        let folder = std::fs::read_dir(tmp.path()).ok()?.next()?.ok()?.path();
        Some(std::fs::metadata(folder.join("upload")).ok()?.len())
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while saved_so_far() != Some(half as u64) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        saved_so_far(),
        Some(half as u64),
        "the first half is on disk"
    );
    stream.write_all(&video[half..]).unwrap();
    let reply = http::read_reply(&mut stream).unwrap();
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(declared_length(&reply), reply.body.len());
    assert_eq!(&reply.body[4..8], b"ftyp", "an MP4 comes back");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while std::fs::read_dir(tmp.path()).unwrap().count() > 0 && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert!(left.is_empty(), "files left after the answer: {left:?}");

    // An annotated noise image is ~7 MB of JPEG: more than the server's
    // send buffer (4 MiB at most here) and the client's (4 KiB) hold.
    let noise = RgbImage::from_fn(2000, 2000, |x, y| {
        let h =
            (x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503)).wrapping_mul(2_246_822_519);
        image::Rgb([(h >> 8) as u8, (h >> 16) as u8, (h >> 24) as u8])
    });
    let jpeg = encode(&noise, ImageFormat::Jpeg);
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let address: std::net::SocketAddr = server.address.parse().unwrap();
    socket.connect(&address.into()).unwrap();
    let mut stream: std::net::TcpStream = socket.into();
    write!(
        stream,
        "POST /predict/image HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
        jpeg.len()
    )
    .unwrap();
    stream.write_all(&jpeg).unwrap();
    // Once the answer starts (the detector may take seconds in a debug
    // build), reads nothing for well over the write timeout.
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    stream.peek(&mut [0u8; 1]).unwrap();
    std::thread::sleep(Duration::from_secs(4));
    let reply = http::read_reply(&mut stream).unwrap();
    assert_eq!(reply.status, 200);
    let declared = declared_length(&reply);
    assert!(
        reply.body.len() < declared,
        "the stalled reader was cut: {} of {declared} bytes",
        reply.body.len()
    );
    assert_healthy(&server.address);
}
