"""What to do when a test's real dependency is missing: skip locally, fail in CI.

A database, a browser or a system tool that is not there must not turn a check into a skip
that CI reports as green. :func:`unavailable` is called where a test finds out that a
dependency is missing (a fixture, the start of a test); under ``CI=true`` it fails the test
with the reason, elsewhere it skips it. The markers guard in ``tests/conftest.py`` stays as a
second line for skips that come from anywhere else.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import NoReturn

import pytest


def in_ci() -> bool:
    """True when the suite runs in CI (``CI=true``, as ``.ci/run`` sets)."""
    return os.environ.get("CI", "").strip().lower() == "true"


def unavailable(reason: str) -> NoReturn:
    """Skip the current test because ``reason``; in CI, fail it instead."""
    if in_ci():
        pytest.fail(f"required in CI but unavailable: {reason}", pytrace=False)
    pytest.skip(reason)


def ogrinfo(*args: str) -> subprocess.CompletedProcess[str]:
    """Run GDAL's ``ogrinfo`` (the real client GIS users have); unavailable without it."""
    exe = shutil.which("ogrinfo")
    if exe is None:
        unavailable("ogrinfo (Debian package gdal-bin) is not installed")
    return subprocess.run([exe, *args], capture_output=True, text=True, check=True, timeout=60)
