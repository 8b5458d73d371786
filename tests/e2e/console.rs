//! The console in a real headless Chromium (driven through chromedriver, WebDriver): refused
//! without a session, log in with the admin token, see an alarm with its real screenshot and video,
//! upload a good pack and a bad one (the errors shown, nothing changed), roll back, look at the
//! risk and agent pages, log out. Page screenshots are saved under
//! `target/e2e-artifacts/console/` for people to look at (CI keeps them).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};

use crate::agent::build;
use crate::desktop::{Scene, wait_for_alarms};
use crate::{stdout, tar, vigilo};

/// chromedriver on a free loopback port, stopped with the test.
pub struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    pub fn start() -> Driver {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (Debian: chromium-driver) runs");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where the page screenshots of `area` go.
fn artifacts(area: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/e2e-artifacts")
        .join(area);
    std::fs::create_dir_all(&dir).expect("artifact folder");
    dir
}

/// A headless Chromium session through `driver`.
pub async fn browser(driver: &Driver) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": "/usr/bin/chromium",
            "args": ["--headless", "--no-sandbox", "--disable-gpu",
                     "--disable-background-networking", "--window-size=1366,900"],
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a Chromium session")
}

async fn shot(c: &Client, name: &str) {
    shot_of(c, "console", name).await;
}

/// Saves the page as `target/e2e-artifacts/AREA/NAME.png`.
pub async fn shot_of(c: &Client, area: &str, name: &str) {
    let png = c.screenshot().await.expect("screenshot");
    std::fs::write(artifacts(area).join(format!("{name}.png")), png).expect("save screenshot");
}

/// Opens the console at `base` and logs in with `token`.
pub async fn log_in(c: &Client, base: &str, token: &str) {
    c.goto(&format!("{base}/console/login"))
        .await
        .expect("goto");
    c.find(Locator::Css("#token"))
        .await
        .expect("token field")
        .send_keys(token)
        .await
        .expect("type");
    submit(c, "input[type=submit]").await;
}

