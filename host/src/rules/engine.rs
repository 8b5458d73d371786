//! The compiled matcher for built-in alarms.
//!
//! Evaluating every alarm's conditions one by one costs one `contains` per condition per event
//! (about 110,000 events/s for 200 alarms here). Instead, as fast text filters do:
//!
//! 1. every text comparison that looks for a literal (`eq`, `in`, `contains`, `starts_with`,
//!    `ends_with`) becomes a pattern of one Aho-Corasick automaton per field and case mode, so a
//!    field is scanned **once** per event whatever the number of alarms; a match's position tells
//!    which of the anchored operators hold;
//! 2. each alarm gets a *trigger set*: comparisons of which at least one must hold for the alarm
//!    to hold. Only alarms whose trigger fired (plus the few with no literal to trigger on) are
//!    evaluated at all;
//! 3. the remaining comparisons (numbers, regexes, `kind`) are evaluated directly, only for those
//!    candidate alarms.
//!
//! The meaning of every operator is [`Leaf::matches`](super::Leaf::matches); the tests below check
//! this engine against it on generated alarms and events.

use std::collections::HashMap;

use aho_corasick::automaton::Automaton;
use aho_corasick::dfa::DFA;
use aho_corasick::{Anchored, MatchKind, StartKind};

use crate::event::{Event, EventKind, Field, KindSet};

use super::{AlarmDef, Condition, Leaf, Op, Operand, Subject};

/// Index of an alarm in the list the engine was compiled from.
pub type AlarmIndex = u32;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Anchor {
    Anywhere,
    Start,
    End,
    Whole,
}

impl Anchor {
    fn holds(self, start: usize, end: usize, len: usize) -> bool {
        match self {
            Anchor::Anywhere => true,
            Anchor::Start => start == 0,
            Anchor::End => end == len,
            Anchor::Whole => start == 0 && end == len,
        }
    }
}

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
}

/// Everything looked for in one field's text in one case mode: whole values in a hash map, other
/// literals in one Aho-Corasick automaton.
struct Scanner {
    field: Field,
    case_sensitive: bool,
    /// Whole-value comparisons (`eq`, `in`): value → comparisons it satisfies.
    exact: FoldHashMap<Box<str>, Vec<u32>>,
    /// Substring comparisons (`contains`, `starts_with`, `ends_with`), if any.
    automaton: Option<DFA>,
    /// For each automaton pattern: which comparisons it satisfies, and where it must be found.
    hits: Vec<Vec<(u32, Anchor)>>,
}

type FoldHashMap<K, V> = HashMap<K, V, foldhash::fast::FixedState>;

/// Whether lowercasing could change `text` (most URLs and paths are already lowercase).
fn needs_folding(text: &str) -> bool {
    !text.is_ascii() || text.bytes().any(|b| b.is_ascii_uppercase())
}

/// Reports every occurrence of every pattern in `haystack` (overlapping ones included) as
/// `(pattern, start, end, haystack length)`. A plain walk over the DFA's transition table: for
/// field values of a few dozen bytes this beats the general iterator, whose set-up dominates.
fn scan_overlapping(dfa: &DFA, haystack: &[u8], mut found: impl FnMut(usize, usize, usize, usize)) {
    let Ok(mut state) = dfa.start_state(Anchored::No) else {
        return;
    };
    for (i, &byte) in haystack.iter().enumerate() {
        state = dfa.next_state(Anchored::No, state, byte);
        if dfa.is_special(state) && dfa.is_match(state) {
            for k in 0..dfa.match_len(state) {
                let pattern = dfa.match_pattern(state, k);
                let end = i + 1;
                found(
                    pattern.as_usize(),
                    end - dfa.pattern_len(pattern),
                    end,
                    haystack.len(),
                );
            }
        }
    }
}

/// Per-evaluation working memory, kept between events so evaluation does not allocate.
/// One per thread; the [`Engine`] itself is shared read-only.
#[derive(Default)]
pub struct Scratch {
    bits: Vec<u64>,
    touched: Vec<u32>,
    seen: Vec<u32>,
    generation: u32,
    candidates: Vec<AlarmIndex>,
    lower: String,
}

/// Built-in alarms compiled for fast evaluation. Rules decide; nothing here has side effects.
pub struct Engine {
    alarms: Vec<CompiledAlarm>,
    leaves: Vec<LeafTest>,
    scanners: Vec<Scanner>,
    scanners_by_kind: [Vec<usize>; 3],
    always_by_kind: [Vec<AlarmIndex>; 3],
    triggers: Vec<Vec<AlarmIndex>>,
    duration_breakpoints: Vec<u64>,
}

#[derive(Default)]
struct Builder {
    leaves: Vec<LeafTest>,
    dedup: HashMap<String, u32>,
    // (field, case_sensitive) -> (patterns, pattern index, hits)
    scans: HashMap<(Field, bool), ScanBuild>,
    breakpoints: Vec<u64>,
}

