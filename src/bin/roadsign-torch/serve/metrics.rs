//! Prometheus text exposition: requests by route and status, a latency
//! histogram per route, requests in flight, readiness and resident memory.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(&'static str, u16), u64>>,
    latency: Mutex<BTreeMap<&'static str, Histogram>>,
    in_flight: AtomicI64,
}

/// Decrements the in-flight gauge when the request ends, however it ends.
pub struct InFlight<'a>(&'a Metrics);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Metrics {
    pub fn start(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight(self)
    }

    pub fn record(&self, route: &'static str, status: u16, elapsed: Duration) {
        *lock(&self.requests).entry((route, status)).or_default() += 1;
        let seconds = elapsed.as_secs_f64();
        let mut latency = lock(&self.latency);
        let h = latency.entry(route).or_default();
        for (count, bound) in h.counts.iter_mut().zip(BUCKETS) {
            if seconds <= bound {
                *count += 1;
            }
        }
        h.count += 1;
        h.sum += seconds;
    }

    pub fn render(&self, ready: bool) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP roadsign_http_requests_total HTTP requests answered, by route and status.\n",
        );
        out.push_str("# TYPE roadsign_http_requests_total counter\n");
        for ((route, status), n) in lock(&self.requests).iter() {
            let _ = writeln!(
                out,
                "roadsign_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        out.push_str(
            "# HELP roadsign_http_request_duration_seconds Time to answer a request, by route.\n",
        );
        out.push_str("# TYPE roadsign_http_request_duration_seconds histogram\n");
        for (route, h) in lock(&self.latency).iter() {
            for (count, bound) in h.counts.iter().zip(BUCKETS) {
                let _ = writeln!(
                    out,
                    "roadsign_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {count}"
                );
            }
            let _ = writeln!(
                out,
                "roadsign_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "roadsign_http_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "roadsign_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                h.count
            );
        }
        out.push_str("# HELP roadsign_http_requests_in_flight Requests being answered now.\n");
        out.push_str("# TYPE roadsign_http_requests_in_flight gauge\n");
        let _ = writeln!(
            out,
            "roadsign_http_requests_in_flight {}",
            self.in_flight.load(Ordering::SeqCst)
        );
        out.push_str("# HELP roadsign_ready Whether the model is loaded and warm.\n");
        out.push_str("# TYPE roadsign_ready gauge\n");
        let _ = writeln!(out, "roadsign_ready {}", u8::from(ready));
        if let Some(bytes) = resident_memory() {
            out.push_str("# HELP process_resident_memory_bytes Resident memory size in bytes.\n");
            out.push_str("# TYPE process_resident_memory_bytes gauge\n");
            let _ = writeln!(out, "process_resident_memory_bytes {bytes}");
        }
        out
    }
}

/// VmRSS of this process (Linux).
fn resident_memory() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_buckets_add_up() {
        let m = Metrics::default();
        {
            let _a = m.start();
            assert!(m
                .render(false)
                .contains("roadsign_http_requests_in_flight 1"));
        }
        m.record("/predict", 200, Duration::from_millis(30));
        m.record("/predict", 200, Duration::from_millis(3));
        m.record("/predict", 415, Duration::from_millis(1));
        let text = m.render(true);
        assert!(text.contains("roadsign_http_requests_total{route=\"/predict\",status=\"200\"} 2"));
        assert!(text.contains("roadsign_http_requests_total{route=\"/predict\",status=\"415\"} 1"));
        assert!(text.contains(
            "roadsign_http_request_duration_seconds_bucket{route=\"/predict\",le=\"0.005\"} 2"
        ));
        assert!(text.contains(
            "roadsign_http_request_duration_seconds_bucket{route=\"/predict\",le=\"0.05\"} 3"
        ));
        assert!(text.contains("roadsign_http_request_duration_seconds_count{route=\"/predict\"} 3"));
        assert!(text.contains("roadsign_http_requests_in_flight 0"));
        assert!(text.contains("roadsign_ready 1"));
        assert!(text.contains("process_resident_memory_bytes "));
    }
}
