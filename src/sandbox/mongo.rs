//! A scripted MongoDB wire-protocol peer (OP_MSG). It is a MOCK, not a database: it keeps
//! collections, their documents and their indexes in memory and answers the commands poactl
//! sends (the handshake, index commands, `create`, `listCollections`, `insert`, `find`,
//! `getMore`, `update`, `delete`, `count`, a few `aggregate` stages). It records every
//! command and can be told to fail the next command of a name with a given error code. With
//! users (`set_users`) it requires a SCRAM-SHA-256 login and checks each command against the
//! user's roles; it can hold index builds in progress (`hold_build`, `set_build_delay`) and
//! answer as a replica-set member (`set_replica_set`). It
//! proves which commands poactl sends and how it handles server errors; it proves nothing
//! about MongoDB's own behaviour beyond the rules below, each cited to its source.
//!
//! Query support is a small subset (equality on dotted paths, `$in`, `$exists`, `$and`,
//! `$set` updates); anything else is refused with `BadValue` naming the mock, never guessed.
//! `poactl sandbox --mongo-listen` serves it for the demo; the tests start it in-process.

use super::mongo_writes::{MAX_USER_SIZE, invalid_namespace, replace_empty_timestamps, validate};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use mongodb::bson::{Bson, Document, doc};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One collection: its `create` options, its indexes as `listIndexes` returns them, and its
/// documents in insertion order.
#[derive(Clone)]
pub struct Collection {
    pub options: Document,
    pub indexes: Vec<Document>,
    pub docs: BTreeMap<u64, Document>,
    /// `_id` key -> sequence number in `docs`.
    ids: HashMap<Vec<u8>, u64>,
    next: u64,
}

impl Default for Collection {
    fn default() -> Collection {
        // Every collection has the `_id_` index, made with the collection (server:
        // src/mongo/db/catalog/collection_impl.cpp creates it; listIndexes always shows it).
        Collection {
            options: Document::new(),
            indexes: vec![doc! {"v": 2, "key": {"_id": 1}, "name": "_id_"}],
            docs: BTreeMap::new(),
            ids: HashMap::new(),
            next: 0,
        }
    }
}

impl Collection {
    pub fn documents(&self) -> impl Iterator<Item = &Document> {
        self.docs.values()
    }
}

#[derive(Default)]
pub struct MockState {
    /// `db.collection` -> the collection.
    pub collections: BTreeMap<String, Collection>,
    /// Every command received (handshake, monitoring and session commands left out; the
    /// documents of writes replaced by their count).
    pub commands: Vec<Document>,
    /// command name -> (code, codeName) for its next call.
    pub fail_next: HashMap<String, (i32, String)>,
    /// index name -> (code, codeName) for every `createIndexes` that holds it (an index the
    /// server keeps refusing, as it would one that conflicts with another).
    pub fail_index: HashMap<String, (i32, String)>,
    cursors: HashMap<i64, (String, Vec<Document>)>,
    next_cursor: i64,
    /// The version `buildInfo` reports (default 7.0): what `collMod` allows depends on it.
    pub version: Option<(i32, i32)>,
    /// Index builds in progress (started by another client, or held by `hold_build`).
    pub builds: Vec<Build>,
    next_op: i64,
    /// How long each `createIndexes` takes (none: at once). Meanwhile its builds show in
    /// listIndexes and currentOp, and a client that stops waiting does not stop them: the
    /// server does not kill a build when its client disconnects (SERVER-101507).
    pub build_delay: Option<std::time::Duration>,
    /// Database users; `None`: no access control (a mongod without `--auth`). With users,
    /// every command but the handshake needs a SCRAM-SHA-256 login, and the user's roles.
    pub users: Option<Vec<MockUser>>,
    /// As a replica set member: (set name, this member's host, every data-bearing host),
    /// reported by `hello` (setName, me, hosts).
    pub replica_set: Option<(String, String, Vec<String>)>,
    /// `accesses.ops` that `$indexStats` reports per `db.collection` and index name (0 else):
    /// the operations this member served.
    pub index_ops: HashMap<(String, String), i64>,
    /// A command the mock reads and never answers, keeping the connection open: a peer
    /// behind a firewall that drops packets mid-connection, or a half-open connection.
    /// `hello` also holds its legacy spellings (`isMaster`, `ismaster`), which drivers send
    /// for the first handshake (the MongoDB handshake spec, "legacy hello").
    pub hold: Option<String>,
}

/// A database user with SCRAM-SHA-256 credentials, stored as a server stores them: a salt
/// and the salted password (RFC 5802 / RFC 7677), never the password.
#[derive(Clone)]
pub struct MockUser {
    pub db: String,
    pub name: String,
    /// (role, database); `database` `admin` with an "AnyDatabase" role or a cluster role
    /// covers every database.
    pub roles: Vec<(String, String)>,
    salt: Vec<u8>,
    salted_password: Vec<u8>,
}

/// The iteration count the mock's credentials use: the smallest a server allows for
/// `scramSHA256IterationCount`, and the smallest the Rust driver accepts
/// (mongodb src/client/auth/scram.rs, MIN_ITERATION_COUNT = 4096).
const SCRAM_ITERATIONS: u32 = 4096;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

fn hmac256(key: &[u8], msg: &[u8]) -> Vec<u8> {
    use hmac::Mac;
    let mut m = <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(msg);
    m.finalize().into_bytes().to_vec()
}

/// PBKDF2-HMAC-SHA-256 with one block (SCRAM's Hi(), RFC 5802 section 2.2).
fn salted_password(password: &str, salt: &[u8], iterations: u32) -> Vec<u8> {
    let mut block = salt.to_vec();
    block.extend_from_slice(&1u32.to_be_bytes());
    let mut u = hmac256(password.as_bytes(), &block);
    let mut out = u.clone();
    for _ in 1..iterations {
        u = hmac256(password.as_bytes(), &u);
        for (o, x) in out.iter_mut().zip(&u) {
            *o ^= x;
        }
    }
    out
}

impl MockUser {
    /// A user as Atlas creates it (ASCII passwords: the mock does no SASLprep).
    pub fn new(db: &str, name: &str, password: &str, roles: &[(&str, &str)]) -> MockUser {
        use sha2::Digest;
        let salt = sha2::Sha256::digest(format!("{db}.{name}").as_bytes())[..16].to_vec();
        MockUser {
            db: db.to_string(),
            name: name.to_string(),
            roles: roles.iter().map(|(r, d)| (r.to_string(), d.to_string())).collect(),
            salted_password: salted_password(password, &salt, SCRAM_ITERATIONS),
            salt,
        }
    }

    /// Whether a role of this user grants `action` on database `db` (docs "Built-In
    /// Roles"; Atlas' atlasAdmin is readWriteAnyDatabase, dbAdminAnyDatabase and
    /// clusterMonitor among others, docs "Built-in Roles" in Atlas' database users page).
    fn may(&self, action: &str, db: &str) -> bool {
        const READ: &[&str] = &["find", "listIndexes", "listCollections", "collStats", "dbStats"];
        const WRITE: &[&str] = &["insert", "update", "remove", "createCollection", "createIndex", "dropIndex"];
        const DB_ADMIN: &[&str] =
            &["collMod", "collStats", "createCollection", "createIndex", "dropIndex", "dbStats", "listCollections", "listIndexes"];
        // clusterMonitor: inprog (currentOp) on the cluster, indexStats on every database
        // (docs "$indexStats": "authenticate as a user with at least the clusterMonitor role").
        const MONITOR: &[&str] = &["inprog", "indexStats", "collStats", "dbStats"];
        self.roles.iter().any(|(role, on)| {
            let here = on == db;
            match role.as_str() {
                "read" => here && READ.contains(&action),
                "readWrite" => here && (READ.contains(&action) || WRITE.contains(&action)),
                "dbAdmin" => here && DB_ADMIN.contains(&action),
                "dbOwner" => here && (READ.contains(&action) || WRITE.contains(&action) || DB_ADMIN.contains(&action)),
                "readAnyDatabase" => READ.contains(&action),
                "readWriteAnyDatabase" => READ.contains(&action) || WRITE.contains(&action),
                "dbAdminAnyDatabase" => DB_ADMIN.contains(&action),
                "clusterMonitor" => MONITOR.contains(&action),
                "atlasAdmin" | "root" => true,
                _ => false,
            }
        })
    }
}

/// One client connection: who logged in, and a login under way.
#[derive(Default)]
struct Session {
    user: Option<(String, String)>,
    /// (db, user, client-first-bare, server-first, nonce)
    scram: Option<(String, String, String, String, String)>,
}

