//! SNS topics: the topic with the ownership tags, its subscriptions, and the topic policy
//! that lets the publishers poactl wires to it (CloudWatch alarms) publish.
//!
//! What the real service does that this relies on (SNS API reference and Developer Guide):
//! - `CreateTopic` is idempotent by name: the same name gives the same ARN back ("If a
//!   topic with the name already exists, that topic's ARN is returned"), so a create whose
//!   answer was lost is sent again as it was. It takes `Tags`, so a topic is never untagged;
//! - an email or HTTP(S) subscription stays *pending confirmation* until its endpoint
//!   confirms: `Subscribe` answers `pending confirmation` unless `ReturnSubscriptionArn` is
//!   set, and `ListSubscriptionsByTopic` lists it with the ARN `PendingConfirmation`
//!   (hashicorp/terraform#2776, terraform-provider-aws#7782);
//! - a pending subscription cannot be removed: `Unsubscribe` is refused with InvalidParameter
//!   ("Cannot unsubscribe a subscription that is pending confirmation", go-to-k/cdkd#1305), and
//!   SNS deletes it by itself when it is not confirmed within three days (xmidt-org/
//!   webpa-common#362). A pending subscription the spec no longer lists is left to expire,
//!   and the plan says so; it receives nothing meanwhile;
//! - `DeleteTopic` deletes the topic's subscriptions with it;
//! - the default topic policy lets the owning account publish; a service publishing on the
//!   account's behalf is named in the policy, with `aws:SourceAccount` so that no other
//!   account's alarm can use it (SNS Developer Guide, "Amazon SNS security best practices":
//!   cross-service confused deputy). poactl writes its own statements (`Sid` starting with
//!   `poactl-`) and keeps everyone else's;
//! - a topic encrypted with KMS makes its publishers use the key: CloudWatch needs
//!   `kms:Decrypt` and `kms:GenerateDataKey*` in the key's policy, which the AWS managed key
//!   `alias/aws/sns` cannot be given (SNS Developer Guide, "Enable compatibility between event
//!   sources from AWS services and encrypted topics"); `validate` refuses that key.
//!
//! What moto does not copy: it confirms every subscription at once; the moto launcher leaves
//! email and HTTP(S) ones pending as SNS does (tests/support/moto_server.py, fix 8).

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Value, json};
use tokio::sync::Mutex;

use super::Aws;
use super::ec2::{Node, Params, Query, refusal_code};
use super::policy;
use crate::plan::FieldChange;
use crate::providers::{Ctx, Desired, Lane, Observed, Outputs, Provider, ProviderError, Result, all_tags, ownership_from_tags};
use crate::resource::{Address, Kind};
use crate::spec::LoadedSpec;
use crate::spec::model::{NotificationsSpec, TopicSpec};

/// SNS control-plane calls (CreateTopic, Subscribe...) are throttled at tens a second.
const LANE: Lane = Lane { service: "sns", limit: 4 };

/// The `Sid` prefix of the statements poactl writes in topic and key policies.
const SID_PREFIX: &str = "poactl-";

/// The services poactl makes publish to a topic: CloudWatch, for metric alarms, uptime
/// checks' alarms and billing alarms (all of them CloudWatch alarms).
pub const PUBLISHERS: &[&str] = &["cloudwatch.amazonaws.com"];

/// The subscription ARN SNS lists for a subscription not confirmed yet.
const PENDING: &str = "PendingConfirmation";

pub struct TopicProvider {
    aws: Arc<Aws>,
    /// Topic ARNs per region, listed once per run.
    listed: Mutex<BTreeMap<String, Vec<String>>>,
}

impl TopicProvider {
    pub fn new(aws: Arc<Aws>) -> Self {
        TopicProvider { aws, listed: Mutex::new(BTreeMap::new()) }
    }
}

/// `email:ops@example.com`: a subscription as the plan shows it.
fn subscription_key(protocol: &str, endpoint: &str) -> String {
    format!("{protocol}:{endpoint}")
}

pub fn region_of(loaded: &LoadedSpec, t: &TopicSpec) -> String {
    t.region.clone().unwrap_or_else(|| loaded.spec.aws_region())
}

