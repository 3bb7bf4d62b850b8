//! Photos as content-addressed blobs: the resumable upload (a tus-shaped `HEAD`/`PATCH`
//! on `/v1/blobs/{sha256}`; why this shape is in `docs/plans/issue6-blobs.md`),
//! verification and processing when the last byte arrives, and garbage collection.
//! The HTTP side is `api/blobs.rs`; the SQL is `store/blobs.rs`; the image work is
//! [`crate::photos`].
//!
//! An upload in progress belongs to one (photo, device): phones never write into each
//! other's. Each chunk is committed whole or not at all, so a cut connection costs at
//! most the chunk in flight. Whoever finishes first stores the photo; everyone after
//! that is told at once that it is there (deduplication), before sending a byte.

use std::sync::Arc;
use std::time::Duration;

use wangge_sync_core::photo::{PhotoError, sha256_hex, sniff_format};

use crate::photos::{ProcessedPhoto, SERVER_LIMITS, probe, process};
use crate::store::blobs::{BlobRow, DerivativeRow, NewBlob, UploadRow, UploadStart};
use crate::store::{Store, StoreError};

/// The served variants.
pub const VARIANTS: [&str; 2] = ["display", "thumb"];

/// Limits and timings (from `WANGGE_BLOB_*` and `WANGGE_PHOTO_*`, see `config.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobSettings {
    /// The largest upload, bytes.
    pub max_bytes: u64,
    /// The largest chunk (one `PATCH` body), bytes.
    pub max_chunk: u64,
    /// A half upload is deleted this long after its last chunk.
    pub upload_ttl: Duration,
    /// Half uploads one device may have at once.
    pub max_uploads_per_device: u64,
    /// Photos processed at once (each holds its bytes and ~40 MiB of pixels).
    pub workers: usize,
    /// How long a finished upload waits for a processing slot before `503`.
    pub worker_wait: Duration,
    /// Keep the uploaded bytes (never served).
    pub keep_original: bool,
    /// How often expiry and garbage collection run in `wangge serve`.
    pub gc_every: Duration,
    /// How long a photo stays after the last case stopped referencing it.
    pub gc_grace: Duration,
}

