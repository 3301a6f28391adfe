//! Uptime checks: Route 53 health checks of a public URL, carrying the ownership tags and
//! found again through them (Route 53 API reference: CreateHealthCheck, UpdateHealthCheck,
//! ListHealthChecks, ListTagsForResources with ResourceType `healthcheck`, at most 10 ids a
//! call). What the real service does that this relies on:
//! - `Type` and `RequestInterval` cannot change after creation ("You can't change the value of
//!   Type after you create a health check"; RequestInterval likewise, HealthCheckConfig): a
//!   change of either is a replacement;
//! - `CallerReference` makes a create idempotent: the same reference and settings give the
//!   same health check back, so a create whose answer was lost is sent again as it was;
//! - an update names the `HealthCheckVersion` it read, and is refused with
//!   HealthCheckVersionMismatch when someone changed it meanwhile: read again, send again;
//! - Route 53 publishes `AWS/Route53 HealthCheckStatus` (1 healthy, 0 not) in us-east-1 only,
//!   where the check's alarm lives (Route 53 Developer Guide, "Monitoring health checks using
//!   CloudWatch").
//!
//! What moto does not copy: it never runs the checks (no status changes) and does not refuse
//! a changed `Type` on update; the tests assert the requests.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_route53::types::{HealthCheckConfig, HealthCheckRegion, HealthCheckType, Tag, TagResourceType};
use serde_json::{Value, json};
use sha2::Digest;
use tokio::sync::OnceCell;

use super::{Aws, error_code, sdk_error};
use crate::plan::FieldChange;
use crate::providers::{Ctx, Desired, Lane, Observed, Outputs, Provider, ProviderError, Result, all_tags, ownership_from_tags};
use crate::resource::{Address, Kind};
use crate::spec::LoadedSpec;
use crate::spec::model::UptimeSpec;

/// Route 53's control plane takes about five requests a second.
const LANE: Lane = Lane { service: "route53", limit: 4 };

pub struct HealthCheckProvider {
    aws: Arc<Aws>,
    listed: OnceCell<Vec<Listed>>,
}

impl HealthCheckProvider {
    pub fn new(aws: Arc<Aws>) -> Self {
        HealthCheckProvider { aws, listed: OnceCell::new() }
    }
}

#[derive(Debug, Clone)]
struct Listed {
    id: String,
    version: i64,
    attrs: Value,
    tags: BTreeMap<String, String>,
}

pub fn desired(loaded: &LoadedSpec, u: &UptimeSpec, address: Address) -> Desired {
    let url = u.parsed_url();
    let https = url.as_ref().is_some_and(|x| x.https);
    let kind = match (https, u.search.is_some()) {
        (true, false) => "HTTPS",
        (true, true) => "HTTPS_STR_MATCH",
        (false, false) => "HTTP",
        (false, true) => "HTTP_STR_MATCH",
    };
    let mut regions = u.regions.clone();
    regions.sort();
    let attrs = json!({
        "type": kind,
        "domain": url.as_ref().map(|x| x.host.clone()).unwrap_or_default(),
        "port": url.as_ref().map_or(443, |x| x.port),
        "path": url.as_ref().map(|x| x.path.clone()).unwrap_or_default(),
        "interval": u.interval.as_ref().map_or(30, |d| d.seconds),
        "failure_threshold": u.failure_threshold.unwrap_or(3),
        "search": u.search,
        "regions": regions,
        // SNI, so that an HTTPS endpoint behind a shared IP (CloudFront, a load balancer)
        // serves the right certificate (HealthCheckConfig.EnableSNI).
        "sni": https,
        "tags": all_tags(loaded, &BTreeMap::new(), &address),
    });
    Desired::new(address, attrs)
}

fn config_attrs(c: &HealthCheckConfig) -> Value {
    let mut regions: Vec<String> = c.regions().iter().map(|r| r.as_str().to_string()).collect();
    regions.sort();
    json!({
        "type": c.r#type().as_str(),
        "domain": c.fully_qualified_domain_name().unwrap_or_default(),
        "port": c.port().unwrap_or(0),
        "path": c.resource_path().unwrap_or_default(),
        "interval": c.request_interval().unwrap_or(30),
        "failure_threshold": c.failure_threshold().unwrap_or(3),
        "search": c.search_string(),
        "regions": regions,
        "sni": c.enable_sni().unwrap_or(false),
    })
}

impl HealthCheckProvider {
    /// Every health check of the account with its tags, read once per run.
    async fn listed(&self) -> Result<&Vec<Listed>> {
        self.listed.get_or_try_init(|| self.list_now()).await
    }