/// The privilege action a command needs (docs "Privilege Actions"), on its database.
fn action_of(name: &str, cmd: &Document) -> Option<&'static str> {
    Some(match name {
        "find" | "count" | "getMore" => "find",
        "listIndexes" => "listIndexes",
        "listCollections" => "listCollections",
        "insert" => "insert",
        "update" => "update",
        "delete" => "remove",
        "create" => "createCollection",
        "createIndexes" => "createIndex",
        "dropIndexes" => "dropIndex",
        "collMod" => "collMod",
        "currentOp" => "inprog",
        "aggregate" => {
            match cmd.get_array("pipeline").ok().and_then(|p| p.first()).and_then(Bson::as_document).and_then(|s| s.keys().next()) {
                Some(s) if s == "$indexStats" => "indexStats",
                Some(s) if s == "$collStats" => "collStats",
                _ => "find",
            }
        }
        _ => return None,
    })
}

impl std::fmt::Debug for MockState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MockState({} collections)", self.collections.len())
    }
}

/// An index build that has not finished. listIndexes shows its index like a ready one
/// (jstests/noPassthrough/list_indexes_ready_and_in_progress.js: without `includeBuildUUIDs`
/// an unfinished index looks ready), and `currentOp` shows the `createIndexes` command that
/// runs it (jstests/noPassthrough/libs/index_build.js, `getIndexBuildOpId`: `op: "command"`,
/// `command.createIndexes`, `command.indexes[].name`).
#[derive(Clone)]
pub struct Build {
    pub ns: String,
    pub index: Document,
    pub opid: i64,
    /// Keys scanned so far and in all (`progress` in currentOp).
    pub done: i64,
    pub total: i64,
}

pub struct MongoMock {
    pub uri: String,
    pub state: Arc<Mutex<MockState>>,
}

const IGNORED: &[&str] = &["hello", "isMaster", "ismaster", "ping", "endSessions", "buildInfo", "getParameter", "currentOp", "killCursors"];

/// A batch holds at most this many bytes of documents (server: a reply batch is capped at
/// 16 MiB, "find" command docs, "Cursor Batches").
const BATCH_BYTES: usize = 16 * 1024 * 1024;

fn lock(state: &Mutex<MockState>) -> std::sync::MutexGuard<'_, MockState> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

impl MongoMock {
    /// Listens on a free loopback port.
    pub async fn start() -> MongoMock {
        Self::listen("127.0.0.1:0").await.unwrap_or_else(|e| panic!("the MongoDB mock cannot listen: {e}"))
    }

    /// Listens on `addr` and serves in the background of the current runtime.
    pub async fn listen(addr: &str) -> std::io::Result<MongoMock> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let port = listener.local_addr()?.port();
        let state: Arc<Mutex<MockState>> = Default::default();
        let s = state.clone();
        tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else { return };
                let s = s.clone();
                tokio::spawn(async move {
                    let _ = serve(sock, s).await;
                });
            }
        });
        Ok(MongoMock { uri: format!("mongodb://127.0.0.1:{port}/?directConnection=true&serverSelectionTimeoutMS=5000"), state })
    }

    /// How many commands it received in all (the handshake included).
    pub fn received(&self) -> usize {
        lock(&self.state).commands.len()
    }

    /// Commands of the given names, in order.
    pub fn sent(&self, names: &[&str]) -> Vec<Document> {
        lock(&self.state).commands.iter().filter(|c| c.keys().next().is_some_and(|k| names.contains(&k.as_str()))).cloned().collect()
    }

    pub fn mutating(&self) -> Vec<Document> {
        self.sent(&["createIndexes", "collMod", "dropIndexes"])
    }

    /// Adds an index to `db.collection` (made with its `_id_` index if new).
    pub fn add_index(&self, ns: &str, index: Document) {
        let mut st = lock(&self.state);
        st.collections.entry(ns.to_string()).or_default().indexes.push(index);
    }

    /// Inserts documents into `db.collection` as a client would (no checks).
    pub fn insert(&self, ns: &str, docs: impl IntoIterator<Item = Document>) {
        let mut st = lock(&self.state);
        let c = st.collections.entry(ns.to_string()).or_default();
        for d in docs {
            let _ = insert_one(c, d);
        }
    }

    /// Fails every `createIndexes` that holds this index, until `clear_failures`.
    pub fn fail_index(&self, name: &str, code: i32, code_name: &str) {
        lock(&self.state).fail_index.insert(name.to_string(), (code, code_name.to_string()));
    }

    pub fn clear_failures(&self) {
        let mut st = lock(&self.state);
        st.fail_index.clear();
        st.fail_next.clear();
    }

    /// Keeps only the documents of `db.collection` that `keep` accepts (a copy cut short).
    pub fn retain(&self, ns: &str, keep: impl Fn(&Document) -> bool) {
        let mut st = lock(&self.state);
        if let Some(c) = st.collections.get_mut(ns) {
            let gone: Vec<u64> = c.docs.iter().filter(|(_, d)| !keep(d)).map(|(k, _)| *k).collect();
            for k in gone {
                if let Some(d) = c.docs.remove(&k) {
                    c.ids.remove(&id_key(d.get("_id")));
                }
            }
        }
    }

    /// Starts an index build on `db.collection` that does not finish until `finish_builds`
    /// (as one another client started, or one poactl left running).
    pub fn hold_build(&self, ns: &str, index: Document, done: i64, total: i64) {
        let mut st = lock(&self.state);
        st.collections.entry(ns.to_string()).or_default();
        st.next_op += 1;
        let opid = st.next_op;
        st.builds.push(Build { ns: ns.to_string(), index, opid, done, total });
    }

    /// Finishes the held builds: their indexes become ready.
    pub fn finish_builds(&self) {
        let mut st = lock(&self.state);
        for b in std::mem::take(&mut st.builds) {
            let mut stored = doc! {"v": 2};
            stored.extend(b.index);
            st.collections.entry(b.ns).or_default().indexes.push(stored);
        }
    }

    /// Makes every `createIndexes` take this long (see `MockState::build_delay`).
    pub fn set_build_delay(&self, delay: std::time::Duration) {
        lock(&self.state).build_delay = Some(delay);
    }

    /// Answers `hello` as a member of replica set `set` whose data-bearing members are
    /// `hosts` (this one first).
    pub fn set_replica_set(&self, set: &str, hosts: &[String]) {
        let me = self.uri.strip_prefix("mongodb://").and_then(|r| r.split('/').next()).unwrap_or("").to_string();
        lock(&self.state).replica_set = Some((set.to_string(), me, hosts.to_vec()));
    }

    /// The operations `$indexStats` says this member served with an index.
    pub fn set_index_ops(&self, ns: &str, name: &str, ops: i64) {
        lock(&self.state).index_ops.insert((ns.to_string(), name.to_string()), ops);
    }

    /// Turns access control on with these users (an empty list: nobody can log in).
    pub fn set_users(&self, users: Vec<MockUser>) {
        lock(&self.state).users = Some(users);
    }

    /// From now on, `command` is read and never answered (see `MockState::hold`).
    pub fn hold(&self, command: &str) {
        lock(&self.state).hold = Some(command.to_string());
    }

    pub fn fail_next(&self, command: &str, code: i32, code_name: &str) {
        lock(&self.state).fail_next.insert(command.to_string(), (code, code_name.to_string()));
    }

    pub fn index(&self, ns: &str, name: &str) -> Option<Document> {
        lock(&self.state).collections.get(ns)?.indexes.iter().find(|i| i.get_str("name").ok() == Some(name)).cloned()
    }

    /// A copy of `db.collection`, if it exists.
    /// A collection's documents as a client reads them back (strings that are not UTF-8 as
    /// the bytes they were sent as).
    pub fn stored_bytes(&self, ns: &str) -> Vec<Vec<u8>> {
        let docs: Vec<Document> = self.collection(ns).map(|c| c.documents().cloned().collect()).unwrap_or_default();
        docs.iter().map(|d| super::mongo_bytes::unmarked(&mongodb::bson::to_vec(d).unwrap_or_default())).collect()
    }

    pub fn collection(&self, ns: &str) -> Option<Collection> {
        lock(&self.state).collections.get(ns).cloned()
    }
}

