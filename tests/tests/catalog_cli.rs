//! `wangge catalog export | check`: an operator's round trip from the default catalogue.

use wangge_tests::wangge;

#[test]
fn the_exported_default_checks_and_a_broken_copy_is_named() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = wangge().args(["catalog", "export"]).output().expect("run");
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).expect("utf-8");
    assert!(text.contains("暴露垃圾"));

    let good = dir.path().join("catalog.toml");
    std::fs::write(&good, &text).expect("write");
    let out = wangge()
        .args(["catalog", "check"])
        .arg(&good)
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("valid"));

    // An operator misspells a team on exposed garbage (E0102).
    let start = text.find("code = \"E0102\"").expect("E0102 in the default");
    let team_at = start + text[start..].find("team = \"").expect("its team");
    let end = team_at + text[team_at..].find('\n').expect("end of line");
    let broken = format!("{}team = \"sanitaton\"{}", &text[..team_at], &text[end..]);
    let bad = dir.path().join("broken.toml");
    std::fs::write(&bad, broken).expect("write");
    let out = wangge()
        .args(["catalog", "check"])
        .arg(&bad)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("E0102") && err.contains("sanitaton"), "{err}");
}
