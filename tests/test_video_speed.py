"""The video path's speed-ups leave every output as the straightforward computation gives it.

Each shortcut (ffmpeg decoding to packed colours, the memo's look-ups, ffmpeg
painting the labels, counting the labels by comparison) is checked against a
reference computed without it: RGB frames decoded by imageio-ffmpeg's own
reader, the E-step run on every pixel, the frames painted in NumPy and encoded
as RGB.
"""

import json

import imageio_ffmpeg
import numpy as np
import pytest
from PIL import Image
from test_video import gif_frames, mp4_frames, save_gif, save_mp4, square_clip

import segmentation_GMM
import utils
from gmmseg import video, video_io
from gmmseg.video_io import read_labels


def textured_clip(frames=8, h=37, w=53, seed=3):
    """A noisy pan with odd sides: many distinct colours, new ones in every frame."""
    rng = np.random.default_rng(seed)
    scene = np.clip(rng.normal(128, 50, (h, w + 2 * frames, 3)), 0, 255)
    scene[:, : (w + 2 * frames) // 2] *= [1.0, 0.5, 0.3]  # two colour populations
    clip = np.stack([scene[:, 2 * n:2 * n + w] for n in range(frames)])
    return np.rint(clip).astype(np.uint8)


@pytest.mark.parametrize("kind", ["mp4", "gif", "folder"])
def test_packed_frames_are_the_rgb_frames(tmp_path, kind):
    clip = textured_clip(h=36, w=54) if kind == "mp4" else textured_clip()  # x264: even sides
    if kind == "mp4":
        path = tmp_path / "clip.mp4"
        save_mp4(path, clip)
        reference = mp4_frames(path)[0]  # imageio-ffmpeg's reader, RGB
    elif kind == "gif":
        path = tmp_path / "clip.gif"
        save_gif(path, clip)
        reference = gif_frames(path)[0]
    else:
        path = tmp_path / "frames"
        path.mkdir()
        for n, frame in enumerate(clip):
            Image.fromarray(frame).save(path / f"f{n}.png")
        reference = clip
    _, packed = video_io.open_video(str(path), packed=True)
    packed = np.stack(list(packed))
    assert packed.shape == reference.shape[:3]
    r, g, b = (reference[..., ch].astype(np.int64) for ch in range(3))
    np.testing.assert_array_equal(packed, r * 65536 + g * 256 + b)
    np.testing.assert_array_equal(np.stack([video_io.unpack_frame(f) for f in packed]),
                                  reference)


def test_tracked_labels_are_the_e_step_on_every_pixel(tmp_path):
    # Without refits every frame's labels must be the argmax of the first
    # frame's mixture on each pixel, as imageio-ffmpeg decodes it.
    clip = textured_clip(frames=6, h=36, w=54)
    path = tmp_path / "noisy.mp4"
    save_mp4(path, clip)
    _, packed = video_io.open_video(str(path), packed=True)
    steps = list(video.track(packed, 3, refit_drop=np.inf))
    decoded = mp4_frames(path)[0]
    first = segmentation_GMM.segment(decoded[0], 3, progress=False)
    gmm, mean, std = first["gmm"], first["mean"], first["std"]
    for step, frame in zip(steps, decoded, strict=False):
        gamma, total = gmm.inference((frame.reshape(-1, 3) - mean) / std)
        np.testing.assert_array_equal(step["labels"].ravel(), np.argmax(gamma, axis=1))
        assert step["log_likelihood"] == pytest.approx(total / gamma.shape[0], rel=1e-6)


def test_segment_video_labels_are_those_of_the_rgb_frames(tmp_path):
    # With its refits (this clip has some), segment_video must write the
    # labels that tracking the RGB frames gives, and count them.
    clip, _ = square_clip(frames=10, noise=3.0)
    path = tmp_path / "square.mp4"
    save_mp4(path, clip)
    record = video.segment_video(str(path), 3, out=str(tmp_path / "res"), progress=False)
    reference = list(video.track(mp4_frames(path)[0], 3))
    assert record["refit_frames"] == [n for n, s in enumerate(reference) if s["refit"]] != []
    expected = np.stack([step["labels"] for step in reference])
    np.testing.assert_array_equal(read_labels(tmp_path / "res" / "square_k3_labels.mkv"),
                                  expected)
    counts = np.bincount(expected.ravel(), minlength=3)
    np.testing.assert_allclose(record["share"], counts / counts.sum())


def test_segment_video_labels_match_tracking_rgb_frames(tmp_path):
    # Refits on every frame: the packed path must make the same refits and
    # the same labels as tracking the RGB frames that ffmpeg decodes.
    clip = textured_clip(frames=6, h=36, w=54)
    path = tmp_path / "noisy.mp4"
    save_mp4(path, clip)
    reference = list(video.track(mp4_frames(path)[0], 3, refit_drop=-np.inf))
    _, packed = video_io.open_video(str(path), packed=True)
    steps = list(video.track(packed, 3, refit_drop=-np.inf))
    assert [s["refit"] for s in steps] == [s["refit"] for s in reference] \
        == [False] + [True] * 5
    for step, ref in zip(steps, reference, strict=False):
        np.testing.assert_array_equal(step["labels"], ref["labels"])
        assert step["log_likelihood"] == ref["log_likelihood"]


def test_mp4_painted_by_ffmpeg_is_the_mp4_painted_in_numpy(tmp_path):
    # Odd sides: the writer pads them, as it did when it painted in NumPy.
    labels = np.stack([textured_clip(frames=5)[n, :, :, 0] // 64 for n in range(5)])
    palette = np.array([[12, 200, 40], [250, 250, 250], [0, 0, 0], [90, 30, 160]], np.uint8)
    path = tmp_path / "pal8.mp4"
    with video_io.video_writer(str(path), 12) as writer:
        for frame in labels:
            writer.write(frame, palette)
    padded = np.pad(labels, ((0, 0), (0, 1), (0, 1)), mode="edge")
    reference = imageio_ffmpeg.write_frames(
        str(tmp_path / "rgb.mp4"), (padded.shape[2], padded.shape[1]), fps=12,
        codec="libx264", macro_block_size=1, ffmpeg_log_level="error",
        output_params=["-preset", video_io.MP4_PRESET])
    reference.send(None)
    for frame in padded:
        reference.send(np.ascontiguousarray(palette[frame]))
    reference.close()
    assert path.read_bytes() == (tmp_path / "rgb.mp4").read_bytes()


@pytest.mark.parametrize("ncomp", [3, 20])
def test_label_counts_are_bincount(ncomp):
    labels = np.random.default_rng(4).integers(0, ncomp, size=(31, 17), dtype=np.uint8)
    np.testing.assert_array_equal(utils.label_counts(labels, ncomp),
                                  np.bincount(labels.ravel(), minlength=ncomp))


def test_record_of_a_clip_counts_every_pixel(tmp_path):
    clip = textured_clip(frames=4)
    save_gif(tmp_path / "t.gif", clip)
    video.segment_video(str(tmp_path / "t.gif"), 2, out=str(tmp_path), progress=False)
    record = json.loads((tmp_path / "t_k2.json").read_text())
    labels = read_labels(tmp_path / "t_k2_labels.mkv")
    counts = np.bincount(labels.ravel(), minlength=2)
    np.testing.assert_allclose(record["share"], counts / counts.sum())


def test_preset_changes_the_mp4_not_the_labels(tmp_path):
    clip, _ = square_clip(frames=6, noise=3.0)
    save_mp4(tmp_path / "sq.mp4", clip)
    outputs = {}
    for preset in (None, "ultrafast"):
        out = tmp_path / str(preset)
        video.segment_video(str(tmp_path / "sq.mp4"), 3, out=str(out), progress=False,
                            preset=preset)
        outputs[preset] = (read_labels(out / "sq_k3_labels.mkv"),
                           (out / "sq_k3_segmented.mp4").read_bytes())
    np.testing.assert_array_equal(outputs[None][0], outputs["ultrafast"][0])
    assert outputs[None][1] != outputs["ultrafast"][1]
    assert mp4_frames(tmp_path / "ultrafast" / "sq_k3_segmented.mp4")[0].shape == clip.shape


@pytest.mark.parametrize("preset, words", [("quick", r"preset must be one of"),
                                           ("fast", "is for an MP4")])
def test_bad_preset_is_refused(tmp_path, preset, words):
    clip, _ = square_clip(frames=3)
    save_gif(tmp_path / "sq.gif", clip)
    with pytest.raises(ValueError, match=words):
        video.segment_video(str(tmp_path / "sq.gif"), 2, out=str(tmp_path / "out"),
                            preset=preset)
    assert not (tmp_path / "out").exists()
