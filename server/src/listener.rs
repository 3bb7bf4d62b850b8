//! The connections under the HTTP API: a cap on how many are open at once (below the
//! process's open-files limit, which is raised to its hard limit at start), a deadline
//! for a request's headers (which also ends a keep-alive connection left idle), HTTPS
//! when given a certificate (rustls), and a graceful stop. Bodies get their own
//! deadline around the router (`cmd::database::serve_with`).
//!
//! Why not `axum::serve`: it has neither a cap nor a header deadline (hyper's needs a
//! timer that `axum::serve` does not give it), so 20,000 silent connections exhausted
//! the descriptors and `/healthz` stopped answering.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;

use crate::client_addr::{ClientAddr, TrustedProxies};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Why the certificate or key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or holds nothing of the kind.
    #[error("{path}: {reason}")]
    Pem {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// rustls refused the pair (the key does not match, an unsupported key type).
    #[error("the certificate and key: {0}")]
    Config(#[from] rustls::Error),
}

/// A TLS acceptor for the certificate chain and private key in PEM files (the chain
/// leaf first, as a CA delivers it).
pub fn tls_acceptor(
    certificate: &std::path::Path,
    key: &std::path::Path,
) -> Result<TlsAcceptor, TlsError> {
    let pem = |path: &std::path::Path, reason: String| TlsError::Pem {
        path: path.display().to_string(),
        reason,
    };
    let chain = CertificateDer::pem_file_iter(certificate)
        .map_err(|e| pem(certificate, e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem(certificate, e.to_string()))?;
    if chain.is_empty() {
        return Err(pem(certificate, "no CERTIFICATE in it".to_owned()));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| pem(key, e.to_string()))?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(chain, key)?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Descriptors kept for everything but client connections: the database pool, photo
/// files, logs, the listener itself.
pub const RESERVED_DESCRIPTORS: u64 = 256;

/// The limits of the connection layer (`docs/operations.md` lists their settings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Open client connections at most; more wait in the listen backlog.
    pub max_connections: usize,
    /// Time for a request's headers to arrive, counted from when the connection is
    /// ready for them (so also the time a keep-alive connection may sit idle).
    pub header_timeout: Duration,
}

impl ConnectionLimits {
    /// The defaults: 20 s for headers, and as many connections as the open-files
    /// limit `open_files` leaves after [`RESERVED_DESCRIPTORS`].
    pub fn for_open_files(open_files: u64) -> ConnectionLimits {
        ConnectionLimits {
            max_connections: usize::try_from(
                open_files.saturating_sub(RESERVED_DESCRIPTORS).max(16),
            )
            .unwrap_or(usize::MAX),
            header_timeout: Duration::from_secs(20),
        }
    }
}

/// Raises the soft open-files limit to the hard one (a service manager often starts
/// processes at 1,024); returns the soft limit in force afterwards.
pub fn raise_open_files_limit() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(error) => {
            tracing::warn!(%error, "could not raise the open-files limit");
            rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft)
        }
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets the requests in
/// flight finish (at most `grace`). Each request carries the peer's address as
/// [`ConnectInfo`] and the client's (behind `trusted` proxies) as [`ClientAddr`].
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    trusted: TrustedProxies,
    tls: Option<TlsAcceptor>,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let (stopping, stop) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            slot = Arc::clone(&slots).acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of descriptors or memory for a moment: wait, do not spin.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        // The slot goes with the socket: into a WebSocket the connection is upgraded
        // to (a push socket holds its descriptor as long as any request), freed when
        // the socket is dropped.
        let stream = Counted {
            io: stream,
            _slot: slot,
        };
        let app = app.clone();
        let stop = stop.clone();
        let tls = tls.clone();
        let trusted = trusted.clone();
        tokio::spawn(async move {
            match tls {
                None => serve_connection(stream, peer, app, limits, trusted, stop).await,
                Some(tls) => {
                    // The handshake gets the header deadline too: a silent client
                    // holds its slot no longer than a silent plain one.
                    match tokio::time::timeout(limits.header_timeout, tls.accept(stream)).await {
                        Ok(Ok(stream)) => {
                            serve_connection(stream, peer, app, limits, trusted, stop).await;
                        }
                        Ok(Err(error)) => tracing::debug!(%error, %peer, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
            }
        });
    }
    let _ = stopping.send(true);
    // Every slot back means every connection has ended.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    if tokio::time::timeout(grace, slots.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!(?grace, "connections still open at shutdown");
    }
}

/// A connection's socket with its slot of the cap: the slot is free when the socket
/// is dropped, whoever holds it last (the connection, or the WebSocket it became).
struct Counted<I> {
    io: I,
    _slot: tokio::sync::OwnedSemaphorePermit,
}

impl<I: AsyncRead + Unpin> AsyncRead for Counted<I> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Counted<I> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// Serves one connection until it ends, or gracefully once the stop is signalled.
async fn serve_connection<I>(
    io: I,
    peer: SocketAddr,
    app: Router,
    limits: ConnectionLimits,
    trusted: TrustedProxies,
    mut stop: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut request: hyper::Request<_>| {
        let client = trusted.client_of(peer.ip(), request.headers());
        request.extensions_mut().insert(ConnectInfo(peer));
        request.extensions_mut().insert(ClientAddr(client));
        let mut app = app.clone();
        async move {
            use tower::Service as _;
            let response: Result<_, Infallible> =
                app.call(request.map(axum::body::Body::new)).await;
            response
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    let connection = builder
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    let mut connection = std::pin::pin!(connection);
    let ended = tokio::select! {
        ended = connection.as_mut() => ended,
        () = stopped(&mut stop) => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(error) = ended {
        tracing::debug!(%error, %peer, "connection ended");
    }
}

/// Resolves once the stop is signalled (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    while !*stop.borrow_and_update() {
        if stop.changed().await.is_err() {
            return;
        }
    }
}

/// The peer's address in a request, when served by [`serve`].
pub type Peer = ConnectInfo<SocketAddr>;
