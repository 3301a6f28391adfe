//! AWS KMS and CloudWatch Logs through their JSON APIs, signed with SigV4 (no SDK crate, as
//! for EC2, IAM and SNS): the calls a customer key for Atlas and a log group need. What the
//! real services do that this client relies on (AWS KMS API reference and CloudWatch Logs API
//! reference, "Common parameters" and each action's "Errors"):
//! - a request is a POST of a JSON body to `/`, with `X-Amz-Target: TrentService.<Action>`
//!   (KMS) or `Logs_20140328.<Action>` (CloudWatch Logs) and
//!   `Content-Type: application/x-amz-json-1.1`;
//! - an error is a JSON body with `__type` (`NotFoundException`, `KMSInvalidStateException`,
//!   possibly prefixed with a namespace and `#`) and `message`; `ThrottlingException`,
//!   `KMSInternalException` and `DependencyTimeoutException` are transient, and for
//!   CloudWatch Logs `ServiceUnavailableException` and `OperationAbortedException` (another
//!   change of the same group in flight);
//! - `DescribeKey` takes a key id, a key ARN, an alias name (`alias/...`) or an alias ARN.

use std::time::Duration;

use aws_config::SdkConfig;
use serde_json::Value;

use super::ec2::{bounded_http, endpoint_for, sign_post};
use crate::providers::ProviderError;

const TRANSIENT: &[&str] = &[
    "ThrottlingException",
    "KMSInternalException",
    "DependencyTimeoutException",
    "ServiceUnavailableException",
    "OperationAbortedException",
];

/// A refusal KMS answered, with its error type.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{action}: {code}: {message}")]
pub struct KmsRefusal {
    pub action: String,
    pub code: String,
    pub message: String,
}

/// A JSON-protocol client for one service in one region.
#[derive(Clone)]
pub struct Json {
    base: SdkConfig,
    http: reqwest::Client,
    pub region: String,
    endpoint: String,
    /// The signing name (`kms`, `logs`).
    service: &'static str,
    /// The `X-Amz-Target` prefix.
    target: &'static str,
    /// The service as messages name it.
    label: &'static str,
}

/// The KMS client.
pub type Kms = Json;

impl Json {
    pub fn new(base: &SdkConfig, region: &str) -> Json {
        let endpoint = endpoint_for("AWS_ENDPOINT_URL_KMS", format!("https://kms.{region}.amazonaws.com"));
        Json {
            base: base.clone(),
            http: bounded_http(),
            region: region.to_string(),
            endpoint,
            service: "kms",
            target: "TrentService",
            label: "KMS",
        }
    }

    /// CloudWatch Logs in one region.
    pub fn logs(base: &SdkConfig, region: &str) -> Json {
        let endpoint = endpoint_for("AWS_ENDPOINT_URL_CLOUDWATCH_LOGS", format!("https://logs.{region}.amazonaws.com"));
        Json {
            base: base.clone(),
            http: bounded_http(),
            region: region.to_string(),
            endpoint,
            service: "logs",
            target: "Logs_20140328",
            label: "CloudWatch Logs",
        }
    }

    /// One action; transient refusals are asked again with backoff within the call deadline.
    /// Every action this client sends is safe to repeat or is refused when repeated.
    pub async fn call(&self, action: &str, body: &Value) -> Result<Value, ProviderError> {
        let body = body.to_string();
        let deadline = std::time::Instant::now() + crate::deadline::current().call;
        let mut delay = Duration::from_millis(200);
        loop {
            let answer = self.attempt(action, &body).await;
            let transient = match &answer {
                Err(ProviderError::Service { source, .. }) => {
                    source.downcast_ref::<KmsRefusal>().is_none_or(|r| TRANSIENT.contains(&r.code.as_str()))
                }
                _ => false,
            };
            if !transient || std::time::Instant::now() + delay >= deadline {
                return answer;
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(10));
        }
    }

    async fn attempt(&self, action: &str, body: &str) -> Result<Value, ProviderError> {
        let url = format!("{}/", self.endpoint);
        let target = format!("{}.{action}", self.target);
        let headers = [("content-type", "application/x-amz-json-1.1"), ("x-amz-target", target.as_str())];
        let label = self.label;
        let signed = sign_post(&self.base, &self.region, self.service, &url, body, &headers)
            .await
            .map_err(|e| ProviderError::Api(format!("{label} {action}: {e}")))?;
        let mut req = self.http.post(&url).body(body.to_string());
        for (k, v) in signed {
            req = req.header(k, v);
        }
        let no_answer = |e: reqwest::Error| ProviderError::Service {
            what: format!("{label} {action} at {}", self.endpoint),
            detail: crate::secrets::error_chain(&e),
            outcome_unknown: false,
            source: Box::new(e),
        };
        let resp = req.send().await.map_err(no_answer)?;
        let status = resp.status();
        let text = resp.text().await.map_err(no_answer)?;
        let doc: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(doc);
        }
        let kind = doc.get("__type").and_then(Value::as_str).unwrap_or("");
        let code = kind.rsplit('#').next().unwrap_or(kind).to_string();
        let message = doc.get("message").or_else(|| doc.get("Message")).and_then(Value::as_str).unwrap_or("").to_string();
        let code = if code.is_empty() { format!("HTTP {status}") } else { code };
        let refusal = KmsRefusal { action: action.to_string(), code: code.clone(), message: message.clone() };
        Err(ProviderError::Service {
            what: format!("{label} {action}"),
            detail: format!("{code}: {message}"),
            outcome_unknown: false,
            source: Box::new(refusal),
        })
    }
}

/// The KMS error type of a refusal, when that is what the error is.
pub fn refusal_code(e: &ProviderError) -> Option<&str> {
    match e {
        ProviderError::Service { source, .. } => source.downcast_ref::<KmsRefusal>().map(|r| r.code.as_str()),
        _ => None,
    }
}
