//! The distribution's configuration as CloudFront takes it: built whole for a create, laid
//! over the live one for an update, and the viewer TLS policy that is never lowered.

use aws_sdk_cloudfront::types::{
    Aliases, AllowedMethods, CacheBehavior, CacheBehaviors, CachedMethods, CookiePreference, DefaultCacheBehavior, DistributionConfig,
    ForwardedValues, ItemSelection, Method, MinimumProtocolVersion, Origins, PriceClass, SslSupportMethod, ViewerCertificate,
    ViewerProtocolPolicy,
};
use serde_json::{Value, json};

use super::{ONE_YEAR, ORIGIN_ID};
use crate::providers::{ProviderError, Result};

/// The viewer security policy for a distribution with its own certificate: TLS 1.2 and later
/// (CloudFront Developer Guide, "Supported protocols and ciphers between viewers and
/// CloudFront"; TLSv1.2_2021 is the console's recommended policy).
pub(super) const MIN_TLS_POLICY: &str = "TLSv1.2_2021";

/// How strict a policy is (its place in `CLOUDFRONT_TLS_POLICIES`, weakest first); unknown
/// policies are not ranked.
pub(super) fn tls_rank(policy: &str) -> Option<usize> {
    crate::spec::names::CLOUDFRONT_TLS_POLICIES.iter().position(|p| *p == policy)
}

/// The policy to send: the spec's, unless the live one is stricter (someone raised it, or
/// AWS's newer default): a distribution's TLS is never lowered by poactl.
pub(super) fn effective_tls<'a>(wanted: &'a str, live: Option<&'a str>) -> &'a str {
    match (live, live.and_then(tls_rank), tls_rank(wanted)) {
        (Some(l), Some(lr), Some(wr)) if lr > wr => l,
        _ => wanted,
    }
}

pub(super) fn build_err(e: aws_sdk_cloudfront::error::BuildError) -> ProviderError {
    ProviderError::Api(format!("cannot build the CloudFront request: {e}"))
}

pub(super) fn forwarded() -> Result<ForwardedValues> {
    ForwardedValues::builder()
        .query_string(false)
        .cookies(CookiePreference::builder().forward(ItemSelection::None).build().map_err(build_err)?)
        .build()
        .map_err(build_err)
}

/// The methods a behaviour allows (`read`: GET, HEAD; `read-options`: and OPTIONS; `all`: and
/// PUT, POST, PATCH, DELETE), GET and HEAD cached (CloudFront API reference, AllowedMethods:
/// the three sets CloudFront takes).
pub(super) fn methods(set: &str) -> Result<AllowedMethods> {
    let items: Vec<Method> = match set {
        "all" => vec![Method::Get, Method::Head, Method::Options, Method::Put, Method::Post, Method::Patch, Method::Delete],
        "read-options" => vec![Method::Get, Method::Head, Method::Options],
        _ => vec![Method::Get, Method::Head],
    };
    AllowedMethods::builder()
        .quantity(items.len() as i32)
        .set_items(Some(items))
        .cached_methods(CachedMethods::builder().quantity(2).items(Method::Get).items(Method::Head).build().map_err(build_err)?)
        .build()
        .map_err(build_err)
}

/// Sets a behaviour builder (either kind: they share the setters, not a trait) from its
/// attributes: managed policies, or TTLs with the legacy forwarded values.
macro_rules! behavior_from {
    ($builder:expr, $b:expr, $default_ttl:expr, $max_ttl:expr) => {{
        let b: &Value = $b;
        let (cache, request, headers) = super::origins::policy_ids(b);
        let mut x = $builder
            .target_origin_id(b["origin"].as_str().unwrap_or(ORIGIN_ID))
            .viewer_protocol_policy(ViewerProtocolPolicy::RedirectToHttps)
            .allowed_methods(methods(b["methods"].as_str().unwrap_or("read"))?)
            .compress(b["compress"].as_bool().unwrap_or(true))
            .set_response_headers_policy_id(headers);
        x = match cache {
            // A cache policy sets the TTLs and what is forwarded: no legacy settings with it.
            Some(id) => x.cache_policy_id(id).set_origin_request_policy_id(request),
            None => x
                .forwarded_values(forwarded()?)
                .min_ttl(b["min_ttl"].as_i64().unwrap_or(0))
                .default_ttl(b["default_ttl"].as_i64().unwrap_or($default_ttl))
                .max_ttl(b["max_ttl"].as_i64().unwrap_or($max_ttl)),
        };
        x.build().map_err(build_err)?
    }};
}

