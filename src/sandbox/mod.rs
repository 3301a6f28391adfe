//! `poactl sandbox`: a local, stateful emulation of the Atlas Admin API v2 endpoints poactl
//! uses, so specs can be tried offline and the tests have a peer. Same paths, per-operation
//! versions (406 for an unknown one), pagination envelope, status codes and error bodies as
//! real Atlas, the CREATING/UPDATING -> IDLE -> DELETING -> 404 state machine, and injectable
//! 429s. It accepts any service-account credentials at `/api/oauth/token`, and any API key.
//!
//! With `--mongo-listen` it also serves `mongo::MongoMock` (a scripted MongoDB wire mock, not a
//! database), and IDLE clusters' standard connection strings point at it.
//!
//! Besides Atlas' paths it serves its own under `/__sandbox/` (no auth): `log` (every request
//! and response, for checking against MongoDB's OpenAPI spec), `log/clear`, `faults`
//! (`{"status": 429, "count": 2, "retry_after": 1}`), `config` (`{"cluster_delay_secs": 5,
//! "resume_window_secs": 3600, "close_delay_secs": 2, "user_delay_secs": 1, "response_delay_secs":
//! 600 (every Admin API answer held that long after the work is done: a peer that never
//! answers; `"response_delay_methods": ["POST"]` holds only those), "token_ttl_secs":
//! 3600, "token_requests_per_minute": 10, "active_tokens_per_client": 100}`), `tokens` (the
//! active tokens per client), `clusters/{group}/{name}/stuck` (`{"state": "UPDATING"}` holds
//! a cluster in a state) and `snapshots/{group}/{name}` (POST `{"age_hours": 30}` adds a
//! snapshot taken that long ago, DELETE removes them).
//!
//! It imports no product code, so it can disagree with the provider. Every behaviour rule it
//! enforces beyond the schema carries a comment naming its source: a line of MongoDB's OpenAPI
//! spec (`../shared/atlas/openapi-v2.yaml`), a recorded real answer (`../shared/atlas/captures/`),
//! a mature client's file, or a documentation page. docs/design.md lists them.

mod access_list;
mod backup;
mod encryption;
pub mod mongo;
mod mongo_bytes;
mod mongo_writes;
mod peering;
mod private_endpoint;
mod regions;
mod settings;
pub mod state;
mod users;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use axum::body::Bytes;
use axum::extract::State as AxState;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use self::state::{ClusterRec, DEFAULT_ALERTS, LogEntry, Project, State, Token, now_iso};

type Shared = Arc<Mutex<State>>;

/// Operations: method, path template, the media-type versions it serves. Only the versions
/// whose document shapes it emulates (the ones poactl uses, the newest in MongoDB's spec);
/// older ones real Atlas still serves (clusters 2023-01-01...) answer 406 here.
const OPERATIONS: &[(&str, &str, &[&str])] = &[
    ("GET", "/api/atlas/v2/groups", &["2023-01-01"]),
    ("POST", "/api/atlas/v2/groups", &["2023-01-01"]),
    ("GET", "/api/atlas/v2/groups/byName/{groupName}", &["2023-01-01"]),
    ("GET", "/api/atlas/v2/orgs/{orgId}/groups", &["2023-01-01"]),
    ("GET", "/api/atlas/v2/groups/{groupId}", &["2023-01-01"]),
    ("PATCH", "/api/atlas/v2/groups/{groupId}", &["2023-01-01"]),
    ("DELETE", "/api/atlas/v2/groups/{groupId}", &["2023-01-01"]),
    ("GET", "/api/atlas/v2/groups/{groupId}/clusters", &["2024-08-05"]),
    ("POST", "/api/atlas/v2/groups/{groupId}/clusters", &["2024-08-05", "2024-10-23"]),
    ("POST", "/api/atlas/v2/groups/{groupId}/clusters/tenantUpgrade", &["2023-01-01"]),
    ("GET", "/api/atlas/v2/groups/{groupId}/clusters/{clusterName}", &["2024-08-05"]),
    ("PATCH", "/api/atlas/v2/groups/{groupId}/clusters/{clusterName}", &["2024-08-05", "2024-10-23"]),
    ("DELETE", "/api/atlas/v2/groups/{groupId}/clusters/{clusterName}", &["2023-01-01", "2023-02-01"]),
    ("GET", "/api/atlas/v2/groups/{groupId}/clusters/{clusterName}/backup/schedule", &["2024-08-05"]),
    ("PATCH", "/api/atlas/v2/groups/{groupId}/clusters/{clusterName}/backup/schedule", &["2024-08-05"]),
    ("GET", "/api/atlas/v2/groups/{groupId}/clusters/{clusterName}/backup/snapshots", &["2023-01-01"]),
    ("GET", "/api/atlas/v2/groups/{groupId}/clusters/{clusterName}/status", &["2023-01-01"]),
    ("GET", "/api/atlas/v2/groups/{groupId}/flexClusters", &["2024-11-13"]),
    ("POST", "/api/atlas/v2/groups/{groupId}/flexClusters", &["2024-11-13"]),
    ("POST", "/api/atlas/v2/groups/{groupId}/flexClusters:tenantUpgrade", &["2024-11-13"]),
    ("GET", "/api/atlas/v2/groups/{groupId}/flexClusters/{name}", &["2024-11-13"]),
    ("PATCH", "/api/atlas/v2/groups/{groupId}/flexClusters/{name}", &["2024-11-13"]),
    ("DELETE", "/api/atlas/v2/groups/{groupId}/flexClusters/{name}", &["2024-11-13"]),
    ("GET", "/api/atlas/v2/groups/{groupId}/accessList", &["2023-01-01"]),
    ("POST", "/api/atlas/v2/groups/{groupId}/accessList", &["2023-01-01"]),
    ("GET", "/api/atlas/v2/groups/{groupId}/accessList/{entryValue}", &["2023-01-01"]),
    ("DELETE", "/api/atlas/v2/groups/{groupId}/accessList/{entryValue}", &["2023-01-01"]),
    ("GET", "/api/atlas/v2/groups/{groupId}/accessList/{entryValue}/status", &["2023-01-01"]),
    ("GET", "/api/atlas/v2/groups/{groupId}/databaseUsers", &["2023-01-01"]),
    ("POST", "/api/atlas/v2/groups/{groupId}/databaseUsers", &["2023-01-01"]),
    ("GET", "/api/atlas/v2/groups/{groupId}/databaseUsers/{databaseName}/{username}", &["2023-01-01"]),
    ("PATCH", "/api/atlas/v2/groups/{groupId}/databaseUsers/{databaseName}/{username}", &["2023-01-01"]),
    ("DELETE", "/api/atlas/v2/groups/{groupId}/databaseUsers/{databaseName}/{username}", &["2023-01-01"]),
    ("GET", "/api/atlas/v2/groups/{groupId}/alertConfigs", &["2023-01-01"]),
    ("POST", "/api/atlas/v2/groups/{groupId}/alertConfigs", &["2023-01-01"]),
    ("GET", "/api/atlas/v2/groups/{groupId}/alertConfigs/{alertConfigId}", &["2023-01-01"]),
    ("PUT", "/api/atlas/v2/groups/{groupId}/alertConfigs/{alertConfigId}", &["2023-01-01"]),
    ("DELETE", "/api/atlas/v2/groups/{groupId}/alertConfigs/{alertConfigId}", &["2023-01-01"]),
    ("GET", "/api/atlas/v2/groups/{groupId}/privateEndpoint/{cloudProvider}/endpointService", &["2023-01-01"]),
    ("POST", "/api/atlas/v2/groups/{groupId}/privateEndpoint/endpointService", &["2023-01-01"]),
    ("GET", "/api/atlas/v2/groups/{groupId}/privateEndpoint/{cloudProvider}/endpointService/{endpointServiceId}", &["2023-01-01"]),
    ("DELETE", "/api/atlas/v2/groups/{groupId}/privateEndpoint/{cloudProvider}/endpointService/{endpointServiceId}", &["2023-01-01"]),
    (
        "POST",
        "/api/atlas/v2/groups/{groupId}/privateEndpoint/{cloudProvider}/endpointService/{endpointServiceId}/endpoint",
        &["2023-01-01"],
    ),
    (
        "GET",
        "/api/atlas/v2/groups/{groupId}/privateEndpoint/{cloudProvider}/endpointService/{endpointServiceId}/endpoint/{endpointId}",
        &["2023-01-01"],
    ),
    (
        "DELETE",
        "/api/atlas/v2/groups/{groupId}/privateEndpoint/{cloudProvider}/endpointService/{endpointServiceId}/endpoint/{endpointId}",
        &["2023-01-01"],
    ),
    ("GET", "/api/atlas/v2/groups/{groupId}/containers", &["2023-01-01"]),
    ("POST", "/api/atlas/v2/groups/{groupId}/containers", &["2023-01-01"]),
    ("GET", "/api/atlas/v2/groups/{groupId}/containers/{containerId}", &["2023-01-01"]),
    ("DELETE", "/api/atlas/v2/groups/{groupId}/containers/{containerId}", &["2023-01-01"]),
    ("GET", "/api/atlas/v2/groups/{groupId}/peers", &["2023-01-01"]),
    ("POST", "/api/atlas/v2/groups/{groupId}/peers", &["2023-01-01"]),
    ("GET", "/api/atlas/v2/groups/{groupId}/peers/{peerId}", &["2023-01-01"]),
    ("PATCH", "/api/atlas/v2/groups/{groupId}/peers/{peerId}", &["2023-01-01"]),
    ("DELETE", "/api/atlas/v2/groups/{groupId}/peers/{peerId}", &["2023-01-01"]),
    ("GET", "/api/atlas/v2/groups/{groupId}/cloudProviderAccess", &["2023-01-01"]),
    ("POST", "/api/atlas/v2/groups/{groupId}/cloudProviderAccess", &["2023-01-01"]),
    ("GET", "/api/atlas/v2/groups/{groupId}/cloudProviderAccess/{roleId}", &["2023-01-01"]),
    ("PATCH", "/api/atlas/v2/groups/{groupId}/cloudProviderAccess/{roleId}", &["2023-01-01"]),
    ("DELETE", "/api/atlas/v2/groups/{groupId}/cloudProviderAccess/{cloudProvider}/{roleId}", &["2023-01-01"]),
    ("GET", "/api/atlas/v2/groups/{groupId}/encryptionAtRest", &["2023-01-01"]),
    ("PATCH", "/api/atlas/v2/groups/{groupId}/encryptionAtRest", &["2023-01-01"]),
    ("GET", "/api/atlas/v2/groups/{groupId}/maintenanceWindow", &["2023-01-01"]),
    ("PATCH", "/api/atlas/v2/groups/{groupId}/maintenanceWindow", &["2023-01-01"]),
    ("DELETE", "/api/atlas/v2/groups/{groupId}/maintenanceWindow", &["2023-01-01"]),
    ("GET", "/api/atlas/v2/groups/{groupId}/auditLog", &["2023-01-01"]),
    ("PATCH", "/api/atlas/v2/groups/{groupId}/auditLog", &["2023-01-01"]),
];

