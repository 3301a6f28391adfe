//! CI's identity (`ci.github`): GitHub's OIDC provider in the account, and the two roles
//! (`ci.roles.plan`, `ci.roles.apply`) jobs assume with their token, so that no workflow holds
//! static AWS keys (GitHub Docs, "Configuring OpenID Connect in Amazon Web Services").
//!
//! What the real service does that this relies on (IAM API reference):
//! - IAM keeps one OIDC provider per URL (`CreateOpenIDConnectProvider` answers
//!   `EntityAlreadyExists` for a second), so the provider is the account's, shared by every
//!   environment: poactl makes it when missing, uses one that is there whoever made it, and
//!   never deletes it (`Kind::kept_on_destroy`); another environment's CI may trust it;
//! - `GetOpenIDConnectProvider` answers the URL without its `https://` (terraform-provider-aws
//!   suppresses that difference, internal/service/iam/openid_connect_provider.go);
//! - the thumbprint list is optional: for GitHub's issuer IAM verifies tokens through its own
//!   trusted root CAs, and terraform-provider-aws documents a provider "Without A Thumbprint"
//!   (website/docs/r/iam_openid_connect_provider.html.markdown);
//! - the role's trust is the federated principal with `sts:AssumeRoleWithWebIdentity`, and the
//!   condition keys are `token.actions.githubusercontent.com:aud` (`sts.amazonaws.com`, what
//!   `aws-actions/configure-aws-credentials` asks for) and `...:sub` (the job's subject).
//!
//! What moto does not copy: it verifies no token and enforces no condition or policy, so the
//! tests assert the documents poactl wrote.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Value, json};

use super::Aws;
use super::ec2::{Params, refusal_code};
use crate::plan::FieldChange;
use crate::providers::{Ctx, Desired, Lane, Observed, Outputs, Ownership, Provider, ProviderError, Result};
use crate::resource::{Address, Kind, TAG_ID, TAG_MANAGED};
use crate::spec::LoadedSpec;
use crate::spec::model::{CiRole, GITHUB_OIDC_HOST, GithubCiSpec};

const LANE: Lane = Lane { service: "iam", limit: 2 };

/// The audience GitHub's tokens carry for AWS.
pub const AUDIENCE: &str = "sts.amazonaws.com";

pub fn oidc_desired(_gh: &GithubCiSpec, address: Address) -> Desired {
    Desired::new(address, json!({"url": GITHUB_OIDC_HOST, "audience": AUDIENCE}))
}

/// The trust of one CI role: GitHub's tokens for the repository, with the subjects the role is
/// for (`GithubCiSpec::subjects`). The provider's ARN is a reference, so the role waits for it.
pub fn trust_policy(gh: &GithubCiSpec, role: CiRole) -> Value {
    let subjects = gh.subjects(role);
    let op = if subjects.iter().any(|s| s.contains('*')) { "StringLike" } else { "StringEquals" };
    let mut condition = json!({"StringEquals": {format!("{GITHUB_OIDC_HOST}:aud"): AUDIENCE}});
    condition[op][format!("{GITHUB_OIDC_HOST}:sub")] = json!(subjects);
    json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow",
        "Principal": {"Federated": format!("${{{}.{}.arn}}", Kind::OidcProvider, crate::spec::GITHUB_OIDC)},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": condition,
    }]})
}

pub fn role_desired(loaded: &LoadedSpec, gh: &GithubCiSpec, role: CiRole, address: Address) -> Desired {
    let policy = crate::spec::ci_policy::ci_policy(loaded, role);
    super::iam_role::role_desired(loaded, &gh.role_name(&loaded.env, role), &trust_policy(gh, role), &policy, address)
}

pub struct OidcProviderProvider(pub Arc<Aws>);

impl OidcProviderProvider {
    /// The account's provider for GitHub's issuer: its ARN ends with the host.
    async fn find(&self) -> Result<Option<String>> {
        let answer = self.0.iam().call("ListOpenIDConnectProviders", Params::new(), true).await?;
        let result = answer.child("ListOpenIDConnectProvidersResult").cloned().unwrap_or_default();
        let suffix = format!(":oidc-provider/{GITHUB_OIDC_HOST}");
        Ok(result.members("OpenIDConnectProviderList").map(|m| m.text_of("Arn").to_string()).find(|arn| arn.ends_with(&suffix)))
    }

