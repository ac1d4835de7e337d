//! The client session's behaviour through its public API: matching, retries, timers, framing.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use super::*;
use crate::pdu::ExceptionCode;
use std::format;
use std::vec::Vec;

const READ: Request<'static> = Request::ReadHoldingRegisters {
    address: 10,
    quantity: 1,
};
const WRITE: Request<'static> = Request::WriteSingleRegister {
    address: 10,
    value: 7,
};

fn ms(millis: u64) -> Instant {
    Instant::from_millis(millis)
}

fn config(framing: Framing) -> ClientConfig {
    ClientConfig {
        retry: RetryPolicy {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(150),
            retry_writes: false,
        },
        ..ClientConfig::new(framing)
    }
}

fn transmit<const N: usize>(session: &mut ClientSession<N>) -> Vec<u8> {
    let mut out = [0u8; 600];
    let len = session.poll_transmit(&mut out).expect("an adu to send");
    out[..len].to_vec()
}

fn tcp_response(transaction_id: u16, unit_id: u8, pdu: &[u8]) -> Vec<u8> {
    let mut out = [0u8; 260];
    let len = tcp::encode(transaction_id, unit_id, pdu, &mut out).unwrap();
    out[..len].to_vec()
}

fn rtu_response(unit_id: u8, pdu: &[u8]) -> Vec<u8> {
    let mut out = [0u8; 256];
    let len = rtu::encode(unit_id, pdu, &mut out).unwrap();
    out[..len].to_vec()
}

/// The register value of the next event, which must be an FC 03 response.
fn register<const N: usize>(session: &mut ClientSession<N>) -> (TransactionId, u16) {
    match session.poll_event() {
        Some(Event::Response {
            id,
            response: Response::ReadHoldingRegisters { values },
            ..
        }) => (id, values.get(0).unwrap()),
        other => panic!("expected a register response, got {other:?}"),
    }
}

#[test]
fn write_times_out_once_at_its_deadline() {
    let mut session = ClientSession::<4>::new(config(Framing::Tcp));
    let id = session.start(ms(0), 1, &WRITE).unwrap();
    transmit(&mut session);
    assert_eq!(session.poll_timeout(), Some(ms(1000)));
    session.handle_timeout(ms(999));
    assert!(session.poll_event().is_none());
    session.handle_timeout(ms(1000));
    assert_eq!(
        session.poll_event(),
        Some(Event::Timeout { id, attempts: 1 })
    );
    assert_eq!(session.outstanding(), 0);
    assert!(session.poll_timeout().is_none());
}

#[test]
fn read_is_retried_with_capped_exponential_backoff() {
    let mut session = ClientSession::<4>::new(config(Framing::Tcp));
    let id = session.start(ms(0), 1, &READ).unwrap();
    let first = transmit(&mut session);
    session.handle_timeout(ms(1000));
    assert!(session.poll_event().is_none());
    // Backoff after attempt 1: 100 ms.
    assert_eq!(session.poll_timeout(), Some(ms(1100)));
    assert!(session.poll_transmit(&mut [0u8; 260]).is_none());
    session.handle_timeout(ms(1100));
    // The same request goes out again, under a fresh transaction id.
    assert_eq!(transmit(&mut session)[2..], first[2..]);
    assert_eq!(session.poll_timeout(), Some(ms(2100)));
    session.handle_timeout(ms(2100));
    // Backoff after attempt 2: 200 ms, capped at 150 ms.
    assert_eq!(session.poll_timeout(), Some(ms(2250)));
    session.handle_timeout(ms(2250));
    transmit(&mut session);
    session.handle_timeout(ms(3250));
    assert_eq!(
        session.poll_event(),
        Some(Event::Timeout { id, attempts: 3 })
    );
}

#[test]
fn retry_answered_late_completes() {
    let mut session = ClientSession::<1>::new(config(Framing::Rtu));
    session.start(ms(0), 5, &READ).unwrap();
    transmit(&mut session);
    session.handle_timeout(ms(1000));
    session.handle_timeout(ms(1100));
    transmit(&mut session);
    session.handle_input(ms(1150), &rtu_response(5, &[0x03, 0x02, 0x00, 0x2A]));
    assert_eq!(register(&mut session).1, 42);
}

