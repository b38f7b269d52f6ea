"""How far fkd predict's own face boxes land from the 300-W detector boxes the models train on.

For every ``--every``-th training image: the calibrated detection (the shipped calibration, as
``fkd predict`` uses it) that overlaps the 300-W ``bb_detector`` box best, and its residual
against that box: centre shift in fractions of the box side, and log scale. These spreads are
what a model starting from fkd's own boxes has to absorb; the training augmentation's
translation and scale ranges (``fkd_utils.augment.AugmentConfig``, in fractions of the crop,
which is the box plus its margin) can be matched to them.

    python benchmarks/detector_residuals.py --data-dir ../shared/data/300w --every 4

Training images only: the HELEN test images are never used to choose a setting.
"""
import argparse
import sys

import numpy as np

from fkd_utils import quiet  # noqa: F401  (silences TensorFlow's start-up lines)
from fkd_utils.data import split_samples
from fkd_utils.detect import MIN_FACE, FaceDetector, nearest_calibration, pick_face
from fkd_utils.io import read_image
from fkd_utils.preprocess import face_boxes
from fkd_utils.weights_io import read_weights_manifest, shipped_weights_dir


def residuals(data_dir, every, backend, min_face):
    samples = split_samples(data_dir, "train")[::every]
    boxes, _ = face_boxes(samples, data_dir, "bb_detector")
    stored = read_weights_manifest(shipped_weights_dir("real"))["detector_calibration"][backend]
    detector = FaceDetector(nearest_calibration(stored, min_face), min_face, backend)
    rows, missed = [], 0
    for sample, ref in zip(samples, boxes):
        found = pick_face(detector(read_image(sample.image_path)), ref)
        if found is None:
            missed += 1
            continue
        side = np.mean(ref[2:] - ref[:2])
        shift = ((found[:2] + found[2:]) - (ref[:2] + ref[2:])) / 2 / side
        rows.append([*shift, np.log(np.mean(found[2:] - found[:2]) / side)])
    return np.array(rows), len(samples), missed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--every", type=int, default=4)
    parser.add_argument("--backend", default="hog")
    parser.add_argument("--min-face", type=float, default=MIN_FACE)
    args = parser.parse_args(argv)
    rows, n, missed = residuals(args.data_dir, args.every, args.backend, args.min_face)
    print(f"{args.backend} (min face {args.min_face}), every {args.every}th training image: "
          f"{len(rows)} of {n} matched, {missed} missed")
    print("residual           mean     std    p5      p95    |p95|")
    for k, name in enumerate(("dx / side", "dy / side", "log scale")):
        v = rows[:, k]
        lo, hi = np.percentile(v, [5, 95])
        print(f"{name:14s} {v.mean():+7.3f} {v.std():7.3f} {lo:+7.3f} {hi:+7.3f} "
              f"{np.percentile(np.abs(v), 95):7.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
