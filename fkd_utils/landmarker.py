"""Run trained models on any photo: ``fkd_utils.predict(image)`` and ``fkd predict``
(introduced in notebook 08).

Weights folders (exported models, checksums, manifests) are read and written by
:mod:`fkd_utils.weights_io`.
"""
import json
import os
from pathlib import Path

import numpy as np

from . import paths
from .crop import face_crop
from .detect import (MIN_FACE, Calibration, FaceDetector, box_iou, check_min_face,
                     nearest_calibration)
from .face_check import is_face, json_spread, rejection_reason, spread_limit, stage_spread
from .formats import has_int8, load_runtime_models
from .io import DataError, read_photo  # noqa: F401 - read_photo: part of this module's API
from .markup import JAW, REGIONS
from .mirror_bias import (MANIFEST_KEY as MIRROR_BIAS_KEY, MAX_NME, is_mirrored, mirrored,
                          shift_x, x_bias)
from . import shape_correction
from .pipeline import (APPROACH_MODELS, CASCADE_REGIONS, JAW_MODEL, PREDICT_STAGES,
                       cascade_models, predict_boxes, predict_cascade, predict_faces,
                       refine_with_regions, region_squares)
from .weights_io import (RESEARCH_NOTE, export_model, import_model, read_weights_manifest, sha256,
                         shipped_weights_dir)

#: ``fkd predict --runtime``'s default: ``int8`` where the weights folder has int8 models for
#: every model that runs (the shipped one does, for the default stages), else ``keras``
DEFAULT_RUNTIME = "auto"
#: approach names accepted on the command line -> pipeline approach
APPROACH_ALIASES = {"end-to-end": "end_to_end", "end_to_end": "end_to_end", "region": "region",
                    "box": "box", "cascade": "cascade"}
#: how many times the cascade's stage 1 reads a detected face again from a box placed around
#: its own points before the cascade runs (``fkd predict --reframe``; 0: the detector's box).
#: The detector's boxes lie around faces less consistently than the 300-W boxes the models
#: learned from; a box placed from stage 1's points, as the 300-W boxes lie around the true
#: points, starts the cascade better. On the training tenth, own detector, shipped weights
#: (``compare.CHANGES_RUNS``, its EYES run and the next, before the detector's filling pass):
#: 2 stages (int8) 3.447 -> 3.403 % with one pass, 3.392 % with two; 3 stages with --flip
#: 3.392 -> 3.363 / 3.347 %. From the 300-W boxes
#: themselves it costs a little (``benchmarks/reframe_boxes.py``), so boxes a caller gives
#: are read as they are. One pass is one more stage-1 pass a face (int8, batched: 2.6 CPU ms,
#: 55.1 -> 50.8 faces/s), so the default makes one.
DEFAULT_REFRAME = 1
#: the most passes ``reframe`` takes (a cap on a number that costs a stage-1 pass each; two
#: were measured, and gained less than the first)
MAX_REFRAME = 4
#: the manifest's key for the box a face's points give (see :func:`reframe_calibration`)
REFRAME_KEY = "reframe_calibration"
#: two re-framed detections overlapping more than this are one face (the one whose stages
#: agree better is kept)
SAME_FACE_IOU = 0.5


def checked_reframe(reframe):
    """``reframe`` as a whole number of passes (None: the folder's default; False: 0); anything
    else is a ValueError naming the option."""
    if reframe is None:
        return None
    if reframe is False:
        return 0
    if (isinstance(reframe, bool) or not isinstance(reframe, (int, np.integer))
            or not 0 <= reframe <= MAX_REFRAME):
        raise ValueError(f"reframe (--reframe) must be a whole number from 0 to {MAX_REFRAME}, "
                         f"got {reframe!r}")
    return int(reframe)


