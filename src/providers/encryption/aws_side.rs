//! The AWS half of customer key management: the key (KMS JSON API) and the role Atlas
//! assumes with its inline grant (IAM Query API). IAM returns policy documents URL-encoded
//! (IAM API reference, GetRole and GetRolePolicy: "The policy document is URL-encoded
//! compliant with RFC 3986") and may reorder or reformat them, so they are compared as parsed
//! JSON, statement by statement, never as text.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::providers::ProviderError;
use crate::providers::aws::ec2::{Node, Params, Query, refusal_code};
use crate::providers::aws::kms::{self, Kms};
use crate::providers::aws::policy::{statements, strings};

/// The inline policy's name on the role.
pub(super) const POLICY_NAME: &str = "poactl-atlas-kms";

/// What Atlas needs on the key (../shared/atlas/PRIVATE-NETWORKING.md §2.1 step 3, from
/// terraform-provider-mongodbatlas `modules/encryption/main.tf`).
pub(super) const KEY_ACTIONS: [&str; 4] = ["kms:Encrypt", "kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey*"];

#[derive(Debug, Clone)]
pub(super) struct Key {
    pub(super) id: String,
    pub(super) arn: String,
    pub(super) spec: String,
    pub(super) state: String,
}

#[derive(Debug, Clone)]
pub(super) struct Role {
    pub(super) arn: String,
    pub(super) trust: Value,
    pub(super) tags: BTreeMap<String, String>,
}

/// A key by id, ARN or alias; `None` when KMS does not know it.
pub(super) async fn describe_key(kms: &Kms, key: &str) -> Result<Option<Key>, ProviderError> {
    match kms.call("DescribeKey", &json!({"KeyId": key})).await {
        Ok(v) => {
            let m = &v["KeyMetadata"];
            let s = |k: &str| m.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
            let spec = match s("KeySpec") {
                x if x.is_empty() => s("CustomerMasterKeySpec"),
                x => x,
            };
            Ok(Some(Key { id: s("KeyId"), arn: s("Arn"), spec, state: s("KeyState") }))
        }
        Err(e) if kms::refusal_code(&e) == Some("NotFoundException") => Ok(None),
        Err(e) => Err(e),
    }
}

/// Makes the key poactl owns, with its tags and the alias it is found by.
pub(super) async fn create_key(kms: &Kms, alias: &str, tags: &BTreeMap<String, String>) -> Result<Key, ProviderError> {
    let tags: Vec<Value> = tags.iter().map(|(k, v)| json!({"TagKey": k, "TagValue": v})).collect();
    let body = json!({
        "Description": format!("Atlas encryption at rest ({alias}), made by poactl"),
        "KeySpec": "SYMMETRIC_DEFAULT",
        "KeyUsage": "ENCRYPT_DECRYPT",
        "Tags": tags,
    });
    let made = kms.call("CreateKey", &body).await?;
    let id = made.pointer("/KeyMetadata/KeyId").and_then(Value::as_str).unwrap_or_default().to_string();
    kms.call("CreateAlias", &json!({"AliasName": alias, "TargetKeyId": id})).await?;
    describe_key(kms, &id).await?.ok_or_else(|| ProviderError::Api(format!("KMS made the key {id} but does not describe it")))
}

pub(super) async fn key_tags(kms: &Kms, key_id: &str) -> Result<BTreeMap<String, String>, ProviderError> {
    let v = kms.call("ListResourceTags", &json!({"KeyId": key_id})).await?;
    Ok(v["Tags"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| (t["TagKey"].as_str().unwrap_or_default().to_string(), t["TagValue"].as_str().unwrap_or_default().to_string()))
        .collect())
}

