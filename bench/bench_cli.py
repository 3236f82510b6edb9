"""The command line against its floor, and against another checkout, side by side (issue 13).

    python bench/bench_cli.py                         # this checkout and the floor, 5 rounds
    python bench/bench_cli.py --against /path/to/old  # also an older checkout, interleaved

Each round runs, for each photo of ``bench_speed.PHOTOS`` (3 and 11 MP, built
once in bench/data/), this checkout's ``segmentation_GMM.py --k 4``, every
``--against`` checkout's, and ``bench/floor.py`` (the same imports, decode,
an 8-bit PNG written: no clustering), each a fresh process from start to exit.
Interleaving the programs round by round spreads any load on the machine
over all of them alike; the medians and their ratios to the floor are
printed, with the CPU time, the peak memory and each fit's log-likelihood
per pixel (the difference to this checkout's must stay within 1e-4 nats).
"""

import argparse
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench_speed


def command(root, photo, out):
    return [sys.executable, os.path.join(root, "segmentation_GMM.py"), "--image", photo,
            "--k", str(bench_speed.K), "--out", out, "--overwrite"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", nargs="*", default=[], metavar="ROOT",
                        help="other checkouts to time in the same rounds")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    roots = {"this": bench_speed.ROOT, **{os.path.abspath(r): r for r in args.against}}
    paths = bench_speed.photos()
    runs = {}
    with tempfile.TemporaryDirectory() as out:
        for _ in range(args.rounds):
            for name, photo in paths.items():
                for label, root in roots.items():
                    folder = os.path.join(out, str(abs(hash(label))))
                    seconds, cpu, peak, stdout = bench_speed.run_measured(
                        command(root, photo, folder))
                    log_likelihood, _ = bench_speed.cli_fit(photo, folder, stdout)
                    runs.setdefault((name, label), []).append(
                        (seconds, cpu, peak, log_likelihood))
                floor = bench_speed.run_measured(bench_speed.floor_command(photo, out))
                runs.setdefault((name, "floor"), []).append((*floor[:3], None))
    load = os.getloadavg()[0]
    print(f"{time.strftime('%Y-%m-%d %H:%M')}, {args.rounds} rounds, load average {load:.1f} "
          f"at the end; medians\n")
    print("| photo | program | wall s | / floor | CPU s | peak MB | log-likelihood | - this |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for name in paths:
        floor = statistics.median(run[0] for run in runs[name, "floor"])
        ours = runs[name, "this"][0][3]
        for label in [*roots, "floor"]:
            found = runs[name, label]
            wall = statistics.median(run[0] for run in found)
            cpu = statistics.median(run[1] for run in found)
            peak = max(run[2] for run in found)
            fit = found[0][3]
            likelihood = "" if fit is None else f"{fit:.6f} | {fit - ours:+.1e}"
            print(f"| {name} | {label} | {wall:.2f} | {wall / floor:.2f}x | {cpu:.2f} | "
                  f"{peak:.0f} | {likelihood or ' | '} |")


if __name__ == "__main__":
    main()
