//! Atlas PrivateLink through the CLI: the sandbox plays Atlas' side (service and interface
//! state machines, the private strings), moto the AWS side (VPC, subnets, the interface
//! endpoint, the security group). moto makes endpoints available at once and never refuses
//! private DNS, so the tests assert on the requests poactl sends, not on moto's leniency.

use serde_json::{Value, json};

use crate::support::{Poactl, TwoClouds, all_of, app_network, app_vpc, ec2, spec_file};

const ORG: &str = "0123456789abcdef01234567";

fn spec_text(env: &str, vpc: &str, subnets: &[String], allow_from: &str) -> String {
    format!(
        "environment: {env}\naws: {{ region: us-east-1 }}\natlas:\n  org_id: \"{ORG}\"\n  project: {env}-project\n  clusters:\n    - {{ name: main, tier: M10, provider: AWS, region: US_EAST_1 }}\n  network:\n    public_access: false\n    private_endpoints:\n      - region: US_EAST_1\n        vpc: {vpc}\n        subnets: [{}]\n        allow_from: [{allow_from}]\n",
        subnets.join(", ")
    )
}

impl TwoClouds {
    async fn live_endpoints(&self) -> Vec<(String, String)> {
        let xml = ec2(&self.moto.url, &[("Action", "DescribeVpcEndpoints")]).await;
        let ids = all_of(&xml, "vpcEndpointId");
        let states = all_of(&xml, "state");
        ids.into_iter().zip(states).filter(|(_, s)| s != "deleted").collect()
    }

    async fn poactl_groups(&self) -> Vec<String> {
        let xml = ec2(&self.moto.url, &[("Action", "DescribeSecurityGroups")]).await;
        all_of(&xml, "groupName").into_iter().filter(|n| n.starts_with("poactl-")).collect()
    }
}

/// Where in the sandbox log the first request matching `method` and `path_end` is.
fn position(log: &[Value], method: &str, operation_end: &str) -> usize {
    log.iter()
        .position(|e| e["method"] == method && e["operation"].as_str().is_some_and(|o| o.ends_with(operation_end)))
        .unwrap_or_else(|| panic!("no {method} …{operation_end} in the log"))
}

