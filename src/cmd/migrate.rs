//! `poactl migrate data | uploads | urls`: finds the target from the spec and live state,
//! runs `crate::migrate`, shows progress, prints the report and picks the exit code.

use std::collections::{BTreeMap, BTreeSet};
use std::io::IsTerminal;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde_json::json;

use super::{format, load_env};
use crate::cli::{Global, MigrateCommand, MigrateDataArgs, MigrateGuard, MigrateUploadsArgs, MigrateUrlsArgs, OutputFormat};
use crate::migrate::copy::CopyOptions;
use crate::migrate::data::Source;
use crate::migrate::run;
use crate::migrate::select::Selection;
use crate::migrate::uploads::{self, CdnRules, Manifest};
use crate::migrate::{CollectionInfo, upload_run, urls};
use crate::progress::Progress;
use crate::providers::{self, Connections, Outputs};
use crate::resource::{Address, Kind};
use crate::spec::LoadedSpec;
use crate::{exit, secrets};

pub(super) async fn run(g: &Global, m: MigrateCommand) -> Result<u8> {
    match m {
        MigrateCommand::Data(a) => data_cmd(g, a).await,
        MigrateCommand::Uploads(a) => uploads_cmd(g, a).await,
        MigrateCommand::Urls(a) => urls_cmd(g, a).await,
    }
}

fn guard(loaded: &LoadedSpec, guard: &MigrateGuard) -> Result<()> {
    if loaded.spec.protect && !guard.allow_protected && !guard.dry_run {
        bail!(
            "environment \"{}\" has `protect: true`: migrate writes into it only with --allow-protected (try --dry-run first). Nothing was changed.",
            loaded.env
        );
    }
    Ok(())
}

fn progress(g: &Global) -> Progress {
    Progress::for_terminal(g.quiet || format(g) != OutputFormat::Text)
}

/// Live outputs of the declared resources of the kinds under these address prefixes.
async fn live_outputs(g: &Global, loaded: &LoadedSpec, prefixes: &[&str], progress: &Progress) -> Result<BTreeMap<Address, Outputs>> {
    let kinds: BTreeSet<Kind> = Kind::ALL.into_iter().filter(|k| prefixes.iter().any(|p| k.as_str().starts_with(p))).collect();
    let desired: Vec<_> = providers::desired(loaded).into_iter().filter(|d| kinds.contains(&d.address.kind)).collect();
    if desired.is_empty() {
        return Ok(BTreeMap::new());
    }
    Ok(super::observe_declared(g, loaded, &Connections::default(), desired, Default::default(), progress).await?.outputs)
}

/// The environment's database: `--mongodb-uri`, else `database.uri` resolved from live state
/// with `database.user`'s login.
async fn target_database(
    g: &Global,
    loaded: &LoadedSpec,
    cli_uri: Option<&str>,
    progress: &Progress,
) -> Result<(crate::migrate::Target, Vec<String>)> {
    let db = loaded
        .spec
        .database
        .as_ref()
        .context("the spec has no `database` section: add `database: { name: ..., uri: ... }` to say where the data goes")?;
    let uri = match cli_uri {
        Some(u) => u.to_string(),
        None => {
            let refs_atlas = db.uri.as_deref().is_some_and(|u| u.contains("${atlas."));
            let outputs = if refs_atlas { live_outputs(g, loaded, &["atlas."], progress).await? } else { BTreeMap::new() };
            providers::mongo_index::connection_string(loaded, &outputs)?
        }
    };
    // Outside a VPC-only environment's VPC, nothing past this point can work: say why.
    let way_out = cli_uri.is_none().then(|| providers::mongo_index::outside_the_vpc(loaded)).flatten();
    let unreachable = || format!("cannot reach the target database {}{}", db.name, way_out.map(|w| format!(" ({w})")).unwrap_or_default());
    let (mut opts, dropped) = providers::mongo_index::parse_waiting_for_dns(&uri).await.with_context(unreachable)?;
    for option in dropped {
        eprintln!("warning: the MongoDB URI's option {option} is not one the Rust driver knows: connecting without it");
    }
    providers::mongo_index::bound_client_options(&mut opts);
    opts.app_name = Some("poactl-migrate".into());
    let hosts: Vec<String> = opts.hosts.iter().map(|h| h.to_string()).collect();
    let client = mongodb::Client::with_options(opts).context("cannot set up the MongoDB client")?;
    let target = crate::migrate::Target { db: client.database(&db.name), endpoint: hosts.join(",") };
    target.read("ping", || target.db.run_command(mongodb::bson::doc! {"ping": 1})).await?.with_context(unreachable)?;
    Ok((target, hosts))
}

