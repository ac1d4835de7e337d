//! Property tests of the PDU codec: every valid request and response survives
//! `decode(encode(x)) == x`, and decoding arbitrary bytes never panics and only accepts what
//! re-encodes to the very same bytes.

mod support;

use modbus_stack::pdu::diagnostics::{DiagnosticCounter, DiagnosticsRequest, DiagnosticsResponse};
use modbus_stack::pdu::{
    Coils, DeviceIdObject, DeviceIdObjects, DeviceIdentification, ExceptionCode, ExceptionResponse,
    FileReadGroup, FileReadGroups, FileReadResponses, FileRecord, FileRecords, FunctionCode,
    ReadDeviceIdCode, Registers, Request, Response,
};
use proptest::prelude::*;
use proptest::sample::select;
use support::{encode_request, encode_response};

/// The public function codes of `modbus-reference.md` §2.2, written out independently of the
/// crate's enum.
const PUBLIC_CODES: [u8; 19] = [
    0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x0B, 0x0C, 0x0F, 0x10, 0x11, 0x14, 0x15, 0x16,
    0x17, 0x18, 0x2B,
];
/// The exception codes with a name in §3.2.
const NAMED_EXCEPTION_CODES: [u8; 10] =
    [0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x0A, 0x0B];

const CASES: u32 = 1024;

// ---------------------------------------------------------------------------------------------
// Owned models: the strategies generate these, tests borrow `Request`/`Response` views of them.
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Diag {
    ReturnQueryData(Vec<u8>),
    Restart(bool),
    DiagnosticRegister,
    AsciiDelimiter(u8),
    ListenOnly,
    ClearCounters,
    Counter(DiagnosticCounter),
    ClearOverrun,
}

#[derive(Debug, Clone)]
enum Req {
    ReadCoils(u16, u16),
    ReadDiscreteInputs(u16, u16),
    ReadHolding(u16, u16),
    ReadInput(u16, u16),
    WriteCoil(u16, bool),
    WriteRegister(u16, u16),
    ReadExceptionStatus,
    Diagnostics(Diag),
    CommEventCounter,
    CommEventLog,
    WriteCoils(u16, Vec<bool>),
    WriteRegisters(u16, Vec<u16>),
    ReportServerId,
    ReadFile(Vec<FileReadGroup>),
    WriteFile(Vec<(u16, u16, Vec<u16>)>),
    MaskWrite(u16, u16, u16),
    ReadWrite(u16, u16, u16, Vec<u16>),
    Fifo(u16),
    CanOpen(Vec<u8>),
    DeviceId(ReadDeviceIdCode, u8),
    Custom(u8, Vec<u8>),
}

