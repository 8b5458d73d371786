//! Criterion benchmarks of the rules stage: evaluation, JSONL parsing, and the replay pipeline,
//! on the standard pack plus 200 generated alarms (the same data `vigilo bench` uses).
//!
//! `cargo bench -p vigilo` runs them; throughput is reported in events per second.

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

use vigilo::event::parse_line;
use vigilo::packs::Pack;
use vigilo::pipeline::{Mode, Pipeline};
use vigilo::rule_set::RuleSet;
use vigilo::rules::Scratch;
use vigilo::synth;

const EVENTS: usize = 20_000;

fn rules() -> RuleSet {
    let standard = Pack::standard().expect("standard pack");
    RuleSet::new(vec![standard, synth::generated_pack(200, 7)]).expect("compiles")
}

fn benches(c: &mut Criterion) {
    let rules = rules();
    let events = synth::mixed_events(EVENTS, 7);
    let lines: Vec<String> = events.iter().map(|e| e.to_json()).collect();
    let mut group = c.benchmark_group("rules");
    group.throughput(Throughput::Elements(EVENTS as u64));
    group.sample_size(20);

    group.bench_function("evaluate", |b| {
        let mut scratch = Scratch::default();
        let mut out = Vec::new();
        b.iter(|| {
            let mut hits = 0;
            for e in &events {
                out.clear();
                rules.engine().evaluate(e, &mut scratch, &mut out);
                hits += out.len();
            }
            hits
        })
    });
    group.bench_function("parse", |b| {
        b.iter(|| lines.iter().filter(|l| parse_line(l).is_ok()).count())
    });
    group.bench_function("parse_and_evaluate", |b| {
        let mut scratch = Scratch::default();
        let mut out = Vec::new();
        b.iter(|| {
            for l in &lines {
                if let Ok(e) = parse_line(l) {
                    out.clear();
                    rules.engine().evaluate(&e, &mut scratch, &mut out);
                }
            }
            out.len()
        })
    });
    group.bench_function("pipeline_spans", |b| {
        b.iter_batched(
            || events.clone(),
            |events| {
                let mut pipeline = Pipeline::new(&rules, Mode::Spans);
                let mut fired = Vec::new();
                for e in events {
                    pipeline.push(e, &mut fired);
                }
                pipeline.finish(&mut fired);
                fired.len()
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

#[path = "../../tests/support/plugins.rs"]
mod support;

/// One call per event into a plugin, so this is the host's own cost: lowering the event,
/// lifting the answer, checking it. `quiet` answers nothing (most events, for most rules) and
/// reads every field, `quiet_reads_one` reads only `username`, `quiet_0_1` is built for contract
/// 0.1.0 (every field, always); `hello` logs a line and returns one alarm for every event.
fn plugin_calls(c: &mut Criterion) {
    use vigilo::rules::program::Program;
    use vigilo::rules::wasm::{Limits, Plugin, PluginRuntime};
    let runtime = PluginRuntime::new().expect("runtime");
    let bytes = support::component(&support::plugin_wat(
        "\\00\\01\\02",
        support::hello_body(),
        "",
    ));
    // An empty list<triggered>: pointer 0, length 0.
    let (none, empty) = (
        "(i32.const 2100)",
        "(data (i32.const 2100) \"\\00\\00\\00\\00\\00\\00\\00\\00\")",
    );
    let kinds = "\\00\\01\\02";
    let quiet = support::component(&support::plugin_wat(kinds, none, empty));
    let quiet_reads_one =
        support::component(&support::plugin_wat_reading(kinds, "\\00", none, empty));
    let quiet_0_1 = support::component(&support::plugin_wat_0_1(kinds, none, empty));
    let events = synth::mixed_events(EVENTS, 7);
    let mut group = c.benchmark_group("plugin");
    group.throughput(Throughput::Elements(EVENTS as u64));
    group.sample_size(10);
    group.bench_function("load", |b| {
        b.iter(|| Plugin::load(&runtime, &bytes, "", Limits::default()).expect("loads"))
    });
    let cache = tempfile::tempdir().expect("tempdir");
    let cached = PluginRuntime::with_cache(cache.path()).expect("runtime");
    Plugin::load(&cached, &bytes, "", Limits::default()).expect("fills the cache");
    group.bench_function("load_cached", |b| {
        b.iter(|| Plugin::load(&cached, &bytes, "", Limits::default()).expect("loads"))
    });
    for (name, bytes) in [
        ("on_event_quiet", &quiet),
        ("on_event_quiet_reads_one", &quiet_reads_one),
        ("on_event_quiet_0_1", &quiet_0_1),
        ("on_event_hello", &bytes),
    ] {
        let plugin = Plugin::load(&runtime, bytes, "", Limits::default()).expect("loads");
        let mut instance = plugin.instantiate(Default::default()).expect("instance");
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut n = 0;
                for e in &events {
                    n += instance.on_event(e, 0).expect("no fault").len();
                }
                n
            })
        });
    }
    group.finish();
}

/// One call per event into a Rhai script: `short` reads one field and answers nothing (the
/// common case), `after_hours` is examples/rhai/after-hours.rhai (every activity event:
/// two fields read, a string built, the local time computed).
fn script_calls(c: &mut Criterion) {
    use vigilo::rules::program::{Limits, Program};
    use vigilo::rules::script::Script;
    let short = r#"fn describe() { #{ name: "short", version: "1.0.0", subscribes: ["activity"] } }
fn on_event(event, settings) { if (event.title ?? "").contains("poker") { [#{ alarm: "Poker", risk: 2 }] } else { [] } }"#;
    let after_hours = include_str!("../../examples/rhai/after-hours.rhai");
    let events: Vec<_> = synth::mixed_events(EVENTS, 7)
        .into_iter()
        .filter(|e| e.kind() == vigilo::event::EventKind::Activity)
        .collect();
    let mut group = c.benchmark_group("script");
    group.throughput(Throughput::Elements(events.len() as u64));
    group.sample_size(10);
    for (name, source, config) in [
        ("on_event_short", short, ""),
        (
            "on_event_after_hours",
            after_hours,
            "apps = [\"keepassxc\", \"soffice\"]",
        ),
    ] {
        let script = Script::load(name, source, config, Limits::default()).expect("loads");
        let mut running = script.instantiate(&Default::default());
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut n = 0;
                for e in &events {
                    n += running.on_event(e, 0).expect("no fault").len();
                }
                n
            })
        });
    }
    group.finish();
}

criterion_group!(engine, benches, plugin_calls, script_calls);
criterion_main!(engine);
