//! MongoDB collection indexes, reconciled through the driver without rebuilding what can be
//! modified: TTL (added too, from 5.1), `hidden` and `unique` change in place with `collMod`; any other option
//! change is a replacement that needs `--allow-rebuild`. Unmanaged indexes are hidden first
//! and dropped only on a later `--prune` (or at once with `--drop-immediately`). `_id_` is
//! never touched.

mod connect;
pub mod normalize;

pub use self::connect::{
    Login, bound_client_options, connection_string, connection_string_as, endpoint_of, outside_the_vpc, parse_waiting_for_dns, with_login,
};

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use mongodb::bson::{self, Bson, Document, doc};
use serde_json::{Value, json};
use tokio::sync::{Mutex, OnceCell};

use super::{Connections, Ctx, Desired, Lane, Observed, Outputs, Ownership, Provider, ProviderError, Registry, Result};
use crate::deadline;
use crate::plan::FieldChange;
use crate::resource::{Address, Kind, Reference};
use crate::spec::LoadedSpec;
use crate::spec::model::IndexSpec;
use crate::spec::validate::index_name;

/// One connection pool to the cluster; index builds are heavy on the server.
const LANE: Lane = Lane { service: "mongodb", limit: 8 };

/// A `listIndexes` entry and its `$indexStats` accesses (when the server reports them).
type LiveIndex = (Value, Option<Value>);

pub struct IndexProvider {
    cli_uri: Option<String>,
    client: OnceCell<mongodb::Client>,
    /// The options the client was made with, for direct connections to each member.
    options: std::sync::OnceLock<mongodb::options::ClientOptions>,
    /// The other data-bearing members of the replica set (direct connections), once per run:
    /// each keeps its own index usage counters.
    members: OnceCell<Vec<(String, mongodb::Client)>>,
    /// Whether the server answered a first `ping`: one unreachable server fails every index
    /// at once instead of each after its own server-selection timeout.
    reachable: OnceCell<Result<()>>,
    /// `listIndexes` (and `$indexStats`) per collection, read once per run.
    lists: Mutex<HashMap<String, Arc<OnceCell<Vec<LiveIndex>>>>>,
    /// Set when a read was put off or failed: the unmanaged indexes are not listed then (a
    /// later run lists them; --prune never acts on what it could not read).
    unread: std::sync::atomic::AtomicBool,
    /// The server's (major, minor) from `buildInfo`, read once with the first list: what can
    /// change in place depends on it.
    version: OnceCell<Option<(i32, i32)>>,
    /// The builds of one collection gathered into one `createIndexes` (one collection scan).
    batches: std::sync::Mutex<HashMap<String, Arc<BuildBatch>>>,
}

/// Index builds of one collection that go out together.
struct BuildBatch {
    specs: std::sync::Mutex<Vec<(Value, Address)>>,
    done: tokio::sync::watch::Sender<Option<std::result::Result<(), String>>>,
}

/// How long the first build of a collection waits for the others the apply starts with it:
/// they depend on the same resources, so they become ready together.
const GATHER: Duration = Duration::from_millis(150);

pub fn register(reg: &mut Registry, conn: &Connections) {
    reg.insert(Arc::new(IndexProvider {
        cli_uri: conn.mongodb_uri.clone(),
        client: OnceCell::new(),
        options: Default::default(),
        members: OnceCell::new(),
        reachable: OnceCell::new(),
        lists: Default::default(),
        unread: Default::default(),
        version: OnceCell::new(),
        batches: Default::default(),
    }));
}

/// The resource a `database.uri` refers to (the cluster), if any.
fn uri_reference(loaded: &LoadedSpec) -> Option<Address> {
    uri_references(loaded).into_iter().next()
}

/// Every resource `database.uri` refers to: the index reads and writes resolve it from their
/// outputs, so they depend on each.
fn uri_references(loaded: &LoadedSpec) -> Vec<Address> {
    let Some(uri) = loaded.spec.database.as_ref().and_then(|d| d.uri.as_ref()) else { return Vec::new() };
    let mut refs = Vec::new();
    super::collect_refs(&Value::String(uri.clone()), &mut refs);
    refs.into_iter().map(|r: Reference| r.target).collect()
}

pub fn desired(loaded: &LoadedSpec, collection: &str, ix: &IndexSpec, address: Address) -> Desired {
    let parent = uri_reference(loaded);
    let mut d = Desired::new(address, normalize::desired_attrs(collection, &index_name(ix), ix));
    // The key pattern in spec order (serde_json keeps insertion order).
    d.write_only = json!({"keys": ix.keys.0.iter().map(|(f, k)| json!([f, normalize::key_value(*k)])).collect::<Vec<_>>()});
    if let Some(p) = &parent {
        d = d.with_parent(p.clone());
    }
    for r in uri_references(loaded).into_iter().skip(1) {
        d = d.depends(r);
    }
    // The reads and writes connect as `database.user`: after the user (created or changed in the
    // same apply, which waits until the change reached the clusters).
    let user = loaded
        .spec
        .database
        .as_ref()
        .and_then(|db| db.user.as_ref())
        .and_then(|u| loaded.spec.atlas.as_ref()?.database_users.iter().find(|x| &x.username == u));
    if let Some(u) = user {
        d = d.depends(Address::new(Kind::AtlasUser, u.key()));
    }
    // The runner reaches the cluster through one of the access-list entries.
    if parent.is_some() {
        for e in loaded.spec.atlas.iter().flat_map(|a| a.access_list.iter()) {
            d = d.depends(Address::new(Kind::AtlasAccessList, e.key()));
        }
    }
    d
}

fn mongo_err(what: &str, e: mongodb::error::Error) -> ProviderError {
    ProviderError::Api(format!("{what}: {e}"))
}

/// A command error as its name, code and message (the driver's Display adds its internals).
fn brief(e: &mongodb::error::Error) -> String {
    match e.kind.as_ref() {
        mongodb::error::ErrorKind::Command(c) => format!("{}, {}: {}", c.code_name, c.code, c.message),
        _ => e.to_string(),
    }
}

/// The server's error code, for command errors.
pub fn error_code(e: &mongodb::error::Error) -> Option<i32> {
    match e.kind.as_ref() {
        mongodb::error::ErrorKind::Command(c) => Some(c.code),
        _ => None,
    }
}

/// Where a listed index keeps its exact `listIndexes` document (canonical extended JSON).
const RAW: &str = "$poactl.raw";
/// Where a listed index keeps the currentOp entry of its unfinished build.
const BUILDING: &str = "$poactl.building";

/// Days an unmanaged index stays hidden before `--prune` drops it.
const HIDDEN_DAYS: i64 = 7;
/// The collection (in `database.name`) that records when poactl hid an index.
pub const HIDE_RECORDS: &str = "poactl_hidden_indexes";

