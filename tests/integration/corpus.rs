//! Gunicorn 27.0.1's whole request corpus (tests/requests/{valid,invalid}: .http
//! requests with .py expectations), fetched by the test setup
//! (scripts/fetch-gunicorn-corpus.sh) and turned into JSON by tests/corpus/expect.py
//! with the gunicorn package itself. Every file is sent to the real server — whole,
//! in three pieces and byte by byte — under the settings its expectation sets; a valid
//! file's requests must reach the app as Gunicorn parses them, an invalid one must be
//! refused with the status that Gunicorn's error maps to. A case that differs must be
//! in [`KNOWN_DIFFERENCES`] (each with its reason, also in the README), and a listed
//! case that stops differing fails the test too, so the list stays true.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::TcpStream;
use std::process::Command;

use crate::client::{read_response, Response};
use crate::harness::{repo_root, venv_dir, Server, ServerBuilder, IO_TIMEOUT};
use crate::json::Json;

/// Cases where rustcorn answers otherwise than Gunicorn's expectation, and why (the
/// README's strictness section lists them too).
const KNOWN_DIFFERENCES: &[(&str, &str)] = &[
    (
        "rfc9112_target_authority_connect_01.http",
        "CONNECT example.com:443: Gunicorn's URI splitter reads `example.com` as a scheme and \
         gives PATH_INFO `443`; rustcorn keeps the authority-form target whole as PATH_INFO",
    ),
    (
        "099.http",
        "its Content-Length (17914) is larger than the body the file holds (8599 bytes): \
     Gunicorn's parser test takes the body cut by the end of its mock stream, while over \
     a socket the request is incomplete, and a client that stops sending there gets 400",
    ),
];

/// How a request file is delivered.
#[derive(Clone, Copy, Debug)]
enum Delivery {
    Whole,
    ThreePieces,
    ByteByByte,
}

/// Gunicorn's settings in the corpus, as rustcorn flags.
fn flags_for(settings: &Json) -> Vec<String> {
    let mut flags = Vec::new();
    for (name, value) in settings.members() {
        let flag = format!("--{}", name.replace('_', "-"));
        let flag = match name.as_str() {
            "limit_request_field_size" => "--limit-request-field_size".to_string(),
            _ => flag,
        };
        match value {
            Json::Bool(true) => flags.push(flag),
            Json::Num(n) => flags.extend([flag, format!("{n}")]),
            Json::Str(s) => flags.extend([flag, s.clone()]),
            Json::Arr(items) => {
                let list: Vec<&str> = items.iter().filter_map(Json::as_str).collect();
                flags.extend([flag, list.join(",")]);
            }
            other => panic!("setting {name} = {other:?} has no flag mapping"),
        }
    }
    flags
}

/// The status rustcorn answers for each of Gunicorn's parser errors; `None`: the
/// connection closes without an answer (nothing complete was received, or a PROXY
/// header was refused before any HTTP).
fn status_for(error: &str) -> Option<u16> {
    match error {
        "LimitRequestLine" => Some(414),
        "LimitRequestHeaders" => Some(431),
        "NoMoreData" | "InvalidProxyLine" => None,
        _ => Some(400),
    }
}

/// Written here, not taken from the server's `percent_decode`: the expectation must
/// not come from the code it checks.
fn percent_decoded(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// Sends `data` as `delivery` says; reads responses until `want` arrived or the
/// connection closed.
fn exchange(
    port: u16,
    data: &[u8],
    delivery: Delivery,
    want: usize,
    half_close: bool,
) -> (Vec<Response>, bool) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_nodelay(true).unwrap();
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let sent = match delivery {
        Delivery::Whole => stream.write_all(data),
        Delivery::ThreePieces => {
            let (a, b) = (data.len() / 3, 2 * data.len() / 3);
            [&data[..a], &data[a..b], &data[b..]]
                .iter()
                .try_for_each(|p| stream.write_all(p))
        }
        Delivery::ByteByByte => data.chunks(1).try_for_each(|b| stream.write_all(b)),
    };
    // A refused request may close the connection while the rest is still being sent.
    let _ = sent;
    if half_close {
        let _ = stream.shutdown(std::net::Shutdown::Write);
    }
    let mut reader = std::io::BufReader::new(stream);
    let mut responses = Vec::new();
    while responses.len() < want {
        match read_response(&mut reader, false) {
            Ok(r) => responses.push(r),
            Err(_) => return (responses, true),
        }
    }
    (responses, false)
}

