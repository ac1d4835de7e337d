//! The sans-IO client core: requests in, ADUs out, response bytes in, typed events out.
//!
//! A [`ClientSession`] owns every rule a Modbus client follows between sending a request and handing
//! its answer to the application: framing the request for the chosen [`Framing`], assigning
//! transaction ids, keeping each outstanding request's encoded PDU so that the response can be
//! decoded against it ([`Response::decode`]), matching responses by transaction id, unit id and
//! function (`modbus-reference.md` §3.4, §10.3), discarding stale, foreign and corrupted frames
//! while the response timer keeps running (§8.8), completing broadcasts after a turnaround delay
//! instead of waiting for a reply that never comes (§8.9), and the retry schedule (attempts,
//! exponential backoff with a cap). The driver around it only moves bytes and sleeps until
//! [`ClientSession::poll_timeout`].
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
use core::time::Duration;

use crate::error::{DecodeError, EncodeError, FrameError};
use crate::frame::{self, Framing, Role, ascii, rtu, tcp};
use crate::pdu::{BulkRead, FunctionCode, MAX_PDU_LEN, Request, Response};
use crate::time::Instant;

mod retry;
mod table;
#[cfg(test)]
mod tests;

pub use retry::RetryPolicy;
use table::{Discards, Outcome, Slot, State, Table, TransactionIds};

/// Unit id of a broadcast on a serial line (and on RTU over TCP, which carries serial ADUs).
pub const BROADCAST_UNIT_ID: u8 = 0;

/// Configuration of a [`ClientSession`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientConfig {
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

impl ClientConfig {
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

/// Identifies one request of a [`ClientSession`]. On Modbus TCP it is the MBAP transaction id; on
/// serial framings it is a local counter that never goes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TransactionId(pub u16);

impl fmt::Display for TransactionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// Why [`ClientSession::start`] did not accept a request.
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
    /// The driver reported a lost connection ([`ClientSession::handle_disconnect`]) and the request
    /// may not be retried.
    Disconnected,
    /// The TCP byte stream lost its framing (an MBAP length field outside 2..=254, §10.4): the
    /// connection must be closed and opened again.
    Frame(FrameError),
}

/// What happened to the requests of a [`ClientSession`], from [`ClientSession::poll_event`].
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

/// The response decoder for `config`'s framing.
fn response_decoder(config: &ClientConfig) -> frame::Decoder {
    match (config.framing, config.rtu_timing) {
        (Framing::Rtu, Some(timing)) => rtu::Decoder::new(rtu::Config::client(timing)).into(),
        (framing, _) => frame::Decoder::new(framing, Role::Response),
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
/// use modbus_stack::session::client::{ClientConfig, Event, ClientSession};
/// use modbus_stack::time::Instant;
///
/// let mut session = ClientSession::<4>::new(ClientConfig::new(Framing::Tcp));
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
pub struct ClientSession<const N: usize> {
    config: ClientConfig,
    table: Table<N>,
    decoder: frame::Decoder,
    ids: TransactionIds,
    discards: Discards,
    broken: bool,
    /// Transmissions so far: the clock against which a frame's first byte is placed before or
    /// after the request it would answer.
    epoch: u64,
    /// The epoch in which the first byte of the partial TCP frame the decoder holds arrived.
    partial_epoch: u64,
}

impl<const N: usize> ClientSession<N> {
    /// An idle session. Transaction ids count up from 0 until
    /// [`seed_transaction_ids`](Self::seed_transaction_ids) is called.
    #[must_use]
    pub fn new(config: ClientConfig) -> Self {
        Self {
            decoder: response_decoder(&config),
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
    pub const fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// Changes timeouts and the retry policy; the framing stays (it takes effect for requests
    /// started afterwards).
    pub fn set_config(&mut self, config: ClientConfig) {
        let framing = self.config.framing;
        self.config = ClientConfig { framing, ..config };
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
            bulk: BulkRead::of(request),
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
    #[must_use = "the request written must be sent"]
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
            self.decoder.reset();
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
    pub fn handle_input(&mut self, now: Instant, bytes: &[u8]) {
        let epoch = self.epoch;
        // The epoch of the frame at the front of the decoder: a partial frame held from earlier
        // input began when it began; anything after it began with this input.
        let mut front = if self.decoder_is_empty() {
            epoch
        } else {
            self.partial_epoch
        };
        let pipelined = self.config.framing.can_pipeline();
        let mut lost_framing = None;
        let mut frames = self.decoder.frames(now, bytes);
        while let Some(result) = frames.next() {
            match result {
                Ok(frame) => self.table.handle_frame(
                    &mut self.discards,
                    pipelined,
                    frame.transaction_id,
                    frame.unit_id,
                    frame.pdu,
                    front,
                ),
                Err(error) => {
                    self.discards.push(DiscardReason::Frame(error));
                    if matches!(error, FrameError::LengthField { .. }) {
                        lost_framing = Some(error);
                        break;
                    }
                }
            }
            front = epoch;
        }
        if let Some(error) = lost_framing {
            // The stream cannot be framed any more (§10.4): everything in flight is lost with
            // it.
            self.broken = true;
            self.abort_in_flight(now, AbortCause::Frame(error));
            return;
        }
        self.partial_epoch = front;
        if self.config.framing == Framing::Tcp && !self.decoder_is_empty() && !self.awaiting() {
            // Part of a frame that no request in flight can be waiting for: junk after an
            // answer, or an answer sent ahead of its request. Whatever follows it on this
            // stream would be read through it, so the connection must be replaced.
            self.break_stream();
        }
    }

    /// `true` when the decoder holds no part of a Modbus TCP frame (always for the other
    /// framings, whose decoders start afresh with each request).
    fn decoder_is_empty(&self) -> bool {
        self.decoder.held() == 0
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
        let len = self.decoder.held();
        self.decoder.reset();
        self.discards
            .push(DiscardReason::Frame(FrameError::Incomplete { len }));
        self.broken = true;
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
        slots.chain(self.decoder.poll_timeout()).min()
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
        self.decoder.handle_timeout(now);
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
        self.decoder.reset();
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
    #[must_use = "a finished request's event is returned once; its slot is freed"]
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
                match table.decode_response(index, table.response_pdu(index)) {
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
