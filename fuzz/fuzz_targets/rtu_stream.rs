//! Drives the RTU decoder with a structured input: the first byte picks the mode and whether the
//! line is timed; then each record is `[gap_lo, gap_hi, len, bytes...]` (gap in 10 µs steps).
//! Delivered PDUs are handed to the length oracle again as a consistency check.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modbus_stack::pdu::{Request, Response};
use modbus_stack::frame::rtu::{self, Config, Decoder, Mode, Parity, StopBits, Timing};
use modbus_stack::time::Instant;

fuzz_target!(|data: &[u8]| {
    let mut last_request = Vec::new();
    let Some((&setup, mut rest)) = data.split_first() else {
        return;
    };
    let mode = match setup % 3 {
        0 => Mode::Requests,
        1 => Mode::Responses,
        _ => Mode::Monitor,
    };
    let baud = [9600, 19_200, 115_200][usize::from(setup >> 2) % 3];
    let config = if setup & 0x80 == 0 {
        Config::timed(mode, Timing::for_line(baud, Parity::Even, StopBits::One))
    } else {
        Config::untimed(mode)
    };
    let mut decoder = Decoder::new(config);
    let mut now = 0u64;
    while let [gap_lo, gap_hi, len, tail @ ..] = rest {
        now += u64::from(u16::from_le_bytes([*gap_lo, *gap_hi])) * 10;
        let take = usize::from(*len).min(tail.len());
        let (mut chunk, after) = tail.split_at(take);
        rest = after;
        let at = Instant::from_micros(now);
        if let Some(deadline) = decoder.poll_timeout() {
            assert!(deadline >= Instant::from_micros(0));
        }
        decoder.handle_timeout(at);
        for _ in 0..=chunk.len() + 1 {
            let n = decoder.push(at, chunk);
            chunk = &chunk[n..];
            while let Some(result) = decoder.poll_frame() {
                if let Ok(adu) = result {
                    assert!(adu.as_bytes().len() >= rtu::MIN_ADU_LEN);
                    assert!(adu.as_bytes().len() <= rtu::MAX_ADU_LEN);
                    exercise_pdu(adu.pdu(), &mut last_request);
                }
            }
            if chunk.is_empty() {
                break;
            }
        }
        assert!(chunk.is_empty(), "decoder stalled");
    }
    decoder.handle_timeout(Instant::from_micros(now + 1_000_000));
    while decoder.poll_frame().is_some() {}
});

/// Hands a delivered PDU to the PDU decoders: as a request, and as the response to the last
/// request seen (so a monitor-style stream reaches the response decoder too).
fn exercise_pdu(pdu: &[u8], last_request: &mut Vec<u8>) {
    if let Ok(previous) = Request::decode(last_request) {
        let _ = Response::decode(pdu, &previous);
    }
    if Request::decode(pdu).is_ok() {
        last_request.clear();
        last_request.extend_from_slice(pdu);
    }
}
