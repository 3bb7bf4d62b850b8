//! Open311 GeoReport v2 without HTTP: the answers' shape (one [`Node`] tree written as
//! JSON or as XML, so the two formats cannot say different things), the statuses as
//! Open311 sees them, W3C dates in Beijing time, the client apps' keys (made and
//! hashed here) and the per-key rate limit. `api/open311.rs` maps it to HTTP;
//! `docs/open311.md` says what was chosen where the specification leaves a choice.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use chrono::{DateTime, FixedOffset, SecondsFormat, Utc};
use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use rand::RngCore as _;
use serde_json::Value;
use sha2::{Digest, Sha256};
use wangge_sync_core::case::Status;

/// The specification this endpoint follows (the discovery's `specification`).
pub const SPECIFICATION: &str = "http://wiki.open311.org/GeoReport_v2";

/// Where the endpoint is, under the server's address.
pub const BASE_PATH: &str = "/open311/v2";

/// The longest description accepted: the specification's 4,000 characters.
pub const MAX_DESCRIPTION_CHARS: usize = 4000;

/// The most requests one `GET requests` returns, and the default: the
/// specification's "first 1000 requests".
pub const MAX_PAGE_SIZE: u32 = 1000;

/// The span `GET requests` covers by default and at most: 90 days.
pub const MAX_SPAN_MS: i64 = 90 * 24 * 3600 * 1000;

/// An answer's format, from the path's `.json` / `.xml`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `application/json`.
    Json,
    /// `text/xml` (the specification's required format).
    Xml,
}

impl Format {
    /// The `Content-Type` of an answer in this format (UTF-8, as the spec requires).
    pub const fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json; charset=utf-8",
            Format::Xml => "text/xml; charset=utf-8",
        }
    }

    /// `name.json` → (`name`, JSON), `name.xml` → (`name`, XML); `None` otherwise.
    pub fn split(file: &str) -> Option<(&str, Format)> {
        if let Some(name) = file.strip_suffix(".json") {
            Some((name, Format::Json))
        } else {
            file.strip_suffix(".xml").map(|name| (name, Format::Xml))
        }
    }
}

