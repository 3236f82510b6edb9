"""Video: clips in and out, labels that keep their identity, bad clips refused."""

import json
import os

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage
from sklearn.metrics import adjusted_rand_score

import segmentation_GMM
from gmmseg import video, video_io
from gmmseg.video_io import read_labels

H, W, FRAMES = 48, 64, 12
LEFT, RIGHT, SQUARE = (40, 120, 200), (235, 225, 150), (200, 40, 30)
SIDE = 14


def square_clip(frames=FRAMES, noise=0.0, seed=0):
    """A background of two halves and a square moving across both.

    Returns
    -------
    clip : ndarray of shape (frames, H, W, 3), uint8
    regions : ndarray of shape (frames, H, W)
        0 left half, 1 right half, 2 square: the truth each label must follow.
    """
    rng = np.random.default_rng(seed)
    clip = np.empty((frames, H, W, 3))
    regions = np.zeros((frames, H, W), dtype=int)
    regions[:, :, W // 2:] = 1
    for n in range(frames):
        x = round((W - SIDE) * n / (frames - 1))
        y = 6 + n % 3 * 8
        regions[n, y:y + SIDE, x:x + SIDE] = 2
    clip[:] = np.array([LEFT, RIGHT, SQUARE], dtype=float)[regions]
    clip += rng.normal(0, noise, clip.shape)
    return np.clip(np.rint(clip), 0, 255).astype(np.uint8), regions


def save_gif(path, clip, duration=80):
    images = [Image.fromarray(frame) for frame in clip]
    images[0].save(path, save_all=True, append_images=images[1:], duration=duration, loop=0)


def save_mp4(path, clip, fps=12, faststart=False):
    import imageio_ffmpeg

    # "faststart" puts the index first, so that a truncated file still opens.
    writer = imageio_ffmpeg.write_frames(str(path), (clip.shape[2], clip.shape[1]), fps=fps,
                                         codec="libx264", macro_block_size=1, quality=9,
                                         ffmpeg_log_level="error",
                                         output_params=["-movflags", "+faststart"]
                                         if faststart else None)
    writer.send(None)
    for frame in clip:
        writer.send(np.ascontiguousarray(frame))
    writer.close()


def mp4_frames(path):
    """The frames of an MP4 (an independent reader: ffmpeg's own)."""
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    w, h = meta["size"]
    return np.stack([np.frombuffer(b, np.uint8).reshape(h, w, 3) for b in reader]), meta


def gif_frames(path):
    with Image.open(path) as gif:
        frames = []
        for n in range(gif.n_frames):
            gif.seek(n)
            frames.append(np.asarray(gif.convert("RGB")))
        return np.stack(frames), gif.info.get("duration")


def assert_regions_keep_labels(labels, regions, margin=0, stray=0.0):
    """Each region has one label in every frame, and the regions' labels differ.

    ``margin`` pixels next to a region's border are not judged (lossy video
    smears colour across edges, up to a few pixels into a block). At most a
    ``stray`` share of a region's pixels in a frame may take another label: a
    decoded pixel far in its component's tail can be likelier under a broader
    component, which is the model, not a lost identity.
    """
    chosen = []
    for region in range(3):
        inside = regions == region
        if margin:
            inside = np.stack([ndimage.binary_erosion(m, iterations=margin) for m in inside])
        per_frame = [np.bincount(frame[mask], minlength=256)
                     for frame, mask in zip(labels, inside, strict=False)]
        majority = {int(np.argmax(counts)) for counts in per_frame}
        assert len(majority) == 1, f"region {region} changes label: {majority}"
        label = majority.pop()
        worst = max(1 - counts[label] / counts.sum() for counts in per_frame)
        assert worst <= stray, f"region {region}: {worst:.1%} of a frame off its label"
        chosen.append(label)
    assert len(set(chosen)) == 3, chosen


def test_gif_in_gif_out(cli, tmp_path):
    clip, regions = square_clip()
    save_gif(tmp_path / "square.gif", clip, duration=80)
    done = cli("--video", tmp_path / "square.gif", "--k", "3", "--out", tmp_path / "res")
    assert done.returncode == 0, done.stderr
    base = tmp_path / "res" / "square_k3"
    labels = read_labels(f"{base}_labels.mkv")
    assert labels.shape == (FRAMES, H, W) and labels.dtype == np.uint8
    assert_regions_keep_labels(labels, regions)

    segmented, duration = gif_frames(f"{base}_segmented.gif")
    assert segmented.shape == (FRAMES, H, W, 3)
    assert duration == 80
    # A noise-free region is one colour, so its component's mean is that colour.
    for region, colour in enumerate((LEFT, RIGHT, SQUARE)):
        assert np.abs(segmented[regions == region].astype(int) - colour).max() <= 1

    record = json.loads((tmp_path / "res" / "square_k3.json").read_text())
    assert record["frames"] == FRAMES
    assert record["fps"] == pytest.approx(1000 / 80)
    assert record["seconds_per_frame"] == pytest.approx(record["seconds"] / FRAMES)
    assert len(record["frame_log_likelihood"]) == FRAMES
    assert record["k"] == 3 and record["video"].endswith("square.gif")


def test_mp4_in_mp4_out(cli, tmp_path):
    clip, regions = square_clip(noise=3.0)
    save_mp4(tmp_path / "square.mp4", clip, fps=12)
    done = cli("--video", tmp_path / "square.mp4", "--k", "3", "--out", tmp_path / "res")
    assert done.returncode == 0, done.stderr
    base = tmp_path / "res" / "square_k3"
    labels = read_labels(f"{base}_labels.mkv")
    assert labels.shape == (FRAMES, H, W) and labels.dtype == np.uint8
    assert_regions_keep_labels(labels, regions, margin=2, stray=0.01)

    segmented, meta = mp4_frames(f"{base}_segmented.mp4")
    assert segmented.shape == (FRAMES, H, W, 3)
    assert meta["fps"] == pytest.approx(12)
    record = json.loads((tmp_path / "res" / "square_k3.json").read_text())
    assert record["frames"] == FRAMES and record["fps"] == pytest.approx(12)


def test_folder_of_frames_in_mp4_out(cli, tmp_path):
    # Odd sides: the MP4 encoder needs even ones, the labels keep the input's.
    clip, regions = square_clip(frames=5)
    clip, regions = clip[:, :47, :63], regions[:, :47, :63]
    folder = tmp_path / "shots"
    folder.mkdir()
    for n, frame in enumerate(clip):
        Image.fromarray(frame).save(folder / f"f{n:03d}.png")
    (folder / "notes.txt").write_text("not a frame")
    done = cli("--video", folder, "--k", "3", "--fps", "10", "--out", tmp_path / "res")
    assert done.returncode == 0, done.stderr
    labels = read_labels(tmp_path / "res" / "shots_k3_labels.mkv")
    assert labels.shape == (5, 47, 63)
    assert_regions_keep_labels(labels, regions)
    segmented, meta = mp4_frames(tmp_path / "res" / "shots_k3_segmented.mp4")
    assert segmented.shape[:3] == (5, 48, 64)
    assert meta["fps"] == pytest.approx(10)


def test_identity_survives_refits():
    # Light fades by 30% over the clip, so the colours move far from the first
    # frame's components; refitting every frame (refit_drop=0) must follow them
    # without swapping labels.
    clip, regions = square_clip(frames=10, noise=4.0)
    fade = np.linspace(1.0, 0.7, len(clip))[:, None, None, None]
    clip = np.clip(np.rint(clip * fade), 0, 255).astype(np.uint8)
    steps = list(video.track(iter(clip), 3, refit_drop=0.0))
    assert [s["refit"] for s in steps] == [False] + [True] * (len(clip) - 1)
    labels = np.stack([s["labels"] for s in steps])
    assert_regions_keep_labels(labels, regions)
    # The means followed the light: the last frame's are darker than the first's.
    assert steps[-1]["means_rgb"].sum() < 0.8 * steps[0]["means_rgb"].sum()


def test_memo_matches_inference_on_every_pixel():
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, size=(3, 20, 30, 3), dtype=np.uint8)
    frames[1, :10] = frames[0, :10]  # colours seen before, and new ones
    first = segmentation_GMM.segment(frames[0], 3, progress=False)
    gmm, mean, std = first["gmm"], first["mean"], first["std"]
    memo = video.ColourMemo(gmm, mean, std)
    for frame in frames:
        labels, log_likelihood = video.label_frame(memo, frame)
        pixels = (frame.reshape(-1, 3) - mean) / std
        gamma, total = gmm.inference(pixels)
        np.testing.assert_array_equal(labels.ravel(), np.argmax(gamma, axis=1))
        assert log_likelihood == pytest.approx(total / len(pixels), rel=1e-6)


