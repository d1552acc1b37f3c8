"""Every package answers ``python -m <package> --help``."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize("package", ["diffusion", "separable", "deep", "figures", "benchmarks"])
def test_help(package):
    out = subprocess.run(
        [sys.executable, "-m", package, "--help"], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert f"python -m {package}" in out.stdout
