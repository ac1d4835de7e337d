//! RTU decoder timing on a fake clock: t1.5 and t3.5 boundaries, baud rates, bursty adapters,
//! custom function codes, the bus monitor and the timing-free mode.

use modbus_stack::FrameError;
use modbus_stack::frame::Role;
use modbus_stack::frame::rtu::{
    Config, Decoder, LengthRule, LengthRules, MAX_ADU_LEN, Mode, Parity, StopBits, Timing, encode,
};
use modbus_stack::time::Instant;
use std::time::Duration;

const READ_REQUEST: [u8; 8] = [0x01, 0x03, 0x00, 0x6B, 0x00, 0x03, 0x74, 0x17];
const READ_RESPONSE: [u8; 11] = [
    0x01, 0x03, 0x06, 0x02, 0x2B, 0x00, 0x00, 0x00, 0x64, 0x05, 0x7A,
];
/// FC 08/0000: length not derivable, only silence ends it.
const ECHO: [u8; 8] = [0x01, 0x08, 0x00, 0x00, 0xA5, 0x37, 0xDA, 0x8D];

/// Whole microseconds of `duration`.
fn us(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap()
}

fn at(micros: u64) -> Instant {
    Instant::from_micros(micros)
}

fn t9600() -> Timing {
    Timing::for_line(9600, Parity::Even, StopBits::One)
}

fn t115200() -> Timing {
    Timing::for_line(115_200, Parity::Even, StopBits::One)
}

/// Pushes all of `bytes` at `now`, collecting what the decoder delivers.
fn feed(decoder: &mut Decoder, now: Instant, mut bytes: &[u8]) -> Vec<Result<Vec<u8>, FrameError>> {
    let mut out = Vec::new();
    for _ in 0..=bytes.len() + 1 {
        let n = decoder.push(now, bytes);
        bytes = &bytes[n..];
        drain(decoder, &mut out);
        if bytes.is_empty() {
            break;
        }
    }
    assert!(bytes.is_empty(), "decoder stalled");
    out
}

fn drain(decoder: &mut Decoder, out: &mut Vec<Result<Vec<u8>, FrameError>>) {
    for _ in 0..4 {
        match decoder.poll_frame() {
            Some(result) => out.push(result.map(|adu| adu.as_bytes().to_vec())),
            None => return,
        }
    }
}

fn timeout(decoder: &mut Decoder, now: Instant) -> Vec<Result<Vec<u8>, FrameError>> {
    decoder.handle_timeout(now);
    let mut out = Vec::new();
    drain(decoder, &mut out);
    out
}

#[test]
fn timing_values_per_baud_rate() {
    let t = t9600();
    assert_eq!(t.char_time(), Duration::from_micros(1146));
    assert_eq!(t.t1_5(), Duration::from_micros(1719));
    assert_eq!(t.t3_5(), Duration::from_micros(4011));
    let t = Timing::for_line(19_200, Parity::None, StopBits::Two);
    assert_eq!(
        (t.t1_5(), t.t3_5()),
        (Duration::from_micros(860), Duration::from_micros(2006))
    );
    // 8N1 has 10-bit characters.
    let t = Timing::for_line(9600, Parity::None, StopBits::One);
    assert_eq!(
        (t.char_time(), t.t3_5()),
        (Duration::from_micros(1042), Duration::from_micros(3646))
    );
    let t = t115200();
    assert_eq!(t.char_time(), Duration::from_micros(96));
    assert_eq!(
        (t.t1_5(), t.t3_5()),
        (Duration::from_micros(750), Duration::from_micros(1750))
    );
    assert_eq!(
        Timing::for_line(0, Parity::Even, StopBits::One).t3_5(),
        Duration::from_millis(38_500)
    );
}

