//! A fake of CloudFront's edge for `poactl check`: it serves a distribution of moto's by its
//! domain name (the `Host` header), from the origin bucket, as the real edge decides. It reads
//! moto through the SDK and imports no product code, so it can disagree with poactl. Each rule
//! cites its source:
//! - the origin answers only through an Origin Access Control that the bucket policy lets in:
//!   service principal `cloudfront.amazonaws.com`, `s3:GetObject`, and `AWS:SourceArn` equal to
//!   the distribution's ARN (CloudFront Developer Guide, "Restrict access to an Amazon S3
//!   origin"); without an OAC the edge asks anonymously, and S3 answers 403 to a private object;
//! - a request matches the first cache behavior whose path pattern matches, else the default
//!   one; `*` is any run of characters, `?` one, case-sensitive ("Path pattern");
//! - without `Cache-Control` from the origin an object stays `DefaultTTL` seconds; a `max-age`
//!   is kept within `MinTTL`..`MaxTTL` ("Manage how long content stays in the cache");
//! - `X-Cache: Hit from cloudfront` or `Miss from cloudfront`, and `Age` on a hit ("Standard
//!   logging", x-edge-result-type; "Adding, removing, or replacing headers", Age);
//! - an unknown `Host` answers 403 ("The request could not be satisfied", Bad request);
//! - a disabled distribution accepts no requests (Developer Guide, "Distribution settings
//!   reference", Distribution state): 403, as for an unknown `Host`;
//! - the behaviour's `TargetOriginId` picks the origin; a custom origin is asked over the
//!   network with the origin's custom headers added ("Adding custom headers to origin
//!   requests"), and a behaviour with the managed CachingDisabled policy caches nothing
//!   ("Use managed cache policies": TTLs 0);
//! - an object encrypted with SSE-KMS reaches CloudFront only if the key's policy lets the
//!   service principal `cloudfront.amazonaws.com` use `kms:Decrypt` ("Restrict access to an
//!   Amazon S3 origin", SSE-KMS); otherwise S3 refuses with its KMS AccessDenied, which the
//!   edge passes on.

// The legacy TTL fields are what CloudFront reads when no cache policy is attached.
#![allow(deprecated)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{HeaderMap, Response, Uri};

pub struct Edge {
    pub url: String,
}

/// An answer other than the object: its status and body.
type Refusal = (u16, Vec<u8>);

type Cache = Arc<Mutex<HashMap<(String, String), (Instant, Duration, Vec<u8>)>>>;

fn glob(pattern: &[u8], path: &[u8]) -> bool {
    match (pattern.first(), path.first()) {
        (None, None) => true,
        (Some(b'*'), _) => glob(&pattern[1..], path) || (!path.is_empty() && glob(pattern, &path[1..])),
        (Some(b'?'), Some(_)) => glob(&pattern[1..], &path[1..]),
        (Some(a), Some(b)) if a == b => glob(&pattern[1..], &path[1..]),
        _ => false,
    }
}

fn answer(status: u16, headers: &[(&str, String)], body: Vec<u8>) -> Response<Body> {
    let mut r = Response::builder().status(status);
    for (k, v) in headers {
        r = r.header(*k, v);
    }
    r.body(Body::from(body)).unwrap()
}

/// S3's answer when the caller may not use the object's KMS key (S3 error responses,
/// AccessDenied with KMS's message), as CloudFront passes it on.
const KMS_DENIED: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>AccessDenied</Code><Message>The ciphertext refers to a customer master key that does not exist, does not exist in this region, or you are not allowed to access.</Message></Error>";

/// Whether the key's policy (moto's KMS, asked as any client would: GetKeyPolicy, policy
/// "default") lets `cloudfront.amazonaws.com` use `kms:Decrypt`.
async fn kms_lets_cloudfront_decrypt(http: &reqwest::Client, moto: &str, key: &str) -> bool {
    let answer = http
        .post(moto)
        .header("x-amz-target", "TrentService.GetKeyPolicy")
        .header("content-type", "application/x-amz-json-1.1")
        .header("authorization", "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/kms/aws4_request, SignedHeaders=host, Signature=0")
        .body(serde_json::json!({"KeyId": key, "PolicyName": "default"}).to_string())
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = answer.json().await.unwrap_or_default();
    let policy: serde_json::Value = body["Policy"].as_str().and_then(|p| serde_json::from_str(p).ok()).unwrap_or_default();
    let listed = |v: &serde_json::Value| match v {
        serde_json::Value::String(a) => vec![a.clone()],
        v => v.as_array().into_iter().flatten().filter_map(|a| a.as_str().map(String::from)).collect(),
    };
    policy["Statement"].as_array().into_iter().flatten().any(|s| {
        s["Effect"] == "Allow"
            && listed(&s["Principal"]["Service"]).iter().any(|p| p == "cloudfront.amazonaws.com")
            && listed(&s["Action"]).iter().any(|a| a == "kms:Decrypt" || a == "kms:*")
    })
}

