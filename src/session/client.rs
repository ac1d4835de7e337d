//! The sans-IO client core: requests in, ADUs out, response bytes in, typed events out.
//!
//! A [`Session`] owns every rule a Modbus client follows between sending a request and handing
//! its answer to the application: framing the request for the chosen [`Framing`], assigning
//! transaction ids, keeping each outstanding request's encoded PDU so that the response can be
//! decoded against it ([`Response::decode`]), matching responses by transaction id, unit id and
//! function (`modbus-reference.md` §3.4, §10.3), discarding stale, foreign and corrupted frames
//! while the response timer keeps running (§8.8), completing broadcasts after a turnaround delay
//! instead of waiting for a reply that never comes (§8.9), and the retry schedule (attempts,
//! exponential backoff with a cap). The driver around it only moves bytes and sleeps until
//! [`Session::poll_timeout`].
//!
//! Nothing here allocates: a session is a fixed table of `N` request slots (each holds the
//! request PDU and room for its response), a response decoder for the framing, and a small ring
//! of discard reports. `N` is how many requests may be outstanding at once: up to 16 for
//! pipelining on Modbus TCP (`NumberMaxOfClientTransaction`, §10.3), while serial framings
//! always keep one request on the wire whatever `N` is.
//!
//! Time is injected: every call that depends on it takes `now`, so tests run on a fake clock.
#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use core::fmt;

use crate::error::{DecodeError, EncodeError, FrameError};
use crate::frame::{Framing, ascii, rtu, tcp};
use crate::pdu::{FunctionCode, MAX_PDU_LEN, Request, Response};
use crate::time::Instant;
use core::time::Duration;

/// Unit id of a broadcast on a serial line (and on RTU over TCP, which carries serial ADUs).
pub const BROADCAST_UNIT_ID: u8 = 0;
/// How many [`DiscardReason`]s wait for [`Session::poll_event`] before the oldest is dropped.
const DISCARD_QUEUE_LEN: usize = 4;

/// When and how often a request is sent again after its response timed out.
///
/// Attempt 1 is the first transmission. After attempt `k` times out, attempt `k + 1` is sent
/// after [`backoff(k)`](Self::backoff) = `min(initial_backoff × 2^(k−1), max_backoff)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RetryPolicy {
    /// Transmissions in total, at least 1 (a value of 0 is treated as 1).
    pub max_attempts: u32,
    /// Delay before the second attempt.
    pub initial_backoff: Duration,
    /// Largest delay between two attempts.
    pub max_backoff: Duration,
    /// Retry requests that change the server's state, too.
    ///
    /// Off by default: when the response to a write is lost, the server may well have applied
    /// the write, and repeating it is not always harmless: a mask write (FC 22) applied twice
    /// is, but a FIFO queue or a vendor function may count or consume, and a second write may
    /// overwrite a value someone else set in between. Only requests for which
    /// [`Request::is_read_only`] holds (minus FC 24, whose queue some devices pop on read) are
    /// retried unless this is set.
    pub retry_writes: bool,
}

impl RetryPolicy {
    /// One attempt, no retries.
    pub const NONE: Self = Self {
        max_attempts: 1,
        initial_backoff: Duration::ZERO,
        max_backoff: Duration::ZERO,
        retry_writes: false,
    };

    /// Three attempts for reads, 100 ms then 200 ms apart (capped at 1 s); writes once.
    pub const DEFAULT: Self = Self {
        max_attempts: 3,
        initial_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_secs(1),
        retry_writes: false,
    };

    /// The delay between attempt `attempt` (1-based) timing out and the next attempt.
    ///
    /// ```
    /// use modbus_stack::session::client::RetryPolicy;
    /// use std::time::Duration;
    /// let policy = RetryPolicy {
    ///     max_attempts: 5,
    ///     initial_backoff: Duration::from_millis(100),
    ///     max_backoff: Duration::from_millis(300),
    ///     retry_writes: false,
    /// };
    /// assert_eq!(policy.backoff(1), Duration::from_millis(100));
    /// assert_eq!(policy.backoff(2), Duration::from_millis(200));
    /// assert_eq!(policy.backoff(3), Duration::from_millis(300)); // capped
    /// ```
    #[must_use]
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(31);
        let factor = 1u32.checked_shl(exponent).unwrap_or(u32::MAX);
        self.initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }

    /// `true` when `request` may be sent again after a timeout under this policy.
    #[must_use]
    pub fn may_retry(&self, request: &Request<'_>) -> bool {
        self.retry_writes
            || (request.is_read_only() && !matches!(request, Request::ReadFifoQueue { .. }))
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Configuration of a [`Session`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// The framing on the link.
    pub framing: Framing,
    /// How long to wait for a response to one attempt, from when the request was queued (or
    /// released for a retry).
    pub response_timeout: Duration,
    /// How long a broadcast occupies the line before the next request may go (§8.9: typically
    /// 100–200 ms; keep it below the response timeout).
    pub turnaround_delay: Duration,
    /// Retry schedule after timeouts and lost connections.
    pub retry: RetryPolicy,
    /// RTU line timing for [`Framing::Rtu`]: with it the response decoder also ends frames by
    /// t3.5 of silence (needed for function codes without a length rule); without it the length
    /// oracle and the CRC cut frames, as on RTU over TCP.
    pub rtu_timing: Option<rtu::Timing>,
}

impl Config {
    /// Defaults for `framing`: 1 s response timeout, 100 ms turnaround, [`RetryPolicy::DEFAULT`],
    /// untimed RTU.
    #[must_use]
    pub const fn new(framing: Framing) -> Self {
        Self {
            framing,
            response_timeout: Duration::from_secs(1),
            turnaround_delay: Duration::from_millis(100),
            retry: RetryPolicy::DEFAULT,
            rtu_timing: None,
        }
    }
}

/// Identifies one request of a [`Session`]. On Modbus TCP it is the MBAP transaction id; on
/// serial framings it is a local counter that never goes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TransactionId(pub u16);

impl fmt::Display for TransactionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// Why [`Session::start`] did not accept a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// Every slot is taken (or, on a serial framing, a request is still on the line).
    #[error("{outstanding} requests outstanding, no slot free")]
    Busy {
        /// Requests in the table.
        outstanding: usize,
    },
    /// The request breaks a rule of the specification (or does not fit a PDU).
    #[error("invalid request: {0}")]
    InvalidRequest(EncodeError),
    /// Only writes may be broadcast: nobody answers a broadcast, so a read would return nothing.
    #[error("function {function} returns data and cannot be broadcast")]
    BroadcastRead {
        /// The function code.
        function: FunctionCode,
    },
}

/// Why bytes received did not complete any request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DiscardReason {
    /// A Modbus TCP response whose transaction id matches no outstanding request: a late answer
    /// to a request that already timed out, or a stray (§10.3).
    UnknownTransaction {
        /// The transaction id found.
        transaction_id: u16,
    },
    /// A response from another unit than the one addressed (§8.8); the timer keeps running.
    ForeignUnit {
        /// The unit addressed.
        expected: u8,
        /// The unit id in the response.
        actual: u8,
    },
    /// A serial response that does not fit the outstanding request (other function, byte count
    /// or echo): most likely a late answer to an earlier request; the timer keeps running.
    Mismatch(DecodeError),
    /// A response arrived while no request was waiting for one.
    Unsolicited {
        /// The unit id in the response.
        unit_id: u8,
    },
    /// A Modbus TCP frame with the transaction id of a request in flight, whose first byte
    /// arrived before that request was sent: bytes left over from earlier (the start of a
    /// truncated answer, trailing junk, an answer sent ahead of the request) completed by
    /// later ones. Never an answer, whatever its header says.
    StartedBeforeRequest {
        /// The transaction id in the frame's header.
        transaction_id: u16,
    },
    /// The bytes do not form a frame (CRC, LRC, MBAP header); the framing resynchronises.
    Frame(FrameError),
}

/// Why an outstanding request was given up before its timer ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AbortCause {
    /// The driver reported a lost connection ([`Session::handle_disconnect`]) and the request
    /// may not be retried.
    Disconnected,
    /// The TCP byte stream lost its framing (an MBAP length field outside 2..=254, §10.4): the
    /// connection must be closed and opened again.
    Frame(FrameError),
}

