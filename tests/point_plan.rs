//! Read planner: map validation, limits, decoding, write requests, and properties against a
//! reference planner written here independently.

// Point maps own collections: the point module exists only with `std`.
#![cfg(feature = "std")]

use std::collections::BTreeSet;

use modbus_stack::pdu::Request;
use modbus_stack::point::{
    DeviceLimits, MapError, PlanConfig, PlanError, Point, PointKind, PointMap, PointValue, Table,
    WriteError,
};
use modbus_stack::value::{DataType, Order, Scale, StringFormat};
use proptest::prelude::*;

fn holding(name: &str, address: u16, data_type: DataType) -> Point {
    Point::new(
        name,
        1,
        Table::HoldingRegisters,
        address,
        PointKind::number(data_type, Order::Abcd),
    )
}

#[test]
fn map_rejects_bad_points() {
    let dup = PointMap::new([
        holding("a", 0, DataType::U16),
        holding("a", 5, DataType::U16),
    ]);
    assert_eq!(dup, Err(MapError::DuplicateName { name: "a".into() }));
    let wrong = PointMap::new([Point::new(
        "c",
        1,
        Table::Coils,
        0,
        PointKind::number(DataType::U16, Order::Abcd),
    )]);
    assert_eq!(
        wrong,
        Err(MapError::WrongTable {
            name: "c".into(),
            table: Table::Coils
        })
    );
    let bit = PointMap::new([Point::new(
        "b",
        1,
        Table::InputRegisters,
        0,
        PointKind::RegisterBit { bit: 16 },
    )]);
    assert_eq!(
        bit,
        Err(MapError::BitOutOfRange {
            name: "b".into(),
            bit: 16
        })
    );
    let empty = PointMap::new([Point::new(
        "s",
        1,
        Table::InputRegisters,
        0,
        PointKind::String(StringFormat::new(0)),
    )]);
    assert_eq!(empty, Err(MapError::EmptyString { name: "s".into() }));
    let end = PointMap::new([holding("f", 0xFFFD, DataType::F64)]);
    assert_eq!(
        end,
        Err(MapError::AddressOverflow {
            name: "f".into(),
            address: 0xFFFD,
            len: 4
        })
    );
    assert!(PointMap::new([holding("last", 0xFFFC, DataType::F64)]).is_ok());
    let partial = PointMap::new([
        holding("x", 10, DataType::F64),
        holding("y", 12, DataType::U32),
        holding("z", 13, DataType::U32),
    ]);
    assert_eq!(
        partial,
        Err(MapError::PartialOverlap {
            first: "y".into(),
            second: "z".into()
        })
    );
}

#[test]
fn contained_overlaps_and_other_tables_are_fine() {
    let map = PointMap::new([
        holding("as_u32", 10, DataType::U32),
        holding("high", 10, DataType::U16),
        holding("low", 11, DataType::U16),
        Point::new(
            "alarm",
            1,
            Table::HoldingRegisters,
            11,
            PointKind::RegisterBit { bit: 3 },
        ),
        // Same addresses, other table / unit: independent spaces.
        Point::new(
            "in",
            1,
            Table::InputRegisters,
            11,
            PointKind::number(DataType::U32, Order::Abcd),
        ),
        Point::new(
            "other_unit",
            2,
            Table::HoldingRegisters,
            11,
            PointKind::number(DataType::U32, Order::Abcd),
        ),
    ])
    .unwrap();
    let plan = map.plan(&PlanConfig::default()).unwrap();
    assert_eq!(plan.reads().len(), 3);
    // Reads come grouped by unit id, then table (input registers before holding registers).
    assert_eq!(
        plan.reads()[1].to_request(),
        Request::ReadHoldingRegisters {
            address: 10,
            quantity: 2
        }
    );
    let readings = plan.decode_read(1, (&[0x0001, 0x0008][..]).into()).unwrap();
    let values: Vec<_> = readings
        .iter()
        .map(|r| (r.point.name.as_str(), r.value.clone()))
        .collect();
    assert_eq!(
        values,
        [
            ("as_u32", Ok(PointValue::U32(0x0001_0008))),
            ("high", Ok(PointValue::U16(1))),
            ("low", Ok(PointValue::U16(8))),
            ("alarm", Ok(PointValue::Bool(true))),
        ]
    );
}

