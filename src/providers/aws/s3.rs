//! S3 buckets: region, versioning, default encryption, public access block, object
//! ownership, lifecycle, CORS, tags; and the bucket policy that lets this environment's
//! CloudFront distributions read a bucket through Origin Access Control.
//!
//! A 404 means "not configured", as on real S3: a bucket without a public access block is not
//! blocked, and one without ownership controls takes ACLs (ObjectWriter). Buckets made since
//! April 2023 have both, so a 404 says someone deleted them (or the bucket is older): drift
//! against `public_access: blocked`. poactl writes both when it creates a bucket. Encryption is
//! different: SSE-S3 cannot be switched off, so a missing configuration reads as AES256.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_s3::types::{
    AbortIncompleteMultipartUpload, BucketLifecycleConfiguration, BucketLocationConstraint, BucketVersioningStatus, CorsConfiguration,
    CorsRule, CreateBucketConfiguration, ExpirationStatus, LifecycleExpiration, LifecycleRule, LifecycleRuleFilter,
    NoncurrentVersionExpiration, ObjectOwnership, OwnershipControls, OwnershipControlsRule, PublicAccessBlockConfiguration,
    ServerSideEncryption, ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration, ServerSideEncryptionRule, Tag, Tagging,
    Transition, TransitionStorageClass, VersioningConfiguration,
};
use serde_json::{Value, json};

use super::{Aws, error_code, sdk_error};
use crate::plan::FieldChange;
use crate::providers::{Ctx, Desired, Lane, Observed, Outputs, Ownership, Provider, ProviderError, Result, all_tags, ownership_from_tags};
use crate::resource::{Address, Kind};
use crate::spec::LoadedSpec;
use crate::spec::model::{BucketSpec, DistributionSpec};
use crate::spec::validate::lifecycle_rule_id;

/// S3 serves thousands of requests a second per prefix, and a bucket is read with seven requests at once.
const LANE: Lane = Lane { service: "s3", limit: 24 };

pub struct BucketProvider(pub Arc<Aws>);

/// How long S3 may take to show a new bucket everywhere, and how often to look again
/// (terraform-provider-aws retries each bucket settings call on NoSuchBucket for
/// `bucketPropagationTimeout`, 2 minutes, `internal/service/s3`). These are
/// bounded retries of a write S3 refused for now, not `providers::wait_for`: nothing is in
/// progress on the service to look at, there is no state to show on a spinner, and the write
/// itself is what must be sent again.
const PROPAGATION: std::time::Duration = std::time::Duration::from_secs(120);
const PROPAGATION_STEP: std::time::Duration = std::time::Duration::from_millis(500);

pub struct BucketPolicyProvider(pub Arc<Aws>);

pub fn bucket_region(loaded: &LoadedSpec, b: &BucketSpec) -> String {
    b.region.clone().unwrap_or_else(|| loaded.spec.aws_region())
}

fn days(d: &Option<crate::spec::model::Duration>) -> Value {
    d.as_ref().and_then(|d| d.whole_days()).map(|n| json!(n)).unwrap_or(Value::Null)
}

pub fn desired_bucket(loaded: &LoadedSpec, b: &BucketSpec, address: Address) -> Desired {
    let mut rules: Vec<Value> = b
        .lifecycle
        .iter()
        .map(|r| {
            json!({
                "id": lifecycle_rule_id(r),
                "status": if r.enabled { "Enabled" } else { "Disabled" },
                "prefix": r.prefix,
                "expire_days": days(&r.expire_after),
                "expire_delete_markers": r.expire_delete_markers,
                "transitions": r.transition_after.as_ref().map(|t| vec![json!({"days": t.whole_days(), "storage_class": r.storage_class})]).unwrap_or_default(),
                "noncurrent_transitions": [],
                "noncurrent_expire_days": days(&r.noncurrent_expire_after),
                "abort_multipart_days": days(&r.abort_incomplete_multipart_after),
            })
        })
        .collect();
    rules.sort_by_key(|r| r["id"].as_str().unwrap_or("").to_string());
    let cors: Vec<Value> = b
        .cors
        .iter()
        .map(|c| {
            let sorted = |v: &Vec<String>| {
                let mut v = v.clone();
                v.sort();
                v
            };
            json!({"allowed_origins": sorted(&c.allowed_origins), "allowed_methods": sorted(&c.allowed_methods), "allowed_headers": sorted(&c.allowed_headers), "expose_headers": sorted(&c.expose_headers), "max_age": c.max_age.as_ref().map(|d| d.seconds)})
        })
        .collect();
    let blocked = b.public_access == "blocked";
    let mut encryption = json!({"algorithm": b.encryption});
    if let Some(k) = &b.kms_key {
        encryption["kms_key"] = json!(k);
    }
    if b.encryption == "aws:kms" {
        // An S3 Bucket Key cuts KMS requests (and their cost) by up to 99% (S3 User Guide,
        // "Reducing the cost of SSE-KMS with Amazon S3 Bucket Keys").
        encryption["bucket_key"] = json!(true);
    }
    let attrs = json!({
        "region": bucket_region(loaded, b),
        "versioning": b.versioning,
        "encryption": encryption,
        "public_access_block": {"block_public_acls": blocked, "ignore_public_acls": blocked, "block_public_policy": blocked, "restrict_public_buckets": blocked},
        "object_ownership": b.object_ownership,
        "lifecycle": rules,
        "cors": cors,
        "tags": all_tags(loaded, &b.tags, &address),
    });
    Desired::new(address, attrs)
}