#[derive(Default)]
struct ScanBuild {
    exact: FoldHashMap<Box<str>, Vec<u32>>,
    patterns: Vec<String>,
    index: HashMap<String, usize>,
    hits: Vec<Vec<(u32, Anchor)>>,
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
            (Subject::Field(_), Op::In, Operand::Texts(ts)) => ts.iter().all(|t| !t.is_empty()),
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
                let scan = self.scans.entry((field, leaf.case_sensitive)).or_default();
                let texts: &[String] = match &leaf.operand {
                    Operand::Text(t) => std::slice::from_ref(t),
                    Operand::Texts(ts) => ts,
                    _ => &[],
                };
                for t in texts {
                    if anchor == Anchor::Whole {
                        let ids = scan.exact.entry(t.as_str().into()).or_default();
                        if ids.last() != Some(&id) {
                            ids.push(id);
                        }
                        continue;
                    }
                    let p = *scan.index.entry(t.clone()).or_insert_with(|| {
                        scan.patterns.push(t.clone());
                        scan.hits.push(Vec::new());
                        scan.patterns.len() - 1
                    });
                    scan.hits[p].push((id, anchor));
                }
                LeafTest::Scanned
            }
            _ => LeafTest::Direct(leaf.clone()),
        };
        self.leaves.push(test);
        id
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
            Condition::All(cs) => Node::All(cs.iter().map(|c| self.node(c)).collect()),
            Condition::Any(cs) => Node::Any(cs.iter().map(|c| self.node(c)).collect()),
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
            })
            .collect();

        let mut scanners = Vec::new();
        let mut scans: Vec<_> = b.scans.into_iter().collect();
        scans.sort_by_key(|((f, cs), _)| (*f, *cs));
        for ((field, case_sensitive), scan) in scans {
            let automaton = if scan.patterns.is_empty() {
                None
            } else {
                // A DFA costs memory per pattern but scans fastest (one table lookup a byte);
                // packs hold hundreds of literals per field, not millions.
                let dfa = DFA::builder()
                    .match_kind(MatchKind::Standard)
                    .start_kind(StartKind::Unanchored)
                    .build(&scan.patterns)
                    .map_err(|e| format!("cannot compile the patterns of `{field}`: {e}"))?;
                Some(dfa)
            };
            scanners.push(Scanner {
                field,
                case_sensitive,
                exact: scan.exact,
                automaton,
                hits: scan.hits,
            });
        }
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
        self.scan(event, kind, scratch);
        let Scratch {
            bits,
            touched,
            seen,
            generation,
            candidates,
            ..
        } = scratch;
        *generation = generation.wrapping_add(1);
        if *generation == 0 {
            seen.iter_mut().for_each(|s| *s = 0);
            *generation = 1;
        }
        if seen.len() < self.alarms.len() {
            seen.resize(self.alarms.len(), 0);
        }
        candidates.clear();
        for &leaf in touched.iter() {
            for &a in &self.triggers[leaf as usize] {
                if seen[a as usize] != *generation {
                    seen[a as usize] = *generation;
                    candidates.push(a);
                }
            }
        }
        candidates.extend_from_slice(&self.always_by_kind[kind as usize]);
        candidates.sort_unstable();
        for &a in candidates.iter() {
            let alarm = &self.alarms[a as usize];
            if alarm.kinds.contains(kind)
                && self.holds(&alarm.when, event, bits)
                && !alarm.unless.iter().any(|n| self.holds(n, event, bits))
            {
                out.push(a);
            }
        }
        for &leaf in touched.iter() {
            bits[leaf as usize / 64] = 0;
        }
        touched.clear();
    }

    /// Runs every automaton relevant to the event's kind, setting the bits of the comparisons
    /// that hold.
    fn scan(&self, event: &Event, kind: EventKind, s: &mut Scratch) {
        if s.bits.len() < self.leaves.len().div_ceil(64) {
            s.bits.resize(self.leaves.len().div_ceil(64), 0);
        }
        for &i in &self.scanners_by_kind[kind as usize] {
            let scanner = &self.scanners[i];
            let Some(value) = event.text(scanner.field) else {
                continue;
            };
            let haystack = if scanner.case_sensitive || !needs_folding(value) {
                value
            } else {
                s.lower.clear();
                if value.is_ascii() {
                    s.lower.push_str(value);
                    s.lower.make_ascii_lowercase();
                } else {
                    s.lower.push_str(&value.to_lowercase());
                }
                s.lower.as_str()
            };
            let mut set = |leaf: u32| {
                let (word, bit) = (leaf as usize / 64, 1u64 << (leaf % 64));
                if s.bits[word] & bit == 0 {
                    s.bits[word] |= bit;
                    s.touched.push(leaf);
                }
            };
            if let Some(leaves) = scanner.exact.get(haystack) {
                leaves.iter().for_each(|&l| set(l));
            }
            if let Some(dfa) = &scanner.automaton {
                scan_overlapping(dfa, haystack.as_bytes(), |pattern, start, end, len| {
                    for &(leaf, anchor) in &scanner.hits[pattern] {
                        if anchor.holds(start, end, len) {
                            set(leaf);
                        }
                    }
                });
            }
        }
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