#[test]
fn planner_honours_gap_size_and_forbidden_addresses() {
    let points = [
        holding("a", 0, DataType::U16),
        holding("b", 3, DataType::U16),
        holding("c", 10, DataType::F32),
    ];
    let map = PointMap::new(points).unwrap();
    let plan = map.plan(&PlanConfig::default()).unwrap();
    assert_eq!(plan.reads().len(), 3, "no gap allowed by default");
    let mut config = PlanConfig::default();
    config.defaults.max_register_gap = 2;
    let reads: Vec<_> = map
        .plan(&config)
        .unwrap()
        .reads()
        .iter()
        .map(|r| (r.address, r.quantity))
        .collect();
    assert_eq!(reads, [(0, 4), (10, 2)]);
    config.defaults.max_register_gap = 10;
    let reads: Vec<_> = map
        .plan(&config)
        .unwrap()
        .reads()
        .iter()
        .map(|r| (r.address, r.quantity))
        .collect();
    assert_eq!(reads, [(0, 12)]);
    // Register 5 is undefined on unit 1: never read it, even as gap.
    let mut device = config.defaults.clone();
    device.forbidden.insert((Table::HoldingRegisters, 5));
    config.devices.insert(1, device.clone());
    let reads: Vec<_> = map
        .plan(&config)
        .unwrap()
        .reads()
        .iter()
        .map(|r| (r.address, r.quantity))
        .collect();
    assert_eq!(reads, [(0, 4), (10, 2)]);
    // A device that takes at most 8 registers per read.
    device.forbidden.clear();
    device.max_registers = 8;
    config.devices.insert(1, device.clone());
    let reads: Vec<_> = map
        .plan(&config)
        .unwrap()
        .reads()
        .iter()
        .map(|r| (r.address, r.quantity))
        .collect();
    assert_eq!(reads, [(0, 4), (10, 2)]);
    device.max_registers = 1;
    config.devices.insert(1, device.clone());
    assert_eq!(
        map.plan(&config).unwrap_err(),
        PlanError::PointTooLarge {
            name: "c".into(),
            len: 2,
            max: 1
        }
    );
    device.max_registers = 126;
    config.devices.insert(1, device.clone());
    assert!(matches!(
        map.plan(&config),
        Err(PlanError::InvalidLimit { max: 126, .. })
    ));
    device.max_registers = 125;
    device.forbidden.insert((Table::HoldingRegisters, 11));
    config.devices.insert(1, device);
    assert_eq!(
        map.plan(&config).unwrap_err(),
        PlanError::PointReadsForbidden {
            name: "c".into(),
            address: 11
        }
    );
}

#[test]
fn planner_honours_boundaries_and_one_read_per_point() {
    let map = PointMap::new([
        holding("a", 0, DataType::U16),
        holding("b", 1, DataType::U16),
        holding("c", 2, DataType::F32),
    ])
    .unwrap();
    let reads = |config: &PlanConfig| -> Vec<(u16, u16)> {
        map.plan(config)
            .unwrap()
            .reads()
            .iter()
            .map(|r| (r.address, r.quantity))
            .collect()
    };
    let mut config = PlanConfig::default();
    assert_eq!(reads(&config), [(0, 4)]);
    config
        .defaults
        .boundaries
        .insert((Table::HoldingRegisters, 2));
    assert_eq!(reads(&config), [(0, 2), (2, 2)]);
    // A boundary on another table changes nothing.
    config.defaults.boundaries.clear();
    config
        .defaults
        .boundaries
        .insert((Table::InputRegisters, 2));
    assert_eq!(reads(&config), [(0, 4)]);
    config.defaults.one_read_per_point = true;
    assert_eq!(reads(&config), [(0, 1), (1, 1), (2, 2)]);
    // A boundary inside a point: no read can hold it.
    config.defaults.one_read_per_point = false;
    config
        .defaults
        .boundaries
        .insert((Table::HoldingRegisters, 3));
    assert_eq!(
        map.plan(&config).unwrap_err(),
        PlanError::PointCrossesBoundary {
            name: "c".into(),
            address: 3
        }
    );
}

