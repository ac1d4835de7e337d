//! The golden conformance corpus in `tests/vectors/` (format: `tests/vectors/README.md`), checked
//! line by line against the codec: framing, PDU decode, canonical field summary, byte-exact
//! re-encode, and the error kind / exception code of every negative vector.
//!
//! A malformed corpus line fails the test loudly, so the corpus cannot silently rot.

mod support;

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use modbus_stack::frame::rtu::{self, LengthRule, LengthRules};
use modbus_stack::frame::{Role, Status, ascii, tcp};
use modbus_stack::pdu::{
    Coils, DiagnosticsRequest, DiagnosticsResponse, FunctionCode, Registers, Request, Response,
};
use modbus_stack::time::Instant;
use modbus_stack::{DecodeError, FrameError};
use support::{crc16_modbus, encode_request, encode_response, hex, lrc};

/// Fewest vector lines each file must hold; an emptied or truncated file fails here.
const MIN_LINES: &[(&str, usize)] = &[("pdu", 240), ("rtu", 85), ("ascii", 40), ("tcp", 50)];

const KINDS: &[&str] = &[
    // PDU layer (DecodeError)
    "empty",
    "pdu_too_long",
    "invalid_function_code",
    "unexpected_function",
    "unsupported_sub_function",
    "truncated",
    "trailing_bytes",
    "byte_count_mismatch",
    "odd_register_bytes",
    "coil_bytes_mismatch",
    "quantity_out_of_range",
    "address_overflow",
    "invalid_coil_value",
    "invalid_diagnostic_data",
    "invalid_device_id_code",
    "invalid_reference_type",
    "file_record_out_of_range",
    "response_too_long",
    "invalid_field_value",
    "echo_mismatch",
    "no_response_expected",
    // framing layer (FrameError, and a stream that ends before the frame)
    "crc_mismatch",
    "lrc_mismatch",
    "invalid_hex_digit",
    "invalid_end",
    "odd_hex_digits",
    "frame_too_long",
    "frame_too_short",
    "protocol_id",
    "length_field",
    "incomplete",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Pdu,
    Rtu,
    Ascii,
    Tcp,
}

#[derive(Debug, Clone)]
struct Line {
    /// `file:line` for messages.
    at: String,
    id: String,
    framing: Framing,
    request: bool,
    bytes: Vec<u8>,
    request_ref: Option<String>,
    ok: bool,
    detail: String,
}

/// What the codec says about a line: a canonical summary, or an error kind with the exception a
/// server must answer (requests only).
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Ok(String),
    Error { kind: String, exception: Option<u8> },
}

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

/// Every `.tsv` file in `tests/vectors/`, sorted by name.
fn corpus_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(vectors_dir())
        .expect("tests/vectors/ is readable")
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "tsv"))
        .collect();
    files.sort();
    files
}

/// Decodes the escapes of the ASCII bytes column: `\r`, `\n`, `\t`, `\\`, `\xHH`.
fn unescape(text: &str, at: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut chars = text.bytes();
    while let Some(c) = chars.next() {
        if c != b'\\' {
            assert!(
                (0x20..0x7F).contains(&c),
                "{at}: raw byte {c:#04X} in ascii column"
            );
            out.push(c);
            continue;
        }
        match chars.next() {
            Some(b'r') => out.push(b'\r'),
            Some(b'n') => out.push(b'\n'),
            Some(b't') => out.push(b'\t'),
            Some(b'\\') => out.push(b'\\'),
            Some(b'x') => {
                let digits = [chars.next(), chars.next()];
                let [Some(high), Some(low)] = digits else {
                    panic!("{at}: truncated \\x escape");
                };
                let text = String::from_utf8(vec![high, low]).expect("ascii");
                out.push(
                    u8::from_str_radix(&text, 16)
                        .unwrap_or_else(|_| panic!("{at}: bad \\x escape {text:?}")),
                );
            }
            other => panic!("{at}: unknown escape \\{:?}", other.map(char::from)),
        }
    }
    out
}

