//! The provider contract and the providers.
//!
//! In the spirit of Crossplane's ExternalClient: `observe` is read-only and says whether the
//! resource exists and what it looks like, `diff` is pure, and `create`/`update`/`delete` are
//! idempotent. Providers report facts; the engine decides what to do.

pub mod atlas;
pub mod aws;
pub mod encryption;
pub mod mongo_index;
pub mod peering;
pub mod private_link;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;

use crate::plan::{FieldChange, diff};
use crate::progress::Progress;
use crate::resource::{Address, Kind};
use crate::spec::{Declared, Item, LoadedSpec};

/// Outputs of a resource, usable in `${kind.name.field}` references and templates.
pub type Outputs = BTreeMap<String, String>;

/// A resource as the spec wants it.
#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    pub address: Address,
    /// Canonical attributes, compared with the observed ones. May hold `${...}` references.
    pub attrs: Value,
    /// Values sent on create (and on update when asked) but never read back, such as
    /// passwords. Never compared, never shown.
    pub write_only: Value,
    /// The resource this one lives in (a cluster's project, an index's database); it is
    /// observed first and its outputs are handed to this one.
    pub parent: Option<Address>,
    /// Every resource this one needs first: its parent and the targets of its references.
    pub depends_on: Vec<Address>,
    pub notes: Vec<String>,
}

impl Desired {
    pub fn new(address: Address, attrs: Value) -> Self {
        Desired { address, attrs, write_only: Value::Null, parent: None, depends_on: Vec::new(), notes: Vec::new() }
    }

    /// The parent comes first among the dependencies, whenever it is set.
    pub fn with_parent(mut self, parent: Address) -> Self {
        self.depends_on.retain(|a| *a != parent);
        self.depends_on.insert(0, parent.clone());
        self.parent = Some(parent);
        self
    }

    pub fn depends(mut self, on: Address) -> Self {
        if !self.depends_on.contains(&on) && on != self.address {
            self.depends_on.push(on);
        }
        self
    }
}

/// Whether poactl may act on a live resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ownership {
    /// Carries this environment's ownership tags.
    Owned,
    /// No tags (the kind cannot carry them): identified by its natural key inside a parent
    /// poactl owns, so it is managed.
    NaturalKey,
    /// Carries another environment's (or another owner's) marks: never modified.
    Foreign(String),
    /// Exists without any poactl tags (made by hand, or by another tool): never modified,
    /// unless the run adopts it (`--adopt`), which writes poactl's tags.
    Unowned(String),
}

/// A resource as it is live, normalized to the shape of [`Desired::attrs`].
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub id: String,
    pub attrs: Value,
    pub outputs: Outputs,
    pub ownership: Ownership,
    /// Provider-private facts needed to act on the resource (ETags, raw documents).
    pub handle: Value,
}

/// What a provider call may look at: the environment, the outputs of resources already
/// observed or applied, and where to report progress.
pub struct Ctx<'a> {
    pub env: &'a str,
    pub loaded: &'a LoadedSpec,
    pub parent: Option<&'a Outputs>,
    pub outputs: &'a BTreeMap<Address, Outputs>,
    pub progress: &'a Progress,
    pub options: &'a RunOptions,
}

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub wait: bool,
    pub timeout: std::time::Duration,
    pub rotate_passwords: bool,
    pub allow_rebuild: bool,
    pub drop_immediately: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            wait: true,
            timeout: std::time::Duration::from_secs(3600),
            rotate_passwords: false,
            allow_rebuild: false,
            drop_immediately: false,
        }
    }
}

/// A read put off (see [`Provider::defer_read`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deferral {
    pub reason: String,
    /// Read and reconciled during apply, once what it needs is done; otherwise left alone
    /// until a later run (the cluster stays paused).
    pub during_apply: bool,
}

/// A concurrency bound: at most `limit` operations of `service` run at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lane {
    pub service: &'static str,
    pub limit: usize,
}

