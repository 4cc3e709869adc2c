-- Recordings and the VODs they become. The file lives in
-- <data-dir>/recordings/<app>/<file>; `file` and `snapshot_file` are paths
-- relative to the data dir. status: recording → uploading (finalizing) →
-- ready, or failed (the file is kept).
CREATE TABLE vods (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    app_id         INTEGER NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    room           TEXT NOT NULL,
    stream_id      TEXT NOT NULL,
    egress_id      TEXT NOT NULL UNIQUE,
    status         TEXT NOT NULL,
    file           TEXT NOT NULL,
    snapshot_file  TEXT,
    size_bytes     INTEGER NOT NULL DEFAULT 0,
    duration_s     REAL NOT NULL DEFAULT 0,
    width          INTEGER,
    height         INTEGER,
    format         TEXT NOT NULL DEFAULT 'mp4',
    has_audio      INTEGER NOT NULL DEFAULT 0,
    error          TEXT,
    started_at     TEXT NOT NULL,
    ended_at       TEXT
);
CREATE INDEX vods_app_started ON vods(app_id, started_at);
CREATE INDEX vods_app_room ON vods(app_id, room, started_at);
