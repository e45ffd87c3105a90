//! `roadsign stress`: N requests over W concurrent clients, each on its own
//! keep-alive HTTP/1.1 connection, posting the image as multipart `file`
//! (or, with `--protocol v2`, as an Open Inference Protocol request of
//! `--batch` images); prints status counts, mean, p50, p95, p99 latency,
//! requests/s and images/s, and fails if any request failed.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, Uri};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::net::TcpStream;

use crate::cli::{PlanFormat, Protocol, StressArgs};
use crate::UsageError;

const BOUNDARY: &str = "roadsign-stress-boundary-7MA4YWxkTrZu0gW";

/// The URL to load: a bare server URL means `default_path`.
fn target(url: &str, default_path: &str) -> Result<(String, Uri)> {
    let uri: Uri = url
        .parse()
        .map_err(|e| UsageError(format!("not a URL: {url}: {e}")))?;
    if uri.scheme_str() != Some("http") {
        return Err(UsageError(format!("only http:// URLs are supported, not {url}")).into());
    }
    let authority = uri
        .authority()
        .ok_or_else(|| UsageError(format!("no host in {url}")))?
        .to_string();
    let authority = if authority.contains(':') {
        authority
    } else {
        format!("{authority}:80")
    };
    let path = match uri.path_and_query().map(|p| p.as_str()) {
        None | Some("") | Some("/") => default_path.to_string(),
        Some(p) => p.to_string(),
    };
    Ok((
        authority.clone(),
        format!("http://{authority}{path}").parse()?,
    ))
}

fn multipart(image: &[u8], file_name: &str, content_type: &str) -> Vec<u8> {
    let mut body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\nContent-Type: {content_type}\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(image);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    body
}

/// The image to post: the given file, or a generated 640x640 scene with 3 signs.
fn payload(args: &StressArgs) -> Result<(Vec<u8>, String, String)> {
    match &args.file {
        Some(path) => {
            let bytes = std::fs::read(path)
                .map_err(|e| UsageError(format!("cannot read {}: {e}", path.display())))?;
            let kind = match image::guess_format(&bytes) {
                Ok(image::ImageFormat::Png) => "image/png",
                Ok(image::ImageFormat::WebP) => "image/webp",
                Ok(image::ImageFormat::Jpeg) => "image/jpeg",
                _ => "application/octet-stream",
            };
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("upload");
            Ok((bytes, name.to_string(), kind.to_string()))
        }
        None => {
            let (image, _) = nodes::synth::sample_scene(640, 640, 3, &[], 7);
            let jpeg = nodes::predict::annotate::encode_jpeg(&image, 90)?;
            Ok((jpeg, "scene.jpg".into(), "image/jpeg".into()))
        }
    }
}

/// An Open Inference Protocol request of `batch` copies of the image: one
/// BYTES tensor with the binary data extension, every output as binary data.
/// Returns the body and its JSON header's length.
fn v2_request(image: &[u8], batch: usize) -> (Vec<u8>, usize) {
    let mut data = Vec::with_capacity((image.len() + 4) * batch);
    for _ in 0..batch {
        data.extend((image.len() as u32).to_le_bytes());
        data.extend(image);
    }
    let header = serde_json::json!({
        "inputs": [{"name": "image", "shape": [batch], "datatype": "BYTES",
                    "parameters": {"binary_data_size": data.len()}}],
        "parameters": {"binary_data_output": true},
    })
    .to_string();
    let length = header.len();
    let mut body = header.into_bytes();
    body.extend(data);
    (body, length)
}

/// One request's outcome: its status (or the transport error) and latency.
type Outcome = (Result<u16, String>, Duration);

