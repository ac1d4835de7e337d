//! The harvesting engine against real simulators on 127.0.0.1 (issue 12): a simulator killed
//! and restarted mid-run (error, growing backoff, recovery, the healthy device on time); a
//! shared line that never has two requests in flight, checked on the wire by the server side;
//! a silent unit id that neither closes the shared connection nor makes its neighbour late;
//! bounded history; exception 02 on a coalesced read split and learned; a device offline at
//! start connected when it appears; writes and operator actions; a slow subscriber that never
//! slows polling; and a prompt shutdown.
//!
//! Every loop is bounded in count and time; every server is shut down by its test.

#![cfg(feature = "std")]

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use modbus_stack::frame::tcp::HEADER_LEN;
use modbus_stack::harvest::{
    DeviceConfig, Engine, Error, Event, Link, PollReport, Quality, Status, Subscription,
};
use modbus_stack::pdu::ExceptionCode;
use modbus_stack::point::{Point, PointKind, PointMap, PointValue, Table};
use modbus_stack::server::DataStore;
use modbus_stack::server::tcp::{Config, SpawnedServer, TcpServer};
use modbus_stack::session::server::{Handler, Unit, UnitIds};
use modbus_stack::sim;
use modbus_stack::value::{DataType, Order};

fn start_sim(addr: &str) -> SpawnedServer {
    TcpServer::bind(addr, Config::tcp())
        .and_then(|server| server.spawn(sim::unit_map()))
        .expect("start the simulator")
}

fn holding(name: &str, unit: u8, address: u16) -> Point {
    Point::new(
        name,
        unit,
        Table::HoldingRegisters,
        address,
        PointKind::number(DataType::U16, Order::Abcd),
    )
}

/// A device reading holding register 0 and input register 100 of the simulator.
fn device(name: &str, link: Link, unit: u8, interval: Duration) -> DeviceConfig {
    let points = PointMap::new([
        holding("setpoint", unit, 0),
        Point::new(
            "ir100",
            unit,
            Table::InputRegisters,
            100,
            PointKind::number(DataType::U16, Order::Abcd),
        ),
    ])
    .unwrap();
    let mut config = DeviceConfig::new(name, link, unit, points)
        .with_interval(interval)
        .with_writable(["setpoint"]);
    config.response_timeout = Duration::from_millis(300);
    config.retries = 0;
    config.backoff.initial = Duration::from_millis(100);
    config.backoff.max = Duration::from_millis(800);
    config
}

/// Collects every event of a subscription in a thread until told to stop.
struct Recorder {
    events: Arc<Mutex<Vec<(Instant, Event)>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Recorder {
    fn new(subscription: Subscription) -> Self {
        let events = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (events, stop) = (Arc::clone(&events), Arc::clone(&stop));
            thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    if let Some(event) = subscription.recv_timeout(Duration::from_millis(20)) {
                        events.lock().unwrap().push((Instant::now(), event));
                    }
                }
            })
        };
        Self {
            events,
            stop,
            thread: Some(thread),
        }
    }

    fn polls(&self, device: &str) -> Vec<PollReport> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter_map(|(_, event)| match event {
                Event::Polled(report) if &*report.device == device => Some(report.clone()),
                _ => None,
            })
            .collect()
    }

    fn statuses(&self, device: &str) -> Vec<Status> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter_map(|(_, event)| match event {
                Event::Status { device: d, status } if &**d == device => Some(status.clone()),
                _ => None,
            })
            .collect()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Waits (bounded) until `condition` holds.
fn wait_until(what: &str, limit: Duration, mut condition: impl FnMut() -> bool) {
    let start = Instant::now();
    while !condition() {
        assert!(start.elapsed() < limit, "timed out waiting for: {what}");
        thread::sleep(Duration::from_millis(10));
    }
}

fn status(engine: &Engine, device: &str) -> Status {
    engine.device(device).unwrap().status
}

