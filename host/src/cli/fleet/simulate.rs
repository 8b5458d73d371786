//! `vigilo fleet simulate`: a fleet in one process, to size a hub with.
//!
//! N agent identities, each with its own connection to the bus (so the server sees N clients,
//! each with its own inbox and heartbeat), replay generated workdays through the real rules
//! (the standard pack, the live pipeline's spans). Each alarm is committed with its forward row
//! in one transaction (the real store and outbox) and forwarded by the real
//! [`Forwarder`](crate::actions::forward::Forwarder): publish, wait for JetStream's
//! acknowledgement, settle the row. Then the hub's own status says how many it stored and its
//! commit-to-commit lag.
//!
//! Agents share S stores ("shards"), each with one forwarding lane as an agent's worker has:
//! 10,000 SQLite files and lane threads on two cores would measure the simulator, not the
//! fleet. What a shard's lane does per alarm is what each agent's lane does.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use chrono::Utc;

use super::EXIT_OK;
use crate::actions::forward::Forwarder;
use crate::alarms::FiredAlarm;
use crate::event::Field;
use crate::fleet::heartbeat::Sender;
use crate::model::report::{Heartbeat, PackRollout, SourceStatus, StatusReport};
use crate::pipeline::{Mode, Pipeline};
use crate::rule_set::RuleSet;
use crate::store::{FORWARD, LIVE, Settle, Store};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The fleet's NATS server (a hub must have run on it once: it makes the stream).
    #[arg(long, value_name = "URL")]
    fleet: String,
    /// How many agents.
    #[arg(long, default_value_t = 1000)]
    agents: usize,
    /// Generated workdays each agent replays (one person's day: ~170 events, ~3 alarms).
    #[arg(long, default_value_t = 1)]
    days: usize,
    /// Alarms committed per second over all agents (0: as fast as the agents can).
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// Stores the agents share, each with its forwarding lane.
    #[arg(long, default_value_t = 16)]
    shards: usize,
    /// Agent ids are PREFIX-00000, PREFIX-00001…
    #[arg(long, default_value = "sim", value_name = "PREFIX")]
    prefix: String,
    /// A folder of nkeys (`vigilo fleet credentials`): agent ID connects with DIR/ID.nk.
    #[arg(long, value_name = "DIR")]
    nkeys: Option<PathBuf>,
    /// The hub's data folder: after forwarding, wait until the hub has stored every alarm and
    /// report its ingest figures (from its status).
    #[arg(long, value_name = "DIR")]
    hub_data: Option<PathBuf>,
    /// Another process to report the memory of (`bus=PID`, `hub=PID`; repeatable).
    #[arg(long = "watch", value_name = "NAME=PID")]
    pub(super) watch: Vec<String>,
    /// With --hub-data: how long to wait, after forwarding, for the hub to store everything.
    #[arg(long, default_value_t = 600, value_name = "SECS")]
    hub_patience: u64,
    /// Where the shards' stores go [default: a temporary folder, removed after].
    #[arg(long, value_name = "DIR")]
    work_dir: Option<PathBuf>,
    /// Instead of alarms, time a rollout: publish this signed archive through the hub
    /// (--hub-data) and wait until every agent has fetched, verified and loaded it and the
    /// hub has heard so (repeatable: published in turn, each once the one before is out).
    #[arg(long, value_name = "ARCHIVE", requires_all = ["hub_data", "trusted_key"])]
    pub(super) publish: Vec<PathBuf>,
    /// With --publish: a public key the simulated agents trust (repeatable).
    #[arg(long, value_name = "FILE")]
    pub(super) trusted_key: Vec<PathBuf>,
}

/// One simulated agent's id.
pub(super) fn agent_id(prefix: &str, i: usize) -> String {
    format!("{prefix}-{i:05}")
}

