"""What HOG's filling pass (``detect.FILLING_CHECK``: a search of a small bordered copy for a
face that fills the photo) changes: how many of a split's 300-W faces fkd's detector finds, the
CPU time a photo, and, with ``--nme``, ``fkd predict``'s NME on the training tenth, with the
pass and without it.

    python benchmarks/filling_faces.py --data-dir ../shared/data/300w [--split train] [--nme]

A face counts as found when the detection ``fkd predict`` would score for it (the best overlap
with the 300-W box, calibrated as the shipped weights say) overlaps that box by IoU >= 0.4;
the others were missed, or another part of the photo was taken for the face. Time: one photo at
a time, this process's CPU time (the detector runs on one core).
"""
import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fkd_utils import quiet  # noqa: E402,F401  (silences TensorFlow's start-up lines)
from fkd_utils.compare import samples_of  # noqa: E402
from fkd_utils.data import load_boxes, split_samples  # noqa: E402
from fkd_utils.detect import box_iou, pick_face  # noqa: E402
from fkd_utils.io import read_image  # noqa: E402
from fkd_utils.landmarker import Landmarker, predict_split_from_files  # noqa: E402
from fkd_utils.metrics import failure_rate, nme  # noqa: E402

FOUND_IOU = 0.4


def detection_counts(detector, samples, boxes):
    """``(found, missed ids, CPU ms a photo, photos the filling pass searched)`` of
    ``detector`` on ``samples``."""
    images = [read_image(s.image_path) for s in samples]
    detector(images[0])  # untimed: the first call builds dlib's detector
    searched = []
    filling_pass = detector._filling_pass
    detector._filling_pass = lambda image: searched.append(1) or filling_pass(image)
    try:
        start = time.process_time()
        detections = [detector(image) for image in images]
        cpu_ms = 1000 * (time.process_time() - start) / len(images)
    finally:
        del detector._filling_pass   # the class's method again
    missed = []
    for sample, found in zip(samples, detections):
        reference = boxes[sample.id]["bb_detector"]
        chosen = pick_face(found, reference)
        if chosen is None or box_iou(chosen, reference) < FOUND_IOU:
            missed.append(sample.id)
    return len(samples) - len(missed), missed, cpu_ms, len(searched)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--split", default="train", help="train, validation, or tenth")
    parser.add_argument("--min-face", type=float, default=None)
    parser.add_argument("--nme", action="store_true",
                        help="also fkd predict's NME (default setting) on the training tenth")
    args = parser.parse_args(argv)
    split, samples = samples_of(args.data_dir, args.split)
    samples = samples if samples is not None else split_samples(args.data_dir, split)
    boxes = load_boxes(args.data_dir)
    samples = [s for s in samples if s.id in boxes]
    landmarker = Landmarker(None, "cascade", min_face=args.min_face)
    detector = landmarker.detector
    print(f"{args.split}: {len(samples)} photos with a 300-W box; hog, min face "
          f"{detector.min_size:g}")
    missed_by = {}
    for filling in (False, True):
        detector.filling = filling
        found, missed_by[filling], cpu_ms, searched = detection_counts(detector, samples, boxes)
        line = (f"filling pass {'on ' if filling else 'off'}: found {found} "
                f"({100 * found / len(samples):.1f} %), {cpu_ms:.1f} CPU ms a photo"
                + (f" (the pass searched {searched} photos)" if filling else ""))
        if args.nme:
            tenth_split, tenth = samples_of(args.data_dir, "tenth")
            pred = predict_split_from_files(landmarker, args.data_dir, tenth_split, samples=tenth)
            errors = nme(pred.points, pred.gt)
            line += (f"; tenth NME {100 * errors.mean():.3f} %, FR@0.08 "
                     f"{100 * failure_rate(errors):.2f} %")
        print(line)
    for label, off, on in (("found only with the pass", False, True),
                           ("found only without it", True, False)):
        ids = sorted(set(missed_by[off]) - set(missed_by[on]))
        print(f"{label}:", " ".join(ids) if ids else "none")


if __name__ == "__main__":
    main()
