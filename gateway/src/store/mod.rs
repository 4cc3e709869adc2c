//! Platform state in SQLite (WAL) through sqlx, with embedded migrations.
//!
//! Queries are plain SQL with bound parameters so the same statements can run
//! on PostgreSQL later. Nothing here is touched per frame: cameras write one
//! row at connect, one at close and one per stats message.

use std::path::Path;
use std::str::FromStr;

use sqlx::AssertSqlSafe;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

use crate::auth::now_rfc3339;

/// A database failure; the detail is logged, never sent to clients.
pub type DbError = sqlx::Error;

/// Handle to the database.
#[derive(Clone, Debug)]
pub struct Db {
    pool: SqlitePool,
}

/// An app (tenant).
#[derive(Clone, Debug)]
pub struct App {
    /// Row id.
    pub id: i64,
    /// Slug.
    pub name: String,
    /// Display name.
    pub display_name: String,
    /// Room prefix.
    pub room_prefix: String,
    /// Playback routes need no token.
    pub public_playback: bool,
    /// `hiddenQc` feature: hidden/recorder join tokens allowed.
    pub hidden_qc: bool,
    /// Live publishers allowed at once (0 = unlimited).
    pub max_concurrent_streams: i64,
    /// Stored settings (`features`, `recording`, `callbacks`), `{}` if none.
    pub settings: serde_json::Value,
    /// Creation time.
    pub created_at: String,
    /// Last change.
    pub updated_at: String,
}

impl App {
    /// A feature flag; a missing key is false except where the reference
    /// says otherwise (`publicPlayback` has its own column).
    pub fn feature(&self, name: &str) -> bool {
        self.settings
            .get("features")
            .and_then(|f| f.get(name))
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false)
    }

    /// A setting at `section.key`.
    pub fn setting(&self, section: &str, key: &str) -> Option<&serde_json::Value> {
        self.settings.get(section)?.get(key)
    }
}

/// A camera key row.
#[derive(Clone, Debug)]
pub struct WsKey {
    /// `wsi_…`.
    pub id: String,
    /// Owning app.
    pub app_id: i64,
    /// Namespaced room.
    pub room: String,
    /// Camera identity.
    pub identity: String,
    /// Last four characters of the key, for masked listings.
    pub key_last4: String,
    /// Creation time.
    pub created_at: String,
}

/// An ingress row.
#[derive(Clone, Debug)]
pub struct IngressRow {
    /// `IN_…`.
    pub id: String,
    /// Owning app.
    pub app_id: i64,
    /// `rtmp`, `whip` or `url`.
    pub input_type: String,
    /// Namespaced room.
    pub room: String,
    /// Publisher identity.
    pub participant_identity: String,
    /// Display name.
    pub participant_name: Option<String>,
    /// Pulled URL (`url` ingresses).
    pub url: Option<String>,
    /// Transcoding asked for (passthrough when false).
    pub enable_transcoding: bool,
    /// Last four characters of the stream key.
    pub key_last4: Option<String>,
    /// SHA-256 of the RTMP stream password (`rtmpPassword` apps).
    pub password_hash: Option<String>,
    /// Pull options (`url` ingresses) as JSON.
    pub options: Option<String>,
    /// Creation time.
    pub created_at: String,
}

/// A chat or reaction message of a room.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatRow {
    /// Row id (increasing).
    pub id: i64,
    /// Room.
    pub room: String,
    /// The room's stream when it was sent, if one was live.
    pub stream_id: Option<String>,
    /// `chat` or `reaction`.
    pub topic: String,
    /// Sender identity (`server` for the API unless given).
    #[serde(rename = "from")]
    pub sender: String,
    /// Chat text.
    pub message: Option<String>,
    /// Reaction (an emoji or short name).
    pub reaction: Option<String>,
    /// `api` or `webrtc`.
    pub source: String,
    /// When (RFC 3339).
    pub ts: String,
}

/// A stored snapshot.
#[derive(Clone, Debug)]
pub struct SnapshotRow {
    /// `SN_…`.
    pub id: String,
    /// Owning app.
    pub app_id: i64,
    /// Namespaced room.
    pub room: String,
    /// Canonical stream id (`<room>/<identity>`) when known.
    pub stream_id: Option<String>,
    /// The JPEG, relative to the data dir.
    pub file: String,
    /// Its size.
    pub size_bytes: i64,
    /// Picture width.
    pub width: Option<i64>,
    /// Picture height.
    pub height: Option<i64>,
    /// Capture time.
    pub created_at: String,
}

/// One webhook delivery's outcome.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryRow {
    /// Delivery UUID (the envelope's `id`).
    pub id: String,
    /// Owning app.
    #[serde(skip)]
    pub app_id: i64,
    /// Event name.
    pub event: String,
    /// `delivered` or `failed`.
    pub status: String,
    /// Attempts made.
    pub attempts: i64,
    /// Last HTTP status, if any answer came.
    pub http_status: Option<i64>,
    /// Why it failed, in words.
    pub error: Option<String>,
    /// Emission time.
    pub created_at: String,
}

/// A stream row (one per app and canonical stream id).
#[derive(Clone, Debug)]
pub struct StreamRow {
    /// Row id.
    pub id: i64,
    /// `<room>/<identity>`.
    pub stream_id: String,
    /// Namespaced room.
    pub room: String,
    /// Publisher identity.
    pub identity: String,
    /// `ws-mjpeg`, `whip`, `rtmp`, `rtsp`, `http-mjpeg`.
    pub kind: String,
    /// `active` or `ended`.
    pub status: String,
    /// Start of the last session.
    pub started_at: String,
    /// End of the last session.
    pub ended_at: Option<String>,
    /// Last stats a camera reported (JSON text).
    pub last_stats_json: Option<String>,
}

