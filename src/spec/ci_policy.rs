//! The least-privilege policies of the two CI roles (`ci.github`), generated from the spec as
//! the app's is (`app_policy`): the plan role may read what poactl reads for this spec, the
//! apply role may also write it. A service the spec does not use is in neither.
//!
//! The action names are IAM's, which are not always the API's (Service Authorization
//! Reference, "Actions defined by Amazon S3"): `GetBucketCors` is `s3:GetBucketCORS`,
//! `GetBucketLifecycleConfiguration` is `s3:GetLifecycleConfiguration`, `GetBucketEncryption`
//! is `s3:GetEncryptionConfiguration`, `GetPublicAccessBlock` on a bucket is
//! `s3:GetBucketPublicAccessBlock`, `HeadBucket` needs `s3:ListBucket`, and CloudFront's
//! `CreateDistributionWithTags` needs `cloudfront:CreateDistribution` and
//! `cloudfront:TagResource`. `sts:GetCallerIdentity` needs no permission.
//!
//! The apply role may change IAM roles under `/poactl/` (the app's, CI's own, whose policies
//! follow the spec: a new bucket widens both), but never the OIDC provider (an explicit deny;
//! after the bootstrap nothing changes it). Denying the CI roles to themselves would fail every
//! CI apply that adds a bucket, and protect nothing: a role that may create `/poactl/` roles
//! may create a wider one. What guards the apply role is who may assume it (the protected
//! environment's reviewers); a permissions boundary on `/poactl/` roles is not made here.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::resource::Kind;
use crate::spec::LoadedSpec;
use crate::spec::model::{CiRole, GITHUB_OIDC_HOST};

/// One service's actions, split by what a read-only role may do.
struct Service {
    /// The statement's id.
    sid: &'static str,
    read: &'static [&'static str],
    write: &'static [&'static str],
}

const S3: Service = Service {
    sid: "Buckets",
    read: &[
        "s3:ListBucket",
        "s3:GetBucketTagging",
        "s3:GetBucketVersioning",
        "s3:GetEncryptionConfiguration",
        "s3:GetBucketOwnershipControls",
        "s3:GetBucketPublicAccessBlock",
        "s3:GetBucketPolicy",
        "s3:GetBucketCORS",
        "s3:GetLifecycleConfiguration",
    ],
    write: &[
        "s3:CreateBucket",
        "s3:DeleteBucket",
        "s3:PutBucketTagging",
        "s3:PutBucketVersioning",
        "s3:PutEncryptionConfiguration",
        "s3:PutBucketOwnershipControls",
        "s3:PutBucketPublicAccessBlock",
        "s3:PutBucketPolicy",
        "s3:DeleteBucketPolicy",
        "s3:PutBucketCORS",
        "s3:PutLifecycleConfiguration",
    ],
};

const CLOUDFRONT: Service = Service {
    sid: "Distributions",
    read: &[
        "cloudfront:ListDistributions",
        "cloudfront:GetDistribution",
        "cloudfront:GetDistributionConfig",
        "cloudfront:ListTagsForResource",
        "cloudfront:ListOriginAccessControls",
        "cloudfront:GetOriginAccessControl",
    ],
    write: &[
        "cloudfront:CreateDistribution",
        "cloudfront:UpdateDistribution",
        "cloudfront:DeleteDistribution",
        "cloudfront:TagResource",
        "cloudfront:UntagResource",
        "cloudfront:CreateOriginAccessControl",
        "cloudfront:UpdateOriginAccessControl",
        "cloudfront:DeleteOriginAccessControl",
    ],
};

const ACM: Service = Service {
    sid: "Certificates",
    read: &["acm:ListCertificates", "acm:DescribeCertificate", "acm:ListTagsForCertificate"],
    write: &["acm:RequestCertificate", "acm:DeleteCertificate", "acm:AddTagsToCertificate"],
};

const ROUTE53: Service = Service {
    sid: "Dns",
    read: &[
        "route53:ListHostedZonesByName",
        "route53:GetHostedZone",
        "route53:ListResourceRecordSets",
        "route53:GetChange",
        "route53:ListHealthChecks",
        "route53:GetHealthCheck",
        "route53:ListTagsForResource",
        "route53:ListTagsForResources",
    ],
    write: &[
        "route53:ChangeResourceRecordSets",
        "route53:CreateHealthCheck",
        "route53:UpdateHealthCheck",
        "route53:DeleteHealthCheck",
        "route53:ChangeTagsForResource",
    ],
};

const CLOUDWATCH: Service = Service {
    sid: "Alarms",
    read: &["cloudwatch:DescribeAlarms", "cloudwatch:ListTagsForResource"],
    write: &["cloudwatch:PutMetricAlarm", "cloudwatch:DeleteAlarms", "cloudwatch:TagResource", "cloudwatch:UntagResource"],
};

