"""A real peer: dlib's 68-point shape predictor (Kazemi & Sullivan 2014), trained on iBUG 300-W,
run offline (introduced in notebook 05; optional extra ``[peers]``).

The model file comes with the PyPI package ``face-recognition-models``; we locate the file
without importing the package (its ``__init__`` needs the removed ``pkg_resources``). dlib is
measured with the same images, the same metrics and either the same face boxes as our models
(``bb_detector``) or its own HOG face detector; dlib may have seen 300-W test images in training.
"""
import importlib.util
from pathlib import Path

import numpy as np

from .detect import pick_face  # noqa: F401  (re-exported for callers of the peer)
from .io import DataError

DLIB_MODEL = "shape_predictor_68_face_landmarks.dat"
BOX_SOURCES = ("bb_detector", "own")


def dlib_model_path():
    """Path of dlib's 68-point model inside ``face-recognition-models``; a clear error if absent."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("dlib's model needs the [peers] extra: pip install -e '.[peers]' "
                        "(dlib-bin, face-recognition-models)")
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / DLIB_MODEL
    if not path.is_file():
        raise DataError(f"{path}: dlib's 68-point model file is missing")
    return path


def available():
    """Whether dlib and its model file are installed."""
    try:
        import dlib  # noqa: F401
        dlib_model_path()
        return True
    except (ImportError, DataError):
        return False


def _rectangle(box):
    import dlib
    x0, y0, x1, y1 = np.round(np.asarray(box, float) - 1).astype(int)  # 1-based -> 0-based
    return dlib.rectangle(int(x0), int(y0), int(x1), int(y1))


def _box(rect):
    return np.array([rect.left(), rect.top(), rect.right(), rect.bottom()], float) + 1


class DlibLandmarker:
    """``landmarker(image, boxes=None)`` -> (points (K, 68, 2) 0-based, boxes used (K, 4) 1-based)."""

    def __init__(self):
        import dlib
        self.predictor = dlib.shape_predictor(str(dlib_model_path()))
        self.detector = dlib.get_frontal_face_detector()

    def detect(self, image):
        """dlib's own HOG face boxes (1-based), upsampling once as its examples do."""
        return np.array([_box(r) for r in self.detector(np.ascontiguousarray(image), 1)]).reshape(-1, 4)

    def __call__(self, image, boxes=None):
        image = np.ascontiguousarray(image)
        boxes = self.detect(image) if boxes is None else np.asarray(boxes, float).reshape(-1, 4)
        points = [np.array([[p.x, p.y] for p in self.predictor(image, _rectangle(b)).parts()], float)
                  for b in boxes]
        return np.array(points).reshape(-1, 68, 2), boxes


def predict_split(data_dir, split, box_source="bb_detector"):
    """dlib on every image of a split: a :class:`fkd_utils.pipeline.Prediction`.

    With ``box_source="own"``, dlib's detector finds the face; the detection overlapping the
    300-W box is used, and images where it finds none fall back to the 300-W box (counted in
    ``info["fallbacks"]``).
    """
    from .pipeline import predict_split_per_image
    if box_source not in BOX_SOURCES:
        raise ValueError(f"box_source must be one of {BOX_SOURCES}, got {box_source!r}")
    landmarker = DlibLandmarker()

    def predict_one(image, box):
        chosen = pick_face(landmarker.detect(image), box) if box_source == "own" else box
        return landmarker(image, (box if chosen is None else chosen)[None])[0][0], chosen is None

    name = "dlib_300w_boxes" if box_source == "bb_detector" else "dlib_own_detector"
    return predict_split_per_image(data_dir, split, name, predict_one, {"box_source": box_source})


def measured(profile, data_dir, split, box_source="bb_detector"):
    """dlib's prediction on a split, read from ``results/<profile>/`` when an earlier notebook
    saved it, else computed and saved there (notebooks 05 and 08 share it)."""
    from .pipeline import load_saved
    name = "dlib_300w_boxes" if box_source == "bb_detector" else "dlib_own_detector"
    saved = load_saved(profile, data_dir, split, [name])
    if name in saved:
        return saved[name]
    pred = predict_split(data_dir, split, box_source)
    pred.save(profile)
    return pred
