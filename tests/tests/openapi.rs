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