async fn serve(mut sock: tokio::net::TcpStream, state: Arc<Mutex<MockState>>) -> std::io::Result<()> {
    let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_string());
    let mut session = Session::default();
    loop {
        let mut header = [0u8; 16];
        sock.read_exact(&mut header).await?;
        let len = i32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let request_id = i32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        let op_code = i32::from_le_bytes([header[12], header[13], header[14], header[15]]);
        if !(21..=48_000_000).contains(&len) || op_code != 2013 {
            return Err(bad("the mock speaks OP_MSG only"));
        }
        let mut body = vec![0u8; len - 16];
        sock.read_exact(&mut body).await?;
        let command = parse_op_msg(&body).ok_or_else(|| bad("malformed OP_MSG"))?;
        if held(&lock(&state), &command) {
            // Never answered: what else comes is read and dropped until the client leaves.
            let mut sink = [0u8; 4096];
            while matches!(sock.read(&mut sink).await, Ok(n) if n > 0) {}
            return Ok(());
        }
        if let Some(reply) = access(&state, &mut session, &command) {
            write_reply(&mut sock, request_id, &reply).await?;
            continue;
        }
        let delay = lock(&state).build_delay;
        if let Some(delay) = delay.filter(|_| command.keys().next().map(String::as_str) == Some("createIndexes")) {
            let ns = format!("{}.{}", command.get_str("$db").unwrap_or("test"), command.get_str("createIndexes").unwrap_or(""));
            let ops: Vec<i64> = {
                let mut st = lock(&state);
                let total = st.collections.get(&ns).map_or(0, |c| c.docs.len() as i64);
                let mut ops = Vec::new();
                for ix in command.get_array("indexes").cloned().unwrap_or_default() {
                    if let Bson::Document(index) = ix {
                        st.next_op += 1;
                        let opid = st.next_op;
                        st.builds.push(Build { ns: ns.clone(), index, opid, done: 0, total });
                        ops.push(opid);
                    }
                }
                ops
            };
            tokio::time::sleep(delay).await;
            lock(&state).builds.retain(|b| !ops.contains(&b.opid));
        }
        let reply = answer(&state, command);
        write_reply(&mut sock, request_id, &reply).await?;
    }
}

async fn write_reply(sock: &mut tokio::net::TcpStream, request_id: i32, reply: &Document) -> std::io::Result<()> {
    let mut reply_bytes = Vec::new();
    reply.to_writer(&mut reply_bytes).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))?;
    let reply_bytes = super::mongo_bytes::unmarked(&reply_bytes);
    let total = 16 + 4 + 1 + reply_bytes.len();
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&(total as i32).to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes());
    out.extend_from_slice(&request_id.to_le_bytes());
    out.extend_from_slice(&2013i32.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.push(0);
    out.extend_from_slice(&reply_bytes);
    sock.write_all(&out).await
}

fn held(st: &MockState, cmd: &Document) -> bool {
    let Some(hold) = st.hold.as_deref() else { return false };
    let name = cmd.keys().next().map(String::as_str).unwrap_or("");
    name == hold || (hold == "hello" && name.eq_ignore_ascii_case("ismaster"))
}

/// Access control, when the mock has users: the SCRAM-SHA-256 conversation (RFC 5802, RFC
/// 7677; the driver's side is mongodb src/client/auth/scram.rs), then each command checked
/// against the user's roles. `None`: go on and answer the command.
///
/// - Only the handshake runs before login: hello, ping, buildInfo and the SASL commands
///   (their `requiresAuth()` is false in the server, src/mongo/db/commands/generic.cpp and
///   hello/buildinfo); anything else is Unauthorized (13) "requires authentication".
/// - An unknown user, a wrong password or a mechanism the user has no credentials for is
///   AuthenticationFailed (18), with the server's one message: "Authentication failed."
///   (it never says which part was wrong).
/// - A command the user's roles do not grant is Unauthorized (13) "not authorized on DB to
///   execute command".
fn access(state: &Arc<Mutex<MockState>>, session: &mut Session, cmd: &Document) -> Option<Document> {
    let name = cmd.keys().next().cloned().unwrap_or_default();
    let db = cmd.get_str("$db").unwrap_or("test").to_string();
    let st = lock(state);
    let users = st.users.as_ref()?;
    let failed = || error(18, "AuthenticationFailed", "Authentication failed.");
    let payload = |c: &Document| match c.get("payload") {
        Some(Bson::Binary(b)) => String::from_utf8(b.bytes.clone()).ok(),
        Some(Bson::String(s)) => Some(s.clone()),
        _ => None,
    };
    let binary =
        |s: String| Bson::Binary(mongodb::bson::Binary { subtype: mongodb::bson::spec::BinarySubtype::Generic, bytes: s.into_bytes() });
    let b64 = |b: &[u8]| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, b);
    match name.as_str() {
        "hello" | "isMaster" | "ismaster" | "ping" | "buildInfo" | "endSessions" => None,
        "saslStart" => {
            if cmd.get_str("mechanism") != Ok("SCRAM-SHA-256") {
                return Some(failed());
            }
            let first = payload(cmd)?;
            let bare = first.strip_prefix("n,,")?.to_string();
            let user = bare.split(',').find_map(|p| p.strip_prefix("n="))?.replace("=2C", ",").replace("=3D", "=");
            let client_nonce = bare.split(',').find_map(|p| p.strip_prefix("r="))?.to_string();
            let Some(u) = users.iter().find(|u| u.db == db && u.name == user) else { return Some(failed()) };
            let nonce = format!("{client_nonce}{}", b64(&fastrand::u64(..).to_le_bytes()));
            let server_first = format!("r={nonce},s={},i={SCRAM_ITERATIONS}", b64(&u.salt));
            session.scram = Some((db, user, bare, server_first.clone(), nonce));
            Some(doc! {"conversationId": 1, "done": false, "payload": binary(server_first), "ok": 1.0})
        }
        "saslContinue" => {
            let Some((udb, user, bare, server_first, nonce)) = session.scram.take() else { return Some(failed()) };
            let Some(u) = users.iter().find(|u| u.db == udb && u.name == user) else { return Some(failed()) };
            let last = payload(cmd)?;
            let (without_proof, proof) = last.rsplit_once(",p=")?;
            if without_proof.split(',').find_map(|p| p.strip_prefix("r=")) != Some(nonce.as_str()) {
                return Some(failed());
            }
            let auth_message = format!("{bare},{server_first},{without_proof}");
            let client_key = hmac256(&u.salted_password, b"Client Key");
            use sha2::Digest;
            let stored_key = sha2::Sha256::digest(&client_key).to_vec();
            let signature = hmac256(&stored_key, auth_message.as_bytes());
            let proof = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, proof).ok()?;
            let recovered: Vec<u8> = proof.iter().zip(&signature).map(|(p, s)| p ^ s).collect();
            if proof.len() != signature.len() || sha2::Sha256::digest(&recovered).to_vec() != stored_key {
                return Some(failed());
            }
            let server_key = hmac256(&u.salted_password, b"Server Key");
            let verifier = b64(&hmac256(&server_key, auth_message.as_bytes()));
            session.user = Some((udb, user));
            Some(doc! {"conversationId": 1, "done": true, "payload": binary(format!("v={verifier}")), "ok": 1.0})
        }
        _ => {
            let Some((udb, uname)) = &session.user else {
                return Some(error(13, "Unauthorized", &format!("Command {name} requires authentication")));
            };
            let user = users.iter().find(|u| &u.db == udb && &u.name == uname)?;
            match action_of(&name, cmd) {
                Some(action) if !user.may(action, &db) => {
                    let on = if action == "inprog" { "admin".to_string() } else { db.clone() };
                    Some(error(13, "Unauthorized", &format!("not authorized on {on} to execute command {{ {name}: ... }}")))
                }
                _ => None,
            }
        }
    }
}

/// flagBits, then sections: kind 0 (the command), kind 1 (document sequences, e.g. the
/// `documents` of an insert), as the OP_MSG spec lays them out.
fn parse_op_msg(body: &[u8]) -> Option<Document> {
    let int = |at: usize| -> Option<usize> { Some(i32::from_le_bytes(body.get(at..at + 4)?.try_into().ok()?) as usize) };
    let mut pos = 4;
    let mut command = Document::new();
    let mut sequences = Vec::new();
    while pos < body.len() {
        let kind = *body.get(pos)?;
        pos += 1;
        let size = int(pos)?;
        if kind == 0 {
            command = Document::from_reader(super::mongo_bytes::marked(body.get(pos..pos + size)?)?.as_slice()).ok()?;
            pos += size;
        } else {
            let end = pos + size;
            let mut p = pos + 4;
            let id_end = p + body.get(p..end)?.iter().position(|b| *b == 0)?;
            let id = String::from_utf8_lossy(&body[p..id_end]).to_string();
            p = id_end + 1;
            let mut docs = Vec::new();
            while p < end {
                let dsize = int(p)?;
                let marked = super::mongo_bytes::marked(body.get(p..p + dsize)?)?;
                let raw = mongodb::bson::RawDocument::from_bytes(&marked).ok()?;
                // Too deep to store: kept as a marker the insert refuses (parsing it whole
                // would recurse as deep as the document goes).
                docs.push(Bson::Document(if depth(raw, 1) > MAX_USER_DEPTH {
                    doc! {TOO_DEEP: true}
                } else {
                    Document::try_from(raw).ok()?
                }));
                p += dsize;
            }
            sequences.push((id, Bson::Array(docs)));
            pos = end;
        }
    }
    command.extend(sequences);
    Some(command)
}

