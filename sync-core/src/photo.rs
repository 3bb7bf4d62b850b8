//! Photos: what the phone does before an upload, and the pieces the server's processing
//! shares with it (format sniffing, EXIF reading, resizing, JPEG encoding).
//!
//! Pure functions, bytes in and bytes out: no files, no clock, no threads. The phone
//! calls [`prepare_upload`] on the camera's file: the EXIF time and position go into
//! the case's [`Photo`](crate::case::Photo) entry (evidence for the case), while the
//! uploaded bytes are a re-encoded JPEG with no metadata at all (so the officer's
//! position never leaves the phone inside a file that could be published), at most
//! [`UPLOAD_MAX_EDGE`] pixels on the long edge (metered data), oriented upright, and
//! named by their SHA-256 ([`UploadPhoto::sha256`], the hash the photo entry holds).
//!
//! Crates: `image` (the image-rs decoders, pure Rust, no C library to build for
//! Android/iOS), `kamadak-exif` for EXIF (pure Rust, no unsafe, the reader the Rust
//! ecosystem uses; it bounds IFD counts, refuses IFD loops and checks every offset
//! against the buffer, so hostile EXIF gives an error, not a hang or a huge
//! allocation) and `fast_image_resize` for resizing (SIMD convolution, measured 14×
//! faster than `image`'s own `resize` for 4000×3000 → 2048×1536 with Lanczos3 on the
//! benchmark machine: 26 ms against 376 ms).

#[cfg(any(test, feature = "test-fixtures"))]
pub mod fixtures;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;

use std::io::Cursor;

use chrono::{DateTime, FixedOffset, NaiveDate, TimeZone, Utc};
use fast_image_resize as fr;
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageEncoder, ImageFormat, ImageReader, RgbImage};
use sha2::{Digest, Sha256};

use crate::document::Position;

/// Longest edge of an uploaded photo, pixels: enough to read a licence plate or a
/// manhole cover's markings, a tenth of a 12 MP original's bytes.
pub const UPLOAD_MAX_EDGE: u32 = 2048;

/// JPEG quality of an uploaded photo: no visible loss at [`UPLOAD_MAX_EDGE`], about
/// 0.3–0.6 MB per photo.
pub const UPLOAD_JPEG_QUALITY: u8 = 80;

/// The time zone assumed for an EXIF time without an offset: phones write local time,
/// and the system runs in Zhengzhou (China Standard Time, UTC+8, no daylight saving).
const EXIF_DEFAULT_OFFSET_SECONDS: i32 = 8 * 3600;

/// A photo's real format, from its first bytes (never from a file name or a MIME type).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PhotoFormat {
    /// JPEG (`FF D8 FF`): what cameras write.
    Jpeg,
    /// PNG: screenshots.
    Png,
    /// WebP (`RIFF….WEBP`).
    WebP,
    /// HEIF/HEIC/AVIF (ISO-BMFF `ftyp` with an image brand): recognised so the refusal
    /// can say so, but not decoded: no well-kept pure-Rust HEVC decoder exists
    /// (`libheif-rs` binds the C libheif and its codec libraries).
    Heif,
}

impl PhotoFormat {
    /// The `image` crate's format, for the formats that are decoded.
    fn image_format(self) -> Option<ImageFormat> {
        match self {
            PhotoFormat::Jpeg => Some(ImageFormat::Jpeg),
            PhotoFormat::Png => Some(ImageFormat::Png),
            PhotoFormat::WebP => Some(ImageFormat::WebP),
            PhotoFormat::Heif => None,
        }
    }
}

