//! The PDU half of a server: one request PDU in, one reply out, and the diagnostics state the
//! specification defines around it.
//!
//! [`PduServer::respond`] owns the decision order of `modbus-reference.md` §3.3 (01 → 03 → 02
//! → 04, the first three decided by [`Request::decode`]), unit-id filtering and broadcast
//! (§8.9), listen-only mode, the eight serial-line counters, the event counter and the 64-byte
//! event log (§6, §7), and the stream, individual-access and splitting rules of Read Device
//! Identification (§4.19.2). It is a pure step: framing and timing belong to the
//! [`ServerSession`](super::ServerSession) around it, which most drivers use instead; a
//! gateway that forwards PDUs uses this directly.
//!
//! Nothing here allocates: scratch buffers for the largest reads live on the stack (about
//! 2.8 KiB in the worst case, the 2000-coil read).
use super::{Handler, Unit, UnitIds};
use crate::pdu::device_id::MAX_OBJECT_BYTES;
use crate::pdu::{
    Coils, DeviceIdObjects, DeviceIdentification, DiagnosticCounter, DiagnosticsRequest,
    DiagnosticsResponse, ExceptionCode, ExceptionResponse, FileReadGroups, FileRecords,
    FunctionCode, MAX_EVENT_LOG_LEN, MAX_FIFO_COUNT, MAX_PDU_LEN, MAX_READ_BITS,
    MAX_READ_REGISTERS, ReadDeviceIdCode, Registers, Request, Response,
};

/// Largest value of one device identification object: 253 − 7 header bytes − 2 object header
/// bytes, so that any single object fits one response.
pub const MAX_DEVICE_ID_OBJECT_LEN: usize = MAX_OBJECT_BYTES - 2;

/// Event log: bit 7 marks a receive event, stored when a request arrives (§7.3).
pub const RECEIVE_EVENT: u8 = 0x80;
/// Receive event bit 1: the frame had a communication error.
pub const RECEIVE_COMMUNICATION_ERROR: u8 = 0x02;
/// Receive event bit 4: a character overrun occurred.
pub const RECEIVE_CHARACTER_OVERRUN: u8 = 0x10;
/// Receive event bit 5: the server is in listen-only mode.
pub const RECEIVE_LISTEN_ONLY: u8 = 0x20;
/// Receive event bit 6: the request was a broadcast.
pub const RECEIVE_BROADCAST: u8 = 0x40;
/// Event log: bits 7/6 = 0/1 mark a send event, stored after processing (§7.3).
pub const SEND_EVENT: u8 = 0x40;
/// Send event bit 0: a read exception (codes 1–3) was sent.
pub const SEND_READ_EXCEPTION: u8 = 0x01;
/// Send event bit 1: a server abort exception (code 4) was sent.
pub const SEND_ABORT_EXCEPTION: u8 = 0x02;
/// Send event bit 2: a server busy exception (codes 5–6) was sent.
pub const SEND_BUSY_EXCEPTION: u8 = 0x04;
/// Send event bit 3: a program NAK exception (code 7) was sent.
pub const SEND_NAK_EXCEPTION: u8 = 0x08;
/// Send event bit 5: the server is in listen-only mode.
pub const SEND_LISTEN_ONLY: u8 = 0x20;
/// Event byte logged when the server enters listen-only mode (08/04).
pub const EVENT_ENTERED_LISTEN_ONLY: u8 = 0x04;
/// Event byte logged by a communication restart (08/01).
pub const EVENT_COMMUNICATION_RESTART: u8 = 0x00;

/// The default end-of-frame character of Modbus ASCII (line feed).
pub const DEFAULT_ASCII_DELIMITER: u8 = b'\n';
/// FC 11/12 status word while a program command is still executing.
const STATUS_BUSY: u16 = 0xFFFF;
/// Diagnostic register bit this server uses as the overrun flag that 08/14 clears (the register
/// is device specific; Qt uses the same bit).
const OVERRUN_FLAG: u16 = 0x0001;

/// What to do after [`PduServer::respond`].
#[must_use = "a reply says whether a response was written and must be sent"]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reply {
    /// Send the first `len` bytes of `out` as the response PDU (normal or exception).
    Send(usize),
    /// Send nothing.
    Silent(SilentReason),
}

/// Why [`PduServer::respond`] sends nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SilentReason {
    /// The request was a broadcast (unit id 0): executed if allowed, never answered.
    Broadcast,
    /// The unit id is not one this server answers.
    ForeignUnit,
    /// The server is in listen-only mode (08/01 leaves it, also without a reply).
    ListenOnly,
    /// The request gets no response by definition (08/04 force listen-only mode).
    NoResponse,
    /// The PDU is empty: there is no function code to answer.
    EmptyPdu,
    /// `out` cannot hold even a 2-byte exception response.
    BufferTooSmall,
}