/// The deepest document a server stores: maxBSONDepth (200) less 20 levels kept for the
/// system (src/mongo/bson/bson_depth.h; the jstest "documents with depth equal to the max user
/// BSON depth can be inserted" fails a deeper insert with ErrorCodes.Overflow, 15). Empty
/// subdocuments do not count (same jstest).
const MAX_USER_DEPTH: usize = 180;
const TOO_DEEP: &str = "$mock.tooDeep";

/// A document's nesting depth, counted up to one past the limit.
fn depth(d: &mongodb::bson::RawDocument, at: usize) -> usize {
    let mut deepest = if d.is_empty() { at - 1 } else { at };
    if at > MAX_USER_DEPTH {
        return at;
    }
    for (_, v) in d.iter().flatten() {
        let inner = match v {
            mongodb::bson::RawBsonRef::Document(x) => depth(x, at + 1),
            mongodb::bson::RawBsonRef::Array(a) => mongodb::bson::RawDocument::from_bytes(a.as_bytes()).map_or(0, |x| depth(x, at + 1)),
            _ => 0,
        };
        deepest = deepest.max(inner);
    }
    deepest
}

pub(super) fn error(code: i32, name: &str, msg: &str) -> Document {
    doc! {"ok": 0.0, "code": code, "codeName": name, "errmsg": msg}
}

/// What the log keeps of a command: writes keep their document count, not the documents.
fn recorded(cmd: &Document) -> Document {
    let mut r = cmd.clone();
    for k in ["$db", "lsid", "$clusterTime", "$readPreference", "txnNumber"] {
        r.remove(k);
    }
    for k in ["documents", "updates", "deletes"] {
        if let Ok(list) = r.get_array(k) {
            let n = list.len() as i32;
            if k != "updates" || n > 16 {
                r.insert(k, n);
            }
        }
    }
    r
}

