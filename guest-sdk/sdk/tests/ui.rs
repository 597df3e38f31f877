//! The compile errors of the `#[app::*]` macros, pinned. Regenerate the
//! expected output with `TRYBUILD=overwrite cargo test -p mero-sdk --test ui`
//! and review the diff.

#[test]
fn macros() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}