/// A size for people: B, kB, MB, GB (powers of 1000).
fn human(bytes: u64) -> String {
    match bytes {
        b if b < 1_000 => format!("{b} B"),
        b if b < 1_000_000 => format!("{:.1} kB", b as f64 / 1e3),
        b if b < 1_000_000_000 => format!("{:.1} MB", b as f64 / 1e6),
        b => format!("{:.2} GB", b as f64 / 1e9),
    }
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1_000_000.0
}

fn gb(bytes: u64) -> f64 {
    bytes as f64 / 1_000_000_000.0
}

/// `poactl migrate data`.
async fn data_cmd(g: &Global, a: MigrateDataArgs) -> Result<u8> {
    let loaded = load_env(g)?;
    guard(&loaded, &a.guard)?;
    let db_spec = loaded
        .spec
        .database
        .as_ref()
        .context("the spec has no `database` section: add `database: { name: ..., uri: ... }` to say where the data goes")?;
    let source = Source::open(&a.from, &db_spec.name, a.db.as_deref()).await?;
    let all = source.collections().await?;
    let Selection { chosen, mut notes, refused } = crate::migrate::select::select(all, &a.collections, db_spec, &source.describe())?;
    notes.splice(0..0, source.notes().iter().cloned());
    if !refused.is_empty() {
        for n in &notes {
            eprintln!("note: {n}");
        }
        bail!("{}", refused.join("; "));
    }
    let total_bytes: u64 = chosen.iter().filter_map(|c| c.bytes).sum();
    if a.guard.dry_run {
        let mut damaged = false;
        for c in &chosen {
            match crate::migrate::copy::survey(&source, c).await {
                Ok(s) => notes.extend(survey_notes(&c.name, &s)),
                Err(e) => {
                    damaged = true;
                    notes.push(format!("{}: will fail: {}", c.name, secrets::error_chain(&e)));
                }
            }
        }
        let code = data_dry_run(g, &loaded, &source, &chosen, &notes, total_bytes)?;
        return Ok(if damaged { exit::ERROR } else { code });
    }

    let progress = progress(g);
    let (target, target_hosts) = target_database(g, &loaded, a.mongodb_uri.as_deref(), &progress).await?;
    if let Some((hosts, db)) = source.hosts()
        && db == target.db.name()
        && hosts.iter().any(|h| target_hosts.contains(h))
    {
        bail!("the source {} is the target database itself: nothing to copy", source.describe());
    }
    let text = format(g) == OutputFormat::Text;
    if text && !g.quiet {
        println!(
            "Copying {} collection(s), {}, from {} to database {}",
            chosen.len(),
            human(total_bytes),
            source.describe(),
            target.db.name()
        );
    }
    let started = Instant::now();
    let lanes = g.parallelism.map_or(4, usize::from);
    let opts = CopyOptions { bypass_document_validation: a.bypass_document_validation };
    let runs = run::copy_collections(&source, &chosen, &target, opts, lanes, &progress).await;
    let seconds = started.elapsed().as_secs_f64();
    let failed: Vec<String> = runs.iter().flat_map(|r| r.failures()).collect();
    let (mut docs, mut bytes) = (0u64, 0u64);
    let mut warnings = Vec::new();
    for r in &runs {
        let Some(copy) = &r.copy else { continue };
        docs += copy.inserted + copy.already_there;
        bytes += copy.bytes;
        if copy.derived_ids > 0 {
            notes.push(format!("{}: {} document(s) had no _id and were given one derived from their bytes (a rerun, or a fresh dump of the same data, finds them again)", r.collection, copy.derived_ids));
        }
        if copy.empty_timestamps > 0 {
            notes.push(format!(
                "{}: {} document(s) hold an empty Timestamp(0, 0) at the top level, sent so that the server keeps it",
                r.collection, copy.empty_timestamps
            ));
        }
        if copy.not_utf8 > 0 {
            warnings.push(not_utf8_warning(&r.collection, copy.not_utf8, copy.first_not_utf8.as_deref()));
        }
        if copy.validator_restored {
            notes.push(format!(
                "{}: loaded without its validator, which collMod put back afterwards with its level and action",
                r.collection
            ));
        }
    }
    let rows: Vec<serde_json::Value> = runs
        .iter()
        .map(|r| match (&r.copy, &r.verification, &r.error) {
            (Some(copy), Some(v), None) => json!({"collection": r.collection, "created": copy.created, "inserted": copy.inserted, "already_there": copy.already_there,
                "derived_ids": copy.derived_ids, "empty_timestamps": copy.empty_timestamps, "not_utf8": copy.not_utf8, "refused": copy.refused, "refusals": copy.refusals,
                "validator_restored": copy.validator_restored, "bytes": copy.bytes, "seconds": copy.seconds, "verified": v.matches && copy.refused == 0,
                "source_count": v.source_count, "target_count": v.target_count, "hash": v.target_hash, "first_difference": v.first_difference}),
            _ => json!({"collection": r.collection, "error": r.failures().join("; ")}),
        })
        .collect();
    // The indexes of the collections that arrived, built after the load (one build over the
    // data instead of index upkeep on every insert).
    let ok_names: Vec<String> = runs.iter().filter(|r| r.ok()).map(|r| r.collection.clone()).collect();
    let index_report = if a.no_indexes || ok_names.is_empty() || db_spec.collections.0.is_empty() {
        None
    } else {
        Some(
            crate::migrate::indexes::build_indexes(&loaded, a.mongodb_uri.as_deref(), g.parallelism.map(usize::from), &ok_names, &progress)
                .await,
        )
    };

    let rate_docs = docs as f64 / seconds.max(1e-9);
    let rate_mb = mb(bytes) / seconds.max(1e-9);
    match format(g) {
        OutputFormat::Json => println!(
            "{}",
            secrets::redact(&serde_json::to_string_pretty(&json!({
                "environment": loaded.env, "source": source.describe(), "database": target.db.name(), "collections": rows, "notes": notes, "warnings": warnings,
                "documents": docs, "bytes": bytes, "seconds": seconds, "documents_per_second": rate_docs, "mb_per_second": rate_mb,
                "indexes": index_report.as_ref().map(|r| match r { Ok(v) => json!(v), Err(e) => json!({"error": secrets::error_chain(e)}) }),
                "ok": failed.is_empty() && !index_report.as_ref().is_some_and(|r| r.is_err()),
            }))?)
        ),
        _ => {
            for r in &rows {
                if r.get("error").is_some() {
                    continue;
                }
                println!(
                    "  {:<24} {:>9} inserted {:>9} already there {:>10}  {}",
                    r["collection"].as_str().unwrap_or(""),
                    r["inserted"],
                    r["already_there"],
                    human(r["bytes"].as_u64().unwrap_or(0)),
                    if r["verified"] == json!(true) {
                        format!("verified ({} documents, hash {})", r["target_count"], r["hash"].as_str().unwrap_or(""))
                    } else if r["refused"].as_u64().unwrap_or(0) > 0 {
                        format!("{} REFUSED", r["refused"])
                    } else {
                        "DIFFERS".into()
                    }
                );
            }
            for n in &notes {
                println!("note: {n}");
            }
            match &index_report {
                Some(Ok(v)) => println!("Indexes: {}", v.summary),
                Some(Err(e)) => eprintln!("error: the indexes were not built: {}", secrets::error_chain(e)),
                None => {}
            }
            println!("Moved {docs} documents, {}, in {seconds:.1} s ({rate_docs:.0} documents/s, {rate_mb:.1} MB/s).", human(bytes));
        }
    }
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    for f in &failed {
        eprintln!("error: {}", secrets::redact(f));
    }
    if !failed.is_empty() {
        eprintln!(
            "error: run the same command again to resume: documents already there are skipped, then every collection is compared again"
        );
        return Ok(exit::ERROR);
    }
    Ok(if index_report.is_some_and(|r| r.is_err()) { exit::ERROR } else { exit::OK })
}

