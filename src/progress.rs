//! Progress on a terminal: spinners and bars on stderr, only when stderr is a TTY and the
//! user did not ask for `--quiet`. Everywhere else every call here is a no-op.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

#[derive(Clone)]
pub struct Progress {
    multi: Option<MultiProgress>,
    /// Whether [`Progress::notice`] lines are shown: always, unless the user asked for quiet.
    notices: bool,
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Progress").field("enabled", &self.multi.is_some()).finish()
    }
}

impl Progress {
    /// Progress shown on stderr when it is a terminal and `quiet` is off.
    pub fn for_terminal(quiet: bool) -> Self {
        if quiet || !std::io::stderr().is_terminal() || std::env::var_os("POACTL_NO_PROGRESS").is_some() {
            return Progress { multi: None, notices: !quiet };
        }
        Progress { multi: Some(MultiProgress::with_draw_target(ProgressDrawTarget::stderr())), notices: true }
    }

    pub fn hidden() -> Self {
        Progress { multi: None, notices: false }
    }

    /// A spinner for a wait of unknown length (a cluster becoming IDLE).
    pub fn spinner(&self, message: impl Into<String>) -> Task {
        let Some(multi) = &self.multi else { return Task { bar: None } };
        let bar = multi.add(ProgressBar::new_spinner());
        bar.set_style(ProgressStyle::with_template("{spinner} {msg} [{elapsed}]").unwrap_or_else(|_| ProgressStyle::default_spinner()));
        bar.set_message(crate::secrets::redact(&message.into()));
        bar.enable_steady_tick(Duration::from_millis(120));
        Task { bar: Some(bar) }
    }

    /// A bar over a known number of steps (resources observed, indexes built).
    pub fn bar(&self, len: u64, message: impl Into<String>) -> Task {
        self.styled(len, "{msg} [{bar:30}] {pos}/{len} [{elapsed}]", message.into())
    }

    /// A bar over bytes, with the rate and the time left (a collection copied, files uploaded).
    pub fn bytes(&self, len: u64, message: impl Into<String>) -> Task {
        self.styled(len, "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta} [{elapsed}]", message.into())
    }

    fn styled(&self, len: u64, template: &str, message: String) -> Task {
        let Some(multi) = &self.multi else { return Task { bar: None } };
        let bar = multi.add(ProgressBar::new(len));
        bar.set_style(ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()).progress_chars("=> "));
        bar.set_message(crate::secrets::redact(&message));
        Task { bar: Some(bar) }
    }

    /// Something a person must act on during a run (DNS records to create by hand): printed on
    /// stderr above the bars, or as a plain line off a terminal; only `--quiet` hides it.
    pub fn notice(&self, line: impl AsRef<str>) {
        let line = crate::secrets::redact(line.as_ref());
        match &self.multi {
            Some(multi) => {
                let _ = multi.println(line);
            }
            None if self.notices => eprintln!("{line}"),
            None => {}
        }
    }

    /// A line printed above the bars (only when progress is shown).
    pub fn println(&self, line: impl AsRef<str>) {
        if let Some(multi) = &self.multi {
            let _ = multi.println(crate::secrets::redact(line.as_ref()));
        }
    }
}

/// One spinner or bar; finishing or dropping it clears it.
pub struct Task {
    bar: Option<ProgressBar>,
}

impl Task {
    pub fn set_message(&self, message: impl Into<String>) {
        if let Some(bar) = &self.bar {
            bar.set_message(crate::secrets::redact(&message.into()));
        }
    }

    pub fn inc(&self, n: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(n);
        }
    }

    pub fn finish(self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Task {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar
            && !bar.is_finished()
        {
            bar.finish_and_clear();
        }
    }
}
