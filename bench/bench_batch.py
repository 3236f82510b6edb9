"""Many images (issue 12): throughput and memory of a batch, side by side in one run.

    python bench/bench_batch.py                 # ~6 min on 2 cores
    python bench/bench_batch.py --images 20 --sklearn-images 2 --json batch.json
    python bench/bench_batch.py --dask-only     # --jobs 1, --jobs 2, nanny, --no-nanny
    python bench/bench_batch.py --dask-only --images 30 --rounds 5   # medians of 5

1. Makes ``--images`` photos of 3 MP (2000x1350) from scikit-image's sample
   photos (resized, a different noise seed each), in bench/data/batch/.
2. Times, start to exit, the command line a user runs on the folder at k = 4:
   ``--jobs 1`` (in one process), ``--jobs 2`` (two worker processes) and
   ``--dask`` against a scheduler and 2 workers of 1 thread started from the
   ``dask`` command line in a folder of their own without ``PYTHONPATH``
   (the CLI ships the code), started (and warmed by one task) before the
   clock starts, as a running cluster would be: once with Dask's default
   nanny workers, once with ``dask worker --no-nanny`` (``dask_cluster``).
   Images per second, and the peak memory of the whole process tree (the
   sum of the resident sizes of the CLI and its workers,
   sampled every 0.1 s; for ``--dask``, the CLI and the cluster's processes).
3. Times scikit-learn's pipeline (``sklearn_pipeline.run``: KMeans on every
   pixel, then ``GaussianMixture``) in a loop in one process over the first
   ``--sklearn-images`` photos (it takes ~20 s an image, so the loop's
   images per second come from a few).
4. Peak memory of one 48 MP photo (8000x6000) at k = 8 through the CLI, and of
   ``--jobs 2`` over the first 10 photos against all of them: memory must not
   grow with the number of images.

Prints a Markdown table and the targets; ``--json`` saves the figures.
"""

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np
from PIL import Image

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
DATA = os.path.join(BENCH, "data", "batch")
sys.path.insert(0, ROOT)
sys.path.insert(0, BENCH)

SOURCES = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png",
           "motorcycle_right.png", "hubble_deep_field.jpg", "immunohistochemistry.png",
           "retina.jpg", "logo.png")
SIZE = (2000, 1350)
TARGETS = {"jobs2_over_jobs1": (1.7, True), "jobs1_over_sklearn": (30.0, True),
           "dask_over_jobs2": (0.85, True), "nanny_over_no_nanny": (0.85, True)}


def make_photos(n):
    """``n`` 3 MP JPEG photos in DATA, built if missing; their folder."""
    import skimage

    os.makedirs(DATA, exist_ok=True)
    data = os.path.join(os.path.dirname(skimage.__file__), "data")
    sources = [name for name in SOURCES if os.path.exists(os.path.join(data, name))]
    for i in range(n):
        path = os.path.join(DATA, f"photo{i + 1}.jpg")
        if os.path.exists(path):
            continue
        with Image.open(os.path.join(data, sources[i % len(sources)])) as img:
            resized = np.asarray(img.convert("RGB").resize(SIZE, Image.LANCZOS), np.float64)
        noisy = resized + np.random.default_rng(i).normal(0, 2.0, resized.shape)
        Image.fromarray(np.clip(np.rint(noisy), 0, 255).astype(np.uint8)).save(
            path, format="JPEG", quality=90)
    names = sorted(os.listdir(DATA), key=lambda name: int(name[5:-4]))[:n]
    return names


def tree_rss(pid):
    """Resident bytes of a process and all its descendants, from /proc."""
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        try:
            with open(f"/proc/{current}/statm") as f:
                total += int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as f:
                    stack += [int(child) for child in f.read().split()]
        except (OSError, ValueError):
            continue
    return total


def run_sampled(argv, extra_pids=()):
    """Run a command; return (wall seconds, peak MB of its process tree plus extra_pids)."""
    peak = [0]
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], tree_rss(proc.pid) + sum(tree_rss(p) for p in extra_pids))
            done.wait(0.1)

    sampler = threading.Thread(target=sample)
    sampler.start()
    _, err = proc.communicate()
    seconds = time.perf_counter() - start
    done.set()
    sampler.join()
    if proc.returncode != 0:
        sys.exit(f"bench: {' '.join(argv)} failed ({proc.returncode}):\n{err}")
    return seconds, peak[0] / 1e6