/// What the dry run says about a collection's special documents.
fn survey_notes(name: &str, s: &crate::migrate::copy::Survey) -> Vec<String> {
    let mut out = Vec::new();
    if s.empty_timestamps > 0 {
        out.push(format!(
            "{name}: {} document(s) hold an empty Timestamp(0, 0) at the top level, which a server replaces on insert: sent with bypassEmptyTsReplacement (on servers before 5.0, put back with $set right after), so they arrive unchanged",
            s.empty_timestamps
        ));
    }
    if s.without_id > 0 {
        out.push(format!(
            "{name}: {} document(s) have no _id: each gets an ObjectId derived from its bytes (and which copy of those bytes it is), so a rerun or a fresh dump of the same data finds it again; a document changed at the source between two dumps gets a new id, and its old copy stays on the target",
            s.without_id
        ));
    }
    if s.too_large > 0 {
        out.push(format!("{name}: {} document(s) are over 16 MiB, which no server stores: they will be refused and named", s.too_large));
    }
    if s.not_utf8 > 0 {
        out.push(format!("warning: {}", not_utf8_warning(name, s.not_utf8, s.first_not_utf8.as_deref())));
    }
    out
}

/// Data that is not UTF-8 arrives as it was; the app's driver is what will trip on it.
fn not_utf8_warning(name: &str, n: u64, first: Option<&str>) -> String {
    format!(
        "{name}: {n} document(s) hold a key or string that is not valid UTF-8 (first: {}): copied byte for byte, as mongorestore does; most drivers refuse such a string when they read it (the Rust and Node drivers by default), so fix it at the source or read with UTF-8 validation off",
        first.unwrap_or("?")
    )
}

