"""Many images in one run: the same outputs as one run each, failures reported, resumable,
the same labels on a Dask cluster, scores paired by stem."""

import csv
import json
import os

import numpy as np
import pytest
from PIL import Image

from gmmseg import batch
from gmmseg import cli as command_line


def make_images(folder, n=3):
    """n small images of two or three noisy colours, named img1 .. imgN (not zero-padded)."""
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(1, n + 1):
        image = np.zeros((30, 40, 3))
        image[:, :20] = rng.integers(0, 256, 3)
        image[:, 20:] = rng.integers(0, 256, 3)
        image[10:20, 10:30] = rng.integers(0, 256, 3)
        image = np.clip(image + rng.normal(0, 5, image.shape), 0, 255).astype(np.uint8)
        paths.append(os.path.join(folder, f"img{i}.png"))
        Image.fromarray(image).save(paths[-1])
    return paths


def outputs(folder):
    """{file name: bytes} of the label maps, and the records without their timings."""
    found = {}
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if name.endswith("_labels.png"):
            with open(path, "rb") as f:
                found[name] = f.read()
        elif name.endswith(".json"):
            with open(path) as f:
                record = json.load(f)
            for fit in [record, *record.get("fits", [])]:
                fit.pop("seconds", None)
            found[name] = record
    return found


def summary(folder):
    with open(os.path.join(folder, "summary.csv")) as f:
        return list(csv.DictReader(f))


def test_a_folder_and_a_glob_give_what_one_run_per_image_gives(tmp_path):
    paths = make_images(tmp_path / "in", 3)
    for path in paths:
        assert command_line.main(["--image", path, "--k", "2", "3",
                                  "--out", str(tmp_path / "one")]) == 0
    assert command_line.main(["--image", str(tmp_path / "in"), "--k", "2", "3", "--jobs", "2",
                              "--out", str(tmp_path / "folder")]) == 0
    assert command_line.main(["--image", str(tmp_path / "in" / "img*.png"), "--k", "2", "3",
                              "--jobs", "1", "--out", str(tmp_path / "glob")]) == 0
    one = outputs(tmp_path / "one")
    assert len(one) == 3 * (2 * 2 + 1)
    assert outputs(tmp_path / "folder") == one
    assert outputs(tmp_path / "glob") == one
    rows = summary(tmp_path / "folder")
    assert [(os.path.basename(r["image"]), r["k"]) for r in rows[:-1]] == [
        (f"img{i}.png", k) for i in (1, 2, 3) for k in ("2", "3")]
    assert rows[-1]["image"].startswith("total: 3 of 3 images, 6 rows, 0 failed")


def test_natural_order_and_each_image_once():
    assert batch.expand_inputs.__doc__  # documented entry
    names = ["b/img10.png", "b/img2.png", "b/img1.png"]
    assert sorted(names, key=batch.natural_key) == ["b/img1.png", "b/img2.png", "b/img10.png"]


def test_one_corrupt_file_is_reported_and_the_others_finish(tmp_path, capsys):
    make_images(tmp_path / "in", 2)
    (tmp_path / "in" / "img3.png").write_bytes(b"not an image")
    code = command_line.main(["--image", str(tmp_path / "in"), "--k", "2", "--jobs", "1",
                              "--out", str(tmp_path / "out")])
    assert code == 1
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(err) == 1 and "img3.png" in err[0] and "not a readable image" in err[0]
    rows = summary(tmp_path / "out")
    assert [bool(r["error"]) for r in rows[:-1]] == [False, False, True]
    assert rows[-1]["image"].endswith("1 failed")
    assert (tmp_path / "out" / "img2_k2_labels.png").exists()


def test_resume_redoes_only_what_an_interrupted_batch_left(tmp_path, monkeypatch):
    make_images(tmp_path / "in", 3)
    out = str(tmp_path / "out")
    real = batch.process_image
    calls = []

    def interrupted_at_the_second(path, *args, **kwargs):
        calls.append(os.path.basename(path))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(path, *args, **kwargs)

    monkeypatch.setattr(batch, "process_image", interrupted_at_the_second)
    with pytest.raises(KeyboardInterrupt):
        batch.run_batch([str(tmp_path / "in")], [2, 3], out=out, jobs=1, progress=False)
    assert len(summary(out)) == 2 + 1  # the finished image (k = 2 and 3), then the totals
    assert summary(out)[-1]["image"].startswith("total: 1 of 3 images")
    first = os.stat(os.path.join(out, "img1_sweep_k2-3.json")).st_mtime_ns
    calls.clear()
    monkeypatch.setattr(batch, "process_image", lambda path, *a, **k: (
        calls.append(os.path.basename(path)), real(path, *a, **k))[1])
    rows = batch.run_batch([str(tmp_path / "in")], [2, 3], out=out, jobs=1, resume=True,
                           progress=False)
    assert calls == ["img2.png", "img3.png"]
    assert os.stat(os.path.join(out, "img1_sweep_k2-3.json")).st_mtime_ns == first
    assert len(rows) == 6 and not any(row["error"] for row in rows)
    # other settings are not "finished": everything is redone
    calls.clear()
    batch.run_batch([str(tmp_path / "in")], [2, 3], out=out, jobs=1, resume=True,
                    progress=False, random_state=1)
    assert calls == ["img1.png", "img2.png", "img3.png"]


