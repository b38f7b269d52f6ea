"""Offline face detection for ``fkd predict`` (introduced in notebook 08).

Three offline detectors, nothing downloaded: ``hog``, dlib's HOG + linear SVM frontal-face
detector (built into ``dlib-bin``; the default: it finds more of the faces than the cascades);
``haar``, OpenCV's frontal-face Haar cascade shipped as a file by ``opencv-python-headless``
(about twice as fast, misses more faces); ``lbp``, scikit-image's LBP cascade (a fallback).
Detected boxes are mapped to the convention of the 300-W detector boxes the models were trained
on (``bb_detector``: larger and lower than a Haar box) by a *calibration*: the mean relative
shift and scale between the two kinds of box, measured on training images
(:func:`calibrate`) and stored with the weights.

Boxes are ``[x_min, y_min, x_max, y_max]`` in 1-based pixels, like the 300-W box files.
"""
import threading
from dataclasses import asdict, dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Calibration:
    """Maps a detector box to a 300-W-style box: centre shift (fractions of the side) and scale."""
    dx: float = 0.0
    dy: float = 0.0
    scale: float = 1.0
    n: int = 0
    min_face: float | None = None  # the fast pass it was measured with (None: not recorded)

    def apply(self, boxes):
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        centre = (boxes[:, :2] + boxes[:, 2:]) / 2
        size = boxes[:, 2:] - boxes[:, :2]
        centre = centre + size * np.array([self.dx, self.dy])
        half = size * self.scale / 2
        return np.concatenate([centre - half, centre + half], axis=1)

    def to_dict(self):
        return asdict(self)


#: each backend's smallest search window, pixels: OpenCV's frontal-face and scikit-image's LBP
#: cascades are 24 x 24, dlib's HOG detector 80 x 80
WINDOW = {"hog": 80, "haar": 24, "lbp": 24}
#: each backend's smallest face in the fast pass, fraction of the photo's longer side. On 150
#: real training images (found = IoU > 0.3 with the 300-W box) 0.2 finds what 0.12 does (hog
#: 97.3 vs 96.7 %, haar 88.7 vs 88.0 %) in 40 % of the time (hog 14 vs 34 ms per image of
#: ~400 px, one core): HOG at 0.12 alone would cap ``fkd predict`` near 30 faces/s on 2 cores.
#: Those photos' faces all fill a third of the side or more, so they cannot show the cost:
#: a face of 12-20 % of the photo next to a bigger one is missed (``--min-face 0.12``); photos
#: where the fast pass finds nothing still get the slower search for small faces.
MIN_FACE = 0.2
#: HOG's fast pass cannot find a face that fills the photo (its window would reach past the
#: edges) and may read a mouth or an eye in it as a small face. When the searches find nothing
#: as wide as ``FILLING_CHECK`` of the photo's shorter side, a *filling pass* searches a
#: ``FILLING_SIDE`` px copy framed by a black border of ``FILLING_BORDER`` of that side
#: (:meth:`FaceDetector._filling_pass`). Chosen on the 2012 real training photos (found = IoU
#: >= 0.4 with the 300-W box, calibrated; ``benchmarks/filling_faces.py``): not found 64 -> 51,
#: the pass run on 62 photos, detection time within the machine's noise; the pass on every
#: photo instead: 50 not found, about 5 ms more a photo; a 128 px copy: 57, a 200 px one: 58.
#: On the training tenth fkd predict's default went from 3.403 to 3.269 % NME.
FILLING_CHECK = 0.3
FILLING_SIDE = 160
FILLING_BORDER = 0.15


def _gray_uint8(image):
    image = np.asarray(image)
    if image.ndim == 3:
        return cv2.cvtColor(np.ascontiguousarray(image[..., :3]).astype(np.uint8),
                            cv2.COLOR_RGB2GRAY)
    return image.astype(np.uint8)


def check_min_face(value):
    """The smallest face (``--min-face``, ``min_face``): a fraction of the photo's longer side
    in (0, 1]; anything else (0, negative, NaN, above 1) is refused, never replaced."""
    value = float(value)
    if not 0.0 < value <= 1.0:  # (NaN fails too)
        raise ValueError(f"--min-face (min_face) is a fraction of the photo's longer side in "
                         f"(0, 1], got {value:g}")
    return value


