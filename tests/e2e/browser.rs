//! The browser's page on a real desktop: Debian's Chromium with vigilo's extension, the native
//! host installed by `vigilo install-browser-host`, pages served on loopback under real-looking
//! names (Chromium's host resolver maps them to the test server), and the agent joining each
//! page's URL to the Chromium window in front.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;

use crate::agent::Agent;
use crate::desktop::{Desktop, upload_pack, wait_for_alarms};
use crate::{events_of, stderr, vigilo};

/// Serves a page whose title is named by its path, on a loopback port, for as long as the test.
fn serve_pages() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let mut reader = BufReader::new(stream);
            let mut request = String::new();
            if reader.read_line(&mut request).is_err() {
                continue;
            }
            let path = request.split_whitespace().nth(1).unwrap_or("/").to_string();
            let mut header = String::new();
            while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
                header.clear();
            }
            let title = match path.as_str() {
                p if p.starts_with("/jobs") => "Rust jobs",
                p if p.starts_with("/report") => "Quarterly report",
                _ => "Somewhere else",
            };
            let body =
                format!("<html><head><title>{title}</title></head><body>{title}</body></html>");
            let mut stream = reader.into_inner();
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

/// Starts Chromium on `desktop` with the extension from `data` and its own profile, at `url`.
fn chromium(desktop: &mut Desktop, data: &Path, profile: &Path, port: u16, url: &str) {
    let extension = data.join("browser-extension");
    let extension = extension.to_str().expect("utf-8");
    let rules = format!("MAP *.indeed.com 127.0.0.1:{port}, MAP *.example.com 127.0.0.1:{port}");
    desktop.launch(
        "chromium",
        &[
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            // Plain http pages on loopback: no detour through an https attempt.
            "--disable-features=HttpsUpgrades",
            &format!("--host-resolver-rules={rules}"),
            &format!("--user-data-dir={}", profile.display()),
            &format!("--load-extension={extension}"),
            &format!("--disable-extensions-except={extension}"),
            url,
        ],
    );
}

#[test]
fn the_page_in_a_real_chromium_reaches_alarms_with_its_url_and_domain() {
    let mut desktop = Desktop::start();
    let port = serve_pages();
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let profile = dir.path().join("chromium-profile");
    let out = vigilo(
        &data,
        &[
            "install-browser-host",
            "--profile",
            profile.to_str().expect("utf-8"),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    let agent = Agent::start_with(&data, Some(&desktop.display), &["-vv"]);
    upload_pack(
        &agent,
        &data,
        "reading",
        r#"[[alarm]]
name = "Report read for 2 seconds"
conditions = [
  { field = "primary_domain", op = "eq", value = "example.com" },
  { field = "url", op = "contains", value = "/report" },
  { field = "duration", op = "gte", value = 2 },
]
risk = 3
"#,
    );

    // A job board, by its real name: the standard pack's "Job-search sites" knows it by its
    // registrable domain.
    chromium(
        &mut desktop,
        &data,
        &profile,
        port,
        "http://uk.indeed.com/jobs/rust",
    );
    wait_for_alarms(&data, "Job-search sites", 1);

    // Then the person types another address, and stays on the page.
    let typed = [
        vec!["key", "--clearmodifiers", "ctrl+l"],
        vec!["type", "--delay", "5", "http://docs.example.com/report?q=4"],
        vec!["key", "Return"],
    ];
    for args in typed {
        let out = desktop.run("xdotool", &args);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    wait_for_alarms(&data, "Report read for 2 seconds", 1);
    let alarms = agent.stop();

    let event = |name: &str| -> serde_json::Value {
        let fired = events_of(&alarms, name);
        (*fired
            .first()
            .unwrap_or_else(|| panic!("{name} fired: {alarms:?}")))
        .clone()
    };
    let jobs = event("Job-search sites");
    assert_eq!(jobs["url"], "http://uk.indeed.com/jobs/rust");
    assert_eq!(jobs["primary_domain"], "indeed.com");
    assert_eq!(jobs["title"], "Rust jobs - Chromium");
    assert_eq!(
        jobs["description"], "Chromium Web Browser",
        "from chromium.desktop"
    );
    assert!(
        jobs["executable"]
            .as_str()
            .is_some_and(|e| e.ends_with("/chromium")),
        "{jobs}"
    );
    let report = event("Report read for 2 seconds");
    assert_eq!(report["url"], "http://docs.example.com/report?q=4");
    assert_eq!(report["primary_domain"], "example.com");
    assert_eq!(report["title"], "Quarterly report - Chromium");
    assert_eq!(report["duration"], 2.0);
    assert_eq!(report["pid"], jobs["pid"], "one browser process");
}
