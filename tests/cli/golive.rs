//! Go-live as real ACM, CloudFront and Route 53 behave at the moments moto never reproduces,
//! through the CLI against moto behind a fault layer (`Recorder::start_with`). Each rule a
//! fault layer copies cites where the real behaviour is documented.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::support::{Fault, Inject, Injected, Moto, Recorder, Seen, poactl_aws as poactl, spec_file};

fn site(domain: &str) -> String {
    format!(
        "environment: web\nstorage:\n  buckets:\n    - {{ name: web-assets-7f3a }}\ncdn:\n  distributions:\n    - name: site\n      origin: {{ bucket: web-assets-7f3a }}\n      domain: {domain}\n"
    )
}

fn acm_error(code: &str, message: &str) -> Fault {
    Fault::Answer(Injected {
        status: 400,
        content_type: "application/x-amz-json-1.1",
        body: serde_json::json!({"__type": code, "message": message}).to_string(),
    })
}

/// The certificate ARN a DescribeCertificate asks about.
fn asked_arn(s: &Seen) -> String {
    serde_json::from_str::<serde_json::Value>(&s.body).ok().and_then(|v| v["CertificateArn"].as_str().map(String::from)).unwrap_or_default()
}

/// Right after RequestCertificate, DescribeCertificate may not know the certificate yet
/// (terraform-provider-aws acm/certificate.go reads not-found as "not yet" for 5 minutes):
/// the apply waits. A certificate ACM refuses outright (FAILED, with its FailureReason: ACM
/// API reference, CertificateDetail) ends the wait at once, with the reason and the fix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moto_a_new_certificate_is_waited_for_and_a_failed_one_ends_the_wait_with_acms_reason() {
    let moto = Moto::start();
    let unknown = Arc::new(AtomicUsize::new(0));
    let seen = unknown.clone();
    let not_yet: Inject = Arc::new(move |s: &Seen, _: usize| {
        (s.action.as_deref() == Some("DescribeCertificate") && seen.fetch_add(1, Ordering::SeqCst) < 2)
            .then(|| acm_error("ResourceNotFoundException", &format!("Could not find certificate {}.", asked_arn(s))))
    });
    let proxy = Recorder::start_with(&moto.url, not_yet).await;
    let (_dir, path) = spec_file("web", &site("www.example.org"));
    let run = poactl(&proxy.url, &["apply", "-e", &path, "--auto-approve"]).await;
    run.expect_code(0);
    assert!(unknown.load(Ordering::SeqCst) >= 3, "the fault layer answered twice, then moto");

    let moto = Moto::start();
    let failed: Inject = Arc::new(|s: &Seen, _: usize| {
        (s.action.as_deref() == Some("DescribeCertificate")).then(|| {
            Fault::Answer(Injected {
                status: 200,
                content_type: "application/x-amz-json-1.1",
                body: serde_json::json!({"Certificate": {
                    "CertificateArn": asked_arn(s), "DomainName": "www.poafix.example", "SubjectAlternativeNames": ["www.poafix.example"],
                    "Status": "FAILED", "FailureReason": "DOMAIN_NOT_ALLOWED", "Type": "AMAZON_ISSUED", "KeyAlgorithm": "RSA-2048",
                    "DomainValidationOptions": [{"DomainName": "www.poafix.example", "ValidationStatus": "FAILED", "ValidationMethod": "DNS"}],
                }})
                .to_string(),
            })
        })
    });
    let proxy = Recorder::start_with(&moto.url, failed).await;
    let (_dir, path) = spec_file("web", &site("www.poafix.example"));
    let started = Instant::now();
    let run = poactl(&proxy.url, &["apply", "-e", &path, "--auto-approve", "--timeout", "120"]).await;
    run.expect_code(1);
    let out = run.all();
    assert!(
        out.contains("ACM did not issue certificate")
            && out.contains("FAILED (DOMAIN_NOT_ALLOWED)")
            && out.contains("use a domain you own"),
        "{out}"
    );
    assert!(started.elapsed() < Duration::from_secs(60), "the wait ended on FAILED, not at --timeout: {:?}", started.elapsed());
}