impl Default for BlobSettings {
    fn default() -> Self {
        BlobSettings {
            max_bytes: 20 * 1024 * 1024,
            max_chunk: 1024 * 1024,
            upload_ttl: Duration::from_secs(3 * 24 * 3600),
            max_uploads_per_device: 32,
            workers: std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1)),
            worker_wait: Duration::from_secs(30),
            keep_original: false,
            gc_every: Duration::from_secs(3600),
            gc_grace: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

/// Why an upload or a fetch was refused. `api/blobs.rs` maps each to a status.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// The upload is larger than allowed.
    #[error("the upload is {length} bytes; at most {max} are accepted")]
    TooLarge {
        /// Declared length.
        length: u64,
        /// The limit.
        max: u64,
    },
    /// One chunk is larger than allowed.
    #[error("a chunk of {length} bytes; send at most {max} per request")]
    ChunkTooLarge {
        /// The chunk's length.
        length: u64,
        /// The limit.
        max: u64,
    },
    /// The chunk ends beyond the declared length.
    #[error("the chunk ends at byte {end}, past the upload's length {length}")]
    PastEnd {
        /// Where the chunk would end.
        end: u64,
        /// The declared length.
        length: u64,
    },
    /// A different length than the upload (or the stored photo) has.
    #[error("the upload is {expected} bytes long, not {declared}")]
    LengthMismatch {
        /// What is stored.
        expected: u64,
        /// What was sent.
        declared: u64,
    },
    /// No upload of this photo by this device (none started, or finished and deleted).
    #[error("no upload of this photo from this device: start at offset 0")]
    NotFound,
    /// The half upload expired.
    #[error("the upload expired: start again at offset 0")]
    Expired,
    /// The chunk does not start where the upload stands.
    #[error("the upload stands at byte {received}, not at the chunk's offset")]
    OffsetMismatch {
        /// Bytes the server has.
        received: u64,
    },
    /// The device has too many half uploads.
    #[error("this device has {max} unfinished uploads: finish or delete some first")]
    TooMany {
        /// The limit.
        max: u64,
    },
    /// The bytes' SHA-256 is not the name they were uploaded under.
    #[error("the uploaded bytes hash to {actual}, not to the name they were sent under")]
    HashMismatch {
        /// The bytes' hash.
        actual: String,
    },
    /// Not a photo the server accepts (or a server bug, for `PhotoError::Internal`).
    #[error(transparent)]
    Photo(#[from] PhotoError),
    /// Every processing slot stayed busy.
    #[error("the server is busy processing photos: retry shortly")]
    Busy,
    /// The database.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Who uploads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uploader {
    /// The user.
    pub user: String,
    /// The device (from the token).
    pub device: String,
}

/// What the server has of a photo, for this device.
#[derive(Debug, Clone, PartialEq)]
pub enum UploadStatus {
    /// The photo is stored.
    Complete(BlobRow),
    /// This device's half upload.
    Partial(UploadRow),
}

/// What a chunk did.
#[derive(Debug, Clone, PartialEq)]
pub enum ChunkOutcome {
    /// Stored; more to come.
    Partial {
        /// Bytes the server has now.
        received: u64,
        /// When the half upload expires unless continued (ms).
        expires_at: i64,
    },
    /// The photo is stored.
    Complete {
        /// The photo.
        blob: BlobRow,
        /// It was stored already (by this device before, or by another).
        deduplicated: bool,
    },
}

/// The upload service.
pub struct Blobs {
    store: Arc<dyn Store>,
    metrics: Arc<crate::metrics::Metrics>,
    /// The limits and timings.
    pub settings: BlobSettings,
    slots: Arc<tokio::sync::Semaphore>,
}

impl std::fmt::Debug for Blobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Blobs")
            .field("backend", &self.store.backend())
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Blobs {
    /// The service over `store`.
    pub fn new(
        store: Arc<dyn Store>,
        settings: BlobSettings,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> Blobs {
        let slots = Arc::new(tokio::sync::Semaphore::new(settings.workers.max(1)));
        Blobs {
            store,
            metrics,
            settings,
            slots,
        }
    }

    fn expires_at(&self, now: i64) -> i64 {
        now.saturating_add(i64::try_from(self.settings.upload_ttl.as_millis()).unwrap_or(i64::MAX))
    }

    /// What the server has: the photo, this device's half upload, or nothing
    /// (`NotFound`; `Expired` once, as the expired upload is deleted).
    pub async fn status(
        &self,
        sha256: &str,
        device: &str,
        now: i64,
    ) -> Result<UploadStatus, BlobError> {
        if let Some(blob) = self.store.blob(sha256).await? {
            return Ok(UploadStatus::Complete(blob));
        }
        match self.store.upload(sha256, device).await? {
            Some(upload) if upload.expires_at < now => {
                self.store.upload_delete(sha256, device).await?;
                Err(BlobError::Expired)
            }
            Some(upload) => Ok(UploadStatus::Partial(upload)),
            None => Err(BlobError::NotFound),
        }
    }

    /// Checks a chunk's headers before its body is read: a refusal or a photo that is
    /// stored already costs no upload bytes. `Some` when the photo is stored (the
    /// answer, the device's half upload deleted), `None` to go on and read the body.
    pub async fn check_chunk(
        &self,
        sha256: &str,
        who: &Uploader,
        offset: u64,
        length: u64,
        chunk_length: u64,
    ) -> Result<Option<ChunkOutcome>, BlobError> {
        let settings = &self.settings;
        if length > settings.max_bytes {
            return Err(BlobError::TooLarge {
                length,
                max: settings.max_bytes,
            });
        }
        if length == 0 {
            return Err(PhotoError::Empty.into());
        }
        if chunk_length > settings.max_chunk {
            return Err(BlobError::ChunkTooLarge {
                length: chunk_length,
                max: settings.max_chunk,
            });
        }
        let end = offset.saturating_add(chunk_length);
        if end > length {
            return Err(BlobError::PastEnd { end, length });
        }
        if let Some(blob) = self.store.blob(sha256).await? {
            let stored = u64::try_from(blob.size).unwrap_or(0);
            if stored != length {
                return Err(BlobError::LengthMismatch {
                    expected: stored,
                    declared: length,
                });
            }
            self.store.upload_delete(sha256, &who.device).await?;
            return Ok(Some(ChunkOutcome::Complete {
                blob,
                deduplicated: true,
            }));
        }
        Ok(None)
    }

    /// Stores a chunk at `offset` of an upload of `length` bytes (after
    /// [`check_chunk`](Self::check_chunk)), and finishes the upload when it was the
    /// last: the hash is verified, the photo processed and stored.
    pub async fn put_chunk(
        &self,
        sha256: &str,
        who: &Uploader,
        offset: u64,
        length: u64,
        chunk: &[u8],
        now: i64,
    ) -> Result<ChunkOutcome, BlobError> {
        let to_i64 = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        let chunk_length = chunk.len() as u64;
        if offset == 0 {
            // A photo that fits in one request (what phones send on a good link):
            // processed from memory, no chunk rows written.
            if chunk_length == length {
                self.store.upload_delete(sha256, &who.device).await?;
                return self
                    .finish(sha256, who, Whole::Received(chunk.to_vec()), now)
                    .await;
            }
            if let Some(upload) = self.store.upload(sha256, &who.device).await? {
                if upload.expires_at >= now && upload.received > 0 {
                    return Err(BlobError::OffsetMismatch {
                        received: u64::try_from(upload.received).unwrap_or(0),
                    });
                }
                // Expired, or nothing received yet (an empty first PATCH): this start
                // replaces it.
                self.store.upload_delete(sha256, &who.device).await?;
            }
            // Twelve bytes tell every format apart; a shorter first chunk is judged
            // when the upload completes.
            if chunk.len() >= 12 {
                refuse_early(chunk)?;
            }
            let max = self.settings.max_uploads_per_device;
            let row = UploadRow {
                sha256: sha256.to_owned(),
                device: who.device.clone(),
                user_id: who.user.clone(),
                length: to_i64(length),
                received: 0,
                created_at: now,
                updated_at: now,
                expires_at: self.expires_at(now),
            };
            let started = self.store.upload_start(&row, chunk, max).await?;
            if started == UploadStart::TooMany {
                return Err(BlobError::TooMany { max });
            }
            if started == UploadStart::Started {
                self.metrics.blob_bytes_received.inc_by(chunk_length);
            } else {
                // Another request of this device started it in between.
                let received = self
                    .store
                    .upload(sha256, &who.device)
                    .await?
                    .map_or(0, |u| u64::try_from(u.received).unwrap_or(0));
                return Err(BlobError::OffsetMismatch { received });
            }
            return Ok(ChunkOutcome::Partial {
                received: chunk_length,
                expires_at: row.expires_at,
            });
        }
        let upload = match self.store.upload(sha256, &who.device).await? {
            None => return self.completed_meanwhile(sha256, BlobError::NotFound).await,
            Some(upload) if upload.expires_at < now => {
                self.store.upload_delete(sha256, &who.device).await?;
                return Err(BlobError::Expired);
            }
            Some(upload) => upload,
        };
        let expected = u64::try_from(upload.length).unwrap_or(0);
        if expected != length {
            return Err(BlobError::LengthMismatch {
                expected,
                declared: length,
            });
        }
        let received = u64::try_from(upload.received).unwrap_or(0);
        if offset != received {
            return Err(BlobError::OffsetMismatch { received });
        }
        let received = if chunk.is_empty() {
            // An empty chunk at the end finishes an upload whose last chunk was stored
            // but not processed (the server stopped in between).
            received
        } else {
            let expires_at = self.expires_at(now);
            match self
                .store
                .upload_append(sha256, &who.device, to_i64(offset), chunk, now, expires_at)
                .await?
            {
                Some(received) => {
                    self.metrics.blob_bytes_received.inc_by(chunk_length);
                    u64::try_from(received).unwrap_or(0)
                }
                None => {
                    let received = self
                        .store
                        .upload(sha256, &who.device)
                        .await?
                        .map_or(0, |u| u64::try_from(u.received).unwrap_or(0));
                    return Err(BlobError::OffsetMismatch { received });
                }
            }
        };
        if received < length {
            return Ok(ChunkOutcome::Partial {
                received,
                expires_at: self.expires_at(now),
            });
        }
        self.finish(sha256, who, Whole::Stored, now).await
    }

    /// Verifies, processes and stores a whole upload. A photo that will never be
    /// accepted (wrong hash, not an image, too large, corrupt) deletes the half upload;
    /// a failure of ours (busy, a processing bug, the database) keeps it, so an empty
    /// `PATCH` at the end retries.
    async fn finish(
        &self,
        sha256: &str,
        who: &Uploader,
        whole: Whole,
        now: i64,
    ) -> Result<ChunkOutcome, BlobError> {
        // The slot is taken before the photo is decoded: memory stays within
        // `workers` photos being processed (each ~40 MiB of pixels at 12 MP).
        let permit = tokio::time::timeout(
            self.settings.worker_wait,
            Arc::clone(&self.slots).acquire_owned(),
        )
        .await
        .map_err(|_| BlobError::Busy)?
        .map_err(|_| BlobError::Busy)?;
        // Chunks are assembled only now, so waiting uploads hold no memory.
        let bytes = match whole {
            Whole::Received(bytes) => bytes,
            Whole::Stored => self.store.upload_bytes(sha256, &who.device).await?,
        };
        let expected = sha256.to_owned();
        let keep_original = self.settings.keep_original;
        let started = std::time::Instant::now();
        let outcome = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let actual = sha256_hex(&bytes);
            if actual != expected {
                return Err(BlobError::HashMismatch { actual });
            }
            let processed = process(&bytes, &SERVER_LIMITS)?;
            Ok((processed, bytes.len(), keep_original.then_some(bytes)))
        })
        .await
        .map_err(|error| PhotoError::Internal(format!("processing task: {error}")))?;
        self.metrics
            .photo_process_seconds
            .observe(started.elapsed().as_secs_f64());
        let (processed, size, original) = match outcome {
            Ok(done) => done,
            Err(error) => {
                let final_refusal = match &error {
                    BlobError::Photo(PhotoError::Internal(_)) => false,
                    BlobError::Photo(_) | BlobError::HashMismatch { .. } => true,
                    _ => false,
                };
                if let BlobError::HashMismatch { .. } = error {
                    // Another request of this device finished the upload while this
                    // one read it (a retry after a lost answer): not a wrong hash.
                    if self.store.blob(sha256).await?.is_some() {
                        return self.completed_meanwhile(sha256, error).await;
                    }
                }
                if final_refusal {
                    self.store.upload_delete(sha256, &who.device).await?;
                }
                tracing::warn!(sha = short(sha256), %error, "photo refused");
                return Err(error);
            }
        };
        let blob = new_blob(sha256, who, &processed, size, original, now);
        let inserted = self
            .store
            .blob_complete(&blob, Some(&who.device), now)
            .await?;
        let stored = self
            .store
            .blob(sha256)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("photo {sha256} vanished as stored")))?;
        tracing::info!(
            sha = short(sha256),
            size,
            format = %stored.format,
            width = stored.width,
            height = stored.height,
            has_position = stored.lon.is_some(),
            deduplicated = !inserted,
            ms = started.elapsed().as_millis() as u64,
            "photo stored"
        );
        Ok(ChunkOutcome::Complete {
            blob: stored,
            deduplicated: !inserted,
        })
    }

    /// The photo as stored by a concurrent request, or `otherwise`.
    async fn completed_meanwhile(
        &self,
        sha256: &str,
        otherwise: BlobError,
    ) -> Result<ChunkOutcome, BlobError> {
        match self.store.blob(sha256).await? {
            Some(blob) => Ok(ChunkOutcome::Complete {
                blob,
                deduplicated: true,
            }),
            None => Err(otherwise),
        }
    }

    /// Abandons this device's half upload; false if there was none.
    pub async fn abandon(&self, sha256: &str, device: &str) -> Result<bool, StoreError> {
        self.store.upload_delete(sha256, device).await
    }

    /// Expiry and garbage collection: half uploads past their time, then every photo
    /// no stored case has referenced for the grace period (all of them, in batches).
    pub async fn collect(
        &self,
        now: i64,
        grace: Duration,
        dry_run: bool,
    ) -> Result<GcReport, StoreError> {
        const BATCH: u32 = 500;
        let mut report = GcReport {
            expired_uploads: if dry_run {
                0
            } else {
                self.store.uploads_expire(now).await?
            },
            ..GcReport::default()
        };
        let cutoff = now.saturating_sub(i64::try_from(grace.as_millis()).unwrap_or(i64::MAX));
        loop {
            let batch = self
                .store
                .blobs_gc_batch(now, cutoff, BATCH, dry_run)
                .await?;
            if !batch.backfilled {
                report.not_backfilled = true;
                break;
            }
            let n = batch.deleted.len();
            report.deleted += n as u64;
            report.deleted_bytes += batch
                .deleted
                .iter()
                .map(|(_, bytes)| u64::try_from(*bytes).unwrap_or(0))
                .sum::<u64>();
            if !dry_run {
                self.metrics.blob_gc_deleted.inc_by(n as u64);
            }
            // A dry run deletes nothing, so the next batch would be the same.
            if dry_run || n < BATCH as usize {
                break;
            }
        }
        if !dry_run {
            self.metrics
                .blob_gc_deleted_bytes
                .inc_by(report.deleted_bytes);
        }
        Ok(report)
    }

    /// Puts every stored case's photos into `case_photos` (cases stored before
    /// migration 0010 have none), then lets garbage collection run. Returns the cases
    /// read. A case written meanwhile can keep a stale extra reference, which only
    /// keeps its photo longer; the next write of that case corrects it.
    pub async fn backfill(&self, rules: &crate::cases::CaseRules) -> Result<u64, StoreError> {
        use crate::store::cases::Derive as _;
        let materializer = crate::cases::Materializer {
            rules,
            now: 0,
            clock_skew_ms: None,
        };
        let mut after = String::new();
        let mut cases = 0;
        loop {
            let ids = self.store.case_ids_after(&after, 200).await?;
            let Some(last) = ids.last() else { break };
            after = last.clone();
            for id in ids {
                let Some(stored) = self.store.sync_document(&id).await? else {
                    continue;
                };
                let doc = wangge_sync_core::sync::load_chunks(&stored.chunks)
                    .map_err(|e| StoreError::Corrupt(format!("case {id} does not load: {e}")))?;
                let derived = materializer.derive(&id, wangge_sync_core::sync::DocKind::Case, &doc);
                self.store.add_case_photos(&id, &derived.photos).await?;
                cases += 1;
            }
        }
        self.store.set_backfilled().await?;
        Ok(cases)
    }
}

