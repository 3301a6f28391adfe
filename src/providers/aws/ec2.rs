//! EC2 and IAM through their Query APIs, signed with SigV4: the calls a PrivateLink endpoint
//! needs (the interface endpoint and its security group) and the Atlas key role needs (a
//! role, its trust and its inline policy), not the SDK crates, whose builds alone would cost
//! more than the rest of the AWS SDKs together (docs/design.md, "EC2 without its SDK").
//!
//! IAM speaks the same protocol (IAM API reference, "Making Query requests"): `Version`
//! 2010-05-08, one global endpoint signed for us-east-1, and errors as
//! `<ErrorResponse><Error><Code>` (`NoSuchEntity`, `EntityAlreadyExists`; `Throttling` and
//! `ServiceFailure` are transient).
//!
//! What the real service does that this client relies on (EC2 API reference, "Query
//! requests" and "Error codes"):
//! - a request is a form-encoded POST with `Action` and `Version=2016-11-15`; lists are
//!   flattened as `Name.1`, `Name.2`, structures as `Name.1.Member` (capitalized member names,
//!   `Groups` for a permission's `UserIdGroupPairs`);
//! - an answer is XML, its lists `<item>` elements inside `...Set` elements;
//! - an error is `<Response><Errors><Error><Code>`, `<Message>`; `RequestLimitExceeded`
//!   (throttling), `InternalError`, `Unavailable` and 5xx are transient;
//! - `ClientToken` makes CreateVpcEndpoint idempotent: the same token gives the same
//!   endpoint, so a request whose answer was lost can be sent again.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use aws_config::SdkConfig;
use aws_credential_types::provider::ProvideCredentials;

use crate::providers::ProviderError;

/// The Query API version every EC2 call names.
const VERSION: &str = "2016-11-15";

/// One element of an answer: its name, text, and children in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Node {
    pub name: String,
    pub text: String,
    pub children: Vec<Node>,
}

impl Node {
    /// The first child named `name`.
    pub fn child(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }

    /// The text of the first child named `name` ("" when there is none).
    pub fn text_of(&self, name: &str) -> &str {
        self.child(name).map(|c| c.text.as_str()).unwrap_or("")
    }

    /// The `<member>`s of the child list `name`, as IAM and SNS write lists (`Topics`,
    /// `Subscriptions`, `Tags`).
    pub fn members(&self, name: &str) -> impl Iterator<Item = &Node> {
        self.child(name).into_iter().flat_map(|c| c.children.iter().filter(|i| i.name == "member"))
    }

    /// The `<item>`s of the child list `name` (`subnetIdSet`, `ipPermissions`...).
    pub fn items(&self, name: &str) -> impl Iterator<Item = &Node> {
        self.child(name).into_iter().flat_map(|c| c.children.iter().filter(|i| i.name == "item"))
    }

    /// A `tagSet` as a map.
    pub fn tags(&self) -> BTreeMap<String, String> {
        self.items("tagSet").map(|t| (t.text_of("key").to_string(), t.text_of("value").to_string())).collect()
    }
}

/// Parses an answer into its root element. Namespaces are dropped (EC2 names one per answer).
pub fn parse(xml: &str) -> Result<Node, String> {
    let mut stack: Vec<Node> = vec![Node::default()];
    for token in xmlparser::Tokenizer::from(xml) {
        match token.map_err(|e| e.to_string())? {
            xmlparser::Token::ElementStart { local, .. } => stack.push(Node { name: local.to_string(), ..Node::default() }),
            xmlparser::Token::ElementEnd { end, .. } => match end {
                xmlparser::ElementEnd::Open => {}
                xmlparser::ElementEnd::Close(..) | xmlparser::ElementEnd::Empty => {
                    let done = stack.pop().ok_or("unbalanced XML")?;
                    stack.last_mut().ok_or("unbalanced XML")?.children.push(done);
                }
            },
            xmlparser::Token::Text { text } => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&unescape(text.as_str()));
                }
            }
            xmlparser::Token::Cdata { text, .. } => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(text.as_str());
                }
            }
            _ => {}
        }
    }
    let mut root = stack.pop().ok_or("empty XML")?;
    if !stack.is_empty() {
        return Err("unclosed XML element".into());
    }
    root.children.pop().ok_or_else(|| "no root element".to_string())
}

