//! The agent on a real Wayland desktop: sway headless, foot terminals as windows, focus moved
//! with `swaymsg` (see `tests/support/sway.rs`). The same events, fields and alarms as on X11.

use std::time::Duration;

use crate::agent::Agent;
use crate::desktop::{WINDOW_SEEN, upload_pack, wait_for_alarms};
use crate::sway::{BACKGROUND, FOCUSED, Sway, USER};
use crate::videos::{assert_partial_frames, play, wait_for_recorder};
use crate::{events_of, settled_outcome, stdout, vigilo};

/// An agent watching `sway`, with more `vigilo run` arguments.
fn agent_on(sway: &Sway, data: &std::path::Path, extra: &[&str]) -> Agent {
    let env = sway.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Agent::start_in(data, None, extra, &env)
}

#[test]
fn focus_and_title_changes_on_sway_become_activity_alarms_with_the_process_behind_them() {
    let mut sway = Sway::start();
    let alpha = sway.window("vigilo-e2e-alpha", "vigilo-e2e-gamma");
    let beta = sway.window("vigilo-e2e-beta", "unused");
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let agent = agent_on(&sway, &data, &[]);
    upload_pack(&agent, &data, "windows", WINDOW_SEEN);
    // Beta is in front (the last opened); focus moves, the window retitles, focus moves back.
    sway.focus("vigilo-e2e-alpha");
    wait_for_alarms(&data, "Window seen", 1);
    sway.retitle("vigilo-e2e-alpha");
    wait_for_alarms(&data, "Window seen", 2);
    sway.focus("vigilo-e2e-beta");
    wait_for_alarms(&data, "Window seen", 3);
    let status = agent.status();
    let wayland = &status["sources"]["wayland"];
    assert_eq!(wayland["up"], true, "{status}");
    let detail = wayland["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("wlr-foreign-toplevel") && detail.contains("PIDs from sway's IPC"),
        "{status}"
    );
    assert!(
        status["sources"]["x11"].is_null(),
        "no X11 source on Wayland: {status}"
    );
    let alarms = agent.stop();

    let seen = events_of(&alarms, "Window seen");
    let titles: Vec<&str> = seen.iter().filter_map(|e| e["title"].as_str()).collect();
    assert_eq!(
        titles,
        ["vigilo-e2e-alpha", "vigilo-e2e-gamma", "vigilo-e2e-beta"]
    );
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").expect("hostname");
    for (event, pid) in seen.iter().zip([alpha, alpha, beta]) {
        assert_eq!(event["pid"], pid, "{event}");
        assert_eq!(event["executable"], "/usr/bin/foot", "{event}");
        assert_eq!(
            event["description"], "Foot",
            "from foot's desktop entry: {event}"
        );
        assert_eq!(event["username"], USER, "{event}");
        assert_eq!(event["computer"], host.trim());
    }
}

/// How many of `rgb`'s pixels are `colour`.
fn pixels_of(rgb: &[u8], colour: [u8; 3]) -> usize {
    rgb.chunks_exact(3).filter(|px| *px == colour).count()
}

/// The one capture of alarm `name`'s first action, by its file name's ending.
fn capture_of(data: &std::path::Path, name: &str, ending: &str) -> std::path::PathBuf {
    let out = vigilo(data, &["alarms", "--json", "--alarm", name]);
    let alarm: serde_json::Value =
        serde_json::from_str(stdout(&out).lines().next().expect("the alarm")).expect("json");
    data.join(format!("captures/{}-0{ending}", alarm["id"]))
}

