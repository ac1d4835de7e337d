//! The on-disk store-and-forward queue between sampling and the MQTT publisher.
//!
//! Every sample is pushed here first, connected or not. The publisher reads on from a cursor,
//! publishes, and calls [`Queue::ack_through`] at the broker's PUBACK; after a disconnect it
//! rewinds to [`Queue::first_unacked`] and sends again, so delivery is at-least-once. The queue
//! survives restarts and crashes (a torn tail is cut at the last good record) and stays within
//! [`QueueOptions::max_bytes`] by deleting its oldest segment, counting what that drops.
//!
//! **Files.** Segments `{first seq:020}.seg`, each a run of records with consecutive sequence
//! numbers, `[len u32][crc32c u32 of seq and payload][seq u64][payload]`, little-endian; `ack`,
//! 28 bytes replaced by write-temp-and-rename: `HQAK`, version u32 (1), first unacked seq u64,
//! dropped total u64, crc32c u32 of the 24 bytes before; `lock`, the owning process id.
//!
//! **Durability.** Pushes are buffered in memory. [`Queue::flush`] hands them to the OS and
//! fsyncs as the [`FsyncPolicy`] says; [`Queue::read`] writes them out first, so nothing is
//! published that a crash of the process could lose; only power loss can lose what was not
//! fsynced. The ack position is saved lazily (by `flush` at most once per fsync interval, by
//! [`Queue::sync`] and on drop): a lost ack costs a duplicate, never a sample.

use std::collections::VecDeque;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::mem;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crc::{CRC_32_ISCSI, Crc, Table};

/// The largest record payload the queue takes, whatever the options.
pub const MAX_RECORD: usize = 1 << 20;

/// Bytes of a record's frame before its payload: length, checksum, sequence number.
const HEADER: usize = 16;
/// `HEADER` as a file offset.
const HEADER_BYTES: u64 = HEADER as u64;
/// `HEADER` as a relative seek.
const HEADER_OFFSET: i64 = 16;
/// A segment keeps the offset of one record per this many bytes, so a rewind reads at most
/// this much to find its record.
const INDEX_STRIDE: u64 = 64 * 1024;
/// Pushes gather up to this much before one `write` to the OS.
const WRITE_BUFFER: usize = 64 * 1024;
/// Reads fetch this much per syscall.
const READ_BUFFER: usize = 64 * 1024;
/// How often the ack position is saved under [`FsyncPolicy::Never`], which has no interval.
const NEVER_ACK_INTERVAL: Duration = Duration::from_secs(1);
/// Sequence numbers (in file names, records, the ack file) from here up are damage: no queue
/// gets there, and staying below keeps `seq + 1` from overflowing.
const SEQ_LIMIT: u64 = 1 << 63;

const SEGMENT_SUFFIX: &str = ".seg";
const ACK_FILE: &str = "ack";
const ACK_TEMP: &str = "ack.tmp";
const LOCK_FILE: &str = "lock";
const ACK_MAGIC: [u8; 4] = *b"HQAK";
const ACK_VERSION: u32 = 1;
const ACK_LEN: usize = 28;

/// CRC-32C (Castagnoli). The 16-lane table (16 KiB, built at compile time) takes 16 bytes a
/// step where the default table takes one.
static CRC32C: Crc<u32, Table<16>> = Crc::<u32, Table<16>>::new(&CRC_32_ISCSI);

/// When the queue asks the OS to put written data on the disk (fsync).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// Every [`Queue::flush`] fsyncs: nothing flushed is lost to a power cut, at the cost of
    /// one disk round trip per flush.
    Always,
    /// A flush fsyncs when the last fsync is older than this: at most this much flushed data
    /// can be lost to a power cut.
    Interval(Duration),
    /// Never fsync (except [`Queue::sync`]); the OS writes back when it likes.
    Never,
}

impl Default for FsyncPolicy {
    fn default() -> Self {
        Self::Interval(Duration::from_secs(1))
    }
}

/// Limits and durability of a [`Queue`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueOptions {
    /// Bytes of segments on disk at most (default 256 MiB); beyond, the oldest segment goes.
    /// Drops are whole segments, so keep this several times `segment_bytes`.
    pub max_bytes: u64,
    /// A segment is closed and a new one begun before it would pass this (default 8 MiB).
    pub segment_bytes: u64,
    /// When written data is fsynced.
    pub fsync: FsyncPolicy,
}

impl Default for QueueOptions {
    fn default() -> Self {
        Self {
            max_bytes: 256 << 20,
            segment_bytes: 8 << 20,
            fsync: FsyncPolicy::default(),
        }
    }
}

impl QueueOptions {
    /// The smallest `segment_bytes` accepted: a header and a few bytes of payload.
    pub const MIN_SEGMENT_BYTES: u64 = 64;

    fn validate(&self) -> Result<(), QueueError> {
        if self.segment_bytes < Self::MIN_SEGMENT_BYTES {
            return Err(QueueError::InvalidOptions {
                reason: "segment_bytes must be at least 64",
            });
        }
        if self.max_bytes < self.segment_bytes {
            return Err(QueueError::InvalidOptions {
                reason: "max_bytes must be at least segment_bytes",
            });
        }
        Ok(())
    }

    /// The largest payload these options take.
    #[must_use]
    pub fn max_record(&self) -> usize {
        let fits = self.segment_bytes.saturating_sub(HEADER_BYTES);
        usize::try_from(fits).map_or(MAX_RECORD, |fits| fits.min(MAX_RECORD))
    }
}

/// What went wrong in a [`Queue`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueueError {
    /// A file operation failed; the message names the file and what to do.
    #[error("cannot {op} {}: {source}; {}", .path.display(), io_hint(.source))]
    Io {
        /// What the queue was doing, e.g. "write".
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// A record longer than the queue takes ([`QueueOptions::max_record`]); nothing was stored.
    #[error(
        "a record of {len} bytes is over the queue's limit of {max} bytes \
         (raise segment_bytes, up to 1 MiB per record)"
    )]
    RecordTooLarge {
        /// The record's length.
        len: usize,
        /// The largest length taken.
        max: usize,
    },
    /// The options cannot work.
    #[error("invalid queue options: {reason}")]
    InvalidOptions {
        /// Which rule they break.
        reason: &'static str,
    },
    /// Another queue (in this process or another) has the directory open.
    #[error(
        "the queue directory is in use by {holder} (lock file {}): give each service its own \
         queue directory; if no other service runs, delete the lock file",
        .path.display()
    )]
    Locked {
        /// The lock file.
        path: PathBuf,
        /// Who holds it, as far as the lock file tells.
        holder: String,
    },
    /// [`Queue::ack_through`] named a sequence number that was never handed out.
    #[error("ack of sequence number {seq}, but the next one to be handed out is {next_seq}")]
    AckBeyondEnd {
        /// The acked sequence number.
        seq: u64,
        /// The next sequence number the queue would hand out.
        next_seq: u64,
    },
    /// The ack file says the numbering is near its end (2^63), which no queue reaches.
    #[error(
        "queue {}: its ack file puts the numbering at its end, so it is damaged; move the \
         directory aside to start a new queue",
        .dir.display()
    )]
    Exhausted {
        /// The queue directory.
        dir: PathBuf,
    },
}

/// What a person can do about a failed file operation.
fn io_hint(error: &io::Error) -> &'static str {
    match error.kind() {
        io::ErrorKind::StorageFull => "the disk is full: free space or lower the queue's max_bytes",
        io::ErrorKind::PermissionDenied => {
            "the service's user needs read and write access to the queue directory"
        }
        io::ErrorKind::ReadOnlyFilesystem => {
            "the file system is read-only: put the queue directory on a writable disk"
        }
        io::ErrorKind::NotFound => "was the queue directory removed while the service ran?",
        _ => "check the disk and the queue directory",
    }
}

/// Maps an [`io::Error`] to [`QueueError::Io`] for `op` on `path`.
fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> QueueError + 'a {
    // The path is copied only when there is an error: this runs on every read and write.
    move |source| QueueError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// A failed read of record `seq` at `offset`: a file that ends early or is gone was changed
/// under the queue (truncated, deleted), which costs that segment's rest like any damage;
/// anything else is an I/O error to retry.
fn read_fault<'a>(
    op: &'static str,
    segment: &'a Segment,
    seq: u64,
    offset: u64,
) -> impl FnOnce(io::Error) -> Fault + 'a {
    move |error| match error.kind() {
        io::ErrorKind::UnexpectedEof => Fault::Damaged(Damage {
            seq,
            offset,
            reason: "the file ends early",
        }),
        io::ErrorKind::NotFound => Fault::Damaged(Damage {
            seq,
            offset,
            reason: "the file is gone",
        }),
        _ => Fault::Io(io_err(op, &segment.path)(error)),
    }
}

/// One segment file: records `first_seq..end_seq`, `bytes` long (buffered bytes included).
#[derive(Debug)]
struct Segment {
    first_seq: u64,
    /// One past the last readable record.
    end_seq: u64,
    bytes: u64,
    path: PathBuf,
    /// `(seq, offset)` of a record about every [`INDEX_STRIDE`] bytes; the first record at
    /// offset 0 is implied.
    index: Vec<(u64, u64)>,
    next_index_at: u64,
}

impl Segment {
    fn new(dir: &Path, first_seq: u64) -> Self {
        Self {
            first_seq,
            end_seq: first_seq,
            bytes: 0,
            path: segment_path(dir, first_seq),
            index: Vec::new(),
            next_index_at: INDEX_STRIDE,
        }
    }

    /// Notes a record at `offset` in the index if a stride has passed.
    fn note(&mut self, seq: u64, offset: u64) {
        if offset >= self.next_index_at {
            self.index.push((seq, offset));
            self.next_index_at = offset + INDEX_STRIDE;
        }
    }

    /// The indexed record at or before `seq`: `(seq, offset)`.
    fn index_before(&self, seq: u64) -> (u64, u64) {
        let k = self.index.partition_point(|&(s, _)| s <= seq);
        match k.checked_sub(1) {
            Some(k) => self.index[k],
            None => (self.first_seq, 0),
        }
    }

