"""The bad-input table (issue 17): every bad or unusual input to ``fkd`` gets its documented
exit code (0 all done, 1 some inputs failed, 2 usage or setup error), a message that names the
file and the problem, no traceback, and leaves what is already on disk unchanged.

Each case builds its inputs in a fresh folder, hashes the folders it must not touch, runs the
command in-process and checks all four. Cases that decode images, read weights or write
results run with the untrained weights of ``conftest.untrained_weights``.
"""
import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fkd_utils import cli
from fkd_utils.data import ground_truth
from fkd_utils.io import read_boxes
from fkd_utils.pipeline import save_predictions


def folder_hash(*folders):
    """sha256 over every file (names, hidden files included, and contents) of the folders."""
    digest = hashlib.sha256()
    for folder in folders:
        folder = Path(folder)
        if not folder.exists():
            digest.update(f"absent:{folder}".encode())
            continue
        for path in sorted(folder.rglob("*")):
            digest.update(str(path.relative_to(folder)).encode())
            if path.is_file():
                digest.update(path.read_bytes())
    return digest.hexdigest()


def run_fkd(argv, capsys):
    """``fkd argv`` in-process: (exit code, stdout, stderr)."""
    try:
        code = cli.main([str(a) for a in argv])
    except SystemExit as exit_:  # argparse
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err


@dataclass
class Run:
    argv: list
    code: int
    says: list                       # what stderr must name: the file and the problem
    watch: list = field(default_factory=list)   # folders that must not change


def photo(path, seed=0, size=(48, 64)):
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, size + (3,), dtype=np.uint8)).save(path)
    return path


