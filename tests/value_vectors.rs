//! Hand-checked register vectors for every numeric type and order, strings and bits, plus
//! proptest round trips (`decode(encode(v)) == v`, bit-exact for floats).

// Exact float results are the point here; `eq` has the `fn(T, T)` shape the helpers take.
#![allow(clippy::float_cmp, clippy::needless_pass_by_value)]

use core::f32::consts::PI as PI32;
use core::f64::consts::PI as PI64;

use modbus_stack::pdu::Registers;
use modbus_stack::value::{
    self, ByteOrder, DataType, Order, Rounding, Scale, StringFormat, Trim, Value, ValueError,
};
use proptest::prelude::*;

/// Checks decode (from `&[u16]` and from a wire `Registers` view) and encode of one vector.
fn check<T: Value + core::fmt::Debug>(
    value: T,
    order: Order,
    registers: &[u16],
    same: fn(T, T) -> bool,
) {
    let decoded: T = value::decode(registers, order).unwrap();
    assert!(
        same(decoded, value),
        "{order}: decoded {decoded:?}, expected {value:?}"
    );
    let wire: Vec<u8> = registers.iter().flat_map(|r| r.to_be_bytes()).collect();
    let view = Registers::try_from(&wire[..]).unwrap();
    let from_view: T = value::decode_at(&view, 0, order).unwrap();
    assert!(
        same(from_view, value),
        "{order}: view decoded {from_view:?}"
    );
    let mut bulk = [value; 1];
    assert_eq!(value::decode_registers(view, order, &mut bulk), 1);
    assert!(same(bulk[0], value), "{order}: bulk decoded {:?}", bulk[0]);
    let mut out = vec![0xAAAA; registers.len()];
    assert_eq!(value::encode(value, order, &mut out), Ok(registers.len()));
    assert_eq!(out, registers, "{order}: encoded {value:?}");
}

fn eq<T: PartialEq>(a: T, b: T) -> bool {
    a == b
}

fn same_f32(a: f32, b: f32) -> bool {
    a.to_bits() == b.to_bits()
}

fn same_f64(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits()
}

#[test]
fn u16_and_i16_vectors() {
    check(0x1234_u16, Order::AB, &[0x1234], eq);
    check(0x1234_u16, Order::BA, &[0x3412], eq);
    // Word order does not apply to one register.
    check(0x1234_u16, Order::Cdab, &[0x1234], eq);
    check(0x1234_u16, Order::Dcba, &[0x3412], eq);
    check(-1_i16, Order::AB, &[0xFFFF], eq);
    check(i16::MIN, Order::AB, &[0x8000], eq);
    check(i16::MIN, Order::BA, &[0x0080], eq);
}

#[test]
fn u32_and_i32_vectors() {
    check(0x1234_5678_u32, Order::Abcd, &[0x1234, 0x5678], eq);
    check(0x1234_5678_u32, Order::Cdab, &[0x5678, 0x1234], eq);
    check(0x1234_5678_u32, Order::Badc, &[0x3412, 0x7856], eq);
    check(0x1234_5678_u32, Order::Dcba, &[0x7856, 0x3412], eq);
    for order in Order::ALL {
        check(-1_i32, order, &[0xFFFF, 0xFFFF], eq);
    }
    check(i32::MIN, Order::Abcd, &[0x8000, 0x0000], eq);
    check(i32::MIN, Order::Cdab, &[0x0000, 0x8000], eq);
    check(i32::MIN, Order::Badc, &[0x0080, 0x0000], eq);
    check(i32::MIN, Order::Dcba, &[0x0000, 0x0080], eq);
}

#[test]
fn u64_and_i64_vectors() {
    let v = 0x0102_0304_0506_0708_u64;
    check(v, Order::ABCDEFGH, &[0x0102, 0x0304, 0x0506, 0x0708], eq);
    check(v, Order::GHEFCDAB, &[0x0708, 0x0506, 0x0304, 0x0102], eq);
    check(v, Order::BADCFEHG, &[0x0201, 0x0403, 0x0605, 0x0807], eq);
    check(v, Order::HGFEDCBA, &[0x0807, 0x0605, 0x0403, 0x0201], eq);
    for order in Order::ALL {
        check(u64::MAX, order, &[0xFFFF; 4], eq);
        check(-1_i64, order, &[0xFFFF; 4], eq);
    }
    check(i64::MIN, Order::ABCDEFGH, &[0x8000, 0, 0, 0], eq);
    check(i64::MIN, Order::HGFEDCBA, &[0, 0, 0, 0x0080], eq);
}

