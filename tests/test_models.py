"""The ResNet builder: output shapes per head, parameter counts, saving, precision."""
import subprocess
import sys

import numpy as np
import pytest

keras = pytest.importorskip("keras")
from fkd_utils import models
from fkd_utils.io import DataError  # noqa: E402


@pytest.mark.parametrize("outputs", [136, 16, 22, 18, 40])
def test_paper_head_output_shape(outputs):
    model = models.build_resnet(64, outputs, head="paper")
    out = model(np.zeros((2, 64, 64, 3), np.float32), training=False)
    assert tuple(out.shape) == (2, outputs)
    assert model.count_params() > 1_000_000


def test_paper_architecture_layers():
    model = models.build_resnet(224, 136)
    names = [layer.name for layer in model.layers]
    for name in ("conv1_pad", "conv1_conv", "conv1_bn", "pool1_pool", "avg_pool", "dropout", "coords"):
        assert name in names
    conv1 = model.get_layer("conv1_conv")
    assert conv1.kernel_size == (7, 7) and conv1.strides == (2, 2) and conv1.filters == 64
    assert model.get_layer("dropout").rate == 0.5
    assert model.get_layer("coords").activation.__name__ == "relu"
    # three stages growing to 1024 filters
    assert model.get_layer("stage3_unit1_out").output.shape[-1] == 1024
    print(models.describe(model))


def test_region_model_has_one_stage_fewer():
    model = models.build_resnet(32, 40, stages=models.REGION_STAGES)
    names = {layer.name for layer in model.layers}
    assert "stage2_unit1_out" in names and "stage3_unit1_out" not in names
    assert model.count_params() < models.build_resnet(32, 40).count_params()


def test_paper_head_starts_at_the_mean_target():
    mean = np.linspace(5, 60, 136)
    model = models.build_resnet(64, 136, target_mean=mean)
    bias = model.get_layer("coords").get_weights()[1]
    np.testing.assert_allclose(bias, mean, rtol=1e-6)


def test_spatial_head_denormalises_and_round_trips(tmp_path):
    mean, std = np.arange(16.0), np.full(16, 3.0)
    model = models.build_resnet(64, 16, head="spatial", target_mean=mean, target_std=std)
    x = np.random.default_rng(0).random((2, 64, 64, 3)).astype(np.float32)
    path = tmp_path / "m.keras"
    model.save(path)
    again = keras.models.load_model(path, compile=False)
    np.testing.assert_allclose(model.predict(x, verbose=0), again.predict(x, verbose=0), atol=1e-5)
    # a zero pre-normalisation output maps to the mean
    coords_std = model.get_layer("coords_std")
    kernel, bias = coords_std.get_weights()
    coords_std.set_weights([np.zeros_like(kernel), np.zeros_like(bias)])
    np.testing.assert_allclose(model.predict(x, verbose=0)[0], mean, atol=1e-4)


def test_soft_argmax_reads_peaks_at_cell_centres_and_flat_maps_at_the_middle():
    size, cells = 64, 8  # a cell is 8 crop pixels wide
    heat = np.zeros((1, cells, cells, 2), np.float32)
    heat[0, 2, 5, 0] = 60.0  # a sharp peak: row 2, column 5 -> cell centre (5.5, 2.5) * 8 - 0.5
    out = np.asarray(models.SoftArgmax(size)(heat))
    np.testing.assert_allclose(out[0, :2], [5.5 * 8 - 0.5, 2.5 * 8 - 0.5], atol=1e-3)
    np.testing.assert_allclose(out[0, 2:], [(size - 1) / 2] * 2, atol=1e-4)  # flat map


@pytest.mark.parametrize("head, cells", [("integral", 8), ("fine_integral", 16)])
def test_integral_heatmaps_are_a_stride_of_8_or_4(head, cells):
    model = models.build_resnet(64, 136, head=head)
    assert model.get_layer("heatmaps").output.shape[1:] == (cells, cells, 68)


