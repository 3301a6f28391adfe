//! `make demo`'s script, end to end, on the debug binary: every step passes and every process
//! it started is gone afterwards.

use std::process::Command;

use crate::support::repo;

#[test]
fn the_demo_runs_end_to_end_and_leaves_no_process_behind() {
    let dir = tempfile::tempdir().unwrap();
    let pids_file = dir.path().join("pids");
    let python = std::env::var_os("POACTL_MOTO_PYTHON").map(std::path::PathBuf::from).unwrap_or_else(|| repo().join(".venv/bin/python"));
    let out = Command::new(repo().join("scripts/demo.sh"))
        .env("POACTL", env!("CARGO_BIN_EXE_poactl"))
        .env("MOTO_PYTHON", python)
        .env("DEMO_PIDS_FILE", &pids_file)
        .env_remove("AWS_PROFILE")
        .env_remove("NO_COLOR")
        .output()
        .expect("run scripts/demo.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the demo failed:\n{stdout}\n{stderr}");
    for want in [
        "[24/24]",
        "+ notifications.topics.alerts: created",
        "+ monitoring.log_groups./poafix/local/api: created",
        "+ app.iam.role: created",
        "email:ops@poafix.example is pending confirmation",
        "# No AWS_ACCESS_KEY_ID or AWS_SECRET_ACCESS_KEY: the app runs as the IAM role poafix-local-app",
        "+ monitoring.uptime.api: created",
        "~ cdn.distributions.assets: updated",
        "+ atlas.encryption.poafix-local-private: created",
        "- atlas.encryption.poafix-local-private: deleted",
        "VPC-only, 1 private endpoint",
        "+ atlas.private_endpoints.US_EAST_1: created",
        "MONGODB_ATLAS_URI=mongodb+srv://main-pl-0.",
        "Monthly cost: $0.00 -> $73.00",
        "Check of \"local\":",
        "Apply complete! Resources: 18 added",
        "No changes.",
        "versioning: live false, spec true",
        "No drift",
        "CLOUDFRONT_URL=https://",
        "verified (400 documents",
        "0 inserted 400 already there",
        "Verified 540/540 object(s)",
        "users.avatar: 400 document(s), 300 value(s): 300 rewritten",
        "Audit of \"local\"",
        "arn:aws:s3:::poafix-local-uploads/*",
        "Demo complete.",
    ] {
        assert!(stdout.contains(want), "missing {want:?} in:\n{stdout}");
    }
    assert!(!stdout.contains("demo-password-not-a-secret") && !stderr.contains("demo-password-not-a-secret"), "the password was printed");
    let pids = std::fs::read_to_string(&pids_file).unwrap();
    for pid in pids.split_whitespace() {
        let alive = std::path::Path::new(&format!("/proc/{pid}")).exists()
            && !std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default().contains(") Z ");
        assert!(!alive, "process {pid} started by the demo is still running");
    }
}
