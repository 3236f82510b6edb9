"""A model you can keep and apply: fit, save, load, segment; pooled fits; typed options.

References: the fit on one image (``gmmseg.segment``), the same images stacked
into one, NumPy's ``np.unique`` for pooled colour counts, SHA-256 of the file.
"""

import dataclasses
import hashlib
import json
import os

import numpy as np
import pytest
from conftest import ROOT
from PIL import Image
from test_batch import make_images
from test_video import save_gif, square_clip

import gmmseg
import segmentation_GMM as sg
import utils
from gmmseg import batch, pipeline
from gmmseg import cli as command_line
from gmmseg import model as model_module
from gmmseg.options import Options
from gmmseg.video_io import read_labels

IMAGES = os.path.join(ROOT, "images")


@pytest.fixture(scope="module")
def coffee():
    return utils.load_image(os.path.join(IMAGES, "coffee.png"))[::2, ::2]


@pytest.fixture(scope="module")
def chelsea():
    return utils.load_image(os.path.join(IMAGES, "chelsea.png"))[::2, ::2]


# --------------------------------------------------------------------------
# fit, save, load, segment
# --------------------------------------------------------------------------

@pytest.mark.parametrize("options", [{}, {"color_space": "lab", "smooth": 2.0, "min_region": 30},
                                     {"spatial": 0.5}, {"n_regions": 5}])
def test_a_saved_and_loaded_model_labels_its_image_as_segment_does(coffee, tmp_path, options):
    reference = gmmseg.segment(coffee, 4, progress=False, **options)
    model = gmmseg.fit(coffee, 4, progress=False, **options)
    model.save(tmp_path / "m.json")
    loaded = gmmseg.load_model(tmp_path / "m.json")
    for mixture in (model, loaded):
        again = mixture.segment(coffee)
        np.testing.assert_array_equal(again.labels, reference.labels)
        for name in ("regions", "fine", "merges"):
            expected, got = getattr(reference, name), getattr(again, name)
            assert (expected is None) == (got is None)
            if expected is not None:
                np.testing.assert_array_equal(got, expected)
    for name in ("mus", "covs", "priors"):  # the JSON round trip keeps every bit
        np.testing.assert_array_equal(getattr(loaded.gmm, name), getattr(model.gmm, name))
    assert loaded.options == model.options == Options(**options)
    if not options:  # on colour alone the image's log-likelihood is the fit's last
        assert loaded.segment(coffee).log_likelihood == pytest.approx(
            reference.log_likelihood, abs=1e-12)


def test_a_model_labels_another_image_without_refitting(coffee, chelsea, monkeypatch):
    model = gmmseg.fit(coffee, 3, progress=False)
    expected = model.gmm.inference(sg.zscore_colours(
        *sg.distinct_colours(chelsea)[:2], None, model.mean, model.std)[0])[0]

    def no_fit(*args, **kwargs):
        raise AssertionError("EM ran on an image a model labels")

    monkeypatch.setattr(sg.GMM, "fit", no_fit)
    monkeypatch.setattr(sg, "kmeans", no_fit)
    result = model.segment(chelsea)
    colours, _, inverse = sg.distinct_colours(chelsea)
    np.testing.assert_array_equal(result.labels.ravel(), np.argmax(expected, axis=1)[inverse])
    assert result.converged is None and not result.fitted
    assert result.warm_up_history == [] and len(result.log_likelihood_history) == 1
    assert result.model is model


def test_fields_that_do_not_apply_are_none(coffee):
    plain = gmmseg.segment(coffee, 3, progress=False)
    assert plain.regions is None and plain.fine is None and plain.merges is None
    assert plain["regions"] is None and plain["gmm"] is plain.model.gmm
    regions = gmmseg.segment(coffee, 3, min_region=50, progress=False)
    assert regions.regions.shape == coffee.shape[:2] and regions.merges is None
    with pytest.raises(KeyError):
        plain["no such field"]


# --------------------------------------------------------------------------
# Pooled fits
# --------------------------------------------------------------------------

