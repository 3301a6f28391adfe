//! Customer key management: Atlas encrypts the project's dedicated clusters with the team's
//! own AWS KMS key, which they can revoke. One resource per project, run as one chain
//! across both clouds (../shared/atlas/PRIVATE-NETWORKING.md §2, "PN" below; in Terraform the
//! same chain is four resources over two providers with `depends_on` and, until #4064, a
//! `time_sleep`):
//! 1. the key: an existing one, checked (it exists, is enabled and symmetric), or one poactl
//!    makes with its tags and the alias `alias/poactl-ENV-atlas` it is found by again;
//! 2. Atlas' access role (`POST /cloudProviderAccess`): its `atlasAWSAccountArn` and
//!    `atlasAssumedRoleExternalId` go into the IAM role's trust. A killed run's role is found
//!    again through the external id the IAM role already trusts, so none is made twice;
//! 3. the IAM role (`CreateRole`, or `UpdateAssumeRolePolicy` when its trust is not Atlas');
//! 4. its inline grant on the key (`PutRolePolicy`: Encrypt, Decrypt, DescribeKey,
//!    GenerateDataKey* on that key only);
//! 5. the authorization (`PATCH /cloudProviderAccess/{roleId}`). IAM is eventually
//!    consistent, so Atlas may not be able to assume a new role for a while: the codes
//!    CANNOT_ASSUME_ROLE, INVALID_AWS_CREDENTIALS and CLOUD_PROVIDER_ACCESS_ROLE_NOT_AUTHORIZED
//!    are asked again with backoff for as long as `--timeout` allows (PN §2.1 steps 4-5; TF
//!    retries 30 s, then 3 min, and the latter never fired until #4064);
//! 6. the project setting (`PATCH /encryptionAtRest`, every `awsKms` field), the same retry;
//! 7. a wait for `awsKms.valid` (the TF module's postcondition).
//!
//! The clusters depend on this resource, so they get `encryptionAtRestProvider: AWS` after
//! step 7. Turning it off is one apply the other way (PN §2.3: two applies in Terraform,
//! #566, #4235): the clusters go to NONE and IDLE first (this kind is deleted last), then the
//! project setting goes off, then the role is deauthorized and the IAM role removed. A key
//! poactl made is never deleted outright: its deletion is scheduled with KMS' longest window
//! (30 days), in which `aws kms cancel-key-deletion` brings it back.

mod aws_side;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};

use super::atlas::client::version::V2023_01_01;
use super::atlas::client::{AtlasError, seg};
use super::atlas::cluster::CLUSTERS;
use super::atlas::{Atlas, LANE, group_id, scope_group_id};
use super::aws::Aws;
use crate::plan::FieldChange;
use crate::providers::{Ctx, Desired, Lane, Look, Observed, Outputs, Ownership, Provider, ProviderError, Result, all_tags, wait_for};
use crate::resource::{Address, Kind, TAG_ENV, TAG_ID};
use crate::spec::LoadedSpec;
use crate::spec::model::{EncryptionSpec, KmsKeySpec};

pub struct EncryptionProvider {
    atlas: Arc<Atlas>,
    aws: Arc<Aws>,
    /// Why the key cannot serve, found by `observe`: the plan shows it, apply sends nothing.
    refused: Mutex<BTreeMap<Address, String>>,
}

impl EncryptionProvider {
    pub fn new(atlas: Arc<Atlas>, aws: Arc<Aws>) -> Self {
        EncryptionProvider { atlas, aws, refused: Default::default() }
    }
}

/// Why a key cannot serve Atlas, if it cannot.
fn key_problem(key: Option<&aws_side::Key>, wanted: &str, region: &str, create: bool) -> Option<String> {
    match key {
        None if create => None,
        None => Some(format!(
            "KMS knows no key `{wanted}` in {region} for these AWS credentials: check `atlas.encryption.kms_key` and `region`"
        )),
        Some(k) if k.spec != "SYMMETRIC_DEFAULT" => {
            Some(format!("the KMS key {} is {}: Atlas encrypts with a symmetric key (SYMMETRIC_DEFAULT) only", k.arn, k.spec))
        }
        Some(k) if k.state != "Enabled" => Some(format!("the KMS key {} is {}: Atlas needs an enabled key", k.arn, k.state)),
        Some(_) => None,
    }
}

