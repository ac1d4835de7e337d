//! Fixed-length strings packed two bytes per register.
//!
//! Devices store names, serial numbers and firmware versions as a fixed run of registers, two
//! characters each, usually first character in the high byte, sometimes swapped, padded with
//! NULs or spaces. Decoding copies the bytes into a caller buffer and returns a borrowed slice
//! of it, so no allocation is needed; trimming is an explicit [`Trim`] choice because a space
//! can be content as well as padding.

use super::{ByteOrder, RegisterSource, ValueError, read_words};

/// What to strip from the end of a decoded string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Trim {
    /// Keep every byte.
    Keep,
    /// Strip trailing NUL bytes.
    #[default]
    TrailingNul,
    /// Strip trailing NUL bytes and spaces, in any mix.
    TrailingNulAndSpace,
    /// C-string rule: end at the first NUL, whatever follows.
    FirstNul,
}

/// Layout of a fixed-length string: how many registers, which byte first, how to trim and pad.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StringFormat {
    /// Registers the string occupies (two bytes each).
    pub registers: u16,
    /// Which byte of each register holds the earlier character: `HighByteFirst` is the usual
    /// layout ("AB" in register 0x4142).
    pub byte_order: ByteOrder,
    /// What decoding strips from the end.
    pub trim: Trim,
    /// The byte encoding fills unused space with (usually `0` or `b' '`).
    pub pad: u8,
}

impl StringFormat {
    /// `registers` registers, first character in the high byte, NUL padded, trailing NULs
    /// trimmed.
    #[must_use]
    pub const fn new(registers: u16) -> Self {
        Self {
            registers,
            byte_order: ByteOrder::HighByteFirst,
            trim: Trim::TrailingNul,
            pad: 0,
        }
    }

    /// The same format with another byte order.
    #[must_use]
    pub const fn with_byte_order(self, byte_order: ByteOrder) -> Self {
        Self { byte_order, ..self }
    }

    /// The same format with another trimming rule.
    #[must_use]
    pub const fn with_trim(self, trim: Trim) -> Self {
        Self { trim, ..self }
    }

    /// The same format with another padding byte.
    #[must_use]
    pub const fn with_pad(self, pad: u8) -> Self {
        Self { pad, ..self }
    }

    /// Bytes the string holds: two per register.
    #[must_use]
    pub const fn byte_len(self) -> usize {
        self.registers as usize * 2
    }
}

/// Decodes a string from the first registers of `registers` into `out`; see [`decode_bytes_at`].
///
/// # Errors
/// As [`decode_bytes_at`].
pub fn decode_bytes<'b, R: RegisterSource + ?Sized>(
    registers: &R,
    format: StringFormat,
    out: &'b mut [u8],
) -> Result<&'b [u8], ValueError> {
    decode_bytes_at(registers, 0, format, out)
}

/// Decodes the string starting at register `index` into `out` and returns the trimmed bytes.
///
/// `out` needs room for the untrimmed string (`format.byte_len()` bytes). Use this for
/// non-UTF-8 text (Latin-1 device names); [`decode_str_at`] checks UTF-8.
///
/// ```
/// use modbus_stack::value::{self, StringFormat, Trim};
/// let regs = [0x4142, 0x4300, 0x0000];
/// let mut buf = [0u8; 6];
/// assert_eq!(value::decode_bytes_at(&regs, 0, StringFormat::new(3), &mut buf), Ok(&b"ABC"[..]));
/// ```
///
/// # Errors
/// [`ValueError::NotEnoughRegisters`] when the source is short, [`ValueError::BufferTooSmall`]
/// when `out` is.
pub fn decode_bytes_at<'b, R: RegisterSource + ?Sized>(
    registers: &R,
    index: usize,
    format: StringFormat,
    out: &'b mut [u8],
) -> Result<&'b [u8], ValueError> {
    let required = format.byte_len();
    let available = out.len();
    let out = out.get_mut(..required).ok_or(ValueError::BufferTooSmall {
        required,
        available,
    })?;
    let available_registers = registers.register_count().saturating_sub(index);
    if available_registers < usize::from(format.registers) {
        return Err(ValueError::NotEnoughRegisters {
            needed: usize::from(format.registers),
            available: available_registers,
        });
    }
    for (offset, pair) in out.chunks_exact_mut(2).enumerate() {
        // Read one register at a time straight into the output: no scratch buffer needed.
        let mut word = [0u16];
        read_words(registers, index.saturating_add(offset), &mut word)?;
        let [register] = word;
        let bytes = match format.byte_order {
            ByteOrder::HighByteFirst => register.to_be_bytes(),
            ByteOrder::LowByteFirst => register.to_le_bytes(),
        };
        pair.copy_from_slice(&bytes);
    }
    let len = trimmed_len(out, format.trim);
    Ok(out.get(..len).unwrap_or_default())
}

