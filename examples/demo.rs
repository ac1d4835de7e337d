//! The README demo: the simulator and a client, talking Modbus TCP through the real network
//! stack on 127.0.0.1, with no hardware.
//!
//! It starts the simulator in-process on an ephemeral port, then a client reads and writes every
//! table, a 32-bit float, device identification, an exception and a pipelined batch, printing
//! what went over the wire in each direction.
//!
//! Run with `cargo run --example demo`.

use std::error::Error;

use modbus_stack::client::{Client, Error as ClientError};
use modbus_stack::pdu::{ReadDeviceIdCode, Request, Response, device_id};
use modbus_stack::server::tcp::{Config, TcpServer};
use modbus_stack::sim;
use modbus_stack::transport::tcp;
use modbus_stack::value::{self, Order};

/// Unit id the demo talks to; the simulator answers every unit id on TCP.
const UNIT: u8 = 1;

fn main() -> Result<(), Box<dyn Error>> {
    let server = TcpServer::bind("127.0.0.1:0", Config::tcp())?.spawn(sim::unit_map())?;
    let address = server.local_addr();
    println!("simulator listening on {address} (Modbus TCP; 10000 items per table)\n");

    let mut client = Client::tcp(address, tcp::Config::default())?;

    let inputs = client.read_input_registers(UNIT, 0, 8)?;
    println!("read input registers 0..8        -> {inputs:?}");
    let discrete = client.read_discrete_inputs(UNIT, 0, 10)?;
    println!("read discrete inputs 0..10       -> {}", bits(&discrete));

    client.write_multiple_registers(UNIT, 100, &[0x1234, 0xBEEF, 42])?;
    println!("write holding registers 100..103 <- [0x1234, 0xBEEF, 42]");
    client.write_single_register(UNIT, 103, 0x12)?;
    println!("write holding register 103       <- 0x0012");
    let holding = client.read_holding_registers(UNIT, 100, 4)?;
    println!("read holding registers 100..104  -> {holding:04X?}");
    check(
        holding == [0x1234, 0xBEEF, 42, 0x12],
        "holding registers read back",
    )?;

    client.write_multiple_coils(UNIT, 10, &[true, false, true, true])?;
    client.write_single_coil(UNIT, 14, true)?;
    println!("write coils 10..15               <- 1011 then 1");
    let coils = client.read_coils(UNIT, 10, 5)?;
    println!("read coils 10..15                -> {}", bits(&coils));
    check(coils == [true, false, true, true, true], "coils read back")?;

    let mut words = [0u16; 2];
    value::encode(core::f32::consts::PI, Order::Cdab, &mut words)?;
    client.write_multiple_registers(UNIT, 200, &words)?;
    let raw = client.read_holding_registers(UNIT, 200, 2)?;
    let pi: f32 = value::decode(&raw[..], Order::Cdab)?;
    println!("write f32 pi (word-swapped) at 200 <- {words:04X?}, read back -> {pi}");
    check(
        pi.to_bits() == core::f32::consts::PI.to_bits(),
        "float read back",
    )?;

    client.mask_write_register(UNIT, 103, 0x00F2, 0x0025)?;
    let masked = client.read_holding_registers(UNIT, 103, 1)?;
    println!("mask write 103 (and F2, or 25)   -> {masked:04X?}");
    check(
        masked == [0x17],
        "mask write result (spec example: 0x12 -> 0x17)",
    )?;

    let identity = client.read_device_identification(UNIT, ReadDeviceIdCode::BasicStream, 0)?;
    let text = |id| String::from_utf8_lossy(identity.get(id).unwrap_or_default()).into_owned();
    println!(
        "device identification            -> {} / {} / {}",
        text(device_id::VENDOR_NAME),
        text(device_id::PRODUCT_CODE),
        text(device_id::MAJOR_MINOR_REVISION)
    );

    match client.read_holding_registers(UNIT, 9999, 2) {
        Err(ClientError::Exception(exception)) => {
            println!("read holding registers 9999..10001 -> {exception}");
        }
        other => return Err(format!("expected an exception, got {other:?}").into()),
    }

    let batch: Vec<Request<'static>> = (0..4)
        .map(|i| Request::ReadInputRegisters {
            address: i * 1000,
            quantity: 2,
        })
        .collect();
    let results = client.pipeline(UNIT, &batch, |_, response| match response {
        Response::ReadInputRegisters { values } => Ok(Some(values.iter().collect::<Vec<_>>())),
        _ => Ok(None),
    })?;
    let values: Vec<Option<Vec<u16>>> = results.into_iter().collect::<Result<_, _>>()?;
    let values: Vec<Vec<u16>> = values
        .into_iter()
        .collect::<Option<_>>()
        .ok_or("unexpected response in the batch")?;
    println!("4 pipelined reads (one round trip) -> {values:?}");

    server.shutdown()?;
    println!("\nsimulator stopped; every value read back matched what was written");
    Ok(())
}

fn check(ok: bool, what: &str) -> Result<(), Box<dyn Error>> {
    if ok {
        Ok(())
    } else {
        Err(format!("mismatch: {what}").into())
    }
}

fn bits(values: &[bool]) -> String {
    values
        .iter()
        .map(|&on| if on { '1' } else { '0' })
        .collect()
}
