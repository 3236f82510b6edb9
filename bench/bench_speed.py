"""Speed and memory benchmark (issue 3): this project vs scikit-learn vs the floor.

One command, from the repository root::

    pip install -r requirements-bench.txt      # adds scikit-image (photo source)
    python bench/bench_speed.py                # ~10 min on 2 cores; --repeat 1 is quicker
    python bench/bench_speed.py --repeat 1 --no-skip-sklearn-11mp --json bench.json

What it does:

1. Builds two test photos in ``bench/data/`` (only if missing) from the
   ``motorcycle_left.png`` scikit-image ships: resized with Lanczos to 2000x1350
   ("3 MP") and 4000x2700 ("11 MP"), Gaussian noise of sigma 2 added (seeded),
   saved as JPEG quality 90. Nothing is downloaded.
2. Runs, each as a fresh subprocess timed from start to exit, ``--repeat``
   rounds of every run (so a change in the machine's load hits all alike);
   median wall and CPU time, and the child's peak RSS from ``os.wait4``:

   - ``cli``: ``segmentation_GMM.py --image P --k 4 --out TMP`` as a user runs
     it, figure included; its log-likelihood and iterations are read from the
     JSON it writes;
   - ``sklearn``: ``bench/sklearn_pipeline.py`` (KMeans(4, n_init=1) on all
     Z-scored pixels, seeds GaussianMixture(4), defaults, predict, PNG). At
     11 MP it takes minutes and GBs, so it is skipped unless
     ``--no-skip-sklearn-11mp``;
   - ``floor``: ``bench/floor.py`` (same imports, decode the JPEG, write an
     8-bit PNG).

   Both log-likelihoods are the mean per pixel of the final parameters in the
   same space (each channel Z-scored over all pixels), so they compare.
3. Times one EM iteration on 1 M distinct 3-D points, K = 4, in this process
   from the same parameters, through scikit-learn's public API. Its side is
   ``GaussianMixture(max_iter=1, weights_init=..., means_init=...,
   precisions_init=...).fit(points)``, which costs one EM iteration plus one
   more E-step: with all three inits given no k-means or random start runs,
   then one E-step and one M-step, then a final E-step under the updated
   parameters (for labels ``fit`` throws away), plus input validation (a
   finiteness check of the points, a few ms) and that E-step's argmax. So our
   side does the same work: ``GMM.inference`` + ``GMM.update`` +
   ``GMM.inference`` (``weights=None``, on one BLAS thread as ``GMM.fit`` runs
   them). Both updates and both first log-likelihoods are checked to agree.
   The ratio of the two is that of E + M + E, which weighs the E-step a
   little more than one EM iteration (E + M) does.
4. Prints a Markdown table of the runs, the targets of issue 3 with pass/fail,
   and the machine. ``--json PATH`` also saves every figure.

Every run inherits this environment. The BLAS thread count matters a lot for
the (n, 3) @ (3, 3) products of EM on pixels, for both programs: compare with
``OPENBLAS_NUM_THREADS=1 python bench/bench_speed.py``. The machine line shows
the thread pools and the load average; a load above the core count means other
work competed and the wall times are noisy (CPU times less so).
"""

import argparse
import importlib.metadata
import importlib.util
import json
import multiprocessing
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np
from PIL import Image

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
DATA = os.path.join(BENCH, "data")
PHOTOS = {"3mp": (2000, 1350), "11mp": (4000, 2700)}
NOISE_SIGMA = 2.0
K = 4
N_POINTS = 1_000_000

TARGETS = {  # name: (goal, True if the measured value must be at least the goal)
    "speedup_vs_sklearn_3mp": (30.0, True),
    "ll_ours_minus_sklearn_3mp": (-1e-3, True),
    "cli_over_floor_11mp": (3.0, False),
    "memory_ours_over_sklearn_3mp": (0.5, False),
    "em_iteration_ours_over_sklearn": (1.0, False),
}


# --------------------------------------------------------------------------
# Test photos
# --------------------------------------------------------------------------

def source_photo():
    """Path of the motorcycle photo inside the installed scikit-image."""
    spec = importlib.util.find_spec("skimage")
    if spec is None:
        sys.exit("bench: scikit-image is missing: pip install -r requirements-bench.txt")
    return os.path.join(os.path.dirname(spec.origin), "data", "motorcycle_left.png")


def make_photo(path, size, seed):
    """Resize the source photo to ``size`` (w, h), add noise, save as JPEG 90."""
    with Image.open(source_photo()) as img:
        resized = np.asarray(img.convert("RGB").resize(size, Image.LANCZOS), dtype=np.float64)
    noise = np.random.default_rng(seed).normal(0.0, NOISE_SIGMA, resized.shape)
    noisy = np.clip(np.rint(resized + noise), 0, 255).astype(np.uint8)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    Image.fromarray(noisy).save(tmp, format="JPEG", quality=90)
    os.replace(tmp, path)