/// What executing a request produced, before counters and broadcast rules apply.
#[derive(Clone, Copy)]
enum Outcome {
    /// A normal response of this length is in `out`.
    Normal(usize),
    /// The request failed with this exception.
    Exception(ExceptionCode),
    /// 08/04: enter listen-only mode, send nothing.
    EnterListenOnly,
}

/// State changes that must follow the response and its accounting, so the counters they clear
/// stay cleared.
#[derive(Clone, Copy)]
enum After {
    Nothing,
    ClearCounters,
    Restart { clear_event_log: bool },
}

/// A Modbus server's protocol state: unit-id configuration, serial-line diagnostics (counters
/// CPT1–CPT8, diagnostic register, event counter, event log), listen-only mode and the ASCII
/// input delimiter.
///
/// # Use
///
/// For each frame the framing layer accepts, call [`note_frame_received`](Self::note_frame_received)
/// (any unit id, CPT1), then [`respond`](Self::respond) with the unit id and the PDU; send what it
/// says. For a frame it rejects (CRC/LRC, parity, too short), call
/// [`note_frame_error`](Self::note_frame_error) and send nothing. On TCP the counters are
/// meaningless and the `note_*` calls can be skipped.
///
/// ```
/// use modbus_stack::session::server::{Handler, PduServer, Reply, Unit};
/// use modbus_stack::pdu::ExceptionCode;
///
/// struct Registers([u16; 4]);
/// impl Handler for Registers {
///     fn read_holding_registers(&mut self, _: Unit, address: u16, out: &mut [u16]) -> Result<(), ExceptionCode> {
///         let start = usize::from(address);
///         let values = self.0.get(start..start + out.len()).ok_or(ExceptionCode::IllegalDataAddress)?;
///         out.copy_from_slice(values);
///         Ok(())
///     }
/// }
///
/// let mut server = PduServer::serial(1);
/// let mut out = [0u8; 253];
/// let reply = server.respond(1, &[0x03, 0x00, 0x01, 0x00, 0x02], &mut Registers([0, 7, 8, 0]), &mut out);
/// assert_eq!(reply, Reply::Send(6));
/// assert_eq!(&out[..6], &[0x03, 0x04, 0x00, 0x07, 0x00, 0x08]);
/// // Reading past the map: the handler's exception 02.
/// let reply = server.respond(1, &[0x03, 0x00, 0x03, 0x00, 0x02], &mut Registers([0; 4]), &mut out);
/// assert_eq!(reply, Reply::Send(2));
/// assert_eq!(&out[..2], &[0x83, 0x02]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PduServer {
    units: UnitIds,
    broadcast: bool,
    counters: [u16; 8],
    event_count: u16,
    diagnostic_register: u16,
    /// Newest event first; only the first `event_log_len` bytes are meaningful.
    event_log: [u8; MAX_EVENT_LOG_LEN],
    event_log_len: usize,
    listen_only: bool,
    ascii_delimiter: u8,
    program_busy: bool,
}

impl PduServer {
    /// A server in its power-up state (counters, register and log cleared, not in listen-only
    /// mode, ASCII delimiter LF) answering the unit ids in `units`; with `broadcast`, unit id 0
    /// is a broadcast: writes are executed, nothing is answered (§8.9).
    #[must_use]
    pub const fn new(units: UnitIds, broadcast: bool) -> Self {
        Self {
            units,
            broadcast,
            counters: [0; 8],
            event_count: 0,
            diagnostic_register: 0,
            event_log: [0; MAX_EVENT_LOG_LEN],
            event_log_len: 0,
            listen_only: false,
            ascii_delimiter: DEFAULT_ASCII_DELIMITER,
            program_busy: false,
        }
    }

    /// A serial-line server at `unit_id`: answers only that address, honours broadcasts.
    #[must_use]
    pub fn serial(unit_id: u8) -> Self {
        Self::new(UnitIds::single(unit_id), true)
    }

    /// A server directly on TCP: answers every unit id, no broadcast semantics (§10.2).
    #[must_use]
    pub const fn tcp() -> Self {
        Self::new(UnitIds::all(), false)
    }

    /// The unit ids answered.
    #[must_use]
    pub const fn units(&self) -> UnitIds {
        self.units
    }

    /// `true` when unit id 0 is a broadcast.
    #[must_use]
    pub const fn broadcast(&self) -> bool {
        self.broadcast
    }

    /// Replaces the unit ids answered and the broadcast rule; diagnostics state is kept.
    pub fn set_units(&mut self, units: UnitIds, broadcast: bool) {
        self.units = units;
        self.broadcast = broadcast;
    }