/// The statement that lets one distribution read the bucket's objects (OAC, SigV4).
fn oac_statement(bucket: &str, distribution: &str, distribution_arn: &str) -> Value {
    json!({
        "Sid": format!("poactl-cloudfront-{distribution}"),
        "Effect": "Allow",
        "Principal": {"Service": "cloudfront.amazonaws.com"},
        "Action": "s3:GetObject",
        "Resource": format!("arn:aws:s3:::{bucket}/*"),
        "Condition": {"StringEquals": {"AWS:SourceArn": distribution_arn}},
    })
}

/// The bucket policy for the distributions that use the bucket as origin (`spec::declared`
/// declares one only when a distribution reads it).
pub fn desired_policy(b: &BucketSpec, readers: &[&DistributionSpec], address: Address) -> Desired {
    let mut statements: Vec<Value> =
        readers.iter().map(|d| oac_statement(&b.name, &d.name, &format!("${{cdn.distributions.{}.arn}}", d.name))).collect();
    statements.sort_by_key(|s| s["Sid"].as_str().unwrap_or("").to_string());
    let mut d = Desired::new(address, json!({"statements": statements}));
    for dist in readers {
        d = d.depends(Address::new(Kind::Distribution, &dist.name));
    }
    d
}

/// Policy statements in a comparable form (AWS may reorder keys or wrap single values).
fn normalize_statements(policy: &Value) -> Value {
    let mut out: Vec<Value> = policy
        .get("Statement")
        .map(|s| if s.is_array() { s.as_array().cloned().unwrap_or_default() } else { vec![s.clone()] })
        .unwrap_or_default()
        .into_iter()
        .map(|mut st| {
            for k in ["Action", "Resource"] {
                if let Some(Value::Array(items)) = st.get(k)
                    && items.len() == 1
                {
                    st[k] = items[0].clone();
                }
            }
            st
        })
        .collect();
    out.sort_by_key(|s| s.get("Sid").and_then(|v| v.as_str()).unwrap_or("").to_string());
    Value::Array(out)
}

/// A settings call's error; NoSuchBucket and OperationAborted right after CreateBucket mean the
/// bucket is not visible everywhere yet (S3's propagation window), not that it is gone.
fn settings_error<E, R>(what: &str, e: aws_sdk_s3::error::SdkError<E, R>) -> ProviderError
where
    E: std::error::Error + aws_sdk_s3::error::ProvideErrorMetadata + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match (error_code(&e).as_deref(), sdk_error(what, e)) {
        (Some("NoSuchBucket" | "OperationAborted"), other) => ProviderError::Propagating(other.to_string()),
        (_, other) => other,
    }
}

/// Whether two ways of naming a KMS key name the same key: `Some(true)` when one is the other
/// (a key id and its ARN, an alias and its ARN), `Some(false)` when they surely differ, `None`
/// when an alias meets a key ARN (only KMS knows what the alias points at).
fn kms_same_key(want: &str, have: &str) -> Option<bool> {
    let tail = |k: &str| k.rsplit_once(':').map_or(k.to_string(), |(_, t)| t.to_string());
    let (w, h) = (tail(want), tail(have));
    let w = if w.starts_with("alias/") || w.starts_with("key/") { w } else { format!("key/{w}") };
    let h = if h.starts_with("alias/") || h.starts_with("key/") { h } else { format!("key/{h}") };
    if w == h {
        Some(true)
    } else if w.starts_with("alias/") != h.starts_with("alias/") {
        None
    } else {
        Some(false)
    }
}

/// Rules written before filters existed carry a top-level prefix.
#[allow(deprecated)]
fn legacy_prefix(r: &LifecycleRule) -> Option<&str> {
    r.prefix()
}

fn outputs(name: &str, region: &str) -> Outputs {
    Outputs::from([
        ("name".to_string(), name.to_string()),
        ("arn".to_string(), format!("arn:aws:s3:::{name}")),
        ("region".to_string(), region.to_string()),
        ("domain".to_string(), format!("{name}.s3.{region}.amazonaws.com")),
    ])
}

impl BucketProvider {
    /// The account's buckets with their regions (ListBuckets, paginated), read once per run and
    /// shared by every bucket's read and by discovery.
    async fn account_buckets(&self) -> Result<&Vec<(String, Option<String>)>> {
        self.0
            .buckets
            .get_or_try_init(|| async {
                let s3 = self.0.s3(&self.0.region).await;
                let mut found = Vec::new();
                let mut token: Option<String> = None;
                loop {
                    let page = s3
                        .list_buckets()
                        .max_buckets(1000)
                        .set_continuation_token(token.clone())
                        .send()
                        .await
                        .map_err(|e| sdk_error("ListBuckets", e))?;
                    found.extend(page.buckets().iter().filter_map(|b| Some((b.name()?.to_string(), b.bucket_region().map(String::from)))));
                    match page.continuation_token() {
                        Some(t) if !t.is_empty() && Some(t) != token.as_deref() => token = Some(t.to_string()),
                        _ => break,
                    }
                }
                Ok(found)
            })
            .await
    }