/// Matches a request path against a template; returns the decoded parameters.
fn match_path(template: &str, path: &str) -> Option<Vec<(String, String)>> {
    let t: Vec<&str> = template.trim_matches('/').split('/').collect();
    let p: Vec<&str> = path.trim_matches('/').split('/').collect();
    if t.len() != p.len() {
        return None;
    }
    let mut params = Vec::new();
    for (ts, ps) in t.iter().zip(p.iter()) {
        if ts.starts_with('{') && ts.ends_with('}') {
            if ps.is_empty() {
                return None;
            }
            params.push((ts[1..ts.len() - 1].to_string(), percent_decode(ps)));
        } else if ts != ps {
            return None;
        }
    }
    Some(params)
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 3 <= bytes.len() && bytes[i + 1].is_ascii_hexdigit() && bytes[i + 2].is_ascii_hexdigit() {
            let hex = |b: u8| (b as char).to_digit(16).unwrap_or(0) as u8;
            out.push(hex(bytes[i + 1]) * 16 + hex(bytes[i + 2]));
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An Atlas error answer.
struct ApiErr {
    status: u16,
    code: &'static str,
    detail: String,
    params: Vec<String>,
}

impl ApiErr {
    fn new(status: u16, code: &'static str, detail: impl Into<String>) -> Self {
        ApiErr { status, code, detail: detail.into(), params: Vec::new() }
    }

    fn params(mut self, p: &[&str]) -> Self {
        self.params = p.iter().map(|s| s.to_string()).collect();
        self
    }

    fn body(&self) -> Value {
        let reason = StatusCode::from_u16(self.status).ok().and_then(|s| s.canonical_reason()).unwrap_or("Error");
        json!({"detail": self.detail, "error": self.status, "errorCode": self.code, "parameters": self.params, "reason": reason})
    }
}

type Answer = Result<(u16, Option<Value>), ApiErr>;

struct Req {
    params: Vec<(String, String)>,
    query: Vec<(String, String)>,
    body: Option<Value>,
    base: String,
}

impl Req {
    fn param(&self, k: &str) -> &str {
        self.params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str()).unwrap_or("")
    }

    fn query(&self, k: &str) -> Option<&str> {
        self.query.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
    }

    fn body_obj(&self) -> Result<&Map<String, Value>, ApiErr> {
        self.body
            .as_ref()
            .and_then(|b| b.as_object())
            .ok_or_else(|| ApiErr::new(400, "INVALID_JSON", "The request body must be a JSON object."))
    }
}

/// How to start the sandbox.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: String,
    /// Seconds a cluster stays CREATING/UPDATING/DELETING.
    pub cluster_delay: f64,
    /// Fraction of requests answered 429.
    pub rate_limit: f64,
    /// Where to write the base URL once listening.
    pub url_file: Option<std::path::PathBuf>,
    /// Where to serve the MongoDB wire mock, and where to write its URI.
    pub mongo_listen: Option<String>,
    pub mongo_url_file: Option<std::path::PathBuf>,
}

/// Serves until the process ends; prints the base URL.
pub async fn command(a: Settings) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(&a.listen).await.with_context(|| format!("cannot listen on {}", a.listen))?;
    let addr = listener.local_addr()?;
    let url = format!("http://{addr}");
    if let Some(f) = &a.url_file {
        std::fs::write(f, &url).with_context(|| format!("cannot write {}", f.display()))?;
    }
    println!("Atlas sandbox listening on {url}");
    println!("  export MONGODB_ATLAS_BASE_URL={url} MONGODB_ATLAS_CLIENT_ID=sandbox MONGODB_ATLAS_CLIENT_SECRET=sandbox");
    // Kept alive for as long as the sandbox serves (its task runs on this runtime).
    let mongo = match &a.mongo_listen {
        Some(addr) => {
            let mock = mongo::MongoMock::listen(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
            if let Some(f) = &a.mongo_url_file {
                std::fs::write(f, &mock.uri).with_context(|| format!("cannot write {}", f.display()))?;
            }
            println!("MongoDB wire MOCK (in memory, not a database) listening: {}", mock.uri);
            Some(mock)
        }
        None => None,
    };
    let mut state = State::new(Duration::from_secs_f64(a.cluster_delay.max(0.0)), a.rate_limit);
    state.mongo_host = mongo.as_ref().and_then(|m| m.uri.strip_prefix("mongodb://")?.split('/').next().map(str::to_string));
    state.mongo = mongo.as_ref().map(|m| m.state.clone());
    users::sync_mock_users(&state);
    serve(listener, Arc::new(Mutex::new(state))).await
}

/// Serves the sandbox on a bound listener (used by the command and by tests).
pub async fn serve(listener: tokio::net::TcpListener, state: Arc<Mutex<State>>) -> Result<()> {
    let app = axum::Router::new().fallback(handle).with_state(state);
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await.context("sandbox server")?;
    Ok(())
}

fn json_response(status: u16, body: Option<&Value>, content_type: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = match body {
        Some(b) => (status, b.to_string()).into_response(),
        None => status.into_response(),
    };
    if body.is_some()
        && let Ok(v) = HeaderValue::from_str(content_type)
    {
        resp.headers_mut().insert("content-type", v);
    }
    resp
}

fn version_of(headers: &HeaderMap) -> Option<String> {
    let accept = headers.get("accept").and_then(|v| v.to_str().ok()).unwrap_or("");
    for part in accept.split(',') {
        let p = part.trim().split(';').next().unwrap_or("").trim();
        if let Some(v) = p.strip_prefix("application/vnd.atlas.").and_then(|r| r.strip_suffix("+json")) {
            return Some(v.to_string());
        }
    }
    None
}

/// Answers one request; with `response_delay` set (for all methods, or those of
/// `response_delay_methods`), the work is done at once and the answer held back that long: a
/// write whose answer is lost, or a read that never comes back.
async fn handle(state: AxState<Shared>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let api = !uri.path().starts_with("/__sandbox/") && !uri.path().starts_with("/api/oauth/");
    let (delay, methods) = {
        let st = state.0.lock().unwrap_or_else(|e| e.into_inner());
        (st.response_delay, st.response_delay_methods.clone())
    };
    let held = api && !delay.is_zero() && (methods.is_empty() || methods.iter().any(|m| m == method.as_str()));
    let resp = answer(state, method, uri, headers, body).await;
    if held {
        tokio::time::sleep(delay).await;
    }
    resp
}

