//! `poactl audit`: security and reliability rules over an environment's spec and live state.
//! Pure: the command hands in each resource's attributes (live where it was read, else what
//! the spec asks for, in the providers' normalized shape) and the live resources the spec
//! does not declare. Every rule lives in [`RULES`]; docs/audit.md is generated from it (a test
//! fails when the page is out of date).

use serde_json::{Value, json};

use crate::resource::{Address, Kind};
use crate::spec::LoadedSpec;
use crate::spec::cidr::Cidr;

use crate::resource::TEMPORARY_ACCESS_COMMENT as TEMPORARY_COMMENT;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Severity {
    Low,
    Medium,
    High,
}

impl Severity {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
        }
    }
}

/// Where a resource's attributes came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Source {
    /// Read from the service.
    Live,
    /// Not there (yet): what the spec asks for.
    Spec,
    /// Live, and not declared by the spec.
    Unmanaged,
}

pub(crate) struct Resource {
    pub address: Address,
    pub attrs: Value,
    pub source: Source,
}

pub(crate) struct Input<'a> {
    pub loaded: &'a LoadedSpec,
    pub resources: Vec<Resource>,
    /// The monthly estimate from the price catalog (base usage).
    pub estimate_usd: f64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Finding {
    pub rule: &'static str,
    pub severity: Severity,
    pub title: &'static str,
    pub address: String,
    pub source: Option<Source>,
    pub detail: String,
    pub why: &'static str,
    pub fix: &'static str,
}

/// One finding of a rule: the address, where its attributes came from, the detail.
type Hit = (String, Option<Source>, String);