fn parse_file(path: &Path) -> Vec<Line> {
    let name = path
        .file_stem()
        .and_then(|s| s.to_str())
        .expect("file name");
    let file_framing = match name {
        "pdu" => Framing::Pdu,
        "rtu" => Framing::Rtu,
        "ascii" => Framing::Ascii,
        "tcp" => Framing::Tcp,
        other => panic!("unexpected corpus file {other}.tsv: add it to the test"),
    };
    let text = fs::read_to_string(path).expect("corpus file is readable UTF-8");
    let mut lines = Vec::new();
    for (number, raw) in text.lines().enumerate() {
        let at = format!("{name}.tsv:{}", number + 1);
        if raw.trim().is_empty() || raw.starts_with('#') {
            continue;
        }
        let cols: Vec<&str> = raw.split('\t').collect();
        assert_eq!(cols.len(), 7, "{at}: expected 7 tab-separated columns");
        for (i, col) in cols.iter().enumerate() {
            assert!(
                !col.is_empty() && col.trim() == *col,
                "{at}: column {} is empty or padded",
                i + 1
            );
        }
        let [id, framing, direction, bytes, request_ref, expect, detail] = cols[..] else {
            unreachable!()
        };
        let framing = match framing {
            "pdu" => Framing::Pdu,
            "rtu" => Framing::Rtu,
            "ascii" => Framing::Ascii,
            "tcp" => Framing::Tcp,
            other => panic!("{at}: unknown framing {other:?}"),
        };
        assert_eq!(framing, file_framing, "{at}: framing differs from the file");
        assert!(
            id.starts_with(&format!("{name}-"))
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "{at}: id {id:?} must start with `{name}-` and use [A-Za-z0-9_-]"
        );
        let request = match direction {
            "request" => true,
            "response" => false,
            other => panic!("{at}: unknown direction {other:?}"),
        };
        let ok = match expect {
            "ok" => true,
            "error" => false,
            other => panic!("{at}: unknown expect {other:?}"),
        };
        let bytes = match (framing, bytes) {
            (_, "-") => Vec::new(),
            (Framing::Ascii, text) => unescape(text, &at),
            (_, text) => hex(text),
        };
        let request_ref = match (request, request_ref) {
            (true, "-") => None,
            (true, other) => panic!("{at}: a request has no request_ref, found {other:?}"),
            (false, "-") => panic!("{at}: a response needs a request_ref"),
            (false, other) => Some(other.to_owned()),
        };
        check_detail_syntax(&at, request, ok, framing, detail);
        lines.push(Line {
            at,
            id: id.to_owned(),
            framing,
            request,
            bytes,
            request_ref,
            ok,
            detail: detail.to_owned(),
        });
    }
    let min = MIN_LINES
        .iter()
        .find(|(n, _)| *n == name)
        .map_or(1, |&(_, min)| min);
    assert!(
        lines.len() >= min,
        "{name}.tsv has {} vectors, at least {min} expected",
        lines.len()
    );
    lines
}

/// The detail column is `key=value` tokens separated by single spaces; error lines name a known
/// kind, request errors at the PDU layer also the exception code.
fn check_detail_syntax(at: &str, request: bool, ok: bool, framing: Framing, detail: &str) {
    let tokens: Vec<(&str, &str)> = detail
        .split(' ')
        .map(|token| {
            token
                .split_once('=')
                .filter(|(k, v)| !k.is_empty() && !v.is_empty())
                .unwrap_or_else(|| panic!("{at}: detail token {token:?} is not key=value"))
        })
        .collect();
    if ok {
        let first = match framing {
            Framing::Pdu => "fc",
            Framing::Rtu | Framing::Ascii => "unit",
            Framing::Tcp => "tid",
        };
        assert_eq!(
            tokens[0].0, first,
            "{at}: ok detail must start with {first}="
        );
        return;
    }
    let (key, kind) = tokens[0];
    assert_eq!(key, "error", "{at}: error detail must start with error=");
    assert!(KINDS.contains(&kind), "{at}: unknown error kind {kind:?}");
    let frame_kind =
        KINDS.iter().position(|k| *k == kind) >= KINDS.iter().position(|k| *k == "crc_mismatch");
    match tokens.get(1..).unwrap_or_default() {
        [] => assert!(
            !request || frame_kind,
            "{at}: a request rejected at the PDU layer needs exception=XX"
        ),
        [("exception", code)] => {
            assert!(
                request && !frame_kind,
                "{at}: exception= only for PDU-layer request errors"
            );
            assert!(
                code.len() == 2 && u8::from_str_radix(code, 16).is_ok(),
                "{at}: exception code {code:?} is not two hex digits"
            );
        }
        other => panic!("{at}: unexpected tokens after error=: {other:?}"),
    }
}