async fn answer(AxState(state): AxState<Shared>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let path = uri.path().to_string();
    let query: Vec<(String, String)> = uri
        .query()
        .map(|q| q.split('&').filter_map(|kv| kv.split_once('=').map(|(k, v)| (percent_decode(k), percent_decode(v)))).collect())
        .unwrap_or_default();
    if let Some(rest) = path.strip_prefix("/__sandbox/") {
        return control(&state, &method, rest, &body);
    }
    if path == "/api/oauth/token" {
        return token(&state, &method, &headers);
    }
    if path == "/api/oauth/revoke" {
        return revoke(&state, &method, &headers, &body);
    }
    let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
    st.advance();
    peering::advance(&mut st, std::time::Instant::now());
    st.requests += 1;

    // Authentication: a token from /api/oauth/token, or any Digest answer.
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
    let authorized = match auth.split_once(' ') {
        // An expired or revoked token is refused like a missing one.
        Some(("Bearer", t)) => st.tokens.iter().any(|k| k.value == t.trim() && k.expires > std::time::Instant::now()),
        Some(("Digest", rest)) => rest.contains("username=") && rest.contains("response="),
        _ => false,
    };
    if !authorized {
        let err = ApiErr::new(401, "UNEXPECTED_ERROR", "You are not authorized for this resource.");
        let mut resp = json_response(401, Some(&err.body()), "application/json");
        let nonce = format!("{:x}", st.requests.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        if let Ok(v) = HeaderValue::from_str(&format!(
            "Digest realm=\"MMS Public API\", domain=\"\", nonce=\"{nonce}\", algorithm=MD5, qop=\"auth\", stale=false"
        )) {
            resp.headers_mut().insert("www-authenticate", v);
        }
        return resp;
    }

    let Some((op_method, template, versions, params)) =
        OPERATIONS.iter().find_map(|(m, t, v)| match_path(t, &path).filter(|_| *m == method.as_str()).map(|p| (*m, *t, *v, p)))
    else {
        let err = ApiErr::new(404, "RESOURCE_NOT_FOUND", format!("Cannot find resource {path}.")).params(&[&path]);
        return json_response(404, Some(&err.body()), "application/json");
    };

    // A role the credentials lack (openapi-v2.yaml x-rolesRequirements); the error code is
    // not recorded.
    if st.denied.iter().any(|d| *d == format!("{op_method} {template}")) {
        let err = ApiErr::new(403, "USER_UNAUTHORIZED", "The current user is not authorized to perform this action.");
        return json_response(403, Some(&err.body()), "application/json");
    }
    // Injected failures come before anything is changed.
    if let Some((status, count, retry_after)) = st.faults {
        let remaining = count.saturating_sub(1);
        st.faults = if remaining > 0 { Some((status, remaining, retry_after)) } else { None };
        return fault(status, retry_after);
    }
    if st.rate_limit_every > 0 && st.requests % st.rate_limit_every == 0 {
        return fault(429, 1);
    }

    let version = match version_of(&headers) {
        Some(v) if versions.contains(&v.as_str()) => v,
        Some(v) => {
            let err = ApiErr::new(
                406,
                "INVALID_VERSION_DATE",
                format!("The API version {v} is not supported for {op_method} {template}; supported: {}.", versions.join(", ")),
            );
            return json_response(406, Some(&err.body()), "application/json");
        }
        None if versions.contains(&"2023-01-01") => "2023-01-01".to_string(),
        None => {
            let err = ApiErr::new(
                406,
                "INVALID_VERSION_DATE",
                format!(
                    "{op_method} {template} needs a versioned Accept header, e.g. application/vnd.atlas.{}+json.",
                    versions[versions.len() - 1]
                ),
            );
            return json_response(406, Some(&err.body()), "application/json");
        }
    };
    let request_body: Option<Value> = if body.is_empty() { None } else { serde_json::from_slice(&body).ok() };
    if !body.is_empty() && request_body.is_none() {
        let err = ApiErr::new(400, "INVALID_JSON", "The request body is not valid JSON.");
        return json_response(400, Some(&err.body()), "application/json");
    }
    let host = headers.get("host").and_then(|v| v.to_str().ok()).unwrap_or("127.0.0.1");
    let req = Req { params, query, body: request_body.clone(), base: format!("http://{host}") };
    let answer = route(&mut st, op_method, template, &req);
    let (status, resp_body, content_type) = match answer {
        Ok((status, body)) => (status, body, format!("application/vnd.atlas.{version}+json;charset=utf-8")),
        Err(e) => (e.status, Some(e.body()), "application/json".to_string()),
    };
    st.log.push(LogEntry {
        method: op_method.to_string(),
        path: path.clone(),
        operation: template.to_string(),
        version: version.clone(),
        request: request_body,
        status,
        response: resp_body.clone(),
    });
    // Calls to moto (peering's AWS side) go once the lock is released.
    let jobs = std::mem::take(&mut st.aws_jobs);
    let endpoint = st.aws_endpoint.clone();
    drop(st);
    for job in jobs {
        tokio::spawn(peering::run(state.clone(), endpoint.clone(), job));
    }
    json_response(status, resp_body.as_ref(), &content_type)
}

fn fault(status: u16, retry_after: u64) -> Response {
    let (code, detail) = match status {
        429 => ("RATE_LIMITED_TOKEN_BUCKET", format!("Rate limit exceeded. Please retry after {retry_after} seconds.")),
        503 => ("SERVICE_UNAVAILABLE", "Service temporarily unavailable.".to_string()),
        _ => ("UNEXPECTED_ERROR", "Unexpected error.".to_string()),
    };
    let err = ApiErr::new(status, code, detail);
    let mut resp = json_response(status, Some(&err.body()), "application/json");
    if (status == 429 || status == 503)
        && let Ok(v) = HeaderValue::from_str(&retry_after.to_string())
    {
        resp.headers_mut().insert("retry-after", v);
    }
    resp
}

fn token(state: &Shared, method: &Method, headers: &HeaderMap) -> Response {
    if method != Method::POST {
        return json_response(405, Some(&json!({"error": "method_not_allowed"})), "application/json");
    }
    let basic = headers.get("authorization").and_then(|v| v.to_str().ok()).is_some_and(|a| a.starts_with("Basic "));
    if !basic {
        return json_response(
            401,
            Some(&json!({"error": "invalid_client", "error_description": "client credentials are required (HTTP Basic)"})),
            "application/json",
        );
    }
    let client = basic_user(headers).unwrap_or_default();
    let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
    let now = std::time::Instant::now();
    st.tokens.retain(|t| t.expires > now);
    // Atlas limits token requests (about 10 a minute per service account) and active tokens
    // (about 100 an hour): mongodb/mongodb-atlas-cli PR #4656, which made the CLI reuse and
    // revoke tokens for that reason. The exact answer is not recorded; a 429 with
    // Retry-After is what Atlas' rate limiter sends elsewhere (AUTH.md, rate limits).
    let recent = st.tokens.iter().filter(|t| t.client == client && now.duration_since(t.issued) < Duration::from_secs(60)).count();
    let active = st.tokens.iter().filter(|t| t.client == client).count();
    if recent >= st.token_requests_per_minute || active >= st.active_tokens_per_client {
        let mut resp = json_response(
            429,
            Some(
                &json!({"error": "rate_limited", "error_description": format!("too many token requests for this service account ({recent} in the last minute, {active} active)")}),
            ),
            "application/json",
        );
        resp.headers_mut().insert("retry-after", HeaderValue::from_static("60"));
        return resp;
    }
    let t = format!("sbx_{}", st.new_id());
    let ttl = st.token_ttl;
    st.tokens.push(Token { value: t.clone(), client, issued: now, expires: now + ttl });
    json_response(200, Some(&json!({"access_token": t, "token_type": "Bearer", "expires_in": ttl.as_secs()})), "application/json")
}

/// The client id of an HTTP Basic `Authorization` header.
fn basic_user(headers: &HeaderMap) -> Option<String> {
    let v = headers.get("authorization")?.to_str().ok()?.strip_prefix("Basic ")?;
    let decoded = base64_decode(v.trim())?;
    let text = String::from_utf8(decoded).ok()?;
    Some(text.split_once(':').map_or(text.clone(), |(u, _)| u.to_string()))
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for b in s.bytes().filter(|b| *b != b'=') {
        let v = ALPHABET.iter().position(|a| *a == b)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// `POST /api/oauth/revoke` (`token=...`, Basic auth): the atlas-sdk-go `auth/clientcredentials`
/// RevokeAPIPath (AUTH.md). Answers 200 whether or not the token was known (RFC 7009 2.2).
fn revoke(state: &Shared, method: &Method, headers: &HeaderMap, body: &Bytes) -> Response {
    if method != Method::POST || basic_user(headers).is_none() {
        return json_response(401, Some(&json!({"error": "invalid_client"})), "application/json");
    }
    let form = String::from_utf8_lossy(body);
    let token = form.split('&').find_map(|kv| kv.strip_prefix("token=")).map(percent_decode).unwrap_or_default();
    let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
    st.tokens.retain(|t| t.value != token);
    json_response(200, Some(&json!({})), "application/json")
}

fn control(state: &Shared, method: &Method, rest: &str, body: &Bytes) -> Response {
    let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
    let input: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    match (method.as_str(), rest) {
        ("GET", "health") => json_response(200, Some(&json!({"ok": true})), "application/json"),
        ("GET", "log") => json_response(200, Some(&serde_json::to_value(&st.log).unwrap_or(Value::Null)), "application/json"),
        ("GET", "tokens") => {
            let now = std::time::Instant::now();
            let mut by_client: BTreeMap<String, usize> = BTreeMap::new();
            for t in st.tokens.iter().filter(|t| t.expires > now) {
                *by_client.entry(t.client.clone()).or_default() += 1;
            }
            json_response(200, Some(&json!(by_client)), "application/json")
        }
        ("POST", "log/clear") => {
            st.log.clear();
            json_response(200, Some(&json!({"ok": true})), "application/json")
        }
        ("POST", "faults") => {
            let status = input.get("status").and_then(|v| v.as_u64()).unwrap_or(429) as u16;
            let count = input.get("count").and_then(|v| v.as_u64()).unwrap_or(1) as u32;
            let retry_after = input.get("retry_after").and_then(|v| v.as_u64()).unwrap_or(1);
            st.faults = Some((status, count, retry_after));
            json_response(200, Some(&json!({"ok": true})), "application/json")
        }
        ("POST", "config") => {
            let secs = |k: &str| input.get(k).and_then(|v| v.as_f64()).map(|d| Duration::from_secs_f64(d.max(0.0)));
            if let Some(d) = secs("cluster_delay_secs") {
                st.cluster_delay = d;
            }
            if let Some(d) = secs("resume_window_secs") {
                st.resume_window = d;
            }
            if let Some(d) = secs("close_delay_secs") {
                st.close_delay = d;
            }
            if let Some(d) = secs("user_delay_secs") {
                st.user_delay = d;
            }
            if let Some(d) = secs("response_delay_secs") {
                st.response_delay = d;
            }
            if let Some(m) = input.get("response_delay_methods").and_then(|v| v.as_array()) {
                st.response_delay_methods = m.iter().filter_map(|v| v.as_str().map(String::from)).collect();
            }
            if let Some(list) = input.get("deny").and_then(|v| v.as_array()) {
                st.denied = list.iter().filter_map(|v| v.as_str().map(String::from)).collect();
            }
            if let Some(n) = input.get("assume_role_refusals").and_then(|v| v.as_u64()) {
                st.assume_role_refusals = n as u32;
            }
            if let Some(b) = input.get("kms_invalid").and_then(|v| v.as_bool()) {
                st.kms_invalid = b;
            }
            if let Some(url) = input.get("aws_endpoint").and_then(|v| v.as_str()) {
                st.aws_endpoint = Some(url.to_string());
            }
            if let Some(d) = secs("token_ttl_secs") {
                st.token_ttl = d;
            }
            if let Some(n) = input.get("token_requests_per_minute").and_then(|v| v.as_u64()) {
                st.token_requests_per_minute = n as usize;
            }
            if let Some(n) = input.get("active_tokens_per_client").and_then(|v| v.as_u64()) {
                st.active_tokens_per_client = n as usize;
            }
            json_response(200, Some(&json!({"ok": true})), "application/json")
        }
        _ => {
            // clusters/{group}/{name}/stuck
            let parts: Vec<&str> = rest.split('/').collect();
            // snapshots/{group}/{name}: POST {"age_hours": 30, "status": "completed"} adds one
            // taken that long ago; DELETE (or POST {"clear": true}) removes them all first.
            if parts.len() == 3 && parts[0] == "snapshots" {
                let Some(p) = st.projects.get_mut(parts[1]) else {
                    return json_response(404, Some(&json!({"error": "no such project"})), "application/json");
                };
                let list = p.snapshots.entry(parts[2].to_string()).or_default();
                if method == Method::DELETE || input.get("clear") == Some(&json!(true)) {
                    list.clear();
                }
                if method == Method::POST && input.get("age_hours").is_some() {
                    let age = Duration::from_secs_f64(input.get("age_hours").and_then(|v| v.as_f64()).unwrap_or(0.0).max(0.0) * 3600.0);
                    let status = input.get("status").and_then(|v| v.as_str()).unwrap_or("completed");
                    list.push(snapshot(parts[2], age, status));
                }
                return json_response(200, Some(&json!({"ok": true})), "application/json");
            }
            // private-endpoints/{group}/{vpce}/refuse: {"status": "REJECTED", "error": "..."}
            if method == Method::POST && parts.len() == 4 && parts[0] == "private-endpoints" && parts[3] == "refuse" {
                let status = input.get("status").and_then(|v| v.as_str()).unwrap_or("REJECTED");
                let message = input.get("error").and_then(|v| v.as_str()).unwrap_or("");
                if private_endpoint::refuse(&mut st, parts[1], parts[2], status, message) {
                    return json_response(200, Some(&json!({"ok": true})), "application/json");
                }
                return json_response(404, Some(&json!({"error": "no such endpoint"})), "application/json");
            }
            if method == Method::POST && parts.len() == 4 && parts[0] == "clusters" && parts[3] == "stuck" {
                let want = input.get("state").and_then(|v| v.as_str()).map(String::from);
                if let Some(c) = st.projects.get_mut(parts[1]).and_then(|p| p.clusters.get_mut(parts[2])) {
                    match want {
                        Some(s) => {
                            c.doc["stateName"] = json!(s);
                            c.stuck = true;
                        }
                        None => c.stuck = false,
                    }
                    return json_response(200, Some(&json!({"ok": true})), "application/json");
                }
                return json_response(404, Some(&json!({"error": "no such cluster"})), "application/json");
            }
            json_response(404, Some(&json!({"error": "unknown sandbox endpoint"})), "application/json")
        }
    }
}

/// A `DiskBackupReplicaSet` (openapi-subset.yaml) taken `age` ago.
fn snapshot(cluster: &str, age: Duration, status: &str) -> Value {
    let taken = std::time::SystemTime::now() - age;
    json!({
        "id": format!("{:024x}", fastrand::u128(..) >> 32),
        "cloudProvider": "AWS",
        "createdAt": state::iso_at(taken),
        "expiresAt": state::iso_at(taken + Duration::from_secs(7 * 86_400)),
        "frequencyType": "hourly",
        "snapshotType": "scheduled",
        "status": status,
        "type": "replicaSet",
        "replicaSetName": format!("atlas-{cluster}-shard-0"),
        "mongodVersion": "8.0.4",
        "storageSizeBytes": 1_048_576,
        "policyItems": [],
        "copyRegions": [],
    })
}

fn paginate(req: &Req, self_path: &str, items: Vec<Value>) -> Answer {
    let per_page: usize = req.query("itemsPerPage").and_then(|v| v.parse().ok()).unwrap_or(100);
    let page: usize = req.query("pageNum").and_then(|v| v.parse().ok()).unwrap_or(1);
    if !(1..=500).contains(&per_page) || page < 1 {
        return Err(ApiErr::new(400, "INVALID_QUERY_PARAMETER", "itemsPerPage must be between 1 and 500, and pageNum at least 1.")
            .params(&["itemsPerPage"]));
    }
    let total = items.len();
    let start = (page - 1).saturating_mul(per_page).min(total);
    let end = (start + per_page).min(total);
    let mut links = vec![json!({"href": format!("{}{self_path}?pageNum={page}&itemsPerPage={per_page}", req.base), "rel": "self"})];
    if end < total {
        links.push(json!({"href": format!("{}{self_path}?pageNum={}&itemsPerPage={per_page}", req.base, page + 1), "rel": "next"}));
    }
    let mut body = json!({"links": links, "results": items[start..end].to_vec()});
    if req.query("includeCount") != Some("false") {
        body["totalCount"] = json!(total);
    }
    Ok((200, Some(body)))
}

fn link(req: &Req, path: &str) -> Value {
    json!([{"href": format!("{}{path}", req.base), "rel": "self"}])
}

fn project<'a>(st: &'a mut State, id: &str) -> Result<&'a mut Project, ApiErr> {
    st.projects.get_mut(id).ok_or_else(|| ApiErr::new(404, "GROUP_NOT_FOUND", format!("No group with ID {id} exists.")).params(&[id]))
}

fn route(st: &mut State, method: &str, template: &str, req: &Req) -> Answer {
    let group = req.param("groupId").to_string();
    let base = "/api/atlas/v2/groups";
    if let Some(answer) = settings::route(st, method, template.trim_start_matches(base), req) {
        return answer;
    }
    if let Some(answer) = encryption::route(st, method, template.trim_start_matches(base), req) {
        return answer;
    }
    if let Some(answer) = peering::route(st, method, template.trim_start_matches(base), req) {
        return answer;
    }
    if let Some(answer) = private_endpoint::route(st, method, template.trim_start_matches(base), req) {
        return answer;
    }
    if let Some(answer) = access_list::route(st, method, template.trim_start_matches(base), req) {
        return answer;
    }
    if (method, template) == ("GET", "/api/atlas/v2/orgs/{orgId}/groups") {
        // `name` filters "case-insensitive ... prefixed by the specified name"
        // (openapi-v2.yaml, getOrgGroups, query parameter `name`).
        let org = req.param("orgId");
        let prefix = req.query("name").unwrap_or("").to_lowercase();
        let items: Vec<Value> = st
            .projects
            .values()
            .filter(|p| p.doc["orgId"] == json!(org))
            .filter(|p| p.doc["name"].as_str().is_some_and(|n| n.to_lowercase().starts_with(&prefix)))
            .map(|p| p.doc.clone())
            .collect();
        return paginate(req, &format!("/api/atlas/v2/orgs/{org}/groups"), items);
    }
    match (method, template.trim_start_matches(base)) {
        ("GET", "") => {
            let items: Vec<Value> = st.projects.values().map(|p| p.doc.clone()).collect();
            paginate(req, base, items)
        }
        ("POST", "") => create_project(st, req),
        ("GET", "/byName/{groupName}") => {
            let name = req.param("groupName");
            st.projects
                .values()
                .find(|p| p.doc["name"] == json!(name))
                .map(|p| (200, Some(p.doc.clone())))
                // A project that does not exist (or that the caller cannot see) answers 401
                // NOT_IN_GROUP, not 404: the Atlas Kubernetes operator's integration test
                // against real Atlas (test/int/project_test.go) and its error-code constants
                // (pkg/controller/atlas/api_error.go: "NOT_IN_GROUP ... the project that either
                // doesn't exist or the user doesn't have permissions for").
                .ok_or_else(|| {
                    ApiErr::new(401, "NOT_IN_GROUP", format!("The current user is not in the group, or the group {name} does not exist."))
                        .params(&[name])
                })
        }
        ("GET", "/{groupId}") => Ok((200, Some(project(st, &group)?.doc.clone()))),
        ("PATCH", "/{groupId}") => {
            let b = req.body_obj()?.clone();
            check_tags(b.get("tags"))?;
            let p = project(st, &group)?;
            for k in ["name", "tags", "withDefaultAlertsSettings"] {
                if let Some(v) = b.get(k) {
                    p.doc[k] = v.clone();
                }
            }
            Ok((200, Some(p.doc.clone())))
        }
        ("DELETE", "/{groupId}") => {
            let close_delay = st.close_delay;
            let p = project(st, &group)?;
            // 409 CANNOT_CLOSE_GROUP_ACTIVE_ATLAS_CLUSTERS while clusters exist, and for a while
            // after the last one is gone: terraform-provider-mongodbatlas' nightly test logs show
            // "DELETE: HTTP 409 Conflict (Error code: CANNOT_CLOSE_GROUP_ACTIVE_ATLAS_CLUSTERS)
            // Detail: Cannot close group while it has active clusters" after destroying the
            // clusters, and mongodb-mcp-server's test cleanup retries that 409 every 30 s.
            let recently_emptied = p.clusters_gone_at.is_some_and(|t| t.elapsed() < close_delay);
            if !p.clusters.is_empty() || recently_emptied {
                return Err(ApiErr::new(
                    409,
                    "CANNOT_CLOSE_GROUP_ACTIVE_ATLAS_CLUSTERS",
                    "Cannot close group while it has active clusters; please terminate all clusters.",
                ));
            }
            st.projects.remove(&group);
            Ok((204, None))
        }
        ("GET", "/{groupId}/clusters") => {
            let p = project(st, &group)?;
            let items: Vec<Value> = p.clusters.values().filter(|c| !c.flex).map(|c| c.doc.clone()).collect();
            paginate(req, &format!("{base}/{group}/clusters"), items)
        }
        ("POST", "/{groupId}/clusters") => create_cluster(st, req, &group),
        ("POST", "/{groupId}/clusters/tenantUpgrade") => tenant_upgrade(st, req, &group),
        ("GET", "/{groupId}/clusters/{clusterName}") => {
            let name = req.param("clusterName");
            let c = cluster(project(st, &group)?, &group, name, false)?;
            Ok((200, Some(c.doc.clone())))
        }
        ("PATCH", "/{groupId}/clusters/{clusterName}") => update_cluster(st, req, &group),
        ("DELETE", "/{groupId}/clusters/{clusterName}") => delete_cluster(st, &group, req.param("clusterName"), false),
        ("GET", "/{groupId}/clusters/{clusterName}/status") => {
            // changeStatus: "Atlas returns Applied if it completed adding a user to, or removing
            // a user from, your cluster ... When status is Pending, new users can't log in"
            // (openapi-v2.yaml, ClusterStatus).
            let name = req.param("clusterName").to_string();
            let user_delay = st.user_delay;
            let p = project(st, &group)?;
            let pending = p.users_changed_at.is_some_and(|t| t.elapsed() < user_delay);
            cluster(p, &group, &name, false)?;
            let status = if pending { "PENDING" } else { "APPLIED" };
            Ok((200, Some(json!({"changeStatus": status, "links": link(req, &format!("{base}/{group}/clusters/{name}/status"))}))))
        }
        ("GET", "/{groupId}/clusters/{clusterName}/backup/schedule") => {
            let name = req.param("clusterName").to_string();
            let p = project(st, &group)?;
            cluster(p, &group, &name, false)?;
            p.schedules.get(&name).map(|s| (200, Some(s.clone()))).ok_or_else(|| {
                ApiErr::new(400, "CLUSTER_DOES_NOT_HAVE_BACKUP", format!("Cloud backup is not enabled on cluster {name}.")).params(&[&name])
            })
        }
        ("PATCH", "/{groupId}/clusters/{clusterName}/backup/schedule") => backup::update_schedule(st, req, &group),
        // openapi-subset.yaml listGroupClusterBackupSnapshots: PaginatedCloudBackupReplicaSetView
        // of DiskBackupReplicaSet. The order of `results` is not documented, so the sandbox
        // lists them oldest first: a client must not take the first as the latest.
        ("GET", "/{groupId}/clusters/{clusterName}/backup/snapshots") => {
            let name = req.param("clusterName").to_string();
            let p = project(st, &group)?;
            cluster(p, &group, &name, false)?;
            let items = p.snapshots.get(&name).cloned().unwrap_or_default();
            paginate(req, &format!("/api/atlas/v2/groups/{group}/clusters/{name}/backup/snapshots"), items)
        }
        ("GET", "/{groupId}/flexClusters") => {
            let p = project(st, &group)?;
            let items: Vec<Value> = p.clusters.values().filter(|c| c.flex).map(|c| c.doc.clone()).collect();
            paginate(req, &format!("{base}/{group}/flexClusters"), items)
        }
        ("POST", "/{groupId}/flexClusters") => create_flex(st, req, &group),
        ("POST", "/{groupId}/flexClusters:tenantUpgrade") => flex_upgrade(st, req, &group),
        ("GET", "/{groupId}/flexClusters/{name}") => {
            let c = cluster(project(st, &group)?, &group, req.param("name"), true)?;
            Ok((200, Some(c.doc.clone())))
        }
        ("PATCH", "/{groupId}/flexClusters/{name}") => {
            let b = req.body_obj()?.clone();
            check_tags(b.get("tags"))?;
            let name = req.param("name").to_string();
            let c = cluster(project(st, &group)?, &group, &name, true)?;
            for k in ["tags", "terminationProtectionEnabled"] {
                if let Some(v) = b.get(k) {
                    c.doc[k] = v.clone();
                }
            }
            Ok((200, Some(c.doc.clone())))
        }
        ("DELETE", "/{groupId}/flexClusters/{name}") => delete_cluster(st, &group, req.param("name"), true),
        ("GET", "/{groupId}/databaseUsers") => {
            let items = project(st, &group)?.users.clone();
            paginate(req, &format!("{base}/{group}/databaseUsers"), items)
        }
        ("POST", "/{groupId}/databaseUsers") => users::create_user(st, req, &group),
        ("GET", "/{groupId}/databaseUsers/{databaseName}/{username}") => {
            let (db, user) = (req.param("databaseName").to_string(), req.param("username").to_string());
            let p = project(st, &group)?;
            p.users
                .iter()
                .find(|u| u["username"] == json!(user) && u["databaseName"] == json!(db))
                .map(|u| (200, Some(u.clone())))
                .ok_or_else(|| users::user_missing(&user, &group))
        }
        ("PATCH", "/{groupId}/databaseUsers/{databaseName}/{username}") => users::update_user(st, req, &group),
        ("DELETE", "/{groupId}/databaseUsers/{databaseName}/{username}") => {
            let (db, user) = (req.param("databaseName").to_string(), req.param("username").to_string());
            let p = project(st, &group)?;
            let before = p.users.len();
            p.users.retain(|u| !(u["username"] == json!(user) && u["databaseName"] == json!(db)));
            if p.users.len() == before {
                return Err(users::user_missing(&user, &group));
            }
            p.users_changed_at = Some(std::time::Instant::now());
            p.passwords.remove(&(db, user));
            users::sync_mock_users(st);
            Ok((204, None))
        }
        ("GET", "/{groupId}/alertConfigs") => {
            let items = project(st, &group)?.alerts.clone();
            paginate(req, &format!("{base}/{group}/alertConfigs"), items)
        }
        ("POST", "/{groupId}/alertConfigs") => users::save_alert(st, req, &group, None),
        ("GET", "/{groupId}/alertConfigs/{alertConfigId}") => {
            let id = req.param("alertConfigId").to_string();
            let p = project(st, &group)?;
            p.alerts.iter().find(|a| a["id"] == json!(id)).map(|a| (200, Some(a.clone()))).ok_or_else(|| users::alert_missing(&id))
        }
        ("PUT", "/{groupId}/alertConfigs/{alertConfigId}") => {
            let id = req.param("alertConfigId").to_string();
            users::save_alert(st, req, &group, Some(id))
        }
        ("DELETE", "/{groupId}/alertConfigs/{alertConfigId}") => {
            let id = req.param("alertConfigId").to_string();
            let p = project(st, &group)?;
            let before = p.alerts.len();
            p.alerts.retain(|a| a["id"] != json!(id));
            if p.alerts.len() == before {
                return Err(users::alert_missing(&id));
            }
            Ok((204, None))
        }
        _ => Err(ApiErr::new(404, "RESOURCE_NOT_FOUND", format!("No route for {method} {template}."))),
    }
}

/// Atlas' tag rules: keys and values of 1-255 characters (ResourceTag in openapi-v2.yaml), made
/// of letters, digits, spaces and `; @ _ - . +` only (Atlas' Resource Tags page; the Atlas
/// Kubernetes operator's TagSpec pattern `^[a-zA-Z0-9][a-zA-Z0-9 @_.+;-]*$`). A `:` or `/` is
/// refused with 400 (terraform-provider-mongodbatlas#1668, #4124); the error code is not
/// recorded there, INVALID_ATTRIBUTE is the spec's generic one.
fn check_tags(tags: Option<&Value>) -> Result<(), ApiErr> {
    let Some(tags) = tags else { return Ok(()) };
    let items =
        tags.as_array().ok_or_else(|| ApiErr::new(400, "INVALID_ATTRIBUTE", "Invalid attribute tags specified.").params(&["tags"]))?;
    let legal = |s: &str| {
        (1..=255).contains(&s.chars().count())
            && s.starts_with(|c: char| c.is_ascii_alphanumeric())
            && s.chars().all(|c| c.is_ascii_alphanumeric() || " ;@_-.+".contains(c))
    };
    for t in items {
        for field in ["key", "value"] {
            let v = t.get(field).and_then(|v| v.as_str()).unwrap_or("");
            if !legal(v) {
                return Err(ApiErr::new(
                    400,
                    "INVALID_ATTRIBUTE",
                    format!("Invalid tag {field} \"{v}\": tags can only contain letters, numbers, spaces, and the following symbols: ; @ _ - . +"),
                )
                .params(&["tags"]));
            }
        }
    }
    Ok(())
}

/// Dedicated tiers: M10 and up, R, NVMe and GEN_2 variants (the instanceSize enums of
/// DedicatedHardwareSpec20240805 in openapi-v2.yaml).
fn is_dedicated_size(size: &str) -> bool {
    let base = size.strip_suffix("_NVME").or_else(|| size.strip_suffix("_GEN_2")).unwrap_or(size);
    let digits = base.strip_prefix('M').or_else(|| base.strip_prefix('R'));
    digits.is_some_and(|d| d.parse::<u32>().is_ok_and(|n| n >= 10))
}

/// Percent-encodes one path segment for `links`.
fn encode_segment(s: &str) -> String {
    s.bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b"-._~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

fn required_str<'a>(b: &'a Map<String, Value>, field: &'static str) -> Result<&'a str, ApiErr> {
    b.get(field)
        .and_then(|v| v.as_str())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiErr::new(400, "INVALID_ATTRIBUTE", format!("Invalid attribute {field} specified.")).params(&[field]))
}

fn create_project(st: &mut State, req: &Req) -> Answer {
    let b = req.body_obj()?.clone();
    let name = required_str(&b, "name")?.to_string();
    let org = required_str(&b, "orgId")?.to_string();
    check_tags(b.get("tags"))?;
    let name_ok = name.chars().count() <= 64 && name.chars().all(|c| c.is_alphanumeric() || "-_.(),:&@+' ".contains(c));
    if !name_ok {
        return Err(ApiErr::new(400, "INVALID_ATTRIBUTE", "Invalid attribute name specified.").params(&["name"]));
    }
    if st.projects.values().any(|p| p.doc["name"] == json!(name)) {
        return Err(ApiErr::new(409, "GROUP_ALREADY_EXISTS", format!("A group with name \"{name}\" already exists.")).params(&[&name]));
    }
    let id = st.new_id();
    let doc = json!({
        "clusterCount": 0,
        "created": now_iso(),
        "id": id,
        "links": link(req, &format!("/api/atlas/v2/groups/{id}")),
        "name": name,
        "orgId": org,
        "tags": b.get("tags").cloned().unwrap_or(json!([])),
        "withDefaultAlertsSettings": b.get("withDefaultAlertsSettings").cloned().unwrap_or(json!(true)),
    });
    let mut p = Project { doc: doc.clone(), ..Default::default() };
    if doc["withDefaultAlertsSettings"] == json!(true) {
        for (event, metric, threshold) in DEFAULT_ALERTS {
            let aid = st.new_id();
            let mut a = json!({
                "created": now_iso(), "updated": now_iso(), "enabled": true, "eventTypeName": event, "groupId": id, "id": aid,
                "links": link(req, &format!("/api/atlas/v2/groups/{id}/alertConfigs/{aid}")), "matchers": [],
                "notifications": [{"delayMin": 0, "emailEnabled": true, "intervalMin": 60, "roles": ["GROUP_OWNER"], "smsEnabled": false, "typeName": "GROUP"}],
            });
            if let Some((m, op, t, units)) = metric {
                a["metricThreshold"] = json!({"metricName": m, "mode": "AVERAGE", "operator": op, "threshold": t, "units": units});
            }
            if let Some((op, t, units)) = threshold {
                a["threshold"] = json!({"operator": op, "threshold": t, "units": units});
            }
            p.alerts.push(a);
        }
    }
    st.projects.insert(id, p);
    Ok((201, Some(doc)))
}

fn cluster<'a>(p: &'a mut Project, group: &str, name: &str, flex_api: bool) -> Result<&'a mut ClusterRec, ApiErr> {
    let c = p.clusters.get_mut(name).ok_or_else(|| {
        ApiErr::new(404, "CLUSTER_NOT_FOUND", format!("No cluster named {name} exists in group {group}.")).params(&[name, group])
    })?;
    match (c.flex, flex_api) {
        (true, false) => Err(ApiErr::new(
            400,
            "CANNOT_USE_FLEX_CLUSTER_IN_CLUSTER_API",
            format!("Cannot use the Flex cluster {name} in the Cluster API."),
        )
        .params(&[name])),
        (false, true) => Err(ApiErr::new(
            400,
            "CANNOT_USE_NON_FLEX_CLUSTER_IN_FLEX_API",
            format!("Cannot use the non-Flex cluster {name} in the Flex API."),
        )
        .params(&[name])),
        _ => Ok(c),
    }
}

