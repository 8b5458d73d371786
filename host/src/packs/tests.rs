use super::*;
use crate::event::{EventKind, KindSet};
use crate::rules::Repeat;

fn load(text: &str) -> Result<Pack, PackError> {
    Pack::from_manifest_text("p", text, "test")
}

fn errors(text: &str) -> Vec<String> {
    load(text)
        .expect_err("pack should be rejected")
        .diagnostics
        .iter()
        .map(|d| d.to_string())
        .collect()
}

const HEADER: &str = "[pack]\nname = \"acme\"\nversion = \"1.2.0\"\n";

#[test]
fn loads_the_example_alarm_from_the_issue() {
    let pack = load(&format!(
        r#"{HEADER}
[grants]
actions = ["screenshot", "popup"]

[[alarm]]
name = "YouTube over 20 minutes"
kind = "activity"
match = "all"
conditions = [
  {{ field = "url", op = "contains", value = "youtube" }},
  {{ field = "duration", op = "gt", value = 1200 }},
  {{ match = "any", conditions = [ {{ field = "username", op = "eq", value = "alice" }},
                                  {{ field = "username", op = "eq", value = "bob" }} ] }},
]
unless = [ {{ field = "title", op = "contains", value = "training" }} ]
risk = 3
actions = [ {{ screenshot = {{ count = 3, interval = "10s" }} }},
            {{ popup = {{ message = "{{{{duration_minutes}}}} minutes on {{{{primary_domain}}}}" }} }} ]
"#
    ))
    .expect("valid pack");
    assert_eq!(pack.name, "acme");
    assert_eq!(pack.version.to_string(), "1.2.0");
    let a = &pack.alarms[0];
    assert_eq!(a.risk, 3);
    assert_eq!(a.kinds, EventKind::Activity.bit());
    assert_eq!(a.when.leaves().len(), 4);
    assert_eq!(a.unless.len(), 1);
    assert_eq!(a.actions.len(), 2);
    assert_eq!(a.repeat, Repeat::OncePerSpan);
}

#[test]
fn the_standard_pack_loads_with_its_nine_alarms() {
    let pack = Pack::standard().expect("standard pack is valid");
    let names: Vec<&str> = pack.alarms.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names.len(), 9, "{names:?}");
    for expected in [
        "YouTube over 20 minutes",
        "USB storage device inserted",
        "File written to USB storage",
        "Tor or anonymiser in use",
        "Torrent client in use",
        "Job-search sites",
        "Social media over 60 minutes",
        "Monitoring setup changed",
        "Computer not reporting",
    ] {
        assert!(names.contains(&expected), "missing {expected}");
    }
}

#[test]
fn infers_kinds_from_fields_when_kind_is_absent() {
    let pack = load(&format!(
        "{HEADER}[[alarm]]\nname = \"a\"\nconditions = [{{ field = \"username\", op = \"eq\", value = \"x\" }}]\n\
         [[alarm]]\nname = \"b\"\nconditions = [{{ field = \"bytes\", op = \"gt\", value = 1 }}]\n"
    ))
    .expect("valid");
    assert_eq!(
        pack.alarms[0].kinds,
        EventKind::Activity.bit().or(EventKind::Usb.bit())
    );
    assert_eq!(pack.alarms[1].kinds, EventKind::Usb.bit());
    assert_ne!(pack.alarms[1].kinds, KindSet::ALL);
}

#[test]
fn every_problem_is_reported_with_its_line_and_column() {
    let text = format!(
        r#"{HEADER}
[[alarm]]
name = "bad"
risk = 11
conditions = [
  {{ field = "usrname", op = "eq", value = "x" }},
  {{ field = "title", op = "containz", value = "x" }},
  {{ field = "title", op = "gt", value = 3 }},
  {{ field = "duration", op = "contains", value = "x" }},
  {{ field = "duration", op = "gt", value = "long" }},
  {{ match = "any", conditions = [] }},
]
cooldown = "soon"
"#
    );
    let errs = errors(&text);
    let expect = [
        ("p/pack.toml:7:8:", "risk must be 1 to 10, found 11"),
        ("p/pack.toml:9:13:", "unknown field \"usrname\""),
        (
            "p/pack.toml:10:27:",
            "unknown operator \"containz\"; expected one of: gt, gte",
        ),
        (
            "p/pack.toml:11:27:",
            "operator `gt` does not apply to `title`, which is text",
        ),
        (
            "p/pack.toml:12:30:",
            "operator `contains` does not apply to `duration`, which is a number",
        ),
        (
            "p/pack.toml:13:44:",
            "`duration` is a number: the value must be a number, found string",
        ),
        ("p/pack.toml:14:3:", "empty group"),
        ("p/pack.toml:16:12:", "cooldown: \"soon\" is not a duration"),
    ];
    assert_eq!(errs.len(), expect.len(), "{errs:#?}");
    for (err, (loc, msg)) in errs.iter().zip(expect) {
        assert!(
            err.starts_with(loc) && err.contains(msg),
            "{err}\n  expected {loc} … {msg}"
        );
    }
}

