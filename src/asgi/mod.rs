//! The ASGI boundary and the `asgi` worker (`-k asgi`).
//!
//! # Design
//!
//! One thread, one event loop per worker. The worker's own mio loop
//! ([`crate::worker::event_loop`]) keeps everything it does for `sync` and `gthread` —
//! accepting, reading, the strict parser and its limits, proxy trust, keep-alive and
//! timeouts, retirement, the access log — and asyncio runs it: the loop's epoll
//! descriptor is registered with `loop.add_reader`, so whenever a socket event is
//! waiting asyncio calls [`Driver::turn`], which handles the batch without waiting. A
//! complete request is checked out of the connection table into an [`HttpCycle`] and
//! becomes an asyncio task running the app with `receive`/`send` bound to it; `send`
//! writes straight to the non-blocking socket and only makes the app wait (an asyncio
//! writer callback) when the client reads slower than the app produces. When the
//! response is complete the connection goes back to the table at once, so the next
//! request on it is served while the request's task may still run.
//!
//! Why not a second thread for the network side (as Granian runs tokio beside
//! Python): handing every request and response across threads costs two wake-ups per
//! request, which on a worker pinned to one core is most of the server's cost; here
//! the only crossing is a function call. Why not asyncio's own transports with a Rust
//! parser (as Uvicorn does with httptools): rustcorn's connection handling is the
//! product, and one implementation of it serves all three worker classes.
//!
//! HTTP/2 (TLS with ALPN `h2`) uses the same loop: the connection stays in the
//! event loop's table (`worker::h2conn`), and each complete stream becomes its own
//! task ([`H2Cycle`], started by [`Spawner::spawn_h2`]) whose `send()` calls h2 on this
//! thread; h2 then wakes the connection's waker, which makes the epoll descriptor
//! readable, and the next turn writes the frames and resolves the `send()`s that
//! waited for flow-control capacity (see `h2cycle`).
//!
//! The heartbeat is stamped by the turns and by a one-second tick on the asyncio
//! loop, so an app that blocks the loop with a synchronous call stops both and the
//! master aborts the worker after `--timeout`, as with a stuck sync worker.
//!
//! The Python half (the loop, lifespan, the request coroutine) is `runtime.py`.

mod cycle;
mod h2cycle;
mod h2spawn;
mod home;
mod request_hooks;
mod scope;
mod websocket;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use crate::config::{Config, WorkerClass};
use crate::http::body::Body;
use crate::http::request::Head;
use crate::http::websocket as ws;
use crate::sock::Listener;
use crate::worker::conn::Conn;
use crate::worker::event_loop::EventLoop;
use crate::worker::pool::Done;
use crate::wsgi::Bridge;
pub use cycle::HttpCycle;
pub use h2cycle::H2Cycle;
pub use home::{Held, Home};
use websocket::WsCycle;

/// Makes asyncio tasks of requests; owned by the worker's event loop.
pub struct Spawner {
    app: Py<PyAny>,
    consts: scope::ScopeConstants,
    /// The lifespan state: each request's scope gets a shallow copy.
    state: Py<PyDict>,
    /// `runtime.py`'s `run_app` and the exceptions that end an HTTP request because
    /// its client left.
    http_runner: Option<(Py<PyAny>, Py<PyAny>)>,
    run_websocket: Option<Py<PyAny>>,
    create_task: Option<Py<PyAny>>,
    /// Keyword arguments for `create_task` (asyncio.Task itself, given the loop).
    task_kwargs: Option<Py<PyDict>>,
    /// `--websocket-max-message-size`.
    max_message: u64,
    pub(crate) home: Rc<Home>,
}

impl Spawner {
    /// Starts the app's task for a complete request (an HTTP request, or a WebSocket
    /// handshake); the connection is the cycle's until the response is complete or
    /// the WebSocket closed.
    pub fn spawn(
        &self,
        index: usize,
        mut conn: Box<Conn>,
        head: Box<Head>,
        body: Body,
        keep_alive: bool,
    ) {
        let connection: Vec<&[u8]> = head.values("connection").collect();
        let upgrade = ws::is_upgrade(
            head.method(),
            head.minor_version,
            head.header("upgrade"),
            &connection,
        );
        Python::attach(|py| {
            let started = if upgrade {
                match ws::check_handshake(
                    head.header("sec-websocket-key"),
                    head.header("sec-websocket-version"),
                ) {
                    Ok(accept) => self.start_websocket(py, index, conn, head, accept),
                    Err(why) => {
                        // Not a valid handshake: a plain 400, the app is not called.
                        let page = crate::http::response::error_page(1, 400, "Bad Request", why);
                        conn.queue_output(&page);
                        let cycle =
                            HttpCycle::new(index, conn, head, body, false, self.home.clone());
                        Py::new(py, cycle)
                            .and_then(|c| c.call_method1(py, "refused", (400,)).map(|_| ()))
                    }
                }
            } else {
                self.start_http(py, index, conn, head, body, keep_alive)
            };
            if let Err(e) = started {
                tracing::error!(
                    "Cannot start the ASGI request: {}",
                    crate::wsgi::format_exception(py, &e)
                );
            }
        })
    }