fn answer(state: &Arc<Mutex<MockState>>, cmd: Document) -> Document {
    let name = cmd.keys().next().cloned().unwrap_or_default();
    let db = cmd.get_str("$db").unwrap_or("test").to_string();
    let mut st = lock(state);
    if !IGNORED.contains(&name.as_str()) {
        st.commands.push(recorded(&cmd));
    }
    if let Some((code, code_name)) = st.fail_next.remove(&name) {
        return error(code, &code_name, &format!("scripted {code_name} for {name}"));
    }
    let coll = cmd.get_str(&name).unwrap_or("").to_string();
    let ns = format!("{db}.{coll}");
    match name.as_str() {
        "hello" | "isMaster" | "ismaster" => {
            let mut reply = doc! {
                "helloOk": true, "isWritablePrimary": true, "ismaster": true, "maxBsonObjectSize": 16_777_216, "maxMessageSizeBytes": 48_000_000,
                "maxWriteBatchSize": 100_000, "localTime": mongodb::bson::DateTime::now(), "logicalSessionTimeoutMinutes": 30, "connectionId": 1,
                "minWireVersion": 0, "maxWireVersion": 21, "readOnly": false, "ok": 1.0,
            };
            if let Some((set, me, hosts)) = &st.replica_set {
                reply.insert("setName", set.as_str());
                reply.insert("me", me.as_str());
                reply.insert("hosts", hosts.clone());
                // The first host is the primary; the others are secondaries.
                let primary = hosts.first() == Some(me);
                reply.insert("isWritablePrimary", primary);
                reply.insert("ismaster", primary);
                reply.insert("secondary", !primary);
            }
            // The mechanisms of the user the client names (the auth spec's mechanism
            // negotiation; a server leaves the field out for an unknown user).
            if let (Ok(asked), Some(users)) = (cmd.get_str("saslSupportedMechs"), &st.users)
                && users.iter().any(|u| format!("{}.{}", u.db, u.name) == asked)
            {
                reply.insert("saslSupportedMechs", vec!["SCRAM-SHA-256"]);
            }
            reply
        }
        "ping" | "endSessions" => doc! {"ok": 1.0},
        "buildInfo" => {
            let (major, minor) = st.version.unwrap_or((7, 0));
            doc! {"version": format!("{major}.{minor}.0-mock"), "versionArray": [major, minor, 0, 0], "ok": 1.0}
        }
        "currentOp" => {
            // Top-level fields other than the command's own options filter the operations
            // (docs "currentOp": `db.adminCommand({currentOp: true, <filter>})`).
            let filter: Document = cmd
                .iter()
                .filter(|(k, _)| !k.starts_with('$') && *k != "currentOp" && *k != "lsid")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let ops: Vec<Bson> = st
                .builds
                .iter()
                .map(|b| {
                    let coll = b.ns.split_once('.').map(|(_, c)| c).unwrap_or("");
                    let pct = if b.total > 0 { b.done * 100 / b.total } else { 0 };
                    doc! {
                        "type": "op", "op": "command", "ns": &b.ns, "opid": b.opid, "active": true,
                        "command": {"createIndexes": coll, "indexes": [b.index.clone()]},
                        "msg": format!("Index Build: scanning collection Index Build: scanning collection: {}/{} {pct}%", b.done, b.total),
                        "progress": {"done": b.done, "total": b.total},
                    }
                })
                .filter(|d| matches(d, &filter).unwrap_or(false))
                .map(Bson::Document)
                .collect();
            doc! {"inprog": ops, "ok": 1.0}
        }
        "killCursors" => {
            let ids: Vec<i64> = cmd.get_array("cursors").map(|a| a.iter().filter_map(Bson::as_i64).collect()).unwrap_or_default();
            for id in &ids {
                st.cursors.remove(id);
            }
            doc! {"cursorsKilled": ids, "ok": 1.0}
        }
        "listIndexes" => match st.collections.get(&ns) {
            Some(c) => {
                let building = st.builds.iter().filter(|b| b.ns == ns).map(|b| {
                    let mut d = doc! {"v": 2};
                    d.extend(b.index.clone());
                    d
                });
                let first = c.indexes.iter().cloned().chain(building).map(Bson::Document).collect::<Vec<_>>();
                doc! {"cursor": {"id": 0i64, "ns": &ns, "firstBatch": first}, "ok": 1.0}
            }
            // listIndexes on a missing collection (server: list_indexes.cpp, NamespaceNotFound).
            None => error(26, "NamespaceNotFound", &format!("ns does not exist: {ns}")),
        },
        "listCollections" => {
            let filter = cmd.get_document("filter").cloned().unwrap_or_default();
            let prefix = format!("{db}.");
            let list: Vec<Document> = st
                .collections
                .iter()
                .filter_map(|(k, c)| Some((k.strip_prefix(&prefix)?, c)))
                .map(|(n, c)| {
                    // docs "listCollections": `type` is collection, view or timeseries.
                    let kind = if c.options.contains_key("timeseries") {
                        "timeseries"
                    } else if c.options.contains_key("viewOn") {
                        "view"
                    } else {
                        "collection"
                    };
                    doc! {"name": n, "type": kind, "options": c.options.clone(), "info": {"readOnly": false}}
                })
                .filter(|d| matches(d, &filter).unwrap_or(false))
                .collect();
            let ns = format!("{db}.$cmd.listCollections");
            cursor_reply(&mut st, &ns, list, &cmd, "firstBatch")
        }
        "create" => {
            if let Some(e) = invalid_namespace(&db, &coll) {
                return e;
            }
            if st.collections.contains_key(&ns) {
                // server: src/mongo/db/catalog/create_collection.cpp, NamespaceExists (48).
                return error(48, "NamespaceExists", &format!("Collection {ns} already exists."));
            }
            let mut c = Collection::default();
            for (k, v) in cmd.iter().skip(1).filter(|(k, _)| !k.starts_with('$') && !["lsid", "writeConcern"].contains(&k.as_str())) {
                c.options.insert(k.clone(), v.clone());
            }
            st.collections.insert(ns, c);
            doc! {"ok": 1.0}
        }
        "drop" => match st.collections.remove(&ns) {
            Some(c) => doc! {"nIndexesWas": c.indexes.len() as i32, "ns": &ns, "ok": 1.0},
            None => error(26, "NamespaceNotFound", "ns not found"),
        },
        "insert" => {
            if let Some(e) = invalid_namespace(&db, &coll) {
                return e;
            }
            // `bypassEmptyTsReplacement` is a field of insert since 5.0 (jstests/core/write/
            // empty_ts/bypass_empty_ts_replacement.js, `requires_fcv_50`); an older server's IDL
            // parser refuses it as unknown (40415, the code mongo-tools `common/db/
            // empty_timestamp.go` probes for).
            let bypass_ts = cmd.get_bool("bypassEmptyTsReplacement").unwrap_or(false);
            if cmd.contains_key("bypassEmptyTsReplacement") && st.version.unwrap_or((7, 0)) < (5, 0) {
                return error(40415, "Location40415", "BSON field 'insert.bypassEmptyTsReplacement' is an unknown field.");
            }
            let bypass_validation = cmd.get_bool("bypassDocumentValidation").unwrap_or(false);
            let c = st.collections.entry(ns.clone()).or_default();
            let ordered = cmd.get_bool("ordered").unwrap_or(true);
            let mut n = 0;
            let mut write_errors = Vec::new();
            for (i, d) in cmd.get_array("documents").cloned().unwrap_or_default().into_iter().enumerate() {
                let Bson::Document(mut d) = d else { continue };
                let refused = if d.contains_key(TOO_DEEP) {
                    Some((15, "Overflow", format!("cannot insert document because it exceeds {MAX_USER_DEPTH} levels of nesting")))
                } else if let Some(size) = mongodb::bson::to_vec(&d).ok().map(|b| b.len()).filter(|n| *n > MAX_USER_SIZE) {
                    // server src/mongo/db/ops/insert.cpp, fixDocumentForInsert: a document over
                    // BSONObjMaxUserSize (16 MiB) is BSONObjectTooLarge (10).
                    Some((
                        10,
                        "BSONObjectTooLarge",
                        format!("object to insert too large. size in bytes: {size}, max size: {MAX_USER_SIZE}"),
                    ))
                } else {
                    validate(c, &d, bypass_validation).err()
                };
                if let Some((code, name, msg)) = refused {
                    write_errors.push(Bson::Document(doc! {"index": i as i32, "code": code, "codeName": name, "errmsg": msg}));
                    if ordered {
                        break;
                    }
                    continue;
                }
                if !bypass_ts {
                    replace_empty_timestamps(&mut d);
                }
                match insert_one(c, d) {
                    Ok(()) => n += 1,
                    Err(e) => {
                        write_errors.push(Bson::Document(duplicate_error(i as i32, &ns, &e)));
                        // An ordered insert stops at its first error; an unordered one goes on
                        // (docs: "insert" command, `ordered`).
                        if ordered {
                            break;
                        }
                    }
                }
            }
            let mut reply = doc! {"n": n, "ok": 1.0};
            if !write_errors.is_empty() {
                reply.insert("writeErrors", write_errors);
            }
            reply
        }
        "find" => {
            let filter = cmd.get_document("filter").cloned().unwrap_or_default();
            let Some(c) = st.collections.get(&ns) else {
                // A find on a missing collection is an empty result, not an error.
                return cursor_reply(&mut st, &ns, Vec::new(), &cmd, "firstBatch");
            };
            let mut found = Vec::new();
            // `{_id: v}` and `{_id: {$in: [...]}}` go through the `_id` index, as on a server
            // (the planner's IDHACK and index bounds), so a resume is not quadratic here.
            let by_id: Option<Vec<&Bson>> = match (filter.len(), filter.get("_id")) {
                (1, Some(Bson::Document(ops))) if ops.len() == 1 && ops.contains_key("$in") => {
                    ops.get_array("$in").ok().map(|a| a.iter().collect())
                }
                (1, Some(v)) if !matches!(v, Bson::Document(_) | Bson::Array(_)) => Some(vec![v]),
                _ => None,
            };
            match by_id {
                Some(ids) => {
                    let mut seqs: Vec<u64> = ids.into_iter().filter_map(|v| c.ids.get(&id_key(Some(v))).copied()).collect();
                    seqs.sort_unstable();
                    seqs.dedup();
                    found.extend(seqs.into_iter().filter_map(|k| c.docs.get(&k).cloned()));
                }
                None => {
                    for d in c.docs.values() {
                        match matches(d, &filter) {
                            Ok(true) => found.push(d.clone()),
                            Ok(false) => {}
                            Err(e) => return error(2, "BadValue", &e),
                        }
                    }
                }
            }
            if let Ok(sort) = cmd.get_document("sort") {
                if sort.keys().any(|k| k != "_id") {
                    return error(2, "BadValue", "the mock sorts by _id only");
                }
                let desc = sort.get("_id").and_then(Bson::as_i32).is_some_and(|v| v < 0);
                found.sort_by(|a, b| cmp_bson(a.get("_id"), b.get("_id")));
                if desc {
                    found.reverse();
                }
            }
            if let Some(limit) = cmd.get("limit").and_then(as_i64).filter(|l| *l > 0) {
                found.truncate(limit as usize);
            }
            if let Ok(proj) = cmd.get_document("projection") {
                found = found.into_iter().map(|d| project(&d, proj)).collect();
            }
            cursor_reply(&mut st, &ns, found, &cmd, "firstBatch")
        }
        "getMore" => {
            let id = cmd.get_i64("getMore").unwrap_or(0);
            let Some((cns, rest)) = st.cursors.remove(&id) else {
                return error(43, "CursorNotFound", &format!("cursor id {id} not found"));
            };
            let batch = cmd.get("batchSize").and_then(as_i64).unwrap_or(i64::MAX);
            let (now, later) = split_batch(rest, batch);
            let next = if later.is_empty() {
                0
            } else {
                st.cursors.insert(id, (cns.clone(), later));
                id
            };
            doc! {"cursor": {"id": next, "ns": cns, "nextBatch": now.into_iter().map(Bson::Document).collect::<Vec<_>>()}, "ok": 1.0}
        }
        "count" => {
            let filter = cmd.get_document("query").cloned().unwrap_or_default();
            let n = st.collections.get(&ns).map_or(0, |c| c.docs.values().filter(|d| matches(d, &filter).unwrap_or(false)).count());
            doc! {"n": n as i64, "ok": 1.0}
        }
        "update" => {
            let any_upsert =
                cmd.get_array("updates").is_ok_and(|l| l.iter().any(|u| u.as_document().is_some_and(|u| u.get_bool("upsert") == Ok(true))));
            if any_upsert {
                st.collections.entry(ns.clone()).or_default();
            }
            let Some(c) = st.collections.get_mut(&ns) else { return doc! {"n": 0, "nModified": 0, "ok": 1.0} };
            let (mut n, mut modified) = (0i64, 0i64);
            let mut upserted = Vec::new();
            for (i, u) in cmd.get_array("updates").cloned().unwrap_or_default().into_iter().enumerate() {
                let Bson::Document(u) = u else { continue };
                let q = u.get_document("q").cloned().unwrap_or_default();
                let change = u.get_document("u").cloned().unwrap_or_default();
                let multi = u.get_bool("multi").unwrap_or(false);
                let keys = matching(c, &q);
                if keys.is_empty() && u.get_bool("upsert") == Ok(true) {
                    // An upsert inserts the query's equality fields with the update applied
                    // (docs: "update" command, `upsert`).
                    let mut d: Document = q
                        .iter()
                        .filter(|(k, v)| !k.starts_with('$') && !matches!(v, Bson::Document(o) if o.keys().any(|k| k.starts_with('$'))))
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect();
                    if let Err(e) = apply_update(&mut d, &change) {
                        return error(9, "FailedToParse", &e);
                    }
                    let id = d.get("_id").cloned();
                    if let Err(e) = insert_one(c, d) {
                        return doc! {"n": 0, "nModified": 0, "writeErrors": [duplicate_error(i as i32, &ns, &e)], "ok": 1.0};
                    }
                    n += 1;
                    upserted.push(Bson::Document(doc! {"index": i as i32, "_id": id.unwrap_or(Bson::Null)}));
                    continue;
                }
                for k in keys.into_iter().take(if multi { usize::MAX } else { 1 }) {
                    let Some(d) = c.docs.get_mut(&k) else { continue };
                    let before = d.clone();
                    if let Err(e) = apply_update(d, &change) {
                        return error(9, "FailedToParse", &e);
                    }
                    n += 1;
                    if *d != before {
                        modified += 1;
                    }
                }
            }
            let mut reply = doc! {"n": n, "nModified": modified, "ok": 1.0};
            if !upserted.is_empty() {
                reply.insert("upserted", upserted);
            }
            reply
        }
        "delete" => {
            let Some(c) = st.collections.get_mut(&ns) else { return doc! {"n": 0, "ok": 1.0} };
            let mut n = 0i64;
            for del in cmd.get_array("deletes").cloned().unwrap_or_default() {
                let Bson::Document(del) = del else { continue };
                let q = del.get_document("q").cloned().unwrap_or_default();
                let one = del.get("limit").and_then(as_i64) == Some(1);
                let keys = matching(c, &q);
                for k in keys.into_iter().take(if one { 1 } else { usize::MAX }) {
                    if let Some(d) = c.docs.remove(&k) {
                        c.ids.remove(&id_key(d.get("_id")));
                        n += 1;
                    }
                }
            }
            doc! {"n": n, "ok": 1.0}
        }
        "aggregate" => aggregate(&mut st, &ns, &cmd),
        "createIndexes" => {
            // A createIndexes fails as a whole: none of its indexes is built (docs
            // "createIndexes": the command builds all of them or none).
            let names: Vec<String> = cmd
                .get_array("indexes")
                .map(|l| l.iter().filter_map(|i| i.as_document()?.get_str("name").ok().map(str::to_string)).collect())
                .unwrap_or_default();
            if let Some((code, code_name)) = names.iter().find_map(|n| st.fail_index.get(n).cloned()) {
                return error(code, &code_name, &format!("scripted {code_name} for createIndexes"));
            }
            let building: Vec<Document> = st.builds.iter().filter(|b| b.ns == ns).map(|b| b.index.clone()).collect();
            let c = st.collections.entry(ns.clone()).or_default();
            let before = c.indexes.len() as i32;
            let created = before == 1 && c.docs.is_empty();
            let mut all: Vec<Document> = c.indexes.iter().cloned().chain(building).collect();
            let mut new = Vec::new();
            for ix in cmd.get_array("indexes").cloned().unwrap_or_default() {
                if let Bson::Document(mut d) = ix {
                    fill_collation(&mut d);
                    match conflict(&all, &d) {
                        Some(Conflict::Identical) => continue,
                        Some(Conflict::Refused(code, code_name, msg)) => return error(code, code_name, &msg),
                        None => {}
                    }
                    if d.get_bool("unique").unwrap_or(false)
                        && let Some(dup) = first_duplicate(c, &d)
                    {
                        // A unique build over duplicates fails with 11000 and names the key
                        // (server: index_builds_manager / duplicate_key_error_info.cpp).
                        return error(
                            11000,
                            "DuplicateKey",
                            &format!(
                                "Index build failed: E11000 duplicate key error collection: {ns} index: {} dup key: {dup}",
                                d.get_str("name").unwrap_or("")
                            ),
                        );
                    }
                    all.push(d.clone());
                    new.push(d);
                }
            }
            for d in new {
                let mut stored = doc! {"v": 2};
                stored.extend(d);
                c.indexes.push(stored);
            }
            let mut reply = doc! {"numIndexesBefore": before, "numIndexesAfter": c.indexes.len() as i32, "createdCollectionAutomatically": created, "ok": 1.0};
            if c.indexes.len() as i32 == before {
                reply.insert("note", "all indexes already exist");
            }
            reply
        }
        "collMod" => {
            let st_version = st.version.unwrap_or((7, 0));
            // collMod sets a collection's validator, its level and its action (docs "collMod":
            // validator, validationLevel, validationAction), as `create` does.
            let validation: Vec<(String, Bson)> = ["validator", "validationLevel", "validationAction"]
                .iter()
                .filter_map(|k| cmd.get(*k).map(|v| (k.to_string(), v.clone())))
                .collect();
            if !validation.is_empty() {
                let Some(c) = st.collections.get_mut(&ns) else {
                    return error(26, "NamespaceNotFound", &format!("ns does not exist: {ns}"));
                };
                for (k, v) in validation {
                    c.options.insert(k, v);
                }
                return doc! {"ok": 1.0};
            }
            let Ok(spec) = cmd.get_document("index") else {
                // A collMod of a collection that does not exist is NamespaceNotFound (server
                // src/mongo/db/catalog/coll_mod.cpp, "ns does not exist"), after the rights
                // check (`access` runs first, as the server checks authorization before running).
                if !st.collections.contains_key(&ns) {
                    return error(26, "NamespaceNotFound", &format!("ns does not exist: {ns}"));
                }
                return doc! {"ok": 1.0};
            };
            let name = spec.get_str("name").unwrap_or("").to_string();
            let dry_run = cmd.get_bool("dryRun").unwrap_or(false);
            let Some(c) = st.collections.get_mut(&ns) else { return error(26, "NamespaceNotFound", &format!("ns does not exist: {ns}")) };
            let Some(pos) = c.indexes.iter().position(|i| i.get_str("name").ok() == Some(name.as_str())) else {
                return error(27, "IndexNotFound", &format!("cannot find index {name} for ns {ns}"));
            };
            let ix = c.indexes[pos].clone();
            if let Some(v) = spec.get("expireAfterSeconds") {
                // jstests/core/ddl/collmod_convert_to_ttl.js: a string is TypeMismatch, a
                // negative value, a compound index or `_id_` InvalidOptions; converting a
                // regular index needs 5.1 (requires_fcv_51).
                let Some(secs) = as_i64(v).filter(|_| !matches!(v, Bson::String(_))) else {
                    return error(14, "TypeMismatch", "expireAfterSeconds must be a number");
                };
                let single = ix.get_document("key").map(|k| k.len() == 1).unwrap_or(false);
                let converts = !ix.contains_key("expireAfterSeconds");
                if secs < 0 || !single || name == "_id_" || (converts && st_version < (5, 1)) {
                    return error(72, "InvalidOptions", &format!("cannot set expireAfterSeconds on index {name}"));
                }
            }
            // jstests/core/ddl/collmod_convert_to_unique.js: dry run is for a unique conversion
            // alone; `unique` must be true (false is BadValue, a string TypeMismatch) and needs
            // `prepareUnique` first (InvalidOptions); duplicates fail it with
            // CannotConvertIndexToUnique (359, with the violations), dry run or not.
            if dry_run && (spec.len() != 2 || !spec.contains_key("unique")) {
                return error(72, "InvalidOptions", "dry run mode is only supported for a unique conversion alone");
            }
            if let Some(v) = spec.get("unique") {
                match v {
                    Bson::Boolean(true) => {}
                    Bson::Boolean(false) => return error(2, "BadValue", "unique: false is not supported; use forceNonUnique"),
                    _ => return error(14, "TypeMismatch", "unique must be a boolean"),
                }
                if ix.get_bool("prepareUnique") != Ok(true) {
                    return error(72, "InvalidOptions", "cannot make index unique with prepareUnique: false");
                }
                if let Some(dup) = first_duplicate(c, &ix) {
                    let mut e = error(
                        359,
                        "CannotConvertIndexToUnique",
                        "Cannot convert the index to unique. Please resolve conflicting documents before running collMod again.",
                    );
                    e.insert("violations", vec![Bson::Document(doc! {"ids": [], "keyValue": dup})]);
                    return e;
                }
                if dry_run {
                    return doc! {"ok": 1.0};
                }
            }
            let ix = &mut c.indexes[pos];
            for (k, v) in spec.iter().filter(|(k, _)| *k != "name") {
                match (k.as_str(), v) {
                    ("hidden", Bson::Boolean(false)) | ("prepareUnique", Bson::Boolean(false)) => {
                        ix.remove(k);
                    }
                    _ => {
                        ix.insert(k.clone(), v.clone());
                    }
                }
            }
            doc! {"ok": 1.0}
        }
        "dropIndexes" => {
            let name = cmd.get_str("index").unwrap_or("").to_string();
            // dropIndexes of an index still being built aborts its build (SERVER-37726).
            let building = st.builds.len();
            st.builds.retain(|b| !(b.ns == ns && b.index.get_str("name").ok() == Some(name.as_str())));
            if st.builds.len() != building {
                return doc! {"nIndexesWas": 0, "msg": "aborted index build", "ok": 1.0};
            }
            let c = st.collections.entry(ns.clone()).or_default();
            let before = c.indexes.len();
            c.indexes.retain(|i| i.get_str("name").ok() != Some(name.as_str()));
            if c.indexes.len() == before {
                return error(27, "IndexNotFound", &format!("index not found with name [{name}]"));
            }
            doc! {"nIndexesWas": before as i32, "ok": 1.0}
        }
        other => error(59, "CommandNotFound", &format!("no such command: '{other}'")),
    }
}

