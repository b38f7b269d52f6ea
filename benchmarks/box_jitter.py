"""Would reading each face from several boxes and averaging make ``fkd predict`` more accurate?
On the training tenth, end to end with fkd's own detector: every face's box (as ``fkd predict``
placed it) is also shifted and scaled, the cascade reads the face from each box, and the reads
are averaged.

    python benchmarks/box_jitter.py --data-dir ../shared/data/300w [--stages 3] [--flip]
                                    [--reframe 2] [--runtime keras]

Defaults: the most accurate setting (``--stages 3 --flip --reframe 2``, Keras). Prints the NME
(68 points) of each box alone and of the averages. Faces the detector misses are left out (the
same faces for every row), so the rows compare with each other, not with
``benchmarks/compare_weights.py``'s.

Measured 2026-12-01 (shipped weights, 190 of 193 faces, 2 CPU cores): the box as placed
3.184 %, its reads averaged with the 5 %-scaled ones 3.180 %, with the four 3 %-shifted ones
3.178 %, all nine 3.177 %: the cascade already reads a face alike from nearby boxes (its
training jittered the boxes as widely), so averaging buys 0.2 % for nine times the passes and
``fkd predict`` does not do it.
"""
import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fkd_utils import quiet  # noqa: E402,F401  (silences TensorFlow's start-up lines)
from fkd_utils.compare import samples_of  # noqa: E402
from fkd_utils.detect import Calibration, pick_face  # noqa: E402
from fkd_utils.io import read_image, read_pts  # noqa: E402
from fkd_utils.landmarker import Landmarker  # noqa: E402
from fkd_utils.metrics import nme  # noqa: E402
from fkd_utils.pipeline import pixels_to_pts  # noqa: E402
from fkd_utils.preprocess import face_boxes  # noqa: E402

#: (shift right, shift down, scale), shifts in box sides (a detector calibration's terms,
#: :class:`fkd_utils.detect.Calibration`); the first is the box as placed
JITTERS = ((0.0, 0.0, 1.0), (0.0, 0.0, 0.95), (0.0, 0.0, 1.05), (0.03, 0.0, 1.0),
           (-0.03, 0.0, 1.0), (0.0, 0.03, 1.0), (0.0, -0.03, 1.0), (0.0, 0.0, 0.9),
           (0.0, 0.0, 1.1))
#: which reads each averaged row takes (indices into JITTERS)
AVERAGES = {"as placed, 5 % scaled": (0, 1, 2), "as placed, 3 % shifted": (0, 3, 4, 5, 6),
            "all nine": tuple(range(len(JITTERS)))}


def reads(landmarker, image, reference):
    """The cascade's points (len(JITTERS), 68, 2) for the detected face that overlaps the
    300-W box ``reference`` best, read from each jittered box (None if none was found)."""
    faces = landmarker(image)
    chosen = pick_face(np.array([f["box"] for f in faces]).reshape(-1, 4), reference)
    if chosen is None:
        return None
    face = next(f for f in faces if f["box"] == chosen.tolist())
    others = np.concatenate([Calibration(*j).apply(face["box"]) for j in JITTERS[1:]])
    return np.concatenate([face["points"][None], landmarker.landmarks(image, others)])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=None, help="weights folder (default: the shipped one)")
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--stages", type=int, default=3)
    parser.add_argument("--flip", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--reframe", type=int, default=2)
    parser.add_argument("--runtime", default="keras")
    args = parser.parse_args(argv)
    landmarker = Landmarker(args.weights, "cascade", stages=args.stages, flip=args.flip,
                            reframe=args.reframe, runtime=args.runtime)
    _, samples = samples_of(args.data_dir, "tenth")
    boxes, _ = face_boxes(samples, args.data_dir, "bb_detector")
    points, truth = [], []
    for sample, box in zip(samples, boxes):
        got = reads(landmarker, read_image(sample.image_path), box)
        if got is not None:
            points.append(pixels_to_pts(got))
            truth.append(read_pts(sample.pts_path))
    points, truth = np.array(points), np.array(truth)
    print(f"tenth: {len(truth)} of {len(samples)} faces found; --stages {landmarker.stages}"
          f"{' --flip' if landmarker.flip else ''} --reframe {landmarker.reframe}, "
          f"{landmarker.runtime}")
    for k, jitter in enumerate(JITTERS):
        print(f"box moved {jitter[0]:+.2f} / {jitter[1]:+.2f}, scaled {jitter[2]:.2f}: "
              f"NME {100 * nme(points[:, k], truth).mean():.3f} %")
    for name, which in AVERAGES.items():
        print(f"averaged, {name} ({len(which)} reads): "
              f"NME {100 * nme(points[:, list(which)].mean(axis=1), truth).mean():.3f} %")


if __name__ == "__main__":
    main()