fn load_corpus() -> Vec<Line> {
    let files = corpus_files();
    let names: BTreeSet<String> = files
        .iter()
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    for (name, _) in MIN_LINES {
        assert!(names.contains(*name), "tests/vectors/{name}.tsv is missing");
    }
    let lines: Vec<Line> = files.iter().flat_map(|path| parse_file(path)).collect();
    let mut seen = HashMap::new();
    for line in &lines {
        if let Some(first) = seen.insert(line.id.clone(), line.at.clone()) {
            panic!("{}: id {} already used at {first}", line.at, line.id);
        }
    }
    lines
}

// ---------------------------------------------------------------------------------------------
// Canonical names and summaries

fn decode_kind(error: &DecodeError) -> &'static str {
    match error {
        DecodeError::Empty => "empty",
        DecodeError::PduTooLong { .. } => "pdu_too_long",
        DecodeError::InvalidFunctionCode { .. } => "invalid_function_code",
        DecodeError::UnexpectedFunction { .. } => "unexpected_function",
        DecodeError::UnsupportedSubFunction { .. } => "unsupported_sub_function",
        DecodeError::Truncated { .. } => "truncated",
        DecodeError::TrailingBytes { .. } => "trailing_bytes",
        DecodeError::ByteCountMismatch { .. } => "byte_count_mismatch",
        DecodeError::OddRegisterBytes { .. } => "odd_register_bytes",
        DecodeError::CoilBytesMismatch { .. } => "coil_bytes_mismatch",
        DecodeError::QuantityOutOfRange { .. } => "quantity_out_of_range",
        DecodeError::AddressOverflow { .. } => "address_overflow",
        DecodeError::InvalidCoilValue { .. } => "invalid_coil_value",
        DecodeError::InvalidDiagnosticData { .. } => "invalid_diagnostic_data",
        DecodeError::InvalidDeviceIdCode { .. } => "invalid_device_id_code",
        DecodeError::InvalidReferenceType { .. } => "invalid_reference_type",
        DecodeError::FileRecordOutOfRange { .. } => "file_record_out_of_range",
        DecodeError::ResponseTooLong { .. } => "response_too_long",
        DecodeError::InvalidFieldValue { .. } => "invalid_field_value",
        DecodeError::EchoMismatch { .. } => "echo_mismatch",
        DecodeError::NoResponseExpected { .. } => "no_response_expected",
        other => panic!("DecodeError {other:?} has no corpus name: add it to KINDS"),
    }
}

fn frame_kind(error: &FrameError) -> &'static str {
    match error {
        FrameError::CrcMismatch { .. } => "crc_mismatch",
        FrameError::LrcMismatch { .. } => "lrc_mismatch",
        FrameError::InvalidHexDigit { .. } => "invalid_hex_digit",
        FrameError::InvalidEnd { .. } => "invalid_end",
        FrameError::OddHexDigits { .. } => "odd_hex_digits",
        FrameError::FrameTooLong { .. } => "frame_too_long",
        FrameError::FrameTooShort { .. } => "frame_too_short",
        FrameError::ProtocolId { .. } => "protocol_id",
        FrameError::LengthField { .. } => "length_field",
        other => panic!("FrameError {other:?} has no corpus name: add it to KINDS"),
    }
}

fn hex_or_dash(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "-".into();
    }
    bytes.iter().fold(String::new(), |mut out, b| {
        write!(out, "{b:02X}").unwrap();
        out
    })
}

