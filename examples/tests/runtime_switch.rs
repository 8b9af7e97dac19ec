//! A program written from the docs switches runtime by its one `use` line: the same code is
//! built and run here against every adapter. And each `run` is a context of its own: two at
//! once never wait for each other's sockets.

use std::sync::mpsc;
use std::time::Duration;

/// Runs `f` on a thread; fails the test if it has not returned after `limit`.
fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit)
        .expect("the program did not finish in time")
}

macro_rules! program {
    ($module:ident, $adapter:ident) => {
        mod $module {
            // The whole runtime switch:
            use $adapter as sansock;

            use sansock::{ConnectOptions, Handler, ListenOptions, Socket};
            use std::sync::{Arc, Mutex};

            /// Echo, with the documented backpressure pattern.
            struct Echo;
            impl Handler for Echo {
                type Data = ();
                fn data(&self, socket: &mut Socket<'_, ()>, bytes: &[u8]) {
                    if socket.write(bytes).is_ok_and(|s| s.is_backpressured()) {
                        socket.pause_until_drain();
                    }
                }
            }

            /// Sends five lines, collects what comes back, ends after the fifth.
            struct Hello;
            impl Handler for Hello {
                type Data = Arc<Mutex<Vec<u8>>>;
                fn open(&self, socket: &mut Socket<'_, Self::Data>) {
                    for i in 1..=5 {
                        socket.write(format!("line {i}\n").as_bytes()).ok();
                    }
                }
                fn data(&self, socket: &mut Socket<'_, Self::Data>, bytes: &[u8]) {
                    let (received, out) = socket.parts();
                    let mut received = received.lock().unwrap();
                    received.extend_from_slice(bytes);
                    if received.iter().filter(|&&b| b == b'\n').count() == 5 {
                        out.end();
                    }
                }
            }

            pub fn main() -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
                let received = Arc::new(Mutex::new(Vec::new()));
                let r2 = received.clone();
                sansock::run(async move {
                    let listener =
                        sansock::listen(ListenOptions::tcp("127.0.0.1", 0), Echo).await?;
                    // The server alone does not keep the program alive; the client does.
                    listener.set_ref(false);
                    let port = listener.port().unwrap();
                    sansock::connect(ConnectOptions::tcp("127.0.0.1", port).data(r2), Hello)
                        .await?;
                    Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
                })?;
                // `run` returned: the client closed, so everything came back.
                let received = received.lock().unwrap().clone();
                Ok(String::from_utf8(received)?)
            }

            #[test]
            fn the_same_program_runs() {
                let text = super::within(std::time::Duration::from_secs(30), main).unwrap();
                assert_eq!(text, "line 1\nline 2\nline 3\nline 4\nline 5\n");
            }

            /// A `run` holding a referenced listener does not keep another `run` waiting.
            #[test]
            fn two_runs_at_once_do_not_wait_for_each_other() {
                let (started, listening) = std::sync::mpsc::channel();
                let (stop, stopped) = std::sync::mpsc::channel::<()>();
                let holder = std::thread::spawn(move || {
                    sansock::run(async move {
                        let l = sansock::listen(ListenOptions::tcp("127.0.0.1", 0), Echo).await?;
                        started.send(()).unwrap();
                        // Referenced until the test says stop, from another thread.
                        std::thread::spawn(move || {
                            let _ = stopped.recv();
                            l.stop(true);
                        });
                        Ok::<(), sansock::ListenError>(())
                    })
                });
                listening.recv().unwrap();
                let text = super::within(std::time::Duration::from_secs(30), main).unwrap();
                assert_eq!(text.lines().count(), 5);
                stop.send(()).unwrap();
                holder.join().unwrap().unwrap();
            }
        }
    };
}

program!(on_tokio, sansock_tokio);
program!(on_smol, sansock_smol);
program!(on_async_std, sansock_async_std);
