"""Shared helpers for the tests: where the project is, and how to run its CLI."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
SCRIPT = os.path.join(ROOT, "segmentation_GMM.py")


def run_cli(*args, cwd):
    """Run the command line as a user would, with no display; return the process."""
    env = dict(os.environ)
    env.pop("DISPLAY", None)
    env.pop("WAYLAND_DISPLAY", None)
    env.pop("MPLBACKEND", None)  # no backend chosen for us: the code must not need one
    return subprocess.run([sys.executable, SCRIPT, *map(str, args)], check=False, cwd=cwd,
                          env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture
def cli(tmp_path):
    def run(*args):
        return run_cli(*args, cwd=tmp_path)
    return run