/// The codes that mean "IAM has not caught up yet" (PN §2.1 step 5, TF
/// `encryptionatrest/resource.go:308-349`).
const PROPAGATING: &[&str] = &["CANNOT_ASSUME_ROLE", "INVALID_AWS_CREDENTIALS", "CLOUD_PROVIDER_ACCESS_ROLE_NOT_AUTHORIZED"];

pub fn desired(loaded: &LoadedSpec, e: &EncryptionSpec, address: Address) -> Desired {
    let key = match &e.kms_key {
        KmsKeySpec::Existing(k) => k.clone(),
        KmsKeySpec::Create { .. } => EncryptionSpec::created_alias(&loaded.env),
    };
    let region = e.key_region().unwrap_or_default();
    let attrs = json!({
        "enabled": true,
        "key": key,
        "region": region.to_ascii_uppercase().replace('-', "_"),
        "role": e.role_name(&loaded.env),
        "role_trusts_atlas": true,
        "role_grants_key": true,
        "valid": true,
    });
    let mut d = Desired::new(address.clone(), attrs);
    d.write_only = json!({"create_key": e.creates_key(), "key_region": region, "tags": all_tags(loaded, &BTreeMap::new(), &address)});
    d
}

fn str_of<'v>(v: &'v Value, k: &str) -> &'v str {
    v.get(k).and_then(Value::as_str).unwrap_or_default()
}

fn groups(group: &str) -> String {
    format!("/api/atlas/v2/groups/{group}")
}

fn role_name_of(arn: &str) -> String {
    arn.rsplit('/').next().unwrap_or_default().to_string()
}

fn propagating(e: &AtlasError) -> bool {
    e.code().is_some_and(|c| PROPAGATING.contains(&c))
}

/// What observe found, on both sides.
#[derive(Debug, Clone, Default)]
struct Found {
    ear: Value,
    atlas_roles: Vec<Value>,
    role: Option<aws_side::Role>,
    policy: Option<Value>,
    key: Option<aws_side::Key>,
}

impl Found {
    fn aws_kms(&self) -> &Value {
        &self.ear["awsKms"]
    }

    /// The Atlas role the project setting uses (by `roleId`, which the spec marks write-only
    /// and Atlas may leave out: then the one authorized for our IAM role).
    fn atlas_role(&self) -> Option<&Value> {
        let id = str_of(self.aws_kms(), "roleId");
        let arn = self.role.as_ref().map(|r| r.arn.as_str()).unwrap_or_default();
        self.atlas_roles
            .iter()
            .find(|r| !id.is_empty() && str_of(r, "roleId") == id)
            .or_else(|| self.atlas_roles.iter().find(|r| !arn.is_empty() && str_of(r, "iamAssumedRoleArn") == arn))
    }