/// Why a photo was refused. Each variant is something a caller can act on: tell the
/// user to send another format, a smaller photo, or a file that is not broken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhotoError {
    /// No bytes at all.
    #[error("the photo is empty")]
    Empty,
    /// Not a JPEG, PNG, WebP (nor HEIF): a text file, a PDF, a video….
    #[error("not a supported image (JPEG, PNG or WebP)")]
    UnsupportedFormat,
    /// HEIF/HEIC: recognised, but there is no decoder; the camera should save JPEG.
    #[error("HEIF/HEIC images are not supported: set the camera to save JPEG")]
    HeifUnsupported,
    /// The header announces more pixels than the limits allow (refused before
    /// decoding, so a decompression bomb costs nothing), or decoding would need more
    /// memory than allowed.
    #[error("the image is too large: {width}×{height} pixels")]
    TooLarge {
        /// Width from the header.
        width: u32,
        /// Height from the header.
        height: u32,
    },
    /// The image data is truncated or malformed (the decoder's reason).
    #[error("the image is corrupt: {0}")]
    Corrupt(String),
    /// The EXIF block is malformed (absurd sizes, offsets outside the block, loops).
    #[error(transparent)]
    Exif(#[from] ExifError),
    /// Resizing or encoding failed: a bug, not the input's fault.
    #[error("processing the image failed: {0}")]
    Internal(String),
}

/// A malformed EXIF block.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExifError {
    /// The EXIF (TIFF) structure is broken; the reader's reason.
    #[error("malformed EXIF: {0}")]
    Malformed(String),
}

/// Limits checked against an image's header before anything is decoded, and given to
/// the decoders, so a small file claiming to be huge is refused at no cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SizeLimits {
    /// Longest allowed edge, pixels.
    pub max_edge: u32,
    /// Most allowed pixels (width × height).
    pub max_pixels: u64,
    /// Most bytes a decoder may allocate (`image::Limits::max_alloc`).
    pub max_alloc: u64,
}

impl SizeLimits {
    /// On the phone: cameras up to 108 MP (12,000 × 9,000) still work; decoding one
    /// needs about 330 MB, which phones that take such photos have.
    pub const PHONE: SizeLimits = SizeLimits {
        max_edge: 16_384,
        max_pixels: 110_000_000,
        max_alloc: 512 * 1024 * 1024,
    };

    /// Refuses `width × height` if it is beyond the limits (or empty).
    pub fn check(&self, width: u32, height: u32) -> Result<(), PhotoError> {
        let pixels = u64::from(width) * u64::from(height);
        if width == 0 || height == 0 {
            return Err(PhotoError::Corrupt(format!("{width}×{height} image")));
        }
        if width > self.max_edge || height > self.max_edge || pixels > self.max_pixels {
            return Err(PhotoError::TooLarge { width, height });
        }
        Ok(())
    }

    /// The same limits for `image`'s decoders.
    pub fn image_limits(&self) -> image::Limits {
        let mut limits = image::Limits::default();
        limits.max_image_width = Some(self.max_edge);
        limits.max_image_height = Some(self.max_edge);
        limits.max_alloc = Some(self.max_alloc);
        limits
    }
}

/// What the camera recorded, read from EXIF: evidence for the case document.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PhotoMetadata {
    /// When it was taken (`DateTimeOriginal`, else `DateTime`), with the recorded
    /// offset, or UTC+8 when the camera wrote none.
    pub taken_at: Option<DateTime<Utc>>,
    /// Where it was taken (GPS, WGS-84 as GPS receivers report it), with
    /// `GPSHPositioningError` as the accuracy when present.
    pub position: Option<Position>,
    /// How to turn the stored pixels upright (EXIF `Orientation`).
    pub orientation: Orientation,
}

impl Default for PhotoMetadata {
    fn default() -> Self {
        PhotoMetadata {
            taken_at: None,
            position: None,
            orientation: Orientation::NoTransforms,
        }
    }
}

