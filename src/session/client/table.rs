//! The request slots of a client session: their states, the buffers of their PDUs, matching a
//! received frame to the request it answers, the discard reports, and the order of
//! transaction ids.

use crate::error::DecodeError;
use crate::pdu::{BulkRead, FunctionCode, MAX_PDU_LEN, Request, Response};
use crate::time::Instant;

use super::{AbortCause, DiscardReason, TransactionId};

/// How many [`DiscardReason`]s wait for [`ClientSession::poll_event`] before the oldest is
/// dropped.
///
/// [`ClientSession::poll_event`]: super::ClientSession::poll_event
const DISCARD_QUEUE_LEN: usize = 4;

/// Where a slot's request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum State {
    Free,
    /// Waiting for [`ClientSession::poll_transmit`]; the response timer started at `ready_at`.
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
    /// Finished; the event waits for [`ClientSession::poll_event`].
    Done(Outcome),
}

/// How a request finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
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
pub(super) struct Slot {
    pub(super) state: State,
    pub(super) id: TransactionId,
    /// The transaction id of the attempt on the wire: `id` for the first, a fresh one for each
    /// retry, so that a late answer to an earlier attempt cannot pass for the retry's.
    pub(super) wire_id: u16,
    /// [`ClientSession::epoch`] right after this attempt was sent: a frame whose first byte arrived
    /// earlier cannot answer it.
    pub(super) sent_epoch: u64,
    pub(super) unit_id: u8,
    /// Order of `start` (for transmit order) and then of completion (for event order).
    pub(super) sequence: u32,
    pub(super) attempts: u32,
    pub(super) retryable: bool,
    pub(super) broadcast: bool,
    pub(super) expects_response: bool,
    pub(super) request_len: u8,
    pub(super) response_len: u8,
    /// The request's bulk-read shape, kept so its answer decodes without decoding the request
    /// again; `None` for other requests.
    pub(super) bulk: Option<BulkRead>,
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
        bulk: None,
    };
}

/// The request slots: bookkeeping, the encoded request PDUs and room for the responses, all
/// indexed alike.
///
/// Requests take the lowest free slot, and every slot from `span` on is free, so scans stop at
/// `span`: one slot for a client that waits for each answer, however large `N` is.
#[derive(Debug, Clone)]
pub(super) struct Table<const N: usize> {
    pub(super) slots: [Slot; N],
    pub(super) span: usize,
    pub(super) requests: [[u8; MAX_PDU_LEN]; N],
    pub(super) responses: [[u8; MAX_PDU_LEN]; N],
    pub(super) next_sequence: u32,
}

impl<const N: usize> Table<N> {
    pub(super) const fn new() -> Self {
        Self {
            slots: [Slot::EMPTY; N],
            span: 0,
            requests: [[0; MAX_PDU_LEN]; N],
            responses: [[0; MAX_PDU_LEN]; N],
            next_sequence: 0,
        }
    }

    /// The slots that may be taken (every slot beyond is free).
    pub(super) fn active(&self) -> &[Slot] {
        self.slots.get(..self.span).unwrap_or(&self.slots)
    }

    /// The lowest free slot.
    pub(super) fn free_slot(&self) -> Option<usize> {
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
    pub(super) fn occupy(&mut self, index: usize, slot: Slot) {
        if let Some(entry) = self.slots.get_mut(index) {
            *entry = slot;
            self.span = self.span.max(index.saturating_add(1));
        }
    }

    /// Frees the slot at `index` (its PDUs stay readable until the slot is taken again).
    pub(super) fn release(&mut self, index: usize) {
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

    /// `pdu` decoded against the request in slot `index`: straight from the slot's bulk-read
    /// shape when the answer is a well-formed bulk read, else against the request decoded from
    /// the slot's bytes (which also names any error in decision order).
    pub(super) fn decode_response<'a>(
        &self,
        index: usize,
        pdu: &'a [u8],
    ) -> Result<Response<'a>, DecodeError> {
        let bulk = self.slots.get(index).and_then(|slot| slot.bulk);
        if let Some(response) = bulk.and_then(|bulk| Response::decode_bulk(pdu, bulk)) {
            return Ok(response);
        }
        sent_request(self.request_pdu(index)).and_then(|request| Response::decode(pdu, &request))
    }

    pub(super) fn request_pdu(&self, index: usize) -> &[u8] {
        let len = self.slots.get(index).map_or(0, |slot| slot.request_len);
        self.requests
            .get(index)
            .and_then(|pdu| pdu.get(..usize::from(len)))
            .unwrap_or_default()
    }

    pub(super) fn response_pdu(&self, index: usize) -> &[u8] {
        let len = self.slots.get(index).map_or(0, |slot| slot.response_len);
        self.responses
            .get(index)
            .and_then(|pdu| pdu.get(..usize::from(len)))
            .unwrap_or_default()
    }

    /// The slot in a state `wanted` accepts with the lowest sequence number.
    pub(super) fn oldest(&self, wanted: impl Fn(&State) -> bool) -> Option<usize> {
        self.active()
            .iter()
            .enumerate()
            .filter(|(_, slot)| wanted(&slot.state))
            .min_by_key(|(_, slot)| slot.sequence)
            .map(|(index, _)| index)
    }

    pub(super) fn bump_sequence(&mut self) -> u32 {
        let sequence = self.next_sequence;
        self.next_sequence = self.next_sequence.wrapping_add(1);
        sequence
    }

    /// Matches one received frame to the request it answers (§3.4) and copies its PDU into
    /// that slot; frames that answer nothing become discard reports.
    ///
    /// `epoch` is the [`ClientSession::epoch`] at which the frame's first byte arrived: a frame begun
    /// before its request went out is bytes left over from earlier (a truncated answer, trailing
    /// junk, an answer sent ahead of time), never the answer, whatever its header says.
    pub(super) fn handle_frame(
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
            let decoded = self.decode_response(index, pdu).map(|_| ());
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

/// Discard reports waiting for [`ClientSession::poll_event`], oldest first; when the queue is full
/// the oldest is dropped and counted.
#[derive(Debug, Clone)]
pub(super) struct Discards {
    pub(super) queue: [Option<DiscardReason>; DISCARD_QUEUE_LEN],
    pub(super) len: usize,
    pub(super) dropped: u32,
}

impl Discards {
    pub(super) const fn new() -> Self {
        Self {
            queue: [None; DISCARD_QUEUE_LEN],
            len: 0,
            dropped: 0,
        }
    }

    pub(super) fn push(&mut self, reason: DiscardReason) {
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

    pub(super) fn pop(&mut self) -> Option<DiscardReason> {
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

/// The order in which a session hands out transaction ids: a bijection of a 16-bit counter, so
/// no id comes back before all others were used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct TransactionIds {
    pub(super) counter: u16,
    /// `None`: the identity, ids count up. Otherwise the keys of an invertible mix.
    pub(super) keys: Option<(u16, u16)>,
}

impl TransactionIds {
    pub(super) const SEQUENTIAL: Self = Self {
        counter: 0,
        keys: None,
    };

    pub(super) const fn seeded(seed: u32) -> Self {
        let [a, b, c, d] = seed.to_le_bytes();
        Self {
            counter: u16::from_le_bytes([a, c]),
            // An odd multiplier and an additive key: each step of `next` is a bijection of u16.
            keys: Some((u16::from_le_bytes([b, d]) | 1, u16::from_le_bytes([d, a]))),
        }
    }

    pub(super) fn next(&mut self) -> u16 {
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
