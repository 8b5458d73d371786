//! Rhai rule scripts: the contract of a WASM plugin, written as a short script.
//!
//! A script defines three functions:
//!
//! ```rhai
//! fn describe() { #{ name: "usb-devices", version: "1.0.0", subscribes: ["usb"], config_help: "…" } }
//! fn configure(config) { /* check the pack's config (a map), return the settings or throw */ config }
//! fn on_event(event, settings) { /* return [], or alarms: */ [#{ alarm: "…", risk: 5 }] }
//! ```
//!
//! `on_event` runs with `this` bound to the script's state: a map the agent keeps in its store,
//! so `this.seen = …` survives restarts. `configure` is optional (the settings are then the
//! config map itself). Host functions: `log(level, text)`, `print(text)`, `now()` (the agent's
//! clock; in replay, the recording's) and `local_time(ts_ms, utc_offset_minutes)`.
//!
//! The sandbox: no `eval`, no modules (nothing is read from disk), no custom syntax, no clock
//! but the agent's; per call a budget of operations and a deadline in the script's own CPU time
//! (checked from Rhai's progress callback; see [`crate::rules::program::clock`]), bounded call and expression depth, and caps on the size of
//! strings, arrays and maps. The AST is compiled once, when the pack loads.

mod bounded;
mod convert;
mod event;

#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use rhai::{AST, CallFnOptions, Dynamic, Engine, EvalAltResult, Map, Position, Scope};

use crate::event::{Event, EventKind, KindSet};
use crate::rules::program::{
    CallLog, Fault, Limits, Loaded, LogLine, PluginAlarm, Program, ProgramInfo, Runner, State,
    Supervised,
};

use event::ScriptEvent;

/// Longest string a script may build, in bytes.
const MAX_STRING: usize = 64 << 10;
/// Most elements in one array, and entries in one map (Rhai counts nested ones too).
const MAX_ITEMS: usize = 10_000;
/// Deepest chain of function calls.
const MAX_CALL_DEPTH: usize = 32;
/// Deepest expression, at the top level and inside functions.
const MAX_EXPR_DEPTH: (usize, usize) = (64, 32);
/// How often (in operations) the wall clock is read: often enough for a tight deadline,
/// rarely enough to cost nothing.
const CLOCK_EVERY: u64 = 1 << 10;

/// A compiled script that described and configured itself.
pub struct Script {
    file: String,
    info: ProgramInfo,
    ast: AST,
    /// What `configure` returned, shared so that handing it to every call copies nothing.
    settings: Dynamic,
    limits: Limits,
}

/// A script that does not parse: where, and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntaxError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What the parser expected or refused.
    pub message: String,
}

/// Checks a script's syntax (with the sandbox's restrictions: no `eval`, no `import`…). Pack
/// loading uses this so a broken script is reported with the pack's other problems.
pub fn check_syntax(source: &str) -> Result<(), SyntaxError> {
    Sandbox::new("(syntax check)", &Limits::default())
        .engine
        .compile(source)
        .map(|_| ())
        .map_err(|e| SyntaxError {
            line: e.position().line().unwrap_or(1),
            column: e.position().position().unwrap_or(1),
            message: e.err_type().to_string(),
        })
}

impl Script {
    /// Compiles `source`, calls `describe` and `configure(config)`. Errors name the file, and
    /// where in it.
    pub fn load(file: &str, source: &str, config: &str, limits: Limits) -> Result<Script, String> {
        let sandbox = Sandbox::new(file, &limits);
        let ast = sandbox
            .engine
            .compile(source)
            .map_err(|e| format!("{file}:{}: {}", place(e.position()), e.err_type()))?;
        for (name, params) in [("describe", 0), ("on_event", 2)] {
            if !ast
                .iter_functions()
                .any(|f| f.name == name && f.params.len() == params)
            {
                return Err(format!(
                    "{file}: no `fn {name}({})`",
                    ["event", "settings"][..params].join(", ")
                ));
            }
        }
        let mut scope = Scope::new();
        let described: Dynamic = sandbox
            .call(&ast, &mut scope, "describe", (), None)
            .map_err(|e| format!("{file}: describe: {}", sandbox.explain(file, &e)))?;
        let info = describe(described).map_err(|e| format!("{file}: describe: {e}"))?;
        let config = convert::config_to_map(config).map_err(|e| format!("{file}: {e}"))?;
        let configures = ast
            .iter_functions()
            .any(|f| f.name == "configure" && f.params.len() == 1);
        let settings = if configures {
            sandbox
                .call(&ast, &mut scope, "configure", (config,), None)
                .map_err(|e| match *e {
                    // `throw "why"` is how a script refuses its configuration.
                    EvalAltResult::ErrorRuntime(why, _) => {
                        format!("{file}: rejected its configuration: {why}")
                    }
                    _ => format!("{file}: configure: {}", sandbox.explain(file, &e)),
                })?
        } else {
            config
        };
        Ok(Script {
            file: file.to_string(),
            info,
            ast,
            settings: settings.into_shared(),
            limits,
        })
    }