/// Polls per second of `polls`, from the first to the last poll's start, against `interval`:
/// the relative error of the mean gap.
fn rate_error(polls: &[PollReport], interval: Duration) -> f64 {
    let starts: Vec<Instant> = polls.iter().map(|p| p.due + p.lateness).collect();
    let span = starts
        .last()
        .unwrap()
        .duration_since(starts[0])
        .as_secs_f64();
    let mean_gap = span / f64::from(u32::try_from(starts.len() - 1).unwrap());
    (mean_gap - interval.as_secs_f64()).abs() / interval.as_secs_f64()
}

#[test]
fn a_killed_simulator_backs_off_and_recovers_while_the_healthy_one_keeps_time() {
    let healthy_server = start_sim("127.0.0.1:0");
    let mut dying_server = Some(start_sim("127.0.0.1:0"));
    let dying_addr = dying_server.as_ref().unwrap().local_addr();
    let engine = Engine::new();
    let recorder = Recorder::new(engine.subscribe(100_000));
    let interval = Duration::from_millis(100);
    engine
        .add_device(device(
            "healthy",
            Link::tcp(healthy_server.local_addr().to_string()),
            1,
            interval,
        ))
        .unwrap();
    engine
        .add_device(device(
            "dying",
            Link::tcp(dying_addr.to_string()),
            1,
            interval,
        ))
        .unwrap();
    wait_until("both connected", Duration::from_secs(10), || {
        status(&engine, "healthy") == Status::Connected
            && status(&engine, "dying") == Status::Connected
    });
    let polls_before = recorder.polls("healthy").len();

    dying_server.take().unwrap().shutdown().unwrap();
    let outage = Instant::now();
    // Backing off, with waits that grow, for a few failures and at least two seconds.
    wait_until("four failures", Duration::from_secs(20), || {
        matches!(status(&engine, "dying"), Status::BackingOff { failures, .. } if failures >= 4)
            && outage.elapsed() >= Duration::from_secs(2)
    });
    let snapshot = engine.device("dying").unwrap();
    assert!(
        snapshot.points.iter().all(|p| p.quality == Quality::Stale),
        "{:?}",
        snapshot.points
    );
    // The simulator comes back on the same port; the device reconnects by itself.
    let restarted = start_sim(&dying_addr.to_string());
    wait_until("recovered", Duration::from_secs(20), || {
        status(&engine, "dying") == Status::Connected
    });
    wait_until(
        "a good sample after recovery",
        Duration::from_secs(5),
        || engine.device("dying").unwrap().points[0].quality == Quality::Good,
    );
    let backoffs: Vec<(Duration, u32)> = recorder
        .statuses("dying")
        .iter()
        .filter_map(|status| match status {
            Status::BackingOff {
                until,
                at,
                failures,
                ..
            } => Some((until.duration_since(*at).unwrap_or_default(), *failures)),
            _ => None,
        })
        .collect();
    assert!(backoffs.len() >= 3, "{backoffs:?}");
    for pair in backoffs.windows(2) {
        // Equal jitter never shrinks a wait while the doubled step (100 ms × 2ⁿ⁻¹) is under
        // the cap (800 ms, reached at the 4th failure); one interval of slack covers the
        // rounding of the next attempt up to the poll grid.
        let ((first, n), (second, m)) = (pair[0], pair[1]);
        if m > n && m <= 4 {
            assert!(second + interval >= first, "{backoffs:?}");
        }
    }
    let longest = backoffs.iter().map(|(d, _)| *d).max().unwrap();
    assert!(
        longest >= Duration::from_millis(300),
        "backoff did not grow: {backoffs:?}"
    );
    assert!(engine.device("dying").unwrap().counters.reconnects >= 1);

    // The healthy device kept its interval throughout.
    let polls = recorder.polls("healthy");
    let during = &polls[polls_before..];
    assert!(during.len() >= 20, "{} polls", during.len());
    let error = rate_error(during, interval);
    assert!(
        error < 0.05,
        "healthy poll rate off by {:.1}%",
        error * 100.0
    );
    assert!(during.iter().all(|p| p.complete));
    engine.shutdown();
    restarted.shutdown().unwrap();
    healthy_server.shutdown().unwrap();
}

