//! Helpers shared by the CLI tests.

use std::path::PathBuf;
use std::process::{Command, Output};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The env vars the shipped environments read.
pub const SPEC_ENV: &[(&str, &str)] = &[
    ("MONGODB_ATLAS_ORG_ID", "0123456789abcdef01234567"),
    ("POAFIX_DB_PASSWORD", "api-secret-Vq3xT9"),
    ("POAFIX_MIGRATIONS_PASSWORD", "migrations-secret-P7kw2Z"),
    ("POAFIX_ORIGIN_SECRET", "origin-secret-Jd8Kq2"),
];

/// A `poactl` invocation with a clean environment (no ambient AWS/Atlas settings).
pub struct Poactl {
    cmd: Command,
}

impl Poactl {
    pub fn new(args: &[&str]) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_poactl"));
        cmd.args(args).current_dir(repo()).env_clear();
        for var in ["PATH", "HOME", "TMPDIR"] {
            if let Some(v) = std::env::var_os(var) {
                cmd.env(var, v);
            }
        }
        cmd.env("NO_COLOR", "1");
        Poactl { cmd }
    }

    pub fn env(mut self, k: &str, v: impl AsRef<std::ffi::OsStr>) -> Self {
        self.cmd.env(k, v);
        self
    }

    pub fn envs(mut self, vars: &[(&str, &str)]) -> Self {
        for (k, v) in vars {
            self.cmd.env(k, v);
        }
        self
    }

    /// Starts it without waiting (to stop it halfway through).
    pub fn spawn(mut self) -> std::process::Child {
        self.cmd.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().expect("start poactl")
    }

    /// Starts it without waiting, keeping what it prints (read with `wait_with_output`).
    pub fn spawn_piped(mut self) -> std::process::Child {
        self.cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().expect("start poactl")
    }

    pub fn run(mut self) -> Run {
        let out: Output = self.cmd.output().expect("run poactl");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(self.code, code, "exit code; stdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        self
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}\nstderr:\n{}", self.stdout, self.stderr))
    }
}

/// A `poactl sandbox` process on a free loopback port, stopped on drop.
pub struct Sandbox {
    child: std::process::Child,
    pub url: String,
    _dir: tempfile::TempDir,
    http: reqwest::Client,
    /// One token for the test's own calls: the sandbox limits token requests as Atlas does.
    token: tokio::sync::Mutex<Option<String>>,
}

impl Sandbox {
    pub fn start(cluster_delay_secs: f64) -> Sandbox {
        let dir = tempfile::tempdir().unwrap();
        let url_file = dir.path().join("url");
        let child = Command::new(env!("CARGO_BIN_EXE_poactl"))
            .args(["sandbox", "--listen", "127.0.0.1:0", "--cluster-delay", &cluster_delay_secs.to_string(), "--url-file"])
            .arg(&url_file)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start poactl sandbox");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let url = loop {
            if let Ok(u) = std::fs::read_to_string(&url_file)
                && !u.is_empty()
            {
                break u;
            }
            assert!(std::time::Instant::now() < deadline, "the sandbox did not start");
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        Sandbox { child, url, _dir: dir, http: reqwest::Client::new(), token: Default::default() }
    }

