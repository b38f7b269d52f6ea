"""ResNet regressors, Keras 3 functional API through ``keras`` and ``keras.ops`` only
(introduced in notebook 02). They build and train on the TensorFlow, JAX and PyTorch backends.

Architecture (paper Sec. 5.2): 3x3 zero padding, 64 filters 7x7 stride 2, batch norm, ReLU,
3x3 max pool (the ResNet50 stem, so ImageNet stem weights can be loaded from a local file with
:func:`load_stem_weights`); residual stages built by :func:`residual_stage` (3 stages growing
from 64 to 1024 filters for the paper's face model, one fewer for region models); then a head.

Heads:

* ``"paper"``: 2x2 average pooling, global average pooling, dropout 0.5, Dense with ReLU on
  raw crop-pixel coordinates (the paper's choice, trained with MSE);
* ``"spatial"`` (notebook 09's baseline): a 1x1 convolution to a few channels keeps *where* the
  features are, flattened into the Dense layer, whose output is standardised by the training
  targets' mean and std (a ``Normalization(invert=True)`` layer maps it back to pixels);
* ``"integral"`` (our cascade's, notebooks 08-09): heatmaps with a soft-argmax read-out (integral
  regression, Sun et al. 2018): the last stage's features, upsampled 2x and joined with the
  stage before, give one heatmap per point; each point is the heatmap's softmax-weighted mean
  position, in crop pixels, so the loss stays a loss on coordinates;
* ``"fine_integral"``: the same, upsampled once more and joined with the first stage too
  (32 x 32 heatmaps at 128 px instead of 16 x 16; three stages needed).
"""
from pathlib import Path

import numpy as np
import keras
from keras import layers

from .io import DataError

#: (filters, units, stride) per stage.
PAPER_STAGES = ((256, 1, 1), (512, 1, 2), (1024, 1, 2))
REGION_STAGES = PAPER_STAGES[:-1]
HEADS = ("paper", "spatial", "integral", "fine_integral")


def stem(inputs):
    """The ResNet50 stem; layer names match ``keras.applications.ResNet50``."""
    x = layers.ZeroPadding2D(3, name="conv1_pad")(inputs)
    x = layers.Conv2D(64, 7, strides=2, name="conv1_conv")(x)
    x = layers.BatchNormalization(epsilon=1.001e-5, name="conv1_bn")(x)
    x = layers.Activation("relu", name="conv1_relu")(x)
    x = layers.ZeroPadding2D(1, name="pool1_pad")(x)
    return layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)


def residual_unit(x, filters, stride=1, batch_norm=True, padding="same", name="unit"):
    """Two 3x3 convolutions plus a shortcut (1x1 projection when the shape changes)."""
    def norm(y, suffix):
        return layers.BatchNormalization(name=f"{name}_{suffix}")(y) if batch_norm else y

    shortcut = x
    if stride != 1 or x.shape[-1] != filters:
        shortcut = layers.Conv2D(filters, 1, strides=stride, name=f"{name}_proj")(x)
        shortcut = norm(shortcut, "proj_bn")
    y = layers.Conv2D(filters, 3, strides=stride, padding=padding, name=f"{name}_conv1")(x)
    y = layers.Activation("relu", name=f"{name}_relu1")(norm(y, "bn1"))
    y = layers.Conv2D(filters, 3, padding=padding, name=f"{name}_conv2")(y)
    y = norm(y, "bn2")
    if padding != "same":  # 'valid' shrinks y: crop the shortcut to match
        crop = (shortcut.shape[1] - y.shape[1]) // 2
        shortcut = layers.Cropping2D(crop, name=f"{name}_crop")(shortcut)
    y = layers.Add(name=f"{name}_add")([shortcut, y])
    return layers.Activation("relu", name=f"{name}_out")(y)


