//! The running agent (`vigilo run`): sources → pipeline → store, and the admin API that manages
//! its packs, in one process.
//!
//! Threads: the pipeline ([`runner`]) owns the rules and evaluates every event; each source
//! reads on its own thread and feeds the pipeline's bounded queue; the admin API runs on a small
//! tokio runtime and changes packs through [`pack_set::PackSet`], which swaps whole rule sets into
//! the pipeline. SIGTERM or SIGINT stops the API, lets the pipeline save what must survive
//! (programs' state) and exits.

pub mod api;
pub mod config;
mod fleet;
pub mod groups;
pub mod metrics;
pub mod pack_set;
pub mod query;
pub mod runner;
pub mod serve;
pub mod stats;
pub mod token;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};

use crate::fleet::FleetSettings;
use crate::packs::TrustedKeys;
use crate::sources::browser::listener::BrowserTabs;
use crate::sources::desktop::Desktop;
use crate::sources::jsonl::JsonlFile;
use crate::sources::usb::source::UsbStorage;
use crate::sources::usb::sysfs::Sysfs;
use crate::sources::{Sink, Source};
use crate::store::Store;

/// How `vigilo run` was asked to run.
pub struct Options {
    /// The data folder.
    pub data_dir: PathBuf,
    /// Where the admin API listens.
    pub listen: SocketAddr,
    /// Recorded or streamed events to feed in (JSONL; `-` for standard input).
    pub events: Option<PathBuf>,
    /// Print stored alarms as JSON lines on stdout.
    pub json: bool,
    /// Watch the focused window of the X display (`$DISPLAY`).
    pub x11: bool,
    /// After this long without keyboard or mouse input, activity spans stop counting.
    pub idle_after: std::time::Duration,
    /// Hear from vigilo's browser extension (through `vigilo browser-host`) on
    /// `DATA_DIR/browser.sock`.
    pub browser: bool,
    /// Follow USB devices and files written to removable storage.
    pub usb: bool,
    /// Mount points to treat as removable storage besides those the kernel says are.
    pub removable: Vec<PathBuf>,
    /// How failed actions (webhooks) are retried.
    pub retry: crate::actions::worker::Retry,
    /// How long screenshots and videos are kept.
    pub retention: crate::store::Retention,
    /// The settings file (`None`: `DATA_DIR/agent.toml` if there is one).
    pub config: Option<PathBuf>,
    /// At most this many of one action an hour for one alarm and user.
    pub action_limit: Option<u32>,
    /// Packs (folders or archives) to run from the start, uploaded as `vigilo pack upload`
    /// would (audited as `vigilo run --pack`).
    pub packs: Vec<PathBuf>,
    /// The web pages served beside the API on the same listener and behind the same token
    /// (the console, a floor up, which reads what the API reads).
    pub pages: fn(api::AppState) -> axum::Router,
    /// This process's place in a fleet, over what the settings file's `[fleet]` says.
    pub fleet: FleetOptions,
    /// Move the store here before opening it (`vigilo hub --store`); `None`: where it is.
    pub store: Option<crate::store::Location>,
}

/// Where the fleet's bus is and who this process is there: from the command line, over the
/// settings file's `[fleet]`.
#[derive(Debug, Default)]
pub struct FleetOptions {
    /// The bus (`--fleet URL`).
    pub url: Option<String>,
    /// This agent's id in the fleet (`--agent-id`).
    pub agent_id: Option<String>,
    /// The file of this process's nkey seed (`--fleet-nkey`).
    pub nkey: Option<std::path::PathBuf>,
    /// Run as the fleet's hub (`vigilo hub`): take every agent's alarms into this store.
    pub hub: bool,
    /// How often an agent sends its heartbeat (default: [`crate::fleet::heartbeat::EVERY`]).
    pub heartbeat: Option<std::time::Duration>,
    /// How long a hub waits after an agent's last heartbeat before it counts it as not
    /// reporting (default: [`crate::fleet::heartbeat::QUIET_AFTER`]).
    pub quiet_after: Option<std::time::Duration>,
}

