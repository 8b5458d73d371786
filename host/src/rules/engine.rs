//! The compiled matcher for built-in alarms.
//!
//! Evaluating every alarm's conditions one by one costs one `contains` per condition per event
//! (about 150,000 events/s for 200 alarms here). Instead, as fast text filters do:
//!
//! 1. every text comparison that looks for a literal becomes part of one scanner per field
//!    ([`scan`](super::scan)): whole-value comparisons (`eq`, `in`) a hash-set entry, substring
//!    ones (`contains`, `starts_with`, `ends_with`) a pattern of one
//!    [`LiteralSet`](super::literals), so a field is read **once** per event whatever the number
//!    of alarms (both case modes in the same pass); where a pattern is found tells which anchored
//!    operators hold, and recent values' answers are cached;
//! 2. each alarm gets a *trigger set*: comparisons of which at least one must hold for the alarm
//!    to hold. Only alarms whose trigger fired (plus the few with no literal to trigger on) are
//!    evaluated at all;
//! 3. the remaining comparisons (numbers, regexes, `kind`) are evaluated directly, only for those
//!    candidate alarms, cheapest first.
//!
//! The meaning of every operator is [`Leaf::matches`](super::Leaf::matches); the tests below check
//! this engine against it on generated alarms and events.

use std::collections::HashMap;

use crate::event::{Event, Field, KindSet};

use super::scan::{Anchor, FieldScanner, ScanCache, ScannerBuilder};
use super::{AlarmDef, Condition, Leaf, Op, Operand, Subject};

/// Index of an alarm in the list the engine was compiled from.
pub type AlarmIndex = u32;

enum LeafTest {
    /// Decided by a field scan: true iff its bit is set.
    Scanned,
    /// Decided by the reference evaluation (numbers, regexes, `kind`, empty literals).
    Direct(Leaf),
}

enum Node {
    Leaf(u32),
    /// A negative operator: the field is present and the positive comparison is false.
    Not {
        leaf: u32,
        subject: Subject,
    },
    All(Box<[Node]>),
    Any(Box<[Node]>),
}

struct CompiledAlarm {
    kinds: KindSet,
    when: Node,
    unless: Box<[Node]>,
    schedule: Option<super::schedule::Schedule>,
}

/// Per-evaluation working memory, kept between events so evaluation does not allocate.
/// One per thread; the `Engine` itself is shared read-only.
#[derive(Default)]
pub struct Scratch {
    /// Comparisons known true by scanning, one bit each.
    bits: Vec<u64>,
    touched: Vec<u32>,
    /// Candidate alarms, one bit each, and the words holding any.
    candidates: Vec<u64>,
    candidate_words: Vec<u32>,
    lower: String,
    cache: ScanCache,
}

/// Built-in alarms compiled for fast evaluation. Rules decide; nothing here has side effects.
pub struct Engine {
    alarms: Vec<CompiledAlarm>,
    leaves: Vec<LeafTest>,
    scanners: Vec<FieldScanner>,
    scanners_by_kind: [Vec<usize>; 3],
    always_by_kind: [Vec<AlarmIndex>; 3],
    triggers: Vec<Vec<AlarmIndex>>,
    duration_breakpoints: Vec<u64>,
}

#[derive(Default)]
struct Builder {
    leaves: Vec<LeafTest>,
    dedup: HashMap<String, u32>,
    scans: std::collections::BTreeMap<Field, ScannerBuilder>,
    breakpoints: Vec<u64>,
}

/// How costly a node is to decide, so `all`/`any` members are tried cheapest first.
fn cost(node: &Node, leaves: &[LeafTest]) -> u8 {
    let leaf_cost = |l: u32| match &leaves[l as usize] {
        LeafTest::Scanned => 0,
        LeafTest::Direct(leaf) if matches!(leaf.operand, Operand::Regex(_)) => 4,
        LeafTest::Direct(_) => 2,
    };
    match node {
        Node::Leaf(l) => leaf_cost(*l),
        Node::Not { leaf, .. } => leaf_cost(*leaf) + 1,
        Node::All(_) | Node::Any(_) => 3,
    }
}