/// The DistributionConfig for desired attributes (references already resolved).
pub(super) fn build_config(a: &Value, caller_reference: &str, oac_id: &str) -> Result<DistributionConfig> {
    let mut origins = Vec::new();
    if a.get("origin").is_some_and(|o| o.is_object()) {
        origins.push(super::origins::build_origin(ORIGIN_ID, &a["origin"], oac_id)?);
    }
    for (id, o) in a["origins"].as_object().into_iter().flatten() {
        origins.push(super::origins::build_origin(id, o, oac_id)?);
    }
    let default = behavior_from!(DefaultCacheBehavior::builder(), &a["default_behavior"], 86_400, ONE_YEAR);
    let mut behaviors = Vec::new();
    for b in a["behaviors"].as_array().cloned().unwrap_or_default() {
        behaviors.push(behavior_from!(CacheBehavior::builder().path_pattern(b["path"].as_str().unwrap_or_default()), &b, 0, 0));
    }
    let aliases: Vec<String> =
        a["aliases"].as_array().map(|x| x.iter().filter_map(|s| s.as_str().map(String::from)).collect()).unwrap_or_default();
    let mut cfg = DistributionConfig::builder()
        .caller_reference(caller_reference)
        .comment(a["comment"].as_str().unwrap_or_default())
        .enabled(a["enabled"].as_bool().unwrap_or(true))
        .price_class(PriceClass::from(a["price_class"].as_str().unwrap_or("PriceClass_100")))
        .origins(Origins::builder().quantity(origins.len() as i32).set_items(Some(origins)).build().map_err(build_err)?)
        .default_cache_behavior(default)
        .cache_behaviors(CacheBehaviors::builder().quantity(behaviors.len() as i32).set_items(Some(behaviors)).build().map_err(build_err)?)
        .aliases(Aliases::builder().quantity(aliases.len() as i32).set_items(Some(aliases)).build().map_err(build_err)?)
        .is_ipv6_enabled(a["ipv6"].as_bool().unwrap_or(true));
    cfg = match a["certificate_arn"].as_str() {
        Some(arn) => cfg.viewer_certificate(
            ViewerCertificate::builder()
                .acm_certificate_arn(arn)
                .ssl_support_method(SslSupportMethod::SniOnly)
                .minimum_protocol_version(MinimumProtocolVersion::from(a["min_tls"].as_str().unwrap_or(MIN_TLS_POLICY)))
                .build(),
        ),
        None => cfg.viewer_certificate(ViewerCertificate::builder().cloud_front_default_certificate(true).build()),
    };
    cfg.build().map_err(build_err)
}

