//! The sandbox's Atlas PrivateLink: one endpoint service per (project, provider, region), the
//! AWS interface endpoints registered with it, and the private connection strings the
//! clusters gain once they are reachable through them.
//!
//! Each rule cites its source: `openapi-v2.yaml` is ../shared/atlas/openapi-v2.yaml (the
//! 2026-08-19 copy), `PN §` a section of ../shared/atlas/PRIVATE-NETWORKING.md.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::state::{ClusterRec, Project, State};
use super::{Answer, ApiErr, Req, project};

/// An endpoint service and the interface endpoints registered with it.
#[derive(Debug, Clone)]
pub struct ServiceRec {
    pub doc: Value,
    /// INITIATING until then (PN §1.1 step 2: "Poll … until `status` is `WAITING_FOR_USER` or
    /// `AVAILABLE`"; `endpointServiceName` "returns null while it creates the endpoint
    /// service", openapi-v2.yaml AWSPrivateLinkConnection).
    pub ready_at: Instant,
    /// DELETING until then, then gone (PN §1.4 step 3: "Wait through `DELETING` to 404").
    pub gone_at: Option<Instant>,
    pub interfaces: BTreeMap<String, InterfaceRec>,
    /// Whether an interface was ever registered (the last one's removal removes the service).
    pub had_interfaces: bool,
}

/// An AWS interface endpoint registered with a service.
#[derive(Debug, Clone)]
pub struct InterfaceRec {
    pub registered: Instant,
    /// DELETING until then, then gone.
    pub gone_at: Option<Instant>,
    /// Set through the control API: Atlas (or AWS) refused the connection.
    pub refused: Option<(String, String)>,
    /// Whether the clusters were already reconfigured for this endpoint.
    pub announced: bool,
}

impl InterfaceRec {
    /// PN §1.1 step 5: `PENDING_ACCEPTANCE` → `PENDING` → `AVAILABLE` (openapi-v2.yaml
    /// AWSInterfaceEndpoint.connectionStatus; the other values are REJECTED and DELETING).
    fn status(&self, delay: Duration, now: Instant) -> &str {
        if self.gone_at.is_some() {
            return "DELETING";
        }
        if let Some((status, _)) = &self.refused {
            return status;
        }
        let age = now.duration_since(self.registered);
        if age < delay / 2 {
            "PENDING_ACCEPTANCE"
        } else if age < delay {
            "PENDING"
        } else {
            "AVAILABLE"
        }
    }
}

/// Atlas writes AWS regions both ways (`US_EAST_1` in requests, PN §1.1 step 1; `us-east-1`
/// in Terraform's examples of the same field): compare them in one form.
fn same_region(a: &str, b: &str) -> bool {
    let norm = |s: &str| s.to_ascii_lowercase().replace('_', "-");
    norm(a) == norm(b)
}

/// 24 hex digits as a `vpce-svc-` suffix needs 17: the first 17 of a fresh id.
fn service_name(region: &str, id: &str) -> String {
    let hex: String = id.chars().rev().take(17).collect();
    format!("com.amazonaws.vpce.{}.vpce-svc-{hex}", region.to_ascii_lowercase().replace('_', "-"))
}

fn not_found(id: &str) -> ApiErr {
    // A missing service is PRIVATE_ENDPOINT_SERVICE_NOT_FOUND (PN §1.2, from the Atlas
    // operator's internal/translation/privateendpoint/privateendpoint.go).
    ApiErr::new(404, "PRIVATE_ENDPOINT_SERVICE_NOT_FOUND", format!("Private endpoint service {id} not found.")).params(&[id])
}

/// The service as Atlas answers it (openapi-v2.yaml AWSPrivateLinkConnection:
/// `interfaceEndpoints` is required; its entries are the registered vpce ids, PN §1.2).
fn service_doc(s: &ServiceRec, now: Instant) -> Value {
    let mut doc = s.doc.clone();
    doc["interfaceEndpoints"] = json!(s.interfaces.keys().collect::<Vec<_>>());
    if s.gone_at.is_some() {
        doc["status"] = json!("DELETING");
    } else if now >= s.ready_at {
        doc["status"] = json!(if s.interfaces.is_empty() { "WAITING_FOR_USER" } else { "AVAILABLE" });
        let name = service_name(doc["regionName"].as_str().unwrap_or_default(), doc["id"].as_str().unwrap_or_default());
        doc["endpointServiceName"] = json!(name);
    }
    doc
}