/// Item 1 and 3 of issue 30: one apply runs the whole chain in order (service, its wait, the
/// security group with 1024-65535, the interface endpoint without private DNS, the
/// registration, the clusters), the `.env` gets the private string, a REJECTED connection is
/// drift that apply replaces, and destroy takes it all down in the reverse order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn privatelink_one_apply_runs_the_chain_and_destroy_undoes_it() {
    let w = TwoClouds::start().await;
    let ((vpc, subnets), app) = app_network(&w.moto.url).await;
    let (_dir, spec) = spec_file("pl", &spec_text("pl", &vpc, &subnets, &format!("10.0.0.0/16, {app}")));

    let applied = w.run(&["apply", "-e", &spec, "--auto-approve", "-q"]).await;
    applied.expect_code(0);

    // The AWS side, as sent.
    let created = w.ec2_calls("CreateVpcEndpoint");
    assert_eq!(created.len(), 1, "{created:?}");
    let body = &created[0];
    for want in [
        "PrivateDnsEnabled=false",
        "VpcEndpointType=Interface",
        &format!("VpcId={vpc}"),
        "ServiceName=com.amazonaws.vpce.us-east-1.vpce-svc-",
    ] {
        assert!(body.contains(want), "CreateVpcEndpoint lacks {want}: {body}");
    }
    for s in &subnets {
        assert!(body.contains(s), "subnet {s} missing: {body}");
    }
    assert!(body.contains("TagSpecification.1.ResourceType=vpc-endpoint") && body.contains("atlas.private_endpoints.US_EAST_1"), "{body}");
    let ingress = w.ec2_calls("AuthorizeSecurityGroupIngress");
    assert_eq!(ingress.len(), 2, "{ingress:?}");
    assert!(
        ingress.iter().all(|b| b.contains("FromPort=1024") && b.contains("ToPort=65535") && b.contains("IpProtocol=tcp")),
        "{ingress:?}"
    );
    assert!(
        ingress.iter().any(|b| b.contains("CidrIp=10.0.0.0%2F16"))
            && ingress.iter().any(|b| b.contains(&format!("Groups.1.GroupId={app}")))
    );
    let group = w.ec2_calls("CreateSecurityGroup");
    assert!(group.len() == 1 && group[0].contains("TagSpecification.1.ResourceType=security-group"), "{group:?}");

    // The Atlas side, in order, every body as the spec says.
    let log = w.sandbox.log().await;
    let service = position(&log, "POST", "/privateEndpoint/endpointService");
    let ready = log
        .iter()
        .position(|e| {
            e["method"] == "GET"
                && e["operation"].as_str().unwrap().ends_with("{endpointServiceId}")
                && e["response"]["status"] == "WAITING_FOR_USER"
        })
        .expect("a wait until the service is ready");
    let register = position(&log, "POST", "{endpointServiceId}/endpoint");
    let cluster = position(&log, "POST", "/{groupId}/clusters");
    assert!(
        service < ready && ready < register && register < cluster,
        "order: service {service}, ready {ready}, register {register}, cluster {cluster}"
    );
    let vpce = log[register]["request"]["id"].as_str().unwrap().to_string();
    assert!(w.ec2_calls("CreateVpcEndpoint").len() == 1 && vpce.starts_with("vpce-"));
    let violations = crate::openapi::violations(&log);
    assert!(violations.is_empty(), "{}", violations.join("\n"));

    w.run(&["plan", "-e", &spec, "--detailed-exitcode"]).await.expect_code(0);
    let env_file = w.run(&["output", "-e", &spec]).await;
    assert!(env_file.stdout.contains("MONGODB_ATLAS_URI=mongodb+srv://main-pl-0."), "{}", env_file.stdout);

    // Drift: Atlas rejects the connection, with AWS' words in its errorMessage.
    let group_id = w.sandbox.group_id("pl-project").await;
    let why = "Failed to accept interface endpoint: there is an idempotent operation going on";
    w.sandbox.control(&format!("private-endpoints/{group_id}/{vpce}/refuse"), json!({"status": "REJECTED", "error": why})).await;
    let drift = w.run(&["drift", "-e", &spec]).await;
    drift.expect_code(2);
    assert!(drift.stdout.contains("atlas.private_endpoints.US_EAST_1") && drift.stdout.contains("REJECTED"), "{}", drift.stdout);
    let plan = w.run(&["plan", "-e", &spec]).await;
    assert!(plan.stdout.contains("forces replacement") && plan.stdout.contains(why), "{}", plan.stdout);
    w.run(&["apply", "-e", &spec, "--auto-approve", "-q"]).await.expect_code(0);
    w.run(&["plan", "-e", &spec, "--detailed-exitcode"]).await.expect_code(0);
    assert_eq!(w.live_endpoints().await.len(), 1, "the rejected endpoint was replaced, not kept beside the new one");

    // Drift on the AWS side: a subnet taken off and a rule opened to the world, by hand.
    let live = w.live_endpoints().await[0].0.clone();
    ec2(&w.moto.url, &[("Action", "ModifyVpcEndpoint"), ("VpcEndpointId", &live), ("RemoveSubnetId.1", &subnets[1])]).await;
    let sg = all_of(
        &ec2(
            &w.moto.url,
            &[("Action", "DescribeSecurityGroups"), ("Filter.1.Name", "group-name"), ("Filter.1.Value.1", "poactl-pl-atlas-us-east-1")],
        )
        .await,
        "groupId",
    )
    .remove(0);
    ec2(
        &w.moto.url,
        &[
            ("Action", "AuthorizeSecurityGroupIngress"),
            ("GroupId", &sg),
            ("IpPermissions.1.IpProtocol", "tcp"),
            ("IpPermissions.1.FromPort", "27017"),
            ("IpPermissions.1.ToPort", "27017"),
            ("IpPermissions.1.IpRanges.1.CidrIp", "0.0.0.0/0"),
        ],
    )
    .await;
    // And a block outside the VPC (10.0.0.0/16) on the endpoint's own ports.
    ec2(
        &w.moto.url,
        &[
            ("Action", "AuthorizeSecurityGroupIngress"),
            ("GroupId", &sg),
            ("IpPermissions.1.IpProtocol", "tcp"),
            ("IpPermissions.1.FromPort", "1024"),
            ("IpPermissions.1.ToPort", "65535"),
            ("IpPermissions.1.IpRanges.1.CidrIp", "10.1.0.0/24"),
        ],
    )
    .await;
    let drift = w.run(&["drift", "-e", &spec]).await;
    drift.expect_code(2);
    assert!(drift.stdout.contains("subnets") && drift.stdout.contains("0.0.0.0/0 tcp 27017-27017"), "{}", drift.stdout);
    // Item 8: audit reads the same live group, and the VPC's blocks from EC2.
    let audit = w.run(&["audit", "-e", &spec, "--output", "json"]).await;
    audit.expect_code(0);
    let findings: Value = serde_json::from_str(&audit.stdout).unwrap();
    let finding = |rule: &str| {
        findings["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["rule"] == rule)
            .cloned()
            .unwrap_or_else(|| panic!("no {rule}: {findings}"))
    };
    assert_eq!(finding("private-endpoint-open")["address"], "atlas.private_endpoints.US_EAST_1");
    assert!(finding("private-endpoint-open")["detail"].as_str().unwrap().contains("0.0.0.0/0"), "{findings}");
    let wider = finding("private-endpoint-wider-than-vpc")["detail"].as_str().unwrap().to_string();
    assert!(wider.contains("10.1.0.0/24") && wider.contains("outside the VPC's 10.0.0.0/16"), "{wider}");
    w.run(&["apply", "-e", &spec, "--auto-approve", "-q"]).await.expect_code(0);
    w.run(&["plan", "-e", &spec, "--detailed-exitcode"]).await.expect_code(0);

    // Drift in a VPC-only environment: a public access-list entry added by hand.
    let entry = json!([{"cidrBlock": "203.0.113.0/24", "comment": "a laptop"}]);
    let (status, _) = w.sandbox.api("POST", &format!("/api/atlas/v2/groups/{group_id}/accessList"), "2023-01-01", Some(entry)).await;
    assert_eq!(status, 201);
    let drift = w.run(&["drift", "-e", &spec]).await;
    drift.expect_code(2);
    assert!(drift.stdout.contains("atlas.access_list.203.0.113.0/24"), "{}", drift.stdout);
    let plan = w.run(&["plan", "-e", &spec]).await;
    assert!(plan.stdout.contains("VPC-only") && plan.stdout.contains("- atlas.access_list.203.0.113.0/24"), "{}", plan.stdout);
    w.run(&["apply", "-e", &spec, "--auto-approve", "-q"]).await.expect_code(0);
    let (_, entries) = w.sandbox.api("GET", &format!("/api/atlas/v2/groups/{group_id}/accessList"), "2023-01-01", None).await;
    assert_eq!(entries["results"], json!([]), "{entries}");
    w.run(&["plan", "-e", &spec, "--detailed-exitcode"]).await.expect_code(0);

    // Destroy: registration, AWS endpoint, security group, service.
    w.sandbox.control("log/clear", json!({})).await;
    w.recorder.clear();
    w.run(&["destroy", "-e", &spec, "--auto-approve", "--allow-destroy", "-q"]).await.expect_code(0);
    assert!(w.live_endpoints().await.is_empty() && w.poactl_groups().await.is_empty());
    let log = w.sandbox.log().await;
    let unregister = position(&log, "DELETE", "{endpointServiceId}/endpoint/{endpointId}");
    let seen = w.recorder.all();
    let at =
        |action: &str| seen.iter().find(|s| s.action.as_deref() == Some(action)).map(|s| s.at).unwrap_or_else(|| panic!("no {action}"));
    assert!(at("DeleteVpcEndpoints") < at("DeleteSecurityGroup"));
    assert!(unregister < log.len());
    let (status, services) =
        w.sandbox.api("GET", &format!("/api/atlas/v2/groups/{group_id}/privateEndpoint/AWS/endpointService"), "2023-01-01", None).await;
    assert!(status == 404 || services.as_array().is_some_and(|a| a.is_empty()), "{status} {services}");
}

