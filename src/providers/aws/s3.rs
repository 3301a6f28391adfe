//! S3 buckets: region, versioning, default encryption, public access block, object
//! ownership, lifecycle, CORS, tags; and the bucket policy that lets this environment's
//! CloudFront distributions read a bucket through Origin Access Control.
//!
//! AWS defaults and "not configured" read the same: a new bucket answers 404 for its
//! encryption, public access block and ownership controls on some endpoints and returns the
//! defaults (SSE-S3, all blocked, BucketOwnerEnforced) on others; both normalize to the
//! defaults, so neither causes a perpetual diff.

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
use crate::providers::{Ctx, Desired, Observed, Outputs, Ownership, Provider, ProviderError, Result, all_tags, ownership_from_tags};
use crate::resource::{Address, Kind};
use crate::spec::LoadedSpec;
use crate::spec::model::BucketSpec;
use crate::spec::validate::lifecycle_rule_id;

pub struct BucketProvider(pub Arc<Aws>);
pub struct BucketPolicyProvider(pub Arc<Aws>);

pub fn bucket_region(loaded: &LoadedSpec, b: &BucketSpec) -> String {
    b.region.clone().unwrap_or_else(|| loaded.spec.aws_region())
}

fn days(d: &Option<crate::spec::model::Duration>) -> Value {
    d.as_ref().and_then(|d| d.whole_days()).map(|n| json!(n)).unwrap_or(Value::Null)
}