class Landmarker:
    """Face detector + trained models: 68 points on every face of a photo.

    ``approach``: ``cascade`` (ours, the default), ``end-to-end``, ``region`` or ``box``;
    ``stages``: how many of the cascade's stages to run (None: ``pipeline.PREDICT_STAGES``, the
    fast default; 3: all, the most accurate); ``runtime``: ``keras``, ``onnx`` (ONNX Runtime
    on the CPU, float32; see :mod:`fkd_utils.formats`), ``int8`` (ONNX Runtime, the folder's
    8-bit models; see :mod:`fkd_utils.quantize`) or ``auto`` (int8 where the folder has them);
    ``flip``: the cascade's region ResNets also read every region mirrored (a mirrored right
    eye by the left eye's ResNet) and average the two reads (``fkd predict --flip``: more
    accurate, four more region passes a face); ``reframe``: how many times stage 1 reads each
    detected face again from a box placed around its own points (``fkd predict --reframe``;
    None: :data:`DEFAULT_REFRAME` where the folder is calibrated for it, else 0).
    """

    def __init__(self, weights_dir=None, approach="cascade", detector=None, min_face=None,
                 stages=None, runtime=DEFAULT_RUNTIME, face_check=True, flip=False,
                 reframe=None):
        self.weights_dir = Path(weights_dir or shipped_weights_dir())
        self.manifest = read_weights_manifest(self.weights_dir)
        if approach not in APPROACH_ALIASES:
            raise ValueError(f"unknown approach {approach!r}; choose one of "
                             f"{sorted(set(APPROACH_ALIASES) - {'end_to_end'})}")
        self.approach = APPROACH_ALIASES[approach]
        reframe = checked_reframe(reframe)
        if self.approach == "cascade":
            self.stages = PREDICT_STAGES if stages is None else stages
            needed = [n for n in cascade_models(self.stages)  # only the stages that run
                      if n != JAW_MODEL or n in self.manifest["models"]]  # (older: no jaw)
        elif stages is not None:
            raise ValueError(f"stages={stages}: only the cascade approach has stages")
        elif flip:
            raise ValueError("flip (--flip): only the cascade approach reads its regions "
                             f"mirrored, not {approach!r}; leave it out or use the cascade")
        elif reframe:
            raise ValueError(f"reframe (--reframe): only the cascade approach places the face "
                             f"box from its stage 1, not {approach!r}; use --reframe 0 or the "
                             "cascade")
        else:
            self.stages, needed = None, APPROACH_MODELS[self.approach]
        missing = [n for n in needed if n not in self.manifest["models"]]
        if missing:
            raise DataError(f"{self.weights_dir}: approach {approach!r} needs models {missing}, "
                            f"which this weights folder lacks (it has {sorted(self.manifest['models'])})")
        self.runtime = resolve_runtime(runtime or DEFAULT_RUNTIME, needed, self.manifest)
        self.models = load_runtime_models(self.weights_dir, needed, self.runtime, self.manifest)
        self._check_sizes()
        self.max_stage_spread = self._spread_limit() if face_check else None
        corrections = (shape_correction.folder_corrections(self.weights_dir, self.manifest)
                       if self.approach == "cascade" else shape_correction.Corrections())
        self.x_bias = corrections.x_bias  # (benchmarks/mirror_bias.py empties them to compare)
        self.flip = self._check_flip(flip)
        self.reframe, self.reframe_calibration = self._check_reframe(reframe)
        self.correction = corrections.for_stages(self.stages) if self.stages else None
        self.set_detector(detector, min_face)

    def _check_flip(self, flip):
        """``flip`` if this approach and weights folder can read the regions mirrored: the
        cascade's, with the mirrored reads' biases in the manifest (folders exported before
        ``--flip`` lack them, and their mirrored reads would sit about a pixel aside)."""
        if not flip:
            return False
        listed = self.manifest.get(MIRROR_BIAS_KEY) or {}   # (null entries count: measured)
        lacking = [n for n in CASCADE_REGIONS.values() if mirrored(n) not in listed]
        if lacking:
            raise DataError(f"{self.weights_dir / 'manifest.json'}: --flip needs the biases of "
                            f"mirrored reads, which it does not list for {lacking} (a folder "
                            "exported before --flip existed); export it again (fkd train "
                            "--overwrite; the shipped folder: make ship-weights) or leave out "
                            "--flip")
        return True

    def _check_reframe(self, reframe):
        """``(passes, calibration)`` of the re-framing this approach and weights folder can do:
        the cascade's, with the box calibration in the manifest (folders exported before
        ``--reframe`` lack it: by default they read the detector's box as it is)."""
        stored = self.manifest.get(REFRAME_KEY)
        path = self.weights_dir / "manifest.json"
        if reframe is None:
            reframe = DEFAULT_REFRAME if self.approach == "cascade" and stored else 0
        if not reframe:
            return 0, None
        if not stored:
            raise DataError(f"{path}: --reframe needs the box calibration {REFRAME_KEY!r}, "
                            "which it does not list (a folder exported before --reframe "
                            "existed); export it again (fkd train --overwrite; the shipped "
                            "folder: make ship-weights) or use --reframe 0")
        try:
            calibration = Calibration(**stored)
            calibration.apply(np.zeros((1, 4)))
        except (TypeError, ValueError) as err:
            raise DataError(f"{path}: {REFRAME_KEY} is not a box calibration ({err}); export "
                            "the folder again or use --reframe 0") from None
        return reframe, calibration

    def _spread_limit(self):
        """The face check's limit (:mod:`face_check`) for the stages that run, from the weights
        manifest; None where there is nothing to check (one stage, another approach, or weights
        exported before the check existed)."""
        if self.approach != "cascade" or self.stages < 2:
            return None
        entry = (self.manifest.get("face_check") or {}).get(str(self.stages))
        return None if entry is None else float(entry["max_stage_spread"])

    def set_detector(self, backend=None, min_face=None):
        """Use a face detector backend (hog, haar, lbp) with its calibration from the manifest;
        ``min_face``: the detector's smallest face in the fast pass, fraction of the photo's side."""
        from .detect import default_backend
        backend = backend or default_backend()
        stored = self.manifest.get("detector_calibration", {}).get(backend)
        min_face = check_min_face(MIN_FACE if min_face is None else min_face)
        self.__dict__.pop("_settings", None)
        self.detector = FaceDetector(nearest_calibration(stored, min_face), min_face, backend)

    def settings(self):
        """What produced a result, for its JSON: approach, stages, detector, smallest face,
        weights folder and the sha256 of its manifest (which lists every file's sha256),
        Keras backend and fkd version."""
        if not hasattr(self, "_settings"):
            import keras
            from . import __version__
            self._settings = {
                "approach": self.approach, "stages": self.stages, "flip": self.flip,
                "reframe": self.reframe,
                "detector": self.detector.backend, "min_face": self.detector.min_size,
                "weights_dir": str(self.weights_dir.resolve()),
                "weights_manifest_sha256": sha256(self.weights_dir / "manifest.json"),
                "weights_profile": self.manifest.get("profile"),
                "runtime": self.runtime, "max_stage_spread": self.max_stage_spread,
                "keras": f"{keras.__version__} ({keras.backend.backend()})",
                "fkd_version": __version__}
        return self._settings

    def _check_sizes(self):
        """Refuse, once, a manifest whose crop sizes do not match its models (else every image
        would fail with a shape error)."""
        path = self.weights_dir / "manifest.json"
        for name, model in self.models.items():
            key = "region_size" if "region" in name else "image_size"
            crop = self.manifest.get(key)
            if crop is not None and model.input_shape[1] != crop:
                raise DataError(f"{path}: {key} {crop} does not match {name}, which takes "
                                f"{model.input_shape[1]} px; re-export the weights folder")
            described = self.manifest["models"][name]
            want = described.get("input_size") if isinstance(described, dict) else None
            if model.input_shape[1] != want:
                raise DataError(f"{self.weights_dir}: {name} takes {model.input_shape[1]} px but the "
                                f"manifest says {want}: the manifest does not match the model")

    def detect(self, image):
        return self.detector(image)

    def landmarks(self, image, boxes):
        """68 points (K, 68, 2), 0-based pixel centres, for 1-based face boxes (K, 4)."""
        return self.landmarks_many([image], [boxes])[0]

    def landmarks_many(self, images, boxes_per_image):
        """:meth:`landmarks` for many images at once: one batched pass of each model."""
        return [points for points, _ in self._points_and_spreads(images, boxes_per_image)]

    def _points_and_spreads(self, images, boxes_per_image):
        """Per image, its faces' points (K, 68, 2) and stage spreads (K,) (see
        :func:`face_check.stage_spread`; NaN where one stage ran)."""
        faces, face_images, counts = face_crops(images, boxes_per_image, self.manifest)
        if not face_images:
            return [(np.zeros((0, 68, 2)), np.zeros(0)) for _ in images]
        points, spreads = self._predict(faces, face_images)
        cuts = np.cumsum(counts)[:-1]
        return list(zip(np.split(points, cuts), np.split(spreads, cuts)))

    def _predict(self, faces, images):
        if self.approach == "cascade":
            points, shapes = predict_cascade(self.models, faces, images, stages=self.stages,
                                             x_bias=self.x_bias, flip_regions=self.flip)
            return shape_correction.corrected(points, self.correction), stage_spread(shapes)
        first = predict_faces(self.models["end_to_end"], faces)
        no_spread = np.full(len(first), np.nan)
        if self.approach == "end_to_end":
            return first, no_spread
        regions = {r: self.models[f"region_{r}"] for r in REGIONS}
        if self.approach == "region":
            squares = region_squares(first)
        else:
            centres, sides = predict_boxes(self.models["boxes"], faces)
            squares = {r: (centres[:, i], sides[:, i]) for i, r in enumerate(REGIONS)}
        return refine_with_regions(first, images, squares, regions,
                                   self.manifest["region_size"])[0], no_spread

    def checked_faces(self, images, boxes_per_image, check=True):
        """Per image ``(faces, rejected)``: the faces (``{"box", "points", "stage_spread"}``)
        and, with ``check``, the boxes the face check turned down (``{"box", "stage_spread",
        "reason"}``: see :mod:`face_check`), landmarked in one batch. ``stage_spread`` is None
        where one stage ran or the shape was degenerate. ``check``: the boxes are the
        detector's, so each is also re-framed first (:meth:`reframed`): a face's ``"box"`` is
        then the box its points were read from and ``"detected_box"`` the detector's, and (with
        the face check on) of two detections that end on one face (:data:`SAME_FACE_IOU`) the
        one whose stages agree better is kept, the other listed as rejected."""
        detected = [np.asarray(b, np.float64).reshape(-1, 4) for b in boxes_per_image]
        reframing = check and self.reframe > 0
        boxes_per_image = self.reframed(images, detected) if reframing else detected
        limit = self.max_stage_spread if check else None
        found = self._points_and_spreads(images, boxes_per_image)
        if reframing and limit is not None:
            boxes_per_image, found = self._unframed_where_rejected(images, detected,
                                                                   boxes_per_image, found)
        out = []
        for boxes, originals, (points, spreads) in zip(boxes_per_image, detected, found):
            faces, rejected = [], []
            for box, original, pts, spread, ok in zip(boxes, originals, points, spreads,
                                                      is_face(spreads, limit)):
                face = {"box": box.tolist(), "stage_spread": json_spread(spread)}
                if reframing:
                    face["detected_box"] = original.tolist()
                if ok:
                    faces.append({**face, "points": pts})
                else:
                    rejected.append({**face, "reason": rejection_reason(spread)})
            if reframing and limit is not None:  # (--no-face-check keeps every detection)
                faces, rejected = _one_per_face(faces, rejected)
            out.append((faces, rejected))
        return out

    def _unframed_where_rejected(self, images, detected, boxes_per_image, found):
        """A detection the face check turns down once re-framed is read again from the
        detector's own box, and kept from there if it passes: on a face whose stage 1 errs
        (a strongly turned one) the re-framed box can be worse than the detector's. Returns
        the boxes and ``(points, spreads)`` per image with those faces replaced."""
        limit = self.max_stage_spread
        again = [(i, k) for i, (_, spreads) in enumerate(found)
                 for k in np.flatnonzero(~is_face(spreads, limit))
                 if not np.array_equal(boxes_per_image[i][k], detected[i][k])]
        if not again:
            return boxes_per_image, found
        retried = self._points_and_spreads([images[i] for i, _ in again],
                                           [detected[i][k:k + 1] for i, k in again])
        boxes_per_image = [b.copy() for b in boxes_per_image]
        found = [(p.copy(), s.copy()) for p, s in found]
        for (i, k), (points, spreads) in zip(again, retried):
            if is_face(spreads, limit)[0]:
                boxes_per_image[i][k] = detected[i][k]
                found[i][0][k], found[i][1][k] = points[0], spreads[0]
        return boxes_per_image, found

    def reframed(self, images, boxes_per_image):
        """Detector boxes (an array (K, 4) per image) each replaced by the box stage 1's points
        read from it give (``reframe`` times, each from the last box), placed as the 300-W
        detector boxes lie around the true points (:func:`reframe_calibration`); a box whose
        points give no usable box (not finite, or under 2 px) stays as it was."""
        for _ in range(self.reframe):
            faces, _, counts = face_crops(images, boxes_per_image, self.manifest)
            if faces is None:
                break
            points = shift_x(predict_faces(self.models["cascade_stage1"], faces),
                             self.x_bias.get("cascade_stage1"))
            placed = self.reframe_calibration.apply(holding_boxes(points))
            sides = placed[:, 2:] - placed[:, :2]
            usable = np.isfinite(placed).all(axis=1) & (sides >= 2.0).all(axis=1)
            placed = np.where(usable[:, None], placed, np.concatenate(boxes_per_image))
            boxes_per_image = np.split(placed, np.cumsum(counts)[:-1])
        return boxes_per_image

    def predict_many(self, images, boxes=None):
        """Faces of many RGB images (as :meth:`__call__`), detected one by one (unless their
        ``boxes`` are given) and landmarked in one batch: the fast path for folders."""
        images = [_rgb(im) for im in images]
        detected = boxes is None
        boxes = [self.detect(im) for im in images] if detected else boxes
        return [faces for faces, _ in self.checked_faces(images, boxes, check=detected)]

    def __call__(self, image, boxes=None):
        """Faces of an RGB image: ``[{"box": [x0, y0, x1, y1] (1-based), "points": (68, 2),
        "stage_spread"}]`` with points as 0-based pixel centres (OpenCV's and dlib's
        convention). Detections that fail the face check (:mod:`face_check`) are left out;
        a detection's ``"box"`` is the re-framed one its points were read from, with the
        detector's as ``"detected_box"`` (:meth:`reframed`); ``boxes`` you give are all
        landmarked, each from the box as given."""
        return self.predict_many([image], None if boxes is None else [boxes])[0]


