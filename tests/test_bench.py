"""The benchmarks' own pieces that a figure depends on: the floor writes what the CLI writes."""

import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT
from PIL import Image

FLOOR = os.path.join(ROOT, "bench", "floor.py")


@pytest.mark.parametrize("k", [2, 4, 12])
def test_the_floor_writes_a_label_map_of_k_values(tmp_path, k):
    photo = os.path.join(ROOT, "images", "coffee.png")
    done = subprocess.run([sys.executable, FLOOR, "--image", photo, "--out", str(tmp_path),
                           "--k", str(k)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    with Image.open(photo) as img, Image.open(tmp_path / "coffee_floor.png") as floor:
        assert floor.mode == "L" and floor.size == img.size
        first = np.asarray(img.convert("RGB"))[:, :, 0]
        labels = np.asarray(floor)
    assert np.array_equal(np.unique(labels), np.arange(k))
    # bands of the first channel: a brighter pixel never gets a lower label
    order = np.argsort(first.ravel(), kind="stable")
    assert np.all(np.diff(labels.ravel()[order].astype(int)) >= 0)
    # of about equal pixel counts, as far as ties of one 8-bit value allow
    share = np.bincount(labels.ravel(), minlength=k) / labels.size
    assert share.max() < 2 / k
