#!/usr/bin/env bash
# The project's test command (README): formatting, lints, every test including the SimKube
# conformance corpus and the docs' examples. CI never writes snapshots.
set -euo pipefail
cd "$(dirname "$0")"
export INSTA_UPDATE=no CI=true
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