def _one_per_face(faces, rejected):
    """One image's faces without duplicates: a face whose box overlaps a kept one's by more
    than :data:`SAME_FACE_IOU` (two detections that re-framing brought onto one face) joins
    ``rejected``; the faces whose stages agree best (smallest spread) are kept first."""
    order = sorted(range(len(faces)), key=lambda k: (faces[k]["stage_spread"] is None,
                                                     faces[k]["stage_spread"] or 0.0))
    kept = []
    for k in order:
        if any(box_iou(np.array(faces[k]["box"]), np.array(faces[j]["box"])) > SAME_FACE_IOU
               for j in kept):
            face = {key: v for key, v in faces[k].items() if key != "points"}
            rejected = rejected + [{**face, "reason": "the same face as another detection"}]
        else:
            kept.append(k)
    return [faces[k] for k in sorted(kept)], rejected


def face_crops(images, boxes_per_image, manifest):
    """The models' face crops for 1-based boxes (a list per image), sized as the weights
    ``manifest`` says: ``(faces {"images", "transforms"} or None, image of each face, count
    per image)``."""
    size, margin = manifest["image_size"], manifest["face_margin"]
    crops, transforms, face_images, counts = [], [], [], []
    for image, boxes in zip(images, boxes_per_image):
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        counts.append(len(boxes))
        for box in boxes:
            crop, transform, _ = face_crop(image, box, size, margin)
            crops.append(np.round(crop * 255).astype(np.uint8))
            transforms.append(transform)
            face_images.append(image)
    if not crops:
        return None, face_images, counts
    return {"images": np.stack(crops), "transforms": np.stack(transforms)}, face_images, counts


