"""Telling faces from false detections by how much our cascade's stages disagree (notebook 08).

Each stage of the cascade after the first reads a crop placed around the stages before it.
On a face, the stages agree: on the training faces with the shipped weights, the mean distance
between stage 1's points and stage 2's is 2 % of the outer-eye-corner distance (99 % of faces
under about 5 %). On a box that holds no face, or only part of one, each stage finds a
different "face": on the selection tenth (``benchmarks/face_check.py``), boxes in a corner of
the photo spread 19 % (median; 162 of 164 above the shipped limit, 10.3 %) and the face box's
top-left quarter 20 % (174 of 193 above it). ``fkd predict`` drops detections whose spread is
above a limit measured when the weights were exported (:func:`spread_limit`, stored in the
weights manifest), so a false detection gives no landmarks rather than wrong ones.
"""
import numpy as np

from .detect import box_iou
from .metrics import interocular

#: the limit is SPREAD_FACTOR times the SPREAD_QUANTILE quantile of the training faces' spreads
SPREAD_QUANTILE = 0.99
SPREAD_FACTOR = 2.0


def stage_spread(shapes):
    """Per face (N,): the mean distance between the first and the last stage's points (a
    sequence of (N, 68, 2) arrays), over the last stage's outer-eye-corner distance. NaN when
    only one stage ran (nothing to compare); infinite when the last stage's shape is degenerate
    (non-finite points, or eye corners that coincide)."""
    first, last = np.asarray(shapes[0], np.float64), np.asarray(shapes[-1], np.float64)
    if len(shapes) < 2:
        return np.full(len(first), np.nan)
    norm = interocular(last)
    with np.errstate(divide="ignore", invalid="ignore"):
        spread = np.linalg.norm(first - last, axis=-1).mean(axis=1) / norm
    spread[~np.isfinite(spread) | ~(norm > 0)] = np.inf
    return spread


def spread_limit(spreads):
    """The face check's calibration from the spreads of true faces (see the module's note):
    ``{"max_stage_spread", "quantile", "n"}``."""
    spreads = np.asarray(spreads, np.float64)
    spreads = spreads[np.isfinite(spreads)]
    if not len(spreads):
        raise ValueError("no finite stage spread to calibrate the face check on")
    quantile = float(np.quantile(spreads, SPREAD_QUANTILE))
    return {"max_stage_spread": SPREAD_FACTOR * quantile, "quantile": quantile,
            "n": int(len(spreads))}


def is_face(spreads, limit):
    """Which detections pass the check (N,) bools: spread at most ``limit``. Without a limit
    (None: no calibration, or the check is off) or a spread (NaN: one stage ran) every
    detection passes."""
    spreads = np.asarray(spreads, np.float64)
    if limit is None:
        return np.ones(len(spreads), bool)
    return np.isnan(spreads) | (spreads <= limit)


def json_spread(spread):
    """A spread as a result JSON holds it: rounded, or None (null) where none was measured
    (one stage ran) or the shape was degenerate (infinite spread)."""
    return round(float(spread), 4) if np.isfinite(spread) else None


def rejection_reason(spread):
    """Why a detection failed the check, for its result JSON."""
    if np.isinf(spread):
        return "degenerate shape (non-finite points, or eye corners that coincide)"
    return "the stages disagree (stage spread above the limit)"


def probe_boxes(box, image_shape):
    """Boxes around a face's 1-based box to see the check at work: the face's own box, the
    box's top-left quarter, and a square half the box's width in the photo's corner
    farthest from the face (left out where it would overlap the face)."""
    box = np.asarray(box, np.float64)
    centre = (box[:2] + box[2:]) / 2
    probes = {"the face": box, "quarter of the face": np.r_[box[:2], centre]}
    half = (box[2] - box[0]) / 2
    height, width = image_shape[:2]
    x = 1.0 if centre[0] > width / 2 else width - half
    y = 1.0 if centre[1] > height / 2 else height - half
    corner = np.array([x, y, x + half, y + half])
    if box_iou(corner, box) == 0:
        probes["corner"] = corner
    return probes