def test_a_pooled_fit_equals_the_fit_of_the_images_stacked_into_one(coffee, chelsea):
    stacked = np.concatenate([coffee.reshape(-1, 1, 3), chelsea.reshape(-1, 1, 3)])
    reference = gmmseg.segment(stacked, 5, progress=False)
    model = gmmseg.fit([coffee, chelsea], 5, progress=False)
    labels = np.concatenate([model.segment(image).labels.ravel() for image in (coffee, chelsea)])
    np.testing.assert_array_equal(labels, reference.labels.ravel())
    assert model.gmm.log_likelihood_history[-1] == pytest.approx(
        reference.log_likelihood, abs=1e-9)
    assert model.n_pixels == stacked.shape[0] and model.n_images == 2


def test_pooled_colours_are_numpys_unique_of_all_pixels(coffee, chelsea):
    counted = [sg.distinct_colours(image)[:2] for image in (coffee, chelsea)]
    colours, counts = model_module.pool_colours(counted)
    pixels = np.concatenate([coffee.reshape(-1, 3), chelsea.reshape(-1, 3)])
    expected, expected_counts = np.unique(pixels, axis=0, return_counts=True)
    np.testing.assert_array_equal(colours, expected)
    np.testing.assert_array_equal(counts, expected_counts)


@pytest.mark.parametrize("images, words", [
    ([], "images is empty"),
    ("grey and colour", "1-channel uint8 and 3-channel uint8"),
    ("spatial", "spatial needs one image"),
])
def test_pooled_fits_refuse_what_cannot_be_pooled(coffee, images, words):
    options = {}
    if images == "grey and colour":
        images = [coffee[:, :, :1], coffee]
    elif images == "spatial":
        images, options = [coffee, coffee], {"spatial": 0.5}
    with pytest.raises(ValueError, match=words) as caught:
        gmmseg.fit(images, 3, progress=False, **options)
    assert "--" not in str(caught.value)


# --------------------------------------------------------------------------
# Model files: one clear error for anything that is not a model for this image
# --------------------------------------------------------------------------

def _model_text(tmp_path, coffee, change=None):
    data = gmmseg.fit(coffee, 2, progress=False).to_dict()
    if change:
        change(data)
    return json.dumps(data)


def _drop_priors(data):
    del data["priors"]


def _newer(data):
    data["version"] = 99


def _nan_mean(data):
    data["mus"][0][0] = float("nan")


def _not_positive_definite(data):
    data["covs"][0] = [[1.0, 2.0, 0.0], [2.0, 1.0, 0.0], [0.0, 0.0, 1.0]]


def _unknown_option(data):
    data["options"]["blur"] = 3


CORRUPT = {
    "empty": (lambda t, c: "", "not a gmmseg model"),
    "bytes": (lambda t, c: "\x00\xff\x12 not json", "not a gmmseg model"),
    "a list": (lambda t, c: "[1, 2]", "format is not"),
    "a record": (lambda t, c: json.dumps({"image": "a.png", "k": 4}), "format is not"),
    "no priors": (lambda t, c: _model_text(t, c, _drop_priors), "no field 'priors'"),
    "newer": (lambda t, c: _model_text(t, c, _newer), "newer than this gmmseg reads"),
    "nan": (lambda t, c: _model_text(t, c, _nan_mean), "NaN"),
    "not positive definite": (lambda t, c: _model_text(t, c, _not_positive_definite),
                              "positive definite"),
    "unknown option": (lambda t, c: _model_text(t, c, _unknown_option), "blur"),
}