@pytest.mark.parametrize("head", ["integral", "fine_integral"])
def test_integral_head_round_trips_and_stays_inside_the_crop(tmp_path, head):
    model = models.build_resnet(64, 136, head=head, precision="mixed_bfloat16")
    assert model.output_shape == (None, 136) and model.output.dtype == "float32"
    x = np.random.default_rng(0).random((2, 64, 64, 3)).astype(np.float32)
    got = model.predict(x, verbose=0)
    assert got.min() >= -0.5 and got.max() <= 63.5  # a mean of cell centres
    model.save(tmp_path / "m.keras")
    again = keras.models.load_model(tmp_path / "m.keras", compile=False)
    np.testing.assert_allclose(got, again.predict(x, verbose=0), atol=1e-5)
    rebuilt = keras.models.model_from_json(model.to_json())  # how shipped weights are loaded
    rebuilt.set_weights(model.get_weights())
    np.testing.assert_allclose(got, rebuilt.predict(x, verbose=0), atol=1e-5)


def test_spatial_head_needs_stats():
    with pytest.raises(ValueError, match="target_mean"):
        models.build_resnet(64, 16, head="spatial")


def test_unknown_head_and_unit():
    with pytest.raises(ValueError, match="head"):
        models.build_resnet(64, 16, head="nope")
    with pytest.raises(ValueError, match="unit kind"):
        models.residual_stage(keras.Input((8, 8, 3)), 8, kind="nope")


def test_mixed_precision_keeps_float32_outputs():
    model = models.build_resnet(64, 136, head="spatial", target_mean=np.zeros(136),
                                target_std=np.ones(136), precision="mixed_bfloat16")
    assert model.output.dtype == "float32"
    assert keras.config.dtype_policy().name == "float32"  # the global policy is restored


def test_builds_and_trains_on_jax():
    pytest.importorskip("jax")
    code = (
        "import os, numpy as np, keras\n"
        "assert keras.backend.backend() == 'jax'\n"
        "from fkd_utils.models import build_resnet\n"
        "m = build_resnet(32, 16)\n"
        "m.compile('adam', 'mse')\n"
        "x = np.random.rand(8, 32, 32, 3).astype('float32'); y = np.random.rand(8, 16).astype('float32') * 30\n"
        "h = m.fit(x, y, epochs=3, batch_size=4, verbose=0).history['loss']\n"
        "assert h[-1] < h[0], h\n"
        "print('jax ok', m.predict(x, verbose=0).shape)\n"
        "m = build_resnet(32, 16, head='integral'); m.compile('adam', 'mae')\n"
        "print('integral', m.fit(x, y, epochs=1, batch_size=4, verbose=0).history['loss'][0] > 0)\n")
    env = {**__import__("os").environ, "KERAS_BACKEND": "jax"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "jax ok (8, 16)" in done.stdout and "integral True" in done.stdout


def test_load_exported_rebuilds_the_model_and_rejects_foreign_weights(tmp_path):
    model = models.build_resnet(32, 16, stages=((16, 1, 1),), target_mean=np.full(16, 10.0))
    (tmp_path / "m.json").write_text(model.to_json())
    np.savez(tmp_path / "m.weights.npz", **{f"w{i:03d}": w for i, w in enumerate(model.get_weights())})
    again = models.load_exported(tmp_path / "m.json", tmp_path / "m.weights.npz")
    x = np.random.default_rng(0).random((2, 32, 32, 3)).astype(np.float32)
    np.testing.assert_allclose(model.predict(x, verbose=0), again.predict(x, verbose=0), atol=1e-5)
    other = models.build_resnet(32, 16, stages=((8, 1, 1),), target_mean=np.full(16, 10.0))
    np.savez(tmp_path / "o.weights.npz", **{f"w{i:03d}": w for i, w in enumerate(other.get_weights())})
    with pytest.raises(DataError, match="do not fit the architecture in m.json"):
        models.load_exported(tmp_path / "m.json", tmp_path / "o.weights.npz")

