//! `GET /metrics`: what an operator watches, in the Prometheus text format
//! (`prometheus-client`, the Prometheus project's own Rust client, OpenMetrics
//! encoding). Sync rounds and what they stored, the server's own changes (routing and
//! automatic dispatch), API case actions, push sockets and notices, the document
//! cache's hits, misses and size, photo uploads, processing, fetches and garbage
//! collection, and the process's resident memory. Unauthenticated,
//! like `/healthz`: keep it on the operators' network.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::doc_cache::CacheNumbers;

/// A sync round's outcome, as a label.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RoundLabels {
    /// `stored` (a reply with data), `refused` (a refused batch) or the error code.
    pub outcome: String,
}

/// A photo upload step's or fetch's outcome, as a label.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// `stored`, `complete`, `deduplicated` or the error code.
    pub outcome: String,
}

/// The server's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Sync rounds by outcome.
    pub sync_rounds: Family<RoundLabels, Counter>,
    /// Changes stored by sync rounds (the server's own included).
    pub sync_changes: Counter,
    /// Changes the server wrote by itself (routing, automatic dispatch).
    pub automatic_changes: Counter,
    /// Round duration, seconds.
    pub sync_seconds: Histogram,
    /// Case actions taken through the API.
    pub case_actions: Counter,
    /// Open push sockets on this node.
    pub push_sockets: Gauge,
    /// Photo upload requests (`PATCH /v1/blobs/…`), by outcome.
    pub blob_patches: Family<OutcomeLabels, Counter>,
    /// Upload bytes received in chunks that were accepted.
    pub blob_bytes_received: Counter,
    /// Time to verify and process a whole photo, seconds.
    pub photo_process_seconds: Histogram,
    /// Derivative fetches (`GET /v1/blobs/…/{variant}`), by outcome.
    pub blob_fetches: Family<OutcomeLabels, Counter>,
    /// Photos deleted by garbage collection.
    pub blob_gc_deleted: Counter,
    /// Their stored bytes.
    pub blob_gc_deleted_bytes: Counter,
    /// Resident memory of the process, bytes (read at each scrape).
    resident_bytes: Gauge,
    /// The document cache (read at each scrape).
    cache_hits: Counter,
    cache_misses: Counter,
    cache_documents: Gauge,
    cache_bytes: Gauge,
    /// Serializes scrapes, which turn the cache's running totals into counter steps.
    scrape: std::sync::Mutex<()>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Fresh metrics, registered.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("wangge");
        let sync_rounds = Family::<RoundLabels, Counter>::default();
        let sync_changes = Counter::default();
        let automatic_changes = Counter::default();
        // 1 ms … ~4 s.
        let sync_seconds = Histogram::new(exponential_buckets(0.001, 2.0, 13));
        let case_actions = Counter::default();
        let push_sockets = Gauge::default();
        let blob_patches = Family::<OutcomeLabels, Counter>::default();
        let blob_bytes_received = Counter::default();
        // 5 ms … ~20 s.
        let photo_process_seconds = Histogram::new(exponential_buckets(0.005, 2.0, 13));
        let blob_fetches = Family::<OutcomeLabels, Counter>::default();
        let (blob_gc_deleted, blob_gc_deleted_bytes) = (Counter::default(), Counter::default());
        registry.register(
            "blob_patches",
            "Photo upload requests, by outcome (stored, complete, deduplicated or the error code)",
            blob_patches.clone(),
        );
        registry.register(
            "blob_bytes_received",
            "Photo upload bytes received in accepted chunks",
            blob_bytes_received.clone(),
        );
        registry.register(
            "photo_process_seconds",
            "Time to verify and process a whole uploaded photo",
            photo_process_seconds.clone(),
        );
        registry.register(
            "blob_fetches",
            "Photo derivative fetches, by outcome (served, partial, not_modified or the error code)",
            blob_fetches.clone(),
        );
        registry.register(
            "blob_gc_deleted",
            "Photos deleted by garbage collection",
            blob_gc_deleted.clone(),
        );
        registry.register(
            "blob_gc_deleted_bytes",
            "Stored bytes of the photos deleted by garbage collection",
            blob_gc_deleted_bytes.clone(),
        );
        let resident_bytes = Gauge::default();
        let (cache_hits, cache_misses) = (Counter::default(), Counter::default());
        let (cache_documents, cache_bytes) = (Gauge::default(), Gauge::default());
        registry.register(
            "document_cache_hits",
            "Stored documents a sync round found loaded in the document cache",
            cache_hits.clone(),
        );
        registry.register(
            "document_cache_misses",
            "Stored documents a sync round had to load",
            cache_misses.clone(),
        );
        registry.register(
            "document_cache_documents",
            "Documents held in the document cache",
            cache_documents.clone(),
        );
        registry.register(
            "document_cache_bytes",
            "Estimated heap of the documents in the document cache",
            cache_bytes.clone(),
        );
        registry.register(
            "sync_rounds",
            "Sync rounds, by outcome",
            sync_rounds.clone(),
        );
        registry.register(
            "sync_changes_stored",
            "Document changes stored by sync rounds",
            sync_changes.clone(),
        );
        registry.register(
            "automatic_changes",
            "Changes the server wrote by itself (routing, automatic dispatch)",
            automatic_changes.clone(),
        );
        registry.register(
            "sync_round_seconds",
            "Duration of a sync round",
            sync_seconds.clone(),
        );
        registry.register(
            "case_actions",
            "Case actions taken through the API",
            case_actions.clone(),
        );
        registry.register(
            "push_sockets",
            "Open push WebSockets on this node",
            push_sockets.clone(),
        );
        registry.register(
            "resident_memory_bytes",
            "Resident set size of the process",
            resident_bytes.clone(),
        );
        Metrics {
            registry,
            sync_rounds,
            sync_changes,
            automatic_changes,
            sync_seconds,
            case_actions,
            push_sockets,
            blob_patches,
            blob_bytes_received,
            photo_process_seconds,
            blob_fetches,
            blob_gc_deleted,
            blob_gc_deleted_bytes,
            resident_bytes,
            cache_hits,
            cache_misses,
            cache_documents,
            cache_bytes,
            scrape: std::sync::Mutex::new(()),
        }
    }

    /// Counts a round by its outcome.
    pub fn round(&self, outcome: &str) {
        self.sync_rounds
            .get_or_create(&RoundLabels {
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// Counts a photo upload request or derivative fetch by its outcome.
    pub fn blob(family: &Family<OutcomeLabels, Counter>, outcome: &str) {
        family
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// The text exposition.
    pub fn render(&self, open_sockets: usize, cache: CacheNumbers) -> String {
        let _one_scrape_at_a_time = self
            .scrape
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.cache_hits
            .inc_by(cache.hits.saturating_sub(self.cache_hits.get()));
        self.cache_misses
            .inc_by(cache.misses.saturating_sub(self.cache_misses.get()));
        self.cache_documents
            .set(i64::try_from(cache.documents).unwrap_or(i64::MAX));
        self.cache_bytes
            .set(i64::try_from(cache.bytes).unwrap_or(i64::MAX));
        self.push_sockets
            .set(i64::try_from(open_sockets).unwrap_or(i64::MAX));
        if let Some(bytes) = resident_bytes() {
            self.resident_bytes
                .set(i64::try_from(bytes).unwrap_or(i64::MAX));
        }
        let mut text = String::new();
        if let Err(error) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            tracing::error!(%error, "metrics encoding failed");
        }
        text
    }
}

/// VmRSS of this process (Linux), bytes.
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
