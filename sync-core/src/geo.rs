//! Coordinates: WGS-84 (what a phone's GPS reports), GCJ-02 (the datum of Chinese web
//! maps and of our grid polygons) and BD-09 (Baidu maps), and distances in metres.
//!
//! GCJ-02 is WGS-84 plus a deliberate, smooth, position-dependent offset (about 570 m in
//! Zhengzhou, more than five unit grids), so a GPS fix must be converted before it is
//! matched against grid polygons. The forward formula is the public one (Krasovsky
//! ellipsoid `a = 6378245.0`, `ee = 0.006693421622965943`); the inverse has no closed
//! form and is found by fixed-point iteration to well under 0.5 m. Points outside the
//! rough rectangle of China that the public algorithm uses pass through unchanged.

use std::f64::consts::PI;

/// Semi-major axis of the Krasovsky 1940 ellipsoid used by the GCJ-02 formula.
const KRASOVSKY_A: f64 = 6_378_245.0;
/// First eccentricity squared of the Krasovsky 1940 ellipsoid.
const KRASOVSKY_EE: f64 = 0.006_693_421_622_965_943;
/// Mean Earth radius (IUGG), for haversine distances.
const EARTH_MEAN_RADIUS_M: f64 = 6_371_008.8;
/// BD-09's rotation constant (`π · 3000 / 180`).
const BD_X_PI: f64 = PI * 3000.0 / 180.0;

/// Stop the inverse iteration once a step moves the estimate by less than this many
/// degrees (about 1 mm), far inside the 0.5 m the rest of the system relies on.
const INVERSE_TOLERANCE_DEG: f64 = 1e-8;
const INVERSE_MAX_STEPS: usize = 30;

/// A position as longitude/latitude in degrees. Which datum it is in is the caller's
/// knowledge; the functions below say what they take and return.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LonLat {
    pub lon: f64,
    pub lat: f64,
}

/// The datum a position is expressed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Crs {
    /// WGS-84: GPS, what phones report.
    Wgs84,
    /// GCJ-02 (国测局坐标): Chinese web maps; the datum of our grid polygons.
    Gcj02,
    /// BD-09: Baidu maps (GCJ-02 with a further offset).
    Bd09,
}

impl std::str::FromStr for Crs {
    type Err = GeoError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().replace(['-', '_'], "").as_str() {
            "wgs84" => Ok(Crs::Wgs84),
            "gcj02" => Ok(Crs::Gcj02),
            "bd09" => Ok(Crs::Bd09),
            _ => Err(GeoError::UnknownCrs(s.to_owned())),
        }
    }
}

/// Why a coordinate was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GeoError {
    #[error("longitude {0} is not a finite number in [-180, 180]")]
    BadLongitude(f64),
    #[error("latitude {0} is not a finite number in [-90, 90]")]
    BadLatitude(f64),
    #[error("unknown coordinate system {0:?} (expected wgs84, gcj02 or bd09)")]
    UnknownCrs(String),
}

impl LonLat {
    /// A checked position: both numbers finite and within the globe's range.
    pub fn new(lon: f64, lat: f64) -> Result<Self, GeoError> {
        if !lon.is_finite() || !(-180.0..=180.0).contains(&lon) {
            return Err(GeoError::BadLongitude(lon));
        }
        if !lat.is_finite() || !(-90.0..=90.0).contains(&lat) {
            return Err(GeoError::BadLatitude(lat));
        }
        Ok(LonLat { lon, lat })
    }

    /// Converts this position from `from` to WGS-84, the datum documents store.
    pub fn to_wgs84(self, from: Crs) -> LonLat {
        match from {
            Crs::Wgs84 => self,
            Crs::Gcj02 => gcj02_to_wgs84(self),
            Crs::Bd09 => bd09_to_wgs84(self),
        }
    }

    /// Converts this position from `from` to GCJ-02, the datum of grid polygons.
    pub fn to_gcj02(self, from: Crs) -> LonLat {
        match from {
            Crs::Wgs84 => wgs84_to_gcj02(self),
            Crs::Gcj02 => self,
            Crs::Bd09 => bd09_to_gcj02(self),
        }
    }
}

/// The rough rectangle the public GCJ-02 algorithm treats as China; outside it the
/// offset is not applied.
pub fn is_outside_china(p: LonLat) -> bool {
    !(72.004..=137.8347).contains(&p.lon) || !(0.8293..=55.8271).contains(&p.lat)
}

/// WGS-84 → GCJ-02 (the public forward formula).
pub fn wgs84_to_gcj02(p: LonLat) -> LonLat {
    if is_outside_china(p) {
        return p;
    }
    let (d_lon, d_lat) = gcj02_offset(p);
    LonLat {
        lon: p.lon + d_lon,
        lat: p.lat + d_lat,
    }
}