def copied_weights(tmp, weights, change=None):
    """A copy of the weights whose files ``change(folder, manifest)`` alters; the manifest's
    checksums are then brought up to date (the damage is not caught by the sha256)."""
    from fkd_utils.landmarker import sha256
    folder = tmp / "weights"
    shutil.copytree(weights, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    if change:
        change(folder, manifest)
    for name in list(manifest["files"]):
        manifest["files"][name] = sha256(folder / name)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def predict_with(tmp, weights, *extra, out=None):
    image = photo(tmp / "in" / "face.png")
    return ["predict", image, "--weights", weights, "--out", out or tmp / "out", *extra]


# ----------------------------------------------------------------------- fkd predict

def case_existing_overlay_without_json(tmp, weights, data):
    out = tmp / "out"
    out.mkdir()
    (out / "face.png.fkd.png").write_bytes(b"an earlier overlay")
    return Run(predict_with(tmp, weights), 2, ["face.png.fkd.png", "exists"], [out, tmp / "in"])


def case_output_folder_in_use(tmp, weights, data):
    out = tmp / "out"
    out.mkdir()
    (out / ".fkd-predict.lock").write_text(str(os.getpid()))   # a live process holds it
    return Run(predict_with(tmp, weights), 2, [str(out), "another fkd predict"], [out])


def case_out_below_a_file(tmp, weights, data):
    (tmp / "notes.txt").write_text("a file")
    argv = predict_with(tmp, weights, out=tmp / "notes.txt" / "sub")
    return Run(argv, 2, ["notes.txt", "is a file"], [tmp])


@pytest.mark.parametrize("value", ["0", "-1", "nan", "1.5"])
def test_min_face_out_of_range_names_the_option(value, tmp_path, capsys, recwarn):
    code, out, err = run_fkd(["predict", photo(tmp_path / "face.png"), "--min-face", value,
                              "--out", tmp_path / "out"], capsys)
    assert code == 2 and "--min-face" in err and value in err
    assert "Traceback" not in err and not (tmp_path / "out").exists()
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


@pytest.mark.parametrize("value", ["-1", "1.5", "two", "5"])
def test_reframe_that_is_not_a_whole_number_names_the_option(value, tmp_path, capsys):
    code, out, err = run_fkd(["predict", photo(tmp_path / "face.png"), "--reframe", value,
                              "--out", tmp_path / "out"], capsys)
    assert code == 2 and "--reframe" in err and value in err
    assert "Traceback" not in err and not (tmp_path / "out").exists()


def case_reframe_calibration_malformed(tmp, weights, data):
    def garble(folder, manifest):
        manifest["reframe_calibration"] = [0.0, 0.1, 1.0]
    folder = copied_weights(tmp, weights, garble)
    return Run(predict_with(tmp, folder), 2,
               ["manifest.json", "reframe_calibration is not a box calibration"], [folder])


def case_reframe_with_weights_exported_before_it(tmp, weights, data):
    return Run(predict_with(tmp, weights, "--reframe", "2"), 2,
               ["manifest.json", "--reframe needs", "make ship-weights"], [weights])


def case_weights_npz_damaged_but_checksummed(tmp, weights, data):
    def damage(folder, manifest):
        (folder / "cascade_stage1.weights.npz").write_bytes(b"PK\x03\x04 not really a zip")
    folder = copied_weights(tmp, weights, damage)
    return Run(predict_with(tmp, folder), 2, ["cascade_stage1.weights.npz", "damaged"], [folder])


def case_weights_file_not_in_manifest(tmp, weights, data):
    def unlist(folder, manifest):
        del manifest["files"]["cascade_stage1.weights.npz"]
    folder = copied_weights(tmp, weights, unlist)
    return Run(predict_with(tmp, folder), 2, ["cascade_stage1.weights.npz", "not listed"],
               [folder])


def case_architecture_file_garbage(tmp, weights, data):
    def garbage(folder, manifest):
        (folder / "cascade_stage1.json").write_text('{"class_name": 42, "config": "nonsense"}')
    folder = copied_weights(tmp, weights, garbage)
    return Run(predict_with(tmp, folder), 2, ["cascade_stage1.json", "architecture"], [folder])


def case_manifest_not_json(tmp, weights, data):
    folder = copied_weights(tmp, weights)
    text = (folder / "manifest.json").read_text()
    (folder / "manifest.json").write_text(text[: len(text) // 2])
    return Run(predict_with(tmp, folder), 2, ["manifest.json", "not a valid manifest"], [folder])


def case_manifest_image_size_mismatch(tmp, weights, data):
    def resize(folder, manifest):
        manifest["image_size"] = 96
    folder = copied_weights(tmp, weights, resize)
    return Run(predict_with(tmp, folder), 2, ["manifest.json", "image_size 96"], [folder])


def case_folder_without_images(tmp, weights, data):
    (tmp / "empty").mkdir()
    (tmp / "empty" / "notes.txt").write_text("no photos here")
    return Run(["predict", tmp / "empty", "--weights", weights, "--out", tmp / "out"], 2,
               ["empty", "no images"], [tmp])


def case_input_missing(tmp, weights, data):
    return Run(["predict", tmp / "nothing.jpg", "--weights", weights, "--out", tmp / "out"], 2,
               ["nothing.jpg", "no such file"], [tmp])


def case_some_inputs_unreadable(tmp, weights, data):
    folder = tmp / "photos"
    for k in range(2):
        photo(folder / f"good{k}.png", seed=k)
    for k in range(3):
        (folder / f"bad{k}.jpg").write_text("not a JPEG")
    return Run(["predict", folder, "--weights", weights, "--out", tmp / "out", "--no-overlay"], 1,
               ["bad0.jpg", "bad1.jpg", "bad2.jpg", "cannot decode", "3 of 5 inputs failed"],
               [folder])


# ---------------------------------------------------------------------- fkd evaluate

def _predictions(tmp, data, points=None):
    """A predictions file of the tiny set's validation split: the ground truth, or
    ``points(ground truth)``."""
    ids, _, gt = ground_truth(data, "validation")
    path = tmp / "pred.npz"
    save_predictions(path, ids, gt if points is None else points(gt))
    return path, gt


def _evaluate(path, data, *extra):
    return ["evaluate", path, "--data-dir", data, "--split", "validation", *extra]


def case_all_predictions_nan(tmp, data):
    path, gt = _predictions(tmp, data, points=lambda gt: np.full_like(gt, np.nan))
    return Run(_evaluate(path, data, "--json"), 1, ["pred.npz", "NaN", "failures"], [tmp])


def case_one_point_nan(tmp, data):
    def one_nan(gt):
        gt = gt.copy()
        gt[0, 30] = np.nan
        return gt
    path, _ = _predictions(tmp, data, points=one_nan)
    return Run(_evaluate(path, data), 1, ["pred.npz", f"1 of "], [tmp])


def case_duplicate_ids(tmp, data):
    ids, _, gt = ground_truth(data, "validation")
    path = tmp / "pred.npz"
    save_predictions(path, np.r_[ids, ids[:1]], np.concatenate([gt, gt[:1]]))
    return Run(_evaluate(path, data), 2, ["pred.npz", "duplicate ids"], [tmp])


def case_empty_npz(tmp, data):
    (tmp / "pred.npz").write_bytes(b"")
    return Run(_evaluate(tmp / "pred.npz", data), 2, ["pred.npz", "not a predictions .npz"],
               [tmp])


def case_truncated_npz(tmp, data):
    path, _ = _predictions(tmp, data)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    return Run(_evaluate(path, data), 2, ["pred.npz", "predictions"], [tmp])


def case_npy_file(tmp, data):
    np.save(tmp / "pred.npy", np.zeros((3, 68, 2)))
    return Run(_evaluate(tmp / "pred.npy", data), 2, ["pred.npy", "single .npy array"], [tmp])


def case_text_file(tmp, data):
    (tmp / "pred.npz").write_text("id,x,y\n")
    return Run(_evaluate(tmp / "pred.npz", data), 2, ["pred.npz", "not a predictions .npz"],
               [tmp])


# ------------------------------------------------------------------------- fkd train

def _train_refused(tmp, data, *extra):
    """``fkd train`` on a copy of the data: the copy's models folder (in FKD_HOME) must stay
    absent, which shows the command was refused before any training."""
    from fkd_utils.pipeline import models_folder
    data = _data_copy(tmp, data)
    return ["train", "--profile", "quick", "--data-dir", data, *extra], models_folder("quick", data)


def case_train_out_holds_weights(tmp, weights, data):
    folder = copied_weights(tmp, weights)
    argv, models = _train_refused(tmp, data, "--out", folder)
    return Run(argv, 2, [str(folder), "holds weights already", "--overwrite"], [folder, models])


def case_train_out_below_a_file(tmp, weights, data):
    (tmp / "notes.txt").write_text("a file")
    argv, models = _train_refused(tmp, data, "--out", tmp / "notes.txt" / "w")
    return Run(argv, 2, ["notes.txt", "is a file"], [tmp / "notes.txt", models])


def case_train_retrain_unknown_model(tmp, weights, data):
    argv, models = _train_refused(tmp, data, "--out", tmp / "w", "--retrain", "no_such_model")
    return Run(argv, 2, ["--retrain", "no_such_model"], [tmp / "w", models])


def case_train_cached_model_without_manifest(tmp, weights, data):
    from fkd_utils.pipeline import model_path
    data = _data_copy(tmp, data)            # its own models folder, which no other test uses
    stored = model_path("quick", "end_to_end", data)
    stored.parent.mkdir(parents=True, exist_ok=True)
    stored.write_bytes(b"a model whose save was interrupted")
    return Run(["train", "--profile", "quick", "--data-dir", data, "--approach", "end-to-end",
                "--out", tmp / "w"], 2,
               [str(stored), "no manifest", "fkd train --retrain end_to_end"], [stored.parent, data])


# -------------------------------------------------------------------- fkd data check

def _data_copy(tmp, data):
    copy = tmp / "300w"
    shutil.copytree(data, copy)
    return copy


def _rewrite_boxes(path, change):
    from fkd_utils.synthetic import _write_boxes
    boxes = read_boxes(path)
    records = [(name, *change(name, b["bb_detector"].copy(), b["bb_ground_truth"].copy()))
               for name, b in boxes.items()]
    _write_boxes(path, records)


def case_box_file_deleted(tmp, weights, data):
    copy = _data_copy(tmp, data)
    (copy / "Bounding Boxes" / "bounding_boxes_afw.mat").unlink()
    return Run(["data", "check", copy], 1, ["bounding_boxes_afw.mat", "missing"], [copy])


def case_box_nan_inverted_and_corrupt(tmp, weights, data):
    copy = _data_copy(tmp, data)
    boxes = copy / "Bounding Boxes"
    names = sorted(read_boxes(boxes / "bounding_boxes_ibug.mat"))

    def nan_and_inverted(name, detector, truth):
        if name == names[0]:
            detector[0] = np.nan
        if name == names[1]:
            detector = detector[[2, 3, 0, 1]]
        return detector, truth
    _rewrite_boxes(boxes / "bounding_boxes_ibug.mat", nan_and_inverted)
    (boxes / "bounding_boxes_afw.mat").write_bytes(b"MATLAB 5.0 MAT-file, but cut")
    # every problem listed, the corrupt file did not stop the check
    return Run(["data", "check", copy], 1,
               ["bounding_boxes_afw.mat", "cannot read", f"{names[0]}: bb_detector has NaN",
                f"{names[1]}: bb_detector is inverted"], [copy])


PREDICT_CASES = [case_existing_overlay_without_json, case_output_folder_in_use,
                 case_out_below_a_file, case_reframe_with_weights_exported_before_it,
                 case_reframe_calibration_malformed,
                 case_weights_npz_damaged_but_checksummed,
                 case_weights_file_not_in_manifest, case_architecture_file_garbage,
                 case_manifest_not_json, case_manifest_image_size_mismatch,
                 case_folder_without_images, case_input_missing, case_some_inputs_unreadable,
                 case_train_out_holds_weights, case_train_out_below_a_file,
                 case_train_retrain_unknown_model, case_train_cached_model_without_manifest,
                 case_box_file_deleted,
                 case_box_nan_inverted_and_corrupt]
EVALUATE_CASES = [case_all_predictions_nan, case_one_point_nan, case_duplicate_ids,
                  case_empty_npz, case_truncated_npz, case_npy_file, case_text_file]


def check_run(run, capsys):
    before = folder_hash(*run.watch)
    code, out, err = run_fkd(run.argv, capsys)
    assert code == run.code, (code, err)
    for needle in run.says:
        assert needle in err + out, f"{needle!r} not in: {err + out}"
    assert "Traceback" not in err + out
    assert folder_hash(*run.watch) == before, "files already on disk changed"
    return out, err


@pytest.mark.parametrize("case", PREDICT_CASES, ids=lambda c: c.__name__[5:])
def test_bad_input(case, tmp_path, capsys, untrained_weights, tiny_data):
    check_run(case(tmp_path, untrained_weights, tiny_data), capsys)


@pytest.mark.parametrize("case", EVALUATE_CASES, ids=lambda c: c.__name__[5:])
def test_bad_predictions(case, tmp_path, capsys, tiny_data):
    check_run(case(tmp_path, tiny_data), capsys)


def test_nan_predictions_are_failures_in_strict_json(tmp_path, capsys, tiny_data):
    out, _ = check_run(case_all_predictions_nan(tmp_path, tiny_data), capsys)
    report = json.loads(out, parse_constant=lambda c: pytest.fail(f"bare {c} in the JSON"))
    row = report["68"]["all"]
    assert row["fr"] == 1.0 and row["auc"] == 0.0 and row["nme"] is None
    assert row["n_nonfinite"] == row["n"]


# ------------------------------------------------- Ctrl-C during fkd train (slow: trains)

def _train(cmd, env, interrupt_on=None):
    """Run ``fkd train`` in a subprocess; with ``interrupt_on``, send one SIGINT as soon as
    that text appears in its output. Returns (exit code, output)."""
    import signal
    import subprocess
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env, bufsize=1)
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if interrupt_on and interrupt_on in line:
            proc.send_signal(signal.SIGINT)
            interrupt_on = None
    return proc.wait(timeout=900), "".join(lines)


@pytest.mark.slow
def test_ctrl_c_during_train_stops_cleanly_and_the_rerun_resumes(tmp_path):
    import subprocess
    import sys
    from fkd_utils import synthetic
    # enough faces that an epoch lasts seconds, so the signal lands inside epoch 2
    data = synthetic.generate(tmp_path / "data", counts={"afw": 160, "helen/testset": 4},
                              seed=0, image_size=96)
    env = {**os.environ, "FKD_HOME": str(tmp_path / "home"), "PYTHONUNBUFFERED": "1"}
    out = tmp_path / "w"
    cmd = [sys.executable, "-m", "fkd_utils.cli", "train", "--profile", "quick", "--data-dir",
           str(data), "--approach", "end-to-end", "--out", str(out)]
    code, text = _train(cmd, env, interrupt_on="Epoch 2/")
    assert code == 130, text
    assert text.strip().splitlines()[-1] == ("fkd train: stopped; rerun the same command to "
                                             "resume from epoch 2 of end_to_end")
    assert "Traceback" not in text and "Exception ignored" not in text
    assert not out.exists()
    # a partial export left by a process that no longer runs is cleaned up on the next start
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".w.partial-{dead.pid}"
    stale.mkdir()
    code, text = _train(cmd, env)
    assert code == 0, text
    assert "end_to_end: resumed a stopped run from epoch 2" in text
    assert (out / "manifest.json").is_file() and not stale.exists()
    assert not list(tmp_path.glob(".w.partial-*"))


# ------------------------------------------ models per profile AND data set (item 12)

def test_models_are_kept_per_data_set(tmp_path, tiny_data, fkd_home):
    from fkd_utils import pipeline
    from fkd_utils.preprocess import data_fingerprint
    other = _data_copy(tmp_path, tiny_data)
    (other / "afw" / sorted(p.name for p in (other / "afw").glob("*.pts"))[0]).unlink()
    a = pipeline.model_path("quick", "end_to_end", tiny_data)
    b = pipeline.model_path("quick", "end_to_end", other)
    assert a != b and a.parent.parent == b.parent.parent == fkd_home / "models" / "quick"
    assert a.parent.name.endswith(data_fingerprint(tiny_data)[:10])
    # a model trained before models were kept per data set is moved into its data's folder
    legacy = fkd_home / "models" / "quick" / "boxes.keras"
    legacy.parent.mkdir(parents=True, exist_ok=True)
    legacy.write_bytes(b"model")
    legacy.with_suffix(".json").write_text(json.dumps({"data_fingerprint": data_fingerprint(other)}))
    pipeline._adopt_unversioned(pipeline.model_path("quick", "boxes", tiny_data),
                                data_fingerprint(tiny_data))
    assert legacy.is_file()                                     # other data: left alone
    target = pipeline.model_path("quick", "boxes", other)
    pipeline._adopt_unversioned(target, data_fingerprint(other))
    assert not legacy.exists() and target.read_bytes() == b"model"
    assert target.with_suffix(".json").is_file()


def test_retrain_flags(monkeypatch, capsys, tmp_path):
    from fkd_utils import pipeline, reproduce
    seen = {}
    monkeypatch.setattr(reproduce, "reproduce",
                        lambda *a, extra_parameters=None, **k: seen.update(extra_parameters or {}))
    assert cli.main(["reproduce", "--profile", "quick", "--retrain"]) == 0
    assert seen == {"retrain": True}
    assert pipeline.wants_retrain({"end_to_end"}, "end_to_end")
    assert not pipeline.wants_retrain({"end_to_end"}, "boxes")
    assert pipeline.wants_retrain(True, "boxes") and not pipeline.wants_retrain(False, "boxes")
    assert "fkd train --retrain boxes" in pipeline.retrain_hint("boxes")


# ------------------------------------------------------------ the Python API (item 6)

def test_api_arrays_of_odd_shapes(untrained_weights):
    from fkd_utils.landmarker import Landmarker
    landmarker = Landmarker(untrained_weights)
    with pytest.raises(ValueError, match="no pixels"):
        landmarker(np.zeros((0, 0, 3), np.uint8))
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        landmarker(np.zeros((8, 8, 2), np.uint8))
    box = [[5.0, 5.0, 40.0, 40.0]]
    grey = np.random.default_rng(0).integers(0, 256, (48, 48, 1), dtype=np.uint8)
    faces = landmarker(grey, box)                       # (H, W, 1) is grey, as (H, W) is
    np.testing.assert_allclose(faces[0]["points"], landmarker(grey[..., 0], box)[0]["points"])


def test_exit_codes_are_documented_in_help_and_readme(capsys):
    code, out, _ = run_fkd(["--help"], capsys)
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert code == 0
    for line in ("0  all done", "1  some inputs failed", "2  usage or setup error",
                 "130  stopped with Ctrl-C"):
        assert line in out
    for words in ("**0** all done", "**1** some", "**2** usage or setup error", "**130**"):
        assert words in readme