#[test]
fn rejects_fields_foreign_to_the_declared_kind_and_impossible_mixes() {
    let errs = errors(&format!(
        "{HEADER}[[alarm]]\nname = \"a\"\nkind = \"usb\"\nconditions = [{{ field = \"url\", op = \"contains\", value = \"x\" }}]\n"
    ));
    assert!(
        errs[0].contains("`url` is not a field of usb events"),
        "{errs:?}"
    );
    let errs = errors(&format!(
        "{HEADER}[[alarm]]\nname = \"a\"\nconditions = [{{ field = \"url\", op = \"contains\", value = \"x\" }}, {{ field = \"bytes\", op = \"gt\", value = 1 }}]\n"
    ));
    assert!(errs[0].contains("can never hold together"), "{errs:?}");
}

#[test]
fn rejects_bad_values_regexes_kinds_and_duplicates() {
    let errs = errors(&format!(
        r#"{HEADER}
[[alarm]]
name = "a"
kind = "keyboard"
match = "some"
conditions = [
  {{ field = "title", op = "in", value = [] }},
  {{ field = "title", op = "matches", value = "(" }},
  {{ field = "kind", op = "eq", value = "mouse" }},
  {{ field = "title", op = "eq" }},
  {{ }},
  {{ field = "title", op = "eq", value = "x", match = "any" }},
]
actions = [ {{ popup = {{}} }} ]
repeat = "always"

[[alarm]]
name = "a"
conditions = [ {{ field = "title", op = "eq", value = "x" }} ]
"#
    ));
    let joined = errs.join("\n");
    for needle in [
        "unknown kind \"keyboard\"",
        "unknown match \"some\"",
        "`in` takes a non-empty list",
        "invalid regular expression",
        "unknown kind \"mouse\"",
        "comparison is missing value",
        "empty condition",
        "not both",
        "popup: missing field `message`",
        "unknown repeat \"always\"",
        "duplicate alarm name \"a\" (first defined at 6:8)",
    ] {
        assert!(joined.contains(needle), "missing {needle:?} in\n{joined}");
    }
}

#[test]
fn header_problems_and_toml_syntax_errors_are_located() {
    let errs = errors("[pack]\nname = \"bad name!\"\nversion = \"one\"\n");
    assert!(
        errs[0].starts_with("p/pack.toml:2:8: pack name"),
        "{errs:?}"
    );
    assert!(
        errs[1].starts_with("p/pack.toml:3:11: version must be semantic"),
        "{errs:?}"
    );
    let errs = errors("[pack]\nname = \"x\"\nversion = \"1.0.0\"\n[[alarm]]\nname = \n");
    assert!(errs[0].starts_with("p/pack.toml:5:"), "{errs:?}");
    let errs = errors("[pack]\nname = \"x\"\nversion = \"1.0.0\"\nextra = 1\n");
    assert!(errs[0].contains("unknown field `extra`"), "{errs:?}");
    let errs =
        errors("[pack]\nname = \"x\"\nversion = \"1.0.0\"\nmin_agent_version = \"99.0.0\"\n");
    assert!(errs[0].contains("needs vigilo 99.0.0 or newer"), "{errs:?}");
}