impl FleetOptions {
    /// The fleet settings in force, if this process is in a fleet.
    fn settings(&self, file: Option<FleetSettings>) -> Option<FleetSettings> {
        match (&self.url, file) {
            (Some(url), file) => Some(FleetSettings {
                url: Some(url.clone()),
                pack_source: file
                    .as_ref()
                    .map(|f| f.pack_source.clone())
                    .unwrap_or_default(),
                agent_id: self
                    .agent_id
                    .clone()
                    .or_else(|| file.as_ref().and_then(|f| f.agent_id.clone())),
                nkey: self
                    .nkey
                    .clone()
                    .or_else(|| file.as_ref().and_then(|f| f.nkey.clone())),
                credentials: file.as_ref().and_then(|f| f.credentials.clone()),
                tags: file.as_ref().map(|f| f.tags.clone()).unwrap_or_default(),
                ca: file.and_then(|f| f.ca),
            }),
            (None, Some(mut file)) => {
                if self.agent_id.is_some() {
                    file.agent_id.clone_from(&self.agent_id);
                }
                if self.nkey.is_some() {
                    file.nkey.clone_from(&self.nkey);
                }
                Some(file)
            }
            (None, None) => None,
        }
    }
}

/// A pack given with `vigilo run --pack` was refused: the agent does not start (exit 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RefusedPack(pub String);