fn data_dry_run(
    g: &Global,
    loaded: &LoadedSpec,
    source: &Source,
    chosen: &[CollectionInfo],
    notes: &[String],
    total_bytes: u64,
) -> Result<u8> {
    let storage = crate::migrate::fit::storage_fit(loaded, total_bytes);
    match format(g) {
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "environment": loaded.env, "source": source.describe(), "dry_run": true,
                "collections": chosen.iter().map(|c| json!({"collection": c.name, "documents": c.count, "bytes": c.bytes, "indexes": c.indexes.len(), "options": c.options.keys().collect::<Vec<_>>()})).collect::<Vec<_>>(),
                "documents": chosen.iter().filter_map(|c| c.count).sum::<u64>(), "bytes": total_bytes, "notes": notes, "storage": storage,
            }))?
        ),
        _ => {
            println!("Would copy from {} (dry run: nothing is written):", source.describe());
            for c in chosen {
                println!(
                    "  {:<24} {:>10} documents {:>10}  {} index(es){}",
                    c.name,
                    c.count.map_or("?".into(), |n| n.to_string()),
                    human(c.bytes.unwrap_or(0)),
                    c.indexes.len(),
                    if c.options.is_empty() {
                        String::new()
                    } else {
                        format!(", options: {}", c.options.keys().cloned().collect::<Vec<_>>().join(", "))
                    }
                );
            }
            println!("  total: {} documents, {}", chosen.iter().filter_map(|c| c.count).sum::<u64>(), human(total_bytes));
            for n in notes {
                println!("note: {n}");
            }
            if let Some(s) = &storage {
                let tier = &s.tier;
                match (s.fits, s.storage_gb) {
                    (true, Some(has)) => println!(
                        "Cost: the data ({} before compression) fits cluster {} ({tier}, {has} GB): no change.",
                        human(total_bytes),
                        s.cluster
                    ),
                    (false, Some(has)) => println!(
                        "Cost: the data ({}) does not fit cluster {} ({tier} stores {has} GB). {}",
                        human(total_bytes),
                        s.cluster,
                        match &s.smallest_tier_that_fits {
                            Some(t) => format!(
                                "The smallest tier that holds it is {} (${:.2}/month): set its tier in the spec, or disk_size_gb.",
                                t.tier, t.monthly_usd
                            ),
                            None => "No tier of the price catalog holds it: set disk_size_gb.".into(),
                        }
                    ),
                    _ => println!("Cost: the storage of tier {tier} is not in the price catalog."),
                }
            }
        }
    }
    Ok(exit::OK)
}

