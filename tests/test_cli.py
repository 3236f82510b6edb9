"""The command line as a user runs it: outputs, odd images, bad input."""

import json
import struct
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture


def two_tone(tmp_path, name="two.png", size=(30, 40)):
    """Left half dark red, right half light blue, with noise: two clear clusters."""
    rng = np.random.default_rng(0)
    h, w = size
    image = np.zeros((h, w, 3))
    image[:, : w // 2] = [150, 30, 30]
    image[:, w // 2:] = [90, 160, 220]
    image += rng.normal(0, 6, image.shape)
    path = tmp_path / name
    Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(path)
    return path


def test_writes_three_files_headless(cli, tmp_path):
    path = two_tone(tmp_path)
    done = cli("--image", path, "--k", "2", "3", "--out", tmp_path / "res")
    assert done.returncode == 0, done.stderr
    for k in (2, 3):
        base = tmp_path / "res" / f"two_k{k}"
        labels = np.asarray(Image.open(f"{base}_labels.png"))
        assert labels.shape == (30, 40) and labels.dtype == np.uint8
        assert set(np.unique(labels)) <= set(range(k))
        figure = Image.open(f"{base}_segmentation.png")
        assert figure.width >= 600
        record = json.loads((tmp_path / "res" / f"two_k{k}.json").read_text())
        assert record["k"] == k and record["n_pixels"] == 1200
        assert len(record["log_likelihood_history"]) == record["iterations"] + 1
        assert np.isclose(np.sum(record["weights"]), 1.0)
    labels = np.asarray(Image.open(tmp_path / "res" / "two_k2_labels.png"))
    # the two halves are the two clusters
    assert len(np.unique(labels[:, :20])) == 1 and len(np.unique(labels[:, 20:])) == 1
    assert labels[0, 0] != labels[0, -1]


def test_record_matches_sklearn_for_its_parameters(cli, tmp_path):
    path = two_tone(tmp_path)
    done = cli("--image", path, "--k", "3", "--out", tmp_path)
    assert done.returncode == 0, done.stderr
    record = json.loads((tmp_path / "two_k3.json").read_text())
    pixels = np.asarray(Image.open(path)).reshape(-1, 3).astype(float)
    x = (pixels - pixels.mean(0)) / pixels.std(0)
    # scikit-learn's mixture at the record's parameters, built by fit from the inits
    # (BaseMixture.fit_predict in scikit-learn 1.9.1). With all three *_init given, no
    # k-means or random start runs and fit starts at the inits (precisions
    # inv(covariances)). max_iter=1 runs one E-step under them (its mean log-likelihood
    # per pixel becomes lower_bound_), one M-step (kept) and a final E-step; it never
    # counts as converged, so the ConvergenceWarning is silenced here. Refitting with
    # max_iter=0 starts again from the inits and runs no EM step, so score, bic, aic and
    # predict then see the record's parameters. max_iter=0 alone raises AttributeError:
    # it reads covariances_, which starting from precisions_init never sets. So the
    # one-step fit must come first, and its covariances_ stays behind; none of the calls
    # below read it.
    reference = GaussianMixture(3, covariance_type="full", max_iter=1, tol=0,
                                weights_init=np.array(record["weights"]),
                                means_init=np.array(record["means"]),
                                precisions_init=np.linalg.inv(record["covariances"]),
                                init_params="random_from_data", random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reference.fit(x)
    assert record["log_likelihood"] == pytest.approx(reference.lower_bound_, rel=1e-9)
    reference.set_params(max_iter=0).fit(x)
    assert reference.n_iter_ == 0
    np.testing.assert_array_equal(reference.weights_, record["weights"])
    np.testing.assert_array_equal(reference.means_, record["means"])
    assert record["log_likelihood"] == pytest.approx(reference.score(x), rel=1e-9)
    assert record["bic"] == pytest.approx(reference.bic(x), rel=1e-9)
    assert record["aic"] == pytest.approx(reference.aic(x), rel=1e-9)
    np.testing.assert_allclose(np.array(record["means_rgb"]),
                               np.array(record["means"]) * pixels.std(0) + pixels.mean(0))
    labels = np.asarray(Image.open(tmp_path / "two_k3_labels.png")).ravel()
    np.testing.assert_array_equal(labels, reference.predict(x))


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "I;16", "CMYK", "1"])
def test_odd_images_give_finite_results(cli, tmp_path, mode):
    base = Image.open(two_tone(tmp_path))
    img = base.quantize(16) if mode == "P" else base.convert(
        "I;16" if mode == "I;16" else mode)
    name = "odd.jpg" if mode == "CMYK" else "odd.png"
    img.save(tmp_path / name)
    done = cli("--image", tmp_path / name, "--k", "2", "--out", tmp_path)
    assert done.returncode == 0, done.stderr
    record = json.loads((tmp_path / "odd_k2.json").read_text())
    assert np.isfinite(record["log_likelihood"])
    labels = np.asarray(Image.open(tmp_path / "odd_k2_labels.png"))
    assert labels.shape == (30, 40)


def test_k_above_distinct_colours_warns_and_stays_finite(cli, tmp_path):
    image = np.zeros((10, 10, 3), np.uint8)
    image[:, 5:] = [200, 100, 0]
    Image.fromarray(image).save(tmp_path / "flat.png")
    done = cli("--image", tmp_path / "flat.png", "--k", "4", "--out", tmp_path)
    assert done.returncode == 0, done.stderr
    assert "warning: the image has only 2 distinct colour" in done.stderr
    record = json.loads((tmp_path / "flat_k4.json").read_text())
    assert record["k"] == 4 and record["n_components"] == 2
    assert np.isfinite(record["log_likelihood"]) and np.all(np.isfinite(record["means"]))
    labels = np.asarray(Image.open(tmp_path / "flat_k4_labels.png"))
    assert labels[0, 0] != labels[0, 9] and len(np.unique(labels)) == 2


def test_constant_image(cli, tmp_path):
    Image.new("RGB", (8, 6), (10, 20, 30)).save(tmp_path / "const.png")
    done = cli("--image", tmp_path / "const.png", "--k", "3", "--out", tmp_path)
    assert done.returncode == 0, done.stderr
    record = json.loads((tmp_path / "const_k3.json").read_text())
    assert record["n_components"] == 1 and np.isfinite(record["log_likelihood"])
    np.testing.assert_allclose(record["means_rgb"], [[10, 20, 30]])


def test_k_auto_stops_at_the_colours_an_image_has(cli, tmp_path):
    Image.new("RGB", (8, 6), (10, 20, 30)).save(tmp_path / "const.png")
    done = cli("--image", tmp_path / "const.png", "--k", "auto", "--out", tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("warning:") == 1
    record = json.loads((tmp_path / "const_k2.json").read_text())
    assert record["n_components"] == 1 and record["selection"]["k"] == [2]
    np.testing.assert_allclose(record["means_rgb"], [[10, 20, 30]])


def bomb_png(path, side=20000):
    """A valid PNG header claiming side x side pixels: over Pillow's safety limit."""
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
                     + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))
    return path


