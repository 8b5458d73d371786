//! Built-in conditions: field + operator + value, grouped with `all` / `any`.
//!
//! This is the validated form a pack's TOML becomes. [`Condition::matches`] is the reference
//! meaning of every operator, written for clarity; the [`Engine`](super::Engine) compiles the same
//! conditions into a faster matcher and its tests check it against this one.

use std::fmt;

use regex::Regex;

use crate::event::{Event, EventKind, Field, FieldType, FieldValue, KindSet};

/// A comparison operator of a built-in condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// Number greater than the value.
    Gt,
    /// Number greater than or equal to the value.
    Gte,
    /// Number less than the value.
    Lt,
    /// Number less than or equal to the value.
    Lte,
    /// Equal (text or number).
    Eq,
    /// Not equal (text or number); false when the field is absent.
    Ne,
    /// Text contains the value (or, given a list, any of the values).
    Contains,
    /// Text contains none of the values; false when the field is absent.
    NotContains,
    /// Text starts with the value (or any of a list of values).
    StartsWith,
    /// Text ends with the value (or any of a list of values).
    EndsWith,
    /// Equal to one of a list of values.
    In,
    /// Equal to none of a list of values; false when the field is absent.
    NotIn,
    /// Text matches a regular expression (Rust `regex` syntax, linear time).
    Matches,
}

impl Op {
    /// Every operator, in the order shown in error messages.
    pub const ALL: [Op; 13] = [
        Op::Gt,
        Op::Gte,
        Op::Lt,
        Op::Lte,
        Op::Eq,
        Op::Ne,
        Op::Contains,
        Op::NotContains,
        Op::StartsWith,
        Op::EndsWith,
        Op::In,
        Op::NotIn,
        Op::Matches,
    ];

    /// The operator's name in packs.
    pub fn name(self) -> &'static str {
        match self {
            Op::Gt => "gt",
            Op::Gte => "gte",
            Op::Lt => "lt",
            Op::Lte => "lte",
            Op::Eq => "eq",
            Op::Ne => "ne",
            Op::Contains => "contains",
            Op::NotContains => "not_contains",
            Op::StartsWith => "starts_with",
            Op::EndsWith => "ends_with",
            Op::In => "in",
            Op::NotIn => "not_in",
            Op::Matches => "matches",
        }
    }

    /// Looks an operator up by name.
    pub fn from_name(name: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|o| o.name() == name)
    }

    /// Whether the operator applies to fields of this type.
    pub fn applies_to(self, ty: FieldType) -> bool {
        match self {
            Op::Gt | Op::Gte | Op::Lt | Op::Lte => ty == FieldType::Number,
            Op::Eq | Op::Ne | Op::In | Op::NotIn => true,
            Op::Contains | Op::NotContains | Op::StartsWith | Op::EndsWith | Op::Matches => {
                ty == FieldType::Text
            }
        }
    }

    /// The operators valid for a field type, comma-separated, for error messages.
    pub fn names_for(ty: FieldType) -> String {
        let names: Vec<&str> = Op::ALL
            .into_iter()
            .filter(|o| o.applies_to(ty))
            .map(Op::name)
            .collect();
        names.join(", ")
    }

    /// For the negative operators, the positive one they negate.
    pub fn positive(self) -> Option<Op> {
        match self {
            Op::Ne => Some(Op::Eq),
            Op::NotContains => Some(Op::Contains),
            Op::NotIn => Some(Op::In),
            _ => None,
        }
    }

    /// Whether the operator takes a list of values.
    pub fn takes_list(self) -> bool {
        matches!(self, Op::In | Op::NotIn)
    }

    /// Whether the operator also accepts a list of values, meaning "any of them" (for the
    /// negative `not_contains`: "none of them").
    pub fn accepts_list(self) -> bool {
        self.takes_list()
            || matches!(
                self,
                Op::Contains | Op::NotContains | Op::StartsWith | Op::EndsWith
            )
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a condition looks at: an event field, or the event's kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Subject {
    /// The event's `kind` (text, always present).
    Kind,
    /// A named field (may be absent).
    Field(Field),
}

