"""Training: targets, a short run that learns, resume after an interrupted fit."""
import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import keras

from fkd_utils import crop, train
from fkd_utils.augment import NO_AUGMENT
from fkd_utils.markup import REGIONS
from fkd_utils.models import build_resnet


def _blob_set(n=48, size=32, seed=0):
    """Images with one bright blob; every 'point' sits on the blob, so it is learnable."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    centres = rng.uniform(8, size - 8, (n, 2))
    images = np.stack([np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / 8.0) for cx, cy in centres])
    images = np.repeat((images[..., None] * 255).astype(np.uint8), 3, axis=-1)
    points = np.repeat(centres[:, None], 68, axis=1) + rng.normal(0, 0.01, (n, 68, 2))
    return images, points


def test_box_targets_match_the_numpy_reference():
    points = np.random.default_rng(1).uniform(10, 100, (68, 2))
    boxes = train.region_boxes_tf(tf.constant(points, tf.float32)).numpy().reshape(4, 4)
    np.testing.assert_allclose(boxes, crop.region_boxes(points, train.REGION_MARGIN), atol=1e-3)


def test_region_targets_pick_the_region_points():
    points = np.arange(136, dtype=np.float32).reshape(68, 2)
    got = train.target_fn("region:mouth")(tf.constant(points)).numpy()
    np.testing.assert_array_equal(got, points[list(REGIONS["mouth"])].ravel())
    assert train.target_size("region:mouth") == 40 and train.target_size("boxes") == 16
    with pytest.raises(ValueError, match="unknown target"):
        train.target_fn("region:ears")


def test_selection_mask_is_a_stable_tenth():
    ids = [f"afw/{i}.jpg" for i in range(2000)]
    mask = train.selection_mask(ids)
    assert 150 < mask.sum() < 250
    # independent of order and of the other ids
    assert train.selection_mask(ids[::-1])[::-1].tolist() == mask.tolist()
    assert train.selection_mask(ids[:100]).tolist() == mask[:100].tolist()


def test_wing_loss_is_l1_like_far_and_log_like_near():
    y = np.zeros((1, 2), np.float32)
    far = keras.ops.convert_to_numpy(train.wing_loss(y, np.full((1, 2), 30.0, np.float32)))
    near = keras.ops.convert_to_numpy(train.wing_loss(y, np.full((1, 2), 1.0, np.float32)))
    assert far[0] == pytest.approx(30 - (10 - 10 * np.log(1 + 10 / 2)), rel=1e-5)
    assert near[0] == pytest.approx(10 * np.log(1.5), rel=1e-5)


def test_short_training_lowers_the_loss(tmp_path):
    images, points = _blob_set()
    model = build_resnet(32, 136, stages=((32, 1, 1),), target_mean=points.reshape(len(points), -1).mean(0))
    train.compile_model(model, "mse", 1e-3)
    history = train.fit_model(model, (images[:40], points[:40]), (images[40:], points[40:]),
                              tmp_path / "m.keras", epochs=6, batch_size=8, augment=NO_AUGMENT,
                              patience=10, verbose=0)
    assert history["loss"][-1] < history["loss"][0]
    assert (tmp_path / "m.keras").is_file() and (tmp_path / "m.history.json").is_file()
    assert json.loads((tmp_path / "m.history.json").read_text())["epochs_run"] == 6


def test_cosine_tail_falls_from_one_towards_zero():
    factors = [train.cosine_tail(k, 6) for k in range(6)]
    assert 1.0 > factors[0] and all(a > b > 0 for a, b in zip(factors, factors[1:]))
    np.testing.assert_allclose(factors[0] + factors[-1], 1.0)  # symmetric half cosine


def _learning_rates(tmp_path, epochs, anneal, crash_after=None):
    images, points = _blob_set(24)
    model = train.compile_model(build_resnet(32, 136, stages=((16, 1, 1),)), "mse", 1e-3)
    extra = [_Crash(crash_after)] if crash_after else []
    train.fit_model(model, (images[:16], points[:16]), (images[16:], points[16:]),
                    tmp_path / "m.keras", epochs=epochs, batch_size=8, augment=NO_AUGMENT,
                    verbose=0, anneal_epochs=anneal, extra_callbacks=extra)
    return train.load_history(tmp_path / "m.keras")["learning_rate"]


def test_annealing_epochs_follow_the_cosine_and_survive_a_kill(tmp_path):
    expected = [1e-3] * 2 + [1e-3 * train.cosine_tail(k, 3) for k in range(3)]
    np.testing.assert_allclose(_learning_rates(tmp_path / "a", 2, 3), expected, rtol=1e-5)
    with pytest.raises(KeyboardInterrupt):  # killed inside the tail, then resumed
        _learning_rates(tmp_path / "b", 2, 3, crash_after=4)
    np.testing.assert_allclose(_learning_rates(tmp_path / "b", 2, 3), expected, rtol=1e-5)


class _Crash(keras.callbacks.Callback):
    def __init__(self, after):
        super().__init__()
        self.after = after

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.after:
            raise KeyboardInterrupt("simulated kill")


def test_interrupted_fit_resumes_from_its_backup(tmp_path):
    images, points = _blob_set(24)
    data = (images[:16], points[:16]), (images[16:], points[16:])

    def fresh():
        model = build_resnet(32, 136, stages=((16, 1, 1),))
        return train.compile_model(model, "mse")

    with pytest.raises(KeyboardInterrupt):
        train.fit_model(fresh(), *data, tmp_path / "m.keras", epochs=4, batch_size=8,
                        augment=NO_AUGMENT, verbose=0, extra_callbacks=[_Crash(2)])
    assert (tmp_path / "m.backup").is_dir() and not (tmp_path / "m.keras").exists()
    history = train.fit_model(fresh(), *data, tmp_path / "m.keras", epochs=4, batch_size=8,
                              augment=NO_AUGMENT, verbose=0)
    assert history["epochs_run"] == 2  # epochs 3 and 4 only: 1 and 2 came from the backup
    # the full curve (epochs 0-3) survives the kill, in the CSV and in load_history
    rows = (tmp_path / "m.history.csv").read_text().strip().splitlines()
    assert [r.split(",")[0] for r in rows] == ["epoch", "0", "1", "2", "3"]
    assert len(train.load_history(tmp_path / "m.keras")["loss"]) == 4


def test_make_dataset_augments_only_when_asked():
    images, points = _blob_set(8)
    plain = next(iter(train.make_dataset(images, points, "points", 8)))
    np.testing.assert_allclose(plain[1].numpy(), points.reshape(8, -1).astype(np.float32), atol=1e-4)
    augmented = next(iter(train.make_dataset(images, points, "points", 8,
                                             augment=train.AugmentConfig(), seed=1)))
    assert not np.allclose(augmented[1].numpy(), plain[1].numpy())
    assert plain[0].dtype == tf.float32 and float(tf.reduce_max(plain[0])) <= 1.0


def test_batch_bounds_cut_every_count_into_power_of_two_pieces():
    for n in (0, 1, 3, 33, 64, 70, 127, 200):
        bounds = train.batch_bounds(n, 64)
        assert [a for a, _ in bounds] == [b for _, b in [(0, 0)] + bounds][:-1]  # contiguous
        assert sum(b - a for a, b in bounds) == n
        assert {b - a for a, b in bounds} <= {1, 2, 4, 8, 16, 32, 64}
    with pytest.raises(ValueError, match="power of two"):
        train.batch_bounds(10, 48)


def test_predict_targets_matches_the_model_with_few_batch_sizes(monkeypatch):
    model = build_resnet(32, 136, stages=((8, 1, 1), (8, 1, 2)), head="integral")
    images = np.random.default_rng(0).integers(0, 256, (70, 32, 32, 3), dtype=np.uint8)
    expected = keras.ops.convert_to_numpy(model(images.astype(np.float32) / 255.0))
    np.testing.assert_allclose(train.predict_targets(model, images), expected, atol=1e-4)
    assert train.predict_targets(model, images[:0]).shape == (0, 136)

    class Recorder:  # what a compiled predict function would be traced for
        output_shape, sizes = (None, 136), set()

        def predict_on_batch(self, x):
            self.sizes.add(len(x))
            return np.zeros((len(x), 136))
    recorder = Recorder()
    monkeypatch.setattr(train, "_compiles_per_batch_size", lambda model: True)  # as on JAX
    for n in range(1, 100):  # any count of faces: at most 7 batch sizes, so 7 compilations
        assert train.predict_targets(recorder, images[:1].repeat(n, 0)).shape == (n, 136)
    assert recorder.sizes == {1, 2, 4, 8, 16, 32, 64}
    # a runtime that takes any batch size gets the faces in one pass, up to 4 x batch_size
    monkeypatch.setattr(train, "_compiles_per_batch_size", lambda model: False)
    recorder.sizes = set()
    for n in (1, 31, 99, 256, 300):
        assert train.predict_targets(recorder, images[:1].repeat(n, 0)).shape == (n, 136)
    assert recorder.sizes == {1, 31, 99, 256, 44}


#: Two simulated JAX CPU devices, as in CI (no GPU there).
TWO_DEVICES = {"XLA_FLAGS": "--xla_force_host_platform_device_count=2", "KERAS_BACKEND": "jax"}

_PARALLEL_SCRIPT = """
import json, sys
import keras
sys.path.insert(0, sys.argv[1])
from fkd_utils import train
from fkd_utils.augment import NO_AUGMENT
from fkd_utils.models import build_resnet
from test_train import _blob_set

