//! Phone-side photo tests, on real JPEG/PNG/WebP files made here with `image`, EXIF
//! written with kamadak-exif's writer and put in an APP1 segment.

use chrono::{TimeZone, Utc};
use exif::{Field, Tag};
use image::{ImageEncoder, Rgb, RgbImage, Rgba, RgbaImage};

use super::*;
use crate::photo::fixtures::{
    ascii, decode, gps_fields, gradient, has_exif, jpeg, orientation, png_bomb, png_chunk,
    rationals, tiff, tiff_with_entry, with_exif,
};

// ---- fixtures ----------------------------------------------------------------------

fn camera_jpeg(width: u32, height: u32, fields: &[Field]) -> Vec<u8> {
    with_exif(&jpeg(&gradient(width, height), 90), &tiff(fields))
}

fn all_fields(orientation_value: u16) -> Vec<Field> {
    let mut fields = vec![
        orientation(orientation_value),
        ascii(Tag::DateTimeOriginal, "2026:11:27 10:15:30"),
    ];
    fields.extend(gps_fields());
    fields
}

// ---- sniffing and hashing ----------------------------------------------------------

#[test]
fn sniffs_the_real_format() {
    assert_eq!(
        sniff_format(&jpeg(&gradient(8, 8), 80)),
        Ok(PhotoFormat::Jpeg)
    );
    assert_eq!(sniff_format(b"\x89PNG\r\n\x1a\n...."), Ok(PhotoFormat::Png));
    assert_eq!(sniff_format(b"RIFF\0\0\0\0WEBPVP8 "), Ok(PhotoFormat::WebP));
    assert_eq!(
        sniff_format(b"\0\0\0\x18ftypheic\0\0\0\0"),
        Ok(PhotoFormat::Heif)
    );
    assert_eq!(
        sniff_format(b"\0\0\0\x18ftypmif1\0\0\0\0"),
        Ok(PhotoFormat::Heif)
    );
    assert_eq!(
        sniff_format(b"\0\0\0\x18ftypisom\0\0\0\0"),
        Err(PhotoError::UnsupportedFormat)
    );
    assert_eq!(sniff_format(b""), Err(PhotoError::Empty));
    assert_eq!(
        sniff_format(b"hello, this is not a photo"),
        Err(PhotoError::UnsupportedFormat)
    );
    assert_eq!(sniff_format(b"GIF89a"), Err(PhotoError::UnsupportedFormat));
    assert_eq!(sniff_format(&[0xFF]), Err(PhotoError::UnsupportedFormat));
}