/// A recording / VOD row.
#[derive(Clone, Debug)]
pub struct VodRow {
    /// Row id (the `vodId`).
    pub id: i64,
    /// App.
    pub app_id: i64,
    /// Namespaced room.
    pub room: String,
    /// `<room>/<identity>`.
    pub stream_id: String,
    /// `EG_…`: the recording's handle.
    pub egress_id: String,
    /// `recording`, `uploading`, `ready`, `failed`.
    pub status: String,
    /// The MP4, relative to the data dir.
    pub file: String,
    /// Its thumbnail, relative to the data dir.
    pub snapshot_file: Option<String>,
    /// File size.
    pub size_bytes: i64,
    /// Seconds of media.
    pub duration_s: f64,
    /// Picture width.
    pub width: Option<i64>,
    /// Picture height.
    pub height: Option<i64>,
    /// `mp4`.
    pub format: String,
    /// Audio recorded (AAC or Opus).
    pub has_audio: bool,
    /// Why it failed.
    pub error: Option<String>,
    /// Start (RFC 3339).
    pub started_at: String,
    /// End (RFC 3339).
    pub ended_at: Option<String>,
}

/// Filters and order of a VOD listing.
#[derive(Clone, Debug, Default)]
pub struct VodFilter {
    /// Room.
    pub room: Option<String>,
    /// Status.
    pub status: Option<String>,
    /// Started at or after (RFC 3339).
    pub since: Option<String>,
    /// Started at or before (RFC 3339).
    pub until: Option<String>,
    /// `started_at`, `size_bytes` or `id`.
    pub order: &'static str,
    /// `ASC` or `DESC`.
    pub desc: bool,
}

/// One event log entry.
#[derive(Clone, Debug)]
pub struct LogEntry {
    /// Row id (0 before it is stored).
    pub id: i64,
    /// RFC 3339 time.
    pub ts: String,
    /// `info`, `warn`, `error`.
    pub level: String,
    /// The module that logged it (`ingest::rtmp`, …).
    pub source: String,
    /// The app it concerns, when known.
    pub app: Option<String>,
    /// The message.
    pub message: String,
    /// The other fields, as JSON text.
    pub meta_json: Option<String>,
}

/// Filters of `GET /logs`.
#[derive(Clone, Debug, Default)]
pub struct LogFilter {
    /// Only this app.
    pub app: Option<String>,
    /// Only these levels.
    pub levels: Option<Vec<&'static str>>,
    /// Only this source.
    pub source: Option<String>,
    /// Message or fields contain this.
    pub q: Option<String>,
    /// From (inclusive, RFC 3339).
    pub since: Option<String>,
    /// Until (inclusive, RFC 3339).
    pub until: Option<String>,
}

/// An API token row.
#[derive(Clone, Debug)]
pub struct TokenRow {
    /// Row id.
    pub id: i64,
    /// `global` or `app`.
    pub scope: String,
    /// App for app-scoped tokens.
    pub app_id: Option<i64>,
    /// Stored hash, compared in constant time by the caller.
    pub token_hash: String,
    /// Optional `resource:action` list.
    pub permissions: Option<Vec<String>>,
    /// Optional expiry (RFC 3339).
    pub expires_at: Option<String>,
    /// Client addresses allowed (exact IPs or CIDRs); none = any.
    pub allowed_ips: Option<Vec<String>>,
}

/// An API token as listings show it (never its hash).
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenSummary {
    /// Row id.
    pub id: i64,
    /// Label.
    pub name: String,
    /// `global` or `app`.
    pub scope: String,
    /// App of an app-scoped token.
    pub app_id: Option<i64>,
    /// Last use (RFC 3339).
    pub last_used_at: Option<String>,
    /// Creation (RFC 3339).
    pub created_at: String,
    /// Revoked (soft-deleted).
    pub revoked: bool,
    /// Narrowed permissions, if any.
    pub permissions: Option<Vec<String>>,
    /// Allowed client addresses, if restricted.
    pub allowed_ips: Option<Vec<String>>,
    /// Expiry, if any.
    pub expires_at: Option<String>,
}

/// What a new API token is.
#[derive(Clone, Debug)]
pub struct NewToken<'a> {
    /// Label.
    pub name: &'a str,
    /// `global` or `app`.
    pub scope: &'a str,
    /// App of an app-scoped token.
    pub app_id: Option<i64>,
    /// SHA-256 of the secret.
    pub token_hash: &'a str,
    /// Narrowed permissions.
    pub permissions: Option<&'a [String]>,
    /// Allowed client addresses.
    pub allowed_ips: Option<&'a [String]>,
    /// Expiry (RFC 3339).
    pub expires_at: Option<&'a str>,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

