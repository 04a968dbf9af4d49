#!/usr/bin/env bash
# The local S3-compatible server of tests/object_store.rs: moto in server mode, from PyPI
# (tests/object_store/requirements.txt, pinned), in a virtual environment at VENV (made once,
# and again when the requirements change). tests/object_store.rs runs this itself; .ci/run and
# ./test.sh need nothing else than python3 with venv and pip.
# Exit status: 0 when VENV/bin/moto_server and VENV/bin/python (with boto3) are ready; else 1,
# with the reason on stderr.
set -euo pipefail
venv="${1:?usage: tests/object_store/setup.sh VENV}"
req="$(cd "$(dirname "$0")" && pwd)/requirements.txt"
if [[ -x $venv/bin/moto_server ]] && cmp -s "$req" "$venv/requirements.txt"; then
  exit 0
fi
if ! command -v python3 >/dev/null 2>&1; then
  echo "python3 is missing (Debian: apt-get install python3 python3-venv)" >&2
  exit 1
fi
rm -rf "$venv"
mkdir -p "$(dirname "$venv")"
log=$(mktemp)
if ! python3 -m venv "$venv" >"$log" 2>&1; then
  echo "python3 -m venv failed (Debian: apt-get install python3-venv):" >&2
  tail -n 5 "$log" >&2
  rm -f "$log"
  exit 1
fi
if ! timeout 600 "$venv/bin/pip" install --disable-pip-version-check --quiet -r "$req" >"$log" 2>&1; then
  echo "pip could not install $req:" >&2
  tail -n 5 "$log" >&2
  rm -f "$log"
  rm -rf "$venv"
  exit 1
fi
rm -f "$log"
cp "$req" "$venv/requirements.txt"