    /// The environment a poactl run needs to talk to this sandbox.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("MONGODB_ATLAS_BASE_URL", self.url.clone()),
            ("MONGODB_ATLAS_CLIENT_ID", "test-client".to_string()),
            ("MONGODB_ATLAS_CLIENT_SECRET", "test-secret".to_string()),
            ("POACTL_ATLAS_RETRY_BASE_MS", "50".to_string()),
        ]
    }

    async fn token(&self) -> String {
        let mut cached = self.token.lock().await;
        if let Some(t) = cached.as_ref() {
            return t.clone();
        }
        let v: serde_json::Value = self
            .http
            .post(format!("{}/api/oauth/token", self.url))
            .basic_auth("t", Some("t"))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let t = v["access_token"].as_str().unwrap_or_else(|| panic!("no token: {v}")).to_string();
        *cached = Some(t.clone());
        t
    }

    /// One Atlas Admin API call, as an out-of-band actor would make it.
    pub async fn api(&self, method: &str, path: &str, version: &str, body: Option<serde_json::Value>) -> (u16, serde_json::Value) {
        let token = self.token().await;
        let media = format!("application/vnd.atlas.{version}+json");
        let mut req = self.http.request(method.parse().unwrap(), format!("{}{path}", self.url)).bearer_auth(token).header("accept", &media);
        if let Some(b) = body {
            req = req.header("content-type", &media).body(b.to_string());
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::Null))
    }

    pub async fn control(&self, path: &str, body: serde_json::Value) -> serde_json::Value {
        self.http.post(format!("{}/__sandbox/{path}", self.url)).body(body.to_string()).send().await.unwrap().json().await.unwrap()
    }

    /// Active tokens per client id.
    pub async fn tokens(&self) -> serde_json::Value {
        self.http.get(format!("{}/__sandbox/tokens", self.url)).send().await.unwrap().json().await.unwrap()
    }

    pub async fn log(&self) -> Vec<serde_json::Value> {
        self.http.get(format!("{}/__sandbox/log", self.url)).send().await.unwrap().json().await.unwrap()
    }

    pub async fn group_id(&self, name: &str) -> String {
        let org = "0123456789abcdef01234567";
        let (status, v) = self.api("GET", &format!("/api/atlas/v2/orgs/{org}/groups?name={name}"), "2023-01-01", None).await;
        assert_eq!(status, 200, "project {name}: {v}");
        let found = v["results"].as_array().unwrap().iter().find(|g| g["name"] == name);
        found.unwrap_or_else(|| panic!("no project {name}: {v}"))["id"].as_str().unwrap().to_string()
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Poactl {
    pub fn envs_owned(mut self, vars: &[(&str, String)]) -> Self {
        for (k, v) in vars {
            self.cmd.env(k, v);
        }
        self
    }
}

/// Runs poactl off the async runtime (a test that also serves a peer in-process).
pub async fn poactl_blocking(args: Vec<String>, env: Vec<(&'static str, String)>) -> Run {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
        Poactl::new(&args).envs_owned(&env).run()
    })
    .await
    .unwrap()
}