impl Db {
    /// Opens (creating if needed) `camgate.db` in `data_dir` and migrates it.
    pub async fn open(data_dir: &Path) -> Result<Db, DbError> {
        std::fs::create_dir_all(data_dir).map_err(DbError::Io)?;
        let path = data_dir.join("camgate.db");
        let opts = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(std::time::Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(opts)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(Db { pool })
    }

    /// Closes the pool, checkpointing the WAL.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Creates the default app `live` (prefix `live`) if it does not exist.
    pub async fn ensure_default_app(&self) -> Result<(), DbError> {
        let now = now_rfc3339();
        sqlx::query(
            "INSERT INTO apps (name, display_name, room_prefix, created_at, updated_at)
             VALUES ('live', 'Live', 'live', ?, ?) ON CONFLICT(name) DO NOTHING",
        )
        .bind(&now)
        .bind(&now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Looks an app up by name.
    pub async fn app_by_name(&self, name: &str) -> Result<Option<App>, DbError> {
        let row = sqlx::query(AssertSqlSafe(format!("{APP_COLUMNS} WHERE name = ?")))
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(app_from_row))
    }

    /// Every app, or only `only` (an app-scoped caller), by name.
    pub async fn list_apps(&self, only: Option<i64>) -> Result<Vec<App>, DbError> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "{APP_COLUMNS} WHERE (? IS NULL OR id = ?) ORDER BY name"
        )))
        .bind(only)
        .bind(only)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(app_from_row).collect())
    }

    /// Creates an app; false when the name is taken.
    pub async fn insert_app(
        &self,
        name: &str,
        display_name: &str,
        room_prefix: &str,
        settings: &serde_json::Value,
    ) -> Result<bool, DbError> {
        let now = now_rfc3339();
        let done = sqlx::query(
            "INSERT INTO apps (name, display_name, room_prefix, settings_json, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(name) DO NOTHING",
        )
        .bind(name)
        .bind(display_name)
        .bind(room_prefix)
        .bind(settings.to_string())
        .bind(&now)
        .bind(&now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Writes an app's editable fields back.
    pub async fn update_app(&self, app: &App) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE apps SET display_name = ?, room_prefix = ?, public_playback = ?,
             max_concurrent_streams = ?, settings_json = ?, updated_at = ? WHERE id = ?",
        )
        .bind(&app.display_name)
        .bind(&app.room_prefix)
        .bind(i64::from(app.public_playback))
        .bind(app.max_concurrent_streams)
        .bind(app.settings.to_string())
        .bind(now_rfc3339())
        .bind(app.id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Deletes an app and, by cascade, its tokens, keys, ingresses and
    /// stream rows.
    pub async fn delete_app(&self, id: i64) -> Result<bool, DbError> {
        let done = sqlx::query("DELETE FROM apps WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// True when a usable global token exists.
    pub async fn has_global_token(&self) -> Result<bool, DbError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM api_tokens WHERE scope = 'global' AND revoked = 0",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(n > 0)
    }

    /// Sets the bootstrap admin token's hash (creating its row once).
    pub async fn set_admin_token(&self, token_hash: &str) -> Result<(), DbError> {
        let now = now_rfc3339();
        let updated =
            sqlx::query("UPDATE api_tokens SET token_hash = ?, revoked = 0 WHERE bootstrap = 1")
                .bind(token_hash)
                .execute(&self.pool)
                .await?;
        if updated.rows_affected() == 0 {
            sqlx::query(
                "INSERT INTO api_tokens (name, scope, token_hash, bootstrap, created_at)
                 VALUES ('admin', 'global', ?, 1, ?)",
            )
            .bind(token_hash)
            .bind(&now)
            .execute(&self.pool)
            .await?;
        }
        Ok(())
    }

    /// Finds a non-revoked token by hash and records its use.
    pub async fn token_by_hash(&self, token_hash: &str) -> Result<Option<TokenRow>, DbError> {
        let row = sqlx::query(
            "SELECT id, scope, app_id, token_hash, permissions_json, allowed_ips_json, expires_at
             FROM api_tokens WHERE token_hash = ? AND revoked = 0",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        let id: i64 = r.get("id");
        sqlx::query("UPDATE api_tokens SET last_used_at = ? WHERE id = ?")
            .bind(now_rfc3339())
            .bind(id)
            .execute(&self.pool)
            .await?;
        let permissions: Option<String> = r.get("permissions_json");
        let allowed_ips: Option<String> = r.get("allowed_ips_json");
        Ok(Some(TokenRow {
            id,
            scope: r.get("scope"),
            app_id: r.get("app_id"),
            token_hash: r.get("token_hash"),
            permissions: permissions.and_then(|p| serde_json::from_str(&p).ok()),
            expires_at: r.get("expires_at"),
            allowed_ips: allowed_ips.and_then(|p| serde_json::from_str(&p).ok()),
        }))
    }

    /// Creates an API token; returns its id.
    pub async fn insert_token(&self, t: &NewToken<'_>) -> Result<i64, DbError> {
        let json = |v: Option<&[String]>| v.map(|v| serde_json::to_string(v).unwrap_or_default());
        let done = sqlx::query(
            "INSERT INTO api_tokens (name, scope, app_id, token_hash, permissions_json,
               allowed_ips_json, created_at, expires_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(t.name)
        .bind(t.scope)
        .bind(t.app_id)
        .bind(t.token_hash)
        .bind(json(t.permissions))
        .bind(json(t.allowed_ips))
        .bind(now_rfc3339())
        .bind(t.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(done.last_insert_rowid())
    }

    /// API tokens, newest first: all, or only those of app `only`.
    pub async fn list_tokens(&self, only: Option<i64>) -> Result<Vec<TokenSummary>, DbError> {
        let rows = sqlx::query(
            "SELECT id, name, scope, app_id, last_used_at, created_at, revoked, permissions_json,
               allowed_ips_json, expires_at
             FROM api_tokens WHERE (? IS NULL OR app_id = ?) ORDER BY id DESC",
        )
        .bind(only)
        .bind(only)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let list = |c: &str| {
                    r.get::<Option<String>, _>(c)
                        .and_then(|p| serde_json::from_str(&p).ok())
                };
                TokenSummary {
                    id: r.get("id"),
                    name: r.get("name"),
                    scope: r.get("scope"),
                    app_id: r.get("app_id"),
                    last_used_at: r.get("last_used_at"),
                    created_at: r.get("created_at"),
                    revoked: r.get::<i64, _>("revoked") != 0,
                    permissions: list("permissions_json"),
                    allowed_ips: list("allowed_ips_json"),
                    expires_at: r.get("expires_at"),
                }
            })
            .collect())
    }

    /// Revokes token `id` (of app `only` when given); false when none.
    pub async fn revoke_token(&self, id: i64, only: Option<i64>) -> Result<bool, DbError> {
        let done = sqlx::query(
            "UPDATE api_tokens SET revoked = 1 WHERE id = ? AND (? IS NULL OR app_id = ?)",
        )
        .bind(id)
        .bind(only)
        .bind(only)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// An app by row id.
    pub async fn app_by_id(&self, id: i64) -> Result<Option<App>, DbError> {
        let row = sqlx::query(AssertSqlSafe(format!("{APP_COLUMNS} WHERE id = ?")))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(app_from_row))
    }

    /// Stores a new camera key (hash only).
    pub async fn insert_ws_key(&self, key: &WsKey, key_hash: &str) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO ws_ingest_keys (id, app_id, room, identity, key_hash, key_last4, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&key.id)
        .bind(key.app_id)
        .bind(&key.room)
        .bind(&key.identity)
        .bind(key_hash)
        .bind(&key.key_last4)
        .bind(&key.created_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Lists an app's non-revoked camera keys, newest first.
    pub async fn list_ws_keys(&self, app_id: i64) -> Result<Vec<WsKey>, DbError> {
        let rows = sqlx::query(
            "SELECT id, app_id, room, identity, key_last4, created_at FROM ws_ingest_keys
             WHERE app_id = ? AND revoked_at IS NULL ORDER BY created_at DESC, id",
        )
        .bind(app_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(ws_key_from_row).collect())
    }

    /// Finds a non-revoked camera key by hash.
    pub async fn ws_key_by_hash(&self, key_hash: &str) -> Result<Option<WsKey>, DbError> {
        let row = sqlx::query(
            "SELECT id, app_id, room, identity, key_last4, created_at FROM ws_ingest_keys
             WHERE key_hash = ? AND revoked_at IS NULL",
        )
        .bind(key_hash)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(ws_key_from_row))
    }

    /// Revokes a camera key; false when no such live key exists in the app.
    pub async fn revoke_ws_key(&self, app_id: i64, id: &str) -> Result<bool, DbError> {
        let r = sqlx::query(
            "UPDATE ws_ingest_keys SET revoked_at = ? WHERE app_id = ? AND id = ? AND revoked_at IS NULL",
        )
        .bind(now_rfc3339())
        .bind(app_id)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Inserts an ingress with the hash of its stream key.
    pub async fn insert_ingress(
        &self,
        i: &IngressRow,
        key_hash: Option<&str>,
    ) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO ingresses (id, app_id, input_type, room, participant_identity,
               participant_name, url, enable_transcoding, key_hash, key_last4, password_hash,
               options_json, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&i.id)
        .bind(i.app_id)
        .bind(&i.input_type)
        .bind(&i.room)
        .bind(&i.participant_identity)
        .bind(&i.participant_name)
        .bind(&i.url)
        .bind(i.enable_transcoding)
        .bind(key_hash)
        .bind(&i.key_last4)
        .bind(&i.password_hash)
        .bind(&i.options)
        .bind(&i.created_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A page of an app's ingresses (newest first) and the total, filtered
    /// by exact room and a substring of id, room or identity.
    pub async fn list_ingresses(
        &self,
        app_id: i64,
        room: Option<&str>,
        q: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<IngressRow>, i64), DbError> {
        let like = q.map(|q| {
            let escaped = q
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            format!("%{escaped}%")
        });
        let filter = "app_id = ? AND deleted_at IS NULL AND (? IS NULL OR room = ?)
             AND (? IS NULL OR id LIKE ? ESCAPE '\\' OR room LIKE ? ESCAPE '\\'
                  OR participant_identity LIKE ? ESCAPE '\\')";
        let total: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM ingresses WHERE {filter}"
        )))
        .bind(app_id)
        .bind(room)
        .bind(room)
        .bind(&like)
        .bind(&like)
        .bind(&like)
        .bind(&like)
        .fetch_one(&self.pool)
        .await?;
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {INGRESS_COLUMNS} FROM ingresses WHERE {filter}
             ORDER BY created_at DESC, id LIMIT ? OFFSET ?"
        )))
        .bind(app_id)
        .bind(room)
        .bind(room)
        .bind(&like)
        .bind(&like)
        .bind(&like)
        .bind(&like)
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?;
        Ok((rows.into_iter().map(ingress_from_row).collect(), total))
    }

    /// Every pulled (`url`) ingress of every app, with its app's name.
    pub async fn url_ingresses(&self) -> Result<Vec<(String, IngressRow)>, DbError> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT apps.name AS app_name, {} FROM ingresses JOIN apps ON apps.id = ingresses.app_id
             WHERE input_type = 'url' AND deleted_at IS NULL",
            INGRESS_COLUMNS
                .split(", ")
                .map(|c| format!("ingresses.{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        )))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| (r.get::<String, _>("app_name"), ingress_from_row(r)))
            .collect())
    }

    /// The canonical id of the stream live in a room, if any.
    pub async fn active_stream_id(
        &self,
        app_id: i64,
        room: &str,
    ) -> Result<Option<String>, DbError> {
        sqlx::query_scalar(
            "SELECT stream_id FROM streams WHERE app_id = ? AND room = ? AND status = 'active'
             ORDER BY started_at DESC LIMIT 1",
        )
        .bind(app_id)
        .bind(room)
        .fetch_optional(&self.pool)
        .await
    }

    /// Stores a chat/reaction message; answers its id.
    pub async fn insert_chat(&self, app_id: i64, c: &ChatRow) -> Result<i64, DbError> {
        let r = sqlx::query(
            "INSERT INTO chat_messages
               (app_id, room, stream_id, topic, sender, message, reaction, source, ts)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(app_id)
        .bind(&c.room)
        .bind(&c.stream_id)
        .bind(&c.topic)
        .bind(&c.sender)
        .bind(&c.message)
        .bind(&c.reaction)
        .bind(&c.source)
        .bind(&c.ts)
        .execute(&self.pool)
        .await?;
        Ok(r.last_insert_rowid())
    }

    /// A stream's chat/reaction messages, oldest first, with ids above
    /// `after`; and how many there are in all.
    pub async fn list_chat(
        &self,
        app_id: i64,
        stream_id: &str,
        after: i64,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<ChatRow>, i64), DbError> {
        let total: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM chat_messages WHERE app_id = ? AND stream_id = ? AND id > ?",
        )
        .bind(app_id)
        .bind(stream_id)
        .bind(after)
        .fetch_one(&self.pool)
        .await?;
        let rows = sqlx::query(
            "SELECT * FROM chat_messages WHERE app_id = ? AND stream_id = ? AND id > ?
             ORDER BY id LIMIT ? OFFSET ?",
        )
        .bind(app_id)
        .bind(stream_id)
        .bind(after)
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?;
        let rows = rows
            .into_iter()
            .map(|r| ChatRow {
                id: r.get("id"),
                room: r.get("room"),
                stream_id: r.get("stream_id"),
                topic: r.get("topic"),
                sender: r.get("sender"),
                message: r.get("message"),
                reaction: r.get("reaction"),
                source: r.get("source"),
                ts: r.get("ts"),
            })
            .collect();
        Ok((rows, total))
    }

    /// Logs a webhook delivery, keeping the newest `keep` of the app.
    pub async fn insert_delivery(&self, d: &DeliveryRow, keep: i64) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO webhook_deliveries (id, app_id, event, status, attempts, http_status, error, created_at, seq)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM webhook_deliveries))",
        )
        .bind(&d.id)
        .bind(d.app_id)
        .bind(&d.event)
        .bind(&d.status)
        .bind(d.attempts)
        .bind(d.http_status)
        .bind(&d.error)
        .bind(&d.created_at)
        .execute(&self.pool)
        .await?;
        sqlx::query(
            "DELETE FROM webhook_deliveries WHERE app_id = ? AND seq <= (
               SELECT seq FROM webhook_deliveries WHERE app_id = ? ORDER BY seq DESC LIMIT 1 OFFSET ?)",
        )
        .bind(d.app_id)
        .bind(d.app_id)
        .bind(keep)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// An app's webhook deliveries, newest first, and the total.
    pub async fn list_deliveries(
        &self,
        app_id: i64,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<DeliveryRow>, i64), DbError> {
        let total: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM webhook_deliveries WHERE app_id = ?")
                .bind(app_id)
                .fetch_one(&self.pool)
                .await?;
        let rows = sqlx::query(
            "SELECT * FROM webhook_deliveries WHERE app_id = ? ORDER BY seq DESC LIMIT ? OFFSET ?",
        )
        .bind(app_id)
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?;
        Ok((
            rows.into_iter()
                .map(|r| DeliveryRow {
                    id: r.get("id"),
                    app_id: r.get("app_id"),
                    event: r.get("event"),
                    status: r.get("status"),
                    attempts: r.get("attempts"),
                    http_status: r.get("http_status"),
                    error: r.get("error"),
                    created_at: r.get("created_at"),
                })
                .collect(),
            total,
        ))
    }

    /// A page of one app's rows of `table`, only those whose `column` is
    /// `value` when one is given, newest first by `order`; and the total.
    /// `table`, `column` and `order` are names fixed by the callers, never
    /// request text.
    #[allow(clippy::too_many_arguments)]
    async fn app_page(
        &self,
        table: &'static str,
        column: &'static str,
        order: &'static str,
        app_id: i64,
        value: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<sqlx::sqlite::SqliteRow>, i64), DbError> {
        let filter = format!("WHERE app_id = ? AND (? IS NULL OR {column} = ?)");
        let total: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM {table} {filter}"
        )))
        .bind(app_id)
        .bind(value)
        .bind(value)
        .fetch_one(&self.pool)
        .await?;
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT * FROM {table} {filter} ORDER BY {order} DESC, id DESC LIMIT ? OFFSET ?"
        )))
        .bind(app_id)
        .bind(value)
        .bind(value)
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?;
        Ok((rows, total))
    }

    /// An app's streams, newest first: `status` `active`, `ended` or all
    /// (`None`); and the total.
    pub async fn list_streams(
        &self,
        app_id: i64,
        status: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<StreamRow>, i64), DbError> {
        let (rows, total) = self
            .app_page(
                "streams",
                "status",
                "started_at",
                app_id,
                status,
                limit,
                offset,
            )
            .await?;
        Ok((rows.into_iter().map(stream_from_row).collect(), total))
    }

    /// One stream of an app by canonical id or row id.
    pub async fn stream(&self, app_id: i64, id: &str) -> Result<Option<StreamRow>, DbError> {
        let row = sqlx::query(
            "SELECT * FROM streams WHERE app_id = ? AND (stream_id = ? OR CAST(id AS TEXT) = ?)",
        )
        .bind(app_id)
        .bind(id)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(stream_from_row))
    }

    /// Marks a stream ended whatever its session (the API stopped it).
    pub async fn end_stream(&self, app_id: i64, stream_id: &str) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE streams SET status = 'ended', ended_at = COALESCE(ended_at, ?)
             WHERE app_id = ? AND stream_id = ? AND status = 'active'",
        )
        .bind(now_rfc3339())
        .bind(app_id)
        .bind(stream_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Stores a batch of log entries in one transaction.
    pub async fn insert_logs(&self, entries: &[LogEntry]) -> Result<(), DbError> {
        let mut tx = self.pool.begin().await?;
        for e in entries {
            sqlx::query(
                "INSERT INTO event_log (ts, level, source, app, message, meta_json) VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(&e.ts)
            .bind(&e.level)
            .bind(&e.source)
            .bind(&e.app)
            .bind(&e.message)
            .bind(&e.meta_json)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await
    }

    /// Keeps the newest `keep` log entries.
    pub async fn trim_logs(&self, keep: i64) -> Result<(), DbError> {
        sqlx::query(
            "DELETE FROM event_log WHERE id <= (SELECT id FROM event_log ORDER BY id DESC LIMIT 1 OFFSET ?)",
        )
        .bind(keep)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Log entries, newest first, and the total matching.
    pub async fn list_logs(
        &self,
        f: &LogFilter,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<LogEntry>, i64), DbError> {
        let levels = f
            .levels
            .as_ref()
            .map(|l| serde_json::to_string(l).unwrap_or_default());
        let like = f.q.as_ref().map(|q| {
            format!(
                "%{}%",
                q.replace('\\', "\\\\")
                    .replace('%', "\\%")
                    .replace('_', "\\_")
            )
        });
        let filter = "(? IS NULL OR app = ?) AND (? IS NULL OR level IN (SELECT value FROM json_each(?)))
             AND (? IS NULL OR source = ?) AND (? IS NULL OR message LIKE ? ESCAPE '\\' OR meta_json LIKE ? ESCAPE '\\')
             AND (? IS NULL OR ts >= ?) AND (? IS NULL OR ts <= ?)";
        macro_rules! bind_filter {
            ($q:expr) => {
                $q.bind(&f.app)
                    .bind(&f.app)
                    .bind(&levels)
                    .bind(&levels)
                    .bind(&f.source)
                    .bind(&f.source)
                    .bind(&like)
                    .bind(&like)
                    .bind(&like)
                    .bind(&f.since)
                    .bind(&f.since)
                    .bind(&f.until)
                    .bind(&f.until)
            };
        }
        let total: i64 = bind_filter!(sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM event_log WHERE {filter}"
        ))))
        .fetch_one(&self.pool)
        .await?;
        let rows = bind_filter!(sqlx::query(AssertSqlSafe(format!(
            "SELECT * FROM event_log WHERE {filter} ORDER BY id DESC LIMIT ? OFFSET ?"
        ))))
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?;
        Ok((
            rows.into_iter()
                .map(|r| LogEntry {
                    id: r.get("id"),
                    ts: r.get("ts"),
                    level: r.get("level"),
                    source: r.get("source"),
                    app: r.get("app"),
                    message: r.get("message"),
                    meta_json: r.get("meta_json"),
                })
                .collect(),
            total,
        ))
    }

    /// Records a snapshot.
    pub async fn insert_snapshot(&self, s: &SnapshotRow) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO snapshots (id, app_id, room, stream_id, file, size_bytes, width, height, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&s.id)
        .bind(s.app_id)
        .bind(&s.room)
        .bind(&s.stream_id)
        .bind(&s.file)
        .bind(s.size_bytes)
        .bind(s.width)
        .bind(s.height)
        .bind(&s.created_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// An app's snapshots, newest first, optionally of one room; and the
    /// total.
    pub async fn list_snapshots(
        &self,
        app_id: i64,
        room: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<SnapshotRow>, i64), DbError> {
        let (rows, total) = self
            .app_page(
                "snapshots",
                "room",
                "created_at",
                app_id,
                room,
                limit,
                offset,
            )
            .await?;
        Ok((rows.into_iter().map(snapshot_from_row).collect(), total))
    }

    /// How many rows and bytes an app's snapshots hold.
    pub async fn snapshot_usage(&self, app_id: i64) -> Result<(i64, i64), DbError> {
        let (count, bytes): (i64, i64) = sqlx::query_as(
            "SELECT COUNT(*), COALESCE(SUM(size_bytes), 0) FROM snapshots WHERE app_id = ?",
        )
        .bind(app_id)
        .fetch_one(&self.pool)
        .await?;
        Ok((count, bytes))
    }

    /// One snapshot of an app.
    pub async fn snapshot(&self, app_id: i64, id: &str) -> Result<Option<SnapshotRow>, DbError> {
        let row = sqlx::query("SELECT * FROM snapshots WHERE app_id = ? AND id = ?")
            .bind(app_id)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(snapshot_from_row))
    }

    /// Deletes a snapshot row; false when there was none.
    pub async fn delete_snapshot(&self, app_id: i64, id: &str) -> Result<bool, DbError> {
        let done = sqlx::query("DELETE FROM snapshots WHERE app_id = ? AND id = ?")
            .bind(app_id)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Every ingress of an app (for deleting the app).
    pub async fn app_ingresses(&self, app_id: i64) -> Result<Vec<IngressRow>, DbError> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {INGRESS_COLUMNS} FROM ingresses WHERE app_id = ? AND deleted_at IS NULL"
        )))
        .bind(app_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(ingress_from_row).collect())
    }

    /// One live (not deleted) ingress of an app.
    pub async fn ingress(&self, app_id: i64, id: &str) -> Result<Option<IngressRow>, DbError> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {INGRESS_COLUMNS} FROM ingresses WHERE app_id = ? AND id = ? AND deleted_at IS NULL"
        )))
        .bind(app_id)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(ingress_from_row))
    }

    /// The live ingress of an app with this stream key hash.
    pub async fn ingress_by_key(
        &self,
        app_id: i64,
        key_hash: &str,
    ) -> Result<Option<IngressRow>, DbError> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {INGRESS_COLUMNS} FROM ingresses WHERE app_id = ? AND key_hash = ? AND deleted_at IS NULL"
        )))
        .bind(app_id)
        .bind(key_hash)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(ingress_from_row))
    }

    /// Deletes an ingress (its key stops working); false when none.
    pub async fn delete_ingress(&self, app_id: i64, id: &str) -> Result<bool, DbError> {
        let r = sqlx::query(
            "UPDATE ingresses SET deleted_at = ?, key_hash = NULL
             WHERE app_id = ? AND id = ? AND deleted_at IS NULL",
        )
        .bind(now_rfc3339())
        .bind(app_id)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Marks a stream active for a new session (one write per connect).
    pub async fn stream_started(
        &self,
        app_id: i64,
        stream_id: &str,
        room: &str,
        identity: &str,
        kind: &str,
        session_id: &str,
    ) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO streams (app_id, stream_id, room, identity, type, status, session_id, started_at)
             VALUES (?, ?, ?, ?, ?, 'active', ?, ?)
             ON CONFLICT(app_id, stream_id) DO UPDATE SET status = 'active', type = excluded.type,
               session_id = excluded.session_id, started_at = excluded.started_at, ended_at = NULL",
        )
        .bind(app_id)
        .bind(stream_id)
        .bind(room)
        .bind(identity)
        .bind(kind)
        .bind(session_id)
        .bind(now_rfc3339())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Marks a stream ended, unless a newer session took it over.
    pub async fn stream_ended(
        &self,
        app_id: i64,
        stream_id: &str,
        session_id: &str,
    ) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE streams SET status = 'ended', ended_at = ?
             WHERE app_id = ? AND stream_id = ? AND session_id = ?",
        )
        .bind(now_rfc3339())
        .bind(app_id)
        .bind(stream_id)
        .bind(session_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Stores the latest device stats on the stream row.
    pub async fn stream_stats(
        &self,
        app_id: i64,
        stream_id: &str,
        session_id: &str,
        json: &str,
    ) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE streams SET last_stats_json = ? WHERE app_id = ? AND stream_id = ? AND session_id = ?",
        )
        .bind(json)
        .bind(app_id)
        .bind(stream_id)
        .bind(session_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Inserts a VOD row at the start of a recording; answers its id.
    pub async fn insert_vod(&self, v: &VodRow) -> Result<i64, DbError> {
        let r = sqlx::query(
            "INSERT INTO vods (app_id, room, stream_id, egress_id, status, file, started_at)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(v.app_id)
        .bind(&v.room)
        .bind(&v.stream_id)
        .bind(&v.egress_id)
        .bind(&v.status)
        .bind(&v.file)
        .bind(&v.started_at)
        .execute(&self.pool)
        .await?;
        Ok(r.last_insert_rowid())
    }

    /// Writes a VOD's state and metadata.
    pub async fn update_vod(&self, v: &VodRow) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE vods SET status = ?, snapshot_file = ?, size_bytes = ?, duration_s = ?,
             width = ?, height = ?, has_audio = ?, error = ?, ended_at = ? WHERE id = ?",
        )
        .bind(&v.status)
        .bind(&v.snapshot_file)
        .bind(v.size_bytes)
        .bind(v.duration_s)
        .bind(v.width)
        .bind(v.height)
        .bind(v.has_audio)
        .bind(&v.error)
        .bind(&v.ended_at)
        .bind(v.id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// One VOD of an app.
    pub async fn vod(&self, app_id: i64, id: i64) -> Result<Option<VodRow>, DbError> {
        let row = sqlx::query("SELECT * FROM vods WHERE app_id = ? AND id = ?")
            .bind(app_id)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(vod_from_row))
    }

    /// A page of an app's VODs (`limit` `None` = all) and the total.
    pub async fn list_vods(
        &self,
        app_id: i64,
        f: &VodFilter,
        limit: Option<i64>,
        offset: i64,
    ) -> Result<(Vec<VodRow>, i64), DbError> {
        const WHERE: &str = "app_id = ? AND (? IS NULL OR room = ?) AND (? IS NULL OR status = ?)
             AND (? IS NULL OR started_at >= ?) AND (? IS NULL OR started_at <= ?)";
        let total: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM vods WHERE {WHERE}"
        )))
        .bind(app_id)
        .bind(&f.room)
        .bind(&f.room)
        .bind(&f.status)
        .bind(&f.status)
        .bind(&f.since)
        .bind(&f.since)
        .bind(&f.until)
        .bind(&f.until)
        .fetch_one(&self.pool)
        .await?;
        // `order` is one of three fixed column names, never user text.
        let dir = if f.desc { "DESC" } else { "ASC" };
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT * FROM vods WHERE {WHERE} ORDER BY {order} {dir}, id {dir} LIMIT ? OFFSET ?",
            order = f.order
        )))
        .bind(app_id)
        .bind(&f.room)
        .bind(&f.room)
        .bind(&f.status)
        .bind(&f.status)
        .bind(&f.since)
        .bind(&f.since)
        .bind(&f.until)
        .bind(&f.until)
        .bind(limit.unwrap_or(-1))
        .bind(offset)
        .fetch_all(&self.pool)
        .await?;
        Ok((rows.into_iter().map(vod_from_row).collect(), total))
    }

    /// Rooms with ready VODs (of one app, or of all), sorted.
    pub async fn recorded_rooms(&self, only: Option<i64>) -> Result<Vec<String>, DbError> {
        sqlx::query_scalar(
            "SELECT DISTINCT room FROM vods WHERE status = 'ready' AND (? IS NULL OR app_id = ?)
             ORDER BY room",
        )
        .bind(only)
        .bind(only)
        .fetch_all(&self.pool)
        .await
    }

    /// Ready VODs of a room (of one app, or of all), oldest first.
    pub async fn room_vods(&self, room: &str, only: Option<i64>) -> Result<Vec<VodRow>, DbError> {
        let rows = sqlx::query(
            "SELECT * FROM vods WHERE status = 'ready' AND room = ? AND (? IS NULL OR app_id = ?)
             ORDER BY started_at, id",
        )
        .bind(room)
        .bind(only)
        .bind(only)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(vod_from_row).collect())
    }

    /// Adds restream bytes to an app's month (`YYYY-MM`).
    pub async fn add_egress(&self, app_id: i64, month: &str, bytes: i64) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO egress_usage (app_id, month, bytes) VALUES (?, ?, ?)
             ON CONFLICT(app_id, month) DO UPDATE SET bytes = bytes + excluded.bytes",
        )
        .bind(app_id)
        .bind(month)
        .bind(bytes)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// An app's restream bytes in a month.
    pub async fn egress(&self, app_id: i64, month: &str) -> Result<i64, DbError> {
        let bytes: Option<i64> =
            sqlx::query_scalar("SELECT bytes FROM egress_usage WHERE app_id = ? AND month = ?")
                .bind(app_id)
                .bind(month)
                .fetch_optional(&self.pool)
                .await?;
        Ok(bytes.unwrap_or(0))
    }

    /// Deletes a VOD row.
    pub async fn delete_vod(&self, app_id: i64, id: i64) -> Result<bool, DbError> {
        let r = sqlx::query("DELETE FROM vods WHERE app_id = ? AND id = ?")
            .bind(app_id)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    /// How many VODs and bytes an app holds.
    pub async fn vod_usage(&self, app_id: i64) -> Result<(i64, i64), DbError> {
        let (count, bytes): (i64, i64) = sqlx::query_as(
            "SELECT COUNT(*), COALESCE(SUM(size_bytes), 0) FROM vods WHERE app_id = ?",
        )
        .bind(app_id)
        .fetch_one(&self.pool)
        .await?;
        Ok((count, bytes))
    }

    /// Recordings a previous run left open: the caller finalizes them from
    /// their files.
    pub async fn unfinished_vods(&self) -> Result<Vec<VodRow>, DbError> {
        let rows = sqlx::query("SELECT * FROM vods WHERE status IN ('recording', 'uploading')")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(vod_from_row).collect())
    }

    /// At start-up: streams still marked active belonged to a previous run.
    pub async fn end_stale_streams(&self) -> Result<u64, DbError> {
        let r = sqlx::query(
            "UPDATE streams SET status = 'ended', ended_at = ? WHERE status = 'active'",
        )
        .bind(now_rfc3339())
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected())
    }
}

