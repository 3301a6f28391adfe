"""Starts moto's server for the tests (and `make demo`), with eight documented fixes.

1. moto 5.2.5 drops `Origin.OriginAccessControlId` from created distributions (it reads back
   empty); real CloudFront keeps it. poactl compares the OAC id like any other field, so moto
   keeps that one attribute.
2. moto 5.2.5 answers GetBucketVersioning with a `<GetBucketVersioningResponse>` root element,
   and ListParts with `<ListPartsResponse>`; real S3 (and the S3 model the Rust SDK is
   generated from) uses `<VersioningConfiguration>` and `<ListPartsResult>` (S3 API reference,
   ListParts, "Response Syntax"), and the SDK rejects anything else. moto's answers get the
   real root names.
3. moto 5.2.5 ignores `CreateBucketConfiguration.Tags`; real S3 tags the bucket as it creates
   it (S3 API reference, CreateBucket: "Tags: An array of tags that you can apply to the bucket
   that you're creating"; the field is in the S3 model the Rust SDK is generated from). poactl
   relies on it so a bucket is never untagged, even for an instant; moto applies them.

4. moto 5.2.5 leaves `BucketRegion` out of ListBuckets; real S3 includes it when the request
   has at least one valid parameter (S3 API reference, ListBuckets, Bucket.BucketRegion: "If
   the request contains at least one valid parameter, it is included in the response"; the
   field is in the S3 model the Rust SDK is generated from). poactl sends `max-buckets` and
   takes each bucket's region from the list; moto adds it the same way.

5. moto 5.2.5 evaluates a bucket policy as if it were the caller's own identity policy: it
   ignores `Principal` (and `Condition`), so the statement poactl writes for CloudFront
   (`Principal: {Service: cloudfront.amazonaws.com}`, `AWS:SourceArn` of the distribution) lets
   an anonymous GET read a private object. Real S3 applies a statement only to the principal it
   names (IAM User Guide, "IAM JSON policy elements: Principal"; the CloudFront Developer
   Guide, "Restrict access to an Amazon S3 origin", gives exactly this statement for a bucket
   that stays private). moto's check keeps only the statements whose
   principal is everyone (`"*"` or `{"AWS": "*"}`).

6. moto 5.2.5 leaves each part's `ChecksumSHA256` out of ListParts, though the upload was
   created with `x-amz-checksum-algorithm: SHA256`; real S3 returns it (S3 API reference,
   ListParts, Part.ChecksumSHA256: "The Base64 encoded, 256-bit SHA256 checksum of the part";
   the field is in the S3 model the Rust SDK is generated from). poactl resumes a multipart
   upload only from parts whose checksum it can compare; moto adds the part's SHA-256, computed
   from the part it stored, for uploads created with that algorithm.

7. moto 5.2.5 drops each cache behaviour's `FunctionAssociations` and
   `LambdaFunctionAssociations` (it always answers `Quantity: 0`); real CloudFront keeps
   them (CloudFront API reference, CacheBehavior.FunctionAssociations and
   LambdaFunctionAssociations). poactl must keep an association someone attached when it
   updates the behaviour, which cannot be seen if moto forgets it; moto keeps what it was sent.

8. moto 5.2.5 confirms every SNS subscription the moment it is made. Real SNS leaves an email,
   email-json, http or https subscription *pending confirmation* until its endpoint follows
   the link (or posts the token) SNS sends it (SNS Developer Guide, "Confirm your
   subscription"): ListSubscriptionsByTopic lists it with the ARN `PendingConfirmation`
   (hashicorp/terraform#2776), GetSubscriptionAttributes says `PendingConfirmation: true`,
   `Unsubscribe` is refused with InvalidParameter ("Cannot unsubscribe a subscription that is
   pending confirmation", go-to-k/cdkd#1305), `ConfirmSubscription` with the token confirms it,
   and the topic's `SubscriptionsPending` / `SubscriptionsConfirmed` count them (moto leaves
   both at 0). moto keeps those subscriptions pending the same way; the message SNS would send
   (topic, endpoint, token) is written as a JSON file into `MOTO_SNS_OUTBOX` when that is set:
   the tests' mailbox, from which they confirm as the endpoint's owner would.
9. moto 5.2.5 appends a second filter when PutMetricFilter names a filter the log group
   already has, and lists both. Real CloudWatch Logs updates it in place: PutMetricFilter
   "Creates or updates a metric filter and associates it with the specified log group"
   (CloudWatch Logs API Reference, PutMetricFilter), and filter names are unique within a
   group (terraform-provider-aws `aws_cloudwatch_log_metric_filter` updates through the same
   call, internal/service/logs/metric_filter.go). The launcher replaces a filter of the same
   name and group.

Nothing else is changed.

Usage: python moto_server.py HOST PORT
"""
import base64
import hashlib
import os
import sys

