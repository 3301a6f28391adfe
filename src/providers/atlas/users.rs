//! Database users. Atlas never returns passwords: poactl sends one on create, and again only
//! with `--rotate-passwords`.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value, json};

use super::client::{seg, version::V2023_01_01};
use super::{Atlas, group_id, group_of, scope_group_id};
use crate::plan::FieldChange;
use crate::providers::{Ctx, Desired, Observed, Outputs, Ownership, Provider, Result};
use crate::resource::{Address, Kind};
use crate::spec::model::DatabaseUserSpec;

pub struct UserProvider(pub Arc<Atlas>);

pub const PASSWORD_NOTE: &str =
    "password: Atlas never returns it, so changes cannot be seen; poactl sends it on create, and again with --rotate-passwords";

fn sorted(mut v: Vec<Value>) -> Value {
    v.sort_by_key(|x| x.to_string());
    Value::Array(v)
}

pub fn desired(u: &DatabaseUserSpec, project: &Address) -> Desired {
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
    a.insert("roles".into(), roles);
    a.insert("scopes".into(), scopes);
    if let Some(desc) = &u.description {
        a.insert("description".into(), json!(desc));
    }
    let mut d = Desired::new(Address::new(Kind::AtlasUser, &u.username), Value::Object(a)).with_parent(project.clone());
    if let Some(pw) = &u.password {
        d.write_only = json!({"password": pw});
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
    json!({
        "auth_database": doc.get("databaseName").cloned().unwrap_or(json!("admin")),
        "roles": roles,
        "scopes": scopes,
        "description": doc.get("description").cloned().unwrap_or(Value::Null),
    })
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
    if auth_db == "admin" {
        for k in ["awsIAMType", "ldapAuthType", "oidcAuthType", "x509Type"] {
            b[k] = json!("NONE");
        }
    }
    if with_password && let Some(pw) = d.write_only.get("password") {
        b["password"] = pw.clone();
    }
    b
}

impl UserProvider {
    fn list_path(group: &str) -> String {
        format!("/api/atlas/v2/groups/{group}/databaseUsers")
    }
}

#[async_trait]
impl Provider for UserProvider {
    fn kind(&self) -> Kind {
        Kind::AtlasUser
    }

    /// The authentication database is part of a user's identity.
    fn replace_paths(&self) -> &'static [&'static str] {
        &["auth_database"]
    }

    async fn observe(&self, ctx: &Ctx<'_>, d: &Desired) -> Result<Option<Observed>> {
        let group = group_id(ctx)?;
        let users = self.0.cached_list(&Self::list_path(&group), V2023_01_01).await?;
        Ok(users.iter().find(|u| u.get("username").and_then(|v| v.as_str()) == Some(d.address.name.as_str())).map(observed))
    }

    async fn discover(&self, ctx: &Ctx<'_>) -> Result<Vec<(Address, Observed)>> {
        let Some(group) = scope_group_id(ctx) else { return Ok(Vec::new()) };
        let users = self.0.cached_list(&Self::list_path(&group), V2023_01_01).await?;
        Ok(users
            .iter()
            .map(|u| (Address::new(Kind::AtlasUser, u.get("username").and_then(|v| v.as_str()).unwrap_or_default()), observed(u)))
            .collect())
    }

    fn notes(&self, d: &Desired, _o: &Observed, _ctx: &Ctx<'_>) -> Vec<String> {
        if d.write_only.get("password").is_some() { vec![PASSWORD_NOTE.to_string()] } else { Vec::new() }
    }

    async fn create(&self, ctx: &Ctx<'_>, d: &Desired) -> Result<Outputs> {
        let group = group_id(ctx)?;
        self.0.client.post(&Self::list_path(&group), V2023_01_01, body(&group, &d.address.name, d, true)).await?;
        self.0.forget(&Self::list_path(&group));
        Ok(Outputs::from([("username".to_string(), d.address.name.clone())]))
    }

    async fn update(&self, ctx: &Ctx<'_>, d: &Desired, o: &Observed, _changes: &[FieldChange]) -> Result<Outputs> {
        let group = group_id(ctx)?;
        let db = o.handle.get("databaseName").and_then(|v| v.as_str()).unwrap_or("admin");
        let path = format!("{}/{}/{}", Self::list_path(&group), seg(db), seg(&d.address.name));
        self.0.client.patch(&path, V2023_01_01, body(&group, &d.address.name, d, ctx.options.rotate_passwords)).await?;
        self.0.forget(&Self::list_path(&group));
        Ok(Outputs::from([("username".to_string(), d.address.name.clone())]))
    }

    async fn delete(&self, ctx: &Ctx<'_>, address: &Address, o: &Observed) -> Result<()> {
        let group = group_of(o, ctx)?;
        let db = o.handle.get("databaseName").and_then(|v| v.as_str()).unwrap_or("admin");
        self.0.client.delete_if_exists(&format!("{}/{}/{}", Self::list_path(&group), seg(db), seg(&address.name)), V2023_01_01).await?;
        self.0.forget(&Self::list_path(&group));
        Ok(())
    }
}
