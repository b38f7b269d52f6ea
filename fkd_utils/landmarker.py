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
from .detect import MIN_FACE, FaceDetector, nearest_calibration
from .formats import load_runtime_models
from .io import DataError
from .markup import REGIONS
from .pipeline import (APPROACH_MODELS, PREDICT_STAGES, cascade_models, predict_boxes,
                       predict_cascade, predict_faces, refine_with_regions, region_squares)
from .weights_io import (RESEARCH_NOTE, export_model, import_model, read_weights_manifest, sha256,
                         shipped_weights_dir)

#: ``fkd predict --runtime``'s default
DEFAULT_RUNTIME = "keras"
#: approach names accepted on the command line -> pipeline approach
APPROACH_ALIASES = {"end-to-end": "end_to_end", "end_to_end": "end_to_end", "region": "region",
                    "box": "box", "cascade": "cascade"}


class Landmarker:
    """Face detector + trained models: 68 points on every face of a photo.

    ``approach``: ``cascade`` (ours, the default), ``end-to-end``, ``region`` or ``box``;
    ``stages``: how many of the cascade's stages to run (None: ``pipeline.PREDICT_STAGES``, the
    fast default; 3: all, the most accurate); ``runtime``: ``keras`` or ``onnx`` (ONNX Runtime
    on the CPU, float32; see :mod:`fkd_utils.formats`).
    """

    def __init__(self, weights_dir=None, approach="cascade", detector=None, min_face=None,
                 stages=None, runtime=DEFAULT_RUNTIME):
        self.weights_dir = Path(weights_dir or shipped_weights_dir())
        self.manifest = read_weights_manifest(self.weights_dir)
        if approach not in APPROACH_ALIASES:
            raise ValueError(f"unknown approach {approach!r}; choose one of "
                             f"{sorted(set(APPROACH_ALIASES) - {'end_to_end'})}")
        self.approach = APPROACH_ALIASES[approach]
        if self.approach == "cascade":
            self.stages = PREDICT_STAGES if stages is None else stages
            needed = cascade_models(self.stages)  # only the stages that run are loaded
        elif stages is not None:
            raise ValueError(f"stages={stages}: only the cascade approach has stages")
        else:
            self.stages, needed = None, APPROACH_MODELS[self.approach]
        missing = [n for n in needed if n not in self.manifest["models"]]
        if missing:
            raise DataError(f"{self.weights_dir}: approach {approach!r} needs models {missing}, "
                            f"which this weights folder lacks (it has {sorted(self.manifest['models'])})")
        self.runtime = runtime or DEFAULT_RUNTIME
        self.models = load_runtime_models(self.weights_dir, needed, self.runtime, self.manifest)
        self._check_sizes()
        self.set_detector(detector, min_face)

    def set_detector(self, backend=None, min_face=None):
        """Use a face detector backend (hog, haar, lbp) with its calibration from the manifest;
        ``min_face``: the detector's smallest face in the fast pass, fraction of the photo's side."""
        from .detect import default_backend
        backend = backend or default_backend()
        stored = self.manifest.get("detector_calibration", {}).get(backend)
        min_face = min_face or MIN_FACE
        self.detector = FaceDetector(nearest_calibration(stored, min_face), min_face, backend)

    def _check_sizes(self):
        for name, model in self.models.items():
            want = self.manifest["models"][name]["input_size"]
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
        size, margin = self.manifest["image_size"], self.manifest["face_margin"]
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
            return [np.zeros((0, 68, 2)) for _ in images]
        faces = {"images": np.stack(crops), "transforms": np.stack(transforms)}
        points = self._predict(faces, face_images)
        return np.split(points, np.cumsum(counts)[:-1])

    def _predict(self, faces, images):
        if self.approach == "cascade":
            return predict_cascade(self.models, faces, images, stages=self.stages)[0]
        first = predict_faces(self.models["end_to_end"], faces)
        if self.approach == "end_to_end":
            return first
        regions = {r: self.models[f"region_{r}"] for r in REGIONS}
        if self.approach == "region":
            squares = region_squares(first)
        else:
            centres, sides = predict_boxes(self.models["boxes"], faces)
            squares = {r: (centres[:, i], sides[:, i]) for i, r in enumerate(REGIONS)}
        return refine_with_regions(first, images, squares, regions,
                                   self.manifest["region_size"])[0]

    def predict_many(self, images, boxes=None):
        """Faces of many RGB images (as :meth:`__call__`), detected one by one (unless their
        ``boxes`` are given) and landmarked in one batch: the fast path for folders."""
        images = [_rgb(im) for im in images]
        boxes = [self.detect(im) for im in images] if boxes is None else boxes
        points = self.landmarks_many(images, boxes)
        return [[{"box": np.asarray(b).tolist(), "points": p} for b, p in zip(bs, ps)]
                for bs, ps in zip(boxes, points)]

    def __call__(self, image, boxes=None):
        """Faces of an RGB image: ``[{"box": [x0, y0, x1, y1] (1-based), "points": (68, 2)}]``
        with points as 0-based pixel centres (OpenCV's and dlib's convention)."""
        image = _rgb(image)
        boxes = self.detect(image) if boxes is None else np.asarray(boxes, np.float64).reshape(-1, 4)
        if not len(boxes):
            return []
        points = self.landmarks(image, boxes)
        return [{"box": box.tolist(), "points": pts} for box, pts in zip(boxes, points)]


