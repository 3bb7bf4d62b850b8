use super::*;

/// One well-formed grid feature, as text, with the pieces tests like to break.
fn feature(code: &str, community_name: &str, coordinates: &str) -> String {
    let community = &code[..12];
    format!(
        r#"{{"type":"Feature","geometry":{{"type":"Polygon","coordinates":{coordinates}}},
        "properties":{{"code":"{code}","district":"{}","district_name":"金水区",
        "street":"{}","street_name":"第1街道","street_kind":"subdistrict",
        "community":"{community}","community_name":"{community_name}",
        "level3":"{community}-01","level3_name":"第1网格"}}}}"#,
        &code[..6],
        &code[..9],
    )
}

const SQUARE: &str = "[[[113.6,34.7],[113.601,34.7],[113.601,34.701],[113.6,34.701],[113.6,34.7]]]";
const EAST_SQUARE: &str =
    "[[[113.601,34.7],[113.602,34.7],[113.602,34.701],[113.601,34.701],[113.601,34.7]]]";

fn collection(features: &[String]) -> Vec<u8> {
    format!(
        r#"{{"type":"FeatureCollection","features":[{}]}}"#,
        features.join(",")
    )
    .into_bytes()
}

fn problem_of(bytes: &[u8]) -> (usize, FeatureProblem) {
    match read_grids(bytes) {
        Err(GeoJsonError::Feature { index, problem, .. }) => (index, *problem),
        other => panic!("expected a feature error, got {other:?}"),
    }
}

#[test]
fn a_good_collection_reads_and_writes_back_identically() {
    let bytes = collection(&[
        feature("410105001001001", "第1社区", SQUARE),
        feature("410105001001002", "第1社区", EAST_SQUARE),
    ]);
    let set = read_grids(&bytes).expect("valid");
    assert_eq!(set.grids().len(), 2);
    let mut written = Vec::new();
    write_grids(&set, &mut written).expect("write");
    let again = read_grids(&written).expect("re-read");
    assert_eq!(again, set);
    let mut rewritten = Vec::new();
    write_grids(&again, &mut rewritten).expect("write");
    assert_eq!(rewritten, written);
}

#[test]
fn malformed_json_names_the_line_and_column() {
    let err = read_grids(b"{\"type\":\"FeatureCollection\",\n\"features\":[{]}").expect_err("bad");
    assert!(matches!(err, GeoJsonError::Malformed(_)), "{err:?}");
    assert!(err.to_string().contains("line 2"), "{err}");
    assert!(matches!(read_grids(b""), Err(GeoJsonError::Malformed(_))));
    assert!(matches!(
        read_grids(&[0xff, 0xfe, 0x00]),
        Err(GeoJsonError::Malformed(_))
    ));
}

