//! Deterministic synthetic data: a recorded-looking workday, mixed event streams and generated
//! alarm packs, for the example files, the benchmarks and the engine's cross-check tests.
//!
//! Everything is seeded: the same seed gives the same output on every machine, so a benchmark
//! figure or a failing test can be reproduced exactly.

use std::fmt::Write;

use chrono::{DateTime, Duration, FixedOffset, NaiveDate, TimeZone, Utc};
use fastrand::Rng;

use crate::event::{Event, EventKind, Field};
use crate::packs::Pack;

/// A web destination: primary domain, URL, window title.
struct Site {
    domain: &'static str,
    url: &'static str,
    title: &'static str,
}

const fn site(domain: &'static str, url: &'static str, title: &'static str) -> Site {
    Site { domain, url, title }
}

const WORK_SITES: &[Site] = &[
    site(
        "google.com",
        "https://docs.google.com/document/d/1x/edit",
        "Q4 plan - Google Docs",
    ),
    site(
        "google.com",
        "https://mail.google.com/mail/u/0/#inbox",
        "Inbox (12) - Gmail",
    ),
    site(
        "github.com",
        "https://github.com/acme/api/pulls",
        "Pull requests · acme/api",
    ),
    site(
        "atlassian.net",
        "https://acme.atlassian.net/browse/OPS-4411",
        "[OPS-4411] Rotate certificates - Jira",
    ),
    site(
        "stackoverflow.com",
        "https://stackoverflow.com/questions/1/tokio-select",
        "rust - tokio::select! in a loop - Stack Overflow",
    ),
    site(
        "wikipedia.org",
        "https://en.wikipedia.org/wiki/Aho%E2%80%93Corasick_algorithm",
        "Aho–Corasick algorithm - Wikipedia",
    ),
    site(
        "salesforce.com",
        "https://acme.lightning.force.com/lightning/o/Account/list",
        "Accounts | Salesforce",
    ),
    site(
        "office.com",
        "https://www.office.com/launch/excel",
        "Forecast.xlsx - Excel",
    ),
    site("zoom.us", "https://acme.zoom.us/j/9912", "Zoom Meeting"),
    site(
        "slack.com",
        "https://app.slack.com/client/T1/C2",
        "general - Acme - Slack",
    ),
];

const LEISURE_SITES: &[Site] = &[
    site(
        "youtube.com",
        "https://www.youtube.com/watch?v=dQw4w9WgXcQ",
        "Never Gonna Give You Up - YouTube",
    ),
    site(
        "youtube.com",
        "https://www.youtube.com/watch?v=9bZkp7q19f0",
        "PSY - GANGNAM STYLE - YouTube",
    ),
    site(
        "reddit.com",
        "https://www.reddit.com/r/rust/",
        "r/rust - Reddit",
    ),
    site("facebook.com", "https://www.facebook.com/", "Facebook"),
    site(
        "instagram.com",
        "https://www.instagram.com/explore/",
        "Instagram",
    ),
    site("x.com", "https://x.com/home", "Home / X"),
    site("bbc.co.uk", "https://www.bbc.co.uk/news", "BBC News - Home"),
    site(
        "amazon.com",
        "https://www.amazon.com/gp/cart",
        "Amazon.com Shopping Cart",
    ),
];

const JOB_SITES: &[Site] = &[
    site(
        "linkedin.com",
        "https://www.linkedin.com/jobs/search/?keywords=platform%20engineer",
        "Platform Engineer jobs | LinkedIn",
    ),
    site(
        "indeed.com",
        "https://www.indeed.com/jobs?q=site+reliability",
        "Site Reliability Jobs - Indeed",
    ),
    site(
        "glassdoor.com",
        "https://www.glassdoor.com/Salary/acme-salaries",
        "Acme Salaries | Glassdoor",
    ),
];

const ANONYMISER_SITES: &[Site] = &[
    site(
        "torproject.org",
        "https://www.torproject.org/download/",
        "Download Tor Browser",
    ),
    site(
        "croxyproxy.com",
        "https://www.croxyproxy.com/",
        "CroxyProxy - free web proxy",
    ),
];

const BROWSERS: &[(&str, &str)] = &[
    ("/usr/lib/chromium/chromium", "Chromium"),
    ("/usr/lib/firefox-esr/firefox-esr", "Firefox ESR"),
];

