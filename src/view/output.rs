//! `poactl output`: what templates see of the live environment.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::redact_json;
use crate::resource::{Address, Kind};
use crate::secrets;
use crate::spec::LoadedSpec;
use crate::spec::model::TrustSpec;

/// The app's `.env`, the default template of `poactl output`.
pub const APP_ENV: &str = include_str!("../../templates/app.env.tera");

/// `poactl output`: renders a template from live outputs (read-only).
pub fn redacted(mut v: Value) -> Value {
    redact_json(&mut v);
    v
}

/// What templates see: the environment, every resource's live outputs by address and by kind,
/// and (only with `--show-secrets`) the database users' passwords.
pub fn output_context(loaded: &LoadedSpec, outputs: &BTreeMap<Address, BTreeMap<String, String>>, show_secrets: bool) -> Value {
    let spec = &loaded.spec;
    let by_kind = |kind: Kind| -> Value {
        Value::Object(outputs.iter().filter(|(a, _)| a.kind == kind).map(|(a, o)| (a.name.clone(), json!(o))).collect())
    };
    let users: Vec<Value> = spec
        .atlas
        .iter()
        .flat_map(|a| a.database_users.iter())
        .map(|u| json!({"username": u.username, "password": if show_secrets { json!(u.password) } else { json!(secrets::REDACTED) }, "roles": u.roles}))
        .collect();
    let iam = spec.app.as_ref().and_then(|a| a.iam.as_ref());
    // The app's role, where it has one: its live outputs, and how it gets it (a platform
    // attaches a service role; a web-identity token needs AWS_ROLE_ARN).
    let app_role = iam.map(|iam| {
        let live = outputs.get(&Address::new(Kind::AppRole, crate::spec::APP_ROLE)).cloned().unwrap_or_default();
        let services: Vec<&str> =
            iam.trusted_by.iter().filter_map(|t| if let TrustSpec::Service(s) = t { Some(s.as_str()) } else { None }).collect();
        json!({
            "name": iam.role,
            "arn": live.get("arn"),
            "services": services,
            "web_identity": iam.trusted_by.iter().any(|t| matches!(t, TrustSpec::Oidc(_))),
        })
    });
    json!({
        "environment": loaded.env,
        "aws_region": spec.aws_region(),
        "vpc_only": spec.atlas.as_ref().is_some_and(|a| !a.public_access()),
        "database": spec.database.as_ref().map(|d| json!({"name": d.name})),
        "outputs": outputs.iter().map(|(a, o)| (a.to_string(), json!(o))).collect::<serde_json::Map<_, _>>(),
        "project": spec.atlas.as_ref().and_then(|a| outputs.get(&Address::new(Kind::AtlasProject, &a.project))),
        "clusters": by_kind(Kind::AtlasCluster),
        "buckets": by_kind(Kind::Bucket),
        "distributions": by_kind(Kind::Distribution),
        "alarms": by_kind(Kind::Alarm),
        "topics": by_kind(Kind::Topic),
        "log_groups": by_kind(Kind::LogGroup),
        "app_role": app_role,
        "users": users,
        "show_secrets": show_secrets,
    })
}
