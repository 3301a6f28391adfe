//! Route 53: the hosted zones the spec names, the alias records that point a distribution's
//! names at it, the certificate validation CNAMEs (written by the certificate provider), and
//! the TXT records that say which records are poactl's.
//!
//! Route 53 records carry no tags. poactl marks the ones it owns the way external-dns does
//! (its TXT registry, kubernetes-sigs/external-dns `docs/registry/txt.md`): beside each record
//! name it writes a TXT record holding the ownership marks, `_poactl.NAME` ("_poactl-wildcard"
//! in place of a `*` label, which must stay leftmost). A record without one was made by
//! someone else: it is never changed, unless the run adopts it.
//!
//! What the real service does that poactl relies on, from the Route 53 API reference and
//! terraform-provider-aws (`internal/service/route53/record.go`):
//! - ChangeResourceRecordSets is transactional: a batch is applied whole or not at all, so a
//!   CNAME made by hand is replaced by the alias records in one step;
//! - a change is `PENDING` until every name server has it, then `INSYNC` (GetChange); poactl
//!   waits for INSYNC as terraform does;
//! - DELETE must name the record exactly as it is, so it is sent from what was read;
//! - names come back fully qualified (a trailing dot) and with `*` as the octal escape `\052`
//!   ("DNS domain name format", Route 53 Developer Guide);
//! - an alias to CloudFront names the hosted zone id `Z2FDTNDATAQYW2` ("Values for alias
//!   records", AliasTarget HostedZoneId) and cannot live in a private zone.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_route53::types::{AliasTarget, Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType};
use serde_json::{Value, json};
use tokio::sync::OnceCell;

use super::{Aws, error_code, sdk_error};
use crate::plan::FieldChange;
use crate::providers::{Ctx, Desired, Lane, Look, Observed, Outputs, Provider, ProviderError, Result, ownership_from_tags, ownership_tags};
use crate::resource::{Address, Kind};
use crate::spec::LoadedSpec;
use crate::spec::model::DistributionSpec;

/// The hosted zone id of every CloudFront distribution, for alias targets.
pub const CLOUDFRONT_ZONE_ID: &str = "Z2FDTNDATAQYW2";

/// Route 53 allows five control-plane requests a second per account.
const LANE: Lane = Lane { service: "route53", limit: 4 };

/// The TTL of the records poactl writes that are not aliases (validation CNAMEs, owner TXT).
const RECORD_TTL: i64 = 300;

/// A public hosted zone.
#[derive(Clone, Debug)]
pub struct Zone {
    /// Without the `/hostedzone/` prefix.
    pub id: String,
    /// Without the trailing dot.
    pub name: String,
}

/// The zones of one run, each looked up once, by the name or id the spec gives.
#[derive(Default)]
pub struct Zones {
    cells: std::sync::Mutex<HashMap<String, Arc<OnceCell<Zone>>>>,
}

