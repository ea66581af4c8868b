//! A connection's budget of answer bytes: how much of the server's memory
//! the answers to one client may hold while the client does not read them.
//!
//! An answer costs memory from the moment its request is admitted (the
//! shard will produce it, whatever its size) until its last byte is written
//! to the socket. So the budget charges two things:
//!
//! - answers that have reached the connection and are not yet written, at
//!   their exact size (`queued_bytes`);
//! - requests admitted whose answers have not reached the connection yet,
//!   each at an estimate of the answer size: the largest recent answer,
//!   decaying by `1/CONN_ANSWER_ESTIMATE_DECAY_DIVISOR` with every smaller
//!   one. A new connection starts with the estimate at the whole budget,
//!   so its first request goes alone and its window opens as small answers
//!   come back (a few dozen of them open it fully).
//!
//! The connection admits another request only while that charge is under
//! [`CONN_QUEUED_ANSWER_BYTES_MAX`]; otherwise it stops reading requests
//! until written answers bring it back under. The cap is checked before a
//! request is admitted, never against one answer: an answer larger than
//! the whole budget is still produced and delivered, alone.
//!
//! The estimate is learned, so a client whose answers suddenly grow (after
//! many small ones have opened the window) can have one window of large
//! answers in flight; the in-flight count limit still bounds that.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::task::{Poll, Waker};

use crate::limits::{CONN_ANSWER_ESTIMATE_DECAY_DIVISOR, CONN_QUEUED_ANSWER_BYTES_MAX};

/// One connection's answer bytes (single-threaded: the connection's
/// executor owns it).
pub struct AnswerBudget {
    /// Answers that reached the connection and are not yet written.
    queued_bytes: Cell<usize>,
    /// Requests admitted whose answers have not reached the connection.
    unanswered: Cell<usize>,
    /// What each unanswered request is charged.
    estimate_bytes: Cell<usize>,
    /// The connection can no longer write: nobody should wait for room.
    closed: Cell<bool>,
    /// Tasks waiting for room.
    waiters: RefCell<Vec<Waker>>,
}

impl Default for AnswerBudget {
    fn default() -> Self {
        Self::new()
    }
}

impl AnswerBudget {
    pub fn new() -> Self {
        AnswerBudget {
            queued_bytes: Cell::new(0),
            unanswered: Cell::new(0),
            estimate_bytes: Cell::new(CONN_QUEUED_ANSWER_BYTES_MAX),
            closed: Cell::new(false),
            waiters: RefCell::new(Vec::new()),
        }
    }

    /// The bytes the connection's answers hold or will hold, as estimated.
    pub fn charge_bytes(&self) -> usize {
        self.unanswered
            .get()
            .saturating_mul(self.estimate_bytes.get())
            .saturating_add(self.queued_bytes.get())
    }

    /// Whether another request may be admitted now (always, once closed:
    /// the connection is ending and its reader must not hang).
    pub fn has_room(&self) -> bool {
        self.closed.get() || self.charge_bytes() < CONN_QUEUED_ANSWER_BYTES_MAX
    }

    pub fn is_closed(&self) -> bool {
        self.closed.get()
    }

    /// `n` requests were admitted; each will be answered exactly once
    /// ([`arrived`](Self::arrived)) or given up ([`abandoned`](Self::abandoned)).
    pub fn admitted(&self, n: usize) {
        self.unanswered.set(self.unanswered.get() + n);
    }

    /// An answer of `bytes` reached the connection.
    pub fn arrived(&self, bytes: usize) {
        self.settle_one();
        self.queued_bytes.set(self.queued_bytes.get() + bytes);
        let estimate = self.estimate_bytes.get();
        let decayed = estimate - estimate / CONN_ANSWER_ESTIMATE_DECAY_DIVISOR;
        self.estimate_bytes.set(bytes.max(decayed));
        self.wake_if_room();
    }