    /// Records at or after `from`.
    fn records_from(&self, from: u64) -> u64 {
        self.end_seq.saturating_sub(from.max(self.first_seq))
    }
}

fn segment_path(dir: &Path, first_seq: u64) -> PathBuf {
    dir.join(format!("{first_seq:020}{SEGMENT_SUFFIX}"))
}

/// The first sequence number a segment file's name gives, if it is one of ours.
fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(SEGMENT_SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().filter(|&seq| seq < SEQ_LIMIT)
}

fn checksum(seq: u64, payload: &[u8]) -> u32 {
    let mut digest = CRC32C.digest();
    digest.update(&seq.to_le_bytes());
    digest.update(payload);
    digest.finalize()
}

/// A record's frame header, decoded but not yet trusted.
struct Header {
    len: u32,
    crc: u32,
    seq: u64,
}

impl Header {
    fn encode(len: u32, crc: u32, seq: u64) -> [u8; HEADER] {
        let mut bytes = [0; HEADER];
        bytes[..4].copy_from_slice(&len.to_le_bytes());
        bytes[4..8].copy_from_slice(&crc.to_le_bytes());
        bytes[8..].copy_from_slice(&seq.to_le_bytes());
        bytes
    }

    fn decode(bytes: &[u8; HEADER]) -> Self {
        let [l0, l1, l2, l3, c0, c1, c2, c3, s @ ..] = *bytes;
        Self {
            len: u32::from_le_bytes([l0, l1, l2, l3]),
            crc: u32::from_le_bytes([c0, c1, c2, c3]),
            seq: u64::from_le_bytes(s),
        }
    }

    /// Checks the header of the record expected as `seq` at `offset` of a `segment_len`-byte
    /// segment, before anything is allocated for its payload. Returns the payload length.
    fn check(&self, seq: u64, offset: u64, segment_len: u64) -> Result<usize, &'static str> {
        let len = self.len as usize;
        if len > MAX_RECORD {
            return Err("a record length over 1 MiB");
        }
        if offset + HEADER_BYTES + u64::from(self.len) > segment_len {
            return Err("a record running past the end of its segment");
        }
        if self.seq != seq {
            return Err("an out-of-order sequence number");
        }
        Ok(len)
    }
}

/// Where a record failed its checks.
#[derive(Debug)]
struct Damage {
    seq: u64,
    offset: u64,
    reason: &'static str,
}

/// Why reading a segment stopped early.
enum Fault {
    Io(QueueError),
    Damaged(Damage),
}

impl From<QueueError> for Fault {
    fn from(error: QueueError) -> Self {
        Self::Io(error)
    }
}

/// What opening found in one segment file.
struct Scan {
    end_seq: u64,
    good_len: u64,
    file_len: u64,
    index: Vec<(u64, u64)>,
    next_index_at: u64,
    damage: Option<Damage>,
}

/// Reads a segment through, verifying every record, up to the first damaged one.
fn scan_segment(path: &Path, first_seq: u64) -> Result<Scan, QueueError> {
    let file = File::open(path).map_err(io_err("open", path))?;
    let file_len = file.metadata().map_err(io_err("inspect", path))?.len();
    let mut reader = BufReader::with_capacity(READ_BUFFER, file);
    let mut segment = Segment {
        first_seq,
        end_seq: first_seq,
        bytes: file_len,
        path: path.to_path_buf(),
        index: Vec::new(),
        next_index_at: INDEX_STRIDE,
    };
    let mut offset = 0;
    let mut payload = Vec::new();
    let damage = loop {
        let seq = segment.end_seq;
        if offset == file_len {
            break None;
        }
        let fail = |reason| {
            Some(Damage {
                seq,
                offset,
                reason,
            })
        };
        if file_len - offset < HEADER_BYTES {
            break fail("a torn record header");
        }
        if seq >= SEQ_LIMIT {
            break fail("a sequence number out of range");
        }
        let mut header = [0; HEADER];
        reader
            .read_exact(&mut header)
            .map_err(io_err("read", path))?;
        let header = Header::decode(&header);
        let len = match header.check(seq, offset, file_len) {
            Ok(len) => len,
            Err(reason) => break fail(reason),
        };
        payload.resize(len, 0);
        reader
            .read_exact(&mut payload)
            .map_err(io_err("read", path))?;
        if checksum(seq, &payload) != header.crc {
            break fail("a checksum mismatch");
        }
        segment.note(seq, offset);
        offset += HEADER_BYTES + u64::from(header.len);
        segment.end_seq = seq + 1;
    };
    Ok(Scan {
        end_seq: segment.end_seq,
        good_len: offset,
        file_len,
        index: segment.index,
        next_index_at: segment.next_index_at,
        damage,
    })
}

/// Lists and scans the segment files of `dir`, oldest first, cutting damage off the last one,
/// deleting empty ones but the last, and counting damage in `corrupt`.
fn recover_segments(dir: &Path, corrupt: &mut u64) -> Result<Vec<Segment>, QueueError> {
    let mut firsts = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err("list", dir))? {
        let entry = entry.map_err(io_err("list", dir))?;
        if let Some(first) = entry.file_name().to_str().and_then(parse_segment_name) {
            firsts.push(first);
        }
    }
    firsts.sort_unstable();

    let mut segments: Vec<Segment> = Vec::with_capacity(firsts.len());
    for (k, &first) in firsts.iter().enumerate() {
        let path = segment_path(dir, first);
        let scan = scan_segment(&path, first)?;
        let last = k + 1 == firsts.len();
        let mut bytes = scan.file_len;
        if let Some(damage) = &scan.damage {
            *corrupt += 1;
            let lost_bytes = scan.file_len - scan.good_len;
            if last {
                tracing::warn!(segment = %path.display(), offset = damage.offset, lost_bytes, reason = damage.reason,
                    "queue segment ends in a damaged record (an interrupted write?); cutting it off there");
                OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .and_then(|f| f.set_len(scan.good_len))
                    .map_err(io_err("truncate", &path))?;
                bytes = scan.good_len;
            } else {
                tracing::warn!(segment = %path.display(), offset = damage.offset, lost_bytes, reason = damage.reason,
                    "damaged record in a queue segment; the records after it in this segment are skipped");
            }
        }
        if let Some(previous) = segments.last_mut().filter(|p| p.end_seq > first) {
            *corrupt += 1;
            tracing::warn!(segment = %previous.path.display(), next = first,
                "queue segments overlap; the older one is cut where the newer begins");
            previous.end_seq = first;
        }
        if scan.end_seq == first && !last {
            fs::remove_file(&path).map_err(io_err("remove", &path))?;
            continue;
        }
        segments.push(Segment {
            first_seq: first,
            end_seq: scan.end_seq,
            bytes,
            path,
            index: scan.index,
            next_index_at: scan.next_index_at,
        });
    }
    Ok(segments)
}

/// What the `ack` file holds.
enum SavedAck {
    Missing,
    Valid {
        first_unacked: u64,
        dropped_total: u64,
    },
    Damaged,
}

fn encode_ack(first_unacked: u64, dropped_total: u64) -> [u8; ACK_LEN] {
    let mut bytes = [0; ACK_LEN];
    bytes[..4].copy_from_slice(&ACK_MAGIC);
    bytes[4..8].copy_from_slice(&ACK_VERSION.to_le_bytes());
    bytes[8..16].copy_from_slice(&first_unacked.to_le_bytes());
    bytes[16..24].copy_from_slice(&dropped_total.to_le_bytes());
    let crc = CRC32C.checksum(&bytes[..24]);
    bytes[24..].copy_from_slice(&crc.to_le_bytes());
    bytes
}

fn decode_ack(bytes: &[u8]) -> SavedAck {
    let Ok(bytes) = <[u8; ACK_LEN]>::try_from(bytes) else {
        return SavedAck::Damaged;
    };
    let word = |at: usize| {
        let mut word = [0; 8];
        word.copy_from_slice(&bytes[at..at + 8]);
        u64::from_le_bytes(word)
    };
    let half =
        |at: usize| u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    let (version, crc, first_unacked) = (half(4), half(24), word(8));
    if bytes[..4] != ACK_MAGIC
        || version != ACK_VERSION
        || CRC32C.checksum(&bytes[..24]) != crc
        || first_unacked >= SEQ_LIMIT
    {
        return SavedAck::Damaged;
    }
    SavedAck::Valid {
        first_unacked,
        dropped_total: word(16),
    }
}

fn read_ack(path: &Path) -> Result<SavedAck, QueueError> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(SavedAck::Missing),
        Err(e) => return Err(io_err("open", path)(e)),
    };
    let mut bytes = Vec::with_capacity(ACK_LEN + 1);
    // One byte more than the format tells a longer file from a valid one.
    file.take(ACK_LEN as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(io_err("read", path))?;
    Ok(decode_ack(&bytes))
}

/// Makes a directory's entries (created, renamed, deleted files) durable.
fn sync_dir(dir: &Path) -> Result<(), QueueError> {
    // Windows cannot open a directory as a file, and its metadata writes need no such step.
    if cfg!(unix) {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err("sync", dir))?;
    }
    Ok(())
}

/// Directories locked by queues of this process: a second open here is refused even though
/// the lock file holds this process's own id.
static LOCKED_DIRS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Exclusive use of a queue directory: a `lock` file holding the owner's pid and boot id,
/// created with `create_new`, taken over only when that process is gone or the lock is from
/// an earlier boot.
#[derive(Debug)]
struct DirLock {
    dir: PathBuf,
    path: PathBuf,
}

