//! How long a request to MongoDB, Atlas or AWS may go unanswered.
//!
//! Every request has two deadlines: one **attempt** (`--request-timeout`, 30 s by default),
//! and the whole **call** with its retries (three attempts' worth, and never past an apply's
//! `--timeout`). A read that goes unanswered is asked again within the call's deadline (it
//! changes nothing); a write is sent once per attempt only where the service makes a repeat
//! harmless, and otherwise ends as "outcome unknown", so that the next run reads the state
//! back before it writes again. Ctrl-C ends any such wait at once.
//!
//! Where a client has its own timeouts they are set from these (reqwest's per-request
//! timeout, the AWS SDK's `operation_attempt_timeout` and `operation_timeout`, the MongoDB
//! driver's connect and server-selection timeouts). The MongoDB driver has none for an
//! operation that was sent and never answered (its `socket_timeout` is deprecated and
//! ignored: mongodb 3.x `client/options.rs`, "the Rust driver does not support
//! socketTimeoutMS"), so its calls go through [`read`] and [`write`] here.

use std::future::IntoFuture;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// One attempt's default bound: long enough for a slow listing page, short enough that CI
/// learns of a dead peer within minutes.
pub(crate) const DEFAULT_ATTEMPT: Duration = Duration::from_secs(30);
/// The call's bound, in attempts.
const ATTEMPTS: u32 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Deadlines {
    pub attempt: Duration,
    pub call: Duration,
}

impl Deadlines {
    pub(crate) fn from_attempt(attempt: Duration) -> Deadlines {
        Deadlines { attempt, call: attempt * ATTEMPTS }
    }

    /// Never past the run's own bound (apply's `--timeout`).
    pub(crate) fn within(self, run: Option<Duration>) -> Deadlines {
        match run {
            Some(r) => Deadlines { attempt: self.attempt.min(r), call: self.call.min(r) },
            None => self,
        }
    }
}

static CURRENT: OnceLock<Deadlines> = OnceLock::new();

/// Sets the run's deadlines, once, from the command line (later calls change nothing).
pub(crate) fn set(d: Deadlines) {
    let _ = CURRENT.set(d);
}

/// The run's deadlines.
pub(crate) fn current() -> Deadlines {
    *CURRENT.get_or_init(|| Deadlines::from_attempt(DEFAULT_ATTEMPT))
}

/// A request that was not answered in time, or a wait cut short by Ctrl-C.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Unanswered {
    #[error(
        "TIMED OUT: {service} at {endpoint} did not answer {operation} within {}{}",
        seconds(*waited),
        if *outcome_unknown { "; the outcome is unknown: the next run reads the state back before it writes again" } else { "" }
    )]
    TimedOut { service: &'static str, endpoint: String, operation: String, waited: Duration, outcome_unknown: bool },
    #[error("interrupted while waiting for {service} at {endpoint} to answer {operation}{}", if *outcome_unknown { "; the outcome is unknown" } else { "" })]
    Interrupted { service: &'static str, endpoint: String, operation: String, outcome_unknown: bool },
}

impl Unanswered {
    pub fn outcome_unknown(&self) -> bool {
        match self {
            Unanswered::TimedOut { outcome_unknown, .. } | Unanswered::Interrupted { outcome_unknown, .. } => *outcome_unknown,
        }
    }
}

pub(crate) fn seconds(d: Duration) -> String {
    format!("{:.0} s", d.as_secs_f64().max(1.0).floor())
}

/// Where a request goes and what it is, for the message when it goes unanswered.
#[derive(Debug, Clone)]
pub(crate) struct Request<'a> {
    pub service: &'static str,
    pub endpoint: &'a str,
    pub operation: &'a str,
}

/// A call's outcome: the client's own answer (`Ok` or its error), or none in time.
pub(crate) type Bounded<T, E> = Result<Result<T, E>, Unanswered>;