/// A TCP relay in front of a Modbus TCP server that watches the wire from the server's side:
/// it counts connections and, from the MBAP headers both ways, the most requests ever
/// outstanding at once. Requests for `silent_unit` are swallowed (a dead device behind a
/// gateway).
struct LineMonitor {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    max_outstanding: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl LineMonitor {
    fn start(upstream: SocketAddr, silent_unit: Option<u8>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let max_outstanding = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (connections, max_outstanding, requests, stop) = (
                Arc::clone(&connections),
                Arc::clone(&max_outstanding),
                Arc::clone(&requests),
                Arc::clone(&stop),
            );
            thread::spawn(move || {
                let mut relays = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((client, _)) => {
                            connections.fetch_add(1, Ordering::SeqCst);
                            let server = TcpStream::connect(upstream).unwrap();
                            relays.push(relay(
                                client,
                                server,
                                silent_unit,
                                Arc::clone(&max_outstanding),
                                Arc::clone(&requests),
                                Arc::clone(&stop),
                            ));
                        }
                        Err(_) => thread::sleep(Duration::from_millis(5)),
                    }
                }
                for relay in relays {
                    let _ = relay.join();
                }
            })
        };
        Self {
            addr,
            connections,
            max_outstanding,
            requests,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for LineMonitor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Splits whole MBAP ADUs off the front of `buffer`.
fn take_adus(buffer: &mut Vec<u8>) -> Vec<Vec<u8>> {
    let mut adus = Vec::new();
    while buffer.len() >= HEADER_LEN {
        let len = 6 + usize::from(u16::from_be_bytes([buffer[4], buffer[5]]));
        if buffer.len() < len {
            break;
        }
        adus.push(buffer.drain(..len).collect());
    }
    adus
}

fn relay(
    client: TcpStream,
    server: TcpStream,
    silent_unit: Option<u8>,
    max_outstanding: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
) -> JoinHandle<()> {
    let outstanding = Arc::new(AtomicUsize::new(0));
    let timeout = Some(Duration::from_millis(20));
    client.set_read_timeout(timeout).unwrap();
    server.set_read_timeout(timeout).unwrap();
    let back = {
        let (mut from, mut to) = (server.try_clone().unwrap(), client.try_clone().unwrap());
        let (outstanding, stop) = (Arc::clone(&outstanding), Arc::clone(&stop));
        thread::spawn(move || {
            let mut buffer = Vec::new();
            let mut chunk = [0u8; 1024];
            while !stop.load(Ordering::SeqCst) {
                match from.read(&mut chunk) {
                    Ok(0) => break,
                    Ok(n) => {
                        buffer.extend_from_slice(&chunk[..n]);
                        for adu in take_adus(&mut buffer) {
                            // Counted down before the client can see the response.
                            outstanding.fetch_sub(1, Ordering::SeqCst);
                            if to.write_all(&adu).is_err() {
                                return;
                            }
                        }
                    }
                    Err(_) => {}
                }
            }
        })
    };
    thread::spawn(move || {
        let (mut from, mut to) = (client, server);
        let mut buffer = Vec::new();
        let mut chunk = [0u8; 1024];
        while !stop.load(Ordering::SeqCst) {
            match from.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => {
                    buffer.extend_from_slice(&chunk[..n]);
                    for adu in take_adus(&mut buffer) {
                        let unit = adu[HEADER_LEN - 1];
                        requests.fetch_add(1, Ordering::SeqCst);
                        if Some(unit) == silent_unit {
                            continue;
                        }
                        let now = outstanding.fetch_add(1, Ordering::SeqCst) + 1;
                        max_outstanding.fetch_max(now, Ordering::SeqCst);
                        // Give a second request the chance to overlap if the client sent one.
                        thread::sleep(Duration::from_millis(2));
                        if to.write_all(&adu).is_err() {
                            break;
                        }
                    }
                }
                Err(_) => {}
            }
        }
        let _ = to.shutdown(Shutdown::Both);
        let _ = back.join();
    })
}

