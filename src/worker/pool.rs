//! The gthread executor: `--threads` OS threads that run app calls. The event loop
//! checks a connection with its complete request out to the pool; the thread runs the
//! app, writes the response (the GIL released around every socket write and wait),
//! and hands the connection back through a channel, waking the loop only when it
//! needs to know at once. An HTTP/2 stream goes out alone (its connection stays in
//! the loop); its thread writes the stream's end itself when it can ([`H2Stream`]).
//!
//! The job queue wakes exactly one parked thread per job, the one that went idle
//! last (its caches are the warmest), and none when every thread is busy: a
//! `Mutex<Receiver>` shared by the threads instead cost each job a second thread's
//! wake-up (the next idle thread taking the mutex to wait on the channel). Jobs the
//! loop queues while it handles a batch of events wake their threads when the batch
//! ends ([`Pool::submit`]), so a woken thread does not preempt the loop mid-batch.

use std::collections::VecDeque;
use std::sync::atomic::{fence, AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::thread::Thread;

use super::conn::Conn;
use super::h2conn::Wire;
use super::h2sink::H2Sink;
use crate::http::body::Body;
use crate::http::request::Head;
use crate::wsgi::call::Outcome;
use crate::wsgi::environ::Peer;
use crate::wsgi::Bridge;

/// What an app thread writes a response to.
// The stream is not boxed: the box was allocated by the loop and freed by an app
// thread, so neither thread's malloc cache ever served it (~500 instructions per
// stream); moving the larger job in and out of the queue costs far less.
#[allow(clippy::large_enum_variant)]
pub enum Carrier {
    /// An HTTP/1 connection, checked out of the event loop's table.
    Http1(Box<Conn>),
    /// One stream of an HTTP/2 connection, which stays in the table.
    H2(H2Stream),
}

/// What comes back to the loop with a finished request.
pub enum Returned {
    /// The HTTP/1 connection, to go back into the table.
    Http1(Box<Conn>),
    /// An HTTP/2 stream whose response is done (an app thread's, or an asgi task's),
    /// on the connection with this id ([`super::h2conn::H2Conn::id`]).
    H2Ended(u64),
    /// An HTTP/2 stream that was its connection's only one out: its app thread writes
    /// its end itself ([`Wire::push_out`]), or wakes the connection if it cannot, so
    /// the loop needs no turn for it unless the connection wants one.
    H2Written(u64),
}

/// An HTTP/2 stream out on an app thread.
pub struct H2Stream {
    pub sink: H2Sink,
    /// The connection's peer.
    pub peer: Peer,
    /// The connection's id ([`super::h2conn::H2Conn::id`]).
    pub conn_id: u64,
    /// The connection's h2 state and socket, to write the stream's end.
    pub wire: Weak<Wire>,
}

impl H2Stream {
    /// After the response: lets go of the stream's h2 handles quietly (dropping the
    /// last one wakes the connection) and hands the stream back. When it was the
    /// connection's only one out, returns the connection, whose end the thread is
    /// then to write itself ([`push_end`]); otherwise the loop's turn, woken by the
    /// hand-back, gathers the ends of the streams still out. The hand-back comes
    /// first so that the loop has the stream back before the client, answered, sends
    /// its next request: taken back later, the stream would still count against the
    /// connection's share of threads when that request arrives. `Err` when the loop
    /// is gone.
    fn finish(
        self,
        back: &Back,
        index: usize,
        head: Box<Head>,
        outcome: Outcome,
    ) -> Result<Option<Arc<Wire>>, ()> {
        let conn_id = self.conn_id;
        let wire = self.wire.upgrade();
        super::h2conn::quietly(|| drop(self.sink));
        let last = wire.as_ref().is_none_or(|w| w.ended_last());
        let done = Done {
            index,
            conn: if last {
                Returned::H2Written(conn_id)
            } else {
                Returned::H2Ended(conn_id)
            },
            head,
            outcome,
        };
        if !back.send(done, !last, wire.as_deref()) {
            return Err(());
        }
        Ok(wire.filter(|_| last))
    }
}

/// Without the GIL: writes what h2 queued for a finished stream's end
/// ([`Wire::push_out`]), or gives the connection a turn on the loop if it cannot.
fn push_end(wire: &Wire) {
    if !wire.push_out() {
        wire.wake_loop();
    }
}

impl Carrier {
    fn peer(&self) -> Peer {
        match self {
            Carrier::Http1(conn) => conn.peer,
            Carrier::H2(stream) => stream.peer,
        }
    }

    fn sink(&mut self) -> &mut dyn crate::wsgi::call::Sink {
        match self {
            Carrier::Http1(conn) => &mut **conn,
            Carrier::H2(stream) => &mut stream.sink,
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

/// A finished request: the connection (or word of the stream) comes back to the
/// event loop.
pub struct Done {
    pub index: usize,
    pub conn: Returned,
    pub head: Box<Head>,
    pub outcome: Outcome,
}

/// Jobs waiting for a thread, and the threads waiting for a job.
#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    /// Parked threads by number, the last to go idle at the end.
    idle: Vec<usize>,
    /// The pool is gone: threads end.
    closed: bool,
}

/// The queue and the threads' handles (to unpark them).
struct Shared {
    queue: Mutex<Queue>,
    threads: Vec<Thread>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Jobs queued during one batch of events before their threads are woken anyway
/// (see [`Pool::submit`]).
const DEFER_MAX: usize = 64;

pub struct Pool {
    shared: Arc<Shared>,
    done: Receiver<Done>,
    in_flight: usize,
    size: usize,
    /// Set by the loop when every finished job must wake it; otherwise only jobs whose
    /// connection closes or still has output queued do.
    wake_on_finish: Arc<AtomicBool>,
    /// Set while the loop handles a batch of events: it takes finished work back
    /// after them anyway, so a hand-back then needs no wake-up.
    in_turn: Arc<AtomicBool>,
    /// Jobs submitted during the loop's batch of events whose threads are not woken
    /// yet (see [`Pool::submit`]).
    deferred: usize,
    /// The threads [`wake_deferred`](Self::wake_deferred) unparks, kept for its
    /// allocation.
    woken: Vec<usize>,
}

impl Pool {
    /// Starts `size` app threads. Idle threads park without the GIL.
    pub fn start(
        size: usize,
        bridge: Arc<Bridge>,
        waker: Arc<mio::Waker>,
    ) -> std::io::Result<Pool> {
        let (done_tx, done) = mpsc::channel::<Done>();
        let wake_on_finish = Arc::new(AtomicBool::new(true));
        let in_turn = Arc::new(AtomicBool::new(false));
        // The threads start parked until the shared state (with all their handles)
        // exists: each waits for it on a channel of its own.
        let mut threads = Vec::with_capacity(size);
        let mut handoffs = Vec::with_capacity(size);
        for n in 0..size {
            let back = Back {
                done: done_tx.clone(),
                waker: waker.clone(),
                wake_on_finish: wake_on_finish.clone(),
                in_turn: in_turn.clone(),
            };
            let bridge = bridge.clone();
            let (give, take) = mpsc::channel::<Arc<Shared>>();
            let handle = std::thread::Builder::new()
                .name(format!("app-{n}"))
                .spawn(move || {
                    if let Ok(shared) = take.recv() {
                        app_thread(&shared, n, &back, &bridge)
                    }
                })?;
            threads.push(handle.thread().clone());
            handoffs.push(give);
        }
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            threads,
        });
        for give in handoffs {
            let _ = give.send(shared.clone());
        }
        Ok(Pool {
            shared,
            done,
            in_flight: 0,
            size,
            wake_on_finish,
            in_turn,
            deferred: 0,
            woken: Vec::with_capacity(size),
        })
    }

    /// Whether a thread is free (or will be without a queue forming).
    pub fn has_room(&self) -> bool {
        self.in_flight < self.size
    }

    /// Queues a job and unparks the thread that went idle last, if any is idle. While
    /// the loop handles a batch of events the unpark waits for the batch's end
    /// ([`set_in_turn`](Self::set_in_turn)): all the app threads share the loop's CPU
    /// (one worker's threads, and `h2load.sh` pins them to one), and a thread woken
    /// mid-batch preempted the loop, ran the one job queued so far, and parked
    /// again, a pair of context switches per job where one wake-up per thread serves
    /// the whole batch. At most [`DEFER_MAX`] jobs wait so: on a machine with idle
    /// CPUs a long batch (up to 1,024 events) would otherwise hold back app work that
    /// could start at once.
    pub fn submit(&mut self, job: Job) {
        self.in_flight += 1;
        let idle = {
            let mut queue = self.shared.lock();
            queue.jobs.push_back(job);
            if self.in_turn.load(Ordering::Relaxed) {
                self.deferred += 1;
                None
            } else {
                queue.idle.pop()
            }
        };
        if let Some(n) = idle {
            self.shared.threads[n].unpark();
        }
        if self.deferred >= DEFER_MAX {
            self.wake_deferred();
        }
    }

    /// Unparks an idle thread for each job the batch queued that no thread took yet.
    fn wake_deferred(&mut self) {
        if self.deferred == 0 {
            return;
        }
        self.deferred = 0;
        let mut woken = std::mem::take(&mut self.woken);
        {
            let mut queue = self.shared.lock();
            let count = queue.jobs.len().min(queue.idle.len());
            let from = queue.idle.len() - count;
            woken.extend(queue.idle.drain(from..).rev());
        }
        for n in woken.drain(..) {
            self.shared.threads[n].unpark();
        }
        self.woken = woken;
    }

    /// The loop begins (true) or ends (false) handling a batch of events. Ending it is
    /// followed by a full fence, and so is a thread's hand-back before it reads the
    /// flag: either the thread sees it clear and wakes the loop, or the loop's
    /// `finished()` after this call sees the job.
    pub fn set_in_turn(&mut self, on: bool) {
        self.in_turn.store(on, Ordering::SeqCst);
        if !on {
            fence(Ordering::SeqCst);
            self.wake_deferred();
        }
    }

    /// Whether every finished job must wake the loop. Setting it is followed by a full
    /// fence, and so is a thread's hand-back before it reads the flag: either the
    /// thread sees the flag, or the loop's next `finished()` sees the job.
    pub fn set_wake_on_finish(&self, on: bool) {
        self.wake_on_finish.store(on, Ordering::SeqCst);
        fence(Ordering::SeqCst);
    }

    /// Requests finished since the last call, added to `into`.
    pub fn finished(&mut self, into: &mut Vec<Done>) {
        let before = into.len();
        into.extend(self.done.try_iter());
        self.in_flight -= into.len() - before;
    }
}

impl Drop for Pool {
    /// The threads end once their current job is done.
    fn drop(&mut self) {
        let idle = {
            let mut queue = self.shared.lock();
            queue.closed = true;
            std::mem::take(&mut queue.idle)
        };
        for n in idle {
            self.shared.threads[n].unpark();
        }
    }
}

/// How an app thread hands a connection back to the loop.
struct Back {
    done: Sender<Done>,
    waker: Arc<mio::Waker>,
    wake_on_finish: Arc<AtomicBool>,
    in_turn: Arc<AtomicBool>,
}

impl Back {
    /// Returns an HTTP/1 connection (HTTP/2 streams go through [`H2Stream::finish`]);
    /// false when the loop is gone.
    fn hand_back(&self, index: usize, conn: Box<Conn>, head: Box<Head>, outcome: Outcome) -> bool {
        let urgent = !outcome.keep_alive || conn.has_output();
        let done = Done {
            index,
            conn: Returned::Http1(conn),
            head,
            outcome,
        };
        self.send(done, urgent, None)
    }

    /// Returns a connection or stream; wakes the loop when `urgent`, when the loop
    /// wants every hand-back, or when the stream's connection wants to hear at once
    /// (it may dispatch a waiting stream, or close). False when the loop is gone.
    fn send(&self, done: Done, urgent: bool, wire: Option<&Wire>) -> bool {
        if self.done.send(done).is_err() {
            return false;
        }
        // This thread is free now: say so to the other workers at once rather than
        // when the loop next turns, which on a loaded machine can be long enough for
        // a busy peer to stop waiting for us and take a new client it cannot serve.
        // The loop corrects the flag on its next turn if it is not idle after all.
        // Stored only when it changes: a store on every hand-back dirtied the shared
        // mapping's cache line, which the other workers read, even when already idle.
        if !crate::scoreboard::idle_published() {
            crate::scoreboard::set_idle(true);
        }
        fence(Ordering::SeqCst);
        let wanted = urgent
            || self.wake_on_finish.load(Ordering::SeqCst)
            || wire.is_some_and(Wire::is_urgent);
        // The loop is handling events and takes this back after them (see
        // `Pool::set_in_turn`): a wake-up now would only bring it round once more.
        if wanted && !self.in_turn.load(Ordering::SeqCst) {
            let _ = self.waker.wake();
        }
        true
    }
}

/// The next job for thread `n`: one already queued is taken without letting go of
/// the GIL (a hand-off to another thread and back costs two context switches); only
/// an empty queue makes the thread park, with the GIL released. `None`: the pool is
/// gone.
fn next_job(py: pyo3::Python<'_>, shared: &Shared, n: usize) -> Option<Job> {
    if let Some(job) = shared.lock().jobs.pop_front() {
        return Some(job);
    }
    py.detach(|| wait_for_job(shared, n))
}

/// The next job for thread `n`, parking (the GIL released) while there is none.
fn wait_for_job(shared: &Shared, n: usize) -> Option<Job> {
    loop {
        {
            let mut queue = shared.lock();
            if let Some(job) = queue.jobs.pop_front() {
                // Woken spuriously with a job queued, or raced a submit: not idle.
                queue.idle.retain(|&i| i != n);
                return Some(job);
            }
            if queue.closed {
                return None;
            }
            if !queue.idle.contains(&n) {
                queue.idle.push(n);
            }
        }
        std::thread::park();
    }
}

fn app_thread(shared: &Shared, n: usize, back: &Back, bridge: &Bridge) {
    pyo3::Python::attach(|py| {
        let mut next = next_job(py, shared, n);
        while let Some(job) = next {
            let Job {
                index,
                mut conn,
                head,
                body,
                keep_alive,
            } = job;
            let peer = conn.peer();
            let outcome = bridge.call(&head, body, &peer, keep_alive, conn.sink());
            next = match conn {
                Carrier::H2(stream) => match stream.finish(back, index, head, outcome) {
                    Err(()) => return,
                    // The end goes to the socket without the GIL, and the thread
                    // then takes or waits for its next job still without it: one
                    // release, not two.
                    Ok(Some(wire)) => py.detach(|| {
                        push_end(&wire);
                        drop(wire);
                        wait_for_job(shared, n)
                    }),
                    Ok(None) => next_job(py, shared, n),
                },
                Carrier::Http1(conn) => {
                    if !back.hand_back(index, conn, head, outcome) {
                        return;
                    }
                    next_job(py, shared, n)
                }
            };
        }
    })
}
