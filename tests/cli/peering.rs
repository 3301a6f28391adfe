//! VPC peering through the CLI (issue 30, item 5): the sandbox plays Atlas' side (containers,
//! peers and their states) and, as Atlas' own AWS account in moto, makes its VPC and the
//! peering request to the app's VPC; poactl accepts it in the app's account, routes Atlas'
//! block, and lets the VPC's block in through the access list. moto accepts at once, so the
//! tests assert on the requests and on what moto holds afterwards.

use serde_json::{Value, json};

use crate::support::{TwoClouds, all_of, ec2, spec_file};

const ORG: &str = "0123456789abcdef01234567";
/// moto's default account: the app's.
const APP_ACCOUNT: &str = "123456789012";

fn spec_text(project: &str, atlas_cidr: &str, vpc: &str, rtb: &str) -> String {
    spec_with(project, atlas_cidr, vpc, rtb, "")
}

fn spec_with(project: &str, atlas_cidr: &str, vpc: &str, rtb: &str, access_list: &str) -> String {
    format!(
        "environment: pr\naws: {{ region: us-east-1 }}\natlas:\n  org_id: \"{ORG}\"\n  project: {project}\n  clusters:\n    - {{ name: main, tier: M10, provider: AWS, region: US_EAST_1 }}\n{access_list}  network:\n    public_access: false\n    peering:\n      - {{ region: US_EAST_1, atlas_cidr: {atlas_cidr}, vpc: {vpc}, vpc_cidr: 10.0.0.0/16, route_tables: [{rtb}] }}\n"
    )
}

/// Both clouds, with the sandbox told where moto is (it plays Atlas' account there).
async fn world() -> TwoClouds {
    let w = TwoClouds::start().await;
    w.sandbox.control("config", json!({"aws_endpoint": w.moto.url})).await;
    w
}

impl TwoClouds {
    /// The app's VPC and one route table in it.
    async fn app_vpc(&self) -> (String, String) {
        let vpc = all_of(&ec2(&self.moto.url, &[("Action", "CreateVpc"), ("CidrBlock", "10.0.0.0/16")]).await, "vpcId").remove(0);
        let rtb = all_of(&ec2(&self.moto.url, &[("Action", "CreateRouteTable"), ("VpcId", &vpc)]).await, "routeTableId").remove(0);
        (vpc, rtb)
    }

    /// The route table's routes to `destination`, as `pcx` ids.
    async fn routes_to(&self, rtb: &str, destination: &str) -> Vec<String> {
        let xml = ec2(&self.moto.url, &[("Action", "DescribeRouteTables"), ("RouteTableId.1", rtb)]).await;
        xml.split("<item>")
            .filter(|i| i.contains(&format!("<destinationCidrBlock>{destination}</destinationCidrBlock>")))
            .flat_map(|i| all_of(i, "vpcPeeringConnectionId"))
            .collect()
    }

    async fn access_list(&self, group: &str) -> Vec<Value> {
        let (_, v) = self.sandbox.api("GET", &format!("/api/atlas/v2/groups/{group}/accessList"), "2023-01-01", None).await;
        v["results"].as_array().cloned().unwrap_or_default()
    }

    async fn peers(&self, group: &str) -> Vec<Value> {
        let (_, v) = self.sandbox.api("GET", &format!("/api/atlas/v2/groups/{group}/peers?providerName=AWS"), "2023-01-01", None).await;
        v["results"].as_array().cloned().unwrap_or_default()
    }
}

fn position(log: &[Value], method: &str, operation: &str) -> usize {
    log.iter().position(|e| e["method"] == method && e["operation"] == operation).unwrap_or_else(|| panic!("no {method} {operation}"))
}