    /// Whether the bucket exists, and where (`None`: no such bucket).
    ///
    /// The account's bucket list answers for its own buckets with their region (`BucketRegion`),
    /// so the usual case costs no request of its own. A name not on the list (another account's,
    /// none at all, or one created a moment ago: the list is eventually consistent, S3 User
    /// Guide, "Amazon S3 data consistency model") and a list without regions or refused
    /// (no s3:ListAllMyBuckets) are asked with HeadBucket.
    async fn locate(&self, name: &str, region: &str) -> Result<Option<std::result::Result<String, String>>> {
        if let Ok(list) = self.account_buckets().await
            && let Some((_, Some(actual))) = list.iter().find(|(n, _)| n == name)
        {
            return Ok(Some(Ok(actual.clone())));
        }
        self.head(name, region).await
    }

    async fn head(&self, name: &str, region: &str) -> Result<Option<std::result::Result<String, String>>> {
        let s3 = self.0.s3(region).await;
        match s3.head_bucket().bucket(name).send().await {
            Ok(out) => Ok(Some(Ok(out.bucket_region().map(String::from).unwrap_or_else(|| region.to_string())))),
            Err(e) => {
                let status = e.raw_response().map(|r| r.status().as_u16());
                match status {
                    Some(404) => Ok(None),
                    Some(403) => {
                        // 403 means "exists, and you may not read it": another account's bucket, or
                        // one of this account that the identity lacks s3:ListBucket on. The
                        // account's own bucket list (the run's, already read) tells them apart.
                        let ours = self.account_buckets().await.is_ok_and(|l| l.iter().any(|(n, _)| n == name));
                        Ok(Some(Err(if ours {
                            "it is this account's bucket, but this identity may not read it (403 on HeadBucket): grant s3:ListBucket and the s3:Get* reads on it".to_string()
                        } else {
                            "it exists but belongs to another AWS account, or this identity may not see it (403 on HeadBucket); bucket names are global".to_string()
                        })))
                    }
                    Some(301) => {
                        let actual =
                            e.raw_response().and_then(|r| r.headers().get("x-amz-bucket-region")).map(String::from).unwrap_or_default();
                        Ok(Some(Ok(actual)))
                    }
                    _ => Err(sdk_error(&format!("HeadBucket {name}"), e)),
                }
            }
        }
    }

    /// A bucket's own tags (GetBucketTagging).
    async fn direct_tags(&self, name: &str, region: &str) -> Result<Option<BTreeMap<String, String>>> {
        let s3 = self.0.s3(region).await;
        match s3.get_bucket_tagging().bucket(name).send().await {
            Ok(t) => Ok(Some(t.tag_set().iter().map(|t| (t.key().to_string(), t.value().to_string())).collect())),
            Err(e) if matches!(error_code(&e).as_deref(), Some("NoSuchTagSet" | "NoSuchTagSetError")) => Ok(Some(BTreeMap::new())),
            Err(e) if error_code(&e).as_deref() == Some("NoSuchBucket") => Ok(None),
            Err(e) => Err(sdk_error(&format!("GetBucketTagging {name}"), e)),
        }
    }

