//! Plugins built from hand-written WAT, so the host's limits are tested without a guest
//! toolchain: a well-behaved plugin, and hostile ones (endless loop, memory bomb, deep
//! recursion, trap, a flood of alarms, oversized and out-of-range answers).

use std::time::{Duration, Instant};

use super::*;
use crate::event::{Event, EventKind, Field, FieldSet};

use crate::test_plugins::{component, hello_body, plugin_wat, plugin_wat_0_1, plugin_wat_reading};

fn load(wat: &str, limits: Limits) -> anyhow::Result<Plugin> {
    let runtime = PluginRuntime::new().expect("runtime");
    // The plugin keeps the engine, and so the deadline ticker, alive after the runtime goes.
    Plugin::load(&runtime, &component(wat), "", limits)
}

fn activity() -> Event {
    Event::new(
        EventKind::Activity,
        chrono::DateTime::parse_from_rfc3339("2026-11-02T09:00:00Z").expect("ts"),
    )
    .with_text(Field::Username, "alice")
    .with_text(Field::Url, "https://youtube.com/")
}

fn usb() -> Event {
    Event::new(
        EventKind::Usb,
        chrono::DateTime::parse_from_rfc3339("2026-11-02T09:00:00Z").expect("ts"),
    )
    .with_text(Field::Action, "inserted")
}

#[test]
fn a_plugin_describes_itself_and_returns_alarms() {
    let plugin = load(&plugin_wat("\\00", hello_body(), ""), Limits::default()).expect("loads");
    assert_eq!(plugin.info().name, "hello");
    assert_eq!(plugin.info().version, "1.0.0");
    assert_eq!(plugin.info().subscribes, EventKind::Activity.bit());
    assert_eq!(plugin.info().config_help, "help");
    let mut instance = plugin.instantiate(Default::default()).expect("instance");
    let alarms = instance.on_event(&activity(), 0).expect("no fault");
    assert_eq!(
        alarms,
        [PluginAlarm {
            alarm: "hello".into(),
            risk: 3,
            actions: vec![],
            note: None
        }]
    );
    assert_eq!(
        instance.log(),
        [LogLine {
            level: "info",
            message: "hello".into()
        }]
    );
    assert!(
        instance.on_event(&usb(), 0).expect("not called").is_empty(),
        "not subscribed"
    );
}

/// An `on-event` body that fires `hello` when the first of the event's fields is `username`
/// (field 0), and returns no alarm (the empty list at 3000) when not.
const FIRES_ON_USERNAME: &str = "(if (result i32) (i32.and (i32.ne (local.get 3) (i32.const 0)) \
     (i32.eqz (i32.load8_u (local.get 2)))) (then (i32.const 2048)) (else (i32.const 3000)))";

/// [`FIRES_ON_USERNAME`] for contract 0.1.0: `username`'s option tag is at offset 12 of the
/// event record.
const FIRES_ON_USERNAME_0_1: &str = "(if (result i32) (i32.load8_u offset=12 (local.get 0)) \
     (then (i32.const 2048)) (else (i32.const 3000)))";

#[test]
fn a_plugin_gets_only_the_fields_it_says_it_reads() {
    let fired = |wat: &str| {
        let plugin = load(wat, Limits::default()).expect("loads");
        let mut instance = plugin.instantiate(Default::default()).expect("instance");
        let n = instance.on_event(&activity(), 0).expect("no fault").len();
        (plugin.info().reads, plugin.contract(), n)
    };
    // username is field 0, url field 7.
    let (reads, contract, n) = fired(&plugin_wat_reading("\\00", "\\00", FIRES_ON_USERNAME, ""));
    assert_eq!(
        (reads.to_string().as_str(), contract, n),
        ("username", "0.2.0", 1)
    );
    let (reads, _, n) = fired(&plugin_wat_reading("\\00", "\\07", FIRES_ON_USERNAME, ""));
    assert_eq!(
        (reads.to_string().as_str(), n),
        ("url", 0),
        "username is not copied in"
    );
    // A plugin built for 0.1.0 could not say: it gets every field, as it always did.
    let (reads, contract, n) = fired(&plugin_wat_0_1("\\00", FIRES_ON_USERNAME_0_1, ""));
    assert_eq!((reads, contract, n), (FieldSet::ALL, "0.1.0", 1));
}

#[test]
fn a_field_the_contract_does_not_know_is_refused_at_load() {
    let err = load(
        &plugin_wat_reading("\\00", "\\00\\63", hello_body(), ""),
        Limits::default(),
    )
    .err()
    .expect("rejected")
    .to_string();
    assert!(err.starts_with("describe "), "{err}");
    assert!(err.contains("discriminant"), "{err}");
}