def test_colour_keys_round_trip():
    rng = np.random.default_rng(2)
    frame = rng.integers(0, 256, size=(5, 7, 3), dtype=np.uint8)
    frame[0, 0] = [255, 255, 255]
    keys = video.colour_keys(frame)
    assert keys.max() < 2**24 and len(np.unique(keys)) == len(np.unique(frame.reshape(-1, 3),
                                                                         axis=0))
    np.testing.assert_array_equal(video.key_colours(keys), frame.reshape(-1, 3))


def test_npy_frames_writer_round_trips(tmp_path):
    path = tmp_path / "frames.npy"
    frames = np.arange(7 * 5 * 3, dtype=np.uint8).reshape(7, 5, 3)
    with video_io.npy_frames_writer(str(path)) as writer:
        for frame in frames:
            writer.write(frame)
    np.testing.assert_array_equal(np.load(path), frames)


@pytest.mark.parametrize("fps", [1000 / 30, 30.0, 25.0, 12.5])
def test_gif_keeps_the_frame_rate(tmp_path, fps):
    # 1000 / (1000 / 30) is 29.999... ms; Pillow truncates it to 20 ms (50 fps).
    path = str(tmp_path / "clip.gif")
    with video_io.video_writer(path, fps) as writer:
        for value in range(3):
            writer.write(np.full((4, 6), value, dtype=np.uint8),
                         np.arange(9, dtype=np.uint8).reshape(3, 3))
    info, _ = video_io.open_video(path)
    assert info["fps"] == pytest.approx(fps, rel=0.12)


