//! Black-box integration tests for rustcorn.
//!
//! Every test runs the real server — the binary (`CARGO_BIN_EXE_rustcorn`), or with
//! `RUSTCORN_TEST_SERVER` the `rustcorn` script of an installed wheel — on 127.0.0.1
//! port 0 with a fixture app from tests/apps/, and talks to it over real
//! sockets with raw bytes. Apps that need Flask or Django use the virtualenv
//! made by scripts/setup-test-env.sh (`$RUSTCORN_TEST_VENV`, default
//! `.venv-test`); without it those tests fail saying so.
//!
//! # Layout
//! - `harness`: start/stop the server, wait on its log (`capture`), `os` helpers
//! - `client`: raw HTTP/1.x client and response parser
//! - `json`: reads the JSON the fixture apps answer
//! - `http_basics`: keep-alive, pipelining, HTTP/1.0, HEAD, framing, 100-continue, 400s
//! - `wsgi_env`, `wsgi_input`: the environ and wsgi.input (PEP 3333), validator
//! - `faults`: misbehaving apps → 500 or a cut connection, worker survives
//! - `apps_common`, `apps_flask`, `apps_django`: real frameworks
//! - `cli`, `app_loading`: flags, usage errors, APP_MODULE forms and failures
//! - `sockets`: unix:, [v6]:, several -b, fd://
//! - `accept`: a busy worker still serves queued connections (no starvation)
//! - `closing`: no reset destroys an answer when the server closes; TCP_NODELAY on
//!   every accepted socket (own and inherited listeners)
//! - `arbiter`: stop signals, graceful stop, worker respawn
//! - `gthread`: `--threads` app threads beside the event loop, proved with
//!   tests/apps/blocking.py (barriers, parked calls)
//! - `timeouts`: `--timeout` aborts and replaces a stuck worker
//! - `logging`: `--error-logfile`, `--log-level`, `--access-logfile`, `-n`
//! - `access_log`: `--access-logformat` lines byte-identical to Gunicorn 27's
//! - `log_outputs`: syslog, statsd, `--capture-output`, `--log-config-json`
//! - `signals`: HUP reload, TTIN/TTOU worker count
//! - `config_file`: Gunicorn config files (tests/configs/ corpus), precedence with
//!   `$GUNICORN_CMD_ARGS` and flags, `--print-config`, `--check-config`
//! - `tls`: HTTPS (--certfile, client certificates, --ciphers), startup errors
//! - `http2`: HTTP/2 over TLS (ALPN) with gthread: curl, nghttp, httpx and raw `h2`
//!   clients; concurrency, flow control, the shared header policy, settings
//! - `http2_abuse`: hand-made floods (PING, SETTINGS, rapid reset, CONTINUATION,
//!   HPACK bomb, too many streams) end the connection, the worker serves on; large
//!   uploads at once and app faults stay within their stream
//! - `proxy`: trusted peers (`--forwarded-allow-ips`), secure-scheme and forwarder
//!   headers, the PROXY protocol v1/v2 (`--proxy-protocol`, `--proxy-allow-from`)
//! - `reload`: `--reload` (inotify and poll), extra files and globs, a SyntaxError
//!   served as a 500 page until fixed, the config-file spellings
//! - `hooks`: Gunicorn's server hooks from a config file, called in order with working
//!   objects; a raising hook; HUP re-reading the config file
//! - `nginx`: the real nginx with examples/nginx*.conf in front, TCP and unix socket
//! - `uwsgi`: `--protocol uwsgi` behind nginx's `uwsgi_pass` (examples/nginx-uwsgi.conf),
//!   TCP and unix socket; malformed and disallowed packets refused, worker serving on
//! - `large_bodies`: request bodies at and around the in-memory limit, whole, in
//!   pieces, pipelined behind, cut short; sync, gthread and asgi
//! - `strict_http`: a table of raw requests, valid (environ checked) and refused
//!   (status checked, same worker still serving), whole, in pieces, byte by byte
//! - `response_safety`: what the app's start_response may not put on the wire
//! - `ops`: HUP/TTIN/TTOU/--max-requests under load with zero failed requests,
//!   crashed workers replaced, process titles, WINCH (tests/apps/ops_app.py)
//! - `daemon`: -D and -p, WINCH, --user/--group, --umask, --reuse-port, the
//!   flags' usage errors
//! - `log_rotation`: USR1 and HUP reopen renamed log files
//! - `reexec`: USR2 hands the sockets to a new master, no request lost;
//!   `GUNICORN_FD`/`RUSTCORN_FD` on startup
//! - `systemd`: socket activation (systemd-socket-activate), sd_notify
//! - `preload`: `--preload` imports the app once in the master
//! - `retirement`: a request on a kept-alive connection just after HUP, TERM, TTOU,
//!   `--max-requests` or `--reload` is answered (`Connection: close`), sync and gthread
//! - `wheel`: each CPython 3.10–3.13 wheel (and the sdist) installed by pip in a fresh
//!   venv: the guide's app with 5 workers, titles, Flask in the venv, HUP, TERM, INT

mod capture;
mod client;
mod harness;
mod json;
mod os;

mod accept;
mod access_log;
mod app_loading;
mod apps_common;
mod apps_django;
mod apps_flask;
mod arbiter;
mod asgi;
mod asgi_frameworks;
mod asgi_pathsend;
mod asgi_websocket;
mod cli;
mod closing;
mod config_file;
mod control;
mod corpus;
mod daemon;
mod faults;
mod gthread;
mod hooks;
mod http2;
mod http2_abuse;
mod http2_asgi;
mod http2_cleartext;
mod http2_handoff;
mod http_basics;
mod large_bodies;
mod log_outputs;
mod log_rotation;
mod logging;
mod nginx;
mod ops;
mod paste;
mod preload;
mod proxy;
mod reexec;
mod reload;
mod response_safety;
mod retirement;
mod signals;
mod sockets;
mod strict_http;
mod systemd;
mod timeouts;
mod tls;
mod uwsgi;
mod wheel;
mod wsgi_env;
mod wsgi_input;
