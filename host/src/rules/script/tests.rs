//! Scripts as admins write them, and hostile ones: each fault contained and named.

use std::time::Duration;

use super::*;
use crate::event::Field;

fn usb(serial: &str) -> Event {
    Event::new(
        EventKind::Usb,
        chrono::DateTime::parse_from_rfc3339("2026-11-02T09:00:00Z").expect("ts"),
    )
    .with_text(Field::Username, "dave")
    .with_text(Field::Action, "inserted")
    .with_text(Field::Serial, serial)
    .with_number(Field::Bytes, 5.0)
}

fn activity() -> Event {
    Event::new(
        EventKind::Activity,
        chrono::DateTime::parse_from_rfc3339("2026-11-02T09:00:00Z").expect("ts"),
    )
    .with_text(Field::Title, "x")
}

/// A script whose `on_event` has `body`, subscribed to usb.
fn with_body(body: &str) -> String {
    format!(
        r#"fn describe() {{ #{{ name: "t", version: "1.0.0", subscribes: ["usb"] }} }}
fn on_event(event, settings) {{
{body}
}}
"#
    )
}

const DEVICES: &str = r#"
fn describe() {
    #{ name: "devices", version: "1.2.0", subscribes: ["usb"], config_help: "limit = 2" }
}
fn configure(config) {
    let limit = config.limit ?? 2;
    if type_of(limit) != "i64" || limit < 1 { throw `limit must be a whole number >= 1, found ${limit}`; }
    #{ limit: limit }
}
fn on_event(event, settings) {
    if event.action != "inserted" { return []; }
    if this.seen == () { this.seen = []; }
    if event.serial in this.seen { return []; }
    this.seen.push(event.serial);
    log("info", `device ${this.seen.len()}: ${event.serial}`);
    if this.seen.len() != settings.limit { return []; }
    [#{
        alarm: "Many USB devices",
        risk: 6,
        actions: [#{ popup: #{ title: "USB", message: "Too many devices" } }, #{ screenshot: () }],
        note: `${event.username} used ${this.seen.len()} devices; bytes is ${type_of(event.bytes)}`,
    }]
}
"#;

#[test]
fn a_script_describes_configures_counts_and_keeps_its_state() {
    let script =
        Script::load("devices.rhai", DEVICES, "limit = 2", Limits::default()).expect("loads");
    assert_eq!(script.info().name, "devices");
    assert_eq!(script.info().subscribes, EventKind::Usb.bit());
    let mut running = script.instantiate(&State::new());
    assert!(running.on_event(&usb("A"), 0).expect("ok").is_empty());
    assert_eq!(running.log()[0].message, "device 1: A");
    assert!(running.on_event(&usb("A"), 0).expect("ok").is_empty());
    assert!(
        running.on_event(&activity(), 0).expect("ok").is_empty(),
        "not subscribed"
    );
    let fired = running.on_event(&usb("B"), 0).expect("ok");
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].alarm, "Many USB devices");
    assert_eq!(fired[0].risk, 6);
    assert_eq!(fired[0].actions.len(), 2);
    assert_eq!(
        fired[0].note.as_deref(),
        Some("dave used 2 devices; bytes is i64")
    );

    // The state goes to the store as JSON per key, and a new copy starts from it.
    let state = running.state();
    assert_eq!(state["seen"], br#"["A","B"]"#);
    let mut restarted = script.instantiate(&state);
    assert!(restarted.on_event(&usb("B"), 0).expect("ok").is_empty());
    assert!(
        restarted.on_event(&usb("C"), 0).expect("ok").is_empty(),
        "3 != 2"
    );
}

