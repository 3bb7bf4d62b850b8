//! The push listener: the server's WebSocket (`GET /v1/push`) read on a thread of its
//! own, reconnecting with jittered backoff, calling the app's [`PushListener`]. The
//! library does not sync on a notice by itself: the app decides (it may be on a
//! metered link).
//!
//! **No dispatch is missed.** A notice sent while the socket was down (a tunnel, a
//! cell handover, the server restarting) is gone: the server keeps no queue of
//! notices, and should not (a queue per device is state that a restart or another
//! node loses). What cannot be lost is the data: a dispatch is a timeline entry of
//! a case. So after every (re)connect, once the socket is registered (anything
//! later comes on it), the thread runs one sync of the documents (no photo
//! uploads: a few hundred bytes when nothing changed), and the store, which
//! derives from every case it stores whether it is dispatched to this user by
//! someone else and whether the app was told (`dispatch_notices`), hands the
//! untold ones to `on_dispatch`. A notice that came on the socket is recorded as
//! told, so the data arriving later does not raise it twice; a dispatch that
//! arrives in the app's own sync is told by this thread within a second. Told
//! means after the callback returned: at least once, never zero times.

use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tungstenite::client::IntoClientRequest as _;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

use crate::client::Inner;
use crate::error::FieldError;
use crate::http::Waits;

/// What the app supplies to hear the server's notices. Called on a library thread:
/// hop to the main thread before touching the UI.
#[uniffi::export(with_foreign)]
pub trait PushListener: Send + Sync {
    /// A case was dispatched to this user: sync, then show it.
    fn on_dispatch(&self, case_id: String);
    /// A field worker reported a problem beyond their authority in this user's grids
    /// (双报告: the grid leader and the 下沉 official are told): sync, then show it.
    fn on_double_report(&self, case_id: String);
    /// Documents of this user's scope changed on the server: sync when convenient.
    fn on_sync_needed(&self, document_ids: Vec<String>);
    /// The device was revoked; the library has wiped its data already.
    fn on_revoked(&self);
    /// The push connection came up or went down.
    fn on_connection_changed(&self, online: bool);
}

/// A running listener.
#[derive(Debug)]
pub(crate) struct PushHandle {
    stop: Arc<AtomicBool>,
    /// Disconnected when the thread ends.
    ended: std::sync::mpsc::Receiver<()>,
    thread: std::thread::ThreadId,
}

/// How long `stop` waits for the thread (it notices within [`POLL`]; a connection
/// attempt to a silent host may take longer, and is then left to end by itself).
const STOP_WAIT: Duration = Duration::from_secs(3);

impl PushHandle {
    /// Whether the thread still runs (it ends by itself when the session is over).
    pub(crate) fn is_running(&self) -> bool {
        matches!(
            self.ended.try_recv(),
            Err(std::sync::mpsc::TryRecvError::Empty)
        )
    }

    /// Stops the thread: once this returns, the listener is not called again (unless
    /// the thread is stuck connecting, past [`STOP_WAIT`]). Called from a callback on
    /// the push thread itself, it only asks.
    pub(crate) fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        if std::thread::current().id() != self.thread {
            let _ = self.ended.recv_timeout(STOP_WAIT);
        }
    }
}

/// How often the socket's read wakes to check for stop and send a ping.
const POLL: Duration = Duration::from_secs(1);
/// Mobile NATs drop idle connections within minutes; a ping keeps them.
const PING_EVERY: Duration = Duration::from_secs(25);
/// The longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

pub(crate) fn start(inner: &Arc<Inner>, listener: Arc<dyn PushListener>) -> Result<(), FieldError> {
    // Two listeners would each be told every dispatch, or one silently dropped.
    if inner.push_running() {
        return Err(FieldError::invalid(
            "push is already started with a listener: call stopPush first",
        ));
    }
    // Fail now, not on the thread, when there is no session.
    inner.access_token().or_else(|e| match e {
        FieldError::Offline { .. } => Ok(String::new()),
        other => Err(other),
    })?;
    let stop = Arc::new(AtomicBool::new(false));
    let (ended_sender, ended) = std::sync::mpsc::channel::<()>();
    let thread_inner = inner.clone();
    let thread_stop = stop.clone();
    let thread = std::thread::Builder::new()
        .name("wangge-push".into())
        .spawn(move || {
            run(&thread_inner, &*listener, &thread_stop);
            // Releasing the app's listener is a call into the app: it happens before
            // `stop` returns, never while the app is tearing down.
            drop(listener);
            drop(thread_inner);
            drop(ended_sender);
        })
        .map_err(FieldError::internal)?;
    inner.set_push(Some(PushHandle {
        stop,
        ended,
        thread: thread.thread().id(),
    }));
    Ok(())
}

