//! How poactl reaches the cluster: the connection string (`database.uri` with its references
//! and login, or the public route while `--temporary-access` is open), the driver's timeouts
//! bounded by the run's deadlines, and a new cluster's DNS name waited for.

use std::time::Duration;

use serde_json::Value;

use crate::deadline;
use crate::providers::{Outputs, ProviderError, Result};
use crate::resource::Address;
use crate::spec::LoadedSpec;

/// The driver's own timeouts bounded by the run's deadlines: connecting
/// (TCP, TLS and the handshake) and finding a server each within one attempt. An operation
/// sent and never answered has no driver timeout (socketTimeoutMS is not supported), so
/// every call is also wrapped in `deadline`.
pub fn bound_client_options(opts: &mut mongodb::options::ClientOptions) {
    let attempt = deadline::current().attempt;
    // A URI may ask for less, never for more: one attempt bounds every wait.
    opts.connect_timeout = Some(opts.connect_timeout.map_or(attempt, |t| t.min(attempt)));
    opts.server_selection_timeout = Some(opts.server_selection_timeout.map_or(attempt, |t| t.min(attempt)));
}

/// The hosts a client connects to, for messages.
pub fn endpoint_of(opts: &mongodb::options::ClientOptions) -> String {
    opts.hosts.iter().map(|h| h.to_string()).collect::<Vec<_>>().join(",")
}

pub(super) fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b"-._~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

/// How `database.user` logs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Login<'a> {
    /// SCRAM: a username and password, checked against `source` (the user's auth database:
    /// `admin` for Atlas' SCRAM users).
    Password { user: &'a str, password: &'a str, source: &'a str },
    /// X.509: the client certificate is the identity (`$external`); the URI names the
    /// certificate file (`tlsCertificateKeyFile`).
    X509,
}

/// The URI with `login` added: the connection string specification's userinfo, a `/` before
/// the options where the URI had no path, and `authSource` set when the URI does not set it,
/// since otherwise the driver takes the URI's path database as the auth source ("Connection
/// String Spec": "If authSource is unspecified, ... the database name in the URI path"), where
/// Atlas' users do not live. A URI that already carries credentials is left as it is; the
/// percent-encoding of the rest is kept.
pub fn with_login(uri: &str, login: Login<'_>) -> String {
    let Some((scheme, rest)) = uri.split_once("://") else { return uri.to_string() };
    let (before_query, query) = match rest.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (rest, None),
    };
    let (hosts, path) = match before_query.split_once('/') {
        Some((h, p)) => (h, p),
        None => (before_query, ""),
    };
    if hosts.contains('@') {
        return uri.to_string();
    }
    let mut options: Vec<String> = query.map(|q| q.split('&').filter(|kv| !kv.is_empty()).map(String::from).collect()).unwrap_or_default();
    let has = |options: &[String], key: &str| options.iter().any(|kv| kv.split('=').next().is_some_and(|k| k.eq_ignore_ascii_case(key)));
    let userinfo = match login {
        Login::Password { user, password, source } => {
            if !has(&options, "authSource") {
                options.push(format!("authSource={}", percent_encode(source)));
            }
            format!("{}:{}@", percent_encode(user), percent_encode(password))
        }
        Login::X509 => {
            if !has(&options, "authMechanism") {
                options.push("authMechanism=MONGODB-X509".to_string());
            }
            if !has(&options, "authSource") {
                options.push("authSource=$external".to_string());
            }
            String::new()
        }
    };
    format!("{scheme}://{userinfo}{hosts}/{path}?{}", options.join("&"))
}

/// How poactl logs in as `user`, or why it cannot.
pub(super) fn login_for(user: &crate::spec::model::DatabaseUserSpec) -> std::result::Result<Login<'_>, String> {
    match &user.auth {
        None => Ok(Login::Password { user: &user.username, password: user.password.as_deref().unwrap_or(""), source: &user.auth_database }),
        Some(a) if a.x509.is_some() => Ok(Login::X509),
        Some(_) => Err(format!(
            "database.user {} logs in with AWS IAM, LDAP or OIDC, which poactl does not do itself: give the whole connection string with --mongodb-uri, or name a SCRAM or X.509 user",
            user.username
        )),
    }
}

