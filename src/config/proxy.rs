//! Settings for running behind a proxy, Gunicorn's: which peers may set forwarding
//! headers (`--forwarded-allow-ips`), which headers say "this was https"
//! (`secure_scheme_headers`, config-file only in Gunicorn), which `_` headers a
//! trusted front end may pass (`--forwarder-headers`), and the PROXY protocol
//! (`--proxy-protocol`, `--proxy-allow-from`).

use std::net::IpAddr;

use clap::Args;

use super::ConfigError;
use crate::http::proxy_protocol::Mode;

/// The command-line flags, Gunicorn's spellings and defaults.
#[derive(Debug, Args)]
pub struct ProxyArgs {
    /// Front-end IP addresses or networks (comma separated, e.g.
    /// `10.0.0.1,192.168.0.0/16`) allowed to set secure-scheme and forwarder headers;
    /// `*` trusts every peer. Unix-socket peers are always trusted.
    #[arg(
        long = "forwarded-allow-ips",
        value_name = "STRING",
        env = "FORWARDED_ALLOW_IPS",
        default_value = "127.0.0.1,::1"
    )]
    pub forwarded_allow_ips: String,

    /// Headers with `_` in their name (upper case, comma separated) a trusted front
    /// end may pass into the environ; a `SCRIPT_NAME` header sets the mount point.
    #[arg(
        long = "forwarder-headers",
        value_name = "STRING",
        default_value = "SCRIPT_NAME,PATH_INFO"
    )]
    pub forwarder_headers: String,

    /// Accept a PROXY protocol header at the start of each connection: `off`, `v1`
    /// (text), `v2` (binary) or `auto` (either); the flag alone means `auto`.
    #[arg(
        long = "proxy-protocol",
        value_name = "MODE",
        num_args = 0..=1,
        default_value = "off",
        default_missing_value = "auto"
    )]
    pub proxy_protocol: String,

    /// Front-end IP addresses or networks (comma separated) allowed to send PROXY
    /// protocol headers; `*` allows every peer. Unix-socket peers are always allowed.
    #[arg(
        long = "proxy-allow-from",
        value_name = "STRING",
        default_value = "127.0.0.1,::1"
    )]
    pub proxy_allow_from: String,

    /// The protocol the listeners speak: `http`, or `uwsgi` (the binary protocol of
    /// nginx's `uwsgi_pass`).
    #[arg(long = "protocol", value_name = "STRING", default_value = "http")]
    pub protocol: String,

    /// Front-end IP addresses or networks (comma separated) allowed to send uwsgi
    /// packets; `*` allows every peer. Unix-socket peers are always allowed.
    #[arg(
        long = "uwsgi-allow-from",
        value_name = "STRING",
        default_value = "127.0.0.1,::1"
    )]
    pub uwsgi_allow_from: String,
}

/// The protocol every listener speaks (`--protocol`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Http,
    /// uWSGI packets in, HTTP/1.x responses out (see [`crate::http::uwsgi`]).
    Uwsgi,
}

/// The validated settings.
#[derive(Clone, Debug)]
pub struct ProxyConfig {
    /// Peers whose forwarding headers count (`forwarded_allow_ips`).
    pub forwarded_allow_ips: AllowList,
    /// (upper-case header name, value meaning https): Gunicorn's
    /// `secure_scheme_headers`, settable from the config file.
    pub secure_scheme_headers: Vec<(String, String)>,
    /// Upper-case header names (or `*`) a trusted peer may pass with `_` in them.
    pub forwarder_headers: Vec<String>,
    pub proxy_protocol: Mode,
    /// Peers that may send a PROXY header (`proxy_allow_ips`).
    pub proxy_allow_ips: AllowList,
    pub protocol: Protocol,
    /// Peers that may send uwsgi packets (`uwsgi_allow_ips`).
    pub uwsgi_allow_ips: AllowList,
}

/// Gunicorn's default `secure_scheme_headers`.
pub fn default_secure_scheme_headers() -> Vec<(String, String)> {
    [
        ("X-FORWARDED-PROTOCOL", "ssl"),
        ("X-FORWARDED-PROTO", "https"),
        ("X-FORWARDED-SSL", "on"),
    ]
    .iter()
    .map(|(name, value)| (name.to_string(), value.to_string()))
    .collect()
}