fn default_disk(tier: &str) -> f64 {
    match tier {
        "M10" => 10.0,
        "M20" => 20.0,
        "M30" => 40.0,
        "M40" => 80.0,
        "M50" => 160.0,
        "M60" => 320.0,
        _ => 40.0,
    }
}

fn srv_host(name: &str, group: &str) -> String {
    format!("{}.{}.mongodb.net", name.to_ascii_lowercase(), &group[group.len().saturating_sub(7)..])
}

/// A dedicated cluster's `advancedConfiguration`: Atlas' defaults (the TestSchedule capture's
/// POST answer: TLS1_2, DEFAULT cipher mode, empty custom lists) with the request's fields on
/// top. `minimumEnabledTlsProtocol` takes the enum of openapi-v2.yaml
/// ApiAtlasClusterAdvancedConfigurationView.
fn advanced_configuration(live: &Value, request: Option<&Value>) -> Result<Value, ApiErr> {
    let mut out = if live.is_object() {
        live.clone()
    } else {
        json!({"customOpensslCipherConfigTls12": [], "customOpensslCipherConfigTls13": [], "minimumEnabledTlsProtocol": "TLS1_2", "tlsCipherConfigMode": "DEFAULT"})
    };
    if let Some(Value::Object(r)) = request {
        for (k, v) in r {
            if k == "minimumEnabledTlsProtocol" && !["TLS1_0", "TLS1_1", "TLS1_2", "TLS1_3"].iter().any(|t| v == *t) {
                let shown = v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string());
                return Err(ApiErr::new(400, "INVALID_ENUM_VALUE", format!("An invalid enumeration value {shown} was specified."))
                    .params(&[&shown, "minimumEnabledTlsProtocol"]));
            }
            out[k] = v.clone();
        }
    }
    Ok(out)
}

