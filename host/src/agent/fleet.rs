//! The fleet's tasks in a running process: an agent's heartbeats to the hub and its taking of
//! the packs the fleet publishes, and the hub's watch over agents that stopped reporting. (Forwarding alarms is an action: the outbox's
//! `forward` lane; taking them in is `fleet::ingest`.)

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use anyhow::Result;

use crate::fleet::groups::{Change, MAX_GROUPS};
use crate::fleet::packs::Publication;
use crate::model::report::{Heartbeat, PackRollout, ROLLOUT_ERRORS, ROLLOUT_ROWS, RolloutState};
use crate::model::targets::{Groups, Place, some_names};

use super::api;
use crate::sources::Sink;
use crate::store::Store;

/// Who this agent is in the fleet, and what it did with the packs the fleet published: what
/// its heartbeats say.
#[derive(Clone)]
pub(super) struct Member {
    /// Its id.
    pub agent: String,
    /// Its tags.
    pub tags: BTreeMap<String, String>,
    /// Each published pack heard of: the version last taken or refused, and how it went.
    pub rollout: Arc<Mutex<BTreeMap<String, PackRollout>>>,
    /// Woken when the rollout changes, so the hub hears of it before the next heartbeat is due.
    pub changed: Arc<tokio::sync::Notify>,
    /// The groups the hub defines, as last heard.
    pub groups: Arc<Mutex<Groups>>,
}

impl Member {
    /// A member of the fleet as `agent`, with `tags`.
    pub fn new(agent: String, tags: BTreeMap<String, String>) -> Member {
        Member {
            agent,
            tags,
            rollout: Default::default(),
            changed: Default::default(),
            groups: Default::default(),
        }
    }

    /// Where this agent judges targets: its id, tags and the groups heard.
    fn place(&self) -> Place {
        Place {
            agent: Some(self.agent.clone()),
            tags: self.tags.clone(),
            groups: self.groups.lock().map(|g| g.clone()).unwrap_or_default(),
        }
    }

    /// The rollout as a heartbeat carries it: bounded in rows and errors.
    fn rollout(&self) -> Vec<PackRollout> {
        let Ok(rollout) = self.rollout.lock() else {
            return Vec::new();
        };
        rollout
            .values()
            .take(ROLLOUT_ROWS)
            .map(|r| {
                let mut r = r.clone();
                r.errors.truncate(ROLLOUT_ERRORS);
                r
            })
            .collect()
    }
}

/// Sends this agent's heartbeat every `every`, and at once when its rollout changes, until the
/// process ends (the bus away: the next one goes when it is back).
pub(super) async fn heartbeats(
    client: async_nats::Client,
    member: Member,
    every: std::time::Duration,
    state: api::AppState,
) {
    let mut sender = crate::fleet::heartbeat::Sender::new(client.clone());
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = member.changed.notified() => {}
        }
        let mut beat = match heartbeat(&member, &state).await {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!("fleet: no heartbeat: {e}");
                continue;
            }
        };
        // The bus's state as the client has it now, not as last polled: the first heartbeat
        // goes out as the connection comes up.
        if client.connection_state() == async_nats::connection::State::Connected
            && let Some(fleet) = beat.status.sources.get_mut("fleet")
            && !fleet.up
        {
            fleet.up = true;
            fleet.detail = "connected".into();
        }
        if let Err(e) = sender.send(&beat).await {
            tracing::debug!("fleet: {e:#}");
        }
    }
}

