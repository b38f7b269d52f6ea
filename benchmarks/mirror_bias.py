"""The mirror bias (fkd_utils/mirror_bias.py): each cascade model's sideways error on its own
training faces, and what correcting it does on the selection tenth.

    python benchmarks/mirror_bias.py --data-dir ../shared/data/300w

Prints, per model of the weights folder's cascade, whether its training flipped faces and its
mean x and y error (ground truth minus prediction, image pixels) on every ``--every``-th fit
face from the 300-W boxes: the bias as measured at export. Then, on the tenth from the 300-W
boxes, the cascade's mean x and y error per part and its NME, as the models give their points
and with the mirror-bias correction alone (the stored biases, else those just measured; the
shape correction is left out of both).
"""
import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fkd_utils import quiet  # noqa: E402,F401  (silences TensorFlow's start-up lines)
from fkd_utils.compare import samples_of  # noqa: E402
from fkd_utils.landmarker import (Landmarker, _fit_samples,  # noqa: E402
                                  mirror_bias_calibration)
from fkd_utils.markup import PARTS  # noqa: E402
from fkd_utils.metrics import point_errors  # noqa: E402
from fkd_utils.pipeline import APPROACH_MODELS, CASCADE_STAGES, mirroring_in_training  # noqa: E402
from fkd_utils.preprocess import face_boxes, read_samples  # noqa: E402
from fkd_utils.weights_io import import_model  # noqa: E402


def tenth_errors(landmarker, data_dir):
    """The tenth's 300-W-box predictions and ground truth, (N, 68, 2) 0-based each."""
    _, samples = samples_of(data_dir, "tenth")
    images, gt = read_samples(samples)
    boxes, _ = face_boxes(samples, data_dir, "bb_detector")
    return np.concatenate(landmarker.landmarks_many(images, [[b] for b in boxes])), gt


def part_bias_line(pred, gt):
    residual = gt - pred
    return ", ".join(f"{part} {residual[:, list(ix), 0].mean():+.2f} / "
                     f"{residual[:, list(ix), 1].mean():+.2f}" for part, ix in PARTS.items())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=None, help="weights folder (default: the shipped one)")
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--every", type=int, default=2, help="every N-th fit face (default 2)")
    parser.add_argument("--stages", type=int, nargs="+", default=[2, 3])
    args = parser.parse_args(argv)
    landmarker = Landmarker(args.weights, "cascade", stages=len(CASCADE_STAGES),
                            runtime="keras")
    manifest, folder = landmarker.manifest, landmarker.weights_dir
    names = [n for n in APPROACH_MODELS["cascade"] if n in manifest["models"]]
    models = {n: import_model(folder, n, manifest) for n in names}
    measured = mirror_bias_calibration(models, args.data_dir, manifest, args.every)
    count = len(_fit_samples(args.data_dir, args.every))
    print(f"bias on {count} fit faces from their 300-W boxes (truth - prediction, x, px):")
    for name in names:
        mirrored = mirroring_in_training(name, manifest["profile"])
        print(f"  {name:26s} {mirrored:12s} {measured.get(name, float('nan')):+.3f}")
    stored = landmarker.x_bias
    print("stored in the manifest:", stored or "none (using those just measured)")
    for stages in args.stages:
        for label, biases in (("as trained", {}), ("corrected", stored or measured)):
            run = Landmarker(folder, "cascade", stages=stages, runtime="keras")
            run.x_bias, run.correction = biases, None  # the mirror bias alone, no shape correction
            pred, gt = tenth_errors(run, args.data_dir)
            print(f"tenth, 300-W boxes, {stages} stages, {label}: NME "
                  f"{100 * point_errors(pred, gt).mean():.3f} %; mean x / y error, px: "
                  f"{part_bias_line(pred, gt)}")


if __name__ == "__main__":
    main()
