//! The index planner on `listIndexes` documents shaped exactly as MongoDB returns them. Each
//! fixture names the documentation page its shape follows.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};

use super::*;
use crate::spec::model::IndexSpec;

fn spec(yaml: &str) -> IndexSpec {
    let node = crate::spec::yaml::parse(&Arc::from("t.yaml"), yaml).unwrap();
    IndexSpec::deserialize(&node).unwrap_or_else(|e| panic!("{yaml}: {e}"))
}

fn provider() -> IndexProvider {
    IndexProvider {
        cli_uri: None,
        client: OnceCell::new(),
        options: Default::default(),
        members: OnceCell::new(),
        reachable: OnceCell::new(),
        lists: Default::default(),
        unread: Default::default(),
        version: OnceCell::new(),
        batches: Default::default(),
    }
}

/// (path, forces_replace) of the diff between a spec index and a live `listIndexes` entry.
fn plan(coll: &str, yaml: &str, live: Value) -> Vec<(String, bool)> {
    let ix = spec(yaml);
    let name = index_name(&ix);
    let d = Desired::new(Address::new(Kind::Index, format!("{coll}.{name}")), normalize::desired_attrs(coll, &name, &ix));
    let o = observed(coll, &live, &None, None);
    provider().diff(&d, &o).into_iter().map(|c| (c.path, c.forces_replace)).collect()
}

