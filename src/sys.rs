//! Every `unsafe` call outside the pyo3 boundary: fork, signals, process control,
//! local time. Each block says why it is sound.

use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicI32, Ordering};

use nix::sys::signal::{self, SigHandler, Signal};
use nix::unistd::Pid;

/// The write end of the current process's signal pipe; -1 when none is installed.
static SIGNAL_PIPE: AtomicI32 = AtomicI32::new(-1);

extern "C" fn enqueue_signal(signo: libc::c_int) {
    let fd = SIGNAL_PIPE.load(Ordering::Relaxed);
    if fd >= 0 {
        let byte = signo as u8;
        let saved = io::Error::last_os_error().raw_os_error().unwrap_or(0);
        // SAFETY: write(2) is async-signal-safe; the buffer is a live local byte. A full
        // pipe drops the byte, which is fine: the loop wakes on the bytes already there.
        unsafe {
            libc::write(fd, (&byte as *const u8).cast(), 1);
            *libc::__errno_location() = saved;
        }
    }
}

/// Routes `signals` into a fresh non-blocking pipe, one byte (the signal number) per
/// delivery, and returns the read end. Handlers do nothing else: the owner's loop reads
/// the bytes in order and acts on them (Gunicorn's arbiter queue, without a queue).
///
/// Calling it again (in a forked child) replaces the previous pipe for this process.
pub fn install_signal_pipe(signals: &[Signal]) -> io::Result<std::os::unix::net::UnixStream> {
    let (read, write) = std::os::unix::net::UnixStream::pair()?;
    read.set_nonblocking(true)?;
    write.set_nonblocking(true)?;
    let old = SIGNAL_PIPE.swap(std::os::fd::IntoRawFd::into_raw_fd(write), Ordering::SeqCst);
    if old >= 0 {
        let _ = nix::unistd::close(old);
    }
    let action = signal::SigAction::new(
        SigHandler::Handler(enqueue_signal),
        signal::SaFlags::SA_RESTART,
        signal::SigSet::empty(),
    );
    for &sig in signals {
        // SAFETY: the handler only calls write(2) on an fd it loads atomically.
        unsafe { signal::sigaction(sig, &action) }.map_err(io::Error::from)?;
    }
    Ok(read)
}

/// Puts `signals` back to their default disposition (used in a forked worker for the
/// master's signals it must not inherit, such as SIGCHLD).
pub fn reset_signals(signals: &[Signal]) {
    for &sig in signals {
        // SAFETY: SIG_DFL installs no Rust code.
        let _ = unsafe { signal::signal(sig, SigHandler::SigDfl) };
    }
}

/// Ignores `sig` (SIGPIPE: a client that hangs up must be an EPIPE, not a dead worker).
pub fn ignore_signal(sig: Signal) {
    // SAFETY: SIG_IGN installs no Rust code.
    let _ = unsafe { signal::signal(sig, SigHandler::SigIgn) };
}

/// The two sides of a fork.
pub enum Forked {
    Parent(Pid),
    Child,
}

/// Set once this process has started CPython: forks must then go through
/// `PyOS_BeforeFork` / `PyOS_AfterFork_*` (see [`fork`]).
static PYTHON_STARTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Records that CPython runs in this process (the master with hooks or `--preload`).
pub fn mark_python_started() {
    PYTHON_STARTED.store(true, Ordering::SeqCst);
}

/// fork(2). The master is single-threaded; when it runs CPython (hooks, `--preload`),
/// the fork is wrapped in Python's own fork protocol so the child's interpreter is
/// consistent (import lock, GIL, thread states), as `os.fork()` does.
pub fn fork() -> io::Result<Forked> {
    if !PYTHON_STARTED.load(Ordering::SeqCst) {
        return plain_fork();
    }
    use pyo3::ffi;
    // SAFETY: CPython is initialised in this process (PYTHON_STARTED) and this thread
    // holds no GIL (the master only attaches around hook calls), so PyGILState_Ensure
    // attaches it. PyOS_BeforeFork/AfterFork_* are called on that thread with the GIL
    // held, once per fork, as the C API requires; the GIL state is released on both
    // sides (in the child AfterFork_Child has re-created the GIL for this thread).
    unsafe {
        let gil = ffi::PyGILState_Ensure();
        ffi::PyOS_BeforeFork();
        let forked = plain_fork();
        match forked {
            Ok(Forked::Child) => ffi::PyOS_AfterFork_Child(),
            _ => ffi::PyOS_AfterFork_Parent(),
        }
        ffi::PyGILState_Release(gil);
        forked
    }
}

fn plain_fork() -> io::Result<Forked> {
    // SAFETY: the master is single-threaded (no locks can be held by another thread), and
    // the child only runs the worker's own initialisation afterwards.
    match unsafe { nix::unistd::fork() }.map_err(io::Error::from)? {
        nix::unistd::ForkResult::Parent { child } => Ok(Forked::Parent(child)),
        nix::unistd::ForkResult::Child => Ok(Forked::Child),
    }
}

