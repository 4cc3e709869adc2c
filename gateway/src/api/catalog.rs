//! The `/api/v1` route catalogue: every route is registered here with who
//! may call it and what it does, and that one table builds the router,
//! enforces the access rule before the handler runs, and generates the
//! OpenAPI 3.1 document (`GET /api/v1/openapi.json`, viewer at
//! `/api/v1/docs`). A route cannot be served without being documented, nor
//! documented without being served; the authorization-matrix test walks the
//! document against the running server.
//!
//! Hand-built instead of utoipa: camgate's handlers share a few extractors
//! and a uniform envelope, and what clients need most from the document is
//! paths, parameters and the permission each route checks (`x-permission`),
//! which a derive macro would not know. Request bodies carry examples, not
//! full schemas.

use axum::extract::{FromRequestParts, RawPathParams, Request};
use axum::handler::Handler;
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{MethodFilter, on};
use axum::{Json, Router};
use serde_json::{Map, Value, json};

use super::{ApiError, Auth};
use crate::auth::Denied;
use crate::server::SharedState;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone (routes that answer public data, or check a play token).
    Public,
    /// Any valid API token; the handler narrows by the token's scope
    /// (token management, `auth/me`, the app list).
    Token,
    /// A token of the path's `{app}` (or a global one) holding this
    /// permission.
    App(&'static str),
    /// A global token holding this permission.
    Global(&'static str),
    /// A global token that is not narrowed by a permission list.
    Admin,
}

impl Access {
    /// The permission this access rule names, if any.
    pub fn permission(self) -> Option<&'static str> {
        match self {
            Access::App(p) | Access::Global(p) => Some(p),
            Access::Admin => Some("*"),
            Access::Public | Access::Token => None,
        }
    }

    fn kind(self) -> &'static str {
        match self {
            Access::Public => "public",
            Access::Token => "token",
            Access::App(_) => "app",
            Access::Global(_) => "global",
            Access::Admin => "admin",
        }
    }
}

/// One documented operation.
#[derive(Debug, Clone)]
pub struct Op {
    /// HTTP method.
    pub method: Method,
    /// Path under `/api/v1`, axum syntax (`/apps/{app}`).
    pub path: &'static str,
    /// Who may call it.
    pub access: Access,
    /// One line on what it does.
    pub summary: &'static str,
    /// An example request body (POST/PATCH), if it takes one.
    pub example: Option<Value>,
    /// The success status.
    pub status: u16,
}

/// A router under construction together with its documentation.
#[derive(Default)]
pub struct Routes {
    router: Router<SharedState>,
    ops: Vec<Op>,
}

impl Routes {
    /// No routes.
    pub fn new() -> Routes {
        Routes::default()
    }

    /// Registers `handler` for `method path`, guarded by `access`.
    pub fn op<H, T>(
        mut self,
        method: Method,
        path: &'static str,
        access: Access,
        summary: &'static str,
        handler: H,
    ) -> Routes
    where
        H: Handler<T, SharedState>,
        T: 'static,
    {
        let filter = MethodFilter::try_from(method.clone()).unwrap_or(MethodFilter::GET);
        let route = on(filter, handler).route_layer(axum::middleware::from_fn(
            move |req: Request, next: Next| guard(access, req, next),
        ));
        self.router = self.router.route(path, route);
        self.ops.push(Op {
            method,
            path,
            access,
            summary,
            example: None,
            status: 200,
        });
        self
    }

    /// Attaches an example body to the last registered operation.
    pub fn example(mut self, body: Value) -> Routes {
        if let Some(op) = self.ops.last_mut() {
            op.example = Some(body);
        }
        self
    }

    /// Sets the success status of the last registered operation (201
    /// for creations, 204 for deletions without a body).
    pub fn returns(mut self, status: u16) -> Routes {
        if let Some(op) = self.ops.last_mut() {
            op.status = status;
        }
        self
    }

    /// Adds another module's routes.
    pub fn merge(mut self, other: Routes) -> Routes {
        self.router = self.router.merge(other.router);
        self.ops.extend(other.ops);
        self
    }

    /// The router with `openapi.json` and the docs page added.
    pub fn finish(self) -> Router<SharedState> {
        let doc = std::sync::Arc::new(openapi(&self.ops));
        let served = doc.clone();
        self.router
            .route(
                "/openapi.json",
                axum::routing::get(move || {
                    let d = served.clone();
                    async move { Json((*d).clone()) }
                }),
            )
            .route("/docs", axum::routing::get(|| async { Html(DOCS_PAGE) }))
    }