#[test]
fn stale_transaction_is_discarded_and_the_right_one_returned() {
    let mut cfg = config(Framing::Tcp);
    cfg.retry = RetryPolicy::NONE;
    let mut session = ClientSession::<4>::new(cfg);
    let old = session.start(ms(0), 1, &READ).unwrap();
    transmit(&mut session);
    session.handle_timeout(ms(1000));
    assert_eq!(
        session.poll_event(),
        Some(Event::Timeout {
            id: old,
            attempts: 1
        })
    );
    let new = session.start(ms(1000), 1, &READ).unwrap();
    transmit(&mut session);
    let mut bytes = tcp_response(old.0, 1, &[0x03, 0x02, 0xDE, 0xAD]);
    bytes.extend(tcp_response(new.0, 1, &[0x03, 0x02, 0x00, 0x01]));
    session.handle_input(ms(1001), &bytes);
    assert_eq!(
        session.poll_event(),
        Some(Event::Discarded {
            reason: DiscardReason::UnknownTransaction {
                transaction_id: old.0
            }
        })
    );
    assert_eq!(register(&mut session), (new, 1));
    assert!(session.poll_event().is_none());
}

#[test]
fn pipelined_responses_complete_out_of_order() {
    let mut session = ClientSession::<16>::new(config(Framing::Tcp));
    let ids: Vec<_> = (0..3u16)
        .map(|address| {
            let request = Request::ReadHoldingRegisters {
                address,
                quantity: 1,
            };
            session.start(ms(0), 9, &request).unwrap()
        })
        .collect();
    for (i, id) in ids.iter().enumerate() {
        let adu = transmit(&mut session);
        assert_eq!(u16::from_be_bytes([adu[0], adu[1]]), id.0, "request {i}");
    }
    assert!(session.poll_transmit(&mut [0u8; 260]).is_none());
    for &i in &[2usize, 0, 1] {
        let value = u16::try_from(100 + i).unwrap();
        let [hi, lo] = value.to_be_bytes();
        // Split every response in two chunks: TCP is a byte stream.
        let bytes = tcp_response(ids[i].0, 9, &[0x03, 0x02, hi, lo]);
        session.handle_input(ms(5), &bytes[..4]);
        session.handle_input(ms(5), &bytes[4..]);
    }
    assert_eq!(register(&mut session), (ids[2], 102));
    assert_eq!(register(&mut session), (ids[0], 100));
    assert_eq!(register(&mut session), (ids[1], 101));
    assert_eq!(session.outstanding(), 0);
}

#[test]
fn slots_freed_out_of_order_are_reused_and_matching_still_holds() {
    let mut session = ClientSession::<3>::new(config(Framing::Tcp));
    let read = |address| Request::ReadHoldingRegisters {
        address,
        quantity: 1,
    };
    let answer = |session: &mut ClientSession<3>, id: TransactionId, value: u16| {
        let [hi, lo] = value.to_be_bytes();
        session.handle_input(ms(1), &tcp_response(id.0, 9, &[0x03, 0x02, hi, lo]));
    };
    let ids: Vec<_> = (0..3)
        .map(|address| session.start(ms(0), 9, &read(address)).unwrap())
        .collect();
    for _ in &ids {
        transmit(&mut session);
    }
    assert!(matches!(
        session.start(ms(0), 9, &read(9)),
        Err(ClientError::Busy { outstanding: 3 })
    ));
    // Free the last slot, then the first: the table is used from the front again.
    assert!(session.cancel(ids[2]));
    answer(&mut session, ids[0], 10);
    assert_eq!(register(&mut session), (ids[0], 10));
    assert_eq!(session.outstanding(), 1);
    let late = session.start(ms(2), 9, &read(3)).unwrap();
    let last = session.start(ms(2), 9, &read(4)).unwrap();
    assert!(session.start(ms(2), 9, &read(5)).is_err());
    transmit(&mut session);
    transmit(&mut session);
    // The cancelled request's answer is a stray; the others match whatever slot they hold.
    answer(&mut session, ids[2], 12);
    answer(&mut session, last, 14);
    answer(&mut session, ids[1], 11);
    answer(&mut session, late, 13);
    assert_eq!(
        session.poll_event(),
        Some(Event::Discarded {
            reason: DiscardReason::UnknownTransaction {
                transaction_id: ids[2].0
            }
        })
    );
    assert_eq!(register(&mut session), (last, 14));
    assert_eq!(register(&mut session), (ids[1], 11));
    assert_eq!(register(&mut session), (late, 13));
    assert_eq!(session.poll_event(), None);
    assert_eq!(session.outstanding(), 0);
    assert_eq!(session.poll_timeout(), None);
}

