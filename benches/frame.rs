//! Framing benchmarks: CRC-16 table variants (to justify the choice in `frame::check`), RTU encode
//! and decode of a 255-byte read response against the CRC over the same bytes, TCP and ASCII
//! decode of maximum-size responses.

use std::hint::black_box;

use crc::{CRC_16_MODBUS, Crc, NoTable, Table};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use modbus_stack::frame::check::crc16;
use modbus_stack::frame::rtu::{self, Config, Decoder, LengthRules, Mode};
use modbus_stack::frame::{Role, Status, ascii, tcp};
use modbus_stack::time::Instant;

const CRC_TABLE16: Crc<u16, Table<16>> = Crc::<u16, Table<16>>::new(&CRC_16_MODBUS);
const CRC_TABLE1: Crc<u16, Table<1>> = Crc::<u16, Table<1>>::new(&CRC_16_MODBUS);
const CRC_NOTABLE: Crc<u16, NoTable> = Crc::<u16, NoTable>::new(&CRC_16_MODBUS);

/// A read-holding-registers response PDU: FC 03, byte count 250, 125 registers (252 bytes, so the
/// RTU ADU is 255 bytes).
#[allow(clippy::cast_possible_truncation)] // values are reduced mod 256 before the cast
const READ_RESPONSE_PDU: [u8; 252] = {
    let mut pdu = [0u8; 252];
    pdu[0] = 0x03;
    pdu[1] = 250;
    let mut i = 2;
    while i < 252 {
        pdu[i] = ((i * 7) % 256) as u8; // < 256: no truncation
        i += 1;
    }
    pdu
};

#[allow(clippy::cast_possible_truncation)] // values are reduced mod 256 before the cast
const SMALL: [u8; 256] = {
    let mut bytes = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        bytes[i] = ((i * 31 + 7) % 256) as u8; // < 256: no truncation
        i += 1;
    }
    bytes
};

fn crc_variants(c: &mut Criterion) {
    let big: Vec<u8> = (0..1 << 20)
        .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    for (name, data) in [("256B", &SMALL[..]), ("1MiB", &big[..])] {
        let mut group = c.benchmark_group(format!("crc16/{name}"));
        group.throughput(Throughput::Bytes(data.len() as u64));
        group.bench_function("table16", |b| {
            b.iter(|| CRC_TABLE16.checksum(black_box(data)));
        });
        group.bench_function("table1", |b| {
            b.iter(|| CRC_TABLE1.checksum(black_box(data)));
        });
        group.bench_function("notable", |b| {
            b.iter(|| CRC_NOTABLE.checksum(black_box(data)));
        });
        group.bench_function("crate", |b| b.iter(|| crc16(black_box(data))));
        group.finish();
    }
}

fn rtu(c: &mut Criterion) {
    let mut adu = [0u8; rtu::MAX_ADU_LEN];
    let len = rtu::encode(1, &READ_RESPONSE_PDU, &mut adu).unwrap();
    let adu = &adu[..len];
    assert_eq!(len, 255);
    let rules = LengthRules::new();
    let mut group = c.benchmark_group("rtu/255B");
    group.throughput(Throughput::Bytes(len as u64));
    group.bench_function("crc_only", |b| b.iter(|| crc16(black_box(&adu[..253]))));
    group.bench_function("encode", |b| {
        let mut out = [0u8; rtu::MAX_ADU_LEN];
        b.iter(|| rtu::encode(black_box(1), black_box(&READ_RESPONSE_PDU), &mut out).unwrap());
    });
    group.bench_function("parse", |b| {
        b.iter(
            || match rtu::parse(black_box(adu), Role::Response, &rules) {
                Status::Complete { consumed, .. } => consumed,
                _ => unreachable!(),
            },
        );
    });
    group.bench_function("decoder", |b| {
        let mut decoder = Decoder::new(Config::untimed(Mode::Responses));
        b.iter(|| {
            decoder.push(Instant::ZERO, black_box(adu));
            decoder.poll_frame().unwrap().unwrap().pdu().len()
        });
    });
    group.finish();
}

fn tcp_decode(c: &mut Criterion) {
    let mut adu = [0u8; tcp::MAX_ADU_LEN];
    let len = tcp::encode(7, 1, &READ_RESPONSE_PDU, &mut adu).unwrap();
    let adu = &adu[..len];
    assert_eq!(len, 259);
    let mut group = c.benchmark_group("tcp/259B");
    group.throughput(Throughput::Bytes(len as u64));
    group.bench_function("decoder", |b| {
        let mut decoder = tcp::Decoder::new();
        b.iter(|| {
            decoder.push(Instant::ZERO, black_box(adu));
            decoder.poll_frame().unwrap().unwrap().pdu().len()
        });
    });
    group.finish();
}

fn ascii_decode(c: &mut Criterion) {
    let mut frame = [0u8; ascii::MAX_FRAME_CHARS];
    let len = ascii::encode(1, &READ_RESPONSE_PDU, &mut frame).unwrap();
    let frame = &frame[..len];
    let mut group = c.benchmark_group(format!("ascii/{len}B"));
    group.throughput(Throughput::Bytes(len as u64));
    group.bench_function("decoder", |b| {
        let mut decoder = ascii::Decoder::new(ascii::Config::new());
        b.iter(|| {
            decoder.push(Instant::ZERO, black_box(frame));
            decoder.poll_frame().unwrap().unwrap().pdu().len()
        });
    });
    group.bench_function("encode", |b| {
        let mut out = [0u8; ascii::MAX_FRAME_CHARS];
        b.iter(|| ascii::encode(1, black_box(&READ_RESPONSE_PDU), &mut out).unwrap());
    });
    group.finish();
}

criterion_group!(benches, crc_variants, rtu, tcp_decode, ascii_decode);
criterion_main!(benches);
