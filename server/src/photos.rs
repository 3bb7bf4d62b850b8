//! Processing an uploaded photo, as pure functions (the endpoints, blob storage and
//! garbage collection are the callers): find the real format from the bytes, refuse
//! anything else or anything too large *before* decoding it, read the EXIF time and
//! position, and make the two derivatives that are ever served — a display size and a
//! thumbnail — upright and with every piece of metadata stripped (they are freshly
//! encoded JPEGs: pixels and a JFIF header, nothing else).
//!
//! The format sniffing, EXIF reading, resizing and JPEG encoding are sync-core's
//! ([`wangge_sync_core::photo`]), so the phone and the server read a photo's time and
//! position alike.
//!
//! **Why JPEGs are decoded with `jpeg-decoder`:** a display size needs far fewer pixels
//! than a 12 MP photo has, and JPEG can be decoded at 1/2, 1/4 or 1/8 scale by using
//! a smaller inverse DCT (what ImageMagick's `-define jpeg:size=` asks libjpeg for).
//! The `image` crate's JPEG decoder (zune-jpeg 0.5) always decodes at full size;
//! `jpeg-decoder` (image-rs, the decoder `image` used until 0.25, pure Rust, still
//! released for fixes) has `Decoder::scale`. For a 4000 × 3000 photo it decodes
//! 2000 × 1500 pixels (9 MB instead of 36 MB) in about the time zune-jpeg takes for the
//! full image, so the gain is memory, and time in the resize after it; for 48–50 MP
//! photos it decodes at 1/4. JPEGs it cannot scale (CMYK, 12/16-bit, features it lacks)
//! go through `image` at full size, within the same limits. PNG and WebP have no
//! reduced-scale decoding; `image` decodes them within the limits.

use std::panic::{AssertUnwindSafe, catch_unwind};

use image::{DynamicImage, GrayImage, ImageReader, RgbImage};
use wangge_sync_core::photo::{
    check_jpeg_complete, decode_with_image, encode_jpeg, fit_and_orient, fit_within, read_metadata,
    sniff_format,
};

pub use wangge_sync_core::photo::{ExifError, PhotoError, PhotoFormat, PhotoMetadata, SizeLimits};

/// Long edge of the display derivative, pixels: a phone or desktop screen's case view.
pub const DISPLAY_EDGE: u32 = 1280;
/// Long edge of the thumbnail, pixels: lists and map pop-ups.
pub const THUMBNAIL_EDGE: u32 = 320;
/// JPEG quality of the display derivative.
pub const DISPLAY_QUALITY: u8 = 82;
/// JPEG quality of the thumbnail (small, viewed small).
pub const THUMBNAIL_QUALITY: u8 = 75;

/// The server's limits: 50 MP cameras (8,160 × 6,120) pass; a JPEG is decoded at
/// reduced scale, so its pixels cost little, but a PNG or WebP is decoded whole (50 MP
/// RGBA is 200 MB), hence the 256 MiB allocation cap given to the decoders.
pub const SERVER_LIMITS: SizeLimits = SizeLimits {
    max_edge: 12_000,
    max_pixels: 52_000_000,
    max_alloc: 256 * 1024 * 1024,
};

/// What the header says, before anything is decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    /// The real format (from the bytes).
    pub format: PhotoFormat,
    /// Stored width, pixels (before EXIF orientation).
    pub width: u32,
    /// Stored height, pixels (before EXIF orientation).
    pub height: u32,
}

/// A served image: a baseline JPEG without metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Derivative {
    /// The JPEG file.
    pub bytes: Vec<u8>,
    /// Width, pixels (upright).
    pub width: u32,
    /// Height, pixels (upright).
    pub height: u32,
}

/// An accepted photo: what was read from it and what may be served of it.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessedPhoto {
    /// The original's format and stored size.
    pub original: Probe,
    /// Time, position and orientation from the original's EXIF: the photo's metadata
    /// record, never served with the image.
    pub metadata: PhotoMetadata,
    /// At most [`DISPLAY_EDGE`] on the long edge (never enlarged), upright.
    pub display: Derivative,
    /// At most [`THUMBNAIL_EDGE`] on the long edge, upright.
    pub thumbnail: Derivative,
}

/// Validates without decoding: the real format, the header's dimensions within
/// `limits`. Cheap enough to run on every upload before it is stored.
pub fn probe(bytes: &[u8], limits: &SizeLimits) -> Result<Probe, PhotoError> {
    let format = sniff_format(bytes)?;
    let (width, height) = match format {
        PhotoFormat::Heif => return Err(PhotoError::HeifUnsupported),
        PhotoFormat::Jpeg => guarded(|| {
            let mut decoder = jpeg_decoder::Decoder::new(bytes);
            decoder.read_info().map_err(jpeg_error)?;
            let info = decoder
                .info()
                .ok_or_else(|| PhotoError::Corrupt("no JPEG frame header".into()))?;
            Ok((u32::from(info.width), u32::from(info.height)))
        })?,
        PhotoFormat::Png | PhotoFormat::WebP => {
            let image_format = if format == PhotoFormat::Png {
                image::ImageFormat::Png
            } else {
                image::ImageFormat::WebP
            };
            let mut reader = ImageReader::with_format(std::io::Cursor::new(bytes), image_format);
            let mut memory_only = image::Limits::default();
            memory_only.max_alloc = Some(limits.max_alloc);
            reader.limits(memory_only);
            guarded(|| {
                reader
                    .into_dimensions()
                    .map_err(|error| PhotoError::Corrupt(error.to_string()))
            })?
        }
    };
    limits.check(width, height)?;
    Ok(Probe {
        format,
        width,
        height,
    })
}