struct Case {
    reason: &'static str,
    /// The documentation page the live document's shape follows.
    source: &'static str,
    spec: &'static str,
    live: Value,
    want: Vec<(&'static str, bool)>,
}

fn cases() -> Vec<Case> {
    const LIST_INDEXES: &str = "https://www.mongodb.com/docs/manual/reference/command/listIndexes/";
    vec![
        Case {
            reason: "a unique single-field index matches",
            source: LIST_INDEXES,
            spec: "{ keys: { email: 1 }, unique: true }",
            live: json!({"v": 2, "key": {"email": 1}, "name": "email_1", "unique": true}),
            want: vec![],
        },
        Case {
            reason: "directions as int64 and double are the same index",
            source: "https://www.mongodb.com/docs/manual/reference/bson-types/ (NumberLong, Double)",
            spec: "{ keys: { rating: -1, totalRatings: -1 } }",
            live: json!({"v": 2, "key": {"rating": -1_i64, "totalRatings": -1.0}, "name": "rating_-1_totalRatings_-1"}),
            want: vec![],
        },
        Case {
            reason: "compound key order is part of the index",
            source: LIST_INDEXES,
            spec: "{ keys: { serviceType: 1, isAvailable: 1 }, name: serviceType_1_isAvailable_1 }",
            live: json!({"v": 2, "key": {"isAvailable": 1, "serviceType": 1}, "name": "serviceType_1_isAvailable_1"}),
            want: vec![("keys", true)],
        },
        Case {
            reason: "2dsphere: the index version MongoDB adds is not compared",
            source: "https://www.mongodb.com/docs/manual/core/indexes/index-types/geospatial/2dsphere/",
            spec: "{ keys: { location: 2dsphere } }",
            live: json!({"v": 2, "key": {"location": "2dsphere"}, "name": "location_2dsphere", "2dsphereIndexVersion": 3}),
            want: vec![],
        },
        Case {
            reason: "text indexes are listed as _fts/_ftsx with weights",
            source: "https://www.mongodb.com/docs/manual/core/indexes/index-types/index-text/",
            spec: "{ keys: { title: text, body: text }, weights: { title: 10 } }",
            live: json!({"v": 2, "key": {"_fts": "text", "_ftsx": 1}, "name": "title_text_body_text", "weights": {"body": 1, "title": 10}, "default_language": "english", "language_override": "language", "textIndexVersion": 3}),
            want: vec![],
        },
        Case {
            reason: "a text weight change needs a rebuild",
            source: "https://www.mongodb.com/docs/manual/core/indexes/index-types/index-text/",
            spec: "{ keys: { title: text, body: text }, weights: { title: 5 } }",
            live: json!({"v": 2, "key": {"_fts": "text", "_ftsx": 1}, "name": "title_text_body_text", "weights": {"body": 1, "title": 10}, "default_language": "english", "language_override": "language", "textIndexVersion": 3}),
            want: vec![("weights.title", true)],
        },
        Case {
            reason: "TTL in seconds, whatever the number type",
            source: "https://www.mongodb.com/docs/manual/core/index-ttl/",
            spec: "{ keys: { createdAt: 1 }, expire_after: 1h }",
            live: json!({"v": 2, "key": {"createdAt": 1}, "name": "createdAt_1", "expireAfterSeconds": 3600.0}),
            want: vec![],
        },
        Case {
            reason: "a TTL change is a collMod, not a rebuild",
            source: "https://www.mongodb.com/docs/manual/reference/command/collMod/#change-expiration-value-for-indexes",
            spec: "{ keys: { createdAt: 1 }, expire_after: 2h }",
            live: json!({"v": 2, "key": {"createdAt": 1}, "name": "createdAt_1", "expireAfterSeconds": 3600_i64}),
            want: vec![("expire_after_seconds", false)],
        },
        Case {
            reason: "adding a TTL to a plain index rebuilds it when the server version is unknown (from 5.1 it is a collMod)",
            source: "https://www.mongodb.com/docs/manual/core/index-ttl/",
            spec: "{ keys: { createdAt: 1 }, expire_after: 1h }",
            live: json!({"v": 2, "key": {"createdAt": 1}, "name": "createdAt_1"}),
            want: vec![("expire_after_seconds", true)],
        },
        Case {
            reason: "hidden is listed only when true; hiding is a collMod",
            source: "https://www.mongodb.com/docs/manual/core/index-hidden/",
            spec: "{ keys: { status: 1 }, hidden: true }",
            live: json!({"v": 2, "key": {"status": 1}, "name": "status_1"}),
            want: vec![("hidden", false)],
        },
        Case {
            reason: "making an index unique is a collMod (prepareUnique)",
            source: "https://www.mongodb.com/docs/manual/reference/command/collMod/#convert-an-existing-index-to-a-unique-index",
            spec: "{ keys: { email: 1 }, unique: true }",
            live: json!({"v": 2, "key": {"email": 1}, "name": "email_1"}),
            want: vec![("unique", false)],
        },
        Case {
            reason: "dropping uniqueness rebuilds",
            source: LIST_INDEXES,
            spec: "{ keys: { email: 1 } }",
            live: json!({"v": 2, "key": {"email": 1}, "name": "email_1", "unique": true}),
            want: vec![("unique", true)],
        },
        Case {
            reason: "a clause only the live partial filter has is drift",
            source: LIST_INDEXES,
            spec: "{ keys: { status: 1 }, partial_filter: { status: { $exists: true } } }",
            live: json!({"v": 2, "key": {"status": 1}, "name": "status_1", "partialFilterExpression": {"status": {"$exists": true}, "age": {"$gt": 5}}}),
            want: vec![("partial_filter.age", true)],
        },
        Case {
            reason: "an operator only the live partial filter has, inside a clause, is drift",
            source: LIST_INDEXES,
            spec: "{ keys: { status: 1 }, partial_filter: { status: { $exists: true } } }",
            live: json!({"v": 2, "key": {"status": 1}, "name": "status_1", "partialFilterExpression": {"status": {"$exists": true, "$type": "string"}}}),
            want: vec![("partial_filter", true)],
        },
        Case {
            reason: "a field only the live text index has is drift",
            source: "https://www.mongodb.com/docs/manual/core/indexes/index-types/index-text/",
            spec: "{ keys: { title: text }, weights: { title: 10 } }",
            live: json!({"v": 2, "key": {"_fts": "text", "_ftsx": 1}, "name": "title_text", "weights": {"body": 1, "title": 10}, "default_language": "english", "language_override": "language", "textIndexVersion": 3}),
            want: vec![("weights.body", true)],
        },
        Case {
            reason: "a locale's own defaults are not drift (fr_CA implies backwards: true)",
            source: "https://www.mongodb.com/docs/manual/reference/collation-locales-defaults/",
            spec: "{ keys: { name: 1 }, collation: { locale: fr_CA } }",
            live: json!({"v": 2, "key": {"name": 1}, "name": "name_1", "collation": {"locale": "fr_CA", "caseLevel": false, "caseFirst": "off", "strength": 3, "numericOrdering": false, "alternate": "non-ignorable", "maxVariable": "punct", "normalization": false, "backwards": true, "version": "57.1"}}),
            want: vec![],
        },
        Case {
            reason: "a field the spec sets is compared",
            source: "https://www.mongodb.com/docs/manual/reference/collation/#collation-document",
            spec: "{ keys: { name: 1 }, collation: { locale: fr, strength: 1 } }",
            live: json!({"v": 2, "key": {"name": 1}, "name": "name_1", "collation": {"locale": "fr", "caseLevel": false, "caseFirst": "off", "strength": 2, "numericOrdering": false, "alternate": "non-ignorable", "maxVariable": "punct", "normalization": false, "backwards": false, "version": "57.1"}}),
            want: vec![("collation.strength", true)],
        },
        Case {
            reason: "locale simple is no collation",
            source: "https://www.mongodb.com/docs/manual/reference/collation/#collation-document",
            spec: "{ keys: { name: 1 }, collation: { locale: simple } }",
            live: json!({"v": 2, "key": {"name": 1}, "name": "name_1"}),
            want: vec![],
        },
        Case {
            reason: "the expanded collation matches the spec's short form",
            source: "https://www.mongodb.com/docs/manual/reference/collation/#collation-document",
            spec: "{ keys: { name: 1 }, collation: { locale: fr, strength: 2 } }",
            live: json!({"v": 2, "key": {"name": 1}, "name": "name_1", "collation": {"locale": "fr", "caseLevel": false, "caseFirst": "off", "strength": 2, "numericOrdering": false, "alternate": "non-ignorable", "maxVariable": "punct", "normalization": false, "backwards": false, "version": "57.1"}}),
            want: vec![],
        },
        Case {
            reason: "a partial filter matches, whatever the number type",
            source: "https://www.mongodb.com/docs/manual/core/index-partial/",
            spec: "{ keys: { rating: 1 }, partial_filter: { rating: { $gt: 5 } } }",
            live: json!({"v": 2, "key": {"rating": 1}, "name": "rating_1", "partialFilterExpression": {"rating": {"$gt": 5.0}}}),
            want: vec![],
        },
        Case {
            reason: "sparse added out of band rebuilds back",
            source: "https://www.mongodb.com/docs/manual/core/index-sparse/",
            spec: "{ keys: { phone: 1 } }",
            live: json!({"v": 2, "key": {"phone": 1}, "name": "phone_1", "sparse": true}),
            want: vec![("sparse", true)],
        },
        Case {
            reason: "the same keys under another name: a rename is a rebuild",
            source: LIST_INDEXES,
            spec: "{ keys: { clientId: 1, status: 1 } }",
            live: json!({"v": 2, "key": {"clientId": 1, "status": 1}, "name": "by_client"}),
            want: vec![("name", true)],
        },
    ]
}

#[test]
fn planner_cases() {
    for c in cases() {
        let got = plan("coll", c.spec, c.live.clone());
        let want: Vec<(String, bool)> = c.want.iter().map(|(p, r)| (p.to_string(), *r)).collect();
        assert_eq!(got, want, "{} (fixture shaped after {})", c.reason, c.source);
    }
}

#[test]
fn create_spec_keeps_key_order_and_only_set_options() {
    let ix = spec("{ keys: { recipient: 1, read: 1, createdAt: -1 }, partial_filter: { read: false } }");
    let name = index_name(&ix);
    assert_eq!(name, "recipient_1_read_1_createdAt_-1");
    let attrs = normalize::desired_attrs("notifications", &name, &ix);
    let s = normalize::create_spec(&attrs, &ix.keys.0);
    assert_eq!(
        s.to_string(),
        r#"{"key":{"recipient":1,"read":1,"createdAt":-1},"name":"recipient_1_read_1_createdAt_-1","partialFilterExpression":{"read":false}}"#
    );
    let text = spec("{ keys: { title: text }, default_language: spanish }");
    let attrs = normalize::desired_attrs("posts", &index_name(&text), &text);
    let s = normalize::create_spec(&attrs, &text.keys.0);
    assert_eq!(s["key"], json!({"title": "text"}));
    assert_eq!(s["default_language"], "spanish");
    assert_eq!(s["weights"], json!({"title": 1}));
}

#[test]
fn logins_go_into_uris_that_have_none() {
    let scram = Login::Password { user: "u", password: "p@ss", source: "admin" };
    let cases = [
        ("mongodb+srv://main.abc.mongodb.net", scram, "mongodb+srv://u:p%40ss@main.abc.mongodb.net/?authSource=admin"),
        // The `/` goes before the options, not after them.
        (
            "mongodb+srv://main.abc.mongodb.net?retryWrites=true",
            scram,
            "mongodb+srv://u:p%40ss@main.abc.mongodb.net/?retryWrites=true&authSource=admin",
        ),
        // The path database is not the auth source.
        ("mongodb://h:27017/shop?tls=true", scram, "mongodb://u:p%40ss@h:27017/shop?tls=true&authSource=admin"),
        ("mongodb://h/shop?authSource=other", scram, "mongodb://u:p%40ss@h/shop?authSource=other"),
        // Percent-encoding elsewhere is kept.
        ("mongodb://h/?appName=a%20b", scram, "mongodb://u:p%40ss@h/?appName=a%20b&authSource=admin"),
        ("mongodb://x:y@h/db", scram, "mongodb://x:y@h/db"),
        (
            "mongodb+srv://main.abc.mongodb.net/?tlsCertificateKeyFile=/etc/app.pem",
            Login::X509,
            "mongodb+srv://main.abc.mongodb.net/?tlsCertificateKeyFile=/etc/app.pem&authMechanism=MONGODB-X509&authSource=$external",
        ),
    ];
    for (uri, login, want) in cases {
        assert_eq!(with_login(uri, login), want, "{uri}");
    }
}

/// What the driver makes of a URI poactl built: the user's auth database, not the path's.
#[tokio::test]
async fn the_driver_reads_the_login_as_meant() {
    let uri = with_login("mongodb://h:27017/shop?tls=true", Login::Password { user: "u", password: "p@ss", source: "admin" });
    let opts = mongodb::options::ClientOptions::parse(&uri).await.unwrap();
    let cred = opts.credential.unwrap();
    assert_eq!((cred.username.as_deref(), cred.password.as_deref(), cred.source.as_deref()), (Some("u"), Some("p@ss"), Some("admin")));
    assert_eq!(opts.default_database.as_deref(), Some("shop"));
    let x509 = with_login("mongodb://h/?tls=true&tlsCertificateKeyFile=/etc/app.pem", Login::X509);
    let cred = mongodb::options::ClientOptions::parse(&x509).await.unwrap().credential.unwrap();
    assert_eq!((cred.mechanism, cred.source.as_deref()), (Some(mongodb::options::AuthMechanism::MongoDbX509), Some("$external")));
}

#[test]
fn index_stats_dates_read_in_every_form_the_driver_gives() {
    let cases = [
        (json!("2026-12-01T10:00:00Z"), Some("2026-12-01T10:00:00Z")),
        (json!({"$date": "2026-12-01T10:00:00Z"}), Some("2026-12-01T10:00:00Z")),
        (json!({"$date": {"$numberLong": "0"}}), Some("1970-01-01T00:00:00Z")),
        (json!(12), None),
    ];
    for (v, want) in cases {
        assert_eq!(super::stats_date(&v).as_deref(), want, "{v}");
    }
}

#[test]
fn which_rebuilds_can_build_the_new_index_beside_the_old_one() {
    let base = json!({"keys": [["a", 1]], "unique": false, "sparse": false, "collation": null, "partial_filter": null});
    let with = |k: &str, v: Value| {
        let mut x = base.clone();
        x[k] = v;
        x
    };
    let text =
        json!({"keys": [["_fts", "text"], ["_ftsx", 1]], "unique": false, "sparse": false, "collation": null, "partial_filter": null});
    /// (why, live, desired, server version, coexist)
    type Case = (&'static str, Value, Value, Option<(i64, i64)>, bool);
    let cases: Vec<Case> = vec![
        ("another key pattern", base.clone(), with("keys", json!([["a", 1], ["b", 1]])), Some((7, 0)), true),
        ("a collation of its own", base.clone(), with("collation", json!({"locale": "fr"})), Some((7, 0)), true),
        ("a partial filter of its own", base.clone(), with("partial_filter", json!({"a": {"$exists": true}})), Some((7, 0)), true),
        ("unique differs, 7.0", base.clone(), with("unique", json!(true)), Some((7, 0)), true),
        ("unique differs, 4.4 (before SERVER-47657)", base.clone(), with("unique", json!(true)), Some((4, 4)), false),
        ("sparse differs, 5.0", base.clone(), with("sparse", json!(true)), Some((5, 0)), true),
        ("only a TTL differs (not in the signature)", base.clone(), with("expire_after_seconds", json!(60)), Some((7, 0)), false),
        (
            "the live collation has the locale's defaults too",
            with("collation", json!({"locale": "fr", "strength": 3})),
            with("collation", json!({"locale": "fr"})),
            Some((7, 0)),
            false,
        ),
        ("two text indexes", text.clone(), with("keys", json!([["_fts", "text"], ["_ftsx", 1], ["b", 1]])), Some((7, 0)), false),
    ];
    for (why, live, desired, version, want) in cases {
        assert_eq!(normalize::coexists(&live, &desired, version), want, "{why}");
    }
}