    /// The current value of one of the eight serial-line counters.
    #[must_use]
    pub fn counter(&self, counter: DiagnosticCounter) -> u16 {
        self.counters.get(counter.index()).copied().unwrap_or(0)
    }

    /// The event counter FC 11 reports: successful message completions.
    #[must_use]
    pub const fn event_count(&self) -> u16 {
        self.event_count
    }

    /// The communication event log, newest event first (at most 64 bytes).
    #[must_use]
    pub fn event_log(&self) -> &[u8] {
        self.event_log
            .get(..self.event_log_len)
            .unwrap_or(&self.event_log)
    }

    /// The diagnostic register 08/02 returns.
    #[must_use]
    pub const fn diagnostic_register(&self) -> u16 {
        self.diagnostic_register
    }

    /// Sets the device-specific diagnostic register.
    pub fn set_diagnostic_register(&mut self, value: u16) {
        self.diagnostic_register = value;
    }

    /// `true` while in listen-only mode (entered by 08/04, left by 08/01).
    #[must_use]
    pub const fn is_listen_only(&self) -> bool {
        self.listen_only
    }

    /// The end-of-frame character for Modbus ASCII, as changed by 08/03; the ASCII framer
    /// should read it after every reply.
    #[must_use]
    pub const fn ascii_delimiter(&self) -> u8 {
        self.ascii_delimiter
    }

    /// Marks a program command as executing: FC 11 and FC 12 then report status 0xFFFF.
    pub fn set_program_busy(&mut self, busy: bool) {
        self.program_busy = busy;
    }

    /// The framing layer received a frame with a valid CRC/LRC, for any unit id (CPT1).
    pub fn note_frame_received(&mut self) {
        self.bump(DiagnosticCounter::BusMessage);
    }

    /// The framing layer discarded a frame: bad CRC/LRC, a character error, or fewer than 3
    /// bytes (CPT2). Logs a receive event with the communication-error bit.
    pub fn note_frame_error(&mut self) {
        self.bump(DiagnosticCounter::BusCommunicationError);
        self.push_event(self.receive_event(false) | RECEIVE_COMMUNICATION_ERROR);
    }

    /// The framing layer lost characters to an overrun (CPT8). Sets the overrun flag (bit 0 of
    /// the diagnostic register, cleared by 08/14) and logs a receive event with the overrun bit.
    pub fn note_character_overrun(&mut self) {
        self.bump(DiagnosticCounter::BusCharacterOverrun);
        self.diagnostic_register |= OVERRUN_FLAG;
        self.push_event(self.receive_event(false) | RECEIVE_CHARACTER_OVERRUN);
    }

    /// Answers one request PDU addressed to `unit_id`, writing the response PDU into `out`
    /// (give it [`MAX_PDU_LEN`] bytes).
    ///
    /// Order of decisions (`modbus-reference.md` §13): unit-id filter (foreign → silent),
    /// listen-only (silent; only 08/01 acts), decoding in the spec's order (01, 03, 02), the
    /// handler (its 02/04/...), encoding. Broadcasts execute the write functions (05, 06, 15, 16,
    /// 21, 22 and the FC 08 sub-functions without data) and are never answered; anything that
    /// reads is not executed and counts as an exception (CPT3) with no response (CPT5).
    pub fn respond<H: Handler + ?Sized>(
        &mut self,
        unit_id: u8,
        request_pdu: &[u8],
        handler: &mut H,
        out: &mut [u8],
    ) -> Reply {
        let broadcast = self.broadcast && unit_id == 0;
        if !broadcast && !self.units.contains(unit_id) {
            return Reply::Silent(SilentReason::ForeignUnit);
        }
        self.push_event(self.receive_event(broadcast));
        self.bump(DiagnosticCounter::ServerMessage);
        let decoded = Request::decode(request_pdu);

        if self.listen_only {
            // Monitoring only: the one request acted upon is the restart that ends this mode.
            self.bump(DiagnosticCounter::ServerNoResponse);
            if let Ok(Request::Diagnostics(DiagnosticsRequest::RestartCommunicationsOption {
                clear_event_log,
            })) = decoded
            {
                self.restart(clear_event_log);
            }
            return Reply::Silent(SilentReason::ListenOnly);
        }

        let Some(&function_byte) = request_pdu.first() else {
            self.bump(DiagnosticCounter::BusExceptionError);
            self.bump(DiagnosticCounter::ServerNoResponse);
            return Reply::Silent(SilentReason::EmptyPdu);
        };
        let function = FunctionCode::from(function_byte);
        let (outcome, after) = match decoded {
            Err(error) => (Outcome::Exception(error.exception_code()), After::Nothing),
            Ok(request) if broadcast && !allowed_in_broadcast(&request) => {
                // "Function code prohibited in broadcast": not executed, nothing sent.
                self.bump(DiagnosticCounter::BusExceptionError);
                self.bump(DiagnosticCounter::ServerNoResponse);
                self.push_event(self.send_event(0));
                return Reply::Silent(SilentReason::Broadcast);
            }
            Ok(request) => {
                let unit = if broadcast {
                    Unit::Broadcast
                } else {
                    Unit::Id(unit_id)
                };
                self.execute(unit, &request, handler, out)
            }
        };
        let reply = self.finish(function, outcome, broadcast, out);
        match after {
            After::Nothing => {}
            After::ClearCounters => self.clear_counters(),
            After::Restart { clear_event_log } => self.restart(clear_event_log),
        }
        reply
    }

