//! API rate limits: per client address on every API route (`/api/…`,
//! WHIP/WHEP), and per token after authentication — app tokens (SDK
//! clients, the seeds' 1000 requests per hour) and global tokens on their
//! own budgets. Over a limit: `429 rate_limited` with `Retry-After`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request};
use axum::http::HeaderValue;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::ApiError;
use crate::auth::Principal;
use crate::server::SharedState;

/// `429 rate_limited` with `Retry-After` (whole seconds, at least 1).
pub fn rate_limited(wait: Duration, what: &str) -> Response {
    let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
    let mut r = ApiError::status(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!("too many requests for this {what}; retry in {secs} s"),
    )
    .into_response();
    if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
        r.headers_mut().insert("retry-after", v);
    }
    r
}

/// Middleware: one token of the client address's API budget per request.
pub async fn per_ip(req: Request, next: Next) -> Response {
    let state = req.extensions().get::<SharedState>().cloned();
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    if let (Some(state), Some(peer)) = (state, peer)
        && state.api_ip_limiter.enabled()
    {
        let ip = crate::ingest::ws::client_ip(req.headers(), peer, state.config.trust_forwarded);
        if let Err(wait) = state.api_ip_limiter.check(ip, Instant::now()) {
            return rate_limited(wait, "address");
        }
    }
    next.run(req).await
}

/// One token of an authenticated caller's budget: app tokens and global
/// tokens draw on separate limits. `Some(429)` when over.
pub fn per_token(state: &SharedState, who: &Principal) -> Option<Response> {
    let limiter = if who.app_id.is_some() {
        &state.api_token_limiter
    } else {
        &state.admin_token_limiter
    };
    limiter
        .check(who.token_id, Instant::now())
        .err()
        .map(|wait| rate_limited(wait, "token"))
}