impl Req {
    /// Calls `f` with the borrowed request view.
    fn with<R>(&self, f: impl FnOnce(&Request<'_>) -> R) -> R {
        fn diag(d: &Diag) -> DiagnosticsRequest<'_> {
            match d {
                Diag::ReturnQueryData(data) => DiagnosticsRequest::ReturnQueryData { data },
                Diag::Restart(clear_event_log) => DiagnosticsRequest::RestartCommunicationsOption {
                    clear_event_log: *clear_event_log,
                },
                Diag::DiagnosticRegister => DiagnosticsRequest::ReturnDiagnosticRegister,
                Diag::AsciiDelimiter(delimiter) => DiagnosticsRequest::ChangeAsciiInputDelimiter {
                    delimiter: *delimiter,
                },
                Diag::ListenOnly => DiagnosticsRequest::ForceListenOnlyMode,
                Diag::ClearCounters => DiagnosticsRequest::ClearCountersAndDiagnosticRegister,
                Diag::Counter(counter) => DiagnosticsRequest::ReturnCounter(*counter),
                Diag::ClearOverrun => DiagnosticsRequest::ClearOverrunCounterAndFlag,
            }
        }
        let request = match self {
            Self::ReadCoils(address, quantity) => Request::ReadCoils {
                address: *address,
                quantity: *quantity,
            },
            Self::ReadDiscreteInputs(address, quantity) => Request::ReadDiscreteInputs {
                address: *address,
                quantity: *quantity,
            },
            Self::ReadHolding(address, quantity) => Request::ReadHoldingRegisters {
                address: *address,
                quantity: *quantity,
            },
            Self::ReadInput(address, quantity) => Request::ReadInputRegisters {
                address: *address,
                quantity: *quantity,
            },
            Self::WriteCoil(address, value) => Request::WriteSingleCoil {
                address: *address,
                value: *value,
            },
            Self::WriteRegister(address, value) => Request::WriteSingleRegister {
                address: *address,
                value: *value,
            },
            Self::ReadExceptionStatus => Request::ReadExceptionStatus,
            Self::Diagnostics(d) => Request::Diagnostics(diag(d)),
            Self::CommEventCounter => Request::GetCommEventCounter,
            Self::CommEventLog => Request::GetCommEventLog,
            Self::WriteCoils(address, values) => Request::WriteMultipleCoils {
                address: *address,
                values: Coils::from_bools(values),
            },
            Self::WriteRegisters(address, values) => Request::WriteMultipleRegisters {
                address: *address,
                values: Registers::from_words(values),
            },
            Self::ReportServerId => Request::ReportServerId,
            Self::ReadFile(groups) => Request::ReadFileRecord {
                groups: FileReadGroups::from_items(groups),
            },
            Self::WriteFile(records) => {
                let records: Vec<FileRecord<'_>> = records
                    .iter()
                    .map(|(file_number, record_number, values)| FileRecord {
                        file_number: *file_number,
                        record_number: *record_number,
                        values: Registers::from_words(values),
                    })
                    .collect();
                return f(&Request::WriteFileRecord {
                    records: FileRecords::from_items(&records),
                });
            }
            Self::MaskWrite(address, and_mask, or_mask) => Request::MaskWriteRegister {
                address: *address,
                and_mask: *and_mask,
                or_mask: *or_mask,
            },
            Self::ReadWrite(read_address, read_quantity, write_address, values) => {
                Request::ReadWriteMultipleRegisters {
                    read_address: *read_address,
                    read_quantity: *read_quantity,
                    write_address: *write_address,
                    values: Registers::from_words(values),
                }
            }
            Self::Fifo(address) => Request::ReadFifoQueue { address: *address },
            Self::CanOpen(data) => Request::CanOpenGeneralReference { data },
            Self::DeviceId(code, object_id) => Request::ReadDeviceIdentification {
                code: *code,
                object_id: *object_id,
            },
            Self::Custom(function, data) => Request::Custom {
                function: FunctionCode::from(*function),
                data,
            },
        };
        f(&request)
    }
}

#[derive(Debug, Clone)]
enum Rsp {
    ReadCoils(Vec<bool>),
    ReadDiscreteInputs(Vec<bool>),
    ReadHolding(Vec<u16>),
    ReadInput(Vec<u16>),
    WriteCoil(u16, bool),
    WriteRegister(u16, u16),
    ExceptionStatus(u8),
    Diagnostics(DiagRsp),
    CommEventCounter(u16, u16),
    CommEventLog(u16, u16, u16, Vec<u8>),
    WriteCoils(u16, u16),
    WriteRegisters(u16, u16),
    ReportServerId(Vec<u8>),
    ReadFile(Vec<Vec<u16>>),
    WriteFile(Vec<(u16, u16, Vec<u16>)>),
    MaskWrite(u16, u16, u16),
    ReadWrite(Vec<u16>),
    Fifo(Vec<u16>),
    CanOpen(Vec<u8>),
    DeviceId {
        code: ReadDeviceIdCode,
        conformity_level: u8,
        more_follows: bool,
        next_object_id: u8,
        objects: Vec<(u8, Vec<u8>)>,
    },
    Custom(u8, Vec<u8>),
    Exception(u8, u8),
}

#[derive(Debug, Clone)]
enum DiagRsp {
    ReturnQueryData(Vec<u8>),
    Restart(bool),
    DiagnosticRegister(u16),
    AsciiDelimiter(u8),
    ClearCounters,
    Counter(DiagnosticCounter, u16),
    ClearOverrun,
}

