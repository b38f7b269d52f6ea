"""Training with Keras ``fit``, callbacks and a tf.data input pipeline (introduced in notebook 02).

One function, :func:`fit_model`, trains every model of the project: Adam, batch 16, up to the
profile's epochs, EarlyStopping (best weights restored) and ModelCheckpoint on the validation
loss, BackupAndRestore so a killed run resumes where it stopped, and a CSV history beside the
model. Augmentation runs on the training stream only, in parallel (``map`` with AUTOTUNE).

Targets are computed from the (augmented) 68 points by a *target* name:
``"points"`` (136 values), ``"boxes"`` (four region boxes, 16 values) or ``"region:<name>"``.
"""
import contextlib
import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np
import tensorflow as tf
import keras

from .augment import NO_AUGMENT, AugmentConfig, augment_dataset
from .markup import CROP_REGIONS, REGIONS

REGION_MARGIN = 0.35


def region_boxes_tf(points, margin=REGION_MARGIN):
    """Square region boxes (16,) from points (68, 2); tf twin of ``crop.region_boxes``."""
    rows = []
    for idx in REGIONS.values():
        pts = tf.gather(points, list(idx))
        lo, hi = tf.reduce_min(pts, axis=0), tf.reduce_max(pts, axis=0)
        center = (lo + hi) / 2.0
        side = tf.maximum(tf.reduce_max(hi - lo), 4.0) * (1.0 + margin)
        rows.append(tf.concat([center - side / 2.0, center + side / 2.0], axis=0))
    return tf.concat(rows, axis=0)


def target_fn(target):
    """Map (68, 2) points to the regression target of a model kind."""
    if target == "points":
        return lambda p: tf.reshape(p, [-1])
    if target == "boxes":
        return region_boxes_tf
    if target.startswith("region:") and target[7:] in CROP_REGIONS:
        idx = list(CROP_REGIONS[target[7:]])
        return lambda p: tf.reshape(tf.gather(p, idx), [-1])
    raise ValueError(f"unknown target {target!r}: use 'points', 'boxes' or 'region:<name>' "
                     f"with a name from {tuple(CROP_REGIONS)}")


def target_size(target):
    return {"points": 136, "boxes": 16}.get(target) or 2 * len(CROP_REGIONS[target[7:]])


def make_dataset(images, points, target, batch_size, augment=None, shuffle=False, seed=0,
                 repeat=False):
    """A batched tf.data pipeline of (image float32 in [0, 1], target) pairs.

    ``images`` uint8 (N, S, S, 3); ``points`` (N, 68, 2) in crop pixels; ``augment`` an
    :class:`AugmentConfig` or None (validation and test streams are never augmented).
    """
    images = np.asarray(images)
    ds = tf.data.Dataset.from_tensor_slices((images, np.asarray(points, np.float32)))
    if shuffle:
        ds = ds.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    ds = ds.map(lambda im, p: (tf.cast(im, tf.float32) / 255.0, p),
                num_parallel_calls=tf.data.AUTOTUNE)
    if augment is not None and augment != NO_AUGMENT:
        ds = augment_dataset(ds, seed, augment)
    to_target = target_fn(target)
    ds = ds.map(lambda im, p: (im, to_target(p)), num_parallel_calls=tf.data.AUTOTUNE)
    if repeat:
        ds = ds.repeat()
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def target_stats(points, target):
    """Mean and std of the (unaugmented) targets, to standardise the spatial head."""
    fn = target_fn(target)
    values = np.stack([fn(tf.constant(p, tf.float32)).numpy() for p in np.asarray(points)])
    return values.mean(axis=0), np.maximum(values.std(axis=0), 1e-3)


def selection_mask(ids, fraction=10):
    """A fixed tenth of the training ids: a hash rule, independent of order, count and of the
    training seed, so every model of a data set is selected on the same images.

    These images drive early stopping and model selection; everything else trains.
    """
    def pick(sample_id):
        digest = hashlib.sha256(f"0:{sample_id}".encode()).digest()
        return int.from_bytes(digest[:4], "little") % fraction == 0
    return np.array([pick(str(i)) for i in ids])


