"""One checked entry: arrays of any usual shape, every parameter refused with one line.

The same checks serve Python callers (``gmmseg.segment`` raises ``ValueError``
naming the parameter) and the command line (one line on stderr, exit 2).
"""

import errno
import json
import os

import numpy as np
import pytest
from PIL import Image

import gmmseg
import segmentation_GMM as sg
from gmmseg import cli as command_line
from gmmseg import outputs, params


@pytest.fixture
def two_colours():
    rng = np.random.default_rng(0)
    image = np.zeros((40, 60, 3), np.uint8)
    image[:, 30:] = (200, 180, 40)
    image[:, :30] = (30, 60, 160)
    return np.clip(image + rng.normal(0, 6, image.shape), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------
# Arrays as a notebook user has them
# --------------------------------------------------------------------------

def test_two_dimensional_grey_array_is_one_channel(two_colours):
    grey = two_colours[:, :, 0]
    result = gmmseg.segment(grey, 2, progress=False)
    reference = gmmseg.segment(grey[:, :, None], 2, progress=False)
    assert result["labels"].shape == grey.shape
    assert result["gmm"].mus.shape == (2, 1)
    np.testing.assert_array_equal(result["labels"], reference["labels"])


def test_rgba_array_is_fitted_on_its_colours_as_the_cli_does(two_colours, tmp_path):
    alpha = np.random.default_rng(1).integers(0, 256, two_colours.shape[:2], dtype=np.uint8)
    rgba = np.dstack([two_colours, alpha])
    from_array = gmmseg.segment(rgba, 2, progress=False)
    assert from_array["gmm"].mus.shape == (2, 3)
    np.testing.assert_array_equal(from_array["labels"],
                                  gmmseg.segment(two_colours, 2, progress=False)["labels"])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    assert command_line.main(["--image", str(tmp_path / "a.png"), "--k", "2",
                     "--out", str(tmp_path / "out")]) == 0
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "out" / "a_k2_labels.png")),
                                  from_array["labels"])


def test_a_path_and_the_array_it_holds_give_the_same_labels(two_colours, tmp_path):
    Image.fromarray(two_colours).save(tmp_path / "b.png")
    np.testing.assert_array_equal(
        gmmseg.segment(str(tmp_path / "b.png"), 2, progress=False)["labels"],
        gmmseg.segment(two_colours, 2, progress=False)["labels"])


def test_the_lab_main_and_the_cli_write_the_same_files(tmp_path):
    record = sg.main(sg.DEFAULT_IMAGE, 3, out=str(tmp_path / "lab"), progress=False)
    assert command_line.main(["--k", "3", "--out", str(tmp_path / "cli")]) == 0
    for name in ("chelsea_k3_labels.png",):
        assert (tmp_path / "lab" / name).read_bytes() == (tmp_path / "cli" / name).read_bytes()
    from_cli = json.loads((tmp_path / "cli" / "chelsea_k3.json").read_text())
    for field in ("log_likelihood_history", "means", "covariances", "weights", "bic"):
        assert from_cli[field] == record[field]


def test_help_names_the_entry():
    assert "gmmseg.segment(" in sg.__doc__
    assert "segment" in gmmseg.__all__ and "gmmseg.segment(" in gmmseg.__doc__


# --------------------------------------------------------------------------
# Every parameter checked, in Python, naming it
# --------------------------------------------------------------------------