/// Validates the flags.
pub fn resolve(args: &ProxyArgs) -> Result<ProxyConfig, ConfigError> {
    let forwarded_allow_ips = AllowList::parse(&args.forwarded_allow_ips).map_err(|reason| {
        super::invalid("--forwarded-allow-ips", &args.forwarded_allow_ips, reason)
    })?;
    let proxy_allow_ips = AllowList::parse(&args.proxy_allow_from)
        .map_err(|reason| super::invalid("--proxy-allow-from", &args.proxy_allow_from, reason))?;
    let proxy_protocol = Mode::parse(&args.proxy_protocol).ok_or_else(|| {
        super::invalid(
            "--proxy-protocol",
            &args.proxy_protocol,
            "must be one of: off, v1, v2, auto",
        )
    })?;
    let uwsgi_allow_ips = AllowList::parse(&args.uwsgi_allow_from)
        .map_err(|reason| super::invalid("--uwsgi-allow-from", &args.uwsgi_allow_from, reason))?;
    let protocol = match args.protocol.as_str() {
        "http" => Protocol::Http,
        "uwsgi" => Protocol::Uwsgi,
        other => {
            return Err(super::invalid(
                "--protocol",
                other,
                "must be one of: http, uwsgi",
            ))
        }
    };
    Ok(ProxyConfig {
        forwarded_allow_ips,
        secure_scheme_headers: default_secure_scheme_headers(),
        forwarder_headers: split_list(&args.forwarder_headers)
            .map(str::to_ascii_uppercase)
            .collect(),
        proxy_protocol,
        proxy_allow_ips,
        protocol,
        uwsgi_allow_ips,
    })
}

/// Gunicorn's comma-separated lists: items trimmed, empty ones dropped.
fn split_list(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|v| !v.is_empty())
}

/// A set of IP addresses and networks, or everyone (`*`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AllowList {
    any: bool,
    networks: Vec<(IpAddr, u8)>,
}

impl AllowList {
    /// `127.0.0.1,::1`, `10.0.0.0/8`, `*`: what Python's `ipaddress.ip_network`
    /// accepts in prefix form, strictly (no host bits set past the prefix).
    pub fn parse(value: &str) -> Result<AllowList, String> {
        let mut list = AllowList::default();
        for item in split_list(value) {
            if item == "*" {
                list.any = true;
                continue;
            }
            list.networks.push(parse_network(item)?);
        }
        Ok(list)
    }

    /// Whether `ip` is in the list. An IPv4 client seen on a dual-stack socket
    /// (`::ffff:10.0.0.1`) counts as its IPv4 address.
    pub fn allows(&self, ip: IpAddr) -> bool {
        if self.any {
            return true;
        }
        let ip = ip.to_canonical();
        self.networks
            .iter()
            .any(|&(net, prefix)| same_prefix(ip, net, prefix))
    }
}

fn parse_network(item: &str) -> Result<(IpAddr, u8), String> {
    let (addr_text, prefix_text) = match item.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (item, None),
    };
    let addr: IpAddr = addr_text
        .parse()
        .map_err(|_| format!("'{item}' is not an IP address or network"))?;
    let bits = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix_text {
        None => bits,
        Some(p) => p
            .parse::<u8>()
            .ok()
            .filter(|&n| n <= bits && p.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| format!("'{item}': '{p}' is not a prefix length (0-{bits})"))?,
    };
    if mask(addr, prefix) != addr {
        return Err(format!("'{item}' has host bits set"));
    }
    Ok((addr, prefix))
}

/// `addr` with every bit past `prefix` cleared.
fn mask(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let m = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4((u32::from(a) & m).into())
        }
        IpAddr::V6(a) => {
            let m = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6((u128::from(a) & m).into())
        }
    }
}