#[test]
fn gap_over_t1_5_inside_a_frame_invalidates_it() {
    let t = t9600();
    let mut decoder = Decoder::new(Config::server(t));
    assert!(feed(&mut decoder, at(0), &READ_REQUEST[..4]).is_empty());
    let late = us(t.t1_5()) + 1;
    // The oracle would complete the frame, but it is already known broken.
    assert!(feed(&mut decoder, at(late), &READ_REQUEST[4..]).is_empty());
    assert_eq!(decoder.poll_timeout(), Some(at(late) + t.t3_5()));
    assert!(timeout(&mut decoder, at(late + us(t.t3_5()) - 1)).is_empty());
    assert_eq!(
        timeout(&mut decoder, at(late + us(t.t3_5()))),
        vec![Err(FrameError::InterCharacterGap {
            gap_micros: late,
            limit_micros: 1719
        })]
    );
    assert_eq!(decoder.counters().other_errors, 1);
    // The next frame is fine.
    let next = at(late + 10_000);
    assert_eq!(
        feed(&mut decoder, next, &READ_REQUEST),
        vec![Ok(READ_REQUEST.to_vec())]
    );
    assert_eq!(decoder.counters().frames_ok, 1);
}

#[test]
fn gap_of_exactly_t1_5_is_allowed() {
    let t = t9600();
    let mut decoder = Decoder::new(Config::server(t));
    feed(&mut decoder, at(0), &READ_REQUEST[..3]);
    let out = feed(&mut decoder, at(us(t.t1_5())), &READ_REQUEST[3..]);
    assert_eq!(out, vec![Ok(READ_REQUEST.to_vec())]);
}

#[test]
fn silence_of_exactly_t3_5_ends_a_frame() {
    let t = t9600();
    let t35 = us(t.t3_5());
    let mut decoder = Decoder::new(Config::server(t));
    assert!(feed(&mut decoder, at(100), &ECHO).is_empty());
    assert_eq!(decoder.poll_timeout(), Some(at(100 + t35)));
    assert!(timeout(&mut decoder, at(100 + t35 - 1)).is_empty());
    assert_eq!(
        timeout(&mut decoder, at(100 + t35)),
        vec![Ok(ECHO.to_vec())]
    );
    assert_eq!(decoder.poll_timeout(), None);

    // A byte exactly t3.5 after the last one starts a new frame instead of continuing.
    let start = 1_000_000;
    assert!(feed(&mut decoder, at(start), &ECHO[..5]).is_empty());
    let out = feed(&mut decoder, at(start + t35), &ECHO[5..]);
    assert!(
        matches!(out.as_slice(), [Err(FrameError::CrcMismatch { .. })]),
        "{out:?}"
    );
    let tail = timeout(&mut decoder, at(start + 2 * t35));
    assert_eq!(tail, vec![Err(FrameError::FrameTooShort { len: 3 })]);
}

#[test]
fn same_gap_is_fine_at_9600_but_breaks_a_frame_at_115200() {
    let gap = 1_000; // 1 ms
    for (timing, ok) in [(t9600(), true), (t115200(), false)] {
        let mut decoder = Decoder::new(Config::server(timing));
        feed(&mut decoder, at(0), &READ_REQUEST[..4]);
        let mut out = feed(&mut decoder, at(gap), &READ_REQUEST[4..]);
        out.extend(timeout(&mut decoder, at(100_000)));
        if ok {
            assert_eq!(out, vec![Ok(READ_REQUEST.to_vec())]);
        } else {
            assert_eq!(
                out,
                vec![Err(FrameError::InterCharacterGap {
                    gap_micros: gap,
                    limit_micros: 750
                })]
            );
        }
    }
}