    fn observed(&self, ctx: &Ctx<'_>, address: &Address, group: &str, wanted_key: &str) -> Observed {
        let kms = self.aws_kms();
        let live_key = str_of(kms, "customerMasterKeyID");
        // The spec may name the key by alias or ARN; Atlas keeps the key id.
        let key = match &self.key {
            Some(k) if !live_key.is_empty() && (live_key == k.id || live_key == k.arn) => wanted_key.to_string(),
            _ => live_key.to_string(),
        };
        let atlas_role = self.atlas_role();
        let authorized_arn = atlas_role.map(|r| str_of(r, "iamAssumedRoleArn")).unwrap_or_default();
        let trusts = match (atlas_role, &self.role) {
            (Some(r), Some(role)) => {
                aws_side::trusted_external_id(&role.trust, str_of(r, "atlasAWSAccountArn")).as_deref()
                    == Some(str_of(r, "atlasAssumedRoleExternalId"))
            }
            _ => false,
        };
        let grants = match (&self.policy, &self.key) {
            (Some(p), Some(k)) => aws_side::grants_key(p, &k.arn),
            _ => false,
        };
        let attrs = json!({
            "enabled": kms["enabled"].as_bool().unwrap_or(false),
            "key": key,
            "region": str_of(kms, "region"),
            "role": role_name_of(authorized_arn),
            "role_trusts_atlas": trusts,
            "role_grants_key": grants,
            "valid": kms["valid"].as_bool().unwrap_or(false),
        });
        let tags = self.role.as_ref().map(|r| r.tags.clone()).unwrap_or_default();
        let ownership =
            if tags.contains_key(TAG_ID) { crate::providers::ownership_from_tags(&tags, ctx.env, address) } else { Ownership::NaturalKey };
        Observed {
            id: address.name.clone(),
            attrs,
            outputs: Outputs::from([
                ("key_arn".to_string(), self.key.as_ref().map(|k| k.arn.clone()).unwrap_or_default()),
                ("role_arn".to_string(), authorized_arn.to_string()),
                ("role_id".to_string(), atlas_role.map(|r| str_of(r, "roleId")).unwrap_or_default().to_string()),
                ("valid".to_string(), kms["valid"].as_bool().unwrap_or(false).to_string()),
                ("description".to_string(), format!("encryption at rest with KMS key {live_key}")),
            ]),
            ownership,
            handle: json!({
                "groupId": group,
                "roleId": atlas_role.map(|r| str_of(r, "roleId")).unwrap_or_default(),
                "role": self.role.as_ref().map(|r| role_name_of(&r.arn)).unwrap_or_default(),
                "key_id": self.key.as_ref().map(|k| k.id.clone()).unwrap_or_default(),
                "key_region": ctx.loaded.spec.atlas.as_ref().and_then(|a| a.encryption.as_ref()).and_then(|e| e.key_region()),
            }),
        }
    }
}

impl EncryptionProvider {
    fn ear_path(group: &str) -> String {
        format!("{}/encryptionAtRest", groups(group))
    }

    async fn atlas_roles(&self, group: &str) -> Result<Vec<Value>> {
        let list = self.atlas.client.get(&format!("{}/cloudProviderAccess", groups(group)), V2023_01_01).await?;
        Ok(list["awsIamRoles"].as_array().cloned().unwrap_or_default())
    }

    async fn find(&self, group: &str, role_name: &str, key: &str, key_region: &str) -> Result<Found> {
        let iam = self.aws.iam();
        let kms = self.aws.kms(key_region);
        let ear = async { Ok::<_, ProviderError>(self.atlas.client.get(&Self::ear_path(group), V2023_01_01).await?) };
        let key = async { if key.is_empty() || key_region.is_empty() { Ok(None) } else { aws_side::describe_key(&kms, key).await } };
        let (ear, atlas_roles, role, policy, key) = tokio::try_join!(
            ear,
            self.atlas_roles(group),
            aws_side::get_role(&iam, role_name),
            aws_side::get_policy(&iam, role_name),
            key
        )?;
        Ok(Found { ear, atlas_roles, role, policy, key })
    }

    fn wanted(d: &Desired) -> (String, String, String, bool) {
        (
            str_of(&d.attrs, "key").to_string(),
            str_of(&d.write_only, "key_region").to_string(),
            str_of(&d.attrs, "role").to_string(),
            d.write_only["create_key"].as_bool().unwrap_or(false),
        )
    }

    /// Step 1: the key, checked or made.
    async fn ready_key(&self, key: &str, region: &str, create: bool, tags: &BTreeMap<String, String>) -> Result<aws_side::Key> {
        let kms = self.aws.kms(region);
        let found = aws_side::describe_key(&kms, key).await?;
        if let Some(problem) = key_problem(found.as_ref(), key, region, create) {
            return Err(ProviderError::Refused(problem));
        }
        match found {
            Some(k) => Ok(k),
            None => aws_side::create_key(&kms, key, tags).await,
        }
    }

