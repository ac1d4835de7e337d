//! Property tests for the streaming decoders: any chunking gives the same frames, garbage between
//! RTU frames separated by silence loses no valid frame, and arbitrary input never panics.

use modbus_stack::FrameError;
use modbus_stack::frame::rtu::{self, Config, Decoder, Mode, Parity, StopBits, Timing};
use modbus_stack::frame::{ascii, tcp};
use modbus_stack::time::Instant;
use proptest::prelude::*;
use std::time::Duration;

/// A request PDU whose length the RTU oracle knows.
fn request_pdu() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        (1u8..=6, any::<[u8; 4]>()).prop_map(|(fc, d)| [&[fc][..], &d].concat()),
        prop::sample::select(vec![0x07u8, 0x0B, 0x0C, 0x11]).prop_map(|fc| vec![fc]),
        (
            prop::sample::select(vec![0x0Fu8, 0x10]),
            any::<[u8; 4]>(),
            prop::collection::vec(any::<u8>(), 0..=246)
        )
            .prop_map(|(fc, head, data)| {
                let mut pdu = vec![fc];
                pdu.extend_from_slice(&head);
                pdu.push(u8::try_from(data.len()).unwrap());
                pdu.extend(data);
                pdu
            }),
        (
            prop::sample::select(vec![0x14u8, 0x15]),
            prop::collection::vec(any::<u8>(), 0..=250)
        )
            .prop_map(|(fc, data)| {
                let mut pdu = vec![fc, u8::try_from(data.len()).unwrap()];
                pdu.extend(data);
                pdu
            }),
        any::<[u8; 6]>().prop_map(|d| [&[0x16][..], &d].concat()),
        any::<[u8; 2]>().prop_map(|d| [&[0x18][..], &d].concat()),
        (
            any::<[u8; 8]>(),
            prop::collection::vec(any::<u8>(), 0..=242)
        )
            .prop_map(|(head, data)| {
                let mut pdu = vec![0x17];
                pdu.extend_from_slice(&head);
                pdu.push(u8::try_from(data.len()).unwrap());
                pdu.extend(data);
                pdu
            }),
        any::<[u8; 2]>().prop_map(|d| [&[0x2B, 0x0E][..], &d].concat()),
    ]
}

/// Any PDU of 1..=253 bytes (for ASCII and TCP, which need no oracle).
fn any_pdu() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 1..=253)
}

fn rtu_frames() -> impl Strategy<Value = Vec<Vec<u8>>> {
    prop::collection::vec((any::<u8>(), request_pdu()), 1..6).prop_map(|frames| {
        frames
            .into_iter()
            .map(|(unit, pdu)| {
                let mut out = [0u8; 256];
                let len = rtu::encode(unit, &pdu, &mut out).unwrap();
                out[..len].to_vec()
            })
            .collect()
    })
}

fn chunk_sizes() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(1usize..64, 1..32)
}

/// Splits `bytes` into chunks of the given sizes, cycling through them.
fn split<'a>(bytes: &'a [u8], sizes: &[usize]) -> Vec<&'a [u8]> {
    let mut chunks = Vec::new();
    let mut rest = bytes;
    for size in sizes.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (chunk, tail) = rest.split_at((*size).min(rest.len()));
        chunks.push(chunk);
        rest = tail;
    }
    chunks
}

type Out = Vec<Result<Vec<u8>, FrameError>>;

fn rtu_feed(decoder: &mut Decoder, now: Instant, mut bytes: &[u8], out: &mut Out) {
    for _ in 0..=bytes.len() + 1 {
        let n = decoder.push(now, bytes);
        bytes = &bytes[n..];
        for _ in 0..=rtu::MAX_ADU_LEN {
            match decoder.poll_frame() {
                Some(result) => out.push(result.map(|adu| adu.as_bytes().to_vec())),
                None => break,
            }
        }
        if bytes.is_empty() {
            return;
        }
    }
    panic!("rtu decoder stalled");
}

fn rtu_silence(decoder: &mut Decoder, now: Instant, out: &mut Out) {
    decoder.handle_timeout(now);
    for _ in 0..4 {
        match decoder.poll_frame() {
            Some(result) => out.push(result.map(|adu| adu.as_bytes().to_vec())),
            None => break,
        }
    }
}

fn timing() -> Timing {
    Timing::for_line(19_200, Parity::Even, StopBits::One)
}

