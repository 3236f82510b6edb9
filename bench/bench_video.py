"""Frames per second of the video segmentation on a 640x360 clip, k = 4.

Makes the clip once from data scikit-image ships (a slow pan across its
astronaut photo, upscaled with Lanczos so the window has room to move),
saves it as H.264 MP4 in bench/data/ (gitignored), then times:

* the command line as a user runs it (``segmentation_GMM.py --video``), in a
  subprocess, from start to exit: import, decode, segment, encode, write;
* ``segment_video`` in process, the same work without Python's start-up.

Usage: python bench/bench_video.py [--frames 150] [--repeat 3] [--k 4]
       python bench/bench_video.py --demo    (the README's example, into results/)
"""

import argparse
import json
import os
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


def make_clip(path, frames, fps=30):
    """A left-to-right pan across scikit-image's astronaut, 640x360, as MP4."""
    import imageio_ffmpeg
    from PIL import Image
    from skimage import data

    photo = np.asarray(Image.fromarray(data.astronaut()).resize((1024, 1024),
                                                                Image.LANCZOS))
    top = 200  # the face and the suit's badges: several distinct segments
    writer = imageio_ffmpeg.write_frames(path, (WIDTH, HEIGHT), fps=fps, codec="libx264",
                                         macro_block_size=1, ffmpeg_log_level="error")
    writer.send(None)
    for n in range(frames):
        left = round((photo.shape[1] - WIDTH) * n / (frames - 1))
        writer.send(np.ascontiguousarray(photo[top:top + HEIGHT, left:left + WIDTH]))
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
        labels = np.load(os.path.join(out, f"pan_k{k}_labels.npy"), mmap_mode="r")
        print(f"wrote results/pan_k{k}_frames.png and pan_k{k}_segmented.gif; "
              f"labels {labels.shape}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--demo", action="store_true",
                        help="instead, write the README's example clip and frame strip")
    args = parser.parse_args()
    if args.demo:
        make_demo(args.k)
        return

    os.makedirs(DATA, exist_ok=True)
    clip = os.path.join(DATA, f"pan_{WIDTH}x{HEIGHT}_{args.frames}.mp4")
    if not os.path.exists(clip):
        make_clip(clip, args.frames)

    cli_fps, in_process_fps = [], []
    with tempfile.TemporaryDirectory() as out:
        for _ in range(args.repeat):
            start = time.perf_counter()
            subprocess.run([sys.executable, os.path.join(ROOT, "segmentation_GMM.py"),
                            "--video", clip, "--k", str(args.k), "--out", out],
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            cli_fps.append(args.frames / (time.perf_counter() - start))
            record = video.segment_video(clip, args.k, out=out, progress=False)
            in_process_fps.append(record["frames"] / record["seconds"])
        with open(os.path.join(out, f"{os.path.splitext(os.path.basename(clip))[0]}"
                                    f"_k{args.k}.json")) as f:
            record = json.load(f)

    print(f"clip: {clip} ({args.frames} frames, {WIDTH}x{HEIGHT}), k = {args.k}, "
          f"{os.cpu_count()} CPUs")
    print(f"refitted frames: {len(record['refit_frames'])} of {record['frames']}; "
          f"log-likelihood per pixel: first {record['frame_log_likelihood'][0]:.3f}, "
          f"min {min(record['frame_log_likelihood']):.3f}")
    print(f"{'':24}{'median':>10}{'best':>10}  frames/s")
    for name, fps in (("CLI (subprocess)", cli_fps), ("segment_video", in_process_fps)):
        print(f"{name:24}{np.median(fps):10.1f}{max(fps):10.1f}")


if __name__ == "__main__":
    main()