/// GCJ-02 → WGS-84 by fixed-point iteration of the forward formula (error < 1 mm).
pub fn gcj02_to_wgs84(p: LonLat) -> LonLat {
    if is_outside_china(p) {
        return p;
    }
    invert(p, wgs84_to_gcj02)
}

/// GCJ-02 → BD-09 (Baidu's public formula).
pub fn gcj02_to_bd09(p: LonLat) -> LonLat {
    let (x, y) = (p.lon, p.lat);
    let z = (x * x + y * y).sqrt() + 0.00002 * (y * BD_X_PI).sin();
    let theta = y.atan2(x) + 0.000003 * (x * BD_X_PI).cos();
    LonLat {
        lon: z * theta.cos() + 0.0065,
        lat: z * theta.sin() + 0.006,
    }
}

/// BD-09 → GCJ-02: the public approximate inverse, refined by iteration so that
/// `gcj02_to_bd09(bd09_to_gcj02(p))` returns `p` to well under 0.5 m.
pub fn bd09_to_gcj02(p: LonLat) -> LonLat {
    let x = p.lon - 0.0065;
    let y = p.lat - 0.006;
    let z = (x * x + y * y).sqrt() - 0.00002 * (y * BD_X_PI).sin();
    let theta = y.atan2(x) - 0.000003 * (x * BD_X_PI).cos();
    let first_guess = LonLat {
        lon: z * theta.cos(),
        lat: z * theta.sin(),
    };
    refine(p, first_guess, gcj02_to_bd09)
}

/// WGS-84 → BD-09.
pub fn wgs84_to_bd09(p: LonLat) -> LonLat {
    gcj02_to_bd09(wgs84_to_gcj02(p))
}

/// BD-09 → WGS-84.
pub fn bd09_to_wgs84(p: LonLat) -> LonLat {
    gcj02_to_wgs84(bd09_to_gcj02(p))
}

