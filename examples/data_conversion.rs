//! Typed register data: π in every order and type, strings, bits and scaling, as tables.
//!
//! Run with `cargo run --example data_conversion`. Core only: works without `std` features.

use modbus_stack::value::{self, ByteOrder, Order, Rounding, Scale, StringFormat, Trim};

fn hex(words: &[u16]) -> String {
    words
        .iter()
        .map(|w| format!("{w:04X}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn main() -> Result<(), value::ValueError> {
    // The classic: two registers from a device, read as a big-endian f32.
    let registers = [0x4049, 0x0FDB];
    let pi: f32 = value::decode(&registers, Order::Abcd)?;
    println!("registers [{}] as big-endian f32 = {pi}", hex(&registers));
    let mut out = [0u16; 2];
    // Deliberately the rounded value an operator types, not `PI`: it encodes to other bits.
    #[allow(clippy::approx_constant)]
    let typed = 3.14159_f32;
    value::encode(typed, Order::Abcd, &mut out)?;
    println!("3.14159_f32 encodes back to [{}]\n", hex(&out));

    println!("order  64-bit    u16 0x1234  u32 0x12345678  f32 π       u64 0x0102..08       f64 π");
    for order in Order::ALL {
        println!(
            "{:<6} {:<9} {:<11} {:<15} {:<11} {:<20} {}",
            order.name(),
            order.name_64(),
            hex(&value::to_registers(0x1234_u16, order)),
            hex(&value::to_registers(0x1234_5678_u32, order)),
            hex(&value::to_registers(core::f32::consts::PI, order)),
            hex(&value::to_registers(0x0102_0304_0506_0708_u64, order)),
            hex(&value::to_registers(core::f64::consts::PI, order)),
        );
    }

    println!("\nsigned values (order ABCD)");
    for (name, words) in [
        ("i16 -1", value::to_registers(-1_i16, Order::Abcd).to_vec()),
        ("i32 -1", value::to_registers(-1_i32, Order::Abcd).to_vec()),
        (
            "i32::MIN",
            value::to_registers(i32::MIN, Order::Abcd).to_vec(),
        ),
        (
            "i64::MIN",
            value::to_registers(i64::MIN, Order::Abcd).to_vec(),
        ),
        (
            "u64::MAX",
            value::to_registers(u64::MAX, Order::Abcd).to_vec(),
        ),
    ] {
        println!("  {name:<9} [{}]", hex(&words));
    }

    println!("\nstrings (3 registers, \"Pump7\")");
    let mut text = [0u8; 6];
    for byte_order in [ByteOrder::HighByteFirst, ByteOrder::LowByteFirst] {
        let format = StringFormat::new(3)
            .with_byte_order(byte_order)
            .with_pad(b' ')
            .with_trim(Trim::TrailingNulAndSpace);
        let mut regs = [0u16; 3];
        value::encode_str("Pump7", format, &mut regs)?;
        let back = value::decode_str(&regs, format, &mut text)?;
        println!("  {byte_order:?}: [{}] -> {back:?}", hex(&regs));
    }

    println!(
        "\nbits of register 0x8005: {:?}",
        (0..16)
            .filter(|&b| value::decode_bit(&[0x8005], 0, b) == Ok(true))
            .collect::<Vec<_>>()
    );

    let tenths = Scale::new(0.1, -40.0).unwrap_or_default();
    let mut raw = [0u16; 1];
    value::encode_scaled::<u16>(21.5, Order::Abcd, tenths, Rounding::Nearest, &mut raw)?;
    let celsius = value::decode_scaled::<u16, _>(&raw, Order::Abcd, tenths)?;
    println!(
        "\n21.5 °C with scale 0.1, offset -40 -> raw {} -> {celsius:.1} °C",
        raw[0]
    );
    let too_hot =
        value::encode_scaled::<u16>(7000.0, Order::Abcd, tenths, Rounding::Nearest, &mut raw);
    println!("7000 °C -> {too_hot:?}");
    Ok(())
}