fn cloudfront_error(status: u16, code: &str, message: &str) -> Fault {
    Fault::Answer(Injected {
        status,
        content_type: "text/xml",
        body: format!(
            "<?xml version=\"1.0\"?><ErrorResponse xmlns=\"http://cloudfront.amazonaws.com/doc/2020-05-31/\"><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>f00d</RequestId></ErrorResponse>"
        ),
    })
}

fn is_create_distribution(s: &Seen) -> bool {
    s.method == "POST" && s.path.ends_with("/distribution") && s.query.contains("WithTags")
}

/// CloudFront can refuse a certificate ACM issued seconds ago (InvalidViewerCertificate:
/// terraform-provider-aws cloudfront/distribution.go retries it for a minute, "ACM and IAM
/// certificate eventual consistency"): the create is asked again. An alias another
/// distribution holds (CNAMEAlreadyExists, CloudFront API reference, CreateDistribution)
/// fails with AWS's way to move it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moto_cloudfront_is_asked_again_for_a_fresh_certificate_and_a_taken_alias_names_the_move() {
    let moto = Moto::start();
    let refused = Arc::new(AtomicUsize::new(0));
    let count = refused.clone();
    let not_yet: Inject = Arc::new(move |s: &Seen, _: usize| {
        (is_create_distribution(s) && count.fetch_add(1, Ordering::SeqCst) < 2).then(|| {
            cloudfront_error(
                400,
                "InvalidViewerCertificate",
                "The specified SSL certificate doesn't exist, isn't in us-east-1 region, isn't valid, or doesn't include a valid certificate chain.",
            )
        })
    });
    let proxy = Recorder::start_with(&moto.url, not_yet).await;
    let (_dir, path) = spec_file("web", &site("www.example.org"));
    let run = poactl(&proxy.url, &["apply", "-e", &path, "--auto-approve"]).await;
    run.expect_code(0);
    assert_eq!(refused.load(Ordering::SeqCst), 3, "refused twice, then accepted");

    let moto = Moto::start();
    let taken: Inject = Arc::new(|s: &Seen, _: usize| {
        is_create_distribution(s).then(|| {
            cloudfront_error(
                409,
                "CNAMEAlreadyExists",
                "One or more of the CNAMEs you provided are already associated with a different resource.",
            )
        })
    });
    let proxy = Recorder::start_with(&moto.url, taken).await;
    let (_dir, path) = spec_file("web", &site("www.example.org"));
    let run = poactl(&proxy.url, &["apply", "-e", &path, "--auto-approve"]).await;
    run.expect_code(1);
    let out = run.all();
    assert!(
        out.contains("another distribution, perhaps in another AWS account, already holds one")
            && out.contains("create the TXT record `_www.example.org`")
            && out.contains("aws cloudfront associate-alias"),
        "{out}"
    );
}

/// A page of ListResourceRecordSets as Route 53 writes it (API reference, the response's
/// elements), with weighted A records `www.example.org` w{from}..w{to}.
/// Route 53's answer to a change batch it refuses (API reference, ChangeResourceRecordSets,
/// InvalidChangeBatch), in the ErrorResponse shape the SDK reads.
fn invalid_change_batch(message: &str) -> Fault {
    Fault::Answer(Injected {
        status: 400,
        content_type: "text/xml",
        body: format!(
            "<?xml version=\"1.0\"?><ErrorResponse xmlns=\"https://route53.amazonaws.com/doc/2013-04-01/\"><Error><Type>Sender</Type><Code>InvalidChangeBatch</Code><Message>{message}</Message></Error><RequestId>r</RequestId></ErrorResponse>"
        ),
    })
}