/// Where a finished upload's bytes are.
enum Whole {
    /// In the one request that carried them all.
    Received(Vec<u8>),
    /// In this device's chunk rows.
    Stored,
}

/// What a collection did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Half uploads deleted for being past their time.
    pub expired_uploads: u64,
    /// Photos deleted (or, in a dry run, that would be).
    pub deleted: u64,
    /// Their stored bytes.
    pub deleted_bytes: u64,
    /// Nothing was collected: run `wangge blobs backfill` first.
    pub not_backfilled: bool,
}

/// Refuses on the first chunk what can never become an accepted photo: not an image,
/// HEIF, or a header announcing too many pixels (a decompression bomb is refused
/// before the rest of it is sent). A first chunk too short to tell is let through;
/// the whole upload is checked when it completes.
fn refuse_early(first: &[u8]) -> Result<(), PhotoError> {
    sniff_format(first)?;
    match probe(first, &SERVER_LIMITS) {
        Err(error @ (PhotoError::TooLarge { .. } | PhotoError::HeifUnsupported)) => Err(error),
        _ => Ok(()),
    }
}

fn new_blob(
    sha256: &str,
    who: &Uploader,
    processed: &ProcessedPhoto,
    size: usize,
    original: Option<Vec<u8>>,
    now: i64,
) -> NewBlob {
    let derivative = |variant: &str, d: &crate::photos::Derivative| DerivativeRow {
        variant: variant.to_owned(),
        width: i64::from(d.width),
        height: i64::from(d.height),
        // The bytes of a derivative never change once stored; their own hash is a
        // strong validator.
        etag: sha256_hex(&d.bytes)[..32].to_owned(),
        bytes: d.bytes.clone(),
    };
    let position = processed.metadata.position;
    NewBlob {
        row: BlobRow {
            sha256: sha256.to_owned(),
            size: i64::try_from(size).unwrap_or(i64::MAX),
            format: format_name(processed.original.format).to_owned(),
            width: i64::from(processed.original.width),
            height: i64::from(processed.original.height),
            taken_at: processed.metadata.taken_at.map(|t| t.timestamp_millis()),
            lon: position.map(|p| p.lon),
            lat: position.map(|p| p.lat),
            accuracy: position.and_then(|p| p.accuracy_m),
            uploaded_by: who.user.clone(),
            created_at: now,
            released_at: None,
        },
        derivatives: vec![
            derivative("display", &processed.display),
            derivative("thumb", &processed.thumbnail),
        ],
        original,
    }
}