#[test]
fn burst_tolerance_keeps_frames_from_usb_adapters_whole() {
    // An adapter with a 4 ms latency timer hands over the frame in two bursts 4 ms apart.
    let bursts = [(0u64, &ECHO[..3]), (4_000, &ECHO[3..])];
    let strict = t115200();
    let tolerant = strict.with_burst_tolerance(Duration::from_millis(4));
    assert_eq!(tolerant.t1_5(), Duration::from_micros(4_750));
    assert_eq!(tolerant.t3_5(), Duration::from_micros(5_750));
    for (timing, whole) in [(strict, false), (tolerant, true)] {
        let mut decoder = Decoder::new(Config::server(timing));
        let mut out = Vec::new();
        for (time, bytes) in bursts {
            out.extend(feed(&mut decoder, at(time), bytes));
        }
        out.extend(timeout(&mut decoder, at(50_000)));
        if whole {
            assert_eq!(out, vec![Ok(ECHO.to_vec())]);
        } else {
            assert_eq!(out.len(), 2);
            assert!(out.iter().all(Result::is_err));
        }
    }
}

#[test]
fn custom_function_code_framed_by_silence_alone() {
    let t = t9600();
    let mut pdu = vec![0x41];
    pdu.extend(0..20u8);
    let mut adu = [0u8; 256];
    let len = encode(7, &pdu, &mut adu).unwrap();
    let adu = &adu[..len];

    let mut decoder = Decoder::new(Config::server(t));
    // In pieces, with gaps within t1.5.
    assert!(feed(&mut decoder, at(0), &adu[..5]).is_empty());
    assert!(feed(&mut decoder, at(1_500), &adu[5..]).is_empty());
    assert!(timeout(&mut decoder, at(1_500 + 4_010)).is_empty());
    assert_eq!(
        timeout(&mut decoder, at(1_500 + 4_011)),
        vec![Ok(adu.to_vec())]
    );

    // With a rule, the same frame completes without waiting.
    let mut rules = LengthRules::new();
    rules
        .set(0x41, Role::Request, LengthRule::Fixed(21))
        .unwrap();
    let mut decoder = Decoder::new(Config::server(t).with_rules(rules));
    assert_eq!(feed(&mut decoder, at(0), adu), vec![Ok(adu.to_vec())]);
    let mut rules = LengthRules::new();
    rules
        .set(
            0x41,
            Role::Request,
            LengthRule::ByteCountAt { offset: 1, add: 1 },
        )
        .unwrap();
    let mut decoder = Decoder::new(Config::server(t).with_rules(rules));
    // pdu[1] = 0, so this rule says a 1-byte PDU: CRC fails at 4 bytes and silence decides.
    assert!(feed(&mut decoder, at(0), adu).is_empty());
    assert_eq!(timeout(&mut decoder, at(10_000)), vec![Ok(adu.to_vec())]);
}

#[test]
fn crc_errors_are_counted_and_dropped() {
    let mut decoder = Decoder::new(Config::server(t9600()));
    let bad = [0x01, 0x03, 0x00, 0x6B, 0x00, 0x03, 0x76, 0x87];
    assert!(feed(&mut decoder, at(0), &bad).is_empty());
    assert_eq!(
        timeout(&mut decoder, at(5_000)),
        vec![Err(FrameError::CrcMismatch {
            expected: 0x8776,
            computed: 0x1774
        })]
    );
    assert_eq!(decoder.counters().crc_errors, 1);
    assert_eq!(
        feed(&mut decoder, at(20_000), &READ_REQUEST),
        vec![Ok(READ_REQUEST.to_vec())]
    );
}

#[test]
fn frame_too_long_is_reported_at_silence() {
    let mut decoder = Decoder::new(Config::server(t9600()));
    // FC 08/0000 never completes early; 300 bytes without a gap.
    let mut long = ECHO.to_vec();
    long.resize(300, 0x55);
    assert!(feed(&mut decoder, at(0), &long).is_empty());
    assert_eq!(
        timeout(&mut decoder, at(10_000)),
        vec![Err(FrameError::FrameTooLong { len: 300 })]
    );
    assert_eq!(
        feed(&mut decoder, at(20_000), &READ_REQUEST),
        vec![Ok(READ_REQUEST.to_vec())]
    );
}

