-- Ingresses (seed 001 "Ingress"): an RTMP push point today, pulled URLs
-- later. The RTMP stream key is stored as its SHA-256 only.
CREATE TABLE ingresses (
    id                   TEXT PRIMARY KEY,
    app_id               INTEGER NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    input_type           TEXT NOT NULL CHECK (input_type IN ('rtmp', 'whip', 'url')),
    room                 TEXT NOT NULL,
    participant_identity TEXT NOT NULL,
    participant_name     TEXT,
    url                  TEXT,
    enable_transcoding   INTEGER NOT NULL DEFAULT 0,
    key_hash             TEXT UNIQUE,
    key_last4            TEXT,
    created_at           TEXT NOT NULL,
    deleted_at           TEXT
);
CREATE INDEX ingresses_app ON ingresses(app_id, created_at);