    /// The documented operations (tests and the document itself).
    pub fn ops(&self) -> &[Op] {
        &self.ops
    }
}

/// Checks the route's access rule before any other extractor runs, so a
/// caller without the right learns nothing from body validation; the
/// authenticated principal is kept for the handler's `Auth`.
async fn guard(access: Access, req: Request, next: Next) -> Response {
    if access == Access::Public {
        return next.run(req).await;
    }
    let Some(state) = req.extensions().get::<SharedState>().cloned() else {
        return ApiError::Internal("route guard without state".into()).into_response();
    };
    let (mut parts, body) = req.into_parts();
    let who = match Auth::from_request_parts(&mut parts, &state).await {
        Ok(Auth(who)) => who,
        Err(e) => return e.into_response(),
    };
    if let Some(limited) = super::limits::per_token(&state, &who) {
        return limited;
    }
    let checked: Result<(), ApiError> = match access {
        Access::Public | Access::Token => Ok(()),
        Access::Global(p) => who.require_global(p).map_err(ApiError::from),
        Access::Admin => {
            if who.app_id.is_some() || who.permissions.is_some() {
                Err(ApiError::from(Denied::GlobalOnly))
            } else {
                Ok(())
            }
        }
        Access::App(p) => {
            let name = match RawPathParams::from_request_parts(&mut parts, &state).await {
                Ok(params) => params
                    .iter()
                    .find(|(k, _)| *k == "app")
                    .map(|(_, v)| v.to_owned()),
                Err(_) => None,
            };
            match name {
                None => Err(ApiError::Internal(format!(
                    "route with App access has no {{app}}: {}",
                    parts.uri.path()
                ))),
                Some(name) => match super::native::load_app(&state, &name).await {
                    Ok(app) => who.require(app.id, p).map_err(ApiError::from),
                    // An app token learns nothing about other tenants' apps.
                    Err(_) if who.app_id.is_some() => Err(ApiError::from(Denied::OtherApp)),
                    Err(e) => Err(e),
                },
            }
        }
    };
    if let Err(e) = checked {
        return e.into_response();
    }
    parts.extensions.insert(who);
    next.run(Request::from_parts(parts, body)).await
}

/// The OpenAPI 3.1 document of `ops`.
pub fn openapi(ops: &[Op]) -> Value {
    let mut paths = Map::new();
    for op in ops {
        let params: Vec<Value> = op
            .path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .map(|name| {
                json!({
                    "name": name,
                    "in": "path",
                    "required": true,
                    "schema": { "type": "string" },
                })
            })
            .collect();
        let mut o = json!({
            "operationId": operation_id(&op.method, op.path),
            "summary": op.summary,
            "tags": [tag(op.path)],
            "parameters": params,
            "x-access": op.access.kind(),
            "responses": responses(op),
        });
        if let Some(p) = op.access.permission() {
            o["x-permission"] = json!(p);
        }
        if op.access == Access::Public {
            o["security"] = json!([]);
        }
        if let Some(example) = &op.example {
            o["requestBody"] = json!({
                "required": true,
                "content": { "application/json": {
                    "schema": { "type": "object" },
                    "example": example,
                }},
            });
        }
        paths.entry(op.path.to_owned()).or_insert_with(|| json!({}))
            [op.method.as_str().to_ascii_lowercase()] = o;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "camgate API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "camgate's platform API. Every answer is an envelope \
                `{ \"data\": …, \"error\": null | { \"code\", \"message\", \"field\"? } }`; \
                listings add `total`, `limit`, `offset`. `x-permission` names the \
                `resource:action` a token must hold.",
        },
        "servers": [{ "url": "/api/v1" }],
        "security": [{ "bearer": [] }],
        "components": {
            "securitySchemes": {
                "bearer": { "type": "http", "scheme": "bearer", "description": "sk_… API token" },
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {
                        "code": { "type": "string" },
                        "message": { "type": "string" },
                        "field": { "type": "string" },
                    },
                },
            },
        },
        "paths": paths,
    })
}

fn responses(op: &Op) -> Value {
    let error = json!({ "content": { "application/json": { "schema": {
        "type": "object",
        "properties": { "data": { "type": "null" }, "error": { "$ref": "#/components/schemas/Error" } },
    }}}});
    let mut r = Map::new();
    let text = match op.status {
        201 => "created",
        204 => "done, no body",
        _ => "ok",
    };
    r.insert(op.status.to_string(), json!({ "description": text }));
    if op.example.is_some() || op.path.contains('{') || op.method == Method::GET {
        r.insert(
            "400".into(),
            json!({ "description": "invalid request", "content": error["content"] }),
        );
    }
    if op.access != Access::Public {
        r.insert(
            "401".into(),
            json!({ "description": "missing, invalid, expired or revoked token", "content": error["content"] }),
        );
        r.insert(
            "403".into(),
            json!({ "description": "permission_denied", "content": error["content"] }),
        );
    }
    if op.path.contains('{') {
        r.insert(
            "404".into(),
            json!({ "description": "not found", "content": error["content"] }),
        );
    }
    Value::Object(r)
}