/// One apply runs the chain in order (the container before the cluster, the peer with the
/// VPC's owner and AWS' region form, the acceptance in the app's account, the route, the
/// access-list entry); the plan after it is clean; a route removed by hand is drift that
/// apply puts back; destroy undoes it all in reverse, leaving the container to the project.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peering_one_apply_runs_the_chain_drift_is_mended_and_destroy_undoes_it() {
    let w = world().await;
    let (vpc, rtb) = w.app_vpc().await;
    let app =
        ec2(&w.moto.url, &[("Action", "CreateSecurityGroup"), ("GroupName", "app"), ("GroupDescription", "app"), ("VpcId", &vpc)]).await;
    let app = all_of(&app, "groupId").remove(0);
    let atlas_cidr = "192.168.240.0/21";
    // A security group is a private way in, allowed VPC-only once the peering exists.
    let sg_entry = format!("  access_list:\n    - {{ security_group: {app}, comment: app servers }}\n");
    let (_dir, spec) = spec_file("pr", &spec_with("pr-project", atlas_cidr, &vpc, &rtb, &sg_entry));
    let applied = w.run(&["apply", "-e", &spec, "--auto-approve", "-q"]).await;
    applied.expect_code(0);
    let group = w.sandbox.group_id("pr-project").await;

    // Atlas' side, in order, as the spec says.
    let log = w.sandbox.log().await;
    let container = position(&log, "POST", "/api/atlas/v2/groups/{groupId}/containers");
    let cluster = position(&log, "POST", "/api/atlas/v2/groups/{groupId}/clusters");
    assert!(container < cluster, "the container comes before the first dedicated cluster, which would lock the default block");
    assert_eq!(log[container]["request"]["atlasCidrBlock"], atlas_cidr);
    let peer = &log[position(&log, "POST", "/api/atlas/v2/groups/{groupId}/peers")]["request"];
    assert_eq!(peer["awsAccountId"], APP_ACCOUNT, "the VPC's owner, read from DescribeVpcs: {peer}");
    assert_eq!(peer["accepterRegionName"], "us-east-1", "AWS' form: {peer}");
    assert_eq!(peer["vpcId"], vpc.as_str());
    assert_eq!(peer["routeTableCidrBlock"], "10.0.0.0/16");
    let violations = crate::openapi::violations(&log);
    assert!(violations.is_empty(), "{}", violations.join("\n"));

    // The AWS side: accepted, tagged, routed.
    let accepted = w.ec2_calls("AcceptVpcPeeringConnection");
    assert_eq!(accepted.len(), 1, "{accepted:?}");
    let peers = w.peers(&group).await;
    assert_eq!(peers.len(), 1, "{peers:?}");
    let pcx = peers[0]["connectionId"].as_str().unwrap().to_string();
    assert!(pcx.starts_with("pcx-") && accepted[0].contains(&pcx), "{accepted:?}");
    let described = ec2(&w.moto.url, &[("Action", "DescribeVpcPeeringConnections"), ("VpcPeeringConnectionId.1", &pcx)]).await;
    assert!(described.contains("<code>active</code>"), "{described}");
    // The accepter's tags, as sent: moto reads a connection's tags from the requester's
    // account only (moto/ec2/models/core.py `get_tags`: `self.ec2_backend`, the account that
    // made it), where real AWS keeps each side's own.
    let tagged = w.ec2_calls("CreateTags");
    assert!(tagged.iter().any(|b| b.contains(&pcx) && b.contains("atlas.peering.US_EAST_1")), "{tagged:?}");
    assert_eq!(w.routes_to(&rtb, atlas_cidr).await, vec![pcx.clone()]);
    let entries = w.access_list(&group).await;
    let vpc_entry = entries.iter().find(|e| e["cidrBlock"] == "10.0.0.0/16");
    assert!(vpc_entry.is_some_and(|e| e["comment"].as_str().is_some_and(|c| c.starts_with("poactl peering"))), "{entries:?}");
    assert!(entries.len() == 2 && entries.iter().any(|e| e["awsSecurityGroup"] == app.as_str()), "{entries:?}");
    let peer_made = position(&log, "POST", "/api/atlas/v2/groups/{groupId}/peers");
    let sg_sent = log
        .iter()
        .position(|e| e["method"] == "POST" && e["request"].to_string().contains(&app))
        .expect("the security group entry was sent");
    assert!(peer_made < sg_sent, "the security group goes in after the peering");
    // A VPC-only environment keeps the peering's own entry: it is not a public way in.
    w.run(&["plan", "-e", &spec, "--detailed-exitcode"]).await.expect_code(0);

    // A route removed by hand is drift; apply puts it back.
    ec2(&w.moto.url, &[("Action", "DeleteRoute"), ("RouteTableId", &rtb), ("DestinationCidrBlock", atlas_cidr)]).await;
    let drift = w.run(&["plan", "-e", &spec, "--detailed-exitcode"]).await;
    drift.expect_code(2);
    assert!(drift.stdout.contains("atlas.peering.US_EAST_1") && drift.stdout.contains("route_tables"), "{}", drift.stdout);
    w.run(&["apply", "-e", &spec, "--auto-approve", "-q"]).await.expect_code(0);
    assert_eq!(w.routes_to(&rtb, atlas_cidr).await, vec![pcx.clone()]);
    w.run(&["plan", "-e", &spec, "--detailed-exitcode"]).await.expect_code(0);

    // Destroy: the route, the entry, the peer; moto's connection is deleted by Atlas' side.
    w.run(&["destroy", "-e", &spec, "--auto-approve", "--allow-destroy", "-q"]).await.expect_code(0);
    assert!(w.routes_to(&rtb, atlas_cidr).await.is_empty(), "the route is gone");
    let log = w.sandbox.log().await;
    let unrouted = w.ec2_calls("DeleteRoute");
    assert_eq!(unrouted.len(), 1, "{unrouted:?}");
    assert!(
        log.iter()
            .any(|e| e["method"] == "DELETE" && e["operation"] == "/api/atlas/v2/groups/{groupId}/peers/{peerId}" && e["status"] == 202)
    );
    assert!(w.peers(&group).await.is_empty(), "waited through TERMINATING");
    assert!(w.access_list(&group).await.is_empty(), "the VPC's entry and the security group are gone");
}

