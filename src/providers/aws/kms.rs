//! AWS KMS through its JSON API, signed with SigV4 (no SDK crate, as for EC2 and IAM): the
//! calls a customer key for Atlas needs. What the real service does that this client relies
//! on (AWS KMS API reference, "Common parameters" and each action's "Errors"):
//! - a request is a POST of a JSON body to `/`, with `X-Amz-Target: TrentService.<Action>`
//!   and `Content-Type: application/x-amz-json-1.1`;
//! - an error is a JSON body with `__type` (`NotFoundException`, `KMSInvalidStateException`,
//!   possibly prefixed with a namespace and `#`) and `message`; `ThrottlingException`,
//!   `KMSInternalException` and `DependencyTimeoutException` are transient;
//! - `DescribeKey` takes a key id, a key ARN, an alias name (`alias/...`) or an alias ARN.

use std::time::Duration;

use aws_config::SdkConfig;
use serde_json::Value;

use super::ec2::{bounded_http, endpoint_for, sign_post};
use crate::providers::ProviderError;

const TRANSIENT: &[&str] = &["ThrottlingException", "KMSInternalException", "DependencyTimeoutException"];

/// A refusal KMS answered, with its error type.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{action}: {code}: {message}")]
pub struct KmsRefusal {
    pub action: String,
    pub code: String,
    pub message: String,
}

/// A KMS client for one region.
#[derive(Clone)]
pub struct Kms {
    base: SdkConfig,
    http: reqwest::Client,
    pub region: String,
    endpoint: String,
}

impl Kms {
    pub fn new(base: &SdkConfig, region: &str) -> Kms {
        let endpoint = endpoint_for("AWS_ENDPOINT_URL_KMS", format!("https://kms.{region}.amazonaws.com"));
        Kms { base: base.clone(), http: bounded_http(), region: region.to_string(), endpoint }
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
        let target = format!("TrentService.{action}");
        let headers = [("content-type", "application/x-amz-json-1.1"), ("x-amz-target", target.as_str())];
        let signed = sign_post(&self.base, &self.region, "kms", &url, body, &headers)
            .await
            .map_err(|e| ProviderError::Api(format!("KMS {action}: {e}")))?;
        let mut req = self.http.post(&url).body(body.to_string());
        for (k, v) in signed {
            req = req.header(k, v);
        }
        let no_answer = |e: reqwest::Error| ProviderError::Service {
            what: format!("KMS {action} at {}", self.endpoint),
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
            what: format!("KMS {action}"),
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
