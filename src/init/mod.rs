//! `poactl init`: a starting `environments/` (base, dev, staging, prod) from the templates in
//! `templates/init/`, non-interactive. What it writes passes `validate` on the first run: the
//! secrets are `${env:...}` references that `validate` only notes until they are set.
//!
//! It never overwrites a file unless asked (`force`): a spec someone already wrote is work
//! that cannot be redone.

use std::path::{Path, PathBuf};

use serde_json::json;

use crate::view::{TemplateError, render_one};

const BASE: &str = include_str!("../../templates/init/base.yaml.tera");
const ENV: &str = include_str!("../../templates/init/env.yaml.tera");

/// The environments `init` writes, each with what sets it apart.
struct Stage {
    env: &'static str,
    title: &'static str,
    tier: &'static str,
    retention: &'static str,
    budget: u32,
    storage_gb: u32,
    log_gb: u32,
}

const STAGES: &[Stage] = &[
    Stage {
        env: "dev",
        title: "Development: a free M0 cluster, one uploads bucket behind CloudFront.",
        tier: "M0",
        retention: "7d",
        budget: 25,
        storage_gb: 5,
        log_gb: 1,
    },
    Stage {
        env: "staging",
        title: "Staging: a dedicated M10 with backups, production-shaped storage and CDN.",
        tier: "M10",
        retention: "14d",
        budget: 100,
        storage_gb: 20,
        log_gb: 2,
    },
    Stage {
        env: "prod",
        title: "Production: M10 with backup and point-in-time restore, autoscaling to M30, termination protection.",
        tier: "M10",
        retention: "30d",
        budget: 200,
        storage_gb: 50,
        log_gb: 10,
    },
];

/// What `init` is asked for.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    /// Lowercase letters, digits and dashes: it names buckets, projects and roles.
    pub app: String,
    /// The AWS region, e.g. `us-east-1`; the Atlas cluster goes to the same region.
    pub region: String,
    pub database: String,
    /// Where alarms are sent (each topic's email subscriber).
    pub email: String,
    /// The example collections and indexes (the marketplace's), or none.
    pub example: bool,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum InitError {
    #[error(
        "--app `{0}`: use 3 to 40 lowercase letters, digits and dashes, starting with a letter (it names buckets and roles), e.g. --app shop"
    )]
    App(String),
    #[error("--region `{0}`: not an AWS region name, e.g. --region us-east-1")]
    Region(String),
    #[error("--database `{0}`: use letters, digits, `_` and `-` (at most 38), e.g. --database shop_db")]
    Database(String),
    #[error("--email `{0}`: not an email address, e.g. --email ops@example.com")]
    Email(String),
    #[error("already there: {}; nothing was written. Move them away, or pass --force to overwrite", .0.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "))]
    Exists(Vec<PathBuf>),
    #[error("cannot write {path}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Template(#[from] TemplateError),
}

impl Options {
    fn check(&self) -> Result<(), InitError> {
        let a = &self.app;
        let app_ok = (3..=40).contains(&a.len())
            && a.starts_with(|c: char| c.is_ascii_lowercase())
            && !a.ends_with('-')
            && a.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !app_ok {
            return Err(InitError::App(a.clone()));
        }
        let parts: Vec<&str> = self.region.split('-').collect();
        let region_ok = parts.len() >= 3
            && parts[..parts.len() - 1].iter().all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase()))
            && parts[parts.len() - 1].parse::<u8>().is_ok();
        if !region_ok {
            return Err(InitError::Region(self.region.clone()));
        }
        let d = &self.database;
        if d.is_empty() || d.len() > 38 || !d.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            return Err(InitError::Database(d.clone()));
        }
        let e = &self.email;
        let email_ok = e.split_once('@').is_some_and(|(user, host)| !user.is_empty() && host.contains('.') && !host.starts_with('.'))
            && !e.chars().any(|c| c.is_whitespace() || matches!(c, '"' | '\'' | ',' | '[' | ']' | '{' | '}'));
        if !email_ok {
            return Err(InitError::Email(e.clone()));
        }
        Ok(())
    }
}

/// A default app name from a directory's name: lowercased, anything else made a dash.
pub(crate) fn app_name_from(dir: &Path) -> String {
    let raw = dir.file_name().map(|n| n.to_string_lossy().to_lowercase()).unwrap_or_default();
    let mut name: String = raw.chars().map(|c| if c.is_ascii_lowercase() || c.is_ascii_digit() { c } else { '-' }).collect();
    name = name.trim_matches('-').to_string();
    name.truncate(40);
    let name = name.trim_end_matches('-').to_string();
    if name.len() < 3 || !name.starts_with(|c: char| c.is_ascii_lowercase()) { "app".to_string() } else { name }
}