#[test]
fn alarm_files_load_from_the_folder_and_stay_inside_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("alarms")).expect("mkdir");
    std::fs::write(
        dir.path().join(MANIFEST),
        format!("{HEADER}alarm_files = [\"alarms/web.toml\"]\n"),
    )
    .expect("write");
    std::fs::write(
        dir.path().join("alarms/web.toml"),
        "[[alarm]]\nname = \"w\"\nconditions = [{ field = \"url\", op = \"contains\", value = \"x\" }]\n",
    )
    .expect("write");
    let pack = Pack::load(dir.path()).expect("loads");
    assert_eq!(pack.alarms.len(), 1);
    assert_eq!(
        Pack::load(&dir.path().join(MANIFEST))
            .expect("via manifest")
            .alarms
            .len(),
        1
    );

    std::fs::write(
        dir.path().join(MANIFEST),
        format!("{HEADER}alarm_files = [\"../outside.toml\", \"/etc/passwd\", \"missing.toml\"]\n"),
    )
    .expect("write");
    let err = Pack::load(dir.path()).expect_err("rejected").to_string();
    assert!(
        err.contains("\"../outside.toml\" must be a relative path inside the pack"),
        "{err}"
    );
    assert!(
        err.contains("\"/etc/passwd\" must be a relative path"),
        "{err}"
    );
    assert!(err.contains("missing.toml:1:1: cannot read"), "{err}");
}

#[test]
fn standard_alarms_match_what_their_names_say() {
    use crate::event::{Event, EventKind, Field};
    let pack = Pack::standard().expect("standard");
    let fires = |exe: &str, title: &str, url: &str| -> Vec<String> {
        let ts = chrono::DateTime::parse_from_rfc3339("2026-11-02T09:00:00Z").expect("ts");
        let mut e = Event::new(EventKind::Activity, ts)
            .with_text(Field::Executable, exe)
            .with_text(Field::Title, title);
        if !url.is_empty() {
            e.set_text(Field::Url, url);
        }
        pack.alarms
            .iter()
            .filter(|a| a.matches(&e))
            .map(|a| a.name.clone())
            .collect()
    };
    let torrent = ["Torrent client in use".to_string()];
    let tor = ["Tor or anonymiser in use".to_string()];
    assert_eq!(
        fires("/usr/bin/qbittorrent", "qBittorrent v4.6", ""),
        torrent
    );
    assert_eq!(
        fires("C:\\Program Files\\uTorrent\\uTorrent.exe", "µTorrent", ""),
        torrent
    );
    assert_eq!(
        fires("/usr/bin/transmission-gtk", "Transmission", ""),
        torrent
    );
    assert!(fires("/usr/bin/nautilus", "deluge downloads", "").is_empty());
    assert!(
        fires("/home/u/deluge-notes/editor", "notes", "").is_empty(),
        "only the program itself"
    );
    assert_eq!(fires("/usr/bin/tor", "", ""), tor);
    assert_eq!(
        fires("/opt/tor-browser/Browser/firefox.real", "New Tab", ""),
        tor
    );
    assert_eq!(
        fires("/usr/bin/chromium", "Search", "http://abc.onion/"),
        tor
    );
    assert!(fires("/usr/bin/gnome-system-monitor", "System Monitor", "").is_empty());
    assert!(fires("/usr/bin/tor-like-editor", "x", "").is_empty());
}

#[test]
fn actions_outside_the_grants_are_refused_where_the_alarm_is() {
    let errs = errors(&format!(
        r#"{HEADER}
[grants]
actions = ["email", "webhook", "fax"]
webhooks = ["https://siem.acme.example/hooks/", "ftp://x"]
email_to = ["soc@acme.example", "nobody"]

[[alarm]]
name = "copy"
conditions = [ {{ field = "title", op = "eq", value = "x" }} ]
actions = [
  {{ screenshot = {{ count = 1 }} }},
  {{ webhook = {{ url = "https://siem.acme.example.evil.net/hooks/x" }} }},
  {{ email = {{ to = ["soc@acme.example", "ceo@acme.example"], subject = "s", body = "b" }} }},
]
"#
    ));
    assert_eq!(
        errs,
        [
            "p/pack.toml:6:32: unknown action \"fax\"; expected one of screenshot, video, popup, email, webhook, terminate",
            "p/pack.toml:7:49: a webhook grant is an http(s) URL with a host, e.g. \"https://siem.example/hooks/\"",
            "p/pack.toml:8:33: an e-mail grant is an address or \"*@domain\", e.g. \"*@acme.example\"",
            "p/pack.toml:11:8: alarm \"copy\": `screenshot` is not granted to this pack (its [grants] actions: email, webhook)",
            "p/pack.toml:11:8: alarm \"copy\": webhook \"https://siem.acme.example.evil.net/hooks/x\" is not a granted endpoint (granted: https://siem.acme.example/hooks/)",
            "p/pack.toml:11:8: alarm \"copy\": e-mail to \"ceo@acme.example\" is not granted (granted: soc@acme.example)",
        ]
    );
    let pack = load(&format!("{HEADER}\n[grants]\nactions = [\"popup\"]\n")).expect("valid");
    assert_eq!(pack.grants.actions, ["popup"]);
}