    /// Reads every sub-setting of a bucket at once; `None` when S3 says the bucket is gone (a
    /// deletion the account's list did not show yet). `known_tags`: the bucket's tags from the
    /// tagging index, when they settle the comparison (awaited beside the other reads).
    async fn read(
        &self,
        name: &str,
        region: &str,
        known_tags: impl std::future::Future<Output = Option<BTreeMap<String, String>>>,
    ) -> Result<Option<(Value, BTreeMap<String, String>)>> {
        let s3 = self.0.s3(region).await;
        let tags = async {
            match known_tags.await {
                Some(t) => Ok(Some(t)),
                None => self.direct_tags(name, region).await,
            }
        };
        let (tags, versioning, encryption, pab, ownership, lifecycle, cors) = tokio::join!(
            tags,
            s3.get_bucket_versioning().bucket(name).send(),
            s3.get_bucket_encryption().bucket(name).send(),
            s3.get_public_access_block().bucket(name).send(),
            s3.get_bucket_ownership_controls().bucket(name).send(),
            s3.get_bucket_lifecycle_configuration().bucket(name).send(),
            s3.get_bucket_cors().bucket(name).send(),
        );
        let absent = |code: Option<String>, codes: &[&str]| code.as_deref().is_some_and(|c| codes.contains(&c));

        let Some(tags) = tags? else { return Ok(None) };
        let versioning = match versioning {
            Err(e) if absent(error_code(&e), &["NoSuchBucket"]) => return Ok(None),
            Ok(v) => v.status() == Some(&BucketVersioningStatus::Enabled),
            Err(e) => return Err(sdk_error(&format!("GetBucketVersioning {name}"), e)),
        };
        let encryption = match encryption {
            Ok(out) => {
                let first = out.server_side_encryption_configuration().and_then(|c| c.rules().first());
                let rule = first.and_then(|r| r.apply_server_side_encryption_by_default());
                let mut v =
                    json!({"algorithm": rule.map(|r| r.sse_algorithm().as_str().to_string()).unwrap_or_else(|| "AES256".to_string())});
                if let Some(k) = rule.and_then(|r| r.kms_master_key_id()) {
                    v["kms_key"] = json!(k);
                }
                v["bucket_key"] = json!(first.and_then(|r| r.bucket_key_enabled()).unwrap_or(false));
                v
            }
            Err(e) if absent(error_code(&e), &["ServerSideEncryptionConfigurationNotFoundError"]) => json!({"algorithm": "AES256"}),
            Err(e) => return Err(sdk_error(&format!("GetBucketEncryption {name}"), e)),
        };
        let pab = match pab {
            Ok(out) => {
                let c = out.public_access_block_configuration();
                let f = |v: Option<bool>| v.unwrap_or(false);
                json!({
                    "block_public_acls": f(c.and_then(|c| c.block_public_acls())),
                    "ignore_public_acls": f(c.and_then(|c| c.ignore_public_acls())),
                    "block_public_policy": f(c.and_then(|c| c.block_public_policy())),
                    "restrict_public_buckets": f(c.and_then(|c| c.restrict_public_buckets())),
                })
            }
            // Not configured: nothing is blocked (S3 API reference, GetPublicAccessBlock).
            Err(e) if absent(error_code(&e), &["NoSuchPublicAccessBlockConfiguration"]) => {
                json!({"block_public_acls": false, "ignore_public_acls": false, "block_public_policy": false, "restrict_public_buckets": false})
            }
            Err(e) => return Err(sdk_error(&format!("GetPublicAccessBlock {name}"), e)),
        };
        let ownership = match ownership {
            Ok(out) => out
                .ownership_controls()
                .and_then(|c| c.rules().first())
                .map(|r| r.object_ownership().as_str().to_string())
                .unwrap_or_else(|| "BucketOwnerEnforced".to_string()),
            // No ownership controls: ACLs apply, the object writer owns its objects (S3 User
            // Guide, "Controlling ownership of objects").
            Err(e) if absent(error_code(&e), &["OwnershipControlsNotFoundError"]) => "ObjectWriter".to_string(),
            Err(e) => return Err(sdk_error(&format!("GetBucketOwnershipControls {name}"), e)),
        };
        let mut rules: Vec<Value> = match lifecycle {
            Ok(out) => out
                .rules()
                .iter()
                .map(|r| {
                    let prefix = r.filter().and_then(|f| f.prefix()).or_else(|| legacy_prefix(r));
                    // Every action of the rule is read, so one added by hand shows as drift.
                    json!({
                        "id": r.id().unwrap_or(""),
                        "status": r.status().as_str(),
                        "prefix": prefix.unwrap_or(""),
                        "expire_days": r.expiration().and_then(|e| e.days()).map(|d| json!(d)).unwrap_or(Value::Null),
                        "expire_delete_markers": r.expiration().and_then(|e| e.expired_object_delete_marker()).unwrap_or(false),
                        "transitions": r.transitions().iter().map(|t| json!({"days": t.days(), "storage_class": t.storage_class().map(|c| c.as_str())})).collect::<Vec<_>>(),
                        "noncurrent_transitions": r.noncurrent_version_transitions().iter().map(|t| json!({"days": t.noncurrent_days(), "storage_class": t.storage_class().map(|c| c.as_str())})).collect::<Vec<_>>(),
                        "noncurrent_expire_days": r.noncurrent_version_expiration().and_then(|n| n.noncurrent_days()).map(|d| json!(d)).unwrap_or(Value::Null),
                        "abort_multipart_days": r.abort_incomplete_multipart_upload().and_then(|a| a.days_after_initiation()).map(|d| json!(d)).unwrap_or(Value::Null),
                    })
                })
                .collect(),
            Err(e) if absent(error_code(&e), &["NoSuchLifecycleConfiguration"]) => Vec::new(),
            Err(e) => return Err(sdk_error(&format!("GetBucketLifecycleConfiguration {name}"), e)),
        };
        rules.sort_by_key(|r| r["id"].as_str().unwrap_or("").to_string());
        let cors: Vec<Value> = match cors {
            Ok(out) => out
                .cors_rules()
                .iter()
                .map(|c| {
                    let sorted = |v: &[String]| {
                        let mut v = v.to_vec();
                        v.sort();
                        v
                    };
                    json!({"allowed_origins": sorted(c.allowed_origins()), "allowed_methods": sorted(c.allowed_methods()), "allowed_headers": sorted(c.allowed_headers()), "expose_headers": sorted(c.expose_headers()), "max_age": c.max_age_seconds().map(|s| s as u64)})
                })
                .collect(),
            Err(e) if absent(error_code(&e), &["NoSuchCORSConfiguration"]) => Vec::new(),
            Err(e) => return Err(sdk_error(&format!("GetBucketCors {name}"), e)),
        };
        let attrs = json!({
            "region": region,
            "versioning": versioning,
            "encryption": encryption,
            "public_access_block": pab,
            "object_ownership": ownership,
            "lifecycle": rules,
            "cors": cors,
            "tags": tags,
        });
        Ok(Some((attrs, tags)))
    }