impl DirLock {
    fn acquire(dir: &Path) -> Result<Self, QueueError> {
        let path = dir.join(LOCK_FILE);
        let locked = |holder: String| QueueError::Locked {
            path: path.clone(),
            holder,
        };
        let mut held = LOCKED_DIRS.lock().unwrap_or_else(PoisonError::into_inner);
        if held.iter().any(|d| d == dir) {
            return Err(locked("another queue in this process".into()));
        }
        let me = std::process::id();
        // Two rounds: one to clear a stale lock, one to take it; more means another process
        // keeps winning the race.
        for _ in 0..3 {
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut file) => {
                    if let Err(e) = file.write_all(format!("{me} {}\n", boot_id()).as_bytes()) {
                        let _ = fs::remove_file(&path);
                        return Err(io_err("write", &path)(e));
                    }
                    held.push(dir.to_path_buf());
                    return Ok(Self {
                        dir: dir.to_path_buf(),
                        path,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io_err("create", &path)(e)),
            }
            // A pid and a boot id are a few dozen bytes; whatever else is there is not read.
            let mut content = Vec::new();
            let read = File::open(&path).and_then(|file| file.take(64).read_to_end(&mut content));
            match read {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err("read", &path)(e)),
            }
            let text = std::str::from_utf8(&content).unwrap_or_default();
            let mut fields = text.split_whitespace();
            let pid = fields.next().and_then(|pid| pid.parse::<u32>().ok());
            // A lock from before the last boot is stale whatever runs under its pid now: pids
            // are handed out again after a reboot (a power cut at the plant, say).
            let this_boot = fields.next().is_none_or(|boot| boot == boot_id());
            let Some(pid) = pid else {
                return Err(locked(
                    "an unknown process (the lock file holds no pid)".into(),
                ));
            };
            // Our own pid in a lock we do not hold is a previous run's: a container restarts
            // its service as the same pid.
            if pid != me && this_boot && process_alive(pid) {
                return Err(locked(format!("process {pid}")));
            }
            tracing::warn!(lock = %path.display(), pid, "taking over the lock of a queue whose process is gone");
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("remove the stale lock", &path)(e)),
            }
        }
        Err(locked("another process starting at the same time".into()))
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        if let Err(e) = fs::remove_file(&self.path) {
            tracing::warn!(lock = %self.path.display(), error = %e, "could not remove the queue's lock file");
        }
        let mut held = LOCKED_DIRS.lock().unwrap_or_else(PoisonError::into_inner);
        held.retain(|d| *d != self.dir);
    }
}

/// This boot's id (Linux), empty where there is none to read.
fn boot_id() -> String {
    fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|id| id.trim().to_owned())
        .unwrap_or_default()
}

/// Whether a process with this id runs. Only Linux can tell (through /proc); elsewhere a
/// lock left by a crash must be deleted by hand, as the error says.
fn process_alive(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        Path::new("/proc").join(pid.to_string()).exists()
    } else {
        true
    }
}

/// Where the last read stopped, with the file open there: reading on costs no search.
struct Cursor {
    /// The segment's first sequence number.
    segment: u64,
    seq: u64,
    offset: u64,
    reader: BufReader<File>,
}

/// A persistent FIFO of opaque records with sequence numbers, acknowledged from the front.
///
/// One queue per directory (a lock file enforces it). Not thread-safe by itself; the
/// publisher owns it, or it sits behind a mutex.
pub struct Queue {
    dir: PathBuf,
    options: QueueOptions,
    /// Closed segments, oldest first.
    sealed: VecDeque<Segment>,
    /// The segment pushes append to, always the newest.
    active: Segment,
    file: File,
    /// Pushed bytes not yet written to `file`.
    pending: Vec<u8>,
    total_bytes: u64,
    next_seq: u64,
    first_unacked: u64,
    /// `(first_unacked, dropped_total)` as the `ack` file has them.
    saved_ack: (u64, u64),
    /// Written to the active file but not fsynced.
    unsynced: bool,
    /// Segment files created or deleted since the directory was last fsynced.
    dir_unsynced: bool,
    last_sync: Instant,
    last_ack_save: Instant,
    dropped: u64,
    dropped_total: u64,
    corrupt: u64,
    cursor: Option<Cursor>,
    _lock: DirLock,
}

impl fmt::Debug for Queue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue")
            .field("dir", &self.dir)
            .field("first_unacked", &self.first_unacked)
            .field("next_seq", &self.next_seq)
            .field("segments", &(self.sealed.len() + 1))
            .field("bytes_on_disk", &self.total_bytes)
            .field("dropped", &self.dropped)
            .field("corrupt", &self.corrupt)
            .finish_non_exhaustive()
    }
}

impl Queue {
    /// Opens the queue in `dir`, creating the directory if need be, and recovers it: every
    /// record's checksum is verified; damage in the last segment (a torn write) is cut off,
    /// damage in an earlier one ends that segment; both are logged and counted in
    /// [`corrupt`](Self::corrupt). Numbering resumes after the last record, delivery at the
    /// saved ack position.
    ///
    /// # Errors
    ///
    /// [`QueueError::InvalidOptions`], [`QueueError::Locked`] if another queue has the
    /// directory open, [`QueueError::Io`] if a file cannot be read or written.
    pub fn open(dir: &Path, options: QueueOptions) -> Result<Self, QueueError> {
        options.validate()?;
        fs::create_dir_all(dir).map_err(io_err("create the queue directory", dir))?;
        let dir = fs::canonicalize(dir).map_err(io_err("find the queue directory", dir))?;
        let lock = DirLock::acquire(&dir)?;
        let mut corrupt = 0;

        match fs::remove_file(dir.join(ACK_TEMP)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("remove", &dir.join(ACK_TEMP))(e)),
        }
        let mut segments = recover_segments(&dir, &mut corrupt)?;

        let ack_path = dir.join(ACK_FILE);
        let (acked, dropped_total) = match read_ack(&ack_path)? {
            SavedAck::Missing => (0, 0),
            SavedAck::Valid {
                first_unacked,
                dropped_total,
            } => (first_unacked, dropped_total),
            SavedAck::Damaged => {
                corrupt += 1;
                tracing::warn!(file = %ack_path.display(),
                    "the queue's ack file is damaged; records kept will be sent again");
                (0, 0)
            }
        };
        let next_seq = segments.last().map_or(0, |s| s.end_seq).max(acked);

        // Pushes go on in the last segment only if it ends where numbering resumes.
        let (active, file) = match segments.pop() {
            Some(last) if last.end_seq == next_seq => {
                let file = OpenOptions::new()
                    .append(true)
                    .open(&last.path)
                    .map_err(io_err("open", &last.path))?;
                (last, file)
            }
            last => {
                match last {
                    Some(last) if last.end_seq == last.first_seq => {
                        fs::remove_file(&last.path).map_err(io_err("remove", &last.path))?;
                    }
                    Some(last) => segments.push(last),
                    None => {}
                }
                create_segment(&dir, next_seq)?
            }
        };

