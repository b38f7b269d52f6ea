"""fkd predict end to end (its own face detector) with two or more weights folders, side by side.

Each folder is scored on the fixed training tenth (``tenth``: the held-out selection images,
where choices are made) and, to report only, on a measured split (``validation``: the HELEN
test images). ``--swap NAME=MODEL.keras`` first builds a copy of the shipped weights with one
model replaced by a checkpoint (e.g. a release run's best stage 1 while the rest still trains):

    python benchmarks/compare_weights.py --data-dir ../shared/data/300w --sets tenth validation \\
        --swap cascade_stage1=models/release/300w-6419e0cf6e/cascade_stage1.best.keras

Prints NME, FR@0.08 (68 points) and CPU ms a face (one photo at a time) per folder and set;
``--stages`` and ``--runtime`` as for ``fkd predict`` (several values: every combination),
``--flip`` scores each setting also with ``fkd predict --flip``;
``--csv`` writes the table (``fkd_utils.compare``; notebook 09 shows the committed one).
"""
import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

from fkd_utils import quiet  # noqa: F401  (silences TensorFlow's start-up lines)
from fkd_utils import weights_io
from fkd_utils.compare import compare_frame
from fkd_utils.formats import int8_file


def swapped_copy(swaps, out_dir):
    """The shipped weights with each ``name -> .keras checkpoint`` of ``swaps`` put in."""
    import keras
    shutil.copytree(weights_io.shipped_weights_dir("real"), out_dir)
    manifest = json.loads((out_dir / "manifest.json").read_text())
    for name, checkpoint in swaps.items():
        model = keras.models.load_model(checkpoint, compile=False)
        for path in weights_io.export_model(model, out_dir, name):
            manifest["files"][path.name] = weights_io.sha256(path)
        # the shipped int8 copy is of the model swapped out: without it, auto runs Keras
        (out_dir / int8_file(name)).unlink(missing_ok=True)
        manifest["files"].pop(int8_file(name), None)
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return out_dir


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights", nargs="*", help="weights folders (default: the shipped one)")
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--sets", nargs="+", default=["tenth"])
    parser.add_argument("--stages", type=int, nargs="+", default=[None])
    parser.add_argument("--flip", action="store_true",
                        help="also score every setting with fkd predict --flip")
    parser.add_argument("--reframe", type=int, nargs="+", default=[None],
                        help="fkd predict --reframe values to score (default: the folder's)")
    parser.add_argument("--runtime", nargs="+", default=["keras"],
                        help="model runtimes (fkd predict --runtime): keras, onnx, int8, auto")
    parser.add_argument("--swap", action="append", default=[], metavar="NAME=MODEL.keras")
    parser.add_argument("--labels", nargs="+", help="the folders' names in the table")
    parser.add_argument("--limit", type=int, help="only the first images of each set")
    parser.add_argument("--csv", help="also write the table here (refused if it exists)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --csv")
    args = parser.parse_args(argv)
    folders = [Path(w) for w in args.weights] or [weights_io.shipped_weights_dir("real")]
    labels = args.labels or [str(f) for f in folders]
    if args.csv and Path(args.csv).exists() and not args.overwrite:
        parser.error(f"{args.csv} exists; pass --overwrite to replace it")
    if args.csv and not Path(args.csv).resolve().parent.is_dir():
        parser.error(f"{args.csv}: its folder does not exist")
    with tempfile.TemporaryDirectory() as tmp:
        if args.swap:
            swaps = dict(s.split("=", 1) for s in args.swap)
            folders.append(swapped_copy(swaps, Path(tmp) / "swapped"))
            labels.append("shipped + " + ", ".join(args.swap))
        try:  # bad --labels / --limit: compare_frame says what is wrong before any scoring
            table = compare_frame(folders, args.data_dir, args.sets, args.stages, args.runtime,
                                  labels, args.limit, log=lambda line: print(line, flush=True),
                                  flips=(False, True) if args.flip else (False,),
                                  reframes=args.reframe)
        except ValueError as err:
            parser.error(str(err))
    if args.csv:
        table.round(3).to_csv(args.csv, index=False)
        print(f"wrote {args.csv}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