    fn start_http(
        &self,
        py: Python<'_>,
        index: usize,
        conn: Box<Conn>,
        head: Box<Head>,
        body: Body,
        keep_alive: bool,
    ) -> PyResult<()> {
        let scope = scope::http(py, &self.consts, &head, &conn.peer, self.state.bind(py));
        let mut cycle = HttpCycle::new(index, conn, head, body, keep_alive, self.home.clone());
        if !cycle.pre_request(py) {
            return Ok(());
        }
        let cycle = Py::new(py, cycle)?;
        self.home
            .cycles
            .borrow_mut()
            .insert(index, Held::Http(cycle.clone_ref(py)));
        match scope {
            Ok(scope) => {
                let task = self.run_request(cycle.bind(py).as_any(), scope)?;
                cycle.borrow_mut(py).task = Some(task);
                Ok(())
            }
            Err(e) => {
                let text = crate::wsgi::format_exception(py, &e);
                cycle.call_method1(py, "app_failed", (text,)).map(|_| ())
            }
        }
    }

    fn start_websocket(
        &self,
        py: Python<'_>,
        index: usize,
        conn: Box<Conn>,
        head: Box<Head>,
        accept: String,
    ) -> PyResult<()> {
        let scope = scope::websocket(py, &self.consts, &head, &conn.peer, self.state.bind(py))?;
        let cycle = WsCycle::new(
            index,
            conn,
            head,
            accept,
            self.max_message,
            self.home.clone(),
        );
        let cycle = Py::new(py, cycle)?;
        self.home
            .cycles
            .borrow_mut()
            .insert(index, Held::Ws(cycle.clone_ref(py)));
        let Some(run_websocket) = &self.run_websocket else {
            return Err(not_started());
        };
        let args = PyTuple::new(
            py,
            [
                self.app.bind(py).clone(),
                scope.into_any(),
                cycle.into_bound(py).into_any(),
            ],
        )?;
        self.run(py, run_websocket, args).map(|_| ())
    }

    /// `create_task(runner(*args))`.
    /// Starts the task of one HTTP request (HTTP/1 or an HTTP/2 stream):
    /// `run_app(app, scope, receive, send, cycle, client_gone)`, where receive and
    /// send are the cycle's own methods (see `HttpCycle::asend`, `H2Cycle`).
    fn run_request(
        &self,
        cycle: &Bound<'_, PyAny>,
        scope: Bound<'_, PyDict>,
    ) -> PyResult<Py<PyAny>> {
        let py = cycle.py();
        let Some((run_app, client_gone)) = &self.http_runner else {
            return Err(not_started());
        };
        let args = PyTuple::new(
            py,
            [
                self.app.bind(py).clone(),
                scope.into_any(),
                cycle.getattr(intern!(py, "areceive"))?,
                cycle.getattr(intern!(py, "asend"))?,
                cycle.clone(),
                client_gone.bind(py).clone(),
            ],
        )?;
        self.run(py, run_app, args)
    }

    fn run(
        &self,
        py: Python<'_>,
        runner: &Py<PyAny>,
        args: Bound<'_, PyTuple>,
    ) -> PyResult<Py<PyAny>> {
        let Some(create_task) = &self.create_task else {
            return Err(not_started());
        };
        let coro = runner.call1(py, args)?;
        create_task.call(py, (coro,), self.task_kwargs.as_ref().map(|k| k.bind(py)))
    }

    /// A socket event for a connection a cycle holds: the HTTP cycle checks whether
    /// the client left; the WebSocket cycle reads its frames.
    pub fn on_event(&self, index: usize) {
        Python::attach(|py| {
            let held = match self.home.cycles.borrow().get(&index) {
                Some(Held::Http(c)) => Held::Http(c.clone_ref(py)),
                Some(Held::Ws(c)) => Held::Ws(c.clone_ref(py)),
                None => return,
            };
            match held {
                Held::Http(c) => {
                    if let Ok(mut c) = c.bind(py).try_borrow_mut() {
                        c.on_socket_event(py);
                    }
                }
                Held::Ws(c) => {
                    if let Ok(mut c) = c.bind(py).try_borrow_mut() {
                        c.on_readable(py);
                    }
                }
            }
        });
    }

    /// Connections whose responses are complete, added to `into` for the event loop
    /// to take back.
    pub fn finished(&self, into: &mut Vec<Done>) {
        into.append(&mut self.home.finished.borrow_mut());
    }
}