#[test]
fn sha256_is_lowercase_hex_of_the_bytes() {
    assert_eq!(
        sha256_hex(b"abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(sha256_hex(b"").len(), 64);
}

#[test]
fn fitted_size_keeps_the_aspect_and_never_enlarges() {
    assert_eq!(fitted_size(4000, 3000, 2048), (2048, 1536));
    assert_eq!(fitted_size(3000, 4000, 2048), (1536, 2048));
    assert_eq!(fitted_size(1000, 800, 2048), (1000, 800));
    assert_eq!(fitted_size(10_000, 1, 320), (320, 1));
    assert_eq!(fitted_size(2048, 2048, 2048), (2048, 2048));
}

// ---- EXIF --------------------------------------------------------------------------

#[test]
fn reads_time_position_and_orientation() {
    let photo = camera_jpeg(64, 32, &all_fields(6));
    let metadata = read_metadata(&photo).unwrap();
    assert_eq!(metadata.orientation, Orientation::Rotate90);
    // No offset written: local time in Zhengzhou, UTC+8.
    assert_eq!(
        metadata.taken_at,
        Some(Utc.with_ymd_and_hms(2026, 11, 27, 2, 15, 30).unwrap())
    );
    let position = metadata.position.unwrap();
    assert!((position.lat - (34.0 + 45.0 / 60.0 + 22.5 / 3600.0)).abs() < 1e-9);
    assert!((position.lon - (113.0 + 39.0 / 60.0 + 58.2 / 3600.0)).abs() < 1e-9);
    assert_eq!(position.accuracy_m, Some(5.0));
}

#[test]
fn uses_the_recorded_offset_and_subseconds() {
    let photo = camera_jpeg(
        16,
        16,
        &[
            ascii(Tag::DateTimeOriginal, "2026:11:27 10:15:30"),
            ascii(Tag::OffsetTimeOriginal, "+09:00"),
            ascii(Tag::SubSecTimeOriginal, "25"),
        ],
    );
    let taken_at = read_metadata(&photo).unwrap().taken_at.unwrap();
    assert_eq!(
        taken_at,
        Utc.with_ymd_and_hms(2026, 11, 27, 1, 15, 30).unwrap()
            + chrono::Duration::milliseconds(250)
    );
}

#[test]
fn falls_back_to_datetime_and_ignores_nonsense_values() {
    let photo = camera_jpeg(16, 16, &[ascii(Tag::DateTime, "2026:01:02 03:04:05")]);
    assert_eq!(
        read_metadata(&photo).unwrap().taken_at,
        Some(Utc.with_ymd_and_hms(2026, 1, 1, 19, 4, 5).unwrap())
    );
    // Month 13, a zero denominator, a missing reference, orientation 9, 0/0 position.
    let nonsense = [
        vec![
            ascii(Tag::DateTimeOriginal, "2026:13:27 10:15:30"),
            orientation(9),
        ],
        vec![
            ascii(Tag::GPSLatitudeRef, "N"),
            rationals(Tag::GPSLatitude, &[(34, 0), (45, 1), (0, 1)]),
            ascii(Tag::GPSLongitudeRef, "E"),
            rationals(Tag::GPSLongitude, &[(113, 1), (39, 1), (0, 1)]),
        ],
        vec![
            rationals(Tag::GPSLatitude, &[(34, 1), (45, 1), (0, 1)]),
            rationals(Tag::GPSLongitude, &[(113, 1), (39, 1), (0, 1)]),
        ],
        vec![
            ascii(Tag::GPSLatitudeRef, "N"),
            rationals(Tag::GPSLatitude, &[(0, 1), (0, 1), (0, 1)]),
            ascii(Tag::GPSLongitudeRef, "E"),
            rationals(Tag::GPSLongitude, &[(0, 1), (0, 1), (0, 1)]),
        ],
        vec![
            ascii(Tag::GPSLatitudeRef, "N"),
            rationals(Tag::GPSLatitude, &[(200, 1), (0, 1), (0, 1)]),
            ascii(Tag::GPSLongitudeRef, "E"),
            rationals(Tag::GPSLongitude, &[(113, 1), (0, 1), (0, 1)]),
        ],
    ];
    for fields in nonsense {
        let metadata = read_metadata(&camera_jpeg(16, 16, &fields)).unwrap();
        assert_eq!(metadata, PhotoMetadata::default(), "{fields:?}");
    }
}

#[test]
fn southern_and_western_positions_are_negative() {
    let photo = camera_jpeg(
        16,
        16,
        &[
            ascii(Tag::GPSLatitudeRef, "S"),
            rationals(Tag::GPSLatitude, &[(33, 1), (30, 1), (0, 1)]),
            ascii(Tag::GPSLongitudeRef, "W"),
            rationals(Tag::GPSLongitude, &[(70, 1), (15, 1), (0, 1)]),
        ],
    );
    let position = read_metadata(&photo).unwrap().position.unwrap();
    assert_eq!(
        (position.lat, position.lon, position.accuracy_m),
        (-33.5, -70.25, None)
    );
}

#[test]
fn no_exif_is_no_metadata() {
    let plain = jpeg(&gradient(16, 16), 80);
    assert_eq!(read_metadata(&plain), Ok(PhotoMetadata::default()));
    // A file that ends inside its headers: nothing found, the decoder reports it.
    assert_eq!(read_metadata(&plain[..10]), Ok(PhotoMetadata::default()));
}

fn hostile_exif() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        // Make, ASCII, 4 billion characters at offset 16.
        ("absurd size", tiff_with_entry(0x010F, 2, 0xFFFF_FFF0, 16)),
        // Rationals: 8 bytes × 2^31 overflows 32-bit offsets.
        ("absurd count", tiff_with_entry(0x829A, 5, 0x8000_0000, 16)),
        // Exif IFD pointer back to IFD0: a loop.
        ("IFD loop", tiff_with_entry(0x8769, 4, 1, 8)),
        // IFD0 beyond the block.
        (
            "IFD offset past the end",
            b"MM\0\x2a\xff\xff\xff\xf0".to_vec(),
        ),
        ("bad byte order", b"XX\0\x2a\0\0\0\x08\0\0".to_vec()),
        ("truncated header", b"MM\0".to_vec()),
    ]
}

