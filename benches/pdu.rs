//! PDU codec throughput against a `memcpy` of the same bytes (the floor).
//!
//! Each group holds one row for our codec and one `memcpy` row over the same number of bytes,
//! so the ratio between the two medians is the codec's cost in "memcpys".

// The test data generators wrap on purpose.
#![allow(clippy::cast_possible_truncation)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use modbus_stack::pdu::{Registers, Request, Response};

/// Register table a server answers from.
const TABLE: [u16; 125] = {
    let mut table = [0u16; 125];
    let mut i = 0;
    while i < 125 {
        table[i] = (i as u16).wrapping_mul(0x0101) ^ 0x5A5A;
        i += 1;
    }
    table
};

/// "Read 125 holding registers from 0" request PDU.
const READ_125_REQUEST: [u8; 5] = [0x03, 0x00, 0x00, 0x00, 0x7D];

fn read_125_response() -> Vec<u8> {
    let mut pdu = vec![0x03, 250];
    pdu.extend(TABLE.iter().flat_map(|word| word.to_be_bytes()));
    pdu
}

fn write_123_request() -> Vec<u8> {
    let mut pdu = vec![0x10, 0x00, 0x00, 0x00, 123, 246];
    pdu.extend(TABLE[..123].iter().flat_map(|word| word.to_be_bytes()));
    pdu
}

fn coils_2000_response() -> Vec<u8> {
    let mut pdu = vec![0x01, 250];
    pdu.extend((0..250u16).map(|i| (i as u8).wrapping_mul(37)));
    pdu
}

fn memcpy_row(c: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>, len: usize) {
    let source = vec![0x5Au8; len];
    let mut dest = vec![0u8; len];
    c.bench_function("memcpy", |b| {
        b.iter(|| {
            dest.copy_from_slice(black_box(&source));
            black_box(&mut dest);
        });
    });
}

fn serve_read_125(c: &mut Criterion) {
    let mut group = c.benchmark_group("serve_read_holding_125");
    group.throughput(Throughput::Bytes(252));
    let mut out = [0u8; 253];
    group.bench_function("modbus_stack", |b| {
        b.iter(|| {
            let request = Request::decode(black_box(&READ_125_REQUEST)).unwrap();
            let Request::ReadHoldingRegisters { address, quantity } = request else {
                unreachable!()
            };
            let start = usize::from(address);
            let values = &black_box(&TABLE)[start..start + usize::from(quantity)];
            let response = Response::ReadHoldingRegisters {
                values: Registers::from_words(values),
            };
            black_box(response.encode(&mut out).unwrap());
        });
    });
    memcpy_row(&mut group, 252);
    group.finish();
}

fn parse_response_125(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse_read_holding_125_response");
    group.throughput(Throughput::Bytes(252));
    let pdu = read_125_response();
    let request = Request::ReadHoldingRegisters {
        address: 0,
        quantity: 125,
    };
    let mut values = [0u16; 125];
    group.bench_function("modbus_stack", |b| {
        b.iter(|| {
            let response = Response::decode(black_box(&pdu), black_box(&request)).unwrap();
            let Response::ReadHoldingRegisters { values: registers } = response else {
                unreachable!()
            };
            black_box(registers.copy_to(&mut values));
            black_box(&mut values);
        });
    });
    memcpy_row(&mut group, 252);
    group.finish();
}

fn decode_write_123(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode_write_multiple_123");
    group.throughput(Throughput::Bytes(252));
    let pdu = write_123_request();
    let mut values = [0u16; 123];
    group.bench_function("modbus_stack", |b| {
        b.iter(|| {
            let request = Request::decode(black_box(&pdu)).unwrap();
            let Request::WriteMultipleRegisters {
                values: registers, ..
            } = request
            else {
                unreachable!()
            };
            black_box(registers.copy_to(&mut values));
            black_box(&mut values);
        });
    });
    memcpy_row(&mut group, 252);
    group.finish();
}

fn parse_coils_2000(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse_read_coils_2000_response");
    group.throughput(Throughput::Bytes(252));
    let pdu = coils_2000_response();
    let request = Request::ReadCoils {
        address: 0,
        quantity: 2000,
    };
    let mut bits = [false; 2000];
    group.bench_function("modbus_stack", |b| {
        b.iter(|| {
            let response = Response::decode(black_box(&pdu), black_box(&request)).unwrap();
            let Response::ReadCoils { values } = response else {
                unreachable!()
            };
            black_box(values.copy_to(&mut bits));
            black_box(&mut bits);
        });
    });
    memcpy_row(&mut group, 252);
    group.finish();
}

criterion_group!(
    benches,
    serve_read_125,
    parse_response_125,
    decode_write_123,
    parse_coils_2000
);
criterion_main!(benches);