        let total_bytes = segments.iter().map(|s| s.bytes).sum::<u64>() + active.bytes;
        let now = Instant::now();
        let mut queue = Self {
            dir,
            options,
            sealed: segments.into(),
            active,
            file,
            pending: Vec::with_capacity(WRITE_BUFFER),
            total_bytes,
            next_seq,
            first_unacked: acked.min(next_seq),
            saved_ack: (acked, dropped_total),
            unsynced: false,
            dir_unsynced: true,
            last_sync: now,
            last_ack_save: now,
            dropped: 0,
            dropped_total,
            corrupt,
            cursor: None,
            _lock: lock,
        };
        queue.normalize();
        queue.delete_acked()?;
        // Options may have shrunk since the last run.
        queue.make_room(0)?;
        Ok(queue)
    }

    /// Appends a record and returns its sequence number: one more than the last, never
    /// handed out before (also across restarts; only records of a torn tail, never durable,
    /// are numbered again). The record is buffered; see [`flush`](Self::flush). If the
    /// queue would pass [`QueueOptions::max_bytes`], its oldest segments are deleted first,
    /// delivered or not, and their undelivered records counted in [`dropped`](Self::dropped).
    ///
    /// # Errors
    ///
    /// [`QueueError::RecordTooLarge`] (nothing stored), [`QueueError::Io`] if buffered
    /// records cannot be written or a segment cannot be created or deleted; the record is
    /// then not stored either, and the queue stays consistent.
    pub fn push(&mut self, record: &[u8]) -> Result<u64, QueueError> {
        let max = self.options.max_record();
        // max_record is at most MAX_RECORD (1 MiB), so a record within it fits a u32.
        let len = match u32::try_from(record.len()) {
            Ok(len) if record.len() <= max => len,
            _ => {
                return Err(QueueError::RecordTooLarge {
                    len: record.len(),
                    max,
                });
            }
        };
        if self.next_seq >= SEQ_LIMIT {
            // Only a forged ack file gets here: no queue hands out 2^63 numbers.
            return Err(QueueError::Exhausted {
                dir: self.dir.clone(),
            });
        }
        let size = HEADER_BYTES + u64::from(len);
        if self.active.bytes > 0 && self.active.bytes + size > self.options.segment_bytes {
            self.roll()?;
        }
        self.make_room(size)?;
        if !self.pending.is_empty() && self.pending.len() + HEADER + record.len() > WRITE_BUFFER {
            self.write_pending()?;
        }
        let seq = self.next_seq;
        let header = Header::encode(len, checksum(seq, record), seq);
        self.pending.extend_from_slice(&header);
        self.pending.extend_from_slice(record);
        self.active.note(seq, self.active.bytes);
        self.active.bytes += size;
        self.active.end_seq = seq + 1;
        self.total_bytes += size;
        self.next_seq = seq + 1;
        Ok(seq)
    }

    /// Writes buffered records to the OS, then fsyncs as [`QueueOptions::fsync`] says, and
    /// saves the ack position if it moved (at most once per fsync interval; each flush under
    /// [`FsyncPolicy::Always`]).
    ///
    /// # Errors
    ///
    /// [`QueueError::Io`]; whatever was not written stays buffered for the next try.
    pub fn flush(&mut self) -> Result<(), QueueError> {
        self.write_pending()?;
        let (fsync_due, ack_interval) = match self.options.fsync {
            FsyncPolicy::Always => (true, Duration::ZERO),
            FsyncPolicy::Interval(interval) => (self.last_sync.elapsed() >= interval, interval),
            FsyncPolicy::Never => (false, NEVER_ACK_INTERVAL),
        };
        if fsync_due {
            self.sync_files()?;
        }
        if self.ack_changed() && self.last_ack_save.elapsed() >= ack_interval {
            self.save_ack(self.options.fsync != FsyncPolicy::Never)?;
        }
        Ok(())
    }

    /// Writes everything out and fsyncs it now, ack position included, whatever the policy:
    /// for shutdown. (Dropping the queue does the same but can only log a failure.)
    ///
    /// # Errors
    ///
    /// [`QueueError::Io`].
    pub fn sync(&mut self) -> Result<(), QueueError> {
        self.write_pending()?;
        self.sync_files()?;
        if self.ack_changed() {
            self.save_ack(true)?;
        }
        Ok(())
    }

    /// Appends to `out` the records from `max(from, first_unacked())` on, in order, with
    /// their sequence numbers: at most `max_records`, and no more payload bytes than
    /// `max_bytes`, except that a first record larger than that comes alone (so no record
    /// blocks the queue). Records pushed but not flushed are included: they are written to
    /// the OS first. Reading on from where the last read stopped continues from an open file;
    /// any other `from` (a rewind) seeks through a sparse index.
    ///
    /// A record found damaged now (the disk changed under the queue) ends its segment, as on
    /// open, and reading goes on after it.
    ///
    /// # Errors
    ///
    /// [`QueueError::Io`]: reading a segment, or writing buffered records out, failed
    /// (records read before a failed write are returned first, without the error).
    pub fn read(
        &mut self,
        from: u64,
        max_records: usize,
        max_bytes: usize,
        out: &mut Vec<(u64, Vec<u8>)>,
    ) -> Result<(), QueueError> {
        let mut seq = from.max(self.first_unacked);
        let mut budget = Budget {
            records: max_records,
            bytes: max_bytes,
            taken: 0,
        };
        while budget.records > 0 && seq < self.next_seq {
            let i = self.sealed.partition_point(|s| s.end_seq <= seq);
            let segment = self.sealed.get(i).unwrap_or(&self.active);
            if segment.end_seq <= seq.max(segment.first_seq) {
                // An empty segment (all records damaged) or the active one with none left.
                if i == self.sealed.len() {
                    break;
                }
                seq = segment.end_seq;
                continue;
            }
            seq = seq.max(segment.first_seq);
            if i == self.sealed.len() && !self.pending.is_empty() {
                match self.write_pending() {
                    Ok(()) => {}
                    // Let the sender publish what it has; the next read meets the error.
                    Err(_) if budget.taken > 0 => break,
                    Err(e) => return Err(e),
                }
            }
            match self.read_segment(i, seq, &mut budget, out) {
                Ok(ReadEnd::Segment(end)) => seq = end,
                Ok(ReadEnd::Budget) => break,
                Err(Fault::Io(error)) => return Err(error),
                Err(Fault::Damaged(damage)) => {
                    seq = damage.seq;
                    self.cut_damaged(i, &damage)?;
                }
            }
        }
        Ok(())
    }

    /// Reads records of segment `i` from `seq` into `out` until the segment or the budget
    /// ends, keeping the cursor where it stopped.
    fn read_segment(
        &mut self,
        i: usize,
        seq: u64,
        budget: &mut Budget,
        out: &mut Vec<(u64, Vec<u8>)>,
    ) -> Result<ReadEnd, Fault> {
        let segment = self.sealed.get(i).unwrap_or(&self.active);
        let mut cursor = place_cursor(self.cursor.take(), segment, seq)?;
        let end = loop {
            if cursor.seq >= segment.end_seq {
                break ReadEnd::Segment(segment.end_seq);
            }
            if budget.records == 0 {
                break ReadEnd::Budget;
            }
            let (header, len) = next_header(&mut cursor, segment)?;
            if budget.taken > 0 && len > budget.bytes {
                cursor
                    .reader
                    .seek_relative(-HEADER_OFFSET)
                    .map_err(io_err("seek in", &segment.path))?;
                break ReadEnd::Budget;
            }
            let mut payload = vec![0; len];
            cursor.reader.read_exact(&mut payload).map_err(read_fault(
                "read",
                segment,
                cursor.seq,
                cursor.offset,
            ))?;
            if checksum(cursor.seq, &payload) != header.crc {
                return Err(Fault::Damaged(Damage {
                    seq: cursor.seq,
                    offset: cursor.offset,
                    reason: "a checksum mismatch",
                }));
            }
            out.push((cursor.seq, payload));
            budget.records -= 1;
            budget.bytes = budget.bytes.saturating_sub(len);
            budget.taken += 1;
            cursor.seq += 1;
            cursor.offset += HEADER_BYTES + u64::from(header.len);
        };
        self.cursor = Some(cursor);
        Ok(end)
    }

    /// Records everything up to and including `seq` as delivered, and deletes the segments
    /// that leaves with nothing to deliver (the active one stays). Acking an already acked
    /// number does nothing. The position is saved lazily (see [`flush`](Self::flush)).
    ///
    /// # Errors
    ///
    /// [`QueueError::AckBeyondEnd`] for a number not handed out yet (nothing changes);
    /// [`QueueError::Io`] if a segment cannot be deleted (it is tried again at the next ack).
    pub fn ack_through(&mut self, seq: u64) -> Result<(), QueueError> {
        if seq >= self.next_seq {
            return Err(QueueError::AckBeyondEnd {
                seq,
                next_seq: self.next_seq,
            });
        }
        if seq < self.first_unacked {
            return Ok(());
        }
        self.first_unacked = seq + 1;
        self.normalize();
        self.delete_acked()
    }

    /// The sequence number of the first record not delivered yet (where a sender resumes);
    /// [`next_seq`](Self::next_seq) if there is none.
    #[must_use]
    pub fn first_unacked(&self) -> u64 {
        self.first_unacked
    }

    /// The sequence number the next [`push`](Self::push) returns.
    #[must_use]
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Records kept and not delivered yet.
    #[must_use]
    pub fn len(&self) -> u64 {
        let from = self.first_unacked;
        self.sealed
            .iter()
            .map(|s| s.records_from(from))
            .sum::<u64>()
            + self.active.records_from(from)
    }

    /// Whether every kept record is delivered.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of the segments, buffered records included.
    #[must_use]
    pub fn bytes_on_disk(&self) -> u64 {
        self.total_bytes
    }

    /// Undelivered records deleted to stay within [`QueueOptions::max_bytes`] since open.
    #[must_use]
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Undelivered records ever deleted to stay within [`QueueOptions::max_bytes`], kept
    /// across restarts in the ack file (as lazily as the ack position).
    #[must_use]
    pub fn dropped_total(&self) -> u64 {
        self.dropped_total
    }

    /// Damaged spots found since open (on open or by a read): each cut a segment short at a
    /// record whose length, sequence number or checksum was wrong; a damaged ack file counts
    /// one too.
    #[must_use]
    pub fn corrupt(&self) -> u64 {
        self.corrupt
    }

    /// The queue's directory (canonical).
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes the push buffer to the active file, keeping what a failed write left.
    fn write_pending(&mut self) -> Result<(), QueueError> {
        let mut done = 0;
        let result = loop {
            if done == self.pending.len() {
                break Ok(());
            }
            match self.file.write(&self.pending[done..]) {
                Ok(0) => break Err(io::Error::from(io::ErrorKind::WriteZero)),
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        if done > 0 {
            self.pending.drain(..done);
            self.unsynced = true;
        }
        result.map_err(io_err("write", &self.active.path))
    }

    /// Fsyncs the active file and, if segments came or went, the directory.
    fn sync_files(&mut self) -> Result<(), QueueError> {
        if self.unsynced {
            self.file
                .sync_data()
                .map_err(io_err("sync", &self.active.path))?;
            self.unsynced = false;
        }
        if self.dir_unsynced {
            sync_dir(&self.dir)?;
            self.dir_unsynced = false;
        }
        self.last_sync = Instant::now();
        Ok(())
    }

    fn ack_changed(&self) -> bool {
        self.saved_ack != (self.first_unacked, self.dropped_total)
    }

    /// Replaces the ack file by write-temp-and-rename, so it is always whole.
    fn save_ack(&mut self, fsync: bool) -> Result<(), QueueError> {
        let state = (self.first_unacked, self.dropped_total);
        let temp = self.dir.join(ACK_TEMP);
        let path = self.dir.join(ACK_FILE);
        let mut file = File::create(&temp).map_err(io_err("create", &temp))?;
        file.write_all(&encode_ack(state.0, state.1))
            .map_err(io_err("write", &temp))?;
        if fsync {
            file.sync_data().map_err(io_err("sync", &temp))?;
        }
        drop(file);
        fs::rename(&temp, &path).map_err(io_err("replace", &path))?;
        if fsync {
            sync_dir(&self.dir)?;
        }
        self.saved_ack = state;
        self.last_ack_save = Instant::now();
        Ok(())
    }

    /// Closes the active segment and starts a new one at `next_seq`.
    fn roll(&mut self) -> Result<(), QueueError> {
        self.write_pending()?;
        // The closed file gets no later flush; fsync it now unless the policy never does.
        if self.unsynced && self.options.fsync != FsyncPolicy::Never {
            self.file
                .sync_data()
                .map_err(io_err("sync", &self.active.path))?;
        }
        self.unsynced = false;
        let (segment, file) = create_segment(&self.dir, self.next_seq)?;
        self.file = file;
        self.sealed
            .push_back(mem::replace(&mut self.active, segment));
        self.dir_unsynced = true;
        // The closed segment may hold only delivered records.
        self.delete_acked()
    }

    /// Deletes the oldest segments until `size` more bytes fit within `max_bytes`.
    fn make_room(&mut self, size: u64) -> Result<(), QueueError> {
        while self.total_bytes + size > self.options.max_bytes {
            if self.sealed.is_empty() {
                if self.active.bytes == 0 {
                    break;
                }
                self.roll()?;
                continue;
            }
            let Some(oldest) = self.sealed.pop_front() else {
                break;
            };
            if let Err(e) = remove_segment(&oldest) {
                self.sealed.push_front(oldest);
                return Err(e);
            }
            let undelivered = oldest.records_from(self.first_unacked);
            self.forget(&oldest);
            if undelivered > 0 {
                self.dropped += undelivered;
                // Saturating: the total comes from the ack file, which could hold anything.
                self.dropped_total = self.dropped_total.saturating_add(undelivered);
                tracing::warn!(segment = %oldest.path.display(), records = undelivered,
                    max_bytes = self.options.max_bytes,
                    "queue full: deleted its oldest segment with records never delivered");
            }
            self.normalize();
        }
        Ok(())
    }

    /// Deletes closed segments with nothing left to deliver.
    fn delete_acked(&mut self) -> Result<(), QueueError> {
        while let Some(oldest) = self.sealed.front() {
            if oldest.end_seq > self.first_unacked {
                break;
            }
            remove_segment(oldest)?;
            if let Some(oldest) = self.sealed.pop_front() {
                self.forget(&oldest);
            }
        }
        Ok(())
    }

    /// Accounts for a deleted segment.
    fn forget(&mut self, segment: &Segment) {
        self.total_bytes -= segment.bytes;
        self.dir_unsynced = true;
        if self
            .cursor
            .as_ref()
            .is_some_and(|c| c.segment == segment.first_seq)
        {
            self.cursor = None;
        }
    }

    /// Moves `first_unacked` past records that exist nowhere (deleted or damaged), so it
    /// names a kept record or `next_seq`.
    fn normalize(&mut self) {
        let from = self.first_unacked;
        self.first_unacked = self
            .sealed
            .iter()
            .chain([&self.active])
            .find(|s| s.records_from(from) > 0)
            .map_or(self.next_seq, |s| from.max(s.first_seq));
    }

    /// Ends segment `i` before a record a read found damaged.
    fn cut_damaged(&mut self, i: usize, damage: &Damage) -> Result<(), QueueError> {
        self.corrupt += 1;
        self.cursor = None;
        let is_active = i == self.sealed.len();
        let segment = match self.sealed.get_mut(i) {
            Some(segment) => segment,
            None => &mut self.active,
        };
        tracing::warn!(segment = %segment.path.display(), offset = damage.offset,
            lost = segment.end_seq - damage.seq, reason = damage.reason,
            "damaged record in a queue segment (changed on disk); skipping the rest of it");
        segment.end_seq = damage.seq;
        segment.index.retain(|&(s, _)| s < damage.seq);
        if is_active {
            // New records must not follow the damage: recovery would stop at it.
            self.roll()?;
        }
        self.normalize();
        self.delete_acked()
    }
}

impl Drop for Queue {
    fn drop(&mut self) {
        let result = if self.options.fsync == FsyncPolicy::Never {
            self.write_pending().and_then(|()| {
                if self.ack_changed() {
                    self.save_ack(false)
                } else {
                    Ok(())
                }
            })
        } else {
            self.sync()
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "could not save the queue on close; the next open recovers what reached the disk");
        }
    }
}