impl Rsp {
    // One arm per response variant: splitting it would only scatter the table.
    #[allow(clippy::too_many_lines)]
    fn with<R>(&self, f: impl FnOnce(&Response<'_>) -> R) -> R {
        let response = match self {
            Self::ReadCoils(values) => Response::ReadCoils {
                values: Coils::from_bools(values),
            },
            Self::ReadDiscreteInputs(values) => Response::ReadDiscreteInputs {
                values: Coils::from_bools(values),
            },
            Self::ReadHolding(values) => Response::ReadHoldingRegisters {
                values: Registers::from_words(values),
            },
            Self::ReadInput(values) => Response::ReadInputRegisters {
                values: Registers::from_words(values),
            },
            Self::WriteCoil(address, value) => Response::WriteSingleCoil {
                address: *address,
                value: *value,
            },
            Self::WriteRegister(address, value) => Response::WriteSingleRegister {
                address: *address,
                value: *value,
            },
            Self::ExceptionStatus(status) => Response::ReadExceptionStatus { status: *status },
            Self::Diagnostics(d) => Response::Diagnostics(match d {
                DiagRsp::ReturnQueryData(data) => DiagnosticsResponse::ReturnQueryData { data },
                DiagRsp::Restart(clear_event_log) => {
                    DiagnosticsResponse::RestartCommunicationsOption {
                        clear_event_log: *clear_event_log,
                    }
                }
                DiagRsp::DiagnosticRegister(value) => {
                    DiagnosticsResponse::ReturnDiagnosticRegister { value: *value }
                }
                DiagRsp::AsciiDelimiter(delimiter) => {
                    DiagnosticsResponse::ChangeAsciiInputDelimiter {
                        delimiter: *delimiter,
                    }
                }
                DiagRsp::ClearCounters => DiagnosticsResponse::ClearCountersAndDiagnosticRegister,
                DiagRsp::Counter(counter, value) => DiagnosticsResponse::ReturnCounter {
                    counter: *counter,
                    value: *value,
                },
                DiagRsp::ClearOverrun => DiagnosticsResponse::ClearOverrunCounterAndFlag,
            }),
            Self::CommEventCounter(status, event_count) => Response::GetCommEventCounter {
                status: *status,
                event_count: *event_count,
            },
            Self::CommEventLog(status, event_count, message_count, events) => {
                Response::GetCommEventLog {
                    status: *status,
                    event_count: *event_count,
                    message_count: *message_count,
                    events,
                }
            }
            Self::WriteCoils(address, quantity) => Response::WriteMultipleCoils {
                address: *address,
                quantity: *quantity,
            },
            Self::WriteRegisters(address, quantity) => Response::WriteMultipleRegisters {
                address: *address,
                quantity: *quantity,
            },
            Self::ReportServerId(data) => Response::ReportServerId { data },
            Self::ReadFile(groups) => {
                let records: Vec<Registers<'_>> =
                    groups.iter().map(|g| Registers::from_words(g)).collect();
                return f(&Response::ReadFileRecord {
                    records: FileReadResponses::from_items(&records),
                });
            }
            Self::WriteFile(records) => {
                let records: Vec<FileRecord<'_>> = records
                    .iter()
                    .map(|(file_number, record_number, values)| FileRecord {
                        file_number: *file_number,
                        record_number: *record_number,
                        values: Registers::from_words(values),
                    })
                    .collect();
                return f(&Response::WriteFileRecord {
                    records: FileRecords::from_items(&records),
                });
            }
            Self::MaskWrite(address, and_mask, or_mask) => Response::MaskWriteRegister {
                address: *address,
                and_mask: *and_mask,
                or_mask: *or_mask,
            },
            Self::ReadWrite(values) => Response::ReadWriteMultipleRegisters {
                values: Registers::from_words(values),
            },
            Self::Fifo(values) => Response::ReadFifoQueue {
                values: Registers::from_words(values),
            },
            Self::CanOpen(data) => Response::CanOpenGeneralReference { data },
            Self::DeviceId {
                code,
                conformity_level,
                more_follows,
                next_object_id,
                objects,
            } => {
                let objects: Vec<DeviceIdObject<'_>> = objects
                    .iter()
                    .map(|(id, value)| DeviceIdObject { id: *id, value })
                    .collect();
                return f(&Response::ReadDeviceIdentification(DeviceIdentification {
                    code: *code,
                    conformity_level: *conformity_level,
                    more_follows: *more_follows,
                    next_object_id: *next_object_id,
                    objects: DeviceIdObjects::from_items(&objects),
                }));
            }
            Self::Custom(function, data) => Response::Custom {
                function: FunctionCode::from(*function),
                data,
            },
            Self::Exception(function, code) => Response::Exception(ExceptionResponse {
                function: FunctionCode::from(*function),
                code: ExceptionCode::from(*code),
            }),
        };
        f(&response)
    }
}

// ---------------------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------------------

/// `(address, quantity)` with `quantity` in `1..=max` and the range inside 0..=0xFFFF. Addresses
/// are pushed towards the top of the space half of the time, to hit the boundary.
fn address_quantity(max: u16) -> impl Strategy<Value = (u16, u16)> {
    (1..=max, any::<u16>(), any::<bool>()).prop_map(|(quantity, address, to_end)| {
        let last_start = u16::try_from(0x1_0000 - u32::from(quantity)).unwrap();
        let address = if to_end {
            last_start - (address % 4).min(last_start)
        } else {
            address.min(last_start)
        };
        (address, quantity)
    })
}

fn address_for(len: usize) -> impl Strategy<Value = u16> {
    let last_start = u16::try_from(0x1_0000 - len).unwrap();
    0..=last_start
}

fn arb_counter() -> impl Strategy<Value = DiagnosticCounter> {
    select(DiagnosticCounter::ALL.to_vec())
}

fn arb_diag() -> impl Strategy<Value = Diag> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..=250).prop_map(Diag::ReturnQueryData),
        any::<bool>().prop_map(Diag::Restart),
        Just(Diag::DiagnosticRegister),
        any::<u8>().prop_map(Diag::AsciiDelimiter),
        Just(Diag::ListenOnly),
        Just(Diag::ClearCounters),
        arb_counter().prop_map(Diag::Counter),
        Just(Diag::ClearOverrun),
    ]
}