#[test]
fn a_geometry_instead_of_a_collection_is_refused() {
    let err =
        read_grids(br#"{"type":"Point","coordinates":[1,2],"features":[]}"#).expect_err("bad");
    assert!(err.to_string().contains("FeatureCollection"), "{err}");
}

#[test]
fn a_point_feature_is_not_a_grid() {
    let f = feature("410105001001001", "第1社区", SQUARE)
        .replace(r#""type":"Polygon","coordinates":[[[113.6,34.7],[113.601,34.7],[113.601,34.701],[113.6,34.701],[113.6,34.7]]]"#, r#""type":"Point","coordinates":[113.6,34.7]"#);
    assert_eq!(
        problem_of(&collection(&[f])),
        (0, FeatureProblem::NotAPolygon("Point"))
    );
}

#[test]
fn a_self_intersecting_polygon_is_refused() {
    let bowtie = "[[[113.6,34.7],[113.601,34.701],[113.601,34.7],[113.6,34.701],[113.6,34.7]]]";
    let bytes = collection(&[
        feature("410105001001001", "第1社区", SQUARE),
        feature("410105001001002", "第1社区", bowtie),
    ]);
    let err = read_grids(&bytes).expect_err("bowtie");
    let text = err.to_string();
    assert!(text.contains("feature #1 (410105001001002)"), "{text}");
    assert!(matches!(
        problem_of(&bytes),
        (1, FeatureProblem::Invalid(_))
    ));
}

#[test]
fn empty_and_degenerate_polygons_are_refused() {
    let bytes = collection(&[feature("410105001001001", "第1社区", "[]")]);
    assert_eq!(problem_of(&bytes), (0, FeatureProblem::Empty));
    let bytes = collection(&[feature("410105001001001", "第1社区", "[[]]")]);
    assert_eq!(
        problem_of(&bytes).1,
        FeatureProblem::RingTooShort { ring: 0, count: 0 }
    );
    let flat = "[[[113.6,34.7],[113.601,34.7],[113.602,34.7],[113.6,34.7]]]";
    let bytes = collection(&[feature("410105001001001", "第1社区", flat)]);
    assert_eq!(problem_of(&bytes).1, FeatureProblem::NoArea { polygon: 0 });
    let open = "[[[113.6,34.7],[113.601,34.7],[113.601,34.701],[113.6,34.701]]]";
    let bytes = collection(&[feature("410105001001001", "第1社区", open)]);
    assert_eq!(
        problem_of(&bytes).1,
        FeatureProblem::RingNotClosed { ring: 0 }
    );
}

#[test]
fn out_of_range_coordinates_are_refused() {
    let far = "[[[200.0,34.7],[113.601,34.7],[113.601,34.701],[200.0,34.7]]]";
    let bytes = collection(&[feature("410105001001001", "第1社区", far)]);
    let (index, problem) = problem_of(&bytes);
    assert_eq!(index, 0);
    assert!(
        matches!(
            problem,
            FeatureProblem::BadPosition {
                ring: 0,
                position: 0,
                ..
            }
        ),
        "{problem}"
    );
    // JSON has no NaN; a string where a number belongs is malformed.
    let nan = r#"[[["NaN",34.7],[113.601,34.7],[113.601,34.701],[113.6,34.7]]]"#;
    assert!(read_grids(&collection(&[feature("410105001001001", "第1社区", nan)])).is_err());
    let one_number = "[[[113.6],[113.601,34.7],[113.601,34.701],[113.6]]]";
    let bytes = collection(&[feature("410105001001001", "第1社区", one_number)]);
    assert!(read_grids(&bytes).is_err());
}

#[test]
fn a_14_digit_code_is_refused() {
    let f = feature("410105001001001", "第1社区", SQUARE)
        .replace(r#""code":"410105001001001""#, r#""code":"41010500100101""#);
    let (index, problem) = problem_of(&collection(&[f]));
    assert_eq!(index, 0);
    assert!(problem.to_string().contains("41010500100101"), "{problem}");
}

#[test]
fn duplicate_codes_name_both_features() {
    let bytes = collection(&[
        feature("410105001001001", "第1社区", SQUARE),
        feature("410105001001001", "第1社区", EAST_SQUARE),
    ]);
    assert_eq!(
        problem_of(&bytes),
        (1, FeatureProblem::Duplicate { first_index: 0 })
    );
}

#[test]
fn conflicting_names_and_codes_are_refused() {
    let bytes = collection(&[
        feature("410105001001001", "第1社区", SQUARE),
        feature("410105001001002", "另一个社区", EAST_SQUARE),
    ]);
    let (index, problem) = problem_of(&bytes);
    assert_eq!(index, 1);
    assert!(
        matches!(problem, FeatureProblem::NameConflict { first_index: 0, .. }),
        "{problem}"
    );
    let f = feature("410105001001001", "第1社区", SQUARE)
        .replace(r#""street":"410105001""#, r#""street":"410105002""#);
    assert!(matches!(
        problem_of(&collection(&[f])).1,
        FeatureProblem::CodeMismatch {
            property: "street",
            ..
        }
    ));
    let f = feature("410105001001001", "第1社区", SQUARE)
        .replace(r#""level3_name":"第1网格""#, r#""level3_name":"  ""#);
    assert!(matches!(
        problem_of(&collection(&[f])).1,
        FeatureProblem::Properties(_)
    ));
    let f =
        feature("410105001001001", "第1社区", SQUARE).replace(r#","street_name":"第1街道""#, "");
    let (_, problem) = problem_of(&collection(&[f]));
    assert!(problem.to_string().contains("street_name"), "{problem}");
}

#[test]
fn districts_file_reads_with_string_or_number_adcodes() {
    let district = |adcode: &str| {
        format!(
            r#"{{"type":"Feature","properties":{{"adcode":{adcode},"name":"金水区"}},"geometry":{{"type":"Polygon","coordinates":{SQUARE}}}}}"#
        )
    };
    let districts = read_districts(&collection(&[district("\"410105\"")])).expect("string");
    assert_eq!(districts[0].code.to_string(), "410105");
    let districts = read_districts(&collection(&[district("410105")])).expect("number");
    assert_eq!(districts[0].name, "金水区");
    assert!(read_districts(&collection(&[district("\"41010\"")])).is_err());
    let twice = collection(&[district("410105"), district("410105")]);
    assert!(matches!(
        read_districts(&twice),
        Err(GeoJsonError::Feature { index: 1, .. })
    ));
}