from moto.cloudfront import models

_original_init = models.Origin.__init__


def _init_keeping_oac(self, origin):
    _original_init(self, origin)
    self.origin_access_control_id = origin.get("OriginAccessControlId", "")


models.Origin.__init__ = _init_keeping_oac

_original_behaviour_init = models.DefaultCacheBehaviour.__init__


def _init_keeping_associations(self, config):
    _original_behaviour_init(self, config)
    for key, attr in (("FunctionAssociations", "function_associations"), ("LambdaFunctionAssociations", "lambda_function_associations")):
        if config.get(key):
            setattr(self, attr, config[key])


models.DefaultCacheBehaviour.__init__ = _init_keeping_associations

from moto.core import serialize  # noqa: E402

_original_s3_result = serialize.S3Serializer._serialized_result_to_response


def _s3_result_with_real_roots(self, resp, result, shape, serialized_result):
    resp = _original_s3_result(self, resp, result, shape, serialized_result)
    if self.operation_model.name == "GetBucketVersioning":
        resp["body"] = resp["body"].replace("GetBucketVersioningResponse", "VersioningConfiguration")
    if self.operation_model.name == "ListParts":
        resp["body"] = resp["body"].replace("ListPartsResponse", "ListPartsResult")
    return resp


serialize.S3Serializer._serialized_result_to_response = _s3_result_with_real_roots

import xmltodict  # noqa: E402
from moto.s3 import responses as s3_responses  # noqa: E402

_original_bucket_put = s3_responses.S3Response._bucket_response_put


def _bucket_put_with_create_tags(self, request, bucket_name, querystring):
    result = _original_bucket_put(self, request, bucket_name, querystring)
    if not querystring and self.body:
        try:
            config = xmltodict.parse(self.body, force_list={"Tag": True}).get("CreateBucketConfiguration") or {}
        except Exception:  # not XML: nothing to apply
            config = {}
        tags = (config.get("Tags") or {}).get("Tag") or []
        if tags:
            self.backend.put_bucket_tagging(bucket_name, {t["Key"]: t.get("Value") or "" for t in tags})
    return result


s3_responses.S3Response._bucket_response_put = _bucket_put_with_create_tags

_original_serialized = s3_responses.S3Response.serialized


def _serialized_with_part_checksums(self, action_result):
    result = action_result.result if isinstance(action_result.result, dict) else None
    if self.data.get("Action") != "ListParts" or not result:
        return None
    try:
        upload = self.backend.get_bucket(result["Bucket"]).multiparts[result["UploadId"]]
    except Exception:  # gone meanwhile: leave it as moto answered
        return None
    if (upload.metadata.get("x-amz-checksum-algorithm") or "").upper() != "SHA256":
        return None
    for part in result.get("Parts") or []:
        stored = upload.parts.get(int(part["PartNumber"]))
        if stored is not None:
            part["ChecksumSHA256"] = base64.b64encode(hashlib.sha256(stored.value).digest()).decode()
    return None


def _serialized_with_bucket_regions(self, action_result):
    _serialized_with_part_checksums(self, action_result)
    if self.data.get("Action") == "ListBuckets" and any(
        self._get_param(p) is not None for p in ("prefix", "bucket-region", "max-buckets", "continuation-token")
    ):
        buckets = action_result.result.get("Buckets") if isinstance(action_result.result, dict) else None
        for b in buckets or []:
            try:
                b["BucketRegion"] = self.backend.get_bucket(b["Name"]).region_name
            except Exception:  # deleted meanwhile: leave it as moto answered
                pass
    return _original_serialized(self, action_result)


s3_responses.S3Response.serialized = _serialized_with_bucket_regions

import json  # noqa: E402

from moto.s3 import models as s3_models  # noqa: E402

_original_get_permission = s3_models.FakeBucket.get_permission


def _anyone(principal):
    if principal == "*":
        return True
    aws = principal.get("AWS") if isinstance(principal, dict) else None
    return aws == "*" or (isinstance(aws, list) and "*" in aws)


def _permission_for_anyone(self, action, resource):
    if self.policy is None:
        return _original_get_permission(self, action, resource)
    try:
        policy = json.loads(self.policy.decode())
    except Exception:  # not JSON: leave it to moto
        return _original_get_permission(self, action, resource)
    statements = policy.get("Statement") or []
    if isinstance(statements, dict):
        statements = [statements]
    policy["Statement"] = [st for st in statements if _anyone(st.get("Principal", "*"))]
    original, self.policy = self.policy, json.dumps(policy).encode()
    try:
        return _original_get_permission(self, action, resource)
    finally:
        self.policy = original