/// Runs until SIGTERM or SIGINT.
pub fn run(options: Options) -> Result<()> {
    let Options {
        data_dir,
        listen,
        events,
        json,
        x11,
        idle_after,
        browser,
        usb,
        removable,
        retry,
        retention,
        config,
        action_limit,
        packs,
        pages,
        fleet,
        store,
    } = options;
    // The data folder first: owner-only, and this agent's alone for as long as it runs. A
    // refused agent stops here, before it touches any file of the one that runs.
    crate::data_dir::prepare(&data_dir)?;
    let _lock = crate::data_dir::lock(&data_dir)?;
    serve::raise_fd_limit();
    if let Some(location) = &store {
        Store::set_location(&data_dir, location)?;
    }
    let store = Store::open(&data_dir)?;
    tracing::info!("store: {}", store.location());
    let settings =
        config::AgentConfig::load(config.as_deref(), &data_dir).map_err(anyhow::Error::msg)?;
    let fleet_settings = fleet.settings(settings.fleet.clone());
    if fleet.hub && fleet_settings.as_ref().is_none_or(|f| f.url.is_none()) {
        anyhow::bail!("vigilo hub needs the fleet's bus: --fleet nats://HOST:4222 or [fleet] url");
    }
    let tags = match &fleet_settings {
        Some(f) => {
            f.check_tags()?;
            f.tags.clone()
        }
        None => Default::default(),
    };
    let agent_id = match fleet_settings.as_ref().and_then(|f| f.agent_id.clone()) {
        Some(id) => crate::fleet::check_agent_id(&id)?.to_string(),
        None if fleet.hub => "hub".to_string(),
        None => crate::fleet::default_agent_id(),
    };
    let token = token::load_or_create(&data_dir)?;
    let trusted = TrustedKeys::of_data_dir(&data_dir).map_err(anyhow::Error::msg)?;
    let stats = Arc::new(stats::Stats::default());
    let (pipeline, queue) = runner::Handle::channel(stats.clone());
    let mut set = pack_set::PackSet::open(
        store,
        trusted,
        data_dir.join(crate::data_dir::PLUGIN_CACHE),
        pipeline.clone(),
        crate::os::process::hostname(),
    )?;
    for path in &packs {
        let shown = path.display();
        let (bytes, signature, _) = crate::packs::Pack::upload_form(path)
            .map_err(|e| RefusedPack(format!("{e}\nerror: pack {shown} refused")))?;
        match set.upload(&bytes, signature.as_deref(), "vigilo run --pack") {
            Ok(info) => eprintln!(
                "vigilo: running pack {} {} from {shown}",
                info.name, info.version
            ),
            Err(e) => return Err(RefusedPack(format!("{e}\nerror: pack {shown} refused")).into()),
        }
    }
    let rules = set.current();
    // The runtime of the admin API, and of the fleet's client: before the worker, whose
    // forwarding lane blocks on it.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("vigilo-api")
        .enable_all()
        .build()?;
    let pack_sources = match &fleet_settings {
        Some(f) if !fleet.hub => f
            .pack_source
            .iter()
            .map(|s| s.check().map(|every| (s.clone(), every)))
            .collect::<Result<Vec<_>, _>>()?,
        _ => Vec::new(),
    };
    let bus = match &fleet_settings {
        Some(f) if f.url.is_some() => {
            let stats = stats.clone();
            let on_change: crate::fleet::OnBusChange =
                Arc::new(move |up, detail| stats.source("fleet", up, detail));
            Some(runtime.block_on(crate::fleet::connect(f, &agent_id, on_change))?)
        }
        _ => None,
    };
    let forwarder = match (&bus, fleet.hub) {
        (Some(client), false) => Some(Arc::new(crate::actions::forward::Forwarder::new(
            &agent_id,
            client.clone(),
            runtime.handle().clone(),
        ))),
        _ => None,
    };
    // The action worker: woken by the pipeline after it stores alarms (a wake-up pending is
    // enough, so the channel holds one).
    let (wake, woken) = std::sync::mpsc::sync_channel(1);
    let presence = crate::actions::presence::SharedPresence::default();
    // The screen recorder for videos: off without a desktop.
    let recorder = if x11 {
        let stats = stats.clone();
        crate::actions::recorder::Recorder::start(settings.video_fps(), move |up, what| {
            stats.source("video", up, what)
        })?
    } else {
        let why = if fleet.hub {
            "no screen recording: a hub watches no desktop"
        } else {
            "no screen recording: the agent runs without its desktop (--no-desktop)"
        };
        stats.source("video", false, why);
        crate::actions::recorder::Recorder::off(why)
    };
    let worker = crate::actions::worker::Worker {
        lanes: Default::default(),
        store: Store::open(&data_dir)?,
        signer: Arc::new(crate::actions::webhook::Signer::load_or_create(&data_dir)?),
        retry,
        data_dir: data_dir.clone(),
        retention,
        presence: presence.clone(),
        screen: None,
        mailer: match &settings.email {
            Some(email) => {
                let mailer =
                    crate::actions::email::Mailer::new(email).map_err(anyhow::Error::msg)?;
                Some(Arc::new(mailer))
            }
            None => None,
        },
        recorder: recorder.clone(),
        fleet: forwarder.clone(),
        outputs: Arc::new(settings.outputs()),
    };
    let outputs: Vec<String> = settings.output.iter().map(|o| o.name.clone()).collect();
    std::thread::Builder::new()
        .name("vigilo-actions".into())
        .spawn(move || worker.run(woken))?;
    // A fleet's agent is judged by its id (what the hub's groups and targets name); the hub and
    // an agent on its own, by the computer each event names.
    let fleet_member = fleet_settings.is_some() && !fleet.hub;
    let runner = {
        let (mut store, stats) = (Store::open(&data_dir)?, stats.clone());
        store.set_action_limit(action_limit);
        store.set_forward(forwarder.is_some());
        store.set_outputs(outputs.clone());
        let output = runner::Output {
            json,
            wake: Some(wake.clone()),
            forwards: forwarder.is_some() || !outputs.is_empty(),
            presence,
            recorder: Some(recorder.clone()),
            // No groups until the hub's are heard.
            place: Arc::new(crate::model::targets::Place {
                agent: fleet_member.then(|| agent_id.clone()),
                tags: tags.clone(),
                groups: Default::default(),
            }),
        };
        std::thread::Builder::new()
            .name("vigilo-pipeline".into())
            .spawn(move || runner::run(rules, queue, store, stats, output))?
    };
    // Every source in one shape; a new one is a file in `sources/` and a line here.
    let mut sources: Vec<Box<dyn Source>> = Vec::new();
    if let Some(path) = events {
        sources.push(Box::new(JsonlFile::new(path)));
    }
    if x11 {
        sources.push(Box::new(Desktop { idle_after }));
    }
    if usb {
        sources.push(Box::new(UsbStorage {
            sysfs: Sysfs::default(),
            removable,
            computer: crate::os::process::hostname(),
        }));
    }
    if browser {
        sources.push(Box::new(BrowserTabs {
            socket: data_dir.join(crate::data_dir::BROWSER_SOCKET),
        }));
    }
    let sink: Arc<dyn Sink> = Arc::new(pipeline.clone());
    let running = sources
        .into_iter()
        .map(|source| source.start(sink.clone()))
        .collect::<std::io::Result<Vec<_>>>()?;

    let ingest = match (&bus, fleet.hub) {
        (Some(client), true) => {
            let mut store = Store::open(&data_dir)?;
            store.set_outputs(outputs);
            Some((client.clone(), store))
        }
        _ => None,
    };
    let state = api::AppState {
        packs: Arc::new(Mutex::new(set)),
        token: Arc::new(token),
        stats: stats.clone(),
        store: Arc::new(Mutex::new(Store::open(&data_dir)?)),
        publisher: match (&bus, fleet.hub) {
            (Some(client), true) => Some(Arc::new(crate::fleet::packs::Publisher::new(
                client.clone(),
            ))),
            _ => None,
        },
        groups: match (&bus, fleet.hub) {
            (Some(client), true) => Some(Arc::new(crate::fleet::groups::GroupBook::new(
                client.clone(),
            ))),
            _ => None,
        },
    };
    let api_dir = data_dir.clone();
    let refused_stats = stats.clone();
    let to_pipeline = pipeline.clone();
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let bound = listener.local_addr()?;
        if !bound.ip().is_loopback() {
            tracing::warn!(address = %bound, "the admin API listens beyond this computer");
            eprintln!(
                "vigilo: warning: the console and the admin API listen on {bound}, beyond this \
                 computer, over plain HTTP: screenshots and the token cross the network \
                 unencrypted. Put a TLS reverse proxy in front, or listen on 127.0.0.1."
            );
        }
        if let Some((client, store)) = ingest {
            let ingest = crate::fleet::ingest::Ingest {
                store,
                wake: Some(wake),
                data_dir: api_dir.clone(),
                retention,
                stats: stats.ingest.get_or_init(Default::default).clone(),
            };
            tokio::spawn(crate::fleet::ingest::run(client.clone(), ingest));
            tokio::spawn(crate::fleet::heartbeat::watch(client, state.store.clone()));
            if let Some(publisher) = state.publisher.clone() {
                tokio::spawn(async move { publisher.prepare_when_up().await });
            }
            if let Some(groups) = state.groups.clone() {
                tokio::spawn(async move { groups.prepare_when_up().await });
            }
            let quiet_after = fleet
                .quiet_after
                .unwrap_or(crate::fleet::heartbeat::QUIET_AFTER);
            tokio::spawn(fleet::not_reporting(
                state.store.clone(),
                quiet_after,
                sink.clone(),
            ));
        } else if fleet_member {
            let member = fleet::Member::new(agent_id.clone(), tags.clone());
            for (source, every) in pack_sources {
                tokio::spawn(fleet::take_from_source(
                    source,
                    every,
                    member.clone(),
                    state.clone(),
                ));
            }
            if let Some(client) = &bus {
                let every = fleet.heartbeat.unwrap_or(crate::fleet::heartbeat::EVERY);
                tokio::spawn(fleet::take_groups(
                    client.clone(),
                    member.clone(),
                    to_pipeline,
                ));
                tokio::spawn(fleet::take_packs(
                    client.clone(),
                    member.clone(),
                    state.clone(),
                ));
                tokio::spawn(fleet::heartbeats(
                    client.clone(),
                    member,
                    every,
                    state.clone(),
                ));
            }
        }
        write_address(&api_dir, bound)?;
        tracing::info!(address = %bound, "admin API listening");
        say_what_runs(&stats, &api_dir, bound);
        // The events-per-second figure: one sample every five seconds.
        tokio::spawn(async move {
            let mut every = tokio::time::interval(std::time::Duration::from_secs(5));
            loop {
                every.tick().await;
                stats.sample(std::time::Instant::now());
            }
        });
        let app = api::router(state.clone()).merge(pages(state));
        serve::serve(listener, app, shutdown_signal(), move || {
            refused_stats.shed("admin API connections over the cap", 1)
        })
        .await;
        anyhow::Ok(())
    })?;
    pipeline.stop();
    let _ = runner.join();
    recorder.stop();
    let _ = std::fs::remove_file(data_dir.join(crate::data_dir::ADMIN_ADDRESS));
    drop(running);
    eprintln!("vigilo: stopped");
    Ok(())
}

