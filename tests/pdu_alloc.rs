//! The PDU codec never touches the heap: decoding and encoding a request and a response of every
//! function code (and a few rejected inputs) allocate nothing.
//!
//! The crate forbids unsafe code; this test's `GlobalAlloc` implementation needs it, and that is
//! all it is used for.
#![allow(unsafe_code)]

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::hint::black_box;

use modbus_stack::pdu::{Request, Response};
use support::hex;

/// Counts, per thread, the allocations a thread makes while it has counting switched on;
/// forwards everything to the system allocator. Both the flag and the count are thread-local,
/// so tests running in parallel (and the harness's own threads) never disturb a measurement.
struct CountingAllocator;

thread_local! {
    // Const-initialised and without destructors, so touching them never allocates.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn note_allocation() {
    if COUNTING.try_with(Cell::get).unwrap_or(false) {
        let _ = ALLOCATIONS.try_with(|count| count.set(count.get() + 1));
    }
}

// SAFETY: every call is forwarded unchanged to `System`, which upholds the `GlobalAlloc`
// contract; the bookkeeping touches only an atomic and a const thread-local.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_allocation();
        // SAFETY: `ptr` was allocated by `System` through this allocator with `layout`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` through this allocator with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// Runs `f` with allocation counting on for this thread and returns the number of allocations.
fn allocations_during(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.with(Cell::get);
    COUNTING.with(|c| c.set(true));
    f();
    COUNTING.with(|c| c.set(false));
    ALLOCATIONS.with(Cell::get) - before
}

/// A request and its response, for every public function code and the FC 08 / FC 43
/// sub-types, plus a user-defined code and an exception.
fn exchanges() -> Vec<(Vec<u8>, Vec<u8>)> {
    [
        ("01 00 13 00 13", "01 03 CD 6B 05"),
        ("02 00 C4 00 16", "02 03 AC DB 35"),
        ("03 00 6B 00 03", "03 06 02 2B 00 00 00 64"),
        ("04 00 08 00 01", "04 02 00 0A"),
        ("05 00 AC FF 00", "05 00 AC FF 00"),
        ("06 00 01 00 03", "06 00 01 00 03"),
        ("07", "07 6D"),
        ("08 00 00 A5 37", "08 00 00 A5 37"),
        ("08 00 01 FF 00", "08 00 01 FF 00"),
        ("08 00 02 00 00", "08 00 02 12 34"),
        ("08 00 03 0D 00", "08 00 03 0D 00"),
        ("08 00 0A 00 00", "08 00 0A 00 00"),
        ("08 00 0B 00 00", "08 00 0B 00 07"),
        ("08 00 12 00 00", "08 00 12 00 01"),
        ("08 00 14 00 00", "08 00 14 00 00"),
        ("0B", "0B FF FF 01 08"),
        ("0C", "0C 08 00 00 01 08 01 21 20 00"),
        ("0F 00 13 00 0A 02 CD 01", "0F 00 13 00 0A"),
        ("10 00 01 00 02 04 00 0A 01 02", "10 00 01 00 02"),
        ("11", "11 04 B4 FF 4C 4D"),
        (
            "14 0E 06 00 04 00 01 00 02 06 00 03 00 09 00 02",
            "14 0C 05 06 0D FE 00 20 05 06 33 CD 00 40",
        ),
        (
            "15 0D 06 00 04 00 07 00 03 06 AF 04 BE 10 0D",
            "15 0D 06 00 04 00 07 00 03 06 AF 04 BE 10 0D",
        ),
        ("16 00 04 00 F2 00 25", "16 00 04 00 F2 00 25"),
        (
            "17 00 03 00 06 00 0E 00 03 06 00 FF 00 FF 00 FF",
            "17 0C 00 FE 0A CD 00 01 00 03 00 0D 00 FF",
        ),
        ("18 04 DE", "18 00 06 00 02 01 B8 12 84"),
        ("2B 0D 01 02 03", "2B 0D 04 05"),
        (support::DEVICE_ID_REQUEST, support::DEVICE_ID_RESPONSE),
        ("41 01 02", "41 03"),
        ("03 00 00 00 01", "83 02"),
    ]
    .iter()
    .map(|(request, response)| (hex(request), hex(response)))
    .collect()
}

/// Decodes and re-encodes every exchange, walking every payload view; returns how many steps
/// succeeded (checked outside the counting window, where assertions may allocate).
fn exercise(exchanges: &[(Vec<u8>, Vec<u8>)], out: &mut [u8; 256]) -> usize {
    let mut ok = 0;
    for (request_bytes, response_bytes) in exchanges {
        let Ok(request) = Request::decode(black_box(request_bytes)) else {
            continue;
        };
        if request.encode(out) == Ok(request_bytes.len())
            && out[..request_bytes.len()] == **request_bytes
        {
            ok += 1;
        }
        let Ok(response) = Response::decode(black_box(response_bytes), &request) else {
            continue;
        };
        walk(&request, &response);
        if response.encode(out) == Ok(response_bytes.len())
            && out[..response_bytes.len()] == **response_bytes
        {
            ok += 1;
        }
    }
    ok
}