def resolve_runtime(runtime, names, manifest):
    """``auto`` -> ``int8`` when the manifest lists an int8 model for every name, else
    ``keras``; any other runtime is kept (and checked when the models load)."""
    if runtime != "auto":
        return runtime
    return "int8" if has_int8(manifest, names) else "keras"


def _rgb(image):
    """An API caller's array as RGB uint8 (H, W, 3): grey (H, W) or (H, W, 1) is repeated,
    alpha dropped; anything else is refused with what was wrong."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"images must be uint8 RGB arrays (0-255), got {image.dtype}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ValueError(f"images must be (H, W, 3) RGB arrays (or grey (H, W)), got shape "
                         f"{image.shape}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"the image has no pixels (shape {image.shape})")
    return image[..., :3]


_DEFAULT = {}


def predict(image, boxes=None, approach="cascade", weights_dir=None, face_check=True):
    """``fkd_utils.predict(image)``: list of faces, each ``{"box", "points" (68, 2),
    "stage_spread"}`` (detections that fail the face check are left out unless
    ``face_check=False``; ``boxes`` given are all landmarked: see :meth:`Landmarker.__call__`).

    ``image`` is an RGB array or a path. The landmarker is loaded once and reused.
    """
    if isinstance(image, (str, os.PathLike)):
        image = read_photo(image)
    key = (str(weights_dir), approach, face_check)
    if key not in _DEFAULT:
        _DEFAULT[key] = Landmarker(weights_dir, approach, face_check=face_check)
    return _DEFAULT[key](image, boxes)


#: the detector settings (smallest face, fraction of the photo's side) each backend is
#: calibrated for: the default and the wider search (``fkd predict --min-face``)
CALIBRATED_MIN_FACES = (MIN_FACE, 0.12)


def detector_calibrations(data_dir, every=8, log=print):
    """``{backend: [calibration dict per CALIBRATED_MIN_FACES]}`` measured on every
    ``every``-th training image against its 300-W detector box (notebook 08; ``fkd train``
    stores it in the weights manifest)."""
    from .data import split_samples
    from .detect import calibrate
    from .preprocess import face_boxes, read_samples
    samples = split_samples(data_dir, "train")[::every]
    images, _ = read_samples(samples)
    boxes, _ = face_boxes(samples, data_dir, "bb_detector")
    calibration = {}
    for backend in FaceDetector.BACKENDS:
        try:
            calibration[backend] = [calibrate(images, boxes, FaceDetector(None, m, backend)).to_dict()
                                    for m in CALIBRATED_MIN_FACES]
        except (ImportError, ValueError) as err:  # backend not installed, or it finds no face
            log(f"no {backend} calibration: {err}")
    return calibration


def holding_boxes(shapes):
    """The box (N, 4) that just holds each shape's 0-based points (N, K, 2), 1-based like the
    300-W box files."""
    from .data import points_box
    from .io import pixels_to_pts
    return np.array([points_box(pixels_to_pts(shape)) for shape in shapes],
                    np.float64).reshape(-1, 4)


def reframe_calibration(data_dir, every=1):
    """The box a face's points give (:meth:`Landmarker.reframed`): the median shift and scale
    (:func:`detect.fit_calibration`) from the box that just holds a face's true points to its
    300-W detector box, over every ``every``-th fit face (:func:`_fit_samples`), as a dict for
    the manifest. The true points, not a model's: the calibration belongs to the box
    convention the models learned, so it does not change when they are trained again."""
    from .detect import fit_calibration
    from .io import pts_to_pixels, read_pts
    from .preprocess import face_boxes
    samples = _fit_samples(data_dir, every)
    truth = np.stack([pts_to_pixels(read_pts(s.pts_path)) for s in samples])
    boxes, sources = face_boxes(samples, data_dir, "bb_detector")
    official = sources == "bb_detector"  # faces without a box file would only add identities
    if official.any():
        truth, boxes = truth[official], boxes[official]
    return fit_calibration(holding_boxes(truth), boxes).to_dict()


def training_face_chunks(samples, data_dir, manifest, chunk=64):
    """``(truth (n, 68, 2) 0-based, faces, image of each face)`` for ``chunk`` samples at a
    time, each face cropped from its 300-W detector box as the weights ``manifest`` says: the
    training faces the export-time calibrations below run the cascade on."""
    from .preprocess import face_boxes, read_samples
    for start in range(0, len(samples), chunk):
        part = samples[start:start + chunk]
        images, truth = read_samples(part)
        boxes, _ = face_boxes(part, data_dir, "bb_detector")
        faces, face_images, _ = face_crops(images, [[b] for b in boxes], manifest)
        yield truth, faces, face_images


def face_check_calibration(models, data_dir, manifest, every=2, chunk=64, log=print,
                           x_bias=None):
    """``{stage count: spread_limit(...)}`` for the cascade's 2 or more stages in ``models``,
    measured on every ``every``-th training face cropped from its 300-W detector box, ``chunk``
    photos at a time, each stage's points moved right by its ``x_bias`` (:mod:`mirror_bias`);
    see :mod:`face_check` (``fkd train`` stores it in the weights manifest).
    Empty without a cascade of two stages or more, or where no spread is finite (then logged:
    the weights get no check)."""
    from .data import split_samples
    from .pipeline import CASCADE_STAGES
    count = _stage_count(models)
    if count < 2:
        return {}
    stages = {name: models[name] for name in CASCADE_STAGES[:count]}  # no region ResNets
    samples = split_samples(data_dir, "train")[::every]
    spreads = {k: [] for k in range(2, count + 1)}
    for _, faces, face_images in training_face_chunks(samples, data_dir, manifest, chunk):
        # stage k reads crops placed by the stages before it only: one run gives every count
        _, shapes = predict_cascade(stages, faces, face_images, x_bias=x_bias)
        for k in spreads:
            spreads[k].extend(stage_spread(shapes[:k]))
    try:
        return {str(k): spread_limit(values) for k, values in spreads.items()}
    except ValueError as err:
        log(f"no face check: {err}")
        return {}


def _fit_samples(data_dir, every):
    """Every ``every``-th sample of the training split's fit part (the selection tenth left
    out, so that it can judge what is measured here)."""
    from .data import split_samples
    from .pipeline import model_selection
    samples = split_samples(data_dir, "train")
    chosen = ~model_selection(np.array([s.id for s in samples]))
    return [s for s, keep in zip(samples, chosen) if keep][::every]


def mirror_bias_calibration(models, data_dir, manifest, every=2, chunk=64, max_nme=MAX_NME):
    """``{model name: x bias px}`` (:mod:`mirror_bias`) of the cascade's stages, region
    ResNets (and their reads of the mirrored regions' crops, keyed ``mirror_bias.mirrored(name)``;
    null where none was placed within ``max_nme``) and jaw ResNet in ``models``, measured (faces within ``max_nme``) on every ``every``-th fit face
    (:func:`_fit_samples`) cropped from its 300-W detector box, ``chunk`` photos at a time,
    in one run of the cascade
    as it was before the correction (each stage then reads a crop placed by uncorrected
    stages: a shift of about half a pixel, which the stages were trained to absorb). Empty
    without a cascade; a model that placed no face within the failure threshold gets no
    entry (and no correction)."""
    from .pipeline import CASCADE_STAGES, MIRRORED_REGION, mirrored_reads, predict_jaw
    stages = {n: models[n] for n in CASCADE_STAGES[:_stage_count(models)]}
    if not stages:
        return {}
    regions = {r: models.get(n) for r, n in CASCADE_REGIONS.items()}
    samples = _fit_samples(data_dir, every)
    gts, results, refined, read_mirrored, jaws = [], {n: [] for n in stages}, [], [], []
    for gt, faces, face_images in training_face_chunks(samples, data_dir, manifest, chunk):
        result, shapes = predict_cascade(stages, faces, face_images)
        gts.append(gt)
        for name, shape in zip(stages, shapes):
            results[name].append(shape)
        if all(regions.values()):
            size = next(iter(regions.values())).input_shape[1]
            squares = region_squares(result)
            refined.append(refine_with_regions(result, face_images, squares, regions, size)[0])
            read_mirrored.append(mirrored_reads(result, face_images, squares, regions, size))
        if models.get(JAW_MODEL) is not None:
            jaws.append(result.copy())
            jaws[-1][:, list(JAW)] = predict_jaw(models[JAW_MODEL], face_images, result)
    gt = np.concatenate(gts)
    biases = {name: x_bias(np.concatenate(found), gt, max_nme=max_nme)
              for name, found in results.items()}
    if refined:
        refined = np.concatenate(refined)
        biases.update({n: x_bias(refined, gt, REGIONS[r], max_nme)
                       for r, n in CASCADE_REGIONS.items()})
        # the eye ResNets' mirrored reads are of the other eye: each bias goes to its reader
        read_mirrored = np.concatenate(read_mirrored)
        biases.update({mirrored(CASCADE_REGIONS[MIRRORED_REGION[r]]):
                       x_bias(read_mirrored, gt, REGIONS[r], max_nme) for r in CASCADE_REGIONS})
    if jaws:
        biases[JAW_MODEL] = x_bias(np.concatenate(jaws), gt, JAW, max_nme)
    # a mirrored read that placed no face keeps a null entry (no correction), so that --flip
    # can tell a folder that measured them from one exported before they existed
    return {name: round(value, 4) if np.isfinite(value) else None
            for name, value in biases.items() if np.isfinite(value) or is_mirrored(name)}


def _stage_count(models):
    """How many of the cascade's stages, in order from the first, ``models`` has."""
    from .pipeline import CASCADE_STAGES
    return next((k for k, name in enumerate(CASCADE_STAGES) if name not in models),
                len(CASCADE_STAGES))


