//! Restream (seed 001 "Restream"): `POST/GET /api/v1/apps/{app}/streams/{id}/restream`,
//! `DELETE …/restream/{egressId}`. The forwarding itself is crate::restream.

use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::catalog::{Access, Routes};
use super::native::app_for;
use super::{ApiError, ApiJson, Auth, created, ok};
use crate::hub::RoomKey;
use crate::restream::{NewTarget, RtmpUrl, preset};
use crate::server::SharedState;

/// Routes under `/api/v1`.
pub fn routes() -> Routes {
    Routes::new()
        .op(
            Method::POST,
            "/apps/{app}/streams/{id}/restream",
            Access::App("broadcast:start"),
            "Start forwarding the stream to an RTMP destination",
            start,
        )
        .example(json!({ "platform": "youtube", "key": "xxxx-xxxx-xxxx-xxxx", "name": "YouTube" }))
        .returns(201)
        .op(
            Method::GET,
            "/apps/{app}/streams/{id}/restream",
            Access::App("broadcast:read"),
            "The stream's destinations (starting, active, retrying)",
            list,
        )
        .op(
            Method::DELETE,
            "/apps/{app}/streams/{id}/restream/{egressId}",
            Access::App("broadcast:stop"),
            "Stop one destination",
            stop,
        )
        .returns(204)
}

/// Body of `POST …/restream`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct StartBody {
    platform: Option<String>,
    url: Option<String>,
    key: Option<String>,
    name: Option<String>,
    layout: Option<String>,
}

fn bad(code: &'static str, m: impl Into<String>) -> ApiError {
    ApiError::bad_request(code, m)
}

async fn start(
    State(state): State<SharedState>,
    Auth(who): Auth,
    Path((app, id)): Path<(String, String)>,
    ApiJson(body): ApiJson<StartBody>,
) -> Result<Response, ApiError> {
    let app = app_for(&state, &who, &app, "broadcast:start").await?;
    let platform = body.platform.clone().unwrap_or_else(|| "custom".into());
    if let Some(k) = &body.key
        && (k.is_empty() || k.len() > 500)
    {
        return Err(bad("invalid_key", "key must be 1 to 500 characters"));
    }
    if body.name.as_ref().is_some_and(|n| n.chars().count() > 120)
        || body
            .layout
            .as_ref()
            .is_some_and(|l| l.chars().count() > 100)
    {
        return Err(bad(
            "invalid_name",
            "name ≤ 120 and layout ≤ 100 characters",
        ));
    }
    let full = match platform.as_str() {
        "custom" => {
            let url = body
                .url
                .as_deref()
                .ok_or_else(|| bad("invalid_url", "platform custom needs a url"))?;
            if url.len() > 2000 {
                return Err(bad("invalid_url", "url is longer than 2000"));
            }
            match &body.key {
                Some(k) => format!("{}/{k}", url.trim_end_matches('/')),
                None => url.to_owned(),
            }
        }
        p => {
            let key = body
                .key
                .as_deref()
                .ok_or_else(|| bad("invalid_key", format!("platform {p} needs a key")))?;
            preset(p, key).ok_or_else(|| {
                bad(
                    "invalid_platform",
                    "platform is youtube, twitch, facebook or custom",
                )
            })?
        }
    };
    let url = RtmpUrl::parse(&full).map_err(|m| bad("invalid_url", m))?;
    // The reference's egress quota (maxEgressGbMonth), per app here.
    let limit = crate::restream::egress_limit_gb(&app);
    let used = state.db.egress(app.id, &crate::restream::month()).await?;
    if limit > 0.0 && used as f64 >= limit * 1e9 {
        return Err(ApiError::status(
            StatusCode::TOO_MANY_REQUESTS,
            "quota_exceeded",
            format!(
                "egress quota used up: {:.3} GB of {limit} GB this month",
                used as f64 / 1e9
            ),
        ));
    }
    let stream = super::streams::load(&state, &app, &id).await?;
    let key = RoomKey {
        app: app.name.clone(),
        room: stream.room.clone(),
    };
    let live = state.hub.get(&key).and_then(|r| r.publisher()).is_some();
    if !live || stream.status != "active" {
        return Err(ApiError::status(
            StatusCode::CONFLICT,
            "stream_not_live",
            format!("{} is not live", stream.stream_id),
        ));
    }
    let (hls, camera) = crate::playback::hls::live_stream(&state, &key).ok_or_else(|| {
        ApiError::status(
            StatusCode::CONFLICT,
            "stream_not_live",
            format!("{} has no media yet", stream.stream_id),
        )
    })?;
    // A camera is H.264 only through its transcoder, kept running as HLS
    // demand while the restream lasts.
    let keep_alive: Box<dyn Fn() + Send + Sync> = if camera {
        let (s, k) = (std::sync::Arc::downgrade(&state), key.clone());
        Box::new(move || {
            if let Some(state) = s.upgrade() {
                crate::playback::hls::keep_camera_hls(&state, &k);
            }
        })
    } else {
        Box::new(|| {})
    };
    let target = crate::restream::start(
        &state,
        hls,
        NewTarget {
            app: (app.id, app.name.clone()),
            room: stream.room.clone(),
            stream_id: stream.stream_id.clone(),
            name: body.name.unwrap_or_else(|| platform.clone()),
            platform,
            url,
            keep_alive,
        },
    );
    tracing::info!(app = %app.name, stream = %stream.stream_id, egress = %target.egress_id, url = %target.url, "restream started");
    Ok(created(target.info()))
}

async fn list(
    State(state): State<SharedState>,
    Auth(who): Auth,
    Path((app, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let app = app_for(&state, &who, &app, "broadcast:read").await?;
    let stream = super::streams::load(&state, &app, &id).await?;
    let rows: Vec<_> = state
        .restreams
        .of_stream(app.id, &stream.stream_id)
        .iter()
        .map(|t| t.info())
        .collect();
    Ok(ok(rows))
}

async fn stop(
    State(state): State<SharedState>,
    Auth(who): Auth,
    Path((app, id, egress)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let app = app_for(&state, &who, &app, "broadcast:stop").await?;
    let stream = super::streams::load(&state, &app, &id).await?;
    if !state.restreams.stop(app.id, &stream.stream_id, &egress) {
        return Err(ApiError::not_found(
            "restream_not_found",
            format!("no restream {egress}"),
        ));
    }
    tracing::info!(app = %app.name, egress = %egress, "restream stopped through the API");
    Ok(StatusCode::NO_CONTENT.into_response())
}
