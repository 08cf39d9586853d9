//! The uwsgi packet parser on arbitrary bytes, under default and small limits.
//! Beyond "no panic, no hang": the verdict depends only on the packet's own bytes —
//! every prefix of a complete packet asks for more, the packet alone parses the same,
//! and bytes after it (the body, a next packet) change nothing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rustcorn::http::request::{HeaderMap, Limits};
use rustcorn::http::uwsgi::parse;

/// The first input byte picks the limits; the rest is the connection's bytes.
fn limits(flags: u8) -> Limits {
    let mut l = Limits::default();
    l.header_map = match flags & 3 {
        0 => HeaderMap::Drop,
        1 => HeaderMap::Refuse,
        _ => HeaderMap::Dangerous,
    };
    l.casefold_method = flags & 4 != 0;
    if flags & 8 != 0 {
        // Small limits reach the oversized-block and 414/431 paths with short inputs.
        l.request_line = Some(64);
        l.fields = 4;
        l.field_size = 64;
    }
    l
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, raw)) = data.split_first() else {
        return;
    };
    let limits = limits(flags);
    let whole = parse(raw, &limits);
    let mut longer = raw.to_vec();
    longer.extend_from_slice(b"\x00trailing body bytes");
    let extended = parse(&longer, &limits);
    match &whole {
        Ok(Some((packet, used))) => {
            assert!(*used >= 4 && *used <= raw.len());
            assert!(!packet.head.method().is_empty() && !packet.head.target().is_empty());
            for cut in [0, 1, 3, 4, used / 2, used - 1] {
                if cut < *used {
                    assert!(
                        matches!(parse(&raw[..cut], &limits), Ok(None)),
                        "prefix of {cut} bytes is not 'need more'"
                    );
                }
            }
            match parse(&raw[..*used], &limits) {
                Ok(Some((again, n))) => {
                    assert_eq!(n, *used);
                    assert!(again.head.fields().eq(packet.head.fields()));
                    assert_eq!(again.head.body, packet.head.body);
                    assert_eq!((again.https, again.remote), (packet.https, packet.remote));
                }
                other => panic!("the packet's own bytes parse differently: {other:?}"),
            }
            assert!(matches!(extended, Ok(Some((_, n))) if n == *used));
        }
        Ok(None) => {}
        Err(e) => assert_eq!(extended.as_ref().err(), Some(e), "more bytes changed the error"),
    }
});