impl IndexProvider {
    /// When poactl hid each index (`coll.name` -> time), read once per run; empty when the
    /// collection is missing or cannot be read.
    async fn hide_records(&self, ctx: &Ctx<'_>) -> HashMap<String, bson::DateTime> {
        let Ok(client) = self.client(ctx).await else { return HashMap::new() };
        let coll = client.database(&Self::db_name(ctx)).collection::<Document>(HIDE_RECORDS);
        let endpoint = self.endpoint();
        let req = deadline::Request { service: "MongoDB", endpoint: &endpoint, operation: "find poactl_hidden_indexes" };
        let read = || async {
            use futures::TryStreamExt;
            coll.find(doc! {}).await?.try_collect::<Vec<Document>>().await
        };
        let Ok(Ok(docs)) = deadline::read(req, read).await else { return HashMap::new() };
        let mut out = HashMap::new();
        for d in docs {
            if let (Ok(id), Ok(at)) = (d.get_str("_id"), d.get_datetime("hidden_at")) {
                out.insert(id.to_string(), *at);
            }
        }
        out
    }

    /// Connects on first use: `--mongodb-uri`, else `database.uri` (references resolved) with
    /// the credentials of `database.user`.
    async fn client(&self, ctx: &Ctx<'_>) -> Result<&mongodb::Client> {
        self.client
            .get_or_try_init(|| async {
                let uri = match &self.cli_uri {
                    Some(u) => u.clone(),
                    None => connection_string(ctx.loaded, ctx.outputs)?,
                };
                let (mut opts, dropped) = parse_waiting_for_dns(&uri).await?;
                for option in dropped {
                    ctx.progress.println(format!(
                        "warning: the MongoDB URI's option {option} is not one the Rust driver knows: connecting without it"
                    ));
                }
                bound_client_options(&mut opts);
                opts.app_name = Some("poactl".into());
                let _ = self.options.set(opts.clone());
                mongodb::Client::with_options(opts).map_err(|e| ProviderError::Config(format!("cannot set up the MongoDB client: {e}")))
            })
            .await
    }

    /// Direct connections to the replica set's other data-bearing members (`hosts` and
    /// `passives` of `hello`; arbiters hold no data), empty for a standalone.
    async fn members(&self, ctx: &Ctx<'_>) -> &Vec<(String, mongodb::Client)> {
        self.members
            .get_or_init(|| async {
                let Ok(client) = self.client(ctx).await else { return Vec::new() };
                let endpoint = self.endpoint();
                let req = deadline::Request { service: "MongoDB", endpoint: &endpoint, operation: "hello (the replica set's members)" };
                let admin = client.database("admin");
                let Ok(Ok(hello)) = deadline::read(req, || admin.run_command(doc! {"hello": 1})).await else {
                    return Vec::new();
                };
                let me = hello.get_str("me").unwrap_or("").to_string();
                let Some(base) = self.options.get() else { return Vec::new() };
                let mut out = Vec::new();
                for key in ["hosts", "passives"] {
                    for host in hello.get_array(key).into_iter().flatten().filter_map(|h| h.as_str()) {
                        if host == me {
                            continue;
                        }
                        let Ok(address) = mongodb::options::ServerAddress::parse(host) else { continue };
                        let mut opts = base.clone();
                        opts.hosts = vec![address];
                        opts.direct_connection = Some(true);
                        opts.repl_set_name = None;
                        opts.srv_service_name = None;
                        if let Ok(c) = mongodb::Client::with_options(opts) {
                            out.push((host.to_string(), c));
                        }
                    }
                }
                out
            })
            .await
    }

    /// Why connecting cannot work yet, from the state of what the connection goes through.
    fn deferral(needs: &[(&Desired, Option<&Observed>)], ctx: &Ctx<'_>) -> Option<super::Deferral> {
        let later = |reason: String| Some(super::Deferral { reason, during_apply: true });
        for (need, live) in needs {
            let addr = &need.address;
            match (addr.kind, live) {
                (Kind::AtlasCluster, Some(o)) if o.attrs.get("paused") == Some(&json!(true)) => {
                    if need.attrs.get("paused") == Some(&json!(true)) {
                        return Some(super::Deferral {
                            reason: format!("{addr} is paused, and stays paused in the spec; its indexes are read when it runs"),
                            during_apply: false,
                        });
                    }
                    return later(format!("{addr} is paused; this apply resumes it"));
                }
                (Kind::AtlasCluster, Some(o)) => match o.outputs.get("state").map(String::as_str) {
                    Some("IDLE") | None => {}
                    Some(state) => return later(format!("{addr} is {state}")),
                },
                (Kind::AtlasUser | Kind::AtlasAccessList, None) => return later(format!("{addr} is created by this apply")),
                (Kind::AtlasUser, Some(_)) if ctx.options.rotate_passwords => {
                    return later(format!("the password of {addr} is rotated by this apply"));
                }
                _ => {}
            }
        }
        None
    }

    fn db_name(ctx: &Ctx<'_>) -> String {
        ctx.loaded.spec.database.as_ref().map(|d| d.name.clone()).unwrap_or_default()
    }

    /// Where the client connects, for messages.
    fn endpoint(&self) -> String {
        self.options.get().map(endpoint_of).unwrap_or_else(|| "the cluster".into())
    }

    /// Whether the server answers at all, asked once per run before the first listing. It is
    /// not one of the listing's attempts: the driver bounds the handshake by server selection
    /// (one attempt, `bound_client_options`) and names hello when that passes, so the ping gets
    /// that attempt plus one of its own. Inside an attempt of the same length the two
    /// deadlines raced, and a held handshake was reported as an unanswered listIndexes.
    async fn reach(&self, ctx: &Ctx<'_>) -> Result<()> {
        let reached = self.reach_once(ctx).await;
        // Outside the VPC a private endpoint never answers: say so, and name the ways out.
        match (reached, outside_the_vpc(ctx.loaded).filter(|_| self.cli_uri.is_none())) {
            (Err(e), Some(way_out)) if !crate::interrupt::requested() => Err(ProviderError::Api(format!("{e}; {way_out}"))),
            (reached, _) => reached,
        }
    }

    async fn reach_once(&self, ctx: &Ctx<'_>) -> Result<()> {
        let client = self.client(ctx).await?;
        let db = client.database(&Self::db_name(ctx));
        let endpoint = self.endpoint();
        let reachable = self
            .reachable
            .get_or_init(|| async {
                let req = deadline::Request { service: "MongoDB", endpoint: &endpoint, operation: "ping" };
                let answer = deadline::step_for(req, deadline::current().attempt * 2, db.run_command(doc! {"ping": 1})).await;
                let answer = match answer {
                    Ok(a) => a,
                    Err(unanswered) => return Err(ProviderError::Unanswered(unanswered)),
                };
                answer.map(|_| ()).map_err(|e| ProviderError::Api(match e.kind.as_ref() {
                    // No server answered the handshake (hello) within server selection's
                    // deadline, which is one attempt's (`bound_client_options`).
                    mongodb::error::ErrorKind::ServerSelection { .. } => format!(
                        "TIMED OUT: MongoDB at {endpoint} did not answer hello (the handshake) within {}: {}",
                        deadline::seconds(self.options.get().and_then(|o| o.server_selection_timeout).unwrap_or_default()),
                        crate::secrets::redact(&e.to_string())
                    ),
                    // The server says only "Authentication failed." (18), whatever was wrong.
                    mongodb::error::ErrorKind::Authentication { .. } => format!(
                        "MongoDB refused the login (AuthenticationFailed, 18): check database.user's name, password and auth database; a user or password made a moment ago can take a minute to reach the cluster ({})",
                        crate::secrets::redact(&e.to_string())
                    ),
                    _ => format!("cannot reach MongoDB (for the indexes): {}", crate::secrets::redact(&e.to_string())),
                }))
            })
            .await;
        reachable.as_ref().map(|_| ()).map_err(|e| match e {
            ProviderError::Unanswered(u) => ProviderError::Unanswered(u.clone()),
            other => ProviderError::Api(other.to_string()),
        })
    }

