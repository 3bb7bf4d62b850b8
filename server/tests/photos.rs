//! Server-side photo processing on real files made here: JPEGs from `image` with EXIF
//! (GPS, DateTimeOriginal, Orientation) written by kamadak-exif's writer into an APP1
//! segment, PNG, WebP, and hostile input.

#![allow(clippy::unwrap_used)]

use image::{GrayImage, ImageEncoder, Luma, Rgb, RgbImage, Rgba, RgbaImage};
use wangge_server::photos::{
    DISPLAY_EDGE, ExifError, PhotoError, PhotoFormat, Probe, SERVER_LIMITS, SizeLimits,
    THUMBNAIL_EDGE, probe, process,
};
use wangge_sync_core::photo::fixtures::{
    camera_fields, decode, gradient, has_exif, jpeg, png_bomb, tiff, tiff_with_entry, with_exif,
};

// ---- fixtures ----------------------------------------------------------------------

fn camera_jpeg(width: u32, height: u32, orientation: u16) -> Vec<u8> {
    with_exif(
        &jpeg(&gradient(width, height), 90),
        &tiff(&camera_fields(orientation)),
    )
}

fn png(image: &RgbaImage) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(
            image.as_raw(),
            image.width(),
            image.height(),
            image::ExtendedColorType::Rgba8,
        )
        .unwrap();
    out
}

// ---- accepted photos ---------------------------------------------------------------

#[test]
fn orientation_6_landscape_comes_out_portrait() {
    let photo = process(&camera_jpeg(4, 2, 6), &SERVER_LIMITS).unwrap();
    assert_eq!(
        photo.original,
        Probe {
            format: PhotoFormat::Jpeg,
            width: 4,
            height: 2
        }
    );
    assert_eq!((photo.display.width, photo.display.height), (2, 4));
    assert_eq!((photo.thumbnail.width, photo.thumbnail.height), (2, 4));
    assert_eq!(decode(&photo.display.bytes).dimensions(), (2, 4));
    assert_eq!(decode(&photo.thumbnail.bytes).dimensions(), (2, 4));
}

#[test]
fn a_camera_photo_gets_both_derivatives_upright_and_its_metadata_read() {
    // 3000×2000 decodes at 1/2 (1500×1000), then 1280×853, turned to 853×1280.
    let photo = process(&camera_jpeg(3000, 2000, 6), &SERVER_LIMITS).unwrap();
    assert_eq!(
        (photo.display.width, photo.display.height),
        (853, DISPLAY_EDGE)
    );
    assert_eq!(
        (photo.thumbnail.width, photo.thumbnail.height),
        (213, THUMBNAIL_EDGE)
    );
    assert_eq!(decode(&photo.display.bytes).dimensions(), (853, 1280));
    assert_eq!(decode(&photo.thumbnail.bytes).dimensions(), (213, 320));

    let metadata = photo.metadata;
    assert_eq!(
        metadata.taken_at.unwrap().to_rfc3339(),
        "2026-11-27T02:15:30+00:00"
    );
    let position = metadata.position.unwrap();
    assert!((position.lat - 34.756_25).abs() < 1e-9, "{}", position.lat);
    assert!(
        (position.lon - 113.666_166_666_666_7).abs() < 1e-9,
        "{}",
        position.lon
    );
    assert_eq!(position.accuracy_m, Some(5.0));
}

#[test]
fn derivatives_carry_no_metadata() {
    let original = camera_jpeg(1600, 1200, 6);
    assert!(has_exif(&original));
    let photo = process(&original, &SERVER_LIMITS).unwrap();
    for bytes in [&photo.display.bytes, &photo.thumbnail.bytes] {
        assert!(!has_exif(bytes), "an EXIF reader finds nothing");
        assert!(!bytes.windows(4).any(|w| w == b"Exif"));
        // The only header segment before the tables is JFIF's APP0: no APP1 (EXIF/XMP),
        // no APP2 (ICC), no COM.
        for marker in [0xE1u8, 0xE2, 0xED, 0xFE] {
            assert!(
                !header_markers(bytes).contains(&marker),
                "marker {marker:02X}"
            );
        }
    }
}