    async fn list_now(&self) -> Result<Vec<Listed>> {
        let r53 = &self.aws.route53;
        let mut checks = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let page = r53.list_health_checks().set_marker(marker.clone()).send().await.map_err(|e| sdk_error("ListHealthChecks", e))?;
            checks.extend(page.health_checks().iter().cloned());
            match page.next_marker() {
                Some(m) if page.is_truncated() && !m.is_empty() => marker = Some(m.to_string()),
                _ => break,
            }
        }
        let mut tags: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for chunk in checks.chunks(10) {
            let ids: Vec<String> = chunk.iter().map(|c| c.id().to_string()).collect();
            let out = r53
                .list_tags_for_resources()
                .resource_type(TagResourceType::Healthcheck)
                .set_resource_ids(Some(ids))
                .send()
                .await
                .map_err(|e| sdk_error("ListTagsForResources", e))?;
            for set in out.resource_tag_sets() {
                let map = set
                    .tags()
                    .iter()
                    .map(|t| (t.key().unwrap_or_default().to_string(), t.value().unwrap_or_default().to_string()))
                    .collect();
                tags.insert(set.resource_id().unwrap_or_default().to_string(), map);
            }
        }
        Ok(checks
            .iter()
            .map(|c| {
                let mut attrs = c.health_check_config().map(config_attrs).unwrap_or(json!({}));
                let t = tags.get(c.id()).cloned().unwrap_or_default();
                attrs["tags"] = json!(t);
                Listed { id: c.id().to_string(), version: c.health_check_version(), attrs, tags: t }
            })
            .collect())
    }

    fn observed(env: &str, address: &Address, l: &Listed) -> Observed {
        Observed {
            id: l.id.clone(),
            attrs: l.attrs.clone(),
            outputs: Outputs::from([
                ("id".to_string(), l.id.clone()),
                ("name".to_string(), address.name.clone()),
                ("description".to_string(), format!("health check {} of {}", l.id, l.attrs["domain"].as_str().unwrap_or_default())),
            ]),
            ownership: ownership_from_tags(&l.tags, env, address),
            handle: json!({"version": l.version}),
        }
    }

    async fn set_tags(&self, id: &str, want: &Value, have: &BTreeMap<String, String>) -> Result<()> {
        let want = crate::providers::string_map(want);
        let add: Vec<Tag> =
            want.iter().filter(|(k, v)| have.get(*k) != Some(v)).map(|(k, v)| Tag::builder().key(k).value(v).build()).collect();
        let remove: Vec<String> = have.keys().filter(|k| !want.contains_key(*k)).cloned().collect();
        if add.is_empty() && remove.is_empty() {
            return Ok(());
        }
        self.aws
            .route53
            .change_tags_for_resource()
            .resource_type(TagResourceType::Healthcheck)
            .resource_id(id)
            .set_add_tags((!add.is_empty()).then_some(add))
            .set_remove_tag_keys((!remove.is_empty()).then_some(remove))
            .send()
            .await
            .map_err(|e| sdk_error("ChangeTagsForResource", e))?;
        Ok(())
    }
}

fn regions_of(a: &Value) -> Option<Vec<HealthCheckRegion>> {
    let regions: Vec<HealthCheckRegion> =
        a["regions"].as_array().into_iter().flatten().filter_map(|r| r.as_str()).map(HealthCheckRegion::from).collect();
    (!regions.is_empty()).then_some(regions)
}

#[async_trait]
impl Provider for HealthCheckProvider {
    fn kind(&self) -> Kind {
        Kind::HealthCheck
    }

    fn lane(&self) -> Lane {
        LANE
    }

