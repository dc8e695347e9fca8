//! The compile errors of `#[tasklets::task]`, pinned: each misuse gets a message that says what to write
//! instead.

#[test]
fn task_macro_misuse_is_a_clear_compile_error() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
}
