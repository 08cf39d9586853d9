//! The request target and header bytes as text, without Python: the one splitter of a
//! target into path, query and fragment, %XX decoding, and latin-1 (one code point per
//! byte, as PEP 3333 and ASGI read header bytes). The WSGI environ, the ASGI scope, the
//! access log and the hooks' `req` all take them from here, so they never disagree.

/// Bytes to str, one code point per byte (PEP 3333's "native strings"). ASCII, the
/// usual case, is copied whole rather than char by char.
pub fn latin1(bytes: &[u8]) -> String {
    if bytes.is_ascii() {
        // ASCII is UTF-8 that maps to itself.
        return String::from_utf8_lossy(bytes).into_owned();
    }
    bytes.iter().map(|&b| b as char).collect()
}

/// Decodes %XX escapes; a `%` not followed by two hex digits stays as it is.
pub fn percent_decode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] == b'%' && i + 2 < input.len() {
            let hex = |b: u8| (b as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(input[i + 1]), hex(input[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(input[i]);
        i += 1;
    }
    out
}

/// Splits a request target into (path, query, fragment): the one splitter behind
/// `PATH_INFO`/`QUERY_STRING`, the access log and the hooks' `req.path`, so they never
/// disagree. An absolute-form target (`http://host/path`) contributes only its path;
/// `://` further on (`/redirect/http://x/y`) is part of the path.
pub fn split_target(target: &str) -> (&str, &str, &str) {
    let mut rest = target;
    // Only an absolute-form target (`http://host/path`) has a scheme; the usual
    // origin-form one starts with `/` and skips the substring search.
    let scheme_end = if target.starts_with('/') {
        None
    } else {
        target.find("://")
    };
    if let Some(scheme_end) = scheme_end {
        if rest[..scheme_end].bytes().all(|b| b.is_ascii_alphabetic()) {
            let after = &rest[scheme_end + 3..];
            rest = after.find('/').map_or("/", |i| &after[i..]);
        }
    }
    // One scan for the first `?` or `#` (the usual target has neither); a short target
    // byte by byte, as memchr's set-up and dispatch (~50 instructions) cost more there.
    let found = if rest.len() < 16 {
        rest.bytes().position(|b| b == b'?' || b == b'#')
    } else {
        memchr::memchr2(b'?', b'#', rest.as_bytes())
    };
    let Some(at) = found else {
        return (rest, "", "");
    };
    let (path, after) = (&rest[..at], &rest[at + 1..]);
    if rest.as_bytes()[at] == b'#' {
        return (path, "", after);
    }
    let (query, fragment) = after.split_once('#').unwrap_or((after, ""));
    (path, query, fragment)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding_keeps_bad_escapes() {
        let cases: &[(&str, &[u8])] = &[
            ("/caf%C3%A9", b"/caf\xc3\xa9"),
            ("/a%20b", b"/a b"),
            ("/100%", b"/100%"),
            ("/%zz", b"/%zz"),
            ("/%4", b"/%4"),
            ("%2F", b"/"),
        ];
        for (input, want) in cases {
            assert_eq!(percent_decode(input.as_bytes()), *want, "{input}");
        }
    }

    #[test]
    fn targets_split_into_path_and_query() {
        let cases = [
            ("/a/b?x=1&y=2", ("/a/b", "x=1&y=2", "")),
            ("/", ("/", "", "")),
            ("/a#frag", ("/a", "", "frag")),
            ("/p?q#frag", ("/p", "q", "frag")),
            ("/a#frag?x", ("/a", "", "frag?x")),
            ("/a?#", ("/a", "", "")),
            ("/a?q?r", ("/a", "q?r", "")),
            ("http://example.com/p?q", ("/p", "q", "")),
            ("http://example.com", ("/", "", "")),
            ("*", ("*", "", "")),
            // Regression: the hooks' own splitter once made this `/y`.
            ("/redirect/http://x/y", ("/redirect/http://x/y", "", "")),
            ("/r?next=http://x/y", ("/r", "next=http://x/y", "")),
            // Both sides of the 16 bytes where the search changes hands.
            ("/123456789abcde?q", ("/123456789abcde", "q", "")),
            ("/123456789abcdef?q", ("/123456789abcdef", "q", "")),
            ("/123456789abcdef#f", ("/123456789abcdef", "", "f")),
            ("/123456789abcd#f", ("/123456789abcd", "", "f")),
        ];
        for (target, want) in cases {
            assert_eq!(split_target(target), want, "{target}");
        }
    }

    #[test]
    fn latin1_maps_each_byte_to_one_char() {
        assert_eq!(latin1(b"caf\xc3\xa9"), "caf\u{c3}\u{a9}");
        assert_eq!(latin1(b"text/plain"), "text/plain");
        assert_eq!(latin1(b"\xff\x00"), "\u{ff}\u{0}");
    }
}