fn not_started() -> PyErr {
    pyo3::exceptions::PyRuntimeError::new_err("the asgi worker is not started")
}

/// `runtime.py`'s callbacks (see [`Driver::start`]): kick, on_gone, sent,
/// disconnected, h2_sent.
type Callbacks = (Py<PyAny>, Py<PyAny>, Py<PyAny>, Py<PyAny>, Py<PyAny>);

/// The worker's event loop as the asyncio side sees it.
#[pyclass(unsendable)]
pub struct Driver {
    lp: EventLoop<'static>,
    events: mio::Events,
    /// The asyncio future `serve` waits on: resolved when the worker is done.
    finished: Option<Py<PyAny>>,
}

#[pymethods]
impl Driver {
    /// The epoll descriptor asyncio watches.
    fn fd(&self) -> i32 {
        self.lp.poll_fd()
    }

    /// Connects the loop to asyncio: the future to resolve when the worker is done,
    /// how to run a request (`runners`: `run_app` and the exceptions that end an
    /// HTTP request because its client left, `run_websocket`), and `runtime.py`'s
    /// callbacks: `kick` (a finished response asks for a turn), `on_gone` (a client left), and the coroutines a `send()` or
    /// `receive()` that must wait returns (`sent`, `disconnected`, and `h2_sent` for an
    /// HTTP/2 stream's window).
    fn start(
        &mut self,
        event_loop: &Bound<'_, PyAny>,
        finished: Py<PyAny>,
        runners: (Py<PyAny>, Py<PyAny>, Py<PyAny>),
        callbacks: Callbacks,
    ) -> PyResult<()> {
        self.finished = Some(finished);
        let (run_app, http_gone, run_websocket) = runners;
        let (kick, on_gone, sent, disconnected, h2_sent) = callbacks;
        let spawner = self
            .lp
            .asgi
            .as_mut()
            .expect("an asgi worker's loop has a spawner");
        spawner.http_runner = Some((run_app, http_gone));
        spawner.run_websocket = Some(run_websocket);
        let py = event_loop.py();
        if event_loop.call_method0("get_task_factory")?.is_none() {
            let kwargs = PyDict::new(py);
            kwargs.set_item("loop", event_loop)?;
            kwargs.set_item("name", "rustcorn request")?;
            spawner.create_task = Some(py.import("asyncio")?.getattr("Task")?.unbind());
            spawner.task_kwargs = Some(kwargs.unbind());
        } else {
            spawner.create_task = Some(event_loop.getattr("create_task")?.unbind());
        }
        *spawner.home.kick.borrow_mut() = Some(kick);
        *spawner.home.on_gone.borrow_mut() = Some(on_gone);
        *spawner.home.sent.borrow_mut() = Some(sent);
        *spawner.home.disconnected.borrow_mut() = Some(disconnected);
        *spawner.home.h2_sent.borrow_mut() = Some(h2_sent);
        *spawner.home.event_loop.borrow_mut() = Some(event_loop.clone().unbind());
        Ok(())
    }

    /// Handles whatever is ready now (asyncio calls it when the epoll descriptor is
    /// readable, and after a kick); resolves `finished` when the worker is done.
    fn turn(&mut self, py: Python<'_>) -> PyResult<()> {
        crate::scoreboard::beat();
        self.lp
            .poll_events(&mut self.events, std::time::Duration::ZERO)?;
        if self.lp.turn(&self.events) {
            return self.finish(py);
        }
        if self.lp.wants_another_turn() {
            // Connections still queued on a listener (accepting stops at a complete
            // request): no new event would bring the loop back for them.
            self.kick(py)?;
        }
        Ok(())
    }

    /// Resolves the future `serve` waits on, once.
    fn finish(&self, py: Python<'_>) -> PyResult<()> {
        if let Some(finished) = &self.finished {
            let finished = finished.bind(py);
            if !finished.call_method0(intern!(py, "done"))?.is_truthy()? {
                finished.call_method1(intern!(py, "set_result"), (py.None(),))?;
            }
        }
        Ok(())
    }

    /// Asks asyncio for another turn soon.
    fn kick(&self, py: Python<'_>) -> PyResult<()> {
        let kick = self
            .lp
            .asgi
            .as_ref()
            .and_then(|a| a.home.kick.borrow().as_ref().map(|k| k.clone_ref(py)));
        if let Some(kick) = kick {
            kick.call0(py)?;
        }
        Ok(())
    }

    /// Connections cycles handed back: taken back now, and their next requests
    /// dispatched. True when a turn should follow: the worker has drained (the turn
    /// ends it), or connections wait to be accepted.
    pub fn take_back(&mut self) -> bool {
        self.lp.take_back() || self.lp.wants_another_turn()
    }