def read_photo(path):
    """A user's photo as RGB uint8, turned upright by its EXIF orientation (phones store
    pictures sideways). The 300-W reader does not do this: its .pts match the raw pixels."""
    from PIL import Image, ImageOps
    from .io import read_image
    try:
        with Image.open(path) as im:
            if im.getexif().get(0x0112, 1) != 1:
                return np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
            if im.mode in ("RGB", "L"):  # the common case: decoded once, here (3x imageio's speed)
                return np.asarray(im.convert("RGB"))
    except Exception:
        pass  # read_image gives the clear error for a file that is not an image
    return read_image(path)


def _rgb(image):
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"images must be uint8 RGB arrays (0-255), got {image.dtype}")
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    return image[..., :3]


_DEFAULT = {}


def predict(image, boxes=None, approach="cascade", weights_dir=None):
    """``fkd_utils.predict(image)``: list of faces, each ``{"box", "points" (68, 2)}``.

    ``image`` is an RGB array or a path. The landmarker is loaded once and reused.
    """
    if isinstance(image, (str, os.PathLike)):
        image = read_photo(image)
    key = (str(weights_dir), approach)
    if key not in _DEFAULT:
        _DEFAULT[key] = Landmarker(weights_dir, approach)
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
    final_dir = Path(out_dir or paths.home() / "weights" / p.name)
    if (final_dir / "manifest.json").is_file() and not overwrite:
        raise FileExistsError(f"{final_dir}: holds weights already; refusing to write over them "
                              "(pass --overwrite, or --out another folder)")
    out_dir = final_dir.with_name(f".{final_dir.name}.partial-{os.getpid()}")
    shutil.rmtree(out_dir, ignore_errors=True)
    approaches = [APPROACH_ALIASES.get(a, a) for a in approaches]
    models = models or get_models(approaches, p, data_dir)
    files, described = {}, {}
    for name, model in models.items():
        for path in export_model(model, out_dir, name):
            files[path.name] = sha256(path)
        described[name] = {"input_size": int(model.input_shape[1]),
                           "outputs": int(model.output_shape[-1]), "params": int(model.count_params())}
    metrics = {}
    if "validation" in available_splits(data_dir):
        preds = run_approaches(p, data_dir, "validation", models, approaches)
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
        "command": command, "license_note": RESEARCH_NOTE,
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=1))
    for extra in final_dir.glob("README*") if final_dir.is_dir() else ():
        shutil.copy2(extra, out_dir / extra.name)  # keep the folder's own notes
    size = sum((out_dir / f).stat().st_size for f in files) / 1e6
    if final_dir.exists():
        shutil.rmtree(final_dir)
    os.replace(out_dir, final_dir)  # all or nothing: a crash leaves the old folder intact
    log(f"wrote {len(described)} models to {final_dir} ({size:.1f} MB)")
    return manifest


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".tif", ".tiff", ".webp")


def expand_inputs(inputs, exclude=None):
    """``(file, output stem)`` pairs: files given directly, plus the images inside given
    directories (sorted, skipping ``exclude``, e.g. the output folder). The output stem is the
    path relative to the given directory with '/' -> '__', so 'a/x.jpg' and 'b/x.jpg' or
    'x.jpg' and 'x.png' never write to the same file."""
    exclude = Path(exclude).resolve() if exclude else None
    pairs = []
    for item in map(Path, inputs):
        if item.is_dir():
            for p in sorted(item.rglob("*")):
                if p.suffix.lower() in IMAGE_SUFFIXES and not (
                        exclude and exclude in p.resolve().parents):
                    pairs.append((p, p.relative_to(item).as_posix().replace("/", "__")))
        else:
            pairs.append((item, item.name))
    return pairs