pub fn run(args: Args) -> Result<u8> {
    crate::fleet::check_agent_id(&agent_id(&args.prefix, args.agents))?;
    let shards = args.shards.clamp(1, 256);
    let started = Instant::now();
    // A rollout needs no alarms: no days are replayed.
    let days = if args.publish.is_empty() {
        args.days
    } else {
        0
    };
    // What each agent's days fire, through the real rules.
    let rules = RuleSet::new(vec![
        crate::packs::Pack::standard().map_err(anyhow::Error::msg)?,
    ])
    .map_err(anyhow::Error::msg)?;
    let mut planned: Vec<Vec<FiredAlarm>> = (0..shards).map(|_| Vec::new()).collect();
    let mut events = 0usize;
    for i in 0..args.agents {
        let id = agent_id(&args.prefix, i);
        let fired = agent_days(&rules, &id, i, days, &mut events);
        planned[i % shards].extend(fired);
    }
    let total: usize = planned.iter().map(Vec::len).sum();
    if days > 0 {
        println!(
            "rules      {events} events of {} agents' days through the standard pack: {total} alarms ({:.1} s)",
            args.agents,
            started.elapsed().as_secs_f64()
        );
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("vigilo-sim")
        .enable_all()
        .build()?;
    let connecting = Instant::now();
    let clients = runtime.block_on(connect_all(&args, &runtime))?;
    println!(
        "agents     {} of {} connected in {:.1} s",
        clients.len(),
        args.agents,
        connecting.elapsed().as_secs_f64()
    );
    let forwarders: Arc<HashMap<String, Forwarder>> = Arc::new(
        clients
            .iter()
            .map(|(id, c)| {
                let f = Forwarder::new(id, c.clone(), runtime.handle().clone());
                (id.clone(), f)
            })
            .collect(),
    );
    let packs: Vec<(String, String)> = rules
        .packs()
        .iter()
        .map(|p| (p.name.clone(), p.version.to_string()))
        .collect();
    // Every agent's first heartbeat before the first commit (the hub's Agents page lists them
    // all), then one every period.
    let beating = Instant::now();
    let said: Vec<Arc<Said>> = clients.iter().map(|_| Said::new(&packs)).collect();
    let sent = runtime.block_on(first_heartbeats(&clients, &said))?;
    println!(
        "agents     {sent} of {} first heartbeats put in {:.1} s",
        clients.len(),
        beating.elapsed().as_secs_f64()
    );
    if !args.publish.is_empty() {
        let hub = Hub::new(args.hub_data.clone().unwrap_or_default())?;
        super::rollout::run(&args, &runtime, &hub, &clients, &said, rules.packs())?;
        drop(clients);
        runtime.shutdown_timeout(Duration::from_secs(1));
        return Ok(EXIT_OK);
    }

    let temp;
    let work = match &args.work_dir {
        Some(d) => d.clone(),
        None => {
            temp = tempdir()?;
            temp.clone()
        }
    };
    // The hub is watched from the start: it may be down now and started later (to time how
    // fast it drains a backlog).
    let watch = args.hub_data.clone().map(HubWatch::start).transpose()?;
    let figures = Arc::new(Figures::default());
    let forwarding = Instant::now();
    let per_shard_rate = (args.rate > 0.0).then(|| args.rate / shards as f64);
    let mut threads = Vec::new();
    for (k, alarms) in planned.into_iter().enumerate() {
        let dir = work.join(format!("shard-{k:03}"));
        let (forwarders, figures) = (forwarders.clone(), figures.clone());
        threads.push(
            std::thread::Builder::new()
                .name(format!("vigilo-sim-{k}"))
                .spawn(move || shard(&dir, alarms, per_shard_rate, &forwarders, &figures))?,
        );
    }
    for t in threads {
        t.join()
            .map_err(|_| anyhow::anyhow!("a shard panicked"))??;
    }
    let took = forwarding.elapsed().as_secs_f64();
    let acked = figures.acked.load(Relaxed);
    println!(
        "agents     {acked} alarms committed and acknowledged in {took:.1} s: {:.0} alarms/s; \
         {} attempts failed and were retried",
        acked as f64 / took.max(1e-9),
        figures.failed.load(Relaxed)
    );
    println!(
        "agents     commit to acknowledgement: {}",
        show_latency(figures.commit_to_ack.summary())
    );
    if let Some(watch) = watch {
        let seen = watch.finish(acked, Duration::from_secs(args.hub_patience))?;
        let stored = seen.stored;
        match (seen.first_up, seen.done) {
            (Some(up), Some(done)) => {
                let since = up.max(forwarding);
                let took = done.duration_since(since).as_secs_f64();
                println!(
                    "hub        {stored} of {acked} stored {took:.1} s after {}: {:.0} alarms/s; \
                     peak {:.0} alarms/s over one second",
                    if up > forwarding {
                        "it came up"
                    } else {
                        "the first commit"
                    },
                    stored as f64 / took.max(1e-9),
                    seen.peak
                );
            }
            _ => println!(
                "hub        {stored} of {acked} stored after {} s: not all (see its log)",
                args.hub_patience
            ),
        }
        if let Some(fleet) = seen.last.and_then(|s| s.fleet) {
            println!(
                "hub        commit to commit, since it started: {} ({} repeats, {} refused)",
                show_latency(fleet.lag),
                fleet.repeats,
                fleet.refused
            );
        }
    }
    report_memory(&args.watch)?;
    if args.work_dir.is_none() {
        let _ = std::fs::remove_dir_all(&work);
    }
    drop(clients);
    runtime.shutdown_timeout(Duration::from_secs(1));
    Ok(EXIT_OK)
}

/// Prints the simulator's memory and that of each `NAME=PID` watched.
pub(super) fn report_memory(watch: &[String]) -> Result<()> {
    let mut memory = vec![("simulator".to_string(), "self".to_string())];
    for w in watch {
        let (name, pid) = w
            .split_once('=')
            .with_context(|| format!("--watch {w:?}: expected NAME=PID"))?;
        memory.push((name.to_string(), pid.to_string()));
    }
    let shown: Vec<String> = memory
        .iter()
        .map(|(name, pid)| {
            let (peak, now) = crate::os::process::memory_kib(pid);
            format!("{name} {} MiB (peak {} MiB)", now / 1024, peak / 1024)
        })
        .collect();
    println!("memory     {}", shown.join("; "));
    Ok(())
}

/// What agent `i` (id `id`) fires over `days` generated workdays: one person's days on its
/// computer, through the live pipeline.
fn agent_days(
    rules: &RuleSet,
    id: &str,
    i: usize,
    days: usize,
    events: &mut usize,
) -> Vec<FiredAlarm> {
    let mut fired = Vec::new();
    let first = chrono::NaiveDate::from_ymd_opt(2026, 11, 2).unwrap_or_default();
    let mut pipeline = Pipeline::new(rules, Mode::Spans);
    for d in 0..days {
        let date = first + chrono::Days::new(d as u64);
        for mut event in crate::synth::workday(date, 1, (i * days + d) as u64 + 1) {
            event.set_text(Field::Computer, id);
            *events += 1;
            pipeline.push(event, &mut fired);
        }
    }
    pipeline.finish(&mut fired);
    fired
}

/// Connects every agent (256 at a time), each with its own inbox prefix (and nkey).
async fn connect_all(
    args: &Args,
    runtime: &tokio::runtime::Runtime,
) -> Result<Vec<(String, async_nats::Client)>> {
    let gate = Arc::new(tokio::sync::Semaphore::new(256));
    let mut tasks = Vec::with_capacity(args.agents);
    for i in 0..args.agents {
        let id = agent_id(&args.prefix, i);
        let url = args.fleet.clone();
        let seed = match &args.nkeys {
            Some(dir) => Some(crate::fleet::auth::read_seed(
                &dir.join(format!("{id}.nk")),
            )?),
            None => None,
        };
        let gate = gate.clone();
        tasks.push(runtime.spawn(async move {
            let _permit = gate.acquire_owned().await;
            let mut options = async_nats::ConnectOptions::new()
                .name(&id)
                .custom_inbox_prefix(crate::fleet::auth::inbox_prefix(&id))
                .connection_timeout(Duration::from_secs(10));
            if let Some(seed) = seed {
                options = options.nkey(seed);
            }
            let client = options
                .connect(url.as_str())
                .await
                .map_err(|e| anyhow::anyhow!("agent {id} cannot connect to {url}: {e}"))?;
            Ok::<_, anyhow::Error>((id, client))
        }));
    }
    let mut clients = Vec::with_capacity(tasks.len());
    for t in tasks {
        clients.push(t.await??);
    }
    Ok(clients)
}

/// What a heartbeat says: the packs run (name, version) and how each publication went.
pub(super) type Saying = (Vec<(String, String)>, Vec<PackRollout>);

/// What a simulated agent says of itself in its heartbeats: the packs it runs and how each
/// publication went. Its rollout changes it, and a change is sent at once, as an agent does.
pub(super) struct Said {
    /// What its next heartbeat says.
    pub(super) now: std::sync::Mutex<Saying>,
    /// Rung when `now` changed.
    pub(super) changed: tokio::sync::Notify,
}

impl Said {
    fn new(packs: &[(String, String)]) -> Arc<Said> {
        Arc::new(Said {
            now: std::sync::Mutex::new((packs.to_vec(), Vec::new())),
            changed: tokio::sync::Notify::new(),
        })
    }
}

/// Puts every agent's first heartbeat (256 at a time) and leaves a task per agent putting one
/// every period, or as soon as what it says changed; returns how many of the first went in.
async fn first_heartbeats(
    clients: &[(String, async_nats::Client)],
    said: &[Arc<Said>],
) -> Result<usize> {
    let gate = Arc::new(tokio::sync::Semaphore::new(256));
    let mut tasks = Vec::with_capacity(clients.len());
    for ((id, client), said) in clients.iter().zip(said) {
        let (id, client, said, gate) = (id.clone(), client.clone(), said.clone(), gate.clone());
        tasks.push(tokio::spawn(async move {
            let mut sender = Sender::new(client);
            let first = {
                let _permit = gate.acquire_owned().await;
                sender.send(&heartbeat(&id, &said)).await
            };
            let sent = first.is_ok();
            if let Err(e) = first {
                tracing::warn!("{id}: no heartbeat: {e:#}");
            }
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(crate::fleet::heartbeat::EVERY);
                tick.tick().await;
                loop {
                    tokio::select! {
                        _ = tick.tick() => {}
                        _ = said.changed.notified() => {}
                    }
                    if let Err(e) = sender.send(&heartbeat(&id, &said)).await {
                        tracing::debug!("{id}: {e:#}");
                    }
                }
            });
            sent
        }));
    }
    let mut sent = 0;
    for t in tasks {
        sent += usize::from(t.await?);
    }
    Ok(sent)
}