@pytest.mark.parametrize("case", CORRUPT, ids=list(CORRUPT))
def test_a_corrupt_or_foreign_model_file_is_one_clear_error(case, coffee, tmp_path, capsys):
    make, words = CORRUPT[case]
    path = tmp_path / "m.json"
    path.write_text(make(tmp_path, coffee))
    with pytest.raises(ValueError, match=words):
        gmmseg.load_model(path)
    Image.fromarray(coffee).save(tmp_path / "c.png")
    code = command_line.main(["--image", str(tmp_path / "c.png"), "--model", str(path),
                              "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and words in err[0] and str(path) in err[0], err
    assert not (tmp_path / "out").exists() or not os.listdir(tmp_path / "out")


def test_a_model_for_other_channels_or_colour_space_is_refused(coffee, tmp_path, capsys):
    grey = gmmseg.fit(coffee[:, :, :1], 2, progress=False)
    with pytest.raises(ValueError, match="image has 3 channels; the model was fitted on "
                                         "1-channel images"):
        grey.segment(coffee)
    rgb = gmmseg.fit(coffee, 2, progress=False)
    with pytest.raises(ValueError, match=r"^color_space is fixed by the model's fit"):
        rgb.segment(coffee, color_space="lab")
    rgb.save(tmp_path / "rgb.json")
    Image.fromarray(coffee).save(tmp_path / "c.png")
    code = command_line.main(["--image", str(tmp_path / "c.png"), "--model",
                              str(tmp_path / "rgb.json"), "--color-space", "lab",
                              "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: --color-space 'lab'"), err


# --------------------------------------------------------------------------
# The command line: --save-model, --model, --shared-model, --video --model
# --------------------------------------------------------------------------

def test_cli_model_labels_a_new_image_with_no_em_step(tmp_path, monkeypatch, capsys):
    coffee_path, chelsea_path = (os.path.join(IMAGES, f"{n}.png") for n in ("coffee", "chelsea"))
    model_path = str(tmp_path / "coffee.json")
    assert command_line.main(["--image", coffee_path, "--k", "3", "--save-model", model_path,
                              "--out", str(tmp_path / "a")]) == 0
    fitted = json.loads((tmp_path / "a" / "coffee_k3.json").read_text())
    model = gmmseg.load_model(model_path)
    assert fitted["means"] == model.gmm.mus.tolist()

    def no_fit(*args, **kwargs):
        raise AssertionError("EM ran although --model was given")

    monkeypatch.setattr(sg.GMM, "fit", no_fit)
    monkeypatch.setattr(sg, "kmeans", no_fit)
    assert command_line.main(["--image", chelsea_path, "--model", model_path,
                              "--out", str(tmp_path / "b")]) == 0
    record = json.loads((tmp_path / "b" / "chelsea_k3.json").read_text())
    assert record["iterations"] == 0 and record["warm_up_iterations"] == 0
    assert record["converged"] is None
    with open(model_path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    assert record["model"] == {"path": model_path, "sha256": digest}
    labels = np.asarray(Image.open(tmp_path / "b" / "chelsea_k3_labels.png"))
    np.testing.assert_array_equal(labels, model.segment(chelsea_path).labels)
    assert record["means"] == fitted["means"]
    capsys.readouterr()
    assert command_line.main(["--image", chelsea_path, "--model", model_path, "--k", "4",
                              "--out", str(tmp_path / "c")]) == 2
    assert "--k 4: the model has 3 components" in capsys.readouterr().err


def test_cli_shared_model_labels_each_image_as_the_pooled_model_does(tmp_path):
    paths = make_images(tmp_path / "in", 3)
    out, model_path = tmp_path / "out", str(tmp_path / "shared.json")
    assert command_line.main(["--image", str(tmp_path / "in"), "--k", "3", "--shared-model",
                              "--save-model", model_path, "--jobs", "2", "--out", str(out)]) == 0
    model = gmmseg.load_model(model_path)
    reference = gmmseg.fit(paths, 3, progress=False)
    np.testing.assert_array_equal(model.gmm.mus, reference.gmm.mus)
    assert model.n_images == 3
    for path in paths:
        stem = os.path.splitext(os.path.basename(path))[0]
        labels = np.asarray(Image.open(out / f"{stem}_k3_labels.png"))
        np.testing.assert_array_equal(labels, reference.segment(path).labels)
        record = json.loads((out / f"{stem}_k3.json").read_text())
        assert record["model"]["path"] == model_path and record["iterations"] == 0


@pytest.mark.parametrize("argv, words", [
    (["--k", "2", "3", "--shared-model"], "--shared-model fits one model: give one --k"),
    (["--k", "2", "--save-model", "m.json"], "--save-model in a batch writes its shared model"),
])
def test_cli_shared_model_refusals_are_one_line(tmp_path, capsys, argv, words):
    make_images(tmp_path / "in", 2)
    code = command_line.main(["--image", str(tmp_path / "in"), *argv,
                              "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and words in err[0], err


def test_save_model_does_not_replace_a_file_that_is_no_model(tmp_path, capsys):
    precious = tmp_path / "notes.json"
    precious.write_text('{"mine": true}')
    code = command_line.main(["--image", os.path.join(IMAGES, "coffee.png"), "--k", "2",
                              "--save-model", str(precious), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--save-model" in err[0] and "--overwrite" in err[0]
    assert precious.read_text() == '{"mine": true}'
    assert not os.listdir(tmp_path / "out")  # refused before any fit


def test_video_starts_from_a_given_model(tmp_path):
    clip, _ = square_clip(frames=4)
    save_gif(tmp_path / "sq.gif", clip)
    first = np.asarray(Image.open(tmp_path / "sq.gif").convert("RGB"))
    model = gmmseg.fit(first, 3, progress=False)
    record = gmmseg.segment_video(str(tmp_path / "sq.gif"), out=str(tmp_path / "out"),
                                  progress=False, model=model)
    labels = read_labels(tmp_path / "out" / "sq_k3_labels.mkv")
    np.testing.assert_array_equal(labels[0], model.segment(first).labels)
    assert record["iterations"] == 0 and record["model"]["path"] is None
    assert record["model"]["sha256"] == pipeline.model_digest(model)


# --------------------------------------------------------------------------
# Typed options and inputs in the library's words
# --------------------------------------------------------------------------

def test_options_are_frozen_and_define_the_records_fields(tmp_path):
    options = Options(n_regions=3)
    assert options.hierarchy  # a cut asks for the hierarchy
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.smooth = 2.0
    record = gmmseg.segment_file(os.path.join(IMAGES, "coffee.png"), 2, out=str(tmp_path),
                                 progress=False)[0]
    recorded = [key for key in record if key in set(Options.recorded().values())]
    assert recorded == list(pipeline.RECORDED_OPTIONS) == list(Options().record())
    assert "random_state" not in record and record["seed"] == 0


@pytest.mark.parametrize("kwargs, words", [
    ({"blur": 3}, r"^blur is not an option"),
    ({"options": {"smooth": 2}}, r"^options must be a gmmseg Options, not dict"),
    ({"smooth": "2"}, r"^smooth must be a number, not '2'"),
])
def test_options_are_refused_by_their_python_names(coffee, kwargs, words):
    with pytest.raises(ValueError, match=words) as caught:
        gmmseg.segment(coffee, 2, progress=False, **kwargs)
    assert "--" not in str(caught.value)


def test_a_pil_image_is_an_image(coffee):
    from_pil = gmmseg.segment(Image.fromarray(coffee), 3, progress=False)
    np.testing.assert_array_equal(from_pil.labels,
                                  gmmseg.segment(coffee, 3, progress=False).labels)


@pytest.mark.parametrize("image, words", [
    ([[1, 2], [3, 4]], r"^image must be a NumPy array, a PIL image or a file's path, not list"),
    (np.full((4, 4, 3), 1e300), r"^image holds values up to 1e\+300"),
    (np.full((4, 4, 3), -1e200), r"^image holds values up to 1e\+200"),
])
def test_inputs_that_are_no_image_are_refused_by_name(image, words):
    with pytest.raises(ValueError, match=words) as caught:
        gmmseg.segment(image, 2, progress=False)
    assert "--" not in str(caught.value)


def test_wide_integer_colours_are_segmented_by_their_classes():
    # Three classes of 32-bit colours up to 2.5 million: their packed key range
    # (2.5e6 ** 3) does not fit in 64 bits, so np.unique counts them.
    rng = np.random.default_rng(0)
    truth = np.repeat(np.arange(3), 300)
    centres = np.array([[100_000, 2_000_000, 50_000], [2_400_000, 50_000, 1_000_000],
                        [1_200_000, 1_200_000, 2_500_000]])
    pixels = (centres[truth] + rng.integers(-20_000, 20_000, (900, 3))).astype(np.uint32)
    result = gmmseg.segment(pixels.reshape(30, 30, 3), 3, progress=False)
    from sklearn.metrics import adjusted_rand_score

    assert adjusted_rand_score(truth, result.labels.ravel()) == 1.0
    for centre in centres:  # each class's mean colour, within its noise's standard error
        assert np.abs(result.means_rgb - centre).max(axis=1).min() < 3_000


def test_a_model_refuses_images_of_another_type(coffee, tmp_path):
    grey8 = coffee[:, :, :1]
    model = gmmseg.fit(grey8, 2, progress=False)
    with pytest.raises(ValueError, match=r"^image is uint16; the model was fitted on uint8"):
        model.segment(grey8.astype(np.uint16) * 257)
    model.save(tmp_path / "m.json")
    assert gmmseg.load_model(tmp_path / "m.json").dtype == "uint8"


@pytest.mark.parametrize("target", ["record", "input"])
def test_save_model_never_replaces_the_runs_own_files(tmp_path, capsys, target):
    image = tmp_path / "c.png"
    Image.fromarray(utils.load_image(os.path.join(IMAGES, "coffee.png"))).save(image)
    path = tmp_path / "out" / "c_k2.json" if target == "record" else image
    before = image.read_bytes()
    code = command_line.main(["--image", str(image), "--k", "2", "--save-model", str(path),
                              "--overwrite", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "is an input or an output of this run" in err[0]
    assert image.read_bytes() == before and not os.listdir(tmp_path / "out")


def test_an_unwritable_save_model_is_refused_before_fitting(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sg, "fit_colours", lambda *a, **k: pytest.fail("fitted"))
    code = command_line.main(["--image", os.path.join(IMAGES, "coffee.png"), "--k", "2",
                              "--save-model", str(tmp_path / "missing" / "m.json"),
                              "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: --save-model ")
    assert "cannot write there" in err[0]


def test_shared_model_refuses_position_features_in_one_line(tmp_path, capsys):
    make_images(tmp_path / "in", 2)
    code = command_line.main(["--image", str(tmp_path / "in"), "--k", "2", "--shared-model",
                              "--spatial", "1", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--spatial needs one image to fit" in err[0]


def test_a_deeply_nested_file_is_not_a_model(tmp_path):
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ValueError, match="not a gmmseg model"):
        gmmseg.load_model(tmp_path / "deep.json")


def test_a_model_keeps_its_labelling_options_unless_asked_otherwise(coffee, tmp_path):
    model = gmmseg.fit(coffee, 3, progress=False, smooth=2.0, min_region=30)
    expected = gmmseg.segment(coffee, 3, progress=False, smooth=2.0, min_region=30)
    np.testing.assert_array_equal(model.segment(coffee, options=Options()).regions,
                                  expected.regions)
    plain = model.segment(coffee, min_region=0, smooth=0.0)
    assert plain.regions is None
    assert "regions" in expected and "regions" not in plain and plain.get("fine", 1) == 1


def test_a_batchs_refusals_name_flags_on_the_command_line_and_parameters_in_python(tmp_path,
                                                                                  capsys):
    make_images(tmp_path / "in", 1)
    Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8)).save(tmp_path / "in" / "g.png")
    assert command_line.main(["--image", str(tmp_path / "in"), "--k", "2", "--color-space",
                              "lab", "--jobs", "1", "--out", str(tmp_path / "cli")]) == 1
    err = capsys.readouterr().err
    assert "g.png: --color-space lab needs a colour image" in err
    assert "--color-space lab needs" in (tmp_path / "cli" / "summary.csv").read_text()
    rows = batch.run_batch([str(tmp_path / "in")], 2, color_space="lab", jobs=1,
                           out=str(tmp_path / "py"), progress=False)
    assert [row["error"] for row in rows if row["error"]] == [
        "color_space lab needs a colour image; this one is greyscale"]


@pytest.mark.parametrize("call, words", [
    (lambda: gmmseg.segment_video(123), "video_path must be a file's path, not int"),
    (lambda: gmmseg.segment_file(["a.png"]), "image_path must be a file's path, not list"),
    (lambda: batch.run_batch(5, 2), "patterns must be a list of paths or glob patterns"),
    (lambda: gmmseg.load_model(None), "path must be a file's path, not NoneType"),
    (lambda: gmmseg.segment_file(os.path.join(IMAGES, "coffee.png"), model=3.5),
     "model must be a MixtureModel or a model file's path, not float"),
    (lambda: gmmseg.segment(np.zeros((4, 4, 3)), 2, options=3),
     "options must be a gmmseg Options, not int"),
    (lambda: gmmseg.Options(1), "Options takes keyword arguments only"),
])
def test_public_entries_refuse_wrong_types_by_name(call, words):
    with pytest.raises(ValueError, match=words) as caught:
        call()
    assert "--" not in str(caught.value)
