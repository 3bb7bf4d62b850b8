//! ARCHITECTURE.md cannot drift from the tree: every file or folder it names in
//! backticks (`server/src/api.rs`, `api/error.rs`, `docs/`) exists — as a path from the
//! repository's root or as the end of a tracked path (a module named inside its
//! package's section). URLs (`/v1/…`) are not paths.

use std::path::Path;

fn tracked(root: &Path, dir: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).expect("directory") {
        let path = entry.expect("entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with('.') || name == "target" || name == "node_modules" {
            continue;
        }
        let relative = path
            .strip_prefix(root)
            .expect("inside")
            .to_string_lossy()
            .replace('\\', "/");
        if path.is_dir() {
            out.push(format!("{relative}/"));
            tracked(root, &path, out);
        } else {
            out.push(relative);
        }
    }
}

fn looks_like_a_path(token: &str) -> bool {
    let extensions = [
        ".rs", ".md", ".toml", ".sql", ".json", ".sh", ".py", ".geojson", ".txt", ".yaml",
    ];
    !token.starts_with('/')
        && !token.contains("://")
        && token
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-/".contains(c))
        && (extensions.iter().any(|e| token.ends_with(e)) || token.ends_with('/'))
        && token.len() > 3
}

#[test]
fn every_path_the_architecture_names_exists() {
    let root = wangge_tests::workspace_root();
    let mut paths = Vec::new();
    tracked(root, root, &mut paths);
    let text = std::fs::read_to_string(root.join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let mut named = 0;
    let mut missing = Vec::new();
    for (i, token) in text.split('`').enumerate() {
        // Odd pieces are inside backticks; `file.rs:12` names a line of a file.
        let token = token.split(':').next().unwrap_or(token);
        if i % 2 == 0 || !looks_like_a_path(token) {
            continue;
        }
        named += 1;
        let exists = paths
            .iter()
            .any(|p| p == token || p.ends_with(&format!("/{token}")));
        if !exists {
            missing.push(token.to_owned());
        }
    }
    assert!(named > 50, "only {named} paths found: is the parser right?");
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md names what does not exist: {missing:?}"
    );
}