/// A photo ready to upload: the bytes, their name, and what goes into the case's photo
/// entry.
#[derive(Debug, Clone, PartialEq)]
pub struct UploadPhoto {
    /// JPEG, upright, at most [`UPLOAD_MAX_EDGE`] on the long edge, no metadata.
    pub bytes: Vec<u8>,
    /// SHA-256 of `bytes`, 64 lowercase hex digits: the blob's name and the photo
    /// entry's `hash`.
    pub sha256: String,
    /// Width of `bytes`, pixels (after orientation).
    pub width: u32,
    /// Height of `bytes`, pixels (after orientation).
    pub height: u32,
    /// The original's time, position and orientation (already applied to `bytes`).
    pub metadata: PhotoMetadata,
    /// Set when the original's EXIF was malformed: the photo is still the officer's
    /// evidence, so it is kept, but its time and position are unknown.
    pub exif_problem: Option<ExifError>,
}

/// Prepares a camera photo for upload: reads its EXIF, decodes it (within
/// [`SizeLimits::PHONE`]), shrinks it to [`UPLOAD_MAX_EDGE`], turns it upright and
/// re-encodes it as JPEG at [`UPLOAD_JPEG_QUALITY`] without any metadata.
pub fn prepare_upload(original: &[u8]) -> Result<UploadPhoto, PhotoError> {
    let format = sniff_format(original)?;
    let (metadata, exif_problem) = match read_metadata(original) {
        Ok(metadata) => (metadata, None),
        Err(problem) => (PhotoMetadata::default(), Some(problem)),
    };
    let decoded = decode_with_image(original, format, &SizeLimits::PHONE)?;
    let upright = fit_and_orient(decoded, UPLOAD_MAX_EDGE, metadata.orientation)?;
    let bytes = encode_jpeg(&upright, UPLOAD_JPEG_QUALITY)?;
    Ok(UploadPhoto {
        sha256: sha256_hex(&bytes),
        width: upright.width(),
        height: upright.height(),
        bytes,
        metadata,
        exif_problem,
    })
}

/// SHA-256 of `bytes` as 64 lowercase hex digits (how blobs are named).
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut hex = String::with_capacity(64);
    for byte in digest {
        hex.push(char::from(b"0123456789abcdef"[usize::from(byte >> 4)]));
        hex.push(char::from(b"0123456789abcdef"[usize::from(byte & 0x0f)]));
    }
    hex
}

/// The real format from the first bytes; refuses empty input and anything that is not
/// JPEG, PNG, WebP or HEIF.
pub fn sniff_format(bytes: &[u8]) -> Result<PhotoFormat, PhotoError> {
    if bytes.is_empty() {
        return Err(PhotoError::Empty);
    }
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Ok(PhotoFormat::Jpeg);
    }
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Ok(PhotoFormat::Png);
    }
    if bytes.len() >= 12 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        return Ok(PhotoFormat::WebP);
    }
    // ISO-BMFF: a box size, then `ftyp` and the major brand.
    if bytes.len() >= 12 && &bytes[4..8] == b"ftyp" {
        const BRANDS: [&[u8; 4]; 9] = [
            b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1", b"avif",
        ];
        if BRANDS.iter().any(|brand| &bytes[8..12] == *brand) {
            return Ok(PhotoFormat::Heif);
        }
    }
    Err(PhotoError::UnsupportedFormat)
}

/// Reads time, position and orientation from the photo's EXIF. No EXIF, or a value that
/// makes no sense (month 13, latitude 200°, a zero denominator), gives `None` for that
/// value; a malformed EXIF block is an error. JPEG EXIF is looked for only before the
/// image data (where the standard puts it), so a file truncated in its image data is
/// left to the decoder to report.
pub fn read_metadata(bytes: &[u8]) -> Result<PhotoMetadata, ExifError> {
    let tiff = match sniff_format(bytes) {
        Ok(PhotoFormat::Jpeg) => jpeg_headers(bytes).exif,
        Ok(PhotoFormat::Png) => png_exif_chunk(bytes),
        Ok(PhotoFormat::WebP) => webp_exif_chunk(bytes),
        // HEIF and unknown formats are refused elsewhere; nothing to read here.
        Ok(PhotoFormat::Heif) | Err(_) => None,
    };
    let Some(tiff) = tiff else {
        return Ok(PhotoMetadata::default());
    };
    match exif::Reader::new().read_raw(tiff.to_vec()) {
        Ok(exif) => Ok(metadata_from_exif(&exif)),
        Err(exif::Error::NotFound(_) | exif::Error::BlankValue(_)) => Ok(PhotoMetadata::default()),
        Err(error) => Err(ExifError::Malformed(error.to_string())),
    }
}

