//! The push listener: the server's WebSocket (`GET /v1/push`) read on a thread of its
//! own, reconnecting with jittered backoff, calling the app's [`PushListener`]. The
//! library does not sync on a notice by itself: the app decides (it may be on a
//! metered link), so two syncs never race.

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
    let mut socket = match tungstenite::connect(request) {
        Ok((socket, _)) => socket,
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
    let mut last_ping = Instant::now();
    loop {
        // Stopped: the app asked, so it is not called again.
        if stop.load(Ordering::SeqCst) {
            let _ = socket.close(None);
            return Ended::Stopped;
        }
        match socket.read() {
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
