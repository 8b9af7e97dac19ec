//! `connect`, for any [`Runtime`].

use std::sync::Arc;
use std::time::Instant;

use sansock_core::{
    report_connect_error, Addr, ConnectError, ConnectOptions, Driver, Endpoint, Handler,
    SocketAddrs, SocketHandle,
};

use sansock_core::tls::TlsConfigError;

use crate::runtime::Runtime;
use crate::setup;
use crate::{context, io_loop};

/// Connects to `options.endpoint` and runs `handler` on the socket (Bun's `Bun.connect`).
///
/// `open` runs before this returns. On failure `connect_error` runs once (never `open` or
/// `close`) and the same error is returned.
pub async fn connect<R: Runtime, D: Send + 'static>(
    mut options: ConnectOptions<D>,
    handler: Arc<dyn Handler<Data = D>>,
) -> Result<SocketHandle<D>, ConnectError> {
    let endpoint = options.endpoint.clone();
    let tls = match (&options.tls, endpoint.host()) {
        (Some(tls), host) => {
            match tls.build(host.unwrap_or("localhost"), &|path| std::fs::read(path)) {
                Ok(tls) => Some(tls),
                Err(e) => {
                    let e = ConnectError::from(e);
                    report_connect_error(&*handler, &mut options.data, &e);
                    return Err(e);
                }
            }
        }
        (None, _) => None,
    };
    let connected = match (options.validate(), options.timeout) {
        (Err(e), _) => Err(e),
        (Ok(()), None) => open_stream::<R>(&endpoint).await,
        (Ok(()), Some(limit)) => R::timeout(limit, open_stream::<R>(&endpoint))
            .await
            .unwrap_or_else(|| {
                Err(ConnectError::TimedOut {
                    target: endpoint.to_string(),
                })
            }),
    };
    let (stream, addrs) = match connected {
        Ok(c) => c,
        Err(e) => {
            report_connect_error(&*handler, &mut options.data, &e);
            return Err(e);
        }
    };
    setup::configure_stream(&stream, options.nodelay);
    let config = options.connection_config();
    let now = Instant::now();
    let refs = context::refs::<R>();
    let mut driver = match &tls {
        None => Driver::connected(handler, config, addrs, options.data, now, &refs),
        Some(tls) => {
            let h = handler.clone();
            match Driver::connected_tls(h, config, addrs, options.data, now, &refs, tls) {
                Ok(driver) => driver,
                Err((mut data, e)) => {
                    let e = ConnectError::TlsConfig(TlsConfigError::Rustls(e.to_string()));
                    report_connect_error(&*handler, &mut data, &e);
                    return Err(e);
                }
            }
        }
    };
    driver.dispatch();
    let handle = driver.handle();
    R::spawn(io_loop::run::<D, R::Stream, R::Timer>(stream, driver));
    Ok(handle)
}

async fn open_stream<R: Runtime>(
    endpoint: &Endpoint,
) -> Result<(R::Stream, SocketAddrs), ConnectError> {
    let target = endpoint.to_string();
    match endpoint {
        Endpoint::Unix(path) => {
            let stream = R::connect_unix(path)
                .await
                .map_err(|e| ConnectError::from_io(&e, &path.display().to_string()))?;
            let addrs = SocketAddrs {
                local: Addr::Unix(None),
                remote: Addr::Unix(Some(path.clone())),
            };
            Ok((stream, addrs))
        }
        Endpoint::Tcp { port, .. } => {
            let host = endpoint.host().unwrap_or_default();
            let addrs = match setup::literal_ip(host) {
                Some(ip) => vec![(ip, *port).into()],
                None => R::resolve(host, *port).await.unwrap_or_default(),
            };
            let mut last = ConnectError::HostNotFound {
                host: host.to_owned(),
            };
            for addr in addrs {
                match R::connect_tcp(addr).await {
                    Ok(stream) => {
                        let local = setup::local_addr(&stream).unwrap_or(Addr::Unix(None));
                        let addrs = SocketAddrs {
                            local,
                            remote: Addr::Ip(addr),
                        };
                        return Ok((stream, addrs));
                    }
                    Err(e) => last = ConnectError::from_io(&e, &target),
                }
            }
            Err(last)
        }
    }
}