/// `poactl migrate uploads`.
async fn uploads_cmd(g: &Global, a: MigrateUploadsArgs) -> Result<u8> {
    let loaded = load_env(g)?;
    guard(&loaded, &a.guard)?;
    let bucket = crate::migrate::upload_run::pick_bucket(&loaded, a.bucket.as_deref())?;
    let dist = loaded.spec.cdn.iter().flat_map(|c| c.distributions.iter()).find(|d| d.buckets().contains(&bucket.name.as_str()));
    let uploads::Scan { files, skipped } = {
        let (dir, outside) = (a.from.clone(), a.follow_links_outside);
        tokio::task::spawn_blocking(move || uploads::scan(&dir, outside)).await??
    };
    let prefix = uploads::key_prefix(&a.prefix);
    let progress = progress(g);
    let base_url = match (&a.cdn_url, dist) {
        (Some(u), _) => Some(u.trim_end_matches('/').to_string()),
        (None, Some(d)) if !a.guard.dry_run => {
            let outputs = live_outputs(g, &loaded, &["storage.", "cdn."], &progress).await?;
            outputs.get(&Address::new(Kind::Distribution, &d.name)).and_then(|o| o.get("url").cloned())
        }
        _ => None,
    };
    let rules = CdnRules {
        base_url,
        origin_path: dist
            .and_then(|d| d.bucket_path(&bucket.name))
            .map(|p| format!("{}/", p.trim_matches('/')))
            .filter(|p| p != "/")
            .unwrap_or_default(),
        behaviors: dist.map(|d| d.cache.iter().map(|c| (c.path.clone(), c.default_ttl_seconds())).collect()).unwrap_or_default(),
        default_ttl: dist.and_then(|d| d.default_ttl.as_ref()).map_or(86_400, |t| t.seconds),
    };
    let total: u64 = files.iter().map(|f| f.size).sum();
    let entries = upload_run::prepare(files, &prefix, &rules, &progress).await?;
    let text = format(g) == OutputFormat::Text;
    if a.guard.dry_run {
        let catalog = crate::cost::Catalog::builtin();
        let region = bucket.region.clone().unwrap_or_else(|| loaded.spec.aws_region());
        let price = catalog.prices.get(&format!("s3/{region}/standard_storage")).map(|p| p.usd);
        let monthly = price.map(|p| gb(total) * p);
        if text {
            println!(
                "Would upload {} file(s), {:.1} MB, to s3://{}/{prefix} (dry run: nothing is sent):",
                entries.len(),
                mb(total),
                bucket.name
            );
            for e in entries.iter().take(20).map(|p| &p.entry) {
                println!("  {:<40} {:>10} B  {}  {}", e.key, e.size, e.content_type, e.cache_control);
            }
            if entries.len() > 20 {
                println!("  ... and {} more", entries.len() - 20);
            }
            for s in &skipped {
                println!("  would not upload: {s}");
            }
            match monthly {
                Some(m) => println!(
                    "Cost: S3 Standard storage {:.3} GB: ${m:.2}/month (catalog price ${}/GB-month).",
                    gb(total),
                    price.unwrap_or(0.0)
                ),
                None => println!("Cost: S3 storage in {region} is not in the price catalog."),
            }
        } else {
            println!(
                "{}",
                serde_json::to_string_pretty(
                    &json!({"environment": loaded.env, "bucket": bucket.name, "dry_run": true, "files": entries.iter().map(|p| &p.entry).collect::<Vec<_>>(), "skipped": skipped, "bytes": total, "storage_monthly_usd": monthly})
                )?
            );
        }
        return Ok(if skipped.is_empty() { exit::OK } else { exit::ERROR });
    }
    if rules.base_url.is_none() {
        eprintln!(
            "warning: no distribution serves bucket {} (or it does not exist yet): the manifest has no CDN URLs; `poactl apply` the CDN, or pass --cdn-url",
            bucket.name
        );
    }
    let aws = providers::aws::Aws::new(loaded.spec.aws_region()).await;
    let region = bucket.region.clone().unwrap_or_else(|| aws.region.clone());
    let client = aws.s3(&region).await;
    let lanes = g.parallelism.map_or(16, usize::from);
    let done = upload_run::upload_all(&client, &bucket.name, &prefix, &entries, lanes, &progress).await?;
    std::fs::write(&a.manifest, serde_json::to_string_pretty(&done.manifest(&loaded.env, &bucket.name, &prefix, rules.base_url.clone()))?)
        .with_context(|| format!("cannot write the manifest {}", a.manifest.display()))?;
    let (uploaded, resumed, already, uploaded_bytes, seconds) =
        (done.uploaded, done.resumed, done.already_there, done.bytes_uploaded, done.seconds);
    let (errors, verification) = (&done.errors, &done.verification);
    let rate = mb(uploaded_bytes) / seconds.max(1e-9);
    if text {
        if !g.quiet {
            println!(
                "Uploaded {uploaded} file(s) ({:.1} MB in {seconds:.1} s, {rate:.1} MB/s), {already} already there{}; manifest: {}",
                mb(uploaded_bytes),
                if resumed > 0 { format!(", {resumed} resumed from the parts of an earlier run") } else { String::new() },
                a.manifest.display()
            );
        }
        println!(
            "Verified {}/{} object(s), {:.1} MB, in s3://{}/{prefix}: size and SHA-256 as uploaded{}{}",
            verification.verified,
            verification.files,
            mb(verification.bytes),
            bucket.name,
            if verification.mismatched.is_empty() {
                String::new()
            } else {
                format!("; DIFFERENT OR MISSING: {}", verification.mismatched.join(", "))
            },
            if verification.no_checksum.is_empty() {
                String::new()
            } else {
                format!("; NO CHECKSUM RETURNED (not verified): {}", verification.no_checksum.join(", "))
            }
        );
    } else {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &json!({"environment": loaded.env, "bucket": bucket.name, "uploaded": uploaded, "resumed": resumed, "already_there": already, "bytes_uploaded": uploaded_bytes, "seconds": seconds, "mb_per_second": rate, "manifest": a.manifest, "verification": verification, "skipped": skipped, "errors": errors})
            )?
        );
    }
    for e in errors {
        eprintln!("error: {e}");
    }
    for s in &skipped {
        eprintln!("error: not uploaded: {s}");
    }
    if !verification.no_checksum.is_empty() {
        eprintln!(
            "error: S3 returned no SHA-256 for {} object(s), so they are not verified (the manifest says so, and `migrate urls` leaves their URLs alone); see docs/migration.md, SSE-KMS buckets",
            verification.no_checksum.len()
        );
    }
    if !errors.is_empty() || !verification.mismatched.is_empty() || !skipped.is_empty() || !verification.no_checksum.is_empty() {
        eprintln!("error: run the same command again to resume: files already there with the same checksum are skipped");
        return Ok(exit::ERROR);
    }
    Ok(exit::OK)
}

