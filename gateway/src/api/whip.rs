//! WHIP and WHEP (RFC 9725 and its playback twin), in the shape seed 004
//! lists: `POST /whip/{streamId}`, `POST /whep/{streamId}`,
//! `PATCH /session/{streamId}/{sessionId}` and
//! `DELETE /session/{streamId}/{sessionId}`.
//!
//! * The streamId is the namespaced room (`live-cam1`; a bare `cam1` is
//!   namespaced with the app's prefix). The app comes from the join token,
//!   else `?app=`, else `live`.
//! * Auth is a join token as Bearer: publishing needs `canPublish`, playing
//!   `canSubscribe`, and the token's room must be the streamId. Without a
//!   token, WHEP is allowed only where the app's `publicPlayback` is on.
//! * The session id in the `Location` URL is 128 random bits: holding it is
//!   what allows PATCH and DELETE, as in other WHIP servers.
//! * Errors use seed 002's codes (`token_invalid`, `token_expired`,
//!   `role_insufficient`, `room_full`, `no_publisher_available`,
//!   `invalid_sdp`) in camgate's `{data, error}` envelope.
//! * The SFU is ICE-lite with host candidates only, so trickled client
//!   candidates are accepted but rarely needed; ICE restarts are answered
//!   422 as RFC 9725 §4.3.1 asks of servers without them.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{patch, post};
use camgate_protocols::api::{namespace_room, validate_slug};
use serde::Deserialize;

use super::ApiError;
use crate::auth::jwt::TokenError;
use crate::hub::RoomKey;
use crate::server::SharedState;
use crate::store::App;
use crate::webrtc::{Created, Media, MediaError, Participant};

/// Largest SDP offer or fragment accepted.
const MAX_SDP: usize = 64 * 1024;

/// Prefix of WHIP ingress keys (see `api::ingress`).
pub const WHIP_KEY_PREFIX: &str = "wk-";

/// The WHIP/WHEP routes, with CORS for browsers.
pub fn routes() -> Router<SharedState> {
    Router::new()
        .route("/whip/{stream}", post(whip).options(preflight))
        .route("/whep/{stream}", post(whep).options(preflight))
        .route(
            "/session/{stream}/{session}",
            patch(trickle).delete(end).options(preflight),
        )
        .layer(DefaultBodyLimit::max(MAX_SDP))
        .layer(axum::middleware::map_response(cors))
}

async fn cors(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("Location, ETag, Link, Accept-Patch"),
    );
    res
}

async fn preflight() -> Response {
    (
        StatusCode::NO_CONTENT,
        [
            (
                header::ACCESS_CONTROL_ALLOW_METHODS,
                "POST, PATCH, DELETE, OPTIONS",
            ),
            (
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                "Authorization, Content-Type, If-Match",
            ),
            (header::ACCESS_CONTROL_MAX_AGE, "86400"),
            (
                header::HeaderName::from_static("accept-post"),
                "application/sdp",
            ),
        ],
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
struct AppQuery {
    app: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Want {
    Publish,
    Play,
}

fn unauthorized(code: &'static str, message: &str) -> ApiError {
    ApiError::status(StatusCode::UNAUTHORIZED, code, message)
}

/// Resolves app, room and participant from the token (or anonymous play).
async fn authorize(
    state: &SharedState,
    headers: &HeaderMap,
    app_query: Option<String>,
    stream: &str,
    want: Want,
) -> Result<(App, RoomKey, Participant), ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim().to_owned())
        .filter(|t| !t.is_empty());
    // A WHIP ingress key (`wk-…`, from the ingress API) publishes to its
    // ingress's room only.
    if let Some(t) = token.as_deref().filter(|t| t.starts_with(WHIP_KEY_PREFIX)) {
        let app = super::native::load_app(state, app_query.as_deref().unwrap_or("live")).await?;
        validate_slug(stream)
            .map_err(|e| ApiError::bad_request("invalid_room", format!("streamId {e}")))?;
        let room = namespace_room(&app.room_prefix, Some(stream));
        if want != Want::Publish {
            return Err(ApiError::Forbidden {
                code: "role_insufficient",
                message: "an ingress key can only publish".into(),
            });
        }
        let ingress = state
            .db
            .ingress_by_key(app.id, &crate::auth::hash_secret(t))
            .await?
            .filter(|i| i.input_type == "whip")
            .ok_or_else(|| unauthorized("token_invalid", "unknown ingress key"))?;
        if ingress.room != room {
            return Err(ApiError::Forbidden {
                code: "room_mismatch",
                message: "the ingress key is for another room".into(),
            });
        }
        let key = RoomKey {
            app: app.name.clone(),
            room,
        };
        let who = Participant {
            identity: ingress.participant_identity,
            hidden: false,
            audio_only: false,
        };
        return Ok((app, key, who));
    }
    let claims = match &token {
        Some(t) => Some(state.keys.verify(t).map_err(|e| match e {
            TokenError::Expired => unauthorized("token_expired", "token has expired"),
            _ => unauthorized("token_invalid", "token signature is invalid"),
        })?),
        None => None,
    };
    let app_name = claims
        .as_ref()
        .map(|c| c.app.clone())
        .or(app_query)
        .unwrap_or_else(|| "live".to_owned());
    let app = super::native::load_app(state, &app_name).await?;
    validate_slug(stream)
        .map_err(|e| ApiError::bad_request("invalid_room", format!("streamId {e}")))?;
    let room = namespace_room(&app.room_prefix, Some(stream));
    let key = RoomKey {
        app: app.name.clone(),
        room: room.clone(),
    };
    let who = match claims {
        Some(c) => {
            if c.video.room != room {
                return Err(ApiError::Forbidden {
                    code: "room_mismatch",
                    message: "token is for another room".into(),
                });
            }
            let allowed = match want {
                Want::Publish => c.video.can_publish,
                Want::Play => c.video.can_subscribe,
            };
            if !allowed {
                return Err(ApiError::Forbidden {
                    code: "role_insufficient",
                    message: "token role cannot perform this action".into(),
                });
            }
            Participant {
                identity: c.sub,
                hidden: c.video.hidden,
                audio_only: c.video.audio_only,
            }
        }
        None if want == Want::Play && app.public_playback => Participant {
            identity: crate::auth::random_id("viewer-", 4),
            hidden: false,
            audio_only: false,
        },
        None => {
            return Err(unauthorized(
                "auth_header_missing",
                "a join token is required (Authorization: Bearer …)",
            ));
        }
    };
    Ok((app, key, who))
}

fn sdp_body(headers: &HeaderMap, body: &Bytes, expected: &str) -> Result<String, ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let ct = ct.split(';').next().unwrap_or("").trim();
    if !ct.eq_ignore_ascii_case(expected) {
        return Err(ApiError::status(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("Content-Type must be {expected}"),
        ));
    }
    String::from_utf8(body.to_vec())
        .map_err(|_| ApiError::bad_request("invalid_sdp", "SDP is not UTF-8"))
}