/// The environ keys a request's headers become (Gunicorn joins repeated ones with ",").
fn expected_environ(headers: &Json, dangerous_map: bool) -> BTreeMap<String, String> {
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    for pair in headers.as_array().unwrap() {
        let pair = pair.as_array().unwrap();
        let (name, value) = (pair[0].as_str().unwrap(), pair[1].as_str().unwrap());
        if name.contains('_') && !dangerous_map {
            continue; // dropped, as Gunicorn's environ drops it (--header-map drop)
        }
        let key = match name.to_ascii_uppercase().as_str() {
            "CONTENT-TYPE" => "CONTENT_TYPE".to_string(),
            "CONTENT-LENGTH" => "CONTENT_LENGTH".to_string(),
            other => format!("HTTP_{}", other.replace('-', "_")),
        };
        env.entry(key)
            .and_modify(|v| *v = format!("{v},{value}"))
            .or_insert_with(|| value.to_string());
    }
    env
}

/// What differs between the app's view of one request and Gunicorn's expectation.
fn compare(expected: &Json, got: &Response, dangerous_map: bool) -> Vec<String> {
    let mut problems = Vec::new();
    if got.status != 200 {
        return vec![format!("status {} ({})", got.status, got.text())];
    }
    let doc = Json::parse(&got.text());
    let version = expected.at("version").as_array().unwrap();
    let protocol = format!(
        "HTTP/{}.{}",
        version[0].as_i64().unwrap(),
        version[1].as_i64().unwrap()
    );
    let checks = [
        ("REQUEST_METHOD", expected.str_at("method").to_string()),
        ("QUERY_STRING", expected.str_at("query").to_string()),
        ("SERVER_PROTOCOL", protocol),
        ("body", expected.str_at("body").to_string()),
    ];
    for (key, want) in checks {
        let have = doc.get(key).and_then(Json::as_str).unwrap_or("<missing>");
        if have != want {
            problems.push(format!("{key}: {have:?}, Gunicorn {want:?}"));
        }
    }
    let raw_path = expected.str_at("path");
    let have_raw_uri = doc.get("RAW_URI").and_then(Json::as_str).unwrap_or("");
    if !have_raw_uri.contains(raw_path) {
        problems.push(format!(
            "RAW_URI {have_raw_uri:?} lacks Gunicorn's path {raw_path:?}"
        ));
    }
    // PATH_INFO: the path percent-decoded, one char per byte (PEP 3333).
    let want_path: String = percent_decoded(raw_path)
        .iter()
        .map(|&b| b as char)
        .collect();
    let have_path = doc
        .get("PATH_INFO")
        .and_then(Json::as_str)
        .unwrap_or("<missing>");
    if have_path != want_path {
        problems.push(format!("PATH_INFO {have_path:?}, Gunicorn {want_path:?}"));
    }
    let want_env = expected_environ(expected.at("headers"), dangerous_map);
    let mut have_env: BTreeMap<String, String> = doc
        .members()
        .iter()
        .filter(|(k, _)| k.starts_with("HTTP_") || k == "CONTENT_TYPE" || k == "CONTENT_LENGTH")
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
        .collect();
    // rustcorn reads a chunked body whole before calling the app, so its environ also
    // states the decoded length (CONTENT_LENGTH); Gunicorn's leaves it out. Listed in the
    // README's strictness section; any other header difference fails.
    let chunked = want_env
        .get("HTTP_TRANSFER_ENCODING")
        .is_some_and(|te| te.contains("chunked"));
    if chunked && !want_env.contains_key("CONTENT_LENGTH") {
        let body_len = (expected.str_at("body").len() / 2).to_string();
        if have_env.get("CONTENT_LENGTH") == Some(&body_len) {
            have_env.remove("CONTENT_LENGTH");
        }
    }
    if have_env != want_env {
        problems.push(format!("headers {have_env:?}, Gunicorn {want_env:?}"));
    }
    problems
}