const APPS: &[(&str, &str, &str)] = &[
    (
        "/usr/bin/code",
        "Visual Studio Code",
        "main.rs - api - Visual Studio Code",
    ),
    (
        "/usr/lib/libreoffice/program/soffice.bin",
        "LibreOffice Calc",
        "budget-2027.ods - LibreOffice Calc",
    ),
    (
        "/usr/lib/libreoffice/program/soffice.bin",
        "LibreOffice Writer",
        "Contract draft.odt - LibreOffice Writer",
    ),
    ("/usr/bin/thunderbird", "Thunderbird", "Inbox - Thunderbird"),
    (
        "/usr/bin/gnome-terminal-server",
        "Terminal",
        "dave@ws: ~/src",
    ),
    ("/usr/bin/slack", "Slack", "Slack | general | Acme"),
    (
        "/usr/bin/keepassxc",
        "KeePassXC",
        "Passwords.kdbx - KeePassXC",
    ),
];

/// A USB device: vendor id, product id, vendor, product, class.
struct Device {
    vendor_id: &'static str,
    product_id: &'static str,
    vendor: &'static str,
    product: &'static str,
    class: &'static str,
}

const DEVICES: &[Device] = &[
    Device {
        vendor_id: "0781",
        product_id: "5581",
        vendor: "SanDisk",
        product: "Ultra",
        class: "mass_storage",
    },
    Device {
        vendor_id: "0951",
        product_id: "1666",
        vendor: "Kingston",
        product: "DataTraveler 3.0",
        class: "mass_storage",
    },
    Device {
        vendor_id: "04e8",
        product_id: "4001",
        vendor: "Samsung",
        product: "Portable SSD T7",
        class: "mass_storage",
    },
    Device {
        vendor_id: "046d",
        product_id: "c52b",
        vendor: "Logitech",
        product: "Unifying Receiver",
        class: "hid",
    },
    Device {
        vendor_id: "1050",
        product_id: "0407",
        vendor: "Yubico",
        product: "YubiKey OTP+FIDO+CCID",
        class: "hid",
    },
];

const USERS: &[&str] = &[
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory",
    "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter", "yolanda",
];

const FILE_NAMES: &[&str] = &[
    "customers.csv",
    "Q4-forecast.xlsx",
    "roadmap.pdf",
    "payroll-2026.xlsx",
    "design/specs.docx",
    "photos/IMG_2041.jpg",
    "src.tar.gz",
    "contract-signed.pdf",
    "notes.txt",
    "backup/db.sql",
];

/// Builds activity, usb and account events for one user on one computer.
struct Person<'a> {
    user: &'a str,
    computer: String,
    ip: String,
    pid: u32,
}

impl Person<'_> {
    fn base(&self, kind: EventKind, ts: DateTime<FixedOffset>) -> Event {
        let mut e = Event::new(kind, ts).with_text(Field::Computer, &self.computer);
        e.set_text(Field::Username, self.user);
        e
    }

    fn browse(&self, ts: DateTime<FixedOffset>, secs: i64, s: &Site, browser: usize) -> Event {
        let (exe, desc) = BROWSERS[browser % BROWSERS.len()];
        self.window(ts, secs, exe, desc, s.title)
            .with_text(Field::Url, s.url)
            .with_text(Field::PrimaryDomain, s.domain)
    }

    fn window(
        &self,
        ts: DateTime<FixedOffset>,
        secs: i64,
        exe: &str,
        desc: &str,
        title: &str,
    ) -> Event {
        self.base(EventKind::Activity, ts)
            .with_text(Field::LogonDomain, "ACME")
            .with_text(Field::PrivateIp, &self.ip)
            .with_text(Field::Executable, exe)
            .with_text(Field::Title, title)
            .with_text(Field::Description, desc)
            .with_number(Field::Duration, secs as f64)
            .with_number(Field::Pid, f64::from(self.pid))
    }

    fn usb(&self, ts: DateTime<FixedOffset>, action: &str, d: &Device, serial: &str) -> Event {
        let mut e = self
            .base(EventKind::Usb, ts)
            .with_text(Field::Action, action)
            .with_text(Field::VendorId, d.vendor_id)
            .with_text(Field::ProductId, d.product_id)
            .with_text(Field::Vendor, d.vendor)
            .with_text(Field::Product, d.product)
            .with_text(Field::Serial, serial)
            .with_text(Field::DeviceClass, d.class);
        if d.class == "mass_storage" {
            e.set_text(
                Field::MountPoint,
                &format!("/media/{}/{}", self.user, d.vendor.to_uppercase()),
            );
        }
        e
    }
}