def cli(*args):
    return [sys.executable, os.path.join(ROOT, "segmentation_GMM.py"), *map(str, args)]


def batch(folder, out, *flags, extra_pids=()):
    shutil.rmtree(out, ignore_errors=True)
    return run_sampled(cli("--image", folder, "--k", 4, "--out", out, *flags),
                       extra_pids=extra_pids)


def sklearn_loop(paths):
    """Seconds for scikit-learn's pipeline over ``paths``, one process (imports excluded)."""
    import sklearn_pipeline

    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        for path in paths:
            sklearn_pipeline.run(path, 4, out)
        return time.perf_counter() - start


def dask_cluster(folder, nanny):
    """A scheduler and 2 workers of 1 thread from the ``dask`` command line, as users start them.

    Started in ``folder``, without ``PYTHONPATH`` (the project's code reaches
    them as the CLI ships it, ``gmmseg.cluster``), warmed by one import each.
    ``nanny=True`` gives Dask's default workers, whose nanny sets
    ``MALLOC_TRIM_THRESHOLD_`` (``gmmseg.memory.tune_allocator``);
    ``nanny=False``, ``dask worker --no-nanny``. Returns the scheduler's
    address, the processes, and the pids whose memory counts.
    """
    from dask.distributed import Client

    from gmmseg import cluster

    os.makedirs(folder, exist_ok=True)
    scheduler_file = os.path.join(folder, "scheduler.json")
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    dask = [os.path.join(os.path.dirname(sys.executable), "dask")]
    quiet = {"cwd": folder, "env": env, "stdout": subprocess.DEVNULL,
             "stderr": subprocess.DEVNULL}
    procs = [subprocess.Popen([*dask, "scheduler", "--scheduler-file", scheduler_file,
                               "--port", "0", "--no-dashboard"], **quiet)]
    while not os.path.exists(scheduler_file):
        time.sleep(0.1)
    procs += [subprocess.Popen([*dask, "worker", "--scheduler-file", scheduler_file,
                                "--nthreads", "1", "--no-dashboard",
                                *([] if nanny else ["--no-nanny"])], **quiet)
              for _ in range(2)]
    with Client(scheduler_file=scheduler_file, timeout="60s") as client:
        client.wait_for_workers(2, timeout=60)
        cluster.ship_code(client)
        client.run(lambda: __import__("gmmseg.pipeline"))
        address = client.scheduler.address
    return address, procs


def stop_cluster(address, procs):
    """Stop a cluster by its own means (``Client.shutdown``), as docs/batch.md does."""
    from dask.distributed import Client

    with Client(address, timeout="30s") as client:
        client.shutdown()
    for proc in procs:
        proc.wait(timeout=60)


