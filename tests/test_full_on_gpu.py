"""benchmarks/full_on_gpu.py: the state of a resumable device run survives pack and unpack
in parts small enough to come back from a device call."""
import importlib.util
import os
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "full_on_gpu.py"
spec = importlib.util.spec_from_file_location("full_on_gpu", SCRIPT)
full_on_gpu = importlib.util.module_from_spec(spec)
spec.loader.exec_module(full_on_gpu)


def _state(root, model_bytes):
    home = root / "home"
    for rel, data in {"models/full/end_to_end.keras": model_bytes,
                      "models/full/end_to_end.backup/latest.weights.h5": b"epoch 7",
                      "models/full/boxes.keras": b"finished", "models/full/boxes.json": b"{}",
                      "models/full/boxes.best.keras": b"same weights as boxes.keras",
                      "runs/full/02_end_to_end.ipynb": b"{}",
                      "results/full/results.json": b"{}",
                      "data/processed/crops.npz": b"recomputed, never packed",
                      "models/cpu/other.keras": b"another profile"}.items():
        (home / rel).parent.mkdir(parents=True, exist_ok=True)
        (home / rel).write_bytes(data)
    full_on_gpu.save_timings(root, {"02_end_to_end.ipynb": {"wall_s": 5.0, "calls": 2, "done": False}})


def test_pack_and_unpack_round_trip_in_small_parts(tmp_path, monkeypatch):
    monkeypatch.setattr(full_on_gpu, "PART_BYTES", 1000)
    model = os.urandom(2500)                      # incompressible: several parts of 1000 bytes
    _state(tmp_path / "a", model)
    full_on_gpu.main(["pack", "--state", str(tmp_path / "a"), "--out", str(tmp_path / "out")])
    parts = sorted((tmp_path / "out").iterdir())
    assert len(parts) >= 3 and all(p.stat().st_size <= 1000 for p in parts)
    full_on_gpu.main(["unpack", "--state", str(tmp_path / "b"), str(tmp_path / "out")])
    home = tmp_path / "b" / "home"
    assert (home / "models/full/end_to_end.keras").read_bytes() == model
    assert (home / "models/full/end_to_end.backup/latest.weights.h5").read_bytes() == b"epoch 7"
    assert (home / "runs/full/02_end_to_end.ipynb").is_file()
    assert not (home / "data").exists() and not (home / "models/cpu").exists()
    assert (home / "models/full/boxes.keras").is_file()
    assert not (home / "models/full/boxes.best.keras").exists()   # finished: not needed
    assert full_on_gpu.load_timings(tmp_path / "b")["02_end_to_end.ipynb"]["calls"] == 2


def test_pack_refuses_a_state_too_big_to_come_back(tmp_path, monkeypatch):
    monkeypatch.setattr(full_on_gpu, "PART_BYTES", 100)
    _state(tmp_path / "a", os.urandom(2000))
    with pytest.raises(SystemExit, match="more than 8 parts"):
        full_on_gpu.main(["pack", "--state", str(tmp_path / "a"), "--out", str(tmp_path / "out")])