fn format_name(format: crate::photos::PhotoFormat) -> &'static str {
    match format {
        crate::photos::PhotoFormat::Jpeg => "jpeg",
        crate::photos::PhotoFormat::Png => "png",
        crate::photos::PhotoFormat::WebP => "webp",
        crate::photos::PhotoFormat::Heif => "heif",
    }
}

/// A photo's name shortened for logs.
pub fn short(sha256: &str) -> &str {
    sha256.get(..12).unwrap_or(sha256)
}

/// Whether `text` is a blob name: 64 lowercase hex digits.
pub fn is_sha256(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// What to send for a `Range` header over a body of `len` bytes (RFC 9110 §14).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeAnswer {
    /// The whole body (no range, several ranges, or one we do not understand).
    Full,
    /// Bytes `start..=end`.
    Partial {
        /// First byte.
        start: u64,
        /// Last byte (inclusive).
        end: u64,
    },
    /// `416`: the range lies beyond the body.
    Unsatisfiable,
}

/// Parses one `bytes=a-b`, `bytes=a-` or `bytes=-n` range. Several ranges get the whole
/// body, which RFC 9110 allows and spares a multipart answer for a photo.
pub fn byte_range(header: Option<&str>, len: u64) -> RangeAnswer {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return RangeAnswer::Full;
    };
    if spec.contains(',') {
        return RangeAnswer::Full;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeAnswer::Full;
    };
    let (first, last) = (first.trim(), last.trim());
    if first.is_empty() {
        // The last n bytes.
        let Ok(n) = last.parse::<u64>() else {
            return RangeAnswer::Full;
        };
        if n == 0 || len == 0 {
            return RangeAnswer::Unsatisfiable;
        }
        return RangeAnswer::Partial {
            start: len.saturating_sub(n),
            end: len - 1,
        };
    }
    let Ok(start) = first.parse::<u64>() else {
        return RangeAnswer::Full;
    };
    let end = if last.is_empty() {
        len.saturating_sub(1)
    } else {
        match last.parse::<u64>() {
            Ok(end) if end >= start => end.min(len.saturating_sub(1)),
            _ => return RangeAnswer::Full,
        }
    };
    if start >= len {
        return RangeAnswer::Unsatisfiable;
    }
    RangeAnswer::Partial { start, end }
}