def test_truth_folder_scores_match_per_image_runs(tmp_path):
    paths = make_images(tmp_path / "in", 2)
    os.makedirs(tmp_path / "truth")
    for path in paths:
        truth = np.zeros((30, 40), np.int32)
        truth[:, 20:] = 1
        np.save(tmp_path / "truth" / (os.path.splitext(os.path.basename(path))[0] + ".npy"),
                truth)
    rows = batch.run_batch([str(tmp_path / "in")], 2, out=str(tmp_path / "batch"), jobs=1,
                           truth=str(tmp_path / "truth"), progress=False)
    for path, row in zip(paths, rows, strict=True):
        stem = os.path.splitext(os.path.basename(path))[0]
        assert command_line.main(["--image", path, "--k", "2", "--truth",
                                  str(tmp_path / "truth" / f"{stem}.npy"),
                                  "--out", str(tmp_path / "one")]) == 0
        with open(tmp_path / "one" / f"{stem}_k2.json") as f:
            record = json.load(f)
        assert row["pri"] == record["truth"]["pri"] and row["voi"] == record["truth"]["voi"]
    total = summary(tmp_path / "batch")[-1]
    assert float(total["pri"]) == pytest.approx(np.mean([r["pri"] for r in rows]))


@pytest.mark.parametrize("argv, words", [
    (["--image", "nowhere/*.png"], "matches no image"),
    (["--image", "{in}", "--jobs", "0"], "jobs"),
    (["--image", "{in}", "{other}"], "share the name stem"),
    (["--image", "{in}", "--truth", "{in}/img1.png"], "folder of truths"),
    (["--image", "{in}", "--truth", "{empty}"], "no truth for 2 image(s)"),
])
def test_bad_batches_are_refused_before_any_fit(tmp_path, capsys, argv, words):
    make_images(tmp_path / "in", 2)
    make_images(tmp_path / "other", 1)
    os.makedirs(tmp_path / "empty")
    argv = [a.format(**{"in": tmp_path / "in", "other": tmp_path / "other" / "img1.png",
                        "empty": tmp_path / "empty"}) for a in argv]
    assert command_line.main([*argv, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0]
    assert not (tmp_path / "out").exists() or not os.listdir(tmp_path / "out")


def test_dask_cluster_gives_the_labels_of_jobs_1(tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    make_images(tmp_path / "in", 3)
    assert command_line.main(["--image", str(tmp_path / "in"), "--k", "3", "--jobs", "1",
                              "--out", str(tmp_path / "local")]) == 0
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster:
        assert command_line.main(["--image", str(tmp_path / "in"), "--k", "3",
                                  "--dask", cluster.scheduler_address,
                                  "--out", str(tmp_path / "dask")]) == 0
    assert outputs(tmp_path / "dask") == outputs(tmp_path / "local")


def test_dask_without_a_scheduler_is_one_line(tmp_path, capsys):
    pytest.importorskip("dask.distributed")
    make_images(tmp_path / "in", 1)
    assert command_line.main(["--image", str(tmp_path / "in"), "--dask", "tcp://127.0.0.1:9",
                              "--out", str(tmp_path / "out")]) == 2
    assert "--dask" in capsys.readouterr().err


@pytest.mark.parametrize("ks, missing", [
    ([2], "img2_k2_labels.png"),
    ([2, 3], "img2_k3_regions.png"),
    ([2, 3], "img2_sweep_k2-3.png"),
    ([2], "img2_k2_hierarchy.npz"),
])
def test_resume_redoes_an_image_whose_files_are_not_all_there(tmp_path, monkeypatch, ks,
                                                              missing):
    make_images(tmp_path / "in", 3)
    out = str(tmp_path / "out")
    options = {"n_regions": 2} if "hierarchy" in missing else {"min_region": 20}
    batch.run_batch([str(tmp_path / "in")], ks, out=out, jobs=1, progress=False, **options)
    os.remove(os.path.join(out, missing))
    real, calls = batch.process_image, []
    monkeypatch.setattr(batch, "process_image", lambda path, *a, **k: (
        calls.append(os.path.basename(path)), real(path, *a, **k))[1])
    rows = batch.run_batch([str(tmp_path / "in")], ks, out=out, jobs=1, resume=True,
                           progress=False, **options)
    assert calls == ["img2.png"]
    assert os.path.exists(os.path.join(out, missing))
    assert len(rows) == 3 * len(ks) and not any(row["error"] for row in rows)


def test_a_worker_killed_mid_batch_costs_no_image(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    import psutil  # installed with Dask's distributed (requirements-dev.txt)
    from conftest import SCRIPT

    make_images(tmp_path / "in", 8)
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, SCRIPT, "--image", str(tmp_path / "in"), "--k", "2",
                             "--jobs", "2", "--out", str(out)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    def workers():
        found = []
        for child in psutil.Process(proc.pid).children(recursive=True):
            try:
                if "spawn_main" in " ".join(child.cmdline()):  # not the resource tracker
                    found.append(child)
            except psutil.Error:  # gone meanwhile
                pass
        return found

    killed, deadline = None, time.monotonic() + 120
    while killed is None and proc.poll() is None and time.monotonic() < deadline:
        records = list(out.glob("*.json")) if out.is_dir() else []
        pool = workers() if len(records) >= 2 else []
        if pool:  # mid-batch: some done, others in flight
            killed = pool[0].pid
            os.kill(killed, signal.SIGKILL)
        time.sleep(0.01)
    stdout, stderr = proc.communicate(timeout=300)
    assert killed is not None, "the batch ended before a worker could be killed"
    assert proc.returncode == 0, stderr
    assert "8 image(s), 0 failed" in stdout
    assert "leaked" not in stderr and "Traceback" not in stderr
    assert len(list(out.glob("img*_k2.json"))) == 8
    # stderr is no terminal here: one line per finished image, with the time left
    assert len([line for line in stderr.splitlines() if line.startswith("images: ")]) == 8
