//! Drives the ASCII decoder: each record is `[gap_lo, gap_hi, len, chars...]` (gap in ms), so
//! chunking and inter-character timeouts both come from the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modbus_stack::pdu::{Request, Response};
use modbus_stack::frame::ascii::{self, Config, Decoder};
use modbus_stack::time::Instant;

fuzz_target!(|data: &[u8]| {
    let mut last_request = Vec::new();
    let mut decoder = Decoder::new(Config::new());
    let mut rest = data;
    let mut now = 0u64;
    while let [gap_lo, gap_hi, len, tail @ ..] = rest {
        now += u64::from(u16::from_le_bytes([*gap_lo, *gap_hi])) * 1_000;
        let take = usize::from(*len).min(tail.len());
        let (mut chunk, after) = tail.split_at(take);
        rest = after;
        let at = Instant::from_micros(now);
        let _ = decoder.poll_timeout();
        decoder.handle_timeout(at);
        for _ in 0..=chunk.len() + 1 {
            let n = decoder.push(at, chunk);
            chunk = &chunk[n..];
            while let Some(result) = decoder.poll_frame() {
                if let Ok(adu) = result {
                    assert!(adu.as_bytes().len() >= ascii::MIN_ADU_LEN);
                    assert!(adu.as_bytes().len() <= ascii::MAX_ADU_LEN);
                    exercise_pdu(adu.pdu(), &mut last_request);
                }
            }
            if chunk.is_empty() {
                break;
            }
        }
        assert!(chunk.is_empty(), "decoder stalled");
    }
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