/// What this agent says about itself to the hub.
async fn heartbeat(member: &Member, state: &api::AppState) -> Result<Heartbeat> {
    let status = api::status_report(state)
        .await
        .map_err(anyhow::Error::msg)?;
    let (packs, store) = (state.packs.clone(), state.store.clone());
    let (packs, last_alarm, activity) = tokio::task::spawn_blocking(move || -> Result<_> {
        let packs = packs
            .lock()
            .map_err(|_| anyhow::anyhow!("the packs' lock is poisoned"))?
            .list()
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let store = store
            .lock()
            .map_err(|_| anyhow::anyhow!("the store's lock is poisoned"))?;
        let latest = store.alarms(&crate::store::AlarmFilter {
            limit: Some(1),
            ..Default::default()
        })?;
        let since =
            chrono::Utc::now() - chrono::Duration::hours(crate::model::report::ACTIVITY_HOURS);
        let activity = store.live_activity_since(since, crate::model::report::ACTIVITY_ROWS)?;
        Ok((
            packs,
            latest
                .first()
                .map(|a| crate::event::Event::utc_string(a.record.fired_at)),
            activity,
        ))
    })
    .await??;
    Ok(Heartbeat {
        form: crate::model::FORM_VERSION,
        agent: member.agent.clone(),
        host: crate::os::process::hostname(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        os: std::env::consts::OS.to_string(),
        at: crate::event::Event::utc_string(chrono::Utc::now().fixed_offset()),
        packs: packs
            .into_iter()
            .filter(|p| p.enabled)
            .map(|p| (p.name, p.version))
            .collect(),
        last_alarm,
        status,
        activity,
        tags: member.tags.clone(),
        rollout: member.rollout(),
    })
}

/// At most this many published packs are taken (and remembered) by one agent: as many as a
/// heartbeat reports.
const MAX_PUBLISHED: usize = ROLLOUT_ROWS;

/// Takes the packs the fleet publishes, one at a time, for as long as the process runs.
pub(super) async fn take_packs(client: async_nats::Client, member: Member, state: api::AppState) {
    let (heard, mut publications) = tokio::sync::mpsc::channel(64);
    tokio::spawn(crate::fleet::packs::watch(client.clone(), heard));
    let js = async_nats::jetstream::new(client);
    while let Some(p) = publications.recv().await {
        // A bus that names ever more packs must not grow this agent's memory without end.
        let known = member
            .rollout
            .lock()
            .map(|r| r.contains_key(&p.name) || r.len() < MAX_PUBLISHED)
            .unwrap_or(false);
        if !known {
            tracing::warn!(pack = %p.name, "fleet: over {MAX_PUBLISHED} packs published; not taken");
            continue;
        }
        let (state_now, errors) = take_one(&js, &p, &member, &state).await;
        match state_now {
            RolloutState::Running => {
                tracing::info!(pack = %p.name, version = %p.version, "fleet: running")
            }
            other => tracing::warn!(
                pack = %p.name,
                version = %p.version,
                "fleet: refused ({}): {}",
                other.words(),
                errors.join("; ")
            ),
        }
        let entry = PackRollout {
            name: p.name.clone(),
            version: p.version.clone(),
            state: state_now,
            errors,
            at: crate::event::Event::utc_string(chrono::Utc::now().fixed_offset()),
        };
        if let Ok(mut rollout) = member.rollout.lock() {
            rollout.insert(p.name.clone(), entry);
        }
        member.changed.notify_one();
    }
}

/// Keeps the groups the hub defines, for as long as the process runs: each change reaches the
/// pipeline (whose targets name groups) and the packs taken next.
pub(super) async fn take_groups(
    client: async_nats::Client,
    member: Member,
    pipeline: super::runner::Handle,
) {
    let (heard, mut changes) = tokio::sync::mpsc::channel(64);
    tokio::spawn(crate::fleet::groups::watch(client, heard));
    while let Some(first) = changes.recv().await {
        // A burst (the first catch-up, an import) is one new place, not one per group.
        let mut batch = vec![first];
        while let Ok(more) = changes.try_recv() {
            batch.push(more);
        }
        if let Ok(mut groups) = member.groups.lock() {
            for change in batch {
                match change {
                    Change::Set(g) if groups.list().count() < MAX_GROUPS || groups.has(&g.name) => {
                        tracing::info!(
                            "fleet: group {}: users {}; computers {}",
                            g.name,
                            some_names(&g.users, 5),
                            some_names(&g.computers, 5)
                        );
                        groups.set(g)
                    }
                    Change::Set(g) => {
                        tracing::warn!(group = %g.name, "fleet: over {MAX_GROUPS} groups; not kept")
                    }
                    Change::Removed(key) => {
                        tracing::info!("fleet: group {key} removed");
                        groups.remove(&key)
                    }
                }
            }
        }
        let place = Arc::new(member.place());
        tracing::info!(groups = place.groups.list().count(), "fleet: groups heard");
        pipeline.place(place);
    }
}

/// Takes the pack a web server or an OCI registry offers (`[[fleet.pack_source]]`), polled about every `every`
/// for as long as the process runs, through the same checks as a pack from the bus: its
/// signature against this agent's keys, its targets against this agent.
pub(super) async fn take_from_source(
    settings: crate::fleet::sources::PackSourceSettings,
    every: std::time::Duration,
    member: Member,
    state: api::AppState,
) {
    let mut source = match crate::fleet::sources::PackSource::new(settings) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("fleet: pack source: {e}");
            return;
        }
    };
    let actor = format!(
        "source:{}",
        source.url().chars().take(200).collect::<String>()
    );
    loop {
        match source.poll().await {
            Ok(None) => tracing::debug!(url = source.url(), "fleet: pack source unchanged"),
            Ok(Some(fetched)) => {
                let (place, who) = (member.place(), actor.clone());
                let taken =
                    api::on_packs(&state, move |set| {
                        Ok(set.take_published(
                            &fetched.archive,
                            &fetched.signature,
                            None,
                            &who,
                            &place,
                        ))
                    })
                    .await;
                match taken {
                    Ok(Ok(info)) => tracing::info!(
                        url = source.url(),
                        pack = %info.name,
                        version = %info.version,
                        "fleet: running"
                    ),
                    Ok(Err((state, errors))) => tracing::warn!(
                        url = source.url(),
                        "fleet: refused ({}): {}",
                        state.words(),
                        errors.join("; ")
                    ),
                    Err(e) => tracing::warn!(url = source.url(), "fleet: refused: {e}"),
                }
            }
            Err(e) => tracing::warn!("fleet: pack source: {e}"),
        }
        tokio::time::sleep(crate::fleet::sources::next_wait(every)).await;
    }
}