#[test]
fn devices_sharing_a_line_never_have_two_requests_in_flight() {
    let server = start_sim("127.0.0.1:0");
    let monitor = LineMonitor::start(server.local_addr(), None);
    let engine = Engine::new();
    let link = Link::tcp(monitor.addr.to_string());
    for unit in 1..=3u8 {
        let config = device(
            &format!("unit{unit}"),
            link.clone(),
            unit,
            Duration::from_millis(20),
        );
        engine.add_device(config).unwrap();
    }
    wait_until("30 polls of each", Duration::from_secs(20), || {
        engine
            .devices()
            .iter()
            .all(|device| device.counters.polls >= 30)
    });
    // Writes share the line too.
    for value in 0..5u16 {
        engine
            .write("unit2", "setpoint", PointValue::U16(value))
            .unwrap();
    }
    engine.shutdown();
    assert!(monitor.requests.load(Ordering::SeqCst) >= 3 * 30 * 2);
    assert_eq!(monitor.max_outstanding.load(Ordering::SeqCst), 1);
    assert_eq!(
        monitor.connections.load(Ordering::SeqCst),
        1,
        "one connection per gateway"
    );
    drop(monitor);
    server.shutdown().unwrap();
}

#[test]
fn a_silent_unit_never_closes_the_shared_link_nor_delays_its_neighbour() {
    // A gateway that answers unit 1 only: unit 2's requests go unanswered (not even 0x0B).
    let mut config = Config::tcp();
    config.session.units = UnitIds::single(1);
    let server = TcpServer::bind("127.0.0.1:0", config)
        .unwrap()
        .spawn(sim::store())
        .unwrap();
    let monitor = LineMonitor::start(server.local_addr(), None);
    let engine = Engine::new();
    let recorder = Recorder::new(engine.subscribe(100_000));
    let link = Link::tcp(monitor.addr.to_string());
    let interval = Duration::from_millis(100);
    engine
        .add_device(device("alive", link.clone(), 1, interval))
        .unwrap();
    let mut silent = device("silent", link, 2, interval);
    // A probe holds the line for its 80 ms timeout: it must fit between the neighbour's
    // polls (100 ms apart), never delay one. (Started on its own schedule, 62 ms after the
    // neighbour's, it would make the neighbour 40 ms late.)
    silent.response_timeout = Duration::from_millis(80);
    silent.backoff.initial = Duration::from_millis(200);
    silent.backoff.max = Duration::from_millis(400);
    engine.add_device(silent).unwrap();
    let started = Instant::now();
    wait_until(
        "the silent unit failed 5 times",
        Duration::from_secs(20),
        || {
            matches!(status(&engine, "silent"), Status::BackingOff { failures, .. } if failures >= 5)
                && started.elapsed() >= Duration::from_secs(3)
        },
    );
    let alive = engine.device("alive").unwrap();
    assert_eq!(alive.status, Status::Connected);
    assert!(engine.device("silent").unwrap().counters.timeouts >= 5);
    engine.shutdown();
    // From the silent unit's first failure on (its first poll is an ordinary one, which may
    // hold the line for one timeout), every later attempt is a probe.
    let first_failure = recorder
        .events
        .lock()
        .unwrap()
        .iter()
        .find_map(|(at, event)| match event {
            Event::Status {
                device,
                status: Status::BackingOff { .. },
            } if &**device == "silent" => Some(*at),
            _ => None,
        })
        .unwrap();
    let polls: Vec<PollReport> = recorder
        .polls("alive")
        .into_iter()
        .filter(|p| p.due > first_failure + Duration::from_millis(90))
        .collect();
    assert!(polls.len() >= 20, "{} polls", polls.len());
    let error = rate_error(&polls, interval);
    assert!(
        error < 0.05,
        "neighbour's poll rate off by {:.1}%",
        error * 100.0
    );
    // No probe ever made the neighbour wait for it.
    let late: Vec<Duration> = polls
        .iter()
        .map(|p| p.lateness)
        .filter(|lateness| *lateness > Duration::from_millis(25))
        .collect();
    assert!(late.is_empty(), "late polls: {late:?}");
    assert_eq!(
        monitor.connections.load(Ordering::SeqCst),
        1,
        "the link was never closed"
    );
    assert_eq!(engine.device("alive").unwrap().counters.reconnects, 0);
    drop(monitor);
    server.shutdown().unwrap();
}

