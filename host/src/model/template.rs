//! `{{placeholder}}` templates for action texts (pop-up messages, e-mail subjects and bodies).
//!
//! Templates are parsed when the pack loads, so a misspelt placeholder is a load error with the
//! list of valid names, not a blank in an e-mail sent at 3 a.m.

use std::fmt;

use crate::event::{Event, Field, FieldValue, format_number};

/// Facts about a firing that templates can name besides the event's own fields.
pub struct FiringContext<'a> {
    /// The alarm's name.
    pub alarm: &'a str,
    /// The pack the alarm came from.
    pub pack: &'a str,
    /// The alarm's risk level.
    pub risk: u8,
    /// The event as it was when the alarm fired.
    pub event: &'a Event,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Var {
    Field(Field),
    Kind,
    Ts,
    Time,
    User,
    Alarm,
    Pack,
    Risk,
    DurationMinutes,
}

const EXTRA_VARS: [(&str, Var); 8] = [
    ("kind", Var::Kind),
    ("ts", Var::Ts),
    // For people: `2026-11-02 14:05:00 +01:00`, in the event's own offset.
    ("time", Var::Time),
    ("user", Var::User),
    ("alarm", Var::Alarm),
    ("pack", Var::Pack),
    ("risk", Var::Risk),
    ("duration_minutes", Var::DurationMinutes),
];

#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Text(String),
    Var(Var),
}

/// A parsed template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    source: String,
    pieces: Vec<Piece>,
}

/// Every placeholder name a template may use, for error messages and docs.
pub fn placeholder_names() -> String {
    let mut names: Vec<&str> = Field::ALL.iter().map(|f| f.name()).collect();
    names.extend(EXTRA_VARS.iter().map(|(n, _)| *n));
    names.join(", ")
}

impl Template {
    /// Parses `{{name}}` placeholders (spaces inside the braces allowed).
    pub fn parse(source: &str) -> Result<Template, String> {
        let mut pieces = Vec::new();
        let mut rest = source;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                pieces.push(Piece::Text(rest[..open].to_string()));
            }
            let after = &rest[open + 2..];
            let close = after
                .find("}}")
                .ok_or_else(|| format!("`{{{{` without a closing `}}}}` in {source:?}"))?;
            let name = after[..close].trim();
            let var = Field::from_name(name)
                .map(Var::Field)
                .or_else(|| EXTRA_VARS.iter().find(|(n, _)| *n == name).map(|(_, v)| *v))
                .ok_or_else(|| {
                    format!(
                        "unknown placeholder {{{{{name}}}}}; expected one of: {}",
                        placeholder_names()
                    )
                })?;
            pieces.push(Piece::Var(var));
            rest = &after[close + 2..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_string()));
        }
        Ok(Template {
            source: source.to_string(),
            pieces,
        })
    }

    /// The template as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Fills the placeholders; a field the event lacks renders as nothing.
    pub fn render(&self, ctx: &FiringContext<'_>) -> String {
        let mut out = String::with_capacity(self.source.len() + 32);
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Var(v) => render_var(*v, ctx, &mut out),
            }
        }
        out
    }
}

fn render_var(var: Var, ctx: &FiringContext<'_>, out: &mut String) {
    use std::fmt::Write;
    let event = ctx.event;
    match var {
        Var::Field(f) => match event.value(f) {
            Some(FieldValue::Text(t)) => out.push_str(t),
            Some(FieldValue::Number(n)) => out.push_str(&format_number(n)),
            None => {}
        },
        Var::Kind => out.push_str(event.kind().name()),
        Var::Ts => out.push_str(&event.ts().to_rfc3339()),
        Var::Time => {
            let _ = write!(out, "{}", event.ts().format("%Y-%m-%d %H:%M:%S %:z"));
        }
        Var::User => out.push_str(event.user().unwrap_or("")),
        Var::Alarm => out.push_str(ctx.alarm),
        Var::Pack => out.push_str(ctx.pack),
        Var::Risk => {
            let _ = write!(out, "{}", ctx.risk);
        }
        Var::DurationMinutes => {
            if let Some(d) = event.number(Field::Duration) {
                let _ = write!(out, "{}", (d / 60.0).floor() as u64);
            }
        }
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventKind;

    #[test]
    fn fills_fields_and_firing_facts() {
        let event = Event::new(
            EventKind::Activity,
            chrono::DateTime::parse_from_rfc3339("2026-11-02T09:00:00Z").expect("ts"),
        )
        .with_text(Field::PrimaryDomain, "youtube.com")
        .with_number(Field::Duration, 1260.0);
        let ctx = FiringContext {
            alarm: "YouTube over 20 minutes",
            pack: "standard",
            risk: 3,
            event: &event,
        };
        let t = Template::parse(
            "{{ duration_minutes }} min on {{primary_domain}} ({{alarm}}, risk {{risk}}){{url}}",
        )
        .expect("valid");
        assert_eq!(
            t.render(&ctx),
            "21 min on youtube.com (YouTube over 20 minutes, risk 3)"
        );
        let at = Template::parse("at {{time}}").expect("valid");
        assert_eq!(at.render(&ctx), "at 2026-11-02 09:00:00 +00:00");
    }

    #[test]
    fn rejects_unknown_and_unclosed_placeholders() {
        let e = Template::parse("hi {{usr}}").expect_err("unknown");
        assert!(
            e.contains("unknown placeholder {{usr}}") && e.contains("username"),
            "{e}"
        );
        assert!(
            Template::parse("hi {{user")
                .expect_err("unclosed")
                .contains("closing")
        );
        assert_eq!(
            Template::parse("plain }} text").expect("ok").source(),
            "plain }} text"
        );
    }
}