    /// Once a second: heartbeat, timeouts, the master's presence; resolves
    /// `finished` when the worker is done.
    fn tick(&mut self, py: Python<'_>) -> PyResult<()> {
        if self.lp.housekeeping() {
            return self.finish(py);
        }
        Ok(())
    }

    fn log_error(&self, message: &str) {
        tracing::error!("{message}");
    }
}

/// Runs an asgi worker until it is told to stop; returns the worker's exit status.
pub fn serve(
    config: &Config,
    bridge: Arc<Bridge>,
    listeners: &[Listener],
    signals: std::os::unix::net::UnixStream,
    master: nix::unistd::Pid,
) -> i32 {
    // The worker keeps its config to the end; the loop lives in a Python object.
    let config: &'static Config = Box::leak(Box::new(config.clone()));
    let mut lp = match EventLoop::new(config, bridge.clone(), listeners, signals, master) {
        Ok(lp) => lp,
        Err(e) => {
            tracing::error!("Worker cannot start its event loop: {e}");
            return crate::worker::WORKER_BOOT_ERROR;
        }
    };
    Python::attach(|py| {
        let run = || -> PyResult<Option<String>> {
            let state = PyDict::new(py);
            let home = Rc::new(Home {
                finished: RefCell::new(Vec::new()),
                kick: RefCell::new(None),
                on_gone: RefCell::new(None),
                event_loop: RefCell::new(None),
                driver: RefCell::new(None),
                cycles: RefCell::new(Default::default()),
                sendfile: config.sendfile,
                sent: RefCell::new(None),
                disconnected: RefCell::new(None),
                done: Py::new(py, cycle::Written)?,
                h2_cycles: RefCell::new(Default::default()),
                h2_sent: RefCell::new(None),
                timeout: config.timeout,
                next_serial: std::cell::Cell::new(0),
            });
            lp.asgi = Some(Spawner {
                app: bridge.app().clone_ref(py),
                consts: scope::ScopeConstants::new(py, &config.asgi.root_path)?,
                state: state.clone().unbind(),
                http_runner: None,
                run_websocket: None,
                create_task: None,
                task_kwargs: None,
                max_message: config.asgi.websocket_max_message_size,
                home: home.clone(),
            });
            let driver = Py::new(
                py,
                Driver {
                    lp,
                    events: mio::Events::with_capacity(1024),
                    finished: None,
                },
            )?;
            *home.driver.borrow_mut() = Some(driver.clone_ref(py));
            let runtime = runtime(py)?;
            let failure = runtime.getattr("serve")?.call1((
                driver,
                bridge.app().clone_ref(py),
                config.asgi.event_loop.name(),
                config.asgi.lifespan.name(),
                state,
                config.asgi.disconnect_grace_period,
            ))?;
            failure.extract()
        };
        match run() {
            Ok(None) => 0,
            Ok(Some(failure)) => {
                tracing::error!(
                    "ASGI lifespan startup failed; the worker stops:\n{}",
                    failure.trim_end()
                );
                crate::worker::WORKER_BOOT_ERROR
            }
            Err(e) => {
                tracing::error!("Worker failed: {}", crate::wsgi::format_exception(py, &e));
                1
            }
        }
    })
}

fn runtime(py: Python<'_>) -> PyResult<Bound<'_, PyModule>> {
    let code =
        std::ffi::CString::new(include_str!("runtime.py")).expect("runtime.py has no NUL bytes");
    PyModule::from_code(
        py,
        code.as_c_str(),
        c"rustcorn/asgi_runtime.py",
        c"_rustcorn_asgi",
    )
}

/// The app fits the worker class: a coroutine app (ASGI) needs `-k asgi`, and `-k asgi`
/// needs one. Checked when the app loads, so a mistake stops the start with one line
/// instead of answering every request with a 500.
pub fn check_app_fits(
    py: Python<'_>,
    app: &Bound<'_, PyAny>,
    class: WorkerClass,
) -> Result<(), String> {
    let code = std::ffi::CString::new(include_str!("app_kind.py")).expect("no NUL bytes");
    let is_asgi = PyModule::from_code(
        py,
        code.as_c_str(),
        c"rustcorn/app_kind.py",
        c"_rustcorn_app_kind",
    )
    .and_then(|m| m.getattr("is_asgi_app")?.call1((app,))?.is_truthy())
    .map_err(|e| e.to_string())?;
    match (class, is_asgi) {
        (WorkerClass::Asgi, false) => Err(
            "the app is not an ASGI app (not a coroutine function, nor an object with an async __call__); \
             a WSGI app runs with -k sync or -k gthread"
                .to_string(),
        ),
        (WorkerClass::Sync | WorkerClass::Gthread, true) => Err(format!(
            "the app is an ASGI app (its call is a coroutine function); run it with -k asgi, not -k {}",
            class.name()
        )),
        _ => Ok(()),
    }
}