#[test]
fn tcp_input_gives_the_same_events_however_it_is_cut() {
    // Two answers with a foreign-protocol ADU between them, delivered whole, in two pieces
    // cut anywhere, and byte by byte: whole ADUs are matched in place, partial ones go
    // through the decoder, and the events must not tell the difference.
    let run = |chunks: &[&[u8]]| {
        let mut session = ClientSession::<4>::new(config(Framing::Tcp));
        let read = |address| Request::ReadHoldingRegisters {
            address,
            quantity: 1,
        };
        let first = session.start(ms(0), 9, &read(0)).unwrap();
        let second = session.start(ms(0), 9, &read(1)).unwrap();
        transmit(&mut session);
        transmit(&mut session);
        for chunk in chunks {
            session.handle_input(ms(1), chunk);
        }
        let mut events = Vec::new();
        while let Some(event) = session.poll_event() {
            events.push(format!("{event:?}"));
        }
        assert_eq!(session.outstanding(), 0, "{chunks:?}");
        (first, second, events)
    };
    let mut stream = tcp_response(1, 9, &[0x03, 0x02, 0x00, 0x0B]);
    let mut foreign = tcp_response(7, 9, &[0x03, 0x02, 0x00, 0x0C]);
    foreign[3] = 1;
    stream.extend_from_slice(&foreign);
    stream.extend_from_slice(&tcp_response(0, 9, &[0x03, 0x02, 0x00, 0x0A]));
    let (first, second, whole) = run(&[&stream]);
    assert_eq!((first, second), (TransactionId(0), TransactionId(1)));
    assert_eq!(whole.len(), 3, "{whole:?}");
    assert!(whole[0].contains("ProtocolId"), "{whole:?}");
    assert!(whole[1].contains("TransactionId(1)") && whole[1].contains("11"));
    assert!(whole[2].contains("TransactionId(0)") && whole[2].contains("10"));
    for cut in 0..=stream.len() {
        let (head, tail) = stream.split_at(cut);
        assert_eq!(run(&[head, tail]).2, whole, "cut at {cut}");
    }
    let bytes: Vec<&[u8]> = stream.chunks(1).collect();
    assert_eq!(run(&bytes).2, whole);
}

#[test]
fn tcp_mismatch_with_right_transaction_is_invalid() {
    let mut session = ClientSession::<4>::new(config(Framing::Tcp));
    let id = session.start(ms(0), 1, &WRITE).unwrap();
    transmit(&mut session);
    // Echo of another value.
    session.handle_input(
        ms(1),
        &tcp_response(id.0, 1, &[0x06, 0x00, 0x0A, 0x00, 0x08]),
    );
    assert!(matches!(
        session.poll_event(),
        Some(Event::InvalidResponse { id: got, error: DecodeError::EchoMismatch { .. } }) if got == id
    ));
}

#[test]
fn exception_is_a_response() {
    let mut session = ClientSession::<4>::new(config(Framing::Tcp));
    let id = session.start(ms(0), 1, &READ).unwrap();
    transmit(&mut session);
    session.handle_input(ms(1), &tcp_response(id.0, 1, &[0x83, 0x02]));
    let Some(Event::Response { response, .. }) = session.poll_event() else {
        panic!()
    };
    assert_eq!(
        response.exception_code(),
        Some(ExceptionCode::IllegalDataAddress)
    );
}

#[test]
fn custom_request_with_forbidden_data_gets_its_exception() {
    // FC 03 with quantity 126, only expressible as Custom: the server's 03 is an exception
    // response (not an invalid one), on TCP and on a serial line.
    let data = [0x00, 0x00, 0x00, 0x7E];
    let request = Request::Custom {
        function: FunctionCode::ReadHoldingRegisters,
        data: &data,
    };
    for framing in [Framing::Tcp, Framing::Rtu] {
        let mut session = ClientSession::<1>::new(config(framing));
        let id = session.start(ms(0), 1, &request).unwrap();
        transmit(&mut session);
        let adu = if framing == Framing::Tcp {
            tcp_response(id.0, 1, &[0x83, 0x03])
        } else {
            rtu_response(1, &[0x83, 0x03])
        };
        session.handle_input(ms(1), &adu);
        let Some(Event::Response { response, .. }) = session.poll_event() else {
            panic!("{framing:?}: no response event")
        };
        assert_eq!(
            response.exception_code(),
            Some(ExceptionCode::IllegalDataValue)
        );
    }
}