fn unescape(s: &str) -> String {
    if !s.contains('&') {
        return s.trim().to_string();
    }
    let mut out = s.trim().replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&apos;", "'");
    while let Some(at) = out.find("&#") {
        let Some(end) = out[at..].find(';') else { break };
        let code = &out[at + 2..at + end];
        let c = match code.strip_prefix('x') {
            Some(hex) => u32::from_str_radix(hex, 16).ok(),
            None => code.parse().ok(),
        }
        .and_then(char::from_u32);
        match c {
            Some(c) => out.replace_range(at..at + end + 1, &c.to_string()),
            None => break,
        }
    }
    out.replace("&amp;", "&")
}

/// A refusal EC2 answered, with its code.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{action}: {code}: {message}")]
pub struct Ec2Refusal {
    pub action: String,
    pub code: String,
    pub message: String,
}

/// Query parameters, in the order they are added (the signature covers the body as sent).
#[derive(Debug, Clone, Default)]
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn new() -> Self {
        Params::default()
    }

    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
    }

    pub fn set(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.0.push((name.into(), value.into()));
        self
    }

    /// A flattened list: `Name.1`, `Name.2`...
    pub fn list<S: AsRef<str>>(mut self, name: &str, values: &[S]) -> Self {
        for (i, v) in values.iter().enumerate() {
            self.0.push((format!("{name}.{}", i + 1), v.as_ref().to_string()));
        }
        self
    }

    /// `Filter.N.Name` with its values.
    pub fn filter(self, name: &str, values: &[&str]) -> Self {
        let n = self.0.iter().filter(|(k, _)| k.starts_with("Filter.") && k.ends_with(".Name")).count() + 1;
        let mut p = self.set(format!("Filter.{n}.Name"), name);
        for (i, v) in values.iter().enumerate() {
            p = p.set(format!("Filter.{n}.Value.{}", i + 1), *v);
        }
        p
    }

    /// Tags as IAM and SNS take them: `Tags.member.N.Key` and `.Value`.
    pub fn member_tags(mut self, tags: &BTreeMap<String, String>) -> Self {
        for (i, (k, v)) in tags.iter().enumerate() {
            self.0.push((format!("Tags.member.{}.Key", i + 1), k.clone()));
            self.0.push((format!("Tags.member.{}.Value", i + 1), v.clone()));
        }
        self
    }

    /// Tags written with the resource (`TagSpecification.1`).
    pub fn tag_on_create(mut self, resource_type: &str, tags: &BTreeMap<String, String>) -> Self {
        self.0.push(("TagSpecification.1.ResourceType".into(), resource_type.into()));
        for (i, (k, v)) in tags.iter().enumerate() {
            self.0.push((format!("TagSpecification.1.Tag.{}.Key", i + 1), k.clone()));
            self.0.push((format!("TagSpecification.1.Tag.{}.Value", i + 1), v.clone()));
        }
        self
    }
}

/// A Query API client: EC2 in one region, or IAM.
#[derive(Clone)]
pub struct Query {
    base: SdkConfig,
    http: reqwest::Client,
    pub region: String,
    endpoint: String,
    service: &'static str,
    version: &'static str,
}

/// The EC2 client (a Query client for one region).
pub type Ec2 = Query;