    /// A running copy, under supervision, whose `this` starts as `state`.
    pub fn instantiate(&self, state: &State) -> Supervised<ScriptRunner<'_>> {
        let runner = ScriptRunner {
            script: self,
            sandbox: Sandbox::new(&self.info.name, &self.limits),
            this: convert::state_from_store(state, &self.info.name),
        };
        Supervised::new(self.info.clone(), "script", &self.limits, runner)
    }

    /// The file it came from, inside its pack.
    pub fn file(&self) -> &str {
        &self.file
    }
}

impl Loaded for Script {
    fn info(&self) -> &ProgramInfo {
        &self.info
    }

    fn start(&self, state: State) -> anyhow::Result<Box<dyn Program + '_>> {
        Ok(Box::new(self.instantiate(&state)))
    }
}

/// What `describe` returned, checked.
fn describe(value: Dynamic) -> Result<ProgramInfo, String> {
    let type_name = value.type_name();
    let mut map = value
        .try_cast::<Map>()
        .ok_or_else(|| format!("must return a map, found {type_name}"))?;
    let mut text = |key: &str| -> Result<String, String> {
        match map.remove(key) {
            Some(v) if v.is_string() => Ok(v.to_string()),
            Some(v) => Err(format!("{key}: expected a string, found {}", v.type_name())),
            None if key == "config_help" => Ok(String::new()),
            None => Err(format!("{key}: missing")),
        }
    };
    let (name, version, config_help) = (text("name")?, text("version")?, text("config_help")?);
    let kinds = map
        .remove("subscribes")
        .ok_or("subscribes: missing (a list of event kinds)")?;
    let kinds = kinds
        .try_cast::<rhai::Array>()
        .ok_or("subscribes: expected a list of event kinds")?;
    let mut subscribes = KindSet::EMPTY;
    for k in kinds {
        let kind = EventKind::from_name(&k.to_string()).ok_or_else(|| {
            format!("subscribes: unknown event kind {k:?}; expected activity, usb or account")
        })?;
        subscribes = subscribes.or(kind.bit());
    }
    if let Some(extra) = map.keys().next() {
        return Err(format!(
            "{extra}: unknown field; expected name, version, subscribes, config_help"
        ));
    }
    ProgramInfo {
        name,
        version,
        subscribes,
        config_help,
        // A script sees the event as a map of every field it has.
        reads: crate::event::FieldSet::ALL,
    }
    .check()
}

/// One engine with its sandbox, and the per-call context its host functions read.
struct Sandbox {
    engine: Engine,
    context: Arc<CallContext>,
    limits: Limits,
}

/// What host functions and the progress callback need during a call.
struct CallContext {
    now_ms: AtomicI64,
    /// When the current call started (its deadline is in its own CPU time).
    clock: Mutex<crate::rules::program::clock::CallClock>,
    log: Mutex<CallLog>,
    deadline: std::time::Duration,
    limits: Limits,
    /// The script's name, for the agent's own log.
    name: String,
}

impl CallContext {
    fn log(&self, level: &'static str, message: String) {
        if let Ok(mut log) = self.log.lock() {
            log.push(&self.name, level, message, &self.limits);
        }
    }
}

impl Sandbox {
    fn new(name: &str, limits: &Limits) -> Sandbox {
        let context = Arc::new(CallContext {
            now_ms: AtomicI64::new(0),
            clock: Mutex::new(crate::rules::program::clock::CallClock::start()),
            log: Mutex::new(CallLog::default()),
            deadline: limits.deadline,
            limits: limits.clone(),
            name: name.to_string(),
        });
        let mut engine = Engine::new();
        engine
            .disable_symbol("eval")
            .set_max_operations(limits.max_operations)
            .set_max_call_levels(MAX_CALL_DEPTH)
            .set_max_expr_depths(MAX_EXPR_DEPTH.0, MAX_EXPR_DEPTH.1)
            .set_max_string_size(MAX_STRING)
            .set_max_array_size(MAX_ITEMS)
            .set_max_map_size(MAX_ITEMS)
            .set_max_variables(1_000)
            .set_max_functions(1_000)
            .set_strict_variables(true);
        let ctx = context.clone();
        engine.on_progress(move |ops| {
            if ops % CLOCK_EVERY != 0 {
                return None;
            }
            let past = ctx.clock.lock().is_ok_and(|c| c.past(ctx.deadline));
            past.then(|| Dynamic::from("deadline"))
        });
        let ctx = context.clone();
        engine.on_print(move |text| ctx.log("info", text.to_string()));
        let ctx = context.clone();
        engine.on_debug(move |text, _, _| ctx.log("debug", text.to_string()));
        let ctx = context.clone();
        engine.register_fn("log", move |level: &str, text: &str| {
            let level = match level {
                "debug" => "debug",
                "warn" => "warn",
                "error" => "error",
                _ => "info",
            };
            ctx.log(level, text.to_string());
        });
        let ctx = context.clone();
        engine.register_fn("now", move || ctx.now_ms.load(Ordering::Relaxed));
        event::register(&mut engine);
        bounded::register(&mut engine, MAX_STRING);
        Sandbox {
            engine,
            context,
            limits: limits.clone(),
        }
    }

