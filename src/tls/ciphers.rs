//! `--ciphers`: an OpenSSL cipher list (what Gunicorn hands to `SSLContext.set_ciphers`)
//! mapped onto the suites rustls implements.
//!
//! The list grammar is OpenSSL's: elements separated by `:` (or `,` / spaces); an
//! element is a cipher name or alias, or several joined with `+` (all must match);
//! a `!` prefix removes for good, `-` removes, `+` moves to the end, `@…` (security
//! level, strength sort) is accepted and has nothing to do here. As with OpenSSL, the
//! list picks TLS 1.2 suites only; TLS 1.3 suites are always on.
//!
//! A name rustls cannot do (`AES128-SHA`, `DHE-RSA-AES256-GCM-SHA384`, a typo) is an
//! error naming it rather than a silently weaker or different server; aliases that
//! match nothing rustls has (`DHE`, `3DES`, `aNULL`…) are fine, as in OpenSSL.

use rustls::crypto::ring::cipher_suite as cs;
use rustls::SupportedCipherSuite;

/// A TLS 1.2 suite rustls offers, by its OpenSSL name, with the OpenSSL aliases that
/// select it.
struct Suite {
    name: &'static str,
    suite: SupportedCipherSuite,
    tags: &'static [&'static str],
}

/// Aliases every suite rustls offers belongs to: all are ECDHE key exchange, AEAD,
/// TLS 1.2, HIGH strength, and in OpenSSL's DEFAULT.
const COMMON_TAGS: &[&str] = &[
    "ALL", "DEFAULT", "HIGH", "ECDH", "ECDHE", "EECDH", "kECDHE", "kEECDH", "AEAD", "TLSv1.2",
];

fn suites() -> [Suite; 6] {
    [
        Suite {
            name: "ECDHE-ECDSA-AES256-GCM-SHA384",
            suite: cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            tags: &["aECDSA", "ECDSA", "AES", "AESGCM", "AES256"],
        },
        Suite {
            name: "ECDHE-RSA-AES256-GCM-SHA384",
            suite: cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
            tags: &["aRSA", "AES", "AESGCM", "AES256"],
        },
        Suite {
            name: "ECDHE-ECDSA-CHACHA20-POLY1305",
            suite: cs::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
            tags: &["aECDSA", "ECDSA", "CHACHA20"],
        },
        Suite {
            name: "ECDHE-RSA-CHACHA20-POLY1305",
            suite: cs::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
            tags: &["aRSA", "CHACHA20"],
        },
        Suite {
            name: "ECDHE-ECDSA-AES128-GCM-SHA256",
            suite: cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            tags: &["aECDSA", "ECDSA", "AES", "AESGCM", "AES128"],
        },
        Suite {
            name: "ECDHE-RSA-AES128-GCM-SHA256",
            suite: cs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
            tags: &["aRSA", "AES", "AESGCM", "AES128"],
        },
    ]
}

/// TLS 1.3 suites, always offered (OpenSSL configures them apart from the cipher list;
/// naming them in the list is accepted).
pub fn tls13() -> [SupportedCipherSuite; 3] {
    [
        cs::TLS13_AES_256_GCM_SHA384,
        cs::TLS13_AES_128_GCM_SHA256,
        cs::TLS13_CHACHA20_POLY1305_SHA256,
    ]
}

const TLS13_NAMES: &[&str] = &[
    "TLS_AES_256_GCM_SHA384",
    "TLS_AES_128_GCM_SHA256",
    "TLS_CHACHA20_POLY1305_SHA256",
];

/// OpenSSL aliases that select none of the suites rustls offers (weak, legacy or
/// non-ECDHE families). They may appear anywhere; they simply add nothing.
const EMPTY_ALIASES: &[&str] = &[
    "COMPLEMENTOFDEFAULT",
    "COMPLEMENTOFALL",
    "MEDIUM",
    "LOW",
    "EXPORT",
    "EXP",
    "NULL",
    "eNULL",
    "aNULL",
    "RSA",
    "kRSA",
    "DH",
    "DHE",
    "EDH",
    "kDHE",
    "kEDH",
    "ADH",
    "AECDH",
    "kDHr",
    "kDHd",
    "kECDHr",
    "kECDHe",
    "aDH",
    "aDSS",
    "DSS",
    "PSK",
    "kPSK",
    "aPSK",
    "ECDHEPSK",
    "DHEPSK",
    "RSAPSK",
    "SRP",
    "kSRP",
    "aSRP",
    "3DES",
    "DES",
    "RC4",
    "RC2",
    "IDEA",
    "SEED",
    "CAMELLIA",
    "CAMELLIA128",
    "CAMELLIA256",
    "ARIA",
    "ARIA128",
    "ARIA256",
    "ARIAGCM",
    "AESCCM",
    "AESCCM8",
    "MD5",
    "SHA1",
    "SHA",
    "SHA256",
    "SHA384",
    "TLSv1",
    "TLSv1.0",
    "SSLv3",
    "GOST94",
    "GOST89MAC",
    "kGOST",
    "aGOST",
    "SUITEB128",
    "SUITEB128ONLY",
    "SUITEB192",
];