/// An idempotent read: each attempt bounded, retried while the call's deadline allows, ended
/// at once by Ctrl-C.
pub(crate) async fn read<T, E, F, Fut>(req: Request<'_>, attempt: F) -> Bounded<T, E>
where
    F: FnMut() -> Fut,
    Fut: IntoFuture<Output = Result<T, E>>,
{
    read_within(current(), req, attempt).await
}

async fn read_within<T, E, F, Fut>(d: Deadlines, req: Request<'_>, mut attempt: F) -> Bounded<T, E>
where
    F: FnMut() -> Fut,
    Fut: IntoFuture<Output = Result<T, E>>,
{
    let started = Instant::now();
    loop {
        let left = d.call.saturating_sub(started.elapsed());
        match once(&req, d.attempt.min(left), attempt(), false).await {
            Err(Unanswered::TimedOut { .. }) if started.elapsed() + d.attempt / 10 < d.call => continue,
            Err(Unanswered::TimedOut { service, endpoint, operation, .. }) => {
                return Err(Unanswered::TimedOut { service, endpoint, operation, waited: started.elapsed(), outcome_unknown: false });
            }
            other => return other,
        }
    }
}

/// The slowest link a transfer is given time for: a request that carries `bytes` may take one
/// attempt plus the time they take at this rate (8 MiB: 30 s + 32 s), so a slow uplink is not
/// cut off while a peer that stopped answering still is.
pub(crate) const SLOWEST_BYTES_PER_SECOND: u64 = 256 * 1024;

/// The time `bytes` take at the slowest rate allowed.
pub(crate) fn moving(bytes: u64) -> Duration {
    Duration::from_millis(bytes.saturating_mul(1000) / SLOWEST_BYTES_PER_SECOND)
}

/// A write carrying `bytes`, sent once: its attempt has time for them (`moving`).
pub(crate) async fn write_sized<T, E, Fut>(req: Request<'_>, bytes: u64, call: Fut) -> Bounded<T, E>
where
    Fut: IntoFuture<Output = Result<T, E>>,
{
    once(&req, current().attempt + moving(bytes), call, true).await
}

/// A write that works through data on the server (an index conversion), sent once and given
/// `limit` (the run's `--timeout`) instead of one attempt.
pub(crate) async fn write_for<T, E, Fut>(req: Request<'_>, limit: Duration, call: Fut) -> Bounded<T, E>
where
    Fut: IntoFuture<Output = Result<T, E>>,
{
    once(&req, limit, call, true).await
}

/// A write, sent once: unanswered within one attempt's deadline, its outcome is unknown.
pub(crate) async fn write<T, E, Fut>(req: Request<'_>, call: Fut) -> Bounded<T, E>
where
    Fut: IntoFuture<Output = Result<T, E>>,
{
    once(&req, current().attempt, call, true).await
}

/// A read that changes nothing, given `limit` once (a handshake bounded by the client itself,
/// with time to spare for the one request after it).
pub(crate) async fn step_for<T, E, Fut>(req: Request<'_>, limit: Duration, call: Fut) -> Bounded<T, E>
where
    Fut: IntoFuture<Output = Result<T, E>>,
{
    once(&req, limit, call, false).await
}

/// One bounded attempt that changes nothing and cannot be asked again as it was (a cursor's
/// next batch): unanswered, it ends with TIMED OUT.
pub(crate) async fn step<T, E, Fut>(req: Request<'_>, call: Fut) -> Bounded<T, E>
where
    Fut: IntoFuture<Output = Result<T, E>>,
{
    once(&req, current().attempt, call, false).await
}

async fn once<T, E, Fut>(req: &Request<'_>, limit: Duration, call: Fut, outcome_unknown: bool) -> Bounded<T, E>
where
    Fut: IntoFuture<Output = Result<T, E>>,
{
    let started = Instant::now();
    tokio::select! {
        r = tokio::time::timeout(limit, call.into_future()) => r.map_err(|_| Unanswered::TimedOut {
            service: req.service,
            endpoint: req.endpoint.to_string(),
            operation: req.operation.to_string(),
            waited: started.elapsed(),
            outcome_unknown,
        }),
        () = crate::interrupt::wait() => Err(Unanswered::Interrupted {
            service: req.service,
            endpoint: req.endpoint.to_string(),
            operation: req.operation.to_string(),
            outcome_unknown,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req() -> Request<'static> {
        Request { service: "MongoDB", endpoint: "db:27017", operation: "listIndexes" }
    }

    #[tokio::test]
    async fn an_unanswered_read_is_retried_until_the_call_deadline_and_a_write_is_not() {
        let d = Deadlines::from_attempt(Duration::from_millis(300));
        let mut attempts = 0;
        let r: Bounded<(), ()> = read_within(d, req(), || {
            attempts += 1;
            std::future::pending()
        })
        .await;
        assert_eq!(attempts, 3, "three attempts fit in the call's deadline");
        let e = r.unwrap_err();
        assert!(!e.outcome_unknown());
        assert!(e.to_string().starts_with("TIMED OUT: MongoDB at db:27017 did not answer listIndexes within"), "{e}");
        assert!(matches!(e, Unanswered::TimedOut { waited, .. } if waited >= d.call && waited < d.call * 2), "{e:?}");

        let mut answers = vec![Ok(7), Err("refused")].into_iter();
        let r: Bounded<i32, &str> = read_within(d, req(), || std::future::ready(answers.next().unwrap())).await;
        assert_eq!(r.unwrap(), Ok(7), "an answer ends the call");

        let w: Bounded<(), ()> = once(&req(), d.attempt, std::future::pending(), true).await;
        let e = w.unwrap_err();
        assert!(e.outcome_unknown() && e.to_string().contains("; the outcome is unknown: the next run reads the state back"), "{e}");
    }
}
