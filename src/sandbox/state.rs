//! The sandbox's in-memory Atlas: projects, clusters with their state machine, and the
//! resources inside a project.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};

/// Where a cluster is in Atlas' state machine, and when it moves on.
#[derive(Debug, Clone)]
pub struct ClusterRec {
    pub doc: Value,
    pub flex: bool,
    /// The state until `until`; then IDLE (or gone, when DELETING).
    pub until: Instant,
    /// Set by the test API to hold a cluster in a state (a stuck update).
    pub stuck: bool,
    /// When the cluster was last resumed: Atlas refuses to pause it again for a while.
    pub resumed_at: Option<Instant>,
}

impl ClusterRec {
    pub fn new(doc: Value, flex: bool, until: Instant) -> Self {
        ClusterRec { doc, flex, until, stuck: false, resumed_at: None }
    }
}

#[derive(Debug, Default)]
pub struct Project {
    pub doc: Value,
    pub clusters: BTreeMap<String, ClusterRec>,
    pub access_list: Vec<Value>,
    pub users: Vec<Value>,
    pub alerts: Vec<Value>,
    pub schedules: BTreeMap<String, Value>,
    /// The passwords of the SCRAM users, (database, username) -> password: Atlas never
    /// returns them, but its clusters check them; the sandbox hands them to its wire mock.
    pub passwords: BTreeMap<(String, String), String>,
    /// Cloud backup snapshots per cluster (`DiskBackupReplicaSet` documents), oldest first.
    pub snapshots: BTreeMap<String, Vec<Value>>,
    /// When the last cluster finished deleting: Atlas keeps refusing to close the project
    /// for a while after that.
    pub clusters_gone_at: Option<Instant>,
    /// When a database user last changed: the clusters report `changeStatus: PENDING` until
    /// the change has reached them.
    pub users_changed_at: Option<Instant>,
    /// PrivateLink endpoint services, with their registered interface endpoints.
    pub endpoint_services: Vec<super::private_endpoint::ServiceRec>,
    /// Network peering containers (`AWSCloudProviderContainer` documents).
    pub containers: Vec<Value>,
    pub peers: Vec<super::peering::PeerRec>,
    /// The maintenance window and auditing, once set (Atlas' defaults until then).
    pub maintenance_window: Option<Value>,
    pub audit_log: Option<Value>,
    /// Cloud provider access roles (`CloudProviderAccessAWSIAMRole` documents).
    pub cloud_roles: Vec<Value>,
    /// The `awsKms` part of the encryption-at-rest setting, once set.
    pub aws_kms: Option<Value>,
}

/// An access token the sandbox issued.
#[derive(Debug, Clone)]
pub struct Token {
    pub value: String,
    pub client: String,
    pub issued: Instant,
    pub expires: Instant,
}

/// One request the sandbox answered, for tests to check against the OpenAPI spec.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LogEntry {
    pub method: String,
    pub path: String,
    /// The operation's path template, e.g. `/api/atlas/v2/groups/{groupId}/clusters`.
    pub operation: String,
    pub version: String,
    pub request: Option<Value>,
    pub status: u16,
    pub response: Option<Value>,
}

#[derive(Debug)]
pub struct State {
    pub projects: BTreeMap<String, Project>,
    pub tokens: Vec<Token>,
    pub log: Vec<LogEntry>,
    pub cluster_delay: Duration,
    /// How long Atlas refuses to pause a cluster after resuming it.
    pub resume_window: Duration,
    /// How long Atlas refuses to close a project after its last cluster is gone.
    pub close_delay: Duration,
    /// How long a database-user change takes to reach the clusters.
    pub user_delay: Duration,
    /// How long every Admin API answer is held back (a fault, not a rule of the service: a
    /// proxy or a network that holds requests); the token endpoints are not delayed.
    pub response_delay: Duration,
    /// The methods `response_delay` holds (empty: all).
    pub response_delay_methods: Vec<String>,
    /// How long an access token lives.
    pub token_ttl: Duration,
    /// Token requests allowed per client and minute, and active tokens per client.
    pub token_requests_per_minute: usize,
    pub active_tokens_per_client: usize,
    /// Every Nth API request answers 429 (0: never).
    pub rate_limit_every: u64,
    pub requests: u64,
    /// Injected failures: the next `count` API requests answer `status`.
    pub faults: Option<(u16, u32, u64)>,
    counter: u64,
    /// With `--mongo-listen`: the wire mock's address, which IDLE clusters' standard
    /// connection strings point at (the sandbox's stand-in for the cluster's mongod hosts).
    pub mongo_host: Option<String>,
    /// The wire mock's state, when the sandbox serves one: its users follow the projects'
    /// database users, as Atlas puts a project's users on its clusters.
    pub mongo: Option<std::sync::Arc<std::sync::Mutex<super::mongo::MockState>>>,
    /// Operations (`METHOD template`) the caller's role may not use: answered 403, as Atlas
    /// answers a key without the role the operation's `x-rolesRequirements` names.
    pub denied: Vec<String>,
    /// moto's address, where the sandbox plays Atlas' AWS account for peering.
    pub aws_endpoint: Option<String>,
    /// Calls to moto to make once the state lock is released.
    pub aws_jobs: Vec<super::peering::AwsJob>,
    /// How many authorizations of an access role are refused with CANNOT_ASSUME_ROLE before
    /// one is accepted, as while IAM has not caught up with a new role.
    pub assume_role_refusals: u32,
    /// Whether Atlas finds the project's key unusable (`awsKms.valid: false`).
    pub kms_invalid: bool,
    seed: u64,
}