/// What happened to the requests of a [`Session`], from [`Session::poll_event`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event<'a> {
    /// The response, decoded against its request. An exception response is a
    /// [`Response::Exception`]: the server did answer.
    Response {
        /// The request it answers.
        id: TransactionId,
        /// The unit that answered.
        unit_id: u8,
        /// The response.
        response: Response<'a>,
    },
    /// A Modbus TCP response with the right transaction id that does not fit its request
    /// (function, byte count, echo): a protocol error of the server (§3.4).
    InvalidResponse {
        /// The request.
        id: TransactionId,
        /// What does not fit.
        error: DecodeError,
    },
    /// No response within the response timeout, on the last attempt.
    Timeout {
        /// The request.
        id: TransactionId,
        /// Transmissions made.
        attempts: u32,
    },
    /// A broadcast was sent and its turnaround delay has passed: the line is free again.
    BroadcastDone {
        /// The request.
        id: TransactionId,
    },
    /// A request that gets no response by definition (FC 08 / 04) was sent.
    Sent {
        /// The request.
        id: TransactionId,
    },
    /// The request was given up.
    Aborted {
        /// The request.
        id: TransactionId,
        /// Why.
        cause: AbortCause,
    },
    /// Received bytes were dropped without completing anything.
    Discarded {
        /// Why.
        reason: DiscardReason,
    },
}

/// Where a slot's request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Free,
    /// Waiting for [`Session::poll_transmit`]; the response timer started at `ready_at`.
    Queued {
        ready_at: Instant,
    },
    /// Sent; waiting for the response until `deadline`.
    AwaitingResponse {
        deadline: Instant,
    },
    /// Sent as a broadcast; the line is free at `until`.
    Turnaround {
        until: Instant,
    },
    /// Timed out; attempt again at `at`.
    Backoff {
        at: Instant,
    },
    /// Finished; the event waits for [`Session::poll_event`].
    Done(Outcome),
}

/// How a request finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// The response PDU is in the slot's response buffer.
    Response {
        unit_id: u8,
    },
    Timeout,
    BroadcastDone,
    Sent,
    Aborted(AbortCause),
}

/// One outstanding request's bookkeeping. Its request and response PDUs live apart from it, in
/// [`Table`]'s buffers: every call scans the slots for a state, and with the PDUs inline each
/// slot would span half a kilobyte, so a scan of 16 slots would touch 16 cold cache lines.
#[derive(Debug, Clone, Copy)]
struct Slot {
    state: State,
    id: TransactionId,
    /// The transaction id of the attempt on the wire: `id` for the first, a fresh one for each
    /// retry, so that a late answer to an earlier attempt cannot pass for the retry's.
    wire_id: u16,
    /// [`Session::epoch`] right after this attempt was sent: a frame whose first byte arrived
    /// earlier cannot answer it.
    sent_epoch: u64,
    unit_id: u8,
    /// Order of `start` (for transmit order) and then of completion (for event order).
    sequence: u32,
    attempts: u32,
    retryable: bool,
    broadcast: bool,
    expects_response: bool,
    request_len: u8,
    response_len: u8,
}

impl Slot {
    const EMPTY: Self = Self {
        state: State::Free,
        id: TransactionId(0),
        wire_id: 0,
        sent_epoch: 0,
        unit_id: 0,
        sequence: 0,
        attempts: 0,
        retryable: false,
        broadcast: false,
        expects_response: true,
        request_len: 0,
        response_len: 0,
    };
}

/// The request slots: bookkeeping, the encoded request PDUs and room for the responses, all
/// indexed alike.
///
/// Requests take the lowest free slot, and every slot from `span` on is free, so scans stop at
/// `span`: one slot for a client that waits for each answer, however large `N` is.
#[derive(Debug, Clone)]
struct Table<const N: usize> {
    slots: [Slot; N],
    span: usize,
    requests: [[u8; MAX_PDU_LEN]; N],
    responses: [[u8; MAX_PDU_LEN]; N],
    next_sequence: u32,
}

impl<const N: usize> Table<N> {
    const fn new() -> Self {
        Self {
            slots: [Slot::EMPTY; N],
            span: 0,
            requests: [[0; MAX_PDU_LEN]; N],
            responses: [[0; MAX_PDU_LEN]; N],
            next_sequence: 0,
        }
    }

    /// The slots that may be taken (every slot beyond is free).
    fn active(&self) -> &[Slot] {
        self.slots.get(..self.span).unwrap_or(&self.slots)
    }

    /// The lowest free slot.
    fn free_slot(&self) -> Option<usize> {
        match self
            .active()
            .iter()
            .position(|slot| slot.state == State::Free)
        {
            Some(index) => Some(index),
            None => (self.span < N).then_some(self.span),
        }
    }

    /// Puts `slot` at `index`.
    fn occupy(&mut self, index: usize, slot: Slot) {
        if let Some(entry) = self.slots.get_mut(index) {
            *entry = slot;
            self.span = self.span.max(index.saturating_add(1));
        }
    }

    /// Frees the slot at `index` (its PDUs stay readable until the slot is taken again).
    fn release(&mut self, index: usize) {
        if let Some(slot) = self.slots.get_mut(index) {
            slot.state = State::Free;
        }
        while let Some(last) = self.span.checked_sub(1) {
            match self.slots.get(last) {
                Some(slot) if slot.state == State::Free => self.span = last,
                _ => break,
            }
        }
    }

    fn request_pdu(&self, index: usize) -> &[u8] {
        let len = self.slots.get(index).map_or(0, |slot| slot.request_len);
        self.requests
            .get(index)
            .and_then(|pdu| pdu.get(..usize::from(len)))
            .unwrap_or_default()
    }

    fn response_pdu(&self, index: usize) -> &[u8] {
        let len = self.slots.get(index).map_or(0, |slot| slot.response_len);
        self.responses
            .get(index)
            .and_then(|pdu| pdu.get(..usize::from(len)))
            .unwrap_or_default()
    }

    /// The slot in a state `wanted` accepts with the lowest sequence number.
    fn oldest(&self, wanted: impl Fn(&State) -> bool) -> Option<usize> {
        self.active()
            .iter()
            .enumerate()
            .filter(|(_, slot)| wanted(&slot.state))
            .min_by_key(|(_, slot)| slot.sequence)
            .map(|(index, _)| index)
    }

    fn bump_sequence(&mut self) -> u32 {
        let sequence = self.next_sequence;
        self.next_sequence = self.next_sequence.wrapping_add(1);
        sequence
    }

    /// Matches one received frame to the request it answers (§3.4) and copies its PDU into
    /// that slot; frames that answer nothing become discard reports.
    ///
    /// `epoch` is the [`Session::epoch`] at which the frame's first byte arrived: a frame begun
    /// before its request went out is bytes left over from earlier (a truncated answer, trailing
    /// junk, an answer sent ahead of time), never the answer, whatever its header says.
    fn handle_frame(
        &mut self,
        discards: &mut Discards,
        pipelined: bool,
        transaction_id: Option<u16>,
        unit_id: u8,
        pdu: &[u8],
        epoch: u64,
    ) {
        let waiting = |slot: &Slot| matches!(slot.state, State::AwaitingResponse { .. });
        let found = match transaction_id {
            Some(transaction_id) => self
                .active()
                .iter()
                .position(|slot| waiting(slot) && slot.wire_id == transaction_id),
            None => self.active().iter().position(waiting),
        };
        let Some((index, slot)) = found.and_then(|index| Some((index, self.slots.get(index)?)))
        else {
            discards.push(match transaction_id {
                Some(transaction_id) => DiscardReason::UnknownTransaction { transaction_id },
                None => DiscardReason::Unsolicited { unit_id },
            });
            return;
        };
        if epoch < slot.sent_epoch {
            discards.push(DiscardReason::StartedBeforeRequest {
                transaction_id: slot.wire_id,
            });
            return;
        }
        if slot.unit_id != unit_id {
            discards.push(DiscardReason::ForeignUnit {
                expected: slot.unit_id,
                actual: unit_id,
            });
            return;
        }
        // With a transaction id the frame is this request's answer whatever it holds: it is
        // decoded once, by `poll_event`, which reports one that does not fit as the server's
        // protocol error (§3.4). Without one, a frame that does not fit is most likely a late
        // answer to an earlier request: drop it and keep waiting for the right one (§8.8).
        if !pipelined {
            let decoded = sent_request(self.request_pdu(index))
                .and_then(|request| Response::decode(pdu, &request).map(|_| ()));
            if let Err(error) = decoded {
                discards.push(DiscardReason::Mismatch(error));
                return;
            }
        }
        let sequence = self.bump_sequence();
        // A decoded PDU is at most MAX_PDU_LEN (253) bytes: it fits the buffer and a `u8`.
        let len = pdu.len().min(MAX_PDU_LEN);
        if let Some(dst) = self
            .responses
            .get_mut(index)
            .and_then(|buffer| buffer.get_mut(..len))
        {
            dst.copy_from_slice(pdu.get(..len).unwrap_or_default());
        }
        if let Some(slot) = self.slots.get_mut(index) {
            slot.response_len = u8::try_from(len).unwrap_or(u8::MAX);
            slot.sequence = sequence;
            slot.state = State::Done(Outcome::Response { unit_id });
        }
    }
}

