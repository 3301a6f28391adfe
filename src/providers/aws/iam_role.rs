//! The IAM roles poactl makes, each with a trust policy and one generated inline policy: the
//! app's own (`app.iam`, its policy from `spec::app_policy`, the one `audit` prints) and the two
//! CI roles (`ci.roles`, policies from `spec::ci_policy`). No access key is ever made: the app
//! and CI get temporary credentials from the role they run as.
//!
//! What the real service does that this relies on (IAM API reference):
//! - `CreateRole` takes `Tags` and a `Path`; poactl's roles live under `/poactl/`, so that
//!   `ListRoles` with that `PathPrefix` finds the environment's roles without reading every
//!   role of the account (ListRoles returns no tags: "Tags are not returned");
//! - `GetRole` and `GetRolePolicy` return their documents URL-encoded (RFC 3986) and not as
//!   written (key order, one-element lists): documents are compared by meaning
//!   (`policy::normalize`), as terraform-provider-aws does with awspolicyequivalence;
//! - a role cannot be deleted while it has policies: its inline policy goes first
//!   (`DeleteConflict` otherwise); a managed policy someone attached by hand is not poactl's,
//!   and is named in the error instead of being detached;
//! - a role trusted by a web-identity provider is assumed with `sts:AssumeRoleWithWebIdentity`,
//!   and the condition keys are the provider's host with `:sub` and `:aud` (IAM User Guide,
//!   "Creating a role for web identity or OIDC federation").
//!
//! What moto does not copy: it enforces no policy, so tests assert the documents poactl wrote.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Value, json};

use super::Aws;
use super::ec2::{Node, Params, Query, refusal_code};
use super::policy;
use crate::plan::FieldChange;
use crate::providers::{Ctx, Desired, Lane, Observed, Outputs, Provider, ProviderError, Result, all_tags, ownership_from_tags};
use crate::resource::{Address, Kind};
use crate::spec::LoadedSpec;
use crate::spec::model::{AppIamSpec, TrustSpec};

/// IAM's control plane is global and slow to take writes.
const LANE: Lane = Lane { service: "iam", limit: 2 };

/// The path of every role poactl makes for an app.
pub const PATH: &str = "/poactl/";

/// One kind of role: the app's, or CI's.
pub struct RoleProvider {
    aws: Arc<Aws>,
    kind: Kind,
    /// The inline policy's name.
    policy_name: &'static str,
    /// What the role is for, in its IAM description.
    purpose: &'static str,
}

impl RoleProvider {
    pub fn app(aws: Arc<Aws>) -> Self {
        RoleProvider { aws, kind: Kind::AppRole, policy_name: "poactl-app", purpose: "The app's role" }
    }

    pub fn ci(aws: Arc<Aws>) -> Self {
        RoleProvider { aws, kind: Kind::CiRole, policy_name: "poactl-ci", purpose: "CI's role" }
    }

    /// Whether the spec declares every role of this kind there can be: then nothing is left
    /// for `discover` to find, and the listing is skipped.
    fn all_declared(&self, loaded: &LoadedSpec) -> bool {
        match self.kind {
            Kind::AppRole => loaded.spec.app.as_ref().is_some_and(|a| a.iam.is_some()),
            _ => loaded.spec.ci.as_ref().is_some_and(|c| c.github.is_some()),
        }
    }
}

/// The trust policy: one statement per service set, one per web-identity provider.
pub fn trust_policy(r: &AppIamSpec) -> Value {
    let services: Vec<&str> = r
        .trusted_by
        .iter()
        .filter_map(|t| match t {
            TrustSpec::Service(s) => Some(s.as_str()),
            TrustSpec::Oidc(_) => None,
        })
        .collect();
    let mut statements = Vec::new();
    if !services.is_empty() {
        statements.push(json!({"Effect": "Allow", "Principal": {"Service": services}, "Action": "sts:AssumeRole"}));
    }
    for t in &r.trusted_by {
        let TrustSpec::Oidc(o) = t else { continue };
        let host = o.oidc.split_once(":oidc-provider/").map(|(_, h)| h).unwrap_or(&o.oidc);
        let op = if o.subject.contains('*') { "StringLike" } else { "StringEquals" };
        let mut condition = json!({op: {format!("{host}:sub"): o.subject}});
        let aud = o.audience.clone().unwrap_or_else(|| "sts.amazonaws.com".to_string());
        condition[op][format!("{host}:aud")] = json!(aud);
        statements.push(json!({"Effect": "Allow", "Principal": {"Federated": o.oidc}, "Action": "sts:AssumeRoleWithWebIdentity", "Condition": condition}));
    }
    json!({"Version": "2012-10-17", "Statement": statements})
}

pub fn desired(loaded: &LoadedSpec, r: &AppIamSpec, address: Address) -> Desired {
    role_desired(loaded, &r.role, &trust_policy(r), &crate::spec::app_policy::app_policy(loaded), address)
}

