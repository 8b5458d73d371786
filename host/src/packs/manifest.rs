//! The TOML form of a pack and its validation into [`AlarmDef`]s.
//!
//! The raw structs mirror the file with every value [`Spanned`], and every semantic check is done
//! by hand afterwards rather than by serde: that way one run reports *all* the problems of a file,
//! each at its own line and column, with the list of valid choices.

use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;

use super::action_toml::{parse_action, parse_duration_text};
use crate::model::action::ActionSpec;

use crate::event::{EventKind, Field, FieldType, KindSet};
use crate::rules::{AlarmDef, Condition, Leaf, Op, Operand, Repeat, Subject, fold_case};

use super::diagnostic::Reporter;

/// `pack.toml`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawManifest {
    pub pack: RawHeader,
    #[serde(default)]
    pub alarm: Vec<Spanned<RawAlarm>>,
    #[serde(default)]
    pub plugin: Vec<Spanned<RawProgram>>,
    #[serde(default)]
    pub script: Vec<Spanned<RawProgram>>,
    #[serde(default)]
    pub grants: super::grants::RawGrants,
    #[serde(default)]
    pub targets: super::targets::RawTargets,
}

/// One `[[plugin]]` (a WASM component) or `[[script]]` (a Rhai script) in the pack, its
/// configuration and limits.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProgram {
    pub file: Spanned<String>,
    #[serde(default)]
    pub config: String,
    pub deadline_ms: Option<Spanned<u64>>,
    /// Plugins only.
    pub memory_mib: Option<Spanned<u64>>,
    /// Scripts only.
    pub max_operations: Option<Spanned<u64>>,
    pub max_alarms: Option<Spanned<u64>>,
    pub max_actions: Option<Spanned<u64>>,
    pub state_kib: Option<Spanned<u64>>,
}

/// The limits a `[[plugin]]` or `[[script]]` sets, within what the agent allows.
pub(super) fn program_limits(
    raw: &RawProgram,
    script: bool,
    r: &mut Reporter<'_>,
) -> crate::rules::program::Limits {
    let mut limits = crate::rules::program::Limits::default();
    let (only, other) = if script {
        (
            &raw.memory_mib,
            "memory_mib is for plugins; a script's budget is max_operations",
        )
    } else {
        (
            &raw.max_operations,
            "max_operations is for scripts; a plugin's budget is deadline_ms and memory_mib",
        )
    };
    if let Some(v) = only {
        r.error(v.span(), other);
    }
    let mut bounded = |v: &Option<Spanned<u64>>, name: &str, max: u64| -> Option<u64> {
        let v = v.as_ref()?;
        if (1..=max).contains(v.get_ref()) {
            Some(*v.get_ref())
        } else {
            r.error(
                v.span(),
                format!("{name} must be 1 to {max}, found {}", v.get_ref()),
            );
            None
        }
    };
    use crate::rules::program::limits::{MAX_DEADLINE_MS, MAX_MEMORY_MIB};
    if let Some(ms) = bounded(&raw.deadline_ms, "deadline_ms", MAX_DEADLINE_MS) {
        limits.deadline = std::time::Duration::from_millis(ms);
    }
    if let Some(mib) = bounded(&raw.memory_mib, "memory_mib", MAX_MEMORY_MIB) {
        limits.memory_bytes = (mib as usize) << 20;
    }
    if let Some(n) = bounded(&raw.max_operations, "max_operations", 100_000_000) {
        limits.max_operations = n;
    }
    if let Some(n) = bounded(&raw.max_alarms, "max_alarms", 256) {
        limits.max_alarms = n as usize;
    }
    if let Some(n) = bounded(&raw.max_actions, "max_actions", 32) {
        limits.max_actions = n as usize;
    }
    if let Some(kib) = bounded(&raw.state_kib, "state_kib", 64 * 1024) {
        limits.state_bytes = (kib as usize) << 10;
    }
    limits
}

/// A file named in `alarm_files`: only alarms.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAlarmFile {
    #[serde(default)]
    pub alarm: Vec<Spanned<RawAlarm>>,
}

/// The `[pack]` table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHeader {
    pub name: Spanned<String>,
    pub version: Spanned<String>,
    pub publisher: Option<String>,
    pub description: Option<String>,
    pub min_agent_version: Option<Spanned<String>>,
    #[serde(default)]
    pub alarm_files: Vec<Spanned<String>>,
}