/// The files, by name, as `init` would write them.
pub(crate) fn render(o: &Options) -> Result<Vec<(String, String)>, InitError> {
    o.check()?;
    let mut files = vec![(
        "base.yaml".to_string(),
        render_one("base.yaml", BASE, &json!({"app": o.app, "database": o.database, "example": o.example}))?,
    )];
    let regional_topic = if o.region == "us-east-1" { "ops".to_string() } else { format!("ops-{}", o.region) };
    for s in STAGES {
        let ctx = json!({
            "env": s.env,
            "title": s.title,
            "app": o.app,
            "secret_prefix": o.app.to_uppercase().replace('-', "_"),
            "region": o.region,
            "atlas_region": o.region.to_uppercase().replace('-', "_"),
            "database": o.database,
            "email": o.email,
            "tier": s.tier,
            "retention": s.retention,
            "budget": s.budget,
            "alert_low": s.budget / 2,
            "storage_gb": s.storage_gb,
            "cdn_transfer_gb": s.storage_gb * 10,
            "cdn_requests": s.storage_gb * 40_000,
            "log_gb": s.log_gb,
            "metric_namespace": o.app,
            "regional_topic": regional_topic,
        });
        files.push((format!("{}.yaml", s.env), render_one(s.env, ENV, &ctx)?));
    }
    Ok(files)
}

/// Writes the files into `dir` (made if missing). Without `force`, nothing is written when
/// any of them exists.
pub(crate) fn write(dir: &Path, files: &[(String, String)], force: bool) -> Result<Vec<PathBuf>, InitError> {
    let paths: Vec<PathBuf> = files.iter().map(|(name, _)| dir.join(name)).collect();
    let existing: Vec<PathBuf> = paths.iter().filter(|p| p.exists()).cloned().collect();
    if !force && !existing.is_empty() {
        return Err(InitError::Exists(existing));
    }
    std::fs::create_dir_all(dir).map_err(|source| InitError::Write { path: dir.display().to_string(), source })?;
    for ((_, text), path) in files.iter().zip(&paths) {
        // Written beside, then renamed: an interrupted init leaves no half file.
        let tmp = path.with_extension("yaml.tmp");
        std::fs::write(&tmp, text)
            .and_then(|()| std::fs::rename(&tmp, path))
            .map_err(|source| InitError::Write { path: path.display().to_string(), source })?;
    }
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> Options {
        Options {
            app: "shop".into(),
            region: "eu-west-1".into(),
            database: "shop_db".into(),
            email: "ops@shop.example".into(),
            example: true,
        }
    }

    #[test]
    fn bad_options_are_refused_with_the_flag_and_an_example() {
        for (change, want) in [
            (Options { app: "Shop".into(), ..options() }, "--app `Shop`"),
            (Options { app: "ab".into(), ..options() }, "--app"),
            (Options { app: "shop-".into(), ..options() }, "--app"),
            (Options { region: "Europe".into(), ..options() }, "--region `Europe`"),
            (Options { region: "eu-west".into(), ..options() }, "--region"),
            (Options { database: "my db".into(), ..options() }, "--database"),
            (Options { email: "ops".into(), ..options() }, "--email `ops`"),
            (Options { email: "a@b.c, x@y.z".into(), ..options() }, "--email"),
        ] {
            let e = render(&change).unwrap_err().to_string();
            assert!(e.contains(want) && e.contains("e.g."), "{want}: {e}");
        }
    }

    #[test]
    fn a_default_app_name_is_made_from_the_directory() {
        for (dir, want) in [("/src/My Shop", "my-shop"), ("/x/ab", "app"), ("/x/2fast", "app"), ("/x/shop_api", "shop-api")] {
            assert_eq!(app_name_from(Path::new(dir)), want, "{dir}");
        }
    }

    #[test]
    fn outside_us_east_1_the_regional_alarms_get_a_topic_of_their_region() {
        let files = render(&options()).unwrap();
        let prod = &files.iter().find(|(n, _)| n == "prod.yaml").unwrap().1;
        assert!(prod.contains("ops-eu-west-1: { email: [ops@shop.example], region: eu-west-1 }"), "{prod}");
        assert!(prod.contains("${notifications.topics.ops-eu-west-1.arn}"), "{prod}");
        assert!(prod.contains("region: EU_WEST_1") && prod.contains("${env:SHOP_DB_PASSWORD}"), "{prod}");
        let mut us = options();
        us.region = "us-east-1".into();
        let prod = render(&us).unwrap().into_iter().find(|(n, _)| n == "prod.yaml").unwrap().1;
        assert!(!prod.contains("ops-us-east-1"), "{prod}");
    }

    #[test]
    fn nothing_is_overwritten_without_force() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("prod.yaml"), "environment: prod # mine\n").unwrap();
        let files = render(&options()).unwrap();
        let e = write(dir.path(), &files, false).unwrap_err().to_string();
        assert!(e.contains("prod.yaml") && e.contains("--force"), "{e}");
        assert!(!dir.path().join("dev.yaml").exists(), "nothing at all is written");
        assert_eq!(std::fs::read_to_string(dir.path().join("prod.yaml")).unwrap(), "environment: prod # mine\n");
        write(dir.path(), &files, true).unwrap();
        assert!(std::fs::read_to_string(dir.path().join("prod.yaml")).unwrap().contains("protect: true"));
    }
}
