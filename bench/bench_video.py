"""Frames per second of the video segmentation on a pan clip, k = 4.

Makes the clip once from data scikit-image ships (a slow pan across its
astronaut photo, upscaled with Lanczos so the window has room to move),
saves it as H.264 MP4 in bench/data/ (gitignored), together with a clip of its
first 30 frames, then times, median over ``--repeat`` rounds:

* the command line as a user runs it (``segmentation_GMM.py --video``), in a
  subprocess, from start to exit: import, decode, segment, encode, write.
  "End to end" is the clip's frames over that time; "marginal" is
  (frames - 30) / (time on the clip - time on its first 30 frames), the rate
  once start-up and the first frame's full fit are paid. Peak memory is the
  child's resident peak (``os.wait4``; ffmpeg's own processes not included);
  "CPU ms/fr" the marginal CPU time a frame costs, Python's and ffmpeg's;
* ``segment_video`` in process, the same work without Python's start-up.

With ``--against ROOT`` each round also runs the command line of another
checkout (say, the main branch) on the same clips, interleaved, so that both
see the same load, and checks that both wrote the same labels (read back from
either file, ``.mkv`` or ``.npy``, with ``video_io.read_labels``).

Usage: python bench/bench_video.py [--size 640x360] [--frames 150] [--repeat 3] [--k 4]
                                   [--against ROOT] [--preset P] [--json PATH]
       python bench/bench_video.py --size 1920x1080 --frames 600   (the 1080p benchmark)
       python bench/bench_video.py --demo    (the README's example, into results/)
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from gmmseg import video, video_io

DATA = os.path.join(ROOT, "bench", "data")
WIDTH, HEIGHT = 640, 360


def make_clip(path, frames, fps=30, width=WIDTH, height=HEIGHT, stop=None):
    """A left-to-right pan across scikit-image's astronaut, as MP4.

    At 640x360 the photo is upscaled to 1024x1024; a larger frame scales the
    photo with it (3072x3072 at 1920x1080), so every size pans across the
    same part of the photo at the same pace. With ``stop``, only the first
    ``stop`` frames of that pan are written.
    """
    import imageio_ffmpeg
    from PIL import Image
    from skimage import data

    scale = height / HEIGHT
    side = round(1024 * scale)
    photo = np.asarray(Image.fromarray(data.astronaut()).resize((side, side), Image.LANCZOS))
    top = round(200 * scale)  # the face and the suit's badges: several distinct segments
    writer = imageio_ffmpeg.write_frames(path, (width, height), fps=fps, codec="libx264",
                                         macro_block_size=1, ffmpeg_log_level="error")
    writer.send(None)
    for n in range(frames if stop is None else stop):
        left = round((photo.shape[1] - width) * n / (frames - 1))
        writer.send(np.ascontiguousarray(photo[top:top + height, left:left + width]))
    writer.close()


def make_demo(k=4, frames=60):
    """The report's example: a small GIF of the pan through the CLI, and its frames figure.

    Writes results/pan_k<K>_segmented.gif and results/pan_k<K>_frames.png (the
    first, middle and last frames above their segmentation, with a key of the
    components), both the CLI's own outputs; its .npy and .json go to a
    temporary folder.
    """
    import shutil

    from PIL import Image

    os.makedirs(DATA, exist_ok=True)  # gitignored: absent on a fresh clone
    clip = os.path.join(DATA, f"pan_{WIDTH}x{HEIGHT}_{frames}.mp4")
    if not os.path.exists(clip):
        make_clip(clip, frames)
    info, source = video_io.open_video(clip)
    small = [Image.fromarray(frame).resize((WIDTH // 2, HEIGHT // 2), Image.LANCZOS)
             for frame in source]
    gif = os.path.join(DATA, "pan.gif")
    small[0].save(gif, save_all=True, append_images=small[1:], duration=1000 / info["fps"],
                  loop=0)
    results = os.path.join(ROOT, "results")
    with tempfile.TemporaryDirectory() as out:
        subprocess.run([sys.executable, os.path.join(ROOT, "segmentation_GMM.py"),
                        "--video", gif, "--k", str(k), "--out", out], check=True)
        for name in (f"pan_k{k}_segmented.gif", f"pan_k{k}_frames.png"):
            shutil.copy(os.path.join(out, name), results)
        # The labels' default file is the compressed clip (issue 21), not .npy.
        (labels_file,) = [name for name in os.listdir(out) if "_labels." in name]
        labels = video_io.read_labels(os.path.join(out, labels_file))
        print(f"wrote results/pan_k{k}_frames.png and pan_k{k}_segmented.gif; "
              f"labels {labels.shape} in {labels_file}")


PREFIX = 30  # frames of the clip that "marginal" leaves out


def run_cli(root, clip, k, out, options=()):
    """Run ``root``'s command line on a clip: (seconds, peak RSS in MB, CPU seconds).

    The CPU time is the child's and its ffmpeg processes' (which it waits for),
    user and system: less sensitive than the wall time to other jobs on the machine.
    """
    argv = [sys.executable, os.path.join(root, "segmentation_GMM.py"), "--video", clip,
            "--k", str(k), "--out", out, "--overwrite", *options]
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    error = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"bench: {' '.join(argv)} failed:\n{error.decode(errors='replace')}")
    return seconds, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


def same_label_files(first, second):
    """Whether two label files hold the same labels, read in a child process.

    Both labels of a 600-frame 1080p clip take 2.5 GB: read here, that peak
    would be every later child's ``ru_maxrss`` (it survives fork and exec),
    and the table showed 4600 MB for each command line.
    """
    code = ("import sys, numpy as np; from gmmseg import video_io; "
            "sys.exit(0 if np.array_equal(video_io.read_labels(sys.argv[1]), "
            "video_io.read_labels(sys.argv[2])) else 1)")
    return subprocess.run([sys.executable, "-c", code, first, second], cwd=ROOT).returncode == 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--size", default=f"{WIDTH}x{HEIGHT}",
                        help="WIDTHxHEIGHT of the clip, 16:9 (default %(default)s)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--against", metavar="ROOT",
                        help="also time the command line of the checkout at ROOT")
    parser.add_argument("--preset", help="this checkout's --preset (not --against's)")
    parser.add_argument("--json", help="save every figure to this file")
    parser.add_argument("--demo", action="store_true",
                        help="instead, write the README's example clip and frame strip")
    args = parser.parse_args()
    if args.demo:
        make_demo(args.k)
        return
    width, height = (int(side) for side in args.size.lower().split("x"))
    if args.frames <= PREFIX:
        sys.exit(f"bench: --frames must be more than {PREFIX}")

    os.makedirs(DATA, exist_ok=True)
    clip = os.path.join(DATA, f"pan_{width}x{height}_{args.frames}.mp4")
    prefix = os.path.join(DATA, f"pan_{width}x{height}_{args.frames}_first{PREFIX}.mp4")
    if not os.path.exists(clip):
        make_clip(clip, args.frames, width=width, height=height)
    if not os.path.exists(prefix):
        make_clip(prefix, args.frames, width=width, height=height, stop=PREFIX)

    programs = {"this checkout": ROOT}
    if args.against:
        programs["--against"] = os.path.abspath(args.against)
    runs = {name: {"clip": [], "prefix": [], "peak_mb": [], "prefix_peak_mb": [], "cpu": [],
                   "prefix_cpu": []} for name in programs}
    in_process_fps, same_labels = [], []
    stem = os.path.splitext(os.path.basename(clip))[0]
    load = os.getloadavg()
    with tempfile.TemporaryDirectory() as out:
        for _ in range(args.repeat):
            for name, root in programs.items():
                folder = os.path.join(out, name.strip("-").replace(" ", "_"))
                options = ["--preset", args.preset] if args.preset and root == ROOT else []
                for key, path in (("prefix_", prefix), ("", clip)):
                    seconds, peak, cpu = run_cli(root, path, args.k, folder, options)
                    runs[name]["prefix" if key else "clip"].append(seconds)
                    runs[name][key + "peak_mb"].append(peak)
                    runs[name][key + "cpu"].append(cpu)
            if args.against:  # whichever label file each wrote (.mkv since issue 21)
                same_labels.append(same_label_files(*(
                    next(os.path.join(folder, f"{stem}_k{args.k}_labels.{kind}")
                         for kind in ("mkv", "npy")
                         if os.path.exists(os.path.join(folder, f"{stem}_k{args.k}_labels.{kind}")))
                    for folder in (os.path.join(out, name.strip("-").replace(" ", "_"))
                                   for name in programs))))
        # In process only after every command line has run: a child starts
        # with its parent's peak resident memory (ru_maxrss survives fork and
        # exec), so a large peak here would show in every later child's.
        for _ in range(args.repeat):
            record = video.segment_video(clip, args.k, out=out, progress=False,
                                         overwrite=True, preset=args.preset)
            in_process_fps.append(record["frames"] / record["seconds"])
    load = (load, os.getloadavg())

    print(f"clip: {clip} ({args.frames} frames, {width}x{height}), k = {args.k}; "
          f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}; "
          f"load average {load[0][0]:.2f} at the start, {load[1][0]:.2f} at the end; "
          f"this checkout's preset: {args.preset or video_io.MP4_PRESET}")
    print(f"refitted frames: {len(record['refit_frames'])} of {record['frames']}; "
          f"log-likelihood per pixel: first {record['frame_log_likelihood'][0]:.3f}, "
          f"min {min(record['frame_log_likelihood']):.3f}")
    print(f"{'':24}{'end to end':>12}{'marginal':>10}{'best e2e':>10}"
          f"{'peak MB':>9}{f'({PREFIX} fr.)':>10}{'CPU ms/fr':>11}  frames/s, median of "
          f"{args.repeat}; CPU: marginal, Python and ffmpeg")
    results = {}
    for name, run in runs.items():
        end_to_end = [args.frames / t for t in run["clip"]]
        marginal = [(args.frames - PREFIX) / (t - p)
                    for t, p in zip(run["clip"], run["prefix"], strict=True)]
        cpu = [1000 * (c - p) / (args.frames - PREFIX)
               for c, p in zip(run["cpu"], run["prefix_cpu"], strict=False)]
        results[name] = {"end_to_end_fps": end_to_end, "marginal_fps": marginal,
                         "marginal_cpu_ms_per_frame": cpu,
                         "seconds": run["clip"], "prefix_seconds": run["prefix"],
                         "peak_mb": run["peak_mb"], "prefix_peak_mb": run["prefix_peak_mb"]}
        print(f"{'CLI, ' + name:24}{np.median(end_to_end):12.1f}{np.median(marginal):10.1f}"
              f"{max(end_to_end):10.1f}{max(run['peak_mb']):9.0f}"
              f"{max(run['prefix_peak_mb']):10.0f}{np.median(cpu):11.1f}")
    print(f"{'segment_video':24}{np.median(in_process_fps):12.1f}")
    if args.against:
        print(f"labels identical to --against's: {all(same_labels)} "
              f"({sum(same_labels)} of {len(same_labels)} rounds)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"clip": clip, "frames": args.frames, "size": [width, height],
                       "k": args.k, "preset": args.preset, "load_average": load, "cli": results,
                       "segment_video_fps": in_process_fps,
                       "labels_identical": same_labels or None}, f, indent=1)


if __name__ == "__main__":
    main()
