//! The Atlas Admin API v2 client: versioned media types, service-account or API-key auth,
//! one retry policy, pagination.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::Mutex;

/// Media-type versions, per operation (see ../shared/atlas/ENDPOINTS.md).
pub mod version {
    pub const V2023_01_01: &str = "2023-01-01";
    pub const V2023_02_01: &str = "2023-02-01";
    pub const V2024_08_05: &str = "2024-08-05";
    pub const V2024_10_23: &str = "2024-10-23";
    pub const V2024_11_13: &str = "2024-11-13";
}

pub const DEFAULT_BASE_URL: &str = "https://cloud.mongodb.com";
const PAGE_SIZE: usize = 500;

/// An error answer from Atlas (`ApiError`), or a transport failure.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AtlasError {
    #[error("Atlas answered {status} {code}: {detail} ({method} {path})")]
    Api { status: u16, code: String, detail: String, method: String, path: String },
    #[error("cannot reach Atlas at {base}: {reason} ({method} {path})")]
    Transport { base: String, reason: String, method: String, path: String },
    #[error("{0}")]
    Auth(String),
    #[error("unexpected answer from Atlas to {method} {path}: {reason}")]
    Decode { method: String, path: String, reason: String },
    /// No answer within the request's deadline (`--request-timeout`), or Ctrl-C.
    #[error(transparent)]
    Unanswered(#[from] crate::deadline::Unanswered),
}

impl AtlasError {
    pub fn status(&self) -> Option<u16> {
        match self {
            AtlasError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    pub fn code(&self) -> Option<&str> {
        match self {
            AtlasError::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }

    /// Whether a non-idempotent call may have been carried out although it failed: a 5xx, or a
    /// connection lost after the request went out.
    pub fn outcome_unknown(&self) -> bool {
        match self {
            AtlasError::Api { status, .. } => *status >= 500 || *status == 429,
            AtlasError::Transport { .. } => true,
            AtlasError::Unanswered(u) => u.outcome_unknown(),
            _ => false,
        }
    }
}

pub type Result<T, E = AtlasError> = std::result::Result<T, E>;

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
struct ApiErrorBody {
    #[serde(rename = "errorCode")]
    error_code: Option<String>,
    detail: Option<String>,
    reason: Option<String>,
}

enum Auth {
    /// OAuth client credentials; the token is cached and refreshed before it expires.
    /// `forced` records the one refresh a run may make for a 401 that is not about the project.
    ServiceAccount { id: String, secret: String, token: Mutex<Option<(String, Instant)>>, forced: std::sync::atomic::AtomicBool },
    /// Programmatic API key over HTTP Digest, with the challenge cached per host.
    Digest(diqwest::DigestAuthSession),
}

/// How the client retries: 429/503 honour `Retry-After`, then exponential backoff with
/// jitter; 5xx and connection errors are retried for idempotent methods only.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { max_attempts: 8, base_delay: Duration::from_millis(500), max_delay: Duration::from_secs(60) }
    }
}

/// Why an attempt gave no answer to hand back.
#[derive(Debug, Clone, Copy)]
enum Setback<'a> {
    /// The service answered with this status (a retry honours its `Retry-After`).
    Status(StatusCode, &'a HeaderMap),
    /// The connection dropped while the answer came in.
    BodyCut,
    /// The request did not complete; `connect` when it never reached the service.
    Transport { transient: bool, connect: bool },
}

impl Setback<'_> {
    fn transport(e: &reqwest::Error) -> Self {
        Setback::Transport { transient: e.is_connect() || e.is_timeout() || e.is_request(), connect: e.is_connect() }
    }
}