#[test]
fn a_kind_value_is_checked_as_it_is_compared_ignoring_case() {
    let pack = load(&format!(
        r#"{HEADER}
[[alarm]]
name = "usb"
conditions = [ {{ field = "kind", op = "eq", value = "USB" }} ]
"#
    ))
    .expect("USB is the kind usb");
    let event = crate::event::parse_line(
        r#"{"ts":"2026-11-02T09:00:00Z","kind":"usb","action":"inserted"}"#,
    )
    .expect("event");
    assert!(pack.alarms[0].matches(&event));
    // Compared case-sensitively, "USB" is no kind at all.
    let errs = errors(&format!(
        r#"{HEADER}
[[alarm]]
name = "usb"
conditions = [ {{ field = "kind", op = "eq", value = "USB", case_sensitive = true }} ]
"#
    ));
    assert!(errs.join("\n").contains("unknown kind \"USB\""), "{errs:?}");
}

#[test]
fn a_misspelt_key_gets_a_suggestion() {
    let errs = errors(&format!(
        "{HEADER}\n[[alarm]]\nname = \"a\"\nconditions = [ {{ feild = \"title\", op = \"eq\", value = \"x\" }} ]\n"
    ));
    let joined = errs.join("\n");
    assert!(joined.contains("unknown field `feild`"), "{joined}");
    assert!(joined.contains("did you mean `field`?"), "{joined}");
    let errs = errors(&format!("{HEADER}\n[[alarm]]\nnmae = \"a\"\n"));
    assert!(errs.join("\n").contains("did you mean `name`?"), "{errs:?}");
    // Another word altogether gets no guess.
    let errs = errors(&format!("{HEADER}\n[[alarm]]\nname = \"a\"\nbanana = 1\n"));
    assert!(!errs.join("\n").contains("did you mean"), "{errs:?}");
}

#[test]
fn conditions_are_shown_as_written_and_compared_ignoring_case() {
    let pack = load(&format!(
        "{HEADER}\n[[alarm]]\nname = \"a\"\nconditions = [ {{ field = \"title\", op = \"contains\", value = \"YouTube\" }}, \
         {{ field = \"executable\", op = \"in\", value = [\"/usr/bin/Foo\"] }} ]\n"
    ))
    .expect("loads");
    let shown = pack.alarms[0].when.to_string();
    assert!(shown.contains("title contains \"YouTube\""), "{shown}");
    assert!(
        shown.contains("executable in [\"/usr/bin/Foo\"]"),
        "{shown}"
    );
    let event = crate::event::parse_line(
        r#"{"ts":"2026-11-02T09:00:00Z","kind":"activity","title":"youtube - x","executable":"/usr/bin/foo"}"#,
    )
    .expect("event");
    assert!(pack.alarms[0].matches(&event));
}

#[test]
fn every_unknown_key_of_a_file_is_listed_at_once() {
    let errs = errors(&format!(
        "{HEADER}author = \"me\"\n[[alarm]]\nname = \"a\"\nrsik = 3\n\
         conditions = [ {{ feild = \"title\", op = \"eq\", value = \"x\" }} ]\n"
    ));
    assert_eq!(errs.len(), 3, "{errs:?}");
    assert!(
        errs[0].contains(":4:1: unknown field `author` in [pack]"),
        "{errs:?}"
    );
    assert!(
        errs[1].contains(":7:1: unknown field `rsik` in an [[alarm]]")
            && errs[1].contains("did you mean `risk`?"),
        "{errs:?}"
    );
    assert!(
        errs[2].contains(":8:18: unknown field `feild` in a condition"),
        "{errs:?}"
    );
}

#[test]
fn a_signature_file_is_read_only_as_far_as_a_signature_goes() {
    let dir = tempfile::tempdir().expect("tmp");
    let archive = dir.path().join("p.tar.gz");
    std::fs::write(&archive, b"\x1f\x8b not really").expect("write");
    std::fs::write(dir.path().join("p.tar.gz.minisig"), vec![b'a'; 1 << 20]).expect("write");
    let err = Pack::load(&archive).expect_err("refused").to_string();
    assert!(err.contains("not a minisign signature"), "{err}");
}