/// A role's desired attributes: every role kind has the same shape.
pub fn role_desired(loaded: &LoadedSpec, name: &str, trust: &Value, inline: &Value, address: Address) -> Desired {
    let attrs = json!({
        "name": name,
        "path": PATH,
        "trust": policy::normalize(trust),
        "policy": policy::normalize(inline),
        "tags": all_tags(loaded, &BTreeMap::new(), &address),
    });
    Desired::new(address, attrs)
}

fn tags_of(node: &Node) -> BTreeMap<String, String> {
    node.members("Tags").map(|t| (t.text_of("Key").to_string(), t.text_of("Value").to_string())).collect()
}

impl RoleProvider {
    fn iam(&self) -> Query {
        self.aws.iam()
    }

    async fn read(&self, ctx: &Ctx<'_>, address: &Address, name: &str) -> Result<Option<Observed>> {
        let iam = self.iam();
        let role = match iam.call("GetRole", Params::new().set("RoleName", name), true).await {
            Ok(a) => a.child("GetRoleResult").and_then(|r| r.child("Role")).cloned().unwrap_or_default(),
            Err(e) if refusal_code(&e) == Some("NoSuchEntity") => return Ok(None),
            Err(e) => return Err(e),
        };
        let inline = match iam.call("GetRolePolicy", Params::new().set("RoleName", name).set("PolicyName", self.policy_name), true).await {
            Ok(a) => a.child("GetRolePolicyResult").map(|r| policy::normalize(&policy::document(r.text_of("PolicyDocument")))),
            Err(e) if refusal_code(&e) == Some("NoSuchEntity") => None,
            Err(e) => return Err(e),
        };
        let tags = tags_of(&role);
        let arn = role.text_of("Arn").to_string();
        let mut attrs = json!({
            "name": role.text_of("RoleName"),
            "path": role.text_of("Path"),
            "trust": policy::normalize(&policy::document(role.text_of("AssumeRolePolicyDocument"))),
            "policy": inline,
            "tags": tags,
        });
        crate::providers::keep_owned_tags(&mut attrs, ctx.loaded);
        Ok(Some(Observed {
            id: name.to_string(),
            attrs,
            outputs: Outputs::from([
                ("arn".to_string(), arn.clone()),
                ("name".to_string(), name.to_string()),
                ("description".to_string(), format!("IAM role {arn}")),
            ]),
            ownership: ownership_from_tags(&tags, ctx.env, address),
            handle: Value::Null,
        }))
    }

    async fn put_policy(&self, iam: &Query, name: &str, doc: &Value) -> Result<()> {
        let p = Params::new().set("RoleName", name).set("PolicyName", self.policy_name).set("PolicyDocument", doc.to_string());
        iam.call("PutRolePolicy", p, true).await?;
        Ok(())
    }
}

#[async_trait]
impl Provider for RoleProvider {
    fn kind(&self) -> Kind {
        self.kind
    }

    fn lane(&self) -> Lane {
        LANE
    }