def bottleneck_unit(x, filters, stride=1, batch_norm=True, padding="same", name="unit"):
    """ResNet50's unit: 1x1 reduce to filters/4, 3x3, 1x1 expand, plus a shortcut."""
    def norm(y, suffix):
        return layers.BatchNormalization(name=f"{name}_{suffix}")(y) if batch_norm else y

    shortcut = x
    if stride != 1 or x.shape[-1] != filters:
        shortcut = norm(layers.Conv2D(filters, 1, strides=stride, name=f"{name}_proj")(x), "proj_bn")
    y = layers.Conv2D(filters // 4, 1, strides=stride, name=f"{name}_conv1")(x)
    y = layers.Activation("relu", name=f"{name}_relu1")(norm(y, "bn1"))
    y = layers.Conv2D(filters // 4, 3, padding=padding, name=f"{name}_conv2")(y)
    y = layers.Activation("relu", name=f"{name}_relu2")(norm(y, "bn2"))
    y = norm(layers.Conv2D(filters, 1, name=f"{name}_conv3")(y), "bn3")
    if padding != "same":
        crop = (shortcut.shape[1] - y.shape[1]) // 2
        shortcut = layers.Cropping2D(crop, name=f"{name}_crop")(shortcut)
    y = layers.Add(name=f"{name}_add")([shortcut, y])
    return layers.Activation("relu", name=f"{name}_out")(y)


UNITS = {"basic": residual_unit, "bottleneck": bottleneck_unit}


def residual_stage(x, filters, units=1, stride=2, batch_norm=True, padding="same",
                   kind="bottleneck", name="stage"):
    """A stage of ``units`` residual units; the first one may downsample by ``stride``."""
    if kind not in UNITS:
        raise ValueError(f"unknown unit kind {kind!r}; choose one of {tuple(UNITS)}")
    for i in range(units):
        x = UNITS[kind](x, filters, stride if i == 0 else 1, batch_norm, padding,
                        name=f"{name}_unit{i + 1}")
    return x


def paper_head(x, outputs, dense_layers=1, dropout=0.5, activation="relu", hidden=512,
               target_mean=None):
    x = layers.AveragePooling2D(2, padding="same", name="avg_pool")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    for i in range(dense_layers - 1):
        x = layers.Dense(hidden, activation="relu", name=f"dense_hidden{i + 1}")(x)
    # Starting from the mean target (the mean shape) rather than from 0 is not in the paper,
    # but spares the first epochs of climbing from 0 to ~image size; it changes nothing else.
    bias = "zeros" if target_mean is None else keras.initializers.Constant(
        np.asarray(target_mean, np.float32).reshape(outputs))
    # float32 outputs: bfloat16 would round pixel coordinates to ~0.5 px
    return layers.Dense(outputs, activation=activation, name="coords", dtype="float32",
                        bias_initializer=bias)(x)


def spatial_head(x, outputs, target_mean, target_std, channels=32, dense_layers=1, dropout=0.0,
                 hidden=512):
    x = layers.Conv2D(channels, 1, name="head_conv")(x)
    x = layers.BatchNormalization(name="head_bn")(x)
    x = layers.Activation("relu", name="head_relu")(x)
    x = layers.Flatten(name="head_flatten")(x)
    if dropout:
        x = layers.Dropout(dropout, name="dropout")(x)
    for i in range(dense_layers - 1):
        x = layers.Dense(hidden, activation="relu", name=f"dense_hidden{i + 1}")(x)
    x = layers.Dense(outputs, name="coords_std", dtype="float32")(x)
    mean = np.asarray(target_mean, np.float32).reshape(outputs)
    var = np.square(np.asarray(target_std, np.float32)).reshape(outputs)
    return layers.Normalization(mean=mean, variance=var, invert=True, name="coords",
                              dtype="float32")(x)


@keras.saving.register_keras_serializable(package="fkd")
class SoftArgmax(layers.Layer):
    """Heatmaps (B, H, W, K) -> the softmax-weighted mean position of each, as
    (B, 2K) interleaved x, y in 0-based pixel centres of an ``input_size`` crop."""

    def __init__(self, input_size, **kwargs):
        super().__init__(**kwargs)
        self.input_size = input_size

    def call(self, heatmaps):
        h, w, k = heatmaps.shape[1:]
        prob = keras.ops.softmax(keras.ops.reshape(heatmaps, (-1, h * w, k)), axis=1)
        # cell centres in crop pixels: cell i covers [i, i + 1) * stride
        xs = (np.arange(w) + 0.5) * self.input_size / w - 0.5
        ys = (np.arange(h) + 0.5) * self.input_size / h - 0.5
        grid_x = np.tile(xs, h).astype(np.float32)[None, :, None]
        grid_y = np.repeat(ys, w).astype(np.float32)[None, :, None]
        x = keras.ops.sum(prob * grid_x, axis=1)
        y = keras.ops.sum(prob * grid_y, axis=1)
        return keras.ops.reshape(keras.ops.stack([x, y], axis=-1), (-1, 2 * k))

    def get_config(self):
        return {**super().get_config(), "input_size": self.input_size}


def integral_head(features, finer, outputs, input_size, channels=128, finest=None):
    """Heatmaps read out by :class:`SoftArgmax`: the last stage's features upsampled 2x and
    joined with the stage before (16 x 16 maps at 128 px); with ``finest`` (the stage before
    that), once more (32 x 32 maps: 4 px cells instead of 8, for a few % more compute)."""
    x = _head_level(features, finer, channels, "head")
    if finest is not None:
        x = _head_level(x, finest, channels // 2, "head_fine")
    heatmaps = layers.Conv2D(outputs // 2, 1, name="heatmaps", dtype="float32")(x)
    return SoftArgmax(input_size, name="coords", dtype="float32")(heatmaps)


def _head_level(coarse, finer, channels, name):
    x = layers.UpSampling2D(2, interpolation="bilinear", name=f"{name}_up")(coarse)
    x = layers.Concatenate(name=f"{name}_join")([x, finer])
    for i, kernel in enumerate((1, 3)):  # 1x1 first: the 3x3 sees few channels (cheap)
        x = layers.Conv2D(channels, kernel, padding="same", name=f"{name}_conv{i + 1}")(x)
        x = layers.BatchNormalization(name=f"{name}_bn{i + 1}")(x)
        x = layers.Activation("relu", name=f"{name}_relu{i + 1}")(x)
    return x


def build_resnet(input_size, outputs, stages=PAPER_STAGES, head="paper", dense_layers=1,
                 dropout=None, activation="relu", target_mean=None, target_std=None,
                 batch_norm=True, precision="float32", name="resnet"):
    """A ResNet regressor from ``input_size`` x ``input_size`` RGB in [0, 1] to ``outputs``.

    ``outputs``: 136 (68 points), 16 (four region boxes) or 2 x a region's point count.
    ``stages``: (filters, units, stride) per residual stage. For the spatial head,
    ``target_mean``/``target_std`` (``outputs`` values) standardise the regression targets.
    ``precision="mixed_bfloat16"`` computes in bfloat16 (about 2x faster on this project's
    CPUs) with float32 weights and float32 outputs.
    """
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(precision)
    try:
        return _build(input_size, outputs, stages, head, dense_layers, dropout, activation,
                      target_mean, target_std, batch_norm, name)
    finally:
        keras.config.set_dtype_policy(previous)


def _build(input_size, outputs, stages, head, dense_layers, dropout, activation, target_mean,
           target_std, batch_norm, name):
    if head not in HEADS:
        raise ValueError(f"unknown head {head!r}; choose one of {HEADS}")
    inputs = keras.Input((input_size, input_size, 3), name="image")
    x = stem(inputs)
    features = []
    for i, (filters, units, stride) in enumerate(stages):
        x = residual_stage(x, filters, units, stride, batch_norm, name=f"stage{i + 1}")
        features.append(x)
    if head in ("integral", "fine_integral"):
        finest = features[-3] if head == "fine_integral" else None
        out = integral_head(x, features[-2], outputs, input_size, finest=finest)
    elif head == "paper":
        out = paper_head(x, outputs, dense_layers, 0.5 if dropout is None else dropout, activation,
                         target_mean=target_mean)
    else:
        if target_mean is None or target_std is None:
            raise ValueError("the spatial head needs target_mean and target_std")
        out = spatial_head(x, outputs, target_mean, target_std, dense_layers=dense_layers,
                           dropout=dropout or 0.0)
    return keras.Model(inputs, out, name=name)


def load_stem_weights(model, resnet50_weights_path):
    """Copy ImageNet ResNet50 stem weights (conv1_conv, conv1_bn) from a local ``.h5``/``.keras``
    file into ``model`` (the paper's initialisation; nothing is downloaded here).

    Returns the names of the layers copied.
    """
    reference = keras.applications.ResNet50(include_top=False, weights=str(resnet50_weights_path),
                                            input_shape=model.input_shape[1:])
    copied = []
    for layer_name in ("conv1_conv", "conv1_bn"):
        model.get_layer(layer_name).set_weights(reference.get_layer(layer_name).get_weights())
        copied.append(layer_name)
    return copied


def load_exported(arch_path, weights_path):
    """A model rebuilt from an exported architecture (``.json``) and weights (``.weights.npz``,
    large arrays in float16), weights back in float32 (notebook 08; ``fkd predict``).

    Needs only keras and numpy, so exported weights load without TensorFlow (e.g. on JAX)."""
    import zipfile
    try:
        model = keras.models.model_from_json(Path(arch_path).read_text())
    except Exception as err:  # noqa: BLE001 - Keras raises many kinds for a bad file
        raise DataError(f"{arch_path}: not a Keras model architecture ({type(err).__name__}); "
                        "re-export the weights folder") from None
    try:
        with np.load(weights_path, allow_pickle=False) as npz:
            values = [npz[k].astype(np.float32) for k in sorted(npz.files)]
    except (OSError, EOFError, ValueError, AttributeError, zipfile.BadZipFile) as err:
        raise DataError(f"{weights_path}: damaged weights file ({type(err).__name__}); "
                        "re-export the weights folder") from None
    expected = model.get_weights()
    if len(values) != len(expected) or any(v.shape != e.shape for v, e in zip(values, expected)):
        raise DataError(f"{weights_path}: weights do not fit the architecture in "
                        f"{Path(arch_path).name}")
    model.set_weights(values)
    return model


def describe(model):
    """Output size and parameter count, for notebooks and tests."""
    return {"name": model.name, "input": tuple(model.input_shape[1:]),
            "outputs": int(model.output_shape[-1]), "params": int(model.count_params())}


def _block_of(layer_name):
    """The block a layer of :func:`build_resnet` belongs to: stem, stage<i> or head."""
    if layer_name.startswith(("conv1_", "pool1_")):
        return "stem"
    if layer_name.startswith("stage"):
        return layer_name.split("_", 1)[0]
    return "head"


def block_table(model):
    """The network block by block (a compact ``model.summary()``): one row per block (input,
    stem, stage1..., head) with its layers, output shape and parameters. A pandas DataFrame."""
    import pandas as pd
    rows = {}
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            rows["input"] = {"layers": 0, "output shape": tuple(layer.output.shape[1:]),
                             "params": 0}
            continue
        row = rows.setdefault(_block_of(layer.name), {"layers": 0, "params": 0})
        row["layers"] += 1
        row["params"] += int(layer.count_params())
        row["output shape"] = tuple(layer.output.shape[1:])
    frame = pd.DataFrame.from_dict(rows, orient="index")[["layers", "output shape", "params"]]
    frame.index.name = "block"
    return frame