/// What a simulated agent says about itself.
fn heartbeat(id: &str, said: &Said) -> Heartbeat {
    let (packs, rollout) = said.now.lock().map(|now| now.clone()).unwrap_or_default();
    Heartbeat {
        form: crate::model::FORM_VERSION,
        agent: id.to_string(),
        host: id.to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        os: "simulated".into(),
        at: crate::event::Event::utc_string(Utc::now().fixed_offset()),
        packs,
        last_alarm: None,
        status: StatusReport {
            generation: 1,
            sources: [(
                "simulated".to_string(),
                SourceStatus {
                    up: true,
                    detail: "vigilo fleet simulate".into(),
                },
            )]
            .into(),
            ..Default::default()
        },
        activity: Vec::new(),
        tags: Default::default(),
        rollout,
    }
}

/// What the shards did.
#[derive(Default)]
struct Figures {
    acked: AtomicU64,
    failed: AtomicU64,
    commit_to_ack: crate::latency::Recorder,
}

/// One shard: commits its alarms (at `rate` a second, or as fast as it can) in one thread and
/// forwards them in another, as an agent's pipeline and forwarding lane do.
fn shard(
    dir: &Path,
    alarms: Vec<FiredAlarm>,
    rate: Option<f64>,
    forwarders: &HashMap<String, Forwarder>,
    figures: &Figures,
) -> Result<()> {
    let mut store = Store::open(dir)?;
    store.set_forward(true);
    let lane = Store::open(dir)?;
    let done = AtomicBool::new(false);
    let (wake, woken) = std::sync::mpsc::sync_channel::<()>(1);
    std::thread::scope(|scope| -> Result<()> {
        let committer = scope.spawn(|| -> Result<()> {
            let wake = wake;
            let start = Instant::now();
            for (n, fired) in alarms.into_iter().enumerate() {
                if let Some(rate) = rate {
                    let due = start + Duration::from_secs_f64(n as f64 / rate);
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                }
                store.record(&[fired.record], LIVE)?;
                let _ = wake.try_send(());
            }
            done.store(true, Relaxed);
            Ok(())
        });
        forward_lane(lane, forwarders, figures, &done, &woken)?;
        committer
            .join()
            .map_err(|_| anyhow::anyhow!("a shard's committer panicked"))?
    })
}

