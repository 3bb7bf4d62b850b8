//! HTTP to the wangge server: ureq 3 (blocking, rustls on ring), run on the client's
//! blocking pool. Chosen over an async client because it is already in the workspace
//! (no new crates to cross-compile for four Android ABIs and iOS), ring needs only the
//! NDK's clang where reqwest's default aws-lc-rs needs cmake per target, and the
//! traffic is one bounded request at a time (a sync round, a photo chunk).
//!
//! Every answer is checked before anything is stored: an HTML page from a captive
//! portal or garbage is [`FieldError::BadServerAnswer`]; a connection that fails is
//! [`FieldError::Offline`].

use std::time::Duration;

use ureq::http::{Method, Request};

use crate::error::FieldError;

/// A server's answer, read whole.
#[derive(Debug)]
pub struct Answer {
    /// The status.
    pub status: u16,
    /// The media type, without parameters (lowercase).
    pub content_type: String,
    /// The server's clock (the `Date` header), in milliseconds.
    pub date_ms: Option<i64>,
    /// Headers the caller asked to keep, lowercase names.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Answer {
    /// A kept header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as the server's JSON, or an error saying what came instead.
    pub fn json(&self) -> Result<serde_json::Value, FieldError> {
        if self.content_type != "application/json" {
            return Err(self.not_understood("expected JSON"));
        }
        serde_json::from_slice(&self.body).map_err(|e| self.not_understood(&e.to_string()))
    }

    /// The error for an answer that is not what the protocol says.
    pub fn not_understood(&self, why: &str) -> FieldError {
        let start: String = String::from_utf8_lossy(&self.body[..self.body.len().min(200)])
            .chars()
            .filter(|c| !c.is_control())
            .collect();
        FieldError::BadServerAnswer {
            status: self.status,
            content_type: self.content_type.clone(),
            detail: format!("{why}; the answer starts {start:?}"),
        }
    }

    /// The server's `{"error": {"code", "message"}}`, if the body is one.
    pub fn error_code(&self) -> Option<(String, String)> {
        let value: serde_json::Value = serde_json::from_slice(&self.body).ok()?;
        let error = value.get("error")?;
        Some((
            error.get("code")?.as_str()?.to_owned(),
            error
                .get("message")
                .and_then(|m| m.as_str())
                .unwrap_or_default()
                .to_owned(),
        ))
    }

    /// The error for a non-success status: the server's own if it sent one.
    pub fn server_error(&self) -> FieldError {
        match self.error_code() {
            Some((code, detail)) => FieldError::Server {
                status: self.status,
                code,
                detail,
            },
            None => self.not_understood("an error without the server's error body"),
        }
    }
}

/// The connection to one server.
#[derive(Debug, Clone)]
pub struct Http {
    agent: ureq::Agent,
    base: String,
}

/// Headers every answer keeps (the upload protocol's and `Retry-After`).
const KEPT_HEADERS: [&str; 5] = [
    "upload-offset",
    "upload-complete",
    "upload-length",
    "retry-after",
    "upload-max-chunk",
];

impl Http {
    /// A connection to `base` (e.g. `https://wangge.example.cn`).
    pub fn new(base: &str) -> Http {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(10)))
            .timeout_global(Some(Duration::from_secs(120)))
            .user_agent(concat!("wangge-mobile/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Http {
            agent,
            base: base.trim_end_matches('/').to_owned(),
        }
    }

    /// The server's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Sends a request and reads the answer (at most `limit` bytes of body).
    pub fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, String)],
        body: Option<(&str, Vec<u8>)>,
        limit: u64,
    ) -> Result<Answer, FieldError> {
        let mut builder = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        if let Some(token) = token {
            builder = builder.header("Authorization", format!("Bearer {token}"));
        }
        for (name, value) in headers {
            builder = builder.header(*name, value.as_str());
        }
        let sent = match body {
            Some((content_type, bytes)) => builder
                .header("Content-Type", content_type)
                .body(bytes)
                .map_err(|e| FieldError::invalid(e.to_string()))
                .map(|r| self.agent.run(r)),
            None => builder
                .body(())
                .map_err(|e| FieldError::invalid(e.to_string()))
                .map(|r| self.agent.run(r)),
        }?;
        let mut response = sent.map_err(offline)?;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                v.split(';')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_ascii_lowercase()
            })
            .unwrap_or_default();
        let date_ms = response
            .headers()
            .get("date")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| chrono::DateTime::parse_from_rfc2822(v).ok())
            .map(|d| d.timestamp_millis());
        let headers = KEPT_HEADERS
            .iter()
            .filter_map(|name| {
                let value = response.headers().get(*name)?.to_str().ok()?;
                Some(((*name).to_owned(), value.to_owned()))
            })
            .collect();
        let body = response
            .body_mut()
            .with_config()
            .limit(limit)
            .read_to_vec()
            .map_err(|e| match e {
                ureq::Error::BodyExceedsLimit(_) => FieldError::BadServerAnswer {
                    status,
                    content_type: content_type.clone(),
                    detail: format!("the answer is larger than {limit} bytes"),
                },
                other => offline(other),
            })?;
        Ok(Answer {
            status,
            content_type,
            date_ms,
            headers,
            body,
        })
    }
}

fn offline(error: ureq::Error) -> FieldError {
    FieldError::Offline {
        detail: error.to_string(),
    }
}