/// An index stores its collation whole: the fields a client leaves out come from the locale
/// (docs "Collation": caseLevel false, caseFirst "off", strength 3, numericOrdering false,
/// alternate "non-ignorable", maxVariable "punct", normalization false, backwards false
/// except "true for the fr_CA locale"; server src/mongo/db/query/collation/
/// collator_factory_icu.cpp fills them in). `locale: "simple"` stores no collation at all.
fn fill_collation(index: &mut Document) {
    let Ok(c) = index.get_document("collation").cloned() else { return };
    let locale = c.get_str("locale").unwrap_or("").to_string();
    if locale == "simple" {
        index.remove("collation");
        return;
    }
    let mut full = doc! {
        "locale": &locale, "caseLevel": false, "caseFirst": "off", "strength": 3, "numericOrdering": false,
        "alternate": "non-ignorable", "maxVariable": "punct", "normalization": false, "backwards": locale == "fr_CA",
    };
    for (k, v) in c {
        full.insert(k, v);
    }
    full.insert("version", "57.1");
    index.insert("collation", full);
}

enum Conflict {
    /// The same index exists already: createIndexes succeeds and builds nothing.
    Identical,
    Refused(i32, &'static str, String),
}

/// How a requested index meets the existing ones (server: index_catalog_impl.cpp,
/// `_doesSpecConflictWithExisting`; jstests/core/index_signature.js). Indexes with one key
/// pattern coexist when their signature differs: collation, partial filter, unique, sparse,
/// wildcard projection. Options outside the signature (expireAfterSeconds, text weights,
/// hidden) do not tell two indexes apart. Only one text index per collection
/// (CannotCreateIndex, 67: "only one text index per collection allowed").
fn conflict(existing: &[Document], want: &Document) -> Option<Conflict> {
    let name = want.get_str("name").unwrap_or("");
    let key = want.get_document("key").ok();
    let sig = |d: &Document| -> Vec<Bson> {
        let flag = |k: &str| Bson::Boolean(d.get_bool(k).unwrap_or(false));
        let collation = match d.get_document("collation") {
            Ok(c) if c.get_str("locale").ok() != Some("simple") => Bson::Document(c.clone()),
            _ => Bson::Null,
        };
        let opt = |k: &str| d.get(k).cloned().unwrap_or(Bson::Null);
        vec![collation, opt("partialFilterExpression"), flag("unique"), flag("sparse"), opt("wildcardProjection")]
    };
    let comparable = |d: &Document| -> Document {
        let mut c = d.clone();
        c.remove("v");
        c.remove("ns");
        c.remove("background");
        c
    };
    let is_text = |d: &Document| d.get_document("key").is_ok_and(|k| k.values().any(|v| v.as_str() == Some("text")));
    for e in existing {
        let same_name = e.get_str("name").ok() == Some(name);
        let same_key = e.get_document("key").ok() == key;
        if same_name && same_key && comparable(e) == comparable(want) {
            return Some(Conflict::Identical);
        }
        if same_name {
            return Some(Conflict::Refused(
                if same_key && sig(e) == sig(want) { 85 } else { 86 },
                if same_key && sig(e) == sig(want) { "IndexOptionsConflict" } else { "IndexKeySpecsConflict" },
                format!(
                    "An existing index has the same name as the requested index. When index names are not specified, they are auto generated and can cause conflicts. Requested index: {want}, existing index: {e}"
                ),
            ));
        }
        if same_key && sig(e) == sig(want) {
            return Some(Conflict::Refused(
                85,
                "IndexOptionsConflict",
                format!("Index already exists with a different name: {}", e.get_str("name").unwrap_or("")),
            ));
        }
        if is_text(e) && is_text(want) {
            return Some(Conflict::Refused(
                67,
                "CannotCreateIndex",
                format!("only one text index per collection allowed, found existing text index \"{}\"", e.get_str("name").unwrap_or("")),
            ));
        }
    }
    None
}

/// The documents a write's filter selects, through the `_id` index when it names one `_id`.
fn matching(c: &Collection, q: &Document) -> Vec<u64> {
    match q.get("_id") {
        Some(v) if !matches!(v, Bson::Document(_) | Bson::Array(_)) => c
            .ids
            .get(&id_key(Some(v)))
            .filter(|k| c.docs.get(k).is_some_and(|d| matches(d, q).unwrap_or(false)))
            .into_iter()
            .copied()
            .collect(),
        _ => c.docs.iter().filter(|(_, d)| matches(d, q).unwrap_or(false)).map(|(k, _)| *k).collect(),
    }
}

fn as_i64(v: &Bson) -> Option<i64> {
    match v {
        Bson::Int32(i) => Some(i64::from(*i)),
        Bson::Int64(i) => Some(*i),
        Bson::Double(f) => Some(*f as i64),
        _ => None,
    }
}

/// Splits a result into the batch sent now and the rest kept for `getMore`.
fn split_batch(mut docs: Vec<Document>, batch: i64) -> (Vec<Document>, Vec<Document>) {
    let mut bytes = 0;
    let mut take = 0;
    for d in &docs {
        let size = mongodb::bson::to_vec(d).map(|v| v.len()).unwrap_or(0);
        if take as i64 >= batch || (take > 0 && bytes + size > BATCH_BYTES) {
            break;
        }
        bytes += size;
        take += 1;
    }
    let later = docs.split_off(take);
    (docs, later)
}

/// The first batch of a cursor (101 documents unless `batchSize` says otherwise, the server's
/// default: docs "find" command, `batchSize`), the rest kept under a cursor id.
fn cursor_reply(st: &mut MockState, ns: &str, docs: Vec<Document>, cmd: &Document, key: &str) -> Document {
    let batch =
        cmd.get("batchSize").and_then(as_i64).or_else(|| cmd.get_document("cursor").ok()?.get("batchSize").and_then(as_i64)).unwrap_or(101);
    let (now, later) = split_batch(docs, batch);
    let id = if later.is_empty() {
        0
    } else {
        st.next_cursor += 1;
        let id = st.next_cursor;
        st.cursors.insert(id, (ns.to_string(), later));
        id
    };
    doc! {"cursor": {"id": id, "ns": ns, key: now.into_iter().map(Bson::Document).collect::<Vec<_>>()}, "ok": 1.0}
}

fn aggregate(st: &mut MockState, ns: &str, cmd: &Document) -> Document {
    let pipeline = cmd.get_array("pipeline").cloned().unwrap_or_default();
    let first = pipeline.first().and_then(Bson::as_document).cloned().unwrap_or_default();
    let stage = first.keys().next().cloned().unwrap_or_default();
    let docs: Vec<Document> = match stage.as_str() {
        "$indexStats" => st
            .collections
            .get(ns)
            .map(|c| {
                c.indexes
                    .iter()
                    .map(|i| {
                        let name = i.get_str("name").unwrap_or("").to_string();
                        let ops = st.index_ops.get(&(ns.to_string(), name.clone())).copied().unwrap_or(0);
                        doc! {"name": name, "key": i.get_document("key").cloned().unwrap_or_default(), "accesses": {"ops": ops, "since": mongodb::bson::DateTime::now()}}
                    })
                    .collect()
            })
            .unwrap_or_default(),
        "$collStats" => match st.collections.get(ns) {
            Some(c) => {
                let size: i64 = c.docs.values().map(|d| mongodb::bson::to_vec(d).map(|v| v.len() as i64).unwrap_or(0)).sum();
                let count = c.docs.len() as i64;
                vec![doc! {"ns": ns, "storageStats": {"size": size, "count": count, "avgObjSize": if count > 0 { size / count } else { 0 }, "storageSize": size}}]
            }
            None => Vec::new(),
        },
        // countDocuments: [{$match: filter}, {$group: {_id: 1, n: {$sum: 1}}}] (the driver's
        // CountDocuments spec), and {$skip}/{$limit} it may add.
        "$match" if pipeline.iter().skip(1).all(|s| s.as_document().is_some_and(|d| d.contains_key("$group") || d.contains_key("$skip") || d.contains_key("$limit"))) => {
            let filter = first.get_document("$match").cloned().unwrap_or_default();
            let n = st.collections.get(ns).map_or(0, |c| c.docs.values().filter(|d| matches(d, &filter).unwrap_or(false)).count());
            if n == 0 { Vec::new() } else { vec![doc! {"_id": 1, "n": n as i32}] }
        }
        other => return error(2, "BadValue", &format!("the mock does not run the aggregation stage {other}")),
    };
    cursor_reply(st, ns, docs, cmd, "firstBatch")
}

/// The `_id` value as a key: numbers compare by value across types in an index (docs:
/// "Comparison/Sort Order": 1, NumberLong(1) and 1.0 are the same key).
fn id_key(v: Option<&Bson>) -> Vec<u8> {
    let v = match v {
        Some(Bson::Int32(i)) => Bson::Double(f64::from(*i)),
        Some(Bson::Int64(i)) => Bson::Double(*i as f64),
        Some(v) => v.clone(),
        None => Bson::Null,
    };
    mongodb::bson::to_vec(&doc! {"k": v}).unwrap_or_default()
}

/// Inserts one document. The server puts `_id` first and adds one when it is missing
/// (server: src/mongo/db/ops/insert.cpp, fixDocumentForInsert). A second `_id` is error
/// 11000 on `_id_`, and so is a second key of any unique index.
fn insert_one(c: &mut Collection, mut d: Document) -> Result<(), (String, Document)> {
    let id = d.remove("_id").unwrap_or_else(|| Bson::ObjectId(mongodb::bson::oid::ObjectId::new()));
    let key = id_key(Some(&id));
    if c.ids.contains_key(&key) {
        return Err(("_id_".into(), doc! {"_id": id}));
    }
    let mut fixed = doc! {"_id": id};
    fixed.extend(d);
    // An index with `prepareUnique` refuses new duplicates too (collmod_convert_to_unique.js:
    // "'prepareUnique' ensures no new duplicates will be inserted").
    for ix in c.indexes.iter().filter(|i| i.get_bool("unique").unwrap_or(false) || i.get_bool("prepareUnique").unwrap_or(false)) {
        let pattern = ix.get_document("key").cloned().unwrap_or_default();
        let mine = key_values(&fixed, &pattern);
        if c.docs.values().any(|o| key_values(o, &pattern) == mine) {
            let mut kv = Document::new();
            for (k, v) in pattern.keys().zip(mine) {
                kv.insert(k.clone(), v);
            }
            return Err((ix.get_str("name").unwrap_or("").to_string(), kv));
        }
    }
    c.next += 1;
    c.ids.insert(key, c.next);
    c.docs.insert(c.next, fixed);
    Ok(())
}

/// A write error as the server reports a duplicate key (code 11000, `keyPattern`,
/// `keyValue`, the E11000 message; server: duplicate_key_error_info.cpp).
fn duplicate_error(index: i32, ns: &str, (name, kv): &(String, Document)) -> Document {
    let pattern: Document = kv.keys().map(|k| (k.clone(), Bson::Int32(1))).collect();
    doc! {"index": index, "code": 11000, "keyPattern": pattern, "keyValue": kv.clone(), "errmsg": format!("E11000 duplicate key error collection: {ns} index: {name} dup key: {kv}")}
}

fn key_values(d: &Document, pattern: &Document) -> Vec<Bson> {
    pattern.keys().map(|k| lookup(d, k).into_iter().next().cloned().unwrap_or(Bson::Null)).collect()
}

/// The first key value two documents share in a unique index: only the documents a partial
/// index holds (its filter) count, and a sparse one skips documents without any of its
/// fields (docs "Unique Indexes": unique partial and unique sparse indexes).
fn first_duplicate(c: &Collection, index: &Document) -> Option<Document> {
    let pattern = index.get_document("key").cloned().unwrap_or_default();
    let filter = index.get_document("partialFilterExpression").ok();
    let sparse = index.get_bool("sparse").unwrap_or(false);
    let mut seen = std::collections::HashSet::new();
    for d in c.docs.values() {
        if filter.is_some_and(|f| !matches(d, f).unwrap_or(false)) || (sparse && pattern.keys().all(|k| lookup(d, k).is_empty())) {
            continue;
        }
        let pattern = &pattern;
        let kv = key_values(d, pattern);
        let key = mongodb::bson::to_vec(&doc! {"k": kv.clone()}).unwrap_or_default();
        if !seen.insert(key) {
            return Some(pattern.keys().cloned().zip(kv).collect());
        }
    }
    None
}

/// The values a dotted path reaches, through arrays (docs: "Query on Embedded/Nested
/// Documents" and "Query an Array": `a.b` matches any element's `b`).
fn lookup<'d>(d: &'d Document, path: &str) -> Vec<&'d Bson> {
    let (head, rest) = match path.split_once('.') {
        Some((h, r)) => (h, Some(r)),
        None => (path, None),
    };
    let Some(v) = d.get(head) else { return Vec::new() };
    match rest {
        None => vec![v],
        Some(rest) => match v {
            Bson::Document(inner) => lookup(inner, rest),
            Bson::Array(items) => items.iter().filter_map(Bson::as_document).flat_map(|i| lookup(i, rest)).collect(),
            _ => Vec::new(),
        },
    }
}

