//! A distribution's origins, and what each behaviour asks of them, as attributes and as
//! CloudFront's types. The single `origin:` keeps the attribute shape it always had (`origin`,
//! id `s3-origin`); named `origins` are a map by id, and only the ids the spec names are
//! compared (an origin someone added by hand is kept and not shown).
//!
//! CloudFront's defaults that poactl writes down, so that a live default is no drift
//! (CloudFront API reference, CustomOriginConfig and Origin): HTTP port 80, HTTPS port 443,
//! read timeout 30 s, keep-alive 5 s, 3 connection attempts, connection timeout 10 s.

use std::collections::BTreeMap;

use aws_sdk_cloudfront::types::{
    CustomHeaders, CustomOriginConfig, Origin, OriginCustomHeader, OriginProtocolPolicy, OriginSslProtocols, S3OriginConfig, SslProtocol,
};
use serde_json::{Map, Value, json};

use super::config::build_err;
use super::policies::{CACHE, ORIGIN_REQUEST, RESPONSE_HEADERS, canonical_cache, canonical_origin_request};
use crate::providers::Result;
use crate::spec::model::{CacheRuleSpec, DistributionSpec, OriginRef};

/// TLS versions to an origin, oldest first (OriginSslProtocols).
const ORIGIN_TLS: [&str; 4] = ["SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2"];

/// The named origins' attributes (the single-origin form has its own, in `desired`).
pub(super) fn desired_origins(d: &DistributionSpec, oac: &str) -> Value {
    let mut out = Map::new();
    for o in d.origin_list() {
        let (id, v) = match o {
            OriginRef::Bucket { id, bucket, path } => (
                id,
                json!({"bucket": bucket, "domain": format!("${{storage.buckets.{bucket}.domain}}"), "path": path.unwrap_or_default(), "oac": oac}),
            ),
            OriginRef::Custom { id, spec } => {
                let secs = |d: &Option<crate::spec::model::Duration>, default: u64| d.as_ref().map_or(default, |d| d.seconds);
                (
                    id,
                    json!({
                        "domain": spec.domain.clone().unwrap_or_default(),
                        "path": spec.path.clone().unwrap_or_default(),
                        "protocol": spec.protocol.clone().unwrap_or_else(|| "https-only".into()),
                        "http_port": spec.http_port.unwrap_or(80),
                        "https_port": spec.https_port.unwrap_or(443),
                        "min_tls": spec.min_tls.clone().unwrap_or_else(|| "TLSv1.2".into()),
                        "read_timeout": secs(&spec.read_timeout, 30),
                        "keepalive_timeout": secs(&spec.keepalive_timeout, 5),
                        "connection_timeout": secs(&spec.connection_timeout, 10),
                        "connection_attempts": spec.connection_attempts.unwrap_or(3),
                        "headers": spec.headers,
                    }),
                )
            }
        };
        if d.origin.is_none() {
            out.insert(id, v);
        }
    }
    Value::Object(out)
}

/// One behaviour's attributes: its origin and methods, and either TTLs (CloudFront's legacy
/// cache settings, as poactl always wrote them) or managed policies by name.
pub(super) fn desired_behavior(d: &DistributionSpec, rule: Option<&CacheRuleSpec>, default_ttl: i64) -> Value {
    let origin = rule.and_then(|r| r.origin.clone()).unwrap_or_else(|| d.default_origin_id());
    let compress = rule.and_then(|r| r.compress).unwrap_or(d.compress);
    let mut b = json!({
        "origin": origin,
        "methods": rule.and_then(|r| r.methods.clone()).unwrap_or_else(|| "read".into()),
        "compress": compress,
        // Every behaviour redirects HTTP to HTTPS, not only the default one: a viewer reaches
        // a path pattern's behaviour on plain HTTP otherwise.
        "viewer_protocol": "redirect-to-https",
    });
    match rule.and_then(|r| r.cache.as_deref()) {
        Some(policy) => {
            b["cache_policy"] = json!(canonical_cache(policy));
            if let Some(f) = rule.and_then(|r| r.forward.as_deref()) {
                b["origin_request_policy"] = json!(canonical_origin_request(f));
            }
        }
        None => {
            let (min, default, max) = match rule {
                Some(r) => {
                    let ttl = r.default_ttl_seconds() as i64;
                    (0, ttl, ttl)
                }
                None => (0, default_ttl, default_ttl.max(super::ONE_YEAR)),
            };
            b["min_ttl"] = json!(min);
            b["default_ttl"] = json!(default);
            b["max_ttl"] = json!(max);
        }
    }
    if let Some(h) = d.headers_policy() {
        b["response_headers_policy"] = json!(h);
    }
    if let Some(r) = rule {
        b["path"] = json!(r.path.trim_start_matches('/'));
    }
    b
}

/// A live origin in the shape of the attributes.
pub(super) fn read_origin(o: &Origin, oac_name: &Value) -> Value {
    match o.custom_origin_config() {
        Some(c) => {
            let tls =
                c.origin_ssl_protocols().map(|p| p.items().iter().map(|i| i.as_str().to_string()).collect::<Vec<_>>()).unwrap_or_default();
            let min_tls = ORIGIN_TLS.iter().find(|v| tls.iter().any(|t| t == *v)).copied().unwrap_or("");
            let headers: BTreeMap<String, String> = o
                .custom_headers()
                .map(|h| h.items().iter().map(|i| (i.header_name().to_string(), i.header_value().to_string())).collect())
                .unwrap_or_default();
            json!({
                "domain": o.domain_name(),
                "path": o.origin_path().unwrap_or(""),
                "protocol": c.origin_protocol_policy().as_str(),
                "http_port": c.http_port(),
                "https_port": c.https_port(),
                "min_tls": min_tls,
                "read_timeout": c.origin_read_timeout().unwrap_or(30),
                "keepalive_timeout": c.origin_keepalive_timeout().unwrap_or(5),
                "connection_timeout": o.connection_timeout().unwrap_or(10),
                "connection_attempts": o.connection_attempts().unwrap_or(3),
                "headers": headers,
            })
        }
        None => json!({
            "bucket": o.domain_name().split(".s3").next().unwrap_or(o.domain_name()),
            "domain": o.domain_name(),
            "path": o.origin_path().unwrap_or(""),
            "oac": oac_name,
        }),
    }
}