/// A failure talking to a service, already worded for the user.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("{0}")]
    Api(String),
    /// An Atlas Admin API call that failed, its typed error whole (status, error code, detail).
    #[error(transparent)]
    Atlas(atlas::client::AtlasError),
    /// An AWS call that failed: the SDK's error is kept whole as the cause (`-v` shows its
    /// chain), and the message says what was asked and what the service answered.
    #[error("{what}: {detail}")]
    Service {
        what: String,
        detail: String,
        /// The request may have been carried out though no answer says so (a 5xx, a throttle, a
        /// dropped connection): a create looks for its result before it is tried again.
        outcome_unknown: bool,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A request the service did not answer within its deadline (`--request-timeout`), or a
    /// wait Ctrl-C ended: TIMED OUT with the endpoint, the operation and the time waited.
    #[error(transparent)]
    Unanswered(#[from] crate::deadline::Unanswered),
    #[error(
        "{what} did not become ready within {seconds}s (last state: {state}); it keeps going on the service's side: rerun `poactl apply` to wait again"
    )]
    Timeout { what: String, seconds: u64, state: String },
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    Config(String),
    /// The service does not show a just-made resource everywhere yet (S3 right after
    /// CreateBucket): worth asking again shortly.
    #[error("{0}")]
    Propagating(String),
}

impl ProviderError {
    /// The request may have been carried out though no answer says so: a create looks for
    /// its result before it is tried again, and the report says the outcome is unknown.
    pub fn outcome_unknown(&self) -> bool {
        match self {
            ProviderError::Service { outcome_unknown, .. } => *outcome_unknown,
            ProviderError::Atlas(e) => e.outcome_unknown(),
            ProviderError::Unanswered(u) => u.outcome_unknown(),
            _ => false,
        }
    }

    /// A request that went unanswered within its deadline (not Ctrl-C).
    pub fn timed_out(&self) -> bool {
        matches!(self, ProviderError::Unanswered(crate::deadline::Unanswered::TimedOut { .. }))
    }
}

pub type Result<T, E = ProviderError> = std::result::Result<T, E>;

#[async_trait]
pub trait Provider: Send + Sync {
    fn kind(&self) -> Kind;

    /// The service this provider's calls go to and how many of its resources are worked on at
    /// once by default; the engine bounds each service apart (`--parallelism` sets them all).
    fn lane(&self) -> Lane {
        Lane { service: "other", limit: 16 }
    }

