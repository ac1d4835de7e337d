//! Typed register data: bulk f32 decoding against a plain register loop, and read planning.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use modbus_stack::pdu::Registers;
use modbus_stack::point::{PlanConfig, Point, PointKind, PointMap, Table};
use modbus_stack::value::{self, DataType, Order};

/// 125 registers (a full FC 03 response) of word-swapped f32 values, plus one spare register.
const WIRE: [u8; 250] = {
    let mut bytes = [0u8; 250];
    let mut i = 0;
    while i < 250 {
        // Deterministic, varied bytes; the values themselves do not matter.
        #[allow(clippy::cast_possible_truncation)] // i < 250
        let byte = i as u8;
        bytes[i] = byte.wrapping_mul(37).wrapping_add(11);
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

/// 1000 points over two devices and all four tables, with holes, overlaps and mixed widths.
fn thousand_points() -> PointMap {
    let mut points = Vec::new();
    let mut address = 0u16;
    for i in 0..1000u16 {
        let unit_id = 1 + u8::from(i % 2 == 1);
        let (table, kind) = match i % 10 {
            0 => (Table::Coils, PointKind::Bit),
            1 => (Table::DiscreteInputs, PointKind::Bit),
            2 | 3 => (
                Table::InputRegisters,
                PointKind::number(DataType::F32, Order::Cdab),
            ),
            4 => (Table::HoldingRegisters, PointKind::RegisterBit { bit: 3 }),
            5 => (
                Table::HoldingRegisters,
                PointKind::number(DataType::F64, Order::Abcd),
            ),
            _ => (
                Table::HoldingRegisters,
                PointKind::number(DataType::U16, Order::Abcd),
            ),
        };
        points.push(Point::new(format!("p{i}"), unit_id, table, address, kind));
        // Every seventh point leaves a hole the planner must decide to read through or not.
        address += 4 + u16::from(i % 7 == 0) * 6;
    }
    PointMap::new(points).unwrap()
}

fn plan(c: &mut Criterion) {
    let map = thousand_points();
    let mut config = PlanConfig::default();
    config.defaults.max_register_gap = 4;
    config.defaults.max_bit_gap = 16;
    let mut group = c.benchmark_group("point/plan");
    group.bench_function("1000_points", |b| {
        b.iter(|| {
            black_box(&map)
                .plan(black_box(&config))
                .unwrap()
                .reads()
                .len()
        });
    });
    group.finish();
}

criterion_group!(benches, decode, plan);
criterion_main!(benches);
