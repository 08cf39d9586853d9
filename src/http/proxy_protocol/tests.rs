use super::*;

/// (input, PROXY_PROTOCOL, (client, proxy) addresses)
type Case<'a, B> = (B, &'a str, Option<(&'a str, &'a str)>);

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

/// A v2 header: version/command, family/protocol, then the address block.
fn v2(ver_cmd: u8, fam_proto: u8, block: &[u8]) -> Vec<u8> {
    let mut out = V2_SIGNATURE.to_vec();
    out.push(ver_cmd);
    out.push(fam_proto);
    out.extend_from_slice(&(block.len() as u16).to_be_bytes());
    out.extend_from_slice(block);
    out
}

fn v2_inet(client: [u8; 4], proxy: [u8; 4], ports: (u16, u16)) -> Vec<u8> {
    let mut block = Vec::new();
    block.extend_from_slice(&client);
    block.extend_from_slice(&proxy);
    block.extend_from_slice(&ports.0.to_be_bytes());
    block.extend_from_slice(&ports.1.to_be_bytes());
    v2(0x21, 0x11, &block)
}

fn complete(buf: &[u8], mode: Mode) -> (Header, usize) {
    match parse(buf, mode) {
        Ok(Parsed::Complete { header, len }) => (header, len),
        other => panic!("{:?}: {other:?}", String::from_utf8_lossy(buf)),
    }
}

#[test]
fn v1_headers_give_client_and_proxy_addresses() {
    let cases: &[Case<&[u8]>] = &[
        (
            b"PROXY TCP4 192.0.2.1 198.51.100.7 56324 443\r\n",
            "TCP4",
            Some(("192.0.2.1:56324", "198.51.100.7:443")),
        ),
        (
            b"PROXY TCP6 2001:db8::1 ::1 1 65535\r\n",
            "TCP6",
            Some(("[2001:db8::1]:1", "[::1]:65535")),
        ),
        (
            b"PROXY TCP4 10.0.0.1 10.0.0.2 0 0\r\n",
            "TCP4",
            Some(("10.0.0.1:0", "10.0.0.2:0")),
        ),
        (b"PROXY UNKNOWN\r\n", "UNKNOWN", None),
        (
            b"PROXY UNKNOWN ffff:f::1 ffff:f::2 1 2\r\n",
            "UNKNOWN",
            None,
        ),
    ];
    for (line, protocol, addresses) in cases {
        let mut buf = line.to_vec();
        buf.extend_from_slice(b"GET / HTTP/1.1\r\n\r\n");
        let (header, len) = complete(&buf, Mode::Auto);
        assert_eq!(len, line.len(), "{:?}", String::from_utf8_lossy(line));
        assert_eq!(header.protocol, *protocol);
        assert_eq!(header.addresses, addresses.map(|(c, p)| (addr(c), addr(p))));
        assert_eq!(complete(&buf, Mode::V1), (header, len), "v1 only");
    }
}

#[test]
fn malformed_v1_lines_are_errors() {
    let long = format!("PROXY TCP4 {}", "1".repeat(120));
    let cases: &[&[u8]] = &[
        b"PROXY TCP4 192.0.2.1 198.51.100.7 56324\r\n",
        b"PROXY TCP4 192.0.2.1 198.51.100.7 56324 443 extra\r\n",
        b"PROXY TCP4  192.0.2.1 198.51.100.7 56324 443\r\n",
        b"PROXY TCP4 192.0.2.256 198.51.100.7 56324 443\r\n",
        b"PROXY TCP4 ::1 198.51.100.7 56324 443\r\n",
        b"PROXY TCP6 192.0.2.1 ::1 56324 443\r\n",
        b"PROXY TCP4 192.0.2.1 198.51.100.7 65536 443\r\n",
        b"PROXY TCP4 192.0.2.1 198.51.100.7 -1 443\r\n",
        b"PROXY TCP4 192.0.2.1 198.51.100.7 +80 443\r\n",
        b"PROXY TCP4 192.0.2.1 198.51.100.7 80 x\r\n",
        b"PROXY UDP4 192.0.2.1 198.51.100.7 56324 443\r\n",
        b"PROXY \r\n",
        b"PROXY TCP4 192.0.2.1 198.51.100.7 56324 44\xff\r\n",
        long.as_bytes(),
    ];
    for line in cases {
        let got = parse(line, Mode::Auto);
        assert!(
            matches!(got, Err(ProxyError::Line(_))),
            "{:?}: {got:?}",
            String::from_utf8_lossy(line)
        );
    }
}

