//! Modbus RTU and ASCII on a serial port (feature `serial`, over the `serialport` crate).
//!
//! The transport adds what only the line itself knows: the character format (baud, data bits,
//! parity, stop bits), the t3.5 of silence an RTU sender must leave before a frame
//! (`modbus-reference.md` §8.5), measured from when the port has *actually finished*
//! transmitting (the last byte written is flushed out of the driver's buffer first, so the
//! silence is not counted while bytes are still leaving), and clearing stale input before a
//! request. The turnaround delay after a broadcast is the client session's business.

use std::borrow::ToOwned;
use std::boxed::Box;
use std::io::{self, Read, Write};
use std::string::String;
use std::time::Duration;

use serialport::{ClearBuffer, SerialPort};

use super::{Transport, remaining};
use crate::frame::Framing;
use crate::frame::rtu::{Parity, StopBits, Timing};
use crate::time::Instant;

/// Shortest read timeout handed to the port.
const MIN_READ_TIMEOUT: Duration = Duration::from_millis(1);

/// Character format and timing of a serial line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Baud rate.
    pub baud_rate: u32,
    /// Data bits per character: 8 for RTU, 7 (or 8) for ASCII.
    pub data_bits: u8,
    /// Parity; the specification's default is even.
    pub parity: Parity,
    /// Stop bits; two when there is no parity, by the specification.
    pub stop_bits: StopBits,
    /// Extra allowance added to t1.5 and t3.5 for USB adapters that deliver bytes in bursts
    /// (see [`Timing::with_burst_tolerance`]).
    pub burst_tolerance: Duration,
}

impl Config {
    /// 8 data bits, even parity, one stop bit (8E1, the specification's default) at `baud_rate`.
    ///
    /// We follow the specification, since a device that doesn't say otherwise is 8E1; pymodbus
    /// defaults to 8N1, and many devices ship configured that way: set `parity` to
    /// [`Parity::None`] and keep `stop_bits` at one for them.
    #[must_use]
    pub const fn new(baud_rate: u32) -> Self {
        Self {
            baud_rate,
            data_bits: 8,
            parity: Parity::Even,
            stop_bits: StopBits::One,
            burst_tolerance: Duration::ZERO,
        }
    }

    /// The RTU line timing of this character format.
    #[must_use]
    pub fn timing(&self) -> Timing {
        Timing::for_line(self.baud_rate, self.parity, self.stop_bits)
            .with_burst_tolerance(self.burst_tolerance)
    }

    fn data_bits(&self) -> io::Result<serialport::DataBits> {
        match self.data_bits {
            5 => Ok(serialport::DataBits::Five),
            6 => Ok(serialport::DataBits::Six),
            7 => Ok(serialport::DataBits::Seven),
            8 => Ok(serialport::DataBits::Eight),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "data bits must be 5 to 8",
            )),
        }
    }

    /// Opens the port at `path` with this character format, no flow control, and a read
    /// timeout of `timeout`.
    pub(crate) fn open(&self, path: &str, timeout: Duration) -> io::Result<Box<dyn SerialPort>> {
        let mut port = serialport::new(path, self.baud_rate)
            .data_bits(self.data_bits()?)
            .timeout(timeout)
            .open()?;
        self.apply(port.as_mut())?;
        Ok(port)
    }

    /// Applies the character format to `port`.
    fn apply(&self, port: &mut dyn SerialPort) -> io::Result<()> {
        port.set_baud_rate(self.baud_rate)?;
        port.set_data_bits(self.data_bits()?)?;
        port.set_parity(match self.parity {
            Parity::None => serialport::Parity::None,
            Parity::Even => serialport::Parity::Even,
            Parity::Odd => serialport::Parity::Odd,
        })?;
        port.set_stop_bits(match self.stop_bits {
            StopBits::One => serialport::StopBits::One,
            StopBits::Two => serialport::StopBits::Two,
        })?;
        port.set_flow_control(serialport::FlowControl::None)?;
        Ok(())
    }
}

