-- Chat and reaction messages of a room (topic `chat` or `reaction`), kept
-- per stream so they can be read after the stream ends. Written by the
-- server-side send (POST …/streams/{id}/data) and by WebRTC participants
-- sending on the data channel, while the app's chat/reactions flag is on.
CREATE TABLE chat_messages (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    app_id      INTEGER NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    room        TEXT NOT NULL,
    stream_id   TEXT,
    topic       TEXT NOT NULL,
    sender      TEXT NOT NULL,
    message     TEXT,
    reaction    TEXT,
    source      TEXT NOT NULL,
    ts          TEXT NOT NULL
);
CREATE INDEX chat_messages_app_room ON chat_messages(app_id, room, id);
CREATE INDEX chat_messages_app_stream ON chat_messages(app_id, stream_id, id);