/// Discard reports waiting for [`Session::poll_event`], oldest first; when the queue is full
/// the oldest is dropped and counted.
#[derive(Debug, Clone)]
struct Discards {
    queue: [Option<DiscardReason>; DISCARD_QUEUE_LEN],
    len: usize,
    dropped: u32,
}

impl Discards {
    const fn new() -> Self {
        Self {
            queue: [None; DISCARD_QUEUE_LEN],
            len: 0,
            dropped: 0,
        }
    }

    fn push(&mut self, reason: DiscardReason) {
        if self.len >= DISCARD_QUEUE_LEN {
            self.queue.rotate_left(1);
            self.len = DISCARD_QUEUE_LEN - 1;
            self.dropped = self.dropped.saturating_add(1);
        }
        if let Some(entry) = self.queue.get_mut(self.len) {
            *entry = Some(reason);
            self.len += 1;
        }
    }

    fn pop(&mut self) -> Option<DiscardReason> {
        if self.len == 0 {
            return None;
        }
        let reason = self.queue.first().copied().flatten();
        self.queue.rotate_left(1);
        if let Some(last) = self.queue.last_mut() {
            *last = None;
        }
        self.len = self.len.saturating_sub(1);
        reason
    }
}

/// The response decoder of the framing.
#[derive(Debug, Clone)]
enum Decoder {
    Tcp(tcp::Decoder),
    Rtu(rtu::Decoder),
    Ascii(ascii::Decoder),
}

impl Decoder {
    fn new(config: &Config) -> Self {
        match config.framing {
            Framing::Tcp => Self::Tcp(tcp::Decoder::new()),
            Framing::RtuOverTcp => Self::Rtu(rtu::Decoder::new(rtu::Config::untimed(
                rtu::Mode::Responses,
            ))),
            Framing::Rtu => Self::Rtu(rtu::Decoder::new(match config.rtu_timing {
                Some(timing) => rtu::Config::client(timing),
                None => rtu::Config::untimed(rtu::Mode::Responses),
            })),
            Framing::Ascii => Self::Ascii(ascii::Decoder::new(ascii::Config::new())),
        }
    }
}

/// Starts `decoder` afresh (the ASCII decoder has no reset of its own).
fn reset_decoder(decoder: &mut Decoder, config: &Config) {
    match decoder {
        Decoder::Tcp(decoder) => decoder.reset(),
        Decoder::Rtu(decoder) => decoder.reset(),
        Decoder::Ascii(_) => *decoder = Decoder::new(config),
    }
}

/// A Modbus client's protocol state for one link: up to `N` outstanding requests.
///
/// # Method groups and call order
///
/// * **Requests**: [`start`](Self::start) queues a request for a unit and returns its
///   [`TransactionId`]; it fails with [`ClientError::Busy`] while the table is full.
/// * **Output**: after `start` (and after [`handle_timeout`](Self::handle_timeout), which may
///   release a retry), call [`poll_transmit`](Self::poll_transmit) until it returns `None` and
///   send each ADU it writes, in order.
/// * **Input**: pass every byte received to [`handle_input`](Self::handle_input) with the time
///   it arrived.
/// * **Time**: sleep (or read with a deadline) until [`poll_timeout`](Self::poll_timeout), then
///   call [`handle_timeout`](Self::handle_timeout) with the current time.
/// * **Connection**: after the link broke and was reopened, call
///   [`handle_disconnect`](Self::handle_disconnect); [`needs_reconnect`](Self::needs_reconnect)
///   says when the session itself found the stream unusable.
/// * **Events**: after any of the calls above, call [`poll_event`](Self::poll_event) until it
///   returns `None`. Each request ends with exactly one event other than
///   [`Event::Discarded`]; its slot is free again once that event has been returned.
///
/// ```
/// use modbus_stack::pdu::{Request, Response};
/// use modbus_stack::frame::Framing;
/// use modbus_stack::session::client::{Config, Event, Session};
/// use modbus_stack::time::Instant;
///
/// let mut session = Session::<4>::new(Config::new(Framing::Tcp));
/// let now = Instant::ZERO;
/// let id = session.start(now, 1, &Request::ReadHoldingRegisters { address: 0x6B, quantity: 1 }).unwrap();
/// let mut adu = [0u8; 260];
/// let len = session.poll_transmit(&mut adu).unwrap();
/// assert_eq!(&adu[..len], &[0, 0, 0, 0, 0, 6, 1, 0x03, 0x00, 0x6B, 0x00, 0x01]);
/// // The server answers 0x1234.
/// session.handle_input(now, &[0, 0, 0, 0, 0, 5, 1, 0x03, 0x02, 0x12, 0x34]);
/// let Some(Event::Response { id: answered, response: Response::ReadHoldingRegisters { values }, .. }) =
///     session.poll_event() else { panic!() };
/// assert_eq!((answered, values.get(0)), (id, Some(0x1234)));
/// ```
#[derive(Debug, Clone)]
pub struct Session<const N: usize> {
    config: Config,
    table: Table<N>,
    decoder: Decoder,
    ids: TransactionIds,
    discards: Discards,
    broken: bool,
    /// Transmissions so far: the clock against which a frame's first byte is placed before or
    /// after the request it would answer.
    epoch: u64,
    /// The epoch in which the first byte of the partial TCP frame the decoder holds arrived.
    partial_epoch: u64,
}

impl<const N: usize> Session<N> {
    /// An idle session. Transaction ids count up from 0 until
    /// [`seed_transaction_ids`](Self::seed_transaction_ids) is called.
    #[must_use]
    pub fn new(config: Config) -> Self {
        Self {
            decoder: Decoder::new(&config),
            config,
            table: Table::new(),
            ids: TransactionIds::SEQUENTIAL,
            discards: Discards::new(),
            broken: false,
            epoch: 0,
            partial_epoch: 0,
        }
    }

    /// Makes the transaction ids of later requests a sequence that `seed` picks among 2³²,
    /// instead of 0, 1, 2, ... Ids that count up let a server (or a gateway replaying stale
    /// buffers) send an answer for a request before it is sent; scattered ids make such an
    /// answer miss. Every id still stays unused until 65 536 requests later. Drivers seed from
    /// whatever randomness they have (the blocking [`Client`](crate::client::Client) does).
    pub fn seed_transaction_ids(&mut self, seed: u32) {
        self.ids = TransactionIds::seeded(seed);
    }

    /// The configuration.
    #[must_use]
    pub const fn config(&self) -> &Config {
        &self.config
    }

    /// Changes timeouts and the retry policy; the framing stays (it takes effect for requests
    /// started afterwards).
    pub fn set_config(&mut self, config: Config) {
        let framing = self.config.framing;
        self.config = Config { framing, ..config };
    }

    /// Requests in the table: queued, in flight, backing off or with an event not yet polled.
    #[must_use]
    pub fn outstanding(&self) -> usize {
        self.table
            .active()
            .iter()
            .filter(|slot| slot.state != State::Free)
            .count()
    }

    /// Discard reports dropped because nobody polled them in time.
    #[must_use]
    pub const fn discards_dropped(&self) -> u32 {
        self.discards.dropped
    }

    /// `true` once the TCP stream lost its framing: close the connection, open a new one, then
    /// call [`handle_disconnect`](Self::handle_disconnect).
    #[must_use]
    pub const fn needs_reconnect(&self) -> bool {
        self.broken
    }