const SNS: Service = Service {
    sid: "Topics",
    read: &["sns:ListTopics", "sns:GetTopicAttributes", "sns:ListSubscriptionsByTopic", "sns:ListTagsForResource"],
    write: &[
        "sns:CreateTopic",
        "sns:DeleteTopic",
        "sns:SetTopicAttributes",
        "sns:Subscribe",
        "sns:Unsubscribe",
        "sns:TagResource",
        "sns:UntagResource",
    ],
};

const LOGS: Service = Service {
    sid: "LogGroups",
    read: &["logs:DescribeLogGroups", "logs:DescribeMetricFilters", "logs:ListTagsForResource"],
    write: &[
        "logs:CreateLogGroup",
        "logs:DeleteLogGroup",
        "logs:PutRetentionPolicy",
        "logs:DeleteRetentionPolicy",
        "logs:PutMetricFilter",
        "logs:DeleteMetricFilter",
        "logs:AssociateKmsKey",
        "logs:DisassociateKmsKey",
        "logs:TagResource",
        "logs:UntagResource",
    ],
};

const IAM: Service = Service {
    sid: "Roles",
    read: &["iam:GetRole", "iam:GetRolePolicy", "iam:GetOpenIDConnectProvider"],
    write: &[
        "iam:CreateRole",
        "iam:DeleteRole",
        "iam:PutRolePolicy",
        "iam:DeleteRolePolicy",
        "iam:UpdateAssumeRolePolicy",
        "iam:TagRole",
        "iam:UntagRole",
    ],
};

const EC2: Service = Service {
    sid: "Network",
    read: &[
        "ec2:DescribeVpcs",
        "ec2:DescribeVpcEndpoints",
        "ec2:DescribeSecurityGroups",
        "ec2:DescribeRouteTables",
        "ec2:DescribeVpcPeeringConnections",
    ],
    write: &[
        "ec2:CreateVpcEndpoint",
        "ec2:ModifyVpcEndpoint",
        "ec2:DeleteVpcEndpoints",
        "ec2:CreateSecurityGroup",
        "ec2:DeleteSecurityGroup",
        "ec2:AuthorizeSecurityGroupIngress",
        "ec2:RevokeSecurityGroupIngress",
        "ec2:CreateTags",
        "ec2:DeleteTags",
        "ec2:AcceptVpcPeeringConnection",
        "ec2:CreateRoute",
        "ec2:ReplaceRoute",
        "ec2:DeleteRoute",
    ],
};

const KMS: Service = Service {
    sid: "Keys",
    read: &["kms:DescribeKey", "kms:ListResourceTags", "kms:GetKeyPolicy"],
    write: &["kms:CreateKey", "kms:CreateAlias", "kms:DeleteAlias", "kms:PutKeyPolicy", "kms:TagResource", "kms:ScheduleKeyDeletion"],
};

/// The services a spec's resources live in.
fn services(loaded: &LoadedSpec) -> Vec<&'static Service> {
    let kinds: BTreeSet<Kind> = crate::spec::addresses(&loaded.spec).into_iter().map(|a| a.kind).collect();
    let uses = |ks: &[Kind]| ks.iter().any(|k| kinds.contains(k));
    let mut out = Vec::new();
    for (service, ks) in [
        (&S3, &[Kind::Bucket, Kind::BucketPolicy][..]),
        (&CLOUDFRONT, &[Kind::Distribution]),
        (&ACM, &[Kind::Certificate]),
        (&ROUTE53, &[Kind::DnsRecord, Kind::HealthCheck]),
        (&CLOUDWATCH, &[Kind::Alarm, Kind::BillingAlarm]),
        (&SNS, &[Kind::Topic]),
        (&LOGS, &[Kind::LogGroup]),
        (&IAM, &[Kind::AppRole, Kind::CiRole, Kind::OidcProvider, Kind::AtlasEncryption]),
        (&EC2, &[Kind::AtlasPrivateEndpoint, Kind::AtlasPeering]),
        (&KMS, &[Kind::AtlasEncryption, Kind::Topic, Kind::LogGroup]),
    ] {
        if uses(ks) {
            out.push(service);
        }
    }
    out
}

/// The bucket ARNs the spec names, for the S3 statements (every other service's resources
/// get ids only when made, so their statements name `*`).
fn bucket_arns(loaded: &LoadedSpec) -> Vec<String> {
    loaded.spec.storage.iter().flat_map(|s| s.buckets.iter()).map(|b| format!("arn:aws:s3:::{}", b.name)).collect()
}

/// The IAM ARNs the spec's roles can have: poactl's own path, the Atlas key role, and
/// GitHub's OIDC provider.
fn iam_arns(loaded: &LoadedSpec) -> Vec<String> {
    let mut out = vec!["arn:aws:iam::*:role/poactl/*".to_string(), format!("arn:aws:iam::*:oidc-provider/{GITHUB_OIDC_HOST}")];
    if let Some(e) = loaded.spec.atlas.as_ref().and_then(|a| a.encryption.as_ref()) {
        out.push(format!("arn:aws:iam::*:role/{}", e.role_name(&loaded.env)));
    }
    out
}

