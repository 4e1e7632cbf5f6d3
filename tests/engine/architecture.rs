//! docs/ARCHITECTURE.md's tree lists every Rust file of the crates and
//! their test directories, no more and no fewer.

use std::collections::BTreeSet;
use std::path::Path;

#[test]
fn the_architecture_tree_lists_exactly_the_files_there_are() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(root.join("docs/ARCHITECTURE.md")).unwrap();
    let tree = doc.split("## The tree").nth(1).expect("a tree section");
    let block = tree.split("```").nth(1).expect("the tree's code block");
    let (mut listed, mut dir) = (BTreeSet::new(), None::<String>);
    for line in block.lines() {
        if let Some(d) = line.strip_suffix('/').filter(|d| !d.starts_with(' ')) {
            dir = Some(d.to_string());
        } else if let (Some(d), Some(file)) =
            (&dir, line.strip_prefix("  ").and_then(|l| l.split_whitespace().next()))
        {
            listed.insert(format!("{d}/{file}"));
        }
    }
    let dirs: BTreeSet<String> = listed.iter().map(|p| p.rsplit_once('/').unwrap().0.to_string()).collect();
    let mut there = BTreeSet::new();
    for d in &dirs {
        for entry in std::fs::read_dir(root.join(d)).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            if name.ends_with(".rs") {
                there.insert(format!("{d}/{name}"));
            }
        }
    }
    let missing: Vec<_> = there.difference(&listed).collect();
    let stale: Vec<_> = listed.difference(&there).collect();
    assert!(missing.is_empty() && stale.is_empty(), "not in the tree: {missing:?}; no such file: {stale:?}");
    // Every directory that holds Rust files is drawn, not only those listed.
    for top in ["src", "broker/src", "tests", "broker/tests"] {
        for d in rust_dirs(root, top) {
            assert!(dirs.contains(&d), "{d} holds Rust files but is not drawn");
        }
    }
}

/// `top` and every directory below it that holds a `.rs` file, relative to
/// the workspace root.
fn rust_dirs(root: &Path, top: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut pending = vec![top.to_string()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(root.join(&d)).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            if entry.file_type().unwrap().is_dir() {
                pending.push(format!("{d}/{name}"));
            } else if name.ends_with(".rs") {
                found.insert(d.clone());
            }
        }
    }
    found
}
