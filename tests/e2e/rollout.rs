//! Packs published once to the fleet: a real `nats-server -js` under per-computer keys, a real
//! hub, three agents with their own tags and trusted keys. The hub publishes; each agent
//! verifies with its own keys, checks the pack's targets, runs it or says why not.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::agent::{Agent, build};
use crate::nats::Nats;
use crate::{stderr, stdout, vigilo};

/// The agents, and their departments (their `[fleet] tags`).
const AGENTS: [(&str, &str); 3] = [
    ("ws-ann", "finance"),
    ("ws-bob", "finance"),
    ("ws-cat", "sales"),
];

/// A file written to USB on `computer`, the `n`th of its day.
fn copy_on(computer: &str, n: usize) -> String {
    format!(
        r#"{{"ts":"2026-11-04T10:{:02}:{:02}Z","kind":"usb","username":"dave","computer":"{computer}","action":"file_written","path":"/media/dave/USB/{n}.bin","bytes":{n}}}"#,
        (n / 60) % 60,
        n % 60
    )
}

/// The "Finance copy" alarms an agent's API lists: path → risk, and how many in all.
fn finance_copies(agent: &Agent) -> (std::collections::BTreeMap<String, i64>, usize) {
    let mut seen = std::collections::BTreeMap::new();
    let mut all = 0;
    let mut after = String::new();
    loop {
        let page = agent.get(&format!(
            "/api/v1/alarms?alarm=Finance%20copy&limit=500{after}"
        ));
        for a in page["alarms"].as_array().into_iter().flatten() {
            all += 1;
            seen.insert(
                a["event"]["path"].as_str().unwrap_or("?").to_string(),
                a["risk"].as_i64().unwrap_or(0),
            );
        }
        match page["next"].as_i64() {
            Some(next) => after = format!("&after={next}"),
            None => return (seen, all),
        }
    }
}

/// The "dlp" pack at `version` for the finance department, its alarm at `risk`; built and
/// signed with `key`. Returns the archive.
fn dlp(dir: &Path, version: &str, risk: u8, key: &Path) -> PathBuf {
    let pack = dir.join(format!("dlp-{version}"));
    std::fs::create_dir_all(&pack).expect("mkdir");
    std::fs::write(
        pack.join("pack.toml"),
        format!(
            r#"[pack]
name = "dlp"
version = "{version}"

[targets]
tags = {{ department = "finance" }}

[[alarm]]
name = "Finance copy"
kind = "usb"
repeat = "every_match"
conditions = [ {{ field = "action", op = "eq", value = "file_written" }} ]
risk = {risk}
"#
        ),
    )
    .expect("write pack");
    let archive = build(dir, &pack);
    let signed = vigilo(
        dir,
        &[
            "pack",
            "sign",
            archive.to_str().expect("p"),
            "--key",
            key.to_str().expect("p"),
        ],
    );
    assert_eq!(signed.status.code(), Some(0), "{}", stderr(&signed));
    archive
}

/// `vigilo pack publish ARCHIVE` through the hub whose data folder is `hub`.
fn publish(hub: &Path, archive: &Path) -> std::process::Output {
    vigilo(hub, &["pack", "publish", archive.to_str().expect("p")])
}