impl Subject {
    /// The subject's name as written in packs.
    pub fn name(self) -> &'static str {
        match self {
            Subject::Kind => "kind",
            Subject::Field(f) => f.name(),
        }
    }

    /// Text or number.
    pub fn field_type(self) -> FieldType {
        match self {
            Subject::Kind => FieldType::Text,
            Subject::Field(f) => f.field_type(),
        }
    }

    /// The event kinds on which the subject can be present.
    pub fn kinds(self) -> KindSet {
        match self {
            Subject::Kind => KindSet::ALL,
            Subject::Field(f) => f.kinds(),
        }
    }

    fn value(self, event: &Event) -> Option<FieldValue<'_>> {
        match self {
            Subject::Kind => Some(FieldValue::Text(event.kind().name())),
            Subject::Field(f) => event.value(f),
        }
    }
}

/// The value side of a condition, already normalised: text operands of case-insensitive
/// conditions are stored lowercased.
#[derive(Clone, Debug)]
pub enum Operand {
    /// One text value.
    Text(String),
    /// One number.
    Number(f64),
    /// A list of text values (`in`, `not_in`).
    Texts(Vec<String>),
    /// A list of numbers (`in`, `not_in`).
    Numbers(Vec<f64>),
    /// A compiled regular expression (`matches`).
    Regex(Regex),
}

/// One comparison: `subject op operand`.
#[derive(Clone, Debug)]
pub struct Leaf {
    /// What is compared.
    pub subject: Subject,
    /// How.
    pub op: Op,
    /// With what.
    pub operand: Operand,
    /// Whether text comparisons respect case (default: they do not).
    pub case_sensitive: bool,
    /// The text operand as the pack wrote it (the operand itself may be case-folded), for
    /// showing the condition to people.
    pub written: Option<String>,
}

/// Lowercases text for case-insensitive comparison. Both sides go through this one function so
/// that Unicode rules (e.g. `Ä` → `ä`) are applied identically to patterns and values.
pub fn fold_case(text: &str) -> std::borrow::Cow<'_, str> {
    if text.is_ascii() {
        if text.bytes().any(|b| b.is_ascii_uppercase()) {
            std::borrow::Cow::Owned(text.to_ascii_lowercase())
        } else {
            std::borrow::Cow::Borrowed(text)
        }
    } else {
        std::borrow::Cow::Owned(text.to_lowercase())
    }
}

impl Leaf {
    /// Whether the comparison holds for `event`. An absent field makes every operator false,
    /// including the negative ones: `url ne "x"` does not match a usb event.
    pub fn matches(&self, event: &Event) -> bool {
        match self.subject.value(event) {
            None => false,
            Some(FieldValue::Number(n)) => self.matches_number(n),
            Some(FieldValue::Text(t)) => self.matches_text(t),
        }
    }

    fn matches_number(&self, n: f64) -> bool {
        match (&self.operand, self.op) {
            (Operand::Number(v), Op::Gt) => n > *v,
            (Operand::Number(v), Op::Gte) => n >= *v,
            (Operand::Number(v), Op::Lt) => n < *v,
            (Operand::Number(v), Op::Lte) => n <= *v,
            (Operand::Number(v), Op::Eq) => n == *v,
            (Operand::Number(v), Op::Ne) => n != *v,
            (Operand::Numbers(vs), Op::In) => vs.contains(&n),
            (Operand::Numbers(vs), Op::NotIn) => !vs.contains(&n),
            _ => false,
        }
    }

    fn matches_text(&self, t: &str) -> bool {
        if let Operand::Regex(re) = &self.operand {
            return re.is_match(t);
        }
        let t = if self.case_sensitive {
            std::borrow::Cow::Borrowed(t)
        } else {
            fold_case(t)
        };
        let t = t.as_ref();
        match (&self.operand, self.op) {
            (Operand::Text(v), Op::Eq) => t == v,
            (Operand::Text(v), Op::Ne) => t != v,
            (Operand::Text(v), Op::Contains) => t.contains(v.as_str()),
            (Operand::Text(v), Op::NotContains) => !t.contains(v.as_str()),
            (Operand::Text(v), Op::StartsWith) => t.starts_with(v.as_str()),
            (Operand::Text(v), Op::EndsWith) => t.ends_with(v.as_str()),
            (Operand::Texts(vs), Op::In) => vs.iter().any(|v| v == t),
            (Operand::Texts(vs), Op::NotIn) => !vs.iter().any(|v| v == t),
            (Operand::Texts(vs), Op::Contains) => vs.iter().any(|v| t.contains(v.as_str())),
            (Operand::Texts(vs), Op::NotContains) => !vs.iter().any(|v| t.contains(v.as_str())),
            (Operand::Texts(vs), Op::StartsWith) => vs.iter().any(|v| t.starts_with(v.as_str())),
            (Operand::Texts(vs), Op::EndsWith) => vs.iter().any(|v| t.ends_with(v.as_str())),
            _ => false,
        }
    }