fn account(
    ts: DateTime<FixedOffset>,
    actor: &str,
    name: &str,
    object: &str,
    detail: &str,
) -> Event {
    Event::new(EventKind::Account, ts)
        .with_text(Field::Actor, actor)
        .with_text(Field::Computer, "mgmt-01")
        .with_text(Field::EventName, name)
        .with_text(
            Field::ActionType,
            if name.starts_with("console") {
                "session"
            } else {
                "configuration"
            },
        )
        .with_text(Field::ActionObject, object)
        .with_text(Field::Detail, detail)
}

/// What a scripted user does at some point of the day, so the example exercises every
/// standard alarm (and a few near-misses that must not fire).
#[derive(Clone, Copy)]
enum Scene {
    LongYouTube,
    TrainingVideo,
    LongSocial,
    JobHunt,
    UsbCopy,
    HidOnly,
    Tor,
    Torrent,
    ShortYouTube,
}

/// A recorded workday: `users` people (at most 20) from about 08:30 to 17:30 on `date` (UTC),
/// focus changes with their recorded durations, USB and account events, sorted by time.
/// Scripted scenes make every standard alarm fire at least once.
pub fn workday(date: NaiveDate, users: usize, seed: u64) -> Vec<Event> {
    let mut rng = Rng::with_seed(seed);
    let midnight = Utc
        .from_utc_datetime(&date.and_hms_opt(0, 0, 0).unwrap_or_default())
        .fixed_offset();
    let scenes: &[(usize, Scene, i64)] = &[
        (0, Scene::LongYouTube, 12 * 60 + 30),
        (1, Scene::LongSocial, 14 * 60),
        (2, Scene::JobHunt, 11 * 60),
        (2, Scene::JobHunt, 16 * 60),
        (3, Scene::UsbCopy, 10 * 60 + 15),
        (4, Scene::Tor, 15 * 60),
        (5, Scene::Torrent, 13 * 60 + 10),
        (6, Scene::TrainingVideo, 9 * 60 + 30),
        (7, Scene::HidOnly, 8 * 60 + 45),
        (8, Scene::ShortYouTube, 12 * 60 + 5),
        (9, Scene::UsbCopy, 15 * 60 + 40),
    ];
    let mut events = Vec::new();
    for (u, user) in USERS.iter().enumerate().take(users.min(USERS.len())) {
        let person = Person {
            user,
            computer: format!("ws-{user}-{:02}", u + 1),
            ip: format!("10.20.{}.{}", 1 + u / 200, 10 + u % 200),
            pid: 2000 + rng.u32(0..30000),
        };
        let browser = rng.usize(..BROWSERS.len());
        let mut t = 8 * 3600 + 20 * 60 + rng.i64(0..1200);
        let end = 17 * 3600 + 20 * 60 + rng.i64(0..1200);
        let mut my_scenes: Vec<(Scene, i64)> = scenes
            .iter()
            .filter(|(who, _, _)| *who == u)
            .map(|(_, s, m)| (*s, m * 60))
            .collect();
        while t < end {
            let ts = midnight + Duration::seconds(t);
            if let Some(pos) = my_scenes.iter().position(|(_, at)| *at <= t) {
                let (scene, _) = my_scenes.remove(pos);
                t += play(scene, &person, ts, browser, &mut rng, &mut events);
                continue;
            }
            let roll = rng.u32(0..100);
            let secs = match roll {
                0..=44 => {
                    let s = &WORK_SITES[rng.usize(..WORK_SITES.len())];
                    let secs = short_span(&mut rng, 600);
                    events.push(person.browse(ts, secs, s, browser));
                    secs
                }
                45..=84 => {
                    let (exe, desc, title) = APPS[rng.usize(..APPS.len())];
                    let secs = short_span(&mut rng, 1500);
                    events.push(person.window(ts, secs, exe, desc, title));
                    secs
                }
                85..=94 => {
                    // Short leisure: never long enough for the time alarms.
                    let s = &LEISURE_SITES[rng.usize(..LEISURE_SITES.len())];
                    let secs = short_span(&mut rng, 400);
                    events.push(person.browse(ts, secs, s, browser));
                    secs
                }
                _ => rng.i64(120..1500), // away from the desk: no event, a gap
            };
            t += secs + rng.i64(0..20);
        }
    }
    // The admin's console session and setup changes.
    let admin = |h: i64, m: i64| midnight + Duration::seconds(h * 3600 + m * 60);
    events.push(account(
        admin(9, 2),
        "it-admin",
        "console_login",
        "console",
        "from 127.0.0.1",
    ));
    events.push(account(
        admin(9, 5),
        "it-admin",
        "pack_uploaded",
        "acme-dlp 1.4.0",
        "sha256 9f2c…e1",
    ));
    events.push(account(
        admin(16, 40),
        "it-admin",
        "alarm_deleted",
        "Job-search sites",
        "in pack acme-dlp",
    ));
    events.push(account(
        admin(16, 41),
        "it-admin",
        "console_logout",
        "console",
        "",
    ));
    events.sort_by_key(Event::ts);
    events
}

