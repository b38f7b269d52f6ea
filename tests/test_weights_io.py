"""Weights folders: the shipped weights inside the package, manifests and checksums
(export/import round trips are in test_landmarker.py)."""
import json

import pytest

from fkd_utils import paths, weights_io
from fkd_utils.io import DataError


def test_the_shipped_weights_are_package_data_with_a_manifest_matching_the_files():
    folder = weights_io.shipped_weights_dir()
    assert folder == paths.PACKAGE_DIR / "weights" / "real"
    manifest = weights_io.read_weights_manifest(folder)
    for name, digest in manifest["files"].items():
        assert weights_io.sha256(folder / name) == digest, name
    assert set(manifest["models"]) >= {"cascade_stage1", "cascade_stage3", "end_to_end"}


def test_trained_weights_live_under_the_home(monkeypatch, tmp_path):
    monkeypatch.setenv("FKD_HOME", str(tmp_path))
    assert weights_io.shipped_weights_dir("cpu") == tmp_path.resolve() / "weights" / "cpu"


def test_a_folder_without_manifest_says_to_pass_weights(tmp_path):
    with pytest.raises(DataError, match=r"manifest.json: no manifest; pass --weights DIR"):
        weights_io.read_weights_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"profile": "x"}))
    with pytest.raises(DataError, match="lacks 'image_size'"):
        weights_io.read_weights_manifest(tmp_path)


def test_a_replaced_file_fails_its_checksum(tmp_path):
    folder = weights_io.shipped_weights_dir()
    for suffix in (".json", ".weights.npz"):
        (tmp_path / f"cascade_region_nose{suffix}").write_bytes(
            (folder / f"cascade_region_nose{suffix}").read_bytes())
    manifest = weights_io.read_weights_manifest(folder)
    manifest["files"]["cascade_region_nose.weights.npz"] = "0" * 64
    with pytest.raises(DataError, match="sha256 does not match"):
        weights_io.import_model(tmp_path, "cascade_region_nose", manifest)


def test_the_shipped_folder_stays_within_its_40_mb():
    folder = weights_io.shipped_weights_dir("real")
    manifest = weights_io.read_weights_manifest(folder)
    listed = sum((folder / name).stat().st_size for name in manifest["files"])
    everything = sum(path.stat().st_size for path in folder.iterdir() if path.is_file())
    assert listed <= everything <= 40e6
    assert "cascade_region_jaw.int8.onnx" in manifest["files"]   # the default's jaw, in int8
