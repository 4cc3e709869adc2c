//! HTTP API plumbing shared by every API shape: the error type with stable
//! codes, the `{ "data", "error" }` envelope, JSON bodies and bearer auth.

pub mod api_tokens;
pub mod apps;
pub mod ingress;
pub mod native;
pub mod snapshots;
pub mod stats;
pub mod streams;
pub mod tokens;
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
            ApiError::BadRequest { code, .. } => (StatusCode::BAD_REQUEST, code),
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
        let body = Envelope::<()> {
            data: None,
            error: Some(ErrorBody {
                code: code.to_owned(),
                message: self.to_string(),
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

/// A JSON body whose rejections answer in the envelope with a 400/413.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(ApiJson(v)),
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(ApiError::PayloadTooLarge),
            Err(e) => Err(ApiError::bad_request("invalid_body", e.body_text())),
        }
    }
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
