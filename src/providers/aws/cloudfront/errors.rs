//! CloudFront's refusals that poactl answers: a certificate not accepted yet, an alias
//! another distribution holds, and errors after which a create may or may not have happened.

use std::time::Duration;

use serde_json::Value;

use super::super::sdk_error;
use crate::providers::ProviderError;

/// How long CloudFront may refuse a certificate ACM just issued: terraform-provider-aws
/// (cloudfront/distribution.go, "ACM and IAM certificate eventual consistency") retries
/// InvalidViewerCertificate for one minute on create and on update.
pub(super) const NEW_CERTIFICATE_ACCEPTED: Duration = Duration::from_secs(60);

/// Whether to ask again after CloudFront refused the viewer certificate, and after how long:
/// only within `NEW_CERTIFICATE_ACCEPTED` of the first try, doubling from 1 s to 10 s.
pub(super) fn certificate_not_yet(code: Option<&str>, started: std::time::Instant, attempt: &mut u32) -> Option<Duration> {
    if code != Some("InvalidViewerCertificate") || started.elapsed() >= NEW_CERTIFICATE_ACCEPTED {
        return None;
    }
    *attempt += 1;
    Some(Duration::from_secs(1u64 << (*attempt - 1).min(3)).min(Duration::from_secs(10)))
}

/// CNAMEAlreadyExists: another distribution, in this account or another, holds one of the
/// aliases. CloudFront never shares an alias; moving one is AWS's procedure "Moving an
/// alternate domain name to a different distribution" (CloudFront Developer Guide): a TXT
/// record `_<alias>` whose value is the target distribution's domain name, then
/// AssociateAlias, which moves it without downtime.
pub(super) fn alias_taken(what: &str, aliases: &Value, target: Option<&str>, detail: &str) -> ProviderError {
    let names: Vec<&str> = aliases.as_array().into_iter().flatten().filter_map(|v| v.as_str()).collect();
    let first = names.first().copied().unwrap_or("ALIAS");
    let txt_value = target.unwrap_or("<this distribution's domain, dxxxx.cloudfront.net>");
    ProviderError::Refused(format!(
        "{what}: CloudFront refuses the aliases ({}): another distribution, perhaps in another AWS account, already holds one ({detail}). \
         To move an alias here: create the TXT record `_{first}` with the value `{txt_value}` in its DNS, then run \
         `aws cloudfront associate-alias --target-distribution-id <this distribution's id> --alias {first}` \
         (CloudFront Developer Guide, \"Moving an alternate domain name to a different distribution\"); or remove it from the other distribution first",
        names.join(", ")
    ))
}

/// A client config that makes one attempt: for creates poactl guards itself.
pub(super) fn no_retries() -> aws_sdk_cloudfront::config::Builder {
    aws_sdk_cloudfront::config::Builder::default().retry_config(aws_config::retry::RetryConfig::disabled())
}

/// Marks the errors after which a create may or may not have happened (a 5xx, a throttle, a
/// dropped connection): the caller looks for the result before trying again.
pub(super) fn unknown_or<E>(
    e: aws_sdk_cloudfront::error::SdkError<E, aws_sdk_cloudfront::config::http::HttpResponse>,
    what: &str,
) -> ProviderError
where
    E: std::error::Error + aws_sdk_cloudfront::error::ProvideErrorMetadata + Send + Sync + 'static,
{
    let transient = match &e {
        aws_sdk_cloudfront::error::SdkError::DispatchFailure(_)
        | aws_sdk_cloudfront::error::SdkError::TimeoutError(_)
        | aws_sdk_cloudfront::error::SdkError::ResponseError(_) => true,
        aws_sdk_cloudfront::error::SdkError::ServiceError(s) => {
            s.raw().status().as_u16() >= 500
                || matches!(s.err().code(), Some("Throttling" | "ThrottlingException" | "RequestLimitExceeded"))
        }
        _ => false,
    };
    match sdk_error(what, e) {
        ProviderError::Service { what, detail, source, .. } => ProviderError::Service {
            what,
            detail: if transient { format!("outcome unknown: {detail}") } else { detail },
            outcome_unknown: transient,
            source,
        },
        other => other,
    }
}