/// Whether a value equals the query value, an array matching when it or any element does
/// (docs: "Query an Array").
fn value_eq(v: &Bson, want: &Bson) -> bool {
    v == want || matches!(v, Bson::Array(items) if items.iter().any(|i| i == want))
}

pub(super) fn matches(d: &Document, filter: &Document) -> Result<bool, String> {
    for (k, cond) in filter {
        if k == "$and" {
            for sub in cond.as_array().into_iter().flatten() {
                if !matches(d, sub.as_document().ok_or("$and takes documents")?)? {
                    return Ok(false);
                }
            }
            continue;
        }
        let found = lookup(d, k);
        let ok = match cond {
            Bson::Document(ops) if ops.keys().next().is_some_and(|o| o.starts_with('$')) => {
                let mut all = true;
                for (op, arg) in ops {
                    all &= match op.as_str() {
                        "$eq" => found.iter().any(|v| value_eq(v, arg)),
                        "$in" => arg.as_array().ok_or("$in needs an array")?.iter().any(|w| found.iter().any(|v| value_eq(v, w))),
                        "$exists" => found.is_empty() != arg.as_bool().unwrap_or(true),
                        other => return Err(format!("the mock does not support the query operator {other}")),
                    };
                }
                all
            }
            Bson::Null => found.is_empty() || found.iter().any(|v| matches!(v, Bson::Null)),
            want => found.iter().any(|v| value_eq(v, want)),
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

/// An inclusion projection (`{a: 1}`; `_id` kept unless `_id: 0`).
fn project(d: &Document, proj: &Document) -> Document {
    let include_id = proj.get("_id").and_then(as_i64).is_none_or(|v| v != 0) && proj.get_bool("_id").unwrap_or(true);
    let fields: Vec<&String> = proj.keys().filter(|k| *k != "_id").collect();
    if fields.is_empty() {
        let mut out = d.clone();
        if !include_id {
            out.remove("_id");
        }
        return out;
    }
    let mut out = Document::new();
    for (k, v) in d {
        if (k == "_id" && include_id) || fields.iter().any(|f| f.split('.').next() == Some(k.as_str())) {
            out.insert(k.clone(), v.clone());
        }
    }
    out
}

/// `$set` on top-level or dotted paths through documents, or a replacement document (which
/// keeps `_id`).
fn apply_update(d: &mut Document, change: &Document) -> Result<(), String> {
    if !change.keys().any(|k| k.starts_with('$')) {
        let id = d.get("_id").cloned();
        *d = change.clone();
        if let Some(id) = id {
            d.insert("_id", id);
        }
        return Ok(());
    }
    for (op, fields) in change {
        if op != "$set" {
            return Err(format!("the mock does not support the update operator {op}"));
        }
        for (path, v) in fields.as_document().ok_or("$set takes a document")? {
            let mut target = &mut *d;
            let parts: Vec<&str> = path.split('.').collect();
            for p in &parts[..parts.len() - 1] {
                if !matches!(target.get(*p), Some(Bson::Document(_))) {
                    target.insert(*p, Document::new());
                }
                let Some(Bson::Document(inner)) = target.get_mut(*p) else { return Err(format!("cannot set {path}")) };
                target = inner;
            }
            target.insert(parts[parts.len() - 1], v.clone());
        }
    }
    Ok(())
}

/// `_id` order for sorting: numbers by value, then strings, then ObjectIds by bytes (a
/// subset of docs "Comparison/Sort Order").
fn cmp_bson(a: Option<&Bson>, b: Option<&Bson>) -> std::cmp::Ordering {
    fn rank(v: Option<&Bson>) -> (u8, f64, Vec<u8>) {
        match v {
            Some(Bson::Int32(i)) => (1, f64::from(*i), Vec::new()),
            Some(Bson::Int64(i)) => (1, *i as f64, Vec::new()),
            Some(Bson::Double(f)) => (1, *f, Vec::new()),
            Some(Bson::String(s)) => (2, 0.0, s.as_bytes().to_vec()),
            Some(Bson::ObjectId(o)) => (4, 0.0, o.bytes().to_vec()),
            Some(other) => (9, 0.0, mongodb::bson::to_vec(&doc! {"k": other.clone()}).unwrap_or_default()),
            None => (0, 0.0, Vec::new()),
        }
    }
    let (ra, rb) = (rank(a), rank(b));
    ra.0.cmp(&rb.0).then(ra.1.partial_cmp(&rb.1).unwrap_or(std::cmp::Ordering::Equal)).then(ra.2.cmp(&rb.2))
}
