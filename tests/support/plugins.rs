//! Test plugins built from hand-written WAT: no guest toolchain needed. Shared by the unit tests
//! of `host/src/rules/wasm` and the end-to-end tests (included with `#[path]`).

/// The contract, embedded into test components.
pub const WIT: &str = include_str!("../../wit/vigilo-alarms.wit");

/// The first contract, for components as plugins built for it look.
pub const WIT_0_1: &str = include_str!("../../wit/0.1.0/vigilo-alarms.wit");

/// Turns a core module in WAT into a `rule-plugin` component of the contract version it imports
/// (`vigilo:alarms/host@0.1.0` or the current one).
pub fn component(wat: &str) -> Vec<u8> {
    let mut module = wat::parse_str(wat).expect("valid WAT");
    let wit = if wat.contains("vigilo:alarms/host@0.1.0") {
        WIT_0_1
    } else {
        WIT
    };
    let mut resolve = wit_parser::Resolve::default();
    let pkg = resolve
        .push_str("vigilo-alarms.wit", wit)
        .expect("WIT parses");
    let world = resolve
        .select_world(&[pkg], Some("rule-plugin"))
        .expect("world");
    wit_component::embed_component_metadata(
        &mut module,
        &resolve,
        world,
        wit_component::StringEncoding::UTF8,
        false,
    )
    .expect("embed");
    wit_component::ComponentEncoder::default()
        .module(&module)
        .expect("module")
        .validate(true)
        .encode()
        .expect("encode")
}

/// A plugin named `hello` subscribed to activity (or `kinds`, as bytes of the WIT enum) whose
/// `on-event` has `body` (it returns a pointer to a `list<triggered>`; the one at 2048 holds one
/// alarm "hello", risk 3). It reads every field. Its event comes as locals 0–3: `ts-ms`, `kind`,
/// and the pointer to and length of `fields` (a `field-value` is 24 bytes, its field first).
pub fn plugin_wat(kinds: &str, body: &str, extra: &str) -> String {
    let every: String = (0..26).map(|i| format!("\\{i:02x}")).collect();
    plugin_wat_reading(kinds, &every, body, extra)
}

/// [`plugin_wat`] reading only `reads` (bytes of the WIT `field` enum, as WAT escapes).
pub fn plugin_wat_reading(kinds: &str, reads: &str, body: &str, extra: &str) -> String {
    let fields = reads.matches('\\').count();
    // plugin-info { name "hello", version "1.0.0", subscribes, config-help "help", reads }
    let info = format!(
        "{}\\96\\00\\00\\00\\{fields:02x}\\00\\00\\00",
        info_0_1(kinds)
    );
    module("0.2.0", kinds, &info, reads, body, extra)
}

/// [`plugin_wat`] as built for contract 0.1.0: its plugin-info has no `reads`, and its
/// `on-event` gets a pointer to the whole event record (every field an option) as local 0.
pub fn plugin_wat_0_1(kinds: &str, body: &str, extra: &str) -> String {
    module("0.1.0", kinds, &info_0_1(kinds), "", body, extra)
}

/// plugin-info { name "hello", version "1.0.0", subscribes, config-help "help" } as 0.1.0 lays
/// it out (0.2.0 adds `reads` after it).
fn info_0_1(kinds: &str) -> String {
    // `kinds` is WAT string escapes, one `\NN` per subscribed kind.
    let count = kinds.matches('\\').count();
    format!(
        "\\00\\00\\00\\00\\05\\00\\00\\00\\05\\00\\00\\00\\05\\00\\00\\00\\64\\00\\00\\00\\{count:02x}\\00\\00\\00\\0a\\00\\00\\00\\04\\00\\00\\00"
    )
}

fn module(version: &str, kinds: &str, info: &str, reads: &str, body: &str, extra: &str) -> String {
    let event = match version {
        "0.1.0" => "(param i32)",
        _ => "(param i64 i32 i32 i32)",
    };
    format!(
        r#"(module
  (import "vigilo:alarms/host@{version}" "now" (func $now (result i64)))
  (import "vigilo:alarms/host@{version}" "log" (func $log (param i32 i32 i32)))
  (import "vigilo:alarms/host@{version}" "state-set" (func $state_set (param i32 i32 i32 i32 i32)))
  (memory (export "memory") 2)
  (global $heap (mut i32) (i32.const 72000))
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    (local $p i32)
    (if (i32.gt_u (global.get $heap) (i32.const 125000)) (then (global.set $heap (i32.const 72000))))
    (local.set $p (i32.and (i32.add (global.get $heap) (i32.sub (local.get 2) (i32.const 1)))
                           (i32.xor (i32.sub (local.get 2) (i32.const 1)) (i32.const -1))))
    (global.set $heap (i32.add (local.get $p) (local.get 3)))
    (local.get $p))
  (data (i32.const 0) "hello1.0.0help")
  (data (i32.const 100) "{kinds}")
  (data (i32.const 150) "{reads}")
  (data (i32.const 256) "{info}")
  (func (export "describe") (result i32) (i32.const 256))
  ;; result<_, string>: ok
  (data (i32.const 512) "\00")
  (func (export "configure") (param i32 i32) (result i32) (i32.const 512))
  ;; triggered {{ alarm "hello", risk 3, actions [], note none }}
  (data (i32.const 1024) "\00\00\00\00\05\00\00\00\03\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00")
  ;; list<triggered> of one, at 1024
  (data (i32.const 2048) "\00\04\00\00\01\00\00\00")
  {extra}
  (func (export "on-event") {event} (result i32) {body})
)"#
    )
}

pub fn hello_body() -> &'static str {
    "(call $log (i32.const 1) (i32.const 0) (i32.const 5)) (i32.const 2048)"
}
