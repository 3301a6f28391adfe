//! `ci.github`, checked offline. The rules and their sources:
//! - a GitHub owner is 1 to 39 letters, digits and single hyphens, not at either end; a
//!   repository name is 1 to 100 of letters, digits, `.`, `-` and `_` (GitHub Docs, "Creating
//!   a new repository"; the owner's rule is GitHub's sign-up form's);
//! - the subjects are matched literally or with `StringLike` wildcards (IAM User Guide, "IAM
//!   JSON policy elements: Condition operators"): a `*` in the repository, branch or
//!   environment would let other repositories' or branches' jobs assume the roles, so none is
//!   taken;
//! - a branch is a git ref name (git-check-ref-format: no space, `~^:?*[\`, `..` or `@{`, no
//!   `/` at either end);
//! - a GitHub environment's name is at most 255 characters (GitHub Docs, "Managing
//!   environments for deployment");
//! - IAM role names are 1 to 64 of `\w+=,.@-` (IAM API reference, CreateRole, RoleName).

use super::Checker;
use crate::spec::model::{CiRole, CiSpec};
use crate::spec::yaml::PathSeg;

fn github_owner_ok(s: &str) -> bool {
    (1..=39).contains(&s.len())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !s.starts_with('-')
        && !s.ends_with('-')
        && !s.contains("--")
}

fn github_repo_ok(s: &str) -> bool {
    (1..=100).contains(&s.len()) && s.chars().all(|c| c.is_ascii_alphanumeric() || ".-_".contains(c)) && s != "." && s != ".."
}

fn ref_name_ok(s: &str) -> bool {
    !s.is_empty()
        && !s.chars().any(|c| c.is_whitespace() || c.is_control() || "~^:?*[\\".contains(c))
        && !s.contains("..")
        && !s.contains("@{")
        && !s.starts_with('/')
        && !s.ends_with('/')
        && !s.ends_with(".lock")
        && !s.ends_with('.')
}

pub(super) fn check_ci(c: &mut Checker, ci: &CiSpec) {
    let Some(gh) = &ci.github else {
        c.err(path!("ci"), "`ci` names no CI system", "add `github: { repository: OWNER/REPO }`, or remove `ci`");
        return;
    };
    let at = |f: &str| path!("ci", "github", f);
    let repo_ok = gh.repository.split_once('/').is_some_and(|(owner, repo)| github_owner_ok(owner) && github_repo_ok(repo));
    if !repo_ok {
        c.err(
            at("repository"),
            format!("`{}` is not a GitHub repository", gh.repository),
            "OWNER/REPO as GitHub spells it, with no wildcard, e.g. poafix/marketplace",
        );
    }
    if !ref_name_ok(&gh.branch) {
        c.err(at("branch"), format!("`{}` is not a branch name (no wildcard either)", gh.branch), "e.g. branch: main");
    }
    let mut seen = std::collections::BTreeSet::new();
    for (i, e) in gh.environments.iter().enumerate() {
        let here = path!("ci", "github", "environments", i);
        if e.trim().is_empty() || e.len() > 255 || e.contains('*') || e.contains(':') {
            c.err(here, format!("`{e}` is not a GitHub environment name"), "at most 255 characters, no `*` or `:`, e.g. production");
        } else if !seen.insert(e.to_lowercase()) {
            // GitHub environment names are case-insensitive.
            c.err(here, format!("`{e}` is listed twice"), "list each environment once");
        }
    }
    let allowed = |ch: char| ch.is_ascii_alphanumeric() || "_+=,.@-".contains(ch);
    let names: Vec<String> = CiRole::ALL.iter().map(|r| gh.role_name(&c.loaded.env, *r)).collect();
    for (role, name) in CiRole::ALL.iter().zip(&names) {
        if name.is_empty() || name.len() > 64 || !name.chars().all(allowed) {
            c.err(
                path!("ci", "github", "roles", role.as_str()),
                format!("`{name}` is not an IAM role name"),
                "1-64 of letters, digits and _+=,.@-; set ci.github.roles.plan and .apply when the environment's name is long",
            );
        }
    }
    if names[0] == names[1] {
        c.err(
            path!("ci", "github", "roles"),
            format!("both roles are named `{}`", names[0]),
            "the plan role and the apply role need two names",
        );
    }
    if let Some(app) = c.loaded.spec.app.as_ref().and_then(|a| a.iam.as_ref())
        && names.contains(&app.role)
    {
        c.err(
            path!("ci", "github", "roles"),
            format!("`{}` is also the app's role (app.iam.role)", app.role),
            "give CI's roles their own names",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_as_github_and_git_take_them() {
        for (owner, ok) in
            [("poafix", true), ("a-b", true), ("-a", false), ("a--b", false), ("a".repeat(40).as_str(), false), ("o*", false)]
        {
            assert_eq!(github_owner_ok(owner), ok, "{owner}");
        }
        for (repo, ok) in [("marketplace", true), ("my.repo_x-1", true), ("..", false), ("*", false), ("", false)] {
            assert_eq!(github_repo_ok(repo), ok, "{repo}");
        }
        for (branch, ok) in
            [("main", true), ("release/1.2", true), ("feat*", false), ("a..b", false), ("/x", false), ("x.lock", false), ("a b", false)]
        {
            assert_eq!(ref_name_ok(branch), ok, "{branch}");
        }
    }
}
