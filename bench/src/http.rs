//! A minimal HTTP/1.1 client over one keep-alive loopback connection: what a phone
//! needs (a POST with a body, a status and a body back) at the least client CPU, so
//! the load generator takes as little as possible of the cores it shares with the
//! server. Knows `Content-Length` and chunked bodies; reconnects when the server
//! closed an idle connection.

use std::net::SocketAddr;

use anyhow::{Context, bail};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// One connection to the server.
#[derive(Debug)]
pub struct Http {
    addr: SocketAddr,
    stream: Option<BufReader<TcpStream>>,
}

/// A response: status and body.
#[derive(Debug)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// The body as JSON (`null` if it is not).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// The `error.code` of a JSON error body, or the body's start.
    pub fn error_code(&self) -> String {
        match self.json()["error"]["code"].as_str() {
            Some(code) => code.to_owned(),
            None => String::from_utf8_lossy(&self.body[..self.body.len().min(80)]).into_owned(),
        }
    }
}

impl Http {
    /// A client of `addr` (connects on first use).
    pub fn new(addr: SocketAddr) -> Http {
        Http { addr, stream: None }
    }

    /// Sends a request; a connection the server closed in the meantime is reopened
    /// once.
    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> anyhow::Result<Response> {
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n",
            self.addr,
            body.len()
        );
        for (name, value) in headers {
            head.push_str(name);
            head.push_str(": ");
            head.push_str(value);
            head.push_str("\r\n");
        }
        head.push_str("\r\n");
        let mut message = head.into_bytes();
        message.extend_from_slice(body);
        let reused = self.stream.is_some();
        match self.exchange(&message).await {
            Ok(response) => Ok(response),
            Err(Exchange::BeforeResponse(_)) if reused => {
                self.stream = None;
                self.exchange(&message).await.map_err(Exchange::into_error)
            }
            Err(e) => {
                self.stream = None;
                Err(e.into_error())
            }
        }
    }

    async fn exchange(&mut self, message: &[u8]) -> Result<Response, Exchange> {
        if self.stream.is_none() {
            let stream = TcpStream::connect(self.addr)
                .await
                .with_context(|| format!("connecting to {}", self.addr))
                .map_err(Exchange::Failed)?;
            stream
                .set_nodelay(true)
                .map_err(|e| Exchange::Failed(e.into()))?;
            self.stream = Some(BufReader::with_capacity(16 * 1024, stream));
        }
        let Some(stream) = self.stream.as_mut() else {
            return Err(Exchange::Failed(anyhow::anyhow!("no connection")));
        };
        stream
            .get_mut()
            .write_all(message)
            .await
            .map_err(|e| Exchange::BeforeResponse(e.into()))?;
        let mut line = String::new();
        let read = stream
            .read_line(&mut line)
            .await
            .map_err(|e| Exchange::BeforeResponse(e.into()))?;
        if read == 0 {
            return Err(Exchange::BeforeResponse(anyhow::anyhow!(
                "the server closed the connection"
            )));
        }
        let response = read_rest(stream, &line).await.map_err(Exchange::Failed)?;
        if response.1 {
            self.stream = None;
        }
        Ok(response.0)
    }

    /// POSTs JSON.
    pub async fn post_json(
        &mut self,
        path: &str,
        token: Option<&str>,
        body: &Value,
    ) -> anyhow::Result<Response> {
        let bearer = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("Content-Type", "application/json")];
        if let Some(bearer) = &bearer {
            headers.push(("Authorization", bearer));
        }
        let body = serde_json::to_vec(body)?;
        self.request("POST", path, &headers, &body).await
    }
}

enum Exchange {
    /// Nothing of a response arrived: a reused connection may simply have been closed.
    BeforeResponse(anyhow::Error),
    Failed(anyhow::Error),
}

impl Exchange {
    fn into_error(self) -> anyhow::Error {
        match self {
            Exchange::BeforeResponse(e) | Exchange::Failed(e) => e,
        }
    }
}

/// Reads the headers and body after the status line; also whether the connection
/// closes.
async fn read_rest(
    stream: &mut BufReader<TcpStream>,
    status_line: &str,
) -> anyhow::Result<(Response, bool)> {
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("bad status line {status_line:?}"))?;
    let mut length = None;
    let mut chunked = false;
    let mut close = status_line.starts_with("HTTP/1.0");
    let mut line = String::new();
    loop {
        line.clear();
        if stream.read_line(&mut line).await? == 0 {
            bail!("the connection closed in the headers");
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        let Some((name, value)) = header.split_once(':') else {
            bail!("bad header {header:?}");
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(value.parse::<usize>().context("Content-Length")?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.eq_ignore_ascii_case("chunked");
        } else if name.eq_ignore_ascii_case("connection") {
            close = value.eq_ignore_ascii_case("close");
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            line.clear();
            stream.read_line(&mut line).await?;
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                .with_context(|| format!("bad chunk size {line:?}"))?;
            let start = body.len();
            body.resize(start + size, 0);
            stream.read_exact(&mut body[start..]).await?;
            line.clear();
            stream.read_line(&mut line).await?;
            if size == 0 {
                break;
            }
        }
    } else if let Some(length) = length {
        body.resize(length, 0);
        stream.read_exact(&mut body).await?;
    } else if close {
        stream.read_to_end(&mut body).await?;
    }
    Ok((Response { status, body }, close))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_length_and_chunked_bodies_and_reconnects() -> anyhow::Result<()> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move {
            // First connection: two answers, then closed by the server.
            let answers: [&[u8]; 3] = [
                b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello",
                b"HTTP/1.1 404 Not Found\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
                b"HTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\nok",
            ];
            for (i, answer) in answers.iter().enumerate() {
                if i == 0 || i == 2 {
                    let (mut socket, _) = listener.accept().await.expect("accept");
                    let mut buf = [0u8; 1024];
                    let _ = socket.read(&mut buf).await;
                    socket.write_all(answer).await.expect("write");
                    if i == 0 {
                        let _ = socket.read(&mut buf).await;
                        socket.write_all(answers[1]).await.expect("write");
                    }
                    // Dropped: closed.
                }
            }
        });
        let mut http = Http::new(addr);
        let first = http.request("GET", "/", &[], b"").await?;
        assert_eq!((first.status, first.body.as_slice()), (200, &b"hello"[..]));
        let second = http.request("POST", "/", &[], b"x").await?;
        assert_eq!(
            (second.status, second.body.as_slice()),
            (404, &b"abcde"[..])
        );
        let third = http.request("GET", "/", &[], b"").await?;
        assert_eq!((third.status, third.body.as_slice()), (201, &b"ok"[..]));
        Ok(())
    }
}