fn words(values: Registers<'_>, sep: &str) -> String {
    if values.is_empty() {
        return "-".into();
    }
    values
        .iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join(sep)
}

fn bits(values: Coils<'_>) -> String {
    values.iter().map(|on| if on { '1' } else { '0' }).collect()
}

fn fc(function: FunctionCode) -> String {
    format!("fc={:02X}", function.value())
}

fn request_summary(request: &Request<'_>) -> String {
    let f = fc(request.function());
    match request {
        Request::ReadCoils { address, quantity }
        | Request::ReadDiscreteInputs { address, quantity }
        | Request::ReadHoldingRegisters { address, quantity }
        | Request::ReadInputRegisters { address, quantity } => {
            format!("{f} address={address} quantity={quantity}")
        }
        Request::WriteSingleCoil { address, value } => {
            format!(
                "{f} address={address} value={}",
                if *value { "on" } else { "off" }
            )
        }
        Request::WriteSingleRegister { address, value } => {
            format!("{f} address={address} value={value}")
        }
        Request::ReadExceptionStatus
        | Request::GetCommEventCounter
        | Request::GetCommEventLog
        | Request::ReportServerId => f,
        Request::Diagnostics(d) => {
            let sub = format!("{f} sub={:04X}", d.sub_function());
            match d {
                DiagnosticsRequest::ReturnQueryData { data } => {
                    format!("{sub} data={}", hex_or_dash(data))
                }
                DiagnosticsRequest::RestartCommunicationsOption { clear_event_log } => {
                    format!("{sub} clear_log={}", u8::from(*clear_event_log))
                }
                DiagnosticsRequest::ChangeAsciiInputDelimiter { delimiter } => {
                    format!("{sub} delimiter={delimiter:02X}")
                }
                DiagnosticsRequest::ReturnDiagnosticRegister
                | DiagnosticsRequest::ForceListenOnlyMode
                | DiagnosticsRequest::ClearCountersAndDiagnosticRegister
                | DiagnosticsRequest::ReturnCounter(_)
                | DiagnosticsRequest::ClearOverrunCounterAndFlag => sub,
            }
        }
        Request::WriteMultipleCoils { address, values } => format!(
            "{f} address={address} quantity={} bits={}",
            values.len(),
            bits(*values)
        ),
        Request::WriteMultipleRegisters { address, values } => format!(
            "{f} address={address} quantity={} values={}",
            values.len(),
            words(*values, ",")
        ),
        Request::ReadFileRecord { groups } => {
            let groups: Vec<String> = groups
                .iter()
                .map(|g| format!("{}:{}:{}", g.file_number, g.record_number, g.record_length))
                .collect();
            format!("{f} groups={}", groups.join(","))
        }
        Request::WriteFileRecord { records } => format!("{f} records={}", file_records(*records)),
        Request::MaskWriteRegister {
            address,
            and_mask,
            or_mask,
        } => format!("{f} address={address} and={and_mask:04X} or={or_mask:04X}"),
        Request::ReadWriteMultipleRegisters {
            read_address,
            read_quantity,
            write_address,
            values,
        } => format!(
            "{f} read_address={read_address} read_quantity={read_quantity} \
             write_address={write_address} values={}",
            words(*values, ",")
        ),
        Request::ReadFifoQueue { address } => format!("{f} address={address}"),
        Request::CanOpenGeneralReference { data } => {
            format!("{f} mei=0D data={}", hex_or_dash(data))
        }
        Request::ReadDeviceIdentification { code, object_id } => format!(
            "{f} mei=0E code={:02X} object={object_id:02X}",
            code.value()
        ),
        Request::Custom { data, .. } => format!("{f} data={}", hex_or_dash(data)),
        other => panic!("request {other:?} has no corpus summary"),
    }
}

fn file_records(records: modbus_stack::pdu::FileRecords<'_>) -> String {
    let groups: Vec<String> = records
        .iter()
        .map(|r| {
            format!(
                "{}:{}:{}",
                r.file_number,
                r.record_number,
                words(r.values, "/")
            )
        })
        .collect();
    groups.join(",")
}