def shape_correction_calibration(models, data_dir, manifest, x_bias=None, every=1, chunk=64):
    """``{stage count: correction}`` (:mod:`shape_correction`) for each number of the
    cascade's stages in ``models`` (with its region ResNets where ``models`` has them, and
    ``x_bias`` applied), fitted on the cascade's points for every ``every``-th fit face
    (:func:`_fit_samples`) cropped from its 300-W detector box, ``chunk`` photos at a time.
    Empty without a cascade."""
    count = _stage_count(models)
    if not count:
        return {}
    samples = _fit_samples(data_dir, every)
    truth, predicted = [], {k: [] for k in range(1, count + 1)}
    for gt, faces, face_images in training_face_chunks(samples, data_dir, manifest, chunk):
        truth.append(gt)
        for k in predicted:
            predicted[k].append(predict_cascade(models, faces, face_images, stages=k,
                                                x_bias=x_bias)[0])
    truth = np.concatenate(truth)
    return {str(k): shape_correction.fit(np.concatenate(found), truth)
            for k, found in predicted.items()}


def weights_out_dir(out_dir, profile):
    """The folder ``fkd train`` exports to: ``out_dir``, or ``<home>/weights/<profile>``."""
    return Path(out_dir or paths.home() / "weights" / profile)


def check_weights_out(out_dir, profile, overwrite=False):
    """Check, before any training, that the weights can be exported to ``out_dir`` (see
    :func:`weights_out_dir`): not over existing weights unless ``overwrite``, not below a
    file, in a writable place. Also removes the ``.<name>.partial-<pid>`` folders that
    stopped exports of dead processes left beside it. Returns the folder."""
    final_dir = weights_out_dir(out_dir, profile)
    if final_dir.exists() and not final_dir.is_dir():
        raise DataError(f"{final_dir}: --out is a file, not a folder")
    if (final_dir / "manifest.json").is_file() and not overwrite:
        raise FileExistsError(f"{final_dir}: holds weights already; refusing to write over them "
                              "(pass --overwrite, or --out another folder)")
    parent = next((q for q in final_dir.parents if q.exists()), Path("."))
    if not parent.is_dir():
        raise DataError(f"{final_dir}: cannot be the --out folder: {parent} is a file")
    if not os.access(parent, os.W_OK):
        raise DataError(f"{final_dir}: cannot create the --out folder ({parent} is not writable)")
    _remove_stale_partials(final_dir)
    return final_dir


