//! The fleet's tasks in a running process: an agent's heartbeats to the hub, and the hub's
//! watch over agents that stopped reporting. (Forwarding alarms is an action: the outbox's
//! `forward` lane; taking them in is `fleet::ingest`.)

use std::sync::{Arc, Mutex};

use anyhow::Result;

use super::api;
use crate::sources::Sink;
use crate::store::Store;

/// Sends this agent's heartbeat every `every` until the process ends (the bus away: the next one
/// goes when it is back).
pub(super) async fn heartbeats(
    client: async_nats::Client,
    agent: String,
    every: std::time::Duration,
    state: api::AppState,
) {
    let mut sender = crate::fleet::heartbeat::Sender::new(client.clone());
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        let mut beat = match heartbeat(&agent, &state).await {
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
async fn heartbeat(agent: &str, state: &api::AppState) -> Result<crate::model::report::Heartbeat> {
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
    Ok(crate::model::report::Heartbeat {
        form: crate::model::FORM_VERSION,
        agent: agent.to_string(),
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
    })
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
