//! A distribution's origins and what each behaviour sends them, checked offline. The rules
//! and their sources (CloudFront API reference, "Origin", "CustomOriginConfig",
//! "CacheBehavior"; CloudFront Developer Guide, "Values that you specify when you create or
//! update a distribution", "Custom headers that CloudFront can't add to origin requests",
//! and "Use managed cache / origin request / response headers policies"):
//! - a distribution has the single `origin:` or named `origins:`, not both, and with several
//!   named ones a `default_origin`;
//! - an origin is a bucket of the spec or a domain name (no scheme, no path);
//! - `OriginProtocolPolicy`: http-only, match-viewer, https-only; `OriginSslProtocols`:
//!   SSLv3, TLSv1, TLSv1.1, TLSv1.2; HTTP port 80 or 1024-65535, HTTPS port 443 or 1024-65535;
//! - `OriginReadTimeout` and `OriginKeepaliveTimeout`: 1-60 s by default, up to 180 s with a
//!   quota increase; `ConnectionTimeout` 1-10 s; `ConnectionAttempts` 1-3;
//! - custom origin headers may not be ones CloudFront sets or forbids (Host, Cache-Control,
//!   Connection, Content-Length, Cookie, Proxy-*, X-Amz-*, X-Edge-*, ...);
//! - a behaviour with a cache policy has no TTLs of its own (`ttl` or `cache`, not both), and
//!   an origin request policy needs a cache policy.

use super::{Checker, did_you_mean};
use crate::spec::model::{DistributionSpec, SecurityHeadersSpec};
use crate::spec::yaml::PathSeg;

/// The managed cache policies, by the names poactl takes (CloudFront Developer Guide, "Use
/// managed cache policies").
pub(super) const CACHE_POLICIES: &[&str] = &[
    "disabled",
    "optimized",
    "CachingDisabled",
    "CachingOptimized",
    "CachingOptimizedForUncompressedObjects",
    "UseOriginCacheControlHeaders",
    "UseOriginCacheControlHeaders-QueryStrings",
    "Amplify",
    "Elemental-MediaPackage",
];

/// The managed origin request policies ("Use managed origin request policies").
pub(super) const ORIGIN_REQUEST_POLICIES: &[&str] = &[
    "all-viewer-except-host",
    "all-viewer",
    "cors-s3",
    "cors-custom",
    "user-agent-referer",
    "AllViewer",
    "AllViewerExceptHostHeader",
    "AllViewerAndCloudFrontHeaders-2022-06",
    "CORS-CustomOrigin",
    "CORS-S3Origin",
    "UserAgentRefererHeaders",
    "Elemental-MediaTailor-PersonalizedManifests",
];

/// The managed response headers policies ("Use managed response headers policies").
pub(super) const HEADERS_POLICIES: &[&str] = &[
    "SecurityHeadersPolicy",
    "CORS-and-SecurityHeadersPolicy",
    "CORS-With-Preflight",
    "CORS-with-preflight-and-SecurityHeadersPolicy",
    "SimpleCORS",
];

/// Headers CloudFront does not let an origin custom header set (Developer Guide, "Custom
/// headers that CloudFront can't add to origin requests").
const FORBIDDEN_HEADERS: &[&str] = &[
    "cache-control",
    "connection",
    "content-length",
    "cookie",
    "host",
    "if-match",
    "if-modified-since",
    "if-none-match",
    "if-range",
    "if-unmodified-since",
    "max-forwards",
    "pragma",
    "proxy-authorization",
    "proxy-connection",
    "range",
    "request-range",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "via",
    "x-real-ip",
];

