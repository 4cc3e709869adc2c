-- Apps are the tenants: each has its own room prefix and settings.
CREATE TABLE apps (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    name            TEXT NOT NULL UNIQUE,
    display_name    TEXT NOT NULL,
    room_prefix     TEXT NOT NULL,
    public_playback INTEGER NOT NULL DEFAULT 1,
    max_cameras     INTEGER NOT NULL DEFAULT 0,
    settings_json   TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);

-- API tokens (sk_...): only the SHA-256 of the token is stored.
CREATE TABLE api_tokens (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    name             TEXT NOT NULL,
    scope            TEXT NOT NULL CHECK (scope IN ('global', 'app')),
    app_id           INTEGER REFERENCES apps(id) ON DELETE CASCADE,
    token_hash       TEXT NOT NULL UNIQUE,
    permissions_json TEXT,
    allowed_ips_json TEXT,
    bootstrap        INTEGER NOT NULL DEFAULT 0,
    created_at       TEXT NOT NULL,
    expires_at       TEXT,
    last_used_at     TEXT,
    revoked          INTEGER NOT NULL DEFAULT 0
);

-- Camera keys (wsk_...) for the device WebSocket: hashed, bound to a room.
CREATE TABLE ws_ingest_keys (
    id          TEXT PRIMARY KEY,
    app_id      INTEGER NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    room        TEXT NOT NULL,
    identity    TEXT NOT NULL,
    key_hash    TEXT NOT NULL UNIQUE,
    key_last4   TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    revoked_at  TEXT
);
CREATE INDEX ws_ingest_keys_app ON ws_ingest_keys(app_id);

-- Streams: one row per (app, stream id), updated on connect and close only.
CREATE TABLE streams (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    app_id          INTEGER NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    stream_id       TEXT NOT NULL,
    room            TEXT NOT NULL,
    identity        TEXT NOT NULL,
    type            TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('active', 'ended')),
    session_id      TEXT NOT NULL,
    started_at      TEXT NOT NULL,
    ended_at        TEXT,
    last_stats_json TEXT,
    UNIQUE (app_id, stream_id)
);