pub(crate) struct Rule {
    pub id: &'static str,
    pub severity: Severity,
    pub title: &'static str,
    pub why: &'static str,
    pub fix: &'static str,
    check: fn(&Input<'_>) -> Vec<Hit>,
}

fn of_kind<'a>(input: &'a Input<'_>, kind: Kind) -> impl Iterator<Item = &'a Resource> {
    input.resources.iter().filter(move |r| r.address.kind == kind)
}

/// An access-list entry `--temporary-access` wrote: its comment's prefix and an expiry.
fn is_temporary_entry(r: &Resource) -> bool {
    r.attrs.get("comment").and_then(Value::as_str).is_some_and(|c| c.starts_with(TEMPORARY_COMMENT))
        && r.attrs.get("delete_after").and_then(Value::as_str).is_some()
}

fn hit(r: &Resource, detail: impl Into<String>) -> Hit {
    (r.address.to_string(), Some(r.source), detail.into())
}

/// Roles that reach every database of the project (Atlas built-in roles: "Built-in Roles and
/// Privileges", atlasAdmin and the *AnyDatabase roles).
const WIDE_ROLES: &[&str] = &[
    "atlasAdmin",
    "readAnyDatabase",
    "readWriteAnyDatabase",
    "dbAdminAnyDatabase",
    "userAdminAnyDatabase",
    "clusterMonitor",
    "backup",
    "restore",
];

pub(crate) const RULES: &[Rule] = &[
    Rule {
        id: "atlas-access-open",
        severity: Severity::High,
        title: "Atlas access list open to the whole internet",
        why: "0.0.0.0/0 lets any address try the database's passwords; Atlas then guards it with credentials alone.",
        fix: "List the app's egress addresses (`atlas.access_list: - { cidr: 203.0.113.7/32 }`), or use private endpoints or peering; remove 0.0.0.0/0.",
        check: |i| {
            of_kind(i, Kind::AtlasAccessList)
                .filter(|r| {
                    let name = r.address.name.as_str();
                    name == "0.0.0.0/0"
                        || name == "::/0"
                        || r.attrs.get("cidr").and_then(Value::as_str).is_some_and(|c| c == "0.0.0.0/0" || c == "::/0")
                })
                .map(|r| hit(r, "an entry allows every address"))
                .collect()
        },
    },
    Rule {
        id: "atlas-public-access-production",
        severity: Severity::High,
        title: "Production database reachable through the public access list",
        why: "A public entry lets that address reach the cluster over the internet, guarded by passwords alone; production should be VPC-only, reached through private endpoints.",
        fix: "`atlas.network: { public_access: false, private_endpoints: [...] }` and remove `atlas.access_list`; apply removes the live entries (docs/spec.md, \"Private networking\").",
        check: |i| {
            if !i.loaded.is_production() {
                return Vec::new();
            }
            // A runner's temporary entry has its own rule; a security group (`sg-…`, or
            // `ACCOUNT/sg-…`) lets in hosts of a peered VPC only.
            let security_group = |r: &&Resource| r.address.name.split('/').next_back().is_some_and(|k| k.starts_with("sg-"));
            of_kind(i, Kind::AtlasAccessList)
                .filter(|r| !is_temporary_entry(r) && !security_group(r))
                .map(|r| hit(r, "a public access-list entry in a production environment"))
                .collect()
        },
    },
    Rule {
        id: "atlas-auditing-off-production",
        severity: Severity::Medium,
        title: "Production database without auditing",
        why: "Without database auditing nobody can tell afterwards who logged in, or who made or changed a user or a role; production teams are asked for that record in every security review.",
        fix: "`atlas.auditing: { enabled: true, filter: { atype: { $in: [authenticate, createUser, dropUser, updateUser, grantRolesToUser, revokeRolesFromUser] } } }` (docs/spec.md, \"Maintenance window and auditing\").",
        check: |i| {
            if !i.loaded.is_production() || of_kind(i, Kind::AtlasAuditing).any(|r| r.attrs.get("enabled") == Some(&json!(true))) {
                return Vec::new();
            }
            // Atlas audits dedicated clusters only.
            let dedicated = |r: &&Resource| r.attrs.get("tier").and_then(Value::as_str).is_some_and(|t| t.starts_with('M') && t != "M0");
            of_kind(i, Kind::AtlasCluster).filter(dedicated).map(|r| hit(r, "the project records no database audit log")).collect()
        },
    },
    Rule {
        id: "atlas-encryption-own-key-production",
        severity: Severity::Medium,
        title: "Production database encrypted with Atlas' keys only",
        why: "Atlas encrypts every disk with its own keys; with the team's own KMS key the data can be made unreadable by revoking it, and every use of the key is in CloudTrail. Security reviews of production ask for customer-managed keys.",
        fix: "`atlas.encryption: { kms_key: { create: true }, region: us-east-1 }`, or name an existing key (docs/spec.md, \"Encryption with your own key\").",
        check: |i| {
            if !i.loaded.is_production() {
                return Vec::new();
            }
            let own_key = |r: &&Resource| r.attrs.get("encryption_at_rest") == Some(&json!("AWS"));
            let dedicated = |r: &&Resource| r.attrs.get("tier").and_then(Value::as_str).is_some_and(|t| t.starts_with('M') && t != "M0");
            of_kind(i, Kind::AtlasCluster)
                .filter(dedicated)
                .filter(|r| !own_key(r))
                .map(|r| hit(r, "the cluster's disks are encrypted with Atlas' keys, not the team's"))
                .collect()
        },
    },
    Rule {
        id: "temporary-access-left-over",
        severity: Severity::Medium,
        title: "A runner's temporary access is still open",
        why: "`--temporary-access` lets one runner in through the public endpoint for one run and removes the entry when the run ends; one still listed belongs to a run that was killed outright (or is running now), and the address stays allowed until Atlas expires it.",
        fix: "Remove it now with `poactl apply --delete 'atlas.access_list.ADDRESS/32'`, or let Atlas remove it at the time the finding names; run poactl inside the VPC to need none.",
        check: |i| {
            of_kind(i, Kind::AtlasAccessList)
                .filter(|r| is_temporary_entry(r))
                .map(|r| {
                    let until = r.attrs.get("delete_after").and_then(Value::as_str).unwrap_or_default();
                    hit(r, format!("open until {until} (Atlas removes it then)"))
                })
                .collect()
        },
    },
    Rule {
        id: "private-endpoint-open",
        severity: Severity::High,
        title: "Private endpoint open to every address",
        why: "The endpoint's security group is the only thing that says who in the network may reach the database; 0.0.0.0/0 lets every host that routes to the VPC in, peered networks and VPNs included.",
        fix: "`allow_from:` the app's security group (`sg-...`) or its subnets' CIDRs; poactl removes any other ingress on apply.",
        check: |i| {
            of_kind(i, Kind::AtlasPrivateEndpoint)
                .filter_map(|r| {
                    let open: Vec<&str> = ["allow_from", "other_ingress"]
                        .into_iter()
                        .flat_map(|k| r.attrs.get(k).and_then(Value::as_array).into_iter().flatten())
                        .filter_map(Value::as_str)
                        .filter(|rule| {
                            // `other_ingress` reads `SOURCE PORTS`; `allow_from` is the source alone.
                            let source = rule.split(' ').next().unwrap_or_default();
                            Cidr::parse(source).is_ok_and(Cidr::is_everything)
                        })
                        .collect();
                    (!open.is_empty()).then(|| hit(r, format!("ingress from {}", open.join(", "))))
                })
                .collect()
        },
    },
    Rule {
        id: "private-endpoint-wider-than-vpc",
        severity: Severity::Medium,
        title: "Private endpoint allows addresses outside its VPC",
        why: "Only hosts inside the VPC (or networks routed to it) can use the endpoint; a wider allow_from grants whatever is peered or routed in later without anyone deciding it.",
        fix: "Narrow `allow_from` to the app's security group or CIDRs inside the VPC.",
        // The VPC's own blocks when they were read; offline, a VPC's IPv4 block is /16 to
        // /28 and its IPv6 block /44 to /60 (Amazon VPC User Guide, "VPC CIDR blocks"), so
        // anything wider cannot be inside it.
        check: |i| {
            of_kind(i, Kind::AtlasPrivateEndpoint)
                .filter_map(|r| {
                    let vpc: Vec<Cidr> = r
                        .attrs
                        .get("vpc_cidrs")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(|c| c.as_str().and_then(|c| Cidr::parse(c).ok()))
                        .collect();
                    let wide: Vec<&str> = r
                        .attrs
                        .get("allow_from")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .filter(|s| match Cidr::parse(s) {
                            // 0.0.0.0/0 is private-endpoint-open's.
                            Ok(c) if c.is_everything() => false,
                            Ok(c) if vpc.is_empty() => c.prefix < if c.v6 { 44 } else { 16 },
                            Ok(c) => !vpc.iter().any(|v| c.within(*v)),
                            Err(_) => false,
                        })
                        .collect();
                    let against = match r.attrs.get("vpc_cidrs").and_then(Value::as_array) {
                        Some(blocks) if !vpc.is_empty() => {
                            format!("outside the VPC's {}", blocks.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", "))
                        }
                        _ => "wider than any VPC can be".to_string(),
                    };
                    (!wide.is_empty()).then(|| hit(r, format!("allow_from {}: {against}", wide.join(", "))))
                })
                .collect()
        },
    },
    Rule {
        id: "atlas-user-wide-role",
        severity: Severity::High,
        title: "Database user with a project-wide role",
        why: "atlasAdmin and the *AnyDatabase roles reach every database of the project: a leaked app password then exposes all of them.",
        fix: "Give the app `readWrite` on its own database (`roles: [{ role: readWrite, database: home_service_db }]`), and a separate user for administration.",
        check: |i| {
            let mut out = Vec::new();
            for r in of_kind(i, Kind::AtlasUser) {
                let wide: Vec<&str> = r
                    .attrs
                    .get("roles")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|x| x.get("role").and_then(Value::as_str))
                    .filter(|x| WIDE_ROLES.contains(x))
                    .collect();
                if !wide.is_empty() {
                    out.push(hit(r, format!("roles {}", wide.join(", "))));
                }
            }
            out
        },
    },
    Rule {
        id: "atlas-password-in-spec",
        severity: Severity::High,
        title: "Database password not read from the environment",
        why: "A password written in the spec ends up in Git history and every clone.",
        fix: "`password: ${env:POAFIX_DB_PASSWORD}`, set from the CI's secret store.",
        check: |i| {
            i.loaded
                .spec
                .atlas
                .iter()
                .flat_map(|a| a.database_users.iter())
                .filter(|u| u.password.as_deref().is_some_and(|p| !p.is_empty() && !i.loaded.secrets.touches(p)))
                .map(|u| {
                    (format!("atlas.database_users.{}", u.key()), Some(Source::Spec), "the password is written in the spec".to_string())
                })
                .collect()
        },
    },
    Rule {
        id: "atlas-tls-below-1.2",
        severity: Severity::High,
        title: "Atlas cluster accepts TLS below 1.2",
        why: "TLS 1.0 and 1.1 are deprecated (RFC 8996); Atlas itself advises 1.2 as the minimum (minimumEnabledTlsProtocol).",
        fix: "`min_tls: \"1.2\"` on the cluster (or leave it out: 1.2 is poactl's default), then `poactl apply`.",
        check: |i| {
            of_kind(i, Kind::AtlasCluster)
                .filter_map(|r| {
                    let v = r.attrs.get("min_tls").and_then(Value::as_str)?;
                    ["1.0", "1.1"].contains(&v).then(|| hit(r, format!("minimum TLS {v}")))
                })
                .collect()
        },
    },
    Rule {
        id: "atlas-production-backup",
        severity: Severity::High,
        title: "Production cluster without cloud backup and point-in-time restore",
        why: "Without snapshots a deleted collection or a bad migration cannot be undone; without point-in-time, everything since the last snapshot is lost.",
        fix: "`backup: { enabled: true, point_in_time: true }` on a dedicated tier (M10+); M0 and Flex have no cloud backup.",
        check: |i| {
            if !i.loaded.is_production() {
                return Vec::new();
            }
            of_kind(i, Kind::AtlasCluster)
                .filter_map(|r| {
                    let tier = r.attrs.get("tier").and_then(Value::as_str).unwrap_or("");
                    let backup = r.attrs.get("backup").and_then(Value::as_bool).unwrap_or(false);
                    let pit = r.attrs.get("point_in_time").and_then(Value::as_bool).unwrap_or(false);
                    match (tier, backup, pit) {
                        ("M0" | "FLEX" | "M2" | "M5", _, _) => Some(hit(r, format!("tier {tier} has no cloud backup"))),
                        (_, false, _) => Some(hit(r, "backup is off")),
                        (_, true, false) => Some(hit(r, "point-in-time restore is off")),
                        _ => None,
                    }
                })
                .collect()
        },
    },
    Rule {
        id: "atlas-termination-protection",
        severity: Severity::Medium,
        title: "Cluster of a protected environment without termination protection",
        why: "`protect: true` guards against poactl; termination protection also guards against the UI, the API and other tools.",
        fix: "`termination_protection: true` on the cluster.",
        check: |i| {
            if !i.loaded.spec.protect {
                return Vec::new();
            }
            of_kind(i, Kind::AtlasCluster)
                .filter(|r| r.attrs.get("termination_protection") != Some(&json!(true)))
                .map(|r| hit(r, "termination protection is off"))
                .collect()
        },
    },
    Rule {
        id: "app-static-keys-production",
        severity: Severity::High,
        title: "Production app on static AWS keys",
        why: "An access key never expires: one leaked from a .env, a log or a laptop opens the buckets until someone notices and rotates it. A role hands the app credentials that expire within hours.",
        fix: "`app.iam: { role: NAME, trusted_by: [ecs-tasks.amazonaws.com] }` (or ec2, lambda, an OIDC provider): poactl makes the role with the policy below, and `poactl output` leaves the keys out of the .env.",
        check: |i| {
            let reached = i.loaded.spec.storage.iter().flat_map(|s| s.buckets.iter()).filter(|b| b.app_access).count();
            if !i.loaded.is_production() || reached == 0 || i.loaded.spec.app.as_ref().is_some_and(|a| a.iam.is_some()) {
                return Vec::new();
            }
            vec![("app".to_string(), Some(Source::Spec), format!("no app.iam: the app reaches {reached} bucket(s) with an access key"))]
        },
    },
    Rule {
        id: "s3-public-access",
        severity: Severity::High,
        title: "Bucket public access not fully blocked",
        why: "A bucket behind CloudFront OAC needs no public access; without all four blocks, one wrong policy or ACL makes the uploads public.",
        fix: "`public_access: blocked` on the bucket.",
        check: |i| {
            of_kind(i, Kind::Bucket)
                .filter_map(|r| {
                    let pab = r.attrs.get("public_access_block");
                    let off: Vec<&str> = ["block_public_acls", "ignore_public_acls", "block_public_policy", "restrict_public_buckets"]
                        .into_iter()
                        .filter(|k| pab.and_then(|p| p.get(*k)) != Some(&json!(true)))
                        .collect();
                    (!off.is_empty()).then(|| hit(r, format!("off: {}", off.join(", "))))
                })
                .collect()
        },
    },
    Rule {
        id: "s3-encryption",
        severity: Severity::Medium,
        title: "Bucket without default encryption",
        why: "Objects written without encryption headers must still be encrypted at rest.",
        fix: "`encryption: AES256` (SSE-S3) or `encryption: aws:kms` with `kms_key`.",
        check: |i| {
            of_kind(i, Kind::Bucket)
                .filter(|r| {
                    !matches!(r.attrs.pointer("/encryption/algorithm").and_then(Value::as_str), Some("AES256" | "aws:kms" | "aws:kms:dsse"))
                })
                .map(|r| hit(r, "no default encryption"))
                .collect()
        },
    },
    Rule {
        id: "s3-versioning",
        severity: Severity::Medium,
        title: "Bucket without versioning",
        why: "Without versioning an overwritten or deleted upload is gone for good.",
        fix: "`versioning: true`, with a lifecycle rule that expires noncurrent versions.",
        check: |i| {
            of_kind(i, Kind::Bucket)
                .filter(|r| r.attrs.get("versioning") != Some(&json!(true)))
                .map(|r| hit(r, "versioning is off"))
                .collect()
        },
    },
    Rule {
        id: "s3-versioned-without-lifecycle",
        severity: Severity::Low,
        title: "Versioned bucket whose old versions never expire",
        why: "Every overwrite keeps the old version, billed as storage forever.",
        fix: "`lifecycle: - { prefix: \"\", noncurrent_expire_after: 30d, abort_incomplete_multipart_after: 7d }`.",
        check: |i| {
            of_kind(i, Kind::Bucket)
                .filter(|r| r.attrs.get("versioning") == Some(&json!(true)))
                .filter(|r| {
                    !r.attrs.get("lifecycle").and_then(Value::as_array).into_iter().flatten().any(|rule| {
                        // A rule limited to a prefix leaves the rest of the bucket's old
                        // versions to pile up.
                        rule.get("status").and_then(Value::as_str) != Some("Disabled")
                            && rule.get("prefix").and_then(Value::as_str).is_none_or(str::is_empty)
                            && rule.get("noncurrent_expire_days").is_some_and(|d| !d.is_null())
                    })
                })
                .map(|r| hit(r, "no enabled rule expires the noncurrent versions of the whole bucket"))
                .collect()
        },
    },
    Rule {
        id: "cdn-https",
        severity: Severity::High,
        title: "CDN serves plain HTTP",
        why: "Viewers on HTTP can be read and altered in transit.",
        fix: "poactl sets `redirect-to-https` on every behavior; run `poactl apply` to put it back.",
        // Every cache behaviour, not only the default one: a path pattern's behaviour is what
        // a viewer of that path reaches (CloudFront Developer Guide, "Cache behavior settings",
        // Viewer protocol policy is per behaviour).
        check: |i| {
            let mut out = Vec::new();
            for r in of_kind(i, Kind::Distribution) {
                let default = std::iter::once(("default".to_string(), r.attrs.pointer("/default_behavior/viewer_protocol")));
                let others = r
                    .attrs
                    .get("behaviors")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .map(|b| (b.get("path").and_then(Value::as_str).unwrap_or("?").to_string(), b.get("viewer_protocol")));
                let plain: Vec<String> = default
                    .chain(others)
                    // A behaviour read without the field (the spec's own, offline) is poactl's: it sets redirect-to-https.
                    .filter(|(path, v)| !(path != "default" && v.is_none()))
                    .filter(|(_, v)| !matches!(v.and_then(Value::as_str), Some("redirect-to-https" | "https-only")))
                    .map(|(path, v)| format!("{path}: {}", v.and_then(Value::as_str).unwrap_or("allow-all")))
                    .collect();
                if !plain.is_empty() {
                    out.push(hit(r, format!("viewer protocol {}", plain.join(", "))));
                }
            }
            out
        },
    },
    Rule {
        id: "cdn-tls-below-1.2",
        severity: Severity::High,
        title: "CDN accepts TLS below 1.2 on its own certificate",
        why: "TLS 1.0 and 1.1 are deprecated (RFC 8996); a viewer can be talked down to them.",
        fix: "poactl sets the TLSv1.2_2021 security policy (or the distribution's `min_tls`) with a certificate of its own, and never lowers a stricter one; run `poactl apply` to put it back.",
        check: |i| {
            of_kind(i, Kind::Distribution)
                .filter(|r| r.attrs.get("certificate_arn").is_some_and(|c| !c.is_null()))
                .filter_map(|r| {
                    let policy = r.attrs.get("min_tls").and_then(Value::as_str).unwrap_or("");
                    // CloudFront's policies are named by their oldest protocol: TLSv1, TLSv1_2016,
                    // TLSv1.1_2016, TLSv1.2_2018 ... (ViewerCertificate MinimumProtocolVersion).
                    (!(policy.starts_with("TLSv1.2") || policy.starts_with("TLSv1.3")))
                        .then(|| hit(r, format!("security policy {}", if policy.is_empty() { "unknown" } else { policy })))
                })
                .collect()
        },
    },
    Rule {
        id: "cdn-default-certificate-tls",
        severity: Severity::Low,
        title: "CDN on the cloudfront.net name accepts TLS 1.0",
        why: "With the default *.cloudfront.net certificate CloudFront fixes the security policy at TLSv1, whatever the distribution asks.",
        fix: "Serve the CDN from your own name: `domain:` (poactl requests the ACM certificate) or `aliases:` with `certificate_arn:`; poactl then sets TLSv1.2_2021.",
        check: |i| {
            of_kind(i, Kind::Distribution)
                .filter(|r| r.attrs.get("certificate_arn").is_none_or(Value::is_null))
                .map(|r| hit(r, "default certificate: TLSv1 security policy"))
                .collect()
        },
    },
    Rule {
        id: "cdn-no-hsts-production",
        severity: Severity::Medium,
        title: "Production CDN without HSTS",
        why: "Without Strict-Transport-Security a browser that once typed http:// can be sent to a copy of the site before the redirect to HTTPS; HSTS, nosniff and frame options are what security reviews ask of a production front end.",
        fix: "`security_headers: true` on the distribution (CloudFront's managed SecurityHeadersPolicy on every behaviour).",
        check: |i| {
            // The managed response headers policies that send Strict-Transport-Security
            // (CloudFront Developer Guide, "Use managed response headers policies").
            const WITH_HSTS: [&str; 3] =
                ["SecurityHeadersPolicy", "CORS-and-SecurityHeadersPolicy", "CORS-with-preflight-and-SecurityHeadersPolicy"];
            if !i.loaded.is_production() {
                return Vec::new();
            }
            of_kind(i, Kind::Distribution)
                .filter(|r| {
                    let policy = r.attrs.pointer("/default_behavior/response_headers_policy").and_then(Value::as_str);
                    !policy.is_some_and(|p| WITH_HSTS.contains(&p))
                })
                .map(|r| hit(r, "no response headers policy with Strict-Transport-Security on the default behaviour"))
                .collect()
        },
    },
    Rule {
        id: "cdn-alias-without-certificate",
        severity: Severity::High,
        title: "CDN alias without its own certificate",
        why: "The default *.cloudfront.net certificate does not cover your domain: browsers refuse the alias over HTTPS.",
        fix: "`domain:` (poactl requests a certificate for it and the aliases), or `certificate_arn:` an ACM certificate in us-east-1 that covers every alias.",
        check: |i| {
            of_kind(i, Kind::Distribution)
                .filter(|r| {
                    r.attrs.get("aliases").and_then(Value::as_array).is_some_and(|a| !a.is_empty())
                        && r.attrs.get("certificate_arn").is_none_or(Value::is_null)
                })
                .map(|r| hit(r, "aliases but no certificate_arn"))
                .collect()
        },
    },
    Rule {
        id: "billing-no-alert",
        severity: Severity::Medium,
        title: "No billing alert",
        why: "A runaway bill is found at the end of the month instead of the day it starts.",
        fix: "`billing: { alerts: [{ above_usd: 50, notify: [arn:aws:sns:...] }] }` (also enable \"Receive Billing Alerts\" in the AWS account).",
        check: |i| {
            if i.loaded.spec.billing.as_ref().is_some_and(|b| !b.alerts.is_empty()) {
                return Vec::new();
            }
            vec![("billing".to_string(), Some(Source::Spec), "no billing.alerts".to_string())]
        },
    },
    Rule {
        id: "billing-budget-below-estimate",
        severity: Severity::Medium,
        title: "Budget below the cost estimate",
        why: "The budget gate (`poactl cost`) fails on every run, so people learn to ignore it.",
        fix: "Raise `billing.budget_usd`, or pick smaller tiers; `poactl cost -e ENV` shows the lines.",
        check: |i| match i.loaded.spec.billing.as_ref().and_then(|b| b.budget_usd) {
            Some(b) if i.estimate_usd > b + 1e-9 => vec![(
                "billing.budget_usd".to_string(),
                Some(Source::Spec),
                format!("estimate ${:.2} a month, budget ${b:.2}", i.estimate_usd),
            )],
            _ => Vec::new(),
        },
    },
];