    /// Queues `request` for `unit_id` at `now`; its response timer starts now.
    ///
    /// On framings with broadcast ([`Framing::has_broadcast`]) unit id 0 is a broadcast: it is
    /// sent, never answered, and completes with [`Event::BroadcastDone`] after the turnaround
    /// delay.
    ///
    /// # Errors
    /// [`ClientError::Busy`] when no slot is free (on serial framings: while any request is
    /// outstanding), [`ClientError::InvalidRequest`] when the request breaks the specification's
    /// rules, [`ClientError::BroadcastRead`] for a broadcast that would need an answer.
    pub fn start(
        &mut self,
        now: Instant,
        unit_id: u8,
        request: &Request<'_>,
    ) -> Result<TransactionId, ClientError> {
        let outstanding = self.outstanding();
        if !self.config.framing.can_pipeline() && outstanding > 0 {
            return Err(ClientError::Busy { outstanding });
        }
        let broadcast = self.config.framing.has_broadcast() && unit_id == BROADCAST_UNIT_ID;
        if broadcast && request.is_read_only() {
            return Err(ClientError::BroadcastRead {
                function: request.function(),
            });
        }
        let index = self
            .table
            .free_slot()
            .ok_or(ClientError::Busy { outstanding })?;
        let buffer = self
            .table
            .requests
            .get_mut(index)
            .ok_or(ClientError::Busy { outstanding })?;
        let len = request
            .encode(buffer)
            .map_err(ClientError::InvalidRequest)?;
        // `encode` never writes more than MAX_PDU_LEN (253) bytes into the 253-byte buffer.
        let request_len = u8::try_from(len).map_err(|_| {
            ClientError::InvalidRequest(EncodeError::BufferTooSmall {
                required: len,
                available: MAX_PDU_LEN,
            })
        })?;
        let id = self.free_id();
        let sequence = self.table.bump_sequence();
        let slot = Slot {
            state: State::Queued { ready_at: now },
            id: TransactionId(id),
            wire_id: id,
            sent_epoch: 0,
            unit_id,
            sequence,
            attempts: 0,
            retryable: self.config.retry.may_retry(request),
            broadcast,
            expects_response: request.expects_response(),
            request_len,
            response_len: 0,
        };
        self.table.occupy(index, slot);
        Ok(TransactionId(id))
    }

    /// Writes the next ADU to send into `out` (give it [`Framing::max_adu_len`] bytes) and
    /// returns its length, or `None` when nothing waits to be sent. Requests go out in the order
    /// they were started.
    ///
    /// A request whose ADU does not fit `out` stays queued (and times out); give a large enough
    /// buffer.
    pub fn poll_transmit(&mut self, out: &mut [u8]) -> Option<usize> {
        let framing = self.config.framing;
        let index = self
            .table
            .oldest(|state| matches!(state, State::Queued { .. }))?;
        let slot = *self.table.slots.get(index)?;
        let State::Queued { ready_at } = slot.state else {
            return None;
        };
        // A retry goes out under a fresh id: the earlier attempt's answer may still arrive, and
        // must not pass for this one's (nor may its first bytes, completed by this one's).
        let wire_id = if slot.attempts > 0 && framing == Framing::Tcp {
            self.free_id()
        } else {
            slot.wire_id
        };
        let pdu = self.table.request_pdu(index);
        let len = match framing {
            Framing::Tcp => tcp::encode(wire_id, slot.unit_id, pdu, out),
            Framing::RtuOverTcp | Framing::Rtu => rtu::encode(slot.unit_id, pdu, out),
            Framing::Ascii => ascii::encode(slot.unit_id, pdu, out),
        }
        .ok()?;
        if !framing.can_pipeline() {
            // One request at a time: whatever the decoder holds now arrived before this request
            // and cannot answer it, and leftover garbage must not swallow the real answer.
            reset_decoder(&mut self.decoder, &self.config);
        }
        let state = if slot.broadcast {
            State::Turnaround {
                until: ready_at + self.config.turnaround_delay,
            }
        } else if !slot.expects_response {
            State::Done(Outcome::Sent)
        } else {
            State::AwaitingResponse {
                deadline: ready_at + self.config.response_timeout,
            }
        };
        let sequence = if matches!(state, State::Done(_)) {
            self.table.bump_sequence()
        } else {
            slot.sequence
        };
        self.epoch = self.epoch.wrapping_add(1);
        if let Some(slot) = self.table.slots.get_mut(index) {
            slot.attempts = slot.attempts.saturating_add(1);
            slot.state = state;
            slot.sequence = sequence;
            slot.wire_id = wire_id;
            slot.sent_epoch = self.epoch;
        }
        Some(len)
    }

    /// Takes bytes received at `now`. Complete frames are matched to their requests at once;
    /// the results wait for [`poll_event`](Self::poll_event).
    ///
    /// Only the serial framings ([`Framing::is_serial`]) look at `now`: their decoders time the
    /// silences between characters (t1.5/t3.5 on RTU, the inter-character limit on ASCII). On
    /// TCP framings any instant will do, and a driver may spare itself a clock read.
    pub fn handle_input(&mut self, now: Instant, mut bytes: &[u8]) {
        let epoch = self.epoch;
        // The epoch of the frame at the front of the decoder: a partial frame held from earlier
        // input began when it began; anything after it began with this input.
        let mut front = if self.decoder_is_empty() {
            epoch
        } else {
            self.partial_epoch
        };
        if let Decoder::Tcp(decoder) = &self.decoder {
            // A response usually arrives whole: match it where it lies, not copied into the
            // decoder first.
            let pipelined = self.config.framing.can_pipeline();
            let mut adus = decoder.whole_adus(bytes);
            for adu in &mut adus {
                match adu {
                    Ok(frame) => self.table.handle_frame(
                        &mut self.discards,
                        pipelined,
                        Some(frame.transaction_id()),
                        frame.unit_id(),
                        frame.pdu(),
                        epoch,
                    ),
                    Err(error) => self.discards.push(DiscardReason::Frame(error)),
                }
            }
            bytes = adus.rest();
        }
        loop {
            let accepted = match &mut self.decoder {
                Decoder::Tcp(decoder) => decoder.push(bytes),
                Decoder::Rtu(decoder) => decoder.push(now, bytes),
                Decoder::Ascii(decoder) => decoder.push(now, bytes),
            };
            bytes = bytes.get(accepted..).unwrap_or_default();
            let mut progressed = accepted > 0;
            while let Some(result) = self.take_frame(front) {
                progressed = true;
                front = epoch;
                match result {
                    Ok(()) => {}
                    Err(FrameError::LengthField { length }) => {
                        // The stream cannot be framed any more (§10.4): everything in flight
                        // is lost with it.
                        let error = FrameError::LengthField { length };
                        self.discards.push(DiscardReason::Frame(error));
                        self.broken = true;
                        self.abort_in_flight(now, AbortCause::Frame(error));
                        return;
                    }
                    Err(error) => self.discards.push(DiscardReason::Frame(error)),
                }
            }
            if bytes.is_empty() || !progressed {
                break;
            }
        }
        self.partial_epoch = front;
        if self.config.framing == Framing::Tcp && !self.decoder_is_empty() && !self.awaiting() {
            // Part of a frame that no request in flight can be waiting for: junk after an
            // answer, or an answer sent ahead of its request. Whatever follows it on this
            // stream would be read through it, so the connection must be replaced.
            self.break_stream();
        }
    }

    /// `true` when the TCP decoder holds no part of a frame (always for the other framings,
    /// whose decoders start afresh with each request).
    fn decoder_is_empty(&self) -> bool {
        match &self.decoder {
            Decoder::Tcp(decoder) => decoder.is_empty(),
            Decoder::Rtu(_) | Decoder::Ascii(_) => true,
        }
    }

    /// `true` while some request waits for its response.
    fn awaiting(&self) -> bool {
        self.table
            .active()
            .iter()
            .any(|slot| matches!(slot.state, State::AwaitingResponse { .. }))
    }

    /// The TCP stream holds part of a frame that cannot be completed into an answer: it is
    /// reported and the session asks for a new connection ([`needs_reconnect`]). Requests in
    /// flight are retried or aborted when the driver reports the new connection
    /// ([`handle_disconnect`](Self::handle_disconnect)).
    ///
    /// [`needs_reconnect`]: Self::needs_reconnect
    fn break_stream(&mut self) {
        if let Decoder::Tcp(decoder) = &mut self.decoder {
            let len = decoder.held();
            decoder.reset();
            self.discards
                .push(DiscardReason::Frame(FrameError::Incomplete { len }));
            self.broken = true;
        }
    }

    /// Takes the next complete frame out of the decoder and matches it to its request, reading
    /// the PDU where the decoder holds it; `epoch` is when its first byte arrived. `None` when
    /// no frame is complete.
    fn take_frame(&mut self, epoch: u64) -> Option<Result<(), FrameError>> {
        let pipelined = self.config.framing.can_pipeline();
        let Self {
            decoder,
            table,
            discards,
            ..
        } = self;
        Some(match decoder {
            Decoder::Tcp(decoder) => decoder.poll_frame()?.map(|adu| {
                let transaction_id = Some(adu.transaction_id());
                table.handle_frame(
                    discards,
                    pipelined,
                    transaction_id,
                    adu.unit_id(),
                    adu.pdu(),
                    epoch,
                );
            }),
            Decoder::Rtu(decoder) => decoder.poll_frame()?.map(|adu| {
                table.handle_frame(discards, pipelined, None, adu.unit_id(), adu.pdu(), epoch);
            }),
            Decoder::Ascii(decoder) => decoder.poll_frame()?.map(|adu| {
                table.handle_frame(discards, pipelined, None, adu.unit_id(), adu.pdu(), epoch);
            }),
        })
    }