def _remove_stale_partials(final_dir):
    import shutil
    from .outputs import process_alive
    if not final_dir.parent.is_dir():
        return
    for stale in final_dir.parent.glob(f".{final_dir.name}.partial-*"):
        pid = stale.name.rsplit("-", 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid() and not process_alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)


def export_weights(profile, data_dir, approaches=("cascade",), out_dir=None, command="",
                   models=None, calibration_every=8, log=print, overwrite=False):
    """Write the models of ``approaches`` (trained or loaded via ``get_models``) to a weights
    folder with its manifest; returns the manifest.

    The manifest records the validation metrics of each approach when the data has a
    validation split, and a face-detector calibration measured on every
    ``calibration_every``-th training image.
    """
    from .data import available_splits, check
    from .metrics import evaluate
    from .pipeline import get_models, run_approaches
    from .preprocess import data_fingerprint
    from .profiles import get_profile
    from .data import split_samples
    import shutil
    p = get_profile(profile)
    final_dir = check_weights_out(out_dir, p.name, overwrite)
    out_dir = final_dir.with_name(f".{final_dir.name}.partial-{os.getpid()}")
    shutil.rmtree(out_dir, ignore_errors=True)
    try:
        approaches = [APPROACH_ALIASES.get(a, a) for a in approaches]
        models = models or get_models(approaches, p, data_dir)
        files, described = {}, {}
        for name, model in models.items():
            for path in export_model(model, out_dir, name):
                files[path.name] = sha256(path)
            described[name] = {"input_size": int(model.input_shape[1]),
                               "outputs": int(model.output_shape[-1]), "params": int(model.count_params())}
        sizes = {"image_size": p.image_size, "face_margin": p.face_margin}
        mirror_bias = mirror_bias_calibration(models, data_dir, sizes)
        face_check = face_check_calibration(models, data_dir, sizes, log=log, x_bias=mirror_bias)
        corrections = shape_correction_calibration(models, data_dir, sizes, mirror_bias)
        if corrections:
            path = shape_correction.save(out_dir, corrections)
            files[path.name] = sha256(path)
        metrics = {}
        if "validation" in available_splits(data_dir):  # as the exported folder predicts
            preds = run_approaches(p, data_dir, "validation", models, approaches,
                                   shape_correction.Corrections(
                                       mirror_bias, {int(k): v for k, v in corrections.items()}))
            metrics = {name: evaluate(pred.points, pred.gt)["68"]["all"] | {
                "nme_51": evaluate(pred.points, pred.gt)["51"]["all"]["nme"]} for name, pred in preds.items()}
        calibration = detector_calibrations(data_dir, calibration_every, log)
        report = check(data_dir)
        from .pipeline import model_selection
        train_ids = [s.id for s in split_samples(data_dir, "train")]
        selection = [i for i, m in zip(train_ids, model_selection(train_ids)) if m]
        manifest = {
            "profile": p.name, "image_size": p.image_size, "region_size": p.region_size,
            "face_margin": p.face_margin, "approaches": approaches, "models": described,
            "files": files, "training_data": {"data_dir": str(data_dir),
                                              "fingerprint": data_fingerprint(data_dir),
                                              "counts": {k: v["count"] for k, v in report["splits"].items()}},
            "model_selection_ids": selection,
            "validation_metrics": metrics, "detector_calibration": calibration,
            "face_check": face_check, MIRROR_BIAS_KEY: mirror_bias,
            REFRAME_KEY: reframe_calibration(data_dir),
            **({shape_correction.MANIFEST_KEY: {
                "file": shape_correction.FILE, "stages": sorted(corrections),
                "ridge": shape_correction.RIDGE,
                "faces": len(_fit_samples(data_dir, 1))}} if corrections else {}),
            "command": command, "license_note": RESEARCH_NOTE,
        }
        (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=1))
        for extra in final_dir.glob("README*") if final_dir.is_dir() else ():
            shutil.copy2(extra, out_dir / extra.name)  # keep the folder's own notes
        size = sum((out_dir / f).stat().st_size for f in files) / 1e6
        if final_dir.exists():
            shutil.rmtree(final_dir)
        os.replace(out_dir, final_dir)  # all or nothing: a crash leaves the old folder intact
    finally:  # a stopped or failed export leaves no partial folder behind
        shutil.rmtree(out_dir, ignore_errors=True)
    log(f"wrote {len(described)} models to {final_dir} ({size:.1f} MB)")
    return manifest


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".tif", ".tiff", ".webp", ".gif")