#[test]
fn decoding_checks_the_data_and_reads_every_kind() {
    let map = PointMap::new([
        Point::new("run", 3, Table::Coils, 7, PointKind::Bit),
        Point::new("trip", 3, Table::Coils, 9, PointKind::Bit),
        Point::new(
            "name",
            3,
            Table::InputRegisters,
            0,
            PointKind::String(StringFormat::new(2)),
        ),
        Point::new(
            "temp",
            3,
            Table::InputRegisters,
            2,
            PointKind::number(DataType::I16, Order::Abcd),
        )
        .with_scale(Scale::new(0.1, 0.0).unwrap())
        .with_unit("°C"),
    ])
    .unwrap();
    let mut config = PlanConfig::default();
    config.defaults.max_bit_gap = 1;
    let plan = map.plan(&config).unwrap();
    assert_eq!(plan.reads().len(), 2);
    assert_eq!(
        plan.reads()[0].to_request(),
        Request::ReadCoils {
            address: 7,
            quantity: 3
        }
    );
    assert_eq!(
        plan.reads()[1].to_request(),
        Request::ReadInputRegisters {
            address: 0,
            quantity: 3
        }
    );
    let bits = [true, false, false];
    let regs = [0x5031, 0x0000, 0xFF9C];
    let readings = plan
        .decode_all(&[(&bits[..]).into(), (&regs[..]).into()])
        .unwrap();
    let values: Vec<_> = readings.iter().map(|r| r.value.clone().unwrap()).collect();
    assert_eq!(
        values[..3],
        [
            PointValue::Bool(true),
            PointValue::Bool(false),
            PointValue::Text("P1".into())
        ]
    );
    let PointValue::F64(temp) = values[3] else {
        panic!("{:?}", values[3])
    };
    assert!((temp - -10.0).abs() < 1e-9);
    assert_eq!(readings[3].point.unit.as_deref(), Some("°C"));
    assert!(matches!(
        plan.decode_read(0, (&regs[..]).into()),
        Err(PlanError::WrongData { index: 0, .. })
    ));
    assert!(matches!(
        plan.decode_read(1, (&regs[..2]).into()),
        Err(PlanError::WrongLength {
            expected: 3,
            actual: 2,
            ..
        })
    ));
    assert!(matches!(
        plan.decode_read(2, (&regs[..]).into()),
        Err(PlanError::NoSuchRead { index: 2, reads: 2 })
    ));
    assert!(matches!(
        plan.decode_all(&[]),
        Err(PlanError::WrongResponseCount {
            expected: 2,
            actual: 0
        })
    ));
}