impl State {
    pub fn new(cluster_delay: Duration, rate_limit: f64) -> Self {
        let rate_limit_every = if rate_limit > 0.0 { (1.0 / rate_limit.min(1.0)).round().max(1.0) as u64 } else { 0 };
        let seed = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        State {
            projects: BTreeMap::new(),
            tokens: Vec::new(),
            log: Vec::new(),
            cluster_delay,
            resume_window: Duration::from_secs(3600),
            close_delay: cluster_delay,
            user_delay: cluster_delay,
            response_delay: Duration::ZERO,
            response_delay_methods: Vec::new(),
            token_ttl: Duration::from_secs(3600),
            token_requests_per_minute: 10,
            active_tokens_per_client: 100,
            rate_limit_every,
            requests: 0,
            faults: None,
            counter: 0,
            mongo_host: None,
            mongo: None,
            denied: Vec::new(),
            aws_endpoint: None,
            aws_jobs: Vec::new(),
            assume_role_refusals: 0,
            kms_invalid: false,
            seed,
        }
    }

    /// A fresh 24-hex id, like Atlas' ObjectIds.
    pub fn new_id(&mut self) -> String {
        self.counter += 1;
        format!("{:08x}{:016x}", (self.seed & 0xffff_ffff) as u32, self.counter)
    }

    /// Moves clusters whose transition time has passed: CREATING/UPDATING become IDLE (with
    /// their full connection strings), DELETING ones disappear.
    pub fn advance(&mut self) {
        let now = Instant::now();
        let mongo_host = self.mongo_host.clone();
        let delay = self.cluster_delay;
        for p in self.projects.values_mut() {
            super::private_endpoint::advance(p, delay, now);
            let mut gone = Vec::new();
            for (name, c) in p.clusters.iter_mut() {
                if c.stuck || now < c.until {
                    continue;
                }
                match c.doc["stateName"].as_str() {
                    Some("DELETING") => gone.push(name.clone()),
                    Some("IDLE") => {}
                    _ => {
                        c.doc["stateName"] = json!("IDLE");
                        let srv = c.doc.pointer("/connectionStrings/standardSrv").and_then(|v| v.as_str()).unwrap_or_default().to_string();
                        let host = srv.trim_start_matches("mongodb+srv://").to_string();
                        // Real Atlas lists the shard hosts with TLS on; the mock has one host
                        // and no TLS, so a driver can reach it.
                        c.doc["connectionStrings"]["standard"] = match &mongo_host {
                            Some(mock) => json!(format!("mongodb://{mock}/?directConnection=true")),
                            None => json!(format!("mongodb://{host}:27017/?ssl=true&authSource=admin")),
                        };
                    }
                }
            }
            for name in gone {
                p.clusters.remove(&name);
                p.schedules.remove(&name);
                if p.clusters.is_empty() {
                    p.clusters_gone_at = Some(now);
                }
            }
            super::private_endpoint::private_strings(p, delay, now);
        }
    }

    pub fn transition_until(&self) -> Instant {
        Instant::now() + self.cluster_delay
    }
}

/// `2026-11-25T12:00:00Z` for now.
pub fn now_iso() -> String {
    iso_at(SystemTime::now())
}

