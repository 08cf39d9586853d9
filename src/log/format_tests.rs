//! The compiler and renderer against what Python's `format % SafeAtoms(atoms)` gives.

use super::*;

/// Atoms with fixed values: each str atom is its key, ints are fixed numbers.
struct Fixed;

impl Atoms for Fixed {
    fn value<'s>(&'s self, atom: &'s Atom, _scratch: &'s mut String) -> Value<'s> {
        match atom {
            Atom::RemoteAddr => Value::Str("127.0.0.1"),
            Atom::Sent => Value::Int(42),
            Atom::Seconds => Value::Int(0),
            Atom::UserAgent => Value::Str(r#"say "hi""#),
            Atom::RequestHeader(name) if name == "x-a" => Value::Str("a-value"),
            Atom::Missing => Value::Raw("-"),
            _ => Value::Raw("?"),
        }
    }
}

fn render(format: &str) -> String {
    let mut out = String::new();
    AccessFormat::compile(format)
        .unwrap()
        .render(&Fixed, &mut out);
    out
}

#[test]
fn renders_like_python_percent_formatting() {
    // Expected values are what Python 3.11 prints for the same format and values.
    for (format, want) in [
        ("%(h)s", "127.0.0.1"),
        ("100%% %(h)s", "100% 127.0.0.1"),
        (
            "%(B)s|%(B)d|%(B)5d|%(B)-5d|%(B)05d|%(B)+d|%(B).4d",
            "42|42|   42|42   |00042|+42|0042",
        ),
        (
            "[%(h)12s][%(h)-12s][%(h).3s]",
            "[   127.0.0.1][127.0.0.1   ][127]",
        ),
        ("%(a)s", r#"say \"hi\""#),
        ("%(nope)s %()s %({x-a}x)s", "- - -"),
        ("%({X-A}i)s %({x-a}i)s", "a-value a-value"),
        ("%(h)ls", "127.0.0.1"),
        ("no atoms", "no atoms"),
        ("%((x))s", "-"),
    ] {
        assert_eq!(render(format), want, "{format}");
    }
}

#[test]
fn refuses_what_python_would_fail_on_while_logging() {
    for format in [
        "%s",
        "%(h)",
        "trailing %",
        "%(h",
        "%(h)*s",
        "%(s)d",
        "%(h)r",
        "%(h)f",
    ] {
        assert!(AccessFormat::compile(format).is_err(), "{format}");
    }
}

#[test]
fn default_format_uses_no_headers_or_environ() {
    let f = AccessFormat::compile(DEFAULT_FORMAT).unwrap();
    assert!(!f.needs_response_headers);
    assert!(f.environ_keys.is_empty());
    let g =
        AccessFormat::compile("%({Content-Type}o)s %({REMOTE_ADDR}e)s %({x}e)s %({x}E)s").unwrap();
    assert!(g.needs_response_headers);
    assert_eq!(g.environ_keys, ["remote_addr", "x"]);
}
