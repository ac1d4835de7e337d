//! RTU and ASCII clients over a pseudo-terminal pair against a test server loop on the other
//! end (feature `serial`): wrong unit ids and corrupted frames are ignored, broadcasts are not
//! awaited. Loops are bounded; no assertion depends on timing.
#![cfg(all(feature = "serial", unix))]

use std::io::{Read, Write};
use std::thread;
use std::time::Duration;

use modbus_stack::client::{Client, Error};
use modbus_stack::frame::{Framing, Role, Status, ascii, rtu};
use modbus_stack::server::{DataStore, UnitMap};
use modbus_stack::session::client::RetryPolicy;
use modbus_stack::session::server::{PduServer, Reply};
use modbus_stack::transport::serial::{self, SerialTransport};
use serialport::{SerialPort, TTYPort};

/// How the test server misbehaves.
#[derive(Clone, Copy)]
enum Quirk {
    None,
    /// Before each answer, the same answer from another unit id.
    ForeignUnitFirst,
    /// The first answer of all has a corrupted check value.
    CorruptFirst,
}

/// Serves unit 1 from `store` on `port` with `framing` until the other end closes (bounded).
fn serve(mut port: TTYPort, store: DataStore, framing: Framing, quirk: Quirk) {
    port.set_timeout(Duration::from_millis(50)).unwrap();
    let mut map = UnitMap::serving_all(store);
    let mut server = PduServer::serial(1);
    let rules = rtu::LengthRules::new();
    let mut ascii_decoder = ascii::Decoder::new(ascii::Config::new());
    let mut pending = Vec::new();
    let mut buf = [0u8; 600];
    let mut corrupted = false;
    // At most 1200 idle reads of 50 ms: the thread ends even if the client never closes.
    let mut idle = 0;
    while idle < 1200 {
        let n = match port.read(&mut buf) {
            Ok(n) if n > 0 => n,
            Ok(_) => {
                idle += 1;
                continue;
            }
            Err(error) if error.kind() == std::io::ErrorKind::TimedOut => {
                idle += 1;
                continue;
            }
            Err(_) => return,
        };
        let mut requests = Vec::new();
        if framing == Framing::Rtu {
            pending.extend_from_slice(&buf[..n]);
            loop {
                match rtu::parse(&pending, Role::Request, &rules) {
                    Status::Complete { frame, consumed } => {
                        requests.push((frame.unit_id(), frame.pdu().to_vec()));
                        pending.drain(..consumed);
                    }
                    Status::Invalid { discard, .. } => {
                        pending.drain(..discard);
                    }
                    Status::Incomplete(_) => break,
                }
            }
        } else {
            let mut chars = &buf[..n];
            while !chars.is_empty() {
                let taken = ascii_decoder.push(modbus_stack::time::Instant::now(), chars);
                chars = &chars[taken..];
                while let Some(frame) = ascii_decoder.poll_frame() {
                    if let Ok(adu) = frame {
                        requests.push((adu.unit_id(), adu.pdu().to_vec()));
                    }
                }
            }
        }
        for (unit_id, pdu) in requests {
            let mut out = [0u8; 253];
            let Reply::Send(len) = server.respond(unit_id, &pdu, &mut map, &mut out) else {
                continue;
            };
            let encode = |unit: u8, adu: &mut [u8]| match framing {
                Framing::Rtu => rtu::encode(unit, &out[..len], adu).unwrap(),
                _ => ascii::encode(unit, &out[..len], adu).unwrap(),
            };
            let mut adu = [0u8; 600];
            if matches!(quirk, Quirk::ForeignUnitFirst) {
                let n = encode(unit_id + 1, &mut adu);
                port.write_all(&adu[..n]).unwrap();
            }
            let n = encode(unit_id, &mut adu);
            if matches!(quirk, Quirk::CorruptFirst) && !corrupted {
                corrupted = true;
                adu[n - 3] ^= 0x01;
            }
            port.write_all(&adu[..n]).unwrap();
        }
    }
}

fn client(framing: Framing, quirk: Quirk) -> (Client<SerialTransport>, DataStore) {
    let store = DataStore::builder().holding_registers(20).coils(20).build();
    let (server_end, client_end) = TTYPort::pair().unwrap();
    let served = store.clone();
    thread::spawn(move || serve(server_end, served, framing, quirk));
    let transport =
        SerialTransport::from_port(Box::new(client_end), serial::Config::new(115_200), framing)
            .unwrap();
    let mut client = Client::new(transport);
    client.set_response_timeout(Duration::from_millis(500));
    client.set_turnaround_delay(Duration::from_millis(20));
    (client, store)
}

#[test]
fn rtu_round_trip_and_silent_foreign_unit() {
    let (mut client, _) = client(Framing::Rtu, Quirk::None);
    client.write_multiple_registers(1, 2, &[5, 6, 7]).unwrap();
    assert_eq!(client.read_holding_registers(1, 2, 3).unwrap(), [5, 6, 7]);
    client.write_single_coil(1, 3, true).unwrap();
    assert_eq!(client.read_coils(1, 2, 2).unwrap(), [false, true]);
    // Unit 9 does not exist on this line: nobody answers.
    client.set_retry_policy(RetryPolicy::NONE);
    assert!(matches!(
        client.read_holding_registers(9, 0, 1),
        Err(Error::Timeout { attempts: 1 })
    ));
    // The line is usable again afterwards.
    assert_eq!(client.read_holding_registers(1, 2, 1).unwrap(), [5]);
}

#[test]
fn rtu_answer_from_wrong_unit_is_ignored() {
    let (mut client, store) = client(Framing::Rtu, Quirk::ForeignUnitFirst);
    store.write_holding_registers(0, &[11]).unwrap();
    assert_eq!(client.read_holding_registers(1, 0, 1).unwrap(), [11]);
}

#[test]
fn rtu_corrupted_answer_is_ignored_and_the_read_retried() {
    let (mut client, store) = client(Framing::Rtu, Quirk::CorruptFirst);
    store.write_holding_registers(0, &[12]).unwrap();
    client.set_retry_policy(RetryPolicy {
        max_attempts: 3,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(10),
        retry_writes: false,
    });
    assert_eq!(client.read_holding_registers(1, 0, 1).unwrap(), [12]);
}

#[test]
fn rtu_broadcast_is_not_awaited() {
    let (mut client, store) = client(Framing::Rtu, Quirk::None);
    // Were the broadcast awaited, the call would take a minute.
    client.set_response_timeout(Duration::from_secs(60));
    client.write_single_register(0, 4, 99).unwrap();
    assert_eq!(client.read_holding_registers(1, 4, 1).unwrap(), [99]);
    assert_eq!(store.holding_registers(4, 1), Ok(vec![99]));
}

#[test]
fn ascii_round_trip_and_foreign_unit_ignored() {
    let (mut client, _) = client(Framing::Ascii, Quirk::ForeignUnitFirst);
    client.write_single_register(1, 1, 0xBEEF).unwrap();
    assert_eq!(client.read_holding_registers(1, 1, 1).unwrap(), [0xBEEF]);
}
