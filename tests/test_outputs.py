"""What a student hands in: figures that show all of EM, masks that can be read, files that
never clobber another input's, and a checkout the default run leaves clean."""

import json
import os
import shutil
import subprocess
import sys
import warnings

import numpy as np
import pytest
from conftest import ROOT, SCRIPT
from PIL import Image
from test_video import save_gif, save_mp4, square_clip

import segmentation_GMM as sg
import utils
from gmmseg import cli as command_line
from gmmseg import outputs, pipeline, selection, video_io
from gmmseg.video_io import read_labels


@pytest.fixture
def photo():
    """A photo-like image with many colours, so that the warm-up EM runs."""
    rng = np.random.default_rng(0)
    image = np.zeros((150, 200, 3))
    image[:, :100] = (200, 60, 40)
    image[:, 100:] = (40, 90, 200)
    image[50:100, 50:150] = (240, 240, 230)
    return np.clip(image + rng.normal(0, 12, image.shape), 0, 255).astype(np.uint8)


def convergence_axes(figure):
    return next(ax for ax in figure.axes if ax.get_title() == "convergence")


# --------------------------------------------------------------------------
# The convergence panel shows every EM step, warm-up and exact told apart
# --------------------------------------------------------------------------

def test_convergence_panel_shows_warm_up_and_exact_steps(photo, tmp_path):
    result = pipeline.segment(photo, 3, progress=False)
    record = sg.summary(result, "photo.png", 3, 0)
    warm, exact = record["warm_up_log_likelihood_history"], record["log_likelihood_history"]
    assert record["warm_up_iterations"] == len(warm) - 1 > 0
    figure = utils.visualize(photo, result["labels"], result["means_rgb"], exact,
                             warm_up_history=warm)
    ax = convergence_axes(figure)
    lines = ax.get_lines()
    assert [len(line.get_xdata()) for line in lines] == [len(warm), len(exact)]
    # the exact steps continue from where the warm-up ended
    assert lines[1].get_xdata()[0] == lines[0].get_xdata()[-1] == len(warm) - 1
    np.testing.assert_array_equal(lines[1].get_ydata(), exact)
    figure.canvas.draw()
    ticks = [tick for tick in ax.get_xticks() if ax.get_xlim()[0] <= tick <= ax.get_xlim()[1]]
    assert all(float(tick).is_integer() for tick in ticks)
    assert ax.yaxis.get_offset_text().get_text() == ""


def test_console_gives_both_counts(cli, photo, tmp_path):
    Image.fromarray(photo).save(tmp_path / "p.png")
    done = cli("--image", tmp_path / "p.png", "--k", "3", "--out", tmp_path / "out")
    assert done.returncode == 0, done.stderr
    record = json.loads((tmp_path / "out" / "p_k3.json").read_text())
    assert (f"{record['warm_up_iterations']} warm-up + {record['iterations']} EM iterations"
            in done.stdout)


# --------------------------------------------------------------------------
# Masks a reader can tell apart
# --------------------------------------------------------------------------

def test_masks_show_true_colours_on_a_checkerboard_under_a_title_in_their_mean_colour(photo):
    result = pipeline.segment(photo, 3, progress=False)
    figure = utils.visualize(photo, result["labels"], result["means_rgb"])
    masks = [ax for ax in figure.axes if ax.get_title().startswith("component ")]
    assert len(masks) == 3
    background = utils.checkerboard(photo.shape[:2])
    for k, ax in enumerate(masks):
        shown = ax.get_images()[0].get_array()
        inside = result["labels"] == k
        np.testing.assert_allclose(shown[inside], photo[inside] / 255)
        np.testing.assert_allclose(shown[~inside], np.broadcast_to(background,
                                                                   photo.shape)[~inside])
        box = ax.title.get_bbox_patch().get_facecolor()[:3]
        np.testing.assert_allclose(box, result["means_rgb"][k] / 255, atol=1e-6)