/// Schedules the key's deletion with KMS' longest window (30 days: ScheduleKeyDeletion,
/// PendingWindowInDays 7-30), and removes its alias.
pub(super) async fn schedule_key_deletion(kms: &Kms, key_id: &str, alias: &str) -> Result<(), ProviderError> {
    match kms.call("DeleteAlias", &json!({"AliasName": alias})).await {
        Ok(_) => {}
        Err(e) if kms::refusal_code(&e) == Some("NotFoundException") => {}
        Err(e) => return Err(e),
    }
    match kms.call("ScheduleKeyDeletion", &json!({"KeyId": key_id, "PendingWindowInDays": 30})).await {
        Ok(_) => Ok(()),
        // Already pending deletion.
        Err(e) if kms::refusal_code(&e) == Some("KMSInvalidStateException") => Ok(()),
        Err(e) => Err(e),
    }
}

/// A policy document as IAM returns it (URL-encoded JSON), parsed.
pub(super) fn policy_document(text: &str) -> Value {
    crate::providers::aws::policy::document(text)
}

fn role_of(node: &Node) -> Role {
    let tags = node
        .child("Tags")
        .into_iter()
        .flat_map(|t| t.children.iter().filter(|m| m.name == "member"))
        .map(|m| (m.text_of("Key").to_string(), m.text_of("Value").to_string()))
        .collect();
    Role { arn: node.text_of("Arn").to_string(), trust: policy_document(node.text_of("AssumeRolePolicyDocument")), tags }
}

pub(super) async fn get_role(iam: &Query, name: &str) -> Result<Option<Role>, ProviderError> {
    match iam.call("GetRole", Params::new().set("RoleName", name), true).await {
        Ok(answer) => Ok(answer.child("GetRoleResult").and_then(|r| r.child("Role")).map(role_of)),
        Err(e) if refusal_code(&e) == Some("NoSuchEntity") => Ok(None),
        Err(e) => Err(e),
    }
}

/// The trust policy letting Atlas' account assume the role with its external id
/// (../shared/atlas/PRIVATE-NETWORKING.md §2.1 step 2, from terraform-provider-mongodbatlas
/// `examples/mongodbatlas_cloud_provider_access/aws/aws-roles.tf`).
pub(super) fn trust_policy(atlas_account_arn: &str, external_id: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"AWS": atlas_account_arn},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"sts:ExternalId": external_id}},
        }],
    })
}

pub(super) fn key_policy(key_arn: &str) -> Value {
    json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": KEY_ACTIONS, "Resource": key_arn}]})
}

/// A string or a list of strings, as IAM allows either.
/// The external id a trust policy lets Atlas use, if it trusts `atlas_account_arn` (any, when
/// empty).
pub(super) fn trusted_external_id(trust: &Value, atlas_account_arn: &str) -> Option<String> {
    statements(trust).into_iter().find_map(|s| {
        let allows = s["Effect"] == "Allow" && strings(&s["Action"]).iter().any(|a| a == "sts:AssumeRole");
        let principal = strings(&s["Principal"]["AWS"]);
        let ours = atlas_account_arn.is_empty() || principal.iter().any(|p| p == atlas_account_arn);
        (allows && ours).then(|| strings(&s["Condition"]["StringEquals"]["sts:ExternalId"]).into_iter().next()).flatten()
    })
}

/// Whether a policy allows every action Atlas needs on the key.
pub(super) fn grants_key(policy: &Value, key_arn: &str) -> bool {
    KEY_ACTIONS.iter().all(|needed| {
        statements(policy).iter().any(|s| {
            s["Effect"] == "Allow"
                && strings(&s["Action"]).iter().any(|a| a == needed || a == "kms:*")
                && strings(&s["Resource"]).iter().any(|r| r == key_arn || r == "*")
        })
    })
}

