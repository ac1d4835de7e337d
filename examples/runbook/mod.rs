//! The client runbook shared by `tcp_client` and `rtu_client`: read holding registers, input
//! registers and coils, write one register and one coil and read them back, printing every
//! result and explaining every failure in terms of what to check.

use std::io;

use modbus_stack::client::{Client, Error};
use modbus_stack::pdu::ExceptionCode;
use modbus_stack::transport::Transport;

/// What to read and write; the same defaults for both examples.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan {
    /// Unit id (slave address) of the device.
    pub(crate) unit: u8,
    /// First address read in every table.
    pub(crate) read_address: u16,
    /// Registers and coils read from each table.
    pub(crate) count: u16,
    /// Holding register written, and its new value; `None` with `--read-only`.
    pub(crate) write_register: Option<(u16, u16)>,
    /// Coil written, and its new state; `None` with `--read-only`.
    pub(crate) write_coil: Option<(u16, bool)>,
}

/// Options shared by both examples, after their positional arguments.
pub(crate) const OPTIONS: &str =
    "  --address N            first address read in each table (default 0)
  --count N              registers / coils read from each table (default 10)
  --write-register A=V   holding register A is set to V (default 100=4660, i.e. 0x1234)
  --write-coil A=on|off  coil A is switched (default 100=on)
  --read-only            read, never write (use this on a live plant)
  --help                 this text";

impl Plan {
    /// The defaults for `unit`.
    pub(crate) fn new(unit: u8) -> Self {
        Self {
            unit,
            read_address: 0,
            count: 10,
            write_register: Some((100, 0x1234)),
            write_coil: Some((100, true)),
        }
    }

    /// Applies one option (`flag` and, for those that take one, the next argument).
    pub(crate) fn option(
        &mut self,
        flag: &str,
        value: &mut impl Iterator<Item = String>,
    ) -> Result<(), String> {
        let mut value = || value.next().ok_or(format!("{flag} needs a value"));
        match flag {
            "--address" => self.read_address = number(flag, &value()?)?,
            "--count" => self.count = number(flag, &value()?)?,
            "--write-register" => {
                let text = value()?;
                let (address, register) = text
                    .split_once('=')
                    .ok_or(format!("{flag} {text:?}: use ADDRESS=VALUE"))?;
                self.write_register = Some((number(flag, address)?, number(flag, register)?));
            }
            "--write-coil" => {
                let text = value()?;
                let (address, state) = text
                    .split_once('=')
                    .ok_or(format!("{flag} {text:?}: use ADDRESS=on or ADDRESS=off"))?;
                let state = match state {
                    "on" | "1" | "true" => true,
                    "off" | "0" | "false" => false,
                    other => return Err(format!("{flag}: {other:?} is not on or off")),
                };
                self.write_coil = Some((number(flag, address)?, state));
            }
            "--read-only" => {
                self.write_register = None;
                self.write_coil = None;
            }
            other => return Err(format!("unknown option {other:?}")),
        }
        Ok(())
    }
}

/// A decimal or `0x` hexadecimal number.
pub(crate) fn number<T: TryFrom<u32>>(what: &str, text: &str) -> Result<T, String> {
    let parsed = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16),
        None => text.parse(),
    };
    parsed
        .ok()
        .and_then(|value| T::try_from(value).ok())
        .ok_or(format!("{what}: {text:?} is not a number in range"))
}

/// Runs the plan; returns how many steps failed (each failure is printed with a hint).
pub(crate) fn run<T: Transport>(client: &mut Client<T>, plan: &Plan, medium: &str) -> usize {
    let unit = plan.unit;
    let (from, count) = (plan.read_address, plan.count);
    let to = u32::from(from) + u32::from(count);
    let mut failures = 0;
    let mut report = |what: &str, result: Result<String, Error>| match result {
        Ok(text) => println!("{what:<34} -> {text}"),
        Err(error) => {
            failures += 1;
            println!("{what:<34} !! {error}");
            println!("{:<34}    hint: {}", "", hint(&error, medium));
        }
    };

    report(
        &format!("read holding registers {from}..{to}"),
        client
            .read_holding_registers(unit, from, count)
            .map(|values| format!("{values:?}")),
    );
    report(
        &format!("read input registers {from}..{to}"),
        client
            .read_input_registers(unit, from, count)
            .map(|values| format!("{values:?}")),
    );
    report(
        &format!("read coils {from}..{to}"),
        client
            .read_coils(unit, from, count)
            .map(|values| bits(&values)),
    );

    if let Some((address, value)) = plan.write_register {
        report(
            &format!("write holding register {address}"),
            client
                .write_single_register(unit, address, value)
                .map(|()| format!("{value} (0x{value:04X})")),
        );
        report(
            &format!("read back holding register {address}"),
            client
                .read_holding_registers(unit, address, 1)
                .and_then(|values| check(&values, &[value])),
        );
    }
    if let Some((address, state)) = plan.write_coil {
        report(
            &format!("write coil {address}"),
            client
                .write_single_coil(unit, address, state)
                .map(|()| on_off(state).to_owned()),
        );
        report(
            &format!("read back coil {address}"),
            client
                .read_coils(unit, address, 1)
                .and_then(|values| check(&values, &[state])),
        );
    }
    failures
}

/// `values` formatted, or an error when they differ from `expected`.
fn check<V: PartialEq + std::fmt::Debug>(values: &[V], expected: &[V]) -> Result<String, Error> {
    if values == expected {
        Ok(format!("{values:?} (as written)"))
    } else {
        Err(Error::Io(io::Error::other(format!(
            "read back {values:?}, wrote {expected:?}: another master, or the device \
             rejects or transforms the value"
        ))))
    }
}

/// What to check for `error`.
fn hint(error: &Error, medium: &str) -> String {
    match error {
        Error::Exception(exception) => match exception.code {
            ExceptionCode::IllegalFunction => {
                "the device does not implement this function code".to_owned()
            }
            ExceptionCode::IllegalDataAddress => {
                "no such address on this device (see its register map; try --address, \
                 --count, --write-register, --write-coil, or --read-only)"
                    .to_owned()
            }
            ExceptionCode::IllegalDataValue => {
                "the device refused the value or quantity (try a smaller --count)".to_owned()
            }
            ExceptionCode::GatewayPathUnavailable
            | ExceptionCode::GatewayTargetDeviceFailedToRespond => {
                "a gateway answered: check the unit id behind it".to_owned()
            }
            _ => "the device answered with an exception; see its manual".to_owned(),
        },
        Error::Timeout { .. } => {
            format!("no answer: check the unit id, and that the device is reachable ({medium})")
        }
        Error::Io(io) if io.kind() == io::ErrorKind::ConnectionRefused => {
            format!("nothing listens there; is the server running? ({medium})")
        }
        Error::Io(_) => format!("the link failed ({medium})"),
        Error::UnexpectedResponse(_) | Error::Frame(_) => {
            "the answer was malformed: another protocol on this port, or noise on the line"
                .to_owned()
        }
        _ => "see the error above".to_owned(),
    }
}

/// Coils as a string of 0 and 1, first coil first.
fn bits(values: &[bool]) -> String {
    values
        .iter()
        .map(|&on| if on { '1' } else { '0' })
        .collect()
}

fn on_off(state: bool) -> &'static str {
    if state { "on" } else { "off" }
}