    /// The kinds whose live state `discover` needs first (the project its lists are in); the
    /// engine starts the listing as soon as those are read, beside the other reads.
    fn discover_after(&self) -> &'static [Kind] {
        &[]
    }

    /// Whether listing this kind's unmanaged resources costs a call per resource of the whole
    /// account (ACM: one tag read per certificate), so that only `--prune` and `destroy`,
    /// which act on what it finds, run it; a plain plan does not list them.
    fn discover_on_demand(&self) -> bool {
        false
    }

    /// Whether this kind's read waits for what it refers to (`depends_on`), not only its
    /// parent, so that [`Provider::defer_read`] can see them.
    fn reads_after_references(&self) -> bool {
        false
    }

    /// Why the live resource cannot be read yet, given what it needs (`needs`: its parent and
    /// references, as desired and as observed): a MongoDB index of a paused cluster, or one
    /// read as a database user this apply creates. `None`: read it now. Asked only of kinds
    /// whose reads wait for their references ([`Provider::reads_after_references`]).
    fn defer_read(&self, _d: &Desired, _needs: &[(&Desired, Option<&Observed>)], _ctx: &Ctx<'_>) -> Option<Deferral> {
        None
    }

    /// Whether a failed read of this kind stays with its resources (shown as a conflict, the
    /// rest of the plan stands) instead of stopping the plan: a database poactl reaches
    /// through the cluster it also manages.
    fn read_failure_is_local(&self) -> bool {
        false
    }

    /// Whether this kind's deletions wait until the run's creates and updates are done: a
    /// live resource that stays may use it until its own update (ACM refuses to delete a
    /// certificate CloudFront still serves).
    fn delete_last(&self) -> bool {
        false
    }

    /// Attribute paths that cannot change in place.
    fn replace_paths(&self) -> &'static [&'static str] {
        &[]
    }

    /// Reads the live resource; `None` when it does not exist. Never mutates.
    async fn observe(&self, ctx: &Ctx<'_>, desired: &Desired) -> Result<Option<Observed>>;

    /// Live resources of this kind in the environment's scope, declared or not; the engine
    /// subtracts the declared ones to find the unmanaged. Never mutates.
    async fn discover(&self, ctx: &Ctx<'_>) -> Result<Vec<(Address, Observed)>>;

    /// Attribute paths holding maps compared whole: a live key the spec does not list is a
    /// removal. Tags everywhere (the ones poactl leaves alone are dropped at observe).
    fn closed_maps(&self) -> &'static [&'static str] {
        &["tags"]
    }

    /// Pure: how the live resource differs from the desired one.
    fn diff(&self, desired: &Desired, observed: &Observed) -> Vec<FieldChange> {
        diff::diff_closed(&desired.attrs, &observed.attrs, self.replace_paths(), self.closed_maps())
    }

    /// Why the service would refuse these changes in the resource's live state, if it would:
    /// the plan shows it as a conflict (with what to do) instead of an update that fails.
    fn blocked(&self, _desired: &Desired, _observed: &Observed, _changes: &[FieldChange]) -> Option<String> {
        None
    }

    /// Why creating this resource (not found by `observe`) would be refused, when `observe`
    /// found out (a name another owner holds): the plan shows a conflict, and what depends on
    /// it is not created either.
    fn create_blocked(&self, _desired: &Desired) -> Option<String> {
        None
    }

    /// Why `--prune` alone must not delete this unmanaged live resource, if it must not: a kind
    /// that carries no ownership mark, so nothing proves poactl made it. Such a resource is
    /// deleted only when named with `--delete ADDRESS`.
    fn prune_guard(&self, _observed: &Observed) -> Option<String> {
        None
    }

    /// Why the spec forbids this live resource it does not declare, if it does: a public
    /// access-list entry in a VPC-only environment. Every plan deletes it, not only `--prune`,
    /// and `drift` counts it.
    fn forbidden(&self, _observed: &Observed, _loaded: &LoadedSpec) -> Option<String> {
        None
    }

    /// Whether a plain plan lists this kind's live resources though the spec declares none of
    /// them: the spec forbids some ([`Provider::forbidden`]).
    fn polices(&self, _loaded: &LoadedSpec) -> bool {
        false
    }

    /// Changes the service cannot show but the run asks for: Atlas never returns a database
    /// user's password, so `--rotate-passwords` is a change the users provider asserts.
    fn asserted_changes(&self, _desired: &Desired, _observed: &Observed, _options: &crate::plan::PlanOptions) -> Vec<FieldChange> {
        Vec::new()
    }

    /// What deleting this live resource means, for the plan (an index is hidden first, and
    /// dropped only later).
    fn delete_notes(&self, _observed: &Observed) -> Vec<String> {
        Vec::new()
    }

    /// Notes about a live resource worth showing in the plan even when nothing changes.
    fn notes(&self, _desired: &Desired, _observed: &Observed, _ctx: &Ctx<'_>) -> Vec<String> {
        Vec::new()
    }

    async fn create(&self, ctx: &Ctx<'_>, desired: &Desired) -> Result<Outputs>;

    async fn update(&self, ctx: &Ctx<'_>, desired: &Desired, observed: &Observed, changes: &[FieldChange]) -> Result<Outputs>;

    async fn delete(&self, ctx: &Ctx<'_>, address: &Address, observed: &Observed) -> Result<()>;

    /// Replaces the live resource by the desired one (a change that cannot be made in
    /// place). By default the old one goes first; a kind that can hold both at once (a
    /// MongoDB index) builds the new one first.
    async fn replace(&self, ctx: &Ctx<'_>, desired: &Desired, observed: &Observed) -> Result<Outputs> {
        self.delete(ctx, &desired.address, observed).await?;
        self.create(ctx, desired).await
    }

    /// What the service is still doing to a resource that otherwise matches the spec (an
    /// index still being built): the plan says so instead of "no changes".
    fn in_progress(&self, _observed: &Observed) -> Option<String> {
        None
    }

    /// Why a live resource that matches its spec looks unused (an index no operation has used
    /// since the server started): shown as information, never drift.
    fn unused(&self, _observed: &Observed) -> Option<String> {
        None
    }

    /// How a live resource fails to do what its spec asks, in a way no apply can mend (a
    /// backup schedule whose latest snapshot is older than the schedule allows). `drift`
    /// counts it; the plan shows it as a warning.
    fn unhealthy(&self, _desired: &Desired, _observed: &Observed) -> Option<String> {
        None
    }
}

/// The providers an environment needs, built only for the sections it uses (so a spec with
/// only buckets never asks for Atlas credentials).
pub struct Registry {
    providers: BTreeMap<Kind, Arc<dyn Provider>>,
}

impl Registry {
    pub fn empty() -> Self {
        Registry { providers: BTreeMap::new() }
    }

    pub fn insert(&mut self, p: Arc<dyn Provider>) {
        self.providers.insert(p.kind(), p);
    }

    pub fn get(&self, kind: Kind) -> Option<&Arc<dyn Provider>> {
        self.providers.get(&kind)
    }

    pub fn kinds(&self) -> impl Iterator<Item = Kind> + '_ {
        self.providers.keys().copied()
    }

    /// Connects the providers the spec needs (only those of `kinds`, when given).
    pub async fn for_spec(loaded: &LoadedSpec, conn: &Connections, kinds: Option<&std::collections::BTreeSet<Kind>>) -> Result<Registry> {
        let mut reg = Registry::empty();
        let spec = &loaded.spec;
        let wanted = |prefix: &str| kinds.is_none_or(|ks| ks.iter().any(|k| k.as_str().starts_with(prefix)));
        let atlas = if spec.atlas.is_some() && wanted("atlas.") { Some(atlas::register(&mut reg, conn)?) } else { None };
        // The Atlas token and the AWS identity check are each a round trip: together.
        let warm_up = async {
            if let Some(atlas) = &atlas {
                atlas.client.warm_up().await;
            }
        };
        let private_endpoints = spec.atlas.as_ref().is_some_and(|a| !a.private_endpoints().is_empty()) && wanted("atlas.");
        let peerings = spec.atlas.as_ref().is_some_and(|a| !a.peerings().is_empty()) && wanted("atlas.");
        let encryption = spec.atlas.as_ref().is_some_and(|a| a.encryption.is_some()) && wanted("atlas.");
        // A run that reaches AWS anyway, or an untargeted one of a spec with an `aws:` section,
        // also looks for a customer key setting the spec dropped (found through its role's
        // tags) to turn it off.
        let aws_for_others = spec.has_aws()
            && (wanted("storage.")
                || wanted("cdn.")
                || wanted("monitoring.")
                || wanted("billing.")
                || wanted("notifications.")
                || wanted("app.")
                || private_endpoints
                || peerings);
        let untargeted = spec.atlas.is_some() && spec.aws.is_some() && kinds.is_none();
        let aws = async {
            if aws_for_others || encryption || untargeted {
                return aws::register(&mut reg, loaded, conn).await.map(Some);
            }
            Ok::<_, ProviderError>(None)
        };
        let ((), aws) = tokio::join!(warm_up, aws);
        // PrivateLink needs both clouds.
        if let (Some(atlas), Some(aws)) = (&atlas, aws?) {
            if private_endpoints {
                reg.insert(Arc::new(private_link::PrivateEndpointProvider::new(atlas.clone(), aws.clone())));
            }
            if wanted("atlas.") {
                reg.insert(Arc::new(encryption::EncryptionProvider::new(atlas.clone(), aws.clone())));
            }
            if peerings {
                reg.insert(Arc::new(peering::PeeringProvider::new(atlas.clone(), aws)));
            }
        }
        if spec.database.as_ref().is_some_and(|d| !d.collections.0.is_empty()) && wanted("database.") {
            mongo_index::register(&mut reg, conn);
        }
        Ok(reg)
    }
}

/// Connection settings from flags and the environment.
#[derive(Debug, Clone, Default)]
pub struct Connections {
    pub mongodb_uri: Option<String>,
}

/// Every desired resource of a spec, in spec order: one for each resource the spec declares
/// (`spec::declared`, the one list of them), built by its kind's provider, under the resource
/// the spec nests it in.
pub fn desired(loaded: &LoadedSpec) -> Vec<Desired> {
    let mut out: Vec<Desired> = crate::spec::declared(&loaded.spec).into_iter().map(|d| build(loaded, d)).collect();
    add_reference_edges(&mut out);
    add_private_endpoint_edges(&mut out);
    out
}

/// Clusters come after the project's PrivateLink endpoints: the endpoint's create waits for
/// the clusters there are to take it, a new cluster is made with it, and a cluster's private
/// string is picked by the endpoint's id (and goes before it, when both are deleted). They
/// come after its peerings too: the peering's container must exist before the first dedicated
/// cluster, which would otherwise make one with Atlas' default block and lock it. And after
/// the project's customer key: "You must configure customer key management for the Atlas
/// project before enabling it on clusters" (Atlas docs, security-aws-kms; PN §2.1 step 7)
/// (../shared/atlas/PRIVATE-NETWORKING.md §1.8).
fn add_private_endpoint_edges(all: &mut [Desired]) {
    let endpoints: Vec<Address> = all
        .iter()
        .filter(|d| matches!(d.address.kind, Kind::AtlasPrivateEndpoint | Kind::AtlasPeering | Kind::AtlasEncryption))
        .map(|d| d.address.clone())
        .collect();
    // A security group in the access list needs the peering first (openapi-v2.yaml,
    // NetworkPermissionEntry.awsSecurityGroup), and goes before it.
    let peerings: Vec<Address> = endpoints.iter().filter(|a| a.kind == Kind::AtlasPeering).cloned().collect();
    for d in all.iter_mut().filter(|d| d.address.kind == Kind::AtlasAccessList && d.write_only.get("awsSecurityGroup").is_some()) {
        for p in &peerings {
            if !d.depends_on.contains(p) {
                d.depends_on.push(p.clone());
            }
        }
    }
    for d in all.iter_mut().filter(|d| d.address.kind == Kind::AtlasCluster) {
        for e in &endpoints {
            if !d.depends_on.contains(e) {
                d.depends_on.push(e.clone());
            }
        }
    }
}

fn build(loaded: &LoadedSpec, declared: Declared<'_>) -> Desired {
    use atlas::{access_list, alerts, backup, cluster, project, users};
    use aws::{acm, cloudfront, cloudwatch, route53, s3};
    let Declared { address, item, parent } = declared;
    let built = match item {
        Item::AtlasProject(a) => project::desired(loaded, a, address),
        Item::AtlasCluster(c) => cluster::desired(loaded, c, address),
        Item::AtlasBackupSchedule(c) => backup::desired(c, address),
        Item::AtlasAccessList(e) => access_list::desired(e, address),
        Item::AtlasPrivateEndpoint(a, e) => private_link::desired(loaded, a, e, address),
        Item::AtlasPeering(p) => peering::desired(loaded, p, address),
        Item::AtlasMaintenanceWindow(w) => atlas::settings::desired_window(w, address),
        Item::AtlasAuditing(a) => atlas::settings::desired_auditing(a, address),
        Item::AtlasEncryption(e) => encryption::desired(loaded, e, address),
        Item::AtlasUser(u) => users::desired(u, address),
        Item::AtlasAlert(a) => alerts::desired_alert(a, address),
        Item::AtlasBillingAlert(b) => alerts::desired_billing(b, address),
        Item::Bucket(b) => s3::desired_bucket(loaded, b, address),
        Item::BucketPolicy(b, readers) => s3::desired_policy(b, &readers, address),
        Item::Certificate(cdn, d) => acm::desired(loaded, cdn, d, address),
        Item::Distribution(cdn, d) => cloudfront::desired(loaded, cdn, d, address),
        Item::DnsRecord { distribution, zone } => route53::desired(loaded, distribution, zone, address),
        Item::Alarm(a) => cloudwatch::desired_alarm(loaded, a, address),
        Item::HealthCheck(u) => aws::health_check::desired(loaded, u, address),
        Item::UptimeAlarm(u) => cloudwatch::desired_alarm(loaded, &cloudwatch::uptime_alarm(u), address),
        Item::BillingAlarm(b) => cloudwatch::desired_billing(loaded, b, address),
        Item::Topic(name, t) => aws::sns::desired(loaded, name, t, address),
        Item::LogGroup(g) => aws::logs::desired(loaded, g, address),
        Item::AppRole(r) => aws::iam_role::desired(loaded, r, address),
        Item::OidcProvider(gh) => aws::ci::oidc_desired(gh, address),
        Item::CiRole(gh, role) => aws::ci::role_desired(loaded, gh, role, address),
        Item::Index { collection, index } => mongo_index::desired(loaded, collection, index, address),
    };
    match parent {
        Some(p) => built.with_parent(p),
        None => built,
    }
}

/// References in attributes become dependencies.
fn add_reference_edges(all: &mut [Desired]) {
    for d in all.iter_mut() {
        let mut refs = Vec::new();
        collect_refs(&d.attrs, &mut refs);
        collect_refs(&d.write_only, &mut refs);
        for r in refs {
            if r.target != d.address && !d.depends_on.contains(&r.target) {
                d.depends_on.push(r.target);
            }
        }
    }
}

pub fn collect_refs(v: &Value, out: &mut Vec<crate::resource::Reference>) {
    match v {
        Value::String(s) => out.extend(crate::resource::pieces(s).into_iter().filter_map(|p| match p {
            crate::resource::Piece::Reference(inner) => crate::resource::Reference::parse(inner),
            _ => None,
        })),
        Value::Array(items) => items.iter().for_each(|i| collect_refs(i, out)),
        Value::Object(map) => map.values().for_each(|i| collect_refs(i, out)),
        _ => {}
    }
}

/// Replaces `${...}` references with known outputs; unknown ones stay as written.
pub fn resolve_refs(v: &Value, outputs: &BTreeMap<Address, Outputs>) -> Value {
    use crate::resource::Piece;
    match v {
        Value::String(s) if s.contains("${") => {
            let mut out = String::new();
            for piece in crate::resource::pieces(s) {
                match piece {
                    Piece::Text(t) | Piece::Unclosed(t) => out.push_str(t),
                    Piece::Reference(inner) => {
                        match crate::resource::Reference::parse(inner).and_then(|r| outputs.get(&r.target).and_then(|o| o.get(&r.field))) {
                            Some(v) => out.push_str(v),
                            None => out.push_str(&format!("${{{inner}}}")),
                        }
                    }
                }
            }
            Value::String(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(|i| resolve_refs(i, outputs)).collect()),
        Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), resolve_refs(v, outputs))).collect()),
        other => other.clone(),
    }
}

