//! WASM rule plugins: sandboxed components implementing `wit/vigilo-alarms.wit`.
//!
//! A [`PluginRuntime`] holds the wasmtime engine (one per agent) and a thread that advances its
//! epoch every millisecond: at a call's deadline tick, and each tick after, the call is ended if
//! it has used its deadline of CPU time ([`crate::rules::program::clock`]). A [`Plugin`] is a
//! compiled component that described and configured itself successfully; each user of it makes
//! a [`PluginInstance`], a long-lived instance (plain fields in the plugin survive between
//! events) whose calls are bounded by the plugin's [`Limits`]. A call that traps, overruns its
//! deadline or memory, or returns something invalid is a [`Fault`]: the instance is rebuilt
//! (the host-kept state survives), and the supervision shared with scripts
//! ([`crate::rules::program`]) switches a plugin off after repeated faults.

pub(crate) mod convert;
mod exports;
mod host;
mod v0_1;

pub use crate::rules::program::{Fault, Limits, LogLine, PluginAlarm, ProgramInfo};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::Digest;
use std::time::Duration;

use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, Store, Trap};

use crate::event::{Event, FieldSet, KindSet};
use crate::rules::program::{Loaded, Program, Runner, State, Supervised};

use host::HostState;

/// Code generated from the WIT contract, the current version (older ones: [`v0_1`]).
pub(crate) mod bindings {
    wasmtime::component::bindgen!({
        world: "rule-plugin",
        path: "../wit/vigilo-alarms.wit",
        ownership: Borrowing { duplicate_if_necessary: true },
    });
}

/// How often the epoch advances: the resolution of call deadlines.
const EPOCH_TICK: Duration = Duration::from_millis(1);

/// The wasmtime engine plugins run on, and the ticker that enforces deadlines. The ticker runs
/// as long as anything (this runtime, a loaded plugin) still holds the engine.
pub struct PluginRuntime {
    engine: Engine,
    linker: Arc<Linker<HostState>>,
    /// Where compiled components are kept, if anywhere.
    cache: Option<PathBuf>,
}

impl PluginRuntime {
    /// Starts a runtime (compiler settings, host functions, the epoch ticker).
    pub fn new() -> anyhow::Result<PluginRuntime> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        let engine = Engine::new(&config)?;
        let mut linker = Linker::new(&engine);
        // Every contract version's host functions: a component finds the ones it was built for.
        bindings::RulePlugin::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)?;
        v0_1::bindings::RulePlugin::add_to_linker::<HostState, HasSelf<HostState>>(
            &mut linker,
            |s| s,
        )?;
        let ticking = engine.weak();
        std::thread::Builder::new()
            .name("vigilo-plugin-epoch".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(EPOCH_TICK);
                    match ticking.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => break,
                    }
                }
            })?;
        Ok(PluginRuntime {
            engine,
            linker: Arc::new(linker),
            cache: None,
        })
    }

    /// A runtime that keeps compiled components in `dir` (created owner-only), so a plugin is
    /// compiled once, not at every start.
    pub fn with_cache(dir: &Path) -> anyhow::Result<PluginRuntime> {
        crate::owner_only::create_dir(dir)?;
        let mut runtime = PluginRuntime::new()?;
        runtime.cache = Some(dir.to_path_buf());
        Ok(runtime)
    }

    /// Compiles a component, or loads its compiled form from the cache. The cache key is the
    /// component's SHA-256 and a hash of this engine's version and settings, so a changed
    /// plugin or an upgraded agent never reuses stale code.
    fn compile(&self, bytes: &[u8]) -> anyhow::Result<Component> {
        let Some(dir) = &self.cache else {
            return Ok(Component::new(&self.engine, bytes)?);
        };
        let mut engine_hash = std::hash::DefaultHasher::new();
        std::hash::Hash::hash(
            &self.engine.precompile_compatibility_hash(),
            &mut engine_hash,
        );
        let digest = sha2::Sha256::digest(bytes);
        let hex = crate::hex::encode(&digest);
        let path = dir.join(format!(
            "{hex}-{:016x}.cwasm",
            std::hash::Hasher::finish(&engine_hash)
        ));
        // Read into memory rather than mapped: a file changed under a mapping would fault.
        if let Ok(compiled) = std::fs::read(&path) {
            // SAFETY: `deserialize` runs the machine code it is given, so it must be code this
            // engine produced. It is: the agent alone writes this directory (created 0700,
            // files written 0600 below), under a name that binds the source's SHA-256 and this
            // engine's version and settings; wasmtime also checks the header against the
            // engine. Anyone able to write here could already replace the agent itself.
            match unsafe { Component::deserialize(&self.engine, &compiled) } {
                Ok(component) => return Ok(component),
                Err(e) => {
                    tracing::warn!(path = %path.display(), "cached plugin unusable, recompiling: {e:#}")
                }
            }
        }
        let component = Component::new(&self.engine, bytes)?;
        if let Err(e) = write_private(&path, &component.serialize()?) {
            tracing::warn!(path = %path.display(), "cannot cache the compiled plugin: {e}");
        }
        Ok(component)
    }
}

