//! Real photos for tests and benchmarks: JPEGs made with `image`, EXIF written with
//! kamadak-exif's writer into an APP1 segment, as a camera would. Compiled for this
//! crate's tests and, with the `test-fixtures` feature, for other crates' tests and
//! benches (the server's), so the two sides test on the same photos.

use std::io::Cursor;

use exif::{Field, In, Rational, Tag, Value};
use image::{ImageEncoder, Rgb, RgbImage};

/// `image` encoded as a baseline JPEG at `quality`.
pub fn jpeg(image: &RgbImage, quality: u8) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality)
        .write_image(
            image.as_raw(),
            image.width(),
            image.height(),
            image::ExtendedColorType::Rgb8,
        )
        .expect("encoding a JPEG into memory");
    out
}

/// Whether an EXIF reader finds EXIF in `bytes` (any container); panics on other
/// reader errors, which would mean the bytes are not an image at all.
pub fn has_exif(bytes: &[u8]) -> bool {
    match exif::Reader::new().read_from_container(&mut Cursor::new(bytes)) {
        Ok(_) => true,
        Err(exif::Error::NotFound(_)) => false,
        Err(other) => panic!("unexpected EXIF reader error: {other}"),
    }
}

/// Decodes any supported image to RGB (to look at pixels).
pub fn decode(bytes: &[u8]) -> RgbImage {
    image::load_from_memory(bytes)
        .expect("a decodable image")
        .into_rgb8()
}

/// A smooth gradient, so JPEG compresses it like a photo.
pub fn gradient(width: u32, height: u32) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| {
        Rgb([
            u8::try_from(x * 255 / width.max(1)).unwrap_or(u8::MAX),
            u8::try_from(y * 255 / height.max(1)).unwrap_or(u8::MAX),
            128,
        ])
    })
}

/// A photo-like image: a sky-to-street gradient, a texture like facades or foliage,
/// and ±12 of sensor noise, so that JPEG compresses it about as much as a camera
/// photo (a 12 MP one is ~3.7 MB at quality 90, ~0.3 MB through `prepare_upload`).
pub fn textured(width: u32, height: u32, seed: u64) -> RgbImage {
    let mut state = seed.max(1);
    RgbImage::from_fn(width, height, |x, y| {
        let (fx, fy) = (x as f32 / width as f32, y as f32 / height as f32);
        let texture = ((fx * 37.0).sin() * (fy * 23.0).cos() * 40.0) as i32;
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let noise = ((state >> 40) % 25) as i32 - 12;
        let channel = |v: f32| ((v * 255.0) as i32 + texture + noise).clamp(0, 255) as u8;
        Rgb([channel(fx), channel(fy), channel(1.0 - fx * fy)])
    })
}

/// An ASCII field of the primary IFD.
pub fn ascii(tag: Tag, text: &str) -> Field {
    Field {
        tag,
        ifd_num: In::PRIMARY,
        value: Value::Ascii(vec![text.as_bytes().to_vec()]),
    }
}

/// A RATIONAL field of the primary IFD, from (numerator, denominator) pairs.
pub fn rationals(tag: Tag, values: &[(u32, u32)]) -> Field {
    Field {
        tag,
        ifd_num: In::PRIMARY,
        value: Value::Rational(
            values
                .iter()
                .map(|&(num, denom)| Rational { num, denom })
                .collect(),
        ),
    }
}

/// The Orientation field (1 upright … 6 rotated 90° clockwise, 8 counter-clockwise).
pub fn orientation(value: u16) -> Field {
    Field {
        tag: Tag::Orientation,
        ifd_num: In::PRIMARY,
        value: Value::Short(vec![value]),
    }
}

/// Zhengzhou's 二七塔 (Erqi Tower): 34°45'22.5"N 113°39'58.2"E, ±5 m.
pub fn gps_fields() -> Vec<Field> {
    vec![
        ascii(Tag::GPSLatitudeRef, "N"),
        rationals(Tag::GPSLatitude, &[(34, 1), (45, 1), (225, 10)]),
        ascii(Tag::GPSLongitudeRef, "E"),
        rationals(Tag::GPSLongitude, &[(113, 1), (39, 1), (582, 10)]),
        rationals(Tag::GPSHPositioningError, &[(5, 1)]),
    ]
}

/// What a phone camera writes: `orientation`, the time taken (10:15:30 on
/// 2026-11-27, +08:00) and the GPS position of [`gps_fields`].
pub fn camera_fields(orientation_value: u16) -> Vec<Field> {
    let mut fields = vec![
        orientation(orientation_value),
        ascii(Tag::DateTimeOriginal, "2026:11:27 10:15:30"),
        ascii(Tag::OffsetTimeOriginal, "+08:00"),
    ];
    fields.extend(gps_fields());
    fields
}

/// The fields as a TIFF structure (the body of an EXIF APP1 segment).
pub fn tiff(fields: &[Field]) -> Vec<u8> {
    let mut writer = exif::experimental::Writer::new();
    for field in fields {
        writer.push_field(field);
    }
    let mut out = Cursor::new(Vec::new());
    writer
        .write(&mut out, false)
        .expect("writing EXIF into memory");
    out.into_inner()
}

/// `jpeg` with `APP1 "Exif\0\0" tiff` inserted right after its SOI marker.
pub fn with_exif(jpeg: &[u8], tiff: &[u8]) -> Vec<u8> {
    let length = u16::try_from(2 + 6 + tiff.len()).expect("an EXIF segment under 64 KiB");
    let mut out = jpeg.get(..2).unwrap_or_default().to_vec();
    out.extend([0xFF, 0xE1]);
    out.extend(length.to_be_bytes());
    out.extend(b"Exif\0\0");
    out.extend(tiff);
    out.extend(jpeg.get(2..).unwrap_or_default());
    out
}

/// CRC-32 (IEEE) of a PNG chunk's type and data.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Appends a PNG chunk (length, type, data, CRC).
pub fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend(
        u32::try_from(data.len())
            .expect("a chunk under 4 GiB")
            .to_be_bytes(),
    );
    let start = out.len();
    out.extend(kind);
    out.extend(data);
    let crc = crc32(out.get(start..).unwrap_or_default());
    out.extend(crc.to_be_bytes());
}

/// A big-endian TIFF (EXIF) block with one IFD0 entry, as a hostile file would write
/// it: absurd counts, offsets outside the block, an IFD pointing back at itself.
pub fn tiff_with_entry(tag: u16, kind: u16, count: u32, value: u32) -> Vec<u8> {
    let mut tiff = b"MM\0\x2a\0\0\0\x08".to_vec();
    tiff.extend(1u16.to_be_bytes());
    tiff.extend(tag.to_be_bytes());
    tiff.extend(kind.to_be_bytes());
    tiff.extend(count.to_be_bytes());
    tiff.extend(value.to_be_bytes());
    tiff.extend(0u32.to_be_bytes());
    tiff
}

/// A decompression bomb: a PNG whose header claims `width × height` 8-bit RGB pixels,
/// with a few bytes of data that are never read if the header is checked first.
pub fn png_bomb(width: u32, height: u32) -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend(width.to_be_bytes());
    ihdr.extend(height.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]); // 8-bit RGB
    png_chunk(&mut png, b"IHDR", &ihdr);
    png_chunk(
        &mut png,
        b"IDAT",
        &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
    );
    png_chunk(&mut png, b"IEND", &[]);
    png
}
