//! The sandbox's database users and alert configurations.

use serde_json::{Map, Value, json};

use super::state::{State, now_iso};
use super::{Answer, ApiErr, Req, encode_segment, link, mongo, project, required_str};

pub(super) fn user_missing(user: &str, group: &str) -> ApiErr {
    ApiErr::new(404, "USERNAME_NOT_FOUND", format!("No user with username {user} exists in group {group}.")).params(&[user, group])
}

pub(super) fn user_doc(req: &Req, group: &str, b: &Map<String, Value>, existing: Option<&Value>) -> Result<Value, ApiErr> {
    let db = b
        .get("databaseName")
        .and_then(|v| v.as_str())
        .or_else(|| existing.and_then(|e| e["databaseName"].as_str()))
        .unwrap_or("admin")
        .to_string();
    if db != "admin" && db != "$external" {
        return Err(ApiErr::new(400, "INVALID_ATTRIBUTE", "Invalid attribute databaseName specified.").params(&["databaseName"]));
    }
    let username =
        b.get("username").and_then(|v| v.as_str()).or_else(|| existing.and_then(|e| e["username"].as_str())).unwrap_or("").to_string();
    let roles = b.get("roles").cloned().or_else(|| existing.map(|e| e["roles"].clone())).unwrap_or(json!([]));
    if roles.as_array().is_none_or(|r| r.is_empty() || r.iter().any(|x| x.get("roleName").is_none() || x.get("databaseName").is_none())) {
        return Err(ApiErr::new(400, "INVALID_ATTRIBUTE", "Invalid attribute roles specified.").params(&["roles"]));
    }
    if let Some(pw) = b.get("password").and_then(|v| v.as_str())
        && pw.chars().count() < 8
    {
        return Err(ApiErr::new(400, "DATABASE_USER_PASSWORD_TOO_SHORT", "The password must be at least 8 characters long."));
    }
    // Users in `$external` authenticate with exactly one of X.509, AWS IAM, LDAP or OIDC; users
    // in `admin` with SCRAM and all four NONE (openapi-v2.yaml, CloudDatabaseUser: "databaseName
    // ... $external if the user authenticates with AWS IAM, LDAP, OIDC or X.509").
    let auth_type =
        |k: &str| b.get(k).and_then(|v| v.as_str()).or_else(|| existing.and_then(|e| e[k].as_str())).unwrap_or("NONE").to_string();
    let kinds = ["awsIAMType", "ldapAuthType", "oidcAuthType", "x509Type"];
    let set: Vec<&str> = kinds.iter().copied().filter(|k| auth_type(k) != "NONE").collect();
    if db == "$external" && set.len() != 1 {
        return Err(ApiErr::new(
            400,
            "INVALID_ATTRIBUTE",
            "A user in $external needs exactly one of awsIAMType, ldapAuthType, oidcAuthType or x509Type.",
        )
        .params(&["databaseName"]));
    }
    if db == "admin" && !set.is_empty() {
        return Err(ApiErr::new(400, "INVALID_ATTRIBUTE", format!("{} users authenticate in $external, not admin.", set[0]))
            .params(&["databaseName"]));
    }
    let mut doc = json!({
        "awsIAMType": auth_type("awsIAMType"), "databaseName": db, "groupId": group, "labels": [], "ldapAuthType": auth_type("ldapAuthType"),
        "links": link(req, &format!("/api/atlas/v2/groups/{group}/databaseUsers/{}/{}", encode_segment(&db), encode_segment(&username))),
        "oidcAuthType": auth_type("oidcAuthType"), "roles": roles,
        "scopes": b.get("scopes").cloned().or_else(|| existing.map(|e| e["scopes"].clone())).unwrap_or(json!([])),
        "username": username, "x509Type": auth_type("x509Type"),
    });
    if let Some(d) = b.get("description").cloned().or_else(|| existing.and_then(|e| e.get("description").cloned())) {
        doc["description"] = d;
    }
    Ok(doc)
}

pub(super) fn create_user(st: &mut State, req: &Req, group: &str) -> Answer {
    let b = req.body_obj()?.clone();
    let username = required_str(&b, "username")?.to_string();
    required_str(&b, "databaseName")?;
    required_str(&b, "groupId")?;
    if b.get("databaseName") == Some(&json!("admin")) && b.get("password").and_then(|v| v.as_str()).is_none() {
        return Err(ApiErr::new(400, "INVALID_ATTRIBUTE", "Invalid attribute password specified.").params(&["password"]));
    }
    let doc = user_doc(req, group, &b, None)?;
    let p = project(st, group)?;
    if p.users.iter().any(|u| u["username"] == json!(username) && u["databaseName"] == doc["databaseName"]) {
        return Err(ApiErr::new(409, "USER_ALREADY_EXISTS", format!("The user {username} already exists.")).params(&[&username]));
    }
    p.users.push(doc.clone());
    p.users_changed_at = Some(std::time::Instant::now());
    if let Some(pw) = b.get("password").and_then(|v| v.as_str()) {
        p.passwords.insert((doc["databaseName"].as_str().unwrap_or("").to_string(), username.clone()), pw.to_string());
    }
    sync_mock_users(st);
    Ok((201, Some(doc)))
}