def photos():
    """Paths of the test photos by name, built if missing.

    They are built in a fresh process: Linux hands a parent's peak resident
    memory on to every child it starts (``ru_maxrss`` survives exec), so
    building an 11 MP photo here would inflate every peak measured after it.
    """
    paths = {name: os.path.join(DATA, f"motorcycle_{name}.jpg") for name in PHOTOS}
    missing = [(paths[name], size, seed) for seed, (name, size) in enumerate(PHOTOS.items())
               if not os.path.exists(paths[name])]
    if missing:
        print(f"building {len(missing)} photo(s) in {DATA} ...", file=sys.stderr)
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            pool.starmap(make_photo, missing)
    return paths


# --------------------------------------------------------------------------
# Subprocess runs: wall time and peak memory
# --------------------------------------------------------------------------

def run_measured(argv):
    """Run a command to completion; return (wall s, CPU s, peak RSS in MB, stdout).

    The wall time spans start to exit, interpreter start-up included. CPU time
    (user + system, all threads) and peak memory (``ru_maxrss``, KiB on Linux)
    are the child's own, as ``wait4`` reports them.
    """
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=err)
        stdout = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.stdout.close()
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            err.seek(0)
            sys.exit(f"bench: {' '.join(argv)} failed ({proc.returncode}):\n"
                     f"{err.read().decode(errors='replace')}")
    cpu = usage.ru_utime + usage.ru_stime
    return seconds, cpu, usage.ru_maxrss / 1024, stdout.decode()


def cli_command(photo, out):
    return [sys.executable, os.path.join(ROOT, "segmentation_GMM.py"),
            "--image", photo, "--k", str(K), "--out", out]


def cli_fit(photo, out, stdout):
    """Log-likelihood per pixel and EM iterations from the JSON the CLI wrote.

    Iterations on the exact colours, plus those of the warm-up on the colour
    histogram if the CLI reports one (e.g. ``"6 + 50 warm-up"``).
    """
    stem = os.path.splitext(os.path.basename(photo))[0]
    with open(os.path.join(out, f"{stem}_k{K}.json")) as f:
        record = json.load(f)
    iterations = str(record["iterations"])
    if record.get("warm_up_iterations"):
        iterations += f" + {record['warm_up_iterations']} warm-up"
    return record["log_likelihood"], iterations


def sklearn_command(photo, out):
    return [sys.executable, os.path.join(BENCH, "sklearn_pipeline.py"),
            "--image", photo, "--k", str(K), "--out", out]


def sklearn_fit(photo, out, stdout):
    record = json.loads(stdout.strip().splitlines()[-1])
    return record["log_likelihood"], str(record["iterations"])


def floor_command(photo, out):
    return [sys.executable, os.path.join(BENCH, "floor.py"), "--image", photo, "--out", out,
            "--k", str(K)]


def no_fit(photo, out, stdout):
    return None, None


TOOLS = {"cli": (cli_command, cli_fit),
         "sklearn": (sklearn_command, sklearn_fit),
         "floor": (floor_command, no_fit)}


def run_once(tool, photo):
    """One run of a tool on a photo: its figures."""
    command, read_fit = TOOLS[tool]
    with tempfile.TemporaryDirectory() as out:
        wall, cpu, peak, stdout = run_measured(command(photo, out))
        log_likelihood, iterations = read_fit(photo, out, stdout)
    return {"seconds": wall, "cpu_seconds": cpu, "peak_mb": peak,
            "log_likelihood": log_likelihood, "iterations": iterations}


def measure(pairs, paths, repeat):
    """Median wall and CPU time, max peak memory and the fit of each pair.

    The runs go in rounds (every pair once, then again), so that a change in
    the machine's load during the benchmark falls on all of them alike.
    """
    rounds = [{} for _ in range(repeat)]
    for i, results in enumerate(rounds):
        for tool, name in pairs:
            print(f"round {i + 1}/{repeat}: {tool} on {name} ...", file=sys.stderr)
            results[(tool, name)] = run_once(tool, paths[name])
    runs = {}
    for pair in pairs:
        each = [r[pair] for r in rounds]
        runs[pair] = {**each[-1],
                      "seconds": statistics.median(r["seconds"] for r in each),
                      "cpu_seconds": statistics.median(r["cpu_seconds"] for r in each),
                      "peak_mb": max(r["peak_mb"] for r in each),
                      "all_seconds": [r["seconds"] for r in each]}
    return runs