/// The data of the `eXIf` chunk, if the file has one. The chunks are walked here rather
/// than by kamadak-exif so that a file cut short is left to the decoder to report.
fn png_exif_chunk(bytes: &[u8]) -> Option<&[u8]> {
    let mut pos = 8; // after the signature
    loop {
        let length = usize::try_from(u32::from_be_bytes(
            bytes.get(pos..pos + 4)?.try_into().ok()?,
        ))
        .ok()?;
        let kind = bytes.get(pos + 4..pos + 8)?;
        let data = bytes.get(pos + 8..(pos + 8).checked_add(length)?)?;
        match kind {
            b"eXIf" => return Some(data),
            b"IEND" => return None,
            _ => pos += 12 + length, // length, type, data, CRC
        }
    }
}

/// The data of the `EXIF` chunk of a WebP (RIFF) file, if any (without the `Exif\0\0`
/// prefix some writers add).
fn webp_exif_chunk(bytes: &[u8]) -> Option<&[u8]> {
    let mut pos = 12; // after "RIFF", the size, "WEBP"
    loop {
        let kind = bytes.get(pos..pos + 4)?;
        let length = usize::try_from(u32::from_le_bytes(
            bytes.get(pos + 4..pos + 8)?.try_into().ok()?,
        ))
        .ok()?;
        let data = bytes.get(pos + 8..(pos + 8).checked_add(length)?)?;
        if kind == b"EXIF" {
            return Some(data.strip_prefix(b"Exif\0\0").unwrap_or(data));
        }
        pos += 8 + length + (length & 1); // chunks are padded to even sizes
    }
}

/// What a walk over a JPEG's header segments finds.
struct JpegHeaders<'a> {
    /// The TIFF data of the first `APP1 Exif` segment before the scan.
    exif: Option<&'a [u8]>,
    /// Where the first scan (`SOS`) starts; `None` if the file ends before it.
    scan: Option<usize>,
}

/// Walks the marker segments from SOI to the first SOS. A file that ends inside the
/// headers has no scan (and no EXIF when it ends before the APP1 segment).
fn jpeg_headers(bytes: &[u8]) -> JpegHeaders<'_> {
    const SOS: u8 = 0xDA;
    const EOI: u8 = 0xD9;
    const APP1: u8 = 0xE1;
    let mut found = JpegHeaders {
        exif: None,
        scan: None,
    };
    let mut pos = 2; // after SOI
    loop {
        // Markers may be preceded by any number of 0xFF fill bytes.
        while bytes.get(pos) == Some(&0xFF) && bytes.get(pos + 1) == Some(&0xFF) {
            pos += 1;
        }
        if bytes.get(pos) != Some(&0xFF) {
            return found;
        }
        let Some(&marker) = bytes.get(pos + 1) else {
            return found;
        };
        match marker {
            SOS => {
                found.scan = Some(pos);
                return found;
            }
            EOI => return found,
            // Stand-alone markers (TEM, RSTn) carry no length.
            0x01 | 0xD0..=0xD7 => {
                pos += 2;
                continue;
            }
            _ => {}
        }
        let (Some(&high), Some(&low)) = (bytes.get(pos + 2), bytes.get(pos + 3)) else {
            return found;
        };
        let length = usize::from(u16::from_be_bytes([high, low]));
        let Some(segment) = bytes.get(pos + 4..pos + 2 + length.max(2)) else {
            return found;
        };
        if marker == APP1
            && found.exif.is_none()
            && let Some(tiff) = segment.strip_prefix(b"Exif\0\0")
        {
            found.exif = Some(tiff);
        }
        pos += 2 + length.max(2);
    }
}