BAD = {
    "n_components 0": ({"n_components": 0}, "n_components"),
    "n_components 257": ({"n_components": 257}, "n_components"),
    "n_components float": ({"n_components": 2.5}, "n_components"),
    "n_components bool": ({"n_components": True}, "n_components"),
    "max_iter 0": ({"max_iter": 0}, "max_iter"),
    "max_iter 1e20": ({"max_iter": 10**20}, "max_iter"),
    "tol 0": ({"tol": 0.0}, "tol"),
    "tol nan": ({"tol": float("nan")}, "tol"),
    "random_state -1": ({"random_state": -1}, "random_state"),
    "random_state 2**32": ({"random_state": 2**32}, "random_state"),
    "color_space": ({"color_space": "hsv"}, "color_space"),
    "spatial -1": ({"spatial": -1.0}, "spatial"),
    "spatial 300": ({"spatial": 300.0}, "spatial"),
    "spatial inf": ({"spatial": float("inf")}, "spatial"),
    "smooth beyond the image": ({"smooth": 1e6}, "smooth"),
    "min_region -1": ({"min_region": -1}, "min_region"),
    "min_region beyond the image": ({"min_region": 40 * 60 + 1}, "min_region"),
    "merge -1": ({"merge": -1.0}, "merge"),
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_segment_refuses_each_bad_parameter_by_name(two_colours, case):
    kwargs, name = BAD[case]
    kwargs = {"n_components": 2, **kwargs}
    with pytest.raises(ValueError, match=rf"^{name} ") as caught:
        gmmseg.segment(two_colours, progress=False, **kwargs)
    assert "--" not in str(caught.value)  # the library's words, not the command line's
    assert name in getattr(caught.value, "parameters", ())


@pytest.mark.parametrize("image", [np.zeros((0, 4, 3), np.uint8), np.zeros(5, np.uint8),
                                   np.zeros((2, 3, 4, 3, 2), np.uint8),
                                   np.array([[1.0, np.nan]]), np.array([["a", "b"]])])
def test_segment_refuses_arrays_that_are_no_image(image):
    with pytest.raises(ValueError, match="image"):
        gmmseg.segment(image, 2, progress=False)


def test_the_bounds_themselves_are_accepted(two_colours):
    h, w = two_colours.shape[:2]
    result = gmmseg.segment(two_colours, 2, max_iter=params.MAX_ITER, random_state=params.MAX_SEED,
                            spatial=params.SPATIAL_MAX, smooth=min(h, w) / 4, progress=False)
    assert np.isfinite(result["gmm"].log_likelihood_history[-1])


def test_spatial_at_its_bound_fits_flat_colours():
    # Flat colours are the worst case for the covariance: each component
    # collapses onto one colour while the position spreads over the image.
    image = np.zeros((64, 96, 3), np.uint8)
    image[:, 48:] = 200
    image[20:40, 10:30] = (10, 200, 30)
    result = gmmseg.segment(image, 4, spatial=params.SPATIAL_MAX, progress=False)
    assert np.isfinite(result["gmm"].covs).all()
    assert len(np.unique(result["labels"])) >= 3


def test_k_auto_bounds_k_max(tmp_path):
    with pytest.raises(ValueError, match=r"^k_max must be from 2 to 32, not 256"):
        gmmseg.segment_file(sg.DEFAULT_IMAGE, "auto", k_max=256, out=str(tmp_path))
    assert not os.listdir(tmp_path)


def test_video_entry_checks_its_parameters(tmp_path):
    with pytest.raises(ValueError, match=r"^random_state must be"):
        gmmseg.segment_video(str(tmp_path / "none.mp4"), 2, random_state=-1)
    with pytest.raises(ValueError, match=r"^fps must be"):
        gmmseg.segment_video(str(tmp_path / "none.mp4"), 2, fps=0)


# --------------------------------------------------------------------------
# The same refusals from the command line: one line, exit 2, before any work
# --------------------------------------------------------------------------

CLI_BAD = {
    "seed -1": (["--seed", "-1"], "--seed"),
    "seed 2**32": (["--seed", "4294967296"], "--seed"),
    "spatial 300": (["--spatial", "300"], "--spatial"),
    "iters 1e20": (["--iters", "100000000000000000000"], "--iters"),
    "smooth 1e6": (["--smooth", "1e6"], "--smooth"),
    "k-max 256": (["--k", "auto", "--k-max", "256"], "--k-max"),
    "k auto with a number": (["--k", "auto", "4"], "--k"),
    "tol inf": (["--tol", "inf"], "--tol"),
}


@pytest.mark.parametrize("case", CLI_BAD, ids=list(CLI_BAD))
def test_cli_refuses_in_one_line(cli, tmp_path, case):
    argv, flag = CLI_BAD[case]
    done = cli(*argv, "--out", tmp_path / "out")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and flag in lines[0], done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists() or not os.listdir(tmp_path / "out")


def test_unwritable_out_is_refused_before_fitting(monkeypatch, tmp_path, capsys):
    def no_write(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    def no_fit(*args, **kwargs):
        raise AssertionError("fitted although the folder cannot take the results")

    monkeypatch.setattr(outputs.tempfile, "TemporaryFile", no_write)
    monkeypatch.setattr(sg, "fit_colours", no_fit)
    assert command_line.main(["--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--out" in err[0] and "Permission denied" in err[0]


def test_a_full_disk_is_one_line_and_leaves_the_old_file(monkeypatch, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "chelsea_k2_labels.png").write_bytes(b"the user's earlier result")

    def disk_full(self, fp, *args, **kwargs):
        with open(fp, "wb") as f:
            f.write(b"half a PNG")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", disk_full)
    assert command_line.main(["--k", "2", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "No space left on device" in err[0]
    assert sorted(os.listdir(out)) == ["chelsea_k2_labels.png"]
    assert (out / "chelsea_k2_labels.png").read_bytes() == b"the user's earlier result"


@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_a_photo_given_as_truth_is_refused(cli, tmp_path, two_colours, mode):
    Image.fromarray(two_colours).save(tmp_path / "image.png")
    rng = np.random.default_rng(2)
    photo = rng.integers(0, 256, two_colours.shape, dtype=np.uint8)
    Image.fromarray(photo).convert(mode).save(tmp_path / "photo.png")
    done = cli("--image", tmp_path / "image.png", "--truth", tmp_path / "photo.png",
               "--out", tmp_path / "out")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "--truth" in lines[0] and "label map" in lines[0], done.stderr


@pytest.mark.parametrize("message, said", [
    ("/tmp/run/out: another run is writing there; give out another folder",
     "/tmp/run/out: another run is writing there; give --out another folder"),
    ("C:\\runs\\out and run.out are files; out must be a folder",
     "C:\\runs\\out and run.out are files; --out must be a folder"),
    ("out must be a folder.", "--out must be a folder."),
])
def test_the_command_line_names_a_parameter_as_its_flag_but_not_inside_a_path(message, said):
    from gmmseg.cli import describe
    from gmmseg.params import ParameterError

    assert describe(ParameterError("out", message)) == said