@pytest.mark.parametrize("aspect", [0.2, 0.67, 1.5])
@pytest.mark.parametrize("ncomp", [1, 4, 12])
def test_panels_and_their_labels_neither_overlap_nor_leave_the_figure(aspect, ncomp):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(int(200 * aspect), 200, 3)).astype(np.uint8)
    labels = rng.integers(0, ncomp, size=image.shape[:2]).astype(np.uint8)
    history = list(-1.5 + 0.9 * (1 - np.exp(-np.arange(120) / 20)))  # 119 steps: long tick labels
    figure = utils.visualize(image, labels, rng.uniform(0, 255, (ncomp, 3)), history[60:],
                             title="photo: GMM, k = 12, log-likelihood -0.596 nats/pixel",
                             warm_up_history=history[:61])
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    renderer = FigureCanvasAgg(figure).get_renderer()
    figure.draw(renderer)
    # each panel with its title, tick labels and axis labels
    boxes = [ax.get_tightbbox(renderer) for ax in figure.axes]
    assert len(boxes) == 2 + ncomp + 1
    width, height = figure.bbox.width, figure.bbox.height
    for box in boxes:
        assert box.x0 >= 0 and box.y0 >= 0 and box.x1 <= width and box.y1 <= height, box
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            overlap_x = min(a.x1, b.x1) - max(a.x0, b.x0)
            overlap_y = min(a.y1, b.y1) - max(a.y0, b.y0)
            assert overlap_x <= 0 or overlap_y <= 0, (a, b)
    title = figure._suptitle.get_window_extent(renderer)
    assert title.y0 >= max(box.y1 for box in boxes) and title.x1 <= width


def test_a_light_component_stands_out_from_its_background():
    image = np.full((40, 40, 3), 250, np.uint8)
    image[:, :20] = 5
    figure = utils.visualize(image, (image[:, :, 0] > 100).astype(np.uint8),
                             np.array([[5, 5, 5], [250, 250, 250]]))
    light = next(ax for ax in figure.axes if ax.get_title().startswith("component 1"))
    shown = light.get_images()[0].get_array()
    # the white half is white, the rest at most the checkerboard's lighter grey
    assert shown[:, 20:].min() > 0.95 and shown[:, :20].max() <= 0.42


def test_title_states_the_k_fitted(cli, tmp_path):
    Image.fromarray(np.full((1, 1, 3), 90, np.uint8)).save(tmp_path / "dot.png")
    done = cli("--image", tmp_path / "dot.png", "--k", "4", "--out", tmp_path / "out")
    assert done.returncode == 0, done.stderr
    record = json.loads((tmp_path / "out" / "dot_k4.json").read_text())
    assert record["n_components"] == 1
    result = pipeline.segment(np.full((1, 1, 3), 90, np.uint8), 4, progress=False)
    record = sg.summary(result, "dot.png", 4, 0)
    figure = utils.visualize(np.full((1, 1, 3), 90, np.uint8), result["labels"],
                             result["means_rgb"])
    assert any(ax.get_title() == "1 component (mean colour)" for ax in figure.axes)


def test_non_latin_file_names_draw_without_missing_glyphs(tmp_path):
    image = np.zeros((8, 8, 3), np.uint8)
    image[:, 4:] = 200
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        figure = utils.visualize(image, (image[:, :, 0] > 0).astype(np.uint8),
                                 np.array([[0, 0, 0], [200, 200, 200]]), title="猫 $x$ k = 2",
                                 path=str(tmp_path / "f.png"))
    assert "\\u732b" in figure._suptitle.get_text()
    assert (tmp_path / "f.png").stat().st_size > 0


# --------------------------------------------------------------------------
# Output names that cannot collide
# --------------------------------------------------------------------------

