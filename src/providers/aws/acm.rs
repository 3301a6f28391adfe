//! ACM certificates for a distribution's own domain: requested in us-east-1 (the only region
//! CloudFront takes certificates from) with DNS validation, their validation CNAMEs written in
//! the spec's hosted zone (or printed for a person to create), and waited on until ISSUED
//! before the distribution is given them.
//!
//! What the real service does that poactl relies on, from the ACM API reference and
//! terraform-provider-aws (`internal/service/acm/certificate.go`):
//! - RequestCertificate takes an idempotency token: "if you call RequestCertificate multiple
//!   times with the same idempotency token within one hour, ACM recognizes that you are
//!   requesting only one certificate" (32 word characters at most). poactl makes one per
//!   create, so the SDK's own retries of a lost answer cannot make two certificates, while a
//!   later create (after a delete) is a new request;
//! - the validation records appear in DescribeCertificate a few seconds after the request:
//!   terraform waits for `DomainValidationOptions[].ResourceRecord` before it reads them;
//! - ACM puts the first name in the subject and every name, the first too, in the SANs;
//! - DescribeCertificate names the key algorithm with hyphens (`RSA-2048`) where the request
//!   uses underscores (terraform normalizes it the same way);
//! - a certificate in use by CloudFront cannot be deleted (ResourceInUseException) until the
//!   distribution lets it go, which propagates after the distribution changes: terraform
//!   retries the delete; so does poactl, within the run's timeout;
//! - VALIDATION_TIMED_OUT (72 hours without the records), FAILED, REVOKED and EXPIRED
//!   certificates never become usable again: terraform reads a timed-out one as gone. poactl
//!   requests a new one and lists the dead one for `--prune`;
//! - ACM renews an issued certificate from 60 days before it expires, by itself, as long as
//!   its validation CNAMEs stay in DNS ("Managed renewal", ACM User Guide). A renewal that has
//!   not succeeded by 30 days before expiry needs a person.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_acm::types::{CertificateDetail, CertificateStatus, KeyAlgorithm, Tag, ValidationMethod};
use aws_sdk_route53::types::{ChangeAction, RrType};
use serde_json::{Value, json};
use tokio::sync::OnceCell;

use super::{Aws, error_code, sdk_error};
use crate::plan::FieldChange;
use crate::providers::{Ctx, Desired, Lane, Look, Observed, Outputs, Provider, ProviderError, Result, all_tags, ownership_from_tags};
use crate::resource::{Address, Kind};
use crate::spec::model::{CdnSpec, DistributionSpec};
use crate::spec::{Item, LoadedSpec};

/// ACM allows 10 RequestCertificate and DescribeCertificate calls a second per account.
const LANE: Lane = Lane { service: "acm", limit: 4 };

/// The key poactl requests: what CloudFront accepts from ACM everywhere ("Requirements for
/// using SSL/TLS certificates with CloudFront": RSA 2048 or ECDSA P-256, RSA for the widest
/// viewer support).
const KEY_ALGORITHM: &str = "RSA_2048";

/// How close to expiry a certificate ACM has not renewed becomes a problem (ACM starts 60
/// days before; by 30 days, something is in its way).
const RENEWAL_GRACE_DAYS: i64 = 30;

/// The statuses after which a certificate can never be issued or used again.
const DEAD: &[&str] = &["VALIDATION_TIMED_OUT", "FAILED", "REVOKED", "EXPIRED", "INACTIVE"];

/// The certificate of a distribution whose spec names its `domain` and no `certificate_arn`.
pub fn desired(loaded: &LoadedSpec, cdn: &CdnSpec, d: &DistributionSpec, address: Address) -> Desired {
    let domain = d.domain.clone().unwrap_or_default();
    let mut alternative: Vec<String> = d.aliases.iter().filter(|a| **a != domain).cloned().collect();
    alternative.sort();
    alternative.dedup();
    let zone = d.zone(cdn);
    let attrs = json!({
        "domain": domain,
        "alternative_names": alternative,
        "validation": "DNS",
        "key_algorithm": KEY_ALGORITHM,
        // An apply waits for a certificate still pending validation.
        "status": "ISSUED",
        "zone": zone,
        "validation_records": zone.map(|_| "present"),
        "tags": all_tags(loaded, &d.tags, &address),
    });
    let mut desired = Desired::new(address, attrs);
    if zone.is_none() {
        desired.notes.push(
            "no hosted_zone: poactl prints the DNS validation records for you to create at your DNS provider, and waits (up to --timeout) for ACM to issue the certificate".to_string(),
        );
    }
    desired
}

/// A validation record ACM asks for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ValidationRecord {
    pub name: String,
    pub kind: String,
    pub value: String,
}