/// A project whose first dedicated cluster already made the region's container with Atlas'
/// default block cannot take another: the plan says which block it has and what to write,
/// and nothing is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peering_a_container_locked_with_another_block_is_refused_with_the_block_to_write() {
    let w = world().await;
    let (vpc, rtb) = w.app_vpc().await;
    let first = format!(
        "environment: pr\natlas:\n  org_id: \"{ORG}\"\n  project: locked\n  clusters:\n    - {{ name: main, tier: M10, provider: AWS, region: US_EAST_1 }}\n"
    );
    let (_d1, plain) = spec_file("pr", &first);
    w.run(&["apply", "-e", &plain, "--auto-approve", "-q"]).await.expect_code(0);
    let (_d2, spec) = spec_file("pr", &spec_text("locked", "192.168.240.0/21", &vpc, &rtb));
    let plan = w.run(&["plan", "-e", &spec]).await;
    let text = plan.all();
    assert!(text.contains("has the Atlas block 192.168.248.0/21") && text.contains("set `atlas_cidr: 192.168.248.0/21`"), "{text}");
    let applied = w.run(&["apply", "-e", &spec, "--auto-approve", "-q"]).await;
    assert_ne!(applied.code, 0, "{}", applied.all());
    let log = w.sandbox.log().await;
    assert!(
        !log.iter().any(|e| e["method"] == "POST" && e["operation"] == "/api/atlas/v2/groups/{groupId}/peers"),
        "no peer was asked for"
    );
    // With the block it has, the same spec goes through.
    let (_d3, fixed) = spec_file("pr", &spec_text("locked", "192.168.248.0/21", &vpc, &rtb));
    w.run(&["apply", "-e", &fixed, "--auto-approve", "-q"]).await.expect_code(0);
    assert_eq!(w.routes_to(&rtb, "192.168.248.0/21").await.len(), 1);
}