fn tag(path: &str) -> String {
    let mut segs = path.trim_start_matches('/').split('/');
    match segs.next() {
        Some("apps") => match (segs.next(), segs.next()) {
            (Some(_), Some(section)) => section.to_owned(),
            _ => "apps".into(),
        },
        Some(first) => first.to_owned(),
        None => "api".into(),
    }
}

fn operation_id(method: &Method, path: &str) -> String {
    let mut id = method.as_str().to_ascii_lowercase();
    for seg in path.split('/').filter(|s| !s.is_empty()) {
        let seg = seg.trim_start_matches('{').trim_end_matches('}');
        let mut up = true;
        for c in seg.chars() {
            if c.is_ascii_alphanumeric() {
                if up {
                    id.push(c.to_ascii_uppercase());
                } else {
                    id.push(c);
                }
                up = false;
            } else {
                up = true;
            }
        }
    }
    id
}

const DOCS_PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>camgate API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:60rem;padding:0 1rem;color:#222}
h2{margin-top:2rem;border-bottom:1px solid #ddd}
.op{margin:.4rem 0;padding:.4rem .6rem;border-radius:4px;background:#f6f6f6}
.m{display:inline-block;width:4.5rem;font-weight:600}
code{font-size:90%}.perm{color:#666;float:right}
pre{background:#272822;color:#eee;padding:.5rem;overflow:auto}
</style></head><body>
<h1>camgate API</h1>
<p>Generated from <a href="openapi.json">openapi.json</a>. Base path <code>/api/v1</code>;
send <code>Authorization: Bearer sk_…</code>.</p>
<div id="ops">loading…</div>
<script>
fetch('openapi.json').then(r => r.json()).then(doc => {
  const byTag = {};
  for (const [path, item] of Object.entries(doc.paths))
    for (const [method, op] of Object.entries(item))
      (byTag[op.tags[0]] ||= []).push({ path, method, op });
  const root = document.getElementById('ops');
  root.textContent = '';
  for (const tag of Object.keys(byTag).sort()) {
    const h = document.createElement('h2'); h.textContent = tag; root.append(h);
    for (const { path, method, op } of byTag[tag]) {
      const d = document.createElement('div'); d.className = 'op';
      const m = document.createElement('span'); m.className = 'm'; m.textContent = method.toUpperCase();
      const c = document.createElement('code'); c.textContent = path;
      const p = document.createElement('span'); p.className = 'perm';
      p.textContent = op['x-permission'] || op['x-access'];
      const s = document.createElement('div'); s.textContent = op.summary;
      d.append(m, c, p, s);
      const ex = op.requestBody?.content?.['application/json']?.example;
      if (ex) { const pre = document.createElement('pre'); pre.textContent = JSON.stringify(ex, null, 2); d.append(pre); }
      root.append(d);
    }
  }
});
</script></body></html>
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_ids_are_camel_case() {
        assert_eq!(
            operation_id(&Method::GET, "/apps/{app}/ws-ingest/live/{room}"),
            "getAppsAppWsIngestLiveRoom"
        );
        assert_eq!(tag("/apps/{app}/streams/{id}"), "streams");
        assert_eq!(tag("/apps"), "apps");
        assert_eq!(tag("/tokens/{id}"), "tokens");
    }

    #[test]
    fn document_lists_every_route_once_with_its_permission() {
        let routes = super::super::native::routes();
        let doc = openapi(routes.ops());
        let mut seen = std::collections::HashSet::new();
        for op in routes.ops() {
            assert!(
                seen.insert((op.method.clone(), op.path)),
                "{} {} registered twice",
                op.method,
                op.path
            );
            let o = &doc["paths"][op.path][op.method.as_str().to_ascii_lowercase()];
            assert_eq!(o["summary"], op.summary);
            if let Access::App(p) = op.access {
                assert!(op.path.starts_with("/apps/{app}"), "{}", op.path);
                assert_eq!(o["x-permission"], p);
            }
        }
        assert!(routes.ops().len() >= 40, "{} routes", routes.ops().len());
    }
}
