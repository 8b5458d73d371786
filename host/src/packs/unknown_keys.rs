//! Every unknown key of a pack file, reported at once, each where it is written.
//!
//! serde stops at the first key a struct does not know (`deny_unknown_fields`), so a file with
//! three typos took three rounds of `vigilo check` — not the "every problem listed" the pack
//! format promises. This pass walks the parsed document with its spans before serde reads it and
//! reports each unknown key, with the nearest known one when it is a near miss. The keys each
//! table may hold come from the serde structs themselves (asked to read a key they do not know,
//! they list the ones they do), so nothing here can drift from them; serde's own check stays as
//! the backstop.

use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::grants::RawGrants;
use super::manifest::{
    RawAlarm, RawAlarmFile, RawCondition, RawEscalation, RawHeader, RawManifest, RawProgram,
    RawSchedule,
};
use super::targets::RawTargets;

/// Which file is read: a `pack.toml`, or an alarm file it names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum File {
    /// `pack.toml`.
    Manifest,
    /// A file of `[[alarm]]`s.
    Alarms,
}

/// The unknown keys of `text`: where each is and what to say. Empty when the text is not TOML
/// (serde reports that) or every key is known.
pub(super) fn find(text: &str, file: File) -> Vec<(Range<usize>, String)> {
    let Ok(doc) = DeTable::parse(text) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    let top = match file {
        File::Manifest => known::<RawManifest>(),
        File::Alarms => known::<RawAlarmFile>(),
    };
    check(doc.get_ref(), &top, "the file's top level", &mut found);
    for (key, value) in doc.get_ref().iter() {
        match (key.get_ref().as_ref(), value.get_ref()) {
            ("pack", DeValue::Table(t)) => check(t, &known::<RawHeader>(), "[pack]", &mut found),
            ("grants", DeValue::Table(t)) => {
                check(t, &known::<RawGrants>(), "[grants]", &mut found)
            }
            ("targets", DeValue::Table(t)) => targets(t, "[targets]", &mut found),
            ("alarm", DeValue::Array(items)) => {
                for item in items.iter() {
                    if let DeValue::Table(t) = item.get_ref() {
                        alarm(t, &mut found);
                    }
                }
            }
            (kind @ ("plugin" | "script"), DeValue::Array(items)) => {
                let what = if kind == "plugin" {
                    "[[plugin]]"
                } else {
                    "[[script]]"
                };
                for item in items.iter() {
                    if let DeValue::Table(t) = item.get_ref() {
                        check(t, &known::<RawProgram>(), what, &mut found);
                    }
                }
            }
            _ => {}
        }
    }
    // In file order: the document's tables are walked by name.
    found.sort_by_key(|(span, _)| span.start);
    found
}

/// An `[[alarm]]`: its own keys, and its conditions' (nested groups included).
fn alarm(t: &DeTable<'_>, found: &mut Vec<(Range<usize>, String)>) {
    check(t, &known::<RawAlarm>(), "an [[alarm]]", found);
    for key in ["active", "outside"] {
        if let Some(DeValue::Table(s)) = get(t, key).map(Spanned::get_ref) {
            check(s, &known::<RawSchedule>(), key, found);
        }
    }
    if let Some(DeValue::Array(steps)) = get(t, "escalate").map(Spanned::get_ref) {
        for step in steps.iter() {
            if let DeValue::Table(s) = step.get_ref() {
                check(s, &known::<RawEscalation>(), "an escalation step", found);
            }
        }
    }
    if let Some(DeValue::Table(t)) = get(t, "applies_to").map(Spanned::get_ref) {
        targets(t, "applies_to", found);
    }
    for list in ["conditions", "unless"] {
        if let Some(value) = get(t, list) {
            conditions(value, found);
        }
    }
}

/// A pack's `[targets]` or an alarm's `applies_to`, and the `exclude` inside it.
fn targets(t: &DeTable<'_>, what: &str, found: &mut Vec<(Range<usize>, String)>) {
    check(t, &known::<RawTargets>(), what, found);
    if let Some(DeValue::Table(ex)) = get(t, "exclude").map(Spanned::get_ref) {
        check(
            ex,
            &known::<RawTargets>(),
            &format!("{what} exclude"),
            found,
        );
    }
}

fn conditions(value: &Spanned<DeValue<'_>>, found: &mut Vec<(Range<usize>, String)>) {
    let DeValue::Array(items) = value.get_ref() else {
        return;
    };
    for item in items.iter() {
        if let DeValue::Table(t) = item.get_ref() {
            check(t, &known::<RawCondition>(), "a condition", found);
            if let Some(nested) = get(t, "conditions") {
                conditions(nested, found);
            }
        }
    }
}

/// The value of `key` in `table`.
fn get<'t, 'i>(table: &'t DeTable<'i>, key: &str) -> Option<&'t Spanned<DeValue<'i>>> {
    table
        .iter()
        .find(|(k, _)| k.get_ref().as_ref() == key)
        .map(|(_, v)| v)
}

/// Reports each key of `table` not in `known`.
fn check(
    table: &DeTable<'_>,
    known: &[String],
    what: &str,
    found: &mut Vec<(Range<usize>, String)>,
) {
    if known.is_empty() {
        return;
    }
    for key in table.keys() {
        let name = key.get_ref().as_ref();
        if known.iter().any(|k| k == name) {
            continue;
        }
        let listed: Vec<String> = known.iter().map(|k| format!("`{k}`")).collect();
        let mut message = format!(
            "unknown field `{name}` in {what}, expected one of {}",
            listed.join(", ")
        );
        if let Some(near) = super::nearest(name, known.iter().map(String::as_str)) {
            message.push_str(&format!("; did you mean `{near}`?"));
        }
        found.push((key.span(), message));
    }
}

/// The keys `T` reads, from serde's own refusal of one it does not.
fn known<T: serde::de::DeserializeOwned>() -> Vec<String> {
    const PROBE: &str = "vigilo_probe_not_a_key";
    match toml::from_str::<T>(&format!("{PROBE} = 0")) {
        Ok(_) => Vec::new(),
        Err(e) => {
            let message = e.message();
            let Some((_, expected)) = message.split_once("expected") else {
                return Vec::new();
            };
            expected
                .split('`')
                .skip(1)
                .step_by(2)
                .filter(|k| *k != PROBE)
                .map(str::to_string)
                .collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_keys_come_from_the_structs() {
        let keys = known::<RawCondition>();
        for k in [
            "field",
            "op",
            "value",
            "case_sensitive",
            "match",
            "conditions",
        ] {
            assert!(keys.iter().any(|x| x == k), "{k} in {keys:?}");
        }
        assert!(known::<RawManifest>().iter().any(|k| k == "alarm"));
    }

    #[test]
    fn every_unknown_key_is_found_where_it_is() {
        let text = "[pack]\nname = \"p\"\nversion = \"1.0.0\"\nauthor = \"x\"\n\n[[alarm]]\nname = \"a\"\n\
                    titel = 1\nconditions = [ { feild = \"title\", op = \"eq\", value = \"x\" },\n  \
                    { match = \"any\", conditions = [ { field = \"title\", opp = \"eq\", value = \"y\" } ] } ]\n";
        let mut found = find(text, File::Manifest);
        found.sort_by_key(|(span, _)| span.start);
        let names: Vec<&str> = found.iter().map(|(span, _)| &text[span.clone()]).collect();
        assert_eq!(names, ["author", "titel", "feild", "opp"]);
        assert!(
            found[2].1.contains("did you mean `field`?"),
            "{}",
            found[2].1
        );
        assert!(found[0].1.contains("in [pack]"), "{}", found[0].1);
    }
}
