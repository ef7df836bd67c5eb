//! Every `§` reference in the repository resolves: a citation of `docs/device-api.md §N.M`
//! or `docs/domain.md §N.M` – in code, fixtures, reports and docs – names a heading that
//! exists in that document, so a reader (or a customer holding a conformance report) can
//! always look it up.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// The section numbers of a document's headings (`## 3. Objects` → `3`, `### 3.9 …` → `3.9`).
fn sections(doc: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(doc).unwrap_or_else(|e| panic!("{}: {e}", doc.display()));
    text.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix('#')?.trim_start_matches('#').trim_start();
            let number: String = rest
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.')
                .collect();
            let number = number.trim_end_matches('.');
            (!number.is_empty()).then(|| number.to_owned())
        })
        .collect()
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("dir").flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || name == "target" || name == "node_modules" {
            continue;
        }
        if path.is_dir() {
            files(&path, out);
        } else if ["rs", "md", "json", "py", "toml", "sh", "html"]
            .iter()
            .any(|ext| name.ends_with(&format!(".{ext}")))
        {
            out.push(path);
        }
    }
}

/// Every `(document, section)` cited in `text`.
fn citations(text: &str) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    for doc in ["docs/device-api.md", "docs/domain.md"] {
        let mut rest = text;
        while let Some(i) = rest.find(doc) {
            rest = &rest[i + doc.len()..];
            let after = rest.trim_start_matches(' ');
            let Some(number) = after.strip_prefix('§') else {
                continue;
            };
            let number: String = number
                .trim_start()
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.')
                .collect();
            let number = number.trim_end_matches('.');
            if !number.is_empty() {
                out.push((doc, number.to_owned()));
            }
        }
    }
    out
}

#[test]
fn every_section_reference_names_a_heading_of_the_document() {
    let root = root();
    let known = [
        (
            "docs/device-api.md",
            sections(&root.join("docs/device-api.md")),
        ),
        ("docs/domain.md", sections(&root.join("docs/domain.md"))),
    ];
    let mut all = Vec::new();
    files(&root, &mut all);
    let mut checked = 0;
    let mut dangling = Vec::new();
    for path in all {
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        for (doc, number) in citations(&text) {
            checked += 1;
            let headings = &known.iter().find(|(d, _)| *d == doc).expect("known").1;
            if !headings.contains(&number) {
                dangling.push(format!("{}: {doc} §{number}", path.display()));
            }
        }
    }
    assert!(
        checked > 100,
        "the repository cites its documents ({checked} found)"
    );
    assert!(
        dangling.is_empty(),
        "references to missing sections: {dangling:#?}"
    );
}

#[test]
fn citations_are_read_with_their_section_numbers() {
    assert_eq!(
        citations("see docs/device-api.md §3.9, and docs/domain.md §8.1 rule 2; docs/domain.md"),
        vec![
            ("docs/device-api.md", "3.9".to_owned()),
            ("docs/domain.md", "8.1".to_owned())
        ]
    );
}

/// The repository's own documents any text may name.
const DOCUMENTS: [&str; 8] = [
    "README.md",
    "ARCHITECTURE.md",
    "BENCHMARKS.md",
    "RELIABILITY.md",
    "CONTRIBUTING.md",
    "fixtures/README.md",
    "docs/device-api.md",
    "docs/domain.md",
];

#[test]
fn every_named_document_is_in_the_repository_and_nothing_cites_what_is_not() {
    let root = root();
    for doc in DOCUMENTS {
        assert!(root.join(doc).is_file(), "{doc} is missing");
    }
    // Names of documents that live outside the repository, and pointers to a tracker users
    // do not have.
    let outside = [
        "DESIGN.md",
        "style.md",
        "terminal-api.md",
        "/work/",
        "the tracker",
    ];
    let mut all = Vec::new();
    files(&root, &mut all);
    let mut found = Vec::new();
    for path in all {
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        if path.ends_with("tests/it/doc_references.rs") {
            continue;
        }
        for needle in outside {
            if text.contains(needle) {
                found.push(format!("{}: {needle}", path.display()));
            }
        }
        // Issue numbers of a tracker: "issue 8", "(issue 9, …)".
        if text
            .match_indices("issue ")
            .any(|(i, _)| text[i + 6..].starts_with(|c: char| c.is_ascii_digit()))
        {
            found.push(format!("{}: an issue number", path.display()));
        }
        // `domain.md` only as the repository's `docs/domain.md` (inside `docs/`, relative).
        let bare = text.matches("domain.md").count();
        let ours = text.matches("docs/domain.md").count();
        if bare > ours && !path.starts_with(root.join("docs")) {
            found.push(format!("{}: domain.md outside docs/", path.display()));
        }
    }
    assert!(
        found.is_empty(),
        "references to what users do not have: {found:#?}"
    );
}
