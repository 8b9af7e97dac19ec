//! The IO loop of one socket, the same on every runtime: it moves bytes and readiness between
//! the [`Transport`] and the core's [`Driver`], following the core's driving contract.

use std::cell::RefCell;
use std::future::poll_fn;
use std::task::{Context, Poll};
use std::time::Instant;

use sansock_core::{CloseAction, Driver};

use crate::runtime::{Timer, Transport};
use crate::setup;

/// One read buffer per runtime thread, shared by all its sockets: an idle socket owns none.
pub const READ_BUFFER: usize = 64 * 1024;
/// Reads per turn, so one busy socket cannot starve the others on its thread.
const READS_PER_TURN: usize = 4;
/// Turns per poll before yielding back to the runtime.
const TURNS_PER_POLL: usize = 16;

thread_local! {
    static READ_BUF: RefCell<Box<[u8]>> = RefCell::new(vec![0; READ_BUFFER].into_boxed_slice());
}

/// Runs the socket until it closes; `open` is dispatched first if it was not already.
pub async fn run<D: Send + 'static, S: Transport, T: Timer>(mut stream: S, mut driver: Driver<D>) {
    // Handlers run in the socket's ref-counting context: a `connect` in one counts there too.
    let mut context = driver.refs();
    crate::context::enter(&mut context, || driver.dispatch());
    let mut timer: Option<(Instant, T)> = None;
    poll_fn(|cx| {
        crate::context::enter(&mut context, || {
            poll_socket(cx, &mut stream, &mut driver, &mut timer)
        })
    })
    .await;
}

fn poll_socket<D: Send + 'static, S: Transport, T: Timer>(
    cx: &mut Context<'_>,
    stream: &mut S,
    driver: &mut Driver<D>,
    timer: &mut Option<(Instant, T)>,
) -> Poll<()> {
    driver.register_waker(cx.waker());
    for _ in 0..TURNS_PER_POLL {
        let now = Instant::now();
        driver.handle_timeout(now);
        let mut progress = false;
        // Read up to `READS_PER_TURN` times. A short read has most likely drained the socket:
        // stop there and write the replies first; the read that must still see would-block (to
        // arm readability) comes after the write, below, in the same turn.
        let mut read_blocked = false;
        let mut short_read = false;
        for _ in 0..READS_PER_TURN {
            if !driver.interest().read {
                break;
            }
            match read_once(cx, stream, driver, now) {
                Read::Blocked => {
                    read_blocked = true;
                    break;
                }
                Read::Data(full) => {
                    if !full {
                        short_read = true;
                        break;
                    }
                }
                Read::Ended => {
                    progress = true;
                    break;
                }
            }
        }
        // Everything the handlers wrote in this turn leaves in one (vectored) write.
        let blocked = driver.transmit(now, |slices| {
            let written = match slices {
                [one] => stream.poll_write(cx, one),
                _ => stream.poll_write_vectored(cx, slices),
            };
            match written {
                Poll::Ready(r) => Some(r),
                Poll::Pending => None,
            }
        });
        if driver.poll_fin(now) {
            if let Err(e) = setup::shutdown_write(stream) {
                driver.handle_io_error(now, &e);
            }
        }
        for option in driver.take_options() {
            setup::apply_option(stream, option);
        }
        if let Some(action) = driver.close_action() {
            if action == CloseAction::Reset {
                setup::reset_on_close(stream);
            }
            return Poll::Ready(());
        }
        // After a short read: the read that arms readability (usually would-block, at no
        // syscall on tokio, which knows a short read drained the socket). Sparing a second
        // turn (clock, timers, driver locks) per wake-up this way matters for small messages.
        if short_read && driver.interest().read {
            match read_once(cx, stream, driver, now) {
                Read::Blocked => read_blocked = true,
                Read::Data(_) | Read::Ended => progress = true,
            }
        }
        let interest = driver.interest();
        // A `drain` handler may have written more: go round again rather than wait for a
        // writability edge that will not come.
        progress |= !blocked && interest.write;
        // Reading is wanted but no read would-block registered the waker (the read budget ran
        // out, or a handler resumed reading): go round again.
        progress |= interest.read && !read_blocked;
        match interest.deadline {
            None => *timer = None,
            Some(deadline) => {
                let t = match timer {
                    Some((at, t)) => {
                        if *at != deadline {
                            *at = deadline;
                            t.reset(deadline);
                        }
                        t
                    }
                    None => &mut timer.insert((deadline, T::at(deadline))).1,
                };
                progress |= t.poll_elapsed(cx).is_ready();
            }
        }
        if !progress {
            return Poll::Pending;
        }
    }
    // Still busy after a full budget: let the other tasks run, then continue.
    cx.waker().wake_by_ref();
    Poll::Pending
}

/// What one read did.
enum Read {
    /// Would block: readability is armed.
    Blocked,
    /// Bytes were handed to the driver; `true` when they filled the buffer (more may wait).
    Data(bool),
    /// End of stream or an error, handed to the driver.
    Ended,
}

/// Reads once into the thread's buffer and feeds the result to the driver.
fn read_once<D: Send + 'static, S: Transport>(
    cx: &mut Context<'_>,
    stream: &mut S,
    driver: &mut Driver<D>,
    now: Instant,
) -> Read {
    READ_BUF.with_borrow_mut(|buf| match stream.poll_read(cx, buf) {
        Poll::Pending => Read::Blocked,
        Poll::Ready(Ok(0)) => {
            driver.handle_eof(now);
            Read::Ended
        }
        Poll::Ready(Ok(n)) => {
            driver.handle_read(now, &mut buf[..n]);
            Read::Data(n == buf.len())
        }
        Poll::Ready(Err(e)) => {
            driver.handle_io_error(now, &e);
            Read::Ended
        }
    })
}