    /// Calls `name` with the deadline armed and `this` bound when given.
    fn call(
        &self,
        ast: &AST,
        scope: &mut Scope,
        name: &str,
        args: impl rhai::FuncArgs,
        this: Option<&mut Dynamic>,
    ) -> Result<Dynamic, Box<EvalAltResult>> {
        if let Ok(mut clock) = self.context.clock.lock() {
            *clock = crate::rules::program::clock::CallClock::start();
        }
        let mut options = CallFnOptions::new().eval_ast(false).rewind_scope(true);
        if let Some(this) = this {
            options = options.bind_this_ptr(this);
        }
        self.engine
            .call_fn_with_options::<Dynamic>(options, scope, ast, name, args)
    }

    /// A script error as a fault.
    fn fault(&self, file: &str, e: &EvalAltResult) -> Fault {
        match innermost(e) {
            EvalAltResult::ErrorTerminated(..) => Fault::Deadline(self.limits.deadline),
            EvalAltResult::ErrorTooManyOperations(..) => Fault::Budget(format!(
                "more than {} operations in one call",
                self.limits.max_operations
            )),
            EvalAltResult::ErrorDataTooLarge(what, _) => {
                Fault::Budget(format!("{what} over the limit"))
            }
            EvalAltResult::ErrorStackOverflow(..) => {
                Fault::Budget(format!("calls nested deeper than {MAX_CALL_DEPTH}"))
            }
            _ => Fault::Trap(self.explain(file, e)),
        }
    }

    /// `file:line:column: what`, from the innermost error (a function's, not its caller's).
    fn explain(&self, file: &str, e: &EvalAltResult) -> String {
        let inner = innermost(e);
        let pos = inner.position();
        let text = inner.to_string();
        // Rhai ends its message with the position, which goes in front here.
        let text = text
            .strip_suffix(&format!(" ({pos})"))
            .unwrap_or(&text)
            .to_string();
        format!("{file}:{}: {text}", place(pos))
    }
}

/// The error a chain of function calls wraps.
fn innermost(e: &EvalAltResult) -> &EvalAltResult {
    match e {
        EvalAltResult::ErrorInFunctionCall(_, _, inner, _) => innermost(inner),
        other => other,
    }
}

fn place(pos: Position) -> String {
    match (pos.line(), pos.position()) {
        (Some(line), Some(col)) => format!("{line}:{col}"),
        (Some(line), None) => format!("{line}"),
        _ => "?".into(),
    }
}

/// One running copy of a script: its engine, and its `this`.
pub struct ScriptRunner<'s> {
    script: &'s Script,
    sandbox: Sandbox,
    this: Dynamic,
}

impl Runner for ScriptRunner<'_> {
    fn call(&mut self, event: &Event, now_ms: i64) -> Result<Vec<PluginAlarm>, Fault> {
        self.sandbox.context.now_ms.store(now_ms, Ordering::Relaxed);
        let event = ScriptEvent(Arc::new(event.clone()));
        let mut scope = Scope::new();
        let returned = self
            .sandbox
            .call(
                &self.script.ast,
                &mut scope,
                "on_event",
                (event, self.script.settings.clone()),
                Some(&mut self.this),
            )
            .map_err(|e| self.sandbox.fault(&self.script.file, &e))?;
        if !self.this.is_map() {
            // A script that replaced its state with something else loses it, not the agent.
            let found = self.this.type_name();
            self.this = Dynamic::from_map(Map::new());
            return Err(Fault::Invalid(format!(
                "`this` must stay a map, found {found}; state reset"
            )));
        }
        let triggered = convert::triggered(returned).map_err(Fault::Invalid)?;
        crate::rules::wasm::convert::alarms_from_wit(triggered, &self.script.limits)
            .map_err(Fault::Invalid)
    }

    fn take_log(&mut self) -> Vec<LogLine> {
        match self.sandbox.context.log.lock() {
            Ok(mut log) => log.take(&self.script.limits),
            Err(_) => Vec::new(),
        }
    }

    fn state(&self) -> State {
        convert::state_to_store(&self.this).unwrap_or_else(|e| {
            tracing::warn!(script = %self.script.info.name, "state not kept: {e}");
            State::new()
        })
    }
}