/// The shard's forwarding lane: what an agent's worker does in its `forward` lane, with the
/// forwarder of the agent each alarm is from.
fn forward_lane(
    mut store: Store,
    forwarders: &HashMap<String, Forwarder>,
    figures: &Figures,
    done: &AtomicBool,
    woken: &std::sync::mpsc::Receiver<()>,
) -> Result<()> {
    loop {
        let finished = done.load(Relaxed);
        let due = store.take_due(Some(FORWARD), Utc::now(), 64)?;
        if due.is_empty() {
            if finished && store.next_due_in_lane(Some(FORWARD))?.is_none() {
                return Ok(());
            }
            let _ = woken.recv_timeout(Duration::from_millis(20));
            continue;
        }
        for run in due {
            let Some(alarm) = store.alarm(run.alarm_id)? else {
                continue;
            };
            let computer = alarm.record.computer.as_deref().unwrap_or_default();
            let Some(forwarder) = forwarders.get(computer) else {
                anyhow::bail!(
                    "alarm {} is from {computer:?}, no simulated agent",
                    alarm.id
                );
            };
            let outcome = match forwarder.publish(&alarm) {
                Ok(detail) => {
                    figures.acked.fetch_add(1, Relaxed);
                    if let Ok(at) = chrono::DateTime::parse_from_rfc3339(&alarm.recorded_at) {
                        let took = Utc::now() - at.with_timezone(&Utc);
                        figures
                            .commit_to_ack
                            .record(took.to_std().unwrap_or_default());
                    }
                    Settle::Done(detail)
                }
                Err(why) => {
                    figures.failed.fetch_add(1, Relaxed);
                    Settle::Retry(Utc::now() + chrono::Duration::seconds(1), why.to_string())
                }
            };
            store.settle_action(run.id, &outcome)?;
        }
    }
}

