//! `--temporary-access`: lets the machine poactl runs on reach a VPC-only environment's
//! clusters for one run, through their public endpoint, with an Atlas *temporary* access-list
//! entry.
//!
//! The normal production path is to run poactl inside the VPC (docs/spec.md, "Running poactl
//! in production"). A CI runner outside it cannot reach a private endpoint, so this is the
//! one explicit way out:
//! - the entry is this runner's address alone (`ipAddress`, a /32 or /128), never a range;
//! - it carries a `deleteAfterDate`, so Atlas removes it by itself even when poactl is killed
//!   outright (openapi-v2.yaml, NetworkPermissionEntry.deleteAfterDate: "Date and time after
//!   which MongoDB Cloud deletes the temporary access list entry", within one week);
//! - poactl waits until the entry is ACTIVE (`GET …/accessList/{entry}/status`,
//!   NetworkPermissionEntryStatus: PENDING, FAILED, ACTIVE) before it connects;
//! - it is removed when the command ends, also after Ctrl-C: the DELETE is a clean-up call that
//!   Ctrl-C does not cut short (`Call::finishing`);
//! - an entry of the address that was there before the run is left alone, and not removed.
//!
//! While one is open, poactl's own connections go through the clusters' public string:
//! `${atlas.clusters.NAME.private_srv}` in `database.uri` is read as `….srv` (`public_route`).
//! What poactl writes for the app (`output`) is unchanged.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use reqwest::Method;
use serde_json::{Value, json};

use super::client::version::V2023_01_01;
use super::client::{AtlasClient, Call, seg};
use crate::providers::{ProviderError, Result};
use crate::spec::LoadedSpec;

use crate::resource::TEMPORARY_ACCESS_COMMENT as COMMENT_PREFIX;

/// Where the runner's public address is asked for when none is given: AWS' own service,
/// which answers the caller's address and a newline. `POACTL_RUNNER_ADDRESS_URL` overrides it.
const ADDRESS_SERVICE: &str = "https://checkip.amazonaws.com";

/// How long an entry may wait to become ACTIVE (Atlas applies it to every cloud provider
/// first; PENDING in the meantime).
const ACTIVE_WITHIN: Duration = Duration::from_secs(300);

/// Set while an entry is open: poactl's connections then take the public route.
static IN_EFFECT: AtomicBool = AtomicBool::new(false);

/// The entry this run wrote (`203.0.113.7/32`), while it is open.
static OWN: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

/// Whether this run let itself in through the public endpoint.
pub fn in_effect() -> bool {
    IN_EFFECT.load(Ordering::SeqCst)
}

/// Whether `key` is the entry this run wrote: it is the run's own, not a live resource to
/// list, and it is gone when the run ends.
pub fn is_own(key: &str) -> bool {
    OWN.lock().unwrap_or_else(|e| e.into_inner()).as_deref() == Some(key)
}

fn set_own(key: Option<String>) {
    *OWN.lock().unwrap_or_else(|e| e.into_inner()) = key;
}

/// `database.uri` with every reference to a cluster's private string turned into one to its
/// public string (`${atlas.clusters.main.private_srv}` -> `${atlas.clusters.main.srv}`).
pub fn public_route(uri: &str) -> String {
    uri.replace(".private_srv}", ".srv}")
}

/// Whether an access-list entry is one `--temporary-access` wrote.
pub fn is_temporary(entry: &Value) -> bool {
    let comment = entry.get("comment").and_then(Value::as_str).unwrap_or_default();
    comment.starts_with(COMMENT_PREFIX) && entry.get("deleteAfterDate").and_then(Value::as_str).is_some()
}

/// The entry this run opened (or found there already), to close when the command ends.
pub struct Opened {
    client: AtlasClient,
    /// The entry's path (`…/accessList/203.0.113.7%2F32`).
    path: String,
    /// The address as Atlas keys it (`203.0.113.7/32`).
    pub entry: String,
    /// When Atlas removes it by itself (ISO 8601), or `None` when the address was allowed
    /// before this run and nothing was written.
    pub until: Option<String>,
    pub project: String,
}

impl Opened {
    /// Removes the entry this run wrote (a 404 means Atlas already did); an entry that was
    /// there before, or that is no longer temporary, is kept. Runs after Ctrl-C too. `true`
    /// when the run's entry is gone.
    pub async fn close(self) -> Result<bool> {
        IN_EFFECT.store(false, Ordering::SeqCst);
        set_own(None);
        if self.until.is_none() {
            return Ok(false);
        }
        // An apply may have made the address a declared entry meanwhile (a POST of an existing
        // entry updates it): that one stays.
        match self.client.send(&Call::new(Method::GET, &self.path, V2023_01_01).finishing()).await {
            Ok((_, entry)) if !is_temporary(&entry) => return Ok(false),
            Err(e) if e.is_not_found() => return Ok(true),
            _ => {}
        }
        match self.client.send(&Call::new(Method::DELETE, &self.path, V2023_01_01).finishing()).await {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(true),
            Err(e) => Err(e.into()),
        }
    }
}