/// A focus span's length: mostly short switches, sometimes long stretches, at most `max` s.
fn short_span(rng: &mut Rng, max: i64) -> i64 {
    match rng.u32(0..10) {
        0..=5 => rng.i64(3..60),
        6..=8 => rng.i64(60..300),
        _ => rng.i64(300..max.max(301)),
    }
}

/// Emits one scripted scene; returns how many seconds it took.
fn play(
    scene: Scene,
    p: &Person<'_>,
    ts: DateTime<FixedOffset>,
    browser: usize,
    rng: &mut Rng,
    out: &mut Vec<Event>,
) -> i64 {
    let at = |secs: i64| ts + Duration::seconds(secs);
    match scene {
        Scene::LongYouTube => {
            out.push(p.browse(ts, 25 * 60 + 13, &LEISURE_SITES[0], browser));
            25 * 60 + 20
        }
        Scene::TrainingVideo => {
            let s = site(
                "youtube.com",
                "https://www.youtube.com/watch?v=fire-safety",
                "Fire safety training 2026 - YouTube",
            );
            out.push(p.browse(ts, 32 * 60, &s, browser));
            32 * 60 + 5
        }
        Scene::ShortYouTube => {
            out.push(p.browse(ts, 19 * 60, &LEISURE_SITES[1], browser));
            19 * 60 + 3
        }
        Scene::LongSocial => {
            out.push(p.browse(ts, 71 * 60, &LEISURE_SITES[3], browser));
            71 * 60 + 10
        }
        Scene::JobHunt => {
            let mut t = 0;
            for s in JOB_SITES {
                let secs = rng.i64(60..400);
                out.push(p.browse(at(t), secs, s, browser));
                t += secs + 2;
            }
            t
        }
        Scene::UsbCopy => {
            let d = &DEVICES[rng.usize(..3)];
            let serial = format!("4C53{:012X}", rng.u64(..1 << 40));
            out.push(p.usb(ts, "inserted", d, &serial));
            let mut t = 20;
            for i in 0..rng.usize(8..30) {
                let name = FILE_NAMES[i % FILE_NAMES.len()];
                let mount = format!("/media/{}/{}", p.user, d.vendor.to_uppercase());
                let e = p
                    .usb(at(t), "file_written", d, &serial)
                    .with_text(Field::Path, &format!("{mount}/{i:02}-{name}"))
                    .with_number(Field::Bytes, rng.u64(4_000..80_000_000) as f64);
                out.push(e);
                t += rng.i64(1..15);
            }
            out.push(p.usb(at(t + 30), "removed", d, &serial));
            // While copying, the user sat in the file manager.
            out.push(p.window(ts, t + 30, "/usr/bin/nautilus", "Files", d.vendor));
            t + 40
        }
        Scene::HidOnly => {
            let d = &DEVICES[3 + rng.usize(..2)];
            out.push(p.usb(ts, "inserted", d, "0"));
            5
        }
        Scene::Tor => {
            out.push(p.browse(ts, 95, &ANONYMISER_SITES[0], browser));
            let tor = p
                .window(
                    at(100),
                    14 * 60,
                    "/home/erin/tor-browser/Browser/firefox.real",
                    "Tor Browser",
                    "Tor Browser",
                )
                .with_text(
                    Field::Url,
                    "http://duckduckgogg42xjoc72x3sjasowoarfbgcmvfimaftt6twagswzczad.onion/",
                )
                .with_text(
                    Field::PrimaryDomain,
                    "duckduckgogg42xjoc72x3sjasowoarfbgcmvfimaftt6twagswzczad.onion",
                );
            out.push(tor);
            14 * 60 + 105
        }
        Scene::Torrent => {
            out.push(p.window(
                ts,
                240,
                "/usr/bin/qbittorrent",
                "qBittorrent",
                "qBittorrent v4.6.2",
            ));
            250
        }
    }
}