/// A serial port carrying RTU ([`Framing::Rtu`]) or ASCII ([`Framing::Ascii`]).
pub struct SerialTransport {
    port: Box<dyn SerialPort>,
    path: Option<String>,
    config: Config,
    framing: Framing,
    /// When the line last carried a character (sent and drained, or received).
    last_activity: Option<Instant>,
}

impl core::fmt::Debug for SerialTransport {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SerialTransport")
            .field("path", &self.path)
            .field("config", &self.config)
            .field("framing", &self.framing)
            .finish_non_exhaustive()
    }
}

impl SerialTransport {
    /// Opens the port at `path` for `framing` (RTU or ASCII).
    ///
    /// # Errors
    /// The port cannot be opened or configured, or `framing` is a TCP framing.
    pub fn open(path: &str, config: Config, framing: Framing) -> io::Result<Self> {
        let port = open_port(path, &config)?;
        let mut transport = Self::from_port(port, config, framing)?;
        transport.path = Some(path.to_owned());
        Ok(transport)
    }

    /// Uses a port opened by the caller (a pseudo-terminal, a port with special settings); it is
    /// configured with `config`. Such a transport cannot reopen the port: `reconnect` only
    /// clears its buffers.
    ///
    /// # Errors
    /// The port cannot be configured, or `framing` is a TCP framing.
    pub fn from_port(
        mut port: Box<dyn SerialPort>,
        config: Config,
        framing: Framing,
    ) -> io::Result<Self> {
        if !framing.is_serial() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a serial port carries RTU or ASCII framing",
            ));
        }
        config.apply(port.as_mut())?;
        Ok(Self {
            port,
            path: None,
            config,
            framing,
            last_activity: None,
        })
    }

    /// Sleeps until the line has been silent for t3.5 (RTU only; ASCII frames are delimited by
    /// characters).
    fn wait_for_silence(&self) {
        if self.framing != Framing::Rtu {
            return;
        }
        if let Some(last) = self.last_activity {
            let quiet_at = last + self.config.timing().t3_5();
            let now = Instant::now();
            if now < quiet_at {
                std::thread::sleep(quiet_at - now);
            }
        }
    }
}

fn open_port(path: &str, config: &Config) -> io::Result<Box<dyn SerialPort>> {
    config.open(path, Duration::from_millis(100))
}

impl Transport for SerialTransport {
    fn framing(&self) -> Framing {
        self.framing
    }

    fn send(&mut self, adu: &[u8]) -> io::Result<()> {
        self.wait_for_silence();
        self.port.write_all(adu)?;
        // Drain the output (tcdrain): the next t3.5 counts from the last bit on the wire, not
        // from when the bytes were handed to the driver.
        self.port.flush()?;
        self.last_activity = Some(Instant::now());
        Ok(())
    }

    fn receive(&mut self, buf: &mut [u8], deadline: Instant) -> io::Result<usize> {
        let Some(timeout) = remaining(deadline, MIN_READ_TIMEOUT) else {
            return Ok(0);
        };
        self.port.set_timeout(timeout)?;
        match self.port.read(buf) {
            Ok(n) => {
                if n > 0 {
                    self.last_activity = Some(Instant::now());
                }
                Ok(n)
            }
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::TimedOut
                        | io::ErrorKind::WouldBlock
                        | io::ErrorKind::Interrupted
                ) =>
            {
                Ok(0)
            }
            Err(error) => Err(error),
        }
    }

    fn clear_input(&mut self) -> io::Result<()> {
        self.port.clear(ClearBuffer::Input).map_err(io::Error::from)
    }

    /// Waits until the last frame has left the port; the port itself stays open until the
    /// transport is dropped (a serial line has no close to signal).
    fn close(&mut self) -> io::Result<()> {
        self.port.flush()
    }

    fn reconnect(&mut self) -> io::Result<()> {
        if let Some(path) = &self.path {
            self.port = open_port(path, &self.config)?;
            self.config.apply(self.port.as_mut())?;
        }
        self.port.clear(ClearBuffer::All).map_err(io::Error::from)
    }
}