impl Builder {
    fn leaf(&mut self, leaf: &Leaf) -> u32 {
        let key = format!(
            "{:?}|{:?}|{:?}|{}",
            leaf.subject, leaf.op, leaf.operand, leaf.case_sensitive
        );
        if let Some(&id) = self.dedup.get(&key) {
            return id;
        }
        let id = self.leaves.len() as u32;
        self.dedup.insert(key, id);
        if let (Subject::Field(Field::Duration), Operand::Number(_) | Operand::Numbers(_)) =
            (leaf.subject, &leaf.operand)
        {
            let values = match &leaf.operand {
                Operand::Number(v) => vec![*v],
                Operand::Numbers(vs) => vs.clone(),
                _ => Vec::new(),
            };
            // Whole seconds at which the comparison can change value.
            for v in values.into_iter().filter(|v| *v >= 0.0 && *v < 1e12) {
                self.breakpoints.push(v.floor() as u64);
                self.breakpoints.push(v.floor() as u64 + 1);
            }
        }
        let scannable = match (leaf.subject, leaf.op, &leaf.operand) {
            (
                Subject::Field(_),
                Op::Eq | Op::Contains | Op::StartsWith | Op::EndsWith,
                Operand::Text(t),
            ) => !t.is_empty(),
            (
                Subject::Field(_),
                Op::In | Op::Contains | Op::StartsWith | Op::EndsWith,
                Operand::Texts(ts),
            ) => ts.iter().all(|t| !t.is_empty()),
            _ => false,
        };
        let test = match (scannable, leaf.subject) {
            (true, Subject::Field(field)) => {
                let anchor = match leaf.op {
                    Op::Contains => Anchor::Anywhere,
                    Op::StartsWith => Anchor::Start,
                    Op::EndsWith => Anchor::End,
                    _ => Anchor::Whole,
                };
                let scan = self.scans.entry(field).or_default();
                let texts: &[String] = match &leaf.operand {
                    Operand::Text(t) => std::slice::from_ref(t),
                    Operand::Texts(ts) => ts,
                    _ => &[],
                };
                for t in texts {
                    scan.add(id, t, anchor, leaf.case_sensitive);
                }
                LeafTest::Scanned
            }
            _ => LeafTest::Direct(leaf.clone()),
        };
        self.leaves.push(test);
        id
    }

    /// A group's members, cheapest first (the result is the same in any order; the cost is not).
    fn members(&mut self, cs: &[Condition]) -> Box<[Node]> {
        let mut nodes: Vec<Node> = cs.iter().map(|c| self.node(c)).collect();
        nodes.sort_by_key(|n| cost(n, &self.leaves));
        nodes.into_boxed_slice()
    }

    fn node(&mut self, c: &Condition) -> Node {
        match c {
            Condition::Leaf(leaf) => match leaf.op.positive() {
                Some(positive) => {
                    let pos = Leaf {
                        op: positive,
                        ..leaf.clone()
                    };
                    Node::Not {
                        leaf: self.leaf(&pos),
                        subject: leaf.subject,
                    }
                }
                None => Node::Leaf(self.leaf(leaf)),
            },
            Condition::All(cs) => Node::All(self.members(cs)),
            Condition::Any(cs) => Node::Any(self.members(cs)),
        }
    }
}

