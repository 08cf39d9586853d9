//! Collects what a child process writes to a pipe, line by line, so tests
//! can wait on it (a condition variable wakes waiters on every line).

use std::io::{BufRead, BufReader, Read};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Text a child writes to one pipe, collected by a thread, with a condition
/// variable so waiters wake on each new line instead of polling.
#[derive(Clone)]
pub struct Captured(Arc<(Mutex<CaptureState>, Condvar)>);

#[derive(Default)]
struct CaptureState {
    text: String,
    eof: bool,
}

impl Captured {
    pub fn drain(pipe: impl Read + Send + 'static) -> Captured {
        let captured = Captured(Arc::new((
            Mutex::new(CaptureState::default()),
            Condvar::new(),
        )));
        let sink = captured.clone();
        thread::spawn(move || {
            let mut reader = BufReader::new(pipe);
            let mut line = Vec::new();
            loop {
                line.clear();
                let n = reader.read_until(b'\n', &mut line).unwrap_or(0);
                let (lock, cvar) = &*sink.0;
                let mut state = lock.lock().unwrap();
                if n == 0 {
                    state.eof = true;
                } else {
                    state.text.push_str(&String::from_utf8_lossy(&line));
                }
                cvar.notify_all();
                if n == 0 {
                    return;
                }
            }
        });
        captured
    }

    /// Everything captured so far.
    pub fn text(&self) -> String {
        self.0 .0.lock().unwrap().text.clone()
    }

    /// How many bytes are captured so far: a mark for [`Self::wait`].
    pub fn mark(&self) -> usize {
        self.0 .0.lock().unwrap().text.len()
    }

    /// Waits until `ready` holds for the text after `mark`, the pipe closes,
    /// or `timeout` passes; true if `ready` held.
    pub fn wait(&self, mark: usize, timeout: Duration, ready: impl Fn(&str) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let (lock, cvar) = &*self.0;
        let mut state = lock.lock().unwrap();
        loop {
            if ready(state.text.get(mark..).unwrap_or("")) {
                return true;
            }
            let now = Instant::now();
            if state.eof || now >= deadline {
                return false;
            }
            state = cvar.wait_timeout(state, deadline - now).unwrap().0;
        }
    }

    /// Waits for the pipe to close (every holder of it exited), bounded.
    pub fn wait_eof(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let (lock, cvar) = &*self.0;
        let mut state = lock.lock().unwrap();
        while !state.eof {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            state = cvar.wait_timeout(state, deadline - now).unwrap().0;
        }
        true
    }
}
