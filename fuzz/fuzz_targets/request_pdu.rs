//! Any bytes as a request PDU: decoding never panics, and what decodes re-encodes to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modbus_stack::pdu::Request;

fuzz_target!(|data: &[u8]| {
    match Request::decode(data) {
        Ok(request) => {
            let mut out = [0u8; 256];
            let len = request.encode(&mut out).expect("a decoded request must re-encode");
            assert_eq!(len, request.encoded_len());
            assert_eq!(&out[..len], data, "re-encoding changed the bytes");
        }
        // The mapping to an exception code is total; exercise it.
        Err(error) => drop(error.exception_code()),
    }
});