fn is_host(d: &str) -> bool {
    !d.is_empty()
        && d.len() <= 253
        && d.split('.').count() >= 2
        && d.split('.').all(|l| !l.is_empty() && l.len() <= 63 && l.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-'))
}

fn check_path(c: &mut Checker, at: Vec<PathSeg>, p: &Option<String>) {
    if let Some(p) = p
        && (!p.starts_with('/') || p.ends_with('/'))
    {
        c.err(at, "an origin path starts with `/` and does not end with one", "e.g. path: /public");
    }
}

pub(super) fn check_origins(c: &mut Checker, i: usize, d: &DistributionSpec, buckets: &[&str]) {
    let base = |f: &str| path!("cdn", "distributions", i, f);
    match (&d.origin, d.origins.is_empty()) {
        (None, true) => {
            c.err(base("name"), format!("distribution `{}` has no origin", d.name), "add `origin: { bucket: NAME }` or `origins:`")
        }
        (Some(_), false) => {
            c.err(base("origins"), "a distribution has either `origin` or `origins`", "move the bucket into `origins` under a name")
        }
        _ => {}
    }
    let bucket_ok = |c: &mut Checker, at: Vec<PathSeg>, b: &str| {
        if !buckets.contains(&b) {
            let hint = match did_you_mean(b, buckets) {
                Some(x) => format!("did you mean `{x}`?"),
                None => "the origin must be one of this environment's `storage.buckets` (poactl wires its OAC policy)".to_string(),
            };
            c.err(at, format!("`{b}` is not a bucket of this environment"), hint);
        }
    };
    if let Some(o) = &d.origin {
        bucket_ok(c, path!("cdn", "distributions", i, "origin", "bucket"), &o.bucket);
        check_path(c, path!("cdn", "distributions", i, "origin", "path"), &o.path);
    }
    for (name, o) in &d.origins {
        let at = |f: &str| path!("cdn", "distributions", i, "origins", name.as_str(), f);
        if name.is_empty() || name.len() > 128 || !name.chars().all(|ch| ch.is_ascii_alphanumeric() || "-_.".contains(ch)) {
            c.err(at("bucket"), format!("`{name}` is not an origin name CloudFront takes"), "letters, digits, - _ . (at most 128)");
        }
        check_path(c, at("path"), &o.path);
        match (&o.bucket, &o.domain) {
            (Some(b), None) => {
                bucket_ok(c, at("bucket"), b);
                let custom_only = o.protocol.is_some() || o.http_port.is_some() || o.https_port.is_some() || o.min_tls.is_some();
                if custom_only {
                    c.err(at("protocol"), "a bucket origin is reached over HTTPS through its OAC", "remove protocol, ports and min_tls");
                }
            }
            (None, Some(domain)) => {
                if domain.contains("://") || domain.contains('/') || !is_host(domain) {
                    c.err(
                        at("domain"),
                        format!("`{domain}` is not a domain name"),
                        "the host only, e.g. api.poafix.example (no https://, no path)",
                    );
                }
            }
            _ => c.err(
                at("domain"),
                format!("origin `{name}` needs one of `bucket` and `domain`"),
                "a bucket of the spec, or the API's domain",
            ),
        }
        if let Some(p) = &o.protocol {
            c.one_of(at("protocol"), "origin protocol", p, &["https-only", "http-only", "match-viewer"]);
        }
        for (field, port, default) in [("http_port", o.http_port, 80), ("https_port", o.https_port, 443)] {
            if let Some(p) = port
                && p != default
                && !(1024..=65535).contains(&p)
            {
                c.err(
                    at(field),
                    format!("CloudFront connects to port {default} or 1024-65535, not {p}"),
                    format!("use {default}, or a port from 1024"),
                );
            }
        }
        if let Some(t) = &o.min_tls {
            c.one_of(at("min_tls"), "origin TLS version", t, &["TLSv1.2", "TLSv1.1", "TLSv1", "SSLv3"]);
        }
        for (field, value, lo, hi) in [
            ("read_timeout", &o.read_timeout, 1, 180),
            ("keepalive_timeout", &o.keepalive_timeout, 1, 180),
            ("connection_timeout", &o.connection_timeout, 1, 10),
        ] {
            if let Some(v) = value
                && !(lo..=hi).contains(&v.seconds)
            {
                c.err(
                    at(field),
                    format!("CloudFront takes {lo}-{hi} s here"),
                    "read and keep-alive timeouts above 60 s need a quota increase",
                );
            }
        }
        if let Some(h) = &o.health
            && (!h.starts_with('/') || o.bucket.is_some())
        {
            c.err(at("health"), "`health` is a path of a custom origin, seen from the viewer", "e.g. health: /api/health");
        }
        if let Some(n) = o.connection_attempts
            && !(1..=3).contains(&n)
        {
            c.err(at("connection_attempts"), "CloudFront tries an origin 1 to 3 times", "e.g. connection_attempts: 3");
        }
        for header in o.headers.keys() {
            let lower = header.to_ascii_lowercase();
            if FORBIDDEN_HEADERS.contains(&lower.as_str())
                || lower.starts_with("x-amz-")
                || lower.starts_with("x-edge-")
                || lower.starts_with("proxy-")
            {
                c.err(
                    at("headers"),
                    format!("CloudFront cannot add the header `{header}` to origin requests"),
                    "use a header of your own, e.g. X-Origin-Verify",
                );
            }
        }
    }
    let names: Vec<&str> = d.origins.keys().map(String::as_str).collect();
    match &d.default_origin {
        Some(o) if !d.origins.contains_key(o) => {
            let hint =
                did_you_mean(o, &names).map(|b| format!("did you mean `{b}`?")).unwrap_or_else(|| format!("one of: {}", names.join(", ")));
            c.err(base("default_origin"), format!("no origin `{o}`"), hint);
        }
        None if d.origins.len() > 1 => {
            c.err(base("origins"), "with several origins, say which one serves the rest", "add `default_origin: NAME`")
        }
        _ => {}
    }
    if let Some(SecurityHeadersSpec::Managed(name)) = &d.security_headers {
        c.one_of(base("security_headers"), "managed response headers policy", name, HEADERS_POLICIES);
    }
    for (j, rule) in d.cache.iter().enumerate() {
        let at = |f: &str| path!("cdn", "distributions", i, "cache", j, f);
        if let Some(o) = &rule.origin
            && !d.origins.contains_key(o)
        {
            let hint = did_you_mean(o, &names)
                .map(|b| format!("did you mean `{b}`?"))
                .unwrap_or_else(|| "name one of the distribution's `origins`".into());
            c.err(at("origin"), format!("no origin `{o}`"), hint);
        }
        match (&rule.ttl, &rule.cache) {
            (Some(_), Some(_)) => {
                c.err(at("cache"), "a cache policy sets the TTLs: give `ttl` or `cache`, not both", "e.g. cache: disabled")
            }
            (None, None) => c.err(
                at("ttl"),
                format!("path `{}` says neither how long to cache nor a policy", rule.path),
                "add `ttl: 1d`, or `cache: disabled`",
            ),
            (None, Some(p)) => c.one_of(at("cache"), "managed cache policy", p, CACHE_POLICIES),
            _ => {}
        }
        if let Some(f) = &rule.forward {
            if rule.cache.is_none() {
                c.err(
                    at("forward"),
                    "an origin request policy goes with a cache policy",
                    "add `cache: disabled` (or another policy) to this path",
                );
            }
            c.one_of(at("forward"), "managed origin request policy", f, ORIGIN_REQUEST_POLICIES);
        }
        if let Some(m) = &rule.methods {
            c.one_of(at("methods"), "method set", m, &["read", "read-options", "all"]);
        }
    }
}