    /// The collection's indexes (as extended JSON) with their `$indexStats`, once per run.
    /// The reads are idempotent: unanswered, they are asked again within the call's deadline.
    async fn indexes(&self, ctx: &Ctx<'_>, coll: &str) -> Result<Vec<LiveIndex>> {
        self.reach(ctx).await?;
        let operation = format!("listIndexes {coll} (with $indexStats and currentOp)");
        let endpoint = self.endpoint();
        let req = deadline::Request { service: "MongoDB", endpoint: &endpoint, operation: &operation };
        deadline::read(req, || self.read_indexes(ctx, coll)).await?
    }

    async fn read_indexes(&self, ctx: &Ctx<'_>, coll: &str) -> Result<Vec<LiveIndex>> {
        let cell = self.lists.lock().await.entry(coll.to_string()).or_default().clone();
        cell.get_or_try_init(|| async {
            let client = self.client(ctx).await?;
            let db = client.database(&Self::db_name(ctx));
            self.version
                .get_or_init(|| async {
                    let info = db.run_command(doc! {"buildInfo": 1}).await.ok()?;
                    let v = info.get_array("versionArray").ok()?;
                    let part = |i: usize| v.get(i).and_then(|x| x.as_i32().or_else(|| x.as_i64().map(|n| n as i32)));
                    Some((part(0)?, part(1)?))
                })
                .await;
            let mut docs = Vec::new();
            match db.run_cursor_command(doc! {"listIndexes": coll}).await {
                Ok(mut cursor) => {
                    use futures::StreamExt;
                    while let Some(d) = cursor.next().await {
                        let d = d.map_err(|e| mongo_err(&format!("listIndexes {coll}"), e))?;
                        let mut v = Bson::Document(d.clone()).into_relaxed_extjson();
                        // The exact document (types kept), to build the index again if a
                        // rebuild must put it back.
                        v[RAW] = Bson::Document(d).into_canonical_extjson();
                        docs.push(v);
                    }
                }
                // NamespaceNotFound: the collection does not exist yet, so neither do its indexes.
                Err(e) if error_code(&e) == Some(26) => return Ok(Vec::new()),
                Err(e) => return Err(mongo_err(&format!("listIndexes {coll}"), e)),
            }
            // Usage counters, where the server has them (informational). `$indexStats` needs
            // the `indexStats` action (docs "$indexStats": "at least the clusterMonitor
            // role"; dbOwner is not enough, SERVER-26734); without it the first index of the
            // collection carries a note saying what to grant.
            let mut stats: HashMap<String, Value> = HashMap::new();
            let mut denied = false;
            match db.run_cursor_command(doc! {"aggregate": coll, "pipeline": [{"$indexStats": {}}], "cursor": {}}).await {
                Ok(mut cursor) => {
                    use futures::StreamExt;
                    while let Some(Ok(d)) = cursor.next().await {
                        let v = Bson::Document(d).into_relaxed_extjson();
                        if let Some(name) = v.get("name").and_then(|n| n.as_str()) {
                            stats.insert(name.to_string(), v.get("accesses").cloned().unwrap_or(Value::Null));
                        }
                    }
                }
                // Unauthorized (13): no right to read usage.
                Err(e) if error_code(&e) == Some(13) => denied = true,
                Err(_) => {}
            }
            // Each member counts only the operations it served (docs "$indexStats": "run
            // $indexStats on each node in the cluster"): the counts of the other data-bearing
            // members are added, so an index used on a secondary only is not "unused".
            let members = self.members(ctx).await;
            let mut read_from = 1;
            for (_, member) in members {
                let Ok(mut cursor) = member
                    .database(&Self::db_name(ctx))
                    .run_cursor_command(doc! {"aggregate": coll, "pipeline": [{"$indexStats": {}}], "cursor": {}})
                    .await
                else {
                    continue;
                };
                read_from += 1;
                use futures::StreamExt;
                while let Some(Ok(d)) = cursor.next().await {
                    let v = Bson::Document(d).into_relaxed_extjson();
                    let (Some(name), Some(ops)) =
                        (v.get("name").and_then(|n| n.as_str()), v.pointer("/accesses/ops").and_then(|o| o.as_i64()))
                    else {
                        continue;
                    };
                    if let Some(Value::Object(a)) = stats.get_mut(name) {
                        let total = a.get("ops").and_then(|o| o.as_i64()).unwrap_or(0) + ops;
                        a.insert("ops".into(), json!(total));
                    }
                }
            }
            for a in stats.values_mut() {
                if let Value::Object(a) = a {
                    a.insert("members".into(), json!(read_from));
                }
            }
            // An unfinished build is listed like a finished index
            // (jstests/noPassthrough/list_indexes_ready_and_in_progress.js); currentOp shows
            // its createIndexes (jstests/noPassthrough/libs/index_build.js,
            // getIndexBuildOpId). Reading it needs the `inprog` action (clusterMonitor).
            let ns = format!("{}.{coll}", Self::db_name(ctx));
            let mut ops_denied = false;
            match client
                .database("admin")
                .run_command(doc! {"currentOp": true, "op": "command", "command.createIndexes": coll, "ns": &ns})
                .await
            {
                Ok(reply) => {
                    let reply = Bson::Document(reply).into_relaxed_extjson();
                    for op in reply["inprog"].as_array().into_iter().flatten() {
                        for ix in op.pointer("/command/indexes").and_then(|i| i.as_array()).into_iter().flatten() {
                            let Some(name) = ix.get("name").and_then(|n| n.as_str()) else { continue };
                            if let Some(d) = docs.iter_mut().find(|d| d.get("name").and_then(|n| n.as_str()) == Some(name)) {
                                d[BUILDING] = json!({
                                    "msg": op.get("msg"),
                                    "done": op.pointer("/progress/done"),
                                    "total": op.pointer("/progress/total"),
                                    "opid": op.get("opid"),
                                });
                            }
                        }
                    }
                }
                Err(e) if error_code(&e) == Some(13) => ops_denied = true,
                Err(_) => {}
            }
            if (denied || ops_denied)
                && let Some(first) = docs.iter().filter_map(|d| d.get("name").and_then(|n| n.as_str())).find(|n| *n != "_id_")
            {
                stats.insert(first.to_string(), json!({"denied": denied, "ops_denied": ops_denied}));
            }
            Ok(docs
                .into_iter()
                .map(|d| {
                    let s = d.get("name").and_then(|n| n.as_str()).and_then(|n| stats.get(n)).cloned();
                    (d, s)
                })
                .collect())
        })
        .await
        .cloned()
    }

