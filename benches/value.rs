//! Typed register data: bulk f32 decoding against a plain register loop, and read planning.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use modbus_stack::pdu::Registers;
use modbus_stack::value::{self, Order};

/// 125 registers (a full FC 03 response) of word-swapped f32 values, plus one spare register.
const WIRE: [u8; 250] = {
    let mut bytes = [0u8; 250];
    let mut i = 0;
    while i < 250 {
        // Deterministic, varied bytes; the values themselves do not matter.
        bytes[i] = (i as u8).wrapping_mul(37).wrapping_add(11);
        i += 1;
    }
    bytes
};

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("value/decode_125_registers");
    group.throughput(Throughput::Bytes(WIRE.len() as u64));
    group.bench_function("plain_u16_from_be_bytes", |b| {
        let mut out = [0u16; 125];
        b.iter(|| {
            let bytes = black_box(&WIRE);
            for (word, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                *word = u16::from_be_bytes([pair[0], pair[1]]);
            }
            black_box(&out);
        });
    });
    group.bench_function("f32_cdab_decode_registers", |b| {
        let mut out = [0f32; 62];
        b.iter(|| {
            let regs = Registers::try_from(&black_box(&WIRE)[..]).unwrap();
            let n = value::decode_registers(regs, Order::Cdab, &mut out);
            black_box((n, &out));
        });
    });
    group.bench_function("f32_cdab_decode_slice", |b| {
        let mut words = [0u16; 125];
        Registers::try_from(&WIRE[..]).unwrap().copy_to(&mut words);
        let mut out = [0f32; 62];
        b.iter(|| {
            let n = value::decode_slice(black_box(&words), Order::Cdab, &mut out);
            black_box((n, &out));
        });
    });
    group.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);