def expand_inputs(inputs, exclude=None):
    """``(file, output stem)`` pairs: files given directly, plus the images inside given
    directories (sorted, skipping ``exclude``, e.g. the output folder). The output stem is the
    file's name, or its path inside the given directory with '/' -> '__'; stems two inputs
    would share are made unique by :func:`outputs.output_stems`, so no result replaces
    another. An input that does not exist, or a folder without images, is a usage error
    (:class:`DataError`), found before any work starts."""
    from .outputs import output_stems
    exclude = Path(exclude).resolve() if exclude else None
    pairs = []
    for item in map(Path, inputs):
        if item.is_dir():
            found = [(p, p.relative_to(item).as_posix().replace("/", "__"))
                     for p in sorted(item.rglob("*"))
                     if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
                     and not (exclude and exclude in p.resolve().parents)]
            if not found:
                raise DataError(f"{item}: no images in this folder (looked for "
                                f"{', '.join(IMAGE_SUFFIXES)})")
            pairs += found
        elif item.exists():
            pairs.append((item, item.name))
        else:
            raise DataError(f"{item}: no such file or folder")
    stems = output_stems([f for f, _ in pairs], [s for _, s in pairs])
    return [(f, s) for (f, _), s in zip(pairs, stems)]


def save_overlay(path, image, faces):
    """Write the image with each face box and its 68 points drawn (see
    :func:`outputs.draw_overlay`) to ``path`` (a PNG)."""
    from .outputs import overlay_png
    Path(path).write_bytes(overlay_png(image, faces)[0])


def _record(summary, path, stem, image, found, landmarker, writer, log):
    faces, rejected = found
    record = {"file": str(path), "width": int(image.shape[1]), "height": int(image.shape[0]),
              "approach": landmarker.approach, "points_convention": "0-based pixel centres",
              "faces": [{**f, "points": np.round(f["points"], 2).tolist()} for f in faces]}
    if rejected:  # detections whose landmarks failed the face check: see fkd_utils.face_check
        record["rejected"] = rejected
    summary["images"].append(record)
    if not faces:
        summary["no_face"].append(str(path))
        log(f"{path}: no face found" + (f" ({len(rejected)} detection(s) failed the face check)"
                                        if rejected else ""))
    if writer:
        png = None
        if writer.overlays:
            from .outputs import overlay_png
            png, scale = overlay_png(image, faces)
            if scale < 1.0:
                record = {**record, "overlay_scale": scale}
        writer.write(stem, record, png)


def _read_and_detect(path, stem, landmarker):
    """Decode and detect one ``(path, stem)``: ``(path, stem, image, boxes)``, or
    ``(path, stem, error)`` for a file that cannot be read."""
    try:
        image = read_photo(path)
        return path, stem, image, landmarker.detect(_rgb(image))
    except Exception as err:  # noqa: BLE001 - reported per file
        return path, stem, err


