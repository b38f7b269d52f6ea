"""The landmarker's models in standard formats (``fkd export``) and run by ONNX Runtime
(``fkd predict --runtime onnx``, float32; ``--runtime int8``, a folder's 8-bit models that
:mod:`fkd_utils.quantize` made).

Every format is written by Keras 3's own ``model.save`` (``.keras``) and ``model.export``
(``onnx`` through tf2onnx, ``litert`` (TensorFlow Lite), ``tf_saved_model``) from a *portable*
copy of each model: computed in float32 (the shipped models run in mixed bfloat16, which ONNX
export refuses and most CPUs emulate slowly) and with our ``SoftArgmax`` read-out rebuilt from
Keras' built-in layers (reshape, softmax, a fixed dense layer holding the heatmap cells'
centres), so that a ``.keras`` file loads in plain Keras, without fkd, and the converters meet
only standard operations. The weights folder's manifest (input sizes, face margin, detector
calibrations) is written beside the exported files, with their sha256.
"""
import json
import os
import shutil
import sys
import warnings
from pathlib import Path

import numpy as np

from . import paths, shape_correction
from .io import DataError
from .weights_io import read_weights_manifest, sha256

#: ``fkd export --format`` -> (Keras ``export`` format or "keras", file suffix)
FORMATS = {"keras": ("keras", ".keras"), "onnx": ("onnx", ".onnx"),
           "tflite": ("litert", ".tflite"), "savedmodel": ("tf_saved_model", "")}
RUNTIMES = ("keras", "onnx", "int8")
#: what ``--runtime`` accepts: the runtimes, and ``auto`` (int8 where the weights have them)
RUNTIME_CHOICES = ("auto",) + RUNTIMES
#: ``fkd quantize`` writes ``<model>.int8.onnx`` beside a folder's float weights
INT8_SUFFIX = ".int8.onnx"


def int8_file(name):
    return f"{name}{INT8_SUFFIX}"


def builtin_soft_argmax(heatmaps, input_size, name="coords"):
    """``models.SoftArgmax`` from Keras' own layers: heatmaps (B, H, W, K) -> (B, 2K)
    interleaved x, y, each the softmax-weighted mean of the cells' centres in crop pixels."""
    from keras import layers
    h, w, k = heatmaps.shape[1:]
    x = layers.Reshape((h * w, k), name=f"{name}_cells")(heatmaps)
    x = layers.Softmax(axis=1, name=f"{name}_softmax")(x)
    x = layers.Permute((2, 1), name=f"{name}_per_point")(x)
    # a dense layer without bias whose kernel holds every cell's (x, y) centre
    x = layers.Dense(2, use_bias=False, trainable=False, name=f"{name}_centres")(x)
    return layers.Reshape((2 * k,), name=name)(x)


def cell_centres(height, width, input_size):
    """(H * W, 2) centres of the heatmap cells in crop pixels, row-major (as SoftArgmax)."""
    xs = (np.arange(width) + 0.5) * input_size / width - 0.5
    ys = (np.arange(height) + 0.5) * input_size / height - 0.5
    return np.stack([np.tile(xs, height), np.repeat(ys, width)], axis=1).astype(np.float32)


def portable_model(weights_dir, name):
    """An exported model rebuilt in float32 with built-in layers only (see the module doc)."""
    import keras
    from .models import SoftArgmax
    weights_dir = Path(weights_dir)
    arch = json.loads((weights_dir / f"{name}.json").read_text())
    _force_float32(arch)
    model = keras.models.model_from_json(json.dumps(arch))
    with np.load(weights_dir / f"{name}.weights.npz") as npz:
        model.set_weights([npz[k].astype(np.float32) for k in sorted(npz.files)])
    read_outs = [layer for layer in model.layers if isinstance(layer, SoftArgmax)]
    # one input tensor, not a list of one: exported signatures then take a plain array
    inputs, outputs = model.inputs[0], model.outputs[0]
    if read_outs:
        heatmaps, size = read_outs[0].input, read_outs[0].input_size
        outputs = builtin_soft_argmax(heatmaps, size)
    model = keras.Model(inputs, outputs, name=model.name)
    if read_outs:
        model.get_layer("coords_centres").set_weights([cell_centres(*heatmaps.shape[1:3], size)])
    model(np.zeros((1, *model.input_shape[1:]), np.float32))  # Keras exports called models only
    return model


def _force_float32(config):
    """Replace every layer's dtype policy in a model config by float32, in place."""
    if isinstance(config, dict):
        if config.get("class_name") == "DTypePolicy":
            config["config"]["name"] = "float32"
        for value in config.values():
            _force_float32(value)
    elif isinstance(config, list):
        for value in config:
            _force_float32(value)