/// Runs poactl off the async runtime with the specs' secrets (`SPEC_ENV`) and `env`.
pub async fn poactl_with(args: &[&str], env: &[(&'static str, String)]) -> Run {
    let mut all: Vec<(&'static str, String)> = SPEC_ENV.iter().map(|(k, v)| (*k, v.to_string())).collect();
    all.extend(env.iter().cloned());
    poactl_blocking(strings(args), all).await
}

/// Owned arguments.
pub fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

pub fn spec_file(name: &str, yaml: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("{name}.yaml"));
    std::fs::write(&path, yaml).unwrap();
    let p = path.to_string_lossy().to_string();
    (dir, p)
}

/// The Python that runs moto: `POACTL_MOTO_PYTHON`, else the repo's `.venv` (made by `make test`).
fn moto_python() -> PathBuf {
    if let Some(p) = std::env::var_os("POACTL_MOTO_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = repo().join(".venv/bin/python");
    assert!(venv.exists(), "moto is not installed: run `make test` (it installs moto[server] into .venv) or set POACTL_MOTO_PYTHON");
    venv
}

/// A moto server (AWS emulator) of this test's own, through `tests/support/moto_server.py`.
pub struct Moto {
    child: std::process::Child,
    pub url: String,
}

impl Moto {
    /// Starts moto on a port it picks itself (`-p 0`) and reads the port from its log, so
    /// parallel tests never race for a port.
    pub fn start() -> Moto {
        Self::start_with(&[])
    }

    /// Starts moto with settings of its own: `MOTO_ACM_VALIDATION_WAIT` is how many seconds a
    /// requested certificate stays PENDING_VALIDATION before moto issues it (1 unless set).
    pub fn start_with(settings: &[(&str, &str)]) -> Moto {
        let mut command = Command::new(moto_python());
        command.env("MOTO_ACM_VALIDATION_WAIT", "1");
        command.envs(settings.iter().copied());
        let mut child = command
            .arg(repo().join("tests/support/moto_server.py"))
            .args(["127.0.0.1", "0"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start moto");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            let mut sent = false;
            for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
                if !sent
                    && let Some(port) = line
                        .split("http://127.0.0.1:")
                        .nth(1)
                        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
                        .and_then(|p| p.parse::<u16>().ok())
                {
                    let _ = tx.send(port);
                    sent = true;
                }
            }
        });
        let port = rx.recv_timeout(std::time::Duration::from_secs(60)).expect("moto did not start (no port in its log)");
        Moto { child, url: format!("http://127.0.0.1:{port}") }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The environment a poactl run needs to talk to an AWS endpoint (moto or a proxy in front).
pub fn aws_env(endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", endpoint.to_string()),
        ("AWS_ACCESS_KEY_ID", "test".to_string()),
        ("AWS_SECRET_ACCESS_KEY", "test".to_string()),
        ("AWS_REGION", "us-east-1".to_string()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_string()),
    ]
}

/// SDK clients for checking what poactl did, independently of poactl's own reading.
pub async fn aws_config(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_s3::config::Credentials::new("test", "test", None, None, "tests"))
        .load()
        .await
}

/// One request seen by the recording proxy.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    /// The query string (S3 names its sub-resources there: `?tagging`, `?versioning`).
    pub query: String,
    /// The operation of an awsQuery (`Action=`, CloudWatch) or awsJson (`X-Amz-Target`, the
    /// tagging API) request, when there is one.
    pub action: Option<String>,
    /// The request body, as text.
    pub body: String,
    /// When the proxy received it.
    pub at: std::time::Instant,
    /// When its answer was back from the service (forwarded requests only).
    pub done: Option<std::time::Instant>,
}

/// An answer a fault layer sends instead of forwarding (or after forwarding) a request.
#[derive(Debug, Clone)]
pub struct Injected {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

/// What a fault layer does to one request.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answers without forwarding (the service never saw the request).
    Answer(Injected),
    /// Closes the connection without forwarding.
    DropBefore,
    /// Forwards (the service does the work), then answers this instead of the real answer.
    AnswerAfter(Injected),
    /// Forwards, then closes the connection: the client never learns the outcome.
    DropAfter,
    /// Never answers and never forwards, holding the connection open: a blackhole (a firewall
    /// that drops packets mid-connection, a proxy that holds requests).
    Hold,
}

/// Decides, for each request (and how many came before), whether to disturb it. Every rule a
/// test writes here must cite the real behaviour it copies.
pub type Inject = std::sync::Arc<dyn Fn(&Seen, usize) -> Option<Fault> + Send + Sync>;

/// Closes the client's connection: unwinding the handler ends hyper's connection task without
/// an answer (and, resumed rather than raised, without the panic hook's noise).
fn drop_connection() -> ! {
    std::panic::resume_unwind(Box::new("fault layer: connection dropped"))
}

impl Seen {
    /// Whether the call changes something (reads: GET/HEAD, and awsQuery or awsJson
    /// Describe*/List*/Get*).
    pub fn mutating(&self) -> bool {
        match &self.action {
            Some(a) => !(a.starts_with("Describe") || a.starts_with("List") || a.starts_with("Get")),
            // Route 53's ListTagsForResources reads with a POST (Route 53 API reference:
            // `POST /2013-04-01/tags/ResourceType`).
            None => !matches!(self.method.as_str(), "GET" | "HEAD") && !self.body.starts_with("<ListTagsForResourcesRequest"),
        }
    }
}

/// A recording proxy in front of an HTTP server: counts what poactl sends.
pub struct Recorder {
    pub url: String,
    pub seen: std::sync::Arc<std::sync::Mutex<Vec<Seen>>>,
}

impl Recorder {
    pub async fn start(target: &str) -> Recorder {
        Self::start_with(target, std::sync::Arc::new(|_: &Seen, _: usize| None)).await
    }

    /// A recording proxy that delays every request by `latency` first (a runner far from the
    /// APIs), for the benchmark.
    pub async fn start_slow(target: &str, latency: std::time::Duration) -> Recorder {
        Self::start_inner(target, std::sync::Arc::new(|_: &Seen, _: usize| None), latency).await
    }

    /// A recording proxy that also injects answers (a fault layer).
    pub async fn start_with(target: &str, inject: Inject) -> Recorder {
        Self::start_inner(target, inject, std::time::Duration::ZERO).await
    }

    async fn start_inner(target: &str, inject: Inject, latency: std::time::Duration) -> Recorder {
        let seen: std::sync::Arc<std::sync::Mutex<Vec<Seen>>> = Default::default();
        let client = reqwest::Client::new();
        let target = target.to_string();
        let log = seen.clone();
        let app = axum::Router::new().fallback(
            move |method: axum::http::Method, uri: axum::http::Uri, headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let client = client.clone();
                let target = target.clone();
                let log = log.clone();
                let inject = inject.clone();
                async move {
                    let path_q = uri.path_and_query().map(|p| p.as_str().to_string()).unwrap_or_default();
                    let text = String::from_utf8_lossy(&body).to_string();
                    let json_op =
                        headers.get("x-amz-target").and_then(|v| v.to_str().ok()).and_then(|t| t.rsplit('.').next()).map(String::from);
                    let action = text.split('&').find_map(|kv| kv.strip_prefix("Action=").map(String::from)).or(json_op);
                    let seen = Seen {
                        method: method.to_string(),
                        path: uri.path().to_string(),
                        query: uri.query().unwrap_or("").to_string(),
                        action,
                        body: text,
                        at: std::time::Instant::now(),
                        done: None,
                    };
                    let count = {
                        let mut l = log.lock().unwrap();
                        l.push(seen.clone());
                        l.len() - 1
                    };
                    if !latency.is_zero() {
                        tokio::time::sleep(latency).await;
                    }
                    let fault = inject(&seen, count);
                    let injected = |i: Injected| {
                        axum::http::Response::builder()
                            .status(i.status)
                            .header("content-type", i.content_type)
                            .header("retry-after", "0")
                            .body(axum::body::Body::from(i.body))
                            .unwrap()
                    };
                    match fault.clone() {
                        Some(Fault::Hold) => std::future::pending::<()>().await,
                        Some(Fault::Answer(i)) => return injected(i),
                        Some(Fault::DropBefore) => drop_connection(),
                        _ => {}
                    }
                    let method_name = method.to_string();
                    let mut req = client.request(method, format!("{target}{path_q}")).body(body.to_vec());
                    for (k, v) in headers.iter() {
                        if k != "host" && k != "content-length" {
                            req = req.header(k, v);
                        }
                    }
                    let resp = req.send().await.unwrap();
                    match fault {
                        Some(Fault::AnswerAfter(i)) => {
                            let _ = resp.bytes().await;
                            return injected(i);
                        }
                        Some(Fault::DropAfter) => {
                            let _ = resp.bytes().await;
                            drop_connection()
                        }
                        _ => {}
                    }
                    let status = resp.status();
                    let mut out = axum::http::Response::builder().status(status.as_u16());
                    // A HEAD answer has no body but the object's length (S3 HeadObject's
                    // Content-Length): kept as the service sent it.
                    let head = method_name == "HEAD";
                    for (k, v) in resp.headers().iter() {
                        if (k != "content-length" || head) && k != "transfer-encoding" && k != "connection" {
                            out = out.header(k, v);
                        }
                    }
                    let bytes = resp.bytes().await.unwrap();
                    if let Some(s) = log.lock().unwrap().get_mut(count) {
                        s.done = Some(std::time::Instant::now());
                    }
                    out.body(axum::body::Body::from(bytes)).unwrap()
                }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app.layer(axum::extract::DefaultBodyLimit::disable())).await.unwrap() });
        Recorder { url, seen }
    }

    pub fn all(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Forgets what was seen so far (a second run's requests alone).
    pub fn clear(&self) {
        self.seen.lock().unwrap().clear();
    }

    pub fn mutating(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().iter().filter(|s| s.mutating()).cloned().collect()
    }
}

/// Runs poactl against an AWS endpoint (moto, or a proxy in front of it), off the async runtime.
pub async fn poactl_aws(endpoint: &str, args: &[&str]) -> Run {
    let all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let env = aws_env(endpoint);
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = all.iter().map(|s| s.as_str()).collect();
        Poactl::new(&args).envs_owned(&env).run()
    })
    .await
    .unwrap()
}

