//! What dropping a tokio runtime does to its sockets. Alone in its binary: the ref count is
//! process-wide, so no other test may run beside it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sansock_tokio::{listen, CloseError, Handler, ListenOptions, Socket};

struct RecordClose(Arc<Mutex<Vec<Option<CloseError>>>>);

impl Handler for RecordClose {
    type Data = ();
    fn close(&self, _: &mut Socket<'_, ()>, error: Option<&CloseError>) {
        self.0.lock().unwrap().push(error.cloned());
    }
}

#[test]
fn dropping_the_runtime_closes_its_sockets_and_releases_every_reference() {
    let closes = Arc::new(Mutex::new(Vec::new()));
    let peer = Mutex::new(None);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt.block_on(async {
        let l = listen(
            ListenOptions::tcp("127.0.0.1", 0),
            RecordClose(closes.clone()),
        )
        .await
        .unwrap();
        let port = l.port().unwrap();
        // Another sansock socket on this runtime could see this one's FIN during the
        // shutdown and close cleanly first; a plain client outside the runtime cannot.
        let client = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        *peer.lock().unwrap() = Some(client);
        let accepted = tokio::time::timeout(Duration::from_secs(10), async {
            while l.connection_count() == 0 {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        });
        accepted.await.expect("the server accepted");
        l
    });
    assert_eq!(
        sansock_tokio::referenced_count(),
        2,
        "a listener and its socket"
    );
    drop(rt); // drops every task: the accept loop and both sockets' IO loops
    assert_eq!(*closes.lock().unwrap(), [Some(CloseError::RuntimeShutdown)]);
    assert_eq!(listener.connection_count(), 0);
    assert!(
        listener.is_stopped(),
        "a listener whose runtime is gone is stopped"
    );
    assert_eq!(sansock_tokio::referenced_count(), 0);
    // The OS socket is gone too: the peer reads the end of the stream.
    let mut peer = peer.lock().unwrap().take().unwrap();
    peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut rest = Vec::new();
    std::io::Read::read_to_end(&mut peer, &mut rest).unwrap();
    assert!(rest.is_empty());
    // A later runtime's `idle()` is not held up by the dead one's sockets.
    let later = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    later.block_on(async {
        tokio::time::timeout(Duration::from_secs(5), sansock_tokio::idle())
            .await
            .expect("idle() returns at once");
    });
}