    /// Counts and logs an outcome and turns it into the reply.
    fn finish(
        &mut self,
        function: FunctionCode,
        outcome: Outcome,
        broadcast: bool,
        out: &mut [u8],
    ) -> Reply {
        match outcome {
            Outcome::Normal(len) => {
                // FC 11 is the one successful completion the event counter leaves out (§7.2).
                if function != FunctionCode::GetCommEventCounter {
                    self.event_count = self.event_count.wrapping_add(1);
                }
                self.push_event(self.send_event(0));
                if broadcast {
                    self.bump(DiagnosticCounter::ServerNoResponse);
                    Reply::Silent(SilentReason::Broadcast)
                } else {
                    Reply::Send(len)
                }
            }
            Outcome::Exception(code) => {
                self.bump(DiagnosticCounter::BusExceptionError);
                let event_bit = match code {
                    ExceptionCode::IllegalFunction
                    | ExceptionCode::IllegalDataAddress
                    | ExceptionCode::IllegalDataValue => SEND_READ_EXCEPTION,
                    ExceptionCode::ServerDeviceFailure => SEND_ABORT_EXCEPTION,
                    ExceptionCode::Acknowledge | ExceptionCode::ServerDeviceBusy => {
                        SEND_BUSY_EXCEPTION
                    }
                    ExceptionCode::NegativeAcknowledge => SEND_NAK_EXCEPTION,
                    _ => 0,
                };
                self.push_event(self.send_event(event_bit));
                if broadcast {
                    self.bump(DiagnosticCounter::ServerNoResponse);
                    return Reply::Silent(SilentReason::Broadcast);
                }
                match code {
                    ExceptionCode::NegativeAcknowledge => self.bump(DiagnosticCounter::ServerNak),
                    ExceptionCode::ServerDeviceBusy => self.bump(DiagnosticCounter::ServerBusy),
                    _ => {}
                }
                let bytes = ExceptionResponse { function, code }.to_bytes();
                match out.get_mut(..bytes.len()) {
                    Some(slot) => {
                        slot.copy_from_slice(&bytes);
                        Reply::Send(bytes.len())
                    }
                    None => Reply::Silent(SilentReason::BufferTooSmall),
                }
            }
            Outcome::EnterListenOnly => {
                self.event_count = self.event_count.wrapping_add(1);
                self.bump(DiagnosticCounter::ServerNoResponse);
                self.listen_only = true;
                self.push_event(EVENT_ENTERED_LISTEN_ONLY);
                Reply::Silent(if broadcast {
                    SilentReason::Broadcast
                } else {
                    SilentReason::NoResponse
                })
            }
        }
    }