const INGRESS_COLUMNS: &str = "id, app_id, input_type, room, participant_identity, participant_name, url, enable_transcoding, key_last4, password_hash, options_json, created_at";

fn vod_from_row(r: sqlx::sqlite::SqliteRow) -> VodRow {
    VodRow {
        id: r.get("id"),
        app_id: r.get("app_id"),
        room: r.get("room"),
        stream_id: r.get("stream_id"),
        egress_id: r.get("egress_id"),
        status: r.get("status"),
        file: r.get("file"),
        snapshot_file: r.get("snapshot_file"),
        size_bytes: r.get("size_bytes"),
        duration_s: r.get("duration_s"),
        width: r.get("width"),
        height: r.get("height"),
        format: r.get("format"),
        has_audio: r.get("has_audio"),
        error: r.get("error"),
        started_at: r.get("started_at"),
        ended_at: r.get("ended_at"),
    }
}

fn stream_from_row(r: sqlx::sqlite::SqliteRow) -> StreamRow {
    StreamRow {
        id: r.get("id"),
        stream_id: r.get("stream_id"),
        room: r.get("room"),
        identity: r.get("identity"),
        kind: r.get("type"),
        status: r.get("status"),
        started_at: r.get("started_at"),
        ended_at: r.get("ended_at"),
        last_stats_json: r.get("last_stats_json"),
    }
}