#[test]
fn configuration_and_script_errors_name_the_place() {
    let refused = Script::load("devices.rhai", DEVICES, "limit = 0", Limits::default());
    assert_eq!(
        refused.err().as_deref(),
        Some(
            "devices.rhai: rejected its configuration: limit must be a whole number >= 1, found 0"
        )
    );
    let bad_toml = Script::load("devices.rhai", DEVICES, "\nlimit = = 2", Limits::default());
    assert!(
        bad_toml
            .err()
            .is_some_and(|e| e.starts_with("devices.rhai: configuration: line 2: ")),
    );
    let syntax = Script::load(
        "s.rhai",
        "fn describe() {\n  let x = ;\n}",
        "",
        Limits::default(),
    );
    assert!(
        syntax
            .as_ref()
            .err()
            .is_some_and(|e| e.starts_with("s.rhai:2:")),
        "{:?}",
        syntax.err()
    );
    assert_eq!(check_syntax("fn on_event(e, s) { [] }"), Ok(()));
    assert_eq!(
        check_syntax("fn f() {\n  1 +\n}").map_err(|e| e.line),
        Err(3)
    );
    assert_eq!(
        Script::load("s.rhai", "fn describe() { 1 }", "", Limits::default())
            .err()
            .as_deref(),
        Some("s.rhai: no `fn on_event(event, settings)`")
    );
    let no_kind = "fn describe() { #{ name: \"x\", version: \"1.0.0\", subscribes: [\"disk\"] } }\n\
                   fn on_event(e, s) { [] }";
    assert!(
        Script::load("s.rhai", no_kind, "", Limits::default())
            .err()
            .is_some_and(|e| e.contains("unknown event kind \"disk\""))
    );

    // A runtime error names the line and column inside the function.
    let script = Script::load(
        "t.rhai",
        &with_body("  let x = 1;\n  x.nope()"),
        "",
        Limits::default(),
    )
    .expect("loads");
    let mut running = script.instantiate(&State::new());
    match running.on_event(&usb("A"), 0) {
        Err(Fault::Trap(why)) => assert!(why.starts_with("t.rhai:4:5: "), "{why}"),
        other => panic!("expected a trap, got {other:?}"),
    }
}

#[test]
fn eval_modules_and_undeclared_variables_are_refused() {
    for (source, says) in [
        (with_body("eval(\"1\")"), "eval"),
        (with_body("import \"x\" as y;"), "import"),
        (with_body("nope"), "nope"),
    ] {
        let err = Script::load("t.rhai", &source, "", Limits::default())
            .err()
            .unwrap_or_default();
        assert!(err.starts_with("t.rhai:"), "{source}: {err}");
        assert!(err.contains(says), "{source}: {err}");
    }
}

fn fault_of(body: &str, limits: Limits) -> Fault {
    let script = Script::load("t.rhai", &with_body(body), "", limits).expect("loads");
    let mut running = script.instantiate(&State::new());
    running.on_event(&usb("A"), 0).expect_err("a fault")
}

#[test]
fn hostile_scripts_are_stopped() {
    // A deadline far off, so the budget under test is what stops the script even on a machine
    // too busy to run 200 000 operations in 50 ms.
    let patient = || Limits {
        deadline: Duration::from_secs(60),
        ..Limits::default()
    };
    assert_eq!(
        fault_of("loop {}", patient()),
        Fault::Budget("more than 200000 operations in one call".into())
    );
    let wall_clock = Limits {
        max_operations: 0, // unlimited: the deadline must stop it
        deadline: Duration::from_millis(20),
        ..Limits::default()
    };
    assert_eq!(
        fault_of("loop {}", wall_clock),
        Fault::Deadline(Duration::from_millis(20))
    );
    assert!(matches!(
        fault_of("let s = \"xxxxxxxx\"; loop { s += s; }", patient()),
        Fault::Budget(what) if what.contains("over the limit")
    ));
    assert!(matches!(
        fault_of("let a = []; loop { a.push(a.len()); }", patient()),
        Fault::Budget(what) if what.contains("over the limit")
    ));
    let deep = "fn down(n) { down(n + 1) }\n";
    let script = format!("{deep}{}", with_body("down(0)"));
    let loaded = Script::load("t.rhai", &script, "", patient()).expect("loads");
    let mut running = loaded.instantiate(&State::new());
    assert_eq!(
        running.on_event(&usb("A"), 0).expect_err("fault"),
        Fault::Budget("calls nested deeper than 32".into())
    );
    assert!(matches!(
        fault_of("throw \"boom\"", Limits::default()),
        Fault::Trap(why) if why.starts_with("t.rhai:3:1: ") && why.contains("boom")
    ));
}

