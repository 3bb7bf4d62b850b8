//! Photo storage (`blob_*` tables, migration 0011): half uploads committed a whole
//! chunk at a time, accepted photos with their derivatives, and garbage collection.
//! One SQL text for both databases (`impl_blob_store!`), like the rest of the store.
//!
//! **Why a referenced photo is never deleted.** `case_photos` is written in the
//! transaction that stores a case. A writer that adds a reference also runs
//! `UPDATE blobs SET released_at = NULL` on that photo's row (in `replace_case_photos`),
//! which locks the row if it is a deletion candidate. Garbage collection deletes one row
//! at a time with `released_at < cutoff AND NOT EXISTS (reference)`: a reference
//! committed before that statement is seen; one still in flight holds the row lock, and
//! PostgreSQL rechecks the row after it commits, finds `released_at` NULL and skips it.
//! SQLite has one writer at a time, so there is no interleaving at all.

use super::StoreFuture;

/// A half upload (`blob_uploads`).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct UploadRow {
    /// The photo's name: SHA-256 of its bytes, hex.
    pub sha256: String,
    /// The uploading device.
    pub device: String,
    /// Its user.
    pub user_id: String,
    /// The whole upload's length, bytes.
    pub length: i64,
    /// Bytes received so far (whole chunks).
    pub received: i64,
    /// Started at, ms.
    pub created_at: i64,
    /// Last chunk at, ms.
    pub updated_at: i64,
    /// Deleted after this time (ms) unless another chunk arrives.
    pub expires_at: i64,
}

/// An accepted photo (`blobs`).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct BlobRow {
    /// SHA-256 of the uploaded bytes, hex.
    pub sha256: String,
    /// Uploaded size, bytes.
    pub size: i64,
    /// `jpeg`, `png` or `webp` (from the bytes).
    pub format: String,
    /// Stored width, pixels.
    pub width: i64,
    /// Stored height, pixels.
    pub height: i64,
    /// EXIF time, ms.
    pub taken_at: Option<i64>,
    /// EXIF GPS longitude (WGS-84).
    pub lon: Option<f64>,
    /// EXIF GPS latitude (WGS-84).
    pub lat: Option<f64>,
    /// EXIF GPS accuracy, metres.
    pub accuracy: Option<f64>,
    /// Who completed the upload.
    pub uploaded_by: String,
    /// Accepted at, ms.
    pub created_at: i64,
    /// Since when no stored case references it (ms); `None` while one does.
    pub released_at: Option<i64>,
}

/// A served image (`blob_derivatives`).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DerivativeRow {
    /// `display` or `thumb`.
    pub variant: String,
    /// Width, pixels.
    pub width: i64,
    /// Height, pixels.
    pub height: i64,
    /// The HTTP entity tag (without quotes).
    pub etag: String,
    /// The JPEG.
    pub bytes: Vec<u8>,
}

/// An accepted photo to store: its row, its derivatives and, if kept, the original.
#[derive(Debug, Clone, PartialEq)]
pub struct NewBlob {
    /// The row (`released_at` is decided by the store).
    pub row: BlobRow,
    /// The derivatives.
    pub derivatives: Vec<DerivativeRow>,
    /// The uploaded bytes, when originals are kept.
    pub original: Option<Vec<u8>>,
}

/// What one garbage collection batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcBatch {
    /// False: `case_photos` is not known complete (no backfill yet), nothing was looked at.
    pub backfilled: bool,
    /// The photos deleted (or, in a dry run, that would be), with their stored bytes
    /// (original size + derivatives).
    pub deleted: Vec<(String, i64)>,
}

/// What [`BlobStore::upload_start`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadStart {
    /// Started.
    Started,
    /// The device has a half upload of this photo already.
    Exists,
    /// The device has its maximum of half uploads.
    TooMany,
}

