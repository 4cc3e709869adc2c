-- The event log behind GET /logs: camgate's own info/warn/error events,
-- bounded (the newest rows are kept).
CREATE TABLE event_log (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    ts        TEXT NOT NULL,
    level     TEXT NOT NULL,
    source    TEXT NOT NULL,
    app       TEXT,
    message   TEXT NOT NULL,
    meta_json TEXT
);
CREATE INDEX event_log_app_ts ON event_log(app, ts);
CREATE INDEX event_log_ts ON event_log(ts);