/// `n` events of all kinds drawn from the same vocabulary as [`generated_pack`], in time order
/// from 2026-11-02T00:00:00Z, one every 50 ms: the benchmark's input.
pub fn mixed_events(n: usize, seed: u64) -> Vec<Event> {
    let mut rng = Rng::with_seed(seed);
    let start = Utc
        .with_ymd_and_hms(2026, 11, 2, 0, 0, 0)
        .single()
        .unwrap_or_default()
        .fixed_offset();
    let people: Vec<Person<'_>> = USERS
        .iter()
        .enumerate()
        .map(|(u, user)| Person {
            user,
            computer: format!("ws-{user}-{:02}", u + 1),
            ip: format!("10.20.0.{}", 10 + u),
            pid: 4000 + u as u32,
        })
        .collect();
    (0..n)
        .map(|i| {
            let ts = start + Duration::milliseconds(50 * i as i64);
            let p = &people[rng.usize(..people.len())];
            match rng.u32(0..100) {
                0..=84 => {
                    let secs = rng.i64(0..4000);
                    if rng.bool() {
                        let sites = [WORK_SITES, LEISURE_SITES, JOB_SITES, ANONYMISER_SITES];
                        let group = sites[[0, 0, 1, 1, 2, 3][rng.usize(..6)]];
                        let mut e =
                            p.browse(ts, secs, &group[rng.usize(..group.len())], rng.usize(..2));
                        // Real URLs and titles rarely repeat exactly: vary them as pages do.
                        let url = e.text(Field::Url).unwrap_or_default();
                        let sep = if url.contains('?') { '&' } else { '?' };
                        let url = format!("{url}{sep}ref={:x}", rng.u64(..));
                        let title = format!(
                            "({}) {}",
                            rng.u32(1..500),
                            e.text(Field::Title).unwrap_or_default()
                        );
                        e.set_text(Field::Url, &url);
                        e.set_text(Field::Title, &title);
                        e
                    } else {
                        let (exe, desc, title) = APPS[rng.usize(..APPS.len())];
                        p.window(ts, secs, exe, desc, title)
                    }
                }
                85..=97 => {
                    let d = &DEVICES[rng.usize(..DEVICES.len())];
                    let action =
                        ["inserted", "removed", "file_written", "file_written"][rng.usize(..4)];
                    let mut e = p.usb(ts, action, d, "AA0012");
                    if action == "file_written" {
                        e.set_text(Field::Path, FILE_NAMES[rng.usize(..FILE_NAMES.len())]);
                        e.set_number(Field::Bytes, rng.u64(..100_000_000) as f64);
                    }
                    e
                }
                _ => {
                    let names = [
                        "pack_uploaded",
                        "console_login",
                        "alarm_changed",
                        "pack_disabled",
                    ];
                    account(
                        ts,
                        "it-admin",
                        names[rng.usize(..names.len())],
                        "acme-dlp",
                        "",
                    )
                }
            }
        })
        .collect()
}

/// A pack of `n` generated alarms — mixed fields, every operator, nested `any`/`all` groups,
/// exceptions, a few case-sensitive comparisons and regexes — loaded through the real pack
/// loader.
pub fn generated_pack(n: usize, seed: u64) -> Pack {
    let text = generated_pack_text(n, seed);
    // The generator only writes what the loader accepts; a failure here is a bug in this file.
    Pack::from_manifest_text("generated", &text, "generated")
        .unwrap_or_else(|e| panic!("generated pack does not load:\n{e}\n{text}"))
}

