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



def _textbook_unit(x, filters, strides=1):
    """The residual unit as notebook 02 writes it (Géron's style): conv-BN-ReLU-conv-BN plus
    the shortcut, projected by a 1x1 convolution (and BN) when the shape changes."""
    from keras import layers
    y = layers.Conv2D(filters, 3, strides=strides, padding="same")(x)
    y = layers.BatchNormalization()(y)
    y = layers.Activation("relu")(y)
    y = layers.Conv2D(filters, 3, padding="same")(y)
    y = layers.BatchNormalization()(y)
    shortcut = x
    if strides != 1 or x.shape[-1] != filters:
        shortcut = layers.Conv2D(filters, 1, strides=strides)(x)
        shortcut = layers.BatchNormalization()(shortcut)
    return layers.Activation("relu")(layers.Add()([shortcut, y]))


@pytest.mark.parametrize("channels, filters, stride", [(64, 64, 1), (64, 128, 2), (32, 64, 1)])
def test_textbook_unit_matches_the_package_unit(channels, filters, stride):
    def build(unit):
        inputs = keras.Input((16, 16, channels))
        return keras.Model(inputs, unit(inputs))
    ours = build(lambda x: _textbook_unit(x, filters, stride))
    package = build(lambda x: models.residual_unit(x, filters, stride))
    assert ours.output_shape == package.output_shape == (None, 16 // stride, 16 // stride, filters)
    assert ours.count_params() == package.count_params()
    assert _layer_signature(ours) == _layer_signature(package)
    # and both count what the textbook counts: two 3x3 convolutions, two batch norms (4
    # values per filter), and a 1x1 projection with its batch norm when the shape changes
    projected = stride != 1 or channels != filters
    convs = 9 * channels * filters + filters + 9 * filters * filters + filters
    proj = channels * filters + filters + 4 * filters if projected else 0
    assert package.count_params() == convs + 2 * 4 * filters + proj


def _layer_signature(model):
    """Sorted (layer type, parameters, kernel, strides) of a model's layers."""
    return sorted((type(layer).__name__, layer.count_params(),
                   str(getattr(layer, "kernel_size", "")), str(getattr(layer, "strides", "")))
                  for layer in model.layers)


def test_block_table_sums_to_the_model():
    model = models.build_resnet(64, 136)
    table = models.block_table(model)
    assert list(table.index) == ["input", "stem", "stage1", "stage2", "stage3", "head"]
    assert table["params"].sum() == model.count_params()
    assert table["layers"].sum() == len(model.layers) - 1
    assert table.loc["input", "output shape"] == (64, 64, 3)
    assert table.loc["stage3", "output shape"] == (4, 4, 1024)
    assert table.loc["head", "output shape"] == (136,)
    assert table.loc["stage1", "params"] == sum(
        layer.count_params() for layer in model.layers if layer.name.startswith("stage1_"))