    /// Runs a decoded request against the handler and encodes the normal response into `out`.
    #[allow(
        clippy::too_many_lines,
        reason = "one arm per function code reads best"
    )]
    fn execute<H: Handler + ?Sized>(
        &mut self,
        unit: Unit,
        request: &Request<'_>,
        handler: &mut H,
        out: &mut [u8],
    ) -> (Outcome, After) {
        let mut bits = [false; MAX_READ_BITS as usize];
        let mut words = [0u16; MAX_READ_REGISTERS as usize];
        let mut bytes = [0u8; MAX_PDU_LEN];
        let mut after = After::Nothing;
        let result = match *request {
            Request::ReadCoils { address, quantity } => {
                scratch(&mut bits, quantity).and_then(|bits| {
                    handler.read_coils(unit, address, bits)?;
                    encode(
                        &Response::ReadCoils {
                            values: Coils::from_bools(bits),
                        },
                        out,
                    )
                })
            }
            Request::ReadDiscreteInputs { address, quantity } => scratch(&mut bits, quantity)
                .and_then(|bits| {
                    handler.read_discrete_inputs(unit, address, bits)?;
                    encode(
                        &Response::ReadDiscreteInputs {
                            values: Coils::from_bools(bits),
                        },
                        out,
                    )
                }),
            Request::ReadHoldingRegisters { address, quantity } => scratch(&mut words, quantity)
                .and_then(|words| {
                    handler.read_holding_registers(unit, address, words)?;
                    encode(
                        &Response::ReadHoldingRegisters {
                            values: Registers::from_words(words),
                        },
                        out,
                    )
                }),
            Request::ReadInputRegisters { address, quantity } => scratch(&mut words, quantity)
                .and_then(|words| {
                    handler.read_input_registers(unit, address, words)?;
                    encode(
                        &Response::ReadInputRegisters {
                            values: Registers::from_words(words),
                        },
                        out,
                    )
                }),
            Request::WriteSingleCoil { address, value } => handler
                .write_single_coil(unit, address, value)
                .and_then(|()| encode(&Response::WriteSingleCoil { address, value }, out)),
            Request::WriteSingleRegister { address, value } => handler
                .write_single_register(unit, address, value)
                .and_then(|()| encode(&Response::WriteSingleRegister { address, value }, out)),
            Request::ReadExceptionStatus => handler
                .read_exception_status(unit)
                .and_then(|status| encode(&Response::ReadExceptionStatus { status }, out)),
            Request::Diagnostics(diagnostics) => {
                let (result, then) = self.diagnostics(diagnostics, out);
                after = then;
                match result {
                    Ok(Some(len)) => Ok(len),
                    Ok(None) => return (Outcome::EnterListenOnly, After::Nothing),
                    Err(code) => Err(code),
                }
            }
            Request::GetCommEventCounter => encode(
                &Response::GetCommEventCounter {
                    status: self.status(),
                    event_count: self.event_count,
                },
                out,
            ),
            Request::GetCommEventLog => encode(
                &Response::GetCommEventLog {
                    status: self.status(),
                    event_count: self.event_count,
                    message_count: self.counter(DiagnosticCounter::BusMessage),
                    events: self.event_log(),
                },
                out,
            ),
            Request::WriteMultipleCoils { address, values } => handler
                .write_multiple_coils(unit, address, values)
                .and_then(|()| {
                    encode(
                        &Response::WriteMultipleCoils {
                            address,
                            quantity: len_u16(values.len())?,
                        },
                        out,
                    )
                }),
            Request::WriteMultipleRegisters { address, values } => handler
                .write_multiple_registers(unit, address, values)
                .and_then(|()| {
                    encode(
                        &Response::WriteMultipleRegisters {
                            address,
                            quantity: len_u16(values.len())?,
                        },
                        out,
                    )
                }),
            Request::ReportServerId => {
                let area = bytes.get_mut(..MAX_PDU_LEN - 2).unwrap_or_default();
                handler.report_server_id(unit, area).and_then(|len| {
                    let data = bytes.get(..len).ok_or(ExceptionCode::ServerDeviceFailure)?;
                    encode(&Response::ReportServerId { data }, out)
                })
            }
            Request::ReadFileRecord { groups } => read_file_record(handler, unit, groups, out),
            Request::WriteFileRecord { records } => write_file_record(handler, unit, records, out),
            Request::MaskWriteRegister {
                address,
                and_mask,
                or_mask,
            } => handler
                .mask_write_register(unit, address, and_mask, or_mask)
                .and_then(|()| {
                    encode(
                        &Response::MaskWriteRegister {
                            address,
                            and_mask,
                            or_mask,
                        },
                        out,
                    )
                }),
            Request::ReadWriteMultipleRegisters {
                read_address,
                read_quantity,
                write_address,
                values,
            } => scratch(&mut words, read_quantity).and_then(|words| {
                handler.read_write_multiple_registers(
                    unit,
                    read_address,
                    words,
                    write_address,
                    values,
                )?;
                encode(
                    &Response::ReadWriteMultipleRegisters {
                        values: Registers::from_words(words),
                    },
                    out,
                )
            }),
            Request::ReadFifoQueue { address } => {
                scratch(&mut words, MAX_FIFO_COUNT).and_then(|words| {
                    let count = handler.read_fifo_queue(unit, address, words)?;
                    let values = words.get(..count).ok_or(ExceptionCode::IllegalDataValue)?;
                    encode(
                        &Response::ReadFifoQueue {
                            values: Registers::from_words(values),
                        },
                        out,
                    )
                })
            }
            Request::CanOpenGeneralReference { data } => {
                let area = bytes.get_mut(..MAX_PDU_LEN - 2).unwrap_or_default();
                handler
                    .can_open_general_reference(unit, data, area)
                    .and_then(|len| {
                        let data = bytes.get(..len).ok_or(ExceptionCode::ServerDeviceFailure)?;
                        encode(&Response::CanOpenGeneralReference { data }, out)
                    })
            }
            Request::ReadDeviceIdentification { code, object_id } => {
                read_device_identification(handler, unit, code, object_id, out)
            }
            Request::Custom { function, data } => {
                let area = bytes.get_mut(..MAX_PDU_LEN - 1).unwrap_or_default();
                handler.custom(unit, function, data, area).and_then(|len| {
                    let data = bytes.get(..len).ok_or(ExceptionCode::ServerDeviceFailure)?;
                    encode(&Response::Custom { function, data }, out)
                })
            }
        };
        match result {
            Ok(len) => (Outcome::Normal(len), after),
            Err(code) => (Outcome::Exception(code), After::Nothing),
        }
    }

    /// FC 08: `Ok(Some(len))` for a response in `out`, `Ok(None)` for 08/04 (no response).
    fn diagnostics(
        &mut self,
        request: DiagnosticsRequest<'_>,
        out: &mut [u8],
    ) -> (Result<Option<usize>, ExceptionCode>, After) {
        let mut after = After::Nothing;
        let response = match request {
            DiagnosticsRequest::ReturnQueryData { data } => {
                DiagnosticsResponse::ReturnQueryData { data }
            }
            DiagnosticsRequest::RestartCommunicationsOption { clear_event_log } => {
                // The echo goes out before the restart takes effect.
                after = After::Restart { clear_event_log };
                DiagnosticsResponse::RestartCommunicationsOption { clear_event_log }
            }
            DiagnosticsRequest::ReturnDiagnosticRegister => {
                DiagnosticsResponse::ReturnDiagnosticRegister {
                    value: self.diagnostic_register,
                }
            }
            DiagnosticsRequest::ChangeAsciiInputDelimiter { delimiter } => {
                self.ascii_delimiter = delimiter;
                DiagnosticsResponse::ChangeAsciiInputDelimiter { delimiter }
            }
            DiagnosticsRequest::ForceListenOnlyMode => return (Ok(None), after),
            DiagnosticsRequest::ClearCountersAndDiagnosticRegister => {
                after = After::ClearCounters;
                DiagnosticsResponse::ClearCountersAndDiagnosticRegister
            }
            DiagnosticsRequest::ReturnCounter(counter) => DiagnosticsResponse::ReturnCounter {
                counter,
                value: self.counter(counter),
            },
            DiagnosticsRequest::ClearOverrunCounterAndFlag => {
                if let Some(overrun) = self
                    .counters
                    .get_mut(DiagnosticCounter::BusCharacterOverrun.index())
                {
                    *overrun = 0;
                }
                self.diagnostic_register &= !OVERRUN_FLAG;
                DiagnosticsResponse::ClearOverrunCounterAndFlag
            }
        };
        (
            encode(&Response::Diagnostics(response), out).map(Some),
            after,
        )
    }

    /// 08/01: leave listen-only mode, clear the counters, log the restart (clearing the log
    /// first when asked).
    fn restart(&mut self, clear_event_log: bool) {
        self.listen_only = false;
        self.clear_counters();
        if clear_event_log {
            self.event_log_len = 0;
        }
        self.push_event(EVENT_COMMUNICATION_RESTART);
    }

    /// 08/0A: clear CPT1–CPT8, the event counter and the diagnostic register.
    fn clear_counters(&mut self) {
        self.counters = [0; 8];
        self.event_count = 0;
        self.diagnostic_register = 0;
    }

    fn status(&self) -> u16 {
        if self.program_busy { STATUS_BUSY } else { 0 }
    }

    fn bump(&mut self, counter: DiagnosticCounter) {
        // The spec does not say whether counters wrap or saturate; Qt wraps (16-bit storage).
        if let Some(value) = self.counters.get_mut(counter.index()) {
            *value = value.wrapping_add(1);
        }
    }

    fn receive_event(&self, broadcast: bool) -> u8 {
        let mut event = RECEIVE_EVENT;
        if self.listen_only {
            event |= RECEIVE_LISTEN_ONLY;
        }
        if broadcast {
            event |= RECEIVE_BROADCAST;
        }
        event
    }

    fn send_event(&self, bits: u8) -> u8 {
        let mut event = SEND_EVENT | bits;
        if self.listen_only {
            event |= SEND_LISTEN_ONLY;
        }
        event
    }

    /// Inserts `event` as the newest entry, pushing out the oldest when the log is full.
    fn push_event(&mut self, event: u8) {
        self.event_log.copy_within(..MAX_EVENT_LOG_LEN - 1, 1);
        if let Some(first) = self.event_log.first_mut() {
            *first = event;
        }
        self.event_log_len = (self.event_log_len + 1).min(MAX_EVENT_LOG_LEN);
    }
}

