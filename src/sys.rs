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

/// Whether CPython runs in this process (see [`mark_python_started`]).
pub fn python_started() -> bool {
    PYTHON_STARTED.load(Ordering::SeqCst)
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
    // the child only runs the worker's own initialisation afterwards; Python state, when
    // there is any, is made consistent by PyOS_BeforeFork/AfterFork around this call.
    match unsafe { nix::unistd::fork() }.map_err(io::Error::from)? {
        nix::unistd::ForkResult::Parent { child } => Ok(Forked::Parent(child)),
        nix::unistd::ForkResult::Child => Ok(Forked::Child),
    }
}

/// [`fork`] with every signal blocked across it. A signal sent to the child before it
/// has installed its own handlers (a TERM right after a respawn) then waits, pending,
/// instead of running the master's inherited handler, which would queue it to the
/// master and leave the worker running. The parent's mask is restored; the child calls
/// [`unblock_signals`] once its handlers are in place.
pub fn fork_with_signals_blocked() -> io::Result<Forked> {
    use nix::sys::signal::{sigprocmask, SigSet, SigmaskHow};
    let mut old = SigSet::empty();
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&SigSet::all()), Some(&mut old))?;
    let forked = fork();
    if !matches!(forked, Ok(Forked::Child)) {
        let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
    }
    forked
}

/// Lets every signal through again (a worker forked by [`fork_with_signals_blocked`],
/// once its handlers are installed): pending ones are delivered now.
pub fn unblock_signals() {
    use nix::sys::signal::{sigprocmask, SigSet, SigmaskHow};
    let _ = sigprocmask(SigmaskHow::SIG_UNBLOCK, Some(&SigSet::all()), None);
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

/// Where the kernel reads `/proc/PID/cmdline` from (what `ps -o args` and `top -c`
/// show): the argument strings, and the environment strings right after them once
/// they are moved out of the way. `None` when the layout is not the expected one.
static TITLE_AREA: std::sync::OnceLock<Option<(usize, usize)>> = std::sync::OnceLock::new();

extern "C" {
    /// glibc's environment array.
    static mut environ: *mut *mut libc::c_char;
}

/// Prepares [`set_process_title`] (the setproctitle technique): copies every argument
/// and environment string to the heap and repoints `argv[]` and `environ[]` at the
/// copies, so the original area can hold a title of any length up to its size.
/// `std::env::args()` and `getenv` keep returning the original values.
///
/// Call once, first thing in the master, before any environment variable is set (the
/// argv array is found just below the initial `environ` array on the stack).
pub fn init_process_title() {
    TITLE_AREA.get_or_init(free_title_area);
}

/// `arg_start arg_end env_start env_end` from /proc/self/stat (fields 48 to 51).
fn stat_title_bounds() -> Option<[usize; 4]> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3)?.parse::<usize>().ok();
    Some([field(48)?, field(49)?, field(50)?, field(51)?])
}

fn free_title_area() -> Option<(usize, usize)> {
    let [arg_start, arg_end, env_start, env_end] = stat_title_bounds()?;
    if arg_start == 0 || arg_end <= arg_start {
        return None;
    }
    // SAFETY: [arg_start, arg_end) is this process's argument strings on its initial
    // stack, mapped for the life of the process; we only read it here.
    let args = unsafe { std::slice::from_raw_parts(arg_start as *const u8, arg_end - arg_start) };
    let argc = args.iter().filter(|&&b| b == 0).count();
    // SAFETY: reading the pointer value of libc's global; the process is
    // single-threaded at this point (see init_process_title).
    let envp = unsafe { environ };
    let envp_addr = envp as usize;
    // The initial environ array sits on the stack a little below the strings, after
    // argc, argv[] and its NULL. Anything else (environ moved by setenv) is refused.
    if envp.is_null() || envp_addr >= arg_start || arg_start - envp_addr > 1 << 20 {
        return None;
    }
    // SAFETY: envp points into the initial stack frame laid out by the kernel:
    // `argc, argv[0..argc], NULL, envp[..], NULL`, so the argc + 1 slots below envp are
    // argv[] and its terminator; each pointer is checked before it is trusted, and the
    // strings copied are NUL-terminated inside the checked ranges.
    unsafe {
        let argv = envp.sub(argc + 1);
        let in_args = |p: *mut libc::c_char| (arg_start..arg_end).contains(&(p as usize));
        if !(*envp.sub(1)).is_null() || (0..argc).any(|i| !in_args(*argv.add(i))) {
            return None;
        }
        let mut envc = 0;
        while !(*envp.add(envc)).is_null() {
            envc += 1;
        }
        let env_contiguous = env_start == arg_end
            && env_end > env_start
            && (0..envc).all(|i| (env_start..env_end).contains(&(*envp.add(i) as usize)));
        for i in 0..argc {
            let copy = std::ffi::CStr::from_ptr(*argv.add(i)).to_owned();
            *argv.add(i) = copy.into_raw();
        }
        let mut end = arg_end;
        if env_contiguous {
            for i in 0..envc {
                let copy = std::ffi::CStr::from_ptr(*envp.add(i)).to_owned();
                *envp.add(i) = copy.into_raw();
            }
            end = env_end;
        }
        Some((arg_start, end - arg_start))
    }
}

