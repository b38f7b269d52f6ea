"""fkd predict end to end (its own face detector) with two or more weights folders, side by side.

Each folder is scored on the fixed training tenth (``tenth``: the held-out selection images,
where choices are made) and, to report only, on a measured split (``validation``: the HELEN
test images). ``--swap NAME=MODEL.keras`` first builds a copy of the shipped weights with one
model replaced by a checkpoint (e.g. a release run's best stage 1 while the rest still trains):

    python benchmarks/compare_weights.py --data-dir ../shared/data/300w --sets tenth validation \\
        --swap cascade_stage1=models/release/300w-6419e0cf6e/cascade_stage1.best.keras

Prints NME and FR@0.08 (68 points) per folder and set; ``--stages`` and ``--runtime`` as for
``fkd predict`` (several values: every combination).
"""
import argparse
import itertools
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from fkd_utils import quiet  # noqa: F401  (silences TensorFlow's start-up lines)
from fkd_utils import weights_io
from fkd_utils.data import split_samples
from fkd_utils.landmarker import Landmarker, predict_split_from_files
from fkd_utils.metrics import failure_rate, nme
from fkd_utils.pipeline import model_selection


def swapped_copy(swaps, out_dir):
    """The shipped weights with each ``name -> .keras checkpoint`` of ``swaps`` put in."""
    import keras
    shutil.copytree(weights_io.shipped_weights_dir("real"), out_dir)
    manifest = json.loads((out_dir / "manifest.json").read_text())
    for name, checkpoint in swaps.items():
        model = keras.models.load_model(checkpoint, compile=False)
        for path in weights_io.export_model(model, out_dir, name):
            manifest["files"][path.name] = weights_io.sha256(path)
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return out_dir


def samples_of(data_dir, which):
    """``(split, samples)``: the training tenth, or a whole split."""
    if which != "tenth":
        return which, None
    samples = split_samples(data_dir, "train")
    mask = model_selection(np.array([s.id for s in samples]))
    return "train", [s for s, chosen in zip(samples, mask) if chosen]


def errors(landmarker, data_dir, which):
    """Per-image NME (68 points) of fkd predict's pipeline, as notebook 08 measures it."""
    split, samples = samples_of(data_dir, which)
    pred = predict_split_from_files(landmarker, data_dir, split, samples=samples)
    return nme(pred.points, pred.gt)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights", nargs="*", help="weights folders (default: the shipped one)")
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--sets", nargs="+", default=["tenth"])
    parser.add_argument("--stages", type=int, nargs="+", default=[None])
    parser.add_argument("--runtime", nargs="+", default=["keras"],
                        help="model runtimes (fkd predict --runtime): keras, onnx, int8")
    parser.add_argument("--swap", action="append", default=[], metavar="NAME=MODEL.keras")
    args = parser.parse_args(argv)
    folders = [Path(w) for w in args.weights] or [weights_io.shipped_weights_dir("real")]
    with tempfile.TemporaryDirectory() as tmp:
        if args.swap:
            swaps = dict(s.split("=", 1) for s in args.swap)
            folders.append(swapped_copy(swaps, Path(tmp) / "swapped"))
        for which in args.sets:
            for folder, stages, runtime in itertools.product(folders, args.stages, args.runtime):
                e = errors(Landmarker(folder, "cascade", stages=stages, runtime=runtime),
                           args.data_dir, which)
                label = "shipped + " + ", ".join(args.swap) if folder.name == "swapped" else folder
                print(f"{which:10s} n={len(e)} NME {100 * e.mean():.3f} % "
                      f"FR@0.08 {100 * failure_rate(e):.2f} %  stages {stages or 'default'}, "
                      f"{runtime}: {label}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