fn weighted_page(from: usize, to: usize, next: Option<usize>) -> Fault {
    let sets: String = (from..to)
        .map(|i| format!("<ResourceRecordSet><Name>www.example.org.</Name><Type>A</Type><SetIdentifier>w{i:02}</SetIdentifier><Weight>1</Weight><TTL>60</TTL><ResourceRecords><ResourceRecord><Value>192.0.2.{i}</Value></ResourceRecord></ResourceRecords></ResourceRecordSet>"))
        .collect();
    let tail = match next {
        Some(n) => format!(
            "<IsTruncated>true</IsTruncated><NextRecordName>www.example.org.</NextRecordName><NextRecordType>A</NextRecordType><NextRecordIdentifier>w{n:02}</NextRecordIdentifier>"
        ),
        None => "<IsTruncated>false</IsTruncated>".to_string(),
    };
    Fault::Answer(Injected {
        status: 200,
        content_type: "text/xml",
        body: format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListResourceRecordSetsResponse xmlns=\"https://route53.amazonaws.com/doc/2013-04-01/\"><ResourceRecordSets>{sets}</ResourceRecordSets>{tail}<MaxItems>20</MaxItems></ListResourceRecordSetsResponse>"
        ),
    })
}

/// More than one page of weighted records of one name and type: the next page is asked for
/// from NextRecordIdentifier (Route 53 API reference, ListResourceRecordSets), so the plan
/// ends and sees all 25. The fault layer pages as Route 53 does; moto pages by name and type
/// only, which would repeat the first page without end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moto_weighted_records_past_one_page_are_all_read_and_the_listing_ends() {
    let moto = Moto::start();
    let conf = crate::support::aws_config(&moto.url).await;
    let r53 = aws_sdk_route53::Client::new(&conf);
    r53.create_hosted_zone().name("example.org").caller_reference("t").send().await.unwrap();
    let pages: Inject = Arc::new(|s: &Seen, _: usize| {
        (s.method == "GET" && s.path.ends_with("/rrset"))
            .then(|| if s.query.contains("identifier=w20") { weighted_page(20, 25, None) } else { weighted_page(0, 20, Some(20)) })
    });
    let proxy = Recorder::start_with(&moto.url, pages).await;
    let spec = "environment: web\nstorage:\n  buckets:\n    - { name: web-assets-7f3a }\ncdn:\n  hosted_zone: example.org\n  distributions:\n    - name: site\n      origin: { bucket: web-assets-7f3a }\n      domain: www.example.org\n";
    let (_dir, path) = spec_file("web", spec);
    let run = tokio::time::timeout(Duration::from_secs(120), poactl(&proxy.url, &["plan", "-e", &path])).await.expect("the plan ended");
    let asked: Vec<String> = proxy.all().iter().filter(|s| s.path.ends_with("/rrset")).map(|s| s.query.clone()).collect();
    assert!(asked.iter().any(|q| q.contains("identifier=w20")), "the second page was asked for by identifier: {asked:?}");
    assert!(asked.len() < 10, "no page asked for twice without end: {asked:?}");
    // 25 weighted records nobody tagged hold the name: poactl will not touch them.
    run.expect_code(1);
    assert!(run.stdout.contains("cdn.dns_records.www.example.org") && run.stdout.contains("no poactl ownership tags"), "{}", run.all());
}