/// Waits until the hub's rollout of `pack` satisfies `done`; returns it.
fn wait_for_rollout(
    hub: &Agent,
    pack: &str,
    what: &str,
    agents: &[Agent],
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let answer = hub.get("/api/v1/fleet/packs");
        let found = answer["packs"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["name"] == pack)
            .cloned();
        if let Some(p) = &found
            && done(p)
        {
            return p.clone();
        }
        if Instant::now() > deadline {
            let logs: Vec<String> = agents.iter().map(Agent::stderr).collect();
            panic!(
                "{what}: not seen; the rollout: {found:?}\nthe hub's log:\n{}\nthe agents' \
                 logs:\n{}",
                hub.stderr(),
                logs.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The agents of [`AGENTS`], each trusting `public_key`, under its own nkey from `keys`.
fn start_agents(dir: &Path, url: &str, keys: &Path, public_key: &Path) -> Vec<Agent> {
    AGENTS
        .iter()
        .map(|(name, department)| {
            let data = dir.join(name);
            std::fs::create_dir_all(data.join("trusted-keys")).expect("mkdir");
            std::fs::copy(public_key, data.join("trusted-keys/admin.pub")).expect("trust");
            std::fs::write(
                data.join("agent.toml"),
                format!(
                    "[fleet]\nurl = \"{url}\"\nagent_id = \"{name}\"\nnkey = \"{}\"\n\
                     tags = {{ department = \"{department}\" }}\n",
                    keys.join(format!("{name}.nk")).display()
                ),
            )
            .expect("settings");
            Agent::start_in(
                &data,
                None,
                &["--retry-after", "1", "--heartbeat", "1"],
                &[("RUST_LOG", "vigilo=info")],
            )
        })
        .collect()
}

/// A new signing key pair, `admin.pub` and `admin.key`, in `DIR/signing`; returns that folder.
fn signing_key(dir: &Path) -> PathBuf {
    let signing = dir.join("signing");
    std::fs::create_dir_all(&signing).expect("mkdir");
    let made = vigilo(
        &signing,
        &[
            "pack",
            "keygen",
            "-o",
            signing.join("admin").to_str().expect("p"),
        ],
    );
    assert_eq!(made.status.code(), Some(0), "{}", stderr(&made));
    signing
}

/// A bus under per-computer keys, a hub, a signing key and the agents of [`AGENTS`] trusting
/// it: what each rollout test starts from.
struct Fleet {
    dir: tempfile::TempDir,
    _nats: Nats,
    hub_data: PathBuf,
    hub: Agent,
    secret_key: PathBuf,
    agents: Vec<Agent>,
}

impl Fleet {
    fn start() -> Fleet {
        let dir = tempfile::tempdir().expect("tempdir");
        let names: Vec<&str> = AGENTS.iter().map(|(n, _)| *n).collect();
        let keys = crate::fleet::credentials(dir.path(), &names);
        let nats = Nats::start_with_config(&dir.path().join("nats"), crate::fleet::AUTH_CONF);
        let url = nats.url();
        let hub_data = dir.path().join("hub");
        let hub_key = keys.join("hub.nk");
        let hub = Agent::start_hub_with(
            &hub_data,
            &url,
            &["--fleet-nkey", hub_key.to_str().expect("p")],
        );
        let signing = signing_key(dir.path());
        let agents = start_agents(dir.path(), &url, &keys, &signing.join("admin.pub"));
        Fleet {
            dir,
            _nats: nats,
            hub_data,
            hub,
            secret_key: signing.join("admin.key"),
            agents,
        }
    }
}

#[test]
fn a_pack_published_once_runs_where_it_is_targeted_replaced_refused_when_tampered_and_rolled_back()
{
    let Fleet {
        dir,
        _nats,
        hub_data,
        hub,
        secret_key,
        mut agents,
    } = Fleet::start();

    // Unsigned: the hub refuses to publish it, saying why.
    let packs = dir.path().join("packs");
    let v1 = dlp(&packs, "1.0.0", 3, &secret_key);
    let unsigned = packs.join("unsigned.tar.gz");
    std::fs::copy(&v1, &unsigned).expect("copy");
    let refused = publish(&hub_data, &unsigned);
    assert_eq!(refused.status.code(), Some(2), "{}", stdout(&refused));
    assert!(
        stderr(&refused).contains("must be signed"),
        "{}",
        stderr(&refused)
    );

    // v1, for finance: runs on ann's and bob's computers; cat's is not targeted.
    let out = publish(&hub_data, &v1);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("published dlp 1.0.0 to the fleet, for tag department=finance"),
        "{}",
        stdout(&out)
    );
    let rollout = wait_for_rollout(
        &hub,
        "dlp",
        "1.0.0 on two, cat not targeted",
        &agents,
        |p| p["running"]["1.0.0"] == 2 && p["refused"][0]["state"] == "not_targeted",
    );
    assert_eq!(
        rollout["refused"][0]["agents"],
        serde_json::json!(["ws-cat"])
    );
    assert_eq!(rollout["waiting"], 0, "{rollout}");

    // Events keep coming while v2 replaces v1: each becomes one alarm, of v1 or of v2.
    for (agent, (name, _)) in agents.iter_mut().zip(AGENTS) {
        agent.send(&(0..40).map(|n| copy_on(name, n)).collect::<Vec<_>>());
    }
    let v2 = dlp(&packs, "1.1.0", 6, &secret_key);
    let out = publish(&hub_data, &v2);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    for (agent, (name, _)) in agents.iter_mut().zip(AGENTS) {
        agent.send(&(40..80).map(|n| copy_on(name, n)).collect::<Vec<_>>());
    }
    wait_for_rollout(&hub, "dlp", "1.1.0 on both", &agents, |p| {
        p["version"] == "1.1.0" && p["running"]["1.1.0"] == 2
    });
    for (agent, (name, _)) in agents.iter_mut().zip(AGENTS) {
        agent.send(&(80..120).map(|n| copy_on(name, n)).collect::<Vec<_>>());
    }
    for agent in &agents {
        agent.wait_for_events(120);
    }
    for (agent, (name, department)) in agents.iter().zip(AGENTS) {
        let (seen, all) = finance_copies(agent);
        if department == "finance" {
            assert_eq!(all, 120, "{name}: every event once, none twice");
            assert_eq!(seen.len(), 120, "{name}");
            // The last ones are v2's for sure; the first ones v1's.
            assert_eq!(seen["/media/dave/USB/0.bin"], 3, "{name}");
            assert_eq!(seen["/media/dave/USB/119.bin"], 6, "{name}");
            let risks: Vec<i64> = (0..120)
                .map(|n| seen[&format!("/media/dave/USB/{n}.bin")])
                .collect();
            let switch = risks.iter().position(|r| *r == 6).expect("v2 fired");
            assert!(
                risks[switch..].iter().all(|r| *r == 6),
                "{name}: once v2 runs, v1 does not: {risks:?}"
            );
        } else {
            assert_eq!(all, 0, "{name} is not in finance");
        }
    }
    // The agent's own audit trail says the fleet did it.
    let audit = agents[0].get("/api/v1/audit?limit=20");
    let uploaded: Vec<&serde_json::Value> = audit
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["action"] == "pack_uploaded")
        .collect();
    assert!(
        uploaded.len() >= 2
            && uploaded
                .iter()
                .all(|e| e["actor"].as_str().is_some_and(|a| a.starts_with("fleet:"))),
        "{audit}"
    );

    // A tampered archive under a good signature: the hub trusts no key and passes it on;
    // every agent refuses it, and keeps running 1.1.0.
    let v3 = dlp(&packs, "1.2.0", 9, &secret_key);
    let signature = std::fs::read_to_string(format!("{}.minisig", v3.display())).expect("sig");
    let tampered = packs.join("tampered.tar.gz");
    let other = dlp(&packs.join("other"), "1.2.0", 10, &secret_key);
    std::fs::copy(&other, &tampered).expect("copy");
    std::fs::write(format!("{}.minisig", tampered.display()), signature).expect("sig");
    let out = publish(&hub_data, &tampered);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let rollout = wait_for_rollout(&hub, "dlp", "1.2.0 refused by all", &agents, |p| {
        p["version"] == "1.2.0"
            && p["refused"][0]["state"] == "bad_signature"
            && p["refused"][0]["agents"].as_array().map(Vec::len) == Some(3)
    });
    assert!(
        rollout["refused"][0]["errors"][0]
            .as_str()
            .is_some_and(|e| e.contains("does not verify")),
        "{rollout}"
    );
    assert_eq!(rollout["running"]["1.1.0"], 2, "{rollout}");
    let table = stdout(&vigilo(&hub_data, &["pack", "rollout"]));
    assert!(
        table.contains("bad signature: ws-ann, ws-bob, ws-cat — ")
            && table.contains("does not verify"),
        "{table}"
    );

    // The hub's Packs page shows the same; rolling back is publishing the earlier version
    // again, here from that page.
    let (client, cookie) = hub.console_session();
    let page = client
        .get(format!("{}/console/packs", hub.url))
        .header("cookie", &cookie)
        .send()
        .expect("page")
        .text()
        .expect("body");
    let fleet_table = &page[page.find("id=\"fleet-packs\"").expect("the fleet's table")..];
    for shown in [
        "dlp",
        "1.2.0",
        "2 on ",
        "1.1.0",
        "3 bad signature",
        "ws-ann, ws-bob, ws-cat",
    ] {
        assert!(fleet_table.contains(shown), "{shown} in {fleet_table}");
    }
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the form's token")
        .to_string();
    let form = reqwest::blocking::multipart::Form::new()
        .text("csrf", csrf)
        .part(
            "archive",
            reqwest::blocking::multipart::Part::bytes(std::fs::read(&v1).expect("v1"))
                .file_name("dlp-1.0.0.tar.gz"),
        )
        .text(
            "signature",
            std::fs::read_to_string(format!("{}.minisig", v1.display())).expect("sig"),
        );
    let published = client
        .post(format!("{}/console/packs/publish", hub.url))
        .header("cookie", &cookie)
        .multipart(form)
        .send()
        .expect("publish");
    let to = published.headers()["location"]
        .to_str()
        .expect("a redirect")
        .to_string();
    assert!(
        to.contains("published+to+the+fleet"),
        "{} {to}",
        published.status()
    );
    wait_for_rollout(&hub, "dlp", "back on 1.0.0", &agents, |p| {
        p["version"] == "1.0.0" && p["running"]["1.0.0"] == 2 && p["running"]["1.1.0"].is_null()
    });
    for (agent, (name, _)) in agents.iter_mut().zip(AGENTS) {
        agent.send(&[copy_on(name, 500)]);
    }
    for agent in &agents[..2] {
        agent.wait_for_events(121);
        let (seen, _) = finance_copies(agent);
        assert_eq!(seen["/media/dave/USB/500.bin"], 3, "v1 runs again");
    }
    for agent in agents {
        agent.stop();
    }
    hub.stop();
}

/// A file written to USB on `computer` by `user`, the `n`th of its day.
fn copy_by(computer: &str, user: &str, n: usize) -> String {
    copy_on(computer, n).replace(r#""username":"dave""#, &format!(r#""username":"{user}""#))
}

/// Waits until `agent` has heard that the group says `members` (its log says each change).
fn wait_for_group(agent: &Agent, members: &str) {
    let said = format!("fleet: group finance: {members}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !agent.stderr().contains(&said) {
        assert!(
            Instant::now() < deadline,
            "{said:?} not heard:\n{}",
            agent.stderr()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The alarms an agent stored, as `alarm/user` sorted.
fn fired_on(agent: &Agent) -> Vec<String> {
    let page = agent.get("/api/v1/alarms?pack=grp&limit=500");
    let mut out: Vec<String> = page["alarms"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| {
            format!(
                "{}/{}",
                a["alarm"].as_str().unwrap_or("?"),
                a["user"].as_str().unwrap_or("?")
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn a_group_defined_on_the_hub_decides_where_and_for_whom_a_pack_runs_and_replay_agrees() {
    let Fleet {
        dir,
        _nats,
        hub_data,
        hub,
        secret_key,
        mut agents,
    } = Fleet::start();

    // finance: ann's computer, whoever uses it, and erin wherever she logs in.
    let set = vigilo(
        &hub_data,
        &[
            "group",
            "set",
            "finance",
            "--computer",
            "ws-ann",
            "--user",
            "erin,erin",
        ],
    );
    assert_eq!(set.status.code(), Some(0), "{}", stderr(&set));
    assert!(
        stdout(&set).contains("group finance: 1 users, 1 computers"),
        "{}",
        stdout(&set)
    );
    let bad = vigilo(&hub_data, &["group", "set", "fin ance"]);
    assert_eq!(bad.status.code(), Some(2), "{}", stdout(&bad));
    assert!(
        stderr(&bad).contains("a group's name is 1 to 64"),
        "{}",
        stderr(&bad)
    );

    let pack = dir.path().join("grp");
    std::fs::create_dir_all(&pack).expect("mkdir");
    std::fs::write(
        pack.join("pack.toml"),
        r#"[pack]
name = "grp"
version = "1.0.0"

[targets]
groups = ["finance"]

[[alarm]]
name = "Group copy"
kind = "usb"
repeat = "every_match"
conditions = [ { field = "action", op = "eq", value = "file_written" } ]

[[alarm]]
name = "Erin's copy"
kind = "usb"
repeat = "every_match"
applies_to = { users = ["Erin"] }
conditions = [ { field = "action", op = "eq", value = "file_written" } ]
"#,
    )
    .expect("write pack");
    let archive = build(dir.path(), &pack);
    let signed = vigilo(
        dir.path(),
        &[
            "pack",
            "sign",
            archive.to_str().expect("p"),
            "--key",
            secret_key.to_str().expect("p"),
        ],
    );
    assert_eq!(signed.status.code(), Some(0), "{}", stderr(&signed));
    let out = publish(&hub_data, &archive);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // A pack for a group's users runs on every computer: each event decides.
    wait_for_rollout(&hub, "grp", "running on all three", &agents, |p| {
        p["running"]["1.0.0"] == 3
    });
    for agent in &agents {
        wait_for_group(agent, "users erin; computers ws-ann");
    }
    let day: Vec<Vec<String>> = AGENTS
        .iter()
        .map(|(name, _)| vec![copy_by(name, "dave", 1), copy_by(name, "erin", 2)])
        .collect();
    for (agent, lines) in agents.iter_mut().zip(&day) {
        agent.send(lines);
    }
    for agent in &agents {
        agent.wait_for_events(2);
    }
    let expected_before = [
        vec!["Erin's copy/erin", "Group copy/dave", "Group copy/erin"],
        vec!["Erin's copy/erin", "Group copy/erin"],
        vec!["Erin's copy/erin", "Group copy/erin"],
    ];
    for (agent, expected) in agents.iter().zip(&expected_before) {
        assert_eq!(&fired_on(agent), expected);
    }

    // A back-test as each agent, with the hub's groups, finds what the agent found.
    let groups = vigilo(&hub_data, &["group", "list", "--json"]);
    assert_eq!(groups.status.code(), Some(0), "{}", stderr(&groups));
    let groups_file = dir.path().join("groups.json");
    std::fs::write(&groups_file, stdout(&groups)).expect("write");
    let table = stdout(&vigilo(&hub_data, &["group", "list"]));
    assert!(
        table.contains("finance") && table.contains("ws-ann"),
        "{table}"
    );
    for ((name, department), (lines, expected)) in
        AGENTS.iter().zip(day.iter().zip(&expected_before))
    {
        let events = dir.path().join(format!("{name}.jsonl"));
        std::fs::write(&events, lines.join("\n") + "\n").expect("write");
        let replay = vigilo(
            &dir.path().join("replay"),
            &[
                "replay",
                events.to_str().expect("p"),
                "--no-default-pack",
                "--pack",
                pack.to_str().expect("p"),
                "--as-agent",
                name,
                "--tag",
                &format!("department={department}"),
                "--groups",
                groups_file.to_str().expect("p"),
                "--json",
            ],
        );
        assert_eq!(replay.status.code(), Some(0), "{}", stderr(&replay));
        let mut fired: Vec<String> = stdout(&replay)
            .lines()
            .map(|l| {
                let a: serde_json::Value = serde_json::from_str(l).expect("json");
                format!(
                    "{}/{}",
                    a["alarm"].as_str().unwrap_or("?"),
                    a["user"].as_str().unwrap_or("?")
                )
            })
            .collect();
        fired.sort();
        assert_eq!(&fired, expected, "{name}");
        assert!(
            stderr(&replay).contains(&format!(
                "pack grp (for groups finance): {} on agent {name}",
                if *name == "ws-ann" {
                    "applies"
                } else {
                    "applies to some users"
                }
            )) && stderr(&replay).contains("alarm \"Erin's copy\" of grp (for users Erin)"),
            "{}",
            stderr(&replay)
        );
    }

    // The group changes on the hub's console: erin leaves, bob's computer joins. Every agent
    // hears it; the same events now fire where the new members are.
    let (client, cookie) = hub.console_session();
    let page = client
        .get(format!("{}/console/groups", hub.url))
        .header("cookie", &cookie)
        .send()
        .expect("page")
        .text()
        .expect("body");
    assert!(page.contains("data-group=\"finance\""), "{page}");
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the form's token")
        .to_string();
    let changed = client
        .post(format!("{}/console/groups", hub.url))
        .header("cookie", &cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(
            url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs([
                    ("csrf", csrf.as_str()),
                    ("name", "finance"),
                    ("users", ""),
                    ("computers", "ws-ann, ws-bob"),
                    ("description", "the finance floor"),
                ])
                .finish(),
        )
        .send()
        .expect("change");
    let to = changed.headers()["location"]
        .to_str()
        .expect("a redirect")
        .to_string();
    assert!(
        to.contains("Group+finance+kept"),
        "{} {to}",
        changed.status()
    );
    for agent in &agents {
        wait_for_group(agent, "users -; computers ws-ann, ws-bob");
    }
    for (agent, (name, _)) in agents.iter_mut().zip(AGENTS) {
        agent.send(&[copy_by(name, "dave", 3), copy_by(name, "erin", 4)]);
    }
    for agent in &agents {
        agent.wait_for_events(4);
    }
    let expected_after = [
        vec![
            "Erin's copy/erin",
            "Erin's copy/erin",
            "Group copy/dave",
            "Group copy/dave",
            "Group copy/erin",
            "Group copy/erin",
        ],
        vec![
            "Erin's copy/erin",
            "Erin's copy/erin",
            "Group copy/dave",
            "Group copy/erin",
            "Group copy/erin",
        ],
        vec!["Erin's copy/erin", "Group copy/erin"],
    ];
    for (agent, expected) in agents.iter().zip(&expected_after) {
        assert_eq!(&fired_on(agent), expected);
    }
    // The hub audited both changes.
    let audit = hub.get("/api/v1/audit?limit=20");
    let changes = audit
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["action"] == "group_set" && e["object"] == "finance")
        .count();
    assert_eq!(changes, 2, "{audit}");
    for agent in agents {
        agent.stop();
    }
    hub.stop();
}

/// Waits until `agent`'s audit trail has an entry `done` holds for.
fn wait_for_audit(agent: &Agent, what: &str, done: impl Fn(&serde_json::Value) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let audit = agent.get("/api/v1/audit?limit=50");
        if audit.as_array().into_iter().flatten().any(&done) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: {audit}\n{}",
            agent.stderr()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The version of pack `name` an agent runs, if any.
fn running(agent: &Agent, name: &str) -> Option<String> {
    let packs = agent.get("/api/v1/packs");
    packs
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == name && p["enabled"] == true)
        .and_then(|p| p["version"].as_str().map(str::to_string))
}

#[test]
fn a_pack_from_a_web_server_is_polled_verified_with_the_agents_keys_and_taken_without_a_bus() {
    let dir = tempfile::tempdir().expect("tempdir");
    let signing = signing_key(dir.path());
    let key = signing.join("admin.key");
    let packs = dir.path().join("packs");
    let served = dir.path().join("served");
    std::fs::create_dir_all(&served).expect("mkdir");
    let offer = |archive: &Path, signature_of: &Path| {
        std::fs::copy(archive, served.join("dlp.tar.gz")).expect("copy");
        std::fs::copy(
            format!("{}.minisig", signature_of.display()),
            served.join("dlp.tar.gz.minisig"),
        )
        .expect("copy");
    };
    let v1 = dlp(&packs, "1.0.0", 3, &key);
    offer(&v1, &v1);

    // A real web server: Python's, which answers If-Modified-Since with 304.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let log = std::fs::File::create(dir.path().join("http.log")).expect("log");
    let mut server = std::process::Command::new("python3")
        .args([
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            &port.to_string(),
        ])
        .arg("--directory")
        .arg(&served)
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("python3 -m http.server");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the web server did not start");
        std::thread::sleep(Duration::from_millis(100));
    }

    let data = dir.path().join("ws-web");
    std::fs::create_dir_all(data.join("trusted-keys")).expect("mkdir");
    std::fs::copy(
        signing.join("admin.pub"),
        data.join("trusted-keys/admin.pub"),
    )
    .expect("trust");
    std::fs::write(
        data.join("agent.toml"),
        format!(
            "[fleet]\nagent_id = \"ws-web\"\ntags = {{ department = \"finance\" }}\n\n\
             [[fleet.pack_source]]\nurl = \"http://127.0.0.1:{port}/dlp.tar.gz\"\nevery = \"10s\"\n"
        ),
    )
    .expect("settings");
    let agent = Agent::start_in(&data, None, &[], &[("RUST_LOG", "vigilo=info")]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while running(&agent, "dlp").as_deref() != Some("1.0.0") {
        assert!(
            Instant::now() < deadline,
            "1.0.0 not taken:\n{}",
            agent.stderr()
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // Another archive under 1.0.0's signature: refused, 1.0.0 runs on.
    let v2 = dlp(&packs, "1.1.0", 6, &key);
    offer(&v2, &v1);
    wait_for_audit(&agent, "the swapped archive refused", |e| {
        e["action"] == "pack_rejected"
            && e["actor"]
                .as_str()
                .is_some_and(|a| a.starts_with("source:http://127.0.0.1"))
            && e["detail"]
                .as_str()
                .is_some_and(|d| d.contains("does not verify"))
    });
    assert_eq!(running(&agent, "dlp").as_deref(), Some("1.0.0"));

    // Its own signature beside it: taken at the next poll.
    offer(&v2, &v2);
    let deadline = Instant::now() + Duration::from_secs(60);
    while running(&agent, "dlp").as_deref() != Some("1.1.0") {
        assert!(
            Instant::now() < deadline,
            "1.1.0 not taken:\n{}",
            agent.stderr()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Later polls ask for what is newer, and are told nothing is (two polls at least: the
    // first may not trust a Last-Modified within a second of its answer).
    std::thread::sleep(Duration::from_secs(25));
    let _ = server.kill();
    let _ = server.wait();
    let requests = std::fs::read_to_string(dir.path().join("http.log")).expect("log");
    assert!(
        requests.contains("\"GET /dlp.tar.gz HTTP/1.1\" 304"),
        "{requests}"
    );
    agent.stop();
}

/// `vigilo pack push`, with what it prints.
fn push(
    dir: &Path,
    archive: &Path,
    reference: &str,
    signature: Option<&Path>,
) -> std::process::Output {
    let mut args = vec![
        "pack".to_string(),
        "push".into(),
        archive.display().to_string(),
        reference.into(),
        "--plain-http".into(),
    ];
    if let Some(s) = signature {
        args.extend(["--signature".into(), s.display().to_string()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    vigilo(dir, &args)
}

/// Waits until `agent` runs `version` of the dlp pack.
fn wait_running(agent: &Agent, version: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while running(agent, "dlp").as_deref() != Some(version) {
        assert!(
            Instant::now() < deadline,
            "{version} not taken:\n{}",
            agent.stderr()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_pack_pushed_to_an_oci_registry_is_pulled_verified_with_the_agents_keys_and_taken() {
    let dir = tempfile::tempdir().expect("tempdir");
    let signing = signing_key(dir.path());
    let key = signing.join("admin.key");
    let packs = dir.path().join("packs");
    let registry = crate::registry::Registry::start(&dir.path().join("registry"));
    let reference = format!("oci://{}/acme/packs/dlp:1", registry.host);

    // What agents would refuse is not pushed: an unsigned archive, a reference without a
    // registry.
    let v1 = dlp(&packs, "1.0.0", 3, &key);
    let unsigned = packs.join("unsigned.tar.gz");
    std::fs::copy(&v1, &unsigned).expect("copy");
    let refused = push(dir.path(), &unsigned, &reference, None);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("no signature"),
        "{}",
        stderr(&refused)
    );
    let refused = push(dir.path(), &v1, "oci://acme/packs/dlp:1", None);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("must start with a registry's host"),
        "{}",
        stderr(&refused)
    );

    let pushed = push(dir.path(), &v1, &reference, None);
    assert_eq!(pushed.status.code(), Some(0), "{}", stderr(&pushed));
    assert!(
        stdout(&pushed).contains(&format!("pushed dlp 1.0.0 to {reference}")),
        "{}",
        stdout(&pushed)
    );

    let data = dir.path().join("ws-oci");
    std::fs::create_dir_all(data.join("trusted-keys")).expect("mkdir");
    std::fs::copy(
        signing.join("admin.pub"),
        data.join("trusted-keys/admin.pub"),
    )
    .expect("trust");
    std::fs::write(
        data.join("agent.toml"),
        format!(
            "[fleet]\nagent_id = \"ws-oci\"\ntags = {{ department = \"finance\" }}\n\n\
             [[fleet.pack_source]]\nurl = \"{reference}\"\nplain_http = true\nevery = \"10s\"\n"
        ),
    )
    .expect("settings");
    let agent = Agent::start_in(&data, None, &[], &[("RUST_LOG", "vigilo=info")]);
    wait_running(&agent, "1.0.0");

    // The tag moved to another archive under 1.0.0's signature: refused, 1.0.0 runs on.
    let v2 = dlp(&packs, "1.1.0", 6, &key);
    let v1_signature = PathBuf::from(format!("{}.minisig", v1.display()));
    let pushed = push(dir.path(), &v2, &reference, Some(&v1_signature));
    assert_eq!(pushed.status.code(), Some(0), "{}", stderr(&pushed));
    wait_for_audit(&agent, "the swapped archive refused", |e| {
        e["action"] == "pack_rejected"
            && e["actor"] == format!("source:{reference}").as_str()
            && e["detail"]
                .as_str()
                .is_some_and(|d| d.contains("does not verify"))
    });
    assert_eq!(running(&agent, "dlp").as_deref(), Some("1.0.0"));

    // Its own signature: taken at the next poll.
    let pushed = push(dir.path(), &v2, &reference, None);
    assert_eq!(pushed.status.code(), Some(0), "{}", stderr(&pushed));
    wait_running(&agent, "1.1.0");

    // Polls between pushes asked only for the manifest's digest: the manifest itself was
    // pulled once per push the agent saw (three), by digest.
    std::thread::sleep(Duration::from_secs(25));
    let log = registry.log();
    let asked = |method: &str| {
        log.lines()
            .filter(|l| {
                l.contains(&format!("\"{method} /v2/acme/packs/dlp/manifests/"))
                    && l.contains("vigilo/")
            })
            .count()
    };
    let pulled: Vec<&str> = log
        .lines()
        .filter(|l| {
            l.contains("\"GET /v2/acme/packs/dlp/manifests/sha256:") && l.contains("vigilo/")
        })
        .collect();
    assert_eq!(pulled.len(), 3, "{log}");
    assert_eq!(asked("GET"), 3, "{log}");
    assert!(asked("HEAD") >= 5, "{log}");
    agent.stop();
}