/// Codes EC2 documents as transient (EC2 API reference, "Error codes": RequestLimitExceeded
/// is throttling; InternalError and Unavailable are server errors).
/// SNS answers `Throttled` (ThrottledException) and `InternalError` / `InternalFailure` (SNS API
/// reference, "Common Errors" and each action's "Errors").
const TRANSIENT: &[&str] = &[
    "RequestLimitExceeded",
    "InternalError",
    "Unavailable",
    "ServiceUnavailable",
    "Throttling",
    "ServiceFailure",
    "Throttled",
    "InternalFailure",
];

/// The endpoint a service is reached at: its own variable, the shared one, or AWS'.
pub(crate) fn endpoint_for(service_var: &str, default: String) -> String {
    [service_var, "AWS_ENDPOINT_URL"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
        .unwrap_or(default)
        .trim_end_matches('/')
        .to_string()
}

/// An HTTP client bounded by the run's attempt deadline.
pub(crate) fn bounded_http() -> reqwest::Client {
    let attempt = crate::deadline::current().attempt;
    reqwest::Client::builder().connect_timeout(attempt).timeout(attempt).build().unwrap_or_default()
}

impl Query {
    pub fn new(base: &SdkConfig, region: &str) -> Query {
        let endpoint = endpoint_for("AWS_ENDPOINT_URL_EC2", format!("https://ec2.{region}.amazonaws.com"));
        Query { base: base.clone(), http: bounded_http(), region: region.to_string(), endpoint, service: "ec2", version: VERSION }
    }

    /// IAM: global, signed for us-east-1.
    pub fn iam(base: &SdkConfig) -> Query {
        let endpoint = endpoint_for("AWS_ENDPOINT_URL_IAM", "https://iam.amazonaws.com".to_string());
        Query { base: base.clone(), http: bounded_http(), region: "us-east-1".into(), endpoint, service: "iam", version: "2010-05-08" }
    }

    /// SNS in one region (SNS API reference, "Query requests": `Version` 2010-03-31; errors as
    /// `<ErrorResponse><Error><Code>`, lists as `<member>`s).
    pub fn sns(base: &SdkConfig, region: &str) -> Query {
        let endpoint = endpoint_for("AWS_ENDPOINT_URL_SNS", format!("https://sns.{region}.amazonaws.com"));
        Query { base: base.clone(), http: bounded_http(), region: region.to_string(), endpoint, service: "sns", version: "2010-03-31" }
    }

    /// Every page of a Describe call: the `<item>`s of `set`, each read by `read`.
    pub async fn paged<T>(&self, action: &str, set: &str, filter: Params, read: fn(&Node) -> T) -> Result<Vec<T>, ProviderError> {
        let mut out = Vec::new();
        let mut token = String::new();
        loop {
            let mut p = filter.clone();
            if !token.is_empty() {
                p = p.set("NextToken", token.clone());
            }
            let answer = self.call(action, p, true).await?;
            out.extend(answer.items(set).map(read));
            token = answer.text_of("nextToken").to_string();
            if token.is_empty() {
                return Ok(out);
            }
        }
    }

    /// Sends one action and returns the answer's root element. Transient refusals and
    /// transport errors are asked again with backoff while the call's deadline allows; a
    /// write is asked again only when `idempotent` (a client token, or a call whose repeat is
    /// refused rather than doubled).
    pub async fn call(&self, action: &str, params: Params, idempotent: bool) -> Result<Node, ProviderError> {
        // Built in a block: the serializer is not Send, and must not live across an await.
        let body = {
            let mut form = form_urlencoded::Serializer::new(String::new());
            form.append_pair("Action", action).append_pair("Version", self.version);
            for (k, v) in &params.0 {
                form.append_pair(k, v);
            }
            form.finish()
        };
        let deadline = std::time::Instant::now() + crate::deadline::current().call;
        let mut delay = Duration::from_millis(200);
        loop {
            let attempt = self.attempt(action, &body).await;
            let retry = match &attempt {
                Ok(_) => false,
                Err(Attempt::Refused(r)) => TRANSIENT.contains(&r.code.as_str()),
                Err(Attempt::Server(_)) => true,
                Err(Attempt::Transport { .. }) => idempotent,
                Err(Attempt::Fatal(_)) => false,
            };
            if !retry || std::time::Instant::now() + delay >= deadline {
                return attempt.map_err(|e| e.into_error(action, &self.endpoint, !idempotent));
            }
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = crate::interrupt::wait() => return attempt.map_err(|e| e.into_error(action, &self.endpoint, !idempotent)),
            }
            delay = (delay * 2).min(Duration::from_secs(10));
        }
    }

    async fn attempt(&self, action: &str, body: &str) -> Result<Node, Attempt> {
        let url = format!("{}/", self.endpoint);
        let headers = self.sign(&url, body).await.map_err(Attempt::Fatal)?;
        let mut req = self.http.post(&url).body(body.to_string());
        for (k, v) in headers {
            req = req.header(k, v);
        }
        let transport = |e: reqwest::Error| Attempt::Transport { timed_out: e.is_timeout(), message: crate::secrets::error_chain(&e) };
        let resp = req.send().await.map_err(transport)?;
        let status = resp.status();
        let text = resp.text().await.map_err(transport)?;
        let root = parse(&text).map_err(|e| Attempt::Server(format!("HTTP {status}, an answer that is not XML ({e})")))?;
        if status.is_success() {
            return Ok(root);
        }
        // EC2: <Response><Errors><Error>; IAM: <ErrorResponse><Error>.
        let error = root.child("Errors").and_then(|e| e.child("Error")).or_else(|| root.child("Error"));
        match error {
            Some(e) => Err(Attempt::Refused(Ec2Refusal {
                action: action.to_string(),
                code: e.text_of("Code").to_string(),
                message: e.text_of("Message").to_string(),
            })),
            None if status.is_server_error() => Err(Attempt::Server(format!("HTTP {status}"))),
            None => Err(Attempt::Fatal(format!("HTTP {status} without an error code"))),
        }
    }

    /// The SigV4 headers for a POST of `body`, with the run's credentials.
    async fn sign(&self, url: &str, body: &str) -> Result<Vec<(String, String)>, String> {
        let content_type = "application/x-www-form-urlencoded; charset=utf-8";
        sign_post(&self.base, &self.region, self.service, url, body, &[("content-type", content_type)]).await
    }
}