/// Reads every element of the payload views, so their iterators run inside the window.
fn walk(request: &Request<'_>, response: &Response<'_>) {
    match request {
        Request::WriteMultipleCoils { values, .. } => {
            black_box(values.iter().filter(|&b| b).count());
        }
        Request::WriteMultipleRegisters { values, .. }
        | Request::ReadWriteMultipleRegisters { values, .. } => {
            black_box(values.iter().map(u32::from).sum::<u32>());
        }
        Request::ReadFileRecord { groups } => {
            black_box(groups.iter().map(|g| g.record_length).sum::<u16>());
        }
        Request::WriteFileRecord { records } => {
            for record in records {
                black_box(record.values.iter().map(u32::from).sum::<u32>());
            }
        }
        _ => {}
    }
    match response {
        Response::ReadCoils { values } | Response::ReadDiscreteInputs { values } => {
            black_box(values.iter().filter(|&b| b).count());
        }
        Response::ReadHoldingRegisters { values }
        | Response::ReadInputRegisters { values }
        | Response::ReadWriteMultipleRegisters { values }
        | Response::ReadFifoQueue { values } => {
            black_box(values.iter().map(u32::from).sum::<u32>());
        }
        Response::ReadFileRecord { records } => {
            for group in records {
                black_box(group.iter().map(u32::from).sum::<u32>());
            }
        }
        Response::ReadDeviceIdentification(identification) => {
            for object in identification.objects {
                black_box((object.id, object.value.len()));
            }
        }
        _ => {}
    }
}

/// Inputs every decoder must reject, to cover the error paths too.
fn rejects() -> Vec<Vec<u8>> {
    [
        "",
        "00",
        "80",
        "01 00 00 07 D1",
        "01 FF FF 00 02",
        "05 00 00 00 01",
        "0F 00 00 00 0A 01 FF",
        "10 00 00 00 02 03 00 01 00",
        "14 07 05 00 01 00 00 00 01",
        "15 09 06 00 00 00 00 00 01 00 00",
        "17 00 00 00 7E 00 00 00 01 02 00 00",
        "2B 0E 05 00",
        "2B 0C",
        "08 00 05 00 00",
        "08 00 0B 12 34",
        "03 00 00 00 01 00",
    ]
    .iter()
    .map(|text| hex(text))
    .collect()
}

#[test]
fn decoding_and_encoding_never_allocate() {
    let exchanges = exchanges();
    let rejects = rejects();
    let wrong_response = hex("04 02 00 0A");
    let mut out = [0u8; 256];
    let mut ok = 0;
    let mut rejected = 0;

    let allocations = allocations_during(|| {
        ok = exercise(&exchanges, &mut out);
        for pdu in &rejects {
            if let Err(err) = Request::decode(black_box(pdu)) {
                black_box(err.exception_code());
                rejected += 1;
            }
        }
        let request = Request::ReadHoldingRegisters {
            address: 0,
            quantity: 1,
        };
        if Response::decode(black_box(&wrong_response), &request).is_err() {
            rejected += 1;
        }
    });

    // The window did real work: every exchange decoded and re-encoded byte for byte, and
    // every bad input was refused.
    assert_eq!(
        ok,
        2 * exchanges.len(),
        "some exchanges failed to round-trip"
    );
    assert_eq!(rejected, rejects.len() + 1, "some bad inputs were accepted");
    assert_eq!(
        allocations, 0,
        "the PDU codec allocated {allocations} times"
    );
}

#[test]
fn the_counter_sees_allocations() {
    // Guards the test above against a counter that never counts.
    let allocations = allocations_during(|| {
        black_box(vec![1u8, 2, 3]);
        black_box(String::from("x").repeat(100));
    });
    assert!(allocations >= 2, "counted {allocations}");
    // Outside the window nothing is counted.
    let before = ALLOCATIONS.with(Cell::get);
    black_box(vec![0u8; 64]);
    assert_eq!(ALLOCATIONS.with(Cell::get), before);
    // Another thread's allocations are not this thread's: a child allocating while this thread
    // counts adds nothing here beyond the spawn itself, which happens before the window.
    let handle = std::thread::spawn(|| {
        std::thread::park();
        (0u8..100)
            .map(|i| black_box(vec![i; 32]).len())
            .sum::<usize>()
    });
    let allocations = allocations_during(|| {
        handle.thread().unpark();
        while !handle.is_finished() {
            std::thread::yield_now();
        }
    });
    assert_eq!(handle.join().unwrap(), 3200);
    assert_eq!(allocations, 0, "another thread's allocations were counted");
}