fn arb_device_id_code() -> impl Strategy<Value = ReadDeviceIdCode> {
    select(vec![
        ReadDeviceIdCode::BasicStream,
        ReadDeviceIdCode::RegularStream,
        ReadDeviceIdCode::ExtendedStream,
        ReadDeviceIdCode::Individual,
    ])
}

/// FC 20 groups: 1–35, each 1–124 records inside the file, and the whole response within one
/// PDU (`2 + Σ(2 + 2N) ≤ 253`).
fn arb_read_groups() -> impl Strategy<Value = Vec<FileReadGroup>> {
    prop::collection::vec((1..=u16::MAX, any::<u16>(), 1u16..=124), 1..=35)
        .prop_map(|raw| {
            let mut total = 2usize;
            let mut groups = Vec::new();
            for (file_number, record, record_length) in raw {
                total += 2 + 2 * usize::from(record_length);
                if total > 253 {
                    break;
                }
                groups.push(FileReadGroup {
                    file_number,
                    record_number: record % (10_000 - record_length + 1),
                    record_length,
                });
            }
            groups
        })
        .prop_filter("at least one group", |groups| !groups.is_empty())
}

/// FC 21 groups: 1–122 records each, inside the file, request data ≤ 251 bytes.
fn arb_write_records() -> impl Strategy<Value = Vec<(u16, u16, Vec<u16>)>> {
    prop::collection::vec(
        (
            1..=u16::MAX,
            any::<u16>(),
            prop::collection::vec(any::<u16>(), 1..=122),
        ),
        1..=6,
    )
    .prop_map(|raw| {
        let mut total = 0usize;
        let mut records = Vec::new();
        for (file_number, record, values) in raw {
            total += 7 + 2 * values.len();
            if total > 251 {
                break;
            }
            let len = u16::try_from(values.len()).unwrap();
            records.push((file_number, record % (10_000 - len + 1), values));
        }
        records
    })
    .prop_filter("at least one group", |records| !records.is_empty())
}

fn arb_custom_code() -> impl Strategy<Value = u8> {
    (1u8..=127).prop_filter("not a public code", |code| !PUBLIC_CODES.contains(code))
}

