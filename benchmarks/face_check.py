"""What the face check (fkd_utils/face_check.py) turns down: every detection of fkd predict's
detector on a set's photos, its stage spread and whether it is the annotated face.

    python benchmarks/face_check.py --data-dir ../shared/data/300w --sets tenth validation

Prints, per set: detections, how many failed the check, and how many of those were the
annotated face (IoU >= 0.3 with the 300-W box); photos left without a face by the check; the
spreads of the annotated faces cropped from their 300-W boxes (the true faces' spreads), and
of boxes that hold no face (``face_check.probe_boxes``: the face box's top-left quarter, and a
box half its width in the photo's corner away from the face). Detections are re-framed as
``fkd predict`` re-frames them (``Landmarker.reframed``) and matched by the detector's box
(``detected_box``); the probes are landmarked as boxes given, so they are not re-framed.
"""
import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fkd_utils.compare import samples_of  # noqa: E402
from fkd_utils.data import split_samples  # noqa: E402
from fkd_utils.detect import box_iou  # noqa: E402
from fkd_utils.face_check import probe_boxes  # noqa: E402
from fkd_utils.io import read_image  # noqa: E402
from fkd_utils.landmarker import Landmarker  # noqa: E402
from fkd_utils.preprocess import face_boxes  # noqa: E402

MATCH_IOU = 0.3


def measure(landmarker, data_dir, which, limit=None):
    split, samples = samples_of(data_dir, which, limit)
    samples = split_samples(data_dir, split) if samples is None else samples
    boxes, _ = face_boxes(samples, data_dir, "bb_detector")
    counts = {"photos": len(samples), "detections": 0, "rejected": 0, "rejected_annotated": 0,
              "photos_left_without_face": 0}
    spreads, rejected = {name: [] for name in PROBES}, []
    for sample, box in zip(samples, boxes):
        image = read_image(sample.image_path)
        (faces, turned_down), = landmarker.checked_faces([image], [landmarker.detect(image)])
        probes = probe_boxes(box, image.shape)
        (landmarked, _), = landmarker.checked_faces([image], [np.stack(list(probes.values()))],
                                                    check=False)
        for name, face in zip(probes, landmarked):
            spreads[name].append(np.nan if face["stage_spread"] is None else face["stage_spread"])
        counts["detections"] += len(faces) + len(turned_down)
        counts["rejected"] += len(turned_down)
        hits = [r for r in turned_down
                if box_iou(np.array(r.get("detected_box", r["box"])), box) >= MATCH_IOU]
        counts["rejected_annotated"] += len(hits)
        counts["photos_left_without_face"] += bool(turned_down and not faces)
        rejected += [(sample.id, r["stage_spread"]) for r in turned_down]
    return counts, rejected, {name: np.array(v, float) for name, v in spreads.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=None, help="weights folder (default: the shipped one)")
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--sets", nargs="+", default=["tenth"], choices=("tenth", "validation"))
    parser.add_argument("--stages", type=int, default=None)
    parser.add_argument("--limit", type=int, default=None, help="only the first N photos of a set")
    args = parser.parse_args(argv)
    landmarker = Landmarker(args.weights, "cascade", stages=args.stages)
    print(f"stages {landmarker.stages}, limit {landmarker.max_stage_spread}")
    for which in args.sets:
        counts, rejected, spreads = measure(landmarker, args.data_dir, which, args.limit)
        print(which, counts)
        print(f"  rejected (photo, spread): {rejected}")
        for name, values in spreads.items():
            values = values[np.isfinite(values)]  # (none where one stage ran)
            if not len(values):
                print(f"  {PROBES[name]}: no spread measured")
                continue
            low, median, high, top = np.quantile(values, [0.01, 0.5, 0.99, 1.0])
            limit = landmarker.max_stage_spread
            above = ("no limit" if limit is None else
                     f"above the limit: {int(np.sum(values > limit))} of {len(values)}")
            print(f"  {PROBES[name]}: spread median {median:.3f}, 1st-99th percentile "
                  f"{low:.3f}-{high:.3f}, largest {top:.3f}; {above}")


PROBES = {"the face": "annotated faces from their 300-W boxes",
          "corner": "half-face boxes in a corner, away from the face",
          "quarter of the face": "the top-left quarter of the 300-W box"}


if __name__ == "__main__":
    main()