/// Says on stderr what the agent watches and what it cannot, where its console is and where the
/// token to log in with is: what a person starting it needs to know, in a few lines.
fn say_what_runs(stats: &stats::Stats, data_dir: &Path, bound: SocketAddr) {
    let mut text = format!(
        "vigilo: running (PID {}), data in {}\n",
        std::process::id(),
        data_dir.display()
    );
    for (name, source) in stats.sources() {
        let state = if source.up { "up  " } else { "DOWN" };
        text.push_str(&format!("  {name:<8} {state}  {}\n", source.detail));
    }
    text.push_str(&format!(
        "vigilo: console http://{bound}/console/ (log in with the token in {}); admin API \
         http://{bound}/api/v1/; `vigilo status` shows how it is doing\n",
        token::token_path(data_dir).display()
    ));
    eprint!("{text}");
}

/// SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("stopping");
}

/// Tells clients (`vigilo pack upload`…) where the API is: written once listening. Owner-only:
/// the CLI sends the admin token to whatever address this file names.
fn write_address(data_dir: &Path, address: SocketAddr) -> Result<()> {
    let path = data_dir.join(crate::data_dir::ADMIN_ADDRESS);
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    crate::owner_only::create(&tmp, format!("{address}\n").as_bytes())
        .and_then(|()| std::fs::rename(&tmp, &path))
        .with_context(|| format!("cannot write {}", path.display()))
}
