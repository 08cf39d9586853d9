//! The gthread executor: `--threads` OS threads that run app calls. The event loop
//! checks a connection with its complete request out to the pool; the thread runs the
//! app, writes the response (the GIL released around every socket write and wait),
//! and hands the connection back through a channel, waking the loop.

use std::sync::atomic::{fence, AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};

use super::conn::Conn;
use super::h2sink::H2Sink;
use crate::http::body::Body;
use crate::http::request::Head;
use crate::wsgi::call::Outcome;
use crate::wsgi::environ::Peer;
use crate::wsgi::Bridge;

/// What an app thread writes a response to.
pub enum Carrier {
    /// An HTTP/1 connection, checked out of the event loop's table.
    Http1(Box<Conn>),
    /// One stream of an HTTP/2 connection, which stays in the table.
    H2(Box<H2Stream>),
    /// An HTTP/2 stream an asgi task finished, on the connection with this id
    /// ([`super::h2conn::H2Conn::id`]); never a job (the asgi worker has no pool).
    H2Ended(u64),
}

/// An HTTP/2 stream out on an app thread.
pub struct H2Stream {
    pub sink: H2Sink,
    /// The connection's peer.
    pub peer: Peer,
    /// The connection's id ([`super::h2conn::H2Conn::id`]).
    pub conn_id: u64,
}

impl Carrier {
    fn peer(&self) -> Peer {
        match self {
            Carrier::Http1(conn) => conn.peer,
            Carrier::H2(stream) => stream.peer,
            Carrier::H2Ended(_) => unreachable!("asgi streams never go to the pool"),
        }
    }

    fn sink(&mut self) -> &mut dyn crate::wsgi::call::Sink {
        match self {
            Carrier::Http1(conn) => &mut **conn,
            Carrier::H2(stream) => &mut stream.sink,
            Carrier::H2Ended(_) => unreachable!("asgi streams never go to the pool"),
        }
    }
}

/// A complete request, with the connection (or stream) it came on, for an app thread.
pub struct Job {
    pub index: usize,
    pub conn: Carrier,
    pub head: Box<Head>,
    pub body: Body,
    pub keep_alive: bool,
}

/// A finished request: the connection comes back to the event loop.
pub struct Done {
    pub index: usize,
    pub conn: Carrier,
    pub head: Box<Head>,
    pub outcome: Outcome,
}

pub struct Pool {
    jobs: Sender<Job>,
    done: Receiver<Done>,
    in_flight: usize,
    size: usize,
    /// Set by the loop when every finished job must wake it; otherwise only jobs whose
    /// connection closes or still has output queued do.
    wake_on_finish: Arc<AtomicBool>,
}

impl Pool {
    /// Starts `size` app threads. Idle threads wait on the job channel without the GIL.
    pub fn start(
        size: usize,
        bridge: Arc<Bridge>,
        waker: Arc<mio::Waker>,
    ) -> std::io::Result<Pool> {
        let (jobs, job_rx) = mpsc::channel::<Job>();
        let (done_tx, done) = mpsc::channel::<Done>();
        let job_rx = Arc::new(Mutex::new(job_rx));
        let wake_on_finish = Arc::new(AtomicBool::new(true));
        for n in 0..size {
            let back = Back {
                done: done_tx.clone(),
                waker: waker.clone(),
                wake_on_finish: wake_on_finish.clone(),
            };
            let (job_rx, bridge) = (job_rx.clone(), bridge.clone());
            std::thread::Builder::new()
                .name(format!("app-{n}"))
                .spawn(move || app_thread(&job_rx, &back, &bridge))?;
        }
        Ok(Pool {
            jobs,
            done,
            in_flight: 0,
            size,
            wake_on_finish,
        })
    }

    /// Whether a thread is free (or will be without a queue forming).
    pub fn has_room(&self) -> bool {
        self.in_flight < self.size
    }

    pub fn submit(&mut self, job: Job) {
        self.in_flight += 1;
        // The receiving threads live as long as the worker, so send cannot fail.
        let _ = self.jobs.send(job);
    }

    /// Whether every finished job must wake the loop. Setting it is followed by a full
    /// fence, and so is a thread's hand-back before it reads the flag: either the
    /// thread sees the flag, or the loop's next `finished()` sees the job.
    pub fn set_wake_on_finish(&self, on: bool) {
        self.wake_on_finish.store(on, Ordering::SeqCst);
        fence(Ordering::SeqCst);
    }

    /// Requests finished since the last call.
    pub fn finished(&mut self) -> Vec<Done> {
        let done: Vec<Done> = self.done.try_iter().collect();
        self.in_flight -= done.len();
        done
    }
}

/// How an app thread hands a connection back to the loop.
struct Back {
    done: Sender<Done>,
    waker: Arc<mio::Waker>,
    wake_on_finish: Arc<AtomicBool>,
}

impl Back {
    /// Returns the connection; false when the loop is gone.
    fn hand_back(&self, done: Done) -> bool {
        // An HTTP/2 stream's end always matters at once: its connection may dispatch
        // the next stream, or close.
        let urgent = match &done.conn {
            Carrier::Http1(conn) => !done.outcome.keep_alive || conn.has_output(),
            Carrier::H2(..) | Carrier::H2Ended(_) => true,
        };
        if self.done.send(done).is_err() {
            return false;
        }
        fence(Ordering::SeqCst);
        if urgent || self.wake_on_finish.load(Ordering::SeqCst) {
            let _ = self.waker.wake();
        }
        true
    }
}

fn app_thread(jobs: &Mutex<Receiver<Job>>, back: &Back, bridge: &Bridge) {
    pyo3::Python::attach(|py| loop {
        // A job already queued is taken without letting go of the GIL: a handoff to
        // another thread and back costs two context switches. Only an empty queue
        // (or a queue another thread is waiting on) makes this thread release it.
        let queued = jobs.try_lock().ok().and_then(|rx| rx.try_recv().ok());
        let job = match queued {
            Some(job) => job,
            None => {
                let next = py.detach(|| jobs.lock().ok().map(|rx| rx.recv()));
                match next {
                    Some(Ok(job)) => job,
                    _ => return,
                }
            }
        };
        let Job {
            index,
            mut conn,
            head,
            body,
            keep_alive,
        } = job;
        let peer = conn.peer();
        let outcome = bridge.call(&head, body, &peer, keep_alive, conn.sink());
        if !back.hand_back(Done {
            index,
            conn,
            head,
            outcome,
        }) {
            return;
        }
    })
}