#[test]
fn an_endless_loop_hits_the_deadline_and_repeated_faults_quarantine() {
    let limits = Limits {
        deadline: Duration::from_millis(20),
        ..Limits::default()
    };
    let plugin = load(
        &plugin_wat("\\00", "(loop $l (br $l)) (unreachable)", ""),
        limits,
    )
    .expect("loads");
    let mut instance = plugin.instantiate(Default::default()).expect("instance");
    let start = Instant::now();
    assert_eq!(
        instance.on_event(&activity(), 0),
        Err(Fault::Deadline(Duration::from_millis(20)))
    );
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "the loop was stopped"
    );
    assert!(!instance.is_quarantined());
    assert!(matches!(
        instance.on_event(&activity(), 0),
        Err(Fault::Deadline(_))
    ));
    assert!(matches!(
        instance.on_event(&activity(), 0),
        Err(Fault::Deadline(_))
    ));
    assert!(instance.is_quarantined(), "three faults in a row");
    assert_eq!(instance.on_event(&activity(), 0), Err(Fault::Quarantined));
}

#[test]
fn a_trap_is_contained_and_the_next_call_runs_on_a_fresh_instance() {
    // Logs, then traps when the host clock reads 13, answers otherwise.
    let body = "(call $log (i32.const 1) (i32.const 0) (i32.const 5)) \
                (if (i64.eq (call $now) (i64.const 13)) (then (unreachable))) (i32.const 2048)";
    let plugin = load(&plugin_wat("\\00", body, ""), Limits::default()).expect("loads");
    let mut instance = plugin.instantiate(Default::default()).expect("instance");
    match instance.on_event(&activity(), 13) {
        Err(Fault::Trap(why)) => assert!(why.contains("unreachable"), "{why}"),
        other => panic!("expected a trap, got {other:?}"),
    }
    // What it said before the trap is what an author needs to see.
    assert_eq!(instance.log().len(), 1, "{:?}", instance.log());
    assert_eq!(
        instance.on_event(&activity(), 14).expect("recovered").len(),
        1
    );
    assert!(!instance.is_quarantined());
}

#[test]
fn a_log_flood_is_capped_and_the_drop_is_reported() {
    let body = "(local $i i32) (loop $l (call $log (i32.const 1) (i32.const 0) (i32.const 5)) \
                (local.set $i (i32.add (local.get $i) (i32.const 1))) \
                (br_if $l (i32.lt_u (local.get $i) (i32.const 1000)))) (i32.const 2048)";
    let limits = Limits {
        max_log_lines: 10,
        ..Limits::default()
    };
    let plugin = load(&plugin_wat("\\00", body, ""), limits).expect("loads");
    let mut instance = plugin.instantiate(Default::default()).expect("instance");
    instance.on_event(&activity(), 0).expect("no fault");
    let log = instance.log();
    assert_eq!(log.len(), 11, "ten lines and the notice");
    assert_eq!(
        log[10].message,
        "990 more lines dropped: at most 10 per event"
    );
    // An event the plugin does not subscribe to leaves no stale lines behind.
    instance.on_event(&usb(), 0).expect("not called");
    assert!(instance.log().is_empty());
}

#[test]
fn a_memory_bomb_is_stopped_at_the_cap() {
    let limits = Limits {
        memory_bytes: 4 << 20,
        ..Limits::default()
    };
    let body = "(drop (memory.grow (i32.const 1000))) (i32.const 2048)";
    let plugin = load(&plugin_wat("\\00", body, ""), limits).expect("loads");
    let mut instance = plugin.instantiate(Default::default()).expect("instance");
    assert_eq!(
        instance.on_event(&activity(), 0),
        Err(Fault::Memory(4 << 20))
    );
}

#[test]
fn deep_recursion_is_a_trap_not_a_crash() {
    let extra =
        "(func $deep (param i32) (result i32) (call $deep (i32.add (local.get 0) (i32.const 1))))";
    let plugin = load(
        &plugin_wat("\\00", "(call $deep (i32.const 0))", extra),
        Limits::default(),
    )
    .expect("loads");
    let mut instance = plugin.instantiate(Default::default()).expect("instance");
    match instance.on_event(&activity(), 0) {
        Err(Fault::Trap(why)) => assert!(why.contains("stack"), "{why}"),
        other => panic!("expected a stack overflow trap, got {other:?}"),
    }
}

