//! Response deadlines for blocking socket reads without a kernel timer per read.
//!
//! A read with a socket timeout (`SO_RCVTIMEO`) makes the kernel arm and cancel a timer every
//! time it blocks, which costs 1–2% of a request/response round trip on a fast link. A
//! client that closes the connection when a response times out
//! ([`tcp::Config::close_on_timeout`](super::tcp::Config::close_on_timeout)) can do without
//! it: it reads with no timeout and registers the deadline here, two atomic operations per
//! read. One thread, shared by every such client of the process and started on first use,
//! sleeps until the earliest deadline registered and shuts down the socket of a read still
//! waiting then, which ends that read.
//!
//! The thread needs no wake-up per read. A client's deadlines only move forward, so when the
//! thread wakes at an old deadline it finds the current one armed and sleeps on until it; a
//! client wakes the thread only when it arms a deadline earlier than the thread's next look
//! (after an idle spell, when the thread waits without a time limit).

use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;
use std::vec::Vec;

use crate::time::Instant;

/// [`Watch::state`] when no read is watched.
const IDLE: u64 = 0;
/// [`Watch::state`] once the watchdog has shut the socket down.
const FIRED: u64 = u64::MAX;

/// One socket's deadline, shared between its transport and the watchdog thread.
#[derive(Debug)]
pub(crate) struct Watch {
    /// [`IDLE`], [`FIRED`], or the deadline of the read in progress in [`Instant`]
    /// microseconds (kept between the two).
    state: AtomicU64,
    /// A handle on the transport's socket, to shut it down.
    socket: TcpStream,
}

impl Watch {
    /// Registers `socket` (a handle on it is kept until [`unregister`](Self::unregister)).
    pub(crate) fn register(socket: &TcpStream) -> std::io::Result<Arc<Self>> {
        let watch = Arc::new(Self {
            state: AtomicU64::new(IDLE),
            socket: socket.try_clone()?,
        });
        let watchdog = Watchdog::get()?;
        watchdog.lock().push(Arc::clone(&watch));
        Ok(watch)
    }

    /// Removes the watch; the watchdog drops its handle on the socket.
    pub(crate) fn unregister(self: &Arc<Self>) {
        if let Some(watchdog) = WATCHDOG.get() {
            watchdog.lock().retain(|watch| !Arc::ptr_eq(watch, self));
        }
    }

    /// Watches the read about to start: the socket is shut down if it still runs at
    /// `deadline`.
    pub(crate) fn arm(&self, deadline: Instant) {
        let at = deadline.as_micros().clamp(IDLE + 1, FIRED - 1);
        self.state.store(at, Ordering::SeqCst);
        if let Some(watchdog) = WATCHDOG.get() {
            watchdog.wake_before(at);
        }
    }

