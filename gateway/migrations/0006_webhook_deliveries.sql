-- Webhook delivery log, bounded per app (the newest rows are kept).
CREATE TABLE webhook_deliveries (
    id          TEXT PRIMARY KEY,
    app_id      INTEGER NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    event       TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('delivered', 'failed')),
    attempts    INTEGER NOT NULL,
    http_status INTEGER,
    error       TEXT,
    created_at  TEXT NOT NULL,
    seq         INTEGER
);
CREATE INDEX webhook_deliveries_app ON webhook_deliveries(app_id, created_at);