/// Ends the process at once without running destructors or atexit handlers inherited
/// from the master (a forked worker must not unlink the master's sockets or pid file).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit(2) is always safe to call; it never returns.
    unsafe { libc::_exit(code) }
}

/// Sends `sig` to `pid`, ignoring a process that is already gone.
pub fn kill(pid: Pid, sig: Signal) {
    let _ = signal::kill(pid, sig);
}

/// Broken-down local time with its UTC offset in seconds, for log timestamps.
pub struct LocalTime {
    pub year: i32,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub utc_offset: i64,
}

/// localtime_r(3) of a Unix timestamp, so log lines carry the same zone Gunicorn shows.
pub fn local_time(unix_seconds: i64) -> LocalTime {
    let t: libc::time_t = unix_seconds as libc::time_t;
    // SAFETY: tm is plain old data; localtime_r fills it and is thread-safe.
    let tm = unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        libc::localtime_r(&t, &mut tm);
        tm
    };
    LocalTime {
        year: tm.tm_year + 1900,
        month: (tm.tm_mon + 1) as u32,
        day: tm.tm_mday as u32,
        hour: tm.tm_hour as u32,
        minute: tm.tm_min as u32,
        second: tm.tm_sec as u32,
        utc_offset: tm.tm_gmtoff,
    }
}

/// Sets the process's short name (what `top` and `ps -o comm` show), at most 15 bytes.
pub fn set_process_name(name: &str) {
    let mut bytes: Vec<u8> = name.bytes().filter(|&b| b != 0).take(15).collect();
    bytes.push(0);
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes.
    unsafe {
        libc::prctl(libc::PR_SET_NAME, bytes.as_ptr() as libc::c_ulong, 0, 0, 0);
    }
}

/// Asks the kernel to send SIGTERM to this process when its parent (the master) dies,
/// so an orphaned worker never keeps serving stale code.
pub fn die_with_parent() {
    // SAFETY: PR_SET_PDEATHSIG takes a signal number and touches no memory.
    unsafe {
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGTERM as libc::c_ulong,
            0,
            0,
            0,
        );
    }
}

/// Marks an inherited `fd` close-on-exec: a listener handed to us (fd://N) must not
/// leak into programs the app execs.
pub fn set_cloexec(fd: RawFd) -> io::Result<()> {
    use nix::fcntl::{fcntl, FcntlArg, FdFlag};
    // SAFETY: the caller owns fd for the duration of the call.
    let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    let flags = FdFlag::from_bits_truncate(fcntl(borrowed, FcntlArg::F_GETFD)?);
    fcntl(borrowed, FcntlArg::F_SETFD(flags | FdFlag::FD_CLOEXEC))?;
    Ok(())
}

/// A zero-filled `MAP_SHARED | MAP_ANONYMOUS` region of `len` u64 words, created by the
/// master before forking so every worker sees the same pages. Never unmapped: it lives
/// as long as the process.
pub fn shared_words(len: usize) -> io::Result<&'static [std::sync::atomic::AtomicU64]> {
    use nix::sys::mman::{mmap_anonymous, MapFlags, ProtFlags};
    let bytes = std::num::NonZeroUsize::new(len.max(1) * 8).expect("non-zero");
    // SAFETY: a fresh anonymous mapping aliases nothing; it is zero-filled, page-aligned
    // (so aligned for AtomicU64), and is never unmapped, so the 'static slice stays valid.
    unsafe {
        let ptr = mmap_anonymous(
            None,
            bytes,
            ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
            MapFlags::MAP_SHARED,
        )?;
        Ok(std::slice::from_raw_parts(ptr.as_ptr().cast(), len.max(1)))
    }
}

extern "C" fn exit_zero(_: libc::c_int) {
    // SAFETY: _exit is async-signal-safe.
    unsafe { libc::_exit(0) }
}

extern "C" fn exit_one(_: libc::c_int) {
    // SAFETY: _exit is async-signal-safe.
    unsafe { libc::_exit(1) }
}

/// Makes `signals` end the process at once with `code` (0 or 1): a worker told to quit
/// (INT/QUIT) or aborted for a timeout (ABRT) must not wait for the app call in hand.
pub fn exit_on_signals(signals: &[Signal], code: i32) -> io::Result<()> {
    let handler = if code == 0 { exit_zero } else { exit_one };
    let action = signal::SigAction::new(
        SigHandler::Handler(handler),
        signal::SaFlags::empty(),
        signal::SigSet::empty(),
    );
    for &sig in signals {
        // SAFETY: the handler only calls _exit(2).
        unsafe { signal::sigaction(sig, &action) }.map_err(io::Error::from)?;
    }
    Ok(())
}

/// Milliseconds of CLOCK_MONOTONIC: comparable across processes, unlike `Instant`.
pub fn monotonic_millis() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(|t| t.tv_sec() as u64 * 1000 + t.tv_nsec() as u64 / 1_000_000)
        .unwrap_or(0)
}
