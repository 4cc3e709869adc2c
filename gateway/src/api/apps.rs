//! The apps registry (reference §2.1): `GET/POST /api/v1/apps`,
//! `GET/PATCH/DELETE /api/v1/apps/{name}`.
//!
//! An app's settings live in its row's `settings_json` as the reference's
//! config sections (`features`, `recording`, `callbacks`); `PATCH` merges
//! into them and answers the merged record. The callback secret is written,
//! never read back. Creating and deleting apps needs a global token; an
//! app-scoped token sees and edits only its own app.

use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use camgate_protocols::api::{
    AppFeatures, AppRecord, CreateApp, PatchApp, valid_app_name, valid_room_prefix,
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::catalog::{Access, Routes};
use super::native::{app_for, load_app};
use super::{ApiError, ApiJson, Auth, created, ok};
use crate::hub::RoomKey;
use crate::server::SharedState;
use crate::store::App;

/// Routes under `/api/v1`.
pub fn routes() -> Routes {
    Routes::new()
        .op(
            Method::GET,
            "/apps",
            Access::Token,
            "List the apps this token may read",
            list,
        )
        .op(
            Method::POST,
            "/apps",
            Access::Global("app:create"),
            "Create an app (tenant)",
            create,
        )
        .example(json!({ "name": "lobby", "displayName": "Lobby", "roomPrefix": "lobby" }))
        .returns(201)
        .op(
            Method::GET,
            "/apps/{app}",
            Access::App("app:read"),
            "An app's record and settings",
            one,
        )
        .op(
            Method::PATCH,
            "/apps/{app}",
            Access::App("config:write"),
            "Change an app's settings (merged)",
            patch,
        )
        .example(json!({ "displayName": "Lobby cameras", "features": { "chat": true } }))
        .op(
            Method::DELETE,
            "/apps/{app}",
            Access::Global("app:delete"),
            "Delete an app and everything live in it (?deleteVods)",
            remove,
        )
        .op(
            Method::GET,
            "/apps/{app}/sizes",
            Access::App("app:read"),
            "Storage footprint of an app",
            sizes,
        )
        .op(
            Method::GET,
            "/apps/{app}/webhooks/deliveries",
            Access::App("config:read"),
            "Webhook delivery log, newest first",
            deliveries,
        )
        .op(
            Method::POST,
            "/apps/{app}/webhooks/test",
            Access::App("config:write"),
            "Send a webhook_test event to the callback URL",
            test_webhook,
        )
}

#[derive(Debug, Deserialize)]
struct PageQuery {
    limit: Option<String>,
    offset: Option<String>,
}

/// `GET /apps/{app}/webhooks/deliveries`: the delivery log, newest first.
async fn deliveries(
    State(state): State<SharedState>,
    Auth(who): Auth,
    Path(app): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Response, ApiError> {
    let app = app_for(&state, &who, &app, "config:read").await?;
    let (limit, offset) = super::paging(q.limit.as_deref(), q.offset.as_deref(), 50, 500)?;
    let (rows, total) = state.db.list_deliveries(app.id, limit, offset).await?;
    Ok(super::page(rows, total, limit, offset))
}

/// `POST /apps/{app}/webhooks/test`: queues a `webhook_test` event to the
/// app's callback URL (to check a receiver and its signature check).
async fn test_webhook(
    State(state): State<SharedState>,
    Auth(who): Auth,
    Path(app): Path<String>,
) -> Result<Response, ApiError> {
    let app = app_for(&state, &who, &app, "config:write").await?;
    let url = app
        .setting("callbacks", "url")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if url.is_empty() {
        return Err(ApiError::bad_request(
            "no_callback_url",
            "the app has no callbackUrl",
        ));
    }
    state.webhooks.emit(
        &app.name,
        "webhook_test",
        json!({ "room": null, "message": "test" }),
    );
    Ok(ok(json!({ "queued": true })))
}

/// `GET /apps/{app}/sizes`: the app's storage footprint. camgate keeps all
/// apps in one database, so `dbBytes` is that shared file's size; an app's
/// own bytes are its snapshots (and, with recording, its VODs).
async fn sizes(
    State(state): State<SharedState>,
    Auth(who): Auth,
    Path(app): Path<String>,
) -> Result<Response, ApiError> {
    let app = app_for(&state, &who, &app, "app:read").await?;
    let (snapshots, snapshot_bytes) = state.db.snapshot_usage(app.id).await?;
    let (vods, vod_bytes) = state.db.vod_usage(app.id).await?;
    let db_bytes = std::fs::metadata(state.config.data_dir.join("camgate.db"))
        .map(|m| m.len())
        .unwrap_or(0);
    Ok(ok(json!({
        "app": app.name,
        "dbBytes": db_bytes,
        "vods": { "count": vods, "bytes": vod_bytes },
        "snapshots": { "count": snapshots, "bytes": snapshot_bytes },
        "totalBytes": snapshot_bytes + vod_bytes,
    })))
}

/// The feature flags of an app, defaults applied.
pub fn features(app: &App) -> AppFeatures {
    AppFeatures {
        rtmp_password: app.feature("rtmpPassword"),
        viewer_counter: app.feature("viewerCounter"),
        chat: app.feature("chat"),
        reactions: app.feature("reactions"),
        hidden_qc: app.hidden_qc,
        adaptive_player: app.feature("adaptivePlayer"),
        public_playback: app.public_playback,
    }
}

fn record(app: &App) -> AppRecord {
    let mut settings = app.settings.clone();
    let secret_set = settings
        .pointer("/callbacks/secret")
        .and_then(Value::as_str)
        .is_some_and(|s| !s.is_empty());
    if let Some(secret) = settings.pointer_mut("/callbacks/secret") {
        *secret = json!(if secret_set { "********" } else { "" });
    }
    let number = |section: &str, key: &str| {
        app.setting(section, key)
            .and_then(Value::as_u64)
            .unwrap_or(0) as u32
    };
    AppRecord {
        id: app.id,
        name: app.name.clone(),
        display_name: app.display_name.clone(),
        livekit_room_prefix: app.room_prefix.clone(),
        created_at: app.created_at.clone(),
        updated_at: app.updated_at.clone(),
        settings_json: settings
            .as_object()
            .is_some_and(|o| !o.is_empty())
            .then(|| settings.to_string()),
        features: features(app),
        recording_enabled: app
            .setting("recording", "enabled")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        split_minutes: number("recording", "split_minutes"),
        snapshot_seconds: number("recording", "snapshot_seconds"),
        always_record: app
            .setting("recording", "always")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        retention_days: number("recording", "retention_days"),
        retention_max_gb: app
            .setting("recording", "retention_max_gb")
            .and_then(Value::as_f64)
            .unwrap_or(0.0),
        callback_url: app
            .setting("callbacks", "url")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        callback_secret_set: secret_set,
        max_concurrent_streams: app.max_concurrent_streams,
        max_egress_gb_month: crate::restream::egress_limit_gb(app),
    }
}

async fn list(State(state): State<SharedState>, Auth(who): Auth) -> Result<Response, ApiError> {
    let apps = state.db.list_apps(who.app_id).await?;
    let visible: Vec<AppRecord> = apps
        .iter()
        .filter(|a| who.require(a.id, "app:read").is_ok())
        .map(record)
        .collect();
    if visible.is_empty() && !apps.is_empty() {
        // Every app exists but the token may read none of them.
        who.require(apps[0].id, "app:read")?;
    }
    Ok(ok(visible))
}

async fn create(
    State(state): State<SharedState>,
    Auth(who): Auth,
    ApiJson(body): ApiJson<CreateApp>,
) -> Result<Response, ApiError> {
    who.require_global("app:create")?;
    if !valid_app_name(&body.name) {
        return Err(ApiError::bad_request(
            "invalid_name",
            "name must match ^[a-z0-9][a-z0-9-]{1,30}[a-z0-9]$",
        ));
    }
    let display_name = body.display_name.unwrap_or_else(|| body.name.clone());
    check_display_name(&display_name)?;
    let prefix = body.room_prefix.unwrap_or_else(|| body.name.clone());
    check_prefix(&prefix)?;
    let settings = json!({ "features": features_json(AppFeatures::NEW_APP) });
    if !state
        .db
        .insert_app(&body.name, &display_name, &prefix, &settings)
        .await?
    {
        return Err(ApiError::status(
            StatusCode::CONFLICT,
            "app_exists",
            format!("an app named {} exists", body.name),
        ));
    }
    let app = load_app(&state, &body.name).await?;
    tracing::info!(app = %app.name, "app created");
    Ok(created(record(&app)))
}

async fn one(
    State(state): State<SharedState>,
    Auth(who): Auth,
    Path(app): Path<String>,
) -> Result<Response, ApiError> {
    let app = app_for(&state, &who, &app, "app:read").await?;
    Ok(ok(record(&app)))
}

async fn patch(
    State(state): State<SharedState>,
    Auth(who): Auth,
    Path(app): Path<String>,
    ApiJson(body): ApiJson<PatchApp>,
) -> Result<Response, ApiError> {
    let mut app = app_for(&state, &who, &app, "config:write").await?;
    if let Some(d) = body.display_name {
        check_display_name(&d)?;
        app.display_name = d;
    }
    if let Some(p) = body.room_prefix {
        check_prefix(&p)?;
        app.room_prefix = p;
    }
    let section = |settings: &mut Value, name: &str| -> serde_json::Map<String, Value> {
        settings
            .get(name)
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()
    };
    let mut recording = section(&mut app.settings, "recording");
    if let Some(on) = body.recording_enabled {
        recording.insert("enabled".into(), json!(on));
    }
    if let Some(m) = body.split_minutes {
        if !crate::appconfig::SPLIT_MINUTES.contains(&m) {
            return Err(ApiError::bad_request(
                "invalid_split_minutes",
                "splitMinutes must be one of 0, 15, 30, 60, 90, 120",
            ));
        }
        recording.insert("split_minutes".into(), json!(m));
    }
    if let Some(s) = body.snapshot_seconds {
        if !crate::appconfig::SNAPSHOT_SECONDS.contains(&s) {
            return Err(ApiError::bad_request(
                "invalid_snapshot_seconds",
                "snapshotSeconds must be one of 0, 1, 30, 60, 120, 360",
            ));
        }
        recording.insert("snapshot_seconds".into(), json!(s));
    }
    if let Some(on) = body.always_record {
        recording.insert("always".into(), json!(on));
    }
    if let Some(d) = body.retention_days {
        if d > 36_500 {
            return Err(ApiError::bad_request(
                "invalid_retention_days",
                "retentionDays must be 0..=36500",
            ));
        }
        recording.insert("retention_days".into(), json!(d));
    }
    if let Some(g) = body.retention_max_gb {
        if !(0.0..=1_000_000.0).contains(&g) {
            return Err(ApiError::bad_request(
                "invalid_retention_max_gb",
                "retentionMaxGb must be 0..=1000000",
            ));
        }
        recording.insert("retention_max_gb".into(), json!(g));
    }
    let mut callbacks = section(&mut app.settings, "callbacks");
    if let Some(url) = body.callback_url {
        crate::appconfig::check_callback_url(&url).map_err(|m| {
            ApiError::bad_request("invalid_callback_url", format!("callbackUrl {m}"))
        })?;
        callbacks.insert("url".into(), json!(url));
    }
    if let Some(secret) = body.callback_secret {
        if secret.len() > 256 {
            return Err(ApiError::bad_request(
                "invalid_callback_secret",
                "callbackSecret is longer than 256",
            ));
        }
        callbacks.insert("secret".into(), json!(secret));
    }
    if let Some(p) = body.features {
        patch_features(&mut app, p);
    }
    if let Some(m) = body.max_concurrent_streams {
        app.max_concurrent_streams = i64::from(m);
    }
    if let Some(g) = body.max_egress_gb_month {
        if !(0.0..=1_000_000.0).contains(&g) {
            return Err(ApiError::bad_request(
                "invalid_max_egress_gb_month",
                "maxEgressGbMonth must be 0..=1000000 (0 = unlimited)",
            ));
        }
        if let Some(o) = app.settings.as_object_mut() {
            o.insert("quotas".into(), json!({ "max_egress_gb_month": g }));
        }
    }
    if let Some(o) = app.settings.as_object_mut() {
        if !recording.is_empty() {
            o.insert("recording".into(), Value::Object(recording));
        }
        if !callbacks.is_empty() {
            o.insert("callbacks".into(), Value::Object(callbacks));
        }
    }
    state.db.update_app(&app).await?;
    let app = load_app(&state, &app.name).await?;
    tracing::info!(app = %app.name, "app settings changed");
    Ok(ok(record(&app)))
}

/// Query of `DELETE /api/v1/apps/{name}`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeleteQuery {
    #[serde(default)]
    delete_vods: Option<String>,
}

async fn remove(
    State(state): State<SharedState>,
    Auth(who): Auth,
    Path(app): Path<String>,
    Query(q): Query<DeleteQuery>,
) -> Result<Response, ApiError> {
    who.require_global("app:delete")?;
    let app = load_app(&state, &app).await?;
    // Everything live in the app goes first: cameras, RTMP and WHIP
    // ingresses. Their rows go with the app (cascade).
    let mut dropped = 0;
    for key in state.db.list_ws_keys(app.id).await? {
        dropped += usize::from(
            state
                .cameras
                .kick(&key.id, crate::ingest::ws::Kick::revoked()),
        );
    }
    for row in state.db.app_ingresses(app.id).await? {
        let gone = if row.input_type == "url" {
            state.pulls.stop(&row.id)
        } else if row.input_type == "whip" {
            let key = RoomKey {
                app: app.name.clone(),
                room: row.room.clone(),
            };
            state
                .media
                .end_publisher(&key, &row.participant_identity)
                .await
        } else {
            state.rtmp.kick(&row.id)
        };
        dropped += usize::from(gone);
    }
    state.db.delete_app(app.id).await?;
    let delete_vods = q
        .delete_vods
        .is_some_and(|v| v.is_empty() || v == "true" || v == "1");
    // The rows went with the app; the files stay unless asked (an operator
    // may want the footage of a tenant that is gone).
    if delete_vods {
        let dir = state
            .config
            .data_dir
            .join(crate::record::app_dir(&app.name));
        if let Err(e) = tokio::fs::remove_dir_all(&dir).await
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(app = %app.name, error = %e, "could not delete the app's recordings");
        }
    }
    tracing::info!(app = %app.name, dropped, delete_vods, "app deleted");
    Ok(ok(json!({ "deleted": true, "name": app.name })))
}