/// The `pack.toml` text behind [`generated_pack`].
///
/// Like real packs, most alarms are anchored on something specific — a domain, an application,
/// a device — that most events do not have: each such alarm starts with a positive literal
/// comparison (half of them on values absent from the generated events, as in long deny-lists),
/// then adds up to two more conditions of any sort (numbers, negations, nested groups, regexes).
/// One alarm in ten is "broad": two or three conditions of any sort, negative and numeric ones
/// included, with no literal to anchor on.
pub fn generated_pack_text(n: usize, seed: u64) -> String {
    let mut rng = Rng::with_seed(seed);
    let mut out = String::from("[pack]\nname = \"generated\"\nversion = \"1.0.0\"\n");
    for i in 0..n {
        let kind = [
            EventKind::Activity,
            EventKind::Activity,
            EventKind::Activity,
            EventKind::Usb,
            EventKind::Account,
        ][rng.usize(..5)];
        let (mode, conds): (&str, Vec<String>) = match rng.u32(0..20) {
            0..=1 => (
                "all",
                (0..rng.usize(2..4))
                    .map(|_| gen_condition(kind, &mut rng, 0))
                    .collect(),
            ),
            2..=4 => (
                "any",
                (0..rng.usize(2..5))
                    .map(|_| gen_literal(kind, &mut rng))
                    .collect(),
            ),
            _ => {
                let mut c = vec![gen_literal(kind, &mut rng)];
                c.extend((0..rng.usize(0..3)).map(|_| gen_condition(kind, &mut rng, 0)));
                ("all", c)
            }
        };
        let _ = write!(
            out,
            "\n[[alarm]]\nname = \"generated {i:03}\"\nkind = \"{kind}\"\nmatch = \"{mode}\"\nrisk = {}\nconditions = [{}]\n",
            rng.u8(1..=10),
            conds.join(", ")
        );
        if rng.u32(0..5) == 0 {
            let _ = writeln!(out, "unless = [{}]", gen_condition(kind, &mut rng, 1));
        }
    }
    out
}

/// A positive literal comparison (`eq`, `in`, `contains`, `starts_with`, `ends_with`); half the
/// time on a value the generated events never carry.
fn gen_literal(kind: EventKind, rng: &mut Rng) -> String {
    let (field, words) = text_vocabulary(kind)[rng.usize(..text_vocabulary(kind).len())];
    let word = |rng: &mut Rng| -> String {
        if rng.bool() {
            words[rng.usize(..words.len())].to_string()
        } else {
            format!(
                "{}-{}",
                ["intranet", "vendor", "corp", "tool", "site"][rng.usize(..5)],
                rng.u32(1000..99999)
            )
        }
    };
    let cs = if rng.u32(0..10) == 0 {
        ", case_sensitive = true"
    } else {
        ""
    };
    match rng.u32(0..10) {
        0..=3 => format!(
            "{{ field = \"{field}\", op = \"contains\", value = {}{cs} }}",
            quoted(&word(rng))
        ),
        4..=5 => format!(
            "{{ field = \"{field}\", op = \"eq\", value = {}{cs} }}",
            quoted(&word(rng))
        ),
        6..=7 => {
            // Lists: `in`, or "any of" for the substring operators.
            let op = ["in", "in", "contains", "ends_with"][rng.usize(..4)];
            let list: Vec<String> = (0..rng.usize(2..7)).map(|_| quoted(&word(rng))).collect();
            format!(
                "{{ field = \"{field}\", op = \"{op}\", value = [{}]{cs} }}",
                list.join(", ")
            )
        }
        8 => format!(
            "{{ field = \"{field}\", op = \"starts_with\", value = {}{cs} }}",
            quoted(&word(rng))
        ),
        _ => format!(
            "{{ field = \"{field}\", op = \"ends_with\", value = {}{cs} }}",
            quoted(&word(rng))
        ),
    }
}

