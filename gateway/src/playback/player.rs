//! The player pages: `/play/{app}/{room}` and `/embed/{app}/{room}`.
//!
//! One static page, no external assets; the script reads app and room from
//! its own path, asks the public live-info route whether the stream is live,
//! plays it over WHEP in a `<video>`, and falls back to the MJPEG `<img>` for
//! JPEG cameras when WebRTC fails. It retries while the stream is offline and
//! reconnects when the connection drops. `?mode=mjpeg|webrtc` forces one
//! path; `?token=` carries a join token for private apps.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

const PAGE: &str = include_str!("player.html");

/// Serves the player page (the same page for play and embed).
pub async fn page() -> Response {
    let mut resp = PAGE.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}
