//! The one table of routes, and each request sent to its handler.

use std::convert::Infallible;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use hyper::body::Incoming;
use hyper::header::CACHE_CONTROL;
use hyper::{Method, Request, Response, StatusCode};

use super::state::AppState;
use super::upload::ApiError;
use super::{json, predict, respond, v2, v2_request, video, Body};

const GUI: &str = include_str!("gui.html");

/// The GUI's Content-Security-Policy: its own inline script and style only
/// (by their SHA-256), fetches to this server, images and videos it made
/// into blobs, and no framing (clickjacking).
fn gui_policy() -> &'static str {
    static POLICY: OnceLock<String> = OnceLock::new();
    POLICY.get_or_init(|| {
        use base64::Engine as _;
        use sha2::Digest as _;
        let hash = |open: &str, close: &str| {
            let body = GUI
                .split_once(open)
                .and_then(|(_, rest)| rest.split_once(close))
                .map_or("", |(body, _)| body);
            let digest = sha2::Sha256::digest(body.as_bytes());
            format!("'sha256-{}'", base64::engine::general_purpose::STANDARD.encode(digest))
        };
        format!(
            "default-src 'none'; script-src {}; style-src {}; img-src blob: data:; media-src blob:; \
             connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
            hash("<script>", "</script>"),
            hash("<style>", "</style>")
        )
    })
}

/// A route: its label (its path, or its pattern for routes with
/// parameters; the metric label too) and the methods it answers (its 405's
/// `Allow` header). GET routes answer HEAD too.
struct Route {
    label: &'static str,
    methods: &'static str,
}

const READ: &str = "GET, HEAD";

/// The one table of routes: labels, methods, and the 404's list. The v2
/// routes' labels come from [`v2::Route::label`]; anything else is "other".
const ROUTES: [Route; 15] = [
    Route {
        label: "/",
        methods: READ,
    },
    Route {
        label: "/predict",
        methods: "POST",
    },
    Route {
        label: "/predict/image",
        methods: "POST",
    },
    Route {
        label: "/predict/video",
        methods: "POST",
    },
    Route {
        label: "/health",
        methods: READ,
    },
    Route {
        label: "/ready",
        methods: READ,
    },
    Route {
        label: "/metrics",
        methods: READ,
    },
    Route {
        label: "/progress",
        methods: "POST",
    },
    Route {
        label: "/progress/{id}",
        methods: READ,
    },
    Route {
        label: "/v2",
        methods: READ,
    },
    Route {
        label: "/v2/health/live",
        methods: READ,
    },
    Route {
        label: "/v2/health/ready",
        methods: READ,
    },
    Route {
        label: "/v2/models",
        methods: READ,
    },
    Route {
        label: "/v2/models/ready",
        methods: READ,
    },
    Route {
        label: "/v2/models/infer",
        methods: "POST",
    },
];

/// The label of the route a path is on, "other" when none.
fn route_label(path: &str) -> &'static str {
    if path.starts_with("/progress/") {
        return "/progress/{id}";
    }
    if let Some(v2_route) = v2::route(path) {
        return v2_route.label();
    }
    ROUTES
        .iter()
        .find(|r| r.label == path)
        .map_or("other", |r| r.label)
}

pub(super) async fn handle(
    state: Arc<AppState>,
    request: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let started = Instant::now();
    let in_flight = state.metrics.start();
    let path = request.uri().path().to_string();
    let route = route_label(&path);
    let mut response = route_request(&state, route, &path, request)
        .await
        .unwrap_or_else(ApiError::into_response);
    // No response is to be read as another type than it says.
    response.headers_mut().insert(
        "x-content-type-options",
        hyper::header::HeaderValue::from_static("nosniff"),
    );
    drop(in_flight);
    state
        .metrics
        .record(route, response.status().as_u16(), started.elapsed());
    Ok(response)
}

async fn route_request(
    state: &Arc<AppState>,
    route: &'static str,
    path: &str,
    request: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let method = request.method().clone();
    // HEAD wherever GET is (hyper sends the headers, not the body).
    let read = method == Method::GET || method == Method::HEAD;
    match (route, read, &method) {
        ("/", true, _) => {
            let mut page = respond(StatusCode::OK, "text/html; charset=utf-8", GUI);
            let headers = page.headers_mut();
            headers.insert(
                CACHE_CONTROL,
                hyper::header::HeaderValue::from_static("no-cache"),
            );
            if let Ok(policy) = gui_policy().parse() {
                headers.insert("content-security-policy", policy);
            }
            headers.insert(
                "x-frame-options",
                hyper::header::HeaderValue::from_static("DENY"),
            );
            Ok(page)
        }
        ("/health", true, _) => Ok(json(StatusCode::OK, &serde_json::json!({"status": "ok"}))),
        ("/ready", true, _) => {
            if state.is_ready() {
                Ok(json(
                    StatusCode::OK,
                    &serde_json::json!({"status": "ready"}),
                ))
            } else {
                Err(state
                    .engine()
                    .err()
                    .unwrap_or_else(|| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "not ready")))
            }
        }
        ("/metrics", true, _) => Ok(respond(
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            state.metrics.render(state.is_ready()),
        )),
        ("/progress", _, &Method::POST) => Ok(json(
            StatusCode::CREATED,
            &serde_json::json!({"id": state.issue_progress_id()?}),
        )),
        ("/progress/{id}", true, _) => {
            let id = path.trim_start_matches("/progress/");
            match state.progress_of(id) {
                Some(p) => Ok(json(
                    StatusCode::OK,
                    &serde_json::to_value(p).unwrap_or_default(),
                )),
                None => Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    "no video followed with this id",
                )),
            }
        }
        ("/predict", _, &Method::POST) => predict(state, request, false).await,
        ("/predict/image", _, &Method::POST) => predict(state, request, true).await,
        ("/predict/video", _, &Method::POST) => video(state, request).await,
        (label, _, _) if label.starts_with("/v2") => v2_request(state, path, request).await,
        ("other", _, _) => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!(
                "no route {path} (the routes: {})",
                ROUTES.map(|r| r.label).join(", ")
            ),
        )),
        _ => Err(ApiError::method_not_allowed(
            method.as_str(),
            path,
            allowed_methods(route),
        )),
    }
}

/// The methods a route answers (its 405's `Allow` header).
pub(super) fn allowed_methods(label: &str) -> &'static str {
    ROUTES
        .iter()
        .find(|r| r.label == label)
        .map_or(READ, |r| r.methods)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_route_table_gives_labels_and_methods() {
        assert_eq!(route_label("/predict"), "/predict");
        assert_eq!(route_label("/progress/abc"), "/progress/{id}");
        assert_eq!(route_label("/v2/models/m/infer"), "/v2/models/infer");
        assert_eq!(route_label("/nothing"), "other");
        assert_eq!(allowed_methods("/progress"), "POST");
        assert_eq!(allowed_methods("/progress/{id}"), "GET, HEAD");
        assert_eq!(allowed_methods("/v2/models/infer"), "POST");
        for route in ROUTES {
            assert!(
                route.methods == READ || route.methods == "POST",
                "{}",
                route.label
            );
        }
    }
}