fn arb_request() -> impl Strategy<Value = Req> {
    prop_oneof![
        address_quantity(2000).prop_map(|(a, q)| Req::ReadCoils(a, q)),
        address_quantity(2000).prop_map(|(a, q)| Req::ReadDiscreteInputs(a, q)),
        address_quantity(125).prop_map(|(a, q)| Req::ReadHolding(a, q)),
        address_quantity(125).prop_map(|(a, q)| Req::ReadInput(a, q)),
        (any::<u16>(), any::<bool>()).prop_map(|(a, v)| Req::WriteCoil(a, v)),
        (any::<u16>(), any::<u16>()).prop_map(|(a, v)| Req::WriteRegister(a, v)),
        Just(Req::ReadExceptionStatus),
        arb_diag().prop_map(Req::Diagnostics),
        Just(Req::CommEventCounter),
        Just(Req::CommEventLog),
        prop::collection::vec(any::<bool>(), 1..=1968).prop_flat_map(|values| {
            (address_for(values.len()), Just(values)).prop_map(|(a, v)| Req::WriteCoils(a, v))
        }),
        prop::collection::vec(any::<u16>(), 1..=123).prop_flat_map(|values| {
            (address_for(values.len()), Just(values)).prop_map(|(a, v)| Req::WriteRegisters(a, v))
        }),
        Just(Req::ReportServerId),
        arb_read_groups().prop_map(Req::ReadFile),
        arb_write_records().prop_map(Req::WriteFile),
        (any::<u16>(), any::<u16>(), any::<u16>()).prop_map(|(a, m, o)| Req::MaskWrite(a, m, o)),
        (
            address_quantity(125),
            prop::collection::vec(any::<u16>(), 1..=121)
                .prop_flat_map(|values| { (address_for(values.len()), Just(values)) }),
        )
            .prop_map(|((ra, rq), (wa, values))| Req::ReadWrite(ra, rq, wa, values)),
        any::<u16>().prop_map(Req::Fifo),
        prop::collection::vec(any::<u8>(), 0..=251).prop_map(Req::CanOpen),
        (arb_device_id_code(), any::<u8>()).prop_map(|(c, o)| Req::DeviceId(c, o)),
        (
            arb_custom_code(),
            prop::collection::vec(any::<u8>(), 0..=252)
        )
            .prop_map(|(f, d)| Req::Custom(f, d)),
    ]
}

fn arb_device_id_objects() -> impl Strategy<Value = Vec<(u8, Vec<u8>)>> {
    prop::collection::vec(
        (any::<u8>(), prop::collection::vec(any::<u8>(), 0..=80)),
        0..=10,
    )
    .prop_map(|raw| {
        let mut total = 0;
        raw.into_iter()
            .take_while(|(_, value)| {
                total += 2 + value.len();
                total <= 246
            })
            .collect()
    })
}

fn registers(len: u16) -> impl Strategy<Value = Vec<u16>> {
    prop::collection::vec(any::<u16>(), usize::from(len))
}

fn bools(len: u16) -> impl Strategy<Value = Vec<bool>> {
    prop::collection::vec(any::<bool>(), usize::from(len))
}