enum Ended {
    /// Reconnect (after a backoff unless it had been up).
    Lost { was_up: bool },
    /// The device is revoked or the session is gone: stop for good.
    Over,
    /// Asked to stop.
    Stopped,
}

fn run(inner: &Inner, listener: &dyn PushListener, stop: &AtomicBool) {
    let mut attempt: u32 = 0;
    while !stop.load(Ordering::SeqCst) {
        match connect_and_read(inner, listener, stop) {
            Ended::Stopped | Ended::Over => return,
            Ended::Lost { was_up } => {
                if was_up && !stop.load(Ordering::SeqCst) {
                    listener.on_connection_changed(false);
                    attempt = 0;
                }
                attempt = attempt.saturating_add(1);
                sleep_unless_stopped(backoff(attempt), stop);
            }
        }
    }
}

/// Full jitter: a random wait up to `min(max, 1 s · 2^attempt)`.
fn backoff(attempt: u32) -> Duration {
    let ceiling = Duration::from_secs(1u64 << attempt.min(9)).min(MAX_BACKOFF);
    ceiling.mul_f64(rand::random::<f64>())
}

fn sleep_unless_stopped(duration: Duration, stop: &AtomicBool) {
    let until = Instant::now() + duration;
    while Instant::now() < until && !stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(100).min(until - Instant::now()));
    }
}

fn revoked(inner: &Inner, listener: &dyn PushListener) -> Ended {
    let _ = inner.revoked();
    listener.on_revoked();
    Ended::Over
}

fn connect_and_read(inner: &Inner, listener: &dyn PushListener, stop: &AtomicBool) -> Ended {
    let token = match inner.access_token() {
        Ok(token) => token,
        Err(FieldError::DeviceRevoked) => {
            listener.on_revoked();
            return Ended::Over;
        }
        Err(FieldError::Offline { .. }) => return Ended::Lost { was_up: false },
        Err(_) => return Ended::Over,
    };
    let url = format!("{}/v1/push", inner.http.base())
        .replacen("https://", "wss://", 1)
        .replacen("http://", "ws://", 1);
    let Ok(mut request) = url.into_client_request() else {
        return Ended::Over;
    };
    let Ok(value) = format!("Bearer {token}").parse() else {
        return Ended::Over;
    };
    request.headers_mut().insert("Authorization", value);
    let mut socket = match connect(inner, request) {
        Ok(socket) => socket,
        Err(tungstenite::Error::Http(response)) => {
            let code = response
                .body()
                .as_deref()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(b).ok())
                .and_then(|v| v["error"]["code"].as_str().map(str::to_owned))
                .unwrap_or_default();
            return match code.as_str() {
                "device_revoked" => revoked(inner, listener),
                // The next attempt refreshes the token first.
                _ => Ended::Lost { was_up: false },
            };
        }
        Err(_) => return Ended::Lost { was_up: false },
    };
    if set_read_timeout(&socket, POLL).is_err() {
        return Ended::Lost { was_up: false };
    }
    if stop.load(Ordering::SeqCst) {
        return Ended::Stopped;
    }
    listener.on_connection_changed(true);
    // What was missed while the socket was down, from the data (module doc).
    match inner.sync(false) {
        Ok(_) | Err(FieldError::Offline { .. }) => {}
        Err(FieldError::DeviceRevoked) => {
            listener.on_revoked();
            return Ended::Over;
        }
        // Revoked by an answer the sync swallowed on its way (the store is wiped):
        // the app must hear it, not just that the socket went.
        Err(FieldError::Closed) if inner.was_revoked.load(Ordering::SeqCst) => {
            let _ = socket.close(None);
            listener.on_revoked();
            return Ended::Over;
        }
        Err(FieldError::NotLoggedIn | FieldError::SessionExpired { .. } | FieldError::Closed) => {
            // The session is over: say the socket is gone before stopping for good.
            let _ = socket.close(None);
            if !stop.load(Ordering::SeqCst) {
                listener.on_connection_changed(false);
            }
            return Ended::Over;
        }
        Err(e) => tracing::warn!(error = %e, "the catch-up sync after connecting failed"),
    }
    let waits = inner.http.waits();
    let mut last_ping = Instant::now();
    let mut last_heard = Instant::now();
    loop {
        // Stopped: the app asked, so it is not called again.
        if stop.load(Ordering::SeqCst) {
            let _ = socket.close(None);
            return Ended::Stopped;
        }
        if inner.notices_waiting.swap(false, Ordering::SeqCst) {
            tell_untold(inner, listener, stop);
        }
        let read = socket.read();
        if read.is_ok() {
            last_heard = Instant::now();
        }
        match read {
            Ok(Message::Text(text)) => {
                let Ok(notice) = serde_json::from_str::<serde_json::Value>(&text) else {
                    continue;
                };
                let strings = |v: &serde_json::Value| -> Vec<String> {
                    v.as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|s| s.as_str().map(str::to_owned))
                                .collect()
                        })
                        .unwrap_or_default()
                };
                match notice["type"].as_str() {
                    Some("dispatch") => {
                        if let Some(case) = notice["case"].as_str() {
                            listener.on_dispatch(case.to_owned());
                            let _ = inner.with_store(|s| s.told_dispatch(case, true));
                        }
                    }
                    Some("double_report") => {
                        if let Some(case) = notice["case"].as_str() {
                            listener.on_double_report(case.to_owned());
                        }
                    }
                    Some("sync_now") => listener.on_sync_needed(strings(&notice["documents"])),
                    Some("revoked") => return revoked(inner, listener),
                    _ => {}
                }
            }
            Ok(Message::Close(frame)) => {
                if frame.is_some_and(|f| f.code == CloseCode::Library(4001)) {
                    return revoked(inner, listener);
                }
                return Ended::Lost { was_up: true };
            }
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                // A ping unanswered (no pong, nothing at all) past the idle bound: the
                // connection is dead without having said so (a NAT dropped it).
                if last_heard.elapsed() >= PING_EVERY + waits.idle {
                    return Ended::Lost { was_up: true };
                }
                if last_ping.elapsed() >= PING_EVERY {
                    last_ping = Instant::now();
                    if socket.send(Message::Ping(Vec::new().into())).is_err() {
                        return Ended::Lost { was_up: true };
                    }
                }
            }
            Err(_) => return Ended::Lost { was_up: true },
        }
    }
}