    /// Steps 1 to 7, each skipped where a killed run already did it.
    async fn converge(&self, ctx: &Ctx<'_>, d: &Desired) -> Result<Outputs> {
        let group = group_id(ctx)?;
        let (key, key_region, role_name, create) = Self::wanted(d);
        let tags: BTreeMap<String, String> = crate::providers::string_map(&d.write_only["tags"]);
        let iam = self.aws.iam();
        let key = self.ready_key(&key, &key_region, create, &tags).await?;
        // Step 2: Atlas' role, found again through the trust the IAM role already has.
        let existing = aws_side::get_role(&iam, &role_name).await?;
        let roles = self.atlas_roles(&group).await?;
        let trusted = existing.as_ref().and_then(|r| aws_side::trusted_external_id(&r.trust, ""));
        let authorized = existing.as_ref().and_then(|r| roles.iter().find(|a| str_of(a, "iamAssumedRoleArn") == r.arn));
        let by_external_id = trusted.as_ref().and_then(|x| roles.iter().find(|a| str_of(a, "atlasAssumedRoleExternalId") == x));
        let atlas_role = match authorized.or(by_external_id) {
            Some(r) => r.clone(),
            None => {
                self.atlas
                    .client
                    .post(&format!("{}/cloudProviderAccess", groups(&group)), V2023_01_01, json!({"providerName": "AWS"}))
                    .await?
            }
        };
        let role_id = str_of(&atlas_role, "roleId").to_string();
        let trust = aws_side::trust_policy(str_of(&atlas_role, "atlasAWSAccountArn"), str_of(&atlas_role, "atlasAssumedRoleExternalId"));
        // Steps 3 and 4: the IAM role Atlas assumes, and its grant on the key.
        let role = match existing {
            None => aws_side::create_role(&iam, &role_name, &trust, &tags).await?,
            Some(r) => {
                let ok = aws_side::trusted_external_id(&r.trust, str_of(&atlas_role, "atlasAWSAccountArn")).as_deref()
                    == Some(str_of(&atlas_role, "atlasAssumedRoleExternalId"));
                if !ok {
                    aws_side::update_trust(&iam, &role_name, &trust).await?;
                }
                r
            }
        };
        let role_arn = match role.arn.as_str() {
            "" => aws_side::get_role(&iam, &role_name).await?.map(|r| r.arn).unwrap_or_default(),
            a => a.to_string(),
        };
        aws_side::put_policy(&iam, &role_name, &aws_side::key_policy(&key.arn)).await?;
        // Step 5: the authorization, asked again while IAM catches up.
        let what = "the Atlas access role".to_string();
        if str_of(&atlas_role, "iamAssumedRoleArn") != role_arn {
            let path = format!("{}/cloudProviderAccess/{}", groups(&group), seg(&role_id));
            let body = json!({"providerName": "AWS", "iamAssumedRoleArn": role_arn});
            wait_for(ctx, &what, "waiting for IAM to let Atlas assume the role", Duration::from_secs(15), || async {
                match self.atlas.client.patch(&path, V2023_01_01, body.clone()).await {
                    Ok(_) => Ok(Look::Ready(())),
                    Err(e) if propagating(&e) => Ok(Look::NotYet(e.code().unwrap_or_default().to_string())),
                    Err(e) => Err(e.into()),
                }
            })
            .await?;
        }
        // Step 6: the project setting, every field (PN §2.1 step 5).
        let atlas_region = key_region.to_ascii_uppercase().replace('-', "_");
        let body = json!({"awsKms": {"enabled": true, "customerMasterKeyID": key.id, "region": atlas_region, "roleId": role_id}});
        let ear = Self::ear_path(&group);
        wait_for(ctx, "encryption at rest", "waiting for Atlas to use the key", Duration::from_secs(15), || async {
            match self.atlas.client.patch(&ear, V2023_01_01, body.clone()).await {
                Ok(_) => Ok(Look::Ready(())),
                Err(e) if propagating(&e) => Ok(Look::NotYet(e.code().unwrap_or_default().to_string())),
                Err(e) => Err(e.into()),
            }
        })
        .await?;
        // Step 7: Atlas can use the key.
        wait_for(ctx, "encryption at rest", "waiting for Atlas to validate the key", Duration::from_secs(15), || async {
            let live = self.atlas.client.get(&ear, V2023_01_01).await?;
            Ok(if live.pointer("/awsKms/valid") == Some(&json!(true)) { Look::Ready(()) } else { Look::NotYet("valid: false".into()) })
        })
        .await?;
        Ok(Outputs::from([
            ("key_arn".to_string(), key.arn.clone()),
            ("role_arn".to_string(), role_arn),
            ("role_id".to_string(), role_id),
            ("valid".to_string(), "true".to_string()),
            ("description".to_string(), format!("encryption at rest with KMS key {}", key.id)),
        ]))
    }
}

