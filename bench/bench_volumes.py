"""Volumes and many channels: this project's mixture beside scikit-learn's, in one run.

    python bench/bench_volumes.py             # 10 M grey floats, 10 M 12-bit, 4 channels 2 M values
    python bench/bench_volumes.py --voxels 2000000

Each case is a synthetic volume of three classes with Gaussian noise (known
truth), segmented at k = 3 by ``gmmseg.segment`` and by scikit-learn's
``GaussianMixture`` (full covariances, k-means initialisation, tol 1e-4
per sample as ours, at most 100 iterations, fitted on every voxel).
Printed: seconds, peak resident MB of each (measured in a fresh process
apiece), distinct values, and the adjusted Rand index against the truth.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

CASES = {"float32 grey": ("float", 1), "12-bit grey": ("u12", 1), "12-bit, 4 channels": ("u12", 4)}


def make_volume(kind, channels, voxels, seed=0):
    """A (z, 256, 256, c) volume of three slabs of classes, and its truth."""
    z = max(3, voxels // (256 * 256 * channels))
    truth = (np.arange(z)[:, None, None] * 3 // z + np.zeros((1, 256, 256), int))
    rng = np.random.default_rng(seed)
    if kind == "float":
        volume = np.array([1.0, 2.0, 3.5])[truth][..., None] + rng.normal(
            0, 0.3, (*truth.shape, channels))
        return volume.astype(np.float32), truth
    volume = np.array([800, 2000, 3500])[truth][..., None] + rng.normal(
        0, 300, (*truth.shape, channels))
    return np.clip(volume, 0, 4095).astype(np.uint16), truth


def run_one(method, kind, channels, voxels):
    """One fit in this process: a JSON line of seconds, peak MB, ARI."""
    from sklearn.metrics import adjusted_rand_score

    volume, truth = make_volume(kind, channels, voxels)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    if method == "gmmseg":
        import gmmseg

        result = gmmseg.segment(volume, 3, channel_axis=-1, progress=False)
        labels, n_values = result.labels, result.n_colours
    else:
        from sklearn.mixture import GaussianMixture

        pixels = volume.reshape(-1, channels).astype(np.float64)
        model = GaussianMixture(3, tol=1e-4, max_iter=100, random_state=0)
        labels, n_values = model.fit_predict(pixels), None
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    step = max(1, truth.size // 2_000_000)
    print(json.dumps({"voxels": truth.size, "seconds": seconds, "peak_mb": peak / 1024,
                      "above_input_mb": (peak - before) / 1024, "values": n_values,
                      "ari": adjusted_rand_score(truth.ravel()[::step],
                                                 np.ravel(labels)[::step])}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--voxels", type=int, default=10_000_000)
    parser.add_argument("--one", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        method, kind, channels = args.one
        run_one(method, kind, int(channels), args.voxels)
        return
    print(f"{args.voxels:,} values a case, k = 3\n")
    print("| case | method | seconds | peak MB | distinct values | ARI |")
    print("|---|---|---:|---:|---:|---:|")
    for name, (kind, channels) in CASES.items():
        voxels = args.voxels if channels == 1 else args.voxels // 5
        for method in ("gmmseg", "sklearn"):
            out = subprocess.run([sys.executable, __file__, "--voxels", str(voxels), "--one",
                                  method, kind, str(channels)], capture_output=True, text=True,
                                 check=True).stdout
            row = json.loads(out.strip().splitlines()[-1])
            values = "" if row["values"] is None else f"{row['values']:,}"
            print(f"| {name}, {row['voxels']:,} voxels | {method} | {row['seconds']:.1f} | "
                  f"{row['peak_mb']:.0f} | {values} | {row['ari']:.3f} |", flush=True)


if __name__ == "__main__":
    main()