/// Photo storage.
pub trait BlobStore: Send + Sync {
    /// An accepted photo.
    fn blob<'a>(&'a self, sha256: &'a str) -> StoreFuture<'a, Option<BlobRow>>;
    /// A device's half upload of a photo.
    fn upload<'a>(&'a self, sha256: &'a str, device: &'a str)
    -> StoreFuture<'a, Option<UploadRow>>;
    /// Starts a half upload with its first chunk, unless the device has one of this
    /// photo already or `max_live` unexpired ones (at `row.created_at`): counted and
    /// inserted in one transaction under the device's row lock, so parallel first
    /// chunks cannot all pass the count.
    fn upload_start<'a>(
        &'a self,
        row: &'a UploadRow,
        first: &'a [u8],
        max_live: u64,
    ) -> StoreFuture<'a, UploadStart>;
    /// Appends a chunk at `start` if the upload has received exactly `start` bytes and
    /// has not expired at `now`: the new count, or `None` (nothing stored).
    fn upload_append<'a>(
        &'a self,
        sha256: &'a str,
        device: &'a str,
        start: i64,
        bytes: &'a [u8],
        now: i64,
        expires_at: i64,
    ) -> StoreFuture<'a, Option<i64>>;
    /// The bytes received, in order (checked contiguous).
    fn upload_bytes<'a>(&'a self, sha256: &'a str, device: &'a str) -> StoreFuture<'a, Vec<u8>>;
    /// Deletes a device's half upload; false if there was none.
    fn upload_delete<'a>(&'a self, sha256: &'a str, device: &'a str) -> StoreFuture<'a, bool>;
    /// Stores an accepted photo and deletes `device`'s half upload of it, in one
    /// transaction; false if the photo was stored already (by another device).
    fn blob_complete<'a>(
        &'a self,
        blob: &'a NewBlob,
        device: Option<&'a str>,
        now: i64,
    ) -> StoreFuture<'a, bool>;
    /// A derivative of an accepted photo.
    fn derivative<'a>(
        &'a self,
        sha256: &'a str,
        variant: &'a str,
    ) -> StoreFuture<'a, Option<DerivativeRow>>;
    /// Deletes the half uploads expired at `now`: how many.
    fn uploads_expire(&self, now: i64) -> StoreFuture<'_, u64>;
    /// One garbage collection batch: up to `limit` photos released before `cutoff` and
    /// referenced by no stored case, deleted (not in a dry run) one row at a time.
    fn blobs_gc_batch(
        &self,
        now: i64,
        cutoff: i64,
        limit: u32,
        dry_run: bool,
    ) -> StoreFuture<'_, GcBatch>;
    /// Up to `limit` case document ids after `after`, by id (the backfill's pages).
    fn case_ids_after<'a>(&'a self, after: &'a str, limit: u32) -> StoreFuture<'a, Vec<String>>;
    /// Adds references of case `id` (the backfill; existing ones are kept).
    fn add_case_photos<'a>(&'a self, id: &'a str, photos: &'a [String]) -> StoreFuture<'a, ()>;
    /// Records that every stored case's photos are in `case_photos`.
    fn set_backfilled(&self) -> StoreFuture<'_, ()>;
    /// Whether they are.
    fn backfilled(&self) -> StoreFuture<'_, bool>;
}