    /// The earliest time [`handle_timeout`](Self::handle_timeout) has something to do: a
    /// response deadline, the end of a broadcast's turnaround, a retry's backoff, or the
    /// framing's own silence timer.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let slots = self
            .table
            .active()
            .iter()
            .filter_map(|slot| match slot.state {
                State::AwaitingResponse { deadline } => Some(deadline),
                State::Turnaround { until } => Some(until),
                State::Backoff { at } => Some(at),
                State::Free | State::Queued { .. } | State::Done(_) => None,
            });
        let decoder = match &self.decoder {
            Decoder::Tcp(_) => None,
            Decoder::Rtu(decoder) => decoder.poll_timeout(),
            Decoder::Ascii(decoder) => decoder.poll_timeout(),
        };
        slots.chain(decoder).min()
    }

    /// The earliest response deadline of a request awaiting its response. When it equals
    /// [`poll_timeout`](Self::poll_timeout), the next timer due is a response timing out (not a
    /// backoff or turnaround ending), which a driver may enforce by closing the link.
    #[must_use]
    pub fn poll_response_deadline(&self) -> Option<Instant> {
        self.table
            .active()
            .iter()
            .filter_map(|slot| match slot.state {
                State::AwaitingResponse { deadline } => Some(deadline),
                _ => None,
            })
            .min()
    }

    /// Acts on every timer that has expired at `now`: ends frames by silence, times requests
    /// out (retrying them when the policy allows), completes broadcasts, and queues retries
    /// whose backoff has passed (then call [`poll_transmit`](Self::poll_transmit)).
    pub fn handle_timeout(&mut self, now: Instant) {
        match &mut self.decoder {
            Decoder::Tcp(_) => {}
            Decoder::Rtu(decoder) => decoder.handle_timeout(now),
            Decoder::Ascii(decoder) => decoder.handle_timeout(now),
        }
        // A frame the silence completed may answer a request whose deadline is also due.
        self.handle_input(now, &[]);
        let policy = self.config.retry;
        let mut timed_out = false;
        for index in 0..self.table.span {
            let Some(slot) = self.table.slots.get(index) else {
                break;
            };
            let next = match slot.state {
                State::AwaitingResponse { deadline } if now >= deadline => {
                    timed_out = true;
                    if slot.retryable && slot.attempts < policy.max_attempts.max(1) {
                        Some(State::Backoff {
                            at: now + policy.backoff(slot.attempts),
                        })
                    } else {
                        Some(State::Done(Outcome::Timeout))
                    }
                }
                State::Turnaround { until } if now >= until => {
                    Some(State::Done(Outcome::BroadcastDone))
                }
                State::Backoff { at } if now >= at => Some(State::Queued { ready_at: now }),
                _ => None,
            };
            if let Some(next) = next {
                let sequence = self.table.bump_sequence();
                if let Some(slot) = self.table.slots.get_mut(index) {
                    if matches!(next, State::Done(_)) {
                        slot.sequence = sequence;
                    }
                    slot.state = next;
                }
            }
        }
        if !self.decoder_is_empty() && (timed_out || !self.awaiting()) {
            // A response deadline passed while part of a frame was held (a truncated answer,
            // a stalled stream): the rest, if it ever comes, would be read together with the
            // next answer into one spliced frame. Only a new connection is safe.
            self.break_stream();
        }
    }

    /// Tells the session that the connection was lost and a new one is open (or the serial
    /// port was reopened). The decoder starts afresh; requests already sent are sent again
    /// when the retry policy allows (after its backoff), otherwise they end with
    /// [`Event::Aborted`]. Queued requests stay queued.
    pub fn handle_disconnect(&mut self, now: Instant) {
        self.decoder = Decoder::new(&self.config);
        self.broken = false;
        self.abort_in_flight(now, AbortCause::Disconnected);
    }

    /// Retries or aborts every request that was sent and waits for an answer.
    fn abort_in_flight(&mut self, now: Instant, cause: AbortCause) {
        let policy = self.config.retry;
        for index in 0..self.table.span {
            let sequence = self.table.next_sequence;
            let Some(slot) = self.table.slots.get_mut(index) else {
                break;
            };
            if !matches!(slot.state, State::AwaitingResponse { .. }) {
                continue;
            }
            let retry = matches!(cause, AbortCause::Disconnected)
                && slot.retryable
                && slot.attempts < policy.max_attempts.max(1);
            slot.state = if retry {
                State::Backoff {
                    at: now + policy.backoff(slot.attempts),
                }
            } else {
                slot.sequence = sequence;
                self.table.next_sequence = self.table.next_sequence.wrapping_add(1);
                State::Done(Outcome::Aborted(cause))
            };
        }
    }

    /// The next event: first frames discarded, then finished requests in the order they
    /// finished. A finished request's slot is free once its event is returned; the event
    /// borrows the session, so the response stays intact until the event is dropped.
    pub fn poll_event(&mut self) -> Option<Event<'_>> {
        if let Some(reason) = self.discards.pop() {
            return Some(Event::Discarded { reason });
        }
        let index = self.table.oldest(|state| matches!(state, State::Done(_)))?;
        let slot = self.table.slots.get(index)?;
        let State::Done(outcome) = slot.state else {
            return None;
        };
        let (id, attempts) = (slot.id, slot.attempts);
        self.table.release(index);
        let table = &self.table;
        Some(match outcome {
            Outcome::Response { unit_id } => {
                match sent_request(table.request_pdu(index))
                    .and_then(|request| Response::decode(table.response_pdu(index), &request))
                {
                    Ok(response) => Event::Response {
                        id,
                        unit_id,
                        response,
                    },
                    // A TCP answer (matched by transaction id) that does not fit its request;
                    // serial answers were checked when they arrived.
                    Err(error) => Event::InvalidResponse { id, error },
                }
            }
            Outcome::Timeout => Event::Timeout { id, attempts },
            Outcome::BroadcastDone => Event::BroadcastDone { id },
            Outcome::Sent => Event::Sent { id },
            Outcome::Aborted(cause) => Event::Aborted { id, cause },
        })
    }

    /// Forgets a request: it is not sent (again), a late response to it is discarded, and no
    /// event reports it. Returns `false` for an unknown id.
    pub fn cancel(&mut self, id: TransactionId) -> bool {
        match self
            .table
            .active()
            .iter()
            .position(|slot| slot.state != State::Free && slot.id == id)
        {
            Some(index) => {
                self.table.release(index);
                true
            }
            None => false,
        }
    }

    /// The next transaction id not used by an outstanding request, as handle or on the wire
    /// (ids wrap at 0xFFFF, §10.3). The sequence is a permutation of all 65 536 ids, so at most
    /// `2N + 1` draws find one.
    fn free_id(&mut self) -> u16 {
        loop {
            let id = self.ids.next();
            if !self
                .table
                .active()
                .iter()
                .any(|slot| slot.state != State::Free && (slot.id.0 == id || slot.wire_id == id))
            {
                return id;
            }
        }
    }
}

/// The order in which a session hands out transaction ids: a bijection of a 16-bit counter, so
/// no id comes back before all others were used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TransactionIds {
    counter: u16,
    /// `None`: the identity, ids count up. Otherwise the keys of an invertible mix.
    keys: Option<(u16, u16)>,
}

impl TransactionIds {
    const SEQUENTIAL: Self = Self {
        counter: 0,
        keys: None,
    };

    const fn seeded(seed: u32) -> Self {
        let [a, b, c, d] = seed.to_le_bytes();
        Self {
            counter: u16::from_le_bytes([a, c]),
            // An odd multiplier and an additive key: each step of `next` is a bijection of u16.
            keys: Some((u16::from_le_bytes([b, d]) | 1, u16::from_le_bytes([d, a]))),
        }
    }

    fn next(&mut self) -> u16 {
        let counter = self.counter;
        self.counter = self.counter.wrapping_add(1);
        let Some((multiplier, key)) = self.keys else {
            return counter;
        };
        // xor-shift, odd multiply and add are each invertible on u16, so is their chain.
        let mut x = counter.wrapping_mul(multiplier).wrapping_add(key);
        x ^= x >> 7;
        x = x.wrapping_mul(0x2F6B);
        x ^= x >> 9;
        x.wrapping_add(key.rotate_left(5))
    }
}

/// The request a slot holds, decoded again to check its response against. A request sent as
/// [`Request::Custom`] with the code of a public function but data that function forbids (FC 03
/// with quantity 126, to provoke exception 03) does not decode as that function; it is then
/// taken back as the `Custom` request it was, so the server's exception (or any answer with the
/// right function byte) is matched instead of being refused as an invalid response.
fn sent_request(pdu: &[u8]) -> Result<Request<'_>, DecodeError> {
    Request::decode(pdu).or_else(|error| match pdu.split_first() {
        Some((&function, data)) => Ok(Request::Custom {
            function: FunctionCode::from(function),
            data,
        }),
        None => Err(error),
    })
}
#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
mod tests {
    use super::*;
    use crate::pdu::ExceptionCode;
    use std::format;
    use std::vec::Vec;