fn interface_doc(vpce: &str, i: &InterfaceRec, delay: Duration, now: Instant) -> Value {
    let mut doc = json!({
        "cloudProvider": "AWS",
        "connectionStatus": i.status(delay, now),
        "deleteRequested": i.gone_at.is_some(),
        "interfaceEndpointId": vpce,
    });
    if let Some((_, message)) = &i.refused {
        doc["errorMessage"] = json!(message);
    }
    doc
}

/// Moves the services and interfaces on, and gives IDLE clusters their private strings.
/// Called before the clusters advance: an endpoint that became AVAILABLE, or went, puts the
/// project's clusters through an update first (PN §1.1 step 6: "Registering an endpoint
/// reconfigures the clusters, and the private strings appear only afterwards"; §1.4 step 1
/// waits for the clusters to be IDLE again after a removal).
pub(super) fn advance(p: &mut Project, delay: Duration, now: Instant) {
    let mut reconfigure = false;
    p.endpoint_services.retain(|s| s.gone_at.is_none_or(|t| now < t));
    for s in p.endpoint_services.iter_mut() {
        let before = s.interfaces.len();
        s.interfaces.retain(|_, i| i.gone_at.is_none_or(|t| now < t));
        reconfigure |= s.interfaces.len() != before;
        for i in s.interfaces.values_mut() {
            if !i.announced && i.status(delay, now) == "AVAILABLE" {
                i.announced = true;
                reconfigure = true;
            }
        }
    }
    // "When the last private endpoint is removed from a given private endpoint service, that
    // private endpoint service is also removed" (openapi-v2.yaml,
    // deleteGroupPrivateEndpointEndpointServiceEndpoint).
    p.endpoint_services.retain(|s| !(s.interfaces.is_empty() && s.had_interfaces));
    if reconfigure {
        for c in p.clusters.values_mut().filter(|c| !c.flex) {
            if c.doc["stateName"] == json!("IDLE") {
                c.doc["stateName"] = json!("UPDATING");
                c.until = now + delay;
            }
        }
    }
}

/// After the clusters advanced: an IDLE cluster lists a private string per endpoint only if
/// every region with its nodes has an AVAILABLE one ("only if you deployed a private endpoint
/// to all regions to which you deployed this clusters' nodes", openapi-v2.yaml
/// ClusterDescriptionConnectionStrings.privateEndpoint); the element names the endpoint
/// (PN §1.1 step 7: pick it by `endpoints[].endpointId`).
pub(super) fn private_strings(p: &mut Project, delay: Duration, now: Instant) {
    let available: Vec<(String, String)> = p
        .endpoint_services
        .iter()
        .filter(|s| s.gone_at.is_none())
        .flat_map(|s| {
            let region = s.doc["regionName"].as_str().unwrap_or_default().to_string();
            s.interfaces
                .iter()
                .filter(|(_, i)| i.status(delay, now) == "AVAILABLE")
                .map(move |(vpce, _)| (region.clone(), vpce.clone()))
                .collect::<Vec<_>>()
        })
        .collect();
    for c in p.clusters.values_mut().filter(|c| !c.flex) {
        if c.doc["stateName"] != json!("IDLE") {
            continue;
        }
        let strings = strings_for(c, &available);
        match c.doc.get_mut("connectionStrings").and_then(|s| s.as_object_mut()) {
            Some(cs) if strings.is_empty() => {
                cs.remove("privateEndpoint");
            }
            Some(cs) => {
                cs.insert("privateEndpoint".into(), Value::Array(strings));
            }
            None => {}
        }
    }
}

fn strings_for(c: &ClusterRec, available: &[(String, String)]) -> Vec<Value> {
    let regions: Vec<String> = c
        .doc
        .pointer("/replicationSpecs")
        .and_then(|r| r.as_array())
        .into_iter()
        .flatten()
        .flat_map(|spec| spec["regionConfigs"].as_array().cloned().unwrap_or_default())
        .filter(|rc| rc["providerName"] == json!("AWS"))
        .filter_map(|rc| rc["regionName"].as_str().map(String::from))
        .collect();
    if regions.is_empty() || !regions.iter().all(|r| available.iter().any(|(region, _)| same_region(region, r))) {
        return Vec::new();
    }
    let srv = c.doc.pointer("/connectionStrings/standardSrv").and_then(|v| v.as_str()).unwrap_or_default();
    let host = srv.trim_start_matches("mongodb+srv://");
    let (first, rest) = host.split_once('.').unwrap_or((host, ""));
    // One string per endpoint of the cluster's (first) region; the others' endpoints ride along.
    let home = &regions[0];
    available
        .iter()
        .filter(|(region, _)| same_region(region, home))
        .enumerate()
        .map(|(n, (region, vpce))| {
            let pl = format!("{first}-pl-{n}.{rest}");
            let mut endpoints = vec![json!({"endpointId": vpce, "providerName": "AWS", "region": region})];
            for other in regions.iter().skip(1) {
                if let Some((r, v)) = available.iter().find(|(r, _)| same_region(r, other)) {
                    endpoints.push(json!({"endpointId": v, "providerName": "AWS", "region": r}));
                }
            }
            json!({
                "connectionString": format!("mongodb://{pl}:1024/?ssl=true&authSource=admin"),
                "srvConnectionString": format!("mongodb+srv://{pl}"),
                "srvShardOptimizedConnectionString": format!("mongodb+srv://{pl}"),
                "type": "MONGOD",
                "endpoints": endpoints,
            })
        })
        .collect()
}