/// Whether `term` (one part of a `+`-joined element) selects `suite`; `None` when rustls
/// knows no cipher or alias of that name.
fn term_matches(term: &str, suite: &Suite) -> Option<bool> {
    if term == suite.name || COMMON_TAGS.contains(&term) || suite.tags.contains(&term) {
        return Some(true);
    }
    let known = suites()
        .iter()
        .any(|s| s.name == term || s.tags.contains(&term))
        || EMPTY_ALIASES.contains(&term)
        || TLS13_NAMES.contains(&term);
    known.then_some(false)
}

/// The TLS 1.2 suites an OpenSSL cipher list selects, in its order of preference.
/// `Err` names the element rustls cannot do.
pub fn select(list: &str) -> Result<Vec<SupportedCipherSuite>, String> {
    let table = suites();
    let mut chosen: Vec<usize> = Vec::new();
    let mut banned: Vec<usize> = Vec::new();
    let elements = list
        .split([':', ',', ' '])
        .map(str::trim)
        .filter(|e| !e.is_empty());
    for element in elements {
        if element.starts_with('@') {
            continue;
        }
        let (op, name) = match element.as_bytes()[0] {
            b'!' | b'-' | b'+' => (element.as_bytes()[0], &element[1..]),
            _ => (b'=', element),
        };
        let mut matching = Vec::new();
        for (i, suite) in table.iter().enumerate() {
            let mut all = true;
            for term in name.split('+') {
                match term_matches(term, suite) {
                    Some(m) => all &= m,
                    // Removing something rustls never offers is harmless.
                    None if op == b'!' || op == b'-' => all = false,
                    None => return Err(unknown(term)),
                }
            }
            if all {
                matching.push(i);
            }
        }
        match op {
            b'!' => {
                chosen.retain(|i| !matching.contains(i));
                banned.extend(&matching);
            }
            b'-' => chosen.retain(|i| !matching.contains(i)),
            b'+' => {
                let moved: Vec<usize> = chosen
                    .iter()
                    .copied()
                    .filter(|i| matching.contains(i))
                    .collect();
                chosen.retain(|i| !matching.contains(i));
                chosen.extend(moved);
            }
            _ => {
                for i in matching {
                    if !chosen.contains(&i) && !banned.contains(&i) {
                        chosen.push(i);
                    }
                }
            }
        }
    }
    if chosen.is_empty() {
        return Err(format!(
            "selects no TLS 1.2 cipher suite rustls offers (it offers {})",
            offered()
        ));
    }
    Ok(chosen.into_iter().map(|i| table[i].suite).collect())
}

fn unknown(term: &str) -> String {
    format!(
        "'{term}' is not a cipher or cipher alias rustls can do; rustcorn offers {} \
         (TLS 1.3 suites are always on)",
        offered()
    )
}

fn offered() -> String {
    suites().map(|s| s.name).join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &str) -> Vec<String> {
        select(list)
            .unwrap_or_else(|e| panic!("{list}: {e}"))
            .iter()
            .map(|s| format!("{:?}", s.suite()))
            .collect()
    }

    #[test]
    fn python_and_gunicorn_default_lists_are_accepted() {
        let lists = [
            // Python 3.10+ (`ssl._DEFAULT_CIPHERS`), what Gunicorn uses when --ciphers is unset.
            "@SECLEVEL=2:ECDH+AESGCM:ECDH+CHACHA20:ECDH+AES:DHE+AES:!aNULL:!eNULL:!aDSS:!SHA1:!AESCCM",
            // Python 3.7–3.9.
            "ECDH+AESGCM:ECDH+CHACHA20:DH+AESGCM:DH+CHACHA20:ECDH+AES256:DH+AES256:ECDH+AES128:\
             DH+AES:ECDH+HIGH:DH+HIGH:RSA+AESGCM:RSA+AES:RSA+HIGH:!aNULL:!eNULL:!MD5:!3DES",
            "DEFAULT",
            "HIGH:!aNULL:!MD5",
        ];
        for list in lists {
            assert_eq!(names(list).len(), 6, "{list}");
        }
        // ECDH+AESGCM first, then the CHACHA20 suites, as OpenSSL orders them.
        let python = names(lists[0]);
        assert!(python[..4].iter().all(|n| n.contains("GCM")), "{python:?}");
        assert!(
            python[4..].iter().all(|n| n.contains("CHACHA20")),
            "{python:?}"
        );
    }

    #[test]
    fn lists_select_and_order_like_openssl() {
        let cases: &[(&str, &[&str])] = &[
            (
                "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384",
                &[
                    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
                    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
                ],
            ),
            (
                "ECDHE+CHACHA20:!ECDSA",
                &["TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"],
            ),
            (
                "aRSA+AESGCM:-AES128:ECDHE-RSA-AES128-GCM-SHA256",
                &[
                    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
                    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
                ],
            ),
            (
                "aRSA+AESGCM:+AES256",
                &[
                    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
                    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
                ],
            ),
        ];
        for (list, want) in cases {
            assert_eq!(names(list), *want, "{list}");
        }
    }

    #[test]
    fn names_rustls_cannot_do_are_refused_by_name() {
        for (list, named) in [
            ("AES128-SHA", "AES128-SHA"),
            (
                "ECDHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384",
                "DHE-RSA",
            ),
            ("ECDHE-RSA-AES256-GCM-SHA385", "SHA385"),
        ] {
            let err = select(list).unwrap_err();
            assert!(err.contains(named), "{list}: {err}");
        }
        assert!(select("3DES:RC4").unwrap_err().contains("selects no"));
        assert!(select("ALL:!ECDHE").unwrap_err().contains("selects no"));
    }
}
