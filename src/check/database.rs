//! Each SCRAM user logs in, uses each of its roles, and is refused outside them.

use std::time::Instant;

use mongodb::bson::doc;

use super::{Outcome, Status, outcome};
use crate::deadline;
use crate::engine::Observation;
use crate::providers;
use crate::spec::LoadedSpec;

/// Roles that read every database: a "forbidden" probe cannot exist for them.
const EVERY_DATABASE: &[&str] = &["readAnyDatabase", "readWriteAnyDatabase", "atlasAdmin", "root"];

/// Each SCRAM user of the spec logs in through `database.uri`, pings, tries what each of its
/// roles allows (a `find` of one document, or `listCollections` for dbAdmin) and a read of a
/// database none of its roles names, which the server must refuse (Unauthorized, 13).
pub(super) async fn database(loaded: &LoadedSpec, obs: &Observation) -> Vec<Outcome> {
    const G: &str = "database";
    let mut out = Vec::new();
    let Some(atlas) = &loaded.spec.atlas else { return out };
    if loaded.spec.database.as_ref().and_then(|d| d.uri.as_ref()).is_none() {
        out.push(outcome(G, "connect", Status::Skip, Instant::now(), "the spec has no database.uri: set it to check the logins"));
        return out;
    }
    for user in &atlas.database_users {
        let t = Instant::now();
        let name = format!("log in as {}", user.key());
        if user.auth.is_some() {
            out.push(outcome(G, name, Status::Skip, t, "an X.509, IAM, LDAP or OIDC user: poactl logs in with passwords only here"));
            continue;
        }
        let uri = match providers::mongo_index::connection_string_as(loaded, &obs.outputs, user) {
            Ok(Some(u)) => u,
            Ok(None) => {
                out.push(outcome(G, name, Status::Skip, t, "database.uri carries its own credentials"));
                continue;
            }
            Err(e) => {
                out.push(outcome(G, name, Status::Fail, t, e.to_string()));
                continue;
            }
        };
        let (client, client_options) = match providers::mongo_index::parse_waiting_for_dns(&uri).await {
            Ok((mut opts, _)) => {
                providers::mongo_index::bound_client_options(&mut opts);
                opts.app_name = Some("poactl-check".into());
                match mongodb::Client::with_options(opts.clone()) {
                    Ok(c) => (c, opts),
                    Err(e) => {
                        out.push(outcome(G, name, Status::Fail, t, e.to_string()));
                        continue;
                    }
                }
            }
            Err(e) => {
                out.push(outcome(G, name, Status::Fail, t, with_way_out(e.to_string(), loaded)));
                continue;
            }
        };
        // Every request is a read, bounded and asked again within the call's deadline
        // (`deadline`): a cluster that never answers fails its checks, it does not hang them.
        let endpoint = providers::mongo_index::endpoint_of(&client_options);
        let req = |operation: &'static str| deadline::Request { service: "MongoDB", endpoint: &endpoint, operation };
        let admin = client.database("admin");
        let pinged = match deadline::read(req("ping"), || admin.run_command(doc! {"ping": 1})).await {
            Ok(answer) => answer,
            Err(u) => {
                out.push(outcome(G, name, Status::Fail, t, with_way_out(u.to_string(), loaded)));
                continue;
            }
        };
        if let Err(e) = pinged {
            let why = match e.kind.as_ref() {
                mongodb::error::ErrorKind::Authentication { .. } => {
                    "the server refused the login (AuthenticationFailed, 18): check the password in the environment and that the user has reached the cluster".to_string()
                }
                _ => match providers::mongo_index::outside_the_vpc(loaded) {
                    Some(way_out) => format!("cannot reach the database ({e}): {way_out}"),
                    None => format!("cannot reach the database ({e}): is this machine's IP in atlas.access_list?"),
                },
            };
            out.push(outcome(G, name, Status::Fail, t, why));
            continue;
        }
        out.push(outcome(G, name, Status::Pass, t, ""));
        for role in &user.roles {
            let t = Instant::now();
            let name = format!("{} may use its {} role on {}", user.key(), role.role, role.database);
            let db = client.database(&role.database);
            let probe = match role.role.as_str() {
                "read" | "readWrite" | "dbOwner" => {
                    doc! {"find": role.collection.as_deref().unwrap_or("poactl_check"), "filter": {}, "limit": 1, "batchSize": 1, "singleBatch": true}
                }
                "dbAdmin" => doc! {"listCollections": 1, "nameOnly": true},
                _ => {
                    out.push(outcome(G, name, Status::Skip, t, "no probe for this role"));
                    continue;
                }
            };
            match deadline::read(req("a probe of the role"), || db.run_command(probe.clone())).await {
                Ok(Ok(_)) => out.push(outcome(G, name, Status::Pass, t, "")),
                Ok(Err(e)) => out.push(outcome(G, name, Status::Fail, t, format!("refused: {e}"))),
                Err(u) => out.push(outcome(G, name, Status::Fail, t, u.to_string())),
            }
        }
        let t = Instant::now();
        let name = format!("{} is refused outside its roles", user.key());
        if user.roles.iter().any(|r| EVERY_DATABASE.contains(&r.role.as_str())) {
            out.push(outcome(G, name, Status::Skip, t, "it has a role on every database (see `poactl audit`)"));
            continue;
        }
        let outside = client.database("poactl_check_outside_roles");
        let probe = || outside.run_command(doc! {"find": "probe", "filter": {}, "limit": 1, "singleBatch": true});
        let answer = match deadline::read(req("find outside its roles"), probe).await {
            Ok(a) => a,
            Err(u) => {
                out.push(outcome(G, name, Status::Fail, t, u.to_string()));
                continue;
            }
        };
        match answer {
            Err(e) if providers::mongo_index::error_code(&e) == Some(13) => {
                out.push(outcome(G, name, Status::Pass, t, "Unauthorized (13), as its roles say"))
            }
            Ok(_) => out.push(outcome(
                G,
                name,
                Status::Fail,
                t,
                "it read a database none of its roles in the spec names: the user has more rights on the cluster than the spec gives it",
            )),
            Err(e) => out.push(outcome(G, name, Status::Fail, t, format!("expected Unauthorized (13), got: {e}"))),
        }
    }
    out
}

/// A connection failure with, for a VPC-only environment, the ways in.
fn with_way_out(why: String, loaded: &LoadedSpec) -> String {
    match providers::mongo_index::outside_the_vpc(loaded) {
        Some(way_out) => format!("{why}; {way_out}"),
        None => why,
    }
}
