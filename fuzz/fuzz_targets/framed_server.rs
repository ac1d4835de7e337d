//! Drives the framed server session (`ServerSession`) at the byte level, as a driver would:
//! arbitrary bytes in arbitrary chunks at arbitrary times, timers served when due, answers
//! drained, over every framing.
//!
//! The first byte picks the framing and the unit; then each record is `[dt, len, bytes...]`:
//! advance the clock by `dt` (a quarter millisecond each, so RTU silences both do and do not
//! end frames), pass `bytes`. Oracles: no panic; `handle_input` takes no more than it is given
//! and the driver loop ends (every round takes bytes or yields an answer); every answer fits
//! the framing's largest ADU and decodes, in the response direction, as exactly one whole frame
//! of that framing.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use modbus_stack::frame::rtu::{Parity, StopBits, Timing};
use modbus_stack::frame::{Decoder, Framing, Role, check};
use modbus_stack::server::UnitMap;
use modbus_stack::session::server::{ServerConfig, ServerSession};
use modbus_stack::sim;
use modbus_stack::time::Instant;

fn model() -> UnitMap {
    static MODEL: OnceLock<UnitMap> = OnceLock::new();
    MODEL.get_or_init(sim::unit_map).clone()
}

/// Checks one answer: it is one whole frame of `framing`, read as a response. RTU answers are
/// checked by their CRC, since length rules alone cannot frame every response (an FC 08 echo
/// has any length) and a line decoder would need the silence after it.
fn check_answer(framing: Framing, unit: u8, answer: &[u8], now: Instant) {
    assert!(answer.len() >= 4 && answer.len() <= framing.max_adu_len());
    if matches!(framing, Framing::Rtu | Framing::RtuOverTcp) {
        let (body, trailer) = answer.split_at(answer.len() - 2);
        assert_eq!(body[0], unit, "answer {answer:02X?} from another unit");
        assert_eq!(
            check::crc16(body),
            check::crc16_from_trailer(trailer[0], trailer[1]),
            "answer {answer:02X?} has a bad CRC"
        );
        return;
    }
    let mut decoder = Decoder::new(framing, Role::Response);
    let mut frames = decoder.frames(now, answer);
    let mut count = 0;
    while let Some(frame) = frames.next() {
        let frame = frame.unwrap_or_else(|error| panic!("answer {answer:02X?} does not frame: {error}"));
        assert!(!frame.pdu.is_empty());
        count += 1;
    }
    drop(frames);
    assert_eq!(count, 1, "answer {answer:02X?} is {count} frames");
}

fuzz_target!(|data: &[u8]| {
    let Some((&setup, mut rest)) = data.split_first() else { return };
    let unit = (setup >> 2).max(1);
    let timing = Timing::for_line(19_200, Parity::Even, StopBits::One);
    let config = match setup & 3 {
        0 => {
            let mut config = ServerConfig::tcp();
            config.frame_timeout = Some(Duration::from_millis(20));
            config
        }
        1 => ServerConfig::rtu_over_tcp(unit),
        2 => ServerConfig::rtu(unit, timing),
        _ => ServerConfig::ascii(unit),
    };
    let framing = config.framing;
    let mut session = ServerSession::new(config);
    let mut handler = model();
    let mut now = Instant::from_millis(1);
    let mut out = vec![0u8; framing.max_adu_len()];
    while let [dt, len, tail @ ..] = rest {
        let take = usize::from(*len).min(tail.len());
        let (bytes, after) = tail.split_at(take);
        rest = after;
        now = now + Duration::from_micros(u64::from(*dt) * 250);
        // Timers due by now fire first, as a driver's poll loop would serve them.
        for _ in 0..8 {
            match session.poll_timeout() {
                Some(due) if due <= now => {
                    session.handle_timeout(due, &mut handler);
                    drain(&mut session, framing, unit, &mut out, due);
                }
                _ => break,
            }
        }
        let mut pending = bytes;
        // Each round takes bytes or yields an answer, so this ends well within the bound.
        let mut rounds = 0;
        loop {
            rounds += 1;
            assert!(rounds <= 2 * bytes.len() + 4, "the session stopped making progress");
            let taken = session.handle_input(now, pending, &mut handler);
            assert!(taken <= pending.len());
            pending = &pending[taken..];
            let answered = drain(&mut session, framing, unit, &mut out, now);
            if taken == 0 && answered == 0 {
                break;
            }
        }
        if session.needs_close() {
            session.reset();
        }
    }
});

/// Sends every answer that is due; returns how many there were.
fn drain(session: &mut ServerSession, framing: Framing, unit: u8, out: &mut [u8], now: Instant) -> usize {
    let mut count = 0;
    while let Some(len) = session.poll_transmit(out) {
        check_answer(framing, unit, &out[..len], now);
        count += 1;
    }
    count
}