#[test]
fn history_is_bounded_and_sequences_have_no_gaps() {
    let server = start_sim("127.0.0.1:0");
    let engine = Engine::new();
    let mut config = device(
        "dev",
        Link::tcp(server.local_addr().to_string()),
        1,
        Duration::from_millis(10),
    );
    config.history = 5;
    engine.add_device(config).unwrap();
    wait_until("12 polls", Duration::from_secs(10), || {
        engine.device("dev").unwrap().counters.polls >= 12
    });
    let history = engine.history("dev", "ir100", 1000).unwrap();
    assert_eq!(history.len(), 5);
    for pair in history.windows(2) {
        assert_eq!(pair[1].sequence, pair[0].sequence + 1);
        assert!(pair[1].timestamp >= pair[0].timestamp);
    }
    assert!(history[0].sequence >= 8);
    assert!(
        history
            .iter()
            .all(|s| s.value == Some(PointValue::U16(100)) && s.quality == Quality::Good)
    );
    assert_eq!(engine.history("dev", "ir100", 2).unwrap().len(), 2);
    assert!(matches!(
        engine.history("dev", "nope", 2),
        Err(Error::UnknownPoint { .. })
    ));
    assert!(matches!(
        engine.history("nope", "ir100", 2),
        Err(Error::UnknownDevice { .. })
    ));
    engine.shutdown();
    server.shutdown().unwrap();
}

/// The simulator, except that holding register 5 does not exist: any read that covers it is
/// answered with exception 02, as devices with undocumented gaps do.
#[derive(Clone)]
struct WithHole {
    store: DataStore,
    /// Read requests seen: (address, quantity).
    reads: Arc<Mutex<Vec<(u16, u16)>>>,
}

impl Handler for WithHole {
    fn read_holding_registers(
        &mut self,
        unit: Unit,
        address: u16,
        out: &mut [u16],
    ) -> Result<(), ExceptionCode> {
        let quantity = u16::try_from(out.len()).unwrap();
        self.reads.lock().unwrap().push((address, quantity));
        if (address..address.saturating_add(quantity)).contains(&5) {
            return Err(ExceptionCode::IllegalDataAddress);
        }
        self.store.read_holding_registers(unit, address, out)
    }
}

#[test]
fn exception_02_on_a_coalesced_read_splits_it_and_the_plan_avoids_the_hole() {
    let service = WithHole {
        store: sim::store(),
        reads: Arc::new(Mutex::new(Vec::new())),
    };
    service
        .store
        .write_holding_registers(0, &[10, 11, 12, 13, 14, 15, 16, 17])
        .unwrap();
    let server = TcpServer::bind("127.0.0.1:0", Config::tcp())
        .unwrap()
        .spawn(service.clone())
        .unwrap();
    let points =
        PointMap::new([holding("a", 1, 3), holding("b", 1, 4), holding("c", 1, 7)]).unwrap();
    let mut config = DeviceConfig::new(
        "gappy",
        Link::tcp(server.local_addr().to_string()),
        1,
        points,
    )
    .with_interval(Duration::from_millis(30));
    // Gaps up to 3 registers may be read through: 3..=7 is planned as one read.
    config.limits.max_register_gap = 3;
    let engine = Engine::new();
    engine.add_device(config).unwrap();
    assert_eq!(engine.device("gappy").unwrap().plan.reads.len(), 1);
    wait_until("plan rebuilt and polled", Duration::from_secs(10), || {
        let device = engine.device("gappy").unwrap();
        device.counters.plan_rebuilds == 1 && device.counters.polls >= 4
    });
    let device = engine.device("gappy").unwrap();
    // Every point was read (the first poll's split included); only the hole is avoided.
    let values: Vec<_> = device.points.iter().map(|p| p.value.clone()).collect();
    assert_eq!(
        values,
        [
            Some(PointValue::U16(13)),
            Some(PointValue::U16(14)),
            Some(PointValue::U16(17))
        ]
    );
    assert!(device.points.iter().all(|p| p.quality == Quality::Good));
    let reads: Vec<(u16, u16)> = device
        .plan
        .reads
        .iter()
        .map(|read| (read.address, read.quantity))
        .collect();
    assert_eq!(reads, [(3, 2), (7, 1)]);
    assert!(
        device
            .plan
            .forbidden
            .contains(&(Table::HoldingRegisters, 5))
    );
    assert_eq!(device.counters.exceptions.get(&2), Some(&1));
    assert!(
        device
            .plan
            .to_string()
            .contains("FC 03 holding_registers 3..=4 (2): a, b")
    );
    engine.shutdown();
    // On the wire: the failed coalesced read once, the split, then the new plan only.
    let seen = service.reads.lock().unwrap().clone();
    assert_eq!(seen[0], (3, 5));
    assert_eq!(
        seen.iter().filter(|read| **read == (3, 5)).count(),
        1,
        "{seen:?}"
    );
    server.shutdown().unwrap();
}