#[test]
fn write_requests() {
    let mut buf = [0u16; 8];
    let single = holding("sp", 4, DataType::U16);
    assert_eq!(
        single.write_request(&PointValue::U16(7), &mut buf),
        Ok(Request::WriteSingleRegister {
            address: 4,
            value: 7
        })
    );
    // Another numeric type converts only when exact.
    assert_eq!(
        single.write_request(&PointValue::F64(9.0), &mut buf),
        Ok(Request::WriteSingleRegister {
            address: 4,
            value: 9
        })
    );
    assert!(matches!(
        single.write_request(&PointValue::F64(9.5), &mut buf),
        Err(WriteError::Value(_))
    ));
    assert_eq!(
        single.write_request(&PointValue::Text("x".into()), &mut buf),
        Err(WriteError::TypeMismatch)
    );
    let bit = Point::new(
        "flag",
        1,
        Table::HoldingRegisters,
        2,
        PointKind::RegisterBit { bit: 4 },
    );
    assert_eq!(
        bit.write_request(&PointValue::Bool(true), &mut buf),
        Ok(Request::MaskWriteRegister {
            address: 2,
            and_mask: 0xFFEF,
            or_mask: 0x0010
        })
    );
    let coil = Point::new("pump", 1, Table::Coils, 3, PointKind::Bit);
    assert_eq!(
        coil.write_request(&PointValue::Bool(true), &mut buf),
        Ok(Request::WriteSingleCoil {
            address: 3,
            value: true
        })
    );
    let input = Point::new(
        "in",
        1,
        Table::InputRegisters,
        0,
        PointKind::number(DataType::U16, Order::Abcd),
    );
    assert_eq!(
        input.write_request(&PointValue::U16(1), &mut buf),
        Err(WriteError::ReadOnly {
            table: Table::InputRegisters
        })
    );
    let text = Point::new(
        "tag",
        1,
        Table::HoldingRegisters,
        20,
        PointKind::String(StringFormat::new(3)),
    );
    let Ok(Request::WriteMultipleRegisters {
        address: 20,
        values,
    }) = text.write_request(&PointValue::Text("abc".into()), &mut buf)
    else {
        panic!("expected FC 16");
    };
    assert!(values.iter().eq([0x6162, 0x6300, 0x0000]));
}

/// Reference: one pass over every point sorted by address, no shared code with the crate.
fn reference_read_count(points: &[(u8, Table, u16, u16)], limits: &DeviceLimits) -> usize {
    let mut sorted = points.to_vec();
    sorted.sort();
    let mut reads = 0;
    let mut open: Option<(u8, Table, u32, u32)> = None; // unit, table, start, end (inclusive)
    for &(unit, table, address, len) in &sorted {
        let (first, last) = (u32::from(address), u32::from(address) + u32::from(len) - 1);
        let (max, gap) = if matches!(table, Table::Coils | Table::DiscreteInputs) {
            (limits.max_bits, limits.max_bit_gap)
        } else {
            (limits.max_registers, limits.max_register_gap)
        };
        if let Some((u, t, start, end)) = open {
            if u == unit && t == table {
                if last <= end {
                    continue;
                }
                let clear = (end + 1..=last).all(|a| {
                    u16::try_from(a).is_ok_and(|a| {
                        !limits.forbidden.contains(&(table, a))
                            && !limits.boundaries.contains(&(table, a))
                    })
                });
                if last - start < u32::from(max)
                    && first.saturating_sub(end + 1) <= u32::from(gap)
                    && clear
                    && !limits.one_read_per_point
                {
                    open = Some((u, t, start, last));
                    continue;
                }
            }
        }
        reads += 1;
        open = Some((unit, table, first, last));
    }
    reads
}

fn any_table() -> impl Strategy<Value = Table> {
    prop::sample::select(vec![
        Table::Coils,
        Table::DiscreteInputs,
        Table::InputRegisters,
        Table::HoldingRegisters,
    ])
}

fn any_kind(table: Table) -> BoxedStrategy<PointKind> {
    if matches!(table, Table::Coils | Table::DiscreteInputs) {
        Just(PointKind::Bit).boxed()
    } else {
        prop_oneof![
            prop::sample::select(DataType::ALL.to_vec())
                .prop_map(|t| PointKind::number(t, Order::Cdab)),
            (0u8..16).prop_map(|bit| PointKind::RegisterBit { bit }),
            (1u16..20).prop_map(|n| PointKind::String(StringFormat::new(n))),
        ]
        .boxed()
    }
}

