//! The IO loop of one socket: the whole of what this adapter does per connection.

use std::cell::RefCell;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use sansock_core::{CloseAction, Driver};
use tokio::io::ReadBuf;
use tokio::time::Sleep;

use crate::stream::Stream;

/// One read buffer per runtime thread, shared by all its sockets: an idle socket owns none.
const READ_BUFFER: usize = 256 * 1024;
/// Reads per turn, so one busy socket cannot starve the others on its thread.
const READS_PER_TURN: usize = 4;
/// Turns per poll before yielding back to the runtime.
const TURNS_PER_POLL: usize = 16;

thread_local! {
    static READ_BUF: RefCell<Box<[u8]>> = RefCell::new(vec![0; READ_BUFFER].into_boxed_slice());
}

/// Runs the socket until it closes. `open` is dispatched first if it was not already.
pub(crate) async fn run<D: Send + 'static>(mut stream: Stream, mut driver: Driver<D>) {
    driver.dispatch();
    let mut sleep: Option<(Instant, Pin<Box<Sleep>>)> = None;
    poll_fn(|cx| poll_socket(cx, &mut stream, &mut driver, &mut sleep)).await;
}

fn poll_socket<D: Send + 'static>(
    cx: &mut Context<'_>,
    stream: &mut Stream,
    driver: &mut Driver<D>,
    sleep: &mut Option<(Instant, Pin<Box<Sleep>>)>,
) -> Poll<()> {
    driver.register_waker(cx.waker());
    for _ in 0..TURNS_PER_POLL {
        let now = Instant::now();
        driver.handle_timeout(now);
        let mut progress = false;
        for _ in 0..READS_PER_TURN {
            if !driver.interest().read {
                break;
            }
            let more = READ_BUF.with_borrow_mut(|buf| {
                let mut rb = ReadBuf::new(buf);
                match stream.poll_read(cx, &mut rb) {
                    Poll::Pending => return false,
                    Poll::Ready(Ok(())) if rb.filled().is_empty() => driver.handle_eof(now),
                    Poll::Ready(Ok(())) => {
                        let full = rb.remaining() == 0;
                        driver.handle_read(now, rb.filled());
                        // A short read drained the socket (tokio cleared its readiness).
                        progress = true;
                        return full;
                    }
                    Poll::Ready(Err(e)) => driver.handle_io_error(now, &e),
                }
                progress = true;
                false
            });
            if !more {
                break;
            }
        }
        let blocked = driver.transmit(now, |slices| match stream.poll_write_vectored(cx, slices) {
            Poll::Ready(r) => Some(r),
            Poll::Pending => None,
        });
        // A `drain` handler may have written more: go round again rather than wait for a
        // writability edge that will not come.
        progress |= !blocked && driver.interest().write;
        if driver.poll_fin(now) {
            if let Err(e) = sansock_net::shutdown_write(stream) {
                driver.handle_io_error(now, &e);
            }
        }
        for option in driver.take_options() {
            sansock_net::apply_option(stream, option);
        }
        if let Some(action) = driver.close_action() {
            if action == CloseAction::Reset {
                sansock_net::reset_on_close(stream);
            }
            return Poll::Ready(());
        }
        match driver.interest().deadline {
            None => *sleep = None,
            Some(deadline) => {
                let timer = match sleep {
                    Some((at, timer)) if *at == deadline => timer,
                    Some((at, timer)) => {
                        *at = deadline;
                        timer.as_mut().reset(deadline.into());
                        timer
                    }
                    None => {
                        &mut sleep
                            .insert((
                                deadline,
                                Box::pin(tokio::time::sleep_until(deadline.into())),
                            ))
                            .1
                    }
                };
                if timer.as_mut().poll(cx).is_ready() {
                    progress = true;
                }
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