// One arm per response variant reads better than splitting the table.
#[allow(clippy::too_many_lines)]
fn response_summary(response: &Response<'_>) -> String {
    let f = fc(response.function());
    match response {
        Response::ReadCoils { values } | Response::ReadDiscreteInputs { values } => {
            format!("{f} bits={}", bits(*values))
        }
        Response::ReadHoldingRegisters { values }
        | Response::ReadInputRegisters { values }
        | Response::ReadWriteMultipleRegisters { values }
        | Response::ReadFifoQueue { values } => format!("{f} values={}", words(*values, ",")),
        Response::WriteSingleCoil { address, value } => {
            format!(
                "{f} address={address} value={}",
                if *value { "on" } else { "off" }
            )
        }
        Response::WriteSingleRegister { address, value } => {
            format!("{f} address={address} value={value}")
        }
        Response::ReadExceptionStatus { status } => format!("{f} status={status:02X}"),
        Response::Diagnostics(d) => {
            let sub = format!("{f} sub={:04X}", d.sub_function());
            match d {
                DiagnosticsResponse::ReturnQueryData { data } => {
                    format!("{sub} data={}", hex_or_dash(data))
                }
                DiagnosticsResponse::RestartCommunicationsOption { clear_event_log } => {
                    format!("{sub} clear_log={}", u8::from(*clear_event_log))
                }
                DiagnosticsResponse::ChangeAsciiInputDelimiter { delimiter } => {
                    format!("{sub} delimiter={delimiter:02X}")
                }
                DiagnosticsResponse::ReturnDiagnosticRegister { value }
                | DiagnosticsResponse::ReturnCounter { value, .. } => {
                    format!("{sub} value={value}")
                }
                DiagnosticsResponse::ClearCountersAndDiagnosticRegister
                | DiagnosticsResponse::ClearOverrunCounterAndFlag => sub,
            }
        }
        Response::GetCommEventCounter {
            status,
            event_count,
        } => format!("{f} status={status:04X} event_count={event_count}"),
        Response::GetCommEventLog {
            status,
            event_count,
            message_count,
            events,
        } => format!(
            "{f} status={status:04X} event_count={event_count} message_count={message_count} \
             events={}",
            hex_or_dash(events)
        ),
        Response::WriteMultipleCoils { address, quantity }
        | Response::WriteMultipleRegisters { address, quantity } => {
            format!("{f} address={address} quantity={quantity}")
        }
        Response::ReportServerId { data } => format!("{f} data={}", hex_or_dash(data)),
        Response::ReadFileRecord { records } => {
            let groups: Vec<String> = records.iter().map(|r| words(r, "/")).collect();
            format!("{f} records={}", groups.join(","))
        }
        Response::WriteFileRecord { records } => format!("{f} records={}", file_records(*records)),
        Response::MaskWriteRegister {
            address,
            and_mask,
            or_mask,
        } => format!("{f} address={address} and={and_mask:04X} or={or_mask:04X}"),
        Response::CanOpenGeneralReference { data } => {
            format!("{f} mei=0D data={}", hex_or_dash(data))
        }
        Response::ReadDeviceIdentification(id) => {
            let mut objects = String::new();
            for (i, object) in id.objects.iter().enumerate() {
                let sep = if i == 0 { "" } else { "," };
                write!(
                    objects,
                    "{sep}{:02X}:{}",
                    object.id,
                    hex_or_dash(object.value)
                )
                .unwrap();
            }
            if objects.is_empty() {
                objects.push('-');
            }
            format!(
                "{f} mei=0E code={:02X} conformity={:02X} more={} next={:02X} objects={objects}",
                id.code.value(),
                id.conformity_level,
                if id.more_follows { "FF" } else { "00" },
                id.next_object_id
            )
        }
        Response::Custom { data, .. } => format!("{f} data={}", hex_or_dash(data)),
        Response::Exception(e) => format!(
            "fc={:02X} exception={:02X}",
            e.function.exception_byte(),
            e.code.value()
        ),
        other => panic!("response {other:?} has no corpus summary"),
    }
}

