"""Where the jaw's error is: ``fkd predict``'s cascade from the 300-W boxes on the training
tenth, the jaw's NME split into along the jaw line and across it, and what spacing the
predicted jaw points evenly along their own curve would do.

    python benchmarks/jaw_error.py --data-dir ../shared/data/300w

Along / across: each jaw point's error projected on the true jaw line's direction at that
point (central differences of the true points) and on its normal, over the outer-eye-corner
distance.
"""
import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fkd_utils.compare import samples_of  # noqa: E402
from fkd_utils.io import pts_to_pixels, read_image, read_pts  # noqa: E402
from fkd_utils.landmarker import Landmarker  # noqa: E402
from fkd_utils.markup import JAW  # noqa: E402
from fkd_utils.metrics import interocular, point_errors  # noqa: E402
from fkd_utils.preprocess import face_boxes  # noqa: E402

ANCHORS = (0, 8, 16)  # the jaw line's ends and the chin


def respaced(jaw, anchors=ANCHORS):
    """Jaw points (17, 2) moved to even arc-length spacing between the ``anchors``."""
    out = jaw.copy()
    for a, b in zip(anchors[:-1], anchors[1:]):
        piece = jaw[a:b + 1]
        arc = np.r_[0.0, np.cumsum(np.linalg.norm(np.diff(piece, axis=0), axis=-1))]
        even = np.linspace(0.0, arc[-1], len(piece))
        out[a:b + 1] = np.stack([np.interp(even, arc, piece[:, k]) for k in range(2)], axis=1)
    return out


def along_and_across(pred, gt):
    """Mean |error| along and across the true jaw line, over the eye-corner distance."""
    jaw_pred, jaw_gt = pred[:, list(JAW)], gt[:, list(JAW)]
    tangent = np.gradient(jaw_gt, axis=1)
    tangent /= np.linalg.norm(tangent, axis=-1, keepdims=True)
    error = jaw_pred - jaw_gt
    along = np.abs((error * tangent).sum(-1))
    across = np.abs(error[..., 0] * tangent[..., 1] - error[..., 1] * tangent[..., 0])
    norm = interocular(gt)[:, None]
    return float((along / norm).mean()), float((across / norm).mean())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=None, help="weights folder (default: the shipped one)")
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--stages", type=int, default=None)
    args = parser.parse_args(argv)
    landmarker = Landmarker(args.weights, "cascade", stages=args.stages)
    _, samples = samples_of(args.data_dir, "tenth")
    boxes, _ = face_boxes(samples, args.data_dir, "bb_detector")
    pred = np.stack([landmarker.landmarks(read_image(s.image_path), box[None])[0]
                     for s, box in zip(samples, boxes)])
    gt = np.stack([pts_to_pixels(read_pts(s.pts_path)) for s in samples])
    errors = point_errors(pred, gt)
    jaw = list(JAW)
    inner = [i for i in range(68) if i not in JAW]
    along, across = along_and_across(pred, gt)
    even = pred.copy()
    even[:, jaw] = np.stack([respaced(shape[jaw]) for shape in pred])
    print(f"tenth, {len(samples)} faces, 300-W boxes, stages {landmarker.stages}, "
          f"{landmarker.runtime}: NME {100 * errors.mean():.3f} %, jaw "
          f"{100 * errors[:, jaw].mean():.3f} %, other points "
          f"{100 * errors[:, inner].mean():.3f} %")
    print(f"jaw error along the jaw line {100 * along:.2f} %, across it {100 * across:.2f} %")
    print(f"jaw points spaced evenly between points {ANCHORS}: jaw NME "
          f"{100 * point_errors(even, gt)[:, jaw].mean():.3f} %")


if __name__ == "__main__":
    main()
