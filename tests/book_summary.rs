//! Every chapter listed in `book/src/SUMMARY.md` exists and is compiled as doc-tests by `src/book.rs`,
//! so a chapter cannot be added to the book without its examples being tested.

use std::fs;
use std::path::Path;

/// The `.md` targets of the links in `SUMMARY.md`, in order.
fn chapters(summary: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = summary;
    while let Some(start) = rest.find("](") {
        rest = &rest[start + 2..];
        let Some(end) = rest.find(')') else { break };
        let target = rest[..end].trim();
        rest = &rest[end + 1..];
        let target = target.split('#').next().unwrap_or("");
        if target.ends_with(".md") {
            out.push(target.to_owned());
        }
    }
    out
}

#[test]
fn every_chapter_exists_and_is_doc_tested() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let summary = fs::read_to_string(root.join("book/src/SUMMARY.md")).expect("read SUMMARY.md");
    let book_rs = fs::read_to_string(root.join("src/book.rs")).expect("read src/book.rs");

    let chapters = chapters(&summary);
    assert!(!chapters.is_empty(), "SUMMARY.md links no chapter");
    for chapter in &chapters {
        assert!(
            root.join("book/src").join(chapter).is_file(),
            "SUMMARY.md links {chapter}, which does not exist in book/src"
        );
        let include = format!("include_str!(\"../book/src/{chapter}\")");
        assert!(
            book_rs.contains(&include),
            "{chapter} is in SUMMARY.md but src/book.rs has no `{include}`: its examples would go untested"
        );
    }
}

#[test]
fn chapter_links_are_parsed() {
    let summary = "# Summary\n\n[Intro](intro.md)\n\n- [A](a.md)\n  - [B](sub/b.md#part)\n- [Web](https://x.org)\n";
    assert_eq!(chapters(summary), ["intro.md", "a.md", "sub/b.md"]);
}