/// An answer: the same tree is written as JSON or XML.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// JSON `null`, an empty XML element.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A number (coordinates).
    Float(f64),
    /// Text.
    Text(String),
    /// Named fields, in this order (XML elements in the same order).
    Map(Vec<(&'static str, Node)>),
    /// A JSON array; in XML, one `item` element per entry.
    List {
        /// The XML element of each entry.
        item: &'static str,
        /// The entries.
        items: Vec<Node>,
    },
}

impl Node {
    /// Text, or `Null` for `None`.
    pub fn text(value: Option<impl Into<String>>) -> Node {
        value.map_or(Node::Null, |v| Node::Text(v.into()))
    }

    /// As JSON.
    pub fn to_json(&self) -> Value {
        match self {
            Node::Null => Value::Null,
            Node::Bool(b) => Value::Bool(*b),
            Node::Int(i) => Value::from(*i),
            Node::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
            Node::Text(t) => Value::String(t.clone()),
            Node::Map(fields) => Value::Object(
                fields
                    .iter()
                    .map(|(name, node)| ((*name).to_owned(), node.to_json()))
                    .collect(),
            ),
            Node::List { items, .. } => Value::Array(items.iter().map(Node::to_json).collect()),
        }
    }

    /// As an XML document whose root element is `root`, with the UTF-8 declaration
    /// the specification asks for.
    pub fn to_xml(&self, root: &str) -> String {
        let mut writer = Writer::new_with_indent(Vec::new(), b' ', 2);
        // Writing to a Vec cannot fail; the results are checked all the same.
        let written = writer
            .write_event(Event::Decl(BytesDecl::new("1.0", Some("utf-8"), None)))
            .and_then(|()| write_element(&mut writer, root, self));
        if let Err(error) = written {
            tracing::error!(%error, "writing Open311 XML failed");
        }
        String::from_utf8(writer.into_inner()).unwrap_or_default()
    }
}

fn write_element(
    writer: &mut Writer<Vec<u8>>,
    name: &str,
    node: &Node,
) -> Result<(), std::io::Error> {
    let text = match node {
        Node::Null => {
            return writer.write_event(Event::Empty(BytesStart::new(name)));
        }
        Node::Bool(b) => b.to_string(),
        Node::Int(i) => i.to_string(),
        Node::Float(f) => f.to_string(),
        Node::Text(t) => t.clone(),
        Node::Map(fields) => {
            writer.write_event(Event::Start(BytesStart::new(name)))?;
            for (field, child) in fields {
                write_element(writer, field, child)?;
            }
            return writer.write_event(Event::End(BytesEnd::new(name)));
        }
        Node::List { item, items } => {
            if items.is_empty() {
                return writer.write_event(Event::Empty(BytesStart::new(name)));
            }
            writer.write_event(Event::Start(BytesStart::new(name)))?;
            for child in items {
                write_element(writer, item, child)?;
            }
            return writer.write_event(Event::End(BytesEnd::new(name)));
        }
    };
    writer.write_event(Event::Start(BytesStart::new(name)))?;
    writer.write_event(Event::Text(BytesText::new(&text)))?;
    writer.write_event(Event::End(BytesEnd::new(name)))
}

/// An Open311 error answer's body: the spec's array of `{code, description}`, the
/// code being the HTTP status (as the spec's examples and Chicago's server do).
pub fn errors(status: u16, description: &str) -> Node {
    Node::List {
        item: "error",
        items: vec![Node::Map(vec![
            ("code", Node::Int(i64::from(status))),
            ("description", Node::Text(description.to_owned())),
        ])],
    }
}

/// `open` or `closed`: closed and voided (作废, e.g. a duplicate) cases are closed,
/// every other status is open.
pub fn public_status(status: Status) -> &'static str {
    match status {
        Status::Closed | Status::Voided => "closed",
        _ => "open",
    }
}

/// Beijing time (UTC+8), the offset every Open311 date is written with.
fn beijing() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).unwrap_or_else(|| FixedOffset::east_opt(0).expect("UTC"))
}

/// A W3C date-time (ISO 8601 with the offset), e.g. `2026-12-07T16:30:00+08:00`.
pub fn w3c(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .with_timezone(&beijing())
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Parses a W3C date-time with its offset (`Z` or `±HH:MM`) to ms. A `+` that a
/// client left unencoded in a query string arrives as a space; it is taken back.
pub fn parse_w3c(text: &str) -> Option<i64> {
    let text = text.trim();
    let parsed = DateTime::parse_from_rfc3339(text).ok().or_else(|| {
        // `2026-12-07T16:30:00 08:00`: the space was a `+`.
        let (date, offset) = text.rsplit_once(' ')?;
        DateTime::parse_from_rfc3339(&format!("{date}+{offset}")).ok()
    })?;
    Some(parsed.timestamp_millis())
}

/// A new API key: 32 random bytes, hex (64 characters).
pub fn new_api_key() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex(&bytes)
}

/// A new request token: 16 random bytes, hex.
pub fn new_token() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    hex(&bytes)
}

