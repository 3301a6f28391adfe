//! Customer key management (issue 31, item 1) through the CLI, against the Atlas sandbox and
//! moto: one apply runs the chain across both clouds while IAM "catches up" (the sandbox
//! refuses the first authorizations, as Atlas does while it cannot assume a new role), the
//! documents poactl wrote are read back from moto, drift covers each link, and turning it
//! off is one apply the other way, with the key poactl made scheduled for deletion.

use serde_json::{Value, json};

use crate::support::{TwoClouds, all_of, iam_document, moto_kms, moto_query, spec_file};

const ORG: &str = "0123456789abcdef01234567";

fn spec(encryption: &str) -> String {
    format!(
        "environment: kms\naws: {{ region: us-east-1 }}\natlas:\n  org_id: \"{ORG}\"\n  project: kms-project\n  clusters:\n    - {{ name: main, tier: M10, provider: AWS, region: US_EAST_1 }}\n{encryption}"
    )
}

const ON: &str = "  encryption: { kms_key: { create: true }, region: us-east-1 }\n";

fn writes(log: &[Value], from: usize) -> Vec<String> {
    log[from..]
        .iter()
        .filter(|e| e["method"] != "GET")
        .map(|e| format!("{} {} {}", e["method"].as_str().unwrap_or(""), e["operation"].as_str().unwrap_or(""), e["status"]))
        .collect()
}

fn first(ops: &[String], needle: &str) -> usize {
    ops.iter().position(|o| o.contains(needle)).unwrap_or_else(|| panic!("no {needle} in {ops:#?}"))
}

