"""Faces per second of ``fkd predict`` end to end on 2 CPU cores: decode, detect, crop, predict.

    python benchmarks/predict_speed.py [IMAGES_DIR] [--weights DIR] [--approach cascade]
                                       [--detector hog haar] [--limit 200] [--batch 1 32]
                                       [--stages 1 2 3] [--min-face 0.2 0.12]

Defaults: the shipped real-face weights and ``../shared/data/300w/helen/testset``. Prints one
line per setting, e.g. ``cascade hog batch 1: 200 images, 199 faces, 23.4 faces/s``.
"""
import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fkd_utils.landmarker import IMAGE_SUFFIXES, Landmarker, predict_batches  # noqa: E402


def run(files, landmarker, batch=1):
    """Decode, detect, crop and predict every file as ``fkd predict`` does: ``batch`` images
    per batched model pass (1: one photo at a time), the next batch decoded and detected
    while the models work."""
    start = time.perf_counter()
    faces = sum(len(f) for *_, f in predict_batches([(p, p.stem) for p in files], landmarker, batch))
    return faces, time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("images", nargs="?",
                        default=str(Path(__file__).resolve().parents[2] / "shared/data/300w/helen/testset"))
    parser.add_argument("--weights", default=None)
    parser.add_argument("--approach", nargs="+", default=["cascade", "end-to-end"])
    parser.add_argument("--detector", nargs="+", default=["hog", "haar"])
    parser.add_argument("--limit", type=int, default=200)
    parser.add_argument("--batch", nargs="+", type=int, default=[1, 32],
                        help="images per batched model pass (1: one photo at a time)")
    parser.add_argument("--stages", nargs="+", type=int, default=[None],
                        help="cascade: how many stages to run (fkd predict --stages; default: its default)")
    parser.add_argument("--min-face", nargs="+", type=float, default=[None],
                        help="the detector's smallest face, fraction of the photo's side "
                             "(fkd predict --min-face; default: the detector's)")
    args = parser.parse_args(argv)
    files = sorted(p for p in Path(args.images).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    files = files[: args.limit]
    for approach, stages in [(a, k) for a in args.approach
                             for k in (args.stages if a == "cascade" else [None])]:
        try:
            landmarker = Landmarker(args.weights, approach, stages=stages)
        except Exception as err:  # a weights folder without this approach's models
            print(f"{approach}: skipped ({err})")
            continue
        if stages:
            approach = f"{approach} ({stages} stage{'s' if stages > 1 else ''})"
        for backend, min_face in [(b, m) for b in args.detector for m in args.min_face]:
            landmarker.set_detector(backend, min_face)
            detector = backend + (f" (min face {min_face})" if min_face else "")
            for batch in args.batch:
                run(files[:batch + 2], landmarker, batch)  # warm-up: first calls compile
                faces, seconds = run(files, landmarker, batch)
                print(f"{approach} {detector} batch {batch}: {len(files)} images, {faces} faces, "
                      f"{faces / seconds:.1f} faces/s ({1000 * seconds / len(files):.1f} ms/image)")


if __name__ == "__main__":
    main()