fn find<'a>(p: &'a mut Project, id: &str) -> Result<&'a mut ServiceRec, ApiErr> {
    p.endpoint_services.iter_mut().find(|s| s.doc["id"] == json!(id)).ok_or_else(|| not_found(id))
}

/// The PrivateLink routes, `path` relative to `/api/atlas/v2/groups`.
pub(super) fn route(st: &mut State, method: &str, path: &str, req: &Req) -> Option<Answer> {
    let group = req.param("groupId").to_string();
    let delay = st.cluster_delay;
    let now = Instant::now();
    let answer = match (method, path) {
        ("GET", "/{groupId}/privateEndpoint/{cloudProvider}/endpointService") => {
            // A bare array, not a paginated envelope (openapi-v2.yaml
            // listGroupPrivateEndpointEndpointService: `type: array` of EndpointService).
            let provider = req.param("cloudProvider").to_string();
            project(st, &group).map(|p| {
                let items: Vec<Value> =
                    p.endpoint_services.iter().filter(|s| s.doc["cloudProvider"] == json!(provider)).map(|s| service_doc(s, now)).collect();
                (200, Some(Value::Array(items)))
            })
        }
        ("POST", "/{groupId}/privateEndpoint/endpointService") => create_service(st, req, &group, delay, now),
        ("GET", "/{groupId}/privateEndpoint/{cloudProvider}/endpointService/{endpointServiceId}") => {
            let id = req.param("endpointServiceId").to_string();
            project(st, &group).and_then(|p| find(p, &id).map(|s| (200, Some(service_doc(s, now)))))
        }
        ("DELETE", "/{groupId}/privateEndpoint/{cloudProvider}/endpointService/{endpointServiceId}") => {
            // 204, then DELETING until gone; a missing one is 404 (PN §1.4 step 3).
            let id = req.param("endpointServiceId").to_string();
            project(st, &group).and_then(|p| {
                let s = find(p, &id)?;
                if s.gone_at.is_none() {
                    s.gone_at = Some(now + delay);
                }
                Ok((204, None))
            })
        }
        ("POST", "/{groupId}/privateEndpoint/{cloudProvider}/endpointService/{endpointServiceId}/endpoint") => {
            register(st, req, &group, now)
        }
        ("GET", "/{groupId}/privateEndpoint/{cloudProvider}/endpointService/{endpointServiceId}/endpoint/{endpointId}") => {
            let (id, vpce) = (req.param("endpointServiceId").to_string(), req.param("endpointId").to_string());
            project(st, &group).and_then(|p| {
                let s = find(p, &id)?;
                let i = s.interfaces.get(&vpce).ok_or_else(|| interface_not_found(&vpce, &id))?;
                Ok((200, Some(interface_doc(&vpce, i, delay, now))))
            })
        }
        ("DELETE", "/{groupId}/privateEndpoint/{cloudProvider}/endpointService/{endpointServiceId}/endpoint/{endpointId}") => {
            // 204, then DELETING (deleteRequested) until gone (PN §1.4 step 1).
            let (id, vpce) = (req.param("endpointServiceId").to_string(), req.param("endpointId").to_string());
            project(st, &group).and_then(|p| {
                let s = find(p, &id)?;
                let i = s.interfaces.get_mut(&vpce).ok_or_else(|| interface_not_found(&vpce, &id))?;
                if i.gone_at.is_none() {
                    i.gone_at = Some(now + delay);
                }
                Ok((204, None))
            })
        }
        _ => return None,
    };
    Some(answer)
}

fn interface_not_found(vpce: &str, service: &str) -> ApiErr {
    // The code is not recorded; the status is the spec's (openapi-v2.yaml
    // getGroupPrivateEndpointEndpointServiceEndpoint: 404 notFound).
    ApiErr::new(404, "RESOURCE_NOT_FOUND", format!("Endpoint {vpce} is not registered with private endpoint service {service}."))
        .params(&[vpce, service])
}

