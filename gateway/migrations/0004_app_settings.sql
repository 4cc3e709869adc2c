-- RTMP stream passwords (the app's rtmpPassword feature): SHA-256 only.
ALTER TABLE ingresses ADD COLUMN password_hash TEXT;
-- Pulled cameras (`url` ingresses): transport, poll rate and camera quirk
-- policies as JSON. The URL (credentials included, needed to reconnect)
-- is in `url` and never returned with its credentials.
ALTER TABLE ingresses ADD COLUMN options_json TEXT;