/// A live behaviour's policies and methods, in the attributes' names. `$b` is a
/// CacheBehavior or a DefaultCacheBehavior (they share the fields, not a trait).
macro_rules! read_behavior {
    ($b:expr) => {{
        let b = $b;
        let methods = b.allowed_methods().map(|m| m.items().len()).unwrap_or(2);
        let mut v = match b.cache_policy_id().filter(|id| !id.is_empty()) {
            Some(id) => serde_json::json!({"cache_policy": $crate::providers::aws::cloudfront::policies::name_of(
                $crate::providers::aws::cloudfront::policies::CACHE, id)}),
            None => $crate::providers::aws::cloudfront::config::behavior_json(b.min_ttl(), b.default_ttl(), b.max_ttl(), b.compress()),
        };
        v["compress"] = serde_json::json!(b.compress().unwrap_or(false));
        v["origin"] = serde_json::json!(b.target_origin_id());
        v["methods"] = serde_json::json!(match methods {
            7 => "all",
            3 => "read-options",
            _ => "read",
        });
        v["viewer_protocol"] = serde_json::json!(b.viewer_protocol_policy().as_str());
        if let Some(id) = b.origin_request_policy_id().filter(|id| !id.is_empty()) {
            v["origin_request_policy"] = serde_json::json!($crate::providers::aws::cloudfront::policies::name_of(
                $crate::providers::aws::cloudfront::policies::ORIGIN_REQUEST, id));
        }
        if let Some(id) = b.response_headers_policy_id().filter(|id| !id.is_empty()) {
            v["response_headers_policy"] = serde_json::json!($crate::providers::aws::cloudfront::policies::name_of(
                $crate::providers::aws::cloudfront::policies::RESPONSE_HEADERS, id));
        }
        v
    }};
}
pub(super) use read_behavior;

/// What the spec leaves unsaid about a live behaviour is not compared: a response headers or
/// origin request policy someone attached by hand stays (the update keeps it too).
pub(super) fn unsaid_policies(want: &Value, live: &mut Value) {
    for key in ["response_headers_policy", "origin_request_policy"] {
        if want.get(key).is_none()
            && let Some(o) = live.as_object_mut()
        {
            o.remove(key);
        }
    }
}

/// An origin of the attributes as CloudFront takes it.
pub(super) fn build_origin(id: &str, a: &Value, oac_id: &str) -> Result<Origin> {
    let s = |k: &str| a[k].as_str().unwrap_or_default().to_string();
    let n = |k: &str, default: i64| a[k].as_i64().unwrap_or(default) as i32;
    let mut o = Origin::builder().id(id).domain_name(s("domain")).origin_path(s("path"));
    if a.get("bucket").is_some() {
        o = o.s3_origin_config(S3OriginConfig::builder().origin_access_identity("").build()).origin_access_control_id(oac_id);
    } else {
        let min = ORIGIN_TLS.iter().position(|v| *v == s("min_tls")).unwrap_or(3);
        let protocols: Vec<SslProtocol> = ORIGIN_TLS[min..].iter().map(|v| SslProtocol::from(*v)).collect();
        let custom = CustomOriginConfig::builder()
            .http_port(n("http_port", 80))
            .https_port(n("https_port", 443))
            .origin_protocol_policy(OriginProtocolPolicy::from(s("protocol").as_str()))
            .origin_ssl_protocols(
                OriginSslProtocols::builder().quantity(protocols.len() as i32).set_items(Some(protocols)).build().map_err(build_err)?,
            )
            .origin_read_timeout(n("read_timeout", 30))
            .origin_keepalive_timeout(n("keepalive_timeout", 5))
            .build()
            .map_err(build_err)?;
        let headers: Vec<OriginCustomHeader> = a["headers"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| {
                OriginCustomHeader::builder().header_name(k).header_value(v.as_str().unwrap_or_default()).build().map_err(build_err)
            })
            .collect::<Result<_>>()?;
        o = o
            .custom_origin_config(custom)
            .custom_headers(CustomHeaders::builder().quantity(headers.len() as i32).set_items(Some(headers)).build().map_err(build_err)?)
            .connection_attempts(n("connection_attempts", 3))
            .connection_timeout(n("connection_timeout", 10))
            .origin_access_control_id("");
    }
    o.build().map_err(build_err)
}

/// The ids of the managed policies a behaviour's attributes name.
pub(super) fn policy_ids(b: &Value) -> (Option<String>, Option<String>, Option<String>) {
    use super::policies::id_of;
    let id = |table, key: &str| b[key].as_str().map(|n| id_of(table, n).to_string());
    (id(CACHE, "cache_policy"), id(ORIGIN_REQUEST, "origin_request_policy"), id(RESPONSE_HEADERS, "response_headers_policy"))
}

/// The OAC name the attributes ask for: the single origin's, else any bucket origin's.
pub(super) fn wanted_oac(a: &Value) -> Option<String> {
    if let Some(o) = a["origin"]["oac"].as_str() {
        return Some(o.to_string());
    }
    a["origins"].as_object()?.values().find_map(|o| o["oac"].as_str().map(String::from))
}
