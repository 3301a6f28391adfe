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
        Sandbox { child, url, _dir: dir, http: reqwest::Client::new() }
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
        v["access_token"].as_str().unwrap().to_string()
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

    pub async fn log(&self) -> Vec<serde_json::Value> {
        self.http.get(format!("{}/__sandbox/log", self.url)).send().await.unwrap().json().await.unwrap()
    }

    pub async fn group_id(&self, name: &str) -> String {
        let (status, v) = self.api("GET", &format!("/api/atlas/v2/groups/byName/{name}"), "2023-01-01", None).await;
        assert_eq!(status, 200, "project {name}: {v}");
        v["id"].as_str().unwrap().to_string()
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

/// Writes a spec into a temp dir and returns (dir, path).
pub fn spec_file(name: &str, yaml: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("{name}.yaml"));
    std::fs::write(&path, yaml).unwrap();
    let p = path.to_string_lossy().to_string();
    (dir, p)
}
