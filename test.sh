#!/usr/bin/env bash
# The project's test command (README): formatting, lints, every test including the SimKube
# conformance corpus and the docs' examples. CI never writes snapshots.
set -euo pipefail
cd "$(dirname "$0")"
export INSTA_UPDATE=no CI=true
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# tests/object_store.rs starts a local S3 server (moto, from PyPI, pinned in
# tests/object_store/requirements.txt): it installs it itself into target/object-store-venv
# (python3 with venv, as for the LSP tests), or says on stderr why it skipped.
cargo test --workspace --locked
# `skel lsp` end to end (tests/lsp/): a real LSP client over stdio, and Neovim when installed;
# on the binary the cargo tests just built (a `cargo build` would rebuild it with other features).
SKEL_BIN="${CARGO_TARGET_DIR:-target}/debug/skel" tests/lsp/run.sh
# The VS Code extension (editors/vscode/): npm ci, grammar tests, its tests against the same
# binary, and the .vsix; skipped with a message when node or npm is missing.
SKEL_BIN="${CARGO_TARGET_DIR:-target}/debug/skel" editors/vscode/test.sh
