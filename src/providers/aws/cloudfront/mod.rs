//! CloudFront distributions in front of a bucket of the spec, reading it through an Origin
//! Access Control poactl creates and owns. Identified by their ownership tags; updated with
//! the ETag; waited on until `Deployed`.
//!
//! Per-path TTLs use CloudFront's legacy cache settings (ForwardedValues + min/default/max
//! TTL), which the SDK marks deprecated in favour of cache policies but CloudFront still
//! supports; they express a TTL per path without a cache-policy resource per TTL.
#![allow(deprecated)]

mod config;
mod errors;
mod origins;
pub mod policies;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_cloudfront::types::{
    DistributionConfigWithTags, OriginAccessControlConfig, OriginAccessControlOriginTypes, OriginAccessControlSigningBehaviors,
    OriginAccessControlSigningProtocols, Tag, TagKeys, Tags,
};
use serde_json::{Value, json};
use tokio::sync::OnceCell;

use self::config::{MIN_TLS_POLICY, build_config, build_err, effective_tls, overlay_config, tls_rank};
use self::errors::{alias_taken, certificate_not_yet, no_retries, unknown_or};
use super::{Aws, error_code, sdk_error};
use crate::plan::FieldChange;
use crate::providers::{Ctx, Desired, Lane, Look, Observed, Outputs, Provider, ProviderError, Result, all_tags, ownership_from_tags};
use crate::resource::{Address, Kind};
use crate::spec::LoadedSpec;
use crate::spec::model::{CdnSpec, DistributionSpec};

/// CloudFront's control plane allows few requests a second (the client also retries adaptively).
const LANE: Lane = Lane { service: "cloudfront", limit: 4 };

/// A distribution as listed, with its tags.
#[derive(Clone, Debug)]
struct Listed {
    id: String,
    arn: String,
    tags: BTreeMap<String, String>,
    /// The OACs its origins use, from the list's summary.
    oac_ids: Vec<String>,
}

pub struct DistributionProvider {
    aws: Arc<Aws>,
    /// Every distribution of the account with its tags, read once per run.
    listed: OnceCell<Vec<Listed>>,
    /// Every origin access control of the account (id, name), read once per run for the reads;
    /// writes look again (`find_oac`).
    oac_list: OnceCell<Vec<(String, String)>>,
}

impl DistributionProvider {
    pub fn new(aws: Arc<Aws>) -> Self {
        DistributionProvider { aws, listed: OnceCell::new(), oac_list: OnceCell::new() }
    }
}

pub(super) const ONE_YEAR: i64 = 31_536_000;
pub(super) const ORIGIN_ID: &str = "s3-origin";

pub fn oac_name(env: &str, name: &str) -> String {
    format!("poactl-{env}-{name}")
}

pub fn desired(loaded: &LoadedSpec, cdn: &CdnSpec, d: &DistributionSpec, address: Address) -> Desired {
    let default_ttl = d.default_ttl.as_ref().map_or(86_400, |t| t.seconds as i64);
    let behaviors: Vec<Value> = d.cache.iter().map(|c| origins::desired_behavior(d, Some(c), default_ttl)).collect();
    let oac = oac_name(&loaded.env, &d.name);
    let mut aliases = d.domain_names();
    aliases.sort();
    // A certificate of the spec's own, or the one poactl requests for the domain.
    let certificate_arn = match (&d.certificate_arn, d.manages_certificate()) {
        (Some(arn), _) => Some(arn.clone()),
        (None, true) => Some(format!("${{cdn.certificates.{}.arn}}", d.name)),
        (None, false) => None,
    };
    let mut attrs = json!({
        "enabled": d.enabled,
        "comment": d.comment.clone().unwrap_or_else(|| format!("poactl {} {}", loaded.env, d.name)),
        "price_class": d.price_class,
        "aliases": aliases,
        "certificate_arn": certificate_arn,
        // The security policy poactl sets with a certificate of the spec's; with the default
        // *.cloudfront.net certificate CloudFront fixes it at TLSv1 whatever is sent
        // (CloudFront API reference, ViewerCertificate MinimumProtocolVersion).
        "min_tls": certificate_arn.as_ref().map(|_| d.min_tls.clone().unwrap_or_else(|| MIN_TLS_POLICY.to_string())),
        // AAAA alias records need it, and viewers on IPv6 get there directly.
        "ipv6": true,
        "default_behavior": origins::desired_behavior(d, None, default_ttl),
        "behaviors": behaviors,
        "tags": all_tags(loaded, &d.tags, &address),
    });
    // The single origin keeps its attribute shape; named origins are a map by id.
    match &d.origin {
        Some(o) => {
            attrs["origin"] = json!({
                "bucket": o.bucket,
                "domain": format!("${{storage.buckets.{}.domain}}", o.bucket),
                "path": o.path.clone().unwrap_or_default(),
                "oac": oac,
            })
        }
        None => attrs["origins"] = origins::desired_origins(d, &oac),
    }
    let mut desired = Desired::new(address, attrs);
    for b in d.buckets() {
        desired = desired.depends(Address::new(Kind::Bucket, b));
    }
    if d.zone(cdn).is_none() && !aliases.is_empty() {
        desired.notes.push(format!(
            "no hosted_zone: point {} at the distribution's domain yourself (a CNAME, or an ALIAS/ANAME at the apex)",
            aliases.join(", ")
        ));
    }
    let kms = loaded
        .spec
        .storage
        .iter()
        .flat_map(|s| s.buckets.iter())
        .find(|b| d.buckets().contains(&b.name.as_str()) && b.encryption == "aws:kms");
    if let Some(kms) = kms {
        // OAC reads an SSE-KMS bucket only if the key policy lets CloudFront decrypt (CloudFront
        // Developer Guide, "Restricting access to an Amazon S3 origin", SSE-KMS).
        desired.notes.push(format!(
            "the origin bucket {} uses SSE-KMS: its key policy must allow kms:Decrypt to the service principal cloudfront.amazonaws.com with AWS:SourceArn of this distribution; poactl does not manage key policies",
            kms.name
        ));
    }
    desired
}