pub(super) async fn create_role(iam: &Query, name: &str, trust: &Value, tags: &BTreeMap<String, String>) -> Result<Role, ProviderError> {
    let mut p = Params::new()
        .set("RoleName", name)
        .set("AssumeRolePolicyDocument", trust.to_string())
        .set("Description", "Lets MongoDB Atlas use the project's KMS key (made by poactl)");
    for (i, (k, v)) in tags.iter().enumerate() {
        p = p.set(format!("Tags.member.{}.Key", i + 1), k.clone()).set(format!("Tags.member.{}.Value", i + 1), v.clone());
    }
    match iam.call("CreateRole", p, false).await {
        Ok(answer) => Ok(answer.child("CreateRoleResult").and_then(|r| r.child("Role")).map(role_of).unwrap_or(Role {
            arn: String::new(),
            trust: trust.clone(),
            tags: tags.clone(),
        })),
        // Made meanwhile, or by a run whose answer was lost: read it back.
        Err(e) if refusal_code(&e) == Some("EntityAlreadyExists") => {
            get_role(iam, name).await?.ok_or_else(|| ProviderError::Api(format!("IAM says the role {name} exists but does not show it")))
        }
        Err(e) => Err(e),
    }
}

pub(super) async fn update_trust(iam: &Query, name: &str, trust: &Value) -> Result<(), ProviderError> {
    iam.call("UpdateAssumeRolePolicy", Params::new().set("RoleName", name).set("PolicyDocument", trust.to_string()), true).await?;
    Ok(())
}

pub(super) async fn get_policy(iam: &Query, role: &str) -> Result<Option<Value>, ProviderError> {
    match iam.call("GetRolePolicy", Params::new().set("RoleName", role).set("PolicyName", POLICY_NAME), true).await {
        Ok(answer) => Ok(answer.child("GetRolePolicyResult").map(|r| policy_document(r.text_of("PolicyDocument")))),
        Err(e) if refusal_code(&e) == Some("NoSuchEntity") => Ok(None),
        Err(e) => Err(e),
    }
}

pub(super) async fn put_policy(iam: &Query, role: &str, policy: &Value) -> Result<(), ProviderError> {
    let p = Params::new().set("RoleName", role).set("PolicyName", POLICY_NAME).set("PolicyDocument", policy.to_string());
    iam.call("PutRolePolicy", p, true).await?;
    Ok(())
}

/// Removes the inline policy and the role; either already gone is fine.
pub(super) async fn delete_role(iam: &Query, role: &str) -> Result<(), ProviderError> {
    for (action, p) in [
        ("DeleteRolePolicy", Params::new().set("RoleName", role).set("PolicyName", POLICY_NAME)),
        ("DeleteRole", Params::new().set("RoleName", role)),
    ] {
        match iam.call(action, p, true).await {
            Ok(_) => {}
            Err(e) if refusal_code(&e) == Some("NoSuchEntity") => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_compare_as_iam_may_return_them() {
        let arn = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        let ours = key_policy(arn);
        assert!(grants_key(&ours, arn));
        // URL-encoded, one statement as an object, actions reordered and a wildcard.
        let encoded: String = form_urlencoded::byte_serialize(
            json!({"Statement": {"Resource": [arn], "Action": ["kms:GenerateDataKey*", "kms:DescribeKey", "kms:Decrypt", "kms:Encrypt"], "Effect": "Allow"}, "Version": "2012-10-17"})
                .to_string()
                .as_bytes(),
        )
        .collect();
        assert!(grants_key(&policy_document(&encoded), arn));
        assert!(grants_key(&json!({"Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}]}), arn));
        let missing = json!({"Statement": [{"Effect": "Allow", "Action": ["kms:Encrypt", "kms:Decrypt"], "Resource": arn}]});
        assert!(!grants_key(&missing, arn));
        assert!(!grants_key(&ours, "arn:aws:kms:us-east-1:111122223333:key/other"));
        let trust = trust_policy("arn:aws:iam::536727724300:root", "ext-1");
        assert_eq!(trusted_external_id(&trust, "arn:aws:iam::536727724300:root").as_deref(), Some("ext-1"));
        assert_eq!(trusted_external_id(&trust, "arn:aws:iam::999999999999:root"), None);
    }
}