class FaceDetector:
    """``detector(image) -> boxes (K, 4)``, most confident (hog; a face only its filling pass
    found comes after those) or largest (cascades) first,
    calibrated when a calibration is given.

    Safe to call from several threads at once: each thread gets its own dlib / OpenCV
    detector (sharing one corrupts memory), so ``fkd predict`` detects photos in parallel."""

    BACKENDS = ("hog", "haar", "lbp")

    def __init__(self, calibration=None, min_size=None, backend=None, filling=True):
        self.backend = backend or default_backend()
        self.filling = filling  # hog: the pass for a face filling the photo (FILLING_CHECK)
        if self.backend not in self.BACKENDS:
            raise ValueError(f"unknown face detector {self.backend!r}; choose one of {self.BACKENDS}")
        self.calibration = calibration or Calibration()
        self.min_size = check_min_face(MIN_FACE if min_size is None else min_size)
        self._local = threading.local()

    @property
    def _cascade(self):
        return getattr(self._local, "cascade", None)

    @_cascade.setter
    def _cascade(self, value):
        self._local.cascade = value

    @property
    def working_side(self):
        """The fast pass runs on a copy whose longer side puts a face of ``min_size`` at the
        detector's smallest window: the search's cost is set by that ratio, not by the photo's
        pixel count (faces >= 20 % of the longer side: haar 120 px, hog 400 px)."""
        return int(round(WINDOW[self.backend] / self.min_size))

    def raw(self, image):
        """Uncalibrated detections, 1-based boxes, in the order the class says.

        A fast pass on a copy scaled to :attr:`working_side`; when it finds nothing, a slower
        search for smaller faces (cascades: at up to 1024 px; hog: 640 px upsampled twice, and
        the full image); hog: when they find no large face, a pass for a face filling the
        photo (:data:`FILLING_CHECK`)."""
        if self.backend == "hog":
            return self._hog(image)
        boxes = self._pass(image, self.working_side)
        return boxes if len(boxes) else self._pass(image, 1024)

    def _hog(self, image):
        import dlib
        if self._cascade is None:
            self._cascade = dlib.get_frontal_face_detector()
        image = np.asarray(image)[..., :3]
        found, scores = self._hog_passes(image, [(self.working_side, 0, True)])
        if not found:  # smaller faces, and full size
            found, scores = self._hog_passes(image, [(640, 1, False), (None, 0, False)])
        boxes = _merge(found, scores)
        widest = max((b[2] - b[0] for b in boxes), default=0.0)
        if self.filling and widest < FILLING_CHECK * min(image.shape[:2]):
            boxes = with_filling_faces(boxes, *self._filling_pass(image))
        return boxes

    def _filling_pass(self, image):
        """HOG on a small copy of the photo inside a black border (:data:`FILLING_CHECK`): a
        face that fills the photo is found only where the detector's window fits."""
        small, factor = _downscale(image, FILLING_SIDE, upscale=True)
        pad = int(round(FILLING_BORDER * FILLING_SIDE))
        framed = cv2.copyMakeBorder(np.ascontiguousarray(small), pad, pad, pad, pad,
                                    cv2.BORDER_CONSTANT, value=0)
        rects, scores, _ = self._cascade.run(framed, 0, 0.0)
        boxes = [(np.array([r.left(), r.top(), r.right(), r.bottom()]) + 0.5 - pad) / factor + 0.5
                 for r in rects]
        return boxes, list(scores)

    def _hog_passes(self, image, passes):
        found, scores = [], []
        for side, upsample, upscale in passes:
            small, factor = _downscale(image, side, upscale)
            rects, confidences, _ = self._cascade.run(np.ascontiguousarray(small), upsample, 0.0)
            for r, score in zip(rects, confidences):
                found.append(np.array([r.left() + 0.5, r.top() + 0.5, r.right() + 0.5,
                                       r.bottom() + 0.5]) / factor + 0.5)
                scores.append(score)
        return found, scores

    def _pass(self, image, max_side):
        gray, factor = _downscale(_gray_uint8(image), max_side)
        side = WINDOW[self.backend]
        if self.backend == "haar":
            found = self._opencv(gray, side)
        else:
            found = self._skimage(gray, side)
        # (x, y, w, h) on the downscaled copy -> 1-based box on the original
        boxes = np.array([[(x + 0.5) / factor + 0.5, (y + 0.5) / factor + 0.5,
                           (x + w - 0.5) / factor + 0.5, (y + h - 0.5) / factor + 0.5]
                          for x, y, w, h in found], np.float64)
        if not len(boxes):
            return np.zeros((0, 4))
        return boxes[np.argsort(-(boxes[:, 2] - boxes[:, 0]))]

    def __call__(self, image):
        boxes = self.raw(image)
        return self.calibration.apply(boxes) if len(boxes) else boxes

    def _opencv(self, gray, side, neighbours=3):
        if self._cascade is None:
            self._cascade = cv2.CascadeClassifier(
                cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
        return self._cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=neighbours,
                                              minSize=(side, side))

    def _skimage(self, gray, side):
        from skimage import data
        from skimage.feature import Cascade
        if self._cascade is None:
            self._cascade = Cascade(data.lbp_frontal_face_cascade_filename())
        found = self._cascade.detect_multi_scale(gray, scale_factor=1.15, step_ratio=1,
                                                 min_size=(side, side), max_size=gray.shape)
        return [(d["c"], d["r"], d["width"], d["height"]) for d in found]


def default_backend():
    """``hog`` when dlib is installed, else ``haar`` with OpenCV, else scikit-image's ``lbp``."""
    for module, backend in (("dlib", "hog"), ("cv2", "haar")):
        try:
            __import__(module)
            return backend
        except ImportError:
            pass
    return "lbp"


