//! End-to-end tests and the benchmark tools that drive real `merod`
//! processes on 127.0.0.1: the suites are in `tests/`, the tools
//! (`mero-load`, `mero-repl-bench`, `mero-events-bench`) in `src/bin/`.
//! This crate owns only those scenarios; the harness they share
//! (`TestNode`, waiting for equal roots, polling) is `mero_testkit::node`
//! and `mero_testkit::poll`.
