//! Values read through `${env:...}`: they are secrets and are never printed.
//!
//! Plans mark sensitive fields structurally; this is the second line of defence: every text
//! poactl prints (plans, JSON, errors, progress) passes through [`redact`], which replaces any
//! known secret with `(sensitive)`.

use std::sync::{Mutex, OnceLock};

pub const REDACTED: &str = "(sensitive)";

/// Secrets shorter than this are matched only as whole values, not inside other text: a
/// one-character secret would otherwise blank out every occurrence of that character.
const MIN_SUBSTRING_LEN: usize = 4;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Secrets {
    values: Vec<String>,
}

impl Secrets {
    pub fn add(&mut self, value: String) {
        if !value.is_empty() && !self.values.contains(&value) {
            self.values.push(value);
            // Longest first, so a secret that contains another is replaced whole.
            self.values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        }
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
pub fn register(secrets: &Secrets) {
    let mut g = global().lock().unwrap_or_else(|e| e.into_inner());
    for v in &secrets.values {
        g.add(v.clone());
    }
}

/// Redacts every registered secret from a text about to be printed.
pub fn redact(text: &str) -> String {
    let g = global().lock().unwrap_or_else(|e| e.into_inner());
    g.redact(text)
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
        assert!(s.touches("x hunter2-long y"));
        assert!(s.touches("ab"));
        assert!(!s.touches("abc"));
    }
}