/// Sets what `ps`, `top` and `/proc/PID/cmdline` show for this process, and its short
/// name (`ps -o comm`, top's default column: the first 15 bytes, as setproctitle
/// does). Without [`init_process_title`] only the short name changes.
pub fn set_process_title(title: &str) {
    set_process_name(title);
    let Some(Some((start, len))) = TITLE_AREA.get().copied() else {
        return;
    };
    let bytes = title.as_bytes();
    let n = bytes.len().min(len - 1);
    // SAFETY: init_process_title repointed argv[] and environ[] away from this area, so
    // nothing else reads or writes it; it stays mapped for the life of the process
    // (a forked worker writes its own copy).
    let area = unsafe { std::slice::from_raw_parts_mut(start as *mut u8, len) };
    area[..n].copy_from_slice(&bytes[..n]);
    area[n..].fill(0);
}

/// Sets the process umask (permission bits only) and returns the previous one.
pub fn set_umask(mask: u32) -> u32 {
    use nix::sys::stat::{umask, Mode};
    umask(Mode::from_bits_truncate(mask & 0o777)).bits()
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

/// How many connections wait in a listening TCP socket's accept queue: Linux reports
/// it as `tcpi_unacked` of `TCP_INFO` on a listener, which Gunicorn's backlog metric
/// reads. `None` when the socket is not TCP.
pub fn accept_queue_len(fd: std::os::fd::BorrowedFd<'_>) -> Option<u32> {
    use std::os::fd::AsRawFd;
    let mut info = std::mem::MaybeUninit::<libc::tcp_info>::zeroed();
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: `info` is a writable buffer of `len` bytes, which the kernel fills at most;
    // `fd` is a live descriptor for the call's duration.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            info.as_mut_ptr().cast(),
            &mut len,
        )
    };
    // SAFETY: zero-initialised, then (partly) written by the kernel: every bit pattern
    // is a valid tcp_info.
    (rc == 0).then(|| unsafe { info.assume_init() }.tcpi_unacked)
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

/// Milliseconds of CLOCK_MONOTONIC_COARSE: comparable across processes, unlike `Instant`.
pub fn monotonic_millis() -> u64 {
    // Coarse: the kernel tick's resolution (a few ms) is plenty for timeouts counted
    // in seconds, and the read costs a fraction of a precise one. Workers read it
    // several times per request.
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC_COARSE)
        .map(|t| t.tv_sec() as u64 * 1000 + t.tv_nsec() as u64 / 1_000_000)
        .unwrap_or(0)
}

/// What [`fork_exec`] runs: every string prepared before the fork, so the child only
/// makes system calls between fork and exec.
pub struct ExecRequest {
    pub program: std::ffi::CString,
    pub argv: Vec<std::ffi::CString>,
    pub env: Vec<std::ffi::CString>,
    pub cwd: std::ffi::CString,
    /// Descriptors the new program inherits (their close-on-exec flag is cleared in
    /// the child only: the flag belongs to each process's descriptor table).
    pub inherit: Vec<RawFd>,
    /// Add `LISTEN_PID=<the child's pid>` to the environment (systemd's variable
    /// must name the process that reads it, known only after the fork).
    pub listen_pid: bool,
}

