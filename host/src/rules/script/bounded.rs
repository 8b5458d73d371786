//! Built-ins whose output can be many times their input, replaced by versions that work out the
//! size first and refuse before they allocate.
//!
//! Rhai checks a value's size against the string, array and map caps once an operation has
//! produced it. For most built-ins the result is at most a small multiple of what went in, so
//! that check is enough (`+` doubles at most; `pad` and `blob` check their length first). Not
//! `replace`: `s.replace("x", s)` on a 32 KiB string builds a 1 GiB string inside the host before
//! any check — 1.5 s and 2 GB per call, an abort under an address-space limit. Functions
//! registered on the engine are found before its packages', so these take the built-ins' place
//! for every script.

use rhai::{Engine, EvalAltResult, ImmutableString, Position};

/// Registers the bounded built-ins; `max` is the engine's string cap.
pub(super) fn register(engine: &mut Engine, max: usize) {
    engine.register_fn(
        "replace",
        move |s: &mut ImmutableString, find: &str, with: &str| replace(s, find, with, max),
    );
    engine.register_fn(
        "replace",
        move |s: &mut ImmutableString, find: &str, with: char| {
            replace(s, find, with.encode_utf8(&mut [0; 4]), max)
        },
    );
    engine.register_fn(
        "replace",
        move |s: &mut ImmutableString, find: char, with: &str| {
            replace(s, find.encode_utf8(&mut [0; 4]), with, max)
        },
    );
    engine.register_fn(
        "replace",
        move |s: &mut ImmutableString, find: char, with: char| {
            let (mut a, mut b) = ([0; 4], [0; 4]);
            replace(s, find.encode_utf8(&mut a), with.encode_utf8(&mut b), max)
        },
    );
}

/// `s` with every `find` replaced by `with`, if the result fits in `max` bytes.
fn replace(
    s: &mut ImmutableString,
    find: &str,
    with: &str,
    max: usize,
) -> Result<(), Box<EvalAltResult>> {
    // An empty pattern matches between every two characters, and at both ends.
    let matches = if find.is_empty() {
        s.chars().count() + 1
    } else {
        s.matches(find).count()
    };
    if matches == 0 {
        return Ok(());
    }
    let after = (s.len() - matches * find.len()).saturating_add(matches.saturating_mul(with.len()));
    if after > max {
        return Err(Box::new(EvalAltResult::ErrorDataTooLarge(
            format!("Length of string ({after} bytes after replace)"),
            Position::NONE,
        )));
    }
    *s = s.replace(find, with).into();
    Ok(())
}