#[test]
fn monitor_follows_requests_and_responses() {
    let mut decoder = Decoder::new(Config::monitor(t9600()));
    // Request and response back to back without silence: the oracle splits them.
    let mut line = READ_REQUEST.to_vec();
    line.extend_from_slice(&READ_RESPONSE);
    line.extend_from_slice(&READ_REQUEST);
    let mut roles = Vec::new();
    let mut rest = &line[..];
    for _ in 0..10 {
        let n = decoder.push(at(0), rest);
        rest = &rest[n..];
        while let Some(result) = decoder.poll_frame_with_role() {
            let (role, adu) = result.unwrap();
            roles.push((role, adu.as_bytes().len()));
        }
        if rest.is_empty() {
            break;
        }
    }
    assert_eq!(
        roles,
        vec![(Role::Request, 8), (Role::Response, 11), (Role::Request, 8)]
    );
    // A request that got no answer (a broadcast) is followed by another request: CRC decides.
    assert_eq!(decoder.expected_role(), Role::Response);
    assert_eq!(
        feed(&mut decoder, at(100_000), &READ_REQUEST),
        vec![Ok(READ_REQUEST.to_vec())]
    );
    assert_eq!(decoder.counters().frames_ok, 4);
}

#[test]
fn monitor_waits_for_silence_when_a_shorter_reading_has_a_valid_crc_by_chance() {
    // A valid frame whose last CRC byte is 0x00 has a valid CRC one byte shorter too. Built
    // here: an FC 23 request of 17 bytes (4 data bytes) whose byte 2 (the read address's high
    // byte, 11) also reads as the byte count of a 16-byte FC 23 response.
    let frame = (0..=u16::MAX)
        .find_map(|data| {
            let [hi, lo] = data.to_be_bytes();
            let pdu = [
                0x17, 11, 0x00, 0x00, 0x01, 0x00, 0x20, 0x00, 0x02, 0x04, hi, lo, 0, 0,
            ];
            let mut adu = [0u8; MAX_ADU_LEN];
            let len = encode(0x3D, &pdu, &mut adu).unwrap();
            (adu[len - 1] == 0x00).then(|| adu[..len].to_vec())
        })
        .expect("one CRC in 256 ends in 0x00");
    assert_eq!(frame.len(), 17);
    let mut decoder = Decoder::new(Config::monitor(t9600()));
    // Pushed at once, the 16-byte response reading completes first; it must not be taken.
    assert_eq!(feed(&mut decoder, at(0), &frame), vec![Ok(frame.clone())]);
    assert_eq!(timeout(&mut decoder, at(1_000_000)), Vec::new());
    // A real 16-byte response (the request reading wants one byte more) ends by silence.
    let response = frame[..16].to_vec();
    let mut decoder = Decoder::new(Config::monitor(t9600()));
    assert_eq!(feed(&mut decoder, at(0), &response), Vec::new());
    assert_eq!(
        timeout(&mut decoder, at(1_000_000)),
        vec![Ok(response.clone())]
    );
}

#[test]
fn untimed_mode_resyncs_one_byte_at_a_time() {
    let mut decoder = Decoder::new(Config::untimed(Mode::Responses));
    assert_eq!(decoder.poll_timeout(), None);
    let mut stream = vec![0x01, 0x03, 0x99, 0x42]; // garbage: claims 158 bytes
    stream.extend_from_slice(&READ_RESPONSE);
    stream.extend_from_slice(&[0x01, 0x81, 0x02, 0xC1, 0x91]);
    let mut out = Vec::new();
    let mut rest = &stream[..];
    for _ in 0..stream.len() {
        let n = decoder.push(Instant::ZERO, rest);
        rest = &rest[n..];
        drain(&mut decoder, &mut out);
    }
    // The 158-byte claim cannot be checked before 158 bytes are in: it stays incomplete until
    // more bytes come or the transport resets. Fill up to prove it resolves.
    assert!(out.is_empty());
    let filler = [0u8; 150];
    out.extend(feed(&mut decoder, Instant::ZERO, &filler));
    for _ in 0..8 {
        drain(&mut decoder, &mut out);
    }
    let frames: Vec<_> = out.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(
        frames,
        vec![&READ_RESPONSE.to_vec(), &vec![0x01, 0x81, 0x02, 0xC1, 0x91]]
    );
    // One error per run of garbage: the leading bytes and the zero filler.
    assert_eq!(out.iter().filter(|r| r.is_err()).count(), 2);
}