/// Item 2: a project that already has the region's service (another environment's, or made by
/// hand) gets poactl's endpoint in it: no second POST, so never Atlas' 409.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn privatelink_adopts_the_regions_existing_service() {
    let w = TwoClouds::start().await;
    let (vpc, subnets) = app_vpc(&w.moto.url).await;
    let (_dir, spec) = spec_file("ad", &spec_text("ad", &vpc, &subnets, "10.0.0.0/16"));
    // The project first, without the network; then the service, by hand.
    let bare = "environment: ad\natlas:\n  org_id: \"0123456789abcdef01234567\"\n  project: ad-project\n";
    let (_bare_dir, bare_spec) = spec_file("ad", bare);
    w.run(&["apply", "-e", &bare_spec, "--auto-approve", "-q"]).await.expect_code(0);
    let group = w.sandbox.group_id("ad-project").await;
    let path = format!("/api/atlas/v2/groups/{group}/privateEndpoint/endpointService");
    let body = json!({"providerName": "AWS", "region": "US_EAST_1"});
    let (status, made) = w.sandbox.api("POST", &path, "2023-01-01", Some(body.clone())).await;
    assert_eq!(status, 200, "{made}");
    let (second, refused) = w.sandbox.api("POST", &path, "2023-01-01", Some(body)).await;
    assert_eq!((second, refused["errorCode"].as_str()), (409, Some("PRIVATE_ENDPOINT_SERVICE_ALREADY_EXISTS_FOR_REGION")));
    w.sandbox.control("log/clear", json!({})).await;

    w.run(&["apply", "-e", &spec, "--auto-approve", "-q"]).await.expect_code(0);
    let log = w.sandbox.log().await;
    assert!(!log.iter().any(|e| e["method"] == "POST" && e["operation"].as_str().unwrap().ends_with("/privateEndpoint/endpointService")));
    let register = position(&log, "POST", "{endpointServiceId}/endpoint");
    assert!(log[register]["path"].as_str().unwrap().contains(made["id"].as_str().unwrap()), "registered with the existing service");
    w.run(&["plan", "-e", &spec, "--detailed-exitcode"]).await.expect_code(0);
}

