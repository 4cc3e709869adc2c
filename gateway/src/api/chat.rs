//! Chat and reactions (seed 001 "Streams", reference §4.5 and §5.3).
//!
//! Messages ride the room's WebRTC data channel as UTF-8 JSON
//! `{ "topic": "chat" | "reaction", "from", "message" | "reaction", "ts", "id" }`.
//! Two ways in: a participant sends such a JSON on its data channel (the SFU
//! relays it to the room; camgate keeps it with the sender's identity, not
//! whatever `from` the payload claims), or an integration calls
//! `POST /api/v1/apps/{app}/streams/{id}/data` (`stream:write`), which
//! camgate sends into the room itself. Either way, while the app's `chat`
//! (or `reactions`) flag is on, the message is stored with the stream and
//! fires the `chat_message` (or `reaction`) callback; with the flag off the
//! server-side send answers 404 `feature_disabled`, as the reference does.
//! `GET …/streams/{id}/chat` reads a stream's messages back, oldest first.

use axum::extract::{Path, Query, State};
use axum::http::Method;
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;

use super::catalog::{Access, Routes};
use super::native::app_for;
use super::{ApiError, ApiJson, Auth, ok};
use crate::auth::now_rfc3339;
use crate::hub::RoomKey;
use crate::server::{AppState, SharedState};
use crate::store::{App, ChatRow};

/// Longest chat message, in characters.
pub const MAX_MESSAGE: usize = 2000;
/// Longest reaction, in characters.
pub const MAX_REACTION: usize = 32;
/// Longest sender identity.
const MAX_FROM: usize = 120;

/// Routes under `/api/v1`.
pub fn routes() -> Routes {
    Routes::new()
        .op(
            Method::POST,
            "/apps/{app}/streams/{id}/data",
            Access::App("stream:write"),
            "Send a chat message or reaction into the stream's room",
            send,
        )
        .example(json!({ "topic": "chat", "from": "moderator", "message": "Welcome!" }))
        .op(
            Method::GET,
            "/apps/{app}/streams/{id}/chat",
            Access::App("stream:read"),
            "A stream's stored chat and reactions, oldest first (?after, limit, offset)",
            history,
        )
}

/// Body of `POST …/streams/{id}/data`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SendData {
    #[serde(default)]
    topic: Option<String>,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    reaction: Option<String>,
}

/// A message, checked: topic and its one payload field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// `topic: "chat"`.
    Chat(String),
    /// `topic: "reaction"`.
    Reaction(String),
}

impl Payload {
    /// Checks a topic and its fields; errors name the field.
    pub fn parse(
        topic: Option<&str>,
        message: Option<String>,
        reaction: Option<String>,
    ) -> Result<Payload, (&'static str, String)> {
        let topic = topic.unwrap_or(if reaction.is_some() {
            "reaction"
        } else {
            "chat"
        });
        match topic {
            "chat" => {
                let m = message.ok_or(("invalid_message", "chat needs a message".into()))?;
                if m.trim().is_empty() || m.chars().count() > MAX_MESSAGE {
                    return Err((
                        "invalid_message",
                        format!("message must be 1 to {MAX_MESSAGE} characters"),
                    ));
                }
                Ok(Payload::Chat(m))
            }
            "reaction" => {
                let r = reaction.ok_or(("invalid_reaction", "reaction needs a reaction".into()))?;
                if r.trim().is_empty() || r.chars().count() > MAX_REACTION {
                    return Err((
                        "invalid_reaction",
                        format!("reaction must be 1 to {MAX_REACTION} characters"),
                    ));
                }
                Ok(Payload::Reaction(r))
            }
            _ => Err(("invalid_topic", "topic is chat or reaction".into())),
        }
    }

    fn feature(&self) -> &'static str {
        match self {
            Payload::Chat(_) => "chat",
            Payload::Reaction(_) => "reactions",
        }
    }
}

/// Stores a message and fires its callback, if the app's flag for its
/// topic is on; answers the stored row (`None` with the flag off).
pub async fn record(
    state: &AppState,
    app: &App,
    room: &str,
    stream_id: Option<String>,
    from: &str,
    payload: Payload,
    source: &str,
) -> Result<Option<ChatRow>, ApiError> {
    if !app.feature(payload.feature()) {
        return Ok(None);
    }
    let (topic, message, reaction) = match payload {
        Payload::Chat(m) => ("chat", Some(m), None),
        Payload::Reaction(r) => ("reaction", None, Some(r)),
    };
    let mut row = ChatRow {
        id: 0,
        room: room.to_owned(),
        stream_id,
        topic: topic.into(),
        sender: from.to_owned(),
        message,
        reaction,
        source: source.into(),
        ts: now_rfc3339(),
    };
    row.id = state.db.insert_chat(app.id, &row).await?;
    let (event, mut data) = if topic == "chat" {
        (
            "chat_message",
            json!({ "room": row.room, "from": row.sender, "message": row.message, "ts": row.ts }),
        )
    } else {
        (
            "reaction",
            json!({ "room": row.room, "from": row.sender, "reaction": row.reaction, "ts": row.ts }),
        )
    };
    data["streamId"] = json!(row.stream_id);
    data["topic"] = json!(topic);
    state.webhooks.emit(&app.name, event, data);
    Ok(Some(row))
}