/// What a read may still take.
struct Budget {
    records: usize,
    bytes: usize,
    taken: usize,
}

/// Why [`Queue::read_segment`] stopped.
enum ReadEnd {
    /// At the segment's end; the next record has this sequence number.
    Segment(u64),
    /// The budget is spent.
    Budget,
}

fn create_segment(dir: &Path, first_seq: u64) -> Result<(Segment, File), QueueError> {
    let segment = Segment::new(dir, first_seq);
    let file = OpenOptions::new()
        .append(true)
        .create(true)
        .open(&segment.path)
        .map_err(io_err("create", &segment.path))?;
    // A file of this name is not one the queue knows, so nothing in it is ours.
    file.set_len(0).map_err(io_err("truncate", &segment.path))?;
    Ok((segment, file))
}

fn remove_segment(segment: &Segment) -> Result<(), QueueError> {
    match fs::remove_file(&segment.path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err("delete", &segment.path)(e)),
    }
}

/// Puts a cursor on record `seq` of `segment`, reusing `previous` if it stands at or before
/// `seq` there and past the nearest index entry.
fn place_cursor(previous: Option<Cursor>, segment: &Segment, seq: u64) -> Result<Cursor, Fault> {
    let (index_seq, index_offset) = segment.index_before(seq);
    let mut cursor = match previous {
        Some(c) if c.segment == segment.first_seq && c.seq <= seq && c.seq >= index_seq => c,
        _ => {
            let file = File::open(&segment.path).map_err(read_fault(
                "open",
                segment,
                seq,
                index_offset,
            ))?;
            let mut reader = BufReader::with_capacity(READ_BUFFER, file);
            reader
                .seek(SeekFrom::Start(index_offset))
                .map_err(io_err("seek in", &segment.path))?;
            Cursor {
                segment: segment.first_seq,
                seq: index_seq,
                offset: index_offset,
                reader,
            }
        }
    };
    while cursor.seq < seq {
        let (header, _) = next_header(&mut cursor, segment)?;
        cursor
            .reader
            .seek_relative(i64::from(header.len))
            .map_err(io_err("seek in", &segment.path))?;
        cursor.seq += 1;
        cursor.offset += HEADER_BYTES + u64::from(header.len);
    }
    Ok(cursor)
}