/// `poactl migrate urls`.
async fn urls_cmd(g: &Global, a: MigrateUrlsArgs) -> Result<u8> {
    let loaded = load_env(g)?;
    guard(&loaded, &a.guard)?;
    let fields = a.fields.iter().map(|f| urls::Field::parse(f)).collect::<Result<Vec<_>, _>>()?;
    let progress = progress(g);
    let (target, _) = target_database(g, &loaded, a.mongodb_uri.as_deref(), &progress).await?;
    let db = &target.db;
    let text = format(g) == OutputFormat::Text;
    if a.revert {
        let preview = urls::revert(&target, &fields, true).await?;
        if !a.guard.dry_run && preview.restored > 0 {
            confirm_or_bail(&a, &format!("\nPut back {} recorded value(s) in database {}?", preview.restored, db.name()))?;
        }
        let r = if a.guard.dry_run { preview } else { urls::revert(&target, &fields, false).await? };
        if text {
            println!(
                "{} {} value(s){}{}",
                if a.guard.dry_run { "Would restore" } else { "Restored" },
                r.restored,
                if r.never_applied > 0 {
                    format!(", {} record(s) of changes that never happened dropped", r.never_applied)
                } else {
                    String::new()
                },
                if r.conflicts.is_empty() { String::new() } else { format!("; left alone (changed since): {}", r.conflicts.join(", ")) }
            );
        } else {
            println!("{}", serde_json::to_string_pretty(&json!({"environment": loaded.env, "revert": r, "dry_run": a.guard.dry_run}))?);
        }
        return Ok(if r.conflicts.is_empty() { exit::OK } else { exit::ERROR });
    }
    let manifest_path = a.manifest.as_ref().context("--manifest is needed")?;
    let manifest = Manifest::read(manifest_path)?;
    if manifest.environment != loaded.env {
        bail!("{} was written for environment \"{}\", not \"{}\"", manifest_path.display(), manifest.environment, loaded.env);
    }
    let rw = urls::Rewriter::new(&manifest, &a.old_bases)?;
    let run = crate::clock::now_iso();
    let mut previews = Vec::new();
    for f in &fields {
        previews.push(urls::rewrite(&target, f, &rw, &run, true).await?);
    }
    let changes: u64 = previews.iter().map(|p| p.changed).sum();
    let print = |reports: &[urls::FieldReport], done: bool| {
        for p in reports {
            println!(
                "  {}: {} document(s), {} value(s): {} {}, {} already CDN URLs, {} matching no uploaded file, {} whose upload did not verify, {} under no old base (left alone){}",
                p.field,
                p.documents,
                p.values,
                p.changed,
                if done { "rewritten" } else { "to rewrite" },
                p.already,
                p.unmatched,
                p.not_verified,
                p.other_origin,
                if p.changed_meanwhile > 0 {
                    format!(", {} changed by someone else meanwhile (left alone)", p.changed_meanwhile)
                } else {
                    String::new()
                }
            );
            for (before, after) in &p.samples {
                println!("      {before}  ->  {after}");
            }
            for u in &p.unmatched_samples {
                println!("      no file for: {u}");
            }
        }
    };
    if a.guard.dry_run || changes == 0 {
        if text {
            println!(
                "{}",
                if a.guard.dry_run {
                    "Dry run: nothing is written."
                } else {
                    "No changes: every value is already a CDN URL or matches no file."
                }
            );
            print(&previews, false);
        } else {
            println!(
                "{}",
                serde_json::to_string_pretty(&json!({"environment": loaded.env, "dry_run": a.guard.dry_run, "fields": previews}))?
            );
        }
        return Ok(exit::OK);
    }
    if text && !a.auto_approve {
        print(&previews, false);
    }
    confirm_or_bail(
        &a,
        &format!(
            "\nRewrite {changes} value(s) in database {} (each change is recorded in {}; --revert puts them back)?",
            db.name(),
            urls::RECORD_COLLECTION
        ),
    )?;
    let mut reports = Vec::new();
    for f in &fields {
        reports.push(urls::rewrite(&target, f, &rw, &run, false).await?);
    }
    if text {
        println!("Rewritten (run {run}; `poactl migrate urls --revert` undoes it):");
        print(&reports, true);
    } else {
        println!("{}", serde_json::to_string_pretty(&json!({"environment": loaded.env, "run": run, "fields": reports}))?);
    }
    Ok(exit::OK)
}

fn confirm_or_bail(a: &MigrateUrlsArgs, prompt: &str) -> Result<()> {
    if a.auto_approve {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        bail!("migrate urls needs confirmation: rerun with --auto-approve (stdin is not a terminal), after a --dry-run");
    }
    if !super::confirm(prompt)? {
        bail!("cancelled; nothing was changed");
    }
    Ok(())
}