#[test]
fn serial_discards_foreign_unit_crc_error_and_late_answer_then_accepts() {
    let timing = rtu::Timing::for_line(19_200, rtu::Parity::Even, rtu::StopBits::One);
    let mut session = ClientSession::<1>::new(ClientConfig {
        rtu_timing: Some(timing),
        ..config(Framing::Rtu)
    });
    session.start(ms(0), 5, &READ).unwrap();
    assert_eq!(
        session.start(ms(0), 5, &READ),
        Err(ClientError::Busy { outstanding: 1 })
    );
    let adu = transmit(&mut session);
    assert_eq!(adu[..2], [5, 0x03]);
    session.handle_input(ms(10), &rtu_response(6, &[0x03, 0x02, 0x00, 0x01]));
    assert_eq!(
        session.poll_event(),
        Some(Event::Discarded {
            reason: DiscardReason::ForeignUnit {
                expected: 5,
                actual: 6
            }
        })
    );
    // A late answer to an earlier write: right unit, wrong function.
    session.handle_input(ms(20), &rtu_response(5, &[0x06, 0x00, 0x0A, 0x00, 0x07]));
    assert!(matches!(
        session.poll_event(),
        Some(Event::Discarded {
            reason: DiscardReason::Mismatch(DecodeError::UnexpectedFunction { .. })
        })
    ));
    let mut corrupt = rtu_response(5, &[0x03, 0x02, 0x00, 0x02]);
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0xFF;
    session.handle_input(ms(30), &corrupt);
    // t3.5 of silence ends the corrupted frame.
    session.handle_timeout(ms(35));
    assert!(matches!(
        session.poll_event(),
        Some(Event::Discarded {
            reason: DiscardReason::Frame(_)
        })
    ));
    while session.poll_event().is_some() {}
    session.handle_input(ms(40), &rtu_response(5, &[0x03, 0x02, 0x00, 0x03]));
    let mut value = None;
    while let Some(event) = session.poll_event() {
        if let Event::Response {
            response: Response::ReadHoldingRegisters { values },
            ..
        } = event
        {
            value = values.get(0);
        }
    }
    assert_eq!(value, Some(3));
}

#[test]
fn ascii_round_trip() {
    let mut session = ClientSession::<1>::new(config(Framing::Ascii));
    session.start(ms(0), 1, &READ).unwrap();
    assert_eq!(transmit(&mut session), b":0103000A0001F1\r\n");
    session.handle_input(ms(1), b":010302002AD0\r\n");
    assert_eq!(register(&mut session).1, 42);
}

#[test]
fn broadcast_completes_after_turnaround_without_reply() {
    let mut session = ClientSession::<1>::new(config(Framing::RtuOverTcp));
    assert_eq!(
        session.start(ms(0), 0, &READ),
        Err(ClientError::BroadcastRead {
            function: FunctionCode::ReadHoldingRegisters
        })
    );
    let id = session.start(ms(0), 0, &WRITE).unwrap();
    transmit(&mut session);
    assert_eq!(session.poll_timeout(), Some(ms(100)));
    session.handle_timeout(ms(99));
    assert!(session.poll_event().is_none());
    // The line is still occupied by the broadcast.
    assert!(session.start(ms(99), 1, &READ).is_err());
    session.handle_timeout(ms(100));
    assert_eq!(session.poll_event(), Some(Event::BroadcastDone { id }));
    assert!(session.start(ms(100), 1, &READ).is_ok());
}

#[test]
fn unit_zero_on_tcp_is_an_ordinary_request() {
    let mut session = ClientSession::<4>::new(config(Framing::Tcp));
    let id = session.start(ms(0), 0, &READ).unwrap();
    transmit(&mut session);
    assert_eq!(session.poll_timeout(), Some(ms(1000)));
    session.handle_input(ms(1), &tcp_response(id.0, 0, &[0x03, 0x02, 0x00, 0x05]));
    assert_eq!(register(&mut session), (id, 5));
}

