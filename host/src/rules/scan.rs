//! Per-field scanning: which literal comparisons one field's value satisfies.
//!
//! A [`FieldScanner`] holds every literal that any alarm compares a field with: whole values
//! (`eq`, `in`) in hash sets, substrings (`contains`, `starts_with`, `ends_with`) in one
//! [`LiteralSet`]. One scan of the value answers all those comparisons at once.
//!
//! The [`ScanCache`] remembers the answer for recent values. The same executable, application
//! name, domain and user name come back event after event, so most fields are answered by one
//! hash and one comparison; values that never repeat (URLs with query strings) only pay that
//! hash.

use std::collections::HashMap;
use std::hash::BuildHasher;

use crate::event::Field;

use super::literals::LiteralSet;

type FoldHashMap<K, V> = HashMap<K, V, foldhash::fast::FixedState>;

/// Where a literal must be found for a comparison to hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Anchor {
    /// Anywhere (`contains`).
    Anywhere,
    /// At the start (`starts_with`).
    Start,
    /// At the end (`ends_with`).
    End,
    /// The whole value (`eq`, `in`).
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

/// Whole values compared with one field in one case mode.
#[derive(Default)]
struct ExactSet {
    values: FoldHashMap<Box<str>, Vec<u32>>,
    /// Lengths (bit `n` for length `n`, bit 63 for 63 and longer) and first bytes of the
    /// values, so most lookups are turned away before hashing.
    lengths: u64,
    first_bytes: [u64; 4],
}

impl ExactSet {
    fn insert(&mut self, value: &str, leaf: u32) {
        let leaves = self.values.entry(value.into()).or_default();
        if leaves.last() != Some(&leaf) {
            leaves.push(leaf);
        }
        self.lengths |= 1 << value.len().min(63);
        if let Some(&b) = value.as_bytes().first() {
            self.first_bytes[b as usize / 64] |= 1 << (b % 64);
        }
    }

    fn get(&self, text: &str) -> &[u32] {
        let Some(&first) = text.as_bytes().first() else {
            return &[];
        };
        let plausible = self.lengths & (1 << text.len().min(63)) != 0
            && self.first_bytes[first as usize / 64] & (1 << (first % 64)) != 0;
        match plausible.then(|| self.values.get(text)).flatten() {
            Some(leaves) => leaves,
            None => &[],
        }
    }
}

/// Collects one field's literals while alarms compile.
#[derive(Default)]
pub(super) struct ScannerBuilder {
    exact_folded: ExactSet,
    exact_case: ExactSet,
    patterns: Vec<(String, bool)>,
    index: HashMap<(String, bool), usize>,
    hits: Vec<Vec<(u32, Anchor)>>,
}

impl ScannerBuilder {
    /// Comparison `leaf` holds when `text` is found at `anchor` (case-insensitive texts come
    /// lowercased).
    pub fn add(&mut self, leaf: u32, text: &str, anchor: Anchor, case_sensitive: bool) {
        if anchor == Anchor::Whole {
            let set = if case_sensitive {
                &mut self.exact_case
            } else {
                &mut self.exact_folded
            };
            set.insert(text, leaf);
            return;
        }
        let key = (text.to_string(), case_sensitive);
        let p = *self.index.entry(key.clone()).or_insert_with(|| {
            self.patterns.push(key);
            self.hits.push(Vec::new());
            self.hits.len() - 1
        });
        self.hits[p].push((leaf, anchor));
    }

    /// The finished scanner.
    pub fn build(self, field: Field) -> FieldScanner {
        FieldScanner {
            field,
            needs_folded: !self.exact_folded.values.is_empty()
                || self.patterns.iter().any(|(_, cs)| !cs),
            literals: LiteralSet::new(&self.patterns),
            exact_folded: self.exact_folded,
            exact_case: self.exact_case,
            hits: self.hits,
        }
    }
}

/// Everything looked for in one field's text.
pub(super) struct FieldScanner {
    /// The field scanned.
    pub field: Field,
    needs_folded: bool,
    exact_folded: ExactSet,
    exact_case: ExactSet,
    literals: LiteralSet,
    /// For each literal: which comparisons it satisfies, and where it must be found.
    hits: Vec<Vec<(u32, Anchor)>>,
}

impl FieldScanner {
    /// Calls `set(leaf)` for every comparison `value` satisfies (possibly more than once).
    /// `lower` is a reusable buffer.
    pub fn scan(&self, value: &str, lower: &mut String, mut set: impl FnMut(u32)) {
        let folded: &str = if !self.needs_folded || !needs_folding(value) {
            value
        } else {
            lower.clear();
            if value.is_ascii() {
                lower.push_str(value);
                lower.make_ascii_lowercase();
            } else {
                lower.push_str(&value.to_lowercase());
            }
            lower
        };
        self.exact_folded.get(folded).iter().for_each(|&l| set(l));
        self.exact_case.get(value).iter().for_each(|&l| set(l));
        let hits = &self.hits;
        let (folded_len, value_len) = (folded.len(), value.len());
        self.literals.find(
            folded.as_bytes(),
            value.as_bytes(),
            |pattern, start, end| {
                for &(leaf, anchor) in &hits[pattern] {
                    // Case-sensitive patterns are found in the original, others in the folded.
                    let len = if self.literals.is_exact_case(pattern) {
                        value_len
                    } else {
                        folded_len
                    };
                    if anchor.holds(start, end, len) {
                        set(leaf);
                    }
                }
            },
        );
    }
}

/// Whether lowercasing could change `text` (most URLs and paths are already lowercase).
fn needs_folding(text: &str) -> bool {
    !text.is_ascii() || text.bytes().any(|b| b.is_ascii_uppercase())
}

/// Slots in the cache (a power of two).
const CACHE_SLOTS: usize = 1024;
/// Values longer than this are scanned but not remembered: copying them would cost more than
/// the scan saves, and long values (URLs, paths) rarely repeat.
const CACHE_MAX_VALUE: usize = 128;

#[derive(Default)]
struct Slot {
    key: u64,
    scanner: u32,
    value: String,
    leaves: Vec<u32>,
}

/// Remembers, per scanner and value, which comparisons held. Direct-mapped: a new value simply
/// replaces the old one in its slot.
#[derive(Default)]
pub struct ScanCache {
    slots: Vec<Slot>,
}

impl ScanCache {
    /// Scans `value` with `scanner` (number `index`), or replays the remembered answer.
    pub(super) fn scan(
        &mut self,
        index: usize,
        scanner: &FieldScanner,
        value: &str,
        lower: &mut String,
        mut set: impl FnMut(u32),
    ) {
        if value.len() > CACHE_MAX_VALUE {
            return scanner.scan(value, lower, set);
        }
        if self.slots.is_empty() {
            self.slots.resize_with(CACHE_SLOTS, Slot::default);
        }
        let key = foldhash::fast::FixedState::default().hash_one((index, value)) | 1;
        let slot = &mut self.slots[key as usize % CACHE_SLOTS];
        if slot.key == key && slot.scanner == index as u32 && slot.value == value {
            slot.leaves.iter().for_each(|&l| set(l));
            return;
        }
        slot.key = key;
        slot.scanner = index as u32;
        slot.value.clear();
        slot.value.push_str(value);
        slot.leaves.clear();
        scanner.scan(value, lower, |l| {
            slot.leaves.push(l);
            set(l);
        });
    }
}
