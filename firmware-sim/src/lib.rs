//! camsim: the executable twin of an ESP32-CAM speaking camgate's device
//! protocol (`docs/device-protocol.md`).
//!
//! * [`frames`] draws a moving test pattern with a visible frame counter and
//!   encodes it as JPEG, stamping each frame with its capture time (a JPEG
//!   comment, see `camgate_protocols::jpeg::CaptureStamp`) so viewers can
//!   measure end-to-end latency.
//! * [`camera`] runs one camera: connect, wait for `ready`, send frames at
//!   the target rate, obey `control`, answer pings, send `stats`, reconnect
//!   with backoff like the firmware.
//! * [`http_cam`] serves the stock CameraWebServer firmware's HTTP side
//!   (`/stream` multipart MJPEG, `/capture`) for pulling.
//! * [`mint_key`] asks a camgate server for a camera key.
#![deny(missing_docs)]

pub mod camera;
pub mod frames;
pub mod http_cam;

use camgate_protocols::api::{Envelope, MintWsIngest, MintedWsIngest, ws_ingest_path};

/// Mints a camera key for `room` through the REST API.
pub async fn mint_key(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    app: &str,
    room: &str,
) -> Result<MintedWsIngest, String> {
    let resp = http
        .post(format!(
            "{}{}",
            base.trim_end_matches('/'),
            ws_ingest_path(app)
        ))
        .bearer_auth(token)
        .json(&MintWsIngest {
            room: room.to_owned(),
            identity: None,
        })
        .send()
        .await
        .map_err(|e| format!("mint request failed: {e}"))?;
    let status = resp.status();
    let body: Envelope<MintedWsIngest> = resp
        .json()
        .await
        .map_err(|e| format!("mint answer unreadable ({status}): {e}"))?;
    match (body.data, body.error) {
        (Some(d), _) => Ok(d),
        (None, Some(e)) => Err(format!("mint refused ({status}): {} {}", e.code, e.message)),
        (None, None) => Err(format!("mint refused ({status})")),
    }
}
