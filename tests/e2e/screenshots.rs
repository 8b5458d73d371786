//! Screenshots on a real X display: the alarm's screenshot action captures the screen as a
//! PNG in the data folder (owner-only, the screen's size, real content), and a series stops
//! early when the person moves to another window.

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use crate::desktop::{Scene, wait_for_alarms};
use crate::{settled_outcome, stdout, vigilo};

#[test]
fn an_alarm_screenshots_the_real_screen_until_the_person_switches_window() {
    let scene = Scene::start(
        &["vigilo-e2e-elsewhere", "vigilo-e2e-watched"],
        "shots",
        r#"[grants]
actions = ["screenshot"]

[[alarm]]
name = "Watched window"
conditions = [ { field = "title", op = "eq", value = "vigilo-e2e-watched" } ]
risk = 3
actions = [ { screenshot = { count = 3, interval = "10s" } } ]
"#,
    );
    let (desktop, data) = (&scene.desktop, &scene.data);
    let (other, watched) = (&scene.windows[0].0, &scene.windows[1].0);
    // The watched window opened last and has focus already: focus moves to it under the new
    // pack's rules.
    desktop.activate(other);
    desktop.activate(watched);
    wait_for_alarms(data, "Watched window", 1);
    let out = vigilo(data, &["alarms", "--json", "--alarm", "Watched window"]);
    let alarm: serde_json::Value =
        serde_json::from_str(stdout(&out).lines().next().expect("the alarm")).expect("json");
    let id = alarm["id"].as_i64().expect("an id");
    // Its captures are named after it (other alarms, e.g. the standard pack's on the upload,
    // take theirs too).
    let captures = data.join("captures");
    let ours = || -> Vec<std::path::PathBuf> {
        let mut files: Vec<_> = std::fs::read_dir(&captures)
            .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        files.retain(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(&format!("{id}-0-")))
        });
        files
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let first = loop {
        if let Some(f) = ours().into_iter().next() {
            break f;
        }
        assert!(Instant::now() < deadline, "no screenshot");
        std::thread::sleep(Duration::from_millis(50));
    };
    // The person moves on before the second one is due (10 s later).
    desktop.activate(other);
    let outcome = settled_outcome(data, "Watched window");
    scene.agent.stop();

    // One of three: partial, and shown so.
    assert_eq!(outcome["state"], "partial", "{outcome}");
    let table = stdout(&vigilo(data, &["alarms", "--alarm", "Watched window"]));
    assert!(table.contains("screenshot×3◐"), "{table}");
    assert!(
        outcome["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("1 of 3 screenshots; stopped: the window changed")),
        "{outcome}"
    );
    let mode = std::fs::metadata(&first)
        .expect("file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "screens are private");
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(&first).expect("open"),
    ));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut pixels = vec![0; reader.output_buffer_size().expect("size")];
    let info = reader.next_frame(&mut pixels).expect("frame");
    assert_eq!((info.width, info.height), (1280, 800), "the whole screen");
    let mut colours: Vec<&[u8]> = pixels[..info.buffer_size()].chunks(3).collect();
    colours.sort();
    colours.dedup();
    assert!(
        colours.len() >= 3,
        "real content (windows, text), not a blank frame: {} colours",
        colours.len()
    );
    assert_eq!(ours().len(), 1, "no more after the switch");
}
