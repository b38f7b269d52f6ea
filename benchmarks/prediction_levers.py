"""What else the shipped models could do at prediction time, and what it would buy: on the
training tenth, end to end with fkd's own detector, each face read from the box ``fkd predict``
placed (re-framed) in the most accurate setting (``--stages 3 --flip --reframe 2``, Keras).

    python benchmarks/prediction_levers.py --data-dir ../shared/data/300w
                                           [--levers jitter flip approach1 regions jaw]

- ``jitter``: the face also read from shifted and scaled boxes, the reads averaged;
- ``flip``: every stage also reads the mirrored crop, the two reads averaged and moved by the
  averaged read's own sideways bias (:mod:`fkd_utils.mirror_bias`), measured like the shipped
  biases on every ``--every``-th fit face;
- ``approach1``: the paper's end-to-end ResNet (its read averaged with the mirrored one's)
  blended into the jaw or into all 68 points;
- ``regions``: the paper's region ResNets, placed on the cascade's points, blended into the
  inner points;
- ``jaw``: the stage weights and the jaw ResNet's weight chosen on the jaw alone (a grid),
  before the shape correction.

Faces the detector misses are left out (the same faces for every row), so the rows compare with
each other, not with ``benchmarks/compare_weights.py``'s. Measured 2026-12-01 (shipped
weights, 190 of 193 faces, 2 CPU cores, about 5 min): as placed 3.184 %; nine boxes averaged
3.177 %; stages also read mirrored 3.180 %; approach 1 (7.2 % alone) on the jaw at 0.1
3.184 %, worse above and on all points; the paper's regions at 0.1 3.192 %, worse above; the
weights chosen on the jaw take the jaw from 6.026 to 6.007 %. None is used by ``fkd predict``: the cascade already reads a face alike from
nearby boxes and from its mirror image, and the other models err where it does.
"""
import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fkd_utils import quiet  # noqa: E402,F401  (silences TensorFlow's start-up lines)
from fkd_utils import shape_correction  # noqa: E402
from fkd_utils.compare import samples_of  # noqa: E402
from fkd_utils.detect import Calibration, pick_face  # noqa: E402
from fkd_utils.io import read_image, read_pts  # noqa: E402
from fkd_utils.landmarker import (Landmarker, _fit_samples, face_crops,  # noqa: E402
                                  training_face_chunks)
from fkd_utils.markup import JAW, REGIONS  # noqa: E402
from fkd_utils.metrics import nme, point_errors  # noqa: E402
from fkd_utils.mirror_bias import x_bias  # noqa: E402
from fkd_utils.pipeline import (CASCADE_STAGES, JAW_BLEND, JAW_MODEL, STAGE_WEIGHTS,  # noqa: E402
                                pixels_to_pts, predict_cascade, predict_faces, predict_jaw,
                                refine_with_regions, region_squares)
from fkd_utils.preprocess import face_boxes  # noqa: E402

#: (shift right, shift down, scale), shifts in box sides (a detector calibration's terms,
#: :class:`fkd_utils.detect.Calibration`); the first is the box as placed
JITTERS = ((0.0, 0.0, 1.0), (0.0, 0.0, 0.95), (0.0, 0.0, 1.05), (0.03, 0.0, 1.0),
           (-0.03, 0.0, 1.0), (0.0, 0.03, 1.0), (0.0, -0.03, 1.0), (0.0, 0.0, 0.9),
           (0.0, 0.0, 1.1))
#: which reads each averaged row takes (indices into JITTERS)
AVERAGES = {"as placed, 5 % scaled": (0, 1, 2), "as placed, 3 % shifted": (0, 3, 4, 5, 6),
            "all nine": tuple(range(len(JITTERS)))}
BLENDS = (0.1, 0.2, 0.3)
INNER = [k for k in range(68) if k not in JAW]
LEVERS = ("jitter", "flip", "approach1", "regions", "jaw")


def placed_faces(landmarker, samples, data_dir):
    """``(images, boxes (N, 4), points (N, 68, 2), truth (N, 68, 2))`` of the faces the
    landmarker finds (the detection overlapping the 300-W box best), points and truth 0-based
    pixels; photos where it finds none are left out."""
    references, _ = face_boxes(samples, data_dir, "bb_detector")
    images, boxes, points, truth = [], [], [], []
    for sample, reference in zip(samples, references):
        image = read_image(sample.image_path)
        faces = landmarker(image)
        chosen = pick_face(np.array([f["box"] for f in faces]).reshape(-1, 4), reference)
        if chosen is not None:
            images.append(image)
            boxes.append(chosen)
            points.append(next(f for f in faces if f["box"] == chosen.tolist())["points"])
            truth.append(read_pts(sample.pts_path) - 1.0)   # 1-based .pts -> 0-based pixels
    return images, np.array(boxes), np.array(points), np.array(truth)


def score(points, truth, indices=None):
    """NME % over all points (or over ``indices``)."""
    errors = point_errors(points, truth)
    return 100 * (errors.mean() if indices is None else errors[:, list(indices)].mean())


def jitter_rows(landmarker, images, boxes, points, truth):
    reads = [points] + [np.concatenate([landmarker.landmarks(im, Calibration(*j).apply(b))
                                        for im, b in zip(images, boxes)]) for j in JITTERS[1:]]
    for jitter, read in zip(JITTERS, reads):
        print(f"box moved {jitter[0]:+.2f} / {jitter[1]:+.2f}, scaled {jitter[2]:.2f}: "
              f"NME {score(read, truth):.3f} %")
    for name, which in AVERAGES.items():
        average = np.mean([reads[k] for k in which], axis=0)
        print(f"averaged, {name} ({len(which)} reads): NME {score(average, truth):.3f} %")