/// Forks a child that changes to `cwd` and execs `program` (USR2: a new master
/// from the current binary). Returns the child's pid. An exec that fails in the child
/// writes one line to stderr and exits with status 127, which the parent sees when it
/// reaps the child.
pub fn fork_exec(req: &ExecRequest) -> io::Result<Pid> {
    use std::ptr::null;
    let argv: Vec<*const libc::c_char> = req
        .argv
        .iter()
        .map(|a| a.as_ptr())
        .chain(std::iter::once(null()))
        .collect();
    let mut envp: Vec<*const libc::c_char> = req.env.iter().map(|e| e.as_ptr()).collect();
    let pid_slot = req.listen_pid.then(|| {
        envp.push(null());
        envp.len() - 1
    });
    envp.push(null());
    let mut pid_var = [0u8; 32];
    // SAFETY: the master is single-threaded (with --preload, Python runs no threads
    // of its own in it), so no lock can be held across the fork by another thread. The
    // child runs only async-signal-safe calls (fcntl, chdir, getpid, execve, write,
    // _exit) on memory prepared before the fork, plus stack writes into `pid_var` and
    // the child's own copy of `envp`; it never touches Python, so CPython's fork hooks
    // are not needed.
    unsafe {
        match libc::fork() {
            -1 => Err(io::Error::last_os_error()),
            0 => {
                for &fd in &req.inherit {
                    let flags = libc::fcntl(fd, libc::F_GETFD);
                    if flags >= 0 {
                        libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC);
                    }
                }
                if libc::chdir(req.cwd.as_ptr()) != 0 {
                    exec_failed(b"rustcorn: re-exec: cannot change to the start directory\n");
                }
                if let Some(slot) = pid_slot {
                    write_listen_pid(&mut pid_var, libc::getpid());
                    envp[slot] = pid_var.as_ptr().cast();
                }
                libc::execve(req.program.as_ptr(), argv.as_ptr(), envp.as_ptr());
                exec_failed(b"rustcorn: re-exec: execve failed\n")
            }
            child => Ok(Pid::from_raw(child)),
        }
    }
}

