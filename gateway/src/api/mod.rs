//! HTTP API plumbing shared by every API shape: the error type with stable
//! codes, the `{ "data", "error" }` envelope, JSON bodies and bearer auth.

pub mod api_tokens;
pub mod apps;
pub mod catalog;
pub mod chat;
pub mod config;
pub mod ingress;
pub mod limits;
pub mod native;
pub mod restream;
pub mod snapshots;
pub mod stats;
pub mod streams;
pub mod tokens;
pub mod vods;
pub mod whip;

use axum::Json;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use camgate_protocols::api::{Envelope, ErrorBody};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::auth::{Denied, Principal, hash_secret};
use crate::server::SharedState;

/// Every error an API route can answer with. User mistakes keep their
/// precise message; internal failures are logged and answered generically.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// 400: the request is malformed; `code` names the field or problem.
    #[error("{message}")]
    BadRequest {
        /// Stable code, e.g. `invalid_room`.
        code: &'static str,
        /// What is wrong.
        message: String,
    },
    /// 400 for a body that does not parse: `code` is `invalid_json`,
    /// `unknown_field`, `missing_field` or `invalid_field`, and `field`
    /// names the field.
    #[error("{message}")]
    InvalidBody {
        /// Stable code.
        code: &'static str,
        /// What is wrong.
        message: String,
        /// The field's path (`permissions[0]`), if the error has one.
        field: Option<String>,
    },
    /// 401: missing, unknown, revoked or expired credential.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// 403: the credential may not do this.
    #[error("{message}")]
    Forbidden {
        /// Stable code, e.g. `permission_denied`.
        code: &'static str,
        /// What is missing.
        message: String,
    },
    /// 404: no such resource.
    #[error("{message}")]
    NotFound {
        /// Stable code, e.g. `app_not_found`.
        code: &'static str,
        /// What was not found.
        message: String,
    },
    /// 413: body too large.
    #[error("request body too large")]
    PayloadTooLarge,
    /// Any other status with a stable code (401 `token_expired`, 409
    /// `room_full`, 415, 422, …).
    #[error("{message}")]
    Status {
        /// The HTTP status.
        status: StatusCode,
        /// Stable code.
        code: &'static str,
        /// What happened.
        message: String,
    },
    /// 500: a bug or a failing dependency; the detail is only logged.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    /// A 404 with a code and message.
    pub fn not_found(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::NotFound {
            code,
            message: message.into(),
        }
    }

    /// A 400 with a code and message.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::BadRequest {
            code,
            message: message.into(),
        }
    }

    /// An error with any status and a stable code.
    pub fn status(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::Status {
            status,
            code,
            message: message.into(),
        }
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest { code, .. } | ApiError::InvalidBody { code, .. } => {
                (StatusCode::BAD_REQUEST, code)
            }
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden { code, .. } => (StatusCode::FORBIDDEN, code),
            ApiError::NotFound { code, .. } => (StatusCode::NOT_FOUND, code),
            ApiError::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::Status { status, code, .. } => (*status, code),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal_error"),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        ApiError::Internal(format!("database: {e}"))
    }
}

impl From<Denied> for ApiError {
    fn from(d: Denied) -> Self {
        match d {
            Denied::OtherApp => ApiError::Forbidden {
                code: "permission_denied",
                message: "token is not valid for this app".into(),
            },
            Denied::GlobalOnly => ApiError::Forbidden {
                code: "permission_denied",
                message: "this route needs a global API token".into(),
            },
            Denied::Missing(p) => ApiError::Forbidden {
                code: "permission_denied",
                message: format!("missing permission {p}"),
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if let ApiError::Internal(detail) = &self {
            tracing::error!(%detail, "internal error answering a request");
        }
        let field = match &self {
            ApiError::InvalidBody { field, .. } => field.clone(),
            _ => None,
        };
        let body = Envelope::<()> {
            data: None,
            error: Some(ErrorBody {
                code: code.to_owned(),
                message: self.to_string(),
                field,
            }),
        };
        (status, Json(body)).into_response()
    }
}

/// 200 with `{ "data": value, "error": null }`.
pub fn ok<T: Serialize>(value: T) -> Response {
    Json(Envelope {
        data: Some(value),
        error: None,
    })
    .into_response()
}

/// 201 with `{ "data": value, "error": null }`.
pub fn created<T: Serialize>(value: T) -> Response {
    (
        StatusCode::CREATED,
        Json(Envelope {
            data: Some(value),
            error: None,
        }),
    )
        .into_response()
}

/// 200 with a JPEG image.
pub fn jpeg(bytes: impl Into<axum::body::Body>) -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "image/jpeg")],
        bytes.into(),
    )
        .into_response()
}

/// A JSON body whose rejections answer in the envelope with a 400/413.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json = req
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|m| {
                let m = m.trim();
                m.eq_ignore_ascii_case("application/json")
                    || (m.starts_with("application/") && m.ends_with("+json"))
            });
        if !json {
            return Err(ApiError::status(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as Content-Type: application/json",
            ));
        }
        let bytes = match axum::body::Bytes::from_request(req, state).await {
            Ok(b) => b,
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                return Err(ApiError::PayloadTooLarge);
            }
            Err(e) => return Err(ApiError::bad_request("invalid_body", e.body_text())),
        };
        parse_body(&bytes).map(ApiJson)
    }
}