/// Writes `bytes` to `path` atomically (a temporary file renamed), readable by the owner only.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// A compiled plugin that described and configured itself.
pub struct Plugin {
    info: ProgramInfo,
    pre: exports::Pre,
    engine: Engine,
    limits: Limits,
    config: String,
}

impl Plugin {
    /// Compiles `bytes` (a component), checks it implements the contract, and calls `describe`
    /// and `configure(config)`. Errors say what is wrong, for the admin loading it.
    pub fn load(
        runtime: &PluginRuntime,
        bytes: &[u8],
        config: &str,
        limits: Limits,
    ) -> anyhow::Result<Plugin> {
        let component = runtime
            .compile(bytes)
            .map_err(|e| anyhow::anyhow!("not a valid WebAssembly component: {e:#}"))?;
        let instance_pre = runtime.linker.instantiate_pre(&component).map_err(|e| {
            anyhow::anyhow!("does not fit the vigilo:alarms contract (imports): {e:#}")
        })?;
        let pre = exports::Pre::new(instance_pre).map_err(|e| {
            anyhow::anyhow!("does not fit the vigilo:alarms contract (exports): {e:#}")
        })?;
        let mut plugin = Plugin {
            info: ProgramInfo {
                name: String::new(),
                version: String::new(),
                subscribes: KindSet::EMPTY,
                config_help: String::new(),
                reads: FieldSet::EMPTY,
            },
            pre,
            engine: runtime.engine.clone(),
            limits,
            config: config.to_string(),
        };
        let mut instance = plugin.fresh_instance("(loading)", BTreeMap::new())?;
        let info = instance
            .call(|b, s| b.describe(s))
            .map_err(|f| anyhow::anyhow!("describe {f}"))?;
        plugin.info = ProgramInfo {
            name: info.name,
            version: info.version,
            subscribes: info
                .subscribes
                .into_iter()
                .fold(KindSet::EMPTY, |k, s| k.or(convert::kind_from_wit(s).bit())),
            config_help: info.config_help,
            reads: info
                .reads
                .into_iter()
                .map(convert::field_from_wit)
                .collect(),
        }
        .check()
        .map_err(anyhow::Error::msg)?;
        instance.store.data_mut().plugin = plugin.info.name.clone();
        plugin.configure(&mut instance)?;
        Ok(plugin)
    }

    /// What the plugin said it is.
    pub fn info(&self) -> &ProgramInfo {
        &self.info
    }

