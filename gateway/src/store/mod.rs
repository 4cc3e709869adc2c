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
    /// Room prefix.
    pub room_prefix: String,
    /// Playback routes need no token.
    pub public_playback: bool,
    /// `hiddenQc` feature: hidden/recorder join tokens allowed.
    pub hidden_qc: bool,
    /// Live publishers allowed at once (0 = unlimited).
    pub max_concurrent_streams: i64,
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
    /// Creation time.
    pub created_at: String,
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
        let row =
            sqlx::query("SELECT id, name, room_prefix, public_playback, settings_json, max_concurrent_streams FROM apps WHERE name = ?")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|r| App {
            id: r.get("id"),
            name: r.get("name"),
            room_prefix: r.get("room_prefix"),
            public_playback: r.get::<i64, _>("public_playback") != 0,
            hidden_qc: feature(r.get("settings_json"), "hiddenQc", true),
            max_concurrent_streams: r.get("max_concurrent_streams"),
        }))
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
            "SELECT id, scope, app_id, token_hash, permissions_json, expires_at
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
        Ok(Some(TokenRow {
            id,
            scope: r.get("scope"),
            app_id: r.get("app_id"),
            token_hash: r.get("token_hash"),
            permissions: permissions.and_then(|p| serde_json::from_str(&p).ok()),
            expires_at: r.get("expires_at"),
        }))
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
               participant_name, url, enable_transcoding, key_hash, key_last4, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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

const INGRESS_COLUMNS: &str = "id, app_id, input_type, room, participant_identity, participant_name, url, enable_transcoding, key_last4, created_at";

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
fn feature(settings_json: Option<String>, name: &str, default: bool) -> bool {
    settings_json
        .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
        .and_then(|v| v.get("features")?.get(name)?.as_bool())
        .unwrap_or(default)
}
