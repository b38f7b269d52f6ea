"""8-bit models for ``fkd predict --runtime int8`` (ONNX Runtime's static quantization).

Each model's convolutions run in int8 (weights per output channel, activations per tensor);
everything else (the heads' softmax and soft-argmax, the dense layers) stays float32, because
quantizing the read-out moved the points by 1.5 px on a 128 px crop, against 0.07 px with the
convolutions alone (shipped stage 1, 32 training crops). The activation ranges are calibrated
on what each model actually reads when the float cascade runs ``fkd predict``'s way (own
detector) on training images outside the selection tenth, so the refiners and the region
ResNets are calibrated on their own crops.

``fkd quantize --weights DIR --data-dir 300W`` writes ``<model>.int8.onnx`` beside the float
weights and lists them, with their sha256 and how they were calibrated, in the manifest.
"""
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from .formats import INT8_SUFFIX, export_models, int8_file
from .io import DataError
from .weights_io import read_weights_manifest, sha256

#: how many training images calibrate the activation ranges (every k-th of the fit images)
CALIBRATION_IMAGES = 128


class InputRecorder:
    """A model stand-in that keeps every batch it is asked to predict (float32, 0-1)."""

    def __init__(self, model):
        self.model, self.batches = model, []
        self.input_shape, self.output_shape = model.input_shape, model.output_shape

    def predict_on_batch(self, images):
        from .train import compiled_predict
        self.batches.append(np.asarray(images, np.float32))
        return np.asarray(compiled_predict(self.model)(images))

    def inputs(self):
        return np.concatenate(self.batches)


def calibration_samples(data_dir, count=CALIBRATION_IMAGES):
    """``count`` training samples spread over the fit images (never the selection tenth, where
    settings are chosen, nor a test split)."""
    from .data import split_samples
    from .pipeline import model_selection
    samples = split_samples(data_dir, "train")
    chosen = model_selection(np.array([s.id for s in samples]))
    fit = [s for s, held_out in zip(samples, chosen) if not held_out]
    if not fit:
        raise DataError(f"{data_dir}: no training images to calibrate on")
    step = max(1, len(fit) // count)
    return fit[::step][:count]


def calibration_inputs(weights_dir, data_dir, names, count=CALIBRATION_IMAGES):
    """``{name: inputs (N, S, S, 3) float32}``: what each cascade model reads when the float
    models run ``fkd predict``'s pipeline on ``count`` training images."""
    from .landmarker import Landmarker, predict_split_from_files
    from .pipeline import CASCADE_STAGES
    landmarker = Landmarker(weights_dir, "cascade", stages=len(CASCADE_STAGES), runtime="keras")
    unknown = sorted(set(names) - set(landmarker.models))
    if unknown:
        raise ValueError(f"only the cascade's models are quantized; not {unknown}")
    recorders = {n: InputRecorder(landmarker.models[n]) for n in names}
    landmarker.models.update(recorders)
    predict_split_from_files(landmarker, data_dir, "train", samples=calibration_samples(data_dir, count))
    return {n: r.inputs() for n, r in recorders.items()}


def quantize_onnx(source, target, inputs, batch=16):
    """Static int8 quantization of one float ONNX model (convolutions only, see the module
    doc), its activation ranges from ``inputs``."""
    import onnxruntime as ort
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                          quant_pre_process, quantize_static)
    prepared = Path(target).with_name(Path(target).name + ".pre.onnx")
    quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
    input_name = ort.InferenceSession(str(prepared), providers=["CPUExecutionProvider"]) \
        .get_inputs()[0].name

    class Batches(CalibrationDataReader):
        def __init__(self):
            self.pieces = iter(inputs[i:i + batch] for i in range(0, len(inputs), batch))

        def get_next(self):
            piece = next(self.pieces, None)
            return None if piece is None else {input_name: piece}

    quantize_static(str(prepared), str(target), Batches(), quant_format=QuantFormat.QDQ,
                    op_types_to_quantize=["Conv"], per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    prepared.unlink()
    return Path(target)


def quantize_weights(weights_dir, data_dir, names=None, count=CALIBRATION_IMAGES,
                     overwrite=False, log=print):
    """Write ``<name>.int8.onnx`` for the cascade's models (or ``names``) into ``weights_dir``
    and list them in its manifest; refuses to replace existing ones unless ``overwrite``."""
    from .pipeline import cascade_models
    weights_dir = Path(weights_dir)
    manifest = read_weights_manifest(weights_dir)
    names = list(names or [n for n in cascade_models() if n in manifest["models"]])
    unknown = sorted(set(names) - set(cascade_models()))
    if unknown:
        raise ValueError(f"only the cascade's models are quantized; not {unknown}")
    if count < 1:
        raise ValueError(f"calibration needs at least one image; got {count}")
    existing = [int8_file(n) for n in names if (weights_dir / int8_file(n)).exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{weights_dir}: holds {existing} already; pass --overwrite")
    inputs = calibration_inputs(weights_dir, data_dir, names, count)
    with tempfile.TemporaryDirectory() as tmp:
        export_models(weights_dir, "onnx", Path(tmp) / "float", names, log=lambda *_: None)
        written = {}
        for name in names:
            target = Path(tmp) / int8_file(name)
            quantize_onnx(Path(tmp) / "float" / f"{name}.onnx", target, inputs[name])
            written[name] = target
            log(f"  {name}: int8, calibrated on {len(inputs[name])} crops")
        for name, path in written.items():
            os.replace(path, weights_dir / int8_file(name))
    files = {int8_file(n): sha256(weights_dir / int8_file(n)) for n in names}
    manifest["files"].update(files)
    manifest["int8"] = {
        "models": names, "quantized": "Conv (weights int8 per channel, activations uint8)",
        "calibration": f"{count} training images outside the selection tenth, fkd's detector, "
                       f"{Path(data_dir).name}",
        "onnxruntime": _ort_version()}
    tmp_manifest = weights_dir / f"manifest.json.{os.getpid()}.tmp"
    tmp_manifest.write_text(json.dumps(manifest, indent=1))
    os.replace(tmp_manifest, weights_dir / "manifest.json")
    return manifest


def _ort_version():
    import onnxruntime
    return onnxruntime.__version__


__all__ = ["INT8_SUFFIX", "calibration_inputs", "quantize_onnx", "quantize_weights"]