    /// The version of the `vigilo:alarms` contract it was built for.
    pub fn contract(&self) -> &'static str {
        self.pre.contract()
    }

    /// A new instance, configured, with `state` as its key-value state, under supervision.
    pub fn instantiate(&self, state: State) -> anyhow::Result<PluginInstance<'_>> {
        let live = self.live(state)?;
        let runner = WasmRunner {
            plugin: self,
            inner: Some(live),
            kept_state: State::new(),
            log: Vec::new(),
        };
        Ok(Supervised::new(
            self.info.clone(),
            "plugin",
            &self.limits,
            runner,
        ))
    }

    /// A configured instance.
    fn live(&self, state: State) -> anyhow::Result<Live> {
        let mut instance = self.fresh_instance(&self.info.name, state)?;
        self.configure(&mut instance)?;
        Ok(instance)
    }

    fn configure(&self, instance: &mut Live) -> anyhow::Result<()> {
        let config = self.config.clone();
        match instance.call(|b, s| b.configure(s, &config)) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(why)) => anyhow::bail!("rejected its configuration: {why}"),
            Err(f) => anyhow::bail!("configure {f}"),
        }
    }

    fn fresh_instance(&self, name: &str, state: BTreeMap<String, Vec<u8>>) -> anyhow::Result<Live> {
        let mut store = Store::new(&self.engine, HostState::new(name, &self.limits, state));
        store.limiter(|s| s.limiter());
        // At the deadline's tick, the call ends only if it has used its deadline of CPU time
        // (a busy machine is not the plugin's fault); otherwise it is looked at again a tick
        // later.
        let deadline = self.limits.deadline;
        store.epoch_deadline_callback(move |ctx| {
            Ok(if ctx.data().clock.past(deadline) {
                wasmtime::UpdateDeadline::Interrupt
            } else {
                wasmtime::UpdateDeadline::Continue(1)
            })
        });
        // Instantiation runs the component's start code: it gets a deadline too.
        store.set_epoch_deadline(self.limits.deadline.as_millis().max(1) as u64);
        let bindings = self.pre.instantiate(&mut store)?;
        Ok(Live {
            store,
            bindings,
            deadline: self.limits.deadline,
            memory: self.limits.memory_bytes,
        })
    }
}

/// An instance and its store.
struct Live {
    store: Store<HostState>,
    bindings: exports::Exports,
    deadline: Duration,
    memory: usize,
}

impl Live {
    /// Runs one export under the deadline, turning failures into [`Fault`]s.
    fn call<R>(
        &mut self,
        f: impl FnOnce(&exports::Exports, &mut Store<HostState>) -> wasmtime::Result<R>,
    ) -> Result<R, Fault> {
        let ticks = self.deadline.as_millis().max(1) as u64;
        self.store.data_mut().clock = crate::rules::program::clock::CallClock::start();
        self.store.set_epoch_deadline(ticks);
        f(&self.bindings, &mut self.store).map_err(|e| {
            if let Some(Trap::Interrupt) = e.downcast_ref::<Trap>() {
                return Fault::Deadline(self.deadline);
            }
            let text = format!("{e:#}");
            // The store's limiter refuses growth past the cap and makes that a trap.
            if text.contains("forcing trap when growing memory") {
                return Fault::Memory(self.memory);
            }
            Fault::Trap(describe_trap(&e))
        })
    }
}

/// Frames of a trap's backtrace shown in its fault: where it happened, not the whole stack.
const FRAMES_SHOWN: usize = 5;

/// A trap as its author needs it: what happened in words (a stack that ran out is named as
/// such), then the innermost few frames with demangled names.
fn describe_trap(e: &wasmtime::Error) -> String {
    let what = match e.downcast_ref::<Trap>() {
        Some(Trap::StackOverflow) => "the call stack ran out (recursion too deep?)".to_string(),
        // Rust and C keep their own stack in linear memory, below everything else: running off
        // its end is an access out of bounds, not a trap of its own.
        Some(Trap::MemoryOutOfBounds) => "out of bounds memory access (also what a plugin's \
             own stack running out looks like: recursion too deep, or a large local array?)"
            .to_string(),
        Some(Trap::UnreachableCodeReached) => {
            "reached `unreachable` (a Rust panic or abort ends this way)".to_string()
        }
        Some(trap) => trap.to_string(),
        None => e.root_cause().to_string(),
    };
    let Some(trace) = e.downcast_ref::<wasmtime::WasmBacktrace>() else {
        return what;
    };
    // The panic machinery's own frames say nothing about the plugin: skipped, and a frame
    // repeated by recursion is shown once with its count.
    let runtime = [
        "std::",
        "core::",
        "alloc::",
        "__rustc::",
        "<std::",
        "<core::",
        "<alloc::",
    ];
    let mut frames: Vec<(String, usize)> = Vec::new();
    for f in trace.frames() {
        let name = match f.func_name() {
            Some(name) => format!("{:#}", rustc_demangle::demangle(name)),
            None => format!("function {}", f.func_index()),
        };
        if runtime.iter().any(|r| name.starts_with(r)) {
            continue;
        }
        match frames.last_mut() {
            Some((last, n)) if *last == name => *n += 1,
            _ => frames.push((name, 1)),
        }
    }
    if frames.is_empty() {
        return what;
    }
    let more = frames.len().saturating_sub(FRAMES_SHOWN);
    let shown: Vec<String> = frames
        .iter()
        .take(FRAMES_SHOWN)
        .map(|(name, n)| {
            if *n > 1 {
                format!("{name} ×{n}")
            } else {
                name.clone()
            }
        })
        .collect();
    let rest = if more > 0 {
        format!(" … {more} more")
    } else {
        String::new()
    };
    format!("{what}; in {}{rest}", shown.join(" ← "))
}

