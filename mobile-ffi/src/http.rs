//! HTTP to the wangge server: ureq 3 (blocking, rustls on ring), run on the client's
//! blocking pool. Chosen over an async client because it is already in the workspace
//! (no new crates to cross-compile for four Android ABIs and iOS), ring needs only the
//! NDK's clang where reqwest's default aws-lc-rs needs cmake per target, and the
//! traffic is one bounded request at a time (a sync round, a photo chunk).
//!
//! Every answer is checked before anything is stored: an HTML page from a captive
//! portal or garbage is [`FieldError::BadServerAnswer`]; a connection that fails or
//! a server that goes silent is [`FieldError::Offline`]; a TLS failure (a plain-HTTP
//! port behind an `https://` URL, an untrusted certificate) is [`FieldError::Tls`],
//! since retrying cannot fix it.
//!
//! Every wait is bounded ([`Waits`], set by the app): connecting, silence on an open
//! connection, and the whole request. A phone on a dead cell or behind a proxy that
//! accepts and never answers gets `Offline` within those bounds instead of the
//! minutes a socket's own timeouts take.

use std::sync::Arc;
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

/// How long the library waits for the network (from `ClientConfig`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Waits {
    /// DNS, TCP and the TLS handshake.
    pub connect: Duration,
    /// One request, start to end.
    pub request: Duration,
    /// Silence on an open connection.
    pub idle: Duration,
}

impl Waits {
    /// From the app's milliseconds; zero is refused (it would mean "wait forever"
    /// in some layers and "fail at once" in others).
    pub fn from_ms(connect: u32, request: u32, idle: u32) -> Result<Waits, FieldError> {
        for (name, value) in [
            ("connect_timeout_ms", connect),
            ("request_timeout_ms", request),
            ("idle_timeout_ms", idle),
        ] {
            if value == 0 {
                return Err(FieldError::invalid(format!("{name} must be more than 0")));
            }
        }
        Ok(Waits {
            connect: Duration::from_millis(connect.into()),
            request: Duration::from_millis(request.into()),
            idle: Duration::from_millis(idle.into()),
        })
    }
}

/// The TLS trust the app chose: the bundled public roots, or its own authorities.
#[derive(Debug, Clone, Default)]
pub enum Trust {
    /// Mozilla's roots (webpki-roots), built in.
    #[default]
    PublicRoots,
    /// Only these authorities (DER), from the app's PEM.
    Authorities(Vec<Vec<u8>>),
}

impl Trust {
    /// Parses the app's PEM: at least one certificate, nothing unreadable.
    pub fn from_pem(pem: Option<&str>) -> Result<Trust, FieldError> {
        let Some(pem) = pem else {
            return Ok(Trust::PublicRoots);
        };
        let mut authorities = Vec::new();
        for item in ureq::tls::parse_pem(pem.as_bytes()) {
            match item {
                Ok(ureq::tls::PemItem::Certificate(cert)) => authorities.push(cert.der().to_vec()),
                Ok(_) => {
                    return Err(FieldError::invalid(
                        "trusted_ca_pem holds something other than certificates (a private key?)",
                    ));
                }
                Err(e) => {
                    return Err(FieldError::invalid(format!(
                        "trusted_ca_pem does not parse: {e}"
                    )));
                }
            }
        }
        if authorities.is_empty() {
            return Err(FieldError::invalid(
                "trusted_ca_pem holds no certificate (-----BEGIN CERTIFICATE-----)",
            ));
        }
        // Each must be a certificate rustls can use as a trust anchor.
        let mut roots = rustls::RootCertStore::empty();
        for der in &authorities {
            roots
                .add(rustls::pki_types::CertificateDer::from(der.clone()))
                .map_err(|e| {
                    FieldError::invalid(format!("trusted_ca_pem: a certificate is not usable: {e}"))
                })?;
        }
        Ok(Trust::Authorities(authorities))
    }

    /// The rustls configuration for the push socket (tungstenite); `None` for
    /// tungstenite's own (the same public roots).
    pub fn rustls_config(&self) -> Option<Arc<rustls::ClientConfig>> {
        let Trust::Authorities(authorities) = self else {
            return None;
        };
        let mut roots = rustls::RootCertStore::empty();
        for der in authorities {
            // Checked in `from_pem`.
            let _ = roots.add(rustls::pki_types::CertificateDer::from(der.clone()));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .ok()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Some(Arc::new(config))
    }
}

/// The connection to one server.
#[derive(Debug, Clone)]
pub struct Http {
    agent: ureq::Agent,
    base: String,
    waits: Waits,
    trust: Trust,
}

/// Headers every answer keeps (the upload protocol's and `Retry-After`).
const KEPT_HEADERS: [&str; 6] = [
    "x-wangge-catalogue",
    "upload-offset",
    "upload-complete",
    "upload-length",
    "retry-after",
    "upload-max-chunk",
];

impl Http {
    /// A connection to `base` (e.g. `https://wangge.example.cn`).
    pub fn new(base: &str, waits: Waits, trust: Trust) -> Http {
        let roots = match &trust {
            Trust::PublicRoots => ureq::tls::RootCerts::WebPki,
            Trust::Authorities(authorities) => ureq::tls::RootCerts::new_with_certs(
                &authorities
                    .iter()
                    .map(|der| ureq::tls::Certificate::from_der(der).to_owned())
                    .collect::<Vec<_>>(),
            ),
        };
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .tls_config(ureq::tls::TlsConfig::builder().root_certs(roots).build())
            // DNS has its own phase; both are "connecting" to the app.
            .timeout_resolve(Some(waits.connect))
            .timeout_connect(Some(waits.connect))
            // Each read and write restarts the idle clock: a server that accepted
            // and went silent (or a stalled TLS handshake) ends here.
            .timeout_per_read(Some(waits.idle))
            .timeout_per_write(Some(waits.idle))
            .timeout_global(Some(waits.request))
            .user_agent(concat!("wangge-mobile/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Http {
            agent,
            base: base.trim_end_matches('/').to_owned(),
            waits,
            trust,
        }
    }

    /// The waits the app configured.
    pub fn waits(&self) -> Waits {
        self.waits
    }

    /// The TLS trust the app configured.
    pub fn trust(&self) -> &Trust {
        &self.trust
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

/// A failed exchange: TLS problems apart (the URL or the trust is wrong, retrying
/// will not help), everything else is the network or a silent server.
fn offline(error: ureq::Error) -> FieldError {
    let detail = error.to_string();
    let tls = match &error {
        ureq::Error::Tls(_) | ureq::Error::Rustls(_) | ureq::Error::TlsRequired => true,
        // rustls' errors can also arrive wrapped in an I/O error by the transport.
        ureq::Error::Io(io) => io
            .get_ref()
            .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some()),
        _ => false,
    };
    if tls {
        FieldError::Tls { detail }
    } else {
        FieldError::Offline { detail }
    }
}