@keras.saving.register_keras_serializable(package="fkd")
def wing_loss(y_true, y_pred, width=10.0, curvature=2.0):
    """Wing loss (Feng et al. 2018) on pixel errors: log-like near 0, L1 beyond ``width``."""
    x = keras.ops.abs(y_true - y_pred)
    c = width - width * np.log(1.0 + width / curvature)
    loss = keras.ops.where(x < width, width * keras.ops.log(1.0 + x / curvature), x - c)
    return keras.ops.mean(loss, axis=-1)


LOSSES = {"mse": "mean_squared_error", "l1": "mean_absolute_error", "wing": wing_loss}


def compile_model(model, loss="mse", learning_rate=1e-3, optimizer="adam"):
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; choose one of {tuple(LOSSES)}")
    optimizers = {"adam": keras.optimizers.Adam, "sgd": keras.optimizers.SGD,
                  "rmsprop": keras.optimizers.RMSprop}
    if optimizer not in optimizers:
        raise ValueError(f"unknown optimizer {optimizer!r}; choose one of {tuple(optimizers)}")
    model.compile(optimizer=optimizers[optimizer](learning_rate=learning_rate),
                  loss=LOSSES[loss], jit_compile=keras.backend.backend() == "jax")
    return model


def cosine_tail(k, epochs):
    """Learning-rate factor of the ``k``-th of ``epochs`` annealing epochs: a half cosine from 1
    towards 0, taken at the middle of each epoch (so the last epoch still learns a little)."""
    return 0.5 * (1.0 + np.cos(np.pi * (k + 0.5) / epochs))


class PlateauThenAnneal(keras.callbacks.ReduceLROnPlateau):
    """ReduceLROnPlateau (when ``plateau``) for the first ``tail_start`` epochs, then the rate it
    reached annealed towards 0 over ``tail`` more epochs (:func:`cosine_tail`; notebook 08).

    Each tail epoch scales the optimizer's current rate by the step of the cosine, so a run
    resumed by BackupAndRestore (which restores the optimizer, rate included) stays on course.
    """

    def __init__(self, tail_start, tail, plateau=True, **kwargs):
        super().__init__(**kwargs)
        self.tail_start, self.tail, self.plateau = tail_start, tail, plateau

    def on_epoch_begin(self, epoch, logs=None):
        k = epoch - self.tail_start
        if 0 <= k < self.tail:
            before = cosine_tail(k - 1, self.tail) if k else 1.0
            lr = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
            self.model.optimizer.learning_rate = lr * cosine_tail(k, self.tail) / before

    def on_epoch_end(self, epoch, logs=None):
        if self.plateau and epoch < self.tail_start:
            return super().on_epoch_end(epoch, logs)
        if logs is not None:
            logs["learning_rate"] = float(keras.ops.convert_to_numpy(
                self.model.optimizer.learning_rate))


class TrainingStopped(Exception):
    """Training was stopped (Ctrl-C); its resume state is kept: rerunning resumes ``model``
    from ``epoch`` (1-based, as Keras counts them on screen)."""

    def __init__(self, model, epoch):
        super().__init__(f"{model}: stopped; rerun to resume from epoch {epoch}")
        self.model, self.epoch = model, epoch