fn trimmed_len(bytes: &[u8], trim: Trim) -> usize {
    match trim {
        Trim::Keep => bytes.len(),
        Trim::TrailingNul => bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1),
        Trim::TrailingNulAndSpace => bytes
            .iter()
            .rposition(|&b| b != 0 && b != b' ')
            .map_or(0, |i| i + 1),
        Trim::FirstNul => bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len()),
    }
}

/// Decodes a UTF-8 string from the first registers of `registers`; see [`decode_str_at`].
///
/// # Errors
/// As [`decode_str_at`].
pub fn decode_str<'b, R: RegisterSource + ?Sized>(
    registers: &R,
    format: StringFormat,
    out: &'b mut [u8],
) -> Result<&'b str, ValueError> {
    decode_str_at(registers, 0, format, out)
}

/// Decodes the string starting at register `index` into `out` and returns it as `&str`.
///
/// ```
/// use modbus_stack::value::{self, ByteOrder, StringFormat, Trim};
/// // "Pump 7" with swapped bytes, space padded.
/// let regs = [0x7550, 0x706D, 0x3720, 0x2020];
/// let format = StringFormat::new(4)
///     .with_byte_order(ByteOrder::LowByteFirst)
///     .with_trim(Trim::TrailingNulAndSpace);
/// let mut buf = [0u8; 8];
/// assert_eq!(value::decode_str(&regs, format, &mut buf), Ok("Pump 7"));
/// ```
///
/// # Errors
/// As [`decode_bytes_at`], plus [`ValueError::InvalidUtf8`].
pub fn decode_str_at<'b, R: RegisterSource + ?Sized>(
    registers: &R,
    index: usize,
    format: StringFormat,
    out: &'b mut [u8],
) -> Result<&'b str, ValueError> {
    let bytes = decode_bytes_at(registers, index, format, out)?;
    core::str::from_utf8(bytes).map_err(|error| ValueError::InvalidUtf8 {
        valid_up_to: error.valid_up_to(),
    })
}

/// Encodes `text` into the first `format.registers` registers of `out`, padded with
/// `format.pad`; returns the number of registers written.
///
/// ```
/// use modbus_stack::value::{self, StringFormat};
/// let mut out = [0xFFFF; 3];
/// assert_eq!(value::encode_bytes(b"abc", StringFormat::new(3).with_pad(b' '), &mut out), Ok(3));
/// assert_eq!(out, [0x6162, 0x6320, 0x2020]);
/// ```
///
/// # Errors
/// [`ValueError::StringTooLong`] when `text` has more bytes than the registers hold,
/// [`ValueError::NotEnoughRegisters`] when `out` is shorter than `format.registers`. Nothing is
/// written on error.
pub fn encode_bytes(
    text: &[u8],
    format: StringFormat,
    out: &mut [u16],
) -> Result<usize, ValueError> {
    let capacity = format.byte_len();
    if text.len() > capacity {
        return Err(ValueError::StringTooLong {
            len: text.len(),
            capacity,
        });
    }
    let needed = usize::from(format.registers);
    let available = out.len();
    let out = out
        .get_mut(..needed)
        .ok_or(ValueError::NotEnoughRegisters { needed, available })?;
    let mut bytes = text.iter().copied().chain(core::iter::repeat(format.pad));
    for register in out {
        let pair = [
            bytes.next().unwrap_or(format.pad),
            bytes.next().unwrap_or(format.pad),
        ];
        *register = match format.byte_order {
            ByteOrder::HighByteFirst => u16::from_be_bytes(pair),
            ByteOrder::LowByteFirst => u16::from_le_bytes(pair),
        };
    }
    Ok(needed)
}

/// Encodes UTF-8 `text`; see [`encode_bytes`].
///
/// # Errors
/// As [`encode_bytes`].
pub fn encode_str(text: &str, format: StringFormat, out: &mut [u16]) -> Result<usize, ValueError> {
    encode_bytes(text.as_bytes(), format, out)
}
