//! The core's layers hold (ARCHITECTURE.md, "Layers"): read from the source itself.
//!
//! - only `http/` and the receiver's `server` module know HTTP (`axum`);
//! - the edges (`http/`, `receiver/`) never call the terminal driver (`crate::terminal`):
//!   their terminal calls go through owned driver tasks;
//! - the pure domain names no other module of the crate and no I/O crate;
//! - the application and persistence never name the edges (`http`, `receiver`);
//! - no two top-level modules use each other (no cycles);
//! - every top-level module uses only modules of its own layer or an inner one
//!   ([`LAYERS`]); a new module must be given its layer here.
//!
//! The check reads `crate::<module>` paths (also inside `use crate::{…}` groups) and `use`
//! lines of external crates; comments are ignored.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers, innermost first (ARCHITECTURE.md, "core/").
const LAYERS: &[&[&str]] = &[
    &["retry"],
    &["card", "domain"],
    &["store", "terminal"],
    &["error", "records", "residency"],
    &["app"],
    &["sync", "enroll", "notify", "device_events"],
    &["http", "receiver"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every source file: its path below `src/` and its code without comments.
fn sources() -> Vec<(String, String)> {
    let root = src();
    let mut all = Vec::new();
    files(&root, &mut all);
    all.into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("source");
            let code: String = text
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .map(|l| format!("{l}\n"))
                .collect();
            let name = path
                .strip_prefix(&root)
                .expect("below src")
                .to_string_lossy()
                .replace('\\', "/");
            (name, code)
        })
        .collect()
}

/// The top-level module a file belongs to (`app/plan.rs` → `app`, `error.rs` → `error`).
fn module_of(file: &str) -> String {
    file.split('/')
        .next()
        .unwrap_or(file)
        .trim_end_matches(".rs")
        .to_owned()
}

/// The crate's modules a source names: `crate::x…` and the members of `use crate::{x, y}`.
fn named_modules(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let word = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for part in group[..end].split(',') {
                let name = word(part.trim());
                if !name.is_empty() {
                    out.insert(name);
                }
            }
        } else {
            let name = word(rest);
            if !name.is_empty() {
                out.insert(name);
            }
        }
    }
    out
}

#[test]
fn only_the_edges_know_http() {
    let offenders: Vec<String> = sources()
        .into_iter()
        .filter(|(file, _)| !file.starts_with("http/") && file != "receiver/server.rs")
        .filter(|(_, code)| code.contains("axum"))
        .map(|(file, _)| file)
        .collect();
    assert!(
        offenders.is_empty(),
        "axum outside the edges: {offenders:?}"
    );
}

/// The integrator API's handlers and the receiver never call the terminal driver
/// themselves: their calls to terminals go through the application's owned driver tasks
/// (`app::terminal_calls`), which answer within a deadline.
#[test]
fn the_edges_never_call_the_terminal_driver() {
    let offenders: Vec<String> = sources()
        .into_iter()
        .filter(|(file, _)| file.starts_with("http/") || file.starts_with("receiver/"))
        .filter(|(_, code)| {
            named_modules(code).contains("terminal")
                || code.contains("TerminalClient")
                || code.contains("acs_core::terminal")
        })
        .map(|(file, _)| file)
        .collect();
    assert!(
        offenders.is_empty(),
        "handlers calling the terminal driver inline: {offenders:?}"
    );
}

#[test]
fn the_domain_is_pure() {
    let forbidden_crates = [
        "axum",
        "tokio",
        "rusqlite",
        "reqwest",
        "serde_json::",
        "serde::",
    ];
    for (file, code) in sources() {
        if !(file.starts_with("domain/") || file == "card.rs") {
            continue;
        }
        let named: Vec<String> = named_modules(&code)
            .into_iter()
            .filter(|m| !["domain", "card"].contains(&m.as_str()))
            .collect();
        assert!(named.is_empty(), "{file} names {named:?}");
        for c in forbidden_crates {
            assert!(!code.contains(c), "{file} uses {c}");
        }
    }
}

#[test]
fn the_application_and_persistence_never_name_the_edges() {
    for (file, code) in sources() {
        let module = module_of(&file);
        if ![
            "app",
            "error",
            "store",
            "records",
            "residency",
            "domain",
            "card",
        ]
        .contains(&module.as_str())
        {
            continue;
        }
        let named = named_modules(&code);
        for edge in ["http", "receiver"] {
            assert!(!named.contains(edge), "{file} names crate::{edge}");
        }
    }
}

#[test]
fn top_level_modules_do_not_use_each_other_in_cycles() {
    let mut uses: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (file, code) in sources() {
        let module = module_of(&file);
        if module == "lib" || module == "main" {
            continue;
        }
        for named in named_modules(&code) {
            if named != module {
                uses.entry(module.clone()).or_default().insert(named);
            }
        }
    }
    let mut cycles = BTreeSet::new();
    for (a, targets) in &uses {
        for b in targets {
            if a < b && uses.get(b).is_some_and(|t| t.contains(a)) {
                cycles.insert((a.clone(), b.clone()));
            }
        }
    }
    assert!(cycles.is_empty(), "modules using each other: {cycles:?}");
}

#[test]
fn every_module_uses_only_its_own_layer_and_inner_ones() {
    let mut outward = Vec::new();
    for (file, code) in sources() {
        let module = module_of(&file);
        if module == "lib" || module == "main" {
            continue;
        }
        let Some(own) = layer_of(&module) else {
            panic!("{file}: the module {module} has no layer in LAYERS");
        };
        for named in named_modules(&code) {
            match layer_of(&named) {
                Some(layer) if layer > own => {
                    outward.push(format!("{file} ({module}) uses {named}"))
                }
                _ => {}
            }
        }
    }
    assert!(outward.is_empty(), "uses of an outer layer: {outward:#?}");
}

#[test]
fn the_reader_sees_groups_and_paths() {
    let named = named_modules("use crate::{app::Core, error};\nlet x = crate::store::Kind::A;");
    assert_eq!(
        named,
        ["app", "error", "store"]
            .into_iter()
            .map(str::to_owned)
            .collect()
    );
}
