"""The code stays lint-clean (ruff, as configured in ruff.toml)."""

import shutil
import subprocess
import sys

import pytest
from conftest import ROOT


def test_ruff_is_clean():
    ruff = shutil.which("ruff") or shutil.which("ruff", path=sys.prefix + "/bin")
    if ruff is None:
        pytest.skip("ruff is not installed (pip install -r requirements-dev.txt)")
    done = subprocess.run([ruff, "check", "--no-cache", ROOT], check=False,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
