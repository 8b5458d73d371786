//! Rules decide which alarms an event triggers. They never act: they return triggered alarms
//! with their planned actions, and later stages store and perform them.
//!
//! Built-in conditions ([`Condition`]) are compiled into one [`Engine`]; WASM plugins and Rhai
//! scripts join the same [`RuleSet`] in later work.

mod alarm;
mod condition;
mod engine;
mod literals;
mod scan;
pub mod wasm;

pub use alarm::{AlarmDef, Repeat};
pub use condition::{Condition, Leaf, Op, Operand, Subject, fold_case};
pub use engine::{AlarmIndex, Engine, Scratch};

use crate::packs::Pack;

/// Every loaded pack and the engine compiled from all their alarms.
pub struct RuleSet {
    packs: Vec<Pack>,
    /// For each [`AlarmIndex`]: (pack index, alarm index in that pack).
    index: Vec<(usize, usize)>,
    engine: Engine,
}

impl RuleSet {
    /// Compiles the alarms of `packs` together.
    pub fn new(packs: Vec<Pack>) -> Result<RuleSet, String> {
        let index: Vec<(usize, usize)> = packs
            .iter()
            .enumerate()
            .flat_map(|(p, pack)| (0..pack.alarms.len()).map(move |a| (p, a)))
            .collect();
        let engine = Engine::compile(index.iter().map(|&(p, a)| &packs[p].alarms[a]))?;
        Ok(RuleSet {
            packs,
            index,
            engine,
        })
    }

    /// The loaded packs.
    pub fn packs(&self) -> &[Pack] {
        &self.packs
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

    /// Every alarm, in [`AlarmIndex`] order.
    pub fn alarms(&self) -> impl Iterator<Item = (&Pack, &AlarmDef)> {
        self.index
            .iter()
            .map(|&(p, a)| (&self.packs[p], &self.packs[p].alarms[a]))
    }
}