/// Regression (found by the `rtu_stream` fuzz target): an untimed decoder whose buffer filled
/// with bytes that never form a frame (here a device-identification response announcing more
/// objects than 256 bytes can hold) accepted no more bytes and stalled for good. A full buffer with no frame is now
/// dropped a byte at a time, so the stream keeps flowing and later frames are recovered.
#[test]
fn untimed_mode_never_stalls_on_a_full_buffer() {
    let mut decoder = Decoder::new(Config::untimed(Mode::Responses));
    // FC 2B/0E response header announcing 126 objects; each zero byte pair is an empty object,
    // so the length walk needs more than MAX_ADU_LEN bytes and stays incomplete.
    let mut stream = vec![0x01, 0x2B, 0x0E, 0x01, 0x01, 0x00, 0x00, 0x7E];
    stream.extend(std::iter::repeat_n(0x00, 400));
    stream.extend_from_slice(&READ_RESPONSE);
    let mut out = Vec::new();
    let mut rest = &stream[..];
    // Every round must accept bytes or deliver something; bounded by the stream length.
    for _ in 0..=stream.len() {
        if rest.is_empty() {
            break;
        }
        let before = out.len();
        let n = decoder.push(Instant::ZERO, rest);
        rest = &rest[n..];
        drain(&mut decoder, &mut out);
        assert!(
            n > 0 || out.len() > before,
            "decoder stalled with {} bytes left",
            rest.len()
        );
    }
    assert!(rest.is_empty());
    for _ in 0..=MAX_ADU_LEN {
        drain(&mut decoder, &mut out);
    }
    assert!(
        out.iter()
            .any(|r| matches!(r, Err(FrameError::FrameTooLong { .. })))
    );
    assert_eq!(
        out.iter().filter_map(|r| r.as_ref().ok()).next_back(),
        Some(&READ_RESPONSE.to_vec())
    );
}

#[test]
fn untimed_frame_gap_ends_a_frame_that_garbage_announced_long() {
    // FC 16 with byte count 0xF0: the oracle waits for 249 bytes. Without a gap limit the
    // request after it is swallowed; with one, a pause ends the attempt.
    let garbage = [0x01, 0x10, 0x00, 0x00, 0x00, 0x78, 0xF0, 0x12];
    for gap in [None, Some(Duration::from_millis(50))] {
        let config = Config::untimed(Mode::Requests);
        let mut decoder = Decoder::new(gap.map_or(config, |gap| config.with_frame_gap(gap)));
        assert!(feed(&mut decoder, at(0), &garbage).is_empty());
        assert!(!decoder.is_empty());
        assert_eq!(
            decoder.poll_timeout(),
            gap.map(|gap| at(0) + gap),
            "the gap is a timer"
        );
        let out = feed(&mut decoder, at(60_000), &READ_REQUEST);
        match gap {
            None => assert!(out.is_empty(), "{out:?}"),
            Some(_) => assert_eq!(
                out,
                [
                    Err(FrameError::Incomplete { len: garbage.len() }),
                    Ok(READ_REQUEST.to_vec())
                ]
            ),
        }
    }
    // The timer alone ends the attempt too, before any new byte.
    let mut decoder =
        Decoder::new(Config::untimed(Mode::Requests).with_frame_gap(Duration::from_millis(50)));
    feed(&mut decoder, at(0), &garbage);
    decoder.handle_timeout(at(49_999));
    assert!(decoder.poll_frame().is_none());
    decoder.handle_timeout(at(50_000));
    assert_eq!(
        decoder.poll_frame().map(|frame| frame.map(|_| ())),
        Some(Err(FrameError::Incomplete { len: garbage.len() }))
    );
    assert!(decoder.is_empty());
}