/// What one look at a resource being waited on found.
pub enum Look<T> {
    Ready(T),
    /// Not yet: the state it is in, for the spinner and the timeout's message.
    NotYet(String),
}

/// The one wait loop: looks until `look` is ready, showing the state on a spinner, the pause
/// doubling from 250 ms up to `max_delay`. Past the run's `--timeout` (or on Ctrl-C) it is a
/// [`ProviderError::Timeout`] with the last state: the service goes on with its work.
pub async fn wait_for<T, F, Fut>(ctx: &Ctx<'_>, what: &str, doing: &str, max_delay: std::time::Duration, mut look: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Look<T>>>,
{
    let task = ctx.progress.spinner(format!("{what}: {doing}"));
    let started = std::time::Instant::now();
    let mut delay = std::time::Duration::from_millis(250);
    loop {
        match look().await? {
            Look::Ready(v) => {
                task.finish();
                return Ok(v);
            }
            Look::NotYet(state) => {
                task.set_message(format!("{what}: {state}"));
                if started.elapsed() >= ctx.options.timeout || crate::interrupt::requested() {
                    return Err(ProviderError::Timeout { what: what.to_string(), seconds: started.elapsed().as_secs(), state });
                }
                tokio::time::sleep(delay.min(ctx.options.timeout.saturating_sub(started.elapsed()))).await;
                delay = (delay * 2).min(max_delay);
            }
        }
    }
}

/// A JSON object of strings (tags, dimensions) as a sorted map.
pub fn string_map(v: &Value) -> BTreeMap<String, String> {
    v.as_object().map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string())).collect()).unwrap_or_default()
}