#[test]
fn a_device_offline_at_start_is_connected_when_it_appears() {
    // A free port: bound, then released.
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let engine = Engine::new();
    engine
        .add_device(device(
            "late",
            Link::tcp(addr.to_string()),
            1,
            Duration::from_millis(50),
        ))
        .unwrap();
    wait_until("backing off", Duration::from_secs(5), || {
        matches!(status(&engine, "late"), Status::BackingOff { .. })
    });
    let Status::BackingOff { error, .. } = status(&engine, "late") else {
        unreachable!()
    };
    assert!(error.contains("cannot connect"), "{error}");
    assert!(matches!(
        engine.write("late", "setpoint", PointValue::U16(1)),
        Err(Error::NoAnswer { .. })
    ));
    let server = start_sim(&addr.to_string());
    wait_until("connected", Duration::from_secs(10), || {
        status(&engine, "late") == Status::Connected
    });
    assert_eq!(
        engine.device("late").unwrap().points[1].value,
        Some(PointValue::U16(100))
    );
    engine.shutdown();
    server.shutdown().unwrap();
}

#[test]
#[allow(clippy::too_many_lines)] // one scenario, step by step
fn writes_and_operator_actions_go_through_the_worker() {
    let store = sim::store();
    let server = TcpServer::bind("127.0.0.1:0", Config::tcp())
        .unwrap()
        .spawn(store.clone())
        .unwrap();
    let link = Link::tcp(server.local_addr().to_string());
    let mut config = device("dev", link, 1, Duration::from_millis(50));
    let mut points = config.points.points().to_vec();
    points.push(holding("beyond", 1, 10_000));
    points.push(
        Point::new(
            "scaled",
            1,
            Table::HoldingRegisters,
            20,
            PointKind::number(DataType::I16, Order::Abcd),
        )
        .with_scale(modbus_stack::value::Scale::new(0.1, 0.0).unwrap()),
    );
    config.points = PointMap::new(points).unwrap();
    config
        .writable
        .extend(["beyond".to_string(), "scaled".to_string()]);
    let engine = Engine::new();
    engine.add_device(config).unwrap();

    let sample = engine
        .write("dev", "setpoint", PointValue::U16(4242))
        .unwrap();
    assert_eq!(sample.value, Some(PointValue::U16(4242)));
    assert_eq!(store.holding_registers(0, 1).unwrap(), [4242]);
    // Scaled: engineering units in, raw register out, read back in engineering units.
    let sample = engine
        .write("dev", "scaled", PointValue::F64(-12.3))
        .unwrap();
    assert_eq!(
        store.holding_registers(20, 1).unwrap(),
        [u16::from_ne_bytes((-123i16).to_ne_bytes())]
    );
    assert_eq!(sample.value, Some(PointValue::F64(-12.3)));

    assert!(matches!(
        engine.write("dev", "ir100", PointValue::U16(1)),
        Err(Error::ReadOnly { .. })
    ));
    assert!(matches!(
        engine.write("dev", "setpoint", PointValue::Text("x".into())),
        Err(Error::Value { .. })
    ));
    assert!(matches!(
        engine.write("dev", "setpoint", PointValue::I32(70_000)),
        Err(Error::Value { .. })
    ));
    let Err(Error::Exception { exception, .. }) = engine.write("dev", "beyond", PointValue::U16(1))
    else {
        panic!("expected an exception");
    };
    assert_eq!(exception.code, ExceptionCode::IllegalDataAddress);
    assert!(matches!(
        engine.write("nope", "setpoint", PointValue::U16(1)),
        Err(Error::UnknownDevice { .. })
    ));

    engine.disable("dev").unwrap();
    assert_eq!(status(&engine, "dev"), Status::Disabled);
    assert!(matches!(
        engine.write("dev", "setpoint", PointValue::U16(1)),
        Err(Error::Disabled { .. })
    ));
    assert!(matches!(engine.connect("dev"), Err(Error::Disabled { .. })));
    let polls = engine.device("dev").unwrap().counters.polls;
    thread::sleep(Duration::from_millis(200));
    assert_eq!(
        engine.device("dev").unwrap().counters.polls,
        polls,
        "a disabled device is not polled"
    );
    engine.enable("dev").unwrap();
    wait_until("polled again", Duration::from_secs(5), || {
        engine.device("dev").unwrap().counters.polls > polls
    });
    engine.disconnect("dev").unwrap();
    assert_eq!(status(&engine, "dev"), Status::Disconnected);
    assert!(matches!(
        engine.write("dev", "setpoint", PointValue::U16(1)),
        Err(Error::Disconnected { .. })
    ));
    engine.connect("dev").unwrap();
    wait_until("reconnected", Duration::from_secs(5), || {
        matches!(
            status(&engine, "dev"),
            Status::Connected | Status::Error { .. }
        )
    });
    // A duplicate name is refused; so is a point on another unit id.
    let again = device(
        "dev",
        Link::tcp(server.local_addr().to_string()),
        1,
        Duration::from_secs(1),
    );
    assert!(matches!(
        engine.add_device(again),
        Err(Error::DuplicateDevice { .. })
    ));
    let mut wrong_unit = device(
        "other",
        Link::tcp(server.local_addr().to_string()),
        2,
        Duration::from_secs(1),
    );
    wrong_unit.unit_id = 3;
    assert!(matches!(
        engine.add_device(wrong_unit),
        Err(Error::InvalidDevice { .. })
    ));
    engine.shutdown();
    server.shutdown().unwrap();
}