pub fn desired(loaded: &LoadedSpec, name: &str, t: &TopicSpec, address: Address) -> Desired {
    let subscriptions: serde_json::Map<String, Value> = t
        .email
        .iter()
        .map(|e| subscription_key("email", e))
        .chain(t.https.iter().map(|u| subscription_key("https", u)))
        .map(|k| (k, Value::Bool(true)))
        .collect();
    let attrs = json!({
        "name": NotificationsSpec::topic_name(&loaded.env, name),
        "region": region_of(loaded, t),
        "kms_key": t.kms_key,
        "publishers": PUBLISHERS,
        // Whether the key's policy lets the publishers use it; only for a topic with a key.
        "key_grants_publishers": t.kms_key.is_some().then_some(true),
        "subscriptions": subscriptions,
        "tags": all_tags(loaded, &BTreeMap::new(), &address),
    });
    Desired::new(address, attrs)
}

/// One subscription as SNS lists it.
#[derive(Debug, Clone)]
struct Subscription {
    key: String,
    /// `PendingConfirmation` until confirmed.
    arn: String,
}

impl Subscription {
    fn pending(&self) -> bool {
        self.arn == PENDING || self.arn.is_empty()
    }
}

/// The `Attributes` map of a Get*Attributes answer.
pub fn attributes(answer: &Node, result: &str) -> BTreeMap<String, String> {
    answer
        .child(result)
        .and_then(|r| r.child("Attributes"))
        .map(|a| {
            a.children
                .iter()
                .filter(|e| e.name == "entry")
                .map(|e| (e.text_of("key").to_string(), e.text_of("value").to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// The services a topic policy lets publish (`sns:Publish`, or `sns:*`).
fn publishers_of(doc: &Value) -> Vec<String> {
    let mut out: Vec<String> = policy::statements(doc)
        .into_iter()
        .filter(|s| s["Effect"] == "Allow")
        .filter(|s| policy::strings(&s["Action"]).iter().any(|a| a.eq_ignore_ascii_case("sns:Publish") || a.eq_ignore_ascii_case("sns:*")))
        .flat_map(|s| policy::strings(&s["Principal"]["Service"]))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The account of an ARN (`arn:aws:sns:REGION:ACCOUNT:NAME`).
fn account_of(arn: &str) -> &str {
    arn.split(':').nth(4).unwrap_or("")
}

/// poactl's statement in the topic policy: the publishers, for this account only.
fn publish_statement(topic_arn: &str, publishers: &[String]) -> Value {
    json!({
        "Sid": format!("{SID_PREFIX}publishers"),
        "Effect": "Allow",
        "Principal": {"Service": publishers},
        "Action": "sns:Publish",
        "Resource": topic_arn,
        "Condition": {"StringEquals": {"aws:SourceAccount": account_of(topic_arn)}},
    })
}

/// poactl's statement in a topic key's policy: the publishers may use the key for this
/// account's topics (SNS Developer Guide, "Enable compatibility between event sources from
/// AWS services and encrypted topics").
fn key_statement(account: &str, publishers: &[String]) -> Value {
    json!({
        "Sid": format!("{SID_PREFIX}sns-publishers"),
        "Effect": "Allow",
        "Principal": {"Service": publishers},
        "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
        "Resource": "*",
        "Condition": {"StringEquals": {"aws:SourceAccount": account}},
    })
}

/// Whether a key policy lets every publisher decrypt and make data keys.
fn key_grants(doc: &Value, publishers: &[String]) -> bool {
    publishers.iter().all(|p| {
        policy::statements(doc).into_iter().any(|s| {
            s["Effect"] == "Allow"
                && policy::strings(&s["Principal"]["Service"]).contains(p)
                && ["kms:Decrypt", "kms:GenerateDataKey*"].iter().all(|want| {
                    policy::strings(&s["Action"])
                        .iter()
                        .any(|a| a == want || a == "kms:*" || (*want == "kms:GenerateDataKey*" && a == "kms:GenerateDataKey"))
                })
        })
    })
}

impl TopicProvider {
    /// The region's topic ARNs, listed once per run.
    async fn topics(&self, region: &str) -> Result<Vec<String>> {
        let mut listed = self.listed.lock().await;
        if let Some(t) = listed.get(region) {
            return Ok(t.clone());
        }
        let sns = self.aws.sns(region);
        let mut out = Vec::new();
        let mut token = String::new();
        loop {
            let p = if token.is_empty() { Params::new() } else { Params::new().set("NextToken", token.clone()) };
            let answer = sns.call("ListTopics", p, true).await?;
            let result = answer.child("ListTopicsResult").cloned().unwrap_or_default();
            out.extend(result.members("Topics").map(|m| m.text_of("TopicArn").to_string()));
            token = result.text_of("NextToken").to_string();
            if token.is_empty() {
                break;
            }
        }
        listed.insert(region.to_string(), out.clone());
        Ok(out)
    }

    async fn tags(sns: &Query, arn: &str) -> Result<BTreeMap<String, String>> {
        let answer = sns.call("ListTagsForResource", Params::new().set("ResourceArn", arn), true).await?;
        Ok(answer
            .child("ListTagsForResourceResult")
            .map(|r| r.members("Tags").map(|t| (t.text_of("Key").to_string(), t.text_of("Value").to_string())).collect())
            .unwrap_or_default())
    }

    async fn subscriptions(sns: &Query, arn: &str) -> Result<Vec<Subscription>> {
        let mut out = Vec::new();
        let mut token = String::new();
        loop {
            let mut p = Params::new().set("TopicArn", arn);
            if !token.is_empty() {
                p = p.set("NextToken", token.clone());
            }
            let answer = sns.call("ListSubscriptionsByTopic", p, true).await?;
            let result = answer.child("ListSubscriptionsByTopicResult").cloned().unwrap_or_default();
            out.extend(result.members("Subscriptions").map(|m| Subscription {
                key: subscription_key(m.text_of("Protocol"), m.text_of("Endpoint")),
                arn: m.text_of("SubscriptionArn").to_string(),
            }));
            token = result.text_of("NextToken").to_string();
            if token.is_empty() {
                return Ok(out);
            }
        }
    }

    /// Reads one topic whole: tags, attributes, subscriptions, and its key's policy.
    async fn read(&self, ctx: &Ctx<'_>, address: &Address, region: &str, arn: &str, wanted: Option<&Desired>) -> Result<Observed> {
        let sns = self.aws.sns(region);
        let (tags, attrs, subs) = tokio::try_join!(
            Self::tags(&sns, arn),
            async {
                Ok(attributes(&sns.call("GetTopicAttributes", Params::new().set("TopicArn", arn), true).await?, "GetTopicAttributesResult"))
            },
            Self::subscriptions(&sns, arn),
        )?;
        let doc = policy::document(attrs.get("Policy").map(String::as_str).unwrap_or("{}"));
        let kms_key = attrs.get("KmsMasterKeyId").filter(|k| !k.is_empty()).cloned();
        let publishers: Vec<String> = PUBLISHERS.iter().map(|p| p.to_string()).collect();
        let key_grants_publishers: Option<bool> = match &kms_key {
            Some(key) => Some(match self.aws.kms(region).call("GetKeyPolicy", &json!({"KeyId": key, "PolicyName": "default"})).await {
                Ok(answer) => key_grants(&policy::document(answer["Policy"].as_str().unwrap_or("{}")), &publishers),
                // The AWS managed key's policy cannot be read or changed by anyone: it
                // grants nothing to other services.
                Err(_) => false,
            }),
            None => None,
        };
        let wanted_subs: Vec<&str> =
            wanted.and_then(|d| d.attrs["subscriptions"].as_object()).map(|m| m.keys().map(String::as_str).collect()).unwrap_or_default();
        // A pending subscription the spec dropped cannot be removed (it expires): it is left
        // out of the compared state, and `notes` names it.
        let subscriptions: serde_json::Map<String, Value> = subs
            .iter()
            .filter(|s| !s.pending() || wanted_subs.contains(&s.key.as_str()))
            .map(|s| (s.key.clone(), Value::Bool(true)))
            .collect();
        let pending: Vec<&str> = subs.iter().filter(|s| s.pending()).map(|s| s.key.as_str()).collect();
        let confirmed = subs.iter().filter(|s| !s.pending()).count();
        let name = arn.rsplit(':').next().unwrap_or_default().to_string();
        let mut observed_attrs = json!({
            "name": name,
            "region": region,
            "kms_key": kms_key,
            "publishers": publishers_of(&doc),
            "key_grants_publishers": key_grants_publishers,
            "subscriptions": subscriptions,
            "tags": tags,
        });
        crate::providers::keep_owned_tags(&mut observed_attrs, ctx.loaded);
        let arns: BTreeMap<&str, &str> = subs.iter().map(|s| (s.key.as_str(), s.arn.as_str())).collect();
        Ok(Observed {
            id: arn.to_string(),
            attrs: observed_attrs,
            outputs: Outputs::from([
                ("arn".to_string(), arn.to_string()),
                ("name".to_string(), name.clone()),
                ("confirmed".to_string(), confirmed.to_string()),
                ("pending".to_string(), pending.len().to_string()),
                ("description".to_string(), format!("SNS topic {name} ({confirmed} confirmed, {} pending)", pending.len())),
            ]),
            ownership: ownership_from_tags(&tags, ctx.env, address),
            handle: json!({"policy": doc, "subscriptions": arns, "pending": pending}),
        })
    }

    async fn find(&self, region: &str, name: &str) -> Result<Option<String>> {
        Ok(self.topics(region).await?.into_iter().find(|arn| arn.rsplit(':').next() == Some(name)))
    }

    /// Writes poactl's statement into the topic policy, keeping everyone else's.
    async fn set_policy(&self, sns: &Query, arn: &str, live: &Value, publishers: &[String]) -> Result<()> {
        let doc = policy::overlay(live, SID_PREFIX, if publishers.is_empty() { vec![] } else { vec![publish_statement(arn, publishers)] });
        let p = Params::new().set("TopicArn", arn).set("AttributeName", "Policy").set("AttributeValue", doc.to_string());
        sns.call("SetTopicAttributes", p, true).await?;
        Ok(())
    }

    /// Lets the publishers use the topic's key, in the key's policy (keeping its other
    /// statements).
    async fn grant_key(&self, region: &str, key: &str, account: &str, publishers: &[String]) -> Result<()> {
        let kms = self.aws.kms(region);
        let live = kms.call("GetKeyPolicy", &json!({"KeyId": key, "PolicyName": "default"})).await?;
        let live = policy::document(live["Policy"].as_str().unwrap_or("{}"));
        let doc = policy::overlay(&live, &format!("{SID_PREFIX}sns-"), vec![key_statement(account, publishers)]);
        kms.call("PutKeyPolicy", &json!({"KeyId": key, "PolicyName": "default", "Policy": doc.to_string()})).await?;
        Ok(())
    }

    async fn subscribe(sns: &Query, arn: &str, key: &str) -> Result<()> {
        let (protocol, endpoint) = key.split_once(':').unwrap_or(("email", key));
        let p = Params::new().set("TopicArn", arn).set("Protocol", protocol).set("Endpoint", endpoint).set("ReturnSubscriptionArn", "true");
        // Subscribe is idempotent for the same endpoint ("If the subscription already
        // exists, returns the existing subscription ARN").
        sns.call("Subscribe", p, true).await?;
        Ok(())
    }

    /// Reconciles the subscriptions: adds the missing, removes the confirmed ones the spec
    /// dropped. Pending ones cannot be removed (they expire).
    async fn set_subscriptions(&self, sns: &Query, arn: &str, want: &Value, handle: &Value) -> Result<()> {
        let want: Vec<&str> = want.as_object().map(|m| m.keys().map(String::as_str).collect()).unwrap_or_default();
        let have: BTreeMap<String, String> = handle["subscriptions"]
            .as_object()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())).collect())
            .unwrap_or_default();
        for key in want.iter().filter(|k| !have.contains_key(**k)) {
            Self::subscribe(sns, arn, key).await?;
        }
        for (key, sub_arn) in have.iter().filter(|(k, _)| !want.contains(&k.as_str())) {
            if sub_arn == PENDING || sub_arn.is_empty() {
                continue;
            }
            match sns.call("Unsubscribe", Params::new().set("SubscriptionArn", sub_arn), true).await {
                Ok(_) => {}
                Err(e) if refusal_code(&e) == Some("NotFound") => {}
                Err(e) => return Err(ProviderError::Api(format!("removing the subscription {key}: {e}"))),
            }
        }
        Ok(())
    }

    async fn set_tags(sns: &Query, arn: &str, want: &Value, have: &Value) -> Result<()> {
        let (add, remove) = crate::providers::tag_changes(want, have);
        if !add.is_empty() {
            sns.call("TagResource", Params::new().set("ResourceArn", arn).member_tags(&add), true).await?;
        }
        if !remove.is_empty() {
            sns.call("UntagResource", Params::new().set("ResourceArn", arn).list("TagKeys.member", &remove), true).await?;
        }
        Ok(())
    }

    fn publishers(d: &Desired) -> Vec<String> {
        policy::strings(&d.attrs["publishers"])
    }
}

#[async_trait]
impl Provider for TopicProvider {
    fn kind(&self) -> Kind {
        Kind::Topic
    }

    fn lane(&self) -> Lane {
        LANE
    }

    /// A topic's name and region are its identity.
    fn replace_paths(&self) -> &'static [&'static str] {
        &["name", "region"]
    }

    fn closed_maps(&self) -> &'static [&'static str] {
        &["tags", "subscriptions"]
    }

    async fn observe(&self, ctx: &Ctx<'_>, d: &Desired) -> Result<Option<Observed>> {
        let region = d.attrs["region"].as_str().unwrap_or_default();
        let name = d.attrs["name"].as_str().unwrap_or_default();
        match self.find(region, name).await? {
            Some(arn) => Ok(Some(self.read(ctx, &d.address, region, &arn, Some(d)).await?)),
            None => Ok(None),
        }
    }

    /// The environment's topics (named `ENV-...`, tagged for it) in the regions the spec's
    /// topics use and the environment's own, which the spec no longer declares.
    async fn discover(&self, ctx: &Ctx<'_>) -> Result<Vec<(Address, Observed)>> {
        let spec = &ctx.loaded.spec;
        let declared: Vec<&str> = spec.notifications.iter().flat_map(|n| n.topics.keys()).map(String::as_str).collect();
        let mut regions: Vec<String> =
            spec.notifications.iter().flat_map(|n| n.topics.values()).map(|t| region_of(ctx.loaded, t)).collect();
        regions.push(spec.aws_region());
        regions.sort();
        regions.dedup();
        let prefix = format!("{}-", ctx.env);
        let mut out = Vec::new();
        for region in regions {
            let sns = self.aws.sns(&region);
            for arn in self.topics(&region).await? {
                if !arn.rsplit(':').next().is_some_and(|n| n.starts_with(&prefix)) {
                    continue;
                }
                let tags = Self::tags(&sns, &arn).await?;
                if !crate::providers::managed_in_env(&tags, ctx.env) {
                    continue;
                }
                let Some(name) = crate::providers::ownership_tag(&tags, "id").and_then(|i| i.strip_prefix("notifications.topics.")) else {
                    continue;
                };
                if declared.contains(&name) {
                    continue;
                }
                let address = Address::new(Kind::Topic, name);
                let o = self.read(ctx, &address, &region, &arn, None).await?;
                out.push((address, o));
            }
        }
        Ok(out)
    }

    fn notes(&self, d: &Desired, o: &Observed, _ctx: &Ctx<'_>) -> Vec<String> {
        let wanted: Vec<&str> = d.attrs["subscriptions"].as_object().map(|m| m.keys().map(String::as_str).collect()).unwrap_or_default();
        let mut notes = Vec::new();
        for key in o.handle["pending"].as_array().into_iter().flatten().filter_map(Value::as_str) {
            if wanted.contains(&key) {
                notes.push(format!("{key} is pending confirmation: it receives nothing until its owner follows the link SNS sent"));
            } else {
                notes.push(format!(
                    "{key} is pending confirmation and no longer in the spec: SNS cannot remove a pending subscription; it expires unconfirmed after 3 days and receives nothing meanwhile"
                ));
            }
        }
        if o.outputs.get("confirmed").map(String::as_str) == Some("0") && !wanted.is_empty() {
            notes.push("no subscriber has confirmed: alarms on this topic reach nobody yet".to_string());
        }
        notes
    }

    async fn create(&self, ctx: &Ctx<'_>, d: &Desired) -> Result<Outputs> {
        let a = &d.attrs;
        let region = a["region"].as_str().unwrap_or_default();
        let name = a["name"].as_str().unwrap_or_default();
        let sns = self.aws.sns(region);
        let mut p = Params::new().set("Name", name).member_tags(&crate::providers::string_map(&a["tags"]));
        if let Some(key) = a["kms_key"].as_str() {
            p = p.set("Attributes.entry.1.key", "KmsMasterKeyId").set("Attributes.entry.1.value", key);
        }
        let answer = sns.call("CreateTopic", p, true).await?;
        let arn = answer.child("CreateTopicResult").map(|r| r.text_of("TopicArn").to_string()).unwrap_or_default();
        if arn.is_empty() {
            return Err(ProviderError::Api(format!("CreateTopic {name}: the answer has no TopicArn")));
        }
        self.listed.lock().await.entry(region.to_string()).or_default().push(arn.clone());
        let live =
            attributes(&sns.call("GetTopicAttributes", Params::new().set("TopicArn", &arn), true).await?, "GetTopicAttributesResult");
        let live = policy::document(live.get("Policy").map(String::as_str).unwrap_or("{}"));
        let publishers = Self::publishers(d);
        self.set_policy(&sns, &arn, &live, &publishers).await?;
        if let Some(key) = a["kms_key"].as_str() {
            self.grant_key(region, key, account_of(&arn), &publishers).await?;
        }
        self.set_subscriptions(&sns, &arn, &a["subscriptions"], &json!({})).await?;
        Ok(self.read(ctx, &d.address, region, &arn, Some(d)).await?.outputs)
    }

    async fn update(&self, ctx: &Ctx<'_>, d: &Desired, o: &Observed, changes: &[FieldChange]) -> Result<Outputs> {
        let a = &d.attrs;
        let region = a["region"].as_str().unwrap_or_default();
        let sns = self.aws.sns(region);
        let arn = o.id.as_str();
        let touched = |attr: &str| crate::plan::touches(changes, attr);
        if touched("tags") {
            Self::set_tags(&sns, arn, &a["tags"], &o.attrs["tags"]).await?;
        }
        if touched("kms_key") {
            let p = Params::new()
                .set("TopicArn", arn)
                .set("AttributeName", "KmsMasterKeyId")
                .set("AttributeValue", a["kms_key"].as_str().unwrap_or(""));
            sns.call("SetTopicAttributes", p, true).await?;
        }
        if touched("publishers") {
            self.set_policy(&sns, arn, &o.handle["policy"], &Self::publishers(d)).await?;
        }
        if (touched("kms_key") || touched("key_grants_publishers"))
            && let Some(key) = a["kms_key"].as_str()
        {
            self.grant_key(region, key, account_of(arn), &Self::publishers(d)).await?;
        }
        if touched("subscriptions") {
            self.set_subscriptions(&sns, arn, &a["subscriptions"], &o.handle).await?;
        }
        Ok(self.read(ctx, &d.address, region, arn, Some(d)).await?.outputs)
    }

    async fn delete(&self, _ctx: &Ctx<'_>, _address: &Address, o: &Observed) -> Result<()> {
        let region = o.attrs["region"].as_str().unwrap_or_default();
        match self.aws.sns(region).call("DeleteTopic", Params::new().set("TopicArn", &o.id), true).await {
            Ok(_) => Ok(()),
            Err(e) if refusal_code(&e) == Some("NotFound") => Ok(()),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_publishers_are_read_from_any_statement_that_lets_them_publish() {
        let doc = json!({"Statement": [
            {"Sid": "__default_statement_ID", "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": ["SNS:Publish", "SNS:Subscribe"]},
            {"Sid": "x", "Effect": "Allow", "Principal": {"Service": ["events.amazonaws.com", "cloudwatch.amazonaws.com"]}, "Action": "sns:Publish"},
            {"Sid": "y", "Effect": "Deny", "Principal": {"Service": "budgets.amazonaws.com"}, "Action": "sns:Publish"}]});
        assert_eq!(publishers_of(&doc), ["cloudwatch.amazonaws.com", "events.amazonaws.com"]);
        let ours = publish_statement("arn:aws:sns:us-east-1:123456789012:prod-ops", &["cloudwatch.amazonaws.com".to_string()]);
        assert_eq!(ours["Condition"]["StringEquals"]["aws:SourceAccount"], "123456789012");
    }

    #[test]
    fn a_key_grants_the_publishers_only_with_both_actions() {
        let p = vec!["cloudwatch.amazonaws.com".to_string()];
        assert!(key_grants(&json!({"Statement": [key_statement("1", &p)]}), &p));
        let decrypt_only =
            json!({"Statement": [{"Effect": "Allow", "Principal": {"Service": "cloudwatch.amazonaws.com"}, "Action": "kms:Decrypt"}]});
        assert!(!key_grants(&decrypt_only, &p));
        assert!(!key_grants(&json!({}), &p));
    }
}