fn snapshot_from_row(r: sqlx::sqlite::SqliteRow) -> SnapshotRow {
    SnapshotRow {
        id: r.get("id"),
        app_id: r.get("app_id"),
        room: r.get("room"),
        stream_id: r.get("stream_id"),
        file: r.get("file"),
        size_bytes: r.get("size_bytes"),
        width: r.get("width"),
        height: r.get("height"),
        created_at: r.get("created_at"),
    }
}

fn ingress_from_row(r: sqlx::sqlite::SqliteRow) -> IngressRow {
    IngressRow {
        id: r.get("id"),
        app_id: r.get("app_id"),
        input_type: r.get("input_type"),
        room: r.get("room"),
        participant_identity: r.get("participant_identity"),
        participant_name: r.get("participant_name"),
        url: r.get("url"),
        enable_transcoding: r.get::<i64, _>("enable_transcoding") != 0,
        key_last4: r.get("key_last4"),
        password_hash: r.get("password_hash"),
        options: r.get("options_json"),
        created_at: r.get("created_at"),
    }
}

fn ws_key_from_row(r: sqlx::sqlite::SqliteRow) -> WsKey {
    WsKey {
        id: r.get("id"),
        app_id: r.get("app_id"),
        room: r.get("room"),
        identity: r.get("identity"),
        key_last4: r.get("key_last4"),
        created_at: r.get("created_at"),
    }
}

/// A feature flag from an app's settings (`{"features": {...}}`); missing
/// flags take the scaffold default of a new app.
const APP_COLUMNS: &str = "SELECT id, name, display_name, room_prefix, public_playback, \
     settings_json, max_concurrent_streams, created_at, updated_at FROM apps";

fn app_from_row(r: sqlx::sqlite::SqliteRow) -> App {
    let settings = r
        .get::<Option<String>, _>("settings_json")
        .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
        .filter(serde_json::Value::is_object)
        .unwrap_or_else(|| serde_json::json!({}));
    let hidden_qc = settings
        .get("features")
        .and_then(|f| f.get("hiddenQc"))
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(true);
    App {
        id: r.get("id"),
        name: r.get("name"),
        display_name: r.get("display_name"),
        room_prefix: r.get("room_prefix"),
        public_playback: r.get::<i64, _>("public_playback") != 0,
        hidden_qc,
        max_concurrent_streams: r.get("max_concurrent_streams"),
        settings,
        created_at: r.get("created_at"),
        updated_at: r.get("updated_at"),
    }
}