use crate::resource::{LEGACY_TAG_PREFIX, TAG_ENV, TAG_ID, TAG_MANAGED};

/// The ownership tags every taggable resource carries.
pub fn ownership_tags(env: &str, address: &Address) -> BTreeMap<String, String> {
    BTreeMap::from([
        (TAG_MANAGED.to_string(), "true".to_string()),
        (TAG_ENV.to_string(), env.to_string()),
        (TAG_ID.to_string(), address.to_string()),
    ])
}

/// An ownership tag's value (`managed`, `env` or `id`), from the current key or the legacy one.
pub fn ownership_tag<'t>(tags: &'t BTreeMap<String, String>, which: &str) -> Option<&'t str> {
    let current = match which {
        "managed" => TAG_MANAGED,
        "env" => TAG_ENV,
        _ => TAG_ID,
    };
    tags.get(current).or_else(|| tags.get(&format!("{LEGACY_TAG_PREFIX}{which}"))).map(String::as_str)
}

/// Whether live tags mark a resource as managed by poactl for environment `env`.
pub fn managed_in_env(tags: &BTreeMap<String, String>, env: &str) -> bool {
    ownership_tag(tags, "managed") == Some("true") && ownership_tag(tags, "env") == Some(env)
}

/// Decides ownership from a live resource's tags.
pub fn ownership_from_tags(tags: &BTreeMap<String, String>, env: &str, address: &Address) -> Ownership {
    let id = address.to_string();
    match (ownership_tag(tags, "managed"), ownership_tag(tags, "env"), ownership_tag(tags, "id")) {
        (Some("true"), Some(e), Some(i)) if e == env && i == id => Ownership::Owned,
        (Some("true"), Some(e), _) if e != env => Ownership::Foreign(format!("it belongs to poactl environment `{e}`")),
        (Some("true"), _, Some(i)) => Ownership::Foreign(format!("its {TAG_ID} tag says `{i}`")),
        _ => Ownership::Unowned(format!("it has no poactl ownership tags ({TAG_MANAGED}, {TAG_ENV}, {TAG_ID})")),
    }
}

