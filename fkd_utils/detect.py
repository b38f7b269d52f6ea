"""Offline face detection for ``fkd predict`` (introduced in notebook 08).

Three offline detectors, nothing downloaded: ``hog``, dlib's HOG + linear SVM frontal-face
detector (built into ``dlib-bin``; the default: it finds more of the faces than the cascades);
``haar``, OpenCV's frontal-face Haar cascade shipped as a file by ``opencv-python-headless``
(about 5x faster, misses more faces); ``lbp``, scikit-image's LBP cascade (a fallback).
Detected boxes are mapped to the convention of the 300-W detector boxes the models were trained
on (``bb_detector``: larger and lower than a Haar box) by a *calibration*: the mean relative
shift and scale between the two kinds of box, measured on training images
(:func:`calibrate`) and stored with the weights.

Boxes are ``[x_min, y_min, x_max, y_max]`` in 1-based pixels, like the 300-W box files.
"""
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Calibration:
    """Maps a detector box to a 300-W-style box: centre shift (fractions of the side) and scale."""
    dx: float = 0.0
    dy: float = 0.0
    scale: float = 1.0
    n: int = 0

    def apply(self, boxes):
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        centre = (boxes[:, :2] + boxes[:, 2:]) / 2
        size = boxes[:, 2:] - boxes[:, :2]
        centre = centre + size * np.array([self.dx, self.dy])
        half = size * self.scale / 2
        return np.concatenate([centre - half, centre + half], axis=1)

    def to_dict(self):
        return asdict(self)


def _gray_uint8(image):
    image = np.asarray(image)
    if image.ndim == 3:
        image = (image[..., :3] @ np.array([0.299, 0.587, 0.114])).round()
    return image.astype(np.uint8)


class FaceDetector:
    """``detector(image) -> boxes (K, 4)``, most confident (hog) or largest (cascades) first,
    calibrated when a calibration is given."""

    BACKENDS = ("hog", "haar", "lbp")

    def __init__(self, calibration=None, min_size=0.08, backend=None, max_side=360):
        self.backend = backend or default_backend()
        if self.backend not in self.BACKENDS:
            raise ValueError(f"unknown face detector {self.backend!r}; choose one of {self.BACKENDS}")
        self.calibration = calibration or Calibration()
        self.min_size = min_size
        self.max_side = max_side  # cascades run on a downscaled copy: their cost is the pyramid
        self._cascade = None

    def raw(self, image):
        """Uncalibrated detections, 1-based boxes, largest first.

        A fast pass on a copy downscaled to ``max_side``; when it finds nothing, a slower,
        more permissive pass at up to 1024 px (small or unusual faces)."""
        if self.backend == "hog":
            return self._hog(image)
        boxes = self._pass(image, self.max_side, 5)
        return boxes if len(boxes) else self._pass(image, 1024, 3)

    def _hog(self, image):
        """dlib's HOG detector on two scales (640 px upsampled once, and the full image), merged."""
        import dlib
        if self._cascade is None:
            self._cascade = dlib.get_frontal_face_detector()
        found, scores = [], []
        for max_side, upsample in ((640, 1), (None, 0)):
            small, factor = _downscale(np.asarray(image)[..., :3], max_side)
            rects, confidences, _ = self._cascade.run(np.ascontiguousarray(small), upsample, 0.0)
            for r, score in zip(rects, confidences):
                found.append(np.array([r.left() + 0.5, r.top() + 0.5, r.right() + 0.5,
                                       r.bottom() + 0.5]) / factor + 0.5)
                scores.append(score)
        return _merge(found, scores)

    def _pass(self, image, max_side, neighbours):
        gray, factor = _downscale(_gray_uint8(image), max_side)
        side = max(int(self.min_size * min(gray.shape)), 20)
        if self.backend == "haar":
            found = self._opencv(gray, side, neighbours)
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

    def _opencv(self, gray, side, neighbours=5):
        import cv2
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


def _downscale(image, max_side):
    """A copy no larger than ``max_side`` (None: unchanged) and the factor applied."""
    factor = 1.0 if max_side is None else min(1.0, max_side / max(image.shape[:2]))
    if factor == 1.0:
        return image, factor
    from skimage.transform import rescale
    axis = 2 if image.ndim == 3 else None
    small = rescale(image, factor, anti_aliasing=True, channel_axis=axis, preserve_range=True)
    return small.round().astype(np.uint8), factor


def _merge(boxes, scores, iou=0.4):
    """Non-maximum suppression: of overlapping boxes keep the best scored; best first."""
    boxes = [b for _, b in sorted(zip(scores, boxes), key=lambda pair: -pair[0])]
    kept = []
    for box in boxes:
        if all(box_iou(box, k) < iou for k in kept):
            kept.append(box)
    return np.array(kept).reshape(-1, 4)


def box_iou(a, b):
    """Intersection over union of two boxes."""
    lo, hi = np.maximum(a[:2], b[:2]), np.minimum(a[2:], b[2:])
    inter = np.prod(np.clip(hi - lo, 0, None))
    area = lambda x: np.prod(x[2:] - x[:2])
    return float(inter / (area(a) + area(b) - inter))


def calibrate(images, reference_boxes, detector=None, min_iou=0.3):
    """Fit the mean shift and scale that map detections onto reference boxes.

    Each image contributes its detection that overlaps its reference box best (IoU >= min_iou).
    """
    detector = detector or FaceDetector()
    shifts, scales = [], []
    for image, ref in zip(images, np.asarray(reference_boxes, np.float64)):
        found = detector.raw(image)
        if not len(found):
            continue
        ious = [box_iou(f, ref) for f in found]
        best = found[int(np.argmax(ious))]
        if max(ious) < min_iou:
            continue
        size = best[2:] - best[:2]
        shifts.append(((ref[:2] + ref[2:]) / 2 - (best[:2] + best[2:]) / 2) / size)
        scales.append(np.mean((ref[2:] - ref[:2]) / size))
    if not shifts:
        raise ValueError("no detection matched a reference box: cannot calibrate")
    dx, dy = np.median(shifts, axis=0)
    return Calibration(float(dx), float(dy), float(np.median(scales)), len(shifts))


def pick_face(found, reference):
    """The detection that overlaps the reference box best (None if none overlaps)."""
    if not len(found):
        return None
    ious = [box_iou(f, reference) for f in found]
    return found[int(np.argmax(ious))] if max(ious) > 0 else None