def bad_videos(tmp_path):
    clip, _ = square_clip()
    save_gif(tmp_path / "whole.gif", clip)
    data = (tmp_path / "whole.gif").read_bytes()
    (tmp_path / "cut.gif").write_bytes(data[: len(data) * 2 // 3])
    save_mp4(tmp_path / "whole.mp4", clip)
    data = (tmp_path / "whole.mp4").read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 2])
    save_mp4(tmp_path / "faststart.mp4", clip, faststart=True)
    data = (tmp_path / "faststart.mp4").read_bytes()
    (tmp_path / "cut_faststart.mp4").write_bytes(data[: len(data) * 2 // 3])
    (tmp_path / "text.mp4").write_text("this is not a video\n")
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "no_frames").mkdir()
    (tmp_path / "no_frames" / "readme.txt").write_text("no images here")
    (tmp_path / "empty_folder").mkdir()
    return ["missing.mp4", "cut.gif", "cut.mp4", "cut_faststart.mp4", "text.mp4", "empty.mp4",
            "no_frames",
            "empty_folder"]


def test_bad_videos_exit_2_with_one_line(cli, tmp_path):
    for name in bad_videos(tmp_path):
        done = cli("--video", tmp_path / name, "--k", "3", "--out", tmp_path / "res")
        assert done.returncode == 2, (name, done.stderr)
        assert "Traceback" not in done.stderr, name
        # A progress bar may have been drawn (and erased, with carriage
        # returns) before a truncated clip failed; the message is one line.
        lines = [line for line in done.stderr.split("\n") if line.strip("\r ")]
        assert len(lines) == 1, (name, done.stderr)
        assert lines[0].rsplit("\r", 1)[-1].startswith("error: "), (name, done.stderr)
        assert name in lines[0]
    # Nothing half-written is left behind.
    left = os.listdir(tmp_path / "res") if (tmp_path / "res").exists() else []
    assert [name for name in left if name.startswith(".tmp-")] == []


def test_image_and_video_together_is_refused(cli, tmp_path):
    done = cli("--image", "a.png", "--video", "b.mp4")
    assert done.returncode == 2
    assert "not allowed with" in done.stderr and "Traceback" not in done.stderr


def test_a_clip_logs_its_progress_when_stderr_is_no_terminal(tmp_path, monkeypatch, capsys):
    from gmmseg import video as video_module

    clip, _ = square_clip(frames=6)
    save_gif(tmp_path / "sq.gif", clip)
    monkeypatch.setattr(video_module, "PROGRESS_EVERY", 0.0)  # a line a frame
    video_module.segment_video(str(tmp_path / "sq.gif"), 2, out=str(tmp_path / "out"))
    lines = [line for line in capsys.readouterr().err.splitlines()
             if line.startswith("video k=2: frame ")]
    assert [line.split(" of ")[0] for line in lines] == [f"video k=2: frame {i}"
                                                         for i in range(1, 7)]


def test_compressed_labels_equal_the_npy_frame_by_frame_and_any_frame_reads_alone(tmp_path):
    # 70 frames of odd size (47 x 63): three keyframes of the .mkv (LABELS_GOP = 30)
    rng = np.random.default_rng(3)
    regions = np.zeros((70, 47, 63), dtype=int)
    regions[:, :, 31:] = 1
    for n in range(70):
        x = n * 49 // 69
        regions[n, 5 + n % 4 * 7:19 + n % 4 * 7, x:x + 14] = 2
    clip = np.array([LEFT, RIGHT, SQUARE], dtype=float)[regions]
    clip += rng.normal(0, 6, clip.shape)
    frames = tmp_path / "frames"
    frames.mkdir()
    for n, frame in enumerate(np.clip(np.rint(clip), 0, 255).astype(np.uint8)):
        Image.fromarray(frame).save(frames / f"f{n:03d}.png")
    records = {form: video.segment_video(str(frames), 3, out=str(tmp_path / form),
                                         labels=form, progress=False, stem="c")
               for form in video_io.LABEL_FORMATS}
    raw = np.load(tmp_path / "npy" / "c_k3_labels.npy")
    assert raw.shape == (70, 47, 63) and len(np.unique(raw)) == 3
    mkv = tmp_path / "mkv" / "c_k3_labels.mkv"
    assert np.array_equal(read_labels(mkv), raw)
    assert os.path.getsize(mkv) < raw.nbytes / 20
    for n in (0, 1, 29, 30, 31, 59, 60, 69):  # either side of each keyframe, the last
        assert np.array_equal(read_labels(mkv, n), raw[n])
    assert np.array_equal(read_labels(tmp_path / "npy" / "c_k3_labels.npy", -1), raw[-1])
    with pytest.raises(ValueError, match="frame 70 is beyond"):
        read_labels(mkv, 70)
    assert sorted(os.listdir(tmp_path / "none")) == ["c_k3.json", "c_k3_frames.png",
                                                     "c_k3_segmented.mp4"]
    assert [records[form]["labels_file"] for form in video_io.LABEL_FORMATS] == [
        "c_k3_labels.mkv", "c_k3_labels.npy", None]
    # the MP4's sides are even: the record says so, and the MP4 is that size
    assert records["none"]["segmented_size"] == [48, 64]
    assert mp4_frames(tmp_path / "none" / "c_k3_segmented.mp4")[0].shape[1:3] == (48, 64)
    # the labels do not depend on how they are kept
    assert records["npy"]["frame_log_likelihood"] == records["none"]["frame_log_likelihood"]


def test_a_one_frame_clip_and_bad_label_options(cli, tmp_path):
    clip, _ = square_clip(frames=2)
    save_mp4(tmp_path / "one.mp4", clip[:1])
    done = cli("--video", tmp_path / "one.mp4", "--k", "3", "--out", tmp_path / "res")
    assert done.returncode == 0, done.stderr
    labels = read_labels(tmp_path / "res" / "one_k3_labels.mkv")
    assert labels.shape == (1, H, W)
    assert np.array_equal(read_labels(tmp_path / "res" / "one_k3_labels.mkv", 0), labels[0])
    with pytest.raises(ValueError, match="labels must be one of mkv, npy, none"):
        video.segment_video(str(tmp_path / "one.mp4"), 3, out=str(tmp_path / "x"), labels="zip")
    done = cli("--image", tmp_path / "x.png", "--labels", "npy")
    assert done.returncode == 2 and "--labels is for --video" in done.stderr
    with pytest.raises(ValueError, match="not a label file"):
        read_labels(tmp_path / "one.mp4.json")


def test_a_rotated_clip_is_read_upright_without_a_stray_line(cli, tmp_path):
    import subprocess

    import imageio_ffmpeg

    clip, regions = square_clip()
    save_mp4(tmp_path / "flat.mp4", clip)
    # rotation metadata only (a phone's portrait clip): the stored frames stay H x W
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-display_rotation:v:0",
                    "90", "-i", str(tmp_path / "flat.mp4"), "-c", "copy",
                    str(tmp_path / "turned.mp4")], check=True)
    done = cli("--video", tmp_path / "turned.mp4", "--k", "3", "--out", tmp_path / "res")
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == "", done.stderr
    labels = read_labels(tmp_path / "res" / "turned_k3_labels.mkv")
    assert labels.shape == (FRAMES, W, H)  # upright, as a player shows it
    # a quarter turn of the regions, up to which way ffmpeg turns and the codec's edges
    turned = [np.rot90(regions, k, axes=(1, 2)) for k in (1, -1)]
    assert max(adjusted_rand_score(t.ravel(), labels.ravel()) for t in turned) > 0.9
