#!/usr/bin/env bash
# End-to-end tests of `skel lsp` (docs/lsp.md, "How it is tested"):
#   1. tests/lsp/test_skel_lsp.py: the real binary over stdio, driven by pytest-lsp;
#   2. tests/lsp/nvim_test.sh: the documented Neovim snippet in a headless Neovim, when `nvim`
#      is installed (skipped, and said so, when it is not).
# The Python packages (tests/lsp/requirements.txt, all pinned) go into a virtual environment at
# target/lsp-venv, made once and made again when the requirements change.
# SKEL_BIN: the skel binary to test; unset, `cargo build --locked` builds target/debug/skel.
# Exit status: 0 when everything ran passed, 1 otherwise.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

if ! command -v python3 >/dev/null 2>&1; then
  echo "tests/lsp/run.sh: python3 is missing: the LSP tests need Python 3.10 or newer with venv" \
    "(Debian: apt-get install python3 python3-venv)" >&2
  exit 1
fi
if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
  echo "tests/lsp/run.sh: $(python3 --version 2>&1) is too old: the LSP tests need Python 3.10 or newer" >&2
  exit 1
fi

# --- the virtual environment
venv=$root/target/lsp-venv
req=$root/tests/lsp/requirements.txt
if [[ ! -x $venv/bin/python ]] || ! cmp -s "$req" "$venv/requirements.txt"; then
  echo "tests/lsp/run.sh: making $venv"
  rm -rf "$venv"
  mkdir -p "$root/target"
  if ! python3 -m venv "$venv"; then
    echo "tests/lsp/run.sh: \`python3 -m venv\` failed (Debian: apt-get install python3-venv)" >&2
    exit 1
  fi
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
    --retries 5 --timeout 60 -r "$req"
  cp "$req" "$venv/requirements.txt" # the stamp: these requirements are installed
fi

# --- the binary
if [[ -z ${SKEL_BIN:-} ]]; then
  echo "tests/lsp/run.sh: cargo build --locked"
  cargo build --locked
  SKEL_BIN=${CARGO_TARGET_DIR:-$root/target}/debug/skel
fi
[[ $SKEL_BIN == /* ]] || SKEL_BIN=$root/$SKEL_BIN
export SKEL_BIN
echo "tests/lsp/run.sh: testing $SKEL_BIN"

# --- the tests
status=0
# No __pycache__ or .pytest_cache in the work tree; each test fails after 60 s (pytest.ini).
PYTHONDONTWRITEBYTECODE=1 "$venv/bin/python" -m pytest "$root/tests/lsp" -c "$root/tests/lsp/pytest.ini" \
  --rootdir "$root/tests/lsp" --timeout 60 || status=1

if command -v nvim >/dev/null 2>&1; then
  bash "$root/tests/lsp/nvim_test.sh" || status=1
else
  echo "tests/lsp/run.sh: nvim is not installed: skipped tests/lsp/nvim_test.sh"
fi

if [[ $status != 0 ]]; then
  echo "tests/lsp/run.sh: FAILED" >&2
fi
exit $status
