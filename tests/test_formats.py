"""Standard formats (``fkd export``) and the ONNX Runtime landmarker: the portable models are
the shipped ones in float32, each exported file gives the Keras model's points within 0.05
crop pixels on the same crops, a ``.keras`` file loads in plain Keras, and
``Landmarker(runtime="onnx")`` finds the same points as the Keras runtime."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from skimage import data as skdata
from skimage.transform import resize

from fkd_utils import formats, landmarker, weights_io
from fkd_utils.models import SoftArgmax

SHIPPED = weights_io.shipped_weights_dir("real")
TOLERANCE = 0.05  # crop pixels
#: one model per head: the cascade's integral head (SoftArgmax), a region ResNet, the paper head
SAMPLE = ("cascade_stage1", "cascade_region_nose", "end_to_end")


def crops(size, count=6, seed=0):
    """Crops of a real photo (skimage's astronaut) around her face, jittered, in [0, 1]."""
    image = skdata.astronaut()
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        x0, y0 = rng.integers(120, 190), rng.integers(20, 80)
        side = rng.integers(180, 240)
        out.append(resize(image[y0:y0 + side, x0:x0 + side], (size, size), anti_aliasing=True))
    return np.asarray(out, np.float32)


def test_builtin_soft_argmax_equals_soft_argmax():
    import keras
    heat = keras.Input((16, 16, 68))
    model = keras.Model(heat, formats.builtin_soft_argmax(heat, 128))
    model.get_layer("coords_centres").set_weights([formats.cell_centres(16, 16, 128)])
    maps = np.random.default_rng(0).normal(0, 3, (4, 16, 16, 68)).astype(np.float32)
    want = np.asarray(SoftArgmax(128)(maps))
    np.testing.assert_allclose(model.predict_on_batch(maps), want, atol=1e-4)


def test_force_float32_rewrites_every_dtype_policy():
    config = {"layers": [{"dtype": {"class_name": "DTypePolicy", "config": {"name": "mixed_bfloat16"}}},
                         {"config": {"dtype": {"class_name": "DTypePolicy",
                                               "config": {"name": "mixed_float16"}}}}]}
    formats._force_float32(config)
    assert "mixed" not in json.dumps(config)


def _load(path, fmt):
    """A callable from images to outputs for an exported file, with that format's own runtime."""
    if fmt == "onnx":
        return formats.OnnxModel(path).predict_on_batch
    if fmt == "keras":
        import keras
        return keras.saving.load_model(path).predict_on_batch
    import tensorflow as tf
    if fmt == "savedmodel":
        loaded = tf.saved_model.load(str(path))  # kept: its variables live as long as it does
        return lambda x: loaded.serve(tf.constant(x)).numpy()
    interpreter = tf.lite.Interpreter(model_path=str(path))

    def run(x):
        index = interpreter.get_input_details()[0]["index"]
        interpreter.resize_tensor_input(index, x.shape)
        interpreter.allocate_tensors()
        interpreter.set_tensor(index, x)
        interpreter.invoke()
        return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    return run


def _check_export(tmp_path, fmt, names):
    out = tmp_path / fmt
    manifest = formats.export_models(SHIPPED, fmt, out, names, log=lambda *_: None)
    assert manifest["format"] == fmt and set(manifest["models"]) == set(names)
    assert manifest["image_size"] == 128 and "detector_calibration" in manifest
    for file, digest in manifest["files"].items():
        assert weights_io.sha256(out / file) == digest
    for name in names:
        keras_model = formats.portable_model(SHIPPED, name)
        x = crops(keras_model.input_shape[1])
        suffix = formats.FORMATS[fmt][1]
        got = np.asarray(_load(out / f"{name}{suffix}", fmt)(x))
        assert got.shape == (len(x), keras_model.output_shape[-1])
        assert np.abs(got - keras_model.predict_on_batch(x)).max() < TOLERANCE, (fmt, name)


@pytest.mark.parametrize("fmt", ["onnx"])  # keras: the plain-Keras test below
def test_exported_models_give_the_keras_points(tmp_path, fmt):
    _check_export(tmp_path, fmt, SAMPLE)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", sorted(formats.FORMATS))
def test_every_model_in_every_format_gives_the_keras_points(tmp_path, fmt):
    _check_export(tmp_path, fmt, list(weights_io.read_weights_manifest(SHIPPED)["models"]))


def test_portable_model_is_the_shipped_one_in_float32():
    shipped = weights_io.import_model(SHIPPED, "cascade_stage1")
    portable = formats.portable_model(SHIPPED, "cascade_stage1")
    assert {layer.dtype_policy.name for layer in portable.layers} == {"float32"}
    assert not any(isinstance(layer, SoftArgmax) for layer in portable.layers)
    x = crops(128)
    # same weights, computed in float32 instead of bfloat16: close, not identical
    assert np.abs(portable.predict_on_batch(x) - shipped.predict_on_batch(x)).max() < 1.0


def test_a_keras_export_loads_in_plain_keras_without_fkd(tmp_path):
    formats.export_models(SHIPPED, "keras", tmp_path / "k", ["cascade_stage1"], log=lambda *_: None)
    np.save(tmp_path / "x.npy", crops(128, 2))
    code = ("import sys, numpy as np, keras\n"
            f"model = keras.saving.load_model({str(tmp_path / 'k' / 'cascade_stage1.keras')!r})\n"
            f"np.save({str(tmp_path / 'y.npy')!r}, model.predict(np.load({str(tmp_path / 'x.npy')!r}), verbose=0))\n"
            "assert not any(m.startswith('fkd') for m in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600,
                          cwd=tmp_path, env={**os.environ, "PYTHONPATH": ""})
    assert done.returncode == 0, done.stderr[-2000:]
    want = formats.portable_model(SHIPPED, "cascade_stage1").predict_on_batch(crops(128, 2))
    assert np.abs(np.load(tmp_path / "y.npy") - want).max() < TOLERANCE


def test_export_refuses_to_write_over_an_export(tmp_path):
    formats.export_models(SHIPPED, "keras", tmp_path, ["cascade_region_nose"], log=lambda *_: None)
    with pytest.raises(FileExistsError, match="--overwrite"):
        formats.export_models(SHIPPED, "keras", tmp_path, ["cascade_region_nose"])
    with pytest.raises(ValueError, match="unknown format"):
        formats.export_models(SHIPPED, "pickle", tmp_path / "x")


def test_onnx_landmarker_finds_the_keras_points(tmp_path, monkeypatch):
    monkeypatch.setenv("FKD_HOME", str(tmp_path))
    image = skdata.astronaut()
    by_keras = landmarker.Landmarker(runtime="keras")(image)
    onnx = landmarker.Landmarker(runtime="onnx")
    assert all(isinstance(m, formats.OnnxModel) for m in onnx.models.values())
    by_onnx = onnx(image)
    assert len(by_onnx) == len(by_keras) >= 1
    for a, b in zip(by_keras, by_onnx):
        # float32 (ONNX) against mixed bfloat16 (Keras): within a pixel on a 512 px photo
        assert np.abs(a["points"] - b["points"]).max() < 1.0
    cached = list((tmp_path / "exported").glob("onnx-*/*.onnx"))
    assert {p.stem for p in cached} == set(onnx.models)
    # an ONNX export folder is a weights folder for the onnx runtime (no conversion needed),
    # with the cascade's shape correction beside the models
    assert (cached[0].parent / "shape_correction.npz").is_file()
    again = landmarker.Landmarker(cached[0].parent, runtime="onnx")
    assert again.correction is not None
    np.testing.assert_allclose(again(image)[0]["points"], by_onnx[0]["points"], atol=1e-4)


def test_unknown_runtime_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown runtime 'torch'"):
        landmarker.Landmarker(runtime="torch")


@pytest.mark.slow
@pytest.mark.real
def test_onnx_runtime_scores_the_keras_nme_on_real_faces():
    """``fkd predict --stages 3`` end to end (own detector) on the HELEN test images: the same
    NME with ONNX Runtime as with Keras, within 0.05 points."""
    from fkd_utils.metrics import evaluate
    from fkd_utils.paths import real_300w_dir
    data_dir = real_300w_dir()
    if data_dir is None:
        pytest.skip("no real 300-W copy at ../shared/data/300w")
    nme = {}
    for runtime in ("keras", "onnx"):
        pred = landmarker.predict_split_from_files(
            landmarker.Landmarker(stages=3, runtime=runtime), data_dir, "validation")
        nme[runtime] = 100 * evaluate(pred.points, pred.gt)["68"]["all"]["nme"]
    assert abs(nme["onnx"] - nme["keras"]) < 0.05, nme
