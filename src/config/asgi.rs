//! `-k asgi`, Gunicorn's settings for it: which asyncio loop (`--asgi-loop`), whether
//! the lifespan protocol runs (`--asgi-lifespan`), and the mount point (`--root-path`).
//! The worker itself is [`crate::asgi`].

use clap::Args;

use super::ConfigError;

/// The command-line flags, Gunicorn's spellings and defaults.
#[derive(Debug, Args)]
pub struct AsgiArgs {
    /// The asyncio event loop of `-k asgi`: `auto` (uvloop when it is installed, else
    /// asyncio), `asyncio` or `uvloop`.
    #[arg(long = "asgi-loop", value_name = "STRING", default_value = "auto")]
    pub asgi_loop: String,

    /// The ASGI lifespan protocol: `auto` (run it; an app that does not support it is
    /// served anyway), `on` (a failure stops the server) or `off`.
    #[arg(long = "asgi-lifespan", value_name = "STRING", default_value = "auto")]
    pub asgi_lifespan: String,

    /// The ASGI `root_path`: the path the app is mounted at behind a proxy.
    #[arg(long = "root-path", value_name = "STRING", default_value = "")]
    pub root_path: String,

    /// The largest WebSocket message (and frame) a client may send, in bytes; larger
    /// ones close the connection with 1009.
    #[arg(long = "websocket-max-message-size", value_name = "INT", default_value_t = 16 * 1024 * 1024)]
    pub websocket_max_message_size: u64,

    /// Seconds an ASGI app may go on after its HTTP client disconnected (it sees
    /// `http.disconnect`) before its task is cancelled.
    #[arg(
        long = "asgi-disconnect-grace-period",
        value_name = "INT",
        default_value_t = 3
    )]
    pub asgi_disconnect_grace_period: u64,
}

/// Which event loop runs the app.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Loop {
    Auto,
    Asyncio,
    Uvloop,
}

impl Loop {
    /// The name the worker's Python side takes.
    pub fn name(self) -> &'static str {
        match self {
            Loop::Auto => "auto",
            Loop::Asyncio => "asyncio",
            Loop::Uvloop => "uvloop",
        }
    }
}

/// Whether, and how strictly, the lifespan protocol runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lifespan {
    Auto,
    On,
    Off,
}

impl Lifespan {
    /// The name the worker's Python side takes.
    pub fn name(self) -> &'static str {
        match self {
            Lifespan::Auto => "auto",
            Lifespan::On => "on",
            Lifespan::Off => "off",
        }
    }
}

/// The validated settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AsgiConfig {
    pub event_loop: Loop,
    pub lifespan: Lifespan,
    pub root_path: String,
    pub websocket_max_message_size: u64,
    pub disconnect_grace_period: u64,
}

impl Default for AsgiConfig {
    fn default() -> Self {
        AsgiConfig {
            event_loop: Loop::Auto,
            lifespan: Lifespan::Auto,
            root_path: String::new(),
            websocket_max_message_size: 16 * 1024 * 1024,
            disconnect_grace_period: 3,
        }
    }
}

/// Validates the flags.
pub fn resolve(args: &AsgiArgs) -> Result<AsgiConfig, ConfigError> {
    let event_loop = match args.asgi_loop.as_str() {
        "auto" => Loop::Auto,
        "asyncio" => Loop::Asyncio,
        "uvloop" => Loop::Uvloop,
        other => {
            return Err(invalid(
                "--asgi-loop",
                other,
                "expected auto, asyncio or uvloop",
            ))
        }
    };
    let lifespan = match args.asgi_lifespan.as_str() {
        "auto" => Lifespan::Auto,
        "on" => Lifespan::On,
        "off" => Lifespan::Off,
        other => {
            return Err(invalid(
                "--asgi-lifespan",
                other,
                "expected auto, on or off",
            ))
        }
    };
    let root_path = args.root_path.trim_end_matches('/').to_string();
    if !root_path.is_empty() && !root_path.starts_with('/') {
        return Err(invalid("--root-path", &args.root_path, "must start with /"));
    }
    if args.websocket_max_message_size == 0 {
        return Err(invalid(
            "--websocket-max-message-size",
            "0",
            "must be at least 1",
        ));
    }
    Ok(AsgiConfig {
        event_loop,
        lifespan,
        root_path,
        websocket_max_message_size: args.websocket_max_message_size,
        disconnect_grace_period: args.asgi_disconnect_grace_period,
    })
}

fn invalid(flag: &'static str, value: &str, reason: &str) -> ConfigError {
    ConfigError::Invalid {
        flag,
        value: value.to_string(),
        reason: reason.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(event_loop: &str, lifespan: &str, root: &str) -> AsgiArgs {
        AsgiArgs {
            asgi_loop: event_loop.into(),
            asgi_lifespan: lifespan.into(),
            root_path: root.into(),
            websocket_max_message_size: 1 << 24,
            asgi_disconnect_grace_period: 3,
        }
    }

    #[test]
    fn gunicorns_values_are_accepted() {
        let c = resolve(&args("uvloop", "off", "/api/")).unwrap();
        assert_eq!((c.event_loop, c.lifespan), (Loop::Uvloop, Lifespan::Off));
        assert_eq!(c.root_path, "/api");
        assert_eq!(
            resolve(&args("auto", "auto", "")).unwrap(),
            AsgiConfig::default()
        );
    }

    #[test]
    fn bad_values_name_the_flag() {
        for (a, flag) in [
            (args("tokio", "auto", ""), "--asgi-loop"),
            (args("auto", "yes", ""), "--asgi-lifespan"),
            (args("auto", "auto", "api"), "--root-path"),
        ] {
            let err = resolve(&a).unwrap_err().to_string();
            assert!(err.contains(flag), "{err}");
        }
    }
}