/// The SigV4 headers (with `headers`, which the signature covers) for a POST of `body` to a
/// service, with the run's credentials.
pub(crate) async fn sign_post(
    base: &SdkConfig,
    region: &str,
    service: &str,
    url: &str,
    body: &str,
    headers: &[(&str, &str)],
) -> Result<Vec<(String, String)>, String> {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    let provider = base.credentials_provider().ok_or("no AWS credentials are configured")?;
    let creds = provider.provide_credentials().await.map_err(|e| format!("AWS credentials: {e}"))?;
    let identity: aws_smithy_runtime_api::client::identity::Identity = creds.into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| e.to_string())?
        .into();
    let request =
        SignableRequest::new("POST", url, headers.iter().copied(), SignableBody::Bytes(body.as_bytes())).map_err(|e| e.to_string())?;
    let (instructions, _) = sign(request, &params).map_err(|e| e.to_string())?.into_parts();
    let mut out: Vec<(String, String)> = headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    out.extend(instructions.headers().map(|(k, v)| (k.to_string(), v.to_string())));
    Ok(out)
}

enum Attempt {
    Refused(Ec2Refusal),
    Server(String),
    Transport { timed_out: bool, message: String },
    Fatal(String),
}

/// A request that got no answer: the connection failed or dropped.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct NoAnswer(String);