/// Opens the entry for `requested` (an address, or `auto` to ask `ADDRESS_SERVICE`) in the
/// environment's project, for `lifetime`. `None` when the project does not exist yet: there is
/// no cluster to reach then.
pub async fn open(loaded: &LoadedSpec, requested: &str, lifetime: Duration) -> Result<Option<Opened>> {
    let atlas = loaded.spec.atlas.as_ref().ok_or_else(|| {
        ProviderError::Config(format!(
            "--temporary-access: environment \"{}\" has no `atlas` section, so there is no access list to open",
            loaded.env
        ))
    })?;
    let address = match requested {
        "auto" => runner_address().await?,
        given => given.parse::<IpAddr>().map_err(|_| {
            ProviderError::Config(format!(
                "--temporary-access {given}: not an IP address; give this runner's public address (203.0.113.7), or no value to look it up"
            ))
        })?,
    };
    if !is_public(address) {
        return Err(ProviderError::Config(format!(
            "--temporary-access {address}: a private or local address; Atlas sees the runner's public address (its NAT's), so give that one, or no value to look it up"
        )));
    }
    let client = AtlasClient::from_env().map_err(ProviderError::Atlas)?;
    let groups =
        client.list_where(&format!("/api/atlas/v2/orgs/{}/groups", seg(&atlas.org_id)), V2023_01_01, &[("name", &atlas.project)]).await?;
    let Some(group) = groups
        .iter()
        .find(|g| g.get("name").and_then(Value::as_str) == Some(atlas.project.as_str()))
        .and_then(|g| g.get("id").and_then(Value::as_str))
        .map(String::from)
    else {
        return Ok(None);
    };
    let entry = match address {
        IpAddr::V4(_) => format!("{address}/32"),
        IpAddr::V6(_) => format!("{address}/128"),
    };
    let list = format!("/api/atlas/v2/groups/{group}/accessList");
    let path = format!("{list}/{}", seg(&entry));
    let mut opened = Opened { client, path, entry, until: None, project: atlas.project.clone() };
    // An entry the address already has is someone's decision: POSTing ours would make it
    // temporary (a POST of an existing entry updates it), and closing would delete it.
    if let Some(existing) = opened.client.get_opt(&opened.path, V2023_01_01).await?
        && !is_temporary(&existing)
    {
        IN_EFFECT.store(true, Ordering::SeqCst);
        return Ok(Some(opened));
    }
    let until = crate::clock::iso_at(SystemTime::now() + lifetime);
    // The comment is at most 80 characters (NetworkPermissionEntry.comment, maxLength 80).
    let comment: String = format!("{COMMENT_PREFIX}: {} run", loaded.env).chars().take(80).collect();
    let body = json!([{"ipAddress": address.to_string(), "deleteAfterDate": until, "comment": comment}]);
    opened.until = Some(until);
    set_own(Some(opened.entry.clone()));
    // From here on the entry may exist: whatever happens next, the caller closes it.
    let written = opened.client.post(&list, V2023_01_01, body).await;
    if let Err(e) = written {
        let _ = opened.close().await;
        return Err(e.into());
    }
    if let Err(e) = wait_active(&opened).await {
        let _ = opened.close().await;
        return Err(e);
    }
    IN_EFFECT.store(true, Ordering::SeqCst);
    Ok(Some(opened))
}

async fn wait_active(opened: &Opened) -> Result<()> {
    let status_path = format!("{}/status", opened.path);
    let started = std::time::Instant::now();
    let mut last = String::from("unknown");
    while started.elapsed() < ACTIVE_WITHIN {
        // Right after the POST the entry may not be readable yet: that is PENDING too.
        let status = opened.client.get_opt(&status_path, V2023_01_01).await?;
        match status.as_ref().and_then(|s| s.get("STATUS")).and_then(Value::as_str) {
            Some("ACTIVE") => return Ok(()),
            Some("FAILED") => {
                return Err(ProviderError::Refused(format!(
                    "Atlas could not apply the temporary access-list entry {} (status FAILED); run again, or run poactl inside the VPC",
                    opened.entry
                )));
            }
            Some(other) => last = other.to_string(),
            None => last = "not listed yet".into(),
        }
        if crate::interrupt::requested() {
            return Err(ProviderError::Refused("interrupted while waiting for the temporary access-list entry".into()));
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(2)) => {}
            () = crate::interrupt::wait() => {}
        }
    }
    Err(ProviderError::Timeout {
        what: format!("the temporary access-list entry {}", opened.entry),
        seconds: ACTIVE_WITHIN.as_secs(),
        state: last,
    })
}

