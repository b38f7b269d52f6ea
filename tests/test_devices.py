"""Device reporting and the backend choice; on two simulated JAX devices, ``fkd info`` lists
both and ``fkd train --profile quick`` trains in data parallel on them."""
import json
import os
import subprocess
import sys

import pytest

from fkd_utils import devices
from fkd_utils.profiles import get_profile

TWO_DEVICES = {"XLA_FLAGS": "--xla_force_host_platform_device_count=2", "KERAS_BACKEND": "jax"}


def _fake_machine(monkeypatch, gpu, plugin, keras_json=None, tmp_path=None):
    monkeypatch.setattr(devices, "nvidia_gpu_present", lambda: gpu)
    monkeypatch.setattr(devices, "jax_gpu_plugin_installed", lambda: plugin)
    monkeypatch.setattr(devices, "_keras_config_backend", lambda: keras_json)
    monkeypatch.delitem(sys.modules, "keras", raising=False)


@pytest.mark.parametrize("gpu, plugin, chosen, expected", [
    (True, True, None, "jax"),            # the gpu extra on a GPU machine
    (False, True, None, None),            # plugin but no GPU: keep the default backend
    (True, False, None, None),            # GPU but no plugin: JAX could not use it
    (True, True, "tensorflow", None),     # the user's keras.json decides
])
def test_choose_backend_only_when_nobody_chose(monkeypatch, gpu, plugin, chosen, expected):
    _fake_machine(monkeypatch, gpu, plugin, chosen)
    env = {}
    assert devices.choose_backend(env) == expected
    assert env.get("KERAS_BACKEND") == expected
    env = {"KERAS_BACKEND": "torch"}  # an explicit choice always wins
    assert devices.choose_backend(env) is None and env == {"KERAS_BACKEND": "torch"}


def test_info_lists_the_backend_devices_in_process():
    import keras
    found = devices.info()
    assert found["keras_backend"] == keras.backend.backend()
    assert found["devices"] and {d["kind"] for d in found["devices"]} <= {"cpu", "gpu", "tpu"}
    assert found["accelerators"] == sum(d["kind"] != "cpu" for d in found["devices"])
    assert found["versions"]["keras"] == keras.__version__
    line = devices.describe(found)
    assert "\n" not in line and found["keras_backend"] in line


def test_describe_says_when_there_is_no_accelerator():
    found = {"keras_backend": "jax", "accelerators": 0, "hint": "",
             "devices": [{"kind": "cpu", "name": "cpu", "id": "cpu:0"}] * 2,
             "versions": {"python": "3.11.7", "keras": "3.15.1", "jax": "0.10.2"}}
    line = devices.describe(found)
    assert "2 x cpu" in line and "no accelerator" in line
    found.update(accelerators=1, devices=[{"kind": "gpu", "name": "NVIDIA H200", "id": "gpu:0"}])
    assert "1 x gpu (NVIDIA H200)" in devices.describe(found)
    assert "no accelerator" not in devices.describe(found)


def _fkd(*args, env, timeout=900):
    out = subprocess.run([sys.executable, "-m", "fkd_utils.cli", *args], env=env,
                         capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def test_query_runs_in_a_fresh_process_with_two_simulated_devices():
    found = devices.query(env={**os.environ, **TWO_DEVICES})
    assert found["keras_backend"] == "jax"
    assert [d["id"] for d in found["devices"]] == ["cpu:0", "cpu:1"]
    cli = json.loads(_fkd("info", "--json", env={**os.environ, **TWO_DEVICES}))
    assert cli["devices"] == found["devices"]


@pytest.mark.slow
def test_fkd_train_quick_runs_data_parallel_on_two_devices(tmp_path):
    """The quick profile's end-to-end model through the command line: its manifest says it
    trained on both devices (read from where the trained weights live) with the batch and
    learning rate scaled. That two devices compute what one does is
    test_train.test_data_parallel_on_two_devices_matches_one_device."""
    home = tmp_path / "home"  # its own models/quick, apart from the other tests' models
    env = {**os.environ, **TWO_DEVICES, "FKD_HOME": str(home)}
    log = _fkd("train", "--profile", "quick", "--approach", "end-to-end",
               "--out", str(tmp_path / "weights"), env=env)
    assert "data-parallel on 2 devices" in log
    quick = get_profile("quick")
    [path] = (home / "models" / "quick").glob("*/end_to_end.json")  # one folder per data set
    manifest = json.loads(path.read_text())
    assert manifest["data_parallel"] == 2 and manifest["devices"] == ["cpu:0", "cpu:1"]
    assert manifest["global_batch_size"] == 2 * quick.batch_size
    assert manifest["learning_rate"] == pytest.approx(2 * quick.learning_rate)
    assert manifest["keras_backend"] == "jax" and 0 < manifest["epochs_run"] <= quick.epochs
    assert manifest["train_images_per_s"] > 0
