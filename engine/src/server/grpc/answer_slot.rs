//! A unary call's answer slot: the session's answer sorter fills it once,
//! the call waits on it.
//!
//! One small allocation per call instead of a channel: a unary call gets
//! exactly one answer, or none when the connection closes (the session
//! drops the filler unfilled).

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

struct Slot {
    answer: RefCell<Option<Vec<u8>>>,
    /// The filler is gone: whatever `answer` holds is all there will be.
    done: Cell<bool>,
    waker: Cell<Option<Waker>>,
}

/// A new slot: the side that fills it and the side that waits.
pub fn slot() -> (Filler, Answer) {
    let slot = Rc::new(Slot {
        answer: RefCell::new(None),
        done: Cell::new(false),
        waker: Cell::new(None),
    });
    (Filler(slot.clone()), Answer(slot))
}

/// Fills the slot once; dropped unfilled, it tells the waiter no answer
/// will come.
pub struct Filler(Rc<Slot>);

impl Filler {
    pub fn fill(self, answer: Vec<u8>) {
        *self.0.answer.borrow_mut() = Some(answer);
        // Drop wakes the waiter.
    }
}

impl Drop for Filler {
    fn drop(&mut self) {
        self.0.done.set(true);
        if let Some(w) = self.0.waker.take() {
            w.wake();
        }
    }
}

/// Waits for the answer: `None` if the filler went without one.
pub struct Answer(Rc<Slot>);

impl Future for Answer {
    type Output = Option<Vec<u8>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Vec<u8>>> {
        if let Some(a) = self.0.answer.borrow_mut().take() {
            return Poll::Ready(Some(a));
        }
        if self.0.done.get() {
            return Poll::Ready(None);
        }
        self.0.waker.set(Some(cx.waker().clone()));
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_lite::future::{block_on, poll_once};

    #[test]
    fn a_waiting_call_gets_its_answer() {
        let (fill, answer) = slot();
        let mut answer = Box::pin(answer);
        assert_eq!(block_on(poll_once(&mut answer)), None, "nothing yet");
        fill.fill(vec![7]);
        assert_eq!(block_on(answer), Some(vec![7]));
    }

    #[test]
    fn a_filler_gone_unfilled_ends_the_wait() {
        let (fill, answer) = slot();
        let mut answer = Box::pin(answer);
        assert_eq!(block_on(poll_once(&mut answer)), None, "nothing yet");
        drop(fill);
        assert_eq!(block_on(answer), None);
    }
}
