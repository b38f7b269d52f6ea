"""The ``fkd`` command line on a tiny synthetic set."""
import json

import numpy as np
import pytest

from fkd_utils import cli, synthetic
from fkd_utils.data import ground_truth
from fkd_utils.pipeline import save_predictions

COUNTS = {"afw": 3, "helen/testset": 3, "300W/01_Indoor": 2, "300W/02_Outdoor": 2}


@pytest.fixture(scope="module")
def small_set(tmp_path_factory):
    return synthetic.generate(tmp_path_factory.mktemp("cli") / "set", counts=COUNTS, seed=3)


def test_data_synth_writes_and_refuses_to_overwrite(tmp_path, capsys):
    out = tmp_path / "s"
    assert cli.main(["data", "synth", str(out), "--seed", "1"]) == 0
    assert (out / "afw").is_dir()
    (out / "keep.txt").write_text("mine")
    assert cli.main(["data", "synth", str(out)]) == 2
    assert "refus" in capsys.readouterr().err.lower() or (out / "keep.txt").exists()
    assert (out / "keep.txt").read_text() == "mine"


def test_data_check_json(small_set, capsys):
    assert cli.main(["data", "check", str(small_set), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["splits"]["train"] == {"count": 3, "subsets": {"afw": 3}}
    assert report["splits"]["test"]["count"] == 4
    assert report["splits"]["validation"]["subsets"] == {"helen": 3}
    assert report["problems"] == []
    assert "ibug" in report["absent_folders"]


def test_data_check_fails_on_a_broken_layout(small_set, tmp_path, capsys):
    import shutil
    broken = tmp_path / "broken"
    shutil.copytree(small_set, broken)
    next((broken / "afw").glob("*.pts")).write_text("version: 1\nn_points: 68\n{\n1 2\n}\n")
    assert cli.main(["data", "check", str(broken)]) == 1
    assert "afw" in capsys.readouterr().out
    assert cli.main(["data", "check", str(tmp_path / "missing")]) == 2
    assert "data directory not found" in capsys.readouterr().err


def test_evaluate_perfect_and_mismatched_predictions(small_set, tmp_path, capsys):
    ids, _, gt = ground_truth(small_set, "test")
    save_predictions(tmp_path / "p.npz", ids, gt)
    assert cli.main(["evaluate", str(tmp_path / "p.npz"), "--data-dir", str(small_set),
                     "--split", "test", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["68"]["all"]["nme"] == 0 and report["51"]["all"]["auc"] == 1
    assert set(report["68"]) == {"all", "indoor", "outdoor"}
    save_predictions(tmp_path / "q.npz", ids[:2], gt[:2])
    assert cli.main(["evaluate", str(tmp_path / "q.npz"), "--data-dir", str(small_set),
                     "--split", "test"]) == 2
    assert "ids do not match" in capsys.readouterr().err


def test_unknown_profile_is_a_clear_error(capsys):
    assert cli.main(["train", "--profile", "huge"]) == 2
    assert "unknown profile 'huge'" in capsys.readouterr().err


def test_version(capsys):
    import fkd_utils
    with pytest.raises(SystemExit) as done:
        cli.main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"fkd {fkd_utils.__version__}"


def test_export_writes_the_models_and_the_manifest(tmp_path, capsys):
    from fkd_utils.weights_io import shipped_weights_dir
    weights = tmp_path / "w"
    weights.mkdir()
    manifest = json.loads((shipped_weights_dir() / "manifest.json").read_text())
    manifest["models"] = {"cascade_region_nose": manifest["models"]["cascade_region_nose"]}
    manifest.pop("shape_correction", None)  # (a folder of one region ResNet: no cascade)
    manifest["files"].pop("shape_correction.npz", None)
    (weights / "manifest.json").write_text(json.dumps(manifest))
    for suffix in (".json", ".weights.npz"):
        (weights / f"cascade_region_nose{suffix}").write_bytes(
            (shipped_weights_dir() / f"cascade_region_nose{suffix}").read_bytes())
    out = tmp_path / "onnx"
    assert cli.main(["export", "--format", "onnx", "--out", str(out), "--weights", str(weights)]) == 0
    written = json.loads((out / "manifest.json").read_text())
    assert written["format"] == "onnx" and list(written["files"]) == ["cascade_region_nose.onnx"]
    assert cli.main(["export", "--format", "onnx", "--out", str(out), "--weights", str(weights)]) == 2
    assert "--overwrite" in capsys.readouterr().err


def test_plain_predict_prints_nothing_on_stderr(tmp_path):
    """TensorFlow's start-up lines (oneDNN notice, absl) are kept off stderr."""
    import subprocess
    import sys
    from pathlib import Path
    from skimage import data as skdata
    from skimage.io import imsave
    imsave(tmp_path / "photo.jpg", skdata.astronaut())
    done = subprocess.run([str(Path(sys.executable).parent / "fkd"), "predict", "photo.jpg"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0 and done.stdout.startswith("1 images")
    assert done.stderr == ""


def test_quantize_adds_int8_models_and_names_what_is_wrong(untrained_weights, tiny_data,
                                                           tmp_path, capsys):
    import shutil
    weights = tmp_path / "w"
    shutil.copytree(untrained_weights, weights)
    assert cli.main(["quantize", "--weights", str(weights), "--data-dir",
                     str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "missing") in err and "Traceback" not in err
    assert not list(weights.glob("*.int8.onnx"))
    assert cli.main(["quantize", "--weights", str(weights), "--data-dir", str(tiny_data),
                     "--images", "3"]) == 0
    assert "wrote 8 int8 models" in capsys.readouterr().out  # 3 stages, 5 region ResNets
    assert cli.main(["quantize", "--weights", str(weights), "--data-dir", str(tiny_data)]) == 2
    assert "--overwrite" in capsys.readouterr().err