    /// A command whose error the caller reads itself (its code decides what happens next).
    /// A command that scans data (converting an index to unique): sent once, and given the
    /// run's `--timeout` rather than one request's deadline.
    async fn run_long(&self, ctx: &Ctx<'_>, cmd: Document) -> Result<std::result::Result<Document, mongodb::error::Error>> {
        let client = self.client(ctx).await?;
        let operation = cmd.keys().next().cloned().unwrap_or_default();
        let endpoint = self.endpoint();
        let req = deadline::Request { service: "MongoDB", endpoint: &endpoint, operation: &operation };
        Ok(deadline::write_for(req, ctx.options.timeout, client.database(&Self::db_name(ctx)).run_command(cmd)).await?)
    }

    /// Sent once: unanswered within the attempt's deadline, its outcome is unknown.
    async fn run(&self, ctx: &Ctx<'_>, cmd: Document) -> Result<std::result::Result<Document, mongodb::error::Error>> {
        let client = self.client(ctx).await?;
        let operation = cmd.keys().next().cloned().unwrap_or_default();
        let endpoint = self.endpoint();
        let req = deadline::Request { service: "MongoDB", endpoint: &endpoint, operation: &operation };
        Ok(deadline::write(req, client.database(&Self::db_name(ctx)).run_command(cmd)).await?)
    }

    /// Makes an index unique in place (MongoDB 6.0+; docs "collMod",
    /// jstests/core/ddl/collmod_convert_to_unique.js):
    /// 1. `prepareUnique: true`: new duplicates are refused from now on (the conversion needs
    ///    it first: without it `unique: true` is InvalidOptions, dry run or not);
    /// 2. a dry run of `unique: true`, which fails with CannotConvertIndexToUnique (359) when
    ///    duplicates exist, and changes nothing;
    /// 3. `unique: true`.
    ///
    /// If 2 or 3 fails, `prepareUnique` is set back to false, so the index is left as found.
    async fn make_unique(
        &self,
        ctx: &Ctx<'_>,
        address: &Address,
        coll: &str,
        name: &str,
        keys: &Value,
        version: Option<(i64, i64)>,
    ) -> Result<()> {
        let cause = |e: &mongodb::error::Error| -> String {
            let fields: Vec<String> =
                keys.as_array().into_iter().flatten().filter_map(|k| k.get(0).and_then(|f| f.as_str()).map(str::to_string)).collect();
            let group: Vec<String> = fields.iter().map(|f| format!("{}: \"${f}\"", f.replace('.', "_"))).collect();
            match error_code(e) {
                Some(359) => format!(
                    "the collection holds documents with the same {} (CannotConvertIndexToUnique, 359): remove the duplicates, then apply again. Find them with db.{coll}.aggregate([{{$group: {{_id: {{{}}}, n: {{$sum: 1}}}}}}, {{$match: {{n: {{$gt: 1}}}}}}])",
                    fields.join(", "),
                    group.join(", ")
                ),
                Some(13) => {
                    format!("database.user may not run collMod (Unauthorized, 13): grant it dbAdmin on the database ({})", brief(e))
                }
                Some(72) => format!("the server refused the conversion ({})", brief(e)),
                Some(59) | Some(9) | Some(40415) => {
                    format!("this server cannot make an index unique in place; MongoDB 6.0 or later can ({})", brief(e))
                }
                _ => brief(e),
            }
        };
        let what = format!("collMod {address}");
        if let Err(e) = self.run(ctx, doc! {"collMod": coll, "index": {"name": name, "prepareUnique": true}}).await? {
            return Err(ProviderError::Refused(format!("{what}: {}", crate::secrets::redact(&cause(&e)))));
        }
        let mut steps = Vec::new();
        if version.is_none_or(|v| v >= (6, 0)) {
            steps.push(doc! {"collMod": coll, "index": {"name": name, "unique": true}, "dryRun": true});
        }
        steps.push(doc! {"collMod": coll, "index": {"name": name, "unique": true}});
        for step in steps {
            // The dry run and the conversion scan the index for duplicates: on a large
            // collection that takes longer than one request's deadline, so these two may take
            // up to the run's `--timeout`.
            if let Err(e) = self.run_long(ctx, step).await? {
                let reverted = self.run(ctx, doc! {"collMod": coll, "index": {"name": name, "prepareUnique": false}}).await?.is_ok();
                let mut err = cause(&e);
                err.push_str(if reverted {
                    "; nothing changed (prepareUnique was set back to false)"
                } else {
                    "; prepareUnique is still set: new duplicates are refused until `collMod prepareUnique: false`"
                });
                return Err(ProviderError::Refused(format!("{what}: {}", crate::secrets::redact(&err))));
            }
        }
        Ok(())
    }

    /// A write sent once and bounded by the attempt's deadline (see `run`).
    async fn command(&self, ctx: &Ctx<'_>, what: &str, cmd: Document) -> Result<Document> {
        let client = self.client(ctx).await?;
        let endpoint = self.endpoint();
        let req = deadline::Request { service: "MongoDB", endpoint: &endpoint, operation: what };
        let answer = deadline::write(req, client.database(&Self::db_name(ctx)).run_command(cmd)).await?;
        Self::command_error(what, answer)
    }

    /// createIndexes: its answer comes when the build is done, which may take longer than
    /// any request deadline; `build_docs` bounds it by `--timeout` and watches its progress.
    async fn command_unbounded(&self, ctx: &Ctx<'_>, what: &str, cmd: Document) -> Result<Document> {
        let client = self.client(ctx).await?;
        let answer = client.database(&Self::db_name(ctx)).run_command(cmd).await;
        Self::command_error(what, answer)
    }

    fn command_error(what: &str, answer: mongodb::error::Result<Document>) -> Result<Document> {
        answer.map_err(|e| match error_code(&e) {
            Some(85) => ProviderError::Refused(format!(
                "{what}: an index with the same keys already exists under another name or options (IndexOptionsConflict): {e}"
            )),
            Some(86) => ProviderError::Refused(format!(
                "{what}: an index with this name already exists with other keys (IndexKeySpecsConflict): {e}"
            )),
            Some(27) => ProviderError::Api(format!("{what}: no such index (IndexNotFound): {e}")),
            Some(13) => ProviderError::Refused(format!(
                "{what}: database.user may not do this (Unauthorized, 13): grant it readWrite and dbAdmin on the database ({})",
                brief(&e)
            )),
            Some(26) => ProviderError::Api(format!("{what}: no such collection (NamespaceNotFound): {e}")),
            _ => mongo_err(what, e),
        })
    }

