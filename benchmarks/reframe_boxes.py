"""What re-framing (``fkd predict --reframe``) does to faces read from the 300-W detector boxes
themselves, on the training tenth: each box taken as a detection and re-framed 0, 1 and 2
times before the cascade reads it (shipped weights unless ``--weights``; int8 where the folder
has it).

    python benchmarks/reframe_boxes.py --data-dir ../shared/data/300w [--stages 2 3]

The 300-W boxes are the ones the models learned from, so this is where re-framing has the
least to gain: ``fkd predict`` re-frames only the detector's boxes and reads boxes a caller
gives as they are.
"""
import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fkd_utils import quiet  # noqa: E402,F401  (silences TensorFlow's start-up lines)
from fkd_utils.compare import samples_of  # noqa: E402
from fkd_utils.landmarker import Landmarker  # noqa: E402
from fkd_utils.metrics import nme  # noqa: E402
from fkd_utils.preprocess import face_boxes, read_samples  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=None, help="weights folder (default: the shipped one)")
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--stages", type=int, nargs="+", default=[2, 3])
    parser.add_argument("--reframe", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args(argv)
    _, samples = samples_of(args.data_dir, "tenth")
    images, truth = read_samples(samples)
    boxes, _ = face_boxes(samples, args.data_dir, "bb_detector")
    print(f"tenth ({len(samples)} faces), the 300-W boxes taken as detections")
    print("stages  reframe  runtime  NME 68 %")
    for stages in args.stages:
        for reframe in args.reframe:
            landmarker = Landmarker(args.weights, "cascade", stages=stages, reframe=reframe,
                                    face_check=False)
            placed = landmarker.reframed(images, [b[None] for b in boxes])
            points = np.concatenate(landmarker.landmarks_many(images, placed))
            print(f"{stages:6d}  {reframe:7d}  {landmarker.runtime:7s}  "
                  f"{100 * nme(points, truth).mean():8.3f}")


if __name__ == "__main__":
    main()