/// The spec can name any current CloudFront security policy; a live one stricter than the
/// spec's (raised by hand, or a newer AWS default) is kept, never lowered, even when another
/// field changes; one weaker than the spec's is drift that says it is a downgrade.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moto_a_stricter_live_tls_policy_is_never_lowered_and_a_weaker_one_is_a_downgrade() {
    let moto = Moto::start();
    let conf = crate::support::aws_config(&moto.url).await;
    let arn = crate::support::issued_certificate(&conf, "*.tl.example").await;
    let yaml = |extra: &str| {
        format!(
            "environment: tl\nstorage:\n  buckets:\n    - {{ name: tl-uploads }}\ncdn:\n  distributions:\n    - name: assets\n      origin: {{ bucket: tl-uploads }}\n      aliases: [cdn.tl.example]\n      certificate_arn: {arn}\n{extra}"
        )
    };
    let (_dir, spec) = spec_file("tl", &yaml(""));
    poactl(&moto.url, &["apply", "-e", &spec, "--auto-approve", "-q"]).await.expect_code(0);
    let cf = aws_sdk_cloudfront::Client::new(&conf);
    let id = cf.list_distributions().send().await.unwrap().distribution_list.unwrap().items.unwrap()[0].id.clone();
    let set_policy = |policy: &'static str| {
        let (cf, id) = (cf.clone(), id.clone());
        async move {
            let got = cf.get_distribution_config().id(&id).send().await.unwrap();
            let mut cfg = got.distribution_config.unwrap();
            let mut vc = cfg.viewer_certificate.clone().unwrap();
            vc.minimum_protocol_version = Some(aws_sdk_cloudfront::types::MinimumProtocolVersion::from(policy));
            cfg.viewer_certificate = Some(vc);
            cf.update_distribution().id(&id).if_match(got.e_tag.unwrap()).distribution_config(cfg).send().await.unwrap();
        }
    };
    let live_policy = || {
        let (cf, id) = (cf.clone(), id.clone());
        async move {
            let got = cf.get_distribution_config().id(&id).send().await.unwrap();
            got.distribution_config.unwrap().viewer_certificate.unwrap().minimum_protocol_version.unwrap().as_str().to_string()
        }
    };

    // Raised by hand: no change in the plan, and an apply of another change keeps it.
    set_policy("TLSv1.2_2025").await;
    poactl(&moto.url, &["plan", "-e", &spec, "--detailed-exitcode"]).await.expect_code(0);
    std::fs::write(&spec, yaml("      comment: assets for the app\n")).unwrap();
    poactl(&moto.url, &["apply", "-e", &spec, "--auto-approve", "-q"]).await.expect_code(0);
    assert_eq!(live_policy().await, "TLSv1.2_2025", "never lowered");

    // Lowered by hand: drift, named as a downgrade; apply raises it to the spec's.
    set_policy("TLSv1_2016").await;
    let drift = poactl(&moto.url, &["drift", "-e", &spec]).await;
    drift.expect_code(2);
    assert!(drift.stdout.contains("TLSv1_2016 is weaker than the spec's TLSv1.2_2021"), "{}", drift.stdout);
    poactl(&moto.url, &["apply", "-e", &spec, "--auto-approve", "-q"]).await.expect_code(0);
    assert_eq!(live_policy().await, "TLSv1.2_2021");

    // The spec names the newest policy: it is sent as it is.
    std::fs::write(&spec, yaml("      min_tls: TLSv1.3_2025\n")).unwrap();
    poactl(&moto.url, &["apply", "-e", &spec, "--auto-approve", "-q"]).await.expect_code(0);
    assert_eq!(live_policy().await, "TLSv1.3_2025");
    poactl(&moto.url, &["plan", "-e", &spec, "--detailed-exitcode"]).await.expect_code(0);
}