fn create_service(st: &mut State, req: &Req, group: &str, delay: Duration, now: Instant) -> Answer {
    let b = req.body_obj()?.clone();
    // providerName and region are required (openapi-v2.yaml CloudProviderEndpointServiceRequest).
    let provider = b.get("providerName").and_then(|v| v.as_str()).unwrap_or_default().to_string();
    let region = b.get("region").and_then(|v| v.as_str()).unwrap_or_default().to_string();
    if !["AWS", "AZURE", "GCP"].contains(&provider.as_str()) {
        return Err(ApiErr::new(400, "INVALID_ENUM_VALUE", format!("Invalid providerName {provider:?}.")).params(&["providerName"]));
    }
    if region.is_empty() {
        return Err(ApiErr::new(400, "MISSING_ATTRIBUTE", "The required attribute region was not specified.").params(&["region"]));
    }
    let id = st.new_id();
    let p = project(st, group)?;
    // One service per provider and region in a project: a second is 409
    // PRIVATE_ENDPOINT_SERVICE_ALREADY_EXISTS_FOR_REGION (PN §1.1 step 1, #3422, #590, #1872).
    if p.endpoint_services
        .iter()
        .any(|s| s.doc["cloudProvider"] == json!(provider) && same_region(s.doc["regionName"].as_str().unwrap_or(""), &region))
    {
        return Err(ApiErr::new(
            409,
            "PRIVATE_ENDPOINT_SERVICE_ALREADY_EXISTS_FOR_REGION",
            format!("A private endpoint service already exists for region {region}."),
        )
        .params(&[&region]));
    }
    let doc = json!({"cloudProvider": provider, "id": id, "regionName": region, "status": "INITIATING", "interfaceEndpoints": []});
    let rec = ServiceRec { doc, ready_at: now + delay, gone_at: None, interfaces: BTreeMap::new(), had_interfaces: false };
    let answer = service_doc(&rec, now);
    p.endpoint_services.push(rec);
    Ok((200, Some(answer)))
}

fn register(st: &mut State, req: &Req, group: &str, now: Instant) -> Answer {
    let id = req.param("endpointServiceId").to_string();
    let vpce = req.body_obj()?.get("id").and_then(|v| v.as_str()).unwrap_or_default().to_string();
    // `id` is required, `^vpce-[0-9a-f]{17}$` (openapi-v2.yaml CreateAWSEndpointRequest).
    let valid =
        vpce.strip_prefix("vpce-").is_some_and(|h| h.len() == 17 && h.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    if !valid {
        return Err(ApiErr::new(400, "INVALID_ATTRIBUTE", format!("Invalid attribute id {vpce:?}: expected vpce- and 17 hex digits."))
            .params(&["id"]));
    }
    let delay = st.cluster_delay;
    let p = project(st, group)?;
    let s = find(p, &id)?;
    // The service must be ready: its endpointServiceName is what the AWS endpoint was made for
    // (PN §1.1 steps 2-3).
    if s.gone_at.is_some() || now < s.ready_at {
        let status = service_doc(s, now)["status"].clone();
        return Err(
            ApiErr::new(409, "PRIVATE_ENDPOINT_SERVICE_NOT_READY", format!("Private endpoint service {id} is {status}.")).params(&[&id])
        );
    }
    // 409 is among the spec's answers (openapi-v2.yaml
    // createGroupPrivateEndpointEndpointServiceEndpoint): a vpce registered twice.
    if s.interfaces.contains_key(&vpce) {
        return Err(ApiErr::new(409, "PRIVATE_ENDPOINT_ALREADY_EXISTS", format!("Endpoint {vpce} is already registered.")).params(&[&vpce]));
    }
    let rec = InterfaceRec { registered: now, gone_at: None, refused: None, announced: false };
    let doc = interface_doc(&vpce, &rec, delay, now);
    s.interfaces.insert(vpce, rec);
    s.had_interfaces = true;
    Ok((200, Some(doc)))
}

/// The control API's `POST /__sandbox/private-endpoints/{group}/{vpce}/refuse` with
/// `{"status": "REJECTED", "error": "..."}`: the connection fails as Atlas reports it
/// (PN §1.5: AWS errors surface in Atlas' `errorMessage`).
pub(super) fn refuse(st: &mut State, group: &str, vpce: &str, status: &str, message: &str) -> bool {
    let Some(p) = st.projects.get_mut(group) else { return false };
    for s in p.endpoint_services.iter_mut() {
        if let Some(i) = s.interfaces.get_mut(vpce) {
            i.refused = Some((status.to_string(), message.to_string()));
            return true;
        }
    }
    false
}