    /// Writes the settings the changes touch (all of them on create).
    /// `live_tags`: the bucket's tags as read, whose keys poactl leaves alone go back with the
    /// desired ones (PutBucketTagging replaces the whole set).
    async fn write(
        &self,
        ctx: &Ctx<'_>,
        name: &str,
        a: &Value,
        changed: &(dyn Fn(&str) -> bool + Sync),
        live_tags: &BTreeMap<String, String>,
    ) -> Result<()> {
        let region = a["region"].as_str().unwrap_or("us-east-1");
        let s3 = self.0.s3(region).await;
        let loaded = ctx.loaded;
        let ctx = |op: &str| format!("{op} {name}");
        if changed("tags") {
            // PutBucketTagging replaces the whole set, and S3 refuses a set without the bucket's
            // aws: system tags ("System tags cannot be removed by requester") as well as one that
            // names them (InvalidTag: aws: is reserved): such a bucket's tags cannot be changed
            // with this API, only through whatever made them (a CloudFormation stack).
            let system: Vec<&String> = live_tags.keys().filter(|k| k.starts_with("aws:")).collect();
            if !system.is_empty() {
                return Err(ProviderError::Refused(format!(
                    "bucket {name} carries AWS system tags ({}); S3 cannot rewrite its tag set without losing them, so poactl leaves its tags as they are: change them through the stack that made the bucket, or remove the tag changes from the spec",
                    system.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", ")
                )));
            }
            let mut want = crate::providers::string_map(&a["tags"]);
            for (k, v) in live_tags {
                if crate::providers::foreign_tag(k, loaded) {
                    want.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
            let tags: Vec<Tag> = want.iter().filter_map(|(k, v)| Tag::builder().key(k).value(v).build().ok()).collect();
            let tagging = Tagging::builder().set_tag_set(Some(tags)).build().map_err(|e| ProviderError::Api(e.to_string()))?;
            s3.put_bucket_tagging().bucket(name).tagging(tagging).send().await.map_err(|e| settings_error(&ctx("PutBucketTagging"), e))?;
        }
        if changed("object_ownership") {
            let rule = OwnershipControlsRule::builder()
                .object_ownership(ObjectOwnership::from(a["object_ownership"].as_str().unwrap_or("BucketOwnerEnforced")))
                .build()
                .map_err(|e| ProviderError::Api(e.to_string()))?;
            let oc = OwnershipControls::builder().rules(rule).build().map_err(|e| ProviderError::Api(e.to_string()))?;
            s3.put_bucket_ownership_controls()
                .bucket(name)
                .ownership_controls(oc)
                .send()
                .await
                .map_err(|e| settings_error(&ctx("PutBucketOwnershipControls"), e))?;
        }
        if changed("public_access_block") {
            let p = &a["public_access_block"];
            let b = |k: &str| p[k].as_bool().unwrap_or(true);
            let cfg = PublicAccessBlockConfiguration::builder()
                .block_public_acls(b("block_public_acls"))
                .ignore_public_acls(b("ignore_public_acls"))
                .block_public_policy(b("block_public_policy"))
                .restrict_public_buckets(b("restrict_public_buckets"))
                .build();
            s3.put_public_access_block()
                .bucket(name)
                .public_access_block_configuration(cfg)
                .send()
                .await
                .map_err(|e| settings_error(&ctx("PutPublicAccessBlock"), e))?;
        }
        if changed("encryption") {
            let enc = &a["encryption"];
            let mut by_default = ServerSideEncryptionByDefault::builder()
                .sse_algorithm(ServerSideEncryption::from(enc["algorithm"].as_str().unwrap_or("AES256")));
            if let Some(k) = enc.get("kms_key").and_then(|k| k.as_str()) {
                by_default = by_default.kms_master_key_id(k);
            }
            let rule = ServerSideEncryptionRule::builder()
                .apply_server_side_encryption_by_default(by_default.build().map_err(|e| ProviderError::Api(e.to_string()))?)
                .bucket_key_enabled(enc["bucket_key"].as_bool().unwrap_or(false))
                .build();
            let cfg = ServerSideEncryptionConfiguration::builder().rules(rule).build().map_err(|e| ProviderError::Api(e.to_string()))?;
            s3.put_bucket_encryption()
                .bucket(name)
                .server_side_encryption_configuration(cfg)
                .send()
                .await
                .map_err(|e| settings_error(&ctx("PutBucketEncryption"), e))?;
        }
        if changed("versioning") {
            let status =
                if a["versioning"].as_bool() == Some(true) { BucketVersioningStatus::Enabled } else { BucketVersioningStatus::Suspended };
            s3.put_bucket_versioning()
                .bucket(name)
                .versioning_configuration(VersioningConfiguration::builder().status(status).build())
                .send()
                .await
                .map_err(|e| settings_error(&ctx("PutBucketVersioning"), e))?;
        }
        if changed("lifecycle") {
            let rules = a["lifecycle"].as_array().cloned().unwrap_or_default();
            if rules.is_empty() {
                s3.delete_bucket_lifecycle().bucket(name).send().await.map_err(|e| settings_error(&ctx("DeleteBucketLifecycle"), e))?;
            } else {
                let mut built = Vec::new();
                for r in rules {
                    let mut rule = LifecycleRule::builder()
                        .id(r["id"].as_str().unwrap_or(""))
                        .status(ExpirationStatus::from(r["status"].as_str().unwrap_or("Enabled")))
                        .filter(LifecycleRuleFilter::builder().prefix(r["prefix"].as_str().unwrap_or("")).build());
                    if let Some(d) = r["expire_days"].as_i64() {
                        rule = rule.expiration(LifecycleExpiration::builder().days(d as i32).build());
                    } else if r["expire_delete_markers"].as_bool() == Some(true) {
                        rule = rule.expiration(LifecycleExpiration::builder().expired_object_delete_marker(true).build());
                    }
                    for t in r["transitions"].as_array().into_iter().flatten() {
                        rule = rule.transitions(
                            Transition::builder()
                                .days(t["days"].as_i64().unwrap_or(0) as i32)
                                .storage_class(TransitionStorageClass::from(t["storage_class"].as_str().unwrap_or("STANDARD_IA")))
                                .build(),
                        );
                    }
                    if let Some(d) = r["noncurrent_expire_days"].as_i64() {
                        rule = rule.noncurrent_version_expiration(NoncurrentVersionExpiration::builder().noncurrent_days(d as i32).build());
                    }
                    if let Some(d) = r["abort_multipart_days"].as_i64() {
                        rule = rule.abort_incomplete_multipart_upload(
                            AbortIncompleteMultipartUpload::builder().days_after_initiation(d as i32).build(),
                        );
                    }
                    built.push(rule.build().map_err(|e| ProviderError::Api(e.to_string()))?);
                }
                let cfg = BucketLifecycleConfiguration::builder()
                    .set_rules(Some(built))
                    .build()
                    .map_err(|e| ProviderError::Api(e.to_string()))?;
                s3.put_bucket_lifecycle_configuration()
                    .bucket(name)
                    .lifecycle_configuration(cfg)
                    .send()
                    .await
                    .map_err(|e| settings_error(&ctx("PutBucketLifecycleConfiguration"), e))?;
            }
        }
        if changed("cors") {
            let rules = a["cors"].as_array().cloned().unwrap_or_default();
            if rules.is_empty() {
                s3.delete_bucket_cors().bucket(name).send().await.map_err(|e| settings_error(&ctx("DeleteBucketCors"), e))?;
            } else {
                let strings = |v: &Value| -> Vec<String> {
                    v.as_array().map(|a| a.iter().filter_map(|s| s.as_str().map(String::from)).collect()).unwrap_or_default()
                };
                let mut built = Vec::new();
                for r in rules {
                    let mut rule = CorsRule::builder()
                        .set_allowed_origins(Some(strings(&r["allowed_origins"])))
                        .set_allowed_methods(Some(strings(&r["allowed_methods"])))
                        .set_allowed_headers(Some(strings(&r["allowed_headers"])))
                        .set_expose_headers(Some(strings(&r["expose_headers"])));
                    if let Some(m) = r["max_age"].as_i64() {
                        rule = rule.max_age_seconds(m as i32);
                    }
                    built.push(rule.build().map_err(|e| ProviderError::Api(e.to_string()))?);
                }
                let cfg =
                    CorsConfiguration::builder().set_cors_rules(Some(built)).build().map_err(|e| ProviderError::Api(e.to_string()))?;
                s3.put_bucket_cors()
                    .bucket(name)
                    .cors_configuration(cfg)
                    .send()
                    .await
                    .map_err(|e| settings_error(&ctx("PutBucketCors"), e))?;
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Provider for BucketProvider {
    fn kind(&self) -> Kind {
        Kind::Bucket
    }

    fn lane(&self) -> Lane {
        LANE
    }

    /// A bucket cannot move between regions.
    fn replace_paths(&self) -> &'static [&'static str] {
        &["region"]
    }

    /// S3 reports the KMS key as it resolved it (a key ARN) where the spec may name an alias:
    /// the same key written two ways is not drift.
    fn diff(&self, d: &Desired, o: &Observed) -> Vec<FieldChange> {
        let mut live = o.attrs.clone();
        if let (Some(want), Some(have)) =
            (d.attrs.pointer("/encryption/kms_key").and_then(|v| v.as_str()), live.pointer("/encryption/kms_key").and_then(|v| v.as_str()))
            && kms_same_key(want, have) != Some(false)
        {
            live["encryption"]["kms_key"] = json!(want);
        }
        crate::plan::diff::diff_closed(&d.attrs, &live, self.replace_paths(), self.closed_maps())
    }

    fn notes(&self, d: &Desired, o: &Observed, _ctx: &Ctx<'_>) -> Vec<String> {
        let want = d.attrs.pointer("/encryption/kms_key").and_then(|v| v.as_str());
        let have = o.attrs.pointer("/encryption/kms_key").and_then(|v| v.as_str());
        match (want, have) {
            (Some(w), Some(h)) if kms_same_key(w, h).is_none() => vec![format!(
                "encryption.kms_key: S3 reports {h}; poactl cannot check offline that {w} still points at it (kms:DescribeKey would)"
            )],
            _ => Vec::new(),
        }
    }

    async fn observe(&self, ctx: &Ctx<'_>, d: &Desired) -> Result<Option<Observed>> {
        let name = &d.address.name;
        let region = d.attrs["region"].as_str().unwrap_or("us-east-1");
        let found = match self.locate(name, region).await? {
            None => return Ok(None),
            Some(f) => f,
        };
        let actual_region = match found {
            Ok(r) => r,
            Err(why) => {
                return Ok(Some(Observed {
                    id: name.clone(),
                    attrs: json!({}),
                    outputs: Outputs::new(),
                    ownership: Ownership::Foreign(why),
                    handle: Value::Null,
                }));
            }
        };
        // The settings reads go out at once; only the tags wait for the region's index (its
        // pages take a while on a large account) or, when it does not settle them, their own read.
        let arn = format!("arn:aws:s3:::{name}");
        let known = async {
            let index = self.0.tag_index(&actual_region, "s3:bucket", ctx.env, ctx.progress).await;
            index
                .and_then(|i| i.get(&arn).cloned())
                .filter(|t| super::tagging::settles(t, &d.attrs["tags"], |k| !crate::providers::foreign_tag(k, ctx.loaded)))
        };
        let Some((mut attrs, tags)) = self.read(name, &actual_region, known).await? else { return Ok(None) };
        attrs["region"] = json!(actual_region);
        let ownership = ownership_from_tags(&tags, ctx.env, &d.address);
        Ok(Some(Observed { id: name.clone(), attrs, outputs: outputs(name, &actual_region), ownership, handle: json!({"tags": tags}) }))
    }

    /// Buckets of the account tagged for this environment (others are not its business).
    ///
    /// The account's list (shared with observe) says which buckets exist and where; the
    /// tagging index of each of their regions says which carry this environment's tag. Those
    /// the spec does not declare have their tags read at the source before they are reported
    /// (they are what --prune would delete). Where the index cannot be read, every undeclared
    /// bucket of that region has its tags read, as S3 alone allows. Each bucket is read in its
    /// own region, since the Rust SDK does not follow S3's 301 redirects.
    async fn discover(&self, ctx: &Ctx<'_>) -> Result<Vec<(Address, Observed)>> {
        let declared: std::collections::BTreeSet<&str> =
            ctx.loaded.spec.storage.iter().flat_map(|s| s.buckets.iter()).map(|b| b.name.as_str()).collect();
        let undeclared: Vec<(String, String)> = self
            .account_buckets()
            .await?
            .iter()
            .filter(|(name, _)| !declared.contains(name.as_str()))
            .map(|(name, region)| (name.clone(), region.clone().unwrap_or_else(|| self.0.region.clone())))
            .collect();
        let regions: std::collections::BTreeSet<&str> = undeclared.iter().map(|(_, r)| r.as_str()).collect();
        let indexes: BTreeMap<&str, Option<super::tagging::Index>> = futures::future::join_all(
            regions.into_iter().map(|r| async move { (r, self.0.tag_index(r, "s3:bucket", ctx.env, ctx.progress).await) }),
        )
        .await
        .into_iter()
        .collect();
        let candidates = undeclared.iter().filter(|(name, region)| match indexes.get(region.as_str()) {
            Some(Some(index)) => index.contains_key(&format!("arn:aws:s3:::{name}")),
            _ => true,
        });
        let lookups = candidates.map(|(name, region)| async move {
            let tags = self.direct_tags(name, region).await.ok()??;
            Some((name.clone(), region.clone(), tags))
        });
        let found = futures::future::join_all(lookups).await;
        Ok(found
            .into_iter()
            .flatten()
            .filter(|(_, _, tags)| crate::providers::managed_in_env(tags, ctx.env))
            .map(|(name, region, tags)| {
                let address = Address::new(Kind::Bucket, &name);
                let ownership = ownership_from_tags(&tags, ctx.env, &address);
                let mut outs = outputs(&name, &region);
                outs.insert("description".into(), format!("bucket {name}"));
                (address, Observed { id: name, attrs: json!({"tags": tags}), outputs: outs, ownership, handle: Value::Null })
            })
            .collect())
    }

    /// Creates the bucket with its ownership tags in `CreateBucketConfiguration.Tags` (ownership
    /// is then atomic, like CreateDistributionWithTags), then writes its settings.
    ///
    /// S3 is eventually consistent right after CreateBucket: the settings calls may answer
    /// NoSuchBucket for a while, and re-creating a name just deleted answers OperationAborted
    /// ("A conflicting conditional operation is currently in progress"). Both are retried for
    /// two minutes, as terraform-provider-aws does (`internal/service/s3/bucket.go`,
    /// bucketCreatedTimeout / bucketPropagationTimeout).
    async fn create(&self, ctx: &Ctx<'_>, d: &Desired) -> Result<Outputs> {
        let name = &d.address.name;
        let region = d.attrs["region"].as_str().unwrap_or("us-east-1").to_string();
        let s3 = self.0.s3(&region).await;
        let tags: Vec<Tag> = crate::providers::string_map(&d.attrs["tags"])
            .iter()
            .filter_map(|(k, v)| Tag::builder().key(k).value(v).build().ok())
            .collect();
        let mut config = CreateBucketConfiguration::builder().set_tags(Some(tags));
        if region != "us-east-1" {
            config = config.location_constraint(BucketLocationConstraint::from(region.as_str()));
        }
        let config = config.build();
        let started = std::time::Instant::now();
        loop {
            match s3.create_bucket().bucket(name).create_bucket_configuration(config.clone()).send().await {
                Ok(_) => break,
                Err(e) if error_code(&e).as_deref() == Some("BucketAlreadyOwnedByYou") => break,
                Err(e) if error_code(&e).as_deref() == Some("BucketAlreadyExists") => {
                    return Err(ProviderError::Refused(format!(
                        "the bucket name {name} is taken by another AWS account (bucket names are global): choose another name"
                    )));
                }
                Err(e) if error_code(&e).as_deref() == Some("OperationAborted") && started.elapsed() < PROPAGATION => {
                    tokio::time::sleep(PROPAGATION_STEP).await
                }
                Err(e) => return Err(sdk_error(&format!("CreateBucket {name}"), e)),
            }
        }
        // A new bucket is unversioned: writing `Suspended` for `versioning: false` would mark
        // it as once versioned, for nothing.
        let is_new_default = |p: &str| p == "versioning" && d.attrs["versioning"] != json!(true);
        loop {
            match self.write(ctx, name, &d.attrs, &|p| !is_new_default(p), &BTreeMap::new()).await {
                Err(ProviderError::Propagating(_)) if started.elapsed() < PROPAGATION => tokio::time::sleep(PROPAGATION_STEP).await,
                other => {
                    other?;
                    break;
                }
            }
        }
        Ok(outputs(name, &region))
    }

    async fn update(&self, ctx: &Ctx<'_>, d: &Desired, o: &Observed, changes: &[FieldChange]) -> Result<Outputs> {
        let name = &d.address.name;
        let changed = |p: &str| crate::plan::touches(changes, p);
        let live_tags = crate::providers::string_map(&o.handle["tags"]);
        self.write(ctx, name, &d.attrs, &changed, &live_tags).await?;
        Ok(o.outputs.clone())
    }

    /// Deletes an empty bucket; a bucket with objects is refused (poactl never deletes data
    /// it did not create: empty it first).
    async fn delete(&self, _ctx: &Ctx<'_>, address: &Address, o: &Observed) -> Result<()> {
        let region = o.outputs.get("region").cloned().unwrap_or_else(|| self.0.region.clone());
        let s3 = self.0.s3(&region).await;
        match s3.delete_bucket().bucket(&address.name).send().await {
            Ok(_) => Ok(()),
            Err(e) if error_code(&e).as_deref() == Some("NoSuchBucket") => Ok(()),
            Err(e) if error_code(&e).as_deref() == Some("BucketNotEmpty") => Err(ProviderError::Refused(format!(
                "bucket {} is not empty (object versions count too): poactl does not delete objects; empty it, then apply again",
                address.name
            ))),
            Err(e) => Err(sdk_error(&format!("DeleteBucket {}", address.name), e)),
        }
    }
}

#[async_trait]
impl Provider for BucketPolicyProvider {
    fn kind(&self) -> Kind {
        Kind::BucketPolicy
    }

    fn lane(&self) -> Lane {
        LANE
    }

    async fn observe(&self, ctx: &Ctx<'_>, d: &Desired) -> Result<Option<Observed>> {
        let region = ctx.parent.and_then(|p| p.get("region")).cloned().unwrap_or_else(|| self.0.region.clone());
        let s3 = self.0.s3(&region).await;
        let name = &d.address.name;
        let policy = match s3.get_bucket_policy().bucket(name).send().await {
            Ok(out) => out.policy().map(String::from),
            Err(e) if error_code(&e).as_deref() == Some("NoSuchBucketPolicy") => None,
            Err(e) => return Err(sdk_error(&format!("GetBucketPolicy {name}"), e)),
        };
        Ok(policy.map(|text| {
            let doc: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            Observed {
                id: name.clone(),
                attrs: json!({"statements": normalize_statements(&doc)}),
                outputs: Outputs::from([("bucket".to_string(), name.clone())]),
                ownership: Ownership::NaturalKey,
                handle: doc,
            }
        }))
    }

    async fn discover(&self, _ctx: &Ctx<'_>) -> Result<Vec<(Address, Observed)>> {
        Ok(Vec::new())
    }

    async fn create(&self, ctx: &Ctx<'_>, d: &Desired) -> Result<Outputs> {
        let region = ctx.parent.and_then(|p| p.get("region")).cloned().unwrap_or_else(|| self.0.region.clone());
        let s3 = self.0.s3(&region).await;
        let name = &d.address.name;
        let policy = json!({"Version": "2012-10-17", "Statement": d.attrs["statements"]});
        s3.put_bucket_policy()
            .bucket(name)
            .policy(policy.to_string())
            .send()
            .await
            .map_err(|e| sdk_error(&format!("PutBucketPolicy {name}"), e))?;
        Ok(Outputs::from([("bucket".to_string(), name.clone())]))
    }

    async fn update(&self, ctx: &Ctx<'_>, d: &Desired, _o: &Observed, _changes: &[FieldChange]) -> Result<Outputs> {
        self.create(ctx, d).await
    }

    async fn delete(&self, ctx: &Ctx<'_>, address: &Address, _o: &Observed) -> Result<()> {
        let region = ctx.parent.and_then(|p| p.get("region")).cloned().unwrap_or_else(|| self.0.region.clone());
        let s3 = self.0.s3(&region).await;
        match s3.delete_bucket_policy().bucket(&address.name).send().await {
            Ok(_) => Ok(()),
            Err(e) if matches!(error_code(&e).as_deref(), Some("NoSuchBucket") | Some("NoSuchBucketPolicy")) => Ok(()),
            Err(e) => Err(sdk_error(&format!("DeleteBucketPolicy {}", address.name), e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::kms_same_key;

    #[test]
    fn kms_keys_written_two_ways_are_one_key() {
        let key = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        let cases = [
            ("1234abcd-12ab-34cd-56ef-1234567890ab", key, Some(true)),
            (key, key, Some(true)),
            ("alias/media", "arn:aws:kms:us-east-1:123456789012:alias/media", Some(true)),
            ("alias/media", "alias/other", Some(false)),
            ("1111aaaa-12ab-34cd-56ef-1234567890ab", key, Some(false)),
            // Only KMS knows what an alias points at.
            ("alias/media", key, None),
        ];
        for (want, have, same) in cases {
            assert_eq!(kms_same_key(want, have), same, "{want} vs {have}");
        }
    }
}