/// A normal response that answers `request` correctly.
fn arb_normal_response(request: &Req) -> BoxedStrategy<Rsp> {
    match request.clone() {
        Req::ReadCoils(_, q) => bools(q).prop_map(Rsp::ReadCoils).boxed(),
        Req::ReadDiscreteInputs(_, q) => bools(q).prop_map(Rsp::ReadDiscreteInputs).boxed(),
        Req::ReadHolding(_, q) => registers(q).prop_map(Rsp::ReadHolding).boxed(),
        Req::ReadInput(_, q) => registers(q).prop_map(Rsp::ReadInput).boxed(),
        Req::WriteCoil(a, v) => Just(Rsp::WriteCoil(a, v)).boxed(),
        Req::WriteRegister(a, v) => Just(Rsp::WriteRegister(a, v)).boxed(),
        Req::ReadExceptionStatus => any::<u8>().prop_map(Rsp::ExceptionStatus).boxed(),
        Req::Diagnostics(d) => match d {
            Diag::ReturnQueryData(data) => Just(DiagRsp::ReturnQueryData(data)).boxed(),
            Diag::Restart(clear) => Just(DiagRsp::Restart(clear)).boxed(),
            Diag::DiagnosticRegister => any::<u16>().prop_map(DiagRsp::DiagnosticRegister).boxed(),
            Diag::AsciiDelimiter(d) => Just(DiagRsp::AsciiDelimiter(d)).boxed(),
            // No normal response exists; the server may still have sent an exception.
            Diag::ListenOnly => return Just(Rsp::Exception(0x08, 0x01)).boxed(),
            Diag::ClearCounters => Just(DiagRsp::ClearCounters).boxed(),
            Diag::Counter(counter) => any::<u16>()
                .prop_map(move |value| DiagRsp::Counter(counter, value))
                .boxed(),
            Diag::ClearOverrun => Just(DiagRsp::ClearOverrun).boxed(),
        }
        .prop_map(Rsp::Diagnostics)
        .boxed(),
        Req::CommEventCounter => (any::<u16>(), any::<u16>())
            .prop_map(|(s, c)| Rsp::CommEventCounter(s, c))
            .boxed(),
        Req::CommEventLog => (
            any::<u16>(),
            any::<u16>(),
            any::<u16>(),
            prop::collection::vec(any::<u8>(), 0..=64),
        )
            .prop_map(|(s, e, m, ev)| Rsp::CommEventLog(s, e, m, ev))
            .boxed(),
        Req::WriteCoils(a, values) => {
            Just(Rsp::WriteCoils(a, u16::try_from(values.len()).unwrap())).boxed()
        }
        Req::WriteRegisters(a, values) => {
            Just(Rsp::WriteRegisters(a, u16::try_from(values.len()).unwrap())).boxed()
        }
        Req::ReportServerId => prop::collection::vec(any::<u8>(), 0..=251)
            .prop_map(Rsp::ReportServerId)
            .boxed(),
        Req::ReadFile(groups) => groups
            .iter()
            .map(|g| registers(g.record_length))
            .collect::<Vec<_>>()
            .prop_map(Rsp::ReadFile)
            .boxed(),
        Req::WriteFile(records) => Just(Rsp::WriteFile(records)).boxed(),
        Req::MaskWrite(a, m, o) => Just(Rsp::MaskWrite(a, m, o)).boxed(),
        Req::ReadWrite(_, rq, _, _) => registers(rq).prop_map(Rsp::ReadWrite).boxed(),
        Req::Fifo(_) => prop::collection::vec(any::<u16>(), 0..=31)
            .prop_map(Rsp::Fifo)
            .boxed(),
        Req::CanOpen(_) => prop::collection::vec(any::<u8>(), 0..=251)
            .prop_map(Rsp::CanOpen)
            .boxed(),
        Req::DeviceId(code, _) => (
            any::<u8>(),
            any::<bool>(),
            any::<u8>(),
            arb_device_id_objects(),
        )
            .prop_map(
                move |(conformity_level, more_follows, next_object_id, objects)| Rsp::DeviceId {
                    code,
                    conformity_level,
                    more_follows,
                    next_object_id,
                    objects,
                },
            )
            .boxed(),
        Req::Custom(f, _) => prop::collection::vec(any::<u8>(), 0..=252)
            .prop_map(move |d| Rsp::Custom(f, d))
            .boxed(),
    }
}

fn function_byte(request: &Req) -> u8 {
    request.with(|r| r.function().value())
}

/// A request and a response that answers it (normal or exception).
fn arb_exchange() -> impl Strategy<Value = (Req, Rsp)> {
    arb_request().prop_flat_map(|request| {
        let function = function_byte(&request);
        let response = prop_oneof![
            6 => arb_normal_response(&request),
            1 => any::<u8>().prop_map(move |code| Rsp::Exception(function, code)),
        ];
        (Just(request), response)
    })
}

/// Arbitrary bytes; a third of the time starting with a public function code (or its exception
/// byte) so that decoding gets past the first check.
fn arb_pdu_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..=260),
        (
            select(PUBLIC_CODES.to_vec()),
            any::<bool>(),
            prop::collection::vec(any::<u8>(), 0..=40),
        )
            .prop_map(|(code, exception, tail)| {
                let mut pdu = vec![if exception { code | 0x80 } else { code }];
                pdu.extend(tail);
                pdu
            }),
        (
            select(PUBLIC_CODES.to_vec()),
            prop::collection::vec(any::<u8>(), 0..=253),
        )
            .prop_map(|(code, tail)| {
                let mut pdu = vec![code];
                pdu.extend(tail);
                pdu
            }),
    ]
}