/// Broadcasts are write-only (§8.9): functions that return data are meaningless there.
fn allowed_in_broadcast(request: &Request<'_>) -> bool {
    match request {
        Request::WriteSingleCoil { .. }
        | Request::WriteSingleRegister { .. }
        | Request::WriteMultipleCoils { .. }
        | Request::WriteMultipleRegisters { .. }
        | Request::WriteFileRecord { .. }
        | Request::MaskWriteRegister { .. } => true,
        Request::Diagnostics(diagnostics) => matches!(
            diagnostics,
            DiagnosticsRequest::RestartCommunicationsOption { .. }
                | DiagnosticsRequest::ChangeAsciiInputDelimiter { .. }
                | DiagnosticsRequest::ForceListenOnlyMode
                | DiagnosticsRequest::ClearCountersAndDiagnosticRegister
                | DiagnosticsRequest::ClearOverrunCounterAndFlag
        ),
        _ => false,
    }
}

/// The first `quantity` slots of a scratch buffer; the decoder bounds quantities, so failure
/// here would be an internal inconsistency, reported as a device failure rather than a panic.
fn scratch<T>(buffer: &mut [T], quantity: u16) -> Result<&mut [T], ExceptionCode> {
    buffer
        .get_mut(..usize::from(quantity))
        .ok_or(ExceptionCode::ServerDeviceFailure)
}