/// Refuses a JPEG that has no end-of-image marker after its first scan: a file cut short
/// (an interrupted copy or upload). Decoders fill the missing part with grey and report
/// success, which would make half a photo evidence. Data after the marker (Samsung's
/// motion-photo trailer, for one) is allowed; the search runs from the end, so a normal
/// file costs nothing.
pub fn check_jpeg_complete(bytes: &[u8]) -> Result<(), PhotoError> {
    let scan = jpeg_headers(bytes)
        .scan
        .ok_or_else(|| PhotoError::Corrupt("the JPEG ends before its image data".into()))?;
    // Entropy-coded data never holds FF D9 (an FF there is followed by 00 or a restart
    // marker), so an FF D9 after the scan start is the end of the image.
    let complete = bytes[scan..]
        .windows(2)
        .rev()
        .any(|pair| pair == [0xFF, 0xD9]);
    if complete {
        Ok(())
    } else {
        Err(PhotoError::Corrupt(
            "the JPEG is truncated (no end-of-image marker)".into(),
        ))
    }
}

fn metadata_from_exif(exif: &exif::Exif) -> PhotoMetadata {
    let orientation = exif
        .get_field(exif::Tag::Orientation, exif::In::PRIMARY)
        .and_then(|field| field.value.get_uint(0))
        .and_then(|value| u8::try_from(value).ok())
        .and_then(Orientation::from_exif)
        .unwrap_or(Orientation::NoTransforms);
    let taken_at = exif_time(
        exif,
        exif::Tag::DateTimeOriginal,
        exif::Tag::OffsetTimeOriginal,
        exif::Tag::SubSecTimeOriginal,
    )
    .or_else(|| {
        exif_time(
            exif,
            exif::Tag::DateTime,
            exif::Tag::OffsetTime,
            exif::Tag::SubSecTime,
        )
    });
    PhotoMetadata {
        taken_at,
        position: exif_position(exif),
        orientation,
    }
}

fn ascii(exif: &exif::Exif, tag: exif::Tag) -> Option<&[u8]> {
    match &exif.get_field(tag, exif::In::PRIMARY)?.value {
        exif::Value::Ascii(values) => values.first().map(Vec::as_slice),
        _ => None,
    }
}

fn exif_time(
    exif: &exif::Exif,
    time: exif::Tag,
    offset: exif::Tag,
    subsec: exif::Tag,
) -> Option<DateTime<Utc>> {
    let mut parsed = exif::DateTime::from_ascii(ascii(exif, time)?).ok()?;
    if let Some(offset) = ascii(exif, offset) {
        // A malformed offset is as good as none.
        let _ = parsed.parse_offset(offset);
    }
    if let Some(subsec) = ascii(exif, subsec) {
        let _ = parsed.parse_subsec(subsec);
    }
    let local = NaiveDate::from_ymd_opt(
        i32::from(parsed.year),
        u32::from(parsed.month),
        u32::from(parsed.day),
    )?
    .and_hms_nano_opt(
        u32::from(parsed.hour),
        u32::from(parsed.minute),
        u32::from(parsed.second),
        parsed.nanosecond.unwrap_or(0),
    )?;
    let offset_seconds = parsed
        .offset
        .map_or(EXIF_DEFAULT_OFFSET_SECONDS, |minutes| {
            i32::from(minutes) * 60
        });
    let zone = FixedOffset::east_opt(offset_seconds)?;
    Some(
        zone.from_local_datetime(&local)
            .single()?
            .with_timezone(&Utc),
    )
}