#[async_trait]
impl Provider for EncryptionProvider {
    fn kind(&self) -> Kind {
        Kind::AtlasEncryption
    }

    fn lane(&self) -> Lane {
        LANE
    }

    fn discover_after(&self) -> &'static [Kind] {
        &[Kind::AtlasProject]
    }

    /// After the clusters stop using it (they go to NONE in the same apply).
    fn delete_last(&self) -> bool {
        true
    }

    fn create_blocked(&self, d: &Desired) -> Option<String> {
        self.refused.lock().unwrap_or_else(|e| e.into_inner()).get(&d.address).cloned()
    }

    fn blocked(&self, d: &Desired, _o: &Observed, _changes: &[FieldChange]) -> Option<String> {
        self.create_blocked(d)
    }

    fn delete_notes(&self, o: &Observed) -> Vec<String> {
        let mut notes =
            vec!["the clusters go to Atlas' own keys first; then the project setting goes off and the role is removed".to_string()];
        if o.handle["created_key"].as_bool() == Some(true) {
            notes.push(
                "the KMS key poactl made is scheduled for deletion in 30 days (KMS' longest window), not deleted: `aws kms cancel-key-deletion` keeps it"
                    .to_string(),
            );
        }
        notes
    }

    async fn observe(&self, ctx: &Ctx<'_>, d: &Desired) -> Result<Option<Observed>> {
        let group = group_id(ctx)?;
        let (key, key_region, role_name, create) = Self::wanted(d);
        let found = self.find(&group, &role_name, &key, &key_region).await?;
        let problem = key_problem(found.key.as_ref(), &key, &key_region, create);
        let mut refused = self.refused.lock().unwrap_or_else(|e| e.into_inner());
        match problem {
            Some(p) => refused.insert(d.address.clone(), p),
            None => refused.remove(&d.address),
        };
        drop(refused);
        if !found.aws_kms()["enabled"].as_bool().unwrap_or(false) && found.role.is_none() {
            return Ok(None);
        }
        let mut o = found.observed(ctx, &d.address, &group, &key);
        o.handle["created_key"] = json!(create && found.key.is_some());
        Ok(Some(o))
    }

    /// The project's setting when the role Atlas assumes carries this environment's tags.
    async fn discover(&self, ctx: &Ctx<'_>) -> Result<Vec<(Address, Observed)>> {
        let Some(group) = scope_group_id(ctx) else { return Ok(Vec::new()) };
        let ear = self.atlas.client.get(&Self::ear_path(&group), V2023_01_01).await?;
        if ear.pointer("/awsKms/enabled") != Some(&json!(true)) {
            return Ok(Vec::new());
        }
        let roles = self.atlas_roles(&group).await?;
        let id = str_of(&ear["awsKms"], "roleId");
        let candidates: Vec<&Value> = roles
            .iter()
            .filter(|r| id.is_empty() || str_of(r, "roleId") == id)
            .filter(|r| !str_of(r, "iamAssumedRoleArn").is_empty())
            .collect();
        let iam = self.aws.iam();
        for r in candidates {
            let name = role_name_of(str_of(r, "iamAssumedRoleArn"));
            let Some(role) = aws_side::get_role(&iam, &name).await? else { continue };
            if role.tags.get(TAG_ENV).map(String::as_str) != Some(ctx.env) {
                continue;
            }
            let Some(address) = role.tags.get(TAG_ID).and_then(|t| Address::parse(t)).filter(|a| a.kind == Kind::AtlasEncryption) else {
                continue;
            };
            let region = str_of(&ear["awsKms"], "region").to_ascii_lowercase().replace('_', "-");
            let key_id = str_of(&ear["awsKms"], "customerMasterKeyID").to_string();
            let kms = self.aws.kms(&region);
            let key = aws_side::describe_key(&kms, &key_id).await?;
            let created = match &key {
                Some(k) => aws_side::key_tags(&kms, &k.id).await?.get(TAG_ENV).map(String::as_str) == Some(ctx.env),
                None => false,
            };
            let policy = aws_side::get_policy(&iam, &name).await?;
            let found = Found { ear: ear.clone(), atlas_roles: roles.clone(), role: Some(role), policy, key };
            let mut o = found.observed(ctx, &address, &group, &key_id);
            o.handle["key_region"] = json!(region);
            o.handle["created_key"] = json!(created);
            return Ok(vec![(address, o)]);
        }
        Ok(Vec::new())
    }

    async fn create(&self, ctx: &Ctx<'_>, d: &Desired) -> Result<Outputs> {
        self.converge(ctx, d).await
    }

    async fn update(&self, ctx: &Ctx<'_>, d: &Desired, _o: &Observed, _changes: &[FieldChange]) -> Result<Outputs> {
        self.converge(ctx, d).await
    }

    async fn delete(&self, ctx: &Ctx<'_>, address: &Address, o: &Observed) -> Result<()> {
        let group = match str_of(&o.handle, "groupId") {
            "" => group_id(ctx)?,
            g => g.to_string(),
        };
        // Atlas turns the project off only when no cluster uses the key (PN §2.3).
        let clusters =
            self.atlas.client.list(&format!("{}/{CLUSTERS}", groups(&group)), super::atlas::client::version::V2024_08_05).await?;
        let still: Vec<&str> =
            clusters.iter().filter(|c| str_of(c, "encryptionAtRestProvider") == "AWS").map(|c| str_of(c, "name")).collect();
        if !still.is_empty() {
            return Err(ProviderError::Refused(format!(
                "cluster(s) {} still encrypt with the key: set them to Atlas' keys (or remove them) before turning {address} off",
                still.join(", ")
            )));
        }
        self.atlas.client.patch(&Self::ear_path(&group), V2023_01_01, json!({"awsKms": {"enabled": false}})).await?;
        let role_id = str_of(&o.handle, "roleId");
        if !role_id.is_empty() {
            let path = format!("{}/cloudProviderAccess/AWS/{}", groups(&group), seg(role_id));
            self.atlas.client.delete_if_exists(&path, V2023_01_01).await?;
        }
        let role = str_of(&o.handle, "role");
        if !role.is_empty() && o.ownership == Ownership::Owned {
            aws_side::delete_role(&self.aws.iam(), role).await?;
        }
        let key_id = str_of(&o.handle, "key_id");
        if o.handle["created_key"].as_bool() == Some(true) && !key_id.is_empty() {
            let region = str_of(&o.handle, "key_region");
            aws_side::schedule_key_deletion(&self.aws.kms(region), key_id, &EncryptionSpec::created_alias(ctx.env)).await?;
        }
        Ok(())
    }
}
