"""The 300-W layout, the paper's split and data checks (fkd_utils.data)."""
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from fkd_utils import data
from fkd_utils.io import DataError, read_pts

# Counts of the tiny set (conftest.TINY_COUNTS), worked out by hand per split and subset.
TINY_SPLITS = {
    "train": {"count": 9, "subsets": {"afw": 4, "helen": 3, "lfpw": 2}},
    "validation": {"count": 7, "subsets": {"helen": 3, "lfpw": 2, "ibug": 2}},
    "test": {"count": 5, "subsets": {"indoor": 2, "outdoor": 3}},
}
ALL_FOLDERS = {"afw", "helen/trainset", "lfpw/trainset", "helen/testset", "lfpw/testset",
               "ibug", "300W/01_Indoor", "300W/02_Outdoor"}
REPORT_KEYS = {"data_dir", "splits", "absent_folders", "samples_without_box", "problems"}


def tree_hashes(root):
    """{relative path: sha256} of every file under root (and the set of directories)."""
    root = Path(root)
    files = {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
             for p in sorted(root.rglob("*")) if p.is_file()}
    dirs = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_dir()}
    return files, dirs


@pytest.fixture
def copy_of_tiny(tiny_data, tmp_path):
    """A private, modifiable copy of the tiny set."""
    return Path(shutil.copytree(tiny_data, tmp_path / "300w"))


def first_stem(root, folder):
    return sorted(p.stem for p in (root / folder).glob("*.pts"))[0]


# ----------------------------------------------------------------------- clean set

def test_scan_tiny_set(tiny_data):
    samples, absent, problems = data.scan(tiny_data)
    assert absent == [] and problems == []
    assert len(samples) == 21
    assert len({s.id for s in samples}) == 21
    for s in samples:
        assert s.image_path.is_file() and s.pts_path.is_file()
        assert s.image_path.stem == s.pts_path.stem
        assert s.id == s.image_path.relative_to(tiny_data.resolve()).as_posix()
        assert s.folder in ALL_FOLDERS
        assert (s.subset, s.split) == data.LAYOUT[s.folder]
    per_folder = {}
    for s in samples:
        per_folder[s.folder] = per_folder.get(s.folder, 0) + 1
    assert per_folder == {"afw": 4, "helen/trainset": 3, "lfpw/trainset": 2,
                          "helen/testset": 3, "lfpw/testset": 2, "ibug": 2,
                          "300W/01_Indoor": 2, "300W/02_Outdoor": 3}


def test_paper_layout():
    # The paper's split: train = AFW + HELEN train + LFPW train; validation = HELEN test +
    # LFPW test + iBUG; test = 300-W indoor + outdoor.
    by_split = {}
    for folder, (_, split) in data.LAYOUT.items():
        by_split.setdefault(split, set()).add(folder)
    assert by_split == {"train": {"afw", "helen/trainset", "lfpw/trainset"},
                        "validation": {"helen/testset", "lfpw/testset", "ibug"},
                        "test": {"300W/01_Indoor", "300W/02_Outdoor"}}
    assert data.box_file_name("helen/testset") == "bounding_boxes_helen_testset.mat"
    assert data.box_file_name("300W/01_Indoor") == "bounding_boxes_300W_01_Indoor.mat"


def test_check_tiny_set(tiny_data):
    report = data.check(tiny_data)
    assert set(report) == REPORT_KEYS
    assert report["data_dir"] == str(tiny_data.resolve())
    assert report["problems"] == [] and report["absent_folders"] == []
    assert report["samples_without_box"] == 0
    assert list(report["splits"]) == ["train", "validation", "test"]
    for split, expected in TINY_SPLITS.items():
        info = report["splits"][split]
        assert set(info) == {"count", "subsets"}, split       # no "absent": all present
        assert info["count"] == expected["count"], split
        assert info["subsets"] == expected["subsets"], split
        assert sum(info["subsets"].values()) == info["count"]
    # What ``fkd data check --json`` prints: it must survive a JSON round trip unchanged.
    assert json.loads(json.dumps(report)) == report


def test_split_samples_and_available_splits(tiny_data):
    assert data.available_splits(tiny_data) == ["train", "validation", "test"]
    for split, expected in TINY_SPLITS.items():
        chosen = data.split_samples(tiny_data, split)
        assert len(chosen) == expected["count"] and {s.split for s in chosen} == {split}
    with pytest.raises(ValueError, match="unknown split 'dev'"):
        data.split_samples(tiny_data, "dev")


def test_ground_truth_reads_the_pts_files(tiny_data):
    ids, subsets, points = data.ground_truth(tiny_data, "test")
    assert points.shape == (5, 68, 2) and len(ids) == len(subsets) == 5
    assert sorted(subsets.tolist()) == ["indoor"] * 2 + ["outdoor"] * 3
    for sid, pts in zip(ids, points):
        image = tiny_data / sid
        np.testing.assert_array_equal(pts, read_pts(image.with_suffix(".pts")))