/// What is stored of a key: its SHA-256, hex (see migration 0015 for why a fast hash
/// is right for a random key).
pub fn key_hash(key: &str) -> String {
    hex(&Sha256::digest(key.trim().as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The per-key limits' state on this node: a token bucket per key id (burst up to the
/// rate, refilled at rate per minute).
static BUCKETS: LazyLock<Mutex<HashMap<String, Bucket>>> = LazyLock::new(Mutex::default);

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at_ms: i64,
}

/// Takes one request from key `key_id`'s allowance of `per_minute`; `Err(seconds)`
/// until the next one is allowed. Counted per node: with several nodes behind a load
/// balancer a key may make up to this many per minute on each (docs/open311.md).
pub fn take_rate(key_id: &str, per_minute: u32, now_ms: i64) -> Result<(), u64> {
    if per_minute == 0 {
        return Err(60);
    }
    let capacity = f64::from(per_minute);
    let per_ms = capacity / 60_000.0;
    let mut buckets = BUCKETS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let bucket = buckets.entry(key_id.to_owned()).or_insert(Bucket {
        tokens: capacity,
        at_ms: now_ms,
    });
    let elapsed = (now_ms - bucket.at_ms).max(0) as f64;
    bucket.tokens = (bucket.tokens + elapsed * per_ms).min(capacity);
    bucket.at_ms = now_ms;
    if bucket.tokens >= 1.0 {
        bucket.tokens -= 1.0;
        Ok(())
    } else {
        let wait_ms = (1.0 - bucket.tokens) / per_ms;
        Err((wait_ms / 1000.0).ceil().max(1.0) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_w3c_in_beijing_time_and_parse_back() {
        let ms = DateTime::parse_from_rfc3339("2026-12-07T08:30:00Z")
            .expect("date")
            .timestamp_millis();
        assert_eq!(w3c(ms), "2026-12-07T16:30:00+08:00");
        assert_eq!(parse_w3c("2026-12-07T16:30:00+08:00"), Some(ms));
        assert_eq!(parse_w3c("2026-12-07T16:30:00 08:00"), Some(ms));
        assert_eq!(parse_w3c("2026-12-07T08:30:00Z"), Some(ms));
        assert_eq!(parse_w3c("2026-12-07"), None);
        assert_eq!(parse_w3c("yesterday"), None);
    }

    #[test]
    fn one_tree_as_json_and_as_xml() {
        let node = Node::List {
            item: "request",
            items: vec![Node::Map(vec![
                ("service_request_id", Node::Text("a<b&c".into())),
                ("lat", Node::Float(34.75)),
                ("media_url", Node::Null),
                ("metadata", Node::Bool(false)),
            ])],
        };
        assert_eq!(
            node.to_json(),
            serde_json::json!([{ "service_request_id": "a<b&c", "lat": 34.75, "media_url": null, "metadata": false }])
        );
        let xml = node.to_xml("service_requests");
        assert!(
            xml.starts_with("<?xml version=\"1.0\" encoding=\"utf-8\"?>"),
            "{xml}"
        );
        assert!(
            xml.contains("<service_request_id>a&lt;b&amp;c</service_request_id>"),
            "{xml}"
        );
        assert!(xml.contains("<media_url/>"), "{xml}");
        assert!(xml.contains("<lat>34.75</lat>"), "{xml}");
        assert_eq!(
            errors(403, "no")
                .to_xml("errors")
                .lines()
                .filter(|l| l.contains("<code>403</code>"))
                .count(),
            1
        );
    }

    #[test]
    fn the_rate_is_a_burst_then_a_steady_pace() {
        let key = uuid::Uuid::now_v7().to_string();
        for _ in 0..3 {
            assert_eq!(take_rate(&key, 3, 0), Ok(()));
        }
        assert_eq!(take_rate(&key, 3, 0), Err(20));
        assert_eq!(take_rate(&key, 3, 19_000), Err(1));
        assert_eq!(take_rate(&key, 3, 20_100), Ok(()));
        assert_eq!(take_rate(&key, 3, 20_101), Err(20));
    }

    #[test]
    fn keys_are_random_and_stored_hashed() {
        let key = new_api_key();
        assert_eq!(key.len(), 64);
        assert_ne!(key, new_api_key());
        assert_eq!(key_hash(&key).len(), 64);
        assert_ne!(key_hash(&key), key);
        assert_eq!(key_hash(&format!(" {key}\n")), key_hash(&key));
    }
}