/// The ISO 8601 UTC form Atlas writes (`2026-12-02T09:00:00Z`) of a time.
pub fn iso_at(t: SystemTime) -> String {
    let secs = t.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Civil from days (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, (rem % 3600) / 60, rem % 60)
}

/// The alert configurations Atlas gives every new project (a representative subset of the
/// defaults seen in real projects: event types, metrics and thresholds as Atlas sets them).
/// (metric name, operator, threshold, units)
pub type MetricThreshold = (&'static str, &'static str, f64, &'static str);
/// (operator, threshold, units)
pub type Threshold = (&'static str, i64, &'static str);

pub const DEFAULT_ALERTS: &[(&str, Option<MetricThreshold>, Option<Threshold>)] = &[
    ("REPLICATION_OPLOG_WINDOW_RUNNING_OUT", None, Some(("LESS_THAN", 1, "HOURS"))),
    ("NO_PRIMARY", None, None),
    ("CLUSTER_MONGOS_IS_MISSING", None, None),
    ("OUTSIDE_METRIC_THRESHOLD", Some(("CONNECTIONS_PERCENT", "GREATER_THAN", 80.0, "RAW")), None),
    ("OUTSIDE_METRIC_THRESHOLD", Some(("DISK_PARTITION_SPACE_USED_DATA", "GREATER_THAN", 90.0, "RAW")), None),
    ("OUTSIDE_METRIC_THRESHOLD", Some(("QUERY_TARGETING_SCANNED_OBJECTS_PER_RETURNED", "GREATER_THAN", 1000.0, "RAW")), None),
    ("OUTSIDE_METRIC_THRESHOLD", Some(("NORMALIZED_SYSTEM_CPU_USER", "GREATER_THAN", 95.0, "RAW")), None),
    ("OUTSIDE_METRIC_THRESHOLD", Some(("SEARCH_REQUIRED_MEMORY_USAGE_PERCENT", "GREATER_THAN", 100.0, "RAW")), None),
    ("CREDIT_CARD_ABOUT_TO_EXPIRE", None, None),
    ("HOST_HAS_INDEX_SUGGESTIONS", None, None),
    ("JOINED_GROUP", None, None),
    ("USERS_WITHOUT_MULTI_FACTOR_AUTH", None, None),
    ("ONLINE_ARCHIVE_INSUFFICIENT_INDEXES_CHECK", None, None),
    ("FTS_INDEX_DELETION_FAILED", None, None),
    ("FTS_INDEX_BUILD_COMPLETE", None, None),
    ("FTS_INDEX_BUILD_FAILED", None, None),
    ("NDS_X509_USER_AUTHENTICATION_MANAGED_USER_CERTS_EXPIRATION_CHECK", None, None),
    ("OUTSIDE_SERVERLESS_METRIC_THRESHOLD", Some(("SERVERLESS_DATA_SIZE_TOTAL", "GREATER_THAN", 0.75, "GIGABYTES")), None),
    ("OUTSIDE_FLEX_METRIC_THRESHOLD", Some(("FLEX_CONNECTIONS_PERCENT", "GREATER_THAN", 80.0, "RAW")), None),
    ("OUTSIDE_FLEX_METRIC_THRESHOLD", Some(("FLEX_DATA_SIZE_TOTAL", "GREATER_THAN", 4.0, "GIGABYTES")), None),
    ("DAILY_BILL_OVER_THRESHOLD", None, Some(("GREATER_THAN", 100, "RAW"))),
    ("HOST_MONGOT_CRASHING_OOM", None, None),
    ("FTS_INDEXES_RESTORE_FAILED", None, None),
    ("DISK_AUTO_SCALE_INITIATED", None, None),
    ("COMPUTE_AUTO_SCALE_INITIATED_BASE", None, None),
    ("COMPUTE_AUTO_SCALE_MAX_INSTANCE_SIZE_FAIL_BASE", None, None),
    ("CLUSTER_BLOCK_WRITE", None, None),
    ("CLUSTER_UNBLOCK_WRITE", None, None),
    ("HOST_MONGOT_STOP_REPLICATION", None, None),
    ("MONGOTUNE_ALERT", None, None),
];

#[cfg(test)]
mod tests {
    #[test]
    fn iso_dates_look_right() {
        let s = super::now_iso();
        assert_eq!(s.len(), 20);
        assert!(s.starts_with("20") && s.ends_with('Z') && &s[10..11] == "T");
    }
}
