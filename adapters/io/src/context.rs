//! The ref-counting context: which [`RefCounter`] the listeners and sockets made by some code
//! count in, and so which `idle()` waits for them.
//!
//! Each adapter's `run` makes a fresh counter and sets it as the context of everything it
//! runs: its main future, the tasks sansock spawns from there (accept loops, sockets' IO
//! loops, handlers; they inherit it), and, on tokio, every worker thread of its runtime. Two
//! `run`s (two runtimes, tests side by side) therefore never see each other's sockets. Code
//! outside any context (a runtime the user built, a task spawned without [`spawn`]) counts in
//! its adapter's default counter, which that adapter's `idle()` outside `run` waits on.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use sansock_core::RefCounter;

use crate::runtime::Runtime;

thread_local! {
    static CURRENT: RefCell<Option<Arc<RefCounter>>> = const { RefCell::new(None) };
}

/// The counter of the current context, or `R`'s default one outside any.
pub fn refs<R: Runtime>() -> Arc<RefCounter> {
    CURRENT
        .try_with(|c| c.borrow().clone())
        .ok()
        .flatten()
        .unwrap_or_else(|| R::default_refs().clone())
}

/// Runs `f` with the counter in `slot` as the current context, restoring the previous one
/// after (also on unwind). The counter is swapped in and out, not cloned: this runs on every
/// poll of every socket's task.
pub fn enter<T>(slot: &mut Option<Arc<RefCounter>>, f: impl FnOnce() -> T) -> T {
    struct Restore<'a>(&'a mut Option<Arc<RefCounter>>);
    impl Drop for Restore<'_> {
        fn drop(&mut self) {
            let _ = CURRENT.try_with(|c| std::mem::swap(&mut *c.borrow_mut(), self.0));
        }
    }
    let _ = CURRENT.try_with(|c| std::mem::swap(&mut *c.borrow_mut(), slot));
    let _restore = Restore(slot);
    f()
}

/// Sets `refs` as the context of this thread for good (a runtime's worker thread).
pub fn set_thread_context(refs: Option<Arc<RefCounter>>) {
    let _ = CURRENT.try_with(|c| *c.borrow_mut() = refs);
}

/// A future that runs in a context (for futures sansock does not write itself: its own
/// tasks enter their context in their poll function, without this box).
pub struct Scoped<F> {
    refs: Option<Arc<RefCounter>>,
    future: Pin<Box<F>>,
}

impl<F: Future> Scoped<F> {
    /// `future`, polled with `refs` as the current context.
    pub fn new(refs: Arc<RefCounter>, future: F) -> Self {
        Scoped {
            refs: Some(refs),
            future: Box::pin(future),
        }
    }
}

impl<F: Future> Future for Scoped<F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        enter(&mut this.refs, || this.future.as_mut().poll(cx))
    }
}

/// Spawns `future` on `R`, in the current context (so sockets it makes count where the
/// spawner's do).
pub fn spawn<R: Runtime, F: Future<Output = ()> + Send + 'static>(future: F) {
    R::spawn(Scoped::new(refs::<R>(), future));
}

/// What `run` makes of its main future's output: whether it failed (then `run` returns at
/// once, like a process whose script threw, instead of waiting until nothing is referenced).
pub trait RunOutput {
    /// Whether the program failed.
    fn failed(&self) -> bool;
}

impl RunOutput for () {
    fn failed(&self) -> bool {
        false
    }
}

impl<T, E> RunOutput for Result<T, E> {
    fn failed(&self) -> bool {
        self.is_err()
    }
}

/// Runs `future` on `R` in a fresh context, then (unless it failed) until nothing it
/// referenced is left: a Bun process, whose script runs and which then lives while a listener
/// or socket is referenced.
pub fn run<R: Runtime, F: Future>(future: F) -> F::Output
where
    F::Output: RunOutput,
{
    let refs = Arc::new(RefCounter::new());
    let context = refs.clone();
    R::block_on(refs.clone(), async move {
        let output = Scoped::new(context.clone(), future).await;
        if !output.failed() {
            context.idle().await;
        }
        output
    })
}

/// The wait behind an adapter's `idle()`: for the current context's counter, warning when it
/// is empty while other counters of the process are not (sockets made on another adapter or
/// runtime: a runtime switch made in one place only, say).
pub async fn idle<R: Runtime>() {
    let refs = refs::<R>();
    let elsewhere = sansock_core::total_referenced().saturating_sub(refs.count());
    if refs.count() == 0 && elsewhere > 0 {
        tracing::warn!(
            elsewhere,
            "idle() found nothing referenced in its own context while {elsewhere} listeners or \
             sockets are referenced elsewhere (another sansock adapter or runtime): is every \
             call on the same adapter?"
        );
    }
    refs.idle().await
}