    const READ: Request<'static> = Request::ReadHoldingRegisters {
        address: 10,
        quantity: 1,
    };
    const WRITE: Request<'static> = Request::WriteSingleRegister {
        address: 10,
        value: 7,
    };

    fn ms(millis: u64) -> Instant {
        Instant::from_millis(millis)
    }

    fn config(framing: Framing) -> Config {
        Config {
            retry: RetryPolicy {
                max_attempts: 3,
                initial_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_millis(150),
                retry_writes: false,
            },
            ..Config::new(framing)
        }
    }

    fn transmit<const N: usize>(session: &mut Session<N>) -> Vec<u8> {
        let mut out = [0u8; 600];
        let len = session.poll_transmit(&mut out).expect("an adu to send");
        out[..len].to_vec()
    }

    fn tcp_response(transaction_id: u16, unit_id: u8, pdu: &[u8]) -> Vec<u8> {
        let mut out = [0u8; 260];
        let len = tcp::encode(transaction_id, unit_id, pdu, &mut out).unwrap();
        out[..len].to_vec()
    }

    fn rtu_response(unit_id: u8, pdu: &[u8]) -> Vec<u8> {
        let mut out = [0u8; 256];
        let len = rtu::encode(unit_id, pdu, &mut out).unwrap();
        out[..len].to_vec()
    }

    /// The register value of the next event, which must be an FC 03 response.
    fn register<const N: usize>(session: &mut Session<N>) -> (TransactionId, u16) {
        match session.poll_event() {
            Some(Event::Response {
                id,
                response: Response::ReadHoldingRegisters { values },
                ..
            }) => (id, values.get(0).unwrap()),
            other => panic!("expected a register response, got {other:?}"),
        }
    }

    #[test]
    fn write_times_out_once_at_its_deadline() {
        let mut session = Session::<4>::new(config(Framing::Tcp));
        let id = session.start(ms(0), 1, &WRITE).unwrap();
        transmit(&mut session);
        assert_eq!(session.poll_timeout(), Some(ms(1000)));
        session.handle_timeout(ms(999));
        assert!(session.poll_event().is_none());
        session.handle_timeout(ms(1000));
        assert_eq!(
            session.poll_event(),
            Some(Event::Timeout { id, attempts: 1 })
        );
        assert_eq!(session.outstanding(), 0);
        assert!(session.poll_timeout().is_none());
    }

    #[test]
    fn read_is_retried_with_capped_exponential_backoff() {
        let mut session = Session::<4>::new(config(Framing::Tcp));
        let id = session.start(ms(0), 1, &READ).unwrap();
        let first = transmit(&mut session);
        session.handle_timeout(ms(1000));
        assert!(session.poll_event().is_none());
        // Backoff after attempt 1: 100 ms.
        assert_eq!(session.poll_timeout(), Some(ms(1100)));
        assert!(session.poll_transmit(&mut [0u8; 260]).is_none());
        session.handle_timeout(ms(1100));
        // The same request goes out again, under a fresh transaction id.
        assert_eq!(transmit(&mut session)[2..], first[2..]);
        assert_eq!(session.poll_timeout(), Some(ms(2100)));
        session.handle_timeout(ms(2100));
        // Backoff after attempt 2: 200 ms, capped at 150 ms.
        assert_eq!(session.poll_timeout(), Some(ms(2250)));
        session.handle_timeout(ms(2250));
        transmit(&mut session);
        session.handle_timeout(ms(3250));
        assert_eq!(
            session.poll_event(),
            Some(Event::Timeout { id, attempts: 3 })
        );
    }

    #[test]
    fn retry_answered_late_completes() {
        let mut session = Session::<1>::new(config(Framing::Rtu));
        session.start(ms(0), 5, &READ).unwrap();
        transmit(&mut session);
        session.handle_timeout(ms(1000));
        session.handle_timeout(ms(1100));
        transmit(&mut session);
        session.handle_input(ms(1150), &rtu_response(5, &[0x03, 0x02, 0x00, 0x2A]));
        assert_eq!(register(&mut session).1, 42);
    }

    #[test]
    fn stale_transaction_is_discarded_and_the_right_one_returned() {
        let mut cfg = config(Framing::Tcp);
        cfg.retry = RetryPolicy::NONE;
        let mut session = Session::<4>::new(cfg);
        let old = session.start(ms(0), 1, &READ).unwrap();
        transmit(&mut session);
        session.handle_timeout(ms(1000));
        assert_eq!(
            session.poll_event(),
            Some(Event::Timeout {
                id: old,
                attempts: 1
            })
        );
        let new = session.start(ms(1000), 1, &READ).unwrap();
        transmit(&mut session);
        let mut bytes = tcp_response(old.0, 1, &[0x03, 0x02, 0xDE, 0xAD]);
        bytes.extend(tcp_response(new.0, 1, &[0x03, 0x02, 0x00, 0x01]));
        session.handle_input(ms(1001), &bytes);
        assert_eq!(
            session.poll_event(),
            Some(Event::Discarded {
                reason: DiscardReason::UnknownTransaction {
                    transaction_id: old.0
                }
            })
        );
        assert_eq!(register(&mut session), (new, 1));
        assert!(session.poll_event().is_none());
    }

    #[test]
    fn pipelined_responses_complete_out_of_order() {
        let mut session = Session::<16>::new(config(Framing::Tcp));
        let ids: Vec<_> = (0..3u16)
            .map(|address| {
                let request = Request::ReadHoldingRegisters {
                    address,
                    quantity: 1,
                };
                session.start(ms(0), 9, &request).unwrap()
            })
            .collect();
        for (i, id) in ids.iter().enumerate() {
            let adu = transmit(&mut session);
            assert_eq!(u16::from_be_bytes([adu[0], adu[1]]), id.0, "request {i}");
        }
        assert!(session.poll_transmit(&mut [0u8; 260]).is_none());
        for &i in &[2usize, 0, 1] {
            let value = u16::try_from(100 + i).unwrap();
            let [hi, lo] = value.to_be_bytes();
            // Split every response in two chunks: TCP is a byte stream.
            let bytes = tcp_response(ids[i].0, 9, &[0x03, 0x02, hi, lo]);
            session.handle_input(ms(5), &bytes[..4]);
            session.handle_input(ms(5), &bytes[4..]);
        }
        assert_eq!(register(&mut session), (ids[2], 102));
        assert_eq!(register(&mut session), (ids[0], 100));
        assert_eq!(register(&mut session), (ids[1], 101));
        assert_eq!(session.outstanding(), 0);
    }

    #[test]
    fn slots_freed_out_of_order_are_reused_and_matching_still_holds() {
        let mut session = Session::<3>::new(config(Framing::Tcp));
        let read = |address| Request::ReadHoldingRegisters {
            address,
            quantity: 1,
        };
        let answer = |session: &mut Session<3>, id: TransactionId, value: u16| {
            let [hi, lo] = value.to_be_bytes();
            session.handle_input(ms(1), &tcp_response(id.0, 9, &[0x03, 0x02, hi, lo]));
        };
        let ids: Vec<_> = (0..3)
            .map(|address| session.start(ms(0), 9, &read(address)).unwrap())
            .collect();
        for _ in &ids {
            transmit(&mut session);
        }
        assert!(matches!(
            session.start(ms(0), 9, &read(9)),
            Err(ClientError::Busy { outstanding: 3 })
        ));
        // Free the last slot, then the first: the table is used from the front again.
        assert!(session.cancel(ids[2]));
        answer(&mut session, ids[0], 10);
        assert_eq!(register(&mut session), (ids[0], 10));
        assert_eq!(session.outstanding(), 1);
        let late = session.start(ms(2), 9, &read(3)).unwrap();
        let last = session.start(ms(2), 9, &read(4)).unwrap();
        assert!(session.start(ms(2), 9, &read(5)).is_err());
        transmit(&mut session);
        transmit(&mut session);
        // The cancelled request's answer is a stray; the others match whatever slot they hold.
        answer(&mut session, ids[2], 12);
        answer(&mut session, last, 14);
        answer(&mut session, ids[1], 11);
        answer(&mut session, late, 13);
        assert_eq!(
            session.poll_event(),
            Some(Event::Discarded {
                reason: DiscardReason::UnknownTransaction {
                    transaction_id: ids[2].0
                }
            })
        );
        assert_eq!(register(&mut session), (last, 14));
        assert_eq!(register(&mut session), (ids[1], 11));
        assert_eq!(register(&mut session), (late, 13));
        assert_eq!(session.poll_event(), None);
        assert_eq!(session.outstanding(), 0);
        assert_eq!(session.poll_timeout(), None);
    }

    #[test]
    fn tcp_input_gives_the_same_events_however_it_is_cut() {
        // Two answers with a foreign-protocol ADU between them, delivered whole, in two pieces
        // cut anywhere, and byte by byte: whole ADUs are matched in place, partial ones go
        // through the decoder, and the events must not tell the difference.
        let run = |chunks: &[&[u8]]| {
            let mut session = Session::<4>::new(config(Framing::Tcp));
            let read = |address| Request::ReadHoldingRegisters {
                address,
                quantity: 1,
            };
            let first = session.start(ms(0), 9, &read(0)).unwrap();
            let second = session.start(ms(0), 9, &read(1)).unwrap();
            transmit(&mut session);
            transmit(&mut session);
            for chunk in chunks {
                session.handle_input(ms(1), chunk);
            }
            let mut events = Vec::new();
            while let Some(event) = session.poll_event() {
                events.push(format!("{event:?}"));
            }
            assert_eq!(session.outstanding(), 0, "{chunks:?}");
            (first, second, events)
        };
        let mut stream = tcp_response(1, 9, &[0x03, 0x02, 0x00, 0x0B]);
        let mut foreign = tcp_response(7, 9, &[0x03, 0x02, 0x00, 0x0C]);
        foreign[3] = 1;
        stream.extend_from_slice(&foreign);
        stream.extend_from_slice(&tcp_response(0, 9, &[0x03, 0x02, 0x00, 0x0A]));
        let (first, second, whole) = run(&[&stream]);
        assert_eq!((first, second), (TransactionId(0), TransactionId(1)));
        assert_eq!(whole.len(), 3, "{whole:?}");
        assert!(whole[0].contains("ProtocolId"), "{whole:?}");
        assert!(whole[1].contains("TransactionId(1)") && whole[1].contains("11"));
        assert!(whole[2].contains("TransactionId(0)") && whole[2].contains("10"));
        for cut in 0..=stream.len() {
            let (head, tail) = stream.split_at(cut);
            assert_eq!(run(&[head, tail]).2, whole, "cut at {cut}");
        }
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(run(&bytes).2, whole);
    }

    #[test]
    fn tcp_mismatch_with_right_transaction_is_invalid() {
        let mut session = Session::<4>::new(config(Framing::Tcp));
        let id = session.start(ms(0), 1, &WRITE).unwrap();
        transmit(&mut session);
        // Echo of another value.
        session.handle_input(
            ms(1),
            &tcp_response(id.0, 1, &[0x06, 0x00, 0x0A, 0x00, 0x08]),
        );
        assert!(matches!(
            session.poll_event(),
            Some(Event::InvalidResponse { id: got, error: DecodeError::EchoMismatch { .. } }) if got == id
        ));
    }

    #[test]
    fn exception_is_a_response() {
        let mut session = Session::<4>::new(config(Framing::Tcp));
        let id = session.start(ms(0), 1, &READ).unwrap();
        transmit(&mut session);
        session.handle_input(ms(1), &tcp_response(id.0, 1, &[0x83, 0x02]));
        let Some(Event::Response { response, .. }) = session.poll_event() else {
            panic!()
        };
        assert_eq!(
            response.exception_code(),
            Some(ExceptionCode::IllegalDataAddress)
        );
    }

    #[test]
    fn custom_request_with_forbidden_data_gets_its_exception() {
        // FC 03 with quantity 126, only expressible as Custom: the server's 03 is an exception
        // response (not an invalid one), on TCP and on a serial line.
        let data = [0x00, 0x00, 0x00, 0x7E];
        let request = Request::Custom {
            function: FunctionCode::ReadHoldingRegisters,
            data: &data,
        };
        for framing in [Framing::Tcp, Framing::Rtu] {
            let mut session = Session::<1>::new(config(framing));
            let id = session.start(ms(0), 1, &request).unwrap();
            transmit(&mut session);
            let adu = if framing == Framing::Tcp {
                tcp_response(id.0, 1, &[0x83, 0x03])
            } else {
                rtu_response(1, &[0x83, 0x03])
            };
            session.handle_input(ms(1), &adu);
            let Some(Event::Response { response, .. }) = session.poll_event() else {
                panic!("{framing:?}: no response event")
            };
            assert_eq!(
                response.exception_code(),
                Some(ExceptionCode::IllegalDataValue)
            );
        }
    }

    #[test]
    fn serial_discards_foreign_unit_crc_error_and_late_answer_then_accepts() {
        let timing = rtu::Timing::for_line(19_200, rtu::Parity::Even, rtu::StopBits::One);
        let mut session = Session::<1>::new(Config {
            rtu_timing: Some(timing),
            ..config(Framing::Rtu)
        });
        session.start(ms(0), 5, &READ).unwrap();
        assert_eq!(
            session.start(ms(0), 5, &READ),
            Err(ClientError::Busy { outstanding: 1 })
        );
        let adu = transmit(&mut session);
        assert_eq!(adu[..2], [5, 0x03]);
        session.handle_input(ms(10), &rtu_response(6, &[0x03, 0x02, 0x00, 0x01]));
        assert_eq!(
            session.poll_event(),
            Some(Event::Discarded {
                reason: DiscardReason::ForeignUnit {
                    expected: 5,
                    actual: 6
                }
            })
        );
        // A late answer to an earlier write: right unit, wrong function.
        session.handle_input(ms(20), &rtu_response(5, &[0x06, 0x00, 0x0A, 0x00, 0x07]));
        assert!(matches!(
            session.poll_event(),
            Some(Event::Discarded {
                reason: DiscardReason::Mismatch(DecodeError::UnexpectedFunction { .. })
            })
        ));
        let mut corrupt = rtu_response(5, &[0x03, 0x02, 0x00, 0x02]);
        let last = corrupt.len() - 1;
        corrupt[last] ^= 0xFF;
        session.handle_input(ms(30), &corrupt);
        // t3.5 of silence ends the corrupted frame.
        session.handle_timeout(ms(35));
        assert!(matches!(
            session.poll_event(),
            Some(Event::Discarded {
                reason: DiscardReason::Frame(_)
            })
        ));
        while session.poll_event().is_some() {}
        session.handle_input(ms(40), &rtu_response(5, &[0x03, 0x02, 0x00, 0x03]));
        let mut value = None;
        while let Some(event) = session.poll_event() {
            if let Event::Response {
                response: Response::ReadHoldingRegisters { values },
                ..
            } = event
            {
                value = values.get(0);
            }
        }
        assert_eq!(value, Some(3));
    }

    #[test]
    fn ascii_round_trip() {
        let mut session = Session::<1>::new(config(Framing::Ascii));
        session.start(ms(0), 1, &READ).unwrap();
        assert_eq!(transmit(&mut session), b":0103000A0001F1\r\n");
        session.handle_input(ms(1), b":010302002AD0\r\n");
        assert_eq!(register(&mut session).1, 42);
    }

    #[test]
    fn broadcast_completes_after_turnaround_without_reply() {
        let mut session = Session::<1>::new(config(Framing::RtuOverTcp));
        assert_eq!(
            session.start(ms(0), 0, &READ),
            Err(ClientError::BroadcastRead {
                function: FunctionCode::ReadHoldingRegisters
            })
        );
        let id = session.start(ms(0), 0, &WRITE).unwrap();
        transmit(&mut session);
        assert_eq!(session.poll_timeout(), Some(ms(100)));
        session.handle_timeout(ms(99));
        assert!(session.poll_event().is_none());
        // The line is still occupied by the broadcast.
        assert!(session.start(ms(99), 1, &READ).is_err());
        session.handle_timeout(ms(100));
        assert_eq!(session.poll_event(), Some(Event::BroadcastDone { id }));
        assert!(session.start(ms(100), 1, &READ).is_ok());
    }

    #[test]
    fn unit_zero_on_tcp_is_an_ordinary_request() {
        let mut session = Session::<4>::new(config(Framing::Tcp));
        let id = session.start(ms(0), 0, &READ).unwrap();
        transmit(&mut session);
        assert_eq!(session.poll_timeout(), Some(ms(1000)));
        session.handle_input(ms(1), &tcp_response(id.0, 0, &[0x03, 0x02, 0x00, 0x05]));
        assert_eq!(register(&mut session), (id, 5));
    }

    #[test]
    fn disconnect_retries_reads_and_aborts_writes() {
        let mut session = Session::<4>::new(config(Framing::Tcp));
        let read = session.start(ms(0), 1, &READ).unwrap();
        let write = session.start(ms(0), 1, &WRITE).unwrap();
        transmit(&mut session);
        transmit(&mut session);
        session.handle_disconnect(ms(10));
        assert_eq!(
            session.poll_event(),
            Some(Event::Aborted {
                id: write,
                cause: AbortCause::Disconnected
            })
        );
        assert!(session.poll_event().is_none());
        session.handle_timeout(ms(110));
        let retry = transmit(&mut session);
        session.handle_input(
            ms(120),
            &tcp_response(wire_id(&retry), 1, &[0x03, 0x02, 0x00, 0x09]),
        );
        assert_eq!(register(&mut session), (read, 9));
    }

    #[test]
    fn broken_mbap_length_aborts_and_asks_for_reconnect() {
        let mut session = Session::<4>::new(config(Framing::Tcp));
        let id = session.start(ms(0), 1, &READ).unwrap();
        transmit(&mut session);
        session.handle_input(ms(1), &[0, 0, 0, 0, 0x01, 0x00, 1, 3]);
        assert!(session.needs_reconnect());
        assert!(matches!(
            session.poll_event(),
            Some(Event::Discarded {
                reason: DiscardReason::Frame(FrameError::LengthField { .. })
            })
        ));
        assert!(matches!(session.poll_event(), Some(Event::Aborted { id: got, .. }) if got == id));
        session.handle_disconnect(ms(2));
        assert!(!session.needs_reconnect());
    }

    #[test]
    fn no_response_request_completes_when_sent() {
        let mut session = Session::<1>::new(config(Framing::Rtu));
        let request = Request::Diagnostics(crate::pdu::DiagnosticsRequest::ForceListenOnlyMode);
        let id = session.start(ms(0), 3, &request).unwrap();
        transmit(&mut session);
        assert_eq!(session.poll_event(), Some(Event::Sent { id }));
    }

    #[test]
    fn transaction_ids_skip_outstanding_ones_and_wrap() {
        let mut session = Session::<2>::new(config(Framing::Tcp));
        session.ids.counter = u16::MAX;
        assert_eq!(session.start(ms(0), 1, &READ), Ok(TransactionId(u16::MAX)));
        assert_eq!(session.start(ms(0), 1, &READ), Ok(TransactionId(0)));
        assert_eq!(
            session.start(ms(0), 1, &READ),
            Err(ClientError::Busy { outstanding: 2 })
        );
        assert!(session.cancel(TransactionId(0)));
        session.ids.counter = u16::MAX;
        // u16::MAX is still outstanding.
        assert_eq!(session.start(ms(0), 1, &READ), Ok(TransactionId(0)));
    }

    #[test]
    fn seeded_transaction_ids_are_a_permutation() {
        for seed in [1, 0xDEAD_BEEF, u32::MAX] {
            let mut ids = TransactionIds::seeded(seed);
            let mut seen = std::vec![false; 65_536];
            let first = ids.next();
            seen[usize::from(first)] = true;
            let mut steps_of_one = 0;
            let mut previous = first;
            for _ in 1..65_536 {
                let id = ids.next();
                assert!(!seen[usize::from(id)], "seed {seed:#x}: {id} came twice");
                seen[usize::from(id)] = true;
                steps_of_one += usize::from(id == previous.wrapping_add(1));
                previous = id;
            }
            // Not a counter in disguise: an answer for "the next id" almost never fits.
            assert!(
                steps_of_one < 64,
                "seed {seed:#x}: {steps_of_one} steps of +1"
            );
        }
    }

    /// The MBAP transaction id of an ADU.
    fn wire_id(adu: &[u8]) -> u16 {
        u16::from_be_bytes([adu[0], adu[1]])
    }

    #[test]
    fn a_retry_goes_out_under_a_fresh_transaction_id_and_the_old_one_is_refused() {
        let mut session = Session::<4>::new(config(Framing::Tcp));
        let id = session.start(ms(0), 1, &READ).unwrap();
        let first = transmit(&mut session);
        assert_eq!(wire_id(&first), id.0);
        session.handle_timeout(ms(1000));
        session.handle_timeout(ms(1100));
        let retry = transmit(&mut session);
        assert_ne!(wire_id(&retry), id.0);
        assert_eq!(first[2..], retry[2..], "the same request otherwise");
        // The first attempt's answer comes late: refused, the retry's is taken.
        session.handle_input(ms(1150), &tcp_response(id.0, 1, &[0x03, 0x02, 0xBA, 0xD0]));
        session.handle_input(
            ms(1160),
            &tcp_response(wire_id(&retry), 1, &[0x03, 0x02, 0x00, 0x07]),
        );
        assert_eq!(
            session.poll_event(),
            Some(Event::Discarded {
                reason: DiscardReason::UnknownTransaction {
                    transaction_id: id.0
                }
            })
        );
        // The event carries the id `start` returned.
        assert_eq!(register(&mut session), (id, 7));
    }

    #[test]
    fn a_frame_begun_before_its_request_was_sent_is_never_its_answer() {
        // Sequential ids: the next request's id is known in advance. Part of a frame with that
        // id arrives while the first request waits; the second request goes out; the second's
        // real answer then completes the early part.
        let mut session = Session::<4>::new(config(Framing::Tcp));
        let first = session.start(ms(0), 1, &READ).unwrap();
        transmit(&mut session);
        let forged = tcp_response(first.0 + 1, 1, &[0x03, 0x04, 0xEE, 0xEE, 0xEE, 0xEE]);
        session.handle_input(ms(1), &forged[..9]);
        assert!(!session.needs_reconnect(), "the first request still waits");
        let second = session.start(ms(2), 1, &READ).unwrap();
        assert_eq!(second.0, first.0 + 1);
        transmit(&mut session);
        let answer = tcp_response(second.0, 1, &[0x03, 0x02, 0x00, 0x2A]);
        session.handle_input(ms(3), &answer);
        let mut events = Vec::new();
        while let Some(event) = session.poll_event() {
            events.push(format!("{event:?}"));
        }
        assert!(
            events.iter().any(|e| e.contains("StartedBeforeRequest")),
            "{events:?}"
        );
        assert!(!events.iter().any(|e| e.contains("Response")), "{events:?}");
    }

    #[test]
    fn part_of_a_frame_held_at_a_response_deadline_asks_for_a_new_connection() {
        let mut session = Session::<4>::new(config(Framing::Tcp));
        let id = session.start(ms(0), 1, &READ).unwrap();
        transmit(&mut session);
        let answer = tcp_response(id.0, 1, &[0x03, 0x02, 0x12, 0x34]);
        session.handle_input(ms(5), &answer[..8]);
        session.handle_timeout(ms(999));
        assert!(!session.needs_reconnect());
        session.handle_timeout(ms(1000));
        assert!(session.needs_reconnect());
        assert_eq!(
            session.poll_event(),
            Some(Event::Discarded {
                reason: DiscardReason::Frame(FrameError::Incomplete { len: 8 })
            })
        );
        // The driver reconnects; the read is retried on the new connection and answered.
        session.handle_disconnect(ms(1001));
        assert!(!session.needs_reconnect());
        session.handle_timeout(ms(1100));
        let retry = transmit(&mut session);
        session.handle_input(
            ms(1110),
            &tcp_response(wire_id(&retry), 1, &[0x03, 0x02, 0x00, 0x05]),
        );
        assert_eq!(register(&mut session), (id, 5));
    }

    #[test]
    fn part_of_a_frame_nobody_waits_for_asks_for_a_new_connection() {
        let mut session = Session::<4>::new(config(Framing::Tcp));
        let id = session.start(ms(0), 1, &READ).unwrap();
        transmit(&mut session);
        let mut bytes = tcp_response(id.0, 1, &[0x03, 0x02, 0x00, 0x01]);
        bytes.extend_from_slice(&[0x00, 0x07, 0x00]);
        session.handle_input(ms(1), &bytes);
        assert!(session.needs_reconnect());
        assert_eq!(
            session.poll_event(),
            Some(Event::Discarded {
                reason: DiscardReason::Frame(FrameError::Incomplete { len: 3 })
            })
        );
        assert_eq!(register(&mut session), (id, 1));
    }

    #[test]
    fn invalid_request_is_rejected() {
        let mut session = Session::<1>::new(config(Framing::Tcp));
        let request = Request::ReadHoldingRegisters {
            address: 0,
            quantity: 126,
        };
        assert!(matches!(
            session.start(ms(0), 1, &request),
            Err(ClientError::InvalidRequest(_))
        ));
        assert_eq!(session.outstanding(), 0);
    }
}