impl std::fmt::Display for ValidationRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} {}", self.name, self.kind, self.value)
    }
}

/// The records of every name, once each (a name and its wildcard share one).
fn validation_records(cert: &CertificateDetail) -> Vec<ValidationRecord> {
    let mut out: Vec<ValidationRecord> = cert
        .domain_validation_options()
        .iter()
        .filter_map(|o| o.resource_record())
        .map(|r| ValidationRecord {
            name: super::route53::normalize_name(r.name()),
            kind: r.r#type().as_str().to_string(),
            value: r.value().trim_end_matches('.').to_ascii_lowercase(),
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Whether ACM has given a record for every name yet.
/// How long a certificate just requested may stay unknown to DescribeCertificate
/// (terraform-provider-aws, acm/certificate.go: certificateDNSValidationAssignmentTimeout).
const NEW_CERTIFICATE_VISIBLE: Duration = Duration::from_secs(300);

/// Why a certificate will never be issued, with ACM's reason, when its status says so: FAILED
/// (a reserved or disallowed name, a CAA record: `FailureReason`, ACM API reference
/// "CertificateDetail"), VALIDATION_TIMED_OUT (72 hours without the records) or REVOKED. No
/// wait outlasts these.
fn dead(cert: &CertificateDetail) -> Option<String> {
    let status = cert.status().map(|s| s.as_str()).unwrap_or("");
    if !matches!(status, "FAILED" | "VALIDATION_TIMED_OUT" | "REVOKED") {
        return None;
    }
    let reason = cert.failure_reason().map(|r| r.as_str().to_string());
    let hint = match reason.as_deref() {
        Some("DOMAIN_NOT_ALLOWED") => {
            ": ACM does not issue certificates for this name (reserved names such as example.com or .example are refused): use a domain you own"
        }
        Some("CAA_ERROR") => ": a CAA record of the domain does not allow Amazon to issue for it: add `0 issue \"amazon.com\"`",
        Some("NO_AVAILABLE_CONTACTS") | Some("ADDITIONAL_VERIFICATION_REQUIRED") => ": see the certificate in the ACM console",
        _ if status == "VALIDATION_TIMED_OUT" => {
            ": the validation records were not in DNS within 72 hours; apply again to request a new certificate"
        }
        _ => "",
    };
    Some(format!("{status}{}{hint}", reason.map(|r| format!(" ({r})")).unwrap_or_default()))
}

fn records_ready(cert: &CertificateDetail) -> bool {
    let options = cert.domain_validation_options();
    !options.is_empty()
        && options.iter().all(|o| o.resource_record().is_some() || o.validation_status().is_some_and(|s| s.as_str() == "SUCCESS"))
}

/// What is wrong with an issued certificate that no apply can mend, if anything: a renewal
/// that failed, or an expiry close at hand without a renewal that succeeded.
pub fn certificate_problem(status: &str, not_after: Option<i64>, renewal: Option<&str>, now: i64) -> Option<String> {
    if status != "ISSUED" {
        return None;
    }
    if renewal == Some("FAILED") {
        return Some(
            "ACM failed to renew it: check that its validation CNAMEs are still in DNS (`poactl apply` puts them back in a hosted zone it manages)".to_string(),
        );
    }
    let not_after = not_after?;
    let days = (not_after - now).div_euclid(86_400);
    if days < 0 {
        return Some("it has expired".to_string());
    }
    if days <= RENEWAL_GRACE_DAYS && renewal != Some("SUCCESS") {
        let state = renewal.map(|r| format!(" (renewal: {r})")).unwrap_or_default();
        return Some(format!(
            "it expires in {days} days and ACM has not renewed it{state}: ACM renews only while the validation CNAMEs resolve"
        ));
    }
    None
}

impl Aws {
    /// What the distribution provider needs to know of a certificate it serves: its names,
    /// status, expiry and renewal (`{"missing": true}` when ACM has no such certificate; null
    /// when it cannot be read, an ARN of another account or a refused permission).
    pub(crate) async fn certificate_facts(&self, arn: &str) -> Result<Value> {
        match self.acm.describe_certificate().certificate_arn(arn).send().await {
            Ok(out) => Ok(out.certificate().map_or(Value::Null, |c| {
                let mut names: Vec<&str> = c.subject_alternative_names().iter().map(String::as_str).collect();
                names.extend(c.domain_name());
                names.sort();
                names.dedup();
                json!({
                    "names": names,
                    "status": c.status().map(|s| s.as_str()),
                    "not_after": c.not_after().map(|t| t.secs()),
                    "renewal": c.renewal_summary().map(|r| r.renewal_status().as_str()),
                })
            })),
            Err(e) if error_code(&e).as_deref() == Some("ResourceNotFoundException") => Ok(json!({"missing": true})),
            Err(_) => Ok(Value::Null),
        }
    }
}

/// One certificate of the environment, as listed.
#[derive(Debug, Clone)]
struct Listed {
    arn: String,
    tags: BTreeMap<String, String>,
    detail: CertificateDetail,
}

/// A certificate of the account as ListCertificates names it, before any tag is read.
#[derive(Debug, Clone)]
struct Summary {
    arn: String,
    domain: String,
}

/// One certificate's tags and details, read at most once per run whoever asks first (an
/// observe, or discovery).
type Reading = Arc<OnceCell<Option<Listed>>>;

pub struct CertificateProvider {
    aws: Arc<Aws>,
    /// Every certificate of the account in us-east-1, listed once per run.
    summaries: OnceCell<Vec<Summary>>,
    /// Certificates whose tags were read, by ARN: `None` for one of another environment or
    /// owner, or deleted since the list.
    read: std::sync::Mutex<BTreeMap<String, Reading>>,
    /// Certificates not to request, and why: a name another distribution holds.
    refused: std::sync::Mutex<BTreeMap<Address, String>>,
    /// Tag reads in flight, across observes and discovery: ACM allows 10 requests a second
    /// to each of these per account (ACM quotas, "API rate quotas"), and an account can hold
    /// thousands of certificates; an unbounded burst is throttled and retried for nothing.
    reading: tokio::sync::Semaphore,
}

impl CertificateProvider {
    pub fn new(aws: Arc<Aws>) -> Self {
        CertificateProvider {
            aws,
            summaries: OnceCell::new(),
            read: Default::default(),
            refused: Default::default(),
            reading: tokio::sync::Semaphore::new(LANE.limit),
        }
    }

    /// Every certificate in us-east-1, by name. ListCertificates returns only RSA_1024 and
    /// RSA_2048 certificates unless `Includes.keyTypes` widens it (ACM API reference,
    /// Filters): poactl requests RSA_2048 only (`KEY_ALGORITHM`), so the default list holds
    /// every certificate it can have made.
    async fn summaries(&self) -> Result<&Vec<Summary>> {
        self.summaries
            .get_or_try_init(|| async {
                let mut out = Vec::new();
                let mut token: Option<String> = None;
                loop {
                    let page = self
                        .aws
                        .acm
                        .list_certificates()
                        .set_next_token(token.clone())
                        .max_items(1000)
                        .send()
                        .await
                        .map_err(|e| sdk_error("ListCertificates", e))?;
                    out.extend(page.certificate_summary_list().iter().filter_map(|c| {
                        Some(Summary { arn: c.certificate_arn()?.to_string(), domain: c.domain_name().unwrap_or_default().to_string() })
                    }));
                    match page.next_token() {
                        Some(t) if !t.is_empty() && Some(t) != token.as_deref() => token = Some(t.to_string()),
                        _ => break,
                    }
                }
                Ok(out)
            })
            .await
    }

    /// The environment's certificates among `arns`: their tags read (once per run each, a
    /// bounded number at a time), and those carrying this environment's marks described.
    async fn listed_among(&self, env: &str, arns: Vec<String>) -> Result<Vec<Listed>> {
        let reads = arns.into_iter().map(|arn| async move {
            let cell = self.read.lock().unwrap_or_else(|e| e.into_inner()).entry(arn.clone()).or_default().clone();
            cell.get_or_try_init(|| self.read_one(env, arn)).await.cloned()
        });
        use futures::{StreamExt, TryStreamExt};
        let read: Vec<Option<Listed>> = futures::stream::iter(reads).buffer_unordered(LANE.limit).try_collect().await?;
        Ok(read.into_iter().flatten().collect())
    }

    async fn read_one(&self, env: &str, arn: String) -> Result<Option<Listed>> {
        let _turn = self.reading.acquire().await.map_err(|_| ProviderError::Api("certificate reads ended".to_string()))?;
        let tags = match self.aws.acm.list_tags_for_certificate().certificate_arn(&arn).send().await {
            Ok(t) => t.tags().iter().map(|t| (t.key().to_string(), t.value().unwrap_or("").to_string())).collect(),
            // Deleted between the list and this read.
            Err(e) if error_code(&e).as_deref() == Some("ResourceNotFoundException") => return Ok(None),
            Err(e) => return Err(sdk_error(&format!("ListTagsForCertificate {arn}"), e)),
        };
        if !crate::providers::managed_in_env(&tags, env) {
            return Ok(None);
        }
        Ok(self.describe(&arn).await?.map(|detail| Listed { arn, tags, detail }))
    }

    /// The environment's certificates for `domain`, the only ones an observe can pick: a plan
    /// reads the tags of the certificates with its own names, not of the whole account.
    async fn listed_for(&self, env: &str, domain: &str) -> Result<Vec<Listed>> {
        let arns = self.summaries().await?.iter().filter(|s| s.domain == domain).map(|s| s.arn.clone()).collect();
        self.listed_among(env, arns).await
    }

    /// Every certificate of the environment: each certificate's tags read, which only
    /// `--prune` and `destroy` need ([`Provider::discover_on_demand`]).
    async fn listed_all(&self, env: &str) -> Result<Vec<Listed>> {
        let arns = self.summaries().await?.iter().map(|s| s.arn.clone()).collect();
        self.listed_among(env, arns).await
    }

    /// Whether a distribution of this account other than this certificate's own holds one of
    /// its names as an alias (CloudFront never lets two share one: CNAMEAlreadyExists,
    /// CloudFront API reference, CreateDistribution), and which. Only the distributions that
    /// hold a name have their tags read. Another account's distribution cannot be seen here;
    /// its CNAMEAlreadyExists comes at apply, with the way to move the alias.
    async fn names_held_elsewhere(&self, env: &str, d: &Desired) -> Result<Option<String>> {
        let names: Vec<String> = std::iter::once(d.attrs["domain"].as_str().unwrap_or_default().to_string())
            .chain(d.attrs["alternative_names"].as_array().into_iter().flatten().filter_map(|v| v.as_str().map(String::from)))
            .filter(|n| !n.is_empty())
            .collect();
        let own = format!("cdn.distributions.{}", d.address.name);
        let cf = &self.aws.cloudfront;
        for s in self.aws.distributions().await? {
            let held: Vec<&String> = s.aliases.iter().filter(|n| names.contains(n)).collect();
            if held.is_empty() {
                continue;
            }
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
            let ours = crate::providers::managed_in_env(&tags, env) && crate::providers::ownership_tag(&tags, "id") == Some(own.as_str());
            if !ours {
                let names = held.iter().map(|n| n.as_str()).collect::<Vec<_>>().join(", ");
                let first = held[0];
                return Ok(Some(format!(
                    "{names} {} already an alias of distribution {} ({}), and CloudFront never lets two distributions share one (CNAMEAlreadyExists): no certificate is requested. Remove it from that distribution first, or move it: a TXT record `_{first}` with this distribution's domain, then `aws cloudfront associate-alias` (CloudFront Developer Guide, \"Moving an alternate domain name to a different distribution\")",
                    if held.len() == 1 { "is" } else { "are" },
                    s.id,
                    match crate::providers::ownership_tag(&tags, "env") {
                        Some(other) => format!("poactl's, environment \"{other}\""),
                        None => "not poactl's".to_string(),
                    }
                )));
            }
        }
        Ok(None)
    }

    async fn describe(&self, arn: &str) -> Result<Option<CertificateDetail>> {
        match self.aws.acm.describe_certificate().certificate_arn(arn).send().await {
            Ok(out) => Ok(out.certificate().cloned()),
            Err(e) if error_code(&e).as_deref() == Some("ResourceNotFoundException") => Ok(None),
            Err(e) => Err(sdk_error(&format!("DescribeCertificate {arn}"), e)),
        }
    }

    /// The live certificate in the shape of the desired attributes. `zone`: the spec's hosted
    /// zone, whose validation records are checked.
    async fn read(&self, env: &str, address: &Address, l: &Listed, zone: Option<&str>) -> Result<Observed> {
        let c = &l.detail;
        let domain = c.domain_name().unwrap_or_default().to_string();
        let mut alternative: Vec<String> = c.subject_alternative_names().iter().filter(|n| **n != domain).cloned().collect();
        alternative.sort();
        let validation = c
            .domain_validation_options()
            .first()
            .and_then(|o| o.validation_method())
            .map(|m| m.as_str().to_string())
            .unwrap_or_else(|| "NONE".to_string());
        let records = validation_records(c);
        let validation_records = match zone {
            Some(zone) => json!(self.missing_records(zone, &records).await?.map_or("present".to_string(), |m| format!("missing: {m}"))),
            None => Value::Null,
        };
        let status = c.status().map(|s| s.as_str().to_string()).unwrap_or_default();
        let not_after = c.not_after().map(|t| t.secs());
        let attrs = json!({
            "domain": domain,
            "alternative_names": alternative,
            "validation": validation,
            "key_algorithm": c.key_algorithm().map(|k| k.as_str().replace('-', "_")).unwrap_or_default(),
            "status": status,
            "zone": zone,
            "validation_records": validation_records,
            "tags": l.tags,
        });
        let not_after_text = rfc3339(c.not_after());
        Ok(Observed {
            id: l.arn.clone(),
            attrs,
            outputs: Outputs::from([
                ("arn".to_string(), l.arn.clone()),
                ("status".to_string(), status.clone()),
                ("domain".to_string(), domain.clone()),
                ("not_after".to_string(), not_after_text),
                ("description".to_string(), format!("certificate for {domain} ({status})")),
            ]),
            ownership: ownership_from_tags(&l.tags, env, address),
            handle: json!({
                "status": status,
                "not_after": not_after,
                "renewal": c.renewal_summary().map(|r| r.renewal_status().as_str().to_string()),
                "records": records.iter().map(|r| json!({"name": r.name, "type": r.kind, "value": r.value})).collect::<Vec<_>>(),
                "in_use_by": c.in_use_by(),
            }),
        })
    }

    /// The validation records the zone lacks (or holds with another value), if any.
    async fn missing_records(&self, zone: &str, records: &[ValidationRecord]) -> Result<Option<String>> {
        let zone = self.aws.zone(zone).await?;
        let mut missing = Vec::new();
        for r in records {
            let sets = self.aws.record_sets(&zone.id, &r.name).await?;
            let present = sets.iter().any(|s| {
                s.r#type().as_str() == r.kind
                    && s.resource_records().iter().any(|v| v.value().trim_end_matches('.').eq_ignore_ascii_case(&r.value))
            });
            if !present {
                missing.push(r.name.clone());
            }
        }
        Ok((!missing.is_empty()).then(|| missing.join(", ")))
    }

    /// Writes the validation records in the zone (UPSERT: ACM gives the same record to every
    /// certificate of the account for a name, so one already there is the same record).
    async fn write_records(&self, ctx: &Ctx<'_>, zone: &str, records: &[ValidationRecord], what: &str) -> Result<()> {
        let zone = self.aws.zone(zone).await?;
        let changes = records
            .iter()
            .map(|r| super::route53::plain_record(&r.name, RrType::from(r.kind.as_str()), &[format!("{}.", r.value)]))
            .map(|set| super::route53::change(ChangeAction::Upsert, set?))
            .collect::<Result<Vec<_>>>()?;
        self.aws.change_records(ctx, &zone, changes, &format!("{what} (validation records)")).await
    }

    /// After a request (or on a certificate still pending): the validation records written or
    /// printed, then the wait for ISSUED.
    async fn settle(&self, ctx: &Ctx<'_>, d: &Desired, arn: &str) -> Result<Outputs> {
        let what = d.address.to_string();
        let requested = std::time::Instant::now();
        let cert = crate::providers::wait_for(ctx, &what, "waiting for ACM's validation records", Duration::from_secs(2), || async {
            match self.describe(arn).await? {
                Some(c) => match dead(&c) {
                    Some(why) => Err(ProviderError::Refused(format!("{what}: ACM did not issue certificate {arn}: {why}"))),
                    None if records_ready(&c) => Ok(Look::Ready(c)),
                    None => Ok(Look::NotYet("PENDING_VALIDATION, no validation records yet".to_string())),
                },
                // A certificate just requested can be unknown to DescribeCertificate for a
                // while: terraform-provider-aws (acm/certificate.go,
                // statusCertificateDomainValidationsAvailable) reads not-found as "not yet"
                // for up to certificateDNSValidationAssignmentTimeout, 5 minutes.
                None if requested.elapsed() < NEW_CERTIFICATE_VISIBLE => {
                    Ok(Look::NotYet("just requested, not readable yet (ACM shows a new certificate after a few seconds)".to_string()))
                }
                None => Err(ProviderError::Api(format!(
                    "{what}: certificate {arn} was still not readable {} s after it was requested",
                    NEW_CERTIFICATE_VISIBLE.as_secs()
                ))),
            }
        })
        .await?;
        let records = validation_records(&cert);
        let zone = d.attrs["zone"].as_str();
        let pending = cert.status() == Some(&CertificateStatus::PendingValidation);
        match zone {
            Some(zone) => self.write_records(ctx, zone, &records, &what).await?,
            None if pending => {
                ctx.progress
                    .notice(format!("{what}: create these DNS records at your DNS provider so that ACM can issue the certificate:"));
                for r in &records {
                    ctx.progress.notice(format!("    {} {} {}.", r.name, r.kind, r.value));
                }
            }
            None => {}
        }
        let shown: Vec<String> = records.iter().map(|r| r.to_string()).collect();
        let cert = crate::providers::wait_for(ctx, &what, "waiting for ACM to issue the certificate", Duration::from_secs(15), || async {
            let c = self.describe(arn).await?.ok_or_else(|| ProviderError::Api(format!("{what}: certificate {arn} is gone")))?;
            let status = c.status().map(|s| s.as_str().to_string()).unwrap_or_default();
            match status.as_str() {
                "ISSUED" => Ok(Look::Ready(c)),
                "PENDING_VALIDATION" => Ok(Look::NotYet(format!("PENDING_VALIDATION until DNS has {}", shown.join("; ")))),
                _ => Err(ProviderError::Refused(format!(
                    "{what}: ACM did not issue certificate {arn}: {}",
                    dead(&c).unwrap_or_else(|| status.clone())
                ))),
            }
        })
        .await?;
        Ok(Outputs::from([
            ("arn".to_string(), arn.to_string()),
            ("status".to_string(), "ISSUED".to_string()),
            ("domain".to_string(), cert.domain_name().unwrap_or_default().to_string()),
            ("not_after".to_string(), rfc3339(cert.not_after())),
        ]))
    }

    /// This address's live certificate: among the environment's that carry its marks and can
    /// still be used, the one for the spec's names, else the newest.
    fn pick<'l>(&self, listed: &'l [Listed], d: &Desired, env: &str) -> Option<&'l Listed> {
        let id = d.address.to_string();
        let mut mine: Vec<&Listed> = listed
            .iter()
            .filter(|l| {
                crate::providers::ownership_tag(&l.tags, "id") == Some(id.as_str()) && crate::providers::managed_in_env(&l.tags, env)
            })
            .filter(|l| !DEAD.contains(&l.detail.status().map(|s| s.as_str()).unwrap_or("")))
            .collect();
        mine.sort_by_key(|l| {
            let same_names = l.detail.domain_name() == d.attrs["domain"].as_str() && {
                let mut sans: Vec<&str> = l.detail.subject_alternative_names().iter().map(String::as_str).collect();
                sans.retain(|n| Some(*n) != d.attrs["domain"].as_str());
                sans.sort();
                let want: Vec<&str> = d.attrs["alternative_names"].as_array().into_iter().flatten().filter_map(|v| v.as_str()).collect();
                sans == want
            };
            (!same_names, std::cmp::Reverse(l.detail.created_at().map(|t| t.secs()).unwrap_or(0)))
        });
        mine.first().copied()
    }

    async fn set_tags(&self, arn: &str, want: &Value, have: &BTreeMap<String, String>) -> Result<()> {
        let want = crate::providers::string_map(want);
        let remove: Vec<Tag> =
            have.iter().filter(|(k, _)| !want.contains_key(*k)).filter_map(|(k, v)| Tag::builder().key(k).value(v).build().ok()).collect();
        if !remove.is_empty() {
            self.aws
                .acm
                .remove_tags_from_certificate()
                .certificate_arn(arn)
                .set_tags(Some(remove))
                .send()
                .await
                .map_err(|e| sdk_error("RemoveTagsFromCertificate", e))?;
        }
        let add: Vec<Tag> = want
            .iter()
            .filter(|(k, v)| have.get(*k) != Some(*v))
            .filter_map(|(k, v)| Tag::builder().key(k).value(v).build().ok())
            .collect();
        if !add.is_empty() {
            self.aws
                .acm
                .add_tags_to_certificate()
                .certificate_arn(arn)
                .set_tags(Some(add))
                .send()
                .await
                .map_err(|e| sdk_error("AddTagsToCertificate", e))?;
        }
        Ok(())
    }
}

/// A certificate time in RFC 3339, the form outputs and templates use.
fn rfc3339(t: Option<&aws_sdk_acm::primitives::DateTime>) -> String {
    t.and_then(|t| t.fmt(aws_sdk_acm::primitives::DateTimeFormat::DateTime).ok()).unwrap_or_default()
}

/// [`certificate_problem`] now, from facts kept as JSON (`status`, `not_after`, `renewal`):
/// the certificate provider's handle and the distribution's view of its certificate alike.
pub fn problem_now(facts: &Value) -> Option<String> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    certificate_problem(facts["status"].as_str().unwrap_or(""), facts["not_after"].as_i64(), facts["renewal"].as_str(), now)
}