def _downscale(image, max_side, upscale=False):
    """A copy no larger than ``max_side`` (None: unchanged; ``upscale``: exactly that large)
    and the factor applied."""
    factor = 1.0 if max_side is None else max_side / max(image.shape[:2])
    factor = factor if upscale else min(1.0, factor)
    if factor == 1.0:
        return image, factor
    height, width = image.shape[:2]
    size = (max(int(round(width * factor)), 1), max(int(round(height * factor)), 1))
    method = cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR  # area averaging when shrinking
    return cv2.resize(np.ascontiguousarray(image), size, interpolation=method), factor


def _merge(boxes, scores, iou=0.4):
    """Non-maximum suppression: of overlapping boxes keep the best scored; best first."""
    boxes = [b for _, b in sorted(zip(scores, boxes), key=lambda pair: -pair[0])]
    kept = []
    for box in boxes:
        if all(box_iou(box, k) < iou for k in kept):
            kept.append(box)
    return np.array(kept).reshape(-1, 4)


def with_filling_faces(boxes, big, scores, iou=0.4, inside=0.8):
    """``boxes`` (the searches before, most confident first) with the filling pass's ``big``
    boxes (and their ``scores``) after them: those overlapping none of ``boxes`` (IoU <
    ``iou``) and holding at most one of them. A box of ``boxes`` lying inside (``inside`` of
    its area) a new box at least twice its size goes: a face inside a face is a mouth or an
    eye read as one (the fast pass's mistake on such photos); a new box around two or more
    faces is not a face (a group photo's)."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    big = np.asarray(big, np.float64).reshape(-1, 4)
    fresh = [(b, s) for b, s in zip(big, scores)
             if all(box_iou(b, k) < iou for k in boxes)
             and sum(_lies_inside(k, b, inside) for k in boxes) < 2]
    new = _merge([b for b, _ in fresh], [s for _, s in fresh])
    kept = [b for b in boxes if not any(_lies_inside(b, n, inside) for n in new)]
    return np.array(kept + list(new)).reshape(-1, 4)


def _lies_inside(small, big, share):
    """Whether ``share`` of box ``small``'s area lies in box ``big``, at least twice as large."""
    return (_intersection(small, big) >= share * _area(small)
            and _area(big) >= 2 * _area(small))


def box_iou(a, b):
    """Intersection over union of two boxes."""
    inter = _intersection(a, b)
    return float(inter / (_area(a) + _area(b) - inter))


def _intersection(a, b):
    lo, hi = np.maximum(a[:2], b[:2]), np.minimum(a[2:], b[2:])
    return np.prod(np.clip(hi - lo, 0, None))


def _area(box):
    return np.prod(box[2:] - box[:2])


def calibrate(images, reference_boxes, detector=None, min_iou=0.3):
    """Fit the mean shift and scale that map detections onto reference boxes.

    Each image contributes its detection that overlaps its reference box best (IoU >= min_iou).
    """
    detector = detector or FaceDetector()
    found, references = [], []
    for image, ref in zip(images, np.asarray(reference_boxes, np.float64)):
        boxes = detector.raw(image)
        if not len(boxes):
            continue
        ious = [box_iou(f, ref) for f in boxes]
        if max(ious) >= min_iou:
            found.append(boxes[int(np.argmax(ious))])
            references.append(ref)
    if not found:
        raise ValueError("no detection matched a reference box: cannot calibrate")
    return fit_calibration(found, references, detector.min_size)


def fit_calibration(found, references, min_face=None):
    """The :class:`Calibration` (median centre shift, in fractions of the found box's sides,
    and median scale) that maps ``found`` boxes (N, 4) onto their ``references`` (N, 4). Pairs
    where a box has no size or a number is not finite are left out; none left is a
    ValueError."""
    found, references = np.asarray(found, np.float64), np.asarray(references, np.float64)
    size = found[:, 2:] - found[:, :2]
    with np.errstate(divide="ignore", invalid="ignore"):
        shifts = ((references[:, :2] + references[:, 2:]) / 2
                  - (found[:, :2] + found[:, 2:]) / 2) / size
        scales = np.mean((references[:, 2:] - references[:, :2]) / size, axis=1)
    usable = (size > 0).all(axis=1) & np.isfinite(shifts).all(axis=1) & np.isfinite(scales)
    if not usable.any():
        raise ValueError("no pair of boxes with a size and finite corners to calibrate on")
    dx, dy = np.median(shifts[usable], axis=0)
    return Calibration(float(dx), float(dy), float(np.median(scales[usable])),
                       int(usable.sum()), min_face)


def nearest_calibration(stored, min_face):
    """Of a backend's stored calibrations (a dict, or a list of dicts, one per ``min_face``
    measured), the one measured nearest ``min_face``: HOG's boxes shift with the scale of
    the search (at 0.2 they are 3 % larger than at 0.12, relative to the face)."""
    stored = [stored] if isinstance(stored, dict) else list(stored or [])
    if not stored:
        return None
    best = min(stored, key=lambda c: abs(np.log((c.get("min_face") or min_face) / min_face)))
    return Calibration(**best)


def pick_face(found, reference):
    """The detection that overlaps the reference box best (None if none overlaps)."""
    if not len(found):
        return None
    ious = [box_iou(f, reference) for f in found]
    return found[int(np.argmax(ious))] if max(ious) > 0 else None