def test_another_input_of_the_same_stem_is_refused(cli, photo, tmp_path):
    Image.fromarray(photo).save(tmp_path / "a.tif")
    Image.fromarray(photo[::-1]).save(tmp_path / "a.bmp")
    out = tmp_path / "out"
    assert cli("--image", tmp_path / "a.tif", "--k", "2", "--out", out).returncode == 0
    before = (out / "a_k2_labels.png").read_bytes()
    done = cli("--image", tmp_path / "a.bmp", "--k", "2", "--out", out)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "a.tif" in lines[0] and "--overwrite" in lines[0]
    assert (out / "a_k2_labels.png").read_bytes() == before
    # a rerun of the same input may replace its own results
    assert cli("--image", tmp_path / "a.tif", "--k", "2", "--out", out).returncode == 0
    assert cli("--image", tmp_path / "a.bmp", "--k", "2", "--out", out,
               "--overwrite").returncode == 0
    assert json.loads((out / "a_k2.json").read_text())["image"] == str(tmp_path / "a.bmp")


def test_a_clip_after_another_of_the_same_name_is_refused(cli, tmp_path):
    clip, _ = square_clip(frames=6)
    save_mp4(tmp_path / "shapes.mp4", clip)
    save_gif(tmp_path / "shapes.gif", clip[::-1])
    out = tmp_path / "out"
    assert cli("--video", tmp_path / "shapes.mp4", "--k", "3", "--out", out).returncode == 0
    done = cli("--video", tmp_path / "shapes.gif", "--k", "3", "--out", out)
    assert done.returncode == 2 and "shapes.mp4" in done.stderr
    assert not (out / "shapes_k3_segmented.gif").exists()


def test_sweeps_over_different_k_keep_their_own_files(cli, photo, tmp_path):
    Image.fromarray(photo).save(tmp_path / "p.png")
    out = tmp_path / "out"
    assert cli("--image", tmp_path / "p.png", "--k", "auto", "--k-max", "4",
               "--out", out).returncode == 0
    assert cli("--image", tmp_path / "p.png", "--k", "2", "4", "--out", out).returncode == 0
    assert {"p_sweep_k2-4.png", "p_sweep_k2_4.png"} <= set(os.listdir(out))
    assert outputs.sweep_name("p", [2, 3, 4]) != outputs.sweep_name("p", [2, 4])


def test_repeated_k_is_fitted_once(cli, photo, tmp_path):
    Image.fromarray(photo).save(tmp_path / "p.png")
    done = cli("--image", tmp_path / "p.png", "--k", "2", "2", "--out", tmp_path / "out")
    assert done.returncode == 0
    assert sum(line.startswith("k=2:") for line in done.stdout.splitlines()) == 1


# --------------------------------------------------------------------------
# One star rule, frames in order, video figure, the smaller items
# --------------------------------------------------------------------------

def test_the_sweep_stars_the_criterions_choice(cli, photo, tmp_path):
    Image.fromarray(photo).save(tmp_path / "p.png")
    for criterion in ("gain", "bic"):
        out = tmp_path / criterion
        assert cli("--image", tmp_path / "p.png", "--k", "2", "3", "4", "--k-criterion",
                   criterion, "--out", out).returncode == 0
        sweep = json.loads((out / "p_sweep_k2-4.json").read_text())
        records = [json.loads((out / f"p_k{k}.json").read_text()) for k in (2, 3, 4)]
        assert sweep["marked_k"] == selection.choose_k(records, criterion)["k"]
    done = subprocess.run([sys.executable, SCRIPT, "--help"], capture_output=True, text=True,
                          check=True)
    assert "stars it" in " ".join(done.stdout.split())


