//! Helpers shared by the end-to-end tests in this folder (real peers over loopback).
//!
//! Each test file is declared as a `[[test]]` in `tests/Cargo.toml`.