DASK_RUNS = (("dask, nanny workers (default)", True), ("dask, --no-nanny workers", False))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=50)
    parser.add_argument("--sklearn-images", type=int, default=3)
    parser.add_argument("--json")
    parser.add_argument("--rounds", type=int, default=1,
                        help="interleaved rounds of the four batch runs; medians reported")
    parser.add_argument("--dask-only", action="store_true",
                        help="only --jobs 1, --jobs 2 and the two Dask clusters")
    args = parser.parse_args()
    names = make_photos(args.images)
    n = len(names)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        # Interleaved rounds: the machine's speed drifts by 10 to 20 % within minutes here,
        # more than the differences measured, so each run's median over the rounds is kept.
        rounds = {label: [] for label in ("jobs 1", "jobs 2", *(lbl for lbl, _ in DASK_RUNS))}
        for _ in range(args.rounds):
            for label, flags in (("jobs 1", ["--jobs", 1]), ("jobs 2", ["--jobs", 2])):
                rounds[label].append(batch(DATA, os.path.join(tmp, "out"), *flags))
                print(f"{label}: {rounds[label][-1][0]:.1f} s", file=sys.stderr)
            for label, nanny in DASK_RUNS:
                address, procs = dask_cluster(os.path.join(tmp, "cluster"), nanny)
                try:
                    rounds[label].append(batch(DATA, os.path.join(tmp, "out"), "--dask",
                                               address, extra_pids=[p.pid for p in procs]))
                finally:
                    stop_cluster(address, procs)
                print(f"{label}: {rounds[label][-1][0]:.1f} s", file=sys.stderr)
        for label, runs in rounds.items():
            seconds = float(np.median([s for s, _ in runs]))
            results[label] = {"seconds": seconds, "images_per_s": n / seconds,
                              "peak_mb": max(peak for _, peak in runs),
                              "rounds": [round(s, 2) for s, _ in runs]}
        if args.dask_only:
            report(results, n, args.json)
            return
        ten = os.path.join(tmp, "ten")
        os.makedirs(ten)
        for name in names[:10]:
            os.symlink(os.path.join(DATA, name), os.path.join(ten, name))
        _, peak_ten = batch(ten, os.path.join(tmp, "out"), "--jobs", 2)
        results["jobs 2, 10 images"] = {"peak_mb": peak_ten}
        big = os.path.join(BENCH, "data", "motorcycle_48mp.jpg")
        if not os.path.exists(big):
            import bench_speed

            bench_speed.make_photo(big, (8000, 6000), 7)
        seconds, peak = run_sampled(cli("--image", big, "--k", 8, "--out",
                                        os.path.join(tmp, "big"), "--overwrite"))
        results["48 MP, k = 8"] = {"seconds": seconds, "peak_mb": peak,
                                   "bytes_per_pixel": peak * 1e6 / (8000 * 6000)}
    paths = [os.path.join(DATA, name) for name in names[:args.sklearn_images]]
    seconds = sklearn_loop(paths)
    results["sklearn loop"] = {"seconds": seconds, "images": len(paths),
                               "images_per_s": len(paths) / seconds}
    report(results, n, args.json)


def report(results, n, json_path=None):
    """Print the Markdown table of what was measured, the ratios and their targets."""
    def speed(label):
        return results[label]["images_per_s"] if label in results else float("nan")

    nanny, no_nanny = (label for label, _ in DASK_RUNS)
    ratios = {"jobs2_over_jobs1": speed("jobs 2") / speed("jobs 1"),
              "jobs1_over_sklearn": speed("jobs 1") / speed("sklearn loop"),
              "dask_over_jobs2": speed(nanny) / speed("jobs 2"),
              "nanny_over_no_nanny": speed(nanny) / speed(no_nanny)}
    print(f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}; {n} photos of {SIZE[0]}x{SIZE[1]}, k = 4.\n")
    print("| run | images | seconds (median) | images/s | peak memory (MB) | rounds (s) |")
    print("|---|---:|---:|---:|---:|---|")
    for label in ("jobs 1", "jobs 2", nanny, no_nanny):
        r = results[label]
        name = f"`--{label}`" if label.startswith("jobs") else (
            "`--dask`, `dask` CLI cluster of 2 workers" + label[4:])
        print(f"| {name} | {n} | {r['seconds']:.1f} | {r['images_per_s']:.2f} | "
              f"{r['peak_mb']:.0f} | {', '.join(f'{s:.1f}' for s in r['rounds'])} |")
    if "sklearn loop" in results:
        r = results["sklearn loop"]
        print(f"| scikit-learn loop, one process | {r['images']} | {r['seconds']:.1f} | "
              f"{r['images_per_s']:.3f} | | |")
        peak = results["jobs 2, 10 images"]["peak_mb"]
        print(f"| `--jobs 2`, first 10 images | 10 | | | {peak:.0f} | |")
        r = results["48 MP, k = 8"]
        print(f"| one 48 MP photo, k = 8 | 1 | {r['seconds']:.1f} | | {r['peak_mb']:.0f} "
              f"({r['bytes_per_pixel']:.1f} bytes/pixel) | |")
    print()
    for name, value in ratios.items():
        if np.isnan(value):
            continue
        goal, at_least = TARGETS[name]
        met = value >= goal if at_least else value <= goal
        print(f"- {name}: {value:.2f} (target {'>=' if at_least else '<='} {goal}: "
              f"{'met' if met else 'NOT met'})")
    if json_path:
        with open(json_path, "w") as f:
            json.dump({"results": results, "ratios": ratios, "date": time.strftime("%Y-%m-%d"),
                       "machine": platform.processor() or platform.machine(),
                       "cores": os.cpu_count()}, f, indent=1)


if __name__ == "__main__":
    main()