#[derive(Debug, Clone)]
enum Mutation {
    Set(usize, u8),
    Truncate(usize),
    Append(Vec<u8>),
    Insert(usize, u8),
    Remove(usize),
}

fn arb_mutations() -> impl Strategy<Value = Vec<Mutation>> {
    prop::collection::vec(
        prop_oneof![
            4 => (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
            1 => any::<usize>().prop_map(Mutation::Truncate),
            1 => prop::collection::vec(any::<u8>(), 1..=4).prop_map(Mutation::Append),
            1 => (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
            1 => any::<usize>().prop_map(Mutation::Remove),
        ],
        1..=3,
    )
}

/// Applies small edits to a valid encoding, so decoding reaches the deep checks (byte counts
/// that almost match, echoes with one field changed, groups that overrun by one).
fn mutate(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for mutation in mutations {
        let len = bytes.len();
        match mutation {
            Mutation::Set(i, b) if len > 0 => bytes[i % len] = *b,
            Mutation::Truncate(n) if len > 0 => bytes.truncate(n % len),
            Mutation::Append(tail) => bytes.extend_from_slice(tail),
            Mutation::Insert(i, b) => bytes.insert(i % (len + 1), *b),
            Mutation::Remove(i) if len > 0 => {
                bytes.remove(i % len);
            }
            _ => {}
        }
    }
    bytes
}

/// Whenever `bytes` decode as a request, they re-encode to themselves.
fn check_request_bytes(bytes: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(request) = Request::decode(bytes) {
        prop_assert!(
            request.validate().is_ok(),
            "decoded {request:?} fails validate"
        );
        prop_assert_eq!(request.encoded_len(), bytes.len());
        prop_assert_eq!(encode_request(&request), bytes);
    }
    Ok(())
}

/// Whenever `bytes` decode as a response to `request`, they re-encode to themselves.
fn check_response_bytes(bytes: &[u8], request: &Request<'_>) -> Result<(), TestCaseError> {
    if let Ok(response) = Response::decode(bytes, request) {
        prop_assert!(
            response.validate().is_ok(),
            "decoded {response:?} fails validate"
        );
        prop_assert_eq!(response.encoded_len(), bytes.len());
        prop_assert_eq!(encode_response(&response), bytes);
        prop_assert_eq!(response.function(), request.function());
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn request_roundtrip(model in arb_request()) {
        model.with(|request| {
            prop_assert!(request.validate().is_ok(), "generated {request:?} is invalid");
            let bytes = encode_request(request);
            prop_assert_eq!(bytes[0], request.function().value());
            let decoded = Request::decode(&bytes)
                .map_err(|err| TestCaseError::fail(format!("{request:?}: {err}")))?;
            prop_assert_eq!(&decoded, request);
            prop_assert_eq!(encode_request(&decoded), bytes);
            Ok(())
        })?;
    }

    #[test]
    fn response_roundtrip((request_model, response_model) in arb_exchange()) {
        request_model.with(|request| {
            response_model.with(|response| {
                prop_assert!(response.validate().is_ok(), "generated {response:?} is invalid");
                let bytes = encode_response(response);
                let decoded = Response::decode(&bytes, request).map_err(|err| {
                    TestCaseError::fail(format!("{response:?} for {request:?}: {err}"))
                })?;
                prop_assert_eq!(&decoded, response);
                prop_assert_eq!(decoded.function(), request.function());
                prop_assert_eq!(encode_response(&decoded), bytes);
                Ok(())
            })
        })?;
    }

    #[test]
    fn request_decode_of_arbitrary_bytes(bytes in arb_pdu_bytes()) {
        check_request_bytes(&bytes)?;
    }

    #[test]
    fn request_decode_of_mutated_requests(model in arb_request(), mutations in arb_mutations()) {
        let bytes = model.with(encode_request);
        check_request_bytes(&mutate(bytes, &mutations))?;
    }

    #[test]
    fn response_decode_of_arbitrary_bytes(model in arb_request(), bytes in arb_pdu_bytes()) {
        model.with(|request| {
            check_response_bytes(&bytes, request)?;
            // The same tail behind the request's own function code and exception byte.
            for first in [request.function().value(), request.function().exception_byte()] {
                let mut pdu = bytes.clone();
                match pdu.first_mut() {
                    Some(byte) => *byte = first,
                    None => pdu.push(first),
                }
                check_response_bytes(&pdu, request)?;
            }
            Ok::<(), TestCaseError>(())
        })?;
    }

    #[test]
    fn response_decode_of_mutated_responses(
        (request_model, response_model) in arb_exchange(),
        mutations in arb_mutations(),
    ) {
        request_model.with(|request| {
            let bytes = response_model.with(encode_response);
            check_response_bytes(&mutate(bytes, &mutations), request)
        })?;
    }
}

// ---------------------------------------------------------------------------------------------
// Code spaces: exhaustive over all 256 bytes
// ---------------------------------------------------------------------------------------------

#[test]
fn function_code_byte_roundtrip_is_identity() {
    let mut named = 0;
    for byte in 0..=u8::MAX {
        let code = FunctionCode::from(byte);
        assert_eq!(u8::from(code), byte);
        assert_eq!(code.value(), byte);
        let is_public = PUBLIC_CODES.contains(&byte);
        if let FunctionCode::Other(raw) = code {
            assert_eq!(raw, byte);
            assert!(!is_public, "public code {byte:#04X} decoded as Other");
            assert_eq!(code.name(), None);
        } else {
            assert!(is_public, "{byte:#04X} has a name but is not public");
            assert!(code.name().is_some());
            named += 1;
        }
        assert_eq!(code.is_valid_request_code(), (1..=127).contains(&byte));
        assert_eq!(code.exception_byte(), byte | 0x80);
    }
    assert_eq!(named, PUBLIC_CODES.len());
}

#[test]
fn exception_code_byte_roundtrip_is_identity() {
    let mut named = 0;
    for byte in 0..=u8::MAX {
        let code = ExceptionCode::from(byte);
        assert_eq!(u8::from(code), byte);
        assert_eq!(code.value(), byte);
        if let ExceptionCode::Other(raw) = code {
            assert_eq!(raw, byte);
            assert!(
                !NAMED_EXCEPTION_CODES.contains(&byte),
                "named exception {byte:#04X} decoded as Other"
            );
            assert_eq!(code.name(), None);
        } else {
            assert!(NAMED_EXCEPTION_CODES.contains(&byte));
            assert!(code.name().is_some());
            named += 1;
        }
    }
    assert_eq!(named, NAMED_EXCEPTION_CODES.len());
}

#[test]
fn every_public_function_code_decodes_to_its_typed_variant() {
    // A minimal valid request for each public code: decoding never gives `Custom` for them.
    let minimal: [&[u8]; 19] = [
        &[0x01, 0, 0, 0, 1],
        &[0x02, 0, 0, 0, 1],
        &[0x03, 0, 0, 0, 1],
        &[0x04, 0, 0, 0, 1],
        &[0x05, 0, 0, 0, 0],
        &[0x06, 0, 0, 0, 0],
        &[0x07],
        &[0x08, 0, 0],
        &[0x0B],
        &[0x0C],
        &[0x0F, 0, 0, 0, 1, 1, 1],
        &[0x10, 0, 0, 0, 1, 2, 0, 0],
        &[0x11],
        &[0x14, 7, 6, 0, 1, 0, 0, 0, 1],
        &[0x15, 9, 6, 0, 1, 0, 0, 0, 1, 0, 0],
        &[0x16, 0, 0, 0, 0, 0, 0],
        &[0x17, 0, 0, 0, 1, 0, 0, 0, 1, 2, 0, 0],
        &[0x18, 0, 0],
        &[0x2B, 0x0E, 1, 0],
    ];
    for (pdu, code) in minimal.iter().zip(PUBLIC_CODES) {
        assert_eq!(pdu[0], code);
        let request = Request::decode(pdu).unwrap_or_else(|err| panic!("{pdu:02X?}: {err}"));
        assert!(
            !matches!(request, Request::Custom { .. }),
            "{code:#04X} decoded as Custom"
        );
        assert_eq!(request.function(), FunctionCode::from(code));
        assert_eq!(encode_request(&request), *pdu);
    }
}