impl Edge {
    pub async fn start(moto: &str) -> Edge {
        Self::start_with_origins(moto, Vec::new()).await
    }

    /// An edge that reaches each custom origin domain at a local address (`http://127.0.0.1:N`).
    pub async fn start_with_origins(moto: &str, origins: Vec<(String, String)>) -> Edge {
        let origins: Arc<HashMap<String, String>> = Arc::new(origins.into_iter().collect());
        let conf = crate::support::aws_config(moto).await;
        let cf = aws_sdk_cloudfront::Client::new(&conf);
        let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&conf).force_path_style(true).build());
        let http = reqwest::Client::new();
        let moto = moto.to_string();
        let cache: Cache = Default::default();
        let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap| {
            let (cf, s3, http, moto, cache, origins) = (cf.clone(), s3.clone(), http.clone(), moto.clone(), cache.clone(), origins.clone());
            async move {
                let host = headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("").to_string();
                let path = uri.path().trim_start_matches('/').to_string();
                let list = cf.list_distributions().send().await.unwrap();
                let items = list.distribution_list.and_then(|l| l.items).unwrap_or_default();
                // Its own name, or one of its alternate domain names: CloudFront serves a
                // request whose Host is an alias of the distribution (CloudFront Developer
                // Guide, "Use custom URLs by adding alternate domain names (CNAMEs)").
                let is_alias = |d: &aws_sdk_cloudfront::types::DistributionSummary| {
                    d.aliases.as_ref().and_then(|a| a.items.as_ref()).is_some_and(|items| items.contains(&host))
                };
                let Some(dist) = items.into_iter().find(|d| d.domain_name == host || is_alias(d)) else {
                    return answer(403, &[("x-cache", "Error from cloudfront".into())], b"The request could not be satisfied.".to_vec());
                };
                if !dist.enabled {
                    return answer(403, &[("x-cache", "Error from cloudfront".into())], b"The request could not be satisfied.".to_vec());
                }
                let cfg = cf.get_distribution_config().id(&dist.id).send().await.unwrap().distribution_config.unwrap();
                const CACHING_DISABLED: &str = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad";
                let (min, default, max, target, policy) = cfg
                    .cache_behaviors
                    .as_ref()
                    .and_then(|c| c.items.as_ref())
                    .and_then(|items| items.iter().find(|b| glob(b.path_pattern.trim_start_matches('/').as_bytes(), path.as_bytes())))
                    .map(|b| (b.min_ttl, b.default_ttl, b.max_ttl, b.target_origin_id.clone(), b.cache_policy_id.clone()))
                    .unwrap_or_else(|| {
                        let d = cfg.default_cache_behavior.as_ref().unwrap();
                        (d.min_ttl, d.default_ttl, d.max_ttl, d.target_origin_id.clone(), d.cache_policy_id.clone())
                    });
                // The managed policies' TTLs ("Use managed cache policies": CachingDisabled 0/0/0;
                // CachingOptimized minimum 1 s, default 86,400 s, maximum 31,536,000 s).
                const CACHING_OPTIMIZED: &str = "658327ea-f89d-4fab-a63d-7e88639e58f6";
                let (min, default, max) = match policy.as_deref() {
                    Some(CACHING_DISABLED) => (Some(0), Some(0), Some(0)),
                    Some(CACHING_OPTIMIZED) => (Some(1), Some(86_400), Some(31_536_000)),
                    _ => (min, default, max),
                };
                let all = cfg.origins.as_ref().map(|o| o.items.clone()).unwrap_or_default();
                let origin = all.iter().find(|o| o.id == target).or_else(|| all.first()).cloned().unwrap();
                let slot = (host.clone(), path.clone());
                if let Some((at, ttl, body)) = cache.lock().unwrap().get(&slot).cloned()
                    && at.elapsed() < ttl
                {
                    return answer(200, &[("x-cache", "Hit from cloudfront".into()), ("age", at.elapsed().as_secs().to_string())], body);
                }
                if origin.custom_origin_config.is_some() {
                    let Some(base) = origins.get(&origin.domain_name) else {
                        return answer(502, &[("x-cache", "Error from cloudfront".into())], b"origin unreachable".to_vec());
                    };
                    let mut req = http.get(format!("{base}{}/{path}", origin.origin_path.as_deref().unwrap_or("")));
                    for h in origin.custom_headers.as_ref().and_then(|c| c.items.clone()).unwrap_or_default() {
                        req = req.header(h.header_name, h.header_value);
                    }
                    let r = req.send().await.unwrap();
                    let status = r.status().as_u16();
                    let body = r.bytes().await.unwrap().to_vec();
                    let ttl = default.unwrap_or(86_400);
                    if status == 200 && ttl > 0 {
                        cache.lock().unwrap().insert(slot, (Instant::now(), Duration::from_secs(ttl as u64), body.clone()));
                    }
                    return answer(status, &[("x-cache", "Miss from cloudfront".into())], body);
                }
                let bucket = origin.domain_name.split(".s3.").next().unwrap_or_default().to_string();
                let key = match origin.origin_path.as_deref().map(|p| p.trim_matches('/')).filter(|p| !p.is_empty()) {
                    Some(p) => format!("{p}/{path}"),
                    None => path.clone(),
                };
                let oac = origin.origin_access_control_id.as_deref().unwrap_or("");
                let fetched: Result<(Vec<u8>, Option<String>), Refusal> = if oac.is_empty() {
                    let r = http.get(format!("{moto}/{bucket}/{key}")).send().await.unwrap();
                    if r.status().is_success() {
                        let cc = r.headers().get("cache-control").and_then(|v| v.to_str().ok()).map(String::from);
                        Ok((r.bytes().await.unwrap().to_vec(), cc))
                    } else {
                        Err((r.status().as_u16(), Vec::new()))
                    }
                } else {
                    let policy = s3.get_bucket_policy().bucket(&bucket).send().await.ok().and_then(|p| p.policy);
                    let arn = dist.arn.clone();
                    let lets_in = policy.and_then(|p| serde_json::from_str::<serde_json::Value>(&p).ok()).is_some_and(|p| {
                        p["Statement"].as_array().into_iter().flatten().any(|s| {
                            let actions = match &s["Action"] {
                                serde_json::Value::String(a) => vec![a.clone()],
                                v => v.as_array().into_iter().flatten().filter_map(|a| a.as_str().map(String::from)).collect(),
                            };
                            s["Effect"] == "Allow"
                                && s.pointer("/Principal/Service") == Some(&serde_json::json!("cloudfront.amazonaws.com"))
                                && actions.iter().any(|a| a == "s3:GetObject" || a == "s3:*")
                                && s.pointer("/Condition/StringEquals/AWS:SourceArn") == Some(&serde_json::json!(arn))
                        })
                    });
                    if !lets_in {
                        Err((403, Vec::new()))
                    } else {
                        match s3.get_object().bucket(&bucket).key(&key).send().await {
                            Ok(o) => match o.ssekms_key_id.clone() {
                                Some(k) if !kms_lets_cloudfront_decrypt(&http, &moto, &k).await => {
                                    Err((403, KMS_DENIED.as_bytes().to_vec()))
                                }
                                _ => {
                                    let cc = o.cache_control.clone();
                                    Ok((o.body.collect().await.unwrap().into_bytes().to_vec(), cc))
                                }
                            },
                            Err(_) => Err((404, Vec::new())),
                        }
                    }
                };
                match fetched {
                    Err((status, body)) => answer(status, &[("x-cache", "Error from cloudfront".into())], body),
                    Ok((body, cache_control)) => {
                        let max_age = cache_control
                            .as_deref()
                            .and_then(|c| c.split(',').find_map(|d| d.trim().strip_prefix("max-age=")?.parse::<i64>().ok()));
                        let ttl = match max_age {
                            Some(a) => a.clamp(min.unwrap_or(0), max.unwrap_or(i64::MAX)),
                            None => default.unwrap_or(86_400),
                        };
                        if ttl > 0 {
                            cache.lock().unwrap().insert(slot, (Instant::now(), Duration::from_secs(ttl as u64), body.clone()));
                        }
                        answer(200, &[("x-cache", "Miss from cloudfront".into())], body)
                    }
                }
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Edge { url }
    }
}