// ---------------------------------------------------------------------------------------------
// Evaluation

/// A line's framing, undone: the framing's field prefix of the summary and the PDU; or the
/// framing error kind. Checks the independent CRC/LRC and, for complete frames, that the
/// framing's encoder rebuilds the exact bytes (done by the caller once the PDU is re-encoded).
struct Unframed {
    prefix: String,
    pdu: Vec<u8>,
    /// Rebuilds the line's bytes from a PDU.
    reframe: Reframe,
}

type Reframe = Box<dyn Fn(&[u8]) -> Vec<u8>>;

fn rules() -> LengthRules {
    let mut rules = LengthRules::new();
    // User-defined codes in the corpus have no length rule of their own: end them by CRC.
    for code in [0x41, 0x64] {
        for role in [Role::Request, Role::Response] {
            rules.set(code, role, LengthRule::Unknown).unwrap();
        }
    }
    rules
}

fn unframe(line: &Line) -> Result<Unframed, String> {
    let bytes = line.bytes.clone();
    let at = &line.at;
    let role = if line.request {
        Role::Request
    } else {
        Role::Response
    };
    match line.framing {
        Framing::Pdu => Ok(Unframed {
            prefix: String::new(),
            pdu: bytes,
            reframe: Box::new(<[u8]>::to_vec),
        }),
        Framing::Rtu => {
            // A corpus line is one whole frame, as delimited by t3.5 of silence.
            let adu = rtu::Adu::new_checked(&bytes[..]).map_err(|e| frame_kind(&e).to_owned())?;
            let (body, trailer) = bytes.split_at(bytes.len() - 2);
            let independent = crc16_modbus(body) == trailer;
            let verdict = adu.verify_crc();
            assert_eq!(
                verdict.is_ok(),
                independent,
                "{at}: codec and bitwise CRC disagree"
            );
            verdict.map_err(|e| frame_kind(&e).to_owned())?;
            // The same bytes as a stream without timing (RTU over TCP): the length oracle and
            // the CRC must cut exactly this frame. (Only for valid PDUs: without silence, a PDU
            // with trailing bytes cannot be told from a frame followed by garbage.)
            if line.ok {
                match rtu::parse(&bytes, role, &rules()) {
                    Status::Complete { consumed, .. } => assert_eq!(
                        consumed,
                        bytes.len(),
                        "{at}: rtu::parse cut the frame at {consumed} bytes"
                    ),
                    other => panic!("{at}: rtu::parse gave {other:?} for a valid frame"),
                }
            }
            let unit = adu.unit_id();
            Ok(Unframed {
                prefix: format!("unit={unit:02X} "),
                pdu: adu.pdu().to_vec(),
                reframe: Box::new(move |pdu| {
                    let mut out = [0u8; rtu::MAX_ADU_LEN];
                    let len = rtu::encode(unit, pdu, &mut out).expect("rtu::encode");
                    out[..len].to_vec()
                }),
            })
        }
        Framing::Ascii => {
            let mut decoder = ascii::Decoder::new(ascii::Config::new());
            let taken = decoder.push(Instant::ZERO, &bytes);
            let (unit, pdu) = match decoder.poll_frame() {
                None => return Err("incomplete".into()),
                Some(Err(e)) => return Err(frame_kind(&e).to_owned()),
                Some(Ok(adu)) => {
                    assert_eq!(
                        lrc(adu.covered()),
                        adu.lrc(),
                        "{at}: codec accepted an LRC the bitwise LRC rejects"
                    );
                    (adu.unit_id(), adu.pdu().to_vec())
                }
            };
            assert_eq!(taken, bytes.len(), "{at}: characters after the frame end");
            Ok(Unframed {
                prefix: format!("unit={unit:02X} "),
                pdu,
                reframe: Box::new(move |pdu| {
                    let mut out = [0u8; ascii::MAX_FRAME_CHARS];
                    let len = ascii::encode(unit, pdu, &mut out).expect("ascii::encode");
                    out[..len].to_vec()
                }),
            })
        }
        Framing::Tcp => match tcp::parse(&bytes) {
            Status::Incomplete(_) => Err("incomplete".into()),
            Status::Invalid { error, .. } => Err(frame_kind(&error).to_owned()),
            Status::Complete { frame, consumed } => {
                assert_eq!(
                    consumed,
                    bytes.len(),
                    "{at}: corpus line holds more than one ADU"
                );
                let (tid, unit) = (frame.transaction_id(), frame.unit_id());
                Ok(Unframed {
                    prefix: format!("tid={tid:04X} unit={unit:02X} "),
                    pdu: frame.pdu().to_vec(),
                    reframe: Box::new(move |pdu| {
                        let mut out = [0u8; tcp::MAX_ADU_LEN];
                        let len = tcp::encode(tid, unit, pdu, &mut out).expect("tcp::encode");
                        out[..len].to_vec()
                    }),
                })
            }
        },
    }
}

