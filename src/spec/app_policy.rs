//! The least-privilege IAM policy the app needs, generated from the spec: `audit` prints it,
//! and `app.iam` gives it to the app's role.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::spec::LoadedSpec;

/// The IAM policy the app needs for its uploads, scoped to the buckets it uses (every bucket
/// but those with `app_access: false`): read, write and delete objects, abort a multipart
/// upload it started (S3 User Guide, "Multipart upload API and permissions": AbortMultipartUpload
/// needs `s3:AbortMultipartUpload`, the others `s3:PutObject`), list the bucket. Nothing else
/// (no bucket settings, no other service), so the app never runs with admin keys.
///
/// KMS keys: an IAM policy names a key by its key ARN; an alias in `Resource` matches nothing
/// (AWS KMS Developer Guide, "Using aliases in IAM policies"). A key ARN is used as it is; a
/// bare key id becomes a key ARN in the bucket's region (the account left as `*`: key ids are
/// unique); an alias is granted through the `kms:ResourceAliases` condition key ("Use aliases
/// to control access to KMS keys"), which matches whatever key the alias points at.
pub fn app_policy(loaded: &LoadedSpec) -> Value {
    let used: Vec<&crate::spec::model::BucketSpec> =
        loaded.spec.storage.iter().flat_map(|s| s.buckets.iter()).filter(|b| b.app_access).collect();
    let buckets: BTreeSet<&str> = used.iter().map(|b| b.name.as_str()).collect();
    let mut key_arns: BTreeSet<String> = BTreeSet::new();
    let mut aliases: BTreeSet<String> = BTreeSet::new();
    for b in &used {
        let Some(key) = b.kms_key.as_deref() else { continue };
        let region = b.region.clone().unwrap_or_else(|| loaded.spec.aws_region());
        match kms_key_form(key) {
            KmsKey::Arn => {
                key_arns.insert(key.to_string());
            }
            KmsKey::Id => {
                key_arns.insert(format!("arn:aws:kms:{region}:*:key/{key}"));
            }
            KmsKey::Alias(name) => {
                aliases.insert(name);
            }
        }
    }
    let mut statements = vec![
        json!({"Sid": "AppObjects", "Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"], "Resource": buckets.iter().map(|b| format!("arn:aws:s3:::{b}/*")).collect::<Vec<_>>()}),
        json!({"Sid": "AppList", "Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": buckets.iter().map(|b| format!("arn:aws:s3:::{b}")).collect::<Vec<_>>()}),
    ];
    if !key_arns.is_empty() {
        statements
            .push(json!({"Sid": "AppKms", "Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Resource": key_arns}));
    }
    if !aliases.is_empty() {
        statements.push(json!({"Sid": "AppKmsByAlias", "Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Resource": "arn:aws:kms:*:*:key/*",
            "Condition": {"ForAnyValue:StringEquals": {"kms:ResourceAliases": aliases}}}));
    }
    json!({"Version": "2012-10-17", "Statement": statements})
}

/// How a spec names a KMS key.
enum KmsKey {
    Arn,
    Id,
    /// `alias/NAME`, from `alias/NAME` or an alias ARN.
    Alias(String),
}

fn kms_key_form(key: &str) -> KmsKey {
    if let Some(rest) = key.strip_prefix("arn:") {
        return match rest.split_once(":alias/") {
            Some((_, name)) => KmsKey::Alias(format!("alias/{name}")),
            None => KmsKey::Arn,
        };
    }
    if key.starts_with("alias/") { KmsKey::Alias(key.to_string()) } else { KmsKey::Id }
}