def test_frame_folders_are_read_in_natural_order(tmp_path):
    for n in range(1, 13):
        Image.fromarray(np.full((4, 4, 3), 10 * n, np.uint8)).save(tmp_path / f"frame{n}.png")
    _, frames = video_io.open_video(str(tmp_path))
    assert [int(frame[0, 0, 0]) // 10 for frame in frames] == list(range(1, 13))
    assert sorted(["f10", "f2", "f1"], key=video_io.natural_key) == ["f1", "f2", "f10"]


def test_a_video_gets_a_frames_figure(cli, tmp_path):
    clip, _ = square_clip()
    save_gif(tmp_path / "sq.gif", clip)
    done = cli("--video", tmp_path / "sq.gif", "--k", "3", "--out", tmp_path / "out")
    assert done.returncode == 0, done.stderr
    assert Image.open(tmp_path / "out" / "sq_k3_frames.png").width >= 600
    record = json.loads((tmp_path / "out" / "sq_k3.json").read_text())
    labels = read_labels(tmp_path / "out" / "sq_k3_labels.mkv")
    np.testing.assert_allclose(record["share"],
                               np.bincount(labels.ravel(), minlength=3) / labels.size)


def test_a_gif_records_the_rate_it_plays_at(cli, tmp_path):
    clip, _ = square_clip(frames=4)
    save_gif(tmp_path / "sq.gif", clip)
    done = cli("--video", tmp_path / "sq.gif", "--k", "2", "--fps", "1000",
               "--out", tmp_path / "out")
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "out" / "sq_k2.json").read_text())["fps"] == 100
    assert "100" in done.stderr and done.stderr.startswith("warning:")


@pytest.mark.parametrize("argv, words", [
    (["--fps", "10"], "--fps is for --video"),
    (["--preset", "veryfast"], "--preset is for --video"),
    (["--k-max", "6"], "--k-max is for --k auto"),
    (["--k-criterion", "bic"], "--k-criterion chooses among several k"),
    (["--image", os.path.join(ROOT, "images"), "--show"], "--show opens the figure of one image"),
])
def test_flags_that_do_not_apply_are_refused(cli, tmp_path, argv, words):
    done = cli(*argv, "--out", tmp_path / "out")
    assert done.returncode == 2 and words in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_a_clip_given_as_an_image_is_named(cli, tmp_path):
    clip, _ = square_clip(frames=4)
    save_mp4(tmp_path / "clip.mp4", clip)
    done = cli("--image", tmp_path / "clip.mp4", "--out", tmp_path / "out")
    assert done.returncode == 2 and "--video" in done.stderr


def test_an_animated_image_warns_that_one_frame_is_used(cli, tmp_path):
    clip, _ = square_clip(frames=5)
    save_gif(tmp_path / "anim.gif", clip)
    done = cli("--image", tmp_path / "anim.gif", "--k", "2", "--out", tmp_path / "out")
    assert done.returncode == 0
    assert "5 frames" in done.stderr and "--video" in done.stderr


def test_sweep_table_gives_scores_and_regions(cli, photo, tmp_path):
    Image.fromarray(photo).save(tmp_path / "p.png")
    truth = (photo[:, :, 2] > 120).astype(np.int32)
    np.save(tmp_path / "t.npy", truth)
    done = cli("--image", tmp_path / "p.png", "--k", "2", "3", "--truth", tmp_path / "t.npy",
               "--merge", "5", "--out", tmp_path / "out")
    assert done.returncode == 0, done.stderr
    header = next(line for line in done.stdout.splitlines() if line.startswith("| k |"))
    assert "PRI" in header and "VoI (bits)" in header and "regions" in header
    record = json.loads((tmp_path / "out" / "p_k2.json").read_text())
    assert f"{record['n_regions']} regions" in done.stdout


# --------------------------------------------------------------------------
# The default run leaves a checkout clean
# --------------------------------------------------------------------------