/// Encodes a normal response; a response the codec refuses (a handler returned too much) or
/// that does not fit `out` becomes exception 04.
fn encode(response: &Response<'_>, out: &mut [u8]) -> Result<usize, ExceptionCode> {
    response
        .encode(out)
        .map_err(|_| ExceptionCode::ServerDeviceFailure)
}

fn len_u16(len: usize) -> Result<u16, ExceptionCode> {
    u16::try_from(len).map_err(|_| ExceptionCode::ServerDeviceFailure)
}

/// FC 20: one handler call per group into one shared scratch area, then one response.
fn read_file_record<H: Handler + ?Sized>(
    handler: &mut H,
    unit: Unit,
    groups: FileReadGroups<'_>,
    out: &mut [u8],
) -> Result<usize, ExceptionCode> {
    const MAX_GROUPS: usize = crate::pdu::MAX_FILE_READ_GROUPS;
    // The decoder has checked the response fits 253 bytes, so all records fit 125 words.
    let mut words = [0u16; MAX_READ_REGISTERS as usize];
    let mut spans = [(0usize, 0usize); MAX_GROUPS];
    let mut used = 0usize;
    let mut count = 0usize;
    for group in &groups {
        let end = used + usize::from(group.record_length);
        let area = words
            .get_mut(used..end)
            .ok_or(ExceptionCode::IllegalDataValue)?;
        handler.read_file_record(unit, group.file_number, group.record_number, area)?;
        *spans
            .get_mut(count)
            .ok_or(ExceptionCode::IllegalDataValue)? = (used, end);
        used = end;
        count += 1;
    }
    let mut records = [Registers::from_words(&[]); MAX_GROUPS];
    for (slot, &(start, end)) in records.iter_mut().zip(spans.iter().take(count)) {
        *slot = Registers::from_words(words.get(start..end).unwrap_or_default());
    }
    let records = records.get(..count).unwrap_or_default();
    encode(
        &Response::ReadFileRecord {
            records: crate::pdu::FileReadResponses::from_items(records),
        },
        out,
    )
}

/// FC 21: one handler call per group, then the echo.
fn write_file_record<H: Handler + ?Sized>(
    handler: &mut H,
    unit: Unit,
    records: FileRecords<'_>,
    out: &mut [u8],
) -> Result<usize, ExceptionCode> {
    for record in &records {
        handler.write_file_record(
            unit,
            record.file_number,
            record.record_number,
            record.values,
        )?;
    }
    encode(&Response::WriteFileRecord { records }, out)
}