/// Every rule's findings, most severe first.
pub(crate) fn run(input: &Input<'_>) -> Vec<Finding> {
    let mut out: Vec<Finding> = RULES
        .iter()
        .flat_map(|rule| {
            (rule.check)(input).into_iter().map(move |(address, source, detail)| Finding {
                rule: rule.id,
                severity: rule.severity,
                title: rule.title,
                address,
                source,
                detail,
                why: rule.why,
                fix: rule.fix,
            })
        })
        .collect();
    out.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.rule.cmp(b.rule)).then(a.address.cmp(&b.address)));
    out
}

pub(crate) use crate::spec::app_policy::app_policy;

/// docs/audit.md: the rules table (generated; `tests` keep it in step with [`RULES`]).
#[cfg(test)]
fn rules_markdown() -> String {
    let mut s = String::from(
        "# `poactl audit` rules\n\nGenerated from `src/audit/mod.rs` (`RULES`); a unit test fails when this page and the table differ.\nRun `POACTL_UPDATE_DOCS=1 cargo test --lib audit` to rewrite it.\n\nEach rule reads the live state where poactl read it, else the spec. It also reads the live resources the spec does not declare (an access-list entry or a user added by hand). `poactl audit -e ENV --fail-on high` exits 2 when a finding is at least that severe.\n\n| id | severity | what | why | fix in the spec |\n|---|---|---|---|---|\n",
    );
    for r in RULES {
        s.push_str(&format!("| `{}` | {} | {} | {} | {} |\n", r.id, r.severity.as_str(), r.title, r.why, r.fix.replace('|', "\\|")));
    }
    s.push_str("\nThe report also prints the least-privilege IAM policy of the app, the one `app.iam` gives its role (or, without one, what its static keys should be limited to): object read, write and delete, and bucket listing, on the environment's buckets only, plus `kms:Decrypt`/`kms:GenerateDataKey` on their KMS keys (by key ARN, or for an alias through the `kms:ResourceAliases` condition). A bucket with `app_access: false` (backups, logs) is left out.\n");
    s
}

#[cfg(test)]
mod tests;