/// The hub, watched through its status twice a second on a thread of its own, from before the
/// first commit until it has stored everything (or never came up).
struct HubWatch {
    target: Arc<AtomicU64>,
    thread: std::thread::JoinHandle<Result<Seen>>,
}

/// What the watch saw.
#[derive(Default)]
struct Seen {
    /// Alarms the hub stored since the watch began.
    stored: u64,
    /// When its status first answered.
    first_up: Option<Instant>,
    /// When it had stored the target.
    done: Option<Instant>,
    /// The fastest ingest over one second.
    peak: f64,
    /// Its last status.
    last: Option<StatusReport>,
}

impl HubWatch {
    fn start(dir: PathBuf) -> Result<HubWatch> {
        let target = Arc::new(AtomicU64::new(u64::MAX));
        let until = target.clone();
        let hub = Hub::new(dir)?;
        // What it has before the first commit (a hub that comes up later counts from 0).
        let before = hub.status().ok().map(|s| (stored(&s), Instant::now()));
        let thread = std::thread::spawn(move || watch_hub(&hub, before, &until));
        Ok(HubWatch { target, thread })
    }

    /// Says how many alarms the hub should store, and waits for it (at most `patience`).
    fn finish(self, target: u64, patience: Duration) -> Result<Seen> {
        self.target.store(target, Relaxed);
        let deadline = Instant::now() + patience;
        while !self.thread.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        if !self.thread.is_finished() {
            // Gave up: the target can no longer be reached in time.
            self.target.store(0, Relaxed);
        }
        self.thread
            .join()
            .map_err(|_| anyhow::anyhow!("the hub's watch panicked"))?
    }
}