class StopOnInterrupt(keras.callbacks.Callback):
    """Ctrl-C during ``fit`` stops after the current batch with :class:`TrainingStopped`.

    The SIGINT handler only sets a flag: Python raises a handler's exception wherever the
    main thread happens to be, and inside JAX's garbage-collection callback it is printed
    and lost ("Exception ignored ...") while training goes on. The flag is checked after every
    batch, from the training loop itself. A second Ctrl-C interrupts at once."""

    def __init__(self, name):
        super().__init__()
        self.name, self.requested, self.epoch = name, False, 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
        self._check()

    def on_train_batch_end(self, batch, logs=None):
        self._check()

    def _check(self):
        if self.requested:
            self.model.stop_training = True
            raise TrainingStopped(self.name, self.epoch + 1)

    def __enter__(self):
        import signal
        import threading
        self._previous = None
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._on_sigint)
        return self

    def __exit__(self, *exc):
        import signal
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return False

    def _on_sigint(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True


def completed_epochs(csv_path):
    """Epochs logged so far in a CSV history (0 if none)."""
    if not Path(csv_path).is_file():
        return 0
    import csv
    with open(csv_path, newline="") as fh:
        return sum(1 for r in csv.DictReader(fh) if (r.get("epoch") or "").isdigit())


def fit_model(model, train, val, out_path, epochs, batch_size=16, target="points",
              augment=AugmentConfig(), patience=10, seed=0, verbose=1, steps_per_epoch=None,
              reduce_lr=False, extra_callbacks=(), anneal_epochs=0):
    """Train a compiled model and save it to ``out_path`` (``.keras``).

    ``train`` and ``val`` are ``(images uint8, points in crop pixels)``. A backup folder beside
    the model lets a killed run resume; ``<name>.history.json`` and ``.csv`` hold the curves.
    ``reduce_lr``: halve the learning rate when the validation loss stalls; ``anneal_epochs``:
    that many epochs more, the rate annealed towards 0 (:class:`PlateauThenAnneal`).
    Returns the history dict (loss and val_loss per epoch, plus wall time).

    Ctrl-C stops after the current batch with :class:`TrainingStopped` (the resume state is
    kept); one that comes after the last batch lets the model be saved and sets
    ``history["stopped"]``.
    """
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    stem = out_path.with_suffix("")
    keras.utils.set_random_seed(seed)
    train_ds = make_dataset(*train, target, batch_size, augment, shuffle=True, seed=seed,
                            repeat=steps_per_epoch is not None)
    val_ds = make_dataset(*val, target, batch_size)
    callbacks = [
        keras.callbacks.BackupAndRestore(str(stem) + ".backup"),
        keras.callbacks.ModelCheckpoint(str(stem) + ".best.keras", monitor="val_loss",
                                        save_best_only=True),
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience,
                                      restore_best_weights=True),
        # before the CSV log, which then records each epoch's learning rate
        *([PlateauThenAnneal(epochs, anneal_epochs, reduce_lr, monitor="val_loss", factor=0.5,
                             min_lr=1e-5, patience=max(2, patience // 3))]
          if reduce_lr or anneal_epochs else []),
        keras.callbacks.CSVLogger(str(stem) + ".history.csv", append=True),
        keras.callbacks.TerminateOnNaN(),
        *extra_callbacks,
    ]
    _resume_best(callbacks, str(stem) + ".history.csv", str(stem) + ".backup")
    if verbose:  # a notebook training several models says which one each block of epochs is
        print(f"{model.name}: {len(train[0])} training images, up to {epochs + anneal_epochs} "
              f"epochs, batch {batch_size}")
    if Path(str(stem) + ".backup").is_dir() and verbose:
        done = completed_epochs(str(stem) + ".history.csv")
        print(f"{out_path.stem}: resumed a stopped run from epoch {done + 1}", flush=True)
    start = time.time()
    with StopOnInterrupt(out_path.stem) as stopper:
        hist = model.fit(train_ds, validation_data=val_ds, epochs=epochs + anneal_epochs,
                         callbacks=[*callbacks, stopper],
                         verbose=verbose, steps_per_epoch=steps_per_epoch,
                         shuffle=False)  # the tf.data stream shuffles
        stopped_at_the_end = stopper.requested  # Ctrl-C after the last batch: save, then stop
    best = Path(str(stem) + ".best.keras")
    if best.is_file():  # the best epoch overall, also across a resumed run
        model.load_weights(best)
    history = {k: [float(v) for v in vals] for k, vals in hist.history.items()}
    history["wall_time_s"] = time.time() - start
    history["epochs_run"] = len(history.get("loss", []))
    history["train_images"] = int(len(train[0]))
    tmp = out_path.with_name(out_path.stem + f".{os.getpid()}.tmp.keras")
    model.save(tmp)
    os.replace(tmp, out_path)
    Path(str(stem) + ".history.json").write_text(json.dumps(history, indent=1))
    history["stopped"] = stopped_at_the_end  # the caller stops once it has saved its own files
    return history


def _resume_best(callbacks, csv_path, backup_dir):
    """After a kill, the new callbacks start from the best validation loss logged so far, so
    the best checkpoint is not overwritten by a worse epoch."""
    if not (Path(backup_dir).is_dir() and Path(csv_path).is_file()):
        return
    import csv
    with open(csv_path, newline="") as fh:
        losses = [float(r["val_loss"]) for r in csv.DictReader(fh) if r.get("val_loss")]
    if losses:
        for cb in callbacks:
            if isinstance(cb, (keras.callbacks.ModelCheckpoint, keras.callbacks.EarlyStopping)):
                cb.best = min(losses)


def load_history(model_path):
    """The history saved beside a model (empty dict if none).

    Loss curves come from the CSV log, which spans every resumed run of the fit; the model's
    manifest beside it, when there is one, names the loss (``"loss_name"``).
    """
    stem = str(Path(model_path).with_suffix(""))
    history = {}
    manifest = Path(stem + ".json")
    if manifest.is_file():
        history["loss_name"] = json.loads(manifest.read_text()).get("loss")
    if Path(stem + ".history.json").is_file():
        history.update(json.loads(Path(stem + ".history.json").read_text()))
    if Path(stem + ".history.csv").is_file():
        import csv
        with open(stem + ".history.csv", newline="") as fh:
            rows = [r for r in csv.DictReader(fh) if r.get("epoch", "").isdigit()]
        for key in ("loss", "val_loss", "learning_rate"):
            if rows and rows[0].get(key):
                history[key] = [float(r[key]) for r in rows]
    return history


def predict_targets(model, images, batch_size=64):
    """Model outputs for uint8 images (N, S, S, 3), as float64 numpy.

    A compiled function is reused across calls (4x faster than eager calls for the single
    faces of ``fkd predict``; see :func:`compiled_predict`). On backends that compile anew
    for every new batch size (JAX), the images go in pieces whose sizes are powers of two
    (``batch_size``-sized pieces, then the rest's binary digits: 70 = 64 + 4 + 2), never
    padded: a model meets at most 7 sizes, whatever the count of faces per photo batch.
    """
    images = np.asarray(images)
    if not len(images):
        return np.zeros((0,) + tuple(model.output_shape[1:]))
    run = compiled_predict(model)
    # TensorFlow's traced function and ONNX Runtime take any batch size: one pass per
    # ``batch_size * 4`` faces instead of 31 faces in five pieces (fewer, larger passes; the
    # gain end to end was within this machine's noise, a few % at most)
    pieces = (batch_bounds(len(images), batch_size) if _compiles_per_batch_size(model)
              else [(i, i + 4 * batch_size) for i in range(0, len(images), 4 * batch_size)])
    outputs = [np.asarray(run(images[i:j].astype(np.float32) / 255.0)) for i, j in pieces]
    return np.concatenate(outputs).astype(np.float64)


def _compiles_per_batch_size(model):
    """Whether each new batch size costs this model a compilation (Keras models on JAX, also
    behind a stand-in that holds one as ``.model``, like ``quantize.InputRecorder``)."""
    return (keras.backend.backend() == "jax"
            and isinstance(getattr(model, "model", model), keras.Model))


def compiled_predict(model):
    """The model's inference function, compiled once for every batch size.

    On TensorFlow, Keras' ``predict_on_batch`` traces once per model and again at the second
    batch size, and TensorFlow counts those traces by the code of Keras' shared step function:
    predicting with five models in a row (a notebook's region ResNets) reads as "retracing"
    and logs a warning. Here each model gets one ``tf.function`` over the model object itself
    (so its traces are counted per model) with a batch dimension of ``None`` (one trace for
    every batch size). Other backends, and objects that only look like a model, use their
    ``predict_on_batch``.
    """
    if keras.backend.backend() != "tensorflow" or not isinstance(model, keras.Model):
        return model.predict_on_batch
    run = model.__dict__.get("_fkd_predict")
    if run is None:
        import functools
        spec = tf.TensorSpec((None,) + tuple(model.input_shape[1:]), tf.float32)
        run = tf.function(functools.partial(model, training=False), input_signature=[spec])
        object.__setattr__(model, "_fkd_predict", run)  # not a Keras-tracked attribute
    return run


def batch_bounds(n, batch_size=64):
    """``(start, stop)`` of pieces of ``range(n)``: full ``batch_size`` pieces (a power of two),
    then one piece per binary digit of the rest, largest first."""
    if batch_size < 1 or batch_size & (batch_size - 1):
        raise ValueError(f"batch_size must be a power of two, got {batch_size}")
    sizes = [batch_size] * (n // batch_size)
    sizes += [1 << k for k in reversed(range(batch_size.bit_length())) if (n % batch_size) >> k & 1]
    stops = np.cumsum(sizes, dtype=int)
    return [(int(b - s), int(b)) for s, b in zip(sizes, stops)]


# ---------------------------------------------------------------- data-parallel training
#: Use only the first N devices (``fkd train --devices N``); unset: every device Keras sees.
DEVICES_ENV = "FKD_DEVICES"


def training_devices():
    """The devices a fit spreads over by default: every device of JAX's default platform
    (its GPUs when it has some, else its CPU devices, e.g. the ones
    ``XLA_FLAGS=--xla_force_host_platform_device_count=2`` makes), or TensorFlow's GPUs (else
    its one CPU device); capped by ``$FKD_DEVICES``."""
    backend = keras.backend.backend()
    if backend == "jax":
        found = keras.distribution.list_devices()
    elif backend == "tensorflow":
        found = [d.name for d in tf.config.list_logical_devices("GPU")] or ["/device:CPU:0"]
    else:
        found = ["default"]
    wanted = os.environ.get(DEVICES_ENV, "").strip()
    if wanted:
        if not wanted.isdigit() or int(wanted) < 1:
            raise ValueError(f"{DEVICES_ENV}={wanted!r}: give a device count of at least 1")
        found = found[:int(wanted)]
    return found


@contextlib.contextmanager
def data_parallel(devices=None):
    """Build, compile and fit a model inside this scope to train it data-parallel over
    ``devices`` (default :func:`training_devices`): each step splits the global batch across
    them and averages the gradients (JAX: ``keras.distribution.DataParallel``, which also
    computes batch-norm statistics over the whole global batch; TensorFlow:
    ``tf.distribute.MirroredStrategy``, batch norm per device). Yields the device names;
    with one device nothing is distributed."""
    devices = training_devices() if devices is None else list(devices)
    if len(devices) < 2:
        yield devices
    elif keras.backend.backend() == "jax":
        with keras.distribution.DataParallel(devices=devices).scope():
            yield devices
    elif keras.backend.backend() == "tensorflow":
        with tf.distribute.MirroredStrategy(devices).scope():
            yield devices
    else:
        raise ValueError(f"data-parallel training on {keras.backend.backend()!r} is not "
                         f"supported; set {DEVICES_ENV}=1")


def scaled_for(devices, batch_size, learning_rate):
    """Global batch = per-device batch x devices, and the learning rate scaled by the same
    factor (the linear scaling rule, Goyal et al. 2017): an epoch takes N times fewer steps,
    each averaging N times more images. Returns ``(global_batch, learning_rate, note)``."""
    n = len(devices)
    note = (f"data-parallel on {n} devices: global batch {batch_size * n} "
            f"({batch_size} per device), learning rate {learning_rate * n:g} "
            f"({learning_rate:g} x {n}, scaled linearly)") if n > 1 else ""
    return batch_size * n, learning_rate * n, note


def variable_devices(model):
    """Names of the devices holding the model's first weight: where training actually ran."""
    value = model.weights[0].value
    if hasattr(value, "sharding"):  # jax
        return sorted(str(d) for d in value.sharding.device_set)
    if hasattr(value, "values"):  # tf.distribute mirrored variable
        return sorted(v.device for v in value.values)
    return [str(getattr(value, "device", "default"))]