    /// The kinds of event on which this comparison can be true.
    pub fn kinds(&self) -> KindSet {
        if self.subject != Subject::Kind {
            return self.subject.kinds();
        }
        // A condition on `kind` itself narrows the set directly.
        let named = |v: &str| EventKind::from_name(v).map_or(KindSet::EMPTY, EventKind::bit);
        let listed = |vs: &[String]| vs.iter().fold(KindSet::EMPTY, |acc, v| acc.or(named(v)));
        match (&self.operand, self.op) {
            (Operand::Text(v), Op::Eq) => named(v),
            (Operand::Text(v), Op::Ne) => named(v).complement(),
            (Operand::Texts(vs), Op::In) => listed(vs),
            (Operand::Texts(vs), Op::NotIn) => listed(vs).complement(),
            _ => KindSet::ALL,
        }
    }
}

impl fmt::Display for Leaf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} ", self.subject.name(), self.op)?;
        match &self.operand {
            _ if self.written.is_some() => f.write_str(self.written.as_deref().unwrap_or(""))?,
            Operand::Text(t) => write!(f, "{t:?}")?,
            Operand::Number(n) => f.write_str(&crate::event::format_number(*n))?,
            Operand::Texts(ts) => write!(f, "{ts:?}")?,
            Operand::Numbers(ns) => {
                let shown: Vec<String> =
                    ns.iter().map(|n| crate::event::format_number(*n)).collect();
                write!(f, "[{}]", shown.join(", "))?
            }
            Operand::Regex(re) => write!(f, "/{}/", re.as_str())?,
        }
        if self.case_sensitive {
            f.write_str(" (case-sensitive)")?;
        }
        Ok(())
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (members, joiner) = match self {
            Condition::Leaf(l) => return write!(f, "{l}"),
            Condition::All(cs) => (cs, " and "),
            Condition::Any(cs) => (cs, " or "),
        };
        for (i, c) in members.iter().enumerate() {
            if i > 0 {
                f.write_str(joiner)?;
            }
            match c {
                Condition::Leaf(_) => write!(f, "{c}")?,
                _ if members.len() == 1 => write!(f, "{c}")?,
                _ => write!(f, "({c})")?,
            }
        }
        Ok(())
    }
}

/// A condition tree: a comparison, or a group matched `all` or `any`.
#[derive(Clone, Debug)]
pub enum Condition {
    /// One comparison.
    Leaf(Leaf),
    /// True when every member is true.
    All(Vec<Condition>),
    /// True when at least one member is true.
    Any(Vec<Condition>),
}

impl Condition {
    /// The reference evaluation of the tree.
    pub fn matches(&self, event: &Event) -> bool {
        match self {
            Condition::Leaf(l) => l.matches(event),
            Condition::All(cs) => cs.iter().all(|c| c.matches(event)),
            Condition::Any(cs) => cs.iter().any(|c| c.matches(event)),
        }
    }

    /// The kinds of event on which the tree can be true (an absent field is false, so a group
    /// that needs `url` and `bytes` together can never be true).
    pub fn kinds(&self) -> KindSet {
        match self {
            Condition::Leaf(l) => l.kinds(),
            Condition::All(cs) => cs.iter().fold(KindSet::ALL, |k, c| k.and(c.kinds())),
            Condition::Any(cs) => cs.iter().fold(KindSet::EMPTY, |k, c| k.or(c.kinds())),
        }
    }

    /// Every comparison in the tree, depth first.
    pub fn leaves(&self) -> Vec<&Leaf> {
        let mut out = Vec::new();
        self.collect_leaves(&mut out);
        out
    }