fn any_point() -> impl Strategy<Value = (u8, Table, u16, PointKind)> {
    (
        1u8..3,
        any_table(),
        prop_oneof![0u16..300, 65_400u16..=65_535],
    )
        .prop_flat_map(|(unit, table, address)| {
            (Just(unit), Just(table), Just(address), any_kind(table))
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn plan_covers_every_point_once_within_limits(
        raw in prop::collection::vec(any_point(), 1..60),
        max_registers in 20u16..=125,
        max_bits in 20u16..=2000,
        gap in 0u16..8,
        forbidden in prop::collection::btree_set((any_table(), 0u16..300), 0..20),
        boundaries in prop::collection::btree_set((any_table(), 0u16..300), 0..20),
        one_read_per_point in prop::bool::weighted(0.1),
    ) {
        // Keep the points a valid map accepts.
        let mut accepted: Vec<Point> = Vec::new();
        for (i, (unit, table, address, kind)) in raw.into_iter().enumerate() {
            let point = Point::new(format!("p{i}"), unit, table, address, kind);
            let mut candidate = accepted.clone();
            candidate.push(point.clone());
            let len = point.len();
            let hits_forbidden = (0..len).any(|o| address.checked_add(o).is_some_and(|a| forbidden.contains(&(table, a))));
            let crosses = (1..len).any(|o| address.checked_add(o).is_some_and(|a| boundaries.contains(&(table, a))));
            if !hits_forbidden && !crosses && PointMap::new(candidate).is_ok() {
                accepted.push(point);
            }
        }
        let map = PointMap::new(accepted.clone()).unwrap();
        let limits = DeviceLimits {
            max_registers,
            max_bits,
            max_register_gap: gap,
            max_bit_gap: gap,
            forbidden: forbidden.clone(),
            boundaries: boundaries.clone(),
            one_read_per_point,
        };
        let config = PlanConfig { defaults: limits.clone(), ..PlanConfig::default() };
        let plan = map.plan(&config).unwrap();
        let mut seen = BTreeSet::new();
        for (index, read) in plan.reads().iter().enumerate() {
            let max = if read.table.is_bits() { max_bits } else { max_registers };
            prop_assert!(read.quantity >= 1 && read.quantity <= max);
            prop_assert!(u32::from(read.address) + u32::from(read.quantity) <= 0x1_0000);
            for offset in 0..read.quantity {
                prop_assert!(!forbidden.contains(&(read.table, read.address + offset)), "read {:?} hits forbidden", read);
                prop_assert!(offset == 0 || !boundaries.contains(&(read.table, read.address + offset)), "read {:?} runs into a boundary", read);
            }
            if one_read_per_point {
                // One point, and what it contains (the same registers read another way).
                let whole = plan.points_of(index).any(|(point, _)| point.address == read.address && point.last_address() == Some(read.last_address()));
                prop_assert!(whole, "read {:?} joins several points", read);
            }
            for (point, offset) in plan.points_of(index) {
                prop_assert_eq!((point.unit_id, point.table), (read.unit_id, read.table));
                prop_assert_eq!(point.address - read.address, offset);
                prop_assert!(point.last_address().unwrap() <= read.last_address());
                prop_assert!(seen.insert(point.name.clone()), "{} read twice", point.name);
            }
        }
        prop_assert_eq!(seen.len(), map.len());
        let reference: Vec<_> = accepted.iter().map(|p| (p.unit_id, p.table, p.address, p.len())).collect();
        prop_assert!(plan.reads().len() <= reference_read_count(&reference, &limits));
        // And the plan decodes zeros for everything without errors other than UTF-8-free ones.
        let zeros = vec![0u16; 2000];
        let falses = vec![false; 2000];
        for (index, read) in plan.reads().iter().enumerate() {
            let n = usize::from(read.quantity);
            let data = if read.table.is_bits() { (&falses[..n]).into() } else { (&zeros[..n]).into() };
            for reading in plan.decode_read(index, data).unwrap() {
                prop_assert!(reading.value.is_ok());
            }
        }
    }
}