/// One `[[alarm]]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAlarm {
    name: Spanned<String>,
    description: Option<String>,
    kind: Option<Spanned<String>>,
    #[serde(rename = "match")]
    match_: Option<Spanned<String>>,
    conditions: Spanned<Vec<Spanned<RawCondition>>>,
    #[serde(default)]
    unless: Vec<Spanned<RawCondition>>,
    risk: Option<Spanned<i64>>,
    #[serde(default)]
    actions: Vec<Spanned<toml::Value>>,
    repeat: Option<Spanned<String>>,
    cooldown: Option<Spanned<String>>,
    active: Option<Spanned<RawSchedule>>,
    outside: Option<Spanned<RawSchedule>>,
    applies_to: Option<super::targets::RawTargets>,
    #[serde(default)]
    escalate: Vec<Spanned<RawEscalation>>,
}

/// One step of an alarm's `escalate = [ { after, within, risk, actions } ]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEscalation {
    after: Spanned<i64>,
    within: Spanned<String>,
    risk: Option<Spanned<i64>>,
    actions: Option<Vec<Spanned<toml::Value>>>,
}

/// The most steps an alarm's escalation has, and the highest count and longest window one
/// names: what an agent keeps per user is bounded by them.
const MAX_STEPS: usize = 8;
const MAX_AFTER: i64 = 1000;
const MAX_WITHIN: std::time::Duration = std::time::Duration::from_secs(30 * 24 * 3600);

/// Reads a risk level, 1 to 10.
fn risk_of(risk: &Spanned<i64>, r: &mut Reporter<'_>) -> Option<u8> {
    match u8::try_from(*risk.get_ref()) {
        Ok(v @ 1..=10) => Some(v),
        _ => {
            r.error(
                risk.span(),
                format!("risk must be 1 to 10, found {}", risk.get_ref()),
            );
            None
        }
    }
}

/// Reads a list of actions, each error at its place.
fn actions_of(list: &[Spanned<toml::Value>], r: &mut Reporter<'_>) -> Vec<ActionSpec> {
    list.iter()
        .filter_map(|act| match parse_action(act.get_ref()) {
            Ok(spec) => Some(spec),
            Err(e) => {
                r.error(act.span(), e);
                None
            }
        })
        .collect()
}

/// Reads an alarm's escalation steps: counts from 2 up, each higher than the one before.
fn escalation(a: &RawAlarm, r: &mut Reporter<'_>) -> Vec<crate::rules::Escalation> {
    if a.escalate.len() > MAX_STEPS {
        r.error(
            a.escalate[MAX_STEPS].span(),
            format!("an alarm has at most {MAX_STEPS} escalation steps"),
        );
        return Vec::new();
    }
    let mut steps: Vec<crate::rules::Escalation> = Vec::new();
    let mut before: Option<i64> = None;
    for raw in &a.escalate {
        let step = raw.get_ref();
        let after = *step.after.get_ref();
        let previous = before.replace(after);
        if !(2..=MAX_AFTER).contains(&after) {
            r.error(
                step.after.span(),
                format!(
                    "after: the firing a step starts from, 2 to {MAX_AFTER} (1 is the alarm \
                     itself), found {after}"
                ),
            );
            continue;
        }
        if let Some(previous) = previous.filter(|p| *p >= after) {
            r.error(
                step.after.span(),
                format!("after: steps go up: this one ({after}) must come after {previous}"),
            );
            continue;
        }
        let within = match parse_duration_text(step.within.get_ref()) {
            Ok(d) if !d.is_zero() && d <= MAX_WITHIN => d,
            Ok(_) => {
                r.error(
                    step.within.span(),
                    "within: more than 0 and at most 30 days",
                );
                continue;
            }
            Err(e) => {
                r.error(step.within.span(), format!("within: {e}"));
                continue;
            }
        };
        steps.push(crate::rules::Escalation {
            after: after as u32,
            within,
            risk: step.risk.as_ref().and_then(|risk| risk_of(risk, r)),
            actions: step.actions.as_deref().map(|list| actions_of(list, r)),
        });
    }
    steps
}

/// An alarm's `active = { … }` or `outside = { … }`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSchedule {
    days: Option<Spanned<Vec<String>>>,
    hours: Option<Spanned<String>>,
    tz: Option<Spanned<String>>,
}