#[test]
fn floods_and_oversized_or_out_of_range_answers_are_refused_with_the_field() {
    let cases = [
        // 2000 zeroed alarms at 4096.
        (
            "(data (i32.const 3000) \"\\00\\10\\00\\00\\d0\\07\\00\\00\")",
            "(i32.const 3000)",
            "on-event returned 2000 alarms; the limit is 16",
        ),
        // One alarm whose name is 60000 bytes long (zero bytes, valid UTF-8, from 4096).
        (
            "(data (i32.const 3000) \"\\00\\10\\00\\00\\60\\ea\\00\\00\\03\") (data (i32.const 3100) \"\\b8\\0b\\00\\00\\01\\00\\00\\00\")",
            "(i32.const 3100)",
            "triggered[0].alarm: 60000 bytes; the limit is 4096",
        ),
        // Risk 11.
        (
            "(data (i32.const 3000) \"\\00\\00\\00\\00\\05\\00\\00\\00\\0b\") (data (i32.const 3100) \"\\b8\\0b\\00\\00\\01\\00\\00\\00\")",
            "(i32.const 3100)",
            "triggered[0].risk: must be 1 to 10, found 11",
        ),
    ];
    for (extra, body, expected) in cases {
        let plugin = load(&plugin_wat("\\00", body, extra), Limits::default()).expect("loads");
        let mut instance = plugin.instantiate(Default::default()).expect("instance");
        match instance.on_event(&activity(), 0) {
            Err(Fault::Invalid(why)) => assert_eq!(why, expected),
            other => panic!("expected {expected:?}, got {other:?}"),
        }
    }
}

#[test]
fn loading_reports_what_is_wrong() {
    let runtime = PluginRuntime::new().expect("runtime");
    let err = Plugin::load(&runtime, b"not wasm", "", Limits::default())
        .err()
        .expect("rejected")
        .to_string();
    assert!(err.contains("not a valid WebAssembly component"), "{err}");
    // configure answers err("hello").
    let wat = plugin_wat("\\00", hello_body(), "").replace(
        "(data (i32.const 512) \"\\00\")",
        "(data (i32.const 512) \"\\01\\00\\00\\00\\00\\00\\00\\00\\05\\00\\00\\00\")",
    );
    let err = Plugin::load(&runtime, &component(&wat), "x = 1", Limits::default())
        .err()
        .expect("rejected")
        .to_string();
    assert_eq!(err, "rejected its configuration: hello");
}

#[test]
fn state_is_capped_and_survives_a_fault() {
    let limits = Limits {
        state_bytes: 10,
        ..Limits::default()
    };
    let mut host = HostState::new("p", &limits, Default::default());
    use super::bindings::vigilo::alarms::host::Host;
    assert_eq!(host.state_set("k".into(), vec![1; 5]), Ok(()));
    assert_eq!(host.state_get("k".into()), Some(vec![1; 5]));
    assert!(
        host.state_set("k2".into(), vec![1; 5])
            .expect_err("over")
            .contains("limit of 10")
    );
    assert_eq!(
        host.state_set("k".into(), vec![2; 9]),
        Ok(()),
        "replacing frees the old value"
    );
    host.state_delete("k".into());
    assert_eq!(host.state_get("k".into()), None);

    let body = "(if (i64.eq (call $now) (i64.const 13)) (then (unreachable))) (i32.const 2048)";
    let plugin = load(&plugin_wat("\\00", body, ""), Limits::default()).expect("loads");
    let state = std::collections::BTreeMap::from([("seen".to_string(), vec![7u8])]);
    let mut instance = plugin.instantiate(state.clone()).expect("instance");
    assert!(instance.on_event(&activity(), 13).is_err());
    assert_eq!(
        instance.state(),
        state,
        "the host-kept state outlives the instance"
    );
}

#[test]
fn compiled_plugins_are_cached_and_a_damaged_cache_is_recompiled() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = dir.path().join("plugin-cache");
    let bytes = component(&plugin_wat("\\00", hello_body(), ""));
    let runtime = PluginRuntime::with_cache(&cache).expect("runtime");
    Plugin::load(&runtime, &bytes, "", Limits::default()).expect("compiles");
    let files: Vec<_> = std::fs::read_dir(&cache)
        .expect("cache")
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let from_cache = Plugin::load(&runtime, &bytes, "", Limits::default()).expect("from the cache");
    let mut instance = from_cache
        .instantiate(Default::default())
        .expect("instance");
    assert_eq!(instance.on_event(&activity(), 0).expect("runs").len(), 1);

    std::fs::write(&files[0], b"damaged").expect("damage");
    let again = Plugin::load(&runtime, &bytes, "", Limits::default()).expect("recompiled");
    assert_eq!(again.info().name, "hello");
    assert_ne!(std::fs::read(&files[0]).expect("rewritten"), b"damaged");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&files[0])
            .expect("stat")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
    }
}