    /// Builds an index together with the other new indexes of its collection that this apply
    /// starts at the same time: one `createIndexes` with all of them scans the collection once
    /// (docs "createIndexes": the indexes of one command are built in one pass). If that
    /// command fails, each index is built alone, so one bad index fails alone.
    async fn build_together(&self, ctx: &Ctx<'_>, coll: &str, spec: Value, address: &Address) -> Result<()> {
        let (batch, leader) = {
            let mut map = self.batches.lock().unwrap_or_else(|e| e.into_inner());
            match map.get(coll) {
                Some(b) => {
                    b.specs.lock().unwrap_or_else(|e| e.into_inner()).push((spec.clone(), address.clone()));
                    (b.clone(), false)
                }
                None => {
                    let b = Arc::new(BuildBatch {
                        specs: std::sync::Mutex::new(vec![(spec.clone(), address.clone())]),
                        done: tokio::sync::watch::channel(None).0,
                    });
                    map.insert(coll.to_string(), b.clone());
                    (b, true)
                }
            }
        };
        if !leader {
            let mut rx = batch.done.subscribe();
            let outcome = rx.wait_for(|v| v.is_some()).await.map(|v| v.clone()).ok().flatten();
            return match outcome {
                Some(Ok(())) => Ok(()),
                // The batch failed: this index alone.
                _ => self.build(ctx, coll, vec![(spec, address.clone())]).await,
            };
        }
        tokio::time::sleep(GATHER).await;
        self.batches.lock().unwrap_or_else(|e| e.into_inner()).remove(coll);
        let specs = std::mem::take(&mut *batch.specs.lock().unwrap_or_else(|e| e.into_inner()));
        let together = specs.len() > 1;
        let result = self.build(ctx, coll, specs).await;
        let _ = batch.done.send(Some(result.as_ref().map(|_| ()).map_err(|e| e.to_string())));
        match result {
            Err(_) if together => self.build(ctx, coll, vec![(spec, address.clone())]).await,
            other => other,
        }
    }

    /// Runs one `createIndexes` for the given indexes, showing the build's progress (from
    /// `currentOp`) meanwhile.
    async fn build(&self, ctx: &Ctx<'_>, coll: &str, specs: Vec<(Value, Address)>) -> Result<()> {
        let mut indexes = Vec::new();
        for (spec, _) in &specs {
            indexes.push(bson::to_bson(spec).map_err(|e| ProviderError::Api(format!("cannot encode the index: {e}")))?);
        }
        let address = match specs.as_slice() {
            [(_, one)] => one.to_string(),
            many => format!(
                "{} indexes of {coll} ({})",
                many.len(),
                many.iter().map(|(_, a)| a.name.rsplit('.').next().unwrap_or("")).collect::<Vec<_>>().join(", ")
            ),
        };
        self.build_docs(ctx, coll, indexes, address).await
    }

    /// Runs one `createIndexes` of these index documents, showing the build's progress (from
    /// `currentOp`) meanwhile. The wait ends at `--timeout`: the build itself goes on (the
    /// server does not stop a build when its client leaves, SERVER-101507, and poactl never
    /// interrupts one, which would abort it, SERVER-46595), and the next plan shows it as
    /// building.
    async fn build_docs(&self, ctx: &Ctx<'_>, coll: &str, indexes: Vec<Bson>, address: String) -> Result<()> {
        let task = ctx.progress.spinner(format!("{address}: building"));
        let client = self.client(ctx).await?.clone();
        let watch = async {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let op = client.database("admin").run_command(doc! {"currentOp": true, "command.createIndexes": coll}).await;
                if let Ok(op) = op {
                    let v = Bson::Document(op).into_relaxed_extjson();
                    if let Some(p) = v.pointer("/inprog/0") {
                        let msg = p.get("msg").and_then(|m| m.as_str()).unwrap_or("building");
                        task.set_message(format!("{address}: {msg}"));
                    }
                }
            }
        };
        let what = format!("createIndexes {address}");
        let run = self.command_unbounded(ctx, &what, doc! {"createIndexes": coll, "indexes": indexes});
        tokio::pin!(run);
        let limit = ctx.options.timeout;
        let result = tokio::select! {
            r = &mut run => r,
            _ = watch => unreachable_loop(),
            () = crate::interrupt::wait() => Err(ProviderError::Refused(format!(
                "{address}: interrupted while the server builds it; the build goes on there (poactl never aborts one), and `poactl plan` shows it as building until it finishes"
            ))),
            _ = tokio::time::sleep(limit) => Err(ProviderError::Timeout {
                what: address.clone(),
                seconds: limit.as_secs(),
                state: "building; the server goes on with the build (poactl never aborts one), and `poactl plan` shows it as building until it finishes".into(),
            }),
        };
        task.finish();
        result.map(|_| ())
    }
}

/// `watch` loops forever; this only satisfies the type of its `select!` arm.
fn unreachable_loop() -> Result<Document> {
    Err(ProviderError::Api("the build watcher stopped".into()))
}

/// `accesses.since` of `$indexStats` as the driver's relaxed extended JSON gives it: a string,
/// `{"$date": "2026-...Z"}`, or `{"$date": {"$numberLong": "ms"}}` (dates outside 1970-9999).
fn stats_date(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => match o.get("$date")? {
            Value::String(s) => Some(s.clone()),
            Value::Object(n) => {
                let ms: i64 = n.get("$numberLong")?.as_str()?.parse().ok()?;
                Some(bson::DateTime::from_millis(ms).try_to_rfc3339_string().unwrap_or_else(|_| format!("{ms} ms after 1970")))
            }
            _ => None,
        },
        _ => None,
    }
}

fn server_version(o: &Observed) -> Option<(i64, i64)> {
    o.handle.get("server_version").and_then(|v| v.as_array()).and_then(|v| Some((v.first()?.as_i64()?, v.get(1)?.as_i64()?)))
}

/// "an index build is in progress (40%, 400 of 1000 keys)", from its currentOp entry.
fn build_progress(o: &Observed) -> Option<String> {
    let b = o.handle.get("building").filter(|b| !b.is_null())?;
    let (done, total) = (b.get("done").and_then(|v| v.as_i64()), b.get("total").and_then(|v| v.as_i64()));
    Some(match (done, total) {
        (Some(d), Some(t)) if t > 0 => format!("an index build is in progress on the server ({}%, {d} of {t} keys)", d * 100 / t),
        _ => "an index build is in progress on the server".to_string(),
    })
}

/// The live index's exact document, to build it again.
fn raw_spec(o: &Observed) -> Result<Document> {
    let raw =
        o.handle.get("raw").filter(|r| !r.is_null()).ok_or_else(|| ProviderError::Api("the live index's document was not read".into()))?;
    match Bson::try_from(raw.clone()) {
        Ok(Bson::Document(mut d)) => {
            d.remove("ns");
            Ok(d)
        }
        _ => Err(ProviderError::Api("the live index's document cannot be read back".into())),
    }
}

