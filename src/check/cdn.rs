//! A probe object fetched through each distribution, per reachable cache behaviour.

use std::time::Instant;

use super::{Outcome, Status, bucket_region, outcome, probe_token};
use crate::engine::Observation;
use crate::providers;
use crate::resource::Kind;
use crate::spec::LoadedSpec;

/// Whether a CloudFront path pattern matches a path (no leading `/`): `*` is any run of
/// characters, `?` one character, case-sensitive (CloudFront Developer Guide, "Path pattern").
fn path_matches(pattern: &str, path: &str) -> bool {
    let (p, s): (Vec<char>, Vec<char>) = (pattern.trim_start_matches('/').chars().collect(), path.chars().collect());
    let (mut i, mut j, mut star, mut mark) = (0, 0, None, 0);
    while j < s.len() {
        if i < p.len() && (p[i] == '?' || p[i] == s[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some(i);
            mark = j;
            i += 1;
        } else if let Some(st) = star {
            i = st + 1;
            mark += 1;
            j = mark;
        } else {
            return false;
        }
    }
    p[i..].iter().all(|c| *c == '*')
}

/// One probe path per cache behavior of the spec, and one for the default behavior, each with
/// the TTL of the behavior CloudFront picks for it (the first pattern that matches, in order).
fn cdn_probes(attrs: &serde_json::Value, token: &str) -> Vec<(String, String, i64)> {
    let behaviors: Vec<(String, i64)> = attrs["behaviors"]
        .as_array()
        .map(|b| b.iter().map(|b| (b["path"].as_str().unwrap_or("").to_string(), ttl_of(b, 0))).collect())
        .unwrap_or_default();
    let default_ttl = ttl_of(&attrs["default_behavior"], 86_400);
    let picked = |path: &str| behaviors.iter().find(|(p, _)| path_matches(p, path)).map(|(p, t)| (p.clone(), *t));
    let mut probes = Vec::new();
    for (pattern, _) in &behaviors {
        let path = pattern.trim_start_matches('/').replace('*', token).replace('?', "x");
        if let Some((by, ttl)) = picked(&path) {
            probes.push((path, by, ttl));
        }
    }
    let root = format!("{token}.txt");
    // When even this path falls under a pattern, the default behavior is not probed.
    if picked(&root).is_none() {
        probes.push((root, "default".to_string(), default_ttl));
    }
    let mut seen = std::collections::BTreeSet::new();
    probes.retain(|p| seen.insert(p.1.clone()));
    probes
}

/// How long a behaviour keeps an answer without Cache-Control: its TTL, or its managed cache
/// policy's default (CachingDisabled: 0; CachingOptimized and the others: a day, CloudFront
/// Developer Guide, "Use managed cache policies").
fn ttl_of(b: &serde_json::Value, fallback: i64) -> i64 {
    match (b["default_ttl"].as_i64(), b["cache_policy"].as_str()) {
        (Some(t), _) => t,
        (None, Some("CachingDisabled")) => 0,
        (None, Some(_)) => 86_400,
        (None, None) => fallback,
    }
}

/// The bucket and origin path a behaviour's requests go to, when its origin is a bucket.
fn bucket_origin(attrs: &serde_json::Value, behavior: &str) -> Option<(String, String)> {
    let b = if behavior == "default" {
        &attrs["default_behavior"]
    } else {
        attrs["behaviors"].as_array()?.iter().find(|b| b["path"] == behavior)?
    };
    let origin = match attrs.get("origins").and_then(|o| o.as_object()) {
        Some(named) => named.get(b["origin"].as_str()?)?,
        None => &attrs["origin"],
    };
    let bucket = origin.get("bucket")?.as_str()?.to_string();
    Some((bucket, origin["path"].as_str().unwrap_or("").trim_matches('/').to_string()))
}

/// Each distribution serves a probe from its origin bucket over HTTPS: it arrives through the
/// OAC, a direct anonymous GET of the same object is refused, and each cache behavior caches
/// it (or not) as its TTL says. `POACTL_CDN_EDGE_URL` sends the requests to another edge
/// (an HTTP proxy or fake), with the distribution's name as `Host`.
pub(super) async fn cdn(loaded: &LoadedSpec, obs: &Observation, aws: &providers::aws::Aws) -> Vec<Outcome> {
    const G: &str = "cdn";
    let mut out = Vec::new();
    let http = match reqwest::Client::builder().timeout(crate::deadline::current().attempt).build() {
        Ok(h) => h,
        Err(e) => {
            out.push(outcome(G, "an HTTP client", Status::Fail, Instant::now(), e.to_string()));
            return out;
        }
    };
    let edge = std::env::var("POACTL_CDN_EDGE_URL").ok().filter(|v| !v.is_empty());
    let direct = match direct_client() {
        Ok(h) => h,
        Err(e) => {
            out.push(outcome(G, "an HTTP client", Status::Fail, Instant::now(), e.to_string()));
            return out;
        }
    };
    for d in obs.desired.iter().filter(|d| d.address.kind == Kind::Distribution) {
        let t = Instant::now();
        let served = format!("{} serves a probe over HTTPS through its OAC", d.address);
        let Some(Some(o)) = obs.observed.get(&d.address) else {
            out.push(outcome(G, served, Status::Fail, t, "the distribution does not exist: run `poactl apply`"));
            continue;
        };
        let Some(domain) = o.outputs.get("domain").cloned() else {
            out.push(outcome(G, served, Status::Fail, t, "CloudFront gave no domain name for it"));
            continue;
        };
        if o.handle.get("status").and_then(|s| s.as_str()).is_some_and(|s| s != "Deployed") {
            out.push(outcome(G, served, Status::Skip, t, "still deploying (status InProgress): check again once it is Deployed"));
            continue;
        }
        let token = format!("poactl-check-{}", probe_token(&loaded.env));
        // Through a name: the distribution's own, or one of its aliases (with an edge of the
        // user's, as the `Host`; otherwise by DNS and the name's TLS certificate).
        let get_as = |host: &str, path: &str| {
            let url = match &edge {
                Some(e) => format!("{}/{path}", e.trim_end_matches('/')),
                None => format!("https://{host}/{path}"),
            };
            let mut req = http.get(url);
            if edge.is_some() {
                req = req.header(reqwest::header::HOST, host);
            }
            req.send()
        };
        let get = |path: &str| get_as(&domain, path);
        // The spec's names: what viewers are meant to use, whatever the live config says.
        let aliases: Vec<String> = d.attrs["aliases"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a.as_str())
            .filter(|a| !a.starts_with("*."))
            .map(String::from)
            .collect();
        let mut first = true;
        for (path, behavior, ttl) in cdn_probes(&d.attrs, &token) {
            // A probe object goes in a bucket: paths a custom origin serves are checked by
            // their origin's `health` path below.
            let Some((bucket_name, origin_path)) = bucket_origin(&d.attrs, &behavior) else { continue };
            let bucket = crate::resource::Address::new(Kind::Bucket, &bucket_name);
            let region =
                obs.desired.iter().find(|b| b.address == bucket).map_or_else(|| loaded.spec.aws_region(), |b| bucket_region(loaded, b));
            let s3 = aws.s3(&region).await;
            let t = Instant::now();
            let key = if origin_path.is_empty() { path.clone() } else { format!("{origin_path}/{path}") };
            let body = format!("poactl check probe {key}");
            let version = match s3
                .put_object()
                .bucket(&bucket_name)
                .key(&key)
                .body(body.clone().into_bytes().into())
                .content_type("text/plain")
                .send()
                .await
            {
                Ok(put) => put.version_id().map(String::from),
                Err(e) => {
                    out.push(outcome(
                        G,
                        served.clone(),
                        Status::Fail,
                        t,
                        format!("the probe could not be written to {bucket}: {}", aws_sdk_s3::error::DisplayErrorContext(&e)),
                    ));
                    break;
                }
            };
            let fetched = get(&path).await;
            let second = get(&path).await;
            let mut through_aliases = Vec::new();
            if first {
                for alias in &aliases {
                    through_aliases.push((alias.clone(), Instant::now(), get_as(alias, &path).await));
                }
            }
            let direct = http.get(aws.s3_object_url(&bucket_name, &region, &key)).send().await;
            let deleted = super::remove_probe(&s3, &bucket_name, &key, version.as_deref()).await;
            if first {
                first = false;
                let verdict = match fetched {
                    Err(e) => (Status::Fail, format!("GET https://{domain}/{path}: {e}")),
                    Ok(r) if r.status().is_success() => match r.text().await {
                        Ok(text) if text == body => (Status::Pass, String::new()),
                        Ok(_) => (Status::Fail, format!("https://{domain}/{path} answered other bytes than the probe")),
                        Err(e) => (Status::Fail, format!("reading https://{domain}/{path}: {e}")),
                    },
                    Ok(r) if r.status() == reqwest::StatusCode::FORBIDDEN => {
                        let enabled = o.attrs.get("enabled").and_then(|v| v.as_bool()).unwrap_or(true);
                        let answer = r.text().await.unwrap_or_default();
                        (
                            Status::Fail,
                            format!("https://{domain}/{path} answered 403: {}", why_forbidden(enabled, &answer, &bucket.to_string())),
                        )
                    }
                    Ok(r) => (Status::Fail, format!("https://{domain}/{path} answered {}", r.status())),
                };
                out.push(outcome(G, served.clone(), verdict.0, t, verdict.1));
                for (alias, t, got) in through_aliases {
                    let name = format!("{} serves the probe as https://{alias}", d.address);
                    // A TLS failure here is a certificate that does not cover the name; a
                    // resolution failure, DNS that does not point at the distribution yet.
                    out.push(match got {
                        Err(e) => outcome(
                            G,
                            name,
                            Status::Fail,
                            t,
                            format!(
                                "{}: check that {alias} points at {domain} and that the certificate covers it",
                                crate::secrets::error_chain(&e)
                            ),
                        ),
                        Ok(r) if r.status().is_success() => match r.text().await {
                            Ok(text) if text == body => outcome(G, name, Status::Pass, t, ""),
                            _ => outcome(G, name, Status::Fail, t, format!("https://{alias}/{path} answered other bytes than the probe")),
                        },
                        Ok(r) => outcome(
                            G,
                            name,
                            Status::Fail,
                            t,
                            format!(
                                "https://{alias}/{path} answered {}: is {alias} an alias of this distribution and pointed at {domain}?",
                                r.status()
                            ),
                        ),
                    });
                }
                let t = Instant::now();
                let name = format!("{bucket} refuses a direct GET of the probe");
                out.push(match direct {
                    Ok(r) if r.status() == reqwest::StatusCode::FORBIDDEN => outcome(G, name, Status::Pass, t, ""),
                    Ok(r) if r.status().is_success() => outcome(
                        G,
                        name,
                        Status::Fail,
                        t,
                        "anyone can read it without the CDN: the bucket or the object is public; `public_access: blocked` and `poactl apply`",
                    ),
                    Ok(r) => outcome(G, name, Status::Fail, t, format!("the direct GET answered {} (403 expected)", r.status())),
                    Err(e) => outcome(G, name, Status::Skip, t, format!("S3 could not be reached without credentials: {e}")),
                });
            }
            let t = Instant::now();
            let name = format!(
                "{} caches {} as its TTL says ({ttl} s)",
                d.address,
                if behavior == "default" { "the default behavior".to_string() } else { format!("`{behavior}`") }
            );
            // X-Cache says where the answer came from: "Hit from cloudfront", "RefreshHit ...",
            // "Miss from cloudfront" (CloudFront Developer Guide, "Standard logging" x-edge-result-type).
            let cache = second.ok().and_then(|r| r.headers().get("x-cache").and_then(|v| v.to_str().ok()).map(str::to_string));
            out.push(match cache {
                None => outcome(G, name, Status::Skip, t, "the edge sent no X-Cache header"),
                Some(c) => {
                    let hit = c.to_ascii_lowercase().starts_with("hit");
                    match (ttl > 0, hit) {
                        (true, true) | (false, false) => outcome(G, name, Status::Pass, t, ""),
                        (true, false) => outcome(
                            G,
                            name,
                            Status::Fail,
                            t,
                            format!("a second GET was not cached ({c}): the live behavior's TTL is not the spec's; run `poactl apply`"),
                        ),
                        (false, true) => outcome(
                            G,
                            name,
                            Status::Fail,
                            t,
                            format!("a second GET came from the cache ({c}) though the spec says TTL 0; run `poactl apply`"),
                        ),
                    }
                }
            });
            if let Err(e) = deleted {
                out.push(outcome(
                    G,
                    format!("delete the probe {key}"),
                    Status::Fail,
                    t,
                    format!("{e}: delete it by hand, every version of it"),
                ));
            }
        }
        // Custom origins with a `health` path: fetched through the distribution (twice, for
        // what the cache does) and directly, with the headers CloudFront adds.
        let spec = loaded.spec.cdn.iter().flat_map(|c| c.distributions.iter()).find(|x| x.name == d.address.name);
        for (id, origin) in spec.into_iter().flat_map(|x| x.origins.iter()).filter(|(_, o)| o.domain.is_some()) {
            let Some(health) = &origin.health else { continue };
            let path = health.trim_start_matches('/');
            let t = Instant::now();
            let name = format!("{} reaches origin `{id}` for {health}", d.address);
            let (first, second) = (get(path).await, get(path).await);
            let routed =
                d.attrs["behaviors"].as_array().into_iter().flatten().find(|b| path_matches(b["path"].as_str().unwrap_or(""), path));
            let behavior = routed.unwrap_or(&d.attrs["default_behavior"]);
            if behavior["origin"].as_str() != Some(id.as_str()) {
                out.push(outcome(
                    G,
                    name,
                    Status::Fail,
                    t,
                    format!("no behaviour sends {health} to origin `{id}`: add a `cache` path for it"),
                ));
                continue;
            }
            out.push(match first {
                Ok(r) if r.status().is_success() => outcome(G, name, Status::Pass, t, ""),
                Ok(r) => outcome(G, name, Status::Fail, t, format!("https://{domain}{health} answered {} through the CDN", r.status())),
                Err(e) => outcome(G, name, Status::Fail, t, crate::secrets::error_chain(&e)),
            });
            let t = Instant::now();
            let ttl = ttl_of(behavior, 86_400);
            let name = format!("{} {} {health}", d.address, if ttl > 0 { "caches" } else { "does not cache" });
            let cache = second.ok().and_then(|r| r.headers().get("x-cache").and_then(|v| v.to_str().ok()).map(str::to_string));
            out.push(match cache {
                None => outcome(G, name, Status::Skip, t, "the edge sent no X-Cache header"),
                Some(c) if c.to_ascii_lowercase().starts_with("hit") == (ttl > 0) => outcome(G, name, Status::Pass, t, ""),
                Some(c) => outcome(
                    G,
                    name,
                    Status::Fail,
                    t,
                    format!("a second GET answered {c}: the live behaviour is not the spec's; run `poactl apply`"),
                ),
            });
            let t = Instant::now();
            let live = &d.attrs["origins"][id.as_str()];
            let https = live["protocol"].as_str() != Some("http-only");
            let port = if https { live["https_port"].as_u64().unwrap_or(443) } else { live["http_port"].as_u64().unwrap_or(80) };
            let port = if port == 443 || port == 80 { String::new() } else { format!(":{port}") };
            let url = format!(
                "{}://{}{port}{}{health}",
                if https { "https" } else { "http" },
                live["domain"].as_str().unwrap_or_default(),
                live["path"].as_str().unwrap_or_default()
            );
            let mut req = direct.get(&url);
            for (k, v) in live["headers"].as_object().into_iter().flatten() {
                req = req.header(k.as_str(), v.as_str().unwrap_or_default());
            }
            let name = format!("origin `{id}` answers {health} directly");
            out.push(match req.send().await {
                Ok(r) if r.status().is_success() => outcome(G, name, Status::Pass, t, ""),
                Ok(r) => outcome(G, name, Status::Fail, t, format!("{url} answered {}", r.status())),
                Err(e) => outcome(G, name, Status::Fail, t, format!("{url}: {}", crate::secrets::error_chain(&e))),
            });
        }
    }
    out
}

/// The client for origins fetched directly. `POACTL_RESOLVE` (`host=ip,...`) pins names to
/// addresses, as curl's `--resolve` does, to check an origin before its DNS is live.
fn direct_client() -> reqwest::Result<reqwest::Client> {
    let mut b = reqwest::Client::builder().timeout(crate::deadline::current().attempt);
    for pair in std::env::var("POACTL_RESOLVE").unwrap_or_default().split(',').filter(|p| !p.is_empty()) {
        if let Some((host, ip)) = pair.split_once('=')
            && let Ok(ip) = ip.parse::<std::net::IpAddr>()
        {
            b = b.resolve(host, std::net::SocketAddr::new(ip, 0));
        }
    }
    b.build()
}

/// Why the edge answered 403, where the answer tells:
/// - the distribution is disabled (its live `enabled`): CloudFront serves nothing for it;
/// - S3 could not decrypt an SSE-KMS object for CloudFront: S3's AccessDenied then speaks of
///   the KMS key ("kms:Decrypt", "The ciphertext refers to a customer master key ..."), and
///   the key policy must allow `cloudfront.amazonaws.com` (CloudFront Developer Guide,
///   "Restrict access to an Amazon S3 origin", SSE-KMS);
/// - otherwise S3 refused CloudFront itself: no OAC on the origin, or a bucket policy without
///   the distribution (same page).
fn why_forbidden(enabled: bool, answer: &str, bucket: &str) -> String {
    if !enabled {
        return "the distribution is disabled (`enabled: false`), so CloudFront serves nothing for it; enable it in the spec and `poactl apply`".into();
    }
    let lower = answer.to_ascii_lowercase();
    if lower.contains("kms:") || lower.contains("ciphertext") || lower.contains("kms key") || lower.contains("customer master key") {
        return format!(
            "S3 could not decrypt the object for CloudFront: {bucket}'s KMS key policy must allow kms:Decrypt to the service principal cloudfront.amazonaws.com, with AWS:SourceArn this distribution (poactl does not manage key policies)"
        );
    }
    format!("the bucket refuses CloudFront; run `poactl apply` to put back the OAC and {bucket}'s policy")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_403_says_which_refusal_it_is_where_the_answer_tells() {
        let kms = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>AccessDenied</Code><Message>The ciphertext refers to a customer master key that does not exist, does not exist in this region, or you are not allowed to access.</Message></Error>";
        let denied = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>";
        // (enabled, S3's answer through the edge, what the message names)
        let cases = [
            (false, denied, "disabled"),
            (true, kms, "KMS key policy"),
            (true, denied, "put back the OAC"),
            (true, "", "put back the OAC"),
        ];
        for (enabled, answer, want) in cases {
            let got = why_forbidden(enabled, answer, "storage.buckets.b");
            assert!(got.contains(want), "{enabled} {answer}: {got}");
        }
    }

    #[test]
    fn path_patterns_match_as_cloudfront_reads_them() {
        // (pattern, path, matches)
        let cases = [
            ("images/*", "images/a.png", true),
            ("/images/*", "images/a.png", true),
            ("images/*", "Images/a.png", false),
            ("*.jpg", "a/b/c.jpg", true),
            ("*.jpg", "a.jpeg", false),
            ("api/v?/*", "api/v1/users", true),
            ("api/v?/*", "api/v10/users", false),
            ("*", "anything", true),
            ("docs/*", "docs/", true),
        ];
        for (pattern, path, want) in cases {
            assert_eq!(path_matches(pattern, path), want, "{pattern} on {path}");
        }
    }

    #[test]
    fn one_probe_per_reachable_behavior_with_the_ttl_cloudfront_would_pick() {
        let attrs = json!({
            "default_behavior": {"default_ttl": 86400},
            "behaviors": [
                {"path": "images/*", "default_ttl": 31536000},
                {"path": "images/thumbs/*", "default_ttl": 60},
                {"path": "api/*", "default_ttl": 0},
            ],
        });
        let probes = cdn_probes(&attrs, "T");
        assert_eq!(
            probes,
            vec![
                ("images/T".to_string(), "images/*".to_string(), 31_536_000),
                ("api/T".to_string(), "api/*".to_string(), 0),
                ("T.txt".to_string(), "default".to_string(), 86_400),
            ],
            "images/thumbs/* is shadowed by images/*: CloudFront never reaches it"
        );
        let all = json!({"default_behavior": {"default_ttl": 5}, "behaviors": [{"path": "*", "default_ttl": 7}]});
        assert_eq!(cdn_probes(&all, "T"), vec![("T".to_string(), "*".to_string(), 7)]);
    }
}
