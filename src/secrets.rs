//! Values read through `${env:...}`: they are secrets and are never printed.
//!
//! Plans mark sensitive fields structurally; this is the second line of defence: every text
//! poactl prints (plans, JSON, errors, progress) passes through [`redact`], which replaces any
//! known secret with `(sensitive)`.

use std::sync::{Mutex, OnceLock};

pub(crate) const REDACTED: &str = "(sensitive)";

/// Secrets shorter than this are matched only as whole values, not inside other text: a
/// one-character secret would otherwise blank out every occurrence of that character.
const MIN_SUBSTRING_LEN: usize = 4;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Secrets {
    values: Vec<String>,
}

impl Secrets {
    /// Adds a secret, and the forms a service may echo it back in: JSON-escaped (an error that
    /// quotes the request body) and percent-encoded (a URL, a form, a connection string).
    pub fn add(&mut self, value: String) {
        if value.is_empty() {
            return;
        }
        let json = serde_json::to_string(&value).map(|q| q[1..q.len() - 1].to_string()).unwrap_or_default();
        let percent: String = value
            .bytes()
            .map(|b| if b.is_ascii_alphanumeric() || b"-._~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") })
            .collect();
        for v in [value, json, percent] {
            if !v.is_empty() && !self.values.contains(&v) {
                self.values.push(v);
            }
        }
        // Longest first, so a secret that contains another is replaced whole.
        self.values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    }

    /// Whether a value shown as a whole (a plan field) contains a secret.
    pub fn touches(&self, value: &str) -> bool {
        self.values.iter().any(|s| value == s || (s.len() >= MIN_SUBSTRING_LEN && value.contains(s.as_str())))
    }

    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in &self.values {
            if s.len() >= MIN_SUBSTRING_LEN {
                out = out.replace(s.as_str(), REDACTED);
            } else if out == *s {
                out = REDACTED.to_string();
            }
        }
        out
    }
}

fn global() -> &'static Mutex<Secrets> {
    static GLOBAL: OnceLock<Mutex<Secrets>> = OnceLock::new();
    GLOBAL.get_or_init(|| Mutex::new(Secrets::default()))
}

/// Registers the secrets of a loaded spec for the process-wide redaction of output.
pub(crate) fn register(secrets: &Secrets) {
    let mut g = global().lock().unwrap_or_else(|e| e.into_inner());
    for v in &secrets.values {
        g.add(v.clone());
    }
}

/// Registers one secret value that does not come from the spec (a credential from the
/// environment: an Atlas client secret or private key, an AWS secret key).
/// Real credentials are long (an AWS secret key has 40 characters); a short value such as the
/// emulators' `test` is no secret, and redacting it would blank out ordinary words.
pub(crate) fn register_value(value: &str) {
    if value.len() >= 12 {
        global().lock().unwrap_or_else(|e| e.into_inner()).add(value.to_string());
    }
}

/// Redacts every registered secret from a text about to be printed.
pub(crate) fn redact(text: &str) -> String {
    let g = global().lock().unwrap_or_else(|e| e.into_inner());
    g.redact(text)
}

/// An error and its causes on one line, secrets redacted. Many errors say little at the top
/// (reqwest hides DNS and TLS causes below "error sending request"; Tera says "failed to
/// render"), and a cause the text above already quotes is left out.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    redact(&out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_cases() {
        let mut s = Secrets::default();
        s.add("hunter2-long".into());
        s.add("ab".into());
        let table = [
            ("password is hunter2-long!", "password is (sensitive)!"),
            ("ab", "(sensitive)"),
            ("abc cab", "abc cab"),
            ("nothing", "nothing"),
        ];
        for (input, want) in table {
            assert_eq!(s.redact(input), want, "{input}");
        }
        // A service that echoes the request body or URL shows it escaped or encoded.
        s.add("p\"w/d+x=1".into());
        assert_eq!(s.redact(r#"{"password":"p\"w/d+x=1"}"#), r#"{"password":"(sensitive)"}"#);
        assert_eq!(s.redact("mongodb://u:p%22w%2Fd%2Bx%3D1@host"), "mongodb://u:(sensitive)@host");
        assert!(s.touches("x hunter2-long y"));
        assert!(s.touches("ab"));
        assert!(!s.touches("abc"));
    }

    #[test]
    fn an_error_chain_names_each_cause_once() {
        #[derive(Debug)]
        struct E(&'static str, Option<Box<E>>);
        impl std::fmt::Display for E {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.0)
            }
        }
        impl std::error::Error for E {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                self.1.as_deref().map(|e| e as _)
            }
        }
        let dns = E("dns error: no such host", None);
        let quoted = E("error sending request: dns error: no such host", Some(Box::new(dns)));
        let top = E("cannot reach Atlas", Some(Box::new(quoted)));
        assert_eq!(error_chain(&top), "cannot reach Atlas: error sending request: dns error: no such host");
    }
}