/// A stand-in for a unique index while it is rebuilt under its own name: the same keys,
/// collation and uniqueness over the same documents, told apart by its partial filter (every
/// document has an `_id`, so `_id: {$exists: true}` holds them all; a different filter is a
/// different signature, jstests/core/index_signature.js). It expires nothing and is not
/// hidden. A sparse index cannot have a partial filter too (docs "Partial Indexes"), so it
/// has no stand-in.
fn guard_spec(old: &Document, name: &str) -> std::result::Result<Document, String> {
    if old.get_bool("sparse").unwrap_or(false) {
        return Err("it is sparse, so no stand-in can keep it unique meanwhile".into());
    }
    let mut g = old.clone();
    for k in ["expireAfterSeconds", "hidden", "prepareUnique", "v"] {
        g.remove(k);
    }
    let mut filter = old.get_document("partialFilterExpression").cloned().unwrap_or_default();
    if filter.contains_key("_id") {
        return Err("its partial filter already names `_id`, so no stand-in can keep it unique meanwhile".into());
    }
    filter.insert("_id", doc! {"$exists": true});
    g.insert("partialFilterExpression", filter);
    g.insert("name", format!("{name}_poactl_standin"));
    Ok(g)
}

fn observed(coll: &str, doc: &Value, stats: &Option<Value>, version: Option<(i32, i32)>) -> Observed {
    let name = doc.get("name").and_then(|v| v.as_str()).unwrap_or("").to_string();
    let hidden = doc.get("hidden").and_then(|v| v.as_bool()).unwrap_or(false);
    Observed {
        id: format!("{coll}.{name}"),
        attrs: normalize::live_attrs(coll, doc),
        outputs: Outputs::from([
            ("name".to_string(), name.clone()),
            ("description".to_string(), format!("index {name} on {coll}{}", if hidden { " (hidden)" } else { "" })),
        ]),
        ownership: Ownership::NaturalKey,
        handle: json!({
            "stats": stats,
            "hidden": hidden,
            "server_version": version.map(|(a, b)| [a, b]),
            "prepare_unique": doc.get("prepareUnique") == Some(&json!(true)),
            "raw": doc.get(RAW),
            "building": doc.get(BUILDING),
        }),
    }
}

#[async_trait]
impl Provider for IndexProvider {
    fn kind(&self) -> Kind {
        Kind::Index
    }

    fn lane(&self) -> Lane {
        LANE
    }

