//! The sandbox's customer key management: cloud provider access roles and the project's
//! encryption-at-rest setting, and the rule that clusters use the key only after the project
//! does. Sources: `openapi-v2.yaml` (../shared/atlas/openapi-v2.yaml) and "PN"
//! (../shared/atlas/PRIVATE-NETWORKING.md §2). Error codes neither records are named for what
//! they say, and marked so.
//!
//! What real Atlas does that this does not copy: it assumes the IAM role in AWS. Here the
//! authorization only checks the ARN's shape, and IAM's eventual consistency is played by
//! refusing the first `assume_role_refusals` authorizations; the tests assert the role and
//! its policies in moto themselves.

use serde_json::{Value, json};

use super::state::{Project, State, now_iso};
use super::{Answer, ApiErr, Req, project};

/// The account Atlas assumes roles from, as the sandbox plays it (the same account it plays
/// Atlas' side of a peering in).
const ATLAS_ACCOUNT_ARN: &str = "arn:aws:iam::111122223333:root";

fn str_of<'v>(v: &'v Value, k: &str) -> &'v str {
    v.get(k).and_then(Value::as_str).unwrap_or_default()
}

fn role_not_found(id: &str) -> ApiErr {
    // Code not recorded; the status is the spec's (authorizeGroupCloudProviderAccessRole: 404).
    ApiErr::new(404, "CLOUD_PROVIDER_ACCESS_ROLE_NOT_FOUND", format!("No cloud provider access role with ID {id} exists.")).params(&[id])
}

/// The setting as GET answers it (EncryptionAtRest): `valid` is Atlas' own finding.
fn ear_doc(p: &Project, invalid: bool) -> Value {
    let mut kms = p.aws_kms.clone().unwrap_or(json!({"enabled": false}));
    let enabled = kms["enabled"] == json!(true);
    kms["valid"] = json!(enabled && !invalid);
    json!({"awsKms": kms, "azureKeyVault": {"enabled": false}, "googleCloudKms": {"enabled": false}})
}

pub(super) fn uses_key(p: &Project) -> bool {
    p.aws_kms.as_ref().is_some_and(|k| k["enabled"] == json!(true))
}

/// "You must configure customer key management for the Atlas project before enabling it on
/// clusters" (https://www.mongodb.com/docs/atlas/security-aws-kms/, PN §2.1 step 7).
pub(super) fn check_cluster(p: &Project, body: &serde_json::Map<String, Value>) -> Result<(), ApiErr> {
    if body.get("encryptionAtRestProvider") == Some(&json!("AWS")) && !uses_key(p) {
        // Code not recorded.
        return Err(ApiErr::new(
            400,
            "ENCRYPTION_AT_REST_NOT_CONFIGURED",
            "Customer key management must be configured for the project before a cluster uses it.",
        )
        .params(&["encryptionAtRestProvider"]));
    }
    Ok(())
}

/// The routes, `path` relative to `/api/atlas/v2/groups`.
pub(super) fn route(st: &mut State, method: &str, path: &str, req: &Req) -> Option<Answer> {
    let group = req.param("groupId").to_string();
    let invalid = st.kms_invalid;
    let answer = match (method, path) {
        ("GET", "/{groupId}/cloudProviderAccess") => project(st, &group)
            .map(|p| (200, Some(json!({"awsIamRoles": p.cloud_roles, "azureServicePrincipals": [], "gcpServiceAccounts": []})))),
        ("POST", "/{groupId}/cloudProviderAccess") => create_role(st, req, &group),
        ("GET", "/{groupId}/cloudProviderAccess/{roleId}") => {
            let id = req.param("roleId").to_string();
            project(st, &group).and_then(|p| {
                p.cloud_roles.iter().find(|r| str_of(r, "roleId") == id).cloned().map(|r| (200, Some(r))).ok_or_else(|| role_not_found(&id))
            })
        }
        ("PATCH", "/{groupId}/cloudProviderAccess/{roleId}") => authorize(st, req, &group),
        ("DELETE", "/{groupId}/cloudProviderAccess/{cloudProvider}/{roleId}") => {
            let id = req.param("roleId").to_string();
            project(st, &group).and_then(|p| {
                if uses_key(p) && p.aws_kms.as_ref().is_some_and(|k| str_of(k, "roleId") == id) {
                    // The code Atlas answers for a role still in use is unverified (PN §2.3).
                    return Err(
                        ApiErr::new(409, "CLOUD_PROVIDER_ACCESS_ROLE_IN_USE", "The role is in use by encryption at rest.").params(&[&id])
                    );
                }
                let before = p.cloud_roles.len();
                p.cloud_roles.retain(|r| str_of(r, "roleId") != id);
                if p.cloud_roles.len() == before { Err(role_not_found(&id)) } else { Ok((204, None)) }
            })
        }
        ("GET", "/{groupId}/encryptionAtRest") => project(st, &group).map(|p| (200, Some(ear_doc(p, invalid)))),
        ("PATCH", "/{groupId}/encryptionAtRest") => patch_ear(st, req, &group),
        _ => return None,
    };
    Some(answer)
}