/// Region configs as Atlas stores them: ids aside, the request plus effective specs.
fn normalize_region_configs(st: &mut State, specs: &Value) -> Result<Value, ApiErr> {
    let specs = specs.as_array().filter(|s| !s.is_empty()).ok_or_else(|| {
        ApiErr::new(400, "INVALID_ATTRIBUTE", "Invalid attribute replicationSpecs specified.").params(&["replicationSpecs"])
    })?;
    let mut out = Vec::new();
    for spec in specs {
        let rcs = spec.get("regionConfigs").and_then(|r| r.as_array()).filter(|r| !r.is_empty()).ok_or_else(|| {
            ApiErr::new(400, "INVALID_ATTRIBUTE", "Invalid attribute regionConfigs specified.").params(&["regionConfigs"])
        })?;
        let mut configs = Vec::new();
        for rc in rcs {
            let provider = rc.get("providerName").and_then(|v| v.as_str()).unwrap_or("");
            if !["AWS", "GCP", "AZURE", "TENANT"].contains(&provider) {
                return Err(ApiErr::new(400, "INVALID_ENUM_VALUE", format!("An invalid enumeration value {provider} was specified."))
                    .params(&[provider, "providerName"]));
            }
            let mut rc = rc.clone();
            let size = ["electableSpecs", "readOnlySpecs", "analyticsSpecs"]
                .iter()
                .find_map(|k| rc.pointer(&format!("/{k}/instanceSize")).and_then(|v| v.as_str()))
                .unwrap_or("")
                .to_string();
            if provider == "TENANT" {
                if size != "M0" {
                    return Err(ApiErr::new(400, "INVALID_ATTRIBUTE", "Shared-tier clusters other than M0 are created as Flex clusters.")
                        .params(&["instanceSize"]));
                }
                rc["electableSpecs"] = json!({"instanceSize": "M0", "effectiveInstanceSize": "M0", "diskSizeGB": 0.5});
            } else {
                if !is_dedicated_size(&size) {
                    return Err(ApiErr::new(400, "INVALID_ENUM_VALUE", format!("An invalid enumeration value {size} was specified."))
                        .params(&[&size, "instanceSize"]));
                }
                // A region with only read-only or analytics nodes has no electable ones; an
                // electable spec without a count has the replica set's 3.
                let other_roles = rc.get("readOnlySpecs").is_some() || rc.get("analyticsSpecs").is_some();
                let mut es = rc.get("electableSpecs").cloned().unwrap_or(json!({"instanceSize": size}));
                if es.get("nodeCount").is_none() {
                    es["nodeCount"] = json!(if rc.get("electableSpecs").is_none() && other_roles { 0 } else { 3 });
                }
                if es.get("diskSizeGB").is_none() {
                    es["diskSizeGB"] = json!(default_disk(&size));
                }
                let mut effective = es.clone();
                effective["instanceSize"] = json!(size);
                rc["electableSpecs"] = es;
                rc["effectiveElectableSpecs"] = effective;
                if rc.get("autoScaling").is_none() {
                    rc["autoScaling"] = json!({"compute": {"enabled": false, "scaleDownEnabled": false}, "diskGB": {"enabled": false}});
                }
                if rc.get("priority").is_none() {
                    rc["priority"] = json!(7);
                }
            }
            configs.push(rc);
        }
        if configs.iter().all(|rc| rc["providerName"] != json!("TENANT")) {
            let size = configs[0].pointer("/electableSpecs/instanceSize").cloned().unwrap_or(json!(""));
            let disk = configs[0].pointer("/electableSpecs/diskSizeGB").cloned().unwrap_or(Value::Null);
            regions::settle(&mut configs, size.as_str().unwrap_or(""), &disk);
            regions::check(&configs)?;
        }
        out.push(json!({"id": st.new_id(), "zoneId": st.new_id(), "zoneName": spec.get("zoneName").cloned().unwrap_or(json!("Zone 1")), "regionConfigs": configs}));
    }
    Ok(Value::Array(out))
}