s3_models.FakeBucket.get_permission = _permission_for_anyone

from moto.sns import models as sns_models  # noqa: E402
from moto.sns import responses as sns_responses  # noqa: E402
from moto.sns.exceptions import SNSInvalidParameter  # noqa: E402

_CONFIRMED_BY_ENDPOINT = ("email", "email-json", "http", "https")
# subscription ARN -> the token its confirmation message carries
_PENDING = {}
_original_subscribe = sns_models.SNSBackend.subscribe
_original_unsubscribe = sns_models.SNSBackend.unsubscribe


def _recount(backend, topic_arn):
    topic = backend.topics.get(topic_arn)
    if topic is None:
        return
    subs = [s for s in backend.subscriptions.values() if s.topic_arn == topic_arn]
    topic.subscriptions_pending = sum(1 for s in subs if s.arn in _PENDING)
    topic.subscriptions_confimed = len(subs) - topic.subscriptions_pending


def _subscribe_pending(self, topic_arn, endpoint, protocol):
    known = set(self.subscriptions)
    sub = _original_subscribe(self, topic_arn, endpoint, protocol)
    if protocol in _CONFIRMED_BY_ENDPOINT and sub.arn not in known:
        token = hashlib.sha256(sub.arn.encode()).hexdigest()
        _PENDING[sub.arn] = token
        sub.attributes["PendingConfirmation"] = "true"
        outbox = os.environ.get("MOTO_SNS_OUTBOX")
        if outbox:
            name = hashlib.sha256(f"{topic_arn} {protocol} {endpoint}".encode()).hexdigest()[:16] + ".json"
            with open(os.path.join(outbox, name), "w") as f:
                json.dump({"TopicArn": topic_arn, "Protocol": protocol, "Endpoint": endpoint, "Token": token}, f)
    _recount(self, topic_arn)
    return sub


def _unsubscribe_unless_pending(self, subscription_arn):
    if subscription_arn in _PENDING:
        raise SNSInvalidParameter("Invalid parameter: Cannot unsubscribe a subscription that is pending confirmation")
    sub = self.subscriptions.get(subscription_arn)
    _original_unsubscribe(self, subscription_arn)
    if sub is not None:
        _recount(self, sub.topic_arn)


def _listed(subscriptions):
    return [
        {
            "SubscriptionArn": "PendingConfirmation" if s.arn in _PENDING else s.arn,
            "Owner": s.owner,
            "Protocol": s.protocol,
            "Endpoint": s.endpoint,
            "TopicArn": s.topic_arn,
        }
        for s in subscriptions
    ]


def _list_subscriptions_by_topic(self):
    subscriptions, next_token = self.backend.list_subscriptions_by_topic(self._get_param("TopicArn"), next_token=self._get_param("NextToken"))
    return sns_responses.ActionResult({"Subscriptions": _listed(subscriptions), "NextToken": next_token})


def _list_subscriptions(self):
    subscriptions, next_token = self.backend.list_subscriptions(next_token=self._get_param("NextToken"))
    return sns_responses.ActionResult({"Subscriptions": _listed(subscriptions), "NextToken": next_token})


def _confirm_subscription(self):
    topic_arn, token = self._get_param("TopicArn"), self._get_param("Token")
    for arn, t in list(_PENDING.items()):
        sub = self.backend.subscriptions.get(arn)
        if t == token and sub is not None and sub.topic_arn == topic_arn:
            del _PENDING[arn]
            sub.attributes["PendingConfirmation"] = "false"
            _recount(self.backend, topic_arn)
            return sns_responses.ActionResult({"SubscriptionArn": arn})
    raise SNSInvalidParameter("Invalid token")


sns_models.SNSBackend.subscribe = _subscribe_pending
sns_models.SNSBackend.unsubscribe = _unsubscribe_unless_pending
sns_responses.SNSResponse.list_subscriptions_by_topic = _list_subscriptions_by_topic
sns_responses.SNSResponse.list_subscriptions = _list_subscriptions
sns_responses.SNSResponse.confirm_subscription = _confirm_subscription

from moto.logs import metric_filters as logs_filters  # noqa: E402

_original_add_filter = logs_filters.MetricFilters.add_filter


def _add_or_replace_filter(self, filter_name, filter_pattern, log_group_name, metric_transformations):
    self.metric_filters = [
        f for f in self.metric_filters if not (f["filterName"] == filter_name and f["logGroupName"] == log_group_name)
    ]
    _original_add_filter(self, filter_name, filter_pattern, log_group_name, metric_transformations)


logs_filters.MetricFilters.add_filter = _add_or_replace_filter

from moto.server import main  # noqa: E402

if __name__ == "__main__":
    host, port = sys.argv[1], sys.argv[2]
    main(["-H", host, "-p", port])