/// The policy of one CI role.
pub fn ci_policy(loaded: &LoadedSpec, role: CiRole) -> Value {
    let write = role == CiRole::Apply;
    let mut statements = vec![
        // Tag-based discovery of what the environment owns (ListBuckets and the tagging API
        // cannot be scoped to a resource).
        json!({"Sid": "Discover", "Effect": "Allow", "Action": ["s3:ListAllMyBuckets", "tag:GetResources"], "Resource": "*"}),
    ];
    let used = services(loaded);
    if used.iter().any(|s| s.sid == "Roles") {
        // Listings name no resource (Service Authorization Reference, "Actions defined by AWS
        // Identity and Access Management": ListRoles and ListOpenIDConnectProviders have none).
        statements.push(
            json!({"Sid": "ListRoles", "Effect": "Allow", "Action": ["iam:ListRoles", "iam:ListOpenIDConnectProviders"], "Resource": "*"}),
        );
    }
    for service in used {
        let mut actions: Vec<&str> = service.read.to_vec();
        if write {
            actions.extend_from_slice(service.write);
        }
        let resource = match service.sid {
            "Buckets" => json!(bucket_arns(loaded)),
            "Roles" => json!(iam_arns(loaded)),
            _ => json!("*"),
        };
        statements.push(json!({"Sid": service.sid, "Effect": "Allow", "Action": actions, "Resource": resource}));
    }
    if let Some(lock) = &loaded.spec.lock {
        // The apply lock: a conditional put and a delete of one object (plan takes no lock).
        let key = lock.key.clone().unwrap_or_else(|| format!("poactl/locks/{}.json", loaded.env));
        if write {
            statements.push(json!({"Sid": "Lock", "Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"], "Resource": format!("arn:aws:s3:::{}/{key}", lock.bucket)}));
        }
    }
    if write {
        // The account's provider stays a person's to change (see the module's note).
        statements.push(json!({"Sid": "NotTheOidcProvider", "Effect": "Deny", "Action": ["iam:CreateOpenIDConnectProvider", "iam:DeleteOpenIDConnectProvider", "iam:AddClientIDToOpenIDConnectProvider", "iam:UpdateOpenIDConnectProviderThumbprint", "iam:TagOpenIDConnectProvider"], "Resource": format!("arn:aws:iam::*:oidc-provider/{GITHUB_OIDC_HOST}")}));
    }
    json!({"Version": "2012-10-17", "Statement": statements})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loaded(yaml: &str) -> LoadedSpec {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ci.yaml"), yaml).unwrap();
        crate::spec::load(dir.path(), "ci", &|_| None).unwrap()
    }

    fn actions(p: &Value) -> Vec<String> {
        p["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["Effect"] == "Allow")
            .flat_map(|s| s["Action"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_string()))
            .collect()
    }

    #[test]
    fn the_plan_role_reads_only_and_the_apply_role_cannot_change_the_provider() {
        let l = loaded(
            "environment: ci\nstorage:\n  buckets:\n    - { name: ci-uploads }\nnotifications:\n  topics:\n    ops: { email: [ops@example.com] }\nci:\n  github: { repository: poafix/app }\n",
        );
        let plan = ci_policy(&l, CiRole::Plan);
        let writes = ["Create", "Delete", "Put", "Update", "Tag", "Untag", "Set", "Subscribe", "Unsubscribe", "Change", "Request"];
        let plan_actions = actions(&plan);
        for a in &plan_actions {
            let verb = a.split(':').nth(1).unwrap();
            assert!(!writes.iter().any(|w| verb.starts_with(w)), "the plan role may {a}");
        }
        assert!(plan_actions.contains(&"sns:GetTopicAttributes".to_string()));
        assert!(!plan_actions.iter().any(|a| a.starts_with("cloudfront:")), "no CDN in the spec: {plan_actions:?}");
        let apply = ci_policy(&l, CiRole::Apply);
        assert!(actions(&apply).contains(&"s3:CreateBucket".to_string()));
        let buckets = apply["Statement"].as_array().unwrap().iter().find(|s| s["Sid"] == "Buckets").unwrap();
        assert_eq!(buckets["Resource"], json!(["arn:aws:s3:::ci-uploads"]));
        let deny = apply["Statement"].as_array().unwrap().iter().find(|s| s["Effect"] == "Deny").unwrap();
        assert_eq!(deny["Resource"], json!("arn:aws:iam::*:oidc-provider/token.actions.githubusercontent.com"));
        assert!(!ci_policy(&l, CiRole::Plan).to_string().contains("Deny"));
    }
}