/// A record name as Route 53 answers it, in the form the spec writes it: lowercase, no
/// trailing dot, octal escapes (`\052`) decoded.
pub fn normalize_name(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.trim_end_matches('.').chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            let digits: String = chars.clone().take(3).collect();
            if digits.len() == 3
                && let Ok(code) = u8::from_str_radix(&digits, 8)
            {
                out.push(code as char);
                for _ in 0..3 {
                    chars.next();
                }
                continue;
            }
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// The TXT record that marks `name` as poactl's.
pub fn owner_name(name: &str) -> String {
    match name.strip_prefix("*.") {
        Some(rest) => format!("_poactl-wildcard.{rest}"),
        None => format!("_poactl.{name}"),
    }
}

/// The longest character-string a TXT record holds (RFC 1035 3.3.14, a length octet; Route 53
/// Developer Guide, "TXT record type": "each string can be up to 255 characters"). A longer
/// value is several quoted strings in one record, which readers join.
const TXT_STRING_MAX: usize = 255;

/// The owner TXT value: the ownership marks as `key=value` pairs, as quoted strings of at
/// most 255 characters each (a long name's `poactl-id` would not fit one).
fn owner_value(tags: &BTreeMap<String, String>) -> String {
    let pairs: Vec<String> = tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let text = pairs.join(",");
    let chars: Vec<char> = text.chars().collect();
    chars.chunks(TXT_STRING_MAX).map(|c| format!("\"{}\"", c.iter().collect::<String>())).collect::<Vec<_>>().join(" ")
}

/// The text of a TXT value: its quoted strings joined, as resolvers hand them to readers.
fn txt_text(value: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    let mut escaped = false;
    for c in value.chars() {
        match (inside, escaped, c) {
            (true, false, '\\') => escaped = true,
            (true, false, '"') => inside = false,
            (true, _, c) => {
                out.push(c);
                escaped = false;
            }
            (false, _, '"') => inside = true,
            (false, _, _) => {}
        }
    }
    if out.is_empty() && !value.contains('"') { value.to_string() } else { out }
}

/// The marks an owner TXT value holds.
fn parse_owner(value: &str) -> BTreeMap<String, String> {
    txt_text(value)
        .split(',')
        .filter_map(|pair| pair.split_once('='))
        .filter(|(k, _)| crate::resource::is_ownership_key(k))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

impl Aws {
    /// The public hosted zone the spec names (by name or id), looked up once per run.
    pub async fn zone(&self, spec: &str) -> Result<Zone> {
        let cell = self.zones.cells.lock().unwrap_or_else(|e| e.into_inner()).entry(spec.to_string()).or_default().clone();
        cell.get_or_try_init(|| self.find_zone(spec)).await.cloned()
    }

    async fn find_zone(&self, spec: &str) -> Result<Zone> {
        let r53 = &self.route53;
        let private = |z: &aws_sdk_route53::types::HostedZone| z.config().is_some_and(|c| c.private_zone());
        if crate::spec::names::is_zone_id(spec) {
            let id = spec.trim_start_matches("/hostedzone/");
            let out = match r53.get_hosted_zone().id(id).send().await {
                Ok(out) => out,
                Err(e) if error_code(&e).as_deref() == Some("NoSuchHostedZone") => {
                    return Err(ProviderError::Config(format!(
                        "hosted zone {id} does not exist in this AWS account; fix `hosted_zone` in the spec"
                    )));
                }
                Err(e) => return Err(sdk_error(&format!("GetHostedZone {id}"), e)),
            };
            let zone = out.hosted_zone().ok_or_else(|| ProviderError::Api(format!("GetHostedZone {id}: empty answer")))?;
            if private(zone) {
                return Err(ProviderError::Config(format!(
                    "hosted zone {id} is private; CloudFront names and certificate validation need a public zone"
                )));
            }
            return Ok(Zone { id: id.to_string(), name: normalize_name(zone.name()) });
        }
        // ListHostedZonesByName starts at the name and goes on in order: only exact matches
        // are this zone (a name may have several zones, public and private).
        let want = normalize_name(spec);
        let out = r53
            .list_hosted_zones_by_name()
            .dns_name(format!("{want}."))
            .max_items(20)
            .send()
            .await
            .map_err(|e| sdk_error(&format!("ListHostedZonesByName {want}"), e))?;
        let public: Vec<Zone> = out
            .hosted_zones()
            .iter()
            .filter(|z| normalize_name(z.name()) == want && !private(z))
            .map(|z| Zone { id: z.id().trim_start_matches("/hostedzone/").to_string(), name: want.clone() })
            .collect();
        match public.as_slice() {
            [zone] => Ok(zone.clone()),
            [] => Err(ProviderError::Config(format!(
                "no public hosted zone `{want}` in this AWS account; create it (aws route53 create-hosted-zone --name {want} --caller-reference ...) and delegate the domain to it, or fix `hosted_zone`"
            ))),
            many => Err(ProviderError::Config(format!(
                "{} public hosted zones are named `{want}` ({}); name the one to use by its id in `hosted_zone`",
                many.len(),
                many.iter().map(|z| z.id.as_str()).collect::<Vec<_>>().join(", ")
            ))),
        }
    }

    /// The record sets named exactly `name` in the zone. Weighted, latency, geo and other
    /// routed records share a name and type, so a page can end among them: the next page
    /// starts at `NextRecordIdentifier` too (Route 53 API reference, ListResourceRecordSets:
    /// "If results were truncated for a given DNS name and type, the value of SetIdentifier
    /// for the next resource record set").
    pub async fn record_sets(&self, zone_id: &str, name: &str) -> Result<Vec<ResourceRecordSet>> {
        let mut out = Vec::new();
        let mut start = Start { name: format!("{name}."), kind: None, identifier: None };
        loop {
            let page = self
                .route53
                .list_resource_record_sets()
                .hosted_zone_id(zone_id)
                .start_record_name(&start.name)
                .set_start_record_type(start.kind.clone())
                .set_start_record_identifier(start.identifier.clone())
                .max_items(20)
                .send()
                .await
                .map_err(|e| sdk_error(&format!("ListResourceRecordSets {name}"), e))?;
            let mut past = false;
            for set in page.resource_record_sets() {
                if normalize_name(set.name()) == name {
                    out.push(set.clone());
                } else {
                    past = true;
                }
            }
            // Records come in name order: once past the name, or at the end, stop.
            match (page.is_truncated(), page.next_record_name(), past) {
                (true, Some(next), false) if normalize_name(next) == name => start = start.next(&page, name)?,
                _ => return Ok(out),
            }
        }
    }

    /// Sends one change batch and waits until Route 53 has it on every name server.
    pub async fn change_records(&self, ctx: &Ctx<'_>, zone: &Zone, changes: Vec<Change>, what: &str) -> Result<()> {
        if changes.is_empty() {
            return Ok(());
        }
        let batch = ChangeBatch::builder()
            .set_changes(Some(changes))
            .comment(format!("poactl {}", ctx.env))
            .build()
            .map_err(|e| ProviderError::Api(format!("ChangeResourceRecordSets: {e}")))?;
        let out = self
            .route53
            .change_resource_record_sets()
            .hosted_zone_id(&zone.id)
            .change_batch(batch)
            .send()
            .await
            .map_err(|e| refused_or(e, &format!("ChangeResourceRecordSets {what} in {}", zone.name)))?;
        let change_id = out.change_info().map(|c| c.id().to_string()).unwrap_or_default();
        if !ctx.options.wait || change_id.is_empty() {
            return Ok(());
        }
        crate::providers::wait_for(ctx, what, "waiting for Route 53 to sync the change", Duration::from_secs(5), || async {
            let got = self.route53.get_change().id(&change_id).send().await.map_err(|e| sdk_error(&format!("GetChange {change_id}"), e))?;
            let status = got.change_info().map(|c| c.status().as_str().to_string()).unwrap_or_default();
            Ok(if status == "INSYNC" { Look::Ready(()) } else { Look::NotYet(status) })
        })
        .await
    }
}

/// A refused change batch (InvalidChangeBatch: a record in the way, a name outside the zone)
/// is the user's to fix; the rest are API failures.
fn refused_or<E, R>(e: aws_sdk_route53::error::SdkError<E, R>, what: &str) -> ProviderError
where
    E: std::error::Error + aws_sdk_route53::error::ProvideErrorMetadata + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match error_code(&e).as_deref() {
        Some("InvalidChangeBatch" | "InvalidInput") => {
            let message = match &e {
                aws_sdk_route53::error::SdkError::ServiceError(s) => s.err().message().unwrap_or_default().to_string(),
                _ => String::new(),
            };
            ProviderError::Refused(format!("{what}: Route 53 refused the change: {message}"))
        }
        _ => sdk_error(what, e),
    }
}

/// A TXT, CNAME or other plain record set.
pub fn plain_record(name: &str, kind: RrType, values: &[String]) -> Result<ResourceRecordSet> {
    let records: Vec<ResourceRecord> = values.iter().filter_map(|v| ResourceRecord::builder().value(v).build().ok()).collect();
    ResourceRecordSet::builder()
        .name(name)
        .r#type(kind)
        .ttl(RECORD_TTL)
        .set_resource_records(Some(records))
        .build()
        .map_err(|e| ProviderError::Api(format!("record {name}: {e}")))
}

pub fn change(action: ChangeAction, set: ResourceRecordSet) -> Result<Change> {
    Change::builder().action(action).resource_record_set(set).build().map_err(|e| ProviderError::Api(format!("change: {e}")))
}

/// The alias records of one of a distribution's names, in its hosted zone.
pub fn desired(loaded: &LoadedSpec, d: &DistributionSpec, zone: &str, address: Address) -> Desired {
    let attrs = json!({
        "zone": zone,
        "alias": {"target": format!("${{cdn.distributions.{}.domain}}", d.name), "zone_id": CLOUDFRONT_ZONE_ID},
        "types": ["A", "AAAA"],
        // What the name held before poactl (a CNAME made by hand) goes, in the same batch that
        // writes the aliases.
        "cname": null,
        "tags": ownership_tags(&loaded.env, &address),
    });
    Desired::new(address, attrs)
}

/// What lives at a name: its alias/CNAME sets (`sets`, read at the name) and its owner record
/// (`owner`, read at the owner name), or `None` when neither is there.
fn observed(
    env: &str,
    address: &Address,
    zone_spec: &str,
    zone: &Zone,
    sets: &[ResourceRecordSet],
    owner: &[ResourceRecordSet],
) -> Option<Observed> {
    let name = address.name.as_str();
    let owner_set = owner.iter().find(|s| s.r#type() == &RrType::Txt);
    let relevant: Vec<&ResourceRecordSet> =
        sets.iter().filter(|s| matches!(s.r#type(), RrType::A | RrType::Aaaa | RrType::Cname)).collect();
    if relevant.is_empty() && owner_set.is_none() {
        return None;
    }
    let alias_of = |t: &RrType| {
        relevant
            .iter()
            .find(|s| s.r#type() == t)
            .and_then(|s| s.alias_target())
            .map(|a| json!({"target": normalize_name(a.dns_name()), "zone_id": a.hosted_zone_id()}))
    };
    let alias = alias_of(&RrType::A).or_else(|| alias_of(&RrType::Aaaa)).unwrap_or(Value::Null);
    let types: Vec<&str> = [(RrType::A, "A"), (RrType::Aaaa, "AAAA")]
        .iter()
        .filter(|(t, _)| alias_of(t).is_some_and(|a| a == alias))
        .map(|(_, n)| *n)
        .collect();
    let cname = relevant
        .iter()
        .find(|s| s.r#type() == &RrType::Cname)
        .and_then(|s| s.resource_records().first())
        .map(|r| json!(normalize_name(r.value())))
        .unwrap_or(Value::Null);
    let tags =
        owner_set.map(|s| s.resource_records().iter().flat_map(|r| parse_owner(r.value())).collect::<BTreeMap<_, _>>()).unwrap_or_default();
    let ownership = ownership_from_tags(&tags, env, address);
    let attrs = json!({"zone": zone_spec, "alias": alias, "types": types, "cname": cname, "tags": tags});
    // Every live set at the name and its owner record, as read: what a DELETE must repeat.
    let live: Vec<Value> = relevant.iter().map(|s| set_json(s)).chain(owner_set.map(set_json)).collect();
    Some(Observed {
        id: format!("{name} in {}", zone.name),
        attrs,
        outputs: Outputs::from([
            ("name".to_string(), name.to_string()),
            ("zone_id".to_string(), zone.id.clone()),
            ("description".to_string(), format!("records of {name} in hosted zone {} ({})", zone.name, zone.id)),
        ]),
        ownership,
        handle: json!({"zone_id": zone.id, "zone_name": zone.name, "live": live}),
    })
}

pub struct DnsRecordProvider(pub Arc<Aws>);

impl DnsRecordProvider {
    /// What the zone holds at `name` and at its owner record, in the shape of the desired
    /// attributes; `None` when neither exists.
    async fn read(&self, env: &str, address: &Address, zone_spec: &str, zone: &Zone) -> Result<Option<Observed>> {
        let name = address.name.as_str();
        let owner_name = owner_name(name);
        let (sets, owner) = tokio::try_join!(self.0.record_sets(&zone.id, name), self.0.record_sets(&zone.id, &owner_name))?;
        Ok(observed(env, address, zone_spec, zone, &sets, &owner))
    }

    /// Writes the alias records and the owner record of `name` (and drops a CNAME in their way),
    /// in one batch.
    async fn write(&self, ctx: &Ctx<'_>, d: &Desired, observed: Option<&Observed>) -> Result<Outputs> {
        let zone_spec = d.attrs["zone"].as_str().unwrap_or_default();
        let zone = self.0.zone(zone_spec).await?;
        let name = d.address.name.as_str();
        let target = d.attrs["alias"]["target"].as_str().unwrap_or_default();
        if target.contains("${") {
            return Err(ProviderError::Api(format!("{}: the distribution's domain is not known yet", d.address)));
        }
        let mut changes = Vec::new();
        for set in observed.map(|o| live_sets(&o.handle)).unwrap_or_default() {
            if set.r#type() == &RrType::Cname {
                changes.push(change(ChangeAction::Delete, set)?);
            }
        }
        for t in d.attrs["types"].as_array().into_iter().flatten().filter_map(|t| t.as_str()) {
            let alias = AliasTarget::builder()
                .hosted_zone_id(d.attrs["alias"]["zone_id"].as_str().unwrap_or(CLOUDFRONT_ZONE_ID))
                .dns_name(target)
                .evaluate_target_health(false)
                .build()
                .map_err(|e| ProviderError::Api(format!("alias {name}: {e}")))?;
            let set = ResourceRecordSet::builder()
                .name(name)
                .r#type(RrType::from(t))
                .alias_target(alias)
                .build()
                .map_err(|e| ProviderError::Api(format!("record {name}: {e}")))?;
            changes.push(change(ChangeAction::Upsert, set)?);
        }
        let tags = crate::providers::string_map(&d.attrs["tags"]);
        changes.push(change(ChangeAction::Upsert, plain_record(&owner_name(name), RrType::Txt, &[owner_value(&tags)])?)?);
        self.0.change_records(ctx, &zone, changes, &d.address.to_string()).await?;
        Ok(Outputs::from([("name".to_string(), name.to_string()), ("zone_id".to_string(), zone.id)]))
    }
}

/// A record set as JSON, to keep in a handle.
/// A live record set as the handle keeps it: everything a DELETE must repeat. Route 53
/// deletes a set only when the request names it whole, its routing fields included ("To
/// delete a resource record set, you must specify all the same values that you specified
/// when you created it", API reference, ChangeResourceRecordSets): the set identifier,
/// weight, region, failover, geolocation, multivalue answer, health check and CIDR routing.
fn set_json(s: &ResourceRecordSet) -> Value {
    json!({
        "name": s.name(),
        "type": s.r#type().as_str(),
        "ttl": s.ttl(),
        "values": s.resource_records().iter().map(|r| r.value()).collect::<Vec<_>>(),
        "alias": s.alias_target().map(|a| json!({"zone_id": a.hosted_zone_id(), "dns_name": a.dns_name(), "evaluate": a.evaluate_target_health()})),
        "set_identifier": s.set_identifier(),
        "weight": s.weight(),
        "region": s.region().map(|r| r.as_str()),
        "failover": s.failover().map(|f| f.as_str()),
        "multi_value_answer": s.multi_value_answer(),
        "health_check_id": s.health_check_id(),
        "geo": s.geo_location().map(|g| json!({"continent": g.continent_code(), "country": g.country_code(), "subdivision": g.subdivision_code()})),
        "cidr": s.cidr_routing_config().map(|c| json!({"collection": c.collection_id(), "location": c.location_name()})),
    })
}

/// The routing fields `set_json` kept, put back on a set being rebuilt for a DELETE.
fn with_routing(
    mut b: aws_sdk_route53::types::builders::ResourceRecordSetBuilder,
    s: &Value,
) -> aws_sdk_route53::types::builders::ResourceRecordSetBuilder {
    use aws_sdk_route53::types::{CidrRoutingConfig, GeoLocation, ResourceRecordSetFailover, ResourceRecordSetRegion};
    let text = |k: &str| s[k].as_str().map(String::from);
    b = b.set_set_identifier(text("set_identifier")).set_weight(s["weight"].as_i64()).set_health_check_id(text("health_check_id"));
    b = b.set_multi_value_answer(s["multi_value_answer"].as_bool());
    b = b.set_region(text("region").map(|r| ResourceRecordSetRegion::from(r.as_str())));
    b = b.set_failover(text("failover").map(|f| ResourceRecordSetFailover::from(f.as_str())));
    if let Some(g) = s["geo"].as_object() {
        let part = |k: &str| g.get(k).and_then(|v| v.as_str()).map(String::from);
        b = b.geo_location(
            GeoLocation::builder()
                .set_continent_code(part("continent"))
                .set_country_code(part("country"))
                .set_subdivision_code(part("subdivision"))
                .build(),
        );
    }
    if let Some(c) = s["cidr"].as_object()
        && let (Some(collection), Some(location)) =
            (c.get("collection").and_then(|v| v.as_str()), c.get("location").and_then(|v| v.as_str()))
        && let Ok(config) = CidrRoutingConfig::builder().collection_id(collection).location_name(location).build()
    {
        b = b.cidr_routing_config(config);
    }
    b
}

/// The record sets kept in a handle, as the API wants them back for a DELETE.
fn live_sets(handle: &Value) -> Vec<ResourceRecordSet> {
    handle["live"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| {
            let mut b = with_routing(ResourceRecordSet::builder().name(s["name"].as_str()?).r#type(RrType::from(s["type"].as_str()?)), s);
            if let Some(a) = s["alias"].as_object() {
                b = b.alias_target(
                    AliasTarget::builder()
                        .hosted_zone_id(a.get("zone_id")?.as_str()?)
                        .dns_name(a.get("dns_name")?.as_str()?)
                        .evaluate_target_health(a.get("evaluate")?.as_bool()?)
                        .build()
                        .ok()?,
                );
            } else {
                b = b.set_ttl(s["ttl"].as_i64()).set_resource_records(Some(
                    s["values"].as_array()?.iter().filter_map(|v| ResourceRecord::builder().value(v.as_str()?).build().ok()).collect(),
                ));
            }
            b.build().ok()
        })
        .collect()
}

#[async_trait]
impl Provider for DnsRecordProvider {
    fn kind(&self) -> Kind {
        Kind::DnsRecord
    }

    fn lane(&self) -> Lane {
        LANE
    }

    async fn observe(&self, ctx: &Ctx<'_>, d: &Desired) -> Result<Option<Observed>> {
        let zone_spec = d.attrs["zone"].as_str().unwrap_or_default();
        let zone = self.0.zone(zone_spec).await?;
        self.read(ctx.env, &d.address, zone_spec, &zone).await
    }

    /// The environment's owner records in the spec's zones: a name taken out of the spec is
    /// found through its owner record, and its records go with `--prune`.
    async fn discover(&self, ctx: &Ctx<'_>) -> Result<Vec<(Address, Observed)>> {
        let cdn = ctx.loaded.spec.cdn.as_ref();
        let mut zones: Vec<&str> = cdn.iter().flat_map(|c| c.distributions.iter().filter_map(|d| d.zone(c))).collect();
        zones.sort();
        zones.dedup();
        let mut out = Vec::new();
        for zone_spec in zones {
            let zone = self.0.zone(zone_spec).await?;
            // The whole zone is listed once to find the owner records; the same listing holds
            // every owned name's records, so no name is read again.
            let mut by_name: BTreeMap<String, Vec<ResourceRecordSet>> = BTreeMap::new();
            let mut start: Option<Start> = None;
            loop {
                let page = self
                    .0
                    .route53
                    .list_resource_record_sets()
                    .hosted_zone_id(&zone.id)
                    .set_start_record_name(start.as_ref().map(|s| s.name.clone()))
                    .set_start_record_type(start.as_ref().and_then(|s| s.kind.clone()))
                    .set_start_record_identifier(start.as_ref().and_then(|s| s.identifier.clone()))
                    .send()
                    .await
                    .map_err(|e| sdk_error(&format!("ListResourceRecordSets {}", zone.name), e))?;
                for set in page.resource_record_sets() {
                    by_name.entry(normalize_name(set.name())).or_default().push(set.clone());
                }
                match (page.is_truncated(), &start) {
                    (true, Some(s)) => start = Some(s.next(&page, &zone.name)?),
                    (true, None) => start = Some(Start::default().next(&page, &zone.name)?),
                    (false, _) => break,
                }
            }
            let mut owners = BTreeSet::new();
            for set in by_name.values().flatten().filter(|s| s.r#type() == &RrType::Txt) {
                let tags: BTreeMap<String, String> = set.resource_records().iter().flat_map(|r| parse_owner(r.value())).collect();
                if crate::providers::managed_in_env(&tags, ctx.env)
                    && let Some(name) = crate::providers::ownership_tag(&tags, "id").and_then(|i| i.strip_prefix("cdn.dns_records."))
                {
                    owners.insert(name.to_string());
                }
            }
            let none = Vec::new();
            for name in owners {
                let address = Address::new(Kind::DnsRecord, &name);
                let at = |n: &str| by_name.get(n).unwrap_or(&none);
                if let Some(o) = observed(ctx.env, &address, zone_spec, &zone, at(&name), at(&owner_name(&name))) {
                    out.push((address, o));
                }
            }
        }
        Ok(out)
    }

    async fn create(&self, ctx: &Ctx<'_>, d: &Desired) -> Result<Outputs> {
        self.write(ctx, d, None).await
    }

    async fn update(&self, ctx: &Ctx<'_>, d: &Desired, o: &Observed, _changes: &[FieldChange]) -> Result<Outputs> {
        self.write(ctx, d, Some(o)).await
    }

    /// Deletes exactly what was read at the name and its owner record.
    async fn delete(&self, ctx: &Ctx<'_>, address: &Address, o: &Observed) -> Result<()> {
        let zone = Zone {
            id: o.handle["zone_id"].as_str().unwrap_or_default().to_string(),
            name: o.handle["zone_name"].as_str().unwrap_or_default().to_string(),
        };
        let changes: Vec<Change> = live_sets(&o.handle).into_iter().map(|s| change(ChangeAction::Delete, s)).collect::<Result<_>>()?;
        match self.0.change_records(ctx, &zone, changes, &address.to_string()).await {
            // Someone changed or deleted them since the read: read again, once.
            Err(ProviderError::Refused(_)) => {
                let zone_spec = o.attrs["zone"].as_str().unwrap_or(&zone.id).to_string();
                match self.read(ctx.env, address, &zone_spec, &zone).await? {
                    Some(fresh) => {
                        let changes =
                            live_sets(&fresh.handle).into_iter().map(|s| change(ChangeAction::Delete, s)).collect::<Result<_>>()?;
                        self.0.change_records(ctx, &zone, changes, &address.to_string()).await
                    }
                    None => Ok(()),
                }
            }
            other => other,
        }
    }
}

/// Where the next page of ListResourceRecordSets starts.
#[derive(Debug, Clone, Default, PartialEq)]
struct Start {
    name: String,
    kind: Option<RrType>,
    identifier: Option<String>,
}

impl Start {
    /// The start of the page after `page`. A truncated page whose next start is this one's
    /// would be asked for again without end (a service, or an emulator, that ignores
    /// StartRecordIdentifier): that is an error, not a loop.
    fn next(
        &self,
        page: &aws_sdk_route53::operation::list_resource_record_sets::ListResourceRecordSetsOutput,
        what: &str,
    ) -> Result<Start> {
        let next = Start {
            name: page.next_record_name().unwrap_or_default().to_string(),
            kind: page.next_record_type().cloned(),
            identifier: page.next_record_identifier().map(String::from),
        };
        if next.name.is_empty() || next == *self {
            return Err(ProviderError::Api(format!(
                "ListResourceRecordSets {what}: the page after ({} {:?} {:?}) starts where it did; Route 53 did not move on",
                self.name, self.kind, self.identifier
            )));
        }
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_back_as_the_spec_writes_them() {
        let table = [
            ("cdn.poafix.example.", "cdn.poafix.example"),
            ("\\052.poafix.example.", "*.poafix.example"),
            ("CDN.Poafix.Example", "cdn.poafix.example"),
            ("_abc.cdn.poafix.example.", "_abc.cdn.poafix.example"),
            ("odd\\\\name.example.", "odd\\\\name.example"),
        ];
        for (live, want) in table {
            assert_eq!(normalize_name(live), want, "{live}");
        }
    }

    #[test]
    fn owner_records_sit_beside_the_name_and_round_trip_the_marks() {
        assert_eq!(owner_name("cdn.poafix.example"), "_poactl.cdn.poafix.example");
        assert_eq!(owner_name("*.poafix.example"), "_poactl-wildcard.poafix.example");
        assert_eq!(owner_name("poafix.example"), "_poactl.poafix.example");
        let marks = ownership_tags("prod", &Address::new(Kind::DnsRecord, "cdn.poafix.example"));
        let value = owner_value(&marks);
        assert!(value.starts_with('"') && value.ends_with('"') && value.len() <= 255, "{value}");
        assert_eq!(parse_owner(&value), marks);
        assert!(parse_owner("\"v=spf1 -all\"").is_empty());
        // A name near DNS's 253 characters: its id does not fit one TXT string.
        let long = format!("{}.poafix.example", ["a".repeat(63), "b".repeat(63), "c".repeat(63)].join("."));
        let marks = ownership_tags("prod", &Address::new(Kind::DnsRecord, &long));
        let value = owner_value(&marks);
        let strings: Vec<&str> = value.split("\" \"").collect();
        assert!(strings.len() > 1 && strings.iter().all(|s| s.trim_matches('"').chars().count() <= TXT_STRING_MAX), "{value}");
        assert_eq!(parse_owner(&value), marks, "the strings are joined back");
    }
}