/// The live config with only the fields poactl manages set from the spec.
///
/// UpdateDistribution replaces the whole configuration: "the values you specify are not merged
/// into your existing configuration" (CloudFront API reference, UpdateDistribution), and
/// terraform-provider-aws' `resource_distribution.go` likewise sends a full config. Starting from
/// `GetDistributionConfig` keeps what someone else set and poactl does not model: a WAF web ACL,
/// logging, a default root object, custom error pages, geo restrictions, HTTP version, IPv6,
/// other origins, and each behaviour's function and Lambda associations and policies.
pub(super) fn overlay_config(live: &DistributionConfig, a: &Value, oac_id: &str) -> Result<DistributionConfig> {
    let want = build_config(a, &live.caller_reference, oac_id)?;
    let mut out = live.clone();
    out.comment = want.comment;
    out.enabled = want.enabled;
    out.price_class = want.price_class;
    out.aliases = want.aliases;
    out.viewer_certificate = want.viewer_certificate;
    // Never lower the live policy (`effective_tls`).
    if let (Some(w), Some(l)) = (out.viewer_certificate.as_mut(), live.viewer_certificate.as_ref())
        && let (Some(wp), Some(lp)) = (w.minimum_protocol_version.as_ref(), l.minimum_protocol_version.as_ref())
        && w.acm_certificate_arn.is_some()
    {
        let keep = effective_tls(wp.as_str(), Some(lp.as_str())).to_string();
        w.minimum_protocol_version = Some(MinimumProtocolVersion::from(keep.as_str()));
    }
    out.is_ipv6_enabled = want.is_ipv6_enabled;

    // poactl's origins replace their live counterparts (by id); other origins stay.
    let mut items = live.origins.as_ref().map(|o| o.items.clone()).unwrap_or_default();
    for mine in want.origins.as_ref().map(|o| o.items.clone()).unwrap_or_default() {
        match items.iter_mut().find(|o| o.id == mine.id) {
            Some(o) => {
                o.domain_name = mine.domain_name;
                o.origin_path = mine.origin_path;
                o.origin_access_control_id = mine.origin_access_control_id;
                o.s3_origin_config = mine.s3_origin_config;
                o.custom_origin_config = mine.custom_origin_config;
                if mine.custom_headers.is_some() {
                    o.custom_headers = mine.custom_headers;
                }
                o.connection_attempts = mine.connection_attempts.or(o.connection_attempts);
                o.connection_timeout = mine.connection_timeout.or(o.connection_timeout);
            }
            None => items.push(mine),
        }
    }
    out.origins = Some(Origins::builder().quantity(items.len() as i32).set_items(Some(items)).build().map_err(build_err)?);

    // Each behaviour keeps its function and Lambda@Edge associations, field-level encryption
    // and whatever policy the spec does not name; poactl sets its origin, methods, TTLs or
    // cache policy, compression and the viewer protocol.
    // The two behaviour types share these fields but no trait.
    macro_rules! set_managed {
        ($live:expr, $want:expr) => {{
            let (mut b, w) = ($live, $want);
            b.target_origin_id = w.target_origin_id;
            b.viewer_protocol_policy = w.viewer_protocol_policy;
            b.compress = w.compress;
            b.allowed_methods = w.allowed_methods;
            if w.response_headers_policy_id.is_some() {
                b.response_headers_policy_id = w.response_headers_policy_id;
            }
            if w.cache_policy_id.is_some() {
                // Onto a cache policy: the legacy settings go (CloudFront takes one or the other).
                b.cache_policy_id = w.cache_policy_id;
                if w.origin_request_policy_id.is_some() {
                    b.origin_request_policy_id = w.origin_request_policy_id;
                }
                b.forwarded_values = None;
                b.min_ttl = None;
                b.default_ttl = None;
                b.max_ttl = None;
            } else {
                // Back to TTLs from a managed cache policy (one poactl sets); a cache policy of
                // someone's own stays, and its TTLs are the policy's.
                if b.cache_policy_id.as_deref().is_some_and(|id| super::policies::CACHE.iter().any(|(_, m)| *m == id)) {
                    b.cache_policy_id = None;
                    b.origin_request_policy_id = None;
                }
                if b.cache_policy_id.as_deref().is_none_or(str::is_empty) {
                    b.min_ttl = w.min_ttl;
                    b.default_ttl = w.default_ttl;
                    b.max_ttl = w.max_ttl;
                    b.forwarded_values = b.forwarded_values.or(w.forwarded_values);
                }
            }
            b
        }};
    }
    if let (Some(w), Some(live_db)) = (want.default_cache_behavior, live.default_cache_behavior.as_ref()) {
        out.default_cache_behavior = Some(set_managed!(live_db.clone(), w));
    }

    // Behaviours are the spec's list (one removed from the spec shows in the plan and goes);
    // a behaviour that exists live keeps what poactl does not set.
    let live_behaviors = live.cache_behaviors.as_ref().and_then(|c| c.items.clone()).unwrap_or_default();
    let mut behaviors = Vec::new();
    for w in want.cache_behaviors.and_then(|c| c.items).unwrap_or_default() {
        let merged = match live_behaviors.iter().find(|b| b.path_pattern.trim_start_matches('/') == w.path_pattern.trim_start_matches('/'))
        {
            Some(b) => set_managed!(b.clone(), w),
            None => w,
        };
        behaviors.push(merged);
    }
    out.cache_behaviors =
        Some(CacheBehaviors::builder().quantity(behaviors.len() as i32).set_items(Some(behaviors)).build().map_err(build_err)?);
    Ok(out)
}

pub(super) fn behavior_json(min: Option<i64>, default: Option<i64>, max: Option<i64>, compress: Option<bool>) -> Value {
    json!({"min_ttl": min.unwrap_or(0), "default_ttl": default.unwrap_or(86_400), "max_ttl": max.unwrap_or(ONE_YEAR), "compress": compress.unwrap_or(false)})
}
