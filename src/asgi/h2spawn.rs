//! The spawner's HTTP/2 side: a complete stream becomes an [`H2Cycle`] task, and the
//! connection's turns and its close reach the cycles running on it.

use pyo3::prelude::*;

use super::h2cycle::{H2Cycle, H2Start};
use super::{scope, Spawner};

impl Spawner {
    /// Starts the app's task for a complete HTTP/2 stream of the connection in slot
    /// `index` (whose id is `conn_id`); `waker` gives that connection a turn.
    pub fn spawn_h2(
        &self,
        index: usize,
        conn_id: u64,
        peer: crate::wsgi::environ::Peer,
        ready: crate::worker::h2conn::ReadyStream,
        waker: std::task::Waker,
    ) {
        Python::attach(|py| {
            if let Err(e) = self.start_h2(py, index, conn_id, peer, ready, waker) {
                tracing::error!(
                    "Cannot start the ASGI request: {}",
                    crate::wsgi::format_exception(py, &e)
                );
            }
        })
    }

    fn start_h2(
        &self,
        py: Python<'_>,
        index: usize,
        conn_id: u64,
        peer: crate::wsgi::environ::Peer,
        ready: crate::worker::h2conn::ReadyStream,
        waker: std::task::Waker,
    ) -> PyResult<()> {
        let scope = scope::http(py, &self.consts, &ready.head, &peer, self.state.bind(py));
        let serial = self.home.next_serial.get();
        self.home.next_serial.set(serial + 1);
        let start = H2Start {
            index,
            conn_id,
            serial,
            respond: ready.respond,
            waker,
        };
        let cycle = Py::new(
            py,
            H2Cycle::new(start, ready.head, ready.body, self.home.clone()),
        )?;
        self.home
            .h2_cycles
            .borrow_mut()
            .entry(index)
            .or_default()
            .push((serial, cycle.clone_ref(py)));
        if !cycle.borrow_mut(py).pre_request(py) {
            return Ok(());
        }
        let scope = match scope {
            Ok(scope) => scope,
            Err(e) => {
                let text = crate::wsgi::format_exception(py, &e);
                return cycle.call_method1(py, "app_failed", (text,)).map(|_| ());
            }
        };
        let task = self.run_request(cycle.bind(py).as_any(), scope)?;
        cycle.borrow_mut(py).task = Some(task);
        Ok(())
    }

    /// A turn of the HTTP/2 connection in slot `index`: its running streams see
    /// resets and capacity.
    pub fn h2_poll(&self, index: usize) {
        if !self.home.h2_cycles.borrow().contains_key(&index) {
            return;
        }
        Python::attach(|py| {
            for cycle in self.home.h2_cycles_of(py, index) {
                if let Ok(mut c) = cycle.bind(py).try_borrow_mut() {
                    c.poll(py);
                }
            }
        })
    }

    /// The HTTP/2 connection in slot `index` is gone: its running streams' clients too.
    pub fn h2_closed(&self, index: usize) {
        if !self.home.h2_cycles.borrow().contains_key(&index) {
            return;
        }
        Python::attach(|py| {
            let cycles = self.home.h2_cycles_of(py, index);
            self.home.h2_cycles.borrow_mut().remove(&index);
            for cycle in cycles {
                if let Ok(mut c) = cycle.bind(py).try_borrow_mut() {
                    c.client_left(py);
                }
            }
        })
    }
}