/// The data-channel JSON of a message.
fn wire(row: &ChatRow) -> Vec<u8> {
    let mut v = json!({ "id": row.id, "topic": row.topic, "from": row.sender, "ts": row.ts });
    match (&row.message, &row.reaction) {
        (Some(m), _) => v["message"] = json!(m),
        (_, Some(r)) => v["reaction"] = json!(r),
        _ => {}
    }
    v.to_string().into_bytes()
}

async fn send(
    State(state): State<SharedState>,
    Auth(who): Auth,
    Path((app, id)): Path<(String, String)>,
    ApiJson(body): ApiJson<SendData>,
) -> Result<Response, ApiError> {
    let app = app_for(&state, &who, &app, "stream:write").await?;
    let stream = super::streams::load(&state, &app, &id).await?;
    let payload = Payload::parse(body.topic.as_deref(), body.message, body.reaction)
        .map_err(|(code, m)| ApiError::bad_request(code, m))?;
    let from = body.from.unwrap_or_else(|| "server".into());
    if from.trim().is_empty() || from.chars().count() > MAX_FROM {
        return Err(ApiError::bad_request(
            "invalid_from",
            format!("from must be 1 to {MAX_FROM} characters"),
        ));
    }
    let feature = payload.feature();
    let row = record(
        &state,
        &app,
        &stream.room,
        Some(stream.stream_id.clone()),
        &from,
        payload,
        "api",
    )
    .await?
    .ok_or_else(|| {
        ApiError::not_found(
            "feature_disabled",
            format!("the app's {feature} feature is off"),
        )
    })?;
    let key = RoomKey {
        app: app.name.clone(),
        room: stream.room.clone(),
    };
    state
        .media
        .sfu()
        .send_data(&crate::webrtc::sfu_room(&key), wire(&row), false)
        .await;
    Ok(ok(row))
}

#[derive(Debug, Deserialize)]
struct HistoryQuery {
    after: Option<String>,
    limit: Option<String>,
    offset: Option<String>,
}

async fn history(
    State(state): State<SharedState>,
    Auth(who): Auth,
    Path((app, id)): Path<(String, String)>,
    Query(q): Query<HistoryQuery>,
) -> Result<Response, ApiError> {
    let app = app_for(&state, &who, &app, "stream:read").await?;
    let stream = super::streams::load(&state, &app, &id).await?;
    let after = match q.after.as_deref() {
        None => 0,
        Some(a) => a
            .parse::<i64>()
            .ok()
            .filter(|a| *a >= 0)
            .ok_or_else(|| ApiError::bad_request("invalid_after", "after must be an id ≥ 0"))?,
    };
    let (limit, offset) = super::paging(q.limit.as_deref(), q.offset.as_deref(), 100, 1000)?;
    let (rows, total) = state
        .db
        .list_chat(app.id, &stream.stream_id, after, limit, offset)
        .await?;
    Ok(super::page(rows, total, limit, offset))
}

/// A WebRTC participant's data-channel message (already relayed by the
/// SFU): stored and called back when it is chat or a reaction and the app
/// has the flag on. Anything else on the channel is the app's own business.
pub async fn from_participant(state: &AppState, sfu_room: &str, from: &str, payload: &[u8]) {
    #[derive(Deserialize)]
    struct Incoming {
        topic: Option<String>,
        message: Option<String>,
        reaction: Option<String>,
    }
    let Ok(msg) = serde_json::from_slice::<Incoming>(payload) else {
        return;
    };
    let Some(topic) = msg.topic.as_deref() else {
        return;
    };
    let Ok(payload) = Payload::parse(Some(topic), msg.message, msg.reaction) else {
        return;
    };
    let Some((app, room)) = sfu_room.split_once('/') else {
        return;
    };
    let Ok(Some(app)) = state.db.app_by_name(app).await else {
        return;
    };
    let stream_id = state.db.active_stream_id(app.id, room).await.ok().flatten();
    if let Err(e) = record(state, &app, room, stream_id, from, payload, "webrtc").await {
        tracing::warn!(error = %e, "could not store a chat message");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_checks_name_the_field() {
        assert_eq!(
            Payload::parse(None, Some("hi".into()), None),
            Ok(Payload::Chat("hi".into()))
        );
        assert_eq!(
            Payload::parse(None, None, Some("👍".into())),
            Ok(Payload::Reaction("👍".into()))
        );
        assert_eq!(
            Payload::parse(Some("chat"), None, None)
                .expect_err("refused")
                .0,
            "invalid_message"
        );
        assert_eq!(
            Payload::parse(Some("chat"), Some("x".repeat(MAX_MESSAGE + 1)), None)
                .expect_err("refused")
                .0,
            "invalid_message"
        );
        assert_eq!(
            Payload::parse(Some("reaction"), None, Some("  ".into()))
                .expect_err("refused")
                .0,
            "invalid_reaction"
        );
        assert_eq!(
            Payload::parse(Some("poll"), None, None)
                .expect_err("refused")
                .0,
            "invalid_topic"
        );
    }
}