def plan(skip_sklearn_11mp):
    """The (tool, photo) pairs to run."""
    pairs = [(tool, name) for name in PHOTOS for tool in TOOLS]
    if skip_sklearn_11mp:
        pairs.remove(("sklearn", "11mp"))
    return pairs


# --------------------------------------------------------------------------
# One EM iteration, in process
# --------------------------------------------------------------------------

def distinct_points(n, seed=0):
    """``n`` distinct 3-D points from a standard normal."""
    points = np.random.default_rng(seed).standard_normal((n, 3))
    assert len(np.unique(points, axis=0)) == n, "duplicate points"
    return points


def start_parameters(points):
    """Shared starting point: K means along the data, identity covariances."""
    order = np.argsort(points[:, 0])
    mus = np.stack([part.mean(axis=0) for part in np.array_split(points[order], K)])
    return mus, np.repeat(np.eye(3)[None], K, axis=0), np.full(K, 1.0 / K)


def ours_iteration(points, mus, covs, priors):
    """Seconds for GMM.inference + GMM.update + GMM.inference (what fit(max_iter=1)
    costs scikit-learn, see sklearn_iteration); the updated parameters and the first
    E-step's mean log-likelihood per point."""
    if ROOT not in sys.path:
        sys.path.insert(0, ROOT)
    from threadpoolctl import threadpool_limits

    from segmentation_GMM import GMM

    gmm = GMM(K, mus, covs, priors)
    start = time.perf_counter()
    # As GMM.fit runs its iterations: on one BLAS thread (see the comment there).
    with threadpool_limits(limits=1, user_api="blas"):
        gamma, log_likelihood = gmm.inference(points)
        gmm.update(points, gamma)
        gmm.inference(points)
    seconds = time.perf_counter() - start
    return seconds, (gmm.mus, gmm.covs, gmm.priors), log_likelihood / len(points)


def sklearn_iteration(points, mus, covs, priors):
    """Seconds for GaussianMixture.fit with max_iter=1 from these parameters; the
    updated parameters and the first E-step's mean log-likelihood per point.

    What that fit runs (``BaseMixture.fit_predict``, scikit-learn 1.9.1): all three
    ``*_init`` are given, so no k-means and no random start (``init_params`` is not
    used; the cheap ``"random_from_data"`` is set in case a version runs it anyway);
    the parameters start at the inits (precisions ``inv(covs)``). Then one E-step
    (its mean log-likelihood becomes ``lower_bound_``), one M-step (``weights_``,
    ``means_``, ``covariances_``) and a final E-step under the new parameters whose
    labels ``fit`` discards: E + M + E. ``max_iter=1`` never counts as converged
    (the first change is from -inf); the ConvergenceWarning is silenced here.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.mixture import GaussianMixture

    gm = GaussianMixture(K, covariance_type="full", max_iter=1, tol=0,
                         weights_init=priors.copy(), means_init=mus.copy(),
                         precisions_init=np.linalg.inv(covs), init_params="random_from_data",
                         random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        start = time.perf_counter()
        gm.fit(points)
        seconds = time.perf_counter() - start
    return seconds, (gm.means_, gm.covariances_, gm.weights_), gm.lower_bound_


def em_iteration(repeat):
    """Median seconds of one EM iteration plus one E-step (E + M + E), ours and
    scikit-learn's; ``e_steps`` says how many E-steps each timing holds."""
    points = distinct_points(N_POINTS)
    start = start_parameters(points)
    result = {}
    for name, step in (("ours", ours_iteration), ("sklearn", sklearn_iteration)):
        runs = [step(points, *start) for _ in range(repeat)]
        result[name] = statistics.median(seconds for seconds, _, _ in runs)
        result[name + "_parameters"] = runs[0][1]
        result[name + "_log_likelihood"] = runs[0][2]
    for a, b in zip(result.pop("ours_parameters"), result.pop("sklearn_parameters"), strict=False):
        assert np.allclose(a, b, rtol=1e-6, atol=1e-9), "the two EM steps disagree"
    assert np.isclose(result.pop("ours_log_likelihood"), result.pop("sklearn_log_likelihood"),
                      rtol=1e-9), "the two E-steps disagree"
    result["e_steps"] = 2
    return result


# --------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------

def ratios(runs, em):
    """The figures issue 3 sets targets on."""
    cli3, sk3 = runs[("cli", "3mp")], runs[("sklearn", "3mp")]
    return {
        "speedup_vs_sklearn_3mp": sk3["seconds"] / cli3["seconds"],
        "ll_ours_minus_sklearn_3mp": cli3["log_likelihood"] - sk3["log_likelihood"],
        "cli_over_floor_11mp": runs[("cli", "11mp")]["seconds"]
        / runs[("floor", "11mp")]["seconds"],
        "memory_ours_over_sklearn_3mp": cli3["peak_mb"] / sk3["peak_mb"],
        "em_iteration_ours_over_sklearn": em["ours"] / em["sklearn"],
    }


