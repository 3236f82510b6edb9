"""Many clips in one run: the files one run per clip writes, a broken clip one row,
--resume, a Dask cluster."""

import csv
import os

import numpy as np
import pytest
from test_video import save_gif, save_mp4, square_clip

from gmmseg import cli as command_line
from gmmseg import clips, video
from gmmseg.video_io import read_labels


def make_clips(folder):
    os.makedirs(folder)
    clip, _ = square_clip(noise=2.0)
    save_mp4(folder / "one.mp4", clip)
    save_gif(folder / "two.gif", square_clip(seed=1)[0][::-1])
    (folder / "three.mp4").write_bytes(b"not a video")
    return [folder / name for name in ("one.mp4", "three.mp4", "two.gif")]


def summary(folder):
    with open(folder / "summary.csv") as f:
        return list(csv.DictReader(f))


def test_a_folder_of_clips_gives_what_one_run_per_clip_gives(tmp_path, capsys):
    paths = make_clips(tmp_path / "in")
    assert clips.is_clip_batch([str(tmp_path / "in")])
    assert command_line.main(["--video", str(tmp_path / "in"), "--k", "3", "--jobs", "2",
                              "--out", str(tmp_path / "many")]) == 1
    err = capsys.readouterr().err
    assert "three.mp4: not a readable video" in err and "Traceback" not in err
    rows = summary(tmp_path / "many")
    assert [row["image"] for row in rows[:-1]] == [str(path) for path in paths]
    assert [bool(row["error"]) for row in rows[:-1]] == [False, True, False]
    assert rows[-1]["image"].startswith("total: 3 of 3 clips, 2 rows, 1 failed")
    for path in (paths[0], paths[2]):
        one = video.segment_video(str(path), 3, out=str(tmp_path / "one"), progress=False)
        stem = path.stem
        assert np.array_equal(read_labels(tmp_path / "many" / f"{stem}_k3_labels.mkv"),
                              read_labels(tmp_path / "one" / f"{stem}_k3_labels.mkv"))
        row = next(r for r in rows if r["image"] == str(path))
        assert float(row["log_likelihood"]) == pytest.approx(one["log_likelihood"], abs=1e-12)


def test_resume_redoes_only_the_clips_whose_files_are_not_all_there(tmp_path):
    make_clips(tmp_path / "in")
    out = tmp_path / "out"
    argv = ["--video", str(tmp_path / "in" / "*.*"), "--k", "2", "--jobs", "1", "--out",
            str(out)]
    assert command_line.main(argv) == 1
    labels = {name: os.stat(out / f"{name}_k2_labels.mkv").st_mtime_ns for name in ("one", "two")}
    os.remove(out / "two_k2_frames.png")
    assert command_line.main([*argv, "--resume"]) == 1
    assert os.stat(out / "one_k2_labels.mkv").st_mtime_ns == labels["one"]
    assert os.stat(out / "two_k2_labels.mkv").st_mtime_ns != labels["two"]
    assert (out / "two_k2_frames.png").exists()
    assert [bool(row["error"]) for row in summary(out)[:-1]] == [False, True, False]
    # another label format is another setting: redone
    assert command_line.main([*argv, "--resume", "--labels", "npy"]) == 1
    assert (out / "one_k2_labels.npy").exists()


def test_clips_on_a_dask_cluster_give_the_labels_of_jobs_1(tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    paths = make_clips(tmp_path / "in")
    os.remove(paths[1])
    assert command_line.main(["--video", str(tmp_path / "in"), "--k", "3", "--jobs", "1",
                              "--out", str(tmp_path / "local")]) == 0
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster:
        assert command_line.main(["--video", str(tmp_path / "in"), "--k", "3", "--dask",
                                  cluster.scheduler_address, "--out",
                                  str(tmp_path / "dask")]) == 0
    for stem in ("one", "two"):
        assert np.array_equal(read_labels(tmp_path / "dask" / f"{stem}_k3_labels.mkv"),
                              read_labels(tmp_path / "local" / f"{stem}_k3_labels.mkv"))


def test_resume_skips_a_clip_labelled_by_the_same_model_and_redoes_it_without(tmp_path):
    import gmmseg

    clip, _ = square_clip(noise=2.0)
    os.makedirs(tmp_path / "in")
    save_mp4(tmp_path / "in" / "a.mp4", clip)
    gmmseg.fit(clip[0], 3, progress=False).save(tmp_path / "m.json")
    model, out = str(tmp_path / "m.json"), str(tmp_path / "out")
    clips.run_clips([str(tmp_path / "in")], model=model, out=out, jobs=1, progress=False)
    labels = tmp_path / "out" / "a_k3_labels.mkv"
    written = os.stat(labels).st_mtime_ns
    rows = clips.run_clips([str(tmp_path / "in")], model=model, out=out, jobs=1,
                           progress=False, resume=True)
    assert os.stat(labels).st_mtime_ns == written and rows[0]["k"] == 3
    clips.run_clips([str(tmp_path / "in")], 3, out=out, jobs=1, progress=False, resume=True)
    assert os.stat(labels).st_mtime_ns != written  # fitted, not the model's: another setting