/// Reads an alarm's schedule: `active`, or `outside` for off-hours, not both.
fn schedule(a: &RawAlarm, r: &mut Reporter<'_>) -> Option<crate::rules::schedule::Schedule> {
    let (raw, outside) = match (&a.active, &a.outside) {
        (None, None) => return None,
        (Some(_), Some(o)) => {
            r.error(
                o.span(),
                "an alarm has `active` or `outside`, not both (`outside` is the hours `active` \
                 leaves out)",
            );
            return None;
        }
        (Some(s), None) => (s, false),
        (None, Some(s)) => (s, true),
    };
    let s = raw.get_ref();
    let built = crate::rules::schedule::Schedule::new(
        s.days.as_ref().map(|d| d.get_ref().as_slice()),
        s.hours.as_ref().map(|h| h.get_ref().as_str()),
        s.tz.as_ref().map(|t| t.get_ref().as_str()),
        outside,
    );
    match built {
        Ok(schedule) => Some(schedule),
        Err(e) => {
            let span = match e.key {
                "days" => s.days.as_ref().map(Spanned::span),
                "hours" => s.hours.as_ref().map(Spanned::span),
                _ => s.tz.as_ref().map(Spanned::span),
            };
            r.error(
                span.unwrap_or_else(|| raw.span()),
                format!("{}: {}", e.key, e.message),
            );
            None
        }
    }
}

/// A condition: either a comparison or a group.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCondition {
    field: Option<Spanned<String>>,
    op: Option<Spanned<String>>,
    value: Option<Spanned<toml::Value>>,
    case_sensitive: Option<bool>,
    #[serde(rename = "match")]
    match_: Option<Spanned<String>>,
    conditions: Option<Vec<Spanned<RawCondition>>>,
}

impl RawAlarm {
    /// The alarm's name and where it stands, for duplicate checks.
    pub fn name(&self) -> &Spanned<String> {
        &self.name
    }
}

/// Validates one alarm; problems go to `r` and the alarm is returned only if it had none.
pub(super) fn alarm(raw: &Spanned<RawAlarm>, r: &mut Reporter<'_>) -> Option<AlarmDef> {
    let before = r.found.len();
    let a = raw.get_ref();
    let name = a.name.get_ref().trim();
    if name.is_empty() || name.len() > 200 {
        r.error(a.name.span(), "alarm name must be 1 to 200 characters");
    }
    let declared = a.kind.as_ref().and_then(|k| {
        let kind = EventKind::from_name(k.get_ref());
        if kind.is_none() {
            r.error(
                k.span(),
                format!(
                    "unknown kind {:?}; expected one of activity, usb, account",
                    k.get_ref()
                ),
            );
        }
        kind
    });
    let all = group_mode(a.match_.as_ref(), r);
    let conditions = a.conditions.get_ref();
    if conditions.is_empty() {
        r.error(
            a.conditions.span(),
            "an alarm needs at least one condition, e.g. { field = \"url\", op = \"contains\", value = \"youtube\" }",
        );
    }
    let members: Vec<Condition> = conditions
        .iter()
        .filter_map(|c| condition(c, declared, r))
        .collect();
    let unless: Vec<Condition> = a
        .unless
        .iter()
        .filter_map(|c| condition(c, declared, r))
        .collect();
    let when = if all {
        Condition::All(members)
    } else {
        Condition::Any(members)
    };
    let risk = a
        .risk
        .as_ref()
        .map_or(Some(1), |risk| risk_of(risk, r))
        .unwrap_or(1);
    let actions = actions_of(&a.actions, r);
    let repeat = match &a.repeat {
        None => Repeat::default(),
        Some(s) => Repeat::from_name(s.get_ref()).unwrap_or_else(|| {
            r.error(
                s.span(),
                format!(
                    "unknown repeat {:?}; expected one of {}",
                    s.get_ref(),
                    Repeat::NAMES.join(", ")
                ),
            );
            Repeat::default()
        }),
    };
    let cooldown = a
        .cooldown
        .as_ref()
        .and_then(|c| match parse_duration_text(c.get_ref()) {
            Ok(d) => Some(d),
            Err(e) => {
                r.error(c.span(), format!("cooldown: {e}"));
                None
            }
        });
    let schedule = schedule(a, r);
    let applies_to = a
        .applies_to
        .as_ref()
        .map(|t| super::targets::targets(t, r))
        .filter(|t| !t.is_everyone());
    let escalate = escalation(a, r);
    if r.found.len() > before {
        return None;
    }
    let kinds = declared
        .map_or(KindSet::ALL, EventKind::bit)
        .and(when.kinds());
    if kinds.is_empty() {
        r.error(
            a.conditions.span(),
            "these conditions can never hold together: they need fields that no single kind of \
             event carries (activity, usb and account events have different fields)",
        );
        return None;
    }
    Some(AlarmDef {
        name: name.to_string(),
        description: a.description.clone(),
        kinds,
        when,
        unless,
        risk,
        actions,
        repeat,
        cooldown,
        schedule,
        applies_to,
        escalate,
    })
}