/// The live attributes in the shape the spec's take: the single origin or the named ones (only
/// those the spec names), and no policy the spec does not mention.
fn comparable(want: &Value, live: &Value) -> Value {
    let mut live = live.clone();
    let Some(l) = live.as_object_mut() else { return live };
    match want.get("origins").and_then(Value::as_object) {
        Some(named) => {
            l.remove("origin");
            if let Some(o) = l.get_mut("origins").and_then(Value::as_object_mut) {
                o.retain(|id, _| named.contains_key(id));
            }
        }
        None => {
            l.remove("origins");
        }
    }
    if let Some(db) = l.get_mut("default_behavior") {
        origins::unsaid_policies(&want["default_behavior"], db);
    }
    if let Some(bs) = l.get_mut("behaviors").and_then(Value::as_array_mut) {
        for b in bs.iter_mut() {
            let path = b["path"].clone();
            let wanted = want["behaviors"].as_array().and_then(|w| w.iter().find(|x| x["path"] == path)).cloned().unwrap_or(Value::Null);
            origins::unsaid_policies(&wanted, b);
        }
    }
    live
}

/// The names of the certificate the live distribution serves, when ACM told them.
fn certificate_names(o: &Observed) -> Option<Vec<&str>> {
    let names: Vec<&str> = o.handle["certificate"]["names"].as_array()?.iter().filter_map(|n| n.as_str()).collect();
    (!names.is_empty()).then_some(names)
}

/// The aliases none of the certificate's names covers.
fn uncovered<'a>(aliases: &'a Value, names: &[&str]) -> Vec<&'a str> {
    aliases
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a.as_str())
        .filter(|a| !names.iter().any(|n| crate::spec::names::certificate_covers(n, a)))
        .collect()
}

/// The domain viewers use for a distribution of the spec, when it has its own.
fn viewer_domain(loaded: &LoadedSpec, name: &str) -> Option<String> {
    loaded.spec.cdn.iter().flat_map(|c| c.distributions.iter()).find(|d| d.name == name).and_then(|d| d.domain.clone())
}

/// The bucket an S3 origin domain points at (`b.s3.us-east-1.amazonaws.com`, `b.s3.amazonaws.com`).
fn bucket_of(domain: &str) -> String {
    domain.split(".s3").next().unwrap_or(domain).to_string()
}

impl DistributionProvider {
    /// The account's distributions with their tags; the OAC list goes out beside the first
    /// page, since every read of a distribution names its OAC.
    async fn listed(&self) -> Result<&Vec<Listed>> {
        let (listed, _) = tokio::join!(self.listed.get_or_try_init(|| self.list_cached()), self.oac_names());
        listed
    }

    /// The OAC list of this run (an error here is left to the caller that needs the list).
    async fn oac_names(&self) -> Result<&Vec<(String, String)>> {
        self.oac_list.get_or_try_init(|| self.oacs()).await
    }

    /// Every distribution of the account with its tags, read now.
    async fn list_all(&self) -> Result<Vec<Listed>> {
        let summaries = self.aws.list_distributions_now().await?;
        self.with_tags(&summaries).await
    }

    /// The run's listing (shared with the certificate provider, which looks for aliases in it)
    /// with each distribution's tags.
    async fn list_cached(&self) -> Result<Vec<Listed>> {
        self.with_tags(self.aws.distributions().await?).await
    }