fn media_error(e: MediaError) -> ApiError {
    match e {
        MediaError::RoomFull => ApiError::status(
            StatusCode::CONFLICT,
            "room_full",
            "room already has a publisher",
        ),
        MediaError::NoPublisher => {
            ApiError::not_found("no_publisher_available", "room has no active publisher")
        }
        MediaError::ViewerLimit => ApiError::status(
            StatusCode::TOO_MANY_REQUESTS,
            "viewer_limit",
            "the stream has the most viewers allowed",
        ),
        MediaError::InvalidSdp(m) => {
            ApiError::bad_request("invalid_sdp", format!("malformed SDP offer: {m}"))
        }
        MediaError::InvalidCandidate(m) => ApiError::bad_request("invalid_candidate", m),
        MediaError::UnknownSession => ApiError::not_found("session_not_found", "no such session"),
        MediaError::Unavailable => ApiError::status(
            StatusCode::SERVICE_UNAVAILABLE,
            "peer_connection_failed",
            "media engine unavailable",
        ),
    }
}

fn answer(stream: &str, created: Created) -> Response {
    let location = format!("/session/{stream}/{}", created.session_id);
    (
        StatusCode::CREATED,
        [
            (header::CONTENT_TYPE, "application/sdp".to_owned()),
            (header::LOCATION, location),
            (header::ETAG, created.etag),
            (
                header::HeaderName::from_static("accept-patch"),
                "application/trickle-ice-sdpfrag".to_owned(),
            ),
        ],
        created.answer,
    )
        .into_response()
}

async fn whip(
    State(state): State<SharedState>,
    Path(stream): Path<String>,
    Query(q): Query<AppQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (app, key, who) = authorize(&state, &headers, q.app, &stream, Want::Publish).await?;
    let offer = sdp_body(&headers, &body, "application/sdp")?;
    let room = key.room.clone();
    let created = Media::publish(&state, key, app.id, who, offer)
        .await
        .map_err(media_error)?;
    Ok(answer(&room, created))
}

async fn whep(
    State(state): State<SharedState>,
    Path(stream): Path<String>,
    Query(q): Query<AppQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (app, key, who) = authorize(&state, &headers, q.app, &stream, Want::Play).await?;
    let offer = sdp_body(&headers, &body, "application/sdp")?;
    let room = key.room.clone();
    let created = Media::play(&state, key, app.id, who, offer)
        .await
        .map_err(media_error)?;
    Ok(answer(&room, created))
}

/// Checks that the session exists and belongs to the stream in the URL.
fn session_of(state: &SharedState, stream: &str, session: &str) -> Result<(), ApiError> {
    match state.media.session_room(session) {
        Some(room) if room == stream || room.ends_with(&format!("-{stream}")) => Ok(()),
        _ => Err(ApiError::not_found("session_not_found", "no such session")),
    }
}

async fn trickle(
    State(state): State<SharedState>,
    Path((stream, session)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    session_of(&state, &stream, &session)?;
    let etag = state.media.etag(&session).unwrap_or_default();
    if let Some(m) = headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok())
        && m.trim() != "*"
        && m.trim() != etag
    {
        return Err(ApiError::status(
            StatusCode::PRECONDITION_FAILED,
            "precondition_failed",
            "If-Match does not match the ICE session",
        ));
    }
    let frag = sdp_body(&headers, &body, "application/trickle-ice-sdpfrag")?;
    if frag.lines().any(|l| l.trim().starts_with("a=ice-ufrag:")) && frag.contains("a=ice-pwd:") {
        // A new ufrag/pwd pair asks for an ICE restart.
        return Err(ApiError::status(
            StatusCode::UNPROCESSABLE_ENTITY,
            "ice_restart_unsupported",
            "ICE restarts are not supported; start a new session",
        ));
    }
    let candidates: Vec<String> = frag
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("a=candidate:"))
        .map(str::to_owned)
        .collect();
    let etag = state
        .media
        .trickle(&session, candidates)
        .await
        .map_err(media_error)?;
    Ok((StatusCode::NO_CONTENT, [(header::ETAG, etag)]).into_response())
}

async fn end(
    State(state): State<SharedState>,
    Path((stream, session)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    session_of(&state, &stream, &session)?;
    state.media.end(&session).await.map_err(media_error)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
