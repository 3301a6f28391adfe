//! AWS: S3 buckets (and the bucket policy that lets CloudFront read them), CloudFront
//! distributions with Origin Access Control, CloudWatch metric and billing alarms.

pub mod acm;
pub mod ci;
pub mod cloudfront;
pub mod cloudwatch;
pub mod ec2;
pub mod health_check;
pub mod iam_role;
pub mod kms;
pub mod logs;
pub mod policy;
pub mod route53;
pub mod s3;
pub mod sns;
pub mod tagging;

use std::collections::HashMap;
use std::sync::Arc;

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use tokio::sync::Mutex;

use super::{Connections, ProviderError, Registry};
use crate::spec::LoadedSpec;

/// Shared AWS configuration, with clients per region built on first use.
pub struct Aws {
    base: SdkConfig,
    s3: Mutex<HashMap<String, aws_sdk_s3::Client>>,
    cloudwatch: Mutex<HashMap<String, aws_sdk_cloudwatch::Client>>,
    pub cloudfront: aws_sdk_cloudfront::Client,
    /// ACM in us-east-1, the only region CloudFront takes certificates from.
    pub acm: aws_sdk_acm::Client,
    /// Route 53 is global; its control plane answers in us-east-1.
    pub route53: aws_sdk_route53::Client,
    /// Hosted zones as the spec names them, looked up once per run.
    pub zones: route53::Zones,
    /// The environment's region (alarms, and buckets without their own).
    pub region: String,
    /// The configured S3 endpoint (`AWS_ENDPOINT_URL_S3`, else `AWS_ENDPOINT_URL`): emulators
    /// need path-style S3, and anonymous URLs go there.
    s3_endpoint: Option<String>,
    /// The tagging API's answers, once per region and resource type.
    indexes: tagging::Indexes,
    /// ListBuckets, once per run: which buckets are the account's, and their regions.
    pub buckets: tokio::sync::OnceCell<Vec<(String, Option<String>)>>,
    /// ListDistributions, once per run: the distributions and the certificates read it.
    distributions: tokio::sync::OnceCell<Vec<DistributionSummary>>,
    /// EC2 Query clients per region (PrivateLink endpoints).
    ec2: std::sync::Mutex<HashMap<String, ec2::Ec2>>,
}

/// A distribution as ListDistributions summarizes it.
#[derive(Debug, Clone)]
pub(crate) struct DistributionSummary {
    pub id: String,
    pub arn: String,
    pub aliases: Vec<String>,
    /// The OACs its origins use.
    pub oac_ids: Vec<String>,
}

impl Aws {
    /// The account's distributions, listed once per run.
    pub(crate) async fn distributions(&self) -> Result<&Vec<DistributionSummary>, ProviderError> {
        self.distributions.get_or_try_init(|| self.list_distributions_now()).await
    }