/// Parses a JSON body; a failure names the field at fault.
pub fn parse_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // Every body is an object (serde would also take a struct as an array).
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => {}
        None => return Err(ApiError::bad_request("invalid_json", "the body is empty")),
        Some(_) => {
            let json = serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok();
            return Err(if json {
                ApiError::bad_request("invalid_body", "the body must be a JSON object")
            } else {
                ApiError::bad_request("invalid_json", "the body is not JSON")
            });
        }
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let text = inner.to_string();
        // serde names unknown and missing fields only in its message.
        let quoted = || text.split('`').nth(1).map(str::to_owned);
        let join = |name: Option<String>| match (path.as_str(), name) {
            (".", n) => n,
            (p, Some(n)) => Some(format!("{p}.{n}")),
            (p, None) => Some(p.to_owned()),
        };
        let (code, field) = if inner.is_syntax() || inner.is_eof() {
            ("invalid_json", None)
        } else if text.starts_with("unknown field") {
            // The path already ends in the unknown key.
            (
                "unknown_field",
                if path == "." {
                    quoted()
                } else {
                    Some(path.clone())
                },
            )
        } else if text.starts_with("missing field") {
            ("missing_field", join(quoted()))
        } else if path == "." {
            ("invalid_body", None)
        } else {
            ("invalid_field", Some(path.clone()))
        };
        let message = match &field {
            Some(f) => format!("{f}: {text}"),
            None => text,
        };
        ApiError::InvalidBody {
            code,
            message,
            field,
        }
    })
}

/// `limit` (1..=`max`, default `default`) and `offset` (≥ 0, default 0)
/// query parameters, with the API's 400 codes.
pub fn paging(
    limit: Option<&str>,
    offset: Option<&str>,
    default: i64,
    max: i64,
) -> Result<(i64, i64), ApiError> {
    let limit = match limit {
        None => default,
        Some(l) => l
            .parse::<i64>()
            .ok()
            .filter(|l| (1..=max).contains(l))
            .ok_or_else(|| {
                ApiError::bad_request("invalid_limit", format!("limit must be 1..={max}"))
            })?,
    };
    let offset = match offset {
        None => 0,
        Some(o) => o
            .parse::<i64>()
            .ok()
            .filter(|o| *o >= 0)
            .ok_or_else(|| ApiError::bad_request("invalid_offset", "offset must be ≥ 0"))?,
    };
    Ok((limit, offset))
}

/// A page of a listing: `{ data, total, limit, offset, error: null }`.
pub fn page<T: Serialize>(data: Vec<T>, total: i64, limit: i64, offset: i64) -> Response {
    Json(serde_json::json!({
        "data": data,
        "total": total,
        "limit": limit,
        "offset": offset,
        "error": null,
    }))
    .into_response()
}

/// The authenticated caller of an `/api/v1` route (`Authorization: Bearer sk_…`).
#[derive(Debug)]
pub struct Auth(pub Principal);

impl FromRequestParts<SharedState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &SharedState,
    ) -> Result<Self, Self::Rejection> {
        // The route guard (catalog) already authenticated this request.
        if let Some(who) = parts.extensions.get::<Principal>() {
            return Ok(Auth(who.clone()));
        }
        let token = bearer(parts).ok_or(ApiError::Unauthorized("missing bearer token"))?;
        let hash = hash_secret(token);
        let row = state.db.token_by_hash(&hash).await?;
        let who = row
            .and_then(|r| Principal::from_row(r, &hash))
            .ok_or(ApiError::Unauthorized(
                "invalid, expired or revoked API token",
            ))?;
        if who.allowed_ips.is_some() {
            let peer = parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|c| c.0);
            let ip = peer.map(|p| {
                crate::ingest::ws::client_ip(&parts.headers, p, state.config.trust_forwarded)
            });
            if !ip.is_some_and(|ip| who.allows_ip(ip)) {
                return Err(ApiError::Unauthorized(
                    "this API token may not be used from this address",
                ));
            }
        }
        Ok(Auth(who))
    }
}

/// The bearer credential of a request, if any.
pub fn bearer(parts: &Parts) -> Option<&str> {
    let v = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        max_fps: u32,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        list: Option<Vec<u32>>,
        inner: Option<Inner>,
    }

    fn err(body: &str) -> (&'static str, Option<String>) {
        match parse_body::<Body>(body.as_bytes()) {
            Err(ApiError::InvalidBody { code, field, .. }) => (code, field),
            Err(ApiError::BadRequest { code, .. }) => (code, None),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn body_errors_name_the_field() {
        assert_eq!(err("{"), ("invalid_json", None));
        assert_eq!(
            err("{\"name\":\"a\",\"nmae\":1}"),
            ("unknown_field", Some("nmae".into()))
        );
        assert_eq!(err("{}"), ("missing_field", Some("name".into())));
        assert_eq!(
            err("{\"name\":\"a\",\"list\":[1,\"x\"]}"),
            ("invalid_field", Some("list[1]".into()))
        );
        assert_eq!(
            err("{\"name\":\"a\",\"inner\":{\"maxFsp\":1}}"),
            ("unknown_field", Some("inner.maxFsp".into()))
        );
        assert_eq!(
            err("{\"name\":\"a\",\"inner\":{}}"),
            ("missing_field", Some("inner.maxFps".into()))
        );
        assert_eq!(err("[]"), ("invalid_body", None));
        assert_eq!(err("  "), ("invalid_json", None));
        assert_eq!(err("not json"), ("invalid_json", None));
        assert!(parse_body::<Body>(b"{\"name\":\"a\"}").is_ok());
    }
}
