//! Issue 35, item 2 through the CLI, against moto: `ci.github` makes GitHub's OIDC provider
//! when the account lacks it (and uses one that is there, whoever made it, never changing or
//! deleting it), and two roles whose trust names the repository's subjects: pull requests and
//! the branch for the plan role, the GitHub environments (or the branch) for the apply role.
//! moto verifies no token and enforces no condition or policy, so the tests assert the
//! documents poactl wrote.

use serde_json::Value;

use crate::support::{Moto, all_of, iam_document, moto_query, poactl_aws, spec_file};

const OIDC_HOST: &str = "token.actions.githubusercontent.com";

async fn iam(moto: &str, params: &[(&str, &str)]) -> String {
    moto_query(moto, "iam", "2010-05-08", params).await
}

fn spec(github: &str) -> String {
    format!("environment: cr\naws: {{ region: us-east-1 }}\nstorage:\n  buckets:\n    - {{ name: cr-uploads }}\nci:\n  github: {github}\n")
}

/// The role's trust and inline policy, parsed.
async fn role(moto: &str, name: &str) -> (Value, Value) {
    let role = iam(moto, &[("Action", "GetRole"), ("RoleName", name)]).await;
    let trust = iam_document(&all_of(&role, "AssumeRolePolicyDocument")[0]);
    let inline = iam(moto, &[("Action", "GetRolePolicy"), ("RoleName", name), ("PolicyName", "poactl-ci")]).await;
    (trust, iam_document(&all_of(&inline, "PolicyDocument")[0]))
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a.iter().filter_map(|s| s.as_str().map(String::from)).collect(),
        _ => Vec::new(),
    }
}

