//! `cdn`: distributions, their origins and behaviours, in the spec's types.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::*;

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct CdnSpec {
    /// The Route 53 public hosted zone (its name, or its id `Z...`) the distributions' domain
    /// records and certificate validation records go in, unless a distribution names its own.
    /// Without one, poactl prints the records for a person to create.
    #[serde(default)]
    pub hosted_zone: Option<String>,
    #[serde(default)]
    pub distributions: Vec<DistributionSpec>,
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DistributionSpec {
    pub name: String,
    /// One S3 origin (the original form): a bucket of the spec, read through OAC.
    #[serde(default)]
    pub origin: Option<OriginSpec>,
    /// Named origins: buckets of the spec (through OAC) and custom origins (an API).
    #[serde(default)]
    pub origins: BTreeMap<String, NamedOriginSpec>,
    /// The origin of everything no `cache` entry matches; needed with several `origins`.
    #[serde(default)]
    pub default_origin: Option<String>,
    /// CloudFront's managed SecurityHeadersPolicy (HSTS, nosniff, frame options, referrer
    /// policy, XSS protection) on every behaviour (`true`), or another managed response
    /// headers policy by name.
    #[serde(default)]
    pub security_headers: Option<SecurityHeadersSpec>,
    #[serde(default = "default_price_class")]
    pub price_class: String,
    #[serde(default = "yes")]
    pub compress: bool,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub comment: Option<String>,
    /// The viewer TLS security policy with a certificate of one's own (default TLSv1.2_2021):
    /// any CloudFront policy. A live policy stricter than this one is kept, never lowered.
    #[serde(default)]
    pub min_tls: Option<String>,
    /// The distribution's own domain (`cdn.poafix.example`). Without `certificate_arn`, poactl
    /// requests an ACM certificate for it and the aliases, validated through DNS.
    #[serde(default)]
    pub domain: Option<String>,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub certificate_arn: Option<String>,
    /// This distribution's hosted zone, when it is not `cdn.hosted_zone`.
    #[serde(default)]
    pub hosted_zone: Option<String>,
    /// TTL of everything no `cache` entry matches (default 1d).
    #[serde(default)]
    pub default_ttl: Option<Duration>,
    #[serde(default)]
    pub cache: Vec<CacheRuleSpec>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

impl DistributionSpec {
    /// Every name viewers use: the domain first, then the aliases.
    pub fn domain_names(&self) -> Vec<String> {
        let mut out: Vec<String> = self.domain.iter().cloned().collect();
        out.extend(self.aliases.iter().filter(|a| Some(*a) != self.domain.as_ref()).cloned());
        out
    }

    /// Whether poactl requests and manages the certificate (a domain and no ARN of one's own).
    pub fn manages_certificate(&self) -> bool {
        self.domain.is_some() && self.certificate_arn.is_none()
    }

    /// The hosted zone the distribution's records go in, if any.
    pub fn zone<'s>(&'s self, cdn: &'s CdnSpec) -> Option<&'s str> {
        self.hosted_zone.as_deref().or(cdn.hosted_zone.as_deref())
    }
}

fn default_price_class() -> String {
    "PriceClass_100".to_string()
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OriginSpec {
    /// A bucket of this spec (`storage.buckets[].name`).
    pub bucket: String,
    #[serde(default)]
    pub path: Option<String>,
}

/// One of a distribution's named origins: a bucket of the spec, or a custom origin by domain.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct NamedOriginSpec {
    #[serde(default)]
    pub bucket: Option<String>,
    #[serde(default)]
    pub domain: Option<String>,
    #[serde(default)]
    pub path: Option<String>,
    /// `https-only` (default), `http-only` or `match-viewer`.
    #[serde(default)]
    pub protocol: Option<String>,
    #[serde(default)]
    pub http_port: Option<u32>,
    #[serde(default)]
    pub https_port: Option<u32>,
    /// The oldest TLS CloudFront uses to the origin: `TLSv1.2` (default), `TLSv1.1`, `TLSv1`.
    #[serde(default)]
    pub min_tls: Option<String>,
    /// Headers CloudFront adds to every request to the origin (a shared secret the API checks).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub read_timeout: Option<Duration>,
    #[serde(default)]
    pub keepalive_timeout: Option<Duration>,
    #[serde(default)]
    pub connection_timeout: Option<Duration>,
    #[serde(default)]
    pub connection_attempts: Option<u32>,
    /// A path `poactl check` fetches through the distribution and directly (`/api/health`):
    /// the viewer's path, which a behaviour routes to this origin.
    #[serde(default)]
    pub health: Option<String>,
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum SecurityHeadersSpec {
    On(bool),
    Managed(String),
}

/// The origin id the single `origin:` form has always had.
pub const SINGLE_ORIGIN_ID: &str = "s3-origin";

/// One origin of a distribution, as the provider builds it.
#[derive(Debug, Clone)]
pub enum OriginRef<'s> {
    Bucket { id: String, bucket: &'s str, path: Option<&'s str> },
    Custom { id: String, spec: &'s NamedOriginSpec },
}

impl OriginRef<'_> {
    pub fn id(&self) -> &str {
        match self {
            OriginRef::Bucket { id, .. } | OriginRef::Custom { id, .. } => id,
        }
    }
}

impl DistributionSpec {
    /// Every origin, the single `origin:` first (its id `s3-origin`), then the named ones.
    pub fn origin_list(&self) -> Vec<OriginRef<'_>> {
        let mut out = Vec::new();
        if let Some(o) = &self.origin {
            out.push(OriginRef::Bucket { id: SINGLE_ORIGIN_ID.to_string(), bucket: &o.bucket, path: o.path.as_deref() });
        }
        for (name, o) in &self.origins {
            match &o.bucket {
                Some(b) => out.push(OriginRef::Bucket { id: name.clone(), bucket: b, path: o.path.as_deref() }),
                None => out.push(OriginRef::Custom { id: name.clone(), spec: o }),
            }
        }
        out
    }

    /// The buckets the distribution reads (through its OAC).
    pub fn buckets(&self) -> Vec<&str> {
        self.origin_list()
            .into_iter()
            .filter_map(|o| match o {
                OriginRef::Bucket { bucket, .. } => Some(bucket),
                OriginRef::Custom { .. } => None,
            })
            .collect()
    }

    /// The id of the origin the default behaviour uses.
    pub fn default_origin_id(&self) -> String {
        if self.origin.is_some() {
            return SINGLE_ORIGIN_ID.to_string();
        }
        self.default_origin.clone().or_else(|| self.origins.keys().next().cloned()).unwrap_or_default()
    }

    /// The path prefix of the bucket origin `bucket` is served under, if any.
    pub fn bucket_path(&self, bucket: &str) -> Option<&str> {
        self.origin_list().into_iter().find_map(|o| match o {
            OriginRef::Bucket { bucket: b, path, .. } if b == bucket => path,
            _ => None,
        })
    }

    /// The managed response headers policy every behaviour gets, by name.
    pub fn headers_policy(&self) -> Option<String> {
        match &self.security_headers {
            Some(SecurityHeadersSpec::On(true)) => Some("SecurityHeadersPolicy".to_string()),
            Some(SecurityHeadersSpec::Managed(name)) => Some(name.clone()),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CacheRuleSpec {
    pub path: String,
    /// `0` (or `0s`) means no caching: the origin is asked every time. Not with `cache`.
    #[serde(default)]
    pub ttl: Option<Duration>,
    #[serde(default)]
    pub compress: Option<bool>,
    /// The named origin this path goes to (default: the distribution's default origin).
    #[serde(default)]
    pub origin: Option<String>,
    /// A managed cache policy: `disabled` (CachingDisabled), `optimized` (CachingOptimized) or
    /// another one by name. Instead of `ttl`.
    #[serde(default)]
    pub cache: Option<String>,
    /// `read` (GET, HEAD; default), `read-options` (and OPTIONS) or `all` (and PUT, POST,
    /// PATCH, DELETE); GET and HEAD are cached.
    #[serde(default)]
    pub methods: Option<String>,
    /// A managed origin request policy: `all-viewer-except-host` (AllViewerExceptHostHeader),
    /// `all-viewer`, `cors-s3`, `cors-custom`, `user-agent-referer`, or a name. With `cache`.
    #[serde(default)]
    pub forward: Option<String>,
}

impl CacheRuleSpec {
    /// How long CloudFront keeps what this path serves, by default: the `ttl`, none for
    /// `cache: disabled`, else the managed policy's default of a day (CachingOptimized:
    /// default TTL 86,400 s, CloudFront Developer Guide "Use managed cache policies").
    pub fn default_ttl_seconds(&self) -> u64 {
        match (&self.ttl, self.cache.as_deref()) {
            (Some(t), _) => t.seconds,
            (None, Some("disabled" | "CachingDisabled")) => 0,
            (None, _) => 86_400,
        }
    }
}