#[cfg(test)]
mod tests {
    use super::{RangeAnswer, byte_range, is_sha256};

    #[test]
    fn byte_ranges_follow_rfc_9110() {
        let partial = |start, end| RangeAnswer::Partial { start, end };
        assert_eq!(byte_range(None, 100), RangeAnswer::Full);
        assert_eq!(byte_range(Some("bytes=0-9"), 100), partial(0, 9));
        assert_eq!(byte_range(Some("bytes=90-"), 100), partial(90, 99));
        assert_eq!(byte_range(Some("bytes=-10"), 100), partial(90, 99));
        assert_eq!(byte_range(Some("bytes=-500"), 100), partial(0, 99));
        assert_eq!(byte_range(Some("bytes=50-500"), 100), partial(50, 99));
        assert_eq!(
            byte_range(Some("bytes=100-"), 100),
            RangeAnswer::Unsatisfiable
        );
        assert_eq!(
            byte_range(Some("bytes=-0"), 100),
            RangeAnswer::Unsatisfiable
        );
        assert_eq!(byte_range(Some("bytes=0-1,5-6"), 100), RangeAnswer::Full);
        assert_eq!(byte_range(Some("bytes=9-3"), 100), RangeAnswer::Full);
        assert_eq!(byte_range(Some("items=0-3"), 100), RangeAnswer::Full);
        assert_eq!(byte_range(Some("bytes=x-3"), 100), RangeAnswer::Full);
    }

    #[test]
    fn blob_names_are_lowercase_sha256_hex() {
        assert!(is_sha256(&"a".repeat(64)));
        assert!(!is_sha256(&"A".repeat(64)));
        assert!(!is_sha256(&"a".repeat(63)));
        assert!(!is_sha256(&format!("{}g", "a".repeat(63))));
    }
}
