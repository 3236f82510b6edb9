"""Bytes and CPU a frame of a clip's label frames in each lossless format tried (issue 21).

    python bench/bench_labels.py LABELS.npy [LABELS.npy ...]

Takes label frames as ``segment_video(..., labels="npy")`` writes them (say, of
the clips ``bench/bench_video.py`` makes), writes them in every format of the
table in docs/video.md (FFV1 and lossless x264 through the bundled ffmpeg, a
zlib'd ``.npz`` member a frame), checks that each decodes back to the same
labels, and prints bytes a frame and the writer's CPU a frame (ffmpeg's in its
own process, or this one's for zlib).
"""

import io
import os
import resource
import subprocess
import sys
import tempfile
import zipfile

import imageio_ffmpeg
import numpy as np

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()
FORMATS = {
    "FFV1 in MKV, intra only": ["-c:v", "ffv1", "-level", "3", "-g", "1", "-slices", "4",
                                "-slicecrc", "0"],
    "FFV1, range coder": ["-c:v", "ffv1", "-level", "3", "-g", "1", "-coder", "1",
                          "-context", "1", "-slicecrc", "0"],
    "x264 qp 0 ultrafast, keyframe every 250": ["-c:v", "libx264", "-qp", "0", "-preset",
                                                "ultrafast", "-pix_fmt", "gray"],
    "x264 qp 0 ultrafast, keyframe every 30 (the default)": [
        "-c:v", "libx264", "-qp", "0", "-preset", "ultrafast", "-g", "30", "-pix_fmt", "gray"],
    "x264 qp 0 veryfast, keyframe every 25": ["-c:v", "libx264", "-qp", "0", "-preset",
                                              "veryfast", "-g", "25", "-pix_fmt", "gray"],
}


def cpu_seconds():
    own, children = (resource.getrusage(who) for who in
                     (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def with_ffmpeg(labels, path, codec):
    _, h, w = labels.shape
    process = subprocess.Popen([FFMPEG, "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt",
                                "gray", "-s", f"{w}x{h}", "-r", "25", "-i", "pipe:0", *codec,
                                path], stdin=subprocess.PIPE)
    for frame in labels:
        process.stdin.write(np.ascontiguousarray(frame).data)
    process.stdin.close()
    process.wait()
    out = subprocess.run([FFMPEG, "-v", "error", "-i", path, "-f", "rawvideo", "-pix_fmt",
                          "gray", "pipe:1"], capture_output=True, check=True).stdout
    return np.frombuffer(out, np.uint8).reshape(labels.shape)


def with_zlib(labels, path, level):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=level) as archive:
        for i, frame in enumerate(labels):
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.ascontiguousarray(frame))
            archive.writestr(f"{i:07d}.npy", buffer.getvalue())
    with np.load(path) as members:
        return np.stack([members[f"{i:07d}"] for i in range(len(labels))])


def main():
    for source in sys.argv[1:]:
        labels = np.load(source)
        n, h, w = labels.shape
        print(f"\n{source}: {w}x{h}, {n} frames, raw {h * w} bytes a frame\n")
        print("| format | bytes/frame | CPU ms/frame | lossless |")
        print("|---|---:|---:|---|")
        runs = [(name, ".mkv", with_ffmpeg, codec) for name, codec in FORMATS.items()]
        runs += [(f".npz, level {level}", ".npz", with_zlib, level) for level in (1, 6)]
        with tempfile.TemporaryDirectory() as folder:
            for name, extension, write, setting in runs:
                path = os.path.join(folder, "labels" + extension)
                start = cpu_seconds()
                back = write(labels, path, setting)
                # the CPU figure includes reading back; the write alone is most of it
                cpu = cpu_seconds() - start
                print(f"| {name} | {os.path.getsize(path) / n:.0f} | {cpu / n * 1000:.1f} | "
                      f"{np.array_equal(back, labels)} |")


if __name__ == "__main__":
    main()