#[test]
fn pi_vectors() {
    // f32 π = 0x40490FDB.
    check(PI32, Order::Abcd, &[0x4049, 0x0FDB], same_f32);
    check(PI32, Order::Cdab, &[0x0FDB, 0x4049], same_f32);
    check(PI32, Order::Badc, &[0x4940, 0xDB0F], same_f32);
    check(PI32, Order::Dcba, &[0xDB0F, 0x4940], same_f32);
    // f64 π = 0x400921FB54442D18.
    check(
        PI64,
        Order::ABCDEFGH,
        &[0x4009, 0x21FB, 0x5444, 0x2D18],
        same_f64,
    );
    check(
        PI64,
        Order::GHEFCDAB,
        &[0x2D18, 0x5444, 0x21FB, 0x4009],
        same_f64,
    );
    check(
        PI64,
        Order::BADCFEHG,
        &[0x0940, 0xFB21, 0x4454, 0x182D],
        same_f64,
    );
    check(
        PI64,
        Order::HGFEDCBA,
        &[0x182D, 0x4454, 0xFB21, 0x0940],
        same_f64,
    );
}

#[test]
fn nan_payloads_and_signed_zero_survive() {
    let quiet_payload = f32::from_bits(0x7FC0_1234);
    let signalling = f32::from_bits(0x7F80_0001);
    check(quiet_payload, Order::Abcd, &[0x7FC0, 0x1234], same_f32);
    check(quiet_payload, Order::Dcba, &[0x3412, 0xC07F], same_f32);
    check(signalling, Order::Cdab, &[0x0001, 0x7F80], same_f32);
    check(-0.0_f32, Order::Abcd, &[0x8000, 0x0000], same_f32);
    let nan64 = f64::from_bits(0xFFF8_0000_DEAD_BEEF);
    check(
        nan64,
        Order::GHEFCDAB,
        &[0xBEEF, 0xDEAD, 0x0000, 0xFFF8],
        same_f64,
    );
}

#[test]
fn short_sources_and_outputs_are_errors() {
    assert_eq!(
        value::decode::<f64, _>(&[1, 2, 3], Order::Abcd),
        Err(ValueError::NotEnoughRegisters {
            needed: 4,
            available: 3
        })
    );
    assert_eq!(
        value::decode_at::<u32, _>(&[1, 2, 3], 2, Order::Abcd),
        Err(ValueError::NotEnoughRegisters {
            needed: 2,
            available: 1
        })
    );
    assert_eq!(
        value::decode_at::<u16, _>(&[1], usize::MAX, Order::Abcd),
        Err(ValueError::NotEnoughRegisters {
            needed: 1,
            available: 0
        })
    );
    let mut out = [0u16; 1];
    assert_eq!(
        value::encode(1.0_f32, Order::Abcd, &mut out),
        Err(ValueError::NotEnoughRegisters {
            needed: 2,
            available: 1
        })
    );
    assert_eq!(
        value::encode_slice(&[1u32, 2], Order::Abcd, &mut [0u16; 3]),
        Err(ValueError::NotEnoughRegisters {
            needed: 4,
            available: 3
        })
    );
    // Bulk decoding stops at the last whole value.
    let mut floats = [0f32; 4];
    assert_eq!(
        value::decode_slice(&[0x4049, 0x0FDB, 0x4049], Order::Abcd, &mut floats),
        1
    );
}

#[test]
fn words_view_bulk_path_matches_slice_path() {
    let regs = [0x0FDB, 0x4049, 0x0000, 0x3F80, 0x1234];
    let mut a = [0f32; 3];
    let mut b = [0f32; 3];
    assert_eq!(
        value::decode_registers(Registers::from_words(&regs), Order::Cdab, &mut a),
        2
    );
    assert_eq!(value::decode_slice(&regs, Order::Cdab, &mut b), 2);
    assert_eq!(a, b);
    assert_eq!(a[..2], [PI32, 1.0]);
}