/// Whether poactl leaves a tag key alone: AWS' own `aws:` tags (they cannot be written or
/// removed: S3 answers InvalidTag, "System tags cannot be removed by requester"), and the keys
/// the spec lists in `ignore_tags`.
pub fn foreign_tag(key: &str, loaded: &LoadedSpec) -> bool {
    key.starts_with("aws:")
        || loaded.spec.ignore_tags.iter().any(|p| match p.strip_suffix('*') {
            Some(prefix) => key.starts_with(prefix),
            None => key == p,
        })
}

/// Drops the tags poactl leaves alone from observed attributes, so they never show as drift
/// (tags are compared as whole maps: every other live key not in the spec is a removal).
pub fn keep_owned_tags(attrs: &mut Value, loaded: &LoadedSpec) {
    if let Some(tags) = attrs.get_mut("tags").and_then(|t| t.as_object_mut()) {
        tags.retain(|k, _| !foreign_tag(k, loaded));
    }
}

/// The tags to write (new or changed) and the keys to remove, to go from `have` to `want`
/// (both JSON objects of strings).
pub fn tag_changes(want: &Value, have: &Value) -> (BTreeMap<String, String>, Vec<String>) {
    let want = string_map(want);
    let have = string_map(have);
    let add = want.iter().filter(|(k, v)| have.get(*k) != Some(*v)).map(|(k, v)| (k.clone(), v.clone())).collect();
    let remove = have.into_keys().filter(|k| !want.contains_key(k)).collect();
    (add, remove)
}

/// All the tags a resource should carry: the environment's, its own, and ownership.
pub fn all_tags(loaded: &LoadedSpec, own: &BTreeMap<String, String>, address: &Address) -> BTreeMap<String, String> {
    let mut tags = loaded.spec.tags.clone();
    tags.extend(own.clone());
    tags.extend(ownership_tags(&loaded.env, address));
    tags
}
