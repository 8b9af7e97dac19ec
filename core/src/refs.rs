//! ref/unref bookkeeping: counts the referenced listeners and sockets so a program can wait
//! until none is left (Bun keeps the process alive while any exists).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

/// Referenced things across every counter of the process, for diagnostics only (an `idle()`
/// that finds its own counter empty while others are not was probably called on the wrong
/// adapter or runtime).
static TOTAL: AtomicUsize = AtomicUsize::new(0);

/// How many referenced listeners and sockets exist in the whole process, over every counter.
pub fn total_referenced() -> usize {
    TOTAL.load(Ordering::Acquire)
}

/// A count of referenced things, and the tasks waiting for it to reach zero. One belongs to
/// each context that waits (an adapter's `run`, or an adapter's default for code running
/// outside one); listeners and sockets hold it through [`RefGuard`]s.
#[derive(Debug)]
pub struct RefCounter {
    count: AtomicUsize,
    waiters: Mutex<Vec<Waker>>,
}

impl Default for RefCounter {
    fn default() -> Self {
        Self::new()
    }
}

impl RefCounter {
    /// A counter at zero.
    pub const fn new() -> Self {
        RefCounter {
            count: AtomicUsize::new(0),
            waiters: Mutex::new(Vec::new()),
        }
    }

    /// How many referenced things exist now.
    pub fn count(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    /// A referenced guard: counted until dropped or [`RefGuard::set_ref`]`(false)`.
    pub fn acquire(self: &Arc<Self>) -> RefGuard {
        self.add();
        RefGuard {
            counter: self.clone(),
            held: true,
        }
    }

    fn add(&self) {
        TOTAL.fetch_add(1, Ordering::AcqRel);
        self.count.fetch_add(1, Ordering::AcqRel);
    }

    fn release(&self) {
        TOTAL.fetch_sub(1, Ordering::AcqRel);
        if self.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            let waiters =
                std::mem::take(&mut *self.waiters.lock().unwrap_or_else(|e| e.into_inner()));
            for waker in waiters {
                waker.wake();
            }
        }
    }

    /// Resolves once nothing referenced is left.
    pub fn idle(self: &Arc<Self>) -> Idle {
        Idle {
            counter: self.clone(),
        }
    }
}

/// One reference; released on drop.
#[derive(Debug)]
pub struct RefGuard {
    counter: Arc<RefCounter>,
    held: bool,
}

impl RefGuard {
    /// `ref()` (`true`) or `unref()` (`false`); idempotent.
    pub fn set_ref(&mut self, referenced: bool) {
        if referenced == self.held {
            return;
        }
        self.held = referenced;
        if referenced {
            self.counter.add();
        } else {
            self.counter.release();
        }
    }

    /// Whether this guard is counted.
    pub fn is_ref(&self) -> bool {
        self.held
    }

    /// The counter this guard counts in.
    pub fn counter(&self) -> &Arc<RefCounter> {
        &self.counter
    }
}

impl Drop for RefGuard {
    fn drop(&mut self) {
        self.set_ref(false);
    }
}

/// The future returned by [`RefCounter::idle`].
#[derive(Debug)]
pub struct Idle {
    counter: Arc<RefCounter>,
}

impl Future for Idle {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.counter.count() == 0 {
            return Poll::Ready(());
        }
        let mut waiters = self
            .counter
            .waiters
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        // Re-check under the lock: a release between the check and the push would be lost.
        if self.counter.count() == 0 {
            return Poll::Ready(());
        }
        if !waiters.iter().any(|w| w.will_wake(cx.waker())) {
            waiters.push(cx.waker().clone());
        }
        Poll::Pending
    }
}
