//! Body decoders, fed whole and one byte at a time (split across reads).

use super::*;

/// Decodes `input` fed in pieces of `step` bytes; returns (body, bytes left over).
fn decode_in_steps(
    framing: BodyFraming,
    input: &[u8],
    step: usize,
) -> Result<(Vec<u8>, usize), HttpError> {
    let mut decoder = Decoder::new(framing);
    let mut out = BodyBuffer::default();
    let mut pending: Vec<u8> = Vec::new();
    let mut fed = 0;
    while !decoder.is_done() {
        if fed >= input.len() {
            return Err(HttpError::bad("truncated"));
        }
        let end = (fed + step).min(input.len());
        pending.extend_from_slice(&input[fed..end]);
        fed = end;
        let used = decoder.decode(&pending, &mut out)?;
        pending.drain(..used);
    }
    let body = match out.finish().unwrap() {
        Body::Memory(v) => v,
        Body::File(..) => unreachable!("small bodies stay in memory"),
    };
    Ok((body, pending.len() + input.len() - fed))
}

#[test]
fn chunked_bodies_decode_whole_and_split() {
    let cases: &[(&[u8], &[u8], usize)] = &[
        (b"5\r\nhello\r\n0\r\n\r\n", b"hello", 0),
        (b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", b"hello world", 0),
        (b"A;name=value\r\n0123456789\r\n0\r\n\r\n", b"0123456789", 0),
        (b"3\r\nabc\r\n0\r\nX-Trailer: t\r\n\r\n", b"abc", 0),
        (b"0\r\n\r\nGET / HTTP/1.1\r\n\r\n", b"", 18),
        (b"1\r\nz\r\n0\r\n\r\n", b"z", 0),
    ];
    for (input, want, leftover) in cases {
        for step in [1, 2, 7, input.len()] {
            let (body, left) = decode_in_steps(BodyFraming::Chunked, input, step).unwrap();
            assert_eq!(
                body,
                *want,
                "{} step {step}",
                String::from_utf8_lossy(input)
            );
            assert_eq!(
                left,
                *leftover,
                "{} step {step}",
                String::from_utf8_lossy(input)
            );
        }
    }
}

#[test]
fn malformed_chunked_bodies_are_errors() {
    let cases: &[&[u8]] = &[
        b"x\r\nhello\r\n0\r\n\r\n",
        b"5\r\nhelloXX0\r\n\r\n",
        b"-5\r\nhello\r\n0\r\n\r\n",
        b"fffffffffffffffff\r\n",
        b"5 ;\x01ext\r\nhello\r\n0\r\n\r\n",
        b"\r\n",
        b"0\r\n bad-trailer\r\n\r\n",
    ];
    for input in cases {
        let err = decode_in_steps(BodyFraming::Chunked, input, input.len());
        assert!(
            err.is_err(),
            "{:?} should fail",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn content_length_bodies_stop_at_the_length() {
    let (body, left) = decode_in_steps(BodyFraming::Length(5), b"helloGET", 3).unwrap();
    assert_eq!((body.as_slice(), left), (&b"hello"[..], 3));
}

#[test]
fn large_bodies_spill_to_a_file_and_read_back() {
    use std::io::Read;
    let mut buffer = BodyBuffer::default();
    let block = vec![b'q'; 64 * 1024];
    for _ in 0..20 {
        buffer.push(&block).unwrap();
    }
    assert_eq!(buffer.len(), 20 * 64 * 1024);
    match buffer.finish().unwrap() {
        Body::File(mut f, n) => {
            let mut all = Vec::new();
            f.read_to_end(&mut all).unwrap();
            assert_eq!((all.len() as u64, n), (n, 20 * 64 * 1024));
            assert!(all.iter().all(|&b| b == b'q'));
        }
        Body::Memory(_) => panic!("a body over the memory limit must spill"),
    }
}

/// The decoded body, or the status of the refusal.
type Verdict = Result<&'static [u8], u16>;

#[test]
fn chunk_sizes_and_trailers_follow_rfc_9112() {
    let cases: &[(&[u8], Verdict)] = &[
        (b"5\r\nhello\r\n6_0\r\n world\r\n0\r\n\r\n", Err(400)),
        (b"5\r\nhello\r\n0 \r\n\r\n", Err(400)),
        (b"5\r\nhello\r\n 0\r\n\r\n", Err(400)),
        (b"5\n;\r\nhello\r\n0\r\n\r\n", Err(400)),
        (b" ;foo=bar\r\nhello\r\n0\r\n\r\n", Err(400)),
        (b"\r\nhello\r\n0\r\n\r\n", Err(400)),
        (b"5;ext=val\rue\r\nhello\r\n0\r\n\r\n", Err(400)),
        (b"+5\r\nhello\r\n0\r\n\r\n", Err(400)),
        (b"0x5\r\nhello\r\n0\r\n\r\n", Err(400)),
        (b"5\r\nhello0\r\n\r\n", Err(400)),
        (b"5\r\nhello\r\n0\r\nContent-Length: 99\r\n\r\n", Err(400)),
        (b"5\r\nhello\r\n0\r\nHost: evil\r\n\r\n", Err(400)),
        (
            b"5\r\nhello\r\n0\r\nTransfer-Encoding: chunked\r\n\r\n",
            Err(400),
        ),
        (b"5\r\nhello\r\n0\r\nX-T: a\x07b\r\n\r\n", Err(400)),
        (b"5\r\nhello\r\n0\r\nX-T: a\r\n folded\r\n\r\n", Err(400)),
        (b"5\r\nhello\r\n0\r\nX T: a\r\n\r\n", Err(400)),
        // Every field RFC 9110 §6.5.1 forbids in trailers, in any case.
        (b"5\r\nhello\r\n0\r\nTrailer: X\r\n\r\n", Err(400)),
        (b"5\r\nhello\r\n0\r\nAuthorization: x\r\n\r\n", Err(400)),
        (b"5\r\nhello\r\n0\r\nte: trailers\r\n\r\n", Err(400)),
        // Chunk extensions outside RFC 9112 §7.1.1's grammar.
        (b"5;\r\nhello\r\n0\r\n\r\n", Err(400)),
        (b"5;=v\r\nhello\r\n0\r\n\r\n", Err(400)),
        (b"5;a=\r\nhello\r\n0\r\n\r\n", Err(400)),
        (b"5;a b\r\nhello\r\n0\r\n\r\n", Err(400)),
        (b"5;a=\"open\r\nhello\r\n0\r\n\r\n", Err(400)),
        (b"5;a=\"x\"y\r\nhello\r\n0\r\n\r\n", Err(400)),
        (b"5;a=(b)\r\nhello\r\n0\r\n\r\n", Err(400)),
        (b"5;a;;b\r\nhello\r\n0\r\n\r\n", Err(400)),
        (
            b"5 ;\ta = \"q\\\"d\" ; b=c;d\r\nhello\r\n0\r\n\r\n",
            Ok(b"hello"),
        ),
        (b"5;a=\"caf\xc3\xa9\"\r\nhello\r\n0\r\n\r\n", Ok(b"hello")),
        (
            b"5 ; some; parameters=stuff\r\nhello\r\n0\r\n\r\n",
            Ok(b"hello"),
        ),
        (
            b"5;ext=\"quoted; value\"\r\nhello\r\n0\r\n\r\n",
            Ok(b"hello"),
        ),
        (
            b"000000000000000000005\r\nhello\r\n0000\r\n\r\n",
            Ok(b"hello"),
        ),
        (b"A\r\n0123456789\r\n0\r\n\r\n", Ok(b"0123456789")),
        (
            b"5\r\nhello\r\n0\r\nX-Trailer: fine\r\nX-Other: ok\r\n\r\n",
            Ok(b"hello"),
        ),
    ];
    for (input, want) in cases {
        for step in [1, 3, input.len()] {
            let got = decode_in_steps(BodyFraming::Chunked, input, step)
                .map(|(body, _)| body)
                .map_err(|e| e.status().0);
            assert_eq!(
                got.as_deref().map_err(|s| *s),
                *want,
                "{} step {step}",
                String::from_utf8_lossy(input)
            );
        }
    }
}

#[test]
fn a_chunked_body_past_the_limit_is_413() {
    let input = b"6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n";
    for (limit, want) in [(Some(10), Err(413)), (Some(11), Ok(11)), (None, Ok(11))] {
        let mut decoder = Decoder::with_limit(BodyFraming::Chunked, limit);
        let mut out = BodyBuffer::default();
        let got = decoder
            .decode(input, &mut out)
            .map(|_| out.len())
            .map_err(|e| e.status().0);
        assert_eq!(got, want, "limit {limit:?}");
    }
}

/// Appends what `data` still holds, at most `max` bytes: a socket read standing in.
fn reader<'a, 'b>(
    data: &'a mut &'b [u8],
) -> impl FnOnce(&mut Vec<u8>, usize) -> io::Result<usize> + use<'a, 'b> {
    move |memory, max| {
        let n = data.len().min(max).min(memory.capacity() - memory.len());
        memory.extend_from_slice(&data[..n]);
        *data = &data[n..];
        Ok(n)
    }
}

#[test]
fn direct_reads_fill_a_length_body_in_memory_and_never_past_it() {
    // What arrived with the head is decoded first; the rest is read straight in.
    let mut decoder = Decoder::new(BodyFraming::Length(10));
    let mut out = BodyBuffer::default();
    assert_eq!(decoder.decode(b"012", &mut out).unwrap(), 3);
    let mut wire: &[u8] = b"3456789NEXT";
    assert_eq!(
        decoder
            .read_direct(&mut out, reader(&mut wire))
            .unwrap()
            .unwrap(),
        7
    );
    assert!(decoder.is_done());
    assert_eq!(wire, b"NEXT", "the next request is left on the socket");
    assert!(decoder.read_direct(&mut out, reader(&mut wire)).is_none());
    match out.finish().unwrap() {
        Body::Memory(v) => assert_eq!(v, b"0123456789"),
        Body::File(..) => panic!("a small body stays in memory"),
    }

    // In short reads, as a slow client sends it.
    let mut decoder = Decoder::new(BodyFraming::Length(5));
    let mut out = BodyBuffer::default();
    for piece in [&b"ab"[..], b"c", b"de"] {
        let mut wire = piece;
        let n = decoder
            .read_direct(&mut out, reader(&mut wire))
            .unwrap()
            .unwrap();
        assert_eq!(n, piece.len());
    }
    assert!(decoder.is_done());
    assert_eq!(out.len(), 5);
    // End of file before the body is complete: the decoder still wants more.
    let mut decoder = Decoder::new(BodyFraming::Length(5));
    let mut out = BodyBuffer::default();
    let mut wire: &[u8] = b"";
    assert_eq!(
        decoder
            .read_direct(&mut out, reader(&mut wire))
            .unwrap()
            .unwrap(),
        0
    );
    assert!(!decoder.is_done());
}

#[test]
fn direct_reads_are_only_for_length_bodies_that_stay_in_memory() {
    let mut wire: &[u8] = b"x";
    let at_limit = BodyFraming::Length(MEMORY_LIMIT as u64);
    let mut out = BodyBuffer::default();
    assert!(Decoder::new(at_limit)
        .read_direct(&mut out, reader(&mut wire))
        .is_some());
    for framing in [
        BodyFraming::Length(MEMORY_LIMIT as u64 + 1),
        BodyFraming::Chunked,
        BodyFraming::None,
    ] {
        let mut out = BodyBuffer::default();
        let mut decoder = Decoder::new(framing);
        assert!(
            decoder.read_direct(&mut out, reader(&mut wire)).is_none(),
            "{framing:?}"
        );
    }
    // A body already spooled to a file goes on through it.
    let mut out = BodyBuffer::default();
    out.push(&vec![b'a'; MEMORY_LIMIT + 1]).unwrap();
    let mut decoder = Decoder::new(BodyFraming::Length(3));
    assert!(decoder.read_direct(&mut out, reader(&mut wire)).is_none());
}

#[test]
fn direct_reads_grow_the_buffer_ahead_of_what_arrived() {
    // A client that announces 1 MiB and sends 10 bytes holds room for 64 KiB, not 1 MiB.
    let mut decoder = Decoder::new(BodyFraming::Length(MEMORY_LIMIT as u64));
    let mut out = BodyBuffer::default();
    let mut wire: &[u8] = b"0123456789";
    assert_eq!(
        decoder
            .read_direct(&mut out, reader(&mut wire))
            .unwrap()
            .unwrap(),
        10
    );
    assert_eq!(out.memory.capacity(), 64 * 1024);
    // A client that sends it all at once fills rooms of 64 KiB, then 4x what is there.
    let body = vec![7u8; MEMORY_LIMIT];
    let mut decoder = Decoder::new(BodyFraming::Length(MEMORY_LIMIT as u64));
    let mut out = BodyBuffer::default();
    let mut wire = &body[..];
    let mut rooms = Vec::new();
    while !decoder.is_done() {
        let result = decoder.read_direct(&mut out, |memory, max| {
            rooms.push(max);
            reader(&mut wire)(memory, max)
        });
        assert!(result.unwrap().unwrap() > 0);
    }
    assert_eq!(rooms, [64 * 1024, 192 * 1024, 768 * 1024]);
    assert_eq!(out.memory.capacity(), MEMORY_LIMIT);
    match out.finish().unwrap() {
        Body::Memory(v) => assert!(v == body),
        Body::File(..) => panic!("1 MiB stays in memory"),
    }
}

#[test]
fn a_spooled_body_keeps_its_bytes_and_order() {
    use std::io::Read;
    let mut buf = BodyBuffer::default();
    buf.push(b"in memory, ").unwrap();
    assert_eq!(buf.in_memory(), 11);
    buf.spool().unwrap();
    assert_eq!(buf.in_memory(), 0);
    buf.push(b"then on disk").unwrap();
    buf.spool().unwrap();
    match buf.finish().unwrap() {
        Body::File(mut f, n) => {
            let mut text = String::new();
            f.read_to_string(&mut text).unwrap();
            assert_eq!((text.as_str(), n), ("in memory, then on disk", 23));
        }
        Body::Memory(_) => panic!("a spooled body is a file"),
    }
}
