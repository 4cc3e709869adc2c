-- Bytes an app sent to restream destinations, per calendar month (UTC,
-- 'YYYY-MM'): the egress quota (maxEgressGbMonth) is checked against it.
CREATE TABLE egress_usage (
    app_id  INTEGER NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    month   TEXT NOT NULL,
    bytes   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (app_id, month)
);