/// The markers of a JPEG's header segments, up to the first scan.
fn header_markers(bytes: &[u8]) -> Vec<u8> {
    let mut markers = Vec::new();
    let mut pos = 2;
    while pos + 4 <= bytes.len() && bytes[pos] == 0xFF {
        let marker = bytes[pos + 1];
        markers.push(marker);
        if marker == 0xDA {
            break;
        }
        pos += 2 + usize::from(u16::from_be_bytes([bytes[pos + 2], bytes[pos + 3]]));
    }
    markers
}

#[test]
fn the_pixels_survive_the_scaled_decode() {
    // Left half red, right half blue, orientation 6: red on top.
    let image = RgbImage::from_fn(2600, 1000, |x, _| {
        if x < 1300 {
            Rgb([220, 20, 20])
        } else {
            Rgb([20, 20, 220])
        }
    });
    let photo = with_exif(&jpeg(&image, 90), &tiff(&camera_fields(6)));
    let processed = process(&photo, &SERVER_LIMITS).unwrap();
    let display = decode(&processed.display.bytes);
    assert_eq!(display.dimensions(), (492, 1280));
    let top = display.get_pixel(246, 100).0;
    let bottom = display.get_pixel(246, 1180).0;
    assert!(top[0] > 180 && top[2] < 70, "top {top:?}");
    assert!(bottom[2] > 180 && bottom[0] < 70, "bottom {bottom:?}");
}

#[test]
fn small_photos_are_not_enlarged() {
    let photo = process(&camera_jpeg(300, 200, 1), &SERVER_LIMITS).unwrap();
    assert_eq!((photo.display.width, photo.display.height), (300, 200));
    assert_eq!((photo.thumbnail.width, photo.thumbnail.height), (300, 200));
}

#[test]
fn grayscale_jpeg_png_and_webp_are_accepted() {
    let gray = GrayImage::from_fn(2000, 500, |x, _| Luma([(x % 256) as u8]));
    let mut gray_jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut gray_jpeg, 85)
        .write_image(gray.as_raw(), 2000, 500, image::ExtendedColorType::L8)
        .unwrap();
    let photo = process(&gray_jpeg, &SERVER_LIMITS).unwrap();
    assert_eq!((photo.display.width, photo.display.height), (1280, 320));

    let rgba = RgbaImage::from_fn(1600, 900, |x, _| {
        if x < 800 {
            Rgba([0, 128, 0, 255])
        } else {
            Rgba([0, 0, 0, 0])
        }
    });
    let photo = process(&png(&rgba), &SERVER_LIMITS).unwrap();
    assert_eq!(
        photo.original,
        Probe {
            format: PhotoFormat::Png,
            width: 1600,
            height: 900
        }
    );
    assert_eq!((photo.display.width, photo.display.height), (1280, 720));
    assert_eq!((photo.thumbnail.width, photo.thumbnail.height), (320, 180));
    // Transparency is composited on white.
    assert!(
        decode(&photo.display.bytes)
            .get_pixel(1200, 360)
            .0
            .iter()
            .all(|&c| c > 240)
    );

    let mut webp = Vec::new();
    image::codecs::webp::WebPEncoder::new_lossless(&mut webp)
        .write_image(
            gradient(700, 1400).as_raw(),
            700,
            1400,
            image::ExtendedColorType::Rgb8,
        )
        .unwrap();
    let photo = process(&webp, &SERVER_LIMITS).unwrap();
    assert_eq!(photo.original.format, PhotoFormat::WebP);
    assert_eq!((photo.display.width, photo.display.height), (640, 1280));
    assert!(!has_exif(&photo.display.bytes));
}

// ---- refused photos ----------------------------------------------------------------

#[test]
fn a_png_bomb_is_refused_from_its_header() {
    let bomb = png_bomb(30_000, 30_000);
    let refused = PhotoError::TooLarge {
        width: 30_000,
        height: 30_000,
    };
    assert_eq!(probe(&bomb, &SERVER_LIMITS), Err(refused.clone()));
    assert_eq!(process(&bomb, &SERVER_LIMITS).unwrap_err(), refused);
    // Even with the dimension limits lifted, the decoder's memory cap refuses it.
    let memory_only = SizeLimits {
        max_edge: u32::MAX,
        max_pixels: u64::MAX,
        max_alloc: 64 << 20,
    };
    let result = process(&bomb, &memory_only).map(|p| p.original);
    assert!(
        matches!(result, Err(PhotoError::TooLarge { .. })),
        "{result:?}"
    );
}

