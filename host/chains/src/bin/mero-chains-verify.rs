//! Checks a fixture file of proofs signed by the chains' own libraries
//! (written by `host/chains/interop/gen.py`): each must be accepted as
//! signed and refused once tampered with. Prints one line per check and
//! `N passed, N failed`; exits 1 on any failure.

use std::process::ExitCode;

use mero_chains::interop::Fixtures;

fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: mero-chains-verify <fixtures.json>");
        return ExitCode::from(2);
    };
    let fixtures: Fixtures = match std::fs::read_to_string(&path)
        .map_err(|e| e.to_string())
        .and_then(|text| serde_json::from_str(&text).map_err(|e| e.to_string()))
    {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{path}: {e}");
            return ExitCode::from(2);
        }
    };
    println!("signed by {}", fixtures.generated_by);
    let (mut passed, mut failed) = (0, 0);
    for case in &fixtures.cases {
        for (name, result) in case.checks() {
            match result {
                Ok(()) => {
                    passed += 1;
                    println!("ok   {name}");
                }
                Err(e) => {
                    failed += 1;
                    println!("FAIL {name}: {e}");
                }
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    if failed == 0 && passed > 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