impl RetryPolicy {
    /// The pause before the next attempt after a setback, or `None` to give up: the one retry
    /// rule of every Atlas request, the token's included. Attempts are bounded, and so is the
    /// whole call: no retry starts after the call's deadline (`deadline`, `--request-timeout`). A call that is not idempotent
    /// repeats only where it cannot have taken effect: 429 and 503 (turned away), a connection
    /// that never opened. A reset after sending may have applied a POST.
    fn pause(&self, attempt: u32, elapsed: Duration, idempotent: bool, setback: Setback<'_>) -> Option<Duration> {
        if attempt + 1 >= self.max_attempts || elapsed >= crate::deadline::current().call {
            return None;
        }
        match setback {
            Setback::Status(status, headers) => {
                let retryable = status == StatusCode::TOO_MANY_REQUESTS
                    || status == StatusCode::SERVICE_UNAVAILABLE
                    || (idempotent && status.is_server_error());
                retryable.then(|| {
                    retry_after(headers)
                        .map(|d| d.min(self.max_delay.max(Duration::from_secs(120))))
                        .unwrap_or_else(|| self.backoff(attempt))
                })
            }
            Setback::BodyCut => idempotent.then(|| self.backoff(attempt)),
            Setback::Transport { transient, connect } => (transient && (idempotent || connect)).then(|| self.backoff(attempt)),
        }
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let exp = self.base_delay.saturating_mul(1u32 << attempt.min(16));
        let capped = exp.min(self.max_delay);
        // Full jitter in [50%, 100%] so parallel clients spread out.
        capped.mul_f64(0.5 + fastrand::f64() * 0.5)
    }
}

/// The Atlas Admin API v2 client. Cheap to clone.
#[derive(Clone)]
pub struct AtlasClient {
    http: reqwest::Client,
    base: String,
    auth: Arc<Auth>,
    retry: RetryPolicy,
}

/// One request as the client sends it.
pub struct Call<'a> {
    pub method: Method,
    pub path: String,
    pub version: &'a str,
    pub body: Option<Value>,
    pub query: Vec<(&'a str, String)>,
    pub headers: Vec<(&'static str, &'static str)>,
    /// Whether Ctrl-C ends the wait for its answer (all calls but the clean-up after one).
    pub interruptible: bool,
}

impl<'a> Call<'a> {
    pub fn new(method: Method, path: impl Into<String>, version: &'a str) -> Self {
        Call { method, path: path.into(), version, body: None, query: Vec::new(), headers: Vec::new(), interruptible: true }
    }

    /// A clean-up that runs after Ctrl-C (removing `--temporary-access`'s entry): it is
    /// bounded by its deadlines only.
    pub fn finishing(mut self) -> Self {
        self.interruptible = false;
        self
    }

    pub fn body(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }

    pub fn query(mut self, k: &'a str, v: impl Into<String>) -> Self {
        self.query.push((k, v.into()));
        self
    }

    pub fn header(mut self, k: &'static str, v: &'static str) -> Self {
        self.headers.push((k, v));
        self
    }
}