def averaged_read_biases(landmarker, data_dir, every):
    """Each stage's sideways bias when it also reads the mirrored crop, on fit faces."""
    stages = {n: landmarker.models[n] for n in CASCADE_STAGES[:landmarker.stages]}
    truth, shapes = [], []
    for gt, faces, face_images in training_face_chunks(_fit_samples(data_dir, every), data_dir,
                                                       landmarker.manifest):
        truth.append(gt)
        shapes.append(predict_cascade(stages, faces, face_images, flip_average=True)[1])
    truth = np.concatenate(truth)
    return {name: x_bias(np.concatenate([s[k] for s in shapes]), truth)
            for k, name in enumerate(stages)}


def cascade(landmarker, faces, face_images, **kwargs):
    """The cascade's points and stage shapes as the landmarker runs it, corrected."""
    kwargs = {"stages": landmarker.stages, "x_bias": landmarker.x_bias,
              "flip_regions": landmarker.flip, **kwargs}
    points, shapes = predict_cascade(landmarker.models, faces, face_images, **kwargs)
    return shape_correction.corrected(points, landmarker.correction), shapes


def flip_row(landmarker, faces, face_images, truth, data_dir, every):
    biases = averaged_read_biases(landmarker, data_dir, every)
    points, _ = cascade(landmarker, faces, face_images, flip_average=True,
                        x_bias={**landmarker.x_bias, **biases})
    print(f"stages also read mirrored (their averaged reads' biases "
          f"{', '.join(f'{b:.2f}' for b in biases.values())} px): NME {score(points, truth):.3f} %")


def approach1_rows(paper, faces, points, truth):
    first = predict_faces(paper.models["end_to_end"], faces, flip_average=True)
    print(f"approach 1 alone: NME {score(first, truth):.3f} %")
    for weight in BLENDS:
        on_jaw = points.copy()
        on_jaw[:, list(JAW)] = (1 - weight) * points[:, list(JAW)] + weight * first[:, list(JAW)]
        print(f"approach 1 at {weight} on the jaw: NME {score(on_jaw, truth):.3f} %, on all "
              f"points {score((1 - weight) * points + weight * first, truth):.3f} %")


def regions_rows(paper, face_images, points, truth):
    regions = {r: paper.models[f"region_{r}"] for r in REGIONS}
    read, _ = refine_with_regions(points, face_images, region_squares(points), regions,
                                  paper.manifest["region_size"])
    for weight in BLENDS:
        blended = points.copy()
        blended[:, INNER] = (1 - weight) * points[:, INNER] + weight * read[:, INNER]
        print(f"the paper's regions at {weight} on the inner points: "
              f"NME {score(blended, truth):.3f} %")


def jaw_row(landmarker, faces, face_images, truth):
    result, shapes = predict_cascade(landmarker.models, faces, face_images, stages=3,
                                     x_bias=landmarker.x_bias, flip_regions=landmarker.flip)
    jaw_read = predict_jaw(landmarker.models[JAW_MODEL], face_images, result,
                           landmarker.x_bias.get(JAW_MODEL))
    stages = np.array(shapes)[:, :, list(JAW)]

    def jaw_nme(weights, jaw_weight):
        blend = np.tensordot(weights, stages, axes=1)
        points = truth.copy()   # only the jaw is scored
        points[:, list(JAW)] = (1 - jaw_weight) * blend + jaw_weight * jaw_read
        return score(points, truth, JAW)

    tenths = [k / 10 for k in range(11)]
    grid = [((a, b, round(1 - a - b, 1)), w) for a in tenths for b in tenths if a + b <= 1
            for w in (0, 0.15, 0.25, 0.35, 0.5)]
    best = min(grid, key=lambda choice: jaw_nme(*choice))
    print(f"jaw, stage weights {STAGE_WEIGHTS[3]} and the jaw ResNet at {JAW_BLEND}: "
          f"{jaw_nme(STAGE_WEIGHTS[3], JAW_BLEND):.3f} %; best on the jaw, {best[0]} and "
          f"{best[1]}: {jaw_nme(*best):.3f} % (before the shape correction)")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=None, help="weights folder (default: the shipped one)")
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--levers", nargs="+", choices=LEVERS, default=list(LEVERS))
    parser.add_argument("--every", type=int, default=4,
                        help="flip: the fit faces the averaged reads' biases are measured on")
    args = parser.parse_args(argv)
    landmarker = Landmarker(args.weights, "cascade", stages=3, flip=True, reframe=2,
                            runtime="keras")
    _, samples = samples_of(args.data_dir, "tenth")
    images, boxes, points, truth = placed_faces(landmarker, samples, args.data_dir)
    faces, face_images, _ = face_crops(images, boxes[:, None], landmarker.manifest)
    print(f"tenth: {len(truth)} of {len(samples)} faces found; --stages 3 --flip --reframe 2, "
          f"keras: NME {score(points, truth):.3f} % as placed")
    if "jitter" in args.levers:
        jitter_rows(landmarker, images, boxes, points, truth)
    if "flip" in args.levers:
        flip_row(landmarker, faces, face_images, truth, args.data_dir, args.every)
    if {"approach1", "regions"} & set(args.levers):
        paper = Landmarker(args.weights, "region", runtime="keras")
        if "approach1" in args.levers:
            approach1_rows(paper, faces, points, truth)
        if "regions" in args.levers:
            regions_rows(paper, face_images, points, truth)
    if "jaw" in args.levers:
        jaw_row(landmarker, faces, face_images, truth)


if __name__ == "__main__":
    main()
