//! The project IP access list: entries (`cidrBlock`, `ipAddress` or `awsSecurityGroup`),
//! temporary ones (`deleteAfterDate`) that Atlas removes when they expire, and the entry
//! status Atlas reports while it applies an entry to its cloud providers.

use mongodb::bson::DateTime;
use serde_json::{Value, json};

use super::state::{Project, State};
use super::{Answer, ApiErr, Req, encode_segment, link, paginate, project};

const BASE: &str = "/api/atlas/v2/groups";

/// The access-list routes, `path` relative to `/api/atlas/v2/groups`.
pub(super) fn route(st: &mut State, method: &str, path: &str, req: &Req) -> Option<Answer> {
    let ours = path == "/{groupId}/accessList" || path.starts_with("/{groupId}/accessList/");
    ours.then(|| answer(st, method, path, req))
}

fn answer(st: &mut State, method: &str, path: &str, req: &Req) -> Answer {
    let group = req.param("groupId").to_string();
    match (method, path) {
        ("GET", "/{groupId}/accessList") => {
            let items = project(st, &group)?.access_list.clone();
            paginate(req, &format!("{BASE}/{group}/accessList"), items)
        }
        ("POST", "/{groupId}/accessList") => add_access(st, req, &group),
        ("GET", "/{groupId}/accessList/{entryValue}") => {
            let entry = req.param("entryValue").to_string();
            let p = project(st, &group)?;
            p.access_list
                .iter()
                .find(|e| access_matches(e, &entry))
                .map(|e| (200, Some(e.clone())))
                .ok_or_else(|| access_missing(&entry, &group))
        }
        ("DELETE", "/{groupId}/accessList/{entryValue}") => {
            let entry = req.param("entryValue").to_string();
            let p = project(st, &group)?;
            let before = p.access_list.len();
            p.access_list.retain(|e| !access_matches(e, &entry));
            if p.access_list.len() == before {
                return Err(access_missing(&entry, &group));
            }
            Ok((204, None))
        }
        ("GET", "/{groupId}/accessList/{entryValue}/status") => {
            // getGroupAccessListStatus (openapi-v2.yaml, NetworkPermissionEntryStatus): PENDING,
            // FAILED or ACTIVE. The sandbox applies an entry at once, so it is ACTIVE as soon as
            // it is listed; an entry not listed is the same 404 as GET on the entry.
            let entry = req.param("entryValue").to_string();
            let p = project(st, &group)?;
            expire(p);
            if p.access_list.iter().any(|e| access_matches(e, &entry)) {
                Ok((200, Some(json!({"STATUS": "ACTIVE"}))))
            } else {
                Err(access_missing(&entry, &group))
            }
        }
        _ => Err(ApiErr::new(404, "RESOURCE_NOT_FOUND", format!("No route for {method} {path}."))),
    }
}

/// Atlas deletes a temporary entry after its `deleteAfterDate` (openapi-v2.yaml,
/// NetworkPermissionEntry.deleteAfterDate: "Date and time after which MongoDB Cloud deletes
/// the temporary access list entry").
fn expire(p: &mut Project) {
    let now = DateTime::now();
    p.access_list.retain(|e| {
        e.get("deleteAfterDate").and_then(Value::as_str).and_then(|d| DateTime::parse_rfc3339_str(d).ok()).is_none_or(|d| d > now)
    });
}

/// `deleteAfterDate`: ISO 8601, "later than the current date but no later than one week after
/// you submit this request" (openapi-v2.yaml, NetworkPermissionEntry.deleteAfterDate). A
/// security-group entry cannot be temporary (../shared/atlas/PRIVATE-NETWORKING.md §1.7).
/// Atlas' error code for these is not recorded; INVALID_ATTRIBUTE is its generic one.
fn check_delete_after(d: &Value, entry: &Value) -> Result<String, ApiErr> {
    let bad = |why: &str| {
        ApiErr::new(400, "INVALID_ATTRIBUTE", format!("Invalid attribute deleteAfterDate specified: {why}.")).params(&["deleteAfterDate"])
    };
    if entry.get("awsSecurityGroup").is_some() {
        return Err(bad("an AWS security group entry cannot be temporary"));
    }
    let text = d.as_str().ok_or_else(|| bad("not a date"))?;
    let at = DateTime::parse_rfc3339_str(text).map_err(|_| bad("not an ISO 8601 date and time"))?;
    let now = DateTime::now().timestamp_millis();
    let ms = at.timestamp_millis();
    if ms <= now {
        return Err(bad("the date must be in the future"));
    }
    if ms > now + 7 * 86_400_000 {
        return Err(bad("the date must be within one week"));
    }
    Ok(at.try_to_rfc3339_string().unwrap_or_else(|_| text.to_string()))
}

