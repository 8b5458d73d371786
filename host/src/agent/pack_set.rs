//! The packs a running agent manages: the built-in standard pack and every uploaded one, each
//! enabled or not, with its versions kept in the store.
//!
//! Every change follows one path: check the change, record it in the store, build the whole new
//! rule set from the store (every pack, every plugin and script must load), and only then hand
//! it to the pipeline. A change that fails any step is undone in the store, so the running set
//! and the store never disagree; it is audited either way.

use std::path::PathBuf;
use std::sync::Arc;

use crate::event::{Event, EventKind, Field};
use crate::model::report::{PackInfo, RolloutState};
use crate::packs::{Pack, PackError, TrustedKeys};
use crate::rule_set::RuleSet;
use crate::store::{PackRow, RollBackError, Store};

use super::runner::Handle;
use crate::sources::Sink;

/// The name of the built-in pack; uploads may not take it.
pub const STANDARD: &str = "standard";

/// Why a change was not made.
#[derive(Debug)]
pub enum Refusal {
    /// The pack (or the set with it) does not load: every problem found.
    Invalid(Vec<String>),
    /// The change conflicts with what is there (a reused version number, nothing to roll back).
    Conflict(String),
    /// No such pack.
    Unknown(String),
    /// The agent could not do it (database, pipeline gone).
    Failed(String),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Invalid(errors) => f.write_str(&errors.join("; ")),
            Refusal::Conflict(why) | Refusal::Unknown(why) | Refusal::Failed(why) => {
                f.write_str(why)
            }
        }
    }
}

/// What to do with a stored pack that no longer loads.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Broken {
    /// Refuse the whole set: a change must not drop a pack silently.
    Refuse,
    /// Leave it out: the agent must start.
    Skip,
}

/// The managed packs of one agent.
pub struct PackSet {
    store: Store,
    trusted: TrustedKeys,
    plugin_cache: PathBuf,
    pipeline: Handle,
    computer: String,
    /// The rules running now.
    current: Arc<RuleSet>,
}

impl PackSet {
    /// Builds the rule set from the store (skipping, with an error in the log, a stored pack
    /// that no longer loads — say, after the trust policy changed) so that the agent starts.
    pub fn open(
        store: Store,
        trusted: TrustedKeys,
        plugin_cache: PathBuf,
        pipeline: Handle,
        computer: String,
    ) -> anyhow::Result<PackSet> {
        let mut set = PackSet {
            store,
            trusted,
            plugin_cache,
            pipeline,
            computer,
            current: Arc::new(RuleSet::new(Vec::new()).map_err(anyhow::Error::msg)?),
        };
        set.current = Arc::new(
            set.build(Broken::Skip)
                .map_err(|e| anyhow::anyhow!(e.join("; ")))?,
        );
        Ok(set)
    }

    /// The rules to start the pipeline with.
    pub fn current(&self) -> Arc<RuleSet> {
        self.current.clone()
    }

    /// The pack a store row stands for, if it has one.
    fn load_row(&self, row: &PackRow) -> Result<Option<Pack>, Vec<String>> {
        if row.name == STANDARD {
            return Pack::standard().map(Some).map_err(diagnostics);
        }
        let Some(id) = row.active else {
            return Ok(None);
        };
        let (bytes, signature) = self
            .store
            .pack_archive(id)
            .map_err(|e| vec![format!("{e:#}")])?;
        Pack::from_archive(
            &bytes,
            signature.as_deref(),
            &format!("{} (stored)", row.name),
            &self.trusted,
        )
        .map(Some)
        .map_err(diagnostics)
    }

