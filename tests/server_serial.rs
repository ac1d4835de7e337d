//! RTU and ASCII servers over a pseudo-terminal pair (`TTYPort::pair`): raw frames in, raw
//! frames out, silence for broadcasts, foreign unit ids and bad CRC/LRC.
//!
//! Frames that must be ignored are followed by a pause of well over t3.5 before the next frame,
//! so the line is idle again as on a real bus; nothing asserts on timing.
#![cfg(all(feature = "serial", unix))]

mod support;

use std::io::{Read, Write};
use std::time::Duration as StdDuration;

use modbus_stack::frame::rtu::{Parity, StopBits, Timing};
use modbus_stack::pdu::DiagnosticCounter;
use modbus_stack::server::serial::{SerialServer, SpawnedServer};
use modbus_stack::session::server::ServerConfig;
use modbus_stack::sim;
use serialport::{SerialPort, TTYPort};
use std::time::Duration;
use support::{crc16_modbus, hex};

/// A pause longer than the test line's t3.5, so the next frame starts on an idle line.
const IDLE_GAP: StdDuration = StdDuration::from_millis(150);

struct Running {
    master: TTYPort,
    server: SpawnedServer,
}

impl Running {
    fn start(session: ServerConfig) -> Self {
        let (mut master, slave) = TTYPort::pair().expect("pty pair");
        master
            .set_timeout(StdDuration::from_secs(10))
            .expect("timeout");
        let server = SerialServer::from_port(Box::new(slave), session)
            .and_then(|server| server.spawn(sim::unit_map()))
            .expect("serve");
        Self { master, server }
    }

    fn send(&mut self, frame: &[u8]) {
        self.master.write_all(frame).unwrap();
        self.master.flush().unwrap();
    }

    fn read(&mut self, len: usize) -> Vec<u8> {
        let mut out = vec![0u8; len];
        self.master.read_exact(&mut out).expect("response");
        out
    }

    fn read_line(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut byte = [0u8; 1];
        while out.last() != Some(&b'\n') && out.len() < 600 {
            self.master.read_exact(&mut byte).expect("response");
            out.push(byte[0]);
        }
        out
    }

    fn stop(self) -> SerialServer {
        self.server.shutdown().expect("server thread")
    }
}

fn rtu(bytes: &str) -> Vec<u8> {
    let mut frame = hex(bytes);
    let crc = crc16_modbus(&frame);
    frame.extend_from_slice(&crc);
    frame
}

fn ascii(bytes: &str) -> Vec<u8> {
    let bytes = hex(bytes);
    let lrc = bytes
        .iter()
        .fold(0u8, |sum, byte| sum.wrapping_add(*byte))
        .wrapping_neg();
    let mut frame = vec![b':'];
    for byte in bytes.iter().chain([&lrc]) {
        frame.extend_from_slice(format!("{byte:02X}").as_bytes());
    }
    frame.extend_from_slice(b"\r\n");
    frame
}

fn test_timing() -> Timing {
    // 19200 baud timing widened for a loaded test machine: a pty delivers bytes in bursts
    // separated by scheduling delays, not by character times.
    Timing::for_line(19_200, Parity::Even, StopBits::One)
        .with_burst_tolerance(Duration::from_millis(20))
}

#[test]
fn rtu_server_answers_its_unit_with_the_right_crc() {
    let mut line = Running::start(ServerConfig::rtu(1, test_timing()));
    // The specification's FC 03 request; the simulator's registers hold 0.
    line.send(&hex("01 03 00 6B 00 03 74 17"));
    assert_eq!(line.read(11), rtu("01 03 06 00 00 00 00 00 00"));
    line.send(&rtu("01 04 00 07 00 02"));
    assert_eq!(line.read(9), rtu("01 04 04 00 07 00 08"));
    // An exception is answered too.
    line.send(&rtu("01 04 27 10 00 01"));
    assert_eq!(line.read(5), rtu("01 84 02"));
    let server = line.stop();
    assert_eq!(
        server
            .session()
            .pdu_server()
            .counter(DiagnosticCounter::BusMessage),
        3
    );
}

#[test]
fn rtu_server_is_silent_on_broadcast_foreign_unit_and_bad_crc() {
    let mut line = Running::start(ServerConfig::rtu(1, test_timing()));
    // Broadcast write: executed, not answered.
    line.send(&rtu("00 06 00 09 00 2A"));
    std::thread::sleep(IDLE_GAP);
    // Another unit's request: ignored.
    line.send(&rtu("02 04 00 01 00 01"));
    std::thread::sleep(IDLE_GAP);
    // A corrupted CRC: ignored.
    let mut corrupted = rtu("01 04 00 01 00 01");
    corrupted[7] ^= 0x55;
    line.send(&corrupted);
    std::thread::sleep(IDLE_GAP);
    // The first answer on the line is this one, and it shows the broadcast was executed.
    line.send(&rtu("01 03 00 09 00 01"));
    assert_eq!(line.read(7), rtu("01 03 02 00 2A"));
    let server = line.stop();
    let session = server.session().pdu_server();
    assert_eq!(
        session.counter(DiagnosticCounter::BusCommunicationError),
        1,
        "the bad CRC is counted"
    );
    // Broadcast, foreign unit and the read: every frame with a good CRC counts (CPT1).
    assert_eq!(session.counter(DiagnosticCounter::BusMessage), 3);
}

#[test]
fn ascii_server_answers_its_unit() {
    let mut line = Running::start(ServerConfig::ascii(1));
    // The reference's worked example frame; registers 0x6B.. hold 0.
    line.send(b":0103006B00038E\r\n");
    assert_eq!(line.read_line(), ascii("01 03 06 00 00 00 00 00 00"));
    line.send(&ascii("01 04 00 07 00 02"));
    assert_eq!(line.read_line(), ascii("01 04 04 00 07 00 08"));
    line.stop();
}

#[test]
fn ascii_server_is_silent_on_broadcast_foreign_unit_and_bad_lrc() {
    let mut line = Running::start(ServerConfig::ascii(1));
    line.send(&ascii("00 06 00 09 00 2A"));
    line.send(&ascii("11 04 00 01 00 01"));
    // LRC off by one.
    line.send(b":0104000100010A\r\n");
    line.send(&ascii("01 03 00 09 00 01"));
    assert_eq!(line.read_line(), ascii("01 03 02 00 2A"));
    let server = line.stop();
    assert_eq!(
        server
            .session()
            .pdu_server()
            .counter(DiagnosticCounter::BusCommunicationError),
        1
    );
}
