//! Drives the Modbus TCP decoder: each record is `[len, bytes...]`, so the input chooses where
//! the stream is split; the stateless parser sees the whole input too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modbus_stack::pdu::{Request, Response};
use modbus_stack::frame::{Status, tcp};

fuzz_target!(|data: &[u8]| {
    let mut last_request = Vec::new();
    if let Status::Complete { frame, consumed } = tcp::parse(data) {
        assert_eq!(frame.as_bytes().len(), consumed);
        assert!(tcp::MbapHeader::new_checked(frame.as_bytes()).is_ok());
    }
    let mut decoder = tcp::Decoder::new();
    let mut rest = data;
    while let [len, tail @ ..] = rest {
        let take = usize::from(*len).min(tail.len());
        let (mut chunk, after) = tail.split_at(take);
        rest = after;
        for _ in 0..=chunk.len() + 1 {
            let n = decoder.push(modbus_stack::time::Instant::ZERO, chunk);
            chunk = &chunk[n..];
            for _ in 0..=tcp::MAX_ADU_LEN {
                match decoder.poll_frame() {
                    Some(Ok(adu)) => {
                        assert!(adu.pdu().len() <= 253);
                        exercise_pdu(adu.pdu(), &mut last_request);
                    }
                    Some(Err(_)) => {}
                    None => break,
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