/// One case under one delivery: None when it went as Gunicorn expects.
fn replay(port: u16, case: &Json, settings: &Json, delivery: Delivery) -> Option<String> {
    let data = hex(case.str_at("data"));
    let dangerous = settings.get("header_map").and_then(Json::as_str) == Some("dangerous");
    if case.str_at("kind") == "valid" {
        let expected = case.at("requests").as_array().unwrap();
        // Half-closed after the bytes: the server answers what is complete, then closes.
        let (responses, closed) = exchange(port, &data, delivery, expected.len(), true);
        if responses.len() < expected.len() {
            return Some(format!(
                "{} of {} responses (closed: {closed}): {responses:?}",
                responses.len(),
                expected.len()
            ));
        }
        let problems: Vec<String> = expected
            .iter()
            .zip(&responses)
            .flat_map(|(e, r)| compare(e, r, dangerous))
            .collect();
        return (!problems.is_empty()).then(|| problems.join("; "));
    }
    let error = case.str_at("error");
    let (responses, closed) = exchange(port, &data, delivery, usize::MAX, true);
    let last = responses.last().map(|r| r.status);
    let refused = match status_for(error) {
        Some(status) => last == Some(status),
        None => responses.iter().all(|r| r.status == 200) || last.is_some_and(|s| s >= 400),
    };
    (!(refused && closed)).then(|| {
        format!(
            "{error}: statuses {:?}, closed {closed}",
            responses.iter().map(|r| r.status).collect::<Vec<_>>()
        )
    })
}

#[test]
fn gunicorns_request_corpus_is_read_as_gunicorn_reads_it() {
    let corpus = repo_root().join(".cache/gunicorn-27.0.1/tests/requests");
    assert!(
        corpus.join("valid").is_dir() && corpus.join("invalid").is_dir(),
        "{} is missing: scripts/fetch-gunicorn-corpus.sh (run by the test setup) fetches it",
        corpus.display()
    );
    let out = Command::new(venv_dir().join("bin/python"))
        .arg(repo_root().join("tests/corpus/expect.py"))
        .arg(&corpus)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "expect.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cases: Vec<Json> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(Json::parse)
        .collect();
    let valid = cases.iter().filter(|c| c.str_at("kind") == "valid").count();
    assert!(
        valid >= 60 && cases.len() - valid >= 80,
        "{valid} valid, {} invalid",
        cases.len() - valid
    );

    // One server per distinct set of settings.
    let mut groups: BTreeMap<String, Vec<&Json>> = BTreeMap::new();
    for case in &cases {
        groups
            .entry(format!("{:?}", case.at("settings")))
            .or_default()
            .push(case);
    }
    let mut differences: BTreeMap<String, String> = BTreeMap::new();
    for group in groups.values() {
        let settings = group[0].at("settings");
        let flags = flags_for(settings);
        let mut args: Vec<&str> = vec!["-b", "127.0.0.1:0", "--chdir", "tests/apps"];
        args.extend(flags.iter().map(String::as_str));
        args.push("corpus_echo:application");
        let server: Server = ServerBuilder::new(&args).start();
        for case in group {
            for delivery in [Delivery::Whole, Delivery::ThreePieces, Delivery::ByteByByte] {
                if let Some(problem) = replay(server.port(), case, settings, delivery) {
                    differences
                        .entry(case.str_at("name").to_string())
                        .or_insert_with(|| {
                            format!("{} {delivery:?} {flags:?}: {problem}", case.str_at("kind"))
                        });
                }
            }
        }
    }
    let known: BTreeMap<&str, &str> = KNOWN_DIFFERENCES.iter().copied().collect();
    let unlisted: Vec<String> = differences
        .iter()
        .filter(|(name, _)| !known.contains_key(name.as_str()))
        .map(|(name, what)| format!("{name}: {what}"))
        .collect();
    let stale: Vec<&str> = known
        .keys()
        .filter(|name| !differences.contains_key(**name))
        .copied()
        .collect();
    assert!(
        unlisted.is_empty() && stale.is_empty(),
        "{} cases differ from Gunicorn's expectation without a reason listed:\n{}\n\nlisted but no longer different: {stale:?}",
        unlisted.len(),
        unlisted.join("\n")
    );
}
