//! Blocking servers (feature `std`): the drivers that move bytes between a link and a
//! [`ServerSession`](crate::session::server::ServerSession), and an in-memory data model.
//!
//! All protocol behaviour lives in the sans-IO [`session::server`](crate::session::server);
//! this module supplies what a simulator or a device on a PC needs around it: [`DataStore`], a
//! [`Handler`](crate::session::server::Handler) shareable between threads, [`UnitMap`], a
//! handler that routes unit ids to stores, and the servers, both of one shape (`bind` or
//! `open`, then `serve` or `spawn`, stopped through a [`ShutdownHandle`]):
//! [`tcp::TcpServer`] (Modbus TCP and RTU over TCP) and, with feature `serial`,
//! `serial::SerialServer` (RTU and ASCII).

mod store;
pub mod tcp;

#[cfg(feature = "serial")]
#[cfg_attr(docsrs, doc(cfg(feature = "serial")))]
pub mod serial;

pub use store::{DataStore, DataStoreBuilder, UnitMap};

use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// Asks a running server to stop; cheap to clone and send to other threads. One type for the
/// TCP and the serial servers.
///
/// After [`shutdown`](Self::shutdown) the server stops accepting (or reading) at once, closes
/// its connections, joins every thread it started, and its `serve` returns.
#[derive(Debug, Clone)]
pub struct ShutdownHandle {
    inner: Arc<ShutdownState>,
}

#[derive(Debug)]
struct ShutdownState {
    stop: AtomicBool,
    /// A handle on a TCP server's listening socket, to wake its accept call.
    listener: Option<TcpListener>,
    /// The address to connect to when shutting the listener down does not wake it.
    wake_addr: Option<SocketAddr>,
    /// Wakes a sleeper (the TCP server's watcher).
    wake: Condvar,
    /// `true` when the sleeper was woken since it last looked (so a wake between its look and
    /// its wait is not lost).
    woken: Mutex<bool>,
}

impl ShutdownHandle {
    /// A handle for a server with no listener (a serial line).
    #[cfg(feature = "serial")]
    pub(crate) fn new() -> Self {
        Self::with_listener(None)
    }

    /// A handle that also wakes `listener`'s accept call.
    pub(crate) fn for_listener(listener: &TcpListener) -> Self {
        Self::with_listener(Some(listener))
    }

    fn with_listener(listener: Option<&TcpListener>) -> Self {
        let wake_addr = listener
            .and_then(|listener| listener.local_addr().ok())
            .map(|addr| {
                // A listener on every interface is reached through the loopback one.
                let ip = match addr.ip() {
                    std::net::IpAddr::V4(ip) if ip.is_unspecified() => {
                        std::net::Ipv4Addr::LOCALHOST.into()
                    }
                    std::net::IpAddr::V6(ip) if ip.is_unspecified() => {
                        std::net::Ipv6Addr::LOCALHOST.into()
                    }
                    ip => ip,
                };
                SocketAddr::new(ip, addr.port())
            });
        Self {
            inner: Arc::new(ShutdownState {
                stop: AtomicBool::new(false),
                listener: listener.and_then(|listener| listener.try_clone().ok()),
                wake_addr,
                wake: Condvar::new(),
                woken: Mutex::new(false),
            }),
        }
    }

    /// Signals the server to stop; returns at once (its spawned handle's `shutdown` waits).
    pub fn shutdown(&self) {
        if self.inner.stop.swap(true, Ordering::SeqCst) {
            return;
        }
        // Linux ends a blocked accept when its socket is shut down; elsewhere a connection
        // from ourselves does it (the accept loop sees the flag and drops it).
        if let Some(listener) = &self.inner.listener {
            let _ = socket2::SockRef::from(listener).shutdown(Shutdown::Both);
        }
        if let Some(addr) = self.inner.wake_addr {
            let _ = TcpStream::connect_timeout(&addr, Duration::from_millis(100));
        }
        self.wake();
    }

    /// `true` once [`shutdown`](Self::shutdown) was called.
    #[must_use]
    pub fn is_shutdown(&self) -> bool {
        self.inner.stop.load(Ordering::SeqCst)
    }

    /// Sleeps up to `timeout` (without a limit for `None`), or until woken or shut down.
    pub(crate) fn sleep(&self, timeout: Option<Duration>) {
        let mut woken = lock(&self.inner.woken);
        if !*woken && !self.is_shutdown() {
            // Spurious wake-ups only make the sleeper look once more.
            woken = match timeout {
                Some(timeout) => self
                    .inner
                    .wake
                    .wait_timeout(woken, timeout)
                    .map_or_else(|poisoned| poisoned.into_inner().0, |(guard, _)| guard),
                None => self
                    .inner
                    .wake
                    .wait(woken)
                    .unwrap_or_else(PoisonError::into_inner),
            };
        }
        *woken = false;
    }

    /// Wakes the sleeper.
    pub(crate) fn wake(&self) {
        *lock(&self.inner.woken) = true;
        self.inner.wake.notify_all();
    }
}

/// Locks `mutex`, going on with its data if another thread panicked while holding it: every
/// update under the servers' locks leaves the data consistent.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
