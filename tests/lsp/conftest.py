"""Where the `skel` binary under test is: $SKEL_BIN, else target/debug/skel (relative paths
are taken from the repository's root). The run stops at once, with a clear message, when it
is not there."""

import os
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]


def skel_bin() -> pathlib.Path:
    path = pathlib.Path(os.environ.get("SKEL_BIN") or "target/debug/skel")
    return path if path.is_absolute() else REPO / path


def pytest_sessionstart(session):
    path = skel_bin()
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.exit(
            f"no skel binary at {path}: build it (`cargo build`) or set SKEL_BIN", returncode=1
        )


def pytest_report_header(config):
    return f"skel under test: {skel_bin()}"