impl Attempt {
    /// The error of the last attempt. A write that got no answer (`write`) may have been
    /// carried out: its outcome is unknown.
    fn into_error(self, action: &str, endpoint: &str, write: bool) -> ProviderError {
        match self {
            Attempt::Refused(r) => ProviderError::Service {
                what: action.to_string(),
                detail: format!("{}: {}", r.code, r.message),
                outcome_unknown: false,
                source: Box::new(r),
            },
            Attempt::Server(m) => ProviderError::Service {
                what: format!("{action} at {endpoint}"),
                detail: m.clone(),
                outcome_unknown: write,
                source: Box::new(NoAnswer(m)),
            },
            Attempt::Fatal(m) => ProviderError::Api(format!("{action} at {endpoint}: {m}")),
            Attempt::Transport { timed_out: true, .. } => ProviderError::Unanswered(crate::deadline::Unanswered::TimedOut {
                service: "AWS",
                endpoint: endpoint.to_string(),
                operation: action.to_string(),
                waited: crate::deadline::current().attempt,
                outcome_unknown: write,
            }),
            Attempt::Transport { message, .. } => ProviderError::Service {
                what: format!("{action} at {endpoint}"),
                detail: message.clone(),
                outcome_unknown: write,
                source: Box::new(NoAnswer(message)),
            },
        }
    }
}

/// The EC2 code of a refusal, when that is what the error is.
pub fn refusal_code(e: &ProviderError) -> Option<&str> {
    match e {
        ProviderError::Service { source, .. } => source.downcast_ref::<Ec2Refusal>().map(|r| r.code.as_str()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_as_ec2_writes_them() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<DescribeVpcEndpointsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
  <requestId>7a62c49f</requestId>
  <vpcEndpointSet>
    <item>
      <vpcEndpointId>vpce-0123456789abcdef0</vpcEndpointId>
      <subnetIdSet><item>subnet-a</item><item>subnet-b</item></subnetIdSet>
      <tagSet><item><key>poactl-env</key><value>prod &amp; co</value></item></tagSet>
      <empty/>
    </item>
  </vpcEndpointSet>
</DescribeVpcEndpointsResponse>"#;
        let root = parse(xml).unwrap();
        assert_eq!(root.name, "DescribeVpcEndpointsResponse");
        let e: Vec<&Node> = root.items("vpcEndpointSet").collect();
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].text_of("vpcEndpointId"), "vpce-0123456789abcdef0");
        let subnets: Vec<&str> = e[0].items("subnetIdSet").map(|i| i.text.as_str()).collect();
        assert_eq!(subnets, ["subnet-a", "subnet-b"]);
        assert_eq!(e[0].tags().get("poactl-env").map(String::as_str), Some("prod & co"));
        assert_eq!(e[0].text_of("missing"), "");
        let error = parse("<Response><Errors><Error><Code>InvalidParameter</Code><Message>Private DNS can&#39;t be enabled</Message></Error></Errors></Response>").unwrap();
        assert_eq!(error.child("Errors").unwrap().child("Error").unwrap().text_of("Message"), "Private DNS can't be enabled");
        assert!(parse("<a><b></a>").is_err());
    }

    #[test]
    fn parameters_flatten_as_the_query_api_names_them() {
        let p = Params::new()
            .list("SubnetId", &["subnet-a", "subnet-b"])
            .filter("tag:poactl-env", &["prod"])
            .filter("vpc-id", &["vpc-1", "vpc-2"])
            .tag_on_create("vpc-endpoint", &BTreeMap::from([("k".to_string(), "v".to_string())]));
        let got: Vec<String> = p.0.iter().map(|(k, v)| format!("{k}={v}")).collect();
        assert_eq!(
            got,
            [
                "SubnetId.1=subnet-a",
                "SubnetId.2=subnet-b",
                "Filter.1.Name=tag:poactl-env",
                "Filter.1.Value.1=prod",
                "Filter.2.Name=vpc-id",
                "Filter.2.Value.1=vpc-1",
                "Filter.2.Value.2=vpc-2",
                "TagSpecification.1.ResourceType=vpc-endpoint",
                "TagSpecification.1.Tag.1.Key=k",
                "TagSpecification.1.Tag.1.Value=v",
            ]
        );
    }
}
