//! API tokens (reference §2.2, §3.1): `GET/POST /api/v1/tokens`,
//! `DELETE /api/v1/tokens/{id}`, and `GET /api/v1/auth/me`.
//!
//! A token is `sk_` + 32 random bytes (base64url), shown once at creation
//! and stored as its SHA-256. camgate's least-privilege extensions:
//! `permissions` (a list of `resource:action`, `resource:*` or `*`) narrows
//! what the token may do, `expiresAt` / `ttlSeconds` give it an end, and
//! `allowedIps` (exact IPv4/IPv6 or CIDR) limits where it may be used from.
//!
//! Who may manage tokens: a global token (permission `token:create` /
//! `token:read` / `token:delete` when narrowed) manages all; an app-scoped
//! token manages only tokens of its own app, and may not mint a token with
//! a permission it does not hold itself, nor a global one.

use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::catalog::{Access, Routes};
use super::{ApiError, ApiJson, Auth, created, ok};
use crate::auth::{hash_secret, random_secret, valid_ip_entry};
use crate::server::SharedState;
use crate::store::NewToken;

/// Routes under `/api/v1`.
pub fn routes() -> Routes {
    Routes::new()
        .op(
            Method::GET,
            "/tokens",
            Access::Token,
            "List API tokens (never the secret); an app token sees its app's",
            list,
        )
        .op(
            Method::POST,
            "/tokens",
            Access::Token,
            "Create an API token (sk_…, shown once)",
            create,
        )
        .example(serde_json::json!({
            "name": "dashboard",
            "scope": "app",
            "app": "live",
            "permissions": ["stream:read", "vod:read"],
            "ttlSeconds": 86400,
            "allowedIps": ["10.0.0.0/8"],
        }))
        .returns(201)
        .op(
            Method::DELETE,
            "/tokens/{id}",
            Access::Token,
            "Revoke an API token",
            revoke,
        )
        .returns(204)
        .op(
            Method::GET,
            "/auth/me",
            Access::Token,
            "Who the caller is: scope, app, permissions, expiry",
            me,
        )
}

/// Body of `POST /api/v1/tokens`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CreateToken {
    name: String,
    scope: String,
    app_id: Option<i64>,
    /// camgate: the app by name instead of `appId`.
    app: Option<String>,
    allowed_ips: Option<Vec<String>>,
    permissions: Option<Vec<String>>,
    expires_at: Option<String>,
    ttl_seconds: Option<i64>,
}

/// The permissions routes check (reference §3.3), plus wildcards.
const RESOURCES: &[&str] = &[
    "app",
    "config",
    "s3",
    "stream",
    "recording",
    "vod",
    "broadcast",
    "sample",
    "ingress",
    "tenant",
    "usage",
    "token",
];
const ACTIONS: &[&str] = &["read", "create", "write", "delete", "start", "stop"];

fn valid_permission(p: &str) -> bool {
    if p == "*" {
        return true;
    }
    let Some((res, action)) = p.split_once(':') else {
        return false;
    };
    RESOURCES.contains(&res) && (action == "*" || ACTIONS.contains(&action))
}

