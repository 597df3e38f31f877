//! The committed proofs signed by the chains' own libraries
//! (`interop/run --write` regenerates them; `.ci/run` signs and checks
//! fresh ones too): each accepted as signed, refused once tampered with.

use mero_chains::interop::Fixtures;

#[test]
fn proofs_signed_by_the_chains_libraries() {
    let text = include_str!("fixtures/proofs.json");
    let fixtures: Fixtures = match serde_json::from_str(text) {
        Ok(f) => f,
        Err(e) => panic!("fixtures: {e}"),
    };
    let mut failures = Vec::new();
    let mut count = 0;
    for case in &fixtures.cases {
        for (name, result) in case.checks() {
            count += 1;
            if let Err(e) = result {
                failures.push(format!("{name}: {e}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Every chain, both outcomes and the tampering: a shrunken file would
    // pass vacuously.
    for chain in ["near", "ethereum", "icp", "stellar"] {
        for expect in ["accept", "reject"] {
            assert!(
                fixtures
                    .cases
                    .iter()
                    .any(|c| c.chain == chain && c.expect == expect),
                "no {expect} case for {chain}"
            );
        }
    }
    assert!(count > 80, "only {count} checks");
}
