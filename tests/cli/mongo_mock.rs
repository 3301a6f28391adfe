//! A scripted MongoDB wire-protocol peer (OP_MSG) for driver-level tests. It is a MOCK, not a
//! database: it answers the handshake and the index commands poactl sends from an in-memory
//! list of indexes, records every command, and can be told to fail the next command of a
//! name with a given error code. It proves which commands poactl sends and how it handles
//! server errors; it proves nothing about MongoDB's own behaviour.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use mongodb::bson::{Bson, Document, doc};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Default)]
pub struct MockState {
    /// collection -> its indexes, as `listIndexes` returns them.
    pub collections: BTreeMap<String, Vec<Document>>,
    /// Every command received (handshake, monitoring and session commands left out).
    pub commands: Vec<Document>,
    /// command name -> (code, codeName) for its next call.
    pub fail_next: HashMap<String, (i32, String)>,
}

pub struct MongoMock {
    pub uri: String,
    pub state: Arc<Mutex<MockState>>,
}

const IGNORED: &[&str] = &["hello", "isMaster", "ismaster", "ping", "endSessions", "buildInfo", "getParameter", "currentOp"];

impl MongoMock {
    pub async fn start() -> MongoMock {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
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
        MongoMock { uri: format!("mongodb://127.0.0.1:{port}/?directConnection=true&serverSelectionTimeoutMS=5000"), state }
    }

    /// Commands of the given names, in order.
    /// How many commands it received in all (the handshake included).
    pub fn received(&self) -> usize {
        self.state.lock().unwrap().commands.len()
    }

    pub fn sent(&self, names: &[&str]) -> Vec<Document> {
        self.state
            .lock()
            .unwrap()
            .commands
            .iter()
            .filter(|c| c.keys().next().is_some_and(|k| names.contains(&k.as_str())))
            .cloned()
            .collect()
    }

    pub fn mutating(&self) -> Vec<Document> {
        self.sent(&["createIndexes", "collMod", "dropIndexes"])
    }

    pub fn add_index(&self, coll: &str, index: Document) {
        let mut st = self.state.lock().unwrap();
        let list = st.collections.entry(coll.to_string()).or_insert_with(|| vec![doc! {"v": 2, "key": {"_id": 1}, "name": "_id_"}]);
        list.push(index);
    }

    pub fn fail_next(&self, command: &str, code: i32, code_name: &str) {
        self.state.lock().unwrap().fail_next.insert(command.to_string(), (code, code_name.to_string()));
    }

    pub fn index(&self, coll: &str, name: &str) -> Option<Document> {
        self.state.lock().unwrap().collections.get(coll)?.iter().find(|i| i.get_str("name").ok() == Some(name)).cloned()
    }
}

