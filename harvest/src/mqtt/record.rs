//! One device poll as it is kept in the store-and-forward queue: the points chosen for
//! publishing, with their per-point sequence numbers fixed at queueing time so a resend after
//! a reconnect carries the same numbers (consumers de-duplicate on them).
//!
//! The encoding is a small length-prefixed binary form, not JSON: a record is written once
//! per poll and read back at least once, and it must round-trip every [`PointValue`] type
//! exactly (a `u64` above 2⁵³ does not survive JSON numbers).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use modbus_stack::point::PointValue;

/// One point's reading in a queued poll.
#[derive(Debug, Clone, PartialEq)]
pub struct QueuedPoint {
    /// The point's name.
    pub name: String,
    /// Its sample number in this run of the service (from 1, no gaps).
    pub sequence: u64,
    /// The value, or why there is none.
    pub reading: Result<PointValue, String>,
}

/// One device's poll, as queued.
#[derive(Debug, Clone, PartialEq)]
pub struct QueuedPoll {
    /// The device's name.
    pub device: String,
    /// The service run's number (kept in the queue directory, one more at each start):
    /// sequence numbers restart with it.
    pub run: u64,
    /// When the poll's readings were taken.
    pub timestamp: SystemTime,
    /// The points to publish, in the device's point order.
    pub points: Vec<QueuedPoint>,
}

/// A queued record that does not decode: the queue's checksum passed, so it was written by
/// another version of the service.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a queued record does not decode ({0}); it was written by another version")]
pub struct RecordError(&'static str);

impl QueuedPoll {
    /// The record's bytes.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(32 + self.points.len() * 24);
        put_str(&mut out, &self.device);
        out.extend_from_slice(&self.run.to_le_bytes());
        let micros = self
            .timestamp
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
        out.extend_from_slice(&micros.to_le_bytes());
        out.extend_from_slice(
            &u32::try_from(self.points.len())
                .unwrap_or(u32::MAX)
                .to_le_bytes(),
        );
        for point in &self.points {
            put_str(&mut out, &point.name);
            out.extend_from_slice(&point.sequence.to_le_bytes());
            match &point.reading {
                Err(reason) => {
                    out.push(0);
                    put_str(&mut out, reason);
                }
                Ok(PointValue::Bool(on)) => out.extend_from_slice(&[1, u8::from(*on)]),
                Ok(PointValue::U16(v)) => put(&mut out, 2, &v.to_le_bytes()),
                Ok(PointValue::I16(v)) => put(&mut out, 3, &v.to_le_bytes()),
                Ok(PointValue::U32(v)) => put(&mut out, 4, &v.to_le_bytes()),
                Ok(PointValue::I32(v)) => put(&mut out, 5, &v.to_le_bytes()),
                Ok(PointValue::U64(v)) => put(&mut out, 6, &v.to_le_bytes()),
                Ok(PointValue::I64(v)) => put(&mut out, 7, &v.to_le_bytes()),
                Ok(PointValue::F32(v)) => put(&mut out, 8, &v.to_le_bytes()),
                Ok(PointValue::F64(v)) => put(&mut out, 9, &v.to_le_bytes()),
                Ok(PointValue::Text(text)) => {
                    out.push(10);
                    put_str(&mut out, text);
                }
            }
        }
        out
    }

    /// Reads a record back.
    ///
    /// # Errors
    /// [`RecordError`] for bytes [`encode`](Self::encode) did not write.
    pub fn decode(bytes: &[u8]) -> Result<Self, RecordError> {
        let mut r = Reader(bytes);
        let device = r.string()?;
        let run = u64::from_le_bytes(r.array()?);
        let micros = u64::from_le_bytes(r.array()?);
        let count = u32::from_le_bytes(r.array()?) as usize;
        // Each point takes at least 11 bytes, so a corrupt count cannot over-allocate.
        if count > r.0.len() / 11 {
            return Err(RecordError("point count larger than the record"));
        }
        let mut points = Vec::with_capacity(count);
        for _ in 0..count {
            let name = r.string()?;
            let sequence = u64::from_le_bytes(r.array()?);
            let [tag] = r.array()?;
            let reading = match tag {
                0 => Err(r.string()?),
                1 => Ok(PointValue::Bool(r.array::<1>()? != [0])),
                2 => Ok(PointValue::U16(u16::from_le_bytes(r.array()?))),
                3 => Ok(PointValue::I16(i16::from_le_bytes(r.array()?))),
                4 => Ok(PointValue::U32(u32::from_le_bytes(r.array()?))),
                5 => Ok(PointValue::I32(i32::from_le_bytes(r.array()?))),
                6 => Ok(PointValue::U64(u64::from_le_bytes(r.array()?))),
                7 => Ok(PointValue::I64(i64::from_le_bytes(r.array()?))),
                8 => Ok(PointValue::F32(f32::from_le_bytes(r.array()?))),
                9 => Ok(PointValue::F64(f64::from_le_bytes(r.array()?))),
                10 => Ok(PointValue::Text(r.string()?)),
                _ => return Err(RecordError("unknown value type")),
            };
            points.push(QueuedPoint {
                name,
                sequence,
                reading,
            });
        }
        if !r.0.is_empty() {
            return Err(RecordError("bytes after the last point"));
        }
        // Checked: `SystemTime + Duration` panics past what the platform represents.
        let timestamp = UNIX_EPOCH
            .checked_add(Duration::from_micros(micros))
            .ok_or(RecordError("a timestamp out of range"))?;
        Ok(Self {
            device,
            run,
            timestamp,
            points,
        })
    }
}