/// `poactl_aws` with more environment variables (the spec's `${env:...}` values).
pub async fn poactl_aws_env(endpoint: &str, args: &[&str], extra: &[(&str, &str)]) -> Run {
    let all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let mut env: Vec<(&'static str, String)> = aws_env(endpoint);
    let extra: Vec<(String, String)> = extra.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = all.iter().map(|s| s.as_str()).collect();
        let mut p = Poactl::new(&args);
        for (k, v) in &extra {
            p = p.env(k, v);
        }
        env.retain(|(k, _)| !extra.iter().any(|(e, _)| e == k));
        p.envs_owned(&env).run()
    })
    .await
    .unwrap()
}

/// A certificate of the team's own, requested in moto's us-east-1 before poactl runs and
/// waited for until moto issues it (`MOTO_ACM_VALIDATION_WAIT`, 1 s): its ARN.
pub async fn issued_certificate(conf: &aws_config::SdkConfig, domain: &str) -> String {
    let acm = aws_sdk_acm::Client::new(conf);
    let requested =
        acm.request_certificate().domain_name(domain).validation_method(aws_sdk_acm::types::ValidationMethod::Dns).send().await.unwrap();
    let arn = requested.certificate_arn().unwrap().to_string();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    arn
}

/// One EC2 Query call to moto, as an out-of-band actor (the team making its VPC) would make it.
pub async fn ec2(moto: &str, params: &[(&str, &str)]) -> String {
    moto_query(moto, "ec2", "2016-11-15", params).await
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The text of every `<tag>` in an answer.
pub fn all_of(xml: &str, tag: &str) -> Vec<String> {
    xml.split(&format!("<{tag}>")).skip(1).filter_map(|s| s.split(&format!("</{tag}>")).next()).map(String::from).collect()
}

/// The app's VPC with two subnets, as the team has it before poactl runs.
pub async fn app_vpc(moto: &str) -> (String, Vec<String>) {
    app_network(moto).await.0
}

/// The app's VPC, its subnets, and the app servers' security group.
pub async fn app_network(moto: &str) -> ((String, Vec<String>), String) {
    let vpc = all_of(&ec2(moto, &[("Action", "CreateVpc"), ("CidrBlock", "10.0.0.0/16")]).await, "vpcId").remove(0);
    let mut subnets = Vec::new();
    for (cidr, az) in [("10.0.1.0/24", "us-east-1a"), ("10.0.2.0/24", "us-east-1b")] {
        let answer = ec2(moto, &[("Action", "CreateSubnet"), ("VpcId", &vpc), ("CidrBlock", cidr), ("AvailabilityZone", az)]).await;
        subnets.push(all_of(&answer, "subnetId").remove(0));
    }
    let app =
        ec2(moto, &[("Action", "CreateSecurityGroup"), ("GroupName", "app"), ("GroupDescription", "app servers"), ("VpcId", &vpc)]).await;
    let app = all_of(&app, "groupId").remove(0);
    ((vpc, subnets), app)
}

/// `environments/prod.yaml` (and the base it extends) with its placeholder VPC, subnet and
/// security-group ids replaced by a network made in moto, as the team fills in its own.
pub async fn prod_in(moto: &str) -> (tempfile::TempDir, String) {
    let ((vpc, subnets), app) = app_network(moto).await;
    let dir = tempfile::tempdir().unwrap();
    let envs = repo().join("environments");
    std::fs::copy(envs.join("base.yaml"), dir.path().join("base.yaml")).unwrap();
    let prod = std::fs::read_to_string(envs.join("prod.yaml")).unwrap();
    let placeholders = ["vpc-0123456789abcdef0", "subnet-0aaaaaaaaaaaaaaaa", "subnet-0bbbbbbbbbbbbbbbb", "sg-0cccccccccccccccc"];
    assert!(placeholders.iter().all(|p| prod.contains(p)), "prod.yaml's placeholder ids changed");
    let prod = prod
        .replace(placeholders[0], &vpc)
        .replace(placeholders[1], &subnets[0])
        .replace(placeholders[2], &subnets[1])
        .replace(placeholders[3], &app);
    let path = dir.path().join("prod.yaml");
    std::fs::write(&path, prod).unwrap();
    let p = path.to_string_lossy().to_string();
    (dir, p)
}

/// Both clouds for the networking tests: the Atlas sandbox, moto, and a recorder in front of
/// moto that keeps every EC2 request poactl sends (the tests assert on requests, since moto
/// accepts what real AWS refuses).
pub struct TwoClouds {
    pub sandbox: Sandbox,
    pub moto: Moto,
    pub recorder: Recorder,
    pub env: Vec<(&'static str, String)>,
}

impl TwoClouds {
    pub async fn start() -> TwoClouds {
        let sandbox = Sandbox::start(0.4);
        let moto = Moto::start();
        let recorder = Recorder::start(&moto.url).await;
        let mut env = aws_env(&recorder.url);
        env.extend(sandbox.env());
        TwoClouds { sandbox, moto, recorder, env }
    }

    pub async fn run(&self, args: &[&str]) -> Run {
        poactl_with(args, &self.env).await
    }

    /// The bodies of the EC2 calls of `action` poactl made.
    pub fn ec2_calls(&self, action: &str) -> Vec<String> {
        self.recorder.all().into_iter().filter(|s| s.action.as_deref() == Some(action)).map(|s| s.body).collect()
    }
}

/// One Query call to moto for another service (IAM: `iam`, `2010-05-08`), out of band.
pub async fn moto_query(moto: &str, service: &str, version: &str, params: &[(&str, &str)]) -> String {
    let mut form: Vec<(&str, &str)> = vec![("Version", version)];
    form.extend_from_slice(params);
    let body = form.iter().map(|(k, v)| format!("{k}={}", urlencode(v))).collect::<Vec<_>>().join("&");
    reqwest::Client::new()
        .post(format!("{moto}/"))
        .header(
            "authorization",
            format!("AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=0"),
        )
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// One KMS (JSON protocol) call to moto, out of band.
pub async fn moto_kms(moto: &str, action: &str, body: serde_json::Value) -> serde_json::Value {
    moto_json(moto, "kms", &format!("TrentService.{action}"), body).await
}

/// One JSON-protocol call to moto for a service (`kms`, `logs`) and target
/// (`Logs_20140328.DescribeLogGroups`), out of band.
pub async fn moto_json(moto: &str, service: &str, target: &str, body: serde_json::Value) -> serde_json::Value {
    let text = reqwest::Client::new()
        .post(format!("{moto}/"))
        .header(
            "authorization",
            format!("AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=0"),
        )
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-target", target)
        .body(body.to_string())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    serde_json::from_str(&text).unwrap_or(serde_json::Value::Null)
}

/// A policy document as IAM answers it (URL-encoded JSON), parsed.
pub fn iam_document(encoded: &str) -> serde_json::Value {
    let decoded: String = form_urlencoded::parse(format!("d={}", encoded.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    serde_json::from_str(&decoded).or_else(|_| serde_json::from_str(encoded)).unwrap_or(serde_json::Value::Null)
}