/// `match = "all" | "any"`, default all.
fn group_mode(m: Option<&Spanned<String>>, r: &mut Reporter<'_>) -> bool {
    match m.map(|s| (s.get_ref().as_str(), s.span())) {
        None | Some(("all", _)) => true,
        Some(("any", _)) => false,
        Some((other, span)) => {
            r.error(
                span,
                format!("unknown match {other:?}; expected \"all\" or \"any\""),
            );
            true
        }
    }
}

fn condition(
    raw: &Spanned<RawCondition>,
    declared: Option<EventKind>,
    r: &mut Reporter<'_>,
) -> Option<Condition> {
    let c = raw.get_ref();
    let is_leaf = c.field.is_some() || c.op.is_some() || c.value.is_some();
    let is_group = c.match_.is_some() || c.conditions.is_some();
    match (is_leaf, is_group) {
        (true, true) => {
            r.error(
                raw.span(),
                "a condition is either a comparison { field, op, value } or a group \
                 { match, conditions }, not both",
            );
            None
        }
        (false, false) => {
            r.error(
                raw.span(),
                "empty condition; expected { field, op, value } or { match, conditions }",
            );
            None
        }
        (false, true) => {
            let all = group_mode(c.match_.as_ref(), r);
            let members = c.conditions.as_deref().unwrap_or_default();
            if members.is_empty() {
                r.error(
                    raw.span(),
                    "empty group: `conditions` needs at least one condition",
                );
                return None;
            }
            let before = r.found.len();
            let parsed: Vec<Condition> = members
                .iter()
                .filter_map(|m| condition(m, declared, r))
                .collect();
            (r.found.len() == before).then(|| {
                if all {
                    Condition::All(parsed)
                } else {
                    Condition::Any(parsed)
                }
            })
        }
        (true, false) => leaf(raw.span(), c, declared, r).map(Condition::Leaf),
    }
}

fn leaf(
    span: Range<usize>,
    c: &RawCondition,
    declared: Option<EventKind>,
    r: &mut Reporter<'_>,
) -> Option<Leaf> {
    let (Some(field), Some(op), Some(value)) = (&c.field, &c.op, &c.value) else {
        let missing: Vec<&str> = [
            ("field", c.field.is_none()),
            ("op", c.op.is_none()),
            ("value", c.value.is_none()),
        ]
        .iter()
        .filter(|(_, m)| *m)
        .map(|(n, _)| *n)
        .collect();
        r.error(
            span,
            format!("comparison is missing {}", missing.join(" and ")),
        );
        return None;
    };
    let subject = match field.get_ref().as_str() {
        "kind" => Subject::Kind,
        name => match Field::from_name(name) {
            Some(f) => Subject::Field(f),
            None => {
                r.error(
                    field.span(),
                    format!(
                        "unknown field {name:?}; expected kind or one of: {}",
                        Field::names_for(KindSet::ALL)
                    ),
                );
                return None;
            }
        },
    };
    if let Some(kind) = declared
        && !subject.kinds().contains(kind)
    {
        r.error(
            field.span(),
            format!(
                "`{}` is not a field of {kind} events (the alarm's kind); {kind} events have: {}",
                subject.name(),
                Field::names_for(kind.bit())
            ),
        );
        return None;
    }
    let ty = subject.field_type();
    let op_span = op.span();
    let Some(op) = Op::from_name(op.get_ref()) else {
        r.error(
            op_span,
            format!(
                "unknown operator {:?}; expected one of: {}",
                op.get_ref(),
                Op::ALL.map(Op::name).join(", ")
            ),
        );
        return None;
    };
    if !op.applies_to(ty) {
        let what = match ty {
            FieldType::Text => "text",
            FieldType::Number => "a number",
        };
        r.error(
            op_span,
            format!(
                "operator `{op}` does not apply to `{}`, which is {what}; use one of: {}",
                subject.name(),
                Op::names_for(ty)
            ),
        );
        return None;
    }
    let case_sensitive = c.case_sensitive.unwrap_or(false);
    if c.case_sensitive.is_some() && ty == FieldType::Number {
        r.error(
            span,
            format!(
                "case_sensitive applies to text fields; `{}` is a number",
                subject.name()
            ),
        );
        return None;
    }
    let operand = operand(subject, op, value, case_sensitive, r)?;
    // Shown as written: `check` must not print a pack's values lowercased.
    let written = match value.get_ref() {
        toml::Value::String(s) if !matches!(operand, Operand::Regex(_)) => Some(format!("{s:?}")),
        toml::Value::Array(items) if items.iter().all(toml::Value::is_str) => {
            let texts: Vec<&str> = items.iter().filter_map(toml::Value::as_str).collect();
            Some(format!("{texts:?}"))
        }
        _ => None,
    };
    Some(Leaf {
        subject,
        op,
        operand,
        case_sensitive,
        written,
    })
}