#[test]
fn targets_are_read_with_every_problem_where_it_is_written() {
    let pack = load(&format!(
        "{HEADER}\n[targets]\ngroups = [\"finance\"]\ntags = {{ site = \"paris\" }}\n\
         exclude = {{ users = [\"ceo\"] }}\n"
    ))
    .expect("valid targets");
    assert_eq!(pack.targets.include.groups, ["finance"]);
    assert_eq!(pack.targets.include.tags["site"], "paris");
    assert_eq!(pack.targets.exclude.users, ["ceo"]);
    assert_eq!(
        pack.targets.words(),
        "groups finance; tag site=paris, except users ceo"
    );
    assert!(load(HEADER).expect("no targets").targets.is_everyone());

    let found = errors(&format!("{HEADER}\n[targets]\ngroup = [\"finance\"]\n"));
    assert!(
        found[0].starts_with("p/pack.toml:6:1:")
            && found[0].contains("unknown field `group` in [targets]")
            && found[0].contains("did you mean `groups`?"),
        "{found:?}"
    );
    let found = errors(&format!(
        "{HEADER}\n[targets]\nusers = [\"\"]\n\
         exclude = {{ computers = [\"ws-1\"], exclude = {{ users = [\"x\"] }} }}\n"
    ));
    assert!(
        found
            .iter()
            .any(|e| e.starts_with("p/pack.toml:6:10:") && e.contains("a user name is 1 to")),
        "{found:?}"
    );
    assert!(
        found.iter().any(|e| e.starts_with("p/pack.toml:7:")
            && e.contains("an exclusion has no exclusions of its own")),
        "{found:?}"
    );
}

#[test]
fn applies_to_and_escalation_are_read_with_every_problem_where_it_is_written() {
    let alarm = |extra: &str| {
        format!(
            "{HEADER}[grants]\nactions = [\"popup\"]\n[[alarm]]\nname = \"a\"\n\
             conditions = [{{ field = \"url\", op = \"contains\", value = \"x\" }}]\n{extra}"
        )
    };
    let pack = load(&alarm(
        "applies_to = { groups = [\"finance\"], exclude = { users = [\"ceo\"] } }\n\
         escalate = [{ after = 3, within = \"1h\", risk = 8, actions = [{ popup = { message = \"stop\" } }] },\n\
                     { after = 5, within = \"2h\" }]\n",
    ))
    .expect("valid");
    let a = &pack.alarms[0];
    assert_eq!(
        a.applies_to.as_ref().map(|t| t.words()).as_deref(),
        Some("groups finance, except users ceo")
    );
    assert_eq!(a.escalate.len(), 2);
    assert_eq!(
        (a.escalate[0].after, a.escalate[0].risk, a.escalate[1].risk),
        (3, Some(8), None)
    );
    assert_eq!(a.escalate[1].within, std::time::Duration::from_secs(7200));

    // Unknown keys are all found first, each at its place.
    let found = errors(&alarm(
        "applies_to = { user = [\"x\"] }\n\
         escalate = [{ after = 7, within = \"1h\", every = 2 }]\n",
    ));
    assert!(
        found[0].starts_with("p/pack.toml:9:16:")
            && found[0].contains("unknown field `user` in applies_to")
            && found[0].contains("did you mean `users`?"),
        "{found:?}"
    );
    assert!(
        found[1].starts_with("p/pack.toml:10:41:")
            && found[1].contains("unknown field `every` in an escalation step"),
        "{found:?}"
    );

    let found = errors(&alarm(
        "escalate = [{ after = 1, within = \"1h\" }, { after = 4, within = \"soon\" },\n\
                     { after = 4, within = \"1h\" }, { after = 6, within = \"1h\", actions = [{ terminate = {} }] },\n\
                     { after = 7, within = \"1h\", risk = 11 }]\n",
    ));
    let at = |place: &str, text: &str| {
        assert!(
            found
                .iter()
                .any(|e| e.starts_with(&format!("p/pack.toml:{place}")) && e.contains(text)),
            "{place} {text}: {found:?}"
        )
    };
    at("9:", "after: the firing a step starts from, 2 to 1000");
    at("9:", "within: \"soon\" is not a duration");
    at("10:", "after: steps go up: this one (4) must come after 4");
    at("11:", "risk must be 1 to 10, found 11");
    // A step's actions need grants as the alarm's own do.
    let found = errors(&alarm(
        "escalate = [{ after = 2, within = \"1h\", actions = [{ terminate = {} }] }]\n",
    ));
    assert!(
        found[0].starts_with("p/pack.toml:7:") && found[0].contains("terminate"),
        "{found:?}"
    );
}