/// Validates, reads the EXIF metadata and makes both derivatives. Refuses (typed, never
/// a panic) anything but JPEG, PNG and WebP, images beyond `limits` (from the header,
/// before decoding), malformed EXIF, and truncated or corrupt image data.
pub fn process(bytes: &[u8], limits: &SizeLimits) -> Result<ProcessedPhoto, PhotoError> {
    let original = probe(bytes, limits)?;
    let metadata = read_metadata(bytes)?;
    let decoded = match original.format {
        PhotoFormat::Jpeg => decode_jpeg_scaled(bytes, limits, DISPLAY_EDGE)?,
        format => guarded(|| decode_with_image(bytes, format, limits))?,
    };
    let display = fit_and_orient(decoded, DISPLAY_EDGE, metadata.orientation)?;
    let thumbnail = fit_within(&display, THUMBNAIL_EDGE)?;
    Ok(ProcessedPhoto {
        original,
        metadata,
        display: derivative(&display, DISPLAY_QUALITY)?,
        thumbnail: derivative(&thumbnail, THUMBNAIL_QUALITY)?,
    })
}

fn derivative(image: &RgbImage, quality: u8) -> Result<Derivative, PhotoError> {
    Ok(Derivative {
        bytes: encode_jpeg(image, quality)?,
        width: image.width(),
        height: image.height(),
    })
}

/// Decodes a JPEG at the smallest DCT scale (1, 1/2, 1/4, 1/8) whose long edge is still
/// at least `min_edge` (or whole, if it is smaller).
fn decode_jpeg_scaled(
    bytes: &[u8],
    limits: &SizeLimits,
    min_edge: u32,
) -> Result<DynamicImage, PhotoError> {
    check_jpeg_complete(bytes)?;
    let request = u16::try_from(min_edge).unwrap_or(u16::MAX);
    let scaled = guarded(|| {
        let mut decoder = jpeg_decoder::Decoder::new(bytes);
        decoder
            .set_max_decoding_buffer_size(usize::try_from(limits.max_alloc).unwrap_or(usize::MAX));
        decoder.scale(request, request).map_err(jpeg_error)?;
        let pixels = decoder.decode().map_err(jpeg_error)?;
        let info = decoder
            .info()
            .ok_or_else(|| PhotoError::Corrupt("no JPEG frame header".into()))?;
        let (width, height) = (u32::from(info.width), u32::from(info.height));
        let wrong_size = || PhotoError::Corrupt("decoded buffer has the wrong size".into());
        Ok(match info.pixel_format {
            jpeg_decoder::PixelFormat::RGB24 => Some(DynamicImage::ImageRgb8(
                RgbImage::from_raw(width, height, pixels).ok_or_else(wrong_size)?,
            )),
            jpeg_decoder::PixelFormat::L8 => Some(DynamicImage::ImageLuma8(
                GrayImage::from_raw(width, height, pixels).ok_or_else(wrong_size)?,
            )),
            // CMYK and 16-bit: rare in photos; `image` converts them.
            _ => None,
        })
    });
    match scaled {
        Ok(Some(image)) => Ok(image),
        Ok(None) | Err(PhotoError::Internal(_)) => {
            guarded(|| decode_with_image(bytes, PhotoFormat::Jpeg, limits))
        }
        Err(error) => Err(error),
    }
}

/// Maps a `jpeg-decoder` error: an unsupported feature is `Internal` (the caller then
/// tries the other decoder), everything else is the file's fault.
fn jpeg_error(error: jpeg_decoder::Error) -> PhotoError {
    match error {
        jpeg_decoder::Error::Unsupported(feature) => {
            PhotoError::Internal(format!("jpeg-decoder: unsupported {feature:?}"))
        }
        other => PhotoError::Corrupt(other.to_string()),
    }
}

/// Runs a decoder on untrusted bytes so that a decoder bug that panics refuses the photo
/// instead of taking the request (or a test) down. The decoders are fuzzed and none is
/// known to panic; this is the second line, not the first.
fn guarded<T>(decode: impl FnOnce() -> Result<T, PhotoError>) -> Result<T, PhotoError> {
    catch_unwind(AssertUnwindSafe(decode)).unwrap_or_else(|_| {
        Err(PhotoError::Corrupt(
            "the decoder gave up on this file".into(),
        ))
    })
}