/// Sets the feature flags a patch names, keeping the others.
pub fn patch_features(app: &mut App, p: camgate_protocols::api::PatchFeatures) {
    let mut f = features(app);
    let set = |flag: &mut bool, v: Option<bool>| {
        if let Some(v) = v {
            *flag = v;
        }
    };
    set(&mut f.rtmp_password, p.rtmp_password);
    set(&mut f.viewer_counter, p.viewer_counter);
    set(&mut f.chat, p.chat);
    set(&mut f.reactions, p.reactions);
    set(&mut f.hidden_qc, p.hidden_qc);
    set(&mut f.adaptive_player, p.adaptive_player);
    set(&mut f.public_playback, p.public_playback);
    app.public_playback = f.public_playback;
    app.hidden_qc = f.hidden_qc;
    if let Some(o) = app.settings.as_object_mut() {
        o.insert("features".into(), features_json(f));
    }
}

fn features_json(f: AppFeatures) -> Value {
    serde_json::to_value(f).unwrap_or_else(|_| json!({}))
}

fn check_display_name(d: &str) -> Result<(), ApiError> {
    if d.is_empty() || d.chars().count() > 100 {
        return Err(ApiError::bad_request(
            "invalid_display_name",
            "displayName must be 1 to 100 characters",
        ));
    }
    Ok(())
}

fn check_prefix(p: &str) -> Result<(), ApiError> {
    if !valid_room_prefix(p) {
        return Err(ApiError::bad_request(
            "invalid_room_prefix",
            "roomPrefix must match ^[a-z0-9][a-z0-9-]{0,39}$",
        ));
    }
    Ok(())
}