fn exif_position(exif: &exif::Exif) -> Option<Position> {
    let degrees = |tag| -> Option<f64> {
        match &exif.get_field(tag, exif::In::PRIMARY)?.value {
            exif::Value::Rational(parts) if parts.len() >= 3 => {
                let mut total = 0.0;
                for (part, unit) in parts.iter().zip([1.0, 60.0, 3600.0]) {
                    if part.denom == 0 {
                        return None;
                    }
                    total += part.to_f64() / unit;
                }
                Some(total)
            }
            _ => None,
        }
    };
    let sign = |tag, positive: u8, negative: u8| -> Option<f64> {
        match ascii(exif, tag)?.first()?.to_ascii_uppercase() {
            c if c == positive => Some(1.0),
            c if c == negative => Some(-1.0),
            _ => None,
        }
    };
    let lat = degrees(exif::Tag::GPSLatitude)? * sign(exif::Tag::GPSLatitudeRef, b'N', b'S')?;
    let lon = degrees(exif::Tag::GPSLongitude)? * sign(exif::Tag::GPSLongitudeRef, b'E', b'W')?;
    // Cameras without a fix sometimes write 0,0; nobody reports a case at Null Island.
    if lat == 0.0 && lon == 0.0 {
        return None;
    }
    let accuracy_m = match exif.get_field(exif::Tag::GPSHPositioningError, exif::In::PRIMARY) {
        Some(exif::Field {
            value: exif::Value::Rational(values),
            ..
        }) => values.first().filter(|r| r.denom != 0).map(|r| r.to_f64()),
        _ => None,
    };
    let position = Position {
        lon,
        lat,
        accuracy_m,
    };
    match position.check() {
        Ok(()) => Some(position),
        // Accuracy out of range: keep the position, drop the accuracy.
        Err(_) => {
            let position = Position {
                accuracy_m: None,
                ..position
            };
            position.check().ok().map(|()| position)
        }
    }
}

/// Decodes with the `image` crate (JPEG through zune-jpeg), after checking the header's
/// dimensions against `limits`, and with `limits` given to the decoder too. The server
/// uses it for PNG, WebP and the JPEGs its scaled decoder cannot handle.
pub fn decode_with_image(
    bytes: &[u8],
    format: PhotoFormat,
    limits: &SizeLimits,
) -> Result<DynamicImage, PhotoError> {
    let image_format = format.image_format().ok_or(PhotoError::HeifUnsupported)?;
    if format == PhotoFormat::Jpeg {
        check_jpeg_complete(bytes)?;
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), image_format);
    // Memory only at first: a header beyond the edge limits is refused by `check` below,
    // with its dimensions in the error.
    let mut memory_only = image::Limits::default();
    memory_only.max_alloc = Some(limits.max_alloc);
    reader.limits(memory_only);
    let mut decoder = reader.into_decoder().map_err(image_error)?;
    let (width, height) = decoder.dimensions();
    limits.check(width, height)?;
    decoder
        .set_limits(limits.image_limits())
        .map_err(image_error)?;
    // `DynamicImage::from_decoder` allocates the output without asking the limits
    // (`ImageReader::decode` does, but it cannot be stopped between the header and the
    // pixels), so the output buffer is checked here.
    if decoder.total_bytes() > limits.max_alloc {
        return Err(PhotoError::TooLarge { width, height });
    }
    DynamicImage::from_decoder(decoder).map_err(|error| match error {
        image::ImageError::Limits(_) => PhotoError::TooLarge { width, height },
        other => image_error(other),
    })
}

/// Maps an `image` error: limits → `TooLarge` (dimensions unknown here: 0×0 means the
/// decoder refused before telling), the rest → `Corrupt` or `UnsupportedFormat`.
fn image_error(error: image::ImageError) -> PhotoError {
    match error {
        image::ImageError::Limits(_) => PhotoError::TooLarge {
            width: 0,
            height: 0,
        },
        image::ImageError::Unsupported(unsupported) => PhotoError::Corrupt(unsupported.to_string()),
        other => PhotoError::Corrupt(other.to_string()),
    }
}