    /// Every enabled pack, as the store says now, compiled together. A stored pack that does
    /// not load fails the build (a change must not leave anything out), or, at start-up, is
    /// left out with an error in the log, so that the agent starts.
    fn build(&self, broken: Broken) -> Result<RuleSet, Vec<String>> {
        let rows = self.store.packs().map_err(|e| vec![format!("{e:#}")])?;
        let mut packs = Vec::new();
        if !rows.iter().any(|r| r.name == STANDARD) {
            packs.push(Pack::standard().map_err(diagnostics)?);
        }
        let mut errors = Vec::new();
        for row in rows.iter().filter(|r| r.enabled) {
            match self.load_row(row) {
                Ok(Some(p)) => packs.push(p),
                Ok(None) => {}
                Err(e) if broken == Broken::Skip => {
                    tracing::error!(pack = %row.name, "stored pack not loaded: {}", e.join("; "))
                }
                Err(mut e) => errors.append(&mut e),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        RuleSet::with_plugin_cache(packs, Some(&self.plugin_cache)).map_err(|e| vec![e])
    }

    /// Applies a change already written to the store: builds the new rules and swaps them in,
    /// or, if they do not build, calls `undo` to put the store back.
    fn apply(
        &mut self,
        actor: &str,
        action: &str,
        object: &str,
        detail: Option<&str>,
        undo: impl FnOnce(&mut Store) -> anyhow::Result<()>,
    ) -> Result<(), Refusal> {
        let rules = match self.build(Broken::Refuse) {
            Ok(r) => Arc::new(r),
            Err(errors) => {
                if let Err(e) = undo(&mut self.store) {
                    tracing::error!("cannot undo a refused change: {e:#}");
                }
                self.refused(actor, object, &errors.join("; "));
                return Err(Refusal::Invalid(errors));
            }
        };
        let entry = self
            .store
            .audit(actor, action, object, detail)
            .map_err(|e| Refusal::Failed(format!("{e:#}")))?;
        let notice = self.account_event(&entry.actor, action, object, detail);
        if !self.pipeline.swap(rules.clone(), vec![notice]) {
            return Err(Refusal::Failed("the pipeline has stopped".into()));
        }
        self.current = rules;
        Ok(())
    }

    /// Records a refused change: audit trail, and an account event through the running rules.
    fn refused(&mut self, actor: &str, object: &str, why: &str) {
        let action = "pack_rejected";
        match self.store.audit(actor, action, object, Some(why)) {
            Ok(_) => {
                let notice = self.account_event(actor, action, object, Some(why));
                self.pipeline.event(notice);
            }
            Err(e) => tracing::error!("cannot write the audit trail: {e:#}"),
        }
    }

    fn account_event(
        &self,
        actor: &str,
        action: &str,
        object: &str,
        detail: Option<&str>,
    ) -> Event {
        let mut e = Event::new(EventKind::Account, chrono::Utc::now().fixed_offset())
            .with_text(Field::Computer, &self.computer)
            .with_text(Field::Actor, actor)
            .with_text(Field::EventName, action)
            .with_text(Field::ActionType, "pack")
            .with_text(Field::ActionObject, object);
        if let Some(d) = detail {
            e.set_text(Field::Detail, d);
        }
        e
    }

    /// Takes an uploaded archive (and its signature file's text): checked against the trust
    /// policy and loaded in full before anything changes.
    pub fn upload(
        &mut self,
        archive: &[u8],
        signature: Option<&str>,
        actor: &str,
    ) -> Result<PackInfo, Refusal> {
        let pack = match Pack::from_archive(archive, signature, "upload", &self.trusted) {
            Ok(p) => p,
            Err(e) => {
                let errors = diagnostics(e);
                self.refused(actor, "upload", &errors.join("; "));
                return Err(Refusal::Invalid(errors));
            }
        };
        let object = format!("{} {}", pack.name, pack.version);
        if pack.name == STANDARD {
            let why = "the name \"standard\" belongs to the built-in pack".to_string();
            self.refused(actor, &object, &why);
            return Err(Refusal::Invalid(vec![why]));
        }
        let before = self.row(&pack.name);
        let added = self.store.add_pack_version(
            &pack.name,
            &pack.version.to_string(),
            archive,
            signature,
            actor,
        );
        let (id, new) = match added {
            Ok(added) => added,
            Err(why) => {
                self.refused(actor, &object, &why);
                return Err(Refusal::Conflict(why));
            }
        };
        let name = pack.name.clone();
        self.release_programs(&name, actor);
        self.apply(
            actor,
            "pack_uploaded",
            &object,
            Some(&pack.signature.to_string()),
            move |store| {
                match before {
                    Some(row) => store.restore_pack_row(&row)?,
                    None => store.forget_pack(&name)?,
                }
                if new {
                    store.forget_pack_version(id)?;
                }
                Ok(())
            },
        )?;
        self.info(&pack.name)
    }

    /// Whether this agent runs `name` `version` with the archive whose SHA-256 is `sha256`
    /// already (a publication heard again at start-up needs no fetch).
    pub fn runs(&self, name: &str, version: &str, sha256: &str) -> bool {
        self.row(name).is_some_and(|r| {
            r.enabled
                && r.active_version()
                    .is_some_and(|v| v.version == version && v.sha256 == sha256)
        })
    }

    /// Takes a pack the fleet published, as `actor` (`fleet:<admin>`): it must be signed by
    /// one of *this agent's* trusted keys — the hub and the bus vouch for nothing, and
    /// unsigned packs are refused — be the pack published under that name and version, and
    /// be for this computer (its own `[targets]`). Then it is an upload like any other. A
    /// pack no longer for this computer is switched off.
    pub fn take_published(
        &mut self,
        archive: &[u8],
        signature: &str,
        published: Option<(&str, &str)>,
        actor: &str,
        place: &crate::model::targets::Place,
    ) -> Result<PackInfo, (RolloutState, Vec<String>)> {
        let object = match published {
            Some((name, version)) => format!("{name} {version}"),
            None => actor.to_string(),
        };
        let refuse = |set: &mut PackSet, state: RolloutState, errors: Vec<String>| {
            set.refused(actor, &object, &errors.join("; "));
            Err((state, errors))
        };
        if self.trusted.is_empty() {
            return refuse(
                self,
                RolloutState::BadSignature,
                vec![
                    "this agent trusts no signing key: a pack from the fleet must be signed by a key in its trusted-keys/ folder"
                        .into(),
                ],
            );
        }
        let shown = format!("{object} from the fleet");
        let pack = match Pack::from_archive(archive, Some(signature), &shown, &self.trusted) {
            Ok(p) => p,
            Err(e) => {
                let state = if !matches!(
                    self.trusted.check(archive, Some(signature)),
                    Ok(crate::packs::SignatureState::Verified { .. })
                ) {
                    RolloutState::BadSignature
                } else if e.needs_newer_agent() {
                    RolloutState::AgentTooOld
                } else {
                    RolloutState::DoesNotLoad
                };
                return refuse(self, state, diagnostics(e));
            }
        };
        let version = pack.version.to_string();
        if published.is_some_and(|p| p != (pack.name.as_str(), version.as_str())) {
            let why = format!(
                "the archive is pack {} {}, but was published as {object}",
                pack.name, pack.version
            );
            return refuse(self, RolloutState::DoesNotLoad, vec![why]);
        }
        if let crate::model::targets::Reach::No(why) = place.reach(&pack.targets) {
            if self.row(&pack.name).is_some_and(|r| r.enabled) {
                self.set_enabled(&pack.name, false, actor)
                    .map_err(|e| (RolloutState::NotTargeted, vec![e.to_string()]))?;
            }
            return Err((RolloutState::NotTargeted, vec![why]));
        }
        // A source polled again may bring what runs already: nothing to do.
        let sha256 = crate::hex::encode(&<sha2::Sha256 as sha2::Digest>::digest(archive));
        if self.runs(&pack.name, &version, &sha256) {
            return self
                .info(&pack.name)
                .map_err(|e| (RolloutState::DoesNotLoad, vec![e.to_string()]));
        }
        self.upload(archive, Some(signature), actor).map_err(|e| {
            let errors = match e {
                Refusal::Invalid(errors) => errors,
                other => vec![other.to_string()],
            };
            (RolloutState::DoesNotLoad, errors)
        })
    }

    /// Checks a pack a hub is asked to publish: it loads, with its plugins and scripts, and
    /// its signature is shown as this hub's keys see it (the agents check it against theirs).
    pub fn check_for_fleet(
        &mut self,
        archive: &[u8],
        signature: &str,
        actor: &str,
    ) -> Result<Pack, Refusal> {
        let refused = |set: &mut PackSet, errors: Vec<String>| {
            set.refused(actor, "publish", &errors.join("; "));
            Refusal::Invalid(errors)
        };
        let pack = match Pack::from_archive(archive, Some(signature), "publish", &self.trusted) {
            Ok(p) => p,
            Err(e) => return Err(refused(self, diagnostics(e))),
        };
        if pack.name == STANDARD {
            let why = "the name \"standard\" belongs to the built-in pack".to_string();
            return Err(refused(self, vec![why]));
        }
        if let Err(e) = RuleSet::new(vec![pack.clone()]) {
            return Err(refused(self, vec![e]));
        }
        Ok(pack)
    }

    /// Records a change `actor` made for the fleet on this hub (`pack_published`,
    /// `group_set`, `group_removed`): in the audit trail, and as an account event through the
    /// running rules (the hub's "Monitoring setup changed").
    pub fn record_fleet_change(&mut self, actor: &str, action: &str, object: &str, detail: &str) {
        match self.store.audit(actor, action, object, Some(detail)) {
            Ok(entry) => {
                let notice = self.account_event(&entry.actor, action, object, Some(detail));
                self.pipeline.event(notice);
            }
            Err(e) => tracing::error!("cannot write the audit trail: {e:#}"),
        }
    }

    /// Switches a pack on or off.
    pub fn set_enabled(
        &mut self,
        name: &str,
        enabled: bool,
        actor: &str,
    ) -> Result<PackInfo, Refusal> {
        let before = self.known(name)?;
        self.store
            .set_pack_enabled(name, enabled)
            .map_err(|e| Refusal::Failed(format!("{e:#}")))?;
        if enabled {
            self.release_programs(name, actor);
        }
        let action = if enabled {
            "pack_enabled"
        } else {
            "pack_disabled"
        };
        let object = self.object(name);
        self.apply(actor, action, &object, None, move |store| match before {
            Some(row) => store.restore_pack_row(&row),
            None => store.forget_pack(STANDARD),
        })?;
        self.info(name)
    }

    /// Turns `pack`'s switched-off programs back on (enabling a pack, or a new version of it,
    /// is the admin's word that they may run again), in the audit trail.
    fn release_programs(&mut self, pack: &str, actor: &str) {
        match self.store.release_programs(pack) {
            Ok(released) if !released.is_empty() => {
                let detail = released.join(", ");
                if let Err(e) = self
                    .store
                    .audit(actor, "programs_released", pack, Some(&detail))
                {
                    tracing::error!("cannot write the audit trail: {e:#}");
                }
            }
            Ok(_) => {}
            Err(e) => tracing::error!("cannot turn {pack}'s programs back on: {e:#}"),
        }
    }

    /// Runs the version uploaded before the running one.
    pub fn roll_back(&mut self, name: &str, actor: &str) -> Result<PackInfo, Refusal> {
        let Some(before) = self.known(name)? else {
            return Err(Refusal::Conflict(
                "the built-in pack has no other version".into(),
            ));
        };
        let from = self.object(name);
        let version = self.store.roll_back_pack(name).map_err(|e| match e {
            RollBackError::Nothing(why) => Refusal::Conflict(why),
            RollBackError::Store(e) => Refusal::Failed(format!("database: {e}")),
        })?;
        let detail = format!("from {from} to {version}");
        let object = format!("{name} {version}");
        self.apply(
            actor,
            "pack_rolled_back",
            &object,
            Some(&detail),
            move |store| store.restore_pack_row(&before),
        )?;
        self.info(name)
    }

    /// The store row of a pack the agent knows; `Ok(None)` for a built-in pack never changed.
    fn known(&self, name: &str) -> Result<Option<PackRow>, Refusal> {
        match self.row(name) {
            Some(row) => Ok(Some(row)),
            None if name == STANDARD => Ok(None),
            None => Err(Refusal::Unknown(format!("no pack named {name:?}"))),
        }
    }

    fn row(&self, name: &str) -> Option<PackRow> {
        self.store
            .packs()
            .ok()?
            .into_iter()
            .find(|r| r.name == name)
    }

    /// `name version`, for audit entries.
    fn object(&self, name: &str) -> String {
        // The version comes from the store's row; reloading the archive would only repeat it.
        let version = self
            .row(name)
            .and_then(|r| r.active_version().map(|v| v.version.clone()));
        match version {
            Some(v) => format!("{name} {v}"),
            None if name == STANDARD => match Pack::standard() {
                Ok(p) => format!("{name} {}", p.version),
                Err(_) => name.to_string(),
            },
            None => name.to_string(),
        }
    }

    /// Every pack the agent knows, running or not.
    pub fn list(&self) -> Result<Vec<PackInfo>, Refusal> {
        let rows = self
            .store
            .packs()
            .map_err(|e| Refusal::Failed(format!("{e:#}")))?;
        let mut names: Vec<String> = rows.iter().map(|r| r.name.clone()).collect();
        if !names.iter().any(|n| n == STANDARD) {
            names.insert(0, STANDARD.to_string());
        }
        // A stored pack that no longer loads (the trust policy changed, say) is listed with
        // the reason, not hidden, and does not hide the others.
        Ok(names
            .iter()
            .map(|n| {
                self.info(n).unwrap_or_else(|why| {
                    let row = rows.iter().find(|r| &r.name == n);
                    let versions = row.map(|r| r.versions.clone()).unwrap_or_default();
                    let version = row
                        .and_then(|r| r.active_version())
                        .map(|v| v.version.clone())
                        .unwrap_or_default();
                    PackInfo {
                        name: n.clone(),
                        version,
                        enabled: row.is_some_and(|r| r.enabled),
                        publisher: None,
                        description: None,
                        signature: format!("not loadable: {why}"),
                        grants: String::new(),
                        alarms: Vec::new(),
                        plugins: Vec::new(),
                        scripts: Vec::new(),
                        versions,
                    }
                })
            })
            .collect())
    }

    /// One pack, as listed.
    pub fn info(&self, name: &str) -> Result<PackInfo, Refusal> {
        let row = self.row(name);
        let (enabled, versions) = match &row {
            Some(r) => (r.enabled, r.versions.clone()),
            None if name == STANDARD => (true, Vec::new()),
            None => return Err(Refusal::Unknown(format!("no pack named {name:?}"))),
        };
        let pack = match &row {
            Some(r) => self.load_row(r).map_err(Refusal::Invalid)?,
            None => Some(Pack::standard().map_err(|e| Refusal::Invalid(diagnostics(e)))?),
        }
        .ok_or_else(|| Refusal::Unknown(format!("{name} has no version")))?;
        Ok(PackInfo {
            name: pack.name.clone(),
            version: pack.version.to_string(),
            enabled,
            publisher: pack.publisher.clone(),
            description: pack.description.clone(),
            signature: pack.signature.to_string(),
            grants: pack.grants.to_string(),
            alarms: pack.alarms.iter().map(|a| a.name.clone()).collect(),
            plugins: pack.plugins.iter().map(|p| p.file.clone()).collect(),
            scripts: pack.scripts.iter().map(|s| s.file.clone()).collect(),
            versions,
        })
    }

    /// The audit trail, newest first.
    pub fn audit_trail(
        &self,
        limit: u32,
    ) -> Result<Vec<crate::model::report::AuditEntry>, Refusal> {
        self.store
            .audit_trail(limit)
            .map_err(|e| Refusal::Failed(format!("{e:#}")))
    }
}

/// Problems of a refused pack shown, returned and audited; the rest are counted. A pack of
/// 100,000 bad alarms otherwise stored a 35 MB error list per try.
const SHOWN_PROBLEMS: usize = 100;

/// Longest problem text kept (a diagnostic may quote what the pack says).
const PROBLEM_CHARS: usize = 500;

/// A refused pack's problems, as returned, shown and audited: the first [`SHOWN_PROBLEMS`], then
/// how many more there were.
fn diagnostics(e: PackError) -> Vec<String> {
    let all = e.diagnostics.len();
    let mut shown: Vec<String> = e
        .diagnostics
        .iter()
        .take(SHOWN_PROBLEMS)
        .map(|d| {
            let text = d.to_string();
            match text.char_indices().nth(PROBLEM_CHARS) {
                Some((cut, _)) => format!("{}…", &text[..cut]),
                None => text,
            }
        })
        .collect();
    if all > SHOWN_PROBLEMS {
        shown.push(format!(
            "… and {} more problems ({all} in all; `vigilo check` lists every one)",
            all - SHOWN_PROBLEMS
        ));
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_keeps_a_bounded_list_and_says_how_many_more() {
        let many = PackError {
            diagnostics: (0..10_000)
                .map(|i| crate::packs::Diagnostic {
                    file: "pack.toml".into(),
                    line: i + 1,
                    column: 1,
                    message: "x".repeat(2_000),
                })
                .collect(),
        };
        let shown = diagnostics(many);
        assert_eq!(shown.len(), SHOWN_PROBLEMS + 1);
        assert!(shown[0].chars().count() <= PROBLEM_CHARS + 1);
        assert_eq!(
            shown[SHOWN_PROBLEMS],
            "… and 9900 more problems (10000 in all; `vigilo check` lists every one)"
        );
    }
}
