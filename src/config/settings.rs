//! The table of Gunicorn's settings: every setting Gunicorn 27 knows, declared once with
//! its name, its command-line flags, the kind of value it takes, Gunicorn's default (as
//! `gunicorn --print-config` shows it) and what rustcorn does with it.
//!
//! The config file, `$GUNICORN_CMD_ARGS`, `--print-config`, and the flags rustcorn
//! accepts for compatibility all read this table; the help text of the settings rustcorn
//! implements lives on their clap fields. A new setting is one line here plus its clap
//! field: its config-file name, precedence and `--print-config` line then come for free.

/// The type of value a setting takes, which decides how a config-file value becomes
/// command-line arguments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// An integer (`workers = 4`, or a string of digits).
    Int,
    /// A string (`None` leaves the setting at its default).
    Str,
    /// A string or an integer (`user = 1000`, `umask = 0o22`).
    Scalar,
    /// A string, or a boolean its validator gives a meaning (`http2_cleartext = True`).
    StrOrBool,
    /// A boolean whose flag turns it on (`--preload`).
    Flag,
    /// A boolean whose flag turns it off (`sendfile = False` is `--no-sendfile`).
    NegFlag,
    /// A list of strings, one flag per item (`bind = ["a", "b"]` is `-b a -b b`); a
    /// single string is a one-item list.
    List,
    /// A comma-separated list, given as one string or a list of strings.
    CommaList,
    /// A dictionary of strings; config file only.
    Dict,
    /// A dictionary of any JSON-able values (`logconfig_dict`), carried as JSON text
    /// beside its Python repr (for `--print-config`); config file only.
    JsonDict,
    /// A server hook: a callable (or `"module.function"`); config file only.
    Hook,
    /// `wsgi_app`: the APP_MODULE, when none is given on the command line.
    AppModule,
}

/// What rustcorn does with a setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Implemented: a clap field declares its flag (or, for a file-only setting, it is
    /// read from the config file by name).
    Implemented,
    /// A server hook rustcorn recognises but never calls, for this reason: defining it
    /// is warned about. (Hooks it calls are [`Status::Implemented`].)
    ServerHook(&'static str),
    /// Accepted and ignored with a warning, because ignoring it cannot break serving.
    Ignored(&'static str),
    /// Accepted and refused with this reason when set to anything but its default,
    /// because running without it would not do what the user asked.
    Refused(&'static str),
}

/// One Gunicorn setting.
#[derive(Clone, Copy, Debug)]
pub struct Setting {
    /// The config-file name (`worker_class`).
    pub name: &'static str,
    /// Gunicorn's flags, comma-separated (`-k, --worker-class`); empty for file-only ones.
    pub flags: &'static str,
    pub kind: Kind,
    /// Gunicorn's default as `--print-config` shows it.
    pub default: &'static str,
    pub status: Status,
}

impl Setting {
    /// The long flag without its dashes (`worker-class`).
    pub fn long(&self) -> Option<&'static str> {
        self.flags.split(", ").find_map(|f| f.strip_prefix("--"))
    }

    /// The one-letter flag (`k`).
    pub fn short(&self) -> Option<char> {
        self.flags
            .split(", ")
            .find_map(|f| f.strip_prefix('-').filter(|s| s.len() == 1))
            .and_then(|s| s.chars().next())
    }
}

/// The setting called `name`.
pub fn lookup(name: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.name == name)
}

/// The setting whose long flag is `long` (with or without its dashes).
pub fn by_flag(long: &str) -> Option<&'static Setting> {
    let long = long.trim_start_matches('-');
    SETTINGS.iter().find(|s| s.long() == Some(long))
}

/// The Markdown table of every setting and what rustcorn does with it
/// (docs/settings.md; a unit test keeps that file equal to this).
pub fn markdown_table() -> String {
    let mut out =
        String::from("| setting | flags | Gunicorn default | in rustcorn |\n|---|---|---|---|\n");
    for s in SETTINGS {
        let status = match s.status {
            Status::Implemented => "implemented".to_string(),
            Status::ServerHook(why) => format!("recognised, never called (warning): {why}"),
            Status::Ignored(why) => format!("accepted, warning: {why}"),
            Status::Refused(why) => format!("error unless left at the default: {why}"),
        };
        let flags = match s.flags {
            "" => "(file only)".to_string(),
            flags => format!("`{flags}`"),
        };
        let default = s.default.replace('|', "\\|");
        out.push_str(&format!(
            "| `{}` | {flags} | `{default}` | {status} |\n",
            s.name
        ));
    }
    out
}

