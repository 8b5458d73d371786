//! `vigilo fleet simulate --publish ARCHIVE`: how long a pack takes to reach a whole fleet.
//!
//! Each simulated agent does what an agent does with a publication: it watches the bucket of
//! publications (its own watch, the real [`crate::fleet::packs::watch`]), fetches the archive
//! from the bus (the real [`crate::fleet::packs::fetch`], size and SHA-256 checked), verifies
//! the signature against its own trusted keys and loads the pack, checks its targets, builds
//! the whole rule set it would swap in, and says so in its next heartbeat, sent at once. The
//! simulator publishes through the hub's API and times two things: until every agent has taken
//! it, and until the hub's rollout (its Packs page) counts every agent on the new version.
//!
//! What is left out is each agent's own disk: a real agent also stores the archive in its
//! SQLite store. That is one small transaction on each computer's own disk, in parallel across
//! a fleet; 10,000 of them on one disk would time the simulator's disk, not the rollout.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures_util::StreamExt;

use super::simulate::{Args, Hub, Said, show_latency};
use crate::fleet::packs::Publication;
use crate::model::report::{FleetPack, PackRollout, RolloutState};
use crate::model::targets::{Place, Reach};
use crate::packs::Pack;
use crate::packs::signature::TrustedKeys;
use crate::rule_set::RuleSet;

/// How long a rollout may take before the simulator says it did not finish.
const PATIENCE: Duration = Duration::from_secs(600);

/// What one agent did with one publication.
struct Taken {
    name: String,
    version: String,
    state: RolloutState,
    at: Instant,
}

/// Starts every agent's watch, waits until the bus has them all, then publishes each archive
/// in turn and reports how long it took to reach every agent, and the hub.
pub(super) fn run(
    args: &Args,
    runtime: &tokio::runtime::Runtime,
    hub: &Hub,
    clients: &[(String, async_nats::Client)],
    said: &[Arc<Said>],
    base: &[Pack],
) -> Result<()> {
    let mut keys = TrustedKeys::none();
    for k in &args.trusted_key {
        keys.add_file(k).map_err(anyhow::Error::msg)?;
    }
    let keys = Arc::new(keys);
    let base = Arc::new(base.to_vec());
    let (taken_tx, mut taken) = tokio::sync::mpsc::unbounded_channel();
    let watching = Instant::now();
    for ((id, client), said) in clients.iter().zip(said) {
        runtime.spawn(agent(
            id.clone(),
            client.clone(),
            said.clone(),
            keys.clone(),
            base.clone(),
            taken_tx.clone(),
        ));
    }
    let watches = runtime.block_on(wait_for_watches(&clients[0].1, clients.len()))?;
    println!(
        "agents     {watches} watches of the publications set up in {:.1} s",
        watching.elapsed().as_secs_f64()
    );
    super::simulate::report_memory(&args.watch)?;
    for archive in &args.publish {
        let (bytes, signature, file_name) =
            Pack::upload_form(archive).map_err(|e| anyhow::anyhow!("{e}"))?;
        let signature = signature
            .with_context(|| format!("{}: no signature beside it (.minisig)", archive.display()))?;
        let pack = Pack::from_archive(&bytes, Some(&signature), &file_name, &keys)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let (name, version) = (pack.name.clone(), pack.version.to_string());
        let form = reqwest::blocking::multipart::Form::new()
            .part(
                "archive",
                reqwest::blocking::multipart::Part::bytes(bytes.clone()).file_name(file_name),
            )
            .text("signature", signature);
        let published = Instant::now();
        let answer = hub
            .request(reqwest::Method::POST, "/api/v1/fleet/packs")?
            .multipart(form)
            .send()?;
        if !answer.status().is_success() {
            anyhow::bail!(
                "the hub did not publish {name} {version}: {} {}",
                answer.status(),
                answer.text().unwrap_or_default()
            );
        }
        // Every agent's word, as each decides.
        let latency = crate::latency::Recorder::default();
        let (mut running, mut refused) = (0usize, 0usize);
        let deadline = published + PATIENCE;
        while running + refused < clients.len() {
            let left = deadline.saturating_duration_since(Instant::now());
            let Some(t) = runtime.block_on(async {
                tokio::time::timeout(left, taken.recv())
                    .await
                    .ok()
                    .flatten()
            }) else {
                break;
            };
            if t.name != name || t.version != version {
                continue;
            }
            latency.record(t.at.duration_since(published));
            match t.state {
                RolloutState::Running => running += 1,
                _ => refused += 1,
            }
        }
        let all_took = published.elapsed().as_secs_f64();
        println!(
            "rollout    {name} {version} ({} bytes): {running} of {} agents run it {all_took:.1} s \
             after it was published ({refused} refused); publish to running: {}",
            bytes.len(),
            clients.len(),
            show_latency(latency.summary())
        );
        // The hub hears it through their heartbeats.
        let seen = wait_for_hub(hub, &name, &version, clients.len(), deadline)?;
        println!(
            "hub        its rollout counts {} of {} agents on {version} {:.1} s after it was \
             published",
            seen,
            clients.len(),
            published.elapsed().as_secs_f64()
        );
        super::simulate::report_memory(&args.watch)?;
    }
    Ok(())
}