#[test]
fn limits_apply_to_jpeg_headers() {
    let photo = jpeg(&gradient(1000, 10), 80);
    let limits = SizeLimits {
        max_edge: 999,
        ..SERVER_LIMITS
    };
    assert_eq!(
        process(&photo, &limits),
        Err(PhotoError::TooLarge {
            width: 1000,
            height: 10
        })
    );
    let limits = SizeLimits {
        max_pixels: 9_999,
        ..SERVER_LIMITS
    };
    assert_eq!(
        probe(&photo, &limits),
        Err(PhotoError::TooLarge {
            width: 1000,
            height: 10
        })
    );
}

#[test]
fn bad_input_gives_typed_errors() {
    assert_eq!(process(b"", &SERVER_LIMITS), Err(PhotoError::Empty));
    assert_eq!(
        process(
            b"GET /etc/passwd, a text file named photo.jpg\n",
            &SERVER_LIMITS
        ),
        Err(PhotoError::UnsupportedFormat)
    );
    assert_eq!(
        process(b"%PDF-1.7\n", &SERVER_LIMITS),
        Err(PhotoError::UnsupportedFormat)
    );
    assert_eq!(
        process(b"\0\0\0\x18ftypheic\0\0\0\0mif1heic", &SERVER_LIMITS),
        Err(PhotoError::HeifUnsupported)
    );
    let photo = camera_jpeg(800, 600, 6);
    for cut in [3, 100, photo.len() / 3, photo.len() - 2] {
        assert!(
            matches!(
                process(&photo[..cut], &SERVER_LIMITS),
                Err(PhotoError::Corrupt(_))
            ),
            "cut at {cut}: {:?}",
            process(&photo[..cut], &SERVER_LIMITS).map(|p| p.original)
        );
    }
    let png = png(&RgbaImage::from_pixel(300, 300, Rgba([1, 2, 3, 255])));
    let result = process(&png[..png.len() / 2], &SERVER_LIMITS).map(|p| p.original);
    assert!(matches!(result, Err(PhotoError::Corrupt(_))), "{result:?}");
}

#[test]
fn hostile_exif_is_refused() {
    let hostile = [
        tiff_with_entry(0x010F, 2, 0xFFFF_FFF0, 16), // a 4 GB string
        tiff_with_entry(0x829A, 5, 0x8000_0000, 16), // 2^31 rationals
        tiff_with_entry(0x8769, 4, 1, 8),            // Exif IFD pointing back at IFD0
        tiff_with_entry(0x8825, 4, 1, 0xFFFF_FF00),  // GPS IFD past the end
    ];
    for block in hostile {
        let photo = with_exif(&jpeg(&gradient(64, 64), 80), &block);
        assert!(
            matches!(
                process(&photo, &SERVER_LIMITS),
                Err(PhotoError::Exif(ExifError::Malformed(_)))
            ),
            "{:?}",
            process(&photo, &SERVER_LIMITS).map(|p| p.original)
        );
    }
}

#[test]
fn mutated_input_never_panics() {
    let mut seed = 0x5EED_u64;
    let mut next = move || {
        seed = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = seed;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let originals = [
        camera_jpeg(96, 64, 6),
        png(&RgbaImage::from_pixel(40, 30, Rgba([9, 8, 7, 200]))),
    ];
    for original in &originals {
        for round in 0..300 {
            let mut bytes = original.clone();
            if round % 3 == 0 {
                bytes.truncate(usize::try_from(next() % bytes.len() as u64).unwrap());
            } else {
                for _ in 0..1 + next() % 8 {
                    let at = usize::try_from(next() % bytes.len() as u64).unwrap();
                    bytes[at] = next() as u8;
                }
            }
            // Any result is fine; a panic fails the test.
            if let Err(error) = process(&bytes, &SERVER_LIMITS) {
                assert!(!error.to_string().is_empty());
            }
        }
    }
}
