//! Possible duplicates (疑似重复): when a report arrives, the open cases of the same
//! category nearby are suggested to the acceptor, who may void the new one as a
//! duplicate of the other (作废, with the link; the server keeps both callers for the
//! reply).
//!
//! How near is near depends on who reported: a citizen or a hotline caller describes
//! a place roughly (the peers — FixMyStreet, SeeClickFix — suggest within about
//! 250 m), a field worker stands on it with GPS but patrols a wider beat, so their
//! reports are compared over 1,000 m, as the inspectors' tools of the peers do. A
//! category may set its own radius in the catalogue (`duplicate_radius_m`).

use super::Source;
use super::fold::Status;
use crate::catalog::Category;
use crate::geo::{LonLat, distance_m};

/// The radius for reports from citizens and the hotline, metres.
pub const CALLER_RADIUS_M: u32 = 250;

/// The radius for reports from field workers and other inspectors, metres.
pub const FIELD_RADIUS_M: u32 = 1_000;

/// How far from a new report of `category` from `source` an open case of the same
/// category is suggested as the same problem, metres.
pub fn radius_m(category: &Category, source: Source) -> u32 {
    category.duplicate_radius_m.unwrap_or(match source {
        Source::Hotline | Source::Citizen => CALLER_RADIUS_M,
        Source::Patrol | Source::Video | Source::Handover | Source::SpotCheck => FIELD_RADIUS_M,
    })
}

/// Whether a case in `status` is still an open problem another report may repeat.
pub const fn is_open(status: Status) -> bool {
    !matches!(status, Status::Closed | Status::Voided)
}

/// A bounding box (WGS-84, `(min, max)`) that holds every point within `radius_m`
/// of `centre`: what a database can filter on before the exact distance.
pub fn bounding_box(centre: LonLat, radius_m: u32) -> (LonLat, LonLat) {
    // Metres per degree of latitude; a degree of longitude shrinks with cos(lat).
    const METRES_PER_DEGREE: f64 = 111_320.0;
    let dlat = f64::from(radius_m) / METRES_PER_DEGREE * 1.01;
    let cos = centre.lat.to_radians().cos().max(0.01);
    let dlon = dlat / cos;
    let min = LonLat {
        lon: (centre.lon - dlon).max(-180.0),
        lat: (centre.lat - dlat).max(-90.0),
    };
    let max = LonLat {
        lon: (centre.lon + dlon).min(180.0),
        lat: (centre.lat + dlat).min(90.0),
    };
    (min, max)
}

/// The distance between two WGS-84 positions if it is within `radius_m`.
pub fn within(a: LonLat, b: LonLat, radius_m: u32) -> Option<f64> {
    let distance = distance_m(a, b);
    (distance <= f64::from(radius_m)).then_some(distance)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::catalog::{Catalog, CategoryCode};

    fn category(code: &str) -> Category {
        let code: CategoryCode = code.parse().unwrap();
        Catalog::builtin().get(&code).unwrap().clone()
    }

    #[test]
    fn the_radius_depends_on_the_source_unless_the_category_sets_one() {
        let mut garbage = category("E0102");
        assert_eq!(radius_m(&garbage, Source::Citizen), 250);
        assert_eq!(radius_m(&garbage, Source::Hotline), 250);
        assert_eq!(radius_m(&garbage, Source::Patrol), 1_000);
        garbage.duplicate_radius_m = Some(60);
        assert_eq!(radius_m(&garbage, Source::Citizen), 60);
        assert_eq!(radius_m(&garbage, Source::Patrol), 60);
    }

    #[test]
    fn the_box_holds_the_circle_and_within_is_exact() {
        let centre = LonLat::new(113.6654, 34.7579).unwrap();
        let (min, max) = bounding_box(centre, 250);
        // 250 m due north, east, south and west are inside the box.
        for (dlon, dlat) in [(0.0, 1.0), (1.0, 0.0), (0.0, -1.0), (-1.0, 0.0)] {
            let metres_lat = 250.0 / 111_320.0;
            let metres_lon = metres_lat / centre.lat.to_radians().cos();
            let edge = LonLat::new(
                centre.lon + dlon * metres_lon * 0.999,
                centre.lat + dlat * metres_lat * 0.999,
            )
            .unwrap();
            assert!(edge.lon >= min.lon && edge.lon <= max.lon);
            assert!(edge.lat >= min.lat && edge.lat <= max.lat);
            let distance = within(centre, edge, 250).unwrap();
            assert!((240.0..=250.0).contains(&distance), "{distance}");
        }
        let far = LonLat::new(centre.lon, centre.lat + 0.003).unwrap();
        assert_eq!(within(centre, far, 250), None);
        assert!(within(centre, far, 1_000).is_some());
    }

    #[test]
    fn closed_and_voided_cases_are_not_open() {
        for status in Status::ALL {
            assert_eq!(
                is_open(status),
                !matches!(status, Status::Closed | Status::Voided),
                "{status}"
            );
        }
    }
}