/// This runner's public address, from `ADDRESS_SERVICE` (or `POACTL_RUNNER_ADDRESS_URL`).
async fn runner_address() -> Result<IpAddr> {
    let url = std::env::var("POACTL_RUNNER_ADDRESS_URL").unwrap_or_else(|_| ADDRESS_SERVICE.to_string());
    let attempt = crate::deadline::current().attempt;
    let http = reqwest::Client::builder()
        .timeout(attempt)
        .build()
        .map_err(|e| ProviderError::Config(format!("cannot set up the HTTP client: {e}")))?;
    let failed = |why: String| {
        ProviderError::Config(format!(
            "--temporary-access: cannot learn this runner's public address from {url} ({why}); give it: --temporary-access 203.0.113.7"
        ))
    };
    let answer = tokio::select! {
        a = http.get(&url).send() => a,
        () = crate::interrupt::wait() => return Err(failed("interrupted".into())),
    };
    let text = answer.and_then(reqwest::Response::error_for_status).map_err(|e| failed(crate::secrets::error_chain(&e)))?;
    let body = text.text().await.map_err(|e| failed(crate::secrets::error_chain(&e)))?;
    parse_address(&body).ok_or_else(|| failed(format!("it answered {:?}, not an address", body.chars().take(60).collect::<String>())))
}

/// The address in an address service's answer (`203.0.113.7\n`).
fn parse_address(body: &str) -> Option<IpAddr> {
    body.trim().parse().ok()
}

/// Whether Atlas could see this address as a client's: not private, loopback, link-local or
/// unspecified (RFC 1918, RFC 4193, RFC 6598 shared space).
fn is_public(a: IpAddr) -> bool {
    match a {
        IpAddr::V4(v4) => {
            let [a0, a1, ..] = v4.octets();
            let shared = a0 == 100 && (64..128).contains(&a1);
            !(v4.is_private() || v4.is_loopback() || v4.is_link_local() || v4.is_unspecified() || v4.is_broadcast() || shared)
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            let unique_local = first & 0xfe00 == 0xfc00;
            let link_local = first & 0xffc0 == 0xfe80;
            !(v6.is_loopback() || v6.is_unspecified() || unique_local || link_local)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_strings_become_public_ones_and_nothing_else_changes() {
        let cases = [
            ("${atlas.clusters.main.private_srv}", "${atlas.clusters.main.srv}"),
            ("${atlas.clusters.main.private_srv}/app?retryWrites=true", "${atlas.clusters.main.srv}/app?retryWrites=true"),
            ("${atlas.clusters.main.srv}", "${atlas.clusters.main.srv}"),
            ("mongodb+srv://main-pl-0.abcde.mongodb.net", "mongodb+srv://main-pl-0.abcde.mongodb.net"),
        ];
        for (given, want) in cases {
            assert_eq!(public_route(given), want, "{given}");
        }
    }

    #[test]
    fn only_entries_with_the_prefix_and_an_expiry_are_temporary() {
        let cases = [
            (json!({"comment": "poactl temporary access: prod run", "deleteAfterDate": "2026-12-07T13:00:00Z"}), true),
            (json!({"comment": "poactl temporary access: prod run"}), false),
            (json!({"comment": "office", "deleteAfterDate": "2026-12-07T13:00:00Z"}), false),
            (json!({"cidrBlock": "10.0.0.0/16"}), false),
        ];
        for (entry, want) in cases {
            assert_eq!(is_temporary(&entry), want, "{entry}");
        }
    }

    #[test]
    fn addresses_are_read_from_the_answer_and_only_public_ones_are_taken() {
        let cases = [
            ("203.0.113.7\n", Some(true)),
            ("  2001:db8::7 \n", Some(true)),
            ("10.0.3.4\n", Some(false)),
            ("100.64.0.1", Some(false)),
            ("192.168.1.1", Some(false)),
            ("127.0.0.1", Some(false)),
            ("fd00::1", Some(false)),
            ("<html>rate limited</html>", None),
            ("", None),
        ];
        for (body, want) in cases {
            assert_eq!(parse_address(body).map(is_public), want, "{body:?}");
        }
    }
}