impl Loaded for Plugin {
    fn info(&self) -> &ProgramInfo {
        &self.info
    }

    fn start(&self, state: State) -> anyhow::Result<Box<dyn Program + '_>> {
        Ok(Box::new(self.instantiate(state)?))
    }
}

/// A running plugin: a plugin under supervision (see [`crate::rules::program`]).
pub type PluginInstance<'p> = Supervised<WasmRunner<'p>>;

/// One instance of a plugin, kept between events, rebuilt after a fault.
pub struct WasmRunner<'p> {
    plugin: &'p Plugin,
    inner: Option<Live>,
    /// The state of the last instance dropped (after a fault, or when switched off), so that
    /// neither a restart nor the store ever sees it lost.
    kept_state: State,
    /// What the last call logged.
    log: Vec<LogLine>,
}

impl WasmRunner<'_> {
    /// Drops the running instance, keeping its state.
    fn drop_instance(&mut self) {
        if let Some(live) = self.inner.take() {
            self.kept_state = live.store.data().state.clone();
        }
    }
}

impl Runner for WasmRunner<'_> {
    fn call(&mut self, event: &Event, now_ms: i64) -> Result<Vec<PluginAlarm>, Fault> {
        if self.inner.is_none() {
            // Rebuilt after a fault: a trapped instance may not be entered again.
            let live = self
                .plugin
                .live(self.kept_state.clone())
                .map_err(|e| Fault::Trap(format!("could not be restarted: {e:#}")))?;
            self.inner = Some(live);
        }
        let Some(live) = self.inner.as_mut() else {
            return Err(Fault::Quarantined);
        };
        {
            let data = live.store.data_mut();
            data.now_ms = now_ms;
            // Lines from `configure` are not this event's.
            data.take_log();
        }
        let reads = self.plugin.info.reads;
        let returned = live.call(|b, s| b.on_event(s, event, reads));
        // Taken before any rebuild: the lines leading up to a trap are what an author needs.
        self.log = live.store.data_mut().take_log();
        match returned {
            Ok(triggered) => {
                convert::alarms_from_wit(triggered, &self.plugin.limits).map_err(Fault::Invalid)
            }
            Err(fault) => {
                // Keep the state the host holds for it; drop the broken instance, and build
                // the next one now rather than in the middle of the next event.
                self.drop_instance();
                self.inner = self.plugin.live(self.kept_state.clone()).ok();
                // The SDK's panic hook logs the panic's message and place before the abort
                // traps: that is the fault's first line, not the trap it ends in.
                let panic = self
                    .log
                    .iter()
                    .rev()
                    .find(|l| l.level == "error" && l.message.starts_with("panicked at "));
                match (fault, panic) {
                    (Fault::Trap(trap), Some(line)) => {
                        Err(Fault::Trap(format!("{} ({trap})", line.message)))
                    }
                    (fault, _) => Err(fault),
                }
            }
        }
    }

    fn take_log(&mut self) -> Vec<LogLine> {
        std::mem::take(&mut self.log)
    }

    fn state(&self) -> State {
        match &self.inner {
            Some(live) => live.store.data().state.clone(),
            None => self.kept_state.clone(),
        }
    }

    fn shut_down(&mut self) {
        self.drop_instance();
    }
}

#[cfg(test)]
mod tests;
