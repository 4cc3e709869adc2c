-- On-demand frame captures (POST /apps/{app}/snapshots). The JPEG lives in
-- <data-dir>/snapshots/<app>/<id>.jpg; `file` is that path relative to the
-- data dir.
CREATE TABLE snapshots (
    id          TEXT PRIMARY KEY,
    app_id      INTEGER NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    room        TEXT NOT NULL,
    stream_id   TEXT,
    file        TEXT NOT NULL,
    size_bytes  INTEGER NOT NULL,
    width       INTEGER,
    height      INTEGER,
    created_at  TEXT NOT NULL
);
CREATE INDEX snapshots_app_room ON snapshots(app_id, room, created_at);