def machine():
    """CPU, cores, Python and library versions."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f
                       if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    versions = {name: importlib.metadata.version(name)
                for name in ("numpy", "scipy", "scikit-learn", "pillow", "matplotlib",
                             "tqdm", "scikit-image")}
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "os": platform.platform(), **versions, "thread pools": thread_pools(),
            "load average at start": load_average()}


def load_average():
    """The 1-minute load average: above the core count, other work competed."""
    return f"{os.getloadavg()[0]:.1f}"


def thread_pools():
    """The BLAS and OpenMP pools and their threads, e.g. ``openblas 2``.

    Tall, thin products such as (n, 3) @ (3, 3) are what EM on pixels runs, and
    their speed depends strongly on these (set OPENBLAS_NUM_THREADS to compare).
    """
    import sklearn.cluster  # noqa: F401  (loads scikit-learn's OpenMP runtime)
    from threadpoolctl import threadpool_info

    return " + ".join(sorted({f"{pool['internal_api']} {pool['num_threads']}"
                              for pool in threadpool_info()}))


def fmt(value, spec):
    return "-" if value is None else format(value, spec)


def runs_table(runs):
    lines = ["| run | photo | wall (s) | CPU (s) | peak RSS (MB) | log-lik./pixel | EM iters |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for (tool, name), r in runs.items():
        lines.append(f"| {tool} | {name} | {r['seconds']:.2f} | {r['cpu_seconds']:.2f} | "
                     f"{r['peak_mb']:.0f} | "
                     f"{fmt(r['log_likelihood'], '.5f')} | {fmt(r['iterations'], 's')} |")
    return lines


def em_table(em):
    if em.get("e_steps", 1) == 2:
        work = "one EM iteration + one more E-step (E + M + E)"
        ours = "`GMM.inference` + `GMM.update` + `GMM.inference`"
        sklearn = "`GaussianMixture(max_iter=1).fit` from the same parameters"
    else:
        # A record without "e_steps" predates the public-API timing: one E-step
        # and one M-step each, called directly on scikit-learn's side.
        work = "one EM iteration"
        ours = "`GMM.inference` + `GMM.update`"
        sklearn = "one E-step + one M-step"
    return [f"| {work}, 1 M distinct points, K = 4 | median (s) |",
            "|---|---:|",
            f"| ours ({ours}) | {em['ours']:.3f} |",
            f"| scikit-learn ({sklearn}) | {em['sklearn']:.3f} |"]


def targets_table(measured):
    lines = ["| target | measured | goal | pass |", "|---|---:|---:|:---:|"]
    for name, (goal, at_least) in TARGETS.items():
        value = measured[name]
        ok = value >= goal if at_least else value <= goal
        spec = ".2e" if "ll_" in name else ".2f"
        lines.append(f"| {name} | {value:{spec}} | {'>=' if at_least else '<='} "
                     f"{goal:g} | {'pass' if ok else 'FAIL'} |")
    return lines


def report(runs, em, measured, info, repeat):
    header = (f"Wall and CPU time: median of {repeat} run(s), start to exit; "
              "peak RSS: max over the runs.")
    lines = [header, ""]
    lines += runs_table(runs) + [""] + em_table(em) + [""] + targets_table(measured)
    lines += ["", "Machine: " + ", ".join(f"{key} {value}" for key, value in info.items())]
    return "\n".join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs of each command; the median is reported (default: 3)")
    parser.add_argument("--em-repeat", type=int, default=5,
                        help="repeats of the one-iteration timing (default: 5)")
    parser.add_argument("--skip-sklearn-11mp", action=argparse.BooleanOptionalAction,
                        default=True,
                        help="skip the slow scikit-learn run on the 11 MP photo (default: skip)")
    parser.add_argument("--json", metavar="PATH", help="also save every figure as JSON")
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.em_repeat < 1:
        parser.error("--repeat and --em-repeat must be at least 1")
    return args


def main(argv=None):
    args = parse_args(argv)
    info = machine()
    paths = photos()
    runs = measure(plan(args.skip_sklearn_11mp), paths, args.repeat)
    print("timing one EM iteration ...", file=sys.stderr)
    em = em_iteration(args.em_repeat)
    measured = ratios(runs, em)
    info["load average at end"] = load_average()
    print(report(runs, em, measured, info, args.repeat))
    if args.json:
        record = {"runs": {f"{tool}_{name}": r for (tool, name), r in runs.items()},
                  "em_iteration_seconds": em, "targets": measured, "machine": info,
                  "repeat": args.repeat}
        with open(args.json, "w") as f:
            json.dump(record, f, indent=1)


if __name__ == "__main__":
    main()
