"""The shipped models on an accelerator (Keras on JAX): same answers as on the CPU, and speed.

    KERAS_BACKEND=jax python benchmarks/accelerator_check.py [--weights fkd_utils/weights/real]
                               [--sizes 128 224] [--steps 30] [--save gpu_points.npz]
    python benchmarks/accelerator_check.py --compare gpu_points.npz   # any backend, e.g. a CPU

Needs only keras, jax (with its GPU plugin), numpy and opencv: no TensorFlow, so it runs where
a GPU image ships JAX but not TensorFlow. For each shipped model it prints the largest
difference between the accelerator's and the CPU's points (crop pixels) on synthetic faces,
then the faces/s of a batched prediction, then training images/s of our cascade stage
(integral head, L1, Adam) at each size in mixed bfloat16 and float32 (the ``full``
profile trains at 224 px). On a machine without an accelerator it says so and stops.
"""
import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from fkd_utils.crop import face_crop  # noqa: E402
from fkd_utils.data import points_box  # noqa: E402
from fkd_utils.io import pixels_to_pts  # noqa: E402
from fkd_utils import models  # noqa: E402
from fkd_utils.models import build_resnet  # noqa: E402
from fkd_utils.synthetic import render_face  # noqa: E402


def load_exported(folder, name):
    return models.load_exported(folder / f"{name}.json", folder / f"{name}.weights.npz")


def face_crops(count, size, seed=0):
    rng = np.random.default_rng(seed)
    crops = []
    for _ in range(count):
        image, points = render_face(rng, 256)
        crop, _, _ = face_crop(image, points_box(pixels_to_pts(points)), size, 0.3)
        crops.append(crop.astype(np.float32))
    return np.stack(crops)


def on(device, fn, *args):
    import jax
    with jax.default_device(device):
        return fn(*args)


def agreement(folder, accelerator, cpu, count=256, save=None):
    saved = {}
    for name in json.loads((folder / "manifest.json").read_text())["models"]:
        model = load_exported(folder, name)
        x = face_crops(count, model.input_shape[1])
        here = saved[name] = on(accelerator, model.predict, x, 32, 0)
        there = on(cpu, model.predict, x, 32, 0)
        start = time.perf_counter()
        for _ in range(3):
            on(accelerator, model.predict, x, 32, 0)
        rate = 3 * count / (time.perf_counter() - start)
        print(f"{name:16s} max |accelerator - cpu| {np.abs(here - there).max():.4f} px, "
              f"{rate:.0f} faces/s (batch 32)", flush=True)
    if save:  # compare elsewhere with --compare (e.g. with TensorFlow on a CPU)
        np.savez_compressed(save, **saved)


def compare(path, folder):
    """Largest difference between saved accelerator points and this machine's backend."""
    with np.load(path) as saved:
        for name in saved.files:
            model = load_exported(folder, name)
            here = model.predict(face_crops(len(saved[name]), model.input_shape[1]), 32, 0)
            print(f"{name:24s} max |saved - {keras.backend.backend()} here| "
                  f"{np.abs(saved[name] - here).max():.4f} px, mean "
                  f"{np.abs(saved[name] - here).mean():.4f} px")


def training_speed(size, precision, steps, batch=32):
    model = build_resnet(size, 136, head="integral", precision=precision)
    model.compile(keras.optimizers.Adam(1e-3), "mean_absolute_error", jit_compile=True)
    rng = np.random.default_rng(0)
    x = rng.random((batch * 4, size, size, 3), dtype=np.float32)
    y = rng.uniform(0, size, (batch * 4, 136)).astype(np.float32)
    model.fit(x, y, batch_size=batch, epochs=1, verbose=0)  # compiles
    start = time.perf_counter()
    for _ in range(max(steps // 4, 1)):
        model.fit(x, y, batch_size=batch, epochs=1, verbose=0)
    seconds = time.perf_counter() - start
    return max(steps // 4, 1) * 4 * batch / seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=str(Path(__file__).resolve().parents[1] / "fkd_utils/weights/real"))
    parser.add_argument("--sizes", nargs="*", type=int, default=[128, 224],
                        help="training speed at these input sizes (none: skip)")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--save", default=None, help="also write the accelerator's points here")
    parser.add_argument("--compare", default=None,
                        help="compare points saved by --save with this machine's (any backend)")
    args = parser.parse_args(argv)
    if args.compare:
        return compare(args.compare, Path(args.weights))
    if keras.backend.backend() != "jax":
        sys.exit("run with KERAS_BACKEND=jax")
    import jax
    accelerators = [d for d in jax.devices() if d.platform != "cpu"]
    if not accelerators:
        print("no accelerator: JAX sees only the CPU; nothing to check")
        return
    print("accelerator:", accelerators[0].device_kind, "| jax", jax.__version__,
          "| keras", keras.__version__, flush=True)
    agreement(Path(args.weights), accelerators[0], jax.devices("cpu")[0], save=args.save)
    for size in args.sizes:
        for precision in ("mixed_bfloat16", "float32"):
            rate = on(accelerators[0], training_speed, size, precision, args.steps)
            print(f"training, {size} px, {precision}: {rate:.0f} images/s", flush=True)


if __name__ == "__main__":
    main()