    async fn read(&self, arn: &str) -> Result<Option<Observed>> {
        let p = Params::new().set("OpenIDConnectProviderArn", arn);
        let answer = match self.0.iam().call("GetOpenIDConnectProvider", p, true).await {
            Ok(a) => a,
            Err(e) if refusal_code(&e) == Some("NoSuchEntity") => return Ok(None),
            Err(e) => return Err(e),
        };
        let r = answer.child("GetOpenIDConnectProviderResult").cloned().unwrap_or_default();
        let audiences: Vec<String> = r.members("ClientIDList").map(|m| m.text.clone()).collect();
        let tags: BTreeMap<String, String> =
            r.members("Tags").map(|t| (t.text_of("Key").to_string(), t.text_of("Value").to_string())).collect();
        let url = r.text_of("Url").trim_start_matches("https://").trim_end_matches('/').to_string();
        // The audience poactl's roles need, if the provider accepts it; else what it accepts.
        let audience = if audiences.iter().any(|a| a == AUDIENCE) { AUDIENCE.to_string() } else { audiences.join(",") };
        Ok(Some(Observed {
            id: arn.to_string(),
            attrs: json!({"url": url, "audience": audience}),
            outputs: Outputs::from([
                ("arn".to_string(), arn.to_string()),
                ("url".to_string(), format!("https://{url}")),
                ("description".to_string(), format!("IAM OIDC provider {arn}")),
            ]),
            // The account's, whoever made it: used by every environment, never deleted.
            ownership: Ownership::NaturalKey,
            handle: json!({"made_by_poactl": crate::providers::ownership_tag(&tags, "managed") == Some("true")}),
        }))
    }
}

#[async_trait]
impl Provider for OidcProviderProvider {
    fn kind(&self) -> Kind {
        Kind::OidcProvider
    }

    fn lane(&self) -> Lane {
        LANE
    }

    async fn observe(&self, _ctx: &Ctx<'_>, _d: &Desired) -> Result<Option<Observed>> {
        match self.find().await? {
            Some(arn) => self.read(&arn).await,
            None => Ok(None),
        }
    }

    /// Never listed for pruning: the provider is the account's, not an environment's.
    async fn discover(&self, _ctx: &Ctx<'_>) -> Result<Vec<(Address, Observed)>> {
        Ok(Vec::new())
    }

    /// A provider someone else made is used as it is: poactl does not change it.
    fn blocked(&self, _d: &Desired, o: &Observed, _changes: &[FieldChange]) -> Option<String> {
        (o.handle["made_by_poactl"] != json!(true)).then(|| {
            format!(
                "the account's GitHub OIDC provider {} does not accept the audience {AUDIENCE}, and poactl did not make it, so it leaves it alone: add the audience with `aws iam add-client-id-to-open-id-connect-provider --open-id-connect-provider-arn {} --client-id {AUDIENCE}`",
                o.id, o.id
            )
        })
    }

    fn notes(&self, _d: &Desired, o: &Observed, _ctx: &Ctx<'_>) -> Vec<String> {
        vec![format!(
            "the account's GitHub OIDC provider{}: shared by every environment's CI, never deleted by poactl",
            if o.handle["made_by_poactl"] == json!(true) { "" } else { " (not made by poactl; used as it is)" }
        )]
    }

    async fn create(&self, _ctx: &Ctx<'_>, d: &Desired) -> Result<Outputs> {
        // Marked as poactl's, but for no environment: every environment's CI trusts it.
        let tags = BTreeMap::from([(TAG_MANAGED.to_string(), "true".to_string()), (TAG_ID.to_string(), d.address.to_string())]);
        let p = Params::new().set("Url", format!("https://{GITHUB_OIDC_HOST}")).list("ClientIDList.member", &[AUDIENCE]).member_tags(&tags);
        let arn = match self.0.iam().call("CreateOpenIDConnectProvider", p, false).await {
            Ok(a) => {
                a.child("CreateOpenIDConnectProviderResult").map(|r| r.text_of("OpenIDConnectProviderArn").to_string()).unwrap_or_default()
            }
            // Made meanwhile by another environment's apply, or a create whose answer was lost.
            Err(e) if refusal_code(&e) == Some("EntityAlreadyExists") => self.find().await?.unwrap_or_default(),
            Err(e) => return Err(e),
        };
        Ok(self.read(&arn).await?.map(|o| o.outputs).unwrap_or_default())
    }

    async fn update(&self, _ctx: &Ctx<'_>, _d: &Desired, o: &Observed, _changes: &[FieldChange]) -> Result<Outputs> {
        let p = Params::new().set("OpenIDConnectProviderArn", &o.id).set("ClientID", AUDIENCE);
        self.0.iam().call("AddClientIDToOpenIDConnectProvider", p, true).await?;
        Ok(self.read(&o.id).await?.map(|o| o.outputs).unwrap_or_default())
    }

    async fn delete(&self, _ctx: &Ctx<'_>, _address: &Address, o: &Observed) -> Result<()> {
        Err(ProviderError::Refused(format!(
            "poactl does not delete the account's GitHub OIDC provider {}: other environments' CI may trust it; delete it by hand when nothing does",
            o.id
        )))
    }
}