/// Drops alpha (composited on white, as transparent screenshots are meant to be seen)
/// and extra precision: what JPEG derivatives need.
pub fn to_rgb8(image: DynamicImage) -> RgbImage {
    if !image.color().has_alpha() {
        return image.into_rgb8();
    }
    let rgba = image.into_rgba8();
    let (width, height) = rgba.dimensions();
    let mut out = Vec::with_capacity(width as usize * height as usize * 3);
    for pixel in rgba.pixels() {
        let [r, g, b, a] = pixel.0;
        let alpha = u32::from(a);
        for channel in [r, g, b] {
            // Round-to-nearest of (c·a + 255·(255 − a)) / 255, always ≤ 255.
            let value = (u32::from(channel) * alpha + 255 * (255 - alpha) + 127) / 255;
            out.push(u8::try_from(value).unwrap_or(u8::MAX));
        }
    }
    RgbImage::from_raw(width, height, out).unwrap_or_else(|| RgbImage::new(width, height))
}

/// Shrinks `image` so its long edge is at most `max_edge` (never enlarges), Lanczos3.
pub fn fit_within(image: &RgbImage, max_edge: u32) -> Result<RgbImage, PhotoError> {
    let (width, height) = image.dimensions();
    let (new_width, new_height) = fitted_size(width, height, max_edge);
    if (new_width, new_height) == (width, height) {
        return Ok(image.clone());
    }
    let source = fr::images::ImageRef::new(width, height, image.as_raw(), fr::PixelType::U8x3)
        .map_err(|error| PhotoError::Internal(error.to_string()))?;
    let mut target = fr::images::Image::new(new_width, new_height, fr::PixelType::U8x3);
    fr::Resizer::new()
        .resize(
            &source,
            &mut target,
            &fr::ResizeOptions::new()
                .resize_alg(fr::ResizeAlg::Convolution(fr::FilterType::Lanczos3)),
        )
        .map_err(|error| PhotoError::Internal(error.to_string()))?;
    RgbImage::from_raw(new_width, new_height, target.into_vec())
        .ok_or_else(|| PhotoError::Internal("resized buffer has the wrong size".into()))
}

/// The size of `width × height` scaled so its long edge is at most `max_edge` (aspect
/// kept, rounded, at least 1 pixel).
pub fn fitted_size(width: u32, height: u32, max_edge: u32) -> (u32, u32) {
    let long = width.max(height);
    if long <= max_edge || long == 0 {
        return (width, height);
    }
    let scale = |edge: u32| -> u32 {
        let scaled =
            (u64::from(edge) * u64::from(max_edge) + u64::from(long) / 2) / u64::from(long);
        u32::try_from(scaled).unwrap_or(max_edge).clamp(1, max_edge)
    };
    (scale(width), scale(height))
}

/// Turns `image` upright according to an EXIF orientation.
pub fn orient(image: RgbImage, orientation: Orientation) -> RgbImage {
    if orientation == Orientation::NoTransforms {
        return image;
    }
    let mut image = DynamicImage::ImageRgb8(image);
    image.apply_orientation(orientation);
    image.into_rgb8()
}

/// Converts to RGB, shrinks to `max_edge` and applies `orientation` (after the shrink,
/// where it moves fewer pixels; a rotation keeps the long edge, so the order is free).
pub fn fit_and_orient(
    image: DynamicImage,
    max_edge: u32,
    orientation: Orientation,
) -> Result<RgbImage, PhotoError> {
    let rgb = to_rgb8(image);
    let fitted = if rgb.width().max(rgb.height()) > max_edge {
        fit_within(&rgb, max_edge)?
    } else {
        rgb
    };
    Ok(orient(fitted, orientation))
}

/// Encodes `image` as a baseline JPEG at `quality` (1–100). The encoder writes a JFIF
/// header and the pixels, nothing else: no EXIF, no XMP, no ICC profile.
pub fn encode_jpeg(image: &RgbImage, quality: u8) -> Result<Vec<u8>, PhotoError> {
    let mut out = Vec::with_capacity(image.as_raw().len() / 8);
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality.clamp(1, 100))
        .write_image(
            image.as_raw(),
            image.width(),
            image.height(),
            image::ExtendedColorType::Rgb8,
        )
        .map_err(|error| PhotoError::Internal(error.to_string()))?;
    Ok(out)
}