/// One simulated agent: takes each publication as an agent does, and says so.
async fn agent(
    id: String,
    client: async_nats::Client,
    said: Arc<Said>,
    keys: Arc<TrustedKeys>,
    base: Arc<Vec<Pack>>,
    taken: tokio::sync::mpsc::UnboundedSender<Taken>,
) {
    let (heard, mut publications) = tokio::sync::mpsc::channel(8);
    tokio::spawn(crate::fleet::packs::watch(client.clone(), heard));
    let js = async_nats::jetstream::new(client);
    let place = Place {
        agent: Some(id),
        ..Place::default()
    };
    while let Some(p) = publications.recv().await {
        let runs_already = said
            .now
            .lock()
            .is_ok_and(|now| now.0.iter().any(|(n, v)| *n == p.name && *v == p.version));
        let state = if runs_already {
            RolloutState::Running
        } else {
            take(&js, &p, &keys, &base, &place).await
        };
        if let Ok(mut now) = said.now.lock() {
            let (packs, rollout) = &mut *now;
            if state == RolloutState::Running {
                packs.retain(|(n, _)| *n != p.name);
                packs.push((p.name.clone(), p.version.clone()));
            }
            rollout.retain(|r| r.name != p.name);
            rollout.push(PackRollout {
                name: p.name.clone(),
                version: p.version.clone(),
                state,
                errors: Vec::new(),
                at: crate::event::Event::utc_string(chrono::Utc::now().fixed_offset()),
            });
        }
        said.changed.notify_one();
        let _ = taken.send(Taken {
            name: p.name,
            version: p.version,
            state,
            at: Instant::now(),
        });
    }
}

/// Fetches, verifies and loads a publication, and builds the rule set it would run.
async fn take(
    js: &async_nats::jetstream::Context,
    p: &Publication,
    keys: &Arc<TrustedKeys>,
    base: &Arc<Vec<Pack>>,
    place: &Place,
) -> RolloutState {
    let archive = match crate::fleet::packs::fetch_patiently(js, p).await {
        Ok(bytes) => bytes,
        Err(e) => {
            tracing::warn!(pack = %p.name, "not fetched: {e}");
            return RolloutState::NotFetched;
        }
    };
    let (signature, keys, base, place) = (
        p.signature.clone(),
        keys.clone(),
        base.clone(),
        place.clone(),
    );
    // What takes a core, off the tasks that talk to the bus (as an agent's pack set does).
    tokio::task::spawn_blocking(move || {
        let pack = match Pack::from_archive(&archive, Some(&signature), "published", &keys) {
            Ok(pack) => pack,
            Err(e) => {
                tracing::warn!("does not load: {e}");
                return RolloutState::DoesNotLoad;
            }
        };
        if let Reach::No(_) = place.reach(&pack.targets) {
            return RolloutState::NotTargeted;
        }
        let mut packs: Vec<Pack> = base
            .iter()
            .filter(|b| b.name != pack.name)
            .cloned()
            .collect();
        packs.push(pack);
        match RuleSet::new(packs) {
            Ok(_) => RolloutState::Running,
            Err(e) => {
                tracing::warn!("does not load: {e}");
                RolloutState::DoesNotLoad
            }
        }
    })
    .await
    .unwrap_or(RolloutState::DoesNotLoad)
}

/// Waits until the bus has `n` consumers on the publications' stream (each agent's watch);
/// returns how many it has.
async fn wait_for_watches(client: &async_nats::Client, n: usize) -> Result<usize> {
    let js = async_nats::jetstream::new(client.clone());
    let stream = format!("KV_{}", crate::fleet::packs::PUBLISHED_BUCKET);
    let deadline = Instant::now() + PATIENCE;
    loop {
        let consumers = match js.get_stream(&stream).await {
            Ok(s) => {
                let mut names = s.consumer_names();
                let mut count = 0;
                while let Some(Ok(_)) = names.next().await {
                    count += 1;
                }
                count
            }
            Err(_) => 0,
        };
        if consumers >= n || Instant::now() > deadline {
            return Ok(consumers);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Polls the hub's rollout until it counts `n` agents on `version` of `name` (or the
/// deadline); returns how many it counted last.
fn wait_for_hub(
    hub: &Hub,
    name: &str,
    version: &str,
    n: usize,
    deadline: Instant,
) -> Result<usize> {
    #[derive(serde::Deserialize)]
    struct Answer {
        packs: Vec<FleetPack>,
    }
    let mut counted = 0;
    loop {
        let answer: Result<Answer> = hub
            .request(reqwest::Method::GET, "/api/v1/fleet/packs")
            .and_then(|r| Ok(r.send()?.error_for_status()?.json()?));
        match answer {
            Ok(a) => {
                let on = a
                    .packs
                    .iter()
                    .find(|p| p.name == name)
                    .and_then(|p| p.running.get(version).copied())
                    .unwrap_or(0);
                counted = on;
                if on >= n {
                    return Ok(on);
                }
            }
            Err(e) => tracing::debug!("the hub's rollout: {e:#}"),
        }
        if Instant::now() > deadline {
            return Ok(counted);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