/// Route 53 deletes a record set only when the DELETE repeats it whole, its routing fields
/// included (API reference, ChangeResourceRecordSets: "you must specify all the same values
/// that you specified when you created it"; InvalidChangeBatch otherwise). moto deletes by
/// name and type alone, so the fault layer refuses a DELETE of a weighted set that lacks its
/// SetIdentifier or Weight, as Route 53 does. Weighted CNAMEs made by hand at an adopted name
/// are then removed, not left behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moto_weighted_records_an_adopted_name_held_are_deleted_whole() {
    use aws_sdk_route53::types::{Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType};
    let moto = Moto::start();
    let conf = crate::support::aws_config(&moto.url).await;
    let r53 = aws_sdk_route53::Client::new(&conf);
    let zone = r53.create_hosted_zone().name("example.org").caller_reference("t").send().await.unwrap();
    let zone_id = zone.hosted_zone().unwrap().id().trim_start_matches("/hostedzone/").to_string();
    let weighted = |id: &str, weight: i64, host: &str| {
        let set = ResourceRecordSet::builder()
            .name("www.example.org")
            .r#type(RrType::Cname)
            .set_identifier(id)
            .weight(weight)
            .ttl(60)
            .resource_records(ResourceRecord::builder().value(host).build().unwrap())
            .build()
            .unwrap();
        Change::builder().action(ChangeAction::Create).resource_record_set(set).build().unwrap()
    };
    r53.change_resource_record_sets()
        .hosted_zone_id(&zone_id)
        .change_batch(
            ChangeBatch::builder()
                .changes(weighted("blue", 1, "blue.example.net"))
                .changes(weighted("green", 0, "green.example.net"))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let strict: Inject = Arc::new(|s: &Seen, _: usize| {
        let deletes_weighted_cname = s.method == "POST"
            && s.path.contains("/rrset")
            && s.body.split("<Change>").any(|c| c.contains("<Action>DELETE</Action>") && c.contains("<Type>CNAME</Type>"));
        let whole = s
            .body
            .split("<Change>")
            .filter(|c| c.contains("<Action>DELETE</Action>"))
            .all(|c| c.contains("<SetIdentifier>") && c.contains("<Weight>"));
        (deletes_weighted_cname && !whole).then(|| {
            invalid_change_batch("[Tried to delete resource record set [name='www.example.org.', type='CNAME'] but it was not found]")
        })
    });
    let proxy = Recorder::start_with(&moto.url, strict).await;
    let spec = "environment: web\nstorage:\n  buckets:\n    - { name: web-assets-7f3a }\ncdn:\n  hosted_zone: example.org\n  distributions:\n    - name: site\n      origin: { bucket: web-assets-7f3a }\n      domain: www.example.org\n";
    let (_dir, path) = spec_file("web", spec);
    poactl(&proxy.url, &["apply", "-e", &path, "--adopt", "--auto-approve"]).await.expect_code(0);
    let live = r53.list_resource_record_sets().hosted_zone_id(&zone_id).send().await.unwrap();
    let at_name: Vec<String> = live
        .resource_record_sets()
        .iter()
        .filter(|s| s.name().trim_end_matches('.') == "www.example.org")
        .map(|s| format!("{} {}", s.r#type().as_str(), s.set_identifier().unwrap_or("")))
        .collect();
    assert!(!at_name.iter().any(|s| s.starts_with("CNAME")), "the weighted CNAMEs are gone: {at_name:?}");
    assert!(at_name.iter().any(|s| s.starts_with("A ")) && at_name.iter().any(|s| s.starts_with("AAAA ")), "{at_name:?}");
}

/// A TXT character-string holds at most 255 characters (RFC 1035 3.3.14; Route 53 Developer
/// Guide, "TXT record type"), and Route 53 refuses a longer one (InvalidChangeBatch); moto
/// takes it, so the fault layer refuses it as Route 53 does. The owner record of a long name
/// is split into several strings, read back joined.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moto_the_owner_record_of_a_long_name_stays_within_txt_limits() {
    let moto = Moto::start();
    let conf = crate::support::aws_config(&moto.url).await;
    let r53 = aws_sdk_route53::Client::new(&conf);
    r53.create_hosted_zone().name("example.org").caller_reference("t").send().await.unwrap();
    let strict: Inject = Arc::new(|s: &Seen, _: usize| {
        let body = s.body.replace("&quot;", "\"");
        let too_long = s.method == "POST"
            && s.path.contains("/rrset")
            && body
                .split("<Value>")
                .skip(1)
                .filter_map(|v| v.split("</Value>").next())
                .any(|v| v.split('"').skip(1).step_by(2).any(|part| part.chars().count() > 255));
        too_long
            .then(|| invalid_change_batch("[Invalid Resource Record: 'FATAL problem: TXTRDATATooLong (Value is too long) encountered']"))
    });
    let proxy = Recorder::start_with(&moto.url, strict).await;
    let long = format!("{}.example.org", ["a".repeat(63), "b".repeat(63), "c".repeat(63)].join("."));
    let spec = format!(
        "environment: web\nstorage:\n  buckets:\n    - {{ name: web-assets-7f3a }}\ncdn:\n  hosted_zone: example.org\n  distributions:\n    - name: site\n      origin: {{ bucket: web-assets-7f3a }}\n      domain: www.example.org\n      aliases: [{long}]\n"
    );
    let (_dir, path) = spec_file("web", &spec);
    poactl(&proxy.url, &["apply", "-e", &path, "--auto-approve"]).await.expect_code(0);
    poactl(&proxy.url, &["plan", "-e", &path, "--detailed-exitcode"]).await.expect_code(0);
}

/// An account can hold many certificates. A plain plan reads the tags of the certificates
/// with the spec's names only; `--prune`, which deletes what it finds, reads every one, a
/// bounded number at a time (ACM allows 10 requests a second per account, ACM quotas), not in
/// one burst. The proxy holds each request 200 ms so that reads in flight overlap visibly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moto_certificate_tags_are_read_for_the_specs_names_and_all_only_for_prune() {
    let moto = Moto::start();
    let conf = crate::support::aws_config(&moto.url).await;
    let acm = aws_sdk_acm::Client::new(&conf);
    for domain in (0..11).map(|i| format!("other{i}.example.net")).chain(["www.example.org".to_string()]) {
        acm.request_certificate().domain_name(domain).validation_method(aws_sdk_acm::types::ValidationMethod::Dns).send().await.unwrap();
    }
    let proxy = Recorder::start_slow(&moto.url, Duration::from_millis(200)).await;
    let (_dir, path) = spec_file("web", &site("www.example.org"));
    let tag_reads = |proxy: &Recorder| -> Vec<(Instant, Instant)> {
        proxy.all().iter().filter(|s| s.action.as_deref() == Some("ListTagsForCertificate")).filter_map(|s| Some((s.at, s.done?))).collect()
    };
    poactl(&proxy.url, &["plan", "-e", &path]).await.expect_code(0);
    assert_eq!(tag_reads(&proxy).len(), 1, "a plain plan reads the tags of www.example.org's certificate only");
    proxy.clear();
    poactl(&proxy.url, &["plan", "-e", &path, "--prune"]).await.expect_code(0);
    let reads = tag_reads(&proxy);
    assert_eq!(reads.len(), 12, "--prune reads each certificate's tags, once");
    let most = reads.iter().map(|(start, _)| reads.iter().filter(|(a, b)| a <= start && start < b).count()).max().unwrap_or(0);
    assert!(most <= 4, "at most 4 tag reads at once, saw {most}");
}