impl AtlasClient {
    /// From the environment: `MONGODB_ATLAS_BASE_URL`, and a service account
    /// (`MONGODB_ATLAS_CLIENT_ID`/`_SECRET`) or else an API key (`MONGODB_ATLAS_PUBLIC_KEY`/`_PRIVATE_KEY`).
    pub fn from_env() -> Result<AtlasClient> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let base = var("MONGODB_ATLAS_BASE_URL").unwrap_or_else(|| DEFAULT_BASE_URL.to_string());
        for secret in ["MONGODB_ATLAS_CLIENT_SECRET", "MONGODB_ATLAS_PRIVATE_KEY"] {
            if let Some(v) = var(secret) {
                crate::secrets::register_value(&v);
            }
        }
        let auth = match (
            var("MONGODB_ATLAS_CLIENT_ID"),
            var("MONGODB_ATLAS_CLIENT_SECRET"),
            var("MONGODB_ATLAS_PUBLIC_KEY"),
            var("MONGODB_ATLAS_PRIVATE_KEY"),
        ) {
            (Some(id), Some(secret), _, _) => {
                Auth::ServiceAccount { id, secret, token: Mutex::new(None), forced: std::sync::atomic::AtomicBool::new(false) }
            }
            (_, _, Some(public), Some(private)) => Auth::Digest(diqwest::DigestAuthSession::new(public, private)),
            (Some(_), None, _, _) => {
                return Err(AtlasError::Auth("MONGODB_ATLAS_CLIENT_ID is set but MONGODB_ATLAS_CLIENT_SECRET is not".into()));
            }
            (_, _, Some(_), None) => {
                return Err(AtlasError::Auth("MONGODB_ATLAS_PUBLIC_KEY is set but MONGODB_ATLAS_PRIVATE_KEY is not".into()));
            }
            _ => {
                return Err(AtlasError::Auth(
                    "no Atlas credentials: set MONGODB_ATLAS_CLIENT_ID and MONGODB_ATLAS_CLIENT_SECRET (a service account, recommended) or MONGODB_ATLAS_PUBLIC_KEY and MONGODB_ATLAS_PRIVATE_KEY (an API key)".into(),
                ));
            }
        };
        let mut retry = RetryPolicy::default();
        if let Some(ms) = var("POACTL_ATLAS_RETRY_BASE_MS").and_then(|v| v.parse().ok()) {
            retry.base_delay = Duration::from_millis(ms);
        }
        Self::new(base, auth, retry)
    }

    fn new(base: String, auth: Auth, retry: RetryPolicy) -> Result<AtlasClient> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("poactl/", env!("CARGO_PKG_VERSION")))
            // One attempt, connecting and the whole answer included (`deadline`).
            .connect_timeout(crate::deadline::current().attempt.min(Duration::from_secs(15)))
            .timeout(crate::deadline::current().attempt)
            .build()
            .map_err(|e| AtlasError::Auth(format!("cannot build the HTTP client: {e}")))?;
        Ok(AtlasClient { http, base: base.trim_end_matches('/').to_string(), auth: Arc::new(auth), retry })
    }

    /// Gets the run's token ahead of the first call (beside other work). A failure is left to
    /// that first call, which asks again and reports it.
    pub async fn warm_up(&self) {
        let _ = self.bearer(false).await;
    }

    async fn bearer(&self, force_refresh: bool) -> Result<Option<String>> {
        let Auth::ServiceAccount { id, secret, token, .. } = self.auth.as_ref() else { return Ok(None) };
        let mut guard = token.lock().await;
        if let Some((t, expires)) = guard.as_ref() {
            // Refresh a minute early: a token that expires mid-apply fails the call.
            if !force_refresh && Instant::now() + Duration::from_secs(60) < *expires {
                return Ok(Some(t.clone()));
            }
        }
        let url = format!("{}/api/oauth/token", self.base);
        #[derive(Deserialize)]
        struct Token {
            access_token: String,
            #[serde(default = "hour")]
            expires_in: u64,
        }
        fn hour() -> u64 {
            3600
        }
        // Minting another token costs nothing but quota: the token request is as good as
        // idempotent.
        let idempotent = true;
        let started = Instant::now();
        let mut attempt = 0;
        let t: Token = loop {
            let r = self
                .http
                .post(&url)
                .basic_auth(id, Some(secret))
                .header(ACCEPT, "application/json")
                .form(&[("grant_type", "client_credentials")])
                .send()
                .await;
            let (pause, error) = match r {
                Ok(resp) if resp.status().is_success() => match resp.json::<Token>().await {
                    Ok(t) => break t,
                    Err(e) => (
                        self.retry.pause(attempt, started.elapsed(), idempotent, Setback::BodyCut),
                        AtlasError::Auth(format!("unreadable token answer from /api/oauth/token: {e}")),
                    ),
                },
                Ok(resp) => {
                    let status = resp.status();
                    let pause = self.retry.pause(attempt, started.elapsed(), idempotent, Setback::Status(status, resp.headers()));
                    let status = status.as_u16();
                    let error = if status == 429 || status >= 500 {
                        AtlasError::Auth(format!(
                            "the Atlas token endpoint kept answering HTTP {status} (/api/oauth/token): try again later"
                        ))
                    } else {
                        AtlasError::Auth(format!(
                            "Atlas refused the service account credentials (HTTP {status} from /api/oauth/token): check MONGODB_ATLAS_CLIENT_ID and MONGODB_ATLAS_CLIENT_SECRET"
                        ))
                    };
                    (pause, error)
                }
                Err(e) => (
                    self.retry.pause(attempt, started.elapsed(), idempotent, Setback::transport(&e)),
                    AtlasError::Transport {
                        base: self.base.clone(),
                        reason: crate::secrets::error_chain(&e),
                        method: "POST".into(),
                        path: "/api/oauth/token".into(),
                    },
                ),
            };
            match pause {
                Some(wait) => tokio::time::sleep(wait).await,
                None => return Err(error),
            }
            attempt += 1;
        };
        *guard = Some((t.access_token.clone(), Instant::now() + Duration::from_secs(t.expires_in)));
        issued_tokens().push(Issued {
            http: self.http.clone(),
            url: format!("{}/api/oauth/revoke", self.base),
            id: id.clone(),
            secret: secret.clone(),
            token: t.access_token.clone(),
        });
        Ok(Some(t.access_token))
    }

    /// Sends one call with the retry policy; returns the status and the JSON body (Null when
    /// empty). Error statuses become [`AtlasError::Api`].
    pub async fn send(&self, call: &Call<'_>) -> Result<(u16, Value)> {
        let url = format!("{}{}", self.base, call.path);
        let media = format!("application/vnd.atlas.{}+json", call.version);
        // PATCH sets fields to values: sending it twice leaves what sending it once does.
        let idempotent = matches!(call.method, Method::GET | Method::PUT | Method::PATCH | Method::DELETE | Method::HEAD);
        let body_bytes = call.body.as_ref().map(|b| serde_json::to_vec(b).unwrap_or_default());
        let mut refreshed = false;
        let mut attempt: u32 = 0;
        let started = Instant::now();
        loop {
            let mut req = self.http.request(call.method.clone(), &url).header(ACCEPT, &media);
            if !call.query.is_empty() {
                req = req.query(&call.query);
            }
            for (k, v) in &call.headers {
                req = req.header(*k, *v);
            }
            if let Some(bytes) = &body_bytes {
                req = req.header(CONTENT_TYPE, &media).body(bytes.clone());
            }
            let operation = format!("{} {}", call.method, call.path);
            let interrupted = || {
                AtlasError::Unanswered(crate::deadline::Unanswered::Interrupted {
                    service: "Atlas",
                    endpoint: self.base.clone(),
                    operation: operation.clone(),
                    outcome_unknown: !idempotent,
                })
            };
            let timed_out = |waited: Duration| {
                AtlasError::Unanswered(crate::deadline::Unanswered::TimedOut {
                    service: "Atlas",
                    endpoint: self.base.clone(),
                    operation: operation.clone(),
                    waited,
                    outcome_unknown: !idempotent,
                })
            };
            let sending = async {
                let sent: std::result::Result<_, SendError> = match self.auth.as_ref() {
                    Auth::ServiceAccount { .. } => {
                        let token = self.bearer(false).await?;
                        if let Some(t) = token {
                            req = req.bearer_auth(t);
                        }
                        req.send().await.map_err(SendError::Http)
                    }
                    Auth::Digest(session) => {
                        use diqwest::WithDigestAuth;
                        req.send_digest_auth(session).await.map_err(SendError::Digest)
                    }
                };
                Ok::<_, AtlasError>(sent)
            };
            // Ctrl-C ends a wait for an answer at once (`interrupt`), unless the call is the
            // clean-up after one.
            let stop = || async { if call.interruptible { crate::interrupt::wait().await } else { std::future::pending().await } };
            let sent = tokio::select! {
                s = sending => s?,
                () = stop() => return Err(interrupted()),
            };
            match sent {
                Ok(resp) => {
                    let status = resp.status();
                    if let Some(wait) = self.retry.pause(attempt, started.elapsed(), idempotent, Setback::Status(status, resp.headers())) {
                        tokio::time::sleep(wait).await;
                        attempt += 1;
                        continue;
                    }
                    let text = tokio::select! {
                        t = resp.text() => t,
                        () = stop() => return Err(interrupted()),
                    };
                    let text = match text {
                        Ok(t) => t,
                        Err(e) => {
                            if let Some(wait) = self.retry.pause(attempt, started.elapsed(), idempotent, Setback::BodyCut) {
                                tokio::time::sleep(wait).await;
                                attempt += 1;
                                continue;
                            }
                            if e.is_timeout() {
                                return Err(timed_out(started.elapsed()));
                            }
                            return Err(AtlasError::Transport {
                                base: self.base.clone(),
                                reason: crate::secrets::error_chain(&e),
                                method: call.method.to_string(),
                                path: call.path.clone(),
                            });
                        }
                    };
                    if status == StatusCode::UNAUTHORIZED && !refreshed && self.may_force_refresh(&text) {
                        // The token may have been revoked or expired early: fetch a new one,
                        // once per run (Atlas limits token requests, atlas-cli PR #4656).
                        refreshed = true;
                        self.bearer(true).await?;
                        continue;
                    }
                    if status.is_success() {
                        let value = if text.trim().is_empty() {
                            Value::Null
                        } else {
                            serde_json::from_str(&text).map_err(|e| AtlasError::Decode {
                                method: call.method.to_string(),
                                path: call.path.clone(),
                                reason: format!("invalid JSON: {e}"),
                            })?
                        };
                        return Ok((status.as_u16(), value));
                    }
                    let body: ApiErrorBody = serde_json::from_str(&text).unwrap_or_default();
                    let code =
                        body.error_code.unwrap_or_else(|| status.canonical_reason().unwrap_or("ERROR").to_uppercase().replace(' ', "_"));
                    let detail = body.detail.or(body.reason).unwrap_or_else(|| text.chars().take(200).collect());
                    // 401 NOT_IN_GROUP answers a project that does not exist or that the caller
                    // cannot see (the Atlas Kubernetes operator's test/int/project_test.go): not a
                    // credentials problem, so it stays an API error the caller can read.
                    let project_answer = code == "NOT_IN_GROUP";
                    if (status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN) && !project_answer {
                        let hint = match self.auth.as_ref() {
                            Auth::ServiceAccount { .. } => {
                                "check the service account's project roles and the organization's API access list"
                            }
                            Auth::Digest(_) => "check MONGODB_ATLAS_PUBLIC_KEY/PRIVATE_KEY, the key's roles and its API access list",
                        };
                        return Err(AtlasError::Auth(format!(
                            "Atlas refused {} {} ({} {code}: {detail}); {hint}",
                            call.method,
                            call.path,
                            status.as_u16()
                        )));
                    }
                    return Err(AtlasError::Api {
                        status: status.as_u16(),
                        code,
                        detail,
                        method: call.method.to_string(),
                        path: call.path.clone(),
                    });
                }
                Err(e) => {
                    let setback = match &e {
                        SendError::Http(h) => Setback::transport(h),
                        SendError::Digest(_) => Setback::Transport { transient: true, connect: false },
                    };
                    if let Some(wait) = self.retry.pause(attempt, started.elapsed(), idempotent, setback) {
                        tokio::time::sleep(wait).await;
                        attempt += 1;
                        continue;
                    }
                    if matches!(&e, SendError::Http(h) if h.is_timeout()) {
                        return Err(timed_out(started.elapsed()));
                    }
                    let reason = match e {
                        SendError::Http(h) => crate::secrets::error_chain(&h),
                        SendError::Digest(d) => d.to_string(),
                    };
                    return Err(AtlasError::Transport {
                        base: self.base.clone(),
                        reason,
                        method: call.method.to_string(),
                        path: call.path.clone(),
                    });
                }
            }
        }
    }

    /// Whether a 401 may be answered by minting a new token: only with a service account, never
    /// for NOT_IN_GROUP (a project answer, not a token one), and at most once per process, so a
    /// misconfigured role cannot burn through the service account's token quota.
    fn may_force_refresh(&self, body: &str) -> bool {
        let Auth::ServiceAccount { forced, .. } = self.auth.as_ref() else { return false };
        let code = serde_json::from_str::<ApiErrorBody>(body).ok().and_then(|b| b.error_code);
        if code.as_deref() == Some("NOT_IN_GROUP") {
            return false;
        }
        !forced.swap(true, std::sync::atomic::Ordering::SeqCst)
    }

    pub async fn get(&self, path: &str, version: &str) -> Result<Value> {
        Ok(self.send(&Call::new(Method::GET, path, version)).await?.1)
    }

    /// GET that maps 404 to `None`.
    pub async fn get_opt(&self, path: &str, version: &str) -> Result<Option<Value>> {
        match self.get(path, version).await {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every item of a paginated list, 500 a page.
    pub async fn list(&self, path: &str, version: &str) -> Result<Vec<Value>> {
        self.list_where(path, version, &[]).await
    }

    /// Every item of a paginated list with extra query parameters (filters).
    ///
    /// The first page's `totalCount` (asked with `includeCount=true`, openapi-v2.yaml) says
    /// how many pages follow, and they are read at once; without a count, page after page
    /// until a short one.
    pub async fn list_where(&self, path: &str, version: &str, filters: &[(&'static str, &str)]) -> Result<Vec<Value>> {
        let (mut out, total) = self.list_page(path, version, filters, 1).await?;
        match total {
            Some(total) if out.len() == PAGE_SIZE && total > PAGE_SIZE => {
                let pages = total.div_ceil(PAGE_SIZE);
                let rest = futures::future::try_join_all((2..=pages).map(|page| self.list_page(path, version, filters, page))).await?;
                out.extend(rest.into_iter().flat_map(|(items, _)| items));
                Ok(out)
            }
            Some(_) => Ok(out),
            None => {
                let mut page = 1usize;
                let mut last = out.len();
                while last == PAGE_SIZE {
                    page += 1;
                    let (items, _) = self.list_page(path, version, filters, page).await?;
                    last = items.len();
                    out.extend(items);
                }
                Ok(out)
            }
        }
    }

    /// One page of a list, and the list's `totalCount` when the answer has one.
    async fn list_page(
        &self,
        path: &str,
        version: &str,
        filters: &[(&'static str, &str)],
        page: usize,
    ) -> Result<(Vec<Value>, Option<usize>)> {
        let mut call = Call::new(Method::GET, path, version);
        for (k, v) in filters {
            call = call.query(k, *v);
        }
        let call = call.query("itemsPerPage", PAGE_SIZE.to_string()).query("pageNum", page.to_string()).query("includeCount", "true");
        let (_, body) = self.send(&call).await?;
        let results = body.get("results").and_then(|r| r.as_array()).cloned().ok_or_else(|| AtlasError::Decode {
            method: "GET".into(),
            path: path.into(),
            reason: "a list answer without `results`".into(),
        })?;
        let total = body.get("totalCount").and_then(|t| t.as_u64()).map(|t| t as usize);
        Ok((results, total))
    }

    /// A create (POST) that is never made twice. After an answer that leaves the outcome
    /// unknown (a 5xx, a dropped connection after sending), `existing` looks for what the call
    /// would have made before the call goes out again; an "already exists" answer after such a
    /// loss is resolved the same way. Atlas alert configs, for one, have no natural unique key:
    /// a blind retry would make two.
    pub async fn create<F, Fut>(&self, path: &str, version: &str, body: Value, existing: F) -> Result<Value>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<Option<Value>>>,
    {
        let mut lost = 0u32;
        loop {
            match self.post(path, version, body.clone()).await {
                Ok(v) => return Ok(v),
                Err(e) if e.outcome_unknown() && lost + 1 < self.retry.max_attempts => {
                    lost += 1;
                    tokio::time::sleep(self.retry.backoff(lost)).await;
                    if let Some(v) = existing().await? {
                        return Ok(v);
                    }
                }
                Err(e) if lost > 0 && matches!(e.status(), Some(400 | 409)) => {
                    return existing().await?.ok_or(e);
                }
                Err(e) => return Err(e),
            }
        }
    }

    pub async fn post(&self, path: &str, version: &str, body: Value) -> Result<Value> {
        Ok(self.send(&Call::new(Method::POST, path, version).body(body)).await?.1)
    }

    pub async fn patch(&self, path: &str, version: &str, body: Value) -> Result<Value> {
        Ok(self.send(&Call::new(Method::PATCH, path, version).body(body)).await?.1)
    }

    pub async fn put(&self, path: &str, version: &str, body: Value) -> Result<Value> {
        Ok(self.send(&Call::new(Method::PUT, path, version).body(body)).await?.1)
    }

    pub async fn delete(&self, path: &str, version: &str) -> Result<()> {
        self.send(&Call::new(Method::DELETE, path, version)).await.map(|_| ())
    }

    /// DELETE where "already gone" (404) is success: deletes are idempotent.
    pub async fn delete_if_exists(&self, path: &str, version: &str) -> Result<()> {
        match self.delete(path, version).await {
            Err(e) if e.is_not_found() => Ok(()),
            other => other,
        }
    }
}

/// A token this process minted, to revoke when the process ends.
struct Issued {
    http: reqwest::Client,
    url: String,
    id: String,
    secret: String,
    token: String,
}

fn issued_tokens() -> std::sync::MutexGuard<'static, Vec<Issued>> {
    static ISSUED: std::sync::Mutex<Vec<Issued>> = std::sync::Mutex::new(Vec::new());
    ISSUED.lock().unwrap_or_else(|e| e.into_inner())
}

/// Revokes every service-account token this process minted (`POST /api/oauth/revoke`, the
/// atlas-sdk-go `auth/clientcredentials` RevokeAPIPath, Basic auth). Atlas caps the active
/// tokens per service account (about 100 an hour, atlas-cli PR #4656), so a CI that runs
/// `drift` every few minutes must not leave each run's token alive. Best effort, bounded to a
/// few seconds: a failure here never changes a command's result.
pub async fn revoke_issued_tokens() {
    let pending: Vec<Issued> = std::mem::take(&mut *issued_tokens());
    let calls = pending.into_iter().map(|t| async move {
        let _ = t
            .http
            .post(&t.url)
            .basic_auth(&t.id, Some(&t.secret))
            .header(ACCEPT, "application/json")
            .form(&[("token", t.token.as_str()), ("token_type_hint", "access_token")])
            .timeout(Duration::from_secs(5))
            .send()
            .await;
    });
    futures::future::join_all(calls).await;
}

enum SendError {
    Http(reqwest::Error),
    Digest(diqwest::error::Error),
}

/// `Retry-After` in seconds or as an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v: &HeaderValue = headers.get(RETRY_AFTER)?;
    let s = v.to_str().ok()?.trim();
    if let Ok(secs) = s.parse::<f64>() {
        return (secs >= 0.0 && secs.is_finite()).then(|| Duration::from_secs_f64(secs));
    }
    let when = httpdate_to_unix(s)?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).ok()?.as_secs();
    Some(Duration::from_secs(when.saturating_sub(now)))
}

/// Parses an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) to Unix seconds.
fn httpdate_to_unix(s: &str) -> Option<u64> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    if parts.len() != 6 {
        return None;
    }
    let day: u64 = parts[1].parse().ok()?;
    let month = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"].iter().position(|m| *m == parts[2])?
        as u64
        + 1;
    let year: u64 = parts[3].parse().ok()?;
    let hms: Vec<u64> = parts[4].split(':').filter_map(|p| p.parse().ok()).collect();
    if hms.len() != 3 {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let (y, m) = if month <= 2 { (year - 1, month + 9) } else { (year, month - 3) };
    let era = y / 400;
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hms[0] * 3600 + hms[1] * 60 + hms[2])
}

/// Percent-encodes one path segment (access-list entries hold `/`, usernames may hold anything).
pub fn seg(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("3"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        h.insert(RETRY_AFTER, HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT"));
        assert_eq!(retry_after(&h), Some(Duration::ZERO), "a date in the past means now");
        assert_eq!(httpdate_to_unix("Sun, 06 Nov 1994 08:49:37 GMT"), Some(784_111_777));
        h.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h), None);
    }

    /// The one retry rule, for every request and the token's.
    #[test]
    fn what_a_setback_allows() {
        let p = RetryPolicy { max_attempts: 3, base_delay: Duration::from_millis(10), max_delay: Duration::from_millis(10) };
        let none = HeaderMap::new();
        let mut wait_7 = HeaderMap::new();
        wait_7.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        let mut wait_a_day = HeaderMap::new();
        wait_a_day.insert(RETRY_AFTER, HeaderValue::from_static("86400"));
        let (fresh, past_deadline) = (Duration::ZERO, crate::deadline::current().call);
        fn status(code: u16, h: &HeaderMap) -> Setback<'_> {
            Setback::Status(StatusCode::from_u16(code).unwrap(), h)
        }
        let reset = Setback::Transport { transient: true, connect: false };
        let refused_connect = Setback::Transport { transient: true, connect: true };
        let table = [
            ("429 with Retry-After", 0, fresh, false, status(429, &wait_7), Some(Duration::from_secs(7))),
            ("Retry-After capped at 2 minutes", 0, fresh, true, status(503, &wait_a_day), Some(Duration::from_secs(120))),
            ("503 even for a POST", 0, fresh, false, status(503, &none), Some(Duration::ZERO)),
            ("500 for a GET", 1, fresh, true, status(500, &none), Some(Duration::ZERO)),
            ("500 for a POST may have applied", 0, fresh, false, status(500, &none), None),
            ("400 is an answer", 0, fresh, true, status(400, &none), None),
            ("200 is an answer", 0, fresh, true, status(200, &none), None),
            ("attempts spent", 2, fresh, true, status(429, &wait_7), None),
            ("deadline passed", 0, past_deadline, true, status(429, &wait_7), None),
            ("cut body of a GET", 0, fresh, true, Setback::BodyCut, Some(Duration::ZERO)),
            ("cut body of a POST", 0, fresh, false, Setback::BodyCut, None),
            ("reset after a POST was sent", 0, fresh, false, reset, None),
            ("connect refused before a POST", 0, fresh, false, refused_connect, Some(Duration::ZERO)),
            ("not transient", 0, fresh, true, Setback::Transport { transient: false, connect: false }, None),
        ];
        for (case, attempt, elapsed, idempotent, setback, expected) in table {
            // Backoff pauses are jittered: any pause up to the policy's ceiling counts as one.
            let got = p.pause(attempt, elapsed, idempotent, setback).map(|d| if d <= p.max_delay { Duration::ZERO } else { d });
            assert_eq!(got, expected, "{case}");
        }
    }

    #[test]
    fn backoff_grows_and_is_bounded() {
        let p = RetryPolicy { max_attempts: 8, base_delay: Duration::from_millis(100), max_delay: Duration::from_secs(1) };
        for attempt in 0..10 {
            let d = p.backoff(attempt);
            let ceiling = Duration::from_millis(100 * (1 << attempt.min(16))).min(Duration::from_secs(1));
            assert!(d <= ceiling && d >= ceiling / 2, "attempt {attempt}: {d:?}");
        }
    }

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(seg("10.0.0.0/16"), "10.0.0.0%2F16");
        assert_eq!(seg("a b@c"), "a%20b%40c");
    }
}