#[test]
fn screenshots_and_video_on_sway_are_pictures_of_the_wayland_windows_not_of_xwayland() {
    let mut sway = Sway::start();
    sway.window("vigilo-e2e-other", "unused");
    sway.window("vigilo-e2e-filmed", "vigilo-e2e-filmed, later");
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    // A Wayland session with Xwayland also sets DISPLAY: the agent must still read the
    // compositor's screen (the X display named here does not exist, so reading it would fail).
    let mut env = sway.env();
    env.push(("DISPLAY".into(), ":97".into()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let agent = Agent::start_in(&data, None, &[], &env);
    upload_pack(
        &agent,
        &data,
        "capture",
        r#"[grants]
actions = ["screenshot", "video"]

[[alarm]]
name = "Shot window"
conditions = [ { field = "title", op = "eq", value = "vigilo-e2e-filmed" } ]
actions = [ { screenshot = {} } ]

[[alarm]]
name = "Filmed window"
conditions = [ { field = "title", op = "eq", value = "vigilo-e2e-filmed" } ]
actions = [ { video = { before = "3s", after = "3s" } } ]
"#,
    );
    wait_for_recorder(&agent, "recording 1280×800");
    std::thread::sleep(Duration::from_secs(2));
    // Before the trigger, focus moves away (the red title bar moves), then back: the alarms.
    sway.focus("vigilo-e2e-other");
    std::thread::sleep(Duration::from_secs(1));
    sway.focus("vigilo-e2e-filmed");
    wait_for_alarms(&data, "Filmed window", 1);
    // After it, the window's title changes.
    std::thread::sleep(Duration::from_millis(1500));
    sway.retitle("vigilo-e2e-filmed");
    let shot = settled_outcome(&data, "Shot window");
    assert_eq!(shot["state"], "done", "{shot}");
    let clip = settled_outcome(&data, "Filmed window");
    assert_eq!(clip["state"], "done", "{clip}");
    agent.stop();

    let png = capture_of(&data, "Shot window", "-1.png");
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(&png).expect("the screenshot"),
    ));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut rgb = vec![0; reader.output_buffer_size().expect("size")];
    let info = reader.next_frame(&mut rgb).expect("frame");
    assert_eq!(
        (info.width, info.height),
        (1280, 800),
        "sway's whole output"
    );
    let rgb = &rgb[..info.buffer_size()];
    // Two foot windows side by side, the focused one framed in red: each background fills
    // nearly half the screen, and the frame is thousands of pixels.
    assert!(
        pixels_of(rgb, BACKGROUND) > 1280 * 800 / 4,
        "the terminals' background: {} pixels",
        pixels_of(rgb, BACKGROUND)
    );
    assert!(
        pixels_of(rgb, FOCUSED) > 1000,
        "the focused window's title bar: {} pixels",
        pixels_of(rgb, FOCUSED)
    );

    let clip = play(&capture_of(&data, "Filmed window", ".apng"));
    assert_eq!(clip.size, (1280, 800));
    // The compositor said where the screen changed: only that was kept.
    assert_partial_frames(&clip);
    let length = clip.length();
    assert!((5.5..=6.5).contains(&length), "≈ 6 s, found {length} s");
    let trigger = length - 3.0;
    assert!(
        clip.changes(0.0..trigger - 0.3) >= 1,
        "the focus moving before the trigger at {trigger} s: frames at {:?}",
        clip.starts()
    );
    assert!(
        clip.changes(trigger + 0.5..length) >= 1,
        "the title changing after it: frames at {:?}",
        clip.starts()
    );
    assert!(
        pixels_of(&clip.moments[0].1, FOCUSED) > 1000,
        "real content"
    );
}

#[test]
fn time_stops_counting_when_the_compositor_says_the_person_is_idle() {
    let mut sway = Sway::start();
    sway.window("vigilo-e2e-reading", "unused");
    let dir = tempfile::tempdir().expect("tempdir");
    let pack = r#"[[alarm]]
name = "Reading for 4 seconds"
conditions = [
  { field = "title", op = "eq", value = "vigilo-e2e-reading" },
  { field = "duration", op = "gte", value = 4 },
]
"#;
    // Two agents on the same desktop: one counts the person away after 2 s without input
    // (headless sway has no input devices: nobody touches anything), one only after 10 min.
    let (idle, patient) = (dir.path().join("idle"), dir.path().join("patient"));
    let idle_agent = agent_on(&sway, &idle, &["--idle-after", "2"]);
    let patient_agent = agent_on(&sway, &patient, &["--idle-after", "600"]);
    upload_pack(&idle_agent, &idle, "timing", pack);
    upload_pack(&patient_agent, &patient, "timing", pack);
    wait_for_alarms(&patient, "Reading for 4 seconds", 1);
    std::thread::sleep(Duration::from_secs(3));
    let out = vigilo(
        &idle,
        &["alarms", "--all", "--json", "--alarm", "Reading for 4"],
    );
    assert_eq!(stdout(&out), "", "idle time does not count");
    let status = idle_agent.status();
    assert!(
        status["sources"]["wayland"]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("idle from org_kde_kwin_idle")),
        "sway 1.7 tells idleness with KDE's protocol: {status}"
    );
    idle_agent.stop();
    patient_agent.stop();
}

#[test]
fn without_a_compositor_the_agent_says_why_and_runs_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let gone = dir.path().join("wayland-9");
    let agent = Agent::start_in(
        &data,
        Some(":0"),
        &[],
        &[("WAYLAND_DISPLAY", gone.to_str().expect("utf-8"))],
    );
    let status = agent.status();
    let wayland = &status["sources"]["wayland"];
    assert_eq!(wayland["up"], false, "{status}");
    let detail = wayland["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("cannot connect to Wayland display")
            && detail.contains(&format!("(WAYLAND_DISPLAY={})", gone.display())),
        "the reason, and what made it a Wayland session: {status}"
    );
    assert!(
        status["sources"]["x11"].is_null(),
        "a Wayland session is not watched through its DISPLAY: {status}"
    );
    assert_eq!(status["sources"]["events"]["up"], true, "{status}");
    agent.stop();
}
