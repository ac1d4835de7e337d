//! Drives the server core with arbitrary requests against the simulator's data model.
//!
//! The first byte picks TCP or serial unit-id rules; then each record is `[unit_id, len,
//! pdu...]`, answered in turn by one `PduServer`, so state (counters, event log, listen-only mode,
//! writes to the store) carries from one request to the next. Oracles: the server never panics,
//! every reply fits a PDU, a reply to a request that decodes is a response that decodes against
//! it, and a reply to one that does not decode is an exception naming its function code.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use modbus_stack::pdu::{EXCEPTION_BIT, MAX_PDU_LEN, Request, Response};
use modbus_stack::server::UnitMap;
use modbus_stack::session::server::{PduServer, Reply};
use modbus_stack::sim;

fn model() -> UnitMap {
    static MODEL: OnceLock<UnitMap> = OnceLock::new();
    MODEL.get_or_init(sim::unit_map).clone()
}

fuzz_target!(|data: &[u8]| {
    let Some((&setup, mut rest)) = data.split_first() else { return };
    let mut server = if setup & 1 == 0 { PduServer::tcp() } else { PduServer::serial(setup >> 1) };
    let mut model = model();
    let mut out = [0u8; MAX_PDU_LEN];
    while let [unit_id, len, tail @ ..] = rest {
        let take = usize::from(*len).min(tail.len());
        let (pdu, after) = tail.split_at(take);
        rest = after;
        match server.respond(*unit_id, pdu, &mut model, &mut out) {
            Reply::Silent(_) => {}
            Reply::Send(len) => {
                assert!(len <= MAX_PDU_LEN, "reply of {len} bytes");
                let reply = &out[..len];
                match Request::decode(pdu) {
                    Ok(request) => {
                        if let Err(error) = Response::decode(reply, &request) {
                            panic!("reply {reply:02X?} to {request:?} does not decode: {error}");
                        }
                    }
                    Err(_) => {
                        assert_eq!(reply.len(), 2, "reply to a malformed request: {reply:02X?}");
                        let function = pdu.first().copied().unwrap_or(0);
                        assert_eq!(reply[0], function | EXCEPTION_BIT, "{reply:02X?}");
                    }
                }
            }
        }
    }
});