    /// The account's distributions, listed now (to find one a lost answer may have made).
    pub(crate) async fn list_distributions_now(&self) -> Result<Vec<DistributionSummary>, ProviderError> {
        let mut out = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let page = self
                .cloudfront
                .list_distributions()
                .set_marker(marker.clone())
                .send()
                .await
                .map_err(|e| sdk_error("ListDistributions", e))?;
            let Some(list) = page.distribution_list() else { break };
            out.extend(list.items().iter().map(|s| {
                DistributionSummary {
                    id: s.id().to_string(),
                    arn: s.arn().to_string(),
                    aliases: s.aliases().map(|a| a.items().to_vec()).unwrap_or_default(),
                    oac_ids: s
                        .origins()
                        .map(|o| {
                            o.items()
                                .iter()
                                .filter_map(|o| o.origin_access_control_id())
                                .filter(|i| !i.is_empty())
                                .map(String::from)
                                .collect()
                        })
                        .unwrap_or_default(),
                }
            }));
            match list.next_marker() {
                Some(m) if list.is_truncated() && !m.is_empty() => marker = Some(m.to_string()),
                _ => break,
            }
        }
        Ok(out)
    }

    /// The URL of an object as an anonymous client reaches it: virtual-hosted on real S3, or
    /// path-style on the configured endpoint.
    pub(crate) fn s3_object_url(&self, bucket: &str, region: &str, key: &str) -> String {
        match &self.s3_endpoint {
            Some(e) => format!("{}/{bucket}/{key}", e.trim_end_matches('/')),
            None => format!("https://{bucket}.s3.{region}.amazonaws.com/{key}"),
        }
    }

    pub async fn new(region: String) -> Aws {
        let base = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(region.clone()))
            .retry_config(retry_config(RetryConfig::standard()))
            // Each attempt, and each call with its retries, is bounded in time (`deadline`,
            // `--request-timeout`): the SDK retries an attempt that timed out (its standard
            // retry classifier treats timeouts as transient) until the call's deadline.
            .timeout_config(
                aws_config::timeout::TimeoutConfig::builder()
                    .connect_timeout(crate::deadline::current().attempt)
                    .operation_attempt_timeout(crate::deadline::current().attempt)
                    .operation_timeout(crate::deadline::current().call)
                    .build(),
            )
            .load()
            .await;
        let s3_endpoint = ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"].iter().find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()));
        // CloudFront's control plane lives in us-east-1, and its API allows few requests a
        // second: adaptive retries slow the client down when it is throttled (aws-sdk-rust,
        // RetryMode::Adaptive: a client-side token bucket fed by throttling errors).
        let cf_conf = aws_sdk_cloudfront::config::Builder::from(&base)
            .region(Region::new("us-east-1"))
            .retry_config(retry_config(RetryConfig::adaptive()))
            .build();
        let acm = aws_sdk_acm::Client::from_conf(aws_sdk_acm::config::Builder::from(&base).region(Region::new("us-east-1")).build());
        let route53 =
            aws_sdk_route53::Client::from_conf(aws_sdk_route53::config::Builder::from(&base).region(Region::new("us-east-1")).build());
        Aws {
            cloudfront: aws_sdk_cloudfront::Client::from_conf(cf_conf),
            acm,
            route53,
            zones: Default::default(),
            base,
            s3: Default::default(),
            cloudwatch: Default::default(),
            region,
            s3_endpoint,
            indexes: Default::default(),
            buckets: Default::default(),
            distributions: Default::default(),
            ec2: Default::default(),
        }
    }

    /// The EC2 client for a region, built on first use.
    pub fn ec2(&self, region: &str) -> ec2::Ec2 {
        let mut map = self.ec2.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(region.to_string()).or_insert_with(|| ec2::Ec2::new(&self.base, region)).clone()
    }

    /// The IAM client (global).
    pub fn iam(&self) -> ec2::Query {
        ec2::Query::iam(&self.base)
    }

    /// An SNS client for one region.
    pub fn sns(&self, region: &str) -> ec2::Query {
        ec2::Query::sns(&self.base, region)
    }

    /// A CloudWatch Logs client for one region.
    pub fn logs(&self, region: &str) -> kms::Json {
        kms::Json::logs(&self.base, region)
    }

    /// A KMS client for one region.
    pub fn kms(&self, region: &str) -> kms::Kms {
        kms::Kms::new(&self.base, region)
    }

    /// A tagging API client for one region (built once per index read).
    fn tagging(&self, region: &str) -> aws_sdk_resourcegroupstagging::Client {
        let conf = aws_sdk_resourcegroupstagging::config::Builder::from(&self.base).region(Region::new(region.to_string())).build();
        aws_sdk_resourcegroupstagging::Client::from_conf(conf)
    }

    pub async fn s3(&self, region: &str) -> aws_sdk_s3::Client {
        let mut map = self.s3.lock().await;
        map.entry(region.to_string())
            .or_insert_with(|| {
                let conf = aws_sdk_s3::config::Builder::from(&self.base)
                    .region(Region::new(region.to_string()))
                    .force_path_style(self.s3_endpoint.is_some())
                    .build();
                aws_sdk_s3::Client::from_conf(conf)
            })
            .clone()
    }

    pub async fn cloudwatch(&self, region: &str) -> aws_sdk_cloudwatch::Client {
        let mut map = self.cloudwatch.lock().await;
        map.entry(region.to_string())
            .or_insert_with(|| {
                let conf = aws_sdk_cloudwatch::config::Builder::from(&self.base).region(Region::new(region.to_string())).build();
                aws_sdk_cloudwatch::Client::from_conf(conf)
            })
            .clone()
    }
}