/// An alias another distribution of the account holds is a conflict in the plan, found before
/// any certificate is requested (CloudFront refuses a shared alias, CNAMEAlreadyExists): the
/// certificate, the distribution and its records are not created, and the message names the
/// holder and the way to move the alias.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moto_an_alias_another_distribution_holds_is_a_conflict_before_any_certificate() {
    let moto = Moto::start();
    let conf = crate::support::aws_config(&moto.url).await;
    let arn = crate::support::issued_certificate(&conf, "*.example.org").await;
    let other = format!(
        "environment: old\nstorage:\n  buckets:\n    - {{ name: old-assets-7f3a }}\ncdn:\n  distributions:\n    - name: site\n      origin: {{ bucket: old-assets-7f3a }}\n      aliases: [www.example.org]\n      certificate_arn: {arn}\n"
    );
    let (_old, old_path) = spec_file("old", &other);
    poactl(&moto.url, &["apply", "-e", &old_path, "--auto-approve", "-q"]).await.expect_code(0);

    let (_dir, path) = spec_file("web", &site("www.example.org"));
    let plan = poactl(&moto.url, &["plan", "-e", &path]).await;
    plan.expect_code(1);
    assert!(
        plan.stdout.contains("cdn.certificates.site")
            && plan.stdout.contains("www.example.org is already an alias of distribution")
            && plan.stdout.contains("environment \"old\"")
            && plan.stdout.contains("associate-alias"),
        "{}",
        plan.stdout
    );
    assert!(plan.stdout.contains("cdn.distributions.site: it needs cdn.certificates.site"), "{}", plan.stdout);
    let run = poactl(&moto.url, &["apply", "-e", &path, "--auto-approve"]).await;
    run.expect_code(1);
    let acm = aws_sdk_acm::Client::new(&conf);
    let certs = acm.list_certificates().send().await.unwrap();
    assert_eq!(certs.certificate_summary_list().len(), 1, "no certificate requested for the taken name");
    let cf = aws_sdk_cloudfront::Client::new(&conf);
    let dists = cf.list_distributions().send().await.unwrap();
    assert_eq!(dists.distribution_list().unwrap().items().len(), 1, "no second distribution");
}