#[test]
fn string_vectors() {
    let mut buf = [0u8; 16];
    // Odd length: "abc" in two registers, NUL padded.
    let mut regs = [0u16; 2];
    assert_eq!(
        value::encode_str("abc", StringFormat::new(2), &mut regs),
        Ok(2)
    );
    assert_eq!(regs, [0x6162, 0x6300]);
    assert_eq!(
        value::decode_str(&regs, StringFormat::new(2), &mut buf),
        Ok("abc")
    );
    // The same with swapped bytes.
    let swapped = StringFormat::new(2).with_byte_order(ByteOrder::LowByteFirst);
    assert_eq!(value::encode_str("abc", swapped, &mut regs), Ok(2));
    assert_eq!(regs, [0x6261, 0x0063]);
    assert_eq!(value::decode_str(&regs, swapped, &mut buf), Ok("abc"));
    // Trimming rules.
    let regs = [0x4120, 0x4200, 0x4300];
    let keep = StringFormat::new(3).with_trim(Trim::Keep);
    assert_eq!(
        value::decode_bytes(&regs, keep, &mut buf),
        Ok(&b"A B\0C\0"[..])
    );
    let first_nul = keep.with_trim(Trim::FirstNul);
    assert_eq!(value::decode_str(&regs, first_nul, &mut buf), Ok("A B"));
    let trailing = keep.with_trim(Trim::TrailingNul);
    assert_eq!(
        value::decode_bytes(&regs, trailing, &mut buf),
        Ok(&b"A B\0C"[..])
    );
    let spaces = [0x4F4B, 0x2000, 0x2020];
    let both = keep.with_trim(Trim::TrailingNulAndSpace);
    assert_eq!(value::decode_str(&spaces, both, &mut buf), Ok("OK"));
    // At an offset inside a wire view.
    let wire: [u8; 4] = [0x00, 0x00, 0x48, 0x69];
    let view = Registers::try_from(&wire[..]).unwrap();
    assert_eq!(
        value::decode_str_at(&view, 1, StringFormat::new(1), &mut buf),
        Ok("Hi")
    );
}

#[test]
fn string_errors() {
    let mut small = [0u8; 3];
    assert_eq!(
        value::decode_str(&[0x4142, 0x4344], StringFormat::new(2), &mut small),
        Err(ValueError::BufferTooSmall {
            required: 4,
            available: 3
        })
    );
    let mut buf = [0u8; 8];
    assert_eq!(
        value::decode_str(&[0x4142], StringFormat::new(2), &mut buf),
        Err(ValueError::NotEnoughRegisters {
            needed: 2,
            available: 1
        })
    );
    assert_eq!(
        value::decode_str(&[0x41FF], StringFormat::new(1), &mut buf),
        Err(ValueError::InvalidUtf8 { valid_up_to: 1 })
    );
    let mut out = [0u16; 4];
    assert_eq!(
        value::encode_str("hello", StringFormat::new(2), &mut out),
        Err(ValueError::StringTooLong {
            len: 5,
            capacity: 4
        })
    );
    assert_eq!(
        value::encode_str("hi", StringFormat::new(5), &mut out),
        Err(ValueError::NotEnoughRegisters {
            needed: 5,
            available: 4
        })
    );
}

#[test]
fn bit_vectors() {
    let regs = [0b1000_0000_0000_0101_u16];
    assert_eq!(value::decode_bit(&regs, 0, 0), Ok(true));
    assert_eq!(value::decode_bit(&regs, 0, 1), Ok(false));
    assert_eq!(value::decode_bit(&regs, 0, 2), Ok(true));
    assert_eq!(value::decode_bit(&regs, 0, 15), Ok(true));
    assert_eq!(
        value::decode_bit(&regs, 0, 16),
        Err(ValueError::BitOutOfRange { bit: 16 })
    );
    assert_eq!(
        value::decode_bit(&regs, 1, 0),
        Err(ValueError::NotEnoughRegisters {
            needed: 1,
            available: 0
        })
    );
    assert_eq!(value::with_bit(0, 3, true), Ok(0x0008));
    assert_eq!(value::with_bit(0xFFFF, 0, false), Ok(0xFFFE));
    assert_eq!(
        value::with_bit(0, 200, true),
        Err(ValueError::BitOutOfRange { bit: 200 })
    );
}

#[test]
fn scaling_vectors() {
    let scale = Scale::new(0.1, -40.0).unwrap();
    let mut out = [0u16; 2];
    assert_eq!(
        value::encode_scaled::<i32>(-12.3, Order::Cdab, scale, Rounding::Nearest, &mut out),
        Ok(2)
    );
    assert_eq!(out, [277, 0]);
    let back = value::decode_scaled::<i32, _>(&out, Order::Cdab, scale).unwrap();
    assert!((back - -12.3).abs() < 1e-9);
    assert_eq!(Scale::new(0.0, 1.0), Err(ValueError::InvalidScale));
    assert_eq!(Scale::new(f64::NAN, 1.0), Err(ValueError::InvalidScale));
    assert_eq!(
        value::encode_scaled::<i16>(
            f64::INFINITY,
            Order::Abcd,
            Scale::IDENTITY,
            Rounding::Nearest,
            &mut out
        ),
        Err(ValueError::NotFinite {
            data_type: DataType::I16
        })
    );
    assert_eq!(
        value::encode_scaled::<i16>(4000.0, Order::Abcd, scale, Rounding::Nearest, &mut out),
        Err(ValueError::OutOfRange {
            data_type: DataType::I16
        })
    );
}