pub fn desired_bucket(loaded: &LoadedSpec, b: &BucketSpec) -> Desired {
    let address = Address::new(Kind::Bucket, &b.name);
    let mut rules: Vec<Value> = b
        .lifecycle
        .iter()
        .map(|r| {
            json!({
                "id": lifecycle_rule_id(r),
                "prefix": r.prefix,
                "expire_days": days(&r.expire_after),
                "transition": r.transition_after.as_ref().map(|t| json!({"days": t.whole_days(), "storage_class": r.storage_class})).unwrap_or(Value::Null),
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

/// The bucket policy for the distributions that use the bucket as origin; none when no
/// distribution reads it.
pub fn desired_policy(_loaded: &LoadedSpec, b: &BucketSpec) -> Option<Desired> {
    let dists = crate::spec::distributions_of(&_loaded.spec, &b.name);
    if dists.is_empty() {
        return None;
    }
    let mut statements: Vec<Value> =
        dists.iter().map(|d| oac_statement(&b.name, &d.name, &format!("${{cdn.distributions.{}.arn}}", d.name))).collect();
    statements.sort_by_key(|s| s["Sid"].as_str().unwrap_or("").to_string());
    let mut d = Desired::new(Address::new(Kind::BucketPolicy, &b.name), json!({"statements": statements}))
        .with_parent(Address::new(Kind::Bucket, &b.name));
    for dist in dists {
        d = d.depends(Address::new(Kind::Distribution, &dist.name));
    }
    Some(d)
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
    /// Whether the bucket exists, and where (`None`: no such bucket).
    async fn locate(&self, name: &str, region: &str) -> Result<Option<std::result::Result<String, String>>> {
        let s3 = self.0.s3(region).await;
        match s3.head_bucket().bucket(name).send().await {
            Ok(out) => Ok(Some(Ok(out.bucket_region().map(String::from).unwrap_or_else(|| region.to_string())))),
            Err(e) => {
                let status = e.raw_response().map(|r| r.status().as_u16());
                match status {
                    Some(404) => Ok(None),
                    Some(403) => Ok(Some(Err(
                        "it exists but belongs to another AWS account (403 on HeadBucket); bucket names are global".to_string()
                    ))),
                    Some(301) => {
                        let actual =
                            e.raw_response().and_then(|r| r.headers().get("x-amz-bucket-region")).map(String::from).unwrap_or_default();
                        Ok(Some(Ok(actual)))
                    }
                    _ => Err(sdk_error(&format!("HeadBucket {name}"), &e)),
                }
            }
        }
    }

    /// Reads every sub-setting of a bucket at once.
    async fn read(&self, name: &str, region: &str) -> Result<(Value, BTreeMap<String, String>)> {
        let s3 = self.0.s3(region).await;
        let (tags, versioning, encryption, pab, ownership, lifecycle, cors) = tokio::join!(
            s3.get_bucket_tagging().bucket(name).send(),
            s3.get_bucket_versioning().bucket(name).send(),
            s3.get_bucket_encryption().bucket(name).send(),
            s3.get_public_access_block().bucket(name).send(),
            s3.get_bucket_ownership_controls().bucket(name).send(),
            s3.get_bucket_lifecycle_configuration().bucket(name).send(),
            s3.get_bucket_cors().bucket(name).send(),
        );
        let absent = |code: Option<String>, codes: &[&str]| code.as_deref().is_some_and(|c| codes.contains(&c));

        let tags: BTreeMap<String, String> = match tags {
            Ok(t) => t.tag_set().iter().map(|t| (t.key().to_string(), t.value().to_string())).collect(),
            Err(e) if absent(error_code(&e), &["NoSuchTagSet", "NoSuchTagSetError"]) => BTreeMap::new(),
            Err(e) => return Err(sdk_error(&format!("GetBucketTagging {name}"), &e)),
        };
        let versioning = match versioning {
            Ok(v) => v.status() == Some(&BucketVersioningStatus::Enabled),
            Err(e) => return Err(sdk_error(&format!("GetBucketVersioning {name}"), &e)),
        };
        let encryption = match encryption {
            Ok(out) => {
                let rule = out
                    .server_side_encryption_configuration()
                    .and_then(|c| c.rules().first())
                    .and_then(|r| r.apply_server_side_encryption_by_default());
                let mut v =
                    json!({"algorithm": rule.map(|r| r.sse_algorithm().as_str().to_string()).unwrap_or_else(|| "AES256".to_string())});
                if let Some(k) = rule.and_then(|r| r.kms_master_key_id()) {
                    v["kms_key"] = json!(k);
                }
                v
            }
            Err(e) if absent(error_code(&e), &["ServerSideEncryptionConfigurationNotFoundError"]) => json!({"algorithm": "AES256"}),
            Err(e) => return Err(sdk_error(&format!("GetBucketEncryption {name}"), &e)),
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
            Err(e) if absent(error_code(&e), &["NoSuchPublicAccessBlockConfiguration"]) => {
                json!({"block_public_acls": true, "ignore_public_acls": true, "block_public_policy": true, "restrict_public_buckets": true})
            }
            Err(e) => return Err(sdk_error(&format!("GetPublicAccessBlock {name}"), &e)),
        };
        let ownership = match ownership {
            Ok(out) => out
                .ownership_controls()
                .and_then(|c| c.rules().first())
                .map(|r| r.object_ownership().as_str().to_string())
                .unwrap_or_else(|| "BucketOwnerEnforced".to_string()),
            Err(e) if absent(error_code(&e), &["OwnershipControlsNotFoundError"]) => "BucketOwnerEnforced".to_string(),
            Err(e) => return Err(sdk_error(&format!("GetBucketOwnershipControls {name}"), &e)),
        };
        let mut rules: Vec<Value> = match lifecycle {
            Ok(out) => out
                .rules()
                .iter()
                .map(|r| {
                    let prefix = r.filter().and_then(|f| f.prefix()).or_else(|| legacy_prefix(r));
                    json!({
                        "id": r.id().unwrap_or(""),
                        "prefix": prefix.unwrap_or(""),
                        "expire_days": r.expiration().and_then(|e| e.days()).map(|d| json!(d)).unwrap_or(Value::Null),
                        "transition": r.transitions().first().map(|t| json!({"days": t.days(), "storage_class": t.storage_class().map(|c| c.as_str())})).unwrap_or(Value::Null),
                        "noncurrent_expire_days": r.noncurrent_version_expiration().and_then(|n| n.noncurrent_days()).map(|d| json!(d)).unwrap_or(Value::Null),
                        "abort_multipart_days": r.abort_incomplete_multipart_upload().and_then(|a| a.days_after_initiation()).map(|d| json!(d)).unwrap_or(Value::Null),
                    })
                })
                .collect(),
            Err(e) if absent(error_code(&e), &["NoSuchLifecycleConfiguration"]) => Vec::new(),
            Err(e) => return Err(sdk_error(&format!("GetBucketLifecycleConfiguration {name}"), &e)),
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
            Err(e) => return Err(sdk_error(&format!("GetBucketCors {name}"), &e)),
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
        Ok((attrs, tags))
    }

    /// Writes the settings the changes touch (all of them on create).
    async fn write(&self, name: &str, a: &Value, changed: &(dyn Fn(&str) -> bool + Sync)) -> Result<()> {
        let region = a["region"].as_str().unwrap_or("us-east-1");
        let s3 = self.0.s3(region).await;
        let ctx = |op: &str| format!("{op} {name}");
        if changed("tags") {
            let tags: Vec<Tag> = a["tags"]
                .as_object()
                .map(|m| m.iter().filter_map(|(k, v)| Tag::builder().key(k).value(v.as_str().unwrap_or("")).build().ok()).collect())
                .unwrap_or_default();
            let tagging = Tagging::builder().set_tag_set(Some(tags)).build().map_err(|e| ProviderError::Api(e.to_string()))?;
            s3.put_bucket_tagging().bucket(name).tagging(tagging).send().await.map_err(|e| sdk_error(&ctx("PutBucketTagging"), &e))?;
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
                .map_err(|e| sdk_error(&ctx("PutBucketOwnershipControls"), &e))?;
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
                .map_err(|e| sdk_error(&ctx("PutPublicAccessBlock"), &e))?;
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
                .build();
            let cfg = ServerSideEncryptionConfiguration::builder().rules(rule).build().map_err(|e| ProviderError::Api(e.to_string()))?;
            s3.put_bucket_encryption()
                .bucket(name)
                .server_side_encryption_configuration(cfg)
                .send()
                .await
                .map_err(|e| sdk_error(&ctx("PutBucketEncryption"), &e))?;
        }
        if changed("versioning") {
            let status =
                if a["versioning"].as_bool() == Some(true) { BucketVersioningStatus::Enabled } else { BucketVersioningStatus::Suspended };
            s3.put_bucket_versioning()
                .bucket(name)
                .versioning_configuration(VersioningConfiguration::builder().status(status).build())
                .send()
                .await
                .map_err(|e| sdk_error(&ctx("PutBucketVersioning"), &e))?;
        }
        if changed("lifecycle") {
            let rules = a["lifecycle"].as_array().cloned().unwrap_or_default();
            if rules.is_empty() {
                s3.delete_bucket_lifecycle().bucket(name).send().await.map_err(|e| sdk_error(&ctx("DeleteBucketLifecycle"), &e))?;
            } else {
                let mut built = Vec::new();
                for r in rules {
                    let mut rule = LifecycleRule::builder()
                        .id(r["id"].as_str().unwrap_or(""))
                        .status(ExpirationStatus::Enabled)
                        .filter(LifecycleRuleFilter::builder().prefix(r["prefix"].as_str().unwrap_or("")).build());
                    if let Some(d) = r["expire_days"].as_i64() {
                        rule = rule.expiration(LifecycleExpiration::builder().days(d as i32).build());
                    }
                    if let Some(t) = r.get("transition").filter(|t| !t.is_null()) {
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
                    .map_err(|e| sdk_error(&ctx("PutBucketLifecycleConfiguration"), &e))?;
            }
        }
        if changed("cors") {
            let rules = a["cors"].as_array().cloned().unwrap_or_default();
            if rules.is_empty() {
                s3.delete_bucket_cors().bucket(name).send().await.map_err(|e| sdk_error(&ctx("DeleteBucketCors"), &e))?;
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
                s3.put_bucket_cors().bucket(name).cors_configuration(cfg).send().await.map_err(|e| sdk_error(&ctx("PutBucketCors"), &e))?;
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

    /// A bucket cannot move between regions.
    fn replace_paths(&self) -> &'static [&'static str] {
        &["region"]
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
        let (mut attrs, tags) = self.read(name, &actual_region).await?;
        attrs["region"] = json!(actual_region);
        let ownership = ownership_from_tags(&tags, ctx.env, &d.address);
        Ok(Some(Observed { id: name.clone(), attrs, outputs: outputs(name, &actual_region), ownership, handle: Value::Null }))
    }

    /// Buckets of the account tagged for this environment (others are not its business).
    async fn discover(&self, ctx: &Ctx<'_>) -> Result<Vec<(Address, Observed)>> {
        let s3 = self.0.s3(&self.0.region).await;
        let list = s3.list_buckets().send().await.map_err(|e| sdk_error("ListBuckets", &e))?;
        let names: Vec<String> = list.buckets().iter().filter_map(|b| b.name().map(String::from)).collect();
        let lookups = names.into_iter().map(|name| {
            let s3 = s3.clone();
            async move {
                let tags = s3.get_bucket_tagging().bucket(&name).send().await.ok()?;
                let tags: BTreeMap<String, String> = tags.tag_set().iter().map(|t| (t.key().to_string(), t.value().to_string())).collect();
                Some((name, tags))
            }
        });
        let found = futures::future::join_all(lookups).await;
        Ok(found
            .into_iter()
            .flatten()
            .filter(|(_, tags)| crate::providers::managed_in_env(tags, ctx.env))
            .map(|(name, tags)| {
                let address = Address::new(Kind::Bucket, &name);
                let ownership = ownership_from_tags(&tags, ctx.env, &address);
                let mut outs = outputs(&name, &self.0.region);
                outs.insert("description".into(), format!("bucket {name}"));
                (address, Observed { id: name, attrs: json!({"tags": tags}), outputs: outs, ownership, handle: Value::Null })
            })
            .collect())
    }

    async fn create(&self, _ctx: &Ctx<'_>, d: &Desired) -> Result<Outputs> {
        let name = &d.address.name;
        let region = d.attrs["region"].as_str().unwrap_or("us-east-1").to_string();
        let s3 = self.0.s3(&region).await;
        let mut req = s3.create_bucket().bucket(name);
        if region != "us-east-1" {
            req = req.create_bucket_configuration(
                CreateBucketConfiguration::builder().location_constraint(BucketLocationConstraint::from(region.as_str())).build(),
            );
        }
        match req.send().await {
            Ok(_) => {}
            Err(e) if error_code(&e).as_deref() == Some("BucketAlreadyOwnedByYou") => {}
            Err(e) if error_code(&e).as_deref() == Some("BucketAlreadyExists") => {
                return Err(ProviderError::Refused(format!(
                    "the bucket name {name} is taken by another AWS account (bucket names are global): choose another name"
                )));
            }
            Err(e) => return Err(sdk_error(&format!("CreateBucket {name}"), &e)),
        }
        self.write(name, &d.attrs, &|_| true).await?;
        Ok(outputs(name, &region))
    }

    async fn update(&self, _ctx: &Ctx<'_>, d: &Desired, o: &Observed, changes: &[FieldChange]) -> Result<Outputs> {
        let name = &d.address.name;
        let changed = |p: &str| crate::plan::touches(changes, p);
        self.write(name, &d.attrs, &changed).await?;
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
            Err(e) => Err(sdk_error(&format!("DeleteBucket {}", address.name), &e)),
        }
    }
}

#[async_trait]
impl Provider for BucketPolicyProvider {
    fn kind(&self) -> Kind {
        Kind::BucketPolicy
    }

    async fn observe(&self, ctx: &Ctx<'_>, d: &Desired) -> Result<Option<Observed>> {
        let region = ctx.parent.and_then(|p| p.get("region")).cloned().unwrap_or_else(|| self.0.region.clone());
        let s3 = self.0.s3(&region).await;
        let name = &d.address.name;
        let policy = match s3.get_bucket_policy().bucket(name).send().await {
            Ok(out) => out.policy().map(String::from),
            Err(e) if error_code(&e).as_deref() == Some("NoSuchBucketPolicy") => None,
            Err(e) => return Err(sdk_error(&format!("GetBucketPolicy {name}"), &e)),
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
            .map_err(|e| sdk_error(&format!("PutBucketPolicy {name}"), &e))?;
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
            Err(e) => Err(sdk_error(&format!("DeleteBucketPolicy {}", address.name), &e)),
        }
    }
}