/// FC 43/14: the stream, individual-access and splitting rules of §4.19.2.
fn read_device_identification<H: Handler + ?Sized>(
    handler: &mut H,
    unit: Unit,
    code: ReadDeviceIdCode,
    object_id: u8,
    out: &mut [u8],
) -> Result<usize, ExceptionCode> {
    let mut value = [0u8; MAX_DEVICE_ID_OBJECT_LEN];
    // Objects are packed in wire form (id, length, value) as they are found.
    let mut packed = [0u8; MAX_OBJECT_BYTES];
    let mut used = 0usize;
    let conformity_level = handler.device_identification_conformity_level(unit);
    let mut more_follows = false;
    let mut next_object_id = 0u8;

    let mut append = |id: u8, len: usize, value: &[u8]| -> Result<bool, ExceptionCode> {
        let object = value.get(..len).ok_or(ExceptionCode::ServerDeviceFailure)?;
        let end = used + 2 + len;
        let Some(slot) = packed.get_mut(used..end) else {
            return Ok(false);
        };
        let (header, body) = slot.split_at_mut(2);
        header.copy_from_slice(&[id, u8::try_from(len).unwrap_or(u8::MAX)]);
        body.copy_from_slice(object);
        used = end;
        Ok(true)
    };

    if code == ReadDeviceIdCode::Individual {
        let len = handler
            .read_device_identification(unit, object_id, &mut value)?
            .ok_or(ExceptionCode::IllegalDataAddress)?;
        if !append(object_id, len, &value)? {
            return Err(ExceptionCode::ServerDeviceFailure);
        }
    } else {
        // Answer at the lower of the requested and the device's category (no exception).
        let category = code.value().min((conformity_level & 0x7F).clamp(1, 3));
        let last_id = match category {
            1 => 0x02,
            2 => 0x7F,
            _ => 0xFF,
        };
        // An id the device does not know (or outside the category) restarts the stream at 0.
        let first_id = if object_id <= last_id
            && handler
                .read_device_identification(unit, object_id, &mut value)?
                .is_some()
        {
            object_id
        } else {
            0
        };
        for id in first_id..=last_id {
            let Some(len) = handler.read_device_identification(unit, id, &mut value)? else {
                continue;
            };
            if !append(id, len, &value)? {
                more_follows = true;
                next_object_id = id;
                break;
            }
        }
    }

    let objects = packed.get(..used).unwrap_or_default();
    encode(
        &Response::ReadDeviceIdentification(DeviceIdentification {
            code,
            conformity_level,
            more_follows,
            next_object_id,
            objects: DeviceIdObjects::from_validated_wire(objects),
        }),
        out,
    )
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A handler that serves nothing: every function falls back to the default.
    struct Nothing;
    impl Handler for Nothing {}

    fn respond(server: &mut PduServer, unit_id: u8, pdu: &[u8]) -> (Reply, [u8; MAX_PDU_LEN]) {
        let mut out = [0u8; MAX_PDU_LEN];
        let reply = server.respond(unit_id, pdu, &mut Nothing, &mut out);
        (reply, out)
    }

    #[test]
    fn default_handler_answers_illegal_function_for_everything() {
        let mut server = PduServer::serial(5);
        for pdu in [
            &[0x01, 0x00, 0x00, 0x00, 0x01][..],
            &[0x06, 0x00, 0x00, 0x00, 0x01],
            &[0x07],
            &[0x11],
            &[0x18, 0x00, 0x00],
            &[0x2B, 0x0E, 0x01, 0x00],
            &[0x2B, 0x0D, 0x01],
            &[0x64],
        ] {
            let (reply, out) = respond(&mut server, 5, pdu);
            assert_eq!(reply, Reply::Send(2));
            assert_eq!(out[..2], [pdu[0] | 0x80, 0x01]);
        }
        assert_eq!(server.counter(DiagnosticCounter::BusExceptionError), 8);
        assert_eq!(server.event_count(), 0);
    }

    #[test]
    fn diagnostics_are_served_by_the_core_without_a_handler() {
        let mut server = PduServer::serial(5);
        let (reply, out) = respond(&mut server, 5, &[0x08, 0x00, 0x0E, 0x00, 0x00]);
        assert_eq!(reply, Reply::Send(5));
        assert_eq!(out[..5], [0x08, 0x00, 0x0E, 0x00, 0x01]);
        let (reply, out) = respond(&mut server, 5, &[0x0B]);
        assert_eq!(reply, Reply::Send(5));
        assert_eq!(out[..5], [0x0B, 0x00, 0x00, 0x00, 0x01]);
        server.set_program_busy(true);
        let (_, out) = respond(&mut server, 5, &[0x0B]);
        assert_eq!(out[..5], [0x0B, 0xFF, 0xFF, 0x00, 0x01]);
    }

    #[test]
    fn empty_pdu_and_tiny_buffers_are_silent() {
        let mut server = PduServer::tcp();
        let (reply, _) = respond(&mut server, 1, &[]);
        assert_eq!(reply, Reply::Silent(SilentReason::EmptyPdu));
        let mut out = [0u8; 1];
        let reply = server.respond(1, &[0x07], &mut Nothing, &mut out);
        assert_eq!(reply, Reply::Silent(SilentReason::BufferTooSmall));
    }

    #[test]
    fn unit_ids_are_a_set() {
        let ids = UnitIds::single(1).with(200).with(255);
        assert!(ids.contains(1) && ids.contains(200) && ids.contains(255));
        assert!(!ids.contains(0) && !ids.contains(2));
        assert!((0..=255).all(|id| UnitIds::all().contains(id)));
        assert!((0..=255).all(|id| !UnitIds::none().contains(id)));
    }

    #[test]
    fn event_log_is_capped_at_64_newest_first() {
        let mut server = PduServer::serial(1);
        for event in 0..100u8 {
            server.push_event(event);
        }
        assert_eq!(server.event_log().len(), MAX_EVENT_LOG_LEN);
        assert_eq!(server.event_log()[0], 99);
        assert_eq!(server.event_log()[63], 36);
    }
}
