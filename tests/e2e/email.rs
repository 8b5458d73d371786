//! E-mail from the running agent to a real SMTP server on loopback (PyPI `aiosmtpd`, writing a
//! maildir): templates filled from the event, the alarm's screenshot attached as a PNG.

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::agent::Agent;
use crate::desktop::{Desktop, upload_pack, wait_for_alarms};
use crate::{settled_outcome, stdout};

/// `python3 -m aiosmtpd` on a free port, delivering into a maildir; stopped on drop.
struct SmtpServer {
    port: u16,
    child: Child,
}

impl SmtpServer {
    fn start(maildir: &Path) -> SmtpServer {
        for sub in ["cur", "new", "tmp"] {
            std::fs::create_dir_all(maildir.join(sub)).expect("maildir");
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("port")
            .port();
        let child = Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(maildir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 -m aiosmtpd (scripts/test.sh installs it)");
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "aiosmtpd did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        SmtpServer { port, child }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn an_alarm_mails_the_soc_with_filled_templates_and_its_screenshot() {
    let mut desktop = Desktop::start();
    let (other, _) = desktop.window("vigilo-e2e-other");
    let (mailed, _) = desktop.window("vigilo-e2e-mailed");
    let dir = tempfile::tempdir().expect("tempdir");
    let maildir = dir.path().join("maildir");
    let smtp = SmtpServer::start(&maildir);
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).expect("data");
    std::fs::write(
        data.join("agent.toml"),
        format!(
            "[email]\nurl = \"smtp://127.0.0.1:{}\"\nfrom = \"vigilo <vigilo@example.com>\"\n",
            smtp.port
        ),
    )
    .expect("agent.toml");
    let agent = Agent::start_on(&data, Some(&desktop.display));
    upload_pack(
        &agent,
        &data,
        "mail",
        r#"[grants]
actions = ["screenshot", "email"]
email_to = ["soc@example.com"]

[[alarm]]
name = "Mailed window"
conditions = [ { field = "title", op = "eq", value = "vigilo-e2e-mailed" } ]
risk = 5
actions = [
  { screenshot = {} },
  { email = { to = ["soc@example.com"], subject = "{{alarm}}: {{username}} on {{computer}}", body = "{{title}} ({{executable}}) at {{time}}" } },
]
"#,
    );
    desktop.activate(&other);
    desktop.activate(&mailed);
    wait_for_alarms(&data, "Mailed window", 1);
    let deadline = Instant::now() + Duration::from_secs(60);
    let message = loop {
        let mut files: Vec<_> = std::fs::read_dir(maildir.join("new"))
            .expect("new")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .collect();
        if let Some(f) = files.pop() {
            break std::fs::read_to_string(f).expect("message");
        }
        assert!(Instant::now() < deadline, "no mail arrived");
        std::thread::sleep(Duration::from_millis(100));
    };
    let out = vigilo_alarm_json(&data);
    agent.stop();

    let me = stdout(&Command::new("id").arg("-un").output().expect("id"));
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").expect("hostname");
    let expected_subject = format!("Subject: Mailed window: {} on {}", me.trim(), host.trim());
    assert!(message.contains(&expected_subject), "{message}");
    assert!(message.contains("To: soc@example.com"), "{message}");
    assert!(
        message.contains("vigilo-e2e-mailed (/usr/bin/xterm) at "),
        "{message}"
    );
    let id = out["id"].as_i64().expect("id");
    assert!(
        message.contains(&format!("filename=\"{id}-0-1.png\"")),
        "the screenshot is attached: {message}"
    );
    // The attachment is the PNG (base64 of its signature: "iVBORw0KGgo").
    assert!(message.contains("iVBORw0KGgo"), "{message}");
    assert_eq!(out["outcomes"][1]["kind"], "email");
    assert_eq!(out["outcomes"][1]["state"], "done", "{out}");
}

/// The newest "Mailed window" alarm once both its actions settled.
fn vigilo_alarm_json(data: &Path) -> serde_json::Value {
    let _ = settled_outcome(data, "Mailed window");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = crate::vigilo(data, &["alarms", "--json", "--alarm", "Mailed window"]);
        let a: serde_json::Value =
            serde_json::from_str(stdout(&out).lines().next().expect("alarm")).expect("json");
        if a["outcomes"][1]["state"] != "pending" {
            return a;
        }
        assert!(Instant::now() < deadline, "{a}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