/// Whether `needles` appear in `haystack` in order (other items may come between).
fn is_subsequence(needles: &[Vec<u8>], haystack: &Out) -> bool {
    let mut it = haystack.iter().filter_map(|r| r.as_ref().ok());
    needles.iter().all(|n| it.any(|h| h == n))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn rtu_untimed_any_chunking(frames in rtu_frames(), sizes in chunk_sizes()) {
        let stream = frames.concat();
        let mut decoder = Decoder::new(Config::untimed(Mode::Requests));
        let mut out = Vec::new();
        for chunk in split(&stream, &sizes) {
            rtu_feed(&mut decoder, Instant::ZERO, chunk, &mut out);
        }
        let expected: Out = frames.into_iter().map(Ok).collect();
        prop_assert_eq!(out, expected);
    }

    #[test]
    fn rtu_timed_any_chunking(
        frames in rtu_frames(),
        sizes in chunk_sizes(),
        gaps in prop::collection::vec(0u64..=860, 1..16),
        silences in prop::collection::vec(prop::sample::select(vec![0u64, 2006, 50_000]), 1..8),
    ) {
        let mut decoder = Decoder::new(Config::server(timing()));
        let mut out = Vec::new();
        let mut now = 0u64;
        for (i, frame) in frames.iter().enumerate() {
            now += silences[i % silences.len()];
            for (j, chunk) in split(frame, &sizes).into_iter().enumerate() {
                if j > 0 {
                    now += gaps[j % gaps.len()]; // ≤ t1.5 (860 µs at 19200)
                }
                rtu_feed(&mut decoder, Instant::from_micros(now), chunk, &mut out);
            }
        }
        rtu_silence(&mut decoder, Instant::from_micros(now + 1_000_000), &mut out);
        let expected: Out = frames.into_iter().map(Ok).collect();
        prop_assert_eq!(out, expected);
    }

    #[test]
    fn rtu_frames_after_garbage_and_silence_are_recovered(
        frames in rtu_frames(),
        garbage in prop::collection::vec(prop::collection::vec(any::<u8>(), 1..300), 1..6),
        sizes in chunk_sizes(),
        monitor in any::<bool>(),
    ) {
        let config = if monitor { Config::monitor(timing()) } else { Config::server(timing()) };
        let mut decoder = Decoder::new(config);
        let mut out = Vec::new();
        let mut now = 0u64;
        for (i, frame) in frames.iter().enumerate() {
            let noise = &garbage[i % garbage.len()];
            for chunk in split(noise, &sizes) {
                now += 100;
                rtu_feed(&mut decoder, Instant::from_micros(now), chunk, &mut out);
            }
            now += 2006; // t3.5 at 19200
            for chunk in split(frame, &sizes) {
                now += 100;
                rtu_feed(&mut decoder, Instant::from_micros(now), chunk, &mut out);
            }
            now += 2006;
        }
        rtu_silence(&mut decoder, Instant::from_micros(now + 1_000_000), &mut out);
        prop_assert!(is_subsequence(&frames, &out), "lost a frame: {:?}", out);
    }

    #[test]
    fn rtu_arbitrary_input_never_panics_and_resyncs(
        events in prop::collection::vec((0u64..10_000, prop::collection::vec(any::<u8>(), 0..80)), 0..12),
        mode in prop::sample::select(vec![Mode::Requests, Mode::Responses, Mode::Monitor]),
        timed in any::<bool>(),
    ) {
        let config = if timed { Config::timed(mode, timing()) } else { Config::untimed(mode) };
        let mut decoder = Decoder::new(config);
        let mut out = Vec::new();
        let mut now = 0u64;
        for (gap, bytes) in &events {
            now += gap;
            let _ = decoder.poll_timeout();
            decoder.handle_timeout(Instant::from_micros(now));
            rtu_feed(&mut decoder, Instant::from_micros(now), bytes, &mut out);
        }
        if timed {
            // After at most one frame of silence the decoder is back in step.
            now += 2006;
            rtu_silence(&mut decoder, Instant::from_micros(now), &mut out);
            let frame: &[u8] = match mode {
                Mode::Responses => &[0x01, 0x81, 0x02, 0xC1, 0x91],
                Mode::Requests | Mode::Monitor => &[0x01, 0x03, 0x00, 0x6B, 0x00, 0x03, 0x74, 0x17],
            };
            let mut after = Vec::new();
            now += 2006;
            rtu_feed(&mut decoder, Instant::from_micros(now), frame, &mut after);
            rtu_silence(&mut decoder, Instant::from_micros(now + 10_000), &mut after);
            prop_assert_eq!(after, vec![Ok(frame.to_vec())]);
        }
    }

    #[test]
    fn ascii_any_chunking(
        frames in prop::collection::vec((any::<u8>(), any_pdu(), any::<bool>()), 1..5),
        noise in prop::collection::vec(prop::sample::select(b"xyz \r\n0F".to_vec()), 0..10),
        sizes in chunk_sizes(),
    ) {
        let mut stream = Vec::new();
        let mut expected = Vec::new();
        for (unit, pdu, lower) in &frames {
            stream.extend_from_slice(&noise);
            let mut out = [0u8; ascii::MAX_FRAME_CHARS];
            let len = ascii::encode(*unit, pdu, &mut out).unwrap();
            let text = if *lower { out[..len].to_ascii_lowercase() } else { out[..len].to_vec() };
            stream.extend(text);
            expected.push(Ok((*unit, pdu.clone())));
        }
        let mut decoder = ascii::Decoder::new(ascii::Config::new());
        let mut got = Vec::new();
        let mut now = Instant::ZERO;
        for mut chunk in split(&stream, &sizes) {
            now = now + Duration::from_millis(10);
            for _ in 0..=chunk.len() + 1 {
                let n = decoder.push(now, chunk);
                chunk = &chunk[n..];
                while let Some(result) = decoder.poll_frame() {
                    got.push(result.map(|adu| (adu.unit_id(), adu.pdu().to_vec())));
                }
                if chunk.is_empty() {
                    break;
                }
            }
            prop_assert!(chunk.is_empty());
        }
        prop_assert_eq!(got, expected);
    }

    #[test]
    fn ascii_arbitrary_input_never_panics(
        events in prop::collection::vec((0u64..3_000_000, prop::collection::vec(any::<u8>(), 0..600)), 0..8),
    ) {
        let mut decoder = ascii::Decoder::new(ascii::Config::new());
        let mut now = 0u64;
        for (gap, bytes) in &events {
            now += gap;
            let _ = decoder.poll_timeout();
            decoder.handle_timeout(Instant::from_micros(now));
            let mut rest = &bytes[..];
            for _ in 0..=rest.len() + 1 {
                let n = decoder.push(Instant::from_micros(now), rest);
                rest = &rest[n..];
                while decoder.poll_frame().is_some() {}
                if rest.is_empty() {
                    break;
                }
            }
            prop_assert!(rest.is_empty());
        }
        // Back in step: a valid frame decodes.
        decoder.push(Instant::from_micros(now), b":0181027C\r\n");
        let mut last = None;
        while let Some(result) = decoder.poll_frame() {
            last = Some(result.map(|adu| adu.pdu().to_vec()));
        }
        if last.is_none() {
            decoder.push(Instant::from_micros(now), b":0181027C\r\n");
            last = decoder.poll_frame().map(|r| r.map(|adu| adu.pdu().to_vec()));
        }
        prop_assert_eq!(last, Some(Ok(vec![0x81, 0x02])));
    }

    #[test]
    fn tcp_any_chunking(
        frames in prop::collection::vec((any::<u16>(), any::<u8>(), any_pdu()), 1..6),
        sizes in chunk_sizes(),
    ) {
        let mut stream = Vec::new();
        for (tid, unit, pdu) in &frames {
            let mut out = [0u8; tcp::MAX_ADU_LEN];
            let len = tcp::encode(*tid, *unit, pdu, &mut out).unwrap();
            stream.extend_from_slice(&out[..len]);
        }
        let mut decoder = tcp::Decoder::new();
        let mut got = Vec::new();
        for mut chunk in split(&stream, &sizes) {
            for _ in 0..=chunk.len() + 1 {
                let n = decoder.push(Instant::ZERO, chunk);
                chunk = &chunk[n..];
                while let Some(result) = decoder.poll_frame() {
                    let adu = result.unwrap();
                    got.push((adu.transaction_id(), adu.unit_id(), adu.pdu().to_vec()));
                }
                if chunk.is_empty() {
                    break;
                }
            }
            prop_assert!(chunk.is_empty());
        }
        prop_assert_eq!(got, frames);
    }

    #[test]
    fn tcp_arbitrary_input_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..2000), sizes in chunk_sizes()) {
        let mut decoder = tcp::Decoder::new();
        for mut chunk in split(&bytes, &sizes) {
            for _ in 0..=chunk.len() + 1 {
                let n = decoder.push(Instant::ZERO, chunk);
                chunk = &chunk[n..];
                for _ in 0..20 {
                    if decoder.poll_frame().is_none() {
                        break;
                    }
                }
                if chunk.is_empty() {
                    break;
                }
            }
            prop_assert!(chunk.is_empty());
        }
        let _ = tcp::parse(&bytes);
    }
}