/// The expected re-encoding of a line: ASCII encoders write upper-case hex.
fn canonical_bytes(line: &Line) -> Vec<u8> {
    match line.framing {
        Framing::Ascii => line.bytes.to_ascii_uppercase(),
        _ => line.bytes.clone(),
    }
}

fn evaluate(line: &Line, by_id: &HashMap<&str, &Line>) -> Outcome {
    let unframed = match unframe(line) {
        Ok(unframed) => unframed,
        Err(kind) => {
            return Outcome::Error {
                kind,
                exception: None,
            };
        }
    };
    let pdu = &unframed.pdu;
    let (summary, reencoded) = if line.request {
        match Request::decode(pdu) {
            Err(e) => {
                return Outcome::Error {
                    kind: decode_kind(&e).to_owned(),
                    exception: Some(e.exception_code().value()),
                };
            }
            Ok(request) => (request_summary(&request), encode_request(&request)),
        }
    } else {
        let reference = line.request_ref.as_deref().unwrap();
        let request_line = by_id
            .get(reference)
            .unwrap_or_else(|| panic!("{}: request_ref {reference} does not exist", line.at));
        assert!(
            request_line.request && request_line.ok,
            "{}: request_ref {reference} is not an ok request",
            line.at
        );
        let request_pdu = unframe(request_line)
            .unwrap_or_else(|kind| panic!("{}: request_ref does not unframe: {kind}", line.at))
            .pdu;
        let request = Request::decode(&request_pdu)
            .unwrap_or_else(|e| panic!("{}: request_ref does not decode: {e}", line.at));
        match Response::decode(pdu, &request) {
            Err(e) => {
                return Outcome::Error {
                    kind: decode_kind(&e).to_owned(),
                    exception: None,
                };
            }
            Ok(response) => (response_summary(&response), encode_response(&response)),
        }
    };
    assert_eq!(
        reencoded, *pdu,
        "{}: re-encoding the decoded PDU changed its bytes",
        line.at
    );
    assert_eq!(
        (unframed.reframe)(&reencoded),
        canonical_bytes(line),
        "{}: re-framing the PDU changed the bytes",
        line.at
    );
    Outcome::Ok(format!("{}{summary}", unframed.prefix))
}

fn expected(line: &Line) -> Outcome {
    if line.ok {
        return Outcome::Ok(line.detail.clone());
    }
    let mut kind = None;
    let mut exception = None;
    for (key, value) in line.detail.split(' ').filter_map(|t| t.split_once('=')) {
        match key {
            "error" => kind = Some(value.to_owned()),
            "exception" => exception = Some(u8::from_str_radix(value, 16).unwrap()),
            _ => unreachable!("checked by check_detail_syntax"),
        }
    }
    Outcome::Error {
        kind: kind.unwrap(),
        exception,
    }
}

