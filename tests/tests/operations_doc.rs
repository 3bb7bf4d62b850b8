//! `docs/operations.md` names every setting the server reads, and no other: the
//! `WANGGE_*` literals in `server/src` against the rows of the page's settings table.

use std::collections::BTreeSet;
use std::path::Path;

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("directory") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `WANGGE_…` names inside double quotes.
fn quoted_settings(text: &str) -> BTreeSet<String> {
    text.split('"')
        .skip(1)
        .step_by(2)
        .filter(|s| {
            s.starts_with("WANGGE_")
                && s.len() > 7
                && s.bytes().all(|b| b.is_ascii_uppercase() || b == b'_')
        })
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_settings_reference_matches_the_code() {
    let root = wangge_tests::workspace_root();
    let mut files = Vec::new();
    rust_files(&root.join("server/src"), &mut files);
    let mut read: BTreeSet<String> = BTreeSet::new();
    for file in files {
        read.extend(quoted_settings(
            &std::fs::read_to_string(&file).expect("source"),
        ));
    }
    assert!(read.len() > 20, "{read:?}");
    let page = std::fs::read_to_string(root.join("docs/operations.md")).expect("the page");
    let documented: BTreeSet<String> = page
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|rest| rest.split('`').next())
        .filter(|name| name.starts_with("WANGGE_"))
        .map(str::to_owned)
        .collect();
    let missing: Vec<_> = read.difference(&documented).collect();
    let stale: Vec<_> = documented.difference(&read).collect();
    assert!(
        missing.is_empty(),
        "read by the server, not in docs/operations.md: {missing:?}"
    );
    assert!(
        stale.is_empty(),
        "in docs/operations.md, read nowhere: {stale:?}"
    );
}
