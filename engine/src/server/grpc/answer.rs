//! The answer-byte budget of a gRPC connection: unary answers paced into
//! HTTP/2.
//!
//! Native connections stop reading requests when their answers hold too
//! much memory (`server/conn/budget.rs`). HTTP/2 reads every stream's
//! frames on one socket, so a gRPC connection applies the same budget one
//! level up: a unary call is admitted (its request read and sent to the
//! shard) only while the connection's budget has room, and its answer is
//! charged until HTTP/2 has taken it. The rest is HTTP/2's to bound:
//!
//! - an answer is handed to HTTP/2 only while the stream's send queue
//!   holds less than `GRPC_STREAM_SEND_BUFFER_BYTES_MAX`, and the queue
//!   drains only as the client's flow-control windows allow; a client that
//!   does not read grants no window, so the answer stays in the call,
//!   charged to the budget, and further calls wait;
//! - a call waiting for room holds its stream's request unread: the
//!   receive windows bound those bytes, and `GRPC_STREAMS_PER_CONN_MAX` the
//!   streams.
//!
//! Streaming calls (Watch, LeaseKeepAlive, Snapshot, Observe) and the
//! Lock and Election recipes are not charged: their writers already wait
//! for send capacity message by message, and a recipe may wait on another
//! call of the same connection (a Lock queued behind an Unlock), which a
//! full budget must never block.

use std::rc::Rc;

use bytes::Bytes;

use crate::server::http2::SendStream;

use crate::server::conn::budget::AnswerBudget;

/// A unary call admitted under the connection's budget: charged at the
/// budget's estimate until its answer is known.
pub struct Ticket {
    budget: Rc<AnswerBudget>,
    settled: bool,
}

impl Ticket {
    /// Wait for room in the budget and take it; `None` once the
    /// connection is closing.
    pub async fn take(budget: &Rc<AnswerBudget>) -> Option<Ticket> {
        budget.until(|| budget.has_room()).await;
        if budget.is_closed() {
            return None;
        }
        budget.admitted(1);
        Some(Ticket {
            budget: budget.clone(),
            settled: false,
        })
    }

    /// The call's answer is `bytes` long: it is charged at its size until
    /// handed to HTTP/2.
    pub fn answered(mut self, bytes: usize) -> Held {
        self.settled = true;
        self.budget.arrived(bytes);
        Held {
            budget: self.budget.clone(),
            bytes,
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        // No answer to send (an error status, a reset stream).
        if !self.settled {
            self.budget.abandoned();
        }
    }
}

/// Answer bytes a call still holds: whatever is left when it goes (sent,
/// or dropped with a reset stream) leaves the budget.
pub struct Held {
    budget: Rc<AnswerBudget>,
    bytes: usize,
}

impl Held {
    fn handed_over(&mut self, n: usize) {
        self.bytes = self.bytes.saturating_sub(n);
        self.budget.written(n);
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.budget.written(self.bytes);
    }
}

/// Hand `msg` to HTTP/2 piece by piece, each as large as the stream's
/// send capacity allows, reporting each piece to `held`. Err when the
/// stream is gone (the rest is dropped).
pub async fn send_paced(
    send: &mut SendStream,
    mut msg: Bytes,
    mut held: Option<Held>,
) -> Result<(), ()> {
    while !msg.is_empty() {
        let room = send.room().await.map_err(|_| ())?;
        let piece = msg.split_to(room.min(msg.len()));
        let n = piece.len();
        send.send_data(piece, false).map_err(|_| ())?;
        if let Some(h) = held.as_mut() {
            h.handed_over(n);
        }
    }
    Ok(())
}