#[test]
fn hostile_exif_is_a_typed_error_and_the_photo_is_still_usable_on_the_phone() {
    for (name, block) in hostile_exif() {
        let photo = with_exif(&jpeg(&gradient(32, 16), 85), &block);
        assert!(
            matches!(read_metadata(&photo), Err(ExifError::Malformed(_))),
            "{name}: {:?}",
            read_metadata(&photo)
        );
        let upload = prepare_upload(&photo).unwrap();
        assert!(upload.exif_problem.is_some(), "{name}");
        assert_eq!(upload.metadata, PhotoMetadata::default());
        assert_eq!((upload.width, upload.height), (32, 16));
    }
}

// ---- prepare_upload ----------------------------------------------------------------

#[test]
fn orientation_6_turns_a_landscape_into_a_portrait() {
    let upload = prepare_upload(&camera_jpeg(4, 2, &all_fields(6))).unwrap();
    assert_eq!((upload.width, upload.height), (2, 4));
    assert_eq!(decode(&upload.bytes).dimensions(), (2, 4));
}

#[test]
fn orientation_moves_the_pixels_the_right_way() {
    // Left half red, right half blue; orientation 6 means "rotate 90° clockwise to view":
    // the left edge becomes the top.
    let image = RgbImage::from_fn(64, 32, |x, _| {
        if x < 32 {
            Rgb([255, 0, 0])
        } else {
            Rgb([0, 0, 255])
        }
    });
    let photo = with_exif(&jpeg(&image, 95), &tiff(&[orientation(6)]));
    let upload = prepare_upload(&photo).unwrap();
    let upright = decode(&upload.bytes);
    assert_eq!(upright.dimensions(), (32, 64));
    let top = upright.get_pixel(16, 8).0;
    let bottom = upright.get_pixel(16, 56).0;
    assert!(top[0] > 200 && top[2] < 60, "top {top:?}");
    assert!(bottom[2] > 200 && bottom[0] < 60, "bottom {bottom:?}");

    // Orientation 8 (rotate 270° clockwise): the left edge becomes the bottom.
    let photo = with_exif(&jpeg(&image, 95), &tiff(&[orientation(8)]));
    let upright = decode(&prepare_upload(&photo).unwrap().bytes);
    assert!(upright.get_pixel(16, 56).0[0] > 200);
}

#[test]
fn upload_is_shrunk_stripped_and_named_by_its_hash() {
    let photo = camera_jpeg(3000, 1000, &all_fields(1));
    assert!(has_exif(&photo));
    let upload = prepare_upload(&photo).unwrap();
    assert_eq!((upload.width, upload.height), (2048, 683));
    assert_eq!(decode(&upload.bytes).dimensions(), (2048, 683));
    assert!(!has_exif(&upload.bytes), "the uploaded bytes carry no EXIF");
    assert!(!upload.bytes.windows(4).any(|w| w == b"Exif"));
    assert_eq!(upload.sha256, sha256_hex(&upload.bytes));
    assert_eq!(upload.sha256.len(), 64);
    assert!(
        upload
            .sha256
            .bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
    );
    // The metadata travels separately, for the case's photo entry.
    assert!(upload.metadata.position.is_some());
    assert!(upload.metadata.taken_at.is_some());
    assert_eq!(upload.exif_problem, None);
    // Deterministic: the same photo gives the same blob (dedup across retries).
    assert_eq!(prepare_upload(&photo).unwrap().sha256, upload.sha256);
}