async fn serve(mut sock: tokio::net::TcpStream, state: Arc<Mutex<MockState>>) -> std::io::Result<()> {
    loop {
        let mut header = [0u8; 16];
        sock.read_exact(&mut header).await?;
        let len = i32::from_le_bytes(header[0..4].try_into().unwrap()) as usize;
        let request_id = i32::from_le_bytes(header[4..8].try_into().unwrap());
        let op_code = i32::from_le_bytes(header[12..16].try_into().unwrap());
        let mut body = vec![0u8; len - 16];
        sock.read_exact(&mut body).await?;
        assert_eq!(op_code, 2013, "the mock speaks OP_MSG only");
        // flagBits, then sections: kind 0 (the command), kind 1 (document sequences).
        let mut pos = 4;
        let mut command = Document::new();
        while pos < body.len() {
            let kind = body[pos];
            pos += 1;
            let size = i32::from_le_bytes(body[pos..pos + 4].try_into().unwrap()) as usize;
            if kind == 0 {
                command = Document::from_reader(&body[pos..pos + size]).unwrap();
                pos += size;
            } else {
                let end = pos + size;
                let mut p = pos + 4;
                let id_end = p + body[p..].iter().position(|b| *b == 0).unwrap();
                let id = String::from_utf8_lossy(&body[p..id_end]).to_string();
                p = id_end + 1;
                let mut docs = Vec::new();
                while p < end {
                    let dsize = i32::from_le_bytes(body[p..p + 4].try_into().unwrap()) as usize;
                    docs.push(Bson::Document(Document::from_reader(&body[p..p + dsize]).unwrap()));
                    p += dsize;
                }
                command.insert(id, Bson::Array(docs));
                pos = end;
            }
        }
        let reply = answer(&state, command);
        let mut reply_bytes = Vec::new();
        reply.to_writer(&mut reply_bytes).unwrap();
        let total = 16 + 4 + 1 + reply_bytes.len();
        let mut out = Vec::with_capacity(total);
        out.extend_from_slice(&(total as i32).to_le_bytes());
        out.extend_from_slice(&0i32.to_le_bytes());
        out.extend_from_slice(&request_id.to_le_bytes());
        out.extend_from_slice(&2013i32.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.push(0);
        out.extend_from_slice(&reply_bytes);
        sock.write_all(&out).await?;
    }
}

fn error(code: i32, name: &str, msg: &str) -> Document {
    doc! {"ok": 0.0, "code": code, "codeName": name, "errmsg": msg}
}

fn answer(state: &Arc<Mutex<MockState>>, cmd: Document) -> Document {
    let name = cmd.keys().next().cloned().unwrap_or_default();
    let db = cmd.get_str("$db").unwrap_or("test").to_string();
    let mut st = state.lock().unwrap();
    if !IGNORED.contains(&name.as_str()) {
        let mut recorded = cmd.clone();
        for k in ["$db", "lsid", "$clusterTime", "$readPreference"] {
            recorded.remove(k);
        }
        st.commands.push(recorded);
    }
    if let Some((code, code_name)) = st.fail_next.remove(&name) {
        return error(code, &code_name, &format!("scripted {code_name} for {name}"));
    }
    match name.as_str() {
        "hello" | "isMaster" | "ismaster" => doc! {
            "helloOk": true, "isWritablePrimary": true, "ismaster": true, "maxBsonObjectSize": 16_777_216, "maxMessageSizeBytes": 48_000_000,
            "maxWriteBatchSize": 100_000, "localTime": mongodb::bson::DateTime::now(), "logicalSessionTimeoutMinutes": 30, "connectionId": 1,
            "minWireVersion": 0, "maxWireVersion": 21, "readOnly": false, "ok": 1.0,
        },
        "ping" | "endSessions" => doc! {"ok": 1.0},
        "currentOp" => doc! {"inprog": [], "ok": 1.0},
        "listIndexes" => {
            let coll = cmd.get_str("listIndexes").unwrap_or("").to_string();
            match st.collections.get(&coll) {
                Some(list) => {
                    doc! {"cursor": {"id": 0i64, "ns": format!("{db}.{coll}"), "firstBatch": list.iter().cloned().map(Bson::Document).collect::<Vec<_>>()}, "ok": 1.0}
                }
                None => error(26, "NamespaceNotFound", &format!("ns does not exist: {db}.{coll}")),
            }
        }
        "aggregate" => {
            let coll = cmd.get_str("aggregate").unwrap_or("").to_string();
            let stats: Vec<Bson> = st
                .collections
                .get(&coll)
                .map(|l| l.iter().map(|i| Bson::Document(doc! {"name": i.get_str("name").unwrap_or(""), "key": i.get_document("key").cloned().unwrap_or_default(), "accesses": {"ops": 0i64, "since": mongodb::bson::DateTime::now()}})).collect())
                .unwrap_or_default();
            doc! {"cursor": {"id": 0i64, "ns": format!("{db}.{coll}"), "firstBatch": stats}, "ok": 1.0}
        }
        "createIndexes" => {
            let coll = cmd.get_str("createIndexes").unwrap_or("").to_string();
            let list = st.collections.entry(coll).or_insert_with(|| vec![doc! {"v": 2, "key": {"_id": 1}, "name": "_id_"}]);
            let before = list.len() as i32;
            for ix in cmd.get_array("indexes").cloned().unwrap_or_default() {
                if let Bson::Document(mut d) = ix {
                    let n = d.get_str("name").unwrap_or("").to_string();
                    if list
                        .iter()
                        .any(|e| e.get_str("name").ok() == Some(n.as_str()) && e.get_document("key").ok() != d.get_document("key").ok())
                    {
                        return error(
                            86,
                            "IndexKeySpecsConflict",
                            &format!("An existing index has the same name as the requested index. Requested index: {d}"),
                        );
                    }
                    let mut stored = doc! {"v": 2};
                    stored.extend(std::mem::take(&mut d));
                    list.push(stored);
                }
            }
            doc! {"numIndexesBefore": before, "numIndexesAfter": list.len() as i32, "createdCollectionAutomatically": before == 1, "ok": 1.0}
        }
        "collMod" => {
            let coll = cmd.get_str("collMod").unwrap_or("").to_string();
            let Ok(spec) = cmd.get_document("index") else { return doc! {"ok": 1.0} };
            let name = spec.get_str("name").unwrap_or("").to_string();
            let Some(ix) = st.collections.get_mut(&coll).and_then(|l| l.iter_mut().find(|i| i.get_str("name").ok() == Some(name.as_str())))
            else {
                return error(27, "IndexNotFound", &format!("cannot find index {name} for ns {db}.{coll}"));
            };
            for (k, v) in spec.iter().filter(|(k, _)| *k != "name") {
                match (k.as_str(), v) {
                    ("hidden", Bson::Boolean(false)) | ("unique", Bson::Boolean(false)) => {
                        ix.remove(k);
                    }
                    ("prepareUnique", _) => {}
                    _ => {
                        ix.insert(k.clone(), v.clone());
                    }
                }
            }
            doc! {"ok": 1.0}
        }
        "dropIndexes" => {
            let coll = cmd.get_str("dropIndexes").unwrap_or("").to_string();
            let name = cmd.get_str("index").unwrap_or("").to_string();
            let list = st.collections.entry(coll.clone()).or_default();
            let before = list.len();
            list.retain(|i| i.get_str("name").ok() != Some(name.as_str()));
            if list.len() == before {
                return error(27, "IndexNotFound", &format!("index not found with name [{name}]"));
            }
            doc! {"nIndexesWas": before as i32, "ok": 1.0}
        }
        other => error(59, "CommandNotFound", &format!("no such command: '{other}'")),
    }
}