    /// An admitted request will never have its answer queued here (its
    /// call was given up).
    pub fn abandoned(&self) {
        self.settle_one();
        self.wake_if_room();
    }

    /// `bytes` went out on the socket. Callers that cannot tell answers
    /// from other bytes may report more than was queued: the count stays
    /// at zero, so it can only under-charge, never wedge the connection.
    pub fn written(&self, bytes: usize) {
        self.queued_bytes
            .set(self.queued_bytes.get().saturating_sub(bytes));
        self.wake_if_room();
    }

    /// The connection cannot write any more: wake every waiter for good.
    pub fn close(&self) {
        self.closed.set(true);
        self.wake_all();
    }

    /// Wake waiters whose condition may depend on something besides the
    /// budget (the reader's in-flight count).
    pub fn wake_all(&self) {
        for w in self.waiters.borrow_mut().drain(..) {
            w.wake();
        }
    }

    /// Wait until `ready()` holds; it is checked again whenever the budget
    /// wakes its waiters.
    pub async fn until(&self, ready: impl Fn() -> bool) {
        poll_fn(|cx| {
            if ready() {
                return Poll::Ready(());
            }
            let mut waiters = self.waiters.borrow_mut();
            if !waiters.iter().any(|w| w.will_wake(cx.waker())) {
                waiters.push(cx.waker().clone());
            }
            Poll::Pending
        })
        .await;
    }

    fn settle_one(&self) {
        let n = self.unanswered.get();
        assert!(n > 0, "an answer arrived for a request never admitted");
        self.unanswered.set(n - 1);
    }

    fn wake_if_room(&self) {
        if self.has_room() {
            self.wake_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAP: usize = CONN_QUEUED_ANSWER_BYTES_MAX;

    #[test]
    fn a_new_connection_admits_one_request_then_waits_for_its_answer() {
        let b = AnswerBudget::new();
        assert!(b.has_room());
        b.admitted(1);
        assert!(!b.has_room(), "the first answer's size is unknown");
        b.arrived(100);
        assert!(b.has_room());
    }

    #[test]
    fn small_answers_open_the_window() {
        let b = AnswerBudget::new();
        for _ in 0..200 {
            b.admitted(1);
            b.arrived(100);
            b.written(100);
        }
        b.admitted(1000);
        assert!(
            b.has_room(),
            "charge {} after small answers",
            b.charge_bytes()
        );
    }

    #[test]
    fn queued_bytes_over_the_cap_stop_admission_until_written() {
        let b = AnswerBudget::new();
        b.admitted(1);
        // One answer larger than the whole budget is still taken.
        b.arrived(2 * CAP);
        assert!(!b.has_room());
        b.written(CAP);
        assert!(!b.has_room(), "a full budget has no room");
        b.written(1);
        assert!(b.has_room());
        b.written(CAP - 1);
        // Large answers keep the estimate: one request at a time.
        b.admitted(1);
        assert!(!b.has_room());
    }

    #[test]
    fn over_reported_writes_never_wedge_the_budget() {
        let b = AnswerBudget::new();
        b.written(1 << 20);
        b.admitted(1);
        b.arrived(10);
        b.written(1 << 30);
        assert_eq!(b.charge_bytes(), 0);
        assert!(b.has_room());
    }

    #[test]
    fn an_abandoned_request_frees_its_charge() {
        let b = AnswerBudget::new();
        b.admitted(1);
        assert!(!b.has_room());
        b.abandoned();
        assert!(b.has_room());
    }

    #[test]
    fn a_closed_budget_never_holds_a_reader() {
        let b = AnswerBudget::new();
        b.admitted(1);
        b.arrived(CAP * 4);
        assert!(!b.has_room());
        b.close();
        assert!(b.has_room() && b.is_closed());
    }

    #[test]
    #[should_panic(expected = "never admitted")]
    fn an_answer_without_a_request_is_a_bug() {
        AnswerBudget::new().arrived(1);
    }
}