    /// Ends the watch of a read that returned. `false` when the watchdog was first: the deadline
    /// passed and the socket is shut down.
    pub(crate) fn disarm(&self) -> bool {
        let state = self.state.load(Ordering::SeqCst);
        state != FIRED
            && self
                .state
                .compare_exchange(state, IDLE, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
    }

    /// Shuts the socket down if the read it watches has passed its deadline at `now`;
    /// otherwise returns that deadline, if any.
    fn check(&self, now: u64) -> Option<u64> {
        let state = self.state.load(Ordering::SeqCst);
        if state == IDLE || state == FIRED {
            return None;
        }
        if state > now {
            return Some(state);
        }
        // The reader's `disarm` races with this: exactly one of the two exchanges succeeds.
        if self
            .state
            .compare_exchange(state, FIRED, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            // Ends the blocked read; an error means the socket is gone already.
            let _ = self.socket.shutdown(Shutdown::Both);
        }
        None
    }
}

/// The registry and its thread.
#[derive(Debug)]
struct Watchdog {
    watches: Mutex<Vec<Arc<Watch>>>,
    wake: Condvar,
    /// When the thread looks next, in [`Instant`] microseconds; `u64::MAX` while it waits for
    /// a wake-up.
    next_look: AtomicU64,
}

static WATCHDOG: OnceLock<Arc<Watchdog>> = OnceLock::new();
/// Held while the watchdog is being started.
static STARTING: Mutex<()> = Mutex::new(());

impl Watchdog {
    /// The process's watchdog, its thread started on first use.
    fn get() -> std::io::Result<&'static Arc<Self>> {
        if let Some(watchdog) = WATCHDOG.get() {
            return Ok(watchdog);
        }
        // One thread starts it; a failed start installs nothing, so a later call tries again.
        let _starting = STARTING.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(watchdog) = WATCHDOG.get() {
            return Ok(watchdog);
        }
        let watchdog = Arc::new(Self {
            watches: Mutex::new(Vec::new()),
            wake: Condvar::new(),
            next_look: AtomicU64::new(u64::MAX),
        });
        let running = Arc::clone(&watchdog);
        std::thread::Builder::new()
            .name("modbus-watchdog".into())
            .spawn(move || running.run())?;
        Ok(WATCHDOG.get_or_init(|| watchdog))
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Arc<Watch>>> {
        // The list stays valid whatever panicked while holding it.
        self.watches.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Wakes the thread if it would look later than `at`.
    fn wake_before(&self, at: u64) {
        if self.next_look.load(Ordering::SeqCst) > at {
            // Taken so the notification cannot fall between the thread's last look and its
            // wait, which happen under the lock.
            let _watches = self.lock();
            self.wake.notify_one();
        }
    }

    fn run(&self) {
        let mut watches = self.lock();
        loop {
            let now = Instant::now().as_micros();
            let mut next = watches
                .iter()
                .filter_map(|watch| watch.check(now))
                .min()
                .unwrap_or(u64::MAX);
            self.next_look.store(next, Ordering::SeqCst);
            // A deadline armed while `next_look` was still the old value may have skipped the
            // wake-up: look again now that the new value is published (`arm` stores its
            // deadline before it reads `next_look`, so one of the two sees the other).
            next = watches
                .iter()
                .filter_map(|watch| watch.check(now))
                .min()
                .map_or(next, |earliest| earliest.min(next));
            watches = if next == u64::MAX {
                self.wake
                    .wait(watches)
                    .unwrap_or_else(PoisonError::into_inner)
            } else {
                let wait = Duration::from_micros(next.saturating_sub(now));
                self.wake
                    .wait_timeout(watches, wait)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0
            };
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use std::io::Read;
    use std::net::TcpListener;

    fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        (client, server)
    }

    #[test]
    fn a_read_past_its_deadline_is_ended_and_one_that_returns_in_time_is_not() {
        let (mut client, mut server) = pair();
        let watch = Watch::register(&client).unwrap();
        let mut buf = [0u8; 4];

        // Data already there: the read returns at once and the watch ends cleanly.
        std::io::Write::write_all(&mut server, b"ping").unwrap();
        watch.arm(Instant::now() + Duration::from_secs(10));
        assert_eq!(client.read(&mut buf).unwrap(), 4);
        assert!(watch.disarm());

        // Nothing comes: the watchdog ends the read at its deadline.
        let begin = Instant::now();
        let deadline = begin + Duration::from_millis(50);
        watch.arm(deadline);
        let read = client.read(&mut buf);
        assert!(Instant::now() >= deadline);
        assert!(!watch.disarm());
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
        watch.unregister();
    }

    #[test]
    fn watches_of_several_sockets_fire_in_deadline_order() {
        let pairs: Vec<_> = (0..4).map(|_| pair()).collect();
        let watches: Vec<_> = pairs
            .iter()
            .map(|(client, _)| Watch::register(client).unwrap())
            .collect();
        let begin = Instant::now();
        let threads: Vec<_> = pairs
            .into_iter()
            .zip(&watches)
            .enumerate()
            .map(|(i, ((mut client, server), watch))| {
                let watch = Arc::clone(watch);
                // The last one has a far deadline and gets data: it must not be shut down.
                let millis = if i == 3 { 60_000 } else { 40 * (3 - i as u64) };
                std::thread::spawn(move || {
                    let deadline = begin + Duration::from_millis(millis);
                    watch.arm(deadline);
                    if i == 3 {
                        std::io::Write::write_all(&mut &server, b"late").unwrap();
                    }
                    let mut buf = [0u8; 4];
                    let read = client.read(&mut buf);
                    let ended = Instant::now();
                    let clean = watch.disarm();
                    drop(server);
                    (i, read.ok(), clean, ended >= deadline)
                })
            })
            .collect();
        for thread in threads {
            let (i, read, clean, after_deadline) = thread.join().unwrap();
            if i == 3 {
                assert_eq!((read, clean), (Some(4), true));
            } else {
                assert!(!clean, "watch {i} must have fired");
                assert!(after_deadline, "watch {i} fired early");
            }
        }
        for watch in &watches {
            watch.unregister();
        }
    }
}