#[test]
fn floods_and_malformed_answers_are_refused_with_the_field() {
    let flood = "let out = []; for i in 0..100 { out.push(#{ alarm: `a${i}`, risk: 1 }); } out";
    assert_eq!(
        fault_of(flood, Limits::default()),
        Fault::Invalid("on-event returned 100 alarms; the limit is 16".into())
    );
    for (body, says) in [
        (
            "#{ alarm: \"a\", risk: 11 }",
            "triggered[0].risk: must be 1 to 10, found 11",
        ),
        (
            "[#{ alarm: \"a\" }]",
            "triggered[0].risk: missing (1 to 10)",
        ),
        (
            "[#{ alarm: \"a\", risk: 2, colour: 1 }]",
            "triggered[0].colour: unknown field",
        ),
        (
            "[#{ alarm: \"a\", risk: 2, actions: [#{ fax: #{} }] }]",
            "triggered[0].actions[0].fax: unknown action",
        ),
        (
            "[#{ alarm: \"a\", risk: 2, actions: [#{ screenshot: #{ count: \"3\" } }] }]",
            "triggered[0].actions[0].screenshot.count: expected an integer, found string",
        ),
        (
            "[#{ alarm: \"a\", risk: 2, actions: [#{ screenshot: #{ interval_ms: 5 } }] }]",
            "triggered[0].actions[0].",
        ),
        ("42", "on_event must return an array of alarms"),
    ] {
        match fault_of(body, Limits::default()) {
            Fault::Invalid(why) => assert!(why.contains(says), "{body}: {why}"),
            other => panic!("{body}: expected invalid, got {other:?}"),
        }
    }
}

#[test]
fn a_script_that_keeps_failing_is_switched_off_and_keeps_its_state() {
    let body = "if this.n == () { this.n = 0; } this.n += 1; if event.serial == \"bad\" { throw \"no\"; } []";
    let script = Script::load("t.rhai", &with_body(body), "", Limits::default()).expect("loads");
    let mut running = script.instantiate(&State::new());
    running.on_event(&usb("ok"), 0).expect("fine");
    for _ in 0..3 {
        assert!(matches!(
            running.on_event(&usb("bad"), 0),
            Err(Fault::Trap(_))
        ));
    }
    assert!(running.is_quarantined());
    assert_eq!(running.on_event(&usb("ok"), 0), Err(Fault::Quarantined));
    assert_eq!(running.state()["n"], b"4");
}

#[test]
fn host_functions_see_the_agents_clock_and_local_time() {
    let body = "let t = local_time(event.ts_ms, 120); \
                print(`${t.date} ${t.hour}:${t.minute} wd${t.weekday} now=${now()}`); []";
    let script = Script::load("t.rhai", &with_body(body), "", Limits::default()).expect("loads");
    let mut running = script.instantiate(&State::new());
    running.on_event(&usb("A"), 42).expect("ok");
    assert_eq!(running.log()[0].message, "2026-11-02 11:0 wd0 now=42");
}

#[test]
fn built_ins_that_multiply_a_size_are_refused_before_they_allocate() {
    let patient = || Limits {
        deadline: Duration::from_secs(60),
        max_operations: 10_000_000,
        ..Limits::default()
    };
    // 32 KiB of "x": replacing each "x" by the whole string would build 1 GiB.
    let big = "let s = \"x\"; while s.len() < 32768 { s += s; }";
    for call in [
        "s.replace(\"x\", s);",
        "s.replace('x', s);",
        "s.replace(\"\", s);",
        "let t = s; t.replace(\"x\", 'é'); t.replace(\"é\", \"😀😀😀😀\");",
        "s.replace('x', '😀'); s.replace('😀', '😀');",
    ] {
        let fault = fault_of(&format!("{big} {call}"), patient());
        assert!(
            matches!(&fault, Fault::Budget(what) if what.contains("after replace")),
            "{call}: {fault:?}"
        );
    }
    // The others check their size first (pad, blob) or at most double what they were given
    // before the engine's own check (concatenation, +=, to_string of a capped array).
    for script in [
        "let s = \"x\"; s.pad(1000000000, 'y');",
        "let s = \"x\"; s.pad(1000000000, \"yy\");",
        "let a = []; a.pad(1000000000, \"x\");",
        "let b = blob(1000000000, 0);",
        "let a = [1]; loop { a += a; }",
        "let a = [\"x\"]; loop { a = a + a; }",
        "let m = #{a: \"x\"}; let i = 0; loop { m[`k${i}`] = m.to_string(); i += 1; }",
        "let s = \"x\"; loop { s = s + s; }",
        "let s = \"x\"; loop { s = `${s}${s}`; }",
        "let a = []; for i in 0..20000 { a.push(i); } a.to_string();",
    ] {
        assert!(
            matches!(fault_of(script, patient()), Fault::Budget(_)),
            "{script}: {:?}",
            fault_of(script, patient())
        );
    }
    // Within the cap, replace works as before.
    let fine = "let s = \"a-b-c\"; s.replace(\"-\", \"--\"); if s != \"a--b--c\" { throw s; } []";
    let script = Script::load("t.rhai", &with_body(fine), "", patient()).expect("loads");
    let mut running = script.instantiate(&State::new());
    assert_eq!(running.on_event(&usb("A"), 0), Ok(Vec::new()));
}
