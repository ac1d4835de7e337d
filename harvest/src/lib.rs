//! The harvesting service: the [`modbus_stack::harvest`] engine behind a JSON API, a live
//! event stream, Prometheus metrics and a dashboard, configured by a TOML file
//! ([`config`]) or running on the embedded simulators ([`demo`]).
//!
//! [`Service::start`] runs it all on a background thread, with the [`mqtt`] publisher when
//! configured; the `harvest` binary adds the command line and signal handling.

pub mod api;
pub mod config;
pub mod demo;
pub mod metrics;
pub mod mqtt;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::{self, JoinHandle};

use modbus_stack::harvest::{DeviceConfig, Engine};
use tokio::sync::{broadcast, oneshot};

/// Events buffered between the engine and the service's stream.
const ENGINE_QUEUE: usize = 65_536;
/// How long open HTTP connections may take to finish once the service stops.
const GRACE: std::time::Duration = std::time::Duration::from_secs(1);
/// Events buffered per SSE client before it is told it lagged.
const STREAM_QUEUE: usize = 4096;

/// A running service: engine, HTTP server and event forwarder.
pub struct Service {
    engine: Arc<Engine>,
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<io::Result<()>>>,
    forwarder: Option<JoinHandle<()>>,
    publisher: Option<mqtt::Publisher>,
    mqtt_stats: Option<Arc<mqtt::MqttStats>>,
}

impl core::fmt::Debug for Service {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Service")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Service {
    /// Adds `devices` to a new engine and serves the API on `listen` (port 0 picks one).
    ///
    /// # Errors
    /// A device the engine refuses, or an address that cannot be bound.
    pub fn start(
        devices: Vec<DeviceConfig>,
        listen: SocketAddr,
        mqtt: Option<mqtt::MqttConfig>,
    ) -> io::Result<Self> {
        let engine = Arc::new(Engine::new());
        let subscription = engine.subscribe(ENGINE_QUEUE);
        // Before the devices, so that it sees their first samples and statuses.
        let publisher = match mqtt {
            Some(config) => Some(
                mqtt::Publisher::start(&engine, &devices, config)
                    .map_err(|error| io::Error::other(error.to_string()))?,
            ),
            None => None,
        };
        for device in devices {
            engine
                .add_device(device)
                .map_err(|error| io::Error::new(io::ErrorKind::InvalidInput, error.to_string()))?;
        }
        let mqtt_stats = publisher.as_ref().map(|p| Arc::clone(p.stats()));
        let (events, _) = broadcast::channel(STREAM_QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        let forwarder = {
            let events = events.clone();
            let dropped = Arc::clone(&dropped);
            thread::Builder::new()
                .name("harvest events".into())
                .spawn(move || {
                    while let Some(event) = subscription.recv() {
                        if let Some(message) = api::sse_message(&event) {
                            // No receiver (no page open) is fine.
                            let _ = events.send(Arc::new(message));
                        }
                        dropped.store(subscription.dropped(), Ordering::Relaxed);
                    }
                })?
        };
        let listener = std::net::TcpListener::bind(listen)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let (stopping_sender, stopping) = tokio::sync::watch::channel(false);
        let state = api::AppState {
            engine: Arc::clone(&engine),
            events,
            dropped: Arc::new(move || dropped.load(Ordering::Relaxed)),
            stopping,
            mqtt: mqtt_stats.clone(),
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let server = thread::Builder::new()
            .name("harvest http".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("harvest http worker")
                    .enable_all()
                    .build()?;
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener)?;
                    let (signal, signalled) = oneshot::channel::<()>();
                    let server = axum::serve(listener, api::router(state)).with_graceful_shutdown(
                        async move {
                            let _ = stopped.await;
                            // Open event streams end; then the server waits for the rest.
                            let _ = stopping_sender.send(true);
                            let _ = signal.send(());
                        },
                    );
                    // A client that keeps a connection busy gets GRACE after the signal.
                    tokio::select! {
                        result = server => result,
                        () = async {
                            let _ = signalled.await;
                            tokio::time::sleep(GRACE).await;
                        } => Ok(()),
                    }
                })?;
                // Open event streams never end on their own: do not wait for them.
                runtime.shutdown_timeout(std::time::Duration::from_millis(100));
                Ok(())
            })?;
        tracing::info!("serving http://{addr}/");
        Ok(Self {
            engine,
            addr,
            stop: Some(stop),
            server: Some(server),
            forwarder: Some(forwarder),
            publisher,
            mqtt_stats,
        })
    }

    /// The address served.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The engine.
    #[must_use]
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// The MQTT publisher's counters, when it publishes.
    #[must_use]
    pub fn mqtt(&self) -> Option<&Arc<mqtt::MqttStats>> {
        self.mqtt_stats.as_ref()
    }

    /// Stops the HTTP server and the engine, and waits for both.
    ///
    /// # Errors
    /// The error that ended the HTTP server, if any.
    pub fn stop(mut self) -> io::Result<()> {
        self.stop_all()
    }

    fn stop_all(&mut self) -> io::Result<()> {
        // The engine first: its shutdown ends the event stream, which lets open SSE
        // connections finish.
        self.engine.shutdown();
        if let Some(forwarder) = self.forwarder.take() {
            let _ = forwarder.join();
        }
        // After the engine: every sample it took is queued before the publisher goes.
        if let Some(publisher) = self.publisher.take() {
            publisher.stop();
        }
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.server.take() {
            Some(server) => server
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("the HTTP thread panicked"))),
            None => Ok(()),
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.stop_all();
    }
}
