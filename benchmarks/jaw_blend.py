"""The jaw ResNet's weight on the jaw (``pipeline.JAW_BLEND``), chosen on the training tenth.

    python benchmarks/jaw_blend.py --data-dir ../shared/data/300w

Runs the cascade (Keras, the weights folder's mirror biases, no shape correction: that one is
fitted after the blend) from the 300-W boxes of the tenth without the jaw ResNet, then the jaw
ResNet around its points, and prints the NME (68 points, and the 17 jaw points alone) of
blends of the two jaws, per number of stages. Weight 0 is the cascade without the jaw ResNet.
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fkd_utils import quiet  # noqa: E402,F401  (silences TensorFlow's start-up lines)
from fkd_utils.compare import samples_of  # noqa: E402
from fkd_utils.landmarker import Landmarker, face_crops  # noqa: E402
from fkd_utils.markup import JAW  # noqa: E402
from fkd_utils.metrics import point_errors  # noqa: E402
from fkd_utils.pipeline import (CASCADE_STAGES, JAW_BLEND, JAW_MODEL, blend_jaw,  # noqa: E402
                                predict_cascade, predict_jaw)
from fkd_utils.preprocess import face_boxes, read_samples  # noqa: E402

WEIGHTS = (0.0, 0.25, 0.4, 0.5, 0.6, 0.75, 1.0)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=None, help="weights folder (default: the shipped one)")
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--stages", type=int, nargs="+", default=[2, 3])
    parser.add_argument("--blends", type=float, nargs="+", default=list(WEIGHTS))
    args = parser.parse_args(argv)
    landmarker = Landmarker(args.weights, "cascade", stages=len(CASCADE_STAGES), runtime="keras")
    if JAW_MODEL not in landmarker.models:
        parser.error(f"{landmarker.weights_dir}: has no {JAW_MODEL} to blend")
    _, samples = samples_of(args.data_dir, "tenth")
    images, gt = read_samples(samples)
    boxes, _ = face_boxes(samples, args.data_dir, "bb_detector")
    faces, face_images, _ = face_crops(images, [[b] for b in boxes], landmarker.manifest)
    without = {n: m for n, m in landmarker.models.items() if n != JAW_MODEL}
    bias = landmarker.x_bias
    print(f"tenth ({len(samples)} faces), 300-W boxes, Keras, mirror biases, no shape correction;"
          f" shipped weight {JAW_BLEND}")
    print("stages  jaw weight  NME 68 %  jaw NME %")
    for stages in args.stages:
        plain = predict_cascade(without, faces, face_images, stages=stages, x_bias=bias)[0]
        jaw = predict_jaw(landmarker.models[JAW_MODEL], face_images, plain, bias.get(JAW_MODEL))
        for weight in args.blends:
            errors = point_errors(blend_jaw(plain, jaw, weight), gt)
            print(f"{stages:6d}  {weight:10.2f}  {100 * errors.mean():8.3f}  "
                  f"{100 * errors[:, list(JAW)].mean():9.3f}")


if __name__ == "__main__":
    main()