/// The SDK retry policy, stated rather than left to defaults: throttling, 5xx and dropped
/// connections are retried with jittered exponential backoff, up to 8 attempts (the SDK's
/// default of 3 does not survive a bad minute). Every AWS call poactl makes is idempotent or
/// is guarded against a second create (CloudFront creates look for their result before they
/// are repeated). `POACTL_AWS_RETRY_BASE_MS` shortens the backoff for tests.
fn retry_config(base: RetryConfig) -> RetryConfig {
    let initial = std::env::var("POACTL_AWS_RETRY_BASE_MS").ok().and_then(|v| v.parse().ok()).map(std::time::Duration::from_millis);
    let config = base.with_max_attempts(8).with_max_backoff(std::time::Duration::from_secs(20));
    match initial {
        Some(d) => config.with_initial_backoff(d),
        None => config,
    }
}

/// An AWS SDK error, kept as the cause. The message is the service's code and message when it
/// answered, else the transport's whole context (a refused connection, a timeout).
pub fn sdk_error<E, R>(what: &str, e: SdkError<E, R>) -> ProviderError
where
    E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    if let SdkError::TimeoutError(_) = &e {
        return timed_out(what);
    }
    let detail = match &e {
        SdkError::ServiceError(s) => match (s.err().code(), s.err().message()) {
            (Some(code), Some(message)) => format!("{code}: {message}"),
            (Some(code), None) => code.to_string(),
            _ => DisplayErrorContext(&e).to_string(),
        },
        _ => DisplayErrorContext(&e).to_string(),
    };
    ProviderError::Service { what: what.to_string(), detail, outcome_unknown: false, source: Box::new(e) }
}

/// An AWS call the SDK gave up on at the call's deadline (its attempts timed out): TIMED OUT,
/// with the endpoint (`AWS_ENDPOINT_URL` when set, else the service's regional one). A call
/// that is not a read may have been carried out: its outcome is unknown.
fn timed_out(what: &str) -> ProviderError {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").ok().filter(|v| !v.is_empty()).unwrap_or_else(|| "its regional endpoint".into());
    let operation = what.split_whitespace().next().unwrap_or(what);
    let read = ["Get", "List", "Describe", "Head"].iter().any(|p| operation.starts_with(p));
    ProviderError::Unanswered(crate::deadline::Unanswered::TimedOut {
        service: "AWS",
        endpoint,
        operation: what.to_string(),
        waited: crate::deadline::current().call,
        outcome_unknown: !read,
    })
}

/// The service's error code (`NoSuchBucket`, `NoSuchTagSet`...), if any.
pub fn error_code<E, R>(e: &SdkError<E, R>) -> Option<String>
where
    E: ProvideErrorMetadata,
{
    match e {
        SdkError::ServiceError(s) => s.err().code().map(String::from),
        _ => None,
    }
}

