//! Video on a real X display: while a loaded alarm wants video the agent keeps the last seconds
//! of the screen; when the alarm fires it saves an animated PNG from `before` the trigger to
//! `after` it, with what changed on both sides. With no such alarm loaded, nothing is recorded.

use std::time::{Duration, Instant};

use crate::desktop::{Scene, wait_for_alarms};
use crate::{settled_outcome, stdout, vigilo};

/// The recorder's line in `agent`'s status.
pub fn recorder(agent: &crate::agent::Agent) -> String {
    agent.status()["sources"]["video"]["detail"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Waits until `agent`'s recorder says something that starts with `starts`.
pub fn wait_for_recorder(agent: &crate::agent::Agent, starts: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !recorder(agent).starts_with(starts) {
        assert!(
            Instant::now() < deadline,
            "the recorder never said {starts:?}: {:?}",
            recorder(agent)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A moment of a played video: seconds into it, and the whole picture (RGB) then.
pub type Moment = (f64, Vec<u8>);

/// An APNG, played.
pub struct Played {
    /// Its size.
    pub size: (u32, u32),
    /// Each frame's start and the picture then, and the end.
    pub moments: Vec<Moment>,
    /// The size of each frame as stored: only the part of the screen that changed.
    pub frames: Vec<(u32, u32)>,
}

/// Plays an APNG.
pub fn play(path: &std::path::Path) -> Played {
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(path).expect("open"),
    ));
    let mut reader = decoder.read_info().expect("a PNG");
    let (w, h) = (reader.info().width, reader.info().height);
    let frames = reader
        .info()
        .animation_control()
        .expect("an animated PNG")
        .num_frames;
    let mut canvas = vec![0u8; (w * h * 3) as usize];
    let (mut t, mut played, mut sizes) = (0.0, Vec::new(), Vec::new());
    for _ in 0..frames {
        let mut buf = vec![0; reader.output_buffer_size().expect("size")];
        let info = reader.next_frame(&mut buf).expect("a frame");
        let fc = *reader.info().frame_control().expect("fcTL");
        let row = info.width as usize * 3;
        for r in 0..info.height as usize {
            let at = ((fc.y_offset as usize + r) * w as usize + fc.x_offset as usize) * 3;
            canvas[at..at + row].copy_from_slice(&buf[r * row..(r + 1) * row]);
        }
        played.push((t, canvas.clone()));
        sizes.push((fc.width, fc.height));
        t += f64::from(fc.delay_num) / f64::from(fc.delay_den.max(1));
    }
    played.push((t, canvas));
    Played {
        size: (w, h),
        moments: played,
        frames: sizes,
    }
}

impl Played {
    /// How many times the picture changes at a moment within `range` (seconds into the clip).
    pub fn changes(&self, range: std::ops::Range<f64>) -> usize {
        self.moments
            .windows(2)
            .filter(|w| range.contains(&w[1].0) && w[0].1 != w[1].1)
            .count()
    }

    /// When each frame starts, and the end, in seconds.
    pub fn starts(&self) -> Vec<f64> {
        self.moments.iter().map(|p| p.0).collect()
    }

    /// The clip's length in seconds.
    pub fn length(&self) -> f64 {
        self.moments.last().map_or(0.0, |m| m.0)
    }
}

/// Asserts that the clip keeps only what changed: some frames are smaller than the screen.
pub fn assert_partial_frames(clip: &Played) {
    let (w, h) = clip.size;
    assert!(
        clip.frames.iter().any(|&(fw, fh)| fw * fh < w * h / 2),
        "every frame is (nearly) the whole screen: {:?}",
        clip.frames
    );
}

#[test]
fn a_video_alarm_saves_the_screen_before_and_after_it_fired() {
    let scene = Scene::start(
        &["vigilo-e2e-other", "vigilo-e2e-filmed"],
        "clip",
        r#"[grants]
actions = ["video"]

[[alarm]]
name = "Filmed window"
conditions = [ { field = "title", op = "eq", value = "vigilo-e2e-filmed" } ]
risk = 4
actions = [ { video = { before = "3s", after = "4s" } } ]
"#,
    );
    let (desktop, data) = (&scene.desktop, &scene.data);
    let (other, filmed) = (&scene.windows[0].0, &scene.windows[1].0);
    // The pack wants 3 s of pre-roll: the recorder starts.
    wait_for_recorder(&scene.agent, "recording 1280×800");
    std::thread::sleep(Duration::from_secs(2));
    // Something happens on screen before the trigger, then the trigger.
    desktop.activate(other);
    std::thread::sleep(Duration::from_secs(2));
    desktop.activate(filmed);
    wait_for_alarms(data, "Filmed window", 1);
    // And something after it: the window's title (drawn by openbox) changes.
    std::thread::sleep(Duration::from_millis(1500));
    desktop.retitle(filmed, "vigilo-e2e-filmed, later");
    let outcome = settled_outcome(data, "Filmed window");
    assert_eq!(outcome["state"], "done", "{outcome}");

    let out = vigilo(data, &["alarms", "--json", "--alarm", "Filmed window"]);
    let alarm: serde_json::Value =
        serde_json::from_str(stdout(&out).lines().next().expect("the alarm")).expect("json");
    let file = data.join(format!("captures/{}-0.apng", alarm["id"]));
    let clip = play(&file);
    assert_eq!(clip.size, (1280, 800), "the whole screen");
    assert_partial_frames(&clip);
    let length = clip.length();
    assert!((6.5..=7.5).contains(&length), "≈ 7 s, found {length} s");
    // The trigger is at `before` into the clip, less when the recorder had started later.
    let detail = outcome["detail"].as_str().expect("detail");
    let before: f64 = detail
        .split_once(" s before")
        .and_then(|(head, _)| head.rsplit('(').next()?.parse().ok())
        .expect("the pre-roll in the detail");
    assert!(before >= 2.5, "{detail}");
    let trigger = length - 4.0;
    assert!(
        clip.changes(0.0..trigger - 0.5) >= 1,
        "a change before the trigger at {trigger} s: frames at {:?} ({detail})\n{}",
        clip.starts(),
        std::fs::read_to_string(data.with_extension("stderr")).unwrap_or_default()
    );
    assert!(
        clip.changes(trigger + 0.5..length) >= 1,
        "a change after it"
    );
    let colours = {
        let mut c: Vec<&[u8]> = clip.moments[0].1.chunks(3).collect();
        c.sort();
        c.dedup();
        c.len()
    };
    assert!(colours >= 3, "real content: {colours} colours");

    // The standard pack's anonymiser alarm wants 15 s; with neither pack, nothing is recorded.
    for (pack, then) in [
        ("clip", "recording 1280×800 at 2 fps, keeping the last 15 s"),
        ("standard", "idle"),
    ] {
        let off = scene.agent.cli(&["pack", "disable", pack]);
        assert!(off.status.success(), "{}", crate::stderr(&off));
        wait_for_recorder(&scene.agent, then);
    }
    scene.agent.stop();
}