#[test]
fn the_metadata_fits_the_case_photo_entry() {
    let upload = prepare_upload(&camera_jpeg(64, 48, &all_fields(1))).unwrap();
    let photo = crate::case::Photo {
        hash: upload.sha256.clone(),
        role: crate::case::PhotoRole::Before,
        taken_at: upload.metadata.taken_at,
        position: upload.metadata.position,
        added_by: "worker".into(),
        added_at: Utc.with_ymd_and_hms(2026, 11, 27, 3, 0, 0).unwrap(),
    };
    assert!(photo.position.unwrap().check().is_ok());
}

#[test]
fn png_with_alpha_and_webp_are_accepted() {
    let rgba = RgbaImage::from_fn(40, 20, |x, _| {
        if x < 20 {
            Rgba([255, 0, 0, 255])
        } else {
            Rgba([0, 0, 0, 0])
        }
    });
    let mut png = Vec::new();
    image::codecs::png::PngEncoder::new(&mut png)
        .write_image(rgba.as_raw(), 40, 20, image::ExtendedColorType::Rgba8)
        .unwrap();
    let upload = prepare_upload(&png).unwrap();
    let decoded = decode(&upload.bytes);
    assert_eq!(decoded.dimensions(), (40, 20));
    // Transparent pixels are composited on white.
    assert!(decoded.get_pixel(35, 10).0.iter().all(|&c| c > 240));

    let mut webp = Vec::new();
    image::codecs::webp::WebPEncoder::new_lossless(&mut webp)
        .write_image(
            gradient(30, 50).as_raw(),
            30,
            50,
            image::ExtendedColorType::Rgb8,
        )
        .unwrap();
    assert_eq!(sniff_format(&webp), Ok(PhotoFormat::WebP));
    let upload = prepare_upload(&webp).unwrap();
    assert_eq!((upload.width, upload.height), (30, 50));
}

fn png_rgb(image: &RgbImage) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(
            image.as_raw(),
            image.width(),
            image.height(),
            image::ExtendedColorType::Rgb8,
        )
        .unwrap();
    out
}

/// Puts an `eXIf` chunk right after IHDR (8-byte signature + 25-byte IHDR chunk).
fn png_with_exif(png: &[u8], tiff: &[u8]) -> Vec<u8> {
    let mut out = png[..33].to_vec();
    png_chunk(&mut out, b"eXIf", tiff);
    out.extend(&png[33..]);
    out
}

/// Appends an `EXIF` chunk to a WebP file and fixes the RIFF size.
fn webp_with_exif(webp: &[u8], tiff: &[u8]) -> Vec<u8> {
    let mut out = webp.to_vec();
    out.extend(b"EXIF");
    out.extend(u32::try_from(tiff.len()).unwrap().to_le_bytes());
    out.extend(tiff);
    if tiff.len() % 2 == 1 {
        out.push(0);
    }
    let riff_size = u32::try_from(out.len() - 8).unwrap();
    out[4..8].copy_from_slice(&riff_size.to_le_bytes());
    out
}