def test_load_boxes_cover_every_sample_and_contain_the_points(tiny_data):
    boxes = data.load_boxes(tiny_data)
    samples, _, _ = data.scan(tiny_data)
    assert set(boxes) == {s.id for s in samples}
    for s in samples:
        pts = read_pts(s.pts_path)
        gt = boxes[s.id]["bb_ground_truth"]
        np.testing.assert_allclose(gt, data.points_box(pts), atol=1e-6)


def test_points_box():
    np.testing.assert_array_equal(data.points_box([[3, 4], [1, 9], [5, 2]]), [1, 2, 5, 9])


def test_raw_data_is_never_modified(tiny_data):
    before = tree_hashes(tiny_data)
    data.scan(tiny_data)
    data.check(tiny_data)
    data.split_samples(tiny_data, "validation")
    data.available_splits(tiny_data)
    data.load_boxes(tiny_data)
    data.ground_truth(tiny_data, "train")
    assert tree_hashes(tiny_data) == before


# ----------------------------------------------------------------- absent folders

def test_absent_folders_are_reported_not_faked(copy_of_tiny):
    removed = ["lfpw/testset", "ibug", "300W/01_Indoor", "300W/02_Outdoor"]
    for folder in removed:
        shutil.rmtree(copy_of_tiny / folder)
    samples, absent, problems = data.scan(copy_of_tiny)
    assert sorted(absent) == sorted(removed) and problems == []
    assert len(samples) == 12

    report = data.check(copy_of_tiny)
    assert set(report) == REPORT_KEYS
    assert sorted(report["absent_folders"]) == sorted(removed)
    splits = report["splits"]
    assert splits["train"] == TINY_SPLITS["train"]
    assert splits["validation"] == {"count": 3, "subsets": {"helen": 3}}
    assert splits["test"]["count"] == 0 and splits["test"]["subsets"] == {}
    assert splits["test"].get("absent") is True
    assert report["problems"] == []
    assert data.available_splits(copy_of_tiny) == ["train", "validation"]

    with pytest.raises(DataError, match="split 'test'") as err:
        data.split_samples(copy_of_tiny, "test")
    assert str(copy_of_tiny.resolve()) in str(err.value)


def test_missing_data_directory(tmp_path):
    missing = tmp_path / "no_such_dir"
    for call in (data.scan, data.check, data.load_boxes, data.resolve_data_dir):
        with pytest.raises(DataError, match="no_such_dir.*not found"):
            call(missing)
    with pytest.raises(DataError, match="no_such_dir"):
        data.split_samples(missing, "train")


def test_directory_without_300w_folders(tmp_path):
    (tmp_path / "pictures").mkdir()
    with pytest.raises(DataError, match="no 300-W folder"):
        data.check(tmp_path)


# ----------------------------------------------------------------------- bad input

def test_unpaired_files_are_problems(copy_of_tiny):
    stem = first_stem(copy_of_tiny, "afw")
    (copy_of_tiny / "afw" / f"{stem}.png").unlink()                # .pts without image
    stem2 = first_stem(copy_of_tiny, "ibug")
    (copy_of_tiny / "ibug" / f"{stem2}.pts").unlink()              # image without .pts
    report = data.check(copy_of_tiny)
    problems = report["problems"]
    assert len(problems) == 2, problems
    assert any(f"afw/{stem}.pts" in p and "without an image" in p for p in problems)
    assert any(f"ibug/{stem2}.png" in p and "without a .pts" in p for p in problems)
    assert report["splits"]["train"]["subsets"]["afw"] == 3
    assert report["splits"]["validation"]["subsets"]["ibug"] == 1


@pytest.mark.parametrize("content", [
    "version: 1\nn_points: 68\n{\n1 2\n}\n",                     # 1 point instead of 68
    "garbage without braces\n",
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe\x80\x81",       # binary
], ids=["one_point", "no_braces", "binary"])
def test_broken_pts_is_a_problem_naming_the_file(copy_of_tiny, content):
    stem = first_stem(copy_of_tiny, "helen/testset")
    path = copy_of_tiny / "helen" / "testset" / f"{stem}.pts"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    report = data.check(copy_of_tiny)
    assert len(report["problems"]) == 1, report["problems"]
    assert f"{stem}.pts" in report["problems"][0]


