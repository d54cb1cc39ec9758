//! What the ingress and the static file server share to run thread per core: binding one
//! `SO_REUSEPORT` listener per core, a monoio runtime per thread (io_uring, or epoll where
//! io_uring is unavailable or `SKR8TR_FORCE_EPOLL=1`), the cross-thread shutdown signal, and
//! why a start fails.
//!
//! ```text
//! bind_all(addr, N) ─▶ N listeners on one port (the kernel spreads connections)
//! activated_listener() ─▶ the socket systemd passed (LISTEN_FDS) ─share(N)─▶ N descriptors of it
//! thread per core ─run_runtime─▶ io_uring | epoll ─▶ the server's accept loop (crate::accept, crate::static_files)
//! Shutdown::fire (any thread) ─▶ every core's `Shutdown::wait` resolves
//! ```
//!
//! Owns no server logic: nothing here accepts, parses HTTP or chooses backends.

use std::future::Future;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::task::{Context, Poll, Waker};

use socket2::{Domain, Protocol, Socket, Type};

/// Backlog of each listener.
pub const BACKLOG: i32 = 1024;

/// Why the ingress (or the static file server) could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A listener could not be bound (busy port, no permission).
    #[error("cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// A thread could not be started.
    #[error("cannot start a thread")]
    Thread(#[source] std::io::Error),
    /// The routes.
    #[error("bad routes")]
    Routes(#[from] crate::route::RouteError),
    /// The mesh key.
    #[error("cannot load the mesh key")]
    MeshKey(#[source] skr8tr_proto::auth::KeyError),
    /// The access log file.
    #[error("cannot start the access log")]
    AccessLog(#[from] crate::access::OpenError),
    /// The TLS certificate or key.
    #[error("cannot load the TLS certificate")]
    Tls(#[from] crate::tls::TlsError),
    /// The socket the service manager passed is not a listening TCP socket.
    #[error("the socket passed by the service manager (LISTEN_FDS) is unusable: {0}")]
    Activation(String),
}

/// The first descriptor the service manager passes (`sd_listen_fds`).
const LISTEN_FDS_START: i32 = 3;

/// Whether the passed socket was taken already (it is owned once).
static ACTIVATION_TAKEN: AtomicBool = AtomicBool::new(false);

/// What `LISTEN_PID` and `LISTEN_FDS` say was passed to this process: how many descriptors
/// from fd 3, or none when the variables are absent, malformed or meant for another process.
fn passed_fds(pid: Option<&str>, fds: Option<&str>, me: u32) -> usize {
    let for_me = pid.and_then(|p| p.trim().parse::<u32>().ok()) == Some(me);
    match fds.and_then(|n| n.trim().parse::<usize>().ok()) {
        Some(n) if for_me => n,
        _ => 0,
    }
}

/// The listening socket systemd passed (socket activation, `skr8tr-ingress.socket`): fd 3
/// when `LISTEN_PID` is this process and `LISTEN_FDS` at least 1; `None` otherwise, and on
/// any call after the first. A restart of the service then drops no connection: the socket
/// stays open in systemd, and connections that arrive in between wait in its backlog.
///
/// # Errors
/// [`StartError::Activation`] when the descriptor is not a listening TCP socket.
pub fn activated_listener() -> Result<Option<StdListener>, StartError> {
    let n = passed_fds(
        std::env::var("LISTEN_PID").ok().as_deref(),
        std::env::var("LISTEN_FDS").ok().as_deref(),
        std::process::id(),
    );
    if n == 0 || ACTIVATION_TAKEN.swap(true, Ordering::SeqCst) {
        return Ok(None);
    }
    if n > 1 {
        tracing::warn!(
            passed = n,
            "the service manager passed several sockets; serving the first"
        );
    }
    // SAFETY: by the socket activation protocol, fd 3 is open and owned by this process when
    // LISTEN_PID names it; `ACTIVATION_TAKEN` makes this the only owner taken from it.
    #[allow(unsafe_code)]
    let fd = unsafe {
        use std::os::fd::FromRawFd as _;
        std::os::fd::OwnedFd::from_raw_fd(LISTEN_FDS_START)
    };
    let socket = Socket::from(fd);
    let bad = |what: &str| StartError::Activation(what.to_owned());
    match socket.r#type() {
        Ok(Type::STREAM) => {}
        _ => return Err(bad("not a stream socket")),
    }
    if !socket.is_listener().map_err(|e| bad(&e.to_string()))? {
        return Err(bad("not listening"));
    }
    socket
        .set_nonblocking(true)
        .map_err(|e| bad(&e.to_string()))?;
    let listener: StdListener = socket.into();
    listener.local_addr().map_err(|e| bad(&e.to_string()))?;
    Ok(Some(listener))
}

/// `n` descriptors of `listener` for `n` cores (all accept from one queue).
///
/// # Errors
/// [`StartError::Bind`] when a descriptor cannot be duplicated.
pub fn share(
    listener: StdListener,
    n: usize,
) -> Result<(SocketAddr, Vec<StdListener>), StartError> {
    let addr = listener
        .local_addr()
        .map_err(|e| StartError::Activation(e.to_string()))?;
    let mut all = Vec::with_capacity(n);
    for _ in 1..n {
        all.push(
            listener
                .try_clone()
                .map_err(|source| StartError::Bind { addr, source })?,
        );
    }
    all.push(listener);
    Ok((addr, all))
}

/// Binds a `SO_REUSEPORT` TCP listener (non-blocking, backlog [`BACKLOG`]).
///
/// # Errors
/// The socket call that failed.
pub fn bind_reuseport(addr: SocketAddr) -> std::io::Result<StdListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    if addr.is_ipv6() {
        let _ = socket.set_only_v6(false);
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

/// Binds `n` listeners on `addr` (the first picks the port when it is 0).
///
/// # Errors
/// [`StartError::Bind`].
pub fn bind_all(addr: SocketAddr, n: usize) -> Result<(SocketAddr, Vec<StdListener>), StartError> {
    let bind_err = |source| StartError::Bind { addr, source };
    let first = bind_reuseport(addr).map_err(bind_err)?;
    let local = first.local_addr().map_err(bind_err)?;
    let mut all = vec![first];
    for _ in 1..n {
        all.push(bind_reuseport(local).map_err(bind_err)?);
    }
    Ok((local, all))
}

#[cfg(test)]
mod activation_tests {
    use super::passed_fds;

    #[test]
    fn listen_fds_count_only_for_this_process() {
        assert_eq!(passed_fds(Some("42"), Some("1"), 42), 1);
        assert_eq!(passed_fds(Some("42"), Some("2"), 42), 2);
        assert_eq!(passed_fds(Some("41"), Some("1"), 42), 0);
        assert_eq!(passed_fds(None, Some("1"), 42), 0);
        assert_eq!(passed_fds(Some("42"), None, 42), 0);
        assert_eq!(passed_fds(Some("x"), Some("1"), 42), 0);
        assert_eq!(passed_fds(Some("42"), Some("-1"), 42), 0);
    }
}

/// Which I/O driver a core runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    /// io_uring.
    IoUring,
    /// epoll (monoio's legacy driver).
    Epoll,
}

impl Driver {
    /// Its name in logs.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::IoUring => "io_uring",
            Self::Epoll => "epoll",
        }
    }
}

/// Runs `f` to completion on a new monoio runtime on this thread: io_uring when available
/// (monoio probes it), epoll when not or when `force_epoll`. `f` gets the driver in use.
///
/// # Errors
/// The runtime could not be built.
pub fn run_runtime<F, Fut>(force_epoll: bool, f: F) -> std::io::Result<Fut::Output>
where
    F: FnOnce(Driver) -> Fut,
    Fut: Future,
{
    if force_epoll {
        let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()?;
        return Ok(rt.block_on(f(Driver::Epoll)));
    }
    let rt = monoio::RuntimeBuilder::<monoio::FusionDriver>::new()
        .enable_timer()
        .build()?;
    Ok(match rt {
        monoio::FusionRuntime::Uring(mut rt) => rt.block_on(f(Driver::IoUring)),
        monoio::FusionRuntime::Legacy(mut rt) => rt.block_on(f(Driver::Epoll)),
    })
}

/// A one-way, cross-thread "stop accepting and drain" signal that async tasks can await.
#[derive(Debug, Default)]
pub struct Shutdown {
    fired: AtomicBool,
    wakers: Mutex<Vec<Waker>>,
}

impl Shutdown {
    /// Fires the signal (idempotent) and wakes every waiter.
    pub fn fire(&self) {
        self.fired.store(true, Ordering::Release);
        let wakers =
            std::mem::take(&mut *self.wakers.lock().unwrap_or_else(PoisonError::into_inner));
        for w in wakers {
            w.wake();
        }
    }

    /// Whether it fired.
    #[must_use]
    pub fn is_fired(&self) -> bool {
        self.fired.load(Ordering::Acquire)
    }

    /// Resolves once fired. Meant for one long-lived waiter per core.
    pub fn wait(&self) -> impl Future<Output = ()> + '_ {
        ShutdownWait { shutdown: self }
    }
}

struct ShutdownWait<'a> {
    shutdown: &'a Shutdown,
}

impl Future for ShutdownWait<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.shutdown.is_fired() {
            return Poll::Ready(());
        }
        self.shutdown
            .wakers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(cx.waker().clone());
        if self.shutdown.is_fired() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}