#[test]
fn reads_exif_from_png_and_webp() {
    let fields = all_fields(6);
    let png = png_with_exif(&png_rgb(&gradient(40, 20)), &tiff(&fields));
    let metadata = read_metadata(&png).unwrap();
    assert_eq!(metadata.orientation, Orientation::Rotate90);
    assert!(metadata.position.is_some() && metadata.taken_at.is_some());
    let upload = prepare_upload(&png).unwrap();
    assert_eq!((upload.width, upload.height), (20, 40));
    assert!(!has_exif(&upload.bytes));

    let mut webp = Vec::new();
    image::codecs::webp::WebPEncoder::new_lossless(&mut webp)
        .write_image(
            gradient(40, 20).as_raw(),
            40,
            20,
            image::ExtendedColorType::Rgb8,
        )
        .unwrap();
    let webp = webp_with_exif(&webp, &tiff(&fields));
    assert_eq!(read_metadata(&webp).unwrap(), metadata);
    // A truncated PNG or WebP: no EXIF found, and the decoder says it is broken.
    assert_eq!(read_metadata(&png[..60]), Ok(PhotoMetadata::default()));
    assert!(matches!(
        prepare_upload(&png[..png.len() - 30]),
        Err(PhotoError::Corrupt(_))
    ));
    // Hostile EXIF in a PNG is found and refused like in a JPEG.
    let hostile = png_with_exif(&png_rgb(&gradient(8, 8)), &tiff_with_entry(0x8769, 4, 1, 8));
    assert!(matches!(
        read_metadata(&hostile),
        Err(ExifError::Malformed(_))
    ));
}

#[test]
fn bad_input_is_a_typed_error() {
    assert_eq!(prepare_upload(b""), Err(PhotoError::Empty));
    assert_eq!(
        prepare_upload(b"this is a text file named photo.jpg\n"),
        Err(PhotoError::UnsupportedFormat)
    );
    assert_eq!(
        prepare_upload(b"\0\0\0\x18ftypheic\0\0\0\0mif1heic"),
        Err(PhotoError::HeifUnsupported)
    );
    assert_eq!(
        prepare_upload(&png_bomb(30_000, 30_000)),
        Err(PhotoError::TooLarge {
            width: 30_000,
            height: 30_000
        })
    );
    let photo = camera_jpeg(256, 128, &all_fields(6));
    for cut in [3, 20, photo.len() / 2, photo.len() - 200] {
        assert!(
            matches!(prepare_upload(&photo[..cut]), Err(PhotoError::Corrupt(_))),
            "cut at {cut}: {:?}",
            prepare_upload(&photo[..cut]).map(|u| (u.width, u.height))
        );
    }
}

#[test]
fn limits_refuse_from_the_header() {
    let limits = SizeLimits {
        max_edge: 100,
        max_pixels: 5_000,
        max_alloc: 1 << 20,
    };
    let photo = jpeg(&gradient(120, 10), 80);
    assert_eq!(
        decode_with_image(&photo, PhotoFormat::Jpeg, &limits).unwrap_err(),
        PhotoError::TooLarge {
            width: 120,
            height: 10
        }
    );
    let photo = jpeg(&gradient(80, 80), 80);
    assert_eq!(
        decode_with_image(&photo, PhotoFormat::Jpeg, &limits).unwrap_err(),
        PhotoError::TooLarge {
            width: 80,
            height: 80
        }
    );
    assert!(decode_with_image(&jpeg(&gradient(60, 60), 80), PhotoFormat::Jpeg, &limits).is_ok());
    assert_eq!(
        limits.check(0, 10),
        Err(PhotoError::Corrupt("0×10 image".into()))
    );
}

/// splitmix64, for reproducible mutations.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[test]
fn mutated_photos_never_panic() {
    let photo = camera_jpeg(48, 32, &all_fields(6));
    let mut rng = Rng(7);
    for round in 0..400 {
        let mut bytes = photo.clone();
        match round % 3 {
            0 => bytes.truncate(usize::try_from(rng.next() % photo.len() as u64).unwrap()),
            _ => {
                for _ in 0..1 + rng.next() % 8 {
                    let at = usize::try_from(rng.next() % bytes.len() as u64).unwrap();
                    bytes[at] = rng.next() as u8;
                }
            }
        }
        // Any result is fine; a panic fails the test.
        let _ = read_metadata(&bytes);
        let _ = prepare_upload(&bytes);
    }
}