/// Item 4: a destroy killed after it removed the registration is finished by the next one:
/// the AWS endpoint, the security group and the service go, nothing is left behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn privatelink_a_destroy_killed_halfway_is_finished_by_the_next() {
    let w = TwoClouds::start().await;
    let (vpc, subnets) = app_vpc(&w.moto.url).await;
    let (_dir, spec) = spec_file("kh", &spec_text("kh", &vpc, &subnets, "10.0.0.0/16"));
    w.run(&["apply", "-e", &spec, "--auto-approve", "-q"]).await.expect_code(0);
    w.sandbox.control("log/clear", json!({})).await;

    let mut child = Poactl::new(&["destroy", "-e", &spec, "--auto-approve", "--allow-destroy", "-q"]).envs_owned(&w.env).spawn();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let log = w.sandbox.log().await;
        if log.iter().any(|e| e["method"] == "DELETE" && e["operation"].as_str().unwrap().ends_with("{endpointId}")) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "destroy never removed the registration");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(w.live_endpoints().await.len(), 1, "killed before the AWS endpoint went");

    w.run(&["destroy", "-e", &spec, "--auto-approve", "--allow-destroy", "-q"]).await.expect_code(0);
    assert!(w.live_endpoints().await.is_empty() && w.poactl_groups().await.is_empty());
}