fn operand(
    subject: Subject,
    op: Op,
    value: &Spanned<toml::Value>,
    case_sensitive: bool,
    r: &mut Reporter<'_>,
) -> Option<Operand> {
    let span = value.span();
    let fold = |s: &str| {
        if case_sensitive {
            s.to_string()
        } else {
            fold_case(s).into_owned()
        }
    };
    let check_kind = |s: &str, r: &mut Reporter<'_>| {
        // Compared as every text field is (ignoring case unless told otherwise), so checked the
        // same way: `value = "USB"` is the kind usb.
        let folded = fold(s);
        let ok = subject != Subject::Kind || EventKind::from_name(&folded).is_some();
        if !ok {
            r.error(
                span.clone(),
                format!("unknown kind {s:?}; expected one of activity, usb, account"),
            );
        }
        ok
    };
    let ty = subject.field_type();
    let name = subject.name();
    let is_list = value.get_ref().is_array();
    if is_list && !op.accepts_list() {
        r.error(span, format!("`{op}` takes one value, not a list"));
        return None;
    }
    if op.takes_list() || is_list {
        let Some(items) = value.get_ref().as_array().filter(|a| !a.is_empty()) else {
            r.error(
                span,
                format!("`{op}` takes a non-empty list of values, e.g. [\"a\", \"b\"]"),
            );
            return None;
        };
        return match ty {
            FieldType::Text => {
                let texts: Option<Vec<&str>> = items.iter().map(toml::Value::as_str).collect();
                let Some(texts) = texts else {
                    r.error(
                        span,
                        format!("`{name}` is text: every value in the list must be a string"),
                    );
                    return None;
                };
                let mut ok = true;
                for t in &texts {
                    ok &= check_kind(t, r);
                }
                ok.then(|| Operand::Texts(texts.into_iter().map(fold).collect()))
            }
            FieldType::Number => {
                let nums: Option<Vec<f64>> = items.iter().map(number).collect();
                match nums {
                    Some(n) => Some(Operand::Numbers(n)),
                    None => {
                        r.error(
                            span,
                            format!(
                                "`{name}` is a number: every value in the list must be a number"
                            ),
                        );
                        None
                    }
                }
            }
        };
    }
    match ty {
        FieldType::Text => {
            let Some(text) = value.get_ref().as_str() else {
                r.error(
                    span,
                    format!(
                        "`{name}` is text: the value must be a string, found {}",
                        value.get_ref().type_str()
                    ),
                );
                return None;
            };
            if op == Op::Matches {
                return match super::regex_budget::compile(text, case_sensitive) {
                    Ok(re) => Some(Operand::Regex(re)),
                    Err(e) => {
                        r.error(span, format!("invalid regular expression: {e}"));
                        None
                    }
                };
            }
            check_kind(text, r).then(|| Operand::Text(fold(text)))
        }
        FieldType::Number => match number(value.get_ref()) {
            Some(n) => Some(Operand::Number(n)),
            None => {
                r.error(
                    span,
                    format!(
                        "`{name}` is a number: the value must be a number, found {}",
                        value.get_ref().type_str()
                    ),
                );
                None
            }
        },
    }
}

fn number(v: &toml::Value) -> Option<f64> {
    match v {
        toml::Value::Integer(i) => Some(*i as f64),
        toml::Value::Float(f) if f.is_finite() => Some(*f),
        _ => None,
    }
}