/// POST answers a new role with Atlas' account and an external id (PN §2.1 step 1,
/// CloudProviderAccessAWSIAMRole); it is not authorized yet, so it has no
/// `iamAssumedRoleArn`.
fn create_role(st: &mut State, req: &Req, group: &str) -> Answer {
    let b = req.body_obj()?.clone();
    if b.get("providerName") != Some(&json!("AWS")) {
        return Err(ApiErr::new(400, "INVALID_ATTRIBUTE", "Invalid attribute providerName specified.").params(&["providerName"]));
    }
    let id = st.new_id();
    let external = format!("{}-{}", &st.new_id()[..8], &st.new_id()[8..20]);
    let doc = json!({
        "providerName": "AWS",
        "roleId": id,
        "atlasAWSAccountArn": ATLAS_ACCOUNT_ARN,
        "atlasAssumedRoleExternalId": external,
        "createdDate": now_iso(),
        "featureUsages": [],
    });
    project(st, group)?.cloud_roles.push(doc.clone());
    Ok((200, Some(doc)))
}

/// PATCH authorizes the role for an IAM role ARN (CloudProviderAccessAWSIAMRoleRequestUpdate).
/// Atlas assumes the role at once, and IAM may not know it yet: CANNOT_ASSUME_ROLE, which TF
/// retries (`resource_cloud_provider_access_authorization.go:315-330`, PN §2.1 step 4).
fn authorize(st: &mut State, req: &Req, group: &str) -> Answer {
    let b = req.body_obj()?.clone();
    let id = req.param("roleId").to_string();
    let arn = b.get("iamAssumedRoleArn").and_then(Value::as_str).unwrap_or_default().to_string();
    let refuse = st.assume_role_refusals > 0;
    let p = project(st, group)?;
    let role = p.cloud_roles.iter_mut().find(|r| str_of(r, "roleId") == id).ok_or_else(|| role_not_found(&id))?;
    let shaped = arn
        .strip_prefix("arn:aws:iam::")
        .and_then(|r| r.split_once(":role/"))
        .is_some_and(|(acct, name)| acct.len() == 12 && acct.chars().all(|c| c.is_ascii_digit()) && !name.is_empty());
    if !shaped {
        return Err(ApiErr::new(400, "INVALID_ATTRIBUTE", "Invalid attribute iamAssumedRoleArn specified.").params(&["iamAssumedRoleArn"]));
    }
    if refuse {
        st.assume_role_refusals -= 1;
        return Err(ApiErr::new(400, "CANNOT_ASSUME_ROLE", format!("Atlas cannot assume the role {arn}.")).params(&[&arn]));
    }
    role["iamAssumedRoleArn"] = json!(arn);
    role["authorizedDate"] = json!(now_iso());
    Ok((200, Some(role.clone())))
}

/// PATCH sets the project's key. The first time it needs every `awsKms` field, later only the
/// changed ones (PN §2.1 step 5, from the spec's updateGroupEncryptionAtRest). The role must
/// be authorized; and the project is turned off only when no cluster uses the key (TF #566,
/// #4235: both in one apply fails).
fn patch_ear(st: &mut State, req: &Req, group: &str) -> Answer {
    let b = req.body_obj()?.clone();
    let invalid = st.kms_invalid;
    let p = project(st, group)?;
    let Some(change) = b.get("awsKms").and_then(Value::as_object) else {
        return Ok((200, Some(ear_doc(p, invalid))));
    };
    let mut kms = p.aws_kms.clone().unwrap_or(json!({"enabled": false}));
    let first = !uses_key(p) && change.get("enabled") == Some(&json!(true));
    if first {
        for field in ["customerMasterKeyID", "region", "roleId"] {
            if change.get(field).and_then(Value::as_str).is_none_or(str::is_empty) {
                return Err(ApiErr::new(400, "INVALID_ATTRIBUTE", format!("Invalid attribute {field} specified.")).params(&[field]));
            }
        }
    }
    for (k, v) in change {
        kms[k.as_str()] = v.clone();
    }
    if kms["enabled"] == json!(true) {
        let role = str_of(&kms, "roleId");
        let authorized = p.cloud_roles.iter().any(|r| str_of(r, "roleId") == role && !str_of(r, "iamAssumedRoleArn").is_empty());
        if !authorized {
            return Err(ApiErr::new(
                400,
                "CLOUD_PROVIDER_ACCESS_ROLE_NOT_AUTHORIZED",
                format!("The cloud provider access role {role} is not authorized."),
            )
            .params(&[role]));
        }
    } else if p.clusters.values().any(|c| c.doc["encryptionAtRestProvider"] == json!("AWS")) {
        // Code not recorded.
        return Err(ApiErr::new(
            409,
            "ENCRYPTION_AT_REST_IN_USE_BY_CLUSTERS",
            "Disable encryption at rest on every cluster before disabling it for the project.",
        ));
    }
    p.aws_kms = Some(kms);
    Ok((200, Some(ear_doc(p, invalid))))
}