/// Text fields per kind, with words the generated events carry.
fn text_vocabulary(kind: EventKind) -> &'static [(Field, &'static [&'static str])] {
    match kind {
        EventKind::Activity => &[
            (
                Field::Url,
                &[
                    "youtube.com/watch",
                    "reddit.com/r/",
                    "/jobs",
                    "github.com/acme",
                    "?v=",
                    "docs.google.com",
                    "force.com",
                    "dropbox.com",
                    "wetransfer.com",
                    "pastebin.com",
                ],
            ),
            (
                Field::PrimaryDomain,
                &[
                    "youtube.com",
                    "facebook.com",
                    "indeed.com",
                    "github.com",
                    "x.com",
                    "torproject.org",
                    "dropbox.com",
                    "mega.nz",
                ],
            ),
            (
                Field::Title,
                &[
                    "YouTube",
                    "Gmail",
                    "Jira",
                    "Forecast",
                    "Salaries",
                    "Reddit",
                    "Zoom Meeting",
                    "ü",
                    "Confidential",
                    "Passwords",
                ],
            ),
            (
                Field::Executable,
                &[
                    "chromium",
                    "firefox",
                    "soffice",
                    "keepassxc",
                    "qbittorrent",
                    "wireshark",
                    "anydesk",
                    "teamviewer",
                    "nmap",
                ],
            ),
            (
                Field::Username,
                &["alice", "bob", "mallory", "trent", "walter"],
            ),
            (
                Field::Description,
                &[
                    "Chromium",
                    "LibreOffice Calc",
                    "Terminal",
                    "Visual Studio Code",
                    "Wireshark",
                ],
            ),
        ],
        EventKind::Usb => &[
            (
                Field::Vendor,
                &["SanDisk", "Kingston", "Samsung", "Logitech"],
            ),
            (Field::DeviceClass, &["mass_storage", "hid"]),
            (Field::Action, &["inserted", "removed", "file_written"]),
            (Field::Path, &[".xlsx", "payroll", "backup/", ".pdf"]),
            (Field::VendorId, &["0781", "04e8", "046d"]),
        ],
        EventKind::Account => &[
            (
                Field::EventName,
                &["pack_uploaded", "console_login", "alarm_changed"],
            ),
            (Field::Actor, &["it-admin", "root"]),
        ],
    }
}

fn quoted(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn gen_condition(kind: EventKind, rng: &mut Rng, depth: u32) -> String {
    if depth < 2 && rng.u32(0..6) == 0 {
        let members: Vec<String> = (0..rng.usize(2..4))
            .map(|_| gen_condition(kind, rng, depth + 1))
            .collect();
        let m = if rng.bool() { "any" } else { "all" };
        return format!(
            "{{ match = \"{m}\", conditions = [{}] }}",
            members.join(", ")
        );
    }
    let text_fields = text_vocabulary(kind);
    let numeric: &[(Field, u64)] = match kind {
        EventKind::Activity => &[(Field::Duration, 4000), (Field::Pid, 5000)],
        EventKind::Usb => &[(Field::Bytes, 100_000_000)],
        EventKind::Account => &[],
    };
    if !numeric.is_empty() && rng.u32(0..4) == 0 {
        let (field, max) = numeric[rng.usize(..numeric.len())];
        let op = ["gt", "gte", "lt", "lte", "eq", "ne"][rng.usize(..6)];
        return format!(
            "{{ field = \"{field}\", op = \"{op}\", value = {} }}",
            rng.u64(..max)
        );
    }
    let (field, words) = text_fields[rng.usize(..text_fields.len())];
    let word = words[rng.usize(..words.len())];
    let cs = if rng.u32(0..10) == 0 {
        ", case_sensitive = true"
    } else {
        ""
    };
    match rng.u32(0..20) {
        0 => format!(
            "{{ field = \"{field}\", op = \"matches\", value = {}{cs} }}",
            quoted(&format!("{}$", regex::escape(word)))
        ),
        1..=2 => {
            let list: Vec<String> = words
                .iter()
                .filter(|_| rng.bool())
                .map(|w| quoted(w))
                .chain([quoted(word)])
                .collect();
            let op = if rng.u32(0..4) == 0 { "not_in" } else { "in" };
            format!(
                "{{ field = \"{field}\", op = \"{op}\", value = [{}]{cs} }}",
                list.join(", ")
            )
        }
        _ => {
            let op = [
                "contains",
                "contains",
                "contains",
                "starts_with",
                "ends_with",
                "eq",
                "ne",
                "not_contains",
            ][rng.usize(..8)];
            format!(
                "{{ field = \"{field}\", op = \"{op}\", value = {}{cs} }}",
                quoted(word)
            )
        }
    }
}