impl Engine {
    /// Compiles alarms; an alarm's index in `alarms` is its [`AlarmIndex`].
    pub fn compile<'a>(alarms: impl IntoIterator<Item = &'a AlarmDef>) -> Result<Engine, String> {
        let mut b = Builder::default();
        let compiled: Vec<CompiledAlarm> = alarms
            .into_iter()
            .map(|a| CompiledAlarm {
                kinds: a.kinds,
                when: b.node(&a.when),
                unless: a.unless.iter().map(|c| b.node(c)).collect(),
                schedule: a.schedule.clone(),
            })
            .collect();

        let scanners: Vec<FieldScanner> = b
            .scans
            .into_iter()
            .map(|(field, builder)| builder.build(field))
            .collect();
        let mut scanners_by_kind: [Vec<usize>; 3] = Default::default();
        for (i, s) in scanners.iter().enumerate() {
            for kind in s.field.kinds().iter() {
                scanners_by_kind[kind as usize].push(i);
            }
        }

        let mut engine = Engine {
            alarms: compiled,
            leaves: b.leaves,
            scanners,
            scanners_by_kind,
            always_by_kind: Default::default(),
            triggers: Vec::new(),
            duration_breakpoints: Vec::new(),
        };
        engine.triggers = vec![Vec::new(); engine.leaves.len()];
        for (i, alarm) in engine.alarms.iter().enumerate() {
            match engine.trigger(&alarm.when) {
                Some(leaves) => {
                    for l in leaves {
                        let list = &mut engine.triggers[l as usize];
                        if list.last() != Some(&(i as u32)) {
                            list.push(i as u32);
                        }
                    }
                }
                None => {
                    for kind in alarm.kinds.iter() {
                        engine.always_by_kind[kind as usize].push(i as u32);
                    }
                }
            }
        }
        tracing::debug!(
            alarms = engine.alarms.len(),
            comparisons = engine.leaves.len(),
            scanned_fields = engine.scanners.len(),
            always_evaluated = ?engine.always_by_kind.iter().map(Vec::len).collect::<Vec<_>>(),
            "engine compiled"
        );
        b.breakpoints.retain(|&s| s > 0);
        b.breakpoints.sort_unstable();
        b.breakpoints.dedup();
        engine.duration_breakpoints = b.breakpoints;
        Ok(engine)
    }

    /// Comparisons of which at least one must hold for `node` to hold, if such a set of scanned
    /// comparisons exists.
    fn trigger(&self, node: &Node) -> Option<Vec<u32>> {
        match node {
            Node::Leaf(l) => {
                matches!(self.leaves[*l as usize], LeafTest::Scanned).then(|| vec![*l])
            }
            Node::Not { .. } => None,
            Node::All(ns) => ns
                .iter()
                .filter_map(|n| self.trigger(n))
                .min_by_key(Vec::len),
            Node::Any(ns) => {
                let mut all = Vec::new();
                for n in ns.iter() {
                    all.extend(self.trigger(n)?);
                }
                Some(all)
            }
        }
    }

    /// How many alarms were compiled.
    pub fn len(&self) -> usize {
        self.alarms.len()
    }

    /// Whether no alarm was compiled.
    pub fn is_empty(&self) -> bool {
        self.alarms.is_empty()
    }

    /// The whole seconds of `duration` at which some alarm's verdict can change; the sessions
    /// stage re-evaluates a growing span only at these points instead of every second.
    pub fn duration_breakpoints(&self) -> &[u64] {
        &self.duration_breakpoints
    }

    /// Appends to `out`, in ascending order, the indices of the alarms `event` triggers.
    pub fn evaluate(&self, event: &Event, scratch: &mut Scratch, out: &mut Vec<AlarmIndex>) {
        let kind = event.kind();
        let words = self.leaves.len().div_ceil(64);
        if scratch.bits.len() < words {
            scratch.bits.resize(words, 0);
        }
        if scratch.candidates.len() < self.alarms.len().div_ceil(64) {
            scratch.candidates.resize(self.alarms.len().div_ceil(64), 0);
        }
        {
            let Scratch {
                bits,
                touched,
                lower,
                cache,
                ..
            } = &mut *scratch;
            for &i in &self.scanners_by_kind[kind as usize] {
                let scanner = &self.scanners[i];
                if let Some(value) = event.text(scanner.field) {
                    cache.scan(i, scanner, value, lower, |leaf| {
                        let (word, bit) = (leaf as usize / 64, 1u64 << (leaf % 64));
                        if bits[word] & bit == 0 {
                            bits[word] |= bit;
                            touched.push(leaf);
                        }
                    });
                }
            }
        }
        let Scratch {
            bits,
            touched,
            candidates,
            candidate_words,
            ..
        } = scratch;
        let mut mark = |a: AlarmIndex| {
            let (word, bit) = (a as usize / 64, 1u64 << (a % 64));
            if candidates[word] == 0 {
                candidate_words.push(word as u32);
            }
            candidates[word] |= bit;
        };
        for &leaf in touched.iter() {
            self.triggers[leaf as usize].iter().for_each(|&a| mark(a));
        }
        self.always_by_kind[kind as usize]
            .iter()
            .for_each(|&a| mark(a));
        // Bits come out of each word in ascending order; sorting the few words does the rest.
        candidate_words.sort_unstable();
        for &w in candidate_words.iter() {
            let mut word = std::mem::take(&mut candidates[w as usize]);
            while word != 0 {
                let a = w * 64 + word.trailing_zeros();
                word &= word - 1;
                let alarm = &self.alarms[a as usize];
                if alarm.kinds.contains(kind)
                    && self.holds(&alarm.when, event, bits)
                    && !alarm.unless.iter().any(|n| self.holds(n, event, bits))
                    && alarm.schedule.as_ref().is_none_or(|s| s.admits(event.ts()))
                {
                    out.push(a);
                }
            }
        }
        candidate_words.clear();
        for &leaf in touched.iter() {
            bits[leaf as usize / 64] = 0;
        }
        touched.clear();
    }

    fn holds(&self, node: &Node, event: &Event, bits: &[u64]) -> bool {
        match node {
            Node::Leaf(l) => self.leaf_holds(*l, event, bits),
            Node::Not { leaf, subject } => {
                let present = match subject {
                    Subject::Kind => true,
                    Subject::Field(f) => event.has(*f),
                };
                present && !self.leaf_holds(*leaf, event, bits)
            }
            Node::All(ns) => ns.iter().all(|n| self.holds(n, event, bits)),
            Node::Any(ns) => ns.iter().any(|n| self.holds(n, event, bits)),
        }
    }

    fn leaf_holds(&self, leaf: u32, event: &Event, bits: &[u64]) -> bool {
        match &self.leaves[leaf as usize] {
            LeafTest::Scanned => bits[leaf as usize / 64] & (1 << (leaf % 64)) != 0,
            LeafTest::Direct(l) => l.matches(event),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::condition::tests::{activity, leaf};
    use serde_json::json;

    fn alarm(when: Condition, unless: Vec<Condition>) -> AlarmDef {
        AlarmDef {
            name: "t".into(),
            description: None,
            kinds: when.kinds(),
            when,
            unless,
            risk: 1,
            actions: vec![],
            repeat: Default::default(),
            cooldown: None,
            schedule: None,
            applies_to: None,
            escalate: Vec::new(),
        }
    }

    fn l(f: &str, op: &str, v: serde_json::Value) -> Condition {
        Condition::Leaf(leaf(f, op, v, false))
    }

    fn fired(alarms: &[AlarmDef], event: &Event) -> Vec<AlarmIndex> {
        let engine = Engine::compile(alarms).expect("compiles");
        let mut out = Vec::new();
        engine.evaluate(event, &mut Scratch::default(), &mut out);
        out
    }

    #[test]
    fn anchored_operators_share_one_scan() {
        let alarms = [
            alarm(
                Condition::All(vec![l("title", "contains", json!("tube"))]),
                vec![],
            ),
            alarm(
                Condition::All(vec![l("title", "starts_with", json!("tube"))]),
                vec![],
            ),
            alarm(
                Condition::All(vec![l("title", "ends_with", json!("tube"))]),
                vec![],
            ),
            alarm(
                Condition::All(vec![l("title", "eq", json!("youtube"))]),
                vec![],
            ),
            alarm(
                Condition::All(vec![l("title", "in", json!(["x", "YouTube"]))]),
                vec![],
            ),
        ];
        assert_eq!(
            fired(&alarms, &activity(&[("title", "YouTube")])),
            vec![0, 2, 3, 4]
        );
        assert_eq!(
            fired(&alarms, &activity(&[("title", "Tube a")])),
            vec![0, 1]
        );
    }

    #[test]
    fn unless_suppresses_and_negatives_need_the_field() {
        let alarms = [
            alarm(
                Condition::All(vec![l("url", "contains", json!("youtube"))]),
                vec![l("title", "contains", json!("training"))],
            ),
            alarm(Condition::All(vec![l("title", "ne", json!("x"))]), vec![]),
        ];
        let e = activity(&[("url", "youtube.com"), ("title", "Safety TRAINING")]);
        assert_eq!(fired(&alarms, &e), vec![1]);
        assert_eq!(
            fired(&alarms, &activity(&[("url", "youtube.com")])),
            vec![0]
        );
    }

    #[test]
    fn breakpoints_cover_every_duration_threshold() {
        let alarms = [
            alarm(
                Condition::All(vec![l("duration", "gt", json!(1200))]),
                vec![],
            ),
            alarm(
                Condition::All(vec![l("duration", "lte", json!(59.5))]),
                vec![],
            ),
        ];
        let engine = Engine::compile(&alarms).expect("compiles");
        assert_eq!(engine.duration_breakpoints(), &[59, 60, 1200, 1201]);
    }

    /// The engine must agree with the reference evaluation on every generated alarm and event.
    #[test]
    fn agrees_with_the_reference_on_generated_rules() {
        let pack = crate::synth::generated_pack(300, 11);
        let alarms = &pack.alarms;
        let engine = Engine::compile(alarms).expect("compiles");
        let mut scratch = Scratch::default();
        let mut out = Vec::new();
        let mut total = 0;
        for event in crate::synth::mixed_events(4000, 5) {
            out.clear();
            engine.evaluate(&event, &mut scratch, &mut out);
            let expected: Vec<AlarmIndex> = alarms
                .iter()
                .enumerate()
                .filter(|(_, a)| a.matches(&event))
                .map(|(i, _)| i as AlarmIndex)
                .collect();
            assert_eq!(out, expected, "event {}", event.to_json());
            total += out.len();
        }
        assert!(
            total > 1000,
            "the generated rules should match often ({total})"
        );
    }
}