/// Implements [`BlobStore`] for `$store` (a struct with a `pool` field and a
/// `write_turn()`) over `$db`.
macro_rules! impl_blob_store {
    ($store:ty, $db:ident) => {
        impl $crate::store::blobs::BlobStore for $store {
            fn blob<'a>(
                &'a self,
                sha256: &'a str,
            ) -> $crate::store::StoreFuture<'a, Option<$crate::store::blobs::BlobRow>> {
                Box::pin(async move {
                    Ok(sqlx::query_as(
                        "SELECT sha256, size, format, width, height, taken_at, lon, lat, accuracy,
                             uploaded_by, created_at, released_at
                         FROM blobs WHERE sha256 = $1",
                    )
                    .bind(sha256)
                    .fetch_optional(&self.pool)
                    .await?)
                })
            }

            fn upload<'a>(
                &'a self,
                sha256: &'a str,
                device: &'a str,
            ) -> $crate::store::StoreFuture<'a, Option<$crate::store::blobs::UploadRow>> {
                Box::pin(async move {
                    Ok(sqlx::query_as(
                        "SELECT sha256, device, user_id, length, received, created_at, updated_at,
                             expires_at
                         FROM blob_uploads WHERE sha256 = $1 AND device = $2",
                    )
                    .bind(sha256)
                    .bind(device)
                    .fetch_optional(&self.pool)
                    .await?)
                })
            }

            fn upload_start<'a>(
                &'a self,
                row: &'a $crate::store::blobs::UploadRow,
                first: &'a [u8],
                max_live: u64,
            ) -> $crate::store::StoreFuture<'a, $crate::store::blobs::UploadStart> {
                use $crate::store::blobs::UploadStart;
                Box::pin(async move {
                    let _turn = self.write_turn().await;
                    let mut tx = self.pool.begin().await?;
                    // The device's row, locked until the end of the transaction (a
                    // no-op update takes PostgreSQL's row lock; SQLite's writers take
                    // turns anyway): one first chunk of a device at a time.
                    sqlx::query("UPDATE devices SET id = id WHERE id = $1")
                        .bind(&row.device)
                        .execute(&mut *tx)
                        .await?;
                    let live: i64 = sqlx::query_scalar(
                        "SELECT COUNT(*) FROM blob_uploads WHERE device = $1 AND expires_at >= $2",
                    )
                    .bind(&row.device)
                    .bind(row.created_at)
                    .fetch_one(&mut *tx)
                    .await?;
                    if u64::try_from(live).unwrap_or(0) >= max_live {
                        return Ok(UploadStart::TooMany);
                    }
                    let inserted = sqlx::query(
                        "INSERT INTO blob_uploads (sha256, device, user_id, length, received,
                             created_at, updated_at, expires_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                         ON CONFLICT (sha256, device) DO NOTHING",
                    )
                    .bind(&row.sha256)
                    .bind(&row.device)
                    .bind(&row.user_id)
                    .bind(row.length)
                    .bind(i64::try_from(first.len()).unwrap_or(i64::MAX))
                    .bind(row.created_at)
                    .bind(row.updated_at)
                    .bind(row.expires_at)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    if inserted == 0 {
                        return Ok(UploadStart::Exists);
                    }
                    if !first.is_empty() {
                        sqlx::query(
                            "INSERT INTO blob_upload_chunks (sha256, device, start, bytes)
                             VALUES ($1, $2, 0, $3)",
                        )
                        .bind(&row.sha256)
                        .bind(&row.device)
                        .bind(first)
                        .execute(&mut *tx)
                        .await?;
                    }
                    tx.commit().await?;
                    Ok(UploadStart::Started)
                })
            }

            fn upload_append<'a>(
                &'a self,
                sha256: &'a str,
                device: &'a str,
                start: i64,
                bytes: &'a [u8],
                now: i64,
                expires_at: i64,
            ) -> $crate::store::StoreFuture<'a, Option<i64>> {
                Box::pin(async move {
                    let _turn = self.write_turn().await;
                    let mut tx = self.pool.begin().await?;
                    // Conditional on the offset: of two PATCHes racing at one offset,
                    // one moves `received` and the other finds no row.
                    let received: Option<(i64,)> = sqlx::query_as(
                        "UPDATE blob_uploads SET received = received + $1, updated_at = $2,
                             expires_at = $3
                         WHERE sha256 = $4 AND device = $5 AND received = $6 AND expires_at >= $2
                         RETURNING received",
                    )
                    .bind(i64::try_from(bytes.len()).unwrap_or(i64::MAX))
                    .bind(now)
                    .bind(expires_at)
                    .bind(sha256)
                    .bind(device)
                    .bind(start)
                    .fetch_optional(&mut *tx)
                    .await?;
                    let Some((received,)) = received else {
                        return Ok(None);
                    };
                    if !bytes.is_empty() {
                        sqlx::query(
                            "INSERT INTO blob_upload_chunks (sha256, device, start, bytes)
                             VALUES ($1, $2, $3, $4)",
                        )
                        .bind(sha256)
                        .bind(device)
                        .bind(start)
                        .bind(bytes)
                        .execute(&mut *tx)
                        .await?;
                    }
                    tx.commit().await?;
                    Ok(Some(received))
                })
            }

            fn upload_bytes<'a>(
                &'a self,
                sha256: &'a str,
                device: &'a str,
            ) -> $crate::store::StoreFuture<'a, Vec<u8>> {
                Box::pin(async move {
                    let chunks: Vec<(i64, Vec<u8>)> = sqlx::query_as(
                        "SELECT start, bytes FROM blob_upload_chunks
                         WHERE sha256 = $1 AND device = $2 ORDER BY start",
                    )
                    .bind(sha256)
                    .bind(device)
                    .fetch_all(&self.pool)
                    .await?;
                    let mut all = Vec::with_capacity(chunks.iter().map(|(_, b)| b.len()).sum());
                    for (start, bytes) in chunks {
                        if i64::try_from(all.len()).ok() != Some(start) {
                            return Err($crate::store::StoreError::Corrupt(format!(
                                "upload {sha256} of {device}: a chunk starts at {start}, after {} bytes",
                                all.len()
                            )));
                        }
                        all.extend_from_slice(&bytes);
                    }
                    Ok(all)
                })
            }

            fn upload_delete<'a>(
                &'a self,
                sha256: &'a str,
                device: &'a str,
            ) -> $crate::store::StoreFuture<'a, bool> {
                Box::pin(async move {
                    let _turn = self.write_turn().await;
                    let deleted =
                        sqlx::query("DELETE FROM blob_uploads WHERE sha256 = $1 AND device = $2")
                            .bind(sha256)
                            .bind(device)
                            .execute(&self.pool)
                            .await?
                            .rows_affected();
                    Ok(deleted > 0)
                })
            }

            fn blob_complete<'a>(
                &'a self,
                blob: &'a $crate::store::blobs::NewBlob,
                device: Option<&'a str>,
                now: i64,
            ) -> $crate::store::StoreFuture<'a, bool> {
                Box::pin(async move {
                    let _turn = self.write_turn().await;
                    let mut tx = self.pool.begin().await?;
                    let row = &blob.row;
                    // Unreferenced from the start when no case names it yet: the grace
                    // period runs from now.
                    let inserted = sqlx::query(
                        "INSERT INTO blobs (sha256, size, format, width, height, taken_at, lon, lat,
                             accuracy, uploaded_by, created_at, released_at)
                         SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11,
                             CASE WHEN EXISTS (SELECT 1 FROM case_photos p WHERE p.sha256 = $1)
                                 THEN NULL ELSE $11 END
                         WHERE TRUE
                         ON CONFLICT (sha256) DO NOTHING",
                    )
                    .bind(&row.sha256)
                    .bind(row.size)
                    .bind(&row.format)
                    .bind(row.width)
                    .bind(row.height)
                    .bind(row.taken_at)
                    .bind(row.lon)
                    .bind(row.lat)
                    .bind(row.accuracy)
                    .bind(&row.uploaded_by)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
                        > 0;
                    if inserted {
                        for derivative in &blob.derivatives {
                            sqlx::query(
                                "INSERT INTO blob_derivatives (sha256, variant, width, height, etag, bytes)
                                 VALUES ($1, $2, $3, $4, $5, $6)",
                            )
                            .bind(&row.sha256)
                            .bind(&derivative.variant)
                            .bind(derivative.width)
                            .bind(derivative.height)
                            .bind(&derivative.etag)
                            .bind(&derivative.bytes)
                            .execute(&mut *tx)
                            .await?;
                        }
                        if let Some(original) = &blob.original {
                            sqlx::query("INSERT INTO blob_originals (sha256, bytes) VALUES ($1, $2)")
                                .bind(&row.sha256)
                                .bind(original)
                                .execute(&mut *tx)
                                .await?;
                        }
                    }
                    if let Some(device) = device {
                        sqlx::query("DELETE FROM blob_uploads WHERE sha256 = $1 AND device = $2")
                            .bind(&row.sha256)
                            .bind(device)
                            .execute(&mut *tx)
                            .await?;
                    }
                    tx.commit().await?;
                    Ok(inserted)
                })
            }

            fn derivative<'a>(
                &'a self,
                sha256: &'a str,
                variant: &'a str,
            ) -> $crate::store::StoreFuture<'a, Option<$crate::store::blobs::DerivativeRow>> {
                Box::pin(async move {
                    Ok(sqlx::query_as(
                        "SELECT variant, width, height, etag, bytes FROM blob_derivatives
                         WHERE sha256 = $1 AND variant = $2",
                    )
                    .bind(sha256)
                    .bind(variant)
                    .fetch_optional(&self.pool)
                    .await?)
                })
            }

            fn uploads_expire(&self, now: i64) -> $crate::store::StoreFuture<'_, u64> {
                Box::pin(async move {
                    let _turn = self.write_turn().await;
                    Ok(sqlx::query("DELETE FROM blob_uploads WHERE expires_at < $1")
                        .bind(now)
                        .execute(&self.pool)
                        .await?
                        .rows_affected())
                })
            }

            fn blobs_gc_batch(
                &self,
                now: i64,
                cutoff: i64,
                limit: u32,
                dry_run: bool,
            ) -> $crate::store::StoreFuture<'_, $crate::store::blobs::GcBatch> {
                Box::pin(async move {
                    let _turn = self.write_turn().await;
                    let mut tx = self.pool.begin().await?;
                    // The row lock makes the nodes' passes take turns.
                    let (backfilled,): (bool,) = sqlx::query_as(
                        "UPDATE blob_gc SET last_pass_at = $1 WHERE id = 1 RETURNING backfilled",
                    )
                    .bind(now)
                    .fetch_one(&mut *tx)
                    .await?;
                    if !backfilled {
                        return Ok($crate::store::blobs::GcBatch::default());
                    }
                    // `released_at` is a hint (a reference racing a removal can leave it
                    // set): referenced photos get their NULL back before anything is
                    // chosen, so their grace period starts again when truly released.
                    sqlx::query(
                        "UPDATE blobs SET released_at = NULL WHERE released_at IS NOT NULL
                             AND EXISTS (SELECT 1 FROM case_photos p WHERE p.sha256 = blobs.sha256)",
                    )
                    .execute(&mut *tx)
                    .await?;
                    let candidates: Vec<(String, i64)> = sqlx::query_as(
                        "SELECT b.sha256, b.size + COALESCE((SELECT SUM(length(d.bytes))
                             FROM blob_derivatives d WHERE d.sha256 = b.sha256), 0)
                         FROM blobs b WHERE b.released_at IS NOT NULL AND b.released_at < $1
                             AND NOT EXISTS (SELECT 1 FROM case_photos p WHERE p.sha256 = b.sha256)
                         ORDER BY b.sha256 LIMIT $2",
                    )
                    .bind(cutoff)
                    .bind(i64::from(limit))
                    .fetch_all(&mut *tx)
                    .await?;
                    let mut deleted = Vec::with_capacity(candidates.len());
                    for (sha256, bytes) in candidates {
                        if dry_run {
                            deleted.push((sha256, bytes));
                            continue;
                        }
                        // Decided again per row, under its lock: see the module's doc.
                        let gone = sqlx::query(
                            "DELETE FROM blobs WHERE sha256 = $1 AND released_at IS NOT NULL
                                 AND released_at < $2
                                 AND NOT EXISTS (SELECT 1 FROM case_photos p WHERE p.sha256 = blobs.sha256)",
                        )
                        .bind(&sha256)
                        .bind(cutoff)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                        if gone > 0 {
                            deleted.push((sha256, bytes));
                        }
                    }
                    tx.commit().await?;
                    Ok($crate::store::blobs::GcBatch {
                        backfilled: true,
                        deleted,
                    })
                })
            }

            fn case_ids_after<'a>(
                &'a self,
                after: &'a str,
                limit: u32,
            ) -> $crate::store::StoreFuture<'a, Vec<String>> {
                Box::pin(async move {
                    let ids: Vec<(String,)> = sqlx::query_as(
                        "SELECT id FROM documents WHERE kind = 'case' AND id > $1 ORDER BY id LIMIT $2",
                    )
                    .bind(after)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?;
                    Ok(ids.into_iter().map(|(id,)| id).collect())
                })
            }

            fn add_case_photos<'a>(
                &'a self,
                id: &'a str,
                photos: &'a [String],
            ) -> $crate::store::StoreFuture<'a, ()> {
                Box::pin(async move {
                    if photos.is_empty() {
                        return Ok(());
                    }
                    let _turn = self.write_turn().await;
                    let mut tx = self.pool.begin().await?;
                    for sha256 in photos {
                        sqlx::query(
                            "INSERT INTO case_photos (sha256, case_id) VALUES ($1, $2)
                             ON CONFLICT (sha256, case_id) DO NOTHING",
                        )
                        .bind(sha256)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                        sqlx::query(
                            "UPDATE blobs SET released_at = NULL
                             WHERE sha256 = $1 AND released_at IS NOT NULL",
                        )
                        .bind(sha256)
                        .execute(&mut *tx)
                        .await?;
                    }
                    tx.commit().await?;
                    Ok(())
                })
            }

            fn set_backfilled(&self) -> $crate::store::StoreFuture<'_, ()> {
                Box::pin(async move {
                    let _turn = self.write_turn().await;
                    sqlx::query("UPDATE blob_gc SET backfilled = TRUE WHERE id = 1")
                        .execute(&self.pool)
                        .await?;
                    Ok(())
                })
            }

            fn backfilled(&self) -> $crate::store::StoreFuture<'_, bool> {
                Box::pin(async move {
                    let (backfilled,): (bool,) =
                        sqlx::query_as("SELECT backfilled FROM blob_gc WHERE id = 1")
                            .fetch_one(&self.pool)
                            .await?;
                    Ok(backfilled)
                })
            }
        }
    };
}

pub(crate) use impl_blob_store;