#[test]
fn a_slow_subscriber_loses_events_but_never_slows_polling() {
    let server = start_sim("127.0.0.1:0");
    let engine = Engine::new();
    let stuck = engine.subscribe(1);
    engine
        .add_device(device(
            "dev",
            Link::tcp(server.local_addr().to_string()),
            1,
            Duration::from_millis(10),
        ))
        .unwrap();
    wait_until("50 polls", Duration::from_secs(10), || {
        engine.device("dev").unwrap().counters.polls >= 50
    });
    // Two samples and a report per poll reached a channel of one.
    assert!(stuck.dropped() >= 100, "{}", stuck.dropped());
    assert!(stuck.try_recv().is_some());
    engine.shutdown();
    assert!(stuck.recv().is_none(), "shutdown ends subscriptions");
    server.shutdown().unwrap();
}

#[test]
fn shutdown_is_prompt_with_a_request_in_flight() {
    // A server that accepts and never answers.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let engine = Engine::new();
    let mut config = device(
        "mute",
        Link::tcp(addr.to_string()),
        1,
        Duration::from_millis(50),
    );
    config.response_timeout = Duration::from_millis(500);
    engine.add_device(config).unwrap();
    let (socket, _) = listener.accept().unwrap();
    thread::sleep(Duration::from_millis(100));
    let started = Instant::now();
    engine.shutdown();
    // At most the response timeout in flight, plus scheduling.
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    drop(socket);
}
