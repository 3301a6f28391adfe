//! Database users. Atlas never returns passwords: poactl sends one on create, and again only
//! with `--rotate-passwords`.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value, json};

use super::client::{
    seg,
    version::{V2023_01_01, V2024_08_05},
};
use super::{Atlas, LANE, group_id, group_of, scope_group_id};
use crate::plan::FieldChange;
use crate::providers::{Ctx, Desired, Lane, Observed, Outputs, Ownership, Provider, Result};
use crate::resource::{Address, Kind};
use crate::spec::model::DatabaseUserSpec;

pub struct UserProvider(pub Arc<Atlas>);

pub const PASSWORD_NOTE: &str =
    "password: Atlas never returns it, so changes cannot be seen; poactl sends it on create, and again with --rotate-passwords";

fn sorted(mut v: Vec<Value>) -> Value {
    v.sort_by_key(|x| x.to_string());
    Value::Array(v)
}

pub fn desired(u: &DatabaseUserSpec, address: Address) -> Desired {
    let roles = sorted(
        u.roles
            .iter()
            .map(|r| {
                let mut role = json!({"role": r.role, "database": r.database});
                if let Some(c) = &r.collection {
                    role["collection"] = json!(c);
                }
                role
            })
            .collect(),
    );
    let scopes = sorted(u.scopes.iter().map(|s| json!({"name": s.name, "type": s.kind})).collect());
    let mut a = Map::new();
    a.insert("auth_database".into(), json!(u.auth_database));
    let methods = u.auth.clone().unwrap_or_default();
    a.insert("auth".into(), Value::Object(methods.fields().iter().map(|(f, v, _)| (f.to_string(), json!(v.unwrap_or("NONE")))).collect()));
    a.insert("roles".into(), roles);
    a.insert("scopes".into(), scopes);
    if let Some(desc) = &u.description {
        a.insert("description".into(), json!(desc));
    }
    let mut d = Desired::new(address, Value::Object(a));
    d.write_only = json!({"username": u.username});
    if let Some(pw) = &u.password {
        d.write_only["password"] = json!(pw);
    }
    d
}

fn normalize(doc: &Value) -> Value {
    let roles = sorted(
        doc.get("roles")
            .and_then(|r| r.as_array())
            .map(|roles| {
                roles
                    .iter()
                    .map(|r| {
                        let mut role = json!({"role": r["roleName"], "database": r["databaseName"]});
                        if let Some(c) = r.get("collectionName").filter(|c| c.as_str().is_some_and(|s| !s.is_empty())) {
                            role["collection"] = c.clone();
                        }
                        role
                    })
                    .collect()
            })
            .unwrap_or_default(),
    );
    let scopes = sorted(
        doc.get("scopes")
            .and_then(|s| s.as_array())
            .map(|s| s.iter().map(|x| json!({"name": x["name"], "type": x["type"]})).collect())
            .unwrap_or_default(),
    );
    let auth: Map<String, Value> = ["x509Type", "awsIAMType", "ldapAuthType", "oidcAuthType"]
        .iter()
        .map(|f| (f.to_string(), doc.get(*f).cloned().filter(|v| v.is_string()).unwrap_or(json!("NONE"))))
        .collect();
    json!({
        "auth_database": doc.get("databaseName").cloned().unwrap_or(json!("admin")),
        "auth": auth,
        "roles": roles,
        "scopes": scopes,
        "description": doc.get("description").cloned().unwrap_or(Value::Null),
    })
}

/// A live user's address name: its username, prefixed by its database unless that is `admin`
/// (the same as `DatabaseUserSpec::key`).
fn key_of(doc: &Value) -> String {
    let username = doc.get("username").and_then(|v| v.as_str()).unwrap_or_default();
    match doc.get("databaseName").and_then(|v| v.as_str()).unwrap_or("admin") {
        "admin" => username.to_string(),
        db => format!("{db}/{username}"),
    }
}

fn observed(doc: &Value) -> Observed {
    let username = doc.get("username").and_then(|v| v.as_str()).unwrap_or_default().to_string();
    let db = doc.get("databaseName").and_then(|v| v.as_str()).unwrap_or("admin");
    Observed {
        id: format!("{db}/{username}"),
        attrs: normalize(doc),
        outputs: Outputs::from([
            ("username".to_string(), username.clone()),
            ("description".to_string(), format!("database user {username} ({db})")),
        ]),
        ownership: Ownership::NaturalKey,
        handle: doc.clone(),
    }
}