def usable_cores():
    """CPU cores this process may run on (not the host's count, in a container)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


#: the first batches' sizes before full ones: the models start after 4 photos are detected
#: instead of a whole batch (on 2 cores, 32 photos' detection is ~0.25 s with the models idle)
RAMP = (4, 8, 16)


def batch_sizes(count, batch):
    """Sizes of the batches ``count`` photos go through: ``RAMP``'s sizes below ``batch``
    first, then full batches, then the rest."""
    sizes = []
    for size in [s for s in RAMP if s < batch]:
        if sum(sizes) + size <= count:
            sizes.append(size)
    done = sum(sizes)
    sizes += [batch] * ((count - done) // batch)
    rest = count - sum(sizes)
    return sizes + ([rest] if rest else [])


def predict_batches(pairs, landmarker, batch=32, workers=None):
    """``(path, stem, image or None, faces or error)`` for every ``(path, stem)``, in order.

    While the models work on one batch, the next batch's photos are decoded and detected by
    ``workers`` threads (default: one per CPU core; decoding, detection and the models all
    release the GIL), so no core waits (benchmarks/predict_speed.py). The first batches are
    smaller (:func:`batch_sizes`), so the models start early.
    If a batch fails, its images are retried one by one, so one bad image is reported
    instead of stopping the run.
    """
    from concurrent.futures import ThreadPoolExecutor
    bounds = np.cumsum([0, *batch_sizes(len(pairs), batch)])
    chunks = [pairs[i:j] for i, j in zip(bounds[:-1], bounds[1:])]
    with ThreadPoolExecutor(workers or usable_cores()) as pool:
        submit = lambda chunk: [pool.submit(_read_and_detect, *pair, landmarker) for pair in chunk]
        ahead = submit(chunks[0]) if chunks else []
        for k in range(len(chunks)):
            items = [future.result() for future in ahead]
            if k + 1 < len(chunks):
                ahead = submit(chunks[k + 1])
            yield from _landmark_items(items, landmarker)


def _landmark_items(items, landmarker):
    """``(path, stem, image, (faces, rejected) or error)`` for read items, batched."""
    good = [it for it in items if len(it) == 4]
    try:
        faces = landmarker.checked_faces([_rgb(it[2]) for it in good], [it[3] for it in good])
    except Exception:  # noqa: BLE001 - find the culprit below
        faces = []
        for _, _, image, boxes in good:
            try:
                faces.append(landmarker.checked_faces([_rgb(image)], [boxes])[0])
            except Exception as err:  # noqa: BLE001 - reported per image
                faces.append(err)
    found = iter(faces)
    for it in items:
        yield (it[0], it[1], it[2], next(found)) if len(it) == 4 else (it[0], it[1], None, it[2])


def predict_files(inputs, landmarker, out_dir=None, overlays=True, progress=True, log=print,
                  batch=32, overwrite=False):
    """Run a landmarker on files and folders; write ``<name>.fkd.json`` (+ ``<name>.fkd.png``
    overlay) per image into ``out_dir`` through :class:`outputs.ResultWriter`, which refuses to
    replace any existing result unless ``overwrite`` (checked before any work starts).
    Unreadable files, images without a face and images that fail are reported and skipped.
    Returns ``{"images": [...], "skipped": [...], "no_face": [...]}``."""
    from contextlib import nullcontext
    from tqdm.auto import tqdm
    from .outputs import ResultWriter
    out_dir = Path(out_dir) if out_dir else None
    pairs = expand_inputs(inputs, exclude=out_dir)
    writer = (ResultWriter(out_dir, [s for _, s in pairs], overlays, overwrite,
                           landmarker.settings()) if out_dir else nullcontext())
    summary = {"images": [], "skipped": [], "no_face": []}
    with writer:
        bar = tqdm(total=len(pairs), disable=not progress or len(pairs) < 2, desc="fkd predict")
        for path, stem, image, faces in predict_batches(pairs, landmarker, batch):
            bar.update(1)
            if isinstance(faces, Exception):
                # a DataError names its file already; anything else gets the path in front
                reason = (str(faces) if isinstance(faces, DataError)
                          else f"{path}: {type(faces).__name__}: {faces}")
                summary["skipped"].append({"file": str(path), "reason": reason})
                log(f"skipped {reason}")
                continue
            _record(summary, path, stem, image, faces, landmarker, writer, log)
        bar.close()
    return summary


def predict_split_from_files(landmarker, data_dir, split, name=None, samples=None):
    """``fkd predict`` end to end on a split's image files (or on ``samples`` of it): its own
    detector finds the faces (those past the face check, as ``fkd predict`` reports them); the
    one overlapping the 300-W box is scored (images where there is none fall back to the
    300-W detector box, counted in ``info["fallbacks"]``, as dlib's evaluation does).
    Returns a Prediction."""
    from .detect import pick_face
    from .pipeline import predict_split_per_image

    def predict_one(image, box):
        faces = landmarker(image)  # what fkd predict reports: detections past the face check
        chosen = pick_face(np.array([f["box"] for f in faces]).reshape(-1, 4), box)
        if chosen is None:
            return landmarker.landmarks(image, box[None])[0], True
        return next(f["points"] for f in faces if f["box"] == chosen.tolist()), False

    return predict_split_per_image(data_dir, split, name or f"{landmarker.approach}_own_detector",
                                   predict_one, {"detector": landmarker.detector.backend,
                                                 "min_face": landmarker.detector.min_size,
                                                 "stages": landmarker.stages,
                                                 "reframe": landmarker.reframe,
                                                 "runtime": landmarker.runtime}, samples)