def bad_inputs(tmp_path):
    good = two_tone(tmp_path)
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("not an image\n")
    jpeg = tmp_path / "whole.jpg"
    Image.open(good).resize((300, 200)).save(jpeg, quality=90)
    (tmp_path / "cut.jpg").write_bytes(jpeg.read_bytes()[: jpeg.stat().st_size // 2])
    bomb_png(tmp_path / "bomb.png")
    (tmp_path / "afile").write_text("x")
    return {
        "missing": ["--image", tmp_path / "nope.png"],
        # A folder is a batch of its images (docs/batch.md); one with none is refused.
        "directory": ["--image", empty_folder(tmp_path)],
        "empty": ["--image", tmp_path / "empty.png"],
        "not an image": ["--image", tmp_path / "notes.txt"],
        "truncated": ["--image", tmp_path / "cut.jpg"],
        "bomb": ["--image", tmp_path / "bomb.png"],
        "k zero": ["--image", good, "--k", "0"],
        "k word": ["--image", good, "--k", "four"],
        "iters zero": ["--image", good, "--iters", "0"],
        "out is a file": ["--image", good, "--out", tmp_path / "afile"],
        "bad tol": ["--image", good, "--tol", "-1"],
        "auto with a number": ["--image", good, "--k", "auto", "3"],
        "auto k-max 1": ["--image", good, "--k", "auto", "--k-max", "1"],
        "auto for a video": ["--video", good, "--k", "auto"],
    }


def empty_folder(tmp_path):
    folder = tmp_path / "no images"
    folder.mkdir(exist_ok=True)
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_bad_input_one_line_exit_2(cli, tmp_path):
    for case, args in bad_inputs(tmp_path).items():
        done = cli(*args, "--out", tmp_path / "res") if "--out" not in args else cli(*args)
        assert done.returncode == 2, (case, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, (case, done.stderr)
        assert "Traceback" not in done.stderr and "error" in lines[0], (case, lines)
    assert not (tmp_path / "res").exists() or not any((tmp_path / "res").iterdir())


def test_import_has_no_side_effects(tmp_path):
    import subprocess
    import sys

    from conftest import ROOT
    code = ("import sys; sys.argv = ['x', '--k', 'nonsense']; "
            "import segmentation_GMM, utils; "
            "print(sorted(m for m in ('matplotlib', 'matplotlib.pyplot') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], check=False, cwd=tmp_path,
                          capture_output=True,
                          text=True, env={"PYTHONPATH": ROOT, "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    assert list(tmp_path.iterdir()) == []


def three_blobs(tmp_path, size=(60, 60)):
    """Three bands of Gaussian colour noise around well-separated means: a true 3-mixture."""
    rng = np.random.default_rng(1)
    h, w = size
    means = np.array([[60, 60, 160], [200, 80, 40], [90, 190, 90]], float)
    truth = np.repeat(np.arange(3), h * w // 3)
    pixels = means[truth] + rng.normal(0, 12, (h * w, 3))
    path = tmp_path / "blobs.png"
    Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8).reshape(h, w, 3)).save(path)
    return path


def test_sweep_writes_figure_and_table(cli, tmp_path):
    done = cli("--image", three_blobs(tmp_path), "--k", "2", "3", "4", "--out", tmp_path)
    assert done.returncode == 0, done.stderr
    assert Image.open(tmp_path / "blobs_sweep_k2-4.png").width >= 600
    sweep = json.loads((tmp_path / "blobs_sweep_k2-4.json").read_text())
    assert [fit["k"] for fit in sweep["fits"]] == [2, 3, 4]
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ")][1:]
    assert [int(row.split("|")[1]) for row in rows] == [2, 3, 4]
    for row in rows:
        k, _, bic = (cell.strip() for cell in row.split("|")[1:4])
        record = json.loads((tmp_path / f"blobs_k{k}.json").read_text())
        assert float(bic) == pytest.approx(record["bic"], rel=1e-5)


def test_k_auto_keeps_the_lowest_bic(cli, tmp_path):
    path = three_blobs(tmp_path)
    done = cli("--image", path, "--k", "auto", "--k-max", "5", "--k-criterion", "bic",
               "--out", tmp_path)
    assert done.returncode == 0, done.stderr
    # The independent reference: scikit-learn's own BIC over the same K.
    pixels = np.asarray(Image.open(path)).reshape(-1, 3).astype(float)
    x = (pixels - pixels.mean(0)) / pixels.std(0)
    bics = {k: GaussianMixture(k, n_init=3, random_state=0).fit(x).bic(x) for k in range(2, 6)}
    assert min(bics, key=bics.get) == 3
    assert "kept k=3" in done.stdout
    record = json.loads((tmp_path / "blobs_k3.json").read_text())
    assert record["selection"]["k"] == [2, 3, 4, 5]
    assert record["selection"]["bic"][1] == pytest.approx(bics[3], rel=1e-3)
    assert sorted(p.name for p in tmp_path.glob("blobs_*")) == [
        "blobs_k3.json", "blobs_k3_labels.png", "blobs_k3_segmentation.png",
        "blobs_sweep_k2-5.json", "blobs_sweep_k2-5.png"]
