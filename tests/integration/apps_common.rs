//! The feature table both framework apps (tests/apps/flask_app.py and
//! tests/apps/djangoproj/) answer identically: GET, POST form, JSON,
//! multipart upload, cookies, redirect, streamed response.

use crate::client::{multipart, request, Conn, Framing, Response};
use crate::harness::Server;
use crate::json::Json;

/// Says what is wrong with a response, if anything.
type Check = Box<dyn Fn(&Response) -> Result<(), String>>;

/// One request and what its response must satisfy.
struct Case {
    name: &'static str,
    request: Vec<u8>,
    check: Check,
}

fn status_and_text(status: u16, text: String) -> Check {
    Box::new(move |r| {
        if r.status == status && r.text() == text {
            Ok(())
        } else {
            Err(format!(
                "want {status} {text:?}, got {} {:?}",
                r.status,
                r.text()
            ))
        }
    })
}

fn cases(index_text: &str) -> Vec<Case> {
    let form = "application/x-www-form-urlencoded";
    let upload: Vec<u8> = (0..=255u8).cycle().take(20_000).collect();
    let upload_sum: u32 = upload.iter().map(|&b| u32::from(b)).sum();
    let boundary = "rustcornTestBoundary7MA4YWxk";
    let upload_body = multipart(
        boundary,
        &[("note", "hi there")],
        ("file", "data.bin", &upload),
    );
    let upload_type = format!("multipart/form-data; boundary={boundary}");
    let close = ("Connection", "close");
    vec![
        Case {
            name: "GET with query",
            request: request("GET", "/?name=Ada", &[close], b""),
            check: status_and_text(200, index_text.to_string()),
        },
        Case {
            name: "POST form",
            request: request(
                "POST",
                "/form",
                &[("Content-Type", form), close],
                b"name=Ada+L&lang=rust%21",
            ),
            check: status_and_text(200, "form name=Ada L lang=rust!".into()),
        },
        Case {
            name: "POST JSON",
            request: request(
                "POST",
                "/json",
                &[("Content-Type", "application/json"), close],
                br#"{"a": 2, "b": 40}"#,
            ),
            check: Box::new(|r| {
                let doc = (r.status == 200).then(|| Json::parse(&r.text()));
                match doc {
                    Some(doc)
                        if doc.at("sum").as_i64() == Some(42)
                            && doc.at("echo").at("a").as_i64() == Some(2) =>
                    {
                        Ok(())
                    }
                    _ => Err(format!("got {} {:?}", r.status, r.text())),
                }
            }),
        },
        Case {
            name: "POST multipart upload",
            request: request(
                "POST",
                "/upload",
                &[("Content-Type", &upload_type), close],
                &upload_body,
            ),
            check: status_and_text(
                200,
                format!("upload data.bin size=20000 sum={upload_sum} note=hi there"),
            ),
        },
        Case {
            name: "cookie set",
            request: request("GET", "/cookie/set", &[close], b""),
            check: Box::new(|r| {
                let cookies = r.headers_named("set-cookie");
                if r.status == 200 && cookies.iter().any(|c| c.starts_with("flavor=oatmeal")) {
                    Ok(())
                } else {
                    Err(format!("got {} Set-Cookie {cookies:?}", r.status))
                }
            }),
        },
        Case {
            name: "cookie read",
            request: request(
                "GET",
                "/cookie/read",
                &[("Cookie", "other=1; flavor=oatmeal"), close],
                b"",
            ),
            check: status_and_text(200, "flavor=oatmeal".into()),
        },
        Case {
            name: "cookie absent",
            request: request("GET", "/cookie/read", &[close], b""),
            check: status_and_text(200, "flavor=missing".into()),
        },
        Case {
            name: "redirect",
            request: request("GET", "/redirect", &[close], b""),
            check: Box::new(|r| match r.header("location") {
                Some(location) if r.status == 302 && location.ends_with("/target") => Ok(()),
                location => Err(format!(
                    "want 302 to /target, got {} {location:?}",
                    r.status
                )),
            }),
        },
        Case {
            name: "redirect target",
            request: request("GET", "/target", &[close], b""),
            check: status_and_text(200, "redirect target".into()),
        },
        Case {
            name: "streamed response",
            request: request("GET", "/stream?n=20", &[close], b""),
            check: Box::new(|r| {
                let want: String = (0..20).map(|i| format!("line {i}\n")).collect();
                if r.status == 200
                    && r.framing == Framing::Chunked
                    && r.complete
                    && r.text() == want
                {
                    Ok(())
                } else {
                    Err(format!(
                        "want 20 lines, chunked; got {} {:?} complete={} {:?}",
                        r.status,
                        r.framing,
                        r.complete,
                        r.text()
                    ))
                }
            }),
        },
    ]
}

/// Runs every case against `server` (index page text `index_text` for
/// `GET /?name=Ada`) and fails listing every case that went wrong.
pub fn check_every_feature(server: &Server, index_text: &str) {
    let failures: Vec<String> = cases(index_text)
        .into_iter()
        .filter_map(|case| {
            let mut conn = Conn::open(server.port());
            conn.send(&case.request);
            let outcome = match conn.try_response(false) {
                Ok(r) => (case.check)(&r),
                Err(e) => Err(format!("no response: {e}")),
            };
            outcome.err().map(|e| format!("{}: {e}", case.name))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "failed cases:\n{}\nlog:\n{}",
        failures.join("\n"),
        server.log()
    );
}