/// Tells the app of the dispatches it has not heard of (after the callback returns
/// each is recorded as told).
fn tell_untold(inner: &Inner, listener: &dyn PushListener, stop: &AtomicBool) {
    let Ok(untold) = inner.with_store(|s| s.untold_dispatches()) else {
        return;
    };
    for case in untold {
        if stop.load(Ordering::SeqCst) {
            // Told at the next start.
            return;
        }
        listener.on_dispatch(case.clone());
        let _ = inner.with_store(|s| s.told_dispatch(&case, false));
    }
}

/// Connects within the app's bounds (tungstenite's own `connect` waits as long as
/// the system's TCP timeout, minutes), with the app's TLS trust.
fn connect(
    inner: &Inner,
    request: tungstenite::handshake::client::Request,
) -> Result<WebSocket<MaybeTlsStream<TcpStream>>, tungstenite::Error> {
    use std::net::ToSocketAddrs as _;
    let Waits { connect, idle, .. } = inner.http.waits();
    let uri = request.uri();
    let host = uri
        .host()
        .unwrap_or_default()
        .trim_matches(['[', ']'])
        .to_owned();
    let port = uri
        .port_u16()
        .unwrap_or(if uri.scheme_str() == Some("wss") {
            443
        } else {
            80
        });
    let mut last = std::io::Error::new(std::io::ErrorKind::NotFound, "no address");
    let mut stream = None;
    for address in (host.as_str(), port).to_socket_addrs()? {
        match TcpStream::connect_timeout(&address, connect) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = e,
        }
    }
    let stream = stream.ok_or(last)?;
    // The TLS and WebSocket handshakes are bounded by the idle wait.
    stream.set_read_timeout(Some(idle))?;
    stream.set_write_timeout(Some(idle))?;
    let connector = inner
        .http
        .trust()
        .rustls_config()
        .map(tungstenite::Connector::Rustls);
    match tungstenite::client_tls_with_config(request, stream, None, connector) {
        Ok((socket, _)) => Ok(socket),
        Err(tungstenite::HandshakeError::Failure(e)) => Err(e),
        Err(tungstenite::HandshakeError::Interrupted(_)) => Err(tungstenite::Error::Io(
            std::io::Error::new(std::io::ErrorKind::TimedOut, "the handshake stalled"),
        )),
    }
}

fn set_read_timeout(
    socket: &WebSocket<MaybeTlsStream<TcpStream>>,
    timeout: Duration,
) -> std::io::Result<()> {
    match socket.get_ref() {
        MaybeTlsStream::Plain(stream) => stream.set_read_timeout(Some(timeout)),
        MaybeTlsStream::Rustls(stream) => stream.get_ref().set_read_timeout(Some(timeout)),
        _ => Ok(()),
    }
}