#[test]
fn every_corpus_line_matches_the_codec() {
    let lines = load_corpus();
    let by_id: HashMap<&str, &Line> = lines.iter().map(|l| (l.id.as_str(), l)).collect();
    let mut failures = Vec::new();
    for line in &lines {
        let want = expected(line);
        let got = evaluate(line, &by_id);
        if got != want {
            failures.push(format!(
                "{} {}:\n    expected {want:?}\n    got      {got:?}",
                line.at, line.id
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} vectors disagree with the codec:\n{}",
        failures.len(),
        lines.len(),
        failures.join("\n")
    );
}

/// The corpus covers what its README promises: every public function code, every FC 08
/// sub-function, every exception code, requests and responses in every framing.
#[test]
fn corpus_covers_the_promised_ground() {
    let lines = load_corpus();
    let field = |line: &Line, key: &str| -> Option<String> {
        line.detail
            .split(' ')
            .find_map(|t| t.strip_prefix(&format!("{key}=")).map(str::to_owned))
    };
    let pdu_ok = |request: bool| {
        lines
            .iter()
            .filter(move |l| l.framing == Framing::Pdu && l.ok && l.request == request)
    };
    for request in [true, false] {
        let codes: BTreeSet<String> = pdu_ok(request).filter_map(|l| field(l, "fc")).collect();
        for code in [
            "01", "02", "03", "04", "05", "06", "07", "08", "0B", "0C", "0F", "10", "11", "14",
            "15", "16", "17", "18", "2B", "41",
        ] {
            assert!(
                codes.contains(code),
                "no ok pdu {} for fc {code}",
                if request { "request" } else { "response" }
            );
        }
        let meis: BTreeSet<String> = pdu_ok(request).filter_map(|l| field(l, "mei")).collect();
        assert!(meis.contains("0D") && meis.contains("0E"), "MEI 0D/0E");
    }
    let subs: BTreeSet<String> = pdu_ok(true).filter_map(|l| field(l, "sub")).collect();
    for sub in [
        "0000", "0001", "0002", "0003", "0004", "000A", "000B", "000C", "000D", "000E", "000F",
        "0010", "0011", "0012", "0014",
    ] {
        assert!(
            subs.contains(sub),
            "no ok FC 08 request for sub-function {sub}"
        );
    }
    let exceptions: BTreeSet<String> = pdu_ok(false)
        .filter_map(|l| field(l, "exception"))
        .collect();
    for code in [
        "01", "02", "03", "04", "05", "06", "07", "08", "0A", "0B", "09",
    ] {
        assert!(exceptions.contains(code), "no exception response {code}");
    }
    let server_answers: BTreeSet<String> = lines
        .iter()
        .filter(|l| !l.ok)
        .filter_map(|l| field(l, "exception"))
        .collect();
    for code in ["01", "02", "03"] {
        assert!(
            server_answers.contains(code),
            "no request rejected with {code}"
        );
    }
    for framing in [Framing::Pdu, Framing::Rtu, Framing::Ascii, Framing::Tcp] {
        for request in [true, false] {
            for ok in [true, false] {
                assert!(
                    lines
                        .iter()
                        .any(|l| l.framing == framing && l.request == request && l.ok == ok),
                    "{framing:?}: no {} {} vector",
                    if ok { "ok" } else { "error" },
                    if request { "request" } else { "response" }
                );
            }
        }
    }
}

/// RTU over TCP: the valid RTU frames of one direction back to back in one stream are cut apart
/// exactly by the length oracle and the CRC.
#[test]
fn rtu_frames_back_to_back_as_rtu_over_tcp() {
    let lines = load_corpus();
    let rules = rules();
    for (role, request) in [(Role::Request, true), (Role::Response, false)] {
        let frames: Vec<&Line> = lines
            .iter()
            .filter(|l| l.framing == Framing::Rtu && l.ok && l.request == request)
            .collect();
        assert!(frames.len() >= 20, "{role:?}: too few RTU frames");
        let stream: Vec<u8> = frames.iter().flat_map(|l| l.bytes.clone()).collect();
        let mut rest = &stream[..];
        for line in frames {
            match rtu::parse(rest, role, &rules) {
                Status::Complete { frame, consumed } => {
                    assert_eq!(frame.as_bytes(), &line.bytes[..], "{}: in stream", line.at);
                    rest = &rest[consumed..];
                }
                other => panic!("{}: in stream: {other:?}", line.at),
            }
        }
        assert!(rest.is_empty());
    }
}