async fn iam(w: &TwoClouds, params: &[(&str, &str)]) -> String {
    moto_query(&w.moto.url, "iam", "2010-05-08", params).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_key_chain_is_made_in_one_apply_through_the_iam_race_then_turned_off_in_one_apply() {
    let w = TwoClouds::start().await;
    // Atlas cannot assume the new role twice before IAM has it everywhere.
    w.sandbox.control("config", json!({"assume_role_refusals": 2})).await;
    let (_dir, path) = spec_file("kms", &spec(ON));
    let run = w.run(&["apply", "-e", &path, "--auto-approve", "-q"]).await;
    run.expect_code(0);
    let log = w.sandbox.log().await;
    let ops = writes(&log, 0);
    let refused: Vec<&String> =
        ops.iter().filter(|o| o.contains("PATCH /api/atlas/v2/groups/{groupId}/cloudProviderAccess/{roleId} 400")).collect();
    assert_eq!(refused.len(), 2, "{ops:#?}");
    let authorized = first(&ops, "PATCH /api/atlas/v2/groups/{groupId}/cloudProviderAccess/{roleId} 200");
    let setting = first(&ops, "PATCH /api/atlas/v2/groups/{groupId}/encryptionAtRest 200");
    let cluster = first(&ops, "POST /api/atlas/v2/groups/{groupId}/clusters 201");
    assert!(authorized < setting && setting < cluster, "role, project, then the cluster: {ops:#?}");
    let post = log.iter().find(|e| e["method"] == "POST" && e["operation"] == "/api/atlas/v2/groups/{groupId}/clusters").unwrap();
    assert_eq!(post["request"]["encryptionAtRestProvider"], "AWS");
    let violations = crate::openapi::violations(&log);
    assert!(violations.is_empty(), "{}", violations.join("\n"));

    // What poactl wrote in AWS: the key (symmetric, tagged, found by its alias), the role's
    // trust (Atlas' account and this project's external id) and its grant on that key only.
    let key = moto_kms(&w.moto.url, "DescribeKey", json!({"KeyId": "alias/poactl-kms-atlas"})).await;
    let key_arn = key["KeyMetadata"]["Arn"].as_str().expect("the key").to_string();
    assert_eq!(key["KeyMetadata"]["KeySpec"], "SYMMETRIC_DEFAULT");
    let tags = moto_kms(&w.moto.url, "ListResourceTags", json!({"KeyId": key["KeyMetadata"]["KeyId"]})).await;
    assert!(tags.to_string().contains("atlas.encryption.kms-project"), "{tags}");
    let role = iam(&w, &[("Action", "GetRole"), ("RoleName", "poactl-kms-atlas-kms")]).await;
    let trust = iam_document(&all_of(&role, "AssumeRolePolicyDocument")[0]);
    let group = w.sandbox.group_id("kms-project").await;
    let (_, roles) = w.sandbox.api("GET", &format!("/api/atlas/v2/groups/{group}/cloudProviderAccess"), "2023-01-01", None).await;
    let atlas_role = &roles["awsIamRoles"][0];
    assert_eq!(trust["Statement"][0]["Principal"]["AWS"], atlas_role["atlasAWSAccountArn"]);
    assert_eq!(trust["Statement"][0]["Condition"]["StringEquals"]["sts:ExternalId"], atlas_role["atlasAssumedRoleExternalId"]);
    let policy = iam(&w, &[("Action", "GetRolePolicy"), ("RoleName", "poactl-kms-atlas-kms"), ("PolicyName", "poactl-atlas-kms")]).await;
    let policy = iam_document(&all_of(&policy, "PolicyDocument")[0]);
    assert_eq!(policy["Statement"][0]["Resource"], key_arn.as_str());
    assert_eq!(policy["Statement"][0]["Action"], json!(["kms:Encrypt", "kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey*"]));
    w.run(&["plan", "-e", &path, "--detailed-exitcode"]).await.expect_code(0);

    // Drift: a cluster back on Atlas' keys, and a narrowed grant.
    let cluster_path = format!("/api/atlas/v2/groups/{group}/clusters/main");
    w.sandbox.api("PATCH", &cluster_path, "2024-10-23", Some(json!({"encryptionAtRestProvider": "NONE"}))).await;
    let narrowed =
        json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:Encrypt", "Resource": key_arn}]}).to_string();
    iam(
        &w,
        &[
            ("Action", "PutRolePolicy"),
            ("RoleName", "poactl-kms-atlas-kms"),
            ("PolicyName", "poactl-atlas-kms"),
            ("PolicyDocument", &narrowed),
        ],
    )
    .await;
    w.sandbox.control("config", json!({"kms_invalid": true})).await;
    let drift = w.run(&["drift", "-e", &path]).await;
    drift.expect_code(2);
    for want in ["encryption_at_rest", "role_grants_key", "valid"] {
        assert!(drift.stdout.contains(want), "{want}: {}", drift.stdout);
    }
    w.sandbox.control("config", json!({"kms_invalid": false})).await;
    w.run(&["apply", "-e", &path, "--auto-approve", "-q"]).await.expect_code(0);
    w.run(&["plan", "-e", &path, "--detailed-exitcode"]).await.expect_code(0);

    // Off, in one apply: the cluster to NONE (and IDLE), the project off, the role
    // deauthorized and removed, the key's deletion scheduled.
    std::fs::write(&path, spec("")).unwrap();
    let plan = w.run(&["plan", "-e", &path, "--prune"]).await;
    assert!(
        plan.stdout.contains("atlas.encryption.kms-project") && plan.stdout.contains("scheduled for deletion in 30 days"),
        "{}",
        plan.stdout
    );
    w.run(&["apply", "-e", &path, "--prune", "--auto-approve", "-q"]).await.expect_code(1);
    let before = w.sandbox.log().await.len();
    w.run(&["apply", "-e", &path, "--prune", "--auto-approve", "--allow-destroy", "-q"]).await.expect_code(0);
    let ops = writes(&w.sandbox.log().await, before);
    let to_none = first(&ops, "PATCH /api/atlas/v2/groups/{groupId}/clusters/{clusterName} 200");
    let off = first(&ops, "PATCH /api/atlas/v2/groups/{groupId}/encryptionAtRest 200");
    let deauthorized = first(&ops, "DELETE /api/atlas/v2/groups/{groupId}/cloudProviderAccess/{cloudProvider}/{roleId} 204");
    assert!(to_none < off && off < deauthorized, "{ops:#?}");
    let role = iam(&w, &[("Action", "GetRole"), ("RoleName", "poactl-kms-atlas-kms")]).await;
    assert!(role.contains("NoSuchEntity"), "{role}");
    let key = moto_kms(&w.moto.url, "DescribeKey", json!({"KeyId": key_arn})).await;
    assert_eq!(key["KeyMetadata"]["KeyState"], "PendingDeletion", "{key}");
    w.run(&["plan", "-e", &path, "--detailed-exitcode"]).await.expect_code(0);
}

/// An existing key: checked at plan time (an asymmetric one is a conflict that sends
/// nothing), named by alias in the spec and by id in Atlas without drift, and swapped for
/// another key in place; a changed role name is a change too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_key_is_checked_compared_by_id_and_swapped_in_place() {
    let w = TwoClouds::start().await;
    let moto = w.moto.url.clone();
    let make = |spec: &'static str| {
        let moto = moto.clone();
        async move {
            let usage = if spec == "SYMMETRIC_DEFAULT" { "ENCRYPT_DECRYPT" } else { "SIGN_VERIFY" };
            let k = moto_kms(&moto, "CreateKey", json!({"KeySpec": spec, "KeyUsage": usage})).await;
            k["KeyMetadata"]["KeyId"].as_str().unwrap().to_string()
        }
    };
    let signing = make("RSA_2048").await;
    let (_dir, path) = spec_file("kms", &spec(&format!("  encryption: {{ kms_key: {signing}, region: us-east-1 }}\n")));
    // In a project that exists, the key is read at plan time (in a new one, apply checks it
    // before any cluster uses it).
    w.run(&["apply", "-e", &path, "--target", "atlas.project", "--auto-approve", "-q"]).await.expect_code(0);
    let reads = w.sandbox.log().await.len();
    let plan = w.run(&["plan", "-e", &path]).await;
    plan.expect_code(1);
    assert!(plan.stdout.contains("Atlas encrypts with a symmetric key"), "{}", plan.stdout);
    assert!(w.sandbox.log().await[reads..].iter().all(|e| e["method"] == "GET"), "nothing is sent");

    let first = make("SYMMETRIC_DEFAULT").await;
    moto_kms(&w.moto.url, "CreateAlias", json!({"AliasName": "alias/poafix-kms", "TargetKeyId": first})).await;
    std::fs::write(&path, spec("  encryption: { kms_key: alias/poafix-kms, region: us-east-1 }\n")).unwrap();
    w.run(&["apply", "-e", &path, "--auto-approve", "-q"]).await.expect_code(0);
    let group = w.sandbox.group_id("kms-project").await;
    let ear_path = format!("/api/atlas/v2/groups/{group}/encryptionAtRest");
    let (_, ear) = w.sandbox.api("GET", &ear_path, "2023-01-01", None).await;
    assert_eq!(ear["awsKms"]["customerMasterKeyID"], first.as_str(), "Atlas keeps the key id");
    w.run(&["plan", "-e", &path, "--detailed-exitcode"]).await.expect_code(0);

    let second = make("SYMMETRIC_DEFAULT").await;
    std::fs::write(&path, spec(&format!("  encryption: {{ kms_key: {second}, region: us-east-1, role: poafix-atlas-kms }}\n"))).unwrap();
    let plan = w.run(&["plan", "-e", &path]).await;
    plan.expect_code(0);
    for want in ["key:", "role:"] {
        assert!(plan.stdout.contains(want), "{want}: {}", plan.stdout);
    }
    w.run(&["apply", "-e", &path, "--auto-approve", "-q"]).await.expect_code(0);
    let (_, ear) = w.sandbox.api("GET", &ear_path, "2023-01-01", None).await;
    assert_eq!(ear["awsKms"]["customerMasterKeyID"], second.as_str());
    let policy = iam(&w, &[("Action", "GetRolePolicy"), ("RoleName", "poafix-atlas-kms"), ("PolicyName", "poactl-atlas-kms")]).await;
    assert!(iam_document(&all_of(&policy, "PolicyDocument")[0]).to_string().contains(&second), "{policy}");
    w.run(&["plan", "-e", &path, "--detailed-exitcode"]).await.expect_code(0);
}