@pytest.mark.parametrize("how", ["text", "truncated"])
def test_undecodable_image_is_a_problem_naming_the_file(copy_of_tiny, how):
    stem = first_stem(copy_of_tiny, "lfpw/trainset")
    path = copy_of_tiny / "lfpw" / "trainset" / f"{stem}.png"
    if how == "text":
        path.write_text("not an image at all\n" * 10)
    else:
        blob = path.read_bytes()
        path.write_bytes(blob[: len(blob) // 2])
    report = data.check(copy_of_tiny)
    assert len(report["problems"]) == 1, report["problems"]
    assert f"{stem}.png" in report["problems"][0]


def test_keypoints_far_outside_the_image_are_a_problem(copy_of_tiny):
    from fkd_utils.io import write_pts
    stem = first_stem(copy_of_tiny, "300W/02_Outdoor")
    path = copy_of_tiny / "300W" / "02_Outdoor" / f"{stem}.pts"
    pts = read_pts(path)
    pts[10] = [5 * 96, 40]                  # five image widths to the right
    write_pts(path, pts, overwrite=True)
    report = data.check(copy_of_tiny)
    assert len(report["problems"]) == 1, report["problems"]
    assert f"{stem}.pts" in report["problems"][0] and "outside" in report["problems"][0]


def test_keypoints_just_outside_the_image_are_fine(copy_of_tiny):
    # 300-W has a few points just outside the frame; those are not problems.
    from fkd_utils.io import write_pts
    stem = first_stem(copy_of_tiny, "afw")
    path = copy_of_tiny / "afw" / f"{stem}.pts"
    pts = read_pts(path)
    pts[0] = [-3.0, pts[0, 1]]
    write_pts(path, pts, overwrite=True)
    assert data.check(copy_of_tiny)["problems"] == []


def test_empty_split_raises_naming_the_split(tiny_data, tmp_path):
    root = tmp_path / "train_only"
    for folder in ("afw", "helen/trainset"):
        shutil.copytree(tiny_data / folder, root / folder)
    with pytest.raises(DataError, match="split 'test'"):
        data.split_samples(root, "test")
    with pytest.raises(DataError, match="split 'validation'"):
        data.split_samples(root, "validation")
    assert len(data.split_samples(root, "train")) == 7
    report = data.check(root)
    assert report["splits"]["test"] == {"count": 0, "subsets": {}, "absent": True}
    assert report["samples_without_box"] == 7           # no "Bounding Boxes" folder copied


def test_bad_input_never_modifies_files(copy_of_tiny):
    stem = first_stem(copy_of_tiny, "afw")
    (copy_of_tiny / "afw" / f"{stem}.pts").write_text("broken")
    (copy_of_tiny / "ibug" / "stray.pts").write_text("no image for me")
    before = tree_hashes(copy_of_tiny)
    data.check(copy_of_tiny)
    data.scan(copy_of_tiny)
    assert tree_hashes(copy_of_tiny) == before


# ----------------------------------------------------------------------- real data

def test_check_real_300w(real_300w):
    before = {p: p.stat().st_mtime_ns for p in real_300w.rglob("*") if p.is_file()}
    report = data.check(real_300w)
    assert set(report) == REPORT_KEYS
    splits = report["splits"]
    assert splits["train"]["count"] == 2012
    assert splits["train"]["subsets"] == {"afw": 337, "helen": 870, "lfpw": 805}
    assert splits["validation"]["count"] == 330
    assert splits["validation"]["subsets"] == {"helen": 330}
    assert splits["test"]["count"] == 0 and splits["test"].get("absent") is True
    assert sorted(report["absent_folders"]) == sorted(
        ["lfpw/testset", "ibug", "300W/01_Indoor", "300W/02_Outdoor"])
    assert report["problems"] == []
    assert report["samples_without_box"] == 0
    with pytest.raises(DataError, match="split 'test'"):
        data.split_samples(real_300w, "test")
    after = {p: p.stat().st_mtime_ns for p in real_300w.rglob("*") if p.is_file()}
    assert after == before


def test_every_real_sample_has_a_box_around_its_points(real_300w):
    samples, _, _ = data.scan(real_300w)
    boxes = data.load_boxes(real_300w)
    assert {s.id for s in samples} <= set(boxes)
    for s in samples[::50]:
        det = boxes[s.id]["bb_detector"]
        assert det.shape == (4,) and det[2] > det[0] and det[3] > det[1], s.id
        pts = read_pts(s.pts_path)
        np.testing.assert_allclose(boxes[s.id]["bb_ground_truth"], data.points_box(pts),
                                   atol=0.01, err_msg=s.id)


@pytest.mark.parametrize("profile", ["real", "release"])
def test_real_face_profiles_say_they_need_300w_when_it_is_absent(monkeypatch, profile):
    from fkd_utils import paths
    from fkd_utils.data import data_dir_for
    monkeypatch.setattr(paths, "real_300w_dir", lambda: None)
    with pytest.raises(DataError, match=f"profile '{profile}' needs real 300-W: pass data_dir"):
        data_dir_for("", profile)