    fn replace_paths(&self) -> &'static [&'static str] {
        &["type", "interval"]
    }

    fn closed_maps(&self) -> &'static [&'static str] {
        &["tags"]
    }

    async fn observe(&self, ctx: &Ctx<'_>, d: &Desired) -> Result<Option<Observed>> {
        let id = d.address.to_string();
        let found = self.listed().await?.iter().find(|l| {
            crate::providers::ownership_tag(&l.tags, "id") == Some(id.as_str())
                && crate::providers::ownership_tag(&l.tags, "env") == Some(ctx.env)
        });
        Ok(found.map(|l| Self::observed(ctx.env, &d.address, l)))
    }

    async fn discover(&self, ctx: &Ctx<'_>) -> Result<Vec<(Address, Observed)>> {
        let declared: Vec<&str> = ctx.loaded.spec.monitoring.iter().flat_map(|m| m.uptime.iter()).map(|u| u.name.as_str()).collect();
        Ok(self
            .listed()
            .await?
            .iter()
            .filter(|l| crate::providers::managed_in_env(&l.tags, ctx.env))
            .filter_map(|l| {
                let name = crate::providers::ownership_tag(&l.tags, "id")?.strip_prefix("monitoring.uptime.")?.to_string();
                (!declared.contains(&name.as_str())).then(|| {
                    let address = Address::new(Kind::HealthCheck, name);
                    let o = Self::observed(ctx.env, &address, l);
                    (address, o)
                })
            })
            .collect())
    }

    async fn create(&self, ctx: &Ctx<'_>, d: &Desired) -> Result<Outputs> {
        let a = &d.attrs;
        let config = HealthCheckConfig::builder()
            .r#type(HealthCheckType::from(a["type"].as_str().unwrap_or("HTTPS")))
            .fully_qualified_domain_name(a["domain"].as_str().unwrap_or_default())
            .port(a["port"].as_i64().unwrap_or(443) as i32)
            .resource_path(a["path"].as_str().unwrap_or("/"))
            .request_interval(a["interval"].as_i64().unwrap_or(30) as i32)
            .failure_threshold(a["failure_threshold"].as_i64().unwrap_or(3) as i32)
            .set_search_string(a["search"].as_str().map(String::from))
            .set_regions(regions_of(a))
            .enable_sni(a["sni"].as_bool().unwrap_or(true))
            .build()
            .map_err(|e| ProviderError::Api(format!("cannot build the health check: {e}")))?;
        // The same reference for the same settings: a create sent again after a lost answer
        // gets the same health check back.
        let digest = sha2::Sha256::digest(format!("{}|{}|{a}", ctx.env, d.address).as_bytes());
        let reference: String = format!("poactl-{}", digest.iter().take(12).map(|b| format!("{b:02x}")).collect::<String>());
        let out = self
            .aws
            .route53
            .create_health_check()
            .caller_reference(&reference)
            .health_check_config(config)
            .send()
            .await
            .map_err(|e| sdk_error(&format!("CreateHealthCheck {}", d.address), e))?;
        let id = out.health_check().map(|h| h.id().to_string()).unwrap_or_default();
        self.set_tags(&id, &a["tags"], &BTreeMap::new()).await?;
        Ok(Outputs::from([("id".to_string(), id), ("name".to_string(), d.address.name.clone())]))
    }

    async fn update(&self, _ctx: &Ctx<'_>, d: &Desired, o: &Observed, changes: &[FieldChange]) -> Result<Outputs> {
        let a = &d.attrs;
        if changes.iter().any(|c| !c.path.starts_with("tags")) {
            let mut version = o.handle["version"].as_i64().unwrap_or(1);
            for attempt in 0..3 {
                let sent = self
                    .aws
                    .route53
                    .update_health_check()
                    .health_check_id(&o.id)
                    .health_check_version(version)
                    .fully_qualified_domain_name(a["domain"].as_str().unwrap_or_default())
                    .port(a["port"].as_i64().unwrap_or(443) as i32)
                    .resource_path(a["path"].as_str().unwrap_or("/"))
                    .failure_threshold(a["failure_threshold"].as_i64().unwrap_or(3) as i32)
                    .set_search_string(a["search"].as_str().map(String::from))
                    .set_regions(regions_of(a))
                    .enable_sni(a["sni"].as_bool().unwrap_or(true))
                    .send()
                    .await;
                match sent {
                    Ok(_) => break,
                    Err(e) if error_code(&e).as_deref() == Some("HealthCheckVersionMismatch") && attempt < 2 => {
                        let got = self
                            .aws
                            .route53
                            .get_health_check()
                            .health_check_id(&o.id)
                            .send()
                            .await
                            .map_err(|e| sdk_error("GetHealthCheck", e))?;
                        version = got.health_check().map(|h| h.health_check_version()).unwrap_or(version);
                    }
                    Err(e) => return Err(sdk_error(&format!("UpdateHealthCheck {}", o.id), e)),
                }
            }
        }
        self.set_tags(&o.id, &a["tags"], &crate::providers::string_map(&o.attrs["tags"])).await?;
        Ok(o.outputs.clone())
    }

    async fn delete(&self, _ctx: &Ctx<'_>, _address: &Address, o: &Observed) -> Result<()> {
        match self.aws.route53.delete_health_check().health_check_id(&o.id).send().await {
            Ok(_) => Ok(()),
            Err(e) if error_code(&e).as_deref() == Some("NoSuchHealthCheck") => Ok(()),
            Err(e) => Err(sdk_error(&format!("DeleteHealthCheck {}", o.id), e)),
        }
    }
}
