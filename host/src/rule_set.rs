//! The loaded rule set: every enabled pack's built-in alarms compiled into one engine, and their
//! plugins and scripts loaded, with the way back from an alarm's index to its pack.
//!
//! It sits above both `rules` (the engine and the programs it builds) and `packs` (what it
//! assembles), so neither needs the other's upper half: packs are read and checked without any
//! engine, and the engine compiles alarms without knowing what a pack is.

use crate::packs::Pack;
use crate::rules::{AlarmDef, AlarmIndex, Engine, program, script, wasm};

/// Every loaded pack: the engine compiled from all their built-in alarms, and their plugins.
pub struct RuleSet {
    packs: Vec<Pack>,
    /// For each [`AlarmIndex`]: (pack index, alarm index in that pack).
    index: Vec<(usize, usize)>,
    engine: Engine,
    /// Loaded plugins and scripts, and the index of the pack each came from.
    programs: Vec<(usize, Box<dyn program::Loaded>)>,
}

impl RuleSet {
    /// Compiles the alarms of `packs` together and loads their plugins and scripts (each must
    /// describe and configure itself, or the whole set is refused).
    pub fn new(packs: Vec<Pack>) -> Result<RuleSet, String> {
        RuleSet::with_plugin_cache(packs, None)
    }

    /// [`RuleSet::new`], keeping compiled plugins in `cache` so the next start skips compiling.
    pub fn with_plugin_cache(
        packs: Vec<Pack>,
        cache: Option<&std::path::Path>,
    ) -> Result<RuleSet, String> {
        let index: Vec<(usize, usize)> = packs
            .iter()
            .enumerate()
            .flat_map(|(p, pack)| (0..pack.alarms.len()).map(move |a| (p, a)))
            .collect();
        crate::packs::regex_budget::check_rule_set(&packs)?;
        let engine = Engine::compile(index.iter().map(|&(p, a)| &packs[p].alarms[a]))?;
        let mut programs: Vec<(usize, Box<dyn program::Loaded>)> = Vec::new();
        if packs.iter().any(|p| !p.plugins.is_empty()) {
            let runtime = match cache {
                Some(dir) => wasm::PluginRuntime::with_cache(dir),
                None => wasm::PluginRuntime::new(),
            }
            .map_err(|e| format!("{e:#}"))?;
            for (p, pack) in packs.iter().enumerate() {
                for spec in &pack.plugins {
                    let plugin = wasm::Plugin::load(
                        &runtime,
                        &spec.bytes,
                        &spec.config,
                        spec.limits.clone(),
                    )
                    .map_err(|e| format!("pack {}: plugin {}: {e:#}", pack.name, spec.file))?;
                    programs.push((p, Box::new(plugin)));
                }
            }
        }
        for (p, pack) in packs.iter().enumerate() {
            for spec in &pack.scripts {
                let script = script::Script::load(
                    &spec.file,
                    &spec.source,
                    &spec.config,
                    spec.limits.clone(),
                )
                .map_err(|e| format!("pack {}: script {e}", pack.name))?;
                programs.push((p, Box::new(script)));
            }
        }
        // A program's state is kept under (pack, name): two of one name would share it.
        let mut names = std::collections::HashSet::new();
        for (p, program) in &programs {
            let (pack, info) = (&packs[*p].name, program.info());
            if !names.insert((pack, &info.name)) {
                return Err(format!(
                    "pack {pack}: two plugins or scripts are named {:?}",
                    info.name
                ));
            }
            tracing::info!(pack = %pack, program = %info.name, version = %info.version, "loaded");
        }
        Ok(RuleSet {
            packs,
            index,
            engine,
            programs,
        })
    }

    /// The loaded plugins and scripts, each with the pack it came from.
    pub fn programs(&self) -> impl Iterator<Item = (&Pack, &dyn program::Loaded)> {
        self.programs
            .iter()
            .map(|(p, program)| (&self.packs[*p], program.as_ref()))
    }

    /// The loaded packs.
    pub fn packs(&self) -> &[Pack] {
        &self.packs
    }

    /// How much screen video before an alarm the loaded rules may ask for: the longest `before`
    /// of a built-in alarm's video action; at least the default pre-roll when a plugin or
    /// script is granted video (what it asks for is only known when it fires). Zero: no
    /// loaded rule wants video, and the screen is not recorded.
    pub fn video_preroll(&self) -> std::time::Duration {
        let declared = self
            .packs
            .iter()
            .flat_map(|p| &p.alarms)
            .flat_map(|a| a.all_actions())
            .filter_map(|a| match a {
                crate::model::action::Action::Video { before, .. } => Some(*before),
                _ => None,
            });
        let programs = self
            .programs()
            .filter(|(pack, _)| pack.grants.actions.iter().any(|a| a == "video"))
            .map(|_| crate::model::action::DEFAULT_VIDEO_SIDE);
        declared.chain(programs).max().unwrap_or_default()
    }

    /// The compiled matcher.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The pack and definition of an alarm.
    pub fn alarm(&self, id: AlarmIndex) -> (&Pack, &AlarmDef) {
        let (p, a) = self.index[id as usize];
        (&self.packs[p], &self.packs[p].alarms[a])
    }

    /// Every alarm, in `AlarmIndex` order.
    pub fn alarms(&self) -> impl Iterator<Item = (&Pack, &AlarmDef)> {
        self.index
            .iter()
            .map(|&(p, a)| (&self.packs[p], &self.packs[p].alarms[a]))
    }
}