    fn replace_paths(&self) -> &'static [&'static str] {
        &["name", "path"]
    }

    async fn observe(&self, ctx: &Ctx<'_>, d: &Desired) -> Result<Option<Observed>> {
        self.read(ctx, &d.address, d.attrs["name"].as_str().unwrap_or_default()).await
    }

    /// The environment's roles of this kind under `/poactl/` that the spec no longer declares,
    /// each at the address its `poactl-id` tag names.
    async fn discover(&self, ctx: &Ctx<'_>) -> Result<Vec<(Address, Observed)>> {
        if self.all_declared(ctx.loaded) {
            return Ok(Vec::new());
        }
        let iam = self.iam();
        let mut names = Vec::new();
        let mut marker = String::new();
        loop {
            let mut p = Params::new().set("PathPrefix", PATH);
            if !marker.is_empty() {
                p = p.set("Marker", marker.clone());
            }
            let answer = iam.call("ListRoles", p, true).await?;
            let result = answer.child("ListRolesResult").cloned().unwrap_or_default();
            names.extend(result.members("Roles").map(|r| r.text_of("RoleName").to_string()));
            marker = if result.text_of("IsTruncated") == "true" { result.text_of("Marker").to_string() } else { String::new() };
            if marker.is_empty() {
                break;
            }
        }
        let mut out = Vec::new();
        for name in names {
            // ListRoles returns no tags: GetRole does, and says whose role it is.
            let role = match iam.call("GetRole", Params::new().set("RoleName", &name), true).await {
                Ok(a) => a.child("GetRoleResult").and_then(|r| r.child("Role")).cloned().unwrap_or_default(),
                Err(e) if refusal_code(&e) == Some("NoSuchEntity") => continue,
                Err(e) => return Err(e),
            };
            let tags = tags_of(&role);
            let Some(address) = crate::providers::ownership_tag(&tags, "id").and_then(Address::parse) else { continue };
            if address.kind != self.kind || !crate::providers::managed_in_env(&tags, ctx.env) {
                continue;
            }
            if let Some(o) = self.read(ctx, &address, &name).await?
                && o.ownership == crate::providers::Ownership::Owned
            {
                out.push((address, o));
            }
        }
        Ok(out)
    }

    async fn create(&self, ctx: &Ctx<'_>, d: &Desired) -> Result<Outputs> {
        let a = &d.attrs;
        let name = a["name"].as_str().unwrap_or_default();
        let iam = self.iam();
        let p = Params::new()
            .set("RoleName", name)
            .set("Path", PATH)
            .set("AssumeRolePolicyDocument", a["trust"].to_string())
            .set("Description", format!("{} for poactl environment {}", self.purpose, ctx.env))
            .member_tags(&crate::providers::string_map(&a["tags"]));
        match iam.call("CreateRole", p, false).await {
            Ok(_) => {}
            // A create whose answer was lost, sent again: the role is there if it is ours.
            Err(e) if refusal_code(&e) == Some("EntityAlreadyExists") => {
                let live = self.read(ctx, &d.address, name).await?;
                if !live.is_some_and(|o| o.ownership == crate::providers::Ownership::Owned) {
                    return Err(ProviderError::Refused(format!(
                        "an IAM role named {name} already exists without this environment's tags: adopt it with `apply --adopt`, or pick another name"
                    )));
                }
                iam.call("UpdateAssumeRolePolicy", Params::new().set("RoleName", name).set("PolicyDocument", a["trust"].to_string()), true)
                    .await?;
            }
            Err(e) => return Err(e),
        }
        self.put_policy(&iam, name, &a["policy"]).await?;
        Ok(self.read(ctx, &d.address, name).await?.map(|o| o.outputs).unwrap_or_default())
    }

    async fn update(&self, ctx: &Ctx<'_>, d: &Desired, o: &Observed, changes: &[FieldChange]) -> Result<Outputs> {
        let a = &d.attrs;
        let name = o.id.as_str();
        let iam = self.iam();
        let touched = |attr: &str| crate::plan::touches(changes, attr);
        if touched("tags") {
            let (add, remove) = crate::providers::tag_changes(&a["tags"], &o.attrs["tags"]);
            if !add.is_empty() {
                iam.call("TagRole", Params::new().set("RoleName", name).member_tags(&add), true).await?;
            }
            if !remove.is_empty() {
                iam.call("UntagRole", Params::new().set("RoleName", name).list("TagKeys.member", &remove), true).await?;
            }
        }
        if touched("trust") {
            iam.call("UpdateAssumeRolePolicy", Params::new().set("RoleName", name).set("PolicyDocument", a["trust"].to_string()), true)
                .await?;
        }
        if touched("policy") {
            self.put_policy(&iam, name, &a["policy"]).await?;
        }
        Ok(self.read(ctx, &d.address, name).await?.map(|o| o.outputs).unwrap_or_default())
    }

    async fn delete(&self, _ctx: &Ctx<'_>, _address: &Address, o: &Observed) -> Result<()> {
        let iam = self.iam();
        let name = o.id.as_str();
        match iam.call("DeleteRolePolicy", Params::new().set("RoleName", name).set("PolicyName", self.policy_name), true).await {
            Ok(_) => {}
            Err(e) if refusal_code(&e) == Some("NoSuchEntity") => {}
            Err(e) => return Err(e),
        }
        match iam.call("DeleteRole", Params::new().set("RoleName", name), true).await {
            Ok(_) => Ok(()),
            Err(e) if refusal_code(&e) == Some("NoSuchEntity") => Ok(()),
            Err(e) if refusal_code(&e) == Some("DeleteConflict") => Err(ProviderError::Refused(format!(
                "IAM keeps the role {name}: it still has policies or instance profiles someone else attached; detach them, then run again"
            ))),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::model::OidcTrustSpec;

    #[test]
    fn the_trust_names_services_and_web_identities_with_their_subject() {
        let r = AppIamSpec {
            role: "app".into(),
            trusted_by: vec![
                TrustSpec::Service("ecs-tasks.amazonaws.com".into()),
                TrustSpec::Oidc(OidcTrustSpec {
                    oidc: "arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/ABC".into(),
                    subject: "system:serviceaccount:poafix:api".into(),
                    audience: None,
                }),
                TrustSpec::Oidc(OidcTrustSpec {
                    oidc: "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com".into(),
                    subject: "repo:poafix/app:*".into(),
                    audience: None,
                }),
            ],
        };
        let t = trust_policy(&r);
        let s = policy::statements(&t);
        assert_eq!(s[0]["Principal"]["Service"], json!(["ecs-tasks.amazonaws.com"]));
        assert_eq!(s[1]["Action"], "sts:AssumeRoleWithWebIdentity");
        assert_eq!(s[1]["Condition"]["StringEquals"]["oidc.eks.us-east-1.amazonaws.com/id/ABC:sub"], "system:serviceaccount:poafix:api");
        assert_eq!(s[1]["Condition"]["StringEquals"]["oidc.eks.us-east-1.amazonaws.com/id/ABC:aud"], "sts.amazonaws.com");
        assert_eq!(s[2]["Condition"]["StringLike"]["token.actions.githubusercontent.com:sub"], "repo:poafix/app:*");
    }
}