fn allowed_actions(policy: &Value) -> Vec<String> {
    policy["Statement"].as_array().unwrap().iter().filter(|s| s["Effect"] == "Allow").flat_map(|s| strings(&s["Action"])).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_provider_and_two_roles_are_made_with_the_repositorys_subjects_and_drift_on_their_trust() {
    let moto = Moto::start();
    let (_dir, path) = spec_file("cr", &spec("{ repository: poafix/marketplace, environments: [production] }"));
    let plan = poactl_aws(&moto.url, &["plan", "-e", &path]).await;
    plan.expect_code(0);
    assert!(plan.stdout.contains("+ ci.oidc_providers.github") && plan.stdout.contains("+ ci.roles.apply"), "{}", plan.stdout);
    poactl_aws(&moto.url, &["apply", "-e", &path, "--auto-approve"]).await.expect_code(0);

    let providers = all_of(&iam(&moto.url, &[("Action", "ListOpenIDConnectProviders")]).await, "Arn");
    let arn = format!("arn:aws:iam::123456789012:oidc-provider/{OIDC_HOST}");
    assert_eq!(providers, [arn.as_str()]);
    let provider = iam(&moto.url, &[("Action", "GetOpenIDConnectProvider"), ("OpenIDConnectProviderArn", &arn)]).await;
    assert!(all_of(&provider, "member").iter().any(|m| m == "sts.amazonaws.com") || provider.contains("sts.amazonaws.com"), "{provider}");

    let (plan_trust, plan_policy) = role(&moto.url, "cr-ci-plan").await;
    let s = &plan_trust["Statement"][0];
    assert_eq!(strings(&s["Principal"]["Federated"]), [arn.as_str()], "{plan_trust}");
    assert_eq!(strings(&s["Action"]), ["sts:AssumeRoleWithWebIdentity"], "{plan_trust}");
    assert_eq!(strings(&s["Condition"]["StringEquals"][format!("{OIDC_HOST}:aud")]), ["sts.amazonaws.com"], "{plan_trust}");
    let mut subjects = strings(&s["Condition"]["StringEquals"][format!("{OIDC_HOST}:sub")]);
    subjects.sort();
    assert_eq!(subjects, ["repo:poafix/marketplace:pull_request", "repo:poafix/marketplace:ref:refs/heads/main"], "{plan_trust}");
    let reads = allowed_actions(&plan_policy);
    let writes: Vec<&String> =
        reads.iter().filter(|a| ["Create", "Delete", "Put", "Update"].iter().any(|w| a.contains(&format!(":{w}")))).collect();
    assert!(writes.is_empty(), "the plan role can write: {writes:?}");
    assert!(reads.contains(&"s3:GetBucketTagging".to_string()), "{reads:?}");

    let (apply_trust, apply_policy) = role(&moto.url, "cr-ci-apply").await;
    let s = &apply_trust["Statement"][0];
    assert_eq!(
        strings(&s["Condition"]["StringEquals"][format!("{OIDC_HOST}:sub")]),
        ["repo:poafix/marketplace:environment:production"],
        "only the protected environment's jobs may apply: {apply_trust}"
    );
    assert!(allowed_actions(&apply_policy).contains(&"s3:CreateBucket".to_string()));
    let deny = apply_policy["Statement"].as_array().unwrap().iter().find(|s| s["Effect"] == "Deny").cloned().unwrap_or_default();
    assert_eq!(strings(&deny["Resource"]), [format!("arn:aws:iam::*:oidc-provider/{OIDC_HOST}")], "{apply_policy}");
    poactl_aws(&moto.url, &["drift", "-e", &path]).await.expect_code(0);

    // Someone widens the apply role's trust to every branch: drift, and apply puts it back.
    let widened = apply_trust.to_string().replace("repo:poafix/marketplace:environment:production", "repo:poafix/marketplace:*");
    iam(&moto.url, &[("Action", "UpdateAssumeRolePolicy"), ("RoleName", "cr-ci-apply"), ("PolicyDocument", &widened)]).await;
    let drift = poactl_aws(&moto.url, &["drift", "-e", &path]).await;
    drift.expect_code(2);
    assert!(drift.stdout.contains("ci.roles.apply") && drift.stdout.contains("trust"), "{}", drift.stdout);
    poactl_aws(&moto.url, &["apply", "-e", &path, "--auto-approve"]).await.expect_code(0);
    poactl_aws(&moto.url, &["drift", "-e", &path]).await.expect_code(0);

    // Without environments, the branch applies.
    std::fs::write(&path, spec("{ repository: poafix/marketplace, branch: release }")).unwrap();
    poactl_aws(&moto.url, &["apply", "-e", &path, "--auto-approve"]).await.expect_code(0);
    let (apply_trust, _) = role(&moto.url, "cr-ci-apply").await;
    assert_eq!(
        strings(&apply_trust["Statement"][0]["Condition"]["StringEquals"][format!("{OIDC_HOST}:sub")]),
        ["repo:poafix/marketplace:ref:refs/heads/release"],
        "{apply_trust}"
    );

    // destroy deletes the roles and leaves the account's provider.
    let destroy = poactl_aws(&moto.url, &["destroy", "-e", &path, "--auto-approve", "--allow-destroy"]).await;
    destroy.expect_code(0);
    assert!(!destroy.stdout.contains("ci.oidc_providers"), "{}", destroy.stdout);
    assert_eq!(all_of(&iam(&moto.url, &[("Action", "ListOpenIDConnectProviders")]).await, "Arn"), [arn]);
    let roles = iam(&moto.url, &[("Action", "ListRoles"), ("PathPrefix", "/poactl/")]).await;
    assert!(all_of(&roles, "RoleName").is_empty(), "{roles}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_someone_else_made_is_used_as_it_is_or_named_when_it_lacks_the_audience() {
    let moto = Moto::start();
    let url = format!("https://{OIDC_HOST}");
    let made = iam(&moto.url, &[("Action", "CreateOpenIDConnectProvider"), ("Url", &url), ("ClientIDList.member.1", "sigstore")]).await;
    let arn = all_of(&made, "OpenIDConnectProviderArn").pop().unwrap_or_else(|| panic!("{made}"));
    let (_dir, path) = spec_file("cr", &spec("{ repository: poafix/marketplace }"));

    // It lacks sts.amazonaws.com: a conflict that says how to add it, and nothing is changed.
    let plan = poactl_aws(&moto.url, &["plan", "-e", &path]).await;
    plan.expect_code(1);
    assert!(plan.all().contains("add-client-id-to-open-id-connect-provider") && plan.all().contains(&arn), "{}", plan.all());
    let provider = iam(&moto.url, &[("Action", "GetOpenIDConnectProvider"), ("OpenIDConnectProviderArn", &arn)]).await;
    assert!(!provider.contains("sts.amazonaws.com"), "{provider}");

    // Its owner makes it again with the audience (moto has no AddClientIDToOpenIDConnectProvider):
    // poactl uses it: no create, and the roles trust it.
    iam(&moto.url, &[("Action", "DeleteOpenIDConnectProvider"), ("OpenIDConnectProviderArn", &arn)]).await;
    let made = iam(
        &moto.url,
        &[
            ("Action", "CreateOpenIDConnectProvider"),
            ("Url", &url),
            ("ClientIDList.member.1", "sigstore"),
            ("ClientIDList.member.2", "sts.amazonaws.com"),
        ],
    )
    .await;
    assert_eq!(all_of(&made, "OpenIDConnectProviderArn"), [arn.as_str()], "{made}");
    let plan = poactl_aws(&moto.url, &["plan", "-e", &path]).await;
    plan.expect_code(0);
    assert!(!plan.stdout.contains("+ ci.oidc_providers"), "{}", plan.stdout);
    assert!(plan.stdout.contains("not made by poactl; used as it is"), "{}", plan.stdout);
    poactl_aws(&moto.url, &["apply", "-e", &path, "--auto-approve"]).await.expect_code(0);
    let (trust, _) = role(&moto.url, "cr-ci-plan").await;
    assert_eq!(strings(&trust["Statement"][0]["Principal"]["Federated"]), [arn.as_str()], "{trust}");
    let tags = iam(&moto.url, &[("Action", "ListOpenIDConnectProviderTags"), ("OpenIDConnectProviderArn", &arn)]).await;
    assert!(!tags.contains("poactl"), "the provider is not poactl's: it was not tagged: {tags}");
    poactl_aws(&moto.url, &["drift", "-e", &path]).await.expect_code(0);
}

#[test]
fn validate_refuses_a_wildcard_repository_branch_or_environment_and_clashing_role_names() {
    for (github, field) in [
        ("{ repository: \"poafix/*\" }", "ci.github.repository"),
        ("{ repository: poafix }", "ci.github.repository"),
        ("{ repository: poafix/app, branch: \"*\" }", "ci.github.branch"),
        ("{ repository: poafix/app, environments: [\"prod*\"] }", "ci.github.environments[0]"),
        ("{ repository: poafix/app, environments: [Production, production] }", "ci.github.environments[1]"),
        ("{ repository: poafix/app, roles: { plan: same, apply: same } }", "ci.github.roles"),
        ("{ repository: poafix/app, roles: { plan: \"a b\" } }", "ci.github.roles.plan"),
    ] {
        let (_dir, path) = spec_file("cr", &spec(github));
        let run = crate::support::Poactl::new(&["validate", "-e", &path]).run();
        run.expect_code(1);
        assert!(run.stderr.contains(field), "{github}: {}", run.stderr);
    }
}