def export_models(weights_dir, fmt, out_dir, names=None, overwrite=False, log=print):
    """Write every model of a weights folder (or ``names``) in format ``fmt`` (a key of
    :data:`FORMATS`) to ``out_dir``, with the manifest beside them; returns the manifest."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {sorted(FORMATS)}")
    manifest = read_weights_manifest(weights_dir)
    out_dir = Path(out_dir)
    if (out_dir / "manifest.json").is_file() and not overwrite:
        raise FileExistsError(f"{out_dir}: holds an export already; pass --overwrite or another --out")
    partial = out_dir.with_name(f".{out_dir.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    files = {}
    for name in names or list(manifest["models"]):
        target = _export_one(portable_model(weights_dir, name), fmt, partial / name)
        files.update(_checksums(target, partial))
        log(f"  {name}: {target.name}")
    try:  # the cascade's correction travels along
        correction = shape_correction.checked_file(weights_dir, manifest)
    except DataError:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    if correction is not None:
        shutil.copy2(correction, partial / shape_correction.FILE)
        files[shape_correction.FILE] = manifest["files"][shape_correction.FILE]
    exported = {**manifest, "format": fmt, "files": files, "precision": "float32",
                "source_files": manifest["files"], "models": {
                    n: manifest["models"][n] for n in (names or manifest["models"])}}
    (partial / "manifest.json").write_text(json.dumps(exported, indent=1))
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    os.replace(partial, out_dir)  # all or nothing
    return exported


def _export_one(model, fmt, stem):
    keras_format, suffix = FORMATS[fmt]
    target = stem.with_name(stem.name + suffix)
    if fmt == "keras":
        model.save(target)
    else:
        with warnings.catch_warnings():  # numpy 2 notes from Keras' tf2onnx patch
            warnings.simplefilter("ignore", FutureWarning)
            model.export(str(target), format=keras_format, verbose=False)
    return target


def _checksums(target, root):
    files = [target] if target.is_file() else sorted(p for p in target.rglob("*") if p.is_file())
    return {p.relative_to(root).as_posix(): sha256(p) for p in files}


class OnnxModel:
    """An ``.onnx`` model run by ONNX Runtime on the CPU, with the parts of a Keras model's
    interface the pipeline uses (``predict_on_batch``, ``input_shape``, ``output_shape``)."""

    def __init__(self, path, threads=None):
        import onnxruntime as ort
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or _usable_cores()
        options.log_severity_level = 3  # warnings and below stay quiet
        # idle workers sleep instead of spinning: fkd predict's detector threads need the cores
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.path = Path(path)
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        (first,), (out,) = self.session.get_inputs(), self.session.get_outputs()
        self.input_name = first.name
        self.input_shape = (None, *first.shape[1:])
        self.output_shape = (None, *out.shape[1:])

    def predict_on_batch(self, images):
        return self.session.run(None, {self.input_name: np.asarray(images, np.float32)})[0]

    def __call__(self, images):
        return self.predict_on_batch(images)


def _usable_cores():
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def onnx_folder(weights_dir, names, log=None):
    """A folder holding ``<name>.onnx`` for every name: ``weights_dir`` itself when it is an
    ``fkd export --format onnx`` folder, else a cache under the home (``exported/``), keyed by
    the weights' checksums and filled on first use (a few seconds per model)."""
    weights_dir = Path(weights_dir)
    manifest = read_weights_manifest(weights_dir)
    if manifest.get("format") == "onnx":
        missing = [n for n in names if not (weights_dir / f"{n}.onnx").is_file()]
        if missing:
            raise DataError(f"{weights_dir}: ONNX export lacks {missing}")
        return weights_dir
    key = sha256_text(json.dumps(manifest["files"], sort_keys=True))[:16]
    cache = paths.home() / "exported" / f"onnx-{key}"
    wanted = sorted(names)
    if (cache / "manifest.json").is_file() and all((cache / f"{n}.onnx").is_file() for n in wanted):
        return cache
    (log or _to_stderr)(f"converting {len(wanted)} models to ONNX once, into {cache} ...")
    done = read_weights_manifest(cache)["models"] if (cache / "manifest.json").is_file() else {}
    export_models(weights_dir, "onnx", cache, sorted(set(wanted) | set(done)), overwrite=True,
                  log=lambda *_: None)
    return cache


def checked_int8_file(weights_dir, name, manifest=None):
    """``<name>.int8.onnx`` of a weights folder, checked against its manifest's sha256."""
    weights_dir = Path(weights_dir)
    manifest = manifest or read_weights_manifest(weights_dir)
    path = weights_dir / int8_file(name)
    want = (manifest.get("files") or {}).get(path.name)
    if want and not path.is_file():
        raise DataError(f"{path}: listed in manifest.json but missing; the weights folder is "
                        "incomplete (copy it again, or use --runtime keras)")
    if not want:
        raise DataError(f"{path}: this weights folder has no int8 model for {name}; use "
                        "--runtime auto (int8 where every model has one, else Keras) or keras, "
                        "fewer stages (--stages), or make the int8 models of a folder of your "
                        "own with 'fkd quantize --weights DIR --data-dir 300W'")
    if want != sha256(path):
        raise DataError(f"{path}: sha256 does not match manifest.json (corrupt or replaced file)")
    return path


def has_int8(manifest, names):
    """Whether a weights folder's manifest lists an int8 model for every name (``--runtime
    auto`` then runs them)."""
    listed = manifest.get("files") or {}
    return all(int8_file(n) in listed for n in names)


def _to_stderr(message):
    """Progress notes go to stderr: stdout stays for results (``fkd predict --json``)."""
    print(message, file=sys.stderr)


def sha256_text(text):
    import hashlib
    return hashlib.sha256(text.encode()).hexdigest()


def load_runtime_models(weights_dir, names, runtime="keras", manifest=None, log=None):
    """``{name: model}`` for the Landmarker: Keras models, or :class:`OnnxModel` sessions
    (``onnx``: float32, converted on first use; ``int8``: the folder's quantized models)."""
    if runtime not in RUNTIMES:
        raise ValueError(f"unknown runtime {runtime!r}; choose one of {RUNTIMES}")
    if runtime == "keras":
        from .weights_io import import_model
        return {n: import_model(weights_dir, n, manifest) for n in names}
    if runtime == "int8":
        return {n: OnnxModel(checked_int8_file(weights_dir, n, manifest)) for n in names}
    folder = onnx_folder(weights_dir, names, log)
    return {n: OnnxModel(folder / f"{n}.onnx") for n in names}