/// What every request of a run sends: its body and headers.
#[derive(Clone)]
struct Payload {
    body: Bytes,
    headers: Vec<(&'static str, String)>,
}

async fn client(
    authority: String,
    uri: Uri,
    payload: Payload,
    remaining: Arc<AtomicUsize>,
) -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    let mut sender = None;
    while remaining
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        let started = Instant::now();
        let result = async {
            // Servers without keep-alive (Flask's, gunicorn's sync workers)
            // close the connection after each answer: reconnect, once.
            for attempt in 0..2 {
                if sender
                    .as_ref()
                    .is_none_or(|s: &SendRequest<Full<Bytes>>| s.is_closed())
                {
                    let stream = TcpStream::connect(&authority)
                        .await
                        .map_err(|e| format!("connect: {e}"))?;
                    let (s, connection) =
                        hyper::client::conn::http1::handshake(TokioIo::new(stream))
                            .await
                            .map_err(|e| format!("handshake: {e}"))?;
                    tokio::spawn(connection);
                    sender = Some(s);
                }
                let s = sender.as_mut().expect("connected above");
                match s.ready().await {
                    Ok(()) => break,
                    Err(e) if attempt == 1 => return Err(format!("connection: {e}")),
                    Err(_) => sender = None,
                }
            }
            let s = sender.as_mut().expect("connected above");
            let mut request = Request::post(uri.clone()).header("host", authority.as_str());
            for (name, value) in &payload.headers {
                request = request.header(*name, value.as_str());
            }
            let request = request
                .body(Full::new(payload.body.clone()))
                .map_err(|e| e.to_string())?;
            let response = s.send_request(request).await.map_err(|e| e.to_string())?;
            let status = response.status().as_u16();
            response
                .into_body()
                .collect()
                .await
                .map_err(|e| format!("body: {e}"))?;
            Ok::<u16, String>(status)
        }
        .await;
        if result.is_err() {
            sender = None; // reconnect for the next request
        }
        outcomes.push((result, started.elapsed()));
    }
    outcomes
}

#[derive(Debug, Serialize, PartialEq)]
pub struct Report {
    pub url: String,
    pub requests: usize,
    pub workers: usize,
    /// Responses by status code, and transport errors as "error".
    pub statuses: BTreeMap<String, usize>,
    pub failed: usize,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub requests_per_s: f64,
    /// Images per request (a v2 batch), and images answered per second.
    pub batch: usize,
    pub images_per_s: f64,
    pub wall_s: f64,
}

/// The nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn report(
    url: String,
    workers: usize,
    batch: usize,
    outcomes: &[Outcome],
    wall: Duration,
) -> Report {
    let mut statuses = BTreeMap::new();
    let mut failed = 0;
    for (result, _) in outcomes {
        let key = match result {
            Ok(status) => {
                if !(200..300).contains(status) {
                    failed += 1;
                }
                status.to_string()
            }
            Err(_) => {
                failed += 1;
                "error".to_string()
            }
        };
        *statuses.entry(key).or_insert(0) += 1;
    }
    let mut ms: Vec<f64> = outcomes
        .iter()
        .map(|(_, d)| d.as_secs_f64() * 1000.0)
        .collect();
    ms.sort_by(f64::total_cmp);
    let mean = if ms.is_empty() {
        0.0
    } else {
        ms.iter().sum::<f64>() / ms.len() as f64
    };
    Report {
        url,
        requests: outcomes.len(),
        workers,
        statuses,
        failed,
        mean_ms: mean,
        p50_ms: percentile(&ms, 50.0),
        p95_ms: percentile(&ms, 95.0),
        p99_ms: percentile(&ms, 99.0),
        requests_per_s: outcomes.len() as f64 / wall.as_secs_f64().max(1e-9),
        batch,
        images_per_s: (outcomes.len() * batch) as f64 / wall.as_secs_f64().max(1e-9),
        wall_s: wall.as_secs_f64(),
    }
}