/// A token for one RequestCertificate: the SDK's retries of it resend it, so a lost answer
/// does not make a second certificate. 32 word characters at most (ACM API reference).
fn idempotency_token(address: &Address) -> String {
    use sha2::Digest;
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let digest = sha2::Sha256::digest(format!("{address}/{nanos}/{}", fastrand::u64(..)).as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("poactl{}", &hex[..26])
}

#[async_trait]
impl Provider for CertificateProvider {
    fn kind(&self) -> Kind {
        Kind::Certificate
    }

    fn lane(&self) -> Lane {
        LANE
    }

    fn delete_last(&self) -> bool {
        true
    }

    fn replace_paths(&self) -> &'static [&'static str] {
        &["domain", "alternative_names", "validation", "key_algorithm"]
    }

    async fn observe(&self, ctx: &Ctx<'_>, d: &Desired) -> Result<Option<Observed>> {
        let listed = self.listed_for(ctx.env, d.attrs["domain"].as_str().unwrap_or_default()).await?;
        match self.pick(&listed, d, ctx.env) {
            Some(l) => Ok(Some(self.read(ctx.env, &d.address, l, d.attrs["zone"].as_str()).await?)),
            None => {
                // Before a certificate is requested: a name another distribution holds would
                // fail the distribution afterwards (CNAMEAlreadyExists), with the certificate
                // issued for nothing.
                if let Some(why) = self.names_held_elsewhere(ctx.env, d).await? {
                    self.refused.lock().unwrap_or_else(|e| e.into_inner()).insert(d.address.clone(), why);
                }
                Ok(None)
            }
        }
    }

    /// Telling the environment's certificates from the account's others takes one tag read
    /// per certificate of the account.
    fn discover_on_demand(&self) -> bool {
        true
    }

    fn create_blocked(&self, d: &Desired) -> Option<String> {
        self.refused.lock().unwrap_or_else(|e| e.into_inner()).get(&d.address).cloned()
    }

    /// The environment's certificates no declared address uses: those of a distribution taken
    /// out of the spec, one left behind by a change of names, and dead ones. Each goes with
    /// `--prune`.
    async fn discover(&self, ctx: &Ctx<'_>) -> Result<Vec<(Address, Observed)>> {
        let listed = self.listed_all(ctx.env).await?;
        // The spec's certificates, made as `desired` makes them (not the whole desired set).
        let declared: Vec<Desired> = crate::spec::declared(&ctx.loaded.spec)
            .into_iter()
            .filter_map(|d| match d.item {
                Item::Certificate(cdn, dist) => Some(desired(ctx.loaded, cdn, dist, d.address)),
                _ => None,
            })
            .collect();
        let in_use: Vec<&str> = declared.iter().filter_map(|d| self.pick(&listed, d, ctx.env)).map(|l| l.arn.as_str()).collect();
        let mut out = Vec::new();
        for l in listed.iter().filter(|l| !in_use.contains(&l.arn.as_str())) {
            let name = crate::providers::ownership_tag(&l.tags, "id")
                .and_then(|i| i.strip_prefix("cdn.certificates."))
                .unwrap_or(&l.arn)
                .to_string();
            let status = l.detail.status().map(|s| s.as_str()).unwrap_or("");
            let short = l.arn.rsplit('/').next().unwrap_or(&l.arn);
            let name =
                if declared.iter().any(|d| d.address.name == name) { format!("{name} (superseded {short}, {status})") } else { name };
            let address = Address::new(Kind::Certificate, name);
            let mut o = self.read(ctx.env, &address, l, None).await?;
            // The marks name the declared address; as listed here it is this environment's.
            o.ownership = crate::providers::Ownership::Owned;
            out.push((address, o));
        }
        Ok(out)
    }

    async fn create(&self, ctx: &Ctx<'_>, d: &Desired) -> Result<Outputs> {
        let domain = d.attrs["domain"].as_str().unwrap_or_default();
        let alternative: Vec<String> =
            d.attrs["alternative_names"].as_array().into_iter().flatten().filter_map(|v| v.as_str().map(String::from)).collect();
        let tags: Vec<Tag> = crate::providers::string_map(&d.attrs["tags"])
            .iter()
            .filter_map(|(k, v)| Tag::builder().key(k).value(v).build().ok())
            .collect();
        let out = self
            .aws
            .acm
            .request_certificate()
            .domain_name(domain)
            .set_subject_alternative_names((!alternative.is_empty()).then_some(alternative))
            .validation_method(ValidationMethod::Dns)
            .key_algorithm(KeyAlgorithm::from(KEY_ALGORITHM))
            .idempotency_token(idempotency_token(&d.address))
            .set_tags(Some(tags))
            .send()
            .await
            .map_err(|e| match error_code(&e).as_deref() {
                Some(
                    "LimitExceededException"
                    | "InvalidDomainValidationOptionsException"
                    | "InvalidParameterException"
                    | "ValidationException",
                ) => ProviderError::Refused(format!("RequestCertificate {}: {}", d.address, aws_sdk_acm::error::DisplayErrorContext(&e))),
                _ => sdk_error(&format!("RequestCertificate {}", d.address), e),
            })?;
        let arn = out.certificate_arn().ok_or_else(|| ProviderError::Api("RequestCertificate: no ARN in the answer".into()))?.to_string();
        self.settle(ctx, d, &arn).await
    }

    async fn update(&self, ctx: &Ctx<'_>, d: &Desired, o: &Observed, changes: &[FieldChange]) -> Result<Outputs> {
        if changes.iter().any(|c| c.path.starts_with("tags")) {
            self.set_tags(&o.id, &d.attrs["tags"], &crate::providers::string_map(&o.attrs["tags"])).await?;
        }
        if changes.iter().any(|c| !c.path.starts_with("tags")) {
            return self.settle(ctx, d, &o.id).await;
        }
        Ok(o.outputs.clone())
    }

    /// The new certificate first: the old one is in use by the distribution until it moves to
    /// the new one, later in this apply. The old one is then an unused certificate of the
    /// environment, deleted by `--prune`.
    async fn replace(&self, ctx: &Ctx<'_>, d: &Desired, o: &Observed) -> Result<Outputs> {
        let outputs = self.create(ctx, d).await?;
        ctx.progress.notice(format!(
            "{}: certificate {} was replaced; it stays until `poactl apply --prune` deletes it (CloudFront lets it go only after the distribution moves)",
            d.address, o.id
        ));
        Ok(outputs)
    }

    /// Deletes the certificate, waiting out CloudFront letting it go. The validation CNAMEs
    /// stay: ACM gives the same record to every certificate of the account for a name, so
    /// another certificate may still need them.
    async fn delete(&self, ctx: &Ctx<'_>, address: &Address, o: &Observed) -> Result<()> {
        let arn = o.id.clone();
        crate::providers::wait_for(ctx, &address.to_string(), "deleting the certificate", Duration::from_secs(10), || async {
            match self.aws.acm.delete_certificate().certificate_arn(&arn).send().await {
                Ok(_) => Ok(Look::Ready(())),
                Err(e) if error_code(&e).as_deref() == Some("ResourceNotFoundException") => Ok(Look::Ready(())),
                Err(e) if error_code(&e).as_deref() == Some("ResourceInUseException") => {
                    Ok(Look::NotYet("still in use by CloudFront (the distribution's change propagates)".to_string()))
                }
                Err(e) => Err(sdk_error(&format!("DeleteCertificate {arn}"), e)),
            }
        })
        .await
    }

    fn notes(&self, _d: &Desired, o: &Observed, _ctx: &Ctx<'_>) -> Vec<String> {
        if o.handle["status"] != "PENDING_VALIDATION" {
            return Vec::new();
        }
        let records: Vec<String> = o.handle["records"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| {
                format!("{} {} {}.", r["name"].as_str().unwrap_or(""), r["type"].as_str().unwrap_or(""), r["value"].as_str().unwrap_or(""))
            })
            .collect();
        vec![format!("ACM waits for these DNS records before it issues the certificate: {}", records.join("; "))]
    }

    fn unhealthy(&self, _d: &Desired, o: &Observed) -> Option<String> {
        problem_now(&o.handle)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_problems() {
        let day = 86_400;
        let now = 1_800_000_000;
        type Case<'a> = (&'a str, Option<i64>, Option<&'a str>, bool, &'a str);
        let table: &[Case] = &[
            ("ISSUED", Some(now + 300 * day), None, false, "a year to go"),
            ("ISSUED", Some(now + 45 * day), Some("PENDING_AUTO_RENEWAL"), false, "renewal under way, time left"),
            ("ISSUED", Some(now + 20 * day), Some("PENDING_VALIDATION"), true, "renewal stuck near expiry"),
            ("ISSUED", Some(now + 20 * day), None, true, "no renewal near expiry"),
            ("ISSUED", Some(now + 20 * day), Some("SUCCESS"), false, "renewed"),
            ("ISSUED", Some(now + 200 * day), Some("FAILED"), true, "renewal failed"),
            ("ISSUED", Some(now - day), None, true, "expired"),
            ("ISSUED", None, None, false, "no date"),
            ("PENDING_VALIDATION", Some(now + 5 * day), None, false, "pending is a change the apply waits for, not a problem"),
        ];
        for (status, not_after, renewal, bad, why) in table {
            assert_eq!(certificate_problem(status, *not_after, *renewal, now).is_some(), *bad, "{why}");
        }
    }

    #[test]
    fn tokens_fit_acm_and_differ_per_request() {
        let a = Address::new(Kind::Certificate, "assets");
        let (t1, t2) = (idempotency_token(&a), idempotency_token(&a));
        assert!(t1.len() <= 32 && t1.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "{t1}");
        assert_ne!(t1, t2);
    }
}