#[test]
fn disconnect_retries_reads_and_aborts_writes() {
    let mut session = ClientSession::<4>::new(config(Framing::Tcp));
    let read = session.start(ms(0), 1, &READ).unwrap();
    let write = session.start(ms(0), 1, &WRITE).unwrap();
    transmit(&mut session);
    transmit(&mut session);
    session.handle_disconnect(ms(10));
    assert_eq!(
        session.poll_event(),
        Some(Event::Aborted {
            id: write,
            cause: AbortCause::Disconnected
        })
    );
    assert!(session.poll_event().is_none());
    session.handle_timeout(ms(110));
    let retry = transmit(&mut session);
    session.handle_input(
        ms(120),
        &tcp_response(wire_id(&retry), 1, &[0x03, 0x02, 0x00, 0x09]),
    );
    assert_eq!(register(&mut session), (read, 9));
}

#[test]
fn broken_mbap_length_aborts_and_asks_for_reconnect() {
    let mut session = ClientSession::<4>::new(config(Framing::Tcp));
    let id = session.start(ms(0), 1, &READ).unwrap();
    transmit(&mut session);
    session.handle_input(ms(1), &[0, 0, 0, 0, 0x01, 0x00, 1, 3]);
    assert!(session.needs_reconnect());
    assert!(matches!(
        session.poll_event(),
        Some(Event::Discarded {
            reason: DiscardReason::Frame(FrameError::LengthField { .. })
        })
    ));
    assert!(matches!(session.poll_event(), Some(Event::Aborted { id: got, .. }) if got == id));
    session.handle_disconnect(ms(2));
    assert!(!session.needs_reconnect());
}

#[test]
fn no_response_request_completes_when_sent() {
    let mut session = ClientSession::<1>::new(config(Framing::Rtu));
    let request = Request::Diagnostics(crate::pdu::DiagnosticsRequest::ForceListenOnlyMode);
    let id = session.start(ms(0), 3, &request).unwrap();
    transmit(&mut session);
    assert_eq!(session.poll_event(), Some(Event::Sent { id }));
}

#[test]
fn transaction_ids_skip_outstanding_ones_and_wrap() {
    let mut session = ClientSession::<2>::new(config(Framing::Tcp));
    session.ids.counter = u16::MAX;
    assert_eq!(session.start(ms(0), 1, &READ), Ok(TransactionId(u16::MAX)));
    assert_eq!(session.start(ms(0), 1, &READ), Ok(TransactionId(0)));
    assert_eq!(
        session.start(ms(0), 1, &READ),
        Err(ClientError::Busy { outstanding: 2 })
    );
    assert!(session.cancel(TransactionId(0)));
    session.ids.counter = u16::MAX;
    // u16::MAX is still outstanding.
    assert_eq!(session.start(ms(0), 1, &READ), Ok(TransactionId(0)));
}

#[test]
fn seeded_transaction_ids_are_a_permutation() {
    for seed in [1, 0xDEAD_BEEF, u32::MAX] {
        let mut ids = TransactionIds::seeded(seed);
        let mut seen = std::vec![false; 65_536];
        let first = ids.next();
        seen[usize::from(first)] = true;
        let mut steps_of_one = 0;
        let mut previous = first;
        for _ in 1..65_536 {
            let id = ids.next();
            assert!(!seen[usize::from(id)], "seed {seed:#x}: {id} came twice");
            seen[usize::from(id)] = true;
            steps_of_one += usize::from(id == previous.wrapping_add(1));
            previous = id;
        }
        // Not a counter in disguise: an answer for "the next id" almost never fits.
        assert!(
            steps_of_one < 64,
            "seed {seed:#x}: {steps_of_one} steps of +1"
        );
    }
}

/// The MBAP transaction id of an ADU.
fn wire_id(adu: &[u8]) -> u16 {
    u16::from_be_bytes([adu[0], adu[1]])
}

#[test]
fn a_retry_goes_out_under_a_fresh_transaction_id_and_the_old_one_is_refused() {
    let mut session = ClientSession::<4>::new(config(Framing::Tcp));
    let id = session.start(ms(0), 1, &READ).unwrap();
    let first = transmit(&mut session);
    assert_eq!(wire_id(&first), id.0);
    session.handle_timeout(ms(1000));
    session.handle_timeout(ms(1100));
    let retry = transmit(&mut session);
    assert_ne!(wire_id(&retry), id.0);
    assert_eq!(first[2..], retry[2..], "the same request otherwise");
    // The first attempt's answer comes late: refused, the retry's is taken.
    session.handle_input(ms(1150), &tcp_response(id.0, 1, &[0x03, 0x02, 0xBA, 0xD0]));
    session.handle_input(
        ms(1160),
        &tcp_response(wire_id(&retry), 1, &[0x03, 0x02, 0x00, 0x07]),
    );
    assert_eq!(
        session.poll_event(),
        Some(Event::Discarded {
            reason: DiscardReason::UnknownTransaction {
                transaction_id: id.0
            }
        })
    );
    // The event carries the id `start` returned.
    assert_eq!(register(&mut session), (id, 7));
}