def run(devices, batch, lr, out):
    with train.data_parallel(devices) as used:
        keras.utils.set_random_seed(0)
        images, points = _blob_set(72)
        model = build_resnet(32, 136, stages=((16, 1, 1),),
                             target_mean=points.reshape(len(points), -1).mean(0))
        train.compile_model(model, "mse", lr)
        history = train.fit_model(model, (images[:64], points[:64]), (images[64:], points[64:]),
                                  out, epochs=3, batch_size=batch, augment=NO_AUGMENT, verbose=0)
    return {"used": used, "held_by": train.variable_devices(model), "loss": history["loss"],
            "val_loss": history["val_loss"],
            "points": train.predict_targets(model, images[64:]).tolist()}

devices = train.training_devices()
out = sys.argv[2]
print(json.dumps({"devices": devices,
                  "two": run(devices, 32, 2e-3, out + "/two/m.keras"),
                  "one": run(devices[:1], 32, 2e-3, out + "/one/m.keras"),
                  "unscaled": run(devices[:1], 16, 1e-3, out + "/unscaled/m.keras")}))
"""


@pytest.mark.slow
def test_data_parallel_on_two_devices_matches_one_device(tmp_path):
    """Two simulated devices, global batch 32 and learning rate 2e-3, against one device
    with the same global batch and rate: the same arithmetic but for the order of the
    float32 sums (each device sums its half, then the halves are averaged), so losses agree
    to float32 rounding. Measured: 4e-7 relative and 4e-5 px; the tolerance (1e-5, 1e-3 px)
    is 25x that, and 20x below the gap to a run that forgot to scale (batch 16, rate 1e-3:
    2e-4 relative, 0.03 px), which the test also checks it tells apart."""
    import os
    import subprocess
    import sys
    env = {**os.environ, **TWO_DEVICES}
    out = subprocess.run([sys.executable, "-c", _PARALLEL_SCRIPT, str(Path(__file__).parent),
                          str(tmp_path)], env=env, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    runs = json.loads(out.stdout.strip().splitlines()[-1])
    two, one, unscaled = runs["two"], runs["one"], runs["unscaled"]
    assert runs["devices"] == ["cpu:0", "cpu:1"]
    assert two["used"] == two["held_by"] == ["cpu:0", "cpu:1"]   # both devices hold the model
    assert one["held_by"] == ["cpu:0"]
    for key in ("loss", "val_loss"):
        np.testing.assert_allclose(two[key], one[key], rtol=1e-5)
        assert np.max(np.abs(np.subtract(two[key], unscaled[key])) / np.abs(unscaled[key])) > 2e-5
    np.testing.assert_allclose(two["points"], one["points"], atol=1e-3)
    assert np.abs(np.subtract(two["points"], unscaled["points"])).max() > 1e-3


def test_scaled_for_multiplies_batch_and_learning_rate():
    assert train.scaled_for(["a"], 16, 1e-3) == (16, 1e-3, "")
    batch, rate, note = train.scaled_for(["a", "b", "c", "d"], 16, 1e-3)
    assert (batch, rate) == (64, 4e-3) and "scaled linearly" in note and "4 devices" in note


def test_fkd_devices_caps_the_device_list(monkeypatch):
    monkeypatch.setenv(train.DEVICES_ENV, "1")
    assert len(train.training_devices()) == 1
    monkeypatch.setenv(train.DEVICES_ENV, "zero")
    with pytest.raises(ValueError, match="FKD_DEVICES"):
        train.training_devices()


_MIRRORED_SCRIPT = """
import json, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
sys.path.insert(0, sys.argv[1])
from fkd_utils import train
from fkd_utils.augment import NO_AUGMENT
from fkd_utils.models import build_resnet
from test_train import _blob_set
images, points = _blob_set(40)
devices = [d.name for d in tf.config.list_logical_devices("CPU")]
with train.data_parallel(devices) as used:
    model = build_resnet(32, 136, stages=((16, 1, 1),),
                         target_mean=points.reshape(len(points), -1).mean(0))
    train.compile_model(model, "mse", 2e-3)
    history = train.fit_model(model, (images[:32], points[:32]), (images[32:], points[32:]),
                              sys.argv[2] + "/m.keras", epochs=2, batch_size=16,
                              augment=NO_AUGMENT, verbose=0)