/// The request body: spec attributes in Atlas' words, the password only when asked.
fn body(group: &str, username: &str, d: &Desired, with_password: bool) -> Value {
    let roles: Vec<Value> = d.attrs["roles"]
        .as_array()
        .map(|roles| {
            roles
                .iter()
                .map(|r| {
                    let mut role = json!({"roleName": r["role"], "databaseName": r["database"]});
                    if let Some(c) = r.get("collection") {
                        role["collectionName"] = c.clone();
                    }
                    role
                })
                .collect()
        })
        .unwrap_or_default();
    let auth_db = d.attrs["auth_database"].as_str().unwrap_or("admin");
    let mut b = json!({
        "databaseName": auth_db,
        "groupId": group,
        "username": username,
        "roles": roles,
        "scopes": d.attrs["scopes"],
    });
    if let Some(desc) = d.attrs.get("description") {
        b["description"] = desc.clone();
    }
    for (k, v) in d.attrs["auth"].as_object().into_iter().flatten() {
        b[k.as_str()] = v.clone();
    }
    if with_password && let Some(pw) = d.write_only.get("password") {
        b["password"] = pw.clone();
    }
    b
}

impl UserProvider {
    pub(super) fn list_path(group: &str) -> String {
        format!("/api/atlas/v2/groups/{group}/databaseUsers")
    }

    fn user_path(group: &str, db: &str, username: &str) -> String {
        format!("{}/{}/{}", Self::list_path(group), seg(db), seg(username))
    }

    /// Waits until a user change has reached the project's clusters (`GET
    /// /clusters/{name}/status` says APPLIED): until then "new users can't log in"
    /// (openapi-v2.yaml, ClusterStatus.changeStatus), and the index reads connect as this user.
    /// Only clusters on the clusters API that are IDLE report it; Flex clusters are skipped.
    async fn wait_applied(&self, ctx: &Ctx<'_>, group: &str, d: &Desired) -> Result<()> {
        if !ctx.options.wait {
            return Ok(());
        }
        let scoped: Vec<&str> = d.attrs["scopes"].as_array().into_iter().flatten().filter_map(|s| s["name"].as_str()).collect();
        let clusters = self.0.client.list(&format!("/api/atlas/v2/groups/{group}/clusters"), V2024_08_05).await?;
        let names: Vec<String> = clusters
            .iter()
            .filter(|c| c.get("stateName").and_then(|v| v.as_str()) == Some("IDLE"))
            .filter(|c| c.pointer("/replicationSpecs/0/regionConfigs/0/providerName").and_then(|v| v.as_str()) != Some("FLEX"))
            .filter_map(|c| c.get("name").and_then(|v| v.as_str()).map(String::from))
            .filter(|n| scoped.is_empty() || scoped.contains(&n.as_str()))
            .collect();
        // The clusters still applying the change; each look asks only those.
        let pending = std::sync::Mutex::new(names);
        let what = d.address.to_string();
        crate::providers::wait_for(ctx, &what, "reaching the clusters", std::time::Duration::from_secs(10), || async {
            let names: Vec<String> = pending.lock().map(|p| p.clone()).unwrap_or_default();
            let mut still = Vec::new();
            for name in names {
                let status =
                    self.0.client.get(&format!("/api/atlas/v2/groups/{group}/clusters/{}/status", seg(&name)), V2023_01_01).await?;
                if status.get("changeStatus").and_then(|v| v.as_str()) == Some("PENDING") {
                    still.push(name);
                }
            }
            let state = still.first().map(|n| format!("the change is still PENDING on cluster {n}"));
            if let Ok(mut p) = pending.lock() {
                *p = still;
            }
            Ok(match state {
                Some(state) => crate::providers::Look::NotYet(state),
                None => crate::providers::Look::Ready(()),
            })
        })
        .await
    }
}

/// The username a desired user is written as (its address may carry the database).
fn username(d: &Desired) -> &str {
    d.write_only.get("username").and_then(|v| v.as_str()).unwrap_or(&d.address.name)
}