#[test]
fn order_is_one_design_for_every_width() {
    use value::WordOrder;
    for order in Order::ALL {
        assert_eq!(Order::new(order.word_order(), order.byte_order()), order);
    }
    assert_eq!(Order::Cdab.word_order(), WordOrder::LowWordFirst);
    assert_eq!(Order::Badc.byte_order(), ByteOrder::LowByteFirst);
    assert_eq!(Order::HGFEDCBA.name_64(), "HGFEDCBA");
    assert_eq!(Order::Dcba.to_string(), "DCBA");
    assert_eq!(
        DataType::ALL.map(DataType::registers),
        [1, 1, 2, 2, 4, 4, 2, 4]
    );
}

fn any_order() -> impl Strategy<Value = Order> {
    prop::sample::select(Order::ALL.to_vec())
}

/// Round trip through `encode` and every decoder; `same` decides equality (bits for floats).
fn round_trip<T: Value + core::fmt::Debug>(
    value: T,
    order: Order,
    same: fn(T, T) -> bool,
) -> Result<(), TestCaseError> {
    let mut regs = [0u16; 4];
    let n = value::encode(value, order, &mut regs).unwrap();
    prop_assert_eq!(n, T::REGISTERS);
    let back: T = value::decode(&regs[..n], order).unwrap();
    prop_assert!(same(back, value), "{:?} -> {:?}", value, back);
    let wire: Vec<u8> = regs[..n].iter().flat_map(|r| r.to_be_bytes()).collect();
    let mut bulk = [value; 1];
    prop_assert_eq!(
        value::decode_registers(Registers::try_from(&wire[..]).unwrap(), order, &mut bulk),
        1
    );
    prop_assert!(same(bulk[0], value));
    let array = value::to_registers(value, order);
    prop_assert_eq!(array.as_ref(), &regs[..n]);
    Ok(())
}

proptest! {
    #[test]
    fn round_trip_integers(order in any_order(), a: u16, b: i16, c: u32, d: i32, e: u64, f: i64) {
        round_trip(a, order, eq)?;
        round_trip(b, order, eq)?;
        round_trip(c, order, eq)?;
        round_trip(d, order, eq)?;
        round_trip(e, order, eq)?;
        round_trip(f, order, eq)?;
    }

    #[test]
    fn round_trip_floats_bit_exact(order in any_order(), a: u32, b: u64) {
        // Arbitrary bit patterns: NaNs with every payload, infinities, subnormals, -0.0.
        round_trip(f32::from_bits(a), order, same_f32)?;
        round_trip(f64::from_bits(b), order, same_f64)?;
    }

    #[test]
    fn bulk_matches_single(order in any_order(), words in prop::collection::vec(any::<u16>(), 0..40)) {
        let mut bulk = vec![0f32; 20];
        let n = value::decode_slice(&words, order, &mut bulk);
        prop_assert_eq!(n, words.len() / 2);
        let wire: Vec<u8> = words.iter().flat_map(|r| r.to_be_bytes()).collect();
        let mut from_wire = vec![0f32; 20];
        prop_assert_eq!(value::decode_registers(Registers::try_from(&wire[..]).unwrap(), order, &mut from_wire), n);
        for i in 0..n {
            let single: f32 = value::decode_at(&words[..], i * 2, order).unwrap();
            prop_assert_eq!(single.to_bits(), bulk[i].to_bits());
            prop_assert_eq!(single.to_bits(), from_wire[i].to_bits());
        }
        let mut back = vec![0u16; n * 2];
        prop_assert_eq!(value::encode_slice(&bulk[..n], order, &mut back), Ok(n * 2));
        prop_assert_eq!(&back[..], &words[..n * 2]);
    }

    #[test]
    fn round_trip_strings(text in "[ -~]{0,20}", registers in 10u16..12, swapped: bool) {
        let order = if swapped { ByteOrder::LowByteFirst } else { ByteOrder::HighByteFirst };
        let format = StringFormat::new(registers).with_byte_order(order).with_trim(Trim::TrailingNul);
        let mut regs = [0u16; 12];
        value::encode_str(&text, format, &mut regs).unwrap();
        let mut buf = [0u8; 24];
        prop_assert_eq!(value::decode_str(&regs, format, &mut buf), Ok(text.as_str()));
    }

    #[test]
    fn scaled_integers_round_trip(raw: i32, order in any_order()) {
        let scale = Scale::new(0.5, 10.0).unwrap();
        let engineering = scale.to_engineering(raw);
        let mut regs = [0u16; 2];
        value::encode_scaled::<i32>(engineering, order, scale, Rounding::Exact, &mut regs).unwrap();
        prop_assert_eq!(value::decode::<i32, _>(&regs, order), Ok(raw));
    }
}