#[test]
fn a_frame_begun_before_its_request_was_sent_is_never_its_answer() {
    // Sequential ids: the next request's id is known in advance. Part of a frame with that
    // id arrives while the first request waits; the second request goes out; the second's
    // real answer then completes the early part.
    let mut session = ClientSession::<4>::new(config(Framing::Tcp));
    let first = session.start(ms(0), 1, &READ).unwrap();
    transmit(&mut session);
    let forged = tcp_response(first.0 + 1, 1, &[0x03, 0x04, 0xEE, 0xEE, 0xEE, 0xEE]);
    session.handle_input(ms(1), &forged[..9]);
    assert!(!session.needs_reconnect(), "the first request still waits");
    let second = session.start(ms(2), 1, &READ).unwrap();
    assert_eq!(second.0, first.0 + 1);
    transmit(&mut session);
    let answer = tcp_response(second.0, 1, &[0x03, 0x02, 0x00, 0x2A]);
    session.handle_input(ms(3), &answer);
    let mut events = Vec::new();
    while let Some(event) = session.poll_event() {
        events.push(format!("{event:?}"));
    }
    assert!(
        events.iter().any(|e| e.contains("StartedBeforeRequest")),
        "{events:?}"
    );
    assert!(!events.iter().any(|e| e.contains("Response")), "{events:?}");
}

#[test]
fn part_of_a_frame_held_at_a_response_deadline_asks_for_a_new_connection() {
    let mut session = ClientSession::<4>::new(config(Framing::Tcp));
    let id = session.start(ms(0), 1, &READ).unwrap();
    transmit(&mut session);
    let answer = tcp_response(id.0, 1, &[0x03, 0x02, 0x12, 0x34]);
    session.handle_input(ms(5), &answer[..8]);
    session.handle_timeout(ms(999));
    assert!(!session.needs_reconnect());
    session.handle_timeout(ms(1000));
    assert!(session.needs_reconnect());
    assert_eq!(
        session.poll_event(),
        Some(Event::Discarded {
            reason: DiscardReason::Frame(FrameError::Incomplete { len: 8 })
        })
    );
    // The driver reconnects; the read is retried on the new connection and answered.
    session.handle_disconnect(ms(1001));
    assert!(!session.needs_reconnect());
    session.handle_timeout(ms(1100));
    let retry = transmit(&mut session);
    session.handle_input(
        ms(1110),
        &tcp_response(wire_id(&retry), 1, &[0x03, 0x02, 0x00, 0x05]),
    );
    assert_eq!(register(&mut session), (id, 5));
}

#[test]
fn part_of_a_frame_nobody_waits_for_asks_for_a_new_connection() {
    let mut session = ClientSession::<4>::new(config(Framing::Tcp));
    let id = session.start(ms(0), 1, &READ).unwrap();
    transmit(&mut session);
    let mut bytes = tcp_response(id.0, 1, &[0x03, 0x02, 0x00, 0x01]);
    bytes.extend_from_slice(&[0x00, 0x07, 0x00]);
    session.handle_input(ms(1), &bytes);
    assert!(session.needs_reconnect());
    assert_eq!(
        session.poll_event(),
        Some(Event::Discarded {
            reason: DiscardReason::Frame(FrameError::Incomplete { len: 3 })
        })
    );
    assert_eq!(register(&mut session), (id, 1));
}

#[test]
fn invalid_request_is_rejected() {
    let mut session = ClientSession::<1>::new(config(Framing::Tcp));
    let request = Request::ReadHoldingRegisters {
        address: 0,
        quantity: 126,
    };
    assert!(matches!(
        session.start(ms(0), 1, &request),
        Err(ClientError::InvalidRequest(_))
    ));
    assert_eq!(session.outstanding(), 0);
}
