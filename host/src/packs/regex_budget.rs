//! What `matches` regexes cost, and how much of it a pack and a rule set may spend.
//!
//! Each regex is capped on its own (the compiled program, and the lazy DFA's cache), but their
//! number is not: 300 alarms with `title matches "qN\w{20}"` — a 1.9 KB upload — took an agent
//! from 20 MB to over a gigabyte, since a Unicode `\w{20}` compiles (forwards and in reverse) to
//! megabytes. So every regex is measured as it would run — the compiled regex's own accounting
//! (regex-automata's `memory_usage`, the engine under the `regex` crate, built with the same
//! settings) plus the most its search caches may grow to — and the sum is bounded per pack and
//! per rule set, with the error saying what the biggest one costs.

use crate::rules::{AlarmDef, Condition, Operand};

/// Largest compiled program of one regex (the `regex` crate's `size_limit`).
pub const REGEX_SIZE_LIMIT: usize = 1 << 20;
/// Largest lazy-DFA cache of one regex (the `regex` crate's `dfa_size_limit`): a regex that
/// would need more searches more slowly instead of growing.
pub const REGEX_CACHE_LIMIT: usize = 64 << 10;
/// What one pack's regexes may cost together.
pub const PACK_BUDGET: usize = 32 << 20;
/// What all loaded packs' regexes may cost together.
pub const RULE_SET_BUDGET: usize = 64 << 20;

/// A compiled `matches` operand, with the limits that bound it.
pub fn compile(pattern: &str, case_sensitive: bool) -> Result<regex::Regex, regex::Error> {
    regex::RegexBuilder::new(pattern)
        .case_insensitive(!case_sensitive)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_CACHE_LIMIT)
        .build()
}

/// The bytes one regex holds once compiled, with its caches at their largest (forward and
/// reverse lazy DFAs; the other engines' caches are of the program's size).
pub fn cost(pattern: &str, case_sensitive: bool) -> usize {
    use regex_automata::{MatchKind, meta, util::syntax};
    let built = meta::Builder::new()
        .configure(
            meta::Config::new()
                .nfa_size_limit(Some(REGEX_SIZE_LIMIT))
                .hybrid_cache_capacity(REGEX_CACHE_LIMIT)
                .match_kind(MatchKind::LeftmostFirst)
                .utf8_empty(true),
        )
        .syntax(
            syntax::Config::new()
                .case_insensitive(!case_sensitive)
                .utf8(true),
        )
        .build(pattern);
    match built {
        // The program once more for the PikeVM's and backtracker's caches.
        Ok(re) => 2 * re.memory_usage() + 2 * REGEX_CACHE_LIMIT,
        // It compiled under the `regex` crate, so this does not happen; count it at the cap.
        Err(_) => 2 * REGEX_SIZE_LIMIT + 2 * REGEX_CACHE_LIMIT,
    }
}

/// What the `matches` regexes of `alarm` hold compiled.
pub fn of_alarm(alarm: &AlarmDef) -> usize {
    fn walk(c: &Condition) -> usize {
        match c {
            Condition::Leaf(leaf) => match &leaf.operand {
                Operand::Regex(re) => cost(re.as_str(), leaf.case_sensitive),
                _ => 0,
            },
            Condition::All(cs) | Condition::Any(cs) => cs.iter().map(walk).sum(),
        }
    }
    walk(&alarm.when) + alarm.unless.iter().map(walk).sum::<usize>()
}

/// Why alarm `alarm` is refused: with it, the pack's regexes would hold `spent` bytes, over
/// [`PACK_BUDGET`].
pub fn over_pack_budget(alarm: &str, spent: usize) -> String {
    format!(
        "alarm {alarm:?}: with it this pack's regular expressions would hold {} MiB compiled; at \
         most {} MiB are allowed per pack ({ADVICE})",
        spent.div_ceil(1 << 20),
        PACK_BUDGET >> 20
    )
}

/// How to spend less.
const ADVICE: &str = "a Unicode class such as \\w repeated many times is large: try [a-z0-9_] \
                      or fewer repeats, or a literal operator such as contains";

/// `Err` with the reason when the packs' regexes together (as each pack measured them when it
/// loaded) cost more than [`RULE_SET_BUDGET`].
pub fn check_rule_set(packs: &[crate::packs::Pack]) -> Result<usize, String> {
    let total: usize = packs.iter().map(|p| p.regex_bytes).sum();
    if total <= RULE_SET_BUDGET {
        return Ok(total);
    }
    let costliest = packs.iter().max_by_key(|p| p.regex_bytes);
    Err(format!(
        "the loaded packs' regular expressions would hold {} MiB compiled; at most {} MiB are \
         allowed in all (the costliest pack, {}, {} MiB; {ADVICE})",
        total.div_ceil(1 << 20),
        RULE_SET_BUDGET >> 20,
        costliest.map_or("?", |p| p.name.as_str()),
        costliest.map_or(0, |p| p.regex_bytes.div_ceil(1 << 20))
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_regex_costs_what_it_compiles_to() {
        let small = cost("youtube", false);
        let large = cost(r"qN\w{20}", false);
        assert!(small < 1 << 20, "{small}");
        assert!(large > 4 * small, "{large} vs {small}");
        // ASCII classes are far cheaper than Unicode ones.
        assert!(cost(r"qN[a-z0-9_]{20}", false) * 4 < large);
    }
}