/// Clicks `css` (a submit button) and waits for the next page to have loaded: a click
/// returns before the browser has navigated.
pub async fn submit(c: &Client, css: &str) {
    c.execute("window.vigiloOldPage = true", vec![])
        .await
        .expect("mark the page");
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .expect("click");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let loaded = c
            .execute(
                "return document.readyState === 'complete' && !window.vigiloOldPage",
                vec![],
            )
            .await
            .unwrap_or_default();
        if loaded == true {
            return;
        }
        assert!(Instant::now() < deadline, "no page after clicking {css}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The natural widths of the capture images on an alarm's page, as they loaded (0: broken).
pub async fn capture_widths(c: &Client) -> serde_json::Value {
    c.execute(
        "return [...document.querySelectorAll('#captures figure img')].map(i => i.naturalWidth)",
        vec![],
    )
    .await
    .expect("script")
}

/// The text of the element `css` selects (failing with the page's text when there is none).
pub async fn text_of(c: &Client, css: &str) -> String {
    match c.find(Locator::Css(css)).await {
        Ok(e) => e.text().await.expect("text"),
        Err(e) => {
            let url = c
                .current_url()
                .await
                .map(|u| u.to_string())
                .unwrap_or_default();
            let page = match c.find(Locator::Css("body")).await {
                Ok(b) => b.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            panic!("{css}: {e}\non {url}:\n{page}")
        }
    }
}

/// A pack folder named `name` at `version` with one recording alarm.
fn pack_dir(root: &Path, name: &str, version: &str) -> PathBuf {
    let dir = root.join(format!("{name}-{version}"));
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(
        dir.join("pack.toml"),
        format!(
            "[pack]\nname = \"{name}\"\nversion = \"{version}\"\n\n[[alarm]]\nname = \"Calculator open\"\n\
             conditions = [ {{ field = \"executable\", op = \"ends_with\", value = \"calc\" }} ]\nrisk = 2\n"
        ),
    )
    .expect("write pack");
    dir
}

#[test]
fn an_admin_logs_in_sees_a_screenshot_and_manages_packs_in_a_real_browser() {
    let scene = Scene::start(
        &["vigilo-e2e-other", "vigilo-e2e-console"],
        "shots",
        r#"[grants]
actions = ["screenshot", "video"]

[[alarm]]
name = "Console window"
conditions = [ { field = "title", op = "eq", value = "vigilo-e2e-console" } ]
risk = 7
actions = [ { screenshot = {} }, { video = { before = "2s", after = "2s" } } ]
"#,
    );
    let data = &scene.data;
    // Focus moves to the watched window under the uploaded pack's rules.
    scene.desktop.activate(&scene.windows[0].0);
    scene.desktop.activate(&scene.windows[1].0);
    wait_for_alarms(data, "Console window", 1);
    let alarm: serde_json::Value = {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let out = vigilo(data, &["alarms", "--json", "--alarm", "Console window"]);
            let a: serde_json::Value =
                serde_json::from_str(stdout(&out).lines().next().expect("alarm")).expect("json");
            let done = |i: usize| a["outcomes"][i]["state"] == "done";
            if done(0) && done(1) {
                break a;
            }
            assert!(Instant::now() < deadline, "no screenshot: {a}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let id = alarm["id"].as_i64().expect("id");
    let base = scene.agent.url.clone();
    let token = scene.agent.token.clone();

    // Packs to upload: a good one at 1.0.0 and 1.1.0, and one that does not load.
    let work = data.parent().expect("parent").to_path_buf();
    let v1 = build(data, &pack_dir(&work, "calc-watch", "1.0.0"));
    let v2 = build(data, &pack_dir(&work, "calc-watch", "1.1.0"));
    let bad_dir = work.join("bad");
    std::fs::create_dir_all(&bad_dir).expect("mkdir");
    std::fs::write(
        bad_dir.join("pack.toml"),
        "[pack]\nname = \"calc-watch\"\nversion = \"9.9.9\"\n\n[[alarm]]\nname = \"Broken\"\n\
         conditions = [ { field = \"title\", op = \"resembles\", value = \"x\" } ]\nrisk = 2\n",
    )
    .expect("write");
    let bad = work.join("bad.tar.gz");
    tar(&[
        "-czf",
        bad.to_str().expect("p"),
        "-C",
        bad_dir.to_str().expect("p"),
        "pack.toml",
    ]);

    // Without a session: no page, no screenshot.
    let http = crate::agent::http();
    let capture = format!("{base}/console/alarms/{id}/captures/0");
    let refused = http.get(&capture).send().expect("request");
    assert_eq!(refused.status(), 401, "a screenshot needs a session");
    let forged = http
        .post(format!("{base}/console/packs/calc-watch/disable"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("csrf=guess")
        .send()
        .expect("request");
    assert_eq!(forged.status(), 401, "a change needs a session");

    let driver = Driver::start();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let c = browser(&driver).await;
        c.goto(&format!("{base}/console/alarms"))
            .await
            .expect("goto");
        let url = c.current_url().await.expect("url");
        assert_eq!(url.path(), "/console/login", "sent to log in first");
        shot(&c, "01-login").await;

        // A wrong token is refused; the right one opens the alarms.
        c.find(Locator::Css("#token"))
            .await
            .expect("token field")
            .send_keys("not-it")
            .await
            .expect("type");
        submit(&c, "input[type=submit]").await;
        assert!(
            text_of(&c, ".flash.error")
                .await
                .contains("not the admin token")
        );
        c.find(Locator::Css("#token"))
            .await
            .expect("token field")
            .send_keys(&token)
            .await
            .expect("type");
        submit(&c, "input[type=submit]").await;
        let table = text_of(&c, "#alarms").await;
        assert!(table.contains("Console window"), "{table}");
        shot(&c, "02-alarms").await;

        // The alarm, its event and its screenshot (a real 1280×800 PNG, loaded by the browser).
        c.goto(&format!("{base}/console/alarms/{id}"))
            .await
            .expect("goto");
        assert!(text_of(&c, "#event").await.contains("vigilo-e2e-console"));
        assert!(text_of(&c, "#actions").await.contains("done"));
        // The screenshot and the video (an animated PNG) both load in the page, full size.
        let widths = capture_widths(&c).await;
        assert_eq!(
            widths,
            serde_json::json!([1280, 1280]),
            "screenshot and video show"
        );
        assert!(text_of(&c, "#captures").await.contains("video"));
        shot(&c, "03-alarm").await;

        // A good pack: uploaded and listed.
        c.goto(&format!("{base}/console/packs"))
            .await
            .expect("goto");
        let upload = |path: PathBuf| {
            let c = c.clone();
            async move {
                c.find(Locator::Css("#upload input[name=archive]"))
                    .await
                    .expect("file field")
                    .send_keys(path.to_str().expect("p"))
                    .await
                    .expect("choose file");
                submit(&c, "#upload input[type=submit]").await;
            }
        };
        upload(v1.clone()).await;
        assert!(
            text_of(&c, ".flash.ok")
                .await
                .contains("calc-watch 1.0.0 uploaded")
        );
        let row = "#packs tr[data-pack=calc-watch]";
        assert!(text_of(&c, row).await.contains("1.0.0"));

        // A bad one: every error shown, nothing changed.
        upload(bad.clone()).await;
        let errors = text_of(&c, ".flash.error").await;
        assert!(
            errors.contains("Nothing changed") && errors.contains("resembles"),
            "{errors}"
        );
        assert!(text_of(&c, row).await.contains("1.0.0"), "still 1.0.0");
        shot(&c, "04-bad-pack").await;

        // A newer version, then a roll back to the one before.
        upload(v2.clone()).await;
        assert!(text_of(&c, row).await.contains("1.1.0"));
        submit(&c, &format!("{row} form[action$=rollback] button")).await;
        assert!(
            text_of(&c, ".flash.ok")
                .await
                .contains("rolled back to 1.0.0")
        );
        assert!(text_of(&c, row).await.contains("1.0.0"));
        assert!(text_of(&c, "#audit").await.contains("pack_rolled_back"));
        shot(&c, "05-packs").await;

        // Risk and the agent.
        c.goto(&format!("{base}/console/risk")).await.expect("goto");
        assert!(text_of(&c, "#ranking").await.contains("Console window"));
        let chart = c
            .execute(
                "return document.querySelector('.chart img').naturalWidth",
                vec![],
            )
            .await
            .expect("script");
        assert_eq!(chart, 960, "the chart is drawn");
        shot(&c, "06-risk").await;
        c.goto(&format!("{base}/console/agent"))
            .await
            .expect("goto");
        assert!(text_of(&c, "#sources").await.contains("x11"));
        shot(&c, "07-agent").await;

        // Logged out: back to the login page.
        submit(&c, "header form button").await;
        c.goto(&format!("{base}/console/packs"))
            .await
            .expect("goto");
        assert_eq!(c.current_url().await.expect("url").path(), "/console/login");
        c.close().await.expect("close");
    });
    scene.agent.stop();
}
