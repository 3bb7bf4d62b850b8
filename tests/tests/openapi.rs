//! `/openapi.json` is served, is valid JSON, and every operation it documents exists on
//! the server (answers something other than the `not_found` fallback).

use serde_json::Value;
use wangge_tests::{Server, answer, http};

#[test]
fn every_documented_operation_is_served() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let database = format!("sqlite://{}", dir.path().join("api.db").display());
    let server = Server::start(&database, &[]);
    let (status, document) = answer(http().get(server.url("/openapi.json")).call());
    assert_eq!(status, 200);
    assert_eq!(document["openapi"], "3.1.0");
    let paths = document["paths"].as_object().expect("paths");
    assert!(paths.len() >= 7, "{} paths", paths.len());
    let mut operations = 0;
    for (path, item) in paths {
        for (method, _) in item.as_object().expect("path item") {
            let url = server.url(path);
            let response = match method.as_str() {
                "get" => http().get(&url).call(),
                "post" => http()
                    .post(&url)
                    .header("Content-Type", "application/json")
                    .send("{}"),
                "put" => http()
                    .put(&url)
                    .header("Content-Type", "application/json")
                    .send("{}"),
                "patch" => http()
                    .patch(&url)
                    .header("Content-Type", "application/offset+octet-stream")
                    .send(&b""[..]),
                "delete" => http().delete(&url).call(),
                // No body: the status alone tells (401 without a token, not 404/405).
                "head" => {
                    let response = http().head(&url).call().expect("HEAD reaches the server");
                    let status = response.status().as_u16();
                    assert!(
                        status != 404 && status != 405,
                        "HEAD {path} is documented but answers {status}"
                    );
                    operations += 1;
                    continue;
                }
                other => panic!("{other} {path}: add it to this test"),
            };
            let (status, body) = answer(response);
            let code = body["error"]["code"].as_str().unwrap_or("");
            assert_ne!(
                code, "not_found",
                "{method} {path} is documented but not served"
            );
            assert!(
                status != 405,
                "{method} {path} is documented with the wrong method"
            );
            operations += 1;
        }
    }
    assert!(operations >= 7);
    // And the fallback really is what an undocumented path gets.
    let (status, body) = answer(http().get(server.url("/v1/undocumented")).call());
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (404, Value::from("not_found"))
    );
}

/// The error codes the API can answer, read from its source: the second argument of
/// `ApiError::new`, a `(StatusCode::…, "code")` pair, or the first of `bad_request`
/// and `invalid`. Every one is in the `Error` schema's enum, and every documented code
/// is still answered somewhere.
#[test]
fn every_error_code_is_documented_and_every_documented_code_is_answered() {
    let api = wangge_tests::workspace_root().join("server/src");
    let mut files = vec![api.join("api.rs")];
    for entry in std::fs::read_dir(api.join("api")).expect("server/src/api") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    let mut answered = std::collections::BTreeSet::new();
    for file in &files {
        let source = std::fs::read_to_string(file).expect("source");
        answered.extend(error_codes_in(&source));
    }
    assert!(answered.len() > 40, "{answered:?}");
    let text = std::fs::read_to_string(api.join("../api/openapi.json")).expect("openapi.json");
    let document: Value = serde_json::from_str(&text).expect("JSON");
    let documented: std::collections::BTreeSet<String> = document["components"]["schemas"]["Error"]
        ["properties"]["error"]["properties"]["code"]["enum"]
        .as_array()
        .expect("the Error schema's code enum")
        .iter()
        .map(|c| c.as_str().expect("a code").to_owned())
        .collect();
    let undocumented: Vec<_> = answered.difference(&documented).collect();
    let unanswered: Vec<_> = documented.difference(&answered).collect();
    assert!(
        undocumented.is_empty(),
        "answered but not in the Error schema: {undocumented:?}"
    );
    assert!(
        unanswered.is_empty(),
        "documented but answered nowhere: {unanswered:?}"
    );
}

/// The snake_case literals in error position (see the test above).
fn error_codes_in(source: &str) -> Vec<String> {
    let mut codes = Vec::new();
    let literal_after = |rest: &str| -> Option<String> {
        let rest = rest.trim_start().strip_prefix('"')?;
        let end = rest.find('"')?;
        let code = &rest[..end];
        (!code.is_empty()
            && code
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'))
        .then(|| code.to_owned())
    };
    for (marker, skip_first_argument) in [
        ("ApiError::new(", true),
        ("(StatusCode::", true),
        ("bad_request(", false),
        ("invalid(", false),
    ] {
        for (at, _) in source.match_indices(marker) {
            let mut rest = &source[at + marker.len()..];
            if skip_first_argument {
                // The status: up to the first comma outside parentheses.
                let mut depth = 0i32;
                let Some(comma) = rest.char_indices().find_map(|(i, c)| {
                    match c {
                        '(' => depth += 1,
                        ')' => depth -= 1,
                        ',' if depth == 0 => return Some(i),
                        _ => {}
                    }
                    (depth < 0).then_some(usize::MAX)
                }) else {
                    continue;
                };
                if comma == usize::MAX {
                    continue;
                }
                rest = &rest[comma + 1..];
            }
            if let Some(code) = literal_after(rest) {
                codes.push(code);
            }
        }
    }
    codes
}

/// Every route the router declares (`.route("…"` in `server/src/api.rs`) is documented,
/// so a new route without its description fails here; the test above checks the other
/// way.
#[test]
fn every_served_route_is_documented() {
    let root = wangge_tests::workspace_root();
    let source = std::fs::read_to_string(root.join("server/src/api.rs")).expect("api.rs");
    let served: std::collections::BTreeSet<&str> = source
        .match_indices(".route(")
        .filter_map(|(at, _)| {
            let rest = source[at + ".route(".len()..].trim_start();
            let rest = rest.strip_prefix('"')?;
            Some(&rest[..rest.find('"')?])
        })
        .collect();
    assert!(served.len() > 20, "{served:?}");
    let text = std::fs::read_to_string(root.join("server/api/openapi.json")).expect("openapi");
    let document: Value = serde_json::from_str(&text).expect("JSON");
    let paths = document["paths"].as_object().expect("paths");
    // The web console's page and files are HTML, scripts and styles for a browser,
    // not API operations (docs/console.md); its session routes are documented.
    const NOT_API: [&str; 2] = ["/", "/console/{*file}"];
    let undocumented: Vec<_> = served
        .iter()
        .filter(|p| !paths.contains_key(**p) && !NOT_API.contains(p))
        .collect();
    assert!(
        undocumented.is_empty(),
        "served but not in server/api/openapi.json: {undocumented:?}"
    );
}