    fn collect_leaves<'a>(&'a self, out: &mut Vec<&'a Leaf>) {
        match self {
            Condition::Leaf(l) => out.push(l),
            Condition::All(cs) | Condition::Any(cs) => {
                cs.iter().for_each(|c| c.collect_leaves(out))
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use chrono::DateTime;

    /// A leaf built the way the pack loader builds one (operands folded when case-insensitive).
    pub(crate) fn leaf(field: &str, op: &str, value: serde_json::Value, cs: bool) -> Leaf {
        let subject = match field {
            "kind" => Subject::Kind,
            f => Subject::Field(Field::from_name(f).expect("known field")),
        };
        let op = Op::from_name(op).expect("known op");
        let fold = |s: &str| {
            if cs {
                s.to_string()
            } else {
                fold_case(s).into_owned()
            }
        };
        let operand = match (op, value) {
            (Op::Matches, serde_json::Value::String(s)) => Operand::Regex(
                regex::RegexBuilder::new(&s)
                    .case_insensitive(!cs)
                    .build()
                    .expect("regex"),
            ),
            (_, serde_json::Value::String(s)) => Operand::Text(fold(&s)),
            (_, serde_json::Value::Number(n)) => Operand::Number(n.as_f64().expect("number")),
            (_, serde_json::Value::Array(vs)) if vs.iter().all(|v| v.is_string()) => {
                Operand::Texts(vs.iter().filter_map(|v| v.as_str()).map(fold).collect())
            }
            (_, serde_json::Value::Array(vs)) => {
                Operand::Numbers(vs.iter().filter_map(|v| v.as_f64()).collect())
            }
            (_, v) => panic!("unsupported test value {v}"),
        };
        Leaf {
            subject,
            op,
            operand,
            case_sensitive: cs,
            written: None,
        }
    }

    pub(crate) fn activity(fields: &[(&str, &str)]) -> Event {
        let mut e = Event::new(
            EventKind::Activity,
            DateTime::parse_from_rfc3339("2026-11-02T09:00:00Z").expect("ts"),
        );
        for (k, v) in fields {
            let f = Field::from_name(k).expect("field");
            match f.field_type() {
                FieldType::Text => e.set_text(f, v),
                FieldType::Number => e.set_number(f, v.parse().expect("number")),
            }
        }
        e
    }

    fn check(field: &str, op: &str, value: serde_json::Value, cs: bool, ev: &Event) -> bool {
        leaf(field, op, value, cs).matches(ev)
    }

    use serde_json::json;

    #[test]
    fn numeric_operators_and_edges() {
        let e = activity(&[("duration", "1200")]);
        assert!(!check("duration", "gt", json!(1200), false, &e));
        assert!(check("duration", "gte", json!(1200), false, &e));
        assert!(check("duration", "gt", json!(1199.5), false, &e));
        assert!(!check("duration", "lt", json!(1200), false, &e));
        assert!(check("duration", "lte", json!(1200), false, &e));
        assert!(check("duration", "eq", json!(1200.0), false, &e));
        assert!(check("duration", "ne", json!(0), false, &e));
        assert!(check("duration", "in", json!([1, 1200]), false, &e));
        assert!(check("duration", "not_in", json!([1, 2]), false, &e));
        let zero = activity(&[("duration", "0")]);
        assert!(check("duration", "lt", json!(1), false, &zero));
        assert!(!check("duration", "gt", json!(0), false, &zero));
    }

    #[test]
    fn text_operators_ignore_case_by_default() {
        let e = activity(&[
            ("title", "YouTube - Funny Cats"),
            ("executable", "Chrome.EXE"),
        ]);
        assert!(check("title", "contains", json!("youtube"), false, &e));
        assert!(check("title", "contains", json!("FUNNY"), false, &e));
        assert!(check("title", "starts_with", json!("youtube -"), false, &e));
        assert!(check("title", "ends_with", json!("CATS"), false, &e));
        assert!(check("executable", "eq", json!("chrome.exe"), false, &e));
        assert!(check(
            "executable",
            "in",
            json!(["firefox", "CHROME.exe"]),
            false,
            &e
        ));
        assert!(check("executable", "not_in", json!(["firefox"]), false, &e));
        assert!(check("title", "not_contains", json!("dogs"), false, &e));
        assert!(!check("title", "not_contains", json!("cats"), false, &e));
        assert!(check(
            "title",
            "matches",
            json!(r"funny\s+cats$"),
            false,
            &e
        ));
    }

    #[test]
    fn substring_operators_accept_lists_meaning_any() {
        let e = activity(&[("executable", "/usr/bin/qBittorrent")]);
        assert!(check(
            "executable",
            "contains",
            json!(["deluge", "qbittorrent"]),
            false,
            &e
        ));
        assert!(check(
            "executable",
            "ends_with",
            json!(["/x", "/QBITTORRENT"]),
            false,
            &e
        ));
        assert!(check(
            "executable",
            "starts_with",
            json!(["/opt/", "/usr/"]),
            false,
            &e
        ));
        assert!(!check(
            "executable",
            "not_contains",
            json!(["deluge", "torrent"]),
            false,
            &e
        ));
        assert!(check(
            "executable",
            "not_contains",
            json!(["deluge", "vuze"]),
            false,
            &e
        ));
        assert!(!check(
            "executable",
            "contains",
            json!(["qbittorrent"]),
            true,
            &e
        ));
    }

    #[test]
    fn case_sensitive_conditions_respect_case() {
        let e = activity(&[("title", "YouTube")]);
        assert!(!check("title", "contains", json!("youtube"), true, &e));
        assert!(check("title", "contains", json!("YouTube"), true, &e));
        assert!(!check("title", "eq", json!("youtube"), true, &e));
        assert!(check("title", "ne", json!("youtube"), true, &e));
        assert!(!check("title", "matches", json!("^you"), true, &e));
    }

    #[test]
    fn unicode_case_folding() {
        let e = activity(&[("title", "ÄRGER über STRAẞE — Ελληνικά")]);
        assert!(check("title", "contains", json!("ärger"), false, &e));
        assert!(check("title", "contains", json!("ÜBER"), false, &e));
        assert!(check("title", "ends_with", json!("ελληνικά"), false, &e));
        assert!(
            check("title", "contains", json!("straße"), false, &e),
            "ẞ lowercases to ß"
        );
        assert!(!check("title", "contains", json!("ärger"), true, &e));
    }

    #[test]
    fn empty_values() {
        let e = activity(&[("title", ""), ("url", "https://a.example")]);
        assert!(check("title", "eq", json!(""), false, &e));
        assert!(
            check("url", "contains", json!(""), false, &e),
            "every text contains \"\""
        );
        assert!(check("url", "starts_with", json!(""), false, &e));
        assert!(!check("url", "eq", json!(""), false, &e));
        assert!(!check("title", "contains", json!("a"), false, &e));
        assert!(check("title", "not_contains", json!("a"), false, &e));
    }

    #[test]
    fn absent_fields_are_false_for_every_operator() {
        let e = activity(&[("title", "x")]);
        for (op, value) in [
            ("eq", json!("a")),
            ("ne", json!("a")),
            ("contains", json!("a")),
            ("not_contains", json!("a")),
            ("starts_with", json!("a")),
            ("ends_with", json!("a")),
            ("in", json!(["a"])),
            ("not_in", json!(["a"])),
            ("matches", json!(".*")),
        ] {
            assert!(
                !check("url", op, value, false, &e),
                "url {op} on an event without url"
            );
        }
        for op in ["gt", "gte", "lt", "lte", "eq", "ne"] {
            assert!(!check("duration", op, json!(0), false, &e), "duration {op}");
        }
    }

    #[test]
    fn kind_is_a_field_and_narrows_kinds() {
        let e = activity(&[]);
        assert!(check("kind", "eq", json!("activity"), false, &e));
        assert!(check("kind", "ne", json!("usb"), false, &e));
        let l = leaf("kind", "in", json!(["usb", "account"]), false);
        assert_eq!(l.kinds(), EventKind::Activity.bit().complement());
    }

    #[test]
    fn groups_nest() {
        let e = activity(&[("username", "bob"), ("url", "https://youtube.com")]);
        let user_any = Condition::Any(vec![
            Condition::Leaf(leaf("username", "eq", json!("alice"), false)),
            Condition::Leaf(leaf("username", "eq", json!("bob"), false)),
        ]);
        let tree = Condition::All(vec![
            Condition::Leaf(leaf("url", "contains", json!("youtube"), false)),
            user_any,
        ]);
        assert!(tree.matches(&e));
        assert_eq!(
            tree.to_string(),
            r#"url contains "youtube" and (username eq "alice" or username eq "bob")"#
        );
        assert!(!tree.matches(&activity(&[("username", "carol"), ("url", "youtube")])));
        assert_eq!(tree.leaves().len(), 3);
        assert_eq!(tree.kinds(), EventKind::Activity.bit());
        let impossible = Condition::All(vec![
            Condition::Leaf(leaf("url", "contains", json!("a"), false)),
            Condition::Leaf(leaf("bytes", "gt", json!(1), false)),
        ]);
        assert!(impossible.kinds().is_empty());
    }
}