pub fn stress_command(args: &StressArgs) -> Result<()> {
    if args.requests == 0 || args.workers == 0 || args.batch == 0 {
        return Err(
            runner::Error::invalid("--requests, --workers and --batch must be at least 1").into(),
        );
    }
    if args.batch > 1 && args.protocol != Protocol::V2 {
        return Err(runner::Error::invalid("--batch needs --protocol v2").into());
    }
    let default_path = match args.protocol {
        Protocol::Predict => "/predict".to_string(),
        Protocol::V2 => format!(
            "/v2/models/{}/infer",
            args.model.as_deref().unwrap_or_default()
        ),
    };
    let (authority, uri) = target(&args.url, &default_path)?;
    let (image, name, kind) = payload(args)?;
    if let Some(path) = &args.save_file {
        std::fs::write(path, &image).with_context(|| format!("cannot write {}", path.display()))?;
    }
    let payload = match args.protocol {
        Protocol::Predict => Payload {
            body: Bytes::from(multipart(&image, &name, &kind)),
            headers: vec![(
                "content-type",
                format!("multipart/form-data; boundary={BOUNDARY}"),
            )],
        },
        Protocol::V2 => {
            let (body, length) = v2_request(&image, args.batch);
            Payload {
                body: Bytes::from(body),
                headers: vec![
                    ("content-type", "application/octet-stream".to_string()),
                    ("inference-header-content-length", length.to_string()),
                ],
            }
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let remaining = Arc::new(AtomicUsize::new(args.requests));
    let started = Instant::now();
    let outcomes: Vec<Outcome> = runtime.block_on(async {
        let tasks: Vec<_> = (0..args.workers)
            .map(|_| {
                tokio::spawn(client(
                    authority.clone(),
                    uri.clone(),
                    payload.clone(),
                    Arc::clone(&remaining),
                ))
            })
            .collect();
        let mut all = Vec::new();
        for task in tasks {
            all.extend(task.await.unwrap_or_default());
        }
        all
    });
    let report = report(
        uri.to_string(),
        args.workers,
        args.batch,
        &outcomes,
        started.elapsed(),
    );
    match args.format {
        PlanFormat::Json => println!("{}", serde_json::to_string(&report)?),
        PlanFormat::Text => {
            println!(
                "{} requests to {} over {} workers in {:.2} s",
                report.requests, report.url, report.workers, report.wall_s
            );
            let statuses: Vec<String> = report
                .statuses
                .iter()
                .map(|(s, n)| format!("{s}: {n}"))
                .collect();
            println!("status      {}", statuses.join(", "));
            println!(
                "latency ms  mean {:.1}  p50 {:.1}  p95 {:.1}  p99 {:.1}",
                report.mean_ms, report.p50_ms, report.p95_ms, report.p99_ms
            );
            println!(
                "throughput  {:.2} requests/s, {:.2} images/s",
                report.requests_per_s, report.images_per_s
            );
        }
    }
    if let Some(error) = outcomes.iter().find_map(|(r, _)| r.as_ref().err()) {
        eprintln!("first transport error: {error}");
    }
    if report.failed > 0 {
        bail!("{} of {} requests failed", report.failed, report.requests);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_default_to_predict() {
        let (authority, uri) = target("http://127.0.0.1:5000", "/predict").unwrap();
        assert_eq!(authority, "127.0.0.1:5000");
        assert_eq!(uri.to_string(), "http://127.0.0.1:5000/predict");
        let (authority, uri) = target("http://localhost/predict/image", "/predict").unwrap();
        assert_eq!(authority, "localhost:80");
        assert_eq!(uri.path(), "/predict/image");
        let (_, uri) = target("http://127.0.0.1:5000/", "/v2/models/m/infer").unwrap();
        assert_eq!(uri.path(), "/v2/models/m/infer");
        for bad in ["https://x", "not a url"] {
            let err = target(bad, "/").unwrap_err();
            assert_eq!(crate::commands::exit_code(&err), 2, "{err}");
        }
    }

    #[test]
    fn v2_requests_carry_the_batch_as_binary_bytes() {
        let (body, length) = v2_request(b"IMG", 2);
        let header: serde_json::Value = serde_json::from_slice(&body[..length]).unwrap();
        assert_eq!(header["inputs"][0]["shape"], serde_json::json!([2]));
        assert_eq!(header["inputs"][0]["parameters"]["binary_data_size"], 14);
        assert_eq!(&body[length..], b"\x03\0\0\0IMG\x03\0\0\0IMG");
    }

    #[test]
    fn percentiles_and_counts() {
        let outcomes: Vec<Outcome> = (1..=100)
            .map(|i| {
                let status = if i == 100 {
                    Err("reset".into())
                } else {
                    Ok(if i % 10 == 0 { 503 } else { 200 })
                };
                (status, Duration::from_millis(i))
            })
            .collect();
        let r = report("u".into(), 4, 3, &outcomes, Duration::from_secs(2));
        assert_eq!(r.statuses["200"], 90);
        assert_eq!(r.statuses["503"], 9);
        assert_eq!(r.statuses["error"], 1);
        assert_eq!(r.failed, 10);
        assert_eq!((r.p50_ms, r.p95_ms, r.p99_ms), (50.0, 95.0, 99.0));
        assert!((r.mean_ms - 50.5).abs() < 1e-9);
        assert!((r.requests_per_s - 50.0).abs() < 1e-9);
        assert!((r.images_per_s - 150.0).abs() < 1e-9);
    }

    #[test]
    fn the_form_carries_the_file() {
        let body = multipart(b"IMAGE", "a.jpg", "image/jpeg");
        let text = String::from_utf8(body).unwrap();
        assert!(text.contains("name=\"file\"; filename=\"a.jpg\""));
        assert!(text.contains("\r\n\r\nIMAGE\r\n"));
        assert!(text.ends_with(&format!("--{BOUNDARY}--\r\n")));
    }
}
