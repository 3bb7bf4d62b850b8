//! The connection layer's limits on the real binary over loopback: silent connections,
//! stalled headers and stalled bodies are closed after their deadlines, a cap holds the
//! open connections below the descriptors, and `/healthz` and a sync round still
//! answer while hundreds of silent connections are open.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::Value;
use wangge_tests::phone::Phone;
use wangge_tests::{Server, add_user, answer, http};

const PASSWORD: &str = "限制-2026-ok";

fn connect(server: &Server) -> TcpStream {
    let address = server.base_url.trim_start_matches("http://");
    let stream = TcpStream::connect(address).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .expect("timeout");
    stream
}

/// Reads until the server closes the connection (or the read timeout): what it sent,
/// and how long it took.
fn read_to_close(stream: &mut TcpStream) -> (String, Duration) {
    let started = Instant::now();
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => received.extend_from_slice(&buffer[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("the server kept the connection open: {e}"),
        }
    }
    (
        String::from_utf8_lossy(&received).into_owned(),
        started.elapsed(),
    )
}

/// A SQLite database with the worker `w1`, and a server on it with `env`.
fn worker_and_server(env: &[(&str, &str)]) -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let url = format!("sqlite://{}", dir.path().join("limits.db").display());
    add_user(
        &url,
        "w1",
        "sanitation_worker",
        Some("sanitation"),
        "410102001001",
        PASSWORD,
    );
    let server = Server::start(&url, env);
    (dir, server)
}

#[test]
fn silent_and_stalled_connections_are_closed_and_the_server_keeps_answering() {
    let (_dir, server) = worker_and_server(&[
        ("WANGGE_MAX_CONNECTIONS", "64"),
        ("WANGGE_HEADER_TIMEOUT_SECONDS", "2"),
        ("WANGGE_BODY_TIMEOUT_SECONDS", "2"),
    ]);
    let mut phone = Phone::login(&server, "w1", PASSWORD);

    // 300 connections that send nothing: far more than the cap of 64.
    let mut silent: Vec<TcpStream> = (0..300).map(|_| connect(&server)).collect();
    // Health and a sync round still answer: the silent ones are closed after the
    // header deadline, and the cap only makes newcomers wait their turn.
    let started = Instant::now();
    let (status, body) = answer(http().get(server.url("/healthz")).call());
    assert_eq!(status, 200, "{body}");
    assert!(
        started.elapsed() < Duration::from_secs(12),
        "{:?}",
        started.elapsed()
    );
    let round = phone.sync(&server);
    assert!(round.refused.is_empty(), "{round:?}");
    // Every silent connection was closed by the server, none answered.
    for stream in &mut silent {
        let (sent, _) = read_to_close(stream);
        assert!(
            sent.is_empty() || sent.starts_with("HTTP/1.1 408"),
            "{sent:?}"
        );
    }

    // Headers that stall half-way: closed after the deadline.
    let mut stalled = connect(&server);
    stalled
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .expect("write");
    let (_, waited) = read_to_close(&mut stalled);
    assert!(waited < Duration::from_secs(10), "{waited:?}");

    // A body that claims 10 GB and sends 3 bytes: a clear 408, then closed.
    let mut lying = connect(&server);
    lying
        .write_all(
            b"POST /v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
              Content-Length: 10000000000\r\n\r\n{\"u",
        )
        .expect("write");
    let (sent, waited) = read_to_close(&mut lying);
    assert!(waited < Duration::from_secs(10), "{waited:?}");
    assert!(sent.starts_with("HTTP/1.1 408"), "{sent}");
    let body: Value = serde_json::from_str(sent.split("\r\n\r\n").nth(1).unwrap_or_default())
        .expect("a JSON error");
    assert_eq!(body["error"]["code"], "body_timeout", "{body}");

    // A keep-alive connection left idle after a request is closed too.
    let mut idle = connect(&server);
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("write");
    let (sent, waited) = read_to_close(&mut idle);
    assert!(sent.starts_with("HTTP/1.1 200"), "{sent}");
    assert!(waited < Duration::from_secs(10), "{waited:?}");

    let (status, _) = answer(http().get(server.url("/healthz")).call());
    assert_eq!(status, 200);
}

#[test]
fn push_sockets_hold_their_slot_of_the_connection_cap() {
    let (_dir, server) = worker_and_server(&[
        ("WANGGE_MAX_CONNECTIONS", "3"),
        // The login's keep-alive connection gives its slot back quickly.
        ("WANGGE_HEADER_TIMEOUT_SECONDS", "1"),
    ]);
    let phone = Phone::login(&server, "w1", PASSWORD);
    let mut sockets: Vec<_> = (0..3).map(|_| phone.push(&server)).collect();
    // Three push sockets fill the cap: a request waits in the backlog, unanswered…
    let mut waiting = connect(&server);
    waiting
        .set_read_timeout(Some(Duration::from_millis(1500)))
        .expect("timeout");
    waiting
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .expect("write");
    let mut buffer = [0u8; 256];
    match waiting.read(&mut buffer) {
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) => {}
        other => panic!("answered while the cap was full of push sockets: {other:?}"),
    }
    // …until a socket closes and gives its slot back.
    drop(sockets.pop());
    waiting
        .set_read_timeout(Some(Duration::from_secs(15)))
        .expect("timeout");
    let (sent, _) = read_to_close(&mut waiting);
    assert!(sent.starts_with("HTTP/1.1 200"), "{sent}");
}