def save_overlay(path, image, faces):
    """The image with each face box and its 68 points drawn."""
    import matplotlib
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    height, width = image.shape[:2]
    fig = plt.figure(figsize=(width / 100, height / 100), dpi=100)
    ax = fig.add_axes([0, 0, 1, 1])
    ax.imshow(image)
    for face in faces:
        x0, y0, x1, y1 = np.asarray(face["box"]) - 1
        ax.add_patch(plt.Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ec="yellow", lw=1))
        ax.scatter(*np.asarray(face["points"]).T, s=max(2, width / 150), c="red", linewidths=0)
    ax.set_axis_off()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _record(summary, path, stem, image, faces, landmarker, out_dir, overlays, log):
    record = {"file": str(path), "width": int(image.shape[1]), "height": int(image.shape[0]),
              "approach": landmarker.approach, "points_convention": "0-based pixel centres",
              "faces": [{"box": f["box"], "points": np.round(f["points"], 2).tolist()}
                        for f in faces]}
    summary["images"].append(record)
    if not faces:
        summary["no_face"].append(str(path))
        log(f"{path}: no face found")
    if out_dir:
        (out_dir / f"{stem}.fkd.json").write_text(json.dumps(record))
        if overlays:
            save_overlay(out_dir / f"{stem}.fkd.png", image, faces)


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


def predict_batches(pairs, landmarker, batch=32, workers=None):
    """``(path, stem, image or None, faces or error)`` for every ``(path, stem)``, in order.

    While the models work on one batch, the next batch's photos are decoded and detected by
    ``workers`` threads (default: one per CPU core; decoding, detection and the models all
    release the GIL), so no core waits (benchmarks/predict_speed.py).
    If a batch fails, its images are retried one by one, so one bad image is reported
    instead of stopping the run.
    """
    from concurrent.futures import ThreadPoolExecutor
    chunks = [pairs[i:i + batch] for i in range(0, len(pairs), batch)]
    with ThreadPoolExecutor(workers or usable_cores()) as pool:
        submit = lambda chunk: [pool.submit(_read_and_detect, *pair, landmarker) for pair in chunk]
        ahead = submit(chunks[0]) if chunks else []
        for k in range(len(chunks)):
            items = [future.result() for future in ahead]
            if k + 1 < len(chunks):
                ahead = submit(chunks[k + 1])
            yield from _landmark_items(items, landmarker)


def _landmark_items(items, landmarker):
    good = [it for it in items if len(it) == 4]
    try:
        faces = landmarker.predict_many([it[2] for it in good], [it[3] for it in good])
    except Exception:  # noqa: BLE001 - find the culprit below
        faces = []
        for _, _, image, boxes in good:
            try:
                faces.append(landmarker(image, boxes))
            except Exception as err:  # noqa: BLE001 - reported per image
                faces.append(err)
    found = iter(faces)
    for it in items:
        yield (it[0], it[1], it[2], next(found)) if len(it) == 4 else (it[0], it[1], None, it[2])


def predict_files(inputs, landmarker, out_dir=None, overlays=True, progress=True, log=print,
                  batch=32, overwrite=False):
    """Run a landmarker on files and folders; write ``<name>.fkd.json`` (+ ``<name>.fkd.png``
    overlay) per image into ``out_dir``, refusing to replace existing results unless
    ``overwrite``. Unreadable files, images without a face and images that fail are reported
    and skipped. Returns ``{"images": [...], "skipped": [...], "no_face": [...]}``."""
    from tqdm.auto import tqdm
    out_dir = Path(out_dir) if out_dir else None
    pairs = expand_inputs(inputs, exclude=out_dir)
    if out_dir:
        clashes = [str(out_dir / f"{stem}.fkd.json") for _, stem in pairs
                   if (out_dir / f"{stem}.fkd.json").exists()]
        if clashes and not overwrite:
            raise FileExistsError(f"{clashes[0]}: exists ({len(clashes)} results would be "
                                  "replaced); pass --overwrite or another --out")
        out_dir.mkdir(parents=True, exist_ok=True)
    summary = {"images": [], "skipped": [], "no_face": []}
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
        _record(summary, path, stem, image, faces, landmarker, out_dir, overlays, log)
    bar.close()
    return summary


def predict_split_from_files(landmarker, data_dir, split, name=None):
    """``fkd predict`` end to end on a split's image files: its own detector finds the faces;
    the detection overlapping the 300-W box is scored (images where it finds none fall back
    to the 300-W detector box, counted in ``info["fallbacks"]``). Returns a Prediction."""
    from .detect import pick_face
    from .pipeline import predict_split_per_image

    def predict_one(image, box):
        chosen = pick_face(landmarker.detect(image), box)
        return landmarker.landmarks(image, (box if chosen is None else chosen)[None])[0], chosen is None

    return predict_split_per_image(data_dir, split, name or f"{landmarker.approach}_own_detector",
                                   predict_one, {"detector": landmarker.detector.backend,
                                                 "min_face": landmarker.detector.min_size,
                                                 "stages": landmarker.stages})
