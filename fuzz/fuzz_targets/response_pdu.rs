//! Any bytes as the response to any valid request: decoding never panics, and what decodes
//! re-encodes to the same bytes.
//!
//! The input is split at a length byte: the first part is decoded as the request (inputs whose
//! request does not decode are still useful: they exercise the request decoder), the rest as
//! the response.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modbus_stack::pdu::{Request, Response};

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else { return };
    let split = usize::from(split).min(rest.len());
    let (request_bytes, response_bytes) = rest.split_at(split);
    let Ok(request) = Request::decode(request_bytes) else { return };
    if let Ok(response) = Response::decode(response_bytes, &request) {
        let mut out = [0u8; 256];
        let len = response.encode(&mut out).expect("a decoded response must re-encode");
        assert_eq!(len, response.encoded_len());
        assert_eq!(&out[..len], response_bytes, "re-encoding changed the bytes");
    }
});
