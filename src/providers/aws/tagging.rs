//! The Resource Groups Tagging API as an index of the environment's tagged resources: one
//! paginated `GetResources` per region and resource type finds every bucket or alarm that
//! carries the environment's ownership tag, with all its tags, where reading each resource's
//! tags would cost a request per resource.
//!
//! It is an index, not the truth, and poactl uses it as one:
//! - the index can hold resources that no longer exist ("previously tagged", aws/aws-sdk#302;
//!   deleted volumes listed for twenty minutes, aws/aws-cli#4173), so existence always comes
//!   from the service's own list (ListBuckets, DescribeAlarms) and an index entry without a
//!   live resource is ignored;
//! - the index lags the resource's own tags, so a resource's tags are taken from it only when
//!   they are exactly what the spec wants; anything else (drift, or a write not indexed yet)
//!   is read from the resource itself before the plan reports it;
//! - `tag:GetResources` is a permission of its own: refused, throttled or failing, every
//!   resource's tags are read directly, as without the index (slower, never wrong).
//!
//! Supported types: `s3:bucket` and `cloudwatch:alarm` ("Services that support the Resource
//! Groups Tagging API", AWS docs; moto serves both, and `s3:bucket` as a filter since
//! getmoto/moto#7798). S3 buckets are indexed in their own region.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use aws_sdk_resourcegroupstagging::types::TagFilter;
use tokio::sync::OnceCell;

use super::Aws;
use crate::resource::{LEGACY_TAG_PREFIX, TAG_ENV};

pub type Tags = BTreeMap<String, String>;

/// ARN -> tags of the region's resources of one type tagged for the environment.
pub type Index = Arc<HashMap<String, Tags>>;

/// An index read once; `None` inside: it could not be read.
type IndexCell = Arc<OnceCell<Option<Index>>>;

/// One index per (region, resource type) and run.
#[derive(Default)]
pub struct Indexes {
    cells: std::sync::Mutex<HashMap<(String, String), IndexCell>>,
}

impl Aws {
    /// The environment's resources of `resource_type` in `region` with their tags, read once
    /// per run; `None` when the index cannot be read (the caller reads each resource's tags).
    pub async fn tag_index(&self, region: &str, resource_type: &str, env: &str, progress: &crate::progress::Progress) -> Option<Index> {
        let cell = self
            .indexes
            .cells
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry((region.to_string(), resource_type.to_string()))
            .or_default()
            .clone();
        cell.get_or_init(|| async {
            match self.read_index(region, resource_type, env).await {
                Ok(index) => Some(Arc::new(index)),
                Err(why) => {
                    progress.println(format!(
                        "note: tag:GetResources in {region} did not answer ({why}); reading each resource's tags instead (grant tag:GetResources for faster plans)"
                    ));
                    None
                }
            }
        })
        .await
        .clone()
    }

    async fn read_index(&self, region: &str, resource_type: &str, env: &str) -> Result<HashMap<String, Tags>, String> {
        let client = self.tagging(region);
        // The current ownership key and the legacy `poactl:env` one (read as owned until the
        // next apply rewrites it). Filters of one call are ANDed, so each is its own listing,
        // and the two go out together.
        let listings = [TAG_ENV.to_string(), format!("{LEGACY_TAG_PREFIX}env")].map(|key| {
            let client = &client;
            async move {
                let mut out = HashMap::new();
                let filter = TagFilter::builder().key(key).values(env).build();
                let mut token: Option<String> = None;
                loop {
                    let page = client
                        .get_resources()
                        .resource_type_filters(resource_type)
                        .tag_filters(filter.clone())
                        .resources_per_page(100)
                        .set_pagination_token(token.clone())
                        .send()
                        .await
                        .map_err(|e| {
                            use aws_sdk_resourcegroupstagging::error::ProvideErrorMetadata;
                            e.code()
                                .map(String::from)
                                .unwrap_or_else(|| aws_sdk_resourcegroupstagging::error::DisplayErrorContext(&e).to_string())
                        })?;
                    for mapping in page.resource_tag_mapping_list() {
                        let Some(arn) = mapping.resource_arn() else { continue };
                        let tags: Tags = mapping.tags().iter().map(|t| (t.key().to_string(), t.value().to_string())).collect();
                        out.insert(arn.to_string(), tags);
                    }
                    match page.pagination_token() {
                        Some(t) if !t.is_empty() && Some(t) != token.as_deref() => token = Some(t.to_string()),
                        _ => break,
                    }
                }
                Ok::<_, String>(out)
            }
        });
        let mut out = HashMap::new();
        for listing in futures::future::join_all(listings).await {
            out.extend(listing?);
        }
        Ok(out)
    }
}

/// Whether tags read from the index can stand for the resource's own: only when they hold
/// exactly the keys and values the spec wants among the ones poactl manages. The engine keeps
/// only those keys for the diff, so equal here means no tag change in the plan.
/// `kept`: the keys the diff compares (`!foreign_tag`).
pub fn settles(indexed: &Tags, wanted: &serde_json::Value, kept: impl Fn(&str) -> bool) -> bool {
    let wanted: Tags = crate::providers::string_map(wanted);
    let compared: Tags = indexed.iter().filter(|(k, _)| kept(k)).map(|(k, v)| (k.clone(), v.clone())).collect();
    compared == wanted
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn index_tags_stand_for_the_resource_only_when_they_are_what_the_spec_wants() {
        let kept = |k: &str| k.starts_with("poactl-") || k == "team";
        let wanted = json!({"poactl-env": "dev", "team": "web"});
        let tags = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Tags>();
        let cases = [
            (tags(&[("poactl-env", "dev"), ("team", "web")]), true, "exactly the spec"),
            (tags(&[("poactl-env", "dev"), ("team", "web"), ("cost-center", "7")]), true, "a key someone else manages"),
            (tags(&[("poactl-env", "dev"), ("team", "ops")]), false, "a value changed"),
            (tags(&[("poactl-env", "dev")]), false, "a key missing"),
            (tags(&[("poactl-env", "dev"), ("team", "web"), ("poactl-id", "x")]), false, "an owned key the spec no longer has"),
        ];
        for (indexed, expected, why) in cases {
            assert_eq!(settles(&indexed, &wanted, kept), expected, "{why}");
        }
    }
}