    /// Listing connects like the reads, so it comes after them (and after what they need).
    fn discover_after(&self) -> &'static [Kind] {
        &[Kind::AtlasProject, Kind::AtlasCluster, Kind::AtlasUser, Kind::AtlasAccessList, Kind::Index]
    }

    /// The reads connect as `database.user` through the access list: they wait for both.
    fn reads_after_references(&self) -> bool {
        true
    }

    /// Connecting cannot work yet (the plan would stop on a timeout or an authentication
    /// failure, and so could never make the apply that fixes it): the cluster is paused or
    /// not IDLE (Atlas refuses connections to a paused cluster and drops them while it
    /// changes), or the user or an access-list entry is made by this apply, or the user's
    /// password is rotated by it. With `--mongodb-uri` poactl does not go through them.
    fn defer_read(&self, _d: &Desired, needs: &[(&Desired, Option<&Observed>)], ctx: &Ctx<'_>) -> Option<super::Deferral> {
        if self.cli_uri.is_some() {
            return None;
        }
        let deferral = Self::deferral(needs, ctx);
        if deferral.is_some() {
            self.unread.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        deferral
    }

    /// A database that cannot be reached (its address, the runner's IP, the user's password)
    /// fails its indexes, not the plan of the whole environment.
    fn read_failure_is_local(&self) -> bool {
        true
    }

    async fn observe(&self, ctx: &Ctx<'_>, d: &Desired) -> Result<Option<Observed>> {
        let coll = d.attrs["collection"].as_str().unwrap_or_default();
        let name = d.attrs["name"].as_str().unwrap_or_default();
        let live = self.indexes(ctx, coll).await.inspect_err(|_| self.unread.store(true, std::sync::atomic::Ordering::SeqCst))?;
        // By name; else an index with the same keys under another name is this index.
        let by_name = live.iter().find(|(doc, _)| doc.get("name").and_then(|n| n.as_str()) == Some(name));
        let by_keys = || {
            live.iter()
                .find(|(doc, _)| doc.get("name") != Some(&json!("_id_")) && normalize::live_attrs(coll, doc)["keys"] == d.attrs["keys"])
        };
        Ok(by_name.or_else(by_keys).map(|(doc, stats)| observed(coll, doc, stats, self.version.get().copied().flatten())))
    }

    async fn discover(&self, ctx: &Ctx<'_>) -> Result<Vec<(Address, Observed)>> {
        let Some(db) = &ctx.loaded.spec.database else { return Ok(Vec::new()) };
        if self.unread.load(std::sync::atomic::Ordering::SeqCst) {
            return Ok(Vec::new());
        }
        // A URI that refers to a cluster not made yet: no database, so no indexes to list.
        if self.cli_uri.is_none()
            && let Some(raw) = &db.uri
            && super::resolve_refs(&Value::String(raw.clone()), ctx.outputs).as_str().is_some_and(|u| u.contains("${"))
        {
            return Ok(Vec::new());
        }
        let hidden_since = self.hide_records(ctx).await;
        let mut out = Vec::new();
        for (coll, _) in &db.collections.0 {
            for (doc, stats) in self.indexes(ctx, coll).await? {
                let name = doc.get("name").and_then(|n| n.as_str()).unwrap_or("").to_string();
                if name == "_id_" {
                    continue;
                }
                let mut o = observed(coll, &doc, &stats, self.version.get().copied().flatten());
                if let Some(at) = hidden_since.get(&format!("{coll}.{name}")) {
                    o.handle["hidden_at"] = json!(at.try_to_rfc3339_string().unwrap_or_default());
                    o.handle["hidden_days"] = json!((bson::DateTime::now().timestamp_millis() - at.timestamp_millis()) / 86_400_000);
                }
                out.push((Address::new(Kind::Index, format!("{coll}.{name}")), o));
            }
        }
        Ok(out)
    }

    /// A prune hides a visible index first (`prune_guard` keeps it until it has been hidden
    /// long enough).
    fn delete_notes(&self, o: &Observed) -> Vec<String> {
        if o.handle.get("hidden") == Some(&json!(true)) {
            return Vec::new();
        }
        vec![format!(
            "hidden now, dropped by a --prune once it has been hidden {HIDDEN_DAYS} days (or now with --drop-immediately); queries that hint it, and $text or $geoNear that need it, fail meanwhile"
        )]
    }

    /// Unmanaged indexes: `--prune` hides them first and drops them only later, and never
    /// drops a unique or TTL one without `--delete` naming it. Hiding proves nothing about
    /// those: a hidden index still enforces uniqueness and still expires documents (docs
    /// "Hidden Indexes", Behavior). A hidden index is dropped once it has been hidden for
    /// `HIDDEN_DAYS`, counted from the time poactl hid it (an index someone else hid has no
    /// such time, so it needs `--delete` too).
    fn prune_guard(&self, o: &Observed) -> Option<String> {
        if let Some(b) = build_progress(o) {
            return Some(format!("{b}: dropping it would abort that build, which is someone else's"));
        }
        let unique = o.attrs.get("unique") == Some(&json!(true));
        let ttl = o.attrs.get("expire_after_seconds").is_some_and(|v| !v.is_null());
        if unique || ttl {
            return Some(format!(
                "a {} index {} even while hidden, so hiding it proves nothing",
                if unique { "unique" } else { "TTL" },
                if unique { "still enforces uniqueness" } else { "still expires documents" }
            ));
        }
        if o.handle.get("hidden") != Some(&json!(true)) {
            return None;
        }
        match (o.handle.get("hidden_days").and_then(|d| d.as_i64()), o.handle.get("hidden_at").and_then(|d| d.as_str())) {
            (Some(days), Some(at)) if days < HIDDEN_DAYS => Some(format!(
                "hidden since {at}, {days} of {HIDDEN_DAYS} days: queries that hint it, and $text or $geoNear that need it, fail meanwhile; --prune drops it after that"
            )),
            (Some(_), Some(_)) => None,
            _ => Some("it was hidden by someone else (poactl has no record of when)".to_string()),
        }
    }

    /// A build in progress is never changed under it: a collMod waits for it, and a drop
    /// aborts it (dropIndexes aborts in-progress builds, SERVER-37726).
    fn blocked(&self, _d: &Desired, o: &Observed, _changes: &[FieldChange]) -> Option<String> {
        build_progress(o).map(|b| format!("{b}: poactl does not change or drop an index while it is built (a drop would abort the build); apply again once it finishes"))
    }

    /// What changes in place and what needs a rebuild.
    fn diff(&self, d: &Desired, o: &Observed) -> Vec<FieldChange> {
        // A collation is compared on the fields the spec sets only: the server fills the rest
        // from the locale, and an index made by another tool with the same locale is the same.
        let mut live = o.attrs.clone();
        if let (Some(want), Some(Value::Object(have))) = (d.attrs.get("collation").and_then(|c| c.as_object()), live.get_mut("collation")) {
            have.retain(|k, _| want.contains_key(k));
        }
        let mut changes = crate::plan::diff::diff_closed(
            &d.attrs,
            &live,
            &["keys", "name", "sparse", "partial_filter", "collation", "weights", "default_language", "language_override", "collection"],
            // A clause or a text field only the live index has changes what it holds: drift
            // too (the generic diff looks at the spec's keys only).
            &["partial_filter", "weights"],
        );
        // Deeper live-only parts (an operator inside a clause) are caught by comparing the
        // whole values.
        for field in ["partial_filter", "weights"] {
            // A live-only part is a change of a rebuild-only option too.
            for c in changes.iter_mut().filter(|c| c.path.starts_with(&format!("{field}."))) {
                c.forces_replace = true;
            }
            let named = changes.iter().any(|c| c.path == field || c.path.starts_with(&format!("{field}.")));
            let (want, have) = (d.attrs.get(field).cloned().unwrap_or(Value::Null), live.get(field).cloned().unwrap_or(Value::Null));
            if want != have && !named {
                changes.push(FieldChange {
                    path: field.to_string(),
                    before: (!have.is_null()).then_some(have),
                    after: (!want.is_null()).then_some(want),
                    forces_replace: true,
                    sensitive: false,
                    unknown: false,
                });
            }
        }
        for c in &mut changes {
            match c.path.as_str() {
                // collMod can make an index unique (after prepareUnique), not the reverse.
                "unique" => c.forces_replace = c.after == Some(json!(false)),
                // collMod changes an existing TTL, and since 5.1 makes a single-field index
                // (not `_id_`) a TTL one (jstests/core/ddl/collmod_convert_to_ttl.js,
                // requires_fcv_51; a compound index is refused with InvalidOptions). Removing a
                // TTL, or adding one on an older server, rebuilds.
                "expire_after_seconds" => {
                    let converts = o
                        .handle
                        .get("server_version")
                        .and_then(|v| v.as_array())
                        .and_then(|v| Some((v.first()?.as_i64()?, v.get(1)?.as_i64()?)))
                        .is_some_and(|v| v >= (5, 1))
                        && o.attrs.get("keys").and_then(|k| k.as_array()).is_some_and(|k| k.len() == 1);
                    c.forces_replace = c.after.is_none() || (c.before.is_none() && !converts)
                }
                _ => {}
            }
        }
        changes
    }

    /// `$indexStats` says no operation used it, on any member read.
    fn unused(&self, o: &Observed) -> Option<String> {
        (o.handle.pointer("/stats/ops").and_then(|v| v.as_i64()) == Some(0)).then(|| {
            format!(
                "no operation has used this index since {}{}",
                o.handle.pointer("/stats/since").and_then(stats_date).unwrap_or_else(|| "the server started".to_string()),
                match o.handle.pointer("/stats/members").and_then(|m| m.as_i64()) {
                    Some(n) if n > 1 => format!(" (on any of the {n} members)"),
                    _ => String::new(),
                }
            )
        })
    }

    fn notes(&self, _d: &Desired, o: &Observed, _ctx: &Ctx<'_>) -> Vec<String> {
        let mut notes = Vec::new();
        let coll = o.attrs.get("collection").and_then(|c| c.as_str()).unwrap_or("");
        if o.handle.pointer("/stats/ops_denied") == Some(&json!(true)) {
            notes.push(format!(
                "builds in progress on {coll} not checked: database.user may not run currentOp (the inprog action); grant it clusterMonitor, or an unfinished build looks like a finished index"
            ));
        }
        if o.handle.pointer("/stats/denied") == Some(&json!(true)) {
            notes.push(format!(
                "usage of the indexes of {coll} not read: database.user may not run $indexStats; grant it clusterMonitor to see unused indexes"
            ));
            return notes;
        }
        if o.handle.get("prepare_unique") == Some(&json!(true)) && o.attrs.get("unique") != Some(&json!(true)) {
            notes.push(format!(
                "prepareUnique is set: new duplicate keys are refused, but the index is not unique (a conversion was started and not finished); lift it with db.runCommand({{collMod: \"{}\", index: {{name: \"{}\", prepareUnique: false}}}})",
                o.attrs.get("collection").and_then(|c| c.as_str()).unwrap_or(""),
                o.attrs.get("name").and_then(|c| c.as_str()).unwrap_or("")
            ));
        }
        notes
    }

    async fn create(&self, ctx: &Ctx<'_>, d: &Desired) -> Result<Outputs> {
        let coll = d.attrs["collection"].as_str().unwrap_or_default().to_string();
        let keys: Vec<(String, crate::spec::model::IndexKey)> =
            serde_json::from_value(d.write_only["keys"].clone()).map_err(|e| ProviderError::Api(format!("index keys: {e}")))?;
        let spec = normalize::create_spec(&d.attrs, &keys);
        self.build_together(ctx, &coll, spec, &d.address).await?;
        Ok(Outputs::from([("name".to_string(), d.attrs["name"].as_str().unwrap_or_default().to_string())]))
    }

    async fn update(&self, ctx: &Ctx<'_>, d: &Desired, o: &Observed, changes: &[FieldChange]) -> Result<Outputs> {
        let coll = d.attrs["collection"].as_str().unwrap_or_default();
        let name = o.attrs["name"].as_str().unwrap_or_default();
        let what = format!("collMod {}", d.address);
        for c in changes {
            match c.path.as_str() {
                "expire_after_seconds" => {
                    let secs = d.attrs["expire_after_seconds"].as_i64().unwrap_or(0);
                    self.command(ctx, &what, doc! {"collMod": coll, "index": {"name": name, "expireAfterSeconds": secs}}).await?;
                }
                "hidden" => {
                    self.command(ctx, &what, doc! {"collMod": coll, "index": {"name": name, "hidden": d.attrs["hidden"] == json!(true)}})
                        .await?;
                }
                "unique" => {
                    let version = o
                        .handle
                        .get("server_version")
                        .and_then(|v| v.as_array())
                        .and_then(|v| Some((v.first()?.as_i64()?, v.get(1)?.as_i64()?)));
                    self.make_unique(ctx, &d.address, coll, name, &o.attrs["keys"], version).await?;
                }
                other => {
                    return Err(ProviderError::Refused(format!(
                        "{}: `{other}` cannot change in place; it needs a rebuild (--allow-rebuild)",
                        d.address
                    )));
                }
            }
        }
        Ok(Outputs::from([("name".to_string(), name.to_string())]))
    }

    /// Build before drop, so the collection is never without the index, and never without
    /// its uniqueness:
    /// - when the new index can stand beside the old one (another name, and a key pattern or
    ///   signature of its own), it is built first and the old one dropped after; a failed
    ///   build (11000: duplicates) leaves the old index as it was;
    /// - otherwise (same name, or they cannot coexist) a unique old index gets a stand-in
    ///   (`guard_spec`) first, then the old one is dropped and the new one built; if that
    ///   build fails, the old index is built again and the stand-in dropped.
    async fn replace(&self, ctx: &Ctx<'_>, d: &Desired, o: &Observed) -> Result<Outputs> {
        let coll = d.attrs["collection"].as_str().unwrap_or_default().to_string();
        let old_name = o.attrs["name"].as_str().unwrap_or_default().to_string();
        let new_name = d.attrs["name"].as_str().unwrap_or_default().to_string();
        let outputs = Outputs::from([("name".to_string(), new_name.clone())]);
        let keys: Vec<(String, crate::spec::model::IndexKey)> =
            serde_json::from_value(d.write_only["keys"].clone()).map_err(|e| ProviderError::Api(format!("index keys: {e}")))?;
        let new_spec = normalize::create_spec(&d.attrs, &keys);
        let drop = |name: String| {
            let coll = coll.clone();
            async move {
                self.command(ctx, &format!("dropIndexes {}", d.address), doc! {"dropIndexes": &coll, "index": &name}).await.map(|_| ())
            }
        };
        if old_name != new_name && normalize::coexists(&o.attrs, &d.attrs, server_version(o)) {
            self.build(ctx, &coll, vec![(new_spec, d.address.clone())])
                .await
                .map_err(|e| ProviderError::Refused(format!("{e}; the old index {old_name} is left as it was")))?;
            ctx.progress.println(format!("  {}: built beside {old_name}; dropping {old_name}", d.address));
            drop(old_name).await?;
            return Ok(outputs);
        }
        let old = raw_spec(o)?;
        let guard = if o.attrs["unique"] == json!(true) {
            let g = guard_spec(&old, &old_name).map_err(|why| {
                ProviderError::Refused(format!(
                    "{}: rebuilding the unique index {old_name} under the same name would leave the collection without uniqueness for the build, and {why}. Give the index a new `name` in the spec: poactl then builds it beside the old one before dropping that",
                    d.address
                ))
            })?;
            let g_name = g.get_str("name").unwrap_or_default().to_string();
            self.build_docs(ctx, &coll, vec![Bson::Document(g)], format!("{} (stand-in {g_name})", d.address)).await?;
            Some(g_name)
        } else {
            None
        };
        drop(old_name.clone()).await?;
        if let Err(e) = self.build(ctx, &coll, vec![(new_spec, d.address.clone())]).await {
            let restored = self.build_docs(ctx, &coll, vec![Bson::Document(old)], format!("{} (the old {old_name})", d.address)).await;
            let after = match (&restored, &guard) {
                (Ok(()), Some(g)) => match drop(g.clone()).await {
                    Ok(()) => format!("; the old index {old_name} was built again"),
                    Err(_) => format!("; the old index {old_name} was built again, and its stand-in {g} is left (drop it)"),
                },
                (Ok(()), None) => format!("; the old index {old_name} was built again"),
                (Err(r), Some(g)) => {
                    format!("; building the old index {old_name} again failed too ({r}): its stand-in {g} keeps the keys unique")
                }
                (Err(r), None) => format!("; building the old index {old_name} again failed too ({r})"),
            };
            return Err(ProviderError::Refused(format!("{e}{after}")));
        }
        if let Some(g) = guard {
            drop(g).await?;
        }
        Ok(outputs)
    }

    fn in_progress(&self, o: &Observed) -> Option<String> {
        build_progress(o).map(|b| format!("building: {b}; the index serves queries only once it finishes"))
    }

    /// Drops the index (replace, or `--prune` of a hidden one / with `--drop-immediately`);
    /// a visible unmanaged index is hidden first, so a mistake costs no rebuild.
    async fn delete(&self, ctx: &Ctx<'_>, address: &Address, o: &Observed) -> Result<()> {
        let coll = o.attrs["collection"].as_str().unwrap_or_default();
        let name = o.attrs["name"].as_str().unwrap_or_default();
        if name == "_id_" {
            return Err(ProviderError::Refused("the _id index is never dropped".into()));
        }
        // A declared index is deleted only to be rebuilt: drop it. An unmanaged one is pruned.
        let declared = ctx
            .loaded
            .spec
            .database
            .iter()
            .flat_map(|db| db.collections.0.iter())
            .any(|(c, spec)| spec.indexes.iter().any(|ix| format!("{c}.{}", index_name(ix)) == address.name));
        let hidden = o.handle.get("hidden").and_then(|h| h.as_bool()).unwrap_or(false);
        if !declared && !hidden && !ctx.options.drop_immediately {
            self.command(ctx, &format!("collMod {address}"), doc! {"collMod": coll, "index": {"name": name, "hidden": true}}).await?;
            // When it was hidden, so that a later --prune waits HIDDEN_DAYS from then.
            let client = self.client(ctx).await?;
            client
                .database(&Self::db_name(ctx))
                .collection::<Document>(HIDE_RECORDS)
                .update_one(doc! {"_id": &address.name}, doc! {"$set": {"hidden_at": bson::DateTime::now(), "by": "poactl"}})
                .upsert(true)
                .await
                .map_err(|e| mongo_err(&format!("recording when {address} was hidden"), e))?;
            ctx.progress.println(format!(
                "{address}: hidden, not dropped; a --prune drops it after {HIDDEN_DAYS} days hidden (or now with --drop-immediately)"
            ));
            return Ok(());
        }
        self.command(ctx, &format!("dropIndexes {address}"), doc! {"dropIndexes": coll, "index": name}).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