/// Fetches, checks and runs one published pack; says how it went.
async fn take_one(
    js: &async_nats::jetstream::Context,
    p: &Publication,
    member: &Member,
    state: &api::AppState,
) -> (RolloutState, Vec<String>) {
    let (name, version, sha) = (p.name.clone(), p.version.clone(), p.sha256.clone());
    let runs = api::on_packs(state, move |set| Ok(set.runs(&name, &version, &sha))).await;
    if runs.unwrap_or(false) {
        return (RolloutState::Running, Vec::new());
    }
    let archive = match crate::fleet::packs::fetch_patiently(js, p).await {
        Ok(bytes) => bytes,
        Err(e) => return (RolloutState::NotFetched, vec![e.to_string()]),
    };
    // Who published it is the hub's word, shown as such and bounded.
    let actor = format!(
        "fleet:{}",
        p.published_by.chars().take(64).collect::<String>()
    );
    let (signature, name, version) = (p.signature.clone(), p.name.clone(), p.version.clone());
    let place = member.place();
    let taken = api::on_packs(state, move |set| {
        Ok(set.take_published(
            &archive,
            &signature,
            Some((&name, &version)),
            &actor,
            &place,
        ))
    })
    .await;
    match taken {
        Ok(Ok(_)) => (RolloutState::Running, Vec::new()),
        Ok(Err((state, errors))) => (state, errors),
        Err(e) => (RolloutState::DoesNotLoad, vec![e.to_string()]),
    }
}

/// The hub's watch over its agents: one silent longer than `quiet_after` is marked not
/// reporting, and a setup-change event says so through the hub's own rules (the standard pack's
/// "Computer not reporting"), once until it reports again.
pub(super) async fn not_reporting(
    store: Arc<Mutex<Store>>,
    quiet_after: std::time::Duration,
    sink: Arc<dyn Sink>,
) {
    let mut tick = tokio::time::interval((quiet_after / 4).clamp(
        std::time::Duration::from_millis(250),
        std::time::Duration::from_secs(10),
    ));
    loop {
        tick.tick().await;
        let now = chrono::Utc::now();
        let cutoff = crate::event::Event::utc_string(
            (now - chrono::Duration::from_std(quiet_after).unwrap_or(chrono::Duration::MAX))
                .fixed_offset(),
        );
        let store = store.clone();
        let quiet = tokio::task::spawn_blocking(move || match store.lock() {
            Ok(mut s) => s.agents_gone_quiet(&cutoff),
            Err(_) => Err(anyhow::anyhow!("the store's lock is poisoned")),
        })
        .await;
        let quiet = match quiet {
            Ok(Ok(q)) => q,
            Ok(Err(e)) => {
                tracing::error!("fleet: cannot check the agents: {e:#}");
                continue;
            }
            Err(e) => {
                tracing::error!("fleet: cannot check the agents: {e}");
                continue;
            }
        };
        for (agent, last_seen) in quiet {
            tracing::warn!(agent, last_seen, "fleet: not reporting");
            let event =
                crate::event::Event::new(crate::event::EventKind::Account, now.fixed_offset())
                    .with_text(crate::event::Field::Computer, &agent)
                    .with_text(crate::event::Field::Actor, "hub")
                    .with_text(crate::event::Field::EventName, "agent_not_reporting")
                    .with_text(crate::event::Field::ActionType, "agent")
                    .with_text(crate::event::Field::ActionObject, &agent)
                    .with_text(
                        crate::event::Field::Detail,
                        &format!(
                            "last heard from at {last_seen}; silent for more than {} s",
                            quiet_after.as_secs()
                        ),
                    );
            sink.event(event);
        }
    }
}