import keras  # pipeline.get_model predicts with the saved model, on one device, like this:
one = keras.models.load_model(sys.argv[2] + "/m.keras", compile=False)
print(json.dumps({"used": used, "held_by": train.variable_devices(model),
                  "loss": history["loss"], "points": train.predict_targets(one, images[32:]).shape}))
"""


@pytest.mark.slow
def test_data_parallel_on_tensorflow_mirrors_the_model(tmp_path):
    """TensorFlow's branch (MirroredStrategy) on two logical CPU devices: the variables are
    mirrored on both and the fit runs. Not compared with one device: its batch statistics are
    per device, so the arithmetic differs by design."""
    import os
    import subprocess
    import sys
    env = {**os.environ, "KERAS_BACKEND": "tensorflow"}
    out = subprocess.run([sys.executable, "-c", _MIRRORED_SCRIPT, str(Path(__file__).parent),
                          str(tmp_path)], env=env, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    run = json.loads(out.stdout.strip().splitlines()[-1])
    assert run["used"] == ["/device:CPU:0", "/device:CPU:1"]
    assert [d.rsplit("/", 1)[-1] for d in run["held_by"]] == ["device:CPU:0", "device:CPU:1"]
    assert len(run["loss"]) == 2 and all(np.isfinite(run["loss"])) and run["points"] == [8, 136]


def test_predicting_with_many_models_traces_each_once_without_retracing_warnings(caplog):
    images = np.random.default_rng(0).integers(0, 256, (70, 32, 32, 3), dtype=np.uint8)
    models = [build_resnet(32, 8, stages=((8, 1, 1),), name=f"m{i}") for i in range(6)]
    with caplog.at_level("WARNING", logger="tensorflow"):
        for model in models * 2:  # like a notebook's region ResNets, on two splits
            for n in (70, 3, 1):
                train.predict_targets(model, images[:n])
    assert not [r for r in caplog.records if "retracing" in r.getMessage()]
    if keras.backend.backend() == "tensorflow":
        assert all(train.compiled_predict(m).experimental_get_tracing_count() == 1 for m in models)
