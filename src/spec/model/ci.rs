//! `ci:`: the identities CI runs poactl as, so that no pipeline holds static AWS keys.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct CiSpec {
    /// GitHub Actions, through GitHub's OIDC provider.
    #[serde(default)]
    pub github: Option<GithubCiSpec>,
}

/// Two roles GitHub Actions jobs of one repository assume with their OIDC token: one that can
/// only read (plan, drift, cost, check), trusted for pull requests and the branch; one that
/// can apply, trusted only for the protected branch or the GitHub environments named here.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GithubCiSpec {
    /// `owner/repo`, as GitHub spells it.
    pub repository: String,
    /// The branch whose jobs may apply when no `environments` are named, and whose scheduled
    /// drift jobs may read: `main` by default.
    #[serde(default = "default_branch")]
    pub branch: String,
    /// GitHub environments (with their protection rules) whose jobs may apply. A job that names
    /// an environment carries `environment:NAME` as its subject instead of its branch, so when
    /// these are given, the apply role trusts them and not the branch.
    #[serde(default)]
    pub environments: Vec<String>,
    /// The roles' names: `ENV-ci-plan` and `ENV-ci-apply` by default.
    #[serde(default)]
    pub roles: CiRoleNames,
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct CiRoleNames {
    #[serde(default)]
    pub plan: Option<String>,
    #[serde(default)]
    pub apply: Option<String>,
}

fn default_branch() -> String {
    "main".to_string()
}

/// GitHub's OIDC issuer: tokens' `iss`, and the IAM provider's URL.
pub const GITHUB_OIDC_HOST: &str = "token.actions.githubusercontent.com";

/// The two CI roles, as addresses (`ci.roles.plan`, `ci.roles.apply`) name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CiRole {
    Plan,
    Apply,
}

impl CiRole {
    pub const ALL: [CiRole; 2] = [CiRole::Plan, CiRole::Apply];

    pub fn as_str(self) -> &'static str {
        match self {
            CiRole::Plan => "plan",
            CiRole::Apply => "apply",
        }
    }

    pub fn parse(s: &str) -> Option<CiRole> {
        CiRole::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl GithubCiSpec {
    /// The role's name, given or `ENV-ci-ROLE`.
    pub fn role_name(&self, env: &str, role: CiRole) -> String {
        let given = match role {
            CiRole::Plan => &self.roles.plan,
            CiRole::Apply => &self.roles.apply,
        };
        given.clone().unwrap_or_else(|| format!("{env}-ci-{}", role.as_str()))
    }

    /// The `sub` claims a job's token carries when it may assume the role (GitHub Docs,
    /// "About security hardening with OpenID Connect", example subject claims):
    /// `repo:OWNER/REPO:pull_request` for a pull request's jobs, `repo:OWNER/REPO:ref:refs/heads/BRANCH`
    /// for a branch's, `repo:OWNER/REPO:environment:NAME` for a job that names an environment.
    pub fn subjects(&self, role: CiRole) -> Vec<String> {
        let repo = &self.repository;
        let branch = format!("repo:{repo}:ref:refs/heads/{}", self.branch);
        match role {
            CiRole::Plan => vec![format!("repo:{repo}:pull_request"), branch],
            CiRole::Apply if self.environments.is_empty() => vec![branch],
            CiRole::Apply => self.environments.iter().map(|e| format!("repo:{repo}:environment:{e}")).collect(),
        }
    }
}
