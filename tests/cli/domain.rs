//! A distribution's own domain: the ACM certificate and the Route 53 records, through the real
//! CLI against moto's ACM and Route 53 (certificates issue after `MOTO_ACM_VALIDATION_WAIT`
//! seconds). What poactl wrote is read back with the SDK. moto issues a certificate whatever
//! DNS holds (real ACM waits for the CNAME to resolve): docs/testing.md lists the gap.

use aws_sdk_route53::types::{Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType};

use crate::support::{Moto, aws_config, spec_file};

use crate::support::poactl_aws as poactl;

fn spec(zone: Option<&str>, aliases: &str) -> String {
    let zone = zone.map(|z| format!("  hosted_zone: {z}\n")).unwrap_or_default();
    format!(
        "environment: web\nstorage:\n  buckets:\n    - {{ name: web-assets-7f3a }}\ncdn:\n{zone}  distributions:\n    - name: site\n      origin: {{ bucket: web-assets-7f3a }}\n      domain: www.example.org\n      aliases: [{aliases}]\n"
    )
}

/// (name, type, value) of the zone's records, NS and SOA left out.
async fn records(r53: &aws_sdk_route53::Client, zone_id: &str) -> Vec<(String, String, String)> {
    let out = r53.list_resource_record_sets().hosted_zone_id(zone_id).send().await.unwrap();
    out.resource_record_sets()
        .iter()
        .filter(|r| !matches!(r.r#type(), RrType::Ns | RrType::Soa))
        .map(|r| {
            let value = match r.alias_target() {
                Some(a) => format!("alias {}", a.dns_name().trim_end_matches('.')),
                None => r.resource_records().iter().map(|v| v.value().to_string()).collect::<Vec<_>>().join(" "),
            };
            (r.name().trim_end_matches('.').to_string(), r.r#type().as_str().to_string(), value)
        })
        .collect()
}

async fn certificates(acm: &aws_sdk_acm::Client) -> Vec<(String, Vec<String>)> {
    let list = acm.list_certificates().send().await.unwrap();
    let mut out = Vec::new();
    for c in list.certificate_summary_list() {
        let d = acm.describe_certificate().certificate_arn(c.certificate_arn().unwrap()).send().await.unwrap();
        let d = d.certificate().unwrap();
        let mut names = d.subject_alternative_names().to_vec();
        names.sort();
        out.push((d.status().unwrap().as_str().to_string(), names));
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_hosted_zone_the_validation_records_are_printed_and_the_certificate_waited_for() {
    let moto = Moto::start_with(&[("MOTO_ACM_VALIDATION_WAIT", "3")]);
    let conf = aws_config(&moto.url).await;
    let acm = aws_sdk_acm::Client::new(&conf);
    let cf = aws_sdk_cloudfront::Client::new(&conf);
    let (_dir, path) = spec_file("web", &spec(None, "static.example.org"));

    let plan = poactl(&moto.url, &["plan", "-e", &path]).await;
    plan.expect_code(0);
    assert!(plan.stdout.contains("+ cdn.certificates.site"), "{}", plan.stdout);
    assert!(plan.stdout.contains("prints the DNS validation records"), "{}", plan.stdout);
    assert!(plan.stdout.contains("point static.example.org, www.example.org at the distribution's domain yourself"), "{}", plan.stdout);
    assert!(!plan.stdout.contains("cdn.dns_records"), "no zone, no records: {}", plan.stdout);

    let started = std::time::Instant::now();
    let run = poactl(&moto.url, &["apply", "-e", &path, "--auto-approve"]).await;
    run.expect_code(0);
    // The person is told what to create, off a terminal too, and the run waits for ISSUED.
    assert!(run.stderr.contains("create these DNS records at your DNS provider"), "{}", run.stderr);
    assert!(run.stderr.contains(".www.example.org CNAME _") && run.stderr.contains(".static.example.org CNAME _"), "{}", run.stderr);
    assert!(started.elapsed() >= std::time::Duration::from_secs(3), "apply did not wait for the certificate");
    assert_eq!(
        certificates(&acm).await,
        vec![("ISSUED".to_string(), vec!["static.example.org".to_string(), "www.example.org".to_string()])]
    );

    let list = cf.list_distributions().send().await.unwrap();
    let id = list.distribution_list().unwrap().items()[0].id().to_string();
    let cfg = cf.get_distribution_config().id(&id).send().await.unwrap();
    let dc = cfg.distribution_config().unwrap();
    let mut aliases = dc.aliases().unwrap().items().to_vec();
    aliases.sort();
    assert_eq!(aliases, ["static.example.org", "www.example.org"]);
    assert!(dc.viewer_certificate().unwrap().acm_certificate_arn().is_some_and(|a| a.starts_with("arn:aws:acm:us-east-1:")));
    assert_eq!(dc.is_ipv6_enabled(), Some(true));

    // The viewer URL is the domain; the alias target stays the distribution's own name.
    let out = poactl(&moto.url, &["drift", "-e", &path]).await;
    out.expect_code(0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_in_a_hosted_zone_are_owned_adopted_and_pruned() {
    let moto = Moto::start();
    let conf = aws_config(&moto.url).await;
    let acm = aws_sdk_acm::Client::new(&conf);
    let r53 = aws_sdk_route53::Client::new(&conf);
    let zone = r53.create_hosted_zone().name("example.org").caller_reference("t").send().await.unwrap();
    let zone_id = zone.hosted_zone().unwrap().id().trim_start_matches("/hostedzone/").to_string();
    // The name already points at the old host, by hand.
    let by_hand = ResourceRecordSet::builder()
        .name("www.example.org")
        .r#type(RrType::Cname)
        .ttl(60)
        .resource_records(ResourceRecord::builder().value("old-host.example.net").build().unwrap())
        .build()
        .unwrap();
    r53.change_resource_record_sets()
        .hosted_zone_id(&zone_id)
        .change_batch(
            ChangeBatch::builder()
                .changes(Change::builder().action(ChangeAction::Create).resource_record_set(by_hand).build().unwrap())
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let (dir, path) = spec_file("web", &spec(Some("example.org"), "static.example.org"));

    // A record poactl did not make is not touched without --adopt.
    let plan = poactl(&moto.url, &["plan", "-e", &path]).await;
    plan.expect_code(1);
    assert!(plan.stdout.contains("cdn.dns_records.www.example.org") && plan.stdout.contains("no poactl ownership tags"), "{}", plan.stdout);

    // Adopted: the CNAME gives way to the alias records, in the same change batch.
    let run = poactl(&moto.url, &["apply", "-e", &path, "--adopt", "--auto-approve"]).await;
    run.expect_code(0);
    let dist = aws_sdk_cloudfront::Client::new(&conf).list_distributions().send().await.unwrap();
    let dist_domain = dist.distribution_list().unwrap().items()[0].domain_name().to_string();
    let live = records(&r53, &zone_id).await;
    for name in ["www.example.org", "static.example.org"] {
        for kind in ["A", "AAAA"] {
            assert!(live.contains(&(name.to_string(), kind.to_string(), format!("alias {dist_domain}"))), "{name} {kind}: {live:?}");
        }
        assert!(live.iter().any(|(n, t, v)| n == &format!("_poactl.{name}") && t == "TXT" && v.contains("poactl-env=web")), "{live:?}");
    }
    assert!(!live.iter().any(|(n, t, _)| n == "www.example.org" && t == "CNAME"), "{live:?}");
    assert_eq!(live.iter().filter(|(n, t, _)| t == "CNAME" && n.starts_with('_')).count(), 2, "one validation CNAME per name: {live:?}");
    poactl(&moto.url, &["drift", "-e", &path]).await.expect_code(0);

    // An alias added: a certificate for every name is made before the distribution takes it.
    std::fs::write(std::path::Path::new(&path), spec(Some("example.org"), "static.example.org, img.example.org")).unwrap();
    poactl(&moto.url, &["apply", "-e", &path, "--auto-approve"]).await.expect_code(0);
    let live = records(&r53, &zone_id).await;
    assert!(live.contains(&("img.example.org".to_string(), "A".to_string(), format!("alias {dist_domain}"))), "{live:?}");
    let certs = certificates(&acm).await;
    assert!(
        certs.contains(&("ISSUED".to_string(), vec!["img.example.org".into(), "static.example.org".into(), "www.example.org".into()])),
        "{certs:?}"
    );
    poactl(&moto.url, &["apply", "-e", &path, "--prune", "--auto-approve"]).await.expect_code(0);
    assert_eq!(certificates(&acm).await.len(), 1, "the superseded certificate goes with --prune");

    // An alias taken out: its records go with --prune; the certificate's names change, so a new
    // certificate is made and the old one is left for the next --prune, once nothing uses it.
    std::fs::write(std::path::Path::new(&path), spec(Some("example.org"), "")).unwrap();
    let plan = poactl(&moto.url, &["plan", "-e", &path, "--prune"]).await;
    plan.expect_code(0);
    assert!(
        plan.stdout.contains("cdn.certificates.site") && plan.stdout.contains("forces replacement: alternative_names"),
        "{}",
        plan.stdout
    );
    assert!(plan.stdout.contains("cdn.dns_records.static.example.org"), "{}", plan.stdout);
    poactl(&moto.url, &["apply", "-e", &path, "--prune", "--auto-approve"]).await.expect_code(0);
    let live = records(&r53, &zone_id).await;
    assert!(!live.iter().any(|(n, t, _)| (n == "static.example.org" || n == "_poactl.static.example.org") && t != "CNAME"), "{live:?}");
    let certs = certificates(&acm).await;
    assert_eq!(certs.len(), 2, "the old certificate stays until the next prune: {certs:?}");
    let drift = poactl(&moto.url, &["plan", "-e", &path, "--prune", "-o", "json"]).await;
    assert!(drift.stdout.contains("superseded"), "{}", drift.stdout);
    poactl(&moto.url, &["apply", "-e", &path, "--prune", "--auto-approve"]).await.expect_code(0);
    assert_eq!(certificates(&acm).await, vec![("ISSUED".to_string(), vec!["www.example.org".to_string()])]);
    poactl(&moto.url, &["drift", "-e", &path]).await.expect_code(0);
    drop(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hosted_zone_the_account_lacks_is_one_clear_error() {
    let moto = Moto::start();
    let (_dir, path) = spec_file("web", &spec(Some("example.org"), ""));
    let plan = poactl(&moto.url, &["plan", "-e", &path]).await;
    plan.expect_code(1);
    assert!(plan.stderr.contains("no public hosted zone `example.org` in this AWS account"), "{}", plan.stderr);
    assert!(!plan.stderr.contains("panicked"), "{}", plan.stderr);
}
