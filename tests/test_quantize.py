"""int8 models (``fkd quantize``, ``--runtime int8``): calibration never reads the selection
tenth, an 8-bit model gives its float model's points within a fraction of a pixel, only the
convolutions are quantized, a folder's int8 models are checked against its manifest, and
``auto`` picks int8 only where every model that runs has one."""
import json
import shutil

import numpy as np
import pytest

from fkd_utils import formats, landmarker, pipeline, quantize, weights_io
from fkd_utils.io import DataError
from fkd_utils.train import predict_targets

from test_formats import crops

SHIPPED = weights_io.shipped_weights_dir("real")


def test_calibration_images_are_training_images_outside_the_tenth(tiny_data):
    from fkd_utils.data import split_samples
    samples = quantize.calibration_samples(tiny_data, count=1000)
    train = split_samples(tiny_data, "train")
    tenth = {s.id for s, m in zip(train, pipeline.model_selection(np.array([s.id for s in train]))) if m}
    assert samples and {s.id for s in samples} <= {s.id for s in train} - tenth
    assert len(quantize.calibration_samples(tiny_data, count=2)) == 2


def test_input_recorder_keeps_what_the_model_reads():
    model = weights_io.import_model(SHIPPED, "cascade_region_nose")
    recorder = quantize.InputRecorder(model)
    images = np.round(crops(64, count=3) * 255).astype(np.uint8)
    np.testing.assert_allclose(predict_targets(recorder, images), predict_targets(model, images),
                               atol=1e-5)
    np.testing.assert_allclose(recorder.inputs(), images / 255.0, atol=1e-6)


@pytest.fixture(scope="module")
def nose_int8(tmp_path_factory):
    """The shipped float region ResNet for the nose and its int8 model, calibrated on 8
    astronaut crops."""
    out = tmp_path_factory.mktemp("int8")
    formats.export_models(SHIPPED, "onnx", out / "float", ["cascade_region_nose"])
    target = quantize.quantize_onnx(out / "float" / "cascade_region_nose.onnx",
                                    out / "nose.int8.onnx", crops(64, count=8, seed=1))
    return out / "float" / "cascade_region_nose.onnx", target


def test_int8_model_gives_the_float_points_within_a_fraction_of_a_pixel(nose_int8):
    float_path, int8_path = nose_int8
    images = np.round(crops(64, count=6, seed=2) * 255).astype(np.uint8)  # not the calibration crops
    by_float = predict_targets(formats.OnnxModel(float_path), images)
    by_int8 = predict_targets(formats.OnnxModel(int8_path), images)
    diff = np.abs(by_float - by_int8)
    assert diff.mean() < 0.25 and diff.max() < 1.5, (diff.mean(), diff.max())  # 64 px crops


def test_only_the_convolutions_are_quantized(nose_int8):
    import onnx
    graph = onnx.load(str(nose_int8[1])).graph
    producers = {out: node for node in graph.node for out in node.output}
    convs = [n for n in graph.node if n.op_type == "Conv"]
    assert convs and all(producers[n.input[0]].op_type == "DequantizeLinear" for n in convs)
    for node in graph.node:
        if node.op_type in ("Softmax", "MatMul", "Gemm"):
            assert all(producers.get(i) is None or producers[i].op_type != "DequantizeLinear"
                       for i in node.input), node.name


def test_the_shipped_folder_lists_int8_models_for_the_default(tmp_path):
    manifest = weights_io.read_weights_manifest(SHIPPED)
    default = pipeline.cascade_models(pipeline.PREDICT_STAGES)
    assert set(manifest["int8"]["models"]) >= set(default)
    assert landmarker.Landmarker().runtime == "int8"
    # stage 3 has no int8 model: the whole cascade then runs in Keras, not half and half
    assert landmarker.Landmarker(stages=3).runtime == "keras"
    assert landmarker.Landmarker(runtime="keras").runtime == "keras"


def test_int8_landmarker_finds_the_keras_points():
    from skimage import data as skdata
    image = skdata.astronaut()
    by_keras = landmarker.Landmarker(runtime="keras")(image)
    int8 = landmarker.Landmarker(runtime="int8")
    assert all(isinstance(m, formats.OnnxModel) for m in int8.models.values())
    by_int8 = int8(image)
    assert len(by_int8) == len(by_keras) >= 1
    for a, b in zip(by_keras, by_int8):
        assert np.abs(a["points"] - b["points"]).mean() < 1.0  # pixels of a 512 px photo


def test_a_folder_without_int8_models_says_how_to_make_them(untrained_weights):
    assert landmarker.Landmarker(untrained_weights, stages=1).runtime == "keras"
    with pytest.raises(DataError, match=r"cascade_stage1.int8.onnx: .*no int8 model.*fkd quantize"):
        landmarker.Landmarker(untrained_weights, stages=1, runtime="int8")


def test_a_replaced_int8_model_fails_its_checksum(tmp_path):
    manifest = weights_io.read_weights_manifest(SHIPPED)
    name = "cascade_region_nose"
    shutil.copy(SHIPPED / formats.int8_file(name), tmp_path / formats.int8_file(name))
    manifest["files"][formats.int8_file(name)] = "0" * 64
    with pytest.raises(DataError, match="sha256 does not match"):
        formats.checked_int8_file(tmp_path, name, manifest)


def test_quantize_weights_adds_checked_int8_models_and_refuses_to_replace_them(
        untrained_weights, tiny_data, tmp_path):
    folder = tmp_path / "w"
    shutil.copytree(untrained_weights, folder)
    names = ["cascade_stage1", "cascade_region_nose"]
    manifest = quantize.quantize_weights(folder, tiny_data, names, count=4, log=lambda *_: None)
    assert manifest["int8"]["models"] == names
    on_disk = json.loads((folder / "manifest.json").read_text())
    for name in names:
        assert on_disk["files"][formats.int8_file(name)] == weights_io.sha256(
            folder / formats.int8_file(name))
    models = formats.load_runtime_models(folder, names, "int8")
    assert all(isinstance(m, formats.OnnxModel) for m in models.values())
    before = (folder / formats.int8_file("cascade_stage1")).read_bytes()
    with pytest.raises(FileExistsError, match="--overwrite"):
        quantize.quantize_weights(folder, tiny_data, names, count=4)
    assert (folder / formats.int8_file("cascade_stage1")).read_bytes() == before
    with pytest.raises(ValueError, match="only the cascade's models"):
        quantize.quantize_weights(folder, tiny_data, ["end_to_end"], count=4)
