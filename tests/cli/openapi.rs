//! Checks request and response bodies against MongoDB's official Atlas Admin API spec
//! (`tests/fixtures/atlas/openapi-subset.yaml`), as JSON Schema.

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::support::repo;

pub struct OpenApi {
    doc: Value,
    /// Components as JSON Schema for requests (readOnly fields not required) and responses
    /// (writeOnly fields not required).
    request_components: Value,
    response_components: Value,
    validators: HashMap<String, jsonschema::Validator>,
}

#[derive(Clone, Copy, PartialEq)]
enum Direction {
    Request,
    Response,
}

/// OpenAPI 3.0 schemas read as JSON Schema, the way OpenAPI tools read them:
/// - `discriminator` picks the `oneOf` alternative by the property's value, and that
///   alternative (not the parent's own `properties`) describes the object;
/// - `oneOf` without a discriminator means "one of these shapes" (the spec's alternatives
///   overlap: an M10 hardware spec is valid for AWS, Azure and GCP alike), checked as `anyOf`;
/// - `nullable: true` admits null; a `type: object` beside string-only alternatives (the spec's
///   `regionName`) is a generator artifact and is dropped;
/// - `readOnly` properties are not required in requests, `writeOnly` ones not in responses.
fn to_json_schema(v: &Value, dir: Direction) -> Value {
    match v {
        Value::Object(map) => {
            let mut out = serde_json::Map::new();
            for (k, child) in map {
                out.insert(k.clone(), to_json_schema(child, dir));
            }
            if let Some(alts) = out.remove("oneOf") {
                match out.remove("discriminator") {
                    Some(d) => {
                        let prop = d["propertyName"].as_str().unwrap_or("").to_string();
                        let picks: Vec<Value> = d["mapping"]
                            .as_object()
                            .map(|m| m.iter().map(|(k, r)| json!({"if": {"properties": {prop.clone(): {"const": k}}, "required": [prop.clone()]}, "then": {"$ref": r}})).collect())
                            .unwrap_or_default();
                        out.insert("anyOf".into(), alts);
                        // The chosen alternative describes the object; the parent's own
                        // `properties` are a base the alternatives override (the spec's
                        // HostMetricThreshold lists lower-case units its alternatives replace
                        // with RAW).
                        out.remove("properties");
                        out.remove("required");
                        let mut all = out.remove("allOf").and_then(|a| a.as_array().cloned()).unwrap_or_default();
                        all.extend(picks);
                        out.insert("allOf".into(), Value::Array(all));
                    }
                    None => {
                        out.insert("anyOf".into(), alts);
                    }
                }
            }
            // A discriminator without `oneOf` (EndpointService, PrivateLinkEndpoint) names its
            // alternatives only in `mapping`: the one the property picks describes the object too.
            if let Some(d) = out.remove("discriminator") {
                let prop = d["propertyName"].as_str().unwrap_or("").to_string();
                let picks: Vec<Value> = d["mapping"]
                    .as_object()
                    .map(|m| m.iter().map(|(k, r)| json!({"if": {"properties": {prop.clone(): {"const": k}}, "required": [prop.clone()]}, "then": {"$ref": r}})).collect())
                    .unwrap_or_default();
                let mut all = out.remove("allOf").and_then(|a| a.as_array().cloned()).unwrap_or_default();
                all.extend(picks);
                out.insert("allOf".into(), Value::Array(all));
            }
            let string_alts = out
                .get("anyOf")
                .and_then(|a| a.as_array())
                .is_some_and(|a| !a.is_empty() && a.iter().all(|x| x.get("type") == Some(&json!("string"))));
            if string_alts && out.get("type") == Some(&json!("object")) {
                out.remove("type");
            }
            if out.remove("nullable") == Some(json!(true))
                && let Some(t) = out.get("type").cloned()
            {
                out.insert("type".into(), json!([t, "null"]));
            }
            let skip = if dir == Direction::Request { "readOnly" } else { "writeOnly" };
            if let (Some(props), Some(Value::Array(req))) = (out.get("properties").cloned(), out.get("required").cloned()) {
                let keep: Vec<Value> = req
                    .into_iter()
                    .filter(|r| r.as_str().and_then(|name| props.get(name)).is_none_or(|p| p.get(skip) != Some(&json!(true))))
                    .collect();
                out.insert("required".into(), Value::Array(keep));
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(|i| to_json_schema(i, dir)).collect()),
        other => other.clone(),
    }
}

/// Where real Atlas traffic and the spec disagree, real traffic wins (see the captures):
/// - error `parameters` are strings (captures/errors/*.snaphost);
/// - threshold alerts use `GREATER_THAN`/`LESS_THAN` and upper-case units
///   (captures/TestAlertConfig/List: REPLICATION_OPLOG_WINDOW_RUNNING_OUT
///   `{"operator":"LESS_THAN","threshold":1,"units":"HOURS"}`), where the spec's
///   `AlertsThresholdInteger` lists `<`/`>` and lower-case units.
fn real_traffic_patches(components: &mut Value) {
    let schemas = &mut components["schemas"];
    schemas["ApiError"]["properties"]["parameters"]["items"] = json!({});
    // An AWS service's `interfaceEndpoints` are the registered vpce ids, not the 24-hex ids
    // the spec's items say: the Atlas operator passes each as the `{endpointId}` (pattern
    // `^vpce-…`) of GET …/endpoint/{endpointId} (internal/translation/privateendpoint), and
    // Terraform calls them "interface endpoints in your VPC" (PRIVATE-NETWORKING.md §1.2).
    schemas["AWSPrivateLinkConnection"]["properties"]["interfaceEndpoints"]["items"] = json!({"type": "string"});
    // A peer's `routeTableCidrBlock` is a CIDR block: the field's own description says "expressed
    // in Classless Inter-Domain Routing (CIDR) notation", and Terraform's AWS example sends the
    // VPC's `cidr_block` (examples/mongodbatlas_network_peering/aws, PRIVATE-NETWORKING.md
    // §1.8), where the spec's pattern admits a bare address only. `accepterRegionName` is null
    // for a same-region peer (terraform-provider-mongodbatlas #53).
    let peer = &mut schemas["AwsNetworkPeeringConnectionSettings"]["properties"];
    peer["routeTableCidrBlock"]["pattern"] = json!(r"^(\d{1,3}\.){3}\d{1,3}/\d{1,2}$");
    peer["accepterRegionName"]["nullable"] = json!(true);
    let t = &mut schemas["AlertsThresholdInteger"]["properties"];
    t["operator"] = json!({"enum": ["<", ">", "GREATER_THAN", "LESS_THAN"], "type": "string"});
    if let Some(units) = t["units"]["enum"].as_array_mut() {
        for u in
            ["RAW", "NANOSECONDS", "MILLISECONDS", "SECONDS", "MINUTES", "HOURS", "DAYS", "BYTES", "KILOBYTES", "MEGABYTES", "GIGABYTES"]
        {
            units.push(json!(u));
        }
    }
}

impl OpenApi {
    pub fn load() -> OpenApi {
        let text = std::fs::read_to_string(repo().join("tests/fixtures/atlas/openapi-subset.yaml")).unwrap();
        let doc: Value = serde_yaml::from_str(&text).unwrap();
        let mut components = doc["components"].clone();
        real_traffic_patches(&mut components);
        let request_components = to_json_schema(&components, Direction::Request);
        let response_components = to_json_schema(&components, Direction::Response);
        OpenApi { doc, request_components, response_components, validators: HashMap::new() }
    }

    fn check(&mut self, key: String, schema: Value, instance: &Value) -> Result<(), String> {
        if !self.validators.contains_key(&key) {
            let dir = if key.starts_with("req ") { Direction::Request } else { Direction::Response };
            let mut root = to_json_schema(&schema, dir);
            root["components"] = if dir == Direction::Request { self.request_components.clone() } else { self.response_components.clone() };
            let v = jsonschema::options()
                .should_validate_formats(false)
                .build(&root)
                .map_err(|e| format!("{key}: the schema does not compile: {e}"))?;
            self.validators.insert(key.clone(), v);
        }
        let v = &self.validators[&key];
        let errors: Vec<String> = v.iter_errors(instance).take(5).map(|e| format!("{} at {}", e, e.instance_path())).collect();
        if errors.is_empty() { Ok(()) } else { Err(format!("{key}: {}", errors.join("; "))) }
    }

    fn operation(&self, method: &str, template: &str) -> Option<&Value> {
        self.doc["paths"].get(template).and_then(|p| p.get(method.to_ascii_lowercase()))
    }

    /// A request body against the operation's request schema for that media-type version.
    pub fn check_request(&mut self, method: &str, template: &str, version: &str, body: &Value) -> Result<(), String> {
        let media = format!("application/vnd.atlas.{version}+json");
        let op = self.operation(method, template).ok_or_else(|| format!("{method} {template} is not in the spec"))?;
        let schema = op
            .pointer("/requestBody/content")
            .and_then(|c| c.get(&media))
            .and_then(|c| c.get("schema"))
            .cloned()
            .ok_or_else(|| format!("{method} {template} has no request body of type {media}"))?;
        self.check(format!("req {method} {template} {version}"), schema, body)
    }

    /// A response body against the schema the spec gives for its status (real Atlas answers 201
    /// where the spec says 200: a 2xx without its own schema uses the operation's 2xx schema).
    pub fn check_response(&mut self, method: &str, template: &str, version: &str, status: u16, body: &Value) -> Result<(), String> {
        if status >= 400 {
            let schema = json!({"$ref": "#/components/schemas/ApiError"});
            return self.check("ApiError".to_string(), schema, body);
        }
        let media = format!("application/vnd.atlas.{version}+json");
        let op = self.operation(method, template).ok_or_else(|| format!("{method} {template} is not in the spec"))?;
        let responses = op.get("responses").and_then(|r| r.as_object()).cloned().unwrap_or_default();
        let schema = responses
            .get(&status.to_string())
            .or_else(|| responses.iter().find(|(k, _)| k.starts_with('2')).map(|(_, v)| v))
            .and_then(|r| r.pointer("/content").and_then(|c| c.get(&media)))
            .and_then(|c| c.get("schema"))
            .cloned();
        match schema {
            Some(s) => self.check(format!("resp {method} {template} {version} {status}"), s, body),
            None if body.is_null() || body == &json!({}) => Ok(()),
            None => Err(format!("{method} {template} {version}: no response schema for {status}")),
        }
    }
}

/// Every violation in a sandbox log: requests poactl sent, responses the sandbox sent.
pub fn violations(log: &[Value]) -> Vec<String> {
    let mut api = OpenApi::load();
    let mut out = Vec::new();
    for e in log {
        let method = e["method"].as_str().unwrap_or("");
        let template = e["operation"].as_str().unwrap_or("");
        let version = e["version"].as_str().unwrap_or("");
        let status = e["status"].as_u64().unwrap_or(0) as u16;
        if let Some(body) = e.get("request").filter(|b| !b.is_null())
            && let Err(err) = api.check_request(method, template, version, body)
        {
            out.push(format!("request {err}\n    body: {body}"));
        }
        if let Some(body) = e.get("response").filter(|b| !b.is_null())
            && let Err(err) = api.check_response(method, template, version, status, body)
        {
            out.push(format!("response {err}"));
        }
    }
    out.sort();
    out.dedup();
    out
}