/// `LISTEN_PID=<pid>\0` into `buf`, without allocating (runs between fork and exec).
fn write_listen_pid(buf: &mut [u8; 32], pid: libc::pid_t) {
    const PREFIX: &[u8] = b"LISTEN_PID=";
    buf[..PREFIX.len()].copy_from_slice(PREFIX);
    let mut digits = [0u8; 12];
    let mut n = pid.unsigned_abs();
    let mut len = 0;
    loop {
        digits[len] = b'0' + (n % 10) as u8;
        len += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for i in 0..len {
        buf[PREFIX.len() + i] = digits[len - 1 - i];
    }
    buf[PREFIX.len() + len] = 0;
}

fn exec_failed(msg: &[u8]) -> ! {
    // SAFETY: write(2) and _exit(2) are async-signal-safe; msg is a live slice.
    unsafe {
        libc::write(2, msg.as_ptr().cast(), msg.len());
        libc::_exit(127)
    }
}

/// setsockopt(2) `TCP_DEFER_ACCEPT` on the TCP listener `fd`: the kernel completes a
/// connection's handshake but queues it for accept(2) only when its first bytes
/// arrive, or after about `seconds` (then as a plain connection, so a client that
/// sends nothing is still seen and timed out by the worker, only later).
pub fn defer_accept(fd: RawFd, seconds: u32) -> io::Result<()> {
    let value = libc::c_int::try_from(seconds).unwrap_or(libc::c_int::MAX);
    // SAFETY: the pointer and length describe `value`, alive for the call; `fd` is a
    // socket the caller owns, open for this call.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_DEFER_ACCEPT,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// send(2) of `buf` on the socket `fd` with `MSG_MORE`: the kernel may hold a short
/// segment until the next send or a shutdown. Returns the bytes taken.
pub fn send_more(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    let flags = libc::MSG_MORE | libc::MSG_NOSIGNAL;
    // SAFETY: the pointer and length describe `buf`, alive for the call; `fd` is a
    // socket the caller owns, open for this call.
    let n = unsafe { libc::send(fd, buf.as_ptr().cast(), buf.len(), flags) };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

/// Whether the peer of the connected socket `fd` has closed it (or it failed): a
/// non-blocking peek that finds end-of-file or an error. Bytes waiting (a pipelined
/// request) are not consumed and mean "still open".
pub fn peer_closed(fd: RawFd) -> bool {
    let mut byte = [0u8; 1];
    // SAFETY: `buf` is a valid writable buffer of the given length for the call; `fd`
    // is a socket the caller owns, open for this call; recv with MSG_PEEK consumes
    // nothing.
    let n = unsafe {
        libc::recv(
            fd,
            byte.as_mut_ptr().cast(),
            byte.len(),
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    match n {
        0 => true,
        n if n > 0 => false,
        _ => !matches!(
            io::Error::last_os_error().raw_os_error(),
            Some(libc::EAGAIN) | Some(libc::EINTR)
        ),
    }
}

/// Freed memory a worker keeps for reuse instead of returning it to the kernel:
/// below this much free at the top of the heap, glibc does not trim it.
const KEEP_FREED: libc::c_int = 16 * 1024 * 1024;
/// Allocations from this size on get their own mapping (and give it back when freed).
const OWN_MAPPING_FROM: libc::c_int = 4 * 1024 * 1024;

/// Lets a worker reuse the memory of large requests instead of faulting it in afresh
/// for every one. A 1 MiB body costs about 3 MiB of short-lived allocations (the body,
/// the app's reads of it, its reply), all freed by the next request. glibc's own
/// thresholds settle at about the body size (mapped directly) and twice it (trimmed),
/// so each such request returned its pages to the kernel and took them back zeroed:
/// page faults and page clearing were a third of the CPU a 1 MiB echo cost. Called
/// once the app is loaded, so start-up's transient memory is still trimmed as before
/// (the worker's RSS on small requests is unchanged). Settings the user made through
/// glibc's own variables (`GLIBC_TUNABLES`, `MALLOC_*_`) are left as they are.
pub fn keep_freed_memory() {
    let user_set = std::env::vars_os().any(|(key, value)| {
        let key = key.to_string_lossy();
        (key.starts_with("MALLOC_") && key.ends_with('_'))
            || (key == "GLIBC_TUNABLES" && value.to_string_lossy().contains("glibc.malloc."))
    });
    if user_set {
        return;
    }
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt(3) only changes the allocator's thresholds; glibc takes its own
    // lock, so a call while other threads allocate is fine.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, OWN_MAPPING_FROM);
        libc::mallopt(libc::M_TRIM_THRESHOLD, KEEP_FREED);
    }
}

/// One read(2) of at most `max` bytes from `fd` into `buf`'s spare capacity, appended
/// to its contents: a request body lands in the buffer it is handed over in, with no
/// copy through a read buffer and no zeroing of memory the kernel is about to fill.
/// Returns the bytes read (0 at end of file); errors as read(2)'s, `buf` unchanged.
pub fn read_to_spare(fd: RawFd, buf: &mut Vec<u8>, max: usize) -> io::Result<usize> {
    let spare = buf.spare_capacity_mut();
    let want = spare.len().min(max);
    // SAFETY: `spare` is writable memory owned by `buf`, at least `want` bytes long;
    // read(2) writes at most `want` bytes into it and touches nothing else.
    let n = unsafe { libc::read(fd, spare.as_mut_ptr().cast(), want) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let n = n as usize;
    // SAFETY: read(2) initialised the first `n` (<= `want`) spare bytes.
    unsafe { buf.set_len(buf.len() + n) };
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_to_spare_appends_at_most_what_is_asked_and_room_allows() {
        use std::io::Write;
        use std::os::fd::AsRawFd;
        let (mut tx, rx) = std::os::unix::net::UnixStream::pair().unwrap();
        tx.write_all(b"0123456789").unwrap();
        let mut buf = Vec::with_capacity(8);
        buf.extend_from_slice(b"ab");
        assert_eq!(read_to_spare(rx.as_raw_fd(), &mut buf, 3).unwrap(), 3);
        assert_eq!(buf, b"ab012");
        // Only the spare capacity is filled, however much is asked for.
        assert_eq!(read_to_spare(rx.as_raw_fd(), &mut buf, 100).unwrap(), 3);
        assert_eq!(buf, b"ab012345");
        buf.reserve_exact(10);
        assert_eq!(read_to_spare(rx.as_raw_fd(), &mut buf, 100).unwrap(), 4);
        assert_eq!(buf, b"ab0123456789");
        drop(tx);
        assert_eq!(read_to_spare(rx.as_raw_fd(), &mut buf, 100).unwrap(), 0);
        // A failed read leaves the buffer as it was.
        let (_tx, rx) = std::os::unix::net::UnixStream::pair().unwrap();
        rx.set_nonblocking(true).unwrap();
        let err = read_to_spare(rx.as_raw_fd(), &mut buf, 100).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        assert_eq!(buf, b"ab0123456789");
    }

    #[test]
    fn listen_pid_is_written_without_allocation() {
        for pid in [1, 42, 1234567, i32::MAX] {
            let mut buf = [0u8; 32];
            write_listen_pid(&mut buf, pid);
            let text = std::ffi::CStr::from_bytes_until_nul(&buf).unwrap();
            assert_eq!(text.to_str().unwrap(), format!("LISTEN_PID={pid}"));
        }
    }
}