/// A hub, asked through its data folder (its address and token).
pub(super) struct Hub {
    client: reqwest::blocking::Client,
    dir: PathBuf,
}

impl Hub {
    pub(super) fn new(dir: PathBuf) -> Result<Hub> {
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?;
        Ok(Hub { client, dir })
    }

    fn status(&self) -> Result<StatusReport> {
        Ok(self
            .request(reqwest::Method::GET, "/api/v1/status")?
            .send()?
            .error_for_status()?
            .json()?)
    }

    /// A request to its API, with its token.
    pub(super) fn request(
        &self,
        method: reqwest::Method,
        path: &str,
    ) -> Result<reqwest::blocking::RequestBuilder> {
        // Read each time: a hub started later writes its address then.
        let address = std::fs::read_to_string(self.dir.join(crate::data_dir::ADMIN_ADDRESS))?;
        let token = crate::secret::read(&crate::agent::token::token_path(&self.dir))?;
        Ok(self
            .client
            .request(method, format!("http://{}{path}", address.trim()))
            .bearer_auth(token))
    }
}

/// Alarms a hub stored since it started.
fn stored(status: &StatusReport) -> u64 {
    status.fleet.as_ref().map(|f| f.stored).unwrap_or(0)
}

/// Watches `hub` until it has stored `target` more than `before` (what it had before the first
/// commit, and when it said so; `None` if it was not up then).
fn watch_hub(hub: &Hub, before: Option<(u64, Instant)>, target: &AtomicU64) -> Result<Seen> {
    let mut seen = Seen {
        first_up: before.map(|(_, at)| at),
        ..Default::default()
    };
    let base = before.map(|(n, _)| n).unwrap_or(0);
    let mut window: std::collections::VecDeque<(Instant, u64)> = Default::default();
    loop {
        let now = Instant::now();
        let answer = hub.status();
        if let Err(e) = &answer {
            tracing::debug!("the hub's status: {e:#}");
        }
        if let Ok(s) = answer {
            seen.first_up.get_or_insert(now);
            // A hub restarted since counts from 0 again.
            seen.stored = stored(&s).checked_sub(base).unwrap_or(stored(&s));
            window.push_back((now, seen.stored));
            while window
                .front()
                .is_some_and(|(t, _)| now.duration_since(*t) > Duration::from_secs(1))
            {
                window.pop_front();
            }
            if let Some((t0, n0)) = window.front() {
                let span = now.duration_since(*t0).as_secs_f64();
                if span >= 0.9 {
                    seen.peak = seen.peak.max((seen.stored - n0) as f64 / span);
                }
            }
            seen.last = Some(s);
        }
        let goal = target.load(Relaxed);
        if seen.stored >= goal {
            if goal > 0 {
                seen.done = Some(now);
            }
            return Ok(seen);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub(super) fn show_latency(l: Option<crate::model::report::Latency>) -> String {
    match l {
        Some(l) => format!(
            "p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms over {}",
            l.p50_ms, l.p99_ms, l.max_ms, l.count
        ),
        None => "none measured".into(),
    }
}

/// A fresh folder under the system's temporary folder.
fn tempdir() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "vigilo-simulate-{}-{}",
        std::process::id(),
        fastrand::u32(..)
    ));
    crate::owner_only::create_dir(&dir)?;
    Ok(dir)
}