fn default_schedule(st: &mut State, req: &Req, group: &str, name: &str, pit: bool) -> Value {
    let item = |st: &mut State, ft: &str, fi: i64, unit: &str, v: i64| json!({"frequencyInterval": fi, "frequencyType": ft, "id": st.new_id(), "retentionUnit": unit, "retentionValue": v});
    let items = vec![
        item(st, "hourly", 6, "days", 7),
        item(st, "daily", 1, "days", 7),
        item(st, "weekly", 6, "weeks", 4),
        item(st, "monthly", 40, "months", 12),
        item(st, "yearly", 12, "years", 1),
    ];
    let mut s = json!({
        "autoExportEnabled": false, "clusterName": name, "copySettings": [],
        "links": link(req, &format!("/api/atlas/v2/groups/{group}/clusters/{name}/backup/schedule")),
        "policies": [{"id": st.new_id(), "policyItems": items}],
        "referenceHourOfDay": 3, "referenceMinuteOfHour": 16,
    });
    if pit {
        s["restoreWindowDays"] = json!(7);
    }
    s
}

fn create_cluster(st: &mut State, req: &Req, group: &str) -> Answer {
    let b = req.body_obj()?.clone();
    let name = required_str(&b, "name")?.to_string();
    if !(name.len() <= 64
        && name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
    {
        return Err(ApiErr::new(400, "CLUSTER_NAME_INVALID", format!("The name {name} is invalid.")).params(&[&name]));
    }
    check_tags(b.get("tags"))?;
    let specs = normalize_region_configs(st, b.get("replicationSpecs").unwrap_or(&Value::Null))?;
    let tenant = specs.pointer("/0/regionConfigs/0/providerName") == Some(&json!("TENANT"));
    let p = project(st, group)?;
    if p.clusters.contains_key(&name) {
        return Err(ApiErr::new(400, "DUPLICATE_CLUSTER_NAME", format!("A cluster named {name} is already present in group {group}."))
            .params(&[&name, group]));
    }
    if tenant && p.clusters.values().any(|c| c.doc.pointer("/replicationSpecs/0/regionConfigs/0/providerName") == Some(&json!("TENANT"))) {
        return Err(ApiErr::new(
            400,
            "CANNOT_CREATE_FREE_CLUSTER_VIA_PUBLIC_API",
            "Cannot create a free cluster: this project already has another free cluster.",
        )
        .params(&[&name]));
    }
    encryption::check_cluster(p, &b)?;
    let advanced = if tenant { None } else { Some(advanced_configuration(&json!({}), b.get("advancedConfiguration"))?) };
    let id = st.new_id();
    let backup = !tenant && b.get("backupEnabled").and_then(|v| v.as_bool()).unwrap_or(false);
    let pit = !tenant && b.get("pitEnabled").and_then(|v| v.as_bool()).unwrap_or(false);
    let doc = json!({
        "backupEnabled": backup,
        "biConnector": {"enabled": false, "readPreference": "SECONDARY"},
        "clusterType": b.get("clusterType").cloned().unwrap_or(json!("REPLICASET")),
        "connectionStrings": {"standardSrv": format!("mongodb+srv://{}", srv_host(&name, group))},
        "createDate": now_iso(),
        "diskWarmingMode": "FULLY_WARMED",
        "encryptionAtRestProvider": b.get("encryptionAtRestProvider").cloned().unwrap_or(json!("NONE")),
        "globalClusterSelfManagedSharding": false,
        "groupId": group,
        "id": id,
        "labels": [],
        "links": link(req, &format!("/api/atlas/v2/groups/{group}/clusters/{name}")),
        "mongoDBMajorVersion": b.get("mongoDBMajorVersion").cloned().unwrap_or(json!("8.0")),
        "mongoDBVersion": format!("{}.14", b.get("mongoDBMajorVersion").and_then(|v| v.as_str()).unwrap_or("8.0")),
        "name": name,
        "paused": false,
        "pitEnabled": pit,
        "replicationSpecs": specs,
        "rootCertType": "ISRGROOTX1",
        "stateName": "CREATING",
        "tags": b.get("tags").cloned().unwrap_or(json!([])),
        "terminationProtectionEnabled": b.get("terminationProtectionEnabled").cloned().unwrap_or(json!(false)),
        "versionReleaseSystem": "LTS",
    });
    let mut doc = doc;
    if let Some(a) = advanced {
        doc["advancedConfiguration"] = a;
    }
    let until = st.transition_until();
    let schedule = backup.then(|| default_schedule(st, req, group, &name, pit));
    let p = project(st, group)?;
    if let Some(s) = schedule {
        p.schedules.insert(name.clone(), s);
        // A first snapshot when the cluster is made (a sandbox choice: Atlas takes the first
        // scheduled one within the first interval), so a new cluster has a latest snapshot.
        p.snapshots.insert(name.clone(), vec![snapshot(&name, std::time::Duration::ZERO, "completed")]);
    }
    p.clusters.insert(name, ClusterRec::new(doc.clone(), false, until));
    p.doc["clusterCount"] = json!(p.clusters.len());
    p.clusters_gone_at = None;
    peering::cluster_made(st, group, &doc);
    Ok((201, Some(doc)))
}

/// Atlas changes a cluster only when it is IDLE: a change while it is CREATING, UPDATING or
/// REPAIRING is refused with 409 (the Atlas MCP server's pause tool and public pause scripts
/// handle "409 while stateName is UPDATING: another operation in flight"; the error code is not
/// recorded, so this one is named for what it says).
fn require_idle(c: &ClusterRec, name: &str) -> Result<(), ApiErr> {
    match c.doc["stateName"].as_str() {
        Some("IDLE") => Ok(()),
        state => Err(ApiErr::new(
            409,
            "CLUSTER_OPERATION_IN_PROGRESS",
            format!("Cluster {name} is {}; wait until it is IDLE before changing it.", state.unwrap_or("busy")),
        )
        .params(&[name])),
    }
}

fn update_cluster(st: &mut State, req: &Req, group: &str) -> Answer {
    let b = req.body_obj()?.clone();
    let name = req.param("clusterName").to_string();
    check_tags(b.get("tags"))?;
    let specs = match b.get("replicationSpecs") {
        Some(s) => Some(normalize_region_configs(st, s)?),
        None => None,
    };
    let until = st.transition_until();
    let resume_window = st.resume_window;
    let (needs_schedule, pit) = {
        let p = project(st, group)?;
        encryption::check_cluster(p, &b)?;
        let c = cluster(p, group, &name, false)?;
        require_idle(c, &name)?;
        let paused = c.doc["paused"] == json!(true);
        let want_paused = b.get("paused").and_then(|v| v.as_bool());
        // `paused` goes alone: ENDPOINTS.md (clusters, `paused`), from the TF provider, which
        // sends `paused:false` alone before other changes and `paused:true` alone after them.
        if want_paused.is_some() && b.len() > 1 {
            return Err(ApiErr::new(
                400,
                "CANNOT_PAUSE_AND_UPDATE",
                "Pausing or resuming a cluster must be the only change in its request.",
            )
            .params(&[&name]));
        }
        // A paused cluster takes no change but `paused: false`: terraform-provider-mongodbatlas
        // internal/service/advancedcluster resource_test.go expects CANNOT_UPDATE_PAUSED_CLUSTER
        // for an instance-size change while paused (the operator's e2e tests too).
        if paused && want_paused.is_none() {
            return Err(ApiErr::new(409, "CANNOT_UPDATE_PAUSED_CLUSTER", format!("Cannot update cluster {name} while it is paused."))
                .params(&[&name]));
        }
        // Pausing within about 60 minutes of a resume is refused: the same resource_test.go
        // (paused -> unpaused -> paused expects CANNOT_PAUSE_RECENTLY_RESUMED_CLUSTER).
        if want_paused == Some(true) && !paused && c.resumed_at.is_some_and(|t| t.elapsed() < resume_window) {
            return Err(ApiErr::new(
                400,
                "CANNOT_PAUSE_RECENTLY_RESUMED_CLUSTER",
                format!("Cluster {name} was resumed recently; it cannot be paused until 60 minutes after resuming."),
            )
            .params(&[&name]));
        }
        if want_paused == Some(false) && paused {
            c.resumed_at = Some(std::time::Instant::now());
        }
        let tenant = c.doc.pointer("/replicationSpecs/0/regionConfigs/0/providerName") == Some(&json!("TENANT"));
        let mut changed_config = false;
        if let Some(s) = specs {
            if tenant && s.pointer("/0/regionConfigs/0/providerName") != Some(&json!("TENANT")) {
                return Err(ApiErr::new(
                    400,
                    "TENANT_CLUSTER_UPDATE_UNSUPPORTED",
                    "Upgrade a free cluster with POST /clusters/tenantUpgrade.",
                )
                .params(&[&name]));
            }
            regions::check_change(&c.doc["replicationSpecs"], &s)?;
            c.doc["replicationSpecs"] = s;
            changed_config = true;
        }
        if let Some(a) = b.get("advancedConfiguration") {
            if tenant {
                // Not offered on shared tiers (openapi-v2.yaml getGroupClusterProcessArgs: "This
                // feature isn't available for M0 free clusters").
                return Err(ApiErr::new(400, "INVALID_ATTRIBUTE", "Invalid attribute advancedConfiguration specified.")
                    .params(&["advancedConfiguration"]));
            }
            let merged = advanced_configuration(&c.doc["advancedConfiguration"], Some(a))?;
            if merged != c.doc["advancedConfiguration"] {
                changed_config = true;
            }
            c.doc["advancedConfiguration"] = merged;
        }
        for (k, config) in [
            ("backupEnabled", true),
            ("pitEnabled", true),
            ("mongoDBMajorVersion", true),
            ("paused", true),
            ("terminationProtectionEnabled", false),
            ("tags", false),
            ("encryptionAtRestProvider", true),
        ] {
            if let Some(v) = b.get(k) {
                if c.doc.get(k) != Some(v) && config {
                    changed_config = true;
                }
                c.doc[k] = v.clone();
            }
        }
        if let Some(v) = b.get("mongoDBMajorVersion").and_then(|v| v.as_str()) {
            c.doc["mongoDBVersion"] = json!(format!("{v}.14"));
        }
        if changed_config {
            c.doc["stateName"] = json!("UPDATING");
            c.until = until;
        }
        let backup = c.doc["backupEnabled"] == json!(true);
        let pit = c.doc["pitEnabled"] == json!(true);
        let doc_has = p.schedules.contains_key(&name);
        if !backup {
            p.schedules.remove(&name);
        }
        (backup && !doc_has, pit)
    };
    if needs_schedule {
        let s = default_schedule(st, req, group, &name, pit);
        project(st, group)?.schedules.insert(name.clone(), s);
    }
    let p = project(st, group)?;
    Ok((200, Some(p.clusters[&name].doc.clone())))
}

fn delete_cluster(st: &mut State, group: &str, name: &str, flex: bool) -> Answer {
    let until = st.transition_until();
    let p = project(st, group)?;
    let c = cluster(p, group, name, flex)?;
    if c.doc["terminationProtectionEnabled"] == json!(true) {
        return Err(ApiErr::new(
            400,
            "CANNOT_TERMINATE_CLUSTER_WHEN_TERMINATION_PROTECTION_ENABLED",
            format!("Cannot terminate cluster {name} while termination protection is enabled."),
        )
        .params(&[name]));
    }
    if c.doc["stateName"] == json!("DELETING") {
        return Err(
            ApiErr::new(400, "CLUSTER_ALREADY_REQUESTED_DELETION", format!("Cluster {name} is already being deleted.")).params(&[name])
        );
    }
    c.doc["stateName"] = json!("DELETING");
    c.until = until;
    if flex { Ok((204, None)) } else { Ok((202, Some(json!({})))) }
}

/// `POST /clusters/tenantUpgrade`: an M0 becomes a Flex or a dedicated cluster ("Upgrades a
/// shared-tier cluster to a Flex or Dedicated (M10+) cluster", openapi-v2.yaml,
/// upgradeGroupClusterTenantUpgrade; body LegacyAtlasTenantClusterUpgradeRequest, whose
/// providerSettings picks FLEX or a cloud provider). The cluster goes UPDATING, and it comes
/// back with a new id (the upgrade recording cited in issue 10; the TF provider re-reads the
/// cluster by name after an upgrade for that reason).
fn tenant_upgrade(st: &mut State, req: &Req, group: &str) -> Answer {
    let b = req.body_obj()?.clone();
    let name = required_str(&b, "name")?.to_string();
    let ps = b.get("providerSettings").cloned().unwrap_or(Value::Null);
    let size = ps.get("instanceSizeName").and_then(|v| v.as_str()).unwrap_or("").to_string();
    let provider = ps.get("providerName").and_then(|v| v.as_str()).unwrap_or("AWS").to_string();
    let region = ps.get("regionName").and_then(|v| v.as_str()).unwrap_or("US_EAST_1").to_string();
    let new_id = st.new_id();
    let until = st.transition_until();
    let specs = if provider == "FLEX" {
        None
    } else {
        Some(normalize_region_configs(
            st,
            &json!([{"zoneName": "Zone 1", "regionConfigs": [{"providerName": provider, "regionName": region, "priority": 7, "electableSpecs": {"instanceSize": size}}]}]),
        )?)
    };
    let p = project(st, group)?;
    let c = cluster(p, group, &name, false)?;
    if c.doc.pointer("/replicationSpecs/0/regionConfigs/0/providerName") != Some(&json!("TENANT")) {
        return Err(ApiErr::new(400, "NOT_TENANT_CLUSTER", format!("Cluster {name} is not a shared-tier cluster.")).params(&[&name]));
    }
    require_idle(c, &name)?;
    let backing = c.doc.pointer("/replicationSpecs/0/regionConfigs/0/backingProviderName").cloned().unwrap_or(json!("AWS"));
    let tenant_region = c.doc.pointer("/replicationSpecs/0/regionConfigs/0/regionName").cloned().unwrap_or(json!(region));
    match specs {
        Some(specs) => {
            c.doc["replicationSpecs"] = specs;
            c.doc["id"] = json!(new_id);
            // Dedicated now: it has the advanced configuration dedicated clusters have.
            c.doc["advancedConfiguration"] = advanced_configuration(&Value::Null, None)?;
        }
        None => {
            // M0 -> Flex: from now on the cluster lives on the Flex API.
            let old = c.doc.clone();
            c.flex = true;
            c.doc = json!({
                "backupSettings": {"enabled": true},
                "clusterType": "REPLICASET",
                "connectionStrings": old["connectionStrings"].clone(),
                "createDate": old["createDate"].clone(),
                "groupId": group,
                "id": new_id,
                "links": link(req, &format!("/api/atlas/v2/groups/{group}/flexClusters/{name}")),
                "mongoDBVersion": old["mongoDBVersion"].clone(),
                "name": name,
                "providerSettings": {"backingProviderName": ps.get("backingProviderName").cloned().unwrap_or(backing), "diskSizeGB": 5.0, "providerName": "FLEX", "regionName": tenant_region},
                "tags": old["tags"].clone(),
                "terminationProtectionEnabled": old["terminationProtectionEnabled"].clone(),
                "versionReleaseSystem": "LTS",
            });
        }
    }
    c.doc["stateName"] = json!("UPDATING");
    c.until = until;
    // The answer is a LegacyAtlasCluster (openapi-v2.yaml): the request's provider settings.
    Ok((
        200,
        Some(
            json!({"clusterType": "REPLICASET", "groupId": group, "id": new_id, "name": name, "providerSettings": ps, "stateName": "UPDATING"}),
        ),
    ))
}

fn create_flex(st: &mut State, req: &Req, group: &str) -> Answer {
    let b = req.body_obj()?.clone();
    let name = required_str(&b, "name")?.to_string();
    let ps = b.get("providerSettings").and_then(|v| v.as_object()).ok_or_else(|| {
        ApiErr::new(400, "INVALID_ATTRIBUTE", "Invalid attribute providerSettings specified.").params(&["providerSettings"])
    })?;
    let backing = required_str(ps, "backingProviderName")?.to_string();
    check_tags(b.get("tags"))?;
    let region = required_str(ps, "regionName")?.to_string();
    let id = st.new_id();
    let until = st.transition_until();
    let p = project(st, group)?;
    if p.clusters.contains_key(&name) {
        return Err(ApiErr::new(400, "DUPLICATE_CLUSTER_NAME", format!("A cluster named {name} is already present in group {group}."))
            .params(&[&name, group]));
    }
    let host = srv_host(&name, group);
    let doc = json!({
        "backupSettings": {"enabled": true},
        "clusterType": "REPLICASET",
        "connectionStrings": {"standardSrv": format!("mongodb+srv://{host}")},
        "createDate": now_iso(),
        "groupId": group,
        "id": id,
        "links": link(req, &format!("/api/atlas/v2/groups/{group}/flexClusters/{name}")),
        "mongoDBVersion": "8.0.14",
        "name": name,
        "providerSettings": {"backingProviderName": backing, "diskSizeGB": 5.0, "providerName": "FLEX", "regionName": region},
        "stateName": "CREATING",
        "tags": b.get("tags").cloned().unwrap_or(json!([])),
        "terminationProtectionEnabled": b.get("terminationProtectionEnabled").cloned().unwrap_or(json!(false)),
        "versionReleaseSystem": "LTS",
    });
    p.clusters.insert(name, ClusterRec::new(doc.clone(), true, until));
    p.doc["clusterCount"] = json!(p.clusters.len());
    p.clusters_gone_at = None;
    Ok((201, Some(doc)))
}

fn flex_upgrade(st: &mut State, req: &Req, group: &str) -> Answer {
    let b = req.body_obj()?.clone();
    let name = required_str(&b, "name")?.to_string();
    let specs = normalize_region_configs(st, b.get("replicationSpecs").unwrap_or(&Value::Null))?;
    let until = st.transition_until();
    let new_id = st.new_id();
    let p = project(st, group)?;
    let rec = cluster(p, group, &name, true)?;
    require_idle(rec, &name)?;
    let flex = rec.doc.clone();
    let doc = json!({
        "backupEnabled": b.get("backupEnabled").cloned().unwrap_or(json!(false)),
        "biConnector": {"enabled": false, "readPreference": "SECONDARY"},
        "clusterType": "REPLICASET",
        "connectionStrings": flex["connectionStrings"].clone(),
        "createDate": flex["createDate"].clone(),
        "diskWarmingMode": "FULLY_WARMED",
        "encryptionAtRestProvider": "NONE",
        "globalClusterSelfManagedSharding": false,
        "groupId": group,
        // Upgraded clusters come back with a new id (see tenant_upgrade).
        "id": new_id,
        "labels": [],
        "links": link(req, &format!("/api/atlas/v2/groups/{group}/clusters/{name}")),
        "mongoDBMajorVersion": b.get("mongoDBMajorVersion").cloned().unwrap_or(json!("8.0")),
        "mongoDBVersion": "8.0.14",
        "name": name,
        "paused": false,
        "pitEnabled": b.get("pitEnabled").cloned().unwrap_or(json!(false)),
        "replicationSpecs": specs,
        "rootCertType": "ISRGROOTX1",
        "stateName": "UPDATING",
        "tags": flex["tags"].clone(),
        "terminationProtectionEnabled": b.get("terminationProtectionEnabled").cloned().unwrap_or(flex["terminationProtectionEnabled"].clone()),
        "versionReleaseSystem": "LTS",
    });
    p.clusters.insert(name, ClusterRec::new(doc, false, until));
    // The answer describes the Flex cluster being upgraded (FlexClusterDescription20241113).
    let mut answer = flex;
    answer["stateName"] = json!("UPDATING");
    Ok((200, Some(answer)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_templates_match() {
        let cases = [
            (
                "/api/atlas/v2/groups/{groupId}/accessList/{entryValue}",
                "/api/atlas/v2/groups/abc/accessList/10.0.0.0%2F16",
                Some(vec![("groupId", "abc"), ("entryValue", "10.0.0.0/16")]),
            ),
            ("/api/atlas/v2/groups/byName/{groupName}", "/api/atlas/v2/groups/byName/poafix-dev", Some(vec![("groupName", "poafix-dev")])),
            ("/api/atlas/v2/groups/{groupId}", "/api/atlas/v2/groups/abc/clusters", None),
            (
                "/api/atlas/v2/groups/{groupId}/flexClusters:tenantUpgrade",
                "/api/atlas/v2/groups/g/flexClusters:tenantUpgrade",
                Some(vec![("groupId", "g")]),
            ),
        ];
        for (t, p, want) in cases {
            let got = match_path(t, p);
            let want = want.map(|w| w.into_iter().map(|(a, b)| (a.to_string(), b.to_string())).collect::<Vec<_>>());
            assert_eq!(got, want, "{t} vs {p}");
        }
    }
}
