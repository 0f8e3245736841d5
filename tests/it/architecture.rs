//! The layers of `src/`, checked: each top-level module may use only the
//! modules below it (the table), so the folders show the flow of a call and
//! no module cycle can form. Read from the `crate::` paths of every file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Each layer and what it may use. Below everything: `proto` (generated) and
/// `error` (the error vocabulary).
const ALLOWED: [(&str, &[&str]); 11] = [
    ("proto", &[]),
    ("error", &[]),
    ("domain", &["error", "proto"]),
    ("transport", &["domain", "error", "proto"]),
    ("store", &["domain", "error", "proto", "transport"]),
    ("service", &["domain", "error", "proto", "store"]),
    ("ops", &["error", "proto", "store", "transport"]),
    (
        "grpc",
        &["domain", "error", "proto", "service", "transport"],
    ),
    (
        "rest",
        &[
            "domain",
            "error",
            "grpc",
            "ops",
            "proto",
            "service",
            "transport",
        ],
    ),
    (
        "app",
        &[
            "domain",
            "error",
            "grpc",
            "ops",
            "proto",
            "rest",
            "service",
            "store",
            "transport",
        ],
    ),
    (
        "cli",
        &[
            "app",
            "domain",
            "error",
            "ops",
            "proto",
            "store",
            "transport",
        ],
    ),
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("reads src/") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level modules `text` names through `crate::`, `use crate::{...}` groups included.
fn crate_references(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut rest = text;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // `use crate::{a::b, c}`: the first name of each top-level item.
            let mut depth = 0;
            let mut item_start = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if item_start && (c.is_ascii_alphabetic() || c == '_') => {
                        found.insert(ident(&group[i..]));
                        item_start = false;
                    }
                    _ => {}
                }
            }
        } else {
            let name = ident(rest);
            if !name.is_empty() {
                found.insert(name);
            }
        }
    }
    found
}

#[test]
fn modules_use_only_the_layers_below_them() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.into_iter().collect();
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut wrong = Vec::new();
    let mut seen = BTreeSet::new();
    for file in files {
        let relative = file.strip_prefix(&src).expect("under src/");
        let first = relative.components().next().expect("a path");
        let top = first
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_owned();
        if top == "lib" || top == "main" {
            continue;
        }
        seen.insert(top.clone());
        let Some(may_use) = allowed.get(top.as_str()) else {
            wrong.push(format!(
                "src/{}: module {top} is not in the layer table",
                relative.display()
            ));
            continue;
        };
        let text = std::fs::read_to_string(&file).expect("reads a source file");
        for used in crate_references(&text) {
            if used != top && !may_use.contains(&used.as_str()) {
                wrong.push(format!("src/{}: {top} uses {used}", relative.display()));
            }
        }
    }
    assert!(wrong.is_empty(), "layering broken:\n{}", wrong.join("\n"));
    assert_eq!(
        seen,
        allowed
            .keys()
            .map(|k| (*k).to_owned())
            .collect::<BTreeSet<_>>(),
        "every layer of the table exists"
    );
}

#[test]
fn the_layer_table_has_no_cycle() {
    // Repeatedly remove the layers whose uses are all removed; a cycle would be left over.
    let mut left: BTreeMap<&str, &[&str]> = ALLOWED.into_iter().collect();
    while !left.is_empty() {
        let free: Vec<&str> = left
            .iter()
            .filter(|(_, uses)| uses.iter().all(|u| !left.contains_key(u)))
            .map(|(name, _)| *name)
            .collect();
        assert!(!free.is_empty(), "a cycle among {:?}", left.keys());
        for name in free {
            left.remove(name);
        }
    }
}

#[test]
fn references_are_read_from_paths_and_groups() {
    let found = crate_references(
        "use crate::store::{A, B};\nuse crate::{domain::x, error::{E, F}, proto};\nlet a = crate::ops::m();",
    );
    let names: Vec<&str> = found.iter().map(String::as_str).collect();
    assert_eq!(names, ["domain", "error", "ops", "proto", "store"]);
}