const fn setting(
    name: &'static str,
    flags: &'static str,
    kind: Kind,
    default: &'static str,
    status: Status,
) -> Setting {
    Setting {
        name,
        flags,
        kind,
        default,
        status,
    }
}

const NO_DIRTY: &str = "dirty arbiters are not supported by rustcorn";

use Kind::*;
use Status::{Ignored, Implemented, Refused, ServerHook};

/// Every setting of Gunicorn 27, in Gunicorn's order. One line each, so adding or
/// changing a setting is a one-line change.
#[rustfmt::skip]
pub static SETTINGS: &[Setting] = &[
    setting("config", "-c, --config", Str, "./gunicorn.conf.py", Implemented),
    setting("wsgi_app", "", AppModule, "None", Implemented),
    setting("bind", "-b, --bind", List, "['127.0.0.1:8000']", Implemented),
    setting("backlog", "--backlog", Int, "2048", Implemented),
    setting("workers", "-w, --workers", Int, "1", Implemented),
    setting("worker_class", "-k, --worker-class", Str, "sync", Implemented),
    setting("threads", "--threads", Int, "1", Implemented),
    setting("worker_connections", "--worker-connections", Int, "1000", Implemented),
    setting("max_requests", "--max-requests", Int, "0", Implemented),
    setting("max_requests_jitter", "--max-requests-jitter", Int, "0", Implemented),
    setting("timeout", "-t, --timeout", Int, "30", Implemented),
    setting("graceful_timeout", "--graceful-timeout", Int, "30", Implemented),
    setting("keepalive", "--keep-alive", Int, "2", Implemented),
    setting("limit_request_line", "--limit-request-line", Int, "4094", Implemented),
    setting("limit_request_fields", "--limit-request-fields", Int, "100", Implemented),
    setting("limit_request_field_size", "--limit-request-field_size", Int, "8190", Implemented),
    // rustcorn's own: Gunicorn has no bound on the body (413 past it).
    setting("limit_request_body", "--limit-request-body", Int, "0", Implemented),
    setting("reload", "--reload", Flag, "False", Implemented),
    setting("reload_engine", "--reload-engine", Str, "auto", Implemented),
    setting("reload_extra_files", "--reload-extra-file", List, "[]", Implemented),
    setting("spew", "--spew", Flag, "False", Ignored("rustcorn has no Python line tracer")),
    setting("check_config", "--check-config", Flag, "False", Implemented),
    setting("print_config", "--print-config", Flag, "False", Implemented),
    setting("preload_app", "--preload", Flag, "False", Implemented),
    setting("sendfile", "--no-sendfile", NegFlag, "None", Implemented),
    setting("reuse_port", "--reuse-port", Flag, "False", Implemented),
    setting("chdir", "--chdir", Str, ".", Implemented),
    setting("daemon", "-D, --daemon", Flag, "False", Implemented),
    setting("raw_env", "-e, --env", List, "[]", Implemented),
    setting("pidfile", "-p, --pid", Str, "None", Implemented),
    setting("worker_tmp_dir", "--worker-tmp-dir", Str, "None", Implemented),
    setting("user", "-u, --user", Scalar, "0", Implemented),
    setting("group", "-g, --group", Scalar, "0", Implemented),
    setting("umask", "-m, --umask", Scalar, "0", Implemented),
    setting("initgroups", "--initgroups", Flag, "False", Implemented),
    setting("tmp_upload_dir", "", Str, "None", Ignored("large request bodies go to an unlinked file in the system temporary directory")),
    setting("secure_scheme_headers", "", Dict, "{'X-FORWARDED-PROTOCOL': 'ssl', 'X-FORWARDED-PROTO': 'https', 'X-FORWARDED-SSL': 'on'}", Implemented),
    setting("forwarded_allow_ips", "--forwarded-allow-ips", CommaList, "['127.0.0.1', '::1']", Implemented),
    setting("accesslog", "--access-logfile", Str, "None", Implemented),
    setting("disable_redirect_access_to_syslog", "--disable-redirect-access-to-syslog", Flag, "False", Implemented),
    setting("access_log_format", "--access-logformat", Str, "%(h)s %(l)s %(u)s %(t)s \"%(r)s\" %(s)s %(b)s \"%(f)s\" \"%(a)s\"", Implemented),
    setting("errorlog", "--error-logfile, --log-file", Str, "-", Implemented),
    setting("loglevel", "--log-level", Str, "info", Implemented),
    setting("capture_output", "--capture-output", Flag, "False", Implemented),
    setting("logger_class", "--logger-class", Str, "gunicorn.glogging.Logger", Refused("rustcorn's logger is built in; a Python logger class cannot be used")),
    setting("logconfig", "--log-config", Str, "None", Implemented),
    setting("logconfig_dict", "", JsonDict, "{}", Implemented),
    setting("logconfig_json", "--log-config-json", Str, "None", Implemented),
    setting("syslog_addr", "--log-syslog-to", Str, "udp://localhost:514", Implemented),
    setting("syslog", "--log-syslog", Flag, "False", Implemented),
    setting("syslog_prefix", "--log-syslog-prefix", Str, "None", Implemented),
    setting("syslog_facility", "--log-syslog-facility", Str, "user", Implemented),
    setting("enable_stdio_inheritance", "-R, --enable-stdio-inheritance", Flag, "False", Implemented),
    setting("statsd_host", "--statsd-host", Str, "None", Implemented),
    setting("dogstatsd_tags", "--dogstatsd-tags", Str, "", Implemented),
    setting("statsd_prefix", "--statsd-prefix", Str, "", Implemented),
    setting("enable_backlog_metric", "--enable-backlog-metric", Flag, "False", Implemented),
    setting("proc_name", "-n, --name", Str, "None", Implemented),
    setting("default_proc_name", "", Str, "rustcorn", Ignored("internal Gunicorn setting; use proc_name")),
    setting("pythonpath", "--pythonpath", Str, "None", Implemented),
    setting("paste", "--paste, --paster", Str, "None", Implemented),
    setting("on_starting", "", Hook, "<OnStarting.on_starting()>", Implemented),
    setting("on_reload", "", Hook, "<OnReload.on_reload()>", Implemented),
    setting("when_ready", "", Hook, "<WhenReady.when_ready()>", Implemented),
    setting("pre_fork", "", Hook, "<Prefork.pre_fork()>", Implemented),
    setting("post_fork", "", Hook, "<Postfork.post_fork()>", Implemented),
    setting("post_worker_init", "", Hook, "<PostWorkerInit.post_worker_init()>", Implemented),
    setting("worker_int", "", Hook, "<WorkerInt.worker_int()>", Implemented),
    setting("worker_abort", "", Hook, "<WorkerAbort.worker_abort()>", Implemented),
    setting("pre_exec", "", Hook, "<PreExec.pre_exec()>", Implemented),
    setting("pre_request", "", Hook, "<PreRequest.pre_request()>", Implemented),
    setting("post_request", "", Hook, "<PostRequest.post_request()>", Implemented),
    setting("child_exit", "", Hook, "<ChildExit.child_exit()>", Implemented),
    setting("worker_exit", "", Hook, "<WorkerExit.worker_exit()>", Implemented),
    setting("nworkers_changed", "", Hook, "<NumWorkersChanged.nworkers_changed()>", Implemented),
    setting("on_exit", "", Hook, "<OnExit.on_exit()>", Implemented),
    setting("ssl_context", "", Hook, "<NewSSLContext.ssl_context()>", ServerHook("TLS contexts are rustls configurations built from the SSL flags, not Python objects")),
    setting("proxy_protocol", "--proxy-protocol", Str, "off", Implemented),
    setting("proxy_allow_ips", "--proxy-allow-from", CommaList, "['127.0.0.1', '::1']", Implemented),
    setting("protocol", "--protocol", Str, "http", Implemented),
    setting("uwsgi_allow_ips", "--uwsgi-allow-from", CommaList, "['127.0.0.1', '::1']", Implemented),
    setting("keyfile", "--keyfile", Str, "None", Implemented),
    setting("certfile", "--certfile", Str, "None", Implemented),
    setting("ssl_version", "--ssl-version", Scalar, "2", Implemented),
    setting("cert_reqs", "--cert-reqs", Scalar, "0", Implemented),
    setting("ca_certs", "--ca-certs", Str, "None", Implemented),
    setting("suppress_ragged_eofs", "--suppress-ragged-eofs", Flag, "True", Implemented),
    setting("do_handshake_on_connect", "--do-handshake-on-connect", Flag, "False", Implemented),
    setting("ciphers", "--ciphers", Str, "None", Implemented),
    setting("http_protocols", "--http-protocols", CommaList, "['h1']", Implemented),
    setting("http2_cleartext", "--http2-cleartext", StrOrBool, "off", Implemented),
    setting("http2_max_concurrent_streams", "--http2-max-concurrent-streams", Int, "100", Implemented),
    setting("http2_initial_window_size", "--http2-initial-window-size", Int, "65535", Implemented),
    setting("http2_max_frame_size", "--http2-max-frame-size", Int, "16384", Implemented),
    setting("http2_max_header_list_size", "--http2-max-header-list-size", Int, "65536", Implemented),
    setting("raw_paste_global_conf", "--paste-global", List, "[]", Implemented),
    setting("permit_obsolete_folding", "--permit-obsolete-folding", Flag, "False", Implemented),
    setting("strip_header_spaces", "--strip-header-spaces", Flag, "False", Implemented),
    setting("permit_unconventional_http_method", "--permit-unconventional-http-method", Flag, "False", Implemented),
    setting("permit_unconventional_http_version", "--permit-unconventional-http-version", Flag, "False", Implemented),
    setting("casefold_http_method", "--casefold-http-method", Flag, "False", Implemented),
    setting("forwarder_headers", "--forwarder-headers", CommaList, "['SCRIPT_NAME', 'PATH_INFO']", Implemented),
    setting("header_map", "--header-map", Str, "drop", Implemented),
    setting("asgi_loop", "--asgi-loop", Str, "auto", Implemented),
    setting("asgi_lifespan", "--asgi-lifespan", Str, "auto", Implemented),
    setting("asgi_disconnect_grace_period", "--asgi-disconnect-grace-period", Int, "3", Implemented),
    setting("websocket_max_message_size", "--websocket-max-message-size", Int, "16777216", Implemented),
    setting("http_parser", "--http-parser", Str, "auto", Ignored("rustcorn always uses its own HTTP parser")),
    setting("root_path", "--root-path", Str, "", Implemented),
    setting("dirty_apps", "--dirty-app", List, "[]", Refused(NO_DIRTY)),
    setting("dirty_workers", "--dirty-workers", Int, "0", Refused(NO_DIRTY)),
    setting("dirty_timeout", "--dirty-timeout", Int, "300", Ignored(NO_DIRTY)),
    setting("dirty_threads", "--dirty-threads", Int, "1", Ignored(NO_DIRTY)),
    setting("dirty_graceful_timeout", "--dirty-graceful-timeout", Int, "30", Ignored(NO_DIRTY)),
    setting("on_dirty_starting", "", Hook, "<OnDirtyStarting.on_dirty_starting()>", ServerHook(NO_DIRTY)),
    setting("dirty_post_fork", "", Hook, "<DirtyPostFork.dirty_post_fork()>", ServerHook(NO_DIRTY)),
    setting("dirty_worker_init", "", Hook, "<DirtyWorkerInit.dirty_worker_init()>", ServerHook(NO_DIRTY)),
    setting("dirty_worker_exit", "", Hook, "<DirtyWorkerExit.dirty_worker_exit()>", ServerHook(NO_DIRTY)),
    setting("control_socket", "--control-socket", Str, "$XDG_RUNTIME_DIR/gunicorn.ctl or $HOME/.gunicorn/gunicorn.ctl", Implemented),
    setting("control_socket_mode", "--control-socket-mode", Scalar, "384", Implemented),
    setting("control_socket_disable", "--no-control-socket", Flag, "False", Implemented),
];