/// Parses the URI, resolving an SRV name. A new cluster's DNS name appears some minutes after
/// the cluster (Atlas docs, "Connect to a cluster": the SRV record is published once the
/// cluster is provisioned), so a DnsResolve error is asked again for a while
/// (`POACTL_MONGO_DNS_WAIT_SECS`, default 120) and reported as what it is, not as an invalid URI.
pub async fn parse_waiting_for_dns(uri: &str) -> Result<(mongodb::options::ClientOptions, Vec<String>)> {
    let wait = std::env::var("POACTL_MONGO_DNS_WAIT_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(120u64);
    let deadline = std::time::Instant::now() + Duration::from_secs(wait);
    let mut uri = uri.to_string();
    let mut dropped = Vec::new();
    loop {
        match mongodb::options::ClientOptions::parse(&uri).await {
            Ok(opts) => return Ok((opts, dropped)),
            Err(e) if matches!(*e.kind, mongodb::error::ErrorKind::DnsResolve { .. }) => {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                if left.is_zero() {
                    return Err(ProviderError::Propagating(format!(
                        "the cluster's address does not resolve yet ({}); a new cluster's DNS name takes a few minutes to appear: run again shortly",
                        crate::secrets::redact(&e.to_string())
                    )));
                }
                tokio::time::sleep(left.min(Duration::from_secs(5))).await;
            }
            Err(e) => match without_rejected_option(&uri, &e) {
                Some((shorter, option)) if dropped.len() < 16 => {
                    dropped.push(option);
                    uri = shorter;
                }
                _ => return Err(ProviderError::Config(format!("invalid MongoDB URI: {}", crate::secrets::redact(&e.to_string())))),
            },
        }
    }
}

/// The URI without the option the Rust driver refused as unknown ("X is an invalid option":
/// mongodb 3.x `ClientOptions::parse` rejects every option it does not implement, where other
/// drivers ignore them, e.g. `useUnifiedTopology` written for Node.js), and that option.
pub(super) fn without_rejected_option(uri: &str, e: &mongodb::error::Error) -> Option<(String, String)> {
    let mongodb::error::ErrorKind::InvalidArgument { message, .. } = e.kind.as_ref() else { return None };
    let option = message.split(" is an invalid option").next().filter(|o| *o != message.as_str())?.to_string();
    let (base, query) = uri.split_once('?')?;
    // The driver names the option in lower case; the message keeps the URI's spelling.
    let key_of = |kv: &str| kv.split('=').next().unwrap_or("").to_string();
    let original = query.split('&').map(key_of).find(|k| k.eq_ignore_ascii_case(&option))?;
    let kept: Vec<&str> = query.split('&').filter(|kv| !key_of(kv).eq_ignore_ascii_case(&option)).collect();
    Some((if kept.is_empty() { base.to_string() } else { format!("{base}?{}", kept.join("&")) }, original))
}

/// The connection string of `database.uri` with its references resolved from live outputs and
/// the login of `database.user` added (the indexes and `migrate` connect with it).
pub fn connection_string(loaded: &LoadedSpec, outputs: &std::collections::BTreeMap<Address, Outputs>) -> Result<String> {
    let db = loaded.spec.database.as_ref().ok_or_else(|| ProviderError::Config("no `database` section".into()))?;
    let raw = db
        .uri
        .clone()
        .ok_or_else(|| ProviderError::Config("no MongoDB URI: set `database.uri` in the spec or pass --mongodb-uri".into()))?;
    let resolved = crate::providers::resolve_refs(&Value::String(route(raw)), outputs);
    let uri = resolved.as_str().unwrap_or_default().to_string();
    if uri.contains("${") {
        return Err(ProviderError::Config(format!("the MongoDB URI {uri} refers to a resource that does not exist yet")));
    }
    Ok(match db.user.as_ref().and_then(|u| loaded.spec.atlas.as_ref()?.database_users.iter().find(|x| &x.username == u)) {
        Some(u) => with_login(&uri, login_for(u).map_err(ProviderError::Config)?),
        None => uri,
    })
}

/// `database.uri` as poactl itself connects: through the clusters' public strings while
/// `--temporary-access` has let this runner in.
pub(super) fn route(raw: String) -> String {
    if crate::providers::atlas::temporary_access::in_effect() { crate::providers::atlas::temporary_access::public_route(&raw) } else { raw }
}

/// What to do when poactl cannot connect to a VPC-only environment's database: `None` when the
/// environment is not VPC-only, or when this run already went through `--temporary-access`.
pub fn outside_the_vpc(loaded: &LoadedSpec) -> Option<&'static str> {
    let vpc_only = loaded.spec.atlas.as_ref().is_some_and(|a| !a.public_access());
    (vpc_only && !crate::providers::atlas::temporary_access::in_effect()).then_some(
        "the environment is VPC-only, so its clusters answer inside the VPC alone: run poactl there (docs/spec.md, \"Running poactl in production\"), or pass --temporary-access to let this runner in through the public endpoint for this run",
    )
}

/// `database.uri` (references resolved) with the login of this database user instead of
/// `database.user`'s; `None` when the URI carries its own credentials.
pub fn connection_string_as(
    loaded: &LoadedSpec,
    outputs: &std::collections::BTreeMap<Address, Outputs>,
    user: &crate::spec::model::DatabaseUserSpec,
) -> Result<Option<String>> {
    let db = loaded.spec.database.as_ref().ok_or_else(|| ProviderError::Config("no `database` section".into()))?;
    let raw = db.uri.clone().ok_or_else(|| ProviderError::Config("no MongoDB URI: set `database.uri` in the spec".into()))?;
    let uri = crate::providers::resolve_refs(&Value::String(route(raw)), outputs).as_str().unwrap_or_default().to_string();
    if uri.contains("${") {
        return Err(ProviderError::Config(format!("the MongoDB URI {uri} refers to a resource that does not exist yet")));
    }
    let with = with_login(&uri, login_for(user).map_err(ProviderError::Config)?);
    Ok((with != uri).then_some(with))
}