async fn create(
    State(state): State<SharedState>,
    Auth(who): Auth,
    ApiJson(body): ApiJson<CreateToken>,
) -> Result<Response, ApiError> {
    let bad = |code, m: String| ApiError::bad_request(code, m);
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(bad(
            "invalid_name",
            "name must be 1 to 100 characters".into(),
        ));
    }
    let app_id = match (body.scope.as_str(), body.app_id, body.app.as_deref()) {
        ("global", None, None) => None,
        ("global", _, _) => {
            return Err(bad(
                "invalid_app_id",
                "appId is not allowed with scope global".into(),
            ));
        }
        ("app", Some(id), None) => Some(
            state
                .db
                .app_by_id(id)
                .await?
                .ok_or_else(|| ApiError::not_found("app_not_found", format!("no app {id}")))?
                .id,
        ),
        ("app", None, Some(name)) => Some(super::native::load_app(&state, name).await?.id),
        ("app", _, _) => {
            return Err(bad(
                "invalid_app_id",
                "scope app needs appId (or app)".into(),
            ));
        }
        _ => return Err(bad("invalid_scope", "scope is global or app".into())),
    };
    match app_id {
        None => who.require_global("token:create")?,
        Some(id) => who.require(id, "token:create")?,
    }
    if let Some(perms) = &body.permissions {
        if perms.is_empty() || perms.len() > 64 {
            return Err(bad(
                "invalid_permissions",
                "permissions must list 1 to 64 entries".into(),
            ));
        }
        if let Some(p) = perms.iter().find(|p| !valid_permission(p)) {
            return Err(bad(
                "invalid_permissions",
                format!("{p:?} is not resource:action (e.g. ingress:create, stream:*)"),
            ));
        }
    }
    // Least privilege: never more than the caller holds.
    let wanted = body
        .permissions
        .clone()
        .unwrap_or_else(|| vec!["*".to_owned()]);
    if !who.covers(&wanted) {
        return Err(ApiError::Forbidden {
            code: "permission_denied",
            message: "a token cannot grant permissions its creator does not hold".into(),
        });
    }
    if let Some(ips) = &body.allowed_ips {
        if ips.len() > 64 {
            return Err(bad("invalid_allowed_ips", "at most 64 entries".into()));
        }
        if let Some(ip) = ips.iter().find(|ip| !valid_ip_entry(ip)) {
            return Err(bad(
                "invalid_allowed_ips",
                format!("{ip:?} is not an IP address or CIDR"),
            ));
        }
    }
    let now = OffsetDateTime::now_utc();
    let expires = match (&body.expires_at, body.ttl_seconds) {
        (Some(_), Some(_)) => {
            return Err(bad(
                "invalid_expiry",
                "give expiresAt or ttlSeconds, not both".into(),
            ));
        }
        (Some(at), None) => Some(
            OffsetDateTime::parse(at, &Rfc3339)
                .ok()
                .filter(|t| *t > now)
                .ok_or_else(|| {
                    bad(
                        "invalid_expiry",
                        "expiresAt must be a future RFC 3339 time".into(),
                    )
                })?,
        ),
        (None, Some(ttl)) if ttl > 0 && ttl <= 10 * 365 * 86_400 => {
            Some(now + time::Duration::seconds(ttl))
        }
        (None, Some(_)) => {
            return Err(bad(
                "invalid_expiry",
                "ttlSeconds must be 1 to ten years".into(),
            ));
        }
        (None, None) => None,
    };
    // A narrowed or expiring creator cannot mint a token that outlives it.
    let expires = match (&who.expires_at, expires) {
        (Some(mine), theirs) => {
            let mine = OffsetDateTime::parse(mine, &Rfc3339).unwrap_or(now);
            Some(theirs.map_or(mine, |t| t.min(mine)))
        }
        (None, theirs) => theirs,
    };
    let expires_at = expires.and_then(|t| t.format(&Rfc3339).ok());
    let token = random_secret("sk_", 32);
    let hash = hash_secret(&token);
    let id = state
        .db
        .insert_token(&NewToken {
            name,
            scope: &body.scope,
            app_id,
            token_hash: &hash,
            permissions: body.permissions.as_deref(),
            allowed_ips: body.allowed_ips.as_deref().filter(|ips| !ips.is_empty()),
            expires_at: expires_at.as_deref(),
        })
        .await?;
    tracing::info!(token_id = id, scope = %body.scope, ?app_id, by = who.token_id, "api token created");
    Ok(created(serde_json::json!({
        "id": id,
        "token": token,
        "expiresAt": expires_at,
    })))
}

async fn list(State(state): State<SharedState>, Auth(who): Auth) -> Result<Response, ApiError> {
    match who.app_id {
        None => who.require_global("token:read")?,
        Some(id) => who.require(id, "token:read")?,
    }
    Ok(ok(state.db.list_tokens(who.app_id).await?))
}

async fn revoke(
    State(state): State<SharedState>,
    Auth(who): Auth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    match who.app_id {
        None => who.require_global("token:delete")?,
        Some(app) => who.require(app, "token:delete")?,
    }
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::not_found("token_not_found", "no such token"))?;
    if !state.db.revoke_token(id, who.app_id).await? {
        return Err(ApiError::not_found("token_not_found", "no such token"));
    }
    tracing::info!(token_id = id, by = who.token_id, "api token revoked");
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn me(State(state): State<SharedState>, Auth(who): Auth) -> Result<Response, ApiError> {
    let app = match who.app_id {
        Some(id) => state.db.app_by_id(id).await?.map(|a| a.name),
        None => None,
    };
    Ok(ok(serde_json::json!({
        "kind": "api_token",
        "tokenId": who.token_id,
        "scope": if who.app_id.is_some() { "app" } else { "global" },
        "appId": who.app_id,
        "app": app,
        "permissions": who.permissions,
        "allowedIps": who.allowed_ips,
        "expiresAt": who.expires_at,
    })))
}