#[async_trait]
impl Provider for UserProvider {
    fn kind(&self) -> Kind {
        Kind::AtlasUser
    }

    fn lane(&self) -> Lane {
        LANE
    }

    /// Its list is the project's.
    fn discover_after(&self) -> &'static [Kind] {
        &[Kind::AtlasProject]
    }

    /// Atlas never returns passwords: with `--rotate-passwords`, sending the spec's again is
    /// a change poactl asserts (for users with a password).
    fn asserted_changes(&self, d: &Desired, _o: &Observed, options: &crate::plan::PlanOptions) -> Vec<FieldChange> {
        if !(options.rotate_passwords && d.write_only.get("password").is_some()) {
            return Vec::new();
        }
        vec![FieldChange {
            path: "password".into(),
            before: None,
            after: Some(serde_json::Value::String("rotate".into())),
            forces_replace: false,
            sensitive: true,
            unknown: false,
        }]
    }

    /// Atlas keeps no tags on database users: nothing proves poactl made one, so `--prune` alone keeps them.
    fn prune_guard(&self, _o: &Observed) -> Option<String> {
        Some("Atlas keeps no ownership mark on database users, so poactl cannot prove it made this one".to_string())
    }

    async fn observe(&self, ctx: &Ctx<'_>, d: &Desired) -> Result<Option<Observed>> {
        let group = group_id(ctx)?;
        let users = self.0.cached_list(&Self::list_path(&group), V2023_01_01).await?;
        // A user's identity is (database, username).
        Ok(users.iter().find(|u| key_of(u) == d.address.name).map(observed))
    }

    async fn discover(&self, ctx: &Ctx<'_>) -> Result<Vec<(Address, Observed)>> {
        let Some(group) = scope_group_id(ctx) else { return Ok(Vec::new()) };
        let users = self.0.cached_list(&Self::list_path(&group), V2023_01_01).await?;
        Ok(users.iter().map(|u| (Address::new(Kind::AtlasUser, key_of(u)), observed(u))).collect())
    }

    fn notes(&self, d: &Desired, _o: &Observed, _ctx: &Ctx<'_>) -> Vec<String> {
        if d.write_only.get("password").is_some() { vec![PASSWORD_NOTE.to_string()] } else { Vec::new() }
    }

    async fn create(&self, ctx: &Ctx<'_>, d: &Desired) -> Result<Outputs> {
        let group = group_id(ctx)?;
        let db = d.attrs["auth_database"].as_str().unwrap_or("admin");
        let path = Self::user_path(&group, db, username(d));
        let lookup = || self.0.client.get_opt(&path, V2023_01_01);
        self.0.client.create(&Self::list_path(&group), V2023_01_01, body(&group, username(d), d, true), lookup).await?;
        self.0.forget(&Self::list_path(&group));
        self.wait_applied(ctx, &group, d).await?;
        Ok(Outputs::from([("username".to_string(), username(d).to_string())]))
    }

    async fn update(&self, ctx: &Ctx<'_>, d: &Desired, o: &Observed, _changes: &[FieldChange]) -> Result<Outputs> {
        let group = group_id(ctx)?;
        let db = o.handle.get("databaseName").and_then(|v| v.as_str()).unwrap_or("admin");
        let path = Self::user_path(&group, db, username(d));
        self.0.client.patch(&path, V2023_01_01, body(&group, username(d), d, ctx.options.rotate_passwords)).await?;
        self.0.forget(&Self::list_path(&group));
        self.wait_applied(ctx, &group, d).await?;
        Ok(Outputs::from([("username".to_string(), username(d).to_string())]))
    }

    async fn delete(&self, ctx: &Ctx<'_>, address: &Address, o: &Observed) -> Result<()> {
        let group = group_of(o, ctx)?;
        let db = o.handle.get("databaseName").and_then(|v| v.as_str()).unwrap_or("admin");
        let name = o.handle.get("username").and_then(|v| v.as_str()).unwrap_or(&address.name);
        self.0.client.delete_if_exists(&Self::user_path(&group, db, name), V2023_01_01).await?;
        self.0.forget(&Self::list_path(&group));
        Ok(())
    }
}