    async fn with_tags(&self, summaries: &[super::DistributionSummary]) -> Result<Vec<Listed>> {
        let cf = &self.aws.cloudfront;
        let lookups = summaries.iter().map(|s| async move {
            let tags = cf
                .list_tags_for_resource()
                .resource(&s.arn)
                .send()
                .await
                .map_err(|e| sdk_error(&format!("ListTagsForResource {}", s.id), e))?;
            let tags: BTreeMap<String, String> = tags
                .tags()
                .map(|t| t.items().iter().map(|t| (t.key().to_string(), t.value().unwrap_or("").to_string())).collect())
                .unwrap_or_default();
            Ok::<_, ProviderError>(Listed { id: s.id.clone(), arn: s.arn.clone(), tags, oac_ids: s.oac_ids.clone() })
        });
        futures::future::try_join_all(lookups).await
    }

    /// A live distribution in the shape of the desired attributes.
    /// `viewer_domain`: the spec's `domain`, which viewers use (the `url` output).
    /// `certificate_managed`: the certificate is poactl's own (`cdn.certificates`), whose
    /// provider reports its health.
    async fn read(
        &self,
        env: &str,
        address: &Address,
        l: &Listed,
        viewer_domain: Option<&str>,
        certificate_managed: bool,
    ) -> Result<Observed> {
        let cf = &self.aws.cloudfront;
        let out = cf.get_distribution().id(&l.id).send().await.map_err(|e| sdk_error(&format!("GetDistribution {}", l.id), e))?;
        let dist = out.distribution().ok_or_else(|| ProviderError::Api(format!("GetDistribution {}: empty answer", l.id)))?;
        let cfg = dist.distribution_config().ok_or_else(|| ProviderError::Api(format!("GetDistribution {}: no config", l.id)))?;
        let all_origins = cfg.origins().map(|o| o.items()).unwrap_or_default();
        let origin = all_origins.iter().find(|o| o.id() == ORIGIN_ID).or_else(|| all_origins.first());
        let oac_id = all_origins.iter().filter_map(|o| o.origin_access_control_id()).find(|id| !id.is_empty()).unwrap_or("");
        let listed_name = self.oac_names().await.ok().and_then(|l| l.iter().find(|(id, _)| id == oac_id).map(|(_, n)| json!(n)));
        let oac = if oac_id.is_empty() {
            Value::Null
        } else if let Some(name) = listed_name {
            name
        } else {
            // Not on the run's list (made since, or the list was refused): asked alone.
            match cf.get_origin_access_control().id(oac_id).send().await {
                Ok(o) => {
                    o.origin_access_control().and_then(|c| c.origin_access_control_config()).map(|c| json!(c.name())).unwrap_or(Value::Null)
                }
                Err(e) if error_code(&e).as_deref() == Some("NoSuchOriginAccessControl") => Value::Null,
                Err(e) => return Err(sdk_error(&format!("GetOriginAccessControl {oac_id}"), e)),
            }
        };
        let domain = origin.map(|o| o.domain_name().to_string()).unwrap_or_default();
        let named: serde_json::Map<String, Value> =
            all_origins.iter().map(|o| (o.id().to_string(), origins::read_origin(o, &oac))).collect();
        let default_behavior = match cfg.default_cache_behavior() {
            Some(db) => origins::read_behavior!(db),
            None => json!({}),
        };
        let behaviors: Vec<Value> = cfg
            .cache_behaviors()
            .map(|c| {
                c.items()
                    .iter()
                    .map(|b| {
                        let mut v = origins::read_behavior!(b);
                        v["path"] = json!(b.path_pattern().trim_start_matches('/'));
                        v
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut aliases: Vec<String> = cfg.aliases().map(|a| a.items().to_vec()).unwrap_or_default();
        aliases.sort();
        let certificate = cfg
            .viewer_certificate()
            .and_then(|v| v.acm_certificate_arn())
            .filter(|s| !s.is_empty())
            .map(|s| json!(s))
            .unwrap_or(Value::Null);
        // The security policy matters only with a certificate of one's own; with the default
        // one CloudFront serves TLSv1 whatever the field says.
        let min_tls = if certificate.is_null() {
            Value::Null
        } else {
            cfg.viewer_certificate().and_then(|v| v.minimum_protocol_version()).map(|p| json!(p.as_str())).unwrap_or(Value::Null)
        };
        let attrs = json!({
            "origin": {"bucket": bucket_of(&domain), "domain": domain, "path": origin.and_then(|o| o.origin_path()).unwrap_or(""), "oac": oac},
            "origins": named,
            "min_tls": min_tls,
            "enabled": cfg.enabled(),
            "ipv6": cfg.is_ipv6_enabled().unwrap_or(false),
            "comment": cfg.comment(),
            "price_class": cfg.price_class().map(|p| p.as_str()).unwrap_or("PriceClass_All"),
            "aliases": aliases,
            "certificate_arn": certificate,
            "default_behavior": default_behavior,
            "behaviors": behaviors,
            "tags": l.tags,
        });
        let ownership = ownership_from_tags(&l.tags, env, address);
        let domain_name = dist.domain_name().to_string();
        let outputs = Outputs::from([
            ("id".to_string(), l.id.clone()),
            ("arn".to_string(), l.arn.clone()),
            ("domain".to_string(), domain_name.clone()),
            ("url".to_string(), format!("https://{}", viewer_domain.unwrap_or(&domain_name))),
            ("description".to_string(), format!("distribution {} ({domain_name})", l.id)),
        ]);
        let certificate = match certificate.as_str() {
            Some(arn) => self.aws.certificate_facts(arn).await?,
            None => Value::Null,
        };
        Ok(Observed {
            id: l.id.clone(),
            attrs,
            outputs,
            ownership,
            handle: json!({"oac_id": oac_id, "status": dist.status(), "certificate": certificate, "certificate_managed": certificate_managed}),
        })
    }

    /// The OAC named for this distribution, created when missing.
    ///
    /// CreateOriginAccessControl has no idempotency token: a create whose answer was lost (a
    /// 500 or a dropped connection after CloudFront did the work) must not be repeated blindly.
    /// So the SDK does not retry it; poactl looks the name up before each new attempt.
    async fn ensure_oac(&self, name: &str) -> Result<String> {
        let mut attempt = 0;
        loop {
            if let Some(id) = self.find_oac(name).await? {
                return Ok(id);
            }
            match self.create_oac(name).await {
                Ok(id) => return Ok(id),
                Err(e) if attempt < 6 && e.outcome_unknown() => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(200 << attempt.min(5))).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn create_oac(&self, name: &str) -> Result<String> {
        let cf = &self.aws.cloudfront;
        let cfg = OriginAccessControlConfig::builder()
            .name(name)
            .description("Created by poactl: lets the distribution read its S3 origin")
            .signing_protocol(OriginAccessControlSigningProtocols::Sigv4)
            .signing_behavior(OriginAccessControlSigningBehaviors::Always)
            .origin_access_control_origin_type(OriginAccessControlOriginTypes::S3)
            .build()
            .map_err(build_err)?;
        let out =
            cf.create_origin_access_control().origin_access_control_config(cfg).customize().config_override(no_retries()).send().await;
        match out {
            Ok(out) => Ok(out.origin_access_control().map(|o| o.id().to_string()).unwrap_or_default()),
            // A racing run made it first: use it.
            Err(e) if error_code(&e).as_deref() == Some("OriginAccessControlAlreadyExists") => {
                self.find_oac(name).await?.ok_or_else(|| sdk_error(&format!("CreateOriginAccessControl {name}"), e))
            }
            Err(e) => Err(unknown_or(e, &format!("CreateOriginAccessControl {name}"))),
        }
    }

    /// Every origin access control of the account: (id, name).
    async fn oacs(&self) -> Result<Vec<(String, String)>> {
        let cf = &self.aws.cloudfront;
        let mut out = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let page = cf
                .list_origin_access_controls()
                .set_marker(marker.clone())
                .send()
                .await
                .map_err(|e| sdk_error("ListOriginAccessControls", e))?;
            let Some(list) = page.origin_access_control_list() else { return Ok(out) };
            out.extend(list.items().iter().map(|o| (o.id().to_string(), o.name().to_string())));
            match list.next_marker() {
                Some(m) if list.is_truncated() && !m.is_empty() => marker = Some(m.to_string()),
                _ => return Ok(out),
            }
        }
    }

    async fn find_oac(&self, name: &str) -> Result<Option<String>> {
        Ok(self.oacs().await?.into_iter().find(|(_, n)| n == name).map(|(id, _)| id))
    }

    /// Polls until the distribution is `Deployed` (spinner; the run's timeout).
    async fn wait_deployed(&self, ctx: &Ctx<'_>, id: &str, what: &str) -> Result<()> {
        if !ctx.options.wait {
            return Ok(());
        }
        crate::providers::wait_for(ctx, what, "waiting for CloudFront to deploy", Duration::from_secs(20), || async {
            let out =
                self.aws.cloudfront.get_distribution().id(id).send().await.map_err(|e| sdk_error(&format!("GetDistribution {id}"), e))?;
            let status = out.distribution().map(|d| d.status().to_string()).unwrap_or_default();
            Ok(if status == "Deployed" { crate::providers::Look::Ready(()) } else { crate::providers::Look::NotYet(status) })
        })
        .await
    }

    /// Deletes the distribution's OAC once the distribution is gone. CloudFront answers
    /// OriginAccessControlInUse while the deletion propagates (terraform-provider-aws retries
    /// it, `internal/service/cloudfront/origin_access_control.go`): retried within the run's
    /// timeout, so the OAC never outlives its distribution.
    async fn delete_oac(&self, ctx: &Ctx<'_>, oac_id: &str) -> Result<()> {
        if oac_id.is_empty() {
            return Ok(());
        }
        let cf = &self.aws.cloudfront;
        let what = format!("origin access control {oac_id}");
        crate::providers::wait_for(ctx, &what, "deleting", Duration::from_secs(30), || async {
            let oac = match cf.get_origin_access_control().id(oac_id).send().await {
                Ok(o) => o,
                Err(e) if error_code(&e).as_deref() == Some("NoSuchOriginAccessControl") => return Ok(Look::Ready(())),
                Err(e) => return Err(sdk_error(&format!("GetOriginAccessControl {oac_id}"), e)),
            };
            match cf.delete_origin_access_control().id(oac_id).if_match(oac.e_tag().unwrap_or_default()).send().await {
                Ok(_) => Ok(Look::Ready(())),
                Err(e) if error_code(&e).as_deref() == Some("NoSuchOriginAccessControl") => Ok(Look::Ready(())),
                Err(e) if matches!(error_code(&e).as_deref(), Some("OriginAccessControlInUse" | "PreconditionFailed")) => {
                    Ok(Look::NotYet(format!("{}: CloudFront still lets the deleted distribution go", error_code(&e).unwrap_or_default())))
                }
                Err(e) => Err(sdk_error(&format!("DeleteOriginAccessControl {oac_id}"), e)),
            }
        })
        .await
    }

    async fn set_tags(&self, arn: &str, want: &Value, have: &BTreeMap<String, String>) -> Result<()> {
        let cf = &self.aws.cloudfront;
        let want: BTreeMap<String, String> = crate::providers::string_map(want);
        let stale: Vec<String> = have.keys().filter(|k| !want.contains_key(*k)).cloned().collect();
        if !stale.is_empty() {
            cf.untag_resource()
                .resource(arn)
                .tag_keys(TagKeys::builder().set_items(Some(stale)).build())
                .send()
                .await
                .map_err(|e| sdk_error("UntagResource", e))?;
        }
        if want.iter().any(|(k, v)| have.get(k) != Some(v)) {
            let tags: Vec<Tag> = want.iter().filter_map(|(k, v)| Tag::builder().key(k).value(v).build().ok()).collect();
            cf.tag_resource()
                .resource(arn)
                .tags(Tags::builder().set_items(Some(tags)).build())
                .send()
                .await
                .map_err(|e| sdk_error("TagResource", e))?;
        }
        Ok(())
    }
}

#[async_trait]
impl Provider for DistributionProvider {
    fn kind(&self) -> Kind {
        Kind::Distribution
    }

    fn lane(&self) -> Lane {
        LANE
    }

    /// An alias the distribution's certificate does not cover: CloudFront refuses the update
    /// (InvalidViewerCertificate, "the certificate ... must cover the alternate domain name",
    /// CloudFront Developer Guide, "Requirements for using alternate domain names"). Known when
    /// the spec keeps the live certificate, whose names were read.
    fn blocked(&self, d: &Desired, o: &Observed, _changes: &[FieldChange]) -> Option<String> {
        // poactl's own certificate is replaced for new names before the distribution changes.
        if o.handle["certificate_managed"] == true {
            return None;
        }
        let arn = d.attrs["certificate_arn"].as_str()?;
        if o.attrs["certificate_arn"].as_str() != Some(arn) {
            return None;
        }
        let names = certificate_names(o)?;
        let uncovered = uncovered(&d.attrs["aliases"], &names);
        (!uncovered.is_empty()).then(|| {
            format!(
                "CloudFront would refuse the aliases {}: certificate {arn} covers only {}. Add them to the certificate (a new one in ACM, us-east-1), or use `domain:` and poactl requests one that covers every name",
                uncovered.join(", "),
                names.join(", ")
            )
        })
    }

    /// A certificate of one's own that does not cover every alias (CloudFront serves the
    /// names it covers only), or that is not issued, expiring unrenewed or gone.
    /// A live TLS policy stricter than the spec's is not a change: poactl never lowers it
    /// (`effective_tls`). One weaker than the spec's is, and `unhealthy` says it is a downgrade.
    fn diff(&self, desired: &Desired, observed: &Observed) -> Vec<FieldChange> {
        let live = comparable(&desired.attrs, &observed.attrs);
        let mut changes = crate::plan::diff::diff_closed(&desired.attrs, &live, self.replace_paths(), self.closed_maps());
        changes.retain(|c| {
            let (live, wanted) = (c.before.as_ref().and_then(|v| v.as_str()), c.after.as_ref().and_then(|v| v.as_str()));
            !(c.path == "min_tls" && wanted.is_some_and(|w| effective_tls(w, live) != w))
        });
        changes
    }

    fn unhealthy(&self, d: &Desired, o: &Observed) -> Option<String> {
        if let (Some(live), Some(wanted)) = (o.attrs["min_tls"].as_str(), d.attrs["min_tls"].as_str())
            && let (Some(lr), Some(wr)) = (tls_rank(live), tls_rank(wanted))
            && lr < wr
        {
            return Some(format!(
                "its viewer TLS policy {live} is weaker than the spec's {wanted} (lowered since, by hand or by another tool): apply raises it"
            ));
        }
        let cert = &o.handle["certificate"];
        let arn = o.attrs["certificate_arn"].as_str()?;
        if cert["missing"] == true {
            return Some(format!("its certificate {arn} does not exist in ACM (us-east-1): viewers of its aliases get TLS errors"));
        }
        if let Some(names) = certificate_names(o) {
            let uncovered = uncovered(&o.attrs["aliases"], &names);
            if !uncovered.is_empty() {
                return Some(format!("its certificate {arn} does not cover {} (it holds {})", uncovered.join(", "), names.join(", ")));
            }
        }
        if o.handle["certificate_managed"] == true || cert.is_null() {
            return None;
        }
        let status = cert["status"].as_str().unwrap_or("");
        if status != "ISSUED" && !status.is_empty() {
            return Some(format!("its certificate {arn} is {status}, not ISSUED"));
        }
        super::acm::problem_now(cert).map(|p| format!("its certificate {arn}: {p}"))
    }

    async fn observe(&self, ctx: &Ctx<'_>, d: &Desired) -> Result<Option<Observed>> {
        let id = d.address.to_string();
        let listed = self.listed().await?;
        let mine = listed.iter().find(|l| {
            crate::providers::ownership_tag(&l.tags, "id") == Some(id.as_str())
                && crate::providers::ownership_tag(&l.tags, "env") == Some(ctx.env)
        });
        match mine {
            Some(l) => {
                let spec = ctx.loaded.spec.cdn.iter().flat_map(|c| c.distributions.iter()).find(|x| x.name == d.address.name);
                let (domain, managed) = (spec.and_then(|x| x.domain.as_deref()), spec.is_some_and(|x| x.manages_certificate()));
                Ok(Some(self.read(ctx.env, &d.address, l, domain, managed).await?))
            }
            None => Ok(None),
        }
    }

    /// The environment's distributions, and the OACs a deleted one left behind: a run stopped
    /// between DeleteDistribution and DeleteOriginAccessControl would otherwise leak its OAC
    /// (OACs carry no tags; poactl's are named `poactl-ENV-NAME`).
    async fn discover(&self, ctx: &Ctx<'_>) -> Result<Vec<(Address, Observed)>> {
        let listed = self.listed().await?;
        let declared_names: Vec<&str> = ctx.loaded.spec.cdn.iter().flat_map(|c| c.distributions.iter()).map(|d| d.name.as_str()).collect();
        let mut out = Vec::new();
        // Declared distributions are the observe step's (read once there); the others are
        // read here, concurrently.
        let undeclared: Vec<(Address, &Listed)> = listed
            .iter()
            .filter(|l| crate::providers::managed_in_env(&l.tags, ctx.env))
            .map(|l| {
                let name = crate::providers::ownership_tag(&l.tags, "id")
                    .and_then(|id| id.strip_prefix("cdn.distributions."))
                    .unwrap_or(&l.id)
                    .to_string();
                (Address::new(Kind::Distribution, name), l)
            })
            .filter(|(a, _)| !declared_names.contains(&a.name.as_str()))
            .collect();
        let read = futures::future::try_join_all(undeclared.iter().map(|(a, l)| self.read(ctx.env, a, l, None, false))).await?;
        out.extend(undeclared.iter().map(|(a, _)| a.clone()).zip(read));
        // OACs in use: by an undeclared distribution read here, or by a declared one (its
        // summary's origin names it).
        let mut used: Vec<String> =
            out.iter().filter_map(|(_, o)| o.handle.get("oac_id").and_then(|v| v.as_str()).map(String::from)).collect();
        used.extend(listed.iter().flat_map(|l| l.oac_ids.iter().cloned()));
        let declared: Vec<String> = declared_names.iter().map(|n| oac_name(ctx.env, n)).collect();
        let prefix = oac_name(ctx.env, "");
        for (id, name) in self.oac_names().await?.clone() {
            if name.starts_with(&prefix) && !used.contains(&id) && !declared.contains(&name) {
                let short = name.trim_start_matches(&prefix).to_string();
                out.push((
                    Address::new(Kind::Distribution, format!("{short} (origin access control)")),
                    Observed {
                        id: id.clone(),
                        attrs: json!({}),
                        outputs: Outputs::from([(
                            "description".to_string(),
                            format!("origin access control {name}, left by a deleted distribution"),
                        )]),
                        ownership: crate::providers::Ownership::Owned,
                        handle: json!({"orphan_oac": id}),
                    },
                ));
            }
        }
        Ok(out)
    }

    /// Creates the distribution with its tags, so ownership is atomic. The CallerReference is
    /// deterministic (environment, name, and the OAC, which a deleted distribution takes with
    /// it): CloudFront answers a repeated create with the same reference and config with the
    /// same distribution, and with DistributionAlreadyExists when the config differs
    /// (CreateDistribution API reference, CallerReference). poactl does not rely on that alone:
    /// after a lost answer it looks for a distribution tagged with this address before it tries
    /// again.
    async fn create(&self, ctx: &Ctx<'_>, d: &Desired) -> Result<Outputs> {
        let oac_id = match origins::wanted_oac(&d.attrs) {
            Some(name) => self.ensure_oac(&name).await?,
            None => String::new(),
        };
        let caller_reference = format!("poactl-{}-{}-{oac_id}", ctx.env, d.address.name);
        let config = build_config(&d.attrs, &caller_reference, &oac_id)?;
        let tags: Vec<Tag> = d.attrs["tags"]
            .as_object()
            .map(|m| m.iter().filter_map(|(k, v)| Tag::builder().key(k).value(v.as_str().unwrap_or("")).build().ok()).collect())
            .unwrap_or_default();
        let with_tags =
            DistributionConfigWithTags::builder().distribution_config(config).tags(Tags::builder().set_items(Some(tags)).build()).build();
        let mut attempt = 0;
        let (started, mut refused) = (std::time::Instant::now(), 0u32);
        let (id, arn, domain) = loop {
            let sent = self
                .aws
                .cloudfront
                .create_distribution_with_tags()
                .distribution_config_with_tags(with_tags.clone())
                .customize()
                .config_override(no_retries())
                .send()
                .await;
            let code = sent.as_ref().err().and_then(error_code);
            if let Some(pause) = certificate_not_yet(code.as_deref(), started, &mut refused) {
                tokio::time::sleep(pause).await;
                continue;
            }
            if code.as_deref() == Some("CNAMEAlreadyExists") {
                let detail = sent.err().map(|e| aws_sdk_cloudfront::error::DisplayErrorContext(e).to_string()).unwrap_or_default();
                return Err(alias_taken(&format!("CreateDistribution {}", d.address), &d.attrs["aliases"], None, &detail));
            }
            let out = sent.map_err(|e| unknown_or(e, &format!("CreateDistribution {}", d.address)));
            match out {
                Ok(out) => {
                    let dist = out.distribution().ok_or_else(|| ProviderError::Api("CreateDistribution: empty answer".into()))?;
                    break (dist.id().to_string(), dist.arn().to_string(), dist.domain_name().to_string());
                }
                Err(e) if attempt < 6 && e.outcome_unknown() => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(200 << attempt.min(5))).await;
                    let address = d.address.to_string();
                    let made = self.list_all().await?.into_iter().find(|l| {
                        crate::providers::ownership_tag(&l.tags, "id") == Some(address.as_str())
                            && crate::providers::ownership_tag(&l.tags, "env") == Some(ctx.env)
                    });
                    if let Some(l) = made {
                        let got =
                            self.aws.cloudfront.get_distribution().id(&l.id).send().await.map_err(|e| sdk_error("GetDistribution", e))?;
                        let domain = got.distribution().map(|x| x.domain_name().to_string()).unwrap_or_default();
                        break (l.id, l.arn, domain);
                    }
                }
                Err(e) => return Err(e),
            }
        };
        self.wait_deployed(ctx, &id, &d.address.to_string()).await?;
        Ok(Outputs::from([
            ("id".to_string(), id),
            ("arn".to_string(), arn),
            ("domain".to_string(), domain.clone()),
            ("url".to_string(), format!("https://{}", viewer_domain(ctx.loaded, &d.address.name).unwrap_or(domain))),
        ]))
    }

    async fn update(&self, ctx: &Ctx<'_>, d: &Desired, o: &Observed, changes: &[FieldChange]) -> Result<Outputs> {
        let cf = &self.aws.cloudfront;
        let config_changed = changes.iter().any(|c| !c.path.starts_with("tags"));
        if config_changed {
            let oac_id = match origins::wanted_oac(&d.attrs) {
                Some(name) => self.ensure_oac(&name).await?,
                None => String::new(),
            };
            // Someone else may change the distribution between our read and our write: CloudFront
            // then answers 412 PreconditionFailed for the stale ETag (API reference,
            // UpdateDistribution). Read again and overlay again, a few times.
            let mut attempt = 0;
            let (started, mut refused) = (std::time::Instant::now(), 0u32);
            loop {
                let current = cf
                    .get_distribution_config()
                    .id(&o.id)
                    .send()
                    .await
                    .map_err(|e| sdk_error(&format!("GetDistributionConfig {}", o.id), e))?;
                let etag = current.e_tag().unwrap_or_default().to_string();
                let live = current
                    .distribution_config()
                    .ok_or_else(|| ProviderError::Api(format!("GetDistributionConfig {}: no config", o.id)))?;
                let config = overlay_config(live, &d.attrs, &oac_id)?;
                match cf.update_distribution().id(&o.id).if_match(etag).distribution_config(config).send().await {
                    Ok(_) => break,
                    Err(e) if error_code(&e).as_deref() == Some("PreconditionFailed") && attempt < 4 => attempt += 1,
                    Err(e) => {
                        let code = error_code(&e);
                        if let Some(pause) = certificate_not_yet(code.as_deref(), started, &mut refused) {
                            tokio::time::sleep(pause).await;
                            continue;
                        }
                        if code.as_deref() == Some("CNAMEAlreadyExists") {
                            let detail = aws_sdk_cloudfront::error::DisplayErrorContext(&e).to_string();
                            let domain = o.outputs.get("domain").map(String::as_str);
                            return Err(alias_taken(&format!("UpdateDistribution {}", o.id), &d.attrs["aliases"], domain, &detail));
                        }
                        return Err(sdk_error(&format!("UpdateDistribution {}", o.id), e));
                    }
                }
            }
        }
        if changes.iter().any(|c| c.path.starts_with("tags")) {
            let arn = o.outputs.get("arn").cloned().unwrap_or_default();
            let have: BTreeMap<String, String> = crate::providers::string_map(&o.attrs["tags"]);
            self.set_tags(&arn, &d.attrs["tags"], &have).await?;
        }
        if config_changed {
            self.wait_deployed(ctx, &o.id, &d.address.to_string()).await?;
        }
        Ok(o.outputs.clone())
    }

    /// Disables the distribution, waits for it to deploy, deletes it, then its OAC.
    async fn delete(&self, ctx: &Ctx<'_>, address: &Address, o: &Observed) -> Result<()> {
        if let Some(oac) = o.handle.get("orphan_oac").and_then(|v| v.as_str()) {
            return self.delete_oac(ctx, oac).await;
        }
        let cf = &self.aws.cloudfront;
        let current = match cf.get_distribution_config().id(&o.id).send().await {
            Ok(c) => c,
            Err(e) if error_code(&e).as_deref() == Some("NoSuchDistribution") => return Ok(()),
            Err(e) => return Err(sdk_error(&format!("GetDistributionConfig {}", o.id), e)),
        };
        let mut etag = current.e_tag().unwrap_or_default().to_string();
        // Deleting needs a disabled *and deployed* distribution (DistributionNotDisabled
        // otherwise): a run that disabled it and was stopped leaves it InProgress.
        let ctx_wait = Ctx { options: &crate::providers::RunOptions { wait: true, ..ctx.options.clone() }, ..*ctx };
        if let Some(cfg) = current.distribution_config().filter(|c| c.enabled()) {
            let mut disabled = cfg.clone();
            disabled.enabled = false;
            let out = cf
                .update_distribution()
                .id(&o.id)
                .if_match(&etag)
                .distribution_config(disabled)
                .send()
                .await
                .map_err(|e| sdk_error(&format!("UpdateDistribution {} (disable)", o.id), e))?;
            etag = out.e_tag().unwrap_or(&etag).to_string();
        }
        self.wait_deployed(&ctx_wait, &o.id, &format!("{address} (disabling)")).await?;
        match cf.delete_distribution().id(&o.id).if_match(&etag).send().await {
            Ok(_) => {}
            Err(e) if error_code(&e).as_deref() == Some("NoSuchDistribution") => {}
            // The ETag went stale while we waited: read it again once.
            Err(e) if error_code(&e).as_deref() == Some("PreconditionFailed") => {
                let fresh = cf.get_distribution().id(&o.id).send().await.map_err(|e| sdk_error(&format!("GetDistribution {}", o.id), e))?;
                cf.delete_distribution()
                    .id(&o.id)
                    .if_match(fresh.e_tag().unwrap_or_default())
                    .send()
                    .await
                    .map_err(|e| sdk_error(&format!("DeleteDistribution {}", o.id), e))?;
            }
            Err(e) => return Err(sdk_error(&format!("DeleteDistribution {}", o.id), e)),
        }
        self.delete_oac(ctx, o.handle.get("oac_id").and_then(|v| v.as_str()).unwrap_or("")).await
    }
}
