//! The runtime knows no front-end: the layers below sagas, process managers and operator
//! actions never name them, and no module depends on itself through others.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers every front-end builds on.
const BELOW: [&str; 4] = ["runtime", "store", "transport", "model"];
/// The front-ends.
const FRONT_ENDS: [&str; 3] = ["saga", "process", "operator"];
/// What the crate root re-exports of the front-ends: naming `crate::Saga` names the saga module.
const RE_EXPORTED: [&str; 3] = ["crate::Saga", "crate::Step", "crate::ProcessManager"];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `dir` (or `dir.rs` itself), with its path.
fn rust_files(path: &Path) -> Vec<PathBuf> {
    if path.is_file() {
        return vec![path.to_owned()];
    }
    let mut files = Vec::new();
    let entries = std::fs::read_dir(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// Where `text` names `name::` as a path segment (not as the tail of a longer identifier).
fn names(text: &str, name: &str) -> Vec<usize> {
    let needle = format!("{name}::");
    text.match_indices(&needle)
        .filter(|(at, _)| {
            let before = text[..*at].chars().next_back();
            !before.is_some_and(|c| c.is_alphanumeric() || c == '_')
        })
        .map(|(at, _)| text[..at].matches('\n').count() + 1)
        .collect()
}

#[test]
fn no_file_below_the_front_ends_names_one_in_code_doc_links_or_comments() {
    let mut found = Vec::new();
    for layer in BELOW {
        for file in rust_files(&src().join(layer)) {
            let text = std::fs::read_to_string(&file).unwrap();
            for front_end in FRONT_ENDS {
                for line in names(&text, front_end) {
                    found.push(format!("{}:{line} names `{front_end}::`", file.display()));
                }
            }
            for item in RE_EXPORTED {
                for (at, _) in text.match_indices(item) {
                    let after = text[at + item.len()..].chars().next();
                    if !after.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                        let line = text[..at].matches('\n').count() + 1;
                        found.push(format!("{}:{line} names `{item}`", file.display()));
                    }
                }
            }
        }
    }
    assert!(found.is_empty(), "the layers below the front-ends must not name them:\n{}", found.join("\n"));
}

#[test]
fn no_module_below_the_front_ends_is_named_like_one() {
    let mut found = Vec::new();
    for layer in BELOW {
        for file in rust_files(&src().join(layer)) {
            let relative = file.strip_prefix(src().join(layer)).unwrap();
            for part in relative.iter() {
                let stem = Path::new(part).file_stem().unwrap().to_string_lossy().into_owned();
                if FRONT_ENDS.contains(&stem.as_str()) {
                    found.push(file.display().to_string());
                }
            }
        }
    }
    assert!(found.is_empty(), "modules below the front-ends named like one:\n{}", found.join("\n"));
}

/// The crate's top-level modules and, for each, the others its files name as `crate::module`.
fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let modules: BTreeSet<String> = std::fs::read_dir(src())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir() || p.extension().is_some_and(|e| e == "rs"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .filter(|m| m != "lib")
        .collect();
    let mut graph = BTreeMap::new();
    for module in &modules {
        let dir = src().join(module);
        let path = if dir.is_dir() { dir } else { src().join(format!("{module}.rs")) };
        let mut uses = BTreeSet::new();
        for file in rust_files(&path) {
            let text = std::fs::read_to_string(&file).unwrap();
            for other in &modules {
                if other != module && text.contains(&format!("crate::{other}::")) {
                    uses.insert(other.clone());
                }
            }
        }
        graph.insert(module.clone(), uses);
    }
    graph
}

#[test]
fn the_modules_of_saga_core_depend_on_each_other_without_a_cycle() {
    let graph = module_graph();
    assert!(graph.contains_key("runtime") && graph.contains_key("saga"), "modules not found: {graph:?}");
    // Kahn's algorithm: what cannot be ordered lies on a cycle.
    let mut left = graph.clone();
    loop {
        let free: Vec<String> = left
            .iter()
            .filter(|(_, uses)| uses.iter().all(|u| !left.contains_key(u)))
            .map(|(m, _)| m.clone())
            .collect();
        if free.is_empty() {
            break;
        }
        for module in free {
            left.remove(&module);
        }
    }
    assert!(left.is_empty(), "these modules depend on each other in a cycle: {left:?}");
}
