//! The fleet: agents forward their alarms through a real `nats-server -js` to a real hub
//! (`vigilo hub`), which stores every agent's alarms once — through the bus killed mid-stream,
//! the hub killed mid-stream, and agents that keep working while the bus is away.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::agent::{Agent, build, counter_pack};
use crate::desktop::{Desktop, upload_pack};
use crate::nats::Nats;
use crate::{json_lines, stderr, stdout, vigilo};

/// A file written to USB on `computer`, the `n`th of its day.
fn copy_on(computer: &str, n: usize) -> String {
    format!(
        r#"{{"ts":"2026-11-03T09:{:02}:{:02}Z","kind":"usb","username":"dave","computer":"{computer}","action":"file_written","path":"/media/dave/USB/{n}.bin","bytes":{n}}}"#,
        (n / 60) % 60,
        n % 60
    )
}

/// The "Copy seen" alarms in the store of data folder `data`: (computer, path) → how many.
fn copies(data: &Path) -> BTreeMap<(String, String), usize> {
    let out = vigilo(data, &["alarms", "--all", "--json", "--alarm", "Copy seen"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mut seen = BTreeMap::new();
    for a in json_lines(&out) {
        let key = (
            a["computer"].as_str().unwrap_or("?").to_string(),
            a["event"]["path"].as_str().unwrap_or("?").to_string(),
        );
        *seen.entry(key).or_insert(0) += 1;
    }
    seen
}

/// Waits until the store of `data` holds `n` copies; the hub's and agents' logs say why when it
/// does not.
fn wait_for_copies(data: &Path, n: usize, hub: &Agent, agents: &[Agent], nats: &Nats) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let found: usize = copies(data).values().sum();
        if found >= n {
            return;
        }
        if Instant::now() > deadline {
            let logs: Vec<String> = agents.iter().map(Agent::stderr).collect();
            panic!(
                "{found} of {n} alarms at the hub; its log:\n{}\nthe agents' logs:\n{}\n\
                 the bus's log:\n{}",
                hub.stderr(),
                logs.join("\n"),
                nats.log()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// An agent in the fleet at `url` as `name`, with the counter pack.
fn fleet_agent(dir: &Path, url: &str, name: &str) -> Agent {
    fleet_agent_with(dir, url, name, name, &[])
}

/// [`fleet_agent`] in data folder `dir/folder`, with more `vigilo run` arguments.
fn fleet_agent_with(dir: &Path, url: &str, name: &str, folder: &str, extra: &[&str]) -> Agent {
    let data = dir.join(folder);
    let flags = ["--fleet", url, "--agent-id", name, "--retry-after", "1"];
    let args: Vec<&str> = flags.iter().chain(extra).copied().collect();
    let agent = Agent::start_in(&data, None, &args, &[("RUST_LOG", "vigilo=info")]);
    let pack = counter_pack(&dir.join(format!("{folder}-pack")), "1.0.0", 4, "");
    let out = agent.cli(&["pack", "upload", build(&data, &pack).to_str().expect("p")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    agent
}

/// The agents of the delivery tests.
const THREE: [&str; 3] = ["ws-ann", "ws-bob", "ws-cat"];

/// The [`THREE`] agents, in the fleet at `url`.
fn three_agents(dir: &Path, url: &str) -> Vec<Agent> {
    THREE.iter().map(|n| fleet_agent(dir, url, n)).collect()
}

/// Each of the [`THREE`] agents writes its files `from..to` to USB.
fn send_copies(agents: &mut [Agent], from: usize, to: usize) {
    for (agent, name) in agents.iter_mut().zip(THREE) {
        let lines: Vec<String> = (from..to).map(|n| copy_on(name, n)).collect();
        agent.send(&lines);
    }
}

#[test]
fn every_alarm_of_every_agent_reaches_the_hub_once_through_a_killed_bus_and_a_killed_hub() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut nats = Nats::start(&dir.path().join("nats"));
    let hub_data = dir.path().join("hub");
    let hub = Agent::start_hub(&hub_data, &nats.url());
    let names = THREE;
    let mut agents = three_agents(dir.path(), &nats.url());
    let send = send_copies;

    send(&mut agents, 0, 10);
    wait_for_copies(&hub_data, 30, &hub, &agents, &nats);

    // The bus killed mid-stream: the agents go on alone, keeping what they cannot forward.
    nats.kill();
    send(&mut agents, 10, 20);
    for (agent, name) in agents.iter().zip(names) {
        let data = dir.path().join(name);
        let deadline = Instant::now() + Duration::from_secs(60);
        while copies(&data).len() < 20 {
            assert!(
                Instant::now() < deadline,
                "{name} stopped working without the bus"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(
            agent.status()["outbox"]["pending"].as_u64() >= Some(1),
            "{name} keeps its alarms for the hub: {}",
            agent.status()
        );
    }
    nats.restart();
    wait_for_copies(&hub_data, 60, &hub, &agents, &nats);

    // The hub killed mid-stream, and started again: it resumes from its consumer.
    hub.kill();
    send(&mut agents, 20, 30);
    let hub = Agent::start_hub(&hub_data, &nats.url());
    wait_for_copies(&hub_data, 90, &hub, &agents, &nats);

    // Nothing more comes: every alarm of every agent, once.
    std::thread::sleep(Duration::from_millis(1500));
    let at_hub = copies(&hub_data);
    assert_eq!(at_hub.len(), 90, "{at_hub:?}");
    assert!(at_hub.values().all(|&n| n == 1), "twice: {at_hub:?}");
    for name in names {
        let theirs = at_hub.keys().filter(|(c, _)| c == name).count();
        assert_eq!(theirs, 30, "{name}'s alarms at the hub");
    }
    // The hub shows where each came from, and keeps one computer's alarms apart.
    let table = vigilo(
        &hub_data,
        &[
            "alarms",
            "--all",
            "--computer",
            "ws-bob",
            "--alarm",
            "Copy seen",
        ],
    );
    let text = stdout(&table);
    assert!(
        text.starts_with("TIME (UTC)            USER        COMPUTER"),
        "{text}"
    );
    assert_eq!(
        text.lines().filter(|l| l.contains(" ws-bob ")).count(),
        30,
        "{text}"
    );
    let page = hub.get("/api/v1/alarms?computer=ws-ann&alarm=Copy+seen&limit=1000");
    let listed = page["alarms"].as_array().expect("alarms");
    assert_eq!(listed.len(), 30, "{page}");
    assert!(
        listed
            .iter()
            .all(|a| a["computer"] == "ws-ann" && a["origin"] == "fleet:ws-ann")
    );
    for agent in agents {
        let status = agent.status();
        assert_eq!(status["outbox"]["pending"], 0, "all forwarded: {status}");
        agent.stop();
    }
    hub.stop();
}

#[test]
fn hubs_sharing_one_postgresql_store_share_the_work_and_one_killed_loses_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pg = crate::postgres::Postgres::start(&dir.path().join("pg"));
    let nats = Nats::start(&dir.path().join("nats"));
    let store = ["--store", pg.url()];
    let (a_data, b_data) = (dir.path().join("hub-a"), dir.path().join("hub-b"));
    let hub_a = Agent::start_hub_with(&a_data, &nats.url(), &store);
    let hub_b = Agent::start_hub_with(&b_data, &nats.url(), &store);
    let mut agents = three_agents(dir.path(), &nats.url());
    let send = send_copies;

    send(&mut agents, 0, 10);
    wait_for_copies(&a_data, 30, &hub_a, &agents, &nats);
    // One hub killed mid-stream: the other goes on with the same consumer and the same store.
    hub_a.kill();
    send(&mut agents, 10, 20);
    wait_for_copies(&b_data, 60, &hub_b, &agents, &nats);
    let seen = copies(&b_data);
    assert_eq!(seen.len(), 60, "every alarm of every agent: {seen:?}");
    assert!(
        seen.values().all(|&n| n == 1),
        "none twice between two hubs: {seen:?}\n{}",
        pg.log()
    );
    assert_eq!(
        copies(&a_data),
        seen,
        "one store, read from either hub's folder"
    );
    assert!(
        !a_data.join("vigilo.db").exists() && !b_data.join("vigilo.db").exists(),
        "no SQLite file beside a PostgreSQL store"
    );
    let status = hub_b.status();
    assert!(
        status["fleet"]["stored"].as_u64() >= Some(1),
        "the hub left alive took over: {status}"
    );
    for agent in agents {
        agent.stop();
    }
    hub_b.stop();
}

/// Waits until the hub's `GET /api/v1/agents` satisfies `done`; says what it last saw if not.
fn wait_for_agents(
    hub: &Agent,
    what: &str,
    done: impl Fn(&[serde_json::Value]) -> bool,
) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let answer = hub.get("/api/v1/agents");
        let agents = answer["agents"].as_array().cloned().unwrap_or_default();
        if done(&agents) {
            return agents;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: {answer}\n{}",
            hub.stderr()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn agents_report_their_health_and_one_gone_silent_is_not_reporting_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let nats = Nats::start(&dir.path().join("nats"));
    let hub_data = dir.path().join("hub");
    let hub = Agent::start_hub_with(&hub_data, &nats.url(), &["--not-reporting-after", "2"]);
    let start = |name: &str| {
        Agent::start_with(
            &dir.path().join(name),
            None,
            &[
                "--fleet",
                &nats.url(),
                "--agent-id",
                name,
                "--heartbeat",
                "1",
            ],
        )
    };
    let (ann, bob) = (start("ws-ann"), start("ws-bob"));

    // Heartbeats say how each agent is doing, the bus included (up once it is connected).
    let agents = wait_for_agents(&hub, "both agents heard from", |a| {
        a.len() == 2
            && a.iter().all(|a| {
                a["reporting"] == true && a["heartbeat"]["status"]["sources"]["fleet"]["up"] == true
            })
    });
    let names: Vec<&str> = agents.iter().filter_map(|a| a["agent"].as_str()).collect();
    assert_eq!(names, ["ws-ann", "ws-bob"]);
    for a in &agents {
        let beat = &a["heartbeat"];
        assert_eq!(beat["agent"], a["agent"]);
        assert_eq!(beat["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(beat["os"], std::env::consts::OS);
        assert!(
            beat["packs"]
                .as_array()
                .is_some_and(|p| p.iter().any(|p| p[0] == "standard")),
            "{beat}"
        );
    }

    // One stops: after the hub's wait it is not reporting, first on the list, alarmed once.
    bob.stop();
    let agents = wait_for_agents(&hub, "ws-bob not reporting", |a| {
        a.first()
            .is_some_and(|a| a["agent"] == "ws-bob" && a["reporting"] == false)
    });
    assert_eq!(agents[1]["reporting"], true, "ws-ann still reports");
    let alarmed = || {
        let out = vigilo(
            &hub_data,
            &[
                "alarms",
                "--all",
                "--json",
                "--alarm",
                "Computer not reporting",
            ],
        );
        json_lines(&out)
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while alarmed().is_empty() {
        assert!(Instant::now() < deadline, "no alarm: {}", hub.stderr());
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(3));
    let alarms = alarmed();
    assert_eq!(alarms.len(), 1, "once, not at every check: {alarms:?}");
    assert_eq!(alarms[0]["computer"], "ws-bob");
    assert_eq!(alarms[0]["event"]["event_name"], "agent_not_reporting");
    assert!(
        alarms[0]["event"]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("last heard from at")),
        "{}",
        alarms[0]
    );

    // Back again: reporting, and no second alarm for the first silence.
    let bob = start("ws-bob");
    wait_for_agents(&hub, "ws-bob reporting again", |a| {
        a.iter().all(|a| a["reporting"] == true) && a.len() == 2
    });
    assert_eq!(alarmed().len(), 1);
    bob.stop();
    ann.stop();
    hub.stop();
}

/// The bus's settings in `DIR/nats`: the keys `vigilo fleet credentials` made in `DIR/keys`
/// (an include is relative to the file it is in).
pub(crate) const AUTH_CONF: &str = "include \"../keys/auth.conf\"\n";

/// `vigilo fleet credentials` for `agents` (and the hub) in `dir/keys`; returns that folder.
pub(crate) fn credentials(dir: &Path, agents: &[&str]) -> std::path::PathBuf {
    let keys = dir.join("keys");
    let mut args = vec!["fleet", "credentials", "--out", keys.to_str().expect("p")];
    for a in agents {
        args.extend(["--agent", a]);
    }
    let made = vigilo(&dir.join("unused"), &args);
    assert_eq!(made.status.code(), Some(0), "{}", stderr(&made));
    keys
}

/// One alarm's captures as its API lists them: (kind, bytes of the file).
fn captures_of(agent: &Agent, alarm: &serde_json::Value) -> Vec<(String, Vec<u8>)> {
    let one = agent.get(&format!("/api/v1/alarms/{}", alarm["id"]));
    let listed = one["captures"].as_array().cloned().unwrap_or_default();
    listed
        .iter()
        .map(|c| {
            let url = c["url"].as_str().expect("a capture's url");
            (
                c["kind"].as_str().unwrap_or("?").to_string(),
                agent.get_bytes(url),
            )
        })
        .collect()
}

/// The alarms named `name` that `agent`'s API lists (with `filter`).
fn listed(agent: &Agent, name: &str, filter: &str) -> Vec<serde_json::Value> {
    let page = agent.get(&format!("/api/v1/alarms?alarm={name}{filter}"));
    page["alarms"].as_array().cloned().unwrap_or_default()
}

/// An agent on `desktop` in the fleet at `url` as `name` (more `vigilo run` arguments:
/// `extra`), whose "Copy captured" alarm takes `actions` (screenshots, videos) on each file
/// written to USB.
fn capturing_agent(
    dir: &Path,
    desktop: &Desktop,
    url: &str,
    name: &str,
    extra: &[&str],
    actions: &str,
) -> Agent {
    let data = dir.join(name);
    let flags = ["--fleet", url, "--agent-id", name, "--retry-after", "1"];
    let args: Vec<&str> = flags.iter().chain(extra).copied().collect();
    let agent = Agent::start_in(
        &data,
        Some(&desktop.display),
        &args,
        &[("RUST_LOG", "vigilo=info")],
    );
    let grants: Vec<&str> = ["screenshot", "video"]
        .into_iter()
        .filter(|a| actions.contains(&format!("{a} =")))
        .collect();
    upload_pack(
        &agent,
        &data,
        "shots",
        &format!(
            r#"[grants]
actions = {grants:?}

[[alarm]]
name = "Copy captured"
conditions = [ {{ field = "action", op = "eq", value = "file_written" }} ]
risk = 4
actions = [ {actions} ]
"#
        ),
    );
    agent
}

#[test]
fn screenshots_and_videos_travel_with_their_alarms_to_the_hub() {
    let mut desktop = Desktop::start();
    // Something on the screen for the screenshots to show.
    desktop.window("vigilo-e2e-fleet");
    let dir = tempfile::tempdir().expect("tempdir");
    // Under per-computer keys: what an agent may do on the bus is enough to send captures.
    let names = ["ws-dee", "ws-eve"];
    let keys = credentials(dir.path(), &names);
    let key = |name: &str| {
        keys.join(format!("{name}.nk"))
            .to_str()
            .expect("p")
            .to_string()
    };
    let nats = Nats::start_with_config(&dir.path().join("nats"), AUTH_CONF);
    let hub_data = dir.path().join("hub");
    let hub = Agent::start_hub_with(&hub_data, &nats.url(), &["--fleet-nkey", &key("hub")]);
    let mut agents: Vec<Agent> = names
        .iter()
        .map(|name| {
            let own = key(name);
            let actions = "{ screenshot = {} }, { video = { before = \"1s\", after = \"1s\" } }";
            capturing_agent(
                dir.path(),
                &desktop,
                &nats.url(),
                name,
                &["--fleet-nkey", &own],
                actions,
            )
        })
        .collect();
    // Now, so the video has frames from around it.
    let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ");
    for (agent, name) in agents.iter_mut().zip(names) {
        agent.send(&[format!(
            r#"{{"ts":"{now}","kind":"usb","username":"dee","computer":"{name}","action":"file_written","path":"/media/dee/USB/plan.pdf","bytes":5}}"#
        )]);
    }

    let deadline = Instant::now() + Duration::from_secs(90);
    for (agent, name) in agents.iter().zip(names) {
        let filter = format!("&computer={name}");
        let at_hub = loop {
            let found = listed(&hub, "Copy+captured", &filter);
            if let Some(alarm) = found.first()
                && captures_of(&hub, alarm).len() == 2
            {
                assert_eq!(found.len(), 1, "{found:?}");
                break alarm.clone();
            }
            assert!(
                Instant::now() < deadline,
                "{name}'s captures at the hub: {found:?}\nthe hub:\n{}\nthe agent:\n{}",
                hub.stderr(),
                agent.stderr()
            );
            std::thread::sleep(Duration::from_millis(200));
        };
        let theirs = listed(agent, "Copy+captured", "");
        assert_eq!(theirs.len(), 1, "{theirs:?}");
        let (sent, kept) = (captures_of(agent, &theirs[0]), captures_of(&hub, &at_hub));
        let kinds: Vec<&str> = kept.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(kinds, ["screenshot", "video"], "{name}");
        assert!(kept[0].1.starts_with(b"\x89PNG"), "a PNG");
        assert!(
            kept[1].1.len() > 1000,
            "a real clip: {} bytes",
            kept[1].1.len()
        );
        assert!(
            sent == kept,
            "{name}: the hub keeps the very files the agent took"
        );
    }
    // The hub's console in a real Chromium: both computers' alarms, one with its screenshot and
    // video loaded full size, and the Agents page.
    let dee = listed(&hub, "Copy+captured", "&computer=ws-dee")[0]["id"].clone();
    let driver = crate::console::Driver::start();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        use crate::console::{browser, capture_widths, log_in, shot_of, text_of};
        let c = browser(&driver).await;
        log_in(&c, &hub.url, &hub.token).await;
        let table = text_of(&c, "#alarms").await;
        // (Headers are shown in capitals.)
        for want in ["COMPUTER", "ws-dee", "ws-eve", "Copy captured"] {
            assert!(table.contains(want), "{want}: {table}");
        }
        shot_of(&c, "fleet", "01-hub-alarms").await;
        c.goto(&format!("{}/console/alarms/{dee}", hub.url))
            .await
            .expect("goto");
        let widths = capture_widths(&c).await;
        assert_eq!(
            widths,
            serde_json::json!([1280, 1280]),
            "screenshot and video at the hub"
        );
        let actions = text_of(&c, "#actions").await;
        assert!(actions.contains("performed by ws-dee"), "{actions}");
        shot_of(&c, "fleet", "02-hub-alarm").await;
        c.goto(&format!("{}/console/agents", hub.url))
            .await
            .expect("goto");
        let agents = text_of(&c, "#agents").await;
        assert!(
            agents.contains("ws-dee") && agents.contains("ws-eve"),
            "{agents}"
        );
        shot_of(&c, "fleet", "03-hub-agents").await;
        c.close().await.expect("close");
    });
    // The hub's copies are as private as the agent's (the standard pack's USB alarm took a
    // screenshot too).
    let mut kept = 0;
    for entry in std::fs::read_dir(hub_data.join("captures")).expect("the hub's captures") {
        let mode = entry
            .expect("entry")
            .metadata()
            .expect("meta")
            .permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o600
        );
        kept += 1;
    }
    assert_eq!(kept, 6, "three captures of each agent");
    // Taken, each is deleted from the bucket: what stays is one small marker per object.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (messages, bytes) =
            nats.stream_state("OBJ_vigilo_captures", Some(Path::new(&key("hub"))));
        if messages == kept && bytes < 4096 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the bucket keeps {messages} messages, {bytes} bytes, for {kept} captures"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    for agent in agents {
        let status = agent.status();
        assert_eq!(status["outbox"]["pending"], 0, "all forwarded: {status}");
        agent.stop();
    }
    hub.stop();
}

#[test]
fn a_hub_reaches_postgresql_over_tls_only_under_the_servers_ca() {
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = dir.path().join("certs");
    crate::certs::certificates(&certs);
    let pg = crate::postgres::Postgres::start_with(&dir.path().join("pg"), Some(&certs));
    let nats = Nats::start(&dir.path().join("nats"));
    let under = |ca: &Path| {
        format!(
            "{}?sslmode=verify-full&sslrootcert={}",
            pg.url(),
            ca.display()
        )
    };
    // Another authority's CA: the server is not believed, the hub does not start.
    let stranger = dir.path().join("stranger");
    crate::certs::certificates(&stranger);
    let refused = vigilo(
        &dir.path().join("hub-x"),
        &[
            "hub",
            "--fleet",
            &nats.url(),
            "--store",
            &under(&stranger.join("ca.pem")),
        ],
    );
    assert!(!refused.status.success(), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("invalid peer certificate"),
        "{}",
        stderr(&refused)
    );
    // Its own CA: the hub keeps what agents send in the database, over TLS.
    let hub_data = dir.path().join("hub");
    let hub = Agent::start_hub_with(
        &hub_data,
        &nats.url(),
        &["--store", &under(&certs.join("ca.pem"))],
    );
    let mut agent = fleet_agent(dir.path(), &nats.url(), "ws-gus");
    agent.send(&[copy_on("ws-gus", 1), copy_on("ws-gus", 2)]);
    wait_for_copies(&hub_data, 2, &hub, &[], &nats);
    let tls_sessions = std::process::Command::new("psql")
        .arg(pg.url())
        .args(["-Atc", "SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) WHERE ssl AND application_name = 'vigilo'"])
        .output()
        .expect("psql");
    let n: u32 = String::from_utf8_lossy(&tls_sessions.stdout)
        .trim()
        .parse()
        .unwrap_or(0);
    assert!(n >= 1, "the hub's connections are TLS: {}", pg.log());
    agent.stop();
    hub.stop();
}

#[test]
fn captures_at_hubs_sharing_postgresql_are_in_the_store_and_every_hub_serves_them() {
    let mut desktop = Desktop::start();
    desktop.window("vigilo-e2e-fleet-pg");
    let dir = tempfile::tempdir().expect("tempdir");
    let pg = crate::postgres::Postgres::start(&dir.path().join("pg"));
    let nats = Nats::start(&dir.path().join("nats"));
    let store = ["--store", pg.url()];
    let (a_data, b_data) = (dir.path().join("hub-a"), dir.path().join("hub-b"));
    let hub_a = Agent::start_hub_with(&a_data, &nats.url(), &store);
    let hub_b = Agent::start_hub_with(&b_data, &nats.url(), &store);
    let mut agent = capturing_agent(
        dir.path(),
        &desktop,
        &nats.url(),
        "ws-fay",
        &[],
        "{ screenshot = {} }",
    );
    agent.send(&[copy_on("ws-fay", 1)]);
    let deadline = Instant::now() + Duration::from_secs(90);
    let at_hub = loop {
        let found = listed(&hub_a, "Copy+captured", "");
        if let Some(alarm) = found.first()
            && captures_of(&hub_a, alarm).len() == 1
        {
            break alarm.clone();
        }
        assert!(
            Instant::now() < deadline,
            "the capture at the hubs: {found:?}\nhub a:\n{}\nhub b:\n{}\nthe agent:\n{}",
            hub_a.stderr(),
            hub_b.stderr(),
            agent.stderr()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let theirs = listed(&agent, "Copy+captured", "");
    let sent = captures_of(&agent, &theirs[0]);
    assert!(sent[0].1.starts_with(b"\x89PNG"), "a PNG");
    // Whichever hub fetched it, both serve it: it is in the store, not in a hub's folder.
    assert_eq!(
        captures_of(&hub_a, &at_hub),
        sent,
        "hub a serves the agent's file"
    );
    assert_eq!(
        captures_of(&hub_b, &at_hub),
        sent,
        "hub b serves the agent's file"
    );
    for hub in [&a_data, &b_data] {
        let files = std::fs::read_dir(hub.join("captures")).map_or(0, |d| d.count());
        assert_eq!(files, 0, "no capture file in {}", hub.display());
    }
    agent.stop();
    hub_a.stop();
    hub_b.stop();
}

#[test]
fn an_agents_key_lets_it_publish_only_as_itself() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = credentials(dir.path(), &["ws-ann", "ws-bob"]);
    let made = vigilo(
        &dir.path().join("unused"),
        &["fleet", "credentials", "--out", keys.to_str().expect("p")],
    );
    // Run again with no new computer: every key kept, listed.
    let table = stdout(&made);
    assert!(!table.contains(" new"), "{table}");
    assert!(
        table.starts_with("NAME    ROLE   KEY FILE   PUBLIC KEY"),
        "{table}"
    );
    assert!(table.contains("\nws-ann  agent  ws-ann.nk  U"), "{table}");
    let public_key = |table: &str, name: &str| -> String {
        let line = table
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .expect(name);
        line.split_whitespace().nth(3).expect("a key").to_string()
    };
    // Adding a computer later keeps the keys already handed out.
    let table2 = stdout(&vigilo(
        &dir.path().join("unused"),
        &[
            "fleet",
            "credentials",
            "--out",
            keys.to_str().expect("p"),
            "--agent",
            "ws-cat",
        ],
    ));
    assert_eq!(public_key(&table, "ws-ann"), public_key(&table2, "ws-ann"));
    assert!(
        table2.contains("kept") && table2.contains("new"),
        "{table2}"
    );
    for name in ["hub", "ws-ann", "ws-bob", "ws-cat"] {
        let mode = std::fs::metadata(keys.join(format!("{name}.nk")))
            .expect("key")
            .permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o600,
            "{name}"
        );
    }

    let nats = Nats::start_with_config(&dir.path().join("nats"), AUTH_CONF);
    let url = nats.url();
    let key = |name: &str| {
        keys.join(format!("{name}.nk"))
            .to_str()
            .expect("p")
            .to_string()
    };
    let hub_data = dir.path().join("hub");
    let hub = Agent::start_hub_with(&hub_data, &url, &["--fleet-nkey", &key("hub")]);
    // Ann's key, stolen, on a computer that says it is ws-bob.
    let (ann_key, bob_key) = (key("ws-ann"), key("ws-bob"));
    let mut impostor = fleet_agent_with(
        dir.path(),
        &url,
        "ws-bob",
        "impostor",
        &["--fleet-nkey", &ann_key],
    );
    impostor.send(&(100..110).map(|n| copy_on("ws-bob", n)).collect::<Vec<_>>());
    // No key at all.
    let mut keyless = fleet_agent_with(dir.path(), &url, "ws-cat", "ws-cat", &[]);
    keyless.send(&(200..210).map(|n| copy_on("ws-cat", n)).collect::<Vec<_>>());

    let mut ann = fleet_agent_with(
        dir.path(),
        &url,
        "ws-ann",
        "ws-ann",
        &["--fleet-nkey", &ann_key],
    );
    let mut bob = fleet_agent_with(
        dir.path(),
        &url,
        "ws-bob",
        "ws-bob",
        &["--fleet-nkey", &bob_key],
    );
    ann.send(&(0..10).map(|n| copy_on("ws-ann", n)).collect::<Vec<_>>());
    bob.send(&(0..10).map(|n| copy_on("ws-bob", n)).collect::<Vec<_>>());
    let agents = [ann, bob];
    wait_for_copies(&hub_data, 20, &hub, &agents, &nats);
    // The impostor's and the keyless agent's alarms were made first; the real agents' came
    // through since. None of theirs did.
    std::thread::sleep(Duration::from_secs(2));
    let at_hub = copies(&hub_data);
    assert_eq!(at_hub.len(), 20, "only ann's and bob's own: {at_hub:?}");
    assert!(
        at_hub.keys().all(|(_, path)| {
            let n: usize = path
                .trim_start_matches("/media/dave/USB/")
                .trim_end_matches(".bin")
                .parse()
                .unwrap_or(999);
            n < 10
        }),
        "{at_hub:?}"
    );
    let impostor_log = impostor.stderr();
    assert!(
        impostor_log.contains("Permissions Violation for Publish to \"vigilo.alarms.ws-bob\""),
        "the impostor is told why: {impostor_log}"
    );
    assert!(impostor.status()["outbox"]["pending"].as_u64() >= Some(10));
    let keyless_status = keyless.status();
    let fleet = &keyless_status["sources"]["fleet"];
    assert_eq!(fleet["up"], false, "{keyless_status}");
    assert!(
        keyless.stderr().contains("uthorization"),
        "{}",
        keyless.stderr()
    );
    // The real agents' heartbeats arrive; the impostor's does not count as bob's.
    let listed = wait_for_agents(&hub, "ann and bob report", |a| a.len() >= 2);
    let names: Vec<&str> = listed.iter().filter_map(|a| a["agent"].as_str()).collect();
    assert_eq!(names.len(), 2, "{listed:?}");
    // The hub's status counts what it took, and how long each took from commit to commit.
    let status = hub.status();
    assert!(status["fleet"]["stored"].as_u64() >= Some(20), "{status}");
    assert_eq!(status["fleet"]["refused"], 0, "{status}");
    let lag = &status["fleet"]["lag"];
    assert!(
        lag["p99_ms"].as_f64().is_some() && lag["count"].as_u64() >= Some(20),
        "{status}"
    );
    let _ = (impostor, keyless);
    hub.stop();
}

#[test]
fn a_simulated_fleet_reaches_the_hub_whole_and_says_how_fast() {
    let dir = tempfile::tempdir().expect("tempdir");
    let nats = Nats::start(&dir.path().join("nats"));
    let hub_data = dir.path().join("hub");
    let hub = Agent::start_hub(&hub_data, &nats.url());
    let out = vigilo(
        &dir.path().join("unused"),
        &[
            "fleet",
            "simulate",
            "--fleet",
            &nats.url(),
            "--agents",
            "40",
            "--shards",
            "4",
            "--hub-data",
            hub_data.to_str().expect("p"),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("agents     40 of 40 connected"), "{text}");
    assert!(
        text.contains("agents     40 of 40 first heartbeats put"),
        "{text}"
    );
    // "agents     N alarms committed and acknowledged …", then "hub        N of N stored …"
    let acked: usize = text
        .lines()
        .find(|l| l.contains("alarms committed and acknowledged"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .expect("how many were forwarded");
    assert!(acked >= 40, "each agent's day fires something: {text}");
    assert!(
        text.contains(&format!("hub        {acked} of {acked} stored")),
        "{text}"
    );
    assert!(
        text.contains("commit to commit, since it started: p50"),
        "{text}"
    );
    // At the hub, every alarm once, from the forty computers.
    let listed = vigilo(&hub_data, &["alarms", "--all", "--json"]);
    let alarms: Vec<serde_json::Value> = json_lines(&listed)
        .into_iter()
        .filter(|a| {
            a["origin"]
                .as_str()
                .is_some_and(|o| o.starts_with("fleet:sim-"))
        })
        .collect();
    assert_eq!(alarms.len(), acked, "{text}");
    let computers: std::collections::BTreeSet<&str> = alarms
        .iter()
        .filter_map(|a| a["computer"].as_str())
        .collect();
    assert_eq!(computers.len(), 40);
    // And each simulated agent's heartbeat: forty on the Agents page.
    wait_for_agents(&hub, "forty simulated agents", |a| a.len() == 40);
    hub.stop();
}

/// `n` activity events of dave on `computer`, now (a heartbeat carries the last 48 hours).
fn daves_work(computer: &str, n: usize) -> Vec<String> {
    let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ");
    (0..n)
        .map(|i| {
            format!(
                r#"{{"ts":"{now}","kind":"activity","username":"dave","computer":"{computer}","executable":"/usr/bin/xterm","title":"ticket {i}"}}"#
            )
        })
        .collect()
}

/// Dave's row of `vigilo risk --json` in data folder `data`, if he has one.
fn daves_risk(data: &Path) -> Option<serde_json::Value> {
    let out = vigilo(data, &["risk", "--json"]);
    json_lines(&out).into_iter().find(|r| r["user"] == "dave")
}

#[test]
fn the_hub_ranks_a_person_over_every_computer_they_use() {
    let dir = tempfile::tempdir().expect("tempdir");
    let nats = Nats::start(&dir.path().join("nats"));
    let hub_data = dir.path().join("hub");
    let hub = Agent::start_hub(&hub_data, &nats.url());
    let beat = ["--heartbeat", "1"];
    let mut ann = fleet_agent_with(dir.path(), &nats.url(), "ws-ann", "ws-ann", &beat);
    let mut bob = fleet_agent_with(dir.path(), &nats.url(), "ws-bob", "ws-bob", &beat);
    // Dave works on both computers and copies a file to USB on each.
    let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ");
    let copy = |computer: &str| {
        format!(
            r#"{{"ts":"{now}","kind":"usb","username":"dave","computer":"{computer}","action":"file_written","path":"/media/dave/USB/{computer}.bin","bytes":1}}"#
        )
    };
    let mut on_ann = daves_work("ws-ann", 90);
    on_ann.push(copy("ws-ann"));
    let mut on_bob = daves_work("ws-bob", 60);
    on_bob.push(copy("ws-bob"));
    ann.send(&on_ann);
    bob.send(&on_bob);
    // Each agent knows its own share; the hub, once their heartbeats carry it, the whole.
    let deadline = Instant::now() + Duration::from_secs(150);
    let at_hub = loop {
        let (a, b, h) = (
            daves_risk(&dir.path().join("ws-ann")),
            daves_risk(&dir.path().join("ws-bob")),
            daves_risk(&hub_data),
        );
        if let (Some(a), Some(b), Some(h)) = (&a, &b, &h)
            && a["records"] == 90
            && b["records"] == 60
            && h["records"] == 150
            && h["alarms"] == a["alarms"].as_u64().unwrap_or(0) + b["alarms"].as_u64().unwrap_or(0)
        {
            break h.clone();
        }
        assert!(
            Instant::now() < deadline,
            "dave at ws-ann {a:?}, at ws-bob {b:?}, at the hub {h:?}\n{}",
            hub.stderr()
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    // The same formula over the whole: 100 × points / records.
    let points = at_hub["points"].as_u64().expect("points");
    assert!(points >= 8, "both computers' copies: {at_hub}");
    let expected = (1000.0 * points as f64 / 150.0).round() / 10.0;
    assert_eq!(at_hub["score"].as_f64(), Some(expected), "{at_hub}");
    // Heartbeats going on do not count a computer's records twice.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(daves_risk(&hub_data).expect("dave")["records"], 150);
    ann.stop();
    bob.stop();
    hub.stop();
}

#[test]
fn hostile_messages_on_the_bus_are_refused_with_their_reason_and_the_hub_goes_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let nats = Nats::start(&dir.path().join("nats"));
    let hub_data = dir.path().join("hub");
    let hub = Agent::start_hub(&hub_data, &nats.url());
    // The hub makes its stream; then a client with no agent's key publishes into it.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !hub.stderr().contains("taking alarms") {
        assert!(Instant::now() < deadline, "{}", hub.stderr());
        std::thread::sleep(Duration::from_millis(50));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let sha = "ab".repeat(32);
    let hostile: Vec<(&str, String)> = vec![
        ("vigilo.alarms.ws-x", "{not json".into()),
        (
            "vigilo.alarms.ws-x",
            r#"{"form":99,"agent":"ws-x","id":1}"#.into(),
        ),
        (
            "vigilo.captures.ws-x",
            format!(
                r#"{{"form":1,"agent":"ws-x","alarm":1,"capture":1,"kind":"screenshot","file":"../../admin-token","object":"ws-x/1-{}","bytes":1,"sha256":"{sha}","taken_at":"2026-12-01T00:00:00.000Z"}}"#,
                &sha[..16]
            ),
        ),
    ];
    runtime.block_on(async {
        let client = async_nats::connect(nats.url()).await.expect("connect");
        let js = async_nats::jetstream::new(client);
        for (subject, payload) in &hostile {
            js.publish(subject.to_string(), payload.clone().into())
                .await
                .expect("publish")
                .await
                .expect("stored by the stream");
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = hub.status();
        if status["fleet"]["refused"] == 3 {
            assert_eq!(status["fleet"]["stored"], 0, "{status}");
            break;
        }
        assert!(Instant::now() < deadline, "{status}\n{}", hub.stderr());
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = hub.stderr();
    for why in [
        "not a forwarded alarm",
        "form 99, this hub reads form 1: upgrade the hub",
        "not a capture of its agent",
    ] {
        assert!(log.contains(why), "{why}: {log}");
    }
    assert!(
        !hub_data
            .join("admin-token")
            .with_file_name("captures")
            .exists()
            || std::fs::read_dir(hub_data.join("captures"))
                .map(|d| d.count())
                .unwrap_or(0)
                == 0
    );
    // And it goes on: a real agent's alarms arrive.
    let mut ann = fleet_agent(dir.path(), &nats.url(), "ws-ann");
    ann.send(&(0..5).map(|n| copy_on("ws-ann", n)).collect::<Vec<_>>());
    wait_for_copies(&hub_data, 5, &hub, std::slice::from_ref(&ann), &nats);
    ann.stop();
    hub.stop();
}