/// Reads and checks the header of the record at the cursor; the cursor's `seq` and `offset`
/// stay on that record.
fn next_header(cursor: &mut Cursor, segment: &Segment) -> Result<(Header, usize), Fault> {
    let mut bytes = [0; HEADER];
    cursor.reader.read_exact(&mut bytes).map_err(read_fault(
        "read",
        segment,
        cursor.seq,
        cursor.offset,
    ))?;
    let header = Header::decode(&bytes);
    match header.check(cursor.seq, cursor.offset, segment.bytes) {
        Ok(len) => Ok((header, len)),
        Err(reason) => Err(Fault::Damaged(Damage {
            seq: cursor.seq,
            offset: cursor.offset,
            reason,
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mqtt::test_rng::Rng;

    /// Options for small, fast tests: segments of `segment_bytes`, no fsync.
    fn options(segment_bytes: u64, max_bytes: u64) -> QueueOptions {
        QueueOptions {
            max_bytes,
            segment_bytes,
            fsync: FsyncPolicy::Never,
        }
    }

    /// A payload that tells its sequence number and length apart from any other.
    fn payload(seq: u64, len: usize) -> Vec<u8> {
        let mut bytes = seq.to_le_bytes().repeat(len / 8 + 1);
        bytes.truncate(len);
        if let Some(first) = bytes.first_mut() {
            *first ^= u8::try_from(len % 251).unwrap_or(0);
        }
        bytes
    }

    /// Every record from `from` on, in batches of 7, as a sender reads them.
    fn read_all(queue: &mut Queue, from: u64) -> Vec<(u64, Vec<u8>)> {
        let mut out = Vec::new();
        let mut next = from;
        for _ in 0..100_000 {
            let before = out.len();
            queue.read(next, 7, usize::MAX, &mut out).unwrap();
            match out.last() {
                Some(&(seq, _)) if out.len() > before => next = seq + 1,
                _ => return out,
            }
        }
        panic!("read did not end");
    }

    fn segment_names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(SEGMENT_SUFFIX))
            .collect();
        names.sort();
        names
    }

    fn seqs(records: &[(u64, Vec<u8>)]) -> Vec<u64> {
        records.iter().map(|r| r.0).collect()
    }

    #[test]
    fn round_trip_in_order_across_segments() {
        let dir = tempfile::tempdir().unwrap();
        let mut queue = Queue::open(dir.path(), options(1024, 1 << 20)).unwrap();
        let lens: Vec<usize> = (0..500).map(|i| (i * 37) % 300).collect();
        for (i, &len) in lens.iter().enumerate() {
            assert_eq!(queue.push(&payload(i as u64, len)).unwrap(), i as u64);
        }
        // Not flushed: the read must still see everything.
        let records = read_all(&mut queue, 0);
        assert_eq!(records.len(), lens.len());
        for (i, (seq, bytes)) in records.iter().enumerate() {
            assert_eq!(*seq, i as u64);
            assert_eq!(*bytes, payload(i as u64, lens[i]));
        }
        assert!(
            segment_names(dir.path()).len() > 10,
            "rolled into many segments"
        );
        assert_eq!(queue.len(), 500);
        assert_eq!(queue.next_seq(), 500);
        assert_eq!(queue.first_unacked(), 0);
        let on_disk: u64 = lens.iter().map(|&l| HEADER_BYTES + l as u64).sum();
        assert_eq!(queue.bytes_on_disk(), on_disk);
    }

    #[test]
    fn read_limits_records_and_bytes_but_always_returns_one() {
        let dir = tempfile::tempdir().unwrap();
        let mut queue = Queue::open(dir.path(), options(1 << 16, 1 << 20)).unwrap();
        for seq in 0..10 {
            queue.push(&payload(seq, 100)).unwrap();
        }
        let mut out = Vec::new();
        queue.read(0, 3, usize::MAX, &mut out).unwrap();
        assert_eq!(seqs(&out), [0, 1, 2]);
        out.clear();
        queue.read(3, 100, 250, &mut out).unwrap();
        assert_eq!(seqs(&out), [3, 4], "two of 100 bytes fit in 250");
        out.clear();
        queue.read(5, 100, 10, &mut out).unwrap();
        assert_eq!(seqs(&out), [5], "a record over max_bytes comes alone");
        out.clear();
        queue.read(6, 0, usize::MAX, &mut out).unwrap();
        assert!(out.is_empty());
        queue.read(10, 100, usize::MAX, &mut out).unwrap();
        assert!(out.is_empty(), "nothing past the end");
        queue.read(u64::MAX, 100, usize::MAX, &mut out).unwrap();
        assert!(out.is_empty());
        // Reads append to what the caller has.
        out.push((99, Vec::new()));
        queue.read(6, 100, usize::MAX, &mut out).unwrap();
        assert_eq!(seqs(&out), [99, 6, 7, 8, 9]);
    }

    #[test]
    fn restart_keeps_unacked_records_and_numbering() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut queue = Queue::open(dir.path(), options(512, 1 << 20)).unwrap();
            for seq in 0..100 {
                queue.push(&payload(seq, 40)).unwrap();
            }
            queue.ack_through(59).unwrap();
        }
        let mut queue = Queue::open(dir.path(), options(512, 1 << 20)).unwrap();
        assert_eq!(queue.first_unacked(), 60);
        assert_eq!(queue.next_seq(), 100);
        assert_eq!(queue.len(), 40);
        let records = read_all(&mut queue, 0);
        assert_eq!(seqs(&records), (60..100).collect::<Vec<_>>());
        assert!(
            records
                .iter()
                .all(|(seq, bytes)| *bytes == payload(*seq, 40))
        );
        assert_eq!(queue.push(b"after").unwrap(), 100);
        assert_eq!(queue.corrupt(), 0);

        // Everything acked: the next run still numbers on.
        queue.ack_through(100).unwrap();
        assert!(queue.is_empty());
        drop(queue);
        let mut queue = Queue::open(dir.path(), options(512, 1 << 20)).unwrap();
        assert!(queue.is_empty());
        assert_eq!(queue.first_unacked(), 101);
        assert_eq!(queue.push(b"next").unwrap(), 101);
        assert_eq!(seqs(&read_all(&mut queue, 0)), [101]);
    }

    #[test]
    fn numbering_survives_a_queue_emptied_before_a_crash() {
        // The ack file is saved lazily; the active segment, kept even when all is acked,
        // must carry the numbering alone.
        let dir = tempfile::tempdir().unwrap();
        let mut queue = Queue::open(dir.path(), options(256, 1 << 20)).unwrap();
        for seq in 0..20 {
            queue.push(&payload(seq, 50)).unwrap();
        }
        queue.ack_through(19).unwrap();
        // Three 66-byte records to a segment: only the active one, 18..20, is left.
        assert_eq!(segment_names(dir.path()), ["00000000000000000018.seg"]);
        drop(queue);
        fs::remove_file(dir.path().join(ACK_FILE)).unwrap();
        let mut queue = Queue::open(dir.path(), options(256, 1 << 20)).unwrap();
        assert_eq!(queue.next_seq(), 20);
        assert_eq!(queue.push(b"x").unwrap(), 20);
        // Without the ack file the kept records count as undelivered: sent again, not lost.
        assert_eq!(seqs(&read_all(&mut queue, 0)), [18, 19, 20]);
    }

    #[test]
    fn rewind_after_partial_ack_reads_again_from_first_unacked() {
        let dir = tempfile::tempdir().unwrap();
        // Large segments so a rewind lands deep inside one, past several index entries.
        let mut queue = Queue::open(dir.path(), options(1 << 20, 8 << 20)).unwrap();
        for seq in 0..5000 {
            queue.push(&payload(seq, 150)).unwrap();
        }
        let sent = read_all(&mut queue, 0);
        assert_eq!(sent.len(), 5000);
        queue.ack_through(3210).unwrap();
        // Disconnected: rewind.
        let resume = queue.first_unacked();
        let again = read_all(&mut queue, resume);
        assert_eq!(seqs(&again), (3211..5000).collect::<Vec<_>>());
        assert_eq!(again[..], sent[3211..]);
        // A from below first_unacked starts at first_unacked.
        let mut out = Vec::new();
        queue.read(5, 2, usize::MAX, &mut out).unwrap();
        assert_eq!(seqs(&out), [3211, 3212]);
        // Rewind into the middle, then forward again, then back once more.
        for from in [4000, 3300, 4999, 3211] {
            out.clear();
            queue.read(from, 3, usize::MAX, &mut out).unwrap();
            let expect: Vec<u64> = (from..5000).take(3).collect();
            assert_eq!(seqs(&out), expect);
            assert!(out.iter().all(|(seq, bytes)| *bytes == payload(*seq, 150)));
        }
    }

    #[test]
    fn torn_tail_is_cut_and_the_good_prefix_kept() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut queue = Queue::open(dir.path(), options(1 << 16, 1 << 20)).unwrap();
            for seq in 0..10 {
                queue.push(&payload(seq, 100)).unwrap();
            }
        }
        let names = segment_names(dir.path());
        assert_eq!(names.len(), 1);
        let path = dir.path().join(&names[0]);
        let len = fs::metadata(&path).unwrap().len();
        // A write cut off in the middle of the last record's payload.
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len - 30)
            .unwrap();
        let mut queue = Queue::open(dir.path(), options(1 << 16, 1 << 20)).unwrap();
        assert_eq!(queue.corrupt(), 1);
        assert_eq!(queue.next_seq(), 9);
        assert_eq!(fs::metadata(&path).unwrap().len(), 9 * 116);
        assert_eq!(queue.bytes_on_disk(), 9 * 116);
        // Appends go on cleanly after the cut.
        assert_eq!(queue.push(&payload(9, 20)).unwrap(), 9);
        let records = read_all(&mut queue, 0);
        assert_eq!(seqs(&records), (0..10).collect::<Vec<_>>());
        assert_eq!(records[9].1, payload(9, 20));
        drop(queue);
        let queue = Queue::open(dir.path(), options(1 << 16, 1 << 20)).unwrap();
        assert_eq!(queue.corrupt(), 0, "the cut was final");
        assert_eq!(queue.next_seq(), 10);

        // A header torn after 5 of its 16 bytes.
        drop(queue);
        let len = fs::metadata(&path).unwrap().len();
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(&[1, 2, 3, 4, 5]).unwrap();
        drop(file);
        let queue = Queue::open(dir.path(), options(1 << 16, 1 << 20)).unwrap();
        assert_eq!(queue.corrupt(), 1);
        assert_eq!(queue.next_seq(), 10);
        assert_eq!(fs::metadata(&path).unwrap().len(), len);
    }

    #[test]
    fn flipped_byte_in_the_last_segment_cuts_it_there() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut queue = Queue::open(dir.path(), options(1 << 16, 1 << 20)).unwrap();
            for seq in 0..10 {
                queue.push(&payload(seq, 100)).unwrap();
            }
        }
        let path = dir.path().join(&segment_names(dir.path())[0]);
        let mut bytes = fs::read(&path).unwrap();
        // A payload byte of record 6 (each record is 116 bytes).
        bytes[6 * 116 + HEADER + 50] ^= 0x40;
        fs::write(&path, &bytes).unwrap();
        let mut queue = Queue::open(dir.path(), options(1 << 16, 1 << 20)).unwrap();
        assert_eq!(queue.corrupt(), 1);
        assert_eq!(queue.next_seq(), 6);
        assert_eq!(queue.len(), 6);
        let records = read_all(&mut queue, 0);
        assert_eq!(seqs(&records), (0..6).collect::<Vec<_>>());
        assert!(
            records
                .iter()
                .all(|(seq, bytes)| *bytes == payload(*seq, 100))
        );

        // A length field of 4 GiB must be refused before anything is allocated for it.
        drop(queue);
        let mut bytes = fs::read(&path).unwrap();
        bytes[2 * 116..2 * 116 + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        fs::write(&path, &bytes).unwrap();
        let queue = Queue::open(dir.path(), options(1 << 16, 1 << 20)).unwrap();
        assert_eq!(queue.corrupt(), 1);
        assert_eq!(queue.next_seq(), 2);
    }

    #[test]
    fn damage_in_an_earlier_segment_ends_only_that_segment() {
        let dir = tempfile::tempdir().unwrap();
        // 116-byte records, 4 to a 500-byte segment.
        {
            let mut queue = Queue::open(dir.path(), options(500, 1 << 20)).unwrap();
            for seq in 0..12 {
                queue.push(&payload(seq, 100)).unwrap();
            }
        }
        let names = segment_names(dir.path());
        assert_eq!(names.len(), 3);
        let middle = dir.path().join(&names[1]);
        let mut bytes = fs::read(&middle).unwrap();
        // The seq field of the middle segment's second record (seq 5).
        bytes[116 + 8] ^= 1;
        fs::write(&middle, &bytes).unwrap();
        let mut queue = Queue::open(dir.path(), options(500, 1 << 20)).unwrap();
        assert_eq!(queue.corrupt(), 1);
        assert_eq!(queue.next_seq(), 12);
        assert_eq!(queue.len(), 9);
        let records = read_all(&mut queue, 0);
        assert_eq!(seqs(&records), [0, 1, 2, 3, 4, 8, 9, 10, 11]);
        // Acking past the gap deletes the damaged segment too.
        queue.ack_through(4).unwrap();
        assert_eq!(queue.first_unacked(), 8);
        assert_eq!(segment_names(dir.path()), names[2..]);
    }

    #[test]
    fn damage_found_by_a_read_skips_the_rest_of_its_segment() {
        let dir = tempfile::tempdir().unwrap();
        let mut queue = Queue::open(dir.path(), options(500, 1 << 20)).unwrap();
        for seq in 0..8 {
            queue.push(&payload(seq, 100)).unwrap();
        }
        queue.flush().unwrap();
        let names = segment_names(dir.path());
        // Damage seq 1 in the closed first segment and seq 6 in the active one.
        for (name, at) in [(&names[0], 116 + HEADER + 3), (&names[1], 2 * 116 + HEADER)] {
            let path = dir.path().join(name);
            let mut bytes = fs::read(&path).unwrap();
            bytes[at] ^= 0xFF;
            // Rewrite in place: the queue's open handles must see it.
            OpenOptions::new()
                .write(true)
                .open(&path)
                .unwrap()
                .write_all(&bytes)
                .unwrap();
        }
        let records = read_all(&mut queue, 0);
        assert_eq!(seqs(&records), [0, 4, 5]);
        assert_eq!(queue.corrupt(), 2);
        assert_eq!(queue.len(), 3);
        // Pushes go on in a fresh segment and are read back.
        assert_eq!(queue.push(&payload(8, 10)).unwrap(), 8);
        assert_eq!(seqs(&read_all(&mut queue, 6)), [8]);
        drop(queue);
        let mut queue = Queue::open(dir.path(), options(500, 1 << 20)).unwrap();
        assert_eq!(seqs(&read_all(&mut queue, 0)), [0, 4, 5, 8]);
    }

    #[test]
    fn a_closed_segment_cut_short_or_deleted_under_the_queue_costs_only_its_rest() {
        let dir = tempfile::tempdir().unwrap();
        let mut queue = Queue::open(dir.path(), options(500, 1 << 20)).unwrap();
        for seq in 0..12 {
            queue.push(&payload(seq, 100)).unwrap();
        }
        queue.flush().unwrap();
        let names = segment_names(dir.path());
        assert!(names.len() >= 3, "{names:?}");
        // The first segment loses its last record's tail; the second goes altogether.
        let first = dir.path().join(&names[0]);
        let length = fs::metadata(&first).unwrap().len();
        OpenOptions::new()
            .write(true)
            .open(&first)
            .unwrap()
            .set_len(length - 50)
            .unwrap();
        fs::remove_file(dir.path().join(&names[1])).unwrap();
        // Every read goes on past both (it used to fail at the same place on every call).
        let records = read_all(&mut queue, 0);
        assert_eq!(seqs(&records), [0, 1, 2, 8, 9, 10, 11]);
        assert_eq!(queue.corrupt(), 2);
        assert_eq!(seqs(&read_all(&mut queue, 0)), [0, 1, 2, 8, 9, 10, 11]);
    }

    #[test]
    fn damaged_ack_file_means_sending_again_not_losing() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut queue = Queue::open(dir.path(), options(1 << 16, 1 << 20)).unwrap();
            for seq in 0..10 {
                queue.push(&payload(seq, 10)).unwrap();
            }
            queue.ack_through(4).unwrap();
        }
        let ack = dir.path().join(ACK_FILE);
        let mut bytes = fs::read(&ack).unwrap();
        assert_eq!(bytes.len(), ACK_LEN);
        assert_eq!(decode_ack(&bytes).first(), Some(5));
        bytes[9] ^= 1;
        fs::write(&ack, &bytes).unwrap();
        let queue = Queue::open(dir.path(), options(1 << 16, 1 << 20)).unwrap();
        assert_eq!(queue.corrupt(), 1);
        assert_eq!(queue.first_unacked(), 0);
        assert_eq!(queue.len(), 10);
        drop(queue);
        fs::write(&ack, b"garbage of another length").unwrap();
        let queue = Queue::open(dir.path(), options(1 << 16, 1 << 20)).unwrap();
        assert_eq!(queue.corrupt(), 1);
        assert_eq!(queue.len(), 10);
    }

    impl SavedAck {
        fn first(&self) -> Option<u64> {
            match self {
                Self::Valid { first_unacked, .. } => Some(*first_unacked),
                _ => None,
            }
        }
    }

    #[test]
    fn over_max_bytes_the_oldest_segment_goes_and_its_undelivered_records_are_counted() {
        let dir = tempfile::tempdir().unwrap();
        // 116-byte records, 10 to a 1160-byte segment, 3 segments at most.
        let opts = options(1160, 3 * 1160);
        let mut queue = Queue::open(dir.path(), opts.clone()).unwrap();
        for seq in 0..30 {
            queue.push(&payload(seq, 100)).unwrap();
        }
        assert_eq!(queue.dropped(), 0);
        assert_eq!(queue.bytes_on_disk(), 3 * 1160);
        queue.ack_through(4).unwrap();
        // Seq 30 needs a fourth segment: the first goes, with 5 records never delivered.
        assert_eq!(queue.push(&payload(30, 100)).unwrap(), 30);
        assert_eq!(queue.dropped(), 5);
        assert_eq!(queue.first_unacked(), 10);
        assert!(queue.bytes_on_disk() <= opts.max_bytes);
        for seq in 31..45 {
            queue.push(&payload(seq, 100)).unwrap();
        }
        // Seq 40 dropped segment 10..20 as well, all undelivered.
        assert_eq!(queue.dropped(), 15);
        assert_eq!(queue.dropped_total(), 15);
        assert_eq!(queue.first_unacked(), 20);
        assert_eq!(queue.len(), 25);
        let records = read_all(&mut queue, 0);
        assert_eq!(seqs(&records), (20..45).collect::<Vec<_>>());
        assert!(
            records
                .iter()
                .all(|(seq, bytes)| *bytes == payload(*seq, 100))
        );
        assert_eq!(
            segment_names(dir.path()),
            [
                "00000000000000000020.seg",
                "00000000000000000030.seg",
                "00000000000000000040.seg"
            ]
        );
        drop(queue);
        let queue = Queue::open(dir.path(), opts).unwrap();
        assert_eq!(queue.dropped(), 0, "counted since open");
        assert_eq!(queue.dropped_total(), 15, "kept across restarts");

        // max_bytes equal to segment_bytes: the only segment is closed and dropped.
        let dir = tempfile::tempdir().unwrap();
        let mut queue = Queue::open(dir.path(), options(1160, 1160)).unwrap();
        for seq in 0..25 {
            queue.push(&payload(seq, 100)).unwrap();
        }
        assert_eq!(queue.dropped(), 20);
        assert_eq!(seqs(&read_all(&mut queue, 0)), (20..25).collect::<Vec<_>>());
    }

    #[test]
    fn a_smaller_max_bytes_on_open_drops_the_oldest() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut queue = Queue::open(dir.path(), options(1160, 1 << 20)).unwrap();
            for seq in 0..50 {
                queue.push(&payload(seq, 100)).unwrap();
            }
        }
        let mut queue = Queue::open(dir.path(), options(1160, 2 * 1160)).unwrap();
        assert_eq!(queue.dropped(), 30);
        assert_eq!(seqs(&read_all(&mut queue, 0)), (30..50).collect::<Vec<_>>());
    }

    #[test]
    fn oversize_records_are_refused_and_nothing_is_stored() {
        let dir = tempfile::tempdir().unwrap();
        let mut queue = Queue::open(dir.path(), options(1024, 4096)).unwrap();
        queue.push(b"before").unwrap();
        let err = queue.push(&[0; 1024 - HEADER + 1]).unwrap_err();
        assert!(
            matches!(
                err,
                QueueError::RecordTooLarge {
                    len: 1009,
                    max: 1008
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("1009 bytes"), "{err}");
        assert_eq!(queue.push(&[7; 1024 - HEADER]).unwrap(), 1);
        assert_eq!(queue.next_seq(), 2);

        let dir = tempfile::tempdir().unwrap();
        let mut queue = Queue::open(dir.path(), options(8 << 20, 16 << 20)).unwrap();
        let big = vec![1; MAX_RECORD + 1];
        assert!(matches!(
            queue.push(&big),
            Err(QueueError::RecordTooLarge {
                max: MAX_RECORD,
                ..
            })
        ));
        assert_eq!(queue.push(&big[..MAX_RECORD]).unwrap(), 0);
        assert_eq!(read_all(&mut queue, 0)[0].1.len(), MAX_RECORD);
        assert_eq!(queue.len(), 1);
    }

    #[test]
    fn invalid_options_and_acks_beyond_the_end_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        for (segment_bytes, max_bytes) in [(10, 1 << 20), (4096, 1024)] {
            let err = Queue::open(dir.path(), options(segment_bytes, max_bytes)).unwrap_err();
            assert!(matches!(err, QueueError::InvalidOptions { .. }), "{err:?}");
        }
        let mut queue = Queue::open(dir.path(), options(1024, 4096)).unwrap();
        assert!(matches!(
            queue.ack_through(0),
            Err(QueueError::AckBeyondEnd {
                seq: 0,
                next_seq: 0
            })
        ));
        queue.push(b"a").unwrap();
        queue.push(b"b").unwrap();
        assert!(queue.ack_through(2).is_err());
        queue.ack_through(1).unwrap();
        queue.ack_through(0).unwrap();
        assert_eq!(queue.first_unacked(), 2, "a stale ack changes nothing");
    }

    #[test]
    fn acks_delete_delivered_segments() {
        let dir = tempfile::tempdir().unwrap();
        let mut queue = Queue::open(dir.path(), options(1160, 1 << 20)).unwrap();
        for seq in 0..35 {
            queue.push(&payload(seq, 100)).unwrap();
        }
        queue.flush().unwrap();
        assert_eq!(segment_names(dir.path()).len(), 4);
        queue.ack_through(8).unwrap();
        assert_eq!(
            segment_names(dir.path()).len(),
            4,
            "segment 0 still has seq 9"
        );
        queue.ack_through(19).unwrap();
        assert_eq!(
            segment_names(dir.path()),
            ["00000000000000000020.seg", "00000000000000000030.seg"]
        );
        assert_eq!(queue.bytes_on_disk(), 15 * 116);
        queue.ack_through(34).unwrap();
        // The active segment stays: its name keeps the numbering.
        assert_eq!(segment_names(dir.path()), ["00000000000000000030.seg"]);
        assert!(queue.is_empty());
        assert_eq!(queue.first_unacked(), 35);
    }

    #[test]
    fn a_second_open_of_the_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let queue = Queue::open(dir.path(), options(1024, 4096)).unwrap();
        let err = Queue::open(dir.path(), options(1024, 4096)).unwrap_err();
        assert!(matches!(err, QueueError::Locked { .. }), "{err:?}");
        assert!(err.to_string().contains("delete the lock file"), "{err}");
        // Through another spelling of the same path, too.
        let other = dir
            .path()
            .join(".")
            .join("..")
            .join(dir.path().file_name().unwrap());
        assert!(matches!(
            Queue::open(&other, options(1024, 4096)),
            Err(QueueError::Locked { .. })
        ));
        drop(queue);
        assert!(!dir.path().join(LOCK_FILE).exists());
        let queue = Queue::open(dir.path(), options(1024, 4096)).unwrap();
        drop(queue);

        // A lock left by a crash: taken over when its process is gone, or when it holds
        // our own pid (a container restarting its service as the same pid).
        for pid in [u32::MAX - 7, std::process::id()] {
            fs::write(dir.path().join(LOCK_FILE), format!("{pid}\n")).unwrap();
            drop(Queue::open(dir.path(), options(1024, 4096)).unwrap());
        }
        // A live process (pid 1 always runs) keeps it, unless the lock is from an earlier
        // boot (its pid is someone else's now); an unreadable lock is kept too.
        if cfg!(target_os = "linux") {
            let written = fs::read_to_string(dir.path().join(LOCK_FILE));
            assert!(written.is_err(), "the lock is gone after the drop");
            for lock in ["1\n".to_owned(), format!("1 {}\n", boot_id())] {
                fs::write(dir.path().join(LOCK_FILE), lock).unwrap();
                let err = Queue::open(dir.path(), options(1024, 4096)).unwrap_err();
                assert!(err.to_string().contains("process 1"), "{err}");
            }
            fs::write(dir.path().join(LOCK_FILE), "1 an-earlier-boot\n").unwrap();
            let queue = Queue::open(dir.path(), options(1024, 4096)).unwrap();
            let lock = fs::read_to_string(dir.path().join(LOCK_FILE)).unwrap();
            assert_eq!(lock, format!("{} {}\n", std::process::id(), boot_id()));
            drop(queue);
        }
        fs::write(dir.path().join(LOCK_FILE), "").unwrap();
        assert!(matches!(
            Queue::open(dir.path(), options(1024, 4096)),
            Err(QueueError::Locked { .. })
        ));
    }

    #[test]
    fn fsync_always_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let opts = QueueOptions {
            fsync: FsyncPolicy::Always,
            ..options(512, 4096)
        };
        {
            let mut queue = Queue::open(dir.path(), opts.clone()).unwrap();
            for seq in 0..20 {
                queue.push(&payload(seq, 60)).unwrap();
                queue.flush().unwrap();
            }
            queue.ack_through(9).unwrap();
            queue.flush().unwrap();
            assert_eq!(
                decode_ack(&fs::read(dir.path().join(ACK_FILE)).unwrap()).first(),
                Some(10)
            );
            queue.sync().unwrap();
        }
        let mut queue = Queue::open(dir.path(), opts).unwrap();
        assert_eq!(seqs(&read_all(&mut queue, 0)), (10..20).collect::<Vec<_>>());
    }

    /// The queue's rules in memory: segments as lists of records, rolled and dropped at the
    /// same byte counts.
    struct Model {
        segment_bytes: u64,
        max_bytes: u64,
        /// `(first_seq, records)`, the last one active.
        segments: VecDeque<(u64, Vec<Vec<u8>>)>,
        next_seq: u64,
        first_unacked: u64,
        dropped: u64,
    }

    impl Model {
        fn bytes(records: &[Vec<u8>]) -> u64 {
            records.iter().map(|r| HEADER_BYTES + r.len() as u64).sum()
        }

        fn total(&self) -> u64 {
            self.segments.iter().map(|s| Self::bytes(&s.1)).sum()
        }

        fn undelivered(&self, segment: &(u64, Vec<Vec<u8>>)) -> u64 {
            let end = segment.0 + segment.1.len() as u64;
            end.saturating_sub(self.first_unacked.max(segment.0))
        }

        fn normalize(&mut self) {
            let first = self
                .segments
                .iter()
                .find(|s| self.undelivered(s) > 0)
                .map(|s| s.0);
            self.first_unacked = first.map_or(self.next_seq, |f| f.max(self.first_unacked));
        }

        fn push(&mut self, record: Vec<u8>) -> u64 {
            let size = HEADER_BYTES + record.len() as u64;
            let active = Self::bytes(&self.segments.back().unwrap().1);
            if active > 0 && active + size > self.segment_bytes {
                self.roll();
            }
            while self.total() + size > self.max_bytes {
                if self.segments.len() == 1 {
                    self.roll();
                    continue;
                }
                let oldest = self.segments.pop_front().unwrap();
                self.dropped += self.undelivered(&oldest);
                self.normalize();
            }
            self.segments.back_mut().unwrap().1.push(record);
            self.next_seq += 1;
            self.next_seq - 1
        }

        fn roll(&mut self) {
            self.segments.push_back((self.next_seq, Vec::new()));
            self.delete_acked();
        }

        fn ack(&mut self, seq: u64) {
            self.first_unacked = self.first_unacked.max(seq + 1);
            self.normalize();
            self.delete_acked();
        }

        fn delete_acked(&mut self) {
            while self.segments.len() > 1 {
                let front = &self.segments[0];
                if front.0 + front.1.len() as u64 > self.first_unacked {
                    break;
                }
                self.segments.pop_front();
            }
        }

        fn get(&self, seq: u64) -> Option<&Vec<u8>> {
            self.segments.iter().find_map(|(first, records)| {
                records.get(usize::try_from(seq.checked_sub(*first)?).ok()?)
            })
        }

        fn read(&self, from: u64, max_records: usize, max_bytes: usize) -> Vec<(u64, Vec<u8>)> {
            let mut out: Vec<(u64, Vec<u8>)> = Vec::new();
            let mut bytes = 0;
            let mut seq = from.max(self.first_unacked);
            while out.len() < max_records && seq < self.next_seq {
                let Some(record) = self.get(seq) else { break };
                if !out.is_empty() && bytes + record.len() > max_bytes {
                    break;
                }
                bytes += record.len();
                out.push((seq, record.clone()));
                seq += 1;
            }
            out
        }

        fn names(&self) -> Vec<String> {
            self.segments
                .iter()
                .map(|s| format!("{:020}{SEGMENT_SUFFIX}", s.0))
                .collect()
        }
    }

    fn check(queue: &Queue, model: &Model, step: usize) {
        assert_eq!(queue.next_seq(), model.next_seq, "step {step}");
        assert_eq!(queue.first_unacked(), model.first_unacked, "step {step}");
        assert_eq!(queue.dropped_total(), model.dropped, "step {step}");
        assert_eq!(queue.bytes_on_disk(), model.total(), "step {step}");
        assert!(queue.bytes_on_disk() <= model.max_bytes, "step {step}");
        let len: u64 = model.segments.iter().map(|s| model.undelivered(s)).sum();
        assert_eq!(queue.len(), len, "step {step}");
    }

    /// Random pushes, reads, acks, rewinds, flushes and reopens against [`Model`]: every
    /// read returns exactly the model's records, and counts, bytes and files agree.
    #[test]
    fn random_operations_match_the_model() {
        for seed in [1_u64, 0x9E37_79B9_7F4A_7C15, 42, 2024, 7_777_777] {
            let mut rng = Rng(seed);
            let segment_bytes = [128, 300, 1024, 4096][rng.index(4)];
            let max_bytes = segment_bytes * (1 + rng.below(6)) + rng.below(segment_bytes);
            let opts = options(segment_bytes, max_bytes);
            let max_record = opts.max_record();
            let dir = tempfile::tempdir().unwrap();
            let mut queue = Some(Queue::open(dir.path(), opts.clone()).unwrap());
            let mut model = Model {
                segment_bytes,
                max_bytes,
                segments: VecDeque::from([(0, Vec::new())]),
                next_seq: 0,
                first_unacked: 0,
                dropped: 0,
            };
            // The sender's position: one past the last record it read.
            let mut cursor = 0_u64;
            let mut out = Vec::new();
            for step in 0..3000 {
                let q = queue.as_mut().unwrap();
                // Stretches without a broker: nothing is read or acked, the queue fills up.
                let offline = (step / 250) % 3 == 2;
                let op = rng.below(100);
                match if offline && (45..90).contains(&op) {
                    0
                } else {
                    op
                } {
                    0..45 => {
                        let len = match rng.below(20) {
                            0 => rng.below(max_record as u64 + 1),
                            1 => max_record as u64 + 1 + rng.below(10),
                            _ => rng.below(64),
                        };
                        let record = payload(model.next_seq, usize::try_from(len).unwrap());
                        if record.len() > max_record {
                            assert!(matches!(
                                q.push(&record),
                                Err(QueueError::RecordTooLarge { .. })
                            ));
                        } else {
                            let seq = q.push(&record).unwrap();
                            assert_eq!(seq, model.push(record), "step {step}");
                        }
                    }
                    45..70 => {
                        let max_records = 1 + rng.index(40);
                        let max_bytes = rng.index(2000);
                        out.clear();
                        q.read(cursor, max_records, max_bytes, &mut out).unwrap();
                        let expect = model.read(cursor, max_records, max_bytes);
                        assert_eq!(out, expect, "step {step} seed {seed} from {cursor}");
                        if let Some(&(seq, _)) = out.last() {
                            cursor = seq + 1;
                        }
                    }
                    70..85 => {
                        // Ack some of what was sent (possibly again).
                        let low = model.first_unacked.saturating_sub(2);
                        if cursor > low {
                            let seq = low + rng.below(cursor - low);
                            q.ack_through(seq).unwrap();
                            model.ack(seq);
                        }
                    }
                    85..90 => {
                        // Disconnect: rewind, sometimes to an arbitrary earlier point.
                        cursor = if rng.below(2) == 0 {
                            q.first_unacked()
                        } else {
                            rng.below(model.next_seq + 1)
                        };
                    }
                    90..93 => q.flush().unwrap(),
                    93..95 => {
                        let beyond = model.next_seq + rng.below(3);
                        assert!(matches!(
                            q.ack_through(beyond),
                            Err(QueueError::AckBeyondEnd { .. })
                        ));
                    }
                    _ => {
                        drop(queue.take());
                        let reopened = Queue::open(dir.path(), opts.clone()).unwrap();
                        assert_eq!(reopened.corrupt(), 0, "step {step}");
                        assert_eq!(reopened.dropped(), 0, "step {step}");
                        queue = Some(reopened);
                        assert_eq!(segment_names(dir.path()), model.names(), "step {step}");
                    }
                }
                let q = queue.as_ref().unwrap();
                check(q, &model, step);
                if step % 100 == 0 {
                    assert_eq!(segment_names(dir.path()), model.names(), "step {step}");
                }
            }
            // Finally everything still kept reads back whole.
            let q = queue.as_mut().unwrap();
            let all = read_all(q, 0);
            assert_eq!(all, model.read(0, usize::MAX, usize::MAX), "seed {seed}");
        }
    }
}