fn put(out: &mut Vec<u8>, tag: u8, bytes: &[u8]) {
    out.push(tag);
    out.extend_from_slice(bytes);
}

fn put_str(out: &mut Vec<u8>, text: &str) {
    // Names and reasons are short; a longer one is cut at a character boundary.
    let mut end = text.len().min(usize::from(u16::MAX));
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    out.extend_from_slice(&u16::try_from(end).unwrap_or(u16::MAX).to_le_bytes());
    out.extend_from_slice(&text.as_bytes()[..end]);
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn array<const N: usize>(&mut self) -> Result<[u8; N], RecordError> {
        let (head, rest) = self
            .0
            .split_first_chunk::<N>()
            .ok_or(RecordError("record ends early"))?;
        self.0 = rest;
        Ok(*head)
    }

    fn string(&mut self) -> Result<String, RecordError> {
        let len = usize::from(u16::from_le_bytes(self.array()?));
        if len > self.0.len() {
            return Err(RecordError("record ends inside a string"));
        }
        let (text, rest) = self.0.split_at(len);
        self.0 = rest;
        String::from_utf8(text.to_vec()).map_err(|_| RecordError("a string is not UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn poll() -> QueuedPoll {
        let values = [
            PointValue::Bool(true),
            PointValue::U16(65535),
            PointValue::I16(-2),
            PointValue::U32(70_000),
            PointValue::I32(-70_000),
            PointValue::U64(u64::MAX),
            PointValue::I64(i64::MIN),
            PointValue::F32(-1.5),
            PointValue::F64(21.25),
            PointValue::Text("pump ü".into()),
        ];
        let mut points: Vec<QueuedPoint> = values
            .into_iter()
            .enumerate()
            .map(|(i, value)| QueuedPoint {
                name: format!("p{i}"),
                sequence: 7 + i as u64,
                reading: Ok(value),
            })
            .collect();
        points.push(QueuedPoint {
            name: "broken".into(),
            sequence: 1,
            reading: Err("exception 02".into()),
        });
        QueuedPoll {
            device: "plc".into(),
            run: 3,
            timestamp: UNIX_EPOCH + Duration::from_micros(1_765_000_000_123_456),
            points,
        }
    }

    #[test]
    fn every_value_type_round_trips_exactly() {
        let poll = poll();
        assert_eq!(QueuedPoll::decode(&poll.encode()).unwrap(), poll);
    }

    #[test]
    fn every_truncation_and_trailing_byte_is_refused() {
        let bytes = poll().encode();
        for len in 0..bytes.len() {
            assert!(
                QueuedPoll::decode(&bytes[..len]).is_err(),
                "prefix of {len}"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(QueuedPoll::decode(&longer).is_err());
    }

    #[test]
    fn a_corrupt_count_does_not_allocate() {
        let mut bytes = poll().encode();
        // The count follows the device name (2 + 3 bytes), run and timestamp.
        bytes[21..25].copy_from_slice(&u32::MAX.to_le_bytes());
        // Refused by the count check itself, before a reservation for 4 billion points.
        let refused = QueuedPoll::decode(&bytes).expect_err("a corrupt count");
        assert!(refused.to_string().contains("point count"), "{refused}");
    }
}