#[test]
fn v2_headers_give_client_and_proxy_addresses() {
    let mut inet6 = Vec::new();
    inet6.extend_from_slice(&"2001:db8::5".parse::<Ipv6Addr>().unwrap().octets());
    inet6.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
    inet6.extend_from_slice(&4242u16.to_be_bytes());
    inet6.extend_from_slice(&8000u16.to_be_bytes());
    let mut with_tlv = v2_inet([192, 0, 2, 9], [10, 0, 0, 1], (1234, 80));
    // A TLV (PP2_TYPE_AUTHORITY "example.com") after the addresses: skipped.
    let tlv = b"\x02\x00\x0bexample.com";
    with_tlv[15] += tlv.len() as u8;
    with_tlv.extend_from_slice(tlv);
    let cases: Vec<Case<Vec<u8>>> = vec![
        (
            v2_inet([192, 0, 2, 9], [10, 0, 0, 1], (1234, 80)),
            "TCP4",
            Some(("192.0.2.9:1234", "10.0.0.1:80")),
        ),
        (with_tlv, "TCP4", Some(("192.0.2.9:1234", "10.0.0.1:80"))),
        (
            v2(0x21, 0x21, &inet6),
            "TCP6",
            Some(("[2001:db8::5]:4242", "[::1]:8000")),
        ),
        (v2(0x20, 0x00, b""), "LOCAL", None),
        (v2(0x20, 0x11, &[0; 12]), "LOCAL", None),
        (v2(0x21, 0x01, b""), "UNSPEC", None),
    ];
    for (header_bytes, protocol, addresses) in cases {
        let mut buf = header_bytes.clone();
        buf.extend_from_slice(b"GET / HTTP/1.1\r\n\r\n");
        let (header, len) = complete(&buf, Mode::Auto);
        assert_eq!(len, header_bytes.len(), "{protocol}");
        assert_eq!(header.protocol, protocol);
        assert_eq!(header.addresses, addresses.map(|(c, p)| (addr(c), addr(p))));
        assert_eq!(complete(&buf, Mode::V2), (header, len), "v2 only");
    }
}

#[test]
fn malformed_v2_headers_are_errors() {
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("version 1", v2(0x11, 0x11, &[0; 12])),
        ("command 2", v2(0x22, 0x11, &[0; 12])),
        ("UDP", v2(0x21, 0x12, &[0; 12])),
        ("unspecified transport", v2(0x21, 0x10, &[0; 12])),
        ("unix family", v2(0x21, 0x31, &[0; 216])),
        ("family 4", v2(0x21, 0x41, &[0; 12])),
        ("short IPv4 block", v2(0x21, 0x11, &[0; 11])),
        ("short IPv6 block", v2(0x21, 0x21, &[0; 35])),
    ];
    for (name, buf) in cases {
        let got = parse(&buf, Mode::Auto);
        assert!(matches!(got, Err(ProxyError::Header(_))), "{name}: {got:?}");
    }
}

#[test]
fn connections_without_a_header_are_plain_http() {
    let cases: &[(&[u8], Mode, Parsed)] = &[
        (b"GET / HTTP/1.1\r\n\r\n", Mode::Auto, Parsed::Absent),
        (b"G", Mode::Auto, Parsed::Absent),
        (b"P", Mode::Auto, Parsed::Partial),
        (b"PROXY", Mode::V1, Parsed::Partial),
        (b"POST / HTTP/1.1\r\n\r\n", Mode::Auto, Parsed::Absent),
        (b"PROXYX", Mode::Auto, Parsed::Absent),
        (b"\r\n\r\n", Mode::Auto, Parsed::Partial),
        (b"\r\n\r\n", Mode::V1, Parsed::Absent),
        (b"P", Mode::V2, Parsed::Absent),
        (
            b"PROXY TCP4 1.2.3.4 1.2.3.5 1 2\r\n",
            Mode::V2,
            Parsed::Absent,
        ),
        (
            b"PROXY TCP4 1.2.3.4 1.2.3.5 1 2\r\n",
            Mode::Off,
            Parsed::Absent,
        ),
        (b"", Mode::Auto, Parsed::Partial),
    ];
    for (buf, mode, want) in cases {
        assert_eq!(
            parse(buf, *mode),
            Ok(*want),
            "{:?} {mode:?}",
            String::from_utf8_lossy(buf)
        );
    }
    let v2_header = v2_inet([1, 2, 3, 4], [5, 6, 7, 8], (1, 2));
    assert_eq!(parse(&v2_header, Mode::V1), Ok(Parsed::Absent));
    assert_eq!(parse(&v2_header, Mode::Off), Ok(Parsed::Absent));
}

/// Every way a header can arrive in two reads: partial until the last byte of the
/// header, then the same result as in one piece.
#[test]
fn headers_split_across_reads_parse_once_complete() {
    let mut inputs = vec![
        b"PROXY TCP4 192.0.2.1 198.51.100.7 56324 443\r\n".to_vec(),
        v2_inet([192, 0, 2, 9], [10, 0, 0, 1], (1234, 80)),
        v2(0x20, 0x00, b""),
    ];
    for input in &mut inputs {
        let header_len = input.len();
        input.extend_from_slice(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        let whole = complete(input, Mode::Auto);
        assert_eq!(whole.1, header_len);
        for cut in 0..header_len {
            assert_eq!(
                parse(&input[..cut], Mode::Auto),
                Ok(Parsed::Partial),
                "cut at {cut} of {:?}",
                String::from_utf8_lossy(input)
            );
        }
        for cut in header_len..=input.len() {
            assert_eq!(complete(&input[..cut], Mode::Auto), whole, "cut at {cut}");
        }
    }
}

#[test]
fn modes_parse_gunicorns_spellings() {
    let cases = [
        ("off", Some(Mode::Off)),
        ("False", Some(Mode::Off)),
        ("0", Some(Mode::Off)),
        ("none", Some(Mode::Off)),
        ("v1", Some(Mode::V1)),
        ("V2", Some(Mode::V2)),
        (" auto ", Some(Mode::Auto)),
        ("true", Some(Mode::Auto)),
        ("1", Some(Mode::Auto)),
        ("v3", None),
        ("", None),
    ];
    for (text, want) in cases {
        assert_eq!(Mode::parse(text), want, "{text:?}");
    }
}