/// Whether `ip` is in `net/prefix` (same family, same leading bits).
fn same_prefix(ip: IpAddr, net: IpAddr, prefix: u8) -> bool {
    ip.is_ipv4() == net.is_ipv4() && mask(ip, prefix) == mask(net, prefix)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn allow_lists_match_addresses_and_networks() {
        let cases: &[(&str, &str, bool)] = &[
            ("127.0.0.1,::1", "127.0.0.1", true),
            ("127.0.0.1,::1", "::1", true),
            ("127.0.0.1,::1", "::ffff:127.0.0.1", true),
            ("127.0.0.1,::1", "127.0.0.2", false),
            ("127.0.0.1,::1", "10.0.0.1", false),
            ("10.0.0.0/8", "10.255.3.4", true),
            ("10.0.0.0/8", "11.0.0.1", false),
            ("192.168.1.0/24, 172.16.0.0/12", "172.31.255.255", true),
            ("192.168.1.0/24, 172.16.0.0/12", "172.32.0.0", false),
            ("2001:db8::/32", "2001:db8:1::7", true),
            ("2001:db8::/32", "2001:db9::7", false),
            ("0.0.0.0/0", "8.8.8.8", true),
            ("0.0.0.0/0", "::1", false),
            ("::/0", "::1", true),
            ("*", "203.0.113.9", true),
            ("*", "2001:db8::1", true),
            ("", "127.0.0.1", false),
            ("10.0.0.1/32", "10.0.0.1", true),
        ];
        for (list, addr, want) in cases {
            let allow = AllowList::parse(list).unwrap();
            assert_eq!(allow.allows(ip(addr)), *want, "{addr} in {list:?}");
        }
    }

    fn flags(args: &[&str]) -> Result<ProxyConfig, String> {
        let mut argv = vec!["rustcorn"];
        argv.extend_from_slice(args);
        super::super::Config::from_args(argv, &Default::default())
            .map(|c| c.proxy)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn flags_take_gunicorns_spellings_and_defaults() {
        let defaults = flags(&["app"]).unwrap();
        assert_eq!(defaults.proxy_protocol, Mode::Off);
        assert!(defaults.proxy_allow_ips.allows(ip("127.0.0.1")));
        assert!(defaults.proxy_allow_ips.allows(ip("::1")));
        assert!(!defaults.proxy_allow_ips.allows(ip("127.0.0.2")));
        assert_eq!(defaults.forwarder_headers, ["SCRIPT_NAME", "PATH_INFO"]);
        assert_eq!(
            defaults.secure_scheme_headers,
            default_secure_scheme_headers()
        );
        let cases: &[(&[&str], Mode)] = &[
            (&["app", "--proxy-protocol"], Mode::Auto),
            (&["--proxy-protocol", "v1", "app"], Mode::V1),
            (&["--proxy-protocol=v2", "app"], Mode::V2),
            (&["--proxy-protocol=true", "app"], Mode::Auto),
            (&["--proxy-protocol=off", "app"], Mode::Off),
        ];
        for (args, mode) in cases {
            assert_eq!(flags(args).unwrap().proxy_protocol, *mode, "{args:?}");
        }
        let c = flags(&[
            "--forwarded-allow-ips=*",
            "--proxy-allow-from",
            "10.0.0.0/8",
            "--forwarder-headers",
            "script_name, REMOTE_USER",
            "app",
        ])
        .unwrap();
        assert!(c.forwarded_allow_ips.allows(ip("203.0.113.1")));
        assert!(c.proxy_allow_ips.allows(ip("10.1.2.3")));
        assert!(!c.proxy_allow_ips.allows(ip("127.0.0.1")));
        assert_eq!(c.forwarder_headers, ["SCRIPT_NAME", "REMOTE_USER"]);
    }

    #[test]
    fn uwsgi_flags_take_gunicorns_spellings_and_defaults() {
        let defaults = flags(&["app"]).unwrap();
        assert_eq!(defaults.protocol, Protocol::Http);
        assert!(defaults.uwsgi_allow_ips.allows(ip("127.0.0.1")));
        assert!(!defaults.uwsgi_allow_ips.allows(ip("10.0.0.1")));
        let c = flags(&[
            "--protocol",
            "uwsgi",
            "--uwsgi-allow-from=10.0.0.0/8",
            "app",
        ])
        .unwrap();
        assert_eq!(c.protocol, Protocol::Uwsgi);
        assert!(c.uwsgi_allow_ips.allows(ip("10.200.0.1")));
        assert!(!c.uwsgi_allow_ips.allows(ip("127.0.0.1")));
    }

    #[test]
    fn bad_flag_values_name_the_flag() {
        let cases: &[(&[&str], &str)] = &[
            (
                &["--proxy-protocol=v3", "app"],
                "invalid value 'v3' for '--proxy-protocol': must be one of: off, v1, v2, auto",
            ),
            (
                &["--forwarded-allow-ips", "10.0.0.1/8", "app"],
                "invalid value '10.0.0.1/8' for '--forwarded-allow-ips'",
            ),
            (
                &["--proxy-allow-from", "nginx", "app"],
                "invalid value 'nginx' for '--proxy-allow-from'",
            ),
            (
                &["--protocol", "fastcgi", "app"],
                "invalid value 'fastcgi' for '--protocol': must be one of: http, uwsgi",
            ),
            (
                &["--uwsgi-allow-from", "10.0.0.1/8", "app"],
                "invalid value '10.0.0.1/8' for '--uwsgi-allow-from'",
            ),
        ];
        for (args, want) in cases {
            let err = flags(args).unwrap_err();
            assert!(err.contains(want), "{args:?}: {err}");
        }
    }

    #[test]
    fn bad_allow_lists_say_which_item() {
        let cases: &[(&str, &str)] = &[
            ("127.0.0.1,localhost", "'localhost' is not an IP address"),
            ("10.0.0.1/8", "'10.0.0.1/8' has host bits set"),
            ("10.0.0.0/33", "'33' is not a prefix length (0-32)"),
            ("::/129", "'129' is not a prefix length (0-128)"),
            ("10.0.0.0/+8", "'+8' is not a prefix length"),
            ("10.0.0.0/", "'' is not a prefix length"),
            ("10.0.0.0/255.0.0.0", "is not a prefix length"),
        ];
        for (list, want) in cases {
            let err = AllowList::parse(list).unwrap_err();
            assert!(err.contains(want), "{list:?}: {err}");
        }
    }
}
