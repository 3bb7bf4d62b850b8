//! The photo upload queue's sender: content-addressed, resumable uploads to
//! `/v1/blobs/{sha256}` (issue 6's protocol). `HEAD` says how much the server has
//! (the truth after a crash or a cut connection: at most one chunk is sent again);
//! each `PATCH` carries one chunk with `Upload-Offset` and `Upload-Length`. A photo is
//! uploaded only once the case entry naming it is on the server, and its file is
//! kept until the server says the upload is complete.

use std::io::{Read as _, Seek as _, SeekFrom};

use ureq::http::Method;

use crate::client::Inner;
use crate::error::FieldError;
use crate::store::QueuedPhoto;

/// The first chunk size; doubled after a fast chunk up to the server's limit.
const FIRST_CHUNK: u64 = 256 * 1024;
/// The server's default chunk limit (it says `upload-max-chunk` when lower).
const MAX_CHUNK: u64 = 1024 * 1024;
/// The most requests one photo takes in one sync (a bound, not a budget).
const MAX_REQUESTS_PER_PHOTO: usize = 200;

/// Uploads every photo that is ready, oldest first. Returns how many completed;
/// `bytes` counts the photo bytes sent (kept when an error ends the uploads).
/// [`FieldError::Offline`] when the connection fails (progress is kept).
pub(crate) fn upload_ready(inner: &Inner, bytes: &mut u64) -> Result<u32, FieldError> {
    let ready: Vec<QueuedPhoto> = inner
        .with_store(|s| s.photos().map_err(FieldError::from))?
        .into_iter()
        .filter(|p| p.state == "ready")
        .collect();
    let mut uploaded = 0;
    for photo in ready {
        match upload(inner, &photo, bytes)? {
            Upload::Done => uploaded += 1,
            Upload::Refused(reason) => {
                tracing::warn!(sha256 = %photo.sha256, %reason, "the server refused a photo");
            }
            Upload::Later => {}
        }
    }
    Ok(uploaded)
}

enum Upload {
    Done,
    Refused(String),
    /// The server is busy or the upload must wait; the next sync retries.
    Later,
}

fn finish(inner: &Inner, photo: &QueuedPhoto) -> Result<Upload, FieldError> {
    inner.with_store(|s| {
        s.set_photo_state(&photo.sha256, "done", photo.size, None)?;
        // The server has it: the file may go (a crash before this leaves it for the
        // sweep at the next open).
        let _ = std::fs::remove_file(s.photo_path(&photo.file));
        Ok::<_, FieldError>(())
    })?;
    Ok(Upload::Done)
}

fn upload(inner: &Inner, photo: &QueuedPhoto, sent: &mut u64) -> Result<Upload, FieldError> {
    let path = format!("/v1/blobs/{}", photo.sha256);
    let head = inner.send(Method::HEAD, &path, &[], None, 0)?;
    let mut offset = match head.status {
        200 if head.header("upload-complete") == Some("?1") => return finish(inner, photo),
        200 => head
            .header("upload-offset")
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0),
        404 | 410 => 0,
        429 | 503 => return Ok(Upload::Later),
        _ => return Err(head.server_error()),
    };
    let file_path = inner.photo_dir().join(&photo.file);
    let mut file = std::fs::File::open(&file_path).map_err(|e| FieldError::Storage {
        recoverable: false,
        detail: format!("the queued photo {} is gone: {e}", file_path.display()),
    })?;
    let mut chunk = FIRST_CHUNK;
    for _ in 0..MAX_REQUESTS_PER_PHOTO {
        let take = chunk.min(photo.size.saturating_sub(offset));
        let mut bytes = vec![0; take as usize];
        file.seek(SeekFrom::Start(offset))
            .and_then(|_| file.read_exact(&mut bytes))
            .map_err(|e| FieldError::Storage {
                recoverable: false,
                detail: format!("reading {}: {e}", file_path.display()),
            })?;
        let started = std::time::Instant::now();
        *sent += take;
        let answer = inner.send(
            Method::PATCH,
            &path,
            &[
                ("Upload-Offset", offset.to_string()),
                ("Upload-Length", photo.size.to_string()),
            ],
            Some(("application/offset+octet-stream", bytes)),
            1 << 20,
        )?;
        let server_offset = answer
            .header("upload-offset")
            .and_then(|v| v.parse::<u64>().ok());
        match answer.status {
            200 => return finish(inner, photo),
            204 => {
                offset = server_offset.unwrap_or(offset + take);
                inner.with_store(|s| {
                    s.set_photo_state(&photo.sha256, "ready", offset, None)
                        .map_err(FieldError::from)
                })?;
                if started.elapsed() < std::time::Duration::from_secs(2) {
                    chunk = (chunk * 2).min(MAX_CHUNK);
                }
            }
            409 => match server_offset {
                Some(at) => offset = at,
                None => return Err(answer.server_error()),
            },
            413 => {
                let max = answer
                    .header("upload-max-chunk")
                    .and_then(|v| v.parse::<u64>().ok());
                match max {
                    Some(max) if max > 0 && max < chunk => chunk = max,
                    _ => return refused(inner, photo, &answer),
                }
            }
            404 | 410 => offset = 0,
            422 => return refused(inner, photo, &answer),
            429 | 503 => return Ok(Upload::Later),
            _ => return Err(answer.server_error()),
        }
    }
    Ok(Upload::Later)
}

fn refused(
    inner: &Inner,
    photo: &QueuedPhoto,
    answer: &crate::http::Answer,
) -> Result<Upload, FieldError> {
    let (code, message) = answer
        .error_code()
        .unwrap_or_else(|| ("refused".into(), format!("HTTP {}", answer.status)));
    let reason = format!("{code}: {message}");
    inner.with_store(|s| {
        s.set_photo_state(&photo.sha256, "refused", photo.uploaded, Some(&reason))
            .map_err(FieldError::from)
    })?;
    Ok(Upload::Refused(reason))
}