/// Who the run is, asked once before anything else (`sts:GetCallerIdentity` needs no
/// permission). Without it, missing credentials surface as one "failed to construct request"
/// dump per resource; with it, one sentence. Its ARN also gives the partition: poactl writes
/// `arn:aws:` ARNs, so other partitions are refused here.
async fn preflight(base: &SdkConfig) -> Result<(), ProviderError> {
    let sts = aws_sdk_sts::Client::new(base);
    let me = match sts.get_caller_identity().send().await {
        Ok(me) => me,
        Err(SdkError::TimeoutError(_)) => return Err(timed_out("GetCallerIdentity (who the run is)")),
        Err(e) => {
            let text = DisplayErrorContext(&e).to_string();
            let cause = match &e {
                _ if text.contains("no credentials") || text.contains("credential provider was not enabled") => {
                    "no credentials were found".to_string()
                }
                SdkError::ServiceError(s) => s.err().meta().message().unwrap_or("the credentials were refused").to_string(),
                _ => text.lines().next().unwrap_or_default().to_string(),
            };
            return Err(ProviderError::Config(format!(
                "AWS: {cause}. Set AWS_PROFILE (a profile from `aws configure`, `aws sso login` or `aws login`), or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; on CI, use the runner's role"
            )));
        }
    };
    let arn = me.arn().unwrap_or_default();
    if let Some(partition) = arn.strip_prefix("arn:").and_then(|r| r.split(':').next())
        && partition != "aws"
    {
        return Err(ProviderError::Config(format!(
            "AWS: these credentials are in the {partition} partition ({arn}); poactl supports the standard aws partition only"
        )));
    }
    Ok(())
}

pub async fn register(reg: &mut Registry, loaded: &LoadedSpec, _conn: &Connections) -> Result<Arc<Aws>, ProviderError> {
    for secret in ["AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"] {
        if let Ok(v) = std::env::var(secret) {
            crate::secrets::register_value(&v);
        }
    }
    let aws = Arc::new(Aws::new(loaded.spec.aws_region()).await);
    preflight(&aws.base).await?;
    reg.insert(Arc::new(s3::BucketProvider(aws.clone())));
    reg.insert(Arc::new(s3::BucketPolicyProvider(aws.clone())));
    reg.insert(Arc::new(cloudfront::DistributionProvider::new(aws.clone())));
    reg.insert(Arc::new(acm::CertificateProvider::new(aws.clone())));
    reg.insert(Arc::new(route53::DnsRecordProvider(aws.clone())));
    reg.insert(Arc::new(health_check::HealthCheckProvider::new(aws.clone())));
    reg.insert(Arc::new(sns::TopicProvider::new(aws.clone())));
    reg.insert(Arc::new(logs::LogGroupProvider(aws.clone())));
    reg.insert(Arc::new(iam_role::RoleProvider::app(aws.clone())));
    reg.insert(Arc::new(iam_role::RoleProvider::ci(aws.clone())));
    reg.insert(Arc::new(ci::OidcProviderProvider(aws.clone())));
    let alarm_lists = Arc::new(cloudwatch::AlarmLists::default());
    reg.insert(Arc::new(cloudwatch::AlarmProvider::new(aws.clone(), crate::resource::Kind::Alarm, alarm_lists.clone())));
    reg.insert(Arc::new(cloudwatch::AlarmProvider::new(aws.clone(), crate::resource::Kind::BillingAlarm, alarm_lists)));
    Ok(aws)
}

#[cfg(test)]
mod tests {
    use aws_sdk_s3::config::http::HttpResponse;
    use aws_sdk_s3::error::ErrorMetadata;
    use aws_sdk_s3::operation::list_buckets::ListBucketsError;
    use aws_sdk_s3::primitives::SdkBody;

    use super::*;

    /// The service's words in the message; the SDK's error whole as the cause, for `-v` and for
    /// code that asks what went wrong.
    #[test]
    fn an_sdk_error_keeps_its_cause() {
        let raw = HttpResponse::new(403.try_into().unwrap(), SdkBody::empty());
        let err = ListBucketsError::generic(ErrorMetadata::builder().code("AccessDenied").message("not for you").build());
        let e = sdk_error("ListBuckets", SdkError::service_error(err, raw));
        assert_eq!(e.to_string(), "ListBuckets: AccessDenied: not for you");
        let cause = std::error::Error::source(&e).expect("a cause");
        let sdk = cause.downcast_ref::<SdkError<ListBucketsError, HttpResponse>>().expect("the SDK's own error");
        assert_eq!(error_code(sdk).as_deref(), Some("AccessDenied"));
        let anyhow_chain = format!("{:#}", anyhow::Error::new(e));
        assert!(anyhow_chain.starts_with("ListBuckets: AccessDenied: not for you: service error"), "{anyhow_chain}");
    }
}