/// Hands the projects' SCRAM users (with their passwords and roles) to the wire mock, which
/// then requires a login: a cluster checks logins against its project's users (Atlas docs,
/// "Configure Database Users": users apply to every cluster of the project). One mock serves
/// every project, so it holds the users of all of them.
pub(super) fn sync_mock_users(st: &State) {
    let Some(mock) = &st.mongo else { return };
    let mut users = Vec::new();
    for p in st.projects.values() {
        for u in &p.users {
            let (db, name) = (u["databaseName"].as_str().unwrap_or(""), u["username"].as_str().unwrap_or(""));
            let Some(pw) = p.passwords.get(&(db.to_string(), name.to_string())) else { continue };
            let roles: Vec<(String, String)> = u["roles"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|r| (r["roleName"].as_str().unwrap_or("").to_string(), r["databaseName"].as_str().unwrap_or("").to_string()))
                .collect();
            let roles: Vec<(&str, &str)> = roles.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
            users.push(mongo::MockUser::new(db, name, pw, &roles));
        }
    }
    mock.lock().unwrap_or_else(|e| e.into_inner()).users = Some(users);
}

pub(super) fn update_user(st: &mut State, req: &Req, group: &str) -> Answer {
    let b = req.body_obj()?.clone();
    let (db, user) = (req.param("databaseName").to_string(), req.param("username").to_string());
    let existing = project(st, group)?
        .users
        .iter()
        .find(|u| u["username"] == json!(user) && u["databaseName"] == json!(db))
        .cloned()
        .ok_or_else(|| user_missing(&user, group))?;
    let doc = user_doc(req, group, &b, Some(&existing))?;
    let p = project(st, group)?;
    if let Some(u) = p.users.iter_mut().find(|u| u["username"] == json!(user) && u["databaseName"] == json!(db)) {
        *u = doc.clone();
    }
    p.users_changed_at = Some(std::time::Instant::now());
    if let Some(pw) = b.get("password").and_then(|v| v.as_str()) {
        p.passwords.insert((db.clone(), user.clone()), pw.to_string());
    }
    sync_mock_users(st);
    Ok((200, Some(doc)))
}

pub(super) fn alert_missing(id: &str) -> ApiErr {
    ApiErr::new(404, "ALERT_CONFIG_NOT_FOUND", format!("No alert configuration with ID {id} exists.")).params(&[id])
}

pub(super) fn save_alert(st: &mut State, req: &Req, group: &str, id: Option<String>) -> Answer {
    let b = req.body_obj()?.clone();
    required_str(&b, "eventTypeName")?;
    let notes =
        b.get("notifications").and_then(|v| v.as_array()).filter(|n| !n.is_empty() && n.len() <= 25).ok_or_else(|| {
            ApiErr::new(400, "INVALID_ATTRIBUTE", "Invalid attribute notifications specified.").params(&["notifications"])
        })?;
    for n in notes {
        if n.get("typeName").and_then(|v| v.as_str()).is_none() {
            return Err(ApiErr::new(400, "INVALID_ATTRIBUTE", "Invalid attribute typeName specified.").params(&["typeName"]));
        }
        if let Some(iv) = n.get("intervalMin").and_then(|v| v.as_i64())
            && iv < 5
        {
            return Err(ApiErr::new(400, "INVALID_ATTRIBUTE", "Notification interval must be at least 5 minutes.").params(&["intervalMin"]));
        }
    }
    let new_id = match &id {
        Some(i) => i.clone(),
        None => st.new_id(),
    };
    let p = project(st, group)?;
    let created = match &id {
        Some(i) => p.alerts.iter().find(|a| a["id"] == json!(i)).map(|a| a["created"].clone()).ok_or_else(|| alert_missing(i))?,
        None => json!(now_iso()),
    };
    let mut doc = Value::Object(b.clone());
    doc["id"] = json!(new_id);
    doc["groupId"] = json!(group);
    doc["created"] = created;
    doc["updated"] = json!(now_iso());
    doc["links"] = link(req, &format!("/api/atlas/v2/groups/{group}/alertConfigs/{new_id}"));
    if doc.get("enabled").is_none() {
        doc["enabled"] = json!(false);
    }
    if doc.get("matchers").is_none() {
        doc["matchers"] = json!([]);
    }
    match id {
        Some(i) => {
            if let Some(a) = p.alerts.iter_mut().find(|a| a["id"] == json!(i)) {
                *a = doc.clone();
            }
            Ok((200, Some(doc)))
        }
        None => {
            p.alerts.push(doc.clone());
            Ok((201, Some(doc)))
        }
    }
}