def test_the_default_run_leaves_git_status_clean(tmp_path, monkeypatch):
    if shutil.which("git") is None or not os.path.isdir(os.path.join(ROOT, ".git")):
        pytest.skip("not a git checkout")
    tracked = subprocess.run(["git", "ls-files", "results", "images", ".gitignore"], cwd=ROOT,
                             capture_output=True, text=True, check=True).stdout.split()
    for name in tracked:
        os.makedirs(tmp_path / os.path.dirname(name), exist_ok=True)
        shutil.copy(os.path.join(ROOT, name), tmp_path / name)
    for command in (["init", "-q"], ["add", "-A"],
                    ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"]):
        subprocess.run(["git", *command], cwd=tmp_path, check=True)
    # The default run, as README's first command does it in the project's folder.
    monkeypatch.chdir(tmp_path)
    assert command_line.main(["--image", os.path.join("images", "chelsea.png")]) == 0
    status = subprocess.run(["git", "status", "--porcelain"], cwd=tmp_path,
                            capture_output=True, text=True, check=True).stdout
    assert status == "", status
    record = json.loads((tmp_path / "results" / "chelsea_k4.json").read_text())
    assert record["image"] == os.path.join("images", "chelsea.png")


def test_a_killed_runs_temporaries_are_removed_by_the_next_run(tmp_path):
    import socket

    from gmmseg import outputs

    out = tmp_path / "out"
    out.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    host = socket.gethostname()
    stale = out / f".tmp-{host}-{dead.stdout.strip()}-abc123_x.png"
    live = out / f".tmp-{host}-{os.getpid()}-def456.npy"  # this process's: still writing
    elsewhere = out / f".tmp-other-host-{dead.stdout.strip()}-ghi789.mp4"
    mine = out / ".tmp-notes.txt"  # no temporary's name: the user's own
    for path in (stale, live, elsewhere, mine):
        path.write_bytes(b"half a file")
    assert utils.temporary_prefix() == f".tmp-{host}-{os.getpid()}-"
    outputs.prepare_out(str(out))
    assert sorted(p.name for p in out.iterdir()) == sorted(
        p.name for p in (live, elsewhere, mine))


def test_kill_9_while_writing_then_a_rerun_leaves_one_clean_run(tmp_path):
    import signal
    import time

    image = tmp_path / "big.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (1200, 1600, 3), dtype=np.uint8)).save(image)
    out = tmp_path / "out"
    argv = [sys.executable, SCRIPT, "--image", str(image), "--k", "3", "--iters", "3",
            "--out", str(out)]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline, writing = time.monotonic() + 120, False
    while not writing and proc.poll() is None and time.monotonic() < deadline:
        writing = out.is_dir() and any(p.name.startswith(".tmp-") for p in out.iterdir())
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)  # while it writes: its temporary stays behind
    proc.wait()
    assert writing, "the run ended before it was seen writing"
    assert subprocess.run(argv, capture_output=True, check=False).returncode == 0
    assert sorted(p.name for p in out.iterdir()) == ["big_k3.json", "big_k3_labels.png",
                                                     "big_k3_segmentation.png"]


@pytest.mark.parametrize("same", [False, True])
def test_two_runs_started_together_into_one_out_never_mix_their_files(tmp_path, same):
    rng = np.random.default_rng(1)
    for folder in ("da", "db"):
        (tmp_path / folder).mkdir()
        image = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
        Image.fromarray(image).save(tmp_path / folder / "x.png")
    if same:
        shutil.copy(tmp_path / "da" / "x.png", tmp_path / "db" / "x.png")
    for attempt in range(4):  # the race, several times over
        out = tmp_path / f"out{attempt}"
        runs = [subprocess.Popen([sys.executable, SCRIPT, "--image", str(tmp_path / f / "x.png"),
                                  "--k", "2", "--out", str(out)], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE, text=True) for f in ("da", "db")]
        done = [(run.wait(timeout=300), run.stderr.read()) for run in runs]
        codes = sorted(code for code, _ in done)
        assert codes == ([0, 0] if same else [0, 2]), done
        for code, err in done:
            if code == 2:
                assert len(err.strip().splitlines()) == 1 and "another input" in err, err
        record = json.loads((out / "x_k2.json").read_text())
        winner = next(tmp_path / f / "x.png" for f in ("da", "db")
                      if record["image"] == str(tmp_path / f / "x.png"))
        labels = np.asarray(Image.open(out / "x_k2_labels.png"))
        np.testing.assert_array_equal(labels, sg.segment(utils.load_image(winner), 2,
                                                         progress=False)["labels"])
        assert sorted(p.name for p in out.iterdir()) == ["x_k2.json", "x_k2_labels.png",
                                                         "x_k2_segmentation.png"]