pub(super) fn access_key(e: &Value) -> String {
    e.get("cidrBlock")
        .or_else(|| e.get("awsSecurityGroup"))
        .or_else(|| e.get("ipAddress"))
        .and_then(|v| v.as_str())
        .unwrap_or("")
        .to_string()
}

fn access_matches(e: &Value, entry: &str) -> bool {
    [e.get("cidrBlock"), e.get("ipAddress"), e.get("awsSecurityGroup")].iter().flatten().any(|v| v.as_str() == Some(entry))
}

fn access_missing(entry: &str, group: &str) -> ApiErr {
    ApiErr::new(404, "ATLAS_NETWORK_PERMISSION_ENTRY_NOT_FOUND", format!("IP Address {entry} not on Atlas access list for group {group}."))
        .params(&[entry, group])
}

fn add_access(st: &mut State, req: &Req, group: &str) -> Answer {
    let entries = req
        .body
        .as_ref()
        .and_then(|b| b.as_array())
        .cloned()
        .ok_or_else(|| ApiErr::new(400, "INVALID_JSON", "The request body must be a JSON array of entries."))?;
    let mut normalized = Vec::new();
    for e in entries {
        let mut n = json!({"groupId": group});
        let set: Vec<&str> = ["cidrBlock", "ipAddress", "awsSecurityGroup"].into_iter().filter(|k| e.get(*k).is_some()).collect();
        if set.len() != 1 {
            return Err(ApiErr::new(400, "INVALID_ATTRIBUTE", "Each entry needs exactly one of cidrBlock, ipAddress or awsSecurityGroup.")
                .params(&["cidrBlock"]));
        }
        if let Some(ip) = e.get("ipAddress").and_then(|v| v.as_str()) {
            if ip.parse::<std::net::IpAddr>().is_err() {
                return Err(ApiErr::new(
                    400,
                    "INVALID_IP_ADDRESS_OR_CIDR_NOTATION",
                    format!("The address {ip} must be in valid IP address or CIDR notation."),
                )
                .params(&[ip]));
            }
            n["ipAddress"] = json!(ip);
            n["cidrBlock"] = json!(if ip.contains(':') { format!("{ip}/128") } else { format!("{ip}/32") });
        }
        if let Some(c) = e.get("cidrBlock").and_then(|v| v.as_str()) {
            let ok =
                c.split_once('/').is_some_and(|(a, l)| a.parse::<std::net::IpAddr>().is_ok() && l.parse::<u8>().is_ok_and(|l| l <= 128));
            if !ok {
                return Err(ApiErr::new(
                    400,
                    "INVALID_IP_ADDRESS_OR_CIDR_NOTATION",
                    format!("The address {c} must be in valid IP address or CIDR notation."),
                )
                .params(&[c]));
            }
            n["cidrBlock"] = json!(c);
        }
        if let Some(sg) = e.get("awsSecurityGroup") {
            // "You must configure … VPC peering for your project before you can add an AWS
            // security group" (openapi-v2.yaml NetworkPermissionEntry.awsSecurityGroup); the
            // error code is not recorded.
            let peered = st.projects.get(group).is_some_and(|p| p.peers.iter().any(|r| r.gone_at.is_none() && r.accepted_at.is_some()));
            if !peered {
                return Err(ApiErr::new(
                    400,
                    "NO_VPC_PEERING_FOR_SECURITY_GROUP",
                    "Cannot add an AWS security group without an active VPC peering connection.",
                )
                .params(&["awsSecurityGroup"]));
            }
            n["awsSecurityGroup"] = sg.clone();
        }
        if let Some(c) = e.get("comment") {
            if c.as_str().is_some_and(|s| s.chars().count() > 80) {
                return Err(ApiErr::new(400, "INVALID_ATTRIBUTE", "Invalid attribute comment specified.").params(&["comment"]));
            }
            n["comment"] = c.clone();
        }
        if let Some(d) = e.get("deleteAfterDate") {
            n["deleteAfterDate"] = json!(check_delete_after(d, &n)?);
        }
        let key = access_key(&n);
        n["links"] = link(req, &format!("/api/atlas/v2/groups/{group}/accessList/{}", encode_segment(&key)));
        normalized.push(n);
    }
    let p = project(st, group)?;
    expire(p);
    for n in normalized {
        let key = access_key(&n);
        match p.access_list.iter_mut().find(|e| access_key(e) == key) {
            Some(existing) => *existing = n,
            None => p.access_list.push(n),
        }
    }
    let items = p.access_list.clone();
    paginate(req, &format!("/api/atlas/v2/groups/{group}/accessList"), items).map(|(_, b)| (201, b))
}
