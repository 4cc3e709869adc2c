//! Config & transcoding (seed 001, reference §5.1): `GET/PATCH
//! /api/v1/apps/{app}/config`, `GET …/transcoding/layers`, and
//! `POST …/reload` (re-reads the app's file). What each setting does in
//! camgate is in docs/configuration.md ("App config").

use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde_json::json;

use super::catalog::{Access, Routes};
use super::native::{app_for, load_app};
use super::{ApiError, ApiJson, Auth, ok};
use crate::appconfig::{ConfigPatch, MediaConfig};
use crate::server::SharedState;
use crate::store::App;

/// Routes under `/api/v1`.
pub fn routes() -> Routes {
    Routes::new()
        .op(
            Method::GET,
            "/apps/{app}/config",
            Access::App("config:read"),
            "The app's transcoding/adaptive config and ws_ingest limits",
            get_config,
        )
        .op(
            Method::PATCH,
            "/apps/{app}/config",
            Access::App("config:write"),
            "Patch it (partial; a layers array replaces the whole ladder)",
            patch_config,
        )
        .example(json!({
            "layers": [{ "name": "high", "height": 720 }, { "name": "low", "height": 360 }],
            "wsIngest": { "maxCameras": 8, "maxFps": 10 },
        }))
        .op(
            Method::GET,
            "/apps/{app}/transcoding/layers",
            Access::App("config:read"),
            "Effective WebRTC rendition ladder (defaults to 720/480/240)",
            layers,
        )
        .op(
            Method::POST,
            "/apps/{app}/reload",
            Access::App("config:write"),
            "Re-read the app's config file (<apps_dir>/<app>.toml)",
            reload,
        )
}

fn answer(app: &App) -> serde_json::Value {
    let mut v = MediaConfig::from_settings(&app.settings).to_api();
    v["features"] = json!(super::apps::features(app));
    v
}

async fn get_config(
    State(state): State<SharedState>,
    Auth(who): Auth,
    Path(app): Path<String>,
) -> Result<Response, ApiError> {
    let app = app_for(&state, &who, &app, "config:read").await?;
    Ok(ok(answer(&app)))
}

async fn patch_config(
    State(state): State<SharedState>,
    Auth(who): Auth,
    Path(app): Path<String>,
    ApiJson(mut body): ApiJson<ConfigPatch>,
) -> Result<Response, ApiError> {
    let mut app = app_for(&state, &who, &app, "config:write").await?;
    let features = body.features.take();
    let mut media = MediaConfig::from_settings(&app.settings);
    media.apply(body);
    media.validate().map_err(|e| ApiError::BadRequest {
        code: "invalid_config",
        message: e.to_string(),
    })?;
    if let Some(f) = features {
        super::apps::patch_features(&mut app, f);
    }
    media.store(&mut app.settings);
    state.db.update_app(&app).await?;
    let app = load_app(&state, &app.name).await?;
    tracing::info!(app = %app.name, "app media config changed");
    Ok(ok(answer(&app)))
}

async fn layers(
    State(state): State<SharedState>,
    Auth(who): Auth,
    Path(app): Path<String>,
) -> Result<Response, ApiError> {
    let app = app_for(&state, &who, &app, "config:read").await?;
    let m = MediaConfig::from_settings(&app.settings);
    Ok(ok(json!({
        "adaptive": m.adaptive,
        "transcodingEnabled": m.transcoding_enabled,
        "layers": m.layers,
    })))
}

async fn reload(
    State(state): State<SharedState>,
    Auth(who): Auth,
    Path(app): Path<String>,
) -> Result<Response, ApiError> {
    let app = app_for(&state, &who, &app, "config:write").await?;
    let dir = state.config.apps_dir();
    match crate::appconfig::load_dir(&state.db, &dir, Some(&app.name)).await {
        Ok(0) => Err(ApiError::not_found(
            "config_file_not_found",
            format!("no {}.toml in the apps directory", app.name),
        )),
        Ok(_) => {
            let app = load_app(&state, &app.name).await?;
            Ok(ok(answer(&app)))
        }
        Err(e) => Err(ApiError::status(
            StatusCode::BAD_REQUEST,
            "invalid_config",
            // The message names the file and key, not the server's paths.
            e.replace(&format!("{}/", dir.display()), ""),
        )),
    }
}
