//! Nothing panics on input: every truncation and many byte mutations of valid inputs
//! must come back as `Ok` or a typed error.

use wangge_sync_core::catalog::{Catalog, CategoryCode, DEFAULT_TOML};
use wangge_sync_core::grid::geojson::{read_districts, read_grids};
use wangge_sync_core::grid::{GridCode, Level3Code};

const GRIDS: &str = r#"{"type":"FeatureCollection","features":[
{"type":"Feature","geometry":{"type":"Polygon","coordinates":[[[113.6,34.7],[113.601,34.7],[113.601,34.701],[113.6,34.701],[113.6,34.7]]]},
 "properties":{"code":"410105001001001","district":"410105","district_name":"金水区","street":"410105001","street_name":"第1街道","street_kind":"subdistrict","community":"410105001001","community_name":"第1社区","level3":"410105001001-01","level3_name":"第1网格"}},
{"type":"Feature","geometry":{"type":"MultiPolygon","coordinates":[[[[113.601,34.7],[113.602,34.7],[113.602,34.701],[113.601,34.701],[113.601,34.7]],[[113.6013,34.7003],[113.6017,34.7003],[113.6017,34.7007],[113.6013,34.7003]]]]},
 "properties":{"code":"410105001001002","district":"410105","district_name":"金水区","street":"410105001","street_name":"第1街道","street_kind":"subdistrict","community":"410105001001","community_name":"第1社区","level3":"410105001001-01","level3_name":"第1网格"}}]}"#;

const REPLACEMENTS: [u8; 9] = [b'{', b']', b'"', b'-', b'9', b'e', b'.', b',', 0xff];

fn mutations(valid: &[u8], mut check: impl FnMut(&[u8])) {
    for cut in 0..valid.len() {
        check(&valid[..cut]);
    }
    let mut buffer = valid.to_vec();
    for position in 0..valid.len() {
        for replacement in REPLACEMENTS {
            buffer[position] = replacement;
            check(&buffer);
        }
        buffer[position] = valid[position];
    }
}

#[test]
fn mutated_grid_files_never_panic() {
    assert!(
        read_grids(GRIDS.as_bytes()).is_ok(),
        "the seed input is valid"
    );
    let mut refused = 0;
    mutations(GRIDS.as_bytes(), |bytes| {
        if read_grids(bytes).is_err() {
            refused += 1;
        }
        let _ = read_districts(bytes);
    });
    assert!(
        refused > GRIDS.len(),
        "most mutations must be refused ({refused})"
    );
}

#[test]
fn mutated_catalogues_never_panic() {
    let valid = DEFAULT_TOML.as_bytes();
    // Every 31st position keeps this quick while still covering every kind of line.
    let mut refused = 0;
    for cut in (0..valid.len()).step_by(31) {
        if let Ok(text) = std::str::from_utf8(&valid[..cut])
            && Catalog::from_toml_str(text).is_err()
        {
            refused += 1;
        }
    }
    let mut buffer = valid.to_vec();
    for position in (0..valid.len()).step_by(31) {
        for replacement in REPLACEMENTS {
            buffer[position] = replacement;
            if let Ok(text) = std::str::from_utf8(&buffer) {
                let _ = Catalog::from_toml_str(text);
            }
        }
        buffer[position] = valid[position];
    }
    assert!(refused > 50, "{refused}");
}

#[test]
fn odd_codes_never_panic() {
    for text in [
        "",
        "-",
        "４１０１０５００１００１００１",
        "410105001001001\n",
        "4101050010010011",
        "410105001001-1",
        "-01",
        "410105001001-",
        "410105001001-999",
        "99999999999999999999",
        "C",
        "C01",
        "C0000",
        "X0101",
        "c0101",
        "C01011",
        "C０101",
    ] {
        let _ = text.parse::<GridCode>();
        let _ = text.parse::<Level3Code>();
        let _ = text.parse::<CategoryCode>();
    }
}