/// Great-circle (haversine) distance in metres between two positions of the same datum.
pub fn distance_m(a: LonLat, b: LonLat) -> f64 {
    let (lat1, lat2) = (a.lat.to_radians(), b.lat.to_radians());
    let d_lat = lat2 - lat1;
    let d_lon = (b.lon - a.lon).to_radians();
    let h = (d_lat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (d_lon / 2.0).sin().powi(2);
    2.0 * EARTH_MEAN_RADIUS_M * h.sqrt().min(1.0).asin()
}

/// The GCJ-02 offset (Δlon, Δlat) in degrees at a WGS-84 position.
fn gcj02_offset(p: LonLat) -> (f64, f64) {
    let x = p.lon - 105.0;
    let y = p.lat - 35.0;
    let d_lat = offset_lat(x, y);
    let d_lon = offset_lon(x, y);
    let rad_lat = p.lat / 180.0 * PI;
    let magic = 1.0 - KRASOVSKY_EE * rad_lat.sin() * rad_lat.sin();
    let sqrt_magic = magic.sqrt();
    let d_lat =
        (d_lat * 180.0) / ((KRASOVSKY_A * (1.0 - KRASOVSKY_EE)) / (magic * sqrt_magic) * PI);
    let d_lon = (d_lon * 180.0) / (KRASOVSKY_A / sqrt_magic * rad_lat.cos() * PI);
    (d_lon, d_lat)
}

fn offset_lat(x: f64, y: f64) -> f64 {
    let mut ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * x.abs().sqrt();
    ret += (20.0 * (6.0 * x * PI).sin() + 20.0 * (2.0 * x * PI).sin()) * 2.0 / 3.0;
    ret += (20.0 * (y * PI).sin() + 40.0 * (y / 3.0 * PI).sin()) * 2.0 / 3.0;
    ret += (160.0 * (y / 12.0 * PI).sin() + 320.0 * (y * PI / 30.0).sin()) * 2.0 / 3.0;
    ret
}

fn offset_lon(x: f64, y: f64) -> f64 {
    let mut ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * x.abs().sqrt();
    ret += (20.0 * (6.0 * x * PI).sin() + 20.0 * (2.0 * x * PI).sin()) * 2.0 / 3.0;
    ret += (20.0 * (x * PI).sin() + 40.0 * (x / 3.0 * PI).sin()) * 2.0 / 3.0;
    ret += (150.0 * (x / 12.0 * PI).sin() + 300.0 * (x / 30.0 * PI).sin()) * 2.0 / 3.0;
    ret
}

/// Inverts a forward transform whose offset varies slowly with position: start from
/// the target itself and correct by the residual until it is below the tolerance.
fn invert(target: LonLat, forward: fn(LonLat) -> LonLat) -> LonLat {
    refine(target, target, forward)
}

fn refine(target: LonLat, mut guess: LonLat, forward: fn(LonLat) -> LonLat) -> LonLat {
    for _ in 0..INVERSE_MAX_STEPS {
        let image = forward(guess);
        let (d_lon, d_lat) = (target.lon - image.lon, target.lat - image.lat);
        guess.lon += d_lon;
        guess.lat += d_lat;
        if d_lon.abs() < INVERSE_TOLERANCE_DEG && d_lat.abs() < INVERSE_TOLERANCE_DEG {
            break;
        }
    }
    guess
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ll(lon: f64, lat: f64) -> LonLat {
        LonLat { lon, lat }
    }

    #[test]
    fn forward_matches_the_published_vector() {
        let gcj = wgs84_to_gcj02(ll(116.404, 39.915));
        assert!((gcj.lon - 116.41024449916938).abs() < 1e-12, "{gcj:?}");
        assert!((gcj.lat - 39.91640428150164).abs() < 1e-12, "{gcj:?}");
    }

    #[test]
    fn the_offset_in_zhengzhou_is_several_hundred_metres() {
        let wgs = ll(113.6654, 34.7579); // 二七广场
        let offset = distance_m(wgs, wgs84_to_gcj02(wgs));
        assert!((400.0..700.0).contains(&offset), "offset {offset} m");
    }

    #[test]
    fn inverse_is_within_half_a_metre_across_china() {
        for lon in (74..135).step_by(3) {
            for lat in (18..54).step_by(3) {
                let wgs = ll(lon as f64 + 0.123, lat as f64 + 0.456);
                let back = gcj02_to_wgs84(wgs84_to_gcj02(wgs));
                let err = distance_m(wgs, back);
                assert!(err < 0.5, "error {err} m at {wgs:?}");
                assert!(
                    err < 0.01,
                    "error {err} m at {wgs:?} (expected millimetres)"
                );
            }
        }
    }

    #[test]
    fn bd09_round_trips() {
        let gcj = ll(113.6654, 34.7579);
        let bd = gcj02_to_bd09(gcj);
        assert!(distance_m(gcj, bd) > 500.0, "BD-09 adds its own offset");
        assert!(distance_m(gcj, bd09_to_gcj02(bd)) < 0.01);
        let wgs = ll(113.6654, 34.7579);
        assert!(distance_m(wgs, bd09_to_wgs84(wgs84_to_bd09(wgs))) < 0.01);
    }

    #[test]
    fn bd09_matches_published_vectors() {
        // The widely used coordtransform library's examples, both directions.
        let gcj = bd09_to_gcj02(ll(116.404, 39.915));
        assert!(
            distance_m(gcj, ll(116.39762729119315, 39.90865673957631)) < 0.5,
            "{gcj:?}"
        );
        // Baidu's own converter: GCJ-02 (116.404, 39.915) → BD-09 (116.41036949371029, 39.92133699351022).
        let bd = gcj02_to_bd09(ll(116.404, 39.915));
        assert!((bd.lon - 116.41036949371029).abs() < 1e-9, "{bd:?}");
        assert!((bd.lat - 39.92133699351022).abs() < 1e-9, "{bd:?}");
    }

    #[test]
    fn outside_china_passes_through() {
        for p in [
            ll(2.35, 48.85),
            ll(-74.0, 40.7),
            ll(139.7, 35.7),
            ll(151.2, -33.9),
        ] {
            assert_eq!(wgs84_to_gcj02(p), p);
            assert_eq!(gcj02_to_wgs84(p), p);
        }
    }

    #[test]
    fn distance_of_one_degree_of_latitude() {
        let d = distance_m(ll(113.0, 34.0), ll(113.0, 35.0));
        assert!((d - 111_195.0).abs() < 5.0, "{d}");
        assert_eq!(distance_m(ll(113.0, 34.0), ll(113.0, 34.0)), 0.0);
    }

    #[test]
    fn checked_positions_refuse_nan_and_out_of_range() {
        assert!(LonLat::new(113.6, 34.7).is_ok());
        assert!(matches!(
            LonLat::new(f64::NAN, 34.7),
            Err(GeoError::BadLongitude(_))
        ));
        assert!(matches!(
            LonLat::new(181.0, 0.0),
            Err(GeoError::BadLongitude(_))
        ));
        assert!(matches!(
            LonLat::new(0.0, -90.5),
            Err(GeoError::BadLatitude(_))
        ));
        assert!(matches!(
            LonLat::new(0.0, f64::INFINITY),
            Err(GeoError::BadLatitude(_))
        ));
    }

    #[test]
    fn crs_names_parse() {
        assert_eq!("WGS-84".parse::<Crs>(), Ok(Crs::Wgs84));
        assert_eq!("gcj02".parse::<Crs>(), Ok(Crs::Gcj02));
        assert_eq!("bd09".parse::<Crs>(), Ok(Crs::Bd09));
        assert!(matches!("utm".parse::<Crs>(), Err(GeoError::UnknownCrs(_))));
    }
}
