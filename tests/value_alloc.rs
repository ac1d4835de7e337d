//! The core conversions never touch the heap: a counting global allocator watches every
//! decode and encode of every type and order.
// Implementing `GlobalAlloc` is `unsafe` by definition; the crate forbids unsafe code, and this
// test binary needs exactly one such impl, which only forwards to `System` and counts.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use modbus_stack::pdu::Registers;
use modbus_stack::value::{self, Order, Rounding, Scale, StringFormat, Trim, Value};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so the
// `GlobalAlloc` contract holds exactly as it does for `System`.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        // SAFETY: forwarded unchanged, see the impl comment.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged, see the impl comment.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        // SAFETY: forwarded unchanged, see the impl comment.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const WIRE: [u8; 16] = [
    0x40, 0x49, 0x0F, 0xDB, 0x12, 0x34, 0x56, 0x78, 0x80, 0x00, 0x00, 0x01, 0xFF, 0xFF, 0x7F, 0xC0,
];

fn exercise<T: Value + Default>(order: Order) {
    let view = Registers::try_from(&WIRE[..]).unwrap();
    let mut words = [0u16; 8];
    view.copy_to(&mut words);
    let single: T = value::decode(&words, order).unwrap();
    let at: T = value::decode_at(&view, 1, order).unwrap();
    let mut out = [0u16; 8];
    value::encode(single, order, &mut out).unwrap();
    value::encode_slice(&[single, at], order, &mut out).unwrap();
    let _ = value::to_registers(at, order);
    let mut bulk = [T::default(); 8];
    value::decode_slice(&words, order, &mut bulk);
    value::decode_registers(view, order, &mut bulk);
    value::decode_registers(Registers::from_words(&words), order, &mut bulk);
    let scale = Scale::new(0.5, 1.0).unwrap();
    let _ = value::decode_scaled_at::<T, _>(&view, 0, order, scale).unwrap();
    let _ = value::encode_scaled::<T>(3.0, order, scale, Rounding::Nearest, &mut out);
    // Error paths must not allocate either.
    let _ = value::decode_at::<T, _>(&words, 7, order);
    let _ = value::encode(single, order, &mut out[..0]);
    let _ = value::encode_scaled::<T>(f64::NAN, order, scale, Rounding::Exact, &mut out);
}

#[test]
fn conversions_do_not_allocate() {
    let mut buf = [0u8; 32];
    let mut out = [0u16; 8];
    // Warm up anything lazily initialised by the test harness before counting.
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    for order in Order::ALL {
        exercise::<u16>(order);
        exercise::<i16>(order);
        exercise::<u32>(order);
        exercise::<i32>(order);
        exercise::<u64>(order);
        exercise::<i64>(order);
        exercise::<f32>(order);
        exercise::<f64>(order);
    }
    for byte_order in [
        value::ByteOrder::HighByteFirst,
        value::ByteOrder::LowByteFirst,
    ] {
        for trim in [
            Trim::Keep,
            Trim::TrailingNul,
            Trim::TrailingNulAndSpace,
            Trim::FirstNul,
        ] {
            let format = StringFormat::new(4)
                .with_byte_order(byte_order)
                .with_trim(trim);
            value::encode_str("odd", format, &mut out).unwrap();
            let _ = value::decode_str(&out, format, &mut buf).unwrap();
            let _ = value::decode_bytes_at(
                &Registers::try_from(&WIRE[..]).unwrap(),
                2,
                format,
                &mut buf,
            );
            let _ = value::decode_str(&[0xFFFF; 4], format, &mut buf);
            let _ = value::encode_str("far too long for four", format, &mut out);
        }
    }
    let _ = value::decode_bit(&out, 0, 3).unwrap();
    let _ = value::with_bit(0, 15, true).unwrap();
    let _ = value::with_bit(0, 16, true);
    let after = ALLOCATIONS.load(Ordering::SeqCst);
    assert_eq!(
        after - before,
        0,
        "core conversions allocated {} times",
        after - before
    );
}
